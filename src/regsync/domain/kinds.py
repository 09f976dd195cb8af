"""The kinds of record regsync exchanges, and the names people and commands give them.

A kind is regsync's own name (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``); the
registry's names are in :mod:`regsync.registry.wire`, the platform's tables in :mod:`regsync.db.models`.
"""

from __future__ import annotations

#: The kinds in the order creates are sent (a parent before what hangs on it; design.md, "The flows").
KINDS: tuple[str, ...] = ("org", "volunteer", "membership", "activity", "service_record")

#: Plural kind names, as in the summaries and the ``--kind`` options.
KIND_NAMES: dict[str, str] = {"org": "orgs", "volunteer": "volunteers", "membership": "memberships",
                              "activity": "activities", "service_record": "service_records"}

#: Names the commands accept for ``--kind`` → the kind.
KIND_ALIASES: dict[str, str] = {
    "orgs": "org", "org": "org", "volunteers": "volunteer", "volunteer": "volunteer",
    "memberships": "membership", "membership": "membership", "activities": "activity", "activity": "activity",
    "service_records": "service_record", "service-records": "service_record", "service_record": "service_record",
}
