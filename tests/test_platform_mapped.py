"""A province's own tables, mapped (issue 14): a schema regsync has never seen (tests/platforms/xprov.*), its
mapping written for it, installed, and synced end to end with no code change, on every engine of the store.

The platform's programs are played by plain SQL on the platform's tables; the registry is the sandbox over HTTP.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
from platforms import xprov
from regsync.db.mapping.install import install, installed, status, uninstall
from regsync.db.mapping.load import load_mapping
from regsync.db.migrate import upgrade
from regsync.flows.inbound import Poller
from regsync.flows.sync import run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, Settings


@pytest.fixture
def platform(empty_engine: Engine) -> Iterator[tuple[Engine, str | None]]:
    """The made-up province's tables beside an empty store: ``(engine, schema of the platform's tables)``."""
    dialect = empty_engine.dialect.name
    schema = None if dialect == "sqlite" else "p_" + secrets.token_hex(5)
    with empty_engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        elif dialect == "mysql":
            conn.execute(text(f"CREATE DATABASE {schema} CHARACTER SET utf8mb4"))
        xprov.metadata(schema).create_all(conn)
    upgrade(empty_engine, reference_tables=False)
    yield empty_engine, schema
    if schema is not None:
        with empty_engine.begin() as conn:
            drop = "SCHEMA" if dialect == "postgresql" else "DATABASE"
            conn.execute(text(f"DROP {drop} IF EXISTS {schema}" + (" CASCADE" if dialect == "postgresql" else "")))


def mapped_settings(settings: Settings, schema: str | None) -> Settings:
    return dataclasses.replace(settings, database=DatabaseSettings(
        url=settings.database.url, mapping=xprov.MAPPING, platform_schema=schema or ""))


def outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT entity, op, state, last_code FROM outbox WHERE state <> 'sent' ORDER BY id"))]


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
    with RegistryClient(s.registry, province=s.province) as client:
        Poller(engine, client, s).run()
    with engine.connect() as conn:
        xm, sjhm = conn.execute(text(f"SELECT xm, sjhm FROM {xprov.q(schema, 'ry')} WHERE rid = :r"),
                                {"r": ids["rid"]}).one()
        conflicts = conn.execute(text("SELECT entity, field, state FROM conflict")).all()
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


def outbox_errors(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT entity, local_id, last_code, last_error FROM outbox WHERE state IN ('failed', 'blocked')"))]
