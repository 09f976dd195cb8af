"""Where a record lies, for a reconcile's breakdowns and its region scope: its city (the 4-digit GB/T 2260 prefix)
and its org line (``regional`` or ``specialized``).

A local item carries its org's region and type (:class:`~regsync.db.platform.scan.LocalItem`); a registry record
of a membership, activity or service record names only its org, whose region, type and level :class:`Places`
keeps from the registry's org export (bounded by the orgs, ~85 000 a province). The v1.1 kinds (registry-api.md
§4.6–§4.9) lie where their org does: a training's (its own region code for the region), a training record's
training's (the org of each training is kept from the training export: two short ids a training), an evaluation's
evaluator's, a commendation's subject org's; a volunteer's commendation names no org (its city is the volunteer's,
which a registry record alone does not give).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from regsync.db.platform.scan import OWN_REGION, LocalItem
from regsync.registry.port import RegistryPort

#: An org's ``org_type`` → its org line.
ORG_LINES = {"REGIONAL": "regional", "SPECIALIZED": "specialized"}


def city_of(region_code: str | None) -> str | None:
    """The 4-digit city prefix of a GB/T 2260 region code (``230102`` → ``2301``), for the reports."""
    return region_code[:4] if region_code and len(region_code) >= 4 else None


class Places:
    """The registry's orgs (region code, type, level by registry id), and where records lie.

    Args:
        client: the registry client (``export``), for :meth:`load`.
    """

    def __init__(self, client: RegistryPort) -> None:
        self.client = client
        #: registry id → (region code, org type, level) of every org of the registry's export seen
        self.org_info: dict[str, tuple[str | None, str | None, str | None]] = {}
        #: a training's registry id → its org's, from the registry's training export (for its records)
        self.training_org: dict[str, str] = {}

    def note_orgs(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``recs`` (the registry's orgs) passed through, each org noted on the way."""
        for r in recs:
            self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))
            yield r

    def note_trainings(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``recs`` (the registry's trainings) passed through, each one's org noted on the way."""
        for r in recs:
            if r.get("org_id"):
                self.training_org[r["id"]] = r["org_id"]
            yield r

    def load_trainings(self) -> None:
        """Note every training's org from the registry's export, unless some are noted already (the training kind
        was compared)."""
        if self.training_org:
            return
        with self.client.export("training") as ex:
            for r in ex:
                if r.get("org_id"):
                    self.training_org[r["id"]] = r["org_id"]

    def org_id_of(self, kind: str, rec: dict[str, Any]) -> str | None:
        """The registry id of the org a registry record lies with: an org's own, a training record's training's
        org, an evaluation's evaluator, a commendation's subject org (``None`` for a volunteer's), otherwise its
        ``org_id``."""
        if kind == "org":
            return rec.get("id")
        if kind == "training_record":
            return self.training_org.get(rec.get("training_id") or "")
        if kind == "evaluation":
            return rec.get("evaluator_org_id")
        return rec.get("org_id")

    def load(self) -> None:
        """Note every org of the registry's export, unless some are noted already (the org kind was compared)."""
        if self.org_info:
            return
        with self.client.export("org") as ex:
            for r in ex:
                self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))

    def region_of(self, kind: str, rec: dict[str, Any]) -> str | None:
        """The region code of a registry record: its own (org, volunteer, activity, training) or its org's
        (:meth:`org_id_of`)."""
        if kind in OWN_REGION:
            return rec.get("region_code")
        return (self.org_info.get(self.org_id_of(kind, rec) or "") or (None,))[0]

    def of_registry(self, kind: str, rec: dict[str, Any]) -> tuple[str | None, str | None]:
        """(city code, org line) of a registry record."""
        if kind == "volunteer":
            return city_of(rec.get("region_code")), None
        info = self.org_info.get(self.org_id_of(kind, rec) or "")
        line = ORG_LINES.get(info[1] or "") if info else None
        region = rec.get("region_code") if kind in OWN_REGION else (info[0] if info else None)
        return city_of(region), line

    @staticmethod
    def of_local(kind: str, item: LocalItem) -> tuple[str | None, str | None]:
        """(city code, org line) of a local item."""
        r = item.row
        if kind == "volunteer":
            return city_of(r.get("region_code")), None
        region = r.get("region_code") if kind in OWN_REGION else r.get("_org_region")
        return city_of(region), ORG_LINES.get(r.get("_org_type") or "")


__all__ = ["ORG_LINES", "Places", "city_of"]
