"""Resync (issue 6 item 4): scoped reconciles through ``/lookup``, with ``--dry-run`` and without, audited; and the
``reconcile``/``resync`` commands' ``--json`` and exit codes. Both engines, the sandbox over HTTP on loopback."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db.session import suppress_outbox
from regsync.flows.resync import ResyncUsageError, Target, run_resync
from test_reconcile import patch, rid, sync, world


def resync(settings, engine: Engine, target: Target, **kw: Any) -> dict[str, Any]:
    code, summary = run_resync(settings, target, reason=kw.pop("reason", "operator check"), actor="op-li",
                               engine=engine, **kw)
    assert code == 0, summary
    return summary


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("run", "audit", "discrepancy")} | {
            "pending": conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar_one()}


def test_resync_volunteer_dry_run_then_for_real_audited(settings, engine) -> None:
    w = world(engine, settings)
    t, v = w["tree"], w["vols"][0]
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id = :i"), {"i": v})
        sr = f.service_record(conn, v, w["activity"], t["team"], hours=100, day=3)
    before = counts(engine)
    plan = resync(settings, engine, Target("volunteer", str(v)), dry_run=True)
    assert plan["discrepancies"] == {"field_mismatch": 1, "missing_in_registry": 1}
    assert {(d["kind"], d["local_id"], d["action"], d["action_state"]) for d in plan["listed"]} == {
        ("field_mismatch", v, "push", "planned"), ("missing_in_registry", sr, "push", "planned")}
    assert plan["run_id"] is None and plan["audit_id"] is None
    assert counts(engine) == before  # a plan writes nothing
    assert plan["compared"]["volunteer"] == {"local": 1, "pairs": 1, "registry": 1}
    assert plan["compared"]["membership"]["pairs"] == 1

    done = resync(settings, engine, Target("volunteer", str(v)), reason="person called the hotline")
    assert done["repaired"] == {} and done["requeued"] == {}
    assert done["queued"] == {"field_mismatch": 1, "missing_in_registry": 1}
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT * FROM audit WHERE id = :i"), {"i": done["audit_id"]}).mappings().one()
        run = conn.execute(text("SELECT kind, status FROM run WHERE id = :i"), {"i": done["run_id"]}).one()
        stored = conn.execute(text("SELECT count(*) FROM discrepancy WHERE run_id = :i"),
                              {"i": done["run_id"]}).scalar_one()
        pending = conn.execute(text("SELECT entity, local_id FROM outbox WHERE state = 'pending' ORDER BY id")).all()
    assert (audit["action"], audit["actor"], audit["target"], audit["reason"]) == (
        "resync", "op-li", f"volunteer:{v}", "person called the hotline")
    details = json.loads(audit["details"])
    assert details["run_id"] == done["run_id"] and details["queued"] == done["queued"]
    assert tuple(run) == ("resync", "success") and stored == 2
    assert [tuple(p) for p in pending] == [("volunteer", v), ("service_record", sr)]
    sync(settings, engine)
    again = resync(settings, engine, Target("volunteer", str(v)))
    assert again["discrepancies"] == {}


def test_resync_by_id_number_and_registry_id(settings, engine) -> None:
    w = world(engine, settings)
    v = w["vols"][1]
    with engine.begin() as conn:
        number = conn.execute(text("SELECT id_number FROM volunteer WHERE id = :i"), {"i": v}).scalar_one()
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE volunteer SET skills = '[\"心理疏导\"]' WHERE id = :i"), {"i": v})
    by_number = resync(settings, engine, Target("volunteer", id_number=number.lower()), dry_run=True)
    assert by_number["discrepancies"] == {"field_mismatch": 1}
    assert number not in json.dumps(by_number)  # masked in the target and the findings
    by_rid = resync(settings, engine, Target("volunteer", rid(engine, "volunteer", v), registry_id=True),
                    dry_run=True)
    assert by_rid["discrepancies"] == {"field_mismatch": 1}
    with pytest.raises(ResyncUsageError):
        resync(settings, engine, Target("volunteer", "999999"))


def test_resync_org_subtree(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    t = w["tree"]
    patch(sandbox, "orgs", rid(engine, "org", t["team"]), {"name": "基层志愿服务队（新名）"})
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE activity SET planned_headcount = 40 WHERE id = :i"), {"i": w["activity"]})
    alone = resync(settings, engine, Target("org", str(t["province"])), dry_run=True)
    assert alone["discrepancies"] == {} and set(alone["compared"]) == {"org"}
    plan = resync(settings, engine, Target("org", str(t["province"]), subtree=True), dry_run=True)
    assert plan["discrepancies"] == {"field_mismatch": 1, "stale_link": 1}
    assert plan["compared"]["org"]["pairs"] == 4  # the corps, its detachment, unit and team
    assert plan["compared"]["service_record"]["pairs"] == 4
    assert {(d["kind"], d["entity"], d["action"]) for d in plan["listed"]} == {
        ("stale_link", "org", "pull"), ("field_mismatch", "activity", "push")}
    done = resync(settings, engine, Target("org", str(t["province"]), subtree=True))
    assert done["repaired"] == {"stale_link": 1} and done["queued"] == {"field_mismatch": 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM organization WHERE id = :i"),
                            {"i": t["team"]}).scalar_one() == "基层志愿服务队（新名）"
        assert conn.execute(text("SELECT target FROM audit WHERE id = :i"),
                            {"i": done["audit_id"]}).scalar_one() == f"org:{t['province']} subtree"


def test_resync_region_and_the_commands_json(settings, engine, sandbox) -> None:
    world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        inside = f.volunteer(conn, region_code="230104")
        f.volunteer(conn, region_code="230203")  # another city
    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    old = dict(os.environ)
    os.environ.update(env)
    try:
        res = runner.invoke(app, ["resync", "region", "2301", "--reason", "city audit", "--dry-run", "--json"])
        assert res.exit_code == 0, res.output
        plan = json.loads(res.stdout)
        assert plan["discrepancies"] == {"missing_in_registry": 1}
        assert plan["listed"][0]["local_id"] == inside
        res = runner.invoke(app, ["resync", "region", "2301", "--json"])
        assert res.exit_code == 2  # --reason is required
        res = runner.invoke(app, ["resync", "region", "23x1", "--reason", "r", "--json"])
        assert res.exit_code == 2
        res = runner.invoke(app, ["reconcile", "--kind", "volunteers", "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert set(out) == {"run_id", "status", "discrepancies", "repaired", "queued", "requeued", "compared_total",
                            "seconds"}
        assert out["discrepancies"] == {"missing_in_registry": 2}
        res = runner.invoke(app, ["reconcile", "--kind", "people", "--json"])
        assert res.exit_code == 2
        res = runner.invoke(app, ["reconcile", "--kind", "volunteers"])  # the terminal's table
        assert res.exit_code == 0 and "missing in the registry" in res.stdout  # the code in words (DISCREPANCY_WORDS)
        res = runner.invoke(app, ["resync", "region", "2301", "--reason", "city audit", "--dry-run"])
        assert res.exit_code == 0 and "plan of region:2301" in res.stdout and "planned" in res.stdout
    finally:
        os.environ.clear()
        os.environ.update(old)


def city_world(engine: Engine, settings) -> dict[str, Any]:
    """Both lines of city 2301 coded as the platform codes them (the city's orgs at city level 230100, the rest in
    its districts), one volunteer and activity in each of two districts, a volunteer of another city; pushed."""
    with engine.begin() as conn:
        t: dict[str, int] = {}
        t["city"] = f.org(conn, "CITY_CORPS", region_code="230100")
        t["district"] = f.org(conn, "DISTRICT_BRIGADE", t["city"], region_code="230102")
        t["street"] = f.org(conn, "STREET_STATION", t["district"], region_code="230102")
        t["community"] = f.org(conn, "COMMUNITY_STATION", t["street"], region_code="230102")
        t["province"] = f.org(conn, "PROVINCIAL_CORPS", region_code="230000")
        t["detachment"] = f.org(conn, "CITY_DETACHMENT", t["province"], region_code="230100")
        t["unit"] = f.org(conn, "COUNTY_UNIT", t["detachment"], region_code="230104")
        t["team"] = f.org(conn, "GRASSROOTS_TEAM", t["unit"], t["community"], region_code="230104")
        vols = [f.volunteer(conn, region_code=r) for r in ("230102", "230104")]
        other = f.volunteer(conn, region_code="230203")  # Qiqihar: another city
        acts = [f.activity(conn, t[o], region_code=r) for o, r in (("community", "230102"), ("team", "230104"))]
        for v in vols:
            f.membership(conn, v, t["team"])
            f.service_record(conn, v, acts[1], t["team"])
    sync(settings, engine)
    return {"tree": t, "vols": vols, "other": other, "acts": acts}


def test_resync_region_by_a_citys_full_code_covers_everything_in_the_city(settings, engine, sandbox) -> None:
    """``resync region 230100`` (a city's full six-digit code) is the whole city on both lines: every district's
    orgs, volunteers, activities, memberships and service records, not only the records coded at city level."""
    w = city_world(engine, settings)
    t = w["tree"]
    with engine.begin() as conn, suppress_outbox(conn):  # one unqueued local edit in each district-level kind
        conn.execute(text("UPDATE organization SET contact_name = '赵敏' WHERE id = :i"), {"i": t["unit"]})
        conn.execute(text("UPDATE volunteer SET skills = '[\"翻译\"]' WHERE id = :i"), {"i": w["vols"][0]})
        conn.execute(text("UPDATE activity SET planned_headcount = 40 WHERE id = :i"), {"i": w["acts"][0]})
        conn.execute(text("UPDATE volunteer SET skills = '[\"翻译\"]' WHERE id = :i"), {"i": w["other"]})
    by_code = {}
    for code in ("230100", "2301"):
        plan = resync(settings, engine, Target("region", code), dry_run=True)
        by_code[code] = plan
        assert {(d["entity"], d["local_id"]) for d in plan["listed"]} == {
            ("org", t["unit"]), ("volunteer", w["vols"][0]), ("activity", w["acts"][0])}, code
        assert plan["compared"]["org"]["pairs"] == 7  # both lines: all but the provincial corps (230000)
        assert plan["compared"]["volunteer"]["pairs"] == 2 and plan["compared"]["activity"]["pairs"] == 2
        assert plan["compared"]["membership"]["pairs"] == 2 and plan["compared"]["service_record"]["pairs"] == 2
        assert plan["compared_total"] == {"records": 30, "local": 15, "registry": 15, "pairs": 15}
    assert by_code["230100"]["discrepancies"] == by_code["2301"]["discrepancies"] == {"field_mismatch": 3}
    district = resync(settings, engine, Target("region", "230104"), dry_run=True)
    assert {(d["entity"], d["local_id"]) for d in district["listed"]} == {("org", t["unit"])}
    province = resync(settings, engine, Target("region", "230000"), dry_run=True)
    assert province["discrepancies"] == {"field_mismatch": 4}  # the other city's volunteer too
    assert province["compared"]["org"]["pairs"] == 8


def test_reconcile_region_by_a_citys_full_code_covers_the_whole_city(settings, engine, sandbox) -> None:
    from test_reconcile import reconcile

    w = city_world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE organization SET contact_name = '赵敏' WHERE id = :i"), {"i": w["tree"]["unit"]})
        conn.execute(text("UPDATE volunteer SET skills = '[\"翻译\"]' WHERE id IN (:a, :b)"),
                     {"a": w["vols"][1], "b": w["other"]})
    city = reconcile(settings, engine, region="230100")
    assert city["region"] == "2301"
    assert {(d["entity"], d["local_id"]) for d in city["listed"]} == {
        ("org", w["tree"]["unit"]), ("volunteer", w["vols"][1])}
    assert city["compared"]["org"] == {"local": 7, "registry": 7, "pairs": 7}
    assert city["compared_total"]["records"] == 30
    with engine.connect() as conn:
        stored = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                         {"i": city["run_id"]}).scalar_one())
    assert stored["compared_total"] == city["compared_total"]


@pytest.mark.parametrize(("code", "says"), [
    ("239999", "239999"),  # well formed, but nothing of the store lies in it
    ("231200", "231200"),  # a real city where the platform has nothing
    ("110100", "outside province 23"),  # Beijing: not this client's province
    ("230001", "not a GB/T 2260 region"),
    ("23010", "2, 4 or 6 digits"),
    ("230102001", "2, 4 or 6 digits"),
])
def test_resync_of_an_unknown_region_is_a_usage_error_that_names_it(settings, engine, sandbox, code, says) -> None:
    city_world(engine, settings)
    before = counts(engine)
    with pytest.raises(ResyncUsageError, match=says):
        run_resync(settings, Target("region", code), reason="city audit", actor="op-li", engine=engine)
    assert counts(engine) == before  # no run, no audit row: nothing was done
    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING"}
    res = CliRunner().invoke(app, ["resync", "region", code, "--reason", "city audit", "--json"], env=env)
    assert res.exit_code == 2, res.output
    assert code in res.stderr and "usage error" in res.stderr
    if code in ("110100", "230001", "23010"):  # reconcile refuses what is no region of the province as well
        res = CliRunner().invoke(app, ["reconcile", "--region", code, "--json"], env=env)
        assert res.exit_code == 2 and code in res.stderr, res.output


def test_every_resync_and_reconcile_says_how_many_records_it_compared(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    v = str(w["vols"][0])
    for args, records in ((["resync", "volunteer", v, "--reason", "hotline"], 6),
                          (["resync", "org", str(w["tree"]["team"]), "--reason", "audit"], 2),
                          (["resync", "region", "2301", "--reason", "audit"], 2 * (8 + 4 + 4 + 1 + 4)),
                          (["reconcile", "--kind", "volunteers"], 8),
                          (["reconcile"], 2 * (8 + 4 + 4 + 1 + 4))):
        res = runner.invoke(app, [*args, "--json"], env=env)
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["compared_total"]["records"] == records, (args, out["compared_total"])
        with engine.connect() as conn:
            stored = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                             {"i": out["run_id"]}).scalar_one())
        assert stored["compared_total"] == out["compared_total"]
        res = runner.invoke(app, args, env=env)  # the terminal's summary
        assert res.exit_code == 0 and f"compared {records:,} records" in res.stdout, res.output


def test_a_second_region_resync_counts_records_refused_on_unchanged_data_as_requeued(settings, engine, sandbox) -> None:
    """``resync region`` run twice in a row: the records the registry refused on their data are ``requeued`` (with
    ``refused_before``) both times, never ``queued``: the first run's rows carry no local change."""
    w = world(engine, settings)
    bad = f.id_number()
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")
    with engine.begin() as conn:
        refused = f.volunteer(conn, id_number=bad, name="陈静")
        conn.execute(text("UPDATE volunteer SET phone = '12345' WHERE id = :i"), {"i": w["vols"][0]})
    assert sync(settings, engine)["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1, "INVALID_PHONE": 1}
    for code in ("230100", "2301"):
        out = resync(settings, engine, Target("region", code), reason="test")
        assert out["queued"] == {} and out["requeued"] == {"field_mismatch": 1, "missing_in_registry": 1}, (code, out)
        by_local = {d["local_id"]: d for d in out["listed"] if d["entity"] == "volunteer"}
        assert by_local[refused]["details"]["refused_before"] == "INVALID_ID_NUMBER"
        assert by_local[w["vols"][0]]["details"]["refused_before"] == "INVALID_PHONE"
