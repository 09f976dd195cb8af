"""Faults the sandbox registry can inject (registry-api.md §8), set at start or at run time.

A :class:`Faults` object is consulted by the app at fixed points: before a call is handled (latency,
maintenance, error answers), after a write committed (lost answers), when a token is issued (lifetime), on
every clock reading (offset), by the rate limiter (rate and burst) and by the change feed (repeated items,
retention). All rates are probabilities in ``[0, 1]`` drawn from one seeded :class:`random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SEVEN_DAYS_S = 7 * 24 * 3600


@dataclass(slots=True)
class Faults:
    """The sandbox's fault settings; all off by default.

    Attributes:
        latency_s: seconds added before every API call is handled.
        error_rate: share of API calls answered with an error from ``error_statuses`` instead.
        error_statuses: the statuses to draw from (500, 502, 503, 504).
        html_error_share: share of those error answers that carry an HTML page instead of the envelope.
        lost_answer_rate: share of committed writes whose answer is lost.
        lost_answer_mode: ``"504"`` (an HTML 504 after the commit) or ``"drop"`` (the connection is cut).
        rate_limit_rps: overrides the per-client request rate (requests/s), if set.
        rate_limit_burst: overrides the bucket size, if set.
        maintenance: answer every API call with 503 ``MAINTENANCE``.
        maintenance_retry_after_s: the ``Retry-After`` (whole seconds) of those answers.
        token_ttl_s: the lifetime of new access tokens, seconds (600 by registry-api.md §2).
        clock_offset_s: seconds added to the registry's clock (timestamps, skew checks, ``serverTime``).
        feed_repeat_rate: share of change-feed pages that repeat the items of the page before.
        feed_retention_s: how long changes are kept, seconds (7 days by §5.3).
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503, 504])
    html_error_share: float = 0.5
    lost_answer_rate: float = 0.0
    lost_answer_mode: str = "504"
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None
    maintenance: bool = False
    maintenance_retry_after_s: int = 30
    token_ttl_s: float = 600.0
    clock_offset_s: float = 0.0
    feed_repeat_rate: float = 0.0
    feed_retention_s: float = SEVEN_DAYS_S

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Faults:
        """Build from a dict of attribute names (unknown names raise :class:`ValueError`)."""
        faults = cls()
        faults.update(data or {})
        return faults

    def update(self, data: dict[str, Any]) -> None:
        """Set the attributes named in ``data``.

        Raises:
            ValueError: an unknown attribute name.
        """
        names = {f.name for f in fields(self)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        for name, value in data.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)

    def draw(self, rng: random.Random, rate: float) -> bool:
        """Whether an event of probability ``rate`` happens this time."""
        return rate > 0 and rng.random() < rate
