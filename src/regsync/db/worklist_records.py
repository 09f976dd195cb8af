"""The records of a worklist page as a person names them (issue 15, point 2): display name, the person's ID number
and phone (in clear: the caller masks them unless personal data was asked for, audited), and the platform's own key
(a city cannot search by a masked ID number).

Display names: an organization's name; a volunteer's name; a membership as "volunteer — organization"; an activity's
title; a service record as "volunteer — activity title (date)"; (registry-api.md v1.1) a training's title; a training
record as "volunteer — training title (date completed)"; a commendation as "volunteer or organization — title
(date awarded)"; an evaluation as "volunteer — activity title (date evaluated)". The ID number and phone of a
membership, a service record, a training record, an evaluation and a volunteer's commendation are their
volunteer's. Reads go through the canonical names (:func:`regsync.db.own.names`) and the
platform's keys through the installed mapping (:func:`regsync.db.platform.mapped.mapped_platform`), one query per
kind and chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, text

from regsync.db.own import names
from regsync.db.platform.mapped import MappedPlatform
from regsync.db.query import CHUNK, chunks

__all__ = ["RecordFacts", "describe"]


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """A record as the worklist names it: ``name`` (display), ``id_number`` and ``phone`` in clear (or ``None``),
    ``platform_key`` (the platform's own key, as text)."""

    name: str
    id_number: str | None
    phone: str | None
    platform_key: str | None


_SQL = {
    "org": "SELECT o.id, o.name AS name, NULL AS id_number, NULL AS phone, NULL AS extra FROM {organization} o "
           "WHERE o.id IN :ids",
    "volunteer": "SELECT v.id, v.name AS name, v.id_number, v.phone, NULL AS extra FROM {volunteer} v "
                 "WHERE v.id IN :ids",
    "membership": "SELECT m.id, v.name AS name, v.id_number, v.phone, o.name AS extra FROM {membership} m "
                  "LEFT JOIN {volunteer} v ON v.id = m.volunteer_id LEFT JOIN {organization} o ON o.id = m.org_id "
                  "WHERE m.id IN :ids",
    "activity": "SELECT a.id, a.title AS name, NULL AS id_number, NULL AS phone, NULL AS extra FROM {activity} a "
                "WHERE a.id IN :ids",
    "service_record": "SELECT s.id, v.name AS name, v.id_number, v.phone, a.title AS extra, s.service_date "
                      "FROM {service_record} s LEFT JOIN {volunteer} v ON v.id = s.volunteer_id "
                      "LEFT JOIN {activity} a ON a.id = s.activity_id WHERE s.id IN :ids",
    "training": "SELECT t.id, t.title AS name, NULL AS id_number, NULL AS phone, NULL AS extra FROM {training} t "
                "WHERE t.id IN :ids",
    "training_record": "SELECT s.id, v.name AS name, v.id_number, v.phone, t.title AS extra, s.completed_on AS day "
                       "FROM {training_record} s LEFT JOIN {volunteer} v ON v.id = s.volunteer_id "
                       "LEFT JOIN {training} t ON t.id = s.training_id WHERE s.id IN :ids",
    "commendation": "SELECT c.id, COALESCE(v.name, o.name) AS name, v.id_number, v.phone, c.title AS extra, "
                    "c.awarded_on AS day FROM {commendation} c LEFT JOIN {volunteer} v ON v.id = c.volunteer_id "
                    "LEFT JOIN {organization} o ON o.id = c.org_id WHERE c.id IN :ids",
    "evaluation": "SELECT e.id, v.name AS name, v.id_number, v.phone, a.title AS extra, e.evaluated_on AS day "
                  "FROM {evaluation} e LEFT JOIN {volunteer} v ON v.id = e.volunteer_id "
                  "LEFT JOIN {activity} a ON a.id = e.activity_id WHERE e.id IN :ids",
}


def describe(conn: Connection, platform: MappedPlatform | None, kind: str, local_ids: Sequence[int]
             ) -> dict[int, RecordFacts]:
    """The records ``local_ids`` of ``kind`` that exist, by local id.

    Args:
        conn: a connection to the local store.
        platform: the installed mapping (:func:`~regsync.db.platform.mapped.mapped_platform`), or ``None`` for
            the reference tables (the key is the local id).
        kind: a record kind.
        local_ids: local ids.
    """
    sql = _SQL.get(kind)
    if sql is None or not local_ids:
        return {}
    n = names(conn)
    stmt = text(sql.format_map(n)).bindparams(bindparam("ids", expanding=True))
    out: dict[int, RecordFacts] = {}
    for chunk in chunks(sorted(set(local_ids)), CHUNK):
        keys = _keys(conn, platform, kind, chunk)
        for r in conn.execute(stmt, {"ids": list(chunk)}).mappings():
            lid = int(r["id"])
            out[lid] = RecordFacts(_name(kind, r), r["id_number"], r["phone"], keys.get(lid))
    return out


def _keys(conn: Connection, platform: MappedPlatform | None, kind: str, ids: Sequence[int]) -> dict[int, str]:
    if platform is None:
        return {int(i): str(i) for i in ids}
    return {int(k): str(v) for k, v in platform.platform_keys(conn, kind, ids).items()}


def _name(kind: str, r: Any) -> str:
    name = str(r["name"] or "—")
    if kind == "membership":
        return f"{name} — {r['extra'] or '—'}"
    if kind == "service_record":
        day = r["service_date"]
        return f"{name} — {r['extra'] or '—'} ({day})" if day else f"{name} — {r['extra'] or '—'}"
    if kind in ("training_record", "commendation", "evaluation"):
        day = r["day"]
        return f"{name} — {r['extra'] or '—'} ({day})" if day else f"{name} — {r['extra'] or '—'}"
    return name
