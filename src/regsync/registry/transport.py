"""The HTTP connection to the registry: one httpx pool on the base URL, each request sent, logged and counted.

:class:`Transport` knows nothing of tokens, signatures, envelopes or retries (:mod:`regsync.registry.exchange`
does); it turns what httpx raises into the typed errors of :mod:`regsync.registry.errors`
(:func:`transport_error`) and parses a JSON body once (:func:`read_json`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import structlog

from regsync.registry import errors as E
from regsync.registry.stats import ClientStats
from regsync.settings import ConfigError, RegistrySettings

log = structlog.get_logger(__name__)

_USER_AGENT = "regsync/0.1 (registry client)"


class Transport:
    """The connection pool to the registry's base URL, safe to share between threads.

    Args:
        settings: the base URL, ``timeout_s``, ``verify_tls`` and ``ca_bundle``.
        transport: an httpx transport to use instead of the network (tests, the sandbox in-process).
        stats: the client's current counters (``requests`` is counted here), asked at every request: a caller
            may give the client new ones between runs.

    Raises:
        ConfigError: the base URL is not http(s), or the CA bundle cannot be read.
    """

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        stats: Callable[[], ClientStats],
    ) -> None:
        url = httpx.URL(settings.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"REGSYNC_REGISTRY_URL must be an http(s) URL, got {settings.url!r}")
        self._stats = stats
        verify: ssl.SSLContext | bool = settings.verify_tls
        if transport is None and settings.ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=settings.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"REGSYNC_REGISTRY_CA_BUNDLE: cannot load {settings.ca_bundle}: {exc}"
                ) from exc
        self._http = httpx.Client(
            base_url=settings.url,
            transport=transport,
            verify=verify,
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def build_request(self, method: str, path: str, **options: Any) -> httpx.Request:
        """A request on the base URL, with the pool's default headers.

        Args:
            method: the HTTP method.
            path: relative to the base URL (``/batch``).
            **options: as :meth:`httpx.Client.build_request` takes them (``params``, ``content``, ``data``,
                ``headers``).
        """
        return self._http.build_request(method, path, **options)

    def send(self, request: httpx.Request, *, stream: bool, endpoint: str) -> httpx.Response:
        """Send one request, counted in ``stats.requests`` and logged (debug; a transport failure: warning).

        Args:
            request: as built by :meth:`build_request` (signed, when it needs to be).
            stream: leave the body unread (an export); the caller closes the response.
            endpoint: the endpoint name for the logs (``batch``, ``token``…).

        Raises:
            RegistryTimeout: no answer in time.
            RegistryConnectionError: the connection failed or dropped.
            MalformedAnswer: the answer could not be decoded.
        """
        self._stats().requests += 1
        started = time.perf_counter()
        try:
            response = self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            log.warning(
                "registry.transport_error",
                endpoint=endpoint,
                method=request.method,
                path=request.url.path,
                error=type(exc).__name__,
            )
            raise transport_error(exc) from exc
        log.debug(
            "registry.request",
            endpoint=endpoint,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response


def read_json(response: httpx.Response) -> Any:
    """The parsed JSON body, or ``None`` when it is empty or not JSON (a gateway's page); parsed once.

    The body must have been read. The parse is kept in ``response.extensions`` for the next caller.
    """
    if "regsync.json" in response.extensions:
        return response.extensions["regsync.json"]
    content = response.content
    body: Any = None
    if content:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
    response.extensions["regsync.json"] = body
    return body


def transport_error(exc: httpx.HTTPError) -> E.RegistryError:
    """The typed error of an httpx failure: :class:`~regsync.registry.errors.RegistryTimeout`,
    :class:`~regsync.registry.errors.MalformedAnswer` (undecodable) or
    :class:`~regsync.registry.errors.RegistryConnectionError`."""
    if isinstance(exc, httpx.TimeoutException):
        return E.RegistryTimeout(f"no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.DecodingError):
        return E.MalformedAnswer(f"the answer could not be decoded ({exc})")
    return E.RegistryConnectionError(f"the connection failed ({type(exc).__name__})")
