"""Writing the registry's changes into the platform's records: merged fields, records created in the registry.

The caller holds :func:`regsync.db.session.suppress_outbox` on the connection, so that these writes queue no
outbox rows (no echo of the registry's own change back to it); its transaction also moves the links
(:mod:`regsync.db.merges`).

Each function takes the store's platform as the caller resolved it (``platform``: the installed mapping,
:func:`regsync.db.platform.mapped.mapped_platform`, or ``None`` for the reference tables), once per run or writer:
resolved here per call, it would cost a read of ``store_meta`` per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from regsync.db.models import TABLES, Base
from regsync.db.own import own_format
from regsync.db.platform.mapped import MappedPlatform, insertable, read_only_fields
from regsync.db.query import insert_id, insert_ids, update_by_id

_INSERTS: dict[str, Any] = {}


def _insert(table_name: str) -> Any:
    """``INSERT`` of a table, built once (a statement built per row costs more than its round trip)."""
    stmt = _INSERTS.get(table_name)
    if stmt is None:
        stmt = _INSERTS[table_name] = Base.metadata.tables[table_name].insert()
    return stmt


def insert_record(conn: Connection, kind: str, values: dict[str, Any], *, platform: MappedPlatform | None,
                  registry_id: str | None = None) -> int:
    """Insert a local row of ``kind`` (a record created in the registry); returns its local id.

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        values: column → value (references as local ids, lists as JSON text).
        platform: the store's mapped platform, ``None`` for the reference tables (module docstring).
        registry_id: the registry record's id (a mapped platform's string key may be made from it).

    Raises:
        regsync.db.platform.mapped.InsertNotAllowed: a mapped platform whose mapping does not let regsync insert
            rows of ``kind``.
    """
    if platform is not None:
        return platform.insert_rows(conn, kind, [values], [registry_id])[0]
    return insert_id(conn, _insert(TABLES[kind]), values)


def insert_records(conn: Connection, kind: str, rows: Sequence[dict[str, Any]],
                   registry_ids: Sequence[str | None] | None = None, *, platform: MappedPlatform | None) -> list[int]:
    """Insert many local rows of ``kind`` (each as for :func:`insert_record`, the same columns) in one
    statement (:func:`regsync.db.query.insert_ids`); returns their local ids in the order of ``rows``.
    ``registry_ids`` and ``platform``: as for :func:`insert_record`, one registry id per row.

    Raises:
        regsync.db.platform.mapped.InsertNotAllowed: as :func:`insert_record`.
    """
    if platform is not None:
        return platform.insert_rows(conn, kind, rows, registry_ids or [None] * len(rows))
    return insert_ids(conn, Base.metadata.tables[TABLES[kind]], rows)


def write_fields(conn: Connection, kind: str, columns: Sequence[str], rows: Sequence[dict[str, Any]], *,
                 platform: MappedPlatform | None) -> None:
    """Write the same ``columns`` of many local rows of ``kind`` (merged fields, endings included).

    Args:
        conn: a connection in a transaction, holding :func:`~regsync.db.session.suppress_outbox`.
        kind: the record kind.
        columns: the columns written (``updated_at`` among them when it is to move).
        rows: ``{"id": local id, column: value, …}`` for each row.
        platform: the store's mapped platform, ``None`` for the reference tables (module docstring).
    """
    if platform is not None:
        platform.update_rows(conn, kind, columns, rows)
        return
    update_by_id(conn, Base.metadata.tables[TABLES[kind]], columns, rows)


__all__ = ["insert_record", "insert_records", "insertable", "read_only_fields", "set_id_number_norms", "write_fields"]


def set_id_number_norms(conn: Connection, fixes: Sequence[dict[str, Any]], *,
                        platform: MappedPlatform | None) -> None:
    """Set volunteers' ``id_number_norm`` (the normalized ID number the relay and the merge match people by):
    ``fixes`` are ``{"vid": local id, "norm": normalized number or None}``; ``platform`` as for
    :func:`insert_record`."""
    if platform is not None:
        platform.set_norms(conn, fixes)
        return
    conn.execute(text(own_format(conn, "UPDATE {volunteer} SET id_number_norm = :norm WHERE id = :vid")), list(fixes))

