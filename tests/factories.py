"""Small builders of valid local records, for tests that need a handful rather than a generated province."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from sqlalchemy import Connection, text
from stdnum.cn import ric

_seq = itertools.count(1)

#: The hash key of the tests' stores: the ``settings`` fixture's and, through ``REGSYNC_HASH_KEY`` (set for every
#: test by conftest.py), the commands'. Not the public default, which a PostgreSQL store refuses.
TEST_HASH_KEY = "test-only-hash-key-0123456789abcdef"


def id_number(birth: dt.date = dt.date(1990, 1, 1), area: str = "230102", female: bool = False) -> str:
    """A valid 18-character resident ID number (GB 11643-1999) with a fresh sequence number."""
    n = next(_seq) % 500
    seq = n * 2 + (0 if female else 1)
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def insert(conn: Connection, table: str, **row: Any) -> int:
    cols = ", ".join(row)
    vals = ", ".join(f":{k}" for k in row)
    return conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING id"), row).scalar_one()


def org(conn: Connection, level: str, parent: int | None = None, station: int | None = None, **kw: Any) -> int:
    org_type = "SPECIALIZED" if level in {"PROVINCIAL_CORPS", "CITY_DETACHMENT", "COUNTY_UNIT",
                                          "GRASSROOTS_TEAM"} else "REGIONAL"
    row = dict(name=f"测试{level}组织{next(_seq)}", org_type=org_type, level=level, parent_id=parent,
               station_id=station, region_code="230102", service_categories=json.dumps(["COMMUNITY"]),
               contact_name="王芳", contact_phone="13900001111", established_on=dt.date(2015, 3, 1),
               status="ACTIVE", uscc=None, street_code=None)
    if level in {"CITY_CORPS", "PROVINCIAL_CORPS"}:
        row["uscc"] = uscc()
    if level in {"STREET_STATION", "COMMUNITY_STATION"}:
        row["street_code"] = "230102001001"
    row.update(kw)
    return insert(conn, "organization", **row)


def uscc() -> str:
    from stdnum.cn import uscc as u
    body = f"51230100MJ{next(_seq):07d}"
    return body + u.calc_check_digit(body)


def org_tree(conn: Connection) -> dict[str, int]:
    """Both lines down to one grassroots team managed by one community station."""
    t: dict[str, int] = {}
    t["city"] = org(conn, "CITY_CORPS")
    t["district"] = org(conn, "DISTRICT_BRIGADE", t["city"])
    t["street"] = org(conn, "STREET_STATION", t["district"])
    t["community"] = org(conn, "COMMUNITY_STATION", t["street"])
    t["province"] = org(conn, "PROVINCIAL_CORPS")
    t["detachment"] = org(conn, "CITY_DETACHMENT", t["province"])
    t["unit"] = org(conn, "COUNTY_UNIT", t["detachment"])
    t["team"] = org(conn, "GRASSROOTS_TEAM", t["unit"], t["community"])
    return t


def volunteer(conn: Connection, **kw: Any) -> int:
    female = kw.pop("female", False)
    birth = kw.pop("birth", dt.date(1990, 1, 1))
    number = kw.pop("id_number", None) or id_number(birth, female=female)
    row = dict(name="李明", id_type="RESIDENT_ID", id_number=number, gender="F" if female else "M",
               birth_date=birth, phone="13912345678", region_code="230102", skills=json.dumps(["急救"]),
               home_province="23", status="ACTIVE", registered_at=dt.datetime(2020, 1, 1))
    row.update(kw)
    return insert(conn, "volunteer", **row)


def activity(conn: Connection, org_id: int, **kw: Any) -> int:
    row = dict(org_id=org_id, title="社区环境清洁活动", category="ENVIRONMENT", region_code="230102",
               starts_at=dt.datetime(2026, 5, 1, 0, 0), ends_at=dt.datetime(2026, 5, 3, 10, 0),
               planned_headcount=20, status="PUBLISHED")
    row.update(kw)
    return insert(conn, "activity", **row)


def service_record(conn: Connection, volunteer_id: int, activity_id: int, org_id: int, *, hours: int = 250,
                   day: int = 1, **kw: Any) -> int:
    # 09:00 to 12:00 in +08:00 is 01:00 to 04:00 UTC
    row = dict(volunteer_id=volunteer_id, activity_id=activity_id, org_id=org_id,
               service_date=dt.date(2026, 5, day), starts_at=dt.datetime(2026, 5, day, 1, 0),
               ends_at=dt.datetime(2026, 5, day, 4, 0), hours=hours, status="ACCEPTED")
    row.update(kw)
    return insert(conn, "service_record", **row)


def chain(conn: Connection) -> tuple[dict[str, int], int, int, int]:
    """An org tree, a volunteer, an activity of the tree's team and a service record of the volunteer on it:
    ``(tree, volunteer_id, activity_id, service_record_id)``."""
    t = org_tree(conn)
    v = volunteer(conn)
    a = activity(conn, t["team"])
    return t, v, a, service_record(conn, v, a, t["team"])


def membership(conn: Connection, volunteer_id: int, org_id: int, **kw: Any) -> int:
    row = dict(volunteer_id=volunteer_id, org_id=org_id, joined_on=dt.date(2024, 1, 1), left_on=None)
    row.update(kw)
    return insert(conn, "membership", **row)
