"""A province's own tables, mapped (issue 14): a schema regsync has never seen (tests/platforms/xprov.*), its
mapping written for it, installed, and synced end to end with no code change, on every engine of the store.

The platform's programs are played by plain SQL on the platform's tables; the registry is the sandbox over HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from platforms import xprov
from regsync.console.cli import app
from regsync.db.agreement import transferred_volunteers
from regsync.db.mapping.install import install, installed, status, uninstall
from regsync.db.mapping.load import load_mapping
from regsync.db.migrate import upgrade
from regsync.db.own import own_format
from regsync.db.session import make_engine, suppress_outbox
from regsync.flows.adopt import run_adopt
from regsync.flows.inbound import Poller
from regsync.flows.reconcile import run_reconcile
from regsync.flows.resync import Target, run_resync
from regsync.flows.sync import run_sync
from regsync.generate.seed import http_bulk
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.service.status import collect_status
from regsync.settings import DatabaseSettings, Settings, load_settings


@pytest.fixture
def platform(db_url: str) -> Iterator[tuple[Engine, str | None]]:
    """The made-up province's tables beside an empty store: ``(engine, schema of the platform's tables)``. On
    SQLite they share the file, where regsync's tables and views take the prefix ``regsync_``
    (``database.table_prefix`` auto), beside tables of the platform's own named like regsync's unprefixed ones
    (:func:`platforms.xprov.namesakes`)."""
    empty_engine = make_engine(db_url, table_prefix=DatabaseSettings(db_url, xprov.MAPPING).own_prefix)
    dialect = empty_engine.dialect.name
    schema = None if dialect == "sqlite" else "p_" + secrets.token_hex(5)
    with empty_engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        elif dialect == "mysql":
            conn.execute(text(f"CREATE DATABASE {schema} CHARACTER SET utf8mb4"))
        xprov.metadata(schema).create_all(conn)
        xprov.namesakes(schema).create_all(conn)
    upgrade(empty_engine, reference_tables=False)
    yield empty_engine, schema
    if schema is not None:
        with empty_engine.begin() as conn:
            drop = "SCHEMA" if dialect == "postgresql" else "DATABASE"
            conn.execute(text(f"DROP {drop} IF EXISTS {schema}" + (" CASCADE" if dialect == "postgresql" else "")))
    empty_engine.dispose()


def mapped_settings(settings: Settings, schema: str | None) -> Settings:
    return dataclasses.replace(settings, database=DatabaseSettings(
        url=settings.database.url, mapping=xprov.MAPPING, platform_schema=schema or ""))


def outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            own_format(conn, "SELECT entity, op, state, last_code FROM {outbox} WHERE state <> 'sent' ORDER BY id")))]


def records(sandbox: SandboxServer, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
    r.raise_for_status()
    return list(r.json()["data"]["records"])


def sync(settings: Settings, engine: Engine) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)
    assert code == 0, summary
    return summary


def catalog(engine: Engine, schema: str | None) -> list[tuple[Any, ...]]:
    """What the engine's catalog says of the platform's tables: columns, and the triggers on them."""
    d = engine.dialect.name
    with engine.connect() as conn:
        if d == "sqlite":
            return [tuple(r) for r in conn.execute(text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ('jg','ry','cy','hd','jl') "
                "ORDER BY type, name"))]
        if d == "postgresql":
            cols = conn.execute(text(
                "SELECT table_name, column_name, data_type, column_default, is_nullable "
                "FROM information_schema.columns WHERE table_schema = :s ORDER BY table_name, ordinal_position"),
                {"s": schema}).all()
            trg = conn.execute(text(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND NOT t.tgisinternal "
                "ORDER BY 1, 2"), {"s": schema}).all()
            return [tuple(r) for r in cols] + [("trigger", *r) for r in trg]
        cols = conn.execute(text(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = :s ORDER BY TABLE_NAME, ORDINAL_POSITION"), {"s": schema}).all()
        trg = conn.execute(text("SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
                                "WHERE EVENT_OBJECT_SCHEMA = :s ORDER BY 1, 2"), {"s": schema}).all()
        return [tuple(r) for r in cols] + [("trigger", *r) for r in trg]


def test_install_uninstall_leaves_the_platform_schema_as_it_was(platform: tuple[Engine, str | None]) -> None:
    engine, schema = platform
    mapping = load_mapping(xprov.MAPPING)
    before = catalog(engine, schema)
    install(engine, mapping, platform_schema=schema or "")
    assert catalog(engine, schema) != before  # the triggers are there
    with engine.connect() as conn:
        assert status(conn, mapping, platform_schema=schema or "").ok
        assert installed(conn) is not None
    uninstall(engine)
    assert catalog(engine, schema) == before
    with engine.connect() as conn:
        st = status(conn, mapping, platform_schema=schema or "")
    assert st.installed is None and not st.ok


def test_an_unseen_platform_syncs_end_to_end(platform: tuple[Engine, str | None], settings: Settings,
                                             sandbox: SandboxServer) -> None:
    engine, schema = platform
    s = mapped_settings(settings, schema)
    mapping = load_mapping(xprov.MAPPING)
    install(engine, mapping, platform_schema=schema or "")
    number = f.id_number()
    with engine.begin() as conn:
        ids = xprov.world(conn, schema, number, f.uscc())
    # the platform's plain SQL was captured: two orgs, a volunteer, a membership, an activity, a service record
    assert sorted(e for e, op, *_ in outbox(engine) if op == "insert") == sorted(
        ["org", "org", "volunteer", "membership", "activity", "service_record"])
    summary = sync(s, engine)
    assert not summary["failed"], [r for r in outbox_errors(engine)]
    vol = next(r for r in records(sandbox, "volunteers") if r["idNumber"] == number)
    assert (vol["name"], vol["gender"], vol["birthDate"], vol["skills"]) == ("李明", "M", "1990-01-01", ["急救"])
    orgs = {r["name"]: r for r in records(sandbox, "orgs")}
    city, district = orgs["某市志愿服务总队"], orgs["某区志愿服务大队"]
    assert (city["level"], district["level"], district["parentId"]) == ("CITY_CORPS", "DISTRICT_BRIGADE", city["id"])
    assert city["serviceCategories"] == ["COMMUNITY", "ELDERLY_DISABLED"] and city["establishedOn"] == "2015-03-01"
    sr = next(r for r in records(sandbox, "service-records") if r["volunteerId"] == vol["id"])
    assert sr["hours"] == "2.50"  # 150 minutes
    assert sr["startsAt"].startswith("2026-05-01T09:00:00")
    act = next(r for r in records(sandbox, "activities") if r["id"] == sr["activityId"])
    assert act["startsAt"].startswith("2026-05-01T08:00:00")

    # a change of a column the mapping does not read queues nothing; a mapped one is pushed
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {xprov.q(schema, 'ry')} SET bz = 'x', ly = 'APP' WHERE rid = :r"), {"r": ids["rid"]})
    assert outbox(engine) == []
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {xprov.q(schema, 'ry')} SET sjhm = '13800001111' WHERE rid = :r"),
                     {"r": ids["rid"]})
    assert [(e, op) for e, op, *_ in outbox(engine)] == [("volunteer", "update")]
    sync(s, engine)
    assert next(r for r in records(sandbox, "volunteers") if r["id"] == vol["id"])["phone"] == "13800001111"

    # the registry changes a writable field: written into the platform's column, not echoed
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{vol['id']}",
                json={"phone": "13655556666"}).raise_for_status()
    # and a field the mapping never lets regsync write (the name): held as a conflict
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{vol['id']}", json={"name": "李明明"}).raise_for_status()
    # a volunteer registered on the portal: inserted into the platform's table (insert = true), in its codes and
    # formats, with the mapping's defaults for the platform's required columns it does not map
    newcomer = f.id_number(dt.date(1995, 7, 8), female=True)
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json={
        "name": "周敏", "idType": "RESIDENT_ID", "idNumber": newcomer, "gender": "F", "birthDate": "1995-07-08",
        "phone": "13811112222", "regionCode": "230102", "skills": ["急救", "翻译"], "homeProvince": "23"})
    assert r.status_code in (200, 201), r.text
    # fields in the platform's own formats: an org's date as text, an activity's end as a +08:00 native time
    httpx.patch(f"{sandbox.admin_url}/records/orgs/{city['id']}",
                json={"establishedOn": "2014-02-03", "contactName": "王芳芳"}).raise_for_status()
    httpx.patch(f"{sandbox.admin_url}/records/activities/{act['id']}",
                json={"endsAt": "2026-05-03T20:30:00+08:00"}).raise_for_status()
    with RegistryClient(s.registry, province=s.province) as client:
        Poller(engine, client, s).run()
    with engine.connect() as conn:
        clrq, lxr = conn.execute(text(f"SELECT clrq, lxr FROM {xprov.q(schema, 'jg')} WHERE jgbm = 'X2301'")).one()
        jssj = conn.execute(text(f"SELECT jssj FROM {xprov.q(schema, 'hd')}")).scalar_one()
    assert (clrq, lxr) == ("2014-02-03", "王芳芳")
    with engine.connect() as conn:
        made = conn.execute(text(f"SELECT xm, zjlx, xb, csrq, tc, zt, ly, cs FROM {xprov.q(schema, 'ry')} "
                                 "WHERE zjhm = :n"), {"n": newcomer}).one()
    assert (made.xm, made.zjlx, made.xb, made.csrq, made.zt, made.ly, int(made.cs)) == (
        "周敏", "01", "2", "19950708", "A", "REG", 0)
    assert json.loads(made.tc) == ["急救", "翻译"]
    assert str(jssj)[:19] == "2026-05-03 20:30:00"  # +08:00, as the platform keeps it
    with engine.connect() as conn:
        xm, sjhm = conn.execute(text(f"SELECT xm, sjhm FROM {xprov.q(schema, 'ry')} WHERE rid = :r"),
                                {"r": ids["rid"]}).one()
        conflicts = conn.execute(text(own_format(conn, "SELECT entity, field, state FROM {conflict}"))).all()
    assert (xm, sjhm) == ("李明", "13655556666")
    assert [tuple(c) for c in conflicts] == [("volunteer", "name", "open")]
    assert outbox(engine) == []

    # the row leaves the scope (a test row now): listed for an operator, nothing ended in the registry
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {xprov.q(schema, 'ry')} SET cs = 1 WHERE rid = :r"), {"r": ids["rid"]})
    assert outbox(engine) == [("volunteer", "update", "failed", "OUT_OF_SCOPE")]
    sync(s, engine)
    assert next(r for r in records(sandbox, "volunteers") if r["id"] == vol["id"])["status"] == "ACTIVE"

    # a soft delete of an org with no children in the registry: dissolved there
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {xprov.q(schema, 'jl')}"))
        conn.execute(text(f"DELETE FROM {xprov.q(schema, 'cy')}"))
        conn.execute(text(f"UPDATE {xprov.q(schema, 'hd')} SET zt = 'X'"))
        conn.execute(text(f"UPDATE {xprov.q(schema, 'jg')} SET scbj = 1 WHERE jgbm = 'X230102'"))
    assert ("org", "delete") in [(e, op) for e, op, *_ in outbox(engine)]
    sync(s, engine)
    assert next(r for r in records(sandbox, "orgs") if r["id"] == district["id"])["status"] == "DISSOLVED"


def queued(engine: Engine) -> list[tuple[Any, ...]]:
    """The outbox, then emptied: ``(entity, local_id, op, state, last_code)`` in order."""
    with engine.begin() as conn:
        rows = [tuple(r) for r in conn.execute(text(
            own_format(conn, "SELECT entity, local_id, op, state, last_code FROM {outbox} ORDER BY id")))]
        conn.execute(text(own_format(conn, "DELETE FROM {outbox}")))
    return rows


def test_the_triggers_capture_what_the_mapping_means(platform: tuple[Engine, str | None]) -> None:
    """Plain SQL on the platform's tables, as another program writes it: inserts, updates of read and unread
    columns, a soft delete and its undoing, a physical delete, a row leaving and re-entering the scope, a key
    changed, and regsync's own writes (no echo)."""
    engine, schema = platform
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    jg, ry = xprov.q(schema, "jg"), xprov.q(schema, "ry")
    with engine.begin() as conn:
        ids = xprov.world(conn, schema, f.id_number(), f.uscc())
        keys = dict(conn.execute(text(own_format(
            conn, "SELECT key_value, local_id FROM {platform_key} WHERE entity = 'org'"))).all())
    city, district = keys["X2301"], keys["X230102"]
    rid = ids["rid"]
    assert [(e, op) for e, _lid, op, *_ in queued(engine)] == [
        ("org", "insert"), ("org", "insert"), ("volunteer", "insert"), ("membership", "insert"),
        ("activity", "insert"), ("service_record", "insert")]
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {ry} SET bz = '备注', ly = 'APP' WHERE rid = :r"), {"r": rid})  # unread columns
    assert queued(engine) == []
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {jg} SET lxdh = '13911112222' WHERE jgbm = 'X230102'"))
        conn.execute(text(f"UPDATE {jg} SET zt = '9' WHERE jgbm = 'X230102'"))  # dissolved: an ending's priority
    assert queued(engine) == [("org", district, "update", "pending", None), ("org", district, "update", "pending", None)]
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {jg} SET scbj = 1 WHERE jgbm = 'X230102'"))  # soft delete
        conn.execute(text(f"UPDATE {jg} SET scbj = 0 WHERE jgbm = 'X230102'"))  # and back: the same key again
        conn.execute(text(f"UPDATE {ry} SET cs = 1 WHERE rid = :r"), {"r": rid})  # leaves the scope
        conn.execute(text(f"UPDATE {ry} SET cs = 0 WHERE rid = :r"), {"r": rid})  # and comes back
        conn.execute(text(f"UPDATE {jg} SET jgbm = 'X230199' WHERE jgbm = 'X230102'"))  # a key changed
        conn.execute(text(f"DELETE FROM {xprov.q(schema, 'cy')}"))
    with engine.connect() as conn:
        new_key = conn.execute(text(own_format(
            conn, "SELECT local_id FROM {platform_key} WHERE key_value = 'X230199'"))).scalar_one()
    membership = queued(engine)
    assert membership[:6] == [
        ("org", district, "delete", "pending", None),
        ("org", district, "insert", "pending", None),  # not linked (the test empties the outbox): a create
        ("volunteer", rid, "update", "failed", "OUT_OF_SCOPE"),
        ("volunteer", rid, "insert", "pending", None),
        ("org", district, "delete", "pending", None),
        ("org", new_key, "insert", "pending", None),
    ]
    assert [(e, op) for e, _l, op, *_ in membership[6:]] == [("membership", "delete")]
    # regsync applying the registry's changes writes through the same tables: nothing queued (no echo)
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text(f"UPDATE {ry} SET sjhm = '13700001111' WHERE rid = :r"), {"r": rid})
        conn.execute(text(f"UPDATE {jg} SET mc = '新名' WHERE jgbm = 'X2301'"))
    assert queued(engine) == []
    assert city != district


def outbox_errors(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            own_format(conn, "SELECT entity, local_id, last_code, last_error FROM {outbox} "
                             "WHERE state IN ('failed', 'blocked')")))]


def test_reconcile_adopt_and_resync_on_mapped_tables(platform: tuple[Engine, str | None], settings: Settings,
                                                     sandbox: SandboxServer) -> None:
    """The rows a platform had before the install are not queued: adopt links those the registry already holds,
    the reconcile finds and pushes the rest, and a resync of one volunteer compares it, all through the views."""
    engine, schema = platform
    s = mapped_settings(settings, schema)
    number, uscc = f.id_number(), f.uscc()
    with engine.begin() as conn:  # the platform as it was before regsync came
        ids = xprov.world(conn, schema, number, uscc)
        xprov.insert(conn, schema, "ry", xm="赵丽", zjlx="01", zjhm=f.id_number(female=True), xb="2",
                     csrq="19900101", sjhm="13912340000", qh="230102", tc="[]", zt="A",
                     zcsj=xprov.epoch_ms(dt.datetime(2021, 3, 1, 9, 0)), cs=0, ly="WEB")
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    assert outbox(engine) == []
    # the registry already holds the city corps and the first volunteer, entered by an older channel
    bulk = http_bulk(sandbox.admin_url)
    bulk("org", [{"name": "某市志愿服务总队", "orgType": "REGIONAL", "level": "CITY_CORPS", "parentId": None,
                  "stationId": None, "uscc": uscc, "regionCode": "230100", "streetCode": None,
                  "serviceCategories": ["COMMUNITY", "ELDERLY_DISABLED"], "contactName": "王芳",
                  "contactPhone": "13900001111", "establishedOn": "2015-03-01", "status": "ACTIVE"}])
    bulk("volunteer", [{"name": "李明", "idType": "RESIDENT_ID", "idNumber": number, "gender": "M",
                        "birthDate": "1990-01-01", "phone": "13912345678", "regionCode": "230102",
                        "skills": ["急救"], "homeProvince": "23", "status": "ACTIVE"}])
    code, adopted = run_adopt(s, engine=engine)
    assert code == 0, adopted
    assert adopted["linked"].get("org") == 1 and adopted["linked"].get("volunteer") == 1, adopted
    code, found = run_reconcile(s, engine=engine, repair=True)
    assert code == 0, found
    # the district brigade, the second volunteer, the membership, the activity and the service record
    assert found["discrepancies"].get("missing_in_registry", 0) >= 5, found
    sync(s, engine)
    names = {r["name"] for r in records(sandbox, "volunteers")}
    assert {"李明", "赵丽"} <= names
    assert {r["name"] for r in records(sandbox, "orgs")} >= {"某市志愿服务总队", "某区志愿服务大队"}
    code, again = run_reconcile(s, engine=engine)
    assert code == 0 and not again["discrepancies"], again
    code, one = run_resync(s, Target(scope="volunteer", ident=str(ids["rid"])), reason="test", engine=engine)
    assert code == 0 and one["compared_total"]["local"] >= 1 and not one["discrepancies"], one
    # an org named by its platform key (an org code), with everything under it
    code, tree = run_resync(s, Target(scope="org", ident="X2301", subtree=True), reason="test", engine=engine)
    assert code == 0 and tree["compared_total"]["local"] >= 2 and not tree["discrepancies"], tree


def link_how(engine: Engine, local_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(own_format(conn, "SELECT how FROM {link} WHERE entity = 'volunteer' "
                                                      "AND local_id = :i")),
                                {"i": local_id}).scalar_one())


def test_a_transfer_out_is_recorded_where_the_home_province_is_a_const(
        platform: tuple[Engine, str | None], settings: Settings, sandbox: SandboxServer) -> None:
    """The platform keeps no home province (``home_province = { const = "23" }``): a volunteer who transfers to another
    province on the portal is recorded as transferred out in its link, counted once, never pushed again (another
    province manages the person: a write would be refused ``NOT_OWNER``), counted as moved out by the demo and not
    reported by the nightly reconcile; back in the province, the person is synced again."""
    engine, schema = platform
    s = mapped_settings(settings, schema)
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    with engine.begin() as conn:
        rid = xprov.world(conn, schema, f.id_number(), f.uscc())["rid"]
    sync(s, engine)
    with engine.connect() as conn:
        registry_id = conn.execute(text(own_format(
            conn, "SELECT registry_id FROM {link} WHERE entity = 'volunteer'"))).scalar_one()
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{registry_id}/transfer",
               json={"homeProvince": "11"}).raise_for_status()
    moved = sync(s, engine)
    assert moved["transferred_out"] == {"volunteers": 1}, moved
    assert link_how(engine, rid) == "transferred_out"
    assert transferred_volunteers(engine, "23") == 1
    code, found = run_reconcile(s, engine=engine)  # the platform's "23" is no difference: the link records the move
    assert code == 0 and not found["discrepancies"], found
    # the platform edits the person: nothing is sent, nothing fails
    ry = xprov.q(schema, "ry")
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {ry} SET sjhm = '13800007777' WHERE rid = :r"), {"r": rid})
    after = sync(s, engine)
    assert after["pushed"] == {} and not after["failed"] and not after["transferred_out"], after
    assert outbox_errors(engine) == []
    rec = next(r for r in records(sandbox, "volunteers") if r["id"] == registry_id)
    assert (rec["homeProvince"], rec["phone"]) == ("11", "13912345678")
    # back in the province: synced again, the platform's edit pushed
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{registry_id}/transfer",
               json={"homeProvince": "23"}).raise_for_status()
    sync(s, engine)
    assert link_how(engine, rid) == "transferred_back" and transferred_volunteers(engine, "23") == 0
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {ry} SET sjhm = '13800008888' WHERE rid = :r"), {"r": rid})
    assert sync(s, engine)["pushed"] == {"volunteers": 1}
    assert next(r for r in records(sandbox, "volunteers") if r["id"] == registry_id)["phone"] == "13800008888"


def test_the_platform_commands_install_report_and_uninstall(platform: tuple[Engine, str | None], db_url: str) -> None:
    """``regsync platform install|status|uninstall`` on the configured mapping, and ``regsync status``'s word on it:
    not installed is a problem; a mapping file changed since its install a warning; install refuses on errors."""
    engine, schema = platform
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_MAPPING": xprov.MAPPING, "REGSYNC_PLATFORM_SCHEMA": schema or "",
           "REGSYNC_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    res = runner.invoke(app, ["platform", "status", "--json"], env=env)
    assert res.exit_code == 3 and json.loads(res.stdout)["installed"] is None, res.output
    assert any("not installed" in p for p in collect_status(engine, mapped_env_settings(env))["problems"])
    res = runner.invoke(app, ["platform", "install", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["installed"] == "xprov"
    res = runner.invoke(app, ["platform", "status", "--json"], env=env)
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"], res.output
    st = collect_status(engine, mapped_env_settings(env))["platform"]
    assert st["ok"] and st["problem"] is None and st["warning"] is None
    # the mapping file changes (a code added): installed, but not its current form
    changed = Path(xprov.MAPPING).read_text(encoding="utf-8").replace('"03" = "PASSPORT"',
                                                                      '"03" = "PASSPORT", "04" = "OTHER"')
    other = Path(db_url.split("///")[-1]).parent / "changed.toml" if db_url.startswith("sqlite") else None
    path = other or Path(tempfile.mkdtemp()) / "changed.toml"
    path.write_text(changed, encoding="utf-8")
    env2 = {**env, "REGSYNC_MAPPING": str(path)}
    res = runner.invoke(app, ["platform", "status", "--json"], env=env2)
    assert res.exit_code == 3 and not json.loads(res.stdout)["current"], res.output
    assert collect_status(engine, mapped_env_settings(env2))["platform"]["warning"]
    res = runner.invoke(app, ["platform", "uninstall", "--json"], env=env)
    assert res.exit_code == 0 and json.loads(res.stdout)["uninstalled"] == "xprov", res.output
    res = runner.invoke(app, ["platform", "status", "--json"], env=env)
    assert res.exit_code == 3
    # a column the mapping needs is gone (the engines refuse that while regsync's views read it): the check finds
    # an error, and install refuses
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {xprov.q(schema, 'jl')} DROP COLUMN cxyy"))
    res = runner.invoke(app, ["platform", "install"], env=env)
    assert res.exit_code == 1 and "MISSING_COLUMN" in res.output, res.output
    with engine.connect() as conn:
        assert installed(conn) is None


def mapped_env_settings(env: dict[str, str]) -> Settings:
    return load_settings(environ={**env, "REGSYNC_HASH_KEY": f.TEST_HASH_KEY})
