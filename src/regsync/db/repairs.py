"""The outbox rows a repair queues (``reconcile --repair``, ``resync``), and what they say of a refusal before.

A repair never sends anything itself: it queues an outbox row for the relay (a page of records at once,
:func:`queue_repairs`), or for a broken link drops the link and queues the record's creation
(:func:`relink_as_new`). A record whose last push the registry refused on its data, with nothing changed locally
since (:func:`refused_before`), fails again when queued again: the rows queued for it say so in ``last_error``
(:data:`REQUEUED_NOTE` and the refusal's code, :func:`mark_requeued`), so that the next repair, ``resync`` or
``outbox retry`` still knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select

from regsync.db.holds import held_keys
from regsync.db.models import Link, Outbox
from regsync.db.query import chunk_size, chunks, in_values
from regsync.db.session import utcnow
from regsync.db.triggers import row_priority
from regsync.domain.projection import ENDED

#: The ``last_error`` of an outbox row queued again without a local change after a refusal (by ``reconcile
#: --repair``, ``resync`` or ``outbox retry``), followed by the refusal's code: :func:`refused_before` reads past it.
REQUEUED_NOTE = "queued again without a local change; refused before: "

_ob = Outbox.__table__


def refused_before(conn: Connection, kind: str, local_id: int) -> str | None:
    """Whether the record's last push was refused on its data and nothing changed locally since.

    The newest outbox row of the record decides: ``failed`` (the registry's field or state code, e.g.
    ``INVALID_ID_NUMBER``) or ``blocked`` (``PARENT_FAILED``, ``PARENT_DISCARDED``: what it refers to was refused
    or held) gives its code; a row still waiting that a repair, resync or ``outbox retry`` queued again without a
    local change (``last_error`` starting with :data:`REQUEUED_NOTE`) gives the code of the refusal it repeats. A
    row a local change queued (the triggers) gives ``None``, as does a record with no row or a sent last row.
    Such a refused record waits for the data to change or an operator (design.md, flow 1); a push queued again
    without a change fails again.

    Args:
        conn: a connection to the store.
        kind: the outbox entity (``volunteer``, ``membership``, ...).
        local_id: the record's local id.

    Returns:
        The refusal's code, or ``None``.
    """
    row = conn.execute(select(Outbox.state, Outbox.last_code, Outbox.last_error).where(
        Outbox.entity == kind, Outbox.local_id == local_id).order_by(Outbox.id.desc()).limit(1)).first()
    return None if row is None else _refusal(row.state, row.last_code, row.last_error)


def _refusal(state: str, last_code: str | None, last_error: str | None) -> str | None:
    """The refusal a record's newest outbox row tells of (:func:`refused_before`), or ``None``."""
    if state in ("pending", "deferred") and (last_error or "").startswith(REQUEUED_NOTE):
        return (last_error or "")[len(REQUEUED_NOTE):].split(";", 1)[0].strip() or "FAILED"
    if state not in ("failed", "blocked"):
        return None
    return str(last_code or state.upper())


def outbox_states(conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, tuple[str | None, bool]]:
    """For many records at once, what :func:`refused_before` and :func:`queue_repairs` read of each: local id →
    (the refusal its newest outbox row tells of, or ``None``; whether a row of it waits, pending or deferred).
    Records with no outbox row are left out. One query per :func:`~regsync.db.query.chunk_size` ids (the newest
    row by a window over the record's rows, on ``ix_outbox_record``)."""
    waits = case((Outbox.state.in_(("pending", "deferred")), 1), else_=0)
    out: dict[int, tuple[str | None, bool]] = {}
    for chunk in chunks(sorted(set(local_ids)), chunk_size(conn)):
        rows = select(
            Outbox.local_id, Outbox.state, Outbox.last_code, Outbox.last_error,
            func.row_number().over(partition_by=Outbox.local_id, order_by=Outbox.id.desc()).label("newest"),
            func.max(waits).over(partition_by=Outbox.local_id).label("waits"),
        ).where(Outbox.entity == kind, in_values(conn, Outbox.local_id, list(chunk))).subquery()
        for r in conn.execute(select(rows).where(rows.c.newest == 1)):
            out[int(r.local_id)] = (_refusal(r.state, r.last_code, r.last_error), bool(r.waits))
    return out


def mark_requeued(conn: Connection, kind: str, local_id: int, refused: str | None) -> None:
    """Mark the rows just queued for a record refused before (``refused`` from :func:`refused_before`, read before
    they were queued: pending, with no error nor code yet) as queued again without a local change
    (:data:`REQUEUED_NOTE` and the code); nothing when ``refused`` is ``None``."""
    if refused is None:
        return
    conn.execute(_ob.update().where(_ob.c.entity == kind, _ob.c.local_id == local_id, _ob.c.state == "pending",
                                    _ob.c.last_error.is_(None), _ob.c.last_code.is_(None))
                 .values(last_error=REQUEUED_NOTE + refused))


def queue_repairs(conn: Connection, kind: str, rows: Sequence[Mapping[str, Any]], op: str
                  ) -> list[tuple[bool, str | None]]:
    """Queue an outbox row that sends each record's local state, unless an operator holds the record or one of its
    rows waits already (pending or deferred); a record whose last push was refused on its data
    (:func:`refused_before`) gets its row marked with :data:`REQUEUED_NOTE` and the refusal's code. Each record
    of the page as if alone, in three statements however many records: the held ones
    (:func:`~regsync.db.holds.held_keys`), the refusals and the waiting rows (:func:`outbox_states`), one insert of
    the rows queued.

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        rows: the local rows' columns (``id`` at least, and those their priority reads,
            :func:`~regsync.db.triggers.row_priority`), one per record.
        op: ``insert``, ``update`` or ``delete`` (a delete is queued at the priority of the record's ending).

    Returns:
        Per row, in order, ``(held, refused)``: ``held`` for a record an operator holds (nothing queued, refusal not
        read: ``None``); ``refused`` the code of the refusal it repeats (:func:`refused_before`: its row, unless one
        waits already, is marked with :data:`REQUEUED_NOTE`), ``None`` for none.
    """
    ids = [int(r["id"]) for r in rows]
    held = held_keys(conn, [(kind, i) for i in ids])
    states = outbox_states(conn, kind, ids)
    now = utcnow()
    out: list[tuple[bool, str | None]] = []
    queued: list[dict[str, Any]] = []
    for row, lid in zip(rows, ids, strict=True):
        if (kind, lid) in held:
            out.append((True, None))
            continue
        refused, waiting = states.get(lid, (None, False))
        out.append((False, refused))
        if not waiting:
            prio = row_priority(kind, row) if op != "delete" else row_priority(
                kind, {**row, "status": ENDED.get(kind), "left_on": now.date()})
            queued.append({"entity": kind, "local_id": lid, "op": op, "priority": prio, "state": "pending",
                           "attempts": 0, "created_at": now, "available_at": now,
                           "last_error": None if refused is None else REQUEUED_NOTE + refused})
            states[lid] = (refused, True)  # the same record twice in a page: queued once, as one by one
    if queued:
        conn.execute(_ob.insert(), queued)
    return out


def relink_as_new(conn: Connection, kind: str, registry_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """A broken link: drop the links of ``registry_id`` and queue each of ``rows`` (the local rows it linked that
    still exist, their columns) for creation in the registry (``insert``, at its row's priority).

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        registry_id: the registry id the registry does not know.
        rows: the local rows' columns (``id`` and those their priority reads).
    """
    conn.execute(Link.__table__.delete().where(Link.entity == kind, Link.registry_id == registry_id))
    now = utcnow()
    for row in rows:
        conn.execute(_ob.insert().values(
            entity=kind, local_id=row["id"], op="insert", priority=row_priority(kind, row), state="pending",
            attempts=0, created_at=now, available_at=now))


__all__ = ["REQUEUED_NOTE", "mark_requeued", "outbox_states", "queue_repairs", "refused_before", "relink_as_new"]
