"""Local records as the registry should hold them, and the canonical form both sides are compared in.

:func:`project_local` turns a local row into the synced fields of its registry record (Python names,
regsync's types, references as registry ids), normalized as the standards allow (:mod:`regsync.domain.normalize`).
:func:`project_registry` takes the same fields from a decoded registry record. :func:`canonical` makes either
comparable and storable as a link's base snapshot: JSON-safe values (dates and times as ISO strings at second
precision, hours as integer hundredths, strings NFKC without the format characters that do not print), and
personal values (ID numbers, phones) replaced by keyed hashes (design.md, "Personal data").
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson

from regsync.domain.masking import keyed_hash
from regsync.domain.normalize import (
    NormalizationError,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    normalize_text,
    normalize_uscc,
    strip_format_chars,
)
from regsync.domain.unmapped import find_unmapped

#: The synced fields of each kind, in Python names (registry-api.md §4), as sent on a create.
FIELDS: dict[str, tuple[str, ...]] = {
    "org": ("name", "org_type", "level", "parent_id", "station_id", "uscc", "region_code", "street_code",
            "service_categories", "contact_name", "contact_phone", "established_on", "status"),
    "volunteer": ("name", "id_type", "id_number", "gender", "birth_date", "phone", "region_code", "skills",
                  "home_province", "status"),
    "membership": ("org_id", "volunteer_id", "joined_on", "left_on"),
    "activity": ("org_id", "title", "category", "region_code", "starts_at", "ends_at", "planned_headcount",
                 "status"),
    "service_record": ("volunteer_id", "activity_id", "org_id", "service_date", "starts_at", "ends_at", "hours",
                       "status"),
    # v1.1 (§4.6–§4.9)
    "training": ("org_id", "title", "training_type", "mode", "region_code", "address", "starts_at", "ends_at",
                 "class_hours", "contact_name", "contact_phone", "status"),
    "training_record": ("training_id", "volunteer_id", "completed_on", "class_hours", "result", "status"),
    # the subject is ``volunteer_id`` or ``org_id`` (the wire's subjectType and subjectId, regsync.registry.wire)
    "commendation": ("volunteer_id", "org_id", "title", "scheme", "tier", "year", "awarded_on", "issuer",
                     "document_name", "document_number", "content", "status"),
    "evaluation": ("activity_id", "volunteer_id", "evaluator_org_id", "punctuality", "attitude", "competence",
                   "comment", "evaluated_on", "status"),
}

#: Fields holding personal data: kept only as keyed hashes in base snapshots.
SENSITIVE: frozenset[str] = frozenset({"id_number", "phone", "contact_phone"})

#: Reference fields: local column → the kind it refers to.
REFERENCES: dict[str, dict[str, str]] = {
    "org": {"parent_id": "org", "station_id": "org"},
    "volunteer": {},
    "membership": {"org_id": "org", "volunteer_id": "volunteer"},
    "activity": {"org_id": "org"},
    "service_record": {"volunteer_id": "volunteer", "activity_id": "activity", "org_id": "org"},
    "training": {"org_id": "org"},
    "training_record": {"training_id": "training", "volunteer_id": "volunteer"},
    "commendation": {"volunteer_id": "volunteer", "org_id": "org"},
    "evaluation": {"activity_id": "activity", "volunteer_id": "volunteer", "evaluator_org_id": "org"},
}

#: Fields a write never changes once the record exists (registry-api.md §4.6–§4.9: a training's org, a
#: commendation's subject and scheme, an evaluation's activity, volunteer and evaluator); a local change of one is
#: another record.
IMMUTABLE: dict[str, frozenset[str]] = {
    "training": frozenset({"org_id"}),
    "commendation": frozenset({"volunteer_id", "org_id", "scheme", "tier", "year"}),
    "evaluation": frozenset({"activity_id", "volunteer_id", "evaluator_org_id"}),
}

#: Status values that end a record (registry-api.md §4): an ended record is not revived.
ENDED = {"org": "DISSOLVED", "volunteer": "DEREGISTERED", "activity": "CANCELLED", "service_record": "REVOKED",
         "training": "CANCELLED", "training_record": "REVOKED", "commendation": "REVOKED", "evaluation": "REVOKED"}

#: Kinds ended with ``:revoke`` (registry-api.md §4.5, §4.7–§4.9), not by a PUT nor a DELETE.
REVOCABLE: frozenset[str] = frozenset({"service_record", "training_record", "commendation", "evaluation"})

#: Kinds immutable once accepted, whose edit is a correction (``:correct``, registry-api.md §4.5, v1.1).
IMMUTABLE_RECORDS: frozenset[str] = frozenset({"service_record", "training_record"})


#: The Python type each synced field must have once read from the local store (hours: int hundredths).
_DATES = {"established_on", "birth_date", "joined_on", "left_on", "service_date", "completed_on", "awarded_on",
          "evaluated_on"}
_TIMES = {"starts_at", "ends_at"}
_INTS = {"hours", "planned_headcount", "class_hours", "year", "punctuality", "attitude", "competence"}
_EIGHTEEN = {"RESIDENT_ID", "HMT_RESIDENCE_PERMIT"}


def _json_list(value: Any, name: str) -> list[str]:
    """A JSON array of strings stored as text; raises ``ValueError`` with a plain message otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        parsed = value
    else:
        try:
            parsed = orjson.loads(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a JSON list of strings, got {str(value)[:40]!r}") from None
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ValueError(f"{name} must be a JSON list of strings")
    return parsed


def _check_types(kind: str, out: dict[str, Any]) -> None:
    for name, value in out.items():
        if value is None:
            continue
        if name in _DATES and not (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
            raise ValueError(f"{name} must be a date, got {str(value)[:40]!r}")
        if name in _TIMES and not isinstance(value, dt.datetime):
            raise ValueError(f"{name} must be a timestamp, got {str(value)[:40]!r}")
        if name in _INTS and (not isinstance(value, int) or isinstance(value, bool)):
            unit = " (hundredths of an hour)" if name in ("hours", "class_hours") else ""
            raise ValueError(f"{name} must be a whole number{unit}, got {str(value)[:40]!r}")


def _fix(fn: Any, raw: Any, *args: Any, **kw: Any) -> Any:
    """Apply a normalizer; on a value no standard can fix, keep the raw value (trimmed) so the registry
    answers with its own field error."""
    try:
        return fn(raw, *args, **kw)
    except NormalizationError:
        return raw.strip() if isinstance(raw, str) else raw


def project_local(kind: str, row: Mapping[str, Any], refs: Mapping[tuple[str, int], str]) -> dict[str, Any]:
    """The registry record a local row should be, as far as the synced fields go.

    Args:
        kind: one of :data:`regsync.domain.kinds.KINDS`.
        row: the local row (column → value).
        refs: (kind, local id) → registry id, for the row's references. A reference missing from it is
            left as ``None``; the caller decides whether the record must wait.

    Returns:
        Python-named fields with normalized values; lists as lists; hours as integer hundredths.

    Raises:
        regsync.domain.unmapped.UnmappedValue: a mapped platform's value that its mapping does not map (code
            ``UNMAPPED_VALUE``, issue 14): the record fails alone.
        ValueError: a value of the row is not of its field's type (a date, a whole number, a JSON list of
            strings…), with a message an operator can act on.
    """
    unmapped = find_unmapped({name: row.get(name) for name in FIELDS[kind]})
    if unmapped is not None:
        raise unmapped
    out: dict[str, Any] = {}
    ref_fields = REFERENCES[kind]
    for name in FIELDS[kind]:
        value = row.get(name)
        if name in ref_fields:
            out[name] = None if value is None else refs.get((ref_fields[name], value))
            continue
        out[name] = value
    if kind == "volunteer":
        out["name"] = _fix(normalize_name, row["name"])
        norm = row.get("id_number_norm")
        if norm and row["id_number"] == norm and row["id_type"] in _EIGHTEEN:
            out["id_number"] = norm  # stored already in its normalized form (the normalizer's own output)
        else:
            try:
                out["id_number"] = normalize_id_number(row["id_type"], row["id_number"])
            except NormalizationError:
                out["id_number"] = (row["id_number"] or "").strip()
        out["phone"] = _fix(normalize_phone, row.get("phone"))
        out["skills"] = [normalize_text(s) for s in _json_list(row.get("skills"), "skills")]
    elif kind == "org":
        out["name"] = normalize_text(row["name"])
        out["uscc"] = normalize_uscc(row.get("uscc"))
        out["contact_phone"] = _fix(normalize_phone, row.get("contact_phone"), field="contact_phone",
                                    landline_ok=True)
        out["contact_name"] = normalize_text(row.get("contact_name"))
        out["service_categories"] = _json_list(row.get("service_categories"), "service_categories")
    elif kind in ("activity", "training", "commendation"):
        out["title"] = normalize_text(row["title"])
        if kind == "training":
            out["contact_name"] = normalize_text(row.get("contact_name"))
            out["contact_phone"] = _fix(normalize_phone, row.get("contact_phone"), field="contact_phone",
                                        landline_ok=True)
            out["address"] = normalize_text(row.get("address"))
        elif kind == "commendation":
            for name in ("issuer", "document_name", "document_number"):
                out[name] = normalize_text(row.get(name))
    _check_types(kind, out)
    return out


#: The registry's required text fields per kind (registry-api.md §4: not nullable; a value empty on the wire is
#: refused ``REQUIRED``, §7).
REQUIRED_TEXT: dict[str, tuple[str, ...]] = {
    "volunteer": ("name",), "org": ("name", "contact_name"), "activity": ("title",),
    "training": ("title", "contact_name"), "commendation": ("title", "issuer", "document_name", "document_number")}


def check_required_text(kind: str, row: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
    """Fail a record whose required text field is empty once cleaned, before it is sent (design.md, "Local dirt
    that no standard lets a client fix fails that record with a clear reason").

    A name pasted as nothing but characters that do not print (``U+200B U+200B``) is empty once they are removed
    (:func:`regsync.domain.normalize.strip_format_chars`); sent as it is, the registry would refuse the character, which an
    operator reads as "the cleaning did not work".

    Args:
        kind: the outbox entity.
        row: the local row (column → value).
        desired: :func:`project_local` of the row.

    Raises:
        NormalizationError: code ``REQUIRED`` (the registry's code for a missing required field, registry-api.md
            §7), naming the field, when a required text field (:data:`REQUIRED_TEXT`) of the row holds text that
            is empty once characters that do not print and surrounding spaces are removed.
    """
    for name in REQUIRED_TEXT.get(kind, ()):
        raw = row.get(name)
        if not isinstance(raw, str) or raw == "":
            continue  # absent: the registry's own REQUIRED answer names it
        if not strip_format_chars(unicodedata.normalize("NFKC", raw)).strip() or not (desired.get(name) or "").strip():
            raise NormalizationError(name, "REQUIRED", f"{name} is empty once characters that do not print "
                                                       "(and surrounding spaces) are removed")


def project_registry(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The synced fields of a decoded registry record (Python names), for comparison and base snapshots."""
    return {name: record.get(name) for name in FIELDS[kind]}


def _canon_value(value: Any) -> Any:
    if value is None or type(value) is int:
        return value
    if type(value) is str:
        return _nfkc(value).strip() if not value.isascii() else value.strip()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _nfkc(value).strip()
    if isinstance(value, list | tuple):
        return sorted(_canon_value(v) for v in value)
    return value


def _nfkc(value: str) -> str:
    """NFKC without the characters that do not print (:func:`regsync.domain.normalize.strip_format_chars`): a value
    that differs only by a zero-width space or a bidi mark is the same value (design.md, "Normalization")."""
    return strip_format_chars(unicodedata.normalize("NFKC", value))


def canonical(fields: Mapping[str, Any], hash_key: str) -> dict[str, Any]:
    """The canonical, storable form of synced fields: NFKC strings without format characters (``Cf``), ISO
    dates, UTC times at second precision, lists as sorted lists, and keyed hashes in place of personal values."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        kind = type(value)
        if kind is str:  # the common cases inline (a comparison of millions of records calls this per record)
            value = value.strip() if value.isascii() else _nfkc(value).strip()
        elif value is not None and kind is not int:
            value = _canon_value(value)
        if value is not None and name in SENSITIVE:
            value = keyed_hash(hash_key, str(value))
        out[name] = value
    return out


def changed_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The names whose canonical values differ between two canonical snapshots."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


#: The fields that say which real-world record a registry record is: the natural keys adopt matches by
#: (design.md, flow 4; :mod:`regsync.flows.adopt`): volunteers by ID type and number, orgs by USCC, memberships by the
#: pair, activities by (org, title, start), service records by (volunteer, activity, start).
IDENTITY: dict[str, tuple[str, ...]] = {
    "org": ("uscc",),
    "volunteer": ("id_type", "id_number"),
    "membership": ("org_id", "volunteer_id"),
    "activity": ("org_id", "title", "starts_at"),
    "service_record": ("volunteer_id", "activity_id", "starts_at"),
    # v1.1 (issue 16): a training by org, title and start; a training record by training and volunteer; a
    # commendation by subject, title and date (or, with a scheme, subject, scheme and year: _SCHEME_COMMENDATION);
    # an evaluation by activity and volunteer
    "training": ("org_id", "title", "starts_at"),
    "training_record": ("training_id", "volunteer_id"),
    "commendation": ("volunteer_id", "org_id", "title", "awarded_on"),
    "evaluation": ("activity_id", "volunteer_id"),
}

#: What names a commendation of a scheme (registry-api.md §4.8: one ACTIVE per subject, scheme and year).
_SCHEME_COMMENDATION = ("volunteer_id", "org_id", "scheme", "year")


#: What names an org when neither side has a USCC (design.md, flow 4: level, name and region).
_ORG_WITHOUT_USCC = ("level", "name", "region_code")


def identity_of(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``fields`` that :func:`identity_mismatch` reads (those present), e.g. to make canonical only
    them."""
    names = IDENTITY[kind] + (_ORG_WITHOUT_USCC if kind == "org" else ()) + (
        _SCHEME_COMMENDATION if kind == "commendation" else ())
    return {n: fields[n] for n in names if n in fields}


def identity_mismatch(kind: str, local: Mapping[str, Any], registry: Mapping[str, Any]) -> list[str]:
    """The identity fields (:data:`IDENTITY`) in which a local record's canonical state and a registry record's
    differ: ``[]`` when the registry record is this local record.

    Used before a record found under this client's own ``clientRef`` is linked (``DUPLICATE_CLIENT_REF``,
    ``GET ?clientRef=``, registry-api.md §5.1–§5.2). The ``clientRef`` is the local id (design.md, flow 1), so a
    second or rebuilt local store under the same credentials meets the refs of another store's records; linking
    one would push one person's data over another's record.

    Args:
        kind: the record kind.
        local: the local record's canonical snapshot (:func:`canonical`), or at least its identity fields.
        registry: the registry record's, in the same form and under the same key.
    """
    names = IDENTITY[kind]
    if kind == "org" and not (local.get("uscc") or registry.get("uscc")):
        names = _ORG_WITHOUT_USCC
    elif kind == "commendation" and (local.get("scheme") or registry.get("scheme")):
        names = _SCHEME_COMMENDATION
    return [n for n in names if local.get(n) != registry.get(n)]


def dumps(snapshot: Mapping[str, Any]) -> str:
    """Serialize a canonical snapshot (stable key order, UTF-8 as is)."""
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS).decode()
