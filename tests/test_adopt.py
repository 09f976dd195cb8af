"""Adopt (design.md, flow 4) on a seeded registry, and the seeding itself: after adopt and one sync every person is
in the registry once, no service record is there twice, each person's hours agree; ambiguous matches are listed,
never guessed. Both engines; the real client against a SandboxServer over loopback."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from regsync.domain.normalize import try_normalize_id_number
from regsync.flows.adopt import HELD_CODE, run_adopt
from regsync.flows.reconcile import run_reconcile
from regsync.generate.generator import generate
from regsync.generate.seed import NONE, SeedRates, http_bulk, inprocess_bulk, seed_sandbox
from regsync.registry.wire import decode_hours
from regsync.sandbox.server import SandboxServer
from test_reconcile import sync

SCALE = 0.0001


def records(sandbox: SandboxServer, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}", timeout=60)
    r.raise_for_status()
    return r.json()["data"]["records"]


def test_adopt_on_a_seeded_registry(settings, engine: Engine, sandbox) -> None:
    generate(engine, SCALE, 11)
    seeded = seed_sandbox(inprocess_bulk(sandbox), store_url=settings.database.url, seed=11,
                          rates=SeedRates(missing_in_registry=0.05, differing=0.05, missing_locally=0.02))
    assert seeded["seeded"]["volunteer"] > 0 and seeded["left_out"]["volunteer"] > 0
    assert seeded["differing"]["volunteer"] > 0 and seeded["extra_volunteers"] > 0
    # an ambiguity: one bare station of the platform, entered twice in the registry by two older channels
    with engine.begin() as conn:
        street = conn.execute(text("SELECT id FROM organization WHERE level = 'STREET_STATION' ORDER BY id "
                                   "LIMIT 1")).scalar_one()
        sid = conn.execute(text(
            "INSERT INTO organization (name, org_type, level, parent_id, region_code, street_code, "
            "service_categories, contact_name, contact_phone, established_on, status) VALUES ('新建社区工作站', "
            "'REGIONAL', 'COMMUNITY_STATION', :p, '230102', '230102001001', '[\"COMMUNITY\"]', '王芳', "
            "'13900001111', :d, 'ACTIVE') RETURNING id"), {"p": street, "d": dt.date(2020, 1, 1)}).scalar_one()
    twin = {"name": "新建社区工作站", "orgType": "REGIONAL", "level": "COMMUNITY_STATION", "parentId": None,
            "stationId": None, "uscc": None, "regionCode": "230102", "streetCode": "230102001001",
            "serviceCategories": ["COMMUNITY"], "contactName": "王芳", "contactPhone": "13900001111",
            "establishedOn": "2020-01-01", "status": "ACTIVE"}
    twins = http_bulk(sandbox.admin_url)("org", [dict(twin), dict(twin)])

    plan_code, plan = run_adopt(settings, engine=engine, dry_run=True)
    assert plan_code == 0 and plan["run_id"] is None
    assert plan["linked"]["volunteer"] == seeded["seeded"]["volunteer"]
    assert plan["linked"]["service_record"] > 0  # matched through the staged volunteers and activities
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM link")).scalar_one() == 0  # a plan links nothing

    code, summary = run_adopt(settings, engine=engine)
    assert code == 0, summary
    assert summary["linked"] == plan["linked"]
    assert summary["linked"]["volunteer"] == seeded["seeded"]["volunteer"]
    assert summary["linked"]["service_record"] == seeded["seeded"]["service_record"]
    assert summary["unmatched"].get("volunteer", 0) == seeded["extra_volunteers"]
    assert summary["ambiguous"] == {"org": 2}
    # the seeded differences are decided field by field and said: the seed changes contact fields (registry
    # policy: the platform's rows take the registry's value) and portal-entered activities (the registry's)
    assert summary["decisions"] and all(key.endswith(":registry") for key in summary["decisions"]), summary
    # fields equal on both sides are no decision (with no common base they all "agree", 9 984 of them once)
    assert sum(summary["decisions"].values()) <= 3 * sum(seeded["differing"].values()), summary["decisions"]
    assert {d["kind"] for d in summary["decision_log"]} == {k.split(".")[0] for k in summary["decisions"]}
    assert {d["kind"] for d in summary["decision_log"]} >= {"volunteer"}
    listed = summary["ambiguous_matches"]
    assert {d["registry_id"] for d in listed} == set(twins)
    assert all(d["details"]["local_ids"] == [sid] and d["details"]["registry_ids"] == sorted(twins) for d in listed)
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, count(*) FROM discrepancy WHERE run_id = :r GROUP BY kind"),
                             {"r": summary["run_id"]}).all()
        held = conn.execute(text("SELECT DISTINCT entity, local_id FROM outbox WHERE last_code = :c"),
                            {"c": HELD_CODE}).all()
        assert conn.execute(text("SELECT kind, status FROM run WHERE id = :r"),
                            {"r": summary["run_id"]}).one() == ("adopt", "success")
    assert dict(kinds) == {"ambiguous_match": summary["ambiguous"]["org"]}
    assert [tuple(h) for h in held] == [("org", sid)]
    assert summary["feed_cursor"] is not None

    sync(settings, engine)

    # every person once
    vols = records(sandbox, "volunteers")
    ids = Counter(v["idNumber"] for v in vols)
    assert max(ids.values()) == 1
    with engine.connect() as conn:
        local = conn.execute(text("SELECT id, id_type, id_number FROM volunteer")).all()
        links = dict(conn.execute(text("SELECT local_id, registry_id FROM link WHERE entity = 'volunteer'")).all())
        local_hours = conn.execute(text("SELECT volunteer_id, SUM(hours) FROM service_record WHERE status = "
                                        "'ACCEPTED' GROUP BY volunteer_id")).all()
    persons = {n for _, t, raw in local if (n := try_normalize_id_number(t, raw))}
    linked_persons = {try_normalize_id_number(t, raw) for i, t, raw in local if i in links}
    assert linked_persons <= set(ids)
    assert len(persons - linked_persons) == len({try_normalize_id_number(t, r) for i, t, r in local
                                                 if i not in links} & persons)  # only refused rows left
    # no service record twice
    srs = [s for s in records(sandbox, "service-records") if s["status"] == "ACCEPTED"]
    assert max(Counter((s["volunteerId"], s["activityId"], s["startsAt"]) for s in srs).values()) == 1
    # each person's hours agree
    reg_hours: dict[str, int] = defaultdict(int)
    for s in srs:
        reg_hours[s["volunteerId"]] += decode_hours(s["hours"])
    mine: dict[str, int] = defaultdict(int)
    for vid, h in local_hours:
        if vid in links:
            mine[links[vid]] += int(h)
    assert {k: v for k, v in mine.items() if v} == {k: v for k, v in reg_hours.items() if k in mine and v}
    code, rec = run_reconcile(settings, engine=engine, kinds=["volunteers", "service_records"])
    assert code == 0 and "hours_mismatch" not in rec["discrepancies"], rec["discrepancies"]
    assert rec["discrepancies"].get("missing_locally", 0) == seeded["extra_volunteers"]


def test_seed_volunteers_alone_linked_in_step(settings, engine: Engine, sandbox) -> None:
    generate(engine, 0.0001, 3, kinds={"volunteer"})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organization")).scalar_one() == 0
    out = seed_sandbox(inprocess_bulk(sandbox), store_url=settings.database.url, kinds=["volunteer"], rates=NONE,
                       owner=sandbox.client_id, link=True, seed=3, hash_key=settings.hash_key)
    assert out["linked"] == out["seeded"]["volunteer"] > 0 and set(out["seeded"]) == {"volunteer"}
    code, summary = run_reconcile(settings, engine=engine, kinds=["volunteers"])
    assert code == 0
    unfit = out["unfit"].get("volunteer", 0)
    with engine.connect() as conn:
        dup_rows = conn.execute(text(
            "SELECT COUNT(*) - COUNT(DISTINCT id_number_norm) FROM volunteer WHERE id_number_norm IS NOT NULL"
        )).scalar_one()
    # in step: only the rows the registry never took (unfixable dirt, a person's second row) differ
    assert summary["discrepancies"].get("missing_in_registry", 0) == unfit + dup_rows
    assert set(summary["discrepancies"]) <= {"missing_in_registry", "duplicate_person"}
    assert json.loads(json.dumps(summary["compared"]))["volunteer"]["pairs"] == out["seeded"]["volunteer"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sandbox_seed_command_over_http(sandbox, settings) -> None:
    from typer.testing import CliRunner

    from regsync.console.cli import app

    res = CliRunner().invoke(app, ["sandbox", "seed", "--scale", "0.00005", "--kind", "volunteers", "--seed", "5",
                                   "--admin-url", sandbox.admin_url, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["seeded"]) == {"volunteer"} and out["seeded"]["volunteer"] > 0
    assert len(records(sandbox, "volunteers")) == out["seeded"]["volunteer"] + out["extra_volunteers"]
    assert CliRunner().invoke(app, ["sandbox", "seed", "--admin-url", sandbox.admin_url]).exit_code == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_adopt_command_json(sandbox, settings, engine, monkeypatch) -> None:
    from typer.testing import CliRunner

    from regsync.console.cli import app

    generate(engine, 0.00005, 9, kinds={"volunteer"})
    seeded = seed_sandbox(inprocess_bulk(sandbox), store_url=settings.database.url, kinds=["volunteer"], seed=9,
                          rates=SeedRates(missing_in_registry=0.1, differing=0.1, missing_locally=0.05))
    for name, value in {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": sandbox.base_url,
                        "REGSYNC_CLIENT_ID": sandbox.client_id, "REGSYNC_CLIENT_SECRET": sandbox.client_secret,
                        "REGSYNC_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(name, value)
    plan = CliRunner().invoke(app, ["adopt", "--dry-run", "--json"])
    assert plan.exit_code == 0, plan.output
    text_plan = CliRunner().invoke(app, ["adopt", "--dry-run"])
    assert text_plan.exit_code == 0 and "adopt (dry run)" in text_plan.stdout
    done = CliRunner().invoke(app, ["adopt", "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert json.loads(plan.stdout)["linked"] == out["linked"] == {"volunteer": seeded["seeded"]["volunteer"]}
    assert out["unmatched"] == {"volunteer": seeded["extra_volunteers"]} and out["ambiguous"] == {}
    with engine.connect() as conn:
        adopted = conn.execute(text("SELECT count(*) FROM link WHERE entity = 'volunteer' AND how = 'adopted'"
                                         )).scalar_one()
    assert adopted == seeded["seeded"]["volunteer"]


def test_adopt_matches_names_that_differ_only_by_characters_that_do_not_print(settings, engine: Engine,
                                                                                sandbox) -> None:
    """A local org name or activity title pasted with a zero-width space or a bidi mark (Unicode Cf) is the
    registry's record of the same name: adopt matches through the one normalizer (design.md, "Normalization")."""
    with engine.begin() as conn:
        sid = conn.execute(text(
            "INSERT INTO organization (name, org_type, level, region_code, street_code, service_categories, "
            "contact_name, contact_phone, established_on, status) VALUES (:n, 'REGIONAL', 'COMMUNITY_STATION', "
            "'230102', '230102001001', '[\"COMMUNITY\"]', '王芳', '13900001111', :d, 'ACTIVE') RETURNING id"),
            {"n": "\ufeff新建\u200b社区工作站\u200e", "d": dt.date(2020, 1, 1)}).scalar_one()
    twin = {"name": "新建社区工作站", "orgType": "REGIONAL", "level": "COMMUNITY_STATION", "parentId": None,
            "stationId": None, "uscc": None, "regionCode": "230102", "streetCode": "230102001001",
            "serviceCategories": ["COMMUNITY"], "contactName": "王芳", "contactPhone": "13900001111",
            "establishedOn": "2020-01-01", "status": "ACTIVE"}
    (rid,) = http_bulk(sandbox.admin_url)("org", [twin])
    code, summary = run_adopt(settings, engine=engine)
    assert code == 0, summary
    assert summary["linked"].get("org") == 1 and not summary["unmatched"].get("org"), summary
    with engine.connect() as conn:
        assert conn.execute(text("SELECT registry_id FROM link WHERE entity = 'org' AND local_id = :i"),
                            {"i": sid}).scalar_one() == rid
