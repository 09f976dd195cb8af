"""v1.1 §4.9 evaluations (``/evaluations``): create, the refusals with their codes (``INVALID_SCORE``,
``NOT_A_PARTICIPANT``, ``NOT_THE_ORGANIZER``, ``REFERENCE_NOT_FOUND``, ``OUT_OF_RANGE``, 409 ``INVALID_STATE``
before the activity is completed), one ACTIVE evaluation per activity and volunteer, update under If-Match,
``:revoke``, the batch type, the export and the feed. Raw signed HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson

from conftest import activity, evaluation, field_codes, org, service_record, volunteer


def _setup(env: Any, *, complete: bool = True) -> dict[str, Any]:
    """A team, an activity of 2025-05-01..03 (COMPLETED unless told), a volunteer with an ACCEPTED record in it."""
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    body = activity(team)
    act = env.api.create("activities", body).json()["data"]["id"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    rec = env.api.create("service-records", service_record(vol, act, team))
    assert rec.status_code == 201, rec.text
    if complete:
        done = env.api.put("activities", act, {**body, "status": "COMPLETED"}, 1)
        assert done.status_code == 200, done.text
    return {"ids": ids, "team": team, "act": act, "act_body": body, "vol": vol, "rec": rec.json()["data"]["id"]}


def _create(env: Any, d: dict[str, Any], **over: Any) -> Any:
    return env.api.create("evaluations", evaluation(d["act"], d["vol"], d["team"], **over))


def test_create_an_evaluation_of_a_participant_in_a_completed_activity(env):
    d = _setup(env)
    cursor = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    r = _create(env, d, comment="准时到岗\n服务热情")
    assert r.status_code == 201, r.text
    e = r.json()["data"]
    assert e["id"].startswith("EVL") and e["status"] == "ACTIVE" and e["revokeReason"] is None
    assert (e["punctuality"], e["attitude"], e["competence"]) == (5, 4, 3) and e["comment"] == "准时到岗\n服务热情"
    changes = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    assert [(x["type"], x["id"], x["op"]) for x in changes] == [("evaluation", e["id"], "upsert")]


def test_an_activity_not_completed_is_not_evaluated(env):
    d = _setup(env, complete=False)
    r = _create(env, d)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"


def test_scores_are_integers_from_one_to_five(env):
    d = _setup(env)
    for bad in (0, 6, "5", 4.5, True, None):
        assert field_codes(_create(env, d, punctuality=bad)) == {
            "punctuality": "REQUIRED" if bad is None else "INVALID_SCORE"
        }, bad
    assert field_codes(_create(env, d, attitude=0, competence=9)) == {
        "attitude": "INVALID_SCORE",
        "competence": "INVALID_SCORE",
    }


def test_references_participants_and_the_organizer(env):
    d = _setup(env)
    assert field_codes(_create(env, d, activityId="ACT0000000009999")) == {"activityId": "REFERENCE_NOT_FOUND"}
    assert field_codes(_create(env, d, volunteerId="VOL0000000009999")) == {"volunteerId": "REFERENCE_NOT_FOUND"}
    stranger = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert field_codes(_create(env, d, volunteerId=stranger)) == {"volunteerId": "NOT_A_PARTICIPANT"}
    assert field_codes(_create(env, d, evaluatorOrgId=d["ids"]["COUNTY_UNIT"])) == {
        "evaluatorOrgId": "NOT_THE_ORGANIZER"
    }
    # a revoked service record is no participation
    assert env.api.call("POST", f"/service-records/{d['rec']}:revoke", {"reason": "x"}).status_code == 200
    assert field_codes(_create(env, d)) == {"volunteerId": "NOT_A_PARTICIPANT"}


def test_an_activity_of_another_province_is_not_found(env):
    bj_org = env.bj.create("orgs", org("CITY_CORPS", regionCode="110100")).json()["data"]["id"]
    act = env.bj.create("activities", activity(bj_org, regionCode="110101")).json()["data"]["id"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    r = env.api.create("evaluations", evaluation(act, vol, bj_org))
    assert field_codes(r) == {"activityId": "REFERENCE_NOT_FOUND"}


def test_the_evaluation_date_is_after_the_activitys_end_and_not_in_the_future(env):
    d = _setup(env)
    assert field_codes(_create(env, d, evaluatedOn="2025-05-02")) == {"evaluatedOn": "OUT_OF_RANGE"}
    assert field_codes(_create(env, d, evaluatedOn="2099-01-01")) == {"evaluatedOn": "OUT_OF_RANGE"}
    assert _create(env, d, evaluatedOn="2025-05-03").status_code == 201  # the end date itself
    assert field_codes(_create(env, d, comment="长" * 501)) == {"comment": "TOO_LONG"}


def test_one_active_evaluation_per_activity_and_volunteer(env):
    d = _setup(env)
    first = _create(env, d).json()["data"]
    dup = _create(env, d, punctuality=1)
    assert dup.status_code == 409 and dup.json()["code"] == "DUPLICATE_EVALUATION"
    assert dup.json()["data"]["existingId"] == first["id"]
    assert env.api.call("POST", f"/evaluations/{first['id']}:revoke", {"reason": "评错了"}).status_code == 200
    assert _create(env, d, punctuality=1).status_code == 201


def test_update_scores_comment_and_date_under_if_match_then_revoke(env):
    d = _setup(env)
    body = evaluation(d["act"], d["vol"], d["team"])
    e = env.api.create("evaluations", body).json()["data"]
    assert env.api.put("evaluations", e["id"], body, None).status_code == 428
    stale = env.api.put("evaluations", e["id"], body, 5)
    assert stale.status_code == 412 and stale.json()["code"] == "VERSION_MISMATCH"
    r = env.api.put("evaluations", e["id"], {**body, "competence": 5, "comment": None, "evaluatedOn": "2025-05-10"}, 1)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["competence"] == 5 and r.json()["data"]["comment"] is None
    assert r.json()["data"]["version"] == 2
    other_vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert field_codes(env.api.put("evaluations", e["id"], {**body, "volunteerId": other_vol}, 2)) == {
        "volunteerId": "READ_ONLY_FIELD"
    }
    assert field_codes(env.api.put("evaluations", e["id"], {**body, "evaluatedOn": "2025-04-30"}, 2)) == {
        "evaluatedOn": "OUT_OF_RANGE"
    }
    assert field_codes(env.api.put("evaluations", e["id"], {**body, "attitude": 7}, 2)) == {"attitude": "INVALID_SCORE"}
    assert env.other.put("evaluations", e["id"], body, 2).status_code == 403
    gone = env.api.call("POST", f"/evaluations/{e['id']}:revoke", {"reason": "重复评价"})
    assert gone.status_code == 200 and gone.json()["data"]["status"] == "REVOKED"
    assert gone.json()["data"]["revokeReason"] == "重复评价"
    ended = env.api.put("evaluations", e["id"], body, 3)
    assert ended.status_code == 409 and ended.json()["code"] == "INVALID_STATE"
    no_correct = env.api.call("POST", f"/evaluations/{e['id']}:correct", body, headers={"Idempotency-Key": "k"})
    assert no_correct.status_code == 404


def test_batch_export_and_feed(env):
    d = _setup(env)
    ops = [
        {"op": "create", "type": "evaluation", "idempotencyKey": "e-1",
         "body": evaluation(d["act"], d["vol"], d["team"])},
        {"op": "create", "type": "evaluation", "idempotencyKey": "e-2",
         "body": evaluation(d["act"], d["vol"], d["team"], punctuality=0)},
    ]
    res = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in res] == [201, 422]
    cursor = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    ops2 = [
        {"op": "update", "type": "evaluation", "id": res[0]["id"], "ifMatch": 1,
         "body": evaluation(d["act"], d["vol"], d["team"], clientRef=ops[0]["body"]["clientRef"], attitude=5)},
        {"op": "revoke", "type": "evaluation", "id": res[0]["id"], "body": {"reason": "x"}},
    ]
    res2 = env.api.batch(ops2).json()["data"]["results"]
    assert [x["status"] for x in res2] == [200, 200]
    changes = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    assert [(x["type"], x["op"], x["version"]) for x in changes] == [("evaluation", "upsert", 3)]
    lines = env.api.call("GET", "/exports/evaluations", params={"province": "23"}).text.splitlines()
    assert [(orjson.loads(x)["id"], orjson.loads(x)["attitude"]) for x in lines] == [(res[0]["id"], 5)]
    found = env.api.call("POST", "/lookup", {"type": "evaluation", "ids": [res[0]["id"], "EVL9"]})
    assert [x["status"] for x in found.json()["data"]["records"]] == ["REVOKED"]
