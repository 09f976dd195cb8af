"""Field rules of registry-api.md v1.1's kinds in the sandbox: trainings (§4.6), training records (§4.7),
commendations (§4.8) and evaluations (§4.9), with the field codes of §7 (``INVALID_CLASS_HOURS``, ``INVALID_SCORE``,
``OUT_OF_RANGE`` …).

Pure, like :mod:`regsync.sandbox.rules`: :func:`validate` turns a write's body into clean wire fields plus a list of
:class:`~regsync.sandbox.rules.FieldError`; the rules that read other records (references, ``NOT_EARNED``,
duplicates, ownership) are :mod:`regsync.sandbox.operations11`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from regsync.sandbox.rules import (
    COMMON_READ_ONLY,
    CST,
    Field,
    FieldError,
    Invalid,
    check_contact_phone,
    check_date,
    check_region,
    check_registry_id,
    check_timestamp,
    enum_check,
    has_control_chars,
    parse_time,
    text_check,
)

#: The kinds of v1.1 (batch type names, §5.1).
KINDS11 = ("training", "trainingRecord", "commendation", "evaluation")
#: §4.8 tiers of the annual scheme: subjectType → tier → threshold (hundredths of an hour for volunteers,
#: a count of service records for orgs).
TIERS: dict[str, dict[str, int]] = {
    "VOLUNTEER": {"CARE": 5000, "BRONZE": 10000, "SILVER": 20000, "GOLD": 50000, "GOLD_EXCELLENCE": 100000},
    "ORG": {"HONOR": 50, "BRONZE": 100, "SILVER": 200, "GOLD": 500},
}
_CLASS_HOURS = re.compile(r"(\d{1,3})\.(\d{2})")
_LINE_TEXT_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def check_class_hours(value: Any, *, top: int = 20000) -> int:
    """培训学时 (§4.6, §4.7): a two-place decimal string, 0.50 to ``top`` hundredths (200.00 for a training, the
    training's own for a record), in steps of 0.50 → hundredths; else :class:`Invalid` ``INVALID_CLASS_HOURS``."""
    m = _CLASS_HOURS.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise Invalid("INVALID_CLASS_HOURS", 'class hours as a decimal string with two places, e.g. "2.50"')
    hundredths = int(m.group(1)) * 100 + int(m.group(2))
    if not 50 <= hundredths <= top:
        raise Invalid("INVALID_CLASS_HOURS", f"class hours must be between 0.50 and {top // 100}.{top % 100:02d}")
    if hundredths % 50:
        raise Invalid("INVALID_CLASS_HOURS", "class hours go in steps of 0.50")
    return hundredths


def format_class_hours(hundredths: int) -> str:
    """Hundredths → the wire's two-place string (``250`` → ``"2.50"``, §1)."""
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def line_text(max_len: int) -> Callable[[Any], str]:
    """A free text of at most ``max_len`` characters that may hold line breaks U+000A but no other control
    character, and no leading or trailing spaces (§4: a commendation's ``content``, an evaluation's ``comment``)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("INVALID_VALUE", "must be a string")
        if _LINE_TEXT_CONTROL.search(value) or has_control_chars(value.replace("\n", " ")):
            raise Invalid("INVALID_VALUE", "control characters other than line breaks are not allowed")
        if value != value.strip():
            raise Invalid("INVALID_VALUE", "no leading or trailing spaces")
        if not value:
            raise Invalid("REQUIRED", "empty: send null instead")
        if len(value) > max_len:
            raise Invalid("TOO_LONG", f"at most {max_len} characters")
        return value

    return check


def check_score(value: Any) -> int:
    """A score of §4.9: an integer 1 to 5, else :class:`Invalid` ``INVALID_SCORE``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise Invalid("INVALID_SCORE", "an integer from 1 to 5")
    return value


def _year(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= 9999:
        raise Invalid("INVALID_VALUE", "a calendar year, an integer")
    return value


_ID = Field(check_registry_id)

#: Writable fields per v1.1 kind, in wire order (§4.6–§4.9). ``status`` is handled apart.
WRITABLE11: dict[str, dict[str, Field]] = {
    "training": {
        "orgId": Field(check_registry_id, immutable=True),
        "title": Field(text_check(2, 100)),
        "trainingType": Field(enum_check("GENERAL", "POST", "PROFESSIONAL")),
        "mode": Field(enum_check("ONLINE", "IN_PERSON")),
        "regionCode": Field(check_region),
        "address": Field(text_check(2, 200), nullable=True),
        "startsAt": Field(check_timestamp),
        "endsAt": Field(check_timestamp),
        "classHours": Field(check_class_hours),
        "contactName": Field(text_check(1, 50)),
        "contactPhone": Field(check_contact_phone),
    },
    "trainingRecord": {
        "trainingId": _ID,
        "volunteerId": _ID,
        "completedOn": Field(check_date),
        "classHours": Field(check_class_hours),
        "result": Field(enum_check("PASSED", "ATTENDED")),
    },
    "commendation": {
        "subjectType": Field(enum_check("VOLUNTEER", "ORG"), immutable=True),
        "subjectId": Field(check_registry_id, immutable=True),
        "title": Field(text_check(2, 100)),
        "scheme": Field(enum_check("PROVINCIAL_ANNUAL"), nullable=True, immutable=True),
        "tier": Field(text_check(1, 20), nullable=True, immutable=True),
        "year": Field(_year, nullable=True, immutable=True),
        "awardedOn": Field(check_date),
        "issuer": Field(text_check(2, 100)),
        "documentName": Field(text_check(2, 100)),
        "documentNumber": Field(text_check(1, 50)),
        "content": Field(line_text(15000), nullable=True),
    },
    "evaluation": {
        "activityId": Field(check_registry_id, immutable=True),
        "volunteerId": Field(check_registry_id, immutable=True),
        "evaluatorOrgId": Field(check_registry_id, immutable=True),
        "punctuality": Field(check_score),
        "attitude": Field(check_score),
        "competence": Field(check_score),
        "comment": Field(line_text(500), nullable=True),
        "evaluatedOn": Field(check_date),
    },
}
#: Status values per kind and the create default (§4 "Status on create").
STATUSES11: dict[str, tuple[tuple[str, ...], str]] = {
    "training": (("SCHEDULED", "COMPLETED", "CANCELLED"), "SCHEDULED"),
    "trainingRecord": (("ACCEPTED", "REVOKED"), "ACCEPTED"),
    "commendation": (("ACTIVE", "REVOKED"), "ACTIVE"),
    "evaluation": (("ACTIVE", "REVOKED"), "ACTIVE"),
}
#: The status that ends a record of the kind (no PUT after it: 409 ``INVALID_STATE``).
ENDED11 = {"training": "CANCELLED", "trainingRecord": "REVOKED", "commendation": "REVOKED", "evaluation": "REVOKED"}
#: Derived read-only fields per kind (§4: ``revokeReason`` where ``:revoke`` sets it, ``correctsId``).
DERIVED11: dict[str, frozenset[str]] = {
    "training": frozenset(),
    "trainingRecord": frozenset({"revokeReason", "correctsId"}),
    "commendation": frozenset({"revokeReason"}),
    "evaluation": frozenset({"revokeReason"}),
}
DERIVED_DEFAULTS11: dict[str, dict[str, Any]] = {
    "trainingRecord": {"revokeReason": None, "correctsId": None},
    "commendation": {"revokeReason": None},
    "evaluation": {"revokeReason": None},
}


def validate(
    kind: str, body: dict[str, Any], *, current: dict[str, Any] | None, province: str, today: dt.date
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check a create (``current is None``) or a replace (``current`` = the stored wire record) of a v1.1 kind.

    Args:
        kind: one of :data:`KINDS11`.
        body: the decoded JSON object of the write.
        current: the record being replaced, or ``None`` on create.
        province: the calling client's 2-digit province (a training's ``regionCode`` lies in it).
        today: today's date in +08:00 (dates "not in the future").

    Returns:
        ``(fields, errors)``: the clean writable fields (``classHours`` in hundredths, timestamps in +08:00),
        ``status`` included and ``clientRef`` on create; and the field errors (§7), empty when valid. An immutable
        field left out of a replace keeps its value; repeated, it must be unchanged (else ``READ_ONLY_FIELD``).
    """
    spec = WRITABLE11[kind]
    errors: list[FieldError] = []
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name in spec or name == "status":
            continue
        if name == "clientRef":
            if current is None:
                if not (isinstance(value, str) and 1 <= len(value) <= 64) or has_control_chars(value):
                    errors.append(FieldError(name, "INVALID_VALUE", "a string of 1 to 64 characters"))
                else:
                    fields["clientRef"] = value
            elif value != current.get("clientRef"):
                errors.append(FieldError(name, "READ_ONLY_FIELD", "clientRef cannot change"))
        elif name in COMMON_READ_ONLY or name in DERIVED11[kind]:
            errors.append(FieldError(name, "READ_ONLY_FIELD", "a read-only field"))
        else:
            errors.append(FieldError(name, "UNKNOWN_FIELD", "not a field of this record"))
    for name, f in spec.items():
        if f.immutable and current is not None:
            if name in body and body[name] != current.get(name):
                errors.append(FieldError(name, "READ_ONLY_FIELD", f"{name} cannot change after creation"))
            fields[name] = current[name]
            continue
        value = body.get(name)
        if value is None:
            if f.nullable:
                fields[name] = None
            else:
                errors.append(FieldError(name, "REQUIRED", "a required field"))
            continue
        try:
            fields[name] = f.check(value)
        except Invalid as exc:
            errors.append(FieldError(name, exc.code, exc.message))
    allowed, default = STATUSES11[kind]
    status = body.get("status")
    if status is None:
        fields["status"] = default if current is None else current["status"]
    elif status not in allowed:
        errors.append(FieldError("status", "INVALID_VALUE", f"one of {', '.join(allowed)}"))
    else:
        fields["status"] = status
    _cross_checks(kind, fields, errors, current=current, province=province, today=today)
    return fields, errors


def _cross_checks(
    kind: str,
    f: dict[str, Any],
    errors: list[FieldError],
    *,
    current: dict[str, Any] | None,
    province: str,
    today: dt.date,
) -> None:
    bad = {e.field for e in errors}

    def err(field: str, code: str, message: str) -> None:
        errors.append(FieldError(field, code, message))
        bad.add(field)

    if kind == "training":
        if "regionCode" not in bad and f["regionCode"][:2] != province:
            err("regionCode", "INVALID_REGION", f"the region lies outside province {province}")
        if "mode" not in bad and "address" not in bad and f["mode"] == "IN_PERSON" and f["address"] is None:
            err("address", "REQUIRED", "an IN_PERSON training gives its address")
        if "startsAt" not in bad and "endsAt" not in bad:
            span = (parse_time(f["endsAt"]) - parse_time(f["startsAt"])).total_seconds()
            if span <= 0:
                err("endsAt", "INVALID_DATE", "endsAt must be after startsAt")
            elif "classHours" not in bad and f["classHours"] * 36 > span:
                err("classHours", "INVALID_CLASS_HOURS", "more class hours than the span from startsAt to endsAt")
        if current is None and f.get("status") == "CANCELLED":
            err("status", "INVALID_VALUE", "a training is created SCHEDULED or COMPLETED, never CANCELLED")
    elif kind == "trainingRecord":
        if f.get("status") == "REVOKED":
            err("status", "INVALID_VALUE", "a training record is created ACCEPTED")
        if "completedOn" not in bad and dt.date.fromisoformat(f["completedOn"]) > today:
            err("completedOn", "OUT_OF_RANGE", "in the future")
    elif kind == "commendation":
        _commendation_checks(f, bad, err, current=current, today=today)
    elif kind == "evaluation":
        if "evaluatedOn" not in bad and dt.date.fromisoformat(f["evaluatedOn"]) > today:
            err("evaluatedOn", "OUT_OF_RANGE", "in the future")
    if kind in ("commendation", "evaluation") and f.get("status") == "REVOKED" and (
        current is None or current["status"] != "REVOKED"
    ):
        err("status", "INVALID_VALUE", "revoking happens only through :revoke")


def _commendation_checks(
    f: dict[str, Any], bad: set[str], err: Callable[[str, str, str], None], *, current: Any, today: dt.date
) -> None:
    awarded = dt.date.fromisoformat(f["awardedOn"]) if "awardedOn" not in bad else None
    if awarded is not None and awarded > today:
        err("awardedOn", "OUT_OF_RANGE", "in the future")
        awarded = None
    if current is not None:  # scheme, tier, year are immutable: checked on create
        if awarded is not None and f["scheme"] and awarded.year <= f["year"]:
            err("awardedOn", "OUT_OF_RANGE", f"a commendation of {f['year']} is awarded after that year")
        return
    if "scheme" in bad or "subjectType" in bad:
        return
    if f["scheme"] is None:
        for name in ("tier", "year"):
            if name not in bad and f[name] is not None:
                err(name, "INVALID_VALUE", f"{name} goes with a scheme only: null without one")
        return
    tiers = TIERS[f["subjectType"]]
    if "tier" not in bad and f["tier"] is None:
        err("tier", "REQUIRED", f"a scheme commendation names its tier: one of {', '.join(tiers)}")
    elif "tier" not in bad and f["tier"] not in tiers:
        err("tier", "INVALID_VALUE", f"a tier of the {f['subjectType']} scheme: one of {', '.join(tiers)}")
    if "year" not in bad:
        if f["year"] is None:
            err("year", "REQUIRED", "a scheme commendation names the year it commends")
        elif f["year"] >= today.year:
            err("year", "OUT_OF_RANGE", f"a year before the current one ({today.year})")
        elif awarded is not None and awarded.year <= f["year"]:
            err("awardedOn", "OUT_OF_RANGE", f"a commendation of {f['year']} is awarded after that year")


def local_date(timestamp: str) -> str:
    """The +08:00 calendar date (``YYYY-MM-DD``) of an RFC 3339 timestamp (§4.7 ``completedOn``, §4.9)."""
    return parse_time(timestamp).astimezone(CST).date().isoformat()
