"""What adopt (:mod:`regsync.flows.adopt`, design.md flow 4) keeps in regsync's own tables: the candidate pairs it
stages, the links it makes, and the outbox rows it holds for a person.

The candidates (registry record ↔ unlinked local row, with the registry's record as JSON) live in a temporary
table, ``adopt_candidate``, on the one connection adopt stages them with (``stage`` below), so that memory stays
flat however many records the registry holds. The caller commits and rolls back that connection; every other
function here runs in the caller's connection or transaction. The platform's own rows are read through
:mod:`regsync.db.platform.read`, and those of the v1.1 kinds (registry-api.md §4.6–§4.9) by their natural keys here
(:func:`unlinked_trainings_of`, :func:`unlinked_training_records_of`, :func:`unlinked_commendations_of`,
:func:`unlinked_evaluations_of`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Table, bindparam, exists, select, text

from regsync.db.models import Base, Link, Outbox
from regsync.db.session import MYSQL_CHARSET, MYSQL_COLLATION, is_mysql

#: The code of the outbox rows held by adopt (``failed``): an operator links the right record or retries.
HELD_CODE = "AMBIGUOUS_MATCH"


# ---------------------------------------------------------------------------------------------- the candidates


class Candidate(NamedTuple):
    """One staged pair, with how many pairs its registry record and its local row each have (of its kind)."""

    registry_id: str
    local_id: int
    doc: str  # the registry's record as JSON (orjson, dates and times as text)
    of_record: int  # pairs of this registry record
    of_row: int  # pairs of this local row


def create_candidates(stage: Connection) -> None:
    """Create the temporary table of candidates on ``stage`` (for the connection's life). On MySQL/MariaDB its
    text is utf8mb4 with the binary collation of regsync's tables (not the database's default, which may hold no
    character outside the BMP), and ``doc`` a ``LONGTEXT`` (``TEXT`` holds 64 KiB there)."""
    coll = f" CHARACTER SET {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}" if is_mysql(stage) else ""
    doc = "LONGTEXT" if is_mysql(stage) else "TEXT"
    stage.execute(text(f"CREATE TEMPORARY TABLE adopt_candidate (kind VARCHAR(24){coll} NOT NULL, "
                       f"registry_id VARCHAR(32){coll} NOT NULL, local_id BIGINT NOT NULL, doc {doc}{coll} NOT NULL)"))


def drop_candidates(stage: Connection) -> None:
    """Drop the temporary table of candidates, if it is there."""
    stage.execute(text("DROP TABLE IF EXISTS adopt_candidate"))


def stage_candidates(stage: Connection, kind: str, pairs: Sequence[tuple[str, int, str]]) -> None:
    """Stage candidate pairs of ``kind``: ``(registry id, local id, the registry's record as JSON)`` each, in one
    ``executemany``."""
    stage.execute(text("INSERT INTO adopt_candidate (kind, registry_id, local_id, doc) VALUES (:k, :r, :l, :d)"),
                  [{"k": kind, "r": rid, "l": lid, "d": doc} for rid, lid, doc in pairs])


def unique_candidates(stage: Connection, kind: str, registry_ids: Sequence[str]) -> list[tuple[str, int]]:
    """``(registry id, local id)`` of the registry records among ``registry_ids`` that have exactly one candidate
    (what a dry run would link), in no set order."""
    return [(rid, int(lid)) for rid, lid in stage.execute(text(
        "SELECT registry_id, MIN(local_id) FROM adopt_candidate WHERE kind = :k AND registry_id IN :r "
        "GROUP BY registry_id HAVING COUNT(*) = 1").bindparams(bindparam("r", expanding=True)),
        {"k": kind, "r": list(registry_ids)})]


def candidate_page(stage: Connection, kind: str, after: str, limit: int) -> list[Candidate]:
    """The candidates of ``kind`` whose registry id is after ``after``, by registry id then local id, at most
    ``limit`` (a registry id's candidates may be split at the page's end: the caller keeps whole ones).

    On MySQL/MariaDB the counts are read by two more queries over the page's keys: MySQL 8 cannot name a temporary
    table twice in one query (error 1137)."""
    if is_mysql(stage):
        page = list(stage.execute(text(
            "SELECT registry_id, local_id, doc FROM adopt_candidate WHERE kind = :k AND registry_id > :last "
            "ORDER BY registry_id, local_id LIMIT :n"), {"k": kind, "last": after, "n": limit}))
        if not page:
            return []
        counts: list[dict[Any, int]] = []
        for column, keys in (("registry_id", sorted({r[0] for r in page})), ("local_id", sorted({r[1] for r in page}))):
            counts.append(dict(stage.execute(text(
                f"SELECT {column}, COUNT(*) FROM adopt_candidate WHERE kind = :k AND {column} IN :keys "  # noqa: S608
                f"GROUP BY {column}").bindparams(bindparam("keys", expanding=True)), {"k": kind, "keys": keys}).all()))
        return [Candidate(rid, lid, doc, counts[0][rid], counts[1][lid]) for rid, lid, doc in page]
    return [Candidate(*r) for r in stage.execute(text(
        "SELECT c.registry_id, c.local_id, c.doc, "
        "(SELECT COUNT(*) FROM adopt_candidate x WHERE x.kind = c.kind AND x.registry_id = c.registry_id), "
        "(SELECT COUNT(*) FROM adopt_candidate y WHERE y.kind = c.kind AND y.local_id = c.local_id) "
        "FROM adopt_candidate c WHERE c.kind = :k AND c.registry_id > :last "
        "ORDER BY c.registry_id, c.local_id LIMIT :n"), {"k": kind, "last": after, "n": limit})]


def candidate_registry_ids(stage: Connection, kind: str, local_id: int) -> list[str]:
    """The registry ids of the candidates of the local row ``local_id`` of ``kind``, sorted."""
    return [r[0] for r in stage.execute(text(
        "SELECT registry_id FROM adopt_candidate WHERE kind = :k AND local_id = :l ORDER BY registry_id"),
        {"k": kind, "l": local_id})]


# ---------------------------------------------------------------------------------------------- links


def linked_registry_ids(conn: Connection, kind: str, registry_ids: Sequence[str]) -> set[str]:
    """The registry ids among ``registry_ids`` (one batch: a single ``IN``) that a link of ``kind`` names."""
    return set(conn.execute(select(Link.registry_id).where(
        Link.entity == kind, Link.registry_id.in_(list(registry_ids)))).scalars())


def linked_local_ids(conn: Connection, kind: str, registry_ids: Sequence[str]) -> list[tuple[str, int]]:
    """``(registry id, local id)`` of the links of ``kind`` of the registry ids ``registry_ids`` (one batch), each
    record's primary row first, then a person's duplicate rows, by local id."""
    return [(rid, int(lid)) for rid, lid in conn.execute(select(Link.registry_id, Link.local_id).where(
        Link.entity == kind, Link.registry_id.in_(list(registry_ids))).order_by(Link.is_duplicate, Link.local_id))]


def is_linked(conn: Connection, kind: str, local_id: int) -> bool:
    """Whether a link of ``kind`` names the local row ``local_id``."""
    return conn.execute(select(Link.id).where(Link.entity == kind, Link.local_id == local_id)).first() is not None


def insert_link(conn: Connection, kind: str, local_id: int, registry_id: str, *, registry_version: int, base: str,
                is_duplicate: bool, how: str, now: dt.datetime) -> None:
    """Link the local row ``local_id`` of ``kind`` to the registry record ``registry_id``.

    Args:
        conn: a connection in a transaction.
        kind: the record kind.
        local_id: the local row.
        registry_id: the registry record.
        registry_version: the registry record's version the link is based on.
        base: the agreed base, the canonical snapshot as JSON text.
        is_duplicate: a person's second row (not the record's primary).
        how: how the link was made (``adopted``, ``registry_owned``, ``duplicate_person``).
        now: naive UTC time (``linked_at``, ``updated_at``).
    """
    conn.execute(Link.__table__.insert().values(
        entity=kind, local_id=local_id, registry_id=registry_id, registry_version=registry_version, base=base,
        is_duplicate=is_duplicate, revision=0, how=how, linked_at=now, updated_at=now))


# ---------------------------------------------------------------------------------------------- v1.1 natural keys
# The unlinked rows of the v1.1 kinds whose references are among a batch's (design.md, flow 4): one query per batch
# of registry records; the matching itself is the caller's (regsync.flows.adopt).


def _unlinked_rows(t: Table, kind: str) -> ColumnElement[bool]:
    """A row of ``t`` (the table of ``kind``) that no link of ``kind`` names."""
    return ~exists().where(Link.entity == kind, Link.local_id == t.c.id)


def unlinked_trainings_of(conn: Connection, org_ids: Sequence[int]) -> list[tuple[int, int, str, Any]]:
    """The unlinked trainings of the local orgs ``org_ids``.

    Returns:
        ``(local id, org_id, title as stored, starts_at)`` of each (``starts_at`` naive UTC as the driver gives it:
        a datetime, or text on SQLite), in no set order.
    """
    t = Base.metadata.tables["training"]
    return [(int(i), int(o), title, starts) for i, o, title, starts in conn.execute(
        select(t.c.id, t.c.org_id, t.c.title, t.c.starts_at).where(
            t.c.org_id.in_(list(org_ids)), _unlinked_rows(t, "training")))]


def unlinked_training_records_of(conn: Connection, training_ids: Sequence[int], volunteer_ids: Sequence[int]
                                 ) -> list[tuple[int, int, int]]:
    """The unlinked ``ACCEPTED`` training records of any of the local trainings ``training_ids`` and any of the local
    volunteers ``volunteer_ids`` (registry-api.md §4.7: one ACCEPTED record per training and volunteer).

    Returns:
        ``(local id, training_id, volunteer_id)`` of each, in no set order.
    """
    t = Base.metadata.tables["training_record"]
    return [(int(i), int(tr), int(v)) for i, tr, v in conn.execute(
        select(t.c.id, t.c.training_id, t.c.volunteer_id).where(
            t.c.training_id.in_(list(training_ids)), t.c.volunteer_id.in_(list(volunteer_ids)),
            t.c.status == "ACCEPTED", _unlinked_rows(t, "training_record")))]


def unlinked_commendations_of(conn: Connection, volunteer_ids: Sequence[int], org_ids: Sequence[int]
                              ) -> list[dict[str, Any]]:
    """The unlinked ``ACTIVE`` commendations of any of the local volunteers ``volunteer_ids`` or orgs ``org_ids``
    (registry-api.md §4.8: one ACTIVE per subject and title and date, or per subject, scheme and year).

    Returns:
        ``{"id", "volunteer_id", "org_id", "title", "scheme", "year", "awarded_on"}`` of each, in no set order.
    """
    t = Base.metadata.tables["commendation"]
    cols = (t.c.id, t.c.volunteer_id, t.c.org_id, t.c.title, t.c.scheme, t.c.year, t.c.awarded_on)
    out: list[dict[str, Any]] = []
    for column, ids in ((t.c.volunteer_id, volunteer_ids), (t.c.org_id, org_ids)):
        if ids:
            out += [dict(r) for r in conn.execute(select(*cols).where(
                column.in_(list(ids)), t.c.status == "ACTIVE", _unlinked_rows(t, "commendation"))).mappings()]
    return out


def unlinked_evaluations_of(conn: Connection, activity_ids: Sequence[int], volunteer_ids: Sequence[int]
                            ) -> list[tuple[int, int, int]]:
    """The unlinked ``ACTIVE`` evaluations of any of the local activities ``activity_ids`` and any of the local
    volunteers ``volunteer_ids`` (registry-api.md §4.9: one ACTIVE per activity and volunteer).

    Returns:
        ``(local id, activity_id, volunteer_id)`` of each, in no set order.
    """
    t = Base.metadata.tables["evaluation"]
    return [(int(i), int(a), int(v)) for i, a, v in conn.execute(
        select(t.c.id, t.c.activity_id, t.c.volunteer_id).where(
            t.c.activity_id.in_(list(activity_ids)), t.c.volunteer_id.in_(list(volunteer_ids)),
            t.c.status == "ACTIVE", _unlinked_rows(t, "evaluation")))]


# ---------------------------------------------------------------------------------------------- holds


def hold_rows(conn: Connection, kind: str, local_id: int, *, error: str, now: dt.datetime) -> None:
    """Hold the waiting outbox rows (``pending``, ``deferred``, ``blocked``) of the local row ``local_id`` of
    ``kind`` for a person: ``failed`` with :data:`HELD_CODE` and ``error`` (masked already), done at ``now`` (naive
    UTC), so that the relay creates no second record."""
    conn.execute(Outbox.__table__.update().where(
        Outbox.entity == kind, Outbox.local_id == local_id,
        Outbox.state.in_(("pending", "deferred", "blocked"))).values(
        state="failed", last_code=HELD_CODE, done_at=now, last_error=error))


def held_records(conn: Connection) -> Iterator[tuple[str, int]]:
    """``(entity, local id)`` of the records adopt holds (outbox rows ``failed`` with :data:`HELD_CODE`), each
    once, as the rows are read."""
    yield from ((e, int(i)) for e, i in conn.execute(select(Outbox.entity, Outbox.local_id).where(
        Outbox.last_code == HELD_CODE, Outbox.state == "failed").distinct()))


__all__ = [
    "HELD_CODE",
    "Candidate",
    "candidate_page",
    "candidate_registry_ids",
    "create_candidates",
    "drop_candidates",
    "held_records",
    "hold_rows",
    "insert_link",
    "is_linked",
    "linked_local_ids",
    "linked_registry_ids",
    "stage_candidates",
    "unique_candidates",
    "unlinked_commendations_of",
    "unlinked_evaluations_of",
    "unlinked_training_records_of",
    "unlinked_trainings_of",
]
