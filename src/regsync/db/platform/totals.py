"""Sums over the platform's records that a reconcile reports per person: people held by two rows, and accepted hours.

- :func:`shared_id_numbers`: the normalized ID numbers held by two or more volunteer rows (``duplicate_person``);
- :func:`local_hours_by_person`: a person's ACCEPTED hours (all the person's rows, through their links), and the class
  hours of their ACCEPTED training records (registry-api.md v1.1), in the registry's byte order of the volunteer's
  registry id, to be merge-joined with the registry's;
- :func:`linked_primary_volunteers`: where those people live, and their primary row;
- :func:`org_hours`: ACCEPTED hours per org region, type and level (the report's hours by city and org line);
- :func:`unlinked_volunteer_hours`: ACCEPTED hours of volunteers the registry does not know (no link), per city:
  the platform's hours the per-person comparison cannot count.

Hours are hundredths of an hour (the ``hours`` column), summed by the database: memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, bindparam, text

from regsync.db.own import names, own_format

#: Normalized ID numbers per page of :func:`shared_id_numbers`.
SHARED_PAGE = 500


@dataclass(frozen=True, slots=True)
class SharedIdNumber:
    """One person's volunteer rows, when there are two or more.

    Attributes:
        id_type: the rows' ``id_type``.
        id_number_norm: the normalized ID number they share (GB 11643-1999).
        local_ids: the rows' local ids, oldest registration first (the person's primary first).
        registry_ids: the registry id each row is linked to (``None``: unlinked), in the order of ``local_ids``.
        region_code: the first row's region code (GB/T 2260), or ``None``.
    """

    id_type: str
    id_number_norm: str
    local_ids: list[int]
    registry_ids: list[str | None]
    region_code: str | None


def shared_id_numbers(engine: Engine, region: str | None, page: int = SHARED_PAGE) -> Iterator[SharedIdNumber]:
    """Every normalized ID number that two or more volunteer rows hold, in ascending number (an SQL aggregate,
    streamed in keyset pages of ``page`` numbers, each page read in its own connection).

    Args:
        engine: the local store.
        region: a GB/T 2260 prefix: only rows whose region code starts with it are counted; ``None`` for all.
        page: numbers per page.
    """
    last = ""
    reg = "AND region_code LIKE :region " if region else ""
    while True:
        with engine.connect() as conn:
            n = names(conn)
            rows = conn.execute(text(
                f"SELECT id_type, id_number_norm, COUNT(*) AS n FROM {n.volunteer} "  # noqa: S608 — names
                f"WHERE id_number_norm IS NOT NULL AND id_number_norm > :last {reg}"
                "GROUP BY id_type, id_number_norm HAVING COUNT(*) > 1 ORDER BY id_number_norm LIMIT :page"),
                {"last": last, "page": page, "region": (region or "") + "%"}).all()
            for id_type, norm, _n in rows:
                members = conn.execute(text(
                    f"SELECT v.id, v.region_code, l.registry_id, l.is_duplicate FROM {n.volunteer} v "  # noqa: S608
                    f"LEFT JOIN {n.link} l ON l.entity = 'volunteer' AND l.local_id = v.id "
                    "WHERE v.id_type = :t AND v.id_number_norm = :n ORDER BY v.registered_at, v.id"),
                    {"t": id_type, "n": norm}).all()
                yield SharedIdNumber(id_type, norm, [int(m.id) for m in members],
                                     [m.registry_id for m in members], members[0].region_code)
        if len(rows) < page:
            return
        last = rows[-1][1]


def local_hours_by_person(conn: Connection, region: str | None, *, c_order: bool) -> CursorResult[Any]:
    """Each linked person's ACCEPTED hours in the local records, and their ACCEPTED training records' class hours,
    in ascending registry id of the volunteer.

    Args:
        conn: a connection to the local store (the result streams from it; close it when done).
        region: a GB/T 2260 prefix: only the records of volunteers whose region code starts with it; ``None`` for
            all.
        c_order: the database orders text by bytes (:func:`regsync.db.platform.scan.uses_c_order`); otherwise
            the order is ``COLLATE "C"`` (the registry's byte order).

    Returns:
        Rows of ``rid`` (the volunteer's registry id; a person's rows linked to one id are one row), ``h`` (hours,
        hundredths), ``region`` (the least of the rows' region codes), ``spec`` (the hours given to specialized
        orgs, hundredths) and ``th`` (the class hours of the person's ACCEPTED training records, hundredths; a
        person with training records and no service hours is a row too).
    """
    reg = ("AND v.region_code LIKE :region " if region else "")
    n = names(conn)
    sql = (  # noqa: S608 — table names
        "SELECT rid, SUM(h) AS h, MIN(region) AS region, SUM(spec) AS spec, SUM(th) AS th FROM ("
        "SELECT l.registry_id AS rid, s.hours AS h, v.region_code AS region, "
        "CASE WHEN o.org_type = 'SPECIALIZED' THEN s.hours ELSE 0 END AS spec, 0 AS th "
        f"FROM {n.service_record} s "
        f"JOIN {n.link} l ON l.entity = 'volunteer' AND l.local_id = s.volunteer_id "
        f"JOIN {n.volunteer} v ON v.id = s.volunteer_id "
        f"LEFT JOIN {n.organization} o ON o.id = s.org_id "
        f"WHERE s.status = 'ACCEPTED' {reg}"
        "UNION ALL SELECT l.registry_id, 0, v.region_code, 0, t.class_hours "
        f"FROM {n.training_record} t "
        f"JOIN {n.link} l ON l.entity = 'volunteer' AND l.local_id = t.volunteer_id "
        f"JOIN {n.volunteer} v ON v.id = t.volunteer_id "
        f"WHERE t.status = 'ACCEPTED' {reg}) x GROUP BY rid ORDER BY rid")
    if not c_order:
        sql = sql.replace("ORDER BY rid", 'ORDER BY rid COLLATE "C"')
    return conn.execute(text(sql), {"region": (region or "") + "%"})


_LINKED_PRIMARY = (
    "SELECT l.registry_id, v.region_code, v.id FROM {link} l JOIN {volunteer} v ON v.id = l.local_id "
    "WHERE l.entity = 'volunteer' AND l.registry_id IN :ids AND l.is_duplicate = :f")


def linked_primary_volunteers(conn: Connection, registry_ids: Sequence[str]) -> dict[str, tuple[str | None, int]]:
    """The primary volunteer rows (not a person's duplicate row) linked to these registry ids (one query: pass
    at most a few hundred).

    Returns:
        registry id → (the row's region code, its local id), for the ids linked to an existing row.
    """
    stmt = text(own_format(conn, _LINKED_PRIMARY)).bindparams(bindparam("ids", expanding=True))
    return {r[0]: (r[1], int(r[2])) for r in conn.execute(stmt, {"ids": list(registry_ids), "f": False})}


def org_hours(conn: Connection, region: str | None) -> Iterator[tuple[str | None, str | None, str | None, int]]:
    """ACCEPTED hours of the local service records per org region code, org type and level.

    Args:
        conn: a connection to the local store.
        region: a GB/T 2260 prefix: only orgs whose region code starts with it; ``None`` for all.

    Yields:
        ``(region code, org type, level, hours in hundredths)``.
    """
    reg = "AND o.region_code LIKE :region " if region else ""
    n = names(conn)
    for region_code, org_type, level, h in conn.execute(text(
            f"SELECT o.region_code, o.org_type, o.level, SUM(s.hours) FROM {n.service_record} s "  # noqa: S608
            f"JOIN {n.organization} o ON o.id = s.org_id WHERE s.status = 'ACCEPTED' {reg}"
            "GROUP BY o.region_code, o.org_type, o.level"), {"region": (region or "") + "%"}):
        yield region_code, org_type, level, int(h or 0)


def unlinked_volunteer_hours(conn: Connection, region: str | None) -> Iterator[tuple[str | None, int, int, int]]:
    """ACCEPTED hours of the local service records whose volunteer row is linked to no registry volunteer (a
    volunteer never pushed, or refused): hours the registry does not have at all, and that
    :func:`local_hours_by_person` (linked persons only) leaves out.

    Args:
        conn: a connection to the local store.
        region: a GB/T 2260 prefix: only volunteers whose region code starts with it; ``None`` for all.

    Yields:
        ``(volunteer region code, volunteer rows, service records, hours in hundredths)`` per region code.
    """
    reg = "AND v.region_code LIKE :region " if region else ""
    n = names(conn)
    for region_code, vols, recs, h in conn.execute(text(
            f"SELECT v.region_code, COUNT(DISTINCT s.volunteer_id), COUNT(*), SUM(s.hours) "  # noqa: S608 — names
            f"FROM {n.service_record} s JOIN {n.volunteer} v ON v.id = s.volunteer_id "
            f"WHERE s.status = 'ACCEPTED' {reg}AND NOT EXISTS (SELECT 1 FROM {n.link} l "
            "WHERE l.entity = 'volunteer' AND l.local_id = s.volunteer_id) GROUP BY v.region_code"),
            {"region": (region or "") + "%"}):
        yield region_code, int(vols), int(recs), int(h or 0)


__all__ = [
    "SHARED_PAGE",
    "SharedIdNumber",
    "linked_primary_volunteers",
    "local_hours_by_person",
    "org_hours",
    "shared_id_numbers",
    "unlinked_volunteer_hours",
]
