"""Both flows together (issue 4): convergence under random interleavings (hypothesis), quiescence, no flip-flop,
and a person registered on both sides, on SQLite and PostgreSQL against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

import factories as f
from myutil import drop_my_database, make_my_engine
from pgutil import PG_URL, drop_pg_schema, make_pg_schema_engine
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine, utcnow
from regsync.flows.conflicts import resolve_conflict
from regsync.flows.inbound import Poller
from regsync.flows.sync import run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import (
    DatabaseSettings,
    LogSettings,
    MergeSettings,
    RegistrySettings,
    RelaySettings,
    Settings,
)

QUIET = {"error_rate": 0, "lost_answer_rate": 0, "feed_duplicate_rate": 0, "rate_limit_rps": 1000,
         "token_ttl_s": 600, "firewall_rate": 0, "feed_retention_s": 7 * 24 * 3600.0}

#: Values each side may write, per field (the local and the portal sets differ, so a value tells its source).
LOCAL_VALUES: dict[str, list[Any]] = {
    "phone": ["13800000001", "13800000002", "13800000003"],
    "skills": [["急救"], ["翻译", "急救"], []],
    "name": ["张伟", "张卫国"],
    "region_code": ["230103", "230104"],
}
PORTAL_VALUES: dict[str, list[Any]] = {
    "phone": ["13900000001", "13900000002", "13800000001"],  # the last one equals a local value
    "skills": [["摄影"], ["心理咨询", "摄影"]],
    "name": ["李娜", "张伟"],  # the last one equals a local value
    "region_code": ["230108", "230110"],
}
GROUP = {"phone": "contact", "skills": "contact", "name": "identity", "region_code": "descriptive"}
WIRE = {"phone": "phone", "skills": "skills", "name": "name", "region_code": "regionCode"}
VOLS = 2

_counter = itertools.count()


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(admin=True, seed=11) as sb:
        yield sb


def _settings(sandbox: SandboxServer, url: str, policies: dict[str, str] | None = None) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                  client_secret=sandbox.client_secret, timeout_s=5.0, max_retries=3,
                                  retry_after_cap_s=2.0),
        relay=RelaySettings(batch_size=20, claim_size=100, lease_s=30.0),
        merge=MergeSettings(**(policies or {})), log=LogSettings(level="ERROR"))


@pytest.fixture
def settings(sandbox: SandboxServer, db_url: str) -> Settings:
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    httpx.put(f"{sandbox.admin_url}/faults", json=QUIET).raise_for_status()
    return _settings(sandbox, db_url)


def faults(sandbox: SandboxServer, **kw: Any) -> None:
    httpx.put(f"{sandbox.admin_url}/faults", json={**QUIET, **kw}).raise_for_status()


def sync(settings: Settings, engine: Engine, **kw: Any) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=120, **kw)
    assert code == 0 and (summary["backlog"] == 0 or kw.get("outbound") is False), summary
    return summary


def rid(engine: Engine, entity: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :e AND local_id = :i "
                                 "AND is_duplicate = false"), {"e": entity, "i": local_id}).scalar_one()


def registry_volunteers(sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/volunteers")
    r.raise_for_status()
    return {x["id"]: x for x in r.json()["data"]["records"]}


def local_value(engine: Engine, vol: int, name: str) -> Any:
    with engine.connect() as conn:
        value = conn.execute(text(f"SELECT {name} FROM volunteer WHERE id = :i"), {"i": vol}).scalar_one()  # noqa: S608
    return json.loads(value) if name == "skills" else value


def set_local(engine: Engine, vol: int, name: str, value: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE volunteer SET {name} = :v WHERE id = :i"),  # noqa: S608
                     {"v": json.dumps(value, ensure_ascii=False) if name == "skills" else value, "i": vol})


def set_portal(sandbox: SandboxServer, registry_id: str, name: str, value: Any) -> None:
    if name in ("phone", "skills"):
        r = httpx.post(f"{sandbox.admin_url}/portal/volunteers/{registry_id}/contact", json={name: value})
    elif name == "name":
        r = httpx.post(f"{sandbox.admin_url}/portal/volunteers/{registry_id}/identity", json={"name": value})
    else:
        r = httpx.patch(f"{sandbox.admin_url}/records/volunteers/{registry_id}", json={WIRE[name]: value})
    assert r.status_code == 200, r.text


def open_conflicts(engine: Engine) -> dict[tuple[int, str], int]:
    with engine.connect() as conn:
        return {(lid, fld): cid for cid, lid, fld in conn.execute(text(
            "SELECT id, local_id, field FROM conflict WHERE entity = 'volunteer' AND state = 'open'"))}


def same(a: Any, b: Any, name: str) -> bool:
    return sorted(a or []) == sorted(b or []) if name == "skills" else a == b


def world(engine: Engine, settings: Settings, n: int = VOLS) -> list[int]:
    with engine.begin() as conn:
        vols = [f.volunteer(conn, phone=LOCAL_VALUES["phone"][0], skills=json.dumps(["急救"], ensure_ascii=False),
                            name="张伟", region_code="230103") for _ in range(n)]
    with RegistryClient(settings.registry, province=settings.province) as client:
        Poller(engine, client, settings).take_first_cursor()
    sync(settings, engine)
    return vols


# ---------------------------------------------------------------------------------------------- convergence
EDIT = st.tuples(st.sampled_from(["local", "portal"]), st.integers(0, VOLS - 1),
                 st.sampled_from(sorted(GROUP)), st.integers(0, 2))
#: Both sides edit one field (a local and a portal edit, in either order): what the policies are about.
BOTH = st.tuples(st.sampled_from(["local+portal", "portal+local"]), st.integers(0, VOLS - 1),
                 st.sampled_from(sorted(GROUP)), st.integers(0, 2), st.integers(0, 2))
FAULT = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "error_rate": st.just(0.2), "lost_answer_rate": st.sampled_from([0.2, 0.4]),
    "feed_duplicate_rate": st.just(0.5), "token_ttl_s": st.just(1)}))
PASS = st.tuples(st.sampled_from(["both", "outbound", "inbound"]), FAULT)
ROUND = st.fixed_dictionaries({
    "structured": st.booleans(),
    "steps": st.lists(st.one_of(EDIT, BOTH, PASS), min_size=1, max_size=8),
    "resolve": st.lists(st.sampled_from(["local", "registry"]), min_size=2, max_size=2),
})
POLICY = st.sampled_from(["registry", "local", "manual"])


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "mariadb"])
@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rounds=st.lists(ROUND, min_size=1, max_size=3),
       policies=st.fixed_dictionaries({"contact": POLICY, "identity": POLICY, "descriptive": POLICY}))
def test_random_interleavings_converge_by_policy(engine_name, sandbox, tmp_path_factory, rounds, policies) -> None:
    """Rounds of local edits, portal-side edits, sync passes and faults. After passes until quiet, both sides
    hold the same values except the fields open conflicts hold; in a round whose edits all came before its
    passes, each field has the value its policy says (three-way against the round's start); open conflicts are
    then resolved (``conflicts resolve``) and both sides agree on the chosen value."""
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    faults(sandbox)
    schema = database = None
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('conv') / f'local{next(_counter)}.db'}"
        engine = make_engine(url)
    elif engine_name == "mariadb":
        engine, database = make_my_engine()
        url = engine.url.render_as_string(hide_password=False)
    else:
        engine, schema = make_pg_schema_engine(PG_URL)
        url = engine.url.render_as_string(hide_password=False)
    try:
        upgrade(engine)
        settings = _settings(sandbox, url, policies)
        vols = world(engine, settings)
        rids = [rid(engine, "volunteer", v) for v in vols]
        for rnd in rounds:
            start = {(i, n): local_value(engine, v, n) for i, v in enumerate(vols) for n in GROUP}
            steps = rnd["steps"]
            edits: list[tuple[Any, ...]] = []
            for step in steps:  # a both-sides step is two edits
                if len(step) == 5:
                    first, second = step[0].split("+")
                    edits += [(first, step[1], step[2], step[3]), (second, step[1], step[2], step[4])]
                else:
                    edits.append(step)
            steps = edits
            if rnd["structured"]:  # every edit first, then the passes: the policy oracle holds
                steps = [s for s in steps if len(s) == 4] + [s for s in steps if len(s) == 2]
            last: dict[tuple[str, int, str], Any] = {}
            for step in steps:
                if len(step) == 4:
                    side, i, name, k = step
                    values = (LOCAL_VALUES if side == "local" else PORTAL_VALUES)[name]
                    value = values[k % len(values)]
                    if side == "local":
                        set_local(engine, vols[i], name, value)
                    else:
                        set_portal(sandbox, rids[i], name, value)
                    last[(side, i, name)] = value
                else:
                    mode, fault = step
                    faults(sandbox, **(fault or {}))
                    run_sync(settings, engine=engine, until_quiet=False, outbound=mode != "inbound",
                             inbound=mode != "outbound")
            faults(sandbox)
            sync(settings, engine)
            sync(settings, engine)  # pushes queued by the last pull's merges, and their echoes
            reg = registry_volunteers(sandbox)
            held = open_conflicts(engine)
            for i, v in enumerate(vols):
                for name in GROUP:
                    lv, rv = local_value(engine, v, name), reg[rids[i]][WIRE[name]]
                    if (v, name) in held:
                        assert policies[GROUP[name]] == "manual", (name, policies)
                        assert not same(lv, rv, name), (name, lv, rv)
                    else:
                        assert same(lv, rv, name), (i, name, lv, rv, rnd)
                    if not rnd["structured"]:
                        continue
                    base = start[(i, name)]
                    lw, pw = last.get(("local", i, name), base), last.get(("portal", i, name), base)
                    l_changed, p_changed = not same(lw, base, name), not same(pw, base, name)
                    if l_changed and p_changed and not same(lw, pw, name):
                        policy = policies[GROUP[name]]
                        if policy == "manual":
                            assert (v, name) in held and same(lv, lw, name) and same(rv, pw, name), (name, lv, rv)
                            continue
                        expected = pw if policy == "registry" else lw
                    else:
                        expected = pw if p_changed else lw
                    assert same(lv, expected, name), (i, name, lv, expected, policies, rnd)
            # an operator decides what was held; both sides then agree on the decision
            with RegistryClient(settings.registry, province=settings.province) as client:
                for n, ((v, name), cid) in enumerate(sorted(held.items())):
                    take = rnd["resolve"][n % 2]
                    resolve_conflict(engine, client, settings, cid, take=take, reason="property test")
                    i = vols.index(v)
                    want = local_value(engine, v, name) if take == "local" else \
                        registry_volunteers(sandbox)[rids[i]][WIRE[name]]
                    sync(settings, engine)
                    sync(settings, engine)
                    assert same(local_value(engine, v, name), want, name)
                    assert same(registry_volunteers(sandbox)[rids[i]][WIRE[name]], want, name)
            assert not open_conflicts(engine)
        # quiescence: one more full pass writes nothing on either side and applies nothing
        before = {k: r["version"] for k, r in registry_volunteers(sandbox).items()}
        code, summary = run_sync(settings, engine=engine)
        assert code == 0 and summary["pushed"] == {} and summary["inbound"]["changes"] == 0, summary
        assert {k: r["version"] for k, r in registry_volunteers(sandbox).items()} == before
    finally:
        faults(sandbox)
        engine.dispose()
        if schema:
            drop_pg_schema(PG_URL, schema)
        if database:
            drop_my_database(database)


# ---------------------------------------------------------------------------------------------- quiescence
def test_after_portal_activity_a_quiet_pass_changes_nothing(settings, engine, sandbox) -> None:
    from regsync.sandbox.admin_client import trigger_activity

    vols = world(engine, settings, n=6)
    with engine.begin() as conn:
        t = f.org_tree(conn)
        a = f.activity(conn, t["team"])
        for v in vols:
            f.membership(conn, v, t["team"])
            f.service_record(conn, v, a, t["team"])
    sync(settings, engine)
    done = trigger_activity(sandbox.admin_url, 30, seed=3)
    assert sum(done["applied"].values()) == 30
    first = sync(settings, engine)
    assert first["pulled"] and (first["merged"] or first["created_locally"] or first["registry_owned"])
    sync(settings, engine)
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT registry_id, registry_version FROM link")).all())
    before = {k: r["version"] for k, r in registry_volunteers(sandbox).items()}
    code, summary = run_sync(settings, engine=engine)
    assert code == 0, summary
    assert summary["pushed"] == {} and summary["batches"] == 0 and summary["inbound"]["changes"] == 0
    assert not (summary["merged"] or summary["created_locally"] or summary["adopted"])
    assert {k: r["version"] for k, r in registry_volunteers(sandbox).items()} == before
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT registry_id, registry_version FROM link")).all()) == versions
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'deferred')")
                            ).scalar_one() == 0


# ---------------------------------------------------------------------------------------------- flip-flop
def test_a_pull_during_a_push_in_flight_never_brings_back_the_middle_value(settings, engine, sandbox) -> None:
    """Phone A is pushed; the answer is not recorded yet (the link one version behind, the rows claimed) when
    phone B is set and a pull reads A's change. The pull waits for the write in flight instead of merging A
    against the old base (which, with ``contact = registry``, would set the platform back to A)."""
    (v,) = world(engine, settings, n=1)
    with engine.connect() as conn:
        link_before = conn.execute(text("SELECT registry_version, base FROM link WHERE entity = 'volunteer'")).one()
    set_local(engine, v, "phone", "13800000002")  # A
    sync(settings, engine, inbound=False)
    with engine.connect() as conn:
        link_after = conn.execute(text("SELECT registry_version, base FROM link WHERE entity = 'volunteer'")).one()
    assert link_after.registry_version > link_before.registry_version
    # as if the relay's answer were still on its way: the link at the old version, a row of the record claimed
    until = utcnow() + dt.timedelta(seconds=30)
    with engine.begin() as conn:
        conn.execute(text("UPDATE link SET registry_version = :v, base = :b WHERE entity = 'volunteer'"),
                     {"v": link_before.registry_version, "b": link_before.base})
    set_local(engine, v, "phone", "13800000003")  # B, queued
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET claimed_by = 'relay-elsewhere', claimed_until = :u "
                          "WHERE state = 'pending'"), {"u": until})

    def answer_arrives() -> None:
        time.sleep(1.0)
        with engine.begin() as conn:
            conn.execute(text("UPDATE link SET registry_version = :v, base = :b WHERE entity = 'volunteer'"),
                         {"v": link_after.registry_version, "b": link_after.base})
            conn.execute(text("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE state = 'pending'"))

    t = threading.Thread(target=answer_arrives)
    t.start()
    with RegistryClient(settings.registry, province=settings.province) as client:
        stats = Poller(engine, client, settings).run()
    t.join()
    assert stats.echoes == 1 and stats.applied == 0, stats.as_dict()
    assert local_value(engine, v, "phone") == "13800000003"
    sync(settings, engine)
    assert local_value(engine, v, "phone") == "13800000003"
    assert registry_volunteers(sandbox)[rid(engine, "volunteer", v)]["phone"] == "13800000003"


def test_two_quick_local_edits_with_relay_and_poller_running_together(settings, engine, sandbox) -> None:
    """The daemon's shape: relay and poller in their own threads while a field is changed twice; the field
    never goes back to the first value, on either side, once the second is set."""
    (v,) = world(engine, settings, n=1)
    registry_id = rid(engine, "volunteer", v)
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(**kw: Any) -> None:
        try:
            while not stop.is_set():
                run_sync(settings, engine=engine, until_quiet=False, **kw)
                time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 — reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=loop, kwargs={"inbound": False}),
               threading.Thread(target=loop, kwargs={"outbound": False})]
    for th in threads:
        th.start()
    try:
        for n in range(4):
            middle, final = f"1370000{n:04d}", f"1370001{n:04d}"
            set_local(engine, v, "phone", middle)
            time.sleep(0.05 * n)
            set_local(engine, v, "phone", final)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert local_value(engine, v, "phone") == final  # never set back
                if registry_volunteers(sandbox)[registry_id]["phone"] == final:
                    break
                time.sleep(0.05)
            assert registry_volunteers(sandbox)[registry_id]["phone"] == final
            time.sleep(0.3)  # the pull of the last echoes
            assert local_value(engine, v, "phone") == final
            assert registry_volunteers(sandbox)[registry_id]["phone"] == final
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not errors, errors


# ---------------------------------------------------------------------------------------------- one person
def _person(number: str) -> dict[str, Any]:
    return {"name": "赵敏", "idType": "RESIDENT_ID", "idNumber": number, "gender": "M", "birthDate": "1985-06-01",
            "phone": "13811112222", "regionCode": "230102", "skills": [], "homeProvince": "23"}


@pytest.mark.parametrize("first_flow", ["push", "pull"])
def test_portal_self_registration_then_the_platform_creates_the_person(settings, engine, sandbox,
                                                                       first_flow) -> None:
    """The portal has the person first; the platform then creates the same person (same ID type and normalized
    number, here in lowercase-x-free 18 digits): one registry record, linked, whichever flow runs first."""
    world(engine, settings, n=1)
    number = f.id_number(dt.date(1985, 6, 1))
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json=_person(number))
    assert r.status_code in (200, 201), r.text
    with engine.begin() as conn:
        v = f.volunteer(conn, id_number=number, birth=dt.date(1985, 6, 1), name="赵敏", phone="13899998888")
    summary = sync(settings, engine, inbound=first_flow == "pull", outbound=first_flow == "push")
    summary = sync(settings, engine)
    regs = [x for x in registry_volunteers(sandbox).values() if x["idNumber"] == number]
    assert len(regs) == 1, regs
    assert rid(engine, "volunteer", v) == regs[0]["id"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM volunteer WHERE id_number_norm = :n"),
                            {"n": number}).scalar_one() == 1
        how = conn.execute(text("SELECT how FROM link WHERE entity = 'volunteer' AND local_id = :i"),
                           {"i": v}).scalar_one()
    assert how == ("adopted" if first_flow == "pull" else "duplicate_id_number")
    assert summary["still_failed"] == {}


def test_the_platform_creates_the_person_then_the_portal_registration_is_refused(settings, engine, sandbox) -> None:
    world(engine, settings, n=1)
    number = f.id_number(dt.date(1985, 6, 1))
    with engine.begin() as conn:
        v = f.volunteer(conn, id_number=number, birth=dt.date(1985, 6, 1), name="赵敏", phone="13899998888")
    sync(settings, engine)
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json=_person(number))
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_ID_NUMBER", r.text
    summary = sync(settings, engine)
    assert summary["created_locally"] == {} and summary["adopted"] == {}
    regs = [x for x in registry_volunteers(sandbox).values() if x["idNumber"] == number]
    assert len(regs) == 1 and rid(engine, "volunteer", v) == regs[0]["id"]


# ---------------------------------------------------------------------------------------------- decisions
def test_every_automatic_decision_is_recorded_with_the_run(settings, engine, sandbox) -> None:
    vols = world(engine, settings, n=2)
    set_portal(sandbox, rid(engine, "volunteer", vols[0]), "phone", "13900000001")
    set_local(engine, vols[1], "region_code", "230104")
    set_portal(sandbox, rid(engine, "volunteer", vols[1]), "region_code", "230108")
    summary = sync(settings, engine)
    with engine.connect() as conn:
        stored = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                         {"i": summary["run_id"]}).scalar_one())
    decisions = stored["inbound"]["decisions"]
    log = {(d["local_id"], d["field"], d["rule"], d["winner"]) for d in stored["inbound"]["decision_log"]}
    assert decisions["volunteer.phone:registry_only:registry"] >= 1
    assert (vols[0], "phone", "registry_only", "registry") in log
    # region_code changed on both sides; descriptive → local by default, met on push or on pull
    on_push = stored["decisions_on_push"]
    assert on_push.get("volunteer.region_code:policy:local") or decisions.get("volunteer.region_code:policy:local")
    if on_push:
        assert any(d["local_id"] == vols[1] and d["field"] == "region_code" for d in stored["decision_log_on_push"])
    assert local_value(engine, vols[1], "region_code") == "230104"
    assert registry_volunteers(sandbox)[rid(engine, "volunteer", vols[1])]["regionCode"] == "230104"


def test_a_paused_flow_is_skipped_by_a_manual_sync_too(settings, engine, sandbox) -> None:
    from regsync.service.status import set_paused

    (v,) = world(engine, settings, n=1)
    set_paused(engine, ["outbound"], True, reason="registry maintenance", actor="ops")
    set_local(engine, v, "phone", "13800000002")
    code, summary = run_sync(settings, engine=engine)
    assert code == 0 and summary["paused"] == ["outbound"] and summary["pushed"] == {}
    assert registry_volunteers(sandbox)[rid(engine, "volunteer", v)]["phone"] == LOCAL_VALUES["phone"][0]
    set_paused(engine, ["outbound"], False, reason="done", actor="ops")
    sync(settings, engine)
    assert registry_volunteers(sandbox)[rid(engine, "volunteer", v)]["phone"] == "13800000002"

