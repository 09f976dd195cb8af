"""The sandbox registry's HTTP interface: a Starlette app (registry-api.md §1–§7, admin of §8).

:func:`create_app` builds it. Base path ``/api/v1`` (a client's base URL is ``http://host:port/api/v1`` and
the signed PATH includes ``/api/v1``); the admin router ``/_sandbox/`` is mounted only with ``admin=True``
and answers loopback callers only.

Every API call goes through :meth:`Sandbox._call`: latency → firewall → the gateway's body limit →
maintenance → error answers (faults, §8) → body limit (§3, 5 MiB) → bearer token and signature (§2) → rate
limit (§3) → nonce → the handler → a lost answer (§8). Database work runs in worker threads; every fault
draw happens on the event loop, from one RNG seeded by ``seed``. Every answer carries ``Date`` on the
registry's clock (see :class:`_WireHeaders`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import hmac
import itertools
import logging
import math
import random
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from regsync.sandbox import portal, portal11, signature
from regsync.sandbox.calls import PORTAL, Ctx, Outcome, Refusal, fingerprint, kind_of
from regsync.sandbox.faults import FAULT_NAMES, Faults
from regsync.sandbox.operations import (
    op_correct,
    op_create,
    op_delete,
    op_join,
    op_leave,
    op_revoke,
    op_update,
    portal_patch,
)
from regsync.sandbox.operations11 import correct_training_record, create11, revoke11, update11
from regsync.sandbox.rules import format_time
from regsync.sandbox.rules11 import KINDS11
from regsync.sandbox.service import Registry
from regsync.sandbox.store import COLLECTIONS, ClientCredential, Store, UnitOfWork
from regsync.sandbox.writes import BatchOp
from regsync.settings import SIGN_METHODS

BASE = "/api/v1"
MAX_BODY = 5 * 1024 * 1024
MAX_BATCH = 500
#: Seconds an export may send nothing before another export of the same client may take its slot (§3).
EXPORT_IDLE_S = 30.0
MAX_SKEW_MS = 300_000
_NONCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_WRITABLE_COLLECTIONS = (
    "orgs",
    "volunteers",
    "activities",
    "service-records",
    "trainings",
    "training-records",
    "commendations",
    "evaluations",
)
#: Collections with ``:revoke`` (§4.5, v1.1 §4.7–§4.9) and with ``:correct`` (§4.5, §4.7).
_REVOCABLE = {
    "service-records": "serviceRecord",
    "training-records": "trainingRecord",
    "commendations": "commendation",
    "evaluations": "evaluation",
}
_CORRECTABLE = ("service-records", "training-records")
_ERROR_STATUSES = (500, 502, 503, 504)
#: Refusals of the registry that faults provoke, counted as injected under these names (whether a fault
#: or the client caused them).
_COUNTED_CODES = {
    "MAINTENANCE": "maintenance",
    "RATE_LIMITED": "rate_limited",
    "TOKEN_EXPIRED": "token_expired",
    "TIMESTAMP_SKEW": "timestamp_skew",
    "CURSOR_EXPIRED": "cursor_expired",
}

Handler = Callable[[Request, ClientCredential, bytes, str], Awaitable[Response]]


def envelope_response(
    status: int, code: str, message: str, data: Any, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response in the §1 envelope."""
    body = orjson.dumps({"code": code, "message": message, "requestId": request_id, "data": data})
    return Response(body, status, headers=headers, media_type="application/json")


_REASONS = {
    403: "Forbidden",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def _html(status: int, title: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A gateway's own HTML page (registry-api.md §1: a non-JSON body is the gateway's)."""
    title = title or _REASONS[status]
    page = (
        f"<html><head><title>{status} {title}</title></head><body><center><h1>{status} {title}</h1>"
        f"</center><hr><center>nginx</center></body></html>"
    )
    return Response(page, status, headers=headers, media_type="text/html")


def _firewall_html(status: int, headers: dict[str, str] | None = None) -> Response:
    """A web application firewall's HTML block page (403, or 429 for its own rate limit)."""
    reason = "Access denied" if status == 403 else "Too many requests from your address"
    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{status} {_REASONS[status]}</title></head><body><h1>{reason}</h1>"
        "<p>您的请求已被安全防护拦截。The request was blocked by the web application firewall.</p>"
        f"<p>Event ID: waf-{status}</p></body></html>"
    )
    return Response(page, status, headers=headers, media_type="text/html")


def _maintenance_html(headers: dict[str, str]) -> Response:
    """The gateway's HTML maintenance page (§3: 503, body possibly HTML)."""
    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>503 系统维护</title></head>'
        "<body><h1>系统维护中</h1><p>The registry is under maintenance. Please try again later.</p>"
        "</body></html>"
    )
    return Response(page, 503, headers=headers, media_type="text/html")


class _DroppedAnswer(Response):
    """A lost answer (§8): the connection is closed without a byte of the answer.

    Under uvicorn the connection's transport is reached through ``receive`` (a bound method of its
    request cycle) and closed; uvicorn then sends nothing more. Under another server (Starlette's
    ``TestClient``) the app raises :class:`ConnectionAbortedError` instead, before anything is sent.
    """

    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None or not hasattr(transport, "close"):
            raise ConnectionAbortedError("sandbox fault: answer lost")
        transport.close()
        for _ in range(3):  # let the server see the connection lost before the app returns
            await asyncio.sleep(0)


class ApiError(Exception):
    """A call refused before its handler: HTTP status, §7 code, message, data, headers."""

    def __init__(
        self, status: int, code: str, message: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data, self.headers = status, code, message, data, headers


class TokenIssuer:
    """Self-contained bearer tokens (§2): ``base64url(clientId:epoch:expiresMs).mac``.

    A token is ``TOKEN_EXPIRED`` after its expiry and ``TOKEN_INVALID`` when forged, for a disabled or
    unknown client, or revoked (the client's epoch moved on, see :meth:`revoke`).
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._epochs: dict[str, int] = {}

    def issue(self, client_id: str, now: float, ttl_s: float) -> str:
        """A token for ``client_id`` valid ``ttl_s`` seconds from ``now`` (Unix seconds)."""
        payload = f"{client_id}:{self._epochs.get(client_id, 0)}:{int((now + ttl_s) * 1000)}"
        enc = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{enc}.{self._mac(enc)}"

    def revoke(self, client_id: str) -> None:
        """Invalidate every token issued to ``client_id`` so far."""
        self._epochs[client_id] = self._epochs.get(client_id, 0) + 1

    def _mac(self, enc: str) -> str:
        return hmac.new(self._key, enc.encode(), hashlib.sha256).hexdigest()[:32]

    def client_of(self, token: str) -> str | None:
        """The client id a genuine token was issued to, expired or revoked or not; ``None`` if forged."""
        enc, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(enc)):
            return None
        try:
            payload = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode()
        except ValueError:
            return None
        return payload.rsplit(":", 2)[0]

    def check(self, token: str, now: float) -> str:
        """The client id of a valid token.

        Raises:
            ApiError: 401 ``TOKEN_INVALID`` or ``TOKEN_EXPIRED``.
        """
        enc, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(enc)):
            raise ApiError(401, "TOKEN_INVALID", "the access token is not valid")
        client_id, epoch, expires = (
            base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode().rsplit(":", 2)
        )
        if int(epoch) != self._epochs.get(client_id, 0):
            raise ApiError(401, "TOKEN_INVALID", "the access token was revoked")
        if now * 1000 >= int(expires):
            raise ApiError(401, "TOKEN_EXPIRED", "the access token has expired")
        return client_id


class RateLimiter:
    """A token bucket per client (§3): ``rps`` requests/s, ``burst`` at most."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client_id: str, now: float, rps: float, burst: int) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is available."""
        with self._lock:
            tokens, last = self._buckets.get(client_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rps)
            if tokens >= 1:
                self._buckets[client_id] = (tokens - 1, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return (1 - tokens) / rps if rps > 0 else 60.0

    def reset(self) -> None:
        """Fill every bucket."""
        with self._lock:
            self._buckets.clear()


@dataclass(slots=True)
class _Settings:
    rate_limit_rps: float
    rate_limit_burst: int
    sign_methods: tuple[str, ...]


class Sandbox:
    """The state behind the app: the registry, the faults, tokens, rate limits, counters, exports.

    Args:
        store: the database.
        faults: fault settings (§8), shared with the admin endpoints.
        rate_limit_rps: requests per second per client (§3: 20).
        rate_limit_burst: bucket size (§3: 40).
        sign_methods: the signature methods accepted (``HMAC-SM3`` only, for a registry configured so).
        seed: seeds the one RNG of every fault draw (§8): the same seed and the same requests, one at a
            time, give the same faults.

    Attributes:
        counters: answers by (method, route template, status).
        injected: the faults injected, by name (see :meth:`inject`).
        portal: the portal-side actions applied (§8), by name (:data:`regsync.sandbox.portal.ACTIONS`).
    """

    def __init__(
        self,
        store: Store,
        faults: Faults,
        *,
        rate_limit_rps: float,
        rate_limit_burst: int,
        sign_methods: tuple[str, ...],
        seed: int | None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.settings = _Settings(rate_limit_rps, rate_limit_burst, sign_methods)
        self.seed = seed
        self.rng = random.Random(seed)
        self.registry = Registry(store, self.clock, lambda: self.faults.feed_retention_s)
        self.tokens = TokenIssuer()
        self.limiter = RateLimiter()
        self.counters: Counter[tuple[str, str, int]] = Counter()
        self.injected: Counter[str] = Counter()
        self.portal: Counter[str] = Counter()
        #: client id → when its export last sent something (monotonic seconds), and which export that is
        self.exports: dict[str, float] = {}
        self.export_owner: dict[str, object] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)

    def clock(self) -> float:
        """The registry's clock, Unix seconds (with the fault offset)."""
        return time.time() + self.faults.clock_offset_s

    def inject(self, name: str, n: int = 1) -> None:
        """Count an injected fault (``GET /_sandbox/counters`` → ``injected``).

        The names: ``latency``; ``error_<status>`` and ``error_<status>_html`` (500, 502, 503, 504);
        ``lost_answer_drop`` and ``lost_answer_504``; ``rate_limited``; ``maintenance`` and
        ``maintenance_html``; ``token_expired``; ``timestamp_skew``; ``client_disabled``;
        ``feed_duplicates`` (items); ``cursor_expired``; ``gateway_413``; ``firewall_403`` and
        ``firewall_429``; ``retry_after_http_date``.
        """
        self.injected[name] += n

    def reseed(self) -> None:
        """Restart the fault draws from the seed (on ``/_sandbox/reset``)."""
        self.rng = random.Random(self.seed)

    def request_id(self) -> str:
        """A fresh ``requestId``."""
        return f"{self._id_prefix}-{next(self._ids):08d}"

    # ------------------------------------------------------------------------------------- the pipeline
    def api(
        self, template: str, handler: Handler, *, write: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with faults, body limit, authentication, rate limit and counters."""

        async def endpoint(request: Request) -> Response:
            request_id = self.request_id()
            try:
                response = await self._call(request, handler, request_id, write)
            except ApiError as err:
                if err.code in _COUNTED_CODES:
                    self.inject(_COUNTED_CODES[err.code])
                response = envelope_response(
                    err.status, err.code, err.message, err.data, request_id, err.headers
                )
            except Exception:  # a bug: answer INTERNAL in the envelope, as the registry would
                logging.getLogger("regsync.sandbox").exception("sandbox call failed")
                response = envelope_response(500, "INTERNAL", "internal error", None, request_id)
            self.counters[(request.method, template, response.status_code)] += 1
            return response

        return endpoint

    async def latency(self) -> None:
        """The ``latency_ms`` fault: wait before the call is handled."""
        if self.faults.latency_ms > 0:
            self.inject("latency")
            await asyncio.sleep(self.faults.latency_ms / 1000)

    async def _call(self, request: Request, handler: Handler, request_id: str, write: bool) -> Response:
        """One API call, faults included (registry-api.md §8).

        In order: latency → the body → firewall → the gateway's body limit → maintenance → error answers →
        the registry's body limit (§3) → authentication (§2) → rate limit (§3) → nonce → the handler → a
        lost answer (writes only, after the commit).
        """
        f, rng = self.faults, self.rng
        await self.latency()
        body, size = await self._read_body(request)
        if f.draw(rng, f.firewall_rate):
            if rng.random() < 0.5:
                self.inject("firewall_403")
                return _firewall_html(403)
            self.inject("firewall_429")
            return _firewall_html(429, {"Retry-After": str(rng.randint(1, 5))})
        if f.gateway_body_limit is not None and size > f.gateway_body_limit:
            self.inject("gateway_413")
            return _html(413)
        left = f.maintenance_left_s()
        if left > 0:
            headers = {"Retry-After": str(max(1, math.ceil(left)))}
            if rng.random() < 0.5:
                self.inject("maintenance_html")
                return _maintenance_html(headers)
            raise ApiError(503, "MAINTENANCE", "the registry is under maintenance", headers=headers)
        if f.draw(rng, f.error_rate):
            return self._error_answer()
        if size > MAX_BODY:
            raise ApiError(413, "BODY_TOO_LARGE", f"the body is over {MAX_BODY} bytes")
        client = await self._authenticate(request, body)
        if f.rate_limit_rps is not None:
            rps, burst = f.rate_limit_rps, max(1, round(2 * f.rate_limit_rps))
        else:
            rps, burst = self.settings.rate_limit_rps, self.settings.rate_limit_burst
        wait = self.limiter.take(client.client_id, time.monotonic(), rps, burst)
        if wait > 0:
            raise ApiError(
                429,
                "RATE_LIMITED",
                "too many requests",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        nonce = request.headers["x-nonce"]
        if not await to_thread.run_sync(self.registry.use_nonce, client.client_id, nonce):
            raise ApiError(401, "NONCE_REPLAYED", "this nonce was used in the last 10 minutes")
        response = await handler(request, client, body, request_id)
        if write and response.status_code < 500 and f.draw(rng, f.lost_answer_rate):
            # the write is committed (and its answer kept under its Idempotency-Key): lose the answer
            if rng.random() < 0.5:
                self.inject("lost_answer_drop")
                return _DroppedAnswer()
            self.inject("lost_answer_504")
            return _html(504)
        return response

    def _error_answer(self) -> Response:
        """The ``error_rate`` fault: 500, 502, 503 or 504, as an HTML page or the envelope (§7)."""
        rng = self.rng
        status = rng.choice(_ERROR_STATUSES)
        headers = {"Retry-After": str(rng.randint(1, 5))} if status == 503 else None
        if rng.random() < 0.5:
            self.inject(f"error_{status}_html")
            return _html(status, headers=headers)
        self.inject(f"error_{status}")
        if status == 503:
            return envelope_response(
                503,
                "MAINTENANCE",
                "the registry is unavailable (sandbox fault)",
                None,
                self.request_id(),
                headers,
            )
        return envelope_response(
            status, "INTERNAL", "internal error (sandbox fault)", None, self.request_id()
        )

    async def _read_body(self, request: Request) -> tuple[bytes, int]:
        """The request body and its size in bytes.

        A body over the registry's limit (§3: 5 MiB) is not read to the end (nor at all when its
        ``Content-Length`` says so): the size returned is then over :data:`MAX_BODY` and the body partial.
        """
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            return b"", int(declared)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            chunks.append(chunk)
            if size > MAX_BODY:
                break
        return b"".join(chunks), size

    async def _authenticate(self, request: Request, body: bytes) -> ClientCredential:
        """§2: bearer token, then the signature, then the clock skew."""
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "TOKEN_INVALID", "send Authorization: Bearer <token>")
        now = self.clock()
        owner = self.tokens.client_of(token.strip())
        known = self.registry.client(owner) if owner else None
        if known is not None and not known.enabled:
            self.inject("client_disabled")
            raise ApiError(401, "TOKEN_INVALID", "the client is disabled")
        try:
            client_id = self.tokens.check(token.strip(), now)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(401, "TOKEN_INVALID", "the access token is not valid") from None
        client = self.registry.client(client_id)
        if client is None or not client.enabled:
            raise ApiError(401, "TOKEN_INVALID", "the client is unknown or disabled")
        h = request.headers
        if h.get("x-client-id") != client.client_id:
            raise ApiError(401, "SIGNATURE_INVALID", "X-Client-Id does not match the token's client")
        timestamp, nonce, sent_signature = h.get("x-timestamp", ""), h.get("x-nonce", ""), h.get("x-signature", "")
        method = h.get("x-sign-method", signature.DEFAULT_SIGN_METHOD)
        if not signature.is_timestamp(timestamp) or not sent_signature:
            raise ApiError(401, "SIGNATURE_INVALID", "X-Timestamp (Unix ms) and X-Signature are required")
        if not 16 <= len(nonce) <= 64 or not set(nonce) <= _NONCE_CHARS:
            raise ApiError(401, "SIGNATURE_INVALID", "X-Nonce is 16–64 characters of [A-Za-z0-9]")
        if method not in self.settings.sign_methods:
            raise ApiError(
                401,
                "SIGNATURE_INVALID",
                f"X-Sign-Method must be one of {', '.join(self.settings.sign_methods)}",
            )
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        raw_query = request.scope.get("query_string", b"")
        message = signature.string_to_sign(request.method, raw_path, raw_query, timestamp, nonce, body)
        if not signature.signature_matches(client.client_secret, message, method, sent_signature):
            raise ApiError(401, "SIGNATURE_INVALID", "the signature does not match")
        if abs(now * 1000 - int(timestamp)) > MAX_SKEW_MS:
            raise ApiError(
                401,
                "TIMESTAMP_SKEW",
                "X-Timestamp is more than 300 s off the registry's clock",
                {"serverTime": format_time(now)},
            )
        return client

    # ------------------------------------------------------------------------------------- helpers
    def ctx(self, client: ClientCredential | None) -> Ctx:
        """Who acts and when (``None``: the portal)."""
        if client is None:
            return Ctx(PORTAL, None, self.clock())
        return Ctx(client.client_id, client.province, self.clock())

    def answer(self, outcome: Outcome, request_id: str) -> Response:
        """An outcome as an HTTP answer: the envelope, ``ETag`` of a record, ``Idempotent-Replayed``."""
        headers: dict[str, str] = {}
        if 200 <= outcome.status < 300 and isinstance(outcome.data, dict) and "version" in outcome.data:
            headers["ETag"] = f'"{outcome.data["version"]}"'
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return envelope_response(
            outcome.status, outcome.code, outcome.message, outcome.data, request_id, headers
        )

    async def write(
        self,
        client: ClientCredential,
        request: Request,
        request_id: str,
        op: Callable[[UnitOfWork, Ctx], Outcome],
        fp_parts: tuple[Any, ...],
        *,
        key_required: bool = False,
    ) -> Response:
        """Run one write call under its ``Idempotency-Key`` (§5.1)."""
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 64:
            raise ApiError(400, "BAD_REQUEST", "Idempotency-Key is 1 to 64 characters")
        if key is None and key_required:
            raise ApiError(400, "BAD_REQUEST", "a create or a correction needs an Idempotency-Key header")
        c = self.ctx(client)
        fp = fingerprint(*fp_parts)
        outcome = await to_thread.run_sync(
            lambda: self.registry.write(c, lambda u: op(u, c), key=key, fp=fp, request_id=request_id)
        )
        return self.answer(outcome, request_id)


def _json(body: bytes, *, empty: Any = ...) -> Any:
    if not body.strip():
        if empty is not ...:
            return empty
        raise ApiError(400, "BAD_REQUEST", "a JSON body is required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "BAD_REQUEST", "the body is not valid JSON") from None


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise ApiError(400, "BAD_REQUEST", 'If-Match is the quoted version, e.g. "3"')
    return int(value)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 200
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(
            422,
            "VALIDATION_FAILED",
            "limit is 1 to 1000",
            {"errors": [{"field": "limit", "code": "INVALID_VALUE", "message": "1 to 1000"}]},
        )
    return int(raw)


def _collection(name: str, *, writable: bool = False) -> str:
    kind = COLLECTIONS.get(name)
    if kind is None or (writable and name not in _WRITABLE_COLLECTIONS):
        raise ApiError(404, "NOT_FOUND", f"no collection {name!r}")
    return kind


# ------------------------------------------------------------------------------------------------ handlers


def _routes(sb: Sandbox) -> list[Route]:
    reg = sb.registry

    async def token(request: Request) -> Response:
        """``POST /oauth/token`` (§2, RFC 6749 §4.4); errors per RFC 6749 §5.2, no envelope.

        Of the faults only ``latency_ms`` and ``token_ttl_s`` apply here (and a disabled client).
        """
        await sb.latency()
        body = await request.body()
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client_id = secret = None

        def error(status: int, code: str, description: str) -> Response:
            headers = {"Cache-Control": "no-store"}
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="registry"'
            return Response(
                orjson.dumps({"error": code, "error_description": description}),
                status,
                headers=headers,
                media_type="application/json",
            )

        if "grant_type" not in form:
            response = error(400, "invalid_request", "grant_type is required")
        elif form["grant_type"] != "client_credentials":
            response = error(400, "unsupported_grant_type", "only client_credentials is supported")
        elif not client_id or not secret:
            response = error(401, "invalid_client", "client_id and client_secret are required")
        else:
            client = reg.client(client_id)
            if client is None or not client.enabled or not hmac.compare_digest(client.client_secret, secret):
                if client is not None and not client.enabled:
                    sb.inject("client_disabled")
                response = error(401, "invalid_client", "unknown, disabled or wrong client credentials")
            else:
                ttl = sb.faults.token_ttl_s
                response = Response(
                    orjson.dumps(
                        {
                            "access_token": sb.tokens.issue(client_id, sb.clock(), ttl),
                            "token_type": "Bearer",
                            "expires_in": int(ttl),
                        }
                    ),
                    200,
                    headers={"Cache-Control": "no-store"},
                    media_type="application/json",
                )
        sb.counters[("POST", "/oauth/token", response.status_code)] += 1
        return response

    async def create(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"], writable=True)
        data = _json(body)
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: (create11 if kind in KINDS11 else op_create)(u, c, kind, data),
            ("create", kind, None, None, data),
            key_required=True,
        )

    async def replace(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"], writable=True)
        record_id = request.path_params["rid"]
        data = _json(body)
        version = _if_match(request)
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: (update11 if kind in KINDS11 else op_update)(u, c, kind, record_id, version, data),
            ("update", kind, record_id, version, data),
        )

    async def remove(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"], writable=True)
        record_id = request.path_params["rid"]
        version = _if_match(request)
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: op_delete(u, c, kind, record_id, version),
            ("delete", kind, record_id, version, None),
        )

    async def post_action(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        collection, target = request.path_params["collection"], request.path_params["rid"]
        record_id, _, action = target.rpartition(":")
        kind = _REVOCABLE.get(collection)
        if (
            kind is None
            or not record_id
            or action not in ("revoke", "correct")
            or (action == "correct" and collection not in _CORRECTABLE)
        ):
            raise ApiError(404, "NOT_FOUND", "no such call")
        data = _json(body)
        if action == "correct":  # §4.5 (v1.1): one transaction, idempotent under its key like a create
            correct = op_correct if kind == "serviceRecord" else correct_training_record
            return await sb.write(
                client,
                request,
                rid,
                lambda u, c: correct(u, c, record_id, data),
                ("correct", kind, record_id, None, data),
                key_required=True,
            )
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: (
                op_revoke(u, c, record_id, data) if kind == "serviceRecord" else revoke11(u, c, kind, record_id, data)
            ),
            ("revoke", kind, record_id, None, data),
        )

    async def join(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        org_id, vol_id = request.path_params["org_id"], request.path_params["volunteer_id"]
        data = _json(body)
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: op_join(u, c, org_id, vol_id, data),
            ("join", "membership", f"{org_id}:{vol_id}", None, data),
        )

    async def leave(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        org_id, vol_id = request.path_params["org_id"], request.path_params["volunteer_id"]
        data = _json(body, empty={})
        return await sb.write(
            client,
            request,
            rid,
            lambda u, c: op_leave(u, c, org_id, vol_id, data),
            ("leave", "membership", f"{org_id}:{vol_id}", None, data),
        )

    async def read_one(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"])
        doc = await to_thread.run_sync(reg.get, kind, request.path_params["rid"])
        if doc is None:
            raise ApiError(404, "NOT_FOUND", f"no {kind} with this id")
        return envelope_response(200, "OK", "", doc, rid, {"ETag": f'"{doc["version"]}"'})

    async def read_list(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"])
        ref = request.query_params.get("clientRef")
        if ref is not None:
            records = await to_thread.run_sync(reg.by_client_ref, kind, client.client_id, ref)
            return envelope_response(
                200, "OK", "", {"records": records, "nextCursor": None, "hasMore": False}, rid
            )
        limit = _limit(request)
        records, nxt, more = await to_thread.run_sync(
            lambda: reg.list_page(
                kind,
                province=client.province,
                org_id=None,
                cursor=request.query_params.get("cursor"),
                limit=limit,
            )
        )
        return envelope_response(200, "OK", "", {"records": records, "nextCursor": nxt, "hasMore": more}, rid)

    async def members(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        org_id = request.path_params["org_id"]
        limit = _limit(request)
        if await to_thread.run_sync(reg.get, "org", org_id) is None:
            raise ApiError(404, "NOT_FOUND", "no org with this id")
        records, nxt, more = await to_thread.run_sync(
            lambda: reg.list_page(
                "membership",
                province=None,
                org_id=org_id,
                cursor=request.query_params.get("cursor"),
                limit=limit,
            )
        )
        return envelope_response(200, "OK", "", {"records": records, "nextCursor": nxt, "hasMore": more}, rid)

    async def lookup(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("ids"), list):
            raise ApiError(400, "BAD_REQUEST", 'the body is {"type": …, "ids": [ … ]}')
        kind = kind_of(str(data.get("type")))
        if kind is None:
            raise ApiError(400, "BAD_REQUEST", f"unknown type {data.get('type')!r}")
        ids = data["ids"]
        if len(ids) > MAX_BATCH:
            raise ApiError(413, "BATCH_TOO_LARGE", f"at most {MAX_BATCH} ids")
        if not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "BAD_REQUEST", "ids are strings")
        records = await to_thread.run_sync(reg.lookup, kind, ids)
        return envelope_response(200, "OK", "", {"records": records}, rid)

    async def batch(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        key = request.headers.get("idempotency-key")
        if not key or len(key) > 64:
            raise ApiError(400, "BAD_REQUEST", "a batch needs an Idempotency-Key header (≤ 64 characters)")
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("operations"), list):
            raise ApiError(400, "BAD_REQUEST", 'the body is {"operations": [ … ]}')
        raw_ops = data["operations"]
        if len(raw_ops) > MAX_BATCH:
            raise ApiError(413, "BATCH_TOO_LARGE", f"at most {MAX_BATCH} operations in one batch")
        ops = []
        for i, o in enumerate(raw_ops):
            if not isinstance(o, dict):
                o = {}
            ops.append(
                BatchOp(
                    i,
                    o.get("op"),
                    o.get("type"),
                    o.get("id"),
                    o.get("ifMatch"),
                    o.get("idempotencyKey"),
                    o.get("body"),
                )
            )
        c = sb.ctx(client)
        fp = hashlib.sha256(body).hexdigest()
        outcome = await to_thread.run_sync(lambda: reg.batch(c, ops, rid, key=key, fp=fp))
        return sb.answer(outcome, rid)

    async def feed(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        limit = _limit(request)
        raw = request.query_params.get("cursor")
        if raw is None or raw == "":
            head = await to_thread.run_sync(reg.head)
            return envelope_response(
                200, "OK", "", {"changes": [], "nextCursor": str(head), "hasMore": False}, rid
            )
        if not raw.isdigit():
            raise ApiError(400, "BAD_REQUEST", "not a cursor of this registry")
        cursor = int(raw)
        repeat = dup = 0
        if limit > 1 and sb.faults.draw(sb.rng, sb.faults.feed_duplicate_rate):
            if sb.rng.random() < 0.5:  # items of the pages before come again
                repeat = sb.rng.randint(1, min(5, limit - 1))
            else:  # items of this page come twice
                dup = sb.rng.randint(1, min(3, limit - 1))
        page = await to_thread.run_sync(
            lambda: reg.changes_page(client.province, cursor, limit, repeat=repeat, dup=dup)
        )
        if page is None:
            raise ApiError(
                410, "CURSOR_EXPIRED", "the cursor is older than the feed's retention: reconcile in full"
            )
        seqs = [c["seq"] for c in page["changes"]]
        repeated = len(seqs) - len({s for s in seqs if s > cursor})
        if repeated:
            sb.inject("feed_duplicates", repeated)
        return envelope_response(200, "OK", "", page, rid)

    async def export(request: Request, client: ClientCredential, body: bytes, rid: str) -> Response:
        kind = _collection(request.path_params["collection"])
        province = request.query_params.get("province")
        if province != client.province:
            raise ApiError(403, "FORBIDDEN", "an export covers the calling client's own province only")
        # One export at a time per client (§3). An export whose reader went away without closing it (its
        # stream never started, or stopped with no word) holds the slot only while it is alive: one that has
        # sent nothing for EXPORT_IDLE_S seconds is taken over.
        last = sb.exports.get(client.client_id)
        if last is not None and time.monotonic() - last < EXPORT_IDLE_S:
            raise ApiError(
                429, "EXPORT_IN_PROGRESS", "one export at a time per client", headers={"Retry-After": "5"}
            )
        token = object()
        sb.exports[client.client_id] = time.monotonic()
        sb.export_owner[client.client_id] = token
        try:
            cursor, chunks, close = await to_thread.run_sync(reg.open_export, kind, province)
        except BaseException:
            sb.exports.pop(client.client_id, None)
            raise
        gzip = "gzip" in request.headers.get("accept-encoding", "").lower()

        async def stream() -> AsyncIterator[bytes]:
            z = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
            try:
                while True:
                    chunk = await to_thread.run_sync(next, chunks, None)
                    if chunk is None:
                        break
                    if sb.export_owner.get(client.client_id) is token:
                        sb.exports[client.client_id] = time.monotonic()
                    out = z.compress(chunk) if z else chunk
                    if out:
                        yield out
                if z:
                    yield z.flush()
            finally:
                if sb.export_owner.get(client.client_id) is token:
                    sb.exports.pop(client.client_id, None)
                await to_thread.run_sync(close)

        headers = {"X-Snapshot-Cursor": str(cursor), "X-Request-Id": rid}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return StreamingResponse(stream(), 200, headers=headers, media_type="application/x-ndjson")

    async def unknown(request: Request) -> Response:
        sb.counters[(request.method, "(unknown)", 404)] += 1
        return envelope_response(404, "NOT_FOUND", "no such call", None, sb.request_id())

    return [
        Route(f"{BASE}/oauth/token", token, methods=["POST"]),
        Route(f"{BASE}/batch", sb.api("/batch", batch, write=True), methods=["POST"]),
        Route(f"{BASE}/lookup", sb.api("/lookup", lookup), methods=["POST"]),
        Route(f"{BASE}/changes", sb.api("/changes", feed), methods=["GET"]),
        Route(f"{BASE}/exports/{{collection}}", sb.api("/exports/{collection}", export), methods=["GET"]),
        Route(f"{BASE}/orgs/{{org_id}}/members", sb.api("/orgs/{orgId}/members", members), methods=["GET"]),
        Route(
            f"{BASE}/orgs/{{org_id}}/members/{{volunteer_id}}",
            sb.api("/orgs/{orgId}/members/{volunteerId}", join, write=True),
            methods=["PUT"],
        ),
        Route(
            f"{BASE}/orgs/{{org_id}}/members/{{volunteer_id}}",
            sb.api("/orgs/{orgId}/members/{volunteerId}", leave, write=True),
            methods=["DELETE"],
        ),
        Route(f"{BASE}/{{collection}}", sb.api("/{collection}", create, write=True), methods=["POST"]),
        Route(f"{BASE}/{{collection}}", sb.api("/{collection}", read_list), methods=["GET"]),
        Route(f"{BASE}/{{collection}}/{{rid}}", sb.api("/{collection}/{id}", read_one), methods=["GET"]),
        Route(
            f"{BASE}/{{collection}}/{{rid}}",
            sb.api("/{collection}/{id}", replace, write=True),
            methods=["PUT"],
        ),
        Route(
            f"{BASE}/{{collection}}/{{rid}}",
            sb.api("/{collection}/{id}", remove, write=True),
            methods=["DELETE"],
        ),
        Route(
            f"{BASE}/{{collection}}/{{rid}}",
            sb.api("/{collection}/{id}:action", post_action, write=True),
            methods=["POST"],
        ),
        Route(f"{BASE}/{{path:path}}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]


# --------------------------------------------------------------------------------------- answer headers


def http_date(ts: float) -> str:
    """An RFC 9110 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) of Unix seconds ``ts``."""
    return email.utils.formatdate(ts, usegmt=True)


class _WireHeaders:
    """ASGI middleware: ``Date`` on every answer, and the ``retry_after_http_date`` fault (§1, §8).

    registry-api.md §1: an HTTP-date ``Retry-After`` is on the registry's clock, read against the same
    answer's ``Date``; so ``Date`` is on the registry's (possibly offset) clock too.

    ``Retry-After: N`` becomes the IMF-fixdate of ``Date`` + N seconds, both from one clock reading (so the
    difference is exactly N and the date is in the future on the registry's clock). The server's own
    ``Date`` must be off (uvicorn: ``date_header=False``), or the answer would carry two.
    """

    def __init__(self, app: Any, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sb = self.sandbox

        async def wire_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                now = int(sb.clock())
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", http_date(now).encode()))
                if sb.faults.retry_after_http_date:
                    for i, (k, v) in enumerate(headers):
                        if k.lower() == b"retry-after" and v.isdigit():
                            headers[i] = (k, http_date(now + int(v)).encode())
                            sb.inject("retry_after_http_date")
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wire_send)


# ------------------------------------------------------------------------------------------------- admin

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


def _admin_routes(sb: Sandbox) -> list[Route]:
    reg = sb.registry

    def admin(
        template: str, fn: Callable[[Request, Any], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = sb.request_id()
            host = request.client.host if request.client else ""
            try:
                if host not in _LOOPBACK:
                    raise ApiError(403, "FORBIDDEN", "the admin endpoints answer loopback callers only")
                body = await request.body()
                response = await fn(request, _json(body, empty=None))
            except ApiError as err:
                response = envelope_response(err.status, err.code, err.message, err.data, rid, err.headers)
            except Refusal as refusal:
                response = sb.answer(refusal.outcome, rid)
            sb.counters[(request.method, template, response.status_code)] += 1
            return response

        return endpoint

    def ok(data: Any, status: int = 200) -> Response:
        return envelope_response(status, "OK", "", data, sb.request_id())

    async def reset(request: Request, data: Any) -> Response:
        await to_thread.run_sync(sb.store.reset)
        sb.limiter.reset()
        sb.counters.clear()
        sb.injected.clear()
        sb.portal.clear()
        sb.reseed()
        sb.exports.clear()
        return ok({"reset": True})

    async def counters(request: Request, data: Any) -> Response:
        items = [
            {"method": m, "path": p, "status": s, "count": n} for (m, p, s), n in sorted(sb.counters.items())
        ]
        return ok(
            {
                "requests": items,
                "total": sum(sb.counters.values()),
                "injected": dict(sorted(sb.injected.items())),
                "portal": {a: sb.portal[a] for a in portal.ACTIONS},
            }
        )

    async def faults(request: Request, data: Any) -> Response:
        if request.method == "PUT":
            if not isinstance(data, dict):
                raise ApiError(
                    400, "BAD_REQUEST", f"a JSON object of fault settings: {', '.join(FAULT_NAMES)}"
                )
            try:
                sb.faults.update(data)
            except ValueError as exc:
                raise ApiError(400, "BAD_REQUEST", str(exc)) from None
        return ok(sb.faults.as_dict())

    def portal_op(
        action: str, fn: Callable[[UnitOfWork, Ctx, Any, Any], Outcome]
    ) -> Callable[[Request, Any], Awaitable[Response]]:
        """An admin handler running ``fn(u, ctx, path id, body)`` as the portal, in one transaction (§8)."""

        async def handler(request: Request, data: Any) -> Response:
            c = sb.ctx(None)
            rid = request.path_params.get("rid")
            outcome = await to_thread.run_sync(
                lambda: reg.write(
                    c, lambda u: fn(u, c, rid, data), key=None, fp="", request_id="portal"
                )
            )
            if portal.is_change(outcome):
                sb.portal[action] += 1
            return sb.answer(outcome, sb.request_id())

        return handler

    async def portal_activity(request: Request, data: Any) -> Response:
        try:
            req = portal.parse_activity_request(data)
        except ValueError as exc:
            raise ApiError(400, "BAD_REQUEST", str(exc)) from None

        def applied(action: str) -> None:
            sb.portal[action] += 1

        result = await to_thread.run_sync(lambda: portal.run_activity(reg, req, on_applied=applied))
        return ok(result)

    async def records(request: Request, data: Any) -> Response:
        kind = _collection(request.path_params["collection"])
        return ok({"records": await to_thread.run_sync(reg.all_records, kind)})

    async def bulk(request: Request, data: Any) -> Response:
        """``POST /_sandbox/records/{collection}`` ``{"records": [wire docs], "province"?: "23"}``: insert records
        as older channels left them (no rules, no feed; what a record leaves out is filled in as
        :meth:`Registry.bulk_insert` says); answers ``{"ids": [...]}`` in order."""
        kind = _collection(request.path_params["collection"])
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ApiError(400, "BAD_REQUEST", '{"records": [wire records], "province"?: "23"}')
        try:
            ids = await to_thread.run_sync(lambda: reg.bulk_insert(kind, data["records"], data.get("province")))
        except IntegrityError as exc:
            raise ApiError(409, "CONFLICT", f"a unique key is taken: {str(exc.orig)[:200]}") from None
        return ok({"ids": ids}, 201)

    async def patch(request: Request, data: Any) -> Response:
        kind = _collection(request.path_params["collection"])
        if not isinstance(data, dict):
            raise ApiError(400, "BAD_REQUEST", "a JSON object of wire fields to set")
        c = sb.ctx(None)
        rid = request.path_params["rid"]
        outcome = await to_thread.run_sync(
            lambda: reg.write(
                c, lambda u: portal_patch(u, c, kind, rid, data), key=None, fp="", request_id="portal"
            )
        )
        return sb.answer(outcome, sb.request_id())

    async def plant_foreign(request: Request, data: Any) -> Response:
        """Test support, not of registry-api.md: ``POST /_sandbox/foreign`` ``{"type": "commendation", "record"?:
        {wire fields}, "province"?: "23", "op"?: "upsert", "export"?: "volunteers"}`` records a feed entry (and with
        ``export``, a line of that export) of a record type a v1 client does not know — an invented one, or one of
        v1.1's names (the planted record is not one of the sandbox's v1.1 records: ``/lookup`` never finds it) — so
        that a client meets a type it does not know (§1). Answers 201 ``{"id", "seq"}``."""
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ApiError(400, "BAD_REQUEST", '{"type", "record"?, "province"?, "op"?, "export"?}')
        type_name = data["type"]
        known = kind_of(type_name)
        if not 1 <= len(type_name) <= 16 or (known is not None and known not in KINDS11):
            raise ApiError(400, "BAD_REQUEST", "type: 1 to 16 characters, not a type of registry-api.md v1")
        record = data.get("record") or {}
        op = data.get("op", "upsert")
        province = data.get("province") or "23"
        export = None
        if data.get("export") is not None:
            export = kind_of(str(data["export"]))
            if export is None or export not in COLLECTIONS.values():
                raise ApiError(400, "BAD_REQUEST", f"export: a collection of the sandbox, got {data['export']!r}")
        if not isinstance(record, dict) or not isinstance(op, str) or not isinstance(province, str):
            raise ApiError(400, "BAD_REQUEST", "record is an object; op and province are strings")
        try:
            out = await to_thread.run_sync(
                lambda: reg.record_foreign(type_name, record, province, op=op, export=export))
        except IntegrityError as exc:
            raise ApiError(409, "CONFLICT", f"a unique key is taken: {str(exc.orig)[:200]}") from None
        return ok(out, 201)

    async def add_client(request: Request, data: Any) -> Response:
        if not isinstance(data, dict) or not isinstance(data.get("clientId"), str):
            raise ApiError(400, "BAD_REQUEST", '{"clientId", "clientSecret"?, "province"?, "enabled"?}')
        old = reg.client(data["clientId"])
        cred = ClientCredential(
            data["clientId"],
            data.get("clientSecret") or (old.client_secret if old else secrets.token_urlsafe(24)),
            data.get("province") or (old.province if old else "23"),
            bool(data.get("enabled", old.enabled if old else True)),
        )
        await to_thread.run_sync(reg.upsert_client, cred)
        if not cred.enabled:
            sb.tokens.revoke(cred.client_id)
        return ok(
            {
                "clientId": cred.client_id,
                "clientSecret": cred.client_secret,
                "province": cred.province,
                "enabled": cred.enabled,
            }
        )

    async def revoke_tokens(request: Request, data: Any) -> Response:
        if not isinstance(data, dict) or not isinstance(data.get("clientId"), str):
            raise ApiError(400, "BAD_REQUEST", '{"clientId": …}')
        sb.tokens.revoke(data["clientId"])
        return ok({"revoked": data["clientId"]})

    return [
        Route("/_sandbox/reset", admin("/_sandbox/reset", reset), methods=["POST"]),
        Route("/_sandbox/counters", admin("/_sandbox/counters", counters), methods=["GET"]),
        Route("/_sandbox/faults", admin("/_sandbox/faults", faults), methods=["GET", "PUT"]),
        *(
            Route(path, admin(path.replace("{rid}", "{id}"), portal_op(action, fn)), methods=["POST"])
            for path, action, fn in (
                (
                    "/_sandbox/portal/volunteers",
                    "self_registration",
                    lambda u, c, _rid, body: portal.op_self_register(u, c, body),
                ),
                ("/_sandbox/portal/volunteers/{rid}/contact", "contact_edit", portal.op_contact),
                ("/_sandbox/portal/volunteers/{rid}/identity", "identity_correction", portal.op_identity),
                ("/_sandbox/portal/volunteers/{rid}/transfer", "transfer_out", portal.op_transfer),
                ("/_sandbox/portal/volunteers/{rid}/deregister", "deregistration", portal.op_deregister),
                ("/_sandbox/portal/orgs/{rid}/dissolve", "org_dissolution", portal.op_dissolve),
                (
                    "/_sandbox/portal/service-records",
                    "service_record",
                    lambda u, c, _rid, body: portal.op_service_record(u, c, body),
                ),
                (
                    "/_sandbox/portal/commendations",
                    "national_commendation",
                    lambda u, c, _rid, body: portal11.op_national_commendation(u, c, body),
                ),
                (
                    "/_sandbox/portal/training-records",
                    "training_record",
                    lambda u, c, _rid, body: portal11.op_portal_training_record(u, c, body),
                ),
            )
        ),
        Route(
            "/_sandbox/portal/activity",
            admin("/_sandbox/portal/activity", portal_activity),
            methods=["POST"],
        ),
        Route(
            "/_sandbox/records/{collection}",
            admin("/_sandbox/records/{collection}", records),
            methods=["GET"],
        ),
        Route(
            "/_sandbox/records/{collection}",
            admin("/_sandbox/records/{collection}", bulk),
            methods=["POST"],
        ),
        Route(
            "/_sandbox/records/{collection}/{rid}",
            admin("/_sandbox/records/{collection}/{id}", patch),
            methods=["PATCH"],
        ),
        Route("/_sandbox/foreign", admin("/_sandbox/foreign", plant_foreign), methods=["POST"]),
        Route("/_sandbox/clients", admin("/_sandbox/clients", add_client), methods=["POST"]),
        Route("/_sandbox/tokens/revoke", admin("/_sandbox/tokens/revoke", revoke_tokens), methods=["POST"]),
    ]


def create_app(
    db_url: str,
    clients: list[ClientCredential],
    *,
    admin: bool = False,
    rate_limit_rps: float = 20,
    rate_limit_burst: int = 40,
    faults: dict[str, Any] | Faults | None = None,
    seed: int | None = None,
    sign_methods: tuple[str, ...] = SIGN_METHODS,
    schema: str | None = None,
    store: Store | None = None,
) -> Starlette:
    """Build the sandbox registry app.

    Args:
        db_url: the sandbox database (``sqlite://`` for a throw-away one, ``sqlite:///file``,
            ``postgresql+psycopg://…``).
        clients: credentials to add (or replace) at start; clients already in the database stay.
        admin: serve ``/_sandbox/`` (§8; loopback callers only).
        rate_limit_rps: requests per second per client (§3: 20).
        rate_limit_burst: the bucket size (§3: 40).
        faults: initial fault settings (:class:`~regsync.sandbox.faults.Faults`, or a dict of
            :data:`~regsync.sandbox.faults.FAULT_NAMES` with string or numeric values).
        seed: seeds the one RNG of every fault draw.
        sign_methods: accepted ``X-Sign-Method`` values (``("HMAC-SM3",)`` for an SM3-only registry).
        schema: PostgreSQL schema for the tables (tests).
        store: an open :class:`~regsync.sandbox.store.Store` to use instead of ``db_url``.

    Returns:
        The Starlette app; ``app.state.sandbox`` is the :class:`Sandbox` behind it. The store is closed
        on the app's shutdown when the app opened it. Every answer carries ``Date`` on the registry's
        clock: serve it with the server's own ``Date`` off (uvicorn: ``date_header=False``).

    Raises:
        ValueError: an unknown fault name or a bad fault value.
    """
    fault_obj = faults if isinstance(faults, Faults) else Faults.from_dict(faults)
    own_store = store is None
    store = store or Store(db_url, schema=schema)
    sb = Sandbox(
        store,
        fault_obj,
        rate_limit_rps=rate_limit_rps,
        rate_limit_burst=rate_limit_burst,
        sign_methods=tuple(sign_methods),
        seed=seed,
    )
    for cred in clients:
        sb.registry.upsert_client(cred)
    routes = (_admin_routes(sb) if admin else []) + _routes(sb)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_store:
                store.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_WireHeaders, sandbox=sb)])
    app.state.sandbox = sb
    return app
