"""The sandbox registry's writes of registry-api.md v1.1's kinds: trainings (§4.6), training records (§4.7),
commendations (§4.8) and evaluations (§4.9) — create, update under ``If-Match``, ``:revoke``, a training record's
``:correct`` — with the rules that read other records: references (``REFERENCE_NOT_FOUND``,
``REFERENCE_NOT_ACTIVE``), the annual scheme's ``NOT_EARNED``, ``NOT_A_PARTICIPANT``, ``NOT_THE_ORGANIZER``, the
one-ACTIVE rules (409 ``DUPLICATE_TRAINING_RECORD``, ``DUPLICATE_COMMENDATION``, ``DUPLICATE_EVALUATION``) and a
volunteer's derived ``trainingHours``.

Like :mod:`regsync.sandbox.operations`, each is a function of a unit of work and the caller's
:class:`~regsync.sandbox.calls.Ctx` returning an :class:`~regsync.sandbox.calls.Outcome`, or raising a
:class:`~regsync.sandbox.calls.Refusal` before it changes anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from regsync.sandbox import rules, rules11
from regsync.sandbox.calls import PORTAL, Ctx, Outcome, Refusal, invalid
from regsync.sandbox.operations import bump, check_if_match, new_doc_head, not_owner, owns, province_of
from regsync.sandbox.rules import FieldError, parse_time
from regsync.sandbox.rules11 import TIERS, format_class_hours, local_date
from regsync.sandbox.store import Record, UnitOfWork, commendation_key, commendations, ref_key, service_records

_NAMES = {
    "training": "training",
    "trainingRecord": "training record",
    "commendation": "commendation",
    "evaluation": "evaluation",
}
_DUPLICATE = {
    "trainingRecord": "DUPLICATE_TRAINING_RECORD",
    "commendation": "DUPLICATE_COMMENDATION",
    "evaluation": "DUPLICATE_EVALUATION",
}


def set_training_hours(u: UnitOfWork, c: Ctx, volunteer_id: str, delta: int) -> None:
    """Add ``delta`` hundredths to a volunteer's derived ``trainingHours`` (§4.2, v1.1): a new version, fed."""
    vol = u.get("volunteer", volunteer_id)
    if vol is None or delta == 0:
        return
    total = int(vol.doc.get("trainingHours", "0.00").replace(".", "")) + delta
    doc = bump(c, vol.doc)
    doc["trainingHours"] = format_class_hours(total)
    new = Record("volunteer", doc, vol.province)
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, vol.province)


def earned(u: UnitOfWork, subject: Record, year: int) -> int:
    """The registry's own figure of §4.8's scheme for ``subject`` in ``year`` (+08:00 dates): a volunteer's ACCEPTED
    service hours (hundredths) with ``serviceDate`` in ``year``; an org's count of ACCEPTED service records of
    ``year`` whose ``orgId`` or ``stationId`` is the org. Records revoked since count no more."""
    first, last = f"{year}-01-01", f"{year}-12-31"
    if subject.kind == "volunteer":  # the volunteer's records of the year: a range of the day_key index
        col = service_records.c.day_key
        found = u.scan(
            "serviceRecord",
            col.between(f"{subject.id}:{first}", f"{subject.id}:{last}"),
            lambda r: r.doc["volunteerId"] == subject.id
            and r.doc["status"] == "ACCEPTED"
            and first <= r.doc["serviceDate"] <= last,
        )
        return sum(int(r.doc["hours"].replace(".", "")) for r in found)
    sr = service_records.c  # an org's: a count over the org_id and station_id indexes, each branch a range of one
    of_year = (sr.service_date.between(first, last), sr.status == "ACCEPTED")
    return u.count(
        "serviceRecord",
        or_(and_(sr.org_id == subject.id, *of_year), and_(sr.station_id == subject.id, *of_year)),
        lambda r: r.doc["status"] == "ACCEPTED"
        and first <= r.doc["serviceDate"] <= last
        and subject.id in (r.doc["orgId"], r.doc.get("stationId")),
    )


def _reference(
    u: UnitOfWork, c: Ctx, kind: str, ref_id: Any, field: str, errors: list[FieldError], *, live: tuple[str, ...]
) -> Record | None:
    """The record ``ref_id`` names, or ``None`` with a field error: ``REFERENCE_NOT_FOUND`` when unknown or of
    another province than the caller's (the portal sees every province), ``REFERENCE_NOT_ACTIVE`` when its status
    is not one of ``live``."""
    rec = u.get(kind, ref_id)
    if rec is None or (c.client_id != PORTAL and rec.province != c.province):
        errors.append(FieldError(field, "REFERENCE_NOT_FOUND", f"no {kind} with this id in the province"))
        return None
    if rec.doc.get("status") not in live:
        errors.append(FieldError(field, "REFERENCE_NOT_ACTIVE", f"the {kind} is {rec.doc.get('status')}"))
        return None
    return rec


def _check_references(
    u: UnitOfWork, c: Ctx, kind: str, f: dict[str, Any], errors: list[FieldError], *, create: bool
) -> dict[str, Record]:
    """The rules of §4.6–§4.9 that read other records; returns the records found, by field."""
    bad = {e.field for e in errors}
    found: dict[str, Record] = {}

    def ref(field: str, ref_kind: str, live: tuple[str, ...]) -> None:
        if field not in bad:
            rec = _reference(u, c, ref_kind, f[field], field, errors, live=live)
            if rec is not None:
                found[field] = rec

    if kind == "training" and create:
        ref("orgId", "org", ("ACTIVE",))
    elif kind == "trainingRecord":
        ref("trainingId", "training", ("SCHEDULED", "COMPLETED"))
        if "volunteerId" not in bad:
            vol = u.get("volunteer", f["volunteerId"])
            if vol is None:
                errors.append(FieldError("volunteerId", "REFERENCE_NOT_FOUND", "no volunteer with this id"))
            elif vol.doc["status"] != "ACTIVE":
                errors.append(FieldError("volunteerId", "REFERENCE_NOT_ACTIVE", "the volunteer is not ACTIVE"))
        training = found.get("trainingId")
        if training is not None:
            t = training.doc
            first, last = local_date(t["startsAt"]), local_date(t["endsAt"])
            if "completedOn" not in bad and not first <= f["completedOn"] <= last:
                errors.append(
                    FieldError("completedOn", "OUT_OF_RANGE", f"outside the training's dates {first} to {last}")
                )
            top = int(t["classHours"].replace(".", ""))
            if "classHours" not in bad and f["classHours"] > top:
                errors.append(
                    FieldError("classHours", "INVALID_CLASS_HOURS", f"more than the training's {t['classHours']}")
                )
    elif kind == "commendation" and create:
        if "subjectType" not in bad:
            ref("subjectId", "volunteer" if f["subjectType"] == "VOLUNTEER" else "org", ("ACTIVE",))
        subject = found.get("subjectId")
        if subject is not None and not errors and f["scheme"]:  # the scheme's rule, once the rest is valid
            need, have = TIERS[f["subjectType"]][f["tier"]], earned(u, subject, f["year"])
            if have < need:
                if subject.kind == "volunteer":
                    message = (
                        f"{f['tier']} needs {format_class_hours(need)} hours of service in {f['year']}; the registry "
                        f"has {format_class_hours(have)} hours of ACCEPTED service records of that year"
                    )
                else:
                    message = (
                        f"{f['tier']} needs {need} services in {f['year']}; the registry has {have} ACCEPTED "
                        f"service records of that year"
                    )
                errors.append(FieldError("tier", "NOT_EARNED", message))
    elif kind == "evaluation":
        act = None
        if "activityId" not in bad:
            act = u.get("activity", f["activityId"])
            if act is None or (c.client_id != PORTAL and act.province != c.province):
                errors.append(
                    FieldError("activityId", "REFERENCE_NOT_FOUND", "no activity with this id in the province")
                )
                act = None
            else:
                found["activityId"] = act
        if act is not None:
            a = act.doc
            if create and "evaluatorOrgId" not in bad and f["evaluatorOrgId"] != a["orgId"]:
                errors.append(FieldError("evaluatorOrgId", "NOT_THE_ORGANIZER", "not the activity's org"))
            if "evaluatedOn" not in bad and f["evaluatedOn"] < local_date(a["endsAt"]):
                errors.append(
                    FieldError("evaluatedOn", "OUT_OF_RANGE", f"before the activity's end {local_date(a['endsAt'])}")
                )
            if create and "volunteerId" not in bad:
                if u.get("volunteer", f["volunteerId"]) is None:
                    errors.append(FieldError("volunteerId", "REFERENCE_NOT_FOUND", "no volunteer with this id"))
                elif not _participated(u, act, f["volunteerId"]):
                    errors.append(
                        FieldError("volunteerId", "NOT_A_PARTICIPANT", "no ACCEPTED service record in the activity")
                    )
    return found


def _participated(u: UnitOfWork, act: Record, volunteer_id: str) -> bool:
    first, last = act.doc["startsAt"][:10], act.doc["endsAt"][:10]
    col = service_records.c.day_key
    return bool(
        u.scan(
            "serviceRecord",
            col.between(f"{volunteer_id}:{first}", f"{volunteer_id}:{last}"),
            lambda r: r.doc["volunteerId"] == volunteer_id
            and r.doc["activityId"] == act.id
            and r.doc["status"] == "ACCEPTED",
        )
    )


def _completed_too_early(c: Ctx, f: dict[str, Any]) -> None:
    """§4.6: ``COMPLETED`` only once ``endsAt`` has passed on the registry's clock, else 409 ``INVALID_STATE``."""
    if f.get("status") == "COMPLETED" and parse_time(f["endsAt"]).timestamp() > c.now:
        raise Refusal(
            409, "INVALID_STATE", "a training is COMPLETED only once its endsAt has passed", {"endsAt": f["endsAt"]}
        )


def _duplicate(u: UnitOfWork, kind: str, doc: dict[str, Any], skip: str | None) -> None:
    """The one-ACTIVE (ACCEPTED) rules of §4.7–§4.9: 409 ``DUPLICATE_*`` with ``data.existingId``."""
    if kind == "commendation":
        column, key, live = "dup_key", commendation_key(doc), "ACTIVE"
    elif kind == "trainingRecord":
        column, key, live = "pair_key", f"{doc['trainingId']}:{doc['volunteerId']}", "ACCEPTED"
    elif kind == "evaluation":
        column, key, live = "pair_key", f"{doc['activityId']}:{doc['volunteerId']}", "ACTIVE"
    else:
        return
    for other in u.find(kind, column, key):
        if other.id != skip and other.id != doc["id"] and other.doc["status"] == live:
            raise Refusal(
                409, _DUPLICATE[kind], f"an {live} {_NAMES[kind]} of this key exists", {"existingId": other.id}
            )


def create11(u: UnitOfWork, c: Ctx, kind: str, body: Any, *, corrects: Record | None = None) -> Outcome:
    """``POST /{collection}`` of a v1.1 kind (§4.6–§4.9, §5.1).

    Args:
        u: the unit of work of the call (or batch).
        c: who acts and when (the portal has no ``clientRef`` and sees every province).
        kind: ``training``, ``trainingRecord``, ``commendation`` or ``evaluation``.
        body: the decoded JSON body (wire names).
        corrects: for a training record's ``:correct``, the ACCEPTED record the new one replaces: left out of the
            one-ACCEPTED rule, revoked (``"corrected"``) only once every rule has passed.

    Returns:
        201 with the record.

    Raises:
        Refusal: 400 (not an object), 422 ``VALIDATION_FAILED`` (field codes of §7), 409 ``INVALID_STATE`` (a
            training created COMPLETED before its end; an evaluation of an activity not COMPLETED),
            ``DUPLICATE_CLIENT_REF`` or ``DUPLICATE_*``; nothing is changed.
    """
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    if c.client_id == PORTAL and "clientRef" in body:
        raise invalid([FieldError("clientRef", "READ_ONLY_FIELD", "records made on the portal have no clientRef")])
    fields, errors = rules11.validate(kind, body, current=None, province=c.province or "", today=c.today)
    if c.client_id != PORTAL and "clientRef" not in fields and not any(e.field == "clientRef" for e in errors):
        errors.append(FieldError("clientRef", "REQUIRED", "a create carries the client's own id"))
    found = _check_references(u, c, kind, fields, errors, create=True)
    if errors:
        raise invalid(errors)
    if kind == "training":
        _completed_too_early(c, fields)
    if kind == "evaluation" and found["activityId"].doc["status"] != "COMPLETED":
        raise Refusal(409, "INVALID_STATE", "an activity is evaluated once it is COMPLETED (评价在结项之后)")
    if c.client_id != PORTAL:
        existing = u.find(kind, "ref_key", ref_key(c.client_id, fields["clientRef"]) or "")
        if existing:
            raise Refusal(
                409, "DUPLICATE_CLIENT_REF", "this clientRef was used already", {"existingId": existing[0].id}
            )
    doc = new_doc_head(u, c, kind, fields)
    for name in rules11.WRITABLE11[kind]:
        doc[name] = fields[name]
    if "classHours" in doc:
        doc["classHours"] = format_class_hours(fields["classHours"])
    doc["status"] = fields["status"]
    doc.update(rules11.DERIVED_DEFAULTS11.get(kind, {}))
    _duplicate(u, kind, doc, corrects.id if corrects is not None else None)
    delta = fields.get("classHours", 0)
    if corrects is not None:  # every rule passed: the old record goes with the new one
        doc["correctsId"] = corrects.id
        old_hours = _end(u, c, corrects, "corrected")
        if corrects.doc["volunteerId"] == doc["volunteerId"]:
            delta -= old_hours  # one change of trainingHours, one new version
        else:
            set_training_hours(u, c, corrects.doc["volunteerId"], -old_hours)
    rec = Record(kind, doc, province_of(u, kind, doc))
    u.put(rec, new=True)
    u.feed(rec, "upsert", c.client_id, None)
    if kind == "trainingRecord":
        set_training_hours(u, c, doc["volunteerId"], delta)
    return Outcome(201, "OK", "created", doc)


def _own_record(u: UnitOfWork, c: Ctx, kind: str, record_id: Any) -> Record:
    rec = u.get(kind, record_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", f"no {_NAMES[kind]} with this id")
    if not owns(c, rec):
        raise not_owner(rec)
    return rec


def update11(u: UnitOfWork, c: Ctx, kind: str, record_id: Any, if_match: Any, body: Any) -> Outcome:
    """``PUT /{collection}/{id}`` of a v1.1 kind (§5.1): the mutable fields under ``If-Match``.

    A training may change every field but ``orgId`` (a PUT with status ``CANCELLED`` ends it; ``COMPLETED`` only
    after ``endsAt``); a commendation its ``title``, ``awardedOn``, ``issuer``, ``documentName``,
    ``documentNumber`` and ``content``; an evaluation its scores, ``comment`` and ``evaluatedOn``. A training record
    is immutable, and so is an ended record (409 ``INVALID_STATE``). A PUT that changes nothing makes no version.

    Raises:
        Refusal: 404, 403 ``NOT_OWNER``, 409 ``INVALID_STATE``, 428, 412 (with ``data.current``), 422, 409
            ``DUPLICATE_COMMENDATION`` (a new title or date taken by an ACTIVE one).
    """
    rec = _own_record(u, c, kind, record_id)
    if kind == "trainingRecord":
        raise Refusal(409, "INVALID_STATE", "a training record is immutable: :correct it, or revoke and create")
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    check_if_match(rec, if_match)
    if rec.doc["status"] == rules11.ENDED11[kind]:
        raise Refusal(409, "INVALID_STATE", f"the {_NAMES[kind]} is {rec.doc['status']}: it cannot change")
    fields, errors = rules11.validate(kind, body, current=rec.doc, province=rec.province, today=c.today)
    _check_references(u, c, kind, fields, errors, create=False)
    if errors:
        raise invalid(errors)
    if kind == "training":
        _completed_too_early(c, fields)
    fields.pop("clientRef", None)
    doc = dict(rec.doc)
    doc.update(fields)
    if "classHours" in fields:
        doc["classHours"] = format_class_hours(fields["classHours"])
    if doc == rec.doc:
        return Outcome(200, "OK", "unchanged", rec.doc)
    _duplicate(u, kind, doc, None)
    doc = bump(c, doc)
    new = Record(kind, doc, province_of(u, kind, doc))
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)
    return Outcome(200, "OK", "cancelled" if doc["status"] == "CANCELLED" else "updated", doc)


def _end(u: UnitOfWork, c: Ctx, rec: Record, reason: str) -> int:
    """Revoke ``rec`` (status ``REVOKED``, ``revokeReason``, a new version fed as an ``upsert``, §5.3); returns a
    training record's class hours in hundredths (0 for the other kinds), for the caller to take off."""
    doc = bump(c, rec.doc)
    doc["status"] = "REVOKED"
    doc["revokeReason"] = reason
    new = Record(rec.kind, doc, rec.province)
    u.put(new, new=False)
    u.feed(new, "upsert", c.client_id, rec.province)
    return int(doc["classHours"].replace(".", "")) if rec.kind == "trainingRecord" else 0


def revoke11(u: UnitOfWork, c: Ctx, kind: str, record_id: Any, body: Any) -> Outcome:
    """``POST /{collection}/{id}:revoke`` with ``{"reason": str}`` for a training record, a commendation or an
    evaluation (§4.7–§4.9): idempotent (a REVOKED one answers 200 as it is); a training record's class hours leave
    the volunteer's ``trainingHours``. Fed as an ``upsert`` (§5.3).

    Raises:
        Refusal: 404, 403 ``NOT_OWNER``, 400 (not an object), 422 (``reason`` missing, or another field).
    """
    if kind not in _DUPLICATE:
        raise Refusal(400, "BAD_REQUEST", f"a {_NAMES.get(kind, kind)} is not revoked")
    rec = _own_record(u, c, kind, record_id)
    if not isinstance(body, dict):
        raise Refusal(400, "BAD_REQUEST", "the body must be a JSON object")
    errors = [FieldError(k, "UNKNOWN_FIELD", "not a field of a revoke") for k in body if k != "reason"]
    reason = None
    try:
        reason = rules.text_check(1, 200)(body["reason"]) if body.get("reason") is not None else None
        if reason is None:
            errors.append(FieldError("reason", "REQUIRED", "a revoke gives its reason"))
    except rules.Invalid as exc:
        errors.append(FieldError("reason", exc.code, exc.message))
    if errors:
        raise invalid(errors)
    assert reason is not None
    if rec.doc["status"] == "REVOKED":
        return Outcome(200, "OK", "already revoked", rec.doc)
    hours = _end(u, c, rec, reason)
    if kind == "trainingRecord":
        set_training_hours(u, c, rec.doc["volunteerId"], -hours)
    now = u.get(kind, rec.id)
    assert now is not None
    return Outcome(200, "OK", "revoked", now.doc)


def correct_training_record(u: UnitOfWork, c: Ctx, record_id: Any, body: Any) -> Outcome:
    """``POST /training-records/{id}:correct`` (§4.5, §4.7): revoke the old record (``"corrected"``) and accept
    the new one in one step, or change nothing; the one-ACCEPTED-per-pair rule counted without the old record.

    Raises:
        Refusal: 404, 403, 409 ``INVALID_STATE`` (the old record not ACCEPTED), or the new record's refusal as a
            create answers it.
    """
    rec = _own_record(u, c, "trainingRecord", record_id)
    if rec.doc["status"] != "ACCEPTED":
        raise Refusal(409, "INVALID_STATE", f"the record is {rec.doc['status']}: only an ACCEPTED record is corrected")
    return create11(u, c, "trainingRecord", body, corrects=rec)


def move_commendations(u: UnitOfWork, c: Ctx, volunteer: Record, before: str) -> None:
    """A transfer moves a volunteer's commendations (§1 "scope"): each gets the volunteer's new province and is fed
    to both provinces (a new version: the record's province changed)."""
    mine = u.scan(
        "commendation", commendations.c.subject_id == volunteer.id, lambda r: r.doc["subjectId"] == volunteer.id
    )
    for rec in mine:
        if rec.province == volunteer.province:
            continue
        new = Record("commendation", bump(c, rec.doc), volunteer.province)
        u.put(new, new=False)
        u.feed(new, "upsert", c.client_id, before)

