"""v1.1 §4.8 commendations (``/commendations``): create, the refusals with their codes, the annual scheme's
``NOT_EARNED`` checked against the registry's own ACCEPTED service records of the year (volunteers by hours, orgs by
the records whose ``orgId`` or ``stationId`` they are), duplicates, update under If-Match, ``:revoke``, the batch type,
the export, the feed, and national commendations entered on the portal (§8), which move with a transfer. Raw signed
HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson

from conftest import activity, commendation, field_codes, service_record, volunteer

MARCH = {"startsAt": "2025-03-01T08:00:00+08:00", "endsAt": "2025-03-31T20:00:00+08:00"}


def _services(env: Any, team: str, act: str, vol: str, days: range, hours: str) -> list[str]:
    """ACCEPTED service records of ``vol`` in March 2025, one a day, by one batch."""
    ops = [
        {
            "op": "create",
            "type": "serviceRecord",
            "idempotencyKey": env.api.key(),
            "body": service_record(
                vol, act, team, serviceDate=f"2025-03-{day:02d}", startsAt=f"2025-03-{day:02d}T08:00:00+08:00",
                endsAt=f"2025-03-{day:02d}T20:00:00+08:00", hours=hours,
            ),
        }
        for day in days
    ]
    results = env.api.batch(ops).json()["data"]["results"]
    assert all(x["status"] == 201 for x in results), results
    return [x["id"] for x in results]


def _setup(env: Any) -> dict[str, Any]:
    """The org tree, a March 2025 activity of the team, a volunteer with 5 × 10.00 h of service in it."""
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    act = env.api.create("activities", activity(team, **MARCH)).json()["data"]["id"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    records = _services(env, team, act, vol, range(1, 6), "10.00")
    return {"ids": ids, "team": team, "act": act, "vol": vol, "records": records}


def _scheme(subject: str, tier: str, subject_type: str = "VOLUNTEER", **over: Any) -> dict[str, Any]:
    fields = {"title": "2025年度志愿服务嘉许", "scheme": "PROVINCIAL_ANNUAL", "tier": tier, "year": 2025, **over}
    return commendation(subject, subject_type, **fields)


def _errors(r: Any) -> list[dict[str, str]]:
    assert r.status_code == 422, r.text
    return r.json()["data"]["errors"]


def _revoke(api: Any, rid: str, reason: str = "撤销表彰") -> Any:
    return api.call("POST", f"/commendations/{rid}:revoke", {"reason": reason})


def test_create_a_commendation_outside_any_scheme(env):
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    cursor = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    r = env.api.create("commendations", commendation(vol, content="第一行\n第二行"))
    assert r.status_code == 201, r.text
    c = r.json()["data"]
    assert c["id"].startswith("CMD") and c["status"] == "ACTIVE" and c["revokeReason"] is None
    assert c["content"] == "第一行\n第二行" and c["scheme"] is None and c["ownerClientId"] == "hlj-platform"
    changes = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    assert [(x["type"], x["id"], x["op"]) for x in changes] == [("commendation", c["id"], "upsert")]


def test_the_scheme_is_checked_against_the_registrys_own_hours_of_the_year(env):
    d = _setup(env)
    # a service record of December 2024 is not of 2025
    dec = env.api.create("activities", activity(d["team"], startsAt="2024-12-01T08:00:00+08:00",
                                                endsAt="2024-12-31T20:00:00+08:00")).json()["data"]["id"]
    r = env.api.create("service-records", service_record(
        d["vol"], dec, d["team"], serviceDate="2024-12-30", startsAt="2024-12-30T08:00:00+08:00",
        endsAt="2024-12-30T20:00:00+08:00", hours="10.00"))
    assert r.status_code == 201, r.text
    bronze = _errors(env.api.create("commendations", _scheme(d["vol"], "BRONZE")))
    assert [(e["field"], e["code"]) for e in bronze] == [("tier", "NOT_EARNED")]
    assert "50.00" in bronze[0]["message"] and "100.00" in bronze[0]["message"]  # the registry's figure
    care = env.api.create("commendations", _scheme(d["vol"], "CARE"))  # 50 h: exactly the tier's
    assert care.status_code == 201, care.text
    assert care.json()["data"]["tier"] == "CARE" and care.json()["data"]["year"] == 2025
    last = _errors(env.api.create("commendations", _scheme(d["vol"], "CARE", year=2024, awardedOn="2025-01-10")))
    assert [(e["field"], e["code"]) for e in last] == [("tier", "NOT_EARNED")] and "10.00" in last[0]["message"]


def test_hours_revoked_later_do_not_undo_a_commendation_but_count_no_more(env):
    d = _setup(env)
    care = env.api.create("commendations", _scheme(d["vol"], "CARE")).json()["data"]
    revoked = env.api.call("POST", f"/service-records/{d['records'][0]}:revoke", {"reason": "录入错误"})
    assert revoked.status_code == 200
    assert env.api.call("GET", f"/commendations/{care['id']}").json()["data"]["status"] == "ACTIVE"
    assert _revoke(env.api, care["id"]).status_code == 200
    again = _errors(env.api.create("commendations", _scheme(d["vol"], "CARE")))
    assert again[0]["code"] == "NOT_EARNED" and "40.00" in again[0]["message"]


def test_an_orgs_tier_counts_the_records_of_the_org_and_of_its_station(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    act = env.api.create("activities", activity(team, **MARCH)).json()["data"]["id"]
    vols = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(2)]
    records = [r for v in vols for r in _services(env, team, act, v, range(1, 26), "1.00")]
    assert len(records) == 50
    ok = env.api.create("commendations", _scheme(team, "HONOR", "ORG"))
    assert ok.status_code == 201, ok.text
    station = env.api.create("commendations", _scheme(ids["COMMUNITY_STATION"], "HONOR", "ORG"))
    assert station.status_code == 201, station.text  # the team's records count for its station too (§4.1)
    bronze = _errors(env.api.create("commendations", _scheme(team, "BRONZE", "ORG")))
    assert bronze[0]["code"] == "NOT_EARNED" and "50" in bronze[0]["message"]
    brigade = _errors(env.api.create("commendations", _scheme(ids["DISTRICT_BRIGADE"], "HONOR", "ORG")))
    assert brigade[0]["code"] == "NOT_EARNED" and "has 0" in brigade[0]["message"]
    # a volunteer's tier is not an org's
    assert field_codes(env.api.create("commendations", _scheme(team, "CARE", "ORG"))) == {"tier": "INVALID_VALUE"}


def test_field_refusals_with_their_codes(env):
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert field_codes(env.api.create("commendations", _scheme(vol, "CARE", year=2026))) == {"year": "OUT_OF_RANGE"}
    assert field_codes(env.api.create("commendations", _scheme(vol, "CARE", awardedOn="2025-12-31"))) == {
        "awardedOn": "OUT_OF_RANGE"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, awardedOn="2099-01-01"))) == {
        "awardedOn": "OUT_OF_RANGE"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, tier="GOLD", year=2025))) == {
        "tier": "INVALID_VALUE",
        "year": "INVALID_VALUE",
    }
    assert field_codes(env.api.create("commendations", _scheme(vol, "PLATINUM"))) == {"tier": "INVALID_VALUE"}
    assert field_codes(env.api.create("commendations", _scheme(vol, None))) == {"tier": "REQUIRED"}
    assert field_codes(env.api.create("commendations", _scheme(vol, "CARE", year=None))) == {"year": "REQUIRED"}
    assert field_codes(env.api.create("commendations", commendation(vol, scheme="NATIONAL"))) == {
        "scheme": "INVALID_VALUE"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, content="一\t二"))) == {
        "content": "INVALID_VALUE"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, content="长" * 15001))) == {
        "content": "TOO_LONG"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, status="REVOKED"))) == {
        "status": "INVALID_VALUE"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, revokeReason="x"))) == {
        "revokeReason": "READ_ONLY_FIELD"
    }
    assert field_codes(env.api.create("commendations", commendation(vol, documentNumber=""))) == {
        "documentNumber": "REQUIRED"
    }


def test_the_subject_is_active_and_of_the_province(env):
    assert field_codes(env.api.create("commendations", commendation("VOL0000000009999"))) == {
        "subjectId": "REFERENCE_NOT_FOUND"
    }
    bj_vol = env.bj.create("volunteers", volunteer(homeProvince="11", regionCode="110101")).json()["data"]["id"]
    assert field_codes(env.api.create("commendations", commendation(bj_vol))) == {"subjectId": "REFERENCE_NOT_FOUND"}
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert env.api.call("DELETE", f"/volunteers/{vol}", headers={"If-Match": '"1"'}).status_code == 200
    assert field_codes(env.api.create("commendations", commendation(vol))) == {"subjectId": "REFERENCE_NOT_ACTIVE"}
    team = env.tree()["GRASSROOTS_TEAM"]  # an org id named as a volunteer is not found
    assert field_codes(env.api.create("commendations", commendation(team))) == {"subjectId": "REFERENCE_NOT_FOUND"}


def test_one_active_commendation_per_subject_scheme_and_year_or_title_and_date(env):
    d = _setup(env)
    care = env.api.create("commendations", _scheme(d["vol"], "CARE")).json()["data"]
    dup = env.api.create("commendations", _scheme(d["vol"], "CARE"))
    assert dup.status_code == 409 and dup.json()["code"] == "DUPLICATE_COMMENDATION"
    assert dup.json()["data"]["existingId"] == care["id"]
    plain = env.api.create("commendations", commendation(d["vol"])).json()["data"]
    again = env.api.create("commendations", commendation(d["vol"]))
    assert again.status_code == 409 and again.json()["data"]["existingId"] == plain["id"]
    other_day = env.api.create("commendations", commendation(d["vol"], awardedOn="2026-02-01"))
    assert other_day.status_code == 201
    assert _revoke(env.api, care["id"]).status_code == 200
    assert env.api.create("commendations", _scheme(d["vol"], "CARE")).status_code == 201


def test_update_the_mutable_fields_under_if_match_and_revoke(env):
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    body = commendation(vol)
    c = env.api.create("commendations", body).json()["data"]
    assert env.api.put("commendations", c["id"], body, None).status_code == 428
    r = env.api.put("commendations", c["id"], {**body, "title": "十佳志愿者", "content": "表彰内容"}, 1)
    assert r.status_code == 200 and r.json()["data"]["title"] == "十佳志愿者" and r.json()["data"]["version"] == 2
    assert field_codes(env.api.put("commendations", c["id"], {**body, "scheme": "PROVINCIAL_ANNUAL"}, 2)) == {
        "scheme": "READ_ONLY_FIELD"
    }
    assert field_codes(env.api.put("commendations", c["id"], {**body, "status": "REVOKED"}, 2)) == {
        "status": "INVALID_VALUE"
    }
    # a new title and date that another ACTIVE commendation holds
    other = env.api.create("commendations", commendation(vol, title="抗疫先锋")).json()["data"]
    taken = env.api.put("commendations", c["id"], {**body, "title": "抗疫先锋"}, 2)
    assert taken.status_code == 409 and taken.json()["data"]["existingId"] == other["id"]
    assert env.other.put("commendations", c["id"], body, 2).status_code == 403
    gone = _revoke(env.api, c["id"], "文书撤回")
    assert gone.status_code == 200 and gone.json()["data"]["status"] == "REVOKED"
    assert gone.json()["data"]["revokeReason"] == "文书撤回" and gone.json()["data"]["version"] == 3
    assert _revoke(env.api, c["id"], "文书撤回").json()["data"]["version"] == 3  # idempotent
    ended = env.api.put("commendations", c["id"], body, 3)
    assert ended.status_code == 409 and ended.json()["code"] == "INVALID_STATE"


def test_batch_export_and_feed(env):
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    ops = [
        {"op": "create", "type": "commendation", "idempotencyKey": "c-1", "body": commendation(vol)},
        {"op": "create", "type": "commendation", "idempotencyKey": "c-2", "body": commendation(vol)},
    ]
    res = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in res] == [201, 409]
    cursor = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    rv = env.api.batch([{"op": "revoke", "type": "commendation", "id": res[0]["id"], "body": {"reason": "x"}}])
    assert rv.json()["data"]["results"][0]["status"] == 200
    changes = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    assert [(x["type"], x["op"], x["version"]) for x in changes] == [("commendation", "upsert", 2)]
    lines = env.api.call("GET", "/exports/commendations", params={"province": "23"}).text.splitlines()
    assert [orjson.loads(x)["status"] for x in lines] == ["REVOKED"]


def test_a_national_commendation_from_the_portal_moves_with_a_transfer(env):
    d = _setup(env)
    body = _scheme(d["vol"], "CARE", issuer="中央精神文明建设指导委员会办公室")
    del body["clientRef"]
    r = env.admin("POST", "/portal/commendations", body)
    assert r.status_code == 201, r.text
    c = r.json()["data"]
    assert c["ownerClientId"] == "PORTAL" and c["clientRef"] is None
    denied = env.api.put("commendations", c["id"], body, 1)
    assert denied.status_code == 403 and denied.json()["code"] == "NOT_OWNER"
    assert _revoke(env.api, c["id"]).status_code == 403
    org_subject = env.admin("POST", "/portal/commendations", {**body, "subjectType": "ORG", "subjectId": d["team"]})
    assert field_codes(org_subject) == {"subjectType": "INVALID_VALUE"}
    not_earned = env.admin("POST", "/portal/commendations", {**body, "tier": "GOLD"})
    assert field_codes(not_earned) == {"tier": "NOT_EARNED"}
    assert env.admin("GET", "/counters").json()["data"]["portal"]["national_commendation"] == 1
    cursor23 = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    cursor11 = env.bj.call("GET", "/changes").json()["data"]["nextCursor"]
    moved = env.admin("POST", f"/portal/volunteers/{d['vol']}/transfer", {"homeProvince": "11"})
    assert moved.status_code == 200, moved.text
    for api, cursor in ((env.api, cursor23), (env.bj, cursor11)):
        seen = {(x["type"], x["id"]) for x in api.call("GET", "/changes", params={"cursor": cursor})
                .json()["data"]["changes"]}
        assert ("commendation", c["id"]) in seen and ("volunteer", d["vol"]) in seen
    assert env.api.call("GET", "/exports/commendations", params={"province": "23"}).text == ""
    bj = env.bj.call("GET", "/exports/commendations", params={"province": "11"}).text.splitlines()
    assert [orjson.loads(x)["id"] for x in bj] == [c["id"]]


def test_a_planted_foreign_commendation_is_not_one_of_the_sandboxs_own(env):
    """``POST /_sandbox/foreign`` (test support) still plants v1.1's names for a v1 client, apart from the real ones;
    v1's types are refused."""
    r = env.admin("POST", "/foreign", {"type": "commendation", "record": {"title": "x"}})
    assert r.status_code == 201, r.text
    fid = r.json()["data"]["id"]
    assert env.api.call("POST", "/lookup", {"type": "commendation", "ids": [fid]}).json()["data"]["records"] == []
    assert env.api.call("GET", "/exports/commendations", params={"province": "23"}).text == ""
    assert env.admin("POST", "/foreign", {"type": "volunteer"}).status_code == 400
    assert env.admin("POST", "/foreign", {"type": "service-records"}).status_code == 400


def test_the_scheme_sees_the_service_records_of_the_same_batch_before_it(env):
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    act = env.api.create("activities", activity(team, **MARCH)).json()["data"]["id"]
    vol = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    day = "2025-03-{:02d}"
    ops: list[dict[str, Any]] = [
        {"op": "create", "type": "serviceRecord", "idempotencyKey": env.api.key(),
         "body": service_record(vol, act, team, serviceDate=day.format(n), startsAt=f"{day.format(n)}T08:00:00+08:00",
                                endsAt=f"{day.format(n)}T20:00:00+08:00", hours="10.00")}
        for n in range(1, 6)
    ]
    ops.append({"op": "create", "type": "commendation", "idempotencyKey": env.api.key(), "body": _scheme(vol, "CARE")})
    ops.append({"op": "revoke", "type": "serviceRecord", "id": None, "body": {"reason": "x"}})  # 404: no id
    ops.append({"op": "create", "type": "commendation", "idempotencyKey": env.api.key(),
                "body": _scheme(team, "HONOR", "ORG")})
    res = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in res] == [201] * 6 + [404, 422], res
    assert res[7]["data"]["errors"][0]["code"] == "NOT_EARNED" and "has 5" in res[7]["data"]["errors"][0]["message"]
