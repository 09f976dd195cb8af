"""The worklists' items across their runs (待办清单, issue 15, point 2): what is work now, kept in ``worklist_item``.

A worklist run (:func:`refresh`) takes the work there is now, streamed in chunks of :data:`PAGE`:

* every discrepancy of the **latest reconcile** run (``success`` or ``partial``) that the run did not fix itself
  (``action_state`` not ``done``, nor ``queued``: a queued fix is the relay's; if it fails, its failure is an item);
* every **failed record**: a record (``entity``, ``local_id``) with ``failed`` or ``blocked`` outbox rows, under the
  code of its most pressing row (``failed`` before ``blocked``, then the newest).

One item per thing a person must fix (a manager's trial): a record with ``failed`` or ``blocked`` rows gets no
``missing_in_registry`` item (its failure item says why it is not there), and a record **blocked behind a refused
one** is no item of its own: the chain of ``blocked_entity``/``blocked_local_id`` is followed up to the record that
failed, whose item counts it in ``waiting``. A blocked record whose chain ends elsewhere (its parent was discarded
by an operator, or is sent already and the relay will release it) stays an item, naming what it waits for
(``related``). To follow the chains, the failed records and the blocked ones' parents are read whole first (memory:
a few dozen bytes per failing record).

Each is attributed (:class:`regsync.db.attribution.Attributor`) and kept under a stable id (:func:`item_id`: kind,
local id, registry id, source and code; not a row id, so the next reconcile's row of the same difference is the same
item).

**Periods** (第 N 期, ``gen``): a period is one reconcile run, the latest. The first worklist call after a new
reconcile run opens the next period; every later call for the same reconcile run (another format, ``--city``,
``--split``) stays in it, so that it tells the same states and counts. Each call (a *pass*, ``seen_pass``) still
refreshes the failures, judged against the **previous period**: an item open at the end of the previous period
and found now is *carried over*; one found for the first time in this period (or open again after it was resolved
in an earlier one) is *new*; an item of the previous period no longer found is *resolved* in this one; an item
new in this period and fixed before the next is simply no longer listed (it was never on a previous list); one
resolved earlier in this period and found again is as it was at the period's start. The period and its reconcile
run are kept in ``store_meta`` (:data:`PERIOD_META`); before any reconcile run, every call is of one period. Calls are not meant to overlap (one nightly list); two at once
would each resolve what the other had not written yet, which the next call corrects.

:func:`iter_items` reads one run's items back in ``sort_key`` order (city → line → org → record), a page at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, or_, select, text, update

from regsync.db.attribution import Attributor, Responsible, Subject
from regsync.db.commendations import platform_figure
from regsync.db.models import Discrepancy, Outbox, Run, StoreMeta, WorklistItem
from regsync.db.own import names
from regsync.db.session import utcnow
from regsync.domain.commendations import SCHEME, figure_text
from regsync.domain.commendations import Subject as Commended
from regsync.domain.masking import mask_text
from regsync.domain.reasons import not_earned_figure

__all__ = ["PAGE", "PERIOD_META", "RefreshResult", "WorkSource", "count_items", "item_id", "iter_items",
           "latest_gen", "latest_reconcile", "listed", "refresh", "NOT_EARNED_DETAIL"]

#: Records per chunk read, attributed and written.
PAGE = 1000
#: Discrepancy action states that are not work for a person (the run fixed it, or the relay will).
_NOT_WORK = ("done", "queued")
_FAILED_STATES = ("failed", "blocked")
_W = WorklistItem.__table__
_D = Discrepancy.__table__
_O = Outbox.__table__
_M = StoreMeta.__table__
#: The ``store_meta`` row holding the current period: JSON ``{"gen", "reconcile_run"}``.
PERIOD_META = "worklist_period"
#: The key of a scheme commendation's NOT_EARNED figures in an item's ``detail`` (JSON ``{"not_earned": {"subject",
#: "tier", "year", "registry", "platform"}}``; the figures as text, hours ``"45.00"`` or a count), read by the
#: worklist's 说明 (:mod:`regsync.reports.worklist`).
NOT_EARNED_DETAIL = "not_earned"
#: Longest chain of blocked records followed up to the refused one.
_MAX_CHAIN = 16


@dataclass(frozen=True, slots=True)
class WorkSource:
    """One piece of work before it is kept: a discrepancy (``source`` ``discrepancy``, ``code`` its kind) or a
    failed record (``failure``, ``code`` the outbox's ``last_code``, ``outbox_state`` its row's state, ``waiting``
    the records blocked behind it). ``related``: the record a blocked one waits for, or a duplicate person's other
    rows, as ``(entity, local ids)``. ``registry_volunteer_id``: a registry-only commendation's volunteer."""

    source: str
    entity: str
    local_id: int | None
    registry_id: str | None
    code: str
    detail: str | None
    region_code: str | None = None
    registry_org_id: str | None = None
    outbox_state: str | None = None
    waiting: int = 0
    related: tuple[str, tuple[int, ...]] | None = None
    registry_volunteer_id: str | None = None


@dataclass(frozen=True)
class RefreshResult:
    """A worklist call's period: its number (``gen``), and the period's items new, carried over and resolved (the
    same for every call of one period whose work has not changed), and its reconcile run."""

    gen: int
    new: int
    carried: int
    resolved: int
    reconcile_run: int | None


def item_id(source: str, entity: str, local_id: int | None, registry_id: str | None, code: str) -> str:
    """The stable id of a work item: 32 hex digits of SHA-256 over its kind, record and reason. A record with a
    local row is named by it alone (its registry id may come and go); one only the registry holds by that id."""
    record = f"L{local_id}" if local_id is not None else f"R{registry_id}"
    return hashlib.sha256(f"{source}|{entity}|{record}|{code}".encode()).hexdigest()[:32]


def latest_reconcile(conn: Connection) -> int | None:
    """The id of the latest reconcile run that finished (``success`` or ``partial``), or ``None``."""
    r = Run.__table__
    return conn.execute(select(func.max(r.c.id)).where(r.c.kind == "reconcile",
                                                       r.c.status.in_(("success", "partial")))).scalar()


def latest_gen(conn: Connection) -> int:
    """The number of the last period whose items were kept (0: none yet)."""
    return int(conn.execute(select(func.max(_W.c.seen_gen))).scalar() or 0)


class _FailureMap:
    """The failing records of the outbox (module docstring): ``failed`` (records with a ``failed`` row), ``parent``
    (a record with ``blocked`` rows and none failed → what its newest blocked row waits for, or ``None``), and from
    them ``rolled`` (blocked records whose chain ends at a failed record: no items of their own) and ``waiting``
    (a failed record → how many records are blocked behind it, directly or through a chain)."""

    def __init__(self, conn: Connection) -> None:
        self.failed: set[tuple[str, int]] = {(str(e), int(i)) for e, i in conn.execute(
            select(_O.c.entity, _O.c.local_id).distinct().where(_O.c.state == "failed"))}
        self.parent: dict[tuple[str, int], tuple[str, int] | None] = {}
        for e, i, pe, pi in conn.execute(select(_O.c.entity, _O.c.local_id, _O.c.blocked_entity,
                                                _O.c.blocked_local_id).where(_O.c.state == "blocked")
                                         .order_by(_O.c.id)):
            key = (str(e), int(i))
            if key not in self.failed:
                self.parent[key] = (str(pe), int(pi)) if pe is not None and pi is not None else None
        self.rolled: set[tuple[str, int]] = set()
        self.waiting: dict[tuple[str, int], int] = {}
        for key in self.parent:
            root = self._root(key)
            if root is not None:
                self.rolled.add(key)
                self.waiting[root] = self.waiting.get(root, 0) + 1

    def _root(self, key: tuple[str, int]) -> tuple[str, int] | None:
        """The failed record at the end of ``key``'s chain, or ``None`` (it ends elsewhere, loops or is too long)."""
        cur: tuple[str, int] | None = key
        for _ in range(_MAX_CHAIN):
            cur = self.parent.get(cur) if cur is not None else None
            if cur is None or cur == key:
                return None
            if cur in self.failed:
                return cur
            if cur not in self.parent:
                return None
        return None

    def failing(self, entity: str, local_id: int | None) -> bool:
        """Whether the record has ``failed`` or ``blocked`` rows (so a failure item, or its parent's, covers it)."""
        return local_id is not None and ((entity, int(local_id)) in self.failed or
                                         (entity, int(local_id)) in self.parent)


def _discrepancies(conn: Connection, run_id: int, fmap: _FailureMap) -> Iterator[list[WorkSource]]:
    """The latest reconcile's discrepancies that are work, but not a failing record's ``missing_in_registry``."""
    last = 0
    while True:
        rows = conn.execute(select(_D.c.id, _D.c.entity, _D.c.kind, _D.c.local_id, _D.c.registry_id, _D.c.fields,
                                   _D.c.details).where(
            _D.c.run_id == run_id, _D.c.id > last,
            or_(_D.c.action_state.is_(None), _D.c.action_state.not_in(_NOT_WORK))).order_by(_D.c.id).limit(PAGE)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        out = []
        for r in rows:
            if r.kind == "missing_in_registry" and fmap.failing(r.entity, r.local_id):
                continue  # its failure item (or its refused parent's) says why it is not there
            details = _json(r.details)
            fields = _json(r.fields) or []
            related = None
            if r.kind == "duplicate_person":
                others = tuple(int(i) for i in details.get("local_ids") or [] if i is not None and
                               (r.local_id is None or int(i) != int(r.local_id)))
                related = (str(r.entity), others) if others else None
            out.append(WorkSource("discrepancy", r.entity, r.local_id, r.registry_id, r.kind,
                                  ", ".join(str(f) for f in fields) or None, details.get("region_code"),
                                  details.get("registry_org_id"), related=related,
                                  registry_volunteer_id=details.get("registry_volunteer_id")))
        yield out


def _failures(conn: Connection, fmap: _FailureMap) -> Iterator[list[WorkSource]]:
    """Failed records, one per (entity, local id) in that order, :data:`PAGE` records at a time, each under its most
    pressing row (``failed`` before ``blocked``, then the newest); those blocked behind a failed record are left
    out (counted in its ``waiting``)."""
    last: tuple[str, int] = ("", -1)
    waiting = _O.c.state.in_(_FAILED_STATES)
    while True:
        keys = [(e, int(i)) for e, i in conn.execute(
            select(_O.c.entity, _O.c.local_id).distinct().where(
                waiting, or_(_O.c.entity > last[0], and_(_O.c.entity == last[0], _O.c.local_id > last[1])))
            .order_by(_O.c.entity, _O.c.local_id).limit(PAGE))]
        if not keys:
            return
        last = keys[-1]
        best: dict[tuple[str, int], Any] = {}
        for kind in sorted({k for k, _ in keys}):
            ids = [i for k, i in keys if k == kind]
            for r in conn.execute(select(_O.c.id, _O.c.local_id, _O.c.state, _O.c.last_code, _O.c.last_error,
                                         _O.c.blocked_entity, _O.c.blocked_local_id)
                                  .where(waiting, _O.c.entity == kind, _O.c.local_id.in_(ids))):
                key = (kind, int(r.local_id))
                rank = (r.state == "failed", int(r.id))
                if key not in best or rank > best[key][0]:
                    best[key] = (rank, r)
        out = []
        for key in keys:
            if key in fmap.rolled:
                continue
            r = best[key][1]
            related = None
            if r.state == "blocked" and r.blocked_entity is not None and r.blocked_local_id is not None:
                related = (str(r.blocked_entity), (int(r.blocked_local_id),))
            out.append(WorkSource("failure", key[0], key[1], None, r.last_code or str(r.state).upper(),
                                  mask_text(r.last_error)[:500] if r.last_error else None,
                                  outbox_state=str(r.state), waiting=fmap.waiting.get(key, 0), related=related))
        yield out


def _sort_key(who: Responsible, entity: str, local_id: int | None, iid: str) -> str:
    org = who.org.id if who.org else 0
    return f"{who.city_code or '9999'}|{who.line}|{org:012d}|{entity}|{local_id or 0:012d}|{iid}"


def _period(conn: Connection) -> dict[str, Any]:
    """The current period (:data:`PERIOD_META`), ``{}`` before the first."""
    raw = conn.execute(select(_M.c.value).where(_M.c.name == PERIOD_META)).scalar_one_or_none()
    found = _json(raw)
    return found if isinstance(found, dict) else {}


def _set_period(conn: Connection, gen: int, run_id: int | None, now: dt.datetime) -> None:
    value = json.dumps({"gen": gen, "reconcile_run": run_id}, sort_keys=True)
    if conn.execute(update(_M).where(_M.c.name == PERIOD_META).values(value=value, updated_at=now)).rowcount == 0:
        conn.execute(_M.insert().values(name=PERIOD_META, value=value, updated_at=now))


def refresh(engine: Engine, *, now: dt.datetime | None = None) -> RefreshResult:
    """One worklist call: keep the work there is now (module docstring) in the period of the latest reconcile run
    (a new period when that run is new), and resolve what is gone.

    Args:
        engine: the local store.
        now: the call's time (naive UTC); default now.

    Returns:
        The period's number and counts (:func:`count_items` over all its items).
    """
    now = now or utcnow()
    attributor = Attributor()
    with engine.connect() as conn:
        run_id = latest_reconcile(conn)
        period = _period(conn)
        last_gen = max(latest_gen(conn), int(period.get("gen") or 0))
        same = bool(period) and period.get("reconcile_run") == run_id and last_gen > 0
        gen = last_gen if same else last_gen + 1
        pass_no = int(conn.execute(select(func.max(_W.c.seen_pass))).scalar() or 0) + 1
        _set_period(conn, gen, run_id, now)
        conn.commit()
        fmap = _FailureMap(conn)
        sources: list[Iterator[list[WorkSource]]] = [_failures(conn, fmap)]
        if run_id is not None:
            sources.insert(0, _discrepancies(conn, run_id, fmap))
        for source in sources:
            for chunk in source:
                _keep(conn, attributor, chunk, gen, pass_no, now)
                conn.commit()
        conn.execute(update(_W).where(_W.c.state == "open", _W.c.seen_pass < pass_no).values(
            state="resolved", resolved_gen=gen, resolved_at=now))
        conn.commit()
        counts = count_items(conn, gen)
    return RefreshResult(gen, counts.get("new", 0), counts.get("carried", 0), counts.get("resolved", 0), run_id)


def _keep(conn: Connection, attributor: Attributor, chunk: list[WorkSource], gen: int, pass_no: int,
          now: dt.datetime) -> None:
    """Attribute and upsert one chunk of call ``pass_no`` in period ``gen``."""
    if not chunk:
        return
    who = attributor.attribute(conn, [Subject(s.entity, s.local_id, s.region_code, s.registry_org_id,
                                              s.registry_volunteer_id) for s in chunk])
    scheme = _scheme_refusals(conn, chunk)
    rows: dict[str, dict[str, Any]] = {}
    for s, w in zip(chunk, who, strict=True):
        iid = item_id(s.source, s.entity, s.local_id, s.registry_id, s.code)
        detail = s.detail
        if s.local_id is not None and (s.entity, int(s.local_id)) in scheme and s.source == "failure":
            w = attributor.scheme_approver(conn, w)
            detail = scheme[(s.entity, int(s.local_id))](s.detail)
        related = json.dumps({"entity": s.related[0], "ids": list(s.related[1])}) if s.related else None
        rows[iid] = {
            "item_id": iid, "entity": s.entity, "local_id": s.local_id, "registry_id": s.registry_id,
            "source": s.source, "code": s.code[:48], "detail": detail, "city_code": w.city_code,
            "county_code": w.county_code, "org_line": w.line, "org_id": w.org.id if w.org else None,
            "county_org_id": w.county_org.id if w.county_org else None,
            "city_org_id": w.city_org.id if w.city_org else None,
            "station_id": w.station.id if w.station else None,
            "region_code": s.region_code, "sort_key": _sort_key(w, s.entity, s.local_id, iid), "last_seen_at": now,
            "seen_gen": gen, "seen_pass": pass_no, "waiting": s.waiting, "outbox_state": s.outbox_state,
            "related": related}
    existing = {r.item_id: r for r in conn.execute(
        select(_W.c.item_id, _W.c.state, _W.c.resolved_gen, _W.c.seen_pass).where(_W.c.item_id.in_(list(rows))))}
    inserts = [{**r, "state": "open", "first_seen_at": now, "opened_gen": gen, "resolved_gen": None,
                "resolved_at": None} for i, r in rows.items() if i not in existing]
    if inserts:
        conn.execute(_W.insert(), inserts)
    for i, r in rows.items():
        old = existing.get(i)
        if old is None or old.seen_pass == pass_no:
            continue  # new, or found twice in this call (a record failed and differing under one code)
        values = {k: v for k, v in r.items() if k != "item_id"}
        if old.state != "open":
            values.update(state="open", resolved_gen=None, resolved_at=None)
            if old.resolved_gen != gen:  # resolved in an earlier period: new again (its first sighting stays)
                values["opened_gen"] = gen
            # resolved earlier in this period: as it was at the period's start (its opened_gen kept)
        conn.execute(update(_W).where(_W.c.item_id == i).values(**values))


def _scheme_refusals(conn: Connection, chunk: list[WorkSource]) -> dict[tuple[str, int], Any]:
    """The chunk's scheme commendations (``PROVINCIAL_ANNUAL``) refused ``NOT_EARNED`` (registry-api.md §4.8):
    (``commendation``, local id) → a function of the item's detail (the registry's masked answer) giving the
    :data:`NOT_EARNED_DETAIL` JSON: the subject, tier and year, the registry's figure read from its message
    (:func:`regsync.domain.reasons.not_earned_figure`, ``None`` when it gives none) and the platform's figure of
    the subject's year (:func:`regsync.db.commendations.platform_figure`)."""
    ids = sorted({int(s.local_id) for s in chunk if s.source == "failure" and s.entity == "commendation"
                  and s.code == "NOT_EARNED" and s.local_id is not None})
    if not ids:
        return {}
    n = names(conn)
    stmt = text(f"SELECT id, volunteer_id, org_id, tier, year FROM {n.commendation} "  # noqa: S608 — names
                "WHERE scheme = :scheme AND id IN :ids").bindparams(bindparam("ids", expanding=True))
    out: dict[tuple[str, int], Any] = {}
    for cid, vid, oid, tier, year in conn.execute(stmt, {"scheme": SCHEME, "ids": ids}):
        subject: Commended = "volunteer" if vid is not None else "org"
        figure = figure_text(subject, platform_figure(conn, "V" if vid is not None else "O",
                                                      int(vid if vid is not None else oid), int(year))) \
            if year is not None and (vid is not None or oid is not None) else None

        def as_detail(message: str | None, subject: Commended = subject, tier: Any = tier, year: Any = year,
                      figure: str | None = figure) -> str:
            return json.dumps({NOT_EARNED_DETAIL: {"subject": subject, "tier": tier, "year": year,
                                                   "registry": not_earned_figure(message), "platform": figure}},
                              sort_keys=True)
        out[("commendation", int(cid))] = as_detail
    return out


def listed(gen: int) -> Any:
    """The condition of the items a list of period ``gen`` holds: those open in it, and those of an earlier period
    it resolved (an item new in ``gen`` and fixed within it was on no list before: not listed as resolved)."""
    return or_(and_(_W.c.state == "open", _W.c.seen_gen == gen),
               and_(_W.c.state == "resolved", _W.c.resolved_gen == gen, _W.c.opened_gen < gen))


def _filter(gen: int, city: str | None, org_id: int | None) -> Any:
    cond = listed(gen)
    if city is not None:
        cond = and_(cond, _W.c.city_code == city if city else _W.c.city_code.is_(None))
    if org_id is not None:
        cond = and_(cond, or_(_W.c.org_id == org_id, _W.c.county_org_id == org_id, _W.c.city_org_id == org_id,
                              _W.c.station_id == org_id))
    return cond


def count_items(conn: Connection, gen: int, *, city: str | None = None, org_id: int | None = None
                ) -> dict[str, int]:
    """The items of worklist run ``gen`` (filtered as :func:`iter_items`) by status: ``new``, ``carried``,
    ``resolved``."""
    status = case((_W.c.state == "resolved", "resolved"), (_W.c.opened_gen == gen, "new"), else_="carried")
    rows = conn.execute(select(status.label("s"), func.count()).where(_filter(gen, city, org_id)).group_by(status))
    return {str(s): int(n) for s, n in rows}


def iter_items(conn: Connection, gen: int, *, city: str | None = None, org_id: int | None = None,
               page: int = PAGE) -> Iterator[list[dict[str, Any]]]:
    """The items of worklist run ``gen`` (open ones it found, and those it resolved), in ``sort_key`` order, a page
    of rows (dicts of ``worklist_item``'s columns plus ``status``: ``new``, ``carried`` or ``resolved``) at a time.

    Args:
        conn: a connection to the local store.
        gen: the run (:attr:`RefreshResult.gen`).
        city: only items of this 4-digit city (``""``: those with no city); ``None``: all.
        org_id: only items whose responsible org, or its county- or city-level unit, or station, is this org.
        page: rows per page.
    """
    cond = _filter(gen, city, org_id)
    last = ""
    while True:
        rows = conn.execute(select(_W).where(cond, _W.c.sort_key > last).order_by(_W.c.sort_key).limit(page)
                            ).mappings().all()
        if not rows:
            return
        last = rows[-1]["sort_key"]
        out = []
        for r in rows:
            d = dict(r)
            d["status"] = ("resolved" if d["state"] == "resolved" else "new" if d["opened_gen"] == gen
                           else "carried")
            out.append(d)
        yield out


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}
