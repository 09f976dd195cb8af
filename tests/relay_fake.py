"""The relay against a fake registry answering on an httpx transport, for the tests of how it reads answers
(tests/test_unknown_codes.py, tests/test_relay_codes.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import Engine

from regsync.flows.outbound import Relay
from regsync.registry.client import RegistryClient
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

BASE = "https://registry.test/api/v1"


def relay_settings(db_url: str) -> Settings:
    """Settings of a relay on ``db_url`` speaking to the fake registry at :data:`BASE` (one retry, quiet logs)."""
    return Settings(database=DatabaseSettings(url=db_url),
                    registry=RegistrySettings(url=BASE, client_id="prov-23", client_secret="s", max_retries=1),
                    log=LogSettings(level="WARNING"))


def run_relay(engine: Engine, settings: Settings, registry: Callable[[httpx.Request], httpx.Response]) -> Any:
    """One relay pass whose client's every request ``registry`` answers (no sleeping between retries); its stats."""
    client = RegistryClient(settings.registry, province="23", transport=httpx.MockTransport(registry),
                            sleep=lambda s: None)
    relay = Relay(engine, client, settings)
    try:
        return relay.run()
    finally:
        relay.close()
        client.close()
