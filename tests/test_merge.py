"""The three-way merge on plain data (design.md, "Conflict policy")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regsync.domain.merge import DEFAULT_POLICIES, GROUPS, check_policies, three_way
from regsync.domain.projection import FIELDS, canonical

KEY = "test-hash-key"
MANUAL = {g: "manual" for g in DEFAULT_POLICIES}


def vol(**kw: Any) -> dict[str, Any]:
    row = {"name": "李明", "id_type": "RESIDENT_ID", "id_number": "230102199001011237", "gender": "M",
           "birth_date": dt.date(1990, 1, 1), "phone": "13912345678", "region_code": "230102", "skills": ["急救"],
           "home_province": "23", "status": "ACTIVE"}
    row.update(kw)
    return row


def org(**kw: Any) -> dict[str, Any]:
    row = {"name": "测试组织", "org_type": "REGIONAL", "level": "CITY_CORPS", "parent_id": None, "station_id": None,
           "uscc": "51230100MJ0000001X", "region_code": "230100", "street_code": None,
           "service_categories": ["COMMUNITY"], "contact_name": "王芳", "contact_phone": "13900001111",
           "established_on": dt.date(2015, 3, 1), "status": "ACTIVE"}
    row.update(kw)
    return row


def base_of(fields: dict[str, Any]) -> dict[str, Any]:
    return canonical(fields, KEY)


def test_every_synced_field_has_a_group() -> None:
    for kind, names in FIELDS.items():
        assert set(GROUPS[kind]) == set(names), kind


def test_one_side_changes_take_that_side() -> None:
    b = vol()
    r = three_way("volunteer", base_of(b), vol(region_code="230103"), vol(phone="13700002222"), {}, KEY)
    assert r.merged["region_code"] == "230103" and r.merged["phone"] == "13700002222"
    assert r.push == ["region_code"] and r.apply_local == ["phone"]
    assert {(d.field, d.rule, d.winner) for d in r.decisions} == {
        ("region_code", "local_only", "local"), ("phone", "registry_only", "registry")}
    assert not r.conflicts


def test_unchanged_record_decides_nothing() -> None:
    r = three_way("volunteer", base_of(vol()), vol(), vol(), {}, KEY)
    assert r.decisions == [] and r.push == [] and r.apply_local == [] and r.new_base == base_of(vol())


def test_both_changed_to_the_same_value_agree() -> None:
    r = three_way("volunteer", base_of(vol()), vol(skills=["急救", "翻译"]), vol(skills=["翻译", "急救"]), {}, KEY)
    assert [(d.field, d.rule) for d in r.decisions] == [("skills", "agree")]
    assert r.push == [] and r.apply_local == []


def test_a_difference_only_in_characters_that_do_not_print_is_no_change() -> None:
    """A zero-width space, soft hyphen or bidi mark (Unicode Cf) in a local value is not a local change
    (design.md, "Normalization": the one normalizer in every comparison): the registry's change is taken, no
    conflict is held, nothing is pushed."""
    r = three_way("volunteer", base_of(vol()), vol(name="李\u200b明\u200e", skills=["急\u00ad救"]),
                  vol(name="李敏", skills=["翻译"]), MANUAL, KEY)
    assert not r.conflicts and r.push == []
    assert sorted(r.apply_local) == ["name", "skills"]
    o = three_way("org", base_of(org()), org(name="测试\ufeff组织", contact_name="\u202e王芳\u202c"),
                  org(contact_name="王芳芳"), MANUAL, KEY)
    assert not o.conflicts and o.push == [] and o.apply_local == ["contact_name"]


@pytest.mark.parametrize(("group", "field", "local", "remote"), [
    ("identity", "name", "李明明", "李敏"),
    ("contact", "phone", "13700000001", "13700000002"),
    ("descriptive", "region_code", "230103", "230104"),
    ("residence", "home_province", "11", "12"),
])
def test_both_changed_follow_the_groups_policy(group: str, field: str, local: Any, remote: Any) -> None:
    b, lo, re = vol(), vol(**{field: local}), vol(**{field: remote})
    for policy, expected in (("registry", remote), ("local", local)):
        r = three_way("volunteer", base_of(b), lo, re, {group: policy}, KEY)
        assert r.merged[field] == expected
        assert [(d.field, d.rule, d.winner) for d in r.decisions] == [(field, "policy", policy)]
        assert (r.push, r.apply_local) == (([field], []) if policy == "local" else ([], [field]))


def test_defaults_follow_design_md() -> None:
    assert check_policies({}) == {"identity": "registry", "structure": "local", "contact": "registry",
                                  "descriptive": "local", "residence": "registry", "records": "local"}
    b = org()
    r = three_way("org", base_of(b), org(region_code="230102", contact_name="甲"),
                  org(region_code="230103", contact_name="乙"), {}, KEY)
    assert r.merged["region_code"] == "230102" and r.merged["contact_name"] == "乙"


def test_manual_holds_one_field_and_merges_the_others() -> None:
    b = vol()
    r = three_way("volunteer", base_of(b), vol(phone="13700000001", region_code="230103"),
                  vol(phone="13700000002", skills=["翻译"]), MANUAL, KEY)
    assert r.conflicted == {"phone"}
    assert r.merged["region_code"] == "230103" and r.merged["skills"] == ["翻译"]
    assert r.merged["phone"] == "13700000001"  # kept as it is locally: nothing decided
    assert r.push == ["region_code"] and r.apply_local == ["skills"]
    # the conflicted field keeps its old base, so the next merge still sees both sides changed
    assert r.new_base["phone"] == base_of(b)["phone"]
    assert r.new_base["skills"] == ["翻译"]
    again = three_way("volunteer", r.new_base, vol(phone="13700000001", region_code="230103", skills=["翻译"]),
                      vol(phone="13700000002", skills=["翻译"], region_code="230103"), MANUAL, KEY)
    assert again.conflicted == {"phone"} and again.push == [] and again.apply_local == []


def test_conflicts_hold_no_clear_personal_data() -> None:
    b = vol()
    r = three_way("volunteer", base_of(b), vol(id_number="230102199001011253", phone="13700000001"),
                  vol(id_number="23010219900101127X", phone="13700000002"), MANUAL, KEY)
    by = {c.field: c for c in r.conflicts}
    assert set(by) == {"id_number", "phone"}
    c = by["id_number"]
    assert c.local == "230102********1253" and c.remote == "230102********127X"
    assert c.local_hash and c.local_hash.startswith("h:") and c.local_hash != c.remote_hash
    assert c.base == base_of(b)["id_number"] and c.base.startswith("h:")
    assert by["phone"].local == "137****0001" and by["phone"].remote == "137****0002"
    text = repr(r.conflicts)
    for clear in ("230102199001011253", "23010219900101127X", "13700000001", "13700000002", "13912345678"):
        assert clear not in text


def test_personal_fields_are_compared_through_hashes() -> None:
    b = base_of(vol())
    assert b["id_number"].startswith("h:") and b["phone"].startswith("h:")
    # unchanged locally, changed remotely: the hash of the local value equals the base's
    r = three_way("volunteer", b, vol(), vol(phone="13700002222"), {}, KEY)
    assert r.apply_local == ["phone"] and r.new_base["phone"].startswith("h:")
    assert "13700002222" not in repr(r.new_base)
    # a base written with another key sees every personal field as changed on both sides
    other = canonical(vol(), "another-key")
    r = three_way("volunteer", other, vol(), vol(), MANUAL, KEY)
    assert {d.rule for d in r.decisions} == {"agree"}


@pytest.mark.parametrize(("kind", "make", "ended"), [("volunteer", vol, "DEREGISTERED"), ("org", org, "DISSOLVED")])
def test_the_side_that_ended_it_wins(kind: str, make: Any, ended: str) -> None:
    b = make()
    r = three_way(kind, base_of(b), make(name="改名了"), make(status=ended), MANUAL, KEY)
    assert r.merged["status"] == ended and "status" in r.apply_local
    assert ("status", "ended_wins", "registry") in {(d.field, d.rule, d.winner) for d in r.decisions}
    r = three_way(kind, base_of(b), make(status=ended), make(), MANUAL, KEY)
    assert r.merged["status"] == ended and r.push == ["status"]


def test_an_ended_record_is_not_revived() -> None:
    b = vol(status="DEREGISTERED")
    r = three_way("volunteer", base_of(b), vol(status="ACTIVE"), vol(status="DEREGISTERED"), {}, KEY)
    assert r.merged["status"] == "DEREGISTERED" and r.apply_local == ["status"] and r.push == []
    assert [(d.field, d.rule, d.winner) for d in r.decisions] == [("status", "not_revived", "registry")]


def test_activity_cancelled_on_one_side_wins_over_completed() -> None:
    act = {"org_id": "O1", "title": "清洁", "category": "ENVIRONMENT", "region_code": "230102",
           "starts_at": dt.datetime(2026, 5, 1), "ends_at": dt.datetime(2026, 5, 2), "planned_headcount": 5,
           "status": "PUBLISHED"}
    r = three_way("activity", base_of(act), dict(act, status="COMPLETED"), dict(act, status="CANCELLED"), {}, KEY)
    assert r.merged["status"] == "CANCELLED"


def test_service_records_are_never_merged() -> None:
    with pytest.raises(ValueError, match="never merged"):
        three_way("service_record", {}, {}, {}, {}, KEY)


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        check_policies({"contact": "whoever"})
    with pytest.raises(ValueError):
        check_policies({"colour": "local"})


# ---------------------------------------------------------------------------------------------- properties

_VALUES = {
    "name": st.sampled_from(["李明", "李敏", "阿依古丽·买买提"]),
    "phone": st.sampled_from([None, "13912345678", "13700002222"]),
    "id_number": st.sampled_from(["230102199001011237", "230102199001011253"]),
    "region_code": st.sampled_from(["230102", "230103"]),
    "skills": st.sampled_from([[], ["急救"], ["翻译", "急救"]]),
    "home_province": st.sampled_from(["23", "11"]),
    "status": st.sampled_from(["ACTIVE", "DEREGISTERED"]),
}


def _volunteers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: s for k, s in _VALUES.items()}).map(lambda d: vol(**d))


_policy_maps = st.fixed_dictionaries({g: st.sampled_from(["registry", "local", "manual"]) for g in DEFAULT_POLICIES})


@settings(max_examples=300, deadline=None)
@given(b=_volunteers(), lo=_volunteers(), re=_volunteers(), pol=_policy_maps)
def test_merge_properties(b: dict[str, Any], lo: dict[str, Any], re: dict[str, Any], pol: dict[str, str]) -> None:
    base = base_of(b)
    r1 = three_way("volunteer", base, lo, re, pol, KEY)
    r2 = three_way("volunteer", base, lo, re, pol, KEY)
    assert r1 == r2  # deterministic
    cb, cl, cr = base, base_of(lo), base_of(re)
    for name in FIELDS["volunteer"]:
        merged = canonical({name: r1.merged[name]}, KEY)[name]
        revival = name == "status" and cb[name] == "DEREGISTERED"
        if cl[name] != cb[name] and cr[name] == cb[name] and not revival:
            assert merged == cl[name], name  # changed locally only: the local value
        if cr[name] != cb[name] and cl[name] == cb[name] and name != "status":
            assert merged == cr[name], name  # changed in the registry only: the registry's
        if name == "status" and "DEREGISTERED" in (cl[name], cr[name]):
            assert merged == "DEREGISTERED"  # an ending is never undone
    # pushes and local writes are exactly where the merged value differs from each side
    assert set(r1.push) | r1.conflicted >= {n for n in FIELDS["volunteer"]
                                             if canonical({n: r1.merged[n]}, KEY)[n] != cr[n]}
    assert not set(r1.push) & set(r1.apply_local)


@settings(max_examples=200, deadline=None)
@given(b=_volunteers(), lo=_volunteers(), re=_volunteers())
def test_with_registry_policies_the_result_is_the_registrys_where_it_changed(
        b: dict[str, Any], lo: dict[str, Any], re: dict[str, Any]) -> None:
    r = three_way("volunteer", base_of(b), lo, re, {g: "registry" for g in DEFAULT_POLICIES}, KEY)
    cb, cr = base_of(b), base_of(re)
    for name in FIELDS["volunteer"]:
        if name == "status":
            continue  # the ending rule, not a policy
        if cr[name] != cb[name]:
            assert canonical({name: r.merged[name]}, KEY)[name] == cr[name], name
    assert not r.conflicts


def test_a_v11_records_fields_follow_the_records_group_and_training_records_are_never_merged() -> None:
    """design.md, "Conflict policy": trainings, commendations, evaluations: every writable field, ``local`` by
    default (the province records them); training records are never merged (immutable, like service records)."""
    base = {"title": "急救培训", "class_hours": 200, "status": "SCHEDULED"}
    local, remote = {**base, "title": "应急救护培训"}, {**base, "title": "急救知识培训"}
    assert three_way("training", base_of(base), local, remote, {}, KEY).merged["title"] == "应急救护培训"
    held = three_way("training", base_of(base), local, remote, {"records": "manual"}, KEY)
    assert held.conflicted == {"title"}
    taken = three_way("training", base_of(base), local, remote, {"records": "registry"}, KEY)
    assert taken.merged["title"] == "急救知识培训" and taken.apply_local == ["title"]
    with pytest.raises(ValueError, match="never merged"):
        three_way("training_record", {}, {}, {}, {}, KEY)
