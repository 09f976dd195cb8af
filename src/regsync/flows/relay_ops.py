"""Deciding each record's operation (design.md, flow 1, step 3, and its table of local changes): from the live row
and its link, one of create, update (``If-Match``), delete, join, leave, revoke, correct (a corrected service
record replaces its registry record in one step, ``:correct`` of registry-api.md §4.5, under ``clientRef``
``<id>-r<revision>``: the old record is revoked only if the new one is accepted), or nothing when the registry
already holds this state.

A key deleted and inserted again names another record: the rows older than its ``reuse`` row only end the old
registry record (from the link's base, as a delete would), the newer rows create the new record under the next
``clientRef`` revision. A person's later row is linked to its primary's record, never pushed; a record the
registry owns, or a volunteer transferred to another province, is never pushed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import orjson
import structlog

from regsync.db.history import CLOCK_MARGIN_S
from regsync.db.models import REGISTRY_OWNED, TRANSFERRED_OUT
from regsync.db.session import utcnow
from regsync.domain.projection import (
    ENDED,
    FIELDS,
    IMMUTABLE,
    IMMUTABLE_RECORDS,
    REVOCABLE,
    canonical,
    dumps,
    project_registry,
)
from regsync.flows.relay_items import OPEN_STATUS, Backoff, Item, RelayStats, new_revision, revision_of
from regsync.flows.relay_outcomes import Outcomes
from regsync.flows.relay_owner import OtherStores
from regsync.registry.errors import TransientError
from regsync.registry.port import RegistryPort
from regsync.registry.types import Operation, as_kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)


class Operations:
    """Decides the registry operation of each record of a pass.

    Args:
        client: the registry client (``find_by_client_ref``, for a reused key's earlier record).
        settings: regsync's settings (``hash_key``, ``province``).
        store_id: this store's own identifier, in every idempotency key it derives (another store holding the same
            records under the same credentials never has the registry replay this store's answers).
        stats: the pass's statistics (records sent with fields held by open conflicts).
        owner: whose registry records they are.
        backoff: seconds before a record's next attempt.
    """

    def __init__(self, client: RegistryPort, settings: Settings, store_id: str, stats: RelayStats, owner: OtherStores,
                 backoff: Backoff) -> None:
        self.client = client
        self.settings = settings
        self.store_id = store_id
        self.stats = stats
        self.owner = owner
        self.backoff = backoff

    def plan(self, it: Item, desired: dict[str, Any] | None, primaries: dict[int, int], outcomes: Outcomes) -> None:
        """Decide the operation for one record (``it.op``, ``it.desired``) from its live row and its link, or its
        outcome when nothing is to be sent.

        Args:
            it: the record's work item (its ``row`` and ``link`` read).
            desired: the row projected to the registry's fields (references as registry ids); ``None`` when the
                local row is gone, or for the rows of a reused key's old record.
            primaries: the later rows of a person with their primary row's local id.
            outcomes: where an outcome decided without a call is recorded.

        Raises:
            ValueError, TypeError, KeyError, AttributeError: the row cannot be sent as it is.
        """
        kind = it.kind
        key = self.settings.hash_key
        link = it.link
        base = json.loads(link["base"]) if link else None

        if it.reuse_ids and link is not None:
            # the key was deleted and used again for another record (design.md's mapping table): never folded
            if max(it.row_ids) < max(it.reuse_ids):
                # rows of the record the key held before: its ending only, from the link's base (a delete's)
                it.row = None
                if link["is_duplicate"] or link["how"] == REGISTRY_OWNED:
                    outcomes.unchanged(it)
                    return
                assert base is not None  # a link always carries its base
                if self._plan_ending(it, base, outcomes) and it.op is None:
                    outcomes.unchanged(it)
                return
            # the new record: created under the next clientRef revision, as if the key had no link; the old link
            # is retired (and the old record ended, if it is not) once the new one is linked (Outcomes.write)
            it.retired, it.link, link, base = link, None, None, None
        elif it.reuse_ids:
            # used again while the key's earlier create was not settled (its answer lost, or not sent yet): that
            # record is found by its clientRef, if the registry has it, and retired like a link's; the rows older
            # than the reuse row are settled with the new record's (nothing of the old one is sent)
            if max(it.row_ids) < max(it.reuse_ids):
                outcomes.unchanged(it)
                return
            if kind != "membership" and not self._find_unlinked_old(it, outcomes):
                return
        elif (link is not None and desired is not None and base is not None and not link["is_duplicate"]
              and link["how"] != REGISTRY_OWNED and _another_record(kind, desired, base, key)
              and _replaced_in_place(kind, desired, base, key)):
            # another tier of the same scheme, subject and year (registry-api.md §4.8: "a higher tier replaces a lower
            # one by revoking the lower first"): the registry's record is revoked, and the next step creates the new
            # one under the next clientRef revision (the link's record is then ended already)
            reason = "replaced by another tier of the same scheme and year"
            it.op = Operation("revoke", kind, {"reason": reason}, registry_id=link["registry_id"], tag=it)
            it.desired = dict(base, status=ENDED[kind])
            it.follow_up = True
            return
        elif (link is not None and desired is not None and base is not None and not link["is_duplicate"]
              and link["how"] != REGISTRY_OWNED and _another_record(kind, desired, base, key)):
            # another pair is another registry membership (the pair is its key, registry-api.md §4.3), and a field a
            # write never changes (a training's org, a commendation's subject or scheme, an evaluation's activity or
            # volunteer: §4.6–§4.9) names another record: the new record is made and the old one ended (its link
            # retired as a reused key's), never a write over the old id
            it.retired, it.link, link, base = link, None, None, None

        if kind == "volunteer" and it.local_id in primaries:
            outcomes.duplicate(it, primaries[it.local_id])
            return
        if link is not None and link["how"] == REGISTRY_OWNED:
            # entered on the portal or by another client (registry-api.md §1, ownership): the registry's, never
            # pushed; a platform edit of it is shown to operators rather than sent into a NOT_OWNER refusal
            if it.row is not None and desired is not None and canonical(desired, key) != base:
                outcomes.fail(it, "REGISTRY_OWNED", f"{kind} {it.local_id} is the registry's (entered on the "
                              "portal or by another client); the platform's change to it is not sent")
            else:
                outcomes.unchanged(it)
            return
        if kind == "volunteer" and ((link is not None and link["how"] == TRANSFERRED_OUT) or (
                it.row is not None and it.row.get("home_province") not in (None, self.settings.province))):
            # transferred out (registry-api.md §4.2): another province manages the person now; writes would be
            # refused with NOT_OWNER, so nothing is pushed. The link says so on every platform (a mapped platform
            # may hold the home province as a const), the row where the platform keeps a home province
            outcomes.unchanged(it)
            return

        if desired is None:  # the local row is gone
            if link is None or (link and link["is_duplicate"]):
                outcomes.unchanged(it)
                return
            assert base is not None  # a link always has its base snapshot (a JSON object)
            if self._plan_ending(it, base, outcomes) and it.op is None:
                outcomes.unchanged(it)
            return

        ended = ENDED.get(kind)

        if link is None:
            # A record ended before it was ever pushed is created, then ended on the next step, so that the
            # registry holds it as the platform does.
            if kind == "membership":
                fields_ = {"org_id": desired["org_id"], "volunteer_id": desired["volunteer_id"],
                           "joined_on": desired["joined_on"]}
                it.op = Operation("join", "membership", fields_, tag=it)
                it.desired_raw = dict(desired, left_on=None)  # made canonical only if the answer lacks the record
                return
            fields_ = dict(desired)
            if kind in IMMUTABLE_RECORDS:
                fields_.pop("status", None)
            elif ended and fields_.get("status") == ended:
                fields_["status"] = OPEN_STATUS[kind]
            elif kind == "training" and fields_.get("status") == "COMPLETED" and not _ended_for_sure(fields_):
                # COMPLETED only once endsAt has passed on the registry's clock (registry-api.md §4.6, 409
                # INVALID_STATE): created SCHEDULED, and COMPLETED by a PUT on a later step, retried after endsAt
                # (a refused create's key would replay its refusal, registry-api.md §5.1)
                fields_["status"] = OPEN_STATUS[kind]
                it.follow_up = True
            self._create(it, fields_, revision=new_revision(it))
            it.desired_raw = dict(desired, status=fields_.get("status", "ACCEPTED"))
            return

        if link["is_duplicate"]:
            outcomes.unchanged(it)
            return
        assert base is not None  # a link always has its base snapshot (a JSON object)
        compare_base = base
        if it.held and kind not in IMMUTABLE_RECORDS:
            if it.held_values is None:
                # the registry's values could not be read: the held fields cannot be sent safely
                outcomes.defer(it, "CONFLICT_HELD", "fields held by open conflicts; the registry's values "
                               "could not be read", seconds=30.0, count_attempt=False)
                return
            desired = dict(desired, **it.held_values)
            held_canon = canonical(desired, key)
            compare_base = dict(base, **{name: held_canon[name] for name in it.held})
            it.held_base = {name: base[name] for name in it.held if name in base}
            self.stats.held[kind] += 1
        desired_canon = canonical(desired, key)
        if desired_canon == compare_base:
            outcomes.unchanged(it)
            return

        rid = link["registry_id"]
        version = link["registry_version"]
        if kind == "membership":
            if desired["left_on"] is not None and base.get("left_on") is None:
                it.op = Operation("leave", "membership", {"org_id": desired["org_id"],
                                                          "volunteer_id": desired["volunteer_id"],
                                                          "left_on": desired["left_on"]}, registry_id=rid, tag=it)
            elif desired["left_on"] is None:
                it.op = Operation("join", "membership", {"org_id": desired["org_id"],
                                                         "volunteer_id": desired["volunteer_id"],
                                                         "joined_on": desired["joined_on"]}, registry_id=rid, tag=it)
            else:
                outcomes.unchanged(it)
                return
        elif kind in IMMUTABLE_RECORDS:
            if base.get("status") == "REVOKED":
                if desired["status"] == "REVOKED":
                    outcomes.unchanged(it)
                    return
                fields_ = dict(desired)
                fields_.pop("status", None)
                self._create(it, fields_, revision=link["revision"])  # the corrected record
            elif desired["status"] == "REVOKED":
                reason = (it.row or {}).get("revoke_reason") or "revoked on the platform"
                it.op = Operation("revoke", kind, {"reason": reason}, registry_id=rid, tag=it)
                desired_canon = dict(base, status="REVOKED")
            else:
                # corrected on the platform: the registry's accepted record is replaced in one step (registry-api.md
                # §4.5, ``:correct``), never revoked unless its replacement is accepted
                fields_ = dict(desired)
                fields_.pop("status", None)
                self._correct(it, fields_, rid, revision=link["revision"] + 1)
        elif kind in REVOCABLE and base.get("status") == ended and desired.get("status") == ended:
            # revoked on both sides (registry-api.md §4.8, §4.9): read-only from then on, nothing more to send (a
            # record made active again locally goes on to its PUT, refused INVALID_STATE for an operator: an ended
            # record is not revived, design.md's table of local changes)
            outcomes.unchanged(it)
            return
        elif kind in REVOCABLE and desired.get("status") == ended:
            # a commendation or an evaluation ends with ``:revoke`` (§4.8, §4.9), never a PUT setting REVOKED
            reason = (it.row or {}).get("revoke_reason") or "revoked on the platform"
            it.op = Operation("revoke", kind, {"reason": reason}, registry_id=rid, tag=it)
            desired_canon = dict(base, status=ended)
        elif (ended and desired.get("status") == ended and base.get("status") != ended
              and kind not in ("activity", "training")):
            # activities and trainings end with a PUT of status CANCELLED (§4.4, §4.6): the update below
            it.op = Operation("delete", kind, {}, registry_id=rid, if_match=version, tag=it)
        else:
            it.op = Operation("update", kind, dict(desired), registry_id=rid, if_match=version, tag=it)
        if it.held_base:
            # the base keeps the held fields' last agreed values, so the conflict stays visible to the merge
            desired_canon = dict(desired_canon, **it.held_base)
        it.desired = desired_canon

    def _find_unlinked_old(self, it: Item, outcomes: Outcomes) -> bool:
        """For a key used again before its earlier record was linked: look that record up by its ``clientRef``
        (registry-api.md §5.2) and, when the registry has it, keep it as the link to retire once the new record is
        in (:meth:`regsync.flows.relay_outcomes.Outcomes.write`: it is ended there if it is not). Returns False when
        the item was deferred (the registry could not be asked)."""
        kind = it.kind
        try:
            found = self.client.find_by_client_ref(kind, str(it.local_id))
        except TransientError as exc:
            outcomes.defer(it, exc.code or "UNAVAILABLE", f"the record this key held before could not be looked up: "
                           f"{exc}", seconds=self.backoff(it.attempts), count_attempt=False)
            return False
        if found is not None:
            ref = found.get("client_ref") or str(it.local_id)
            why = self.owner.why_not_ours(kind, ref, found)
            if why is not None:
                # another store's record under these credentials (issue 12, item 4): never ended from here; the
                # new record goes in under this clientRef and meets it as CLIENT_REF_TAKEN, for an operator
                log.error("a key used again names a registry record another store made under these credentials: "
                          "not ended", entity=kind, local_id=it.local_id, registry_id=found["id"], why=why,
                          alarm=True)
                return True
            base = canonical(project_registry(kind, found), self.settings.hash_key)
            it.retired = {"id": None, "entity": kind, "local_id": it.local_id, "registry_id": found["id"],
                          "registry_version": int(found.get("version") or 1), "base": dumps(base),
                          "is_duplicate": False, "revision": revision_of(found.get("client_ref") or ""),
                          "how": "found_by_client_ref"}
        return True

    def _plan_ending(self, it: Item, base: dict[str, Any], outcomes: Outcomes) -> bool:
        """The operation for a local row that was deleted (design.md's table of local changes): a volunteer or org
        deregistered or dissolved, an activity or a training cancelled (a PUT of status ``CANCELLED``), a membership
        left, a service or training record, a commendation or an evaluation revoked (registry-api.md §4.5–§4.9).

        Returns:
            False when the record was deferred instead (a deleted training's registry record could not be read).
        """
        link = it.link
        assert link is not None
        rid, version = link["registry_id"], link["registry_version"]
        kind = it.kind
        if kind in ("volunteer", "org"):
            if base.get("status") != ENDED[kind]:
                it.op = Operation("delete", kind, {}, registry_id=rid, if_match=version, tag=it)
                it.desired = dict(base, status=ENDED[kind])
        elif kind == "activity":
            if base.get("status") != "CANCELLED":
                fields_ = {k: base.get(k) for k in FIELDS["activity"]}
                fields_["status"] = "CANCELLED"
                for name in ("starts_at", "ends_at"):  # the base holds canonical text; the wire takes datetimes
                    value = fields_.get(name)
                    if isinstance(value, str):
                        fields_[name] = dt.datetime.fromisoformat(value)
                it.op = Operation("update", kind, fields_, registry_id=rid, if_match=version, tag=it)
                it.desired = dict(base, status="CANCELLED")
        elif kind == "membership":
            if base.get("left_on") is None:
                today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
                it.op = Operation("leave", kind, {"org_id": base["org_id"], "volunteer_id": base["volunteer_id"],
                                                  "left_on": today}, registry_id=rid, tag=it)
                it.desired = dict(base, left_on=today.isoformat())
        elif kind == "training":
            if base.get("status") != "CANCELLED":
                # the base keeps the contact phone as a keyed hash: the PUT carries the registry's current record
                try:
                    current = self.client.lookup(as_kind(kind), [rid])
                except TransientError as exc:
                    outcomes.defer(it, exc.code or "UNAVAILABLE", f"the registry's training {rid} could not be "
                                   f"read to cancel it: {exc}", seconds=self.backoff(it.attempts), count_attempt=False)
                    return False
                if not current:
                    return True  # gone from the registry: nothing to end
                fields_ = project_registry(kind, current[0])
                fields_["status"] = "CANCELLED"
                it.op = Operation("update", kind, fields_, registry_id=rid,
                                  if_match=int(current[0].get("version") or version), tag=it)
                it.desired = dict(canonical(fields_, self.settings.hash_key))
        elif kind in REVOCABLE:
            if base.get("status") != "REVOKED":
                it.op = Operation("revoke", kind, {"reason": "deleted on the platform"}, registry_id=rid, tag=it)
                it.desired = dict(base, status="REVOKED")
        return True

    def _create(self, it: Item, fields_: dict[str, Any], revision: int) -> None:
        client_ref = str(it.local_id) if revision == 0 else f"{it.local_id}-r{revision}"
        # The key is kept across retries of the same write (same content, same outbox rows, no verdict since),
        # so a lost answer is replayed, never created twice; new content, a new outbox row (a local change) or a
        # refusal since the last attempt (an operator's retry) makes a new write with a new key
        # (registry-api.md §5.1: the registry keeps its refusals, so a retry after one needs a new key).
        body = orjson.dumps(fields_, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        generation = f"{max(it.row_ids)}:{it.last_verdict}"
        # this store's id first: another store's create of the same content is another write (issue 12, item 4)
        digest = hashlib.sha256(f"{self.store_id}:{it.kind}:{client_ref}:{generation}:".encode()
                                + body).hexdigest()[:40]
        it.op = Operation("create", it.kind, fields_, idempotency_key=f"rs-{digest}", client_ref=client_ref, tag=it)

    def _correct(self, it: Item, fields_: dict[str, Any], registry_id: str, revision: int) -> None:
        """Plan the correction of a service record in one step (registry-api.md §4.5, ``:correct``; design.md's
        table of local changes): the registry revokes ``registry_id`` and accepts the corrected record under
        ``clientRef`` ``<local id>-r<revision>``, or changes nothing.

        Args:
            it: the record's work item.
            fields_: the corrected record's writable fields (Python names, references as registry ids).
            registry_id: the registry's ACCEPTED record that the link points at.
            revision: the correction number of the new record's ``clientRef`` (the link's revision + 1).

        The idempotency key is kept like a create's (:meth:`_create`), and names the record corrected too.
        """
        client_ref = f"{it.local_id}-r{revision}"
        body = orjson.dumps(fields_, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        generation = f"{max(it.row_ids)}:{it.last_verdict}"
        digest = hashlib.sha256(f"{self.store_id}:{it.kind}:{registry_id}:{client_ref}:{generation}:".encode()
                                + body).hexdigest()[:40]
        it.op = Operation("correct", it.kind, fields_, registry_id=registry_id, idempotency_key=f"rs-{digest}",
                          client_ref=client_ref, tag=it)


__all__ = ["Operations"]


def _another_record(kind: str, desired: dict[str, Any], base: dict[str, Any], hash_key: str) -> bool:
    """Whether the local state ``desired`` of a linked record names another registry record than the link's
    (``base``): a membership of another pair (registry-api.md §4.3), or a change of a field no write changes
    (:data:`regsync.domain.projection.IMMUTABLE`: §4.6, §4.8, §4.9) of a record not revoked locally."""
    if kind == "membership":
        return (desired["org_id"], desired["volunteer_id"]) != (base.get("org_id"), base.get("volunteer_id"))
    names = IMMUTABLE.get(kind)
    if not names or (kind in REVOCABLE and desired.get("status") == ENDED[kind]):
        return False  # a record revoked locally is only revoked, whatever else changed
    canon = canonical({n: desired.get(n) for n in names}, hash_key)
    return any(canon[n] != base.get(n) for n in names)


def _replaced_in_place(kind: str, desired: dict[str, Any], base: dict[str, Any], hash_key: str) -> bool:
    """Whether the linked scheme commendation ``base``, still ACTIVE in the registry, is to be revoked before the
    local state ``desired`` (another tier of the same subject, scheme and year) can be created (registry-api.md
    §4.8: one ACTIVE commendation per subject, scheme and year)."""
    if kind != "commendation" or not base.get("scheme") or base.get("status") == ENDED[kind]:
        return False
    names = ("volunteer_id", "org_id", "scheme", "year")
    canon = canonical({n: desired.get(n) for n in names}, hash_key)
    return all(canon[n] == base.get(n) for n in names)


def _ended_for_sure(fields_: dict[str, Any]) -> bool:
    """Whether a training's ``ends_at`` (naive UTC) has passed on this clock by more than the registry's clock may
    be off (registry-api.md §1: ±120 s; :data:`regsync.db.history.CLOCK_MARGIN_S`)."""
    ends = fields_.get("ends_at")
    return isinstance(ends, dt.datetime) and ends + dt.timedelta(seconds=CLOCK_MARGIN_S) <= utcnow()
