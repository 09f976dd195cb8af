"""Checks of one generated data set against the registry's rules (registry-api.md §4) and the dirt log."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict

import pytest
from sqlalchemy import text
from stdnum.cn import ric, uscc

from regsync.domain.normalize import (
    NormalizationError,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    normalize_uscc,
    try_normalize_id_number,
)
from regsync.generate import DIRT_KINDS, TARGETS
from regsync.generate.catalog import CATEGORIES
from regsync.generate.names import LOOKALIKE_DOTS

from .conftest import AS_OF, SCALE, Dataset

PARENT_LEVEL = {
    "CITY_CORPS": None,
    "DISTRICT_BRIGADE": "CITY_CORPS",
    "STREET_STATION": "DISTRICT_BRIGADE",
    "COMMUNITY_STATION": "STREET_STATION",
    "PROVINCIAL_CORPS": None,
    "CITY_DETACHMENT": "PROVINCIAL_CORPS",
    "COUNTY_UNIT": "CITY_DETACHMENT",
    "GRASSROOTS_TEAM": "COUNTY_UNIT",
}
MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")


def rows(ds: Dataset, sql: str) -> list[dict]:
    with ds.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def as_date(v) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(v)


def as_dt(v) -> dt.datetime:
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)


def dirt_of(ds: Dataset, entity: str) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for r in rows(ds, f"SELECT local_id, kind FROM generator_dirt WHERE entity = '{entity}'"):
        out[r["local_id"]].add(r["kind"])
    return out


def test_counts_match_scaled_targets(dataset: Dataset) -> None:
    c = dataset.summary.counts
    n_vol = round(TARGETS["volunteer"] * SCALE)
    assert n_vol <= c["volunteer"] <= n_vol * 1.01
    assert c["activity"] == round(TARGETS["activity"] * SCALE)
    assert 0.85 <= c["service_record"] / (TARGETS["service_record"] * SCALE) <= 1.1
    assert 1.2 <= c["membership"] / c["volunteer"] <= 1.5
    assert c["CITY_CORPS"] == 13
    assert c["DISTRICT_BRIGADE"] >= 13 and c["PROVINCIAL_CORPS"] >= 8
    for level, parent in PARENT_LEVEL.items():
        assert c[level] >= 1
        if parent:
            assert c[level] >= c[parent]  # each level at least as many as the one above
    regional = sum(
        c[lvl] for lvl in ("CITY_CORPS", "DISTRICT_BRIGADE", "STREET_STATION", "COMMUNITY_STATION")
    )
    assert c["org"] == regional + sum(
        c[lvl] for lvl in ("PROVINCIAL_CORPS", "CITY_DETACHMENT", "COUNTY_UNIT", "GRASSROOTS_TEAM")
    )
    # the database holds what the summary says
    for table, kind in (
        ("organization", "org"),
        ("volunteer", "volunteer"),
        ("membership", "membership"),
        ("activity", "activity"),
        ("service_record", "service_record"),
    ):
        assert rows(dataset, f"SELECT count(*) AS n FROM {table}")[0]["n"] == c[kind]
    assert (
        sum(dataset.summary.dirt.values())
        == rows(dataset, "SELECT count(*) AS n FROM generator_dirt")[0]["n"]
    )


def test_every_clean_resident_id_is_valid(dataset: Dataset) -> None:
    dirt = dirt_of(dataset, "volunteer")
    id_dirt = {"id_lowercase_x", "id_legacy_15", "id_fullwidth", "id_bad_check"}
    checked = 0
    for v in rows(dataset, "SELECT * FROM volunteer"):
        birth = as_date(v["birth_date"])
        age = AS_OF.year - birth.year - ((AS_OF.month, AS_OF.day) < (birth.month, birth.day))
        assert 16 <= age <= 75
        assert v["home_province"] == "23" and v["region_code"].startswith("23") and len(v["region_code"]) == 6
        skills = json.loads(v["skills"])
        assert len(skills) <= 10 and all(len(s) <= 20 for s in skills)
        if v["id_type"] not in ("RESIDENT_ID", "HMT_RESIDENCE_PERMIT"):
            assert v["id_number_norm"] == normalize_id_number(v["id_type"], v["id_number"])
            continue
        if v["id_type"] == "RESIDENT_ID" and not dirt[v["id"]] & id_dirt:
            assert v["id_number"] == v["id_number_norm"]
            assert ric.is_valid(v["id_number"]), v["id_number"]  # area code existed in the birth year
            checked += 1
        norm = v["id_number_norm"]
        if norm is None:
            assert "id_bad_check" in dirt[v["id"]]
            continue
        assert norm == try_normalize_id_number(v["id_type"], v["id_number"])
        assert ric.get_birth_date(norm) == birth  # GB 11643-1999: characters 7–14
        assert v["gender"] == ("M" if int(norm[16]) % 2 else "F")  # the 17th character's parity
    assert checked > 0.95 * dataset.summary.counts["volunteer"]


def test_uscc_valid_and_unique(dataset: Dataset) -> None:
    dirt = dirt_of(dataset, "org")
    seen = set()
    for o in rows(dataset, "SELECT id, level, uscc FROM organization"):
        if o["level"] in ("CITY_CORPS", "PROVINCIAL_CORPS"):
            assert o["uscc"], "required for the top levels (registry-api.md §4.1)"
        if o["uscc"] is None:
            continue
        code = normalize_uscc(o["uscc"])
        assert uscc.is_valid(code), o
        assert (code != o["uscc"]) == ("uscc_format" in dirt[o["id"]])
        assert code not in seen
        seen.add(code)
    assert seen


def test_org_tree_shape(dataset: Dataset) -> None:
    orgs = {o["id"]: o for o in rows(dataset, "SELECT * FROM organization")}
    dirt = dirt_of(dataset, "org")
    cities = set()
    for o in orgs.values():
        want = PARENT_LEVEL[o["level"]]
        if want is None:
            assert o["parent_id"] is None
        else:
            assert orgs[o["parent_id"]]["level"] == want
        assert o["org_type"] == (
            "REGIONAL"
            if o["level"] in ("CITY_CORPS", "DISTRICT_BRIGADE", "STREET_STATION", "COMMUNITY_STATION")
            else "SPECIALIZED"
        )
        if o["level"] == "GRASSROOTS_TEAM":
            station = orgs[o["station_id"]]
            assert station["level"] == "COMMUNITY_STATION"
            assert station["region_code"] == o["region_code"]  # the dual structure, in the same county
            assert orgs[o["parent_id"]]["region_code"] == o["region_code"]
        else:
            assert o["station_id"] is None
        if o["level"] in ("STREET_STATION", "COMMUNITY_STATION"):
            assert re.fullmatch(r"\d{12}", o["street_code"]) and o["street_code"].startswith(o["region_code"])
        else:
            assert o["street_code"] is None
        if o["level"] == "CITY_CORPS":
            cities.add(o["region_code"])
        assert re.fullmatch(r"23\d{4}", o["region_code"])
        cats = json.loads(o["service_categories"])
        assert 1 <= len(cats) <= 5 and set(cats) <= set(CATEGORIES) and len(set(cats)) == len(cats)
        assert as_date(o["established_on"]) <= AS_OF
        if o["parent_id"] is not None:
            assert as_date(o["established_on"]) >= as_date(orgs[o["parent_id"]]["established_on"])
        assert 2 <= len(o["name"].strip()) <= 100 and 1 <= len(o["contact_name"]) <= 50
        assert (o["name"] != o["name"].strip()) == ("org_name_spaces" in dirt[o["id"]])
        phone = normalize_phone(o["contact_phone"], landline_ok=True)
        assert phone and (MOBILE.fullmatch(phone) or LANDLINE.fullmatch(phone))
        clean = MOBILE.fullmatch(o["contact_phone"]) or re.fullmatch(r"0\d{2,3}-\d{7,8}", o["contact_phone"])
        assert (not clean) == ("org_phone_format" in dirt[o["id"]])
    assert len(cities) == 13
    names = Counter((o["level"], o["name"].strip(), o["region_code"]) for o in orgs.values())
    assert max(names.values()) == 1  # (level, name, region) is a natural key for adoption


def test_activities(dataset: Dataset) -> None:
    orgs = {o["id"]: o for o in rows(dataset, "SELECT id, level, region_code FROM organization")}
    statuses = Counter()
    for a in rows(dataset, "SELECT * FROM activity"):
        assert orgs[a["org_id"]]["level"] in ("COMMUNITY_STATION", "GRASSROOTS_TEAM")
        assert a["region_code"] == orgs[a["org_id"]]["region_code"]
        assert as_dt(a["starts_at"]) < as_dt(a["ends_at"])
        assert a["planned_headcount"] >= 1 and a["category"] in CATEGORIES and 2 <= len(a["title"]) <= 100
        statuses[a["status"]] += 1
    assert set(statuses) == {"PUBLISHED", "COMPLETED", "CANCELLED"}


def test_service_records_rules(dataset: Dataset) -> None:
    acts = {a["id"]: a for a in rows(dataset, "SELECT * FROM activity")}
    vols = {v["id"]: v for v in rows(dataset, "SELECT id, id_number_norm, registered_at FROM volunteer")}
    daily: Counter = Counter()
    hours = []
    for r in rows(dataset, "SELECT * FROM service_record"):
        a = acts[r["activity_id"]]
        assert a["status"] != "CANCELLED" and r["org_id"] == a["org_id"]
        day = as_date(r["service_date"])
        first = (as_dt(a["starts_at"]) + dt.timedelta(hours=8)).date()
        last = (as_dt(a["ends_at"]) + dt.timedelta(hours=8)).date()
        assert first <= day <= last and day <= AS_OF
        start, end = as_dt(r["starts_at"]), as_dt(r["ends_at"])
        midnight = dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=8)  # local 00:00 in UTC
        assert midnight <= start < end <= midnight + dt.timedelta(days=1)
        h = r["hours"]
        assert 50 <= h <= 2400 and h % 25 == 0
        assert h * 36 <= (end - start).total_seconds()  # hours ≤ the span (h/100 × 3600 s)
        v = vols[r["volunteer_id"]]
        assert day >= (as_dt(v["registered_at"]) + dt.timedelta(hours=8)).date()
        if r["status"] == "ACCEPTED":
            person = v["id_number_norm"] or f"row{v['id']}"
            daily[(person, day)] += h
        else:
            assert r["status"] == "REVOKED" and r["revoke_reason"]
        hours.append(h)
    assert max(daily.values()) <= 2400  # per person (both rows of a duplicate), per day (§4.5)
    assert 2.5 <= sum(hours) / len(hours) / 100 <= 3.8  # ≈ 3 h per record


def test_memberships(dataset: Dataset) -> None:
    orgs = {o["id"]: o for o in rows(dataset, "SELECT id, level, established_on FROM organization")}
    for m in rows(dataset, "SELECT * FROM membership"):
        assert orgs[m["org_id"]]["level"] in ("COMMUNITY_STATION", "GRASSROOTS_TEAM")
        assert as_date(m["joined_on"]) <= AS_OF
        if m["left_on"] is not None:
            assert as_date(m["joined_on"]) < as_date(m["left_on"]) <= AS_OF


def test_dirt_matches_rows(dataset: Dataset) -> None:
    vols = {v["id"]: v for v in rows(dataset, "SELECT * FROM volunteer")}
    by_norm: dict[str, list[dict]] = defaultdict(list)
    for v in vols.values():
        if v["id_number_norm"]:
            by_norm[v["id_number_norm"]].append(v)
    log = rows(dataset, "SELECT * FROM generator_dirt")
    for d in log:
        entity, fixable, code = DIRT_KINDS[d["kind"]]
        assert (d["entity"], bool(d["fixable"]), d["expected_code"]) == (entity, fixable, code)
        if entity != "volunteer":
            continue
        v = vols[d["local_id"]]
        raw, kind = v["id_number"], d["kind"]
        if kind == "id_legacy_15":
            assert re.fullmatch(r"\d{15}", raw) and v["id_number_norm"]
            assert as_date(v["birth_date"]).year < 2000
        elif kind == "id_lowercase_x":
            assert raw.endswith("x") and v["id_number_norm"] == raw.upper()
        elif kind == "id_fullwidth":
            assert any("\uff10" <= ch <= "\uff19" for ch in raw) and v["id_number_norm"]
        elif kind == "id_bad_check":
            assert v["id_number_norm"] is None
            with pytest.raises(NormalizationError) as err:
                normalize_id_number(v["id_type"], raw)
            assert err.value.code == "INVALID_ID_NUMBER"
        elif kind == "name_lookalike_dot":
            assert any(c in v["name"] for c in LOOKALIKE_DOTS) and "·" in normalize_name(v["name"])
        elif kind == "name_non_bmp":
            assert any(ord(c) > 0xFFFF for c in v["name"])
        elif kind == "duplicate_person":
            pair = by_norm[v["id_number_norm"]]
            assert len(pair) == 2
            first = min(pair, key=lambda r: as_dt(r["registered_at"]))
            assert first["id"] != v["id"] and as_dt(first["registered_at"]) < as_dt(v["registered_at"])
        elif kind == "phone_bad":
            with pytest.raises(NormalizationError) as err:
                normalize_phone(v["phone"])
            assert err.value.code == "INVALID_PHONE"
        elif kind == "phone_blank":
            assert v["phone"] is None or not v["phone"].strip()
        elif kind == "phone_format":
            assert MOBILE.fullmatch(normalize_phone(v["phone"]) or "") and v["phone"] != normalize_phone(
                v["phone"]
            )
    # and the other way round: what the log does not name is clean
    logged = defaultdict(set)
    for d in log:
        logged[(d["entity"], d["local_id"])].add(d["kind"])
    for v in vols.values():
        kinds = logged[("volunteer", v["id"])]
        if not kinds & {"phone_bad", "phone_blank", "phone_format"}:
            assert MOBILE.fullmatch(v["phone"])
        if "name_lookalike_dot" not in kinds:
            assert not any(c in v["name"] for c in LOOKALIKE_DOTS) and v["name"] == v["name"].strip()
        if v["id_number_norm"] and len(by_norm[v["id_number_norm"]]) > 1:
            assert "duplicate_person" in kinds or all(
                as_dt(v["registered_at"]) < as_dt(o["registered_at"])
                for o in by_norm[v["id_number_norm"]]
                if o["id"] != v["id"]
            )
    counts = Counter(d["kind"] for d in log)
    assert counts == Counter(dataset.summary.dirt)
    for kind in ("name_lookalike_dot", "duplicate_person", "phone_format", "id_fullwidth", "id_legacy_15"):
        assert counts[kind] > 0, kind


def test_other_id_types_present(dataset: Dataset) -> None:
    types = Counter(v["id_type"] for v in rows(dataset, "SELECT id_type FROM volunteer"))
    assert types["RESIDENT_ID"] > 0.99 * sum(types.values())
    minority = [v for v in rows(dataset, "SELECT name FROM volunteer") if "·" in normalize_name(v["name"])]
    assert 0.01 < len(minority) / sum(types.values()) < 0.04
