"""Seed the sandbox registry with a province's records as older channels would have left them (design.md flow 4,
registry-api.md §8), for the adopt and reconcile tests, the demo and the benches.

The registry's side is made **from a platform store** (by default one generated afresh with the same scale and
seed as ``regsync generate``, so both sides hold the same people): every record the registry would have accepted
(unfixable dirt is left out; a person registered twice on the platform is one record there), as the portal owns
it (``ownerClientId`` ``PORTAL``, no ``clientRef``), normalized as the registry stores it, with, at the rates of
:class:`SeedRates`:

* ``missing_in_registry``: volunteers, memberships, service records, and (registry-api.md v1.1) training records,
  commendations and evaluations the older channels never carried over;
* ``differing``: registry records that differ from the platform's (a volunteer's phone or skills, an org's contact
  name, an activity's planned headcount, a training's contact name, a commendation's document name, an evaluation's
  comment);
* ``missing_locally``: people who self-registered on the portal and that the platform lacks.

Which records are dropped or changed is decided by a keyed hash of the seed, the kind and the local id, so the
same seed gives the same registry, and a volunteer's ``totalHours``/``starLevel`` and ``trainingHours`` add up the
service records and training records actually seeded.

Of v1.1's kinds the registry holds only what it would have accepted (§4.6–§4.9): ACCEPTED training records within
their training's class hours, one per training and person; ACTIVE commendations of a subject seeded, one per subject
and scheme year (or title and date); ACTIVE evaluations of COMPLETED activities with scores 1–5, one per activity
and person. The generator's dirt of those kinds is left out, as unfixable dirt is.

Records go in through ``POST /_sandbox/records/{collection}`` (:func:`http_bulk`, a running sandbox) or straight
into a :class:`~regsync.sandbox.server.SandboxServer`'s registry (:func:`inprocess_bulk`), in chunks, written in the
registry's form by :mod:`regsync.generate.registry_docs` (a volunteer's ``starLevel`` is the sandbox's to derive
from its ``totalHours``). With
``link=True`` (benches, "a platform in step") the records are the client's own and each local row gets its link
(base snapshot = the registry's record), as if it had been synced.

Memory: volunteers and service records are read and sent in keyset pages; the maps from local to registry ids are
kept for orgs, activities and trainings (with the activities COMPLETED and the trainings' class hours), and for
volunteers only when records that refer to them are seeded too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine
from stdnum.cn import ric

from regsync.db import seeding
from regsync.db.hashkey import check_hash_key
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine, utcnow
from regsync.domain.normalize import try_normalize_id_number
from regsync.domain.projection import REFERENCES, canonical, dumps, project_local, project_registry
from regsync.generate.generator import REQUIRES, generate
from regsync.generate.registry_docs import COLLECTIONS, TYPES, format_hours, record_doc

log = structlog.get_logger(__name__)

#: Records per bulk call.
CHUNK = 2000
#: Local kinds in the order they are seeded (references first).
ORDER: tuple[str, ...] = ("org", "volunteer", "membership", "activity", "service_record", "training",
                          "training_record", "commendation", "evaluation")
#: The kinds whose records refer to volunteers.
_OF_VOLUNTEERS = frozenset({"membership", "service_record", "training_record", "commendation", "evaluation"})
_LEVELS = ("CITY_CORPS", "PROVINCIAL_CORPS", "DISTRICT_BRIGADE", "CITY_DETACHMENT", "STREET_STATION", "COUNTY_UNIT",
           "COMMUNITY_STATION", "GRASSROOTS_TEAM")

#: ``bulk(kind, docs) -> ids``: how records reach the sandbox.
Bulk = Callable[[str, list[dict[str, Any]]], list[str]]
#: One record to send: its local row, its synced fields (Python names) and its document (the registry's).
_Item = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class SeedRates:
    """How far the registry's side is from the platform's (fractions, 0 to 1).

    Attributes:
        missing_in_registry: volunteers, memberships and service records of the platform the registry lacks.
        differing: registry records whose fields differ from the platform's.
        missing_locally: portal self-registrations the platform lacks, per volunteer seeded.
    """

    missing_in_registry: float = 0.03
    differing: float = 0.05
    missing_locally: float = 0.02

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


NONE = SeedRates(0.0, 0.0, 0.0)


@dataclass
class SeedSummary:
    """What was seeded: records per kind (local names), those left out or changed on purpose, and the portal's
    extra volunteers."""

    seeded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    left_out: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    differing: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unfit: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    extra_volunteers: int = 0
    linked: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"seeded": dict(self.seeded), "left_out": dict(self.left_out), "differing": dict(self.differing),
                "unfit": dict(self.unfit), "extra_volunteers": self.extra_volunteers, "linked": self.linked}


def http_bulk(admin_url: str, province: str = "23", timeout_s: float = 120.0) -> Bulk:
    """Send records through a running sandbox's admin endpoint (``…/_sandbox``)."""
    def bulk(kind: str, docs: list[dict[str, Any]]) -> list[str]:
        r = httpx.post(f"{admin_url.rstrip('/')}/records/{COLLECTIONS[kind]}",
                       json={"records": docs, "province": province}, timeout=timeout_s)
        if r.status_code != 201:
            raise RuntimeError(f"the sandbox refused a bulk insert of {kind}: {r.status_code} {r.text[:300]}")
        return list(r.json()["data"]["ids"])

    return bulk


def inprocess_bulk(server: Any, province: str = "23") -> Bulk:
    """Write records straight into a thread-mode :class:`~regsync.sandbox.server.SandboxServer`'s registry."""
    registry = server.app.state.sandbox.registry

    def bulk(kind: str, docs: list[dict[str, Any]]) -> list[str]:
        return list(registry.bulk_insert(TYPES[kind], docs, province))

    return bulk


def _draw(seed: int, what: str, kind: str, local_id: int) -> float:
    """A stable draw in [0, 1) for one record and purpose."""
    h = hashlib.blake2b(f"{seed}:{what}:{kind}:{local_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _doc(fields: dict[str, Any], owner: str | None, client_ref: str | None) -> dict[str, Any]:
    body = record_doc(fields)
    if owner:
        body["ownerClientId"] = owner
    body["clientRef"] = client_ref
    return body


class Seeder:
    """One seeding (module docstring).

    Args:
        local: the platform store the records come from.
        bulk: how records reach the sandbox (:func:`http_bulk`, :func:`inprocess_bulk`).
        kinds: local kinds to seed (default all); a kind's references must be seeded too.
        rates: :class:`SeedRates`.
        seed: the seed of every draw.
        owner: ``ownerClientId`` of the seeded records (default ``PORTAL``); with ``link`` the client's id.
        link: write the local links too (a platform in step).
        hash_key: the local secret for the links' base snapshots: the store's own key (checked with ``link``).
        province: the two-digit province.
        progress: ``progress(kind, n)`` after every chunk.

    Raises:
        regsync.db.hashkey.HashKeyMismatch: with ``link``, ``hash_key`` is not the store's hash key.
    """

    def __init__(self, local: Engine, bulk: Bulk, *, kinds: Sequence[str] | None = None, rates: SeedRates = SeedRates(),
                 seed: int = 42, owner: str | None = None, link: bool = False, hash_key: str = "regsync-local-hash-key",
                 province: str = "23", progress: Callable[[str, int], None] | None = None) -> None:
        if link:  # the links' snapshots must be hashed with the store's own key
            check_hash_key(local, hash_key)
        self.local = local
        self.bulk = bulk
        self.kinds = [k for k in ORDER if not kinds or k in kinds]
        self.rates = rates
        self.seed = seed
        self.owner = owner
        self.link = link
        self.key = hash_key
        self.province = province
        self.progress = progress or (lambda kind, n: None)
        self.summary = SeedSummary()
        self.rids: dict[str, dict[int, str]] = {"org": {}, "activity": {}, "volunteer": {}, "training": {}}
        self.keep_volunteer_map = bool(_OF_VOLUNTEERS & set(self.kinds))
        self.completed: set[int] = set()  # local ids of the activities seeded COMPLETED (evaluations need one)
        self.class_hours: dict[int, int] = {}  # local training id → its class hours (a record's may not exceed them)

    def run(self) -> SeedSummary:
        """Seed every kind; returns the summary."""
        for kind in self.kinds:
            getattr(self, f"_seed_{kind}")()
        if "volunteer" in self.kinds and self.rates.missing_locally:
            self._extra_volunteers()
        return self.summary

    # ------------------------------------------------------------------------------------------ helpers
    def _rows(self, kind: str, equal: dict[str, Any] | None = None,
              page: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
        return seeding.iter_pages(self.local, kind, page, equal=equal)

    def _send(self, kind: str, items: list[_Item]) -> list[str]:
        """Send ``(local row, synced fields, doc)`` items; remember and link their registry ids."""
        if not items:
            return []
        ids = self.bulk(kind, [doc for _, _, doc in items])
        if kind in self.rids and (kind != "volunteer" or self.keep_volunteer_map):
            for (row, _, _), rid in zip(items, ids, strict=True):
                self.rids[kind][row["id"]] = rid
        if self.link:
            now = utcnow()
            links = []
            for (row, fields, _), rid in zip(items, ids, strict=True):
                links.append({"entity": kind, "local_id": row["id"], "registry_id": rid, "registry_version": 1,
                              "base": dumps(canonical(project_registry(kind, fields), self.key)),
                              "is_duplicate": False, "revision": 0, "how": "created", "linked_at": now,
                              "updated_at": now})
            seeding.insert_links(self.local, links)
            self.summary.linked += len(links)
        self.summary.seeded[kind] += len(ids)
        self.progress(kind, len(ids))
        return ids

    def _differs(self, kind: str, local_id: int) -> bool:
        return _draw(self.seed, "differs", kind, local_id) < self.rates.differing

    def _left_out(self, kind: str, local_id: int) -> bool:
        return _draw(self.seed, "missing", kind, local_id) < self.rates.missing_in_registry

    def _refs(self, kind: str, row: dict[str, Any]) -> dict[tuple[str, int], str]:
        out = {}
        for col, ref_kind in REFERENCES[kind].items():
            if row.get(col) is not None and row[col] in self.rids.get(ref_kind, {}):
                out[(ref_kind, row[col])] = self.rids[ref_kind][row[col]]
        return out

    def _project(self, kind: str, row: dict[str, Any]) -> dict[str, Any] | None:
        try:
            fields = project_local(kind, row, self._refs(kind, row))
        except ValueError:
            self.summary.unfit[kind] += 1
            return None
        return fields

    def _client_ref(self, row: dict[str, Any]) -> str | None:
        return str(row["id"]) if self.link else None

    # ------------------------------------------------------------------------------------------ kinds
    def _seed_org(self) -> None:
        for level in _LEVELS:  # parents first; community stations before the teams they manage
            for rows in self._rows("org", {"level": level}):
                items = []
                for row in rows:
                    fields = self._project("org", row)
                    if fields is None or (row.get("parent_id") and fields["parent_id"] is None):
                        self.summary.unfit["org"] += fields is not None
                        continue
                    if self._differs("org", row["id"]):
                        fields["contact_name"] = "陈主任"
                        self.summary.differing["org"] += 1
                    items.append((row, fields, _doc(fields, self.owner, self._client_ref(row))))
                self._send("org", items)

    def _totals(self, vol_ids: Sequence[int], kind: str = "service_record") -> dict[int, int]:
        """ACCEPTED hours (hundredths) of the service records (or, ``kind`` ``training_record``, the class hours of
        the training records) that will be seeded, per local volunteer."""
        if kind not in self.kinds or not vol_ids:
            return {}
        out: dict[int, int] = defaultdict(int)
        read = seeding.accepted_hours if kind == "service_record" else seeding.accepted_class_hours
        for sid, vid, hours in read(self.local, vol_ids):
            if not self._left_out(kind, sid):
                out[vid] += hours
        return out

    def _seed_volunteer(self) -> None:
        for rows in self._rows("volunteer"):
            primary_of = self._primaries(rows)
            person_rows: dict[int, list[int]] = defaultdict(list)
            for row in rows:
                person_rows[primary_of.get(row["id"], row["id"])].append(row["id"])
            totals = self._totals([r["id"] for r in rows])
            trained = self._totals([r["id"] for r in rows], "training_record")
            items = []
            for row in rows:
                if primary_of.get(row["id"], row["id"]) != row["id"]:
                    continue  # a person's second row: one record in the registry
                if row.get("home_province") != self.province:
                    continue
                fields = self._project("volunteer", row)
                if fields is None or not _valid_volunteer(fields):
                    self.summary.unfit["volunteer"] += fields is not None
                    continue
                if self._left_out("volunteer", row["id"]):
                    self.summary.left_out["volunteer"] += 1
                    continue
                if self._differs("volunteer", row["id"]):
                    fields["phone"] = f"139{row['id'] % 100000000:08d}"
                    fields["skills"] = ["急救"] if fields.get("skills") != ["急救"] else []
                    self.summary.differing["volunteer"] += 1
                doc = _doc(fields, self.owner, self._client_ref(row))
                # the registry's starLevel follows from totalHours: the sandbox fills it in (§4.2)
                doc["totalHours"] = format_hours(sum(totals.get(i, 0) for i in person_rows[row["id"]]))
                doc["trainingHours"] = format_hours(sum(trained.get(i, 0) for i in person_rows[row["id"]]))
                items.append((row, fields, doc))
            ids = self._send("volunteer", items)
            if self.keep_volunteer_map:
                by_row = {row["id"]: rid for (row, _, _), rid in zip(items, ids, strict=True)}
                for primary, members in person_rows.items():
                    if primary in by_row:
                        for m in members:
                            self.rids["volunteer"][m] = by_row[primary]

    def _primaries(self, rows: list[dict[str, Any]]) -> dict[int, int]:
        """Each row whose person has an older row: row id → the older (primary) row's id (design.md)."""
        norms = sorted({r["id_number_norm"] for r in rows if r.get("id_number_norm")})
        if not norms:
            return {}
        out: dict[int, int] = {}
        for i in range(0, len(norms), 500):
            first: dict[str, int] = {}
            for vid, norm in seeding.volunteers_by_norm(self.local, norms[i:i + 500]):
                first.setdefault(norm, vid)
                if first[norm] != vid:
                    out[vid] = first[norm]
        return out

    def _seed_membership(self) -> None:
        seen: set[tuple[str, str]] = set()
        for rows in self._rows("membership"):
            items = []
            for row in rows:
                fields = self._project("membership", row)
                if fields is None or not fields["org_id"] or not fields["volunteer_id"]:
                    continue
                pair = (fields["org_id"], fields["volunteer_id"])
                if pair in seen:
                    continue
                if self._left_out("membership", row["id"]):
                    self.summary.left_out["membership"] += 1
                    continue
                seen.add(pair)
                items.append((row, fields, _doc(fields, self.owner, None)))
            self._send("membership", items)

    def _seed_activity(self) -> None:
        for rows in self._rows("activity"):
            items = []
            for row in rows:
                fields = self._project("activity", row)
                if fields is None or not fields["org_id"]:
                    continue
                if self._differs("activity", row["id"]):
                    fields["planned_headcount"] = int(fields["planned_headcount"]) + 5
                    self.summary.differing["activity"] += 1
                if row["status"] == "COMPLETED":
                    self.completed.add(row["id"])
                items.append((row, fields, _doc(fields, self.owner, self._client_ref(row))))
            self._send("activity", items)

    def _seed_service_record(self) -> None:
        stations = seeding.team_stations(self.local)
        for rows in self._rows("service_record", {"status": "ACCEPTED"}):
            items = []
            for row in rows:
                fields = self._project("service_record", row)
                if fields is None or not all(fields[c] for c in ("volunteer_id", "activity_id", "org_id")):
                    continue
                if self._left_out("service_record", row["id"]):
                    self.summary.left_out["service_record"] += 1
                    continue
                doc = _doc(fields, self.owner, self._client_ref(row))
                doc["stationId"] = self.rids["org"].get(stations.get(row["org_id"], -1))
                doc["revokeReason"] = None
                items.append((row, fields, doc))
            self._send("service_record", items)

    # ------------------------------------------------------------------------------------------ v1.1's kinds
    def _seed_training(self) -> None:
        for rows in self._rows("training"):
            items = []
            for row in rows:
                fields = self._project("training", row)
                if fields is None or not fields["org_id"]:
                    continue
                if self._differs("training", row["id"]):
                    fields["contact_name"] = "陈老师"
                    self.summary.differing["training"] += 1
                self.class_hours[row["id"]] = int(row["class_hours"])
                items.append((row, fields, _doc(fields, self.owner, self._client_ref(row))))
            self._send("training", items)

    def _seed_training_record(self) -> None:
        seen: set[tuple[str, str]] = set()
        for rows in self._rows("training_record", {"status": "ACCEPTED"}):
            items = []
            for row in rows:
                fields = self._project("training_record", row)
                if fields is None or not fields["training_id"] or not fields["volunteer_id"]:
                    continue
                if row["class_hours"] > self.class_hours.get(row["training_id"], 0):
                    self.summary.unfit["training_record"] += 1  # beyond the training's: never accepted (§4.7)
                    continue
                pair = (fields["training_id"], fields["volunteer_id"])
                if pair in seen:
                    continue
                if self._left_out("training_record", row["id"]):
                    self.summary.left_out["training_record"] += 1
                    continue
                seen.add(pair)
                doc = _doc(fields, self.owner, self._client_ref(row))
                doc["revokeReason"] = None
                items.append((row, fields, doc))
            self._send("training_record", items)

    def _seed_commendation(self) -> None:
        seen: set[tuple[Any, ...]] = set()
        for rows in self._rows("commendation", {"status": "ACTIVE"}):
            items = []
            for row in rows:
                fields = self._project("commendation", row)
                if fields is None or not (fields["volunteer_id"] or fields["org_id"]):
                    continue  # its subject is not in the registry
                subject = (fields["volunteer_id"], fields["org_id"])
                key = (*subject, fields["scheme"], fields["year"]) if fields["scheme"] else (
                    *subject, fields["title"], fields["awarded_on"])
                if key in seen:
                    continue
                if self._left_out("commendation", row["id"]):
                    self.summary.left_out["commendation"] += 1
                    continue
                seen.add(key)
                if self._differs("commendation", row["id"]):
                    fields["document_name"] = f"{fields['document_name']}（补录）"
                    self.summary.differing["commendation"] += 1
                doc = _doc(fields, self.owner, self._client_ref(row))
                doc["revokeReason"] = None
                items.append((row, fields, doc))
            self._send("commendation", items)

    def _seed_evaluation(self) -> None:
        seen: set[tuple[str, str]] = set()
        for rows in self._rows("evaluation", {"status": "ACTIVE"}):
            items = []
            for row in rows:
                fields = self._project("evaluation", row)
                if fields is None or not all(fields[c] for c in ("activity_id", "volunteer_id", "evaluator_org_id")):
                    continue
                if row["activity_id"] not in self.completed or not all(
                        1 <= int(fields[c]) <= 5 for c in ("punctuality", "attitude", "competence")):
                    self.summary.unfit["evaluation"] += 1  # refused by the registry (§4.9): never there
                    continue
                pair = (fields["activity_id"], fields["volunteer_id"])
                if pair in seen:
                    continue
                if self._left_out("evaluation", row["id"]):
                    self.summary.left_out["evaluation"] += 1
                    continue
                seen.add(pair)
                if self._differs("evaluation", row["id"]):
                    fields["comment"] = "门户补录评价"
                    self.summary.differing["evaluation"] += 1
                doc = _doc(fields, self.owner, self._client_ref(row))
                doc["revokeReason"] = None
                items.append((row, fields, doc))
            self._send("evaluation", items)

    def _extra_volunteers(self) -> None:
        """People who self-registered on the portal and that the platform lacks."""
        n = round(self.summary.seeded["volunteer"] * self.rates.missing_locally)
        rng = random.Random(self.seed * 7919 + 1)
        docs: list[dict[str, Any]] = []
        taken: set[str] = set()
        tries = 0
        while len(docs) < n and tries < n * 20:
            tries += 1
            birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(40 * 365))
            order = rng.randrange(1, 999)
            body = f"230103{birth:%Y%m%d}{order:03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number in taken:
                continue
            if seeding.id_number_taken(self.local, number):
                continue
            taken.add(number)
            docs.append({"name": "门户" + "张王李赵刘陈杨黄"[order % 8] + "新", "idType": "RESIDENT_ID",
                         "idNumber": number, "gender": "F" if order % 2 == 0 else "M",
                         "birthDate": birth.isoformat(), "phone": None, "regionCode": "230103", "skills": [],
                         "homeProvince": self.province, "status": "ACTIVE", "totalHours": "0.00", "starLevel": 0,
                         "clientRef": None})
        for i in range(0, len(docs), CHUNK):
            self.bulk("volunteer", docs[i:i + CHUNK])
        self.summary.extra_volunteers = len(docs)


def _valid_volunteer(fields: dict[str, Any]) -> bool:
    """Whether the registry would have accepted the person (the older channels checked the number)."""
    number = fields.get("id_number") or ""
    return try_normalize_id_number(fields.get("id_type") or "", number) == number and bool(fields.get("name"))


def seed_sandbox(bulk: Bulk, *, scale: float | None = None, store_url: str | None = None, seed: int = 42,
                 kinds: Sequence[str] | None = None, rates: SeedRates = SeedRates(), owner: str | None = None,
                 link: bool = False, hash_key: str = "regsync-local-hash-key", province: str = "23",
                 progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Seed the sandbox (module docstring) from ``store_url``, or from a province generated afresh at ``scale``
    with ``seed`` (the same data as ``regsync generate --scale S --seed N``) in a throw-away SQLite file.

    Args:
        bulk: where the records go (:func:`http_bulk`, :func:`inprocess_bulk`).
        scale: the generator's scale, when no ``store_url``.
        store_url: a platform store to seed from instead.
        seed: the generator's and the draws' seed.
        kinds: local kinds (``org``, ``volunteer``, …) to seed; the generator makes only those (and what they
            need).
        rates: :class:`SeedRates`.
        owner: ``ownerClientId`` (default ``PORTAL``).
        link: write the local links as well (only with ``store_url``: the links go to that store).
        hash_key: the local secret of the links' base snapshots.
        province: the two-digit province.
        progress: ``progress(kind, n)`` per chunk.

    Returns:
        :meth:`SeedSummary.as_dict` plus ``seconds``.

    Raises:
        ValueError: neither or both of ``scale`` and ``store_url``; ``link`` without ``store_url``.
    """
    if (scale is None) == (store_url is None):
        raise ValueError("give scale (a province generated afresh) or store_url (a platform store), one of them")
    if link and store_url is None:
        raise ValueError("link needs store_url: the links are written to that store")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="regsync-seed-") as tmp:
        if store_url is None:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'province.db'}")
            upgrade(engine)
            wanted = set(kinds or ORDER)
            for k in list(wanted):
                wanted |= REQUIRES.get(k, frozenset())
            generate(engine, float(scale or 0), seed, kinds=wanted)
        else:
            engine = make_engine(store_url)
        try:
            summary = Seeder(engine, bulk, kinds=kinds, rates=rates, seed=seed, owner=owner, link=link,
                             hash_key=hash_key, province=province, progress=progress).run()
        finally:
            engine.dispose()
    out = summary.as_dict()
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


__all__ = ["NONE", "Bulk", "SeedRates", "SeedSummary", "Seeder", "http_bulk", "inprocess_bulk", "seed_sandbox"]
