"""Reading runs and their discrepancies for the reports, in SQL, streamed (SQLite and PostgreSQL alike).

* :func:`list_runs` pages the ``run`` table, newest first, with each run's discrepancy count.
* :func:`load_report` gathers what a report shows above its rows: the run, its counts by kind, entity, city,
  organization line and action (one ``GROUP BY`` over the run's rows), the trend over the last runs of its kind,
  and the hours view from its summary (:mod:`regsync.domain.hours`).
* :func:`iter_discrepancies` streams a run's rows (``yield_per``: a server-side cursor on PostgreSQL), so a run
  with millions of rows is never held in memory.

Times are naive UTC in the database; everything here hands out aware Asia/Shanghai (+08:00) times.

Personal data: ``discrepancy.details`` is masked when written (design.md, "Personal data"), and is passed
through :func:`regsync.domain.masking.mask_text` again on the way out. A volunteer's ID number and phone are read live
from the ``volunteer`` table for the rows shown, masked unless the caller asks for them in clear (which the
export audits).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, desc, func, select

from regsync.db.models import Activity, Discrepancy, Organization, Outbox, Run, Volunteer
from regsync.db.session import connection, is_mysql
from regsync.domain.hours import NOT_IN_REGISTRY_FIGURES
from regsync.domain.masking import mask_id_number, mask_phone, mask_text
from regsync.domain.regions import CITY_BY_CODE
from regsync.i18n import TranslatableError
from regsync.i18n import gettext_noop as N_

__all__ = [
    "DISCREPANCY_KINDS",
    "REFUSED_STATES",
    "RUN_KINDS",
    "SHANGHAI",
    "Counts",
    "DiscrepancyRow",
    "ReportUsageError",
    "RunInfo",
    "RunNotFound",
    "RunReport",
    "TrendPoint",
    "city_name",
    "count_discrepancies",
    "get_run",
    "iso",
    "iter_discrepancies",
    "kind_order",
    "list_runs",
    "mask_name",
    "load_report",
    "load_trend",
    "to_local",
]

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
_EIGHT_HOURS = dt.timedelta(hours=8)

#: Run kinds ``report list --kind`` accepts.
RUN_KINDS: tuple[str, ...] = ("sync", "inbound", "reconcile", "adopt")
#: Discrepancy kinds in the order reports show them (discrepancy's docstring); others follow, sorted.
DISCREPANCY_KINDS: tuple[str, ...] = (
    "missing_in_registry", "missing_locally", "field_mismatch", "hours_mismatch", "stale_link", "broken_link",
    "duplicate_person", "orphan", "ambiguous_match",
)
#: Organization lines in report order; ``none`` is a record that belongs to no organization.
ORG_LINES: tuple[str, ...] = ("regional", "specialized", "none")
#: Rows fetched per round trip while streaming.
FETCH_CHUNK = 2000

_run = Run.__table__
_d = Discrepancy.__table__
_v = Volunteer.__table__
_o = Outbox.__table__
_org = Organization.__table__
_act = Activity.__table__
#: Outbox states of a change the registry refused (or that waits for one it refused).
REFUSED_STATES = ("failed", "blocked")


class ReportUsageError(TranslatableError, ValueError):
    """The command named no such run, a bad format or kind, or asked for personal data without a reason
    (exit code 2). An English template and its parameters (:class:`regsync.i18n.TranslatableError`): ``str()`` is
    English (JSON, logs), :meth:`text` the sentence in the language in force (the terminal)."""


class RunNotFound(ReportUsageError):
    """No run has this id (exit code 2)."""


def to_local(value: dt.datetime | str | None) -> dt.datetime | None:
    """A naive UTC time from the database as an aware Asia/Shanghai (+08:00) time; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite can hand back text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC).astimezone(SHANGHAI)


def iso(value: dt.datetime | None) -> str | None:
    """An aware time as ISO 8601 to the second (``2026-11-29T02:00:00+08:00``); ``None`` stays ``None``."""
    return None if value is None else value.isoformat(timespec="seconds")


def city_name(code: str | None) -> str:
    """The name of a prefecture-level division from its 4-digit code (``2301`` → ``哈尔滨市``); ``""`` when the
    code is unknown or ``None``."""
    city = CITY_BY_CODE.get((code or "")[:4])
    return city.name if city else ""


# ------------------------------------------------------------------------------------------------ runs
@dataclass(frozen=True)
class RunInfo:
    """One row of ``run``, for a report.

    Attributes:
        id: the run id.
        kind: ``sync``, ``inbound``, ``reconcile``, ``adopt``, …
        status: ``success``, ``partial``, ``failed``, ``running`` or ``abandoned`` (its process ended first).
        started_at: aware, +08:00.
        finished_at: aware, +08:00; ``None`` while running.
        summary: the run's summary JSON (``{}`` when empty; ``{"unreadable": true}`` when not JSON).
        discrepancies: how many discrepancy rows the run has.
    """

    id: int
    kind: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    summary: dict[str, Any]
    discrepancies: int

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish; ``None`` while running."""
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def as_dict(self, *, with_summary: bool = True) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 +08:00; the summary without its ``hours`` (reported on its own)."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "status": self.status,
                               "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
                               "duration_s": self.duration_s, "discrepancies": self.discrepancies}
        if with_summary:
            out["summary"] = {k: v for k, v in self.summary.items() if k != "hours"}
        return out


def _summary(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(mask_text(text))
    except ValueError:
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"value": value}


def _discrepancy_counts(conn: Connection, run_ids: list[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    rows = conn.execute(select(_d.c.run_id, func.count()).where(_d.c.run_id.in_(run_ids)).group_by(_d.c.run_id))
    return {int(r): int(n) for r, n in rows}


def _run_info(row: Any, counts: dict[int, int]) -> RunInfo:
    started = to_local(row.started_at)
    assert started is not None
    return RunInfo(id=int(row.id), kind=row.kind, status=row.status, started_at=started,
                   finished_at=to_local(row.finished_at), summary=_summary(row.summary),
                   discrepancies=counts.get(int(row.id), 0))


def list_runs(bind: Engine | Connection, *, kind: str | None = None, limit: int = 20) -> list[RunInfo]:
    """The newest runs first, with their discrepancy counts.

    Args:
        bind: an engine or connection on the local store.
        kind: only runs of this kind (one of :data:`RUN_KINDS`).
        limit: at most this many runs (1 to 10 000).

    Raises:
        ReportUsageError: an unknown kind or a limit out of range.
    """
    if kind is not None and kind not in RUN_KINDS:
        raise ReportUsageError(N_("unknown run kind {kind!r}; one of {kinds}"), kind=kind, kinds=", ".join(RUN_KINDS))
    if not 1 <= limit <= 10_000:
        raise ReportUsageError(N_("--limit must be between 1 and 10000, got {limit}"), limit=limit)
    query = select(_run).order_by(desc(_run.c.started_at), desc(_run.c.id)).limit(limit)
    if kind is not None:
        query = query.where(_run.c.kind == kind)
    with connection(bind) as conn:
        rows = conn.execute(query).all()
        counts = _discrepancy_counts(conn, [int(r.id) for r in rows])
    return [_run_info(r, counts) for r in rows]


def get_run(bind: Engine | Connection, run_id: int) -> RunInfo:
    """One run by id.

    Raises:
        RunNotFound: no run has this id.
    """
    with connection(bind) as conn:
        row = conn.execute(select(_run).where(_run.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(N_("no run {run_id}; `regsync report list` shows the runs"), run_id=run_id)
        return _run_info(row, _discrepancy_counts(conn, [run_id]))


# ------------------------------------------------------------------------------------------------ counts
@dataclass
class Counts:
    """A run's discrepancies counted (all of them, whatever a report shows row by row).

    Attributes:
        total: rows in all.
        by_kind: kind → rows, in :data:`DISCREPANCY_KINDS` order.
        by_entity: record kind (``volunteer``…) → rows.
        by_city: 4-digit city code (``unknown`` for none) → rows, sorted by code.
        by_org_line: ``regional``, ``specialized``, ``none`` → rows.
        by_city_line: city code → org line → rows.
        by_kind_line: kind → org line → rows.
        by_action: ``action/action_state`` (``push/queued``; ``report only`` when the run did not repair) → rows.
        by_entity_kind: record kind → discrepancy kind (in :data:`DISCREPANCY_KINDS` order) → rows, record kinds
            sorted (issue 16: the HTML report's table by kind of record, so the v1.1 kinds' problems show whatever
            the capped tables by reason hold). Not in :meth:`as_dict` (the JSON export's format stays as it is;
            ``by_entity`` and the rows carry it).
    """

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_entity: dict[str, int] = field(default_factory=dict)
    by_city: dict[str, int] = field(default_factory=dict)
    by_org_line: dict[str, int] = field(default_factory=dict)
    by_city_line: dict[str, dict[str, int]] = field(default_factory=dict)
    by_kind_line: dict[str, dict[str, int]] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)
    by_entity_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (plain dicts, in report order)."""
        return {"total": self.total, "by_kind": self.by_kind, "by_entity": self.by_entity,
                "by_city": self.by_city, "by_org_line": self.by_org_line, "by_city_line": self.by_city_line,
                "by_kind_line": self.by_kind_line, "by_action": self.by_action}


def kind_order(kinds: Any) -> list[str]:
    """Discrepancy kinds in report order: :data:`DISCREPANCY_KINDS` first, any others after, sorted."""
    known = [k for k in DISCREPANCY_KINDS if k in kinds]
    return known + sorted(k for k in kinds if k not in DISCREPANCY_KINDS)


def _line_order(lines: Any) -> list[str]:
    return [k for k in ORG_LINES if k in lines] + sorted(k for k in lines if k not in ORG_LINES)


def count_discrepancies(bind: Engine | Connection, run_id: int) -> Counts:
    """Count a run's discrepancies in one ``GROUP BY`` (the groups, not the rows, come back)."""
    cols = (_d.c.kind, _d.c.entity, _d.c.city_code, _d.c.org_line, _d.c.action, _d.c.action_state)
    with connection(bind) as conn:
        groups = conn.execute(select(*cols, func.count()).where(_d.c.run_id == run_id).group_by(*cols)).all()
    by_kind: Counter[str] = Counter()
    by_entity: Counter[str] = Counter()
    by_city: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    by_action: Counter[str] = Counter()
    city_line: dict[str, Counter[str]] = {}
    kind_line: dict[str, Counter[str]] = {}
    entity_kind: dict[str, Counter[str]] = {}
    total = 0
    for kind, entity, city, line, action, state, n in groups:
        n = int(n)
        city = city[:4] if city else "unknown"
        line = line or "none"
        total += n
        by_kind[kind] += n
        by_entity[entity] += n
        by_city[city] += n
        by_line[line] += n
        by_action[f"{action}/{state or 'none'}" if action else "report only"] += n
        city_line.setdefault(city, Counter())[line] += n
        kind_line.setdefault(kind, Counter())[line] += n
        entity_kind.setdefault(entity, Counter())[kind] += n
    return Counts(
        total=total,
        by_kind={k: by_kind[k] for k in kind_order(by_kind)},
        by_entity=dict(sorted(by_entity.items())),
        by_city=dict(sorted(by_city.items())),
        by_org_line={k: by_line[k] for k in _line_order(by_line)},
        by_city_line={c: {k: v[k] for k in _line_order(v)} for c, v in sorted(city_line.items())},
        by_kind_line={k: {x: kind_line[k][x] for x in _line_order(kind_line[k])} for k in kind_order(kind_line)},
        by_action=dict(sorted(by_action.items())),
        by_entity_kind={e: {k: v[k] for k in kind_order(v)} for e, v in sorted(entity_kind.items())},
    )


# ------------------------------------------------------------------------------------------------ trend
@dataclass(frozen=True)
class TrendPoint:
    """One run in the trend: its id, start (+08:00), status and discrepancy counts (total and by kind)."""

    run_id: int
    started_at: dt.datetime
    status: str
    total: int
    by_kind: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"run_id": self.run_id, "started_at": iso(self.started_at), "status": self.status,
                "total": self.total, "by_kind": self.by_kind}


def load_trend(bind: Engine | Connection, run: RunInfo, *, last: int = 10) -> list[TrendPoint]:
    """The last ``last`` runs of ``run``'s kind up to and including it, oldest first."""
    with connection(bind) as conn:
        runs = conn.execute(select(_run.c.id, _run.c.started_at, _run.c.status)
                            .where(_run.c.kind == run.kind, _run.c.id <= run.id)
                            .order_by(desc(_run.c.id)).limit(last)).all()
        ids = [int(r.id) for r in runs]
        per: dict[int, dict[str, int]] = {i: {} for i in ids}
        if ids:
            for run_id, kind, n in conn.execute(select(_d.c.run_id, _d.c.kind, func.count())
                                                .where(_d.c.run_id.in_(ids)).group_by(_d.c.run_id, _d.c.kind)):
                per[int(run_id)][kind] = int(n)
    points = []
    for r in reversed(runs):
        counts = per[int(r.id)]
        started = to_local(r.started_at)
        assert started is not None
        points.append(TrendPoint(run_id=int(r.id), started_at=started, status=r.status,
                                 total=sum(counts.values()), by_kind={k: counts[k] for k in kind_order(counts)}))
    return points


# ------------------------------------------------------------------------------------------------ report
@dataclass
class RunReport:
    """Everything a report shows above its rows.

    Attributes:
        run: the run.
        counts: its discrepancies counted.
        trend: the last runs of its kind, oldest first, this one last.
        hours: ``run.summary["hours"]`` (shape: :mod:`regsync.domain.hours`), or ``None`` when the run recorded
            none or one of another shape; its ``not_in_registry`` is ``None`` when the run did not record it.
        generated_at: when the report was made (+08:00).
        show_personal_data: whether rows carry clear ID numbers and phones (audited by the export).
    """

    run: RunInfo
    counts: Counts
    trend: list[TrendPoint]
    hours: dict[str, Any] | None
    generated_at: dt.datetime
    show_personal_data: bool = False

    def head(self) -> dict[str, Any]:
        """The report as JSON, without its rows (the JSON export's first part; ``report show --json``)."""
        cities = {c for c in self.counts.by_city} | set((self.hours or {}).get("by_city", {}))
        return {
            "format": "regsync.report/1",
            "generated_at": iso(self.generated_at),
            "personal_data": "shown" if self.show_personal_data else "masked",
            "run": self.run.as_dict(),
            "counts": self.counts.as_dict(),
            "city_names": {c: city_name(c) for c in sorted(cities) if city_name(c)},
            "trend": [p.as_dict() for p in self.trend],
            "hours": self.hours,
        }


_HOURS_FIGURES = ("volunteers", "local_hours", "registry_hours", "registry_total_hours", "hours_diff",
                  "volunteers_differing")


def _hours_group_ok(group: Any) -> bool:
    return isinstance(group, dict) and all(isinstance(group.get(k), int) for k in _HOURS_FIGURES) and all(
        isinstance(group.get(k), list) and len(group[k]) == 6 and all(isinstance(n, int) for n in group[k])
        for k in ("stars_local", "stars_registry"))


def _hours_shape_ok(hours: Any) -> bool:
    """Whether ``hours`` has the shape of :mod:`regsync.domain.hours` (else the report shows no hours view)."""
    return isinstance(hours, dict) and _hours_group_ok(hours.get("total")) and all(
        isinstance(hours.get(k), dict) and all(_hours_group_ok(g) for g in hours[k].values())
        for k in ("by_city", "by_org_line"))


def _not_in_registry_ok(group: Any, *, cities: bool) -> bool:
    return isinstance(group, dict) and all(
        isinstance(group.get(k), int) and not isinstance(group.get(k), bool) for k in NOT_IN_REGISTRY_FIGURES) and (
        not cities or (isinstance(group.get("by_city"), dict)
                       and all(_not_in_registry_ok(g, cities=False) for g in group["by_city"].values())))


def _with_city_line(hours: dict[str, Any]) -> dict[str, Any]:
    """``hours`` with its ``by_city_line`` (the star levels of each city on each line, issue 16 point 7) as recorded,
    or without it when the run did not record it (runs before it) or recorded one of another shape."""
    cross = hours.get("by_city_line")
    if isinstance(cross, dict) and all(isinstance(lines, dict) and all(_hours_group_ok(g) for g in lines.values())
                                       for lines in cross.values()):
        return hours
    return {k: v for k, v in hours.items() if k != "by_city_line"}


def _with_not_in_registry(hours: Any) -> dict[str, Any]:
    """``hours`` with its ``not_in_registry`` (the platform's hours the registry does not have at all;
    :mod:`regsync.domain.hours`) as recorded, or without it when the run did not record it (runs made before it
    was counted) or recorded one of another shape: the report then says it is not known, never 0."""
    if _not_in_registry_ok(hours.get("not_in_registry"), cities=True):
        return hours
    return {k: v for k, v in hours.items() if k != "not_in_registry"}


def load_report(bind: Engine | Connection, run_id: int, *, now: dt.datetime | None = None, trend_runs: int = 10,
                show_personal_data: bool = False) -> RunReport:
    """Read what a report of run ``run_id`` shows above its rows.

    Args:
        bind: an engine or connection on the local store.
        run_id: the run.
        now: the report's time (naive UTC or aware; default: now), for reproducible reports.
        trend_runs: how many runs of its kind the trend covers.
        show_personal_data: recorded in the report (the rows are read by :func:`iter_discrepancies`).

    Raises:
        RunNotFound: no run has this id.
    """
    with connection(bind) as conn:
        run = get_run(conn, run_id)
        counts = count_discrepancies(conn, run_id)
        trend = load_trend(conn, run, last=trend_runs)
    hours = run.summary.get("hours")
    if now is None:
        now = dt.datetime.now(dt.UTC)
    generated = to_local(now) if now.tzinfo is None else now.astimezone(SHANGHAI)
    assert generated is not None
    return RunReport(run=run, counts=counts, trend=trend,
                     hours=_with_city_line(_with_not_in_registry(hours)) if _hours_shape_ok(hours) else None,
                     generated_at=generated, show_personal_data=show_personal_data)


# ------------------------------------------------------------------------------------------------ rows
@dataclass(slots=True)
class DiscrepancyRow:
    """One discrepancy as reports show it.

    ``fields`` and ``details`` are parsed from their JSON (``details`` masked); ``detected_at`` is +08:00;
    ``id_number`` and ``phone`` are the volunteer's live values (masked unless asked for in clear) when the row is
    about a volunteer that still exists locally, else ``None``. ``refusal`` is the registry's code (registry-api.md
    §7, or regsync's own ``PARENT_FAILED``) of the platform change of this record that is waiting in the outbox after
    a refusal, read live for the rows shown (``None`` when none is; not part of :meth:`as_dict`: the JSON and CSV
    exports are the run's record as found). ``name`` is the record's name on the platform, read live for the rows
    shown: an organization's name, an activity's title, a volunteer's name masked to its first character
    (``张*``, in clear with ``show_personal_data``); ``None`` when the record is not on the platform. Not part of
    :meth:`as_dict` either. ``refusal_state`` is that outbox row's state: ``failed`` (the registry refused the
    record) or ``blocked`` (the record waits behind a parent the registry refused; its code ``PARENT_FAILED``).
    """

    id: int
    run_id: int
    kind: str
    entity: str
    local_id: int | None
    registry_id: str | None
    city_code: str | None
    org_line: str | None
    fields: list[str]
    details: dict[str, Any]
    action: str | None
    action_state: str | None
    detected_at: dt.datetime | None
    id_number: str | None = None
    phone: str | None = None
    refusal: str | None = None
    refusal_state: str | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (one element of the JSON export's ``discrepancies``)."""
        return {"id": self.id, "run_id": self.run_id, "kind": self.kind, "entity": self.entity,
                "local_id": self.local_id, "registry_id": self.registry_id, "city_code": self.city_code,
                "org_line": self.org_line, "fields": self.fields, "details": self.details, "action": self.action,
                "action_state": self.action_state, "detected_at": iso(self.detected_at),
                "id_number": self.id_number, "phone": self.phone}


#: Every ID number and phone :func:`regsync.domain.masking.mask_text` masks has a run of 7 digits: texts without one are
#: passed as they are (most rows: a cheap test instead of four substitutions).
_SEVEN_DIGITS = re.compile(r"\d{7}")


def _masked(text: str) -> str:
    return mask_text(text) if _SEVEN_DIGITS.search(text) else text


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return orjson.loads(_masked(text))
    except orjson.JSONDecodeError:
        return {"unreadable": _masked(text)[:200]} if isinstance(default, dict) else [_masked(text)[:200]]


def iter_discrepancies(conn: Connection, run_id: int, *, kind: str | None = None, limit: int | None = None,
                       show_personal_data: bool = False, chunk: int = FETCH_CHUNK) -> Iterator[DiscrepancyRow]:
    """Stream a run's discrepancies, ordered by kind then id, ``chunk`` rows at a time.

    Only one chunk (and, for volunteer rows, one ``IN`` look-up of their live ID numbers and phones) is in memory
    at once: on PostgreSQL the rows come through a server-side cursor, so ``conn`` must stay open (and in its
    transaction) until the iterator is exhausted or closed. On MySQL/MariaDB they are read in keyset pages of
    ``chunk`` rows instead: PyMySQL streams through an unbuffered cursor, and the look-up run on the same connection
    while it is open would discard the rest of the stream.

    Args:
        conn: an open connection on the local store.
        run_id: the run.
        kind: only this kind of discrepancy.
        limit: at most this many rows.
        show_personal_data: give the volunteers' ID numbers and phones in clear (the caller audits it).
        chunk: rows per fetch.
    """
    if is_mysql(conn):
        yield from _pages(conn, run_id, kind, limit, show_personal_data, chunk)
        return
    query = select(*_ROW_COLUMNS).where(_d.c.run_id == run_id).order_by(_d.c.kind, _d.c.id)
    if kind is not None:
        query = query.where(_d.c.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    result = conn.execution_options(yield_per=chunk).execute(query)
    try:
        for part in result.partitions():
            rows = [_row(r) for r in part]
            _attach_personal(conn, rows, show_personal_data)
            _attach_refusals(conn, rows)
            yield from rows
    finally:
        result.close()


def _pages(conn: Connection, run_id: int, kind: str | None, limit: int | None, show_personal_data: bool,
           chunk: int) -> Iterator[DiscrepancyRow]:
    """:func:`iter_discrepancies` in keyset pages of ``chunk`` rows: kind by kind, each kind's rows by id after the
    last page's (``ix_discrepancy_run``, (run_id, kind) and the id, serves each page straight off the index)."""
    left = limit
    kinds = [kind] if kind is not None else conn.execute(
        select(_d.c.kind).where(_d.c.run_id == run_id).distinct().order_by(_d.c.kind)).scalars().all()
    for k in kinds:
        last = 0
        while left is None or left > 0:
            n = chunk if left is None else min(chunk, left)
            part = conn.execute(select(*_ROW_COLUMNS).where(_d.c.run_id == run_id, _d.c.kind == k, _d.c.id > last)
                                .order_by(_d.c.id).limit(n)).all()
            rows = [_row(r) for r in part]
            _attach_personal(conn, rows, show_personal_data)
            _attach_refusals(conn, rows)
            yield from rows
            left = None if left is None else left - len(part)
            if len(part) < n:
                break
            last = part[-1].id


#: The columns :func:`_row` unpacks, in order.
_ROW_COLUMNS = (_d.c.id, _d.c.run_id, _d.c.kind, _d.c.entity, _d.c.local_id, _d.c.registry_id, _d.c.city_code,
                _d.c.org_line, _d.c.fields, _d.c.details, _d.c.action, _d.c.action_state, _d.c.detected_at)


def _row(r: Any) -> DiscrepancyRow:
    (id_, run_id, kind, entity, local_id, registry_id, city_code, org_line, fields_text, details_text, action,
     action_state, detected) = r
    fields = _json(fields_text, [])
    if isinstance(detected, str):
        detected = dt.datetime.fromisoformat(detected)
    return DiscrepancyRow(
        id_, run_id, kind, entity, local_id, registry_id, city_code, org_line,
        fields if isinstance(fields, list) else [str(fields)], _json(details_text, {}), action, action_state,
        None if detected is None else (detected + _EIGHT_HOURS).replace(tzinfo=SHANGHAI))


def mask_name(name: str | None) -> str | None:
    """A person's name masked to its first character: ``张伟`` → ``张*``, ``阿依古丽·买买提`` → ``阿*******``."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def _attach_personal(conn: Connection, rows: list[DiscrepancyRow], clear: bool) -> None:
    """The live ID number, phone and name of the volunteers of ``rows``, and the names of their organizations and
    activities (one ``IN`` look-up per record kind)."""
    ids = {r.local_id for r in rows if r.entity == "volunteer" and r.local_id is not None}
    if ids:
        found = {int(i): (n, p, m) for i, n, p, m in conn.execute(
            select(_v.c.id, _v.c.id_number, _v.c.phone, _v.c.name).where(_v.c.id.in_(sorted(ids))))}
        for r in rows:
            if r.entity == "volunteer" and r.local_id in found:
                number, phone, name = found[r.local_id]
                r.id_number = number if clear else mask_id_number(number)
                r.phone = phone if clear else mask_phone(phone)
                r.name = name if clear else mask_name(name)
    for entity, table, column in (("org", _org, _org.c.name), ("activity", _act, _act.c.title)):
        keys = {r.local_id for r in rows if r.entity == entity and r.local_id is not None}
        if not keys:
            continue
        names = {int(i): n for i, n in conn.execute(select(table.c.id, column).where(table.c.id.in_(sorted(keys))))}
        for r in rows:
            if r.entity == entity and r.local_id in names:
                r.name = _masked(names[r.local_id])




def _attach_refusals(conn: Connection, rows: list[DiscrepancyRow]) -> None:
    """Join in the registry's refusal: the code and state of the newest outbox row in :data:`REFUSED_STATES` of each
    row's record (one ``IN`` look-up per record kind, on ``ix_outbox_record``)."""
    ids: dict[str, set[int]] = {}
    for r in rows:
        if r.local_id is not None:
            ids.setdefault(r.entity, set()).add(r.local_id)
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for entity, keys in ids.items():
        for local_id, code, state in conn.execute(
                select(_o.c.local_id, _o.c.last_code, _o.c.state)
                .where(_o.c.entity == entity, _o.c.local_id.in_(sorted(keys)), _o.c.state.in_(REFUSED_STATES),
                       _o.c.last_code.is_not(None)).order_by(_o.c.id)):
            found[(entity, int(local_id))] = (code, state)  # the newest last
    if found:
        for r in rows:
            if r.local_id is not None and (r.entity, r.local_id) in found:
                r.refusal, r.refusal_state = found[(r.entity, r.local_id)]
