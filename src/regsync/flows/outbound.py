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
   (``If-Match``), delete, join, leave, revoke, correct (a corrected service record replaces its registry record
   in one step, ``:correct`` of registry-api.md §4.5, under ``clientRef`` ``<id>-r<revision>``: the old record is
   revoked only if the new one is accepted), or nothing when the registry already holds this state;
4. sends ``POST /batch`` calls of up to ``batch_size`` operations and handles each result on its own:
   created → link; ``DUPLICATE_*`` → link to ``existingId`` with the registry's record as the base and nothing
   pushed over it; ``VERSION_MISMATCH`` where only a derived field moved → retried on the new version;
   refusals on the data → the row fails with the registry's field errors, and records that refer to it wait as
   ``blocked`` (``PARENT_FAILED``); transient errors → deferred with backoff;
5. commits links and outbox states per batch, in order, on a writer thread of its own.

The windows form one pipeline: up to ``concurrency`` calls are in flight while the relay claims, reads and plans
the next batches (a group is read one batch's worth at a time) and records the last. What depends on work in
flight waits for it (:meth:`Relay._work`): a group of another priority, and a newer row of a record in flight.

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
in one transaction (:meth:`_Outcomes.write`). While the key is reused, what refers to it waits for the new record
(:func:`reused_keys`), the inbound poller and the reconcile take its link for a deleted row's, and nothing of
the old record is written onto the new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import socket
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from sqlalchemy import BigInteger, Connection, Engine, Text, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from regsync.db import links, outbox
from regsync.db.hashkey import check_hash_key
from regsync.db.holds import PARENT_DISCARDED, discarded_reason, held_keys
from regsync.db.meta import store_id
from regsync.db.models import REGISTRY_OWNED, TABLE_ENTITY, TABLES, Base, Outbox
from regsync.db.outbox import unblock as unblock  # one of this module's public names (regsync.service.daemon)
from regsync.db.session import suppress_outbox, utcnow
from regsync.db.triggers import ending_priority
from regsync.domain.masking import mask_text
from regsync.domain.normalize import NormalizationError, try_normalize_id_number
from regsync.domain.projection import (
    ENDED,
    FIELDS,
    REFERENCES,
    canonical,
    changed_fields,
    check_required_text,
    dumps,
    identity_mismatch,
    identity_of,
    project_local,
    project_registry,
)
from regsync.flows.relay_results import Verdict, about_the_client, classify, operator_code, refusal_text
from regsync.registry.errors import (
    InvalidClient,
    Maintenance,
    RateLimited,
    RegistryError,
    TransientError,
)
from regsync.registry.types import Kind, Operation, OperationResult
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Times one record may go back to the queue after a write within one pass before it is failed as ``SYNC_LOOP``:
#: a link then the push of the platform's state, a correction found under its clientRef, a new version
#: after a derived field moved, stay well below it.
LOOP_LIMIT = 12

#: Deferrals that wait for another record's write in the same pass: the second local membership of a pair (its
#: first is being joined), a reference not linked yet, a person's later row whose primary is not linked yet. Once
#: the pass has nothing else to do, their rows are taken again at once (up to :data:`WAIT_ROUNDS` times), so that
#: one ``regsync sync`` leaves nothing behind that it could have sent (a second sync sends nothing).
IN_PASS_WAITS = frozenset({"PRIMARY_PENDING", "PARENT_PENDING"})
WAIT_ROUNDS = 3

#: Codes of a deferral whose outcome is known (decided locally, or a refusal merged): no write is uncertain.
LOCAL_WAIT_CODES = {"PARENT_PENDING", "PRIMARY_PENDING", "PARENT_FAILED", "PARENT_DISCARDED", "MERGED",
                    "CONFLICT_HELD"}

_CHUNK = 500

#: The code of a record whose registry record was made under this client's credentials by another store (its
#: ``clientRef`` or natural key met, this store never sent that create): failed for an operator, never linked or
#: written over (deploy/RUNBOOK.md, "A record fails with CLIENT_REF_TAKEN").
OTHER_STORE_CODE = "CLIENT_REF_TAKEN"

#: Seconds of clock difference allowed when a registry record's ``createdAt`` is compared with this store's first
#: send under its ``clientRef`` (registry-api.md §2 accepts a request whose timestamp is off by up to 300 s).
CLOCK_MARGIN_S = 300.0

#: The status a record is created with when it ended locally before it was pushed.
OPEN_STATUS = {"org": "ACTIVE", "volunteer": "ACTIVE", "activity": "PUBLISHED", "service_record": "ACCEPTED"}


def _ended_locally(kind: str, row: dict[str, Any] | None) -> bool:
    """Whether the live row is ended (deregistered, dissolved, cancelled, revoked, left)."""
    if row is None:
        return True
    if kind == "membership":
        return row.get("left_on") is not None
    return row.get("status") == ENDED[kind]


class RelayHalted(Exception):
    """The registry refuses this client as a whole (credentials, scope): the relay stops and alarms."""


class _Stopped(Exception):
    """The pass was asked to stop: the batches in flight were finished and recorded, the rest released."""


@dataclass
class RelayStats:
    """What a pass did. Counters are by kind (``org``, ``volunteer``…) unless named otherwise.

    Attributes:
        pushed: writes the registry accepted.
        linked: local records linked to a registry record that already existed (duplicates of a person, a
            ``DUPLICATE_*`` answer).
        failed: records whose rows ended the pass failed or blocked.
        failed_by_code: the same, by code (``INVALID_PHONE``… for field errors, ``PARENT_FAILED``).
        unchanged: records whose registry record already held their state (nothing sent).
        deferred: records put off to a later pass (transient faults, a parent not yet linked).
        merged: records whose write met ``VERSION_MISMATCH`` with synced fields moved in the registry: merged
            three ways (:mod:`regsync.domain.merge`) and sent again from the merged state, never the stale one.
        held: records sent with fields held by open conflicts (the registry's values kept for those fields).
        decisions: the merges' decisions, by ``kind.field:rule:winner``.
        conflicts: fields the merges held for an operator (open or brought up to date).
        decision_log: the first 2 000 of them in detail (``kind``, ``local_id``, ``registry_id``, ``field``,
            ``rule``, ``winner``, ``group``).
        batches: ``POST /batch`` calls made.
    """

    pushed: Counter[str] = field(default_factory=Counter)
    linked: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failed_by_code: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    decision_log: list[dict[str, Any]] = field(default_factory=list)
    conflicts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    #: records deferred only to wait for work of this very pass (:data:`IN_PASS_WAITS`): (kind, outbox row ids)
    waiting: list[tuple[str, list[int]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, for JSON output and the run's summary."""
        return {"pushed": dict(self.pushed), "linked": dict(self.linked), "failed": dict(self.failed),
                "failed_by_code": dict(self.failed_by_code), "unchanged": dict(self.unchanged),
                "deferred": dict(self.deferred), "merged": dict(self.merged), "held": dict(self.held),
                "decisions": dict(self.decisions), "batches": self.batches}


@dataclass
class _Item:
    """One record's work within a step."""

    kind: Kind
    local_id: int
    row_ids: list[int]
    attempts: int
    row: dict[str, Any] | None = None
    link: dict[str, Any] | None = None
    op: Operation | None = None
    desired: dict[str, Any] | None = None  # canonical state after a successful op
    desired_raw: dict[str, Any] | None = None  # the same, not yet canonical (creates: the answer usually has it)
    had_failed: bool = False  # the record has older failed or blocked rows, to settle with this outcome
    uncertain: bool = False  # an earlier attempt's outcome is unknown (a transient fault, a lost answer)
    first_queued: dt.datetime | None = None  # the oldest of its rows (UTC, local clock)
    last_verdict: str = ""  # when its rows last failed or were blocked (a new write after that needs a new key)
    unreadable: str | None = None  # why the live row could not be read, if it could not
    held: frozenset[str] = frozenset()  # fields held by open conflicts (never pushed from the platform)
    held_values: dict[str, Any] | None = None  # the registry's current values of the held fields (clear)
    held_base: dict[str, Any] | None = None  # the link's base values of the held fields, kept after a write
    sent_here: bool = False  # this store sent a create under the create's clientRef before this attempt
    first_sent_at: dt.datetime | None = None  # when it first did (UTC, local clock; None: no age check)
    reuse_ids: tuple[int, ...] = ()  # 'reuse' rows of its key not done: its link names the key's previous record
    retired: dict[str, Any] | None = None  # that link, once this item creates the new record (retired on success)


@dataclass
class _Group:
    """The records of one kind and one priority within a claimed window; its outcomes are written per batch,
    and what waits for the calls (a person's later rows) at its end."""

    kind: str
    priority: int
    items: list[_Item]
    outcomes: _Outcomes
    pairs: list[tuple[Any, Any]] = field(default_factory=list)  # membership pairs it sends first (open pairs)


@dataclass
class _Send:
    """A batch of a group's records to send in one ``POST /batch``."""

    group: _Group
    items: list[_Item]


@dataclass
class _End:
    """A group's end: written once every batch of it (and of the groups before it) is handled."""

    group: _Group


#: In the relay's work: handle everything in flight before any more work is produced.
_BARRIER = object()


def _revision_of(client_ref: str) -> int:
    """The correction number in a service record's ``clientRef`` (``"42"`` → 0, ``"42-r3"`` → 3)."""
    _, sep, rev = client_ref.rpartition("-r")
    return int(rev) if sep and rev.isdigit() else 0


def reused_keys(conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The keys among ``local_ids`` that were deleted and used again for another record whose registry record is
    not created yet (design.md's mapping table, "a key deleted and inserted again"): their link still names the
    record the key held before, which is not this row's.

    Args:
        conn: a connection to the local store.
        kind: the record kind (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``).
        local_ids: local ids of that kind.

    Returns:
        Local id → the ids of its ``reuse`` outbox rows not yet done (any state but ``sent``), for the reused keys
        only (read through the partial index ``ix_outbox_reuse``).
    """
    out: dict[int, list[int]] = defaultdict(list)
    ob = Outbox.__table__
    ids = sorted(set(local_ids))
    for chunk in _chunks(ids, _chunk_size(conn)):
        for rid, lid in conn.execute(select(ob.c.id, ob.c.local_id).where(
                ob.c.entity == kind, _in(conn, ob.c.local_id, chunk),
                text("outbox.op = 'reuse' AND outbox.state <> 'sent'"))):  # literal: the partial index's terms
            out[int(lid)].append(int(rid))
    return {lid: tuple(sorted(rids)) for lid, rids in out.items()}




def _in(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter instead of hundreds (the
    driver parses and binds it far faster). The array is a typed parameter: cast from a text literal instead,
    it leaves the planner's generic plans blind (a lookup of 500 links went from 10 to 118 ms)."""
    if conn.dialect.name == "postgresql":
        item_type = BigInteger() if values and isinstance(values[0], int) else Text()
        return column == any_(bindparam(None, list(values), type_=ARRAY(item_type)))
    return column.in_(list(values))


def _chunk_size(conn: Connection) -> int:
    """Keys per ``IN`` query: one array parameter on PostgreSQL holds many; SQLite binds each key."""
    return 10_000 if conn.dialect.name == "postgresql" else _CHUNK


def _dicts(result: Any) -> list[dict[str, Any]]:
    """A result's rows as plain dicts (built from tuples: far cheaper than a mapping per row)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _now() -> dt.datetime:
    return utcnow()


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class Relay:
    """The outbound relay. One instance per process; not thread-safe.

    Attributes:
        idempotency_window_s: how long the registry keeps a key's answer (registry-api.md §5.1: 24 h), less a
            margin: past it, a create whose answer was lost is looked up by ``clientRef`` before it is sent again.

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

    def __init__(self, engine: Engine, client: Any, settings: Settings, *, worker: str | None = None,
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
        self._writes: deque[Future[None]] = deque()
        self._analyzed = False
        self._rng = random.Random()
        self._merger: Any = None  # an inbound Poller, for VERSION_MISMATCH merges (made when first needed)
        self._steps_of: Counter[tuple[str, int]] = Counter()  # requeues of each record in this pass
        self._links_written = 0  # links this relay made (for ANALYZE as the link table grows)
        self._analyzed_at = 0
        self._stop: Callable[[], bool] | None = None
        self._open: set[tuple[str, int]] = set()  # records of the groups not finished yet (in flight)
        self._open_pairs: set[tuple[Any, Any]] = set()  # membership pairs being joined by those groups
        self._unsettled: set[int] = set()  # claimed outbox rows not written yet (released if the pass fails)
        self._other_store = 0  # records failed as another store's (OTHER_STORE_CODE), this pass's and before

    def close(self) -> None:
        """Stop the relay's call and writer threads."""
        self._pool.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    # ------------------------------------------------------------------------------------------ pass
    def run(self, *, stop: Callable[[], bool] | None = None, max_steps: int | None = None) -> RelayStats:
        """Run a pass: claim windows of rows and send their writes until no row is available (or ``stop()`` is
        true, or ``max_steps`` windows were claimed).

        The pass is one pipeline: the next window is claimed, read and planned while the calls of the last one
        are in flight, so the registry always has work (see :meth:`_work` for what waits for what).

        ``stop`` is polled before each batch is sent: once it is true no new batch is sent, the batches in flight
        are finished and recorded, and the other claimed rows are released (a shutdown within one batch's time).

        Returns:
            The pass's :class:`RelayStats` (failed counts are those of this pass's rows).

        Raises:
            RelayHalted: the registry refused the credentials or the client's scope as a whole; or
                ``settings.relay.other_store_limit`` records are failed as another store's (a second store under
                these credentials), before this pass or during it.
        """
        self.stats = RelayStats()
        self._stop = stop
        self._steps_of = Counter()
        self._open = set()
        self._open_pairs = set()
        self._unsettled = set()
        self._other_store = self._other_store_failed()
        self._halt_on_other_stores()
        self.unblock()
        self._analyze_after_bulk_load()
        try:
            self._dispatch(self._work(max_steps))
            self._flush_writes()
        except _Stopped:
            self._flush_writes(raising=False)
            log.info("relay stopped after its batches in flight; the rest of its claimed rows released")
            self.release(sorted(self._unsettled))
        except BaseException:
            self._flush_writes(raising=False)
            self.release(sorted(self._unsettled))
            raise
        finally:
            self._stop = None
            self._open = set()
            self._open_pairs = set()
            self._unsettled = set()
        return self.stats

    #: On PostgreSQL, a backlog at least this large when a relay starts has the outbox and link tables
    #: analyzed first (a bulk load leaves the planner with the statistics of empty tables).
    analyze_backlog: int = 50_000

    #: On PostgreSQL, the link and outbox tables are analyzed again each time this many records were linked in
    #: this process: during a first push the link table grows from nothing, and with the statistics of an empty
    #: table the planner scans it whole for each lookup of 500 links.
    analyze_every: int = 50_000

    def _analyze_as_links_grow(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        done = self._links_written
        if done - self._analyzed_at < self.analyze_every:
            return
        self._analyzed_at = done
        outbox.analyze(self.engine, ("link", "outbox"))
        log.info("link and outbox analyzed as they grow", records=done)

    def _analyze_after_bulk_load(self) -> None:
        if self._analyzed or self.engine.dialect.name != "postgresql":
            return
        self._analyzed = True
        with self.engine.connect() as conn:
            backlog = outbox.pending_at_least(conn, self.analyze_backlog)
        if backlog >= self.analyze_backlog:
            outbox.analyze(self.engine, ("outbox", "link"))
            log.info("outbox and link analyzed before a large backlog", backlog=f">={backlog}")

    def _other_store_failed(self) -> int:
        """Records whose outbox rows are failed as another store's (:data:`OTHER_STORE_CODE`) now."""
        with self.engine.connect() as conn:
            return outbox.failed_records(conn, OTHER_STORE_CODE)

    def unblock(self) -> int:
        """Re-queue ``blocked`` rows whose awaited record is linked now. Returns how many."""
        with self.engine.begin() as conn:
            return outbox.unblock(conn, _now())

    # ------------------------------------------------------------------------------------------ claim
    def claim(self, conn: Connection, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` available rows for this relay (a lease of ``lease_s`` seconds).

        Returns:
            The claimed rows (``id``, ``entity``, ``local_id``, ``op``, ``priority``, ``attempts``), in
            priority order.
        """
        now = _now()
        until = now + dt.timedelta(seconds=self.settings.relay.lease_s)
        return outbox.claim(conn, worker=self.worker, now=now, until=until, limit=limit)

    def _drop_records_held_elsewhere(self, claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep one record in flight in one relay only.

        Rows are claimed one by one (``SKIP LOCKED``), so two relays can claim different rows of one record.
        After its claim has committed, a relay gives back every record of which another relay holds a live
        claim. Each relay checks after its own commit, so of two overlapping claims at least the later
        check sees the other: at most one relay goes on with the record (both may give it back, and the
        record waits for the next step).
        """
        now = _now()
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

    # ------------------------------------------------------------------------------------------ work
    def _work(self, max_steps: int | None) -> Iterator[_Send | _End | object]:
        """The pass's work, produced lazily for :meth:`_dispatch`: batches to send (:class:`_Send`), the end of a
        group (:class:`_End`, its remaining outcomes written once its batches are through) and :data:`_BARRIER`
        (nothing more is produced until everything in flight has been handled and written).

        Each window of ``claim_size`` rows is claimed when the dispatcher asks for more work, while the last
        window's calls are still in flight. Its rows are folded per record and grouped by (priority, kind), in
        order. What must not overlap waits behind a barrier:

        * a group of another priority or kind than the groups still open: what it refers to (a lower priority)
          must be linked before it is planned, endings after what hangs on them;
        * a window holding a newer row of a record still in flight: its write is planned from the outcome of the
          one in flight (its link, its version), never beside it;
        * an empty claim while work is open: that work may put rows back in the queue (a link then the push,
          a correction's second step, a new version), which the pass takes too.
        """
        steps = 0
        rounds = 0
        last_group: tuple[int, str] | None = None
        while max_steps is None or steps < max_steps:
            self._analyze_as_links_grow()
            with self.engine.begin() as conn:
                claimed = self.claim(conn, self.settings.relay.claim_size)
            if claimed:
                steps += 1
                claimed = self._drop_records_held_elsewhere(claimed)
            if not claimed:
                if self._open:
                    yield _BARRIER
                    continue
                yield _BARRIER  # every write of the pass committed: its waits are written, and what they wait for
                if self.stats.waiting and rounds < WAIT_ROUNDS:
                    rounds += 1
                    self._take_waits_again()
                    continue
                return
            self._unsettled.update(r["id"] for r in claimed)
            if any((r["entity"], r["local_id"]) in self._open for r in claimed):
                yield _BARRIER
            for group in self._groups(claimed):
                key = (group.priority, group.kind)
                if self._open and key != last_group:
                    yield _BARRIER
                last_group = key
                self._open.update((group.kind, it.local_id) for it in group.items)
                yield from self._process(group)

    def _take_waits_again(self) -> None:
        """Make the rows this pass deferred to wait for its own work (:data:`IN_PASS_WAITS`) available now: what
        they waited for is written. They no longer count as deferred; if they must wait again, they say so."""
        waiting, self.stats.waiting = self.stats.waiting, []
        with self.engine.begin() as conn:
            outbox.make_available(conn, [rid for _, ids in waiting for rid in ids], _now())
        for kind, _ in waiting:
            self.stats.deferred[kind] -= 1
        self.stats.deferred = +self.stats.deferred  # drop the zeros

    def _groups(self, claimed: list[dict[str, Any]]) -> list[_Group]:
        """Fold claimed rows into one :class:`_Item` per record, grouped by priority then kind, in order."""
        by_priority: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in claimed:
            by_priority[r["priority"]].append(r)
        groups: list[_Group] = []
        for priority in sorted(by_priority):
            by_record: dict[tuple[str, int], _Item] = {}
            for r in by_priority[priority]:
                key = (r["entity"], r["local_id"])
                item = by_record.get(key)
                if item is None:
                    item = by_record[key] = _Item(r["entity"], r["local_id"], [r["id"]], r["attempts"])
                else:
                    item.row_ids.append(r["id"])
                    item.attempts = max(item.attempts, r["attempts"])
                if r.get("last_code") and r["last_code"] not in LOCAL_WAIT_CODES:
                    item.uncertain = True
                if r.get("done_at") is not None:
                    item.last_verdict = max(item.last_verdict, str(r["done_at"]))
                created = r.get("created_at")
                if isinstance(created, str):
                    created = dt.datetime.fromisoformat(created)
                if created is not None and (item.first_queued is None or created < item.first_queued):
                    item.first_queued = created
            by_kind: dict[str, list[_Item]] = defaultdict(list)
            for item in by_record.values():
                by_kind[item.kind].append(item)
            for kind, items in by_kind.items():
                groups.append(_Group(kind, priority, items, _Outcomes(kind, self.settings.hash_key)))
        return groups

    # ------------------------------------------------------------------------------------------ load
    def _load_group(self, group: _Group) -> None:
        """Read what concerns a whole group, in one query each over its records: the fields held by open
        conflicts, and which records have older failed or blocked rows.

        While the group's rows are claimed the inbound poller leaves its records alone, so no conflict opens on
        them meanwhile.
        """
        kind = group.kind
        ids = sorted(it.local_id for it in group.items)
        with self.engine.connect() as conn:
            held = links.open_conflict_fields(conn, kind, ids)
            failed_before = outbox.failed_or_blocked(conn, kind, ids)
        for it in group.items:
            it.had_failed = it.local_id in failed_before
            it.held = frozenset(held.get(it.local_id, ()))

    def _load(self, conn: Connection, kind: str, items: list[_Item]) -> dict[tuple[str, int], str]:
        """Read the live rows and links of ``items`` and the links of what they refer to."""
        table = Base.metadata.tables[TABLES[kind]]
        ids = [it.local_id for it in items]
        rows: dict[int, dict[str, Any]] = {}
        linked: dict[int, dict[str, Any]] = {}
        unreadable: dict[int, str] = {}
        for chunk in _chunks(ids, _CHUNK):
            try:
                rows.update((r["id"], r) for r in _dicts(conn.execute(select(table).where(
                    _in(conn, table.c.id, chunk)))))
            except (ValueError, TypeError) as exc:
                # a value the column's type cannot hold (e.g. '1990/01/01' in a date column written by another
                # program): read the chunk row by row so that only the bad rows fail
                log.warning("unreadable local rows; reading one by one", kind=kind, error=mask_text(str(exc)))
                for lid in chunk:
                    try:
                        r = conn.execute(select(table).where(table.c.id == lid)).mappings().one_or_none()
                    except (ValueError, TypeError) as row_exc:
                        unreadable[lid] = _unreadable_reason(conn, table, lid, row_exc)
                        continue
                    if r is not None:
                        rows[r["id"]] = dict(r)
            linked.update(links.links_of(conn, kind, chunk))
        reused = reused_keys(conn, kind, ids)
        for it in items:
            it.row = rows.get(it.local_id)
            it.link = linked.get(it.local_id)
            it.unreadable = unreadable.get(it.local_id)
            it.reuse_ids = reused.get(it.local_id, ())
        # references
        wanted: dict[str, set[int]] = defaultdict(set)
        for it in items:
            if it.row is None:
                continue
            for col, ref_kind in REFERENCES[kind].items():
                if it.row.get(col) is not None:
                    wanted[ref_kind].add(it.row[col])
        # the links of what they refer to, all kinds in one query where the keys fit (one round trip, not one per
        # kind: a service record refers to a volunteer and an activity)
        refs = links.registry_ids_of(conn, wanted)
        # a referenced key used again for another record: its link is the old record's; what refers to the key
        # waits for the new record (never a reference to the old one)
        linked_refs: dict[str, list[int]] = defaultdict(list)
        for ref_kind, lid in refs:
            linked_refs[ref_kind].append(lid)
        for ref_kind, ref_ids in linked_refs.items():
            for lid in reused_keys(conn, ref_kind, ref_ids):
                refs.pop((ref_kind, lid), None)
        return refs

    def _parent_states(self, conn: Connection, missing: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """For unlinked referenced records: ``waiting`` if rows of theirs are still to be sent (pending, deferred
        or claimed), ``discarded`` when an operator holds them (:mod:`regsync.db.holds`), else ``failed`` —
        refused, blocked, or never queued — so that what refers to them is blocked (``PARENT_DISCARDED``,
        ``PARENT_FAILED``) instead of waiting for ever."""
        waiting = outbox.waiting(conn, missing)
        held = held_keys(conn, [key for key in missing if key not in waiting])
        return {key: "waiting" if key in waiting else "discarded" if key in held else "failed" for key in missing}

    # ------------------------------------------------------------------------------------------ plan
    def _process(self, group: _Group) -> Iterator[_Send | _End]:
        """Plan a group and yield its batches of up to ``batch_size`` operations, then its :class:`_End`.

        The group is read from the store and planned one chunk of ``batch_size`` records at a time, just before
        its operations are needed, so that reading and planning overlap the registry's work on the batches in
        flight.
        """
        outcomes = group.outcomes
        size = self.settings.relay.batch_size
        batch: list[_Item] = []
        self._load_group(group)
        for chunk in _chunks(sorted(group.items, key=lambda it: it.local_id), size):
            planned, parent_state, primaries = self._prepare(group, list(chunk))
            for it, plan in planned:
                if plan.get("pair_waits"):
                    outcomes.defer(it, "PRIMARY_PENDING", "another local membership of the same person in the same "
                                   "org is sent first", seconds=1.0, count_attempt=False)
                elif "lacking" in plan:
                    failed = [p for p in plan["lacking"] if parent_state.get(p) in ("failed", "discarded")]
                    if failed:
                        outcomes.blocked(it, failed[0], discarded=parent_state[failed[0]] == "discarded")
                    else:
                        outcomes.defer(it, "PARENT_PENDING", "a record it refers to is not in the registry yet",
                                       seconds=2.0, count_attempt=False)
                else:
                    try:
                        self._plan(it, plan["desired"], primaries, outcomes)
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        it.op = None
                        outcomes.fail(it, "LOCAL_DATA_INVALID", f"the local row cannot be sent: {exc}")
                    if it.op is not None:
                        batch.append(it)
                if len(batch) >= size:
                    yield from self._ready(group, batch)
                    batch = []
        if batch:
            yield from self._ready(group, batch)
        # The later rows of a person wait until their primary is linked, which may happen in this very pass:
        # they are written after the group's calls (and those of the groups before it).
        yield _End(group)

    def _ready(self, group: _Group, batch: list[_Item]) -> Iterator[_Send]:
        self._find_created(group.kind, batch, group.outcomes)
        ready = [x for x in batch if x.op is not None]
        if ready:
            self._note_creates(group.kind, ready)
            yield _Send(group, ready)

    def _history(self, conn: Connection, kind: str, client_refs: Sequence[str]) -> dict[str, dt.datetime | None]:
        """This store's sends of creates (:class:`~regsync.db.models.CreateSent`): ``clientRef`` → first send
        (naive UTC; ``None`` when declared by an operator or backfilled from a link) for those of
        ``client_refs`` it has sent before, leaving out those whose record was found to be another store's
        (``how = 'other_store'``)."""
        return links.sent_creates(conn, kind, client_refs)

    def _note_creates(self, kind: str, items: list[_Item]) -> None:
        """Record, durably and before the call leaves, that this store sends a create under each ``clientRef`` of
        ``items`` (issue 12, item 4: only this store's history makes a record found under one of its
        ``clientRef`` its own), and tell each item whether an earlier attempt was sent (``sent_here``,
        ``first_sent_at``). One read and one insert per batch, committed with the default synchronous commit (a
        crash that lost the row would make this store's own record look another store's)."""
        # every operation that makes a record under a clientRef (a create; a one-step correction's new record)
        creates = [(it, it.op.client_ref) for it in items if it.op is not None and it.op.client_ref]
        if not creates:
            return
        now = _now()
        with self.engine.begin() as conn:
            known = self._history(conn, kind, [ref for _, ref in creates])
            fresh: dict[str, dict[str, Any]] = {}
            for it, ref in creates:
                it.sent_here, it.first_sent_at = ref in known, known.get(ref)
                if ref not in known:
                    fresh[ref] = {"entity": kind, "client_ref": ref, "local_id": it.local_id, "first_sent_at": now,
                                  "how": "sent"}
            if fresh:
                links.note_creates(conn, list(fresh.values()))

    def _own_create(self, it: _Item, rec: dict[str, Any]) -> str | None:
        """Whether the registry's record ``rec``, found under this client's ``clientRef`` of ``it`` (or holding
        the natural key of ``it`` with a ``clientRef`` of this client), is this store's own earlier create.

        It is only when this store's history says it sent a create under that ``clientRef`` before (``it``'s
        ``sent_here``, set by :meth:`_note_creates` or :meth:`_find_created`) and the registry did not make the
        record before that first send (``createdAt``, registry-api.md §1, against ``first_sent_at`` with the
        client's clock offset and :data:`CLOCK_MARGIN_S`).

        Returns:
            ``None`` when it is this store's own; else why not, in words for operators.
        """
        return not_sent_here(it.sent_here, it.first_sent_at, rec, self.client)

    def _prepare(self, group: _Group, items: list[_Item]
                 ) -> tuple[list[tuple[_Item, dict[str, Any]]], dict[tuple[str, int], str], dict[int, int]]:
        """Read one chunk of a group and project its rows.

        Returns:
            ``(planned, parent_state, primaries)``: per item a plan (``{"desired": fields}``, ``{"lacking":
            [(kind, local_id)]}`` for references not linked yet, or with ``"pair_waits"``), the state of the
            referenced records that are not linked (:meth:`_parent_states`), and the later rows of a person with
            their primary (:meth:`_volunteer_primaries`).
        """
        kind, outcomes = group.kind, group.outcomes
        with self.engine.begin() as conn:
            refs = self._load(conn, kind, items)
            primaries = self._volunteer_primaries(conn, items) if kind == "volunteer" else {}
        missing: set[tuple[str, int]] = set()
        planned: list[tuple[_Item, dict[str, Any]]] = []
        for it in items:
            if it.reuse_ids and max(it.row_ids) < max(it.reuse_ids):
                planned.append((it, {"desired": None}))  # the key's old record: ended from its link (_plan)
                continue
            if it.unreadable is not None:
                outcomes.fail(it, "LOCAL_DATA_INVALID", it.unreadable)
                continue
            try:
                desired = project_local(kind, it.row, refs) if it.row is not None else None
                if desired is not None and it.row is not None:
                    check_required_text(kind, it.row, desired)  # empty once cleaned: fails here, never sent
            except NormalizationError as exc:
                outcomes.fail(it, exc.code, f"{kind} {it.local_id}: {exc}")
                continue
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                outcomes.fail(it, "LOCAL_DATA_INVALID", f"{kind} {it.local_id}: {exc}")
                continue
            if desired is not None and it.row is not None:  # desired is made from the row
                lacking = [(REFERENCES[kind][c], it.row[c]) for c in REFERENCES[kind]
                           if it.row.get(c) is not None and desired.get(c) is None]
                if lacking:
                    missing.update(lacking)
                    planned.append((it, {"lacking": lacking}))
                    continue
            planned.append((it, {"desired": desired}))
        self._fetch_held_values(kind, [it for it, plan in planned if it.held and plan.get("desired") is not None])
        if kind == "membership":
            # Two local memberships of one person in one org (the person registered twice on the platform) are
            # one registry membership (the pair is its key, registry-api.md §4.3; joining twice answers the
            # existing one). With batches in flight at once, the second could reach the registry first and set
            # its date: only the first of a pair is sent while its group is open (in this group or in a group
            # still in flight); the others follow once it is linked.
            for it, plan in planned:
                d = plan.get("desired")
                if d is None or it.link is not None:
                    continue
                pair = (d.get("org_id"), d.get("volunteer_id"))
                if pair in self._open_pairs:
                    plan["pair_waits"] = True
                else:
                    self._open_pairs.add(pair)
                    group.pairs.append(pair)
        parent_state = {}
        if missing:
            with self.engine.begin() as conn:
                parent_state = self._parent_states(conn, missing)
        return planned, parent_state, primaries

    def _fetch_held_values(self, kind: str, items: list[_Item]) -> None:
        """Read the registry's current values of the fields that open conflicts hold (design.md, "Conflict
        policy": ``manual`` holds a field while the record's other fields still sync). ``PUT`` replaces every
        mutable field (registry-api.md §5), so a held field is sent with the registry's own value; the link's
        base keeps only a keyed hash of personal fields, hence one ``/lookup`` per 500 such records (few: open
        conflicts wait for an operator)."""
        linked = [it for it in items if it.link is not None and not it.link["is_duplicate"]]
        if not linked:
            return
        by_rid = {it.link["registry_id"]: it for it in linked}  # type: ignore[index]
        for chunk in _chunks(sorted(by_rid), 500):
            for rec in self.client.lookup(kind, list(chunk)):
                it = by_rid.get(rec["id"])
                if it is not None:
                    current = project_registry(kind, rec)
                    it.held_values = {name: current.get(name) for name in it.held}

    def _find_created(self, kind: str, items: list[_Item], outcomes: _Outcomes) -> None:
        """Before creating again a record whose earlier attempt had no known outcome, look it up by its
        ``clientRef`` (registry-api.md §5.2: "finds what this client created when an answer was lost"): if the
        registry has it, link it instead of creating it. Within :attr:`idempotency_window_s` of the first attempt
        the create's own idempotency key replays the lost answer, so only older attempts are looked up (one
        ``GET`` each); ``DUPLICATE_CLIENT_REF`` still guards the rest."""
        horizon = _now() - dt.timedelta(seconds=self.idempotency_window_s)
        wanted = [it for it in items if it.uncertain and it.op is not None and it.op.op in ("create", "correct")
                  and it.op.client_ref and not (it.first_queued is not None and it.first_queued > horizon)]
        if not wanted:
            return
        with self.engine.connect() as conn:
            known = self._history(conn, kind, [it.op.client_ref for it in wanted])  # type: ignore[union-attr,misc]  # wanted: op and client_ref set
        for it in wanted:
            assert it.op is not None and it.op.client_ref is not None
            it.sent_here, it.first_sent_at = it.op.client_ref in known, known.get(it.op.client_ref)
            try:
                found = self.client.find_by_client_ref(kind, it.op.client_ref)
            except TransientError:
                continue  # the create's own key and clientRef still keep it single
            if found is not None and it.op.op == "correct":
                if found.get("corrects_id") == it.op.registry_id:  # this correction went through: link it
                    base = canonical(project_registry(kind, found), self.settings.hash_key)
                    revision = _revision_of(it.op.client_ref)
                    it.op = None
                    outcomes.link_existing(it, found["id"], int(found.get("version") or 1), base,
                                           how="found_by_client_ref", revision=revision)
                continue  # else sent: the registry's answer says what holds that clientRef
            if found is not None:
                base = canonical(project_registry(kind, found), self.settings.hash_key)
                refused = self._refuse_another_record(it, found, base, outcomes)
                it.op = None
                if not refused:
                    outcomes.link_existing(it, found["id"], int(found.get("version") or 1), base,
                                           how="found_by_client_ref")

    def _volunteer_primaries(self, conn: Connection, items: list[_Item]) -> dict[int, int]:
        """Keep ``id_number_norm`` current for ``items`` and return, for each of them that is the later row
        of a person registered twice, the local id of that person's primary (older) row."""
        fixes = []
        norms: dict[int, str] = {}
        for it in items:
            if it.row is None:
                continue
            norm = try_normalize_id_number(it.row["id_type"], it.row["id_number"])
            if norm is not None:
                norms[it.local_id] = f"{it.row['id_type']}:{norm}"
            if norm != it.row.get("id_number_norm"):
                fixes.append({"vid": it.local_id, "norm": norm})
                it.row["id_number_norm"] = norm
        if fixes:
            conn.execute(text("UPDATE volunteer SET id_number_norm = :norm WHERE id = :vid"), fixes)
        wanted = sorted({it.row["id_number_norm"] for it in items
                         if it.row is not None and it.row.get("id_number_norm")})
        primary_of: dict[int, int] = {}
        for chunk in _chunks(wanted, _CHUNK):
            rows = conn.execute(text(
                "SELECT id, id_type, id_number_norm, registered_at FROM volunteer WHERE id_number_norm IN :n")
                .bindparams(bindparam("n", expanding=True)), {"n": list(chunk)}).all()
            people: dict[tuple[str, str], list[tuple[Any, int]]] = defaultdict(list)
            for vid, id_type, norm, registered_at in rows:
                people[(id_type, norm)].append((registered_at, vid))
            for members in people.values():
                if len(members) > 1:
                    members.sort()
                    first = members[0][1]
                    for _, vid in members[1:]:
                        primary_of[vid] = first
        return primary_of

    def _plan(self, it: _Item, desired: dict[str, Any] | None, primaries: dict[int, int],
              outcomes: _Outcomes) -> None:
        """Decide the operation for one record from its live row and its link."""
        kind = it.kind
        key = self.settings.hash_key
        link = it.link
        base = json.loads(link["base"]) if link else None

        if it.reuse_ids and link is not None:
            # the key was deleted and used again for another record (design.md's mapping table): never folded
            if max(it.row_ids) < max(it.reuse_ids):
                # rows of the record the key held before: its ending only, from the link's base (a delete's)
                it.row = None
                if link["is_duplicate"] or link["how"] == REGISTRY_OWNED:
                    outcomes.unchanged(it)
                    return
                assert base is not None  # a link always carries its base
                self._plan_ending(it, base)
                if it.op is None:
                    outcomes.unchanged(it)
                return
            # the new record: created under the next clientRef revision, as if the key had no link; the old link
            # is retired (and the old record ended, if it is not) once the new one is linked (_Outcomes.write)
            it.retired, it.link, link, base = link, None, None, None
        elif it.reuse_ids:
            # used again while the key's earlier create was not settled (its answer lost, or not sent yet): that
            # record is found by its clientRef, if the registry has it, and retired like a link's; the rows older
            # than the reuse row are settled with the new record's (nothing of the old one is sent)
            if max(it.row_ids) < max(it.reuse_ids):
                outcomes.unchanged(it)
                return
            if kind != "membership" and not self._find_unlinked_old(it, outcomes):
                return
        elif (kind == "membership" and link is not None and desired is not None and base is not None
              and not link["is_duplicate"] and link["how"] != REGISTRY_OWNED
              and (desired["org_id"], desired["volunteer_id"]) != (base.get("org_id"), base.get("volunteer_id"))):
            # another pair is another registry membership (the pair is its key, registry-api.md §4.3): the new pair
            # joins and the old pair leaves (its link retired as a reused key's), never a join over the old id
            it.retired, it.link, link, base = link, None, None, None

        if kind == "volunteer" and it.local_id in primaries:
            outcomes.duplicate(it, primaries[it.local_id])
            return
        if link is not None and link["how"] == REGISTRY_OWNED:
            # entered on the portal or by another client (registry-api.md §1, ownership): the registry's, never
            # pushed; a platform edit of it is shown to operators rather than sent into a NOT_OWNER refusal
            if it.row is not None and desired is not None and canonical(desired, key) != base:
                outcomes.fail(it, "REGISTRY_OWNED", f"{kind} {it.local_id} is the registry's (entered on the "
                              "portal or by another client); the platform's change to it is not sent")
            else:
                outcomes.unchanged(it)
            return
        if kind == "volunteer" and it.row is not None and it.row.get("home_province") not in (
                None, self.settings.province):
            # transferred out (registry-api.md §4.2): another province manages the person now; writes would be
            # refused with NOT_OWNER, so nothing is pushed
            outcomes.unchanged(it)
            return

        if desired is None:  # the local row is gone
            if link is None or (link and link["is_duplicate"]):
                outcomes.unchanged(it)
                return
            assert base is not None  # a link always has its base snapshot (a JSON object)
            self._plan_ending(it, base)
            if it.op is None:
                outcomes.unchanged(it)
            return

        ended = ENDED.get(kind)

        if link is None:
            # A record ended before it was ever pushed is created, then ended on the next step, so that the
            # registry holds it as the platform does.
            if kind == "membership":
                fields_ = {"org_id": desired["org_id"], "volunteer_id": desired["volunteer_id"],
                           "joined_on": desired["joined_on"]}
                it.op = Operation("join", "membership", fields_, tag=it)
                it.desired_raw = dict(desired, left_on=None)  # made canonical only if the answer lacks the record
                return
            fields_ = dict(desired)
            if kind == "service_record":
                fields_.pop("status", None)
            elif ended and fields_.get("status") == ended:
                fields_["status"] = OPEN_STATUS[kind]
            self._create(it, fields_, revision=_new_revision(it))
            it.desired_raw = dict(desired, status=fields_.get("status", "ACCEPTED"))
            return

        if link["is_duplicate"]:
            outcomes.unchanged(it)
            return
        assert base is not None  # a link always has its base snapshot (a JSON object)
        compare_base = base
        if it.held and kind != "service_record":
            if it.held_values is None:
                # the registry's values could not be read: the held fields cannot be sent safely
                outcomes.defer(it, "CONFLICT_HELD", "fields held by open conflicts; the registry's values "
                               "could not be read", seconds=30.0, count_attempt=False)
                return
            desired = dict(desired, **it.held_values)
            held_canon = canonical(desired, key)
            compare_base = dict(base, **{name: held_canon[name] for name in it.held})
            it.held_base = {name: base[name] for name in it.held if name in base}
            self.stats.held[kind] += 1
        desired_canon = canonical(desired, key)
        if desired_canon == compare_base:
            outcomes.unchanged(it)
            return

        rid = link["registry_id"]
        version = link["registry_version"]
        if kind == "membership":
            if desired["left_on"] is not None and base.get("left_on") is None:
                it.op = Operation("leave", "membership", {"org_id": desired["org_id"],
                                                          "volunteer_id": desired["volunteer_id"],
                                                          "left_on": desired["left_on"]}, registry_id=rid, tag=it)
            elif desired["left_on"] is None:
                it.op = Operation("join", "membership", {"org_id": desired["org_id"],
                                                         "volunteer_id": desired["volunteer_id"],
                                                         "joined_on": desired["joined_on"]}, registry_id=rid, tag=it)
            else:
                outcomes.unchanged(it)
                return
        elif kind == "service_record":
            if base.get("status") == "REVOKED":
                if desired["status"] == "REVOKED":
                    outcomes.unchanged(it)
                    return
                fields_ = dict(desired)
                fields_.pop("status", None)
                self._create(it, fields_, revision=link["revision"])  # the corrected record
            elif desired["status"] == "REVOKED":
                reason = (it.row or {}).get("revoke_reason") or "revoked on the platform"
                it.op = Operation("revoke", "service_record", {"reason": reason}, registry_id=rid, tag=it)
                desired_canon = dict(base, status="REVOKED")
            else:
                # corrected on the platform: the registry's accepted record is replaced in one step (registry-api.md
                # §4.5, ``:correct``), never revoked unless its replacement is accepted
                fields_ = dict(desired)
                fields_.pop("status", None)
                self._correct(it, fields_, rid, revision=link["revision"] + 1)
        elif ended and desired.get("status") == ended and base.get("status") != ended and kind != "activity":
            it.op = Operation("delete", kind, {}, registry_id=rid, if_match=version, tag=it)
        else:
            it.op = Operation("update", kind, dict(desired), registry_id=rid, if_match=version, tag=it)
        if it.held_base:
            # the base keeps the held fields' last agreed values, so the conflict stays visible to the merge
            desired_canon = dict(desired_canon, **it.held_base)
        it.desired = desired_canon

    def _find_unlinked_old(self, it: _Item, outcomes: _Outcomes) -> bool:
        """For a key used again before its earlier record was linked: look that record up by its ``clientRef``
        (registry-api.md §5.2) and, when the registry has it, keep it as the link to retire once the new record is
        in (:meth:`_Outcomes._retire`: it is ended there if it is not). Returns False when the item was deferred
        (the registry could not be asked)."""
        kind = it.kind
        try:
            found = self.client.find_by_client_ref(kind, str(it.local_id))
        except TransientError as exc:
            outcomes.defer(it, exc.code or "UNAVAILABLE", f"the record this key held before could not be looked up: "
                           f"{exc}", seconds=self._backoff(it.attempts), count_attempt=False)
            return False
        if found is not None:
            ref = found.get("client_ref") or str(it.local_id)
            with self.engine.connect() as conn:
                known = self._history(conn, kind, [ref])
            why = not_sent_here(ref in known, known.get(ref), found, self.client)
            if why is not None:
                # another store's record under these credentials (issue 12, item 4): never ended from here; the
                # new record goes in under this clientRef and meets it as CLIENT_REF_TAKEN, for an operator
                log.error("a key used again names a registry record another store made under these credentials: "
                          "not ended", entity=kind, local_id=it.local_id, registry_id=found["id"], why=why,
                          alarm=True)
                return True
            base = canonical(project_registry(kind, found), self.settings.hash_key)
            it.retired = {"id": None, "entity": kind, "local_id": it.local_id, "registry_id": found["id"],
                          "registry_version": int(found.get("version") or 1), "base": dumps(base),
                          "is_duplicate": False, "revision": _revision_of(found.get("client_ref") or ""),
                          "how": "found_by_client_ref"}
        return True

    def _plan_ending(self, it: _Item, base: dict[str, Any]) -> None:
        """The operation for a local row that was deleted (design.md's table of local changes)."""
        link = it.link
        assert link is not None
        rid, version = link["registry_id"], link["registry_version"]
        kind = it.kind
        if kind in ("volunteer", "org"):
            if base.get("status") != ENDED[kind]:
                it.op = Operation("delete", kind, {}, registry_id=rid, if_match=version, tag=it)
                it.desired = dict(base, status=ENDED[kind])
        elif kind == "activity":
            if base.get("status") != "CANCELLED":
                fields_ = {k: base.get(k) for k in FIELDS["activity"]}
                fields_["status"] = "CANCELLED"
                for name in ("starts_at", "ends_at"):  # the base holds canonical text; the wire takes datetimes
                    value = fields_.get(name)
                    if isinstance(value, str):
                        fields_[name] = dt.datetime.fromisoformat(value)
                it.op = Operation("update", kind, fields_, registry_id=rid, if_match=version, tag=it)
                it.desired = dict(base, status="CANCELLED")
        elif kind == "membership":
            if base.get("left_on") is None:
                today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
                it.op = Operation("leave", kind, {"org_id": base["org_id"], "volunteer_id": base["volunteer_id"],
                                                  "left_on": today}, registry_id=rid, tag=it)
                it.desired = dict(base, left_on=today.isoformat())
        elif kind == "service_record":
            if base.get("status") != "REVOKED":
                it.op = Operation("revoke", kind, {"reason": "deleted on the platform"}, registry_id=rid, tag=it)
                it.desired = dict(base, status="REVOKED")

    def _create(self, it: _Item, fields_: dict[str, Any], revision: int) -> None:
        client_ref = str(it.local_id) if revision == 0 else f"{it.local_id}-r{revision}"
        # The key is kept across retries of the same write (same content, same outbox rows, no verdict since),
        # so a lost answer is replayed, never created twice; new content, a new outbox row (a local change) or a
        # refusal since the last attempt (an operator's retry) makes a new write with a new key
        # (registry-api.md §5.1: the registry keeps its refusals, so a retry after one needs a new key).
        body = orjson.dumps(fields_, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        generation = f"{max(it.row_ids)}:{it.last_verdict}"
        # this store's id first: another store's create of the same content is another write (issue 12, item 4)
        digest = hashlib.sha256(f"{self.store_id}:{it.kind}:{client_ref}:{generation}:".encode()
                                + body).hexdigest()[:40]
        it.op = Operation("create", it.kind, fields_, idempotency_key=f"rs-{digest}", client_ref=client_ref, tag=it)

    def _correct(self, it: _Item, fields_: dict[str, Any], registry_id: str, revision: int) -> None:
        """Plan the correction of a service record in one step (registry-api.md §4.5, ``:correct``; design.md's
        table of local changes): the registry revokes ``registry_id`` and accepts the corrected record under
        ``clientRef`` ``<local id>-r<revision>``, or changes nothing.

        Args:
            it: the record's work item.
            fields_: the corrected record's writable fields (Python names, references as registry ids).
            registry_id: the registry's ACCEPTED record that the link points at.
            revision: the correction number of the new record's ``clientRef`` (the link's revision + 1).

        The idempotency key is kept like a create's (:meth:`_create`), and names the record corrected too.
        """
        client_ref = f"{it.local_id}-r{revision}"
        body = orjson.dumps(fields_, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        generation = f"{max(it.row_ids)}:{it.last_verdict}"
        digest = hashlib.sha256(f"{self.store_id}:{it.kind}:{registry_id}:{client_ref}:{generation}:".encode()
                                + body).hexdigest()[:40]
        it.op = Operation("correct", it.kind, fields_, registry_id=registry_id, idempotency_key=f"rs-{digest}",
                          client_ref=client_ref, tag=it)

    # ------------------------------------------------------------------------------------------ send
    def _dispatch(self, work: Iterator[_Send | _End | object]) -> None:
        """Send the batches of ``work`` (:meth:`_work`), keeping up to ``concurrency`` calls in flight so that
        the registry works on some while this side claims, reads and plans the next and records the last.
        Results are handled and written in the order the work was produced; a group's end is written after its
        batches; at a barrier everything in flight is handled before more work is produced. A failed call stops
        new calls but never loses the answers of the calls already made.

        Raises:
            RelayHalted: the registry refused the credentials.
            RegistryError: the registry is unavailable (the unsent work is released by :meth:`run`).
        """
        inflight: deque[tuple[_Send | _End, Future[list[OperationResult]] | None]] = deque()
        calls = 0
        error: RegistryError | RelayHalted | None = None
        exhausted = stopped = barrier = False
        while True:
            # a group's end waits in the queue too: bound the queue, so that a run of groups with nothing to send
            # is written as it goes instead of claiming the whole backlog first
            while (error is None and not exhausted and not barrier and calls < self.concurrency
                   and len(inflight) < 2 * self.concurrency):
                if self._stop is not None and self._stop():
                    exhausted = stopped = True
                    break
                unit = next(work, None)
                if unit is None:
                    exhausted = True
                elif unit is _BARRIER:
                    barrier = True
                elif isinstance(unit, _End):
                    inflight.append((unit, None))
                else:
                    assert isinstance(unit, _Send)
                    inflight.append((unit, self._pool.submit(self.client.batch, [it.op for it in unit.items])))
                    calls += 1
            if not inflight:
                if barrier and error is None:
                    self._flush_writes()
                barrier = False
                if error is None and not exhausted:
                    continue
                break
            unit, future = inflight.popleft()
            if future is None:
                if error is None:
                    self._finish(unit.group)
                continue
            calls -= 1
            assert isinstance(unit, _Send)
            outcomes = unit.group.outcomes
            try:
                results = future.result()
            except RegistryError as exc:
                self._on_batch_error(unit.items, exc, outcomes)
                error = error or exc
                continue
            try:
                self._handle(unit.group.kind, unit.items, results, outcomes)
            except RelayHalted as exc:
                error = error or exc
                continue
            self._commit(outcomes)
        if stopped and error is None:
            raise _Stopped
        if isinstance(error, RelayHalted):
            raise error
        if error is not None:
            if isinstance(error, InvalidClient):
                log.error("registry refuses the credentials: relay halted", code=error.code, alarm=True)
                raise RelayHalted(f"the registry refuses this client's credentials: {error}") from error
            if getattr(error, "systemic", False):
                log.error("registry refuses this client as a whole: relay halted", code=error.code, alarm=True)
                raise RelayHalted(str(error)) from error
            raise error

    def _finish(self, group: _Group) -> None:
        """Write what is left of a group once its batches are through: the later rows of a person (linked to
        their primary, now linked) and the outcomes decided without a call. Its records leave the open set once
        that is committed (a newer row of one of them is then planned from what was written)."""
        outcomes = group.outcomes
        outcomes.dup_links, outcomes.dup_later = outcomes.dup_later, []

        def settled() -> None:
            self._open.difference_update((group.kind, it.local_id) for it in group.items)
            self._open_pairs.difference_update(group.pairs)
            self._unsettled.difference_update(i for it in group.items for i in it.row_ids)

        self._commit(outcomes, after=settled)

    def _on_batch_error(self, items: list[_Item], exc: RegistryError, outcomes: _Outcomes) -> None:
        """A whole call failed: defer its records without burning attempts (an outage is not theirs)."""
        if isinstance(exc, InvalidClient) or getattr(exc, "systemic", False):
            return  # released by the step; the relay halts
        if isinstance(exc, RateLimited | Maintenance):
            wait = float(exc.retry_after or 30.0)
            log.warning("registry asks to wait longer than the cap: work deferred", seconds=wait, code=exc.code)
        elif isinstance(exc, TransientError):
            wait = None
            log.warning("registry unavailable: work deferred", error=mask_text(str(exc)))
        else:
            wait = None
            log.error("batch refused as a whole: work deferred", code=exc.code, error=mask_text(str(exc)))
        for it in items:
            outcomes.defer(it, exc.code or type(exc).__name__, str(exc),
                           seconds=wait if wait is not None else self._backoff(it.attempts), count_attempt=False)
        self._commit(outcomes)

    def _handle(self, kind: str, items: list[_Item], results: list[OperationResult], outcomes: _Outcomes) -> None:
        """Handle each operation's result on its own (design.md, flow 1)."""
        self.stats.batches += 1
        duplicates: list[tuple[_Item, OperationResult]] = []
        merges: list[tuple[_Item, dict[str, Any]]] = []
        corrections: list[tuple[_Item, OperationResult]] = []
        if len(results) != len(items):
            raise RegistryError(f"the registry answered {len(results)} results for {len(items)} operations")
        refusals = Counter(r.code for r in results if about_the_client(r))
        if refusals:
            code, n = refusals.most_common(1)[0]
            if n * 2 > len(results):
                for it in items:
                    outcomes.defer(it, code, "refused as a whole by the registry", seconds=60.0, count_attempt=False)
                self._commit(outcomes)
                log.error("registry refuses most of a batch with one code that is not about the data: relay halted",
                          code=code, refused=n, batch=len(results), alarm=True)
                raise RelayHalted(f"the registry answered {n} of {len(results)} operations with {code}")
        for it, res in zip(items, results, strict=True):
            verdict = classify(res, it.op)
            if verdict is Verdict.ACCEPTED:
                base = (canonical(project_registry(kind, res.record), self.settings.hash_key)
                        if res.record else None)
                outcomes.success(it, res, base)
            elif verdict is Verdict.CORRECTION_REFUSED:
                corrections.append((it, res))
            elif verdict is Verdict.DUPLICATE:
                duplicates.append((it, res))
            elif verdict is Verdict.VERSION_MOVED:
                assert res.record is not None  # VERSION_MOVED carries the registry's current record
                current = canonical(project_registry(kind, res.record), self.settings.hash_key)
                base = json.loads(it.link["base"]) if it.link else None
                if it.desired is not None and not changed_fields(current, it.desired):
                    # the registry already holds what was sent: an earlier attempt went through and its
                    # answer was lost
                    outcomes.success(it, OperationResult(200, "OK", res.record.get("id"),
                                                         int(res.record.get("version") or 1), res.record), current)
                elif base is not None and not changed_fields(current, base):
                    outcomes.refresh_version(it, int(res.record.get("version") or res.version or 0))
                elif base is not None and it.link is not None and kind != "service_record":
                    merges.append((it, res.record))
                else:
                    moved = changed_fields(current, base or {})
                    outcomes.fail(it, "VERSION_MISMATCH",
                                  f"the registry changed synced fields since the last agreed state "
                                  f"({', '.join(moved)})")
            elif verdict is Verdict.RETRY_LATER:
                outcomes.defer(it, res.code, res.message, seconds=self._backoff(it.attempts), count_attempt=True,
                               max_attempts=self.settings.relay.max_attempts)
            elif it.op is not None and it.op.op == "correct":
                outcomes.fail(it, operator_code(res), f"the registry refused the correction, and its record "
                              f"{it.op.registry_id} stays ACCEPTED as it was: {refusal_text(res)}")
            else:
                outcomes.fail(it, operator_code(res), refusal_text(res))
        if corrections:
            self._settle_corrections(kind, corrections, outcomes)
        met = self._other_store
        if duplicates:
            self._link_existing(kind, duplicates, outcomes)
        if merges:
            self._merge_moved(kind, merges, outcomes)
        if self.progress:
            self.progress(kind, len(items))
        if self._other_store > met:
            try:
                self._halt_on_other_stores()
            except RelayHalted:
                self._commit(outcomes)  # this batch's outcomes are recorded before the relay stops
                raise

    def _merge_moved(self, kind: str, merges: list[tuple[_Item, dict[str, Any]]], outcomes: _Outcomes) -> None:
        """``VERSION_MISMATCH`` with synced fields moved in the registry (issue 4: "the relay's
        ``VERSION_MISMATCH`` goes through the same merge: stale content is never re-sent under a fresher
        ``If-Match``"). The registry's current record (``data.current``, registry-api.md §5) is merged three ways
        against the link's base exactly as the inbound poller merges a change (registry-winning fields written
        locally without echo, ``manual`` fields held as conflicts, the link moved to the current version and
        base), in its own transaction; then the record's rows go back to the queue, so that the next step plans
        the write from the merged row and the new version. A record that keeps meeting a moving registry is
        retried with backoff and fails after ``relay.max_attempts``."""
        from regsync.flows.inbound import InboundStats, Poller  # the poller imports this module

        if self._merger is None:
            self._merger = Poller(self.engine, self.client, self.settings, record_run=False)
        self._merger.stats = InboundStats()
        records = [rec for _, rec in merges]
        with self.engine.begin() as conn, suppress_outbox(conn):
            self._merger._apply_kind(conn, kind, records, None)
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

    def _link_existing(self, kind: str, duplicates: list[tuple[_Item, OperationResult]],
                       outcomes: _Outcomes) -> None:
        """Link records the registry already holds, with the registry's record as the base."""
        ids = sorted({res.registry_id for _, res in duplicates if res.registry_id})
        records = {r["id"]: r for r in self.client.lookup(kind, ids)}
        for it, res in duplicates:
            rec = records.get(res.registry_id)
            if rec is None:
                outcomes.fail(it, "NOT_FOUND", f"{res.code}: existing record {res.registry_id} not readable")
                continue
            base = canonical(project_registry(kind, rec), self.settings.hash_key)
            if res.code == "DUPLICATE_CLIENT_REF" and self._refuse_another_record(it, rec, base, outcomes):
                continue
            if res.code != "DUPLICATE_CLIENT_REF" and self._refuse_another_stores(kind, it, rec, outcomes):
                continue
            revision = None
            if kind == "service_record" and base.get("status") == "REVOKED" and it.op is not None \
                    and it.op.client_ref:
                # this client's record under that clientRef is revoked (by an earlier correction, or by someone
                # else): the platform's record goes in as a corrected one under the next clientRef, never the
                # same one again (it would answer DUPLICATE_CLIENT_REF for ever)
                revision = _revision_of(it.op.client_ref) + 1
            outcomes.link_existing(it, rec["id"], int(rec.get("version") or 1), base, how=res.code.lower(),
                                   revision=revision)

    def _settle_corrections(self, kind: str, refused: list[tuple[_Item, OperationResult]],
                            outcomes: _Outcomes) -> None:
        """A ``:correct`` answered ``INVALID_STATE`` (the record corrected is no longer ACCEPTED) or
        ``DUPLICATE_CLIENT_REF`` (the new record's ``clientRef`` is taken): look up what holds that ``clientRef``.

        * this very correction (its ``corrects_id`` is the record corrected: an earlier attempt went through and
          its answer was lost) → linked to it, and the record goes back to the queue (brought to the local state
          on the next step, if it moved since);
        * another record of this client's (an older correction under that number, e.g. of a store that adopted
          or restored its links) → the link keeps the registry's record and takes the next revision, and the
          record goes back to the queue;
        * nothing → the row fails with the registry's code for an operator; the link still names the registry's
          record, which holds the hours it held.
        """
        for it, res in refused:
            op = it.op
            assert op is not None and op.client_ref and it.link is not None
            try:
                found = self.client.find_by_client_ref(kind, op.client_ref)
            except TransientError as exc:
                outcomes.defer(it, res.code, f"{res.code}; the record under clientRef {op.client_ref} could not be "
                               f"read: {exc}", seconds=self._backoff(it.attempts), count_attempt=True,
                               max_attempts=self.settings.relay.max_attempts)
                continue
            revision = _revision_of(op.client_ref)
            if found is not None and found.get("corrects_id") == op.registry_id:
                base = canonical(project_registry(kind, found), self.settings.hash_key)
                outcomes.link_existing(it, found["id"], int(found.get("version") or 1), base,
                                       how="found_by_client_ref", revision=revision)
            elif found is not None:
                outcomes.next_revision(it, revision)
            else:
                outcomes.fail(it, res.code, f"the registry refused the correction ({res.code}: {res.message}); its "
                              f"record {op.registry_id} is not ACCEPTED any more (revoked in the registry?), and "
                              f"no record holds clientRef {op.client_ref}")

    def _refuse_another_record(self, it: _Item, rec: dict[str, Any], base: dict[str, Any],
                               outcomes: _Outcomes) -> bool:
        """Fail ``it`` (code :data:`OTHER_STORE_CODE`) and return True when the registry record ``rec`` found under
        its ``clientRef`` (``DUPLICATE_CLIENT_REF``, ``GET ?clientRef=``, registry-api.md §5.1–§5.2) is not this
        store's own earlier create (:meth:`_own_create`): it is then neither linked nor written over. A record
        this store did send is linked and brought to the local state, whatever changed locally since (the
        recovery from a lost answer).

        A ``clientRef`` is the local id (design.md, flow 1), so this is what a second or rebuilt local store under
        the same client credentials meets; the operator's way out is in deploy/RUNBOOK.md ("A record fails with
        CLIENT_REF_TAKEN")."""
        why = self._own_create(it, rec)
        if why is None:
            return False
        desired = it.desired
        if desired is None:
            raw = it.desired_raw or (it.op.fields if it.op is not None else None) or {}
            desired = canonical(identity_of(it.kind, raw), self.settings.hash_key)
        differ = identity_mismatch(it.kind, desired, base)
        what = f"another {it.kind} ({', '.join(differ)} differ)" if differ else f"the same {it.kind}"
        self._refuse(it, rec, outcomes,
                     f"the registry's record {rec['id']} under this record's clientRef is {what}, made under this "
                     f"client's credentials by another store: {why}. Not linked, nothing written over it",
                     differ=differ, client_ref=rec.get("client_ref") or (it.op.client_ref if it.op else None))
        return True

    def _refuse_another_stores(self, kind: str, it: _Item, rec: dict[str, Any], outcomes: _Outcomes) -> bool:
        """Fail ``it`` and return True when the registry record ``rec`` that holds its natural key
        (``DUPLICATE_ID_NUMBER``, ``DUPLICATE_USCC``) was created by this client (its ``ownerClientId``, with a
        ``clientRef``) under a ``clientRef`` this store never sent: another store under the same credentials
        made it, and linking it would push this store's contact and descriptive fields over it (issue 12, item
        4). A record of the portal or of another client is linked as before (nothing pushed over it)."""
        own_id = self.settings.registry.client_id
        ref = rec.get("client_ref")
        if not own_id or not ref or rec.get("owner_client_id") != own_id:
            return False
        with self.engine.connect() as conn:
            known = self._history(conn, kind, [ref])
        why = not_sent_here(ref in known, known.get(ref), rec, self.client)
        if why is None:
            return False  # this store's own record, under another local row's clientRef
        self._refuse(it, rec, outcomes,
                     f"the registry's record {rec['id']} with this {kind}'s natural key was made under this client's "
                     f"credentials by another store (clientRef {ref}: {why}). Not linked, nothing written over it",
                     differ=[])
        return True

    def _refuse(self, it: _Item, rec: dict[str, Any], outcomes: _Outcomes, message: str, *,
                differ: list[str], client_ref: str | None = None) -> None:
        """Fail ``it`` as another store's record, with an alarm; count it toward
        ``settings.relay.other_store_limit`` (:meth:`_halt_on_other_stores`). ``client_ref``: this store's
        ``clientRef`` under which ``rec`` was found, whose send is then no longer counted as this store's create
        (``create_sent.how = 'other_store'``)."""
        outcomes.fail(it, OTHER_STORE_CODE, message)
        self._other_store += 1
        if client_ref is not None:
            # the send under this clientRef no longer counts as this store's create: the record under it is
            # another store's (the pull and later retries read it so), until an operator says otherwise
            with self.engine.begin() as conn:
                links.mark_other_store(conn, it.kind, client_ref)
        log.error("a registry record made under this client's credentials by another store: not linked",
                  kind=it.kind, local_id=it.local_id, registry_id=rec["id"], client_ref=rec.get("client_ref"),
                  differ=differ, alarm=True)

    def _halt_on_other_stores(self) -> None:
        """Halt the relay (:class:`RelayHalted`, an alarm) once ``settings.relay.other_store_limit`` records are
        failed as another store's (:data:`OTHER_STORE_CODE`), counting those failed before this pass: a second
        store is pushing under the province's credentials, and each further create would meet another."""
        limit = self.settings.relay.other_store_limit
        if limit and self._other_store >= limit:
            message = (f"{self._other_store} records met registry records made under this client's credentials by "
                       f"another store ({OTHER_STORE_CODE}, limit {limit}, REGSYNC_OTHER_STORE_LIMIT): relay halted. "
                       "A second store may be pushing under these credentials; see deploy/RUNBOOK.md")
            log.error("relay halted: registry records of another store under this client's credentials",
                      records=self._other_store, limit=limit, alarm=True)
            raise RelayHalted(message)

    def _backoff(self, attempts: int) -> float:
        """Full-jitter exponential backoff between passes, seconds (cap 300)."""
        return self._rng.uniform(0, min(300.0, 2.0 * 2 ** min(attempts, 8)))

    # ------------------------------------------------------------------------------------------ commit
    def _commit(self, outcomes: _Outcomes, after: Callable[[], None] | None = None) -> None:
        """Hand the outcomes collected so far to the writer (written in order, in one transaction, on the
        writer's thread) and clear them; ``after`` runs on the writer once they are committed."""
        if outcomes.empty() and after is None:
            return
        for it in list(outcomes.requeue):
            # a record sent back to the queue after a write (linked to an existing record, a correction's
            # second step, a new version) comes back at once; one that keeps coming back within one pass is
            # stopped rather than written for ever; an operator's retry starts it afresh
            key = (outcomes.kind, it.local_id)
            self._steps_of[key] += 1
            if self._steps_of[key] > LOOP_LIMIT:
                outcomes.requeue.remove(it)
                log.error("a record keeps coming back within one pass: failed as SYNC_LOOP", kind=outcomes.kind,
                          local_id=it.local_id, times=LOOP_LIMIT, alarm=True)
                outcomes.fail(it, "SYNC_LOOP", f"{outcomes.kind} {it.local_id} came back {LOOP_LIMIT} times in one "
                              "pass without settling (see the log); retry it after checking its registry record")
        payload = outcomes.detach()
        self._links_written += len(payload.links_new)
        self._writes.append(self._writer.submit(self._write, payload, after))
        # a failed write stops the pass at once; and the writer is kept at most a few writes behind
        while self._writes and (self._writes[0].done() or len(self._writes) > self.writes_behind):
            self._writes.popleft().result()

    #: Writes the writer may be behind the calls before the relay waits for it.
    writes_behind: int = 4

    def _write(self, payload: _Outcomes, after: Callable[[], None] | None) -> None:
        with self.engine.begin() as conn:
            # Every write the relay records can be found again if a server crash loses this commit (the same
            # idempotency key replays it, the clientRef links it), so it need not wait for the WAL flush.
            outbox.asynchronous_commit(conn)
            payload.write(conn, self.worker, self.stats)
        if after is not None:
            after()

    def _flush_writes(self, *, raising: bool = True) -> None:
        """Wait until every handed-over write is committed. Raises the first write's error (unless ``raising``
        is false: after a failure, only waits)."""
        error: BaseException | None = None
        while self._writes:
            try:
                self._writes.popleft().result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error = error or exc
        if error is not None and raising:
            raise error


def _unreadable_reason(conn: Connection, table: Any, local_id: int, exc: Exception) -> str:
    """Name the columns of a local row whose stored values their types cannot hold."""
    bad = []
    raw = conn.execute(select(*[text(f'"{c.name}"') for c in table.columns]).select_from(table)
                       .where(table.c.id == local_id)).one()
    for col, value in zip(table.columns, raw, strict=True):
        try:
            processor = col.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
            if processor is not None and value is not None:
                processor(value)
        except (ValueError, TypeError):
            bad.append(f"{col.name}={mask_text(repr(value))[:40]}")
    return (f"{TABLE_ENTITY[table.name]} {local_id}: values its columns cannot hold: " + ", ".join(bad)
            if bad else f"{TABLE_ENTITY[table.name]} {local_id}: unreadable ({mask_text(str(exc))[:200]})")


def not_sent_here(sent: bool, first_sent_at: dt.datetime | None, rec: dict[str, Any], client: Any) -> str | None:
    """Why the registry's record ``rec`` under a ``clientRef`` of this client is not this store's own create, or
    ``None`` when it is (issue 12, item 4).

    Args:
        sent: this store's history (:class:`~regsync.db.models.CreateSent`) holds a create sent under that
            ``clientRef`` before.
        first_sent_at: when it was first sent (naive UTC, local clock), ``None`` for no age check (an operator's
            declaration, a backfill from a link).
        rec: the registry's record (decoded: ``created_at`` naive UTC, registry-api.md §1).
        client: the registry client (its ``clock_offset_s``, registry − local clock, when it has one).

    Returns:
        ``None`` when this store sent a create under it and the registry did not make the record before that first
        send (allowing :data:`CLOCK_MARGIN_S` and the clock offset); else the reason, for operators.
    """
    if not sent:
        return "this store never sent a create under that clientRef"
    created = rec.get("created_at")
    if first_sent_at is None or not isinstance(created, dt.datetime):
        return None
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    offset = float(getattr(client, "clock_offset_s", 0.0) or 0.0)
    if created < first_sent_at + dt.timedelta(seconds=offset - CLOCK_MARGIN_S):
        return (f"the registry made it at {created.isoformat(timespec='seconds')} UTC, before this store first sent "
                f"a create under that clientRef ({first_sent_at.isoformat(timespec='seconds')} UTC)")
    return None


def _new_revision(it: _Item) -> int:
    """The ``clientRef`` revision of a record created for an item with no link: the next after its key's old
    record when the key was used again (design.md's mapping table), else 0."""
    return it.retired["revision"] + 1 if it.retired is not None else 0


class _Outcomes:
    """Collected results of a batch, written to the store in one transaction."""

    def __init__(self, kind: str, hash_key: str) -> None:
        self.kind = kind
        self.hash_key = hash_key
        #: later rows of a person, written once their primary's batch is through (not by :meth:`clear`)
        self.dup_later: list[tuple[_Item, int]] = []
        self.clear()

    def clear(self) -> None:
        self.links_new: list[dict[str, Any]] = []
        self.links_upd: list[dict[str, Any]] = []
        self.sent: list[_Item] = []
        self.requeue: list[_Item] = []
        self.failures: list[tuple[_Item, str, str, str, tuple[str, int] | None]] = []
        self.deferrals: list[tuple[_Item, str, str, float, bool]] = []
        self.dup_links: list[tuple[_Item, int]] = []
        self.retiring: list[_Item] = []  # items whose new record is linked: their key's old link is retired

    def detach(self) -> _Outcomes:
        """The outcomes collected so far, as an object of their own (for the writer); this one is cleared."""
        taken = _Outcomes(self.kind, self.hash_key)
        taken.dup_later = []
        (taken.links_new, taken.links_upd, taken.sent, taken.requeue, taken.failures, taken.deferrals,
         taken.dup_links, taken.retiring) = (self.links_new, self.links_upd, self.sent, self.requeue, self.failures,
                                             self.deferrals, self.dup_links, self.retiring)
        self.clear()
        return taken

    def empty(self) -> bool:
        return not (self.links_new or self.links_upd or self.sent or self.requeue or self.failures
                    or self.deferrals or self.dup_links or self.retiring)

    # decisions
    def unchanged(self, it: _Item) -> None:
        it.op = None
        self.sent.append(it)
        it.desired = None
        it.attempts = -1  # marker: nothing sent

    def success(self, it: _Item, res: OperationResult, base: dict[str, Any] | None) -> None:
        """Record an accepted write. ``base`` is the registry's record in canonical form, when the answer
        carried it (else the state that was sent is taken as agreed)."""
        version = res.version or (res.record or {}).get("version") or 1
        op = it.op
        assert op is not None
        if base is None:
            base = it.desired if it.desired is not None else canonical(it.desired_raw or {}, self.hash_key)
        if it.held_base:
            base = dict(base, **it.held_base)
        snapshot = dumps(base)
        if it.link is None or op.op in ("create", "correct"):
            # a correction (registry-api.md §4.5) moves the link to the new record, under the new clientRef's revision
            revision = _revision_of(op.client_ref or "") if op.op == "correct" else (
                it.link["revision"] if it.link else _new_revision(it))
            entry = {"entity": it.kind, "local_id": it.local_id,
                     "registry_id": res.registry_id or (res.record or {}).get("id"),
                     "registry_version": int(version), "base": snapshot,
                     "revision": revision, "how": "created"}
            (self.links_upd if it.link else self.links_new).append(entry)
            if it.retired is not None:
                self.retiring.append(it)
        else:
            correction = op.op == "revoke" and it.row is not None and it.row["status"] == "ACCEPTED"
            self.links_upd.append({"entity": it.kind, "local_id": it.local_id,
                                   "registry_id": it.link["registry_id"], "registry_version": int(version),
                                   "base": snapshot, "revision": it.link["revision"] + (1 if correction else 0),
                                   "how": it.link["how"]})
        it.attempts = -2  # marker: pushed
        more = (op.op in ("create", "join") and _ended_locally(it.kind, it.row)) or (
            op.op == "revoke" and it.row is not None and it.row["status"] == "ACCEPTED")
        (self.requeue if more else self.sent).append(it)

    def link_existing(self, it: _Item, registry_id: str, version: int, base: dict[str, Any], how: str, *,
                      revision: int | None = None) -> None:
        """Link a record the registry already holds. A record this client created itself (its ``clientRef``:
        an earlier attempt whose answer was lost) is then brought to the local state on the next step; a record
        of someone else's (``DUPLICATE_ID_NUMBER``, ``DUPLICATE_USCC``) gets nothing pushed over it."""
        if revision is None:
            revision = it.link["revision"] if it.link else _new_revision(it)
        entry = {"entity": it.kind, "local_id": it.local_id, "registry_id": registry_id, "registry_version": version,
                 "base": dumps(base), "revision": revision,
                 "how": it.link["how"] if it.link else how}
        (self.links_upd if it.link else self.links_new).append(entry)
        if it.retired is not None:
            self.retiring.append(it)
        own = how in ("duplicate_client_ref", "found_by_client_ref")
        it.attempts = -2 if own and it.link else -3  # marker: pushed (a correction), else linked
        (self.requeue if own else self.sent).append(it)

    def next_revision(self, it: _Item, revision: int) -> None:
        """Keep the link's registry record and base, take correction number ``revision`` (its ``clientRef`` is
        taken in the registry), and send the record back to the queue (nothing was written in the registry)."""
        assert it.link is not None
        self.links_upd.append({**{k: it.link[k] for k in ("entity", "local_id", "registry_id", "registry_version",
                                                           "base", "how")}, "revision": revision})
        self.requeue.append(it)

    def duplicate(self, it: _Item, primary_id: int) -> None:
        self.dup_later.append((it, primary_id))

    def refresh_version(self, it: _Item, version: int) -> None:
        assert it.link is not None
        self.links_upd.append({**{k: it.link[k] for k in ("entity", "local_id", "registry_id", "base",
                                                           "revision", "how")},
                               "registry_version": version})
        self.requeue.append(it)

    def fail(self, it: _Item, code: str, message: str) -> None:
        self.failures.append((it, "failed", code, message, None))

    def blocked(self, it: _Item, parent: tuple[str, int], *, discarded: bool = False) -> None:
        if discarded:  # held by an operator (regsync.db.holds): the code outbox list, status and reports show
            self.failures.append((it, "blocked", PARENT_DISCARDED, discarded_reason(*parent), parent))
            return
        self.failures.append((it, "blocked", "PARENT_FAILED",
                              f"waits for {parent[0]} {parent[1]}, which the registry refused", parent))

    def defer(self, it: _Item, code: str, message: str, *, seconds: float, count_attempt: bool,
              max_attempts: int | None = None) -> None:
        if count_attempt and max_attempts is not None and it.attempts + 1 >= max_attempts:
            self.fail(it, code, f"gave up after {it.attempts + 1} attempts: {message}")
            return
        self.deferrals.append((it, code, message, seconds, count_attempt))

    # the write
    def write(self, conn: Connection, worker: str, stats: RelayStats) -> None:
        now = _now()
        kind = self.kind
        if self.dup_links:
            primary_ids = sorted({p for _, p in self.dup_links})
            primary_links = links.volunteer_links(conn, primary_ids)
            primary_waiting = outbox.waiting_volunteers(conn, primary_ids)
            for it, pid in self.dup_links:
                pl = primary_links.get(pid)
                if pl is None:
                    if pid in primary_waiting:
                        self.deferrals.append((it, "PRIMARY_PENDING", "the person's primary row is not linked yet",
                                               2.0, False))
                    elif held_keys(conn, [("volunteer", pid)]):
                        self.blocked(it, ("volunteer", pid), discarded=True)
                    else:
                        self.failures.append((it, "blocked", "PARENT_FAILED",
                                              f"waits for volunteer {pid}, the person's primary row, which is not "
                                              "in the registry", ("volunteer", pid)))
                    continue
                if it.link is None:
                    self.links_new.append({"entity": "volunteer", "local_id": it.local_id,
                                           "registry_id": pl.registry_id, "registry_version": pl.registry_version,
                                           "base": pl.base, "revision": _new_revision(it), "how": "duplicate_person"})
                    it.attempts = -3
                    if it.retired is not None:
                        self.retiring.append(it)
                self.sent.append(it)
        if self.retiring:
            self._retire(conn, now)
        if self.links_new and kind == "membership":
            paired = self._mark_duplicate_pairs(conn)
            for it in self.sent:  # the registry answered its join with the pair's membership: linked, not pushed
                if it.attempts == -2 and it.local_id in paired:
                    it.attempts = -3
        if self.links_new:
            links.insert_links(conn, self.links_new, now)
            # what waited for these records may go now (one statement over the few blocked rows)
            outbox.unblock(conn, now)
        if self.links_upd:
            links.update_links(conn, self.links_upd, now)
        if self.sent:
            outbox.mark_sent(conn, [rid for it in self.sent for rid in it.row_ids], now)
            # older failed or blocked rows of the same records are settled by this newer state
            outbox.settle_older(conn, kind, [(it.local_id, max(it.row_ids)) for it in self.sent if it.had_failed],
                                now)
            for it in self.sent:
                if it.attempts == -2:
                    stats.pushed[kind] += 1
                elif it.attempts == -3:
                    stats.linked[kind] += 1
                else:
                    stats.unchanged[kind] += 1
        if self.requeue:
            outbox.requeue(conn, [rid for it in self.requeue for rid in it.row_ids], now)
            for it in self.requeue:
                if it.attempts == -2:
                    stats.pushed[kind] += 1
                elif it.attempts == -3:
                    stats.linked[kind] += 1
        if self.failures:
            verdicts: list[tuple[int, str, str, str, tuple[str, int] | None]] = []
            for it, state, code, message, parent in self.failures:
                verdicts.extend((rid, state, code, mask_text(message)[:2000], parent) for rid in it.row_ids)
                stats.failed[kind] += 1
                stats.failed_by_code[code] += 1
            outbox.mark_failed(conn, verdicts, now)
            outbox.settle_older(conn, kind, [(it.local_id, max(it.row_ids)) for it, *_ in self.failures
                                             if it.had_failed], now)
        if self.deferrals:
            later: list[tuple[int, str, str, dt.datetime, bool]] = []
            for it, code, message, seconds, count in self.deferrals:
                later.extend((rid, code, mask_text(message)[:2000], now + dt.timedelta(seconds=seconds), count)
                             for rid in it.row_ids)
                stats.deferred[kind] += 1
                if code in IN_PASS_WAITS:
                    stats.waiting.append((kind, list(it.row_ids)))
            outbox.defer(conn, later)

    def _retire(self, conn: Connection, now: dt.datetime) -> None:
        """The new records of reused keys are linked in this write: retire their keys' old links, before the new
        links are inserted (design.md's mapping table, "a key deleted and inserted again").

        The old link moves to the key ``-link.id`` (no local row has a negative id: to every flow it is the link of
        a deleted row, as it is); when the old record is not ended yet (its own delete row not sent before the new
        record went in), an ending is queued for that key, at an ending's priority. When the registry answered the
        new record with the old one (a membership's pair joined again, the same person's ID number), the registry
        record is the new row's: the old link is dropped, nothing is ended. The key's ``reuse`` rows become
        ``insert`` rows, and the old record's open conflicts are superseded (the record ended before anyone
        decided).
        """
        kind = self.kind
        new_rid = {e["local_id"]: e["registry_id"] for e in self.links_new}
        for it in self.retiring:
            old = it.retired
            assert old is not None
            if new_rid.get(it.local_id) == old["registry_id"]:
                if old["id"] is not None:
                    links.drop_link(conn, old["id"])
            else:
                if old["id"] is None:  # the earlier record was never linked (found by its clientRef): link it now
                    old = dict(old, id=links.insert_placeholder_link(conn, old, -(2 ** 62) - it.reuse_ids[-1], now))
                links.retire_link(conn, old["id"], now)
                base = json.loads(old["base"] or "{}")
                if not (old["is_duplicate"] or old["how"] == REGISTRY_OWNED or _ended_locally(kind, base)):
                    outbox.queue_ending(conn, kind, -int(old["id"]), ending_priority(kind, base), now)
                # the linked local records that still refer to the key are planned again against the new record
                # (a membership of another pair, a corrected service record, a moved child org), so that the
                # registry holds them where the platform does
                outbox.queue_dependents(conn, kind, it.local_id, now)
            if it.reuse_ids:
                outbox.reuse_done(conn, it.reuse_ids)
            links.supersede_conflicts(conn, kind, it.local_id, now)
        log.info("keys used again for other records: old registry records retired", kind=kind,
                 records=len(self.retiring))

    def _mark_duplicate_pairs(self, conn: Connection) -> set[int]:
        """Two local memberships of one person in one org (the person registered twice on the platform) are
        one membership in the registry (the pair is its key, registry-api.md §4.3). The first linked governs;
        the other is linked as a duplicate and never pushed, like its volunteer row. Returns the local ids so
        linked.

        A link whose local row is gone (a deleted membership, a reused key's retired link) governs nothing: when
        another local row joins the same pair again (the registry reopens the same membership), the dead link is
        dropped and the live row governs (it was marked a duplicate, and its later leave never sent)."""
        taken = links.live_membership_links(conn, sorted({e["registry_id"] for e in self.links_new}))
        paired: set[int] = set()
        for e in self.links_new:
            if e["registry_id"] in taken:
                e["how"] = "duplicate_pair"
                paired.add(e["local_id"])
            taken.add(e["registry_id"])
        return paired
