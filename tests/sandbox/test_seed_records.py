"""``POST /_sandbox/records/{collection}`` (docs/sandbox.md): records seeded as older channels left them, of every
kind, v1.1's included. No rule of the registry's is checked, but what the sandbox needs to store a record is: a
record without a key field, or with one it cannot store, is refused 4xx (never 500) and nothing is inserted. On
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

#: A minimal storable record per collection (the key fields and where the province comes from), ids made up:
#: seeding checks no reference.
MINIMAL: dict[str, dict[str, Any]] = {
    "orgs": {"name": "哈尔滨市志愿服务总队", "parentId": None, "uscc": None, "regionCode": "230100"},
    "volunteers": {"idType": "RESIDENT_ID", "idNumber": "230102199003071234", "homeProvince": "23"},
    "memberships": {"orgId": "ORG1", "volunteerId": "VOL1", "joinedOn": "2025-01-01", "leftOn": None},
    "activities": {"orgId": "ORG1", "regionCode": "230102", "title": "社区清扫"},
    "service-records": {"volunteerId": "VOL1", "orgId": "ORG1", "serviceDate": "2025-05-01", "hours": "2.00"},
    "trainings": {"orgId": "ORG1", "regionCode": "230102", "title": "急救培训", "classHours": "4.00"},
    "training-records": {"trainingId": "TRN1", "volunteerId": "VOL1", "classHours": "4.00"},
    "commendations": {"subjectType": "VOLUNTEER", "subjectId": "VOL1", "title": "优秀志愿者"},
    "evaluations": {"activityId": "ACT1", "volunteerId": "VOL1", "punctuality": 5},
}
#: The fields a record cannot be stored without, per collection (without a ``province`` in the call).
KEYS = {
    "orgs": ("parentId", "uscc", "regionCode"),
    "volunteers": ("idType", "idNumber", "homeProvince"),
    "memberships": ("orgId", "volunteerId"),
    "activities": ("orgId", "regionCode"),
    "service-records": ("volunteerId", "orgId", "serviceDate"),
    "trainings": ("orgId", "regionCode"),
    "training-records": ("trainingId", "volunteerId"),
    "commendations": ("subjectType", "subjectId"),
    "evaluations": ("activityId", "volunteerId"),
}


def _seed(env: Any, collection: str, records: Any, **extra: Any) -> Any:
    return env.admin("POST", f"/records/{collection}", {"records": records, **extra})


def _errors(r: Any) -> set[tuple[str, str]]:
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "VALIDATION_FAILED"
    return {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}


def _held(env: Any, collection: str) -> list[dict[str, Any]]:
    return env.admin("GET", f"/records/{collection}").json()["data"]["records"]


@pytest.mark.parametrize("collection", list(KEYS))
def test_a_record_without_a_key_field_is_refused_and_nothing_is_inserted(env, collection):
    for key in KEYS[collection]:
        whole = dict(MINIMAL[collection])
        del whole[key]
        r = _seed(env, collection, [MINIMAL[collection], whole])
        assert _errors(r) == {(f"records[1].{key}", "REQUIRED")}, (collection, key)
        assert _held(env, collection) == []  # the call is refused whole: the good record is not in either
    key = next(k for k in KEYS[collection] if k not in ("parentId", "uscc"))  # an org's parent and USCC may be null
    assert _errors(_seed(env, collection, [{**MINIMAL[collection], key: None}])) == {(f"records[0].{key}", "REQUIRED")}
    r = _seed(env, collection, [MINIMAL[collection]])
    assert r.status_code == 201, r.text
    assert [x["id"] for x in _held(env, collection)] == r.json()["data"]["ids"]


def test_the_v11_kinds_seed_with_their_key_fields_in_their_province(env):
    org = _seed(env, "orgs", [MINIMAL["orgs"]]).json()["data"]["ids"][0]
    vol = _seed(env, "volunteers", [MINIMAL["volunteers"]]).json()["data"]["ids"][0]
    act = _seed(env, "activities", [{**MINIMAL["activities"], "orgId": org}]).json()["data"]["ids"][0]
    trn = _seed(env, "trainings", [{**MINIMAL["trainings"], "orgId": org}]).json()["data"]["ids"][0]
    seeded = {
        "training-records": {**MINIMAL["training-records"], "trainingId": trn, "volunteerId": vol},
        "commendations": {**MINIMAL["commendations"], "subjectId": vol},
        "evaluations": {**MINIMAL["evaluations"], "activityId": act, "volunteerId": vol},
    }
    for collection, body in seeded.items():
        r = _seed(env, collection, [body])
        assert r.status_code == 201, r.text
        (rec,) = _held(env, collection)
        # stored as given, with what it left out filled in: the common fields and the status on create (§4)
        assert rec["id"] == r.json()["data"]["ids"][0] and rec["ownerClientId"] == "PORTAL" and rec["version"] == 1
        assert rec["status"] == ("ACCEPTED" if collection == "training-records" else "ACTIVE")
        # the province of the record it names (§1 "scope"): in 23's export, not 11's
        assert rec["id"] in env.api.call("GET", f"/exports/{collection}", params={"province": "23"}).text
        assert rec["id"] not in env.bj.call("GET", f"/exports/{collection}", params={"province": "11"}).text
    assert {x["status"] for x in _held(env, "trainings")} == {"SCHEDULED"}
    # a province named by the call: none of the fields it would come from is needed
    r = _seed(env, "trainings", [{"orgId": org, "title": "线上培训"}], province="11")
    assert r.status_code == 201, r.text
    assert r.json()["data"]["ids"][0] in env.bj.call("GET", "/exports/trainings", params={"province": "11"}).text


def test_what_cannot_be_stored_is_refused_4xx(env):
    tr = MINIMAL["training-records"]
    assert _errors(_seed(env, "training-records", [{**tr, "trainingId": 5}])) == {
        ("records[0].trainingId", "INVALID_VALUE")
    }
    assert _errors(_seed(env, "training-records", [{**tr, "volunteerId": "V" * 33}])) == {
        ("records[0].volunteerId", "INVALID_VALUE")
    }
    assert _errors(_seed(env, "commendations", [MINIMAL["commendations"], "优秀志愿者"])) == {
        ("records[1]", "INVALID_VALUE")
    }
    assert _errors(_seed(env, "evaluations", [{**MINIMAL["evaluations"], "version": "1"}])) == {
        ("records[0].version", "INVALID_VALUE")
    }
    assert _errors(_seed(env, "volunteers", [{**MINIMAL["volunteers"], "totalHours": 12.5}])) == {
        ("records[0].totalHours", "INVALID_VALUE")
    }
    assert _errors(_seed(env, "trainings", [{**MINIMAL["trainings"], "regionCode": 230102}])) == {
        ("records[0].regionCode", "INVALID_VALUE")
    }
    # a value too long for its key column is refused on every engine (SQLite would keep it without a word)
    long_number = {**MINIMAL["volunteers"], "idNumber": "2" * 100}
    assert _errors(_seed(env, "volunteers", [MINIMAL["volunteers"], long_number])) == {("records[1]", "INVALID_VALUE")}
    long_title = {**MINIMAL["commendations"], "title": "优" * 400}
    assert _errors(_seed(env, "commendations", [long_title])) == {("records[0]", "INVALID_VALUE")}
    for collection in ("volunteers", "commendations", "training-records", "trainings", "evaluations"):
        assert _held(env, collection) == []
    r = _seed(env, "trainings", [MINIMAL["trainings"]], province=23)
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    # a unique key taken is still a conflict
    assert _seed(env, "volunteers", [MINIMAL["volunteers"]]).status_code == 201
    r = _seed(env, "volunteers", [MINIMAL["volunteers"]])
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
