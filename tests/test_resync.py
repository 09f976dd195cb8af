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
from regsync.cli import app
from regsync.db.session import suppress_outbox
from regsync.resync import ResyncUsageError, Target, run_resync
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
    assert done["repaired"] == {"field_mismatch": 1, "missing_in_registry": 1}
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT * FROM audit WHERE id = :i"), {"i": done["audit_id"]}).mappings().one()
        run = conn.execute(text("SELECT kind, status FROM run WHERE id = :i"), {"i": done["run_id"]}).one()
        stored = conn.execute(text("SELECT count(*) FROM discrepancy WHERE run_id = :i"),
                              {"i": done["run_id"]}).scalar_one()
        pending = conn.execute(text("SELECT entity, local_id FROM outbox WHERE state = 'pending' ORDER BY id")).all()
    assert (audit["action"], audit["actor"], audit["target"], audit["reason"]) == (
        "resync", "op-li", f"volunteer:{v}", "person called the hotline")
    details = json.loads(audit["details"])
    assert details["run_id"] == done["run_id"] and details["repaired"] == done["repaired"]
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
    assert done["repaired"] == {"field_mismatch": 1, "stale_link": 1}
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
        assert set(out) == {"run_id", "status", "discrepancies", "repaired", "seconds"}
        assert out["discrepancies"] == {"missing_in_registry": 2}
        res = runner.invoke(app, ["reconcile", "--kind", "people", "--json"])
        assert res.exit_code == 2
        res = runner.invoke(app, ["reconcile", "--kind", "volunteers"])  # the terminal's table
        assert res.exit_code == 0 and "missing_in_registry" in res.stdout
        res = runner.invoke(app, ["resync", "region", "2301", "--reason", "city audit", "--dry-run"])
        assert res.exit_code == 0 and "plan of region:2301" in res.stdout and "planned" in res.stdout
    finally:
        os.environ.clear()
        os.environ.update(old)
