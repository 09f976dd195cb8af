"""``regsync run`` as a real process (issue 6): end to end against the sandbox, SIGTERM mid-batch, two replicas on
one PostgreSQL or MariaDB store, a missed nightly reconcile caught up after a restart. Tests wait for conditions
with generous timeouts and never assert how fast something ran."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, text

import factories
from factories import TEST_HASH_KEY
from invariants import check_invariants, registry_records
from myutil import drop_my_database, make_my_database
from pgutil import drop_pg_schema, make_pg_schema_engine
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine, utcnow
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.sandbox.server import SandboxServer, free_port
from regsync.service.daemon import cron_trigger, fire_times
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, RelaySettings, Settings


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class DaemonProcess:
    """``python -m regsync.console.cli run`` in a child process, its log (JSON lines) in a file; it runs in the log's
    folder, so that what it writes at relative paths (the nightly reports in ``reports/``) stays in the test's
    temporary folder, never in the checkout."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "regsync.console.cli", "run"], env=env, cwd=log_path.parent,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def worker(self) -> str:
        return f"{os.uname().nodename}:{self.proc.pid}"

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e.get("event") == name), None)

    def terminate(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def server_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, Engine]]:
    """A migrated store on a database server, where several replicas share one store: a private PostgreSQL schema
    or a private MariaDB database. (URL for child processes, engine)."""
    if request.param == "mariadb":
        request.getfixturevalue("my_url")
        url, name = make_my_database()
        engine = make_engine(url)
        upgrade(engine)
        yield url, engine
        engine.dispose()
        drop_my_database(name)
        return
    pg_url = request.getfixturevalue("pg_url")
    engine, schema = make_pg_schema_engine(pg_url)
    upgrade(engine)
    sep = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{sep}options=-csearch_path%3D{schema}%20-ctimezone%3DUTC", engine
    engine.dispose()
    drop_pg_schema(pg_url, schema)


def daemon_env(db_url: str, sandbox: SandboxServer | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, REGSYNC_DATABASE_URL=db_url, REGSYNC_LOG_FORMAT="json", REGSYNC_LOG_LEVEL="INFO",
               REGSYNC_METRICS_ADDRESS="off", REGSYNC_SHUTDOWN_TIMEOUT_S="20")
    if sandbox is not None:
        env.update(REGSYNC_REGISTRY_URL=sandbox.base_url, REGSYNC_CLIENT_ID=sandbox.client_id,
                   REGSYNC_CLIENT_SECRET=sandbox.client_secret)
    else:  # no registry is reached in this test
        env.update(REGSYNC_REGISTRY_URL="http://127.0.0.1:9/api/v1", REGSYNC_CLIENT_ID="none",
                   REGSYNC_CLIENT_SECRET="none-secret-0123456789")
    env.update(extra)
    return env


def settings_for(db_url: str, sandbox: SandboxServer) -> Settings:
    return Settings(hash_key=TEST_HASH_KEY,
                    database=DatabaseSettings(url=db_url), relay=RelaySettings(batch_size=100, claim_size=400,
                                                                                lease_s=3.0),
                    registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                              client_secret=sandbox.client_secret),
                    log=LogSettings(level="WARNING"))


#: The sandbox's delay per request in the tests that act on a daemon in the middle of its push. It sets a floor
#: under the push that no machine's speed removes: scale 0.0005 is ~190 calls of 100 operations, ~65 rounds of
#: ``relay.concurrency`` (3) calls, so at least ~13 s for one daemon and ~6.5 s for two. With 20–40 ms, a fast
#: machine pushed the whole backlog before the test's signal or kill (seen on a machine twice as fast as the one
#: the tests were written on).
PUSH_LATENCY_MS = 200


def waiting_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'deferred')")).scalar_one()


def sent_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")).scalar_one()


@pytest.mark.slow
def test_daemon_syncs_local_and_portal_changes_within_their_intervals(server_store, tmp_path: Path) -> None:
    db_url, engine = server_store
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, subprocess=True,
                       rate_limit_rps=1000, rate_limit_burst=2000) as sandbox:
        run_generate(settings_for(db_url, sandbox), scale=0.0002, seed=7, engine=engine)
        port = free_port()
        daemon = DaemonProcess(daemon_env(db_url, sandbox, REGSYNC_OUTBOUND_INTERVAL_S="1",
                                          REGSYNC_INBOUND_INTERVAL_S="2",
                                          REGSYNC_METRICS_ADDRESS=f"127.0.0.1:{port}"), tmp_path / "daemon.log")
        try:
            wait_for("the generated backlog to be pushed", lambda: sent_rows(engine) and not waiting_rows(engine))
            with engine.begin() as conn:
                local_vid, local_rid = conn.execute(text(
                    "SELECT l.local_id, l.registry_id FROM link l JOIN volunteer v ON v.id = l.local_id "
                    "WHERE l.entity = 'volunteer' AND NOT l.is_duplicate AND v.status = 'ACTIVE' "
                    "ORDER BY l.local_id LIMIT 1")).one()
                portal_vid, portal_rid = conn.execute(text(
                    "SELECT l.local_id, l.registry_id FROM link l JOIN volunteer v ON v.id = l.local_id "
                    "WHERE l.entity = 'volunteer' AND NOT l.is_duplicate AND v.status = 'ACTIVE' "
                    "AND l.local_id <> :v ORDER BY l.local_id DESC LIMIT 1"), {"v": local_vid}).one()
                conn.execute(text("UPDATE volunteer SET phone = '13712340001' WHERE id = :v"), {"v": local_vid})
                new_org = factories.org(conn, "CITY_CORPS")

            def registry_phone(rid: str) -> str | None:
                return next((r.get("phone") for r in registry_records(sandbox.admin_url, "volunteers")
                             if r["id"] == rid), None)

            wait_for("the local phone change in the registry", lambda: registry_phone(local_rid) == "13712340001",
                     timeout=60)
            def org_linked() -> bool:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT 1 FROM link WHERE entity = 'org' AND local_id = :o"),
                                        {"o": new_org}).first() is not None

            wait_for("the new local org linked", org_linked, timeout=60)

            httpx.post(f"{sandbox.admin_url}/portal/volunteers/{portal_rid}/contact",
                       json={"phone": "13812340002"}, timeout=10).raise_for_status()

            def local_phone() -> str | None:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT phone FROM volunteer WHERE id = :v"),
                                        {"v": portal_vid}).scalar_one()

            wait_for("the portal's phone edit in the local store", lambda: local_phone() == "13812340002",
                     timeout=60)

            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["alive"] is True
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert 'regsync_pushes_total{result="pushed"}' in metrics
            assert 'regsync_last_success_timestamp_seconds{flow="inbound"}' in metrics
            assert 'regsync_outbox_rows{state="pending"} 0.0' in metrics
            with engine.connect() as conn:
                kinds = {k for (k,) in conn.execute(text("SELECT DISTINCT kind FROM run"))}
            assert {"sync", "inbound"} <= kinds
            assert daemon.terminate(timeout=60) == 0
            stopped = daemon.event("daemon stopped")
            assert stopped is not None and stopped["left_jobs"] == [], stopped
        finally:
            daemon.stop()


@pytest.mark.slow
def test_sigterm_mid_batch_exits_0_and_loses_and_doubles_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'local.db'}"
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, subprocess=True,
                       rate_limit_rps=1000, rate_limit_burst=2000, faults={"latency_ms": PUSH_LATENCY_MS}) as sandbox:
        settings = settings_for(db_url, sandbox)
        engine = make_engine(db_url)
        run_generate(settings, scale=0.0005, seed=11, engine=engine)
        total = waiting_rows(engine)
        env = daemon_env(db_url, sandbox, REGSYNC_BATCH_SIZE="100", REGSYNC_CLAIM_SIZE="400",
                         REGSYNC_OUTBOUND_INTERVAL_S="1", REGSYNC_INBOUND_INTERVAL_S="3600")
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        try:
            wait_for("the relay to be under way", lambda: sent_rows(engine) > 0)
            # a second daemon on the same SQLite store is refused
            second = subprocess.run([sys.executable, "-m", "regsync.console.cli", "run"], env=env, capture_output=True,
                                    text=True, timeout=60, cwd=tmp_path)
            assert second.returncode == 1
            assert "only one daemon" in second.stderr and "PostgreSQL" in second.stderr
            assert 0 < sent_rows(engine) < total, "the relay finished before the signal; give it more data"
            assert daemon.terminate(timeout=20 + 40) == 0  # the bound (REGSYNC_SHUTDOWN_TIMEOUT_S) and a margin
        finally:
            daemon.stop()
        stopped = daemon.event("daemon stopped")
        assert stopped is not None and stopped["left_jobs"] == [] and stopped["waiting"] > 0, stopped
        assert stopped["interrupted_runs"] == 1 and stopped["pushed"] > 0
        with engine.connect() as conn:
            held = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL")).scalar_one()
        assert held == 0, "claims left behind by the stopped daemon"
        code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=180)
        assert code == 0, summary
        check_invariants(engine, sandbox.admin_url, sandbox.client_id)
        engine.dispose()


@pytest.mark.slow
def test_two_daemons_share_one_store_and_one_carries_on_when_the_other_is_killed(server_store, tmp_path: Path
                                                                                  ) -> None:
    db_url, engine = server_store
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, subprocess=True,
                       rate_limit_rps=1000, rate_limit_burst=2000, faults={"latency_ms": PUSH_LATENCY_MS}) as sandbox:
        run_generate(settings_for(db_url, sandbox), scale=0.0005, seed=13, engine=engine)
        env = daemon_env(db_url, sandbox, REGSYNC_BATCH_SIZE="100", REGSYNC_CLAIM_SIZE="200", REGSYNC_LEASE_S="3",
                         REGSYNC_OUTBOUND_INTERVAL_S="1", REGSYNC_INBOUND_INTERVAL_S="1")
        one = DaemonProcess(env, tmp_path / "one.log")
        two = DaemonProcess(env, tmp_path / "two.log")
        try:
            def slot_owners() -> set[str]:
                with engine.connect() as conn:
                    return {w for (w,) in conn.execute(text("SELECT DISTINCT claimed_by FROM run_slot"))}

            wait_for("both replicas to have run inbound slots", lambda: slot_owners() >= {one.worker, two.worker})
            assert waiting_rows(engine) > 0, "the backlog was gone before a replica could be killed"
            one.kill()
            killed_at = utcnow()
            wait_for("the backlog to be pushed by the survivor", lambda: not waiting_rows(engine), timeout=180)

            def survivor_slots_after_kill() -> int:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT COUNT(*) FROM run_slot WHERE claimed_by = :w AND "
                                             "claimed_at > :t"), {"w": two.worker, "t": killed_at}).scalar_one()

            wait_for("the survivor to go on with the inbound slots", lambda: survivor_slots_after_kill() >= 3)
            assert two.terminate(timeout=60) == 0
        finally:
            one.stop()
            two.stop()
        with engine.connect() as conn:
            slots = conn.execute(text("SELECT job, scheduled_at, claimed_by, run_id FROM run_slot")).all()
            runs = conn.execute(text("SELECT id, started_at, finished_at FROM run WHERE kind = 'inbound' "
                                     "ORDER BY started_at")).all()
        assert len({(job, at) for job, at, _, _ in slots}) == len(slots)
        # a slot makes at most one run (the killed replica's last pull may have left its run without its slot's
        # run_id), and no two pulls ever overlapped (advisory lock)
        inbound_slots = [r for job, _, _, r in slots if job == "inbound"]
        linked = [r for r in inbound_slots if r is not None]
        assert len(linked) == len(set(linked)) and set(linked) <= {r.id for r in runs}
        assert len(runs) <= len(inbound_slots)
        for before, after in zip(runs, runs[1:], strict=False):
            assert before.finished_at is None or before.finished_at <= after.started_at, (before, after)
        check_invariants(engine, sandbox.admin_url, sandbox.client_id)


@pytest.mark.slow
def test_a_missed_nightly_reconcile_is_caught_up_once_after_a_restart(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'local.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    cron = "*/3 * * * * *"  # the nightly reconcile, scaled: every 3 seconds
    env = daemon_env(db_url, None, REGSYNC_RECONCILE_CRON=cron, REGSYNC_CATCHUP_WINDOW_S="60",
                     REGSYNC_OUTBOUND_INTERVAL_S="3600", REGSYNC_INBOUND_INTERVAL_S="3600")

    def reconcile_slots() -> list[dt.datetime]:
        with engine.connect() as conn:
            return [dt.datetime.fromisoformat(str(at)) for (at,) in conn.execute(text(
                "SELECT scheduled_at FROM run_slot WHERE job = 'reconcile' ORDER BY scheduled_at"))]

    first = DaemonProcess(env, tmp_path / "first.log")
    try:
        wait_for("a scheduled reconcile slot", reconcile_slots, timeout=60)
        assert first.terminate(timeout=60) == 0
    finally:
        first.stop()
    last_before = reconcile_slots()[-1]
    wait_for("two reconcile times to pass with no daemon", lambda: len(fire_times(
        cron_trigger(cron, "Asia/Shanghai"), last_before + dt.timedelta(microseconds=1), utcnow())) >= 2,
        timeout=30)
    second = DaemonProcess(env, tmp_path / "second.log")
    try:
        caught = wait_for("the catch-up", lambda: second.event("missed reconcile run caught up once"), timeout=60)
        started = wait_for("the second daemon to start", lambda: second.event("daemon started"), timeout=60)
        ready = dt.datetime.fromisoformat(started["timestamp"].replace("Z", "+00:00")).replace(tzinfo=None)
        wait_for("the catch-up slot", lambda: [s for s in reconcile_slots() if last_before < s <= ready])
        assert second.terminate(timeout=60) == 0
    finally:
        second.stop()
    assert caught["missed"] >= 2
    missed_slots = [s for s in reconcile_slots() if last_before < s <= ready]
    assert len(missed_slots) == 1, missed_slots  # caught up once, not once per missed time
    assert missed_slots[0].isoformat() == caught["scheduled_at"].replace("+00:00", "")
    with engine.connect() as conn:
        states = {dt.datetime.fromisoformat(str(at)): st for at, st in conn.execute(text(
            "SELECT scheduled_at, state FROM run_slot WHERE job = 'reconcile'"))}
    assert states[missed_slots[0]] in ("done", "failed")  # it ran (failed while regsync.flows.reconcile is not in this build)
    if states[missed_slots[0]] == "done":  # its reports went to the daemon's reports_dir, "reports" under its cwd
        assert any((tmp_path / "reports").glob("reconcile-*.html"))
    engine.dispose()


def _one_shot_cron(at: dt.datetime) -> str:
    """A 6-field crontab line (seconds first) that fires once a day, at ``at`` (naive UTC) in Asia/Shanghai."""
    local = at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local.second} {local.minute} {local.hour} * * *"


def _status(db_url: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ, REGSYNC_DATABASE_URL=db_url, REGSYNC_LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-m", "regsync.console.cli", "status", "--json"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_a_daemon_killed_with_sigkill_leaves_its_run_abandoned_and_its_slot_runs_again(db_url: str,
                                                                                      tmp_path: Path) -> None:
    """kill -9 in the middle of the nightly reconcile left the run and its slot ``running`` for ever, ``status``
    said healthy with no daemon, and the night's reconcile never ran again (issue 12, items 10, 11 and 12)."""
    engine = make_engine(db_url)
    upgrade(engine)
    # every registry call takes a second: the reconcile is still going on when the daemon is killed
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, subprocess=True,
                       rate_limit_rps=1000, rate_limit_burst=2000, faults={"latency_ms": 1000}) as sandbox:
        nightly = utcnow() + dt.timedelta(seconds=25)
        env = daemon_env(db_url, sandbox, REGSYNC_RECONCILE_CRON=_one_shot_cron(nightly),
                         REGSYNC_OUTBOUND_INTERVAL_S="3600", REGSYNC_INBOUND_INTERVAL_S="3600")

        def runs() -> dict[int, tuple[str, str, str | None]]:
            with engine.connect() as conn:
                return {i: (k, s, w) for i, k, s, w in conn.execute(text(
                    "SELECT id, kind, status, worker FROM run ORDER BY id"))}

        def slots() -> list[tuple[str, str]]:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(
                    "SELECT claimed_by, state FROM run_slot WHERE job = 'reconcile' ORDER BY id"))]

        first = DaemonProcess(env, tmp_path / "first.log")
        try:
            wait_for("the first daemon to start", lambda: first.event("daemon started"), timeout=60)
            code, data = _status(db_url, tmp_path)
            assert data["daemon"]["alive"] and [w["worker"] for w in data["daemon"]["workers"]] == [first.worker]
            assert set(data["next_runs"]) == {"outbound", "inbound", "reconcile", "prune"}
            reconcile = wait_for("the nightly reconcile under way", lambda: [
                i for i, (k, s, _) in runs().items() if k == "reconcile" and s == "running"], timeout=90)[0]
            assert slots() == [(first.worker, "running")]
            first.kill()
        finally:
            first.stop()
        # status sees at once that the process is gone (same node: its PID no longer exists)
        code, data = _status(db_url, tmp_path)
        assert code == 3 and data["daemon"]["alive"] is False and data["next_runs"] == {}
        assert data["problems"][0].startswith("no daemon is running")
        assert [r["run_id"] for r in data["abandoned"]] == [reconcile] and data["running"] == []
        assert runs()[reconcile][1] == "abandoned" and slots() == [(first.worker, "abandoned")]
        # the next daemon runs the night's reconcile again, in the same slot, once
        second = DaemonProcess(env, tmp_path / "second.log")
        try:
            again = wait_for("the reconcile run again", lambda: second.event(
                "reconcile run left unfinished by a process that is gone: run again"), timeout=90)
            wait_for("the slot finished by the second daemon", lambda: slots()[0][0] == second.worker and slots()[0][1]
                     in ("done", "failed"), timeout=120)
            line = wait_for("the run's line in the log", lambda: next(
                (e for e in second.events() if e.get("event") == "run finished" and e.get("flow") == "reconcile"),
                None), timeout=30)
            assert second.terminate(timeout=60) == 0
        finally:
            second.stop()
    assert again["previous"] == first.worker
    assert len(slots()) == 1
    after = runs()
    assert after[reconcile][1] == "abandoned"
    rerun = [i for i, (k, _, w) in after.items() if k == "reconcile" and i != reconcile]
    assert len(rerun) == 1 and after[rerun[0]][2] == second.worker and line["run_id"] == rerun[0]
    assert {"pushed", "failed", "pulled", "seconds", "discrepancies"} <= set(line) and line["level"] == "info"
    code, data = _status(db_url, tmp_path)
    assert data["daemon"]["alive"] is False and data["daemon"]["last_seen_at"] is not None
    engine.dispose()
