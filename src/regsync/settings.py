"""Settings: one object per concern, defaults defined once, from a TOML file and the environment.

Sources, the later winning: the defaults below; the TOML file named by ``--config`` or ``REGSYNC_CONFIG``
(``config/regsync.example.toml`` documents every key); environment variables ``REGSYNC_*``. Every setting
is declared once in :data:`SPECS` with its file key, its environment variable and its meaning, so that the
commands' ``--help`` and the example file name the same things.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from regsync.i18n import Message, Phrase, TranslatableError
from regsync.i18n import gettext_noop as N_

#: The request signing methods of registry-api.md §2, the first the default. Settings owns the list (it checks
#: ``registry.sign_method`` against it and imports nothing of regsync); the client's signer
#: (:mod:`regsync.registry.signing`) and the sandbox's check take it from here.
SIGN_METHODS: tuple[str, ...] = ("HMAC-SHA256", "HMAC-SM3")


class ConfigError(TranslatableError):
    """A setting is missing or malformed (exit code 2). ``str(exc)`` is English (logs); the console prints
    :meth:`~regsync.i18n.TranslatableError.text`, in the language in force."""


#: The hash key regsync used when none was configured, before issue 12. It is public (it is in the source), so
#: it protects nothing: :func:`load_settings` never leaves it in place of a missing key, and refuses it as the
#: key of a PostgreSQL store. It stays the default of :class:`Settings` built in code (tests, library use) and is
#: the old key ``regsync db rekey`` re-keys from by default.
PUBLIC_HASH_KEY = "regsync-local-hash-key"

#: The database engines regsync runs on (the backend of ``database.url``): SQLite, PostgreSQL, and MySQL 8 or
#: MariaDB 10.6 and later (``mysql+pymysql://``; a ``mariadb://`` URL is driven the same way).
ENGINES = ("sqlite", "postgresql", "mysql")

#: The name of the file beside a SQLite store that holds the key regsync made for it (design.md, "Personal data").
KEY_FILE_SUFFIX = ".hash_key"


#: The prefix of regsync's tables in a SQLite file beside a mapped platform's (``database.table_prefix = "auto"``).
DEFAULT_TABLE_PREFIX = "regsync_"

#: What a table prefix may be: an SQL identifier of at most 31 letters, digits and ``_``, not starting with a digit.
TABLE_PREFIX_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,30}"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The local store and the platform's tables it syncs (issue 14).

    Attributes:
        url: a SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://…``, ``mysql+pymysql://…``); the
            connection regsync works on. Where regsync's own tables live beside a mapped platform's: on PostgreSQL
            the first schema of the URL's ``search_path`` (``…/platform?options=-csearch_path%3Dregsync``), on
            MySQL/MariaDB the URL's database, on SQLite the same file with :attr:`table_prefix`.
        mapping: the mapping of the platform's tables (:mod:`regsync.db.mapping`): a shipped mapping's name
            (``reference``, ``legacy``) or a TOML file's path. ``reference``: regsync's own reference schema.
        platform_schema: where the platform's tables are when the mapping names them without a schema: a
            PostgreSQL schema or a MySQL/MariaDB database; empty: the connection's default.
        table_prefix: on SQLite, the prefix of regsync's own tables and indexes, which keeps them apart from the
            platform's in the one file (:mod:`regsync.db.own`). ``auto``: ``regsync_`` beside a mapped platform,
            none with the reference tables; ``none`` (or ``""`` in the file): none. Other engines take none
            (regsync's tables have a schema or database of their own there). Fixed when the store is made.
    """

    url: str = "sqlite:///regsync.db"
    mapping: str = "reference"
    platform_schema: str = ""
    table_prefix: str = "auto"

    @property
    def own_prefix(self) -> str:
        """:attr:`table_prefix` resolved: the prefix the store's engine writes regsync's tables with."""
        if self.table_prefix in ("none", ""):
            return ""
        if self.table_prefix != "auto":
            return self.table_prefix
        mapped = self.mapping != "reference" and self.url.startswith("sqlite")
        return DEFAULT_TABLE_PREFIX if mapped else ""


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
        claim_size: outbox rows claimed per window.
        lease_s: seconds a claim holds before another relay may take the rows.
        max_attempts: transient failures of one row before it is marked failed.
        concurrency: ``POST /batch`` calls in flight at once (1–8): the registry works on some while the relay
            records the answers of others (3 keeps a PostgreSQL store's round trips out of the critical path).
        other_store_limit: records failed because the registry's record under their ``clientRef`` (or natural
            key) was created under these client credentials by another store (``CLIENT_REF_TAKEN``) at which the
            relay halts with an alarm (:class:`regsync.flows.outbound.RelayHalted`) instead of failing more: a second
            store is pushing under the province's credentials. ``0``: never halt. Default 20: a rebuilt store
            or a restore meets a handful; a second store's first push meets hundreds.
    """

    batch_size: int = 500
    claim_size: int = 5000
    lease_s: float = 300.0
    max_attempts: int = 20
    concurrency: int = 3
    other_store_limit: int = 20


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
        records: every writable field of trainings, commendations and evaluations (registry-api.md v1.1).
    """

    identity: str = "registry"
    structure: str = "local"
    contact: str = "registry"
    descriptive: str = "local"
    residence: str = "registry"
    records: str = "local"

    def policies(self) -> dict[str, str]:
        """Group → policy, for :func:`regsync.domain.merge.three_way`."""
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
class DaemonSettings:
    """The daemon, ``regsync run`` (issue 6): its schedule, shutdown bound, metrics address and report folder.

    Attributes:
        outbound_interval_s: seconds between relay passes (the outbound flow; latency target ≤ 10 s).
        inbound_interval_s: seconds between change-feed pulls.
        reconcile_cron: when the full reconcile runs, a crontab line in ``timezone`` (5 fields: minute hour
            day month weekday; 6 fields put seconds first, for tests).
        reconcile_repair: the nightly reconcile queues the fixes policy allows (else it only reports).
        prune_cron: when old runs, sent outbox rows and the rest are pruned ([retention]), same format.
        timezone: the schedule's time zone (design.md, "Real parts": Asia/Shanghai).
        shutdown_timeout_s: after SIGTERM/SIGINT, seconds to finish the current batch before the daemon
            leaves the rest to its leases and exits.
        catchup_window_s: a run missed while the daemon was down is caught up once at start if its time is
            at most this many seconds ago.
        metrics_address: ``HOST:PORT`` of ``/metrics`` and ``/healthz``; ``off`` (or empty in the file) to serve
            neither (loopback by default: put a proxy in front to expose it).
        reports_dir: folder of the nightly reconcile's HTML and CSV reports.
        backoff_max_s: after a failed pass the relay and the pull wait longer and longer (their interval times
            2, 4, 8…) before the next, at most this many seconds; a success resets the wait.
    """

    outbound_interval_s: float = 2.0
    inbound_interval_s: float = 60.0
    reconcile_cron: str = "0 2 * * *"
    reconcile_repair: bool = False
    prune_cron: str = "30 3 * * *"
    timezone: str = "Asia/Shanghai"
    shutdown_timeout_s: float = 30.0
    catchup_window_s: float = 86400.0
    metrics_address: str = "127.0.0.1:9464"
    reports_dir: str = "reports"
    backoff_max_s: float = 300.0


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Staleness limits of ``regsync status`` (exit code 3 past any of them) and ``/metrics``, in seconds.

    Attributes:
        outbound_max_lag_s: the oldest change waiting to be pushed is older than this.
        inbound_max_age_s: the last successful pull is older than this.
        reconcile_max_age_s: the last successful full reconcile is older than this.
        max_failing_s: a flow has been failing (e.g. the registry refuses the credentials, ``invalid_client``)
            for this long (0: as soon as a pass has failed; a grace rides out short outages).
        max_pause_s: a flow has been paused (``regsync pause``) for longer than this.
        min_daemons: fewer live daemons than this (heartbeats within their lease) is unhealthy and raises the
            heartbeat alarm: 1 for one daemon; with replicas, their number, so that the others see one die.
    """

    outbound_max_lag_s: float = 900.0
    inbound_max_age_s: float = 900.0
    reconcile_max_age_s: float = 129600.0
    max_failing_s: float = 0.0
    max_pause_s: float = 14400.0
    min_daemons: int = 1


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """Alarms (告警) where operators are (issue 15, point 6): WeCom and DingTalk group robots, e-mail, webhooks.

    Attributes:
        urls: where alarms go, one Apprise URL each: ``wecombot://KEY``, ``dingtalk://TOKEN/?secret=S``,
            ``mailtos://user:pass@smtp.example?to=ops@example``, ``json://host/path`` (a plain webhook)… Empty: no
            alarm is sent (the log still says it). Secret-bearing: they are never logged in full. In the
            environment, separated by spaces or new lines; or in a file (``urls_file``, one a line: a systemd
            credential), read when ``urls`` is not given.
        check_interval_s: how often the daemon judges the conditions (``regsync status --alarms`` judges them
            once).
        grace_s: a condition is announced once it has held this long (a failed pass the next one cures, a daemon
            restarting, send nothing); it is judged at each check, so the message comes at the first check after.
        reminder_s: a condition still present this long after its message is announced again, once per period;
            0: never (one message when it starts, one when it clears).
        retries: attempts per URL after the first, with exponential backoff from ``retry_wait_s``.
        retry_wait_s: seconds before the first retry (doubled each time, at most 60).
    """

    urls: tuple[str, ...] = ()
    check_interval_s: float = 30.0
    grace_s: float = 60.0
    reminder_s: float = 0.0
    retries: int = 3
    retry_wait_s: float = 2.0


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How many days regsync keeps its own records before the daily prune deletes them, and the personal data
    in them with them (design.md, "Personal data"). 0 keeps them for ever.

    Attributes:
        runs_days: runs (and their run slots).
        discrepancies_days: a reconcile's discrepancies.
        conflicts_days: resolved or superseded conflicts (open ones are never pruned).
        audit_days: the audit of operator actions.
        sent_outbox_days: outbox rows already sent.
    """

    runs_days: int = 90
    discrepancies_days: int = 90
    conflicts_days: int = 180
    audit_days: int = 365
    sent_outbox_days: int = 7


@dataclass(frozen=True, slots=True)
class Settings:
    """All of regsync's settings.

    Attributes:
        province: the two-digit GB/T 2260 province code this client serves (``23`` = Heilongjiang).
        hash_key: the local secret for keyed hashes of personal data in base snapshots (design.md, "Personal
            data"). Built in code it defaults to :data:`PUBLIC_HASH_KEY`; :func:`load_settings` always sets one
            that is not public (a configured key, or the key file of a SQLite store).
    """

    province: str = "23"
    hash_key: str = field(default=PUBLIC_HASH_KEY, repr=False)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    log: LogSettings = field(default_factory=LogSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)


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
    Spec("database", "mapping", "REGSYNC_MAPPING", "the platform's mapping: reference, legacy or a TOML path"),
    Spec("database", "table_prefix", "REGSYNC_TABLE_PREFIX",
         "SQLite: prefix of regsync's tables (auto: regsync_ beside a mapped platform; none)"),
    Spec("database", "platform_schema", "REGSYNC_PLATFORM_SCHEMA",
         "schema (PostgreSQL) or database (MySQL) of the platform's tables named without one"),
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
    Spec("relay", "claim_size", "REGSYNC_CLAIM_SIZE", "outbox rows claimed per window"),
    Spec("relay", "lease_s", "REGSYNC_LEASE_S", "seconds a claim holds"),
    Spec("relay", "max_attempts", "REGSYNC_MAX_ATTEMPTS", "transient failures before a row fails"),
    Spec("relay", "concurrency", "REGSYNC_RELAY_CONCURRENCY", "POST /batch calls in flight at once (1-8)"),
    Spec("relay", "other_store_limit", "REGSYNC_OTHER_STORE_LIMIT",
         "records met that another store created under these credentials before the relay halts (0: never)"),
    Spec("merge", "identity", "REGSYNC_MERGE_IDENTITY", "policy for identity fields: registry, local, manual"),
    Spec("merge", "structure", "REGSYNC_MERGE_STRUCTURE", "policy for org structure: registry, local, manual"),
    Spec("merge", "contact", "REGSYNC_MERGE_CONTACT", "policy for contact fields: registry, local, manual"),
    Spec("merge", "descriptive", "REGSYNC_MERGE_DESCRIPTIVE", "policy for descriptive fields: registry, local, manual"),
    Spec("merge", "residence", "REGSYNC_MERGE_RESIDENCE", "policy for homeProvince: registry, local, manual"),
    Spec("merge", "records", "REGSYNC_MERGE_RECORDS",
         "policy for trainings, commendations and evaluations: registry, local, manual"),
    Spec("log", "level", "REGSYNC_LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR"),
    Spec("log", "format", "REGSYNC_LOG_FORMAT", "auto, console or json"),
    Spec("log", "show_personal_data", "REGSYNC_LOG_SHOW_PERSONAL_DATA", "log ID numbers and phones unmasked"),
    Spec("daemon", "outbound_interval_s", "REGSYNC_OUTBOUND_INTERVAL_S", "seconds between relay passes"),
    Spec("daemon", "inbound_interval_s", "REGSYNC_INBOUND_INTERVAL_S", "seconds between change-feed pulls"),
    Spec("daemon", "reconcile_cron", "REGSYNC_RECONCILE_CRON", "crontab line of the full reconcile"),
    Spec("daemon", "reconcile_repair", "REGSYNC_RECONCILE_REPAIR", "the nightly reconcile queues fixes"),
    Spec("daemon", "prune_cron", "REGSYNC_PRUNE_CRON", "crontab line of the daily prune"),
    Spec("daemon", "timezone", "REGSYNC_TIMEZONE", "time zone of the schedule (Asia/Shanghai)"),
    Spec("daemon", "shutdown_timeout_s", "REGSYNC_SHUTDOWN_TIMEOUT_S", "seconds to finish the batch on SIGTERM"),
    Spec("daemon", "catchup_window_s", "REGSYNC_CATCHUP_WINDOW_S", "how far back a missed run is caught up, s"),
    Spec("daemon", "metrics_address", "REGSYNC_METRICS_ADDRESS", "HOST:PORT of /metrics and /healthz, or off"),
    Spec("daemon", "reports_dir", "REGSYNC_REPORTS_DIR", "folder of the nightly reports"),
    Spec("daemon", "backoff_max_s", "REGSYNC_BACKOFF_MAX_S", "longest wait after failed passes, s"),
    Spec("health", "outbound_max_lag_s", "REGSYNC_HEALTH_OUTBOUND_MAX_LAG_S", "oldest waiting change limit, s"),
    Spec("health", "inbound_max_age_s", "REGSYNC_HEALTH_INBOUND_MAX_AGE_S", "last successful pull limit, s"),
    Spec("health", "reconcile_max_age_s", "REGSYNC_HEALTH_RECONCILE_MAX_AGE_S", "last full reconcile limit, s"),
    Spec("health", "max_failing_s", "REGSYNC_HEALTH_MAX_FAILING_S", "longest a flow may keep failing, s"),
    Spec("health", "max_pause_s", "REGSYNC_HEALTH_MAX_PAUSE_S", "longest a flow may stay paused, s"),
    Spec("health", "min_daemons", "REGSYNC_HEALTH_MIN_DAEMONS", "fewest live daemons that are healthy"),
    Spec("alarms", "urls", "REGSYNC_ALARMS_URLS",
         "Apprise URLs alarms go to (wecombot://, dingtalk://, mailtos://, json://…), space-separated"),
    Spec("alarms", "urls_file", "REGSYNC_ALARMS_URLS_FILE",
         "file of the alarm URLs, one a line (# comments), used when urls is not given"),
    Spec("alarms", "check_interval_s", "REGSYNC_ALARMS_CHECK_INTERVAL_S", "seconds between the daemon's checks"),
    Spec("alarms", "grace_s", "REGSYNC_ALARMS_GRACE_S", "seconds a condition must hold before it is announced"),
    Spec("alarms", "reminder_s", "REGSYNC_ALARMS_REMINDER_S", "repeat a standing alarm after this long, s (0: never)"),
    Spec("alarms", "retries", "REGSYNC_ALARMS_RETRIES", "delivery retries per URL"),
    Spec("alarms", "retry_wait_s", "REGSYNC_ALARMS_RETRY_WAIT_S", "seconds before the first delivery retry"),
    Spec("retention", "runs_days", "REGSYNC_RETENTION_RUNS_DAYS", "days runs are kept (0: for ever)"),
    Spec("retention", "discrepancies_days", "REGSYNC_RETENTION_DISCREPANCIES_DAYS", "days discrepancies are kept"),
    Spec("retention", "conflicts_days", "REGSYNC_RETENTION_CONFLICTS_DAYS", "days decided conflicts are kept"),
    Spec("retention", "audit_days", "REGSYNC_RETENTION_AUDIT_DAYS", "days audit rows are kept"),
    Spec("retention", "sent_outbox_days", "REGSYNC_RETENTION_SENT_OUTBOX_DAYS", "days sent outbox rows are kept"),
)

_SECTIONS = {"database": DatabaseSettings, "registry": RegistrySettings, "relay": RelaySettings,
             "merge": MergeSettings, "log": LogSettings,
             "daemon": DaemonSettings, "health": HealthSettings, "alarms": AlarmSettings,
             "retention": RetentionSettings}


def env_help(*sections: str) -> Phrase:
    """A line for a command's ``--help``: the environment variables of the named sections (all if none); a
    :class:`regsync.i18n.Phrase`, translated when shown."""
    names = [s.env for s in SPECS if not sections or s.section in sections or s.section == ""]
    return Phrase(N_("Reads REGSYNC_CONFIG (a TOML file) and the environment: {names}."), names=", ".join(names))


def env_epilog(*sections: str) -> Phrase:
    """The epilog of a command's ``--help``: each setting it reads, as ``section.key (ENV_VAR)``, from
    :data:`SPECS` (the same names as ``config/regsync.example.toml``; no brackets, which Rich would take for
    markup).

    Args:
        *sections: the sections the command reads (``database``, ``registry``…); the top-level settings are
            always listed. No section at all: the command reads no settings but the logging ones.
    """
    chosen = [s for s in SPECS if s.section in sections or s.section == "" or s.section == "log"]
    parts = [f"{s.section + '.' if s.section else ''}{s.key} ({s.env})" for s in chosen]
    return Phrase(N_("Settings read, from REGSYNC_CONFIG (a TOML file) and the environment, which wins: "
                     "{settings}."), settings="; ".join(parts))


#: ``REGSYNC_*`` variables that are not settings but are read all the same: the configuration file's name, and the
#: language of what people read (:mod:`regsync.i18n`; chosen before any settings are loaded).
OTHER_VARIABLES: frozenset[str] = frozenset({"REGSYNC_CONFIG", "REGSYNC_LANG"})

#: Prefixes of ``REGSYNC_*`` variables that belong to the test suite and the benches, never to regsync itself.
FOREIGN_PREFIXES: tuple[str, ...] = ("REGSYNC_TEST_", "REGSYNC_BENCH_")

_BY_KEY: dict[tuple[str, str], Spec] = {(s.section, s.key): s for s in SPECS}


def setting_name(section: str, key: str) -> str:
    """How messages name a setting: ``section.key (ENV_VAR)``, e.g. ``daemon.reconcile_cron
    (REGSYNC_RECONCILE_CRON)``; a top-level one without the section (``hash_key (REGSYNC_HASH_KEY)``). No square
    brackets: a console would take them for markup."""
    spec = _BY_KEY.get((section, key))
    dotted = f"{section}.{key}" if section else key
    return f"{dotted} ({spec.env})" if spec else dotted


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``REGSYNC_*`` environment variable that names no setting, with the closest name.

    Args:
        environ: the environment.

    Returns:
        Messages such as ``REGSYNC_BATCH_SZE names no setting and is ignored (did you mean
        REGSYNC_BATCH_SIZE?)``, sorted by variable. Variables of :data:`OTHER_VARIABLES` and of
        :data:`FOREIGN_PREFIXES` are no mistake.
    """
    known = [s.env for s in SPECS] + sorted(OTHER_VARIABLES)
    out: list[str] = []
    for name in sorted(environ):
        if not name.startswith("REGSYNC_") or name in known or name.startswith(FOREIGN_PREFIXES):
            continue
        # compared without the common prefix, which would make every name look close
        close = difflib.get_close_matches(name[8:], [k[8:] for k in known], n=1, cutoff=0.6)
        out.append(Message(N_("{name} names no setting and is ignored (did you mean {close}?)"), name=name,
                           close=f"REGSYNC_{close[0]}") if close
                   else Message(N_("{name} names no setting and is ignored"), name=name))
    return out


def _coerce(value: Any, target: Any, name: str) -> Any:
    if isinstance(target, tuple):  # a list of strings: a TOML array, or text separated by white space
        items = value.split() if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(N_("{name}: expected a list of strings, got {type}"), name=name,
                              type=type(value).__name__)
        return tuple(i.strip() for i in items if i.strip())
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(N_("{name}: expected true or false, got {value!r}"), name=name, value=value)
    if isinstance(target, int | float) and isinstance(value, bool):
        raise ConfigError(N_("{name}: expected a whole number, got {value!r}") if isinstance(target, int) else
                          N_("{name}: expected a finite number, got {value!r}"), name=name, value=value)
    try:
        if isinstance(target, int):
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip())
        if isinstance(target, float):
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except (TypeError, ValueError) as exc:
        raise ConfigError(N_("{name}: expected a whole number, got {value!r}") if isinstance(target, int) else
                          N_("{name}: expected a finite number, got {value!r}"), name=name, value=value) from exc
    if isinstance(value, dict | list):
        raise ConfigError(N_("{name}: expected a string, got {value!r}"), name=name, value=value)
    return str(value)


def _read_file(path: str, name: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(N_("{name}: cannot read {path}: {error}"), name=name, path=path, error=exc.strerror) from exc


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for another engine, an in-memory database or a malformed URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" \
            or u.query.get("mode") == "memory":
        return None
    return Path(u.database)


def key_file_for(url: str) -> Path | None:
    """The file beside a SQLite store that holds the hash key regsync made for it: ``<store>.hash_key``
    (``regsync.db`` → ``regsync.db.hash_key``); ``None`` for a server store or an in-memory store."""
    path = _sqlite_path(url)
    return None if path is None else path.with_name(path.name + KEY_FILE_SUFFIX)


def new_hash_key() -> str:
    """A new random hash key: 48 random bytes, URL-safe base64 (64 characters)."""
    return secrets.token_urlsafe(48)


def ensure_key_file(path: Path, warn: Callable[[str], None] | None = None) -> str:
    """The hash key kept in ``path``, made (random, mode 0600) if the file does not exist yet.

    The file is written whole under a temporary name and linked into place, so that two processes starting at once
    agree on one key: the second finds the first's file and reads it.

    Args:
        path: the key file (:func:`key_file_for`).
        warn: called with a message when the file can be read by others than its owner.

    Returns:
        The key.

    Raises:
        ConfigError: the file cannot be read or written, or is empty.
    """
    name = f"the hash key file {path}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new_hash_key() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: its key is the one
        except OSError as exc:
            raise ConfigError(N_("cannot write {name}: {error}; set hash_key (REGSYNC_HASH_KEY) or hash_key_file "
                                 "(REGSYNC_HASH_KEY_FILE)"), name=name, error=exc.strerror) from exc
        finally:
            tmp.unlink(missing_ok=True)
    key = _read_file(str(path), name)
    if not key:
        raise ConfigError(N_("{name} is empty: restore it from a backup (the store's snapshots were hashed with it)"),
                          name=name)
    if warn is not None and path.stat().st_mode & 0o077:
        warn(Message(N_("{name} can be read by other users: chmod 600 {path}"), name=name, path=path))
    return key


def _resolve_hash_key(raw: dict[tuple[str, str], Any], warn: Callable[[str], None] | None) -> str:
    """The hash key: the configured one (``hash_key``, else ``hash_key_file``); for a SQLite store without one, the
    key kept beside it (made once, :func:`ensure_key_file`); for a server store (PostgreSQL, MySQL/MariaDB), none is
    a configuration error (design.md, "Personal data": the keyed hashes need a secret key, and a server store has no
    file beside which to keep one).

    Raises:
        ConfigError: no key for a server store, the public key :data:`PUBLIC_HASH_KEY` for one, an empty key, or a
            key file that cannot be read or written.
    """
    name = setting_name("", "hash_key")
    url = str(raw.get(("database", "url"), DatabaseSettings().url))
    if ("", "hash_key") in raw:
        key = str(raw[("", "hash_key")])
    elif ("", "hash_key_file") in raw:
        key = _read_file(str(raw[("", "hash_key_file")]), setting_name("", "hash_key_file"))
    else:
        key = ""
    backend = url.split(":", 1)[0].split("+", 1)[0]
    server = backend in ("postgresql", "postgres", "mysql", "mariadb")
    engine_name = "MySQL/MariaDB" if backend in ("mysql", "mariadb") else "PostgreSQL"
    if ("", "hash_key") in raw or ("", "hash_key_file") in raw:
        if not key.strip():
            raise ConfigError(N_("{name} is empty: give a long random secret (openssl rand -base64 48)"), name=name)
        if key == PUBLIC_HASH_KEY and server:
            raise ConfigError(N_("{name} is the public default key, which protects nothing; set a secret of your "
                                 "own and re-key the store once (`regsync db rekey --reason ...`, deploy/RUNBOOK.md)"),
                              name=name)
        if warn is not None and key == PUBLIC_HASH_KEY:
            warn(Message(N_("{name} is the public default key, which protects nothing: set a secret of your own "
                            "and re-key the store once (`regsync db rekey --reason ...`, deploy/RUNBOOK.md)"),
                         name=name))
        elif warn is not None and len(key) < 16:
            warn(Message(N_("{name} is shorter than 16 characters: a short key lets the hashes of ID numbers be "
                            "guessed"), name=name))
        return key
    if server:
        raise ConfigError(N_("{name} is required for a {engine} store: set REGSYNC_HASH_KEY or hash_key_file "
                             "(REGSYNC_HASH_KEY_FILE) to a long random secret (openssl rand -base64 48); a store "
                             "that ran on the old default key is re-keyed once with `regsync db rekey --reason ...` "
                             "(deploy/RUNBOOK.md)"), name=name, engine=engine_name)
    path = key_file_for(url)
    if path is None:
        return new_hash_key()  # an in-memory store lives as long as this process
    if not path.exists() and not path.parent.joinpath(path.name[: -len(KEY_FILE_SUFFIX)]).exists():
        # no store yet: nothing hashed to keep. The key file is made with the store's first use, beside it.
        return new_hash_key()
    return ensure_key_file(path, warn)


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None, *,
                  warn: Callable[[str], None] | None = None) -> Settings:
    """Load settings from the defaults, the TOML file and the environment (which wins), and check every value.

    The hash key: ``hash_key`` or ``hash_key_file`` if given; else, for a SQLite store, the key in the file beside
    it (``<store>.hash_key``, made once, mode 0600); a PostgreSQL store must be given one.

    Args:
        config_file: a TOML file; ``None`` means ``REGSYNC_CONFIG`` if set, else none.
        environ: the environment to read (``os.environ`` by default).
        warn: called with each warning: a ``REGSYNC_*`` variable that names no setting (with the closest
            name), a short hash key, a key file others can read. Default: none reported.

    Raises:
        ConfigError: the file cannot be read or parsed, a key is unknown, or a value is malformed or out of
            range; the message names the setting as ``section.key (ENV_VAR)``.
    """
    env = os.environ if environ is None else environ
    if warn is not None:
        for message in unknown_variables(env):
            warn(message)
    path = config_file or env.get("REGSYNC_CONFIG") or None
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(N_("cannot read config file {path}: {error}"), path=path, error=exc.strerror) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(N_("config file {path} is not valid TOML: {error}"), path=path, error=str(exc)) from exc

    known = {(s.section, s.key) for s in SPECS}
    sections = {s.section for s in SPECS if s.section}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub in value:
                if (key, sub) not in known:
                    if key in sections:
                        choices = sorted(f"{key}.{k}" for s, k in known if s == key)
                    else:  # a misspelt section: the closest among every section's keys
                        choices = sorted(f"{s}.{k}" for s, k in known if s)
                    close = difflib.get_close_matches(f"{key}.{sub}", choices, n=1, cutoff=0.6)
                    if close:
                        raise ConfigError(N_("unknown setting {setting} in {path} (did you mean {close}?)"),
                                          setting=f"{key}.{sub}", path=path, close=close[0])
                    raise ConfigError(N_("unknown setting {setting} in {path}"), setting=f"{key}.{sub}", path=path)
        elif ("", key) not in known:
            if key in sections:
                raise ConfigError(N_("unknown setting {setting} in {path} ({setting} is a section: [{setting}])"),
                                  setting=key, path=path)
            raise ConfigError(N_("unknown setting {setting} in {path}"), setting=key, path=path)

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
                                                        setting_name("registry", "client_secret_file"))
    if ("alarms", "urls") not in raw and ("alarms", "urls_file") in raw:
        lines = _read_file(str(raw[("alarms", "urls_file")]), setting_name("alarms", "urls_file")).splitlines()
        raw[("alarms", "urls")] = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]

    settings = Settings()
    top: dict[str, Any] = {}
    if ("", "province") in raw:
        top["province"] = _coerce(raw[("", "province")], settings.province, setting_name("", "province"))
    for section, cls in _SECTIONS.items():
        current = getattr(settings, section)
        changes = {}
        for f in fields(cls):
            if (section, f.name) in raw:
                changes[f.name] = _coerce(raw[(section, f.name)], getattr(current, f.name),
                                          setting_name(section, f.name))
        if changes:
            top[section] = replace(current, **changes)
    settings = replace(settings, **top)
    validate(settings)
    return replace(settings, hash_key=_resolve_hash_key(raw, warn))


def cron_trigger(line: str, timezone: str) -> CronTrigger:
    """A trigger from a crontab line in ``timezone``.

    Args:
        line: 5 fields (minute hour day month weekday, as crontab) or 6 fields (second first, for tests).
        timezone: an IANA name, e.g. ``Asia/Shanghai``.

    Raises:
        ValueError: not 5 or 6 fields, or a field APScheduler rejects.
    """
    parts = line.split()
    tz = ZoneInfo(timezone)
    if len(parts) == 5:
        return CronTrigger.from_crontab(line, timezone=tz)
    if len(parts) == 6:
        second, minute, hour, day, month, dow = parts
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                           timezone=tz)
    raise ValueError(f"a crontab line has 5 fields (or 6, seconds first): {line!r}")


def _cron_problem(line: str, timezone: str) -> Message | None:
    """What is wrong with a crontab line (naming the field), as a :class:`regsync.i18n.Message`, or ``None``: the
    daemon's own parser decides (:func:`cron_trigger`)."""
    parts = line.split()
    if len(parts) not in (5, 6):
        return Message(N_("must be a crontab line of 5 fields (or 6, seconds first), got {line!r}"), line=line)
    names = ["minute", "hour", "day", "month", "day_of_week"]
    if len(parts) == 6:
        names = ["second", *names]
    for name, value in zip(names, parts, strict=True):
        try:
            CronTrigger(**{name: value})
        except (ValueError, TypeError) as exc:
            field_name = "weekday" if name == "day_of_week" else name
            return Message(N_("the {field} field {value!r} is not valid ({error}) in {line!r}"), field=field_name,
                           value=value, error=str(exc), line=line)
    try:
        trigger = cron_trigger(line, timezone)
    except (ValueError, TypeError, KeyError) as exc:
        return Message(N_("is not a valid crontab line ({error}): {line!r}"), error=str(exc), line=line)
    if trigger.get_next_fire_time(None, dt.datetime.now(ZoneInfo(timezone))) is None:
        return Message(N_("never fires (no such date, e.g. 30 February): {line!r}"), line=line)
    return None


def validate(settings: Settings) -> None:
    """Check every value's range and format.

    Raises:
        ConfigError: with the first problem found, naming the setting as ``section.key (ENV_VAR)``.
    """
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    def bad(section: str, key: str, rule: str, **params: Any) -> ConfigError:
        # the rule is a template of its own (marked where it is written), translated where the error is read
        return ConfigError(N_("{setting}: {rule}"), setting=setting_name(section, key), rule=Message(rule, **params))

    if not re.fullmatch(r"[1-8]\d", settings.province):
        raise bad("", "province", N_("must be two digits of a province code (GB/T 2260), got {value!r}"),
                  value=settings.province)
    try:
        backend = make_url(settings.database.url).get_backend_name()
    except (ArgumentError, ValueError) as exc:
        raise bad("database", "url", N_("is not a database URL ({error}); examples: sqlite:///regsync.db, "
                  "postgresql+psycopg://user@host:5432/db, mysql+pymysql://user@host:3306/db"), error=str(exc)
                  ) from exc
    if backend not in (*ENGINES, "mariadb"):
        raise bad("database", "url", N_("names a {backend} database; regsync runs on {engines} "
                  "(mysql: MySQL 8 or MariaDB 10.6 and later)"), backend=backend, engines=", ".join(ENGINES))
    prefix = settings.database.own_prefix
    if prefix and backend != "sqlite":
        raise bad("database", "table_prefix", N_("is for a SQLite store only (regsync's tables have a schema or "
                  "database of their own on {backend}); leave it auto or empty, got {value!r}"), backend=backend,
                  value=prefix)
    if prefix and settings.database.mapping == "reference":
        raise bad("database", "table_prefix", N_("is for a store beside a mapped platform (database.mapping is not "
                  "reference): the reference tables and their triggers are regsync's own schema; got {value!r}"),
                  value=prefix)
    if prefix and not re.fullmatch(TABLE_PREFIX_PATTERN, prefix):
        raise bad("database", "table_prefix", N_("must be letters, digits and _ (at most 31), got {value!r}"),
                  value=prefix)
    reg = settings.registry
    parts = urlsplit(reg.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("registry", "url", N_("must be an http(s) URL, got {value!r}"), value=reg.url)
    if reg.sign_method not in SIGN_METHODS:
        raise bad("registry", "sign_method", N_("must be one of {choices}, got {value!r}"),
                  choices=", ".join(SIGN_METHODS), value=reg.sign_method)
    if not reg.timeout_s > 0:
        raise bad("registry", "timeout_s", N_("must be above 0 seconds, got {value!r}"), value=reg.timeout_s)
    if reg.max_retries < 0:
        raise bad("registry", "max_retries", N_("must be 0 or more, got {value!r}"), value=reg.max_retries)
    if reg.retry_after_cap_s < 0:
        raise bad("registry", "retry_after_cap_s", N_("must be 0 or more seconds, got {value!r}"),
                  value=reg.retry_after_cap_s)
    relay = settings.relay
    if not 1 <= relay.batch_size <= 500:
        raise bad("relay", "batch_size", N_("must be between 1 and 500 (registry-api.md §3), got {value}"),
                  value=relay.batch_size)
    if relay.claim_size < 1:
        raise bad("relay", "claim_size", N_("must be at least 1, got {value}"), value=relay.claim_size)
    if not relay.lease_s > 0:
        raise bad("relay", "lease_s", N_("must be above 0 seconds, got {value!r}"), value=relay.lease_s)
    if relay.max_attempts < 1:
        raise bad("relay", "max_attempts", N_("must be at least 1, got {value}"), value=relay.max_attempts)
    if not 1 <= relay.concurrency <= 8:
        raise bad("relay", "concurrency", N_("must be between 1 and 8, got {value}"), value=relay.concurrency)
    if relay.other_store_limit < 0:
        raise bad("relay", "other_store_limit", N_("must be 0 (never halt) or more, got {value}"),
                  value=relay.other_store_limit)
    for f in fields(MergeSettings):
        value = getattr(settings.merge, f.name)
        if value not in ("registry", "local", "manual"):
            raise bad("merge", f.name, N_("must be registry, local or manual, got {value!r}"), value=value)
    if settings.log.level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise bad("log", "level", N_("must be DEBUG, INFO, WARNING or ERROR, got {value!r}"), value=settings.log.level)
    if settings.log.format not in {"auto", "console", "json"}:
        raise bad("log", "format", N_("must be auto, console or json, got {value!r}"), value=settings.log.format)
    d = settings.daemon
    for key in ("outbound_interval_s", "inbound_interval_s", "backoff_max_s"):
        if not getattr(d, key) > 0:
            raise bad("daemon", key, N_("must be above 0 seconds, got {value!r}"), value=getattr(d, key))
    for key in ("shutdown_timeout_s", "catchup_window_s"):
        if getattr(d, key) < 0:
            raise bad("daemon", key, N_("must be 0 or more seconds, got {value!r}"), value=getattr(d, key))
    try:
        ZoneInfo(d.timezone)
    except (KeyError, ValueError) as exc:
        raise bad("daemon", "timezone", N_("is not a known time zone (e.g. Asia/Shanghai): {value!r}"),
                  value=d.timezone) from exc
    for key in ("reconcile_cron", "prune_cron"):
        problem = _cron_problem(getattr(d, key), d.timezone)
        if problem:
            raise bad("daemon", key, problem.template, **problem.params)
    if d.metrics_address not in ("", "off"):
        host, colon, port = d.metrics_address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise bad("daemon", "metrics_address", N_("must be HOST:PORT (port 0-65535) or off, got {value!r}"),
                      value=d.metrics_address)
    if not d.reports_dir.strip():
        raise bad("daemon", "reports_dir", N_("must name a folder"))
    for f in fields(HealthSettings):  # 0: unhealthy as soon as there is any lag, age or failure
        if not getattr(settings.health, f.name) >= 0:
            raise bad("health", f.name, N_("must be 0 or more seconds, got {value!r}"),
                      value=getattr(settings.health, f.name))
    if settings.health.min_daemons < 0:
        raise bad("health", "min_daemons", N_("must be 0 or more, got {value!r}"), value=settings.health.min_daemons)
    a = settings.alarms
    for url in a.urls:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", url):
            # the URL may hold a secret: name its position and scheme only
            raise bad("alarms", "urls", N_(
                "each must be a URL such as wecombot://KEY or mailtos://…, got one starting {start!r} (item {item})"),
                start=url.split(":", 1)[0][:12], item=a.urls.index(url) + 1)
    if not a.check_interval_s > 0:
        raise bad("alarms", "check_interval_s", N_("must be above 0 seconds, got {value!r}"), value=a.check_interval_s)
    if a.grace_s < 0:
        raise bad("alarms", "grace_s", N_("must be 0 (at once) or more seconds, got {value!r}"), value=a.grace_s)
    if a.reminder_s < 0:
        raise bad("alarms", "reminder_s", N_("must be 0 (never) or more seconds, got {value!r}"), value=a.reminder_s)
    if not 0 <= a.retries <= 10:
        raise bad("alarms", "retries", N_("must be between 0 and 10, got {value!r}"), value=a.retries)
    if a.retry_wait_s < 0:
        raise bad("alarms", "retry_wait_s", N_("must be 0 or more seconds, got {value!r}"), value=a.retry_wait_s)
    for f in fields(RetentionSettings):
        if getattr(settings.retention, f.name) < 0:
            raise bad("retention", f.name, N_("must be 0 (for ever) or more days"))
