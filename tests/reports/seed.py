"""Fixed runs and discrepancies, shaped like what sync, inbound and reconcile write, for the report tests.

Everything is fixed (times, ids, values), so the reports over it are byte-for-byte the same on SQLite and
PostgreSQL and can be compared with snapshots. Volunteers' ID numbers and phones are valid-looking but made up.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, Engine, text
from stdnum.cn import ric

from regsync.domain.hours import hours_summary

#: Report time of the snapshots: 2026-11-29 09:30 +08:00.
NOW = dt.datetime(2026, 11, 29, 1, 30)


def id_number(area: str, birth: str, seq: int) -> str:
    body = f"{area}{birth}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


VOLUNTEERS = [  # (name, id number, phone, region)
    ("张伟", id_number("230103", "19880512", 123), "13945678901", "230103"),
    ("王秀英", id_number("230202", "19750203", 242), "0452-2345678", "230202"),
    ("阿依古丽·买买提", id_number("230602", "19990917", 88), "15804511234", "230602"),
]
#: The full values that must never appear in a masked report.
FULL_VALUES = [v[1] for v in VOLUNTEERS] + ["13945678901", "0452-2345678", "15804511234"]

RECONCILE_IDS = (1, 3, 5)
LAST_RECONCILE = 5
SYNC_RUN = 2
ADOPT_RUN = 6
RUNNING_RUN = 7


def _insert(conn: Connection, table: str, **row: Any) -> int:
    cols = ", ".join(row)
    vals = ", ".join(f":{k}" for k in row)
    return int(conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING id"), row).scalar_one())


def run(conn: Connection, kind: str, started: dt.datetime, minutes: float | None, status: str,
        summary: dict[str, Any]) -> int:
    finished = None if minutes is None else started + dt.timedelta(minutes=minutes)
    return _insert(conn, "run", kind=kind, started_at=started, finished_at=finished, status=status,
                   summary=json.dumps(summary, sort_keys=True, ensure_ascii=False))


def discrepancy(conn: Connection, run_id: int, kind: str, entity: str, *, local_id: int | None = None,
                registry_id: str | None = None, fields: list[str] | None = None,
                details: dict[str, Any] | None = None, city: str | None = "2301", line: str | None = "regional",
                action: str | None = None, state: str | None = None, at: dt.datetime) -> int:
    return _insert(conn, "discrepancy", run_id=run_id, kind=kind, entity=entity, local_id=local_id,
                   registry_id=registry_id, fields=json.dumps(fields or []),
                   details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True), city_code=city,
                   org_line=line, action=action, action_state=state, detected_at=at)


HOURS_ROWS = [
    ("2301", "regional", 12_050, 11_800, 11_800),
    ("2301", "regional", 160_000, 160_000, 161_200),
    ("2301", "specialized", 31_000, 31_000, 31_000),
    ("2302", "regional", 9_950, 9_950, 10_100),
    ("2302", "specialized", 64_000, 62_500, 62_500),
    ("2306", "specialized", 250, 0, 0),
    (None, None, 1_000, 1_000, 1_000),
]
#: Run 5's hours that the registry does not have at all (volunteers it does not know), hundredths of an hour.
NOT_IN_REGISTRY = {"volunteers": 3, "service_records": 12, "local_hours": 4_575,
                   "by_city": {"2301": {"volunteers": 2, "service_records": 9, "local_hours": 3_075},
                               "2305": {"volunteers": 1, "service_records": 3, "local_hours": 1_500}}}


def seed(engine: Engine) -> dict[str, Any]:
    """Seven runs (ids 1–7) and their discrepancies; volunteers 1–3. Returns the ids the tests name."""
    with engine.begin() as conn:
        vids = [_insert(conn, "volunteer", name=n, id_type="RESIDENT_ID", id_number=i, phone=p, region_code=r,
                        skills="[]", home_province="23", status="ACTIVE", gender="M",
                        registered_at=dt.datetime(2020, 1, 1)) for n, i, p, r in VOLUNTEERS]
        d1 = dt.datetime(2026, 11, 25, 18, 0)
        r1 = run(conn, "reconcile", d1, 41.5, "success",
                 {"compared": {"orgs": 1_204, "volunteers": 9_600}, "repair": False, "seconds": 2_490.0})
        for kind, city in (("missing_in_registry", "2301"), ("field_mismatch", "2302"), ("orphan", "2301")):
            discrepancy(conn, r1, kind, "volunteer", local_id=vids[0], city=city, at=d1)
        d2 = dt.datetime(2026, 11, 26, 3, 15)
        run(conn, "sync", d2, 2.25, "partial",
            {"pushed": {"volunteers": 12, "service_records": 340}, "failed": {"volunteers": 1},
             "failed_by_code": {"INVALID_PHONE": 1}, "backlog": 0, "batches": 3, "seconds": 135.2,
             "error": "phone 13945678901 refused"})
        d3 = dt.datetime(2026, 11, 26, 18, 0)
        r3 = run(conn, "reconcile", d3, 39.0, "partial", {"compared": {"volunteers": 9_612}, "repair": True})
        for i, (kind, line) in enumerate((("missing_in_registry", "regional"), ("missing_in_registry", "specialized"),
                                          ("hours_mismatch", "specialized"), ("stale_link", None),
                                          ("field_mismatch", "regional"))):
            discrepancy(conn, r3, kind, "service_record" if kind == "hours_mismatch" else "volunteer",
                        local_id=100 + i, city=("2301", "2306")[i % 2], line=line, action="push", state="done",
                        at=d3)
        d4 = dt.datetime(2026, 11, 27, 4, 0)
        run(conn, "inbound", d4, 0.5, "partial", {"applied": 31, "changes": 35, "reconcile_due": True,
                                                  "conflicts": {"contact": 2}})
        d5 = dt.datetime(2026, 11, 27, 18, 0)
        r5 = run(conn, "reconcile", d5, 44.25, "partial",
                 {"compared": {"orgs": 1_210, "volunteers": 9_615, "service_records": 89_112}, "repair": True,
                  "queued": 4, "seconds": 2_655.0,
                  "hours": {**hours_summary(HOURS_ROWS), "not_in_registry": NOT_IN_REGISTRY}})
        at = d5 + dt.timedelta(minutes=7)
        discrepancy(conn, r5, "missing_in_registry", "volunteer", local_id=vids[0], city="2301",
                    details={"name": "张*", "reason": "never pushed: INVALID_PHONE"}, action="push", state="queued",
                    at=at)
        discrepancy(conn, r5, "missing_in_registry", "org", local_id=17, city="2302", line="specialized",
                    details={"name": "齐齐哈尔市青年志愿者支队", "level": "CITY_DETACHMENT"}, action="push",
                    state="queued", at=at)
        discrepancy(conn, r5, "missing_in_registry", "service_record", local_id=88_001, city="2306",
                    line="specialized", details={"hours": 250, "service_date": "2026-11-20"}, action="push",
                    state="failed", at=at)
        discrepancy(conn, r5, "missing_locally", "volunteer", registry_id="V23020000042", city="2302", line=None,
                    details={"name": "刘*", "idNumber": "230202********2421"}, action="pull", state="done", at=at)
        discrepancy(conn, r5, "field_mismatch", "volunteer", local_id=vids[1], registry_id="V23020000077",
                    city="2302", fields=["phone", "regionCode"],
                    details={"local": {"phone": "0452-***5678", "regionCode": "230202"},
                             "registry": {"phone": "0452-***9999", "regionCode": "230203"}},
                    action="none", state="held", at=at)
        discrepancy(conn, r5, "field_mismatch", "org", local_id=23, registry_id="O23010000003", city="2301",
                    fields=["name"], details={"local": {"name": "道里区学雷锋志愿服务大队"},
                                              "registry": {"name": "道里区志愿服务大队"}},
                    action="push", state="queued", at=at)
        discrepancy(conn, r5, "hours_mismatch", "volunteer", local_id=vids[0], registry_id="V23010000011",
                    city="2301", details={"local_hours": 12_050, "registry_hours": 11_800}, action="push",
                    state="queued", at=at)
        discrepancy(conn, r5, "hours_mismatch", "volunteer", local_id=vids[2], registry_id="V23060000005",
                    city="2302", line="specialized",
                    details={"local_hours": 64_000, "registry_hours": 62_500}, at=at)
        discrepancy(conn, r5, "stale_link", "membership", local_id=5_120, registry_id="M23010000400",
                    city="2301", line="specialized", details={"link_version": 3, "registry_version": 5},
                    action="relink", state="done", at=at)
        discrepancy(conn, r5, "duplicate_person", "volunteer", local_id=vids[2], registry_id="V23060000005",
                    city="2306", line=None, details={"rows": [vids[2], 9_021], "idNumber": "230602********0880"},
                    action="none", state="held", at=at)
        discrepancy(conn, r5, "orphan", "activity", local_id=700, city=None, line=None,
                    details={"title": "社区环境清洁活动", "missing": "org"}, action="none", state="not_allowed",
                    at=at)
        # the registry's refusals the report joins in: the volunteer's change refused, the service record waiting
        # for a parent that was; an older refusal of the volunteer, since fixed, is not shown
        for entity, local_id, state, code in (("volunteer", vids[0], "sent", "INVALID_ID_NUMBER"),
                                              ("volunteer", vids[0], "failed", "INVALID_PHONE"),
                                              ("service_record", 88_001, "blocked", "PARENT_FAILED")):
            _insert(conn, "outbox", entity=entity, local_id=local_id, op="update", priority=2, state=state,
                    attempts=1, last_code=code, last_error=f"{code}: phone 13945678901")
        run(conn, "adopt", dt.datetime(2026, 11, 28, 2, 0), 1.0, "failed", {"error": "registry refused: FORBIDDEN"})
        run(conn, "reconcile", dt.datetime(2026, 11, 28, 18, 0), None, "running", {})
    return {"volunteers": vids}
