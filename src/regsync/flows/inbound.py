"""The inbound poller (design.md, "The three flows", 2): the registry's changes brought home.

A run reads the change feed (registry-api.md §5.3) from the saved cursor, a page of up to
:data:`PAGE_LIMIT` changes at a time, and for each page:

1. **drops** what needs no work: repeats (delivery is at least once: the same type, id and version seen in
   this run, or a version not newer than the link's) and echoes of this client's own writes (``byClientId``
   is its id and the version is not newer than the link's), and collapses several changes of one record into
   one (its newest version);
2. **fetches** the bodies with ``POST /lookup`` in chunks of :data:`LOOKUP_CHUNK` (§5.2; the body may be newer
   than announced);
3. **applies** them, in one transaction that also saves the page's ``nextCursor`` (design.md, "Data model":
   the cursor is saved with the changes applied from it), every local write inside
   :func:`~regsync.db.session.suppress_outbox` (no echo loop), kinds in reference order (orgs level by level,
   volunteers, memberships, activities, service records):

   each kind's records go to :class:`regsync.flows.apply.LocalWriter`, the one place that writes the
   registry's records into local records (merges, adoptions, creations, records this client may not write,
   transfers out, endings: see :mod:`regsync.flows.apply`).

``CURSOR_EXPIRED`` (410) does not restart from the head: it records that a full reconcile is due
(:func:`reconcile_due`, a row ``reconcile_due`` of ``feed_cursor``), logs it as an alarm and ends the run; the
reconcile restarts the feed from its exports' ``X-Snapshot-Cursor`` (design.md, flow 3).

Record types this client does not know (registry-api.md §1; v1.1 adds trainings, training records, commendations
and evaluations) are skipped by the client and counted (``unknown_types``; unknown fields, ignored, in
``unknown_fields``): the page's cursor is saved past them, and a page holding nothing else does not end the run.

Memory stays flat: one page of changes and bodies at a time, and a bounded set of the items already seen.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine

from regsync.db import merges
from regsync.db.feed import (
    CURSOR_NAME,
    finish_pull_run,
    mark_reconcile_due,
    reconcile_due,
    save_cursor,
    saved_cursor,
    start_pull_run,
)
from regsync.db.query import chunks
from regsync.db.session import suppress_outbox, utcnow
from regsync.db.triggers import ORG_LEVEL_RANK
from regsync.domain.kinds import KINDS
from regsync.domain.masking import mask_text
from regsync.flows.apply import InboundStats, LocalWriter
from regsync.registry.errors import CursorExpired
from regsync.registry.port import RegistryPort
from regsync.registry.types import Change, ChangePage, as_kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Changes per ``GET /changes`` page (registry-api.md §3: at most 1000).
PAGE_LIMIT = 1000
#: Ids per ``POST /lookup`` (registry-api.md §3: at most 500).
LOOKUP_CHUNK = 500
#: Items remembered to drop repeats across pages (bounded: memory stays flat).
SEEN_MAX = 200_000

KIND_ORDER = KINDS



class _Seen:
    """A bounded set of (kind, id, version) already handled in this run (oldest forgotten first)."""

    def __init__(self, limit: int = SEEN_MAX) -> None:
        self._items: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._limit = limit

    def add(self, key: tuple[str, str, int]) -> bool:
        """Remember ``key``; ``False`` if it was already there."""
        if key in self._items:
            return False
        self._items[key] = None
        if len(self._items) > self._limit:
            self._items.popitem(last=False)
        return True


# ---------------------------------------------------------------------------------------------- helpers


def _unknown_mark(client: Any) -> Any:
    """A copy of the client's counts of unknown types and fields (:class:`regsync.registry.types.Unknowns`), to
    count a run's share from; ``None`` for a client that keeps none (a test's stand-in)."""
    unknown = getattr(getattr(client, "stats", None), "unknown", None)
    return unknown.copy() if unknown is not None else None





class Poller:
    """The inbound poller. One instance per run loop; not thread-safe.

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient` (or anything with ``changes``/``lookup``).
        settings: regsync's settings (``province``, ``hash_key``, ``merge``, ``registry.client_id``).
        page_limit: changes per feed page (1–1000).
        record_run: record the run in ``run`` (kind ``inbound``) with its summary and decisions.

    Raises:
        regsync.db.hashkey.HashKeyMismatch: ``settings.hash_key`` is not the store's hash key.
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, *, page_limit: int = PAGE_LIMIT,
                 record_run: bool = True) -> None:
        if not 1 <= page_limit <= 1000:
            raise ValueError("page_limit must be between 1 and 1000 (registry-api.md §3)")
        #: where the feed's records are written (checks the store's hash key)
        self.writer = LocalWriter(engine, client, settings)
        self.engine = engine
        self.client = client
        self.settings = settings
        self.page_limit = page_limit
        self.record_run = record_run
        self._seen = _Seen()

    @property
    def stats(self) -> InboundStats:
        """What the current (or last) run did: its feed reading and its writer's writes (one object)."""
        return self.writer.stats

    @stats.setter
    def stats(self, value: InboundStats) -> None:
        self.writer.stats = value

    # ------------------------------------------------------------------------------------------ cursor
    def take_first_cursor(self, *, force: bool = False) -> str:
        """Take the feed's head as the first cursor, before the first push (design.md, flow 2).

        Every path that pushes or pulls calls it first (:func:`regsync.flows.sync.run_sync` for any flow, the
        daemon's relay job, the poller's own run). When no cursor is saved but records are linked already (a push
        ran before any cursor was taken, or the feed's row was lost), the registry's changes made before this head
        were never read: a full reconcile is marked as due (:func:`mark_reconcile_due`, reason ``NO_CURSOR``,
        logged as an alarm), whichever path found it.

        Args:
            force: replace a saved cursor (only an operator or the reconcile should).

        Returns:
            The saved cursor (the existing one unless ``force`` or none is saved).

        Raises:
            RegistryError: the feed's head could not be read (nothing is saved; pushes must wait).
        """
        with self.engine.connect() as conn:
            current = saved_cursor(conn)
            linked = current is None and merges.any_linked(conn)
        if current is not None and not force:
            return current
        head = self.client.changes(None, limit=1).next_cursor
        with self.engine.begin() as conn:
            raced = saved_cursor(conn)
            if raced is not None and not force:  # another process took it meanwhile
                return raced
            save_cursor(conn, head)
            if linked:
                mark_reconcile_due(conn, "NO_CURSOR", None)
        log.info("inbound.first_cursor", cursor=head)
        if linked:
            # changes made before this head were never read: only a full reconcile sees them
            self.stats.reconcile_due, self.stats.reconcile_reason = True, "NO_CURSOR"
            self.stats.reconcile_found = True
            log.error("inbound: no saved cursor although records are linked; started from the head, "
                      "a full reconcile is due", alarm=True)
        return head

    # ------------------------------------------------------------------------------------------ run
    def run(self, *, stop: Callable[[], bool] | None = None, max_pages: int | None = None) -> InboundStats:
        """Read and apply the feed until it has no more (or ``stop()``, or ``max_pages`` pages).

        Returns:
            The run's :class:`InboundStats`. ``reconcile_due`` is set when the cursor expired (nothing more is
            read: a full reconcile must restart the feed) or when there was no cursor although links existed.

        Raises:
            RegistryError: the registry was unavailable (what was applied before is committed with its cursor).
        """
        self.stats = InboundStats()
        run_id = self._start_run()
        status = "success"
        unknown_mark = _unknown_mark(self.client)
        try:
            with self.engine.connect() as conn:
                self.writer.refresh_platform(conn)  # an install since the last run is this run's mapping
                cursor = saved_cursor(conn)
                due = reconcile_due(conn)
            if due is not None:
                self.stats.reconcile_due, self.stats.reconcile_reason = True, due.get("reason")
            if cursor is None:
                cursor = self.take_first_cursor()  # marks a full reconcile as due when links exist
            pages = 0
            while not (stop and stop()) and (max_pages is None or pages < max_pages):
                try:
                    page = self.client.changes(cursor, limit=self.page_limit)
                except CursorExpired:
                    with self.engine.begin() as conn:
                        mark_reconcile_due(conn, "CURSOR_EXPIRED", cursor)
                    self.stats.reconcile_due, self.stats.reconcile_reason = True, "CURSOR_EXPIRED"
                    self.stats.reconcile_found = True
                    log.error("inbound: the change-feed cursor expired (CURSOR_EXPIRED); a full reconcile is due "
                              "and will restart the feed from its exports' snapshot cursor", alarm=True)
                    status = "partial"
                    break
                pages += 1
                self._page(page)
                # a page of nothing but types this client does not know is not the end (registry-api.md §1)
                read = bool(page.changes) or bool(page.unknown.types)
                cursor = page.next_cursor
                if not page.has_more or not read:
                    break
        except BaseException as exc:
            self._count_unknown(unknown_mark)
            self._finish_run(run_id, "failed", error=str(exc))
            raise
        self._count_unknown(unknown_mark)
        self._finish_run(run_id, status)
        log.info("inbound.done", applied=self.stats.applied, changes=self.stats.changes,
                 conflicts=sum(self.stats.conflicts.values()), reconcile_due=self.stats.reconcile_due)
        return self.stats

    def _count_unknown(self, mark: Any) -> None:
        """Take into :attr:`stats` what the client skipped or ignored as unknown since ``mark`` (this run's share:
        feed entries and lookup results of types this client does not know, unknown fields)."""
        if mark is None:
            return
        got = self.client.stats.unknown.since(mark)
        self.stats.unknown_types.update(got.types)
        self.stats.unknown_fields.update(got.fields)

    def _start_run(self) -> int | None:
        if not self.record_run:
            return None
        with self.engine.begin() as conn:
            run_id = start_pull_run(conn)
        self.stats.run_id = run_id
        return run_id

    def _finish_run(self, run_id: int | None, status: str, error: str | None = None) -> None:
        if run_id is None:
            return
        summary = self.stats.as_dict()
        if error:
            summary["error"] = mask_text(error)[:2000]
        if status == "success" and self.stats.reconcile_found:
            status = "partial"
        with self.engine.begin() as conn:
            finish_pull_run(conn, run_id, status, orjson.dumps(summary, default=str).decode())

    # ------------------------------------------------------------------------------------------ one page
    def _page(self, page: ChangePage) -> None:
        """Filter, fetch and apply one page, and save its ``nextCursor`` in the same transaction."""
        st = self.stats
        st.pages += 1
        st.changes += len(page.changes) + sum(page.unknown.types.values())
        st.pulled.update(ch.kind for ch in page.changes)
        newest: dict[tuple[str, str], Change] = {}
        for ch in page.changes:
            if not self._seen.add((ch.kind, ch.registry_id, ch.version)):
                st.repeats += 1
                continue
            key = (ch.kind, ch.registry_id)
            if key in newest:
                st.repeats += 1
                if ch.version <= newest[key].version:
                    continue
            newest[key] = ch
        by_kind: dict[str, list[Change]] = defaultdict(list)
        for ch in newest.values():
            by_kind[ch.kind].append(ch)

        # links as they are now, to drop stale items and echoes before any lookup; records with a write in
        # flight are waited for first (see _wait_for_writes_in_flight)
        links = self._wait_for_writes_in_flight(by_kind)
        wanted: dict[str, list[str]] = {}
        own_id = self.writer.own_client_id
        for kind, chs in by_kind.items():
            keep = []
            for ch in chs:
                primary = merges.primary_link(links[kind].get(ch.registry_id))
                own = bool(own_id) and ch.by_client_id == own_id
                if primary is not None and ch.version <= primary["registry_version"]:
                    if own:
                        st.echoes += 1
                    else:
                        st.stale += 1
                    continue
                if primary is None and own:
                    # this client's own record not linked (yet): the relay links it by clientRef (a lost answer),
                    # or it is the revoked predecessor of a corrected service record
                    st.skipped["own_unlinked"] += 1
                    continue
                keep.append(ch.registry_id)
            if keep:
                wanted[kind] = keep
        bodies: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, ids in wanted.items():
            got: dict[str, dict[str, Any]] = {}
            for chunk in chunks(ids, LOOKUP_CHUNK):
                for rec in self.client.lookup(as_kind(kind), list(chunk)):
                    got[rec["id"]] = rec
            bodies[kind] = got
            st.skipped["not_found"] += len(set(ids) - set(got))

        with self.engine.begin() as conn, suppress_outbox(conn):
            for kind in KIND_ORDER:
                recs = list(bodies.get(kind, {}).values())
                if kind == "org":
                    recs.sort(key=lambda r: (ORG_LEVEL_RANK.get(r.get("level") or "", 4), r["id"]))
                if recs:
                    self.writer.apply_records(conn, kind, recs)
            save_cursor(conn, page.next_cursor)
        st.cursor = page.next_cursor

    def _wait_for_writes_in_flight(self, by_kind: dict[str, list[Change]]
                                   ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The links of the page's records, read once no relay holds a live claim on any of them.

        A relay's write the registry has accepted but whose answer is not recorded yet leaves the link one
        version behind: its change would look like someone else's, and merging it against the old base would
        set the platform back to the value it sent (a flip-flop to the middle value, when the field was changed
        again meanwhile). Claims are leases of ``relay.lease_s`` seconds, so the wait is bounded; past it the
        page is applied as it is (the link's version check under lock still drops what the relay recorded).
        """
        deadline = time.monotonic() + max(1.0, float(self.settings.relay.lease_s))
        delay = 0.05
        while True:
            with self.engine.connect() as conn:
                links = {k: merges.links_by_registry_id(conn, k, [c.registry_id for c in chs])
                         for k, chs in by_kind.items()}
                busy = _claimed(conn, links)
            if not busy or time.monotonic() >= deadline:
                if busy:
                    log.warning("inbound: writes still in flight after the lease; applying the page", records=busy)
                return links
            time.sleep(delay)
            delay = min(0.5, delay * 2)


def _claimed(conn: Connection, links: dict[str, dict[str, list[dict[str, Any]]]]) -> int:
    """How many of the linked records have outbox rows under a live claim."""
    now = utcnow()
    return sum(merges.claimed_records(conn, kind, sorted({lk["local_id"] for lks in by_rid.values() for lk in lks}),
                                      now) for kind, by_rid in links.items())


#: Re-exported for the callers that read the feed's state from here (``regsync status``, tests); the store's own
#: module is :mod:`regsync.db.feed`.
__all__ = [
    "CURSOR_NAME",
    "InboundStats",
    "Poller",
    "reconcile_due",
    "saved_cursor",
]
