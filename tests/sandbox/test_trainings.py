"""v1.1 §4.6 trainings (``/trainings``): create, the refusals with their codes, update under If-Match, the
cancellation by PUT, ownership, the batch type ``training``, the export and the feed. Raw signed HTTP, on SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson

from conftest import field_codes, org, training


def _org(env: Any) -> str:
    r = env.api.create("orgs", org("CITY_CORPS", regionCode="230100"))
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]


def _create(env: Any, org_id: str, **over: Any) -> Any:
    return env.api.create("trainings", training(org_id, **over))


def _head(env: Any) -> str:
    return env.api.call("GET", "/changes").json()["data"]["nextCursor"]


def _changes(env: Any, cursor: str) -> list[dict[str, Any]]:
    return env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]


def test_create_answers_the_training_scheduled_with_its_class_hours(env):
    org_id = _org(env)
    cursor = _head(env)
    r = _create(env, org_id, classHours="4.50", mode="ONLINE", address=None)
    assert r.status_code == 201, r.text
    t = r.json()["data"]
    assert t["id"].startswith("TRN") and t["version"] == 1 and t["status"] == "SCHEDULED"
    assert t["classHours"] == "4.50" and t["address"] is None and t["ownerClientId"] == "hlj-platform"
    assert t["startsAt"] == "2025-06-01T09:00:00+08:00"
    got = env.api.call("GET", f"/trainings/{t['id']}")
    assert got.status_code == 200 and got.headers["etag"] == '"1"' and got.json()["data"] == t
    assert [(c["type"], c["id"], c["op"]) for c in _changes(env, cursor)] == [("training", t["id"], "upsert")]
    found = env.api.call("GET", "/trainings", params={"clientRef": t["clientRef"]}).json()["data"]["records"]
    assert [x["id"] for x in found] == [t["id"]]


def test_a_training_may_be_created_completed_once_it_ended_never_cancelled(env):
    org_id = _org(env)
    r = _create(env, org_id, status="COMPLETED")
    assert r.status_code == 201 and r.json()["data"]["status"] == "COMPLETED"
    future = _create(
        env, org_id, status="COMPLETED", startsAt="2099-06-01T09:00:00+08:00", endsAt="2099-06-01T17:00:00+08:00"
    )
    assert future.status_code == 409 and future.json()["code"] == "INVALID_STATE"
    assert field_codes(_create(env, org_id, status="CANCELLED")) == {"status": "INVALID_VALUE"}


def test_class_hours_refusals_are_invalid_class_hours(env):
    org_id = _org(env)
    for hours in ("0.00", "0.25", "2.25", "200.50", "2.5", 4, "abc"):
        assert field_codes(_create(env, org_id, classHours=hours)) == {"classHours": "INVALID_CLASS_HOURS"}, hours
    # more class hours than the span from startsAt to endsAt (8 hours)
    assert field_codes(_create(env, org_id, classHours="8.50")) == {"classHours": "INVALID_CLASS_HOURS"}
    assert _create(env, org_id, classHours="8.00").status_code == 201
    long = _create(env, org_id, classHours="200.00", endsAt="2025-06-30T17:00:00+08:00")
    assert long.status_code == 201, long.text


def test_field_refusals_with_their_codes(env):
    org_id = _org(env)
    assert field_codes(_create(env, org_id, address=None)) == {"address": "REQUIRED"}  # IN_PERSON
    assert field_codes(_create(env, org_id, regionCode="110101")) == {"regionCode": "INVALID_REGION"}
    assert field_codes(_create(env, org_id, trainingType="OTHER", mode="BOTH")) == {
        "trainingType": "INVALID_VALUE",
        "mode": "INVALID_VALUE",
    }
    assert field_codes(_create(env, org_id, endsAt="2025-06-01T08:00:00+08:00")) == {"endsAt": "INVALID_DATE"}
    assert field_codes(_create(env, org_id, contactPhone="12345")) == {"contactPhone": "INVALID_PHONE"}
    assert field_codes(_create(env, org_id, title="培")) == {"title": "TOO_SHORT"}
    assert field_codes(_create(env, org_id, venue="x", version=3)) == {
        "venue": "UNKNOWN_FIELD",
        "version": "READ_ONLY_FIELD",
    }
    body = training(org_id)
    del body["clientRef"]
    assert field_codes(env.api.create("trainings", body)) == {"clientRef": "REQUIRED"}


def test_the_organizing_org_is_active_and_of_the_province(env):
    assert field_codes(_create(env, "ORG9999999999999")) == {"orgId": "REFERENCE_NOT_FOUND"}
    bj = env.bj.create("orgs", org("CITY_CORPS", regionCode="110100"))
    assert bj.status_code == 201, bj.text
    assert field_codes(_create(env, bj.json()["data"]["id"])) == {"orgId": "REFERENCE_NOT_FOUND"}
    org_id = _org(env)
    assert env.admin("PATCH", f"/records/orgs/{org_id}", {"status": "SUSPENDED"}).status_code == 200
    assert field_codes(_create(env, org_id)) == {"orgId": "REFERENCE_NOT_ACTIVE"}


def test_a_client_ref_is_used_once(env):
    org_id = _org(env)
    first = _create(env, org_id, clientRef="T-1")
    again = _create(env, org_id, clientRef="T-1")
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE_CLIENT_REF"
    assert again.json()["data"]["existingId"] == first.json()["data"]["id"]


def test_update_under_if_match_and_every_field_but_the_org(env):
    org_id = _org(env)
    t = _create(env, org_id).json()["data"]
    body = training(org_id, clientRef=t["clientRef"], title="志愿者应急救护培训", classHours="6.00")
    assert env.api.put("trainings", t["id"], body, None).status_code == 428
    stale = env.api.put("trainings", t["id"], body, 7)
    assert stale.status_code == 412 and stale.json()["data"]["current"]["version"] == 1
    r = env.api.put("trainings", t["id"], body, 1)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["title"] == "志愿者应急救护培训" and r.json()["data"]["classHours"] == "6.00"
    assert r.json()["data"]["version"] == 2
    same = env.api.put("trainings", t["id"], body, 2)
    assert same.status_code == 200 and same.json()["data"]["version"] == 2  # nothing changed: no version
    other = _org(env)
    moved = env.api.put("trainings", t["id"], {**body, "orgId": other}, 2)
    assert field_codes(moved) == {"orgId": "READ_ONLY_FIELD"}
    omitted = {k: v for k, v in body.items() if k != "orgId"}
    assert env.api.put("trainings", t["id"], {**omitted, "title": "急救培训"}, 2).json()["data"]["orgId"] == org_id
    early = env.api.put(
        "trainings", t["id"], {**body, "status": "COMPLETED", "endsAt": "2099-01-01T00:00:00+08:00"}, 3
    )
    assert early.status_code == 409 and early.json()["code"] == "INVALID_STATE"
    done = env.api.put("trainings", t["id"], {**body, "status": "COMPLETED"}, 3)
    assert done.status_code == 200 and done.json()["data"]["status"] == "COMPLETED"
    back = env.api.put("trainings", t["id"], {**body, "status": "SCHEDULED"}, 4)
    assert back.status_code == 200 and back.json()["data"]["status"] == "SCHEDULED"


def test_cancel_by_put_ends_the_training_fed_as_an_upsert(env):
    org_id = _org(env)
    t = _create(env, org_id).json()["data"]
    cursor = _head(env)
    body = training(org_id, clientRef=t["clientRef"], status="CANCELLED")
    r = env.api.put("trainings", t["id"], body, 1)
    assert r.status_code == 200 and r.json()["data"]["status"] == "CANCELLED"
    assert [(c["type"], c["op"], c["version"]) for c in _changes(env, cursor)] == [("training", "upsert", 2)]
    revived = env.api.put("trainings", t["id"], {**body, "status": "SCHEDULED"}, 2)
    assert revived.status_code == 409 and revived.json()["code"] == "INVALID_STATE"
    gone = env.api.call("DELETE", f"/trainings/{t['id']}", headers={"If-Match": '"2"'})
    assert gone.status_code == 400  # a training is not deleted: cancelled by PUT


def test_another_clients_training_is_not_owned(env):
    org_id = _org(env)
    t = _create(env, org_id).json()["data"]
    r = env.other.put("trainings", t["id"], training(org_id, clientRef=t["clientRef"]), 1)
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    assert env.api.put("trainings", "TRN0000000009999", training(org_id), 1).status_code == 404


def test_batch_creates_and_updates_trainings(env):
    org_id = _org(env)
    ops = [
        {"op": "create", "type": "training", "idempotencyKey": "b-1", "body": training(org_id)},
        {"op": "create", "type": "training", "idempotencyKey": "b-2", "body": training(org_id, classHours="0.25")},
    ]
    results = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in results] == [201, 422]
    assert results[1]["data"]["errors"][0]["code"] == "INVALID_CLASS_HOURS"
    tid = results[0]["id"]
    up = [{"op": "update", "type": "training", "id": tid, "ifMatch": 1,
           "body": training(org_id, clientRef=ops[0]["body"]["clientRef"], status="CANCELLED")}]
    res = env.api.batch(up).json()["data"]["results"]
    assert res[0]["status"] == 200 and res[0]["data"]["status"] == "CANCELLED"
    bad = env.api.batch([{"op": "revoke", "type": "training", "id": tid, "body": {"reason": "x"}}])
    assert bad.json()["data"]["results"][0]["status"] == 400


def test_the_trainings_export_covers_the_province_by_id(env):
    org_id = _org(env)
    ids = [_create(env, org_id).json()["data"]["id"] for _ in range(3)]
    bj_org = env.bj.create("orgs", org("CITY_CORPS", regionCode="110100")).json()["data"]["id"]
    assert env.bj.create("trainings", training(bj_org, regionCode="110101")).status_code == 201
    r = env.api.call("GET", "/exports/trainings", params={"province": "23"})
    assert r.status_code == 200 and r.headers["x-snapshot-cursor"].isdigit()
    lines = [line for line in r.text.splitlines() if line]

    assert [orjson.loads(line)["id"] for line in lines] == sorted(ids)
