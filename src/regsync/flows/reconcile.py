"""Reconcile (对账, design.md "The three flows", 3): both sides compared in full, every difference classified.

A full reconcile streams, kind by kind (orgs, volunteers, memberships, activities, service records), the
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
``orphan``               a membership or service record whose volunteer, org or activity does not exist on
                         its own side (local: a dangling reference; registry: confirmed by ``/lookup``)
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
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine

from regsync.db.discrepancies import discrepancy_row, insert_discrepancies
from regsync.db.feed import clear_reconcile_due, reconcile_due
from regsync.db.hashkey import check_hash_key
from regsync.db.history import reused_keys
from regsync.db.holds import held_keys
from regsync.db.models import REGISTRY_OWNED
from regsync.db.platform.scan import (
    ORPHAN_REFS,
    LocalItem,
    backfill_id_number_norm,
    iter_link_groups,
    iter_unlinked,
    local_items,
    uses_c_order,
)
from regsync.db.platform.totals import linked_primary_volunteers, local_hours_by_person, org_hours, shared_id_numbers
from regsync.db.reconcile import (
    drop_hours_staging,
    link_id,
    linked_registry_ids,
    open_hours_staging,
    stage_registry_hours,
    stage_registry_persons,
    staged_hours_by_person,
)
from regsync.db.repairs import REQUEUED_NOTE, mark_requeued, queue_repair, refused_before, relink_as_new
from regsync.db.runs import finish_run, start_run
from regsync.db.session import suppress_outbox
from regsync.db.store import open_store
from regsync.domain.hours import HoursAggregator
from regsync.domain.kinds import KIND_ALIASES, KINDS
from regsync.domain.masking import mask_text
from regsync.domain.merge import shown, take_registry, three_way
from regsync.domain.projection import (
    ENDED,
    FIELDS,
    REFERENCES,
    canonical,
    changed_fields,
    project_local,
    project_registry,
)
from regsync.flows.apply import LocalWriter, Unresolved
from regsync.flows.runs import Advance, no_progress, require_registry
from regsync.registry.client import RegistryClient
from regsync.settings import ConfigError, Settings

log = structlog.get_logger(__name__)

KIND_ORDER: tuple[str, ...] = KINDS
#: The kinds of discrepancy (the ``discrepancy.kind`` column), reconcile's and adopt's.
KINDS_OF_DISCREPANCY: tuple[str, ...] = (
    "missing_in_registry", "missing_locally", "field_mismatch", "stale_link", "broken_link", "hours_mismatch",
    "duplicate_person", "orphan", "ambiguous_match")
#: Registry records per compared batch (the local side's keyset pages: :data:`regsync.db.platform.scan.PAGE`).
BATCH = 500
#: Discrepancy rows written per insert.
FLUSH = 1000
#: Discrepancies kept in the returned summary in detail (all are counted and stored).
LISTED = 200
_LINE = {"REGIONAL": "regional", "SPECIALIZED": "specialized"}
_MISSING = object()


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
                raise ValueError(f"unknown kind {part!r}: orgs, volunteers, memberships, activities, service_records")
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


def city_of(region_code: str | None) -> str | None:
    """The 4-digit city prefix of a GB/T 2260 region code (``230102`` → ``2301``), for the reports."""
    return region_code[:4] if region_code and len(region_code) >= 4 else None


# --------------------------------------------------------------------------------------------------- findings


@dataclass(slots=True)
class Finding:
    """One discrepancy before it is stored (see :class:`regsync.db.models.Discrepancy`)."""

    kind: str
    entity: str
    local_id: int | None = None
    registry_id: str | None = None
    fields: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    city_code: str | None = None
    org_line: str | None = None
    action: str | None = None
    action_state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (masked already) for the summary and ``--json``."""
        return {"kind": self.kind, "entity": self.entity, "local_id": self.local_id,
                "registry_id": self.registry_id, "fields": self.fields, "details": self.details,
                "city_code": self.city_code, "org_line": self.org_line, "action": self.action,
                "action_state": self.action_state}


class Recorder:
    """Counts findings and writes them to ``discrepancy`` in batches of :data:`FLUSH` (flat memory).

    Args:
        engine: the local store.
        run_id: the ``run`` row the findings belong to.
        dry_run: count and list only; write nothing.
    """

    def __init__(self, engine: Engine, run_id: int | None, *, dry_run: bool = False) -> None:
        self.engine = engine
        self.run_id = run_id
        self.dry_run = dry_run
        self.by_kind: Counter[str] = Counter()
        self.by_entity: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_city: Counter[str] = Counter()
        self.by_line: Counter[str] = Counter()
        #: findings fixed by the run itself (``done``: pulled, linked)
        self.repaired: Counter[str] = Counter()
        #: findings whose fix is an outbox row for the relay (``queued``): in the registry once the relay sends it
        self.queued: Counter[str] = Counter()
        #: queued again although the registry refused the record's last push on its data (``requeued``): it fails
        #: again unless the data changed since
        self.requeued: Counter[str] = Counter()
        self.actions: dict[str, Counter[str]] = defaultdict(Counter)
        self.listed: list[dict[str, Any]] = []
        self._buffer: list[dict[str, Any]] = []

    def add(self, f: Finding) -> None:
        """Count ``f`` and queue it for writing."""
        self.by_kind[f.kind] += 1
        self.by_entity[f.entity][f.kind] += 1
        self.by_city[f.city_code or "unknown"] += 1
        if f.org_line:
            self.by_line[f.org_line] += 1
        if f.action:
            self.actions[f.action][f.action_state or "unknown"] += 1
            if f.action_state == "done":
                self.repaired[f.kind] += 1
            elif f.action_state == "queued":
                self.queued[f.kind] += 1
            elif f.action_state == "requeued":
                self.requeued[f.kind] += 1
        if len(self.listed) < LISTED:
            self.listed.append(f.as_dict())
        if self.dry_run or self.run_id is None:
            return
        self._buffer.append(discrepancy_row(
            self.run_id, entity=f.entity, kind=f.kind, local_id=f.local_id, registry_id=f.registry_id,
            fields=f.fields, details=f.details, city_code=f.city_code, org_line=f.org_line, action=f.action,
            action_state=f.action_state))
        if len(self._buffer) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        """Write the queued findings (one transaction)."""
        if not self._buffer:
            return
        insert_discrepancies(self.engine, self._buffer)
        self._buffer = []


# --------------------------------------------------------------------------------------------------- the reconciler


@dataclass
class Scope:
    """What a reconcile covers: ``kinds`` (in reference order) and an optional ``region`` prefix."""

    kinds: list[str]
    region: str | None = None

    @property
    def full(self) -> bool:
        """Every kind of the whole province (only such a run restarts the change feed)."""
        return self.region is None and list(self.kinds) == list(KIND_ORDER)


class Reconciler:
    """Compares the sides, records the findings, repairs when asked. One instance per run.

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

    def __init__(self, engine: Engine, client: Any, settings: Settings, recorder: Recorder, *, repair: bool,
                 plan: bool = False, advance: Callable[..., None] | None = None,
                 stop: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.key = settings.hash_key
        self.rec = recorder
        self.repair = repair and not plan
        self.plan = plan
        self.advance = advance or (lambda *a, **k: None)
        self.stop = stop or (lambda: False)
        self.writer = LocalWriter(engine, client, settings)
        self.writer.stats.run_id = recorder.run_id
        self.compared: dict[str, Counter[str]] = defaultdict(Counter)
        self.cursors: list[str] = []
        self.stopped = False
        self.repair_errors = 0
        self.org_info: dict[str, tuple[str | None, str | None, str | None]] = {}
        self.reg_hours_by_org: Counter[str] = Counter()
        #: the hours view per person (regsync.domain.hours), filled by :meth:`hours`
        self.hours_view = HoursAggregator()
        self._hours_conn: Connection | None = None
        #: local records already found in this run (adoptable pairs, relinked rows), not to be found again as
        #: ``missing_in_registry`` (bounded by the findings, not by the records)
        self.found_local: set[tuple[str, int]] = set()

    def _no_repair(self) -> tuple[str | None, str | None]:
        """The action of a finding no policy repairs: ``none``/``not_allowed`` when repairing or planning."""
        return ("none", "not_allowed") if (self.repair or self.plan) else (None, None)

    # ------------------------------------------------------------------------------------------ full run
    def run_full(self, scope: Scope) -> None:
        """Reconcile ``scope`` from the exports. Sets :attr:`stopped` when ``stop()`` turned true."""
        kinds = scope.kinds
        if "volunteer" in kinds or "service_record" in kinds:
            backfill_id_number_norm(self.engine)
        with ExitStack() as stack:
            if "service_record" in kinds:
                self._open_hours(stack)
            for kind in kinds:
                if self.stopped or self.stop():  # between kinds too, not only between batches
                    self.stopped = True
                    break
                self._reconcile_kind(kind, scope.region)
            if not self.stopped and "volunteer" in kinds:
                self.duplicate_persons(scope.region)
            if not self.stopped and "service_record" in kinds:
                self.hours(scope.region)
        self.rec.flush()

    def _reconcile_kind(self, kind: str, region: str | None) -> None:
        if kind in ("membership", "activity", "service_record") and not self.org_info:
            self._load_org_info()
        with self.client.export(kind) as ex:
            if ex.snapshot_cursor is not None:
                self.cursors.append(ex.snapshot_cursor)
            ex.lazy = True  # fields decoded when read: a pair in step needs only id and version
            reg_iter: Iterator[dict[str, Any]] = iter(ex)
            if kind == "org":
                reg_iter = self._note_orgs(reg_iter)
            if region:
                reg_iter = (r for r in reg_iter if (self._region_of(kind, r) or "").startswith(region))
            if kind == "service_record":
                reg_iter = self._stage_hours(reg_iter)
            elif kind == "volunteer" and self._hours_conn is not None:
                reg_iter = self._stage_persons(reg_iter)
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
        for item in iter_unlinked(self.engine, kind, region):
            self.compared[kind]["local"] += 1
            self._missing_in_registry(kind, item)
        self.rec.flush()

    def _flush_batches(self, kind: str, pairs: list[Any], unseen: list[Any], unlinked: list[Any]) -> None:
        n = len(pairs) + len(unseen) + len(unlinked)
        if unseen:
            found = {r["id"]: r for r in self.client.lookup(kind, [rid for rid, _ in unseen])}
            for rid, items in unseen:
                if rid in found:
                    pairs.append((items, found[rid]))
                else:
                    self._broken_link(kind, rid, items)
        if pairs:
            self.compare_pairs(kind, pairs)
        if unlinked:
            self._registry_only(kind, unlinked)
        pairs.clear()
        unseen.clear()
        unlinked.clear()
        self.advance(kind, n)

    # ------------------------------------------------------------------------------------------ org info
    def _note_orgs(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for r in recs:
            self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))
            yield r

    def _load_org_info(self) -> None:
        """Every org of the registry's export: region, type, level (bounded by the orgs, ~85 000 a province)."""
        with self.client.export("org") as ex:
            for r in ex:
                self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))

    def _region_of(self, kind: str, rec: dict[str, Any]) -> str | None:
        if kind in ("org", "volunteer", "activity"):
            return rec.get("region_code")
        return (self.org_info.get(rec.get("org_id") or "") or (None,))[0]

    def _where_registry(self, kind: str, rec: dict[str, Any]) -> tuple[str | None, str | None]:
        """(city code, org line) of a registry record."""
        if kind == "volunteer":
            return city_of(rec.get("region_code")), None
        info = self.org_info.get(rec["id"] if kind == "org" else (rec.get("org_id") or ""))
        line = _LINE.get(info[1] or "") if info else None
        region = rec.get("region_code") if kind in ("org", "activity") else (info[0] if info else None)
        return city_of(region), line

    @staticmethod
    def _where_local(kind: str, item: LocalItem) -> tuple[str | None, str | None]:
        r = item.row
        if kind == "volunteer":
            return city_of(r.get("region_code")), None
        region = r.get("region_code") if kind in ("org", "activity") else r.get("_org_region")
        return city_of(region), _LINE.get(r.get("_org_type") or "")

    # ------------------------------------------------------------------------------------------ pairs
    def compare_pairs(self, kind: str, pairs: Sequence[tuple[list[LocalItem], dict[str, Any]]]) -> None:
        """Compare linked records with their registry records; record and (with repair) fix what differs."""
        orphans = self._registry_orphans(kind, [rec for _, rec in pairs])
        with self.engine.connect() as conn:
            # keys deleted and used again for another record, not yet in the registry: their link is the old
            # record's, whose local row is gone (design.md's mapping table); never pulled onto the new row
            reused = reused_keys(conn, kind, [it.local_id for items, _ in pairs for it in items if it.exists])
        for items, rec in pairs:
            primary = next((it for it in items if not it.row["_dup"]), None)
            if rec["id"] in orphans:
                item = primary or items[0]
                self._orphan(kind, rec, item, orphans[rec["id"]], side="registry")
                continue
            if primary is None:
                continue  # only a person's second row is linked here: its profile is never compared
            if not primary.exists or primary.local_id in reused:
                self._local_deleted(kind, primary, rec)
                continue
            missing_refs = [c for c in ORPHAN_REFS.get(kind, ()) if primary.row.get(c) is not None
                            and primary.row.get(f"_has_{c}") is None]
            if missing_refs:
                self._orphan(kind, rec, primary, missing_refs, side="local")
                continue
            self._compare_one(kind, primary, rec)

    def _project_local(self, kind: str, item: LocalItem) -> dict[str, Any]:
        refs = {(ref_kind, item.row[col]): item.row[f"_ref_{col}"]
                for col, ref_kind in REFERENCES[kind].items()
                if item.row.get(col) is not None and item.row.get(f"_ref_{col}") is not None}
        return project_local(kind, item.row, refs)

    def _compare_one(self, kind: str, item: LocalItem, rec: dict[str, Any]) -> None:
        try:
            local = self._project_local(kind, item)
        except ValueError as exc:
            city, line = self._where_local(kind, item)
            self.rec.add(Finding("field_mismatch", kind, item.local_id, rec["id"], [],
                                 {"local_invalid": mask_text(str(exc))}, city, line,
                                 *self._no_repair()))
            return
        c_local = canonical(local, self.key)
        base = orjson.loads(item.row["_base"] or "{}")
        if base and rec.get("version") == item.row["_ver"] and c_local == base:
            # the registry's record at the link's version is the base (every change makes a new version,
            # registry-api.md §1): the sides agree without canonicalizing the registry's record again
            return
        remote = project_registry(kind, rec)
        c_remote = canonical(remote, self.key)
        if c_local == c_remote:
            return
        diff = changed_fields(c_local, c_remote)
        moved = [n for n in FIELDS[kind] if base and base.get(n, _MISSING) != c_remote.get(n)]
        details: dict[str, Any] = {"local": {}, "registry": {},
                                   "versions": {"link": item.row["_ver"], "registry": rec.get("version")}}
        for name in diff:
            details["local"][name] = shown(name, local.get(name), self.key)[0]
            details["registry"][name] = shown(name, remote.get(name), self.key)[0]
        if moved:
            details["registry_moved"] = moved
            finding = Finding("stale_link", kind, item.local_id, rec["id"], moved, details)
        else:
            finding = Finding("field_mismatch", kind, item.local_id, rec["id"], diff, details)
        finding.city_code, finding.org_line = self._where_local(kind, item)
        if self.repair:
            self._repair_linked(kind, item, rec, local, remote, finding)
        elif self.plan:
            self._plan_linked(kind, item, rec, local, remote, finding)
        self.rec.add(finding)

    # ------------------------------------------------------------------------------------------ one-sided
    def _registry_only(self, kind: str, recs: list[dict[str, Any]]) -> None:
        """Registry records with no link: orphans, adoptable pairs, or missing locally."""
        orphans = self._registry_orphans(kind, recs)
        ended = ENDED.get(kind)
        live = []
        for rec in recs:
            if rec["id"] in orphans:
                self._orphan(kind, rec, None, orphans[rec["id"]], side="registry")
            elif kind == "volunteer" and rec.get("home_province") != self.settings.province:
                continue  # fed to the old province after a transfer out; not ours
            elif kind == "service_record" and rec.get("status") == "REVOKED" and self._own(rec):
                continue  # this client's revoked predecessor of a corrected record (revoke + new record)
            else:
                live.append(rec)
        with self.engine.connect() as conn:
            same = {rec["id"]: self.writer.find_same(conn, kind, rec) for rec in live}
        for rec in live:
            city, line = self._where_registry(kind, rec)
            local_id = same.get(rec["id"])
            details: dict[str, Any] = {"status": rec.get("status"), "owner": rec.get("owner_client_id")}
            if local_id is not None:
                details["adoptable"] = True
                self.found_local.add((kind, local_id))
            f = Finding("missing_locally", kind, local_id, rec["id"], [], details, city, line)
            if ended and rec.get("status") == ended and local_id is None:
                details["ended"] = True
            if self.repair or self.plan:
                f.action = "relink" if local_id is not None else "pull"
                if self.plan:
                    f.action_state = "planned"
                else:
                    self._pull_new(kind, rec, f)
            self.rec.add(f)

    def _missing_in_registry(self, kind: str, item: LocalItem) -> None:
        if (kind, item.local_id) in self.found_local:
            return  # found as an adoptable pair already (one finding per record)
        r = item.row
        city, line = self._where_local(kind, item)
        missing_refs = [c for c in ORPHAN_REFS.get(kind, ()) if r.get(c) is not None and r.get(f"_has_{c}") is None]
        if missing_refs:
            self._orphan(kind, None, item, missing_refs, side="local")
            return
        details: dict[str, Any] = {"status": r.get("status")}
        f = Finding("missing_in_registry", kind, item.local_id, None, [], details, city, line)
        if kind == "volunteer" and r.get("home_province") not in (None, self.settings.province):
            return  # another province manages the person (registry-api.md §4.2): not ours to push
        if self.repair or self.plan:
            f.action = "push"
            f.action_state = "planned" if self.plan else self._queue(kind, r, "insert", details)
        self.rec.add(f)

    def _local_deleted(self, kind: str, item: LocalItem, rec: dict[str, Any]) -> None:
        ended = ENDED.get(kind)
        if (ended and rec.get("status") == ended) or (kind == "membership" and rec.get("left_on")):
            return  # ended on both sides
        city, line = self._where_registry(kind, rec)
        f = Finding("missing_locally", kind, item.local_id, rec["id"], [], {"local_deleted": True}, city, line)
        if self.repair or self.plan:
            f.action = "push"  # the relay ends the record (design.md's table of local changes)
            f.action_state = "planned" if self.plan else self._queue(kind, {"id": item.local_id}, "delete",
                                                                     f.details)
        self.rec.add(f)

    def _broken_link(self, kind: str, rid: str, items: list[LocalItem]) -> None:
        primary = next((it for it in items if not it.row["_dup"]), items[0])
        city, line = self._where_local(kind, primary)
        f = Finding("broken_link", kind, primary.local_id, rid, [],
                    {"local_ids": [it.local_id for it in items], "how": primary.row["_how"]}, city, line)
        if self.repair or self.plan:
            f.action = "relink"
            f.action_state = "planned" if self.plan else self._relink(kind, rid, items)
        self.rec.add(f)

    def _orphan(self, kind: str, rec: dict[str, Any] | None, item: LocalItem | None, refs: list[str],
                *, side: str) -> None:
        if rec is not None and item is None:
            city, line = self._where_registry(kind, rec)
        else:
            assert item is not None
            city, line = self._where_local(kind, item)
        details: dict[str, Any] = {"side": side, "missing": refs}
        if rec is not None:
            details["registry_refs"] = {c: rec.get(c) for c in refs}
        f = Finding("orphan", kind, item.local_id if item else None, rec["id"] if rec else None, refs, details,
                    city, line, *self._no_repair())
        self.rec.add(f)

    def _registry_orphans(self, kind: str, recs: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
        """Registry records whose references do not exist in the registry (confirmed by ``/lookup``):
        record id → the reference fields that dangle."""
        cols = ORPHAN_REFS.get(kind)
        if not cols or not recs:
            return {}
        wanted: dict[str, set[str]] = defaultdict(set)
        for rec in recs:
            for c in cols:
                if rec.get(c):
                    wanted[REFERENCES[kind][c]].add(rec[c])
        known: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for ref_kind, ids in wanted.items():
                known[ref_kind] = linked_registry_ids(conn, ref_kind, list(ids))
        for ref_kind, ids in wanted.items():
            rest = sorted(ids - known[ref_kind] - (set(self.org_info) if ref_kind == "org" else set()))
            if rest:
                known[ref_kind] |= {r["id"] for r in self.client.lookup(ref_kind, rest)}
        out: dict[str, list[str]] = {}
        for rec in recs:
            bad = [c for c in cols if rec.get(c) and rec[c] not in known[REFERENCES[kind][c]]]
            if bad:
                out[rec["id"]] = bad
        return out

    # ------------------------------------------------------------------------------------------ per person
    def duplicate_persons(self, region: str | None) -> None:
        """One ``duplicate_person`` per normalized ID number held by two or more local rows (SQL aggregate,
        streamed in keyset pages of the number)."""
        for person in shared_id_numbers(self.engine, region):
            self.rec.add(Finding(
                "duplicate_person", "volunteer", person.local_ids[0], person.registry_ids[0], [],
                {"local_ids": person.local_ids, "id_number": shown("id_number", person.id_number_norm, self.key)[0],
                 "linked": person.registry_ids},
                city_of(person.region_code), None, *self._no_repair()))

    def _open_hours(self, stack: ExitStack) -> None:
        conn = stack.enter_context(self.engine.connect())
        open_hours_staging(conn)
        self._hours_conn = conn

        def drop() -> None:
            try:
                drop_hours_staging(conn)
            except Exception as exc:  # noqa: BLE001 — a temporary table goes with its connection anyway
                log.debug("reconcile: temporary table left to its connection", error=str(exc))

        stack.callback(drop)

    def _stage_hours(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        buf: list[dict[str, Any]] = []
        for r in recs:
            buf.append(r)
            if len(buf) >= FLUSH:
                self.note_registry_hours(buf)
                buf = []
            yield r
        if buf:
            self.note_registry_hours(buf)

    def _stage_persons(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Stage each registry volunteer's region and national ``totalHours`` (hundredths) for the hours view."""
        buf: list[dict[str, Any]] = []
        for r in recs:
            total = r.get("total_hours")  # decoded by the wire adapter: hundredths of an hour
            buf.append({"v": r["id"], "r": r.get("region_code"), "t": int(total) if total is not None else None})
            if len(buf) >= FLUSH and self._hours_conn is not None:
                stage_registry_persons(self._hours_conn, buf)
                buf = []
            yield r
        if buf and self._hours_conn is not None:
            stage_registry_persons(self._hours_conn, buf)

    def note_registry_hours(self, recs: Iterable[dict[str, Any]]) -> None:
        """Stage the ACCEPTED hours of registry service records (per volunteer) in the temporary table."""
        rows = [{"v": r["volunteer_id"], "h": int(r.get("hours") or 0)} for r in recs
                if r.get("status") == "ACCEPTED" and r.get("volunteer_id")]
        for r in recs:
            if r.get("status") == "ACCEPTED" and r.get("org_id"):
                self.reg_hours_by_org[r["org_id"]] += int(r.get("hours") or 0)
        if rows and self._hours_conn is not None:
            stage_registry_hours(self._hours_conn, rows)

    def hours(self, region: str | None) -> None:
        """``hours_mismatch`` per person: local ACCEPTED hours (all the person's rows, through their links)
        against the registry export's, merge-joined by the volunteer's registry id."""
        conn = self._hours_conn
        if conn is None:
            return
        c_order = uses_c_order(conn)
        with self.engine.connect() as lconn:
            local = local_hours_by_person(lconn, region, c_order=c_order)
            regs = staged_hours_by_person(conn, c_order=c_order)
            pending: list[tuple[str, int, int]] = []
            agg = self.hours_view

            def person(a: Any, b: Any) -> None:
                lh, rh = int(a.h or 0) if a is not None else 0, int(b.h or 0) if b is not None else 0
                if a is None and not rh:
                    return  # a registry person with no hours in the province: nothing to show
                region_code = (a.region if a is not None else None) or (b.region if b is not None else None)
                if region and not (region_code or "").startswith(region):
                    return
                line = None if a is None or not lh else ("specialized" if 2 * int(a.spec or 0) > lh else "regional")
                total = int(b.total) if b is not None and b.total is not None else rh
                agg.add(city_of(region_code), line, lh, rh, total)
                if lh != rh:
                    pending.append(((a or b).rid, lh, rh))

            a, b = local.fetchone(), regs.fetchone()
            while a is not None or b is not None:
                if b is None or (a is not None and a.rid < b.rid):
                    person(a, None)
                    a = local.fetchone()
                elif a is None or b.rid < a.rid:
                    person(None, b)
                    b = regs.fetchone()
                else:
                    person(a, b)
                    a, b = local.fetchone(), regs.fetchone()
            local.close()
            regs.close()
        # persons known on one side only are counted; a registry-only person must be linked to count
        for chunk in _chunks(pending, BATCH):
            with self.engine.connect() as lconn:
                linked = linked_primary_volunteers(lconn, [c[0] for c in chunk])
            national = {r["id"]: r for r in self.client.lookup("volunteer", [c[0] for c in chunk if c[0] in linked])}
            for rid, lh, rh in chunk:
                if rid not in linked or lh == rh:
                    continue
                region_code, local_id = linked[rid]
                if region and not (region_code or "").startswith(region):
                    continue
                nat = national.get(rid, {})
                self.rec.add(Finding(
                    "hours_mismatch", "volunteer", local_id, rid, ["hours"],
                    {"local_hours": _h(lh), "registry_hours": _h(rh), "local_hundredths": lh,
                     "registry_hundredths": rh, "registry_total_hours": _h(nat.get("total_hours")),
                     "registry_star_level": nat.get("star_level")},
                    city_of(region_code), None, *self._no_repair()))

    def hours_section(self, region: str | None) -> dict[str, Any]:
        """Per city and per org line: local ACCEPTED hours against the registry export's, in hundredths of an
        hour (a grassroots team's hours count for both lines, registry-api.md §4.1)."""
        by_city: dict[str, dict[str, int]] = defaultdict(lambda: {"local_hours_hundredths": 0,
                                                                  "registry_hours_hundredths": 0})
        by_line: dict[str, dict[str, int]] = defaultdict(lambda: {"local_hours_hundredths": 0,
                                                                  "registry_hours_hundredths": 0})
        with self.engine.connect() as conn:
            for region_code, org_type, level, h in org_hours(conn, region):
                _add_hours(by_city, by_line, region_code, org_type, level, h, "local_hours_hundredths")
        for org_rid, h in self.reg_hours_by_org.items():
            region_code, org_type, level = self.org_info.get(org_rid, (None, None, None))
            if region and not (region_code or "").startswith(region):
                continue
            _add_hours(by_city, by_line, region_code, org_type, level, h, "registry_hours_hundredths")
        total = {"local_hours_hundredths": sum(v["local_hours_hundredths"] for v in by_city.values()),
                 "registry_hours_hundredths": sum(v["registry_hours_hundredths"] for v in by_city.values())}
        out = self.hours_view.as_dict()  # per person (regsync.domain.hours): the report's hours view
        out["by_org"] = {"unit": "hundredths of an hour", "by_city": dict(sorted(by_city.items())),
                         "by_org_line": dict(sorted(by_line.items())), "total": total}
        return out

    # ------------------------------------------------------------------------------------------ repairs
    def _queue(self, kind: str, row: dict[str, Any], op: str, details: dict[str, Any] | None = None) -> str:
        """Queue an outbox row for the relay (``queued``), unless one waits already (``queued`` too).

        Returns ``requeued`` instead when the record's last push was refused on its data (:func:`refused_before`;
        its code goes to ``details["refused_before"]``): the relay sends it again, and it fails again unless the
        data changed since (design.md, flow 1: a refused row waits until the data changes). Returns ``discarded``
        and queues nothing for a record an operator discarded (held until ``outbox restore``)."""
        with self.engine.begin() as conn:
            if held_keys(conn, [(kind, int(row["id"]))]):
                return "discarded"  # an operator keeps it out of sync until `outbox restore` (regsync.db.holds)
            refused = refused_before(conn, kind, int(row["id"]))
            if refused is not None and details is not None:
                details["refused_before"] = refused
            queue_repair(conn, kind, row, op, refused)
        return "queued" if refused is None else "requeued"

    def _repair_linked(self, kind: str, item: LocalItem, rec: dict[str, Any], local: dict[str, Any],
                       remote: dict[str, Any], f: Finding) -> None:
        """Merge a linked pair as policy says: registry-winning fields written locally (``pull``), local-winning
        ones queued (``push``), ``manual`` ones held as conflicts (``held``)."""
        writer = self.writer
        row = {k: v for k, v in item.row.items() if not k.startswith("_")}
        link = {"id": None, "entity": kind, "local_id": item.local_id, "registry_id": rec["id"],
                "registry_version": item.row["_ver"], "base": item.row["_base"], "how": item.row["_how"]}
        version = int(rec.get("version") or 1)
        transferred = kind == "volunteer" and remote.get("home_province") != self.settings.province
        try:
            with self.engine.begin() as conn, suppress_outbox(conn):
                link["id"] = link_id(conn, kind, item.local_id)
                if item.row["_how"] == REGISTRY_OWNED or transferred or (
                        kind == "service_record" and not self._own(rec)):
                    result = take_registry(kind, local, remote, self.key, "reconcile")
                elif kind == "service_record":
                    # never merged: the platform's record is pushed (revoke + a corrected record)
                    if held_keys(conn, [(kind, item.local_id)]):
                        f.action, f.action_state = "push", "discarded"  # held until `outbox restore`
                        return
                    refused = _note_refusal(conn, kind, item.local_id, f)
                    writer.save_link(link, version, canonical(remote, self.key))
                    writer.queue_push(conn, kind, row)
                    writer.flush(conn)  # the writer buffers its writes
                    mark_requeued(conn, kind, item.local_id, refused)
                    f.action, f.action_state = "push", "queued" if refused is None else "requeued"
                    return
                else:
                    base = json.loads(item.row["_base"] or "{}")
                    result = three_way(kind, base, local, remote, writer.policies, self.key)
                writer.write_local(conn, kind, row, result)
                pushed = bool(result.push) and item.row["_how"] != REGISTRY_OWNED and not transferred
                refused = None
                held = pushed and bool(held_keys(conn, [(kind, item.local_id)]))
                if held:  # an operator keeps it out of sync until `outbox restore`: nothing pushed
                    pushed = False
                if pushed:
                    refused = _note_refusal(conn, kind, item.local_id, f)
                    writer.queue_push(conn, kind, row)
                writer.record_conflicts(conn, kind, link, version, result, self.rec.run_id)
                writer.save_link(link, version, result.new_base)
                writer.note(kind, item.local_id, rec["id"], result)
                writer.flush(conn)  # the writer buffers its writes
                mark_requeued(conn, kind, item.local_id, refused)
            f.action = "pull" if result.apply_local else "push" if pushed or held else "none"
            f.action_state = "held" if result.conflicts else "discarded" if held and not result.apply_local else (
                ("queued" if refused is None else "requeued") if pushed else "done")
            if result.conflicts:
                f.details["conflicts"] = sorted(c.field for c in result.conflicts)
        except Exception as exc:  # noqa: BLE001 — one record's repair fails alone, recorded
            self.repair_errors += 1
            f.action = f.action or "pull"
            f.action_state = "failed"
            f.details["repair_error"] = mask_text(str(exc))[:300]
            log.warning("reconcile: repair failed", kind=kind, local_id=item.local_id, error=mask_text(str(exc)))

    def _plan_linked(self, kind: str, item: LocalItem, rec: dict[str, Any], local: dict[str, Any],
                     remote: dict[str, Any], f: Finding) -> None:
        """What :meth:`_repair_linked` would do, without doing it."""
        transferred = kind == "volunteer" and remote.get("home_province") != self.settings.province
        f.action_state = "planned"
        if item.row["_how"] == REGISTRY_OWNED or transferred or (kind == "service_record" and not self._own(rec)):
            f.action = "pull"
        elif kind == "service_record":
            f.action = "push"
        else:
            result = three_way(kind, json.loads(item.row["_base"] or "{}"), local, remote, self.writer.policies,
                               self.key)
            f.action = "pull" if result.apply_local else "push" if result.push else "none"
            if result.conflicts:
                f.details["conflicts"] = sorted(c.field for c in result.conflicts)

    def _own(self, rec: dict[str, Any]) -> bool:
        return bool(self.writer.own_client_id) and rec.get("owner_client_id") == self.writer.own_client_id

    def _pull_new(self, kind: str, rec: dict[str, Any], f: Finding) -> None:
        """Create (or adopt) the local row of a registry record the platform lacks (inbound's rules)."""
        before = sum(self.writer.stats.adopted.values()) + sum(self.writer.stats.created.values()) + sum(
            self.writer.stats.registry_owned.values())
        try:
            with self.engine.begin() as conn, suppress_outbox(conn):
                self.writer.apply_new(conn, kind, rec)
                self.writer.flush(conn)  # the writer buffers its writes
        except Unresolved as exc:
            f.action_state = "failed"
            f.details["repair_error"] = str(exc)[:300]
            self.repair_errors += 1
            return
        except Exception as exc:  # noqa: BLE001 — recorded with the discrepancy
            f.action_state = "failed"
            f.details["repair_error"] = mask_text(str(exc))[:300]
            self.repair_errors += 1
            log.warning("reconcile: pull failed", kind=kind, registry_id=rec["id"], error=mask_text(str(exc)))
            return
        after = sum(self.writer.stats.adopted.values()) + sum(self.writer.stats.created.values()) + sum(
            self.writer.stats.registry_owned.values())
        f.action_state = "done" if after > before else "not_allowed"

    def _relink(self, kind: str, rid: str, items: list[LocalItem]) -> str:
        """A broken link: drop the links of ``rid`` and queue the records for creation (the relay links them to
        an existing registry record on ``DUPLICATE_*``)."""
        rows = []
        for it in items:
            if it.exists:
                self.found_local.add((kind, it.local_id))  # one finding per record in this run
                rows.append({k: v for k, v in it.row.items() if not k.startswith("_")})
        with self.engine.begin() as conn:
            relink_as_new(conn, kind, rid, rows)
        return "queued"


def _note_refusal(conn: Connection, kind: str, local_id: int, f: Finding) -> str | None:
    """:func:`refused_before`, noted in the finding's details (``refused_before``) when there is one."""
    refused = refused_before(conn, kind, local_id)
    if refused is not None:
        f.details["refused_before"] = refused
    return refused


def _add_hours(by_city: dict[str, dict[str, int]], by_line: dict[str, dict[str, int]], region_code: str | None,
               org_type: str | None, level: str | None, h: int, key: str) -> None:
    by_city[city_of(region_code) or "unknown"][key] += h
    line = _LINE.get(org_type or "")
    if line:
        by_line[line][key] += h
    if level == "GRASSROOTS_TEAM":
        by_line["regional"][key] += h  # also the community station's (the dual structure)


def _h(hundredths: Any) -> str | None:
    """Hundredths of an hour as the wire's decimal string (``250`` → ``"2.50"``)."""
    if hundredths is None:
        return None
    n = int(hundredths)
    return f"{n // 100}.{n % 100:02d}"


def _chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


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
        refused the record's last push on its data: they fail again unless the data changed), ``by_entity``, ``by_city``, ``by_org_line``, ``actions`` (action → state → count),
        ``compared`` (entity → local / registry / pairs), ``compared_total`` (:func:`compared_total`: how many
        records were compared, all kinds together), ``hours`` (per city and org line, hundredths of an
        hour), ``snapshot_cursor``, ``feed_restarted``, ``unknown_types`` (export lines and lookup results of
        record types this client does not know, skipped, by type) and ``unknown_fields`` (fields it does not
        know, ignored, ``"type.field"`` → records; registry-api.md §1), ``listed`` (the first findings, masked), ``seconds``.
        Exit code 0 when the run completed (partial included), 1 when it failed, 130 when stopped.

    Raises:
        ConfigError: incomplete registry settings, a bad database URL, an unknown kind or region.
        StoreError: the local store is unusable.
    """
    try:
        scope = Scope(parse_kinds(kinds), check_region(region, settings.province))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    require_registry(settings)
    own_engine = engine is None
    engine = engine or open_store(settings.database.url)
    check_hash_key(engine, settings.hash_key, dispose_on_error=own_engine)  # before anything is recorded
    started = time.monotonic()
    run_id = start_run(engine, "reconcile")
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
    summary = _summary(recorder, rc, scope, status, started, repair, feed_restarted, scope.region)
    if error:
        summary["error"] = mask_text(error)
    _finish(engine, run_id, status, summary)
    if own_engine:
        engine.dispose()
    return code, summary


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


def _summary(recorder: Recorder, rc: Reconciler | None, scope: Scope, status: str, started: float, repair: bool,
             feed_restarted: bool, region: str | None) -> dict[str, Any]:
    hours: dict[str, Any] = {}
    if rc is not None and "service_record" in scope.kinds and status != "failed":
        try:
            hours = rc.hours_section(region)
        except Exception as exc:  # noqa: BLE001 — the hours view is extra; the findings stand
            log.warning("reconcile: hours section failed", error=mask_text(str(exc)))
    return {
        "run_id": recorder.run_id, "status": status, "kinds": scope.kinds, "region": scope.region, "repair": repair,
        "discrepancies": dict(sorted(recorder.by_kind.items())),
        "by_entity": {k: dict(sorted(v.items())) for k, v in sorted(recorder.by_entity.items())},
        "by_city": dict(sorted(recorder.by_city.items())), "by_org_line": dict(sorted(recorder.by_line.items())),
        "repaired": dict(sorted(recorder.repaired.items())),
        "queued": dict(sorted(recorder.queued.items())),
        "requeued": dict(sorted(recorder.requeued.items())),
        "actions": {k: dict(sorted(v.items())) for k, v in sorted(recorder.actions.items())},
        "compared": {k: dict(v) for k, v in (rc.compared.items() if rc else [])},
        "compared_total": compared_total(rc.compared if rc else {}),
        "hours": hours, "snapshot_cursor": earliest_cursor(rc.cursors) if rc else None, "feed_restarted": feed_restarted,
        **unknown_summary(rc.client if rc else None),
        "listed": recorder.listed, "seconds": round(time.monotonic() - started, 3),
    }


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


def _finish(engine: Engine, run_id: int, status: str, summary: dict[str, Any]) -> None:
    stored = {k: v for k, v in summary.items() if k != "listed"}
    finish_run(engine, run_id, status, stored)


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
