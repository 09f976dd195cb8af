"""A reconcile's comparison of linked pairs: a link's local row against the registry's record of the same id.

Compared in canonical form (:func:`regsync.domain.projection.canonical`: NFKC strings, decimals as integer
hundredths, times at second precision, lists as sets, personal values as keyed hashes). When the record is still
at the link's version, the link's base snapshot *is* the registry's record in canonical form (every change makes
a new version, registry-api.md §1), so the local side is compared with the base and the registry's record is made
canonical only when they differ or the version moved (the common case of a province in step costs one
projection). A volunteer whose link records a transfer out (:data:`~regsync.db.models.TRANSFERRED_OUT`) has the home
province the link holds. A pair that differs is a ``stale_link`` (the registry moved a synced field since the base) or a
``field_mismatch``; a pair whose references dangle is an ``orphan``, one whose local row is gone
``missing_locally`` (:class:`~regsync.flows.reconcile_onesided.OneSided`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Engine

from regsync.db.history import reused_keys
from regsync.db.models import TRANSFERRED_OUT
from regsync.db.platform.scan import ORPHAN_REFS, LocalItem
from regsync.domain.masking import mask_text
from regsync.domain.merge import shown
from regsync.domain.projection import FIELDS, REFERENCES, canonical, changed_fields, project_local, project_registry
from regsync.flows.reconcile_findings import Finding, Mode, Recorder
from regsync.flows.reconcile_onesided import OneSided
from regsync.flows.reconcile_places import Places
from regsync.flows.reconcile_repairs import Repairs

_MISSING = object()


class PairComparison:
    """The comparison of the linked pairs of a run.

    Args:
        engine: the local store.
        key: the hash key of personal values (``settings.hash_key``).
        recorder: where findings go.
        places: where records lie.
        one_sided: the one-sided findings (a pair's orphans and deleted rows are theirs).
        repairs: the run's fixes.
        mode: report, plan or repair.
    """

    def __init__(self, engine: Engine, key: str, recorder: Recorder, places: Places, one_sided: OneSided,
                 repairs: Repairs, mode: Mode) -> None:
        self.engine = engine
        self.key = key
        self.rec = recorder
        self.places = places
        self.one_sided = one_sided
        self.repairs = repairs
        self.mode = mode

    def compare_pairs(self, kind: str, pairs: Sequence[tuple[list[LocalItem], dict[str, Any]]]) -> None:
        """Compare linked records with their registry records; record and (with repair) fix what differs.

        Args:
            kind: the record kind.
            pairs: ``(the local items of one registry id, the primary first; the registry's record)``.
        """
        orphans = self.one_sided.registry_orphans(kind, [rec for _, rec in pairs])
        with self.engine.connect() as conn:
            # keys deleted and used again for another record, not yet in the registry: their link is the old
            # record's, whose local row is gone (design.md's mapping table); never pulled onto the new row
            reused = reused_keys(conn, kind, [it.local_id for items, _ in pairs for it in items if it.exists])
        for items, rec in pairs:
            primary = next((it for it in items if not it.row["_dup"]), None)
            if rec["id"] in orphans:
                item = primary or items[0]
                self.one_sided.orphan(kind, rec, item, orphans[rec["id"]], side="registry")
                continue
            if primary is None:
                continue  # only a person's second row is linked here: its profile is never compared
            if not primary.exists or primary.local_id in reused:
                self.one_sided.local_deleted(kind, primary, rec)
                continue
            missing_refs = [c for c in ORPHAN_REFS.get(kind, ()) if primary.row.get(c) is not None
                            and primary.row.get(f"_has_{c}") is None]
            if missing_refs:
                self.one_sided.orphan(kind, rec, primary, missing_refs, side="local")
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
            city, line = self.places.of_local(kind, item)
            self.rec.add(Finding("field_mismatch", kind, item.local_id, rec["id"], [],
                                 {"local_invalid": mask_text(str(exc))}, city, line,
                                 *self.mode.no_repair()))
            return
        base = orjson.loads(item.row["_base"] or "{}")
        if kind == "volunteer" and item.row["_how"] == TRANSFERRED_OUT and "home_province" in base:
            # the link records the transfer out: the person's home province is the one it holds, also where the
            # platform keeps none of its own (a mapping's const), not a difference to report every night
            local["home_province"] = base["home_province"]
        c_local = canonical(local, self.key)
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
        finding.city_code, finding.org_line = self.places.of_local(kind, item)
        if self.mode.repair:
            self.repairs.repair_linked(kind, item, rec, local, remote, finding)
        elif self.mode.plan:
            self.repairs.plan_linked(kind, item, rec, local, remote, finding)
        self.rec.add(finding)


__all__ = ["PairComparison"]
