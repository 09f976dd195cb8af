"""The worklists' items across their runs (待办清单, issue 15, point 2): what is work now, kept in ``worklist_item``.

A worklist run (:func:`refresh`) takes the work there is now, streamed in chunks of :data:`PAGE`:

* every discrepancy of the **latest reconcile** run (``success`` or ``partial``) that the run did not fix itself
  (``action_state`` not ``done``, nor ``queued``: a queued fix is the relay's; if it fails, its failure is an item);
* every **failed record**: a record (``entity``, ``local_id``) with ``failed`` or ``blocked`` outbox rows, under the
  code of its most pressing row (``failed`` before ``blocked``, then the newest).

Each is attributed (:class:`regsync.db.attribution.Attributor`) and kept under a stable id (:func:`item_id`: kind,
local id, registry id, source and code; not a row id, so the next reconcile's row of the same difference is the same
item). The run's number (``gen``) is one more than the last; an item found again is *carried over*, one found for
the first time (or open again after it was resolved) is *new*, and an open item the run did not find is *resolved*
by it. Runs are not meant to overlap (one nightly list); two at once would number the same ``gen`` and each would
resolve what the other had not written yet, which the next run corrects.

:func:`iter_items` reads one run's items back in ``sort_key`` order (city → line → org → record), a page at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, update

from regsync.db.attribution import Attributor, Responsible, Subject
from regsync.db.models import Discrepancy, Outbox, Run, WorklistItem
from regsync.db.session import utcnow
from regsync.domain.masking import mask_text

__all__ = ["PAGE", "RefreshResult", "WorkSource", "count_items", "item_id", "iter_items", "latest_gen",
           "latest_reconcile",
           "refresh"]

#: Records per chunk read, attributed and written.
PAGE = 1000
#: Discrepancy action states that are not work for a person (the run fixed it, or the relay will).
_NOT_WORK = ("done", "queued")
_FAILED_STATES = ("failed", "blocked")
_W = WorklistItem.__table__
_D = Discrepancy.__table__
_O = Outbox.__table__


@dataclass(frozen=True, slots=True)
class WorkSource:
    """One piece of work before it is kept: a discrepancy (``source`` ``discrepancy``, ``code`` its kind) or a
    failed record (``failure``, ``code`` the outbox's ``last_code``)."""

    source: str
    entity: str
    local_id: int | None
    registry_id: str | None
    code: str
    detail: str | None
    region_code: str | None = None
    registry_org_id: str | None = None


@dataclass(frozen=True)
class RefreshResult:
    """What a worklist run found: its number, and items new, carried over and resolved by it."""

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
    """The number of the last worklist run (0: none yet)."""
    return int(conn.execute(select(func.max(_W.c.seen_gen))).scalar() or 0)


def _discrepancies(conn: Connection, run_id: int) -> Iterator[list[WorkSource]]:
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
            details = _json(r.details)
            fields = _json(r.fields) or []
            out.append(WorkSource("discrepancy", r.entity, r.local_id, r.registry_id, r.kind,
                                  ", ".join(str(f) for f in fields) or None, details.get("region_code"),
                                  details.get("registry_org_id")))
        yield out


def _failures(conn: Connection) -> Iterator[list[WorkSource]]:
    """Failed records, one per (entity, local id) in that order, :data:`PAGE` records at a time, each under its most
    pressing row (``failed`` before ``blocked``, then the newest)."""
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
            for r in conn.execute(select(_O.c.id, _O.c.local_id, _O.c.state, _O.c.last_code, _O.c.last_error)
                                  .where(waiting, _O.c.entity == kind, _O.c.local_id.in_(ids))):
                key = (kind, int(r.local_id))
                rank = (r.state == "failed", int(r.id))
                if key not in best or rank > best[key][0]:
                    best[key] = (rank, r)
        out = []
        for key in keys:
            r = best[key][1]
            out.append(WorkSource("failure", key[0], key[1], None, r.last_code or str(r.state).upper(),
                                  mask_text(r.last_error)[:500] if r.last_error else None))
        yield out


def _sort_key(who: Responsible, entity: str, local_id: int | None, iid: str) -> str:
    org = who.org.id if who.org else 0
    return f"{who.city_code or '9999'}|{who.line}|{org:012d}|{entity}|{local_id or 0:012d}|{iid}"


def refresh(engine: Engine, *, now: dt.datetime | None = None) -> RefreshResult:
    """One worklist run: keep the work there is now (module docstring) and resolve what is gone.

    Args:
        engine: the local store.
        now: the run's time (naive UTC); default now.

    Returns:
        Its number and counts.
    """
    now = now or utcnow()
    attributor = Attributor()
    new = carried = 0
    with engine.connect() as conn:
        gen = latest_gen(conn) + 1
        run_id = latest_reconcile(conn)
        sources: list[Iterator[list[WorkSource]]] = [_failures(conn)]
        if run_id is not None:
            sources.insert(0, _discrepancies(conn, run_id))
        for source in sources:
            for chunk in source:
                n, c = _keep(conn, attributor, chunk, gen, now)
                new, carried = new + n, carried + c
                conn.commit()
        resolved = conn.execute(update(_W).where(_W.c.state == "open", _W.c.seen_gen < gen).values(
            state="resolved", resolved_gen=gen, resolved_at=now)).rowcount
        conn.commit()
    return RefreshResult(gen, new, carried, int(resolved or 0), run_id)


def _keep(conn: Connection, attributor: Attributor, chunk: list[WorkSource], gen: int,
          now: dt.datetime) -> tuple[int, int]:
    """Attribute and upsert one chunk; returns (new, carried over)."""
    if not chunk:
        return 0, 0
    who = attributor.attribute(conn, [Subject(s.entity, s.local_id, s.region_code, s.registry_org_id)
                                      for s in chunk])
    rows: dict[str, dict[str, Any]] = {}
    for s, w in zip(chunk, who, strict=True):
        iid = item_id(s.source, s.entity, s.local_id, s.registry_id, s.code)
        rows[iid] = {
            "item_id": iid, "entity": s.entity, "local_id": s.local_id, "registry_id": s.registry_id,
            "source": s.source, "code": s.code[:48], "detail": s.detail, "city_code": w.city_code,
            "county_code": w.county_code, "org_line": w.line, "org_id": w.org.id if w.org else None,
            "county_org_id": w.county_org.id if w.county_org else None,
            "city_org_id": w.city_org.id if w.city_org else None,
            "station_id": w.station.id if w.station else None,
            "region_code": s.region_code, "sort_key": _sort_key(w, s.entity, s.local_id, iid), "last_seen_at": now,
            "seen_gen": gen}
    existing = {r.item_id: r for r in conn.execute(
        select(_W.c.item_id, _W.c.state, _W.c.seen_gen).where(_W.c.item_id.in_(list(rows))))}
    inserts = [{**r, "state": "open", "first_seen_at": now, "opened_gen": gen, "resolved_gen": None,
                "resolved_at": None} for i, r in rows.items() if i not in existing]
    if inserts:
        conn.execute(_W.insert(), inserts)
    carried = 0
    for i, r in rows.items():
        old = existing.get(i)
        if old is None or old.seen_gen == gen:
            continue  # new, or found twice in this run (a record failed and differing under one code)
        values = {k: v for k, v in r.items() if k != "item_id"}
        if old.state == "open":
            carried += 1
        else:  # resolved before, open again: new again (its first sighting stays)
            values.update(state="open", opened_gen=gen, resolved_gen=None, resolved_at=None)
        conn.execute(update(_W).where(_W.c.item_id == i).values(**values))
    return len(inserts) + sum(1 for i in rows if i in existing and existing[i].state != "open"), carried


def _filter(gen: int, city: str | None, org_id: int | None) -> Any:
    cond = or_(and_(_W.c.state == "open", _W.c.seen_gen == gen), _W.c.resolved_gen == gen)
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
