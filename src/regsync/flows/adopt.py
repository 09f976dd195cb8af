"""Adopt (design.md, flow 4, "the first day"): link the platform's records to what the registry already holds.

A province that turns regsync on already has records in the registry, entered through older channels. Before the
first push, adopt reads the exports (registry-api.md §5.2) kind by kind, references first, and matches each
registry record to the platform's unlinked rows by natural key:

==================  ==========================================================================================
volunteers          ``idType`` and normalized ``idNumber`` (GB 11643-1999); a person's two local rows are the
                    primary (the older) and a duplicate linked to the same record (design.md)
orgs                USCC (GB 32100-2015), else (level, name, region code)
memberships         the pair (org, volunteer)
activities          (org, title, start)
service records     (volunteer, activity, start)
trainings           (org, title, start) (registry-api.md v1.1, §4.6)
training records    (training, volunteer), ACCEPTED ones (§4.7: one ACCEPTED record per pair)
commendations       (subject, title, date), or with a scheme (subject, scheme, year), ACTIVE ones (§4.8)
evaluations         (activity, volunteer), ACTIVE ones (§4.9)
==================  ==========================================================================================

A volunteer's records (service and training records, commendations, evaluations) match any of the person's local
rows (the primary and its duplicates, design.md "One person, two local records").

Candidate pairs are staged in a temporary table (memory stays flat); a registry record with exactly one
candidate whose local row has exactly one candidate is linked (``how='adopted'``): a volunteer, org or membership
is merged with no common base, so each field that differs goes by its group's policy (design.md, "Conflict
policy"; ``manual`` → a conflict), and so are a training, a commendation and an evaluation this client may write; a
service or training record this client may write is taken as the registry holds it (never merged: a later local
edit is a correction); a record of the other kinds that this client may not write (entered on the portal: a
national commendation, a portal training record) is the registry's (registry-api.md §1 "ownership") and is taken
as it is (``how='registry_owned'``, never pushed). Everything
else that matched more than once is **held for a person**: one ``ambiguous_match`` discrepancy per record
involved (in the adopt run, with the candidates), and the local rows' outbox rows are set ``failed`` with code
``AMBIGUOUS_MATCH`` so the relay does not create a second record; an operator links or retries them. Nothing
ambiguous is ever guessed.

After adopt, ``regsync sync`` creates only what the registry lacks, so no person and no service hour is counted
twice. The change feed starts from the earliest ``X-Snapshot-Cursor`` of the exports read when no cursor is saved
yet (design.md, flow 2: the first cursor is taken before the first push, or from an export's).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine

from regsync.db.adopt import (
    HELD_CODE,
    Candidate,
    candidate_page,
    candidate_registry_ids,
    create_candidates,
    drop_candidates,
    held_records,
    hold_rows,
    insert_link,
    is_linked,
    linked_local_ids,
    linked_registry_ids,
    stage_candidates,
    unique_candidates,
    unlinked_commendations_of,
    unlinked_evaluations_of,
    unlinked_training_records_of,
    unlinked_trainings_of,
)
from regsync.db.feed import save_cursor, saved_cursor
from regsync.db.merges import reference_ids
from regsync.db.models import REGISTRY_OWNED
from regsync.db.platform.read import (
    count_unlinked,
    load_record,
    person_rows,
    unlinked_activities_of,
    unlinked_memberships_of,
    unlinked_orgs_in_regions,
    unlinked_orgs_with_usccs,
    unlinked_service_records_of,
    unlinked_volunteers_with_norms,
)
from regsync.db.session import suppress_outbox, utcnow
from regsync.domain.masking import mask_text
from regsync.domain.merge import take_registry
from regsync.domain.normalize import normalize_text, normalize_uscc, try_normalize_id_number
from regsync.domain.projection import ENDED, IMMUTABLE_RECORDS, canonical, dumps, project_local, project_registry
from regsync.flows.apply import LocalWriter
from regsync.flows.reconcile import (
    KIND_ORDER,
    Finding,
    Recorder,
    backfill_id_number_norm,
    city_of,
    earliest_cursor,
    unknown_summary,
)
from regsync.flows.runs import Advance, RecordedRun, no_progress, run_store
from regsync.registry import wire
from regsync.registry.client import RegistryClient
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Registry records matched per batch.
BATCH = 500
_LINE = {"REGIONAL": "regional", "SPECIALIZED": "specialized"}


def _second(value: Any) -> str | None:
    """A timestamp as compared: naive UTC at second precision."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat(sep=" ")


def _revive(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A record staged as JSON back to the decoded types (dates, times)."""
    out = dict(data)
    for spec in wire.COMMON_FIELDS + wire.FIELDS[kind]:  # type: ignore[index]
        value = out.get(spec.py)
        if isinstance(value, str):
            if spec.conv == "date":
                out[spec.py] = dt.date.fromisoformat(value)
            elif spec.conv == "datetime":
                out[spec.py] = dt.datetime.fromisoformat(value)
    return out


class Adopter:
    """One adopt run (module docstring).

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient`.
        settings: regsync's settings.
        recorder: where ``ambiguous_match`` findings go.
        dry_run: match and count only; link and hold nothing.
        advance: progress callback ``(label, n)``.
        stop: polled between batches.
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, recorder: Recorder, *, dry_run: bool,
                 advance: Callable[..., None] | None = None, stop: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.rec = recorder
        self.dry_run = dry_run
        self.advance = advance or (lambda *a, **k: None)
        self.stop = stop or (lambda: False)
        self.writer = LocalWriter(engine, client, settings)
        self.writer.note_agreements = False  # no common base: only the fields that differ are decisions
        self.writer.stats.run_id = recorder.run_id
        self.linked: Counter[str] = Counter()
        self.duplicates = 0
        self.ambiguous: Counter[str] = Counter()
        self.unmatched: Counter[str] = Counter()
        #: records linked that were made under this client's credentials by a create this store never sent (another
        #: store's, or this store's before a rebuild): linked by the operator's adopt, and said so
        self.other_store: Counter[str] = Counter()
        self.read: Counter[str] = Counter()
        self.cursors: list[str] = []
        self.stopped = False
        self.stage: Connection | None = None

    def run(self) -> None:
        """Adopt every kind, references first."""
        backfill_id_number_norm(self.engine)
        with self.engine.connect() as stage:
            self.stage = stage
            create_candidates(stage)
            stage.commit()
            try:
                for kind in KIND_ORDER:
                    if self.stopped or self.stop():
                        self.stopped = True
                        break
                    self._stage_kind(kind)
                    if not self.stopped:
                        self._settle(kind)
            finally:
                stage.rollback()
                drop_candidates(stage)
                stage.commit()
        self.rec.flush()

    # ------------------------------------------------------------------------------------------ staging
    def _stage_kind(self, kind: str) -> None:
        with self.client.export(as_kind(kind)) as ex:
            if ex.snapshot_cursor is not None:
                self.cursors.append(ex.snapshot_cursor)
            batch: list[dict[str, Any]] = []
            for rec in ex:
                batch.append(rec)
                if len(batch) >= BATCH:
                    self._stage_batch(kind, batch)
                    batch = []
                    if self.stop():
                        self.stopped = True
                        return
            if batch:
                self._stage_batch(kind, batch)

    def _stage_batch(self, kind: str, recs: list[dict[str, Any]]) -> None:
        self.read[kind] += len(recs)
        with self.engine.connect() as conn:
            linked = linked_registry_ids(conn, kind, [r["id"] for r in recs])
            recs = [r for r in recs if r["id"] not in linked]
            pairs = getattr(self, f"_match_{kind}")(conn, recs) if recs else []
        matched = {rid for rid, _ in pairs}
        self.unmatched[kind] += sum(1 for r in recs if r["id"] not in matched)
        by_id = {r["id"]: r for r in recs}
        if pairs and self.stage is not None:
            stage_candidates(self.stage, kind, [(rid, lid, orjson.dumps(by_id[rid], default=str).decode())
                                                for rid, lid in pairs])
            self.stage.commit()
        self.advance(kind, len(recs))

    def _local_ids(self, conn: Connection, kind: str, rids: Sequence[str]) -> dict[str, list[int]]:
        """Registry id → local ids, through the links, and in a dry run through the unique candidates staged."""
        out: dict[str, list[int]] = defaultdict(list)
        wanted = sorted({r for r in rids if r})
        for i in range(0, len(wanted), BATCH):
            for rid, lid in linked_local_ids(conn, kind, wanted[i:i + BATCH]):
                out[rid].append(lid)
            if self.dry_run and self.stage is not None:
                for rid, lid in unique_candidates(self.stage, kind, wanted[i:i + BATCH]):
                    out[rid].append(lid)
                    if kind == "volunteer":
                        out[rid] += person_rows(conn, lid)[1:]
        return out

    def _match_volunteer(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        norms: dict[tuple[str, str], str] = {}
        for r in recs:
            norm = try_normalize_id_number(r.get("id_type") or "", r.get("id_number") or "")
            if norm:
                norms[(r["id_type"], norm)] = r["id"]
        if not norms:
            return []
        primary: dict[str, int] = {}
        for vid, id_type, norm in unlinked_volunteers_with_norms(conn, sorted({n for _, n in norms})):
            rid = norms.get((id_type, norm))
            if rid is not None:
                primary.setdefault(rid, vid)  # the older row: the person's primary
        return sorted(primary.items())

    def _match_org(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        pairs: list[tuple[str, int]] = []
        usccs = {normalize_uscc(r.get("uscc")): r["id"] for r in recs if normalize_uscc(r.get("uscc"))}
        by_uscc: set[str] = set()
        if usccs:
            for oid, raw in unlinked_orgs_with_usccs(conn, sorted(u for u in usccs if u)):
                rid = usccs.get(normalize_uscc(raw))
                if rid:
                    pairs.append((rid, oid))
                    by_uscc.add(rid)
        rest = [r for r in recs if r["id"] not in by_uscc]
        keys: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for r in rest:
            key = (r.get("level") or "", normalize_text(r.get("name")) or "", r.get("region_code") or "")
            keys[key].append(r["id"])
        if keys:
            regions = sorted({k[2] for k in keys})
            levels = sorted({k[0] for k in keys})
            for oid, level, name, region in unlinked_orgs_in_regions(conn, regions, levels):
                for rid in keys.get((level, normalize_text(name) or "", region), []):
                    pairs.append((rid, oid))
        return pairs

    def _match_membership(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int], str] = {}
        for r in recs:
            for o in orgs.get(r["org_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], [])[:1]:  # the person's primary row (design.md)
                    want[(o, v)] = r["id"]
        if not want:
            return []
        out = []
        for mid, o, v in unlinked_memberships_of(conn, sorted({k[0] for k in want}), sorted({k[1] for k in want})):
            if (o, v) in want:
                out.append((want[(o, v)], mid))
        return out

    def _match_activity(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs])
        want: dict[tuple[int, str, str | None], list[str]] = defaultdict(list)
        for r in recs:
            for o in orgs.get(r["org_id"], [])[:1]:
                want[(o, normalize_text(r.get("title")) or "", _second(r.get("starts_at")))].append(r["id"])
        if not want:
            return []
        out = []
        for aid, o, title, starts in unlinked_activities_of(conn, sorted({k[0] for k in want})):
            for rid in want.get((o, normalize_text(title) or "", _second(starts)), []):
                out.append((rid, aid))
        return out

    def _match_service_record(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        acts = self._local_ids(conn, "activity", [r["activity_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int, str | None], list[str]] = defaultdict(list)
        for r in recs:
            for a in acts.get(r["activity_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], []):
                    want[(v, a, _second(r.get("starts_at")))].append(r["id"])
        if not want:
            return []
        out = []
        for sid, v, a, starts in unlinked_service_records_of(conn, sorted({k[1] for k in want}),
                                                             sorted({k[0] for k in want})):
            for rid in want.get((v, a, _second(starts)), []):
                out.append((rid, sid))
        return out

    # v1.1 (registry-api.md §4.6–§4.9; domain.projection.IDENTITY)
    def _match_training(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs])
        want: dict[tuple[int, str, str | None], list[str]] = defaultdict(list)
        for r in recs:
            for o in orgs.get(r["org_id"], [])[:1]:
                want[(o, normalize_text(r.get("title")) or "", _second(r.get("starts_at")))].append(r["id"])
        if not want:
            return []
        out = []
        for tid, o, title, starts in unlinked_trainings_of(conn, sorted({k[0] for k in want})):
            for rid in want.get((o, normalize_text(title) or "", _second(starts)), []):
                out.append((rid, tid))
        return out

    def _match_training_record(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        recs = [r for r in recs if r.get("status") != ENDED["training_record"]]  # a corrected one's predecessor
        trainings = self._local_ids(conn, "training", [r["training_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int], list[str]] = defaultdict(list)
        for r in recs:
            for t in trainings.get(r["training_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], []):  # any of the person's rows
                    want[(t, v)].append(r["id"])
        if not want:
            return []
        return [(rid, lid) for lid, t, v in unlinked_training_records_of(conn, sorted({k[0] for k in want}),
                                                                        sorted({k[1] for k in want}))
                for rid in want.get((t, v), [])]

    def _match_commendation(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        recs = [r for r in recs if r.get("status") != ENDED["commendation"]]
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs if r.get("volunteer_id")])
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs if r.get("org_id")])
        want: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        for r in recs:
            subjects = ([("v", v) for v in vols.get(r.get("volunteer_id") or "", [])]
                        + [("o", o) for o in orgs.get(r.get("org_id") or "", [])[:1]])
            for subject in subjects:
                want[(*subject, *_commendation_key(r))].append(r["id"])
        if not want:
            return []
        rows = unlinked_commendations_of(conn, sorted({k[1] for k in want if k[0] == "v"}),
                                         sorted({k[1] for k in want if k[0] == "o"}))
        out = []
        for row in rows:
            subject = ("v", int(row["volunteer_id"])) if row["volunteer_id"] is not None else ("o", int(row["org_id"]))
            for rid in want.get((*subject, *_commendation_key(row)), []):
                out.append((rid, int(row["id"])))
        return out

    def _match_evaluation(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        recs = [r for r in recs if r.get("status") != ENDED["evaluation"]]
        acts = self._local_ids(conn, "activity", [r["activity_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int], list[str]] = defaultdict(list)
        for r in recs:
            for a in acts.get(r["activity_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], []):
                    want[(a, v)].append(r["id"])
        if not want:
            return []
        return [(rid, lid) for lid, a, v in unlinked_evaluations_of(conn, sorted({k[0] for k in want}),
                                                                   sorted({k[1] for k in want}))
                for rid in want.get((a, v), [])]

    # ------------------------------------------------------------------------------------------ settling
    def _settle(self, kind: str) -> None:
        """Link the unambiguous candidates of ``kind``; hold and record the ambiguous ones."""
        assert self.stage is not None
        stage = self.stage
        last = ""
        while True:
            rows = candidate_page(stage, kind, last, BATCH)
            stage.commit()
            if not rows:
                return
            # never split one registry id's candidates across pages
            if len(rows) == BATCH and rows[0].registry_id != rows[-1].registry_id:
                cut = rows[-1].registry_id
                rows = [r for r in rows if r.registry_id != cut]
            last = rows[-1].registry_id
            groups: dict[str, list[Candidate]] = defaultdict(list)
            for r in rows:
                groups[r.registry_id].append(r)
            for rid, cands in groups.items():
                if len(cands) == 1 and cands[0].of_record == 1 and cands[0].of_row == 1:
                    self._link(kind, _revive(kind, json.loads(cands[0].doc)), int(cands[0].local_id))
                else:
                    self._hold(kind, rid, cands)
            if self.stop():
                self.stopped = True
                return

    def _link(self, kind: str, rec: dict[str, Any], local_id: int) -> None:
        self.linked[kind] += 1
        with self.engine.connect() as conn:
            owner = self.writer.ownership
            if owner.made_by_this_client(kind, rec) and not owner.sent_here(conn, kind, rec):
                # an operator's adopt takes it; never silently (issue 12, item 4): counted, listed and logged
                self.other_store[kind] += 1
                log.warning("adopt: linking a registry record made under this client's credentials by a create this "
                            "store never sent (another store's, or this store's before a rebuild)", kind=kind,
                            local_id=local_id, registry_id=rec["id"], client_ref=rec.get("client_ref"), alarm=True)
        if self.dry_run:
            if kind == "volunteer":
                with self.engine.connect() as conn:
                    self.duplicates += len(person_rows(conn, local_id)) - 1
            return
        with self.engine.begin() as conn, suppress_outbox(conn):
            if kind not in ("org", "volunteer", "membership") and not self.writer.ownership.writable(kind, rec):
                self._take(conn, kind, rec, local_id, REGISTRY_OWNED)
            elif kind in IMMUTABLE_RECORDS:  # service and training records are never merged
                self._take(conn, kind, rec, local_id, "adopted")
            else:
                self.writer.adopt(conn, kind, rec, local_id)
            self.writer.flush(conn)  # the writer buffers its writes
            if kind == "volunteer":
                now = utcnow()
                remote = canonical(project_registry(kind, rec), self.settings.hash_key)
                for other in person_rows(conn, local_id)[1:]:
                    if is_linked(conn, kind, other):
                        continue
                    insert_link(conn, kind, other, rec["id"], registry_version=int(rec.get("version") or 1),
                                base=dumps(remote), is_duplicate=True, how="duplicate_person", now=now)
                    self.duplicates += 1

    def _take(self, conn: Connection, kind: str, rec: dict[str, Any], local_id: int, how: str) -> None:
        """Link and take the registry's record as it is (records this client may not write; service and training
        records, which are never merged)."""
        row = load_record(conn, kind, local_id)
        refs = reference_ids(conn, kind, [row])
        try:
            local = project_local(kind, row, refs)
        except ValueError:
            local = None
        result = take_registry(kind, local, project_registry(kind, rec), self.settings.hash_key, "adopted",
                               self.writer.read_only(kind))
        self.writer.note(kind, local_id, rec["id"], result)  # each local field taken, for the run's record
        now = utcnow()
        insert_link(conn, kind, local_id, rec["id"], registry_version=int(rec.get("version") or 1),
                    base=dumps(result.new_base), is_duplicate=False, how=how, now=now)
        if how != "adopted":
            self.writer.write_local(conn, kind, row, result)

    def _hold(self, kind: str, rid: str, cands: list[Candidate]) -> None:
        """Record an ambiguous match and hold its local rows' outbox rows for a person."""
        local_ids = sorted({int(c.local_id) for c in cands})
        others: dict[int, list[str]] = {}
        assert self.stage is not None
        for lid in local_ids:
            others[lid] = candidate_registry_ids(self.stage, kind, lid)
        self.stage.commit()
        rec = _revive(kind, json.loads(cands[0].doc))
        region = rec.get("region_code") if kind in ("org", "activity", "volunteer", "training") else None
        self.ambiguous[kind] += 1
        line = _LINE.get(rec.get("org_type") or "") if kind == "org" else None
        self.rec.add(Finding(
            "ambiguous_match", kind, local_ids[0] if len(local_ids) == 1 else None, rid, [],
            {"local_ids": local_ids, "registry_ids": sorted({r for v in others.values() for r in v}),
             "held": not self.dry_run}, city_of(region), line, "none", "held" if not self.dry_run else "planned"))
        if self.dry_run:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for lid in local_ids:
                hold_rows(conn, kind, lid, now=now,
                          error=mask_text(f"held by adopt: {len(others[lid])} registry records match; an operator "
                                          "links the right one or retries to create it"))


def _commendation_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """What names a commendation beside its subject (registry-api.md §4.8): ``(scheme, year)`` with a scheme, else
    ``(title, awarded on)``; a registry record (decoded) and a local row give the same key."""
    if r.get("scheme"):
        return ("scheme", r["scheme"], int(r["year"]) if r.get("year") is not None else None)
    awarded = r.get("awarded_on")
    return ("title", normalize_text(r.get("title")) or "", str(awarded)[:10] if awarded is not None else None)


def run_adopt(settings: Settings, *, dry_run: bool = False, progress: Advance | None = None,
              engine: Engine | None = None,
              stop: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any]]:
    """Adopt the registry's existing records (module docstring), recorded as a run of kind ``adopt``.

    Args:
        settings: regsync's settings.
        dry_run: match and count only: nothing is linked or held and no run is recorded.
        progress: called as records are matched (:class:`regsync.flows.runs.Advance`); default: nothing drawn.
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between batches; true ends the run early (``partial``, exit code 130).

    Returns:
        (exit code, summary): ``run_id`` (``None`` for a dry run), ``status``, ``dry_run``, ``read`` (registry
        records per kind), ``linked`` (kind → records linked, or that would be), ``duplicates`` (a person's second
        rows linked), ``ambiguous`` (kind → held), ``ambiguous_matches`` (the findings, masked), ``unmatched``
        (registry records no unlinked local row matches, per kind), ``local_unlinked`` (local rows still unlinked:
        ``regsync sync`` creates them), ``feed_cursor``, ``other_store`` (kind → records linked that were made
        under this client's credentials by a create this store never sent: another store's, or this store's
        before a rebuild; each logged with an alarm), ``unknown_types`` (export lines and lookup results of
        record types this client does not know, skipped, by type) and ``unknown_fields`` (fields it does not know,
        ignored, ``"type.field"`` → records; registry-api.md §1), ``seconds``. Exit code 0 when it completed, 1
        when it failed.

    Raises:
        ConfigError: incomplete registry settings or a bad database URL.
        StoreError: the local store is unusable.
    """
    with run_store(settings, engine) as store, RecordedRun(store, "adopt", record=not dry_run) as run:
        return _adopt(settings, store, run, dry_run=dry_run, progress=progress, stop=stop)


def _adopt(settings: Settings, engine: Engine, run: RecordedRun, *, dry_run: bool, progress: Advance | None,
           stop: Callable[[], bool] | None) -> tuple[int, dict[str, Any]]:
    """The adopt of :func:`run_adopt`, in its recorded run (none for a dry run) on a checked store."""
    started = time.monotonic()
    run_id = run.run_id
    recorder = Recorder(engine, run_id, dry_run=dry_run)
    status, code, error = "success", 0, None
    adopter: Adopter | None = None
    cursor = None
    try:
        with RegistryClient(settings.registry, province=settings.province) as client:
            adopter = Adopter(engine, client, settings, recorder, dry_run=dry_run, advance=progress or no_progress,
                              stop=stop)
            adopter.run()
            if adopter.stopped:
                status, code, error = "partial", 130, "interrupted"
            if not dry_run:  # interrupted too: what it linked was read at these snapshots (else NO_CURSOR later)
                earliest = earliest_cursor(adopter.cursors)
                with engine.begin() as conn:
                    if earliest is not None and saved_cursor(conn) is None:
                        save_cursor(conn, earliest)
                    cursor = saved_cursor(conn)
    except Exception as exc:  # noqa: BLE001 — the run is recorded as failed and reported
        log.error("adopt failed", error=mask_text(str(exc)))
        status, code, error = "failed", 1, str(exc)
    with engine.connect() as conn:
        unlinked = {k: count_unlinked(conn, k) for k in KIND_ORDER}
    a = adopter
    summary: dict[str, Any] = {
        "run_id": run_id, "status": status, "dry_run": dry_run,
        "read": dict(a.read) if a else {}, "linked": dict(a.linked) if a else {},
        "duplicates": a.duplicates if a else 0, "ambiguous": dict(a.ambiguous) if a else {},
        "ambiguous_matches": [d for d in recorder.counts().listed if d["kind"] == "ambiguous_match"],
        "discrepancies": dict(recorder.by_kind), "unmatched": dict(a.unmatched) if a else {},
        "local_unlinked": unlinked, "feed_cursor": cursor,
        "other_store": dict(a.other_store) if a else {},
        # what the merges decided, field by field (``kind.field:rule:winner`` → records): a ``registry`` winner
        # wrote the registry's value into the platform's row; a ``local`` one queued a push
        "decisions": dict(sorted(a.writer.stats.decisions.items())) if a else {},
        "decision_log": list(a.writer.stats.decision_log) if a else [],
        **unknown_summary(a.client if a else None),
        "seconds": round(time.monotonic() - started, 3),
    }
    if error:
        summary["error"] = mask_text(error)
    run.finish(status, {k: v for k, v in summary.items() if k != "ambiguous_matches"})
    return code, summary



def iter_held(engine: Engine) -> Iterator[tuple[str, int]]:
    """The records adopt holds for a person (outbox rows failed with ``AMBIGUOUS_MATCH``)."""
    with engine.connect() as conn:
        yield from held_records(conn)


__all__ = ["HELD_CODE", "Adopter", "iter_held", "run_adopt"]
