"""Claiming (design.md, flow 1, step 1): the outbound relay takes windows of outbox rows under a lease, gives back
what another relay holds or what it did not get to, and keeps PostgreSQL's statistics fit for the claim.

The statements are the store's (:mod:`regsync.db.outbox`); this part decides when to run them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db import outbox
from regsync.db.session import utcnow
from regsync.flows.relay_items import OTHER_STORE_CODE
from regsync.settings import Settings

log = structlog.get_logger(__name__)


class Claims:
    """The relay's claims on the outbox. One per relay, for its whole life.

    Args:
        engine: the local store.
        settings: regsync's settings (``relay.lease_s``).
        worker: this relay's name in claims.
    """

    def __init__(self, engine: Engine, settings: Settings, worker: str) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = worker
        self._analyzed = False
        self._links_written = 0  # links this relay made (for ANALYZE as the link table grows)
        self._analyzed_at = 0

    def claim(self, conn: Connection, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` available rows for this relay (a lease of ``relay.lease_s`` seconds), in
        ``conn``'s transaction.

        Returns:
            The claimed rows (``id``, ``entity``, ``local_id``, ``op``, ``priority``, ``attempts``, ``last_code``,
            ``created_at``, ``done_at``), in priority order.
        """
        now = utcnow()
        until = now + dt.timedelta(seconds=self.settings.relay.lease_s)
        return outbox.claim(conn, worker=self.worker, now=now, until=until, limit=limit)

    def drop_records_held_elsewhere(self, claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep one record in flight in one relay only.

        Rows are claimed one by one (``SKIP LOCKED``), so two relays can claim different rows of one record.
        After its claim has committed, a relay gives back every record of which another relay holds a live
        claim. Each relay checks after its own commit, so of two overlapping claims at least the later
        check sees the other: at most one relay goes on with the record (both may give it back, and the
        record waits for the next step).

        Returns:
            The rows of ``claimed`` kept.
        """
        now = utcnow()
        with self.engine.connect() as conn:
            held = outbox.claimed_by_others(conn, ((r["entity"], r["local_id"]) for r in claimed), worker=self.worker,
                                            now=now)
        if not held:
            return claimed
        give_back = [r["id"] for r in claimed if (r["entity"], r["local_id"]) in held]
        log.info("records held by another relay given back", records=len(held))
        self.release(give_back)
        return [r for r in claimed if (r["entity"], r["local_id"]) not in held]

    def release(self, row_ids: Sequence[int]) -> None:
        """Give back claimed rows untouched (at shutdown or when a pass stops early)."""
        with self.engine.begin() as conn:
            outbox.release(conn, row_ids, worker=self.worker)

    def take_again(self, row_ids: Sequence[int]) -> None:
        """Make the deferred rows ``row_ids`` that no relay holds available now."""
        with self.engine.begin() as conn:
            outbox.make_available(conn, row_ids, utcnow())

    def unblock(self) -> int:
        """Re-queue ``blocked`` rows whose awaited record is linked now. Returns how many."""
        with self.engine.begin() as conn:
            return outbox.unblock(conn, utcnow())

    def other_store_failed(self) -> int:
        """Records whose outbox rows are failed as another store's (:data:`OTHER_STORE_CODE`) now."""
        with self.engine.connect() as conn:
            return outbox.failed_records(conn, OTHER_STORE_CODE)

    # ------------------------------------------------------------------------------------------ statistics
    def analyze_after_bulk_load(self, backlog: int) -> None:
        """On PostgreSQL, the first time only: analyze the outbox and link tables when at least ``backlog`` rows
        are pending (a bulk load leaves the planner with the statistics of empty tables)."""
        if self._analyzed or self.engine.dialect.name != "postgresql":
            return
        self._analyzed = True
        with self.engine.connect() as conn:
            pending = outbox.pending_at_least(conn, backlog)
        if pending >= backlog:
            outbox.analyze(self.engine, ("outbox", "link"))
            log.info("outbox and link analyzed before a large backlog", backlog=f">={pending}")

    def note_links(self, n: int) -> None:
        """Count ``n`` links made by this relay (:meth:`analyze_as_links_grow`)."""
        self._links_written += n

    def analyze_as_links_grow(self, every: int) -> None:
        """On PostgreSQL, analyze the link and outbox tables again each time ``every`` records were linked by this
        relay: during a first push the link table grows from nothing, and with the statistics of an empty table
        the planner scans it whole for each lookup of 500 links."""
        if self.engine.dialect.name != "postgresql":
            return
        done = self._links_written
        if done - self._analyzed_at < every:
            return
        self._analyzed_at = done
        outbox.analyze(self.engine, ("link", "outbox"))
        log.info("link and outbox analyzed as they grow", records=done)


__all__ = ["Claims"]
