"""§2 authentication and signing, §3 limits: raw requests signed by the tests' own signer."""

from __future__ import annotations

import time

import orjson

from conftest import C23, Api, volunteer


def test_token_flow_and_errors(env):
    r = env.http.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": C23.client_id,
            "client_secret": C23.client_secret,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["access_token"]
    assert "code" not in body  # no envelope
    bad = env.http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": C23.client_id, "client_secret": "nope"},
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    unknown = env.http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "who", "client_secret": "x"},
    )
    assert unknown.json()["error"] == "invalid_client"
    assert env.http.post("/api/v1/oauth/token", data={"client_id": "x"}).json()["error"] == "invalid_request"
    grant = env.http.post("/api/v1/oauth/token", data={"grant_type": "password", "client_id": "x"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_disabled_client_is_invalid_client_and_its_tokens_die(env):
    assert env.api.call("GET", "/changes").status_code == 200
    r = env.admin("POST", "/clients", {"clientId": C23.client_id, "enabled": False})
    assert r.status_code == 200
    assert env.api.call("GET", "/changes").json()["code"] == "TOKEN_INVALID"
    r = env.http.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": C23.client_id,
            "client_secret": C23.client_secret,
        },
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_missing_forged_and_expired_tokens(env):
    r = env.http.get("/api/v1/changes")
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    h = env.api.signed_headers("GET", "/api/v1/changes", [], b"")
    h["Authorization"] = "Bearer Zm9vOjA6OTk5OTk5OTk5OTk5OQ.0123456789abcdef0123456789abcdef"
    r = env.http.get("/api/v1/changes", headers=h)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    assert set(r.json()) == {"code", "message", "requestId", "data"}
    env.admin("PUT", "/faults", {"token_ttl_s": 0.2})
    short = Api(env.http, C23)
    assert short.call("GET", "/changes").status_code == 200
    time.sleep(0.35)
    r = short.call("GET", "/changes")
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_EXPIRED"


def test_signature_rejections(env):
    api = env.api
    assert api.call("GET", "/changes", params={"cursor": "0", "limit": "5"}).status_code == 200
    r = api.call("GET", "/changes", secret="wrong-secret")
    assert r.status_code == 401 and r.json()["code"] == "SIGNATURE_INVALID"
    # the body is signed: change it after signing
    body = orjson.dumps({"type": "volunteer", "ids": ["X"]})
    h = api.signed_headers("POST", "/api/v1/lookup", [], body)
    r = env.http.post("/api/v1/lookup", content=body + b" ", headers=h)
    assert r.json()["code"] == "SIGNATURE_INVALID"
    # the query is signed too
    h = api.signed_headers("GET", "/api/v1/changes", [("cursor", "0")], b"")
    r = env.http.get("/api/v1/changes?cursor=1", headers=h)
    assert r.json()["code"] == "SIGNATURE_INVALID"
    for nonce in ("short", "x" * 65, "has-dash-000000000000"):
        assert api.call("GET", "/changes", nonce=nonce).json()["code"] == "SIGNATURE_INVALID"
    assert api.call("GET", "/changes", sign_method="HMAC-MD5").json()["code"] == "SIGNATURE_INVALID"


def test_timestamp_skew_reports_server_time(env):
    r = env.api.call("GET", "/changes", ts=int(time.time() * 1000) - 301_000)
    assert r.status_code == 401 and r.json()["code"] == "TIMESTAMP_SKEW"
    assert r.json()["data"]["serverTime"].endswith("+08:00")
    assert env.api.call("GET", "/changes", ts=int(time.time() * 1000) + 250_000).status_code == 200


def test_nonce_replayed(env):
    nonce = "abcdefABCDEF0123456789"
    assert env.api.call("GET", "/changes", nonce=nonce).status_code == 200
    r = env.api.call("GET", "/changes", nonce=nonce)
    assert r.status_code == 401 and r.json()["code"] == "NONCE_REPLAYED"


def test_hmac_sm3_and_sm3_only_registry(env, make_env):
    sm3 = Api(env.http, C23, method="HMAC-SM3")
    assert sm3.call("GET", "/changes").status_code == 200
    only = make_env(sign_methods=("HMAC-SM3",))
    assert Api(only.http, C23, method="HMAC-SM3").call("GET", "/changes").status_code == 200
    r = Api(only.http, C23).call("GET", "/changes")
    assert r.status_code == 401 and r.json()["code"] == "SIGNATURE_INVALID"


def test_rate_limit_answers_429_with_retry_after(make_env):
    e = make_env(rate_limit_rps=1, rate_limit_burst=3)
    codes = [e.api.call("GET", "/changes").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    r = e.api.call("GET", "/changes")
    assert r.json()["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
    # another client has its own bucket
    assert e.other.call("GET", "/changes").status_code == 200


def test_body_too_large(env):
    raw = b'{"operations": [' + b" " * (5 * 1024 * 1024) + b"]}"
    r = env.api.call("POST", "/batch", raw=raw, headers={"Idempotency-Key": "big"})
    assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"


def test_envelope_and_bad_request(env):
    r = env.api.call("POST", "/volunteers", raw=b"{not json", headers={"Idempotency-Key": "k1"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    # nothing was kept for a 400: the key works afterwards
    r = env.api.create("volunteers", volunteer(), key="k1")
    assert r.status_code == 201 and r.json()["requestId"]
    r = env.api.call("POST", "/volunteers", volunteer())
    assert r.status_code == 400  # a create needs an Idempotency-Key
