"""Settings: one object per concern, defaults defined once, from a TOML file and the environment.

Sources, the later winning: the defaults below; the TOML file named by ``--config`` or ``REGSYNC_CONFIG``
(``config/regsync.example.toml`` documents every key); environment variables ``REGSYNC_*``. Every setting
is declared once in :data:`SPECS` with its file key, its environment variable and its meaning, so that the
commands' ``--help`` and the example file name the same things.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from regsync.registry.signing import SIGN_METHODS


class ConfigError(Exception):
    """A setting is missing or malformed (exit code 2)."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The local store: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``)."""

    url: str = "sqlite:///regsync.db"


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How to reach and authenticate with the registry (registry-api.md §1–§2).

    Attributes:
        url: the base URL, e.g. ``https://registry.example/api/v1``.
        client_id: the client id issued to the province.
        client_secret: its secret (or read from ``client_secret_file``).
        sign_method: ``HMAC-SHA256`` or ``HMAC-SM3``.
        timeout_s: seconds for connect/read/write of one call.
        verify_tls: verify the server certificate (never off in production).
        ca_bundle: a PEM file of CA certificates to trust instead of the system's.
        max_retries: attempts inside one call for transient faults (5xx, HTML pages, timeouts).
        retry_after_cap_s: the longest ``Retry-After`` the relay waits before deferring the work.
    """

    url: str = "http://127.0.0.1:8700/api/v1"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    sign_method: str = "HMAC-SHA256"
    timeout_s: float = 30.0
    verify_tls: bool = True
    ca_bundle: str = ""
    max_retries: int = 5
    retry_after_cap_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """The outbound relay (design.md, flow 1).

    Attributes:
        batch_size: operations in one ``POST /batch`` (1–500, registry-api.md §3).
        claim_size: outbox rows claimed per step.
        lease_s: seconds a claim holds before another relay may take the rows.
        max_attempts: transient failures of one row before it is marked failed.
    """

    batch_size: int = 500
    claim_size: int = 5000
    lease_s: float = 300.0
    max_attempts: int = 20


@dataclass(frozen=True, slots=True)
class MergeSettings:
    """Conflict policy per field group (design.md, "Conflict policy"): for a field changed on both sides to
    different values, ``registry`` (the registry's value wins), ``local`` (the platform's wins) or ``manual``
    (held as a conflict for an operator; the record's other fields still sync). Status (endings) and service
    records follow fixed rules and are not configured here.

    Attributes:
        identity: volunteer name, idType, idNumber, gender, birthDate.
        structure: org level, parent, station, USCC, regionCode, streetCode.
        contact: volunteer phone and skills; org contactName and contactPhone.
        descriptive: org name, serviceCategories, establishedOn; activity fields; volunteer regionCode;
            membership dates.
        residence: volunteer homeProvince.
    """

    identity: str = "registry"
    structure: str = "local"
    contact: str = "registry"
    descriptive: str = "local"
    residence: str = "registry"

    def policies(self) -> dict[str, str]:
        """Group → policy, for :func:`regsync.merge.three_way`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Logging: ``format`` is ``auto`` (console in a terminal, JSON lines otherwise), ``console`` or
    ``json``; ``level`` a logging level name; ``show_personal_data`` turns masking off (never in
    production)."""

    level: str = "INFO"
    format: str = "auto"
    show_personal_data: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """All of regsync's settings.

    Attributes:
        province: the two-digit GB/T 2260 province code this client serves (``23`` = Heilongjiang).
        hash_key: the local secret for keyed hashes of personal data in base snapshots.
    """

    province: str = "23"
    hash_key: str = field(default="regsync-local-hash-key", repr=False)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    log: LogSettings = field(default_factory=LogSettings)


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting: where it sits in the TOML file, its environment variable, and what it means."""

    section: str  # "" for top level
    key: str
    env: str
    doc: str


SPECS: tuple[Spec, ...] = (
    Spec("", "province", "REGSYNC_PROVINCE", "two-digit province code (GB/T 2260), default 23"),
    Spec("", "hash_key", "REGSYNC_HASH_KEY", "local secret for keyed hashes of personal data"),
    Spec("", "hash_key_file", "REGSYNC_HASH_KEY_FILE", "file holding hash_key"),
    Spec("database", "url", "REGSYNC_DATABASE_URL", "SQLAlchemy URL of the local store"),
    Spec("registry", "url", "REGSYNC_REGISTRY_URL", "registry base URL"),
    Spec("registry", "client_id", "REGSYNC_CLIENT_ID", "client id"),
    Spec("registry", "client_secret", "REGSYNC_CLIENT_SECRET", "client secret"),
    Spec("registry", "client_secret_file", "REGSYNC_CLIENT_SECRET_FILE", "file holding the client secret"),
    Spec("registry", "sign_method", "REGSYNC_SIGN_METHOD", "HMAC-SHA256 or HMAC-SM3"),
    Spec("registry", "timeout_s", "REGSYNC_REGISTRY_TIMEOUT_S", "seconds per call"),
    Spec("registry", "verify_tls", "REGSYNC_REGISTRY_VERIFY_TLS", "verify TLS certificates (true/false)"),
    Spec("registry", "ca_bundle", "REGSYNC_REGISTRY_CA_BUNDLE", "PEM file of trusted CAs"),
    Spec("registry", "max_retries", "REGSYNC_REGISTRY_MAX_RETRIES", "attempts per call on transient faults"),
    Spec("registry", "retry_after_cap_s", "REGSYNC_RETRY_AFTER_CAP_S", "longest Retry-After waited, seconds"),
    Spec("relay", "batch_size", "REGSYNC_BATCH_SIZE", "operations per POST /batch (1-500)"),
    Spec("relay", "claim_size", "REGSYNC_CLAIM_SIZE", "outbox rows claimed per step"),
    Spec("relay", "lease_s", "REGSYNC_LEASE_S", "seconds a claim holds"),
    Spec("relay", "max_attempts", "REGSYNC_MAX_ATTEMPTS", "transient failures before a row fails"),
    Spec("merge", "identity", "REGSYNC_MERGE_IDENTITY", "policy for identity fields: registry, local, manual"),
    Spec("merge", "structure", "REGSYNC_MERGE_STRUCTURE", "policy for org structure: registry, local, manual"),
    Spec("merge", "contact", "REGSYNC_MERGE_CONTACT", "policy for contact fields: registry, local, manual"),
    Spec("merge", "descriptive", "REGSYNC_MERGE_DESCRIPTIVE", "policy for descriptive fields: registry, local, manual"),
    Spec("merge", "residence", "REGSYNC_MERGE_RESIDENCE", "policy for homeProvince: registry, local, manual"),
    Spec("log", "level", "REGSYNC_LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR"),
    Spec("log", "format", "REGSYNC_LOG_FORMAT", "auto, console or json"),
    Spec("log", "show_personal_data", "REGSYNC_LOG_SHOW_PERSONAL_DATA", "log ID numbers and phones unmasked"),
)

_SECTIONS = {"database": DatabaseSettings, "registry": RegistrySettings, "relay": RelaySettings,
             "merge": MergeSettings, "log": LogSettings}


def env_help(*sections: str) -> str:
    """A line for a command's ``--help``: the environment variables of the named sections (all if none)."""
    names = [s.env for s in SPECS if not sections or s.section in sections or s.section == ""]
    return "Reads REGSYNC_CONFIG (a TOML file) and the environment: " + ", ".join(names) + "."


def _coerce(value: Any, target: Any, name: str) -> Any:
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    try:
        if isinstance(target, int):
            return int(value)
        if isinstance(target, float):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from exc
    return str(value)


def _read_file(path: str, name: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from exc


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings from the defaults, the TOML file and the environment (which wins).

    Args:
        config_file: a TOML file; ``None`` means ``REGSYNC_CONFIG`` if set, else none.
        environ: the environment to read (``os.environ`` by default).

    Raises:
        ConfigError: the file cannot be read or parsed, a key is unknown, or a value is malformed.
    """
    env = os.environ if environ is None else environ
    path = config_file or env.get("REGSYNC_CONFIG") or None
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc

    known = {(s.section, s.key) for s in SPECS}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub in value:
                if (key, sub) not in known:
                    raise ConfigError(f"unknown setting [{key}] {sub} in {path}")
        elif ("", key) not in known:
            raise ConfigError(f"unknown setting {key} in {path}")

    raw: dict[tuple[str, str], Any] = {}
    for spec in SPECS:
        value = (data.get(spec.section, {}) if spec.section else data).get(spec.key)
        if spec.env in env and env[spec.env] != "":
            value = env[spec.env]
        if value is not None:
            raw[(spec.section, spec.key)] = value

    # Secrets from files, where the value itself is not given.
    if ("registry", "client_secret") not in raw and ("registry", "client_secret_file") in raw:
        raw[("registry", "client_secret")] = _read_file(raw[("registry", "client_secret_file")],
                                                        "REGSYNC_CLIENT_SECRET_FILE")
    if ("", "hash_key") not in raw and ("", "hash_key_file") in raw:
        raw[("", "hash_key")] = _read_file(raw[("", "hash_key_file")], "REGSYNC_HASH_KEY_FILE")

    settings = Settings()
    top: dict[str, Any] = {}
    for name in ("province", "hash_key"):
        if ("", name) in raw:
            top[name] = _coerce(raw[("", name)], getattr(settings, name), name)
    for section, cls in _SECTIONS.items():
        current = getattr(settings, section)
        changes = {}
        for f in fields(cls):
            if (section, f.name) in raw:
                changes[f.name] = _coerce(raw[(section, f.name)], getattr(current, f.name),
                                          f"[{section}] {f.name}")
        if changes:
            top[section] = replace(current, **changes)
    settings = replace(settings, **top)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Check the values' ranges.

    Raises:
        ConfigError: with the first problem found.
    """
    if not re.fullmatch(r"[1-8]\d", settings.province):
        raise ConfigError(f"REGSYNC_PROVINCE must be two digits of a province code, got {settings.province!r}")
    if settings.registry.sign_method not in SIGN_METHODS:
        raise ConfigError(f"REGSYNC_SIGN_METHOD must be one of {', '.join(SIGN_METHODS)}, "
                          f"got {settings.registry.sign_method!r}")
    if not 1 <= settings.relay.batch_size <= 500:
        raise ConfigError("REGSYNC_BATCH_SIZE must be between 1 and 500 (registry-api.md §3)")
    for f in fields(MergeSettings):
        value = getattr(settings.merge, f.name)
        if value not in ("registry", "local", "manual"):
            raise ConfigError(f"REGSYNC_MERGE_{f.name.upper()} must be registry, local or manual, got {value!r}")
    if settings.log.level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"REGSYNC_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {settings.log.level!r}")
    if settings.log.format not in {"auto", "console", "json"}:
        raise ConfigError("REGSYNC_LOG_FORMAT must be auto, console or json")
