"""The outbound relay's outcomes (design.md, flow 1, step 5): what became of each record of a batch, collected
while its results are handled, then written to the store in one transaction, in order, on the relay's writer
thread (:mod:`regsync.flows.relay_send`).

An outcome is one of: sent (or nothing to send), linked to a registry record, sent back to the queue for its next
step, failed or blocked for an operator, deferred. Writing them moves links (new, updated, retired), outbox rows and
the pass's statistics together; the statements are the store's (:mod:`regsync.db.links`, :mod:`regsync.db.outbox`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import structlog
from sqlalchemy import Connection

from regsync.db import links, outbox
from regsync.db.holds import PARENT_DISCARDED, discarded_reason, held_keys
from regsync.db.models import REGISTRY_OWNED
from regsync.db.session import utcnow
from regsync.db.triggers import ending_priority
from regsync.domain.masking import mask_text
from regsync.domain.projection import canonical, dumps
from regsync.flows.relay_items import IN_PASS_WAITS, Item, RelayStats, ended_locally, new_revision, revision_of
from regsync.flows.relay_waits import after_writes
from regsync.registry.types import OperationResult

log = structlog.get_logger(__name__)

#: Kinds whose registry record one pair of local rows can share (a person registered twice on the platform): the
#: first linked governs, the other is a duplicate (:meth:`Outcomes._mark_duplicate_pairs`).
PAIRED = frozenset({"membership", "training_record", "commendation", "evaluation"})


class Outcomes:
    """The outcomes of one group's records (one kind), collected per batch and written in one transaction.

    The decisions (:meth:`unchanged`, :meth:`success`, :meth:`link_existing`, :meth:`next_revision`,
    :meth:`duplicate`, :meth:`refresh_version`, :meth:`fail`, :meth:`blocked`, :meth:`defer`) only collect;
    :meth:`detach` hands what was collected to the writer, which calls :meth:`write`.

    Args:
        kind: the records' kind.
        hash_key: the store's hash key (a link's base keeps personal fields as keyed hashes).
    """

    def __init__(self, kind: str, hash_key: str) -> None:
        self.kind = kind
        self.hash_key = hash_key
        #: later rows of a person, written once their primary's batch is through (not by :meth:`clear`)
        self.dup_later: list[tuple[Item, int]] = []
        self.clear()

    def clear(self) -> None:
        """Forget what was collected (not the later rows of a person, :attr:`dup_later`)."""
        self.links_new: list[dict[str, Any]] = []
        self.links_upd: list[dict[str, Any]] = []
        self.sent: list[Item] = []
        self.requeue: list[Item] = []
        self.failures: list[tuple[Item, str, str, str, tuple[str, int] | None]] = []
        self.deferrals: list[tuple[Item, str, str, float, bool]] = []
        self.dup_links: list[tuple[Item, int]] = []
        self.retiring: list[Item] = []  # new records of reused keys, linked: old links retired, reuse rows done

    def detach(self) -> Outcomes:
        """The outcomes collected so far, as an object of their own (for the writer); this one is cleared."""
        taken = Outcomes(self.kind, self.hash_key)
        taken.dup_later = []
        (taken.links_new, taken.links_upd, taken.sent, taken.requeue, taken.failures, taken.deferrals,
         taken.dup_links, taken.retiring) = (self.links_new, self.links_upd, self.sent, self.requeue, self.failures,
                                             self.deferrals, self.dup_links, self.retiring)
        self.clear()
        return taken

    def empty(self) -> bool:
        """Whether nothing is collected to write."""
        return not (self.links_new or self.links_upd or self.sent or self.requeue or self.failures
                    or self.deferrals or self.dup_links or self.retiring)

    # decisions
    def unchanged(self, it: Item) -> None:
        """The registry holds the record's state already, or nothing is to be sent: its rows are done."""
        it.op = None
        self.sent.append(it)
        it.desired = None
        it.attempts = -1  # marker: nothing sent

    def success(self, it: Item, res: OperationResult, base: dict[str, Any] | None) -> None:
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
            revision = revision_of(op.client_ref or "") if op.op == "correct" else (
                it.link["revision"] if it.link else new_revision(it))
            entry = {"entity": it.kind, "local_id": it.local_id,
                     "registry_id": res.registry_id or (res.record or {}).get("id"),
                     "registry_version": int(version), "base": snapshot,
                     "revision": revision, "how": "created"}
            (self.links_upd if it.link else self.links_new).append(entry)
            self._new_record_of_key(it)
        else:
            correction = op.op == "revoke" and it.row is not None and it.row["status"] == "ACCEPTED"
            self.links_upd.append({"entity": it.kind, "local_id": it.local_id,
                                   "registry_id": it.link["registry_id"], "registry_version": int(version),
                                   "base": snapshot, "revision": it.link["revision"] + (1 if correction else 0),
                                   "how": it.link["how"]})
        it.attempts = -2  # marker: pushed
        more = it.follow_up or (op.op in ("create", "join") and ended_locally(it.kind, it.row)) or (
            op.op == "revoke" and it.row is not None and it.row["status"] == "ACCEPTED")
        (self.requeue if more else self.sent).append(it)

    def link_existing(self, it: Item, registry_id: str, version: int, base: dict[str, Any], how: str, *,
                      revision: int | None = None) -> None:
        """Link a record the registry already holds. A record this client created itself (its ``clientRef``:
        an earlier attempt whose answer was lost) is then brought to the local state on the next step; a record
        of someone else's (``DUPLICATE_ID_NUMBER``, ``DUPLICATE_USCC``) gets nothing pushed over it."""
        if revision is None:
            revision = it.link["revision"] if it.link else new_revision(it)
        entry = {"entity": it.kind, "local_id": it.local_id, "registry_id": registry_id, "registry_version": version,
                 "base": dumps(base), "revision": revision,
                 "how": it.link["how"] if it.link else how}
        (self.links_upd if it.link else self.links_new).append(entry)
        self._new_record_of_key(it)
        own = how in ("duplicate_client_ref", "found_by_client_ref")
        it.attempts = -2 if own and it.link else -3  # marker: pushed (a correction), else linked
        (self.requeue if own else self.sent).append(it)

    def _new_record_of_key(self, it: Item) -> None:
        """``it``'s record is linked in this write: when its key was used again (its ``reuse`` rows), the key's old
        link is retired and its ``reuse`` rows become ``insert`` rows with it (:meth:`_retire`), also when the key
        had no registry record to retire (its first create never reached the registry): a ``reuse`` row left over
        would make the record's next step take the record just made for the key's old one, and make another."""
        if it.retired is not None or (it.reuse_ids and max(it.row_ids) >= max(it.reuse_ids)):
            self.retiring.append(it)

    def next_revision(self, it: Item, revision: int) -> None:
        """Keep the link's registry record and base, take correction number ``revision`` (its ``clientRef`` is
        taken in the registry), and send the record back to the queue (nothing was written in the registry)."""
        assert it.link is not None
        self.links_upd.append({**{k: it.link[k] for k in ("entity", "local_id", "registry_id", "registry_version",
                                                           "base", "how")}, "revision": revision})
        self.requeue.append(it)

    def duplicate(self, it: Item, primary_id: int) -> None:
        """A person's later row: linked to the registry record of its primary row ``primary_id`` once that
        primary's batch is through (at the group's end), never pushed."""
        self.dup_later.append((it, primary_id))

    def refresh_version(self, it: Item, version: int) -> None:
        """Only a derived field moved in the registry: the link takes ``version`` and the record goes back to the
        queue, to be sent again on it."""
        assert it.link is not None
        self.links_upd.append({**{k: it.link[k] for k in ("entity", "local_id", "registry_id", "base",
                                                           "revision", "how")},
                               "registry_version": version})
        self.requeue.append(it)

    def fail(self, it: Item, code: str, message: str) -> None:
        """The record fails with ``code`` and ``message`` (masked when written), for an operator; it waits until
        its data changes or an operator retries it."""
        self.failures.append((it, "failed", code, message, None))

    def blocked(self, it: Item, parent: tuple[str, int], *, discarded: bool = False) -> None:
        """The record waits for ``parent`` (``(kind, local_id)``), which the registry refused (``PARENT_FAILED``)
        or an operator discarded (``discarded``: ``PARENT_DISCARDED``); it is planned again once ``parent`` is
        linked (:func:`regsync.db.outbox.unblock`)."""
        if discarded:  # held by an operator (regsync.db.holds): the code outbox list, status and reports show
            self.failures.append((it, "blocked", PARENT_DISCARDED, discarded_reason(*parent), parent))
            return
        self.failures.append((it, "blocked", "PARENT_FAILED",
                              f"waits for {parent[0]} {parent[1]}, which the registry refused", parent))

    def waits(self, it: Item, code: str, message: str) -> None:
        """The record is blocked with ``code`` until a change the platform has to make is written (no record of
        its own to wait for: :func:`regsync.flows.relay_waits.after_writes` takes it up again), listed for
        operators meanwhile."""
        self.failures.append((it, "blocked", code, message, None))

    def defer(self, it: Item, code: str, message: str, *, seconds: float, count_attempt: bool,
              max_attempts: int | None = None) -> None:
        """The record is put off for ``seconds`` with ``code`` and ``message``; ``count_attempt`` counts it as an
        attempt, and once ``max_attempts`` (when given) are reached it fails instead."""
        if count_attempt and max_attempts is not None and it.attempts + 1 >= max_attempts:
            self.fail(it, code, f"gave up after {it.attempts + 1} attempts: {message}")
            return
        self.deferrals.append((it, code, message, seconds, count_attempt))

    # the write
    def write(self, conn: Connection, worker: str, stats: RelayStats) -> None:
        """Write what was collected, in ``conn``'s transaction: the later rows of a person linked to their primary
        (or deferred, blocked), reused keys' old links retired, new links inserted and what waited for them
        unblocked, links updated, then the outbox rows (sent, requeued, failed or blocked, deferred); counts them
        in ``stats``. ``worker``: the relay whose claims these rows are."""
        now = utcnow()
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
                                           "base": pl.base, "revision": new_revision(it), "how": "duplicate_person"})
                    it.attempts = -3
                    self._new_record_of_key(it)
                self.sent.append(it)
        if self.retiring:
            self._retire(conn, now)
        if self.links_new and kind in PAIRED:
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
        written = [it for it in self.sent + self.requeue if it.attempts in (-2, -3)]  # pushed, or linked
        if written and kind in ("activity", "service_record"):
            after_writes(conn, kind, written, now)  # what waits for the registry's own records (relay_waits)
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
        decided). A key whose earlier create never reached the registry (nothing found under its ``clientRef``)
        has no old record: only its ``reuse`` rows become ``insert`` rows.
        """
        kind = self.kind
        new_rid = {e["local_id"]: e["registry_id"] for e in self.links_new}
        retired = 0
        for it in self.retiring:
            old = it.retired
            if old is None:
                outbox.reuse_done(conn, it.reuse_ids)
                continue
            retired += 1
            if new_rid.get(it.local_id) == old["registry_id"]:
                if old["id"] is not None:
                    links.drop_link(conn, old["id"])
            else:
                if old["id"] is None:  # the earlier record was never linked (found by its clientRef): link it now
                    old = dict(old, id=links.insert_placeholder_link(conn, old, -(2 ** 62) - it.reuse_ids[-1], now))
                links.retire_link(conn, old["id"], now)
                base = json.loads(old["base"] or "{}")
                if not (old["is_duplicate"] or old["how"] == REGISTRY_OWNED or ended_locally(kind, base)):
                    outbox.queue_ending(conn, kind, -int(old["id"]), ending_priority(kind, base), now)
                # the linked local records that still refer to the key are planned again against the new record
                # (a membership of another pair, a corrected service record, a moved child org), so that the
                # registry holds them where the platform does
                outbox.queue_dependents(conn, kind, it.local_id, now)
            if it.reuse_ids:
                outbox.reuse_done(conn, it.reuse_ids)
            links.supersede_conflicts(conn, kind, it.local_id, now)
        if retired:
            log.info("keys used again for other records: old registry records retired", kind=kind, records=retired)

    def _mark_duplicate_pairs(self, conn: Connection) -> set[int]:
        """Two local memberships of one person in one org (the person registered twice on the platform) are
        one membership in the registry (the pair is its key, registry-api.md §4.3); so are two training records of
        one person and one training, two evaluations of one person at one activity, two commendations of one
        subject for one scheme and year (§4.7–§4.9: ``DUPLICATE_*`` names the existing one). The first linked
        governs; the other is linked as a duplicate and never pushed, like its volunteer row. Returns the local ids
        so linked.

        A link whose local row is gone (a deleted membership, a reused key's retired link) governs nothing: when
        another local row joins the same pair again (the registry reopens the same membership), the dead link is
        dropped and the live row governs (it was marked a duplicate, and its later leave never sent)."""
        taken = links.live_links(conn, self.kind, sorted({e["registry_id"] for e in self.links_new}))
        paired: set[int] = set()
        for e in self.links_new:
            if e["registry_id"] in taken:
                e["how"] = "duplicate_pair"
                paired.add(e["local_id"])
            taken.add(e["registry_id"])
        return paired
