"""v1.1 §4.7 training records (``/training-records``): create and the volunteer's ``trainingHours``, the refusals
with their codes, immutability, ``:revoke``, ``:correct``, the one-ACCEPTED-per-pair rule, the batch ops, the
export, the feed, and records entered on the portal (§8). Raw signed HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson

from conftest import field_codes, org, training, training_record, volunteer


def _setup(env: Any, **over: Any) -> dict[str, Any]:
    """An org, a training of 4.00 class hours on 2025-06-01, a volunteer."""
    org_id = env.api.create("orgs", org("CITY_CORPS", regionCode="230100")).json()["data"]["id"]
    r = env.api.create("trainings", training(org_id, **over))
    assert r.status_code == 201, r.text
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    return {"org": org_id, "training": r.json()["data"], "vol": vol}


def _create(env: Any, d: dict[str, Any], **over: Any) -> Any:
    return env.api.create("training-records", training_record(d["training"]["id"], d["vol"]["id"], **over))


def _vol(env: Any, d: dict[str, Any]) -> dict[str, Any]:
    return env.api.call("GET", f"/volunteers/{d['vol']['id']}").json()["data"]


def _head(env: Any) -> str:
    return env.api.call("GET", "/changes").json()["data"]["nextCursor"]


def _changes(env: Any, cursor: str) -> dict[tuple[str, str], dict[str, Any]]:
    got = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    return {(c["type"], c["id"]): c for c in got}


def _revoke(api: Any, rid: str, body: Any) -> Any:
    return api.call("POST", f"/training-records/{rid}:revoke", body)


def test_a_volunteer_has_training_hours_from_creation(env):
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    assert vol["trainingHours"] == "0.00"
    body = volunteer(trainingHours="3.00")
    assert field_codes(env.api.create("volunteers", body)) == {"trainingHours": "READ_ONLY_FIELD"}


def test_create_accepts_the_record_and_adds_its_class_hours_to_the_volunteer(env):
    d = _setup(env)
    cursor = _head(env)
    r = _create(env, d, classHours="3.50")
    assert r.status_code == 201, r.text
    rec = r.json()["data"]
    assert rec["id"].startswith("TRR") and rec["status"] == "ACCEPTED" and rec["classHours"] == "3.50"
    assert rec["revokeReason"] is None and rec["correctsId"] is None
    vol = _vol(env, d)
    assert vol["trainingHours"] == "3.50" and vol["version"] == d["vol"]["version"] + 1
    assert vol["totalHours"] == "0.00"  # service hours are another thing
    seen = _changes(env, cursor)
    assert seen[("trainingRecord", rec["id"])]["op"] == "upsert"
    assert seen[("volunteer", vol["id"])]["version"] == vol["version"]


def test_refusals_with_their_codes(env):
    d = _setup(env)
    assert field_codes(_create(env, d, classHours="4.50")) == {"classHours": "INVALID_CLASS_HOURS"}  # > training's
    assert field_codes(_create(env, d, classHours="1.25")) == {"classHours": "INVALID_CLASS_HOURS"}
    assert field_codes(_create(env, d, completedOn="2025-06-02")) == {"completedOn": "OUT_OF_RANGE"}
    assert field_codes(_create(env, d, completedOn="2099-06-02")) == {"completedOn": "OUT_OF_RANGE"}
    assert field_codes(_create(env, d, result="FAILED")) == {"result": "INVALID_VALUE"}
    assert field_codes(_create(env, d, status="REVOKED")) == {"status": "INVALID_VALUE"}
    assert field_codes(_create(env, d, trainingId="TRN0000000009999")) == {"trainingId": "REFERENCE_NOT_FOUND"}
    assert field_codes(_create(env, d, volunteerId="VOL0000000009999")) == {"volunteerId": "REFERENCE_NOT_FOUND"}
    assert field_codes(_create(env, d, correctsId="TRR1")) == {"correctsId": "READ_ONLY_FIELD"}


def test_a_cancelled_training_or_a_deregistered_volunteer_is_not_active(env):
    d = _setup(env)
    t = d["training"]
    body = {k: v for k, v in t.items() if k in training(d["org"])}
    assert env.api.put("trainings", t["id"], {**body, "status": "CANCELLED"}, 1).status_code == 200
    assert field_codes(_create(env, d)) == {"trainingId": "REFERENCE_NOT_ACTIVE"}
    d2 = _setup(env)
    gone = env.api.call("DELETE", f"/volunteers/{d2['vol']['id']}", headers={"If-Match": '"1"'})
    assert gone.status_code == 200
    assert field_codes(_create(env, d2)) == {"volunteerId": "REFERENCE_NOT_ACTIVE"}


def test_a_training_of_another_province_is_not_found(env):
    bj_org = env.bj.create("orgs", org("CITY_CORPS", regionCode="110100")).json()["data"]["id"]
    bj_training = env.bj.create("trainings", training(bj_org, regionCode="110101")).json()["data"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    r = env.api.create("training-records", training_record(bj_training["id"], vol["id"]))
    assert field_codes(r) == {"trainingId": "REFERENCE_NOT_FOUND"}


def test_one_accepted_record_per_training_and_volunteer(env):
    d = _setup(env)
    first = _create(env, d).json()["data"]
    dup = _create(env, d, classHours="2.00")
    assert dup.status_code == 409 and dup.json()["code"] == "DUPLICATE_TRAINING_RECORD"
    assert dup.json()["data"]["existingId"] == first["id"]
    assert _revoke(env.api, first["id"], {"reason": "录入错误"}).status_code == 200
    again = _create(env, d, classHours="2.00")
    assert again.status_code == 201, again.text
    assert _vol(env, d)["trainingHours"] == "2.00"


def test_a_record_is_immutable_and_revoked_idempotently(env):
    d = _setup(env)
    rec = _create(env, d).json()["data"]
    put = env.api.put("training-records", rec["id"], training_record(d["training"]["id"], d["vol"]["id"]), 1)
    assert put.status_code == 409 and put.json()["code"] == "INVALID_STATE"
    assert field_codes(_revoke(env.api, rec["id"], {})) == {"reason": "REQUIRED"}
    assert field_codes(_revoke(env.api, rec["id"], {"reason": "x", "why": 1})) == {"why": "UNKNOWN_FIELD"}
    assert _revoke(env.other, rec["id"], {"reason": "x"}).status_code == 403
    cursor = _head(env)
    r = _revoke(env.api, rec["id"], {"reason": "重复录入"})
    assert r.status_code == 200, r.text
    gone = r.json()["data"]
    assert gone["status"] == "REVOKED" and gone["revokeReason"] == "重复录入" and gone["version"] == 2
    assert _changes(env, cursor)[("trainingRecord", rec["id"])]["op"] == "upsert"  # §5.3: a revoke is an upsert
    assert _vol(env, d)["trainingHours"] == "0.00"
    twice = _revoke(env.api, rec["id"], {"reason": "重复录入"})
    assert twice.status_code == 200 and twice.json()["data"]["version"] == 2
    assert _revoke(env.api, "TRR0000000009999", {"reason": "x"}).status_code == 404


def test_correct_revokes_the_old_record_and_accepts_the_new_one_in_one_step(env):
    d = _setup(env)
    old = _create(env, d).json()["data"]
    vol = _vol(env, d)
    body = training_record(d["training"]["id"], d["vol"]["id"], classHours="2.50")
    key = env.api.key()
    r = env.api.call("POST", f"/training-records/{old['id']}:correct", body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert new["correctsId"] == old["id"] and new["classHours"] == "2.50"  # the pair rule without the old one
    gone = env.api.call("GET", f"/training-records/{old['id']}").json()["data"]
    assert gone["status"] == "REVOKED" and gone["revokeReason"] == "corrected"
    after = _vol(env, d)
    assert after["trainingHours"] == "2.50" and after["version"] == vol["version"] + 1  # one change
    replay = env.api.call("POST", f"/training-records/{old['id']}:correct", body, headers={"Idempotency-Key": key})
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    # the old record is no more ACCEPTED; a refused correction changes nothing
    again = env.api.call(
        "POST", f"/training-records/{old['id']}:correct", training_record(d["training"]["id"], d["vol"]["id"]),
        headers={"Idempotency-Key": env.api.key()},
    )
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"
    bad = env.api.call(
        "POST", f"/training-records/{new['id']}:correct",
        training_record(d["training"]["id"], d["vol"]["id"], classHours="9.00"),
        headers={"Idempotency-Key": env.api.key()},
    )
    assert field_codes(bad) == {"classHours": "INVALID_CLASS_HOURS"}
    assert env.api.call("GET", f"/training-records/{new['id']}").json()["data"]["status"] == "ACCEPTED"
    assert _vol(env, d)["trainingHours"] == "2.50"


def test_batch_create_revoke_and_correct(env):
    d = _setup(env)
    tid, vid = d["training"]["id"], d["vol"]["id"]
    vol2 = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    ops = [
        {"op": "create", "type": "trainingRecord", "idempotencyKey": "r-1", "body": training_record(tid, vid)},
        {"op": "create", "type": "trainingRecord", "idempotencyKey": "r-2", "body": training_record(tid, vid)},
        {"op": "create", "type": "trainingRecord", "idempotencyKey": "r-3", "body": training_record(tid, vol2)},
    ]
    res = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in res] == [201, 409, 201]
    assert res[1]["code"] == "DUPLICATE_TRAINING_RECORD" and res[1]["data"]["existingId"] == res[0]["id"]
    ops2 = [
        {"op": "revoke", "type": "trainingRecord", "id": res[2]["id"], "body": {"reason": "未参训"}},
        {"op": "correct", "type": "trainingRecord", "id": res[0]["id"], "idempotencyKey": "r-4",
         "body": training_record(tid, vid, classHours="1.00")},
        {"op": "update", "type": "trainingRecord", "id": res[0]["id"], "ifMatch": 1, "body": {}},
    ]
    res2 = env.api.batch(ops2).json()["data"]["results"]
    assert [x["status"] for x in res2] == [200, 201, 409]
    assert res2[1]["data"]["correctsId"] == res[0]["id"]
    assert _vol(env, d)["trainingHours"] == "1.00"
    assert env.api.call("GET", f"/volunteers/{vol2}").json()["data"]["trainingHours"] == "0.00"


def test_the_export_of_training_records_is_the_provinces(env):
    d = _setup(env)
    ids = [_create(env, d)]
    r = env.api.call("GET", "/exports/training-records", params={"province": "23"})
    assert r.status_code == 200
    assert [orjson.loads(x)["id"] for x in r.text.splitlines() if x] == [ids[0].json()["data"]["id"]]
    bj = env.bj.call("GET", "/exports/training-records", params={"province": "11"})
    assert bj.status_code == 200 and bj.text == ""


def test_a_training_record_entered_on_the_portal_is_the_portals(env):
    d = _setup(env)
    body = training_record(d["training"]["id"], d["vol"]["id"])
    assert field_codes(env.admin("POST", "/portal/training-records", body)) == {"clientRef": "READ_ONLY_FIELD"}
    del body["clientRef"]
    cursor = _head(env)
    r = env.admin("POST", "/portal/training-records", body)
    assert r.status_code == 201, r.text
    rec = r.json()["data"]
    assert rec["ownerClientId"] == "PORTAL" and rec["clientRef"] is None
    assert _vol(env, d)["trainingHours"] == "4.00"
    seen = _changes(env, cursor)
    assert seen[("trainingRecord", rec["id"])]["byClientId"] == "PORTAL"
    denied = _revoke(env.api, rec["id"], {"reason": "x"})
    assert denied.status_code == 403 and denied.json()["code"] == "NOT_OWNER"
    dup = env.admin("POST", "/portal/training-records", body)
    assert dup.status_code == 409 and dup.json()["code"] == "DUPLICATE_TRAINING_RECORD"
    assert env.admin("GET", "/counters").json()["data"]["portal"]["training_record"] == 1
