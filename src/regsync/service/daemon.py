"""The daemon, ``regsync run`` (design.md, "Who uses it": the daemon runs all the time; issue 6).

APScheduler 3 (a :class:`~apscheduler.schedulers.background.BackgroundScheduler`, time zone ``[daemon] timezone``,
Asia/Shanghai by default) runs four jobs, and a fifth when alarms are configured (``alarms.urls``):

========== ====================================== =============================================================
job        when                                   what
========== ====================================== =============================================================
outbound   every ``outbound_interval_s`` (2 s)    one relay pass (:func:`regsync.flows.sync.run_sync`)
inbound    every ``inbound_interval_s`` (60 s)    one change-feed pass (:func:`regsync.flows.sync.run_pull`)
reconcile  ``reconcile_cron`` (02:00 +08:00)      the full reconcile (``regsync.flows.reconcile.run_reconcile``), then
                                                  its HTML and CSV reports into ``reports_dir``
prune      ``prune_cron`` (03:30 +08:00)          :func:`prune`: old runs, sent outbox rows… (``[retention]``)
alarms     at start, then every                   the alarms' conditions judged, transitions sent
           ``alarms.check_interval_s`` (30 s)     (:mod:`regsync.service.alarms`); only with ``alarms.urls``
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
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, update

from regsync.db.flowstate import resume_expired
from regsync.db.hashkey import check_hash_key
from regsync.db.liveness import KEEPER, beat, sweep
from regsync.db.locks import slot_at
from regsync.db.models import Outbox
from regsync.db.runs import outbox_backlog
from regsync.db.session import current_worker, utcnow
from regsync.db.store import open_store
from regsync.domain.masking import mask_text
from regsync.flows.inbound import Poller
from regsync.flows.runs import require_registry
from regsync.registry.client import RegistryClient
from regsync.registry.port import RegistryPort
from regsync.service.alarms import Dispatcher, Notifier
from regsync.service.backoff import FailureStreaks
from regsync.service.jobs import Jobs
from regsync.service.metrics import Metrics, serve_metrics
from regsync.service.schedule import (
    JOBS,
    SINGLETONS,
    aware,
    build_triggers,
    fire_times,
    latest_fire_time,
    naive,
    next_runs,
)
from regsync.service.signals import stop_signals
from regsync.settings import Settings, cron_trigger

log = structlog.get_logger(__name__)



class DaemonError(Exception):
    """The daemon cannot start (exit code 1)."""


class DaemonAlreadyRunning(DaemonError):
    """Another daemon runs on this SQLite store; only PostgreSQL allows several replicas."""


# ------------------------------------------------------------------------------------------------ schedule

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

class Daemon(Jobs):
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
        self.streaks = FailureStreaks(settings.daemon)  # of the frequent jobs (outbound, inbound)
        self._holds_lease = False
        self.alarms = Dispatcher(Notifier(settings.alarms, count=self.metrics.alarm_delivery))

    def client(self, flow: str) -> RegistryPort:
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
                out[job.id] = naive(at)
        return out

    def on_beat(self) -> None:
        """After each heartbeat: mark abandoned what gone processes left running, resume expired pauses."""
        sweep(self.engine)
        resume_expired(self.engine)

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
                            scheduled_at=aware(latest).isoformat(), previous=slot.left_by)
                out[job] = latest
                continue
            previous = slot.previous
            if slot.exists or previous is None:
                continue
            missed = len(fire_times(self.triggers[job], previous + dt.timedelta(microseconds=1), latest))
            log.warning(f"missed {job} run caught up once", job=job, missed=missed,
                        scheduled_at=aware(latest).isoformat(), last_slot=aware(previous).isoformat())
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
        if self.settings.alarms.urls:  # judged at start, then every check_interval_s (regsync.service.alarms)
            self.scheduler.add_job(self._tick, IntervalTrigger(seconds=self.settings.alarms.check_interval_s),
                                   args=["alarms", self.job_alarms], id="alarms", name="alarms", max_instances=1,
                                   coalesce=True, next_run_time=dt.datetime.now(ZoneInfo(d.timezone)),
                                   misfire_grace_time=max(1, int(self.settings.alarms.check_interval_s)))
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
                 next_runs={j: aware(t).isoformat() for j, t in next_runs(self.settings).items()})

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
        # the messages queued (a clear, the night's report) go out within what is left of the bound
        self.alarms.close(max(0.0, bound - (time.monotonic() - started)))
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
    engine = engine or open_store(settings.database)

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
    "run_daemon",
    "sqlite_daemon_lock",
]
