"""What seeding the sandbox registry (:mod:`regsync.generate.seed`) reads of the local store and writes to it: the
platform's rows in keyset pages, the links of the records seeded, and the few look-ups the seeder needs. Every
statement of the seeder is here; the seeder speaks HTTP to the sandbox's admin endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, select, text

from regsync.db.models import TABLES, Base, Link
from regsync.db.own import own_format, own_sql


def iter_pages(engine: Engine, kind: str, page: int, *,
               equal: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``kind`` in pages of ``page`` rows by ascending id (keyset: each page in its own short
    connection), as dicts of column → value; ``equal``: only rows whose columns have these values (e.g. an org
    level, a service record's ``ACCEPTED`` status)."""
    table = Base.metadata.tables[TABLES[kind]]
    last = 0
    while True:
        q = select(table).where(table.c.id > last, *(table.c[c] == v for c, v in (equal or {}).items()))
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q.order_by(table.c.id).limit(page)).mappings()]
        if rows:
            yield rows
        if len(rows) < page:
            return
        last = rows[-1]["id"]


def insert_links(engine: Engine, links: Sequence[dict[str, Any]]) -> None:
    """Insert ``link`` rows (dicts of column → value) in one transaction."""
    with engine.begin() as conn:
        conn.execute(Link.__table__.insert(), list(links))


def accepted_hours(engine: Engine, volunteer_ids: Sequence[int]) -> list[tuple[int, int, int]]:
    """The ``ACCEPTED`` service records of these volunteers: ``(service record id, volunteer id, hours in
    hundredths)``."""
    with engine.connect() as conn:
        return [(int(s), int(v), int(h)) for s, v, h in conn.execute(text(
            f"SELECT id, volunteer_id, hours FROM {own_sql(conn, 'service_record')} "  # noqa: S608
            "WHERE status = 'ACCEPTED' AND volunteer_id "
            f"IN ({', '.join(str(int(v)) for v in volunteer_ids)})"))]


def accepted_class_hours(engine: Engine, volunteer_ids: Sequence[int]) -> list[tuple[int, int, int]]:
    """The ``ACCEPTED`` training records of these volunteers within their training's class hours (registry-api.md
    §4.7: the registry accepts no more): ``(training record id, volunteer id, class hours in hundredths)``."""
    with engine.connect() as conn:
        return [(int(s), int(v), int(h)) for s, v, h in conn.execute(text(own_format(
            conn, "SELECT r.id, r.volunteer_id, r.class_hours FROM {training_record} r JOIN {training} t "
            "ON t.id = r.training_id WHERE r.status = 'ACCEPTED' AND r.class_hours <= t.class_hours AND r.volunteer_id "
            f"IN ({', '.join(str(int(v)) for v in volunteer_ids)})")))]


def volunteers_by_norm(engine: Engine, norms: Sequence[str]) -> list[tuple[int, str]]:
    """The volunteers whose normalized ID number is among ``norms``, oldest registration first: ``(id,
    id_number_norm)``."""
    vol = Base.metadata.tables["volunteer"]
    with engine.connect() as conn:
        return [(int(i), str(n)) for i, n in conn.execute(select(vol.c.id, vol.c.id_number_norm).where(
            vol.c.id_number_norm.in_(list(norms))).order_by(vol.c.registered_at, vol.c.id)).all()]


def team_stations(engine: Engine) -> dict[int, int]:
    """Grassroots teams and their community station: org id → station org id."""
    with engine.connect() as conn:
        return {int(i): int(s) for i, s in conn.execute(text(
            own_format(conn, "SELECT id, station_id FROM {organization} WHERE station_id IS NOT NULL")))}


def id_number_taken(engine: Engine, number: str) -> bool:
    """Whether a local volunteer has this ID number (normalized or as stored)."""
    with engine.connect() as conn:
        return conn.execute(text(own_format(conn, "SELECT 1 FROM {volunteer} WHERE id_number_norm = :n "
                                            "OR id_number = :n")),
                            {"n": number}).first() is not None
