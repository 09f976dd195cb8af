"""The sandbox's faults (registry-api.md §8), over raw HTTP with our own signer: each happens at about its
rate with a fixed seed, is what it claims to be on the wire, and is counted; the same seed gives the same
faults; the ``NAME=VALUE`` form is parsed strictly. SQLite only (the faults do not depend on the engine)."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import C23, Api, Env, volunteer
from regsync.sandbox.cli import app as cli_app
from regsync.sandbox.faults import FAULT_NAMES, Faults, format_fault_spec, parse_fault_spec
from regsync.sandbox.server import SandboxServer

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$"
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


def injected(env: Env) -> dict[str, int]:
    return env.admin("GET", "/counters").json()["data"]["injected"]


def is_html(r: Any, status: int) -> bool:
    return (
        r.status_code == status
        and r.headers["content-type"].startswith("text/html")
        and r.text.lstrip().lower().startswith(("<html", "<!doctype html"))
        and str(status) in r.text
    )


def volunteer_count(env: Env) -> int:
    return len(env.admin("GET", "/records/volunteers").json()["data"]["records"])


def http_date(value: str) -> float:
    assert IMF_FIXDATE.match(value), value
    return email.utils.parsedate_to_datetime(value).timestamp()


# ----------------------------------------------------------------------------------------------- settings


def test_name_value_parser_accepts():
    spec = (
        " latency_ms=20, error_rate=0.05,lost_answer_rate=0.2,rate_limit_rps=5,maintenance_s=0,"
        "token_ttl_s=30,clock_offset_s=-90,feed_duplicate_rate=1,feed_retention_s=3600,"
        "gateway_body_limit=65536,firewall_rate=0.01,retry_after_http_date=true,"
    )
    got = parse_fault_spec(spec)
    assert list(got) == list(FAULT_NAMES)
    assert got["latency_ms"] == 20.0 and got["clock_offset_s"] == -90.0 and got["rate_limit_rps"] == 5.0
    assert got["gateway_body_limit"] == 65536 and got["retry_after_http_date"] is True
    assert parse_fault_spec("") == {} and parse_fault_spec(None) == {}
    assert parse_fault_spec('{"error_rate": 0.5, "retry_after_http_date": 0}') == {
        "error_rate": 0.5,
        "retry_after_http_date": False,
    }
    for text in ("1", "yes", "ON", "True"):
        assert parse_fault_spec(f"retry_after_http_date={text}") == {"retry_after_http_date": True}
    assert parse_fault_spec("gateway_body_limit=0") == {"gateway_body_limit": None}
    # the dict form (the demo's), with string or numeric values, round-trips through the NAME=VALUE form
    as_dict = {
        "lost_answer_rate": "0.2",
        "latency_ms": 5,
        "retry_after_http_date": True,
        "rate_limit_rps": None,
    }
    assert parse_fault_spec(format_fault_spec(as_dict)) == {
        "lost_answer_rate": 0.2,
        "latency_ms": 5.0,
        "retry_after_http_date": True,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus=1", "unknown fault 'bogus'"),
        ("latency_s=5", "unknown fault"),
        ("error_rate=1.5", "error_rate: a rate is between 0 and 1"),
        ("error_rate=-0.1", "between 0 and 1"),
        ("error_rate=abc", "error_rate: expected a number"),
        ("latency_ms=nan", "finite"),
        ("latency_ms=-1", "latency_ms"),
        ("rate_limit_rps=0", "rate_limit_rps: expected a number > 0"),
        ("token_ttl_s=0", "token_ttl_s"),
        ("feed_retention_s=-5", "feed_retention_s"),
        ("maintenance_s=-1", "maintenance_s"),
        ("gateway_body_limit=1.5", "gateway_body_limit: expected a whole number"),
        ("gateway_body_limit=-3", "gateway_body_limit"),
        ("retry_after_http_date=maybe", "retry_after_http_date"),
        ("error_rate", "expected NAME=VALUE"),
        ("=0.5", "expected NAME=VALUE"),
        ("error_rate=0.1,error_rate=0.2", "given twice"),
        ("error_rate=", "expected a number"),
        ('{"error_rate": 0.1', "not a JSON object"),
        ("[1]", "expected NAME=VALUE"),
    ],
)
def test_name_value_parser_rejects(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_fault_spec(spec)


def test_cli_usage_error_and_server_checks():
    result = CliRunner().invoke(cli_app, ["serve", "--client", "a:b:23", "--faults", "error_rate=2"])
    out = result.output + (getattr(result, "stderr", "") or "")
    assert result.exit_code == 2 and "between 0 and 1" in out and "--faults" in out
    result = CliRunner().invoke(cli_app, ["serve", "--client", "a:b:23", "--faults", "nope=1"])
    assert result.exit_code == 2
    with pytest.raises(ValueError, match="unknown fault"):
        SandboxServer(faults={"nope": 1})
    with pytest.raises(ValueError, match="error_rate"):
        SandboxServer(faults={"error_rate": "2"})


def test_admin_faults_get_put(env):
    r = env.admin("GET", "/faults")
    assert list(r.json()["data"]) == list(FAULT_NAMES)
    r = env.admin("PUT", "/faults", {"error_rate": "0.25", "gateway_body_limit": 1000})
    assert r.status_code == 200 and r.json()["data"]["error_rate"] == 0.25
    r = env.admin("PUT", "/faults", {"error_rate": 0.5, "firewall_rate": 3})
    assert r.status_code == 400 and "firewall_rate" in r.json()["message"]
    assert env.admin("GET", "/faults").json()["data"]["error_rate"] == 0.25  # all or nothing
    r = env.admin("PUT", "/faults", {"latency_s": 1})
    assert r.status_code == 400 and "unknown fault" in r.json()["message"]
    r = env.admin("PUT", "/faults", {"error_rate": None, "gateway_body_limit": None})
    assert r.json()["data"]["error_rate"] == 0 and r.json()["data"]["gateway_body_limit"] is None


def test_subprocess_passes_faults_through():
    faults = {
        "lost_answer_rate": "0.2",
        "latency_ms": 5,
        "retry_after_http_date": True,
        "clock_offset_s": -30,
    }
    with SandboxServer(subprocess=True, faults=faults, seed=3) as sbx:
        data = httpx.get(sbx.admin_url + "/faults").json()["data"]
    assert data["lost_answer_rate"] == 0.2 and data["latency_ms"] == 5
    assert data["retry_after_http_date"] is True and data["clock_offset_s"] == -30


# ------------------------------------------------------------------------------------------------- faults


def test_latency(make_env):
    env = make_env(faults={"latency_ms": "150"})
    started = time.monotonic()
    assert env.api.call("GET", "/changes").status_code == 200
    assert time.monotonic() - started >= 0.15
    assert injected(env)["latency"] >= 2  # the token call and the API call


def test_error_rate(make_env):
    env = make_env(seed=1, faults={"error_rate": "0.3"})
    answers = [env.api.call("GET", "/changes") for _ in range(200)]
    errors = [r for r in answers if r.status_code >= 500]
    assert 35 <= len(errors) <= 85
    seen = set()
    for r in errors:
        html = r.headers["content-type"].startswith("text/html")
        seen.add((r.status_code, html))
        if html:
            assert is_html(r, r.status_code)
        else:
            code = r.json()["code"]
            assert code == ("MAINTENANCE" if r.status_code == 503 else "INTERNAL")
        if r.status_code == 503:
            assert r.headers["Retry-After"].isdigit()
    assert {s for s, _ in seen} == {500, 502, 503, 504} and {h for _, h in seen} == {True, False}
    counts = injected(env)
    assert sum(n for k, n in counts.items() if k.startswith("error_")) == len(errors)
    assert counts.get("error_502_html", 0) == sum(
        1 for r in errors if r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    )
    # an error answer did nothing: no record, and the key is free again
    env.admin("PUT", "/faults", {"error_rate": 1})
    body, key = volunteer(), "k-error-once"
    assert env.api.create("volunteers", body, key).status_code >= 500
    assert volunteer_count(env) == 0
    env.admin("PUT", "/faults", {"error_rate": 0})
    r = env.api.create("volunteers", body, key)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_lost_answers_are_committed():
    with (
        SandboxServer(
            clients=[C23],
            faults={"lost_answer_rate": "0.5"},
            seed=11,
            rate_limit_rps=10_000,
            rate_limit_burst=10_000,
        ) as sbx,
        httpx.Client(base_url=sbx.base_url.removesuffix("/api/v1"), timeout=10) as http,
    ):
        api = Api(http, C23)
        lost: list[tuple[str, dict[str, Any]]] = []
        kinds = {"ok": 0, "504": 0, "drop": 0}
        for _ in range(30):
            body, key = volunteer(), api.key()
            try:
                r = api.create("volunteers", body, key)
            except httpx.TransportError:  # the connection was closed without an answer
                kinds["drop"] += 1
                lost.append((key, body))
                continue
            if r.status_code == 201:
                kinds["ok"] += 1
            else:
                assert is_html(r, 504)
                kinds["504"] += 1
                lost.append((key, body))
        assert 7 <= len(lost) <= 23 and kinds["504"] and kinds["drop"]
        counts = http.get("/_sandbox/counters").json()["data"]["injected"]
        assert counts["lost_answer_504"] == kinds["504"] and counts["lost_answer_drop"] == kinds["drop"]
        # reads are never lost; every lost write was committed, and a retry with its key replays it
        for _key, body in lost:
            r = api.call("GET", "/volunteers", params={"clientRef": body["clientRef"]})
            assert r.status_code == 200 and len(r.json()["data"]["records"]) == 1
        http.put("/_sandbox/faults", json={"lost_answer_rate": 0})
        key, body = lost[0]
        r = api.create("volunteers", body, key)
        assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"
        # a PUT and a batch are writes too
        http.put("/_sandbox/faults", json={"lost_answer_rate": 1})
        found = api.call("GET", "/volunteers", params={"clientRef": body["clientRef"]})
        rec = found.json()["data"]["records"][0]
        changed = {k: v for k, v in body.items() if k != "clientRef"} | {"phone": "13800000000"}
        for _ in range(2):
            try:
                r = api.put("volunteers", rec["id"], changed, rec["version"])
                assert is_html(r, 504)
                break
            except httpx.TransportError:
                break
        ops = [{"op": "create", "type": "volunteer", "idempotencyKey": "op-1", "body": volunteer()}]
        try:
            r = api.batch(ops)
            assert is_html(r, 504)
        except httpx.TransportError:
            pass
        http.put("/_sandbox/faults", json={"lost_answer_rate": 0})
        after = api.call("GET", f"/volunteers/{rec['id']}").json()["data"]
        assert after["phone"] == "13800000000" and after["version"] == rec["version"] + 1
        r = api.call("GET", "/volunteers", params={"clientRef": ops[0]["body"]["clientRef"]})
        assert len(r.json()["data"]["records"]) == 1


def test_rate_limit_rps(make_env):
    env = make_env(faults={"rate_limit_rps": "2"})  # burst 4
    statuses = [env.api.call("GET", "/changes") for _ in range(8)]
    ok = [r for r in statuses if r.status_code == 200]
    limited = [r for r in statuses if r.status_code == 429]
    assert 4 <= len(ok) <= 5 and len(ok) + len(limited) == 8
    assert all(r.json()["code"] == "RATE_LIMITED" and r.headers["Retry-After"] == "1" for r in limited)
    assert injected(env)["rate_limited"] == len(limited)


def test_maintenance_window(make_env):
    env = make_env(seed=2, faults={"maintenance_s": "30"})  # at start
    r = env.api.call("GET", "/changes")
    assert r.status_code == 503 and 29 <= int(r.headers["Retry-After"]) <= 30
    env.admin("PUT", "/faults", {"maintenance_s": 1})  # a new window, starting now
    answers = [env.api.call("GET", "/changes") for _ in range(20)]
    assert all(r.status_code == 503 and r.headers["Retry-After"] == "1" for r in answers)
    html = [r for r in answers if r.headers["content-type"].startswith("text/html")]
    assert 0 < len(html) < 20 and all(is_html(r, 503) for r in html)
    assert all(r.json()["code"] == "MAINTENANCE" for r in answers if r not in html)
    counts = injected(env)
    assert counts["maintenance_html"] == len(html) and counts["maintenance"] == 21 - len(html)
    assert env.admin("GET", "/faults").json()["data"]["maintenance_s"] == 1
    time.sleep(1.05)
    assert env.api.call("GET", "/changes").status_code == 200
    assert env.admin("GET", "/faults").json()["data"]["maintenance_s"] == 0


def test_short_token_lifetime(make_env):
    env = make_env(faults={"token_ttl_s": "0.3"})
    assert env.api.call("GET", "/changes").status_code == 200
    time.sleep(0.4)
    r = env.api.call("GET", "/changes")
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_EXPIRED"
    assert injected(env)["token_expired"] == 1


def test_clock_offset(make_env):
    env = make_env(faults={"clock_offset_s": "600"})
    r = env.api.call("GET", "/changes")
    assert r.status_code == 401 and r.json()["code"] == "TIMESTAMP_SKEW"
    server = email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()
    assert abs(server - (time.time() + 600)) < 3
    from datetime import datetime

    server_time = datetime.fromisoformat(r.json()["data"]["serverTime"]).timestamp()
    assert abs(server_time - (time.time() + 600)) < 3
    assert injected(env)["timestamp_skew"] == 1
    ts = int((time.time() + 600) * 1000)  # a client that corrected its offset
    r = env.api.call("POST", "/volunteers", volunteer(), headers={"Idempotency-Key": "k1"}, ts=ts)
    assert r.status_code == 201
    created = datetime.fromisoformat(r.json()["data"]["createdAt"]).timestamp()
    assert abs(created - (time.time() + 600)) < 3
    env.admin("PUT", "/faults", {"clock_offset_s": 100})  # within the 300 s tolerance
    assert env.api.call("GET", "/changes").status_code == 200


def test_feed_duplicates(make_env):
    env = make_env(seed=4)
    start = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    for _ in range(40):
        assert env.api.create("volunteers", volunteer()).status_code == 201

    def page_through() -> tuple[list[int], list[list[int]]]:
        cursor, seqs, pages = start, [], []
        while True:
            data = env.api.call("GET", "/changes", params={"cursor": cursor, "limit": "7"}).json()["data"]
            page = [c["seq"] for c in data["changes"]]
            pages.append(page)
            seqs += page
            cursor = data["nextCursor"]
            if not data["hasMore"]:
                return seqs, pages

    clean, _ = page_through()
    assert len(clean) == len(set(clean)) and "feed_duplicates" not in injected(env)
    env.admin("PUT", "/faults", {"feed_duplicate_rate": "0.5"})
    seqs, pages = page_through()
    assert set(seqs) == set(clean)
    assert all(len(p) <= 7 and p == sorted(p) for p in pages)
    repeated = len(seqs) - len(set(seqs))
    assert repeated > 0 and injected(env)["feed_duplicates"] == repeated
    within = sum(1 for p in pages for a, b in zip(p, p[1:], strict=False) if a == b)
    assert 0 < within < repeated  # both kinds: inside a page, and items of the page before


def test_feed_retention(make_env):
    env = make_env(faults={"feed_retention_s": "1"})
    old = env.api.call("GET", "/changes").json()["data"]["nextCursor"]
    env.api.create("volunteers", volunteer())
    time.sleep(1.1)
    r = env.api.call("GET", "/changes", params={"cursor": old})
    assert r.status_code == 410 and r.json()["code"] == "CURSOR_EXPIRED"
    assert injected(env)["cursor_expired"] == 1


def test_gateway_body_limit(make_env):
    env = make_env(faults={"gateway_body_limit": "2000"})
    assert env.api.create("volunteers", volunteer()).status_code == 201
    big = volunteer(skills=[f"技能{i}" for i in range(300)])
    r = env.api.create("volunteers", big)
    assert is_html(r, 413) and "Request Entity Too Large" in r.text
    assert volunteer_count(env) == 1 and injected(env)["gateway_413"] == 1
    env.admin("PUT", "/faults", {"gateway_body_limit": None})
    r = env.api.create("volunteers", big)  # the registry's own answer is JSON
    assert r.headers["content-type"] == "application/json" and r.status_code in (201, 422)


def test_firewall(make_env):
    env = make_env(seed=5, faults={"firewall_rate": "0.3"})
    answers = [env.api.call("GET", "/changes") for _ in range(200)]
    blocked = [r for r in answers if r.status_code in (403, 429)]
    assert 35 <= len(blocked) <= 85
    f403 = [r for r in blocked if r.status_code == 403]
    f429 = [r for r in blocked if r.status_code == 429]
    assert f403 and f429
    assert all(is_html(r, r.status_code) for r in blocked)
    assert all(r.headers["Retry-After"].isdigit() for r in f429)
    counts = injected(env)
    assert counts["firewall_403"] == len(f403) and counts["firewall_429"] == len(f429)


def test_retry_after_http_date(make_env):
    offset = -200
    env = make_env(
        faults={"retry_after_http_date": "1", "clock_offset_s": str(offset), "maintenance_s": "20"}
    )
    r = env.api.call("GET", "/changes")
    assert r.status_code == 503
    date, retry_at = http_date(r.headers["Date"]), http_date(r.headers["Retry-After"])
    assert abs(date - (time.time() + offset)) < 3  # Date on the registry's clock
    assert 19 <= retry_at - date <= 20 and retry_at > time.time() + offset
    env.admin("PUT", "/faults", {"maintenance_s": 0, "rate_limit_rps": 1})  # burst 2
    answers = [env.api.call("GET", "/changes") for _ in range(4)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited
    for r in limited:
        assert http_date(r.headers["Retry-After"]) - http_date(r.headers["Date"]) == 1
    assert injected(env)["retry_after_http_date"] == 1 + len(limited)
    for r in [*answers, env.admin("GET", "/counters"), env.http.post("/api/v1/oauth/token")]:
        assert len(r.headers.get_list("date")) == 1
        assert abs(http_date(r.headers["Date"]) - (time.time() + offset)) < 3


def test_disabled_client(env):
    assert env.api.call("GET", "/changes").status_code == 200
    env.admin("POST", "/clients", {"clientId": C23.client_id, "enabled": False})
    r = env.http.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": C23.client_id,
            "client_secret": C23.client_secret,
        },
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = env.api.call("GET", "/changes")  # the token issued before
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    assert injected(env)["client_disabled"] == 2
    env.admin("POST", "/clients", {"clientId": C23.client_id, "enabled": True})
    fresh = Api(env.http, C23)
    assert fresh.call("GET", "/changes").status_code == 200


# ---------------------------------------------------------------------------------------- reproducibility

MIXED = {"error_rate": "0.2", "firewall_rate": "0.1", "feed_duplicate_rate": "0.5", "lost_answer_rate": "0.2"}


def run_sequence(env: Env) -> tuple[list[tuple[int, str, int]], dict[str, int]]:
    out = []
    for i in range(60):
        if i % 3 == 0:
            try:
                r = env.api.create("volunteers", volunteer())
            except ConnectionAbortedError:  # a dropped answer under the in-process test client
                out.append((0, "drop", 0))
                continue
        else:
            r = env.api.call("GET", "/changes", params={"cursor": "0", "limit": "5"})
        feed = len(r.json()["data"]["changes"]) if r.status_code == 200 and i % 3 else 0
        out.append((r.status_code, r.headers["content-type"].split(";")[0], feed))
    return out, injected(env)


def test_same_seed_same_faults(make_env):
    a, b, c = (make_env(seed=s, faults=MIXED) for s in (7, 7, 8))
    first = run_sequence(a)
    assert first == run_sequence(b)
    assert first != run_sequence(c)
    assert {k for k in first[1]} >= {"feed_duplicates", "firewall_403"}
    # /_sandbox/reset empties the counters and restarts the draws from the seed
    assert a.admin("POST", "/reset").status_code == 200
    assert injected(a) == {}
    a.api = Api(a.http, C23)
    again = run_sequence(a)
    assert [x[:2] for x in again[0]] == [x[:2] for x in first[0]] and again[1] == first[1]


def test_faults_object_defaults():
    f = Faults()
    assert f.as_dict()["token_ttl_s"] == 600 and f.as_dict()["feed_retention_s"] == 7 * 24 * 3600
    assert not f.draw(__import__("random").Random(1), 0)
