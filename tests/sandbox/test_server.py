"""SandboxServer in a thread and in a child process, and an export held open over real HTTP."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import time
import uuid

import httpx
import orjson
import pytest

from conftest import volunteer
from regsync.sandbox.server import SandboxServer


def _signed(
    sbx: SandboxServer,
    http: httpx.Client,
    token: str,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    headers: dict | None = None,
    stream: bool = False,
):
    ts, nonce = str(int(time.time() * 1000)), secrets.token_hex(12)
    msg = "\n".join([method, "/api/v1" + path, query, ts, nonce, hashlib.sha256(body).hexdigest()])
    h = {
        "Authorization": f"Bearer {token}",
        "X-Client-Id": sbx.client_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": hmac.new(sbx.client_secret.encode(), msg.encode(), hashlib.sha256).hexdigest(),
        **(headers or {}),
    }
    url = "/api/v1" + path + ("?" + query if query else "")
    if stream:
        return http.stream(method, url, content=body, headers=h)
    return http.request(method, url, content=body, headers=h)


def _token(sbx: SandboxServer, http: httpx.Client) -> str:
    return http.post(
        "/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sbx.client_id,
            "client_secret": sbx.client_secret,
        },
    ).json()["access_token"]


@pytest.mark.parametrize("subprocess", [False, True])
def test_server_modes_answer(subprocess):
    with SandboxServer(subprocess=subprocess) as sbx:
        assert sbx.base_url.endswith("/api/v1") and sbx.admin_url.endswith("/_sandbox")
        with httpx.Client(base_url=sbx.base_url.removesuffix("/api/v1")) as http:
            token = _token(sbx, http)
            r = _signed(
                sbx,
                http,
                token,
                "POST",
                "/volunteers",
                body=orjson.dumps(volunteer()),
                headers={"Idempotency-Key": "k1"},
            )
            assert r.status_code == 201, r.text
            assert http.get(sbx.admin_url + "/counters").json()["data"]["total"] >= 2


def test_export_in_progress_over_http():
    with (
        SandboxServer() as sbx,
        httpx.Client(base_url=sbx.base_url.removesuffix("/api/v1"), timeout=30) as http,
    ):
        token = _token(sbx, http)
        reg = sbx.app.state.sandbox.registry
        original = reg.open_export

        def slow_export(kind, province):  # pages of 100, a little pause each: the export stays open
            cursor, chunks, close = original(kind, province, page=100)

            def slow():
                for chunk in chunks:
                    time.sleep(0.03)
                    yield chunk

            return cursor, slow(), close

        reg.open_export = slow_export
        for b in range(3):
            ops = [
                {"op": "create", "type": "volunteer", "idempotencyKey": uuid.uuid4().hex, "body": volunteer()}
                for _ in range(500)
            ]
            r = _signed(
                sbx,
                http,
                token,
                "POST",
                "/batch",
                body=orjson.dumps({"operations": ops}),
                headers={"Idempotency-Key": f"b{b}"},
            )
            assert r.status_code == 200
        with _signed(
            sbx,
            http,
            token,
            "GET",
            "/exports/volunteers",
            "province=23",
            headers={"Accept-Encoding": "gzip"},
            stream=True,
        ) as r:
            assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
            with httpx.Client(base_url=str(http.base_url)) as other:
                busy = _signed(sbx, other, token, "GET", "/exports/orgs", "province=23")
                assert busy.status_code == 429 and busy.json()["code"] == "EXPORT_IN_PROGRESS"
                assert busy.headers["Retry-After"]
            raw = b"".join(r.iter_raw())
        lines = gzip.decompress(raw).splitlines()
        ids = [orjson.loads(x)["id"] for x in lines]
        assert len(ids) == 1500 and ids == sorted(ids)
        time.sleep(0.2)
        assert _signed(sbx, http, token, "GET", "/exports/orgs", "province=23").status_code == 200


def test_an_abandoned_export_does_not_hold_the_slot_for_ever(monkeypatch):
    """A reader that goes away without reading its export (the stream never runs to its end) must not leave
    every later export of the client answered EXPORT_IN_PROGRESS until a restart."""
    from regsync.sandbox import app as sandbox_app

    monkeypatch.setattr(sandbox_app, "EXPORT_IDLE_S", 0.5)
    with (
        SandboxServer() as sbx,
        httpx.Client(base_url=sbx.base_url.removesuffix("/api/v1"), timeout=30) as http,
    ):
        token = _token(sbx, http)
        reg = sbx.app.state.sandbox.registry
        original = reg.open_export

        def stuck_export(kind, province):  # an export that produces nothing for a long while
            cursor, chunks, close = original(kind, province)

            def stuck():
                time.sleep(3)
                yield from chunks

            return cursor, stuck(), close

        reg.open_export = stuck_export
        with httpx.Client(base_url=str(http.base_url), timeout=0.3) as impatient:
            with pytest.raises(httpx.ReadTimeout), \
                    _signed(sbx, impatient, token, "GET", "/exports/orgs", "province=23", stream=True) as r:
                r.read()
        reg.open_export = original
        busy = _signed(sbx, http, token, "GET", "/exports/orgs", "province=23")
        assert busy.status_code == 429  # the abandoned one is still within its idle allowance
        time.sleep(0.6)
        assert _signed(sbx, http, token, "GET", "/exports/orgs", "province=23").status_code == 200
