"""The conflicts held for an operator (:mod:`regsync.flows.conflicts`, design.md "Conflict policy") in regsync's own
tables: listing them, reading one with its record's live row, and what resolving one writes (the conflict, the
link's agreed base, the audit row).

Conflict rows are handed over as SQLAlchemy rows of :class:`~regsync.db.models.Conflict`'s columns, link rows as
dicts of :class:`~regsync.db.models.Link`'s. The platform's own rows are read through
:mod:`regsync.db.platform.read`; the push a resolve queues is :func:`regsync.db.merges.queue_update`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, func, select, update

from regsync.db.models import Audit, Conflict, Link
from regsync.db.platform.read import find_record
from regsync.domain.projection import REFERENCES

_ct: Table = Conflict.__table__


# ---------------------------------------------------------------------------------------------- reading


def conflict_page(conn: Connection, *, state: str | None, kind: str | None, field: str | None, limit: int
                  ) -> tuple[list[Row[Any]], int, dict[str, int], dict[str, int]]:
    """A page of conflicts, oldest first, and the counts.

    Args:
        conn: a connection to the store.
        state: only conflicts in this state, or ``None`` (or empty) for all.
        kind: only conflicts of this entity (``volunteer``, ``org``…), or ``None``.
        field: only conflicts of this field (Python name), or ``None``.
        limit: at most this many rows.

    Returns:
        ``(rows, total, by_state, open_by_field)``: the conflict rows (every column), how many match in all, the
        count of every conflict by state, and the count of the open ones by ``"entity.field"``.
    """
    conds = []
    if state:
        conds.append(_ct.c.state == state)
    if kind:
        conds.append(_ct.c.entity == kind)
    if field:
        conds.append(_ct.c.field == field)
    where = and_(True, *conds)
    rows = list(conn.execute(select(_ct).where(where).order_by(_ct.c.id).limit(limit)).all())
    total = conn.execute(select(func.count()).select_from(_ct).where(where)).scalar_one()
    by_state = {s: n for s, n in conn.execute(select(_ct.c.state, func.count()).group_by(_ct.c.state))}
    open_by_field = {f"{e}.{f}": n for e, f, n in conn.execute(
        select(_ct.c.entity, _ct.c.field, func.count()).where(_ct.c.state == "open")
        .group_by(_ct.c.entity, _ct.c.field).order_by(_ct.c.entity, _ct.c.field))}
    return rows, int(total), by_state, open_by_field


def find_conflict(conn: Connection, conflict_id: int) -> Row[Any] | None:
    """The conflict row ``conflict_id`` (every column), or ``None``."""
    return conn.execute(select(_ct).where(_ct.c.id == conflict_id)).first()


def conflict_state(conn: Connection, conflict_id: int) -> str:
    """The state of the conflict ``conflict_id`` (``open``, ``resolved``, ``superseded``), as the transaction
    sees it.

    Raises:
        sqlalchemy.exc.NoResultFound: no such conflict.
    """
    return str(conn.execute(select(_ct.c.state).where(_ct.c.id == conflict_id)).scalar_one())


def live_record(conn: Connection, kind: str, local_id: int
                ) -> tuple[dict[str, Any] | None, dict[tuple[str, int], str]]:
    """A conflict's record as the platform holds it now, and the registry ids of what it refers to.

    Returns:
        ``(row, refs)``: the local row of ``kind`` with id ``local_id`` (column → value), or ``None`` when it is
        gone; and (referenced kind, local id) → registry id through each reference's primary link, the references
        not linked left out (``{}`` for no row).
    """
    row = find_record(conn, kind, local_id)
    if row is None:
        return None, {}
    refs: dict[tuple[str, int], str] = {}
    for col, ref_kind in REFERENCES[kind].items():
        if row.get(col) is not None:
            rid = conn.execute(select(Link.registry_id).where(Link.entity == ref_kind, Link.local_id == row[col])
                               .order_by(Link.is_duplicate)).scalars().first()
            if rid is not None:
                refs[(ref_kind, row[col])] = rid
    return row, refs


def record_link(conn: Connection, kind: str, local_id: int) -> dict[str, Any] | None:
    """The link of the local row ``local_id`` of ``kind`` (its primary one first), as a dict of its columns, or
    ``None`` when the row is not linked."""
    link = conn.execute(select(Link.__table__).where(Link.entity == kind, Link.local_id == local_id)
                        .order_by(Link.is_duplicate)).mappings().first()
    return None if link is None else dict(link)


# ---------------------------------------------------------------------------------------------- resolving


def set_link_base(conn: Connection, link_id: int, base: str, now: dt.datetime) -> None:
    """Set a link's agreed base (the canonical snapshot as JSON text), updated at ``now`` (naive UTC)."""
    conn.execute(update(Link).where(Link.id == link_id).values(base=base, updated_at=now))


def mark_resolved(conn: Connection, conflict_id: int, *, resolution: str, resolved_by: str, now: dt.datetime
                  ) -> None:
    """Close a conflict as ``resolved`` with ``resolution`` (``registry``, ``local``, ``value``), by
    ``resolved_by`` (masked already, ≤ 64 characters), at ``now`` (naive UTC)."""
    conn.execute(update(Conflict).where(Conflict.id == conflict_id).values(
        state="resolved", resolution=resolution, resolved_at=now, updated_at=now, resolved_by=resolved_by))


def add_audit(conn: Connection, *, at: dt.datetime, actor: str, action: str, target: str, reason: str,
              details: str) -> int:
    """Insert one audit row; returns its id.

    Args:
        conn: a connection in a transaction.
        at: naive UTC time.
        actor: who (masked already, ≤ 64 characters).
        action: e.g. ``conflicts.resolve``.
        target: what, e.g. ``conflict:7 volunteer:12 phone``.
        reason: why (masked already).
        details: a JSON object as text.
    """
    return int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
        at=at, actor=actor, action=action, target=target, reason=reason, details=details)).inserted_primary_key[0])


__all__ = [
    "add_audit",
    "conflict_page",
    "conflict_state",
    "find_conflict",
    "live_record",
    "mark_resolved",
    "record_link",
    "set_link_base",
]
