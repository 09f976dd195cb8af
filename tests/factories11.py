"""Rows of the v1.1 kinds in the reference schema (registry-api.md §4.6–§4.9), beside :mod:`factories`.

Hours are int hundredths; times naive UTC (09:00–12:00 +08:00 is 01:00–04:00 UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection

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
