"""Reading what the outbound relay plans from (design.md, flow 1, step 2): the live rows of a chunk of records (the
outbox holds no payload), their links and the links of what they refer to, the fields open conflicts hold, the
states of referenced records not in the registry yet, and the primary row of a person registered twice.

The reads of the platform's own tables are here, in one place (today's reference tables; the store's interface to
the platform's records, :mod:`regsync.db.platform`, is where they belong); the sync tables are read through
:mod:`regsync.db.links` and :mod:`regsync.db.outbox`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db import links, outbox, query
from regsync.db.holds import held_keys
from regsync.db.platform import read, write
from regsync.db.platform.mapped import MappedPlatform, mapped_platform
from regsync.domain.normalize import try_normalize_id_number
from regsync.domain.projection import REFERENCES, project_registry
from regsync.flows.relay_items import Item, ReusedKeys
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind

log = structlog.get_logger(__name__)


class Loader:
    """Reads for the relay's planner.

    Args:
        engine: the local store.
        client: the registry client (``lookup``, for the registry's values of held fields).
        reused_keys: :func:`regsync.flows.outbound.reused_keys`, the keys used again for another record.
    """

    def __init__(self, engine: Engine, client: RegistryPort, reused_keys: ReusedKeys) -> None:
        self.engine = engine
        self.client = client
        self.reused_keys = reused_keys
        self._platform: MappedPlatform | None = None
        self._platform_read = False

    def platform(self, conn: Connection) -> MappedPlatform | None:
        """The store's mapped platform (``None``: the reference tables), read at the first call only (a loader
        serves one relay run)."""
        if not self._platform_read:
            self._platform, self._platform_read = mapped_platform(conn), True
        return self._platform

    def load_group(self, kind: str, items: list[Item]) -> None:
        """Read what concerns a whole group, in one query each over its records: the fields held by open
        conflicts (``held``), and which records have older failed or blocked rows (``had_failed``).

        While the group's rows are claimed the inbound poller leaves its records alone, so no conflict opens on
        them meanwhile.
        """
        ids = sorted(it.local_id for it in items)
        with self.engine.connect() as conn:
            held = links.open_conflict_fields(conn, kind, ids)
            failed_before = outbox.failed_or_blocked(conn, kind, ids)
        for it in items:
            it.had_failed = it.local_id in failed_before
            it.held = frozenset(held.get(it.local_id, ()))

    def load_chunk(self, kind: str, items: list[Item]) -> tuple[dict[tuple[str, int], str], dict[int, int]]:
        """Read the live rows and links of ``items`` (each item's ``row``, ``link``, ``unreadable``,
        ``reuse_ids``), in one transaction.

        Returns:
            ``(refs, primaries)``: the registry ids of the linked records they refer to (``(kind, local_id)`` →
            registry id; a key used again for another record is left out: what refers to it waits for the new
            record), and for volunteers, the later rows of a person with their primary (:meth:`_primaries`).
        """
        with self.engine.begin() as conn:
            refs = self._rows_and_links(conn, kind, items)
            primaries = self._primaries(conn, items) if kind == "volunteer" else {}
        return refs, primaries

    def _rows_and_links(self, conn: Connection, kind: str, items: list[Item]) -> dict[tuple[str, int], str]:
        """Read the live rows and links of ``items`` and the links of what they refer to."""
        ids = [it.local_id for it in items]
        rows, unreadable = read.read_rows(conn, kind, ids)
        linked: dict[int, dict[str, Any]] = {}
        for chunk in query.chunks(ids, query.CHUNK):
            linked.update(links.links_of(conn, kind, chunk))
        reused = self.reused_keys(conn, kind, ids)
        for it in items:
            it.row = rows.get(it.local_id)
            it.link = linked.get(it.local_id)
            it.unreadable = unreadable.get(it.local_id)
            it.reuse_ids = reused.get(it.local_id, ())
        # references
        wanted: dict[str, set[int]] = defaultdict(set)
        for it in items:
            if it.row is None:
                continue
            for col, ref_kind in REFERENCES[kind].items():
                if it.row.get(col) is not None:
                    wanted[ref_kind].add(it.row[col])
        refs = links.registry_ids_of(conn, wanted)
        # a referenced key used again for another record: its link is the old record's; what refers to the key
        # waits for the new record (never a reference to the old one)
        linked_refs: dict[str, list[int]] = defaultdict(list)
        for ref_kind, lid in refs:
            linked_refs[ref_kind].append(lid)
        for ref_kind, ref_ids in linked_refs.items():
            for lid in self.reused_keys(conn, ref_kind, ref_ids):
                refs.pop((ref_kind, lid), None)
        return refs

    def _primaries(self, conn: Connection, items: list[Item]) -> dict[int, int]:
        """Keep ``id_number_norm`` current for ``items`` and return, for each of them that is the later row
        of a person registered twice, the local id of that person's primary (older) row."""
        fixes = []
        for it in items:
            if it.row is None:
                continue
            norm = try_normalize_id_number(it.row["id_type"], it.row["id_number"])
            if norm != it.row.get("id_number_norm"):
                fixes.append({"vid": it.local_id, "norm": norm})
                it.row["id_number_norm"] = norm
        if fixes:
            write.set_id_number_norms(conn, fixes, platform=self.platform(conn))
        wanted = sorted({it.row["id_number_norm"] for it in items
                         if it.row is not None and it.row.get("id_number_norm")})
        primary_of: dict[int, int] = {}
        for chunk in query.chunks(wanted, query.CHUNK):
            rows = read.volunteers_by_id_number_norm(conn, list(chunk))
            people: dict[tuple[str, str], list[tuple[Any, int]]] = defaultdict(list)
            for vid, id_type, norm, registered_at in rows:
                people[(id_type, norm)].append((registered_at, vid))
            for members in people.values():
                if len(members) > 1:
                    members.sort()
                    first = members[0][1]
                    for _, vid in members[1:]:
                        primary_of[vid] = first
        return primary_of

    def parent_states(self, missing: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """For unlinked referenced records: ``waiting`` if rows of theirs are still to be sent (pending, deferred
        or claimed), ``discarded`` when an operator holds them (:mod:`regsync.db.holds`), else ``failed`` —
        refused, blocked, or never queued — so that what refers to them is blocked (``PARENT_DISCARDED``,
        ``PARENT_FAILED``) instead of waiting for ever."""
        with self.engine.begin() as conn:
            waiting = outbox.waiting(conn, missing)
            held = held_keys(conn, [key for key in missing if key not in waiting])
        return {key: "waiting" if key in waiting else "discarded" if key in held else "failed" for key in missing}

    def fetch_held_values(self, kind: str, items: list[Item]) -> None:
        """Read the registry's current values of the fields that open conflicts hold (design.md, "Conflict
        policy": ``manual`` holds a field while the record's other fields still sync) into each item's
        ``held_values``. ``PUT`` replaces every mutable field (registry-api.md §5), so a held field is sent with
        the registry's own value; the link's base keeps only a keyed hash of personal fields, hence one
        ``/lookup`` per 500 such records (few: open conflicts wait for an operator)."""
        linked = [it for it in items if it.link is not None and not it.link["is_duplicate"]]
        if not linked:
            return
        by_rid = {it.link["registry_id"]: it for it in linked}  # type: ignore[index]
        for chunk in query.chunks(sorted(by_rid), 500):
            for rec in self.client.lookup(as_kind(kind), list(chunk)):
                it = by_rid.get(rec["id"])
                if it is not None:
                    current = project_registry(kind, rec)
                    it.held_values = {name: current.get(name) for name in it.held}


__all__ = ["Loader"]
