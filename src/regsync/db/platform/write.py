"""Writing the registry's changes into the platform's records: merged fields, records created in the registry.

The caller holds :func:`regsync.db.session.suppress_outbox` on the connection, so that these writes queue no
outbox rows (no echo of the registry's own change back to it); its transaction also moves the links
(:mod:`regsync.db.merges`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from regsync.db.models import TABLES, Base
from regsync.db.own import own_format
from regsync.db.platform.mapped import insertable, mapped_platform, read_only_fields
from regsync.db.query import insert_id, insert_ids, update_by_id

_INSERTS: dict[str, Any] = {}


def _insert(table_name: str) -> Any:
    """``INSERT`` of a table, built once (a statement built per row costs more than its round trip)."""
    stmt = _INSERTS.get(table_name)
    if stmt is None:
        stmt = _INSERTS[table_name] = Base.metadata.tables[table_name].insert()
    return stmt


def insert_record(conn: Connection, kind: str, values: dict[str, Any], *, registry_id: str | None = None) -> int:
    """Insert a local row of ``kind`` (a record created in the registry); returns its local id.

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        values: column → value (references as local ids, lists as JSON text).
        registry_id: the registry record's id (a mapped platform's string key may be made from it).

    Raises:
        regsync.db.platform.mapped.InsertNotAllowed: a mapped platform whose mapping does not let regsync insert
            rows of ``kind``.
    """
    mp = mapped_platform(conn)
    if mp is not None:
        return mp.insert_rows(conn, kind, [values], [registry_id])[0]
    return insert_id(conn, _insert(TABLES[kind]), values)


def insert_records(conn: Connection, kind: str, rows: Sequence[dict[str, Any]],
                   registry_ids: Sequence[str | None] | None = None) -> list[int]:
    """Insert many local rows of ``kind`` (each as for :func:`insert_record`, the same columns) in one
    statement (:func:`regsync.db.query.insert_ids`); returns their local ids in the order of ``rows``.
    ``registry_ids``: as for :func:`insert_record`, one per row.

    Raises:
        regsync.db.platform.mapped.InsertNotAllowed: as :func:`insert_record`.
    """
    mp = mapped_platform(conn)
    if mp is not None:
        return mp.insert_rows(conn, kind, rows, registry_ids or [None] * len(rows))
    return insert_ids(conn, Base.metadata.tables[TABLES[kind]], rows)


def write_fields(conn: Connection, kind: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write the same ``columns`` of many local rows of ``kind`` (merged fields, endings included).

    Args:
        conn: a connection in a transaction, holding :func:`~regsync.db.session.suppress_outbox`.
        kind: the record kind.
        columns: the columns written (``updated_at`` among them when it is to move).
        rows: ``{"id": local id, column: value, …}`` for each row.
    """
    mp = mapped_platform(conn)
    if mp is not None:
        mp.update_rows(conn, kind, columns, rows)
        return
    update_by_id(conn, Base.metadata.tables[TABLES[kind]], columns, rows)


__all__ = ["insert_record", "insert_records", "insertable", "read_only_fields", "write_fields"]


def set_id_number_norms(conn: Connection, fixes: Sequence[dict[str, Any]]) -> None:
    """Set volunteers' ``id_number_norm`` (the normalized ID number the relay and the merge match people by):
    ``fixes`` are ``{"vid": local id, "norm": normalized number or None}``."""
    mp = mapped_platform(conn)
    if mp is not None:
        mp.set_norms(conn, fixes)
        return
    conn.execute(text(own_format(conn, "UPDATE {volunteer} SET id_number_norm = :norm WHERE id = :vid")), list(fixes))

