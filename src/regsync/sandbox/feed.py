"""The sandbox registry's change feed (§5.3): its head, a page of a province's changes after a cursor (with the
faults of at-least-once delivery, §8), and the pruning of changes older than the retention."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select

from regsync.sandbox.store import Store, changes, counters


class ChangeFeed:
    """The change feed of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attributes below,
    and calls :meth:`__init__`).

    Attributes:
        store: the database.
        clock: the registry's clock, Unix seconds.
        feed_retention_s: how long changes are kept, seconds, read on every feed call.
    """

    store: Store
    clock: Callable[[], float]
    feed_retention_s: Callable[[], float]

    def __init__(self) -> None:
        """Nothing pruned yet."""
        self._last_feed_prune = -1.0e9

    def head(self) -> int:
        """The feed's head: the highest ``seq`` given so far."""
        with self.store.read() as conn:
            return conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()

    def prune_feed(self) -> None:
        """Drop changes older than the retention; remember the highest seq dropped (for CURSOR_EXPIRED)."""
        now = self.clock()
        tick = time.monotonic()  # not the registry's clock: a clock offset set at run time may go back
        if tick - self._last_feed_prune < 1.0:
            return
        self._last_feed_prune = tick
        floor = now - self.feed_retention_s()
        with self.store.read() as conn:
            top = conn.execute(select(func.max(changes.c.seq)).where(changes.c.changed_ts < floor)).scalar()
        if top is None:
            return
        with self.store.write() as conn:
            conn.execute(delete(changes).where(changes.c.seq <= top))
            pruned = conn.execute(select(counters.c.value).where(counters.c.name == "pruned")).scalar_one()
            conn.execute(counters.update().where(counters.c.name == "pruned").values(value=max(pruned, top)))

    def changes_page(
        self, province: str, cursor: int, limit: int, *, repeat: int = 0, dup: int = 0
    ) -> dict[str, Any] | None:
        """The changes of ``province`` after ``cursor``, ascending ``seq`` (§5.3), at most ``limit``.

        Two faults (§8, delivery is at least once) take room in the page: ``repeat`` re-sends up to that
        many of the province's items at or before the cursor at the page's head, and ``dup`` sends the
        first ``dup`` new items twice in a row. ``seq`` stays non-decreasing and ``nextCursor`` is the
        last new item's.

        Returns:
            ``{"changes", "nextCursor", "hasMore"}``, or ``None`` when the cursor is older than the
            retention (410 ``CURSOR_EXPIRED``).
        """
        self.prune_feed()
        with self.store.read() as conn, conn.begin():
            pruned = conn.execute(select(counters.c.value).where(counters.c.name == "pruned")).scalar_one()
            if cursor < pruned:
                return None
            back: list[Any] = []
            if repeat:
                back = list(
                    conn.execute(
                        select(changes)
                        .where(changes.c.province == province, changes.c.seq <= cursor)
                        .order_by(changes.c.seq.desc())
                        .limit(repeat)
                    ).all()
                )[::-1]
            room = max(1, limit - len(back) - dup)
            rows = conn.execute(
                select(changes)
                .where(changes.c.province == province, changes.c.seq > cursor)
                .order_by(changes.c.seq)
                .limit(room + 1)
            ).all()
        more = len(rows) > room
        rows = rows[:room]
        sent: list[Any] = list(back)
        for i, r in enumerate(rows):
            sent.append(r)
            if i < dup:
                sent.append(r)
        items = [
            {
                "seq": r.seq,
                "type": r.type,
                "id": r.id,
                "version": r.version,
                "op": r.op,
                "changedAt": r.changed_at,
                "byClientId": r.by_client_id,
            }
            for r in sent
        ]
        nxt = max(cursor, rows[-1].seq) if rows else cursor
        return {"changes": items, "nextCursor": str(nxt), "hasMore": more}
