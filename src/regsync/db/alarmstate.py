"""The alarms' state, kept in ``store_meta`` so that every process and replica agrees on it (issue 15, point 6).

One row per condition, named ``alarm:<key>`` (``alarm:heartbeat``, ``alarm:failing:outbound``…), whose value is
JSON: ``{"active": bool, "pending": bool, "since": ISO UTC, "notified_at": ISO UTC, "params": {...}, "seq": n}``
(``pending``: seen, not yet announced: it must hold ``alarms.grace_s`` first). A process that sees
a condition start (or clear) *claims* the transition with a compare-and-set on the whole value (an ``UPDATE … WHERE
name = :name AND value = :old``, or an ``INSERT`` for a condition never seen, which the primary key makes unique):
of two daemons, or a daemon and ``regsync status --alarms``, that see the same start, one changes the row and sends
the message, the other's statement changes nothing and it sends nothing. PostgreSQL re-reads the row after a
concurrent writer commits (READ COMMITTED), InnoDB's ``UPDATE`` reads the newest committed row whatever the
isolation, and SQLite writes one at a time, so the claim holds on the three engines. ``seq`` grows with each write,
so a value is never written twice.

The event that a night's report is ready is claimed the same way under ``alarm:report`` (the newest run announced).
No migration: ``store_meta`` (revision 0009) holds it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from regsync.db.models import StoreMeta
from regsync.db.session import utcnow

#: ``store_meta.name`` prefix of the alarms' rows.
PREFIX = "alarm:"
#: The longest condition key (``store_meta.name`` is 48 characters).
MAX_KEY = 48 - len(PREFIX)
#: The condition key of the nightly report's event.
REPORT_KEY = "report"

_t = StoreMeta.__table__


@dataclass(frozen=True)
class AlarmState:
    """One condition's stored state.

    Attributes:
        key: the condition (:class:`regsync.service.status.Finding`'s key).
        active: whether its start was announced and its end not yet.
        pending: seen but not yet announced (within ``alarms.grace_s`` of ``since``).
        since: when it started (active) or cleared (naive UTC).
        notified_at: when its last message was claimed (naive UTC).
        params: the figures of its last message (JSON-safe).
        seq: the number of writes of the row.
        raw: the stored value, as read: what a claim compares against.
    """

    key: str
    active: bool
    pending: bool
    since: dt.datetime | None
    notified_at: dt.datetime | None
    params: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    raw: str | None = None


def _time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _parse(key: str, raw: str) -> AlarmState:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(raw)
    except ValueError:
        data = {}  # unreadable: taken as clear, and the next claim overwrites it
    return AlarmState(key=key, active=bool(data.get("active")), pending=bool(data.get("pending")),
                      since=_time(data.get("since")),
                      notified_at=_time(data.get("notified_at")), params=dict(data.get("params") or {}),
                      seq=int(data.get("seq") or 0), raw=raw)


def read_alarms(engine: Engine) -> dict[str, AlarmState]:
    """Every condition's stored state, by key (one ``SELECT`` on ``store_meta``'s primary key)."""
    with engine.connect() as conn:
        rows = conn.execute(select(_t.c.name, _t.c.value).where(_t.c.name.like(PREFIX + "%"))).all()
    return {str(n)[len(PREFIX):]: _parse(str(n)[len(PREFIX):], str(v)) for n, v in rows}


def claim(engine: Engine, old: AlarmState | None, key: str, *, active: bool, params: dict[str, Any],
          since: dt.datetime, now: dt.datetime | None = None, pending: bool = False) -> AlarmState | None:
    """Write the condition's new state if it is still ``old`` (compare-and-set): the caller that gets a state back
    sends the message; one that gets ``None`` lost the race (or the row moved meanwhile) and sends nothing.

    Args:
        engine: the local store.
        old: the state read before (:func:`read_alarms`), ``None`` for a condition with no row.
        key: the condition, at most :data:`MAX_KEY` characters.
        active: the new state.
        params: the message's figures (JSON-safe).
        since: when the state began (naive UTC): the start's time, kept by a reminder.
        now: naive UTC (default now): ``notified_at``.
        pending: the condition is seen but not announced yet (``active`` false).

    Raises:
        ValueError: a key too long.
        sqlalchemy.exc.SQLAlchemyError: the store failed.
    """
    if len(key) > MAX_KEY:
        raise ValueError(f"alarm key longer than {MAX_KEY} characters: {key!r}")
    now = now or utcnow()
    seq = (old.seq if old is not None else 0) + 1
    value = json.dumps({"active": active, "pending": pending and not active, "since": since.isoformat(),
                        "notified_at": now.isoformat(),
                        "params": params, "seq": seq}, sort_keys=True, ensure_ascii=False, default=str)
    name = PREFIX + key
    try:
        with engine.begin() as conn:
            if old is None or old.raw is None:
                conn.execute(_t.insert().values(name=name, value=value, updated_at=now))
            else:
                done = conn.execute(_t.update().where(_t.c.name == name, _t.c.value == old.raw)
                                    .values(value=value, updated_at=now)).rowcount
                if done != 1:
                    return None
    except IntegrityError:
        return None  # another process inserted it first: its message stands
    return _parse(key, value)


__all__ = ["MAX_KEY", "PREFIX", "REPORT_KEY", "AlarmState", "claim", "read_alarms"]
