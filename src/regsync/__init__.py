"""regsync: keeps a province's volunteer platform in step with the national volunteer registry.

The names below are regsync's public surface for the platform's own code (how to open the store, apply the
schema, write without queueing, normalize and mask as regsync does, run a relay pass, test against the
sandbox). Everything else is internal and may change. They are loaded on first use (PEP 562), so that
importing one part of regsync (``regsync.settings``, the sandbox) does not import all the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as the type checker sees them; at run time __getattr__ loads them
    # ruff: noqa: F401
    from regsync.db.migrate import upgrade
    from regsync.db.session import make_engine, suppress_outbox
    from regsync.domain.masking import mask_id_number, mask_phone, mask_text
    from regsync.domain.normalize import NormalizationError, normalize_id_number, normalize_name, normalize_phone
    from regsync.flows.outbound import Relay, RelayHalted, RelayStats
    from regsync.registry.client import RegistryClient
    from regsync.sandbox.server import SandboxServer
    from regsync.settings import ConfigError, Settings, load_settings

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ConfigError": "regsync.settings",
    "NormalizationError": "regsync.domain.normalize",
    "RegistryClient": "regsync.registry.client",
    "Relay": "regsync.flows.outbound",
    "RelayHalted": "regsync.flows.outbound",
    "RelayStats": "regsync.flows.outbound",
    "SandboxServer": "regsync.sandbox.server",
    "Settings": "regsync.settings",
    "load_settings": "regsync.settings",
    "make_engine": "regsync.db.session",
    "mask_id_number": "regsync.domain.masking",
    "mask_phone": "regsync.domain.masking",
    "mask_text": "regsync.domain.masking",
    "normalize_id_number": "regsync.domain.normalize",
    "normalize_name": "regsync.domain.normalize",
    "normalize_phone": "regsync.domain.normalize",
    "suppress_outbox": "regsync.db.session",
    "upgrade": "regsync.db.migrate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name from the module that defines it (``AttributeError`` for any other name)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'regsync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
