"""Writes of the sandbox's admin endpoints that skip the registry's rules: records seeded as they are (§8: records
left by older channels) and, for the tests, changes of record types the sandbox does not implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import func, select

from regsync.sandbox.calls import PORTAL
from regsync.sandbox.operations import province_of
from regsync.sandbox.rules import format_time, star_level
from regsync.sandbox.store import Record, Store, UnitOfWork, counters, foreign


class AdminWrites:
    """The admin writes of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attributes below).

    Attributes:
        store: the database.
        clock: the registry's clock, Unix seconds.
    """

    store: Store
    clock: Callable[[], float]

    def bulk_insert(self, kind: str, docs: list[dict[str, Any]], province: str | None = None) -> list[str]:
        """Insert records as they are, for seeding (§8: records left by older channels): no rules checked, no
        change fed (they predate the client's cursor). A doc without ``id`` gets a fresh one; ``version``,
        ``createdAt``/``updatedAt`` (now), ``clientRef`` (null) and ``ownerClientId`` (``PORTAL``) are filled when
        missing, and so are a volunteer's ``totalHours`` and ``trainingHours`` (``"0.00"``) and ``starLevel`` (from
        them, §4.2). The province is
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
                if kind == "volunteer":  # derived fields (§4.2): none yet unless the doc gives them
                    doc.setdefault("totalHours", "0.00")
                    doc.setdefault("trainingHours", "0.00")
                if kind == "volunteer" and "starLevel" not in doc:
                    doc["starLevel"] = star_level(int(doc["totalHours"].replace(".", "")))
                if not doc.get("id"):
                    doc["id"] = u.new_id(kind)
                for name, value in (("version", 1), ("createdAt", stamp), ("updatedAt", stamp), ("clientRef", None),
                                    ("ownerClientId", PORTAL)):
                    doc.setdefault(name, value)
                u.put(Record(kind, doc, province or province_of(u, kind, doc)), new=True)
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
