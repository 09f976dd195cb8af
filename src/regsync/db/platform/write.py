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
from regsync.db.query import insert_id, insert_ids, update_by_id

_INSERTS: dict[str, Any] = {}


def _insert(table_name: str) -> Any:
    """``INSERT`` of a table, built once (a statement built per row costs more than its round trip)."""
    stmt = _INSERTS.get(table_name)
    if stmt is None:
        stmt = _INSERTS[table_name] = Base.metadata.tables[table_name].insert()
    return stmt


def insert_record(conn: Connection, kind: str, values: dict[str, Any]) -> int:
    """Insert a local row of ``kind`` (a record created in the registry); returns its local id.

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        values: column → value (references as local ids, lists as JSON text).
    """
    return insert_id(conn, _insert(TABLES[kind]), values)


def insert_records(conn: Connection, kind: str, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many local rows of ``kind`` (each as for :func:`insert_record`, the same columns) in one
    statement (:func:`regsync.db.query.insert_ids`); returns their local ids in the order of ``rows``."""
    return insert_ids(conn, Base.metadata.tables[TABLES[kind]], rows)


def write_fields(conn: Connection, kind: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write the same ``columns`` of many local rows of ``kind`` (merged fields, endings included).

    Args:
        conn: a connection in a transaction, holding :func:`~regsync.db.session.suppress_outbox`.
        kind: the record kind.
        columns: the columns written (``updated_at`` among them when it is to move).
        rows: ``{"id": local id, column: value, …}`` for each row.
    """
    update_by_id(conn, Base.metadata.tables[TABLES[kind]], columns, rows)


__all__ = ["insert_record", "insert_records", "write_fields"]


def set_id_number_norms(conn: Connection, fixes: Sequence[dict[str, Any]]) -> None:
    """Set volunteers' ``id_number_norm`` (the normalized ID number the relay and the merge match people by):
    ``fixes`` are ``{"vid": local id, "norm": normalized number or None}``."""
    conn.execute(text("UPDATE volunteer SET id_number_norm = :norm WHERE id = :vid"), list(fixes))

