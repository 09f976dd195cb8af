"""Records as the registry holds them (registry-api.md §1, §4), written for seeding the sandbox.

The seeder (:mod:`regsync.generate.seed`) sends the sandbox's admin endpoint ``POST /_sandbox/records/{collection}``
records in the registry's own form. It writes them here from the contract, not with the registry client's wire
module: the generator uses the store and the domain, never the client (the house plan in ``pyproject.toml``).
``tests/generate/test_registry_docs.py`` checks that both write the same document for the same fields.

The contract's forms: names in ``lowerCamelCase`` of regsync's ``snake_case`` (``birth_date`` → ``birthDate``),
dates ``YYYY-MM-DD``, timestamps RFC 3339 in ``+08:00`` to the second, hours a decimal string with two places
(``"2.50"``), lists JSON arrays; a commendation's subject (regsync's ``volunteer_id`` or ``org_id``) as
``subjectType`` and ``subjectId`` (§4.8).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

#: The collection of each kind in the registry's paths (registry-api.md §4, §5.2), and so in the admin endpoint's.
COLLECTIONS: dict[str, str] = {
    "org": "orgs",
    "volunteer": "volunteers",
    "membership": "memberships",
    "activity": "activities",
    "service_record": "service-records",
    "training": "trainings",
    "training_record": "training-records",
    "commendation": "commendations",
    "evaluation": "evaluations",
}

#: The batch ``type`` of each kind (registry-api.md §5.1): the sandbox's own name of a kind.
TYPES: dict[str, str] = {
    "org": "org",
    "volunteer": "volunteer",
    "membership": "membership",
    "activity": "activity",
    "service_record": "serviceRecord",
    "training": "training",
    "training_record": "trainingRecord",
    "commendation": "commendation",
    "evaluation": "evaluation",
}

#: The registry's time zone on the wire (China Standard Time, no daylight saving).
_CST = dt.timezone(dt.timedelta(hours=8))
#: Fields in hundredths of an hour (an int here), a decimal string on the wire.
_HOURS = frozenset({"hours", "total_hours", "class_hours", "training_hours"})
#: A commendation's subject (registry-api.md §4.8): regsync's field → the wire's ``subjectType``.
_SUBJECTS = {"volunteer_id": "VOLUNTEER", "org_id": "ORG"}


def wire_name(name: str) -> str:
    """The registry's name of a field: ``snake_case`` → ``lowerCamelCase`` (``service_date`` → ``serviceDate``)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def format_hours(hundredths: int) -> str:
    """Hours in hundredths → the registry's decimal string with two places: ``250`` → ``"2.50"`` (exact)."""
    sign = "-" if hundredths < 0 else ""
    whole, frac = divmod(abs(hundredths), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_time(value: dt.datetime) -> str:
    """A timestamp (naive: UTC) → RFC 3339 in ``+08:00``, to the second.

    ``datetime(2026, 11, 29, 0, 0)`` → ``"2026-11-29T08:00:00+08:00"``; sub-second parts are dropped.
    """
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return aware.astimezone(_CST).replace(microsecond=0).isoformat()


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _HOURS:
        return format_hours(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return list(value)
    return value


def record_doc(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A record's document from synced fields as :func:`regsync.domain.projection.project_local` gives them.

    Args:
        fields: ``snake_case`` names → regsync's values (hours as int hundredths, dates, naive-UTC datetimes,
            lists).

    Returns:
        The same fields under their registry names and in the registry's forms, in the same order; for a
        commendation (its fields hold ``scheme`` and ``volunteer_id`` or ``org_id``), the subject as
        ``subjectType`` and ``subjectId`` after the others (§4.8).
    """
    if "scheme" in fields and fields.keys() & _SUBJECTS.keys():  # a commendation
        doc = {wire_name(name): _value(name, value) for name, value in fields.items() if name not in _SUBJECTS}
        for name, subject_type in _SUBJECTS.items():
            if fields.get(name) is not None:
                doc["subjectType"], doc["subjectId"] = subject_type, fields[name]
        return doc
    return {wire_name(name): _value(name, value) for name, value in fields.items()}
