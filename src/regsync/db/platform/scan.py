"""The keyset pages the reconcile and the resync compare: the platform's records with their links, in flat memory.

A local record is read as a :class:`LocalItem`: the row's columns a comparison needs, its link (registry id,
version, base snapshot…), the registry ids of what it refers to and its org's region and line. A full reconcile
reads them from the links in the registry's byte order (:func:`iter_link_groups`) and then the rows no link names
(:func:`iter_unlinked`); a resync reads the items of the local ids its scope selects (:func:`local_items`), the
scope itself read in keyset pages of ids (:func:`volunteer_ids_with_id_number`, :func:`org_children`,
:func:`ids_of_volunteers`, :func:`ids_of_orgs`, :func:`ids_in_region`…).

Each page is read in its own short transaction (no long read lock on SQLite, no server-side cursor kept open while
repairs write).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, select, text
from sqlalchemy.sql import Select

from regsync.db.models import SYNCED_COLUMNS, TABLES, Base, Link
from regsync.db.own import own_format, own_sql
from regsync.db.platform.mapped import mapped_platform
from regsync.db.platform.read import id_number_variants
from regsync.db.platform.write import set_id_number_norms
from regsync.db.session import is_postgres
from regsync.domain.normalize import try_normalize_id_number
from regsync.domain.projection import REFERENCES

#: Rows per keyset page of a full reconcile's local side.
PAGE = 2000
#: Local ids per query of :func:`local_items`, and per keyset page of a resync's scope.
ID_PAGE = 500
#: Referencing kinds and the reference columns that must exist on their own side (else an ``orphan``): an item
#: of these kinds carries ``_has_<col>``.
ORPHAN_REFS: dict[str, tuple[str, ...]] = {"membership": ("org_id", "volunteer_id"),
                                           "service_record": ("volunteer_id", "activity_id", "org_id"),
                                           # v1.1 (registry-api.md §4.6–§4.9); a commendation's subject is one of
                                           # its two columns, the other empty (an empty reference dangles nowhere)
                                           "training": ("org_id",),
                                           "training_record": ("training_id", "volunteer_id"),
                                           "commendation": ("volunteer_id", "org_id"),
                                           "evaluation": ("activity_id", "volunteer_id", "evaluator_org_id")}
#: Kinds whose own ``region_code`` places them (the others lie where their org does, :func:`org_column`).
OWN_REGION: frozenset[str] = frozenset({"org", "volunteer", "activity", "training"})
#: Kinds placed by an org: the column naming it (a training record's is its training's, a commendation's its
#: subject org's or, for a volunteer's, the volunteer's residence).
ORG_COLUMN: dict[str, str] = {"membership": "org_id", "activity": "org_id", "service_record": "org_id",
                              "training": "org_id", "commendation": "org_id", "evaluation": "evaluator_org_id"}


@dataclass(slots=True)
class LocalItem:
    """A local row (or a link whose row is gone) as the reconcile reads it.

    ``row`` holds the row's columns (:func:`local_columns`; ``id`` is ``None`` when the row is gone) and
    ``_rid``/``_lid``/``_ver``/``_base``/``_dup``/``_how``/``_rev`` of its link (registry id, local id, registry
    version, base snapshot as JSON text, is-duplicate, how it was linked, revision; ``None`` when unlinked),
    ``_ref_<col>`` the registry ids of its references, ``_has_<col>`` whether a referenced row exists (the columns
    of :data:`ORPHAN_REFS`), ``_org_region``/``_org_type``/``_org_level`` its org's (org, membership, activity,
    service record; v1.1: a training's org, a training record's training's org, an evaluation's evaluator org, a
    commendation's subject org, or for a volunteer's commendation the volunteer's residence as ``_org_region``).
    """

    row: dict[str, Any]

    @property
    def local_id(self) -> int:
        """The local id (the link's when the row is gone)."""
        return int(self.row["_lid"] if self.row.get("_lid") is not None else self.row["id"])

    @property
    def exists(self) -> bool:
        """Whether the local row exists (a link may outlive its row)."""
        return self.row.get("id") is not None


def uses_c_order(conn: Connection) -> bool:
    """Whether the database's own text order is by bytes (C collations), so the link index serves the
    registry's byte order directly; otherwise ``COLLATE "C"`` is added (slower: a sort)."""
    if not is_postgres(conn):
        # SQLite compares TEXT with BINARY: bytes; regsync's tables on MySQL/MariaDB are utf8mb4_bin (code points,
        # the order of UTF-8's bytes: regsync.db.coltypes.MYSQL_TABLE)
        return True
    coll = conn.execute(text("SELECT datcollate FROM pg_database WHERE datname = current_database()")).scalar()
    return (coll or "").split(".")[0].upper() in ("C", "POSIX")


def local_columns(kind: str) -> list[str]:
    """The local columns a comparison reads: the synced ones, the id, and what classifies (not ``remark``,
    ``updated_at``…: fewer values to convert per row)."""
    extra = {"volunteer": ["id_number_norm", "registered_at"], "service_record": ["revoke_reason"]}.get(kind, [])
    return ["id", *SYNCED_COLUMNS[TABLES[kind]], *[c for c in extra if c not in SYNCED_COLUMNS[TABLES[kind]]]]


def _local_select(kind: str, *, from_links: bool) -> Select[Any]:
    """The SELECT of local items of ``kind``: from the links (full reconcile) or from the table (unlinked rows,
    scoped resyncs), with the references' registry ids and the org's region and type joined."""
    t = Base.metadata.tables[TABLES[kind]]
    lk = Link.__table__
    link_on = and_(lk.c.entity == kind, lk.c.local_id == t.c.id)
    frm = lk.outerjoin(t, t.c.id == lk.c.local_id) if from_links else t.outerjoin(lk, link_on)
    cols: list[Any] = [lk.c.registry_id.label("_rid"), lk.c.local_id.label("_lid"),
                       lk.c.registry_version.label("_ver"), lk.c.base.label("_base"), lk.c.is_duplicate.label("_dup"),
                       lk.c.how.label("_how"), lk.c.revision.label("_rev"),
                       *[t.c[name].label(name) for name in local_columns(kind)]]
    for col, ref_kind in REFERENCES[kind].items():
        ref = lk.alias(f"ref_{col}")
        frm = frm.outerjoin(ref, and_(ref.c.entity == ref_kind, ref.c.local_id == t.c[col]))
        cols.append(ref.c.registry_id.label(f"_ref_{col}"))
    for col in ORPHAN_REFS.get(kind, ()):
        target = Base.metadata.tables[TABLES[REFERENCES[kind][col]]].alias(f"has_{col}")
        frm = frm.outerjoin(target, target.c.id == t.c[col])
        cols.append(target.c.id.label(f"_has_{col}"))
    if kind in ORG_COLUMN or kind == "training_record":
        org = Base.metadata.tables["organization"].alias("o")
        if kind == "training_record":  # its training's org (registry-api.md §1: a training record's province)
            training = Base.metadata.tables["training"].alias("tr_org")
            frm = frm.outerjoin(training, training.c.id == t.c.training_id)
            frm = frm.outerjoin(org, org.c.id == training.c.org_id)
        else:
            frm = frm.outerjoin(org, org.c.id == t.c[ORG_COLUMN[kind]])
        region: Any = org.c.region_code
        if kind == "commendation":  # a volunteer's commendation lies where the volunteer lives
            vol = Base.metadata.tables["volunteer"].alias("subject_v")
            frm = frm.outerjoin(vol, vol.c.id == t.c.volunteer_id)
            region = func.coalesce(org.c.region_code, vol.c.region_code)
        cols += [region.label("_org_region"), org.c.org_type.label("_org_type"), org.c.level.label("_org_level")]
    q = select(*cols).select_from(frm)
    if from_links:
        q = q.where(lk.c.entity == kind)
    return q


def _region_filter(kind: str, q: Select[Any], region: str | None) -> Select[Any]:
    if not region:
        return q
    if kind in OWN_REGION:
        t = Base.metadata.tables[TABLES[kind]]
        return q.where(t.c.region_code.like(region + "%"))
    return q.where(q.selected_columns["_org_region"].like(region + "%"))


# ---------------------------------------------------------------------------------------------- a full reconcile


def iter_link_groups(engine: Engine, kind: str, region: str | None = None, page: int = PAGE
                     ) -> Iterator[tuple[str, list[LocalItem]]]:
    """The links of ``kind`` with their local rows, grouped by registry id, in ascending registry id (bytes).

    Keyset pages of ``page`` rows, each read in its own short transaction (no long read lock on SQLite, no
    server-side cursor to keep open while repairs write). A person's two rows share one group, the primary
    first.

    Args:
        engine: the local store.
        kind: the record kind.
        region: a GB/T 2260 prefix (``2301``): only the records in it (an org's, volunteer's or activity's own
            region code, a membership's or service record's org's); ``None`` for all.
        page: rows per page.

    Yields:
        ``(registry id, items)``: the items of the link's local rows (a link whose row is gone included).
    """
    lk = Link.__table__
    base = _region_filter(kind, _local_select(kind, from_links=True), region)
    with engine.connect() as conn:
        c_order = uses_c_order(conn)
    rid_col = lk.c.registry_id if c_order else lk.c.registry_id.collate("C")
    last: str | None = None
    inclusive = False
    while True:
        q = base
        if last is not None:
            q = q.where(rid_col >= last if inclusive else rid_col > last)
        q = q.order_by(rid_col, lk.c.is_duplicate, lk.c.local_id).limit(page)
        with engine.connect() as conn:
            result = conn.execute(q)
            keys = list(result.keys())
            rows = [dict(zip(keys, r, strict=True)) for r in result]
        if not rows:
            return
        full = len(rows) == page
        if full:
            cut = rows[-1]["_rid"]
            keep = [r for r in rows if r["_rid"] != cut]
            if keep:
                rows, last, inclusive = keep, cut, True
            else:  # one registry id fills a page: cannot happen with sane data; take it whole
                last, inclusive = cut, False
        group: list[LocalItem] = []
        rid: str | None = None
        for r in rows:
            if r["_rid"] != rid and group:
                yield rid, group  # type: ignore[misc]
                group = []
            rid = r["_rid"]
            group.append(LocalItem(r))
        if group:
            yield rid, group  # type: ignore[misc]
        if not full:
            return


def iter_unlinked(engine: Engine, kind: str, region: str | None = None, page: int = PAGE) -> Iterator[LocalItem]:
    """Local rows of ``kind`` with no link, in ascending local id (keyset pages of ``page`` rows, each in its own
    transaction); ``region`` as for :func:`iter_link_groups`."""
    t = Base.metadata.tables[TABLES[kind]]
    base = _region_filter(kind, _local_select(kind, from_links=False).where(Link.__table__.c.id.is_(None)), region)
    last = 0
    while True:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(base.where(t.c.id > last).order_by(t.c.id).limit(page)).mappings()]
        yield from (LocalItem(r) for r in rows)
        if len(rows) < page:
            return
        last = rows[-1]["id"]


def local_items(conn: Connection, kind: str, local_ids: Sequence[int]) -> list[LocalItem]:
    """The local items of ``kind`` with these ids (linked or not, those that exist), by id, for scoped resyncs
    (one query per :data:`ID_PAGE` ids)."""
    t = Base.metadata.tables[TABLES[kind]]
    out: list[LocalItem] = []
    ids = sorted(set(local_ids))
    for i in range(0, len(ids), ID_PAGE):
        q = _local_select(kind, from_links=False).where(t.c.id.in_(ids[i:i + ID_PAGE])).order_by(t.c.id)
        out.extend(LocalItem(dict(r)) for r in conn.execute(q).mappings())
    return out


def backfill_id_number_norm(engine: Engine, page: int = PAGE) -> int:
    """Fill ``volunteer.id_number_norm`` where it is missing (the platform's own inserts leave it empty; beside a
    mapped platform, regsync's ``person_norm``: :func:`regsync.db.platform.write.set_id_number_norms`), in
    keyset pages of ``page`` rows, one transaction each; not a synced column, so the outbox triggers queue
    nothing. A number that does not normalize (GB 11643-1999) is left empty. Returns the rows filled."""
    last, filled = 0, 0
    with engine.connect() as conn:
        platform = mapped_platform(conn)  # once, not per page
    while True:
        with engine.begin() as conn:
            rows = conn.execute(text(own_format(
                conn, "SELECT id, id_type, id_number FROM {volunteer} WHERE id_number_norm IS NULL AND id > :last "
                "ORDER BY id LIMIT :n")), {"last": last, "n": page}).all()
            fixes = [{"norm": n, "vid": r.id} for r in rows
                     if (n := try_normalize_id_number(r.id_type or "", r.id_number or "")) is not None]
            if fixes:
                set_id_number_norms(conn, fixes, platform=platform)
        filled += len(fixes)
        if len(rows) < page:
            return filled
        last = rows[-1].id


# ---------------------------------------------------------------------------------------------- a resync's scope


def volunteer_ids_with_id_number(conn: Connection, id_type: str, norm: str) -> list[int]:
    """The local ids of every volunteer row of one person (linked or not): ``id_type`` and an ID number that
    normalizes to ``norm`` (GB 11643-1999), ascending."""
    rows = conn.execute(text(own_format(
        conn, "SELECT id, id_type, id_number FROM {volunteer} WHERE id_type = :t AND (id_number_norm = :n "
        "OR id_number IN :raw) ORDER BY id")).bindparams(bindparam("raw", expanding=True)),
        {"t": id_type, "n": norm, "raw": id_number_variants(norm)}).all()
    return [int(r.id) for r in rows if try_normalize_id_number(r.id_type, r.id_number) == norm]


def existing_ids(conn: Connection, kind: str, local_id: int) -> list[int]:
    """``[local_id]`` when a row of ``kind`` (``volunteer`` or ``org``) has that id, else ``[]``."""
    sql = f"SELECT id FROM {own_sql(conn, TABLES[kind])} WHERE id = :i"  # noqa: S608 — a table name
    return [int(i) for i in conn.execute(text(sql), {"i": local_id}).scalars()]


def org_children(conn: Connection, org_ids: Sequence[int]) -> list[int]:
    """The local ids of the orgs whose parent is among ``org_ids`` (one level down; ``[]`` for none given)."""
    if not org_ids:
        return []
    return [int(i) for i in conn.execute(text(
        own_format(conn, "SELECT id FROM {organization} WHERE parent_id IN :ids")).bindparams(
            bindparam("ids", expanding=True)),
        {"ids": list(org_ids)}).scalars()]


def region_holds_records(conn: Connection, region: str) -> bool:
    """Whether an org, a volunteer or an activity has a region code starting with the prefix ``region``; the read
    transaction is ended before returning."""
    for table in ("organization", "volunteer", "activity"):
        if conn.execute(text(f"SELECT 1 FROM {own_sql(conn, table)} WHERE region_code LIKE :p LIMIT 1"),  # noqa: S608
                        {"p": region + "%"}).first() is not None:
            conn.rollback()
            return True
    conn.rollback()
    return False


def ids_of_volunteers(conn: Connection, kind: str, volunteer_ids: Sequence[int]) -> Iterator[list[int]]:
    """Keyset pages (:data:`ID_PAGE` ids, ascending within each :data:`ID_PAGE` volunteers) of the local ids of
    the records of ``kind`` of these volunteers (memberships, service records, and v1.1's training records,
    commendations and evaluations: the rows whose ``volunteer_id`` is one of them); no read transaction is held
    between pages."""
    sql = f"SELECT id FROM {own_sql(conn, TABLES[kind])} WHERE volunteer_id IN :v AND id > :last"  # noqa: S608
    for i in range(0, len(volunteer_ids), ID_PAGE):
        yield from _keyset_in(conn, sql, "v", volunteer_ids[i:i + ID_PAGE])


#: The records of these orgs: kind → the SELECT of their ids (``:o`` the orgs) where the column is not ``org_id``.
_OF_ORGS = {
    "evaluation": "SELECT id FROM {evaluation} WHERE evaluator_org_id IN :o AND id > :last",
    "training_record": "SELECT id FROM {training_record} WHERE training_id IN (SELECT t.id FROM {training} t "
                       "WHERE t.org_id IN :o) AND id > :last",
}


def ids_of_orgs(conn: Connection, kind: str, org_ids: Sequence[int]) -> Iterator[list[int]]:
    """Keyset pages (as :func:`ids_of_volunteers`, by :data:`ID_PAGE` orgs) of the local ids of the memberships,
    activities or service records (``kind``) of these orgs, and (v1.1) their trainings, the records of their
    trainings, their commendations (the orgs commended) and the evaluations they made."""
    if kind in _OF_ORGS:
        sql = own_format(conn, _OF_ORGS[kind])
    else:
        sql = f"SELECT id FROM {own_sql(conn, TABLES[kind])} WHERE org_id IN :o AND id > :last"  # noqa: S608
    for i in range(0, len(org_ids), ID_PAGE):
        yield from _keyset_in(conn, sql, "o", org_ids[i:i + ID_PAGE])


_IN_REGION = {
    "org": "SELECT id FROM {organization} WHERE region_code LIKE :p AND id > :last",
    "volunteer": "SELECT id FROM {volunteer} WHERE region_code LIKE :p AND id > :last",
    "membership": "SELECT m.id AS id FROM {membership} m JOIN {organization} o ON o.id = m.org_id "
                  "WHERE o.region_code LIKE :p AND m.id > :last",
    "activity": "SELECT id FROM {activity} WHERE region_code LIKE :p AND id > :last",
    "service_record": "SELECT s.id AS id FROM {service_record} s JOIN {organization} o ON o.id = s.org_id "
                      "WHERE o.region_code LIKE :p AND s.id > :last",
    "training": "SELECT id FROM {training} WHERE region_code LIKE :p AND id > :last",
    "training_record": "SELECT s.id AS id FROM {training_record} s JOIN {training} tr ON tr.id = s.training_id "
                       "JOIN {organization} o ON o.id = tr.org_id WHERE o.region_code LIKE :p AND s.id > :last",
    "commendation": "SELECT s.id AS id FROM {commendation} s LEFT JOIN {organization} o ON o.id = s.org_id "
                    "LEFT JOIN {volunteer} v ON v.id = s.volunteer_id "
                    "WHERE COALESCE(o.region_code, v.region_code) LIKE :p AND s.id > :last",
    "evaluation": "SELECT s.id AS id FROM {evaluation} s JOIN {organization} o ON o.id = s.evaluator_org_id "
                  "WHERE o.region_code LIKE :p AND s.id > :last",
}


def ids_in_region(conn: Connection, kind: str, region: str) -> Iterator[list[int]]:
    """Keyset pages (as :func:`ids_of_volunteers`) of the local ids of ``kind`` in the region of prefix
    ``region`` (an org's, volunteer's, activity's or training's own region code; a membership's or service
    record's org's; a training record's training's org's; an evaluation's evaluator's; a commendation's subject
    org's, or its volunteer's residence)."""
    if kind not in OWN_REGION:
        alias = "m" if kind == "membership" else "s"
        return _keyset_alias(conn, own_format(conn, _IN_REGION[kind]), alias, region + "%")
    return _keyset(conn, own_format(conn, _IN_REGION[kind]), {"p": region + "%"})


def _keyset(conn: Connection, sql: str, params: dict[str, Any], page: int = ID_PAGE) -> Iterator[list[int]]:
    """Pages of ids from ``sql`` (a SELECT of ``id`` with a ``:last`` lower bound), ascending."""
    last = 0
    while True:
        ids = [int(r[0]) for r in conn.execute(text(sql + " ORDER BY id LIMIT :page"),
                                               {**params, "last": last, "page": page})]
        conn.rollback()  # no read transaction held while repairs write
        if ids:
            yield ids
        if len(ids) < page:
            return
        last = ids[-1]


def _keyset_alias(conn: Connection, sql: str, alias: str, prefix: str) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = [int(r[0]) for r in conn.execute(text(sql + f" ORDER BY {alias}.id LIMIT :page"),
                                               {"p": prefix, "last": last, "page": ID_PAGE})]
        conn.rollback()
        if ids:
            yield ids
        if len(ids) < ID_PAGE:
            return
        last = ids[-1]


def _keyset_in(conn: Connection, sql: str, name: str, values: Sequence[int]) -> Iterator[list[int]]:
    stmt = text(sql + " ORDER BY id LIMIT :page").bindparams(bindparam(name, expanding=True))
    last = 0
    while True:
        ids = [int(r[0]) for r in conn.execute(stmt, {name: list(values), "last": last, "page": ID_PAGE})]
        conn.rollback()
        if ids:
            yield ids
        if len(ids) < ID_PAGE:
            return
        last = ids[-1]


__all__ = [
    "ID_PAGE",
    "ORG_COLUMN",
    "ORPHAN_REFS",
    "OWN_REGION",
    "PAGE",
    "LocalItem",
    "backfill_id_number_norm",
    "existing_ids",
    "ids_in_region",
    "ids_of_orgs",
    "ids_of_volunteers",
    "iter_link_groups",
    "iter_unlinked",
    "local_columns",
    "local_items",
    "org_children",
    "region_holds_records",
    "uses_c_order",
    "volunteer_ids_with_id_number",
]
