"""v1.1 §4.8's annual scheme for an org (``NOT_EARNED``) as the store answers it: one count over the service
records' ``org_id``/``station_id`` indexes (never the province's records read into Python), the records a batch
changed counted as they are now, and a store made before those columns upgraded when it is opened. Statements and
query plans, never time. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, inspect, text

from conftest import C11, C23, C23B, PG_URL, Env, activity, commendation, service_record, volunteer
from regsync.sandbox.app import create_app
from regsync.sandbox.store import Store

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MARCH = {"startsAt": "2025-03-01T08:00:00+08:00", "endsAt": "2025-03-31T20:00:00+08:00"}
NEW_INDEXES = ("ix_sbx_service_records_org_date", "ix_sbx_service_records_station_date")


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent on ``engine`` inside the block, ``(sql, parameters)`` each."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def plan(engine: Engine, sql: str, params: Any) -> str:
    """The query plan of ``sql``: SQLite's ``EXPLAIN QUERY PLAN``; PostgreSQL's ``EXPLAIN`` with sequential scans
    off, so that a plan still scanning the table is one no index can serve."""
    with engine.connect() as conn, conn.begin():
        if engine.dialect.name == "sqlite":
            return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))


def scheme(subject: str, tier: str, **over: Any) -> dict[str, Any]:
    fields = {"title": "2025年度志愿服务嘉许", "scheme": "PROVINCIAL_ANNUAL", "tier": tier, "year": 2025, **over}
    return commendation(subject, "ORG", **fields)


def services(env: Env, team: str, act: str, vol: str, days: range) -> list[str]:
    """ACCEPTED 1.00 h service records of ``vol`` in March 2025, one a day, by one batch."""
    ops = [
        {"op": "create", "type": "serviceRecord", "idempotencyKey": env.api.key(),
         "body": service_record(vol, act, team, serviceDate=f"2025-03-{d:02d}",
                                startsAt=f"2025-03-{d:02d}T08:00:00+08:00", endsAt=f"2025-03-{d:02d}T20:00:00+08:00",
                                hours="1.00")}
        for d in days
    ]
    results = env.api.batch(ops).json()["data"]["results"]
    assert all(x["status"] == 201 for x in results), results
    return [x["id"] for x in results]


def fifty(env: Env) -> dict[str, Any]:
    """The org tree, a second team elsewhere with records of its own, and 50 records of the first team in 2025."""
    ids = env.tree()
    team = ids["GRASSROOTS_TEAM"]
    act = env.api.create("activities", activity(team, **MARCH)).json()["data"]["id"]
    vols = [env.api.create("volunteers", volunteer()).json()["data"]["id"] for _ in range(2)]
    records = [r for v in vols for r in services(env, team, act, v, range(1, 26))]
    other = env.tree()["GRASSROOTS_TEAM"]  # another team of the province: its records are not the first's
    other_act = env.api.create("activities", activity(other, **MARCH)).json()["data"]["id"]
    services(env, other, other_act, vols[0], range(1, 11))
    return {"ids": ids, "team": team, "station": ids["COMMUNITY_STATION"], "records": records, "vols": vols}


def test_an_orgs_count_is_one_indexed_query_bound_to_the_org(env):
    d = fifty(env)
    engine = env.sb.store.engine
    for subject in (d["team"], d["station"]):
        with statements(engine) as seen:
            r = env.api.create("commendations", scheme(subject, "HONOR"))
        assert r.status_code == 201, r.text
        reads = [(sql, p) for sql, p in seen if "sbx_service_records" in sql]
        assert len(reads) == 1, reads  # one statement, a count: no record of the province read into Python
        sql, params = reads[0]
        values = list(params.values()) if isinstance(params, dict) else list(params)
        assert "count(" in sql.lower() and " doc" not in sql.lower()
        assert subject in values and "23" not in values  # narrowed by the org, not by the province
        got = plan(engine, sql, params)
        assert all(name in got for name in NEW_INDEXES), got  # orgId over one index, stationId over the other
        assert "SCAN sbx_service_records" not in got and "Seq Scan" not in got, got


def test_records_a_batch_changed_count_as_they_are_now(env):
    d = fifty(env)
    team, station = d["team"], d["station"]
    act = env.api.create("activities", activity(team, **MARCH)).json()["data"]["id"]
    late = service_record(d["vols"][1], act, team, serviceDate="2025-03-28", startsAt="2025-03-28T08:00:00+08:00",
                          endsAt="2025-03-28T09:00:00+08:00", hours="1.00")
    ops = [
        {"op": "revoke", "type": "serviceRecord", "id": d["records"][0], "body": {"reason": "录入错误"}},
        {"op": "create", "type": "commendation", "idempotencyKey": env.api.key(), "body": scheme(team, "HONOR")},
        {"op": "create", "type": "serviceRecord", "idempotencyKey": env.api.key(), "body": late},
        {"op": "create", "type": "commendation", "idempotencyKey": env.api.key(), "body": scheme(station, "HONOR")},
    ]
    res = env.api.batch(ops).json()["data"]["results"]
    assert [x["status"] for x in res] == [200, 422, 201, 201], res
    # the team: 49 once the revoke before it in the batch counts; the station: 50 with the record made before it
    assert res[1]["data"]["errors"][0]["code"] == "NOT_EARNED" and "has 49" in res[1]["data"]["errors"][0]["message"]


def _old_store(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    if backend == "postgres":
        return PG_URL, f"sbx_test_{uuid.uuid4().hex[:10]}"
    return f"sqlite:///{tmp_path / 'sandbox.db'}", None


def test_a_store_made_before_the_org_columns_gets_them_when_opened(backend, tmp_path):
    url, schema = _old_store(backend, tmp_path)
    store = Store(url, schema=schema)
    try:
        app = create_app("", [C23, C23B, C11], admin=True, store=store, rate_limit_rps=10_000,
                         rate_limit_burst=10_000)
        with TestClient(app, base_url="http://testserver") as http:
            d = fifty(Env(http, app))
        # the service-record table as an older regsync made it: no org_id, station_id, service_date
        where = f'"{schema}".' if schema else ""
        with store.engine.begin() as conn:
            for name in NEW_INDEXES:
                conn.execute(text(f"DROP INDEX {where}{name}"))
            for column in ("org_id", "station_id", "service_date"):
                conn.execute(text(f"ALTER TABLE {where}sbx_service_records DROP COLUMN {column}"))
        store.close()
        store = Store(url, schema=schema)
        found = inspect(store.engine)
        assert {"org_id", "station_id", "service_date"} <= {
            c["name"] for c in found.get_columns("sbx_service_records", schema=schema)
        }
        assert set(NEW_INDEXES) <= {i["name"] for i in found.get_indexes("sbx_service_records", schema=schema)}
        app = create_app("", [C23, C23B, C11], admin=True, store=store, rate_limit_rps=10_000,
                         rate_limit_burst=10_000)
        with TestClient(app, base_url="http://testserver") as http:
            env = Env(http, app)
            for subject in (d["team"], d["station"]):  # the old records filled in: 50 for each
                r = env.api.create("commendations", scheme(subject, "HONOR"))
                assert r.status_code == 201, r.text
            r = env.api.create("commendations", scheme(d["team"], "BRONZE"))
            assert r.status_code == 422 and "has 50" in r.json()["data"]["errors"][0]["message"], r.text
        Store(url, schema=schema).close()  # opened again, up to date: nothing to do
    finally:
        store.drop_all()
        store.close()
