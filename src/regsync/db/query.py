"""What the store's queries share: ``IN`` over many keys, keys taken in chunks, and updates of many rows by id.

On PostgreSQL a list of keys is one array parameter (``column = ANY(:array)``) and an update of many rows is one
``UPDATE … FROM unnest(arrays)``; SQLite binds each key and runs an ``executemany``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, Table, Text, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

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


__all__ = ["CHUNK", "PG_CHUNK", "UPDATE_CHUNK", "chunk_size", "chunks", "in_values", "update_by_id"]
