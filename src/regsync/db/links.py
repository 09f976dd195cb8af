"""Links (关联) and what the outbound relay keeps beside them: every statement the relay runs on ``link``, on
``create_sent`` (this store's history of creates sent under a ``clientRef``) and on the ``conflict`` rows of the
records it writes (design.md, "Data model"; :class:`regsync.db.models.Link`, :class:`~regsync.db.models.CreateSent`,
:class:`~regsync.db.models.Conflict`).

A link is passed around as a dict of its columns (``id``, ``entity``, ``local_id``, ``registry_id``,
``registry_version``, ``base`` (JSON text), ``is_duplicate``, ``revision``, ``how``, ``linked_at``,
``updated_at``). Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.sql import ColumnElement

from regsync.db.models import DUPLICATE_HOWS, TABLES, Base, Conflict, CreateSent, Link
from regsync.db.outbox import as_dicts
from regsync.db.query import CHUNK, chunk_size, chunks, in_values, insert_id, upsert
from regsync.db.session import is_postgres

_link = Link.__table__

#: The columns of a new link, in the order :func:`insert_links` copies them.
_LINK_COLUMNS = ("entity", "local_id", "registry_id", "registry_version", "base", "is_duplicate", "revision", "how",
                 "linked_at", "updated_at")


# ------------------------------------------------------------------------------------------------ reading
def links_of(conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The links of ``local_ids`` of ``kind``, in one query (the caller chunks by
    :func:`regsync.db.query.chunk_size` or less): local id → link (a dict of its columns)."""
    return {r["local_id"]: r for r in as_dicts(conn.execute(select(_link).where(
        Link.entity == kind, in_values(conn, Link.local_id, local_ids))))}


def registry_ids_of(conn: Connection, wanted: Mapping[str, set[int]]) -> dict[tuple[str, int], str]:
    """The registry ids of the linked records among ``wanted`` (kind → local ids): all kinds in one query where
    the keys fit (one round trip, not one per kind: a service record refers to a volunteer and an activity).

    Returns:
        ``(kind, local_id)`` → registry id, for those that have a link.
    """
    refs: dict[tuple[str, int], str] = {}
    limit = chunk_size(conn)
    parts = [(ref_kind, chunk) for ref_kind, ref_ids in wanted.items() for chunk in chunks(sorted(ref_ids), limit)]
    while parts:
        query: list[ColumnElement[bool]] = []
        keys = 0
        while parts and (not query or keys + len(parts[0][1]) <= limit):
            ref_kind, chunk = parts.pop(0)
            query.append(and_(Link.entity == ref_kind, in_values(conn, Link.local_id, chunk)))
            keys += len(chunk)
        for entity, lid, rid in conn.execute(select(Link.entity, Link.local_id, Link.registry_id)
                                             .where(or_(*query))):
            refs[(entity, lid)] = rid
    return refs


def volunteer_links(conn: Connection, local_ids: Sequence[int]) -> dict[int, Any]:
    """The links of the volunteers ``local_ids`` (one ``IN`` list: a few primaries of people registered twice):
    local id → the link's row (attributes ``registry_id``, ``registry_version``, ``base``…)."""
    return {r.local_id: r for r in conn.execute(
        select(_link).where(_link.c.entity == "volunteer", _link.c.local_id.in_(local_ids)))}


def open_conflict_fields(conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, set[str]]:
    """The fields of ``local_ids`` of ``kind`` that open conflicts hold: local id → field names (only records
    with one)."""
    held: dict[int, set[str]] = defaultdict(set)
    for chunk in chunks(list(local_ids), chunk_size(conn)):
        for lid, name in conn.execute(select(Conflict.local_id, Conflict.field).where(
                Conflict.entity == kind, in_values(conn, Conflict.local_id, chunk), Conflict.state == "open")):
            held[lid].add(name)
    return held


def sent_creates(conn: Connection, kind: str, client_refs: Sequence[str]) -> dict[str, dt.datetime | None]:
    """This store's sends of creates of ``kind`` under ``client_refs``: ``clientRef`` → first send (naive UTC;
    ``None`` when declared by an operator or backfilled from a link), for those it has sent before, leaving out
    those whose record was found to be another store's (``how = 'other_store'``)."""
    t = CreateSent.__table__
    out: dict[str, dt.datetime | None] = {}
    for chunk in chunks(sorted(set(client_refs)), chunk_size(conn)):
        for ref, at in conn.execute(select(t.c.client_ref, t.c.first_sent_at).where(
                t.c.entity == kind, in_values(conn, t.c.client_ref, list(chunk)), t.c.how != "other_store")):
            out[ref] = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    return out


# ------------------------------------------------------------------------------------------------ writing
def note_creates(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record creates sent (``create_sent`` rows: ``entity``, ``client_ref``, ``local_id``, ``first_sent_at``,
    ``how``); a ``clientRef`` recorded already keeps its first send (:func:`regsync.db.query.upsert` that leaves
    it)."""
    conn.execute(upsert(conn, CreateSent.__table__, ("entity", "client_ref")), list(rows))


def mark_other_store(conn: Connection, kind: str, client_ref: str) -> None:
    """The create this store sent under ``client_ref`` no longer counts as its own: the registry's record under it
    is another store's (``how = 'other_store'``), until an operator says otherwise."""
    conn.execute(update(CreateSent).where(CreateSent.entity == kind, CreateSent.client_ref == client_ref)
                 .values(how="other_store"))


def insert_links(conn: Connection, entries: Sequence[Mapping[str, Any]], now: dt.datetime) -> None:
    """Insert new links (``entity``, ``local_id``, ``registry_id``, ``registry_version``, ``base``, ``revision``,
    ``how``; ``is_duplicate`` follows ``how``), linked and updated at ``now``. On PostgreSQL with ``COPY``, inside
    ``conn``'s transaction: one round trip and one statement for the whole batch, where an executemany is one
    statement a row."""
    rows = [{**e, "is_duplicate": e["how"] in DUPLICATE_HOWS, "linked_at": now, "updated_at": now} for e in entries]
    if not is_postgres(conn):
        conn.execute(_link.insert(), rows)
        return
    cols = _LINK_COLUMNS
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    with dbapi.cursor() as cur, cur.copy(f"COPY link ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]  # psycopg 3's cursor; SQLAlchemy types a bare DB-API one
        for row in rows:
            copy.write_row(tuple(row[c] for c in cols))


def update_links(conn: Connection, entries: Sequence[Mapping[str, Any]], now: dt.datetime) -> None:
    """Move links (found by ``entity`` and ``local_id``) to ``registry_id``, ``registry_version``, ``base`` and
    ``revision`` of each of ``entries`` (their ``how`` is not written), updated at ``now``."""
    conn.execute(update(_link).where(_link.c.entity == bindparam("b_entity"),
                                     _link.c.local_id == bindparam("b_local_id"))
                 .values(registry_id=bindparam("b_registry_id"),
                         registry_version=bindparam("b_registry_version"), base=bindparam("b_base"),
                         revision=bindparam("b_revision"), updated_at=now),
                 [{f"b_{k}": v for k, v in e.items() if k != "how"} for e in entries])


def drop_link(conn: Connection, link_id: int) -> None:
    """Delete the link ``link_id``."""
    conn.execute(_link.delete().where(_link.c.id == link_id))


def insert_placeholder_link(conn: Connection, link: Mapping[str, Any], local_id: int, now: dt.datetime) -> int:
    """Insert ``link`` (a registry record found by its ``clientRef``, never linked) under ``local_id`` (a key no
    local row has), to be retired at once (:func:`retire_link`). Returns the new link's id."""
    return insert_id(conn, _link.insert().values(
        **{k: link[k] for k in ("entity", "registry_id", "registry_version", "base", "is_duplicate", "revision",
                                "how")},
        local_id=local_id, linked_at=now, updated_at=now))


def retire_link(conn: Connection, link_id: int, now: dt.datetime) -> None:
    """Retire the link ``link_id``: it moves to the key ``-link_id`` (no local row has a negative id: to every flow
    it is the link of a deleted row)."""
    conn.execute(update(_link).where(_link.c.id == link_id).values(local_id=-_link.c.id, updated_at=now))


def live_membership_links(conn: Connection, registry_ids: Sequence[str]) -> set[str]:
    """Of the membership records ``registry_ids``, those linked to a live local membership. Links whose local row
    is gone (a deleted membership, a reused key's retired link) are dropped on the way: they govern nothing."""
    return live_links(conn, "membership", registry_ids)


def live_links(conn: Connection, kind: str, registry_ids: Sequence[str]) -> set[str]:
    """Of the registry records ``registry_ids`` of ``kind``, those linked to a live local row of ``kind`` (a
    membership, or a v1.1 record the registry keeps one of per pair: registry-api.md §4.7–§4.9). Links whose local
    row is gone (a deleted row, a reused key's retired link) are dropped on the way: they govern nothing."""
    taken: set[str] = set()
    mt = Base.metadata.tables[TABLES[kind]]
    live = select(mt.c.id).where(mt.c.id == _link.c.local_id).exists()
    for chunk in chunks(list(registry_ids), CHUNK):
        conn.execute(_link.delete().where(_link.c.entity == kind, _link.c.registry_id.in_(chunk), ~live))
        taken.update(conn.execute(select(_link.c.registry_id).where(
            _link.c.entity == kind, _link.c.registry_id.in_(chunk))).scalars())
    return taken


def supersede_conflicts(conn: Connection, kind: str, local_id: int, now: dt.datetime) -> None:
    """The open conflicts of ``kind`` ``local_id`` are superseded (its record ended before anyone decided)."""
    ct = Conflict.__table__
    conn.execute(update(ct).where(ct.c.entity == kind, ct.c.local_id == local_id, ct.c.state == "open")
                 .values(state="superseded", updated_at=now))


__all__ = ["drop_link", "insert_links", "insert_placeholder_link", "links_of", "live_links", "live_membership_links",
           "mark_other_store", "note_creates", "open_conflict_fields", "registry_ids_of", "retire_link",
           "sent_creates", "supersede_conflicts", "update_links", "volunteer_links"]
