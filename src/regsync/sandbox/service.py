"""The registry's rules over the store: writes (§4, §5.1), reads (§5.2), the change feed (§5.3), exports.

Every write operation — alone or inside a ``POST /batch`` — is a function of a :class:`~regsync.sandbox.store.
UnitOfWork` returning an :class:`Outcome` (the HTTP status, the §7 code, the message and ``data``); a refusal
is raised as :class:`Refusal` before the operation changes anything, so the operations of a batch apply
independently. :class:`Registry` wraps them with transactions and idempotency keys (§5.1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, select

from regsync.sandbox import rules
from regsync.sandbox.rules import CST, FieldError, format_hours, format_time, star_level
from regsync.sandbox.store import (
    COLLECTIONS,
    TABLES,
    ClientCredential,
    Record,
    Store,
    UnitOfWork,
    changes,
    clients,
    counters,
    foreign,
    idempotency,
    nonces,
    ref_key,
    select_in,
)

PORTAL = "PORTAL"
IDEMPOTENCY_TTL_S = 24 * 3600
NONCE_TTL_S = 600
#: Statuses whose answers an idempotency key keeps (§5.1: calls carried out).
KEPT_STATUSES = frozenset({200, 201, 403, 404, 409, 412, 422})
#: Wire field order of each kind (§4), common fields first.
COMMON_FIELDS = ("id", "version", "createdAt", "updatedAt", "clientRef", "ownerClientId")
DERIVED_DEFAULTS: dict[str, dict[str, Any]] = {
    "volunteer": {"totalHours": "0.00", "starLevel": 0},
    "serviceRecord": {"stationId": None, "revokeReason": None, "correctsId": None},
}
#: What an ended record's ``op`` in the feed is: endings are ``delete`` (records are never erased).
ENDED = {"org": "DISSOLVED", "volunteer": "DEREGISTERED", "serviceRecord": "REVOKED"}
#: The columns of a kept answer (§5.1), as :meth:`Registry._kept` reads them.
_IDEM_NAMES = tuple(c.name for c in idempotency.columns)


@dataclass(slots=True)
class Outcome:
    """The answer to one operation: HTTP status, §7 code, message, ``data`` (a record or error data)."""

    status: int
    code: str = "OK"
    message: str = ""
    data: Any = None
    replayed: bool = False

    def envelope(self, request_id: str) -> dict[str, Any]:
        """The §1 envelope ``{code, message, requestId, data}``."""
        return {"code": self.code, "message": self.message, "requestId": request_id, "data": self.data}

    def op_result(self, target_id: str | None = None) -> dict[str, Any]:
        """One ``data.results`` item of a batch (§5.1): ``{status, code, message, id?, version?, data?}``."""
        result: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if 200 <= self.status < 300 and isinstance(self.data, dict) and "id" in self.data:
            result["id"] = self.data["id"]
            result["version"] = self.data["version"]
        elif target_id is not None:
            result["id"] = target_id
        if self.data is not None:
            result["data"] = self.data
        if self.replayed:
            result["replayed"] = True
        return result

    @classmethod
    def from_stored(cls, status: int, body: bytes) -> Outcome:
        """Rebuild from a kept answer (an envelope's bytes)."""
        env = orjson.loads(body)
        return cls(status, env["code"], env.get("message", ""), env.get("data"), replayed=True)


class Refusal(Exception):
    """An operation refused with an :class:`Outcome` (nothing was changed)."""

    def __init__(self, status: int, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.outcome = Outcome(status, code, message, data)


def invalid(errors: list[FieldError]) -> Refusal:
    """422 ``VALIDATION_FAILED`` with ``data.errors`` (§7)."""
    return Refusal(
        422,
        "VALIDATION_FAILED",
        "the record breaks the registry's rules",
        {"errors": [e.as_wire() for e in errors]},
    )


def fingerprint(op: str, kind: str | None, target: Any, if_match: Any, body: Any) -> str:
    """The hash an idempotency key is bound to (§5.1): the operation, its target and its body."""
    payload = orjson.dumps([op, kind, target, if_match, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


@dataclass(slots=True)
class Ctx:
    """Who acts and when.

    The client (or ``PORTAL``), its province, the registry's clock (Unix seconds); ``today`` (+08:00)
    and ``stamp`` (RFC 3339, +08:00) are derived from ``now`` once.
    """

    client_id: str
    province: str | None
    now: float
    today: dt.date = dt.date.min
    stamp: str = ""

    def __post_init__(self) -> None:
        self.today = dt.datetime.fromtimestamp(self.now, CST).date()
        self.stamp = format_time(self.now)


# ------------------------------------------------------------------------------------------------ helpers


def _new_doc(u: UnitOfWork, c: Ctx, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": u.new_id(kind),
        "version": 1,
        "createdAt": c.stamp,
        "updatedAt": c.stamp,
        "clientRef": fields.pop("clientRef", None),
        "ownerClientId": c.client_id,
    }
    for name in rules.WRITABLE[kind]:
        doc[name] = fields[name]
    if kind in rules.STATUSES:
        doc["status"] = fields["status"]
    doc.update(DERIVED_DEFAULTS.get(kind, {}))
    if kind == "serviceRecord":
        doc["hours"] = format_hours(fields["hours"])
    return doc


def _bump(c: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
    new = dict(doc)
    new["version"] = doc["version"] + 1
    new["updatedAt"] = c.stamp
    return new


def _province_of(u: UnitOfWork, kind: str, doc: dict[str, Any]) -> str:
    """A record's province (§1 "scope")."""
    if kind in ("org", "activity"):
        return doc["regionCode"][:2]
    if kind == "volunteer":
        return doc["homeProvince"]
    org = u.get("org", doc["orgId"])
    return org.province if org else "00"


def _owns(c: Ctx, rec: Record) -> bool:
    """Whether the actor may write ``rec`` (§1 "ownership").

    Orgs and memberships of the province, volunteers of the home province, and the
    activities and service records the client created.
    """
    if c.client_id == PORTAL:
        return True
    if rec.kind in ("org", "volunteer", "membership"):
        return rec.province == c.province
    return rec.doc["ownerClientId"] == c.client_id


def _not_owner(rec: Record | None = None, message: str | None = None) -> Refusal:
    return Refusal(
        403,
        "NOT_OWNER",
        message or "the record is outside this client's scope",
        {"id": rec.id} if rec else None,
    )


def _check_if_match(rec: Record, if_match: Any) -> None:
    if if_match is None:
        raise Refusal(428, "PRECONDITION_REQUIRED", "send If-Match with the version the write is based on")
    if if_match != rec.doc["version"]:
        raise Refusal(
            412, "VERSION_MISMATCH", f"the record is at version {rec.doc['version']}", {"current": rec.doc}
        )


def _ref_error(field: str, code: str, message: str) -> FieldError:
    return FieldError(field, code, message)


def _set_hours(u: UnitOfWork, c: Ctx, volunteer_id: str, delta: int, by: str) -> None:
    """Add ``delta`` hundredths to a volunteer's derived ``totalHours`` (and ``starLevel``).

    It makes a new version and a change in the feed (§1: derived fields bump the version).
    """
    vol = u.get("volunteer", volunteer_id)
    if vol is None or delta == 0:
        return
    total = int(vol.doc["totalHours"].replace(".", "")) + delta
    doc = _bump(c, vol.doc)
    doc["totalHours"] = format_hours(total)
    doc["starLevel"] = star_level(total)
    new = Record("volunteer", doc, vol.province)
    u.put(new, new=False)
    u.feed(new, "upsert", by, vol.province)


def _check_references(
    u: UnitOfWork, c: Ctx, kind: str, f: dict[str, Any], errors: list[FieldError], self_id: str | None
) -> None:
    """Reference rules of §4 (parents, station, the records a service record names)."""
    bad = {e.field for e in errors}
    if kind == "org":
        level = f.get("level")
        if level and f.get("parentId") and "parentId" not in bad:
            parent = u.get("org", f["parentId"])
            want = rules.ORG_LEVELS[level][1]
            if parent is None:
                errors.append(_ref_error("parentId", "PARENT_NOT_FOUND", "no org with this id"))
            elif parent.doc["level"] != want:
                errors.append(
                    _ref_error(
                        "parentId",
                        "PARENT_LEVEL_MISMATCH",
                        f"the parent of a {level} is a {want}, not a {parent.doc['level']}",
                    )
                )
            elif parent.doc["status"] != "ACTIVE":
                errors.append(_ref_error("parentId", "PARENT_NOT_ACTIVE", "the parent is not ACTIVE"))
        if level == "GRASSROOTS_TEAM" and f.get("stationId") and "stationId" not in bad:
            station = u.get("org", f["stationId"])
            if station is None:
                errors.append(_ref_error("stationId", "PARENT_NOT_FOUND", "no org with this id"))
            elif station.doc["level"] != "COMMUNITY_STATION":
                errors.append(_ref_error("stationId", "PARENT_LEVEL_MISMATCH", "not a COMMUNITY_STATION"))
            elif station.doc["status"] != "ACTIVE":
                errors.append(_ref_error("stationId", "PARENT_NOT_ACTIVE", "the station is not ACTIVE"))
    elif kind == "activity":
        if "orgId" not in bad:
            org = u.get("org", f["orgId"])
            if org is None:
                errors.append(_ref_error("orgId", "NOT_FOUND", "no org with this id"))
            elif org.doc["status"] == "DISSOLVED":
                errors.append(_ref_error("orgId", "NOT_ACTIVE", "the org is dissolved"))
    elif kind == "serviceRecord":
        if "volunteerId" not in bad:
            vol = u.get("volunteer", f["volunteerId"])
            if vol is None:
                errors.append(_ref_error("volunteerId", "NOT_FOUND", "no volunteer with this id"))
            elif vol.doc["status"] != "ACTIVE":
                errors.append(_ref_error("volunteerId", "NOT_ACTIVE", "the volunteer is not ACTIVE"))
        if "activityId" not in bad:
            act = u.get("activity", f["activityId"])
            if act is None:
                errors.append(_ref_error("activityId", "NOT_FOUND", "no activity with this id"))
            elif act.doc["status"] == "CANCELLED":
                errors.append(_ref_error("activityId", "NOT_ACTIVE", "the activity is CANCELLED"))
            elif "serviceDate" not in bad:
                first, last = act.doc["startsAt"][:10], act.doc["endsAt"][:10]
                if not first <= f["serviceDate"] <= last:
                    errors.append(
                        _ref_error(
                            "serviceDate", "OUT_OF_RANGE", f"outside the activity's dates {first} to {last}"
                        )
                    )
        if "orgId" not in bad:
            org = u.get("org", f["orgId"])
            if org is None:
                errors.append(_ref_error("orgId", "NOT_FOUND", "no org with this id"))
            elif org.doc["status"] == "DISSOLVED":
                errors.append(_ref_error("orgId", "NOT_ACTIVE", "the org is dissolved"))


def _check_unique(u: UnitOfWork, kind: str, doc: dict[str, Any], self_id: str | None) -> None:
    """Nationwide identity and live-USCC uniqueness (§4.1, §4.2) → 409 with ``existingId``."""
    if kind == "volunteer":
        key = f"{doc['idType']}:{doc['idNumber']}"
        for other in u.find("volunteer", "id_key", key):
            if other.id != self_id:
                raise Refusal(
                    409,
                    "DUPLICATE_ID_NUMBER",
                    "this person is registered already",
                    {"existingId": other.id, "ownerClientId": other.doc["ownerClientId"]},
                )
    elif kind == "org" and doc.get("uscc") and doc["status"] != "DISSOLVED":
        for other in u.find("org", "uscc_live", doc["uscc"]):
            if other.id != self_id:
                raise Refusal(
                    409,
                    "DUPLICATE_USCC",
                    "an org with this USCC exists",
                    {"existingId": other.id, "ownerClientId": other.doc["ownerClientId"]},
                )


# ---------------------------------------------------------------------------------------------- operations


def op_create(u: UnitOfWork, c: Ctx, kind: str, body: Any, *, corrects: Record | None = None) -> Outcome:
    """``POST /{collection}`` (§5.1): validate (§4), check scope, uniqueness and references, then create.

    Args:
        u: the unit of work of the call (or batch).
        c: who acts and when.
        kind: the batch type (``org``, ``volunteer``, ``activity``, ``serviceRecord``).
        body: the decoded JSON body (wire names).
        corrects: for ``:correct`` (§4.5, v1.1), the ACCEPTED service record the new one replaces: it is left
            out of the daily limit, and revoked (``revokeReason`` ``"corrected"``) only once every rule of the
            create has passed, so that a refusal changes nothing; the new record's ``correctsId`` names it.

    Returns:
        201 with the created record.

    Raises:
        Refusal: 400, 403, 409 or 422 as a create is refused (§5.1, §7); nothing is changed.
    """
    if kind == "membership":
        raise Refusal(400, "BAD_REQUEST", "memberships are made with join (PUT /orgs/{orgId}/members/{id})")
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    fields, errors = rules.validate(kind, body, current=None, province=c.province or "", today=c.today)
    if (
        c.client_id != PORTAL
        and "clientRef" not in fields
        and not any(e.field == "clientRef" for e in errors)
    ):
        errors.append(FieldError("clientRef", "REQUIRED", "a create carries the client's own id"))
    if kind in ("org", "volunteer") and fields.get("status") in ENDED.values():
        errors.append(FieldError("status", "INVALID_VALUE", "a record cannot be created ended"))
    if kind == "serviceRecord" and fields.get("status") == "REVOKED":
        errors.append(FieldError("status", "INVALID_VALUE", "a service record is created ACCEPTED"))
    _check_references(u, c, kind, fields, errors, None)
    if errors:
        raise invalid(errors)
    if c.client_id != PORTAL:
        if kind == "volunteer" and fields["homeProvince"] != c.province:
            raise _not_owner(message="a client registers volunteers of its own province only")
        if kind == "serviceRecord":
            org = u.get("org", fields["orgId"])
            if org is not None and org.province != c.province:
                raise _not_owner(org, "the recording team is in another province")
        if kind == "activity":
            org = u.get("org", fields["orgId"])
            if org is not None and org.province != c.province:
                raise _not_owner(org, "the org is in another province")
        existing = u.find(kind, "ref_key", ref_key(c.client_id, fields["clientRef"]) or "")
        if existing:
            raise Refusal(
                409, "DUPLICATE_CLIENT_REF", "this clientRef was used already", {"existingId": existing[0].id}
            )
    hours: int = fields.get("hours", 0)  # hundredths of an hour; only a service record has (and needs) them
    doc = _new_doc(u, c, kind, fields)
    _check_unique(u, kind, doc, None)
    if kind == "serviceRecord":
        day = u.find("serviceRecord", "day_key", f"{doc['volunteerId']}:{doc['serviceDate']}")
        skip = corrects.id if corrects is not None else None  # §4.5: counted without the old record
        accepted = sum(
            int(r.doc["hours"].replace(".", ""))
            for r in day
            if r.doc["status"] == "ACCEPTED" and r.id != skip
        )
        if accepted + hours > 2400:
            raise Refusal(
                422,
                "DAILY_HOURS_EXCEEDED",
                "the volunteer's hours on this day would exceed 24.00",
                {
                    "volunteerId": doc["volunteerId"],
                    "serviceDate": doc["serviceDate"],
                    "acceptedHours": format_hours(accepted),
                },
            )
        org = u.get("org", doc["orgId"])
        doc["stationId"] = org.doc.get("stationId") if org else None
    if corrects is not None:
        # every rule passed: from here on nothing refuses, so the old record is revoked with the new one
        doc["correctsId"] = corrects.id
        old_hours = _revoke_record(u, c, corrects, "corrected")
        if corrects.doc["volunteerId"] == doc["volunteerId"]:
            hours -= old_hours  # one change of the volunteer's totalHours, one new version (§1)
        else:
            _set_hours(u, c, corrects.doc["volunteerId"], -old_hours, c.client_id)
    rec = Record(kind, doc, _province_of(u, kind, doc))
    u.put(rec, new=True)
    u.feed(rec, "upsert", c.client_id, None)
    if kind == "serviceRecord" and doc["status"] == "ACCEPTED":
        _set_hours(u, c, doc["volunteerId"], hours, c.client_id)
    return Outcome(201, "OK", "created", doc)


def op_update(u: UnitOfWork, c: Ctx, kind: str, record_id: Any, if_match: Any, body: Any) -> Outcome:
    """``PUT /{collection}/{id}`` (§5.1): replace the mutable fields under ``If-Match``."""
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {kind} with this id")
    if kind == "serviceRecord":
        raise Refusal(409, "INVALID_STATE", "a service record is immutable: revoke it and create a new one")
    if not _owns(c, rec):
        raise _not_owner(rec)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    _check_if_match(rec, if_match)
    ended = rules.STATUSES.get(kind, ((), "", frozenset()))[2]
    if rec.doc.get("status") in ended:
        raise Refusal(409, "INVALID_STATE", f"the record is {rec.doc['status']}: it cannot change")
    fields, errors = rules.validate(
        kind, body, current=rec.doc, province=c.province or rec.province, today=c.today
    )
    if fields.get("status") in ended:
        errors.append(FieldError("status", "INVALID_VALUE", "ending happens only through DELETE"))
    _check_references(u, c, kind, fields, errors, rec.id)
    if kind == "org" and "parentId" not in {e.field for e in errors} and fields.get("parentId") == rec.id:
        errors.append(FieldError("parentId", "PARENT_LEVEL_MISMATCH", "an org cannot be its own parent"))
    if errors:
        raise invalid(errors)
    if kind == "volunteer" and c.client_id != PORTAL and fields["homeProvince"] != c.province:
        raise _not_owner(rec, "a transfer to another province happens on the registry's side")
    fields.pop("clientRef", None)
    doc = dict(rec.doc)
    doc.update(fields)
    if doc == rec.doc:
        return Outcome(200, "OK", "unchanged", rec.doc)
    _check_unique(u, kind, doc, rec.id)
    doc["version"] += 1
    doc["updatedAt"] = c.stamp
    new = Record(kind, doc, _province_of(u, kind, doc))
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)
    return Outcome(200, "OK", "updated", doc)


def op_delete(u: UnitOfWork, c: Ctx, kind: str, record_id: Any, if_match: Any) -> Outcome:
    """``DELETE /volunteers/{id}`` (deregister) or ``DELETE /orgs/{id}`` (dissolve) (§5.1, §4.1)."""
    if kind not in ("org", "volunteer"):
        raise Refusal(400, "BAD_REQUEST", f"a {kind} is not deleted (records are never erased)")
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {kind} with this id")
    if not _owns(c, rec):
        raise _not_owner(rec)
    _check_if_match(rec, if_match)
    end = ENDED[kind]
    if rec.doc["status"] == end:
        return Outcome(200, "OK", f"already {end}", rec.doc)
    if kind == "org":
        live = [ch.id for ch in u.find("org", "parent_id", rec.id) if ch.doc["status"] != "DISSOLVED"]
        if live:
            raise Refusal(409, "ORG_HAS_ACTIVE_CHILDREN", "dissolve the child orgs first", {"childIds": live})
    doc = _bump(c, rec.doc)
    doc["status"] = end
    new = Record(kind, doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "delete", c.client_id, rec.province)
    return Outcome(200, "OK", end.lower(), doc)


def op_revoke(u: UnitOfWork, c: Ctx, record_id: Any, body: Any) -> Outcome:
    """``POST /service-records/{id}:revoke`` (§4.5): idempotent; the volunteer's hours drop."""
    rec = u.get("serviceRecord", record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", "no service record with this id")
    if not _owns(c, rec):
        raise _not_owner(rec)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    errors = [FieldError(k, "UNKNOWN_FIELD", "not a field of a revoke") for k in body if k != "reason"]
    try:
        reason = rules._text(1, 200)(body.get("reason")) if body.get("reason") is not None else None
        if reason is None:
            errors.append(FieldError("reason", "REQUIRED", "a revoke gives its reason"))
    except rules.Invalid as exc:
        errors.append(FieldError("reason", exc.code, exc.message))
    if errors:
        raise invalid(errors)
    if rec.doc["status"] == "REVOKED":
        return Outcome(200, "OK", "already revoked", rec.doc)
    doc = _bump(c, rec.doc)
    doc["status"] = "REVOKED"
    doc["revokeReason"] = reason
    new = Record("serviceRecord", doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "delete", c.client_id, rec.province)
    _set_hours(u, c, doc["volunteerId"], -int(doc["hours"].replace(".", "")), c.client_id)
    return Outcome(200, "OK", "revoked", doc)


def _revoke_record(u: UnitOfWork, c: Ctx, rec: Record, reason: str) -> int:
    """Revoke an ACCEPTED service record inside a correction (§4.5): its status, ``revokeReason`` and a new
    version, fed as an ``upsert`` (§5.3: a revoke is an upsert).

    Returns:
        The record's hours in hundredths, for the caller to take off the volunteer's ``totalHours``.
    """
    doc = _bump(c, rec.doc)
    doc["status"] = "REVOKED"
    doc["revokeReason"] = reason
    new = Record(rec.kind, doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)
    return int(doc["hours"].replace(".", ""))


def op_correct(u: UnitOfWork, c: Ctx, record_id: Any, body: Any) -> Outcome:
    """``POST /service-records/{id}:correct`` (§4.5, v1.1): revoke the old record and accept the new one in one
    step, or change nothing.

    The old record must exist (else 404 ``NOT_FOUND``), be this client's to write (else 403 ``NOT_OWNER``) and be
    ACCEPTED (else 409 ``INVALID_STATE``). The body is a whole new record with its own ``clientRef`` and
    ``status`` absent or ``ACCEPTED``; it is checked exactly as a create (:func:`op_create`), the daily limit
    counted without the old record. On success the old record is ``REVOKED`` with ``revokeReason``
    ``"corrected"``, and the new one (answered 201) carries the read-only ``correctsId``; both changes are fed.
    Idempotency is the caller's (:meth:`Registry.write`, :meth:`Registry.batch`), as for a create.

    Raises:
        Refusal: the old record's 404/403/409, or the new record's refusal as a create would answer it
            (400, 403, 409, 422); nothing is changed.
    """
    rec = u.get("serviceRecord", record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", "no service record with this id")
    if not _owns(c, rec):
        raise _not_owner(rec)
    if rec.doc["status"] != "ACCEPTED":
        raise Refusal(
            409, "INVALID_STATE", f"the record is {rec.doc['status']}: only an ACCEPTED record is corrected"
        )
    return op_create(u, c, "serviceRecord", body, corrects=rec)


def _member_parties(u: UnitOfWork, c: Ctx, org_id: Any, volunteer_id: Any) -> tuple[Record, Record]:
    org = u.get("org", org_id)
    if org is None:
        raise Refusal(404, "NOT_FOUND", "no org with this id")
    vol = u.get("volunteer", volunteer_id)
    if vol is None:
        raise Refusal(404, "NOT_FOUND", "no volunteer with this id")
    if c.client_id != PORTAL and org.province != c.province:
        raise _not_owner(org, "the org is in another province")
    return org, vol


def _date_field(body: dict[str, Any], name: str, required: bool, allowed: set[str]) -> str | None:
    errors = [FieldError(k, "UNKNOWN_FIELD", "not a field here") for k in body if k not in allowed]
    value = body.get(name)
    if value is None:
        if required:
            errors.append(FieldError(name, "REQUIRED", "a required field"))
    else:
        try:
            rules.check_date(value)
        except rules.Invalid as exc:
            errors.append(FieldError(name, exc.code, exc.message))
    if errors:
        raise invalid(errors)
    return value


def op_join(u: UnitOfWork, c: Ctx, org_id: Any, volunteer_id: Any, body: Any) -> Outcome:
    """``PUT /orgs/{orgId}/members/{volunteerId}`` (§4.3): join; idempotent; reopens a left membership."""
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    org, vol = _member_parties(u, c, org_id, volunteer_id)
    joined = _date_field(body, "joinedOn", True, {"joinedOn", "orgId", "volunteerId"})
    assert joined is not None
    found = u.find("membership", "pair_key", f"{org.id}:{vol.id}")
    if found and found[0].doc["leftOn"] is None:
        return Outcome(200, "OK", "a member already", found[0].doc)
    if org.doc["status"] == "DISSOLVED":
        raise Refusal(409, "INVALID_STATE", "the org is dissolved")
    if vol.doc["status"] != "ACTIVE":
        raise Refusal(409, "INVALID_STATE", "the volunteer is deregistered")
    if found:
        doc = _bump(c, found[0].doc)
        doc["joinedOn"], doc["leftOn"] = joined, None
        new = Record("membership", doc, org.province)
        u.put(new, new=False)
        u.feed(new, "upsert", c.client_id, found[0].province)
        return Outcome(200, "OK", "rejoined", doc)
    doc = {
        "id": u.new_id("membership"),
        "version": 1,
        "createdAt": c.stamp,
        "updatedAt": c.stamp,
        "clientRef": None,
        "ownerClientId": c.client_id,
        "orgId": org.id,
        "volunteerId": vol.id,
        "joinedOn": joined,
        "leftOn": None,
    }
    rec = Record("membership", doc, org.province)
    u.put(rec, new=True)
    u.feed(rec, "upsert", c.client_id, None)
    return Outcome(201, "OK", "joined", doc)


def op_leave(u: UnitOfWork, c: Ctx, org_id: Any, volunteer_id: Any, body: Any) -> Outcome:
    """``DELETE /orgs/{orgId}/members/{volunteerId}`` (§4.3): leave on ``leftOn`` (default today, +08:00)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    org, vol = _member_parties(u, c, org_id, volunteer_id)
    left = _date_field(body, "leftOn", False, {"leftOn", "orgId", "volunteerId"}) or c.today.isoformat()
    found = u.find("membership", "pair_key", f"{org.id}:{vol.id}")
    if not found:
        raise Refusal(404, "NOT_FOUND", "the volunteer is not a member of the org")
    rec = found[0]
    if rec.doc["leftOn"] is not None:
        return Outcome(200, "OK", "left already", rec.doc)
    if left < rec.doc["joinedOn"]:
        raise invalid([FieldError("leftOn", "INVALID_DATE", "before joinedOn")])
    doc = _bump(c, rec.doc)
    doc["leftOn"] = left
    new = Record("membership", doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "delete", c.client_id, rec.province)
    return Outcome(200, "OK", "left", doc)


def portal_patch(u: UnitOfWork, c: Ctx, kind: str, record_id: str, patch: dict[str, Any]) -> Outcome:
    """A direct edit by the portal or the civil-affairs side (§8).

    Sets wire fields, bumps the version, feeds the change (to the province before and after). Not
    validated: the tests may plant any state.
    """
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {kind} with this id")
    locked = [k for k in patch if k in ("id", "version", "createdAt", "updatedAt", "ownerClientId")]
    if locked:
        raise invalid([FieldError(k, "READ_ONLY_FIELD", "cannot be patched") for k in locked])
    doc = _bump(c, rec.doc)
    doc.update(patch)
    if kind == "volunteer" and "totalHours" in patch:
        doc["starLevel"] = star_level(int(doc["totalHours"].replace(".", "")))
    new = Record(kind, doc, _province_of(u, kind, doc))
    _check_unique(u, kind, doc, rec.id)
    u.put(new, new=False)
    ended = doc.get("status") == ENDED.get(kind) or (kind == "membership" and doc.get("leftOn"))
    u.feed(new, "delete" if ended else "upsert", PORTAL, rec.province)
    return Outcome(200, "OK", "patched", doc)


# ------------------------------------------------------------------------------------------------ registry


@dataclass(slots=True)
class BatchOp:
    """One parsed operation of a ``POST /batch`` (§5.1)."""

    index: int
    op: Any  # as sent (any JSON value); checked against BATCH_OPS when the operation runs
    kind: Any  # as sent; checked against TABLES when the operation runs
    id: Any
    if_match: Any
    key: str | None
    body: Any


BATCH_OPS = {"create", "update", "delete", "revoke", "correct", "join", "leave"}


class Registry:
    """The sandbox registry's state and rules over a :class:`Store`.

    Args:
        store: the database.
        clock: the registry's clock, Unix seconds (faults may offset it).
        feed_retention_s: how long changes are kept (§5.3: 7 days), read on every feed call.
    """

    def __init__(
        self, store: Store, clock: Callable[[], float], feed_retention_s: Callable[[], float]
    ) -> None:
        self.store = store
        self.clock = clock
        self.feed_retention_s = feed_retention_s
        self._clients: dict[str, ClientCredential] = {}
        self._clients_lock = threading.Lock()
        self._last_prune = 0.0
        self._last_feed_prune = -1.0e9
        self.reload_clients()

    # --- clients
    def reload_clients(self) -> None:
        """Read the clients table into memory."""
        with self.store.read() as conn:
            rows = conn.execute(select(clients)).all()
        with self._clients_lock:
            self._clients = {r.id: ClientCredential(r.id, r.secret, r.province, r.enabled) for r in rows}

    def client(self, client_id: str) -> ClientCredential | None:
        """The client with this id, or ``None``."""
        return self._clients.get(client_id)

    def upsert_client(self, cred: ClientCredential) -> None:
        """Add or replace a client (id, secret, province, enabled)."""
        with self.store.write() as conn:
            conn.execute(clients.delete().where(clients.c.id == cred.client_id))
            conn.execute(
                clients.insert().values(
                    id=cred.client_id, secret=cred.client_secret, province=cred.province, enabled=cred.enabled
                )
            )
        self.reload_clients()

    # --- nonces (§2)
    def use_nonce(self, client_id: str, nonce: str) -> bool:
        """Record a nonce; ``False`` when it was seen in the last 10 minutes (``NONCE_REPLAYED``)."""
        now = self.clock()
        with self.store.write() as conn:
            seen = conn.execute(
                select(nonces.c.seen_at).where(nonces.c.client_id == client_id, nonces.c.nonce == nonce)
            ).scalar_one_or_none()
            if seen is not None and now - seen < NONCE_TTL_S:
                return False
            if seen is not None:
                conn.execute(nonces.delete().where(nonces.c.client_id == client_id, nonces.c.nonce == nonce))
            conn.execute(nonces.insert().values(client_id=client_id, nonce=nonce, seen_at=now))
            if now - self._last_prune > 60:
                self._last_prune = now
                conn.execute(delete(nonces).where(nonces.c.seen_at < now - NONCE_TTL_S))
                conn.execute(delete(idempotency).where(idempotency.c.created_at < now - IDEMPOTENCY_TTL_S))
        return True

    # --- writes
    def _kept(self, u: UnitOfWork, client_id: str, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        floor = u.now - IDEMPOTENCY_TTL_S
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in select_in(u.conn, idempotency, _IDEM_NAMES, "key", chunk, client_id=client_id):
                if row.created_at >= floor:
                    found[row.key] = row
                else:  # expired: the key is free again
                    u.conn.execute(
                        idempotency.delete().where(
                            idempotency.c.client_id == client_id, idempotency.c.key == row.key
                        )
                    )
        return found

    def write(
        self,
        c: Ctx,
        op: Callable[[UnitOfWork], Outcome],
        *,
        key: str | None,
        fp: str,
        request_id: str,
        after_commit: Callable[[], None] | None = None,
    ) -> Outcome:
        """Run one write call in its own transaction, under an optional idempotency key (§5.1).

        Returns:
            The outcome; ``replayed`` is set when a kept answer was replayed.
        """
        with self.store.write() as conn:
            u = UnitOfWork(conn, c.now)
            if key is not None:
                kept = self._kept(u, c.client_id, [key]).get(key)
                if kept is not None:
                    if kept.fingerprint != fp:
                        return Outcome(
                            422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for another call"
                        )
                    return Outcome.from_stored(kept.status, kept.body)
            try:
                outcome = op(u)
            except Refusal as refusal:
                outcome = refusal.outcome
                u = UnitOfWork(conn, c.now)  # nothing of the refused call is written
            if key is not None and outcome.status in KEPT_STATUSES:
                u.idem_rows.append(
                    {
                        "client_id": c.client_id,
                        "key": key,
                        "fingerprint": fp,
                        "status": outcome.status,
                        "body": orjson.dumps(outcome.envelope(request_id)),
                        "created_at": c.now,
                    }
                )
            u.flush(c.stamp)
        return outcome

    def batch(self, c: Ctx, ops: list[BatchOp], request_id: str, *, key: str, fp: str) -> Outcome:
        """Run the operations of a ``POST /batch`` one by one and independently, in one transaction (§5.1).

        Args:
            c: who and when.
            ops: the parsed operations (≤ 500).
            request_id: the call's ``requestId`` (kept with the answers).
            key: the batch call's ``Idempotency-Key``; it protects this same body (``fp``) only.
            fp: the fingerprint of the raw batch body.

        Returns:
            200 with ``data.results`` (one item per operation, in order), or the replay of the batch call,
            or 422 ``IDEMPOTENCY_KEY_REUSED``.
        """
        with self.store.write() as conn:
            u = UnitOfWork(conn, c.now)
            keys = [o.key for o in ops if isinstance(o.key, str)]
            kept = self._kept(u, c.client_id, [key, *keys])
            if key in kept:
                if kept[key].fingerprint != fp:
                    return Outcome(
                        422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for another call"
                    )
                return Outcome.from_stored(kept[key].status, kept[key].body)
            self._prefetch(u, c, ops)
            used: dict[str, tuple[str, Outcome]] = {}
            results: list[dict[str, Any]] = []
            for o in ops:
                target = o.id if isinstance(o.id, str) else None
                op_fp = fingerprint(o.op, o.kind, o.id, o.if_match, o.body)
                if isinstance(o.key, str):
                    prior = used.get(o.key)
                    if prior is None and o.key in kept:
                        row = kept[o.key]
                        prior = (row.fingerprint, Outcome.from_stored(row.status, row.body))
                    if prior is not None:
                        if prior[0] != op_fp:
                            results.append(
                                Outcome(
                                    422,
                                    "IDEMPOTENCY_KEY_REUSED",
                                    "this idempotencyKey was used for another operation",
                                ).op_result(target)
                            )
                        else:
                            prior[1].replayed = True
                            results.append(prior[1].op_result(target))
                        continue
                try:
                    outcome = self._run_op(u, c, o)
                except Refusal as refusal:
                    outcome = refusal.outcome
                if isinstance(o.key, str) and outcome.status in KEPT_STATUSES:
                    used[o.key] = (op_fp, outcome)
                    u.idem_rows.append(
                        {
                            "client_id": c.client_id,
                            "key": o.key,
                            "fingerprint": op_fp,
                            "status": outcome.status,
                            "body": orjson.dumps(outcome.envelope(request_id)),
                            "created_at": c.now,
                        }
                    )
                results.append(outcome.op_result(target))
            answer = Outcome(200, "OK", f"{len(results)} operations", {"results": results})
            u.idem_rows.append(
                {
                    "client_id": c.client_id,
                    "key": key,
                    "fingerprint": fp,
                    "status": 200,
                    "body": orjson.dumps(answer.envelope(request_id)),
                    "created_at": c.now,
                }
            )
            u.flush(c.stamp)
        return answer

    def _run_op(self, u: UnitOfWork, c: Ctx, o: BatchOp) -> Outcome:
        if o.op not in BATCH_OPS or o.kind not in TABLES:
            raise Refusal(400, "BAD_REQUEST", f"unknown op {o.op!r} or type {o.kind!r}")
        if o.if_match is not None and (not isinstance(o.if_match, int) or isinstance(o.if_match, bool)):
            raise Refusal(400, "BAD_REQUEST", "ifMatch is the version number, an integer")
        if o.key is not None and (not isinstance(o.key, str) or not 1 <= len(o.key) <= 64):
            raise Refusal(400, "BAD_REQUEST", "idempotencyKey is a string of 1 to 64 characters")
        body = o.body if o.body is not None else {}
        if o.op == "create":
            if o.key is None:
                raise Refusal(400, "BAD_REQUEST", "every create carries its own idempotencyKey")
            return op_create(u, c, o.kind, body)
        if o.op == "update":
            if o.kind == "membership":
                return self._update_membership(u, c, o, body)
            return op_update(u, c, o.kind, o.id, o.if_match, body)
        if o.op == "delete":
            return op_delete(u, c, o.kind, o.id, o.if_match)
        if o.op == "revoke":
            if o.kind != "serviceRecord":
                raise Refusal(400, "BAD_REQUEST", "only service records are revoked")
            return op_revoke(u, c, o.id, body)
        if o.op == "correct":
            if o.kind != "serviceRecord":
                raise Refusal(400, "BAD_REQUEST", "only service records are corrected")
            if o.key is None:
                raise Refusal(400, "BAD_REQUEST", "every correct carries its own idempotencyKey")
            return op_correct(u, c, o.id, body)
        if o.kind != "membership" or not isinstance(body, dict):
            raise Refusal(400, "BAD_REQUEST", f"{o.op} is an operation on a membership, with a body")
        if o.op == "join":
            return op_join(u, c, body.get("orgId"), body.get("volunteerId"), body)
        return op_leave(u, c, body.get("orgId"), body.get("volunteerId"), body)

    def _update_membership(self, u: UnitOfWork, c: Ctx, o: BatchOp, body: Any) -> Outcome:
        rec = u.get("membership", o.id)
        if rec is None:
            raise Refusal(404, "NOT_FOUND", "no membership with this id")
        if not _owns(c, rec):
            raise _not_owner(rec)
        if not isinstance(body, dict):
            raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
        _check_if_match(rec, o.if_match)
        fields, errors = rules.validate(
            "membership", body, current=rec.doc, province=rec.province, today=c.today
        )
        if errors:
            raise invalid(errors)
        doc = dict(rec.doc)
        doc.update(fields)
        if doc == rec.doc:
            return Outcome(200, "OK", "unchanged", rec.doc)
        doc["version"] += 1
        doc["updatedAt"] = c.stamp
        new = Record("membership", doc, rec.province)
        u.put(new, new=False)
        u.feed(
            new, "delete" if doc["leftOn"] and not rec.doc["leftOn"] else "upsert", c.client_id, rec.province
        )
        return Outcome(200, "OK", "updated", doc)

    def _prefetch(self, u: UnitOfWork, c: Ctx, ops: list[BatchOp]) -> None:
        """Load what the operations of a batch will read, a few queries in all."""
        by_id: dict[str, set[str]] = {t: set() for t in TABLES}
        by_key: dict[tuple[str, str], set[str]] = {}
        creates: dict[str, int] = {}

        def key(kind: str, column: str, value: Any) -> None:
            if isinstance(value, str):
                by_key.setdefault((kind, column), set()).add(value)

        for o in ops:
            body = o.body if isinstance(o.body, dict) else {}
            if o.kind in TABLES and isinstance(o.id, str):
                by_id[o.kind].add(o.id)
            if o.op in ("create", "correct") and o.kind in TABLES:
                creates[o.kind] = creates.get(o.kind, 0) + 1
                if isinstance(body.get("clientRef"), str):
                    key(o.kind, "ref_key", ref_key(c.client_id, body["clientRef"]))
            for name, kind in (
                ("parentId", "org"),
                ("stationId", "org"),
                ("orgId", "org"),
                ("volunteerId", "volunteer"),
                ("activityId", "activity"),
            ):
                if isinstance(body.get(name), str):
                    by_id[kind].add(body[name])
            if o.kind == "volunteer" and isinstance(body.get("idNumber"), str):
                key("volunteer", "id_key", f"{body.get('idType')}:{body['idNumber'].upper()}")
            elif o.kind == "org" and isinstance(body.get("uscc"), str):
                key("org", "uscc_live", body["uscc"])
            elif o.kind == "serviceRecord" and o.op in ("create", "correct"):
                key("serviceRecord", "day_key", f"{body.get('volunteerId')}:{body.get('serviceDate')}")
            elif o.op in ("join", "leave"):
                key("membership", "pair_key", f"{body.get('orgId')}:{body.get('volunteerId')}")
        for kind, ids in by_id.items():
            if ids:
                u.prefetch(kind, ids)
        for (kind, column), values in by_key.items():
            u.prefetch_by(kind, column, values)
        for kind, count in creates.items():
            u.reserve_ids(kind, count)
        if any(o.op == "join" for o in ops):
            u.reserve_ids("membership", sum(1 for o in ops if o.op == "join"))

    # --- reads (§5.2)
    def get(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """The wire record, or ``None``."""
        table = TABLES[kind]
        with self.store.read() as conn:
            doc = conn.execute(select(table.c.doc).where(table.c.id == record_id)).scalar_one_or_none()
        return None if doc is None else orjson.loads(doc)

    def by_client_ref(self, kind: str, client_id: str, client_ref: str) -> list[dict[str, Any]]:
        """``GET /{collection}?clientRef=``: 0 or 1 record this client created with that ``clientRef``."""
        table = TABLES[kind]
        with self.store.read() as conn:
            doc = conn.execute(
                select(table.c.doc).where(table.c.ref_key == ref_key(client_id, client_ref))
            ).scalar_one_or_none()
        return [] if doc is None else [orjson.loads(doc)]

    def lookup(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        """``POST /lookup``: the records with these ids that exist."""
        table = TABLES[kind]
        with self.store.read() as conn:
            docs = conn.execute(select(table.c.doc).where(table.c.id.in_(set(ids)))).scalars().all()
        return [orjson.loads(d) for d in docs]

    def list_page(
        self, kind: str, *, province: str | None, org_id: str | None, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """A page of records ordered by id (§5.3 "other list calls"): the province's, or an org's members.

        Returns:
            ``(records, nextCursor, hasMore)``; the cursor is the last id returned.
        """
        table = TABLES[kind]
        q = select(table.c.id, table.c.doc).order_by(table.c.id).limit(limit + 1)
        if org_id is not None:
            q = q.where(table.c.org_id == org_id)
        if province is not None:
            q = q.where(table.c.province == province)
        if cursor:
            q = q.where(table.c.id > cursor)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [orjson.loads(r.doc) for r in rows], (rows[-1].id if rows else cursor), more

    # --- the change feed (§5.3)
    def head(self) -> int:
        """The feed's head: the highest ``seq`` given so far."""
        with self.store.read() as conn:
            return conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()

    def prune_feed(self) -> None:
        """Drop changes older than the retention; remember the highest seq dropped (for CURSOR_EXPIRED)."""
        now = self.clock()
        tick = time.monotonic()  # not the registry's clock: a clock offset set at run time may go back
        if tick - self._last_feed_prune < 1.0:
            return
        self._last_feed_prune = tick
        floor = now - self.feed_retention_s()
        with self.store.read() as conn:
            top = conn.execute(select(func.max(changes.c.seq)).where(changes.c.changed_ts < floor)).scalar()
        if top is None:
            return
        with self.store.write() as conn:
            conn.execute(delete(changes).where(changes.c.seq <= top))
            pruned = conn.execute(select(counters.c.value).where(counters.c.name == "pruned")).scalar_one()
            conn.execute(counters.update().where(counters.c.name == "pruned").values(value=max(pruned, top)))

    def changes_page(
        self, province: str, cursor: int, limit: int, *, repeat: int = 0, dup: int = 0
    ) -> dict[str, Any] | None:
        """The changes of ``province`` after ``cursor``, ascending ``seq`` (§5.3), at most ``limit``.

        Two faults (§8, delivery is at least once) take room in the page: ``repeat`` re-sends up to that
        many of the province's items at or before the cursor at the page's head, and ``dup`` sends the
        first ``dup`` new items twice in a row. ``seq`` stays non-decreasing and ``nextCursor`` is the
        last new item's.

        Returns:
            ``{"changes", "nextCursor", "hasMore"}``, or ``None`` when the cursor is older than the
            retention (410 ``CURSOR_EXPIRED``).
        """
        self.prune_feed()
        with self.store.read() as conn, conn.begin():
            pruned = conn.execute(select(counters.c.value).where(counters.c.name == "pruned")).scalar_one()
            if cursor < pruned:
                return None
            back: list[Any] = []
            if repeat:
                back = list(
                    conn.execute(
                        select(changes)
                        .where(changes.c.province == province, changes.c.seq <= cursor)
                        .order_by(changes.c.seq.desc())
                        .limit(repeat)
                    ).all()
                )[::-1]
            room = max(1, limit - len(back) - dup)
            rows = conn.execute(
                select(changes)
                .where(changes.c.province == province, changes.c.seq > cursor)
                .order_by(changes.c.seq)
                .limit(room + 1)
            ).all()
        more = len(rows) > room
        rows = rows[:room]
        sent: list[Any] = list(back)
        for i, r in enumerate(rows):
            sent.append(r)
            if i < dup:
                sent.append(r)
        items = [
            {
                "seq": r.seq,
                "type": r.type,
                "id": r.id,
                "version": r.version,
                "op": r.op,
                "changedAt": r.changed_at,
                "byClientId": r.by_client_id,
            }
            for r in sent
        ]
        nxt = max(cursor, rows[-1].seq) if rows else cursor
        return {"changes": items, "nextCursor": str(nxt), "hasMore": more}

    # --- exports (§5.2)
    def open_export(
        self, kind: str, province: str, page: int = 2000
    ) -> tuple[int, Iterator[bytes], Callable[[], None]]:
        """Open one consistent snapshot of the collection's records of ``province``.

        Returns:
            ``(cursor, chunks, close)``: the feed head at the snapshot (``X-Snapshot-Cursor``), an iterator
            of NDJSON chunks in ascending id as bytes, read in pages of ``page`` records inside the same read
            transaction, and the function that ends the transaction (call it in every case).
        """
        table = TABLES[kind]
        conn = self.store.read()
        tx = conn.begin()
        try:
            cursor = conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()
            # test support: records of a type the sandbox does not implement, planted into this export
            planted = list(conn.execute(
                select(foreign.c.id, foreign.c.doc)
                .where(foreign.c.collection == kind, foreign.c.province == province)
                .order_by(foreign.c.id)
            ).all())
        except BaseException:
            tx.rollback()
            conn.close()
            raise

        def lines() -> Iterator[bytes]:
            last = None
            while True:
                q = select(table.c.id, table.c.doc).where(table.c.province == province)
                if last is not None:
                    q = q.where(table.c.id > last)
                rows = list(conn.execute(q.order_by(table.c.id).limit(page)).all())
                if not rows:
                    break
                last = rows[-1].id
                if planted:  # in id order with the page (ids compared as bytes, §5.2)
                    full = len(rows) == page
                    take = [p for p in planted if not full or p.id.encode() < last.encode()]
                    del planted[: len(take)]
                    rows = sorted(rows + take, key=lambda r: r.id.encode())
                yield ("\n".join(r.doc for r in rows) + "\n").encode()
            if planted:
                yield ("\n".join(r.doc for r in planted) + "\n").encode()

        closed: list[bool] = []

        def close() -> None:
            if not closed:
                closed.append(True)
                tx.rollback()
                conn.close()

        return cursor, lines(), close

    # --- admin
    def bulk_insert(self, kind: str, docs: list[dict[str, Any]], province: str | None = None) -> list[str]:
        """Insert records as they are, for seeding (§8: records left by older channels): no rules checked, no
        change fed (they predate the client's cursor). A doc without ``id`` gets a fresh one; ``version``,
        ``createdAt``/``updatedAt`` (now), ``clientRef`` (null) and ``ownerClientId`` (``PORTAL``) are filled when
        missing, and so is a volunteer's ``starLevel`` when it has a ``totalHours`` (§4.2). The province is
        ``province`` or the record's own (§1 "scope"; a membership's or a service record's from its org).

        Returns:
            The records' ids, in order.

        Raises:
            sqlalchemy.exc.IntegrityError: a unique key is taken (an id, an ID number, a USCC, a pair…).
        """
        now = self.clock()
        stamp = format_time(now)
        with self.store.write() as conn:
            u = UnitOfWork(conn, now)
            u.reserve_ids(kind, sum(1 for d in docs if not d.get("id")))
            ids = []
            for doc in docs:
                doc = dict(doc)
                if kind == "volunteer" and "totalHours" in doc and "starLevel" not in doc:
                    doc["starLevel"] = star_level(int(doc["totalHours"].replace(".", "")))
                if not doc.get("id"):
                    doc["id"] = u.new_id(kind)
                for name, value in (("version", 1), ("createdAt", stamp), ("updatedAt", stamp), ("clientRef", None),
                                    ("ownerClientId", PORTAL)):
                    doc.setdefault(name, value)
                u.put(Record(kind, doc, province or _province_of(u, kind, doc)), new=True)
                ids.append(doc["id"])
            u.flush(stamp)
        return ids

    def record_foreign(self, type_name: str, doc: dict[str, Any], province: str, *, op: str = "upsert",
                       export: str | None = None) -> dict[str, Any]:
        """Test support, not of registry-api.md: record a change of a record of a type the sandbox does not
        implement (``type_name``, e.g. v1.1's ``commendation`` or an invented ``planet``), so that a client meets a
        feed entry of a type it does not know (§1: it skips and counts it and moves its cursor past it).

        Args:
            type_name: the feed entry's ``type`` (≤ 16 characters; not one of :data:`TABLES`).
            doc: the record's wire fields; ``id`` (default ``FGN`` + a number), ``version`` (1), ``createdAt``/
                ``updatedAt`` (now), ``clientRef`` (null) and ``ownerClientId`` (``PORTAL``) are filled when
                missing, and ``type`` is set to ``type_name``.
            province: the province fed (§1 "scope").
            op: the feed entry's ``op``.
            export: a batch type (``volunteer``…) whose export includes the record as a line, in id order, with its
                ``type``; ``None`` for the feed only. ``POST /lookup`` never answers it (the sandbox knows no such
                type).

        Returns:
            ``{"id", "seq"}``: the record's id and its feed entry's ``seq``.
        """
        now = self.clock()
        stamp = format_time(now)
        with self.store.write() as conn:
            u = UnitOfWork(conn, now)
            n = conn.execute(select(func.count()).select_from(foreign)).scalar_one()
            doc = {"id": f"FGN{n + 1:08d}", "version": 1, "createdAt": stamp, "updatedAt": stamp,
                   "clientRef": None, "ownerClientId": PORTAL, **doc, "type": type_name}
            conn.execute(foreign.insert().values(id=doc["id"], type=type_name, province=province, collection=export,
                                                 doc=orjson.dumps(doc).decode()))
            u.feed(Record(type_name, doc, province), op, PORTAL, None)
            u.flush(stamp)
            seq = conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()
        return {"id": doc["id"], "seq": seq}

    def all_records(self, kind: str) -> list[dict[str, Any]]:
        """Every record of a kind, by id (for the tests)."""
        table = TABLES[kind]
        with self.store.read() as conn:
            return [orjson.loads(d) for d in conn.execute(select(table.c.doc).order_by(table.c.id)).scalars()]


def kind_of(name: str) -> str | None:
    """The batch type of a collection path or batch type name (``service-records`` → ``serviceRecord``)."""
    if name in TABLES:
        return name
    return COLLECTIONS.get(name)


def now_ctx(client: ClientCredential | None, clock: Callable[[], float]) -> Ctx:
    """A :class:`Ctx` for a client (``None``: the portal)."""
    if client is None:
        return Ctx(PORTAL, None, clock())
    return Ctx(client.client_id, client.province, clock())
