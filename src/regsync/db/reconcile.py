"""What a reconcile and a resync keep and look up in regsync's own tables besides the platform's records.

- **The registry's hours, staged**: a reconcile streams the registry's service records and volunteers once; their
  ACCEPTED hours per volunteer and each volunteer's region and national ``totalHours`` go into two temporary
  tables of one connection (:func:`open_hours_staging`, :func:`stage_registry_hours`,
  :func:`stage_registry_persons`), summed per person in the registry's byte order (:func:`staged_hours_by_person`)
  and merge-joined with the local sums (:mod:`regsync.db.platform.totals`): memory stays flat.
- **Links looked up**: which registry ids the store links (:func:`linked_registry_ids`), the local rows of one
  registry id (:func:`linked_local_ids`), the link of a local row (:func:`link_id`).
- **A resync's audit row**: written before the work (:func:`start_resync_audit`), completed after it
  (:func:`finish_resync_audit`).

Hours are hundredths of an hour throughout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, select, text, update

from regsync.db.models import Audit, Link
from regsync.db.query import chunks
from regsync.db.session import MYSQL_CHARSET, MYSQL_COLLATION, is_mysql, utcnow

#: Registry ids per query of :func:`linked_registry_ids`.
LINK_CHUNK = 500

# ---------------------------------------------------------------------------------------------- hours staging


def open_hours_staging(conn: Connection) -> None:
    """Create the temporary tables ``rc_reg_hours`` (volunteer's registry id, hours) and ``rc_reg_person``
    (volunteer's registry id, region code, national total hours, and the registry's ``trainingHours``,
    registry-api.md v1.1 §4.2) on ``conn``, and commit. They live as long as
    the connection, or until :func:`drop_hours_staging`. On MySQL/MariaDB their text is utf8mb4 with the binary
    collation of regsync's tables (not the database's default), so that they sort in the registry's byte order."""
    coll = f" CHARACTER SET {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}" if is_mysql(conn) else ""
    conn.execute(text(f"CREATE TEMPORARY TABLE rc_reg_hours (volunteer_rid VARCHAR(32){coll} NOT NULL, "
                      "hours INTEGER NOT NULL)"))
    conn.execute(text(f"CREATE TEMPORARY TABLE rc_reg_person (volunteer_rid VARCHAR(32){coll} NOT NULL, "
                      f"region_code VARCHAR(12){coll}, total_hours INTEGER, training_hours INTEGER)"))
    conn.commit()


def drop_hours_staging(conn: Connection) -> None:
    """Drop the tables of :func:`open_hours_staging` (after ending any transaction on ``conn``), and commit.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the connection is unusable (the tables go with it anyway).
    """
    conn.rollback()
    conn.execute(text("DROP TABLE IF EXISTS rc_reg_hours"))
    conn.execute(text("DROP TABLE IF EXISTS rc_reg_person"))
    conn.commit()


def stage_registry_hours(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Stage hours of registry service records, and commit.

    Args:
        conn: the connection holding the staging tables.
        rows: ``{"v": the volunteer's registry id, "h": hours in hundredths}`` for each ACCEPTED record (not
            empty).
    """
    conn.execute(text("INSERT INTO rc_reg_hours (volunteer_rid, hours) VALUES (:v, :h)"), list(rows))
    conn.commit()


def stage_registry_persons(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Stage registry volunteers, and commit.

    Args:
        conn: the connection holding the staging tables.
        rows: ``{"v": registry id, "r": region code or None, "t": national total hours in hundredths or None,
            "th": the registry's training hours in hundredths or None}`` for each volunteer (not empty).
    """
    conn.execute(text("INSERT INTO rc_reg_person (volunteer_rid, region_code, total_hours, training_hours) "
                      "VALUES (:v, :r, :t, :th)"), [{"th": None, **r} for r in rows])
    conn.commit()


def staged_hours_by_person(conn: Connection, *, c_order: bool) -> CursorResult[Any]:
    """The staged registry hours per person, in ascending registry id (bytes).

    Args:
        conn: the connection holding the staging tables (the result streams from it; close it when done).
        c_order: the database orders text by bytes (:func:`regsync.db.platform.scan.uses_c_order`); otherwise
            the order is ``COLLATE "C"``.

    Returns:
        Rows of ``rid`` (the volunteer's registry id), ``h`` (ACCEPTED hours staged, hundredths; 0 for a person
        with none), ``total`` (national total hours, hundredths, or ``None``), ``region`` (region code or
        ``None``) and ``training`` (the registry's training hours, hundredths, or ``None``).
    """
    sql = ("SELECT rid, SUM(h) AS h, MAX(total) AS total, MAX(region) AS region, MAX(training) AS training FROM ("
           "SELECT volunteer_rid AS rid, hours AS h, NULL AS total, NULL AS region, NULL AS training "
           "FROM rc_reg_hours "
           "UNION ALL SELECT volunteer_rid, 0, total_hours, region_code, training_hours FROM rc_reg_person) x "
           "GROUP BY rid ORDER BY 1")
    if not c_order:
        sql = sql.replace("ORDER BY 1", 'ORDER BY 1 COLLATE "C"')
    return conn.execute(text(sql))


# ---------------------------------------------------------------------------------------------- links


def linked_registry_ids(conn: Connection, kind: str, registry_ids: Sequence[str]) -> set[str]:
    """Those of ``registry_ids`` that a link of ``kind`` names (one query per :data:`LINK_CHUNK` ids, in sorted
    order)."""
    linked: set[str] = set()
    for chunk in chunks(sorted(registry_ids), LINK_CHUNK):
        linked.update(conn.execute(select(Link.registry_id).where(
            Link.entity == kind, Link.registry_id.in_(list(chunk)))).scalars())
    return linked


def linked_local_ids(conn: Connection, kind: str, registry_id: str) -> list[int]:
    """The local ids of ``kind`` linked to ``registry_id``: the primary row first, then a person's duplicate rows
    by local id (``[]`` when unlinked)."""
    return [int(i) for i in conn.execute(select(Link.local_id).where(
        Link.entity == kind, Link.registry_id == registry_id).order_by(Link.is_duplicate, Link.local_id)).scalars()]


def link_id(conn: Connection, kind: str, local_id: int) -> int:
    """The id of the link of the local row (``kind``, ``local_id``).

    Raises:
        sqlalchemy.exc.NoResultFound: the row has no link.
    """
    return int(conn.execute(select(Link.id).where(Link.entity == kind, Link.local_id == local_id)).scalar_one())


# ---------------------------------------------------------------------------------------------- resync's audit row


def start_resync_audit(engine: Engine, *, actor: str, target: str, reason: str, run_id: int | None) -> int:
    """Write the ``audit`` row of a resync before its work (action ``resync``, details ``{"run_id", "state":
    "started"}``), in its own transaction; returns its id.

    Args:
        engine: the local store.
        actor: who (masked already, at most 64 characters).
        target: what (:meth:`regsync.flows.resync.Target.describe`).
        reason: why (masked already).
        run_id: the resync's ``run`` row.
    """
    with engine.begin() as conn:
        return int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
            at=utcnow(), actor=actor, action="resync", target=target, reason=reason,
            details=json.dumps({"run_id": run_id, "state": "started"}))).inserted_primary_key[0])


def finish_resync_audit(engine: Engine, audit_id: int | None, details: Mapping[str, Any]) -> None:
    """Complete a resync's ``audit`` row: its details become ``details`` (JSON, keys sorted), in its own
    transaction."""
    with engine.begin() as conn:
        conn.execute(update(Audit).where(Audit.id == audit_id).values(details=json.dumps(details, sort_keys=True)))


__all__ = [
    "LINK_CHUNK",
    "drop_hours_staging",
    "finish_resync_audit",
    "link_id",
    "linked_local_ids",
    "linked_registry_ids",
    "open_hours_staging",
    "stage_registry_hours",
    "stage_registry_persons",
    "staged_hours_by_person",
    "start_resync_audit",
]
