"""Resync (重新同步, design.md "Operator commands"): an operator-forced reconcile of one scope, repaired by policy.

Scopes:

* ``volunteer``: one person: the volunteer row (by local id, by registry id with ``registry_id``, or every row of
  one normalized ID number), with its memberships and service records, and (registry-api.md v1.1) its training
  records, commendations and evaluations;
* ``org``: one org; with ``subtree``, the org and every org under it (``parent_id``, level by level) with their
  memberships, activities and service records, and their trainings (with the trainings' records), the
  commendations of those orgs and the evaluations they made;
* ``region``: a GB/T 2260 region of the client's province (:func:`regsync.flows.reconcile.check_region`: ``2301`` or
  its full code ``230100`` is the whole city, every district and county in it): the orgs of both lines, the
  volunteers, the activities and the trainings whose ``region_code`` lies in it, and the memberships, service
  records, training records, commendations and evaluations of those orgs (a volunteer's commendation by the
  volunteer's residence). A region where the local store holds no org, volunteer or activity is a usage error.

``kinds`` narrows any scope to some kinds of record (``regsync resync … --kind trainings``): only those are
compared (the person's or the org's own row too only when its kind is among them).

Unlike the nightly reconcile, a resync reads no export: it looks up the linked registry ids of the scope
(``POST /lookup``, registry-api.md §5.2, 500 at a time), so it finds ``field_mismatch``, ``stale_link``,
``broken_link``, ``missing_in_registry`` and ``orphan`` (and, for ``--registry-id`` of a record the platform
lacks, ``missing_locally``); registry records of the scope that no local row links are the nightly reconcile's.
Local ids are read in keyset pages, so a city-sized scope keeps memory flat.

It repairs like ``reconcile --repair`` (:mod:`regsync.flows.reconcile`): DB transactions and outbox rows only, no
global lock, so it runs while the daemon runs. ``dry_run`` only prints the plan (each finding with the action it
would get, ``action_state`` ``planned``) and writes nothing. A real run is a ``run`` row of kind ``resync`` with
its discrepancies, and an ``audit`` row (who, when, what, why; written before the work, completed after it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db.platform.mapped import local_id_of
from regsync.db.platform.scan import (
    existing_ids,
    ids_in_region,
    ids_of_orgs,
    ids_of_volunteers,
    local_items,
    org_children,
    region_holds_records,
    volunteer_ids_with_id_number,
)
from regsync.db.reconcile import finish_resync_audit, linked_local_ids, start_resync_audit
from regsync.domain.masking import mask_id_number, mask_text
from regsync.domain.normalize import try_normalize_id_number
from regsync.flows.operator import check_reason, default_actor
from regsync.flows.reconcile import (
    BATCH,
    KIND_ORDER,
    Reconciler,
    Recorder,
    check_region,
    compared_total,
)
from regsync.flows.reconcile_findings import FindingCounts
from regsync.flows.runs import RecordedRun, run_store
from regsync.i18n import TranslatableError
from regsync.i18n import gettext_noop as N_
from regsync.registry.client import RegistryClient
from regsync.registry.types import Kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Levels below which no org has children (the subtree walk stops there).
MAX_DEPTH = 8


class ResyncUsageError(TranslatableError, ValueError):
    """The scope names nothing that exists, or is malformed (exit code 2). ``str(exc)`` is English (the run's
    record, JSON, logs); the console prints :meth:`~regsync.i18n.TranslatableError.text`."""


@dataclass(frozen=True)
class Target:
    """What to resync.

    Attributes:
        scope: ``volunteer``, ``org`` or ``region``.
        ident: a local id (beside a mapped platform whose kind has string keys, the platform's key: an org code), a
            registry id (``registry_id``), or a region code prefix; ``None`` with ``id_number``.
        id_number: a volunteer's ID number (any raw form; normalized per GB 11643-1999).
        id_type: its document type (default ``RESIDENT_ID``).
        registry_id: ``ident`` is a registry id.
        subtree: an org with everything under it.
        kinds: only these kinds (:data:`regsync.domain.kinds.KINDS`); empty: every kind the scope holds.
    """

    scope: str
    ident: str | None = None
    id_number: str | None = None
    id_type: str = "RESIDENT_ID"
    registry_id: bool = False
    subtree: bool = False
    kinds: tuple[str, ...] = ()

    def describe(self) -> str:
        """The audit row's ``target`` (an ID number masked)."""
        if self.id_number:
            return f"volunteer:id_number={mask_id_number(self.id_number.strip().upper())}"
        head = f"{self.scope}:{'registry:' if self.registry_id else ''}{self.ident}"
        return head + (" subtree" if self.subtree else "") + (f" kinds={','.join(self.kinds)}" if self.kinds else "")


@dataclass(frozen=True)
class ResyncOutcome:
    """What a resync came to (:func:`run_resync`); its summary is :meth:`as_summary`.

    Attributes:
        run_id: the ``run`` row (``None`` for a dry run).
        audit_id: the ``audit`` row (``None`` for a dry run).
        status: ``success``, ``partial`` (repairs failed, or stopped) or ``failed``.
        target: what was resynced (:meth:`Target.describe`).
        dry_run: only the plan was made.
        found: the findings, counted (with their planned or taken action).
        compared: kind → ``local`` / ``registry`` / ``pairs`` (records read and paired).
        seconds: the resync's duration.
        error: what failed or stopped it (masked), or ``None``.
    """

    run_id: int | None
    audit_id: int | None
    status: str
    target: str
    dry_run: bool
    found: FindingCounts
    compared: dict[str, dict[str, int]]
    seconds: float
    error: str | None = None

    def as_summary(self) -> dict[str, Any]:
        """The resync's summary (:func:`run_resync` lists its keys), plain data for ``--json`` and the ``run``
        row."""
        found = self.found
        summary: dict[str, Any] = {
            "run_id": self.run_id, "audit_id": self.audit_id, "status": self.status, "target": self.target,
            "dry_run": self.dry_run, "discrepancies": found.discrepancies, "repaired": found.repaired,
            "queued": found.queued, "requeued": found.requeued, "by_entity": found.by_entity,
            "actions": found.actions, "compared": self.compared, "compared_total": compared_total(self.compared),
            "listed": found.listed, "seconds": self.seconds}
        if self.error is not None:
            summary["error"] = self.error
        return summary

    def audit_details(self) -> dict[str, Any]:
        """The completed audit row's details: the run, its state and what it found and did."""
        found = self.found
        return {"run_id": self.run_id, "state": self.status, "discrepancies": found.discrepancies,
                "repaired": found.repaired, "queued": found.queued, "requeued": found.requeued,
                "actions": found.actions, "compared_total": compared_total(self.compared)}


class ScopeReader:
    """The local ids of a :class:`Target`, kind by kind, in pages (the orgs of a subtree held, as ids only)."""

    def __init__(self, conn: Connection, target: Target) -> None:
        self.conn = conn
        self.t = target
        self.unlinked_registry: list[str] = []

    def volunteers(self) -> list[int]:
        """The person's local rows.

        Raises:
            ResyncUsageError: no such volunteer.
        """
        t = self.t
        if t.id_number:
            norm = try_normalize_id_number(t.id_type, t.id_number)
            if norm is None:
                raise ResyncUsageError(N_("{id_number} is not a valid {id_type} number"),
                                       id_number=mask_id_number(t.id_number.strip()), id_type=t.id_type)
            ids = volunteer_ids_with_id_number(self.conn, t.id_type, norm)
        elif t.registry_id:
            ids = linked_local_ids(self.conn, "volunteer", str(t.ident))
            if not ids:
                self.unlinked_registry.append(str(t.ident))
        else:
            ids = existing_ids(self.conn, "volunteer", self._local_id("volunteer", t.ident))
        if not ids and not self.unlinked_registry:
            raise ResyncUsageError(N_("no volunteer {ident} in the local store"),
                                   ident=t.describe().split(":", 1)[1])
        return ids

    def _local_id(self, kind: str, ident: str | None) -> int:
        """The local id of ``ident``: the platform's key of the record (an org code beside a mapped platform whose
        orgs are keyed by code, issue 14), else a local id (a whole number).

        Raises:
            ResyncUsageError: neither.
        """
        found = local_id_of(self.conn, kind, str(ident or ""))
        return _int(ident) if found is None else found

    def orgs(self) -> list[int]:
        """The org, and with ``subtree`` its descendants (ids only; orgs are few).

        Raises:
            ResyncUsageError: no such org.
        """
        t = self.t
        if t.registry_id:
            roots = linked_local_ids(self.conn, "org", str(t.ident))
            if not roots:
                self.unlinked_registry.append(str(t.ident))
                return []
        else:
            roots = existing_ids(self.conn, "org", self._local_id("org", t.ident))
        if not roots:
            raise ResyncUsageError(N_("no org {ident} in the local store"), ident=t.ident)
        out, level = list(roots), list(roots)
        for _ in range(MAX_DEPTH if t.subtree else 0):
            level = org_children(self.conn, level)
            if not level:
                break
            out += level
        return sorted(set(out))

    def region(self) -> str:
        """The region's prefix (:func:`regsync.flows.reconcile.check_region`: ``230100`` → ``2301``, the whole city),
        once the store is known to hold something in it.

        Raises:
            ResyncUsageError: a malformed code, or no org, volunteer or activity of the local store has a region
                code in it (a resync reads no export: it would compare nothing).
        """
        try:
            prefix = check_region(self.t.ident) or ""
        except ValueError as exc:
            raise ResyncUsageError(str(exc)) from None
        if region_holds_records(self.conn, prefix):
            return prefix
        raise ResyncUsageError(N_("region {code}: no org, volunteer or activity of the local store lies in it "
                                  "(an unknown or empty region)"), code=self.t.ident)

    def pages(self) -> Iterator[tuple[str, list[int]]]:
        """``(kind, local ids)`` pages in reference order, of the target's kinds (all when it names none)."""
        wanted = set(self.t.kinds or KIND_ORDER)
        yield from ((kind, ids) for kind, ids in self._pages() if kind in wanted)

    def _pages(self) -> Iterator[tuple[str, list[int]]]:
        t = self.t
        wanted = set(t.kinds or KIND_ORDER)
        if t.scope == "volunteer":
            vols = self.volunteers()
            if vols:
                yield "volunteer", vols
                for kind in _OF_VOLUNTEER:
                    if kind in wanted:
                        yield from ((kind, p) for p in ids_of_volunteers(self.conn, kind, vols))
            return
        if t.scope == "org":
            orgs = self.orgs()
            if not orgs:
                return
            for i in range(0, len(orgs), BATCH):
                yield "org", orgs[i:i + BATCH]
            if not t.subtree:
                return
            for kind in _OF_ORG:
                if kind in wanted:
                    yield from ((kind, p) for p in ids_of_orgs(self.conn, kind, orgs))
            return
        region = check_region(t.ident) or ""
        for kind in KIND_ORDER:
            if kind in wanted:
                yield from ((kind, p) for p in ids_in_region(self.conn, kind, region))


#: A person's records, in reference order (a volunteer scope).
_OF_VOLUNTEER = ("membership", "service_record", "training_record", "commendation", "evaluation")
#: An org subtree's records, in reference order.
_OF_ORG = ("membership", "activity", "service_record", "training", "training_record", "commendation", "evaluation")


def _int(value: str | None) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ResyncUsageError(N_("{value!r} is not a local id (a whole number); pass --registry-id for a "
                                  "registry id"), value=value) from None


def run_resync(settings: Settings, target: Target, *, reason: str, actor: str | None = None,
               dry_run: bool = False, engine: Engine | None = None,
               stop: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any]]:
    """Resync one scope (module docstring), audited.

    Args:
        settings: regsync's settings.
        target: what to resync.
        reason: why (required; goes to the audit table, masked).
        actor: who (default: the OS user).
        dry_run: print the plan only; write nothing (no run, no audit row).
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between pages; true ends the resync early (``partial``, exit code 130).

    Returns:
        (exit code, summary): ``run_id`` (``None`` for a dry run), ``audit_id``, ``status``, ``target``,
        ``dry_run``, ``discrepancies``, ``repaired``, ``queued`` and ``requeued`` (kind → count, as
        :func:`regsync.flows.reconcile.run_reconcile` counts them), ``by_entity``, ``compared``,
        ``compared_total`` (how many records were compared, :func:`regsync.flows.reconcile.compared_total`),
        ``actions``, ``listed`` (the findings, masked, with their planned or taken action), ``seconds``.

    Raises:
        OperatorUsageError: an empty reason.
        ResyncUsageError: the target names nothing (a region: none of the store's orgs, volunteers or activities lies
            in it), is malformed, or lies outside the client's province.
        ConfigError: incomplete registry settings or a bad database URL.
        StoreError: the local store is unusable.
    """
    reason = check_reason(reason)
    if target.scope not in ("volunteer", "org", "region"):
        raise ResyncUsageError(N_("the scope is volunteer, org or region"))
    if target.scope == "region":
        try:
            check_region(target.ident, settings.province)
        except ValueError as exc:
            raise ResyncUsageError(str(exc)) from None
    with run_store(settings, engine) as engine:
        started = time.monotonic()
        who = mask_text((actor or default_actor()).strip() or "unknown")[:64]
        with engine.connect() as conn:  # check the target before anything is recorded
            first_pages = ScopeReader(conn, target)
            if target.scope == "volunteer":
                first_pages.volunteers()
            elif target.scope == "org":
                first_pages.orgs()
            else:
                first_pages.region()
        with RecordedRun(engine, "resync", record=not dry_run) as run:
            return _resync(settings, engine, run, target, dry_run=dry_run, stop=stop, started=started, who=who,
                           reason=reason)


def _resync(settings: Settings, engine: Engine, run: RecordedRun, target: Target, *, dry_run: bool,
            stop: Callable[[], bool] | None, started: float, who: str, reason: str) -> tuple[int, dict[str, Any]]:
    """The resync of :func:`run_resync`, its target checked, in its recorded run (none for a dry run)."""
    run_id, audit_id = run.run_id, None
    if run_id is not None:
        audit_id = start_resync_audit(engine, actor=who, target=target.describe(), reason=mask_text(reason),
                                      run_id=run_id)
    recorder = Recorder(engine, run_id, dry_run=dry_run)
    status, code, error = "success", 0, None
    rc: Reconciler | None = None
    try:
        with RegistryClient(settings.registry, province=settings.province) as client:
            rc = Reconciler(engine, client, settings, recorder, repair=not dry_run, plan=dry_run, stop=stop)
            with engine.connect() as conn:
                reader = ScopeReader(conn, target)
                for kind, ids in reader.pages():  # keyset pages, each read in its own short transaction
                    items = local_items(conn, kind, ids)
                    conn.rollback()
                    rc.compare_by_lookup(kind, items)
                    if rc.stop():
                        status, code, error = "partial", 130, "interrupted"
                        break
                unlinked_registry = list(reader.unlinked_registry)
            for rid in unlinked_registry:
                one: Kind = "volunteer" if target.scope == "volunteer" else "org"
                recs = client.lookup(one, [rid])
                if not recs:
                    raise ResyncUsageError(N_("no {kind} {registry_id} in the registry nor in the local store"), kind=one,
                                           registry_id=rid)
                rc.compared[one]["registry"] += 1
                rc.one_sided.registry_only(one, recs)
            recorder.flush()
    except ResyncUsageError:
        run.finish("failed", {"error": "unknown target"})
        raise
    except Exception as exc:  # noqa: BLE001 — the run is recorded as failed and reported
        log.error("resync failed", error=mask_text(str(exc)))
        status, code, error = "failed", 1, str(exc)
    if rc is not None and rc.repair_errors and status == "success":
        status = "partial"
    outcome = ResyncOutcome(
        run_id=run_id, audit_id=audit_id, status=status, target=target.describe(), dry_run=dry_run,
        found=recorder.counts(), compared={k: dict(v) for k, v in (rc.compared.items() if rc else [])},
        seconds=round(time.monotonic() - started, 3), error=mask_text(error) if error else None)
    summary = outcome.as_summary()
    run.finish(status, {k: v for k, v in summary.items() if k != "listed"})
    if run_id is not None:
        finish_resync_audit(engine, audit_id, outcome.audit_details())
    return code, summary


__all__ = ["ResyncOutcome", "ResyncUsageError", "ScopeReader", "Target", "run_resync"]
