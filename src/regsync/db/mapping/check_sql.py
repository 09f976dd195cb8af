"""The SQL of ``regsync platform check``, per engine: quoting, a value as exact text, a pattern test, a row filter.

The check reads the platform's data only through statements made here, each a count or a ``GROUP BY`` with a
``LIMIT``: nothing reads a whole table into Python (the house rule). Where engines differ:

* a value as text, compared exactly: ``CAST(x AS TEXT)`` on SQLite and PostgreSQL; on MySQL/MariaDB
  ``CAST(x AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin``, so that a case-insensitive collation does not fold
  ``m`` into ``M`` when codes are grouped;
* a pattern: ``GLOB`` on SQLite, ``~`` on PostgreSQL, ``REGEXP`` on MySQL/MariaDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from regsync.db.mapping.model import ScopeRule


@dataclass
class Params:
    """Bind parameters of one statement, named ``p0``, ``p1`` and so on."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        """A placeholder (``:p3``) bound to ``value``."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def in_list(self, values: Sequence[Any]) -> str:
        """``(:p0, :p1, …)`` for ``values`` (at least one)."""
        return "(" + ", ".join(self.add(v) for v in values) + ")"


class CheckSql:
    """The engine-specific pieces of the check's statements, for the connection's dialect.

    Args:
        conn: the connection the check reads through.
    """

    def __init__(self, conn: Connection) -> None:
        self.dialect = conn.dialect.name
        self._preparer = conn.dialect.identifier_preparer

    def ident(self, name: str) -> str:
        """``name`` quoted as an identifier where it needs to be."""
        return str(self._preparer.quote(name))

    def table(self, schema: str | None, name: str) -> str:
        """A table's name, schema-qualified when ``schema`` is given."""
        return (self.ident(schema) + "." if schema else "") + self.ident(name)

    def as_text(self, expr: str) -> str:
        """``expr`` as text that compares exactly (letters' case kept on every engine)."""
        if self.dialect == "mysql":
            return f"CAST({expr} AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin"
        return f"CAST({expr} AS TEXT)"

    def matches(self, text_expr: str, glob: str, regex: str, params: Params) -> str:
        """Whether text ``text_expr`` matches a pattern: ``glob`` (SQLite's GLOB) or ``regex`` (POSIX, anchored)."""
        if self.dialect == "sqlite":
            return f"{text_expr} GLOB {params.add(glob)}"
        if self.dialect == "postgresql":
            return f"{text_expr} ~ {params.add(regex)}"
        return f"{text_expr} REGEXP {params.add(regex)}"

    def compare_to(self, expr: str, charset: str | None, collation: str | None) -> str:
        """``expr`` converted for an equality with a MySQL/MariaDB text column of ``charset`` and ``collation``
        (that column's index stays usable; two collations of one charset would otherwise be an illegal mix)."""
        if self.dialect != "mysql" or not charset or not collation:
            return expr
        return f"CONVERT({expr} USING {charset}) COLLATE {collation}"


def coerce(value: Any, column_family: str) -> Any:
    """A value of the mapping (text or integer) as a value of a column's family: a digit string for an integer
    column becomes an ``int``, anything for a character column a ``str`` (so PostgreSQL compares like types)."""
    if column_family == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if column_family == "text" and not isinstance(value, str):
        return str(value)
    return value


def scope_where(sql: CheckSql, rules: Sequence[ScopeRule], families: dict[str, str], params: Params,
                alias: str = "") -> list[str]:
    """The conditions of a kind's rows in scope (:class:`~regsync.db.mapping.model.ScopeRule`, all must hold).

    Args:
        sql: the engine's pieces.
        rules: the kind's scope rules.
        families: column name → its family (:func:`regsync.db.mapping.check_rules.family`).
        params: the statement's parameters, added to.
        alias: a table alias to qualify the columns with.
    """
    prefix = f"{alias}." if alias else ""
    out = []
    for rule in rules:
        col = prefix + sql.ident(rule.column)
        fam = families.get(rule.column, "any")
        if rule.in_ is not None:
            out.append(f"{col} IN {params.in_list([coerce(v, fam) for v in rule.in_])}" if rule.in_ else "1 = 0")
        if rule.not_in:
            out.append(f"{col} NOT IN {params.in_list([coerce(v, fam) for v in rule.not_in])}")
        if rule.is_null is not None:
            out.append(f"{col} IS {'' if rule.is_null else 'NOT '}NULL")
    return out


def not_deleted(sql: CheckSql, column: str, deleted: Sequence[Any], fam: str, params: Params,
                alias: str = "") -> str:
    """The condition of a row that a soft-delete ``column`` does not mark deleted (``NULL`` is not deleted)."""
    col = (f"{alias}." if alias else "") + sql.ident(column)
    if not deleted:
        return "1 = 1"
    return f"({col} IS NULL OR {col} NOT IN {params.in_list([coerce(v, fam) for v in deleted])})"


def where(conditions: Sequence[str]) -> str:
    """`` WHERE a AND b`` for the conditions, or nothing."""
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""
