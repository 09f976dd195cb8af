"""RegistryPort (what the flows use of the client) and RegistryClient agree: every member of the port is the
client's, with the same parameters (mypy checks the same in regsync.registry.client)."""

from __future__ import annotations

import inspect

from regsync.registry.client import RegistryClient
from regsync.registry.port import RegistryPort
from regsync.registry.stats import ClientStats
from regsync.settings import RegistrySettings

METHODS = ("batch", "changes", "export", "find_by_client_ref", "lookup")
ATTRIBUTES = ("clock_offset_s", "settings", "stats")


def _parameters(fn: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


def test_the_port_holds_what_the_flows_use() -> None:
    members = {n for n in vars(RegistryPort) if not n.startswith("_")} | set(RegistryPort.__annotations__)
    assert members == set(METHODS) | set(ATTRIBUTES)


def test_the_client_has_every_method_of_the_port_with_its_parameters() -> None:
    for name in METHODS:
        assert _parameters(getattr(RegistryClient, name)) == _parameters(getattr(RegistryPort, name)), name


def test_a_client_has_the_ports_attributes(client: RegistryClient, settings: RegistrySettings) -> None:
    assert isinstance(client.stats, ClientStats)
    assert client.settings == settings
    assert client.clock_offset_s == 0.0
