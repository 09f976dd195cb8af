"""Records an operator keeps out of sync (``outbox_hold``, design.md "Operator commands").

``regsync outbox discard`` holds each record it discards; ``regsync outbox restore`` lifts the hold. While a
record is held:

* its changes are still captured by the outbox triggers (nothing is lost), but before each claim the relay sets
  the waiting rows of held records aside as ``discarded`` (:func:`set_aside_held`), so they are never sent and
  never count as a backlog;
* what refers to it and is not in the registry yet cannot be sent: the relay blocks it (``PARENT_DISCARDED``, also
  set on what was blocked on it already when it is discarded; a restore plans those again), and
  :func:`dependents` names those records for the operator commands, which show them as waiting on a discarded
  record;
* a restore puts the rows set aside since the hold back to ``pending`` (:func:`release_held`): the relay folds
  them and sends the record's current state.

Every statement here works on the few held records through the outbox's ``(entity, local_id)`` index; a store
with no hold costs one indexed read per claim.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, or_, select, text, update

from regsync.db.models import TABLES, Link, Outbox, OutboxHold
from regsync.db.own import own_sql
from regsync.db.session import row_locks
from regsync.domain.projection import REFERENCES

#: Outbox states of rows that still wait to be sent (or for data or an operator).
WAITING: tuple[str, ...] = ("pending", "deferred", "blocked", "failed")
#: Records named per held record by :func:`dependents`; the count is always complete.
MAX_DEPENDENTS = 50
_CHUNK = 500

_ob = Outbox.__table__
_hold = OutboxHold.__table__
#: entity → its local table (the nine kinds, v1.1's included).
_TABLE = TABLES
#: entity → the (dependent entity, reference column) pairs that refer to it (registry-api.md §4: parents,
#: stations, a membership's pair, an activity's org, a service record's volunteer, activity and org; v1.1: a
#: training's org, a training record's training and volunteer, a commendation's subject, an evaluation's activity,
#: volunteer and evaluating org).
REFERRED_BY: dict[str, list[tuple[str, str]]] = defaultdict(list)
for _kind, _refs in REFERENCES.items():
    for _column, _target in _refs.items():
        REFERRED_BY[_target].append((_kind, _column))


def _by_kind(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for kind, lid in keys:
        out[kind].append(int(lid))
    return out


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i:i + _CHUNK])


def held_keys(conn: Connection, keys: Iterable[tuple[str, int]] | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """The held records among ``keys`` (all of them when ``None``).

    Returns:
        ``(entity, local_id)`` → ``{"held_at": naive UTC datetime, "actor", "reason" (masked), "audit_id"}``.
    """
    cols = (_hold.c.entity, _hold.c.local_id, _hold.c.held_at, _hold.c.actor, _hold.c.reason, _hold.c.audit_id)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if keys is None:
        rows = conn.execute(select(*cols)).mappings().all()
    else:
        rows = []
        for kind, ids in _by_kind(keys).items():
            for chunk in _chunks(sorted(set(ids))):
                rows += conn.execute(select(*cols).where(_hold.c.entity == kind,
                                                         _hold.c.local_id.in_(chunk))).mappings().all()
    for r in rows:
        held_at = r["held_at"]
        if isinstance(held_at, str):  # SQLite may hand text back
            held_at = dt.datetime.fromisoformat(held_at)
        out[(r["entity"], int(r["local_id"]))] = {"held_at": held_at, "actor": r["actor"], "reason": r["reason"],
                                                  "audit_id": r["audit_id"]}
    return out


def hold(conn: Connection, keys: Iterable[tuple[str, int]], *, now: dt.datetime, actor: str, reason: str,
         audit_id: int | None) -> int:
    """Hold ``keys`` (a record held already keeps its first hold). Returns how many holds were added.

    Args:
        conn: a connection inside the discard's transaction.
        keys: ``(entity, local_id)`` of the discarded records.
        now: naive UTC time of the discard (its rows' ``done_at``).
        actor: who (masked already).
        reason: why (masked already).
        audit_id: the discard's audit row.
    """
    keys = sorted(set(keys))
    have = held_keys(conn, keys)
    new = [{"entity": k, "local_id": i, "held_at": now, "actor": actor, "reason": reason, "audit_id": audit_id}
           for k, i in keys if (k, i) not in have]
    if new:
        conn.execute(_hold.insert(), new)
    for kind, ids in _by_kind(keys).items():  # what waits on them waits on an operator now, not on a refusal
        for lid in ids:
            conn.execute(update(_ob).where(
                _ob.c.state == "blocked", _ob.c.blocked_entity == kind, _ob.c.blocked_local_id == lid
            ).values(last_code=PARENT_DISCARDED, last_error=discarded_reason(kind, lid)))
    return len(new)


#: The code of a row blocked on a record an operator discarded (the relay's ``blocked`` outcome, :func:`hold`):
#: the same in the sync's summary, ``outbox list``, ``status`` and the reports.
PARENT_DISCARDED = "PARENT_DISCARDED"


def discarded_reason(kind: str, local_id: int) -> str:
    """The reason of a row blocked on the discarded record ``kind:local_id`` (code :data:`PARENT_DISCARDED`)."""
    key = f"{kind}:{local_id}"
    return f"waits for {key}, which an operator discarded: `regsync outbox restore {key}` sends it, or discard " \
           "this record too"


def set_aside_held(conn: Connection, now: dt.datetime) -> int:
    """Set the rows of held records that wait to be sent aside as ``discarded`` (``done_at`` = ``now``), so the
    relay never claims them; rows under a live lease are left to the relay holding them. Called by the relay just
    before it claims, in the claim's transaction.

    On PostgreSQL and MySQL/MariaDB the holds read are locked (``FOR SHARE``, ``LOCK IN SHARE MODE``), so a restore
    that lifts one waits for this transaction, then finds the rows set aside here and puts them back.

    Returns:
        How many rows were set aside.
    """
    q = select(_hold.c.entity, _hold.c.local_id)
    if row_locks(conn):
        q = q.with_for_update(read=True)
    keys = [(e, int(i)) for e, i in conn.execute(q)]
    if not keys:
        return 0
    n = 0
    free = or_(_ob.c.claimed_until.is_(None), _ob.c.claimed_until < now)
    for kind, ids in _by_kind(keys).items():
        for chunk in _chunks(ids):
            n += conn.execute(update(_ob).where(
                _ob.c.entity == kind, _ob.c.local_id.in_(chunk), _ob.c.state.in_(("pending", "deferred")), free
            ).values(state="discarded", done_at=now, claimed_by=None, claimed_until=None)).rowcount or 0
    return n


def release_held(conn: Connection, keys: Iterable[tuple[str, int]], *, now: dt.datetime) -> tuple[int, int]:
    """Lift the holds of ``keys`` and put the rows set aside or discarded since each hold back to ``pending``
    (``available_at`` = ``now``, attempts 0, no lease, no ``blocked_*``): the relay then sends the record's
    current state. A held record with no such row gets one ``pending`` row like its newest (same ``op`` and
    priority), so a restore always pushes.

    Returns:
        ``(records released, rows put back)``.
    """
    held = held_keys(conn, keys)
    rows = 0
    for (kind, lid), h in sorted(held.items()):
        conn.execute(delete(_hold).where(_hold.c.entity == kind, _hold.c.local_id == lid))
        back = conn.execute(update(_ob).where(
            _ob.c.entity == kind, _ob.c.local_id == lid, _ob.c.state == "discarded", _ob.c.done_at >= h["held_at"]
        ).values(state="pending", available_at=now, attempts=0, claimed_by=None, claimed_until=None,
                 blocked_entity=None, blocked_local_id=None)).rowcount or 0
        if not back:
            newest = conn.execute(select(_ob.c.op, _ob.c.priority).where(
                _ob.c.entity == kind, _ob.c.local_id == lid).order_by(_ob.c.id.desc()).limit(1)).first()
            if newest is not None:
                conn.execute(_ob.insert().values(entity=kind, local_id=lid, op=newest.op, priority=newest.priority,
                                                 state="pending", attempts=0, created_at=now, available_at=now))
                back = 1
        rows += back
        # what was blocked on it by the discard waits for it as for any record not in the registry yet: the relay
        # plans it again (it defers, blocks or sends it as the record's own state says)
        conn.execute(update(_ob).where(
            _ob.c.state == "blocked", _ob.c.last_code == PARENT_DISCARDED, _ob.c.blocked_entity == kind,
            _ob.c.blocked_local_id == lid
        ).values(state="pending", available_at=now, claimed_by=None, claimed_until=None, blocked_entity=None,
                 blocked_local_id=None))
    return len(held), rows


def dependents(conn: Connection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[list[str], int]]:
    """The records that wait on each of ``keys``: those with rows ``blocked`` on it, and, while it has no link
    (it is not in the registry), those with waiting rows that refer to it (a child org, a membership, an
    activity, a service record): none of them can be sent before it is.

    Returns:
        ``(entity, local_id)`` → (up to :data:`MAX_DEPENDENTS` ``KIND:LOCAL_ID`` names, sorted; the full count).
        Keys nothing waits on are left out.
    """
    keys = sorted(set(keys))
    wanted = set(keys)
    found: dict[tuple[str, int], set[tuple[str, int]]] = defaultdict(set)
    for kind, ids in _by_kind(keys).items():
        for chunk in _chunks(ids):
            for be, bl, e, lid in conn.execute(select(
                    _ob.c.blocked_entity, _ob.c.blocked_local_id, _ob.c.entity, _ob.c.local_id).where(
                    _ob.c.state == "blocked", _ob.c.blocked_entity == kind,
                    _ob.c.blocked_local_id.in_(chunk)).distinct()):
                found[(be, int(bl))].add((e, int(lid)))
            linked = set(conn.execute(select(Link.local_id).where(Link.entity == kind,
                                                                  Link.local_id.in_(chunk))).scalars())
            unlinked = [i for i in chunk if i not in linked]
            if not unlinked:
                continue
            for dep_kind, column in REFERRED_BY.get(kind, []):
                table, ob = own_sql(conn, _TABLE[dep_kind]), own_sql(conn, "outbox")
                stmt = text(f"SELECT t.id, t.{column} FROM {table} t WHERE t.{column} IN :ids "  # noqa: S608
                            f"AND EXISTS (SELECT 1 FROM {ob} o WHERE o.entity = :dep AND o.local_id = t.id "
                            "AND o.state IN ('pending', 'deferred', 'blocked', 'failed'))").bindparams(
                    bindparam("ids", expanding=True))
                for dep_id, ref in conn.execute(stmt, {"ids": unlinked, "dep": dep_kind}):
                    if (dep_kind, int(dep_id)) != (kind, int(ref)):
                        found[(kind, int(ref))].add((dep_kind, int(dep_id)))
    out: dict[tuple[str, int], tuple[list[str], int]] = {}
    for key, deps in found.items():
        if key in wanted and deps:
            names = sorted(f"{e}:{i}" for e, i in deps)
            out[key] = (names[:MAX_DEPENDENTS], len(names))
    return out


def count_held(conn: Connection) -> int:
    """How many records are held."""
    return int(conn.execute(select(func.count()).select_from(_hold)).scalar_one())


__all__ = ["MAX_DEPENDENTS", "REFERRED_BY", "count_held", "dependents", "held_keys", "hold", "release_held",
           "set_aside_held"]
