"""The store's hash key (issue 12, item 9; design.md "Personal data"): a PostgreSQL store needs one, a SQLite store
gets one made beside it, a changed key stops every flow before it runs, and `regsync db rekey` moves a store to a new
key from the values both sides agreed on, pushing nothing. On SQLite and PostgreSQL, against the sandbox over HTTP."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db.hashkey import HashKeyMismatch, check_hash_key, fingerprint, rekey_store, stored_fingerprint
from regsync.domain.masking import keyed_hash
from regsync.flows.sync import run_pull, run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import PUBLIC_HASH_KEY, ConfigError, MergeSettings, Settings, load_settings

NEW_KEY = "a-new-secret-hash-key-of-the-province-0001"
OTHER_KEY = "another-secret-hash-key-nobody-configured-02"
OLD_PHONE, LOCAL_PHONE, PORTAL_PHONE = "13912345678", "13800002222", "13700003333"


def sync(settings: Settings, engine: Engine) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)
    assert code == 0, summary
    return summary


def link_base(engine: Engine, kind: str, local_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return json.loads(conn.execute(text("SELECT base FROM link WHERE entity = :k AND local_id = :i"),
                                       {"k": kind, "i": local_id}).scalar_one())


def registry_id(engine: Engine, kind: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :k AND local_id = :i"),
                            {"k": kind, "i": local_id}).scalar_one()


def registry_phones(sandbox: SandboxServer) -> dict[str, str]:
    records = httpx.get(f"{sandbox.admin_url}/records/volunteers").json()["data"]["records"]
    return {r["id"]: r.get("phone") for r in records}


def local_phone(engine: Engine, v: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT phone FROM volunteer WHERE id = :i"), {"i": v}).scalar_one()


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def portal_phone(sandbox: SandboxServer, rid: str, phone: str) -> None:
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact", json={"phone": phone}).raise_for_status()


def on_public_key(settings: Settings, engine: Engine) -> tuple[Settings, dict[str, int]]:
    """A store that ran on the old public default key, from before the fingerprint: four volunteers and an org
    synced, then the fingerprint row removed (a store migrated from 0006 keeps none)."""
    old = replace(settings, hash_key=PUBLIC_HASH_KEY)
    with engine.begin() as conn:
        ids = {name: f.volunteer(conn) for name in ("same", "local", "remote", "both")}
        ids["org"] = f.org(conn, "CITY_CORPS", contact_phone="13600004444")
    sync(old, engine)
    assert stored_fingerprint(engine) == fingerprint(PUBLIC_HASH_KEY)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM store_meta"))
    return old, ids


# ------------------------------------------------------------------------------------------------ a changed key
def test_a_changed_hash_key_stops_every_flow_before_it_runs(settings, engine, sandbox) -> None:
    from regsync.flows.adopt import run_adopt
    from regsync.flows.conflicts import resolve_conflict
    from regsync.flows.inbound import Poller
    from regsync.flows.outbound import Relay
    from regsync.flows.reconcile import run_reconcile
    from regsync.flows.resync import Target, run_resync
    from regsync.generate.seed import Seeder, http_bulk
    from regsync.service.daemon import run_daemon

    with engine.begin() as conn:
        v = f.volunteer(conn)
    sync(settings, engine)
    assert stored_fingerprint(engine) == fingerprint(settings.hash_key)
    base = link_base(engine, "volunteer", v)
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :i"), {"p": LOCAL_PHONE, "i": v})
    runs, outbox = count(engine, "SELECT COUNT(*) FROM run"), count(engine, "SELECT COUNT(*) FROM outbox")
    changed = replace(settings, hash_key=OTHER_KEY)
    with RegistryClient(changed.registry, province=changed.province) as client:
        calls: list[Any] = [
            lambda: run_sync(changed, engine=engine),
            lambda: run_pull(changed, engine=engine),
            lambda: run_reconcile(changed, engine=engine),
            lambda: run_adopt(changed, engine=engine),
            lambda: run_resync(changed, Target("volunteer", str(v)), reason="check", engine=engine),
            lambda: run_daemon(changed, engine=engine),
            lambda: resolve_conflict(engine, client, changed, 1, take="local", reason="check"),
            lambda: Relay(engine, client, changed),
            lambda: Poller(engine, client, changed),
            lambda: Seeder(engine, http_bulk(sandbox.admin_url), link=True, hash_key=OTHER_KEY),
        ]
        for call in calls:
            with pytest.raises(HashKeyMismatch, match="not the key this store"):
                call()
    # nothing ran: no run recorded, the change still waits, the snapshot as it was
    assert count(engine, "SELECT COUNT(*) FROM run") == runs
    assert count(engine, "SELECT COUNT(*) FROM outbox") == outbox
    assert link_base(engine, "volunteer", v) == base
    assert registry_phones(sandbox)[registry_id(engine, "volunteer", v)] == OLD_PHONE
    # the store's own key still works
    assert sync(settings, engine)["pushed"] == {"volunteers": 1}


def test_the_sync_command_with_a_changed_key_exits_2_and_names_the_setting(settings, engine, sandbox,
                                                                            db_url) -> None:
    with engine.begin() as conn:
        f.volunteer(conn)
    sync(settings, engine)
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_REGISTRY_URL": sandbox.base_url,
           "REGSYNC_CLIENT_ID": sandbox.client_id, "REGSYNC_CLIENT_SECRET": sandbox.client_secret,
           "REGSYNC_LOG_LEVEL": "WARNING", "REGSYNC_HASH_KEY": OTHER_KEY, "COLUMNS": "300"}
    for args in (["sync"], ["reconcile"], ["adopt"], ["resync", "region", "2301", "--reason", "x"]):
        res = CliRunner().invoke(app, args, env=env)
        assert res.exit_code == 2, (args, res.output)
        assert "hash_key" in res.output and "regsync db rekey" in res.output and "Traceback" not in res.output
    assert count(engine, "SELECT COUNT(*) FROM run WHERE kind <> 'sync'") == 0


def test_a_store_from_before_the_fingerprint_takes_its_own_key_and_refuses_another(settings, engine,
                                                                                    sandbox) -> None:
    old, _ = on_public_key(settings, engine)
    # a new key over snapshots hashed with the public one: refused, with the way through
    with pytest.raises(HashKeyMismatch, match="public default key") as info:
        check_hash_key(engine, NEW_KEY)
    assert "regsync db rekey" in str(info.value)
    assert stored_fingerprint(engine) is None
    # the key it ran on is recognized from the snapshots and recorded
    check_hash_key(engine, old.hash_key)
    assert stored_fingerprint(engine) == fingerprint(PUBLIC_HASH_KEY)


def test_an_empty_store_records_the_first_key_it_runs_with(settings, engine) -> None:
    check_hash_key(engine, NEW_KEY)
    assert stored_fingerprint(engine) == fingerprint(NEW_KEY)
    check_hash_key(engine, NEW_KEY)
    with pytest.raises(HashKeyMismatch):
        check_hash_key(engine, OTHER_KEY)
    with engine.connect() as conn:
        kept = json.dumps([list(r) for r in conn.execute(text("SELECT * FROM store_meta")).all()], default=str)
    assert NEW_KEY not in kept


# ------------------------------------------------------------------------------------------------ re-keying
def test_rekey_rehashes_each_base_from_the_agreed_value_and_pushes_nothing(settings, engine, sandbox) -> None:
    old, ids = on_public_key(settings, engine)
    rid = {name: registry_id(engine, "volunteer", ids[name]) for name in ("same", "local", "remote", "both")}
    with engine.begin() as conn:  # changed on the platform since the last sync (waiting in the outbox)
        conn.execute(text("UPDATE volunteer SET phone = :p WHERE id IN (:a, :b)"),
                     {"p": LOCAL_PHONE, "a": ids["local"], "b": ids["both"]})
    portal_phone(sandbox, rid["remote"], PORTAL_PHONE)  # changed in the registry since (not pulled yet)
    portal_phone(sandbox, rid["both"], PORTAL_PHONE)  # and on both sides, differently
    new = replace(settings, hash_key=NEW_KEY)
    with pytest.raises(HashKeyMismatch):
        run_sync(new, engine=engine)
    outbox = count(engine, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
    registry_before = registry_phones(sandbox)
    feed_cursor = count(engine, "SELECT COUNT(*) FROM feed_cursor")

    with RegistryClient(new.registry, province=new.province) as client:
        summary = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, client=client, reason="move off the default key",
                              actor="tester")
    # 4 ID numbers, 2 phones and the org's contact phone from the platform; 1 phone from the registry; 1 unknown
    assert (summary.from_local, summary.from_registry, summary.unknown, summary.unknown_offline) == (7, 1, 1, 0)
    assert summary.links == 5 and summary.looked_up == 2  # only the records whose local value had moved
    h = lambda value: keyed_hash(NEW_KEY, value)  # noqa: E731
    assert link_base(engine, "volunteer", ids["same"])["phone"] == h(OLD_PHONE)
    assert link_base(engine, "volunteer", ids["remote"])["phone"] == h(OLD_PHONE)  # the platform's: unchanged
    assert link_base(engine, "volunteer", ids["local"])["phone"] == h(OLD_PHONE)  # the registry's: unchanged
    assert "phone" not in link_base(engine, "volunteer", ids["both"])  # neither holds it: unknown
    assert link_base(engine, "org", ids["org"])["contact_phone"] == h("13600004444")
    with engine.connect() as conn:
        number = conn.execute(text("SELECT id_number FROM volunteer WHERE id = :i"), {"i": ids["same"]}).scalar_one()
        audit = conn.execute(text("SELECT actor, action, reason, details FROM audit")).one()
    assert link_base(engine, "volunteer", ids["same"])["id_number"] == h(number)
    assert (audit.actor, audit.action, audit.reason) == ("tester", "db_rekey", "move off the default key")
    assert NEW_KEY not in audit.details and PUBLIC_HASH_KEY not in audit.details
    assert stored_fingerprint(engine) == fingerprint(NEW_KEY)
    # pushed nothing, pulled nothing
    assert count(engine, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") == outbox
    assert registry_phones(sandbox) == registry_before
    assert count(engine, "SELECT COUNT(*) FROM feed_cursor") == feed_cursor

    # the next sync decides as the true base would have: each side's own change goes across, the field changed on
    # both sides goes by policy (contact: registry), and nothing else is pushed
    summary = sync(new, engine)
    assert summary["pushed"] == {"volunteers": 1}, summary
    phones = registry_phones(sandbox)
    assert (phones[rid["local"]], local_phone(engine, ids["local"])) == (LOCAL_PHONE, LOCAL_PHONE)
    assert (phones[rid["remote"]], local_phone(engine, ids["remote"])) == (PORTAL_PHONE, PORTAL_PHONE)
    assert (phones[rid["both"]], local_phone(engine, ids["both"])) == (PORTAL_PHONE, PORTAL_PHONE)
    assert (phones[rid["same"]], local_phone(engine, ids["same"])) == (OLD_PHONE, OLD_PHONE)
    again = sync(new, engine)
    assert again["pushed"] == {} and again["merged"] == {}, again


def test_rekey_offline_leaves_the_values_the_platform_no_longer_holds_unknown(settings, engine, sandbox) -> None:
    _, ids = on_public_key(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :i"), {"p": LOCAL_PHONE, "i": ids["local"]})
    summary = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, client=None, reason="offline", actor="tester")
    assert (summary.from_local, summary.from_registry, summary.unknown_offline, summary.looked_up) == (8, 0, 1, 0)
    assert "phone" not in link_base(engine, "volunteer", ids["local"])
    assert link_base(engine, "volunteer", ids["same"])["phone"] == keyed_hash(NEW_KEY, OLD_PHONE)


def test_rekey_refuses_a_wrong_old_key_and_a_second_run_does_nothing(settings, engine, sandbox) -> None:
    _, ids = on_public_key(settings, engine)
    before = link_base(engine, "volunteer", ids["same"])
    with pytest.raises(HashKeyMismatch, match="old key"):
        rekey_store(engine, OTHER_KEY, NEW_KEY, reason="wrong", actor="tester")
    assert link_base(engine, "volunteer", ids["same"]) == before and stored_fingerprint(engine) is None
    dry = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, reason="look first", actor="tester", dry_run=True)
    assert dry.from_local == 9 and dry.audit_id is None
    assert link_base(engine, "volunteer", ids["same"]) == before and stored_fingerprint(engine) is None
    done = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, reason="now", actor="tester")
    assert done.from_local == 9 and done.audit_id is not None
    again = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, reason="again", actor="tester")
    assert again.already and again.from_local == 0
    with pytest.raises(HashKeyMismatch, match="neither the old key"):
        rekey_store(engine, OTHER_KEY, "yet-another-key-for-this-test-000003", reason="x", actor="tester")
    with pytest.raises(ConfigError, match="reason"):
        rekey_store(engine, NEW_KEY, OTHER_KEY, reason=" ", actor="tester")
    assert count(engine, "SELECT COUNT(*) FROM audit WHERE action = 'db_rekey'") == 1


def test_rekey_rehashes_the_conflicts_from_the_values_still_held(settings, engine, sandbox) -> None:
    old = replace(settings, hash_key=PUBLIC_HASH_KEY, merge=MergeSettings(contact="manual"))
    with engine.begin() as conn:
        v = f.volunteer(conn)
    sync(old, engine)
    rid = registry_id(engine, "volunteer", v)
    portal_phone(sandbox, rid, PORTAL_PHONE)
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :i"), {"p": LOCAL_PHONE, "i": v})
    sync(old, engine)
    with engine.connect() as conn:
        c = conn.execute(text("SELECT id, base_value, local_hash, remote_hash FROM conflict")).one()
    assert c.local_hash == keyed_hash(PUBLIC_HASH_KEY, LOCAL_PHONE)
    with RegistryClient(old.registry, province=old.province) as client:
        summary = rekey_store(engine, PUBLIC_HASH_KEY, NEW_KEY, client=client, reason="rotate", actor="tester")
    with engine.connect() as conn:
        c = conn.execute(text("SELECT id, state, base_value, local_hash, remote_hash FROM conflict")).one()
    assert (c.local_hash, c.remote_hash) == (keyed_hash(NEW_KEY, LOCAL_PHONE), keyed_hash(NEW_KEY, PORTAL_PHONE))
    assert c.base_value is None  # the agreed phone is held by neither side any more: cleared, never the old hash
    assert (summary.conflicts_rehashed, summary.conflicts_cleared) == (2, 1)
    assert "phone" not in link_base(engine, "volunteer", v)
    # the conflict stays what it was under the new key: open, the phone still held, nothing pushed
    new = replace(old, hash_key=NEW_KEY)
    after = sync(new, engine)
    assert after["pushed"] == {}, after
    with engine.connect() as conn:
        states = conn.execute(text("SELECT state, field FROM conflict")).all()
    assert [tuple(s) for s in states] == [("open", "phone")]
    assert (registry_phones(sandbox)[rid], local_phone(engine, v)) == (PORTAL_PHONE, LOCAL_PHONE)


def test_the_rekey_command_moves_the_store_and_the_flows_run_again(settings, engine, sandbox, db_url,
                                                                    tmp_path: Path) -> None:
    on_public_key(settings, engine)
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_REGISTRY_URL": sandbox.base_url,
           "REGSYNC_CLIENT_ID": sandbox.client_id, "REGSYNC_CLIENT_SECRET": sandbox.client_secret,
           "REGSYNC_LOG_LEVEL": "WARNING", "REGSYNC_HASH_KEY": NEW_KEY, "COLUMNS": "300"}
    run = lambda *args: CliRunner().invoke(app, list(args), env=env)  # noqa: E731
    res = run("sync")
    assert res.exit_code == 2 and "public default key" in res.output, res.output
    res = run("db", "rekey")
    assert res.exit_code == 2  # a reason is required
    res = run("db", "rekey", "--reason", "rotate", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["from_local"] == 9 and stored_fingerprint(engine) is None
    wrong = tmp_path / "old.key"
    wrong.write_text(OTHER_KEY + "\n")
    res = run("db", "rekey", "--reason", "rotate", "--old-key-file", str(wrong))
    assert res.exit_code == 2 and "old key" in res.output, res.output
    res = run("db", "rekey", "--reason", "move off the default key")
    assert res.exit_code == 0 and "re-keyed; audit #" in res.output, res.output
    res = run("sync", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pushed"] == {}
    res = run("db", "rekey", "--reason", "again")
    assert res.exit_code == 0 and "already" in res.output


# ------------------------------------------------------------------------------------------------ no key given
@pytest.mark.parametrize(("server", "name"), [("postgresql", "PostgreSQL"), ("mariadb", "MySQL/MariaDB")])
def test_a_server_store_without_a_hash_key_is_refused(server, name, request, monkeypatch) -> None:
    """A server store (PostgreSQL, MySQL/MariaDB) has no file beside it to keep a key made for it: none is refused."""
    monkeypatch.delenv("REGSYNC_HASH_KEY")
    pg_url = request.getfixturevalue("pg_url") if server == "postgresql" else \
        request.getfixturevalue("my_url").replace("/?", "/regsync?")
    with pytest.raises(ConfigError, match=rf"hash_key \(REGSYNC_HASH_KEY\) is required for a {name} store"):
        load_settings(environ={"REGSYNC_DATABASE_URL": pg_url})
    with pytest.raises(ConfigError, match="public default key"):
        load_settings(environ={"REGSYNC_DATABASE_URL": pg_url, "REGSYNC_HASH_KEY": PUBLIC_HASH_KEY})
    for args in (["status"], ["run"], ["sync"], ["db", "upgrade"], ["outbox", "list"]):
        res = CliRunner().invoke(app, args, env={"REGSYNC_DATABASE_URL": pg_url, "REGSYNC_CONFIG": ""})
        assert res.exit_code == 2, (args, res.output)
        assert "hash_key (REGSYNC_HASH_KEY) is required" in res.output and "REGSYNC_HASH_KEY_FILE" in res.output


def test_a_sqlite_store_without_a_hash_key_gets_one_made_once_beside_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("REGSYNC_HASH_KEY")
    db = tmp_path / "local.db"
    env = {"REGSYNC_DATABASE_URL": f"sqlite:///{db}", "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING"}
    load_settings(environ=env)
    assert list(tmp_path.iterdir()) == []  # no store yet: nothing made
    res = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert res.exit_code in (0, 3), res.output
    key_file = tmp_path / "local.db.hash_key"
    key = key_file.read_text().strip()
    assert len(key) >= 32 and key != PUBLIC_HASH_KEY
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert load_settings(environ=env).hash_key == key == load_settings(environ=env).hash_key
    # a configured key wins over the file
    assert load_settings(environ={**env, "REGSYNC_HASH_KEY": NEW_KEY}).hash_key == NEW_KEY


def test_the_default_sqlite_store_gets_its_key_made_once_beside_it(tmp_path: Path, monkeypatch) -> None:
    """No database.url at all: the default store (sqlite:///regsync.db, in the working directory) keeps its key in
    regsync.db.hash_key like any other SQLite store, not a new random key in each process."""
    monkeypatch.delenv("REGSYNC_HASH_KEY")
    monkeypatch.delenv("REGSYNC_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    env = {"REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING"}
    res = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert res.exit_code in (0, 3), res.output
    key = (tmp_path / "regsync.db.hash_key").read_text().strip()
    assert len(key) >= 32 and key != PUBLIC_HASH_KEY
    assert load_settings(environ=env).hash_key == key == load_settings(environ=env).hash_key


def test_status_names_a_hash_key_that_is_not_the_stores(settings, engine) -> None:
    """``regsync status`` with another key than the store's: every flow refuses to run (exit 2), so status is
    unhealthy and says why first, not only "no daemon is running" (a fresh user's try)."""
    from regsync.service.status import run_status

    with engine.begin() as conn:
        f.volunteer(conn)
    sync(settings, engine)
    _, fine = run_status(settings)
    assert not any("hash key" in p for p in fine["problems"]), fine["problems"]
    code, status = run_status(replace(settings, hash_key=OTHER_KEY))
    assert code == 3 and not status["healthy"]
    assert "hash key is not this store's" in status["problems"][0] and "REGSYNC_HASH_KEY" in status["problems"][0]
