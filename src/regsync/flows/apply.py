"""The one place that writes the registry's records into local records (design.md, "The three flows", 2).

The inbound poller (:mod:`regsync.flows.inbound`) reads the change feed and hands each page's records here, kind
by kind; the relay merges a ``VERSION_MISMATCH`` here, the reconcile repairs and pulls here, adopt links here, and
an operator's resolution of a conflict writes here. Every local write is made inside
:func:`~regsync.db.session.suppress_outbox` (the caller holds it: no echo loop), and writes are buffered and sent
by :meth:`LocalWriter.flush` before the caller's transaction ends:

* a **linked** record: three-way merge against the link's base (:func:`regsync.domain.merge.three_way`, policies
  from ``[merge]``): registry-winning fields are written to the local row; local-winning fields that differ
  from the registry get an outbox row (queued explicitly, the triggers being suppressed) so the relay pushes
  them; ``manual`` fields become rows of ``conflict``; the link takes the registry's version and the new base;
* a **portal registration of a person the platform has** (same ``idType`` and normalized ``idNumber``, a
  local row not linked yet): the local row is linked (``how='adopted'``) and merged with no common base, so
  the groups' policies decide each differing field — never a second local row;
* a **registry record in the province the platform lacks**: a local row is created and linked
  (``how='from_registry'``); what it refers to is created first when missing;
* a record **this client may not write** (registry-api.md §1 "ownership": activities and service records
  of the portal or of another client; volunteers of another province): taken as the registry holds it and
  linked ``how='registry_owned'`` (:data:`REGISTRY_OWNED`), never pushed;
* a **transfer out** (a linked volunteer whose ``homeProvince`` is now another province's): the link records it
  (``how`` :data:`~regsync.db.models.TRANSFERRED_OUT`, on every platform: a mapped platform may keep no home province
  of its own, its mapping holding it as a ``const``), the registry's record is taken as it is (``home_province``
  included, where the platform has a column for it) and nothing is pushed again; a person who comes back is synced
  again (``how`` :data:`~regsync.db.models.TRANSFERRED_BACK`);
* endings (deregistrations, dissolutions, cancellations) follow the status rule of the merge: the side
  that ended it wins and an ended record is never revived.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db import merges, outbox
from regsync.db.hashkey import check_hash_key
from regsync.db.history import create_sent, not_sent_here, reused_keys
from regsync.db.models import REGISTRY_OWNED, TRANSFERRED_BACK, TRANSFERRED_OUT
from regsync.db.platform import read, write
from regsync.db.platform.mapped import MappedPlatform, mapped_platform, platform_insertable, platform_read_only
from regsync.db.query import CHUNK, chunks
from regsync.db.session import utcnow
from regsync.db.triggers import row_priority
from regsync.domain.merge import MergeResult, take_registry, three_way
from regsync.domain.normalize import normalize_uscc, try_normalize_id_number
from regsync.domain.projection import (
    ENDED,
    FIELDS,
    IMMUTABLE_RECORDS,
    REFERENCES,
    REVOCABLE,
    canonical,
    dumps,
    project_local,
    project_registry,
)
from regsync.flows.relay_items import AWAITS_COMPLETION, AWAITS_SERVICE_RECORD
from regsync.flows.relay_waits import NOT_EARNED
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Decisions kept in detail in a run's summary (all are counted).
DECISIONS_KEPT = 2_000
#: Depth of references created on the way (a grassroots team's station, its unit's detachment…).
MAX_REFERENCE_DEPTH = 10

_LIST_COLUMNS = {"skills", "service_categories"}


class Unresolved(Exception):
    """A record refers to one that cannot be had locally (not in the registry, or too deep)."""


@dataclass
class InboundStats:
    """What a run did. Counters are by kind unless named otherwise.

    Attributes:
        pages: feed pages read.
        changes: feed items read (those of types this client does not know included: see ``unknown_types``).
        pulled: feed items read, by kind.
        repeats: items dropped as repeats (seen in this run, or several changes of one record in one page).
        echoes: items dropped as echoes of this client's own writes.
        stale: items (or bodies) not newer than the link's version.
        merged: linked records merged that changed something (either side, or a conflict).
        unchanged: linked records whose newer version changed no synced field (e.g. ``totalHours``).
        created: local rows created for registry records the platform lacked.
        adopted: registry records linked to an unlinked local row of the same person (or USCC, or pair).
        registry_owned: records taken as the registry's (portal or other clients' activities and service
            records, other provinces' volunteers), created or updated.
        transferred_out: volunteers marked as transferred to another province.
        ended: records ended locally (deregistered, dissolved, cancelled, revoked, left).
        pushes_queued: outbox rows queued for local-winning fields.
        conflicts: fields held for an operator (new or updated open conflicts).
        skipped: items not applied, by reason (``not_found``, ``out_of_province``, ``own_unlinked``,
            ``other_store`` (made under this client's credentials by another store), ``unresolved_reference``,
            ``local_deleted``).
        decisions: counts by ``kind.field:rule:winner``.
        decision_log: the first :data:`DECISIONS_KEPT` decisions in detail (``kind``, ``local_id``,
            ``registry_id``, ``field``, ``rule``, ``winner``).
        unknown_types: feed entries and lookup results skipped because their record type is one this client does
            not know (v1.1's ``commendation``, ``training``…), by wire type (registry-api.md §1: skipped and
            counted, the cursor moves past them).
        unknown_fields: fields this client does not know, ignored, by ``"type.field"`` → records that carried
            them (registry-api.md §1).
        reconcile_due: a full reconcile is due (``CURSOR_EXPIRED``, or no cursor after links existed), found by
            this run or an earlier one.
        reconcile_found: this run found the feed cut short itself (it met ``CURSOR_EXPIRED``, or found no cursor
            although records were linked): its run is ``partial``. A reconcile due from an earlier run is reported
            (``reconcile_due``) but is no shortfall of this run's own work (issue 12, item 10).
        reconcile_reason: why.
        cursor: the cursor saved last.
        run_id: the ``run`` row of this run.
    """

    pages: int = 0
    changes: int = 0
    pulled: Counter[str] = field(default_factory=Counter)
    repeats: int = 0
    echoes: int = 0
    stale: int = 0
    merged: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    adopted: Counter[str] = field(default_factory=Counter)
    registry_owned: Counter[str] = field(default_factory=Counter)
    transferred_out: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    pushes_queued: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    decision_log: list[dict[str, Any]] = field(default_factory=list)
    unknown_types: Counter[str] = field(default_factory=Counter)
    unknown_fields: Counter[str] = field(default_factory=Counter)
    reconcile_due: bool = False
    reconcile_reason: str | None = None
    reconcile_found: bool = False
    cursor: str | None = None
    run_id: int | None = None

    @property
    def applied(self) -> int:
        """Records that changed something locally or queued something (merges, creations, adoptions…)."""
        return (sum(self.merged.values()) + sum(self.created.values()) + sum(self.adopted.values())
                + sum(self.registry_owned.values()))

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON output and the run's summary."""
        out: dict[str, Any] = {}
        for name in ("pages", "changes", "repeats", "echoes", "stale", "transferred_out", "reconcile_due",
                     "reconcile_reason", "cursor", "run_id"):
            out[name] = getattr(self, name)
        for name in ("pulled", "merged", "unchanged", "created", "adopted", "registry_owned", "ended", "pushes_queued",
                     "conflicts", "skipped", "decisions", "unknown_types", "unknown_fields"):
            out[name] = dict(sorted(getattr(self, name).items()))
        out["applied"] = self.applied
        out["decision_log"] = list(self.decision_log)
        return out


class Ownership:
    """Which registry records this client may write, and which it made (registry-api.md §1 "ownership"; issue 12,
    item 4: a record made under this client's credentials may be another store's).

    Args:
        settings: regsync's settings (``province``, ``registry.client_id``).
        client: the registry client (its own settings' ``client_id`` when ``settings`` have none; its
            ``clock_offset_s`` when a record's age is compared with this store's first send).

    Attributes:
        own_client_id: this client's id (``""`` when unknown: then no record is this client's).
    """

    def __init__(self, settings: Settings, client: RegistryPort) -> None:
        self.settings = settings
        self.client = client
        self.own_client_id = settings.registry.client_id or getattr(getattr(client, "settings", None),
                                                                    "client_id", "")

    def writable(self, kind: str, rec: dict[str, Any]) -> bool:
        """Whether this client may write ``rec`` (registry-api.md §1 "ownership")."""
        if kind == "volunteer":
            return rec.get("home_province") == self.settings.province
        if kind == "org":
            return (rec.get("region_code") or "")[:2] == self.settings.province
        if kind == "membership":
            return True  # its org's province decides; the org is ours when it is linked as ours
        return bool(self.own_client_id) and rec.get("owner_client_id") == self.own_client_id

    def made_by_this_client(self, kind: str, rec: dict[str, Any]) -> bool:
        """Whether ``rec`` was created under this client's credentials (its ``ownerClientId`` is this client's
        id and it has a ``clientRef``, registry-api.md §1) — by this store or by another store under the same
        credentials (:meth:`sent_here` tells which)."""
        return (kind != "membership" and bool(self.own_client_id) and bool(rec.get("client_ref"))
                and rec.get("owner_client_id") == self.own_client_id)

    def sent_here(self, conn: Connection, kind: str, rec: dict[str, Any]) -> bool:
        """Whether ``rec`` is this store's own create by its history of creates (:class:`~regsync.db.models.
        CreateSent`, :func:`regsync.db.history.not_sent_here`: sent under ``rec``'s ``clientRef``, and not made
        before that first send)."""
        sent, at = create_sent(conn, kind, rec.get("client_ref"))
        return not_sent_here(sent, at, rec, self.client) is None


class LocalWriter:
    """Writes the registry's records into local records (module docstring). One instance per run; not
    thread-safe. Writes are buffered until :meth:`flush`, which the caller runs before its transaction ends.

    Args:
        engine: the local store (its hash key is checked; its platform read, :attr:`platform`).
        client: a :class:`regsync.registry.client.RegistryClient` (``lookup``, to fetch what a record refers to;
            ``clock_offset_s``, to tell this store's creates).
        settings: regsync's settings (``province``, ``hash_key``, ``merge``, ``registry.client_id``).

    Attributes:
        stats: what the writes did (:class:`InboundStats`; the poller's run counts its feed reading there too).
        policies: the merge policy of each field group (``[merge]``).
        ownership: which records this client may write, and which it made (:class:`Ownership`).
        own_client_id: this client's id (registry-api.md §1 "ownership").
        note_agreements: count fields equal on both sides (rule ``agree``) as decisions. Adopt turns it off: with
            no common base every equal field "agrees", and its summary is about the fields that differed.
        platform: the store's mapped platform (:func:`regsync.db.platform.mapped.mapped_platform`; ``None``: the
            reference tables), read once when the writer is made and again by :meth:`refresh_platform`, never per
            record; a run that keeps its writer from an earlier one refreshes it at its start (a ``regsync platform
            install`` in between is then the next run's mapping).

    Raises:
        regsync.db.hashkey.HashKeyMismatch: ``settings.hash_key`` is not the store's hash key.
    """

    note_agreements: bool = True

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings) -> None:
        check_hash_key(engine, settings.hash_key)  # the links' snapshots are hashed with the store's key
        self.engine = engine
        self.platform: MappedPlatform | None = None
        self.refresh_platform()
        self.client = client
        self.settings = settings
        self.ownership = Ownership(settings, client)
        self.own_client_id = self.ownership.own_client_id
        self.policies = settings.merge.policies()
        self.stats = InboundStats()
        self._pending = _PendingWrites()
        self._open: dict[int, dict[str, int]] | None = None
        self._candidates: dict[tuple[str, str], list[tuple[int, str, str]]] | None = None
        self._adopted_now: set[int] = set()

    def refresh_platform(self, conn: Connection | None = None) -> None:
        """Read the store's platform again (one read of ``store_meta``, on ``conn`` or a connection of its own)."""
        if conn is not None:
            self.platform = mapped_platform(conn)
            return
        with self.engine.connect() as own:
            self.platform = mapped_platform(own)

    def read_only(self, kind: str) -> frozenset[str]:
        """The synced fields of ``kind`` regsync must never write on the store's platform
        (:func:`regsync.db.platform.mapped.platform_read_only`)."""
        return platform_read_only(self.platform, kind)

    def insertable(self, kind: str) -> bool:
        """Whether regsync may insert rows of ``kind`` on the store's platform
        (:func:`regsync.db.platform.mapped.platform_insertable`)."""
        return platform_insertable(self.platform, kind)

    # ------------------------------------------------------------------------------------------ records
    def apply_records(self, conn: Connection, kind: str, recs: list[dict[str, Any]]) -> None:
        """Apply registry records of one kind (a feed page's, or those a relay met moved), then :meth:`flush`.

        Reads are made per call (links, rows, references, open conflicts, candidates for adoption) and writes are
        buffered and sent as ``executemany`` per statement shape, so that the cost per record is Python work, not
        round trips. A record that refers to one that cannot be had locally is skipped and counted
        (``skipped["unresolved_reference"]``). Conflicts are recorded under ``stats.run_id``.

        Args:
            conn: a connection in a transaction that holds :func:`~regsync.db.session.suppress_outbox`.
            kind: the records' kind.
            recs: decoded registry records (:mod:`regsync.registry.wire`), references first for orgs.
        """
        links = merges.links_by_registry_id(conn, kind, [r["id"] for r in recs], lock=True)
        linked = [(r, merges.primary_link(links.get(r["id"]))) for r in recs]
        rows = read.load_records(conn, kind, [lk["local_id"] for _, lk in linked if lk is not None])
        for lid in reused_keys(conn, kind, list(rows)):
            # the key was deleted and used again for another record (design.md's mapping table): its link is the
            # old record's, whose local row is gone; nothing of it is merged into the new row
            rows.pop(lid, None)
        refs = merges.reference_ids(conn, kind, rows.values())
        self._open = merges.open_conflicts(conn, kind, rows.keys())
        if kind == "volunteer":
            self._candidates = self._volunteer_candidates(conn, [r for r, lk in linked if lk is None])
        try:
            for rec, link in linked:
                try:
                    if link is None:
                        self.apply_new(conn, kind, rec)
                    else:
                        self._apply_linked(conn, kind, rec, link, rows.get(link["local_id"]), refs)
                except Unresolved as exc:
                    self.stats.skipped["unresolved_reference"] += 1
                    log.warning("inbound: a record refers to one that cannot be had locally; left to the reconcile",
                                kind=kind, registry_id=rec["id"], error=str(exc))
        finally:
            self._candidates = None
            self._open = None
        self.flush(conn)
        self._adopted_now.clear()

    def _volunteer_candidates(self, conn: Connection, recs: list[dict[str, Any]]
                              ) -> dict[tuple[str, str], list[tuple[int, str, str]]]:
        """(idType, normalized number) → unlinked local rows that may be the same person, oldest first, for
        ``recs`` (volunteers with no link)."""
        wanted: dict[str, str] = {}
        for rec in recs:
            norm = try_normalize_id_number(rec.get("id_type") or "", rec.get("id_number") or "")
            if norm is not None:
                wanted[norm] = rec.get("id_type") or ""
        return read.unlinked_volunteers_by_id_number(conn, wanted)

    def _apply_linked(self, conn: Connection, kind: str, rec: dict[str, Any], link: dict[str, Any],
                      row: dict[str, Any] | None, refs: dict[tuple[str, int], str]) -> None:
        st = self.stats
        version = int(rec.get("version") or 0)
        if version <= link["registry_version"]:
            st.stale += 1
            return
        remote = project_registry(kind, rec)
        key = self.settings.hash_key
        if row is None:
            # the local row was deleted: the relay ends the record; it needs the current version and base
            st.skipped["local_deleted"] += 1
            self.save_link(link, version, canonical(remote, key))
            return
        local = project_local(kind, row, refs)
        base = json.loads(link["base"] or "{}")
        transferred = self.residence(conn, kind, link, remote)
        result: MergeResult
        read_only = self.read_only(kind)
        if link["how"] == REGISTRY_OWNED or transferred:
            result = take_registry(kind, local, remote, key, REGISTRY_OWNED if not transferred else "transferred_out",
                                   read_only)
        elif kind in IMMUTABLE_RECORDS:
            # never merged (design.md): a record of this client's changes only through this client; keep the
            # registry's state as the base so the relay compares against it. A training record revoked in the
            # registry comes home as the local status REVOKED (issue 16: the side that ended it wins)
            if kind == "training_record" and remote.get("status") == ENDED[kind] != row.get("status"):
                self._revoked_here(kind, row, rec.get("revoke_reason"))
            self.save_link(link, version, canonical(remote, key))
            st.unchanged[kind] += 1
            return
        else:
            result = three_way(kind, base, local, remote, self.policies, key, read_only)
        self.write_local(conn, kind, row, result)
        queued = False
        if result.push and not transferred and link["how"] != REGISTRY_OWNED:
            self.queue_push(conn, kind, row)
            queued = True
        self.record_conflicts(conn, kind, link, version, result, st.run_id)
        self.save_link(link, version, result.new_base)
        self.note(kind, link["local_id"], rec["id"], result)
        if link["how"] == REGISTRY_OWNED and result.apply_local:
            st.registry_owned[kind] += 1
        elif result.apply_local or queued or result.conflicts:
            st.merged[kind] += 1
        else:
            st.unchanged[kind] += 1

    def _revoked_here(self, kind: str, row: dict[str, Any], reason: str | None) -> None:
        """Write the local row ``row`` of an immutable record as ``REVOKED`` with the registry's ``reason``
        (buffered until :meth:`flush`; counted in ``stats.ended``), where the platform lets regsync write it."""
        values: dict[str, Any] = {"status": ENDED[kind]}
        if "revoke_reason" not in self.read_only(kind):
            values["revoke_reason"] = reason
        if "status" in self.read_only(kind):
            return
        values["updated_at"] = utcnow()
        self._pending.rows[(kind, tuple(sorted(values)))].append({"id": row["id"], **values})
        row.update(values)
        self.stats.ended[kind] += 1

    def residence(self, conn: Connection, kind: str, link: dict[str, Any], remote: dict[str, Any]) -> bool:
        """Whether the linked record is a volunteer another province manages now, the link recording it
        (:func:`record_residence`)."""
        return record_residence(conn, self.settings.province, self.stats, kind, link, remote)

    def apply_new(self, conn: Connection, kind: str, rec: dict[str, Any]) -> None:
        """A registry record with no link: adopt a local row of the same record, or create one (and what it refers
        to), counted in :attr:`stats`; a record of another province or made under this client's credentials but
        not linked here is skipped and counted. The caller holds :func:`~regsync.db.session.suppress_outbox` and
        runs :meth:`flush` before its transaction ends.

        Raises:
            Unresolved: the record refers to one that cannot be had locally.
        """
        st = self.stats
        if kind == "volunteer" and rec.get("home_province") != self.settings.province:
            st.skipped["out_of_province"] += 1  # another province's person we never had
            return
        if kind in ("org", "activity", "training") and (rec.get("region_code") or "")[:2] != self.settings.province:
            st.skipped["out_of_province"] += 1
            return
        if self.ownership.made_by_this_client(kind, rec):
            # made under this client's credentials, yet not linked here: this store's own create whose answer was
            # lost (the relay links it by clientRef), or another store's under the same credentials, which is
            # never adopted or created locally (it would be written over from here; issue 12, item 4)
            mine = self.ownership.sent_here(conn, kind, rec)
            st.skipped["own_unlinked" if mine else "other_store"] += 1
            if not mine:
                log.warning("inbound: a registry record made under this client's credentials by another store; "
                            "not taken", kind=kind, registry_id=rec["id"], client_ref=rec.get("client_ref"))
            return
        local_id = self.find_same(conn, kind, rec)
        if local_id is not None:
            self.adopt(conn, kind, rec, local_id)
            return
        if not self.insertable(kind):
            # a mapped platform regsync may not insert this kind into (issue 14): the reconcile lists the record
            # as missing locally, for an operator to add on the platform
            st.skipped["not_insertable"] += 1
            return
        if kind == "org":
            # orgs refer to orgs of the same page (a parent, a station): created one by one, so that the next
            # one finds its parent's link
            how = self._create(conn, kind, rec, 0)
        else:
            # nothing of the same kind refers to these: their rows and links are inserted together by flush
            how = self._create(conn, kind, rec, 0, defer=True)
        (st.registry_owned if how == REGISTRY_OWNED else st.created)[kind] += 1

    # ------------------------------------------------------------------------------------------ adopt
    def find_same(self, conn: Connection, kind: str, rec: dict[str, Any]) -> int | None:
        """An unlinked local row of the same record, by natural key: a volunteer by ``idType`` and normalized
        ``idNumber`` (the older row: the person's primary), an org by USCC, a membership by its pair; ``None``
        when there is none (or the kind has no natural key here)."""
        if kind == "volunteer":
            norm = try_normalize_id_number(rec.get("id_type") or "", rec.get("id_number") or "")
            if norm is None:
                return None
            if self._candidates is not None:
                for vid, _, _ in self._candidates.get((rec.get("id_type") or "", norm), []):
                    if vid not in self._adopted_now:
                        return vid
                return None
            for vid in read.unlinked_volunteers_with_id_number(conn, rec["id_type"], norm):
                if vid not in self._adopted_now:
                    return vid
            return None
        if kind == "org":
            uscc = normalize_uscc(rec.get("uscc"))
            if not uscc:
                return None
            orgs = read.unlinked_orgs_with_uscc(conn, uscc)
            return orgs[0] if orgs else None
        if kind == "membership":
            try:
                org_id = self._local_id(conn, "org", rec["org_id"], 0)
                vol_id = self._local_id(conn, "volunteer", rec["volunteer_id"], 0)
            except Unresolved:
                return None
            return read.unlinked_membership(conn, org_id, vol_id)
        return None

    def adopt(self, conn: Connection, kind: str, rec: dict[str, Any], local_id: int) -> None:
        """Link the unlinked local row ``local_id`` to ``rec`` (``how='adopted'``) and merge them with no common
        base: each field that differs is decided by its group's policy (``manual`` → a conflict). Buffered: the
        caller holds :func:`~regsync.db.session.suppress_outbox` and runs :meth:`flush`."""
        row = read.load_records(conn, kind, [local_id])[local_id]
        refs = merges.reference_ids(conn, kind, [row])
        local = project_local(kind, row, refs)
        remote = project_registry(kind, rec)
        result = three_way(kind, {}, local, remote, self.policies, self.settings.hash_key,
                           self.read_only(kind))
        version = int(rec.get("version") or 1)
        link = {"entity": kind, "local_id": local_id, "registry_id": rec["id"], "registry_version": version,
                "base": dumps(result.new_base), "is_duplicate": False, "revision": 0, "how": "adopted"}
        now = utcnow()
        link["id"] = merges.add_link(conn, {**link, "linked_at": now, "updated_at": now})
        self._adopted_now.add(local_id)
        self.write_local(conn, kind, row, result)
        if result.push:
            self.queue_push(conn, kind, row)
        self.record_conflicts(conn, kind, link, version, result, self.stats.run_id)
        self.note(kind, local_id, rec["id"], result)
        self.stats.adopted[kind] += 1
        log.info("inbound: registry record linked to the platform's own row", kind=kind, local_id=local_id,
                 registry_id=rec["id"])

    # ------------------------------------------------------------------------------------------ create
    def _local_id(self, conn: Connection, kind: str, registry_id: str, depth: int) -> int:
        """The local id of a registry record, creating the local row (and what it refers to) when missing."""
        found = merges.local_id_of(conn, kind, registry_id)
        if found is not None:
            return found
        if depth >= MAX_REFERENCE_DEPTH:
            raise Unresolved(f"{kind} {registry_id}: references too deep")
        recs = self.client.lookup(as_kind(kind), [registry_id])
        if not recs:
            raise Unresolved(f"{kind} {registry_id} is not in the registry")
        rec = recs[0]
        if self.ownership.made_by_this_client(kind, rec):
            raise Unresolved(f"{kind} {registry_id} was created under this client's credentials but not linked "
                             "here: the relay links this store's own by clientRef; another store's is never taken")
        same = self.find_same(conn, kind, rec)
        if same is not None:
            self.adopt(conn, kind, rec, same)
            return same
        if not self.insertable(kind):
            raise Unresolved(f"{kind} {registry_id} is not on the platform, and the mapping does not let regsync "
                             f"insert {kind} rows (insert = false): an operator adds it on the platform")
        how = self._create(conn, kind, rec, depth + 1)
        (self.stats.registry_owned if how == REGISTRY_OWNED else self.stats.created)[kind] += 1
        return self._local_id(conn, kind, registry_id, MAX_REFERENCE_DEPTH)

    def _create(self, conn: Connection, kind: str, rec: dict[str, Any], depth: int, *, defer: bool = False) -> str:
        """Create the local row of ``rec`` and link it; returns the link's ``how``. With ``defer`` the row and
        its link are buffered and inserted by :meth:`flush` (only for records nothing else in the kind's batch
        refers to)."""
        remote = project_registry(kind, rec)
        values: dict[str, Any] = {}
        for name in FIELDS[kind]:
            values[name] = self.to_local(conn, kind, name, remote.get(name), depth)
        if kind == "volunteer":
            values["id_number_norm"] = try_normalize_id_number(values["id_type"] or "", values["id_number"] or "")
        if kind in REVOCABLE:
            values["revoke_reason"] = rec.get("revoke_reason")
        if kind == "service_record" and values.get("status") == "ACCEPTED" and values.get("service_date") is not None:
            # the registry's figure of the subject's year moved: a commendation it refused NOT_EARNED is taken up
            # again (registry-api.md §4.8; the relay's own writes do the same, regsync.flows.relay_waits)
            self._pending.figures.append((values["volunteer_id"], values["org_id"], values["service_date"].year))
            # and an evaluation at that activity waiting for the volunteer's accepted record may go (§4.9)
            self._pending.evaluable.append(values["activity_id"])
        how = "from_registry" if self.ownership.writable(kind, rec) else REGISTRY_OWNED
        result = take_registry(kind, None, remote, self.settings.hash_key, "created_locally")
        now = utcnow()
        link = {"entity": kind, "registry_id": rec["id"], "registry_version": int(rec.get("version") or 1),
                "base": dumps(result.new_base), "is_duplicate": False, "revision": 0, "how": how, "linked_at": now,
                "updated_at": now}
        if defer:
            self._pending.creates[kind].append((values, link))
            self.note(kind, 0, rec["id"], result, only_summary=True)
            return how
        local_id = write.insert_record(conn, kind, values, platform=self.platform, registry_id=rec["id"])
        merges.insert_links(conn, {**link, "local_id": local_id})
        self.note(kind, local_id, rec["id"], result, only_summary=True)
        return how

    def to_local(self, conn: Connection, kind: str, name: str, value: Any, depth: int = 0) -> Any:
        """A registry value of field ``name`` (Python names and types, :func:`~regsync.domain.projection.
        project_registry`) as the local column holds it: a reference as the local id (the record referred to is
        created when missing, up to :data:`MAX_REFERENCE_DEPTH` levels from ``depth``), a list as JSON text.

        Raises:
            Unresolved: a reference that cannot be had locally.
        """
        if name in REFERENCES[kind]:
            return None if value is None else self._local_id(conn, REFERENCES[kind][name], value, depth)
        if name in _LIST_COLUMNS:
            return json.dumps(list(value or []), ensure_ascii=False)
        return value

    # ------------------------------------------------------------------------------------------ writes
    def write_local(self, conn: Connection, kind: str, row: dict[str, Any], result: MergeResult) -> None:
        """Write the registry-winning fields of ``result`` (``apply_local``) to the local row ``row`` (its columns
        by name, ``id`` included; updated in place), buffered until :meth:`flush`; an ending is counted in
        ``stats.ended``. The caller holds :func:`~regsync.db.session.suppress_outbox` (no echo).

        Raises:
            Unresolved: a reference that cannot be had locally.
        """
        if not result.apply_local:
            return
        values = {name: self.to_local(conn, kind, name, result.merged[name], 0) for name in result.apply_local}
        if kind == "volunteer" and ("id_number" in values or "id_type" in values):
            values["id_number_norm"] = try_normalize_id_number(
                values.get("id_type", row.get("id_type")) or "", values.get("id_number", row.get("id_number")) or "")
        values["updated_at"] = utcnow()
        columns = tuple(sorted(values))
        self._pending.rows[(kind, columns)].append({"id": row["id"], **values})
        row.update(values)
        if "status" in values and values["status"] == ENDED.get(kind) or (
                kind == "membership" and "left_on" in values and values["left_on"] is not None):
            self.stats.ended[kind] += 1

    def queue_push(self, conn: Connection, kind: str, row: dict[str, Any]) -> None:
        """Queue an outbox row (``update``) so that the relay pushes the local-winning fields of the local row
        ``row`` (the triggers are suppressed); counted in ``stats.pushes_queued``."""
        merges.queue_update(conn, kind, row["id"], row_priority(kind, row), utcnow())
        self.stats.pushes_queued[kind] += 1

    def save_link(self, link: dict[str, Any], version: int, base: dict[str, Any]) -> None:
        """Move the link (a ``link`` row as a dict, updated in place) to the registry's ``version`` and the
        canonical ``base``; buffered until :meth:`flush`, in the caller's transaction."""
        snapshot = dumps(base)
        self._pending.links.append({"id": link["id"], "registry_version": version, "base": snapshot,
                                    "updated_at": utcnow()})
        if link.get("entity") == "activity" and base.get("status") == "COMPLETED":
            # completed in the registry (registry-api.md §4.9): the evaluations that wait for it may go
            self._pending.evaluable.append(int(link["local_id"]))
        link["registry_version"], link["base"] = version, snapshot

    def record_conflicts(self, conn: Connection, kind: str, link: dict[str, Any], version: int,
                         result: MergeResult, run_id: int | None) -> None:
        """Open, bring up to date or supersede the record's conflicts (:func:`record_conflicts`)."""
        record_conflicts(conn, self._open, self.stats, kind, link, version, result, run_id)

    def note(self, kind: str, local_id: int, registry_id: str, result: MergeResult, *,
             only_summary: bool = False) -> None:
        """Count the decisions of ``result`` for the run's record (:func:`note_decisions`)."""
        note_decisions(self.stats, kind, local_id, registry_id, result, only_summary=only_summary,
                       agreements=self.note_agreements)

    def flush(self, conn: Connection) -> None:
        """Send the buffered writes: created rows and their links, updated rows by table and column set, then
        link updates. On PostgreSQL an update of many rows is one ``UPDATE … FROM unnest(arrays)`` statement."""
        self._pending.flush(conn, self.platform)


def record_residence(conn: Connection, province: str, stats: InboundStats, kind: str, link: dict[str, Any],
                     remote: dict[str, Any]) -> bool:
    """Whether the linked record is a volunteer another province manages now (registry-api.md §4.2
    ``homeProvince``: a transfer out, after which this client may read the record but not write it), and the
    link's record of it: a transfer out sets the link's ``how`` to :data:`~regsync.db.models.TRANSFERRED_OUT`
    (counted once in ``stats.transferred_out``), a return to the province sets it to
    :data:`~regsync.db.models.TRANSFERRED_BACK`. A registry-owned link (another province's person the platform
    never had) is left as it is.

    Args:
        conn: a connection in the caller's transaction.
        province: this client's province (``settings.province``: two digits of GB/T 2260).
        stats: the run's counters.
        kind: the record's kind (only volunteers move).
        link: the record's primary link (a dict of its columns, ``id`` and ``how`` included; ``how`` updated in
            place).
        remote: the registry's record, projected (:func:`~regsync.domain.projection.project_registry`).
    """
    if kind != "volunteer":
        return False
    away = remote.get("home_province") != province
    if link["how"] == REGISTRY_OWNED or away == (link["how"] == TRANSFERRED_OUT):
        return away
    link["how"] = TRANSFERRED_OUT if away else TRANSFERRED_BACK
    merges.set_how(conn, link["id"], link["how"], utcnow())
    if away:
        stats.transferred_out += 1
        log.info("inbound: volunteer transferred out; no more pushes", local_id=link["local_id"],
                 home_province=remote.get("home_province"))
    else:
        log.info("inbound: volunteer transferred back into the province; synced again", local_id=link["local_id"])
    return away


def record_conflicts(conn: Connection, open_by_record: dict[int, dict[str, int]] | None, stats: InboundStats,
                     kind: str, link: dict[str, Any], version: int, result: MergeResult, run_id: int | None) -> None:
    """Open (or bring up to date) one conflict per field ``result`` holds, under the link's record, the
    registry's ``version`` and the run ``run_id``; supersede the record's open conflicts on fields that are no
    longer held (both sides came to agree, or one side went back to the base). Counted in
    ``stats.conflicts``. ``open_by_record``: the open conflicts of the batch's records read beforehand (local id →
    field → conflict id), or ``None`` to read the record's own."""
    if open_by_record is not None:
        open_rows = dict(open_by_record.get(link["local_id"], {}))
        if not open_rows and not result.conflicts:
            return
    else:
        open_rows = merges.open_conflicts_of(conn, kind, link["local_id"])
    now = utcnow()
    for c in result.conflicts:
        values = {"registry_id": link["registry_id"], "field_group": c.group,
                  "base_value": json.dumps(c.base, ensure_ascii=False),
                  "local_value": json.dumps(c.local, ensure_ascii=False, default=str),
                  "remote_value": json.dumps(c.remote, ensure_ascii=False, default=str),
                  "local_hash": c.local_hash, "remote_hash": c.remote_hash, "registry_version": version,
                  "run_id": run_id, "updated_at": now}
        if c.field in open_rows:
            merges.update_conflict(conn, open_rows.pop(c.field), values)
        else:
            merges.open_conflict(conn, {"entity": kind, "local_id": link["local_id"], "field": c.field,
                                        "detected_at": now, **values})
        stats.conflicts[kind] += 1
    if open_rows:
        merges.supersede_conflicts(conn, list(open_rows.values()), now)


def note_decisions(stats: InboundStats, kind: str, local_id: int, registry_id: str, result: MergeResult, *,
                   only_summary: bool = False, agreements: bool = True) -> None:
    """Count the decisions of ``result`` in ``stats.decisions`` and keep the first :data:`DECISIONS_KEPT` in
    detail (``stats.decision_log``; not with ``only_summary``), for the run's record; fields equal on both sides
    (rule ``agree``) only with ``agreements``."""
    st = stats
    for d in result.decisions:
        if d.rule == "agree" and not agreements:
            continue
        st.decisions[f"{kind}.{d.field}:{d.rule}:{d.winner}"] += 1
        if not only_summary and len(st.decision_log) < DECISIONS_KEPT:
            st.decision_log.append({"kind": kind, "local_id": local_id, "registry_id": registry_id,
                                    "field": d.field, "rule": d.rule, "winner": d.winner, "group": d.group})


class _PendingWrites:
    """The writes a :class:`LocalWriter` buffers until :meth:`flush`: rows created (with their links), fields
    written (by kind and column set), links moved."""

    def __init__(self) -> None:
        self.creates: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
        self.rows: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        self.links: list[dict[str, Any]] = []
        #: (volunteer, org, year) of accepted service records made locally: the registry's figures moved
        self.figures: list[tuple[int, int, int]] = []
        #: local ids of activities completed in the registry, or with a service record accepted there
        self.evaluable: list[int] = []

    def flush(self, conn: Connection, platform: MappedPlatform | None) -> None:
        """Send them, in ``conn``'s transaction (one statement per kind and shape: an ``executemany``, or on
        PostgreSQL one ``UPDATE … FROM unnest(arrays)``), into the platform ``platform`` (``None``: the reference
        tables), and forget them."""
        for kind, creates in self.creates.items():
            for chunk in chunks(creates, CHUNK):
                ids = write.insert_records(conn, kind, [values for values, _ in chunk],
                                           [link["registry_id"] for _, link in chunk], platform=platform)
                merges.insert_links(conn, [{**link, "local_id": lid} for (_, link), lid in zip(chunk, ids,
                                                                                                 strict=True)])
        self.creates.clear()
        for (kind, columns), rows in self.rows.items():
            write.write_fields(conn, kind, columns, rows, platform=platform)
        self.rows.clear()
        if self.links:
            merges.move_links(conn, self.links)
            self.links.clear()
        if self.figures:
            outbox.retry_not_earned(conn, self.figures, NOT_EARNED, utcnow())
            self.figures.clear()
        if self.evaluable:
            outbox.wake_evaluations(conn, self.evaluable, (AWAITS_COMPLETION, AWAITS_SERVICE_RECORD), utcnow())
            self.evaluable.clear()


__all__ = ["DECISIONS_KEPT", "MAX_REFERENCE_DEPTH", "InboundStats", "LocalWriter", "Ownership", "Unresolved",
           "note_decisions", "record_conflicts", "record_residence"]
