"""The access token of registry-api.md §2: client credentials (RFC 6749 §4.4), fetched when needed, kept until
shortly before it expires, forgotten when the registry rejects it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from regsync.registry import errors as E
from regsync.registry import wire
from regsync.registry.stats import ClientStats
from regsync.registry.transport import Transport, read_json
from regsync.settings import RegistrySettings

log = structlog.get_logger(__name__)


class Tokens:
    """The client's current access token, safe to share between threads.

    Args:
        settings: ``client_id`` and ``client_secret``.
        transport: where ``POST /oauth/token`` goes.
        clock: the local clock, Unix seconds (expiry).
        stats: the client's current counters (``tokens_fetched``).
        refresh_margin_s: refresh this many seconds before the token expires…
        refresh_fraction: …at most this fraction of its lifetime.
    """

    def __init__(
        self,
        settings: RegistrySettings,
        transport: Transport,
        *,
        clock: Callable[[], float],
        stats: Callable[[], ClientStats],
        refresh_margin_s: float,
        refresh_fraction: float,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._clock = clock
        self._stats = stats
        self._refresh_margin_s = refresh_margin_s
        self._refresh_fraction = refresh_fraction
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        """The current token, fetched when absent or about to expire (§2).

        Raises:
            AuthError: the credentials are refused (``invalid_client``…, systemic).
            MalformedAnswer: the token answer holds no ``access_token``.
            TransientError: the token request failed in transit or on the registry's side.
        """
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the current token (the registry rejected it): the next :meth:`current` fetches a new one."""
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        """``POST /oauth/token`` with client credentials (RFC 6749 §4.4); no envelope, not signed."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret,
        }
        request = self._transport.build_request(
            "POST", "/oauth/token", data=form, headers={"Accept": "application/json"}
        )
        response = self._transport.send(request, stream=False, endpoint="token")
        body = read_json(response)
        if not response.is_success:
            raise wire.oauth_error(response.status_code, body)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 600) if isinstance(body, dict) else 600
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
            raise E.MalformedAnswer("the token answer holds no access_token", status=response.status_code)
        margin = min(self._refresh_margin_s, self._refresh_fraction * float(expires_in))
        self._token = token
        self._expires_at = self._clock() + float(expires_in) - margin
        self._stats().tokens_fetched += 1
        log.info("registry.token", expires_in_s=expires_in)
