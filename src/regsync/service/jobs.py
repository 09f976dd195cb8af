"""The bodies of the daemon's jobs (design.md, "Deployment"): a relay pass, a change-feed pass, the nightly
reconcile with its reports, the retention prune; the singleton jobs in their run slots under their advisory lock;
one ``run finished`` line per run. :class:`regsync.service.daemon.Daemon` schedules them and owns the process."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine

from regsync.db.flowstate import FLOWS, is_paused, record_flow_result
from regsync.db.locks import SingletonLock, claim_slot, finish_slot
from regsync.db.outbox import work_available
from regsync.db.retention import prune
from regsync.db.runs import forget_run
from regsync.db.session import utcnow
from regsync.domain.masking import mask_text
from regsync.flows.reconcile import reconcile_pass
from regsync.flows.runs import RecordedRun
from regsync.flows.sync import pull_pass, sync_pass
from regsync.registry.port import RegistryPort
from regsync.reports.export import export_to_path
from regsync.reports.worklist import open_worklist
from regsync.reports.worklist_render import write_worklist
from regsync.service.alarms import Dispatcher, announce_report, check_alarms
from regsync.service.backoff import BACKOFF_JOBS, FailureStreaks
from regsync.service.logs import alarm_streak
from regsync.service.metrics import Metrics
from regsync.service.schedule import latest_fire_time
from regsync.service.status import collect_status
from regsync.settings import Settings

log = structlog.get_logger(__name__)


class Jobs:
    """The job bodies the daemon's scheduler calls (one instance: the :class:`~regsync.service.daemon.Daemon`).

    Each returns what the tick did, for the daemon's counters and the tests: ``run``, ``idle``, ``paused``,
    ``backoff``, ``failed``, ``locked``, ``taken`` or ``stopping``.
    """

    settings: Settings
    engine: Engine
    worker: str
    metrics: Metrics
    stop: threading.Event
    totals: Counter[str]
    triggers: dict[str, BaseTrigger]
    streaks: FailureStreaks
    alarms: Dispatcher

    def client(self, flow: str) -> RegistryPort:
        """The registry client of ``flow`` (the daemon's)."""
        raise NotImplementedError

    def ensure_first_cursor(self) -> bool:
        """Whether the change feed's first cursor is taken (the daemon's)."""
        raise NotImplementedError

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
        if self.streaks.backing_off("outbound"):
            return "backoff"
        if not outbound_work_available(self.engine):
            return "idle"
        with alarm_streak(self.streaks.alarmed["outbound"]):
            if not self.ensure_first_cursor():
                self.streaks.passed("outbound", False, "the change feed's first cursor cannot be taken yet")
                return "failed"
            outcome = sync_pass(self.settings, engine=self.engine, stop=self.stop.is_set, inbound=False,
                                client=self.client("outbound"))
        summary = outcome.as_summary()  # the edge: /metrics and the log line read plain data
        self.metrics.observe_sync(summary)
        self.totals["pushed"] += outcome.sent
        self.totals["failed_records"] += outcome.failed
        if outcome.code == 130:  # stopped by the daemon's shutdown: neither a success nor a failure of the flow
            self.totals["interrupted_runs"] += 1
            self.log_run("outbound", summary)
            return "run"
        ok = outcome.code == 0
        record_flow_result(self.engine, "outbound", ok, outcome.error)
        self.streaks.passed("outbound", ok, outcome.error)
        if ok and not outcome.did_work:
            # the work seen a moment ago was claimed by another replica: this pass did nothing
            self._forget_idle_run(outcome.run_id)
            return "idle"
        self.totals["runs" if ok else "failed_runs"] += 1
        self.log_run("outbound", summary)
        return "run" if ok else "failed"

    def _forget_idle_run(self, run_id: int | None) -> None:
        """A pass that did no work leaves no run (idle ticks show only in /metrics; README, "runs")."""
        if run_id is not None:
            forget_run(self.engine, run_id)

    def job_inbound(self, scheduled_at: dt.datetime | None = None) -> str:
        """One change-feed pass in its slot, on one replica at a time (see :meth:`_singleton`); ``backoff`` while
        it backs off after failed passes (:meth:`passed`)."""
        if not self.stop.is_set() and self.streaks.backing_off("inbound"):
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
                with alarm_streak(self.streaks.alarmed.get(job, set())):
                    log.error(f"{job} job failed", error=mask_text(str(exc)), alarm=True)
                if job in FLOWS:  # a pass that failed before it could record itself (`regsync status` shows it)
                    record_flow_result(self.engine, job, False, str(exc))
                if job in BACKOFF_JOBS:
                    self.streaks.passed(job, False, str(exc))
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
        with alarm_streak(self.streaks.alarmed["inbound"]):
            outcome = pull_pass(self.settings, engine=self.engine, stop=self.stop.is_set,
                                client=self.client("inbound"))
        ok = outcome.code == 0
        record_flow_result(self.engine, "inbound", ok, outcome.error)
        self.streaks.passed("inbound", ok, outcome.error)
        run_id = outcome.stats.run_id
        summary = outcome.as_summary()  # the edge: /metrics and the log line read plain data
        self.metrics.observe_pull(summary, idle=outcome.idle)
        if outcome.idle:  # a pull that read no change did no work
            self._forget_idle_run(run_id)
            return "idle", None
        self.totals["pulled"] += outcome.stats.applied
        self.log_run("inbound", summary)
        return ("done" if ok else "failed"), run_id

    def _reconcile(self) -> tuple[str, int | None]:
        outcome = reconcile_pass(self.settings, repair=self.settings.daemon.reconcile_repair, engine=self.engine,
                                 stop=self.stop.is_set)
        ok = outcome.code == 0
        record_flow_result(self.engine, "reconcile", ok, outcome.error)
        self.log_run("reconcile", outcome.as_summary())  # the edge: the log line reads plain data
        if outcome.run_id is not None:
            files = self.export_reports(outcome.run_id)
            city_totals = self.write_worklists(outcome.run_id)
            if self.settings.alarms.urls and outcome.code == 0:
                try:
                    announce_report(self.engine, outcome.run_id, self.alarms.submit, files=[p.name for p in files],
                                    status=outcome.as_summary().get("status"), city_totals=city_totals)
                except Exception as exc:  # noqa: BLE001 — the announcement never fails the reconcile
                    log.error("report not announced", run_id=outcome.run_id, error=mask_text(str(exc)))
        return ("done" if ok else "failed"), outcome.run_id

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

    def write_worklists(self, run_id: int) -> list[tuple[str, int]] | None:
        """Write the worklists of the reconcile ``run_id`` into ``[daemon] reports_dir``: the province's
        (``worklist-<run id>-<YYYYMMDD>.xlsx``) and one per city in ``worklists-<run id>-<YYYYMMDD>/``, for the
        managers to pass down (issue 15, point 2).

        Returns:
            (city code, items) pairs, most items first, for the report's alarm; ``None`` when they could not be
            written (logged; the reconcile is not failed for it).
        """
        folder = Path(self.settings.daemon.reports_dir)
        day = dt.datetime.now(ZoneInfo(self.settings.daemon.timezone)).strftime("%Y%m%d")
        cities = folder / f"worklists-{run_id}-{day}"
        try:
            cities.mkdir(parents=True, exist_ok=True)
            worklist = open_worklist(self.engine, fmt="xlsx", output=str(folder), actor=self.worker)
            write_worklist(worklist, "xlsx", folder / f"worklist-{run_id}-{day}.xlsx")
            per_city = write_worklist(worklist, "xlsx", cities, split=True)
        except Exception as exc:  # noqa: BLE001 — a worklist that fails to write does not fail the reconcile
            log.error("worklists not written", run_id=run_id, error=mask_text(str(exc)))
            return None
        # the files are named worklist-<city>-<date>.xlsx (reports.worklist_render.default_name)
        totals = sorted(((path.name.split("-")[1], n) for path, n in per_city if n), key=lambda cn: (-cn[1], cn[0]))
        log.info("worklists written", run_id=run_id, folder=str(cities), cities=len(per_city),
                 items=sum(n for _, n in totals))
        return totals

    def job_alarms(self) -> str:
        """Judge the alarms' conditions (:func:`regsync.service.alarms.check_alarms`) on the service's status, as
        every replica sees it: a transition this replica claims is queued for delivery, off this thread.

        Returns:
            ``run`` (a message was queued), ``idle`` or ``stopping``.
        """
        if self.stop.is_set():
            return "stopping"
        status = collect_status(self.engine, self.settings)
        result = check_alarms(self.engine, self.settings, status, self.alarms.submit)
        return "run" if result.sent else "idle"

    def _prune(self) -> tuple[str, int | None]:
        started = time.monotonic()
        counts = prune(self.engine, self.settings.retention)
        if not any(counts.values()):
            return "idle", None
        with RecordedRun(self.engine, "prune") as run:  # recorded only when it deleted something
            run.finish("success", {"deleted": counts})
        run_id = run.run_id
        log.info("old records pruned", **counts)
        self.log_run("prune", {"run_id": run_id, "status": "success", "deleted": counts},
                     seconds=time.monotonic() - started)
        return "done", run_id


def outbound_work_available(engine: Engine, *, now: dt.datetime | None = None) -> bool:
    """Whether a relay pass has anything to do (:func:`regsync.db.outbox.work_available`; ``now`` naive UTC,
    default now)."""
    return work_available(engine, now or utcnow())
