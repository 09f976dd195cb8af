"""§5.1 writes: duplicates, idempotency, If-Match, states, ownership, batches, hours, memberships."""

from __future__ import annotations

from conftest import activity, org, service_record, volunteer


def test_duplicate_id_number_clientref_and_uscc(env):
    body = volunteer()
    first = env.api.create("volunteers", body).json()["data"]
    again = dict(body, clientRef="other-ref")
    r = env.api.create("volunteers", again)
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_ID_NUMBER"
    assert r.json()["data"] == {"existingId": first["id"], "ownerClientId": "hlj-platform"}
    # the same person self-registered on the portal answers another owner
    portal = env.admin(
        "POST", "/portal/volunteers", {k: v for k, v in volunteer().items() if k != "clientRef"}
    )
    assert portal.status_code == 201 and portal.json()["data"]["ownerClientId"] == "PORTAL"
    pbody = portal.json()["data"]
    clash = volunteer(idNumber=pbody["idNumber"], gender=pbody["gender"])
    r = env.api.create("volunteers", clash)
    assert r.json()["data"] == {"existingId": pbody["id"], "ownerClientId": "PORTAL"}
    # clientRef used already by this client
    r = env.api.create("volunteers", volunteer(clientRef=body["clientRef"]))
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_CLIENT_REF"
    assert r.json()["data"]["existingId"] == first["id"]
    # …but another client may use the same clientRef
    assert env.other.create("volunteers", volunteer(clientRef=body["clientRef"])).status_code == 201
    # USCC among live orgs
    city = org("CITY_CORPS")
    oid = env.api.create("orgs", city).json()["data"]["id"]
    r = env.api.create("orgs", org("CITY_CORPS", uscc=city["uscc"]))
    assert (
        r.status_code == 409
        and r.json()["code"] == "DUPLICATE_USCC"
        and r.json()["data"]["existingId"] == oid
    )
    # dissolved orgs free their USCC
    assert env.api.call("DELETE", f"/orgs/{oid}", headers={"If-Match": '"1"'}).status_code == 200
    assert env.api.create("orgs", org("CITY_CORPS", uscc=city["uscc"])).status_code == 201


def test_get_by_client_ref_and_etag(env):
    body = volunteer()
    created = env.api.create("volunteers", body).json()["data"]
    r = env.api.call("GET", "/volunteers", params={"clientRef": body["clientRef"]})
    assert [x["id"] for x in r.json()["data"]["records"]] == [created["id"]]
    assert (
        env.other.call("GET", "/volunteers", params={"clientRef": body["clientRef"]}).json()["data"][
            "records"
        ]
        == []
    )
    r = env.api.call("GET", f"/volunteers/{created['id']}")
    assert r.headers["ETag"] == '"1"'
    assert env.api.call("GET", "/volunteers/VOL404").json()["code"] == "NOT_FOUND"


def test_idempotent_replay_and_key_reused(env):
    body = volunteer()
    a = env.api.create("volunteers", body, key="key-1")
    b = env.api.create("volunteers", body, key="key-1")
    assert a.status_code == b.status_code == 201
    assert b.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in a.headers
    assert a.json()["data"] == b.json()["data"]
    r = env.api.create("volunteers", volunteer(), key="key-1")
    assert r.status_code == 422 and r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # refusals on the merits are kept too: a retry of a 409 replays the 409
    dup = dict(body, clientRef="x-1")
    first = env.api.create("volunteers", dup, key="key-2")
    again = env.api.create("volunteers", dup, key="key-2")
    assert first.status_code == again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    # keys are per client
    assert env.other.create("volunteers", volunteer(), key="key-1").status_code == 201


def test_if_match_and_no_op_put(env):
    created = env.api.create("volunteers", volunteer()).json()["data"]
    vid = created["id"]
    writable = {
        k: created[k]
        for k in (
            "name",
            "idType",
            "idNumber",
            "gender",
            "birthDate",
            "phone",
            "regionCode",
            "skills",
            "homeProvince",
        )
    }
    r = env.api.put("volunteers", vid, writable, None)
    assert r.status_code == 428 and r.json()["code"] == "PRECONDITION_REQUIRED"
    r = env.api.put("volunteers", vid, dict(writable, phone="13800000000"), 1)
    assert r.status_code == 200 and r.json()["data"]["version"] == 2 and r.headers["ETag"] == '"2"'
    r = env.api.put("volunteers", vid, dict(writable, phone="13700000000"), 1)
    assert r.status_code == 412 and r.json()["code"] == "VERSION_MISMATCH"
    assert (
        r.json()["data"]["current"]["version"] == 2 and r.json()["data"]["current"]["phone"] == "13800000000"
    )
    # a PUT that changes nothing makes no new version
    same = env.api.put(
        "volunteers", vid, dict(writable, phone="13800000000", clientRef=created["clientRef"]), 2
    )
    assert same.status_code == 200 and same.json()["data"]["version"] == 2
    # immutable and read-only fields
    r = env.api.put("volunteers", vid, dict(writable, clientRef="changed"), 2)
    assert r.status_code == 422 and r.json()["data"]["errors"][0]["code"] == "READ_ONLY_FIELD"


def test_invalid_state_and_deregister(env):
    created = env.api.create("volunteers", volunteer()).json()["data"]
    vid = created["id"]
    r = env.api.call("DELETE", f"/volunteers/{vid}")
    assert r.status_code == 428
    r = env.api.call("DELETE", f"/volunteers/{vid}", headers={"If-Match": '"1"'})
    assert (
        r.status_code == 200
        and r.json()["data"]["status"] == "DEREGISTERED"
        and r.json()["data"]["version"] == 2
    )
    writable = {
        k: created[k]
        for k in (
            "name",
            "idType",
            "idNumber",
            "gender",
            "birthDate",
            "phone",
            "regionCode",
            "skills",
            "homeProvince",
        )
    }
    r = env.api.put("volunteers", vid, dict(writable, status="ACTIVE"), 2)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    assert env.api.call("GET", f"/volunteers/{vid}").json()["data"]["status"] == "DEREGISTERED"


def test_org_dissolve_needs_children_dissolved(env):
    ids = env.tree()
    r = env.api.call("DELETE", f"/orgs/{ids['STREET_STATION']}", headers={"If-Match": '"1"'})
    assert r.status_code == 409 and r.json()["code"] == "ORG_HAS_ACTIVE_CHILDREN"
    assert r.json()["data"]["childIds"] == [ids["COMMUNITY_STATION"]]
    # in one batch, child first, then parent: both apply
    res = env.api.batch(
        [
            {"op": "delete", "type": "org", "id": ids["COMMUNITY_STATION"], "ifMatch": 1},
            {"op": "delete", "type": "org", "id": ids["STREET_STATION"], "ifMatch": 1},
        ]
    ).json()["data"]["results"]
    assert [x["status"] for x in res] == [200, 200]
    r = env.api.put("orgs", ids["STREET_STATION"], org("STREET_STATION", ids["DISTRICT_BRIGADE"]), 2)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"


def test_not_owner(env):
    ids = env.tree()
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    # another province's client may read but not write
    assert env.bj.call("GET", f"/volunteers/{vid}").status_code == 200
    r = env.bj.call("DELETE", f"/volunteers/{vid}", headers={"If-Match": '"1"'})
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    assert (
        env.bj.call("PUT", f"/orgs/{ids['CITY_CORPS']}/members/{vid}", {"joinedOn": "2024-01-01"}).json()[
            "code"
        ]
        == "NOT_OWNER"
    )
    assert env.bj.create("volunteers", volunteer()).json()["code"] == "NOT_OWNER"
    # a client of the same province may write the province's orgs and volunteers…
    assert env.other.call("DELETE", f"/volunteers/{vid}", headers={"If-Match": '"1"'}).status_code == 200
    # …but not the activities and service records another client created
    act = env.api.create("activities", activity(ids["GRASSROOTS_TEAM"])).json()["data"]
    body = {
        k: act[k]
        for k in ("orgId", "title", "category", "regionCode", "startsAt", "endsAt", "plannedHeadcount")
    }
    r = env.other.put("activities", act["id"], dict(body, title="改名活动"), 1)
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    assert env.api.put("activities", act["id"], dict(body, title="改名活动"), 1).status_code == 200
    # a volunteer transferred out on the portal is read-only for this client
    vid2 = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert env.admin("PATCH", f"/records/volunteers/{vid2}", {"homeProvince": "11"}).status_code == 200
    assert (
        env.api.call("DELETE", f"/volunteers/{vid2}", headers={"If-Match": '"2"'}).json()["code"]
        == "NOT_OWNER"
    )
    assert env.bj.call("DELETE", f"/volunteers/{vid2}", headers={"If-Match": '"2"'}).status_code == 200


def test_batch_in_part_and_per_op_keys(env):
    good, bad = volunteer(), volunteer(phone="123")
    ops = [
        {"op": "create", "type": "volunteer", "idempotencyKey": "op-1", "body": good},
        {"op": "create", "type": "volunteer", "idempotencyKey": "op-2", "body": bad},
        {"op": "create", "type": "volunteer", "body": volunteer()},
        {"op": "update", "type": "volunteer", "id": "VOL404", "ifMatch": 1, "body": {}},
        {"op": "fly", "type": "volunteer"},
    ]
    r = env.api.batch(ops, key="batch-1")
    assert r.status_code == 200
    res = r.json()["data"]["results"]
    assert [(x["status"], x["code"]) for x in res] == [
        (201, "OK"),
        (422, "VALIDATION_FAILED"),
        (400, "BAD_REQUEST"),
        (404, "NOT_FOUND"),
        (400, "BAD_REQUEST"),
    ]
    assert res[0]["id"] and res[0]["version"] == 1 and res[0]["data"]["clientRef"] == good["clientRef"]
    assert res[1]["data"]["errors"][0]["code"] == "INVALID_PHONE"
    # the same batch body and key: the whole answer is replayed
    again = env.api.batch(ops, key="batch-1")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["data"] == r.json()["data"]
    # a rebuilt batch under a new key: the per-op key keeps the create single
    rebuilt = env.api.batch(
        ops[:1] + [{"op": "create", "type": "volunteer", "idempotencyKey": "op-3", "body": volunteer()}],
        key="batch-2",
    ).json()["data"]["results"]
    assert (
        rebuilt[0]["id"] == res[0]["id"]
        and rebuilt[0].get("replayed") is True
        and rebuilt[1]["status"] == 201
    )
    # the batch key protects that body only
    assert env.api.batch(ops[:1], key="batch-1").json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # a batch needs its own key
    r = env.api.call("POST", "/batch", {"operations": []})
    assert r.status_code == 400


def test_batch_too_large(env):
    r = env.api.batch([{"op": "create", "type": "volunteer", "body": {}}] * 501)
    assert r.status_code == 413 and r.json()["code"] == "BATCH_TOO_LARGE"
    r = env.api.call("POST", "/lookup", {"type": "volunteer", "ids": [f"V{i}" for i in range(501)]})
    assert r.status_code == 413 and r.json()["code"] == "BATCH_TOO_LARGE"


def test_batch_same_person_twice_in_one_batch(env):
    body = volunteer()
    res = env.api.batch(
        [
            {"op": "create", "type": "volunteer", "idempotencyKey": "a", "body": body},
            {
                "op": "create",
                "type": "volunteer",
                "idempotencyKey": "b",
                "body": dict(body, clientRef="second"),
            },
        ]
    ).json()["data"]["results"]
    assert res[0]["status"] == 201 and res[1]["code"] == "DUPLICATE_ID_NUMBER"
    assert res[1]["data"]["existingId"] == res[0]["id"]


def test_hours_daily_limit_revoke_and_stars(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    act = env.api.create(
        "activities", activity(team, startsAt="2025-05-01T00:00:00+08:00", endsAt="2025-05-03T23:59:59+08:00")
    ).json()["data"]

    def rec(hours, start, end, date="2025-05-01"):
        return service_record(
            vol["id"],
            act["id"],
            team,
            hours=hours,
            serviceDate=date,
            startsAt=f"{date}T{start}+08:00",
            endsAt=f"{date}T{end}+08:00",
        )

    first = env.api.create("service-records", rec("12.00", "00:00:00", "12:00:00"))
    assert first.status_code == 201 and first.json()["data"]["stationId"] == ids["COMMUNITY_STATION"]
    assert env.api.create("service-records", rec("11.75", "12:00:00", "23:45:00")).status_code == 201
    r = env.api.create("service-records", rec("0.50", "23:00:00", "23:59:59"))
    assert r.status_code == 422 and r.json()["code"] == "DAILY_HOURS_EXCEEDED"
    v = env.api.call("GET", f"/volunteers/{vol['id']}").json()["data"]
    assert v["totalHours"] == "23.75" and v["version"] == 3 and v["starLevel"] == 0
    # a PUT of a service record is refused
    sid = first.json()["data"]["id"]
    assert env.api.put("service-records", sid, {}, 1).json()["code"] == "INVALID_STATE"
    # revoke: idempotent, hours drop, the volunteer's version moves
    r = env.api.call("POST", f"/service-records/{sid}:revoke", {"reason": "录入错误"})
    assert (
        r.status_code == 200 and r.json()["data"]["status"] == "REVOKED" and r.json()["data"]["version"] == 2
    )
    r2 = env.api.call("POST", f"/service-records/{sid}:revoke", {"reason": "录入错误"})
    assert r2.status_code == 200 and r2.json()["data"]["version"] == 2
    v = env.api.call("GET", f"/volunteers/{vol['id']}").json()["data"]
    assert v["totalHours"] == "11.75" and v["version"] == 4
    # now there is room on that day again
    assert env.api.create("service-records", rec("0.50", "23:00:00", "23:59:59")).status_code == 201
    # star level from the derived total (planted with a portal-side edit)
    env.admin("PATCH", f"/records/volunteers/{vol['id']}", {"totalHours": "99.75"})
    env.api.create("service-records", rec("0.50", "08:00:00", "09:00:00", "2025-05-02"))
    v = env.api.call("GET", f"/volunteers/{vol['id']}").json()["data"]
    assert v["totalHours"] == "100.25" and v["starLevel"] == 1


def test_service_record_rules_on_state(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    act = env.api.create("activities", activity(team)).json()["data"]
    body = {
        k: act[k]
        for k in ("orgId", "title", "category", "regionCode", "startsAt", "endsAt", "plannedHeadcount")
    }
    env.api.put("activities", act["id"], dict(body, status="CANCELLED"), 1)
    r = env.api.create("service-records", service_record(vol["id"], act["id"], team))
    assert ("activityId", "NOT_ACTIVE") in {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}
    act2 = env.api.create("activities", activity(team)).json()["data"]
    env.api.call("DELETE", f"/volunteers/{vol['id']}", headers={"If-Match": '"1"'})
    r = env.api.create("service-records", service_record(vol["id"], act2["id"], team))
    assert ("volunteerId", "NOT_ACTIVE") in {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}


def test_memberships(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    vids = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(3)]
    r = env.api.call("PUT", f"/orgs/{team}/members/{vids[0]}", {"joinedOn": "2024-01-01"})
    assert r.status_code == 201
    mem = r.json()["data"]
    assert mem["clientRef"] is None and mem["leftOn"] is None and mem["version"] == 1
    again = env.api.call("PUT", f"/orgs/{team}/members/{vids[0]}", {"joinedOn": "2024-02-02"})
    assert again.status_code == 200 and again.json()["data"]["id"] == mem["id"]
    assert again.json()["data"]["version"] == 1
    left = env.api.call("DELETE", f"/orgs/{team}/members/{vids[0]}", {"leftOn": "2024-06-01"})
    assert left.status_code == 200 and left.json()["data"]["leftOn"] == "2024-06-01"
    reopened = env.api.call("PUT", f"/orgs/{team}/members/{vids[0]}", {"joinedOn": "2024-07-01"})
    assert reopened.json()["data"]["id"] == mem["id"] and reopened.json()["data"]["leftOn"] is None
    assert reopened.json()["data"]["version"] == 3
    # leaving with no body: today
    env.api.call("PUT", f"/orgs/{team}/members/{vids[1]}", {"joinedOn": "2024-01-01"})
    assert env.api.call("DELETE", f"/orgs/{team}/members/{vids[1]}").json()["data"]["leftOn"]
    assert env.api.call("DELETE", f"/orgs/{team}/members/{vids[2]}").status_code == 404
    # join and leave in a batch
    res = env.api.batch(
        [
            {
                "op": "join",
                "type": "membership",
                "body": {"orgId": team, "volunteerId": vids[2], "joinedOn": "2024-03-01"},
            },
            {
                "op": "leave",
                "type": "membership",
                "body": {"orgId": team, "volunteerId": vids[2], "leftOn": "2024-02-01"},
            },
        ]
    ).json()["data"]["results"]
    assert res[0]["status"] == 201 and res[1]["status"] == 422
    # paging of the members list
    page = env.api.call("GET", f"/orgs/{team}/members", params={"limit": "2"}).json()["data"]
    assert len(page["records"]) == 2 and page["hasMore"] is True
    rest = env.api.call(
        "GET", f"/orgs/{team}/members", params={"limit": "2", "cursor": page["nextCursor"]}
    ).json()["data"]
    assert len(rest["records"]) == 1 and rest["hasMore"] is False
    ids_all = [m["id"] for m in page["records"] + rest["records"]]
    assert ids_all == sorted(ids_all)
    assert env.api.call("GET", f"/orgs/{team}/members", params={"limit": "0"}).status_code == 422


def test_an_id_number_moving_between_two_volunteers_in_one_batch(env):
    """Person B's number is corrected to a new one while A takes B's old number, in one batch: the final state is
    unique, so both are accepted (found by a fresh store pushed into a used sandbox: the flush once failed on
    the unique key mid-way, a 500)."""
    a, b, new = volunteer(), volunteer(), volunteer()
    ra = env.api.create("volunteers", a).json()["data"]
    rb = env.api.create("volunteers", b).json()["data"]
    fresh = new["idNumber"]

    def body(v: dict, number_of: dict) -> dict:
        return {k: x for k, x in dict(v, idNumber=number_of["idNumber"], birthDate=number_of["birthDate"],
                                      gender=number_of["gender"]).items() if k != "clientRef"}

    ops = [
        {"op": "update", "type": "volunteer", "id": rb["id"], "ifMatch": 1, "body": body(b, new)},
        {"op": "update", "type": "volunteer", "id": ra["id"], "ifMatch": 1, "body": body(a, b)},
    ]
    r = env.api.batch(ops)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["data"]["results"]] == [200, 200], r.json()
    got = {x["id"]: x["idNumber"] for x in env.api.call("POST", "/lookup", {
        "type": "volunteer", "ids": [ra["id"], rb["id"]]}).json()["data"]["records"]}
    assert got == {ra["id"]: b["idNumber"], rb["id"]: fresh}
