"""The outbox triggers: every insert, update and delete of a synced table queues an outbox row in the
same transaction, on SQLite, PostgreSQL and MySQL/MariaDB (design.md, "Data model").

Rules the triggers keep:

* An ``UPDATE`` that changes no synced column (:data:`regsync.db.models.SYNCED_COLUMNS`) queues nothing;
  columns are compared null-safely (``IS NOT`` on SQLite, ``IS DISTINCT FROM`` on PostgreSQL, ``NOT (… <=> …)`` on
  MySQL/MariaDB).
* While the transaction holds a row in ``outbox_suppress`` (regsync applying the registry's changes),
  nothing is queued: no echo loop.
* Each row gets a ``priority`` that orders the relay's work (design.md, "The three flows", 1): creates of
  what a record refers to first (orgs level by level, a community station before the teams it manages,
  then volunteers, memberships, activities, service records), endings the other way (service records
  revoked and memberships left before the volunteer is deregistered, child orgs dissolved before their
  parent).
* An ``INSERT`` whose id already has a link, or whose id's earlier create is not settled yet (an ``insert`` or
  ``reuse`` row not sent: its answer may have been lost), is queued with ``op`` ``reuse``, not ``insert``: a
  restore or import script deleted a row and inserted another record under the same explicit id, and the key now
  names another record, whose registry record is a new one (design.md's mapping table, "a key deleted and inserted again").
  The relay ends the old registry record, creates the new one under the next ``clientRef`` revision, and only
  then turns the row into an ordinary ``insert`` (:mod:`regsync.flows.outbound`).

Timestamps are UTC. The DDL is generated from a table → columns mapping so that a migration can freeze
the mapping it was written with.

Per engine: SQLite has three triggers per table (``trg_<table>_outbox_insert|update|delete``) with a ``WHEN``;
PostgreSQL one trigger per table calling a PL/pgSQL function (``regsync_outbox_<table>``); MySQL/MariaDB three
triggers per table as on SQLite, each a ``BEGIN IF … THEN INSERT …; END IF; END`` block (one statement each, sent
through the driver as it is: no ``DELIMITER``, which is a client command), with the times from
``UTC_TIMESTAMP(6)``, whatever the session's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text

from regsync.db.models import TABLE_ENTITY
from regsync.domain.projection import ENDED

#: Rank of each org level: what a level refers to has a lower rank.
ORG_LEVEL_RANK: dict[str, int] = {
    "CITY_CORPS": 0, "PROVINCIAL_CORPS": 0,
    "DISTRICT_BRIGADE": 1, "CITY_DETACHMENT": 1,
    "STREET_STATION": 2, "COUNTY_UNIT": 2,
    "COMMUNITY_STATION": 3,
    "GRASSROOTS_TEAM": 4,
}

#: Base priorities; see :func:`priority_sql`.
PRIORITY = {
    "org": 10,           # + level rank (10..14)
    "volunteer": 20,
    "membership": 30,
    "activity": 40,
    "training": 44,        # v1.1: after its org, before its records
    "service_record": 50,
    "training_record": 52,
    "commendation": 56,    # after its subject and the service records a scheme counts (registry-api.md §4.8)
    "evaluation": 57,      # after the activity's service records (§4.9)
    "service_record_end": 60,
    "membership_end": 61,
    "activity_end": 62,
    "training_record_end": 63,
    "evaluation_end": 64,
    "commendation_end": 65,
    "training_end": 66,
    "volunteer_end": 70,
    "org_end": 80,       # + (4 - level rank) (80..84): children first
}


def _rank_case(level: str) -> str:
    whens = " ".join(f"WHEN '{lvl}' THEN {rank}" for lvl, rank in ORG_LEVEL_RANK.items())
    return f"(CASE {level} {whens} ELSE 4 END)"


def priority_sql(entity: str, ref: str, op: str, col: Callable[[str], str] | None = None) -> str:
    """The SQL expression of an outbox row's priority.

    Args:
        entity: the outbox entity name.
        ref: ``NEW`` or ``OLD``.
        op: ``insert``, ``update`` or ``delete``.
        col: the SQL of a canonical field of the row (``level``, ``status``, ``left_on``): by default
            ``{ref}.{field}`` (the reference tables); the triggers made from a mapping give the mapped column's read
            (:mod:`regsync.db.mapping.ddl`).
    """
    c = col or (lambda name: f"{ref}.{name}")
    p = PRIORITY
    if entity == "org":
        start = f"{p['org']} + {_rank_case(c('level'))}"
        end = f"{p['org_end']} + 4 - {_rank_case(c('level'))}"
        if op == "delete":
            return end
        return f"(CASE WHEN {c('status')} = 'DISSOLVED' THEN {end} ELSE {start} END)"
    if entity == "volunteer":
        if op == "delete":
            return str(p["volunteer_end"])
        return f"(CASE WHEN {c('status')} = 'DEREGISTERED' THEN {p['volunteer_end']} ELSE {p['volunteer']} END)"
    if entity == "membership":
        if op == "delete":
            return str(p["membership_end"])
        return f"(CASE WHEN {c('left_on')} IS NOT NULL THEN {p['membership_end']} ELSE {p['membership']} END)"
    if entity == "activity":
        if op == "delete":
            return str(p["activity_end"])
        return f"(CASE WHEN {c('status')} = 'CANCELLED' THEN {p['activity_end']} ELSE {p['activity']} END)"
    if entity in ENDED:  # a record ended by its status: service and training records, trainings, commendations…
        if op == "delete":
            return str(p[f"{entity}_end"])
        return (f"(CASE WHEN {c('status')} = '{ENDED[entity]}' THEN {p[f'{entity}_end']} "
                f"ELSE {p[entity]} END)")
    raise ValueError(f"unknown entity {entity!r}")


def op_sql(entity: str, ref: str, op: str, reuse: bool = True, *, local_id: str | None = None,
           link: str = "link", outbox: str = "outbox") -> str:
    """The SQL expression of an outbox row's ``op``: for an insert whose id already has a link or an unsettled create
    (the key used again for another record), ``'reuse'``; else the operation's own name.

    Args:
        entity: the outbox entity name.
        ref: ``NEW`` or ``OLD``.
        op: ``insert``, ``update`` or ``delete``.
        reuse: whether a key used again is told apart (``False``: the triggers of migrations 0001 to 0006).
        local_id: the SQL of the row's local id (default ``{ref}.id``).
        link: the link table's name as the trigger names it (qualified beside a mapped platform).
        outbox: the outbox table's name, likewise.
    """
    if op != "insert" or not reuse:
        return f"'{op}'"
    lid = local_id or f"{ref}.id"
    return (f"(CASE WHEN EXISTS (SELECT 1 FROM {link} lk WHERE lk.entity = '{entity}' AND lk.local_id = {lid}) "
            f"OR EXISTS (SELECT 1 FROM {outbox} o WHERE o.entity = '{entity}' AND o.local_id = {lid} "
            "AND o.op IN ('insert', 'reuse') AND o.state <> 'sent') THEN 'reuse' ELSE 'insert' END)")


def _sqlite_ddl(table: str, entity: str, columns: Sequence[str], reuse: bool = True) -> list[str]:
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    insert = ("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, available_at) "
              "VALUES ('{entity}', {ref}.id, {op}, {prio}, 'pending', 0, {now}, {now});")
    guard = "NOT EXISTS (SELECT 1 FROM outbox_suppress)"
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    out = []
    for op, ref, when in (("insert", "NEW", guard), ("update", "NEW", f"{guard} AND ({changed})"),
                          ("delete", "OLD", guard)):
        body = insert.format(entity=entity, ref=ref, op=op_sql(entity, ref, op, reuse),
                             prio=priority_sql(entity, ref, op), now=now)
        out.append(f"CREATE TRIGGER trg_{table}_outbox_{op} AFTER {op.upper()} ON {table} "
                   f"FOR EACH ROW WHEN {when} BEGIN {body} END")
    return out


def _postgres_ddl(table: str, entity: str, columns: Sequence[str], reuse: bool = True) -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    now = "(now() AT TIME ZONE 'UTC')"

    def ins(ref: str, op: str) -> str:
        return ("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, available_at) "
                f"VALUES ('{entity}', {ref}.id, {op_sql(entity, ref, op, reuse)}, {priority_sql(entity, ref, op)}, "
                "'pending', 0, "
                f"{now}, {now});")

    function = f"""
CREATE OR REPLACE FUNCTION regsync_outbox_{table}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- regsync applying the registry's changes: do not queue them back (no echo loop)
    IF EXISTS (SELECT 1 FROM outbox_suppress) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        {ins('NEW', 'insert')}
    ELSIF TG_OP = 'UPDATE' THEN
        -- only a change of a synced column is queued
        IF {changed} THEN
            {ins('NEW', 'update')}
        END IF;
    ELSE
        {ins('OLD', 'delete')}
    END IF;
    RETURN NULL;
END
$fn$"""
    trigger = (f"CREATE TRIGGER trg_{table}_outbox AFTER INSERT OR UPDATE OR DELETE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION regsync_outbox_{table}()")
    return [function, trigger]


def _mysql_ddl(table: str, entity: str, columns: Sequence[str], reuse: bool = True) -> list[str]:
    now = "UTC_TIMESTAMP(6)"
    guard = "NOT EXISTS (SELECT 1 FROM outbox_suppress)"  # regsync applying the registry's changes: no echo loop
    changed = " OR ".join(f"NOT (OLD.{c} <=> NEW.{c})" for c in columns)  # only a change of a synced column
    out = []
    for op, ref, when in (("insert", "NEW", guard), ("update", "NEW", f"{guard} AND ({changed})"),
                          ("delete", "OLD", guard)):
        body = ("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, available_at) "
                f"VALUES ('{entity}', {ref}.id, {op_sql(entity, ref, op, reuse)}, {priority_sql(entity, ref, op)}, "
                f"'pending', 0, {now}, {now});")
        out.append(f"CREATE TRIGGER trg_{table}_outbox_{op} AFTER {op.upper()} ON {table} FOR EACH ROW "
                   f"BEGIN IF {when} THEN {body} END IF; END")
    return out


def trigger_ddl(dialect: str, synced_columns: Mapping[str, Sequence[str]], *, reuse: bool = True) -> list[str]:
    """The DDL statements creating the outbox triggers of every table in ``synced_columns``.

    Args:
        dialect: ``sqlite``, ``postgresql`` or ``mysql`` (MySQL 8 and MariaDB; ``mariadb`` is taken as ``mysql``).
        synced_columns: table name → the columns whose change is queued.
        reuse: queue an insert of a linked id as ``reuse`` (migration 0007; ``False``: the triggers before it).

    Raises:
        ValueError: another dialect.
    """
    out: list[str] = []
    for table, columns in synced_columns.items():
        entity = TABLE_ENTITY[table]
        if dialect == "sqlite":
            out += _sqlite_ddl(table, entity, columns, reuse)
        elif dialect == "postgresql":
            out += _postgres_ddl(table, entity, columns, reuse)
        elif dialect in ("mysql", "mariadb"):
            out += _mysql_ddl(table, entity, columns, reuse)
        else:
            raise ValueError(f"outbox triggers are written for sqlite, postgresql and mysql, not {dialect}")
    return out


def drop_trigger_ddl(dialect: str, tables: Sequence[str]) -> list[str]:
    """The DDL statements dropping the outbox triggers of ``tables`` (for downgrades)."""
    out: list[str] = []
    for table in tables:
        if dialect in ("sqlite", "mysql", "mariadb"):
            out += [f"DROP TRIGGER IF EXISTS trg_{table}_outbox_{op}" for op in ("insert", "update", "delete")]
        else:
            out += [f"DROP TRIGGER IF EXISTS trg_{table}_outbox ON {table}",
                    f"DROP FUNCTION IF EXISTS regsync_outbox_{table}()"]
    return out


def create_triggers(conn: Connection, synced_columns: Mapping[str, Sequence[str]]) -> None:
    """Create the outbox triggers on ``conn`` (inside its transaction)."""
    for stmt in trigger_ddl(conn.dialect.name, synced_columns):
        conn.execute(text(stmt))


def row_priority(kind: str, row: Mapping[str, Any]) -> int:
    """The outbox priority (an int, lower first) of an update of ``row`` of ``kind``, by the triggers' own rule
    (:func:`priority_sql`): parents before children, endings after creates, an ended org after its children."""
    p = PRIORITY
    if kind == "org":
        rank = ORG_LEVEL_RANK.get(row.get("level") or "", 4)
        return p["org_end"] + 4 - rank if row.get("status") == "DISSOLVED" else p["org"] + rank
    if kind == "membership":
        return p["membership_end"] if row.get("left_on") is not None else p["membership"]
    ended = row.get("status") == ENDED[kind]
    return p[f"{kind}_end"] if ended else p[kind]


def ending_priority(kind: str, base: Mapping[str, Any]) -> int:
    """The outbox priority of the ending of a record whose last agreed state is ``base`` (the triggers' rule for a
    delete, :func:`priority_sql`: endings after creates, child orgs before their parent)."""
    if kind == "org":
        return PRIORITY["org_end"] + 4 - ORG_LEVEL_RANK.get(base.get("level") or "", 4)
    return PRIORITY[f"{kind}_end"]
