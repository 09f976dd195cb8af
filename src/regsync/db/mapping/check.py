"""``regsync platform check``: the live schema and data of a province's platform held against its mapping, before
anything is installed (issue 14, items 3, 4 and 6).

:func:`check_platform` reads the platform's catalog (SQLAlchemy's inspector; on MySQL/MariaDB also
``information_schema.COLUMNS`` for each column's character set and collation) and its data (counts and
``GROUP BY`` queries with a ``LIMIT``, never a whole table into Python) and returns every mismatch as a
:class:`Finding`. An ``error`` finding blocks ``regsync platform install``; a ``warning`` or an ``info`` does not.
It prints nothing: the console lays the :class:`CheckReport` out (``regsync.console.platform``), and
``platform install`` refuses while :attr:`CheckReport.errors` is not zero.

The codes (:data:`CODES`):

- the schema: ``MISSING_TABLE``, ``NOT_A_TABLE``, ``MISSING_COLUMN``, ``UNREADABLE_TYPE``, ``KEY_NULL``,
  ``KEY_NOT_UNIQUE``, ``REQUIRED_COLUMN_UNMAPPED``, ``TOO_SHORT``, ``CHARSET``, ``CASE_INSENSITIVE_COLLATION``,
  ``NAME_TAKEN``;
- the data, counted over the rows in scope that are not soft-deleted: ``UNMAPPED_CODE``, ``UNMAPPED_SOFT_DELETE``,
  ``BAD_FORMAT``, ``DANGLING_REF``;
- ``CHECK_FAILED``: a statement of the check itself failed on this database (its error, masked);
- ``KIND_NOT_MAPPED`` (info): an optional kind of registry-api.md v1.1 the mapping leaves out.

Samples of personal fields are masked as everywhere else (:mod:`regsync.domain.masking`; a birth date is shown as
its shape, ``9999/99/99``); codes are not personal.
"""

from __future__ import annotations

import contextlib
import difflib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import SAWarning, SQLAlchemyError

from regsync.db.mapping.check_rules import (
    FREE_TEXT,
    FULL_UNICODE_CHARSETS,
    TEXT_FORMAT_LENGTH,
    accepted_families,
    family,
    is_case_insensitive,
    masker,
    needed_length,
)
from regsync.db.mapping.check_sql import CheckSql, Params, not_deleted, scope_where, where
from regsync.db.mapping.load import REFERENCE, load_mapping, mapping_path
from regsync.db.mapping.model import CANONICAL, OPTIONAL_KINDS, REF_KIND, KindMap, PlatformMapping
from regsync.db.migrate import alembic_config
from regsync.db.models import TABLES, Base
from regsync.db.own import table_prefix
from regsync.domain.kinds import KINDS
from regsync.domain.masking import mask_text
from regsync.settings import DatabaseSettings

#: How much a finding matters: ``error`` blocks ``platform install``; ``warning`` and ``info`` do not.
Severity = Literal["error", "warning", "info"]

#: Every code a finding may carry, with what it means.
CODES: dict[str, str] = {
    "MISSING_TABLE": "the mapped table does not exist",
    "NOT_A_TABLE": "the mapped name is a view: capture triggers need a table",
    "MISSING_COLUMN": "a column the mapping names does not exist",
    "UNREADABLE_TYPE": "a column's type cannot hold its field as mapped",
    "KEY_NULL": "rows whose key is NULL",
    "KEY_NOT_UNIQUE": "a key (or a column references name rows by) that is not unique",
    "REQUIRED_COLUMN_UNMAPPED": "a NOT NULL column without a default that an insert would leave empty",
    "TOO_SHORT": "a character column shorter than what the registry allows for its field",
    "CHARSET": "a text column whose character set cannot hold characters outside the BMP (MySQL/MariaDB)",
    "CASE_INSENSITIVE_COLLATION": "columns compared without letters' case by the database (MySQL/MariaDB)",
    "NAME_TAKEN": "a table where regsync's own tables go already has the name of one of them",
    "UNMAPPED_CODE": "values of a code column the mapping does not map (those records would fail)",
    "UNMAPPED_SOFT_DELETE": "soft-delete values that are neither deleted nor active",
    "BAD_FORMAT": "text dates or times not in their declared format (those records would fail)",
    "DANGLING_REF": "references that name no row of the referred table",
    "CHECK_FAILED": "a statement of the check failed on this database",
    "KIND_NOT_MAPPED": "an optional kind (registry-api.md v1.1) the mapping leaves out: not synced",
}

#: The values a boolean column holds, as a mapping may write them (PostgreSQL's input forms).
_BOOLEAN_TEXT = frozenset({"true", "false", "t", "f", "1", "0", "yes", "no", "y", "n", "on", "off"})

#: How many distinct values a data check reads back (the counts are always whole).
GROUP_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Finding:
    """One mismatch between the platform and the mapping.

    Attributes:
        severity: ``error`` (blocks ``platform install``), ``warning`` or ``info``.
        code: one of :data:`CODES`.
        key: the mapping's key it is about (``kinds.volunteer.fields.gender``), or the setting
            (``database.schema``) for where regsync's own tables go.
        message: what is wrong and what it means, in words (English).
        kind: the kind of record (``volunteer``), or ``None`` for the store as a whole.
        table: the platform's table, as the check found it (schema-qualified when a schema was named).
        column: the column (or columns, comma-separated), if any.
        count: rows concerned, for a finding about the data; ``None`` for the schema.
        samples: a few of the values concerned, masked where the field is personal.
    """

    severity: Severity
    code: str
    key: str
    message: str
    kind: str | None = None
    table: str | None = None
    column: str | None = None
    count: int | None = None
    samples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data (``samples`` a list)."""
        return {"severity": self.severity, "code": self.code, "key": self.key, "kind": self.kind,
                "table": self.table, "column": self.column, "count": self.count, "samples": list(self.samples),
                "message": self.message}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``platform check`` found.

    Attributes:
        mapping: the mapping's ``name``.
        file: the mapping's file.
        engine: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``.
        findings: the findings, by kind (in :data:`~regsync.domain.kinds.KINDS` order; the store's last), errors
            first within a kind.
    """

    mapping: str
    file: str
    engine: str
    findings: tuple[Finding, ...]

    def _count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        """Findings that block ``platform install``."""
        return self._count("error")

    @property
    def warnings(self) -> int:
        """Findings that do not block it."""
        return self._count("warning")

    @property
    def infos(self) -> int:
        """Findings that are only worth knowing."""
        return self._count("info")

    def as_dict(self) -> dict[str, Any]:
        """The report as ``platform check --json`` prints it: ``{"mapping", "file", "engine", "findings",
        "errors", "warnings", "infos"}``."""
        return {"mapping": self.mapping, "file": self.file, "engine": self.engine,
                "findings": [f.as_dict() for f in self.findings], "errors": self.errors,
                "warnings": self.warnings, "infos": self.infos}


def engine_name(bind: Engine | Connection) -> str:
    """The engine's name as reports give it: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
    if bind.dialect.name == "mysql" and getattr(bind.dialect, "is_mariadb", False):
        return "mariadb"
    return str(bind.dialect.name)


def check_configured(engine: Engine, database: DatabaseSettings, mapping: str | None = None) -> CheckReport:
    """Check the platform of the settings: the mapping ``database.mapping`` (or ``mapping``) on ``engine``.

    Args:
        engine: an engine on ``database.url``.
        database: where the platform's tables are (``platform_schema``); regsync's go where ``url`` points (the first
            schema of its PostgreSQL ``search_path``, its MySQL database, the SQLite file).
        mapping: a mapping's name or path, instead of ``database.mapping``.

    Raises:
        regsync.db.mapping.load.MappingError: the mapping cannot be read (exit code 2).
        sqlalchemy.exc.SQLAlchemyError: the database cannot be reached or its catalog read.
    """
    name = mapping or database.mapping
    loaded = load_mapping(name)
    return check_platform(engine, loaded, file=str(mapping_path(name)), platform_schema=database.platform_schema,
                          regsync_schema="")


def check_platform(bind: Engine | Connection, mapping: PlatformMapping, *, file: str = "",
                   platform_schema: str = "", regsync_schema: str = "", samples: int = 3) -> CheckReport:
    """Hold the live schema and data of the platform against ``mapping``; change nothing.

    Args:
        bind: an engine (a connection is opened and closed) or a connection (used as it is; its transaction is
            left as it was, apart from what reads begin).
        mapping: the mapping (:func:`regsync.db.mapping.load.load_mapping`).
        file: the mapping's file, for the report.
        platform_schema: the schema (PostgreSQL) or database (MySQL/MariaDB) of the tables the mapping names
            without one; empty: the connection's default (``database.platform_schema``).
        regsync_schema: the PostgreSQL schema of regsync's own tables; empty: the connection's current schema
            (the first of ``database.url``'s ``search_path``). On MySQL/MariaDB regsync's tables go in the
            connection's database, on SQLite in the same file.
        samples: how many sample values a data finding carries.

    Returns:
        The report; :attr:`CheckReport.errors` is 0 when ``platform install`` may go ahead.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be reached or its catalog read. A data statement
            that fails becomes a ``CHECK_FAILED`` finding instead.
    """
    if isinstance(bind, Connection):
        findings = _Checker(bind, mapping, platform_schema, regsync_schema, samples).run()
    else:
        with bind.connect() as conn:
            findings = _Checker(conn, mapping, platform_schema, regsync_schema, samples).run()
            conn.rollback()
    return CheckReport(mapping=mapping.name, file=file, engine=engine_name(bind), findings=tuple(findings))


@dataclass
class _Table:
    """A mapped table as the catalog describes it."""

    kind: str
    schema: str | None
    name: str
    columns: dict[str, ReflectedColumn]
    pk: list[str]
    unique: list[list[str]]
    folded: bool  # column names compare without case (MySQL/MariaDB, SQLite)
    charsets: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # MySQL: (charset, collation)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def col(self, name: str) -> str | None:
        """The column's name as the catalog spells it, or ``None``."""
        if name in self.columns:
            return name
        if self.folded:
            for actual in self.columns:
                if actual.lower() == name.lower():
                    return actual
        return None

    def fam(self, actual: str) -> str:
        return family(self.columns[actual]["type"])

    def is_unique(self, actual: str) -> bool:
        return [actual] == self.pk or [actual] in self.unique

    def is_not_null(self, actual: str, dialect: str) -> bool:
        col = self.columns[actual]
        if not col.get("nullable", True):
            return True
        # a primary key is NOT NULL, except SQLite's other than INTEGER PRIMARY KEY (a quirk of SQLite's)
        return [actual] == self.pk and (dialect != "sqlite" or self.fam(actual) == "integer")


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _regsync_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {rev.revision for rev in script.walk_revisions()}


class _CheckerBase:
    """What every check of one run on one connection shares: the findings so far, the tables reflected, and the
    helpers that add a finding or run a statement under a savepoint."""

    def __init__(self, conn: Connection, mapping: PlatformMapping, platform_schema: str, regsync_schema: str,
                 samples: int) -> None:
        self.conn = conn
        self.mapping = mapping
        self.platform_schema = platform_schema or None
        self.regsync_schema = regsync_schema or None
        self.samples = samples
        self.sql = CheckSql(conn)
        self.dialect = conn.dialect.name
        self.insp = inspect(conn)
        self.findings: list[Finding] = []
        self.tables: dict[str, _Table] = {}
        self.bad_fields: set[tuple[str, str]] = set()  # a field's column missing or of the wrong type
        self.bad_kinds: set[str] = set()  # the key, a scope or the soft-delete column missing: no data checks
        self.unique_checked: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------------------------------------- helpers
    def add(self, severity: Severity, code: str, key: str, message: str, *, kind: str | None = None,
            table: _Table | str | None = None, column: str | None = None, count: int | None = None,
            samples: Sequence[str] = ()) -> None:
        name = table.display if isinstance(table, _Table) else table
        self.findings.append(Finding(severity, code, key, message, kind, name, column, count, tuple(samples)))

    def kinds(self) -> Iterator[tuple[str, KindMap]]:
        for kind in KINDS:
            km = self.mapping.kinds.get(kind)  # type: ignore[call-overload]
            if km is not None:
                yield kind, km

    @contextlib.contextmanager
    def guard(self, key: str, kind: str, table: _Table, column: str | None) -> Iterator[None]:
        """Run a data statement; its failure is a ``CHECK_FAILED`` finding, and the next statements still run (on
        PostgreSQL in a savepoint, which a failed statement would otherwise leave aborted)."""
        savepoint = self.conn.begin_nested() if self.dialect == "postgresql" else None
        try:
            yield
        except SQLAlchemyError as exc:
            if savepoint is not None:
                savepoint.rollback()
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            self.add("error", "CHECK_FAILED", key, mask_text(f"the check could not read this: {first}"),
                     kind=kind, table=table, column=column)
        else:
            if savepoint is not None:
                savepoint.commit()

    def scalar(self, sql: str, params: Params) -> int:
        return int(self.conn.execute(text(sql), params.values).scalar() or 0)

    def live(self, kind: str, params: Params, alias: str = "") -> list[str]:
        """The conditions of the rows in scope and not soft-deleted."""
        km = self.mapping.kind(kind)
        t = self.tables[kind]
        fams = {rule.column: t.fam(t.col(rule.column) or rule.column) for rule in km.scope}
        rules = [r.model_copy(update={"column": t.col(r.column) or r.column}) for r in km.scope]
        out = scope_where(self.sql, rules, fams, params, alias)
        if km.soft_delete is not None:
            actual = t.col(km.soft_delete.column) or km.soft_delete.column
            out.append(not_deleted(self.sql, actual, km.soft_delete.deleted, t.fam(actual), params, alias))
        return out

class _SchemaChecks(_CheckerBase):
    """The checks of the live schema against the mapping (tables, columns, types, keys, charsets, lengths, required
    columns)."""

    def reflect(self, kind: str, km: KindMap) -> None:
        schema, _, name = km.table.rpartition(".")
        where_ = schema or self.platform_schema
        shown = f"{where_}.{name}" if where_ else name
        key = f"kinds.{kind}.table"
        try:
            views = self.insp.get_view_names(where_)
        except SQLAlchemyError:  # the schema or database itself does not exist: MISSING_TABLE below
            views = []
        if name in views:
            self.add("error", "NOT_A_TABLE", key, f"{shown} is a view: capture triggers need a table", kind=kind,
                     table=shown)
            return
        if not self.insp.has_table(name, schema=where_):
            try:
                hint = _did_you_mean(name, self.insp.get_table_names(where_))
            except SQLAlchemyError:  # the schema or database itself does not exist
                hint = f" (no schema or database {where_})"
            self.add("error", "MISSING_TABLE", key, f"no table {shown}{hint}", kind=kind, table=shown)
            return
        with warnings.catch_warnings():  # SQLite: a type name SQLAlchemy does not know reflects as NullType
            warnings.simplefilter("ignore", SAWarning)
            columns = self.insp.get_columns(name, schema=where_)
        pk = list(self.insp.get_pk_constraint(name, schema=where_).get("constrained_columns") or [])
        unique = [list(u["column_names"]) for u in self.insp.get_unique_constraints(name, schema=where_)]
        for ix in self.insp.get_indexes(name, schema=where_):
            partial = any(k.endswith("_where") and v is not None for k, v in (ix.get("dialect_options") or {}).items())
            if ix.get("unique") and not partial:
                unique.append([c for c in ix["column_names"] if c is not None])
        t = _Table(kind, where_, name, {c["name"]: c for c in columns}, pk, unique,
                   folded=self.dialect in ("mysql", "sqlite"))
        if self.dialect == "mysql":
            rows = self.conn.execute(text(
                "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name"),
                {"schema": where_, "name": name})
            t.charsets = {r[0]: (r[1], r[2]) for r in rows}
        self.tables[kind] = t

    def need_column(self, kind: str, t: _Table, column: str, key: str, what: str) -> str | None:
        actual = t.col(column)
        if actual is None:
            self.add("error", "MISSING_COLUMN", key,
                     f"{t.display} has no column {column} ({what})" + _did_you_mean(column, list(t.columns)),
                     kind=kind, table=t, column=column)
        return actual

    def columns_exist(self, kind: str, km: KindMap) -> None:
        t = self.tables[kind]
        if self.need_column(kind, t, km.key, f"kinds.{kind}.key", "the key") is None:
            self.bad_kinds.add(kind)
        for name, fm in km.fields.items():
            if fm.column is not None and self.need_column(
                    kind, t, fm.column, f"kinds.{kind}.fields.{name}", f"field {name}") is None:
                self.bad_fields.add((kind, name))
        for i, rule in enumerate(km.scope):
            if self.need_column(kind, t, rule.column, f"kinds.{kind}.scope.{i}.column", "a scope rule") is None:
                self.bad_kinds.add(kind)
        if km.soft_delete is not None and self.need_column(
                kind, t, km.soft_delete.column, f"kinds.{kind}.soft_delete.column", "the soft-delete flag") is None:
            self.bad_kinds.add(kind)
        for column in km.defaults:
            self.need_column(kind, t, column, f"kinds.{kind}.defaults.{column}", "a default on insert")
        tests: list[tuple[str, str, list[Any]]] = [
            (f"kinds.{kind}.scope.{i}", r.column, [*(r.in_ or []), *(r.not_in or [])]) for i, r in enumerate(km.scope)]
        if km.soft_delete is not None:
            sd = km.soft_delete
            tests.append((f"kinds.{kind}.soft_delete", sd.column, [*sd.deleted, *([sd.active] if sd.active else [])]))
        for key, column, values in tests:
            actual = t.col(column)
            fam = t.fam(actual) if actual is not None else None
            if actual is None or fam not in ("integer", "numeric", "boolean"):
                continue
            wrong = [str(v) for v in values if not (str(v).lower() in _BOOLEAN_TEXT if fam == "boolean" else
                                                    str(v).lstrip("-").isdigit())]
            if wrong:
                self.add("error", "UNREADABLE_TYPE", key,
                         f"{t.display}.{actual} is {t.columns[actual]['type']}, which never holds "
                         f"{', '.join(map(repr, wrong))}", kind=kind, table=t, column=actual)
                self.bad_kinds.add(kind)

    def types(self, kind: str, km: KindMap) -> None:
        t = self.tables[kind]
        key = t.col(km.key)
        if key is not None:
            fam = t.fam(key)
            want = "integer" if km.key_type == "integer" else "text"
            if fam not in (want, "any"):
                self.add("error", "UNREADABLE_TYPE", f"kinds.{kind}.key",
                         f"{t.display}.{key} is {t.columns[key]['type']} ({fam}); key_type {km.key_type} needs "
                         f"{'an integer' if want == 'integer' else 'a character'} column", kind=kind, table=t,
                         column=key)
                self.bad_kinds.add(kind)
        for name, fm in km.fields.items():
            if fm.column is None or (kind, name) in self.bad_fields or CANONICAL[kind][name][0] == "ref":
                continue
            actual = t.col(fm.column)
            assert actual is not None
            fam = t.fam(actual)
            accepted, needs = accepted_families(kind, name, fm)
            if fam not in accepted and fam != "any":
                self.add("error", "UNREADABLE_TYPE", f"kinds.{kind}.fields.{name}",
                         f"{t.display}.{actual} is {t.columns[actual]['type']} ({fam}); {name} as mapped needs "
                         f"{needs}", kind=kind, table=t, column=actual)
                self.bad_fields.add((kind, name))

    def ref_target(self, kind: str, name: str) -> tuple[_Table, str] | None:
        """The referred table and column of reference field ``name`` of ``kind``, where both exist."""
        km = self.mapping.kind(kind)
        target = REF_KIND[kind][name]
        t2 = self.tables.get(target)
        if t2 is None:
            return None
        column = km.fields[name].ref_column or self.mapping.kind(target).key
        actual = t2.col(column)
        return (t2, actual) if actual is not None else None

    def ref_types(self, kind: str, km: KindMap) -> None:
        t = self.tables[kind]
        for name, fm in km.fields.items():
            if fm.column is None or CANONICAL[kind][name][0] != "ref" or (kind, name) in self.bad_fields:
                continue
            key = f"kinds.{kind}.fields.{name}"
            target = REF_KIND[kind][name]
            t2 = self.tables.get(target)
            if t2 is None:  # its MISSING_TABLE says it
                self.bad_fields.add((kind, name))
                continue
            if fm.ref_column is not None:
                ref_actual = self.need_column(target, t2, fm.ref_column, f"{key}.ref_column",
                                              f"the column {kind}.{name} names {target} rows by")
            else:
                ref_actual = t2.col(self.mapping.kind(target).key)
            if ref_actual is None:
                self.bad_fields.add((kind, name))
                continue
            actual = t.col(fm.column)
            assert actual is not None
            fam, fam2 = t.fam(actual), t2.fam(ref_actual)
            numbers = {"integer", "numeric"}
            if not (fam == fam2 or "any" in (fam, fam2) or {fam, fam2} <= numbers):
                self.add("error", "UNREADABLE_TYPE", key,
                         f"{t.display}.{actual} is {t.columns[actual]['type']} ({fam}) but names {target} rows by "
                         f"{t2.display}.{ref_actual}, {t2.columns[ref_actual]['type']} ({fam2})", kind=kind,
                         table=t, column=actual)
                self.bad_fields.add((kind, name))
                continue
            if fm.ref_column is not None and (target, ref_actual) not in self.unique_checked:
                self.unique_checked.add((target, ref_actual))
                self.unique(target, t2, ref_actual, f"{key}.ref_column",
                            f"{kind}.{name} names {target} rows by it")

    def key(self, kind: str, km: KindMap, t: _Table) -> None:
        actual = t.col(km.key)
        assert actual is not None
        key = f"kinds.{kind}.key"
        if not t.is_not_null(actual, self.dialect):
            with self.guard(key, kind, t, actual):
                p = Params()
                n = self.scalar(f"SELECT COUNT(*) FROM {self.sql.table(t.schema, t.name)} "
                                f"WHERE {self.sql.ident(actual)} IS NULL", p)
                if n:
                    self.add("error", "KEY_NULL", key, f"{n} row(s) of {t.display} have no key ({actual} is NULL): "
                             "regsync cannot name them", kind=kind, table=t, column=actual, count=n)
        self.unique(kind, t, actual, key, "the key")

    def unique(self, kind: str, t: _Table, actual: str, key: str, what: str) -> None:
        """``KEY_NOT_UNIQUE`` when ``actual`` of ``t`` repeats a value: from the catalog's primary key and unique
        constraints and indexes first, counted only where none makes it unique."""
        if t.is_unique(actual):
            return
        col, tbl = self.sql.ident(actual), self.sql.table(t.schema, t.name)
        dups = f"SELECT {col} AS v, COUNT(*) AS n FROM {tbl} WHERE {col} IS NOT NULL GROUP BY {col} HAVING COUNT(*) > 1"
        with self.guard(key, kind, t, actual):
            row = self.conn.execute(text(f"SELECT COUNT(*), SUM(n) FROM ({dups}) d")).one()
            values, rows = int(row[0] or 0), int(row[1] or 0)
            if values:
                shown = [self.show(kind, actual, v) for v in self.conn.execute(
                    text(f"{dups} ORDER BY 1 LIMIT {self.samples}")).scalars()]
                self.add("error", "KEY_NOT_UNIQUE", key,
                         f"{t.display}.{actual} ({what}) is not unique: {rows} rows share {values} value(s), and "
                         "no unique constraint or index holds it", kind=kind, table=t, column=actual, count=rows,
                         samples=shown)

    def show(self, kind: str, actual: str, value: Any) -> str:
        """A sample value of column ``actual`` of ``kind``, masked as its field is."""
        if value is None:
            return "NULL"
        km = self.mapping.kind(kind)
        t = self.tables[kind]
        field_name = next((n for n, fm in km.fields.items() if fm.column and t.col(fm.column) == actual), None)
        return masker(kind, field_name)(str(value))

    def charsets(self, kind: str, km: KindMap, t: _Table) -> None:
        """MySQL/MariaDB: free-text columns whose character set stops short of the whole of Unicode, and the
        columns that are compared (keys, codes, references) under a case-insensitive collation."""
        folded: list[str] = []
        key = t.col(km.key)
        if key is not None and km.key_type == "string" and is_case_insensitive(t.charsets.get(key, (None, None))[1]):
            folded.append(key)
        for name, fm in km.fields.items():
            if fm.column is None or (kind, name) in self.bad_fields:
                continue
            actual = t.col(fm.column)
            assert actual is not None
            charset, collation = t.charsets.get(actual, (None, None))
            ftype = CANONICAL[kind][name][0]
            if name in FREE_TEXT[kind] and charset and charset.lower() not in FULL_UNICODE_CHARSETS:
                writes = fm.write or km.insert
                self.add("error" if writes else "warning", "CHARSET", f"kinds.{kind}.fields.{name}",
                         f"{t.display}.{actual} is {charset}, which cannot hold characters outside the BMP (rare "
                         f"characters of names); " + ("regsync writes the registry's values into it: convert it to "
                                                      "utf8mb4" if writes else
                                                      "regsync never writes it, but such values cannot be there"),
                         kind=kind, table=t, column=actual)
            if ftype in ("code", "ref") and is_case_insensitive(collation) and actual not in folded:
                folded.append(actual)
        for other, okm in self.kinds():  # the columns other kinds' references name rows of this one by
            for rname, rfm in okm.fields.items():
                if CANONICAL[other][rname][0] == "ref" and REF_KIND[other][rname] == kind and rfm.ref_column:
                    actual = t.col(rfm.ref_column)
                    if actual and is_case_insensitive(t.charsets.get(actual, (None, None))[1]) and \
                            actual not in folded:
                        folded.append(actual)
        if folded:
            collations = sorted({str(t.charsets[c][1]) for c in folded})
            self.add("info", "CASE_INSENSITIVE_COLLATION", f"kinds.{kind}",
                     f"{', '.join(folded)} compare without letters' case ({', '.join(collations)}): to the "
                     "database two keys or codes that differ only in case are one; regsync compares in its own "
                     "normalization, never by collation", kind=kind, table=t,
                     column=", ".join(folded))

    def lengths(self, kind: str, km: KindMap, t: _Table) -> None:
        for name, fm in km.fields.items():
            if fm.column is None or (kind, name) in self.bad_fields or not (fm.write or km.insert):
                continue
            actual = t.col(fm.column)
            assert actual is not None
            length = getattr(t.columns[actual]["type"], "length", None)
            need = needed_length(kind, name, fm)
            if t.fam(actual) != "text" or length is None or need is None or length >= need:
                continue
            source = ("the values the mapping writes" if CANONICAL[kind][name][0] == "code" else
                      "the text format" if fm.format in TEXT_FORMAT_LENGTH else "the registry (registry-api.md §4)")
            self.add("warning", "TOO_SHORT", f"kinds.{kind}.fields.{name}",
                     f"{t.display}.{actual} holds {length} characters; {source} may need {need} for {name}: a longer "
                     "value written back would fail or be cut", kind=kind, table=t, column=actual)

    def required(self, kind: str, km: KindMap, t: _Table) -> None:
        mapped = {t.col(km.key)} | {t.col(fm.column) for fm in km.fields.values() if fm.column} | {
            t.col(c) for c in km.defaults}
        if km.soft_delete is not None and km.soft_delete.active is not None:
            mapped.add(t.col(km.soft_delete.column))
        for actual, col in t.columns.items():
            if actual in mapped or col.get("nullable", True) or col.get("default") is not None:
                continue
            if col.get("autoincrement") is True or col.get("identity") or col.get("computed"):
                continue
            if self.dialect == "sqlite" and t.pk == [actual] and t.fam(actual) == "integer":
                continue  # SQLite's rowid
            self.add("error", "REQUIRED_COLUMN_UNMAPPED", f"kinds.{kind}.defaults",
                     f"{t.display}.{actual} is NOT NULL without a default, and the mapping neither maps it nor "
                     f"gives it in kinds.{kind}.defaults: inserting a {kind} (insert = true) would fail",
                     kind=kind, table=t, column=actual)

    # ---------------------------------------------------------------------------------------------- data
class _DataChecks(_SchemaChecks):
    """The checks of the data in scope against the mapping (codes, soft-delete values, text formats, dangling
    references), each counted in SQL."""

    def grouped(self, kind: str, t: _Table, expr: str, conditions: list[str], outside: str,
                params: Params) -> tuple[int, list[tuple[Any, int]]]:
        """The values of text ``expr`` over the rows of ``conditions`` that satisfy ``outside`` (a condition on
        ``v``): the rows counted, and the most frequent values with their counts (at most :data:`GROUP_LIMIT`)."""
        inner = f"SELECT {expr} AS v FROM {self.sql.table(t.schema, t.name)}{where(conditions)}"
        groups = [(r[0], int(r[1])) for r in self.conn.execute(text(
            f"SELECT v, COUNT(*) AS n FROM ({inner}) s WHERE {outside} GROUP BY v ORDER BY n DESC, v "
            f"LIMIT {GROUP_LIMIT}"), params.values)]
        total = sum(n for _v, n in groups)
        if len(groups) == GROUP_LIMIT:
            total = self.scalar(f"SELECT COUNT(*) FROM ({inner}) s WHERE {outside}", params)
        return total, groups

    def codes(self, kind: str, km: KindMap, t: _Table) -> None:
        for name, fm in km.fields.items():
            if fm.column is None or fm.values is None or (kind, name) in self.bad_fields:
                continue
            actual = t.col(fm.column)
            assert actual is not None
            key = f"kinds.{kind}.fields.{name}"
            with self.guard(key, kind, t, actual):
                p = Params()
                conditions = [*self.live(kind, p), f"{self.sql.ident(actual)} IS NOT NULL"]
                outside = f"v NOT IN {p.in_list(list(fm.values))}" if fm.values else "1 = 1"
                total, groups = self.grouped(kind, t, self.sql.as_text(self.sql.ident(actual)), conditions,
                                             outside, p)
                if total:
                    listed = ", ".join(f"{mask_text(str(v))} ({n})" for v, n in groups[:5])
                    self.add("error", "UNMAPPED_CODE", key,
                             f"{total} row(s) in scope hold values of {actual} that {key}.values does not map: "
                             f"{listed}{', …' if len(groups) > 5 else ''}; those records would fail "
                             "(UNMAPPED_VALUE)", kind=kind, table=t, column=actual, count=total,
                             samples=[mask_text(str(v)) for v, _n in groups[:self.samples]])

    def soft_delete_values(self, kind: str, km: KindMap, t: _Table) -> None:
        sd = km.soft_delete
        if sd is None or sd.active is None:
            return
        actual = t.col(sd.column)
        assert actual is not None
        key = f"kinds.{kind}.soft_delete"
        with self.guard(key, kind, t, actual):
            p = Params()
            rules = [r.model_copy(update={"column": t.col(r.column) or r.column}) for r in km.scope]
            conditions = scope_where(self.sql, rules, {r.column: t.fam(r.column) for r in rules}, p)
            known = [str(v) for v in [*sd.deleted, sd.active]]
            total, groups = self.grouped(kind, t, self.sql.as_text(self.sql.ident(actual)), conditions,
                                         f"(v IS NULL OR v NOT IN {p.in_list(known)})", p)
            if total:
                listed = ", ".join(f"{'NULL' if v is None else mask_text(str(v))} ({n})" for v, n in groups[:5])
                self.add("warning", "UNMAPPED_SOFT_DELETE", key,
                         f"{total} row(s) in scope hold values of {actual} that are neither deleted "
                         f"({', '.join(map(str, sd.deleted))}) nor active ({sd.active}): {listed}; regsync reads them "
                         "as not deleted", kind=kind, table=t, column=actual, count=total,
                         samples=["NULL" if v is None else mask_text(str(v)) for v, _n in groups[:self.samples]])

    def formats(self, kind: str, km: KindMap, t: _Table) -> None:
        for name, fm in km.fields.items():
            if fm.column is None or fm.format not in _PATTERNS or (kind, name) in self.bad_fields:
                continue
            actual = t.col(fm.column)
            assert actual is not None
            key = f"kinds.{kind}.fields.{name}"
            glob, regex, parts = _PATTERNS[fm.format]
            with self.guard(key, kind, t, actual):
                p = Params()
                v = self.sql.as_text(self.sql.ident(actual))
                ok = [self.sql.matches(v, glob, regex, p)] + [
                    f"SUBSTR({v}, {start}, 2) BETWEEN {p.add(low)} AND {p.add(high)}" for start, low, high in parts]
                conditions = [*self.live(kind, p), f"{self.sql.ident(actual)} IS NOT NULL",
                              f"NOT ({' AND '.join(ok)})"]
                tbl = self.sql.table(t.schema, t.name)
                n = self.scalar(f"SELECT COUNT(*) FROM {tbl}{where(conditions)}", p)
                if n:
                    shown = [self.show(kind, actual, r) for r in self.conn.execute(text(
                        f"SELECT DISTINCT {v} FROM {tbl}{where(conditions)} ORDER BY 1 LIMIT {self.samples}"),
                        p.values).scalars()]
                    self.add("error", "BAD_FORMAT", key,
                             f"{n} row(s) in scope hold a {name} in {actual} that is not {fm.format}; those records "
                             "would fail", kind=kind, table=t, column=actual, count=n, samples=shown)

    def dangling(self, kind: str, km: KindMap, t: _Table) -> None:
        for name, fm in km.fields.items():
            if fm.column is None or CANONICAL[kind][name][0] != "ref" or (kind, name) in self.bad_fields:
                continue
            found = self.ref_target(kind, name)
            if found is None:
                continue
            t2, ref_actual = found
            actual = t.col(fm.column)
            assert actual is not None
            key = f"kinds.{kind}.fields.{name}"
            with self.guard(key, kind, t, actual):
                p = Params()
                a_col = f"a.{self.sql.ident(actual)}"
                charset, collation = t2.charsets.get(ref_actual, (None, None))
                if t.charsets.get(actual) == (charset, collation):
                    charset = collation = None  # the same: compared as they are
                probe = (f"NOT EXISTS (SELECT 1 FROM {self.sql.table(t2.schema, t2.name)} b "
                         f"WHERE b.{self.sql.ident(ref_actual)} = {self.sql.compare_to(a_col, charset, collation)})")
                conditions = [*self.live(kind, p, "a"), f"{a_col} IS NOT NULL", probe]
                tbl = f"{self.sql.table(t.schema, t.name)} a"
                n = self.scalar(f"SELECT COUNT(*) FROM {tbl}{where(conditions)}", p)
                if n:
                    shown = [self.show(kind, actual, r) for r in self.conn.execute(text(
                        f"SELECT DISTINCT {a_col} FROM {tbl}{where(conditions)} ORDER BY 1 LIMIT {self.samples}"),
                        p.values).scalars()]
                    self.add("warning", "DANGLING_REF", key,
                             f"{n} row(s) in scope hold in {actual} a value that no row of {t2.display} has in "
                             f"{ref_actual} (no such {REF_KIND[kind][name]}): when pushed they wait for it, then fail",
                             kind=kind, table=t, column=actual, count=n, samples=shown)

class _Checker(_DataChecks):
    """One run of the check on one connection; :meth:`run` returns the findings."""

    # ---------------------------------------------------------------------------------------------- the run
    def run(self) -> list[Finding]:
        for kind, km in self.kinds():
            self.reflect(kind, km)
        for kind, km in self.kinds():
            if kind in self.tables:
                self.columns_exist(kind, km)
                self.types(kind, km)
        for kind, km in self.kinds():
            if kind in self.tables:
                self.ref_types(kind, km)
        for kind, km in self.kinds():
            if kind not in self.tables:
                continue
            t = self.tables[kind]
            if kind not in self.bad_kinds:
                self.key(kind, km, t)
            if self.dialect == "mysql":
                self.charsets(kind, km, t)
            if self.dialect != "sqlite":  # SQLite does not hold a column to its declared length
                self.lengths(kind, km, t)
            if km.insert:
                self.required(kind, km, t)
            if kind not in self.bad_kinds:
                self.codes(kind, km, t)
                self.soft_delete_values(kind, km, t)
                self.formats(kind, km, t)
                self.dangling(kind, km, t)
        self.names_taken()
        for kind in KINDS:
            if kind in OPTIONAL_KINDS and kind not in self.mapping.kinds:
                self.add("info", "KIND_NOT_MAPPED", f"kinds.{kind}",
                         f"{kind} is not mapped: the platform's are not synced, and the registry's are listed, not "
                         "written here (registry-api.md v1.1 kinds are optional in a mapping)", kind=kind)
        order = {k: i for i, k in enumerate(KINDS)}
        rank = {"error": 0, "warning": 1, "info": 2}
        return sorted(self.findings, key=lambda f: (order.get(f.kind or "", len(order)), rank[f.severity]))


    # ---------------------------------------------------------------------------------------------- the store
    def names_taken(self) -> None:
        """``NAME_TAKEN`` for a table where regsync's own tables go that has the name of one of them, unless it is
        regsync's own store there already (its ``alembic_version`` at one of regsync's revisions)."""
        if self.dialect == "postgresql":
            schema, setting = self.regsync_schema or self.insp.default_schema_name, "database.url"
        elif self.dialect == "mysql":
            schema, setting = self.insp.default_schema_name, "database.url"
        else:
            schema, setting = None, "database.table_prefix"
        prefix = table_prefix(self.conn)
        try:
            present = set(self.insp.get_table_names(schema)) | set(self.insp.get_view_names(schema))
        except SQLAlchemyError:  # the schema does not exist yet: nothing is taken
            return
        # regsync's tables, and beside a mapped platform the views it makes under the reference tables' names
        reference = self.mapping.name == REFERENCE
        ours = [prefix + n for n in sorted(set(Base.metadata.tables) - (set(TABLES.values()) if reference else set()))
                + ["alembic_version"]]
        if prefix + "alembic_version" in present:
            versions = self.conn.execute(text(
                f"SELECT version_num FROM {self.sql.table(schema, prefix + 'alembic_version')}")).scalars().all()
            if versions and set(versions) <= _regsync_revisions():
                return  # regsync's own store: its tables are its own
        where_, fix = {
            "postgresql": (f"schema {schema}", "; name a schema of regsync's own first on database.url's "
                                               "search_path (?options=-csearch_path%3Dregsync)"),
            "mysql": (f"database {schema}", "; give regsync a database of its own in database.url"),
        }.get(self.dialect, ("the same file", "; set database.table_prefix (REGSYNC_TABLE_PREFIX) to a prefix no "
                                             "table of the platform's begins with"))
        for name in ours:
            if name in present:
                shown = f"{schema}.{name}" if schema and self.dialect != "sqlite" else name
                self.add("error", "NAME_TAKEN", setting,
                         f"{shown} exists and is not regsync's, and regsync's own table {name} goes in {where_}{fix}",
                         table=shown)


#: The text formats of dates and times: SQLite's GLOB, the anchored POSIX expression of PostgreSQL and
#: MySQL/MariaDB, and the two-digit parts held to their ranges (1-based start, lowest, highest). A calendar date
#: that does not exist (``2024-02-30``) passes: the codec refuses it record by record.
_PATTERNS: dict[str, tuple[str, str, tuple[tuple[int, str, str], ...]]] = {
    "YYYY-MM-DD": ("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]", "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                   ((6, "01", "12"), (9, "01", "31"))),
    "YYYYMMDD": ("[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]", "^[0-9]{8}$", ((5, "01", "12"), (7, "01", "31"))),
    "YYYY-MM-DD HH:MM:SS": ("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]",
                            "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
                            ((6, "01", "12"), (9, "01", "31"), (12, "00", "23"), (15, "00", "59"),
                             (18, "00", "59"))),
}
