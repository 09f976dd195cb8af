"""Reconcile (对账, design.md "The three flows", 3): both sides compared in full, every difference classified.

A full reconcile streams, kind by kind (orgs, volunteers, memberships, activities, service records, and with
registry-api.md v1.1 trainings, training records, commendations and evaluations), the
registry's export (registry-api.md §5.2: gzip NDJSON, ascending id compared as bytes) against the local links
in the same order, merge-joined, in flat memory:

* the local side is the ``link`` table of the kind ordered by ``registry_id`` (keyset pages of
  :data:`PAGE` rows), each link joined with its local row, the registry ids of what the row refers to (the
  links of its references) and its org (city and line);
* a registry record and a link with the same id are a **pair**, compared in canonical form
  (:func:`regsync.domain.projection.canonical`: NFKC strings, decimals as integer hundredths, times at second
  precision, lists as sets, personal values as keyed hashes). When the record is still at the link's version,
  the link's base snapshot *is* the registry's record in canonical form (every change makes a new version,
  registry-api.md §1), so the local side is compared with the base and the registry's record is made canonical
  only when they differ or the version moved (the common case of a province in step costs one projection);
* a link with no record in the export is looked up (``POST /lookup``, the exports being separate snapshots):
  found, it is compared like a pair (e.g. a volunteer who moved out of the province); not found, it is a
  ``broken_link``;
* a record of the export with no link is ``missing_locally``, or adoptable when an unlinked local row has its
  natural key (``details.adoptable``; repaired by linking, design.md flow 4);
* unlinked local rows (a second keyset pass over the local table) are ``missing_in_registry``.

Then per person: ``duplicate_person`` (two local rows of one normalized ID, one discrepancy per person) and
``hours_mismatch`` (a person's ACCEPTED hours in the local records against those of the province's service
records in the registry's export, summed through a temporary table so memory stays flat; the registry's
national ``totalHours`` and star level are looked up and shown beside).

The kinds of difference (:data:`KINDS_OF_DISCREPANCY`), each record classified once:

=======================  ===================================================================================
``orphan``               a membership, service record, training, training record, commendation or evaluation
                         whose volunteer, org, activity or training does not exist on its own side (local: a
                         dangling reference; registry: confirmed by ``/lookup``)
``broken_link``          a link whose registry id the registry does not know
``stale_link``           the registry moved a synced field since the link's base snapshot (a new version from a
                         derived field alone, such as ``totalHours``, is not one)
``field_mismatch``       the two sides differ on synced fields (``fields``) and the registry did not move
``missing_in_registry``  a local record with no link
``missing_locally``      a registry record of the province with no link (or whose local row was deleted)
``duplicate_person``     two local volunteer rows of one normalized ID number
``hours_mismatch``       a person's accepted hours differ between the sides
=======================  ===================================================================================

With ``repair``, each discrepancy gets the fix policy allows (``action``/``action_state`` in the
``discrepancy`` table): ``push`` (an outbox row: the relay sends the local state), ``pull`` (the registry's
record merged into, or created as, the local row, three-way with the link's base and the ``[merge]`` policies;
``manual`` fields become conflicts and the discrepancy is ``held``), ``relink`` (a broken link dropped and the
record queued for creation, or an adoptable pair linked). ``duplicate_person``, ``orphan`` and
``hours_mismatch`` are never repaired automatically (``none``/``not_allowed``: people decide; hours follow from
the service records' repairs). Repairs are only DB transactions and outbox rows, safe while the daemon runs.
The summary counts each fix as what it is: ``repaired`` (done by the run: pulled, linked), ``queued`` (an outbox
row: in the registry once the relay sends it), ``requeued`` (queued again although the registry refused the
record's last push on its data, ``details.refused_before``: it fails again unless the data changed).

Every run is a row of ``run`` (kind ``reconcile``) with its summary; every discrepancy a row of
``discrepancy`` with masked details (design.md, "Personal data").

Where the code is: this module walks the sides (:class:`Reconciler`) and runs a reconcile
(:func:`run_reconcile`); its parts are modules of their own, each read top to bottom: the comparison of linked
pairs (:mod:`~regsync.flows.reconcile_pairs`), the one-sided findings and duplicates
(:mod:`~regsync.flows.reconcile_onesided`), the repairs (:mod:`~regsync.flows.reconcile_repairs`), the hours view
(:mod:`~regsync.flows.reconcile_hours`), the findings and their recorder (:mod:`~regsync.flows.reconcile_findings`)
and where a record lies (:mod:`~regsync.flows.reconcile_places`). Every statement they run is the store's: the local
items and a resync's scope (:mod:`regsync.db.platform.scan`), the per-person sums (:mod:`regsync.db.platform.totals`),
the hours staging and link look-ups (:mod:`regsync.db.reconcile`), the outbox rows of a repair
(:mod:`regsync.db.repairs`) and the discrepancy rows (:mod:`regsync.db.discrepancies`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine

from regsync.db.feed import clear_reconcile_due, reconcile_due
from regsync.db.platform.scan import (
    ORPHAN_REFS,
    LocalItem,
    backfill_id_number_norm,
    iter_link_groups,
    iter_unlinked,
    local_items,
)
from regsync.db.repairs import REQUEUED_NOTE, refused_before
from regsync.domain.kinds import KIND_ALIASES, KIND_NAMES, KINDS
from regsync.domain.masking import mask_text
from regsync.flows.apply import LocalWriter
from regsync.flows.reconcile_findings import Finding, FindingCounts, Mode, Recorder
from regsync.flows.reconcile_hours import HoursView
from regsync.flows.reconcile_onesided import OneSided
from regsync.flows.reconcile_pairs import PairComparison
from regsync.flows.reconcile_places import Places, city_of
from regsync.flows.reconcile_repairs import Repairs
from regsync.flows.runs import Advance, RecordedRun, no_progress, run_store
from regsync.registry.client import RegistryClient
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import ConfigError, Settings

log = structlog.get_logger(__name__)

KIND_ORDER: tuple[str, ...] = KINDS
#: The kinds of discrepancy (the ``discrepancy.kind`` column), reconcile's and adopt's.
KINDS_OF_DISCREPANCY: tuple[str, ...] = (
    "missing_in_registry", "missing_locally", "field_mismatch", "stale_link", "broken_link", "hours_mismatch",
    "duplicate_person", "orphan", "ambiguous_match")
#: Registry records per compared batch (the local side's keyset pages: :data:`regsync.db.platform.scan.PAGE`).
BATCH = 500


def parse_kinds(values: Sequence[str] | None) -> list[str]:
    """The kinds to reconcile, in reference order, from names such as ``volunteers`` or ``service_records``.

    Raises:
        ValueError: an unknown name.
    """
    if not values:
        return list(KIND_ORDER)
    out: set[str] = set()
    for v in values:
        for part in v.split(","):
            name = part.strip().lower()
            if name not in KIND_ALIASES:
                raise ValueError(f"unknown kind {part!r}: {', '.join(KIND_NAMES[k] for k in KIND_ORDER)}")
            out.add(KIND_ALIASES[name])
    return [k for k in KIND_ORDER if k in out]


def check_region(region: str | None, province: str | None = None) -> str | None:
    """The prefix that every region code inside a GB/T 2260 region starts with, or ``None``.

    A region is a province, a prefecture-level city or a county-level unit, given as its 2, 4 or 6 digits or as
    its full six-digit code: ``23`` or ``230000`` is the province (prefix ``23``), ``2301`` or ``230100`` the
    city with every district and county in it (prefix ``2301``), ``230102`` one district. Records lie in it by
    their ``regionCode`` (registry-api.md §4.1: a six-digit GB/T 2260 code), so a city's full code selects the
    whole city on both organization lines, not only the records coded at city level.

    Args:
        region: the operator's code (surrounding spaces allowed), or ``None`` (no region: everything).
        province: the client's two-digit province (registry-api.md §1: a client serves one province); a region
            outside it is refused.

    Returns:
        The prefix (2, 4 or 6 digits), or ``None`` for ``None``.

    Raises:
        ValueError: not 2, 4 or 6 digits, a six-digit code that is no region (``230001``: trailing digits of a
            level with a ``00`` level above them), or a region outside ``province``; the message names the code.
    """
    if region is None:
        return None
    given = region.strip()
    if not given.isdigit() or len(given) not in (2, 4, 6):
        raise ValueError(f"the region must be a GB/T 2260 code of 2, 4 or 6 digits (23, 2301, 230100, 230102), "
                         f"got {given!r}")
    prefix = given
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    if prefix.endswith("00") or (len(given) == 6 and given[2:4] == "00" and given[4:] != "00"):
        raise ValueError(f"{given!r} is not a GB/T 2260 region code (no province, city or county has it)")
    if province is not None and not prefix.startswith(province):
        raise ValueError(f"region {given!r} is outside province {province}, the one this client serves")
    return prefix


@dataclass
class Scope:
    """What a reconcile covers: ``kinds`` (in reference order) and an optional ``region`` prefix."""

    kinds: list[str]
    region: str | None = None

    @property
    def full(self) -> bool:
        """Every kind of the whole province (only such a run restarts the change feed)."""
        return self.region is None and list(self.kinds) == list(KIND_ORDER)


@dataclass(frozen=True)
class ReconcileOutcome:
    """What a reconcile run came to (:func:`reconcile_pass`); its summary is :meth:`as_summary` (``code``, the exit
    code, is not part of it: 0 completed, partial included; 1 failed; 130 stopped).

    Attributes:
        run_id: the ``run`` row.
        status: ``success``, ``partial`` (repairs failed, or the run was stopped) or ``failed``.
        kinds: the kinds compared, in reference order.
        region: the region prefix, or ``None`` (the whole province).
        repair: whether fixes were queued.
        found: the findings, counted.
        compared: kind → ``local`` / ``registry`` / ``pairs`` (records read and paired).
        hours: the hours view (per person, and per city and org line in hundredths of an hour); ``{}`` when
            service records were not compared or the run failed.
        snapshot_cursor: the earliest of the exports' snapshot cursors, or ``None``.
        feed_restarted: whether the change feed restarts from it (a full reconcile that was due).
        unknown_types: record types the client does not know, skipped → count (registry-api.md §1).
        unknown_fields: ``"type.field"`` the client does not know, ignored → records.
        seconds: the run's duration.
        error: what failed or stopped the run (masked), or ``None``.
    """

    run_id: int | None
    status: str
    kinds: list[str]
    region: str | None
    repair: bool
    found: FindingCounts
    compared: dict[str, dict[str, int]]
    hours: dict[str, Any]
    snapshot_cursor: str | None
    feed_restarted: bool
    unknown_types: dict[str, int]
    unknown_fields: dict[str, int]
    seconds: float
    error: str | None = None
    code: int = 0

    def as_summary(self) -> dict[str, Any]:
        """The run's summary (:func:`run_reconcile` lists its keys), plain data for ``--json`` and the ``run``
        row."""
        found = self.found
        summary: dict[str, Any] = {
            "run_id": self.run_id, "status": self.status, "kinds": self.kinds, "region": self.region,
            "repair": self.repair, "discrepancies": found.discrepancies, "by_entity": found.by_entity,
            "by_city": found.by_city, "by_org_line": found.by_org_line, "repaired": found.repaired,
            "queued": found.queued, "requeued": found.requeued, "actions": found.actions,
            "compared": self.compared, "compared_total": compared_total(self.compared), "hours": self.hours,
            "snapshot_cursor": self.snapshot_cursor, "feed_restarted": self.feed_restarted,
            "unknown_types": self.unknown_types, "unknown_fields": self.unknown_fields, "listed": found.listed,
            "seconds": self.seconds}
        if self.error is not None:
            summary["error"] = self.error
        return summary


class Reconciler:
    """Compares the sides, records the findings, repairs when asked. One instance per run.

    It walks the sides (a full reconcile merge-joins each kind's export with the local links; a resync looks up
    the registry ids of its pages, :meth:`compare_by_lookup`) and hands each pair and each one-sided record to
    its parts: :attr:`pairs` (:class:`~regsync.flows.reconcile_pairs.PairComparison`), :attr:`one_sided`
    (:class:`~regsync.flows.reconcile_onesided.OneSided`), :attr:`repairs`
    (:class:`~regsync.flows.reconcile_repairs.Repairs`) and :attr:`hours`
    (:class:`~regsync.flows.reconcile_hours.HoursView`).

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient` (``export``, ``lookup``).
        settings: regsync's settings (``province``, ``hash_key``, ``merge``).
        recorder: where findings go.
        repair: queue the fixes policy allows.
        plan: only say which fix each finding would get (``action_state`` ``planned``); change nothing.
        advance: progress callback ``(label, n, total)``.
        stop: polled between batches; true ends the run early.
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, recorder: Recorder, *, repair: bool,
                 plan: bool = False, advance: Callable[..., None] | None = None,
                 stop: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.client = client
        self.rec = recorder
        self.mode = Mode(repair=repair and not plan, plan=plan)
        self.advance = advance or (lambda *a, **k: None)
        self.stop = stop or (lambda: False)
        writer = LocalWriter(engine, client, settings)
        writer.stats.run_id = recorder.run_id
        self.places = Places(client)
        self.repairs = Repairs(engine, settings, writer, recorder.run_id)
        self.one_sided = OneSided(engine, client, settings, recorder, self.places, writer, self.repairs, self.mode)
        self.pairs = PairComparison(engine, settings.hash_key, recorder, self.places, self.one_sided, self.repairs,
                                    self.mode)
        self.hours = HoursView(engine, client, recorder, self.places, self.mode)
        #: kind → ``local`` / ``registry`` / ``pairs``: the records read and paired (:func:`compared_total`)
        self.compared: dict[str, Counter[str]] = defaultdict(Counter)
        #: the exports' ``X-Snapshot-Cursor`` values
        self.cursors: list[str] = []
        self.stopped = False

    @property
    def repair_errors(self) -> int:
        """Repairs that failed (each recorded with its finding)."""
        return self.repairs.errors

    def run_full(self, scope: Scope) -> None:
        """Reconcile ``scope`` from the exports. Sets :attr:`stopped` when ``stop()`` turned true."""
        kinds = scope.kinds
        if "volunteer" in kinds or "service_record" in kinds:
            backfill_id_number_norm(self.engine)
        with ExitStack() as stack:
            if "service_record" in kinds:
                self.hours.open(stack)
            for kind in kinds:
                if self.stopped or self.stop():  # between kinds too, not only between batches
                    self.stopped = True
                    break
                self._reconcile_kind(kind, scope.region)
            if not self.stopped and "volunteer" in kinds:
                self.one_sided.duplicate_persons(scope.region)
            if not self.stopped and "service_record" in kinds:
                self.hours.mismatches(scope.region)
        self.rec.flush()

    def _reconcile_kind(self, kind: str, region: str | None) -> None:
        """One kind: its export merge-joined with the local links (both in ascending registry id), compared in
        batches of :data:`BATCH`; then the local rows no link names."""
        if kind not in ("org", "volunteer"):
            self.places.load()
        if kind == "training_record":
            self.places.load_trainings()
        with self.client.export(as_kind(kind)) as ex:
            if ex.snapshot_cursor is not None:
                self.cursors.append(ex.snapshot_cursor)
            ex.lazy = True  # fields decoded when read: a pair in step needs only id and version
            reg_iter: Iterator[dict[str, Any]] = iter(ex)
            if kind == "org":
                reg_iter = self.places.note_orgs(reg_iter)
            elif kind == "training":
                reg_iter = self.places.note_trainings(reg_iter)
            if region:
                reg_iter = (r for r in reg_iter if (self.places.region_of(kind, r) or "").startswith(region))
            if kind == "service_record":
                reg_iter = self.hours.stage_service_records(reg_iter)
            elif kind == "volunteer" and self.hours.staging:
                reg_iter = self.hours.stage_volunteers(reg_iter)
            loc_iter = iter_link_groups(self.engine, kind, region)
            pairs: list[tuple[list[LocalItem], dict[str, Any]]] = []
            unseen: list[tuple[str, list[LocalItem]]] = []
            unlinked: list[dict[str, Any]] = []
            rec = next(reg_iter, None)
            loc = next(loc_iter, None)
            while rec is not None or loc is not None:
                if loc is None or (rec is not None and rec["id"] < loc[0]):
                    assert rec is not None
                    unlinked.append(rec)
                    self.compared[kind]["registry"] += 1
                    rec = next(reg_iter, None)
                elif rec is None or loc[0] < rec["id"]:
                    unseen.append(loc)
                    self.compared[kind]["local"] += sum(1 for it in loc[1] if it.exists)
                    loc = next(loc_iter, None)
                else:
                    pairs.append((loc[1], rec))
                    self.compared[kind]["registry"] += 1
                    self.compared[kind]["local"] += sum(1 for it in loc[1] if it.exists)
                    self.compared[kind]["pairs"] += 1
                    rec = next(reg_iter, None)
                    loc = next(loc_iter, None)
                if len(pairs) >= BATCH or len(unseen) >= BATCH or len(unlinked) >= BATCH:
                    self._flush_batches(kind, pairs, unseen, unlinked)
                    if self.stop():
                        self.stopped = True
                        return
            self._flush_batches(kind, pairs, unseen, unlinked)
        page: list[LocalItem] = []
        for item in iter_unlinked(self.engine, kind, region):
            self.compared[kind]["local"] += 1
            page.append(item)
            if len(page) >= BATCH:
                self.one_sided.missing_in_registry(kind, page)
                page = []
        self.one_sided.missing_in_registry(kind, page)
        self.rec.flush()

    def _flush_batches(self, kind: str, pairs: list[Any], unseen: list[Any], unlinked: list[Any]) -> None:
        """Compare a batch: links with no record in the export looked up (found: a pair; not: a broken link),
        the pairs, the registry's records with no link; the lists are emptied."""
        n = len(pairs) + len(unseen) + len(unlinked)
        if unseen:
            found = {r["id"]: r for r in self.client.lookup(as_kind(kind), [rid for rid, _ in unseen])}
            for rid, items in unseen:
                if rid in found:
                    pairs.append((items, found[rid]))
                else:
                    self.one_sided.broken_link(kind, rid, items)
        if pairs:
            self.pairs.compare_pairs(kind, pairs)
        if unlinked:
            self.one_sided.registry_only(kind, unlinked)
        pairs.clear()
        unseen.clear()
        unlinked.clear()
        self.advance(kind, n)

    def compare_by_lookup(self, kind: str, items: list[LocalItem]) -> None:
        """Compare one page of local items through ``/lookup`` of their registry ids (a resync reads no export):
        unlinked items are ``missing_in_registry``, ids the registry does not know ``broken_link``, the rest
        pairs."""
        groups: dict[str, list[LocalItem]] = defaultdict(list)
        unlinked = [it for it in items if it.row.get("_rid") is None]
        self.compared[kind]["local"] += len(unlinked)
        self.one_sided.missing_in_registry(kind, unlinked)
        for it in items:
            if it.row.get("_rid") is not None:
                groups[it.row["_rid"]].append(it)
        if not groups:
            return
        found = {r["id"]: r for r in self.client.lookup(as_kind(kind), list(groups))}
        pairs = []
        for rid, group in groups.items():
            group.sort(key=lambda it: (bool(it.row["_dup"]), it.local_id))
            self.compared[kind]["local"] += len(group)
            if rid in found:
                self.compared[kind]["pairs"] += 1
                self.compared[kind]["registry"] += 1
                pairs.append((group, found[rid]))
            else:
                self.one_sided.broken_link(kind, rid, group)
        self.pairs.compare_pairs(kind, pairs)


def earliest_cursor(cursors: Sequence[str]) -> str | None:
    """The earliest of the exports' ``X-Snapshot-Cursor`` values (numeric ones compared as numbers)."""
    if not cursors:
        return None
    if all(c.isdigit() for c in cursors):
        return min(cursors, key=int)
    return cursors[0]


# --------------------------------------------------------------------------------------------------- entry point


def run_reconcile(settings: Settings, *, kinds: Sequence[str] | None = None, region: str | None = None,
                  repair: bool = False, progress: Advance | None = None, engine: Engine | None = None,
                  stop: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any]]:
    """One reconcile (design.md, flow 3), recorded as a run of kind ``reconcile`` with its discrepancies.

    Args:
        settings: regsync's settings (registry, database, ``province``, ``hash_key``, ``[merge]`` policies).
        kinds: kinds to compare (``orgs``, ``volunteers``, ``memberships``, ``activities``, ``service_records``;
            default all).
        region: a GB/T 2260 region of the client's province (:func:`check_region`: ``2301`` or ``230100`` is the
            whole city); only records of that region (an org's, an activity's or a volunteer's ``regionCode``; a
            membership's and a service record's org's), on both organization lines.
        repair: queue the fixes policy allows (module docstring); otherwise only report.
        progress: called as records are compared (:class:`regsync.flows.runs.Advance`); default: nothing drawn.
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between batches; when true the run ends early (``partial``, exit code 130).

    Returns:
        (exit code, summary). The summary: ``run_id``, ``status`` (``success``; ``partial`` when repairs failed
        or the run was stopped; ``failed``), ``discrepancies`` (kind → count), ``repaired`` (kind → count of
        fixes the run made itself: pulled, linked), ``queued`` (kind → count of fixes queued for the relay: in the
        registry only once it sends them), ``requeued`` (kind → count of those queued again although the registry
        refused the record's last push on its data: they fail again unless the data changed), ``by_entity``,
        ``by_city``, ``by_org_line``, ``actions`` (action → state → count), ``compared`` (entity → local /
        registry / pairs), ``compared_total`` (:func:`compared_total`: how many records were compared, all kinds
        together), ``hours`` (per city and org line, hundredths of an hour), ``snapshot_cursor``,
        ``feed_restarted``, ``unknown_types`` (export lines and lookup results of record types this client does
        not know, skipped, by type) and ``unknown_fields`` (fields it does not know, ignored, ``"type.field"`` →
        records; registry-api.md §1), ``listed`` (the first findings, masked), ``seconds``.
        Exit code 0 when the run completed (partial included), 1 when it failed, 130 when stopped.

    Raises:
        ConfigError: incomplete registry settings, a bad database URL, an unknown kind or region.
        StoreError: the local store is unusable.
    """
    outcome = reconcile_pass(settings, kinds=kinds, region=region, repair=repair, progress=progress, engine=engine,
                             stop=stop)
    return outcome.code, outcome.as_summary()


def reconcile_pass(settings: Settings, *, kinds: Sequence[str] | None = None, region: str | None = None,
                  repair: bool = False, progress: Advance | None = None, engine: Engine | None = None,
                  stop: Callable[[], bool] | None = None) -> ReconcileOutcome:
    """:func:`run_reconcile`'s run, its outcome as a :class:`ReconcileOutcome` (the daemon's nightly job reads it);
    the same arguments, checks and errors."""
    try:
        scope = Scope(parse_kinds(kinds), check_region(region, settings.province))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    with run_store(settings, engine) as store, RecordedRun(store, "reconcile") as run:
        return _reconcile(settings, store, run, scope, repair=repair, progress=progress, stop=stop)


def _reconcile(settings: Settings, engine: Engine, run: RecordedRun, scope: Scope, *, repair: bool,
               progress: Advance | None, stop: Callable[[], bool] | None) -> ReconcileOutcome:
    """The reconcile of :func:`run_reconcile`, in its recorded run on a checked store."""
    started = time.monotonic()
    run_id = run.run_id
    assert run_id is not None  # a reconcile is always recorded
    recorder = Recorder(engine, run_id)
    status, code, error = "success", 0, None
    rc: Reconciler | None = None
    feed_restarted = False
    try:
        with RegistryClient(settings.registry, province=settings.province) as client:
            rc = Reconciler(engine, client, settings, recorder, repair=repair, advance=progress or no_progress,
                            stop=stop)
            rc.run_full(scope)
            if rc.stopped:
                status, code, error = "partial", 130, "interrupted"
            elif scope.full:
                feed_restarted = _restart_feed(engine, rc.cursors)
    except Exception as exc:  # noqa: BLE001 — the run is recorded as failed and reported
        log.error("reconcile failed", error=mask_text(str(exc)))
        status, code, error = "failed", 1, str(exc)
        try:
            recorder.flush()
        except Exception as exc2:  # noqa: BLE001 — the store itself may be what failed
            log.warning("reconcile: findings not written", error=mask_text(str(exc2)))
    if rc is not None and rc.repair_errors and status == "success":
        status = "partial"
    outcome = ReconcileOutcome(
        run_id=recorder.run_id, status=status, kinds=scope.kinds, region=scope.region, repair=repair,
        found=recorder.counts(), compared={k: dict(v) for k, v in (rc.compared.items() if rc else [])},
        hours=_hours(rc, scope, status), snapshot_cursor=earliest_cursor(rc.cursors) if rc else None,
        feed_restarted=feed_restarted, **unknown_summary(rc.client if rc else None),
        seconds=round(time.monotonic() - started, 3), error=mask_text(error) if error else None, code=code)
    summary = outcome.as_summary()
    run.finish(status, {k: v for k, v in summary.items() if k != "listed"})
    return outcome


def _restart_feed(engine: Engine, cursors: Sequence[str]) -> bool:
    """Restart the change feed from the earliest snapshot cursor when a full reconcile was due (design.md, flow 2)."""
    earliest = earliest_cursor(cursors)
    if earliest is None:
        return False
    with engine.begin() as conn:
        if reconcile_due(conn) is None:
            return False
        clear_reconcile_due(conn, earliest)
    log.info("reconcile: the change feed restarts from the exports' snapshot", cursor=earliest)
    return True


def _hours(rc: Reconciler | None, scope: Scope, status: str) -> dict[str, Any]:
    """The summary's ``hours`` (:meth:`~regsync.flows.reconcile_hours.HoursView.section`) when service records
    were compared and the run did not fail; ``{}`` otherwise or when it cannot be read."""
    if rc is not None and "service_record" in scope.kinds and status != "failed":
        try:
            return rc.hours.section(scope.region)
        except Exception as exc:  # noqa: BLE001 — the hours view is extra; the findings stand
            log.warning("reconcile: hours section failed", error=mask_text(str(exc)))
    return {}


def unknown_summary(client: Any) -> dict[str, dict[str, int]]:
    """``{"unknown_types": {type: n}, "unknown_fields": {"type.field": n}}`` of a run's own client: what its
    answers held of record types and fields this client does not know, skipped or ignored (registry-api.md §1),
    for the run's summary (reconcile, adopt). Empty for a client that keeps no counts."""
    unknown = getattr(getattr(client, "stats", None), "unknown", None)
    counts = unknown.as_dict() if unknown is not None else {"types": {}, "fields": {}}
    return {"unknown_types": counts["types"], "unknown_fields": counts["fields"]}


def compared_total(compared: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """How many records a reconcile or resync compared, all kinds together.

    Args:
        compared: kind → ``{"local", "registry", "pairs"}`` counts (:attr:`Reconciler.compared`).

    Returns:
        ``{"records": local + registry, "local": …, "registry": …, "pairs": …}``: ``local`` the local rows read,
        ``registry`` the registry records read, ``pairs`` the local–registry pairs among them. ``records`` is 0
        exactly when the run compared nothing.
    """
    local = sum(int(c.get("local", 0)) for c in compared.values())
    registry = sum(int(c.get("registry", 0)) for c in compared.values())
    pairs = sum(int(c.get("pairs", 0)) for c in compared.values())
    return {"records": local + registry, "local": local, "registry": registry, "pairs": pairs}


__all__ = [
    "BATCH",
    "KINDS_OF_DISCREPANCY",
    "KIND_ALIASES",
    "KIND_ORDER",
    "ORPHAN_REFS",
    "REQUEUED_NOTE",
    "Finding",
    "LocalItem",
    "Recorder",
    "ReconcileOutcome",
    "reconcile_pass",
    "Reconciler",
    "Scope",
    "backfill_id_number_norm",
    "check_region",
    "city_of",
    "compared_total",
    "earliest_cursor",
    "iter_link_groups",
    "iter_unlinked",
    "local_items",
    "parse_kinds",
    "refused_before",
    "run_reconcile",
    "unknown_summary",
]
