"""What ``[retention]`` no longer keeps, deleted from the store (design.md, "Personal data")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, delete, func, update

from regsync.db.liveness import sweep
from regsync.db.models import Audit, Conflict, Discrepancy, Heartbeat, Outbox, Run, RunSlot
from regsync.db.session import utcnow
from regsync.settings import RetentionSettings


def prune(engine: Engine, retention: RetentionSettings, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what ``[retention]`` no longer keeps, and the personal data in it with it (design.md, "Personal
    data"): finished runs and their run slots, discrepancies, resolved or superseded conflicts (open ones stay),
    audit rows and sent outbox rows older than their periods (days; 0 keeps for ever).

    Args:
        engine: the local store.
        retention: the periods.
        now: naive UTC (default now).

    Runs and run slots still ``running`` whose process is gone (:func:`regsync.db.liveness.sweep`; for runs recorded
    before the store had heartbeats, a day after they started) are marked ``abandoned`` first (counted as
    ``abandoned``); heartbeats of processes gone for longer than ``runs_days`` (or a day, for commands) go.

    Returns:
        Table → rows deleted (``run``, ``run_slot``, ``discrepancy``, ``conflict``, ``audit``, ``outbox``), and
        ``abandoned`` (runs and slots marked abandoned).
    """
    now = now or utcnow()
    swept = sweep(engine, now)

    def cutoff(days: int) -> dt.datetime | None:
        return now - dt.timedelta(days=days) if days > 0 else None

    counts: dict[str, int] = {}
    plans: list[tuple[str, int, Any]] = [
        ("run", retention.runs_days, lambda c: delete(Run).where(Run.finished_at.is_not(None), Run.finished_at < c)),
        ("run_slot", retention.runs_days, lambda c: delete(RunSlot).where(RunSlot.claimed_at < c,
                                                                           RunSlot.state != "running")),
        ("discrepancy", retention.discrepancies_days, lambda c: delete(Discrepancy).where(Discrepancy.detected_at < c)),
        ("conflict", retention.conflicts_days, lambda c: delete(Conflict).where(
            Conflict.state.in_(("resolved", "superseded")),
            func.coalesce(Conflict.resolved_at, Conflict.updated_at) < c)),
        ("audit", retention.audit_days, lambda c: delete(Audit).where(Audit.at < c)),
        ("outbox", retention.sent_outbox_days, lambda c: delete(Outbox).where(Outbox.state == "sent",
                                                                              Outbox.done_at < c)),
    ]
    with engine.begin() as conn:
        # runs and slots of a schema before heartbeats (no worker) left "running" a day ago: their process died
        stale = now - dt.timedelta(days=1)
        counts["abandoned"] = swept["runs"] + swept["slots"] + int(conn.execute(update(Run).where(
            Run.status == "running", Run.worker.is_(None), Run.started_at < stale).values(
            status="abandoned", finished_at=now, summary='{"error": "abandoned: the process ended first"}'))
            .rowcount or 0)
        for table, days, stmt in plans:
            c = cutoff(days)
            counts[table] = int(conn.execute(stmt(c)).rowcount or 0) if c is not None else 0
        gone = cutoff(retention.runs_days)
        conn.execute(delete(Heartbeat).where(Heartbeat.lease_until < stale, Heartbeat.role == "command"))
        if gone is not None:
            conn.execute(delete(Heartbeat).where(Heartbeat.lease_until < gone))
    return counts
