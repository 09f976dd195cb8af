"""Planning (design.md, flow 1, steps 2 and 3): the claimed rows of a window are folded into one item per record
and grouped by priority then kind, in order (what a record refers to first, endings the other way:
:data:`regsync.db.triggers.PRIORITY`); each group is read and planned one batch's worth at a time, just before
its operations are needed, and handed on as batches to send (:class:`Send`), then its end (:class:`End`).

What must wait is decided here: a record whose reference is not linked yet (``PARENT_PENDING``, or blocked when
that reference was refused or discarded), the second local membership of a pair while the first is joined
(``PRIMARY_PENDING``). A create whose earlier attempt had no known outcome is looked up by its ``clientRef``
first, and every create is noted in this store's history before its call leaves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from regsync.db import links, query
from regsync.db.session import utcnow
from regsync.domain.normalize import NormalizationError
from regsync.domain.projection import REFERENCES, canonical, check_required_text, project_local, project_registry
from regsync.domain.unmapped import UnmappedValue
from regsync.flows.relay_items import LOCAL_WAIT_CODES, Item, revision_of
from regsync.flows.relay_load import Loader
from regsync.flows.relay_ops import Operations
from regsync.flows.relay_outcomes import Outcomes
from regsync.flows.relay_owner import OtherStores
from regsync.flows.relay_waits import Waits
from regsync.registry.errors import TransientError
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings


@dataclass
class Group:
    """The records of one kind and one priority within a claimed window; its outcomes are written per batch,
    and what waits for the calls (a person's later rows) at its end."""

    kind: str
    priority: int
    items: list[Item]
    outcomes: Outcomes
    pairs: list[tuple[Any, Any]] = field(default_factory=list)  # membership pairs it sends first (open pairs)


@dataclass
class Send:
    """A batch of a group's records to send in one ``POST /batch``."""

    group: Group
    items: list[Item]


@dataclass
class End:
    """A group's end: written once every batch of it (and of the groups before it) is handled."""

    group: Group


class Planner:
    """Folds claimed rows into groups and plans their batches, for one pass.

    Args:
        engine: the local store (``create_sent``).
        client: the registry client (``find_by_client_ref``).
        settings: regsync's settings (``relay.batch_size``, ``hash_key``).
        loader: reads the records' rows, links and references.
        operations: decides each record's operation.
        owner: whose registry records they are.
        idempotency_window_s: how long the registry keeps a key's answer, less a margin (the relay's
            :attr:`~regsync.flows.outbound.Relay.idempotency_window_s`).
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, loader: Loader, operations: Operations,
                 owner: OtherStores, idempotency_window_s: float) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.loader = loader
        self.operations = operations
        self.owner = owner
        self.idempotency_window_s = idempotency_window_s
        #: Membership pairs being joined by the groups not finished yet (in flight).
        self.open_pairs: set[tuple[Any, Any]] = set()
        #: What the registry checks against its own records waits for them (registry-api.md §4.8, §4.9).
        self.waits = Waits(engine)

    def groups(self, claimed: list[dict[str, Any]]) -> list[Group]:
        """Fold claimed rows into one :class:`~regsync.flows.relay_items.Item` per record, grouped by priority then
        kind, in order."""
        by_priority: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in claimed:
            by_priority[r["priority"]].append(r)
        groups: list[Group] = []
        for priority in sorted(by_priority):
            by_record: dict[tuple[str, int], Item] = {}
            for r in by_priority[priority]:
                key = (r["entity"], r["local_id"])
                item = by_record.get(key)
                if item is None:
                    item = by_record[key] = Item(r["entity"], r["local_id"], [r["id"]], r["attempts"])
                else:
                    item.row_ids.append(r["id"])
                    item.attempts = max(item.attempts, r["attempts"])
                if r.get("last_code") and r["last_code"] not in LOCAL_WAIT_CODES:
                    item.uncertain = True
                if r.get("done_at") is not None:
                    item.last_verdict = max(item.last_verdict, str(r["done_at"]))
                created = r.get("created_at")
                if isinstance(created, str):
                    created = dt.datetime.fromisoformat(created)
                if created is not None and (item.first_queued is None or created < item.first_queued):
                    item.first_queued = created
            by_kind: dict[str, list[Item]] = defaultdict(list)
            for item in by_record.values():
                by_kind[item.kind].append(item)
            for kind, items in by_kind.items():
                groups.append(Group(kind, priority, items, Outcomes(kind, self.settings.hash_key)))
        return groups

    def process(self, group: Group) -> Iterator[Send | End]:
        """Plan a group and yield its batches of up to ``batch_size`` operations, then its :class:`End`.

        The group is read from the store and planned one chunk of ``batch_size`` records at a time, just before
        its operations are needed, so that reading and planning overlap the registry's work on the batches in
        flight.
        """
        outcomes = group.outcomes
        size = self.settings.relay.batch_size
        batch: list[Item] = []
        self.loader.load_group(group.kind, group.items)
        for chunk in query.chunks(sorted(group.items, key=lambda it: it.local_id), size):
            planned, parent_state, primaries = self._prepare(group, list(chunk))
            for it, plan in planned:
                if plan.get("pair_waits"):
                    outcomes.defer(it, "PRIMARY_PENDING", "another local membership of the same person in the same "
                                   "org is sent first", seconds=1.0, count_attempt=False)
                elif "wait" in plan:
                    wait = plan["wait"]
                    if wait.seconds is None:
                        outcomes.waits(it, wait.code, wait.message)
                    else:
                        outcomes.defer(it, wait.code, wait.message, seconds=wait.seconds, count_attempt=False)
                elif "lacking" in plan:
                    failed = [p for p in plan["lacking"] if parent_state.get(p) in ("failed", "discarded")]
                    if failed:
                        outcomes.blocked(it, failed[0], discarded=parent_state[failed[0]] == "discarded")
                    else:
                        outcomes.defer(it, "PARENT_PENDING", "a record it refers to is not in the registry yet",
                                       seconds=2.0, count_attempt=False)
                else:
                    try:
                        self.operations.plan(it, plan["desired"], primaries, outcomes)
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        it.op = None
                        outcomes.fail(it, "LOCAL_DATA_INVALID", f"the local row cannot be sent: {exc}")
                    if it.op is not None:
                        batch.append(it)
                if len(batch) >= size:
                    yield from self._ready(group, batch)
                    batch = []
        if batch:
            yield from self._ready(group, batch)
        # The later rows of a person wait until their primary is linked, which may happen in this very pass:
        # they are written after the group's calls (and those of the groups before it).
        yield End(group)

    def close_pairs(self, pairs: list[tuple[Any, Any]]) -> None:
        """The membership pairs of a finished group are joined (or not): their second rows may go."""
        self.open_pairs.difference_update(pairs)

    def _prepare(self, group: Group, items: list[Item]
                 ) -> tuple[list[tuple[Item, dict[str, Any]]], dict[tuple[str, int], str], dict[int, int]]:
        """Read one chunk of a group and project its rows.

        Returns:
            ``(planned, parent_state, primaries)``: per item a plan (``{"desired": fields}``, ``{"lacking":
            [(kind, local_id)]}`` for references not linked yet, or with ``"pair_waits"``), the state of the
            referenced records that are not linked (:meth:`~regsync.flows.relay_load.Loader.parent_states`), and
            the later rows of a person with their primary.
        """
        kind, outcomes = group.kind, group.outcomes
        refs, primaries = self.loader.load_chunk(kind, items)
        missing: set[tuple[str, int]] = set()
        planned: list[tuple[Item, dict[str, Any]]] = []
        for it in items:
            if it.reuse_ids and max(it.row_ids) < max(it.reuse_ids):
                planned.append((it, {"desired": None}))  # the key's old record: ended from its link (plan)
                continue
            if it.unreadable is not None:
                outcomes.fail(it, "LOCAL_DATA_INVALID", it.unreadable)
                continue
            try:
                desired = project_local(kind, it.row, refs) if it.row is not None else None
                if desired is not None and it.row is not None:
                    check_required_text(kind, it.row, desired)  # empty once cleaned: fails here, never sent
            except (NormalizationError, UnmappedValue) as exc:
                outcomes.fail(it, exc.code, f"{kind} {it.local_id}: {exc}")
                continue
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                outcomes.fail(it, "LOCAL_DATA_INVALID", f"{kind} {it.local_id}: {exc}")
                continue
            if desired is not None and it.row is not None:  # desired is made from the row
                lacking = [(REFERENCES[kind][c], it.row[c]) for c in REFERENCES[kind]
                           if it.row.get(c) is not None and desired.get(c) is None]
                if lacking:
                    missing.update(lacking)
                    planned.append((it, {"lacking": lacking}))
                    continue
            planned.append((it, {"desired": desired}))
        waits = self.waits.check(kind, [(it, plan["desired"]) for it, plan in planned if plan.get("desired")])
        for it, plan in planned:
            if it.local_id in waits:
                plan["wait"] = waits[it.local_id]
        self.loader.fetch_held_values(kind, [it for it, plan in planned
                                             if it.held and plan.get("desired") is not None])
        if kind == "membership":
            # Two local memberships of one person in one org (the person registered twice on the platform) are
            # one registry membership (the pair is its key, registry-api.md §4.3; joining twice answers the
            # existing one). With batches in flight at once, the second could reach the registry first and set
            # its date: only the first of a pair is sent while its group is open (in this group or in a group
            # still in flight); the others follow once it is linked.
            for it, plan in planned:
                d = plan.get("desired")
                if d is None or it.link is not None:
                    continue
                pair = (d.get("org_id"), d.get("volunteer_id"))
                if pair in self.open_pairs:
                    plan["pair_waits"] = True
                else:
                    self.open_pairs.add(pair)
                    group.pairs.append(pair)
        parent_state = self.loader.parent_states(missing) if missing else {}
        return planned, parent_state, primaries

    def _ready(self, group: Group, batch: list[Item]) -> Iterator[Send]:
        """A batch planned: lost creates looked up, the others' creates noted; what is left to send, if any."""
        self._find_created(group.kind, batch, group.outcomes)
        ready = [x for x in batch if x.op is not None]
        if ready:
            self._note_creates(group.kind, ready)
            yield Send(group, ready)

    def _note_creates(self, kind: str, items: list[Item]) -> None:
        """Record, durably and before the call leaves, that this store sends a create under each ``clientRef`` of
        ``items`` (issue 12, item 4: only this store's history makes a record found under one of its
        ``clientRef`` its own), and tell each item whether an earlier attempt was sent (``sent_here``,
        ``first_sent_at``). One read and one insert per batch, committed with the default synchronous commit (a
        crash that lost the row would make this store's own record look another store's)."""
        # every operation that makes a record under a clientRef (a create; a one-step correction's new record)
        creates = [(it, it.op.client_ref) for it in items if it.op is not None and it.op.client_ref]
        if not creates:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            known = links.sent_creates(conn, kind, [ref for _, ref in creates])
            fresh: dict[str, dict[str, Any]] = {}
            for it, ref in creates:
                it.sent_here, it.first_sent_at = ref in known, known.get(ref)
                if ref not in known:
                    fresh[ref] = {"entity": kind, "client_ref": ref, "local_id": it.local_id, "first_sent_at": now,
                                  "how": "sent"}
            if fresh:
                links.note_creates(conn, list(fresh.values()))

    def _find_created(self, kind: str, items: list[Item], outcomes: Outcomes) -> None:
        """Before creating again a record whose earlier attempt had no known outcome, look it up by its
        ``clientRef`` (registry-api.md §5.2: "finds what this client created when an answer was lost"): if the
        registry has it, link it instead of creating it. Within ``idempotency_window_s`` of the first attempt
        the create's own idempotency key replays the lost answer, so only older attempts are looked up (one
        ``GET`` each); ``DUPLICATE_CLIENT_REF`` still guards the rest."""
        horizon = utcnow() - dt.timedelta(seconds=self.idempotency_window_s)
        wanted = [it for it in items if it.uncertain and it.op is not None and it.op.op in ("create", "correct")
                  and it.op.client_ref and not (it.first_queued is not None and it.first_queued > horizon)]
        if not wanted:
            return
        with self.engine.connect() as conn:
            known = links.sent_creates(conn, kind, [it.op.client_ref for it in wanted])  # type: ignore[union-attr,misc]  # wanted: op and client_ref set
        for it in wanted:
            assert it.op is not None and it.op.client_ref is not None
            it.sent_here, it.first_sent_at = it.op.client_ref in known, known.get(it.op.client_ref)
            try:
                found = self.client.find_by_client_ref(as_kind(kind), it.op.client_ref)
            except TransientError:
                continue  # the create's own key and clientRef still keep it single
            if found is not None and it.op.op == "correct":
                if found.get("corrects_id") == it.op.registry_id:  # this correction went through: link it
                    base = canonical(project_registry(kind, found), self.settings.hash_key)
                    revision = revision_of(it.op.client_ref)
                    it.op = None
                    outcomes.link_existing(it, found["id"], int(found.get("version") or 1), base,
                                           how="found_by_client_ref", revision=revision)
                continue  # else sent: the registry's answer says what holds that clientRef
            if found is not None:
                base = canonical(project_registry(kind, found), self.settings.hash_key)
                refused = self.owner.refuse_another_record(it, found, base, outcomes)
                it.op = None
                if not refused:
                    outcomes.link_existing(it, found["id"], int(found.get("version") or 1), base,
                                           how="found_by_client_ref")


__all__ = ["End", "Group", "Planner", "Send"]
