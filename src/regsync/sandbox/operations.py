"""The sandbox registry's write operations (§4, §5.1) over a unit of work: create, update, delete, revoke,
correct, join, leave, a membership's update in a batch, and the portal's direct edit (§8), with the checks they
share (references, uniqueness, ownership, ``If-Match``).

Each is a function of a :class:`~regsync.sandbox.store.UnitOfWork` and the caller's :class:`~regsync.sandbox.
calls.Ctx` that returns an :class:`~regsync.sandbox.calls.Outcome`, or raises a :class:`~regsync.sandbox.calls.
Refusal` before it changes anything; the transaction and the idempotency keys around them are
:class:`~regsync.sandbox.writes.RecordWrites`'.
"""

from __future__ import annotations

from typing import Any

from regsync.sandbox import rules
from regsync.sandbox.calls import PORTAL, Ctx, Outcome, Refusal, invalid
from regsync.sandbox.rules import FieldError, format_hours, star_level
from regsync.sandbox.store import Record, UnitOfWork, ref_key

#: Wire field order of each kind (§4), common fields first.
COMMON_FIELDS = ("id", "version", "createdAt", "updatedAt", "clientRef", "ownerClientId")
DERIVED_DEFAULTS: dict[str, dict[str, Any]] = {
    "volunteer": {"totalHours": "0.00", "starLevel": 0, "trainingHours": "0.00"},
    "serviceRecord": {"stationId": None, "revokeReason": None, "correctsId": None},
}
#: The status a ``DELETE`` ends an org or a volunteer with (§5.1: dissolve, deregister; records are never erased).
ENDED = {"org": "DISSOLVED", "volunteer": "DEREGISTERED"}


# ------------------------------------------------------------------------------------------------ helpers


def new_doc_head(u: UnitOfWork, c: Ctx, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A new record's common fields (§4): a fresh id, version 1, both stamps, ``clientRef`` (taken out of
    ``fields``) and the creating client as its owner."""
    return {
        "id": u.new_id(kind),
        "version": 1,
        "createdAt": c.stamp,
        "updatedAt": c.stamp,
        "clientRef": fields.pop("clientRef", None),
        "ownerClientId": c.client_id,
    }


def _new_doc(u: UnitOfWork, c: Ctx, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    doc = new_doc_head(u, c, kind, fields)
    for name in rules.WRITABLE[kind]:
        doc[name] = fields[name]
    if kind in rules.STATUSES:
        doc["status"] = fields["status"]
    doc.update(DERIVED_DEFAULTS.get(kind, {}))
    if kind == "serviceRecord":
        doc["hours"] = format_hours(fields["hours"])
    return doc


def feed_op(kind: str, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """The ``op`` a change of a record is fed with (§5.3): ``delete`` is how a deregistration, a dissolution and a
    leave are fed; everything else — a create, an update, a cancellation, a revoke (of a service or training record,
    a commendation, an evaluation) — is an ``upsert``. Either way the record stays, with its new status.

    Args:
        kind: the batch type of the record.
        before: the wire record before the change (``None`` for a create).
        after: the wire record after it.

    Returns:
        ``"delete"`` when the change ends an org or a volunteer (:data:`ENDED`) or sets a membership's ``leftOn``
        that was null, else ``"upsert"``.
    """
    if before is None:
        return "upsert"
    if kind == "membership":
        return "delete" if after.get("leftOn") and not before.get("leftOn") else "upsert"
    end = ENDED.get(kind)
    return "delete" if end is not None and after.get("status") == end != before.get("status") else "upsert"


def bump(c: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the wire record ``doc`` at its next version: ``version`` + 1, ``updatedAt`` the call's ``c.stamp``
    (§1: every change makes a new version); ``doc`` itself is left as it is."""
    new = dict(doc)
    new["version"] = doc["version"] + 1
    new["updatedAt"] = c.stamp
    return new


def province_of(u: UnitOfWork, kind: str, doc: dict[str, Any]) -> str:
    """A record's province (§1 "scope"): the two-digit code of an org's or an activity's ``regionCode``, a
    volunteer's ``homeProvince``, or the province of the org a membership or a service record names (``"00"``
    when ``u`` has no such org); (v1.1) a training's ``regionCode``, a training record's training's, an
    evaluation's activity's, a commendation's subject's as the subject is now.

    Args:
        u: the unit of work (it reads the org).
        kind: the batch type of ``doc``.
        doc: the wire record.
    """
    if kind in ("org", "activity", "training"):
        return doc["regionCode"][:2]
    if kind == "volunteer":
        return doc["homeProvince"]
    if kind in ("trainingRecord", "evaluation", "commendation"):  # v1.1: the province of the record named
        ref_kind, ref_id = {
            "trainingRecord": ("training", doc.get("trainingId")),
            "evaluation": ("activity", doc.get("activityId")),
            "commendation": ("volunteer" if doc.get("subjectType") == "VOLUNTEER" else "org", doc.get("subjectId")),
        }[kind]
        ref = u.get(ref_kind, ref_id)
        return ref.province if ref else "00"
    org = u.get("org", doc["orgId"])
    return org.province if org else "00"


def owns(c: Ctx, rec: Record) -> bool:
    """Whether the actor may write ``rec`` (§1 "ownership").

    Orgs and memberships of the province, volunteers of the home province, the
    activities and service records the client created, and (v1.1) the trainings, training records, commendations
    and evaluations it created while they are in its province.
    """
    if c.client_id == PORTAL:
        return True
    if rec.kind in ("org", "volunteer", "membership"):
        return rec.province == c.province
    if rec.kind in ("training", "trainingRecord", "commendation", "evaluation"):  # v1.1: while in its province
        return rec.doc["ownerClientId"] == c.client_id and rec.province == c.province
    return rec.doc["ownerClientId"] == c.client_id


def not_owner(rec: Record | None = None, message: str | None = None) -> Refusal:
    """The 403 ``NOT_OWNER`` refusal (§1 "ownership"), naming ``rec``'s id when given."""
    return Refusal(
        403,
        "NOT_OWNER",
        message or "the record is outside this client's scope",
        {"id": rec.id} if rec else None,
    )


def check_if_match(rec: Record, if_match: Any) -> None:
    """§5.1: no ``If-Match`` → 428 ``PRECONDITION_REQUIRED``; another version than ``rec``'s → 412
    ``VERSION_MISMATCH`` with the current record in ``data.current``."""
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
    doc = bump(c, vol.doc)
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


def check_unique(u: UnitOfWork, kind: str, doc: dict[str, Any], self_id: str | None) -> None:
    """Nationwide identity and live-USCC uniqueness (§4.1, §4.2).

    Args:
        u: the unit of work (it finds the other records).
        kind: the batch type of ``doc``; only volunteers and orgs that are not ``DISSOLVED`` are checked.
        doc: the wire record as it would be written.
        self_id: the record's own id (an update), or ``None`` (a create).

    Raises:
        Refusal: 409 ``DUPLICATE_ID_NUMBER`` or ``DUPLICATE_USCC`` with ``data`` ``{existingId, ownerClientId}``.
    """
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
            raise not_owner(message="a client registers volunteers of its own province only")
        if kind == "serviceRecord":
            org = u.get("org", fields["orgId"])
            if org is not None and org.province != c.province:
                raise not_owner(org, "the recording team is in another province")
        if kind == "activity":
            org = u.get("org", fields["orgId"])
            if org is not None and org.province != c.province:
                raise not_owner(org, "the org is in another province")
        existing = u.find(kind, "ref_key", ref_key(c.client_id, fields["clientRef"]) or "")
        if existing:
            raise Refusal(
                409, "DUPLICATE_CLIENT_REF", "this clientRef was used already", {"existingId": existing[0].id}
            )
    hours: int = fields.get("hours", 0)  # hundredths of an hour; only a service record has (and needs) them
    doc = _new_doc(u, c, kind, fields)
    check_unique(u, kind, doc, None)
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
    rec = Record(kind, doc, province_of(u, kind, doc))
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
    if not owns(c, rec):
        raise not_owner(rec)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    check_if_match(rec, if_match)
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
        raise not_owner(rec, "a transfer to another province happens on the registry's side")
    fields.pop("clientRef", None)
    doc = dict(rec.doc)
    doc.update(fields)
    if doc == rec.doc:
        return Outcome(200, "OK", "unchanged", rec.doc)
    check_unique(u, kind, doc, rec.id)
    doc["version"] += 1
    doc["updatedAt"] = c.stamp
    new = Record(kind, doc, province_of(u, kind, doc))
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)
    return Outcome(200, "OK", "updated", doc)


def op_update_membership(u: UnitOfWork, c: Ctx, record_id: Any, if_match: Any, body: Any) -> Outcome:
    """``update`` of a membership in a ``POST /batch`` (§4.3, §5.1): its dates under ``ifMatch``; a ``leftOn``
    set where there was none is fed as a ``delete``."""
    rec = u.get("membership", record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", "no membership with this id")
    if not owns(c, rec):
        raise not_owner(rec)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    check_if_match(rec, if_match)
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
    u.feed(new, feed_op("membership", rec.doc, doc), c.client_id, rec.province)
    return Outcome(200, "OK", "updated", doc)


def op_delete(u: UnitOfWork, c: Ctx, kind: str, record_id: Any, if_match: Any) -> Outcome:
    """``DELETE /volunteers/{id}`` (deregister) or ``DELETE /orgs/{id}`` (dissolve) (§5.1, §4.1)."""
    if kind not in ("org", "volunteer"):
        raise Refusal(400, "BAD_REQUEST", f"a {kind} is not deleted (records are never erased)")
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {kind} with this id")
    if not owns(c, rec):
        raise not_owner(rec)
    check_if_match(rec, if_match)
    end = ENDED[kind]
    if rec.doc["status"] == end:
        return Outcome(200, "OK", f"already {end}", rec.doc)
    if kind == "org":
        live = [ch.id for ch in u.find("org", "parent_id", rec.id) if ch.doc["status"] != "DISSOLVED"]
        if live:
            raise Refusal(409, "ORG_HAS_ACTIVE_CHILDREN", "dissolve the child orgs first", {"childIds": live})
    doc = bump(c, rec.doc)
    doc["status"] = end
    new = Record(kind, doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "delete", c.client_id, rec.province)
    return Outcome(200, "OK", end.lower(), doc)


def op_revoke(u: UnitOfWork, c: Ctx, record_id: Any, body: Any) -> Outcome:
    """``POST /service-records/{id}:revoke`` (§4.5): idempotent; the volunteer's hours drop. Fed as an ``upsert``
    (§5.3: a revoke is an upsert; the record stays, REVOKED)."""
    rec = u.get("serviceRecord", record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", "no service record with this id")
    if not owns(c, rec):
        raise not_owner(rec)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    errors = [FieldError(k, "UNKNOWN_FIELD", "not a field of a revoke") for k in body if k != "reason"]
    try:
        reason = rules.text_check(1, 200)(body.get("reason")) if body.get("reason") is not None else None
        if reason is None:
            errors.append(FieldError("reason", "REQUIRED", "a revoke gives its reason"))
    except rules.Invalid as exc:
        errors.append(FieldError("reason", exc.code, exc.message))
    if errors:
        raise invalid(errors)
    if rec.doc["status"] == "REVOKED":
        return Outcome(200, "OK", "already revoked", rec.doc)
    doc = bump(c, rec.doc)
    doc["status"] = "REVOKED"
    doc["revokeReason"] = reason
    new = Record("serviceRecord", doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)  # §5.3: a revoke is an upsert
    _set_hours(u, c, doc["volunteerId"], -int(doc["hours"].replace(".", "")), c.client_id)
    return Outcome(200, "OK", "revoked", doc)


def _revoke_record(u: UnitOfWork, c: Ctx, rec: Record, reason: str) -> int:
    """Revoke an ACCEPTED service record inside a correction (§4.5): its status, ``revokeReason`` and a new
    version, fed as an ``upsert`` (§5.3: a revoke is an upsert).

    Returns:
        The record's hours in hundredths, for the caller to take off the volunteer's ``totalHours``.
    """
    doc = bump(c, rec.doc)
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
    if not owns(c, rec):
        raise not_owner(rec)
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
        raise not_owner(org, "the org is in another province")
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
        doc = bump(c, found[0].doc)
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
    doc = bump(c, rec.doc)
    doc["leftOn"] = left
    new = Record("membership", doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "delete", c.client_id, rec.province)
    return Outcome(200, "OK", "left", doc)


def portal_patch(u: UnitOfWork, c: Ctx, kind: str, record_id: str, patch: dict[str, Any]) -> Outcome:
    """A direct edit by the portal or the civil-affairs side (§8).

    Sets wire fields, bumps the version, feeds the change (to the province before and after) with the ``op`` of
    :func:`feed_op` (§5.3: ``delete`` for a deregistration, a dissolution or a leave; a revoke or a cancellation
    is an ``upsert``). Not validated: the tests may plant any state.
    """
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {kind} with this id")
    locked = [k for k in patch if k in ("id", "version", "createdAt", "updatedAt", "ownerClientId")]
    if locked:
        raise invalid([FieldError(k, "READ_ONLY_FIELD", "cannot be patched") for k in locked])
    doc = bump(c, rec.doc)
    doc.update(patch)
    if kind == "volunteer" and "totalHours" in patch:
        doc["starLevel"] = star_level(int(doc["totalHours"].replace(".", "")))
    new = Record(kind, doc, province_of(u, kind, doc))
    check_unique(u, kind, doc, rec.id)
    u.put(new, new=False)
    u.feed(new, feed_op(kind, rec.doc, doc), PORTAL, rec.province)
    return Outcome(200, "OK", "patched", doc)
