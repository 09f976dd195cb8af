"""The operator's console (issue 6): the service's state at a glance, its health, and pausing a flow.

* :func:`collect_status` gathers what ``regsync status`` shows: the outbox backlog by state, the age of the oldest
  change waiting, each flow's last success and failure (``flow_state``), the change-feed cursor's age, open
  conflicts, failed records, paused flows, the schedule's next runs and whether a full reconcile is due; and it
  judges the service's health against ``[health]`` (:func:`health_problems`): ``status`` exits 3 when unhealthy,
  so it serves as a health check.
* :func:`record_flow_result` keeps ``flow_state`` (last success, ``failing_since``) up to date; the daemon's
  jobs call it after every pass, and so may any other caller of ``run_sync``/``run_pull``.
* :func:`set_paused` pauses and resumes flows, audited (design.md, "Operator commands": pause/resume take
  ``--reason``). A paused flow's changes are still captured (the outbox triggers never stop); the daemon skips
  the flow until it is resumed. A pause may carry an expiry (``regsync pause --for 2h`` or ``--until``): the
  first look at the flow after it (:func:`is_paused`, the daemon's every tick and heartbeat, a manual ``sync``)
  resumes it, audited as ``resume`` by ``regsync`` (:func:`resume_expired`).
* Whether a daemon is alive is read from the daemons' heartbeats (:mod:`regsync.db.liveness`), so any replica and
  ``regsync status`` on any host see it; the next run times shown are those a live daemon's scheduler holds.

Times in the database are naive UTC; what is shown is Asia/Shanghai (+08:00). Ages are whole seconds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from regsync.db.hashkey import fingerprint, stored_fingerprint
from regsync.db.models import Audit, Conflict, FeedCursor, FlowState, Outbox, Run
from regsync.db.session import current_worker, utcnow
from regsync.domain.masking import mask_text
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: The flows of design.md, as named in ``flow_state``.
FLOWS: tuple[str, ...] = ("outbound", "inbound", "reconcile")
#: The flows an operator can pause (the reconcile only reads, and queues its repairs to the outbox).
PAUSABLE: tuple[str, ...] = ("outbound", "inbound")
#: Outbox states shown in the backlog (``sent`` and ``discarded`` are done).
BACKLOG_STATES: tuple[str, ...] = ("pending", "deferred", "blocked", "failed")


def _as_dt(value: dt.datetime | str | None) -> dt.datetime | None:
    if isinstance(value, str):  # SQLite aggregates can come back as text
        return dt.datetime.fromisoformat(value)
    return value


def _age(now: dt.datetime, then: dt.datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def _iso_local(value: dt.datetime | None) -> str | None:
    from regsync.flows.operator import to_local

    local = to_local(value)
    return local.isoformat(timespec="seconds") if local else None


def _ensure_rows(conn: Any, flows: Iterable[str]) -> None:
    """Insert the ``flow_state`` rows that are missing (concurrent writers: the first insert wins)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for flow in flows:
        conn.execute(insert(FlowState).values(flow=flow, paused=False).on_conflict_do_nothing(
            index_elements=["flow"]))


def record_flow_result(engine: Engine, flow: str, ok: bool, error: str | None = None, *,
                       now: dt.datetime | None = None) -> None:
    """Record how a pass of ``flow`` ended, for ``regsync status`` and ``/metrics``.

    A success sets ``last_success_at`` and clears ``failing_since`` and ``last_error``; a failure keeps the first
    ``failing_since`` (so ``status`` can tell for how long the registry has refused, e.g. ``invalid_client``) and
    the newest error, masked. Both set ``last_attempt_at``.

    Args:
        engine: the local store.
        flow: ``outbound``, ``inbound`` or ``reconcile``.
        ok: whether the pass completed (exit code 0; a *partial* run counts as completed).
        error: the failure's message (masked here before it is stored).
        now: the time to record (naive UTC; default now).

    Raises:
        ValueError: an unknown flow.
    """
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; one of {', '.join(FLOWS)}")
    now = now or utcnow()
    with engine.begin() as conn:
        _ensure_rows(conn, [flow])
        stmt = update(FlowState).where(FlowState.flow == flow)
        if ok:
            conn.execute(stmt.values(last_attempt_at=now, last_success_at=now, failing_since=None, last_error=None))
        else:
            conn.execute(stmt.values(last_attempt_at=now, last_error=mask_text(error or "failed")[:2000],
                                     failing_since=func.coalesce(FlowState.failing_since, now)))


#: The actor of the audit rows regsync writes itself (a pause that expired).
SELF_ACTOR = "regsync"


def is_paused(engine: Engine, flow: str, *, now: dt.datetime | None = None) -> bool:
    """Whether an operator has paused ``flow`` (``regsync pause``) and the pause holds at ``now``.

    A pause whose expiry (``paused_until``) has come is resumed here, audited (:func:`resume_expired`): every
    path that honours a pause (the daemon's jobs and heartbeat, a manual ``sync``) also ends it on time.

    Args:
        engine: the local store.
        flow: one of :data:`FLOWS`.
        now: naive UTC (default now).
    """
    now = now or utcnow()
    with engine.connect() as conn:
        row = conn.execute(select(FlowState.paused, FlowState.paused_until).where(FlowState.flow == flow)).first()
    if row is None or not row.paused:
        return False
    until = _as_dt(row.paused_until)
    if until is not None and until <= now:
        resume_expired(engine, now=now)
        return False
    return True


def resume_expired(engine: Engine, *, now: dt.datetime | None = None) -> list[str]:
    """Resume the flows whose pause has expired (``paused_until`` ≤ ``now``), each with an audit row (action
    ``resume``, actor ``regsync``, the reason naming the expiry and the pause it ends). Safe against concurrent
    callers: a flow is resumed, and audited, once.

    Args:
        engine: the local store.
        now: naive UTC (default now).

    Returns:
        The flows resumed.
    """
    now = now or utcnow()
    resumed: list[str] = []
    with engine.begin() as conn:
        due = conn.execute(select(FlowState).where(FlowState.paused.is_(True), FlowState.paused_until.is_not(None),
                                                   FlowState.paused_until <= now)).all()
        for row in due:
            done = conn.execute(update(FlowState).where(
                FlowState.flow == row.flow, FlowState.paused.is_(True), FlowState.paused_until == row.paused_until)
                .values(paused=False, paused_by=None, paused_reason=None, paused_at=None, paused_until=None)).rowcount
            if not done:
                continue  # another process resumed it (or it was paused again) meanwhile
            until = _iso_local(_as_dt(row.paused_until))
            reason = mask_text(f"the pause expired at {until} (paused by {row.paused_by}: {row.paused_reason})")
            conn.execute(Audit.__table__.insert().values(
                at=now, actor=SELF_ACTOR, action="resume", target=row.flow, reason=reason[:2000],
                details=json.dumps({"changed": [row.flow], "expired": True, "paused_until": until,
                                    "by": current_worker()}, sort_keys=True)))
            resumed.append(row.flow)
    for flow in resumed:
        log.info("pause expired: flow resumed", flow=flow)
    return resumed


#: ``--for`` units: seconds per unit.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text_: str) -> dt.timedelta:
    """A duration as ``regsync pause --for`` takes it: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``.

    Raises:
        OperatorUsageError: not of that form, or not positive.
    """
    import re

    from regsync.flows.operator import OperatorUsageError

    compact = (text_ or "").strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", compact)
    if not compact or not parts or "".join(n + u for n, u in parts) != compact:
        raise OperatorUsageError(f"--for takes a duration such as 90s, 30m, 2h, 1d or 1h30m, got {text_!r}")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise OperatorUsageError(f"--for must be longer than 0 s, got {text_!r}")
    return dt.timedelta(seconds=seconds)


def pause_end(for_: str | None, until: str | None, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a pause ends, from ``regsync pause --for`` or ``--until`` (naive UTC), or ``None`` for neither.

    Args:
        for_: a duration (:func:`parse_duration`), from ``now``.
        until: an ISO 8601 time; without an offset it is +08:00 (Asia/Shanghai, as ``status`` shows times).
        now: naive UTC (default now).

    Raises:
        OperatorUsageError: both given, a malformed value, or an end not in the future.
    """
    from regsync.flows.operator import SHANGHAI, OperatorUsageError

    now = now or utcnow()
    if for_ is not None and until is not None:
        raise OperatorUsageError("give --for or --until, not both")
    if for_ is not None:
        return now + parse_duration(for_)
    if until is None:
        return None
    try:
        at = dt.datetime.fromisoformat(until.strip())
    except ValueError as exc:
        raise OperatorUsageError(f"--until takes a time such as 2026-12-01T06:00 (+08:00 unless an offset is "
                                 f"given), got {until!r}") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=SHANGHAI)
    end = at.astimezone(dt.UTC).replace(tzinfo=None)
    if end <= now:
        raise OperatorUsageError(f"--until {until} is not in the future (now {_iso_local(now)})")
    return end


def set_paused(engine: Engine, flows: Sequence[str], paused: bool, *, reason: str, actor: str | None = None,
               now: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[str, Any]:
    """Pause or resume flows, with an audit row (action ``pause`` or ``resume``).

    Args:
        engine: the local store.
        flows: some of :data:`PAUSABLE`.
        paused: pause (true) or resume (false).
        reason: why (required; masked in the audit table).
        actor: who (default: the OS user).
        now: naive UTC (default now).
        until: when the pause ends by itself (naive UTC; :func:`pause_end`); ``None``: when resumed. Pausing a
            flow paused already sets its expiry anew.

    Returns:
        ``{"action", "flows", "changed" (flows whose state or expiry changed), "until" (+08:00 ISO or
        ``None``), "audit_id"}``.

    Raises:
        OperatorUsageError: no flow, an unknown flow, an empty reason, an expiry with a resume, or an expiry not
            in the future.
    """
    from regsync.flows.operator import OperatorUsageError, check_reason, default_actor

    reason = check_reason(reason)
    if not flows or any(f not in PAUSABLE for f in flows):
        raise OperatorUsageError(f"flows to pause or resume: {', '.join(PAUSABLE)}")
    now = now or utcnow()
    if until is not None and not paused:
        raise OperatorUsageError("an expiry (--for, --until) is for pause, not resume")
    if until is not None and until <= now:
        raise OperatorUsageError(f"the pause would end at {_iso_local(until)}, which is not in the future")
    actor = mask_text((actor or default_actor()).strip() or "unknown")[:64]
    action = "pause" if paused else "resume"
    with engine.begin() as conn:
        _ensure_rows(conn, flows)
        before = {r.flow: r for r in conn.execute(select(FlowState.flow, FlowState.paused, FlowState.paused_until)
                                                  .where(FlowState.flow.in_(flows))).all()}
        changed = [f for f in flows if bool(before[f].paused) != paused]
        values = (dict(paused=True, paused_by=actor, paused_reason=mask_text(reason), paused_at=now,
                       paused_until=until) if paused
                  else dict(paused=False, paused_by=None, paused_reason=None, paused_at=None, paused_until=None))
        if changed:
            conn.execute(update(FlowState).where(FlowState.flow.in_(changed)).values(**values))
        if paused:  # a flow paused already: its expiry is the new one
            again = [f for f in flows if f not in changed and _as_dt(before[f].paused_until) != until]
            if again:
                conn.execute(update(FlowState).where(FlowState.flow.in_(again)).values(paused_until=until))
                changed += again
        details: dict[str, Any] = {"changed": changed}
        if until is not None:
            details["until"] = _iso_local(until)
        audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
            at=now, actor=actor, action=action, target=",".join(flows), reason=mask_text(reason),
            details=json.dumps(details, sort_keys=True))).inserted_primary_key[0])
    log.info(f"flows {action}d", flows=list(flows), changed=changed, actor=actor, until=_iso_local(until))
    return {"action": action, "flows": list(flows), "changed": changed, "until": _iso_local(until),
            "audit_id": audit_id}


def _last_reconcile_run(conn: Any) -> dt.datetime | None:
    """The end of the last completed reconcile run (``regsync reconcile`` records no flow result of its own).
    Push and pull are not read off runs: a ``sync`` run may have pushed nothing at all (``--inbound``, or the
    outbound flow paused), and every pass of either records its flow's result (:func:`record_flow_result`)."""
    return _as_dt(conn.execute(select(func.max(Run.finished_at)).where(
        Run.status.in_(("success", "partial")), Run.kind == "reconcile")).scalar_one())


def collect_status(engine: Engine, settings: Settings, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What ``regsync status`` shows, as plain data (the shape of ``status --json``).

    Args:
        engine: the local store.
        settings: regsync's settings (``[health]`` limits, ``[daemon]`` schedule).
        now: naive UTC (default now).

    Returns:
        ``healthy`` (bool) and ``problems`` (list of sentences); ``backlog`` (state → outbox rows);
        ``oldest_pending_age_s``; ``flows`` (flow → ``paused``, ``paused_by``, ``paused_reason``, ``paused_at``,
        ``last_success_at``, ``last_success_age_s``, ``failing_since``, ``failing_for_s``, ``last_error``);
        ``last_push``/``last_pull``/``last_reconcile`` (+08:00 ISO or ``None``); ``cursor_age_s``;
        ``open_conflicts``; ``failed_records`` and ``failed_by_code`` (records failed or blocked);
        ``paused`` (flows); each flow also ``paused_until`` (+08:00 ISO or ``None``), ``pause_expired`` and
        ``paused_for_s``; ``daemon`` (``alive``, ``workers``: the live daemons, each ``worker``, ``started_at``,
        ``last_beat_at``, ``beat_age_s``; ``last_seen_at``: the newest beat of any daemon, or ``None``);
        ``next_runs`` (job → +08:00 ISO: the earliest next run of a live daemon's scheduler; empty when no daemon
        is alive); ``running`` (runs still going on: ``run_id``, ``kind``, ``worker``, ``started_at``,
        ``abandoned`` — its process is gone); ``abandoned`` (runs marked abandoned in the last day, the same
        keys); ``reconcile_due`` (``{"reason", "at"}`` or ``None``); ``now``. Times are +08:00, ages whole
        seconds.
    """
    from regsync.db.liveness import abandoned, workers
    from regsync.flows.commands import outbox_failures
    from regsync.flows.inbound import CURSOR_NAME, reconcile_due

    now = now or utcnow()
    with engine.connect() as conn:
        backlog = {state: 0 for state in BACKLOG_STATES}
        backlog.update({s: int(n) for s, n in conn.execute(
            select(Outbox.state, func.count()).where(Outbox.state.in_(BACKLOG_STATES)).group_by(Outbox.state))})
        oldest = _as_dt(conn.execute(select(func.min(Outbox.created_at)).where(
            Outbox.state.in_(("pending", "deferred")))).scalar_one())
        states = {row.flow: row for row in conn.execute(select(FlowState)).all()}
        run_success = {"reconcile": _last_reconcile_run(conn)}
        cursor_at = _as_dt(conn.execute(select(FeedCursor.updated_at).where(
            FeedCursor.name == CURSOR_NAME)).scalar_one_or_none())
        open_conflicts = int(conn.execute(select(func.count()).select_from(Conflict).where(
            Conflict.state == "open")).scalar_one())
        due = reconcile_due(conn)
        daemons = workers(conn, role="daemon", now=now)
        running = conn.execute(select(Run.id, Run.kind, Run.worker, Run.started_at).where(Run.status == "running")
                               .order_by(Run.id)).all()
        dead_runs = {r.id for r in abandoned(conn, now)[0]}
        recently_abandoned = conn.execute(select(Run.id, Run.kind, Run.worker, Run.started_at).where(
            Run.status == "abandoned", Run.finished_at >= now - dt.timedelta(days=1)).order_by(Run.id)).all()
    failed_by_kind, failed_by_code = outbox_failures(engine)
    live = [d for d in daemons if d.alive]
    upcoming: dict[str, dt.datetime] = {}
    for d in live:
        for job, at in d.next_runs.items():
            if job not in upcoming or at < upcoming[job]:
                upcoming[job] = at

    flows: dict[str, dict[str, Any]] = {}
    for flow in FLOWS:
        row = states.get(flow)
        candidates = [t for t in (_as_dt(row.last_success_at) if row else None, run_success.get(flow)) if t]
        last_ok = max(candidates) if candidates else None
        failing = _as_dt(row.failing_since) if row else None
        paused = bool(row.paused) if row else False
        until = _as_dt(row.paused_until) if row and paused else None
        flows[flow] = {
            "paused": paused,
            "paused_by": row.paused_by if row else None,
            "paused_reason": row.paused_reason if row else None,
            "paused_at": _iso_local(_as_dt(row.paused_at)) if row else None,
            "paused_until": _iso_local(until),
            "pause_expired": bool(until is not None and until <= now),
            "paused_for_s": _age(now, _as_dt(row.paused_at)) if paused and row else None,
            "last_success_at": _iso_local(last_ok),
            "last_success_age_s": _age(now, last_ok),
            "failing_since": _iso_local(failing),
            "failing_for_s": _age(now, failing),
            "last_error": row.last_error if row and failing else None,
        }
    status: dict[str, Any] = {
        "now": _iso_local(now),
        "backlog": backlog,
        "oldest_pending_age_s": _age(now, oldest),
        "flows": flows,
        "last_push": flows["outbound"]["last_success_at"],
        "last_pull": flows["inbound"]["last_success_at"],
        "last_reconcile": flows["reconcile"]["last_success_at"],
        "cursor_age_s": _age(now, cursor_at),
        "open_conflicts": open_conflicts,
        "failed_records": sum(failed_by_kind.values()),
        "failed_by_code": failed_by_code,
        "paused": [f for f in FLOWS if flows[f]["paused"]],
        "daemon": {
            "alive": bool(live),
            "workers": [{"worker": d.worker, "started_at": _iso_local(d.started_at),
                         "last_beat_at": _iso_local(d.beat_at), "beat_age_s": _age(now, d.beat_at)} for d in live],
            "last_seen_at": _iso_local(max((d.beat_at for d in daemons), default=None)),
        },
        # a time already past (the heartbeat is up to 10 s old): the job is due or running now
        "next_runs": {job: _iso_local(max(upcoming[job], now)) for job in sorted(upcoming)},
        "running": [{"run_id": int(r.id), "kind": r.kind, "worker": r.worker,
                     "started_at": _iso_local(_as_dt(r.started_at)), "abandoned": r.id in dead_runs}
                    for r in running],
        "abandoned": [{"run_id": int(r.id), "kind": r.kind, "worker": r.worker,
                       "started_at": _iso_local(_as_dt(r.started_at)), "abandoned": True}
                      for r in recently_abandoned],
        "reconcile_due": {"reason": due.get("reason"), "at": due.get("at")} if due else None,
    }
    status["problems"] = health_problems(status, settings)
    status["healthy"] = not status["problems"]
    return status


def health_problems(status: dict[str, Any], settings: Settings) -> list[str]:
    """The reasons the service is unhealthy by the ``[health]`` limits (empty: healthy).

    Rules (issues 6 and 12): no daemon alive (no heartbeat within its lease: :mod:`regsync.db.liveness`); an
    unpaused outbound flow whose oldest waiting change is older than ``outbound_max_lag_s``; an unpaused inbound
    flow whose last successful pull is older than ``inbound_max_age_s``; a last successful reconcile older than
    ``reconcile_max_age_s``; any flow failing (e.g. ``invalid_client``) for ``max_failing_s`` or longer (0, the
    default: as soon as a pass has failed); a pause past its expiry (no daemon resumed it) or older than
    ``max_pause_s``; a full reconcile marked as due (design.md, flow 2: the feed missed changes). A flow that has never succeeded is judged by the failing rule only (a new installation is
    not unhealthy before its first pass).

    Args:
        status: :func:`collect_status`'s data (``daemon``, ``flows``, ``oldest_pending_age_s``).
        settings: the limits (``[health]``).
    """
    h = settings.health
    problems: list[str] = []
    flows = status["flows"]
    daemon = status.get("daemon") or {}
    if not daemon.get("alive"):
        seen = daemon.get("last_seen_at")
        problems.append("no daemon is running (`regsync run`): " + (f"the last one was seen at {seen}" if seen
                                                                    else "none has run on this store"))
    lag = status["oldest_pending_age_s"]
    if not flows["outbound"]["paused"] and lag is not None and lag > h.outbound_max_lag_s:
        problems.append(f"outbound is stale: the oldest waiting change is {lag} s old "
                        f"(limit {h.outbound_max_lag_s:g} s, REGSYNC_HEALTH_OUTBOUND_MAX_LAG_S)")
    for flow, limit, var in (("inbound", h.inbound_max_age_s, "REGSYNC_HEALTH_INBOUND_MAX_AGE_S"),
                             ("reconcile", h.reconcile_max_age_s, "REGSYNC_HEALTH_RECONCILE_MAX_AGE_S")):
        age = flows[flow]["last_success_age_s"]
        if not flows[flow]["paused"] and age is not None and age > limit:
            problems.append(f"{flow} is stale: its last success was {age} s ago (limit {limit:g} s, {var})")
    due = status.get("reconcile_due")
    if due:  # the change feed missed changes (CURSOR_EXPIRED, NO_CURSOR): pulls alone never bring them home
        problems.append(f"a full reconcile is due ({due.get('reason')}, since {due.get('at')} UTC): the change feed "
                        "missed registry changes that only `regsync reconcile` brings home")
    for flow in FLOWS:
        failing = flows[flow]["failing_for_s"]
        if failing is not None and failing >= h.max_failing_s:
            problems.append(f"{flow} has been failing for {failing} s (limit {h.max_failing_s:g} s, "
                            f"REGSYNC_HEALTH_MAX_FAILING_S): {flows[flow]['last_error']}")
    for flow in FLOWS:
        f = flows[flow]
        if not f["paused"]:
            continue
        if f.get("pause_expired"):
            problems.append(f"{flow}'s pause expired at {f['paused_until']} but no daemon has resumed it")
        elif f.get("paused_for_s") is not None and f["paused_for_s"] > h.max_pause_s:
            problems.append(f"{flow} has been paused for {f['paused_for_s']} s (limit {h.max_pause_s:g} s, "
                            f"REGSYNC_HEALTH_MAX_PAUSE_S) by {f['paused_by']}: {f['paused_reason']}")
    return problems


def print_status(status: dict[str, Any]) -> None:
    """A Rich rendering of :func:`collect_status`'s data on stdout, for a terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from regsync.flows.operator import format_age

    out = Console()
    verdict = "[green]healthy[/green]" if status["healthy"] else "[red]UNHEALTHY[/red]"
    out.print(f"regsync at {status['now']}: {verdict}")
    for problem in status["problems"]:
        out.print(f"  [red]•[/red] {problem}", highlight=False)
    daemon = status.get("daemon") or {}
    if daemon.get("alive"):
        out.print("daemon: running — " + "; ".join(
            f"{w['worker']} since {w['started_at']}, last heartbeat {format_age(w['beat_age_s'])} ago"
            for w in daemon["workers"]), highlight=False)
    else:
        out.print("daemon: [red]not running[/red]" + (f" (last seen {daemon['last_seen_at']})"
                                                       if daemon.get("last_seen_at") else " (never seen)"),
                  highlight=False)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("flow", "state", "last success", "age", "failing for", "next run"):
        table.add_column(col, no_wrap=True)
    jobs = {"outbound": "outbound", "inbound": "inbound", "reconcile": "reconcile"}
    for flow, f in status["flows"].items():
        # "enabled": not paused; whether a daemon runs it is the daemon line above
        state = (f"paused by {f['paused_by']}: {f['paused_reason']}"
                 + (f" (until {f['paused_until']}{', expired' if f.get('pause_expired') else ''})"
                    if f.get("paused_until") else "")) if f["paused"] else (
            "enabled" if not f["failing_since"] else "failing" if any(
                p.startswith(f"{flow} has been failing") for p in status["problems"])
            else "failing (within REGSYNC_HEALTH_MAX_FAILING_S)")
        table.add_row(flow, state, f["last_success_at"] or "never", format_age(f["last_success_age_s"]),
                      format_age(f["failing_for_s"]) if f["failing_since"] else "—",
                      status["next_runs"].get(jobs[flow]) or "—")
    out.print(table)
    backlog = ", ".join(f"{k} {v}" for k, v in status["backlog"].items())
    oldest = status["oldest_pending_age_s"]
    out.print(f"outbox: {backlog}; " + (f"oldest waiting change {format_age(oldest)} old" if oldest is not None
                                        else "no change waiting"), highlight=False)
    out.print(f"failed records {status['failed_records']}"
              + (f" ({', '.join(f'{k} {v}' for k, v in status['failed_by_code'].items())})"
                 if status["failed_by_code"] else "")
              + f"; open conflicts {status['open_conflicts']}; change-feed cursor "
              + (f"{format_age(status['cursor_age_s'])} old" if status["cursor_age_s"] is not None else "not taken"),
              highlight=False)
    if status["reconcile_due"]:
        out.print(f"[yellow]a full reconcile is due[/yellow] ({status['reconcile_due']['reason']}, since "
                  f"{status['reconcile_due']['at']} UTC)", highlight=False)
    for r in status.get("running") or []:
        state = "[red]abandoned[/red] (its process is gone)" if r["abandoned"] else "running"
        out.print(f"run {r['run_id']} ({r['kind']}, {r['worker']}, since {r['started_at']}): {state}",
                  highlight=False)
    for r in status.get("abandoned") or []:
        out.print(f"run {r['run_id']} ({r['kind']}, started {r['started_at']}) was [red]abandoned[/red]: its "
                  f"process ({r['worker']}) ended without finishing it", highlight=False)
    for flow, f in status["flows"].items():
        if f["last_error"]:
            out.print(f"{flow} last error: {f['last_error']}", highlight=False)


def run_status(settings: Settings) -> tuple[int, dict[str, Any]]:
    """``regsync status``: (exit code, status). Exit code 0 healthy, 3 unhealthy (design.md, exit codes).

    Raises:
        ConfigError: a bad database URL.
        StoreError: the local store is unusable (exit code 1).
    """
    from regsync.db.liveness import sweep
    from regsync.flows.commands import open_store

    engine = open_store(settings.database.url)
    try:
        sweep(engine)  # runs and slots whose process is gone are marked abandoned, for every reader
        status = collect_status(engine, settings)
        saved = stored_fingerprint(engine)
    finally:
        engine.dispose()
    if saved is not None and saved != fingerprint(settings.hash_key):
        # every flow refuses to run with this key (exit 2): the first thing an operator must read
        status["problems"].insert(0, f"the configured hash key is not this store's (store {saved}, configured "
                                     f"{fingerprint(settings.hash_key)}): every flow refuses to run; set the "
                                     "store's key (REGSYNC_HASH_KEY or REGSYNC_HASH_KEY_FILE) or run "
                                     "`regsync db rekey` (deploy/RUNBOOK.md)")
        status["healthy"] = False
    return (0 if status["healthy"] else 3), status


def run_pause(settings: Settings, flows: Sequence[str], paused: bool, *, reason: str,
              actor: str | None = None, for_: str | None = None, until: str | None = None) -> dict[str, Any]:
    """``regsync pause`` / ``regsync resume`` on the store of ``settings`` (see :func:`set_paused`).

    Args:
        settings: regsync's settings (the store).
        flows: some of :data:`PAUSABLE`.
        paused: pause (true) or resume (false).
        reason: why (required; audited).
        actor: who (default: the OS user).
        for_: ``pause --for`` (a duration, :func:`parse_duration`).
        until: ``pause --until`` (ISO 8601; +08:00 without an offset).

    Raises:
        OperatorUsageError: no flow, an empty reason, or a bad expiry (exit code 2).
        ConfigError: a bad database URL.
        StoreError: the local store is unusable (exit code 1).
    """
    from regsync.flows.commands import open_store
    from regsync.flows.operator import check_reason

    check_reason(reason)
    end = pause_end(for_, until)
    if end is not None and not paused:
        from regsync.flows.operator import OperatorUsageError

        raise OperatorUsageError("an expiry (--for, --until) is for pause, not resume")
    engine = open_store(settings.database.url)
    try:
        return set_paused(engine, flows, paused, reason=reason, actor=actor, until=end)
    finally:
        engine.dispose()

