"""Reading the platform's records: rows by local id, and the unlinked rows of a record by its natural key (or, for
adopt, of many records at once).

"Unlinked" is a row no ``link`` names yet (the registry's record of it is not known here). Natural keys
(design.md, "Data model"): a volunteer's ``idType`` and normalized ``idNumber`` (GB 11643-1999), an org's USCC
(GB 32100-2015), a membership's pair (org, volunteer).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, TextClause, bindparam, select, text

from regsync.db.models import TABLE_ENTITY, TABLES, Base
from regsync.db.outbox import as_dicts
from regsync.db.own import names, own_format, own_sql
from regsync.db.query import CHUNK, chunks, in_values
from regsync.domain.masking import mask_text
from regsync.domain.normalize import normalize_uscc, try_normalize_id_number

log = structlog.get_logger(__name__)


def load_records(conn: Connection, kind: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The local rows of ``kind`` whose ids are among ``ids`` (those that exist), as dicts of column → value
    (``id`` included), by id."""
    table = Base.metadata.tables[TABLES[kind]]
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted(set(ids)), CHUNK):
        for r in conn.execute(select(table).where(in_values(conn, table.c.id, list(chunk)))).mappings():
            out[r["id"]] = dict(r)
    return out


def id_number_variants(norm: str) -> list[str]:
    """Raw forms a platform row may hold of the normalized ID number ``norm`` (itself, a lowercase ``x``, the old
    15 digits), sorted."""
    out = {norm}
    if norm.endswith("X"):
        out.add(norm[:-1] + "x")
    if len(norm) == 18 and norm[6:8] == "19":
        out.add(norm[:6] + norm[8:17])
    return sorted(out)


def _unlinked_volunteers(conn: Connection) -> TextClause:
    n = names(conn)
    return text(
        f"SELECT v.id, v.id_type, v.id_number FROM {n.volunteer} v "  # noqa: S608 — table names
        "WHERE (v.id_number_norm IN :n OR v.id_number IN :raw) "
        f"AND NOT EXISTS (SELECT 1 FROM {n.link} l WHERE l.entity = 'volunteer' AND l.local_id = v.id) "
        "ORDER BY v.registered_at, v.id").bindparams(bindparam("n", expanding=True), bindparam("raw", expanding=True))


def unlinked_volunteers_by_id_number(conn: Connection, wanted: dict[str, str]
                                     ) -> dict[tuple[str, str], list[tuple[int, str, str]]]:
    """The unlinked volunteer rows of many people at once (a page's volunteers the store has no link for).

    Args:
        conn: a connection to the local store.
        wanted: normalized ID number → its ``idType``.

    Returns:
        (idType, normalized number) → ``(local id, id_type, id_number as stored)`` of the unlinked rows whose
        number normalizes to it under that type, oldest registration first (the person's primary first). One
        query per :data:`~regsync.db.query.CHUNK` numbers, by the indexed normalized and raw numbers.
    """
    out: dict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
    stmt = _unlinked_volunteers(conn)
    for chunk in chunks(sorted(wanted), CHUNK):
        raw = sorted({v for n in chunk for v in id_number_variants(n)})
        for vid, id_type, number in conn.execute(stmt, {"n": list(chunk), "raw": raw}):
            norm = try_normalize_id_number(id_type, number)
            if norm in wanted and id_type == wanted[norm]:
                out[(id_type, norm)].append((int(vid), id_type, number))
    return out


def unlinked_volunteers_with_id_number(conn: Connection, id_type: str, norm: str) -> list[int]:
    """The local ids of the unlinked volunteer rows of one person (``id_type`` and normalized number ``norm``),
    oldest registration first (the person's primary first)."""
    n = names(conn)
    rows = conn.execute(text(
        f"SELECT v.id, v.id_type, v.id_number, v.registered_at FROM {n.volunteer} v "  # noqa: S608 — table names
        "WHERE v.id_type = :t AND (v.id_number_norm = :n OR v.id_number IN :raw) "
        f"AND NOT EXISTS (SELECT 1 FROM {n.link} l WHERE l.entity = 'volunteer' AND l.local_id = v.id) "
        "ORDER BY v.registered_at, v.id").bindparams(bindparam("raw", expanding=True)),
        {"t": id_type, "n": norm, "raw": id_number_variants(norm)}).all()
    return [int(vid) for vid, number_type, number, _ in rows if try_normalize_id_number(number_type, number) == norm]


def unlinked_orgs_with_uscc(conn: Connection, uscc: str) -> list[int]:
    """The local ids of the unlinked orgs (not dissolved) whose USCC normalizes to ``uscc`` (normalized), by id."""
    n = names(conn)
    return [int(oid) for oid, raw in conn.execute(text(
        f"SELECT o.id, o.uscc FROM {n.organization} o WHERE o.uscc IS NOT NULL AND o.status <> 'DISSOLVED' "  # noqa: S608
        f"AND upper(o.uscc) = :u AND NOT EXISTS (SELECT 1 FROM {n.link} l WHERE l.entity = 'org' "
        "AND l.local_id = o.id) ORDER BY o.id"), {"u": uscc}).all() if normalize_uscc(raw) == uscc]


def unlinked_membership(conn: Connection, org_id: int, volunteer_id: int) -> int | None:
    """The local id of the unlinked membership of the pair (local org id, local volunteer id), or ``None``."""
    n = names(conn)
    found = conn.execute(text(
        f"SELECT m.id FROM {n.membership} m WHERE m.org_id = :o AND m.volunteer_id = :v AND NOT EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {n.link} l WHERE l.entity = 'membership' AND l.local_id = m.id)"),
        {"o": org_id, "v": volunteer_id}).scalar()
    return None if found is None else int(found)


# ---------------------------------------------------------------------------------------------- one record


def load_record(conn: Connection, kind: str, local_id: int) -> dict[str, Any]:
    """The local row of ``kind`` with id ``local_id``, as a dict of column → value (``id`` included).

    Raises:
        sqlalchemy.exc.NoResultFound: no row of ``kind`` has that id.
    """
    table = Base.metadata.tables[TABLES[kind]]
    return dict(conn.execute(select(table).where(table.c.id == local_id)).mappings().one())


def find_record(conn: Connection, kind: str, local_id: int) -> dict[str, Any] | None:
    """The local row of ``kind`` with id ``local_id`` as :func:`load_record` gives it, or ``None`` when there is
    none."""
    table = Base.metadata.tables[TABLES[kind]]
    row = conn.execute(select(table).where(table.c.id == local_id)).mappings().first()
    return None if row is None else dict(row)


def is_date_field(kind: str, name: str) -> bool:
    """Whether the field ``name`` (its column) of a local row of ``kind`` holds a date (``datetime.date``).

    Raises:
        KeyError: ``kind`` has no such field.
    """
    return Base.metadata.tables[TABLES[kind]].c[name].type.python_type is dt.date


def person_rows(conn: Connection, volunteer_id: int) -> list[int]:
    """The local ids of the volunteer rows of the person of row ``volunteer_id`` (the same ``id_type`` and
    normalized ID number: a person's primary row and its duplicates), the oldest registration first; ``[
    volunteer_id]`` when there is no such row."""
    rows = conn.execute(text(own_format(
        conn, "SELECT v.id FROM {volunteer} v JOIN {volunteer} p ON p.id = :p AND v.id_type = p.id_type "
        "AND v.id_number_norm = p.id_number_norm ORDER BY v.registered_at, v.id")), {"p": volunteer_id}
    ).scalars().all()
    return [int(r) for r in rows] or [volunteer_id]


# ---------------------------------------------------------------------------------------------- adopt's matching
# The unlinked rows whose natural keys are among many registry records' (design.md, flow 4, "the first day"): one
# query per batch of records, the matching itself is the caller's.

def _unlinked(conn: Connection, kind: str, row: str = "t") -> str:
    """A row ``row`` of ``kind``'s table that no link of that kind names (a condition)."""
    return (f"NOT EXISTS (SELECT 1 FROM {own_sql(conn, 'link')} l WHERE l.entity = '{kind}' "
            f"AND l.local_id = {row}.id)")


def _in(sql: str, *names: str) -> Any:
    """``text(sql)`` whose parameters ``names`` each take a list (``IN :name``)."""
    return text(sql).bindparams(*(bindparam(n, expanding=True) for n in names))


def unlinked_volunteers_with_norms(conn: Connection, norms: Sequence[str]) -> list[tuple[int, str, str]]:
    """The unlinked volunteer rows whose normalized ID number is among ``norms`` (any ``id_type``).

    Returns:
        ``(local id, id_type, id_number_norm)`` of each, the oldest registration first (a person's primary first).
    """
    return [(int(vid), id_type, norm) for vid, id_type, norm in conn.execute(_in(
        f"SELECT t.id, t.id_type, t.id_number_norm FROM {own_sql(conn, 'volunteer')} t "  # noqa: S608
        "WHERE t.id_number_norm IN :n AND " + _unlinked(conn, "volunteer") + " ORDER BY t.registered_at, t.id", "n"),
        {"n": list(norms)})]


def unlinked_orgs_with_usccs(conn: Connection, usccs: Sequence[str]) -> list[tuple[int, str]]:
    """The unlinked orgs whose USCC, upper-cased, is among ``usccs`` (normalized), dissolved ones included.

    Returns:
        ``(local id, uscc as stored)`` of each, in no set order.
    """
    return [(int(oid), raw) for oid, raw in conn.execute(_in(
        f"SELECT t.id, t.uscc FROM {own_sql(conn, 'organization')} t WHERE upper(t.uscc) IN :u AND "  # noqa: S608
        + _unlinked(conn, "org"), "u"), {"u": list(usccs)})]


def unlinked_orgs_in_regions(conn: Connection, regions: Sequence[str], levels: Sequence[str]
                             ) -> list[tuple[int, str, str, str]]:
    """The unlinked orgs of the region codes ``regions`` and the levels ``levels``.

    Returns:
        ``(local id, level, name as stored, region_code)`` of each, in no set order.
    """
    return [(int(oid), level, name, region) for oid, level, name, region in conn.execute(_in(
        f"SELECT t.id, t.level, t.name, t.region_code FROM {own_sql(conn, 'organization')} t "  # noqa: S608
        "WHERE t.region_code IN :g AND t.level IN :lv AND " + _unlinked(conn, "org"), "g", "lv"),
        {"g": list(regions), "lv": list(levels)})]


def unlinked_memberships_of(conn: Connection, org_ids: Sequence[int], volunteer_ids: Sequence[int]
                            ) -> list[tuple[int, int, int]]:
    """The unlinked memberships of any of the local orgs ``org_ids`` and any of the local volunteers
    ``volunteer_ids``.

    Returns:
        ``(local id, org_id, volunteer_id)`` of each, in no set order.
    """
    return [(int(mid), int(o), int(v)) for mid, o, v in conn.execute(_in(
        f"SELECT t.id, t.org_id, t.volunteer_id FROM {own_sql(conn, 'membership')} t "  # noqa: S608
        "WHERE t.org_id IN :o AND t.volunteer_id IN :v AND " + _unlinked(conn, "membership"), "o", "v"),
        {"o": list(org_ids), "v": list(volunteer_ids)})]


def unlinked_activities_of(conn: Connection, org_ids: Sequence[int]) -> list[tuple[int, int, str, Any]]:
    """The unlinked activities of the local orgs ``org_ids``.

    Returns:
        ``(local id, org_id, title as stored, starts_at)`` of each (``starts_at`` as the driver gives it: a
        datetime, or text on SQLite), in no set order.
    """
    t = Base.metadata.tables["activity"]
    return [(int(aid), int(o), title, starts) for aid, o, title, starts in conn.execute(
        select(t.c.id, t.c.org_id, t.c.title, t.c.starts_at).where(
            t.c.org_id.in_(list(org_ids)), text(_unlinked(conn, "activity", own_sql(conn, "activity")))))]


def unlinked_service_records_of(conn: Connection, activity_ids: Sequence[int], volunteer_ids: Sequence[int]
                                ) -> list[tuple[int, int, int, Any]]:
    """The unlinked ``ACCEPTED`` service records of any of the local activities ``activity_ids`` and any of the
    local volunteers ``volunteer_ids``.

    Returns:
        ``(local id, volunteer_id, activity_id, starts_at)`` of each (``starts_at`` as the driver gives it), in no
        set order.
    """
    t = Base.metadata.tables["service_record"]
    return [(int(sid), int(v), int(a), starts) for sid, v, a, starts in conn.execute(
        select(t.c.id, t.c.volunteer_id, t.c.activity_id, t.c.starts_at).where(
            t.c.activity_id.in_(list(activity_ids)), t.c.volunteer_id.in_(list(volunteer_ids)),
            t.c.status == "ACCEPTED",
            text(_unlinked(conn, "service_record", own_sql(conn, "service_record")))))]


def count_unlinked(conn: Connection, kind: str) -> int:
    """How many local rows of ``kind`` no link names (``regsync sync`` creates them in the registry)."""
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {own_sql(conn, TABLES[kind])} t WHERE "  # noqa: S608
                                 + _unlinked(conn, kind))).scalar_one())


__all__ = [
    "count_unlinked",
    "find_record",
    "id_number_variants",
    "is_date_field",
    "load_record",
    "load_records",
    "person_rows",
    "unlinked_activities_of",
    "unlinked_membership",
    "unlinked_memberships_of",
    "unlinked_orgs_in_regions",
    "unlinked_orgs_with_uscc",
    "unlinked_orgs_with_usccs",
    "unlinked_service_records_of",
    "unlinked_volunteers_by_id_number",
    "unlinked_volunteers_with_id_number",
    "unlinked_volunteers_with_norms",
]


def read_rows(conn: Connection, kind: str, ids: Sequence[int]) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """The live rows of ``kind`` with these local ids (those that exist), for the relay, tolerant of bad values.

    A chunk holding a value its column's type cannot hold (e.g. ``'1990/01/01'`` in a date column, written by
    another program) is read again row by row, so that only the bad rows fail.

    Returns:
        ``(rows, unreadable)``: id → the row (column → value); id → why it cannot be read, for an operator
        (:func:`unreadable_reason`).
    """
    table = Base.metadata.tables[TABLES[kind]]
    rows: dict[int, dict[str, Any]] = {}
    unreadable: dict[int, str] = {}
    for chunk in chunks(list(ids), CHUNK):
        try:
            rows.update((r["id"], r) for r in as_dicts(conn.execute(select(table).where(
                in_values(conn, table.c.id, chunk)))))
        except (ValueError, TypeError) as exc:
            log.warning("unreadable local rows; reading one by one", kind=kind, error=mask_text(str(exc)))
            for lid in chunk:
                try:
                    r = conn.execute(select(table).where(table.c.id == lid)).mappings().one_or_none()
                except (ValueError, TypeError) as row_exc:
                    unreadable[lid] = unreadable_reason(conn, table, lid, row_exc)
                    continue
                if r is not None:
                    rows[r["id"]] = dict(r)
    return rows, unreadable


def unreadable_reason(conn: Connection, table: Any, local_id: int, exc: Exception) -> str:
    """Name the columns of the local row ``local_id`` of ``table`` whose stored values their types cannot hold
    (values masked, at most 40 characters each), for an operator; ``exc`` is the error reading it raised."""
    bad = []
    raw = conn.execute(select(*[text(f'"{c.name}"') for c in table.columns]).select_from(table)
                       .where(table.c.id == local_id)).one()
    for col, value in zip(table.columns, raw, strict=True):
        try:
            processor = col.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
            if processor is not None and value is not None:
                processor(value)
        except (ValueError, TypeError):
            bad.append(f"{col.name}={mask_text(repr(value))[:40]}")
    return (f"{TABLE_ENTITY[table.name]} {local_id}: values its columns cannot hold: " + ", ".join(bad)
            if bad else f"{TABLE_ENTITY[table.name]} {local_id}: unreadable ({mask_text(str(exc))[:200]})")


def volunteers_by_id_number_norm(conn: Connection, norms: Sequence[str]) -> list[tuple[int, str, str, Any]]:
    """Every volunteer row whose normalized ID number is among ``norms``: ``(id, id_type, id_number_norm,
    registered_at)`` (one person registered twice has two)."""
    return [tuple(r) for r in conn.execute(text(own_format(
        conn, "SELECT id, id_type, id_number_norm, registered_at FROM {volunteer} WHERE id_number_norm IN :n"))
        .bindparams(bindparam("n", expanding=True)), {"n": list(norms)}).all()]

