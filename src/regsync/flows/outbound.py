"""The outbound relay (design.md, "The three flows", 1): outbox → registry.

A pass works through windows of the outbox until no row is available. For each window it:

1. **claims** up to ``claim_size`` available rows (``pending`` or ``deferred`` whose ``available_at`` has
   passed, not under another relay's lease) in priority order — on PostgreSQL with ``FOR UPDATE SKIP
   LOCKED``, so replicas share the work. A claim is a lease (``claimed_until``) that expires if the relay dies;
   rows are found by state, never by an ``id > last_seen`` cursor, so a row whose transaction commits late is
   never skipped;
2. **folds** the rows of each record into one write of the record's *current* state, read from the live row
   (the outbox holds no payload);
3. works through the priority groups in order (what a record refers to first, endings the other way:
   :data:`regsync.db.triggers.PRIORITY`), deciding per record from the live row and its link: create, update
   (``If-Match``), delete, join, leave, revoke, correct (a corrected service or training record replaces its
   registry record in one step, ``:correct`` of registry-api.md §4.5, under ``clientRef`` ``<id>-r<revision>``: the
   old record is revoked only if the new one is accepted), or nothing when the registry already holds this state.
   Of v1.1's kinds, a training ends by a PUT of status ``CANCELLED`` (as an activity), commendations and
   evaluations by ``:revoke``; what the registry checks against its own records waits for them
   (:mod:`regsync.flows.relay_waits`: a scheme commendation for the subject's service records of its year, an
   evaluation for its activity's completion and the volunteer's service record);
4. sends ``POST /batch`` calls of up to ``batch_size`` operations and handles each result on its own:
   created → link; ``DUPLICATE_*`` → link to ``existingId`` with the registry's record as the base and nothing
   pushed over it; ``VERSION_MISMATCH`` where only a derived field moved → retried on the new version;
   refusals on the data → the row fails with the registry's field errors, and records that refer to it wait as
   ``blocked`` (``PARENT_FAILED``); transient errors → deferred with backoff;
5. commits links and outbox states per batch, in order, on a writer thread of its own.

The windows form one pipeline: up to ``concurrency`` calls are in flight while the relay claims, reads and plans
the next batches (a group is read one batch's worth at a time) and records the last. What depends on work in
flight waits for it (:meth:`regsync.flows.relay_send.Pipeline.work`): a group of another priority, and a newer row
of a record in flight.

Two local rows of one person (design.md): the older row is the primary and is pushed; the other is linked to
the same registry id as a duplicate, and its profile is never pushed.

A key deleted and inserted again (design.md's mapping table; a restore or import script reusing an explicit id)
names another record: the trigger queues the insert as ``reuse`` while the key still has the old record's link
(:mod:`regsync.db.triggers`). Changes are never folded across that delete: the rows older than the ``reuse`` row
only end the old registry record (from the link's base, as a delete would: deregister, dissolve, cancel, leave,
revoke), and the newer rows create the new record under the next ``clientRef`` revision (a membership: a join of
its pair), whichever comes first. Once the new record is linked, the old link is kept as a *retired* link under
the key ``-link.id`` (no local row has it: it is the link of a deleted row, which every flow already knows), an
ending is queued for it when the old record is not ended yet, and the ``reuse`` rows become ``insert`` rows, all
in one transaction (:meth:`regsync.flows.relay_outcomes.Outcomes.write`). While the key is reused, what refers to
it waits for the new record (:func:`reused_keys`), the inbound poller and the reconcile take its link for a deleted
row's, and nothing of the old record is written onto the new one.

The parts, each a module that reads top to bottom on its own; :class:`Relay` is the facade that puts them
together for a pass::

    Relay.run ──> relay_send.Pipeline ──────> relay_claim.Claims         claim, give back, unblock (db.outbox)
                   │  (thread pool, writer)   relay_plan.Planner         fold, group, order, batch
                   │                            ├─ relay_load.Loader     rows, links, references, parents
                   │                            ├─ relay_waits.Waits     what the registry checks (v1.1)
                   │                            └─ relay_ops.Operations  create, update, delete, correct…
                   ├─> relay_results.Results  classify each result (registry.errors), link, merge
                   │                            └─ relay_owner.OtherStores  this store's record or another's
                   └─> relay_outcomes.Outcomes  write links and outbox states (db.links, db.outbox)

:mod:`regsync.flows.relay_items` holds what they share (a record's work item, the pass's statistics, the codes).
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db.hashkey import check_hash_key
from regsync.db.history import CLOCK_MARGIN_S, not_sent_here, reused_keys
from regsync.db.meta import store_id
from regsync.db.outbox import unblock as unblock  # one of this module's public names (regsync.service.daemon)
from regsync.db.session import suppress_outbox
from regsync.flows.apply import InboundStats, LocalWriter
from regsync.flows.relay_claim import Claims
from regsync.flows.relay_items import LOCAL_WAIT_CODES, OTHER_STORE_CODE, RelayHalted, RelayStats
from regsync.flows.relay_items import Item as _Item  # the names the merge below is written with
from regsync.flows.relay_load import Loader
from regsync.flows.relay_ops import Operations
from regsync.flows.relay_outcomes import Outcomes as _Outcomes
from regsync.flows.relay_owner import OtherStores
from regsync.flows.relay_plan import Planner
from regsync.flows.relay_results import Results
from regsync.flows.relay_send import Pipeline
from regsync.registry.port import RegistryPort
from regsync.settings import Settings

log = structlog.get_logger(__name__)

_CHUNK = 500

def _chunk_size(conn: Connection) -> int:
    """Keys per ``IN`` query: one array parameter on PostgreSQL holds many; SQLite binds each key."""
    return 10_000 if conn.dialect.name == "postgresql" else _CHUNK


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class Relay:
    """The outbound relay. One instance per process; not thread-safe.

    Attributes:
        idempotency_window_s: how long the registry keeps a key's answer (registry-api.md §5.1: 24 h), less a
            margin: past it, a create whose answer was lost is looked up by ``clientRef`` before it is sent again.
        analyze_backlog: on PostgreSQL, a backlog at least this large when a relay starts has the outbox and link
            tables analyzed first (a bulk load leaves the planner with the statistics of empty tables).
        analyze_every: on PostgreSQL, the link and outbox tables are analyzed again each time this many records
            were linked in this process: during a first push the link table grows from nothing, and with the
            statistics of an empty table the planner scans it whole for each lookup of 500 links.
        writes_behind: writes the writer may be behind the calls before the relay waits for it.

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient` (or anything with its ``batch``/``lookup``).
        settings: regsync's settings (``relay``, ``hash_key``).
        worker: this relay's name in claims (default: host and pid).
        progress: called as ``progress(kind, records_done)`` after each batch.
        concurrency: batch calls in flight at once (1 = strictly one after the other; default
            ``settings.relay.concurrency``).

    Raises:
        regsync.db.hashkey.HashKeyMismatch: ``settings.hash_key`` is not the store's hash key.
    """

    idempotency_window_s: float = 23 * 3600.0
    analyze_backlog: int = 50_000
    analyze_every: int = 50_000
    writes_behind: int = 4

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, *, worker: str | None = None,
                 progress: Callable[[str, int], None] | None = None, concurrency: int | None = None) -> None:
        check_hash_key(engine, settings.hash_key)  # the links' snapshots are hashed with the store's key
        self.engine = engine
        #: This store's own identifier, in every idempotency key it derives: another store holding the same
        #: records under the same credentials never has the registry replay this store's answers (issue 12, item 4)
        self.store_id = store_id(engine)
        self.client = client
        self.settings = settings
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.progress = progress
        self.stats = RelayStats()
        #: Batch calls kept in flight at once: the registry works on one while the relay prepares the next.
        self.concurrency = concurrency or settings.relay.concurrency
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="relay-batch")
        #: The outcomes are written on one thread of their own, in order, while the relay goes on.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-write")
        self._rng = random.Random()
        self._merger: LocalWriter | None = None  # for VERSION_MISMATCH merges (made when first needed)
        self._claims = Claims(engine, settings, self.worker)

    def close(self) -> None:
        """Stop the relay's call and writer threads."""
        self._pool.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    # ------------------------------------------------------------------------------------------ pass
    def run(self, *, stop: Callable[[], bool] | None = None, max_steps: int | None = None) -> RelayStats:
        """Run a pass: claim windows of rows and send their writes until no row is available (or ``stop()`` is
        true, or ``max_steps`` windows were claimed).

        The pass is one pipeline (:class:`regsync.flows.relay_send.Pipeline`): the next window is claimed, read
        and planned while the calls of the last one are in flight, so the registry always has work.

        ``stop`` is polled before each batch is sent: once it is true no new batch is sent, the batches in flight
        are finished and recorded, and the other claimed rows are released (a shutdown within one batch's time).

        Returns:
            The pass's :class:`RelayStats` (failed counts are those of this pass's rows).

        Raises:
            RelayHalted: the registry refused the credentials or the client's scope as a whole; or
                ``settings.relay.other_store_limit`` records are failed as another store's (a second store under
                these credentials), before this pass or during it.
        """
        self.stats = stats = RelayStats()
        owner = OtherStores(self.engine, self.client, self.settings, not_sent_here,
                            failed_before=self._claims.other_store_failed())
        owner.halt_if_too_many()
        self.unblock()
        self._claims.analyze_after_bulk_load(self.analyze_backlog)
        operations = Operations(self.client, self.settings, self.store_id, stats, owner, self._backoff)
        planner = Planner(self.engine, self.client, self.settings, Loader(self.engine, self.client, reused_keys),
                          operations, owner, self.idempotency_window_s)
        results = Results(self.client, self.settings, stats, owner, self._merge_moved, self._backoff,
                          self.progress)
        Pipeline(self.engine, self.client, self.settings, worker=self.worker, stats=stats, claims=self._claims,
                 planner=planner, results=results, pool=self._pool, writer=self._writer,
                 concurrency=self.concurrency, writes_behind=self.writes_behind, analyze_every=self.analyze_every,
                 backoff=self._backoff, stop=stop).run(max_steps)
        return self.stats

    def unblock(self) -> int:
        """Re-queue ``blocked`` rows whose awaited record is linked now. Returns how many."""
        return self._claims.unblock()

    def claim(self, conn: Connection, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` available rows for this relay (a lease of ``lease_s`` seconds).

        Returns:
            The claimed rows (``id``, ``entity``, ``local_id``, ``op``, ``priority``, ``attempts``), in
            priority order.
        """
        return self._claims.claim(conn, limit)

    def release(self, row_ids: Sequence[int]) -> None:
        """Give back claimed rows untouched (at shutdown or when a pass stops early)."""
        self._claims.release(row_ids)

    def _backoff(self, attempts: int) -> float:
        """Full-jitter exponential backoff between passes, seconds (cap 300)."""
        return self._rng.uniform(0, min(300.0, 2.0 * 2 ** min(attempts, 8)))

    def _merge_moved(self, kind: str, merges: list[tuple[_Item, dict[str, Any]]], outcomes: _Outcomes) -> None:
        """``VERSION_MISMATCH`` with synced fields moved in the registry (issue 4: "the relay's
        ``VERSION_MISMATCH`` goes through the same merge: stale content is never re-sent under a fresher
        ``If-Match``"). The registry's current record (``data.current``, registry-api.md §5) is merged three ways
        against the link's base exactly as the inbound poller merges a change (registry-winning fields written
        locally without echo, ``manual`` fields held as conflicts, the link moved to the current version and
        base), in its own transaction; then the record's rows go back to the queue, so that the next step plans
        the write from the merged row and the new version. A record that keeps meeting a moving registry is
        retried with backoff and fails after ``relay.max_attempts``."""
        if self._merger is None:
            self._merger = LocalWriter(self.engine, self.client, self.settings)
        self._merger.stats = InboundStats()
        records = [rec for _, rec in merges]
        with self.engine.begin() as conn, suppress_outbox(conn):
            self._merger.apply_records(conn, kind, records)
        self.stats.decisions.update(self._merger.stats.decisions)
        self.stats.conflicts.update(self._merger.stats.conflicts)
        room = 2_000 - len(self.stats.decision_log)
        if room > 0:
            self.stats.decision_log.extend(self._merger.stats.decision_log[:room])
        for it, _ in merges:
            self.stats.merged[kind] += 1
            outcomes.defer(it, "MERGED", "the registry changed the record meanwhile: merged, to be sent again",
                           seconds=0.0 if it.attempts < 2 else self._backoff(it.attempts), count_attempt=True,
                           max_attempts=self.settings.relay.max_attempts)
        log.info("version mismatch: merged with the registry's current record", kind=kind, records=len(merges))


__all__ = ["CLOCK_MARGIN_S", "LOCAL_WAIT_CODES", "OTHER_STORE_CODE", "Relay", "RelayHalted", "RelayStats",
           "not_sent_here", "reused_keys", "unblock"]
