"""regsync: keeps a province's volunteer platform in step with the national volunteer registry.

The names below are regsync's public surface for the platform's own code (how to open the store, apply the
schema, write without queueing, normalize and mask as regsync does, run a relay pass, test against the
sandbox). Everything else is internal and may change.
"""

from regsync.db.migrate import upgrade
from regsync.db.session import make_engine, suppress_outbox
from regsync.masking import mask_id_number, mask_phone, mask_text
from regsync.normalize import NormalizationError, normalize_id_number, normalize_name, normalize_phone
from regsync.outbound import Relay, RelayHalted, RelayStats
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import ConfigError, Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "NormalizationError",
    "RegistryClient",
    "Relay",
    "RelayHalted",
    "RelayStats",
    "SandboxServer",
    "Settings",
    "load_settings",
    "make_engine",
    "mask_id_number",
    "mask_phone",
    "mask_text",
    "normalize_id_number",
    "normalize_name",
    "normalize_phone",
    "suppress_outbox",
    "upgrade",
]
