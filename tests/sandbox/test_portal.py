"""Portal-side activity (registry-api.md §8): the admin endpoints, the random activity, the helper."""

from __future__ import annotations

from collections import Counter
from typing import Any

from conftest import activity, id_check, id_number, org, service_record, training, volunteer
from regsync.sandbox.admin_client import trigger_activity
from regsync.sandbox.portal import ACTIONS, DEFAULT_MIX
from regsync.sandbox.server import SandboxServer


def head(api: Any) -> str:
    return api.call("GET", "/changes").json()["data"]["nextCursor"]


def feed(api: Any, cursor: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = api.call("GET", "/changes", params={"cursor": cursor, "limit": "1000"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        out += data["changes"]
        cursor = data["nextCursor"]
        if not data["hasMore"]:
            return out


def portal(env: Any, path: str, body: Any = None) -> Any:
    return env.admin("POST", f"/portal{path}", body)


def errors(r: Any) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}


def test_self_registration_is_the_portals(env):
    cursor = head(env.api)
    body = {k: v for k, v in volunteer().items() if k != "clientRef"}
    r = portal(env, "/volunteers", body)
    assert r.status_code == 201
    rec = r.json()["data"]
    assert rec["ownerClientId"] == "PORTAL" and rec["clientRef"] is None and rec["version"] == 1
    assert [(c["id"], c["byClientId"], c["op"]) for c in feed(env.api, cursor)] == [(rec["id"], "PORTAL", "upsert")]
    # the client of its home province may write it (§1: self-registered ones included)
    r = env.api.put("volunteers", rec["id"], dict(body, phone="13600000000"), 1)
    assert r.status_code == 200
    assert portal(env, "/volunteers", dict(body, clientRef="x")).status_code == 422
    assert env.admin("GET", "/counters").json()["data"]["portal"]["self_registration"] == 1


def test_contact_edit(env):
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    cursor = head(env.api)
    r = portal(env, f"/volunteers/{vid}/contact", {"phone": "13700000001", "skills": ["手语", "驾驶"]})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    rec = env.api.call("GET", f"/volunteers/{vid}").json()["data"]
    assert (rec["phone"], rec["skills"], rec["version"]) == ("13700000001", ["手语", "驾驶"], 2)
    assert [(c["id"], c["version"], c["byClientId"], c["op"]) for c in feed(env.api, cursor)] == [
        (vid, 2, "PORTAL", "upsert")
    ]
    # the same values again: no new version; null phone is allowed
    assert portal(env, f"/volunteers/{vid}/contact", {"phone": "13700000001"}).json()["data"]["version"] == 2
    assert portal(env, f"/volunteers/{vid}/contact", {"phone": None}).json()["data"]["phone"] is None
    # validated like a write
    assert errors(portal(env, f"/volunteers/{vid}/contact", {"phone": "12345"})) == {("phone", "INVALID_PHONE")}
    assert errors(portal(env, f"/volunteers/{vid}/contact", {"name": "李四"})) == {("name", "UNKNOWN_FIELD")}
    assert portal(env, f"/volunteers/{vid}/contact", {}).status_code == 400
    assert portal(env, "/volunteers/VOL404/contact", {"phone": None}).status_code == 404
    # the client's stale write meets the portal's edit
    r = env.api.put("volunteers", vid, volunteer(), 1)
    assert r.status_code == 412 and r.json()["data"]["current"]["version"] == 3
    env.api.call("DELETE", f"/volunteers/{vid}", headers={"If-Match": '"3"'})
    r = portal(env, f"/volunteers/{vid}/contact", {"phone": "13700000002"})
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    assert env.admin("GET", "/counters").json()["data"]["portal"]["contact_edit"] == 2


def test_identity_correction(env):
    number = id_number(birth="19900307", gender="M")
    vid = env.api.create("volunteers", volunteer(idNumber=number)).json()["data"]["id"]
    cursor = head(env.api)
    # a birth date corrected together with the number (公安核验); lowercase x stored as X
    first17 = f"{number[:6]}19900308{number[14:17]}"
    fixed = first17 + id_check(first17)
    r = portal(env, f"/volunteers/{vid}/identity", {"birthDate": "1990-03-08", "idNumber": fixed.lower()})
    assert r.status_code == 200, r.text
    rec = r.json()["data"]
    assert (rec["birthDate"], rec["idNumber"], rec["version"]) == ("1990-03-08", fixed, 2)
    # the name is normalized as on any write
    r = portal(env, f"/volunteers/{vid}/identity", {"name": "阿依古丽•买买提"})
    assert r.json()["data"]["name"] == "阿依古丽·买买提" and r.json()["data"]["version"] == 3
    changes = feed(env.api, cursor)
    assert [(c["version"], c["byClientId"]) for c in changes] == [(2, "PORTAL"), (3, "PORTAL")]
    # validated like any write: consistency with the 18-character number, the check character
    assert errors(portal(env, f"/volunteers/{vid}/identity", {"birthDate": "1990-03-09"})) == {
        ("birthDate", "ID_BIRTHDATE_MISMATCH")
    }
    assert errors(portal(env, f"/volunteers/{vid}/identity", {"gender": "F"})) == {("gender", "ID_GENDER_MISMATCH")}
    bad = fixed[:17] + ("0" if fixed[17] != "0" else "1")
    assert errors(portal(env, f"/volunteers/{vid}/identity", {"idNumber": bad})) == {("idNumber", "INVALID_ID_NUMBER")}
    assert errors(portal(env, f"/volunteers/{vid}/identity", {"phone": None})) == {("phone", "UNKNOWN_FIELD")}
    # unique nationwide
    other = env.api.create("volunteers", volunteer()).json()["data"]
    r = portal(env, f"/volunteers/{vid}/identity", {"idNumber": other["idNumber"], "birthDate": other["birthDate"]})
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_ID_NUMBER"
    assert r.json()["data"]["existingId"] == other["id"]
    # the old number is free again: the client may register that (other) person
    assert env.api.create("volunteers", volunteer(idNumber=number)).status_code == 201


def test_transfer_out_reaches_the_old_province(env):
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    c23, c11 = head(env.api), head(env.bj)
    r = portal(env, f"/volunteers/{vid}/transfer", {"homeProvince": "11"})
    assert r.status_code == 200 and r.json()["data"]["homeProvince"] == "11"
    for api, cursor in ((env.api, c23), (env.bj, c11)):
        assert [(c["id"], c["version"], c["byClientId"]) for c in feed(api, cursor)] == [(vid, 2, "PORTAL")]
    # readable by the old province, but no longer its to write
    got = env.api.call("GET", f"/volunteers/{vid}")
    assert got.status_code == 200 and got.json()["data"]["homeProvince"] == "11"
    r = env.api.put("volunteers", vid, volunteer(), 2)
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    r = env.api.call("DELETE", f"/volunteers/{vid}", headers={"If-Match": '"2"'})
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    # the new province's export has it, the old one's not
    assert vid not in env.api.call("GET", "/exports/volunteers", params={"province": "23"}).text
    assert vid in env.bj.call("GET", "/exports/volunteers", params={"province": "11"}).text
    assert errors(portal(env, f"/volunteers/{vid}/transfer", {"homeProvince": "99"})) == {
        ("homeProvince", "INVALID_REGION")
    }
    assert errors(portal(env, f"/volunteers/{vid}/transfer", {"regionCode": "110101"})) == {
        ("homeProvince", "REQUIRED")
    }


def test_deregistration(env):
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    cursor = head(env.api)
    r = portal(env, f"/volunteers/{vid}/deregister")
    assert r.status_code == 200 and r.json()["data"]["status"] == "DEREGISTERED"
    assert [(c["op"], c["byClientId"]) for c in feed(env.api, cursor)] == [("delete", "PORTAL")]
    again = portal(env, f"/volunteers/{vid}/deregister")
    assert again.status_code == 200 and again.json()["data"]["version"] == 2
    r = env.api.put("volunteers", vid, volunteer(), 2)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    assert env.admin("GET", "/counters").json()["data"]["portal"]["deregistration"] == 1


def test_org_dissolution(env):
    ids = env.tree()
    cursor = head(env.api)
    r = portal(env, f"/orgs/{ids['CITY_CORPS']}/dissolve")
    assert r.status_code == 409 and r.json()["code"] == "ORG_HAS_ACTIVE_CHILDREN"
    assert r.json()["data"]["childIds"] == [ids["DISTRICT_BRIGADE"]]
    r = portal(env, f"/orgs/{ids['COMMUNITY_STATION']}/dissolve", {})
    assert r.status_code == 200 and r.json()["data"]["dissolvedIds"] == [ids["COMMUNITY_STATION"]]
    # a subtree, children first
    top = ids["PROVINCIAL_CORPS"]
    uscc = env.api.call("GET", f"/orgs/{top}").json()["data"]["uscc"]
    r = portal(env, f"/orgs/{top}/dissolve", {"subtree": True})
    line = [ids[x] for x in ("GRASSROOTS_TEAM", "COUNTY_UNIT", "CITY_DETACHMENT", "PROVINCIAL_CORPS")]
    assert r.status_code == 200 and r.json()["data"]["dissolvedIds"] == line
    assert r.json()["data"]["org"]["status"] == "DISSOLVED"
    changes = feed(env.api, cursor)
    assert [(c["id"], c["op"], c["byClientId"]) for c in changes] == [
        (i, "delete", "PORTAL") for i in [ids["COMMUNITY_STATION"], *line]
    ]
    # dissolved: the USCC is free, the client's writes are refused
    assert env.api.create("orgs", org("PROVINCIAL_CORPS", uscc=uscc)).status_code == 201
    r = env.api.put("orgs", top, org("PROVINCIAL_CORPS"), 2)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_STATE"
    again = portal(env, f"/orgs/{top}/dissolve")
    assert again.status_code == 200 and again.json()["data"]["dissolvedIds"] == []
    assert portal(env, "/orgs/ORG404/dissolve").status_code == 404
    assert portal(env, f"/orgs/{top}/dissolve", {"subtree": "yes"}).status_code == 422
    assert env.admin("GET", "/counters").json()["data"]["portal"]["org_dissolution"] == 2


def test_service_record_entered_on_the_portal(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]
    act = env.api.create("activities", activity(team)).json()["data"]
    cursor = head(env.api)
    body = {k: v for k, v in service_record(vol["id"], act["id"], team).items() if k != "clientRef"}
    r = portal(env, "/service-records", body)
    assert r.status_code == 201, r.text
    rec = r.json()["data"]
    assert rec["ownerClientId"] == "PORTAL" and rec["clientRef"] is None
    assert rec["stationId"] == ids["COMMUNITY_STATION"] and rec["hours"] == "4.00"
    v = env.api.call("GET", f"/volunteers/{vol['id']}").json()["data"]
    assert (v["totalHours"], v["version"]) == ("4.00", 2)
    assert {(c["type"], c["id"], c["byClientId"]) for c in feed(env.api, cursor)} == {
        ("serviceRecord", rec["id"], "PORTAL"),
        ("volunteer", vol["id"], "PORTAL"),
    }
    # the portal's record: the client reads it but may not revoke it (§1)
    assert env.api.call("GET", f"/service-records/{rec['id']}").status_code == 200
    r = env.api.call("POST", f"/service-records/{rec['id']}:revoke", {"reason": "录入错误"})
    assert r.status_code == 403 and r.json()["code"] == "NOT_OWNER"
    # the registry's hours rules apply
    r = portal(env, "/service-records", dict(body, hours="4.10"))
    assert errors(r) == {("hours", "INVALID_HOURS")}
    late = dict(body, startsAt="2025-05-01T00:00:00+08:00", endsAt="2025-05-01T23:59:00+08:00", hours="20.25")
    r = portal(env, "/service-records", late)
    assert r.status_code == 422 and r.json()["code"] == "DAILY_HOURS_EXCEEDED"
    assert errors(portal(env, "/service-records", dict(body, clientRef="s-1"))) == {("clientRef", "READ_ONLY_FIELD")}


# ---------------------------------------------------------------------------------------- random activity


def populate(env: Any, volunteers: int = 40) -> dict[str, str]:
    """The same records in any fresh sandbox: a tree, volunteers, activities of the team, and trainings of the city
    corps: one of June 2025 (``ids["training"]``), one cancelled, one that has not begun."""
    ids = env.tree()
    for i in range(volunteers):
        number = id_number(gender="MF"[i % 2], seq=7000 + i)
        env.api.create("volunteers", volunteer(idNumber=number, gender="MF"[i % 2]))
    for day in ("01", "05", "09"):
        env.api.create(
            "activities",
            activity(
                ids["GRASSROOTS_TEAM"], startsAt=f"2025-06-{day}T08:00:00+08:00", endsAt=f"2025-06-{day}T20:00:00+08:00"
            ),
        )
    ids["training"] = env.api.create("trainings", training(ids["CITY_CORPS"], endsAt="2025-06-03T17:00:00+08:00",
                                                           classHours="8.00")).json()["data"]["id"]
    body = training(ids["CITY_CORPS"])
    cancelled = env.api.create("trainings", body).json()["data"]["id"]
    assert env.api.put("trainings", cancelled, {**body, "status": "CANCELLED"}, 1).status_code == 200
    later = training(ids["CITY_CORPS"], startsAt="2099-06-01T09:00:00+08:00", endsAt="2099-06-01T17:00:00+08:00")
    assert env.api.create("trainings", later).status_code == 201
    return ids


def check_invariants(env: Any) -> None:
    """Versions, derived hours and feed items agree with the records after portal-side activity."""
    recs = {
        k: env.admin("GET", f"/records/{k}").json()["data"]["records"]
        for k in ("volunteers", "service-records", "orgs", "training-records", "commendations")
    }
    hours: Counter[str] = Counter()
    for s in recs["service-records"]:
        if s["status"] == "ACCEPTED":
            hours[s["volunteerId"]] += int(s["hours"].replace(".", ""))
    trained: Counter[str] = Counter()
    for t in recs["training-records"]:
        if t["status"] == "ACCEPTED":
            trained[t["volunteerId"]] += int(t["classHours"].replace(".", ""))
    for v in recs["volunteers"]:
        total, training_total = hours[v["id"]], trained[v["id"]]
        assert v["totalHours"] == f"{total // 100}.{total % 100:02d}"
        assert v["trainingHours"] == f"{training_total // 100}.{training_total % 100:02d}"  # v1.1 §4.2
    latest: dict[tuple[str, str], int] = {}
    for c in feed(env.api, "0"):
        latest[(c["type"], c["id"])] = max(latest.get((c["type"], c["id"]), 0), c["version"])
    for kind, type_ in (("volunteers", "volunteer"), ("service-records", "serviceRecord"), ("orgs", "org"),
                        ("training-records", "trainingRecord"), ("commendations", "commendation")):
        for r in recs[kind]:
            # every record of province 23 — or that left it — has its current version in 23's feed
            assert latest[(type_, r["id"])] == r["version"], (type_, r["id"])


def stable(env: Any) -> list[Any]:
    out = []
    for kind in ("volunteers", "orgs", "service-records", "training-records", "commendations"):
        for r in env.admin("GET", f"/records/{kind}").json()["data"]["records"]:
            out.append({k: v for k, v in r.items() if k not in ("createdAt", "updatedAt", "clientRef", "uscc")})
    return out


def test_activity_is_reproducible_with_a_seed(make_env):
    results, states = [], []
    for _ in range(2):
        env = make_env()
        populate(env)
        r = env.admin("POST", "/portal/activity", {"count": 80, "seed": 7})
        assert r.status_code == 200, r.text
        results.append(r.json()["data"])
        states.append(stable(env))
        check_invariants(env)
        counted = env.admin("GET", "/counters").json()["data"]["portal"]
        assert counted == r.json()["data"]["applied"]  # every action the random activity draws, v1.1's included
    assert results[0] == results[1] and states[0] == states[1]
    data = results[0]
    assert sum(data["applied"].values()) == 80 == len(data["records"])
    assert set(data["applied"]) == set(ACTIONS)
    # the default mix: contact edits the most common; every record names what it touched
    assert max(data["applied"], key=data["applied"].get) == "contact_edit"
    assert Counter(r["action"] for r in data["records"]) == +Counter(data["applied"])
    types = {"org_dissolution": "org", "service_record": "serviceRecord", "national_commendation": "commendation",
             "training_record": "trainingRecord"}
    assert all(r["type"] == types.get(r["action"], "volunteer") for r in data["records"])


def test_activity_follows_the_mix_and_feeds_as_the_portal(env):
    populate(env, volunteers=30)
    cursor = head(env.api)
    r = env.admin(
        "POST", "/portal/activity", {"count": 200, "seed": 3, "mix": {"contact_edit": 3, "service_record": 1}}
    )
    data = r.json()["data"]
    applied = data["applied"]
    assert applied["contact_edit"] + applied["service_record"] == 200
    assert 120 <= applied["contact_edit"] <= 180
    assert {a for a, n in applied.items() if n} == {"contact_edit", "service_record"}
    changes = feed(env.api, cursor)
    assert changes and all(c["byClientId"] == "PORTAL" for c in changes)
    check_invariants(env)


def test_activity_draws_the_v11_portal_actions(env):
    """§8 (v1.1): national commendations of the province's volunteers and training records entered on the portal,
    drawn over an existing training of the province that is not cancelled and has begun, for ACTIVE volunteers."""
    ids = populate(env, volunteers=12)
    vols = [v["id"] for v in env.admin("GET", "/records/volunteers").json()["data"]["records"]]
    gone = env.api.call("DELETE", f"/volunteers/{vols[0]}", headers={"If-Match": '"1"'})
    assert gone.status_code == 200
    assert portal(env, f"/volunteers/{vols[1]}/transfer", {"homeProvince": "11"}).status_code == 200
    cursor = head(env.api)
    r = env.admin("POST", "/portal/activity",
                  {"count": 30, "seed": 5, "mix": {"national_commendation": 1, "training_record": 1}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    applied = data["applied"]
    assert applied["national_commendation"] + applied["training_record"] == 30 == len(data["records"])
    assert applied["national_commendation"] >= 5 and applied["training_record"] >= 5, applied
    counted = env.admin("GET", "/counters").json()["data"]["portal"]
    assert (counted["national_commendation"], counted["training_record"]) == (
        applied["national_commendation"], applied["training_record"])
    live = set(vols[2:])  # ACTIVE volunteers of province 23
    made = {(x["type"], x["id"]) for x in data["records"]}
    commendations = {c["id"]: c for c in env.admin("GET", "/records/commendations").json()["data"]["records"]}
    records = {t["id"]: t for t in env.admin("GET", "/records/training-records").json()["data"]["records"]}
    assert made == {("commendation", i) for i in commendations} | {("trainingRecord", i) for i in records}
    for c in commendations.values():  # national ones: of a volunteer, outside the annual scheme
        assert (c["ownerClientId"], c["clientRef"], c["subjectType"], c["scheme"], c["status"]) == (
            "PORTAL", None, "VOLUNTEER", None, "ACTIVE")
        assert c["subjectId"] in live and c["issuer"] and c["documentNumber"].endswith("号")
    for t in records.values():  # on the June 2025 training only: not the cancelled one, nor the one to come
        assert (t["ownerClientId"], t["clientRef"], t["trainingId"], t["status"]) == (
            "PORTAL", None, ids["training"], "ACCEPTED")
        assert t["volunteerId"] in live and "2025-06-01" <= t["completedOn"] <= "2025-06-03"
        hours = int(t["classHours"].replace(".", ""))
        assert 50 <= hours <= 800 and hours % 50 == 0  # up to the training's 8.00, in steps of 0.50
    assert len({t["volunteerId"] for t in records.values()}) == len(records)  # one per training and volunteer
    changes = feed(env.api, cursor)
    assert changes and all(c["byClientId"] == "PORTAL" for c in changes)
    assert made <= {(c["type"], c["id"]) for c in changes}
    check_invariants(env)  # trainingHours follow the ACCEPTED training records


def test_activity_default_mix_draws_v11_actions_rarely():
    shares = {a: w / sum(DEFAULT_MIX.values()) for a, w in DEFAULT_MIX.items()}
    assert set(DEFAULT_MIX) == set(ACTIONS)
    for action in ("national_commendation", "training_record"):
        assert 0.005 <= shares[action] <= 0.05, shares  # a few % of the actions at most
    assert max(shares, key=shares.get) == "contact_edit"


def test_activity_default_mix_keeps_the_invariants(env):
    ids = populate(env, volunteers=30)
    c11 = head(env.bj)
    r = env.admin("POST", "/portal/activity", {"count": 150, "seed": 11, "mix": dict(DEFAULT_MIX, org_dissolution=10)})
    data = r.json()["data"]
    assert sum(data["applied"].values()) == 150
    check_invariants(env)
    # dissolutions only of leaves: every dissolved org's children were dissolved before it
    orgs = {o["id"]: o for o in env.admin("GET", "/records/orgs").json()["data"]["records"]}
    for o in orgs.values():
        if o["parentId"] and o["status"] != "DISSOLVED":
            assert orgs[o["parentId"]]["status"] != "DISSOLVED"
    assert data["applied"]["org_dissolution"] == sum(o["status"] == "DISSOLVED" for o in orgs.values())
    # transfers out leave the province and reach the new ones' feeds
    moved = [r["id"] for r in data["records"] if r["action"] == "transfer_out"]
    vols = {v["id"]: v for v in env.admin("GET", "/records/volunteers").json()["data"]["records"]}
    assert moved and all(vols[v]["homeProvince"] != "23" for v in moved)
    to_bj = {v for v in moved if vols[v]["homeProvince"] == "11"}
    assert to_bj <= {c["id"] for c in feed(env.bj, c11)}
    # new people: valid numbers (GB 11643-1999), birth date and gender consistent
    new = [vols[r["id"]] for r in data["records"] if r["action"] == "self_registration"]
    assert new
    for v in new:
        n = v["idNumber"]
        assert v["ownerClientId"] == "PORTAL" and n[:2] == "23" and id_check(n[:17]) == n[17]
        assert v["birthDate"].replace("-", "") == n[6:14] and v["gender"] == ("M" if int(n[16]) % 2 else "F")
    assert ids


def test_activity_skips_what_cannot_apply(env):
    r = env.admin(
        "POST", "/portal/activity", {"count": 5, "seed": 1, "mix": {"deregistration": 1, "org_dissolution": 1}}
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["records"] == [] and sum(data["applied"].values()) == 0
    assert data["skipped"] == {"deregistration": 1, "org_dissolution": 1}
    # self-registrations make the targets for the rest
    r = env.admin(
        "POST", "/portal/activity", {"count": 6, "seed": 1, "mix": {"self_registration": 1, "deregistration": 1}}
    )
    data = r.json()["data"]
    assert sum(data["applied"].values()) == 6 and data["applied"]["self_registration"] >= 3
    for bad in (
        {"count": -1},
        {"count": 3, "mix": {"fly": 1}},
        {"count": 3, "mix": {"contact_edit": -1}},
        {"count": 1, "province": "99"},
        [1],
    ):
        assert env.admin("POST", "/portal/activity", bad).status_code == 400


def test_self_registration_of_a_person_the_platform_has(env):
    number = id_number(gender="F", seq=8100)
    legacy = "230102850601123"  # 15 digits: the portal stores it converted (§4.2)
    people = [
        {"idType": "RESIDENT_ID", "idNumber": number, "name": "王芳"},
        {"idType": "RESIDENT_ID", "idNumber": legacy, "name": "赵敏"},
    ]
    r = env.admin(
        "POST",
        "/portal/activity",
        {"count": 4, "seed": 5, "mix": {"self_registration": 1}, "duplicate_of_local": people, "duplicate_rate": 1},
    )
    data = r.json()["data"]
    dups = [x for x in data["records"] if x.get("duplicateOfLocal")]
    assert len(dups) == 2 and data["applied"]["self_registration"] == 4
    # the client's later create of that person collides with the portal's record
    r = env.api.create("volunteers", volunteer(idNumber=number, gender="F", name="王芳"))
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_ID_NUMBER"
    assert r.json()["data"]["ownerClientId"] == "PORTAL" and r.json()["data"]["existingId"] in {d["id"] for d in dups}
    eighteen = "23010219850601123"
    eighteen += id_check(eighteen)
    r = env.api.create("volunteers", volunteer(idNumber=eighteen, gender="M", name="赵敏"))
    assert r.status_code == 409 and r.json()["data"]["existingId"] in {d["id"] for d in dups}


def test_trigger_activity_helper():
    with SandboxServer() as sandbox:
        out = trigger_activity(sandbox.admin_url, 3, seed=2, mix={"self_registration": 1})
        assert out["applied"]["self_registration"] == 3 and len(out["records"]) == 3
        try:
            trigger_activity(sandbox.admin_url, 1, mix={"nope": 1})
        except RuntimeError as exc:
            assert "400" in str(exc)
        else:
            raise AssertionError("a bad mix is refused")
