"""What applying the registry's records keeps in regsync's own tables: links, conflicts, pushes queued.

:class:`regsync.flows.apply.LocalWriter` reads and writes here, beside the platform's records
(:mod:`regsync.db.platform`): the links of the records it applies (their registry version and agreed base, moved
after a merge), the registry ids of what a row refers to, the open conflicts of the records (``manual`` fields
held for an operator), the outbox rows it queues for local-winning fields, and the relay's claims it waits for.
Link rows are handled as dicts of their columns (:class:`~regsync.db.models.Link`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from regsync.db.models import Conflict, Link, Outbox
from regsync.db.query import CHUNK, chunks, in_values, insert_id, update_by_id
from regsync.db.session import row_locks
from regsync.domain.projection import REFERENCES

_LINK_INSERT = Link.__table__.insert()
_ct = Conflict.__table__


# ---------------------------------------------------------------------------------------------- links


def links_by_registry_id(conn: Connection, kind: str, registry_ids: Sequence[str], *, lock: bool = False
                         ) -> dict[str, list[dict[str, Any]]]:
    """The links of ``kind`` whose registry ids are among ``registry_ids``, by registry id, each record's primary
    first (then a person's duplicate rows, by local id); ``lock``: on PostgreSQL and MySQL/MariaDB, locked for
    update until the transaction ends."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    t = Link.__table__
    for chunk in chunks(sorted(set(registry_ids)), CHUNK):
        q = select(t).where(t.c.entity == kind, in_values(conn, t.c.registry_id, list(chunk))).order_by(
            t.c.is_duplicate, t.c.local_id)
        if lock and row_locks(conn):
            q = q.with_for_update()
        for r in conn.execute(q).mappings():
            out[r["registry_id"]].append(dict(r))
    return out


def primary_link(links: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The link whose local row governs the record (not a person's duplicate row), of one record's links as
    :func:`links_by_registry_id` gives them; ``None`` for none."""
    if not links:
        return None
    return links[0]


def local_id_of(conn: Connection, kind: str, registry_id: str) -> int | None:
    """The local id of the primary row linked to the registry record ``registry_id``, or ``None``."""
    found = conn.execute(select(Link.local_id).where(Link.entity == kind, Link.registry_id == registry_id)
                         .order_by(Link.is_duplicate, Link.local_id).limit(1)).scalar()
    return None if found is None else int(found)


def any_linked(conn: Connection) -> bool:
    """Whether any record is linked at all."""
    return conn.execute(select(Link.id).limit(1)).first() is not None


def reference_ids(conn: Connection, kind: str, rows: Iterable[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """(kind, local id) → registry id of what the local rows ``rows`` of ``kind`` refer to (their org, volunteer,
    activity, parent org…), through the links; what is not linked is left out."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        for col, ref_kind in REFERENCES[kind].items():
            if row.get(col) is not None:
                wanted[ref_kind].add(row[col])
    out: dict[tuple[str, int], str] = {}
    for ref_kind, ids in wanted.items():
        for chunk in chunks(sorted(ids), CHUNK):
            for lid, rid in conn.execute(select(Link.local_id, Link.registry_id).where(
                    Link.entity == ref_kind, in_values(conn, Link.local_id, list(chunk)))):
                out[(ref_kind, lid)] = rid
    return out


def add_link(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one link (its columns but ``id``); returns its id."""
    return insert_id(conn, _LINK_INSERT, values)


def insert_links(conn: Connection, rows: Sequence[dict[str, Any]] | dict[str, Any]) -> None:
    """Insert links (each its columns but ``id``): one row, or many in one ``executemany``."""
    conn.execute(_LINK_INSERT, rows if isinstance(rows, dict) else list(rows))


def set_how(conn: Connection, link_id: int, how: str, now: dt.datetime) -> None:
    """Record how the link ``link_id`` governs its record now (``how``: e.g. a volunteer transferred out,
    :data:`~regsync.db.models.TRANSFERRED_OUT`), updated at ``now`` (naive UTC)."""
    conn.execute(Link.__table__.update().where(Link.__table__.c.id == link_id).values(how=how, updated_at=now))


def move_links(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Move links to a new registry version and agreed base: ``{"id", "registry_version", "base",
    "updated_at"}`` each (``base`` the canonical snapshot as JSON text)."""
    update_by_id(conn, Link.__table__, ("registry_version", "base", "updated_at"), rows)


# ---------------------------------------------------------------------------------------------- conflicts


def open_conflicts(conn: Connection, kind: str, local_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Local id → {field: conflict id} of the open conflicts of the records ``local_ids`` of ``kind``."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in chunks(sorted(local_ids), CHUNK):
        for cid, lid, name in conn.execute(select(_ct.c.id, _ct.c.local_id, _ct.c.field).where(
                _ct.c.entity == kind, in_values(conn, _ct.c.local_id, list(chunk)), _ct.c.state == "open")):
            out[lid][name] = cid
    return out


def open_conflicts_of(conn: Connection, kind: str, local_id: int) -> dict[str, int]:
    """Field → conflict id of the open conflicts of one record."""
    return {r.field: r.id for r in conn.execute(select(_ct.c.id, _ct.c.field).where(
        _ct.c.entity == kind, _ct.c.local_id == local_id, _ct.c.state == "open"))}


def open_conflict(conn: Connection, values: dict[str, Any]) -> None:
    """Insert an open conflict (``values``: its columns but ``id`` and ``state``)."""
    conn.execute(_ct.insert().values(state="open", **values))


def update_conflict(conn: Connection, conflict_id: int, values: dict[str, Any]) -> None:
    """Bring an open conflict up to date (``values``: the columns that change)."""
    conn.execute(_ct.update().where(_ct.c.id == conflict_id).values(**values))


def supersede_conflicts(conn: Connection, conflict_ids: Sequence[int], now: dt.datetime) -> None:
    """Close conflicts whose field is no longer held (state ``superseded``, at ``now``, naive UTC)."""
    conn.execute(_ct.update().where(_ct.c.id.in_(list(conflict_ids))).values(
        state="superseded", resolved_at=now, updated_at=now))


# ---------------------------------------------------------------------------------------------- the outbox


def queue_update(conn: Connection, kind: str, local_id: int, priority: int, now: dt.datetime) -> None:
    """Queue an outbox row (``update``, ``pending`` from ``now``) so that the relay pushes the record's local
    state; for a connection that holds :func:`~regsync.db.session.suppress_outbox` (the triggers queue none)."""
    conn.execute(Outbox.__table__.insert().values(
        entity=kind, local_id=local_id, op="update", priority=priority, state="pending",
        attempts=0, created_at=now, available_at=now))


def claimed_records(conn: Connection, kind: str, local_ids: Sequence[int], now: dt.datetime) -> int:
    """How many of the records ``local_ids`` of ``kind`` have outbox rows under a relay's live claim at ``now``."""
    t = Outbox.__table__
    n = 0
    for chunk in chunks(sorted(local_ids), CHUNK):
        n += conn.execute(select(func.count(func.distinct(t.c.local_id))).where(
            t.c.entity == kind, in_values(conn, t.c.local_id, list(chunk)), t.c.claimed_by.is_not(None),
            t.c.claimed_until >= now)).scalar_one()
    return n


__all__ = [
    "add_link",
    "any_linked",
    "claimed_records",
    "insert_links",
    "links_by_registry_id",
    "local_id_of",
    "move_links",
    "open_conflict",
    "open_conflicts",
    "open_conflicts_of",
    "primary_link",
    "queue_update",
    "reference_ids",
    "supersede_conflicts",
    "update_conflict",
]
