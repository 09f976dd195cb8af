"""What ``regsync status`` reads of the store, in one connection: the outbox backlog, each flow's state, the feed
cursor's age, open conflicts, the daemons' heartbeats, runs going on or abandoned, and whether a full reconcile is
due. :func:`regsync.service.status.collect_status` judges it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from regsync.db.feed import CURSOR_NAME, reconcile_due
from regsync.db.flowstate import as_dt
from regsync.db.liveness import abandoned, workers
from regsync.db.models import Conflict, FeedCursor, FlowState, Outbox, Run


@dataclass(frozen=True)
class Overview:
    """The store's state at one moment (naive UTC times).

    Attributes:
        backlog: outbox state → rows, for the states asked for (zero included).
        oldest_waiting: when the oldest pending or deferred row was made, or ``None``.
        flows: flow → its ``flow_state`` row (absent when never recorded).
        last_reconcile: the end of the last completed (success or partial) reconcile run, or ``None``.
        cursor_at: when the change feed's cursor was last saved, or ``None``.
        open_conflicts: conflicts still open.
        reconcile_due: the due marker (``reason``, ``at``…) or ``None``.
        daemons: the daemons' heartbeats (:func:`regsync.db.liveness.workers`).
        running: runs recorded as running (``id``, ``kind``, ``worker``, ``started_at``).
        dead_runs: ids of the running ones whose process is gone.
        recently_abandoned: runs marked abandoned in the last day.
    """

    backlog: dict[str, int]
    oldest_waiting: dt.datetime | None
    flows: dict[str, Any]
    last_reconcile: dt.datetime | None
    cursor_at: dt.datetime | None
    open_conflicts: int
    reconcile_due: dict[str, Any] | None
    daemons: list[Any]
    running: list[Any]
    dead_runs: set[int]
    recently_abandoned: list[Any]


def read_overview(engine: Engine, states: Sequence[str], now: dt.datetime) -> Overview:
    """Read :class:`Overview` in one connection; ``states`` are the outbox states counted, ``now`` naive UTC."""
    with engine.connect() as conn:
        backlog = {state: 0 for state in states}
        backlog.update({s: int(n) for s, n in conn.execute(
            select(Outbox.state, func.count()).where(Outbox.state.in_(states)).group_by(Outbox.state))})
        oldest = as_dt(conn.execute(select(func.min(Outbox.created_at)).where(
            Outbox.state.in_(("pending", "deferred")))).scalar_one())
        flows = {row.flow: row for row in conn.execute(select(FlowState)).all()}
        # the end of the last completed reconcile run (`regsync reconcile` records no flow result of its own);
        # push and pull are not read off runs: a `sync` run may have pushed nothing at all (`--inbound`, or the
        # outbound flow paused), and every pass of either records its flow's result
        last_reconcile = as_dt(conn.execute(select(func.max(Run.finished_at)).where(
            Run.status.in_(("success", "partial")), Run.kind == "reconcile")).scalar_one())
        cursor_at = as_dt(conn.execute(select(FeedCursor.updated_at).where(
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
    return Overview(backlog=backlog, oldest_waiting=oldest, flows=flows, last_reconcile=last_reconcile,
                    cursor_at=cursor_at, open_conflicts=open_conflicts, reconcile_due=due, daemons=list(daemons),
                    running=list(running), dead_runs=dead_runs, recently_abandoned=list(recently_abandoned))
