"""Portal-side activity of the sandbox registry (registry-api.md §8).

A real registry changes under the client's feet: people self-register on the national portal, edit their own
phone and skills, transfer to another province or deregister; the registry corrects identity fields after
identity verification (公安核验); the civil-affairs side dissolves orgs; service records are entered on the
portal. The sandbox does all of that here, as the portal (``byClientId: "PORTAL"`` in the change feed,
``ownerClientId: "PORTAL"`` on the records it creates), through the same unit of work as the client's writes,
so the registry's invariants hold: every change makes a new version (§1), derived ``totalHours`` and
``starLevel`` follow the ACCEPTED service records (§4.2), and each change is fed to the province the record
was in before it and after it (§1 "scope", §5.3), so a transfer out reaches the old province.

Three layers:

- single operations, functions of a :class:`~regsync.sandbox.store.UnitOfWork` and a
  :class:`~regsync.sandbox.calls.Ctx` (the portal's) returning an :class:`~regsync.sandbox.calls.Outcome`
  or raising :class:`~regsync.sandbox.calls.Refusal` before changing anything: :func:`op_self_register`,
  :func:`op_contact`, :func:`op_identity`, :func:`op_transfer`, :func:`op_deregister`, :func:`op_dissolve`,
  :func:`op_service_record` (served under ``/_sandbox/portal/…`` by :mod:`regsync.sandbox.app`; v1.1's national
  commendations and training records are :mod:`regsync.sandbox.portal11`'s);
- :func:`run_activity`: N random portal-side actions over a province's current records, drawn with a seeded
  RNG (``POST /_sandbox/portal/activity``);
- :func:`trigger_activity`: the HTTP helper for Python callers (the demo's ``--portal-activity N``).
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson
from sqlalchemy import select
from stdnum.cn import ric

from regsync.sandbox import rules
from regsync.sandbox.calls import PORTAL, Ctx, Outcome, Refusal, invalid
from regsync.sandbox.operations import bump, check_unique, op_create, op_delete, province_of
from regsync.sandbox.operations11 import move_commendations
from regsync.sandbox.portal11 import ACTIONS11, op_national_commendation, op_portal_training_record
from regsync.sandbox.regions import HEILONGJIANG_CODES, PROVINCE_PREFIXES, is_region_code
from regsync.sandbox.rules import EIGHTEEN_CHAR_TYPES, FieldError
from regsync.sandbox.rules11 import format_class_hours, local_date
from regsync.sandbox.service import Registry
from regsync.sandbox.store import Record, UnitOfWork, activities, orgs, trainings, volunteers

#: The kinds of portal-side action (registry-api.md §8), in draw order: v1's, then v1.1's
#: (:data:`regsync.sandbox.portal11.ACTIONS11`: a national commendation, a training record entered on the portal).
ACTIONS: tuple[str, ...] = (
    "self_registration",
    "contact_edit",
    "identity_correction",
    "transfer_out",
    "deregistration",
    "org_dissolution",
    "service_record",
    *ACTIONS11,
)
#: Default weights of :func:`run_activity`: people's own contact edits are the most common, then service
#: records entered on the portal and self-registrations; dissolutions by civil affairs are rare, and so are v1.1's:
#: training records entered on the portal (about 3 % of the actions) and national commendations (about 1 %).
DEFAULT_MIX: dict[str, float] = {
    "self_registration": 15,
    "contact_edit": 40,
    "identity_correction": 8,
    "transfer_out": 7,
    "deregistration": 8,
    "org_dissolution": 2,
    "service_record": 20,
    "national_commendation": 1,
    "training_record": 3,
}
#: National commendations of a volunteer (§8, §4.8 without a scheme): the title, its issuer and the prefix of its
#: document numbers (文号).
NATIONAL_COMMENDATIONS = (
    ("全国最美志愿者", "中央精神文明建设指导委员会办公室", "文明办"),
    ("全国学雷锋志愿服务先进典型", "中央精神文明建设指导委员会办公室", "文明办"),
    ("中国青年志愿者优秀个人奖", "共青团中央", "中青联发"),
    ("全国优秀志愿者", "中国志愿服务联合会", "中志联"),
)
#: Volunteer fields an identity correction may set (§4.2, design.md "Conflict policy": the identity group).
IDENTITY_FIELDS = ("name", "gender", "birthDate", "idNumber", "idType")
#: Most draws an activity call makes (``count``).
MAX_COUNT = 10_000
#: Mainland provinces (GB/T 2260 prefixes) a generated volunteer may live in or transfer to.
MAINLAND = tuple(sorted(p for p in PROVINCE_PREFIXES if p not in ("71", "81", "82", "83")))
#: Provinces a transfer out goes to, by preference (a sample of neighbours and big destinations).
TRANSFER_TARGETS = ("11", "12", "15", "21", "22", "31", "32", "33", "37", "44")


def is_change(outcome: Outcome) -> bool:
    """Whether a successful portal operation changed something (not "unchanged" nor "already …")."""
    return outcome.status in (200, 201) and not outcome.message.startswith(("unchanged", "already"))


# ------------------------------------------------------------------------------------- single operations


def _volunteer(u: UnitOfWork, volunteer_id: Any, *, active: bool = True) -> Record:
    rec = u.get("volunteer", volunteer_id)
    if rec is None:
        raise Refusal(404, "NOT_FOUND", "no volunteer with this id")
    if active and rec.doc["status"] != "ACTIVE":
        raise Refusal(409, "INVALID_STATE", f"the volunteer is {rec.doc['status']}", {"id": rec.id})
    return rec


def _object(body: Any, allowed: tuple[str, ...], *, required: bool = True) -> dict[str, Any]:
    if body is None and not required:
        return {}
    if not isinstance(body, dict) or (required and not body):
        raise Refusal(400, "BAD_REQUEST", f"a JSON object of {', '.join(allowed)}")
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise invalid([FieldError(k, "UNKNOWN_FIELD", "not a field of this call") for k in unknown])
    return body


def _apply(u: UnitOfWork, c: Ctx, rec: Record, patch: dict[str, Any], message: str) -> Outcome:
    """Set ``patch`` on ``rec`` as the portal: a new version, and a change fed before and after (§1, §5.3).

    A patch that changes nothing makes no new version (as a PUT, §5.1).
    """
    doc = dict(rec.doc)
    doc.update(patch)
    if doc == rec.doc:
        return Outcome(200, "OK", "unchanged", rec.doc)
    check_unique(u, rec.kind, doc, rec.id)
    doc = bump(c, doc)
    new = Record(rec.kind, doc, province_of(u, rec.kind, doc))
    u.put(new, new=False)
    u.feed(new, "upsert", PORTAL, rec.province)
    return Outcome(200, "OK", message, doc)


def op_self_register(u: UnitOfWork, c: Ctx, body: Any) -> Outcome:
    """A volunteer self-registers on the portal (§8; §4.2 rules, nationwide (idType, idNumber) uniqueness).

    The body is a volunteer's writable fields (§4.2) without ``clientRef``: the record's ``clientRef`` is
    null and its ``ownerClientId`` is ``PORTAL`` (§1). The volunteer's province is its ``homeProvince``, so
    its client may write it (§1 "ownership": self-registered ones included); a later create of the same
    person by a client answers 409 ``DUPLICATE_ID_NUMBER`` with ``existingId`` (§4.2).

    Returns:
        201 with the record.
    """
    if isinstance(body, dict) and "clientRef" in body:
        raise invalid([FieldError("clientRef", "READ_ONLY_FIELD", "records made on the portal have no clientRef")])
    if isinstance(body, dict) and isinstance(body.get("homeProvince"), str):
        c.province = body["homeProvince"]
    return op_create(u, c, "volunteer", body)


def op_contact(u: UnitOfWork, c: Ctx, volunteer_id: Any, body: Any) -> Outcome:
    """The person's own edit of ``phone`` and/or ``skills`` on the portal (§4.2 rules; §8).

    Body ``{"phone"?: mobile or null, "skills"?: [str ≤ 20] ≤ 10}``, at least one. The volunteer must be
    ACTIVE (409 ``INVALID_STATE``). Only the given fields are checked, so a record planted with other bad
    fields can still be edited.

    Returns:
        200 with the record (a new version, or "unchanged" when the values are the same).
    """
    data = _object(body, ("phone", "skills"))
    rec = _volunteer(u, volunteer_id)
    spec = rules.WRITABLE["volunteer"]
    patch: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in ("phone", "skills"):
        if name not in data:
            continue
        if data[name] is None and spec[name].nullable:
            patch[name] = None
            continue
        try:
            patch[name] = spec[name].check(data[name])
        except rules.Invalid as exc:
            errors.append(FieldError(name, exc.code, exc.message))
    if errors:
        raise invalid(errors)
    return _apply(u, c, rec, patch, "contact edited")


def op_identity(u: UnitOfWork, c: Ctx, volunteer_id: Any, body: Any) -> Outcome:
    """An identity correction by the registry after identity verification (公安核验) (§4.2).

    Body: any of ``name``, ``gender``, ``birthDate``, ``idNumber``, ``idType``. The corrected record is
    validated like any write (§4.2: name normalization, GB 11643-1999 check character, birth date and gender
    consistent with an 18-character number, ``x`` stored as ``X``), errors on the identity fields only;
    the new (idType, idNumber) must be unique nationwide (409 ``DUPLICATE_ID_NUMBER``). The volunteer must
    be ACTIVE (409 ``INVALID_STATE``).

    Returns:
        200 with the record.
    """
    data = _object(body, IDENTITY_FIELDS)
    rec = _volunteer(u, volunteer_id)
    full = {k: rec.doc.get(k) for k in rules.WRITABLE["volunteer"]}
    full.update(data)
    full["status"] = rec.doc["status"]
    fields, errors = rules.validate("volunteer", full, current=rec.doc, province=rec.province, today=c.today)
    errors = [e for e in errors if e.field in IDENTITY_FIELDS]
    if errors:
        raise invalid(errors)
    patch = {k: fields[k] for k in data}
    if "idType" in data and "idNumber" not in data:
        patch["idNumber"] = fields["idNumber"]
    return _apply(u, c, rec, patch, "identity corrected")


def op_transfer(u: UnitOfWork, c: Ctx, volunteer_id: Any, body: Any) -> Outcome:
    """A transfer to another province (§4.2 ``homeProvince``; §1 "scope" and "ownership").

    Body ``{"homeProvince": "11", "regionCode"?: residence code}``. The change is fed to the old province
    and the new one; the old province's client may still read the record but gets 403 ``NOT_OWNER`` on
    writes. Memberships (their province is their org's) are left as they are; (v1.1) the volunteer's
    commendations move with them: each is fed to both provinces, and from then on only the portal writes them.
    The volunteer must be ACTIVE.

    Returns:
        200 with the record ("unchanged" for a transfer to the province it is in).
    """
    data = _object(body, ("homeProvince", "regionCode"))
    rec = _volunteer(u, volunteer_id)
    errors: list[FieldError] = []
    patch: dict[str, Any] = {}
    try:
        if "homeProvince" not in data:
            raise rules.Invalid("REQUIRED", "the province the volunteer moves to")
        patch["homeProvince"] = rules.check_province(data["homeProvince"])
    except rules.Invalid as exc:
        errors.append(FieldError("homeProvince", exc.code, exc.message))
    if "regionCode" in data:
        if is_region_code(data["regionCode"]):
            patch["regionCode"] = data["regionCode"]
        else:
            errors.append(FieldError("regionCode", "INVALID_REGION", "a GB/T 2260 code"))
    if errors:
        raise invalid(errors)
    outcome = _apply(u, c, rec, patch, f"transferred to {patch['homeProvince']}")
    moved = u.get("volunteer", rec.id)
    if moved is not None and moved.province != rec.province:  # v1.1: the commendations move with the person
        move_commendations(u, c, moved, rec.province)
    return outcome


def op_deregister(u: UnitOfWork, c: Ctx, volunteer_id: Any, body: Any = None) -> Outcome:
    """The person deregisters on the portal (§4.2 ``status``; fed as ``op: "delete"``, §5.3).

    Records are never erased: the volunteer is DEREGISTERED, its service records and hours stay.

    Returns:
        200 with the record ("already DEREGISTERED" without a new version when it was).
    """
    _object(body, (), required=False)
    rec = _volunteer(u, volunteer_id, active=False)
    return op_delete(u, c, "volunteer", rec.id, rec.doc["version"])


def _live_subtree(u: UnitOfWork, org_id: str) -> list[str]:
    """The org and its descendants that are not DISSOLVED, children before their parent."""
    out: list[str] = []
    stack: list[tuple[str, bool]] = [(org_id, False)]
    while stack:
        oid, expanded = stack.pop()
        rec = u.get("org", oid)
        if rec is None:
            continue
        if expanded:
            if rec.doc["status"] != "DISSOLVED":
                out.append(oid)
            continue
        stack.append((oid, True))
        for child in sorted(u.find("org", "parent_id", oid), key=lambda r: r.id, reverse=True):
            stack.append((child.id, False))
    return out


def op_dissolve(u: UnitOfWork, c: Ctx, org_id: Any, body: Any) -> Outcome:
    """Civil affairs dissolves an org (§4.1 ``status``; fed as ``op: "delete"``, §5.3).

    Body ``{"subtree"?: bool}`` (or none). Without ``subtree`` the children-first rule applies: 409
    ``ORG_HAS_ACTIVE_CHILDREN`` with ``data.childIds``. With ``"subtree": true`` every live descendant is
    dissolved first, deepest first, each a new version and a change of its own. A dissolved org frees its
    USCC (§4.1). Memberships and activities of the org are left as they are.

    Returns:
        200 with ``{"org": the org's record, "dissolvedIds": [the orgs dissolved, children first]}``.
    """
    data = _object(body, ("subtree",), required=False)
    subtree = data.get("subtree", False)
    if not isinstance(subtree, bool):
        raise invalid([FieldError("subtree", "INVALID_VALUE", "true or false")])
    top = u.get("org", org_id)
    if top is None:
        raise Refusal(404, "NOT_FOUND", "no org with this id")
    ids = _live_subtree(u, top.id) if subtree else [top.id]
    done: list[str] = []
    for oid in ids:
        rec = u.get("org", oid)
        assert rec is not None
        if is_change(op_delete(u, c, "org", oid, rec.doc["version"])):
            done.append(oid)
    message = f"dissolved {len(done)} org(s)" if done else "already DISSOLVED"
    now = u.get("org", top.id)
    assert now is not None
    return Outcome(200, "OK", message, {"org": now.doc, "dissolvedIds": done})


def op_service_record(u: UnitOfWork, c: Ctx, body: Any) -> Outcome:
    """A service record entered on the portal (§4.5; owner ``PORTAL``, §1 "ownership").

    The body is a service record's writable fields (§4.5) without ``clientRef``. The registry's rules apply:
    an ACTIVE volunteer, an activity not CANCELLED with ``serviceDate`` within its dates, a live recording
    org, 0.50–24.00 hours in steps of 0.25 within the span, at most 24.00 ACCEPTED hours a day (422
    ``DAILY_HOURS_EXCEEDED``). The record's province is its org's; the volunteer's ``totalHours`` and
    ``starLevel`` move (a new version, fed as well). The client may read it but gets 403 ``NOT_OWNER`` on a
    revoke: service records entered on the portal are the portal's.

    Returns:
        201 with the record.
    """
    if isinstance(body, dict) and "clientRef" in body:
        raise invalid([FieldError("clientRef", "READ_ONLY_FIELD", "records made on the portal have no clientRef")])
    return op_create(u, c, "serviceRecord", body)


# ------------------------------------------------------------------------------------------ random activity


@dataclass(slots=True)
class ActivityRequest:
    """The body of ``POST /_sandbox/portal/activity``, checked (see :func:`parse_activity_request`)."""

    count: int
    seed: int | None = None
    province: str = "23"
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    duplicate_of_local: list[dict[str, Any]] = field(default_factory=list)
    duplicate_rate: float = 0.5


def parse_activity_request(data: Any) -> ActivityRequest:
    """Check the body of ``POST /_sandbox/portal/activity``.

    Body: ``{"count": N (0–10000), "seed"?: int, "province"?: "23", "mix"?: {action: weight ≥ 0},
    "duplicate_of_local"?: [{"idType", "idNumber", "name"}, …], "duplicate_rate"?: 0–1 (0.5)}``. A given
    ``mix`` replaces :data:`DEFAULT_MIX` (actions it leaves out are not drawn).

    Raises:
        ValueError: a bad body (answered 400 ``BAD_REQUEST``).
    """
    if not isinstance(data, dict):
        raise ValueError('a JSON object {"count": N, "seed"?, "province"?, "mix"?, "duplicate_of_local"?}')
    allowed = {"count", "seed", "province", "mix", "duplicate_of_local", "duplicate_rate"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")

    def integer(v: Any) -> TypeGuard[int]:
        return isinstance(v, int) and not isinstance(v, bool)

    count = data.get("count")
    if not integer(count) or not 0 <= count <= MAX_COUNT:
        raise ValueError(f"count is an integer from 0 to {MAX_COUNT}")
    seed = data.get("seed")
    if seed is not None and not integer(seed):
        raise ValueError("seed is an integer")
    province = data.get("province", "23")
    if province not in MAINLAND:
        raise ValueError("province is a 2-digit mainland GB/T 2260 province code")
    mix = dict(DEFAULT_MIX)
    if data.get("mix") is not None:
        given = data["mix"]
        if not isinstance(given, dict):
            raise ValueError(f"mix is an object of weights, actions: {', '.join(ACTIONS)}")
        bad = sorted(k for k in given if k not in ACTIONS)
        if bad:
            raise ValueError(f"unknown actions in mix: {', '.join(bad)} (actions: {', '.join(ACTIONS)})")
        for k, v in given.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != v:
                raise ValueError(f"mix.{k} is a weight ≥ 0")
        mix = {a: float(given.get(a, 0)) for a in ACTIONS}
        if sum(mix.values()) <= 0 and count:
            raise ValueError("mix has no positive weight")
    people = data.get("duplicate_of_local") or []
    if not isinstance(people, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("idType"), str)
        and isinstance(p.get("idNumber"), str)
        and isinstance(p.get("name"), str)
        for p in people
    ):
        raise ValueError('duplicate_of_local is a list of {"idType", "idNumber", "name"}')
    rate = data.get("duplicate_rate", 0.5)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ValueError("duplicate_rate is a number from 0 to 1")
    return ActivityRequest(count, seed, province, mix, [dict(p) for p in people], float(rate))


class _IdPool:
    """Ids to draw from: O(1) draw, add and remove, in an order that depends only on what was done."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)
        self.pos = {i: n for n, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def pick(self, rng: random.Random) -> str | None:
        return self.ids[rng.randrange(len(self.ids))] if self.ids else None

    def add(self, rid: str) -> None:
        if rid not in self.pos:
            self.pos[rid] = len(self.ids)
            self.ids.append(rid)

    def remove(self, rid: str) -> None:
        n = self.pos.pop(rid, None)
        if n is None:
            return
        last = self.ids.pop()
        if n < len(self.ids):
            self.ids[n] = last
            self.pos[last] = n


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍鹏辉建国红波宁晨宇轩涵欣怡浩然子墨雨桐博文思远"
_SKILLS = (
    "急救",
    "心理疏导",
    "外语翻译",
    "手语",
    "驾驶",
    "摄影",
    "法律咨询",
    "支教",
    "义诊",
    "文艺演出",
    "电脑维修",
    "应急救援",
    "垃圾分类宣传",
    "交通引导",
    "助老服务",
)


def _check_char(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits (§4.2)."""
    return ric.calc_check_digit(first17 + "0")


class _Activity:
    """One ``POST /_sandbox/portal/activity``: pools of the province's records, then the draws."""

    def __init__(self, registry: Registry, req: ActivityRequest, on_applied: Callable[[str], None] | None) -> None:
        self.reg = registry
        self.req = req
        self.p = req.province
        self.rng = random.Random(req.seed)
        self.on_applied = on_applied
        self.people = list(req.duplicate_of_local)
        self.regions = (
            sorted(c for c in HEILONGJIANG_CODES if not c.endswith("00"))
            if self.p == "23"
            else [f"{self.p}{a:02d}{b:02d}" for a in range(1, 6) for b in range(1, 11)]
        )
        self._load()

    def _load(self) -> None:
        with self.reg.store.read() as conn, conn.begin():
            vol_ids = (
                conn.execute(
                    select(volunteers.c.id)
                    .where(volunteers.c.province == self.p, volunteers.c.status == "ACTIVE")
                    .order_by(volunteers.c.id)
                )
                .scalars()
                .all()
            )
            org_rows = conn.execute(
                select(orgs.c.id, orgs.c.status, orgs.c.doc).where(orgs.c.province == self.p).order_by(orgs.c.id)
            ).all()
            act_ids = (
                conn.execute(
                    select(activities.c.id)
                    .where(activities.c.province == self.p, activities.c.status != "CANCELLED")
                    .order_by(activities.c.id)
                )
                .scalars()
                .all()
            )
            trn_ids = (
                conn.execute(
                    select(trainings.c.id)
                    .where(trainings.c.province == self.p, trainings.c.status != "CANCELLED")
                    .order_by(trainings.c.id)
                )
                .scalars()
                .all()
            )
        self.vols = _IdPool(list(vol_ids))
        self.acts = _IdPool(list(act_ids))
        self.trainings = _IdPool(list(trn_ids))
        # an org's "holders": its parent, and for a grassroots team the community station that manages it
        # (civil affairs dissolves neither a parent nor a station that still has a live org under it)
        self.holders: dict[str, list[str]] = {}
        for r in org_rows:
            doc = orjson.loads(r.doc)
            self.holders[r.id] = [h for h in (doc.get("parentId"), doc.get("stationId")) if h]
        self.live = {r.id for r in org_rows if r.status != "DISSOLVED"}
        self.live_under: Counter[str] = Counter(h for o in self.live for h in self.holders[o])
        self.leaves = {o for o in self.live if not self.live_under[o]}

    # --- plumbing
    def _write(self, op: Callable[[UnitOfWork, Ctx], Outcome]) -> Outcome:
        c = Ctx(PORTAL, self.p, self.reg.clock())
        return self.reg.write(c, lambda u: op(u, c), key=None, fp="", request_id="portal-activity")

    def run(self) -> dict[str, Any]:
        applied: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        records: list[dict[str, Any]] = []
        weights = self.req.mix
        for _ in range(self.req.count):
            excluded: set[str] = set()
            done = False
            while True:
                cands = [a for a in ACTIONS if weights.get(a, 0) > 0 and a not in excluded]
                if not cands:
                    break
                action = self.rng.choices(cands, weights=[weights[a] for a in cands])[0]
                got = getattr(self, f"_{action}")()
                if got:
                    applied[action] += 1
                    records.extend({"action": action, **r} for r in got)
                    if self.on_applied:
                        self.on_applied(action)
                    done = True
                    break
                skipped[action] += 1
                excluded.add(action)
            if not done:  # nothing can apply, and nothing will until something else changes
                break
        return {
            "applied": {a: applied[a] for a in ACTIONS},
            "skipped": {a: skipped[a] for a in ACTIONS if skipped[a]},
            "records": records,
            "province": self.p,
            "seed": self.req.seed,
        }

    # --- generated data
    def _phone(self, old: str | None = None) -> str:
        while True:
            phone = "1" + self.rng.choice("3456789") + "".join(self.rng.choice("0123456789") for _ in range(9))
            if phone != old:
                return phone

    def _name(self) -> str:
        return self.rng.choice(_SURNAMES) + "".join(self.rng.choice(_GIVEN) for _ in range(self.rng.choice((1, 2, 2))))

    def _birth(self) -> dt.date:
        return dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randrange(365 * 58))

    def _new_person(self) -> dict[str, Any]:
        area = self.rng.choice(self.regions)
        gender = self.rng.choice("MF")
        born = self._birth()
        order = self.rng.randrange(500) * 2 + (1 if gender == "M" else 0)
        first17 = f"{area}{born:%Y%m%d}{order:03d}"
        return {
            "name": self._name(),
            "idType": "RESIDENT_ID",
            "idNumber": first17 + _check_char(first17),
            "gender": gender,
            "birthDate": born.isoformat(),
            "phone": self._phone() if self.rng.random() < 0.9 else None,
            "regionCode": area,
            "skills": self.rng.sample(_SKILLS, self.rng.choice((0, 1, 1, 2, 3))),
            "homeProvince": self.p,
        }

    def _local_person(self, person: dict[str, Any]) -> dict[str, Any]:
        """The portal registration of a person the platform has: the number as the portal stores it."""
        id_type = person["idType"]
        number = unicodedata.normalize("NFKC", person["idNumber"]).strip().upper()
        body = self._new_person()
        body.update(name=person["name"].strip(), idType=id_type)
        if id_type in EIGHTEEN_CHAR_TYPES:
            if len(number) == 15 and number.isdigit():  # legacy: the portal converts it (§4.2)
                number = number[:6] + "19" + number[6:]
                number += _check_char(number)
            if len(number) == 18:
                body["birthDate"] = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
                body["gender"] = "M" if number[16].isdigit() and int(number[16]) % 2 else "F"
        body["idNumber"] = number
        return body

    # --- the actions: each returns the records it made or changed, or None when it cannot apply
    def _self_registration(self) -> list[dict[str, Any]] | None:
        for _ in range(5):
            duplicate = bool(self.people) and self.rng.random() < self.req.duplicate_rate
            if duplicate:
                body = self._local_person(self.people.pop(self.rng.randrange(len(self.people))))
            else:
                body = self._new_person()
            out = self._write(lambda u, c, b=body: op_self_register(u, c, b))  # type: ignore[misc]  # mypy cannot type a lambda with a default
            if out.status == 201:
                self.vols.add(out.data["id"])
                entry = {"type": "volunteer", "id": out.data["id"]}
                if duplicate:
                    entry["duplicateOfLocal"] = True
                return [entry]
        return None

    def _volunteer_action(
        self, build: Callable[[dict[str, Any]], Callable[[UnitOfWork, Ctx], Outcome]], leaves_pool: bool
    ) -> list[dict[str, Any]] | None:
        for _ in range(5):
            vid = self.vols.pick(self.rng)
            if vid is None:
                return None

            def op(u: UnitOfWork, c: Ctx, vid: str = vid) -> Outcome:
                rec = _volunteer(u, vid)
                if rec.province != self.p:
                    raise Refusal(409, "INVALID_STATE", "transferred out")
                return build(rec.doc)(u, c)

            out = self._write(op)
            if out.status == 200 and is_change(out):
                if leaves_pool:
                    self.vols.remove(vid)
                return [{"type": "volunteer", "id": vid}]
            if out.status in (404, 409) and out.code in ("NOT_FOUND", "INVALID_STATE"):
                self.vols.remove(vid)
        return None

    def _contact_edit(self) -> list[dict[str, Any]] | None:
        def build(doc: dict[str, Any]) -> Callable[[UnitOfWork, Ctx], Outcome]:
            what = self.rng.random()
            body: dict[str, Any] = {}
            if what < 0.7:
                body["phone"] = self._phone(doc.get("phone"))
            if what >= 0.5:
                skills = list(doc.get("skills") or [])
                spare = [s for s in _SKILLS if s not in skills]
                if skills and (len(skills) >= 10 or not spare or self.rng.random() < 0.3):
                    skills.pop(self.rng.randrange(len(skills)))
                else:
                    skills.append(self.rng.choice(spare))
                body["skills"] = skills
            return lambda u, c: op_contact(u, c, doc["id"], body)

        return self._volunteer_action(build, leaves_pool=False)

    def _identity_correction(self) -> list[dict[str, Any]] | None:
        def build(doc: dict[str, Any]) -> Callable[[UnitOfWork, Ctx], Outcome]:
            number = doc["idNumber"]
            tied = doc["idType"] in EIGHTEEN_CHAR_TYPES and len(number) == 18 and number[:17].isdigit()
            kind = self.rng.choice(("name", "name", "name", "idNumber", "birthDate")) if tied else "name"
            body: dict[str, Any] = {}
            if kind == "name":
                body["name"] = self._corrected_name(doc["name"])
            elif kind == "idNumber":  # a wrong order code: same area, birth date and gender parity
                gender_digit = int(number[16])
                while True:
                    order = f"{self.rng.randrange(100):02d}{gender_digit}"
                    if order != number[14:17]:
                        break
                first17 = number[:14] + order
                body["idNumber"] = first17 + _check_char(first17)
            else:  # a wrong birth date: both the date and the number are corrected
                born = dt.date.fromisoformat(doc["birthDate"]) + dt.timedelta(days=self.rng.choice((-3, -2, -1, 1, 2)))
                first17 = f"{number[:6]}{born:%Y%m%d}{number[14:17]}"
                body["birthDate"] = born.isoformat()
                body["idNumber"] = first17 + _check_char(first17)
            return lambda u, c: op_identity(u, c, doc["id"], body)

        return self._volunteer_action(build, leaves_pool=False)

    def _corrected_name(self, name: str) -> str:
        chars = list(name)
        cjk = [i for i, ch in enumerate(chars) if rules.is_cjk(ord(ch))]
        if cjk:
            i = cjk[-1]
            chars[i] = self.rng.choice([g for g in _GIVEN if g != chars[i]])
            return "".join(chars)
        return name.upper() if name.upper() != name else name.title()

    def _transfer_out(self) -> list[dict[str, Any]] | None:
        def build(doc: dict[str, Any]) -> Callable[[UnitOfWork, Ctx], Outcome]:
            to = self.rng.choice([p for p in TRANSFER_TARGETS if p != self.p])
            return lambda u, c: op_transfer(u, c, doc["id"], {"homeProvince": to})

        return self._volunteer_action(build, leaves_pool=True)

    def _deregistration(self) -> list[dict[str, Any]] | None:
        def build(doc: dict[str, Any]) -> Callable[[UnitOfWork, Ctx], Outcome]:
            return lambda u, c: op_deregister(u, c, doc["id"])

        return self._volunteer_action(build, leaves_pool=True)

    def _org_dissolution(self) -> list[dict[str, Any]] | None:
        for _ in range(5):
            if not self.leaves:
                return None
            oid = self.rng.choice(sorted(self.leaves))
            out = self._write(lambda u, c, oid=oid: op_dissolve(u, c, oid, None))  # type: ignore[misc]  # mypy cannot type a lambda with a default
            if out.status == 200 and out.data["dissolvedIds"]:
                self.leaves.discard(oid)
                self.live.discard(oid)
                for holder in self.holders.get(oid, ()):
                    self.live_under[holder] -= 1
                    if self.live_under[holder] <= 0 and holder in self.live:
                        self.leaves.add(holder)
                return [{"type": "org", "id": oid}]
            self.leaves.discard(oid)  # dissolved already, or children made meanwhile
        return None

    def _service_record(self) -> list[dict[str, Any]] | None:
        for _ in range(5):
            vid, aid = self.vols.pick(self.rng), self.acts.pick(self.rng)
            if vid is None or aid is None:
                return None
            drop: list[str] = []

            def op(u: UnitOfWork, c: Ctx, vid: str = vid, aid: str = aid, drop: list[str] = drop) -> Outcome:
                act = u.get("activity", aid)
                org = u.get("org", act.doc["orgId"]) if act else None
                first = dt.date.fromisoformat(act.doc["startsAt"][:10]) if act else None
                if act is None or act.doc["status"] == "CANCELLED" or org is None or org.doc["status"] == "DISSOLVED":
                    drop.append("activity")
                    raise Refusal(409, "INVALID_STATE", "the activity cannot take records")
                assert first is not None
                last = min(dt.date.fromisoformat(act.doc["endsAt"][:10]), c.today)
                if last < first:
                    drop.append("activity")
                    raise Refusal(409, "INVALID_STATE", "the activity has not begun")
                day = first + dt.timedelta(days=self.rng.randrange((last - first).days + 1))
                quarters = self.rng.randrange(2, 17)  # 0.50 to 4.00 hours
                start = dt.datetime.combine(day, dt.time(self.rng.randrange(8, 17)), rules.CST)
                end = start + dt.timedelta(minutes=15 * quarters)
                body = {
                    "volunteerId": vid,
                    "activityId": aid,
                    "orgId": org.id,
                    "serviceDate": day.isoformat(),
                    "startsAt": start.isoformat(),
                    "endsAt": end.isoformat(),
                    "hours": rules.format_hours(25 * quarters),
                }
                return op_service_record(u, c, body)

            out = self._write(op)
            if out.status == 201:
                return [{"type": "serviceRecord", "id": out.data["id"]}]
            if drop:
                self.acts.remove(aid)
            elif out.status == 422 and "volunteerId" in _error_fields(out):
                self.vols.remove(vid)
        return None

    def _national_commendation(self) -> list[dict[str, Any]] | None:
        for _ in range(5):
            vid = self.vols.pick(self.rng)
            if vid is None:
                return None

            def op(u: UnitOfWork, c: Ctx, vid: str = vid) -> Outcome:
                rec = _volunteer(u, vid)
                if rec.province != self.p:
                    raise Refusal(409, "INVALID_STATE", "transferred out")
                title, issuer, prefix = self.rng.choice(NATIONAL_COMMENDATIONS)
                awarded = c.today - dt.timedelta(days=self.rng.randrange(90))
                body = {
                    "subjectType": "VOLUNTEER",
                    "subjectId": vid,
                    "title": f"{awarded.year}年度{title}",
                    "scheme": None,
                    "tier": None,
                    "year": None,
                    "awardedOn": awarded.isoformat(),
                    "issuer": issuer,
                    "documentName": f"关于表彰{awarded.year}年度{title}的决定",
                    "documentNumber": f"{prefix}〔{awarded.year}〕{self.rng.randrange(1, 80)}号",
                    "content": "表彰其在志愿服务中作出的突出贡献。" if self.rng.random() < 0.5 else None,
                }
                return op_national_commendation(u, c, body)

            out = self._write(op)
            if out.status == 201:
                return [{"type": "commendation", "id": out.data["id"]}]
            if out.status in (404, 409) and out.code in ("NOT_FOUND", "INVALID_STATE"):
                self.vols.remove(vid)
        return None

    def _training_record(self) -> list[dict[str, Any]] | None:
        for _ in range(5):
            tid, vid = self.trainings.pick(self.rng), self.vols.pick(self.rng)
            if tid is None or vid is None:
                return None
            drop: list[str] = []

            def op(u: UnitOfWork, c: Ctx, tid: str = tid, vid: str = vid, drop: list[str] = drop) -> Outcome:
                t = u.get("training", tid)
                if t is None or t.doc["status"] == "CANCELLED" or t.province != self.p:
                    drop.append("training")
                    raise Refusal(409, "INVALID_STATE", "the training cannot take records")
                first = dt.date.fromisoformat(local_date(t.doc["startsAt"]))
                last = min(dt.date.fromisoformat(local_date(t.doc["endsAt"])), c.today)
                if last < first:
                    drop.append("training")
                    raise Refusal(409, "INVALID_STATE", "the training has not begun")
                vol = u.get("volunteer", vid)
                if vol is None or vol.doc["status"] != "ACTIVE" or vol.province != self.p:
                    drop.append("volunteer")
                    raise Refusal(409, "INVALID_STATE", "not an ACTIVE volunteer of the province")
                day = first + dt.timedelta(days=self.rng.randrange((last - first).days + 1))
                top = int(t.doc["classHours"].replace(".", ""))  # hundredths, in steps of 0.50 (§4.6)
                hours = top if self.rng.random() < 0.8 else 50 * self.rng.randint(1, top // 50)  # most, all of it
                body = {
                    "trainingId": tid,
                    "volunteerId": vid,
                    "completedOn": day.isoformat(),
                    "classHours": format_class_hours(hours),
                    "result": "PASSED" if self.rng.random() < 0.85 else "ATTENDED",
                }
                return op_portal_training_record(u, c, body)

            out = self._write(op)
            if out.status == 201:
                return [{"type": "trainingRecord", "id": out.data["id"]}]
            if "volunteer" in drop or (out.status == 422 and "volunteerId" in _error_fields(out)):
                self.vols.remove(vid)
            elif drop or out.status == 422:  # a training that cannot take records (or one seeded malformed)
                self.trainings.remove(tid)
            # else 409 DUPLICATE_TRAINING_RECORD: the volunteer has one of this training; another pair is drawn
        return None


def _error_fields(out: Outcome) -> set[str]:
    """The fields a 422 ``VALIDATION_FAILED`` names (§7), or none."""
    return {e["field"] for e in (out.data or {}).get("errors", ())} if isinstance(out.data, dict) else set()


def run_activity(
    registry: Registry, req: ActivityRequest, *, on_applied: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Apply ``req.count`` random portal-side actions over a province's current records (§8).

    Each draw picks an action by the ``mix`` weights with ``random.Random(seed)``, then its target among the
    province's records as they are now (ACTIVE volunteers of the province; leaf orgs — not DISSOLVED, with no live
    child org and, for a community station, no live grassroots team it manages — for a dissolution; activities not
    CANCELLED, already begun, of a live org, for a service record; v1.1: an ACTIVE volunteer of the province for a
    national commendation, without a scheme, awarded in the last 90 days; a training of the province not CANCELLED and
    already begun, and an ACTIVE volunteer of the province, for a training record completed on one of its days up to
    today). New records go through the same operations as the single actions (``/_sandbox/portal/…``), under the
    registry's rules. A draw that cannot apply (no such target, or the registry refuses it a few times, e.g. a day
    already at 24.00 hours) is skipped and another action is drawn for the same slot; when none can apply the run
    stops. Every action is its own transaction, made as the portal, so every change has its own versions and feed
    items (§1, §5.3). With the same seed over the same records the run is the same.

    Self-registrations are new people (a RESIDENT_ID of an area code of the province, a real birth date,
    the gender's parity and the GB 11643-1999 check character, §4.2), or — with probability
    ``duplicate_rate`` while some are left — one of ``duplicate_of_local``, each at most once, its number
    as the portal stores it (upper case, a 15-digit number converted); a person already registered is
    replaced by a new one.

    Args:
        registry: the sandbox registry.
        req: the checked request (:func:`parse_activity_request`).
        on_applied: called with the action's name after each applied action (the sandbox counters).

    Returns:
        ``{"applied": {action: count, … every action}, "skipped": {action: draws that could not apply},
        "records": [{"action", "type", "id", "duplicateOfLocal"?}, …] in the order applied, "province",
        "seed"}``.
    """
    return _Activity(registry, req, on_applied).run()


# ------------------------------------------------------------------------------------------------- helper


