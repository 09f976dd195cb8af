"""The registry adapter: wire names, value formats and envelopes of registry-api.md, in one place.

Everything that knows a JSON field name, a collection path, a batch ``type`` or the envelope lives here;
the flows see Python names and regsync's own types only (:mod:`regsync.registry.types`):

=============== ======================================= ================================================
Python          regsync's type                          wire (registry-api.md §1)
=============== ======================================= ================================================
hours           ``int``, hundredths of an hour (250)    ``"2.50"``: a decimal string with two places
timestamps      naive :class:`~datetime.datetime`, UTC  RFC 3339, ``+08:00``, seconds:
                                                        ``"2026-11-29T08:00:00+08:00"``
dates           :class:`~datetime.date`                 ``"YYYY-MM-DD"``
lists           ``list[str]``                           JSON arrays
names           ``snake_case``                          ``lowerCamelCase``
=============== ======================================= ================================================

Where a deployment's registry differs on the wire, this module (and the signing in
:mod:`regsync.registry.signing`) is what changes.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote

from regsync.registry import errors as E
from regsync.registry.types import (
    KINDS,
    Change,
    ChangePage,
    FieldError,
    Kind,
    Operation,
    OperationResult,
    Unknowns,
)

#: The registry's wire time zone (China Standard Time, no daylight saving).
CST = dt.timezone(dt.timedelta(hours=8), "+08:00")

Conv = Literal["str", "int", "date", "datetime", "hours", "list", "any"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record: its Python and wire names, its value format, and whether a write omits it."""

    py: str
    wire: str
    conv: Conv = "str"
    read_only: bool = False


def _f(py: str, conv: Conv = "str", *, read_only: bool = False, wire: str | None = None) -> FieldSpec:
    if wire is None:
        head, *rest = py.split("_")
        wire = head + "".join(p.capitalize() for p in rest)
    return FieldSpec(py, wire, conv, read_only)


#: Common read-only fields of every record (registry-api.md §1).
COMMON_FIELDS: tuple[FieldSpec, ...] = (
    _f("id", read_only=True),
    _f("version", "int", read_only=True),
    _f("created_at", "datetime", read_only=True),
    _f("updated_at", "datetime", read_only=True),
    _f("client_ref", read_only=True),
    _f("owner_client_id", read_only=True),
)

#: The fields of each kind (registry-api.md §4), common ones included.
FIELDS: dict[Kind, tuple[FieldSpec, ...]] = {
    "org": (
        _f("name"),
        _f("org_type"),
        _f("level"),
        _f("parent_id"),
        _f("station_id"),
        _f("uscc"),
        _f("region_code"),
        _f("street_code"),
        _f("service_categories", "list"),
        _f("contact_name"),
        _f("contact_phone"),
        _f("established_on", "date"),
        _f("status"),
    ),
    "volunteer": (
        _f("name"),
        _f("id_type"),
        _f("id_number"),
        _f("gender"),
        _f("birth_date", "date"),
        _f("phone"),
        _f("region_code"),
        _f("skills", "list"),
        _f("home_province"),
        _f("status"),
        _f("total_hours", "hours", read_only=True),
        _f("star_level", "int", read_only=True),
        _f("training_hours", "hours", read_only=True),
    ),
    "membership": (
        _f("org_id"),
        _f("volunteer_id"),
        _f("joined_on", "date"),
        _f("left_on", "date"),
    ),
    "activity": (
        _f("org_id"),
        _f("title"),
        _f("category"),
        _f("region_code"),
        _f("starts_at", "datetime"),
        _f("ends_at", "datetime"),
        _f("planned_headcount", "int"),
        _f("status"),
    ),
    "service_record": (
        _f("volunteer_id"),
        _f("activity_id"),
        _f("org_id"),
        _f("station_id", read_only=True),
        _f("service_date", "date"),
        _f("starts_at", "datetime"),
        _f("ends_at", "datetime"),
        _f("hours", "hours"),
        _f("status"),
        _f("revoke_reason"),
        _f("corrects_id", read_only=True),
    ),
    # v1.1
    "training": (
        _f("org_id"),
        _f("title"),
        _f("training_type"),
        _f("mode"),
        _f("region_code"),
        _f("address"),
        _f("starts_at", "datetime"),
        _f("ends_at", "datetime"),
        _f("class_hours", "hours"),
        _f("contact_name"),
        _f("contact_phone"),
        _f("status"),
    ),
    "training_record": (
        _f("training_id"),
        _f("volunteer_id"),
        _f("completed_on", "date"),
        _f("class_hours", "hours"),
        _f("result"),
        _f("status"),
        _f("revoke_reason"),
        _f("corrects_id", read_only=True),
    ),
    # the subject (subjectType + subjectId on the wire) is one of two Python fields: see _SUBJECT
    "commendation": (
        _f("volunteer_id", wire="subjectVolunteerId"),
        _f("org_id", wire="subjectOrgId"),
        _f("title"),
        _f("scheme"),
        _f("tier"),
        _f("year", "int"),
        _f("awarded_on", "date"),
        _f("issuer"),
        _f("document_name"),
        _f("document_number"),
        _f("content"),
        _f("status"),
        _f("revoke_reason", read_only=True),
    ),
    "evaluation": (
        _f("activity_id"),
        _f("volunteer_id"),
        _f("evaluator_org_id"),
        _f("punctuality", "int"),
        _f("attitude", "int"),
        _f("competence", "int"),
        _f("comment"),
        _f("evaluated_on", "date"),
        _f("status"),
        _f("revoke_reason", read_only=True),
    ),
}

#: A commendation's subject (registry-api.md §4.8): ``subjectType`` + ``subjectId`` on the wire, and in Python one of
#: ``volunteer_id`` and ``org_id`` (as every other reference to a volunteer or an org), through the field names
#: these stand for in :data:`FIELDS` (``subjectVolunteerId``, ``subjectOrgId``), which never reach the wire.
_SUBJECT: dict[str, str] = {"VOLUNTEER": "subjectVolunteerId", "ORG": "subjectOrgId"}
_SUBJECT_TYPE: dict[str, str] = {v: k for k, v in _SUBJECT.items()}

_BY_PY: dict[Kind, dict[str, FieldSpec]] = {
    k: {s.py: s for s in COMMON_FIELDS + specs} for k, specs in FIELDS.items()
}
_BY_WIRE: dict[Kind, dict[str, FieldSpec]] = {
    k: {s.wire: s for s in COMMON_FIELDS + specs} for k, specs in FIELDS.items()
}
#: The wire names of each kind's fields, and ``type`` (a record's other fields are ones this client does not know).
_WIRE_NAMES: dict[Kind, frozenset[str]] = {k: frozenset(specs) | {"type"} for k, specs in _BY_WIRE.items()}
_WIRE_NAMES["commendation"] = (_WIRE_NAMES["commendation"] - set(_SUBJECT_TYPE)) | {"subjectType", "subjectId"}


def _from_wire(kind: Kind, wire: Mapping[str, Any]) -> Mapping[str, Any]:
    """A record as the registry sends it → the field names of :data:`FIELDS` (a commendation's subject, _SUBJECT).
    A subject of a type this client does not know is left as it is (counted as unknown fields)."""
    if kind != "commendation" or "subjectId" not in wire:
        return wire
    field = _SUBJECT.get(wire.get("subjectType"))  # type: ignore[arg-type]
    if field is None:
        return wire
    out = {k: v for k, v in wire.items() if k not in ("subjectType", "subjectId")}
    out[field] = wire["subjectId"]
    out[_SUBJECT["ORG" if field == _SUBJECT["VOLUNTEER"] else "VOLUNTEER"]] = None
    return out


def _to_wire(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """A body in the field names of :data:`FIELDS` → as the registry takes it (a commendation's subject)."""
    if kind != "commendation" or not (body.keys() & _SUBJECT_TYPE.keys()):
        return body
    out = {k: v for k, v in body.items() if k not in _SUBJECT_TYPE}
    for name, subject_type in _SUBJECT_TYPE.items():
        if body.get(name) is not None:
            out["subjectType"], out["subjectId"] = subject_type, body[name]
    return out

#: Collection of each kind in paths and exports (registry-api.md §4, §5.2; the last four v1.1). Memberships are written
#: under ``/orgs/{orgId}/members/{volunteerId}`` (:func:`membership_path`); ``memberships`` is their export.
COLLECTIONS: dict[Kind, str] = {
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

#: Batch/lookup/change-feed ``type`` of each kind (registry-api.md §5.1).
TYPES: dict[Kind, str] = {
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
KIND_OF_TYPE: dict[str, Kind] = {v: k for k, v in TYPES.items()}

#: Kinds a client creates with ``POST /{collection}`` (memberships are joined instead).
CREATABLE: frozenset[Kind] = frozenset({"org", "volunteer", "activity", "service_record", "training",
                                        "training_record", "commendation", "evaluation"})
#: Kinds corrected in one step with ``POST /{collection}/{id}:correct`` (registry-api.md §4.5, v1.1).
CORRECTABLE: frozenset[Kind] = frozenset({"service_record", "training_record"})
#: Kinds ended with ``POST /{collection}/{id}:revoke`` (registry-api.md §4.5, §4.7–§4.9).
REVOCABLE: frozenset[Kind] = frozenset({"service_record", "training_record", "commendation", "evaluation"})


def wire_name(kind: Kind, py: str) -> str:
    """The wire name of ``kind``'s Python field ``py``.

    Raises:
        KeyError: not a field of ``kind``.
    """
    return _BY_PY[kind][py].wire


def py_name(kind: Kind, wire: str) -> str | None:
    """The Python name of ``kind``'s wire field ``wire``, ``None`` when unknown."""
    spec = _BY_WIRE[kind].get(wire)
    return spec.py if spec else None


def _segment(value: str) -> str:
    """A registry id as a path segment (ids are opaque: encode anything outside RFC 3986 unreserved)."""
    return quote(value, safe="-._~")


def record_path(kind: Kind, registry_id: str | None = None) -> str:
    """``/{collection}`` or ``/{collection}/{id}``, relative to the base URL (registry-api.md §5)."""
    if kind == "membership":
        raise ValueError("memberships are addressed by their pair: use membership_path()")
    base = "/" + COLLECTIONS[kind]
    return base if registry_id is None else f"{base}/{_segment(registry_id)}"


def membership_path(org_id: str, volunteer_id: str) -> str:
    """``/orgs/{orgId}/members/{volunteerId}`` (registry-api.md §4.3)."""
    return f"/orgs/{_segment(org_id)}/members/{_segment(volunteer_id)}"


def revoke_path(registry_id: str, kind: Kind = "service_record") -> str:
    """``/{collection}/{id}:revoke`` (registry-api.md §4.5, §4.7–§4.9), e.g. ``/service-records/SR1:revoke``.

    Raises:
        ValueError: ``kind`` is not revoked (:data:`REVOCABLE`).
    """
    if kind not in REVOCABLE:
        raise ValueError(f"a {kind} is not revoked with :revoke (registry-api.md §4)")
    return f"/{COLLECTIONS[kind]}/{_segment(registry_id)}:revoke"


def correct_path(kind: Kind, registry_id: str) -> str:
    """``/{collection}/{id}:correct`` (registry-api.md §4.5, v1.1), e.g. ``/service-records/SR1:correct``.

    Raises:
        ValueError: ``kind`` is not corrected in one step (:data:`CORRECTABLE`).
    """
    if kind not in CORRECTABLE:
        raise ValueError(f"a {kind} is not corrected with :correct (registry-api.md §4.5)")
    return f"/{COLLECTIONS[kind]}/{_segment(registry_id)}:correct"


def export_path(kind: Kind) -> str:
    """``/exports/{collection}`` (registry-api.md §5.2)."""
    return f"/exports/{COLLECTIONS[kind]}"


# ------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------

_HOURS_RE = re.compile(r"-?\d+(\.\d{1,2})?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def encode_hours(hundredths: int) -> str:
    """Hours in hundredths → the wire's decimal string with two places: ``250`` → ``"2.50"`` (exact)."""
    if isinstance(hundredths, bool) or not isinstance(hundredths, int):
        raise TypeError(f"hours must be an int of hundredths, got {type(hundredths).__name__}")
    sign = "-" if hundredths < 0 else ""
    whole, frac = divmod(abs(hundredths), 100)
    return f"{sign}{whole}.{frac:02d}"


def decode_hours(value: str | int) -> int:
    """The wire's decimal hours → hundredths: ``"2.50"`` → ``250`` (exact, never via float).

    Accepts ``"2.5"`` and ``"2"`` too, and an integer number of whole hours.

    Raises:
        ValueError: not a decimal with at most two places (floats are refused: registry-api.md §1).
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"hours must be a decimal string, got {value!r}")
    if isinstance(value, int):
        return value * 100
    if not isinstance(value, str) or not _HOURS_RE.fullmatch(value):
        raise ValueError(f"hours must be a decimal string with two places, got {value!r}")
    try:
        scaled = Decimal(value) * 100
    except InvalidOperation as exc:  # pragma: no cover - the regex excludes it
        raise ValueError(f"invalid hours {value!r}") from exc
    return int(scaled)


def encode_datetime(value: dt.datetime) -> str:
    """A naive-UTC timestamp (or an aware one) → RFC 3339 in +08:00, to the second.

    ``datetime(2026, 11, 29, 0, 0)`` → ``"2026-11-29T08:00:00+08:00"``. Sub-second parts are dropped.
    """
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return aware.astimezone(CST).replace(microsecond=0).isoformat()


def parse_timestamp(value: str) -> dt.datetime:
    """An RFC 3339 timestamp with offset (``Z`` included) → an aware datetime.

    Raises:
        ValueError: not RFC 3339 or without an offset.
    """
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 timestamp without an offset: {value!r}")
    return parsed


def decode_datetime(value: str) -> dt.datetime:
    """RFC 3339 with offset → a naive-UTC datetime: ``"2026-11-29T08:00:00+08:00"`` → 2026-11-29 00:00."""
    return parse_timestamp(value).astimezone(dt.UTC).replace(tzinfo=None)


def encode_date(value: dt.date) -> str:
    """A date → ``YYYY-MM-DD``."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value.isoformat()


def decode_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` → a date.

    Raises:
        ValueError: another format.
    """
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return dt.date.fromisoformat(value)


def _encode_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    match spec.conv:
        case "hours":
            return encode_hours(value)
        case "datetime":
            return encode_datetime(value)
        case "date":
            return encode_date(value)
        case "list":
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise TypeError(f"{spec.py} must be a list, got {type(value).__name__}")
            return list(value)
        case "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{spec.py} must be an int, got {type(value).__name__}")
            return value
        case _:
            return value


def _decode_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    match spec.conv:
        case "hours":
            return decode_hours(value)
        case "datetime":
            return decode_datetime(value)
        case "date":
            return decode_date(value)
        case "list":
            return list(value)
        case _:
            return value


# ------------------------------------------------------------------------------------------------
# Records and operations
# ------------------------------------------------------------------------------------------------


def encode_body(kind: Kind, fields: Mapping[str, Any], *, client_ref: str | None = None) -> dict[str, Any]:
    """A write's body from Python fields (registry-api.md §4: writable fields only).

    Read-only and derived fields (``id``, ``version``, ``total_hours``, a service record's
    ``station_id``…) are left out, as the contract asks; ``client_ref`` is added when given (creates).

    Raises:
        ValueError: a name is not a field of ``kind`` (it would be refused with ``UNKNOWN_FIELD``).
        TypeError: a value has the wrong type (e.g. hours not an int, a date that is a datetime).
    """
    specs = _BY_PY[kind]
    body: dict[str, Any] = {}
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:
            raise ValueError(f"{name!r} is not a field of {kind}")
        if spec.read_only:
            continue
        body[spec.wire] = _encode_value(spec, value)
    if client_ref is not None:
        body["clientRef"] = client_ref
    return _to_wire(kind, body)


def decode_record(kind: Kind, wire: Mapping[str, Any], *, skip: frozenset[str] = frozenset(),
                  unknown: Unknowns | None = None) -> dict[str, Any]:
    """A record in wire names and formats → Python names and types (registry-api.md §1, §4).

    Unknown wire fields are dropped, never an error (registry-api.md §1: a newer registry adds some, such as
    v1.1's ``trainingHours``), and counted in ``unknown.fields`` as ``"<type>.<field>"`` when ``unknown`` is
    given; so are the wire names in ``skip`` dropped (a reader that does not need them, e.g. ``createdAt``,
    saves their parsing). Timestamps come back naive UTC, hours as hundredths, dates as
    :class:`~datetime.date`.

    Raises:
        ValueError: a value does not follow the contract's format.
    """
    specs = _BY_WIRE[kind]
    out: dict[str, Any] = {}
    for name, value in _from_wire(kind, wire).items():
        spec = specs.get(name)
        if spec is None:
            if unknown is not None and name != "type":
                unknown.fields[f"{TYPES[kind]}.{name}"] += 1
        elif name not in skip:
            out[spec.py] = _decode_value(spec, value)
    return out


def count_unknown_fields(kind: Kind, wire: Mapping[str, Any], unknown: Unknowns) -> None:
    """Count in ``unknown.fields`` the fields of the wire record ``wire`` that ``kind`` does not have, without
    decoding anything (for :class:`LazyRecord` readers; registry-api.md §1)."""
    known = _WIRE_NAMES[kind]
    if known.issuperset(wire):  # the common case, checked at C speed
        return
    prefix = TYPES[kind]
    for name in wire.keys() - known:
        unknown.fields[f"{prefix}.{name}"] += 1


def foreign_type(kind: Kind, wire: Mapping[str, Any]) -> str | None:
    """The ``type`` a lookup result or an export line names when it is not ``kind``'s, else ``None``.

    A record of v1 carries no ``type``; a registry that mixes records of several types in one answer (a type
    this client does not know, registry-api.md §1) names each one's. Such a record is skipped and counted,
    never decoded as a ``kind``. A ``type`` that is not a string is returned as its text.
    """
    named = wire.get("type")
    if named is None or named == TYPES[kind]:
        return None
    return named if isinstance(named, str) else repr(named)


class LazyRecord(Mapping[str, Any]):
    """A record read from the wire whose fields are decoded on first access (Python names, as
    :func:`decode_record`), for readers that look at few fields of most records (a reconcile compares ``id`` and
    ``version`` first). Read-only.

    Raises:
        ValueError: on access, a value that does not follow the contract's format.
    """

    __slots__ = ("_cache", "_wire", "kind")

    def __init__(self, kind: Kind, wire: Mapping[str, Any]) -> None:
        self.kind = kind
        self._wire = _from_wire(kind, wire)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, py: str) -> Any:
        try:
            return self._cache[py]
        except KeyError:
            pass
        spec = _BY_PY[self.kind].get(py)
        if spec is None or spec.wire not in self._wire:
            raise KeyError(py)
        value = self._cache[py] = _decode_value(spec, self._wire[spec.wire])
        return value

    def __iter__(self) -> Iterator[str]:
        specs = _BY_WIRE[self.kind]
        return (specs[w].py for w in self._wire if w in specs)

    def __len__(self) -> int:
        specs = _BY_WIRE[self.kind]
        return sum(1 for w in self._wire if w in specs)


def encode_operation(op: Operation) -> dict[str, Any]:
    """One operation of ``POST /batch`` (registry-api.md §5.1).

    ``create`` → ``{"op", "type", "idempotencyKey", "body": {…, "clientRef"}}``; ``update`` and ``delete``
    → with ``id`` and ``ifMatch`` (an int); ``revoke`` → ``id`` and ``body.reason``; ``correct`` (v1.1,
    §4.5) → ``id`` (the record corrected), ``idempotencyKey`` and ``body`` (the whole new record with its own
    ``clientRef``); ``join``/``leave`` → ``body`` with ``orgId``, ``volunteerId`` and ``joinedOn``/``leftOn``.

    Raises:
        ValueError: a required part is missing (a create or correct without ``idempotency_key`` or
            ``client_ref``, an update/delete without ``registry_id`` or ``if_match``, a correct of a kind not
            :data:`CORRECTABLE` or without ``registry_id``, a join/leave of another kind…).
    """
    out: dict[str, Any] = {"op": op.op, "type": TYPES[op.kind]}
    if op.op == "create":
        if op.kind not in CREATABLE:
            raise ValueError(f"a {op.kind} is not created: use join")
        if not op.idempotency_key or not op.client_ref:
            raise ValueError("a create needs idempotency_key and client_ref (registry-api.md §5.1)")
        out["body"] = encode_body(op.kind, op.fields, client_ref=op.client_ref)
    elif op.op in ("update", "delete"):
        if not op.registry_id or op.if_match is None:
            raise ValueError(f"an {op.op} needs registry_id and if_match (registry-api.md §5.1)")
        if op.op == "delete" and op.kind not in ("org", "volunteer"):
            raise ValueError(f"a {op.kind} is not deleted (registry-api.md §5.1)")
        out["id"] = op.registry_id
        out["ifMatch"] = int(op.if_match)
        if op.op == "update":
            out["body"] = encode_body(op.kind, op.fields)
    elif op.op == "correct":
        if op.kind not in CORRECTABLE or not op.registry_id:
            raise ValueError("correct applies to a service or training record with its registry_id "
                             "(registry-api.md §4.5)")
        if not op.idempotency_key or not op.client_ref:
            raise ValueError("a correct needs idempotency_key and client_ref (registry-api.md §4.5)")
        out["id"] = op.registry_id
        out["body"] = encode_body(op.kind, op.fields, client_ref=op.client_ref)
    elif op.op == "revoke":
        if op.kind not in REVOCABLE or not op.registry_id:
            raise ValueError("revoke applies to a revocable record with its registry_id (registry-api.md §5.1)")
        out["id"] = op.registry_id
        out["body"] = {"reason": op.fields.get("reason")}
    elif op.op in ("join", "leave"):
        if op.kind != "membership":
            raise ValueError(f"{op.op} applies to memberships only")
        date_field = "joined_on" if op.op == "join" else "left_on"
        body = {"orgId": op.fields["org_id"], "volunteerId": op.fields["volunteer_id"]}
        when = op.fields.get(date_field)
        if when is not None:
            body[wire_name("membership", date_field)] = encode_date(when)
        elif op.op == "join":
            raise ValueError("a join needs joined_on")
        out["body"] = body
    else:
        raise ValueError(f"unknown op {op.op!r}")
    if op.idempotency_key and "idempotencyKey" not in out:
        out["idempotencyKey"] = op.idempotency_key
    return out


_FIELD_PATH_RE = re.compile(r"^(?:body\.)?([A-Za-z_][A-Za-z0-9_]*)(.*)$")

#: The longest code (§7 code or field code) the adapter passes on. The contract's codes are short UPPER_SNAKE
#: names; one a newer registry adds may be any text (registry-api.md §1: a code a client does not know is a
#: refusal on the data): it is kept, cut to this length, so that it fits wherever a code is kept and shown (the
#: outbox's ``last_code``, summaries, logs).
MAX_CODE_LEN = 48
_CODE_JUNK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def decode_code(value: Any, default: str) -> str:
    """A code of the wire (an envelope's or a batch result's ``code``, a field error's ``code``) as the flows see
    it: its text without control characters and outer spaces, at most :data:`MAX_CODE_LEN` characters (a longer
    one is cut and ends in ``~``); ``default`` when there is none.

    ``"NOT_EARNED"`` → ``"NOT_EARNED"``; ``None`` or ``""`` → ``default``.
    """
    if value is None:
        return default
    code = _CODE_JUNK_RE.sub("", value if isinstance(value, str) else str(value)).strip()
    if not code:
        return default
    return code if len(code) <= MAX_CODE_LEN else code[: MAX_CODE_LEN - 1] + "~"


def decode_field_errors(kind: Kind | None, errors: Any) -> list[FieldError]:
    """``data.errors`` of a ``VALIDATION_FAILED`` → :class:`FieldError` with Python field names.

    A field path such as ``serviceCategories[2]`` keeps its suffix (``service_categories[2]``); a name
    this adapter does not know is kept as the registry gave it. A code this client does not know is kept as it
    is (:func:`decode_code`; registry-api.md §1: a refusal on the data like any other); an entry without one takes
    ``VALIDATION_FAILED``.
    """
    out: list[FieldError] = []
    if not isinstance(errors, list):
        return out
    for item in errors:
        if not isinstance(item, Mapping):
            continue
        name = str(item.get("field") or "")
        m = _FIELD_PATH_RE.match(name)
        if kind is not None and m:
            py = py_name(kind, m.group(1))
            if py is not None:
                name = py + m.group(2)
        out.append(FieldError(field=name, code=decode_code(item.get("code"), "VALIDATION_FAILED"),
                              message=str(item.get("message") or "")))
    return out


def decode_result(kind: Kind, wire_result: Mapping[str, Any], *, unknown: Unknowns | None = None
                  ) -> OperationResult:
    """One entry of ``data.results`` of ``POST /batch`` → :class:`OperationResult` (registry-api.md §5.1).

    A success's ``data`` (the record) is decoded into ``record``; ``DUPLICATE_*`` gives ``existingId`` as
    ``registry_id`` and ``ownerClientId`` as ``existing_owner``; ``VERSION_MISMATCH`` gives ``data.current``
    decoded as ``record`` (and its version); ``VALIDATION_FAILED`` gives ``data.errors`` as ``errors``. Fields
    of the record this client does not know are dropped and counted in ``unknown`` (registry-api.md §1).

    Raises:
        ValueError: the entry is not an object with an integer ``status``.
    """
    if not isinstance(wire_result, Mapping) or not isinstance(wire_result.get("status"), int):
        raise ValueError("a batch result needs an integer status")
    status = int(wire_result["status"])
    code = decode_code(wire_result.get("code"), "OK" if 200 <= status < 300 else "UNKNOWN")
    data = wire_result.get("data")
    result = OperationResult(
        status=status,
        code=code,
        registry_id=wire_result.get("id"),
        version=wire_result.get("version"),
        message=str(wire_result.get("message") or ""),
    )
    if not isinstance(data, Mapping):
        return result
    if 200 <= status < 300:
        result.record = decode_record(kind, data, unknown=unknown)
        result.registry_id = result.registry_id or result.record.get("id")
        if result.version is None:
            result.version = result.record.get("version")
    elif code.startswith("DUPLICATE_"):
        result.registry_id = data.get("existingId") or result.registry_id
        result.existing_owner = data.get("ownerClientId")
    elif code == "VERSION_MISMATCH" and isinstance(data.get("current"), Mapping):
        result.record = decode_record(kind, data["current"])
        result.registry_id = result.registry_id or result.record.get("id")
        result.version = result.record.get("version", result.version)
    elif code == "VALIDATION_FAILED":
        result.errors = decode_field_errors(kind, data.get("errors"))
    return result


def decode_change(wire: Mapping[str, Any]) -> Change:
    """One item of ``data.changes`` of ``GET /changes`` → :class:`Change` (registry-api.md §5.3).

    ``changed_at`` stays the registry's RFC 3339 string: it is on the registry's clock, never compared
    with the local one.

    Raises:
        ValueError: an unknown ``type`` or ``op``, or a missing field.
    """
    kind = KIND_OF_TYPE.get(str(wire.get("type")))
    if kind is None:
        raise ValueError(f"unknown record type in the change feed: {wire.get('type')!r}")
    op = wire.get("op")
    if op not in ("upsert", "delete"):
        raise ValueError(f"unknown change op {op!r}")
    try:
        return Change(
            seq=int(wire["seq"]),
            kind=kind,
            registry_id=str(wire["id"]),
            version=int(wire["version"]),
            op=op,
            changed_at=str(wire.get("changedAt") or ""),
            by_client_id=wire.get("byClientId"),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed change: missing or bad {exc}") from exc


#: The fields of a change-feed entry (registry-api.md §5.3).
_CHANGE_FIELDS = frozenset({"seq", "type", "id", "version", "op", "changedAt", "byClientId"})


def decode_change_page(data: Mapping[str, Any]) -> ChangePage:
    """``data`` of ``GET /changes`` → :class:`ChangePage`.

    Entries of a ``type`` this client does not know (v1.1's ``commendation``, ``training``…: registry-api.md §1)
    are skipped and counted by type in ``page.unknown.types``, whatever else they hold; the page's
    ``nextCursor`` moves past them like past any other. Fields of an entry this client does not know are
    ignored and counted as ``change.<field>``.

    Raises:
        ValueError: the page does not follow §5.3 (no list of changes or no cursor; an entry of a known type
            with a missing or bad ``seq``, ``id``, ``version`` or ``op``; an entry with no ``type`` at all).
    """
    changes = data.get("changes")
    cursor = data.get("nextCursor")
    if not isinstance(changes, list) or not isinstance(cursor, str):
        raise ValueError("a change page needs changes (list) and nextCursor (str)")
    unknown = Unknowns()
    known: list[Change] = []
    for item in changes:
        if not isinstance(item, Mapping):
            raise ValueError(f"a change is an object, got {type(item).__name__}")
        named = item.get("type")
        if isinstance(named, str) and named and named not in KIND_OF_TYPE:
            unknown.types[named] += 1
            continue
        extra = item.keys() - _CHANGE_FIELDS
        for name in extra:
            unknown.fields[f"change.{name}"] += 1
        known.append(decode_change(item))
    return ChangePage(changes=known, next_cursor=cursor, has_more=bool(data.get("hasMore")), unknown=unknown)


def list_records(data: Any) -> list[Any]:
    """The records of a list answer (``GET /{collection}?clientRef=…``).

    registry-api.md §5.2 says "a list of 0 or 1 record" without the shape of ``data``; §5.3 pages other
    lists with ``nextCursor``/``hasMore``. Accepted: ``data`` as a list, or an object holding the list in
    ``records`` (as ``/lookup`` does) or ``items``.

    Raises:
        ValueError: neither shape.
    """
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in ("records", "items"):
            if isinstance(data.get(key), list):
                return list(data[key])
    raise ValueError("a list answer needs data as a list or data.records")


# ------------------------------------------------------------------------------------------------
# Envelopes, errors and headers
# ------------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, date_header: str | None) -> float | None:
    """``Retry-After`` in seconds (registry-api.md §1, RFC 9110 §10.2.3).

    Whole seconds are taken as they are. An HTTP-date is on the registry's clock, so it is read against the
    same answer's ``Date`` header, never the local clock; without a usable ``Date`` it gives ``None``
    (the caller backs off instead). A date in the past gives ``0``.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    if not date_header:
        return None
    try:
        until = email.utils.parsedate_to_datetime(value)
        now = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if until.tzinfo is None or now.tzinfo is None:
        # RFC 9110 HTTP-dates are GMT; parsedate gives naive for "-0000".
        until, now = until.replace(tzinfo=dt.UTC), now.replace(tzinfo=dt.UTC)
    return max(0.0, (until - now).total_seconds())


def is_envelope(body: Any) -> bool:
    """Whether a parsed JSON body is the registry's envelope (``{"code": str, …}``, registry-api.md §1)."""
    return isinstance(body, Mapping) and isinstance(body.get("code"), str)


def error_from_answer(
    status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    kind: Kind | None = None,
) -> E.RegistryError:
    """The typed error of a failed answer (registry-api.md §1, §7).

    Args:
        status: the HTTP status.
        body: the parsed JSON body, or ``None`` when the body was not JSON (a gateway's page).
        retry_after: the answer's ``Retry-After`` in seconds (:func:`parse_retry_after`).
        kind: the record kind the call was about, to decode ``data.current`` and field names.

    Returns:
        For the registry's envelope: the class of its ``code`` (:func:`regsync.registry.errors.error_class`)
        with its data decoded. For anything else (the gateway's): 413 → :class:`BodyTooLarge`; 503 with
        ``Retry-After`` → :class:`Maintenance`; otherwise :class:`GatewayError` (transient: a page of the
        gateway is never a verdict on the data).
    """
    if not is_envelope(body):
        if status == 413:
            return E.BodyTooLarge(
                "the gateway refused the body as too large", status=status, from_gateway=True
            )
        if status == 503 and retry_after is not None:
            return E.Maintenance(status=status, retry_after=retry_after, from_gateway=True)
        if status in (404, 405):
            return E.EndpointNotFound(
                f"the registry's address answered {status} with a page of its own: no such endpoint there; "
                "check REGSYNC_REGISTRY_URL (scheme, host, port and base path, e.g. …/api/v1)",
                status=status, from_gateway=True)
        return E.GatewayError(
            f"the gateway answered {status} with a page of its own", status=status, retry_after=retry_after
        )
    code = decode_code(body["code"], "UNKNOWN")
    data = body.get("data")
    cls = E.error_class(status, code)
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": body.get("requestId"), "data": data}
    message = body.get("message") or None
    if issubclass(cls, E.TransientError):
        kw["retry_after"] = retry_after
    if isinstance(data, Mapping):
        if issubclass(cls, E.Duplicate):
            kw.update(existing_id=data.get("existingId"), owner=data.get("ownerClientId"))
        elif (
            issubclass(cls, E.VersionMismatch)
            and kind is not None
            and isinstance(data.get("current"), Mapping)
        ):
            try:
                kw["current"] = decode_record(kind, data["current"])
            except ValueError:
                kw["current"] = None
        elif issubclass(cls, E.ValidationFailed):
            kw["errors"] = decode_field_errors(kind, data.get("errors"))
        elif issubclass(cls, E.TimestampSkew) and isinstance(data.get("serverTime"), str):
            try:
                kw["server_time"] = parse_timestamp(data["serverTime"])
            except ValueError:
                pass
    return cls(message, **kw)


def oauth_error(status: int, body: Any) -> E.RegistryError:
    """The typed error of a failed ``POST /oauth/token`` (RFC 6749 §5.2; registry-api.md §2).

    ``invalid_client`` → :class:`InvalidClient`; another ``error`` → :class:`OAuthError`; a 5xx or a body
    that is not OAuth's JSON → the transient errors of :func:`error_from_answer`.
    """
    if isinstance(body, Mapping) and isinstance(body.get("error"), str) and status < 500:
        code = body["error"]
        message = body.get("error_description") or None
        cls = E.InvalidClient if code == "invalid_client" else E.OAuthError
        return cls(message, status=status, code=code)
    if is_envelope(body) or body is None or status >= 500:
        return error_from_answer(status, body if is_envelope(body) else None)
    return E.OAuthError(f"the token endpoint answered {status}", status=status)


__all__ = [
    "COLLECTIONS",
    "COMMON_FIELDS",
    "CORRECTABLE",
    "CREATABLE",
    "CST",
    "FIELDS",
    "FieldSpec",
    "KINDS",
    "KIND_OF_TYPE",
    "MAX_CODE_LEN",
    "REVOCABLE",
    "TYPES",
    "correct_path",
    "count_unknown_fields",
    "decode_change",
    "decode_change_page",
    "decode_code",
    "decode_date",
    "decode_datetime",
    "decode_field_errors",
    "decode_hours",
    "decode_record",
    "decode_result",
    "encode_body",
    "encode_date",
    "encode_datetime",
    "encode_hours",
    "encode_operation",
    "error_from_answer",
    "export_path",
    "foreign_type",
    "is_envelope",
    "list_records",
    "membership_path",
    "oauth_error",
    "parse_retry_after",
    "parse_timestamp",
    "py_name",
    "record_path",
    "revoke_path",
    "wire_name",
]
