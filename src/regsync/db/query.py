"""What the store's queries share: ``IN`` over many keys, keys taken in chunks, updates of many rows by id, inserts
that return their ids, and inserts that skip or update a row whose key exists.

On PostgreSQL a list of keys is one array parameter (``column = ANY(:array)``) and an update of many rows is one
``UPDATE … FROM unnest(arrays)``; SQLite and MySQL/MariaDB bind each key and run an ``executemany``. An insert
returns its ids with ``RETURNING`` where the engine has it (PostgreSQL, SQLite, MariaDB ≥ 10.5), else (MySQL 8) from
the driver's last insert id, one row at a time. An insert over an existing key is ``ON CONFLICT`` on PostgreSQL and
SQLite, ``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, Table, Text, any_, bindparam, insert, text
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

#: Keys per ``IN`` query where the engine binds each key (SQLite), and per lookup of a page's records.
CHUNK = 500
#: Keys per ``IN`` query on PostgreSQL (one array parameter holds many).
PG_CHUNK = 10_000
#: Rows per ``UPDATE … FROM unnest(arrays)`` on PostgreSQL.
UPDATE_CHUNK = 5_000


def in_values(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter instead of hundreds (the
    driver parses and binds it far faster). The array is a typed parameter: cast from a text literal instead,
    it leaves the planner's generic plans blind (a lookup of 500 links went from 10 to 118 ms).

    Args:
        conn: a connection (its dialect decides the form).
        column: a SQLAlchemy column.
        values: the keys, all ``int`` (an array of ``bigint``) or all text.

    Returns:
        A SQLAlchemy boolean clause for a ``where``.
    """
    if conn.dialect.name == "postgresql":
        item_type = BigInteger() if values and isinstance(values[0], int) else Text()
        return column == any_(bindparam(None, list(values), type_=ARRAY(item_type)))
    return column.in_(list(values))


def chunk_size(conn: Connection) -> int:
    """Keys per ``IN`` query (:func:`in_values`): :data:`PG_CHUNK` on PostgreSQL, :data:`CHUNK` elsewhere."""
    return PG_CHUNK if conn.dialect.name == "postgresql" else CHUNK


def chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    """``seq`` in slices of at most ``n`` items, in order."""
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def update_by_id(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Set ``columns`` of many rows of ``table`` by id, in ``conn``'s transaction.

    Args:
        conn: a connection in a transaction.
        table: the table (it has an ``id`` key).
        columns: the columns set, the same for every row.
        rows: ``{"id": id, column: value, …}`` for each row (every column of ``columns``).

    On PostgreSQL: one ``UPDATE … FROM unnest(CAST(:a AS type[]), …)`` per :data:`UPDATE_CHUNK` rows (arrays bound
    once, not a round trip per row); elsewhere an ``executemany``.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        # a bound parameter may not bear the name of a column the statement sets
        conn.execute(table.update().where(table.c.id == bindparam("b_id")).values(
            **{c: bindparam(f"b_{c}") for c in columns}), [{f"b_{k}": v for k, v in r.items()} for r in rows])
        return
    cols = ["id", *columns]
    types = [table.c[c].type.compile(dialect=conn.dialect) for c in cols]
    sql = text(f"UPDATE {table.name} AS t SET " + ", ".join(f"{c} = v.{c}" for c in columns)  # noqa: S608
               + " FROM unnest(" + ", ".join(f"CAST(:a_{c} AS {ty}[])" for c, ty in zip(cols, types, strict=True))
               + f") AS v({', '.join(cols)}) WHERE t.id = v.id")
    for chunk in chunks(rows, UPDATE_CHUNK):
        conn.execute(sql, {f"a_{c}": [r[c] for r in chunk] for c in cols})


def insert_id(conn: Connection, stmt: Insert | Table, values: Mapping[str, Any] | None = None) -> int:
    """Insert one row and return its id (an ``int``): with ``RETURNING`` where the engine has it, else (MySQL 8)
    the driver's last insert id, which is this connection's own.

    Args:
        conn: a connection in a transaction.
        stmt: an ``INSERT`` (its values given or not), or a table (then ``values`` are its row).
        values: column → value, or ``None`` when ``stmt`` holds them.
    """
    ins = stmt.insert() if isinstance(stmt, Table) else stmt
    key = conn.execute(ins, dict(values) if values is not None else None).inserted_primary_key
    assert key is not None and key[0] is not None  # a one-row INSERT of a table with an id
    return int(key[0])


def insert_ids(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert ``rows`` (the same columns each) into ``table`` and return their ids in the order of ``rows``: one
    ``INSERT … RETURNING`` in SQLAlchemy's "insertmanyvalues" batches where the engine has ``RETURNING``; on MySQL 8
    one insert per row (its multi-row inserts hand out ids that need not be consecutive when another writer inserts
    at the same time, under ``innodb_autoinc_lock_mode = 2``, its default)."""
    if not rows:
        return []
    if conn.dialect.insert_returning:
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
        return [int(r[0]) for r in result]
    return [insert_id(conn, table, row) for row in rows]


def upsert(conn: Connection, table: Table, keys: Sequence[str],
           update: Callable[[Any], Mapping[str, Any]] | None = None) -> Insert:
    """An ``INSERT`` into ``table`` that, where a row with the same key exists, leaves it (``update`` ``None``) or
    sets the columns ``update`` gives: ``INSERT … ON CONFLICT (keys) DO NOTHING|DO UPDATE`` on PostgreSQL and
    SQLite, ``INSERT … ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB (which applies to every unique key of the table:
    ``keys`` should be its only one).

    Args:
        conn: a connection (its dialect decides the form).
        table: the table.
        keys: the key's columns.
        update: called with the proposed row's columns (PostgreSQL's ``excluded``, MySQL's ``VALUES()``: use as
            ``new.column``), returns column → value to set on the existing row.

    Returns:
        The statement, to execute with one row's values or many.
    """
    if conn.dialect.name in ("mysql", "mariadb"):
        mstmt = mysql_insert(table)
        if update is None:  # a no-op assignment of the key: MySQL's "do nothing" that, unlike INSERT IGNORE,
            return mstmt.on_duplicate_key_update({keys[0]: table.c[keys[0]]})  # turns no other error into a warning
        return mstmt.on_duplicate_key_update(dict(update(mstmt.inserted)))
    pstmt = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
    if update is None:
        return pstmt.on_conflict_do_nothing(index_elements=list(keys))
    return pstmt.on_conflict_do_update(index_elements=list(keys), set_=dict(update(pstmt.excluded)))


__all__ = ["CHUNK", "PG_CHUNK", "UPDATE_CHUNK", "chunk_size", "chunks", "in_values", "insert_id", "insert_ids",
           "update_by_id", "upsert"]
