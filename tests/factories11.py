"""Rows of the v1.1 kinds in the reference schema (registry-api.md §4.6–§4.9), beside :mod:`factories`.

Hours are int hundredths; times naive UTC (09:00–12:00 +08:00 is 01:00–04:00 UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from factories import insert


def training(conn: Connection, org_id: int, **kw: Any) -> int:
    row = dict(org_id=org_id, title="志愿服务通用培训", training_type="GENERAL", mode="IN_PERSON", region_code="230102",
               address="哈尔滨市道里区安静街1号", starts_at=dt.datetime(2026, 4, 1, 1, 0),
               ends_at=dt.datetime(2026, 4, 1, 5, 0), class_hours=300, contact_name="王老师",
               contact_phone="13912340000", status="SCHEDULED")
    row.update(kw)
    return insert(conn, "training", **row)


def training_record(conn: Connection, training_id: int, volunteer_id: int, **kw: Any) -> int:
    row = dict(training_id=training_id, volunteer_id=volunteer_id, completed_on=dt.date(2026, 4, 1), class_hours=300,
               result="PASSED", status="ACCEPTED")
    row.update(kw)
    return insert(conn, "training_record", **row)


def commendation(conn: Connection, *, volunteer_id: int | None = None, org_id: int | None = None, **kw: Any) -> int:
    row = dict(volunteer_id=volunteer_id, org_id=org_id, title="优秀志愿者", scheme=None, tier=None, year=None,
               awarded_on=dt.date(2026, 3, 5), issuer="哈尔滨市志愿服务联合会", document_name="关于表彰优秀志愿者的决定",
               document_number="哈志联〔2026〕3号", content=None, status="ACTIVE")
    row.update(kw)
    return insert(conn, "commendation", **row)


def evaluation(conn: Connection, activity_id: int, volunteer_id: int, org_id: int, **kw: Any) -> int:
    row = dict(activity_id=activity_id, volunteer_id=volunteer_id, evaluator_org_id=org_id, punctuality=5, attitude=5,
               competence=4, comment="认真负责", evaluated_on=dt.date(2026, 5, 10), status="ACTIVE")
    row.update(kw)
    return insert(conn, "evaluation", **row)


def add_v11_records(conn: Connection, *, trainings: int, per_training: int, commendations: int,
                    evaluations: int) -> dict[str, int]:
    """Records of the v1.1 kinds over a generated data set (until the generator makes its own): trainings of
    active grassroots teams with records of active volunteers, commendations of volunteers, evaluations of
    completed activities' accepted service records by the activity's org. Clean data: what the registry refuses
    is what depends on a generated record it refused. Returns how many of each were made."""
    made = {"training": 0, "training_record": 0, "commendation": 0, "evaluation": 0}
    teams = conn.execute(text("SELECT id, region_code FROM organization WHERE level = 'GRASSROOTS_TEAM' "
                              "AND status = 'ACTIVE' ORDER BY id LIMIT :n"), {"n": trainings}).all()
    vols = [r[0] for r in conn.execute(text("SELECT id FROM volunteer WHERE status = 'ACTIVE' ORDER BY id LIMIT :n"),
                                       {"n": max(per_training, commendations)})]
    for i, (team, region) in enumerate(teams):
        tr = training(conn, team, region_code=str(region)[:6], title=f"志愿服务通用培训（第{i + 1}期）")
        made["training"] += 1
        for v in vols[:per_training]:
            training_record(conn, tr, v, class_hours=150 if v % 2 else 300, result="ATTENDED" if v % 2 else "PASSED")
            made["training_record"] += 1
    for v in vols[:commendations]:
        commendation(conn, volunteer_id=v, title=f"优秀志愿者{v}")
        made["commendation"] += 1
    today = dt.date.today()
    for act, vol, org, ends in conn.execute(text(
            "SELECT DISTINCT sr.activity_id, sr.volunteer_id, a.org_id, a.ends_at FROM service_record sr "
            "JOIN activity a ON a.id = sr.activity_id WHERE sr.status = 'ACCEPTED' AND a.status = 'COMPLETED' "
            "AND a.ends_at < :before ORDER BY sr.activity_id, sr.volunteer_id LIMIT :n"),
            {"before": dt.datetime(today.year, today.month, today.day) - dt.timedelta(days=2), "n": evaluations}):
        ends = ends if isinstance(ends, dt.datetime) else dt.datetime.fromisoformat(str(ends))
        evaluation(conn, act, vol, org, evaluated_on=(ends + dt.timedelta(hours=8)).date() + dt.timedelta(days=1))
        made["evaluation"] += 1
    return made
