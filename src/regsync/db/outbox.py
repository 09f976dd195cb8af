"""The outbox (发件箱表) as the outbound relay works it: every statement the relay runs on ``outbox``, named for what
it does (design.md, "The three flows", 1; the rows themselves are written by the triggers of
:mod:`regsync.db.triggers`).

A row's life: ``pending`` (or ``deferred`` until ``available_at``) → claimed by a relay (:func:`claim`, a lease in
``claimed_by``/``claimed_until``) → ``sent``, ``failed``, ``blocked`` on a record it refers to, ``deferred`` again,
or ``pending`` again at once (:func:`requeue`); :func:`release` gives claimed rows back untouched. What an operator
holds is set aside (:mod:`regsync.db.holds`).

The statements are written for every engine and for several relays sharing the work: on PostgreSQL and MySQL/MariaDB
the claim locks with ``FOR UPDATE SKIP LOCKED``; on PostgreSQL key lists go as one array parameter
(:func:`in_values`), elsewhere ``IN`` lists of :data:`CHUNK` keys. Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, or_, select, text, update

from regsync.db.holds import set_aside_held
from regsync.db.models import TABLES, Base, Link, Outbox
from regsync.db.own import own_format, own_sql
from regsync.db.query import CHUNK, chunk_size, chunks, in_values
from regsync.db.session import is_mysql, is_postgres
from regsync.db.triggers import row_priority
from regsync.domain.projection import REFERENCES

_ob = Outbox.__table__


# ------------------------------------------------------------------------------------------------ helpers
def as_dicts(result: Any) -> list[dict[str, Any]]:
    """A result's rows as plain dicts, column name → value (built from tuples: far cheaper than a mapping per
    row)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def asynchronous_commit(conn: Connection) -> None:
    """On PostgreSQL, let the transaction of ``conn`` commit without waiting for the WAL flush
    (``SET LOCAL synchronous_commit = off``): for writes that can be found again if a server crash loses the
    commit. Nothing on other engines."""
    if is_postgres(conn):
        conn.execute(text("SET LOCAL synchronous_commit = off"))


def analyze(engine: Engine, tables: Sequence[str]) -> None:
    """On PostgreSQL, ``ANALYZE`` each of ``tables`` (``"outbox"``, ``"link"``), in that order, outside any
    transaction: a bulk load leaves the planner with the statistics of empty tables. Nothing on other engines."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {own_sql(conn, table)}"))


# ------------------------------------------------------------------------------------------------ backlog
def pending_at_least(conn: Connection, n: int) -> int:
    """How many rows are ``pending``, counting no further than ``n`` (a cheap test of a large backlog)."""
    return int(conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {own_sql(conn, 'outbox')} "  # noqa: S608
                                 "WHERE state = 'pending' LIMIT :n) t"), {"n": n}).scalar_one())


def failed_records(conn: Connection, code: str) -> int:
    """How many records (``entity``, ``local_id``) have ``failed`` rows with ``last_code`` = ``code`` now."""
    return int(conn.execute(text(
        f"SELECT COUNT(*) FROM (SELECT DISTINCT entity, local_id FROM {own_sql(conn, 'outbox')} "  # noqa: S608
        "WHERE state = 'failed' AND last_code = :code) t"), {"code": code}).scalar_one())


# ------------------------------------------------------------------------------------------------ claim
def claim(conn: Connection, *, worker: str, now: dt.datetime, until: dt.datetime, limit: int
          ) -> list[dict[str, Any]]:
    """Claim up to ``limit`` available rows for ``worker`` until ``until``: ``pending`` or ``deferred`` rows whose
    ``available_at`` has passed and whose lease (if any) has expired, in priority order. The rows of held records
    are set aside first (:func:`regsync.db.holds.set_aside_held`). Rows are found by state, never by an
    ``id > last_seen`` cursor, so a row whose transaction commits late is never skipped.

    On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED`` (replicas share the work) and their ids go as an
    array (``= ANY(ARRAY(…))``): as ``IN (subquery)`` the planner hashes the ids and scans the whole outbox to
    find them (234 ms for 5 000 rows of 370 000, against ~80 ms). On MySQL/MariaDB (:func:`_claim_mysql`) the
    rows are locked ``FOR UPDATE SKIP LOCKED`` too, read first and then updated (an ``UPDATE`` can neither
    return its rows there nor take its ids from a ``LIMIT`` subquery of its own table).

    Args:
        conn: a connection inside the claim's transaction (the lease holds once it commits).
        worker: the relay's name, written to ``claimed_by``.
        now: naive UTC.
        until: the end of the lease (naive UTC).
        limit: most rows claimed.

    Returns:
        The claimed rows as dicts (``id``, ``entity``, ``local_id``, ``op``, ``priority``, ``attempts``,
        ``last_code``, ``created_at``, ``done_at``), sorted by ``(priority, id)``.
    """
    set_aside_held(conn, now)  # what an operator discarded stays out of sync until restored (regsync.db.holds)
    if is_mysql(conn):
        return _claim_mysql(conn, worker=worker, now=now, until=until, limit=limit)
    pg = is_postgres(conn)
    ids_of, lock, close = ("= ANY(ARRAY(", " FOR UPDATE SKIP LOCKED", "))") if pg else ("IN (", "", ")")
    o = own_sql(conn, "outbox")
    rows = conn.execute(text(
        f"UPDATE {o} SET claimed_by = :me, claimed_until = :until WHERE id {ids_of}"  # noqa: S608 — names
        f" SELECT id FROM {o} WHERE state IN ('pending', 'deferred') AND available_at <= :now"
        " AND (claimed_until IS NULL OR claimed_until < :now)"
        f" ORDER BY priority, id LIMIT :limit{lock}{close}"
        " RETURNING id, entity, local_id, op, priority, attempts, last_code, created_at, done_at"),
        {"me": worker, "until": until, "now": now, "limit": limit})
    return sorted(as_dicts(rows), key=lambda r: (r["priority"], r["id"]))


_CLAIM_COLUMNS = "id, entity, local_id, op, priority, attempts, last_code, created_at, done_at"


def _claim_mysql(conn: Connection, *, worker: str, now: dt.datetime, until: dt.datetime, limit: int
                 ) -> list[dict[str, Any]]:
    """:func:`claim` on MySQL/MariaDB: the first ``limit`` available rows of each waiting state in ``(priority,
    id)`` order, each read off ``ix_outbox_claim`` (state, priority, id) in index order and locked ``FOR UPDATE SKIP
    LOCKED``; the first ``limit`` of both together are claimed. Read as one query over both states, InnoDB would
    read, lock and sort every waiting row (the whole backlog) before the ``LIMIT``, and another relay's claim would
    find them all locked until this one commits; this way a claim locks at most ``2 × limit`` rows."""
    found: list[dict[str, Any]] = []
    o, ix = own_sql(conn, "outbox"), own_sql(conn, "ix_outbox_claim")
    for state in ("pending", "deferred"):
        found += as_dicts(conn.execute(text(
            f"SELECT {_CLAIM_COLUMNS} FROM {o} FORCE INDEX ({ix}) WHERE state = :state"  # noqa: S608
            " AND available_at <= :now AND (claimed_until IS NULL OR claimed_until < :now)"
            " ORDER BY priority, id LIMIT :limit FOR UPDATE SKIP LOCKED"),
            {"state": state, "now": now, "limit": limit}))
    rows = sorted(found, key=lambda r: (r["priority"], r["id"]))[:limit]
    for chunk in chunks([r["id"] for r in rows], CHUNK):
        conn.execute(update(_ob).where(_ob.c.id.in_(list(chunk))).values(claimed_by=worker, claimed_until=until))
    return rows


def claimed_by_others(conn: Connection, keys: Iterable[tuple[str, int]], *, worker: str, now: dt.datetime
                      ) -> set[tuple[str, int]]:
    """The records among ``keys`` (``(entity, local_id)``) of which another relay than ``worker`` holds a live
    claim (a row with ``claimed_until`` not before ``now``)."""
    held: set[tuple[str, int]] = set()
    by_kind: dict[str, list[int]] = defaultdict(list)
    for entity, lid in sorted(set(keys)):
        by_kind[entity].append(lid)
    for entity, ids in by_kind.items():
        for chunk in chunks(ids, chunk_size(conn)):
            held.update((entity, lid) for (lid,) in conn.execute(
                select(Outbox.local_id).where(
                    Outbox.entity == entity, in_values(conn, Outbox.local_id, chunk), Outbox.claimed_by.is_not(None),
                    Outbox.claimed_by != worker, Outbox.claimed_until >= now).distinct()))
    return held


def release(conn: Connection, row_ids: Sequence[int], *, worker: str) -> None:
    """Give back the rows of ``row_ids`` that ``worker`` claimed, untouched (no lease)."""
    for chunk in chunks(list(row_ids), CHUNK):
        conn.execute(update(Outbox).where(in_values(conn, Outbox.id, chunk), Outbox.claimed_by == worker)
                     .values(claimed_by=None, claimed_until=None))


def make_available(conn: Connection, row_ids: Sequence[int], now: dt.datetime) -> None:
    """Make the ``deferred`` rows of ``row_ids`` that no relay holds available at ``now``."""
    for chunk in chunks(list(row_ids), CHUNK):
        conn.execute(update(_ob).where(in_values(conn, _ob.c.id, chunk), _ob.c.state == "deferred",
                                       _ob.c.claimed_by.is_(None)).values(available_at=now))


def unblock(conn: Connection, now: dt.datetime) -> int:
    """Re-queue the ``blocked`` rows whose awaited record has a link now (not the link of the record its key held
    before it was used again: a ``reuse`` row of that key not yet ``sent``); returns how many. On MySQL/MariaDB the
    rows are found first and then updated by id (MySQL 8 refuses an ``UPDATE`` whose subquery reads its own
    table)."""
    o, lk = own_sql(conn, "outbox"), own_sql(conn, "link")
    ready = (f"state = 'blocked' AND EXISTS (SELECT 1 FROM {lk} l WHERE l.entity = {o}.blocked_entity"
             f" AND l.local_id = {o}.blocked_local_id) AND NOT EXISTS (SELECT 1 FROM {o} r"
             f" WHERE r.entity = {o}.blocked_entity AND r.local_id = {o}.blocked_local_id AND r.op = 'reuse'"
             " AND r.state <> 'sent')")
    values = ("state = 'pending', available_at = :now, last_code = NULL, last_error = NULL, blocked_entity = NULL,"
              " blocked_local_id = NULL")
    if not is_mysql(conn):
        res = conn.execute(text(f"UPDATE {o} SET {values} WHERE {ready}"), {"now": now})  # noqa: S608
        return res.rowcount or 0
    ids = list(conn.execute(text(f"SELECT id FROM {o} WHERE {ready}")).scalars())  # noqa: S608
    n = 0
    for chunk in chunks(ids, CHUNK):
        n += conn.execute(text(f"UPDATE {o} SET {values} WHERE state = 'blocked' AND id IN :ids")  # noqa: S608
                          .bindparams(bindparam("ids", expanding=True)), {"now": now, "ids": list(chunk)}).rowcount
    return n


# ------------------------------------------------------------------------------------------------ reading
def failed_or_blocked(conn: Connection, kind: str, local_ids: Sequence[int]) -> set[int]:
    """The records among ``local_ids`` of ``kind`` that have ``failed`` or ``blocked`` rows."""
    out: set[int] = set()
    for chunk in chunks(list(local_ids), chunk_size(conn)):
        out.update(conn.execute(select(Outbox.local_id).where(
            Outbox.entity == kind, in_values(conn, Outbox.local_id, chunk),
            Outbox.state.in_(("failed", "blocked")))).scalars())
    return out


def waiting(conn: Connection, keys: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """The records among ``keys`` (``(entity, local_id)``) with rows still to be sent (``pending`` or
    ``deferred``)."""
    found: set[tuple[str, int]] = set()
    by_kind: dict[str, list[int]] = defaultdict(list)
    for k, i in keys:
        by_kind[k].append(i)
    for k, ids in by_kind.items():
        for chunk in chunks(sorted(ids), CHUNK):
            found.update((k, lid) for (lid,) in conn.execute(select(Outbox.local_id).where(
                Outbox.entity == k, in_values(conn, Outbox.local_id, chunk),
                Outbox.state.in_(("pending", "deferred"))).distinct()))
    return found


def waiting_volunteers(conn: Connection, local_ids: Sequence[int]) -> set[int]:
    """The volunteers among ``local_ids`` with rows still to be sent (``pending`` or ``deferred``; one ``IN``
    list: a few primaries of people registered twice)."""
    return set(conn.execute(select(Outbox.local_id).where(
        Outbox.entity == "volunteer", Outbox.local_id.in_(local_ids),
        Outbox.state.in_(("pending", "deferred")))).scalars())


# ------------------------------------------------------------------------------------------------ outcomes
def mark_sent(conn: Connection, row_ids: Sequence[int], now: dt.datetime) -> None:
    """Mark ``row_ids`` ``sent`` at ``now`` (their record's state is in the registry, or needs nothing)."""
    for chunk in chunks(list(row_ids), CHUNK):
        conn.execute(update(_ob).where(in_values(conn, _ob.c.id, chunk))
                     .values(state="sent", done_at=now, claimed_by=None, claimed_until=None, last_code=None,
                             last_error=None))


def requeue(conn: Connection, row_ids: Sequence[int], now: dt.datetime) -> None:
    """Put ``row_ids`` back to ``pending``, available at ``now``, with no lease (a record's next step)."""
    for chunk in chunks(list(row_ids), CHUNK):
        conn.execute(update(_ob).where(in_values(conn, _ob.c.id, chunk))
                     .values(state="pending", available_at=now, claimed_by=None, claimed_until=None))


def mark_failed(conn: Connection, rows: Sequence[tuple[int, str, str, str, tuple[str, int] | None]],
                now: dt.datetime) -> None:
    """Record verdicts: each of ``rows`` is ``(row id, state, code, error, parent)``, with state ``failed`` or
    ``blocked`` (then ``parent`` is the ``(entity, local_id)`` it waits for), ``error`` masked and at most 2 000
    characters. Counts an attempt, ends the lease, ``done_at`` = ``now``."""
    params = [{"b_id": rid, "b_state": state, "b_code": code, "b_error": error,
               "b_pe": parent[0] if parent else None, "b_pid": parent[1] if parent else None}
              for rid, state, code, error, parent in rows]
    conn.execute(update(_ob).where(_ob.c.id == bindparam("b_id"))
                 .values(state=bindparam("b_state"), last_code=bindparam("b_code"),
                         last_error=bindparam("b_error"), blocked_entity=bindparam("b_pe"),
                         blocked_local_id=bindparam("b_pid"), attempts=_ob.c.attempts + 1,
                         claimed_by=None, claimed_until=None, done_at=now), params)


def defer(conn: Connection, rows: Sequence[tuple[int, str, str, dt.datetime, bool]]) -> None:
    """Defer rows: each of ``rows`` is ``(row id, code, error, available at, count an attempt)``, ``error`` masked
    and at most 2 000 characters; the lease ends."""
    params = [{"b_id": rid, "b_code": code, "b_error": error, "b_at": at, "b_inc": 1 if count else 0}
              for rid, code, error, at, count in rows]
    conn.execute(update(_ob).where(_ob.c.id == bindparam("b_id"))
                 .values(state="deferred", last_code=bindparam("b_code"), last_error=bindparam("b_error"),
                         available_at=bindparam("b_at"), attempts=_ob.c.attempts + bindparam("b_inc"),
                         claimed_by=None, claimed_until=None), params)


def settle_older(conn: Connection, kind: str, records: Sequence[tuple[int, int]], now: dt.datetime) -> None:
    """For each ``(local_id, newest row id)`` of ``records``: its ``failed`` or ``blocked`` rows older than that
    row are superseded by the newer outcome (``sent``, ``last_code`` ``SUPERSEDED``)."""
    if not records:
        return
    conn.execute(text(
        f"UPDATE {own_sql(conn, 'outbox')} SET state = 'sent', done_at = :now, last_code = 'SUPERSEDED' "  # noqa: S608
        "WHERE entity = :entity AND local_id = :lid AND id < :max_id AND state IN ('failed', 'blocked')"),
        [{"now": now, "entity": kind, "lid": lid, "max_id": mid} for lid, mid in records])


def reuse_done(conn: Connection, row_ids: Sequence[int]) -> None:
    """The ``reuse`` rows of ``row_ids`` become ``insert`` rows: their key's old registry record is retired (design.md's
    mapping table, "a key deleted and inserted again")."""
    conn.execute(update(_ob).where(in_values(conn, _ob.c.id, list(row_ids)), _ob.c.op == "reuse")
                 .values(op="insert"))


def queue_ending(conn: Connection, kind: str, local_id: int, priority: int, now: dt.datetime) -> None:
    """Queue a ``delete`` of ``kind`` ``local_id`` (a retired link's key, with no local row) at ``priority``."""
    conn.execute(_ob.insert().values(entity=kind, local_id=local_id, op="delete", priority=priority,
                                     state="pending", attempts=0, created_at=now, available_at=now))


def queue_dependents(conn: Connection, kind: str, local_id: int, now: dt.datetime) -> None:
    """Queue an ``update`` of each linked local record that still refers to ``kind`` ``local_id`` (a platform
    without foreign keys keeps them when the row they refer to is deleted), at its row's priority."""
    for dep_kind, refs in REFERENCES.items():
        cols = [c for c, ref_kind in refs.items() if ref_kind == kind]
        if not cols:
            continue
        table = Base.metadata.tables[TABLES[dep_kind]]
        linked = select(Link.local_id).where(Link.entity == dep_kind, Link.local_id == table.c.id).exists()
        rows = conn.execute(select(table).where(or_(*[table.c[c] == local_id for c in cols]), linked)).mappings()
        queued = [{"entity": dep_kind, "local_id": r["id"], "op": "update",
                   "priority": row_priority(dep_kind, dict(r)), "state": "pending", "attempts": 0,
                   "created_at": now, "available_at": now} for r in rows]
        if queued:
            conn.execute(_ob.insert(), queued)


# ------------------------------------------------------------------------------- what the registry checks (v1.1)
# registry-api.md §4.8 and §4.9 check a commendation of the annual scheme and an evaluation against the registry's
# own service records: the relay sends them only once those records are settled, and takes them up again when they
# change (issue 16).

#: A volunteer row and the other rows of the same person (the same ``id_type`` and normalized ID number).
_PERSON_ROWS = ("SELECT p.id FROM {volunteer} p JOIN {volunteer} q ON p.id_type = q.id_type "
                "AND p.id_number_norm = q.id_number_norm WHERE q.id IN :vols")

#: A service record ``s`` has outbox rows still to be sent: looked up by the record (``ix_outbox_record``).
_UNSENT = ("EXISTS (SELECT 1 FROM {outbox} o WHERE o.entity = 'service_record' AND o.local_id = s.id "
           "AND o.state IN ('pending', 'deferred'))")


def service_records_unsettled(conn: Connection, *, year: int, volunteer_id: int | None = None,
                              org_id: int | None = None) -> bool:
    """Whether a local service record of ``year`` (its ``service_date``, a date in +08:00) that the annual scheme
    counts for a subject has rows still to be sent (``pending`` or ``deferred``): for ``volunteer_id``, the records
    of the person's rows (a person registered twice counts under one registry id); for ``org_id``, those whose
    org is it or a team it is the community station of (registry-api.md §4.8: ``orgId`` or ``stationId``)."""
    params: dict[str, Any]
    if volunteer_id is not None:
        who, params = f"s.volunteer_id IN ({_PERSON_ROWS}) OR s.volunteer_id IN :vols", {"vols": [volunteer_id]}
    else:
        who = "s.org_id IN :orgs OR s.org_id IN (SELECT g.id FROM {organization} g WHERE g.station_id IN :orgs)"
        params = {"orgs": [org_id]}
    # from the subject's service records (indexed by volunteer), each one's outbox rows by ix_outbox_record: never a
    # walk over the outbox, which holds every record during a first load (issue 17's profile: 49 ms a call)
    sql = own_format(conn, "SELECT 1 FROM {service_record} s WHERE s.service_date >= :d0 AND s.service_date < :d1 "
                     f"AND ({who}) AND {_UNSENT}")
    names_ = [n for n in ("vols", "orgs") if n in params]
    found = conn.execute(text(sql + " LIMIT 1").bindparams(*(bindparam(n, expanding=True) for n in names_)),
                         {**params, "d0": dt.date(year, 1, 1), "d1": dt.date(year + 1, 1, 1)}).first()
    return found is not None


def participation(conn: Connection, activity_id: int, volunteer_id: int) -> tuple[list[str], bool]:
    """A volunteer's service records at one activity, as an evaluation needs them (registry-api.md §4.9: the
    volunteer has an ACCEPTED service record in that activity): the statuses in the links' bases of the person's
    linked records there (the registry's state last agreed), and whether any of the person's records there has rows
    still to be sent."""
    params = {"a": activity_id, "vols": [volunteer_id]}
    who = f"s.activity_id = :a AND (s.volunteer_id IN ({_PERSON_ROWS}) OR s.volunteer_id IN :vols)"
    bases = conn.execute(text(own_format(
        conn, "SELECT l.base FROM {service_record} s JOIN {link} l ON l.entity = 'service_record' "
        f"AND l.local_id = s.id WHERE {who}")).bindparams(bindparam("vols", expanding=True)),
        params).scalars().all()
    statuses = [str((orjson.loads(b) if b else {}).get("status")) for b in bases]
    # from the activity's service records (indexed), each one's outbox rows by ix_outbox_record (not a walk over the
    # outbox's service records: 54 ms a call in issue 17's profile, and growing with the first load)
    waiting = conn.execute(text(own_format(
        conn, f"SELECT 1 FROM {{service_record}} s WHERE {who} AND {_UNSENT} LIMIT 1"))
        .bindparams(bindparam("vols", expanding=True)), params).first() is not None
    return statuses, waiting


def linked_bases_waiting(conn: Connection, kind: str) -> list[tuple[int, str]]:
    """``(local_id, base)`` of the linked records of ``kind`` with rows still to be sent (``pending`` or
    ``deferred``): the registry's state of records about to change (a commendation about to be revoked)."""
    return [(int(lid), str(base)) for lid, base in conn.execute(text(own_format(
        conn, "SELECT DISTINCT l.local_id, l.base FROM {outbox} o JOIN {link} l ON l.entity = o.entity "
        "AND l.local_id = o.local_id WHERE o.entity = :k AND o.state IN ('pending', 'deferred')")), {"k": kind})]


def wake_evaluations(conn: Connection, activity_ids: Sequence[int], codes: Sequence[str], now: dt.datetime) -> int:
    """Put back to ``pending`` at ``now`` the ``deferred`` or ``blocked`` rows of evaluations of ``activity_ids``
    that wait with one of ``codes`` (their activity not COMPLETED in the registry, or their service record not
    accepted there): an activity or a service record of theirs was just written. Returns how many."""
    n = 0
    for chunk in chunks(sorted(set(activity_ids)), CHUNK):
        n += conn.execute(text(own_format(
            conn, "UPDATE {outbox} SET state = 'pending', available_at = :now WHERE entity = 'evaluation' "
            "AND state IN ('deferred', 'blocked') AND claimed_by IS NULL AND last_code IN :codes "
            "AND local_id IN (SELECT e.id FROM {evaluation} e WHERE e.activity_id IN :acts)"))
            .bindparams(bindparam("codes", expanding=True), bindparam("acts", expanding=True)),
            {"now": now, "codes": list(codes), "acts": list(chunk)}).rowcount or 0
    return n


def retry_not_earned(conn: Connection, records: Sequence[tuple[int, int, int]], code: str, now: dt.datetime) -> int:
    """Put back to ``pending`` the ``failed`` rows (``last_code`` = ``code``, the registry's ``NOT_EARNED``) of the
    commendations whose subject's figure for a year moved: ``records`` are ``(volunteer_id, org_id, year)`` of the
    service records just accepted or revoked in the registry; a commendation of that year of the volunteer (any row
    of the person), of that org, or of the org's community station is taken up again (registry-api.md §4.8). Its
    next attempt is a new write (a new idempotency key: the refusal's ``done_at`` is in it). Returns how many
    rows."""
    by_year: dict[int, tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    for vol, org, year in records:
        by_year[year][0].add(vol)
        by_year[year][1].add(org)
    n = 0
    for year, (vols, orgs) in sorted(by_year.items()):
        n += conn.execute(text(own_format(
            conn, "UPDATE {outbox} SET state = 'pending', available_at = :now WHERE entity = 'commendation' "
            "AND state = 'failed' AND last_code = :code AND local_id IN (SELECT c.id FROM {commendation} c "
            f"WHERE c.year = :year AND (c.volunteer_id IN ({_PERSON_ROWS}) OR c.org_id IN :orgs "
            "OR c.org_id IN (SELECT g.station_id FROM {organization} g WHERE g.id IN :orgs)))"))
            .bindparams(bindparam("vols", expanding=True), bindparam("orgs", expanding=True)),
            {"now": now, "code": code, "year": year, "vols": sorted(vols), "orgs": sorted(orgs)}).rowcount or 0
    return n


def work_available(engine: Engine, now: dt.datetime) -> bool:
    """Whether a relay pass has anything to do: re-queues the blocked rows whose awaited record is linked now
    (:func:`unblock`), then looks for an available outbox row (pending, or deferred and due, not under a live
    lease); ``now`` naive UTC."""
    with engine.begin() as conn:
        unblock(conn, now)
        row = conn.execute(select(Outbox.id).where(
            Outbox.state.in_(("pending", "deferred")), Outbox.available_at <= now,
            (Outbox.claimed_until.is_(None)) | (Outbox.claimed_until < now)).limit(1)).first()
    return row is not None


__all__ = ["analyze", "as_dicts", "asynchronous_commit", "claim", "claimed_by_others", "defer",
           "failed_or_blocked", "failed_records", "make_available", "mark_failed",
           "linked_bases_waiting", "mark_sent", "participation", "pending_at_least", "queue_dependents", "queue_ending", "release", "requeue",
           "retry_not_earned", "reuse_done", "service_records_unsettled", "settle_older", "unblock", "wake_evaluations",
           "waiting", "waiting_volunteers", "work_available"]
