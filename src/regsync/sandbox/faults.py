"""Faults the sandbox registry can inject (registry-api.md §8), set at start or at run time.

The settings have exactly the names of :data:`FAULT_NAMES`; they are given as ``NAME=VALUE[,NAME=VALUE…]``
on ``regsync sandbox serve --faults`` (see :func:`parse_fault_spec`), as a dict of the same names with string
or numeric values to :class:`~regsync.sandbox.server.SandboxServer` and
:func:`~regsync.sandbox.app.create_app`, and as a JSON object to ``PUT /_sandbox/faults`` at run time.

A :class:`Faults` object is consulted by the app at fixed points: before a call is handled (latency,
firewall, the gateway's body limit, maintenance, error answers), after a write committed (lost answers),
when a token is issued (lifetime), on every clock reading (offset), by the rate limiter (rate), by the
change feed (repeated items, retention) and on every answer's headers (``Date``, ``Retry-After``). All
rates are probabilities in ``[0, 1]`` drawn from the app's one seeded :class:`random.Random`.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

SEVEN_DAYS_S = 7 * 24 * 3600
DEFAULT_TOKEN_TTL_S = 600.0
MAX_LATENCY_MS = 60_000.0

#: The fault names, in the order of registry-api.md §8 and the issue that specified them.
FAULT_NAMES = (
    "latency_ms",
    "error_rate",
    "lost_answer_rate",
    "rate_limit_rps",
    "maintenance_s",
    "token_ttl_s",
    "clock_offset_s",
    "feed_duplicate_rate",
    "feed_retention_s",
    "gateway_body_limit",
    "firewall_rate",
    "retry_after_http_date",
)

_RATES = frozenset({"error_rate", "lost_answer_rate", "feed_duplicate_rate", "firewall_rate"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def coerce_fault(name: str, value: Any) -> Any:
    """Check and convert one fault setting.

    Args:
        name: one of :data:`FAULT_NAMES`.
        value: a string (as on the command line), a number, a bool (``retry_after_http_date``), or ``None``
            for the default (off).

    Returns:
        The value as the app uses it: a float, an int (``gateway_body_limit``), a bool
        (``retry_after_http_date``) or ``None`` (``rate_limit_rps``, ``gateway_body_limit`` off).

    Raises:
        ValueError: an unknown name or a value out of its range, with a message naming both.
    """
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; the faults are: {', '.join(FAULT_NAMES)}")
    if value is None:
        return _DEFAULTS[name]
    if name == "retry_after_http_date":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {value!r}")
    if name == "gateway_body_limit":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip() if not isinstance(value, bool) else "x"
        if not text.isdigit():
            raise ValueError(f"{name}: expected a whole number of bytes (0: off), got {value!r}")
        return int(text) or None
    number = _number(name, value)
    if name in _RATES and not 0 <= number <= 1:
        raise ValueError(f"{name}: a rate is between 0 and 1, got {value!r}")
    if name == "latency_ms" and not 0 <= number <= MAX_LATENCY_MS:
        raise ValueError(f"{name}: 0 to {MAX_LATENCY_MS:.0f} ms, got {value!r}")
    if name == "maintenance_s" and number < 0:
        raise ValueError(f"{name}: seconds ≥ 0 (0 ends a window), got {value!r}")
    if name in ("rate_limit_rps", "token_ttl_s", "feed_retention_s") and number <= 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return number


def parse_fault_spec(spec: str | None) -> dict[str, Any]:
    """Parse ``--faults``: ``NAME=VALUE[,NAME=VALUE…]``, or a JSON object of the same names.

    Args:
        spec: the option's text; empty or ``None`` gives no faults. Blanks around names, values and commas
            are ignored, and so is an empty item (a trailing comma).

    Returns:
        The settings, checked and converted by :func:`coerce_fault`.

    Raises:
        ValueError: an item without ``=``, an empty name, a name given twice, an unknown name or a bad
            value; the message says which.
    """
    if spec is None or not spec.strip():
        return {}
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of fault settings")
        return normalize_faults(data)
    out: dict[str, Any] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValueError(f"{item!r}: expected NAME=VALUE")
        if name in out:
            raise ValueError(f"{name} is given twice")
        out[name] = coerce_fault(name, value)
    return out


def normalize_faults(data: dict[str, Any] | None) -> dict[str, Any]:
    """Check and convert a dict of fault settings (string or numeric values) by :func:`coerce_fault`.

    Raises:
        ValueError: an unknown name or a bad value.
    """
    return {str(name): coerce_fault(str(name), value) for name, value in (data or {}).items()}


def format_fault_spec(data: dict[str, Any]) -> str:
    """The ``NAME=VALUE,…`` form of (checked) settings, for ``--faults``; ``None`` values are left out."""
    parts = []
    for name, value in normalize_faults(data).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(f"{name}={value}")
    return ",".join(parts)


@dataclass(slots=True)
class Faults:
    """The sandbox's fault settings (registry-api.md §8); all off by default.

    Attributes:
        latency_ms: milliseconds added before every API call is handled (``/oauth/token`` included).
        error_rate: share of signed API calls answered 500, 502, 503 or 504 (equally likely) instead of
            being carried out; half of them with a gateway's HTML page, the others with the envelope
            (``INTERNAL``, or ``MAINTENANCE`` for 503); a 503 carries ``Retry-After`` (1–5 s).
        lost_answer_rate: share of writes (create, batch, PUT, DELETE, revoke, join, leave) that are
            committed and whose answer is then lost: the connection is closed without an answer, or a
            gateway's HTML 504 comes back (equally likely).
        rate_limit_rps: overrides the per-client request rate (requests/s; §3: 20), bucket size
            ``2 × rate`` (at least 1); ``None``: the configured rate and burst.
        maintenance_s: length of the maintenance window (seconds) that began when it was set (at start
            or by ``PUT /_sandbox/faults``); while it lasts every signed API call gets 503 ``MAINTENANCE``
            with ``Retry-After`` (the whole seconds left), half of them with an HTML page. Read back, it is
            the whole seconds left (0: no window).
        token_ttl_s: lifetime of new access tokens, seconds (§2: 600).
        clock_offset_s: seconds added to the registry's clock (skew checks, ``serverTime``, record
            timestamps, token expiry, the feed's retention, ``Date`` and HTTP-date ``Retry-After``).
        feed_duplicate_rate: share of change-feed pages with repeated items: either up to 5 items of the
            pages before the cursor come again at the page's head, or up to 3 of the page's own items come
            twice in a row (equally likely); pages of ``limit=1`` are never changed.
        feed_retention_s: how long changes are kept, seconds (§5.3: 7 days); an older cursor → 410.
        gateway_body_limit: bytes; a request body over it gets the gateway's HTML 413 (before the
            registry's own 5 MiB limit and its JSON 413); ``None``: no gateway limit.
        firewall_rate: share of signed API calls answered by a firewall: an HTML 403, or an HTML 429 with
            ``Retry-After`` (1–5 s), equally likely.
        retry_after_http_date: every ``Retry-After`` is an RFC 9110 IMF-fixdate on the registry's clock
            instead of whole seconds (every answer carries ``Date`` on the same clock in any case).
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    lost_answer_rate: float = 0.0
    rate_limit_rps: float | None = None
    maintenance_s: float = 0.0
    token_ttl_s: float = DEFAULT_TOKEN_TTL_S
    clock_offset_s: float = 0.0
    feed_duplicate_rate: float = 0.0
    feed_retention_s: float = float(SEVEN_DAYS_S)
    gateway_body_limit: int | None = None
    firewall_rate: float = 0.0
    retry_after_http_date: bool = False
    #: ``time.monotonic()`` at the end of the maintenance window (0: none).
    maintenance_until: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Faults:
        """Build from a dict of fault names (string or numeric values; see :func:`coerce_fault`).

        Raises:
            ValueError: an unknown name or a bad value.
        """
        faults = cls()
        faults.update(data or {})
        return faults

    def update(self, data: dict[str, Any]) -> None:
        """Set the faults named in ``data``, all or none; ``maintenance_s`` starts a window now.

        Raises:
            ValueError: an unknown name or a bad value (nothing is changed then).
        """
        values = normalize_faults(data)
        for name, value in values.items():
            setattr(self, name, value)
        if "maintenance_s" in values:
            window = float(values["maintenance_s"])
            self.maintenance_until = time.monotonic() + window if window > 0 else 0.0

    def maintenance_left_s(self) -> float:
        """Seconds left of the maintenance window (0 when there is none)."""
        if not self.maintenance_until:
            return 0.0
        left = self.maintenance_until - time.monotonic()
        if left <= 0:
            self.maintenance_until = 0.0
            return 0.0
        return left

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict of :data:`FAULT_NAMES`; ``maintenance_s`` is the seconds left."""
        out = {name: getattr(self, name) for name in FAULT_NAMES}
        out["maintenance_s"] = math.ceil(self.maintenance_left_s())
        return out

    def draw(self, rng: random.Random, rate: float) -> bool:
        """Whether an event of probability ``rate`` happens this time (no draw when ``rate`` is 0)."""
        return rate > 0 and rng.random() < rate


_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "error_rate": 0.0,
    "lost_answer_rate": 0.0,
    "rate_limit_rps": None,
    "maintenance_s": 0.0,
    "token_ttl_s": DEFAULT_TOKEN_TTL_S,
    "clock_offset_s": 0.0,
    "feed_duplicate_rate": 0.0,
    "feed_retention_s": float(SEVEN_DAYS_S),
    "gateway_body_limit": None,
    "firewall_rate": 0.0,
    "retry_after_http_date": False,
}
