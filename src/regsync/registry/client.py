"""The registry client: a synchronous httpx client that speaks registry-api.md.

:class:`RegistryClient` is the facade the flows use (their view of it: :class:`regsync.registry.port.RegistryPort`).
It is made of parts, each with one job:

* :mod:`~regsync.registry.transport` — the connection pool: each request sent, logged and counted;
* :mod:`~regsync.registry.tokens` — the access token (§2);
* :mod:`~regsync.registry.exchange` — one logical call: every attempt signed anew (§2), the envelope (§1), the
  typed errors (§7, :mod:`regsync.registry.errors`), repeats after authentication rejections, retries with
  backoff and ``Retry-After`` (§1, §3); its docstring states the retry policy;
* :mod:`~regsync.registry.writes` and :mod:`~regsync.registry.reads` — the calls of §4–§5, batches split (§3,
  §5.1), exports opened (§5.2) and read by :class:`~regsync.registry.export.Export`.

Wire names and formats are the adapter's (:mod:`regsync.registry.wire`); callers exchange Python names and
regsync's types only.

What the registry adds over time (registry-api.md §1, "types it does not know"): change-feed entries, lookup results
and export lines of record types this client does not know are skipped, and fields it does not know are ignored;
both are counted in :attr:`ClientStats.unknown` and logged once per type (or field) per run
(:meth:`RegistryClient.note_unknown`). Never an error, never a reason to hold the feed's cursor back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from regsync.registry import errors as E
from regsync.registry.exchange import Exchange
from regsync.registry.export import Export
from regsync.registry.port import RegistryPort
from regsync.registry.reads import RecordReads
from regsync.registry.stats import ClientStats
from regsync.registry.tokens import Tokens
from regsync.registry.transport import Transport
from regsync.registry.types import Kind, Unknowns
from regsync.registry.writes import MAX_BATCH, MAX_BODY_BYTES, RecordWrites
from regsync.settings import RegistrySettings

__all__ = ["MAX_BATCH", "MAX_BODY_BYTES", "ClientStats", "Export", "RegistryClient"]


class RegistryClient(RecordWrites, RecordReads):
    """A synchronous client of the registry (registry-api.md), safe to share between threads.

    Its calls are those of :class:`~regsync.registry.writes.RecordWrites` (``batch``, ``create``, ``update``,
    ``delete``, ``join``, ``leave``, ``revoke``, ``correct``) and :class:`~regsync.registry.reads.RecordReads`
    (``get``, ``find_by_client_ref``, ``lookup``, ``changes``, ``export``).

    Args:
        settings: base URL, credentials, sign method, timeouts, TLS and retry settings.
        province: the two-digit province code this client serves, for exports' ``?province=``.
        transport: an httpx transport to use instead of the network (tests, the sandbox in-process).
        clock: the local clock, Unix seconds (``X-Timestamp``, token expiry). Never compared with the
            registry's timestamps, except to correct the offset on ``TIMESTAMP_SKEW``.
        sleep: how to wait, seconds (backoff and ``Retry-After``); blocks the calling thread.

    Raises:
        ConfigError: the base URL is not http(s), or the CA bundle cannot be read.

    Attributes:
        settings: as given.
        province: as given.
        stats: the counters of this client; a caller may put new ones in place between runs.

    Use it as a context manager, or call :meth:`close`.
    """

    #: Backoff window of the first retry and the largest window, seconds (full jitter); a client takes the values
    #: the class has when it is made.
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Refresh the token this many seconds before it expires, at most this fraction of its lifetime.
    token_refresh_margin_s: float = 60.0
    token_refresh_fraction: float = 0.1

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        province: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.province = province
        self.stats = ClientStats()
        self._transport = Transport(settings, transport=transport, stats=self._current_stats)
        tokens = Tokens(settings, self._transport, clock=clock, stats=self._current_stats,
                        refresh_margin_s=self.token_refresh_margin_s, refresh_fraction=self.token_refresh_fraction)
        self._exchange = Exchange(settings, self._transport, tokens, clock=clock, sleep=sleep,
                                  stats=self._current_stats, backoff_base_s=self.backoff_base_s,
                                  backoff_max_s=self.backoff_max_s)

    def _current_stats(self) -> ClientStats:
        return self.stats

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the exchange's state and policy -----------------------------------------------------------

    @property
    def clock_offset_s(self) -> float:
        """Seconds added to the local clock for ``X-Timestamp``, learnt from ``TIMESTAMP_SKEW`` (§2)."""
        return self._exchange.clock_offset_s

    def sign(self, request: httpx.Request, body: bytes) -> None:
        """Add the signing headers of registry-api.md §2 to ``request`` (:meth:`Exchange.sign`)."""
        self._exchange.sign(request, body)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether a failed attempt is tried again inside the call (:meth:`Exchange.should_retry`)."""
        return self._exchange.should_retry(exc)

    def classify_response(self, response: httpx.Response, *, kind: Kind | None = None) -> E.RegistryError | None:
        """``None`` for a successful answer, else its error (:meth:`Exchange.classify_response`)."""
        return self._exchange.classify_response(response, kind=kind)

    def note_unknown(self, unknown: Unknowns, endpoint: str) -> None:
        """Count and log what an answer held that this client does not know (:meth:`ClientStats.note_unknown`)."""
        self.stats.note_unknown(unknown, endpoint)


def _satisfies_the_port(client: RegistryClient) -> RegistryPort:
    """What the flows use of the client (:class:`~regsync.registry.port.RegistryPort`): mypy checks it here."""
    return client
