"""The kinds of record regsync exchanges, and the names people and commands give them.

A kind is regsync's own name (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``, and with
registry-api.md v1.1 ``training``, ``training_record``, ``commendation``, ``evaluation``); the
registry's names are in :mod:`regsync.registry.wire`, the platform's tables in :mod:`regsync.db.models`.
"""

from __future__ import annotations

#: The kinds in the order creates are sent (a parent before what hangs on it; design.md, "The flows").
#: A training before its records; a commendation after its subject and the service records its scheme counts; an
#: evaluation after the activity's service records (registry-api.md §4.6–§4.9).
KINDS: tuple[str, ...] = ("org", "volunteer", "membership", "activity", "service_record", "training",
                          "training_record", "commendation", "evaluation")

#: The kinds of registry-api.md v1 (the five every release of regsync has synced).
V1_KINDS: tuple[str, ...] = KINDS[:5]

#: The kinds registry-api.md v1.1 adds (§4.6–§4.9).
V11_KINDS: tuple[str, ...] = KINDS[5:]

#: Plural kind names, as in the summaries and the ``--kind`` options.
KIND_NAMES: dict[str, str] = {"org": "orgs", "volunteer": "volunteers", "membership": "memberships",
                              "activity": "activities", "service_record": "service_records",
                              "training": "trainings", "training_record": "training_records",
                              "commendation": "commendations", "evaluation": "evaluations"}

#: Names the commands accept for ``--kind`` → the kind.
KIND_ALIASES: dict[str, str] = {
    "orgs": "org", "org": "org", "volunteers": "volunteer", "volunteer": "volunteer",
    "memberships": "membership", "membership": "membership", "activities": "activity", "activity": "activity",
    "service_records": "service_record", "service-records": "service_record", "service_record": "service_record",
    "trainings": "training", "training": "training", "training_records": "training_record",
    "training-records": "training_record", "training_record": "training_record",
    "commendations": "commendation", "commendation": "commendation", "evaluations": "evaluation",
    "evaluation": "evaluation",
}
