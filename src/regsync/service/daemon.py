"""The daemon, ``regsync run`` (design.md, "Who uses it": the daemon runs all the time; issue 6).

APScheduler 3 (a :class:`~apscheduler.schedulers.background.BackgroundScheduler`, time zone ``[daemon] timezone``,
Asia/Shanghai by default) runs four jobs:

========== ====================================== =============================================================
job        when                                   what
========== ====================================== =============================================================
outbound   every ``outbound_interval_s`` (2 s)    one relay pass (:func:`regsync.flows.sync.run_sync`)
inbound    every ``inbound_interval_s`` (60 s)    one change-feed pass (:func:`regsync.flows.sync.run_pull`)
reconcile  ``reconcile_cron`` (02:00 +08:00)      the full reconcile (``regsync.flows.reconcile.run_reconcile``), then
                                                  its HTML and CSV reports into ``reports_dir``
prune      ``prune_cron`` (03:30 +08:00)          :func:`prune`: old runs, sent outbox rows… (``[retention]``)
========== ====================================== =============================================================

Every job has ``max_instances=1`` (a pass never overlaps itself in one daemon), ``coalesce=True`` (ticks missed
while a pass ran become one) and a ``misfire_grace_time`` of one interval for the frequent jobs (a late tick is
worth little: the next comes soon) and of ``catchup_window_s`` for the cron jobs (a nightly run a few minutes late
still runs). A cron run missed because the daemon was *down* at its time is logged and caught up once at start
(:meth:`Daemon.catch_up`), if it is at most ``catchup_window_s`` old.

**Runs and idle ticks.** A job records a ``run`` only when it did work: the relay looks for available outbox rows
first, and a pull that read no change leaves no run. Idle ticks show only in ``/metrics``.

**Slots.** The singleton jobs (inbound, reconcile, prune) claim their run slot — a ``run_slot`` row unique on (job,
scheduled time) — before they work, so neither a second daemon nor a manual command holding the same slot runs it
twice (:func:`claim_slot`). The outbound relay claims no slot: its unit of work is the outbox row, claimed as a
lease with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas share the backlog.

**Replicas.** On PostgreSQL several daemons may run against one store: relays share the outbox; the pull and the
reconcile run on one replica at a time, under a session advisory lock (:class:`SingletonLock`) that PostgreSQL
drops when the replica's connection dies, so another replica takes over at its next tick. On SQLite a second
daemon is refused (:class:`DaemonAlreadyRunning`, a lock file beside the database).

**Liveness.** The daemon holds a lease in ``heartbeat`` for its whole life (:mod:`regsync.db.liveness`), renewed
every few seconds by a thread of its own, with its scheduler's next run times: ``regsync status`` (on any host)
says whether a daemon is alive and shows only a live daemon's next runs. At every beat it marks ``abandoned`` the
runs and slots left ``running`` by processes that are gone (SIGKILL), and resumes the pauses that expired. A slot
whose process is gone may be claimed again (:func:`claim_slot`): a nightly reconcile killed mid-way runs again.

**Failures.** A relay or pull pass that fails (the registry refuses the credentials, or is down) raises its alarm
once; the same alarm in the passes that follow is logged as a repeat (``alarm_repeat``), and the passes back off:
the next waits 2, 4, 8… intervals, at most ``backoff_max_s``; a success resets both. Each run ends with one INFO
line, ``run finished`` (run id, flow, status, seconds, pushed, failed, pulled…).

**Signals.** The first SIGTERM or SIGINT stops new work: the relay finishes its batches in flight, records them and
releases its other claims; the daemon waits up to ``shutdown_timeout_s`` for the jobs, logs one line with what
finished, failed and was left, and exits 0. A second signal stops at once (leases expire on their own).

Errors (all :class:`DaemonError`)::

    DaemonError
    └── DaemonAlreadyRunning    another daemon holds this SQLite store
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete, select, update

from regsync.db.flowstate import FLOWS, is_paused, record_flow_result, resume_expired
from regsync.db.hashkey import check_hash_key
from regsync.db.liveness import KEEPER, beat, sweep
from regsync.db.locks import SingletonLock, claim_slot, finish_slot, slot_at
from regsync.db.models import Outbox, Run
from regsync.db.retention import prune
from regsync.db.runs import finish_run, outbox_backlog, start_run
from regsync.db.session import current_worker, utcnow
from regsync.db.store import open_store
from regsync.domain.masking import mask_text
from regsync.flows.inbound import Poller
from regsync.flows.outbound import unblock
from regsync.flows.reconcile import run_reconcile
from regsync.flows.runs import require_registry
from regsync.flows.sync import run_pull, run_sync
from regsync.registry.client import RegistryClient
from regsync.reports.export import export_to_path
from regsync.service.logs import alarm_streak
from regsync.service.metrics import Metrics, serve_metrics
from regsync.service.signals import stop_signals
from regsync.settings import DaemonSettings, Settings, cron_trigger

log = structlog.get_logger(__name__)

#: The daemon's jobs, in the order they are listed.
JOBS: tuple[str, ...] = ("outbound", "inbound", "reconcile", "prune")
#: Jobs that run on one replica at a time and claim a run slot.
SINGLETONS: tuple[str, ...] = ("inbound", "reconcile", "prune")
#: Jobs whose failed passes back off (:meth:`Daemon.passed`).
BACKOFF_JOBS: tuple[str, ...] = ("outbound", "inbound")
#: Interval triggers start here, so that every replica's ticks (and so their slots) fall on the same times.
INTERVAL_ANCHOR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class DaemonError(Exception):
    """The daemon cannot start (exit code 1)."""


class DaemonAlreadyRunning(DaemonError):
    """Another daemon runs on this SQLite store; only PostgreSQL allows several replicas."""


# ------------------------------------------------------------------------------------------------ schedule
def build_triggers(daemon: DaemonSettings) -> dict[str, BaseTrigger]:
    """Job name → its trigger, from ``[daemon]``. Interval triggers start at :data:`INTERVAL_ANCHOR`."""
    tz = ZoneInfo(daemon.timezone)
    return {
        "outbound": IntervalTrigger(seconds=daemon.outbound_interval_s, start_date=INTERVAL_ANCHOR, timezone=tz),
        "inbound": IntervalTrigger(seconds=daemon.inbound_interval_s, start_date=INTERVAL_ANCHOR, timezone=tz),
        "reconcile": cron_trigger(daemon.reconcile_cron, daemon.timezone),
        "prune": cron_trigger(daemon.prune_cron, daemon.timezone),
    }


def _aware(naive_utc: dt.datetime) -> dt.datetime:
    return naive_utc.replace(tzinfo=dt.UTC)


def _naive(aware: dt.datetime) -> dt.datetime:
    return aware.astimezone(dt.UTC).replace(tzinfo=None)


def next_runs(settings: Settings, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """Job name → its next run after ``now`` by the configured schedule (naive UTC in, naive UTC out)."""
    now_aware = _aware(now or utcnow())
    out: dict[str, dt.datetime] = {}
    for job, trigger in build_triggers(settings.daemon).items():
        nxt = trigger.get_next_fire_time(None, now_aware + dt.timedelta(microseconds=1))
        if nxt is not None:
            out[job] = _naive(nxt)
    return out


def fire_times(trigger: BaseTrigger, start: dt.datetime, end: dt.datetime, limit: int = 100_000) -> list[dt.datetime]:
    """The trigger's fire times in ``[start, end]`` (naive UTC), at most ``limit`` of them."""
    out: list[dt.datetime] = []
    prev = None
    cursor = _aware(start)
    end_aware = _aware(end)
    while len(out) < limit:
        nxt = trigger.get_next_fire_time(prev, cursor)
        if nxt is None or nxt > end_aware:
            break
        out.append(_naive(nxt))
        prev, cursor = nxt, nxt + dt.timedelta(microseconds=1)
    return out


def latest_fire_time(trigger: BaseTrigger, now: dt.datetime, horizon_s: float = 8 * 86400) -> dt.datetime | None:
    """The trigger's last fire time at or before ``now`` (naive UTC), looking back at most ``horizon_s``.

    This is the run slot a job started at ``now`` belongs to (APScheduler starts a job at or after its time).
    """
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval.total_seconds()
        since = (_aware(now) - trigger.start_date).total_seconds()
        if since < 0:
            return None
        return _naive(trigger.start_date + dt.timedelta(seconds=step * int(since // step)))
    for window in (60.0, 3600.0, 86400.0, horizon_s):
        times = fire_times(trigger, now - dt.timedelta(seconds=min(window, horizon_s)), now)
        if times:
            return times[-1]
        if window >= horizon_s:
            break
    return None


# ------------------------------------------------------------------------------------------------ slots

def sqlite_daemon_lock(engine: Engine) -> TextIO | None:
    """On SQLite, hold an exclusive lock on ``<database>.daemon.lock`` for the daemon's life (the OS drops it
    when the process ends, even by SIGKILL). ``None`` on PostgreSQL (replicas are allowed) or for an in-memory
    store.

    Raises:
        DaemonAlreadyRunning: another process holds the lock.
    """
    import fcntl

    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    lock_path = Path(f"{path}.daemon.lock")
    handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 — held open for the daemon's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DaemonAlreadyRunning(
            f"another regsync daemon ({holder}) is running on the SQLite store {path}; on SQLite only one "
            "daemon may run (its lock file is " + str(lock_path) + "). Use PostgreSQL for several replicas."
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{socket.gethostname()}:{os.getpid()}\n")
    handle.flush()
    return handle


# ------------------------------------------------------------------------------------------------ retention

# ------------------------------------------------------------------------------------------------ the daemon
def outbound_work_available(engine: Engine, *, now: dt.datetime | None = None) -> bool:
    """Whether a relay pass has anything to do: re-queues the blocked rows whose awaited record is linked now
    (:func:`regsync.flows.outbound.unblock`), then looks for an available outbox row (pending, or deferred and due, not
    under a live lease)."""

    now = now or utcnow()
    with engine.begin() as conn:
        unblock(conn, now)
        row = conn.execute(select(Outbox.id).where(
            Outbox.state.in_(("pending", "deferred")), Outbox.available_at <= now,
            (Outbox.claimed_until.is_(None)) | (Outbox.claimed_until < now)).limit(1)).first()
    return row is not None


class Daemon:
    """The scheduler and its jobs (see the module docstring). One per process.

    Args:
        settings: regsync's settings (``[daemon]``, ``[health]``, ``[retention]`` and the flows' own).
        engine: the local store, migrated (the caller checks it: :func:`regsync.db.store.open_store`).
        worker: this daemon's name in slots and claims (default ``host:pid``).
        metrics: a :class:`regsync.service.metrics.Metrics` to count into (default: a new one).

    Attributes:
        stop: set when the daemon is asked to stop; the jobs poll it between steps.
        totals: what the daemon did since it started (``runs``, ``failed_runs``, ``pushed``, ``failed_records``,
            ``pulled``…), for the shutdown line.
    """

    def __init__(self, settings: Settings, engine: Engine, *, worker: str | None = None,
                 metrics: Any = None) -> None:

        self.settings = settings
        self.engine = engine
        self.worker = worker or current_worker()
        self.metrics = metrics or Metrics(engine, settings)
        self.stop = threading.Event()
        self.totals: Counter[str] = Counter()
        self.triggers = build_triggers(settings.daemon)
        self.scheduler: BackgroundScheduler | None = None
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._cursor_ready = False
        self._clients: dict[str, Any] = {}
        # failure streaks of the frequent jobs: failed passes in a row, ticks still to skip, alarms raised
        self._failures: Counter[str] = Counter()
        self._skip: Counter[str] = Counter()
        self._alarmed: dict[str, set[str]] = {job: set() for job in BACKOFF_JOBS}
        self._holds_lease = False

    def client(self, flow: str) -> Any:
        """The registry client of ``flow`` (one per flow, kept with its token for the daemon's life; the relay's
        and the poller's threads never share one)."""

        with self._lock:
            if flow not in self._clients:
                self._clients[flow] = RegistryClient(self.settings.registry, province=self.settings.province)
            return self._clients[flow]

    def close_clients(self) -> None:
        """Close the registry clients (at shutdown, once no job runs)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def ensure_first_cursor(self) -> bool:
        """Take the change feed's first cursor before the first push (design.md, flow 2), if none is saved
        (:meth:`regsync.flows.inbound.Poller.take_first_cursor`: with records linked already, a full reconcile is
        marked as due). Returns whether pushes may go on: false while the registry cannot be asked (the relay
        waits; the next tick tries again)."""

        if self._cursor_ready:
            return True
        try:
            Poller(self.engine, self.client("outbound"), self.settings, record_run=False).take_first_cursor()
        except Exception as exc:  # noqa: BLE001 — retried at the next tick
            log.warning("cannot take the first change-feed cursor yet; pushes wait", error=mask_text(str(exc)))
            return False
        self._cursor_ready = True
        return True

    # -------------------------------------------------------------------------------------- liveness
    def scheduled_next_runs(self) -> dict[str, dt.datetime]:
        """Job → its next run by this daemon's scheduler (naive UTC); empty while the scheduler is not running.
        Written into the daemon's heartbeat, so that ``regsync status`` shows a live daemon's own times."""
        if self.scheduler is None or not self.scheduler.running:
            return {}
        out: dict[str, dt.datetime] = {}
        for job in self.scheduler.get_jobs():
            at = getattr(job, "next_run_time", None)
            if job.id in JOBS and at is not None:
                out[job.id] = _naive(at)
        return out

    def on_beat(self) -> None:
        """After each heartbeat: mark abandoned what gone processes left running, resume expired pauses."""

        sweep(self.engine)
        resume_expired(self.engine)

    # -------------------------------------------------------------------------------------- failure streaks
    def backing_off(self, job: str) -> bool:
        """Whether this tick of ``job`` is skipped, backing off after failed passes (one tick used up)."""
        with self._lock:
            if self._skip[job] > 0:
                self._skip[job] -= 1
                return True
        return False

    def passed(self, job: str, ok: bool, error: str | None = None) -> None:
        """Record how a pass of ``job`` (``outbound`` or ``inbound``) ended, for its failure streak.

        A failure makes the next ``2**n - 1`` ticks of the job skip (``n`` failed passes in a row), so the passes
        come 2, 4, 8… intervals apart, at most ``[daemon] backoff_max_s`` seconds; a success ends the streak:
        no tick is skipped and the next alarm is raised again (issue 12, item 10).
        """
        interval = {"outbound": self.settings.daemon.outbound_interval_s,
                    "inbound": self.settings.daemon.inbound_interval_s}[job]
        with self._lock:
            failures = self._failures[job]
            if ok:
                self._failures[job] = 0
                self._skip[job] = 0
                self._alarmed[job].clear()
            else:
                failures = self._failures[job] = failures + 1
                cap = max(0, int(self.settings.daemon.backoff_max_s // max(interval, 1e-3)) - 1)
                self._skip[job] = min(cap, 2 ** min(failures, 30) - 1)
                skip = self._skip[job]
        if ok:
            if failures:
                log.info(f"{job} works again", job=job, failed_passes=failures)
            return
        log.warning(f"{job} pass failed: the next passes back off", job=job, failed_passes=failures,
                    next_try_in_s=round((skip + 1) * interval, 3), error=mask_text(error or "failed"))

    def log_run(self, flow: str, summary: dict[str, Any], seconds: float | None = None) -> None:
        """One INFO line, ``run finished``, for a run the daemon made (issue 12, item 12): ``run_id``, ``flow``,
        ``status``, ``seconds``, ``pushed`` (created or updated in the registry), ``linked``, ``failed`` (records),
        ``pulled`` (feed changes read), ``applied`` (changes applied locally), ``conflicts``, and what the
        flow adds (the relay's ``unchanged`` and ``deferred``, the reconcile's ``discrepancies`` and
        ``repaired``, the prune's ``deleted``); the error, masked, when the run failed."""
        def total(value: Any) -> int:
            if isinstance(value, dict):
                return sum(total(v) for v in value.values())
            return int(value or 0) if isinstance(value, int | float) else 0

        line: dict[str, Any] = {
            "run_id": summary.get("run_id"), "flow": flow, "status": summary.get("status"),
            "seconds": summary.get("seconds", None if seconds is None else round(seconds, 3)),
            "pushed": total(summary.get("pushed")), "linked": total(summary.get("linked")),
            "failed": total(summary.get("failed")), "pulled": total(summary.get("pulled")),
            "applied": total(summary.get("applied")), "conflicts": total(summary.get("conflicts")),
        }
        if flow == "outbound":
            line.update(unchanged=total(summary.get("unchanged")), deferred=total(summary.get("deferred")))
        elif flow == "reconcile":
            line.update(discrepancies=total(summary.get("discrepancies")), repaired=total(summary.get("repaired")))
        elif flow == "prune":
            line.update(deleted=total(summary.get("deleted")))
        if summary.get("error"):
            line["error"] = mask_text(str(summary["error"]))
        log.info("run finished", **line)

    # -------------------------------------------------------------------------------------- job bodies
    def job_outbound(self) -> str:
        """One relay pass if the outbound flow is not paused, not backing off after failures, and a row is
        available.

        Returns:
            ``run`` (a pass ran), ``idle``, ``paused``, ``backoff``, ``stopping`` or ``failed``.
        """

        if self.stop.is_set():
            return "stopping"
        if is_paused(self.engine, "outbound"):
            return "paused"
        if self.backing_off("outbound"):
            return "backoff"
        if not outbound_work_available(self.engine):
            return "idle"
        with alarm_streak(self._alarmed["outbound"]):
            if not self.ensure_first_cursor():
                self.passed("outbound", False, "the change feed's first cursor cannot be taken yet")
                return "failed"
            code, summary = run_sync(self.settings, engine=self.engine, stop=self.stop.is_set, inbound=False,
                                     client=self.client("outbound"))
        self.metrics.observe_sync(summary)
        self.totals["pushed"] += sum(summary.get("pushed", {}).values()) + sum(summary.get("linked", {}).values())
        self.totals["failed_records"] += sum(summary.get("failed", {}).values())
        if code == 130:  # stopped by the daemon's shutdown: neither a success nor a failure of the flow
            self.totals["interrupted_runs"] += 1
            self.log_run("outbound", summary)
            return "run"
        record_flow_result(self.engine, "outbound", code == 0, summary.get("error"))
        self.passed("outbound", code == 0, summary.get("error"))
        if code == 0 and not (summary["batches"] or any(summary[k] for k in ("pushed", "linked", "failed",
                                                                             "unchanged", "deferred"))):
            # the work seen a moment ago was claimed by another replica: this pass did nothing
            self._forget_idle_run(summary.get("run_id"))
            return "idle"
        self.totals["runs" if code == 0 else "failed_runs"] += 1
        self.log_run("outbound", summary)
        return "run" if code == 0 else "failed"

    def _forget_idle_run(self, run_id: int | None) -> None:
        """A pass that did no work leaves no run (idle ticks show only in /metrics; README, "runs")."""
        if run_id is not None:
            with self.engine.begin() as conn:
                conn.execute(delete(Run).where(Run.id == run_id))

    def job_inbound(self, scheduled_at: dt.datetime | None = None) -> str:
        """One change-feed pass in its slot, on one replica at a time (see :meth:`_singleton`); ``backoff`` while
        it backs off after failed passes (:meth:`passed`)."""
        if not self.stop.is_set() and self.backing_off("inbound"):
            return "backoff"
        return self._singleton("inbound", scheduled_at, self._pull)

    def job_reconcile(self, scheduled_at: dt.datetime | None = None) -> str:
        """The full reconcile in its slot, on one replica at a time, then its reports."""
        return self._singleton("reconcile", scheduled_at, self._reconcile)

    def job_prune(self, scheduled_at: dt.datetime | None = None) -> str:
        """The retention prune in its slot."""
        return self._singleton("prune", scheduled_at, self._prune)

    def _singleton(self, job: str, scheduled_at: dt.datetime | None,
                   body: Callable[[], tuple[str, int | None]]) -> str:
        """Run ``body`` under the job's advisory lock and in its run slot.

        Returns:
            ``run``, ``idle`` (the body found nothing to do, or the flow is paused), ``failed``, ``locked``
            (another replica runs this job now), ``taken`` (the slot was claimed already) or ``stopping``.
        """
        if self.stop.is_set():
            return "stopping"
        slot_time = scheduled_at or latest_fire_time(self.triggers[job], utcnow())
        if slot_time is None:
            return "idle"
        with SingletonLock(self.engine, job) as held:
            if not held:
                return "locked"
            slot = claim_slot(self.engine, job, slot_time, self.worker)
            if slot is None:
                return "taken"
            state, run_id = "failed", None
            try:
                state, run_id = body()
            except Exception as exc:  # noqa: BLE001 — a job's failure is logged and recorded, the daemon goes on
                with alarm_streak(self._alarmed.get(job, set())):
                    log.error(f"{job} job failed", error=mask_text(str(exc)), alarm=True)
                if job in FLOWS:  # a pass that failed before it could record itself (`regsync status` shows it)
                    record_flow_result(self.engine, job, False, str(exc))
                if job in BACKOFF_JOBS:
                    self.passed(job, False, str(exc))
            finally:
                finish_slot(self.engine, slot, state, run_id)
            if state == "done":
                self.totals["runs"] += 1
            elif state == "failed":
                self.totals["failed_runs"] += 1
            return {"done": "run", "idle": "idle", "failed": "failed"}[state]

    def _pull(self) -> tuple[str, int | None]:

        if is_paused(self.engine, "inbound"):
            return "idle", None
        with alarm_streak(self._alarmed["inbound"]):
            code, summary = run_pull(self.settings, engine=self.engine, stop=self.stop.is_set,
                                     client=self.client("inbound"))
        record_flow_result(self.engine, "inbound", code == 0, summary.get("error"))
        self.passed("inbound", code == 0, summary.get("error"))
        run_id = summary.get("run_id")
        idle = code == 0 and not summary.get("changes") and summary.get("status") == "success"
        self.metrics.observe_pull(summary, idle=idle)
        if idle:  # a pull that read no change did no work
            self._forget_idle_run(run_id)
            return "idle", None
        self.totals["pulled"] += int(summary.get("applied") or 0)
        self.log_run("inbound", summary)
        return ("done" if code == 0 else "failed"), run_id

    def _reconcile(self) -> tuple[str, int | None]:
        code, summary = run_reconcile(self.settings, repair=self.settings.daemon.reconcile_repair,
                                      engine=self.engine, stop=self.stop.is_set)
        record_flow_result(self.engine, "reconcile", code == 0, summary.get("error"))
        run_id = summary.get("run_id")
        self.log_run("reconcile", summary)
        if run_id is not None:
            self.export_reports(int(run_id))
        return ("done" if code == 0 else "failed"), run_id

    def export_reports(self, run_id: int) -> list[Path]:
        """Write the reconcile run's HTML and CSV reports into ``[daemon] reports_dir`` as
        ``reconcile-<run id>-<YYYYMMDD +08:00>.<html|csv>``.

        Returns:
            The files written.
        """
        folder = Path(self.settings.daemon.reports_dir)
        folder.mkdir(parents=True, exist_ok=True)
        day = dt.datetime.now(ZoneInfo(self.settings.daemon.timezone)).strftime("%Y%m%d")
        written: list[Path] = []
        for fmt in ("html", "csv"):
            path = folder / f"reconcile-{run_id}-{day}.{fmt}"
            try:
                export_to_path(self.engine, run_id, fmt, path, actor=self.worker)  # written whole, then renamed
            except Exception as exc:  # noqa: BLE001 — a report that fails to write does not fail the reconcile
                log.error("report not written", path=str(path), error=mask_text(str(exc)))
                continue
            written.append(path)
        log.info("reports written", run_id=run_id, files=[str(p) for p in written])
        return written

    def _prune(self) -> tuple[str, int | None]:

        started = time.monotonic()
        counts = prune(self.engine, self.settings.retention)
        if not any(counts.values()):
            return "idle", None
        run_id = start_run(self.engine, "prune")
        finish_run(self.engine, run_id, "success", {"deleted": counts})
        log.info("old records pruned", **counts)
        self.log_run("prune", {"run_id": run_id, "status": "success", "deleted": counts},
                     seconds=time.monotonic() - started)
        return "done", run_id

    # -------------------------------------------------------------------------------------- scheduling
    def _tick(self, job: str, fn: Callable[..., str], *args: Any) -> None:
        with self._lock:
            self._running[job] += 1
        try:
            outcome = fn(*args)
        except Exception as exc:  # noqa: BLE001 — logged; the scheduler keeps the job
            log.error(f"{job} job failed", error=mask_text(str(exc)), alarm=True)
            outcome = "failed"
        finally:
            with self._lock:
                self._running[job] -= 1
        self.metrics.tick(job, outcome)

    def running_jobs(self) -> list[str]:
        """The jobs running now."""
        with self._lock:
            return sorted(j for j, n in self._running.items() if n > 0)

    def catch_up(self, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
        """Find the cron runs missed while no daemon ran, and return the one slot per job to catch up.

        A job's latest fire time ``P`` (at most ``catchup_window_s`` ago) is missed when no slot (job, ``P``) exists
        but an earlier slot of the job does (the schedule was in force before; a new installation catches up
        nothing). Only ``P`` is caught up — once, its slot unique — however many runs were missed; the count is
        logged. A slot (job, ``P``) whose process is gone before it finished (killed mid-run: ``abandoned``, or
        ``running`` for a dead process) is run again the same way (:func:`claim_slot` takes it over).

        Returns:
            Job → the slot time (naive UTC) to run now.
        """
        now = now or utcnow()
        window = self.settings.daemon.catchup_window_s
        out: dict[str, dt.datetime] = {}
        for job in ("reconcile", "prune"):
            latest = latest_fire_time(self.triggers[job], now, horizon_s=max(window, 60.0))
            if latest is None or (now - latest).total_seconds() > window:
                continue
            slot = slot_at(self.engine, job, latest, now)
            if slot.left_by is not None:
                log.warning(f"{job} run left unfinished by a process that is gone: run again", job=job,
                            scheduled_at=_aware(latest).isoformat(), previous=slot.left_by)
                out[job] = latest
                continue
            previous = slot.previous
            if slot.exists or previous is None:
                continue
            missed = len(fire_times(self.triggers[job], previous + dt.timedelta(microseconds=1), latest))
            log.warning(f"missed {job} run caught up once", job=job, missed=missed,
                        scheduled_at=_aware(latest).isoformat(), last_slot=_aware(previous).isoformat())
            out[job] = latest
        return out

    def start(self) -> None:
        """Start the scheduler (jobs in background threads) and queue the catch-up runs."""
        d = self.settings.daemon
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(max_workers=4)},
                                             timezone=ZoneInfo(d.timezone))
        bodies: dict[str, Callable[..., str]] = {"outbound": self.job_outbound, "inbound": self.job_inbound,
                                                 "reconcile": self.job_reconcile, "prune": self.job_prune}
        grace = {"outbound": max(1, int(d.outbound_interval_s)), "inbound": max(1, int(d.inbound_interval_s)),
                 "reconcile": max(1, int(d.catchup_window_s)), "prune": max(1, int(d.catchup_window_s))}
        for job in JOBS:
            self.scheduler.add_job(self._tick, self.triggers[job], args=[job, bodies[job]], id=job, name=job,
                                   max_instances=1, coalesce=True, misfire_grace_time=grace[job])
        self.scheduler.add_listener(self._on_scheduler_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        # APScheduler's own lines are plain text: its events are logged here instead, as structured lines
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        # the lease says a daemon is alive (regsync status, other replicas, /healthz), from before the first tick

        KEEPER.hold(self.engine, worker=self.worker, role="daemon", next_runs=self.scheduled_next_runs,
                    on_beat=self.on_beat)
        self._holds_lease = True
        self.on_beat()
        missed = self.catch_up()
        self.scheduler.start()
        # and with its scheduler's next runs, now that it has them
        beat(self.engine, worker=self.worker, role="daemon", next_runs=self.scheduled_next_runs())
        for job, slot in missed.items():
            self.scheduler.add_job(self._tick, args=[job, bodies[job], slot], id=f"{job}-catch-up",
                                   name=f"{job} (catch-up)", max_instances=1)
        log.info("daemon started", worker=self.worker, database=self.engine.dialect.name,
                 next_runs={j: _aware(t).isoformat() for j, t in next_runs(self.settings).items()})

    def _on_scheduler_event(self, event: JobEvent) -> None:
        """A tick skipped because the job's previous run still goes on (``max_instances=1``), or missed beyond its
        grace time while the daemon ran: counted (``overlapped``, ``missed``); a missed cron run is logged."""
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.metrics.tick(event.job_id, "overlapped")
            return
        self.metrics.tick(event.job_id, "missed")
        log.warning("scheduled run missed beyond its grace time", job=event.job_id,
                    scheduled_at=event.scheduled_run_time.isoformat())

    def shutdown(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Stop: no new work; wait up to ``timeout_s`` (default ``shutdown_timeout_s``) for the running jobs, which
        finish their batches in flight and release their other claims; then release whatever this daemon still
        claims (jobs cut off by the bound), and log one line with what finished, failed and was left.

        Returns:
            The shutdown line's fields: ``runs``, ``failed_runs``, ``interrupted_runs``, ``pushed``,
            ``failed_records``, ``pulled``, ``left_jobs`` (jobs cut off), ``waiting`` (outbox rows left to send),
            ``seconds``.
        """

        started = time.monotonic()
        self.stop.set()
        bound = self.settings.daemon.shutdown_timeout_s if timeout_s is None else timeout_s
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        while self.running_jobs() and time.monotonic() - started < bound:
            time.sleep(0.05)
        left = self.running_jobs()
        if not left:
            self.close_clients()
        if left:
            with self.engine.begin() as conn:
                released = conn.execute(update(Outbox).where(Outbox.claimed_by == self.worker,
                                                             Outbox.state.in_(("pending", "deferred")))
                                        .values(claimed_by=None, claimed_until=None)).rowcount
            log.warning("jobs still running at the shutdown bound: their claims released", jobs=left,
                        rows=released)
        try:
            waiting, _ = outbox_backlog(self.engine)
        except Exception:  # noqa: BLE001 — the store may be what failed
            waiting = -1
        if getattr(self, "_holds_lease", False):  # the daemon's heartbeat says it stopped

            self._holds_lease = False
            KEEPER.release(self.engine, worker=self.worker)
        line: dict[str, Any] = {k: int(self.totals.get(k, 0)) for k in ("runs", "failed_runs", "interrupted_runs",
                                                                        "pushed", "failed_records", "pulled")}
        line.update(left_jobs=left, waiting=waiting, seconds=round(time.monotonic() - started, 3))
        log.info("daemon stopped", **line)
        return line


def run_daemon(settings: Settings, *, engine: Engine | None = None) -> int:
    """``regsync run``: serve the schedule until SIGTERM/SIGINT, then stop within ``shutdown_timeout_s``.

    Returns:
        The exit code: 0 after a signal (design.md, exit codes).

    Raises:
        ConfigError: incomplete registry settings or a bad database URL, a bad metrics address.
        StoreError: the local store is unusable.
        DaemonAlreadyRunning: another daemon runs on this SQLite store.
    """

    require_registry(settings)
    own_engine = engine is None
    engine = engine or open_store(settings.database.url)

    check_hash_key(engine, settings.hash_key, dispose_on_error=own_engine)  # no daemon on another key
    lock_file = sqlite_daemon_lock(engine)
    server = None
    line: dict[str, Any] = {}
    try:
        metrics = Metrics(engine, settings)
        daemon = Daemon(settings, engine, metrics=metrics)
        with stop_signals(daemon.stop):
            if settings.daemon.metrics_address not in ("", "off"):
                server = serve_metrics(metrics, settings.daemon.metrics_address, alive=lambda: bool(
                    daemon.scheduler and daemon.scheduler.running))
            daemon.start()
            while not daemon.stop.wait(0.5):
                pass
            line = daemon.shutdown()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if lock_file is not None:
            lock_file.close()
        if own_engine and not line.get("left_jobs"):
            engine.dispose()
    if line.get("left_jobs"):
        # a job cut off at the bound still holds a thread that the interpreter would wait for at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


__all__ = [
    "JOBS",
    "SINGLETONS",
    "Daemon",
    "DaemonAlreadyRunning",
    "DaemonError",
    "build_triggers",
    "cron_trigger",
    "fire_times",
    "latest_fire_time",
    "next_runs",
    "outbound_work_available",
    "run_daemon",
    "sqlite_daemon_lock",
]
