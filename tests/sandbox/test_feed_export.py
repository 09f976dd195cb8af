"""§5.2 reads and exports, §5.3 the change feed, and the §8 admin endpoints."""

from __future__ import annotations

import time

import orjson

from conftest import activity, org, service_record, volunteer


def test_feed_paging_own_writes_and_head(env):
    head = env.api.call("GET", "/changes").json()["data"]
    assert head["changes"] == [] and head["hasMore"] is False
    cursor = head["nextCursor"]
    vids = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(5)]
    seen: list[dict] = []
    while True:
        page = env.api.call("GET", "/changes", params={"cursor": cursor, "limit": "2"}).json()["data"]
        seen += page["changes"]
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            break
    assert [c["id"] for c in seen] == vids
    assert all(c["byClientId"] == "hlj-platform" and c["op"] == "upsert" and c["version"] == 1 for c in seen)
    assert [c["seq"] for c in seen] == sorted(c["seq"] for c in seen)
    assert seen[0]["changedAt"].endswith("+08:00")
    # without a cursor: empty at the head
    assert env.api.call("GET", "/changes").json()["data"]["nextCursor"] == cursor
    assert env.api.call("GET", "/changes", params={"cursor": "0", "limit": "1001"}).status_code == 422
    assert env.api.call("GET", "/changes", params={"cursor": "nope"}).status_code == 400


def test_feed_scope_and_transfer_reaches_both_provinces(env):
    c23 = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    c11 = env.bj.call("GET", "/changes").json()["data"]["nextCursor"]
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    assert env.bj.call("GET", "/changes", params={"cursor": c11}).json()["data"]["changes"] == []
    env.admin("PATCH", f"/records/volunteers/{vid}", {"homeProvince": "11"})
    old = env.api.call("GET", "/changes", params={"cursor": c23}).json()["data"]["changes"]
    new = env.bj.call("GET", "/changes", params={"cursor": c11}).json()["data"]["changes"]
    assert [(c["id"], c["version"]) for c in old] == [(vid, 1), (vid, 2)]
    assert [(c["id"], c["version"], c["byClientId"]) for c in new] == [(vid, 2, "PORTAL")]


def test_derived_change_feeds_the_volunteer(env):
    ids = env.tree()
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    aid = env.api.create("activities", activity(ids["GRASSROOTS_TEAM"])).json()["data"]["id"]
    cursor = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    env.api.create("service-records", service_record(vid, aid, ids["GRASSROOTS_TEAM"]))
    items = env.api.call("GET", "/changes", params={"cursor": cursor}).json()["data"]["changes"]
    assert [(c["type"], c["version"]) for c in items] == [("serviceRecord", 1), ("volunteer", 2)]


def test_cursor_expired(env):
    old = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    for _ in range(3):
        env.api.create("volunteers", volunteer())
    head = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    env.admin("PUT", "/faults", {"feed_retention_s": 0.2})
    time.sleep(1.1)
    r = env.api.call("GET", "/changes", params={"cursor": old})
    assert r.status_code == 410 and r.json()["code"] == "CURSOR_EXPIRED"
    assert env.api.call("GET", "/changes", params={"cursor": head}).status_code == 200


def test_lookup(env):
    vids = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(3)]
    r = env.api.call("POST", "/lookup", {"type": "volunteer", "ids": [vids[0], vids[2], "VOL404"]})
    assert sorted(x["id"] for x in r.json()["data"]["records"]) == sorted([vids[0], vids[2]])
    r = env.api.call("POST", "/lookup", {"type": "volunteers", "ids": vids})
    assert len(r.json()["data"]["records"]) == 3
    assert env.api.call("POST", "/lookup", {"type": "planet", "ids": []}).status_code == 400


def test_export_order_gzip_and_scope(env):
    for _ in range(4):
        env.api.create("orgs", org("CITY_CORPS"))
    env.bj.create("volunteers", volunteer(homeProvince="11", regionCode="110101"))
    vids = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(3)]
    r = env.api.call(
        "GET", "/exports/volunteers", params={"province": "23"}, headers={"Accept-Encoding": "gzip"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-encoding"] == "gzip"
    lines = [orjson.loads(x) for x in r.text.splitlines()]
    assert [x["id"] for x in lines] == vids  # ascending id, province 23 only
    assert int(r.headers["X-Snapshot-Cursor"]) == int(
        env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    )
    plain = env.api.call(
        "GET", "/exports/orgs", params={"province": "23"}, headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    ids = [orjson.loads(x)["id"] for x in plain.content.decode().splitlines()]
    assert ids == sorted(ids, key=lambda s: s.encode()) and len(ids) == 4
    assert env.api.call("GET", "/exports/volunteers", params={"province": "11"}).json()["code"] == "FORBIDDEN"


def test_export_is_one_snapshot(env):
    for _ in range(5):
        env.api.create("volunteers", volunteer())
    reg = env.sb.registry
    cursor, chunks, close = reg.open_export("volunteer", "23", page=2)
    try:
        first = next(chunks)
        env.api.create("volunteers", volunteer())  # a write while the export streams
        vid = env.api.call("GET", "/volunteers", params={"limit": "1"}).json()["data"]["records"][0]["id"]
        env.admin("PATCH", f"/records/volunteers/{vid}", {"phone": "13000000000"})
        rest = b"".join(chunks)
    finally:
        close()
    docs = [orjson.loads(x) for x in (first + rest).splitlines()]
    assert len(docs) == 5 and all(d["version"] == 1 for d in docs)
    assert cursor == 5


def test_admin_endpoints(env):
    r = env.admin("POST", "/portal/volunteers", {k: v for k, v in volunteer().items() if k != "clientRef"})
    assert r.status_code == 201 and r.json()["data"]["clientRef"] is None
    vid = r.json()["data"]["id"]
    r = env.admin("PATCH", f"/records/volunteers/{vid}", {"phone": "13600000000"})
    assert r.json()["data"]["version"] == 2
    assert env.admin("PATCH", f"/records/volunteers/{vid}", {"version": 9}).status_code == 422
    recs = env.admin("GET", "/records/volunteers").json()["data"]["records"]
    assert [x["id"] for x in recs] == [vid]
    counters = env.admin("GET", "/counters").json()["data"]
    assert counters["total"] >= 3
    r = env.admin("POST", "/clients", {"clientId": "new-one", "clientSecret": "pw", "province": "23"})
    assert r.status_code == 200
    tok = env.http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "new-one", "client_secret": "pw"},
    )
    assert tok.status_code == 200
    assert env.admin("POST", "/reset").status_code == 200
    assert env.admin("GET", "/records/volunteers").json()["data"]["records"] == []


def test_admin_is_off_by_default(make_env):
    e = make_env()
    assert e.admin("GET", "/counters").status_code == 200
    from regsync.sandbox.app import create_app

    assert not any(
        getattr(r, "path", "").startswith("/_sandbox") for r in create_app("", [], store=e.sb.store).routes
    )
