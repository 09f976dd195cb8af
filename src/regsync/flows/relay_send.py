"""Sending (design.md, flow 1, steps 4 and 5): one pass of the outbound relay as a pipeline.

Up to ``concurrency`` ``POST /batch`` calls are in flight on a thread pool while this side claims the next window
(:mod:`regsync.flows.relay_claim`), reads and plans it (:mod:`regsync.flows.relay_plan`), and hands the outcomes of
the last batches (:mod:`regsync.flows.relay_results`) to a writer thread of their own, which commits them in order
(:mod:`regsync.flows.relay_outcomes`). What depends on work in flight waits behind a barrier (:meth:`Pipeline.work`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import structlog
from sqlalchemy import Engine

from regsync.db import outbox
from regsync.db.session import retry_on_lock_conflict
from regsync.domain.masking import mask_text
from regsync.flows.relay_claim import Claims
from regsync.flows.relay_items import (
    LOOP_LIMIT,
    WAIT_ROUNDS,
    Backoff,
    Item,
    PassStopped,
    RelayHalted,
    RelayStats,
    op_of,
)
from regsync.flows.relay_outcomes import Outcomes
from regsync.flows.relay_plan import End, Group, Planner, Send
from regsync.flows.relay_results import Results
from regsync.registry.errors import InvalidClient, Maintenance, RateLimited, RegistryError, TransientError
from regsync.registry.port import RegistryPort
from regsync.registry.types import OperationResult
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: In the pass's work: handle everything in flight before any more work is produced.
BARRIER = object()


class Pipeline:
    """One pass of the relay: claims, plans, sends and records until no row is available.

    Args:
        engine: the local store.
        client: the registry client (``batch``).
        settings: regsync's settings (``relay.claim_size``).
        worker: this relay's name in claims.
        stats: the pass's statistics.
        claims: the relay's claims on the outbox.
        planner: folds, reads and plans the claimed rows.
        results: handles the batches' results.
        pool: the threads that make the calls (``concurrency`` of them).
        writer: the one thread that writes the outcomes, in order.
        concurrency: batch calls in flight at once.
        writes_behind: writes the writer may be behind the calls before the pass waits for it.
        analyze_every: links made between two ``ANALYZE`` runs on PostgreSQL.
        backoff: seconds before a record's next attempt.
        stop: polled before each batch is sent; once true the pass stops (:class:`PassStopped`).
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, *, worker: str, stats: RelayStats,
                 claims: Claims, planner: Planner, results: Results, pool: ThreadPoolExecutor,
                 writer: ThreadPoolExecutor, concurrency: int, writes_behind: int, analyze_every: int,
                 backoff: Backoff, stop: Callable[[], bool] | None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.worker = worker
        self.stats = stats
        self.claims = claims
        self.planner = planner
        self.results = results
        self.pool = pool
        self.writer = writer
        self.concurrency = concurrency
        self.writes_behind = writes_behind
        self.analyze_every = analyze_every
        self.backoff = backoff
        self.stop = stop
        self._open: set[tuple[str, int]] = set()  # records of the groups not finished yet (in flight)
        self._unsettled: set[int] = set()  # claimed outbox rows not written yet (released if the pass fails)
        self._steps_of: Counter[tuple[str, int]] = Counter()  # requeues of each record in this pass
        self._writes: deque[Future[None]] = deque()

    def run(self, max_steps: int | None) -> None:
        """Run the pass until no row is available (or ``stop()`` is true, or ``max_steps`` windows were claimed).
        Once stopped, the batches in flight are finished and recorded and the other claimed rows released; on any
        error, the writes handed over are waited for and the claimed rows not written released.

        Raises:
            RelayHalted: the registry refused the credentials or the client's scope as a whole.
            RegistryError: the registry is unavailable.
        """
        try:
            self.dispatch(self.work(max_steps))
            self.flush_writes()
        except PassStopped:
            self.flush_writes(raising=False)
            log.info("relay stopped after its batches in flight; the rest of its claimed rows released")
            self.claims.release(sorted(self._unsettled))
        except BaseException:
            self.flush_writes(raising=False)
            self.claims.release(sorted(self._unsettled))
            raise

    # ------------------------------------------------------------------------------------------ work
    def work(self, max_steps: int | None) -> Iterator[Send | End | object]:
        """The pass's work, produced lazily for :meth:`dispatch`: batches to send (:class:`Send`), the end of a
        group (:class:`End`, its remaining outcomes written once its batches are through) and :data:`BARRIER`
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
            self.claims.analyze_as_links_grow(self.analyze_every)
            # a claim that lost a lock conflict (a deadlock with a platform's writer) is claimed again at once
            claimed = retry_on_lock_conflict(self.engine, lambda conn: self.claims.claim(
                conn, self.settings.relay.claim_size))
            if claimed:
                steps += 1
                claimed = self.claims.drop_records_held_elsewhere(claimed)
            if not claimed:
                if self._open:
                    yield BARRIER
                    continue
                yield BARRIER  # every write of the pass committed: its waits are written, and what they wait for
                if self.stats.waiting and rounds < WAIT_ROUNDS:
                    rounds += 1
                    self._take_waits_again()
                    continue
                return
            self._unsettled.update(r["id"] for r in claimed)
            if any((r["entity"], r["local_id"]) in self._open for r in claimed):
                yield BARRIER
            for group in self.planner.groups(claimed):
                key = (group.priority, group.kind)
                if self._open and key != last_group:
                    yield BARRIER
                last_group = key
                self._open.update((group.kind, it.local_id) for it in group.items)
                yield from self.planner.process(group)

    def _take_waits_again(self) -> None:
        """Make the rows this pass deferred to wait for its own work (``IN_PASS_WAITS``) available now: what
        they waited for is written. They no longer count as deferred; if they must wait again, they say so."""
        waiting, self.stats.waiting = self.stats.waiting, []
        self.claims.take_again([rid for _, ids in waiting for rid in ids])
        for kind, _ in waiting:
            self.stats.deferred[kind] -= 1
        self.stats.deferred = +self.stats.deferred  # drop the zeros

    # ------------------------------------------------------------------------------------------ send
    def dispatch(self, work: Iterator[Send | End | object]) -> None:
        """Send the batches of ``work`` (:meth:`work`), keeping up to ``concurrency`` calls in flight so that
        the registry works on some while this side claims, reads and plans the next and records the last.
        Results are handled and written in the order the work was produced; a group's end is written after its
        batches; at a barrier everything in flight is handled before more work is produced. A failed call stops
        new calls but never loses the answers of the calls already made.

        Raises:
            PassStopped: ``stop()`` became true.
            RelayHalted: the registry refused the credentials.
            RegistryError: the registry is unavailable (the unsent work is released by :meth:`run`).
        """
        inflight: deque[tuple[Send | End, Future[list[OperationResult]] | None]] = deque()
        calls = 0
        error: RegistryError | RelayHalted | None = None
        exhausted = stopped = barrier = False
        while True:
            # a group's end waits in the queue too: bound the queue, so that a run of groups with nothing to send
            # is written as it goes instead of claiming the whole backlog first
            while (error is None and not exhausted and not barrier and calls < self.concurrency
                   and len(inflight) < 2 * self.concurrency):
                if self.stop is not None and self.stop():
                    exhausted = stopped = True
                    break
                unit = next(work, None)
                if unit is None:
                    exhausted = True
                elif unit is BARRIER:
                    barrier = True
                elif isinstance(unit, End):
                    inflight.append((unit, None))
                else:
                    assert isinstance(unit, Send)
                    inflight.append((unit, self.pool.submit(self.client.batch, [op_of(it) for it in unit.items])))
                    calls += 1
            if not inflight:
                if barrier and error is None:
                    self.flush_writes()
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
            assert isinstance(unit, Send)
            outcomes = unit.group.outcomes
            try:
                results = future.result()
            except RegistryError as exc:
                self._on_batch_error(unit.items, exc, outcomes)
                error = error or exc
                continue
            try:
                self.results.handle(unit.group.kind, unit.items, results, outcomes)
            except RelayHalted as exc:
                self._commit(outcomes)  # this batch's outcomes are recorded before the relay stops
                error = error or exc
                continue
            self._commit(outcomes)
        if stopped and error is None:
            raise PassStopped
        if isinstance(error, RelayHalted):
            raise error
        if error is not None:
            if isinstance(error, InvalidClient):
                log.error("registry refuses the credentials: relay halted", code=error.code, alarm=True)
                raise RelayHalted(f"the registry refuses this client's credentials: {error}") from error
            if error.systemic:
                log.error("registry refuses this client as a whole: relay halted", code=error.code, alarm=True)
                raise RelayHalted(str(error)) from error
            raise error

    def _finish(self, group: Group) -> None:
        """Write what is left of a group once its batches are through: the later rows of a person (linked to
        their primary, now linked) and the outcomes decided without a call. Its records leave the open set once
        that is committed (a newer row of one of them is then planned from what was written)."""
        outcomes = group.outcomes
        outcomes.dup_links, outcomes.dup_later = outcomes.dup_later, []

        def settled() -> None:
            self._open.difference_update((group.kind, it.local_id) for it in group.items)
            self.planner.close_pairs(group.pairs)
            self._unsettled.difference_update(i for it in group.items for i in it.row_ids)

        self._commit(outcomes, after=settled)

    def _on_batch_error(self, items: list[Item], exc: RegistryError, outcomes: Outcomes) -> None:
        """A whole call failed: defer its records without burning attempts (an outage is not theirs)."""
        if isinstance(exc, InvalidClient) or exc.systemic:
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
                           seconds=wait if wait is not None else self.backoff(it.attempts), count_attempt=False)
        self._commit(outcomes)

    # ------------------------------------------------------------------------------------------ commit
    def _commit(self, outcomes: Outcomes, after: Callable[[], None] | None = None) -> None:
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
        self.claims.note_links(len(payload.links_new))
        self._writes.append(self.writer.submit(self._write, payload, after))
        # a failed write stops the pass at once; and the writer is kept at most a few writes behind
        while self._writes and (self._writes[0].done() or len(self._writes) > self.writes_behind):
            self._writes.popleft().result()

    def _write(self, payload: Outcomes, after: Callable[[], None] | None) -> None:
        with self.engine.begin() as conn:
            # Every write the relay records can be found again if a server crash loses this commit (the same
            # idempotency key replays it, the clientRef links it), so it need not wait for the WAL flush.
            outbox.asynchronous_commit(conn)
            payload.write(conn, self.worker, self.stats)
        if after is not None:
            after()

    def flush_writes(self, *, raising: bool = True) -> None:
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


__all__ = ["BARRIER", "Pipeline"]
