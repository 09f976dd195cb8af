"""Three-way merge of one record, field by field, against the link's base snapshot (design.md, "Conflict policy").

Pure functions on plain data: no database, no registry. The inbound poller (:mod:`regsync.flows.inbound`) and, later,
the relay's ``VERSION_MISMATCH`` handling call :func:`three_way` with

* ``base``: the link's base snapshot, the state both sides last agreed on, in canonical form
  (:func:`regsync.domain.projection.canonical`: personal values as keyed hashes, dates as ISO strings…);
* ``local``: the live local row projected to the synced fields (:func:`regsync.domain.projection.project_local`:
  Python names, clear values, references as registry ids);
* ``remote``: the registry's record projected the same way (:func:`regsync.domain.projection.project_registry`).

Both sides are made canonical with the same key before any comparison, so a personal field (ID number,
phone) is compared through its keyed hash and never needs to be kept in clear (design.md, "Personal data").

Rules, per field (design.md, "Conflict policy"):

=========================  ==========================================================  ===================
changed on                 outcome                                                     rule
=========================  ==========================================================  ===================
neither side               kept                                                        (no decision)
one side only              that side                                                   ``local_only`` /
                                                                                       ``registry_only``
both, to the same value    agreed                                                      ``agree``
both, to different values  the group's policy: ``registry``, ``local``, or ``manual``  ``policy``,
                           (held as a :class:`FieldConflict`; the other fields merge)  ``manual``
``status``                 the side that ended the record wins; an ended record is     ``ended_wins``,
                           never revived                                               ``not_revived``
=========================  ==========================================================  ===================

Service records are never merged (immutable, corrected by revoke + a new record): :func:`three_way` refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from regsync.domain.masking import mask_id_number, mask_phone
from regsync.domain.projection import ENDED, FIELDS, IMMUTABLE_RECORDS, SENSITIVE, canonical

#: A group's policy for a field changed on both sides to different values.
Policy = Literal["registry", "local", "manual"]
POLICIES: tuple[str, ...] = ("registry", "local", "manual")

#: The configurable groups of design.md's table, and their defaults.
DEFAULT_POLICIES: dict[str, Policy] = {
    "identity": "registry",  # verified by the registry (公安核验)
    "structure": "local",  # the province owns its structure
    "contact": "registry",  # usually the person's own edit on the portal
    "descriptive": "local",
    "residence": "registry",  # transfers happen in the registry
    "records": "local",  # v1.1: trainings, commendations, evaluations (the province records them)
}

#: Field → group, per kind (Python names of :data:`regsync.domain.projection.FIELDS`). ``status`` follows the ending
#: rule; ``service_record`` fields are never merged. A membership's ``org_id``/``volunteer_id`` are its key
#: (registry-api.md §4.3) and never change; they sit in ``structure`` so a mismatch is decided like one.
GROUPS: dict[str, dict[str, str]] = {
    "volunteer": {
        "name": "identity", "id_type": "identity", "id_number": "identity", "gender": "identity",
        "birth_date": "identity",
        "phone": "contact", "skills": "contact",
        "region_code": "descriptive",
        "home_province": "residence",
        "status": "status",
    },
    "org": {
        "org_type": "structure", "level": "structure", "parent_id": "structure", "station_id": "structure",
        "uscc": "structure", "region_code": "structure", "street_code": "structure",
        "contact_name": "contact", "contact_phone": "contact",
        "name": "descriptive", "service_categories": "descriptive", "established_on": "descriptive",
        "status": "status",
    },
    "membership": {
        "org_id": "structure", "volunteer_id": "structure",
        "joined_on": "descriptive", "left_on": "descriptive",
    },
    "activity": {
        **{f: "descriptive" for f in FIELDS["activity"] if f != "status"},
        "status": "status",
    },
    "service_record": {f: "service_record" for f in FIELDS["service_record"]},
    # v1.1 (design.md, "Conflict policy": every writable field, ``local`` by default); training records are never
    # merged, as service records
    "training": {**{f: "records" for f in FIELDS["training"] if f != "status"}, "status": "status"},
    "training_record": {f: "training_record" for f in FIELDS["training_record"]},
    "commendation": {**{f: "records" for f in FIELDS["commendation"] if f != "status"}, "status": "status"},
    "evaluation": {**{f: "records" for f in FIELDS["evaluation"] if f != "status"}, "status": "status"},
}

#: The policy a status disagreement that ends nothing falls back to (e.g. an org ``SUSPENDED`` here and
#: ``ACTIVE`` there, an activity ``COMPLETED`` here and ``PUBLISHED`` there): the descriptive group's.
STATUS_FALLBACK_GROUP = "descriptive"

_MISSING = object()

Winner = Literal["local", "registry", "none"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One automatic (or held) decision on one field, kept with the run (design.md: "Every automatic decision
    is kept in the run's record").

    Attributes:
        field: the Python field name.
        rule: ``local_only``, ``registry_only``, ``agree``, ``policy``, ``manual``, ``ended_wins``,
            ``not_revived``, ``read_only`` (the registry's value would win a field a mapped platform forbids
            regsync to write: held).
        winner: ``local``, ``registry`` or ``none`` (held for an operator).
        group: the field's group (``identity``, ``structure``, ``contact``, ``descriptive``, ``residence``,
            ``status``).
    """

    field: str
    rule: str
    winner: Winner
    group: str

    def as_dict(self) -> dict[str, str]:
        """Plain data for a run's summary."""
        return {"field": self.field, "rule": self.rule, "winner": self.winner, "group": self.group}


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A field changed on both sides to different values whose group's policy is ``manual``.

    Values are what may be stored and shown (design.md, "Personal data"): canonical clear values for
    ordinary fields; for personal fields (:data:`regsync.domain.projection.SENSITIVE`) the masked form, with the
    keyed hash beside it (the ``*_hash`` attributes are ``None`` for ordinary fields).

    Attributes:
        field: the Python field name.
        group: its group.
        base: the base snapshot's value (already canonical: a keyed hash for personal fields).
        local: the local value (masked for personal fields).
        remote: the registry's value (masked for personal fields).
        local_hash: keyed hash of the local value (personal fields only).
        remote_hash: keyed hash of the registry's value (personal fields only).
    """

    field: str
    group: str
    base: Any
    local: Any
    remote: Any
    local_hash: str | None = None
    remote_hash: str | None = None


@dataclass(slots=True)
class MergeResult:
    """The outcome of :func:`three_way` for one record.

    Attributes:
        merged: every synced field (Python names, clear values) as the record should now be. A conflicted field
            keeps its local value here (nothing is decided for it).
        push: fields whose merged value differs from the registry's: the relay must push them.
        apply_local: fields whose merged value differs from the local row's: to write locally (inside
            :func:`regsync.db.session.suppress_outbox`).
        conflicts: fields held for an operator (policy ``manual``).
        decisions: one per field that changed on at least one side.
        new_base: the base snapshot to store with the link now (canonical): the registry's record as read,
            except conflicted fields, which keep their old base value so that the conflict stays visible to the
            next merge and is not mistaken for a one-sided change.
    """

    merged: dict[str, Any]
    push: list[str] = field(default_factory=list)
    apply_local: list[str] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    new_base: dict[str, Any] = field(default_factory=dict)

    @property
    def conflicted(self) -> set[str]:
        """Names of the conflicted fields."""
        return {c.field for c in self.conflicts}


def group_of(kind: str, name: str) -> str:
    """The group of ``kind``'s field ``name`` (design.md's table).

    Raises:
        KeyError: not a synced field of ``kind``.
    """
    return GROUPS[kind][name]


def check_policies(policies: Mapping[str, str]) -> dict[str, Policy]:
    """The full policy map: the defaults, overridden by ``policies``.

    Raises:
        ValueError: an unknown group or policy.
    """
    out: dict[str, Policy] = dict(DEFAULT_POLICIES)
    for group, policy in policies.items():
        if group not in DEFAULT_POLICIES:
            raise ValueError(f"no merge policy group {group!r}; groups: {', '.join(DEFAULT_POLICIES)}")
        if policy not in POLICIES:
            raise ValueError(f"merge policy of {group} must be registry, local or manual, got {policy!r}")
        out[group] = policy  # type: ignore[assignment]
    return out


def shown(name: str, value: Any, hash_key: str) -> tuple[Any, str | None]:
    """What may be stored or shown of a clear value: ``(masked or canonical value, keyed hash or None)``.

    Personal fields are masked the one way (design.md, "Personal data": ID numbers keep the area code and the
    last 4, phones the first 3 and last 4) and hashed with the local key; other fields are their canonical value.
    """
    canon = canonical({name: value}, hash_key)[name]  # a keyed hash for a personal field
    if name not in SENSITIVE or value is None:
        return canon, None
    text = str(value)
    return (mask_id_number(text) if name == "id_number" else mask_phone(text)), canon


def three_way(kind: str, base: Mapping[str, Any], local: Mapping[str, Any], remote: Mapping[str, Any],
              policies: Mapping[str, str], hash_key: str, read_only: frozenset[str] = frozenset()) -> MergeResult:
    """Merge one record field by field (design.md, "Conflict policy").

    Args:
        kind: ``org``, ``volunteer``, ``membership``, ``activity``, ``training``, ``commendation`` or ``evaluation``.
        base: the link's base snapshot (canonical; personal values as keyed hashes). A field missing from it
            counts as changed on both sides.
        local: the local row's synced fields (:func:`~regsync.domain.projection.project_local`), clear values.
        remote: the registry's (:func:`~regsync.domain.projection.project_registry`), clear values.
        policies: group → ``registry`` | ``local`` | ``manual``; missing groups take :data:`DEFAULT_POLICIES`.
        hash_key: the local secret of the keyed hashes (the one the base was written with).
        read_only: fields regsync must never write locally (a mapped platform's ``write = false`` fields, issue 14):
            where the registry's value would win one and differs from the local value, the field is held as a
            conflict (rule ``read_only``) instead of being written.

    Returns:
        A :class:`MergeResult`.

    Raises:
        ValueError: a service record (never merged), an unknown kind, or a bad policy.
    """
    if kind in IMMUTABLE_RECORDS:
        raise ValueError("service and training records are never merged: immutable, corrected by revoke + a new "
                         "record (design.md, 'Conflict policy')")
    if kind not in GROUPS:
        raise ValueError(f"unknown kind {kind!r}")
    pol = check_policies(policies)
    names = FIELDS[kind]
    c_local = canonical({n: local.get(n) for n in names}, hash_key)
    c_remote = canonical({n: remote.get(n) for n in names}, hash_key)
    result = MergeResult(merged={})
    ended = ENDED.get(kind)
    for name in names:
        group = GROUPS[kind][name]
        b = base.get(name, _MISSING)
        lv, rv = c_local[name], c_remote[name]
        l_changed, r_changed = lv != b, rv != b
        winner: Winner
        if name == "status" and ended is not None and lv != rv and ended in (lv, rv):
            # the side that ended it wins; an ended record is never revived (design.md, "Conflict policy")
            winner = "registry" if rv == ended else "local"
            revived = b == ended and (lv if winner == "registry" else rv) != ended
            result.decisions.append(Decision(name, "not_revived" if revived else "ended_wins", winner, "status"))
        elif not l_changed and not r_changed:
            winner = "local"  # equal to both: nothing to decide
        elif lv == rv:
            winner = "local"
            result.decisions.append(Decision(name, "agree", "local", group))
        elif l_changed and not r_changed:
            winner = "local"
            result.decisions.append(Decision(name, "local_only", "local", group))
        elif r_changed and not l_changed:
            winner = "registry"
            result.decisions.append(Decision(name, "registry_only", "registry", group))
        else:
            policy = pol[STATUS_FALLBACK_GROUP if group == "status" else group]
            if policy == "manual":
                winner = "none"
                result.decisions.append(Decision(name, "manual", "none", group))
                l_shown, l_hash = shown(name, local.get(name), hash_key)
                r_shown, r_hash = shown(name, remote.get(name), hash_key)
                result.conflicts.append(FieldConflict(name, group, None if b is _MISSING else b,
                                                      l_shown, r_shown, l_hash, r_hash))
            else:
                winner = policy
                result.decisions.append(Decision(name, "policy", winner, group))
        if winner == "registry" and name in read_only and lv != rv:
            # the registry's value would be written into a column the mapping forbids: held for a person instead
            winner = "none"
            result.decisions[-1] = Decision(name, "read_only", "none", group)
            l_shown, l_hash = shown(name, local.get(name), hash_key)
            r_shown, r_hash = shown(name, remote.get(name), hash_key)
            result.conflicts.append(FieldConflict(name, group, None if b is _MISSING else b,
                                                  l_shown, r_shown, l_hash, r_hash))
        if winner == "registry":
            result.merged[name] = remote.get(name)
            if lv != rv:
                result.apply_local.append(name)
        else:
            result.merged[name] = local.get(name)
            if winner == "local" and lv != rv:
                result.push.append(name)
    result.new_base = dict(c_remote)
    for c in result.conflicts:
        if c.field in base:
            result.new_base[c.field] = base[c.field]
        else:
            result.new_base.pop(c.field, None)
    return result


def take_registry(kind: str, local: Mapping[str, Any] | None, remote: Mapping[str, Any], hash_key: str,
                  rule: str, read_only: frozenset[str] = frozenset()) -> MergeResult:
    """The registry's record taken as it is, for records this client may not write (design.md, "Conflict policy";
    registry-api.md §1 "ownership"): activities and service records entered on the portal or by another client,
    and volunteers who transferred out (``homeProvince`` another province's).

    Args:
        kind: any kind, service records included.
        local: the local row's synced fields (``None`` when there is no local row yet).
        remote: the registry's.
        hash_key: the local secret of the keyed hashes.
        rule: the rule recorded with each field taken (``registry_owned``, ``transferred_out``…).
        read_only: fields regsync must never write locally (issue 14): not taken into ``apply_local`` when a local
            row exists (the difference stays visible to the reconcile as a field mismatch).

    Returns:
        A :class:`MergeResult` with nothing to push: ``apply_local`` holds every field that differs locally.
    """
    names = FIELDS[kind]
    c_remote = canonical({n: remote.get(n) for n in names}, hash_key)
    c_local = canonical({n: local.get(n) for n in names}, hash_key) if local is not None else {}
    result = MergeResult(merged={n: remote.get(n) for n in names}, new_base=dict(c_remote))
    for name in names:
        if local is not None and name in read_only:
            continue
        if local is None or c_local[name] != c_remote[name]:
            result.apply_local.append(name)
            result.decisions.append(Decision(name, rule, "registry", GROUPS[kind][name]))
    return result
