"""Reading the audit of operator actions (table ``audit``), for ``regsync audit list`` (issue 15, point 5).

Who writes it: ``pause``/``resume`` (:mod:`regsync.db.flowstate`; ``resume`` by ``regsync`` when a pause expires),
``outbox.retry``/``outbox.discard``/``outbox.restore`` (:mod:`regsync.db.outbox_admin`), ``conflicts.resolve``
(:mod:`regsync.flows.conflicts`), ``resync`` (:mod:`regsync.db.reconcile`), ``db_rekey`` (:mod:`regsync.db.hashkey`),
``show_personal_data`` and ``report_personal_data`` (personal data shown in clear: ``regsync show``, ``report
export``). Rows are kept ``retention.audit_days`` days.

The query is one ``SELECT`` newest first on the primary key, filtered by time, actor and action, bounded by
``limit``; it reads one row more than asked, to say whether more are left.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, or_, select

from regsync.db.models import Audit

_at: Table = Audit.__table__


@dataclass
class AuditPage:
    """Audit rows, newest first.

    Attributes:
        rows: dicts of the columns (``id``, ``at`` naive UTC, ``actor``, ``action``, ``target``, ``reason``,
            ``details`` as stored: JSON text, masked when written).
        more: whether older rows match beyond ``limit``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


def list_audit(engine: Engine, *, since: dt.datetime | None = None, actor: str | None = None,
               action: str | None = None, limit: int = 100) -> AuditPage:
    """The audit rows that match, newest first.

    Args:
        engine: the local store.
        since: only rows at or after this time (naive UTC).
        actor: only this actor's rows (as written: an OS user, an operator's ``--actor``, ``regsync``).
        action: only this action, or the actions under it (``outbox`` matches ``outbox.retry``…).
        limit: at most this many rows (≥ 1).

    Raises:
        ValueError: ``limit`` below 1.
        sqlalchemy.exc.SQLAlchemyError: the store failed.
    """
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")
    query = select(_at)
    if since is not None:
        query = query.where(_at.c.at >= since)
    if actor:
        query = query.where(_at.c.actor == actor)
    if action:
        query = query.where(or_(_at.c.action == action, _at.c.action.startswith(action + ".", autoescape=True)))
    query = query.order_by(_at.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return AuditPage(rows=rows[:limit], more=len(rows) > limit)


__all__ = ["AuditPage", "list_audit"]
