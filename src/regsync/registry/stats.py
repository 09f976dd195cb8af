"""The counters of one registry client (:class:`ClientStats`), shared by the parts of an exchange."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog

from regsync.registry.types import Unknowns

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ClientStats:
    """Counters of one client, for the benchmark and run summaries.

    Attributes:
        calls: public calls made (one ``batch()`` of 1 200 operations is 3 calls, one per body sent).
        calls_by_endpoint: the same by endpoint name (``batch``, ``lookup``, ``get``, ``changes``…).
        requests: HTTP requests sent, token requests and repeats included.
        retries: attempts repeated, by reason: the §7 code (``INTERNAL``, ``RATE_LIMITED``,
            ``TOKEN_EXPIRED``…), ``gateway_<status>``, ``timeout`` or ``connection``.
        tokens_fetched: access tokens obtained.
        splits: batches split in halves after a 413.
        replayed: answers the registry replayed for a repeated ``Idempotency-Key``.
        slept_s: seconds spent waiting between attempts (backoff and ``Retry-After``).
        unknown: what the answers held that this client does not know, skipped and counted (registry-api.md
            §1): ``unknown.types`` (wire type → feed entries, lookup results and export lines skipped) and
            ``unknown.fields`` (``"type.field"`` → records that carried it; the field is ignored).
    """

    calls: int = 0
    calls_by_endpoint: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    tokens_fetched: int = 0
    splits: int = 0
    replayed: int = 0
    slept_s: float = 0.0
    unknown: Unknowns = field(default_factory=Unknowns)

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain JSON-able data."""
        unknown = self.unknown.as_dict()
        return {
            "unknown_types": unknown["types"],
            "unknown_fields": unknown["fields"],
            "calls": self.calls,
            "calls_by_endpoint": dict(self.calls_by_endpoint),
            "requests": self.requests,
            "retries": dict(self.retries),
            "tokens_fetched": self.tokens_fetched,
            "splits": self.splits,
            "replayed": self.replayed,
            "slept_s": round(self.slept_s, 3),
        }

    def note_unknown(self, unknown: Unknowns, endpoint: str) -> None:
        """Count what an answer held that this client does not know (registry-api.md §1), and log each type and
        each field the first time these counters meet it: one line per type (or field) per run, since every run
        starts with new counters (the flows' run summaries carry the counts).

        Args:
            unknown: the counts of one answer (or one export).
            endpoint: the endpoint name, for the log (``changes``, ``lookup``, ``export``, ``batch``…).
        """
        if not unknown:
            return
        seen = self.unknown
        for name, n in sorted(unknown.types.items()):
            if not seen.types[name]:
                log.info("registry.unknown_type", type=name, endpoint=endpoint, items=n,
                         note="records of a type this client does not know: skipped and counted in the run's "
                              "summary (registry-api.md §1); logged once per run")
        for name, n in sorted(unknown.fields.items()):
            if not seen.fields[name]:
                log.info("registry.unknown_field", field=name, endpoint=endpoint, records=n,
                         note="a field this client does not know: ignored and counted in the run's summary "
                              "(registry-api.md §1); logged once per run")
        seen.add(unknown)
