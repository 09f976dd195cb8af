"""The data generator: a province-shaped data set, dirt included, streamed into the local store.

``generate(engine, scale)`` fills the platform's tables (organization, volunteer, membership, activity,
service_record) with data shaped like Heilongjiang's (design.md, "Data that looks like the province's"):
scale 1.0 is about 3.2 M volunteers, 24 180 regional and 60 396 specialized orgs, 356 500 activities and
29 M service records. Every record is invented. Clean records pass the registry's rules (registry-api.md §4);
dirty ones are made at the rates of :class:`DirtRates` and each is written to ``generator_dirt``
(:class:`regsync.db.models.DirtLog`) with its kind, whether the normalizer can fix it, and the registry's
field code for those it cannot.

How the data is made (and why it stays small in memory):

* **Orgs** (registry-api.md §4.1) are built level by level, parents first: the regional line (one
  ``CITY_CORPS`` per city → ``DISTRICT_BRIGADE`` per county and university → ``STREET_STATION`` →
  ``COMMUNITY_STATION``) and the specialized line (``PROVINCIAL_CORPS`` per department →
  ``CITY_DETACHMENT`` per department and city → ``COUNTY_UNIT`` per department and county →
  ``GRASSROOTS_TEAM``, each with a ``station_id``: a ``COMMUNITY_STATION`` of its county). Counts scale
  linearly, each level at least as many as the level above (the tree keeps its shape at any scale), the
  top levels never below their minimum (13 city corps, 8 provincial corps).
* **Activities** (§4.4) belong to stations and teams; a leaf's activities are inserted together, so each
  leaf knows its activities as one slice of a compact array of ids and dates.
* **Volunteers** (§4.2) come in chunks; each chunk's memberships (§4.3) and service records (§4.5) are
  made and inserted with it, in the same transaction. ID numbers are unique by construction
  (:class:`~regsync.generate.identifiers.OrderAllocator`), so no number is remembered. A volunteer's
  service records fall on distinct dates, and a duplicated person's second row avoids the first row's
  dates, so a person's ACCEPTED hours per day never exceed 24.00 (§4.5, ``DAILY_HOURS_EXCEEDED``).
* State kept across chunks: per-org and per-activity compact arrays (``array``), a few counters, and the
  handful of people waiting for their second registration. Memory does not grow with the scale beyond
  those arrays (≈ 10 MB at scale 1).

Determinism: the same ``seed``, ``scale`` and ``as_of`` give the same rows on SQLite and PostgreSQL (ids
aside, which the database assigns); randomness comes from :class:`random.Random` seeded per phase.
Inserts are plain SQLAlchemy Core ``INSERT`` statements, so the outbox triggers fire for every row.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import json
import math
import random
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert
from stdnum.cn import ric

from regsync.db.mapping.model import PlatformMapping
from regsync.db.models import (
    TABLES,
    Activity,
    Commendation,
    DirtLog,
    Evaluation,
    Membership,
    Organization,
    ServiceRecord,
    Training,
    TrainingRecord,
    Volunteer,
)
from regsync.db.query import insert_ids
from regsync.domain import regions
from regsync.domain.normalize import try_normalize_id_number
from regsync.generate import catalog, identifiers, names
from regsync.generate.mapped import MappedWriter

ProgressCallback = Callable[[str, int, int], None]

#: The kinds of record the generator makes, in insertion order (the entity names of the outbox); the last four are
#: registry-api.md v1.1's (§4.6–§4.9).
KINDS: tuple[str, ...] = ("org", "activity", "volunteer", "membership", "service_record", "training",
                          "training_record", "evaluation", "commendation")

#: What each kind needs generated with it: a training record is a member's attendance of the org's training; an
#: evaluation scores a service record's volunteer; a scheme commendation counts the year's service records.
REQUIRES: dict[str, frozenset[str]] = {
    "org": frozenset(),
    "activity": frozenset({"org"}),
    "volunteer": frozenset(),
    "membership": frozenset({"org", "volunteer"}),
    "service_record": frozenset({"org", "activity", "volunteer"}),
    "training": frozenset({"org"}),
    "training_record": frozenset({"org", "volunteer", "membership", "training"}),
    "evaluation": frozenset({"org", "activity", "volunteer", "service_record"}),
    "commendation": frozenset({"org", "activity", "volunteer", "service_record"}),
}

#: Counts at scale 1.0 (design.md, "Who uses it": the province's figures). Regional: 13 + 152 + 1 300 +
#: 22 715 = 24 180; specialized: 32 + 330 + 3 000 + 57 034 = 60 396.
TARGETS: dict[str, int] = {
    "CITY_CORPS": 13,
    "DISTRICT_BRIGADE": 152,
    "STREET_STATION": 1_300,
    "COMMUNITY_STATION": 22_715,
    "PROVINCIAL_CORPS": 32,
    "CITY_DETACHMENT": 330,
    "COUNTY_UNIT": 3_000,
    "GRASSROOTS_TEAM": 57_034,
    "volunteer": 3_200_000,
    "activity": 356_500,
    "service_record": 29_000_000,
}

#: Memberships per volunteer row: ``(count, probability)``; mean 1.40.
MEMBERSHIPS_PER_VOLUNTEER: tuple[tuple[int, float], ...] = ((1, 0.70), (2, 0.22), (3, 0.06), (4, 0.02))

#: Document types other than ``RESIDENT_ID`` (registry-api.md §4.2), with their rates among volunteers.
OTHER_ID_TYPES: tuple[tuple[str, float], ...] = (
    ("HMT_RESIDENCE_PERMIT", 0.0005),
    ("HMT_TRAVEL_PERMIT", 0.0003),
    ("PASSPORT", 0.001),
    ("FOREIGN_PERMANENT_ID", 0.0002),
)

#: Age buckets of volunteers at ``as_of``: ``(lowest age, highest age, probability)``; ages 16–74.
AGE_BUCKETS: tuple[tuple[int, int, float], ...] = (
    (17, 22, 0.22),
    (23, 30, 0.18),
    (31, 40, 0.20),
    (41, 50, 0.17),
    (51, 60, 0.14),
    (61, 74, 0.09),
)

#: Service hours in hundredths (registry-api.md §4.5: 0.50–24.00 in steps of 0.25):
#: ``(lowest, highest, probability)``; mean ≈ 3.2 h.
HOURS_BUCKETS: tuple[tuple[int, int, float], ...] = (
    (50, 100, 0.08),
    (100, 300, 0.52),
    (300, 500, 0.27),
    (500, 800, 0.10),
    (800, 1200, 0.026),
    (1200, 2400, 0.004),
)

#: Trainings an org holds per year (registry-api.md §4.6), mean, by level: teams and community stations train their
#: members; the levels above train their staff (no training records of the province's volunteers).
TRAININGS_PER_YEAR: dict[str, float] = {
    "GRASSROOTS_TEAM": 2.0, "COMMUNITY_STATION": 1.0, "STREET_STATION": 1.0, "COUNTY_UNIT": 1.0,
    "DISTRICT_BRIGADE": 1.5, "CITY_DETACHMENT": 1.5, "CITY_CORPS": 2.0, "PROVINCIAL_CORPS": 2.0,
}
#: The share of an org's members who attend one of its trainings (a training record each, §4.7).
TRAINING_ATTENDANCE = 0.2
#: The share of a volunteer's ACCEPTED service records at COMPLETED activities that the activity's org evaluates
#: (one evaluation per activity and volunteer, §4.9).
EVALUATION_RATE = 0.1
#: Of the volunteers (and orgs) whose service of a year reaches a tier of the annual scheme (年度嘉许, §4.8), the
#: share commended for that year (at the highest tier reached).
SCHEME_RATE = 0.6
#: Commendations other than the scheme's (优秀志愿者, 优秀志愿服务组织…), per volunteer row and per org.
HONOUR_RATE_VOLUNTEER = 0.004
HONOUR_RATE_ORG = 0.02

#: The day the data set is "as of" unless told otherwise; every past-only date (birth, establishment,
#: registration, service) is on or before it. A fixed day keeps runs reproducible.
DEFAULT_AS_OF = dt.date(2026, 6, 30)

_TZ_OFFSET = dt.timedelta(hours=8)  # Asia/Shanghai has no DST: local = UTC + 8 h
_PLATFORM_START = dt.date(2014, 1, 1)  # registrations start here
_STATUS = ("PUBLISHED", "COMPLETED", "CANCELLED")
_NUMERALS = "〇一二三四五六七八九十"  # a station's second team of a department is its 二队
_SPAN_SLACK = (0, 0, 15, 30)  # minutes of break on top of the hours served
_START_SLACK = (0, 0, 15, 30, 60)  # minutes after the activity's daily start


@dataclass(frozen=True, slots=True)
class DirtRates:
    """How often the generator makes each kind of dirt (fractions, 0–1).

    The kind names are those written to ``generator_dirt.kind``; *fixable* means
    :mod:`regsync.domain.normalize` (or the duplicate-person handling of design.md) turns the record into one the
    registry accepts, *unfixable* that the registry refuses it with the field code given.

    Attributes:
        id_lowercase_x: ``id_lowercase_x``, fixable: among resident ID numbers ending in ``X``, a
            lowercase ``x`` (GB 11643-1999 uses ``X``).
        id_legacy_15: ``id_legacy_15``, fixable: among people born 1900–1999, the 15-digit legacy number
            (the registry refuses it with ``ID_NUMBER_LEGACY``; the client converts it).
        id_fullwidth: ``id_fullwidth``, fixable: full-width digits (NFKC folds them).
        id_bad_check: ``id_bad_check``, unfixable, ``INVALID_ID_NUMBER``: a wrong check character.
        name_dot: share of resident-ID holders with a minority name written with ``·`` (clean, not dirt).
        name_lookalike_dot: ``name_lookalike_dot``, fixable: among those, a look-alike dot (``•`` U+2022,
            ``．`` U+FF0E, ``・`` U+30FB) instead of ``·`` U+00B7.
        name_non_bmp: ``name_non_bmp``, fixable (valid as is): a rare character outside the BMP.
        duplicate_person: ``duplicate_person``, fixable: a second volunteer row of an earlier person,
            registered later (same normalized ID number; design.md, "One person, two local records").
        phone_format: ``phone_format``, fixable: ``+86``/``0086``, spaces, hyphens or full-width digits.
        phone_blank: ``phone_blank``, fixable (valid: no phone): null or blank.
        phone_bad: ``phone_bad``, unfixable, ``INVALID_PHONE``: a digit short or too many, or a ``12``
            prefix.
        org_phone_format: ``org_phone_format``, fixable: an org's contact phone with separators.
        uscc_format: ``uscc_format``, fixable: among orgs with a USCC, lowercase letters or spaces.
        org_name_spaces: ``org_name_spaces``, fixable: an org name with surrounding spaces (§4).
        training_record_hours: ``training_record_hours``, unfixable, ``INVALID_CLASS_HOURS``: among training
            records, class hours beyond the training's (registry-api.md §4.7).
        evaluation_not_completed: ``evaluation_not_completed``, unfixable (until the activity is completed),
            ``AWAITS_COMPLETION``: among evaluations, one of an activity not yet COMPLETED, where the volunteer served
            at one (§4.9: the registry answers ``INVALID_STATE``, so regsync holds it until the activity is completed).
        evaluation_score_zero: ``evaluation_score_zero``, unfixable, ``INVALID_SCORE``: among evaluations, a score
            of 0 (scores are 1–5, §4.9).
    """

    id_lowercase_x: float = 0.01
    id_legacy_15: float = 0.003
    id_fullwidth: float = 0.003
    id_bad_check: float = 0.0005
    name_dot: float = 0.02
    name_lookalike_dot: float = 1 / 3
    name_non_bmp: float = 0.001
    duplicate_person: float = 0.002
    phone_format: float = 0.005
    phone_blank: float = 0.002
    phone_bad: float = 0.001
    org_phone_format: float = 0.01
    uscc_format: float = 0.02
    org_name_spaces: float = 0.002
    training_record_hours: float = 0.002
    evaluation_not_completed: float = 0.003
    evaluation_score_zero: float = 0.003


#: dirt kind → (entity, fixable, expected registry field code when unfixable)
DIRT_KINDS: dict[str, tuple[str, bool, str | None]] = {
    "id_lowercase_x": ("volunteer", True, None),
    "id_legacy_15": ("volunteer", True, None),
    "id_fullwidth": ("volunteer", True, None),
    "id_bad_check": ("volunteer", False, "INVALID_ID_NUMBER"),
    "name_lookalike_dot": ("volunteer", True, None),
    "name_non_bmp": ("volunteer", True, None),
    "duplicate_person": ("volunteer", True, None),
    "phone_format": ("volunteer", True, None),
    "phone_blank": ("volunteer", True, None),
    "phone_bad": ("volunteer", False, "INVALID_PHONE"),
    "org_phone_format": ("org", True, None),
    "uscc_format": ("org", True, None),
    "org_name_spaces": ("org", True, None),
    "training_record_hours": ("training_record", False, "INVALID_CLASS_HOURS"),
    # regsync holds such an evaluation (the registry would answer 409 INVALID_STATE): flows.relay_waits
    "evaluation_not_completed": ("evaluation", False, "AWAITS_COMPLETION"),
    "evaluation_score_zero": ("evaluation", False, "INVALID_SCORE"),
}


@dataclass(slots=True)
class GenerateSummary:
    """What :func:`generate` made.

    Attributes:
        scale: the scale asked for.
        seed: the seed used.
        as_of: the day the data set is as of.
        counts: rows inserted per kind (:data:`KINDS`) and per org level.
        dirt: rows of ``generator_dirt`` per dirt kind.
        seconds: wall-clock time of the run.
        mapping: the mapping written through (``reference``: the reference tables).
        out_of_scope: written through a mapping, rows per kind copied as test rows, outside the mapping's scope
            (not among ``counts``: they do not sync).
        soft_deleted: likewise, rows per kind copied with the soft-delete flag set.
    """

    scale: float
    seed: int
    as_of: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    dirt: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mapping: str = "reference"
    out_of_scope: dict[str, int] = field(default_factory=dict)
    soft_deleted: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows inserted into the platform's tables (every kind of :data:`KINDS`)."""
        return sum(self.counts.get(k, 0) for k in KINDS)

    @property
    def rows_per_second(self) -> float:
        """Insert throughput of the run, in rows per second."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``as_of`` as ISO date)."""
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["rows"] = self.rows
        d["rows_per_second"] = round(self.rows_per_second, 1)
        return d


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def scaled(level_or_kind: str, scale: float, minimum: int = 0) -> int:
    """``TARGETS[level_or_kind] × scale``, rounded, at least ``minimum``."""
    return max(minimum, round(TARGETS[level_or_kind] * scale))


def allocate(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Each part is at least ``minimum``; the parts add up to ``max(total, minimum × len(weights))``; ties go
    to the earlier weight.
    """
    n = len(weights)
    if n == 0:
        return []
    base = [minimum] * n
    rest = total - minimum * n
    if rest <= 0:
        return base
    wsum = float(sum(weights)) or 1.0
    shares = [rest * w / wsum for w in weights]
    parts = [int(s) for s in shares]
    left = rest - sum(parts)
    order = sorted(range(n), key=lambda i: (parts[i] - shares[i], i))
    for i in order[:left]:
        parts[i] += 1
    return [b + p for b, p in zip(base, parts, strict=True)]


def weighted_sample(rng: random.Random, items: Sequence[Any], weights: Sequence[float], k: int) -> list[Any]:
    """``k`` distinct items drawn with probability proportional to weight (Efraimidis–Spirakis).

    They come back in the order of ``items``.
    """
    if k >= len(items):
        return list(items)
    keys = sorted(((rng.random() ** (1.0 / max(w, 1e-9)), i) for i, w in enumerate(weights)), reverse=True)
    chosen = sorted(i for _, i in keys[:k])
    return [items[i] for i in chosen]


class _Cumulative:
    """Weighted choice by bisection over cumulative weights (fast for repeated draws)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> Any:
        return self.items[min(bisect.bisect_right(self.cum, rng.random() * self.total), len(self.items) - 1)]


def _bucket(rng: random.Random, buckets: Sequence[tuple[int, int, float]]) -> tuple[int, int]:
    r = rng.random()
    for lo, hi, p in buckets:
        r -= p
        if r < 0:
            return lo, hi
    return buckets[-1][0], buckets[-1][1]


def _utc(local_day: int, minute: int) -> dt.datetime:
    """Naive UTC of a local (+08:00) day ordinal and minute of the day."""
    return dt.datetime.fromordinal(local_day) + dt.timedelta(minutes=minute) - _TZ_OFFSET


def _categories(rng: random.Random, main: Sequence[str]) -> str:
    cats = list(dict.fromkeys([*main[: rng.randint(1, min(3, len(main)))]]))
    while len(cats) < 5 and rng.random() < 0.25:
        extra = rng.choice(catalog.CATEGORIES)
        if extra not in cats:
            cats.append(extra)
    return json.dumps(cats)


# --------------------------------------------------------------------------------------------------
# The org tree
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Org:
    """What later levels need to know of an org: kept per org (a few hundred bytes, orgs only)."""

    id: int
    level: str
    county: str | None  # 6-digit county code, None for city/province level
    city: str | None
    dept: int  # index into catalog.DEPARTMENTS, -1 on the regional line
    est: int  # established_on as a date ordinal
    short: str = ""  # a station's own name (街道/社区 part), used by the teams it manages
    main_category: int = 0
    act_first: int = 0  # slice of the activity arrays
    act_count: int = 0
    tr_first: int = 0  # slice of the training arrays
    tr_count: int = 0


class _Writer:
    """Inserts rows in batches, reports progress, counts."""

    def __init__(
        self,
        engine: Engine,
        summary: GenerateSummary,
        progress: ProgressCallback | None,
        totals: dict[str, int],
    ) -> None:
        self.engine = engine
        self.summary = summary
        self.progress = progress
        self.totals = totals

    def count(self, kind: str, n: int) -> None:
        self.summary.counts[kind] = self.summary.counts.get(kind, 0) + n
        if self.progress is not None and kind in self.totals:
            done = self.summary.counts[kind]
            self.progress(kind, done, max(done, self.totals[kind]))

    def insert_returning(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows and return their ids, in order."""
        if not rows:
            return []
        return insert_ids(conn, table, rows)

    def insert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows whose ids are not needed (``executemany``; psycopg pipelines it on PostgreSQL)."""
        if rows:
            conn.execute(insert(table), rows)

    def dirt(self, conn: Connection, rows: list[tuple[int, str]]) -> None:
        """Log dirt: ``(local id, kind)`` pairs."""
        if not rows:
            return
        out = []
        for local_id, kind in rows:
            entity, fixable, code = DIRT_KINDS[kind]
            out.append(
                {
                    "entity": entity,
                    "local_id": local_id,
                    "kind": kind,
                    "fixable": fixable,
                    "expected_code": code,
                }
            )
            self.summary.dirt[kind] = self.summary.dirt.get(kind, 0) + 1
        conn.execute(insert(DirtLog.__table__), out)


class _PlatformWriter(_Writer):
    """A :class:`_Writer` into a mapped platform's own tables (:class:`~regsync.generate.mapped.MappedWriter`): the
    same canonical rows, encoded by the mapping, keys and local ids made by the generator."""

    def __init__(self, engine: Engine, summary: GenerateSummary, progress: ProgressCallback | None,
                 totals: dict[str, int], platform: MappedWriter) -> None:
        super().__init__(engine, summary, progress, totals)
        self.platform = platform

    def insert_returning(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        return self.platform.insert(conn, _KIND_OF[table.name], rows)

    def insert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        self.platform.insert(conn, _KIND_OF[table.name], rows)


#: The kind of each reference table.
_KIND_OF: dict[str, str] = {table: kind for kind, table in TABLES.items()}

_ORG = Organization.__table__
_VOL = Volunteer.__table__
_MEM = Membership.__table__
_ACT = Activity.__table__
_REC = ServiceRecord.__table__
_TRN = Training.__table__
_TRR = TrainingRecord.__table__
_EVA = Evaluation.__table__
_COM = Commendation.__table__


class _Generator:
    def __init__(
        self,
        engine: Engine,
        scale: float,
        seed: int,
        kinds: set[str],
        batch_size: int,
        progress: ProgressCallback | None,
        rates: DirtRates,
        as_of: dt.date,
        platform: MappedWriter | None = None,
    ) -> None:
        self.scale = scale
        self.seed = seed
        self.kinds = kinds
        self.batch_size = batch_size
        self.rates = rates
        self.as_of = as_of
        self.as_of_day = as_of.toordinal()
        self.summary = GenerateSummary(scale=scale, seed=seed, as_of=as_of)
        totals = {
            "org": sum(scaled(lvl, scale) for lvl in TARGETS if lvl.isupper()),
            "activity": scaled("activity", scale),
            "volunteer": scaled("volunteer", scale, 1),
            "membership": round(scaled("volunteer", scale, 1) * 1.4),
            "service_record": scaled("service_record", scale),
            "training": round(sum(scaled(lvl, scale) * n for lvl, n in TRAININGS_PER_YEAR.items()) * 2.1),
        }
        self.w = (_Writer(engine, self.summary, progress, totals) if platform is None
                  else _PlatformWriter(engine, self.summary, progress, totals, platform))
        self.engine = engine
        self.orgs: dict[str, list[_Org]] = {}
        self.leaves_by_county: dict[str, list[_Org]] = {}
        self.stations_by_county: dict[str, list[_Org]] = {}
        self.teams_by_county: dict[str, list[_Org]] = {}
        self.active_counties: list[regions.County] = []
        # activity arrays (index = position in generation order)
        self.act_ids = array("q")
        self.act_day0 = array("i")
        self.act_days = array("H")
        self.act_min0 = array("H")
        self.act_status = array("B")
        # training arrays (v1.1), likewise; status 0 SCHEDULED, 1 COMPLETED, 2 CANCELLED
        self.tr_ids = array("q")
        self.tr_day0 = array("i")
        self.tr_days = array("H")
        self.tr_hours = array("I")
        self.tr_status = array("B")
        self.station_of: dict[int, int] = {}  # a team's id → its community station's id
        # (org id, year) → ACCEPTED service records whose org or station the org is (the annual scheme's count)
        self.org_services: dict[tuple[int, int], int] = {}
        # the v1.1 kinds' dirt, written to the log at the end, so that the ids of the log's other rows stay as
        # they were before v1.1 (a few rows: the rates are small)
        self.v11_dirt: list[tuple[int, str]] = []

    def rng(self, phase: str) -> random.Random:
        return random.Random(f"regsync-generate:{self.seed}:{phase}")

    # ---------------------------------------------------------------- orgs

    def build_orgs(self) -> None:
        rows = _OrgRows(self)
        _RegionalLine(rows).build()
        _SpecializedLine(rows).build()

    # ---------------------------------------------------------------- activities

    def build_activities(self) -> None:
        rng = self.rng("activities")
        leaves = self.orgs.get("COMMUNITY_STATION", []) + self.orgs.get("GRASSROOTS_TEAM", [])
        n_total = scaled("activity", self.scale)
        weights = [
            (0.5 if o.level == "COMMUNITY_STATION" else 1.0) * rng.lognormvariate(0, 0.7) for o in leaves
        ]
        per_leaf = allocate(n_total, weights, 0)
        rows: list[dict[str, Any]] = []
        first_day = self.as_of_day - 730
        last_day = self.as_of_day + 45

        def flush() -> None:
            if rows:
                with self.engine.begin() as conn:
                    self.act_ids.extend(self.w.insert_returning(conn, _ACT, rows))
                self.w.count("activity", len(rows))
                rows.clear()

        for org, n in zip(leaves, per_leaf, strict=True):
            org.act_first = len(self.act_ids) + len(rows)
            org.act_count = n
            for _ in range(n):
                r = rng.random()
                if r < 0.60:
                    days = 1
                elif r < 0.80:
                    days = rng.randint(2, 7)
                elif r < 0.92:
                    days = rng.randint(8, 60)
                else:
                    days = rng.randint(61, 365)
                day0 = rng.randint(max(first_day, org.est + 1), last_day)
                min0 = rng.randrange(7 * 60, 14 * 60 + 1, 30)
                length = rng.randrange(120, 9 * 60 + 1, 30)
                end_day = day0 + days - 1
                if rng.random() < 0.03:
                    status = 2
                elif end_day < self.as_of_day and rng.random() < 0.8:
                    status = 1
                else:
                    status = 0
                if rng.random() < 0.7:
                    cat = catalog.CATEGORIES[org.main_category]
                else:
                    cat = rng.choice(catalog.CATEGORIES)
                stem = rng.choice(catalog.ACTIVITY_TITLES[cat])
                year = dt.date.fromordinal(day0).year
                title = rng.choice((stem, f"{stem}志愿服务活动", f"{year}年{stem}", f"“{stem}”主题活动"))
                rows.append(
                    {
                        "org_id": org.id,
                        "title": title,
                        "category": cat,
                        "region_code": org.county,
                        "starts_at": _utc(day0, min0),
                        "ends_at": _utc(end_day, min0 + length),
                        "planned_headcount": max(1, min(500, int(rng.lognormvariate(3.0, 0.8)))),
                        "status": _STATUS[status],
                    }
                )
                self.act_day0.append(day0)
                self.act_days.append(days)
                self.act_min0.append(min0)
                self.act_status.append(status)
                if len(rows) >= self.batch_size:
                    flush()
        flush()

    # ---------------------------------------------------------------- volunteers

    def build_volunteers(self) -> None:
        _People(self).run()

    # ---------------------------------------------------------------- trainings (v1.1)

    def build_trainings(self) -> None:
        """Trainings of every org (registry-api.md §4.6), :data:`TRAININGS_PER_YEAR` by level, over the activities'
        window (two years before ``as_of`` to 45 days after); an org's trainings are inserted together, so that each
        org knows them as one slice of the training arrays (its members' training records draw from it)."""
        rng = self.rng("trainings")
        rows: list[dict[str, Any]] = []
        first_day = self.as_of_day - 730
        last_day = self.as_of_day + 45
        years = (last_day - first_day) / 365

        def flush() -> None:
            if rows:
                with self.engine.begin() as conn:
                    self.tr_ids.extend(self.w.insert_returning(conn, _TRN, rows))
                self.w.count("training", len(rows))
                rows.clear()

        for level, per_year in TRAININGS_PER_YEAR.items():
            for org in self.orgs.get(level, []):
                mean = per_year * years
                n = max(0, round(rng.gauss(mean, mean / 2)))
                org.tr_first = len(self.tr_ids) + len(rows)
                org.tr_count = 0
                for _ in range(n):
                    lo = max(first_day, org.est + 1)
                    if lo > last_day:
                        break
                    rows.append(self._training_row(rng, org, rng.randint(lo, last_day)))
                    org.tr_count += 1
                    if len(rows) >= self.batch_size:
                        flush()
        flush()

    def _training_row(self, rng: random.Random, org: _Org, day0: int) -> dict[str, Any]:
        """One training of ``org`` starting on local day ``day0`` (registry-api.md §4.6: class hours 0.50–200.00 in
        steps of 0.50, within the span; an address for ``IN_PERSON``); appends it to the training arrays."""
        days = 1 if rng.random() < 0.85 else rng.randint(2, 5)
        min0 = rng.randrange(8 * 60, 14 * 60 + 1, 30)
        length = rng.randrange(60, 8 * 60 + 1, 30)  # minutes a day
        steps = days * (length // 30)  # half hours within the span
        hours = 50 * rng.randint(max(1, steps // 2), min(steps, 400))
        end_day = day0 + days - 1
        if rng.random() < 0.03:
            status = 2
        elif end_day < self.as_of_day and rng.random() < 0.9:
            status = 1
        else:
            status = 0
        ttype = rng.choices(("GENERAL", "POST", "PROFESSIONAL"), (0.5, 0.3, 0.2))[0]
        stem = rng.choice(catalog.TRAINING_TITLES[ttype])
        year = dt.date.fromordinal(day0).year
        title = rng.choice((stem, stem, f"{year}年{stem}", f"第{rng.randint(1, 12)}期{stem}"))
        city = regions.CITY_BY_CODE.get(org.city or "2301", regions.CITIES[0])
        county = regions.COUNTY_BY_CODE.get(org.county or "")
        region = org.county or (city.code + "00" if org.city and org.level != "PROVINCIAL_CORPS" else "230000")
        online = rng.random() < 0.25
        address = None
        if not online:
            address = (f"{city.name}{county.name if county else ''}{rng.choice(names.PLACE_STEMS)}路"
                       f"{rng.randint(1, 300)}号{rng.choice(catalog.TRAINING_PLACES)}")
        self.tr_day0.append(day0)
        self.tr_days.append(days)
        self.tr_hours.append(hours)
        self.tr_status.append(status)
        return {
            "org_id": org.id,
            "title": title,
            "training_type": ttype,
            "mode": "ONLINE" if online else "IN_PERSON",
            "region_code": region,
            "address": address,
            "starts_at": _utc(day0, min0),
            "ends_at": _utc(end_day, min0 + length),
            "class_hours": hours,
            "contact_name": names.han_name(rng, rng.choice("MF")),
            "contact_phone": identifiers.mobile(rng),
            "status": _TRAINING_STATUS[status],
        }

    # ---------------------------------------------------------------- org commendations (v1.1)

    def build_org_commendations(self) -> None:
        """The orgs' commendations (registry-api.md §4.8): the annual scheme's where the year's count of ACCEPTED
        service records whose org or station the org is reaches a tier (:data:`SCHEME_RATE` of them, at the highest
        tier reached), and others at :data:`HONOUR_RATE_ORG`."""
        rng = self.rng("org-commendations")
        rows: list[dict[str, Any]] = []

        def flush() -> None:
            if rows:
                with self.engine.begin() as conn:
                    self.w.insert(conn, _COM, rows)
                self.w.count("commendation", len(rows))
                rows.clear()

        for level in TARGETS:
            for org in self.orgs.get(level, []) if level.isupper() else ():
                city = regions.CITY_BY_CODE.get(org.city or "2301", regions.CITIES[0])
                for year in range(self.as_of.year - 3, self.as_of.year):
                    n = self.org_services.get((org.id, year), 0)
                    tier = next((t for t in catalog.ORG_TIERS if n >= t[1]), None)
                    if tier is not None and rng.random() < SCHEME_RATE:
                        row = _scheme_commendation(rng, year, tier, self.as_of_day)
                        if row is not None:
                            rows.append({**row, "org_id": org.id, "volunteer_id": None})
                if rng.random() < HONOUR_RATE_ORG:
                    row = _honour(rng, catalog.ORG_HONOURS, city, org.est + 30, self.as_of_day)
                    if row is not None:
                        rows.append({**row, "org_id": org.id, "volunteer_id": None})
                if len(rows) >= self.batch_size:
                    flush()
        flush()

    def write_v11_dirt(self) -> None:
        """Log the v1.1 kinds' dirt (kept until the end: :attr:`v11_dirt`)."""
        for start in range(0, len(self.v11_dirt), self.batch_size):
            with self.engine.begin() as conn:
                self.w.dirt(conn, self.v11_dirt[start:start + self.batch_size])
        self.v11_dirt.clear()


_TRAINING_STATUS = ("SCHEDULED", "COMPLETED", "CANCELLED")


def _scheme_commendation(rng: random.Random, year: int, tier: tuple[str, int, str], as_of_day: int
                         ) -> dict[str, Any] | None:
    """The annual scheme's commendation (年度嘉许, registry-api.md §4.8) of ``year`` at ``tier`` (``(code, threshold,
    name)``), awarded in the first quarter of the next year, not after ``as_of``; ``None`` when that is still to
    come. The subject's columns are the caller's."""
    lo = dt.date(year + 1, 1, 5).toordinal()
    hi = min(dt.date(year + 1, 3, 31).toordinal(), as_of_day)
    if lo > hi:
        return None
    issuer, short = catalog.SCHEME_ISSUER
    return {
        "title": f"{year}年度志愿服务{tier[2]}",
        "scheme": "PROVINCIAL_ANNUAL",
        "tier": tier[0],
        "year": year,
        "awarded_on": dt.date.fromordinal(rng.randint(lo, hi)),
        "issuer": issuer,
        "document_name": f"关于{year}年度志愿服务嘉许的决定",
        "document_number": f"{short}〔{year + 1}〕{(year * 7) % 37 + 3}号",
        "content": f"在{year}年度志愿服务中表现突出，授予{tier[2]}，特予嘉许。" if rng.random() < 0.5 else None,
        "status": "ACTIVE",
        "revoke_reason": None,
    }


def _honour(rng: random.Random, honours: Sequence[tuple[str, str, str]], city: regions.City, not_before: int,
            as_of_day: int) -> dict[str, Any] | None:
    """A commendation outside the scheme (``scheme``, ``tier``, ``year`` null), awarded between ``not_before`` (a
    local day) and ``as_of`` and no more than two years before it; ``None`` when no day is left."""
    lo = max(not_before, as_of_day - 730)
    if lo > as_of_day:
        return None
    title, issuer, prefix = rng.choice(honours)
    day = dt.date.fromordinal(rng.randint(lo, as_of_day))
    year = day.year - 1 if day.month < 4 else day.year
    short = city.name.removesuffix("市").removesuffix("地区")
    full = f"{year}年度{title}"
    return {
        "title": full,
        "scheme": None,
        "tier": None,
        "year": None,
        "awarded_on": day,
        "issuer": issuer.format(city=city.name),
        "document_name": f"关于表彰{full}的决定",
        "document_number": f"{prefix.format(c=short[:1])}〔{day.year}〕{rng.randint(1, 60)}号",
        "content": None,
        **({"status": "REVOKED", "revoke_reason": "表彰决定撤销"} if rng.random() < 0.01
           else {"status": "ACTIVE", "revoke_reason": None}),
    }


class _OrgRows:
    """The org rows of both lines of the tree: names, identifiers and contacts with their dirt, dates of
    establishment, and the insert of a level (which gives each :class:`_Org` its id).

    Args:
        g: the generation (its scale, rates, store, counts); one random stream, ``orgs``, serves the whole tree.
    """

    def __init__(self, g: _Generator) -> None:
        self.g = g
        self.rng = g.rng("orgs")
        self.rates = g.rates
        self.engine = g.engine
        self.batch_size = g.batch_size
        self.w = g.w
        self.summary = g.summary
        self.orgs = g.orgs
        self.as_of_day = g.as_of_day
        self.serial = 0  # orgs made so far (a USCC's serial)

    def contact(self, rng: random.Random, city_code: str | None, dirt: list[str]) -> tuple[str, str]:
        """A contact's name and phone (a landline of the city three times in ten), the dirt added to ``dirt``."""
        gender = rng.choice("MF")
        contact = names.han_name(rng, gender)
        city = regions.CITY_BY_CODE.get(city_code or "2301", regions.CITIES[0])
        if rng.random() < 0.3:
            phone = identifiers.landline(rng, city.phone_area, city.landline_digits)
            if rng.random() < self.rates.org_phone_format:
                area, number = phone.split("-")
                phone = rng.choice(
                    (f"({area}){number}", f"{area} {number}", f"{area} {number[:4]} {number[4:]}")
                )
                dirt.append("org_phone_format")
        else:
            phone = identifiers.mobile(rng)
            if rng.random() < self.rates.org_phone_format:
                phone = identifiers.messy_mobile(rng, phone)
                dirt.append("org_phone_format")
        return contact, phone

    def org_row(
        self,
        rng: random.Random,
        *,
        name: str,
        org_type: str,
        level: str,
        region: str,
        city: str | None,
        est: int,
        categories: Sequence[str],
        uscc_p: float,
        street_code: str | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        """An org's row (USCC, name and contact with their dirt) and the dirt kinds applied."""
        dirt: list[str] = []
        self.serial += 1
        uscc = None
        if rng.random() < uscc_p:
            uscc = identifiers.make_uscc(self.serial, region, rng.choice(("51", "51", "52", "12")))
            if rng.random() < self.rates.uscc_format:
                if any(c.isalpha() for c in uscc) and rng.random() < 0.5:
                    uscc = uscc.lower()
                else:
                    uscc = f"{uscc[:2]} {uscc[2:8]} {uscc[8:17]} {uscc[17]}"
                dirt.append("uscc_format")
        if rng.random() < self.rates.org_name_spaces:
            name = rng.choice((" ", "  ", "\u3000")) + name + rng.choice(("", " "))
            dirt.append("org_name_spaces")
        contact, phone = self.contact(rng, city, dirt)
        row = {
            "name": name,
            "org_type": org_type,
            "level": level,
            "parent_id": None,
            "station_id": None,
            "uscc": uscc,
            "region_code": region,
            "street_code": street_code,
            "service_categories": _categories(rng, categories),
            "contact_name": contact,
            "contact_phone": phone,
            "established_on": dt.date.fromordinal(est),
            "status": "ACTIVE",
            "remark": None,
        }
        return row, dirt

    def insert(self, level: str, items: list[tuple[dict[str, Any], list[str], _Org]]) -> list[_Org]:
        """Insert a level's ``(row, dirt, org)`` items in batches, log their dirt, give each org its id."""
        out: list[_Org] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            with self.engine.begin() as conn:
                ids = self.w.insert_returning(conn, _ORG, [row for row, _, _ in chunk])
                dirt = []
                for (_, kinds, org), oid in zip(chunk, ids, strict=True):
                    org.id = oid
                    dirt += [(oid, k) for k in kinds]
                    out.append(org)
                self.w.dirt(conn, dirt)
            self.w.count("org", len(chunk))
        self.summary.counts[level] = len(out)
        self.orgs[level] = out
        return out

    def est(self, rng: random.Random, lo: dt.date, hi: dt.date, after: int = 0) -> int:
        """An establishment day (ordinal) between ``lo`` and ``hi``, after ``after`` (the parent's), before as_of."""
        day = rng.randint(lo.toordinal(), min(hi.toordinal(), self.as_of_day - 30))
        return min(max(day, after + rng.randint(0, 120)), self.as_of_day - 1)

    @staticmethod
    def unique_stems(rng: random.Random, n: int) -> list[str]:
        """``n`` distinct place-name stems (numbered once the list runs out)."""
        stems = names.PLACE_STEMS
        if n <= len(stems):
            return rng.sample(stems, n)
        out = list(rng.sample(stems, len(stems)))
        nth = 2
        while len(out) < n:
            out += [f"{s}{nth}" for s in rng.sample(stems, min(len(stems), n - len(out)))]
            nth += 1
        return out

    @staticmethod
    def township_kinds(rng: random.Random, county: regions.County, n: int) -> list[str]:
        """The kinds of a county's ``n`` townships (``street``, ``town``, ``township``) by the county's kind."""
        if county.kind == "district":
            return ["street"] * n
        if county.kind == "city":
            n_street = max(1, round(n * 0.3)) if n > 1 else 1
            return ["street"] * n_street + ["town"] * (n - n_street)
        n_town = max(1, round(n * 0.6))
        return ["town"] * n_town + ["township"] * (n - n_town)


class _RegionalLine:
    """The regional line of the org tree (registry-api.md §4.1), parents first: a ``CITY_CORPS`` per city, a
    ``DISTRICT_BRIGADE`` per active county and university, ``STREET_STATION``s, ``COMMUNITY_STATION``s."""

    def __init__(self, rows: _OrgRows) -> None:
        self.rows = rows
        self.g = rows.g
        self.rng = rows.rng

    def build(self) -> None:
        """Make and insert the line; sets the generation's active counties and stations by county."""
        corps = self._city_corps()
        counties, county_brigades = self._district_brigades(corps)
        streets, street_meta, per_county = self._street_stations(counties, county_brigades)
        self._community_stations(counties, streets, street_meta, per_county)

    def _city_corps(self) -> dict[str, _Org]:
        """One per city, by city code."""
        rng = self.rng
        y = dt.date
        items = []
        for city in regions.CITIES:
            org = _Org(0, "CITY_CORPS", None, city.code, -1, self.rows.est(rng, y(2012, 1, 1), y(2016, 12, 31)))
            row, dirt = self.rows.org_row(
                rng,
                name=f"{city.name}志愿服务总队",
                org_type="REGIONAL",
                level="CITY_CORPS",
                region=city.code + "00",
                city=city.code,
                est=org.est,
                categories=("COMMUNITY", "CIVILITY", "EVENTS"),
                uscc_p=1.0,
            )
            items.append((row, dirt, org))
        return {o.city or "": o for o in self.rows.insert("CITY_CORPS", items)}

    def _district_brigades(self, corps: dict[str, _Org]) -> tuple[list[regions.County], list[_Org]]:
        """The active counties' brigades (at least one county per city), then the universities'; returns the
        active counties and their brigades, in the same order."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        n_brigades = min(TARGETS["DISTRICT_BRIGADE"], scaled("DISTRICT_BRIGADE", s, len(regions.CITIES)))
        # 121 counties + 31 universities = 152 at scale 1; at least one county brigade per city
        n_counties = max(
            len(regions.CITIES), round(n_brigades * len(regions.COUNTIES) / TARGETS["DISTRICT_BRIGADE"])
        )
        n_counties = min(n_counties, len(regions.COUNTIES))
        n_univ = max(0, min(len(regions.UNIVERSITIES), n_brigades - n_counties))
        counties: list[regions.County] = []
        rest: list[regions.County] = []
        for city in regions.CITIES:
            own = sorted((c for c in regions.COUNTIES if c.city_code == city.code), key=lambda c: -c.weight)
            counties.append(own[0])
            rest += own[1:]
        counties += weighted_sample(rng, rest, [c.weight for c in rest], n_counties - len(counties))
        counties.sort(key=lambda c: c.code)
        self.g.active_counties = counties
        items = []
        for county in counties:
            city = regions.CITY_BY_CODE[county.city_code]
            parent = corps[city.code]
            org = _Org(
                0,
                "DISTRICT_BRIGADE",
                county.code,
                city.code,
                -1,
                self.rows.est(rng, y(2013, 1, 1), y(2018, 12, 31), parent.est),
            )
            row, dirt = self.rows.org_row(
                rng,
                name=f"{city.name}{county.name}志愿服务大队",
                org_type="REGIONAL",
                level="DISTRICT_BRIGADE",
                region=county.code,
                city=city.code,
                est=org.est,
                categories=("COMMUNITY", "CIVILITY"),
                uscc_p=0.6,
            )
            row["parent_id"] = parent.id
            items.append((row, dirt, org))
        for uni, county_code in regions.UNIVERSITIES[:n_univ]:
            city_code = county_code[:4]
            parent = corps[city_code]
            org = _Org(
                0,
                "DISTRICT_BRIGADE",
                county_code,
                city_code,
                -1,
                self.rows.est(rng, y(2013, 1, 1), y(2018, 12, 31), parent.est),
            )
            row, dirt = self.rows.org_row(
                rng,
                name=f"{uni}志愿服务大队",
                org_type="REGIONAL",
                level="DISTRICT_BRIGADE",
                region=county_code,
                city=city_code,
                est=org.est,
                categories=("EDUCATION", "EVENTS", "CHILDREN"),
                uscc_p=0.6,
            )
            row["parent_id"] = parent.id
            items.append((row, dirt, org))
        brigades = self.rows.insert("DISTRICT_BRIGADE", items)
        return counties, brigades[: len(counties)]

    def _street_stations(
        self, counties: list[regions.County], county_brigades: list[_Org]
    ) -> tuple[list[_Org], list[tuple[regions.County, int, str]], list[int]]:
        """The street stations of each active county; returns them, each with its county, township number and
        kind (``street``, ``town``, ``township``), and the count per county."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        n_streets = scaled("STREET_STATION", s, len(county_brigades))
        per_county = allocate(n_streets, [c.weight for c in counties], 1)
        items = []
        street_meta: list[tuple[regions.County, int, str]] = []
        for county, brigade, n in zip(counties, county_brigades, per_county, strict=True):
            stems = self.rows.unique_stems(rng, n)
            kinds = self.rows.township_kinds(rng, county, n)
            numbers = {"street": 0, "town": 100, "township": 200}
            for stem, kind in zip(stems, kinds, strict=True):
                numbers[kind] += 1
                suffix = {"street": "街道", "town": "镇", "township": "乡"}[kind]
                sname = stem + suffix
                org = _Org(
                    0,
                    "STREET_STATION",
                    county.code,
                    county.city_code,
                    -1,
                    self.rows.est(rng, y(2014, 1, 1), y(2020, 12, 31), brigade.est),
                    short=sname,
                )
                row, dirt = self.rows.org_row(
                    rng,
                    name=f"{county.name}{sname}志愿服务中心工作站",
                    org_type="REGIONAL",
                    level="STREET_STATION",
                    region=county.code,
                    city=county.city_code,
                    est=org.est,
                    categories=("COMMUNITY",),
                    uscc_p=0.2,
                    street_code=regions.full_street_code(county.code, numbers[kind]),
                )
                row["parent_id"] = brigade.id
                items.append((row, dirt, org))
                street_meta.append((county, numbers[kind], kind))
        return self.rows.insert("STREET_STATION", items), street_meta, per_county

    def _community_stations(self, counties: list[regions.County], streets: list[_Org],
                            street_meta: list[tuple[regions.County, int, str]], per_county: list[int]) -> None:
        """The community stations of each street station, kept by county (the teams' stations, the volunteers' orgs)."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        n_comm = scaled("COMMUNITY_STATION", s, len(streets))
        weights = [
            regions.COUNTY_BY_CODE[m[0].code].weight
            / per_county[counties.index(m[0])]
            * rng.lognormvariate(0, 0.5)
            for m in street_meta
        ]
        per_street = allocate(n_comm, weights, 1)
        items = []
        for street, (county, township, kind), n in zip(streets, street_meta, per_street, strict=True):
            stems = self.rows.unique_stems(rng, n)
            n_urban = n if kind == "street" else (min(n, rng.randint(1, 3)) if kind == "town" else 0)
            for i, stem in enumerate(stems):
                urban = i < n_urban
                village = (i + 1) if urban else 200 + (i - n_urban) + 1
                cname = stem + ("社区" if urban else "村")
                org = _Org(
                    0,
                    "COMMUNITY_STATION",
                    county.code,
                    county.city_code,
                    -1,
                    self.rows.est(rng, y(2015, 1, 1), y(2023, 12, 31), street.est),
                    short=f"{street.short}{cname}",
                )
                org.main_category = 0
                row, dirt = self.rows.org_row(
                    rng,
                    name=f"{street.short}{cname}学雷锋志愿服务工作站",
                    org_type="REGIONAL",
                    level="COMMUNITY_STATION",
                    region=county.code,
                    city=county.city_code,
                    est=org.est,
                    categories=("COMMUNITY", "ELDERLY_DISABLED", "CIVILITY"),
                    uscc_p=0.05,
                    street_code=regions.community_code(county.code, township, village),
                )
                row["parent_id"] = street.id
                items.append((row, dirt, org))
        for org in self.rows.insert("COMMUNITY_STATION", items):
            self.g.stations_by_county.setdefault(org.county or "", []).append(org)


class _SpecializedLine:
    """The specialized line of the org tree (registry-api.md §4.1), parents first: a ``PROVINCIAL_CORPS`` per
    department, ``CITY_DETACHMENT``s, ``COUNTY_UNIT``s, and ``GRASSROOTS_TEAM``s, each with the community station
    it works from (``station_id``). Built after the regional line, whose counties and stations it uses."""

    def __init__(self, rows: _OrgRows) -> None:
        self.rows = rows
        self.g = rows.g
        self.rng = rows.rng

    def build(self) -> None:
        """Make and insert the line; sets the generation's teams and leaves by county."""
        provs = self._provincial_corps()
        dets = self._city_detachments(provs)
        units = self._county_units(dets)
        self._grassroots_teams(units)

    def _provincial_corps(self) -> list[_Org]:
        """One per department (at least 8)."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        depts = catalog.DEPARTMENTS
        n_prov = min(len(depts), max(8, round(TARGETS["PROVINCIAL_CORPS"] * s)))
        items = []
        for di in range(n_prov):
            dept = depts[di]
            org = _Org(0, "PROVINCIAL_CORPS", None, None, di, self.rows.est(rng, y(2012, 1, 1), y(2015, 12, 31)))
            row, dirt = self.rows.org_row(
                rng,
                name=f"{dept.province_name}专项志愿服务总队",
                org_type="SPECIALIZED",
                level="PROVINCIAL_CORPS",
                region="230000",
                city="2301",
                est=org.est,
                categories=dept.categories,
                uscc_p=1.0,
            )
            items.append((row, dirt, org))
        return self.rows.insert("PROVINCIAL_CORPS", items)

    def _city_detachments(self, provs: list[_Org]) -> list[_Org]:
        """Every department's in the capital, the rest drawn by department and city weight."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        depts = catalog.DEPARTMENTS
        n_det = scaled("CITY_DETACHMENT", s, len(provs))
        pairs: list[tuple[int, regions.City]] = []
        rest_pairs: list[tuple[int, regions.City]] = []
        city_weight = {
            c.code: sum(x.weight for x in regions.COUNTIES if x.city_code == c.code) for c in regions.CITIES
        }
        for pi in range(len(provs)):  # every department has a detachment in the capital
            first = regions.CITIES[0]
            pairs.append((pi, first))
            rest_pairs += [(pi, c) for c in regions.CITIES if c is not first]
        pairs += weighted_sample(
            rng,
            rest_pairs,
            [depts[provs[pi].dept].weight * city_weight[c.code] for pi, c in rest_pairs],
            n_det - len(pairs),
        )
        pairs.sort(key=lambda p: (p[0], p[1].code))
        items = []
        for pi, city in pairs:
            prov = provs[pi]
            dept = depts[prov.dept]
            org = _Org(
                0,
                "CITY_DETACHMENT",
                None,
                city.code,
                prov.dept,
                self.rows.est(rng, y(2014, 1, 1), y(2019, 12, 31), prov.est),
            )
            row, dirt = self.rows.org_row(
                rng,
                name=f"{dept.city_tpl.format(city.name)}专项志愿服务支队",
                org_type="SPECIALIZED",
                level="CITY_DETACHMENT",
                region=city.code + "00",
                city=city.code,
                est=org.est,
                categories=dept.categories,
                uscc_p=0.5,
            )
            row["parent_id"] = prov.id
            items.append((row, dirt, org))
        return self.rows.insert("CITY_DETACHMENT", items)

    def _county_units(self, dets: list[_Org]) -> list[_Org]:
        """Each detachment's in its city's largest active county, the rest drawn by weight."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        depts = catalog.DEPARTMENTS
        n_units = scaled("COUNTY_UNIT", s, len(dets))
        active_by_city: dict[str, list[regions.County]] = {}
        for c in self.g.active_counties:
            active_by_city.setdefault(c.city_code, []).append(c)
        unit_pairs: list[tuple[int, regions.County]] = []
        rest_units: list[tuple[int, regions.County]] = []
        for di, det in enumerate(dets):
            own = sorted(active_by_city[det.city or ""], key=lambda c: -c.weight)
            unit_pairs.append((di, own[0]))
            rest_units += [(di, c) for c in own[1:]]
        unit_pairs += weighted_sample(
            rng,
            rest_units,
            [depts[dets[di].dept].weight * c.weight for di, c in rest_units],
            n_units - len(unit_pairs),
        )
        unit_pairs.sort(key=lambda p: (p[0], p[1].code))
        items = []
        for di, county in unit_pairs:
            det = dets[di]
            dept = depts[det.dept]
            city = regions.CITY_BY_CODE[county.city_code]
            org = _Org(
                0,
                "COUNTY_UNIT",
                county.code,
                city.code,
                det.dept,
                self.rows.est(rng, y(2015, 1, 1), y(2021, 12, 31), det.est),
            )
            row, dirt = self.rows.org_row(
                rng,
                name=f"{dept.county_tpl.format(city.name + county.name)}专项志愿服务分队",
                org_type="SPECIALIZED",
                level="COUNTY_UNIT",
                region=county.code,
                city=city.code,
                est=org.est,
                categories=dept.categories,
                uscc_p=0.2,
            )
            row["parent_id"] = det.id
            items.append((row, dirt, org))
        return self.rows.insert("COUNTY_UNIT", items)

    def _grassroots_teams(self, units: list[_Org]) -> None:
        """The teams of each unit, each working from a community station of its county; then the leaves
        (stations and teams) by county."""
        rng = self.rng
        s = self.g.scale
        y = dt.date
        depts = catalog.DEPARTMENTS
        n_teams = scaled("GRASSROOTS_TEAM", s, len(units))
        per_unit = allocate(
            n_teams,
            [
                depts[u.dept].weight
                * regions.COUNTY_BY_CODE[u.county or ""].weight
                * rng.lognormvariate(0, 0.4)
                for u in units
            ],
            1,
        )
        items = []
        used_names: dict[tuple[int, int], int] = {}
        for unit, n in zip(units, per_unit, strict=True):
            dept = depts[unit.dept]
            stations = self.g.stations_by_county[unit.county or ""]
            for _ in range(n):
                station = rng.choice(stations)
                key = (station.id, unit.dept)
                nth = used_names.get(key, 0) + 1
                used_names[key] = nth
                ordinal = "" if nth == 1 else _NUMERALS[nth] if nth < len(_NUMERALS) else str(nth)
                org = _Org(
                    0,
                    "GRASSROOTS_TEAM",
                    unit.county,
                    unit.city,
                    unit.dept,
                    self.rows.est(rng, y(2015, 6, 1), self.g.as_of, max(unit.est, station.est)),
                    main_category=catalog.CATEGORIES.index(dept.categories[0]),
                )
                row, dirt = self.rows.org_row(
                    rng,
                    name=f"{station.short}{dept.theme}志愿服务{ordinal}队",
                    org_type="SPECIALIZED",
                    level="GRASSROOTS_TEAM",
                    region=unit.county or "",
                    city=unit.city,
                    est=org.est,
                    categories=dept.categories,
                    uscc_p=0.05,
                )
                row["parent_id"] = unit.id
                row["station_id"] = station.id
                items.append((row, dirt, org))
        for org in self.rows.insert("GRASSROOTS_TEAM", items):
            self.g.teams_by_county.setdefault(org.county or "", []).append(org)
        for row, _, org in items:
            self.g.station_of[org.id] = row["station_id"]
        for county_code, lst in self.g.stations_by_county.items():
            self.g.leaves_by_county[county_code] = lst + self.g.teams_by_county.get(county_code, [])
        for county_code, lst in self.g.teams_by_county.items():
            self.g.leaves_by_county.setdefault(county_code, lst)

@dataclass(slots=True)
class _Person:
    """One person's identity (the same on both rows of a duplicated person)."""

    serial: int
    name: str
    name_kind: str  # "han", "dot", "foreign"
    non_bmp: bool
    gender: str
    birth: dt.date
    id_type: str
    number: str  # the clean, normalized number
    county: regions.County
    phone: str


@dataclass(order=True, slots=True)
class _PendingDuplicate:
    due: int
    serial: int
    person: _Person = field(compare=False)
    registered_at: dt.datetime = field(compare=False)
    dates: frozenset[int] = field(compare=False)
    trainings: frozenset[int] = field(compare=False, default=frozenset())  # the first row's (v1.1), avoided
    evaluated: frozenset[int] = field(compare=False, default=frozenset())  # likewise, the activities it was scored at


class _Identities:
    """Who the volunteers are: each new person's identity (document, number, name, birth, residence, phone), when
    they registered, and a row of theirs as the platform holds it, dirt applied.

    Args:
        g: the generation (scale, seed, rates, as_of, the active counties).
        rng: the volunteers' random stream, shared with :class:`_People` (the draws interleave as they did).
    """

    def __init__(self, g: _Generator, rng: random.Random) -> None:
        self.g = g
        self.rng = rng
        self.rates = g.rates
        self.alloc = identifiers.OrderAllocator(g.seed)
        self.verified: set[tuple[str, int]] = set()
        counties = g.active_counties or list(regions.COUNTIES)
        self.residence = _Cumulative(counties, [c.weight for c in counties])
        self.anywhere = _Cumulative(regions.COUNTIES, [c.weight for c in regions.COUNTIES])
        self.serial = 0

    def _birth_year(self) -> int:
        lo, hi = _bucket(self.rng, AGE_BUCKETS)
        return self.g.as_of.year - self.rng.randint(lo, hi)  # ages 16–74 at as_of, whatever the day

    def _order3(self, prefix: int, gender: str) -> str:
        digit = self.rng.choice("13579" if gender == "M" else "02468")
        if prefix == 0 and digit == "0":
            digit = "2"
        return f"{prefix:02d}{digit}"

    def _allocate(self, areas: Iterable[str], year: int, gender: str) -> tuple[str, dt.date, str]:
        """Take a unique (birth day, order code) in the first of ``areas`` with room in ``year``.

        A full area-year (only at scales far above 1) falls back to any code of the province valid then.
        """
        fallback = (c for county in regions.COUNTIES for c in regions.birth_codes(county.code, year))
        for area in itertools.chain(areas, fallback):
            slot = self.alloc.take(area, year)
            if slot is not None:
                day, prefix = slot
                birth = dt.date(year, 1, 1) + dt.timedelta(days=day)
                return area, birth, self._order3(prefix, gender)
        raise RuntimeError(f"no ID number slot left for birth year {year}: scale too large")

    def new_person(self) -> _Person:
        rng = self.rng
        self.serial += 1
        county: regions.County = self.residence.pick(rng)
        gender = "F" if rng.random() < 0.54 else "M"
        year = self._birth_year()
        r = rng.random()
        id_type = "RESIDENT_ID"
        for t, p in OTHER_ID_TYPES:
            if r < p:
                id_type = t
                break
            r -= p
        name_kind = "han"
        if id_type == "RESIDENT_ID":
            r = rng.random()
            if r < 0.03:
                areas = rng.sample(regions.other_province_codes(year), k=1) + regions.birth_codes(
                    county.code, year
                )
            elif r < 0.18:
                areas = regions.birth_codes(self.anywhere.pick(rng).code, year)
            else:
                areas = regions.birth_codes(county.code, year)
            area, birth, order = self._allocate(areas, year, gender)
            number = identifiers.resident_id(area, birth.strftime("%Y%m%d"), order)
            if (area, year) not in self.verified:  # GB/T 2260 code valid in the birth year, per stdnum
                if not ric.is_valid(number):
                    raise AssertionError(
                        f"generated ID number not valid per python-stdnum: area {area} {year}"
                    )
                self.verified.add((area, year))
            if rng.random() < self.rates.name_dot:
                name_kind = "dot"
        elif id_type == "HMT_RESIDENCE_PERMIT":
            area = rng.choice(("810000", "820000", "830000"))
            area, birth, order = self._allocate([area], year, gender)
            number = identifiers.resident_id(area, birth.strftime("%Y%m%d"), order)
        elif id_type == "FOREIGN_PERMANENT_ID":
            # 2023 form: 9 + province of issue (2) + nationality (3, ISO 3166 numeric) + birth date + order
            # + check (GB 11643 algorithm)
            area = "923" + rng.choice(("643", "410", "392", "840", "496"))
            area, birth, order = self._allocate([area], year, gender)
            number = identifiers.resident_id(area, birth.strftime("%Y%m%d"), order)
            name_kind = rng.choice(("foreign", "dot"))
        else:
            birth = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
            body = (self.serial * 7_919 + 12_345) % 100_000_000  # a bijection of the serial: unique
            if id_type == "PASSPORT":
                number = f"{rng.choice('EGKP')}{body:08d}"
                name_kind = rng.choice(("foreign", "dot"))
            else:  # 港澳居民来往内地通行证: H (Hong Kong) or M (Macao) + 8 digits
                number = f"{rng.choice('HM')}{body:08d}"
        if name_kind == "dot":
            name = names.dot_name(rng, gender)
        elif name_kind == "foreign":
            name = names.foreign_name(rng)
        else:
            name = names.han_name(rng, gender)
        non_bmp = name_kind == "han" and rng.random() < self.rates.name_non_bmp
        if non_bmp:
            name = names.with_non_bmp(rng, name)
        return _Person(
            self.serial,
            name,
            name_kind,
            non_bmp,
            gender,
            birth,
            id_type,
            number,
            county,
            identifiers.mobile(rng),
        )

    def registered_at(self, person: _Person) -> dt.datetime:
        rng = self.rng
        start = max(_PLATFORM_START.toordinal(), person.birth.toordinal() + 16 * 365 + 4)  # aged 16 or more
        span = self.g.as_of_day - 1 - start
        day = start + int(span * math.sqrt(rng.random())) if span > 0 else self.g.as_of_day - 1
        return _utc(day, rng.randrange(7 * 60, 22 * 60))

    def raw_fields(
        self, person: _Person, *, second_row: bool, keep_fixable: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """The row as the platform holds it, dirt applied, and the dirt kinds applied.

        ``keep_fixable``: no unfixable ID dirt (both rows of a duplicated person must share a normalized
        number); ``second_row``: the person's second registration (a new phone half the time).
        """
        rng = self.rng
        rates = self.rates
        dirt: list[str] = []
        number = person.number
        if person.id_type == "RESIDENT_ID":
            r = rng.random()
            if not keep_fixable and r < rates.id_bad_check:
                number = identifiers.wrong_check_char(number, rng)
                dirt.append("id_bad_check")
            elif person.birth.year < 2000 and rng.random() < rates.id_legacy_15:
                number = identifiers.to_legacy_15(number)
                dirt.append("id_legacy_15")
            elif rng.random() < rates.id_fullwidth:
                number = identifiers.to_fullwidth(number)
                dirt.append("id_fullwidth")
            elif number.endswith("X") and rng.random() < rates.id_lowercase_x:
                number = number[:-1] + "x"
                dirt.append("id_lowercase_x")
        name = person.name
        if person.name_kind == "dot" and rng.random() < rates.name_lookalike_dot:
            name = name.replace("\u00b7", rng.choice(names.LOOKALIKE_DOTS))
            dirt.append("name_lookalike_dot")
        if person.non_bmp:
            dirt.append("name_non_bmp")
        phone: str | None
        phone = person.phone if not second_row or rng.random() < 0.5 else identifiers.mobile(rng)
        r = rng.random()
        if r < rates.phone_bad:
            phone = identifiers.malformed_mobile(rng, phone)
            dirt.append("phone_bad")
        elif r < rates.phone_bad + rates.phone_blank:
            phone = rng.choice((None, None, "", " "))
            dirt.append("phone_blank")
        elif r < rates.phone_bad + rates.phone_blank + rates.phone_format:
            phone = identifiers.messy_mobile(rng, phone)
            dirt.append("phone_format")
        n_skills = rng.choice((0, 0, 1, 1, 2, 2, 3, 4))
        row = {
            "name": name,
            "id_type": person.id_type,
            "id_number": number,
            "id_number_norm": try_normalize_id_number(person.id_type, number),
            "gender": person.gender,
            "birth_date": person.birth,
            "phone": phone,
            "region_code": person.county.code,
            "skills": json.dumps(rng.sample(catalog.SKILLS, n_skills), ensure_ascii=False),
            "home_province": regions.PROVINCE_CODE,
            "status": "ACTIVE",
            "remark": None,
        }
        return row, dirt


@dataclass(slots=True)
class _Rows11:
    """One volunteer row's records of registry-api.md v1.1, volunteer ids as the row's place in its chunk (as the
    service records' are), with the dirt kinds of each training record and evaluation."""

    training_records: list[dict[str, Any]] = field(default_factory=list)
    training_dirt: list[str | None] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    evaluation_dirt: list[str | None] = field(default_factory=list)
    commendations: list[dict[str, Any]] = field(default_factory=list)
    trainings: frozenset[int] = frozenset()  # the training arrays' indexes attended
    evaluated: frozenset[int] = frozenset()  # the activity arrays' indexes scored at


class _Volunteer11:
    """A volunteer row's training records, evaluations and commendations (registry-api.md §4.7–§4.9), from its
    memberships and service records, on a random stream of their own (``v11``), so that the five kinds of v1 are
    the rows they were before v1.1.

    Rules kept: a training record is of a training of an org the volunteer is a member of (joined on or before its
    start, not left), not CANCELLED, started on or before ``as_of``; ``completedOn`` within its days and not after
    ``as_of``; class hours 0.50 to the training's, in steps of 0.50; one per training and person (a duplicated
    person's second row avoids the first's trainings). An evaluation is of an ACCEPTED service record's activity,
    COMPLETED, by its org, on or after its last day, not after ``as_of``; one per activity and person. A scheme
    commendation only for a year whose ACCEPTED hours of the row reach a tier (the registry counts the person's,
    which are at least the row's), never on a person's second row (one per person, scheme and year).

    Args:
        g: the generation.
    """

    def __init__(self, g: _Generator) -> None:
        self.g = g
        self.rng = g.rng("v11")
        self.rates = g.rates
        self.with_trainings = "training_record" in g.kinds
        self.with_evaluations = "evaluation" in g.kinds
        self.with_commendations = "commendation" in g.kinds

    def make(self, pos: int, person: _Person, members: list[tuple[_Org, int, int | None]],
             records: list[dict[str, Any]], ais: Sequence[int], reg_day: int, dup: _PendingDuplicate | None
             ) -> _Rows11:
        """The row's v1.1 records (``records``: its service records, ``ais``: their activities' indexes)."""
        out = _Rows11()
        if self.with_trainings:
            self._training_records(pos, members, dup.trainings if dup is not None else frozenset(), out)
        if self.with_evaluations:
            self._evaluations(pos, records, ais, dup.evaluated if dup is not None else frozenset(), out)
        if self.with_commendations:
            self._commendations(pos, person, records, reg_day, dup is not None, out)
        return out

    def _training_records(self, pos: int, members: list[tuple[_Org, int, int | None]], avoid: frozenset[int],
                          out: _Rows11) -> None:
        rand = self.rng.random
        g = self.g
        taken: set[int] = set()
        for org, joined, left in members:
            for ti in range(org.tr_first, org.tr_first + org.tr_count):
                day0 = g.tr_day0[ti]
                if (g.tr_status[ti] == 2 or day0 > g.as_of_day or day0 < joined or (left is not None and day0 >= left)
                        or ti in avoid or ti in taken or rand() >= TRAINING_ATTENDANCE):
                    continue
                taken.add(ti)
                end = min(day0 + g.tr_days[ti] - 1, g.as_of_day)
                full = g.tr_hours[ti]
                dirt = None
                if rand() < self.rates.training_record_hours:
                    hours = full + 50 * (1 + int(rand() * 4))
                    dirt = "training_record_hours"
                elif rand() < 0.85:
                    hours = full
                else:
                    hours = 50 * (1 + int(rand() * (full // 50)))
                revoked = rand() < 0.01
                out.training_records.append({
                    "training_id": g.tr_ids[ti],
                    "volunteer_id": pos,
                    "completed_on": dt.date.fromordinal(day0 + int(rand() * (end - day0 + 1))),
                    "class_hours": hours,
                    "result": "PASSED" if hours >= full and rand() < 0.9 else "ATTENDED",
                    "status": "REVOKED" if revoked else "ACCEPTED",
                    "revoke_reason": catalog.REVOKE_REASONS_V11[int(rand() * len(catalog.REVOKE_REASONS_V11))]
                    if revoked else None,
                })
                out.training_dirt.append(dirt)
        out.trainings = frozenset(taken)

    def _evaluations(self, pos: int, records: list[dict[str, Any]], ais: Sequence[int], avoid: frozenset[int],
                     out: _Rows11) -> None:
        rand = self.rng.random
        g = self.g
        scored: set[int] = set()
        # the dirt's: activities that ended but were never marked COMPLETED (so that the registry's one refusal is
        # INVALID_STATE, not a date before the activity's end, §4.9)
        open_records = [(r, ai) for r, ai in zip(records, ais, strict=True)
                        if r["status"] == "ACCEPTED" and g.act_status[ai] == 0
                        and g.act_day0[ai] + g.act_days[ai] - 1 < g.as_of_day]
        for r, ai in zip(records, ais, strict=True):
            if r["status"] != "ACCEPTED" or g.act_status[ai] != 1 or ai in scored or ai in avoid:
                continue
            if rand() >= EVALUATION_RATE:
                continue
            dirt = None
            end_day = g.act_day0[ai] + g.act_days[ai] - 1
            if open_records and rand() < self.rates.evaluation_not_completed:
                r, ai = open_records[int(rand() * len(open_records))]  # an activity not yet COMPLETED
                if ai in scored or ai in avoid:
                    continue
                end_day = g.act_day0[ai] + g.act_days[ai] - 1
                dirt = "evaluation_not_completed"
            scored.add(ai)
            scores = [_score(rand()) for _ in range(3)]
            if rand() < self.rates.evaluation_score_zero:
                scores[int(rand() * 3)] = 0
                dirt = dirt or "evaluation_score_zero"
            revoked = dirt is None and rand() < 0.01
            day = min(end_day + int(rand() * 15), g.as_of_day)
            out.evaluations.append({
                "activity_id": r["activity_id"],
                "volunteer_id": pos,
                "evaluator_org_id": r["org_id"],
                "punctuality": scores[0],
                "attitude": scores[1],
                "competence": scores[2],
                "comment": catalog.EVALUATION_COMMENTS[int(rand() * len(catalog.EVALUATION_COMMENTS))]
                if rand() < 0.4 else None,
                "evaluated_on": dt.date.fromordinal(max(day, end_day)),
                "status": "REVOKED" if revoked else "ACTIVE",
                "revoke_reason": "评价有误" if revoked else None,
            })
            out.evaluation_dirt.append(dirt)
        out.evaluated = frozenset(scored)

    def _commendations(self, pos: int, person: _Person, records: list[dict[str, Any]], reg_day: int,
                       second_row: bool, out: _Rows11) -> None:
        rng = self.rng
        g = self.g
        city = regions.CITY_BY_CODE.get(person.county.city_code, regions.CITIES[0])
        if not second_row:
            per_year: dict[int, int] = {}
            for r in records:
                if r["status"] == "ACCEPTED":
                    year = r["service_date"].year
                    per_year[year] = per_year.get(year, 0) + r["hours"]
            for year in sorted(per_year):
                tier = next((t for t in catalog.VOLUNTEER_TIERS if per_year[year] >= t[1]), None)
                if year < g.as_of.year and tier is not None and rng.random() < SCHEME_RATE:
                    row = _scheme_commendation(rng, year, tier, g.as_of_day)
                    if row is not None:
                        out.commendations.append({**row, "volunteer_id": pos, "org_id": None})
        if rng.random() < HONOUR_RATE_VOLUNTEER:
            row = _honour(rng, catalog.VOLUNTEER_HONOURS, city, reg_day + 30, g.as_of_day)
            if row is not None:
                out.commendations.append({**row, "volunteer_id": pos, "org_id": None})


def _score(r: float) -> int:
    """A score 1–5 from a draw in [0, 1): mostly 5 and 4."""
    return 5 if r < 0.55 else 4 if r < 0.85 else 3 if r < 0.95 else 2 if r < 0.99 else 1


class _People:
    """Volunteers (who they are: :class:`_Identities`), their memberships and service records, chunk by chunk."""

    def __init__(self, g: _Generator) -> None:
        self.g = g
        self.rng = g.rng("volunteers")
        self.rates = g.rates
        self.ids = _Identities(g, self.rng)
        self.pending: list[_PendingDuplicate] = []
        self.carry = 0.0
        self.with_members = "membership" in g.kinds
        self.with_records = "service_record" in g.kinds
        self.active_leaves = {c: [o for o in lst if o.act_count > 0] for c, lst in g.leaves_by_county.items()}
        n = scaled("volunteer", g.scale, 1)
        self.n_rows = n
        self.mean_records = TARGETS["service_record"] / TARGETS["volunteer"]
        self.v11 = _Volunteer11(g) if {"training_record", "evaluation", "commendation"} & g.kinds else None
        self.count_services = "commendation" in g.kinds
        self.ais: list[int] = []  # the activity arrays' indexes of the last row's service records, in order

    # ---- memberships and records of one row

    def _memberships(self, person: _Person, reg_day: int) -> list[tuple[_Org, int, int | None]]:
        rng = self.rng
        g = self.g
        r = rng.random()
        k = MEMBERSHIPS_PER_VOLUNTEER[-1][0]
        for count, p in MEMBERSHIPS_PER_VOLUNTEER:
            if r < p:
                k = count
                break
            r -= p
        stations = g.stations_by_county.get(person.county.code, [])
        teams = g.teams_by_county.get(person.county.code, [])
        chosen: list[_Org] = []
        for _ in range(k * 3):
            if len(chosen) >= k:
                break
            pool = teams if teams and (rng.random() < 0.65 or not stations) else stations
            if not pool:
                break
            org = rng.choice(pool)
            if org not in chosen:
                chosen.append(org)
        out = []
        for i, org in enumerate(chosen):
            lo = max(reg_day, org.est)
            joined = (
                min(lo + rng.randint(0, 60), g.as_of_day)
                if i == 0
                else rng.randint(min(lo, g.as_of_day), g.as_of_day)
            )
            left = None
            if rng.random() < 0.04 and joined + 30 < g.as_of_day:
                left = rng.randint(joined + 30, min(joined + 700, g.as_of_day))
            out.append((org, joined, left))
        return out

    def _record_count(self) -> int:
        rng = self.rng
        if rng.random() < 0.25:
            k = 0
        else:
            k = 1 + int(rng.expovariate(0.75 / (self.mean_records - 0.75 * 0.5)))
        extra = min(self.carry, 20.0)
        if extra >= 1:
            k += int(extra)
            self.carry -= int(extra)
        return min(k, 200)

    def _records(
        self,
        vid: int,
        person: _Person,
        members: list[tuple[_Org, int, int | None]],
        reg_day: int,
        avoid: frozenset[int],
        rows: list[dict[str, Any]],
    ) -> frozenset[int]:
        """Append one row's service records to ``rows``; return the local days they fall on.

        Rules kept (registry-api.md §4.5): the activity is not CANCELLED; the service date is within the
        activity's days (+08:00), not before the volunteer registered (or joined the org), not after
        ``as_of``; each record on a day of its own and none on ``avoid`` (the person's other row's days),
        so ACCEPTED hours per person and day ≤ 24.00; hours 0.50–24.00 in steps of 0.25 and ≤ the span.
        Records that cannot be placed are carried over to the next volunteers, so the total stays on target.
        This is the hot loop: it draws with ``random()`` arithmetic rather than ``randrange``.
        """
        rand = self.rng.random
        g = self.g
        self.ais = []
        want = self._record_count()
        if want == 0:
            return frozenset()
        used: set[int] = set()
        own = [(org, joined) for org, joined, left in members if left is None and org.act_count > 0]
        county_pool = self.active_leaves.get(person.county.code, [])
        act_status, act_day0, act_days, act_min0, act_ids = (
            g.act_status,
            g.act_day0,
            g.act_days,
            g.act_min0,
            g.act_ids,
        )
        as_of_day = g.as_of_day
        placed = 0
        tries = 0
        while placed < want and tries < want * 4 + 4:
            tries += 1
            if own and rand() < 0.6:
                org, not_before = own[int(rand() * len(own))]
            elif county_pool:
                org, not_before = county_pool[int(rand() * len(county_pool))], reg_day
            else:
                break
            ai = org.act_first + int(rand() * org.act_count)
            if act_status[ai] == 2:
                continue
            day0 = act_day0[ai]
            lo = max(day0, not_before, reg_day)
            hi = min(day0 + act_days[ai] - 1, as_of_day)
            if lo > hi:
                continue
            day = lo + int(rand() * (hi - lo + 1))
            if day in used or day in avoid:
                continue
            used.add(day)
            r = rand()
            bucket = HOURS_BUCKETS[-1]
            for bucket in HOURS_BUCKETS:  # noqa: B007 - the bucket the draw falls in is used below
                r -= bucket[2]
                if r < 0:
                    break
            hours = bucket[0] + 25 * int(rand() * ((bucket[1] - bucket[0]) // 25 + 1))
            span = hours * 3 // 5 + _SPAN_SLACK[int(rand() * 4)]  # minutes: hours × 0.6 exactly, + a break
            if span > 1440:
                span = 1440
            start = act_min0[ai] + _START_SLACK[int(rand() * 5)]
            if start + span > 1440:
                start = 1440 - span
            starts = _utc(day, start)
            revoked = rand() < 0.015
            rows.append(
                {
                    "volunteer_id": vid,
                    "activity_id": act_ids[ai],
                    "org_id": org.id,
                    "service_date": dt.date.fromordinal(day),
                    "starts_at": starts,
                    "ends_at": starts + dt.timedelta(minutes=span),
                    "hours": hours,
                    "status": "REVOKED" if revoked else "ACCEPTED",
                    "revoke_reason": catalog.REVOKE_REASONS[int(rand() * len(catalog.REVOKE_REASONS))]
                    if revoked
                    else None,
                }
            )
            self.ais.append(ai)
            placed += 1
        self.carry += want - placed
        return frozenset(used)

    # ---- the loop

    def run(self) -> None:
        """Make the volunteer rows one by one, each with its memberships and records; write them in chunks.

        A chunk is ``batch_size // 10`` volunteers, written in one transaction. The random draws do not
        depend on the chunking, so the data does not depend on ``batch_size``.
        """
        g = self.g
        rng = self.rng
        chunk = max(1, g.batch_size // 10)
        window = min(2000, max(10, self.n_rows // 4))  # a second registration comes ≤ window rows later
        row_index = 0
        while row_index < self.n_rows or self.pending:
            items: list[_Item] = []
            while len(items) < chunk and (row_index < self.n_rows or self.pending):
                dup: _PendingDuplicate | None = None
                flag = False
                if self.pending and (self.pending[0].due <= row_index or row_index >= self.n_rows):
                    dup = heapq.heappop(self.pending)
                    person = dup.person
                    reg = dup.registered_at + dt.timedelta(
                        days=rng.randint(30, 1500), minutes=rng.randint(0, 600)
                    )
                    latest = _utc(g.as_of_day - 1, 20 * 60)
                    if reg > latest:
                        reg = max(latest, dup.registered_at + dt.timedelta(hours=1))
                else:
                    person = self.ids.new_person()
                    reg = self.ids.registered_at(person)
                    flag = rng.random() < self.rates.duplicate_person and row_index + window < self.n_rows
                pos = len(items)  # the volunteer id, until the row is inserted
                row, dirt = self.ids.raw_fields(
                    person, second_row=dup is not None, keep_fixable=dup is not None or flag
                )
                row["registered_at"] = reg
                if dup is not None:
                    dirt.append("duplicate_person")
                reg_day = (reg + _TZ_OFFSET).toordinal()
                members = self._memberships(person, reg_day) if self.with_members else []
                mem_rows = [
                    {
                        "volunteer_id": pos,
                        "org_id": org.id,
                        "joined_on": dt.date.fromordinal(joined),
                        "left_on": None if left is None else dt.date.fromordinal(left),
                    }
                    for org, joined, left in members
                ]
                rec_rows: list[dict[str, Any]] = []
                dates: frozenset[int] = frozenset()
                self.ais = []
                if self.with_records:
                    dates = self._records(
                        pos, person, members, reg_day, dup.dates if dup is not None else frozenset(), rec_rows
                    )
                extra = (self.v11.make(pos, person, members, rec_rows, self.ais, reg_day, dup)
                         if self.v11 is not None else None)
                if self.count_services and all(DIRT_KINDS[k][1] for k in dirt):
                    self._count_services(rec_rows)  # a refused volunteer's records never reach the registry
                if flag:
                    heapq.heappush(
                        self.pending,
                        _PendingDuplicate(
                            row_index + rng.randint(1, window), person.serial, person, reg, dates,
                            extra.trainings if extra is not None else frozenset(),
                            extra.evaluated if extra is not None else frozenset(),
                        ),
                    )
                items.append((row, dirt, mem_rows, rec_rows, extra))
                row_index += 1
            self._write_chunk(items)

    def _count_services(self, records: list[dict[str, Any]]) -> None:
        """Add a row's ACCEPTED service records to the count of each org and year the annual scheme counts them for
        (registry-api.md §4.8: their ``orgId`` and their team's ``stationId``). Only rows the registry accepts are
        counted (no unfixable dirt): the registry counts its own records."""
        counts = self.g.org_services
        station_of = self.g.station_of
        for r in records:
            if r["status"] != "ACCEPTED":
                continue
            year = r["service_date"].year
            for oid in (r["org_id"], station_of.get(r["org_id"])):
                if oid is not None:
                    counts[(oid, year)] = counts.get((oid, year), 0) + 1

    def _write_chunk(self, items: list[_Item]) -> None:
        g = self.g
        with g.engine.begin() as conn:
            ids = g.w.insert_returning(conn, _VOL, [row for row, _, _, _, _ in items])
            g.w.dirt(
                conn, [(vid, k) for vid, (_, kinds, _, _, _) in zip(ids, items, strict=True) for k in kinds]
            )
            mem_rows = [m for _, _, ms, _, _ in items for m in ms]
            for m in mem_rows:
                m["volunteer_id"] = ids[m["volunteer_id"]]
            g.w.insert(conn, _MEM, mem_rows)
            rec_rows = [r for _, _, _, rs, _ in items for r in rs]
            for r in rec_rows:
                r["volunteer_id"] = ids[r["volunteer_id"]]
            for start in range(0, len(rec_rows), g.batch_size):
                g.w.insert(conn, _REC, rec_rows[start : start + g.batch_size])
            extras = [x for *_, x in items if x is not None]
            counts11 = self._write_v11(conn, ids, extras)
        g.w.count("volunteer", len(items))
        if self.with_members:
            g.w.count("membership", len(mem_rows))
        if self.with_records:
            g.w.count("service_record", len(rec_rows))
        for kind, n in counts11.items():
            g.w.count(kind, n)

    def _write_v11(self, conn: Connection, ids: list[int], extras: list[_Rows11]) -> dict[str, int]:
        """Insert a chunk's v1.1 records (volunteer ids from the chunk's places to ``ids``); their dirt goes to
        :attr:`_Generator.v11_dirt`. Returns the rows inserted per kind."""
        g = self.g
        out: dict[str, int] = {}
        made: list[tuple[str, Table, list[dict[str, Any]], list[str | None]]] = [
            ("training_record", _TRR, [r for x in extras for r in x.training_records],
             [d for x in extras for d in x.training_dirt]),
            ("evaluation", _EVA, [r for x in extras for r in x.evaluations],
             [d for x in extras for d in x.evaluation_dirt]),
            ("commendation", _COM, [r for x in extras for r in x.commendations],
             [None for x in extras for _ in x.commendations])]
        for kind, table, rows, dirt in made:
            if kind not in g.kinds:
                continue
            for r in rows:
                if r["volunteer_id"] is not None:
                    r["volunteer_id"] = ids[r["volunteer_id"]]
            for start in range(0, len(rows), g.batch_size):
                part, part_dirt = rows[start:start + g.batch_size], dirt[start:start + g.batch_size]
                if any(part_dirt):
                    local_ids = g.w.insert_returning(conn, table, part)
                    g.v11_dirt += [(lid, d) for lid, d in zip(local_ids, part_dirt, strict=True) if d]
                else:
                    g.w.insert(conn, table, part)
            out[kind] = len(rows)
        return out


#: A volunteer row as the chunk holds it: the row, its dirt kinds, its memberships, its service records, and its
#: records of v1.1 (``None`` when none of their kinds is made).
_Item = tuple[dict[str, Any], list[str], list[dict[str, Any]], list[dict[str, Any]], _Rows11 | None]


# --------------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------------


def generate(
    engine: Engine,
    scale: float,
    seed: int = 42,
    *,
    kinds: set[str] | None = None,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    rates: DirtRates | None = None,
    as_of: dt.date | None = None,
    mapping: PlatformMapping | None = None,
) -> GenerateSummary:
    """Fill the local store with a province-shaped data set.

    Args:
        engine: the local store; its schema must exist (migrations, or ``Base.metadata.create_all``).
            Rows are added to what is there (ids are the database's); use an empty store for the
            published shapes.
        mapping: write into the tables of this mapping (its tables qualified where they are not in the
            connection's default schema) instead of the reference tables: the same rows, encoded by the mapping,
            keys made by the generator (:mod:`regsync.generate.mapped`); the store is migrated without the
            reference tables and the mapping's tables exist. ``None`` or the ``reference`` mapping: the reference
            tables. A kind of registry-api.md v1.1 the mapping leaves out (a platform that keeps none) is not made,
            nor what needs it.
        scale: 1.0 is the province's size (:data:`TARGETS`); counts scale linearly, top levels keep their
            minimum. Must be > 0.
        seed: the seed: the same seed, scale and ``as_of`` give the same data.
        kinds: what to make, a subset of :data:`KINDS`; default all. A kind needs those of
            :data:`REQUIRES` too.
        batch_size: rows per ``INSERT`` (executemany) and per transaction, roughly.
        progress: called after every batch as ``progress(kind, done, total)``; ``total`` is the target,
            raised to ``done`` when exceeded.
        rates: the dirt rates; default :class:`DirtRates()`.
        as_of: the data set's day (dates in +08:00): nothing past-only is later. Default
            :data:`DEFAULT_AS_OF`, or today (Asia/Shanghai) if that is earlier.

    Returns:
        The counts per kind and org level, the dirt counts per kind, the time taken.

    Raises:
        ValueError: a bad scale or batch size, an unknown kind, or a kind without what it needs;
            :class:`~regsync.generate.mapped.MappingNotWritable` (a ``ValueError``): the mapping's tables cannot
            take the rows (a required column it cannot fill, a value the mapping cannot hold).
    """
    if not scale > 0:
        raise ValueError("scale must be > 0")
    if batch_size < 1:
        raise ValueError("batch_size must be ≥ 1")
    wanted = set(KINDS) if kinds is None else set(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds: {sorted(unknown)}; known: {list(KINDS)}")
    for kind in wanted:
        missing = REQUIRES[kind] - wanted
        if missing:
            raise ValueError(f"kind {kind!r} needs {sorted(missing)} generated with it")
    if as_of is None:
        today = (dt.datetime.now(dt.UTC) + _TZ_OFFSET).date()
        as_of = min(DEFAULT_AS_OF, today)
    started = time.perf_counter()
    platform = None
    if mapping is not None and mapping.name != "reference":
        with engine.connect() as conn:
            platform = MappedWriter(conn, mapping, seed)
    if platform is not None:  # the kinds the platform keeps none of (its mapping leaves them out) are not made
        kept = set(platform.plans)
        while (fit := {k for k in wanted if k in kept and REQUIRES[k] <= wanted}) != wanted:
            wanted = fit  # and what needs a kind left out, in turn
    g = _Generator(engine, scale, seed, wanted, batch_size, progress, rates or DirtRates(), as_of, platform)
    try:
        if "org" in wanted:
            g.build_orgs()
        if "activity" in wanted:
            g.build_activities()
        if "training" in wanted:
            g.build_trainings()
        if "volunteer" in wanted:
            g.build_volunteers()
        if "commendation" in wanted:
            g.build_org_commendations()
        g.write_v11_dirt()
    finally:
        if platform is not None:
            platform.finish(engine)
    if platform is not None:
        g.summary.mapping = mapping.name if mapping is not None else "reference"
        g.summary.out_of_scope = dict(platform.out_of_scope)
        g.summary.soft_deleted = dict(platform.soft_deleted)
    g.summary.seconds = time.perf_counter() - started
    return g.summary
