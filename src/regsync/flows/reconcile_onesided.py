"""A reconcile's findings on one side only: a registry record with no link (``missing_locally``, adoptable when an
unlinked local row has its natural key), a local row with no link (``missing_in_registry``), a link whose local
row is gone (``missing_locally``, ``local_deleted``) or whose registry record is (``broken_link``), a record whose
references do not exist on its own side (``orphan``), and two local rows of one person (``duplicate_person``).

Each finding is recorded once per record and run (:attr:`OneSided.found_local`), with the fix policy allows
when the run repairs or plans (:class:`~regsync.flows.reconcile_repairs.Repairs`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from regsync.db.platform.scan import ORPHAN_REFS, LocalItem
from regsync.db.platform.totals import shared_id_numbers
from regsync.db.reconcile import linked_registry_ids
from regsync.domain.merge import shown
from regsync.domain.projection import ENDED, IMMUTABLE_RECORDS, REFERENCES
from regsync.flows.apply import LocalWriter
from regsync.flows.reconcile_findings import Finding, Mode, Recorder
from regsync.flows.reconcile_places import Places, city_of
from regsync.flows.reconcile_repairs import Repairs, made_here
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings


class OneSided:
    """The one-sided findings of a run.

    Args:
        engine: the local store.
        client: the registry client (``lookup``).
        settings: regsync's settings (``province``, ``hash_key``).
        recorder: where findings go.
        places: the registry's orgs, and where records lie.
        writer: the writer of registry changes into local records (``find_same``: an unlinked row of a record's
            natural key).
        repairs: the run's fixes.
        mode: report, plan or repair.
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, recorder: Recorder, places: Places,
                 writer: LocalWriter, repairs: Repairs, mode: Mode) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.key = settings.hash_key
        self.rec = recorder
        self.places = places
        self.writer = writer
        self.repairs = repairs
        self.mode = mode
        #: local records already found in this run (adoptable pairs, relinked rows), not to be found again as
        #: ``missing_in_registry`` (bounded by the findings, not by the records)
        self.found_local: set[tuple[str, int]] = set()

    def registry_only(self, kind: str, recs: list[dict[str, Any]]) -> None:
        """Registry records with no link: orphans, adoptable pairs, or missing locally."""
        orphans = self.registry_orphans(kind, recs)
        ended = ENDED.get(kind)
        live = []
        for rec in recs:
            if rec["id"] in orphans:
                self.orphan(kind, rec, None, orphans[rec["id"]], side="registry")
            elif kind == "volunteer" and rec.get("home_province") != self.settings.province:
                continue  # fed to the old province after a transfer out; not ours
            elif kind in IMMUTABLE_RECORDS and rec.get("status") == "REVOKED" and made_here(self.writer, rec):
                continue  # this client's revoked predecessor of a corrected record (revoke + new record, :correct)
            else:
                live.append(rec)
        with self.engine.connect() as conn:
            same = {rec["id"]: self.writer.find_same(conn, kind, rec) for rec in live}
        for rec in live:
            city, line = self.places.of_registry(kind, rec)
            local_id = same.get(rec["id"])
            details: dict[str, Any] = {"status": rec.get("status"), "owner": rec.get("owner_client_id")}
            if local_id is not None:
                details["adoptable"] = True
                self.found_local.add((kind, local_id))
            f = Finding("missing_locally", kind, local_id, rec["id"], [], details, city, line,
                        region_code=self.places.region_of(kind, rec), registry_org_id=self.places.org_id_of(kind, rec),
                        registry_volunteer_id=_subject_volunteer(kind, rec))
            if ended and rec.get("status") == ended and local_id is None:
                details["ended"] = True
            if self.mode.acts:
                f.action = "relink" if local_id is not None else "pull"
                if self.mode.plan:
                    f.action_state = "planned"
                else:
                    self.repairs.pull_new(kind, rec, f)
            self.rec.add(f)

    def missing_in_registry(self, kind: str, items: Sequence[LocalItem]) -> None:
        """Local rows with no link (a page of them, in order): ``missing_in_registry`` (pushed), or an ``orphan``
        when what it refers to is gone; nothing for a row found already in this run or a person another province
        manages. The page's pushes are queued together (:meth:`Repairs.queue_page`), its findings recorded in
        order."""
        found: list[Finding] = []
        push: list[tuple[Finding, dict[str, Any]]] = []
        for item in items:
            if (kind, item.local_id) in self.found_local:
                continue  # found as an adoptable pair already (one finding per record)
            r = item.row
            city, line = self.places.of_local(kind, item)
            missing_refs = [c for c in ORPHAN_REFS.get(kind, ()) if r.get(c) is not None
                            and r.get(f"_has_{c}") is None]
            if missing_refs:
                found.append(self.orphan_finding(kind, None, item, missing_refs, side="local"))
                continue
            if kind == "volunteer" and r.get("home_province") not in (None, self.settings.province):
                continue  # another province manages the person (registry-api.md §4.2): not ours to push
            f = Finding("missing_in_registry", kind, item.local_id, None, [], {"status": r.get("status")}, city, line)
            if self.mode.acts:
                f.action = "push"
                if self.mode.plan:
                    f.action_state = "planned"
                else:
                    push.append((f, r))
            found.append(f)
        if push:
            states = self.repairs.queue_page(kind, [r for _, r in push], "insert", [f.details for f, _ in push])
            for (f, _), state in zip(push, states, strict=True):
                f.action_state = state
        for f in found:
            self.rec.add(f)

    def local_deleted(self, kind: str, item: LocalItem, rec: dict[str, Any]) -> None:
        """A link whose local row is gone (or whose key holds another record now) while the registry's record
        lives: ``missing_locally`` (the relay ends the registry's record); nothing when ended on both sides."""
        ended = ENDED.get(kind)
        if (ended and rec.get("status") == ended) or (kind == "membership" and rec.get("left_on")):
            return  # ended on both sides
        city, line = self.places.of_registry(kind, rec)
        f = Finding("missing_locally", kind, item.local_id, rec["id"], [], {"local_deleted": True}, city, line,
                    region_code=self.places.region_of(kind, rec), registry_org_id=self.places.org_id_of(kind, rec),
                    registry_volunteer_id=_subject_volunteer(kind, rec))
        if self.mode.acts:
            f.action = "push"  # the relay ends the record (design.md's table of local changes)
            f.action_state = "planned" if self.mode.plan else self.repairs.queue(
                kind, {"id": item.local_id}, "delete", f.details)
        self.rec.add(f)

    def broken_link(self, kind: str, rid: str, items: list[LocalItem]) -> None:
        """A link whose registry id the registry does not know (``items``: the local items it links)."""
        primary = next((it for it in items if not it.row["_dup"]), items[0])
        city, line = self.places.of_local(kind, primary)
        f = Finding("broken_link", kind, primary.local_id, rid, [],
                    {"local_ids": [it.local_id for it in items], "how": primary.row["_how"]}, city, line)
        if self.mode.acts:
            f.action = "relink"
            if self.mode.plan:
                f.action_state = "planned"
            else:
                # one finding per record in this run: the rows queued are not missing_in_registry too
                self.found_local.update((kind, it.local_id) for it in items if it.exists)
                f.action_state = self.repairs.relink(kind, rid, items)
        self.rec.add(f)

    def orphan(self, kind: str, rec: dict[str, Any] | None, item: LocalItem | None, refs: list[str],
               *, side: str) -> None:
        """An ``orphan``: the reference fields ``refs`` of the record name nothing on its ``side`` (``local`` or
        ``registry``); never repaired automatically."""
        self.rec.add(self.orphan_finding(kind, rec, item, refs, side=side))

    def orphan_finding(self, kind: str, rec: dict[str, Any] | None, item: LocalItem | None, refs: list[str],
                       *, side: str) -> Finding:
        """The finding :meth:`orphan` records."""
        if rec is not None and item is None:
            city, line = self.places.of_registry(kind, rec)
        else:
            assert item is not None
            city, line = self.places.of_local(kind, item)
        details: dict[str, Any] = {"side": side, "missing": refs}
        if rec is not None:
            details["registry_refs"] = {c: rec.get(c) for c in refs}
        return Finding("orphan", kind, item.local_id if item else None, rec["id"] if rec else None, refs, details,
                       city, line, *self.mode.no_repair(),
                       region_code=self.places.region_of(kind, rec) if rec is not None and item is None else None,
                       registry_org_id=self.places.org_id_of(kind, rec) if rec is not None and item is None
                       else None,
                       registry_volunteer_id=_subject_volunteer(kind, rec) if rec is not None and item is None
                       else None)

    def registry_orphans(self, kind: str, recs: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
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
            rest = sorted(ids - known[ref_kind] - (set(self.places.org_info) if ref_kind == "org" else set()))
            if rest:
                known[ref_kind] |= {r["id"] for r in self.client.lookup(as_kind(ref_kind), rest)}
        out: dict[str, list[str]] = {}
        for rec in recs:
            bad = [c for c in cols if rec.get(c) and rec[c] not in known[REFERENCES[kind][c]]]
            if bad:
                out[rec["id"]] = bad
        return out

    def duplicate_persons(self, region: str | None) -> None:
        """One ``duplicate_person`` per normalized ID number held by two or more local rows (SQL aggregate,
        streamed in keyset pages of the number); never repaired automatically (people decide)."""
        for person in shared_id_numbers(self.engine, region):
            self.rec.add(Finding(
                "duplicate_person", "volunteer", person.local_ids[0], person.registry_ids[0], [],
                {"local_ids": person.local_ids, "id_number": shown("id_number", person.id_number_norm, self.key)[0],
                 "linked": person.registry_ids},
                city_of(person.region_code), None, *self.mode.no_repair()))


def _subject_volunteer(kind: str, rec: dict[str, Any]) -> str | None:
    """The registry id of a volunteer's commendation's volunteer (it is attributed through them), else ``None``."""
    return rec.get("volunteer_id") if kind == "commendation" and not rec.get("org_id") else None


__all__ = ["OneSided"]
