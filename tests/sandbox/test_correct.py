"""§4.5 (v1.1) correction in one step: ``POST /service-records/{id}:correct`` and the batch op ``correct``.

The old record is revoked and the new one accepted in one transaction, or nothing changes and the new record's
refusal is answered as a create would answer it. Raw signed HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from conftest import activity, service_record, volunteer


def _setup(env: Any) -> dict[str, Any]:
    """A team, a volunteer, an activity and one ACCEPTED record of 4.00 hours."""
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    act = env.api.create("activities", activity(team)).json()["data"]
    r = env.api.create("service-records", service_record(vol["id"], act["id"], team))
    assert r.status_code == 201, r.text
    return {"team": team, "vol": vol, "act": act, "rec": r.json()["data"], "ids": ids}


def _correct(env: Any, rid: str, body: dict[str, Any], key: str | None = None, api: Any = None) -> Any:
    api = api or env.api
    return api.call(
        "POST", f"/service-records/{rid}:correct", body, headers={"Idempotency-Key": key or api.key()}
    )


def _get(env: Any, collection: str, rid: str) -> dict[str, Any]:
    return env.api.call("GET", f"/{collection}/{rid}").json()["data"]


def _head(env: Any) -> str:
    return env.api.call("GET", "/changes").json()["data"]["nextCursor"]


def _changes_since(env: Any, cursor: str) -> list[dict[str, Any]]:
    return env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]


def _fields(s: dict[str, Any], **over: Any) -> dict[str, Any]:
    """A whole new record built from an existing one's writable fields, with a new clientRef."""
    body = {k: s[k] for k in ("volunteerId", "activityId", "orgId", "serviceDate", "startsAt", "endsAt", "hours")}
    body["clientRef"] = f"{s['clientRef']}-r1"
    body.update(over)
    return body


def test_correct_revokes_the_old_record_and_accepts_the_new_one_in_one_step(env):
    d = _setup(env)
    old, vol = d["rec"], _get(env, "volunteers", d["vol"]["id"])
    assert vol["totalHours"] == "4.00"
    cursor = _head(env)
    r = _correct(env, old["id"], _fields(old, hours="3.00"))
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert new["id"] != old["id"] and new["correctsId"] == old["id"] and new["status"] == "ACCEPTED"
    assert new["hours"] == "3.00" and new["clientRef"] == f"{old['clientRef']}-r1"
    assert new["stationId"] == d["ids"]["COMMUNITY_STATION"] and new["revokeReason"] is None
    gone = _get(env, "service-records", old["id"])
    assert gone["status"] == "REVOKED" and gone["revokeReason"] == "corrected" and gone["version"] == 2
    after = _get(env, "volunteers", vol["id"])
    assert after["totalHours"] == "3.00" and after["version"] == vol["version"] + 1  # one change of the total
    # the feed shows both records' changes (the revoke an upsert, §5.3) and the volunteer's new total
    seen = {(c["type"], c["id"]): c for c in _changes_since(env, cursor)}
    assert seen[("serviceRecord", old["id"])]["version"] == 2
    assert seen[("serviceRecord", old["id"])]["op"] == "upsert"
    assert seen[("serviceRecord", new["id"])]["op"] == "upsert"
    assert seen[("volunteer", vol["id"])]["version"] == after["version"]
    # a created record says it corrected nothing
    assert d["rec"]["correctsId"] is None


def test_correct_refused_under_a_dissolved_org_or_cancelled_activity_changes_nothing(env):
    d = _setup(env)
    old = d["rec"]
    # an activity cancelled since the record was accepted
    body = {k: d["act"][k] for k in ("orgId", "title", "category", "regionCode", "startsAt", "endsAt",
                                      "plannedHeadcount")}
    assert env.api.put("activities", d["act"]["id"], dict(body, status="CANCELLED"), 1).status_code == 200
    cursor = _head(env)
    r = _correct(env, old["id"], _fields(old, hours="3.00"))
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED"
    assert ("activityId", "NOT_ACTIVE") in {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}
    assert _changes_since(env, cursor) == [] and _get(env, "service-records", old["id"]) == old
    # the team dissolved by civil affairs
    assert env.admin("POST", f"/portal/orgs/{d['team']}/dissolve").status_code == 200
    cursor = _head(env)
    r = _correct(env, old["id"], _fields(old, hours="3.00"))
    assert r.status_code == 422
    assert ("orgId", "NOT_ACTIVE") in {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}
    assert _get(env, "service-records", old["id"]) == old  # still ACCEPTED, same version
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "4.00"
    assert _changes_since(env, cursor) == []
    assert env.api.call("GET", "/service-records", params={"clientRef": f"{old['clientRef']}-r1"}).json()[
        "data"]["records"] == []


def test_correct_refused_on_its_data_as_a_create_would_be_changes_nothing(env):
    d = _setup(env)
    old = d["rec"]
    other = env.api.create("service-records", service_record(
        d["vol"]["id"], d["act"]["id"], d["team"], serviceDate="2025-05-02", startsAt="2025-05-02T08:00:00+08:00",
        endsAt="2025-05-02T10:00:00+08:00", hours="2.00")).json()["data"]
    cursor = _head(env)
    cases = [
        # more hours than the span from start to end
        (_fields(old, hours="5.00"), 422, "VALIDATION_FAILED", ("hours", "INVALID_HOURS")),
        # the read-only field is the registry's
        (_fields(old, correctsId=old["id"]), 422, "VALIDATION_FAILED", ("correctsId", "READ_ONLY_FIELD")),
        # a correction is ACCEPTED
        (_fields(old, status="REVOKED"), 422, "VALIDATION_FAILED", ("status", "INVALID_VALUE")),
        # an unknown volunteer
        (_fields(old, volunteerId="VOL0000000099999"), 422, "VALIDATION_FAILED", ("volunteerId", "NOT_FOUND")),
        # no clientRef
        ({k: v for k, v in _fields(old).items() if k != "clientRef"}, 422, "VALIDATION_FAILED",
         ("clientRef", "REQUIRED")),
        # a clientRef this client used already
        (_fields(old, clientRef=other["clientRef"]), 409, "DUPLICATE_CLIENT_REF", None),
    ]
    for body, status, code, field_error in cases:
        r = _correct(env, old["id"], body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        if field_error:
            assert field_error in {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}, r.text
        else:
            assert r.json()["data"]["existingId"] == other["id"]
    assert _get(env, "service-records", old["id"]) == old
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "6.00"
    assert _changes_since(env, cursor) == []


def test_correct_needs_an_accepted_record_of_this_client(env):
    d = _setup(env)
    old = d["rec"]
    # unknown id → 404
    r = _correct(env, "SVR0000000099999", _fields(old))
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    # another client's record → 403
    r = _correct(env, old["id"], _fields(old), api=env.other)
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    # a corrected (so revoked) record → 409 INVALID_STATE, and nothing changes
    first = _correct(env, old["id"], _fields(old, hours="3.00"))
    assert first.status_code == 201
    cursor = _head(env)
    r = _correct(env, old["id"], _fields(old, hours="2.00", clientRef=f"{old['clientRef']}-r2"))
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    # a revoked record → 409 INVALID_STATE
    new = first.json()["data"]
    assert env.api.call("POST", f"/service-records/{new['id']}:revoke", {"reason": "录入错误"}).status_code == 200
    cursor = _head(env)
    r = _correct(env, new["id"], _fields(old, hours="2.00", clientRef=f"{old['clientRef']}-r2"))
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    assert _changes_since(env, cursor) == []
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "0.00"


def test_correct_is_idempotent_under_its_key_like_a_create(env):
    d = _setup(env)
    old = d["rec"]
    body = _fields(old, hours="3.00")
    a = _correct(env, old["id"], body, key="fix-1")
    b = _correct(env, old["id"], body, key="fix-1")
    assert a.status_code == b.status_code == 201
    assert b.headers["Idempotent-Replayed"] == "true" and a.json()["data"] == b.json()["data"]
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "3.00"
    # the same key with another body
    r = _correct(env, old["id"], _fields(old, hours="2.00"), key="fix-1")
    assert r.status_code == 422 and r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # a correction needs its key
    r = env.api.call("POST", f"/service-records/{a.json()['data']['id']}:correct", _fields(old, hours="2.00"))
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    # a refusal is kept under its key: a retry replays it
    cut = _correct(env, a.json()["data"]["id"], _fields(old, hours="9.00", clientRef="x-2"), key="fix-2")
    again = _correct(env, a.json()["data"]["id"], _fields(old, hours="9.00", clientRef="x-2"), key="fix-2")
    assert cut.status_code == again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    # only service records are corrected
    r = env.api.call("POST", f"/volunteers/{d['vol']['id']}:correct", {}, headers={"Idempotency-Key": "k-v"})
    assert r.status_code == 404


def test_correct_counts_the_daily_limit_without_the_old_record(env):
    d = _setup(env)
    vid, aid, team = d["vol"]["id"], d["act"]["id"], d["team"]

    def rec(hours: str, start: str, end: str) -> dict[str, Any]:
        return service_record(vid, aid, team, hours=hours, serviceDate="2025-05-02",
                              startsAt=f"2025-05-02T{start}+08:00", endsAt=f"2025-05-02T{end}+08:00")

    big = env.api.create("service-records", rec("12.00", "00:00:00", "12:30:00")).json()["data"]
    assert env.api.create("service-records", rec("11.75", "12:00:00", "23:45:00")).status_code == 201
    # a create of 12.25 that day is over 24.00 …
    r = env.api.create("service-records", rec("12.25", "00:00:00", "12:30:00"))
    assert r.json()["code"] == "DAILY_HOURS_EXCEEDED"
    # … but correcting 12.00 to 12.25 is not: the old record is not counted
    cursor = _head(env)
    over = _correct(env, big["id"], _fields(big, hours="12.50"))
    assert over.status_code == 422 and over.json()["code"] == "DAILY_HOURS_EXCEEDED"
    assert over.json()["data"]["acceptedHours"] == "11.75"
    assert _changes_since(env, cursor) == [] and _get(env, "service-records", big["id"]) == big
    ok = _correct(env, big["id"], _fields(big, hours="12.25"))
    assert ok.status_code == 201, ok.text
    assert _get(env, "volunteers", vid)["totalHours"] == "28.00"  # 4.00 + 12.25 + 11.75


def test_batch_correct_applies_alone_and_keeps_creates_single(env):
    d = _setup(env)
    old = d["rec"]
    second = env.api.create("service-records", service_record(
        d["vol"]["id"], d["act"]["id"], d["team"], serviceDate="2025-05-02", startsAt="2025-05-02T08:00:00+08:00",
        endsAt="2025-05-02T10:00:00+08:00", hours="2.00")).json()["data"]
    ops = [
        {"op": "correct", "type": "serviceRecord", "id": old["id"], "idempotencyKey": "c-1",
         "body": _fields(old, hours="3.00")},
        {"op": "correct", "type": "serviceRecord", "id": second["id"], "idempotencyKey": "c-2",
         "body": _fields(second, hours="3.00")},  # over the span of 2 h
        {"op": "correct", "type": "serviceRecord", "id": second["id"], "body": _fields(second, hours="1.00")},
        {"op": "correct", "type": "volunteer", "id": d["vol"]["id"], "idempotencyKey": "c-4", "body": {}},
        {"op": "correct", "type": "serviceRecord", "id": "SVR0000000099999", "idempotencyKey": "c-5",
         "body": _fields(second, hours="1.00", clientRef="z")},
    ]
    res = env.api.batch(ops, key="b-1").json()["data"]["results"]
    assert [(x["status"], x["code"]) for x in res] == [
        (201, "OK"), (422, "VALIDATION_FAILED"), (400, "BAD_REQUEST"), (400, "BAD_REQUEST"), (404, "NOT_FOUND")]
    new = res[0]["data"]
    assert res[0]["id"] == new["id"] and new["correctsId"] == old["id"] and res[0]["version"] == 1
    assert ("hours", "INVALID_HOURS") in {(e["field"], e["code"]) for e in res[1]["data"]["errors"]}
    assert _get(env, "service-records", old["id"])["status"] == "REVOKED"
    assert _get(env, "service-records", second["id"]) == second
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "5.00"
    # a rebuilt batch under a new key: the per-operation key replays the correction, never a second one
    again = env.api.batch(ops[:1], key="b-2").json()["data"]["results"]
    assert again[0]["id"] == new["id"] and again[0].get("replayed") is True
    assert len([s for s in env.sb.registry.all_records("serviceRecord") if s["correctsId"] == old["id"]]) == 1
    # a later correction of another record in a batch of its own
    day = [
        {"op": "correct", "type": "serviceRecord", "id": second["id"], "idempotencyKey": "c-6",
         "body": _fields(second, hours="1.50")},
    ]
    assert env.api.batch(day, key="b-3").json()["data"]["results"][0]["status"] == 201
    assert _get(env, "volunteers", d["vol"]["id"])["totalHours"] == "4.50"
