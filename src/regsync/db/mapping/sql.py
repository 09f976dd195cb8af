"""A mapping's reads as SQL expressions, per dialect, for the views and triggers that compute canonical values in
the database (issue 14).

Each function returns the text of one SQL expression over the row named ``alias`` (a table alias of the caller's
query, or ``NEW``/``OLD`` inside a trigger): no bound parameters, since the SQL goes into DDL. Dialects are
``sqlite``, ``postgresql`` and ``mysql`` (MariaDB reports ``mysql``; ``mariadb`` is taken as ``mysql``).

* :func:`read_expr`: a field's canonical value, typed as the canonical type and equal to what
  :func:`regsync.db.mapping.codec.decode_value` makes of the same platform value (``tests/test_mapping_sql.py``
  holds them equal on the three engines): ``DATE``; a naive UTC ``TIMESTAMP``/``DATETIME`` (on SQLite, the text
  ``YYYY-MM-DD HH:MM:SS[.ffffff]``); integer hundredths; JSON array text; code text, or the unmapped marker
  (:func:`regsync.domain.unmapped.unmapped_marker`) made of the platform's value; a reference as the referred
  record's local id.
* :func:`key_expr`: the record's local id: its integer key, or for a string key the ``local_id`` that regsync's
  key table holds for it.
* :func:`in_scope_expr`, :func:`deleted_expr`: conditions (never ``NULL``): the row is in scope; the row is
  soft-deleted.
* :func:`watched_columns`: the platform columns whose change a trigger must see.

**The key table.** A string key (an org code) has an integer local id, kept in regsync's key table, whose
qualified name the caller gives (``key_table``): columns ``entity`` (the kind), ``local_id`` (``BIGINT``), ``key``
(``VARCHAR(64)``: the platform key as text), unique ``(entity, key)``. A reference by a string key is the
subquery ``(SELECT _rk.local_id FROM <key_table> _rk WHERE _rk.entity = '<kind>' AND _rk.key = <the value as
text>)``. On MySQL the value is compared as ``utf8mb4`` under ``utf8mb4_bin``, so the ``key`` column should have that
collation (then its index serves the lookup). A reference through another column of the referred kind
(``ref_column`` that is not its key) is ``(SELECT MIN(<its key_expr>) FROM <its table> _rr WHERE _rr.<ref_column> =
<value>)``: that column should be unique (``platform check`` says so; ``MIN`` keeps a duplicate from failing the
platform's own write in a trigger). References match byte for byte, as keys do: on MySQL, a value that its column's
case-insensitive collation would match but that differs in case or trailing spaces is not a reference.

**Text comparisons.** Codes, soft-delete flags and scope values are compared as text, byte for byte: on SQLite and
PostgreSQL ``CAST(x AS TEXT)``; on MySQL the value converted to ``utf8mb4`` and compared as binary, so that neither
a case-insensitive collation nor PAD SPACE (``'1 ' = '1'``) makes two values one. The SQL is written for a
session in ``utf8mb4`` (regsync's engines), with backslashes and control characters spelled as ``CHAR(n)`` so that
no ``sql_mode`` changes a literal.

**Values that do not read.** Date and time text that is not a real date of years 1000–9999 in its format reads as
``NULL`` (no engine raises: the checks come before any cast), as the codec reads it; ``platform check`` can count
them as rows where the column is not null and its reading is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.compiler import IdentifierPreparer

from regsync.db.mapping.codec import JSON_ESCAPES, MIN_YEAR
from regsync.db.mapping.model import CANONICAL, REF_KIND, FieldMap, FieldType, KindMap, PlatformMapping
from regsync.db.models import SYNCED_COLUMNS, TABLES
from regsync.domain.unmapped import PREFIX, SEPARATOR

__all__ = ["DIALECTS", "canonical_exprs", "deleted_expr", "dialect_of", "in_scope_expr", "key_expr", "literal",
           "quote", "quote_table", "read_expr", "table_sql", "watched_columns"]

#: The dialects this module writes, by the names SQLAlchemy gives them.
DIALECTS = ("sqlite", "postgresql", "mysql")

_PREPARERS: dict[str, IdentifierPreparer] = {
    "sqlite": sqlite.dialect().identifier_preparer,
    "postgresql": postgresql.dialect().identifier_preparer,  # type: ignore[no-untyped-call]
    "mysql": mysql.dialect().identifier_preparer,
}
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The aliases of the subqueries made here (the key table, a referred table).
_KEY_ALIAS, _REF_ALIAS = "_rk", "_rr"
_OFFSET_S = 8 * 3600
_DAY_MS = 86_400_000


def dialect_of(name: str) -> str:
    """A dialect name as this module spells it: ``sqlite``, ``postgresql`` or ``mysql`` (``mariadb`` is ``mysql``).

    Raises:
        ValueError: another dialect.
    """
    name = "mysql" if name == "mariadb" else name
    if name not in DIALECTS:
        raise ValueError(f"no SQL for dialect {name!r} (one of {', '.join(DIALECTS)})")
    return name


def quote(dialect: str, name: str) -> str:
    """An identifier, quoted as ``dialect`` needs it (only when it must be: a reserved word, upper case on
    PostgreSQL…)."""
    return _PREPARERS[dialect_of(dialect)].quote(name)


def quote_table(dialect: str, qualified: str) -> str:
    """A table name, ``schema.table`` or ``table``, each part quoted as ``dialect`` needs it."""
    return ".".join(quote(dialect, part) for part in qualified.split("."))


def table_sql(dialect: str, mapping: PlatformMapping, kind: str) -> str:
    """The quoted table of ``kind`` (``schema.table`` where the mapping says so)."""
    return quote_table(dialect, _km(mapping, kind).table)


def _km(mapping: PlatformMapping, kind: str) -> KindMap:
    return mapping.kind(kind)


def _char(dialect: str, code: int) -> str:
    if dialect == "postgresql":
        return f"chr({code})"
    if dialect == "mysql":
        return f"CHAR({code} USING utf8mb4)"
    return f"char({code})"


def _concat(dialect: str, parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    if dialect == "mysql":
        return f"CONCAT({', '.join(parts)})"
    return "(" + " || ".join(parts) + ")"


def literal(dialect: str, value: str | int | None) -> str:
    """A SQL literal: ``NULL``, an integer, or a string with ``'`` doubled and its control characters (and, on
    MySQL, backslashes) spelled as ``char(n)`` concatenated in (so that no ``sql_mode`` changes its meaning).

    Raises:
        ValueError: a string holding NUL (no engine's text stores it).
    """
    dialect = dialect_of(dialect)
    if value is None:
        return "NULL"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"no literal for {value!r}")
    if isinstance(value, int):
        return str(value)
    if "\x00" in value:
        raise ValueError("a text literal cannot hold NUL")
    parts: list[str] = []
    run: list[str] = []
    for ch in value:
        if ord(ch) < 0x20 or (ch == "\\" and dialect == "mysql"):
            if run:
                parts.append("'" + "".join(run).replace("'", "''") + "'")
                run = []
            parts.append(_char(dialect, ord(ch)))
        else:
            run.append(ch)
    if run or not parts:
        parts.append("'" + "".join(run).replace("'", "''") + "'")
    return _concat(dialect, parts)


def _col(dialect: str, alias: str, column: str) -> str:
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"an alias is an identifier, not {alias!r}")
    return f"{alias}.{quote(dialect, column)}"


def _text(dialect: str, expr: str) -> str:
    """``expr`` as text (``CAST(… AS TEXT)``; on MySQL converted to utf8mb4)."""
    if dialect == "mysql":
        return f"CONVERT({expr} USING utf8mb4)"
    return f"CAST({expr} AS TEXT)"


def _cmp_text(dialect: str, expr: str) -> str:
    """``expr`` as text to compare byte for byte with literals (on MySQL binary: no collation, no PAD SPACE)."""
    if dialect == "mysql":
        return f"CAST(CONVERT({expr} USING utf8mb4) AS BINARY)"
    return _text(dialect, expr)


def key_text(dialect: str, expr: str) -> str:
    """``expr`` as text to compare with the key table's ``key`` column (its index usable)."""
    if dialect == "mysql":
        return f"CAST({expr} AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin"
    return _text(dialect, expr)


def _length(dialect: str, expr: str) -> str:
    return f"length({expr})" if dialect == "sqlite" else f"CHAR_LENGTH({expr})"


def _int(dialect: str, expr: str) -> str:
    return f"CAST({expr} AS SIGNED)" if dialect == "mysql" else f"CAST({expr} AS INTEGER)"


def _substr(dialect: str, expr: str, start: int, length: int) -> str:
    return f"{'SUBSTRING' if dialect == 'mysql' else 'substr'}({expr}, {start}, {length})"


def _floor_div(dialect: str, expr: str, divisor: int) -> str:
    """``floor(expr / divisor)`` for integers, exact on every engine (``%`` and ``/`` truncate toward zero)."""
    div = "DIV" if dialect == "mysql" else "/"
    return f"(({expr}) - ((({expr}) % {divisor}) + {divisor}) % {divisor}) {div} {divisor}"


def _in_list(dialect: str, values: Sequence[str | int]) -> str:
    return ", ".join(literal(dialect, str(v)) for v in values)


# ------------------------------------------------------------------------------------------------- dates and times

#: The shape of each text format: ``9`` a digit, anything else itself.
_SHAPES = {"YYYY-MM-DD": "9999-99-99", "YYYYMMDD": "99999999", "YYYY-MM-DD HH:MM:SS": "9999-99-99 99:99:99"}


def _shape_ok(dialect: str, text: str, shape: str) -> str:
    if dialect == "sqlite":
        return f"{text} GLOB '{shape.replace('9', '[0-9]')}'"
    pattern = "^" + re.sub("9+", lambda m: f"[0-9]{{{len(m[0])}}}", shape) + "$"
    if dialect == "postgresql":
        return f"{text} ~ '{pattern}'"
    # MariaDB's PCRE lets $ match before a final newline: the length check rules that out
    return f"{text} REGEXP '{pattern}' AND CHAR_LENGTH({text}) = {len(shape)}"


def _real_date(y: str, m: str, d: str) -> str:
    """The condition that y-m-d (integer expressions) is a real date of years ``MIN_YEAR``–9999."""
    leap = f"({y} % 4 = 0 AND ({y} % 100 <> 0 OR {y} % 400 = 0))"
    last = (f"(CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) "
            "ELSE 31 END)")
    return f"{y} >= {MIN_YEAR} AND {m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {last}"


def _text_date(dialect: str, column: str, fmt: str) -> str:
    t = _text(dialect, column)
    y = _int(dialect, _substr(dialect, t, 1, 4))
    if fmt == "YYYY-MM-DD":
        m, d, iso = _int(dialect, _substr(dialect, t, 6, 2)), _int(dialect, _substr(dialect, t, 9, 2)), t
    else:
        m, d = _int(dialect, _substr(dialect, t, 5, 2)), _int(dialect, _substr(dialect, t, 7, 2))
        iso = _concat(dialect, [_substr(dialect, t, 1, 4), "'-'", _substr(dialect, t, 5, 2), "'-'",
                                _substr(dialect, t, 7, 2)])
    value = iso if dialect == "sqlite" else f"CAST({iso} AS DATE)"
    # nested: no engine casts the parts before the shape is known to be digits
    return (f"(CASE WHEN {_shape_ok(dialect, t, _SHAPES[fmt])} THEN "
            f"(CASE WHEN {_real_date(y, m, d)} THEN {value} END) END)")


def _plus_seconds(dialect: str, day_iso: str, seconds: str) -> str:
    """The naive timestamp ``seconds`` (an integer expression, may be negative) after 00:00 of ``day_iso``."""
    if dialect == "sqlite":
        return f"datetime({day_iso}, ({seconds}) || ' seconds')"
    if dialect == "postgresql":
        return f"(CAST({day_iso} AS TIMESTAMP) + ({seconds}) * INTERVAL '1 second')"
    return f"(CAST({day_iso} AS DATETIME) + INTERVAL ({seconds}) SECOND)"


def _text_datetime(dialect: str, column: str) -> str:
    t = _text(dialect, column)
    y, m, d, hh, mi, ss = (_int(dialect, _substr(dialect, t, start, n))
                           for start, n in ((1, 4), (6, 2), (9, 2), (12, 2), (15, 2), (18, 2)))
    clock = f"({hh} < 24 AND {mi} < 60 AND {ss} < 60 OR {hh} = 24 AND {mi} = 0 AND {ss} = 0)"
    seconds = f"{hh} * 3600 + {mi} * 60 + {ss} - {_OFFSET_S}"
    value = _plus_seconds(dialect, _substr(dialect, t, 1, 10), seconds)
    return (f"(CASE WHEN {_shape_ok(dialect, t, _SHAPES['YYYY-MM-DD HH:MM:SS'])} THEN "
            f"(CASE WHEN {_real_date(y, m, d)} AND {clock} THEN {value} END) END)")


def _epoch_date(dialect: str, column: str) -> str:
    days = _floor_div(dialect, f"{column} + {_OFFSET_S * 1000}", _DAY_MS)
    if dialect == "sqlite":
        return f"date(({days}) * 86400, 'unixepoch')"
    if dialect == "postgresql":
        return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"
    return f"(DATE '1970-01-01' + INTERVAL ({days}) DAY)"


def _epoch_datetime(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        micros = f"((({column} % 1000) + 1000) % 1000) * 1000"
        return f"(datetime({_floor_div(dialect, column, 1000)}, 'unixepoch') || printf('.%06d', {micros}))"
    if dialect == "postgresql":  # whole days, then the milliseconds of the day: an interval times a number is a
        # double's product, exact only below 2**53 microseconds (year 2255)
        days, ms = _floor_div(dialect, column, _DAY_MS), f"((({column}) % {_DAY_MS}) + {_DAY_MS}) % {_DAY_MS}"
        return f"(TIMESTAMP '1970-01-01 00:00:00' + ({days}) * INTERVAL '1 day' + ({ms}) * INTERVAL '1 millisecond')"
    return f"TIMESTAMPADD(MICROSECOND, ({column}) * 1000, TIMESTAMP '1970-01-01 00:00:00')"


def _minus_offset(dialect: str, column: str) -> str:
    """A naive time in +08:00 as UTC (fractional seconds kept)."""
    if dialect == "sqlite":  # datetime() drops the fraction; it is put back (the shift is whole hours)
        return f"(datetime({column}, '-8 hours') || substr({column}, 20))"
    if dialect == "postgresql":
        return f"({column} - INTERVAL '8 hours')"
    return f"({column} - INTERVAL 8 HOUR)"


# ----------------------------------------------------------------------------------------------------- the fields


def _code(dialect: str, column: str, fm: FieldMap) -> str:
    if fm.values is None:
        return column
    marker = _concat(dialect, [literal(dialect, f"{PREFIX}{fm.column}{SEPARATOR}"), _text(dialect, column)])
    if not fm.values:
        return marker
    whens = " ".join(f"WHEN {literal(dialect, k)} THEN {literal(dialect, v)}" for k, v in fm.values.items())
    return f"(CASE {_cmp_text(dialect, column)} {whens} ELSE {marker} END)"


def _hours(dialect: str, column: str, fm: FieldMap) -> str:
    if fm.unit == "minutes":  # round_half_up(m * 100 / 60) = floor((100 m + 30) / 60)
        expr = _floor_div(dialect, f"{column} * 100 + 30", 60)
        return f"CAST({expr} AS BIGINT)" if dialect == "postgresql" else f"({expr})"
    if fm.unit == "decimal_hours":  # round_half_up(h * 100) = floor(100 h + 1/2), exact decimals
        if dialect == "postgresql":
            return f"CAST(FLOOR(CAST({column} AS NUMERIC) * 100 + 0.5) AS BIGINT)"
        if dialect == "mysql":
            return f"CAST(FLOOR(CAST({column} AS DECIMAL(30, 6)) * 100 + 0.5) AS SIGNED)"
        # SQLite has no decimals: a double's error (1.005 is 1.00499…) is smaller than the 1e-9 added
        e = f"({column} * 100 + 0.5 + 1e-9)"
        return f"(CAST({e} AS INTEGER) - ({e} < CAST({e} AS INTEGER)))"
    return column


def _list(dialect: str, column: str, fm: FieldMap) -> str:
    empty = f"{column} IS NULL OR {_length(dialect, column)} = 0"
    if fm.list_format is None or fm.list_format == "json":
        return f"(CASE WHEN {empty} THEN '[]' ELSE {column} END)"
    escaped = _text(dialect, column)
    for char, replacement in JSON_ESCAPES:
        escaped = f"REPLACE({escaped}, {literal(dialect, char)}, {literal(dialect, replacement)})"
    between = literal(dialect, '","')
    items = f"REPLACE({escaped}, {literal(dialect, fm.list_format)}, {between})"
    array = _concat(dialect, [literal(dialect, '["'), items, literal(dialect, '"]')])
    return f"(CASE WHEN {empty} THEN '[]' ELSE {array} END)"


def _const(dialect: str, value: str | int, ftype: FieldType) -> str:
    if ftype in ("integer", "hours"):
        return str(int(value))
    if ftype in ("date", "datetime") and dialect != "sqlite":
        return f"{'DATE' if ftype == 'date' else 'TIMESTAMP'} {literal(dialect, str(value))}"
    return literal(dialect, str(value))


#: On MariaDB, a condition that keeps a correlated subquery out of the subquery cache, which keys its entries by
#: the outer column's own collation: under a case-insensitive one, the answer for ``'z1'`` would be given for
#: ``'Z1'`` too (MariaDB 10.11). A non-deterministic function turns the cache off; the index is still used.
_NO_SUBQUERY_CACHE = " AND RAND() >= 0"


def _key_lookup(dialect: str, kind: str, value: str, key_table: str) -> str:
    k = _KEY_ALIAS
    return (f"(SELECT {k}.local_id FROM {quote_table(dialect, key_table)} {k} "
            f"WHERE {k}.entity = {literal(dialect, kind)} AND {k}.{quote(dialect, 'key_value')} = "
            f"{key_text(dialect, value)}{_NO_SUBQUERY_CACHE if dialect == 'mysql' else ''})")


def _ref(dialect: str, mapping: PlatformMapping, kind: str, field: str, column: str, fm: FieldMap,
         key_table: str) -> str:
    target_kind = REF_KIND[kind][field]
    target = _km(mapping, target_kind)
    if fm.ref_column is None or fm.ref_column == target.key:
        if target.key_type == "integer":
            return column
        return _key_lookup(dialect, target_kind, column, key_table)
    r = _REF_ALIAS
    referred = _col(dialect, r, fm.ref_column)
    match = f"{referred} = {column}"
    if dialect == "mysql":  # the index finds the rows under the column's collation; then byte for byte
        match += f" AND {_cmp_text(dialect, referred)} = {_cmp_text(dialect, column)}{_NO_SUBQUERY_CACHE}"
    # MIN: one value even where the column is not unique (platform check reports that), never an error in a trigger
    return (f"(SELECT MIN({key_expr(dialect, mapping, target_kind, r, key_table=key_table)}) "
            f"FROM {table_sql(dialect, mapping, target_kind)} {r} WHERE {match})")


def read_expr(dialect: str, mapping: PlatformMapping, kind: str, field: str, alias: str, *, key_table: str) -> str:
    """The SQL expression of the canonical value of ``field`` of the ``kind`` row named ``alias``.

    Args:
        dialect: ``sqlite``, ``postgresql`` or ``mysql``.
        mapping: the platform's mapping.
        kind: the kind (``volunteer``).
        field: a canonical field the mapping maps (a column or a constant).
        alias: the row's name in the caller's SQL: a table alias, or ``NEW``/``OLD`` in a trigger.
        key_table: regsync's key table, qualified as the caller's SQL needs it (module docstring).

    Returns:
        SQL text, equal on its engine to :func:`regsync.db.mapping.codec.decode_value` of the same value, references
        resolved to local ids.

    Raises:
        KeyError: the field is not mapped.
        ValueError: an unknown dialect, or an alias that is not an identifier.
    """
    dialect = dialect_of(dialect)
    fm = _km(mapping, kind).fields[field]
    ftype = CANONICAL[kind][field][0]
    if fm.const is not None:
        return _const(dialect, fm.const, ftype)
    column = _col(dialect, alias, fm.column or "")
    if ftype == "code":
        return _code(dialect, column, fm)
    if ftype == "hours":
        return _hours(dialect, column, fm)
    if ftype == "list":
        return _list(dialect, column, fm)
    if ftype == "ref":
        return _ref(dialect, mapping, kind, field, column, fm, key_table)
    if ftype == "date":
        if fm.format in ("YYYY-MM-DD", "YYYYMMDD"):
            return _text_date(dialect, column, fm.format)
        if fm.format == "epoch_ms":
            return _epoch_date(dialect, column)
        return column
    if ftype == "datetime":
        if fm.format == "YYYY-MM-DD HH:MM:SS":
            return _text_datetime(dialect, column)
        if fm.format == "epoch_ms":
            return _epoch_datetime(dialect, column)
        return _minus_offset(dialect, column) if fm.tz == "+08:00" else column
    return column  # text, integer


def key_expr(dialect: str, mapping: PlatformMapping, kind: str, alias: str, *, key_table: str) -> str:
    """The SQL expression of the local id of the ``kind`` row named ``alias``: its integer key, or the key table's
    ``local_id`` of its string key (``NULL`` while the key table has none)."""
    dialect = dialect_of(dialect)
    km = _km(mapping, kind)
    column = _col(dialect, alias, km.key)
    if km.key_type == "integer":
        return column
    return _key_lookup(dialect, kind, column, key_table)


def canonical_exprs(dialect: str, mapping: PlatformMapping, kind: str, alias: str, *, key_table: str
                    ) -> dict[str, str]:
    """``{"id": key_expr, field: read_expr, …}`` for every field the mapping maps: a view's select list."""
    out = {"id": key_expr(dialect, mapping, kind, alias, key_table=key_table)}
    for field in _km(mapping, kind).fields:
        out[field] = read_expr(dialect, mapping, kind, field, alias, key_table=key_table)
    return out


def in_scope_expr(dialect: str, mapping: PlatformMapping, kind: str, alias: str) -> str:
    """The condition that the ``kind`` row named ``alias`` is in scope: every ``scope`` rule holds (``TRUE`` with no
    rules). Values are compared as text; ``NULL`` is among no ``in`` list and outside every ``not_in`` list, so the
    condition is never ``NULL``."""
    dialect = dialect_of(dialect)
    tests: list[str] = []
    for rule in _km(mapping, kind).scope:
        column = _col(dialect, alias, rule.column)
        if rule.in_ is not None:
            tests.append(f"({column} IS NOT NULL AND {_cmp_text(dialect, column)} IN ({_in_list(dialect, rule.in_)}))"
                         if rule.in_ else "FALSE")
        if rule.not_in:
            tests.append(f"({column} IS NULL OR {_cmp_text(dialect, column)} NOT IN "
                         f"({_in_list(dialect, rule.not_in)}))")
        if rule.is_null is not None:
            tests.append(f"{column} IS {'' if rule.is_null else 'NOT '}NULL")
    return "(" + " AND ".join(tests) + ")" if tests else "TRUE"


def deleted_expr(dialect: str, mapping: PlatformMapping, kind: str, alias: str) -> str:
    """The condition that the ``kind`` row named ``alias`` is soft-deleted: its flag's text is among
    ``soft_delete.deleted`` (``FALSE`` without a soft delete; never ``NULL``)."""
    dialect = dialect_of(dialect)
    sd = _km(mapping, kind).soft_delete
    if sd is None or not sd.deleted:
        return "FALSE"
    column = _col(dialect, alias, sd.column)
    return f"({column} IS NOT NULL AND {_cmp_text(dialect, column)} IN ({_in_list(dialect, sd.deleted)}))"


def watched_columns(mapping: PlatformMapping, kind: str) -> list[str]:
    """The platform columns of ``kind`` whose change a trigger must see, each once: the key, the columns of the
    synced fields (:data:`regsync.db.models.SYNCED_COLUMNS`: the fields pushed to the registry), the scope's and
    the soft delete's. Columns of fields that are read but not synced (``updated_at``, ``remark``,
    ``registered_at``, ``id_number_norm``) are not watched: a platform that stamps ``gxsj`` on every update
    queues nothing by that alone."""
    km = _km(mapping, kind)
    synced = SYNCED_COLUMNS[TABLES[kind]]
    out = [km.key, *(fm.column for name, fm in km.fields.items() if name in synced and fm.column is not None),
           *(rule.column for rule in km.scope)]
    if km.soft_delete is not None:
        out.append(km.soft_delete.column)
    return list(dict.fromkeys(out))
