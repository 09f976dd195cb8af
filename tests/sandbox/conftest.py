"""Fixtures of the sandbox registry tests: an app per test on SQLite and on PostgreSQL, and a signer of our
own (``hmac``/``hashlib`` and a hand-made RFC 2104 HMAC over SM3 — deliberately not
``regsync.registry.signing``), so a misreading shared by the client and the sandbox cannot pass."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from regsync.sandbox.app import create_app
from regsync.sandbox.store import ClientCredential, Store

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
C23 = ClientCredential("hlj-platform", "s3cret-23-xyz", "23")
C11 = ClientCredential("bj-platform", "s3cret-11-abc", "11")
C23B = ClientCredential("hlj-other", "s3cret-23-other", "23")


def _pg_ok() -> bool:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=2).close()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_ok()


# ------------------------------------------------------------------------------------------- our own signer


def hmac_sm3(key: bytes, data: bytes) -> str:
    """RFC 2104 HMAC over SM3 (block size 64), built by hand from the SM3 hash of ``cryptography``."""
    from cryptography.hazmat.primitives import hashes

    def sm3(b: bytes) -> bytes:
        h = hashes.Hash(hashes.SM3())
        h.update(b)
        return h.finalize()

    if len(key) > 64:
        key = sm3(key)
    key = key.ljust(64, b"\0")
    inner = sm3(bytes(k ^ 0x36 for k in key) + data)
    return sm3(bytes(k ^ 0x5C for k in key) + inner).hex()


def canonical(params: list[tuple[str, str]]) -> str:
    enc = sorted((quote(k, safe="-._~"), quote(v, safe="-._~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in enc)


class Api:
    """A raw HTTP caller that gets tokens and signs every call itself."""

    def __init__(self, http: Any, cred: ClientCredential, method: str = "HMAC-SHA256") -> None:
        self.http = http
        self.cred = cred
        self.method = method
        self._token: str | None = None
        self._keys = itertools.count(1)

    def token(self) -> str:
        if self._token is None:
            r = self.http.post(
                "/api/v1/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.cred.client_id,
                    "client_secret": self.cred.client_secret,
                },
            )
            assert r.status_code == 200, r.text
            self._token = r.json()["access_token"]
        return self._token

    def key(self) -> str:
        return f"k-{uuid.uuid4().hex}"

    def signed_headers(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: bytes,
        *,
        ts: int | None = None,
        nonce: str | None = None,
        secret: str | None = None,
        sign_method: str | None = None,
    ) -> dict[str, str]:
        ts = ts if ts is not None else int(time.time() * 1000)
        nonce = nonce or secrets.token_hex(16)
        sm = sign_method or self.method
        message = "\n".join(
            [method, path, canonical(query), str(ts), nonce, hashlib.sha256(body).hexdigest()]
        )
        key = (secret or self.cred.client_secret).encode()
        if sm == "HMAC-SM3":
            sig = hmac_sm3(key, message.encode())
        else:
            sig = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
        return {
            "Authorization": f"Bearer {self.token()}",
            "X-Client-Id": self.cred.client_id,
            "X-Timestamp": str(ts),
            "X-Nonce": nonce,
            "X-Sign-Method": sm,
            "X-Signature": sig,
        }

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        **sign: Any,
    ) -> Any:
        full = "/api/v1" + path
        query = list((params or {}).items())
        data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        h = self.signed_headers(method, full, query, data, **sign)
        if data:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        url = full + ("?" + canonical(query) if query else "")
        return self.http.request(method, url, content=data, headers=h)

    # conveniences
    def create(self, collection: str, body: dict[str, Any], key: str | None = None) -> Any:
        return self.call("POST", f"/{collection}", body, headers={"Idempotency-Key": key or self.key()})

    def put(self, collection: str, rid: str, body: dict[str, Any], version: int | None) -> Any:
        h = {} if version is None else {"If-Match": f'"{version}"'}
        return self.call("PUT", f"/{collection}/{rid}", body, headers=h)

    def batch(self, ops: list[dict[str, Any]], key: str | None = None) -> Any:
        return self.call(
            "POST", "/batch", {"operations": ops}, headers={"Idempotency-Key": key or self.key()}
        )


# -------------------------------------------------------------------------------------------- data builders

_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def id_check(first17: str) -> str:
    """GB 11643-1999 (ISO 7064 MOD 11-2) check character, computed here by hand."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


_seq = itertools.count(1)


def id_number(
    area: str = "230102", birth: str = "19900307", gender: str = "M", seq: int | None = None
) -> str:
    """A valid 18-character number, unique per ``seq`` (up to 25 000): the order code carries the gender
    parity, the area code's last two digits vary (50–99) beyond 500 numbers (area codes are not checked)."""
    n = next(_seq) if seq is None else seq
    order = (n % 500) * 2 + (1 if gender == "M" else 0)
    if n >= 500:
        area = f"{area[:4]}{50 + (n // 500) % 50:02d}"
    first17 = f"{area}{birth}{order:03d}"
    return first17 + id_check(first17)


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(n: int | None = None) -> str:
    """A USCC with a correct GB 32100-2015 check character, computed here by hand."""
    n = next(_seq) if n is None else n
    body = f"51230100MJ{n:07d}"[:17]
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


def volunteer(**over: Any) -> dict[str, Any]:
    gender = over.pop("gender", "M")
    number = over.pop("idNumber", None) or id_number(gender=gender)
    body = {
        "clientRef": f"v-{uuid.uuid4().hex[:12]}",
        "name": "张三",
        "idType": "RESIDENT_ID",
        "idNumber": number,
        "gender": gender,
        "birthDate": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
        "phone": "13912345678",
        "regionCode": "230102",
        "skills": ["急救"],
        "homeProvince": "23",
    }
    body.update(over)
    return body


def org(level: str = "CITY_CORPS", parent: str | None = None, **over: Any) -> dict[str, Any]:
    org_type = (
        "SPECIALIZED"
        if level in ("PROVINCIAL_CORPS", "CITY_DETACHMENT", "COUNTY_UNIT", "GRASSROOTS_TEAM")
        else "REGIONAL"
    )
    body = {
        "clientRef": f"o-{uuid.uuid4().hex[:12]}",
        "name": "哈尔滨市志愿服务总队",
        "orgType": org_type,
        "level": level,
        "parentId": parent,
        "stationId": None,
        "uscc": uscc() if level in ("CITY_CORPS", "PROVINCIAL_CORPS") else None,
        "regionCode": "230100",
        "streetCode": None,
        "serviceCategories": ["COMMUNITY"],
        "contactName": "李四",
        "contactPhone": "0451-82345678",
        "establishedOn": "2015-03-05",
    }
    body.update(over)
    return body


def activity(org_id: str, **over: Any) -> dict[str, Any]:
    body = {
        "clientRef": f"a-{uuid.uuid4().hex[:12]}",
        "orgId": org_id,
        "title": "社区清扫",
        "category": "ENVIRONMENT",
        "regionCode": "230102",
        "startsAt": "2025-05-01T08:00:00+08:00",
        "endsAt": "2025-05-03T18:00:00+08:00",
        "plannedHeadcount": 20,
    }
    body.update(over)
    return body


def service_record(vol_id: str, act_id: str, org_id: str, **over: Any) -> dict[str, Any]:
    body = {
        "clientRef": f"s-{uuid.uuid4().hex[:12]}",
        "volunteerId": vol_id,
        "activityId": act_id,
        "orgId": org_id,
        "serviceDate": "2025-05-01",
        "startsAt": "2025-05-01T08:00:00+08:00",
        "endsAt": "2025-05-01T12:00:00+08:00",
        "hours": "4.00",
    }
    body.update(over)
    return body


def training(org_id: str, **over: Any) -> dict[str, Any]:
    """A training of v1.1 (§4.6), in person, 2025-06-01 09:00–17:00, 4.00 class hours."""
    body = {
        "clientRef": f"t-{uuid.uuid4().hex[:12]}",
        "orgId": org_id,
        "title": "志愿者急救技能培训",
        "trainingType": "PROFESSIONAL",
        "mode": "IN_PERSON",
        "regionCode": "230102",
        "address": "哈尔滨市道里区中央大街1号",
        "startsAt": "2025-06-01T09:00:00+08:00",
        "endsAt": "2025-06-01T17:00:00+08:00",
        "classHours": "4.00",
        "contactName": "王五",
        "contactPhone": "0451-82345678",
    }
    body.update(over)
    return body


def training_record(training_id: str, vol_id: str, **over: Any) -> dict[str, Any]:
    """A training record of v1.1 (§4.7): completed on the training's day, 4.00 class hours, PASSED."""
    body = {
        "clientRef": f"tr-{uuid.uuid4().hex[:12]}",
        "trainingId": training_id,
        "volunteerId": vol_id,
        "completedOn": "2025-06-01",
        "classHours": "4.00",
        "result": "PASSED",
    }
    body.update(over)
    return body


def commendation(subject_id: str, subject_type: str = "VOLUNTEER", **over: Any) -> dict[str, Any]:
    """A commendation of v1.1 (§4.8) outside any scheme."""
    body = {
        "clientRef": f"c-{uuid.uuid4().hex[:12]}",
        "subjectType": subject_type,
        "subjectId": subject_id,
        "title": "优秀志愿者",
        "scheme": None,
        "tier": None,
        "year": None,
        "awardedOn": "2026-01-15",
        "issuer": "黑龙江省志愿服务联合会",
        "documentName": "关于表彰优秀志愿者的决定",
        "documentNumber": "黑志协〔2026〕12号",
        "content": None,
    }
    body.update(over)
    return body


def evaluation(act_id: str, vol_id: str, org_id: str, **over: Any) -> dict[str, Any]:
    """An evaluation of v1.1 (§4.9) of a volunteer in an activity that ended 2025-05-03."""
    body = {
        "clientRef": f"e-{uuid.uuid4().hex[:12]}",
        "activityId": act_id,
        "volunteerId": vol_id,
        "evaluatorOrgId": org_id,
        "punctuality": 5,
        "attitude": 4,
        "competence": 3,
        "comment": "服务认真",
        "evaluatedOn": "2025-05-04",
    }
    body.update(over)
    return body


def field_codes(r: Any) -> dict[str, str]:
    """``{field: code}`` of a 422 ``VALIDATION_FAILED`` answer (§7)."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "VALIDATION_FAILED", body
    return {e["field"]: e["code"] for e in body["data"]["errors"]}


# ----------------------------------------------------------------------------------------------- fixtures


class Env:
    """One sandbox app with a TestClient and callers for three clients (23, 23 other, 11)."""

    def __init__(self, http: TestClient, app: Any) -> None:
        self.http = http
        self.app = app
        self.sb = app.state.sandbox
        self.api = Api(http, C23)
        self.other = Api(http, C23B)
        self.bj = Api(http, C11)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.http.request(method, f"/_sandbox{path}", json=body)

    # a small org tree of province 23: city corps → … → community station, and the specialized line
    def tree(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        parent = None
        for level in ("CITY_CORPS", "DISTRICT_BRIGADE", "STREET_STATION", "COMMUNITY_STATION"):
            r = self.api.create("orgs", org(level, parent, regionCode="230102"))
            assert r.status_code == 201, r.text
            parent = ids[level] = r.json()["data"]["id"]
        parent = None
        for level in ("PROVINCIAL_CORPS", "CITY_DETACHMENT", "COUNTY_UNIT", "GRASSROOTS_TEAM"):
            extra = {"stationId": ids["COMMUNITY_STATION"]} if level == "GRASSROOTS_TEAM" else {}
            r = self.api.create("orgs", org(level, parent, regionCode="230102", **extra))
            assert r.status_code == 201, r.text
            parent = ids[level] = r.json()["data"]["id"]
        return ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not available")
    return request.param


def make_store(backend: str) -> Store:
    if backend == "postgres":
        return Store(PG_URL, schema=f"sbx_test_{uuid.uuid4().hex[:10]}")
    return Store("sqlite://")


@pytest.fixture
def make_env(backend: str) -> Iterator[Any]:
    made: list[tuple[TestClient, Store]] = []

    def make(**kw: Any) -> Env:
        store = make_store(backend)
        kw.setdefault("rate_limit_rps", 10_000)
        kw.setdefault("rate_limit_burst", 10_000)
        app = create_app("", [C23, C23B, C11], admin=True, store=store, **kw)
        http = TestClient(app, base_url="http://testserver")
        http.__enter__()
        made.append((http, store))
        return Env(http, app)

    yield make
    for http, store in made:
        http.__exit__(None, None, None)
        store.drop_all()
        store.close()


@pytest.fixture
def env(make_env: Any) -> Env:
    return make_env()
