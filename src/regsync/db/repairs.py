"""The outbox rows a repair queues (``reconcile --repair``, ``resync``), and what they say of a refusal before.

A repair never sends anything itself: it queues an outbox row for the relay (:func:`queue_repair`), or for a
broken link drops the link and queues the record's creation (:func:`relink_as_new`). A record whose last push the
registry refused on its data, with nothing changed locally since (:func:`refused_before`), fails again when
queued again: the rows queued for it say so in ``last_error`` (:data:`REQUEUED_NOTE` and the refusal's code,
:func:`mark_requeued`), so that the next repair, ``resync`` or ``outbox retry`` still knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from regsync.db.models import Link, Outbox
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
    if row is None:
        return None
    if row.state in ("pending", "deferred") and (row.last_error or "").startswith(REQUEUED_NOTE):
        return row.last_error[len(REQUEUED_NOTE):].split(";", 1)[0].strip() or "FAILED"
    if row.state not in ("failed", "blocked"):
        return None
    return str(row.last_code or row.state.upper())


def mark_requeued(conn: Connection, kind: str, local_id: int, refused: str | None) -> None:
    """Mark the rows just queued for a record refused before (``refused`` from :func:`refused_before`, read before
    they were queued: pending, with no error nor code yet) as queued again without a local change
    (:data:`REQUEUED_NOTE` and the code); nothing when ``refused`` is ``None``."""
    if refused is None:
        return
    conn.execute(_ob.update().where(_ob.c.entity == kind, _ob.c.local_id == local_id, _ob.c.state == "pending",
                                    _ob.c.last_error.is_(None), _ob.c.last_code.is_(None))
                 .values(last_error=REQUEUED_NOTE + refused))


def queue_repair(conn: Connection, kind: str, row: Mapping[str, Any], op: str, refused: str | None) -> None:
    """Queue an outbox row that sends the record's local state, unless one waits already (pending or deferred).

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        row: the local row's columns (``id`` at least; those its priority reads, :func:`~regsync.db.triggers.
            row_priority`).
        op: ``insert``, ``update`` or ``delete`` (a delete is queued at the priority of the record's ending).
        refused: the code of the refusal it repeats (:func:`refused_before`): the row is marked with
            :data:`REQUEUED_NOTE`; ``None`` for none.
    """
    waiting = conn.execute(select(Outbox.id).where(
        Outbox.entity == kind, Outbox.local_id == row["id"],
        Outbox.state.in_(("pending", "deferred"))).limit(1)).first()
    if waiting is None:
        now = utcnow()
        prio = row_priority(kind, row) if op != "delete" else row_priority(kind, {**row, "status": ENDED.get(kind),
                                                                                    "left_on": now.date()})
        conn.execute(_ob.insert().values(
            entity=kind, local_id=row["id"], op=op, priority=prio, state="pending", attempts=0,
            created_at=now, available_at=now,
            last_error=None if refused is None else REQUEUED_NOTE + refused))


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


__all__ = ["REQUEUED_NOTE", "mark_requeued", "queue_repair", "refused_before", "relink_as_new"]
