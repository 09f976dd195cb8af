"""The names of regsync's own tables, and the table prefix that keeps them beside a SQLite platform's (issue 14).

On PostgreSQL regsync's tables live in a schema of their own (the first schema of the URL's ``search_path``) and on
MySQL/MariaDB in a database of their own; the platform's tables are elsewhere. A SQLite file has one namespace, and
a trigger may only write to tables of its own file (https://www.sqlite.org/lang_createtrigger.html, "Cautions"),
so beside a mapped SQLite platform regsync's tables and indexes take a prefix instead (``database.table_prefix``,
``regsync_`` by default there): ``regsync_outbox``, ``regsync_link``…

How: every regsync table is declared with an :class:`OwnName` (:func:`own`), the reference tables too: beside a
mapped platform, their names are regsync's canonical views of the platform's tables (:mod:`regsync.db.mapping.ddl`),
regsync's objects as well, and a prefix is never set with the reference tables themselves. An engine made with a prefix
(:func:`apply_prefix`, called by :func:`regsync.db.session.make_engine`) gets an identifier preparer that writes
every :class:`OwnName` and the indexes of those tables with the prefix, in every statement SQLAlchemy and Alembic
compile for it (queries, DDL, reflection); an engine without one writes them as declared. Raw SQL names
regsync's tables and views with :func:`own_sql`. The platform's own tables are never prefixed.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, Index
from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import quoted_name

from regsync.settings import TABLE_PREFIX_PATTERN


class OwnName(quoted_name):
    """The declared name of one of regsync's own tables (``outbox``), written with the engine's table prefix."""

    __slots__ = ()


def own(name: str) -> OwnName:
    """``name`` marked as one of regsync's own tables, for ``__tablename__``, Alembic's ``version_table`` and
    :func:`own_sql`."""
    return OwnName(name, None)


class _PrefixedPreparer(SQLiteIdentifierPreparer):
    """SQLite's preparer, writing regsync's own tables and their indexes with :attr:`table_prefix`."""

    def __init__(self, dialect: Dialect, prefix: str) -> None:
        super().__init__(dialect)
        self.table_prefix = prefix

    def quote(self, ident: str) -> str:
        if isinstance(ident, OwnName):
            return self.quote_identifier(ident)
        return super().quote(ident)

    def quote_identifier(self, value: str) -> str:
        if isinstance(value, OwnName):
            value = self.table_prefix + value
        return super().quote_identifier(value)

    def format_index(self, index: Index) -> str:
        table = index.table
        if table is None or not isinstance(table.name, OwnName):
            return super().format_index(index)
        name = self.format_constraint(index, _alembic_quote=False)
        assert name is not None
        return super().quote_identifier(self.table_prefix + name)


def apply_prefix(engine: Engine, prefix: str) -> Engine:
    """Make ``engine`` (SQLite) write regsync's own tables with ``prefix``; ``""`` leaves it as it is.

    Raises:
        ValueError: a prefix on another engine than SQLite, or one that is not an identifier of at most 31
            characters (letters, digits, ``_``; not starting with a digit).
    """
    if not prefix:
        return engine
    if engine.dialect.name != "sqlite":
        raise ValueError(f"a table prefix is for SQLite only (regsync's tables have a schema or database of their "
                         f"own on {engine.dialect.name}); got {prefix!r}")
    if not re.fullmatch(TABLE_PREFIX_PATTERN, prefix):
        raise ValueError(f"table prefix {prefix!r} is not an identifier of at most 31 letters, digits and _")
    engine.dialect.identifier_preparer = _PrefixedPreparer(engine.dialect, prefix)
    return engine


def table_prefix(bind: Engine | Connection | Dialect) -> str:
    """The prefix of regsync's own tables on ``bind``'s store (``""``: none)."""
    dialect: Any = bind if isinstance(bind, Dialect) else bind.dialect
    return str(getattr(dialect.identifier_preparer, "table_prefix", ""))


def own_sql(bind: Engine | Connection | Dialect, name: str) -> str:
    """Regsync's table (or index) ``name`` as raw SQL on ``bind``'s store: ``outbox``, or ``"regsync_outbox"``."""
    dialect: Any = bind if isinstance(bind, Dialect) else bind.dialect
    return str(dialect.identifier_preparer.quote(own(name)))


class Names:
    """Regsync's tables and views as raw SQL on one store: ``n = names(conn); f"FROM {n.outbox} o"``, or
    ``n[TABLES[kind]]``."""

    __slots__ = ("_preparer",)

    def __init__(self, dialect: Any) -> None:
        self._preparer = dialect.identifier_preparer

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return str(self._preparer.quote(own(name)))

    def __getitem__(self, name: str) -> str:
        return str(self._preparer.quote(own(name)))


def names(bind: Engine | Connection | Dialect) -> Names:
    """:class:`Names` of ``bind``'s store."""
    return Names(bind if isinstance(bind, Dialect) else bind.dialect)


def own_format(bind: Engine | Connection | Dialect, template: str) -> str:
    """``template`` with each ``{name}`` of regsync's tables and views written as ``bind``'s store names them:
    ``own_format(conn, "SELECT id FROM {volunteer} WHERE …")``."""
    return template.format_map(names(bind))


__all__ = ["Names", "OwnName", "apply_prefix", "names", "own", "own_format", "own_sql", "table_prefix"]
