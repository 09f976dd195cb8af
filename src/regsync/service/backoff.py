"""Failure streaks of the daemon's frequent jobs (issue 12, item 10): after ``n`` failed passes in a row the next
``2**n - 1`` ticks of the job are skipped, so its passes come 2, 4, 8… intervals apart, at most ``[daemon]
backoff_max_s`` seconds; a success ends the streak. The alarms raised during a streak are remembered, so that one
alarm is raised per streak (:func:`regsync.service.logs.alarm_streak`)."""

from __future__ import annotations

import threading
from collections import Counter

import structlog

from regsync.domain.masking import mask_text
from regsync.settings import DaemonSettings

log = structlog.get_logger(__name__)

#: Jobs whose failed passes back off.
BACKOFF_JOBS: tuple[str, ...] = ("outbound", "inbound")


class FailureStreaks:
    """The failure streak of each of :data:`BACKOFF_JOBS`; safe to use from the scheduler's threads.

    Attributes:
        alarmed: job → the alarms raised in its current streak.
    """

    def __init__(self, daemon: DaemonSettings) -> None:
        self.daemon = daemon
        self.alarmed: dict[str, set[str]] = {job: set() for job in BACKOFF_JOBS}
        self._failures: Counter[str] = Counter()
        self._skip: Counter[str] = Counter()
        self._lock = threading.Lock()

    def backing_off(self, job: str) -> bool:
        """Whether this tick of ``job`` is skipped, backing off after failed passes (one tick used up)."""
        with self._lock:
            if self._skip[job] > 0:
                self._skip[job] -= 1
                return True
        return False

    def passed(self, job: str, ok: bool, error: str | None = None) -> None:
        """Record how a pass of ``job`` (``outbound`` or ``inbound``) ended: a failure lengthens the streak and sets
        the ticks to skip, a success ends it (no tick skipped, the next alarm raised again)."""
        interval = {"outbound": self.daemon.outbound_interval_s, "inbound": self.daemon.inbound_interval_s}[job]
        with self._lock:
            failures = self._failures[job]
            if ok:
                self._failures[job] = 0
                self._skip[job] = 0
                self.alarmed[job].clear()
            else:
                failures = self._failures[job] = failures + 1
                cap = max(0, int(self.daemon.backoff_max_s // max(interval, 1e-3)) - 1)
                self._skip[job] = min(cap, 2 ** min(failures, 30) - 1)
                skip = self._skip[job]
        if ok:
            if failures:
                log.info(f"{job} works again", job=job, failed_passes=failures)
            return
        log.warning(f"{job} pass failed: the next passes back off", job=job, failed_passes=failures,
                    next_try_in_s=round((skip + 1) * interval, 3), error=mask_text(error or "failed"))
