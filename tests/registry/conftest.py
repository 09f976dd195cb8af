"""Fixtures for the registry client's wire tests: respx router as transport, fake clock, recorded sleeps."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import respx

from regsync.registry.client import RegistryClient
from regsync.settings import RegistrySettings

BASE = "https://registry.test/api/v1"
CLIENT_ID = "prov-23"
SECRET = "s3cret-key"
START = 1_800_000_000.0  # local Unix seconds at the start of each test


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sleeps:
    """Records the client's waits and advances the fake clock by them (no real waiting)."""

    clock: FakeClock
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def settings() -> RegistrySettings:
    return RegistrySettings(
        url=BASE,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        max_retries=4,
        retry_after_cap_s=60.0,
        timeout_s=5.0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def router() -> respx.Router:
    r = respx.Router(base_url=BASE, assert_all_called=False)
    tokens = iter(f"tok-{i}" for i in range(1, 1000))
    r.post("/oauth/token", name="token").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"access_token": next(tokens), "token_type": "Bearer", "expires_in": 600}
        )
    )
    return r


@pytest.fixture
def make_client(
    settings: RegistrySettings, router: respx.Router, clock: FakeClock, sleeps: Sleeps
) -> Iterator[Callable[..., RegistryClient]]:
    made: list[RegistryClient] = []

    def make(**overrides: Any) -> RegistryClient:
        c = RegistryClient(
            replace(settings, **overrides),
            province="23",
            transport=httpx.MockTransport(router.handler),
            clock=clock,
            sleep=sleeps,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., RegistryClient]) -> RegistryClient:
    return make_client()


def envelope(
    data: Any = None,
    *,
    code: str = "OK",
    status: int = 200,
    message: str = "",
    headers: dict[str, str] | None = None,
    request_id: str = "req-1",
) -> httpx.Response:
    """An answer of the registry in its envelope (registry-api.md §1)."""
    return httpx.Response(
        status,
        json={"code": code, "message": message, "requestId": request_id, "data": data},
        headers=headers,
    )


def html(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    """A gateway's page."""
    return httpx.Response(
        status,
        text=f"<html><body><h1>{status}</h1>nginx</body></html>",
        headers={"Content-Type": "text/html", **(headers or {})},
    )


def expected_signature(request: httpx.Request, secret: str = SECRET, method: str = "HMAC-SHA256") -> str:
    """The signature of registry-api.md §2, recomputed here with hmac/hashlib (independent of signing.py)."""
    path = request.url.raw_path.split(b"?", 1)[0].decode()
    pairs = sorted(
        (quote(k, safe="-._~"), quote(v, safe="-._~")) for k, v in request.url.params.multi_items()
    )
    query = "&".join(f"{k}={v}" for k, v in pairs)
    body_hash = hashlib.sha256(request.content).hexdigest()
    message = "\n".join(
        [request.method, path, query, request.headers["X-Timestamp"], request.headers["X-Nonce"], body_hash]
    )
    digest = {"HMAC-SHA256": "sha256", "HMAC-SM3": "sm3"}[method]
    return hmac.new(secret.encode(), message.encode(), digest).hexdigest()
