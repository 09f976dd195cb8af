"""Writes of the sandbox's admin endpoints that skip the registry's rules: records seeded as they are (§8: records
left by older channels) and, for the tests, changes of record types the sandbox does not implement."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import func, select

from regsync.sandbox import rules, rules11
from regsync.sandbox.calls import PORTAL, Refusal
from regsync.sandbox.operations import province_of
from regsync.sandbox.rules import FieldError, format_time, star_level
from regsync.sandbox.store import (
    KEY_FIELDS,
    NULLABLE_KEYS,
    TABLES,
    Record,
    Store,
    UnitOfWork,
    counters,
    foreign,
    misfits,
    record_columns,
)

#: The field a record's province comes from when the call names none (:func:`~regsync.sandbox.operations.
#: province_of`), for the kinds that give it themselves; the others take it from a record a key field names.
PROVINCE_FIELDS = {"org": "regionCode", "activity": "regionCode", "training": "regionCode", "volunteer": "homeProvince"}
#: Key fields that name another record: registry ids (§1).
_ID_FIELDS = frozenset({"parentId", "orgId", "volunteerId", "trainingId", "activityId", "subjectId"})
_HOURS = re.compile(r"\d{1,7}\.\d{2}")


def _status_on_create(kind: str) -> str | None:
    """A kind's status on create (§4), or ``None`` for memberships (they have none)."""
    if kind in rules.STATUSES:
        return rules.STATUSES[kind][1]
    return rules11.STATUSES11[kind][1] if kind in rules11.STATUSES11 else None


def _filled(kind: str, doc: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A copy of a seeded record with what it leaves out filled in (:meth:`AdminWrites.bulk_insert`); not ``id``."""
    doc = dict(doc)
    for name, value in (("version", 1), ("createdAt", stamp), ("updatedAt", stamp), ("clientRef", None),
                        ("ownerClientId", PORTAL), ("status", _status_on_create(kind))):
        if value is not None:
            doc.setdefault(name, value)
    if kind == "volunteer":  # derived fields (§4.2): none yet unless the doc gives them
        doc.setdefault("totalHours", "0.00")
        doc.setdefault("trainingHours", "0.00")
        doc.setdefault("starLevel", star_level(int(doc["totalHours"].replace(".", ""))))
    return doc


def _unstorable(errors: list[FieldError]) -> Refusal:
    return Refusal(422, "VALIDATION_FAILED", "records the sandbox cannot store as they are",
                   {"errors": [e.as_wire() for e in errors]})


def seed_errors(kind: str, index: int, doc: Any, province: str | None) -> list[FieldError]:
    """Why the seeded record ``doc`` (the ``index``-th of the call) cannot be stored, or ``[]``.

    Only what storing it needs, no rule of the registry's (§8: records as older channels left them): a JSON object;
    its kind's key fields (:data:`~regsync.sandbox.store.KEY_FIELDS`; registry ids where they name a record) and,
    without ``province``, the field its province comes from (:data:`PROVINCE_FIELDS`); ``id`` a registry id,
    ``version`` an integer ≥ 1, ``clientRef`` and ``ownerClientId`` strings of at most 64 characters, ``status``
    a string, a volunteer's ``totalHours`` and ``trainingHours`` two-place decimal strings, when given.

    Returns:
        The errors, each ``field`` ``records[index].name`` (``records[index]`` for the record itself), code
        ``REQUIRED`` or ``INVALID_VALUE``.
    """
    at = f"records[{index}]"
    if not isinstance(doc, dict):
        return [FieldError(at, "INVALID_VALUE", "a record is a JSON object of wire fields")]
    errors: list[FieldError] = []

    def bad(name: str, message: str) -> None:
        errors.append(FieldError(f"{at}.{name}", "INVALID_VALUE", message))

    needed = [*KEY_FIELDS[kind], *([PROVINCE_FIELDS[kind]] if province is None and kind in PROVINCE_FIELDS else [])]
    for name in needed:
        value = doc.get(name)
        if name not in doc or (value is None and name not in NULLABLE_KEYS):
            errors.append(FieldError(f"{at}.{name}", "REQUIRED", "a key field: the sandbox cannot store the record "
                                                                   "without it"))
        elif value is None:
            continue
        elif name in _ID_FIELDS:
            try:
                rules.check_registry_id(value)
            except rules.Invalid as exc:
                bad(name, exc.message)
        elif not isinstance(value, str) or (name == PROVINCE_FIELDS.get(kind) and len(value) < 2):
            bad(name, "a string" if name != PROVINCE_FIELDS.get(kind) else "a string that starts with the province")
    if doc.get("id") is not None:
        try:
            rules.check_registry_id(doc["id"])
        except rules.Invalid as exc:
            bad("id", exc.message)
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        bad("version", "an integer ≥ 1")
    for name, nullable in (("clientRef", True), ("ownerClientId", False), ("status", False)):
        value = doc.get(name, "x")
        if not (value is None and nullable) and not (isinstance(value, str) and 1 <= len(value) <= 64):
            bad(name, "a string of 1 to 64 characters" + (", or null" if nullable else ""))
    if kind == "volunteer":
        for name in ("totalHours", "trainingHours"):
            if name in doc and not (isinstance(doc[name], str) and _HOURS.fullmatch(doc[name])):
                bad(name, 'hours as a decimal string with two places, e.g. "2.50"')
    return errors


class AdminWrites:
    """The admin writes of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attributes below).

    Attributes:
        store: the database.
        clock: the registry's clock, Unix seconds.
    """

    store: Store
    clock: Callable[[], float]

    def bulk_insert(self, kind: str, docs: list[Any], province: str | None = None) -> list[str]:
        """Insert records as they are, for seeding (§8: records left by older channels): no rules checked, no
        change fed (they predate the client's cursor). A doc without ``id`` gets a fresh one; ``version``,
        ``createdAt``/``updatedAt`` (now), ``clientRef`` (null), ``ownerClientId`` (``PORTAL``) and ``status`` (the
        kind's status on create, §4; memberships have none) are filled when missing, and so are a volunteer's
        ``totalHours`` and ``trainingHours`` (``"0.00"``) and ``starLevel`` (from them, §4.2). The province is
        ``province`` or the record's own (§1 "scope"; a membership's or a service record's from its org, a training
        record's from its training…).

        What the sandbox needs to store a record at all is checked, and nothing else (:func:`seed_errors`): each
        record a JSON object with its kind's key fields (:data:`~regsync.sandbox.store.KEY_FIELDS`) and the field
        its province comes from; the whole call is refused when one is not.

        Returns:
            The records' ids, in order.

        Raises:
            Refusal: 400 ``BAD_REQUEST`` for a ``province`` that is not two digits; 422 ``VALIDATION_FAILED`` with
                ``data.errors`` (``field`` ``records[i].name``, code ``REQUIRED`` or ``INVALID_VALUE``) when a
                record cannot be stored; nothing is inserted.
            sqlalchemy.exc.IntegrityError: a unique key is taken (an id, an ID number, a USCC, a pair…).
        """
        if province is not None and not (isinstance(province, str) and len(province) == 2 and province.isdigit()):
            raise Refusal(400, "BAD_REQUEST", "province is a 2-digit GB/T 2260 province code")
        errors = [e for i, doc in enumerate(docs) for e in seed_errors(kind, i, doc, province)]
        if errors:
            raise _unstorable(errors)
        now = self.clock()
        stamp = format_time(now)
        with self.store.write() as conn:
            u = UnitOfWork(conn, now)
            u.reserve_ids(kind, sum(1 for d in docs if not d.get("id")))
            ids: list[str] = []
            for doc in docs:
                doc = _filled(kind, doc, stamp)
                if not doc.get("id"):
                    doc["id"] = u.new_id(kind)
                rec = Record(kind, doc, province or province_of(u, kind, doc))
                bad = misfits(TABLES[kind], record_columns(kind, doc, rec.province))
                if bad:  # a value too long for its key column (an ID number of 80 characters…)
                    raise _unstorable([FieldError(f"records[{len(ids)}]", "INVALID_VALUE", "; ".join(bad))])
                u.put(rec, new=True)
                ids.append(doc["id"])
            u.flush(stamp)
        return ids

    def record_foreign(self, type_name: str, doc: dict[str, Any], province: str, *, op: str = "upsert",
                       export: str | None = None) -> dict[str, Any]:
        """Test support, not of registry-api.md: record a change of a record of a type a v1 client does not know
        (``type_name``, e.g. v1.1's name ``commendation`` or an invented ``planet``), kept apart from the sandbox's
        own records, so that a client meets a feed entry of a type it does not know (§1: it skips and counts it and
        moves its cursor past it).

        Args:
            type_name: the feed entry's ``type`` (≤ 16 characters; not one of v1's types).
            doc: the record's wire fields; ``id`` (default ``FGN`` + a number), ``version`` (1), ``createdAt``/
                ``updatedAt`` (now), ``clientRef`` (null) and ``ownerClientId`` (``PORTAL``) are filled when
                missing, and ``type`` is set to ``type_name``.
            province: the province fed (§1 "scope").
            op: the feed entry's ``op``.
            export: a batch type (``volunteer``…) whose export includes the record as a line, in id order, with its
                ``type``; ``None`` for the feed only. ``POST /lookup`` never answers it (it is not one of the
                sandbox's records).

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
