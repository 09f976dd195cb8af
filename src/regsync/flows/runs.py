"""What every command and job that talks to the registry does first, and how it reports progress.

* :func:`require_registry` checks the registry settings before any call.
* :func:`open_client` gives a run its registry client: the caller's, left open with its counters reset (the daemon
  keeps one client, and its token, across passes), or a new one closed at the end of the run.
* :func:`run_store` gives a run its store, checked before anything is recorded.
* :class:`RecordedRun` is the run in the ``run`` table, from its start to how it ended, whatever happens between.
* :class:`Advance` is the progress callback the flows call (``advance(label, n, total=None)``); the console draws it
  as progress bars (:func:`regsync.console.progress.progress_bars`), everything else passes none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Engine

from regsync.db.hashkey import check_hash_key
from regsync.db.mapping.install import InstallError, require_installed
from regsync.db.mapping.load import MappingError
from regsync.db.runs import finish_run, start_run
from regsync.db.store import StoreError, open_store
from regsync.domain.masking import mask_text
from regsync.registry.client import ClientStats, RegistryClient
from regsync.registry.port import RegistryPort
from regsync.settings import ConfigError, Settings

log = structlog.get_logger(__name__)


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


@contextlib.contextmanager
def run_store(settings: Settings, engine: Engine | None = None) -> Iterator[Engine]:
    """``with run_store(settings, engine) as engine``: the store a run works on, checked before anything is
    recorded: the registry settings complete (:func:`require_registry`), the store opened on
    ``settings.database.url`` at the newest schema unless ``engine`` is given, and the store's hash key the
    settings' one. A store opened here is disposed of when the block ends.

    Raises:
        ConfigError: incomplete registry settings, a bad database URL, or a hash key that is not the store's
            (:class:`regsync.db.hashkey.HashKeyMismatch`).
        StoreError: the local store is unusable, or its platform is not the configured one (a mapping not
            installed, another one installed: :func:`regsync.db.mapping.install.require_installed`).
    """
    require_registry(settings)
    own = engine is None
    engine = engine or open_store(settings.database)
    check_hash_key(engine, settings.hash_key, dispose_on_error=own)
    try:
        with engine.connect() as conn:
            platform = require_installed(conn, settings.database.mapping,
                                         platform_schema=settings.database.platform_schema)
    except (InstallError, MappingError) as exc:
        if own:
            engine.dispose()
        raise StoreError(str(exc)) from exc
    if not platform.current:
        log.warning("the installed mapping is not the mapping file's current form: run regsync platform check, "
                    "then regsync platform install", mapping=platform.mapping, installed_at=platform.installed_at)
    try:
        yield engine
    finally:
        if own:
            engine.dispose()


class RecordedRun:
    """One run in the ``run`` table, recorded from start to end: ``with RecordedRun(engine, "sync") as run: …
    run.finish(status, summary)``.

    Entering starts the run (:func:`regsync.db.runs.start_run`: ``running``, this process's lease held);
    :meth:`finish` records how it ended. Leaving the block without :meth:`finish` (an exception the work did not turn
    into a status of its own) records the run ``failed`` with the error, masked, and lets the exception go on, so
    that no run is left ``running`` by a process that is still alive.

    Attributes:
        run_id: the run's id (``None`` before the block, or for ``record=False``: nothing recorded, e.g. a dry run).
    """

    def __init__(self, engine: Engine, kind: str, *, record: bool = True) -> None:
        self.engine = engine
        self.kind = kind
        self.record = record
        self.run_id: int | None = None
        self.finished = False

    def __enter__(self) -> RecordedRun:
        if self.record:
            self.run_id = start_run(self.engine, self.kind)
        return self

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        """Record how the run ended: ``success``, ``partial`` or ``failed``, with its summary (JSON-able)."""
        self.finished = True
        if self.run_id is not None:
            finish_run(self.engine, self.run_id, status, summary)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.finished:
            error = mask_text(str(exc) or (exc_type.__name__ if exc_type else "ended unfinished"))
            self.finish("failed", {"run_id": self.run_id, "status": "failed", "error": error})
