"""The SQL a mapping installs on a platform's database: the canonical views and the capture triggers (issue 14).

For each kind, ``regsync platform install`` makes two things from the mapping:

* **A view** in regsync's own namespace (PostgreSQL: the schema first on regsync's ``search_path``; MySQL/MariaDB:
  regsync's database; SQLite: the same file), named as the reference table (``organization``, ``volunteer``…), whose
  columns are the kind's canonical fields computed from the platform's columns (:mod:`regsync.db.mapping.sql`):
  value maps, formats, units, lists, references as local ids. It shows the rows in scope and not soft-deleted. The
  flows read the platform's records through these views, as they read the reference tables; a string key reads as
  the integer local id ``platform_key`` gives it.
* **Capture triggers** on the platform's table, which queue an outbox row in the transaction of the platform's
  change, exactly as the reference triggers do (:mod:`regsync.db.triggers`: priorities, ``reuse``, no echo while
  ``outbox_suppress`` holds a row), with the mapping's meaning of a change:

  ========================================  ==========================================================
  platform change                           queued
  ========================================  ==========================================================
  insert of a row in scope, not deleted     ``insert`` (``reuse`` when the key is linked already)
  update of a watched column                ``update``; a change of the platform's own columns that the
                                            mapping does not read (``gxsj``…) queues nothing
  soft delete (flag set), physical delete   ``delete``
  flag cleared, row back in scope           ``insert`` (``reuse`` when linked)
  row leaves the scope (not deleted)        a ``failed`` row with code ``OUT_OF_SCOPE``, listed for an
                                            operator; nothing is ended in the registry by it alone
  key changed                               the old key ``delete``, the new key ``insert``
  ========================================  ==========================================================

  A string key gets its ``platform_key`` row in the same trigger (never under the suppression: regsync's own
  inserts need one too).

Every statement is generated for one dialect (``sqlite``, ``postgresql``, ``mysql``) with the identifiers quoted by
SQLAlchemy's preparer; the trigger bodies name regsync's tables qualified (:class:`Place`), because the platform's
own programs, whose writes fire them, do not have regsync's schema on their search path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from regsync.db.mapping import sql
from regsync.db.mapping.model import CANONICAL, KindMap, PlatformMapping
from regsync.db.models import TABLES
from regsync.db.triggers import op_sql, priority_sql

#: The code of the outbox row queued when a row leaves the mapping's scope.
OUT_OF_SCOPE = "OUT_OF_SCOPE"


@dataclass(frozen=True, slots=True)
class Place:
    """Where regsync's own objects are, for one installation.

    Attributes:
        dialect: ``sqlite``, ``postgresql`` or ``mysql``.
        own: regsync's PostgreSQL schema or MySQL/MariaDB database (``None`` on SQLite: the same file).
        platform: the schema or database of the platform's tables that the mapping names without one (``None``: as
            the mapping names them).
        prefix: on SQLite, the prefix of regsync's tables and views in the platform's file
            (:mod:`regsync.db.own`); ``""`` elsewhere.
    """

    dialect: str
    own: str | None = None
    platform: str | None = None
    prefix: str = ""

    def quote(self, name: str) -> str:
        """``name`` quoted for this dialect where it needs it."""
        return sql.quote(self.dialect, name)

    def own_name(self, name: str) -> str:
        """The qualified name of regsync's object ``name`` (``"regsync".outbox``, ``regsync_outbox`` with a
        prefix)."""
        name = self.prefix + name
        return f"{self.quote(self.own)}.{self.quote(name)}" if self.own else self.quote(name)

    def own_dotted(self, name: str) -> str:
        """Regsync's object ``name`` qualified, unquoted (``regsync.platform_key``), as :mod:`regsync.db.mapping.sql`
        takes table names."""
        name = self.prefix + name
        return f"{self.own}.{name}" if self.own else name

    def platform_table(self, table: str) -> str:
        """A mapping's table name, qualified with :attr:`platform` when the mapping gives no schema (unquoted
        dotted form, as the mapping spells names)."""
        if "." in table or not self.platform:
            return table
        return f"{self.platform}.{table}"


@dataclass(frozen=True, slots=True, order=True)
class KeyColumn:
    """A string key's column as the engine's catalog declares it (read at install:
    :func:`regsync.db.mapping.install.key_columns`), so that a view joins the platform's row with its
    ``platform_key`` row by the key's own index (:meth:`_Kind.key_join`).

    Attributes:
        type: SQLite: its declared type (``VARCHAR(20)``); text affinity lets the join compare it as it is.
        charset: MySQL/MariaDB: its character set (``utf8mb4``).
        collation: MySQL/MariaDB: its collation (``utf8mb4_general_ci``).
    """

    type: str = ""
    charset: str | None = None
    collation: str | None = None


_NAME = re.compile(r"[A-Za-z0-9_]+")


def _text_affinity(declared: str) -> bool:
    """Whether a SQLite column declared ``declared`` has text affinity (sqlite.org/datatype3.html, 3.1)."""
    t = declared.upper()
    return "INT" not in t and any(word in t for word in ("CHAR", "CLOB", "TEXT"))


def placed(mapping: PlatformMapping, place: Place) -> PlatformMapping:
    """``mapping`` with every table qualified by ``place.platform`` where it names none."""
    kinds = {k: km.model_copy(update={"table": place.platform_table(km.table)}) for k, km in mapping.kinds.items()}
    return mapping.model_copy(update={"kinds": kinds})


def _quoted_table(place: Place, table: str) -> str:
    return sql.quote_table(place.dialect, table)


def _now(dialect: str) -> str:
    return {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')", "postgresql": "(now() AT TIME ZONE 'UTC')",
            "mysql": "UTC_TIMESTAMP(6)"}[dialect]


def _distinct(dialect: str, a: str, b: str) -> str:
    if dialect == "sqlite":
        return f"{a} IS NOT {b}"
    if dialect == "postgresql":
        return f"{a} IS DISTINCT FROM {b}"
    return f"NOT ({a} <=> {b})"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Kind:
    """The SQL pieces of one kind's triggers and view."""

    def __init__(self, place: Place, mapping: PlatformMapping, kind: str, key_column: KeyColumn | None = None) -> None:
        self.place = place
        self.mapping = mapping
        self.kind = kind
        self.key_column = key_column
        self.km: KindMap = mapping.kind(kind)
        self.d = place.dialect
        self.key_table = place.own_name("platform_key")
        self.key_dotted = place.own_dotted("platform_key")
        self.table = _quoted_table(place, self.km.table) if self.km.mapped else ""

    # ---------------------------------------------------------------------------------------- row pieces
    def col(self, ref: str, field: str) -> str:
        return sql.read_expr(self.d, self.mapping, self.kind, field, ref, key_table=self.key_dotted)

    def local_id(self, ref: str) -> str:
        return sql.key_expr(self.d, self.mapping, self.kind, ref, key_table=self.key_dotted)

    def key(self, ref: str) -> str:
        return f"{ref}.{self.place.quote(self.km.key)}"

    def key_text(self, ref: str) -> str:
        """The row's key as the text ``platform_key.key_value`` holds (its index usable)."""
        return sql.key_text(self.d, self.key(ref))

    def key_join(self, ref: str) -> str:
        """The view's join of the row ``ref``'s string key with its ``platform_key`` row ``k``.

        Written so that a record read by id (``k`` by its local id) finds the platform's row by the key's index,
        not by a scan:

        * SQLite, a column of text affinity: compared as it is (a ``CAST`` hides the column from its index);
        * MySQL/MariaDB: ``k``'s key converted to the column's character set and collation finds the row by the
          index, then compared byte for byte (a case-insensitive collation would take ``x1`` for ``X1``); as it is
          when the column is ``utf8mb4_bin`` like ``k``'s;
        * otherwise (PostgreSQL, whose cast of ``varchar`` to ``text`` keeps the index; an untyped SQLite column,
          a column the catalog said nothing of) the key as text (:meth:`key_text`).
        """
        col = self.key_column
        if col is not None and self.d == "sqlite" and _text_affinity(col.type):
            return f"k.key_value = {self.key(ref)}"
        if col is not None and self.d == "mysql" and col.charset and col.collation and _NAME.fullmatch(
                col.charset) and _NAME.fullmatch(col.collation):
            if (col.charset, col.collation) == ("utf8mb4", "utf8mb4_bin"):
                return f"k.key_value = {self.key(ref)}"
            return (f"{self.key(ref)} = CONVERT(k.key_value USING {col.charset}) COLLATE {col.collation} "
                    f"AND k.key_value = {self.key_text(ref)}")
        return f"k.key_value = {self.key_text(ref)}"

    def visible(self, ref: str) -> str:
        scope = sql.in_scope_expr(self.d, self.mapping, self.kind, ref)
        deleted = sql.deleted_expr(self.d, self.mapping, self.kind, ref)
        return f"((CASE WHEN {scope} THEN 1 ELSE 0 END) = 1 AND {self.deleted(ref, deleted)} = 0)"

    def deleted(self, ref: str, expr: str | None = None) -> str:
        expr = expr or sql.deleted_expr(self.d, self.mapping, self.kind, ref)
        return f"(CASE WHEN {expr} THEN 1 ELSE 0 END)"

    def changed(self) -> str:
        cols = sql.watched_columns(self.mapping, self.kind)
        q = self.place.quote
        return "(" + " OR ".join(_distinct(self.d, f"OLD.{q(c)}", f"NEW.{q(c)}") for c in cols) + ")"

    # ---------------------------------------------------------------------------------------- statements
    def queue(self, ref: str, op: str, when: str, *, prio_op: str | None = None, state: str = "pending",
              code: str | None = None, error: str | None = None) -> str:
        """``INSERT INTO outbox … SELECT … WHERE`` one outbox row for the row ``ref`` when ``when`` holds."""
        own = self.place.own_name
        lid = self.local_id(ref)
        op_expr = op_sql(self.kind, ref, op, local_id=lid, link=own("link"), outbox=own("outbox"))
        prio = priority_sql(self.kind, ref, prio_op or op, col=lambda name: self.col(ref, name))
        now = _now(self.d)
        dual = " FROM DUAL" if self.d == "mysql" else ""
        return (f"INSERT INTO {own('outbox')} (entity, local_id, op, priority, state, attempts, created_at, "
                f"available_at, last_code, last_error) "
                f"SELECT '{self.kind}', {lid}, {op_expr}, {prio}, '{state}', 0, {now}, {now}, "
                f"{_lit(code) if code else 'NULL'}, {_lit(error) if error else 'NULL'}{dual} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {own('outbox_suppress')}) AND {when}")

    def key_upsert(self, ref: str) -> list[str]:
        """The ``platform_key`` row of a string key (none for an integer key)."""
        if self.km.key_type != "string":
            return []
        kt, key = self.key_table, self.key(ref)
        values = f"'{self.kind}', {self.key_text(ref)}"
        if self.d == "sqlite":
            return [f"INSERT OR IGNORE INTO {kt} (entity, key_value) SELECT {values} WHERE {key} IS NOT NULL"]
        if self.d == "postgresql":
            return [f"INSERT INTO {kt} (entity, key_value) SELECT {values} WHERE {key} IS NOT NULL "
                    "ON CONFLICT DO NOTHING"]
        return [f"INSERT IGNORE INTO {kt} (entity, key_value) SELECT {values} FROM DUAL WHERE {key} IS NOT NULL"]

    def on_insert(self) -> list[str]:
        return [*self.key_upsert("NEW"), self.queue("NEW", "insert", self.visible("NEW"))]

    def on_delete(self) -> list[str]:
        return [*self.key_upsert("OLD"), self.queue("OLD", "delete", self.visible("OLD"))]

    def on_update(self) -> list[str]:
        old_v, new_v = self.visible("OLD"), self.visible("NEW")
        key_moved = _distinct(self.d, self.key("OLD"), self.key("NEW"))
        same = f"NOT ({key_moved})"
        error = (f"the row left the scope of mapping {self.mapping.name} ({self.km.table}); it is no longer synced, "
                 "and nothing was ended in the registry")
        return [
            *self.key_upsert("OLD"), *self.key_upsert("NEW"),
            # a key changed: the old key's record ends, the new key's is another record
            self.queue("OLD", "delete", f"{key_moved} AND {old_v}"),
            self.queue("NEW", "insert", f"{key_moved} AND {new_v}"),
            self.queue("NEW", "update", f"{same} AND {old_v} AND {new_v} AND {self.changed()}"),
            self.queue("OLD", "delete", f"{same} AND {old_v} AND NOT {new_v} AND {self.deleted('NEW')} = 1"),
            self.queue("NEW", "update", f"{same} AND {old_v} AND NOT {new_v} AND {self.deleted('NEW')} = 0",
                       state="failed", code=OUT_OF_SCOPE, error=error),
            self.queue("NEW", "insert", f"{same} AND NOT {old_v} AND {new_v}"),
        ]

    # ---------------------------------------------------------------------------------------- objects
    def trigger_names(self) -> list[tuple[str, str]]:
        """``(kind of object, name)`` of what :meth:`create` makes, for :func:`drop_ddl`."""
        base = f"regsync_{self.kind}"
        if self.d == "postgresql":
            return [("trigger", base), ("function", f"{base}_outbox")]
        return [("trigger", f"{base}_{ev}") for ev in ("ins", "upd", "del")]

    def create_triggers(self) -> list[str]:
        q = self.place.quote
        base = f"regsync_{self.kind}"
        if self.d == "sqlite":
            return [f"CREATE TRIGGER {q(f'{base}_{ev}')} AFTER {event} ON {self.table} FOR EACH ROW BEGIN "
                    + " ".join(f"{stmt};" for stmt in body) + " END"
                    for ev, event, body in (("ins", "INSERT", self.on_insert()), ("upd", "UPDATE", self.on_update()),
                                            ("del", "DELETE", self.on_delete()))]
        if self.d == "mysql":
            schema = self.km.table.split(".")[0] + "." if "." in self.km.table else ""
            return [f"CREATE TRIGGER {_quoted_table(self.place, schema + f'{base}_{ev}')} AFTER {event} "
                    f"ON {self.table} FOR EACH ROW BEGIN " + " ".join(f"{stmt};" for stmt in body) + " END"
                    for ev, event, body in (("ins", "INSERT", self.on_insert()), ("upd", "UPDATE", self.on_update()),
                                            ("del", "DELETE", self.on_delete()))]
        fn = self.place.own_name(f"{base}_outbox")

        def block(stmts: list[str]) -> str:
            return "\n        ".join(f"{s};" for s in stmts)

        function = f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- regsync's capture of {self.km.table} by mapping {self.mapping.name} (regsync platform install)
    IF TG_OP = 'INSERT' THEN
        {block(self.on_insert())}
    ELSIF TG_OP = 'UPDATE' THEN
        {block(self.on_update())}
    ELSE
        {block(self.on_delete())}
    END IF;
    RETURN NULL;
END
$fn$"""
        trigger = (f"CREATE TRIGGER {q(base)} AFTER INSERT OR UPDATE OR DELETE ON {self.table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {fn}()")
        return [function, trigger]

    def create_view(self) -> str:
        if not self.km.mapped:
            return self.create_empty_view()
        q = self.place.quote
        cols = [f"{self.view_id()} AS {q('id')}"]
        joins = []
        for field in CANONICAL[self.kind]:
            if field == "id_number_norm" and field not in self.km.fields:
                cols.append(f"pn.id_number_norm AS {q(field)}")
                joins.append(f"LEFT JOIN {self.place.own_name('person_norm')} pn ON pn.local_id = {self.view_id()}")
                continue
            if field in self.km.fields:
                cols.append(f"{self.col('t', field)} AS {q(field)}")
            else:
                cols.append(f"NULL AS {q(field)}")
        if self.km.key_type == "string":
            joins.insert(0, f"JOIN {self.key_table} k ON k.entity = '{self.kind}' AND {self.key_join('t')}")
        view = self.place.own_name(TABLES[self.kind])
        return (f"CREATE VIEW {view} AS SELECT " + ", ".join(cols) + f" FROM {self.table} t "
                + " ".join(joins) + f" WHERE {self.visible('t')}")

    def view_id(self) -> str:
        return "k.local_id" if self.km.key_type == "string" else self.key("t")

    def create_empty_view(self) -> str:
        """The view of an optional kind the mapping leaves out (:data:`regsync.db.mapping.model.UNMAPPED`): the
        canonical columns, typed as a mapped kind's view types them, and no row."""
        q = self.place.quote
        cols = [f"{_typed_null(self.d, 'ref')} AS {q('id')}"]
        cols += [f"{_typed_null(self.d, ftype)} AS {q(field)}" for field, (ftype, _req) in CANONICAL[self.kind].items()]
        view = self.place.own_name(TABLES[self.kind])
        dual = " FROM DUAL" if self.d == "mysql" else ""
        return f"CREATE VIEW {view} AS SELECT " + ", ".join(cols) + f"{dual} WHERE 1 = 0"


def _typed_null(dialect: str, ftype: str) -> str:
    """A ``NULL`` of the SQL type a mapped view gives a canonical field of type ``ftype`` (so that an empty view
    compares and joins as a full one does: PostgreSQL types a bare ``NULL`` column as ``text``)."""
    if dialect == "sqlite":
        return "NULL"
    integer = "BIGINT" if dialect == "postgresql" else "SIGNED"
    types = {"ref": integer, "integer": integer, "hours": integer, "date": "DATE",
             "datetime": "TIMESTAMP" if dialect == "postgresql" else "DATETIME",
             "text": "TEXT" if dialect == "postgresql" else "CHAR CHARACTER SET utf8mb4"}
    return f"CAST(NULL AS {types.get(ftype, types['text'])})"


def install_ddl(mapping: PlatformMapping, place: Place, keys: Mapping[str, KeyColumn] | None = None) -> list[str]:
    """Every statement that installs ``mapping`` at ``place``: the views, then the triggers, kind by kind.

    Args:
        mapping: the mapping (its tables as :func:`placed` qualifies them).
        place: where regsync's objects and the platform's tables are.
        keys: kind → its string key's column as the catalog declares it (:class:`KeyColumn`), for the views' joins
            with ``platform_key``; a kind not there is joined by its key as text.
    """
    m = placed(mapping, place)
    out: list[str] = []
    for kind in CANONICAL:
        k = _Kind(place, m, kind, (keys or {}).get(kind))
        out.append(k.create_view())
        if k.km.mapped:
            out += k.create_triggers()
    return out


def installed_objects(mapping: PlatformMapping, place: Place) -> list[dict[str, str]]:
    """What :func:`install_ddl` makes, each ``{"type": view|trigger|function, "name", "table", "kind"}``, so that
    an uninstall drops exactly these (even once the mapping's file has changed)."""
    m = placed(mapping, place)
    out: list[dict[str, str]] = []
    for kind in CANONICAL:
        k = _Kind(place, m, kind)
        out.append({"type": "view", "name": TABLES[kind], "table": "", "kind": kind})
        if not k.km.mapped:
            continue
        out += [{"type": t, "name": n, "table": k.km.table, "kind": kind} for t, n in k.trigger_names()]
    return out


def drop_ddl(objects: list[dict[str, str]], place: Place) -> list[str]:
    """The statements dropping ``objects`` (:func:`installed_objects`), triggers before functions and views."""
    out: list[str] = []
    order = {"trigger": 0, "function": 1, "view": 2}
    for obj in sorted(objects, key=lambda o: order[o["type"]]):
        name = obj["name"]
        if obj["type"] == "view":
            out.append(f"DROP VIEW IF EXISTS {place.own_name(name)}")
        elif obj["type"] == "function":
            out.append(f"DROP FUNCTION IF EXISTS {place.own_name(name)}()")
        elif place.dialect == "postgresql":
            out.append(f"DROP TRIGGER IF EXISTS {place.quote(name)} ON {_quoted_table(place, obj['table'])}")
        elif place.dialect == "mysql" and "." in obj["table"]:
            out.append(f"DROP TRIGGER IF EXISTS {_quoted_table(place, obj['table'].split('.')[0] + '.' + name)}")
        else:
            out.append(f"DROP TRIGGER IF EXISTS {place.quote(name)}")
    return out
