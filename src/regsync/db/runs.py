"""Runs (the ``run`` table) and the outbox's figures that a run's summary gives: every statement on them.

A run is one recorded pass of a flow or a command (kind ``sync``, ``inbound``, ``reconcile``, ``resync``,
``adopt``, ``conflicts``…): :func:`start_run` records its start and takes this process's lease
(:data:`regsync.db.liveness.KEEPER`), :func:`finish_run` records how it ended and gives the lease back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, update

from regsync.db.liveness import KEEPER
from regsync.db.models import Outbox, Run
from regsync.db.own import own_sql
from regsync.db.session import utcnow
from regsync.domain.kinds import KIND_NAMES

#: The runs this process has started and not finished: (id of the engine, run id) (each holds a lease).
_OPEN_RUNS: set[tuple[int, int]] = set()


def start_run(engine: Engine, kind: str) -> int:
    """Record the start of a run (UTC), as this process's (``run.worker``); returns its id.

    The process holds its lease (:data:`regsync.db.liveness.KEEPER`) until :func:`finish_run`, so that a run whose
    process is killed is found abandoned (issue 12, item 11).
    """
    KEEPER.hold(engine)
    try:
        with engine.begin() as conn:
            run_id = int(conn.execute(Run.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
                kind=kind, started_at=utcnow(), status="running", summary="{}")).inserted_primary_key[0])
    except BaseException:
        KEEPER.release(engine)
        raise
    _OPEN_RUNS.add((id(engine), run_id))
    return run_id


def finish_run(engine: Engine, run_id: int, status: str, summary: dict[str, Any]) -> None:
    """Record how a run ended: ``success``, ``partial`` or ``failed``, with its summary; give back the lease
    :func:`start_run` took."""
    try:
        with engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(
                finished_at=utcnow(), status=status, summary=json.dumps(summary, default=str, sort_keys=True)))
    finally:
        if (id(engine), run_id) in _OPEN_RUNS:
            _OPEN_RUNS.discard((id(engine), run_id))
            KEEPER.release(engine)


def _failure_rows(engine: Engine) -> list[tuple[str, str, int]]:
    """(entity, code or ``UNKNOWN``, records) of the records whose outbox rows are failed or blocked now."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT entity, last_code, COUNT(*) FROM (SELECT DISTINCT entity, local_id, last_code FROM "  # noqa: S608
            f"{own_sql(conn, 'outbox')} WHERE state IN ('failed', 'blocked')) t GROUP BY entity, last_code")).all()
    return [(entity, code or "UNKNOWN", int(n)) for entity, code, n in rows]


def outbox_failures(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """Records whose outbox rows are failed or blocked now: (kind → count, code → count), by record."""
    by_kind: dict[str, int] = {}
    by_code: dict[str, int] = {}
    for entity, code, n in _failure_rows(engine):
        by_kind[KIND_NAMES[entity]] = by_kind.get(KIND_NAMES[entity], 0) + n
        by_code[code] = by_code.get(code, 0) + n
    return by_kind, by_code


def outbox_failures_by_kind(engine: Engine) -> dict[str, dict[str, int]]:
    """Records whose outbox rows are failed or blocked now, by kind (plural name) and code: ``{"volunteers":
    {"INVALID_PHONE": 10}, "memberships": {"PARENT_FAILED": 18}}``; kinds without any are left out."""
    out: dict[str, dict[str, int]] = {}
    for entity, code, n in _failure_rows(engine):
        codes = out.setdefault(KIND_NAMES[entity], {})
        codes[code] = codes.get(code, 0) + n
    return {kind: dict(sorted(codes.items())) for kind, codes in out.items()}


def outbox_backlog(engine: Engine) -> tuple[int, dt.datetime | None]:
    """Rows waiting to be sent (pending or deferred) and the earliest time one becomes available (UTC)."""
    with engine.connect() as conn:
        n, first = conn.execute(select(func.count(), func.min(Outbox.available_at))
                                .where(Outbox.state.in_(("pending", "deferred")))).one()
    if isinstance(first, str):
        first = dt.datetime.fromisoformat(first)
    return int(n), first


def forget_run(engine: Engine, run_id: int) -> None:
    """Delete a run that did no work (the daemon's idle relay ticks leave no run: README, "runs")."""
    with engine.begin() as conn:
        conn.execute(delete(Run).where(Run.id == run_id))
