"""Who must fix a record (issue 15, point 2): the organization responsible for it on the platform, its contact,
its county and city, on its org line (地区组织 / 专项组织).

One rule, used both by the reconcile when it records a discrepancy (``discrepancy.city_code`` and ``org_line``,
which the report's by-city-and-line chart reads) and by the worklist (待办清单), so that a city's list holds what the
report counts for it:

* an **organization** answers for itself;
* a **volunteer** through their membership: the organization of their *oldest current* membership (``left_on``
  empty; the earliest ``joined_on``, then the lowest membership id) — the organization that brought them in holds
  their papers; a volunteer in no organization goes to the **regional line of their residence**
  (``volunteer.region_code``): the district brigade (区县大队) of that county, else the city corps (市总队);
* a **membership** through its organization; an **activity** through its organization; a **service record**
  through its activity's organization (the activity's organizer recorded the hours);
* (registry-api.md v1.1) a **training** through its organization; a **training record** through its training's
  organization; an **evaluation** through its evaluator organization; a **commendation** through its subject: the
  organization commended, or for a volunteer's commendation, the volunteer's (as a volunteer above);
* (registry-api.md §4.8) a **scheme commendation refused** ``NOT_EARNED`` (:meth:`Attributor.scheme_approver`):
  the decision was the annual scheme's approval, not the volunteer's organization's: it goes to the top of the
  regional line, the city corps (市总队) of its city — the registry's dual structure (§4.1) has no province-level
  regional org; the city corps carries the province's approval list for its city;
* a record **only the registry holds** (no local row, or its row is gone): through the organization the registry
  names for it, when the platform holds that organization (its ``link``); a volunteer's commendation through that
  volunteer, when the platform holds them (as a volunteer above); otherwise by its region code, on the regional
  line, as a volunteer in no organization.

The county and city are those of the responsible organization's region code (GB/T 2260: city = the first 4 digits,
county = all 6 when it is county-level), and its line's county- and city-level ancestors are named (regional:
区县大队, 市总队; specialized: 区县分队, 市支队). A grassroots team (基层服务队) also names its community station
(社区工作站), which manages it on the regional line (registry-api.md §4.1, the dual structure).

Every answer has a line: never "none". Organizations are cached per :class:`Attributor` (bounded by the
province's organizations, ~85 000); records are looked up in chunks of :data:`~regsync.db.query.CHUNK`.
Reads go through the canonical names (:func:`regsync.db.own.names`), so a mapped platform's views serve as the
reference tables do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, bindparam, text

from regsync.db.own import names
from regsync.db.query import CHUNK, chunks

__all__ = ["COUNTY_LEVELS", "CITY_LEVELS", "Attributor", "OrgFacts", "Responsible", "Subject", "city_of",
           "county_of"]

#: An org line → the level of its county-level unit.
COUNTY_LEVELS = {"regional": "DISTRICT_BRIGADE", "specialized": "COUNTY_UNIT"}
#: An org line → the level of its city-level unit.
CITY_LEVELS = {"regional": "CITY_CORPS", "specialized": "CITY_DETACHMENT"}
_LINES = {"REGIONAL": "regional", "SPECIALIZED": "specialized"}
_MAX_DEPTH = 8  # the deepest line has 4 levels; a cycle in bad data stops here


def city_of(region_code: str | None) -> str | None:
    """The 4-digit city prefix of a GB/T 2260 code (``230102`` → ``2301``), or ``None``."""
    return region_code[:4] if region_code and len(region_code) >= 4 and region_code[:4].isdigit() else None


def county_of(region_code: str | None) -> str | None:
    """The 6-digit county code of a county-level GB/T 2260 code (``230102``), ``None`` for a city's or province's
    (``230100``, ``230000``) or a malformed one."""
    if not region_code or len(region_code) < 6 or not region_code[:6].isdigit() or region_code[4:6] == "00":
        return None
    return region_code[:6]


@dataclass(frozen=True, slots=True)
class OrgFacts:
    """One organization as the worklist names it (clear contact phone: mask it where shown)."""

    id: int
    name: str
    org_type: str
    level: str
    parent_id: int | None
    station_id: int | None
    region_code: str | None
    contact_name: str | None
    contact_phone: str | None

    @property
    def line(self) -> str:
        """``regional`` or ``specialized`` (an unknown type reads as regional)."""
        return _LINES.get(self.org_type, "regional")


@dataclass(frozen=True, slots=True)
class Subject:
    """A record to attribute: its kind, local id (``None`` when only the registry holds it) and, for a record whose
    local row is not found, the registry's region code, the registry id of its org (an org's own id) and, for a
    volunteer's commendation, the registry id of the volunteer."""

    entity: str
    local_id: int | None
    region_code: str | None = None
    registry_org_id: str | None = None
    registry_volunteer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Responsible:
    """Who must fix a record.

    Attributes:
        line: ``regional`` or ``specialized``, never empty.
        city_code: the 4-digit city of the responsible org (or of the region the record fell back to), or
            ``None`` when nothing says where it is.
        county_code: the 6-digit county, or ``None`` (a city- or province-level org).
        org: the responsible organization, or ``None`` when the region has no regional org on the platform.
        county_org: the county-level unit of ``org``'s line above it (or ``org`` itself), or ``None``.
        city_org: the city-level unit of ``org``'s line above it (or ``org`` itself), or ``None``.
        station: a grassroots team's community station, or ``None``.
        how: ``own``, ``membership``, ``activity``, ``training`` (a training record's training's org), ``scheme``
            (a scheme commendation refused NOT_EARNED: the city corps, :meth:`Attributor.scheme_approver`),
            ``residence`` (no org: the regional line of the residence)
            ``registry_org`` (only the registry holds it; its org is on the platform) or ``region`` (only the
            registry holds it, or its row is gone).
    """

    line: str
    city_code: str | None
    county_code: str | None
    org: OrgFacts | None
    county_org: OrgFacts | None
    city_org: OrgFacts | None
    station: OrgFacts | None
    how: str


_ORG_COLUMNS = ("id, name, org_type, level, parent_id, station_id, region_code, contact_name, contact_phone")


class Attributor:
    """Attributes records to the organizations responsible for them (module docstring), caching organizations.

    One instance serves a whole run or worklist; each :meth:`attribute` call takes a connection.
    """

    def __init__(self) -> None:
        self._orgs: dict[int, OrgFacts | None] = {}
        self._regional: dict[str, int | None] = {}

    # ------------------------------------------------------------------------------------------ orgs
    def orgs(self, conn: Connection, ids: Iterable[int]) -> dict[int, OrgFacts]:
        """The organizations ``ids`` (those that exist), with their ancestors and stations cached too."""
        wanted = {int(i) for i in ids}
        for _ in range(_MAX_DEPTH):
            missing = sorted(i for i in wanted if i not in self._orgs)
            if not missing:
                break
            n = names(conn)
            stmt = text(f"SELECT {_ORG_COLUMNS} FROM {n.organization} WHERE id IN :ids"  # noqa: S608 — names
                        ).bindparams(bindparam("ids", expanding=True))
            for chunk in chunks(missing, CHUNK):
                found = {int(r["id"]): r for r in conn.execute(stmt, {"ids": list(chunk)}).mappings()}
                for i in chunk:
                    r = found.get(i)
                    self._orgs[i] = None if r is None else OrgFacts(
                        int(r["id"]), str(r["name"] or ""), str(r["org_type"] or ""), str(r["level"] or ""),
                        _int(r["parent_id"]), _int(r["station_id"]), r["region_code"], r["contact_name"],
                        r["contact_phone"])
            wanted = {o.parent_id for o in (self._orgs[i] for i in wanted) if o and o.parent_id} | {
                o.station_id for o in (self._orgs[i] for i in wanted) if o and o.station_id}
        return {i: o for i in {int(i) for i in ids} if (o := self._orgs.get(i)) is not None}

    def _regional_orgs(self, conn: Connection, regions: Iterable[str]) -> None:
        """Cache the regional org answering for each region code: its county's district brigade, else its city's
        corps (the lowest id among the active ones)."""
        keys: set[str] = set()
        for r in regions:
            if (c := county_of(r)) is not None:
                keys.add(c)
            if (city := city_of(r)) is not None:
                keys.add(city + "00")
        missing = sorted(k for k in keys if k not in self._regional)
        if not missing:
            return
        n = names(conn)
        stmt = text(f"SELECT id, region_code, level FROM {n.organization} WHERE org_type = 'REGIONAL' "  # noqa: S608
                    "AND level IN ('DISTRICT_BRIGADE', 'CITY_CORPS') AND status <> 'DISSOLVED' "
                    "AND region_code IN :r ORDER BY id").bindparams(bindparam("r", expanding=True))
        for chunk in chunks(missing, CHUNK):
            for k in chunk:
                self._regional[k] = None
            for oid, region, level in conn.execute(stmt, {"r": list(chunk)}):
                key = str(region)[:6]
                wanted_level = "CITY_CORPS" if key.endswith("00") else "DISTRICT_BRIGADE"
                if level == wanted_level and self._regional.get(key) is None:
                    self._regional[key] = int(oid)

    def _regional_for(self, region: str | None) -> int | None:
        county, city = county_of(region), city_of(region)
        return (self._regional.get(county) if county else None) or (
            self._regional.get(city + "00") if city else None)

    # ------------------------------------------------------------------------------------------ records
    def attribute(self, conn: Connection, subjects: Sequence[Subject]) -> list[Responsible]:
        """Who must fix each of ``subjects`` (same order), in a few queries per :data:`CHUNK` records."""
        org_of: dict[tuple[str, int], tuple[int, str]] = {}  # (kind, local id) → (org id, how)
        residence: dict[int, str | None] = {}  # volunteer id → region, for those in no org
        subject: dict[int, int] = {}  # a volunteer's commendation → the volunteer (for their residence)
        by_kind: dict[str, list[int]] = {}
        for s in subjects:
            if s.local_id is not None:
                by_kind.setdefault(s.entity, []).append(int(s.local_id))
        n = names(conn)
        for kind, ids in by_kind.items():
            for chunk in chunks(sorted(set(ids)), CHUNK):
                org_of.update(self._orgs_of(conn, n, kind, list(chunk), residence, subject))
        linked = self._linked_orgs(conn, n, {s.registry_org_id for s in subjects if s.registry_org_id and (
            s.local_id is None or (s.entity, int(s.local_id)) not in org_of)})
        people = self._linked_orgs(conn, n, {s.registry_volunteer_id for s in subjects if s.registry_volunteer_id and (
            s.local_id is None or (s.entity, int(s.local_id)) not in org_of)}, entity="volunteer")
        for chunk in chunks(sorted(set(people.values()) - {k[1] for k in org_of if k[0] == "volunteer"}), CHUNK):
            org_of.update(self._orgs_of(conn, n, "volunteer", list(chunk), residence, subject))
        regions = [r for r in residence.values() if r] + [s.region_code for s in subjects if s.region_code]
        self._regional_orgs(conn, regions)
        self.orgs(conn, {o for o, _ in org_of.values()} | set(linked.values()) | {
            i for r in regions if (i := self._regional_for(r)) is not None})
        out: list[Responsible] = []
        for s in subjects:
            key = (s.entity, int(s.local_id)) if s.local_id is not None else None
            if key is not None and key in org_of:
                oid, how = org_of[key]
                out.append(self._responsible(self._orgs.get(oid), how, None))
            elif key is not None and (vid := key[1] if s.entity == "volunteer" else subject.get(key[1]) if (
                    s.entity == "commendation") else None) is not None and vid in residence:
                region = residence[vid]
                out.append(self._responsible(self._orgs.get(self._regional_for(region) or -1), "residence", region))
            elif s.registry_org_id in linked and linked[s.registry_org_id] in self._orgs:
                out.append(self._responsible(self._orgs.get(linked[s.registry_org_id]), "registry_org", None))
            elif (person := people.get(s.registry_volunteer_id or "")) is not None and (
                    ("volunteer", person) in org_of or person in residence):
                if ("volunteer", person) in org_of:
                    out.append(self._responsible(self._orgs.get(org_of[("volunteer", person)][0]), "membership",
                                                 None))
                else:
                    region = residence[person]
                    out.append(self._responsible(self._orgs.get(self._regional_for(region) or -1), "residence",
                                                 region))
            else:
                region = s.region_code
                out.append(self._responsible(self._orgs.get(self._regional_for(region) or -1), "region", region))
        return out

    def scheme_approver(self, conn: Connection, who: Responsible) -> Responsible:
        """Who answers for a scheme commendation (``PROVINCIAL_ANNUAL``) the registry refused ``NOT_EARNED``
        (registry-api.md §4.8): the scheme's approval decided it, not the organization ``who`` names; the item goes
        to the top of the regional line of ``who``'s city, its city corps (市总队; §4.1 has no province-level
        regional org), ``how`` ``scheme``. ``who`` unchanged when its city is unknown or has no city corps on the
        platform.

        Args:
            conn: the local store.
            who: the commendation's attribution by its subject (:meth:`attribute`).
        """
        if who.city_code is None:
            return who
        key = who.city_code + "00"
        self._regional_orgs(conn, [key])
        oid = self._regional.get(key)
        if oid is None:
            return who
        self.orgs(conn, [oid])
        corps = self._orgs.get(oid)
        if corps is None:
            return who
        return replace(self._responsible(corps, "scheme", None), city_code=who.city_code)

    @staticmethod
    def _linked_orgs(conn: Connection, n: Any, registry_ids: set[Any], entity: str = "org") -> dict[str, int]:
        """Registry id → the local row linked to it (its primary link), for ``registry_ids`` of ``entity`` (an org;
        or a volunteer)."""
        out: dict[str, int] = {}
        if not registry_ids:
            return out
        stmt = text(f"SELECT registry_id, local_id FROM {n.link} WHERE entity = :e "  # noqa: S608 — names
                    "AND registry_id IN :r ORDER BY is_duplicate, id").bindparams(bindparam("r", expanding=True))
        for chunk in chunks(sorted(registry_ids), CHUNK):
            for rid, lid in conn.execute(stmt, {"r": list(chunk), "e": entity}):
                out.setdefault(str(rid), int(lid))
        return out

    def _orgs_of(self, conn: Connection, n: Any, kind: str, ids: list[int], residence: dict[int, str | None],
                 subject: dict[int, int]) -> dict[tuple[str, int], tuple[int, str]]:
        """(kind, local id) → (responsible org id, how) for one chunk; volunteers in no org go to ``residence``
        (and a volunteer's commendation to ``subject``: commendation id → volunteer id)."""
        p = {"ids": ids}
        expand: Any = bindparam("ids", expanding=True)
        if kind == "org":
            rows = conn.execute(text(f"SELECT id, id FROM {n.organization} WHERE id IN :ids").bindparams(expand), p)
            return {(kind, int(i)): (int(o), "own") for i, o in rows}
        if kind in _OWN_ORG:
            rows = conn.execute(text(f"SELECT id, {_OWN_ORG[kind]} FROM {n[kind]} WHERE id IN :ids"  # noqa: S608
                                     ).bindparams(expand), p)
            return {(kind, int(i)): (int(o), "own") for i, o in rows if o is not None}
        if kind == "training_record":
            rows = conn.execute(text(  # noqa: S608 — names
                f"SELECT s.id, t.org_id FROM {n.training_record} s JOIN {n.training} t ON t.id = s.training_id "
                "WHERE s.id IN :ids").bindparams(expand), p)
            return {(kind, int(i)): (int(o), "training") for i, o in rows if o is not None}
        if kind == "commendation":
            out_c: dict[tuple[str, int], tuple[int, str]] = {}
            of_volunteer: dict[int, int] = {}
            rows = conn.execute(text(f"SELECT id, org_id, volunteer_id FROM {n.commendation} "  # noqa: S608
                                     "WHERE id IN :ids").bindparams(expand), p)
            for cid, oid, vid in rows:
                if oid is not None:
                    out_c[(kind, int(cid))] = (int(oid), "own")
                elif vid is not None:
                    of_volunteer[int(cid)] = int(vid)
            if of_volunteer:
                by_volunteer = self._orgs_of(conn, n, "volunteer", sorted(set(of_volunteer.values())), residence,
                                             subject)
                for cid, vid in of_volunteer.items():
                    if ("volunteer", vid) in by_volunteer:
                        out_c[(kind, cid)] = by_volunteer[("volunteer", vid)]
                    else:
                        subject[cid] = vid
            return out_c
        if kind == "service_record":
            rows = conn.execute(text(  # noqa: S608 — names
                f"SELECT s.id, a.org_id FROM {n.service_record} s JOIN {n.activity} a ON a.id = s.activity_id "
                "WHERE s.id IN :ids").bindparams(expand), p)
            return {(kind, int(i)): (int(o), "activity") for i, o in rows if o is not None}
        if kind == "volunteer":
            out: dict[tuple[str, int], tuple[int, str]] = {}
            rows = conn.execute(text(  # noqa: S608 — names
                f"SELECT volunteer_id, org_id FROM {n.membership} WHERE volunteer_id IN :ids AND left_on IS NULL "
                "ORDER BY volunteer_id, joined_on, id").bindparams(expand), p)
            for vid, oid in rows:
                out.setdefault((kind, int(vid)), (int(oid), "membership"))
            alone = [i for i in ids if (kind, i) not in out]
            if alone:
                rows = conn.execute(text(f"SELECT id, region_code FROM {n.volunteer} WHERE id IN :ids"  # noqa: S608
                                         ).bindparams(expand), {"ids": alone})
                residence.update({int(i): r for i, r in rows})
            return out
        return {}

    def _responsible(self, org: OrgFacts | None, how: str, region: str | None) -> Responsible:
        if org is None:
            return Responsible("regional", city_of(region), county_of(region), None, None, None, None,
                               "region" if how not in ("residence", "region") else how)
        county_org = city_org = None
        cur: OrgFacts | None = org
        for _ in range(_MAX_DEPTH):
            if cur is None:
                break
            if cur.level == COUNTY_LEVELS[org.line] and county_org is None:
                county_org = cur
            if cur.level == CITY_LEVELS[org.line] and city_org is None:
                city_org = cur
            cur = self._orgs.get(cur.parent_id) if cur.parent_id else None
        station = self._orgs.get(org.station_id) if org.station_id else None
        where = org.region_code or region
        return Responsible(org.line, city_of(where), county_of(where), org, county_org, city_org, station, how)


#: Kinds whose own column names the org responsible for them.
_OWN_ORG = {"membership": "org_id", "activity": "org_id", "training": "org_id", "evaluation": "evaluator_org_id"}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
