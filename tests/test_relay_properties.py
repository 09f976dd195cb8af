"""Property-based (hypothesis): any sequence of local changes, syncs and registry faults ends, once the registry is
quiet again and the relay has synced until nothing waits, in the invariants of :mod:`invariants`.

The changes include corrections under ended parents (issue 12, item 2): a team dissolved or an activity cancelled on
the platform, then the hours of a service record under it corrected, or hours corrected beyond the record's span;
the registry refuses such a correction, and its accepted record must keep its hours."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

import factories as f
from invariants import check_invariants
from myutil import drop_my_database, make_my_engine
from pgutil import PG_URL, drop_pg_schema, make_pg_schema_engine
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine
from regsync.flows.sync import run_sync
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, RelaySettings, Settings

FAULTS = st.fixed_dictionaries({}, optional={
    "error_rate": st.sampled_from([0.1, 0.3]),
    "lost_answer_rate": st.sampled_from([0.1, 0.3]),
    "rate_limit_rps": st.sampled_from([5, 10]),
    "token_ttl_s": st.just(1),
    "firewall_rate": st.just(0.2),
})

ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("volunteer"), st.booleans()),
    st.tuples(st.just("phone"), st.integers(0, 30)),
    st.tuples(st.just("record"), st.integers(0, 30), st.integers(1, 3)),  # the activity runs May 1-3
    st.tuples(st.just("hours"), st.integers(0, 60), st.sampled_from([50, 125, 300, 325])),  # 325: over the 3 h span
    st.tuples(st.just("revoke"), st.integers(0, 60)),
    st.tuples(st.just("end"), st.sampled_from(["org", "activity"])),  # team B dissolved, activity C cancelled
    # a restore or import script: a row deleted and another record inserted under the same explicit id
    st.tuples(st.just("reuse_record"), st.integers(0, 60), st.integers(0, 30)),
    st.tuples(st.just("reuse_volunteer"), st.integers(0, 30)),
    st.tuples(st.just("sync"),),
    st.tuples(st.just("faults"), FAULTS),
), min_size=1, max_size=10)

_counter = itertools.count()


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(admin=True, seed=5) as sb:
        yield sb


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "mariadb"])
@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(actions=ACTIONS)
@example(actions=[("sync",), ("end", "org"), ("end", "activity"), ("sync",), ("hours", 2, 125), ("hours", 1, 50),
                  ("hours", 0, 325), ("sync",)])
# shrunk on MariaDB, and so on every engine: a key used again before its first create was sent; its reuse rows stayed
# reuse rows once the record was made, and the revocation's step made another, refused for the cancelled activity
@example(actions=[("revoke", 1), ("end", "activity"), ("reuse_volunteer", 1)])
def test_any_sequence_of_changes_and_faults_ends_in_the_invariants(engine_name, sandbox, tmp_path_factory,
                                                                   actions) -> None:
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    httpx.put(f"{sandbox.admin_url}/faults", json={"error_rate": 0, "lost_answer_rate": 0, "rate_limit_rps": 1000,
                                                   "token_ttl_s": 600, "firewall_rate": 0}).raise_for_status()
    schema = database = None
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('prop') / f'local{next(_counter)}.db'}"
        engine = make_engine(url)
    elif engine_name == "mariadb":
        engine, database = make_my_engine()
        url = engine.url.render_as_string(hide_password=False)
    else:
        engine, schema = make_pg_schema_engine(PG_URL)
        url = engine.url.render_as_string(hide_password=False)
    try:
        upgrade(engine)
        settings = Settings(
            database=DatabaseSettings(url=url),
            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret, timeout_s=5.0, max_retries=2,
                                      retry_after_cap_s=2.0),
            relay=RelaySettings(batch_size=20, claim_size=100, lease_s=30.0), log=LogSettings(level="ERROR"))
        with engine.begin() as conn:
            tree = f.org_tree(conn)
            team_b = f.org(conn, "GRASSROOTS_TEAM", tree["unit"], tree["community"])  # dissolved by ("end", "org")
            act = f.activity(conn, tree["team"])
            act_c = f.activity(conn, tree["team"])  # cancelled by ("end", "activity")
            acts = [(act, tree["team"]), (act_c, tree["team"]), (f.activity(conn, team_b), team_b)]
            vols = [f.volunteer(conn) for _ in range(3)]
            records = [f.service_record(conn, v, *acts[i], day=1) for i, v in enumerate(vols)]
        day_of: dict[int, int] = {r: 1 for r in records}
        for action in actions:
            kind = action[0]
            with engine.begin() as conn:
                if kind == "volunteer":
                    vols.append(f.volunteer(conn, phone="139 0000 1234" if action[1] else "13900001234"))
                elif kind == "phone":
                    v = vols[action[1] % len(vols)]
                    conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :i"),
                                 {"p": f"137{secrets.randbelow(10**8):08d}", "i": v})
                elif kind == "record":
                    v = vols[action[1] % len(vols)]
                    used = {day_of[r] for r in records if _owner(conn, r) == v}
                    day = next(d for d in itertools.chain([action[2]], range(1, 4)) if d not in used) \
                        if len(used) < 3 else None
                    if day is not None:
                        r = f.service_record(conn, v, *acts[action[1] % len(acts)], day=day)
                        records.append(r)
                        day_of[r] = day
                elif kind == "hours":
                    r = records[action[1] % len(records)]
                    conn.execute(text("UPDATE service_record SET hours = :h WHERE id = :i AND status = 'ACCEPTED'"),
                                 {"h": action[2], "i": r})
                elif kind == "end" and action[1] == "org":
                    conn.execute(text("UPDATE organization SET status = 'DISSOLVED' WHERE id = :i"), {"i": team_b})
                elif kind == "end":
                    conn.execute(text("UPDATE activity SET status = 'CANCELLED' WHERE id = :i"), {"i": act_c})
                elif kind == "revoke":
                    r = records[action[1] % len(records)]
                    conn.execute(text("UPDATE service_record SET status = 'REVOKED', revoke_reason = '录入错误' "
                                      "WHERE id = :i"), {"i": r})
                elif kind == "reuse_record":
                    # another person's record on a day that person has free, under the deleted record's id
                    r = records[action[1] % len(records)]
                    v = vols[action[2] % len(vols)]
                    used = {day_of[x] for x in records if x != r and _owner(conn, x) == v}
                    day = next((d for d in range(1, 4) if d not in used), None)
                    if day is not None:
                        conn.execute(text("DELETE FROM service_record WHERE id = :i"), {"i": r})
                        f.service_record(conn, v, act, tree["team"], day=day, hours=300, id=r)
                        day_of[r] = day
                elif kind == "reuse_volunteer":
                    # another person under a deleted person's id; the person's records restored under their ids
                    v = vols[action[1] % len(vols)]
                    mine = [dict(x) for x in conn.execute(text(
                        "SELECT * FROM service_record WHERE volunteer_id = :v"), {"v": v}).mappings()]
                    conn.execute(text("DELETE FROM service_record WHERE volunteer_id = :v"), {"v": v})
                    conn.execute(text("DELETE FROM volunteer WHERE id = :v"), {"v": v})
                    f.volunteer(conn, id=v, name="赵强", birth=dt.date(1970 + next(_counter) % 30, 6, 6))
                    for x in mine:
                        x.pop("updated_at", None)
                        conn.execute(text(f"INSERT INTO service_record ({', '.join(x)}) VALUES "
                                          f"({', '.join(':' + k for k in x)})"), x)
            if kind == "faults":
                httpx.put(f"{sandbox.admin_url}/faults", json=action[1]).raise_for_status()
            elif kind == "sync":
                run_sync(settings, engine=engine, until_quiet=False)
        # the registry quiets down; sync until nothing waits
        httpx.put(f"{sandbox.admin_url}/faults", json={"error_rate": 0, "lost_answer_rate": 0, "rate_limit_rps": 1000,
                                                       "token_ttl_s": 600, "firewall_rate": 0}).raise_for_status()
        code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=120)
        assert summary["backlog"] == 0, summary
        check_invariants(engine, sandbox.admin_url, sandbox.client_id)
    finally:
        engine.dispose()
        if schema:
            drop_pg_schema(PG_URL, schema)
        if database:
            drop_my_database(database)


def _owner(conn: Any, record_id: int) -> int:
    return conn.execute(text("SELECT volunteer_id FROM service_record WHERE id = :i"), {"i": record_id}).scalar_one()
