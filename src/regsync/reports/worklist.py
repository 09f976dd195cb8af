"""``regsync report worklist``: the worklists (待办清单, issue 15, point 2): every discrepancy and every failed record
as a work item someone can act on, split so that a city receives only its own records.

An item names the record (display name, the platform's own key, the registry id), the person's ID number and phone
(masked), the reason in words and what to do (:func:`regsync.domain.reasons.reason_for`), who must do it (the
responsible org with its contact, its county- and city-level units on its line and, for a grassroots team, its
community station: :mod:`regsync.db.attribution`), and its state since the last list: new, carried over or
resolved, with the date it was first seen (:mod:`regsync.db.worklist`).

Each call is one worklist call (:func:`regsync.db.worklist.refresh`) over all the work, whatever the filter, so that
a city's list never resolves another city's items, in the period of the latest reconcile run; the filter (``city``,
``org``) applies to what is written and to the counts shown (:func:`counts_of`, the HTML header).
Items stream from the store a page at a time, enriched per page (:func:`regsync.db.worklist_records.describe`), and
are written as they come: memory does not grow with the list. Formats: :mod:`regsync.reports.worklist_render`.

Personal data: ID numbers and phones (the record's and the contact person's) are masked unless
``show_personal_data``, which needs a reason and writes an ``audit`` row (action :data:`PERSONAL_DATA_ACTION`)
before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Engine, select

from regsync.db.attribution import Attributor
from regsync.db.models import Audit, WorklistItem
from regsync.db.platform.mapped import local_id_of, mapped_platform
from regsync.db.session import utcnow
from regsync.db.worklist import NOT_EARNED_DETAIL, RefreshResult, count_items, iter_items, listed, refresh
from regsync.db.worklist_records import describe
from regsync.domain.clock import to_local
from regsync.domain.commendations import tier_words
from regsync.domain.masking import mask_id_number, mask_phone, mask_text
from regsync.domain.reasons import CODE_REASONS, OWN_CODES, reason_for
from regsync.domain.regions import CITY_BY_CODE, COUNTY_BY_CODE, PROVINCE_CODE
from regsync.domain.words import KIND_WORDS, LINE_WORDS, word
from regsync.i18n import gettext as _
from regsync.i18n import lazy_gettext as N_
from regsync.reports.data import ReportUsageError
from regsync.reports.labels import field_word

__all__ = ["FORMATS", "HEADERS", "PERSONAL_DATA_ACTION", "STATUS_WORDS", "TEXT_COLUMNS", "WorkItem", "Worklist",
           "counts_of", "default_name", "iter_work_items", "open_worklist", "place_name", "split_cities"]

#: Formats ``report worklist --format`` accepts.
FORMATS: tuple[str, ...] = ("xlsx", "csv", "html")
#: The audit action of a worklist with clear ID numbers and phones.
PERSONAL_DATA_ACTION = "worklist_personal_data"
#: An item's state since the last list → its word.
STATUS_WORDS: dict[str, Any] = {"new": N_("new"), "carried": N_("carried over"), "resolved": N_("resolved")}


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One row of a worklist, as people read it (every value text, ``""`` for none; codes kept as text)."""

    status: str
    item_id: str
    first_seen: str
    city: str
    county: str
    line: str
    org: str
    contact_name: str
    contact_phone: str
    county_org: str
    city_org: str
    station: str
    kind: str
    platform_key: str
    registry_id: str
    name: str
    id_number: str
    phone: str
    reason: str
    action: str
    code: str
    detail: str
    city_code: str
    org_key: str

    @classmethod
    def headers(cls) -> list[str]:
        """The column headings, in the language in force (:data:`HEADERS`)."""
        return [str(HEADERS[f.name]) for f in fields(cls)]

    def values(self) -> list[str]:
        """The row's values, in column order."""
        return [getattr(self, f.name) for f in fields(self)]


#: A column → its heading (状态, 条目编号, 首次发现…).
HEADERS: dict[str, Any] = {
    "status": N_("State"), "item_id": N_("Item"), "first_seen": N_("First seen"), "city": N_("City"),
    "county": N_("County"), "line": N_("Org line"), "org": N_("Responsible organization"),
    "contact_name": N_("Contact person"), "contact_phone": N_("Contact phone"),
    "county_org": N_("County-level unit"), "city_org": N_("City-level unit"), "station": N_("Community station"),
    "kind": N_("Record type"), "platform_key": N_("Platform key"), "registry_id": N_("Registry ID"),
    "name": N_("Name"), "id_number": N_("ID number"), "phone": N_("Phone"), "reason": N_("Reason"),
    "action": N_("What to do"), "code": N_("Code"), "detail": N_("Details"), "city_code": N_("City code"),
    "org_key": N_("Organization key"),
}
#: Columns that hold codes and numbers that must stay text in a spreadsheet.
TEXT_COLUMNS = frozenset({"item_id", "platform_key", "registry_id", "id_number", "phone", "contact_phone", "code",
                          "city_code", "org_key"})


def place_name(code: str | None) -> str:
    """``2301`` → ``2301 哈尔滨市``; a county ``230102`` → ``230102 道里区``; ``""`` for none."""
    if not code:
        return ""
    found = COUNTY_BY_CODE.get(code) if len(code) == 6 else CITY_BY_CODE.get(code)
    return f"{code} {found.name}" if found else code


@dataclass
class Worklist:
    """A worklist about to be written: its run, filter and options (:func:`open_worklist`)."""

    engine: Engine
    run: RefreshResult
    city: str | None
    org_id: int | None
    org_key: str | None
    show_personal_data: bool
    audit_id: int | None
    made_at: dt.datetime


def open_worklist(engine: Engine, *, city: str | None = None, org: str | None = None,
                  show_personal_data: bool = False, reason: str | None = None, actor: str = "unknown",
                  fmt: str = "xlsx", output: str = "stdout", now: dt.datetime | None = None) -> Worklist:
    """Audit (with ``show_personal_data``), then run the worklist (:func:`regsync.db.worklist.refresh`).

    Args:
        engine: the local store.
        city: only this city's items (4 digits, GB/T 2260 prefix; a 6-digit code is cut to its city).
        org: only the items this org (the platform's key) answers for, or oversees as their county- or city-level
            unit or community station.
        show_personal_data: clear ID numbers and phones (needs ``reason``; audited).
        reason: why, for the audit row.
        actor: who, for the audit row.
        fmt: the format, for the audit row and the check.
        output: where it goes, for the audit row.
        now: the run's time (naive UTC); default now.

    Raises:
        ReportUsageError: an unknown format, a malformed city or one not of the province
            (:data:`regsync.domain.regions.CITY_BY_CODE`), an unknown org, a missing reason.
    """
    if fmt not in FORMATS:
        raise ReportUsageError(_("unknown format {fmt}; one of {formats}").format(fmt=fmt, formats=", ".join(FORMATS)))
    if city is not None and not (city.isdigit() and len(city) in (4, 6)):
        raise ReportUsageError(_("--city takes a 4-digit city code (GB/T 2260), e.g. 2301; got {city}").format(
            city=city))
    city = city[:4] if city else None
    if city is not None and (not city.startswith(PROVINCE_CODE) or city not in CITY_BY_CODE):
        raise ReportUsageError(_("no city {city} in the province: --city takes one of its cities' 4-digit codes "
                                 "(GB/T 2260), e.g. 2301").format(city=city))
    org_id = None
    if org is not None:
        with engine.connect() as conn:
            org_id = local_id_of(conn, "org", org)
            if org_id is not None and not Attributor().orgs(conn, [org_id]):
                org_id = None  # a key of the right shape that names no organization
        if org_id is None:
            raise ReportUsageError(_("no organization has the platform key {key}").format(key=org))
    audit_id = None
    if show_personal_data:
        if reason is None or not reason.strip():
            raise ReportUsageError(_("--show-personal-data needs --reason: why the ID numbers and phones are needed "
                                     "(it goes to the audit table)"))
        with engine.begin() as conn:
            audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT
                at=utcnow(), actor=actor, action=PERSONAL_DATA_ACTION,
                target=f"worklist:city={city or '*'}:org={org or '*'}", reason=mask_text(reason.strip()),
                details=json.dumps({"format": fmt, "output": output, "city": city, "org": org}, sort_keys=True))
            ).inserted_primary_key[0])
    run = refresh(engine, now=now)
    return Worklist(engine, run, city, org_id, org, show_personal_data, audit_id, now or utcnow())


def iter_work_items(conn: Connection, wl: Worklist, *, city: str | None = None) -> Iterator[WorkItem]:
    """The items of ``wl`` (of ``city`` instead of its own filter, when given; ``""``: those with no city),
    enriched a page at a time."""
    platform = mapped_platform(conn)
    attributor = Attributor()
    org_keys: dict[int, str] = {}
    for page in iter_items(conn, wl.run.gen, city=city if city is not None else wl.city, org_id=wl.org_id):
        facts: dict[tuple[str, int], Any] = {}
        for kind in {r["entity"] for r in page}:
            ids = [int(r["local_id"]) for r in page if r["entity"] == kind and r["local_id"] is not None]
            facts.update({(kind, i): f for i, f in describe(conn, platform, kind, ids).items()})
        orgs = attributor.orgs(conn, {r[c] for r in page for c in ("org_id", "county_org_id", "city_org_id",
                                                                   "station_id") if r[c] is not None})
        wanted = sorted({r["org_id"] for r in page if r["org_id"] is not None} - set(org_keys))
        if platform is None:
            org_keys.update({i: str(i) for i in wanted})
        elif wanted:
            org_keys.update({int(i): str(k) for i, k in platform.platform_keys(conn, "org", wanted).items()})
        related = {r["item_id"]: _related(r) for r in page}
        keys = _platform_keys(conn, platform, [x for x in related.values() if x is not None])
        for r in page:
            rel = related[r["item_id"]]
            rel_keys = (rel[0], [keys.get((rel[0], i), str(i)) for i in rel[1]]) if rel else None
            yield _item(r, facts.get((r["entity"], r["local_id"])), orgs, org_keys, wl.show_personal_data, rel_keys)


def _related(r: dict[str, Any]) -> tuple[str, list[int]] | None:
    """An item's ``related`` column: ``(entity, local ids)``, or ``None``."""
    try:
        found = json.loads(r.get("related") or "null")
        return (str(found["entity"]), [int(i) for i in found["ids"]]) if found else None
    except (ValueError, KeyError, TypeError):
        return None


def _platform_keys(conn: Connection, platform: Any, wanted: list[tuple[str, list[int]]]) -> dict[tuple[str, int], str]:
    """(entity, local id) → the platform's key, for ``wanted`` (the local id itself without a mapping)."""
    by_kind: dict[str, set[int]] = {}
    for kind, ids in wanted:
        by_kind.setdefault(kind, set()).update(ids)
    out: dict[tuple[str, int], str] = {}
    for kind, wanted_ids in by_kind.items():
        found = (platform.platform_keys(conn, kind, sorted(wanted_ids)) if platform is not None
                 else {i: i for i in wanted_ids})
        out.update({(kind, int(i)): str(k) for i, k in found.items()})
    return out


def _item(r: dict[str, Any], facts: Any, orgs: dict[int, Any], org_keys: dict[int, str], clear: bool,
          related: tuple[str, list[str]] | None = None) -> WorkItem:
    reason = reason_for(r["code"], discrepancy=r["source"] == "discrepancy")
    org = orgs.get(r["org_id"]) if r["org_id"] is not None else None
    name = facts.name if facts else _("(registry record {id})").format(id=r["registry_id"] or "—")
    id_number = (facts.id_number if clear else mask_id_number(facts.id_number)) if facts else None
    phone = (facts.phone if clear else mask_phone(facts.phone)) if facts else None
    contact = org.contact_phone if org else None
    return WorkItem(
        status=str(STATUS_WORDS[r["status"]]), item_id=r["item_id"],
        first_seen=_day(r["first_seen_at"]), city=place_name(r["city_code"]),
        county=place_name(r["county_code"]), line=word(LINE_WORDS, r["org_line"]),
        org=org.name if org else _("(no organization on the platform: the regional line of the region)"),
        contact_name=(org.contact_name or "") if org else "",
        contact_phone=(contact if clear else mask_phone(contact)) or "" if org else "",
        county_org=_org_name(orgs, r["county_org_id"]), city_org=_org_name(orgs, r["city_org_id"]),
        station=_org_name(orgs, r["station_id"]), kind=word(KIND_WORDS, r["entity"]),
        platform_key=(facts.platform_key or "") if facts else "", registry_id=r["registry_id"] or "",
        name=name, id_number=id_number or "", phone=phone or "", reason=reason.reason, action=reason.action,
        code=r["code"], detail=_detail(r, clear, related),
        city_code=r["city_code"] or "", org_key=org_keys.get(r["org_id"], "") if r["org_id"] is not None else "")


def _detail(r: Any, clear: bool, related: tuple[str, list[str]] | None = None) -> str:
    """An item's details, in the language in force.

    * a failure the **registry** refused (row state ``failed``, a code not of regsync's own,
      :data:`regsync.domain.reasons.OWN_CODES`) with a code regsync has no words for: the registry's answer (masked
      unless ``clear``), quoted as such, the other party's text in its language (a known code's reason and what to
      do are in words already);
    * a record regsync holds back (``blocked``): what it waits for, by kind and platform key; one regsync itself
      refused (its own code, e.g. ``LOCAL_DATA_INVALID``): that it was found before sending; never regsync's
      English log text;
    * a discrepancy: the fields that differ, in words; a duplicate person: the other row(s) by platform key;
    * and how many records wait for this one (blocked behind it, not items of their own).
    """
    parts: list[str] = []
    text = r["detail"] or ""
    related_word = word(KIND_WORDS, related[0]) if related else ""
    related_keys = _(", ").join(related[1]) if related else ""
    not_earned = _not_earned(r) if r["source"] == "failure" and r["code"] == "NOT_EARNED" else None
    if not_earned is not None:
        parts.append(not_earned)
    elif r["source"] == "failure":
        if r.get("outbox_state") == "blocked":
            if related:
                parts.append(_("Waits for the {kind} with platform key {key}, not yet in the registry").format(
                    kind=related_word, key=related_keys))
            else:
                parts.append(_("Held back by regsync until the record it refers to is in the registry"))
        elif r["code"] in OWN_CODES:
            parts.append(_("Found by regsync before sending: not sent to the registry"))
        elif text and r["code"] not in CODE_REASONS:  # a code with words needs no quote; an unknown one does
            parts.append(_("The registry's answer: {message}").format(message=text if clear else mask_text(text)))
    else:
        if text:
            parts.append(_(", ").join(field_word(f.strip()) for f in text.split(",")))
        if related and r["code"] == "duplicate_person":
            parts.append(_("The other row: platform key {keys}").format(keys=related_keys))
    if r.get("waiting"):
        parts.append(_("{count} more records wait for this one").format(count=r["waiting"]))
    return _("; ").join(parts)


def _not_earned(r: Any) -> str | None:
    """A scheme commendation's NOT_EARNED refusal (registry-api.md §4.8) with both figures, in words: the
    province's approval of the annual scheme decided it (the item is the city corps', :mod:`regsync.db.attribution`),
    the registry's figure (from its message) and the platform's; ``None`` when the item holds no figures
    (:data:`regsync.db.worklist.NOT_EARNED_DETAIL`: not a scheme commendation)."""
    try:
        found = json.loads(r["detail"] or "null")
    except ValueError:
        return None
    facts = found.get(NOT_EARNED_DETAIL) if isinstance(found, dict) else None
    if not isinstance(facts, dict):
        return None
    unit = _("hours") if facts.get("subject") == "volunteer" else _("service records")
    return _("Decided by the province's approval of the annual commendation scheme ({year}, {tier}): the registry "
             "counts {registry} {unit} of the year, the platform {platform} {unit}").format(
        year=facts.get("year") or "—", tier=tier_words(facts.get("tier")), registry=facts.get("registry") or "?",
        platform=facts.get("platform") or "?", unit=unit)


def _day(value: Any) -> str:
    local = to_local(value)
    return local.strftime("%Y-%m-%d") if local else ""


def _org_name(orgs: dict[int, Any], oid: int | None) -> str:
    org = orgs.get(oid) if oid is not None else None
    return org.name if org else ""


def counts_of(wl: Worklist) -> dict[str, int]:
    """The counts of what ``wl``'s file holds (its ``city``/``org`` filter, the whole province without one), by
    status: ``new``, ``carried``, ``resolved`` (0 for none), for the summary line."""
    with wl.engine.connect() as conn:
        found = count_items(conn, wl.run.gen, city=wl.city, org_id=wl.org_id)
    return {k: found.get(k, 0) for k in ("new", "carried", "resolved")}


def split_cities(conn: Connection, wl: Worklist) -> list[str]:
    """The cities with items in ``wl``'s run (``""`` for items with no city), sorted."""
    w = WorklistItem.__table__
    return sorted({c or "" for (c,) in conn.execute(select(w.c.city_code).distinct().where(listed(wl.run.gen)))})


def default_name(city: str | None, fmt: str, day: dt.date) -> str:
    """A file name for a list: ``worklist-2301-20261207.xlsx`` (``all`` for every city)."""
    return f"worklist-{city or 'all'}-{day:%Y%m%d}.{fmt}"

