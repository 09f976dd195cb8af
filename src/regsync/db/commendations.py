"""The SQL of the annual commendation workflow (年度嘉许, :mod:`regsync.flows.commendations`, registry-api.md §4.8).

**Proposing.** The registry's side is staged as its exports stream past, in temporary tables of one connection
(memory stays flat however many records the province has):

- ``cm_reg_figure`` (subject ``V``/``O``, the subject's registry id, amount): one row per ACCEPTED service record of
  the year: its volunteer with the record's hours (hundredths), its org and its station (when another) with 1;
- ``cm_reg_award`` (subject, registry id, tier): the ACTIVE commendations of the scheme and year in the registry.

:func:`build_candidates` then sums both sides once into ``cm_candidate``: every local subject whose registry figure
or platform figure reaches the lowest tier: linked persons (their primary row; the hours of all the person's rows,
through their links), volunteers the registry does not know (no link), and orgs (the records whose org is the org
or whose team's station is the org). :func:`candidate_page` reads it in keyset pages with each subject's name,
ID number (for masking), region and the registry's award. Local reads go through the reference tables' names,
which on a mapped platform are the views over the platform's own tables (:mod:`regsync.db.mapping.ddl`).

**Approving and status.** :func:`local_awards` (the ACTIVE commendations of the scheme and year a subject has on the
platform), :func:`scheme_commendations` (the year's scheme commendations with their link and latest outbox row).

Figures: hours in hundredths of an hour; records as a count. Years are calendar years of ``service_date`` (a
date, +08:00).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, text

from regsync.db.models import TRANSFERRED_OUT
from regsync.db.own import names
from regsync.db.query import CHUNK, chunks
from regsync.db.session import MYSQL_CHARSET, MYSQL_COLLATION, is_mysql

_TEMP = ("cm_reg_figure", "cm_reg_award", "cm_candidate")


def year_bounds(year: int) -> dict[str, dt.date]:
    """The bind parameters ``first`` and ``last``: the first and last day of ``year``."""
    return {"first": dt.date(year, 1, 1), "last": dt.date(year, 12, 31)}


def open_staging(conn: Connection) -> None:
    """Create the temporary tables of the module docstring on ``conn``, and commit. They live as long as the
    connection, or until :func:`drop_staging`; on MySQL/MariaDB their text has regsync's collation, so that joins
    with the link table compare alike."""
    coll = f" CHARACTER SET {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}" if is_mysql(conn) else ""
    conn.execute(text(f"CREATE TEMPORARY TABLE cm_reg_figure (subject CHAR(1){coll} NOT NULL, "
                      f"rid VARCHAR(32){coll} NOT NULL, amount INTEGER NOT NULL)"))
    conn.execute(text(f"CREATE TEMPORARY TABLE cm_reg_award (subject CHAR(1){coll} NOT NULL, "
                      f"rid VARCHAR(32){coll} NOT NULL, tier VARCHAR(24){coll})"))
    conn.execute(text(f"CREATE TEMPORARY TABLE cm_candidate (subject CHAR(1){coll} NOT NULL, local_id BIGINT NOT NULL, "
                      f"rid VARCHAR(32){coll}, reg_amount INTEGER NOT NULL, loc_amount INTEGER NOT NULL)"))
    conn.commit()


def drop_staging(conn: Connection) -> None:
    """Drop the tables of :func:`open_staging` (after ending any transaction on ``conn``), and commit."""
    conn.rollback()
    for name in _TEMP:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    conn.commit()


def stage_figures(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Stage registry figures, and commit.

    Args:
        conn: the connection holding the staging tables.
        rows: ``{"s": "V" or "O", "r": the subject's registry id, "a": hours in hundredths or 1 record}`` (not
            empty).
    """
    conn.execute(text("INSERT INTO cm_reg_figure (subject, rid, amount) VALUES (:s, :r, :a)"), list(rows))
    conn.commit()


def stage_awards(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Stage the registry's ACTIVE commendations of the scheme and year, and commit.

    Args:
        conn: the connection holding the staging tables.
        rows: ``{"s": "V" or "O", "r": the subject's registry id, "t": the tier}`` (not empty).
    """
    conn.execute(text("INSERT INTO cm_reg_award (subject, rid, tier) VALUES (:s, :r, :t)"), list(rows))
    conn.commit()


def build_candidates(conn: Connection, year: int, *, low_hours: int, low_records: int) -> None:
    """Fill ``cm_candidate`` (module docstring), and commit: the subjects whose registry or platform figure of
    ``year`` reaches ``low_hours`` (volunteers, hundredths) or ``low_records`` (orgs).

    A person's platform figure is the ACCEPTED hours of all the local rows linked to the person's registry id;
    the candidate is the person's primary row. Volunteers who transferred out are left out (the registry refuses
    another province's subject, §4.8).
    """
    n = names(conn)
    p = {**year_bounds(year), "vlow": low_hours, "olow": low_records, "f": False, "out": TRANSFERRED_OUT}
    in_year = "s.status = 'ACCEPTED' AND s.service_date >= :first AND s.service_date <= :last"
    conn.execute(text(  # noqa: S608 — table names
        "INSERT INTO cm_candidate (subject, local_id, rid, reg_amount, loc_amount) "
        "SELECT 'V', l.local_id, l.registry_id, COALESCE(r.amount, 0), COALESCE(x.amount, 0) "
        f"FROM {n.link} l "
        "LEFT JOIN (SELECT rid, SUM(amount) AS amount FROM cm_reg_figure WHERE subject = 'V' GROUP BY rid) r "
        "ON r.rid = l.registry_id "
        f"LEFT JOIN (SELECT l2.registry_id AS rid, SUM(s.hours) AS amount FROM {n.service_record} s "
        f"JOIN {n.link} l2 ON l2.entity = 'volunteer' AND l2.local_id = s.volunteer_id "
        f"WHERE {in_year} GROUP BY l2.registry_id) x ON x.rid = l.registry_id "
        "WHERE l.entity = 'volunteer' AND l.is_duplicate = :f AND l.how <> :out "
        "AND (COALESCE(r.amount, 0) >= :vlow OR COALESCE(x.amount, 0) >= :vlow)"), p)
    conn.execute(text(  # noqa: S608 — table names
        "INSERT INTO cm_candidate (subject, local_id, rid, reg_amount, loc_amount) "
        "SELECT 'V', s.volunteer_id, NULL, 0, SUM(s.hours) "
        f"FROM {n.service_record} s LEFT JOIN {n.link} l ON l.entity = 'volunteer' AND l.local_id = s.volunteer_id "
        f"WHERE l.id IS NULL AND {in_year} GROUP BY s.volunteer_id HAVING SUM(s.hours) >= :vlow"), p)
    conn.execute(text(  # noqa: S608 — table names
        "INSERT INTO cm_candidate (subject, local_id, rid, reg_amount, loc_amount) "
        "SELECT 'O', o.id, l.registry_id, COALESCE(r.amount, 0), COALESCE(x.amount, 0) "
        f"FROM {n.organization} o LEFT JOIN {n.link} l ON l.entity = 'org' AND l.local_id = o.id "
        "LEFT JOIN (SELECT rid, SUM(amount) AS amount FROM cm_reg_figure WHERE subject = 'O' GROUP BY rid) r "
        "ON r.rid = l.registry_id "
        "LEFT JOIN (SELECT u.oid, COUNT(*) AS amount FROM ("
        f"SELECT s.org_id AS oid FROM {n.service_record} s WHERE {in_year} "
        f"UNION ALL SELECT t.station_id FROM {n.service_record} s JOIN {n.organization} t ON t.id = s.org_id "
        f"WHERE t.station_id IS NOT NULL AND t.station_id <> s.org_id AND {in_year}) u GROUP BY u.oid) x "
        "ON x.oid = o.id "
        "WHERE COALESCE(r.amount, 0) >= :olow OR COALESCE(x.amount, 0) >= :olow"), p)
    conn.commit()


def candidate_page(conn: Connection, subject: str, after: int, page: int) -> list[Any]:
    """One keyset page of ``cm_candidate`` for ``subject`` (``V`` or ``O``), in ascending local id after ``after``.

    Returns:
        Rows of ``local_id``, ``rid`` (registry id or ``None``), ``reg_amount``, ``loc_amount``, ``reg_tier`` (the
        registry's ACTIVE award of the scheme and year, or ``None``), ``name``, ``status``, ``region_code``, and
        for volunteers ``id_number``, for orgs ``parent_name``.
    """
    n = names(conn)
    if subject == "V":
        sql = ("SELECT c.local_id, c.rid, c.reg_amount, c.loc_amount, a.tier AS reg_tier, v.name, v.status, "  # noqa: S608
               f"v.region_code, v.id_number FROM cm_candidate c JOIN {n.volunteer} v ON v.id = c.local_id "
               "LEFT JOIN cm_reg_award a ON a.subject = 'V' AND a.rid = c.rid "
               "WHERE c.subject = 'V' AND c.local_id > :after ORDER BY c.local_id LIMIT :page")
    else:
        sql = ("SELECT c.local_id, c.rid, c.reg_amount, c.loc_amount, a.tier AS reg_tier, o.name, o.status, "  # noqa: S608
               f"o.region_code, p.name AS parent_name FROM cm_candidate c JOIN {n.organization} o ON o.id = c.local_id "
               f"LEFT JOIN {n.organization} p ON p.id = o.parent_id "
               "LEFT JOIN cm_reg_award a ON a.subject = 'O' AND a.rid = c.rid "
               "WHERE c.subject = 'O' AND c.local_id > :after ORDER BY c.local_id LIMIT :page")
    return list(conn.execute(text(sql), {"after": after, "page": page}).all())


def main_orgs(conn: Connection, year: int, volunteer_ids: Sequence[int]) -> dict[int, str]:
    """Volunteer local id → the name of the org with most of the volunteer's ACCEPTED hours of ``year`` on the
    platform (ties: the lower org id); volunteers with none are left out."""
    n = names(conn)
    out: dict[int, tuple[int, int, str]] = {}
    for chunk in chunks(sorted(set(volunteer_ids)), CHUNK):
        rows = conn.execute(text(  # noqa: S608 — table names
            f"SELECT s.volunteer_id, o.id, o.name, SUM(s.hours) AS h FROM {n.service_record} s "
            f"JOIN {n.organization} o ON o.id = s.org_id WHERE s.volunteer_id IN :ids AND s.status = 'ACCEPTED' "
            "AND s.service_date >= :first AND s.service_date <= :last GROUP BY s.volunteer_id, o.id, o.name"
        ).bindparams(bindparam("ids", expanding=True)), {"ids": list(chunk), **year_bounds(year)})
        for vid, oid, name, h in rows:
            best = out.get(int(vid))
            if best is None or (int(h), -int(oid)) > (best[0], -best[1]):
                out[int(vid)] = (int(h), int(oid), name)
    return {vid: name for vid, (_h, _oid, name) in out.items()}


def local_awards(conn: Connection, scheme: str, year: int, subject: str, local_ids: Sequence[int]
                 ) -> dict[int, list[tuple[int, str | None]]]:
    """The ACTIVE commendations of ``scheme`` and ``year`` each subject has on the platform, but for those the
    registry refused (their latest outbox row ``failed``, e.g. ``NOT_EARNED``): a refused one is not held and does
    not block a proposal or an approval (registry-api.md §4.8: the registry holds only what it accepted).

    Args:
        conn: a connection to the local store.
        scheme: ``PROVINCIAL_ANNUAL``.
        year: the commended year.
        subject: ``V`` (a person: the commendations of every local row linked to the same registry id as the given
            row count too) or ``O``.
        local_ids: the subjects' local ids (for a person, its primary row).

    Returns:
        local id → ``[(commendation local id, tier)]`` (subjects with none left out).
    """
    n = names(conn)
    out: dict[int, list[tuple[int, str | None]]] = {}
    p = {"scheme": scheme, "year": year}
    for chunk in chunks(sorted(set(local_ids)), CHUNK):
        ids = {"ids": list(chunk), **p}
        col = "volunteer_id" if subject == "V" else "org_id"
        refused = (f"AND NOT EXISTS (SELECT 1 FROM {n.outbox} ob WHERE ob.state = 'failed' AND ob.id = "  # noqa: S608
                   f"(SELECT MAX(x.id) FROM {n.outbox} x WHERE x.entity = 'commendation' AND x.local_id = c.id))")
        queries = [f"SELECT c.{col} AS sid, c.id, c.tier FROM {n.commendation} c WHERE c.{col} IN :ids "  # noqa: S608
                   "AND c.scheme = :scheme AND c.year = :year AND c.status = 'ACTIVE' "
                f"{refused}"]
        if subject == "V":  # the person's other rows (duplicates linked to the same registry id)
            queries.append(
                f"SELECT lp.local_id AS sid, c.id, c.tier FROM {n.link} lp "  # noqa: S608
                f"JOIN {n.link} ld ON ld.entity = 'volunteer' AND ld.registry_id = lp.registry_id "
                "AND ld.local_id <> lp.local_id "
                f"JOIN {n.commendation} c ON c.volunteer_id = ld.local_id "
                "WHERE lp.entity = 'volunteer' AND lp.local_id IN :ids "
                "AND c.scheme = :scheme AND c.year = :year AND c.status = 'ACTIVE' "
                f"{refused}")
        for sql in queries:
            for sid, cid, tier in conn.execute(text(sql).bindparams(bindparam("ids", expanding=True)), ids):
                found = out.setdefault(int(sid), [])
                if (int(cid), tier) not in found:
                    found.append((int(cid), tier))
    return out


def subject_rows(conn: Connection, subject: str, local_ids: Sequence[int]) -> dict[int, Any]:
    """Local id → the subject's row (``id``, ``name``, ``status``) for those of ``local_ids`` that exist (``V``:
    volunteers, ``O``: orgs)."""
    n = names(conn)
    table = n.volunteer if subject == "V" else n.organization
    out: dict[int, Any] = {}
    for chunk in chunks(sorted(set(local_ids)), CHUNK):
        rows = conn.execute(text(f"SELECT id, name, status FROM {table} WHERE id IN :ids"  # noqa: S608
                                 ).bindparams(bindparam("ids", expanding=True)), {"ids": list(chunk)})
        out.update({int(r.id): r for r in rows})
    return out


def scheme_commendations(conn: Connection, scheme: str, year: int) -> list[Any]:
    """The platform's commendations of ``scheme`` and ``year`` (every status), oldest first, each with its subject's
    name, its link and its latest outbox row.

    Returns:
        Rows of ``id``, ``volunteer_id``, ``org_id``, ``tier``, ``title``, ``status``, ``name`` (the subject's),
        ``registry_id`` (``None``: not linked), ``state``, ``last_code`` and ``last_error`` (of the record's latest
        outbox row, ``None`` without one).
    """
    n = names(conn)
    return list(conn.execute(text(  # noqa: S608 — table names
        "SELECT c.id, c.volunteer_id, c.org_id, c.tier, c.title, c.status, COALESCE(v.name, o.name) AS name, "
        "l.registry_id, ob.state, ob.last_code, ob.last_error "
        f"FROM {n.commendation} c LEFT JOIN {n.volunteer} v ON v.id = c.volunteer_id "
        f"LEFT JOIN {n.organization} o ON o.id = c.org_id "
        f"LEFT JOIN {n.link} l ON l.entity = 'commendation' AND l.local_id = c.id "
        f"LEFT JOIN {n.outbox} ob ON ob.id = (SELECT MAX(x.id) FROM {n.outbox} x "
        "WHERE x.entity = 'commendation' AND x.local_id = c.id) "
        "WHERE c.scheme = :scheme AND c.year = :year ORDER BY c.id"), {"scheme": scheme, "year": year}).all())


def platform_figure(conn: Connection, subject: str, local_id: int, year: int) -> int:
    """One subject's platform figure of ``year``: a person's ACCEPTED hours (hundredths; all its linked rows, or the
    row alone when unlinked), an org's ACCEPTED records whose org or team's station is it."""
    n = names(conn)
    p = {"id": local_id, **year_bounds(year)}
    in_year = "s.status = 'ACCEPTED' AND s.service_date >= :first AND s.service_date <= :last"
    if subject == "V":
        rid = conn.execute(text(f"SELECT registry_id FROM {n.link} WHERE entity = 'volunteer' "  # noqa: S608
                                "AND local_id = :id"), p).scalar()
        if rid is None:
            sql = f"SELECT SUM(s.hours) FROM {n.service_record} s WHERE s.volunteer_id = :id AND {in_year}"  # noqa: S608
        else:
            p["rid"] = rid
            sql = (f"SELECT SUM(s.hours) FROM {n.service_record} s JOIN {n.link} l ON l.entity = 'volunteer' "  # noqa: S608
                   f"AND l.local_id = s.volunteer_id WHERE l.registry_id = :rid AND {in_year}")
    else:
        sql = (f"SELECT COUNT(*) FROM {n.service_record} s JOIN {n.organization} t ON t.id = s.org_id "  # noqa: S608
               f"WHERE (s.org_id = :id OR t.station_id = :id) AND {in_year}")
    return int(conn.execute(text(sql), p).scalar() or 0)


__all__ = ["build_candidates", "candidate_page", "drop_staging", "local_awards", "main_orgs", "open_staging",
           "platform_figure", "scheme_commendations", "stage_awards", "stage_figures", "subject_rows", "year_bounds"]
