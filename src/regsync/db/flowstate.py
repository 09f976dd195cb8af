"""The state of each flow in the store (``flow_state``): its last passes, whether it failed since when, and an
operator's pause (design.md, "Operator commands": pause/resume). Every statement on ``flow_state`` is here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy import Engine, func, select, update

from regsync.db.models import Audit, FlowState
from regsync.db.query import upsert
from regsync.db.session import current_worker, utcnow
from regsync.domain.clock import to_local
from regsync.domain.masking import mask_text

log = structlog.get_logger(__name__)

#: The flows of design.md, as named in ``flow_state``.
FLOWS: tuple[str, ...] = ("outbound", "inbound", "reconcile")
#: The flows an operator can pause (the reconcile only reads, and queues its repairs to the outbox).
PAUSABLE: tuple[str, ...] = ("outbound", "inbound")


def as_dt(value: dt.datetime | str | None) -> dt.datetime | None:
    """A time read from the store as a datetime (SQLite aggregates can come back as ISO text); ``None`` stays."""
    if isinstance(value, str):  # SQLite aggregates can come back as text
        return dt.datetime.fromisoformat(value)
    return value


def iso_local(value: dt.datetime | None) -> str | None:
    """A naive UTC time as +08:00 ISO 8601 text to the second, or ``None``."""
    local = to_local(value)
    return local.isoformat(timespec="seconds") if local else None


def ensure_rows(conn: Any, flows: Iterable[str]) -> None:
    """Insert the ``flow_state`` rows that are missing (concurrent writers: the first insert wins)."""
    stmt = upsert(conn, FlowState.__table__, ("flow",))
    for flow in flows:
        conn.execute(stmt, {"flow": flow, "paused": False})


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
        ensure_rows(conn, [flow])
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
    until = as_dt(row.paused_until)
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
            until = iso_local(as_dt(row.paused_until))
            reason = mask_text(f"the pause expired at {until} (paused by {row.paused_by}: {row.paused_reason})")
            conn.execute(Audit.__table__.insert().values(
                at=now, actor=SELF_ACTOR, action="resume", target=row.flow, reason=reason[:2000],
                details=json.dumps({"changed": [row.flow], "expired": True, "paused_until": until,
                                    "by": current_worker()}, sort_keys=True)))
            resumed.append(row.flow)
    for flow in resumed:
        log.info("pause expired: flow resumed", flow=flow)
    return resumed


def write_pause(engine: Engine, flows: Sequence[str], paused: bool, *, actor: str, reason: str, now: dt.datetime,
                until: dt.datetime | None) -> tuple[list[str], int]:
    """Pause (``paused``) or resume ``flows`` in one transaction, with an audit row (action ``pause`` or
    ``resume``, target the flows joined by commas). Pausing a flow paused already sets its expiry anew.

    Args:
        engine: the local store.
        flows: some of :data:`PAUSABLE` (the caller checked them).
        paused: pause (true) or resume (false).
        actor: who, masked, at most 64 characters.
        reason: why (masked here, in the row and the audit).
        now: naive UTC.
        until: when the pause ends by itself (naive UTC), or ``None``.

    Returns:
        (the flows whose state or expiry changed, the audit row's id).
    """
    action = "pause" if paused else "resume"
    with engine.begin() as conn:
        ensure_rows(conn, flows)
        before = {r.flow: r for r in conn.execute(select(FlowState.flow, FlowState.paused, FlowState.paused_until)
                                                  .where(FlowState.flow.in_(flows))).all()}
        changed = [f for f in flows if bool(before[f].paused) != paused]
        values = (dict(paused=True, paused_by=actor, paused_reason=mask_text(reason), paused_at=now,
                       paused_until=until) if paused
                  else dict(paused=False, paused_by=None, paused_reason=None, paused_at=None, paused_until=None))
        if changed:
            conn.execute(update(FlowState).where(FlowState.flow.in_(changed)).values(**values))
        if paused:  # a flow paused already: its expiry is the new one
            again = [f for f in flows if f not in changed and as_dt(before[f].paused_until) != until]
            if again:
                conn.execute(update(FlowState).where(FlowState.flow.in_(again)).values(paused_until=until))
                changed += again
        details: dict[str, Any] = {"changed": changed}
        if until is not None:
            details["until"] = iso_local(until)
        audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
            at=now, actor=actor, action=action, target=",".join(flows), reason=mask_text(reason),
            details=json.dumps(details, sort_keys=True))).inserted_primary_key[0])
    return changed, audit_id
