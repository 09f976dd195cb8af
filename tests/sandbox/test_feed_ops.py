"""registry-api.md §5.3: the ``op`` of each change in ``GET /changes``. "``delete`` is how a deregistration, a
dissolution and a leave are fed; a cancellation and a revoke are ``upsert``. Either way the record stays, with its
new status." — for every kind and every way a record ends: the call, the batch op, the portal and the admin PATCH.
Raw signed HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import activity, commendation, evaluation, service_record, training, training_record, volunteer


def _head(env: Any) -> str:
    return env.api.call("GET", "/changes").json()["data"]["nextCursor"]


def _ops(env: Any, cursor: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(type, id): (op of its last change, its status now)}`` of the changes after ``cursor`` (one page)."""
    changes = env.api.call("GET", "/changes", params={"cursor": cursor, "limit": "1000"}).json()["data"]["changes"]
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for c in changes:
        found = env.api.call("POST", "/lookup", {"type": c["type"], "ids": [c["id"]]}).json()["data"]["records"]
        out[(c["type"], c["id"])] = (c["op"], found[0].get("status", "LEFT" if found[0].get("leftOn") else ""))
    return out


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["data"]


def _world(env: Any) -> dict[str, Any]:
    """The org tree, a COMPLETED activity with two volunteers' service records, a training, evaluations,
    training records and commendations, all ACCEPTED or ACTIVE."""
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    act_body = activity(team)
    act = _ok(env.api.create("activities", act_body), 201)["id"]
    vols = [_ok(env.api.create("volunteers", volunteer()), 201)["id"] for _ in range(2)]
    records = [_ok(env.api.create("service-records", service_record(v, act, team)), 201)["id"] for v in vols]
    _ok(env.api.put("activities", act, {**act_body, "status": "COMPLETED"}, 1))
    trn_body = training(ids["CITY_CORPS"])
    trn = _ok(env.api.create("trainings", trn_body), 201)["id"]
    return {
        "ids": ids, "team": team, "act": act, "vols": vols, "records": records, "trn": trn, "trn_body": trn_body,
        "trrs": [_ok(env.api.create("training-records", training_record(trn, v)), 201)["id"] for v in vols],
        "cmds": [_ok(env.api.create("commendations", commendation(v)), 201)["id"] for v in vols],
        "evls": [_ok(env.api.create("evaluations", evaluation(act, v, team)), 201)["id"] for v in vols],
    }


def test_a_revoke_of_every_revocable_kind_is_fed_as_an_upsert(env):
    w = _world(env)
    cursor = _head(env)
    reason = {"reason": "录入错误"}
    _ok(env.api.call("POST", f"/service-records/{w['records'][0]}:revoke", reason))
    _ok(env.api.call("POST", f"/training-records/{w['trrs'][0]}:revoke", reason))
    _ok(env.api.call("POST", f"/commendations/{w['cmds'][0]}:revoke", reason))
    _ok(env.api.call("POST", f"/evaluations/{w['evls'][0]}:revoke", reason))
    batch = [
        {"op": "revoke", "type": kind, "id": w[key][1], "body": reason}
        for kind, key in (("serviceRecord", "records"), ("trainingRecord", "trrs"), ("commendation", "cmds"),
                          ("evaluation", "evls"))
    ]
    assert [x["status"] for x in _ok(env.api.batch(batch))["results"]] == [200] * 4
    ops = _ops(env, cursor)
    for kind, key in (("serviceRecord", "records"), ("trainingRecord", "trrs"), ("commendation", "cmds"),
                      ("evaluation", "evls")):
        for rid in w[key]:
            assert ops[(kind, rid)] == ("upsert", "REVOKED"), (kind, rid)
    # the volunteers' derived hours moved with them: upserts too
    assert {ops[("volunteer", v)] for v in w["vols"]} == {("upsert", "ACTIVE")}


def test_a_cancellation_is_an_upsert_and_an_ending_by_delete_or_leave_a_delete(env):
    w = _world(env)
    cursor = _head(env)
    act2_body = activity(w["team"])
    act2 = _ok(env.api.create("activities", act2_body), 201)["id"]
    _ok(env.api.put("activities", act2, {**act2_body, "status": "CANCELLED"}, 1))
    _ok(env.api.put("trainings", w["trn"], {**w["trn_body"], "status": "CANCELLED"}, 1))
    _ok(env.api.call("PUT", f"/orgs/{w['team']}/members/{w['vols'][0]}", {"joinedOn": "2025-01-01"}), 201)
    left = _ok(env.api.call("DELETE", f"/orgs/{w['team']}/members/{w['vols'][0]}", {"leftOn": "2025-06-01"}))
    _ok(env.api.call("DELETE", f"/volunteers/{w['vols'][1]}", headers={"If-Match": '"3"'}))
    _ok(env.api.call("DELETE", f"/orgs/{w['team']}", headers={"If-Match": '"1"'}))
    ops = _ops(env, cursor)
    assert ops[("activity", act2)] == ("upsert", "CANCELLED") and ops[("training", w["trn"])] == ("upsert", "CANCELLED")
    assert ops[("membership", left["id"])] == ("delete", "LEFT")
    assert ops[("volunteer", w["vols"][1])] == ("delete", "DEREGISTERED")
    assert ops[("org", w["team"])] == ("delete", "DISSOLVED")


def test_the_portal_and_a_patch_feed_the_same_ops(env):
    w = _world(env)
    cursor = _head(env)
    # a revoke planted by PATCH is an upsert, as a revoke by the call is
    _ok(env.admin("PATCH", f"/records/service-records/{w['records'][0]}", {"status": "REVOKED"}))
    _ok(env.admin("PATCH", f"/records/commendations/{w['cmds'][0]}", {"status": "REVOKED"}))
    # a deregistration planted by PATCH is a delete; a later change of the ended record is not one
    vol = w["vols"][1]
    _ok(env.admin("PATCH", f"/records/volunteers/{vol}", {"status": "DEREGISTERED"}))
    first = _ops(env, cursor)
    assert first[("serviceRecord", w["records"][0])] == ("upsert", "REVOKED")
    assert first[("commendation", w["cmds"][0])] == ("upsert", "REVOKED")
    assert first[("volunteer", vol)] == ("delete", "DEREGISTERED")
    cursor = _head(env)
    _ok(env.admin("PATCH", f"/records/volunteers/{vol}", {"phone": "13600000000"}))
    assert _ops(env, cursor)[("volunteer", vol)] == ("upsert", "DEREGISTERED")
    # the portal's own endings: a deregistration and a dissolution are deletes
    cursor = _head(env)
    _ok(env.admin("POST", f"/portal/volunteers/{w['vols'][0]}/deregister"))
    _ok(env.admin("POST", f"/portal/orgs/{w['team']}/dissolve"))
    ops = _ops(env, cursor)
    assert ops[("volunteer", w["vols"][0])] == ("delete", "DEREGISTERED")
    assert ops[("org", w["team"])] == ("delete", "DISSOLVED")
