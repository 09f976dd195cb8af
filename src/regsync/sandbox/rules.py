"""Field rules of the sandbox registry (registry-api.md §4, field codes of §7).

The sandbox validates on its **own** reading of the contract, not with :mod:`regsync.domain.normalize`, so that a
misreading shared by the client and the sandbox cannot pass unnoticed. ID numbers and USCCs are checked with
python-stdnum (:mod:`stdnum.cn.ric` check character — *not* ``ric.validate``, which checks the county list of
the birth year, which the registry does not; the birth date is read from characters 7–14 as
``ric.get_birth_date`` reads it; :mod:`stdnum.cn.uscc`).

Everything here is pure: :func:`validate` turns a write's body into clean wire fields plus a list of
:class:`FieldError`; the checks that need other records (parents, uniqueness, ownership) live in
:mod:`regsync.sandbox.operations`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stdnum.cn import ric, uscc

from regsync.sandbox.regions import PROVINCE_PREFIXES, is_region_code

CST = dt.timezone(dt.timedelta(hours=8), "+08:00")

#: §4.1 levels: level → (orgType, parent level or None).
ORG_LEVELS: dict[str, tuple[str, str | None]] = {
    "CITY_CORPS": ("REGIONAL", None),
    "DISTRICT_BRIGADE": ("REGIONAL", "CITY_CORPS"),
    "STREET_STATION": ("REGIONAL", "DISTRICT_BRIGADE"),
    "COMMUNITY_STATION": ("REGIONAL", "STREET_STATION"),
    "PROVINCIAL_CORPS": ("SPECIALIZED", None),
    "CITY_DETACHMENT": ("SPECIALIZED", "PROVINCIAL_CORPS"),
    "COUNTY_UNIT": ("SPECIALIZED", "CITY_DETACHMENT"),
    "GRASSROOTS_TEAM": ("SPECIALIZED", "COUNTY_UNIT"),
}
#: §6 service categories.
CATEGORIES = frozenset(
    "COMMUNITY POVERTY_RELIEF ELDERLY_DISABLED CHILDREN EDUCATION HEALTH EMERGENCY CULTURE ENVIRONMENT "
    "LEGAL CIVILITY BLOOD_DONATION ANTI_DRUG EVENTS OTHER".split()
)
ID_TYPES = ("RESIDENT_ID", "HMT_RESIDENCE_PERMIT", "HMT_TRAVEL_PERMIT", "PASSPORT", "FOREIGN_PERMANENT_ID")
EIGHTEEN_CHAR_TYPES = frozenset({"RESIDENT_ID", "HMT_RESIDENCE_PERMIT"})
#: Star thresholds of §4.2 in hundredths of an hour, highest first.
STAR_THRESHOLDS = ((150000, 5), (100000, 4), (60000, 3), (30000, 2), (10000, 1))

#: Fields every record carries and no write may set (§1, §4).
COMMON_READ_ONLY = frozenset({"id", "version", "createdAt", "updatedAt", "ownerClientId"})

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")
_HOURS = re.compile(r"(\d{1,2})\.(\d{2})")
_ID18 = re.compile(r"\d{17}[\dXx]")
_ID15 = re.compile(r"\d{15}")
_DOC_NUMBER = re.compile(r"[A-Za-z0-9]{5,32}")
_USCC = re.compile(r"[0-9A-HJ-NP-RTUWXY]{18}")
_STREET = re.compile(r"\d{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME_DOTS = {0x2022: "\u00b7", 0xFF0E: "\u00b7"}

# CJK ideograph blocks (BMP and the supplementary ideographic plane extensions B–I), and 〇.
_CJK_RANGES = (
    (0x3007, 0x3007),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EE5F),
    (0x2F800, 0x2FA1F),
    (0x30000, 0x323AF),
)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of ``data.errors`` of a 422 ``VALIDATION_FAILED`` (registry-api.md §7)."""

    field: str
    code: str
    message: str

    def as_wire(self) -> dict[str, str]:
        """The wire shape ``{"field", "code", "message"}``."""
        return {"field": self.field, "code": self.code, "message": self.message}


class Invalid(Exception):
    """A field value breaks a rule; carries the §7 field code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------- formatting


def format_hours(hundredths: int) -> str:
    """Hundredths of an hour → the wire's two-place decimal string (``250`` → ``"2.50"``, §1)."""
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def star_level(total_hundredths: int) -> int:
    """星级 from total hours in hundredths (§4.2): 1 ★ ≥ 100 h … 5 ★ ≥ 1500 h, else 0."""
    for threshold, stars in STAR_THRESHOLDS:
        if total_hundredths >= threshold:
            return stars
    return 0


def format_time(epoch_s: float) -> str:
    """Unix seconds → RFC 3339 in +08:00, second precision (``2026-11-29T08:00:00+08:00``, §1)."""
    return dt.datetime.fromtimestamp(int(epoch_s), CST).isoformat()


def parse_time(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp with offset and second precision (§1) into an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------------------ checkers


def has_control_chars(value: str) -> bool:
    """Whether ``value`` holds a control character (registry-api.md §4: "Text fields carry no control
    characters"): the C0 and C1 controls (Unicode category ``Cc``) and the format controls that do not print
    (category ``Cf``: zero-width space, ZWJ/ZWNJ, BOM, soft hyphen, bidi marks and embeddings…), which Unicode
    calls format control characters."""
    if _CONTROL.search(value):
        return True
    return not value.isascii() and any(unicodedata.category(ch) == "Cf" for ch in value)


def text_check(min_len: int, max_len: int) -> Callable[[Any], str]:
    """The check of a text field of ``min_len`` to ``max_len`` characters (§4: a string, no control characters,
    no leading or trailing spaces): a function that returns the value as it is, or raises :class:`Invalid`
    (``INVALID_VALUE``, ``REQUIRED`` when empty, ``TOO_SHORT``, ``TOO_LONG``)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("INVALID_VALUE", "must be a string")
        if has_control_chars(value):
            raise Invalid("INVALID_VALUE", "control characters are not allowed")
        if value != value.strip():
            raise Invalid("INVALID_VALUE", "no leading or trailing spaces")
        if len(value) < min_len:
            raise Invalid("REQUIRED" if not value else "TOO_SHORT", f"at least {min_len} characters")
        if len(value) > max_len:
            raise Invalid("TOO_LONG", f"at most {max_len} characters")
        return value

    return check


def enum_check(*allowed: str) -> Callable[[Any], str]:
    """A checker of a code field (§4): the value is one of ``allowed`` and is returned as it is; else
    :class:`Invalid` ``INVALID_VALUE`` naming them."""

    def check(value: Any) -> str:
        if value not in allowed:
            raise Invalid("INVALID_VALUE", f"one of {', '.join(allowed)}")
        return value

    return check


def check_registry_id(value: Any) -> str:
    """A registry id: a non-empty string of at most 32 characters (§1)."""
    if not isinstance(value, str) or not value or len(value) > 32:
        raise Invalid("INVALID_VALUE", "a registry id (≤ 32 characters)")
    return value


def check_date(value: Any) -> str:
    """A ``YYYY-MM-DD`` calendar date (§1); returned as given."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid("INVALID_DATE", "a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid("INVALID_DATE", "not a calendar date") from None
    return value


def check_timestamp(value: Any) -> str:
    """An RFC 3339 timestamp with an offset and second precision (§1); returned in +08:00."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise Invalid("INVALID_DATE", "an RFC 3339 timestamp with offset, second precision")
    try:
        parsed = parse_time(value)
    except ValueError:
        raise Invalid("INVALID_DATE", "not a valid timestamp") from None
    return parsed.astimezone(CST).isoformat()


def check_hours(value: Any) -> int:
    """A two-place decimal string of hours (§4.5) → hundredths; range and step checked here."""
    m = _HOURS.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise Invalid("INVALID_HOURS", 'hours as a decimal string with two places, e.g. "2.50"')
    hundredths = int(m.group(1)) * 100 + int(m.group(2))
    if not 50 <= hundredths <= 2400:
        raise Invalid("INVALID_HOURS", "hours must be between 0.50 and 24.00")
    if hundredths % 25:
        raise Invalid("INVALID_HOURS", "hours go in steps of 0.25")
    return hundredths


def check_mobile(value: Any) -> str:
    r"""A mainland mobile number ``1[3-9]\d{9}`` (§4.2)."""
    if not isinstance(value, str) or not _MOBILE.fullmatch(value):
        raise Invalid("INVALID_PHONE", "a mainland mobile number, 11 digits")
    return value


def check_contact_phone(value: Any) -> str:
    r"""A mainland mobile or a landline ``0\d{2,3}-?\d{7,8}`` (§4.1 ``contactPhone``)."""
    if not isinstance(value, str) or not (_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value)):
        raise Invalid("INVALID_PHONE", "a mainland mobile or landline number")
    return value


def check_uscc(value: Any) -> str:
    """A 统一社会信用代码 of GB 32100-2015 with a correct check character (§4.1)."""
    if not isinstance(value, str) or not _USCC.fullmatch(value):
        raise Invalid("INVALID_USCC", "18 characters of the GB 32100-2015 alphabet, upper case")
    try:
        uscc.validate(value)
    except Exception:  # noqa: BLE001 - any stdnum ValidationError
        raise Invalid("INVALID_USCC", "the check character does not match") from None
    return value


def is_cjk(cp: int) -> bool:
    """Whether the code point ``cp`` is a CJK ideograph: the unified block, its extensions and compatibility
    ideographs (:data:`_CJK_RANGES`), or 〇."""
    if 0x4E00 <= cp <= 0x9FFF:
        return True
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_latin_letter(ch: str) -> bool:
    if "A" <= ch <= "Z" or "a" <= ch <= "z":
        return True
    return ord(ch) >= 0xC0 and ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def check_person_name(value: Any) -> str:
    """A person's name (§4.2), normalized and checked.

    ``•``/``．`` → ``·``, NFKC, then only CJK ideographs (non-BMP included), Latin letters, single inner
    spaces and ``·`` between parts. Returns the normalized name, which is what
    the registry stores.
    """
    if not isinstance(value, str):
        raise Invalid("INVALID_NAME", "must be a string")
    name = unicodedata.normalize("NFKC", value.translate(_NAME_DOTS))
    if not name:
        raise Invalid("REQUIRED", "the name is empty")
    if len(name) > 50:
        raise Invalid("TOO_LONG", "at most 50 characters")
    if name != name.strip(" "):
        raise Invalid("INVALID_NAME", "no leading or trailing spaces")
    if name[0] == "\u00b7" or name[-1] == "\u00b7":
        raise Invalid("INVALID_NAME", "a middle dot may not begin or end a name")
    prev = ""
    for ch in name:
        if ch == "\u00b7":
            if prev in ("\u00b7", " "):
                raise Invalid("INVALID_NAME", "a middle dot stands alone between two parts")
        elif ch == " ":
            if prev in (" ", "\u00b7"):
                raise Invalid("INVALID_NAME", "single spaces between parts only")
        elif not (is_cjk(ord(ch)) or _is_latin_letter(ch)):
            raise Invalid("INVALID_NAME", f"character U+{ord(ch):04X} is not allowed in a name")
        prev = ch
    return name


def check_id_number(id_type: str, value: Any, today: dt.date) -> str:
    """An ID document number (§4.2), checked; returned as stored.

    For the 18-character types: GB 11643-1999 check character, a real
    birth date not in the future, a known province prefix; ``x`` stored as ``X``; 15 digits refused with
    ``ID_NUMBER_LEGACY``. The area code is not checked against any county list.
    """
    if not isinstance(value, str) or not value:
        raise Invalid("INVALID_ID_NUMBER", "must be a non-empty string")
    if id_type not in EIGHTEEN_CHAR_TYPES:
        if not _DOC_NUMBER.fullmatch(value):
            raise Invalid("INVALID_ID_NUMBER", "5–32 letters or digits")
        return value
    if _ID15.fullmatch(value):
        raise Invalid("ID_NUMBER_LEGACY", "a 15-digit number: convert it to 18 characters")
    if not _ID18.fullmatch(value):
        raise Invalid("INVALID_ID_NUMBER", "18 characters: 17 digits and a check character")
    number = value.upper()
    if ric.calc_check_digit(number) != number[-1]:
        raise Invalid("INVALID_ID_NUMBER", "the check character does not match")
    if number[:2] not in PROVINCE_PREFIXES:
        raise Invalid("INVALID_ID_NUMBER", "unknown province prefix")
    try:  # ric.get_birth_date without its clean-up pass: the number is 17 digits and a check character already
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise Invalid("INVALID_ID_NUMBER", "the birth date is not a calendar date") from None
    if born > today or born.year < 1880:
        raise Invalid("INVALID_ID_NUMBER", "the birth date is not plausible")
    return number


def _categories(value: Any) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= 5:
        raise Invalid("INVALID_CATEGORY", "a list of 1 to 5 service categories")
    for item in value:
        if item not in CATEGORIES:
            raise Invalid("INVALID_CATEGORY", f"unknown service category {item!r}")
    if len(set(value)) != len(value):
        raise Invalid("INVALID_CATEGORY", "a category is listed twice")
    return list(value)


def _category(value: Any) -> str:
    if value not in CATEGORIES:
        raise Invalid("INVALID_CATEGORY", "a service category of §6")
    return value


def _skills(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 10:
        raise Invalid("INVALID_VALUE", "a list of at most 10 skills")
    return [_skill(item) for item in value]


_skill = text_check(1, 20)


def _positive_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Invalid("INVALID_VALUE", "an integer ≥ 1")
    return value


def check_province(value: Any) -> str:
    """A two-digit GB/T 2260 province code (not ``83``), returned as it is; else :class:`Invalid`
    (``INVALID_REGION``)."""
    if value not in PROVINCE_PREFIXES or value == "83":
        raise Invalid("INVALID_REGION", "a 2-digit GB/T 2260 province code")
    return value


def check_region(value: Any) -> str:
    """A GB/T 2260 county-level or higher region code (§4.1 ``regionCode``), returned as it is; else
    :class:`Invalid` ``INVALID_REGION``."""
    if not is_region_code(value):
        raise Invalid("INVALID_REGION", "a GB/T 2260 county-level or higher code")
    return value


# ------------------------------------------------------------------------------------------------ the kinds


@dataclass(frozen=True, slots=True)
class Field:
    """One writable field: its checker, whether it may be null/omitted, and whether it is immutable."""

    check: Callable[[Any], Any]
    nullable: bool = False
    immutable: bool = False


_ID = Field(check_registry_id)
_NULL_ID = Field(check_registry_id, nullable=True)

#: Writable fields per kind, in wire order (§4). ``status`` is handled apart (defaults on create).
WRITABLE: dict[str, dict[str, Field]] = {
    "org": {
        "name": Field(text_check(2, 100)),
        "orgType": Field(enum_check("REGIONAL", "SPECIALIZED"), immutable=True),
        "level": Field(enum_check(*ORG_LEVELS), immutable=True),
        "parentId": _NULL_ID,
        "stationId": _NULL_ID,
        "uscc": Field(check_uscc, nullable=True),
        "regionCode": Field(check_region),
        "streetCode": Field(lambda v: _match(_STREET, v, "12 digits (统计用区划代码)"), nullable=True),
        "serviceCategories": Field(_categories),
        "contactName": Field(text_check(1, 50)),
        "contactPhone": Field(check_contact_phone),
        "establishedOn": Field(check_date),
    },
    "volunteer": {
        "name": Field(check_person_name),
        "idType": Field(enum_check(*ID_TYPES)),
        "idNumber": Field(lambda v: v),  # checked with idType below
        "gender": Field(enum_check("M", "F")),
        "birthDate": Field(check_date),
        "phone": Field(check_mobile, nullable=True),
        "regionCode": Field(check_region),
        "skills": Field(_skills),
        "homeProvince": Field(check_province),
    },
    "membership": {
        "orgId": Field(check_registry_id, immutable=True),
        "volunteerId": Field(check_registry_id, immutable=True),
        "joinedOn": Field(check_date),
        "leftOn": Field(check_date, nullable=True),
    },
    "activity": {
        "orgId": _ID,
        "title": Field(text_check(2, 100)),
        "category": Field(_category),
        "regionCode": Field(check_region),
        "startsAt": Field(check_timestamp),
        "endsAt": Field(check_timestamp),
        "plannedHeadcount": Field(_positive_int),
    },
    "serviceRecord": {
        "volunteerId": _ID,
        "activityId": _ID,
        "orgId": _ID,
        "serviceDate": Field(check_date),
        "startsAt": Field(check_timestamp),
        "endsAt": Field(check_timestamp),
        "hours": Field(check_hours),
    },
}

#: Status values per kind, the create default, and the ended statuses reached only through DELETE/revoke.
STATUSES: dict[str, tuple[tuple[str, ...], str, frozenset[str]]] = {
    "org": (("ACTIVE", "SUSPENDED", "DISSOLVED"), "ACTIVE", frozenset({"DISSOLVED"})),
    "volunteer": (("ACTIVE", "DEREGISTERED"), "ACTIVE", frozenset({"DEREGISTERED"})),
    "activity": (("PUBLISHED", "CANCELLED", "COMPLETED"), "PUBLISHED", frozenset()),
    "serviceRecord": (("ACCEPTED", "REVOKED"), "ACCEPTED", frozenset({"REVOKED"})),
}
#: Derived read-only fields per kind (§4).
DERIVED: dict[str, frozenset[str]] = {
    "volunteer": frozenset({"totalHours", "starLevel", "trainingHours"}),
    "serviceRecord": frozenset({"stationId", "revokeReason", "correctsId"}),
}


def _match(pattern: re.Pattern[str], value: Any, message: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise Invalid("INVALID_VALUE", message)
    return value


def validate(
    kind: str,
    body: dict[str, Any],
    *,
    current: dict[str, Any] | None,
    province: str,
    today: dt.date,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check a create (``current is None``) or a replace (``current`` = the stored wire record) (§4, §5.1).

    Args:
        kind: ``org``, ``volunteer``, ``activity``, ``serviceRecord`` or ``membership``.
        body: the decoded JSON object of the write.
        current: the record being replaced, or ``None`` on create.
        province: the calling client's 2-digit province (orgs' and activities' ``regionCode`` lie in it).
        today: today's date in +08:00 (dates "not in the future").

    Returns:
        ``(fields, errors)``: the clean writable fields in wire names (``hours`` as hundredths, names
        normalized, ``x`` → ``X``, timestamps in +08:00) including ``status``; and the field errors, empty
        when the write is valid. ``clientRef`` is returned under ``clientRef`` when present on create.
    """
    spec = WRITABLE[kind]
    errors: list[FieldError] = []
    fields: dict[str, Any] = {}
    derived = DERIVED.get(kind, frozenset())
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
        elif name in COMMON_READ_ONLY or name in derived:
            errors.append(FieldError(name, "READ_ONLY_FIELD", "a read-only field"))
        else:
            errors.append(FieldError(name, "UNKNOWN_FIELD", "not a field of this record"))
    for name, f in spec.items():
        value = body.get(name)
        if value is None:
            if f.nullable:
                fields[name] = None
            elif f.immutable and current is not None and name not in body:
                fields[name] = current[name]
            else:
                errors.append(FieldError(name, "REQUIRED", "a required field"))
            continue
        if f.immutable and current is not None:
            if value != current.get(name):
                errors.append(FieldError(name, "READ_ONLY_FIELD", f"{name} cannot change after creation"))
            fields[name] = current[name]
            continue
        try:
            fields[name] = f.check(value)
        except Invalid as exc:
            errors.append(FieldError(name, exc.code, exc.message))
    if kind in STATUSES:
        allowed, default, _ended = STATUSES[kind]
        status = body.get("status")
        if status is None:
            fields["status"] = default if current is None else current["status"]
        elif status not in allowed:
            errors.append(FieldError("status", "INVALID_VALUE", f"one of {', '.join(allowed)}"))
        else:
            fields["status"] = status
    _cross_checks(kind, body, fields, errors, province=province, today=today)
    return fields, errors


def _cross_checks(
    kind: str,
    body: dict[str, Any],
    f: dict[str, Any],
    errors: list[FieldError],
    *,
    province: str,
    today: dt.date,
) -> None:
    bad = {e.field for e in errors}

    def err(field: str, code: str, message: str) -> None:
        errors.append(FieldError(field, code, message))
        bad.add(field)

    if kind == "org":
        level, org_type = f.get("level"), f.get("orgType")
        if level and org_type and ORG_LEVELS[level][0] != org_type:
            err("level", "INVALID_VALUE", f"{level} belongs to the {ORG_LEVELS[level][0]} line")
        if level and "parentId" not in bad:
            top = ORG_LEVELS[level][1] is None
            if top and f["parentId"] is not None:
                err("parentId", "PARENT_LEVEL_MISMATCH", f"{level} is a top level: parentId must be null")
            elif not top and f["parentId"] is None:
                err("parentId", "REQUIRED", f"{level} needs a parent")
        if level and "stationId" not in bad:
            if level == "GRASSROOTS_TEAM" and f["stationId"] is None:
                err("stationId", "REQUIRED", "a grassroots team names its community station")
            elif level != "GRASSROOTS_TEAM" and f["stationId"] is not None:
                err("stationId", "INVALID_VALUE", "only a GRASSROOTS_TEAM has a stationId")
        if level in ("CITY_CORPS", "PROVINCIAL_CORPS") and "uscc" not in bad and f["uscc"] is None:
            err("uscc", "REQUIRED", f"a {level} needs its USCC")
        if level and "streetCode" not in bad and f["streetCode"] is not None:
            if level not in ("STREET_STATION", "COMMUNITY_STATION"):
                err("streetCode", "INVALID_VALUE", "only street and community stations have a streetCode")
            elif "regionCode" not in bad and f["streetCode"][:2] != f["regionCode"][:2]:
                err("streetCode", "INVALID_REGION", "the street code lies in another province")
        if "regionCode" not in bad and f["regionCode"][:2] != province:
            err("regionCode", "INVALID_REGION", f"the region lies outside province {province}")
        if "establishedOn" not in bad and dt.date.fromisoformat(f["establishedOn"]) > today:
            err("establishedOn", "INVALID_DATE", "in the future")
    elif kind == "volunteer":
        id_type = f.get("idType")
        if id_type and "idNumber" not in bad:
            try:
                f["idNumber"] = check_id_number(id_type, body["idNumber"], today)
            except Invalid as exc:
                err("idNumber", exc.code, exc.message)
        if "birthDate" not in bad and dt.date.fromisoformat(f["birthDate"]) > today:
            err("birthDate", "INVALID_DATE", "in the future")
        if id_type in EIGHTEEN_CHAR_TYPES and "idNumber" not in bad:
            number = f["idNumber"]
            if "birthDate" not in bad and f["birthDate"].replace("-", "") != number[6:14]:
                err("birthDate", "ID_BIRTHDATE_MISMATCH", "does not match characters 7–14 of the ID number")
            if "gender" not in bad and ("M" if int(number[16]) % 2 else "F") != f["gender"]:
                err("gender", "ID_GENDER_MISMATCH", "does not match the parity of the 17th character")
    elif kind == "membership":
        if f.get("leftOn") and "joinedOn" not in bad and "leftOn" not in bad and f["leftOn"] < f["joinedOn"]:
            err("leftOn", "INVALID_DATE", "before joinedOn")
    elif kind in ("activity", "serviceRecord"):
        if kind == "activity" and "regionCode" not in bad and f["regionCode"][:2] != province:
            err("regionCode", "INVALID_REGION", f"the region lies outside province {province}")
        if "startsAt" not in bad and "endsAt" not in bad:
            span = parse_time(f["endsAt"]) - parse_time(f["startsAt"])
            if span.total_seconds() <= 0:
                err("endsAt", "INVALID_DATE", "endsAt must be after startsAt")
            elif kind == "serviceRecord" and "hours" not in bad and f["hours"] * 36 > span.total_seconds():
                err("hours", "INVALID_HOURS", "more hours than the span from startsAt to endsAt")
