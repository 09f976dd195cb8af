"""Where a record lies, for a reconcile's breakdowns and its region scope: its city (the 4-digit GB/T 2260 prefix)
and its org line (``regional`` or ``specialized``).

A local item carries its org's region and type (:class:`~regsync.db.platform.scan.LocalItem`); a registry record
of a membership, activity or service record names only its org, whose region, type and level :class:`Places`
keeps from the registry's org export (bounded by the orgs, ~85 000 a province).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from regsync.db.platform.scan import LocalItem
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

    def note_orgs(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``recs`` (the registry's orgs) passed through, each org noted on the way."""
        for r in recs:
            self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))
            yield r

    def load(self) -> None:
        """Note every org of the registry's export, unless some are noted already (the org kind was compared)."""
        if self.org_info:
            return
        with self.client.export("org") as ex:
            for r in ex:
                self.org_info[r["id"]] = (r.get("region_code"), r.get("org_type"), r.get("level"))

    def region_of(self, kind: str, rec: dict[str, Any]) -> str | None:
        """The region code of a registry record: its own (org, volunteer, activity) or its org's."""
        if kind in ("org", "volunteer", "activity"):
            return rec.get("region_code")
        return (self.org_info.get(rec.get("org_id") or "") or (None,))[0]

    def of_registry(self, kind: str, rec: dict[str, Any]) -> tuple[str | None, str | None]:
        """(city code, org line) of a registry record."""
        if kind == "volunteer":
            return city_of(rec.get("region_code")), None
        info = self.org_info.get(rec["id"] if kind == "org" else (rec.get("org_id") or ""))
        line = ORG_LINES.get(info[1] or "") if info else None
        region = rec.get("region_code") if kind in ("org", "activity") else (info[0] if info else None)
        return city_of(region), line

    @staticmethod
    def of_local(kind: str, item: LocalItem) -> tuple[str | None, str | None]:
        """(city code, org line) of a local item."""
        r = item.row
        if kind == "volunteer":
            return city_of(r.get("region_code")), None
        region = r.get("region_code") if kind in ("org", "activity") else r.get("_org_region")
        return city_of(region), ORG_LINES.get(r.get("_org_type") or "")


__all__ = ["ORG_LINES", "Places", "city_of"]
