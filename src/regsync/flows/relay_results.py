"""How the outbound relay reads the results of a ``POST /batch`` (design.md, flow 1, step 4), each on its own.

One classification, by the typed errors of :mod:`regsync.registry.errors` (registry-api.md §7; a code this client
does not know is read by its HTTP status): the relay keeps no list of codes of its own.

* :func:`classify`: what a result says of its record (:class:`Verdict`);
* :func:`about_the_client`: whether a refusal, answering most of a batch, is about the client as a whole (the relay
  then halts and alarms instead of failing the records);
* :func:`operator_code` and :func:`refusal_text`: the code and the words an operator sees on a refused record;
* :class:`Results`: what the relay does with each verdict: an outcome per record (:mod:`regsync.flows.relay_outcomes`),
  duplicates linked, refused corrections looked up by their ``clientRef``, moved versions retried or merged.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

from regsync.db.history import CLOCK_MARGIN_S
from regsync.db.models import REGISTRY_OWNED
from regsync.db.session import utcnow
from regsync.domain.projection import (
    IMMUTABLE_RECORDS,
    canonical,
    changed_fields,
    identity_mismatch,
    identity_of,
    project_registry,
)
from regsync.flows.relay_items import Backoff, Item, RelayHalted, RelayStats, revision_of
from regsync.flows.relay_outcomes import Outcomes
from regsync.flows.relay_owner import OtherStores
from regsync.registry.errors import (
    Duplicate,
    DuplicateClientRef,
    DuplicateRecord,
    InvalidState,
    RegistryError,
    TransientError,
    ValidationFailed,
    VersionMismatch,
    error_for_result,
)
from regsync.registry.port import RegistryPort
from regsync.registry.types import Operation, OperationResult, as_kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Merges records whose write met ``VERSION_MISMATCH`` with synced fields moved in the registry, with the
#: registry's current records, and defers them (``(kind, [(item, current record)], outcomes)``).
Merge = Callable[[str, list[tuple[Item, dict[str, Any]]], Outcomes], None]


class Verdict(enum.Enum):
    """What one result says of its record, in the order the relay decides them."""

    #: The write went through (2xx).
    ACCEPTED = "accepted"
    #: A ``:correct`` answered ``INVALID_STATE`` or ``DUPLICATE_CLIENT_REF``: what holds its ``clientRef`` is looked
    #: up (the correction may have gone through with its answer lost).
    CORRECTION_REFUSED = "correction_refused"
    #: ``DUPLICATE_*`` naming the existing record (``existingId``): linked to it.
    DUPLICATE = "duplicate"
    #: ``VERSION_MISMATCH`` carrying the registry's current record: compared with what was sent and the base, then
    #: taken as done, retried on the new version or merged.
    VERSION_MOVED = "version_moved"
    #: Not a verdict (:attr:`regsync.registry.errors.RegistryError.retry_later`: 429, 5xx, maintenance…): the record
    #: is deferred with backoff.
    RETRY_LATER = "retry_later"
    #: A verdict on the record's data or state: the record fails, for an operator, until its data changes.
    REFUSED = "refused"


def classify(result: OperationResult, op: Operation | None) -> Verdict:
    """What ``result``, the answer to ``op``, says of its record.

    Args:
        result: one result of ``POST /batch``.
        op: the operation it answers (its ``op`` decides whether a refusal is a correction's).

    Returns:
        The :class:`Verdict`; a result that is none of the others is :attr:`Verdict.REFUSED`.
    """
    err = error_for_result(result)
    if err is None:
        return Verdict.ACCEPTED
    if op is not None and op.op == "correct" and isinstance(err, InvalidState | DuplicateClientRef):
        return Verdict.CORRECTION_REFUSED
    if isinstance(err, Duplicate) and err.existing_id:
        return Verdict.DUPLICATE
    if isinstance(err, VersionMismatch) and err.current is not None:
        return Verdict.VERSION_MOVED
    if err.retry_later:
        return Verdict.RETRY_LATER
    return Verdict.REFUSED


def about_the_client(result: OperationResult) -> bool:
    """Whether ``result`` is a refusal that says nothing about its record's data but about this client as a whole
    (:attr:`~regsync.registry.errors.RegistryError.systemic`: credentials, clock;
    :attr:`~regsync.registry.errors.RegistryError.systemic_in_bulk`: scope, a malformed or unconditional request, a
    reused key), when it answers most of a batch with one code."""
    err = error_for_result(result)
    return err is not None and (err.systemic or err.systemic_in_bulk)


def operator_code(result: OperationResult) -> str:
    """The code an operator sees on a refused record: the first field code of a validation failure
    (``INVALID_PHONE``…), else the result's code."""
    err = error_for_result(result)
    if isinstance(err, ValidationFailed) and err.errors:
        return err.errors[0].code
    return result.code


def refusal_text(result: OperationResult) -> str:
    """The words an operator sees on a refused record: its field errors (``field: CODE (message)``, ``; ``-joined),
    else the registry's message, else its code."""
    if result.errors:
        return "; ".join(f"{e.field}: {e.code} ({e.message})" for e in result.errors)
    return result.message or result.code


class Results:
    """Handles the results of one pass's batches: every record gets its outcome.

    Args:
        client: the registry client (``lookup``, ``find_by_client_ref``).
        settings: regsync's settings (``hash_key``, ``relay.max_attempts``).
        stats: the pass's statistics.
        owner: whose registry records they are (:class:`~regsync.flows.relay_owner.OtherStores`).
        merge: merges records whose synced fields moved in the registry (the relay's merge with the inbound side).
        backoff: seconds before a record's next attempt.
        progress: called as ``progress(kind, records_done)`` after each batch.
    """

    def __init__(self, client: RegistryPort, settings: Settings, stats: RelayStats, owner: OtherStores, merge: Merge,
                 backoff: Backoff, progress: Callable[[str, int], None] | None) -> None:
        self.client = client
        self.settings = settings
        self.stats = stats
        self.owner = owner
        self.merge = merge
        self.backoff = backoff
        self.progress = progress

    def handle(self, kind: str, items: list[Item], results: list[OperationResult], outcomes: Outcomes) -> None:
        """Handle each operation's result on its own (design.md, flow 1), recording outcomes in ``outcomes``.

        Raises:
            RegistryError: the answer does not hold one result per operation.
            RelayHalted: most of the batch was refused with one code about the client as a whole (its records are
                deferred), or ``relay.other_store_limit`` records are another store's; the batch's outcomes are
                to be recorded before the relay stops.
        """
        self.stats.batches += 1
        duplicates: list[tuple[Item, OperationResult]] = []
        merges: list[tuple[Item, dict[str, Any]]] = []
        corrections: list[tuple[Item, OperationResult]] = []
        if len(results) != len(items):
            raise RegistryError(f"the registry answered {len(results)} results for {len(items)} operations")
        refusals = Counter(r.code for r in results if about_the_client(r))
        if refusals:
            code, n = refusals.most_common(1)[0]
            if n * 2 > len(results):
                for it in items:
                    outcomes.defer(it, code, "refused as a whole by the registry", seconds=60.0, count_attempt=False)
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
                if self._version_moved(kind, it, res, res.record, outcomes):
                    merges.append((it, res.record))
            elif verdict is Verdict.RETRY_LATER:
                outcomes.defer(it, res.code, res.message, seconds=self.backoff(it.attempts), count_attempt=True,
                               max_attempts=self.settings.relay.max_attempts)
            elif (wait := _training_not_ended(kind, it, res)) is not None:
                # a training COMPLETED before its endsAt on the registry's clock (registry-api.md §4.6): retried
                # once endsAt (and the clock tolerance of §1) has passed, not failed for ever
                outcomes.defer(it, res.code, f"{refusal_text(res)}; retried after the training's end",
                               seconds=wait if wait > 0 else self.backoff(it.attempts), count_attempt=wait <= 0,
                               max_attempts=self.settings.relay.max_attempts)
            elif it.op is not None and it.op.op == "correct":
                outcomes.fail(it, operator_code(res), f"the registry refused the correction, and its record "
                              f"{it.op.registry_id} stays ACCEPTED as it was: {refusal_text(res)}")
            else:
                outcomes.fail(it, operator_code(res), refusal_text(res))
        if corrections:
            self._settle_corrections(kind, corrections, outcomes)
        met = self.owner.count
        if duplicates:
            self._link_existing(kind, duplicates, outcomes)
        if merges:
            self.merge(kind, merges, outcomes)
        if self.progress:
            self.progress(kind, len(items))
        if self.owner.count > met:
            self.owner.halt_if_too_many()

    def _version_moved(self, kind: str, it: Item, res: OperationResult, record: dict[str, Any],
                       outcomes: Outcomes) -> bool:
        """``VERSION_MISMATCH`` with the registry's current ``record``: already what was sent (an earlier attempt
        went through, its answer lost) → done; only a field no one syncs moved → retried on the new version; synced
        fields moved → True, to be merged; a service record (never merged) or no base → failed."""
        current = canonical(project_registry(kind, record), self.settings.hash_key)
        base = json.loads(it.link["base"]) if it.link else None
        if it.desired is not None and not changed_fields(current, it.desired):
            # the registry already holds what was sent: an earlier attempt went through and its answer was lost
            outcomes.success(it, OperationResult(200, "OK", record.get("id"), int(record.get("version") or 1),
                                                 record), current)
        elif base is not None and not changed_fields(current, base):
            outcomes.refresh_version(it, int(record.get("version") or res.version or 0))
        elif base is not None and it.link is not None and kind not in IMMUTABLE_RECORDS:
            return True
        else:
            moved = changed_fields(current, base or {})
            outcomes.fail(it, "VERSION_MISMATCH", f"the registry changed synced fields since the last agreed state "
                          f"({', '.join(moved)})")
        return False

    def _link_existing(self, kind: str, duplicates: list[tuple[Item, OperationResult]], outcomes: Outcomes) -> None:
        """Link records the registry already holds, with the registry's record as the base."""
        ids = sorted({res.registry_id for _, res in duplicates if res.registry_id})
        records = {r["id"]: r for r in self.client.lookup(as_kind(kind), ids)}
        for it, res in duplicates:
            rec = records.get(res.registry_id)
            if rec is None:
                outcomes.fail(it, "NOT_FOUND", f"{res.code}: existing record {res.registry_id} not readable")
                continue
            base = canonical(project_registry(kind, rec), self.settings.hash_key)
            under_client_ref = isinstance(error_for_result(res), DuplicateClientRef)
            if under_client_ref and self.owner.refuse_another_record(it, rec, base, outcomes):
                continue
            if not under_client_ref and self.owner.refuse_another_stores(kind, it, rec, outcomes):
                continue
            how = res.code.lower()
            if isinstance(error_for_result(res), DuplicateRecord):
                # registry-api.md §7 (v1.1): linked only when it is the same record; a record the portal or another
                # client made is the registry's (§4.9, "Ownership"): linked, never pushed over
                differ = self._not_the_same(kind, it, base)
                if differ:
                    outcomes.fail(it, res.code, f"the registry holds another {kind} {rec['id']} under the same key "
                                  f"({', '.join(differ)} differ): for an operator to decide")
                    continue
                if rec.get("owner_client_id") != self.settings.registry.client_id:
                    how = REGISTRY_OWNED
            revision = None
            if kind in IMMUTABLE_RECORDS and base.get("status") == "REVOKED" and it.op is not None \
                    and it.op.client_ref:
                # this client's record under that clientRef is revoked (by an earlier correction, or by someone
                # else): the platform's record goes in as a corrected one under the next clientRef, never the
                # same one again (it would answer DUPLICATE_CLIENT_REF for ever)
                revision = revision_of(it.op.client_ref) + 1
            outcomes.link_existing(it, rec["id"], int(rec.get("version") or 1), base, how=how,
                                   revision=revision)

    def _not_the_same(self, kind: str, it: Item, base: dict[str, Any]) -> list[str]:
        """The identity fields (:data:`regsync.domain.projection.IDENTITY`; a scheme commendation's tier too) in
        which the record ``it`` meant to create and the registry's existing record ``base`` differ: ``[]`` when
        it is the same record."""
        sent = (it.op.fields if it.op is not None else None) or it.desired_raw or {}
        mine = canonical(identity_of(kind, sent) | ({"tier": sent.get("tier")} if sent.get("scheme") else {}),
                         self.settings.hash_key)
        differ = identity_mismatch(kind, mine, base)
        if mine.get("scheme") and mine.get("tier") != base.get("tier"):
            differ.append("tier")
        return differ

    def _settle_corrections(self, kind: str, refused: list[tuple[Item, OperationResult]],
                            outcomes: Outcomes) -> None:
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
                found = self.client.find_by_client_ref(as_kind(kind), op.client_ref)
            except TransientError as exc:
                outcomes.defer(it, res.code, f"{res.code}; the record under clientRef {op.client_ref} could not be "
                               f"read: {exc}", seconds=self.backoff(it.attempts), count_attempt=True,
                               max_attempts=self.settings.relay.max_attempts)
                continue
            revision = revision_of(op.client_ref)
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


__all__ = ["Merge", "Results", "Verdict", "about_the_client", "classify", "operator_code", "refusal_text"]


def _training_not_ended(kind: str, it: Item, res: OperationResult) -> float | None:
    """Seconds until a training refused ``INVALID_STATE`` for its status ``COMPLETED`` may be sent again: until its
    ``ends_at`` (naive UTC, the local row's) plus :data:`regsync.db.history.CLOCK_MARGIN_S` (registry-api.md §1:
    the registry's clock may be off by ±120 s); ``0.0`` when that has passed already (retried with backoff, as
    attempts); ``None`` for any other refusal."""
    if kind != "training" or not isinstance(error_for_result(res), InvalidState) or it.op is None:
        return None
    if it.op.fields.get("status") != "COMPLETED" or not isinstance(it.op.fields.get("ends_at"), dt.datetime):
        return None
    due = it.op.fields["ends_at"] + dt.timedelta(seconds=CLOCK_MARGIN_S)
    return max(0.0, (due - utcnow()).total_seconds())
