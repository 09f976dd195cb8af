"""What the parts of the outbound relay share (:mod:`regsync.flows.outbound` draws how they fit): a record's work
item, a pass's statistics, the relay's errors, the codes and limits each part reads, and a few rules on
``clientRef`` revisions and ended rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from regsync.domain.projection import ENDED
from regsync.registry.types import Kind, Operation

#: Times one record may go back to the queue after a write within one pass before it is failed as ``SYNC_LOOP``:
#: a link then the push of the platform's state, a correction found under its clientRef, a new version
#: after a derived field moved, stay well below it.
LOOP_LIMIT = 12

#: Deferrals that wait for another record's write in the same pass: the second local membership of a pair (its
#: first is being joined), a reference not linked yet, a person's later row whose primary is not linked yet. Once
#: the pass has nothing else to do, their rows are taken again at once (up to :data:`WAIT_ROUNDS` times), so that
#: one ``regsync sync`` leaves nothing behind that it could have sent (a second sync sends nothing).
IN_PASS_WAITS = frozenset({"PRIMARY_PENDING", "PARENT_PENDING", "RECORDS_PENDING"})

#: A record the registry checks against its own records waits while those are being sent (registry-api.md v1.1: a
#: commendation of the annual scheme for the subject's service records of its year, an evaluation for the
#: volunteer's service record at the activity; :mod:`regsync.flows.relay_waits`).
RECORDS_PENDING = "RECORDS_PENDING"
#: An evaluation waits for its activity to be COMPLETED in the registry (registry-api.md §4.9).
AWAITS_COMPLETION = "AWAITS_COMPLETION"
#: An evaluation waits for the volunteer's service record at its activity to be accepted in the registry (§4.9).
AWAITS_SERVICE_RECORD = "AWAITS_SERVICE_RECORD"
WAIT_ROUNDS = 3

#: Codes of a deferral whose outcome is known (decided locally, or a refusal merged): no write is uncertain.
LOCAL_WAIT_CODES = {"PARENT_PENDING", "PRIMARY_PENDING", "PARENT_FAILED", "PARENT_DISCARDED", "MERGED",
                    "CONFLICT_HELD", RECORDS_PENDING, AWAITS_COMPLETION, AWAITS_SERVICE_RECORD}

#: The code of a record whose registry record was made under this client's credentials by another store (its
#: ``clientRef`` or natural key met, this store never sent that create): failed for an operator, never linked or
#: written over (deploy/RUNBOOK.md, "A record fails with CLIENT_REF_TAKEN").
OTHER_STORE_CODE = "CLIENT_REF_TAKEN"

#: The status a record is created with when it ended locally before it was pushed.
OPEN_STATUS = {"org": "ACTIVE", "volunteer": "ACTIVE", "activity": "PUBLISHED", "service_record": "ACCEPTED",
               "training": "SCHEDULED", "training_record": "ACCEPTED", "commendation": "ACTIVE", "evaluation": "ACTIVE"}

#: The shape of :func:`regsync.flows.outbound.reused_keys`: ``(conn, kind, local_ids)`` → local id → the ids of
#: its ``reuse`` rows not done.
ReusedKeys = Callable[[Connection, str, Sequence[int]], dict[int, tuple[int, ...]]]

#: The shape of :func:`regsync.flows.outbound.not_sent_here`: ``(sent, first_sent_at, registry record, client)``
#: → why the record is not this store's own create, or ``None`` when it is.
NotSentHere = Callable[[bool, dt.datetime | None, dict[str, Any], Any], str | None]

#: Seconds to wait before a record's next attempt, given its attempts so far (full-jitter backoff).
Backoff = Callable[[int], float]


class RelayHalted(Exception):
    """The registry refuses this client as a whole (credentials, scope): the relay stops and alarms."""


class PassStopped(Exception):
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
class Item:
    """One record's work within a step: its claimed outbox rows folded into one write of its current state.

    ``attempts`` is the most of its rows' attempts while it is planned; once an outcome is recorded it is a marker
    for the statistics: ``-1`` nothing sent, ``-2`` pushed, ``-3`` linked.
    """

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
    follow_up: bool = False  # created short of its local state (a training COMPLETED early): its next step follows


def ended_locally(kind: str, row: dict[str, Any] | None) -> bool:
    """Whether the live row ``row`` of ``kind`` is ended (deregistered, dissolved, cancelled, revoked, left); a
    missing row (``None``) is."""
    if row is None:
        return True
    if kind == "membership":
        return row.get("left_on") is not None
    return row.get("status") == ENDED[kind]


def revision_of(client_ref: str) -> int:
    """The correction number in a service record's ``clientRef`` (``"42"`` → 0, ``"42-r3"`` → 3)."""
    _, sep, rev = client_ref.rpartition("-r")
    return int(rev) if sep and rev.isdigit() else 0


def new_revision(it: Item) -> int:
    """The ``clientRef`` revision of a record created for an item with no link: the next after its key's old
    record when the key was used again (design.md's mapping table), else 0."""
    return it.retired["revision"] + 1 if it.retired is not None else 0


__all__ = ["AWAITS_COMPLETION", "AWAITS_SERVICE_RECORD", "IN_PASS_WAITS", "RECORDS_PENDING", "LOCAL_WAIT_CODES", "LOOP_LIMIT", "OPEN_STATUS", "OTHER_STORE_CODE", "WAIT_ROUNDS",
           "Backoff", "Item", "NotSentHere", "PassStopped", "RelayHalted", "RelayStats", "ReusedKeys",
           "ended_locally", "new_revision", "op_of", "revision_of"]


def op_of(it: Item) -> Operation:
    """The operation planned for ``it`` (an item of a :class:`Send` always has one).

    Raises:
        AssertionError: ``it`` has none (a planning bug).
    """
    assert it.op is not None, f"{it.kind} {it.local_id}: sent without an operation"
    return it.op

