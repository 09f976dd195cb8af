"""What the demo reads of the store to show that both sides agree (``regsync demo``): the links in the order of
the registry's export, the local rows of a batch of linked records with the fields open conflicts hold and the
registry ids of what they refer to, and the rows per kind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, func, or_, select, text

from regsync.db.models import TABLES, TRANSFERRED_OUT, Base, Conflict, Link
from regsync.db.own import own_format, own_sql
from regsync.db.session import is_postgres
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.projection import REFERENCES


def links_by_registry_id(engine: Engine, kind: str) -> Iterator[tuple[str, str, int, bool]]:
    """(registry id, base, local id, is a person's second row's) of the links of existing local rows of
    ``kind``, ascending by registry id as bytes (the order of the registry's export, registry-api.md §5.2),
    streamed."""
    collate = ' COLLATE "C"' if is_postgres(engine) else ""  # SQLite's BINARY and MySQL's utf8mb4_bin: bytes
    link, table = own_sql(engine, "link"), own_sql(engine, TABLES[kind])
    sql = text(f"SELECT l.registry_id, l.base, l.local_id, l.is_duplicate FROM {link} l JOIN {table} t "  # noqa: S608
               f"ON t.id = l.local_id WHERE l.entity = :k ORDER BY l.registry_id{collate}, l.local_id")
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(sql, {"k": kind})
        yield from result


def rows_with_holds_and_refs(engine: Engine, kind: str, ids: Sequence[int]
                             ) -> tuple[dict[int, dict[str, Any]], dict[int, set[str]], dict[tuple[str, int], str]]:
    """For the local rows of ``kind`` with these ids: ``(rows by id, the fields open conflicts hold by id, the
    registry id of each linked record they refer to by (kind, local id))`` (a person's second row refers to the
    record of the first)."""
    table = Base.metadata.tables[TABLES[kind]]
    with engine.connect() as conn:
        rows = {r["id"]: dict(r) for r in conn.execute(select(table).where(table.c.id.in_(list(ids)))).mappings()}
        held: dict[int, set[str]] = {}
        for lid, name in conn.execute(select(Conflict.local_id, Conflict.field).where(
                Conflict.entity == kind, Conflict.local_id.in_(list(ids)), Conflict.state == "open")):
            held.setdefault(lid, set()).add(name)
        wanted: dict[str, set[int]] = {}
        for r in rows.values():
            for col, ref_kind in REFERENCES[kind].items():
                if r.get(col) is not None:
                    wanted.setdefault(ref_kind, set()).add(r[col])
        refs: dict[tuple[str, int], str] = {}
        for ref_kind, ref_ids in wanted.items():
            for lid, rid in conn.execute(select(Link.local_id, Link.registry_id).where(
                    Link.entity == ref_kind, Link.local_id.in_(sorted(ref_ids)))):
                refs[(ref_kind, lid)] = rid
    return rows, held, refs


def local_counts(engine: Engine) -> dict[str, int]:
    """Local rows per kind (by the kinds' plural names)."""
    with engine.connect() as conn:
        return {KIND_NAMES[k]: conn.execute(text(f"SELECT COUNT(*) FROM {own_sql(conn, t)}")).scalar_one()  # noqa: S608
                for k, t in TABLES.items()}


def _moved(vol: Any, province: str) -> Any:
    """The condition on ``vol`` (the volunteers' table) of a volunteer who moved to another province."""
    moved = select(Link.id).where(Link.entity == "volunteer", Link.local_id == vol.c.id,
                                  Link.how == TRANSFERRED_OUT).exists()
    return or_(vol.c.home_province != province, moved)


def transferred_volunteers(engine: Engine, province: str) -> int:
    """Local volunteers who moved to another province (they leave ``province``'s export): those whose link records
    the transfer out (:data:`~regsync.db.models.TRANSFERRED_OUT`, on every platform), or whose home province is
    another's where the platform keeps one."""
    vol = Base.metadata.tables[TABLES["volunteer"]]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(vol).where(_moved(vol, province))).scalar_one())


def transferred_commendations(engine: Engine, province: str) -> int:
    """Local commendations of volunteers who moved to another province (:func:`transferred_volunteers`): the
    registry moves a volunteer's commendations with them (registry-api.md §1 "scope", v1.1), so they leave
    ``province``'s export too. An org's commendations, and a volunteer's training records and evaluations (their
    training's and activity's province), stay."""
    vol = Base.metadata.tables[TABLES["volunteer"]]
    com = Base.metadata.tables[TABLES["commendation"]]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(com.join(vol, com.c.volunteer_id == vol.c.id))
                                .where(_moved(vol, province))).scalar_one())


def single_row_people(engine: Engine, limit: int) -> list[tuple[str, str, str]]:
    """Up to ``limit`` active resident-ID volunteers of province 23 with a clean ID number and one local row each,
    by id: ``(id_type, id_number_norm, name)``."""
    with engine.connect() as conn:
        return [(str(a), str(b), str(c)) for a, b, c in conn.execute(text(own_format(
            conn, "SELECT v.id_type, v.id_number_norm, v.name FROM {volunteer} v WHERE v.id_number_norm IS NOT NULL "
            "AND v.id_type = 'RESIDENT_ID' AND v.status = 'ACTIVE' AND v.home_province = '23' AND "
            "(SELECT COUNT(*) FROM {volunteer} w WHERE w.id_number_norm = v.id_number_norm) = 1 "
            "ORDER BY v.id LIMIT :n")), {"n": limit}).all()]
