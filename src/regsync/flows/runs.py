"""What every command and job that talks to the registry does first, and how it reports progress.

* :func:`require_registry` checks the registry settings before any call.
* :func:`open_client` gives a run its registry client: the caller's, left open with its counters reset (the daemon
  keeps one client, and its token, across passes), or a new one closed at the end of the run.
* :class:`Advance` is the progress callback the flows call (``advance(label, n, total=None)``); the console draws it
  as progress bars (:func:`regsync.console.progress.progress_bars`), everything else passes none.
"""

from __future__ import annotations

import contextlib
from typing import Protocol
from urllib.parse import urlsplit

from regsync.registry.client import ClientStats, RegistryClient
from regsync.registry.port import RegistryPort
from regsync.settings import ConfigError, Settings


class Advance(Protocol):
    """A progress callback: ``advance(label, n, total=None)``."""

    def __call__(self, label: str, n: int, total: int | None = None) -> None:
        """Move ``label``'s count on by ``n`` items; ``total``, when given, sets how many it has."""


def no_progress(label: str, n: int, total: int | None = None) -> None:
    """The :class:`Advance` that draws nothing."""


def require_registry(settings: Settings) -> None:
    """Check, before any call, that the registry settings are complete.

    Raises:
        ConfigError: no client id or secret, or a base URL that is not http(s).
    """
    reg = settings.registry
    parts = urlsplit(reg.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"REGSYNC_REGISTRY_URL must be an http(s) URL, got {reg.url!r}")
    if not reg.client_id or not reg.client_secret:
        raise ConfigError("REGSYNC_CLIENT_ID and REGSYNC_CLIENT_SECRET (or REGSYNC_CLIENT_SECRET_FILE) are required")


def open_client(settings: Settings,
                client: RegistryPort | None) -> contextlib.AbstractContextManager[RegistryPort]:
    """``with open_client(settings, client) as client``: the given client, left open with its counters reset for a
    new run, or a new :class:`~regsync.registry.client.RegistryClient` on ``settings.registry``, closed afterwards."""
    if client is None:
        return RegistryClient(settings.registry, province=settings.province)
    client.stats = ClientStats()
    return contextlib.nullcontext(client)
