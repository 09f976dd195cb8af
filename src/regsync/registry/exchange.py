"""One logical call to the registry: its attempts, each signed anew, and what happens between them.

Retry policy, per call (one public method call of the client, e.g. one ``POST /batch`` body):

* ``TOKEN_EXPIRED``/``TOKEN_INVALID`` → fetch a new token and repeat, once per call;
  ``SIGNATURE_INVALID``/``NONCE_REPLAYED`` → sign again (new nonce and timestamp) and repeat, once;
  ``TIMESTAMP_SKEW`` → correct the clock offset from ``data.serverTime`` and repeat, once. These repeats
  do not count as attempts. A second rejection of the same kind is raised (:class:`AuthError`, systemic).
* Transient errors (:class:`TransientError`: JSON 5xx, gateway pages, timeouts, dropped connections,
  ``RATE_LIMITED``, ``MAINTENANCE``, ``EXPORT_IN_PROGRESS``) → up to ``settings.max_retries`` attempts in
  all. Between attempts the client waits ``Retry-After`` when the answer gives one no longer than
  ``settings.retry_after_cap_s`` (this pauses the caller: for the relay, the whole relay), else a full-jitter
  exponential backoff: uniform in ``[0, min(backoff_max_s, backoff_base_s · 2^(n−1))]`` seconds. A
  ``Retry-After`` beyond the cap is raised at once (``RateLimited``/``Maintenance``/… with
  ``retry_after``) so that the caller defers the work. The last transient error is raised when the attempts
  are spent.
* Every attempt is signed anew; a write keeps its ``Idempotency-Key`` across all of them.
* Verdicts (:class:`RequestRejected`) are never retried here.

The answer is classified in one place (:meth:`Exchange.classify_response`), and whether a failure is tried again
decided in one (:meth:`Exchange.should_retry`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
import tenacity

from regsync.registry import errors as E
from regsync.registry import signing, wire
from regsync.registry.stats import ClientStats
from regsync.registry.tokens import Tokens
from regsync.registry.transport import Transport, read_json, transport_error
from regsync.registry.types import Kind
from regsync.settings import RegistrySettings

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Call:
    """One logical request, before signing: what is repeated across attempts.

    Attributes:
        endpoint: the endpoint name for stats and logs (``batch``, ``lookup``, ``get``…).
        method: the HTTP method.
        path: relative to the base URL (``/batch``, ``/volunteers/V1``).
        params: query parameters, decoded, in order.
        body: the raw JSON body (``b""``: none).
        idempotency_key: the ``Idempotency-Key`` of a write, kept across attempts.
        if_match: the version of ``If-Match`` (an update or delete).
        kind: the record kind the call concerns (to decode ``data.current`` and field names of an error).
        stream: leave the answer's body unread when it is the stream (an export).
        headers: further headers (``Accept`` of an export).
    """

    endpoint: str
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    idempotency_key: str | None = None
    if_match: int | None = None
    kind: Kind | None = None
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Answer:
    """A successful answer: the HTTP status, the envelope's ``data`` (JSON values) and the HTTP headers."""

    status: int
    data: Any
    headers: httpx.Headers


class Exchange:
    """Calls to the registry under the retry policy of the module docstring, safe to share between threads.

    Args:
        settings: ``client_id``, ``client_secret``, ``sign_method``, ``max_retries``, ``retry_after_cap_s``.
        transport: the connection pool.
        tokens: the access token.
        clock: the local clock, Unix seconds (``X-Timestamp``).
        sleep: how to wait, seconds; blocks the calling thread.
        stats: the client's current counters (``calls``, ``retries``, ``slept_s``, ``replayed``).
        backoff_base_s: the backoff window of the first retry, seconds (full jitter).
        backoff_max_s: the largest backoff window, seconds.
    """

    def __init__(
        self,
        settings: RegistrySettings,
        transport: Transport,
        tokens: Tokens,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        stats: Callable[[], ClientStats],
        backoff_base_s: float,
        backoff_max_s: float,
    ) -> None:
        self.settings = settings
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._transport = transport
        self._tokens = tokens
        self._clock = clock
        self._sleep = sleep
        self._stats = stats
        self._random = random.Random()
        self._clock_offset_s = 0.0

    @property
    def clock_offset_s(self) -> float:
        """Seconds added to the local clock for ``X-Timestamp``, learnt from ``TIMESTAMP_SKEW`` (§2)."""
        return self._clock_offset_s

    def request(self, call: Call) -> Answer:
        """Make ``call`` (counted in ``stats.calls``) and return its successful answer.

        Raises:
            RegistryError: the answer's error (:meth:`classify_response`) once the policy gives up on it.
        """
        response = self.open(call)
        body = read_json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if response.headers.get("Idempotent-Replayed", "").lower() == "true":
            self._stats().replayed += 1
        return Answer(response.status_code, data, response.headers)

    def open(self, call: Call) -> httpx.Response:
        """Make ``call`` (counted in ``stats.calls``) and return its successful response; with ``call.stream``
        its body is left unread (the caller reads and closes it).

        Raises:
            RegistryError: the answer's error (:meth:`classify_response`) once the policy gives up on it.
        """
        stats = self._stats()
        stats.calls += 1
        stats.calls_by_endpoint[call.endpoint] += 1
        repeats: set[str] = set()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.settings.max_retries)),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            sleep=self._pause,
            before_sleep=lambda state: self._note_retry(call, state),
            reraise=True,
        )
        return retrying(self._attempt, call, repeats)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether a failed attempt is tried again inside the call (the retriable/fatal decision).

        Transient errors are, unless their ``Retry-After`` is beyond ``settings.retry_after_cap_s`` (then
        the caller defers the work). Override to change the policy.
        """
        if not isinstance(exc, E.RegistryError) or not exc.retriable:
            return False
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= self.settings.retry_after_cap_s

    def classify_response(
        self, response: httpx.Response, *, kind: Kind | None = None
    ) -> E.RegistryError | None:
        """Classify an answer of the registry (or of its gateway): ``None`` for success, else its error.

        The one place that decides what an answer means (registry-api.md §1, §7); override it for a
        registry that differs. Success is a 2xx whose body is the envelope with ``code`` ``OK`` (or an
        empty body). Anything not the envelope is the gateway's (413 → split, else transient).

        Args:
            response: the answer, its body read.
            kind: the record kind the call concerns, to decode ``data.current`` and field names.
        """
        body = read_json(response)
        if response.is_success and (
            not response.content or (wire.is_envelope(body) and body["code"] == "OK")
        ):
            return None
        retry_after = wire.parse_retry_after(
            response.headers.get("Retry-After"), response.headers.get("Date")
        )
        error = wire.error_from_answer(response.status_code, body, retry_after=retry_after, kind=kind)
        log.debug(
            "registry.answer.error",
            status=response.status_code,
            code=error.code,
            request_id=error.request_id,
            gateway=error.from_gateway,
        )
        return error

    def sign(self, request: httpx.Request, body: bytes) -> None:
        """Add the signing headers of registry-api.md §2 to ``request``, with a fresh nonce and timestamp.

        ``X-Timestamp`` is the local clock plus the learnt offset, in Unix milliseconds.
        """
        timestamp = str(int((self._clock() + self._clock_offset_s) * 1000))
        nonce = signing.new_nonce()
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        query = signing.canonical_query(request.url.params.multi_items())
        method = self.settings.sign_method
        message = signing.string_to_sign(request.method, path, query, timestamp, nonce, body)
        request.headers["X-Client-Id"] = self.settings.client_id
        request.headers["X-Timestamp"] = timestamp
        request.headers["X-Nonce"] = nonce
        request.headers["X-Sign-Method"] = method
        request.headers["X-Signature"] = signing.sign(self.settings.client_secret, message, method)

    # -- between attempts ----------------------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        window = min(self.backoff_max_s, self.backoff_base_s * 2 ** (state.attempt_number - 1))
        return self._random.uniform(0.0, window)

    def _pause(self, seconds: float) -> None:
        self._stats().slept_s += seconds
        self._sleep(seconds)

    def _note_retry(self, call: Call, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = _reason(exc)
        self._stats().retries[reason] += 1
        wait = state.next_action.sleep if state.next_action else None
        # being paced (429 RATE_LIMITED) or a first retry is ordinary: info; a fault that persists: warning
        emit = log.info if reason == "RATE_LIMITED" or state.attempt_number < 2 else log.warning
        emit(
            "registry.retry",
            endpoint=call.endpoint,
            method=call.method,
            reason=reason,
            attempt=state.attempt_number,
            wait_s=round(wait or 0.0, 3),
            status=getattr(exc, "status", None),
            request_id=getattr(exc, "request_id", None),
        )

    # -- one attempt -----------------------------------------------------------------------------------

    def _attempt(self, call: Call, repeats: set[str]) -> httpx.Response:
        """One attempt, with the repeats after authentication rejections (§2), each once per call."""
        while True:
            token = self._tokens.current()
            request = self._build(call, token)
            response = self._transport.send(request, stream=call.stream, endpoint=call.endpoint)
            error = self._check(response, call)
            if error is None:
                return response
            reason = self._repeat(error, repeats)
            if reason is None:
                raise error
            self._stats().retries[reason] += 1
            log.info("registry.repeat", endpoint=call.endpoint, reason=reason, request_id=error.request_id)

    def _repeat(self, error: E.RegistryError, repeats: set[str]) -> str | None:
        """Fix what an authentication rejection asks for and return its reason, or ``None`` to raise it."""
        if isinstance(error, (E.TokenExpired, E.TokenInvalid)):
            key = "token"
        elif isinstance(error, (E.SignatureInvalid, E.NonceReplayed)):
            key = "sign"
        elif isinstance(error, E.TimestampSkew) and error.server_time is not None:
            key = "skew"
        else:
            return None
        if key in repeats:
            return None
        repeats.add(key)
        if key == "token":
            self._tokens.forget()
        elif key == "skew" and isinstance(error, E.TimestampSkew) and error.server_time is not None:
            # The one place a registry timestamp meets the local clock (registry-api.md §2).
            self._clock_offset_s = error.server_time.timestamp() - self._clock()
            log.warning("registry.clock_offset", offset_s=round(self._clock_offset_s, 3))
        return error.code or key

    def _check(self, response: httpx.Response, call: Call) -> E.RegistryError | None:
        if call.stream:
            media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if response.is_success and media != "application/json" and "html" not in media:
                return None  # the stream itself (NDJSON); an envelope or a page is read and classified
            try:
                response.read()
            except httpx.HTTPError as exc:
                response.close()
                return transport_error(exc)
            finally:
                response.close()
        return self.classify_response(response, kind=call.kind)

    def _build(self, call: Call, token: str) -> httpx.Request:
        headers = {"Authorization": f"Bearer {token}", **call.headers}
        if call.body:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.if_match is not None:
            headers["If-Match"] = f'"{int(call.if_match)}"'
        request = self._transport.build_request(
            call.method,
            call.path,
            params=tuple(call.params) or None,
            content=call.body or None,
            headers=headers,
        )
        self.sign(request, call.body)
        return request


def _reason(exc: BaseException | None) -> str:
    """The retry reason of ``exc`` for :attr:`ClientStats.retries`."""
    if isinstance(exc, E.RegistryTimeout):
        return "timeout"
    if isinstance(exc, E.RegistryConnectionError):
        return "connection"
    if isinstance(exc, E.RegistryError) and exc.from_gateway:
        return f"gateway_{exc.status}"
    if isinstance(exc, E.RegistryError):
        return exc.code or type(exc).__name__
    return type(exc).__name__ if exc else "unknown"
