"""The daemon's schedule (design.md, "Deployment"): the jobs' triggers from ``[daemon]``, and their fire times.

Times in and out are naive UTC; cron lines are read in ``[daemon] timezone`` (Asia/Shanghai by default).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from regsync.db.session import utcnow
from regsync.settings import DaemonSettings, Settings, cron_trigger

#: The daemon's jobs, in the order they are listed.
JOBS: tuple[str, ...] = ("outbound", "inbound", "reconcile", "prune")
#: Jobs that run on one replica at a time and claim a run slot.
SINGLETONS: tuple[str, ...] = ("inbound", "reconcile", "prune")
#: Interval triggers start here, so that every replica's ticks (and so their slots) fall on the same times.
INTERVAL_ANCHOR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build_triggers(daemon: DaemonSettings) -> dict[str, BaseTrigger]:
    """Job name → its trigger, from ``[daemon]``. Interval triggers start at :data:`INTERVAL_ANCHOR`."""
    tz = ZoneInfo(daemon.timezone)
    return {
        "outbound": IntervalTrigger(seconds=daemon.outbound_interval_s, start_date=INTERVAL_ANCHOR, timezone=tz),
        "inbound": IntervalTrigger(seconds=daemon.inbound_interval_s, start_date=INTERVAL_ANCHOR, timezone=tz),
        "reconcile": cron_trigger(daemon.reconcile_cron, daemon.timezone),
        "prune": cron_trigger(daemon.prune_cron, daemon.timezone),
    }


def aware(naive_utc: dt.datetime) -> dt.datetime:
    """A naive UTC time as an aware one (UTC)."""
    return naive_utc.replace(tzinfo=dt.UTC)


def naive(when: dt.datetime) -> dt.datetime:
    """An aware time as naive UTC."""
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def next_runs(settings: Settings, now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """Job name → its next run after ``now`` by the configured schedule (naive UTC in, naive UTC out)."""
    now_aware = aware(now or utcnow())
    out: dict[str, dt.datetime] = {}
    for job, trigger in build_triggers(settings.daemon).items():
        nxt = trigger.get_next_fire_time(None, now_aware + dt.timedelta(microseconds=1))
        if nxt is not None:
            out[job] = naive(nxt)
    return out


def fire_times(trigger: BaseTrigger, start: dt.datetime, end: dt.datetime, limit: int = 100_000) -> list[dt.datetime]:
    """The trigger's fire times in ``[start, end]`` (naive UTC), at most ``limit`` of them."""
    out: list[dt.datetime] = []
    prev = None
    cursor = aware(start)
    end_aware = aware(end)
    while len(out) < limit:
        nxt = trigger.get_next_fire_time(prev, cursor)
        if nxt is None or nxt > end_aware:
            break
        out.append(naive(nxt))
        prev, cursor = nxt, nxt + dt.timedelta(microseconds=1)
    return out


def latest_fire_time(trigger: BaseTrigger, now: dt.datetime, horizon_s: float = 8 * 86400) -> dt.datetime | None:
    """The trigger's last fire time at or before ``now`` (naive UTC), looking back at most ``horizon_s``.

    This is the run slot a job started at ``now`` belongs to (APScheduler starts a job at or after its time).
    """
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval.total_seconds()
        since = (aware(now) - trigger.start_date).total_seconds()
        if since < 0:
            return None
        return naive(trigger.start_date + dt.timedelta(seconds=step * int(since // step)))
    for window in (60.0, 3600.0, 86400.0, horizon_s):
        times = fire_times(trigger, now - dt.timedelta(seconds=min(window, horizon_s)), now)
        if times:
            return times[-1]
        if window >= horizon_s:
            break
    return None
