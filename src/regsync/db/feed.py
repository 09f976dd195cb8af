"""The change feed's state in the store (design.md, flow 2): its cursor, the marker that a full reconcile is due,
and the pull's run rows.

Both live in ``feed_cursor`` (:class:`~regsync.db.models.FeedCursor`), one row per name: :data:`CURSOR_NAME` holds
the cursor saved with the changes applied from it; :data:`RECONCILE_DUE` holds the marker (``CURSOR_EXPIRED``, or
no cursor although records were linked) until a full reconcile restarts the feed from its exports' snapshot.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from regsync.db.models import FeedCursor, Run
from regsync.db.query import insert_id
from regsync.db.session import utcnow

#: ``feed_cursor.name`` of the change-feed cursor.
CURSOR_NAME = "changes"
#: ``feed_cursor.name`` of the marker that a full reconcile is due; its ``cursor`` holds JSON
#: ``{"reason", "at", "cursor"}`` (``at`` UTC ISO; ``cursor`` the one that expired, if any).
RECONCILE_DUE = "reconcile_due"


def saved_cursor(conn: Connection) -> str | None:
    """The saved change-feed cursor, or ``None``."""
    return conn.execute(select(FeedCursor.cursor).where(FeedCursor.name == CURSOR_NAME)).scalar_one_or_none()


def save_cursor(conn: Connection, cursor: str, name: str = CURSOR_NAME) -> None:
    """Save ``cursor`` under ``name`` inside ``conn``'s transaction (an upsert on both engines)."""
    now = utcnow()
    done = conn.execute(FeedCursor.__table__.update().where(FeedCursor.name == name)
                        .values(cursor=cursor, updated_at=now)).rowcount
    if not done:
        conn.execute(FeedCursor.__table__.insert().values(name=name, cursor=cursor, updated_at=now))


def reconcile_due(conn: Connection) -> dict[str, Any] | None:
    """The marker that a full reconcile is due (``{"reason", "at", "cursor"}``), or ``None``."""
    raw = conn.execute(select(FeedCursor.cursor).where(FeedCursor.name == RECONCILE_DUE)).scalar_one_or_none()
    return None if raw is None else json.loads(raw)


def mark_reconcile_due(conn: Connection, reason: str, cursor: str | None) -> None:
    """Record that a full reconcile is due (design.md, flow 2: ``CURSOR_EXPIRED`` marks a full reconcile as due).

    An existing marker is kept (the first reason and time stand).
    """
    if reconcile_due(conn) is not None:
        return
    save_cursor(conn, json.dumps({"reason": reason, "at": utcnow().isoformat(), "cursor": cursor}), RECONCILE_DUE)


def clear_reconcile_due(conn: Connection, cursor: str) -> None:
    """For the full reconcile: drop the marker and restart the feed from ``cursor`` (the earliest
    ``X-Snapshot-Cursor`` of the exports it read), in the reconcile's transaction."""
    conn.execute(FeedCursor.__table__.delete().where(FeedCursor.name == RECONCILE_DUE))
    save_cursor(conn, cursor)


def pending_reconcile(engine: Engine) -> dict[str, Any] | None:
    """Whether a full reconcile is due (for ``regsync status`` and the scheduler): the marker, or ``None``."""
    with engine.connect() as conn:
        return reconcile_due(conn)


def start_pull_run(conn: Connection) -> int:
    """Record the start of a pull (a ``run`` of kind ``inbound``, ``running`` from now, UTC); returns its id."""
    return insert_id(conn, Run.__table__.insert().values(kind="inbound", started_at=utcnow(), status="running",
                                                         summary="{}"))


def finish_pull_run(conn: Connection, run_id: int, status: str, summary: str) -> None:
    """Record how a pull ended (``success``, ``partial`` or ``failed``, now, UTC) with its summary (JSON text)."""
    conn.execute(Run.__table__.update().where(Run.id == run_id).values(
        finished_at=utcnow(), status=status, summary=summary))


__all__ = [
    "CURSOR_NAME",
    "RECONCILE_DUE",
    "clear_reconcile_due",
    "finish_pull_run",
    "mark_reconcile_due",
    "pending_reconcile",
    "reconcile_due",
    "save_cursor",
    "saved_cursor",
    "start_pull_run",
]
