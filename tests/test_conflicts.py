"""`regsync conflicts list|show|resolve` (issue 4, design.md "Conflict policy"): the logic on SQLite and PostgreSQL,
the commands end to end through the CLI, against the sandbox over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from factories import TEST_HASH_KEY
from regsync.console.cli import app
from regsync.flows.conflicts import list_conflicts, resolve_conflict
from regsync.flows.operator import OperatorUsageError
from regsync.flows.sync import run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, MergeSettings, RegistrySettings, Settings

FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(admin=True) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxServer, db_url: str) -> Settings:
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    return Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url),
                    registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                              client_secret=sandbox.client_secret),
                    merge=MergeSettings(contact="manual", descriptive="manual"), log=LogSettings(level="WARNING"))


def sync(settings: Settings, engine: Engine) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)
    assert code == 0, summary
    return summary


def registry_volunteer(sandbox: SandboxServer, registry_id: str) -> dict[str, Any]:
    r = httpx.get(f"{sandbox.admin_url}/records/volunteers")
    return next(x for x in r.json()["data"]["records"] if x["id"] == registry_id)


def conflicted(settings: Settings, engine: Engine, sandbox: SandboxServer) -> tuple[int, str]:
    """A volunteer whose phone and region code both sides changed; ``manual`` holds both. The skills, changed on
    the portal alone, still sync."""
    with engine.begin() as conn:
        v = f.volunteer(conn, phone="13800001111", region_code="230102")
    sync(settings, engine)
    with engine.connect() as conn:
        rid = conn.execute(text("SELECT registry_id FROM link WHERE entity = 'volunteer'")).scalar_one()
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact",
               json={"phone": "13955556666", "skills": ["摄影"]}).raise_for_status()
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{rid}", json={"regionCode": "230108"}).raise_for_status()
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13977778888', region_code = '230103' WHERE id = :i"),
                     {"i": v})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    return v, rid


def local(engine: Engine, v: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT phone, region_code, skills FROM volunteer WHERE id = :i"), {"i": v}).one()


def test_held_fields_are_listed_masked_and_the_rest_syncs(settings, engine, sandbox) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    listing = list_conflicts(engine)
    assert sorted(c.field for c in listing.conflicts) == ["phone", "region_code"]
    assert listing.by_state == {"open": 2} and listing.open_by_field == {"volunteer.phone": 1,
                                                                          "volunteer.region_code": 1}
    phone = next(c for c in listing.conflicts if c.field == "phone")
    assert phone.local_value == "139****8888" and phone.registry_value == "139****6666"
    assert not FULL_PHONE.search(json.dumps(listing.as_dict(), ensure_ascii=False))
    reg = registry_volunteer(sandbox, rid)
    assert (reg["phone"], reg["regionCode"]) == ("13955556666", "230108")  # held: the platform's not sent
    assert tuple(local(engine, v))[:2] == ("13977778888", "230103")  # nor taken
    assert json.loads(local(engine, v).skills) == ["摄影"]  # the portal's edit alone came home


def test_resolve_take_registry_applies_and_take_local_pushes(settings, engine, sandbox) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    ids = {c.field: c.id for c in list_conflicts(engine).conflicts}
    with RegistryClient(settings.registry, province=settings.province) as client:
        r1 = resolve_conflict(engine, client, settings, ids["phone"], take="registry", reason="the person's own edit")
        r2 = resolve_conflict(engine, client, settings, ids["region_code"], take="local", reason="moved in our data")
        with pytest.raises(OperatorUsageError, match="not open"):
            resolve_conflict(engine, client, settings, ids["phone"], take="local", reason="again")
    assert (r1.resolution, r1.applied_locally, r1.push_queued) == ("registry", True, False)
    assert (r2.resolution, r2.push_queued) == ("local", True)
    assert r1.value_shown == "139****6666"
    assert tuple(local(engine, v))[:2] == ("13955556666", "230103")
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1} and summary["conflicts"] == {}, summary
    reg = registry_volunteer(sandbox, rid)
    assert (reg["phone"], reg["regionCode"]) == ("13955556666", "230103")
    assert list_conflicts(engine).by_state == {"resolved": 2}
    with engine.connect() as conn:
        audits = conn.execute(text("SELECT action, reason, details FROM audit ORDER BY id")).all()
    assert [a.action for a in audits] == ["conflicts.resolve", "conflicts.resolve"]
    assert json.loads(audits[0].details)["value"] == "139****6666"
    # nothing left to do on either side
    again = sync(settings, engine)
    assert again["pushed"] == {} and again["inbound"]["changes"] == 0 and again["merged"] == {}


def test_resolve_with_a_value_of_ones_own(settings, engine, sandbox) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    ids = {c.field: c.id for c in list_conflicts(engine).conflicts}
    with RegistryClient(settings.registry, province=settings.province) as client:
        with pytest.raises(OperatorUsageError, match="not 'phone'"):
            resolve_conflict(engine, client, settings, ids["region_code"], take=None, set_value="phone=1", reason="x")
        with pytest.raises(OperatorUsageError, match="exactly one"):
            resolve_conflict(engine, client, settings, ids["phone"], take="local", set_value="phone=1", reason="x")
        with pytest.raises(OperatorUsageError, match="reason"):
            resolve_conflict(engine, client, settings, ids["phone"], take="local", reason=" ")
        # the registry's rules are checked before anything is written (no INVALID_PHONE at the next sync)
        with pytest.raises(OperatorUsageError, match="not a valid value"):
            resolve_conflict(engine, client, settings, ids["phone"], take=None, set_value="phone=12345", reason="x")
        assert local(engine, v).phone == "13977778888"
        resolve_conflict(engine, client, settings, ids["region_code"], take=None, set_value="region_code=230109",
                         reason="both were wrong")
    sync(settings, engine)
    assert local(engine, v).region_code == "230109"
    assert registry_volunteer(sandbox, rid)["regionCode"] == "230109"


def test_a_conflict_both_sides_settle_alone_is_superseded(settings, engine, sandbox) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact",
               json={"phone": "13977778888"}).raise_for_status()  # the portal now says what the platform says
    sync(settings, engine)
    states = {c.field: c.state for c in list_conflicts(engine, state=None).conflicts}
    assert states == {"phone": "superseded", "region_code": "open"}


# ------------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli(settings: Settings, engine: Engine, sandbox: SandboxServer, db_url: str) -> dict[str, str]:
    if not db_url.startswith("sqlite"):
        pytest.skip("the CLI end to end runs on the SQLite file (the logic above runs on both)")
    return {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING", "COLUMNS": "200",
            "REGSYNC_REGISTRY_URL": sandbox.base_url, "REGSYNC_CLIENT_ID": sandbox.client_id,
            "REGSYNC_CLIENT_SECRET": sandbox.client_secret, "REGSYNC_MERGE_CONTACT": "manual",
            "REGSYNC_MERGE_DESCRIPTIVE": "manual"}


def run(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def test_cli_list_show_resolve(cli, settings, engine, sandbox) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    res = run(cli, "conflicts", "list", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["total"] == 2 and not FULL_PHONE.search(res.stdout)
    phone_id = next(c["id"] for c in doc["conflicts"] if c["field"] == "phone")

    res = run(cli, "conflicts", "list")
    assert res.exit_code == 0 and "volunteer:" in res.stdout and not FULL_PHONE.search(res.stdout)

    res = run(cli, "conflicts", "show", str(phone_id))
    assert res.exit_code == 0 and "139****8888" in res.stdout and not FULL_PHONE.search(res.stdout)
    res = run(cli, "conflicts", "show", str(phone_id), "--live")
    assert res.exit_code == 2 and "reason" in res.output  # clear values need a reason
    res = run(cli, "conflicts", "show", str(phone_id), "--live", "--reason", "call back the volunteer", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["live"] == {"local": "13977778888", "registry": "13955556666"}
    res = run(cli, "conflicts", "show", "999")
    assert res.exit_code == 2 and "no conflict 999" in res.output

    # resolving overwrites data: asks first; no terminal to ask on → refuses
    res = run(cli, "conflicts", "resolve", str(phone_id), "--take", "local", "--reason", "r")
    assert res.exit_code == 2 and "--yes" in res.output
    res = run(cli, "conflicts", "resolve", str(phone_id), "--take", "local", "--reason", "r", "--set", "phone=1")
    assert res.exit_code == 2
    res = run(cli, "conflicts", "resolve", str(phone_id), "--take", "local", "--reason", "the platform checked it",
              "--yes", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["resolution"] == "local"
    res = run(cli, "sync", "--json")
    assert res.exit_code == 0, res.output
    assert registry_volunteer(sandbox, rid)["phone"] == "13977778888"
    with engine.connect() as conn:
        actions = [a for (a,) in conn.execute(text("SELECT action FROM audit ORDER BY id"))]
    assert actions == ["conflicts.show_live", "conflicts.resolve"]


def test_cli_help_names_the_settings(cli) -> None:
    for cmd in ("list", "show", "resolve"):
        res = run(cli, "conflicts", cmd, "--help")
        assert res.exit_code == 0 and "REGSYNC_DATABASE_URL" in res.stdout
