"""The daemon's parts in process, on every engine: schedule and slots, catch-up, locks, jobs, retention, status,
pause/resume, metrics, --help epilogs (issue 6). The real-process tests are in test_daemon_process.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import factories
from factories import TEST_HASH_KEY
from regsync.console.cli import app
from regsync.db.flowstate import is_paused, record_flow_result
from regsync.db.liveness import beat
from regsync.db.locks import SingletonLock, claim_slot, mysql_lock_name
from regsync.db.models import (
    Audit,
    Conflict,
    Discrepancy,
    FlowState,
    Heartbeat,
    Link,
    Outbox,
    Run,
    RunSlot,
    Volunteer,
)
from regsync.db.retention import prune
from regsync.db.session import make_engine, utcnow
from regsync.sandbox.server import SandboxServer
from regsync.service.daemon import Daemon, build_triggers, cron_trigger, fire_times, latest_fire_time, next_runs
from regsync.service.metrics import Metrics
from regsync.service.status import collect_status, set_paused
from regsync.settings import (
    SPECS,
    DaemonSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    RegistrySettings,
    RetentionSettings,
    Settings,
)


def _settings(url: str, **daemon: object) -> Settings:
    return Settings(hash_key=TEST_HASH_KEY,
                    database=DatabaseSettings(url=url), daemon=DaemonSettings(metrics_address="", **daemon),
                    log=LogSettings(level="WARNING"))


def _daemon_alive(engine: Engine, worker: str = "replica-a:1", **kw: object) -> None:
    """A daemon's heartbeat in the store, as a live replica on another host writes it: its node is another's, so
    that whether a process of that PID happens to exist on this machine says nothing of it (the test failed once
    PID 88 was gone here)."""
    beat(engine, worker=worker, role="daemon", **kw)
    with engine.begin() as conn:
        conn.execute(update(Heartbeat).where(Heartbeat.worker == worker).values(node="another-host/pid:[1]"))


# ------------------------------------------------------------------------------------------------ schedule
def test_schedule_is_in_asia_shanghai_and_slots_are_the_latest_fire_time() -> None:
    triggers = build_triggers(DaemonSettings())
    # 2026-11-29 20:00 UTC is 04:00 on the 30th in Shanghai: the last 02:00 +08:00 was 18:00 UTC on the 29th
    now = dt.datetime(2026, 11, 29, 20, 0)
    assert latest_fire_time(triggers["reconcile"], now) == dt.datetime(2026, 11, 29, 18, 0)
    assert latest_fire_time(triggers["outbound"], dt.datetime(2026, 11, 29, 20, 0, 3, 500)) == \
        dt.datetime(2026, 11, 29, 20, 0, 2)
    assert latest_fire_time(triggers["inbound"], dt.datetime(2026, 11, 29, 20, 0, 59)) == dt.datetime(2026, 11, 29, 20)
    nxt = next_runs(Settings(), now)
    assert nxt["reconcile"] == dt.datetime(2026, 11, 30, 18, 0)
    assert nxt["prune"] == dt.datetime(2026, 11, 29, 19, 30) + dt.timedelta(days=1)
    six = cron_trigger("*/3 * * * * *", "Asia/Shanghai")
    assert len(fire_times(six, now, now + dt.timedelta(seconds=9))) == 4
    with pytest.raises(ValueError):
        cron_trigger("* * *", "UTC")


def test_a_slot_is_claimed_once(engine: Engine) -> None:
    at = dt.datetime(2026, 11, 29, 18, 0)
    first = claim_slot(engine, "reconcile", at, "host-a:1")
    assert first is not None
    assert claim_slot(engine, "reconcile", at, "host-b:2") is None
    assert claim_slot(engine, "inbound", at, "host-b:2") is not None
    assert claim_slot(engine, "reconcile", at + dt.timedelta(days=1), "host-b:2") is not None


def test_a_missed_cron_run_is_caught_up_once_and_a_new_installation_catches_up_nothing(engine: Engine,
                                                                                      db_url: str) -> None:
    daemon = Daemon(_settings(db_url), engine)
    now = dt.datetime(2026, 11, 29, 20, 0)  # 04:00 +08:00; today's 02:00 run (18:00 UTC) was missed
    assert daemon.catch_up(now) == {}  # no slot ever: a new installation
    claim_slot(engine, "reconcile", dt.datetime(2026, 11, 26, 18, 0), "old")  # last ran 3 nights ago
    assert daemon.catch_up(now) == {"reconcile": dt.datetime(2026, 11, 29, 18, 0)}
    claim_slot(engine, "reconcile", dt.datetime(2026, 11, 29, 18, 0), "other-replica")
    assert daemon.catch_up(now) == {}  # caught up already (or by another daemon)
    late = now + dt.timedelta(days=1, hours=12)  # beyond the 24 h window: the next night runs as scheduled
    claim_slot(engine, "prune", dt.datetime(2026, 11, 20, 19, 30), "old")
    assert "reconcile" not in Daemon(_settings(db_url, catchup_window_s=3600), engine).catch_up(late)


@pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
def test_singleton_lock_is_held_by_one_replica_and_freed_when_its_connection_dies(db_url: str) -> None:
    """A job's lock (PostgreSQL's advisory lock, MySQL/MariaDB's GET_LOCK) is held by one replica at a time, per
    job, and the server frees it when the holder's connection dies; released, the pooled connection holds nothing."""
    one, two = make_engine(db_url), make_engine(db_url)
    try:
        with SingletonLock(one, "inbound") as held:
            assert held
            with SingletonLock(two, "inbound") as other:
                assert not other
            with SingletonLock(two, "reconcile") as other_job:
                assert other_job
        with SingletonLock(two, "inbound") as after:
            assert after
        # a replica that dies mid-job: its session ends, the server drops the lock
        lock = SingletonLock(one, "inbound")
        assert lock.__enter__()
        lock._conn.invalidate()  # the connection is gone, as when the process is killed
        lock._conn = None
        with SingletonLock(two, "inbound") as taken_over:
            assert taken_over
        if one.dialect.name == "mysql":  # connection-scoped: a connection back in the pool holds no lock
            name = mysql_lock_name("inbound", make_url(db_url).database)
            assert len(name) <= 64
            with one.connect() as conn:
                assert conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar() is None
                assert conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
    finally:
        one.dispose()
        two.dispose()


# ------------------------------------------------------------------------------------------------ jobs
def test_reconcile_job_without_the_reconcile_module_records_a_failed_slot(engine: Engine, db_url: str,
                                                                          monkeypatch) -> None:
    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise ImportError("No module named 'regsync.flows.reconcile'")

    monkeypatch.setattr("regsync.service.jobs.reconcile_pass", missing)  # a build without it: ImportError
    daemon = Daemon(_settings(db_url), engine)
    at = dt.datetime(2026, 11, 29, 18, 0)
    assert daemon.job_reconcile(at) == "failed"
    with engine.connect() as conn:
        slot = conn.execute(select(RunSlot.state, RunSlot.claimed_by).where(RunSlot.job == "reconcile")).one()
        flow = conn.execute(select(FlowState).where(FlowState.flow == "reconcile")).one()
    assert slot.state == "failed" and slot.claimed_by == daemon.worker
    assert flow.failing_since is not None and "regsync.flows.reconcile" in flow.last_error
    assert daemon.job_reconcile(at) == "taken"  # the same slot never runs twice


def test_reconcile_job_runs_the_reconcile_and_writes_its_reports(engine: Engine, db_url: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """The nightly job with the real reconcile against the sandbox: a difference made on the registry's side is
    found and repaired, and the run's HTML and CSV reports land in reports_dir."""
    from regsync.flows.sync import run_sync

    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sb.db'}", admin=True) as sandbox:
        settings = Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url),
                            daemon=DaemonSettings(metrics_address="", reconcile_repair=True,
                                                  reports_dir=str(tmp_path / "reports")),
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret),
                            log=LogSettings(level="WARNING"))
        with engine.begin() as conn:
            tree = factories.org_tree(conn)
            vol = factories.volunteer(conn, phone="13800001111")
            act = factories.activity(conn, tree["team"])
            factories.service_record(conn, vol, act, tree["team"])
        assert run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)[0] == 0
        with engine.connect() as conn:
            rid = conn.execute(select(Link.registry_id).where(Link.entity == "volunteer")).scalar_one()
        # a change the feed never told (made in the registry's store directly): only a reconcile sees it
        httpx.patch(f"{sandbox.admin_url}/records/volunteers/{rid}", json={"phone": "13955556666"}).raise_for_status()
        daemon = Daemon(settings, engine)
        request.addfinalizer(daemon.close_clients)
        assert daemon.job_reconcile(dt.datetime(2026, 11, 29, 18, 0)) == "run"
        with engine.connect() as conn:
            slot = conn.execute(select(RunSlot.state, RunSlot.run_id)).one()
            run = conn.execute(select(Run.kind, Run.status, Run.summary).where(Run.id == slot.run_id)).one()
            assert conn.execute(select(FlowState.last_success_at).where(FlowState.flow == "reconcile")).scalar_one()
            phone = conn.execute(select(Volunteer.phone).where(Volunteer.id == vol)).scalar_one()
        assert slot.state == "done" and run.kind == "reconcile" and run.status in ("success", "partial")
        summary = json.loads(run.summary)
        assert sum(summary["discrepancies"].values()) >= 1 and summary["hours"]["total"]["volunteers"] == 1
        assert phone == "13955556666"  # contact: the registry's, pulled by the repair
    written = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert len(written) == 4, written  # the report as CSV and HTML, the worklists: the province's and by city
    assert written[0].startswith(f"reconcile-{slot.run_id}-") and written[0].endswith(".csv") \
        and written[1].endswith(".html")
    assert written[2].startswith(f"worklist-{slot.run_id}-") and written[2].endswith(".xlsx")
    assert written[3].startswith(f"worklists-{slot.run_id}-") and (tmp_path / "reports" / written[3]).is_dir()
    page = (tmp_path / "reports" / written[1]).read_text(encoding="utf-8")
    assert "<html" in page and "13955556666" not in page and "139****6666" in page


def test_paused_outbound_still_captures_changes_and_is_skipped_until_resumed(engine: Engine, db_url: str) -> None:
    set_paused(engine, ["outbound"], True, reason="registry maintenance tonight", actor="ops-li")
    with engine.begin() as conn:
        factories.org_tree(conn)
    daemon = Daemon(_settings(db_url), engine)
    assert daemon.job_outbound() == "paused"
    assert is_paused(engine, "outbound") and not is_paused(engine, "inbound")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outbox).where(Outbox.state == "pending")).scalar_one()
        audit = conn.execute(select(Audit.action, Audit.actor, Audit.reason, Audit.target)).all()
    assert audit == [("pause", "ops-li", "registry maintenance tonight", "outbound")]
    status = collect_status(engine, _settings(db_url))
    assert status["paused"] == ["outbound"] and status["flows"]["outbound"]["paused_by"] == "ops-li"
    result = set_paused(engine, ["outbound", "inbound"], False, reason="done", actor="ops-li")
    assert result["changed"] == ["outbound"]
    assert not is_paused(engine, "outbound")


def test_a_sync_that_only_pulled_is_no_push_in_the_status(engine: Engine, db_url: str) -> None:
    """A ``sync`` run with the outbound flow paused (or ``--inbound``) pushed nothing: the status must not show it
    as the last push (it did, from the run's end, so a paused or broken relay looked fresh)."""
    from regsync.db.runs import finish_run, start_run

    set_paused(engine, ["outbound"], True, reason="registry maintenance tonight", actor="ops-li")
    finish_run(engine, start_run(engine, "sync"), "success", {"paused": ["outbound"]})
    record_flow_result(engine, "inbound", True)
    reconcile_run = start_run(engine, "reconcile")
    finish_run(engine, reconcile_run, "success", {})
    status = collect_status(engine, _settings(db_url))
    assert status["last_push"] is None and status["flows"]["outbound"]["last_success_at"] is None
    assert status["last_pull"] is not None
    assert status["last_reconcile"] is not None  # a reconcile run by hand records no flow result of its own


def test_a_relay_pass_that_finds_its_work_taken_by_another_replica_leaves_no_run(engine: Engine, db_url: str,
                                                                                 monkeypatch) -> None:
    """Two replicas see work at once and one claims it all: the other's pass does nothing, and the daemon leaves
    no empty run behind (it did: "runs are recorded only when a job did work"). A pass by hand keeps its run."""
    from regsync.flows.sync import run_sync

    with engine.begin() as conn:
        factories.org_tree(conn)
        conn.execute(text("UPDATE outbox SET claimed_by = 'other-replica:1', claimed_until = :t"),
                     {"t": utcnow() + dt.timedelta(minutes=5)})
    # the moment between this replica's look at the outbox and its claim, when the other replica took the rows
    monkeypatch.setattr("regsync.service.jobs.outbound_work_available", lambda engine: True)
    with SandboxServer() as sandbox:
        settings = dataclasses.replace(_settings(db_url), registry=RegistrySettings(
            url=sandbox.base_url, client_id=sandbox.client_id, client_secret=sandbox.client_secret))
        daemon = Daemon(settings, engine)
        try:
            assert daemon.job_outbound() == "idle"
        finally:
            daemon.close_clients()
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Run)).scalar_one() == 0
            assert conn.execute(select(FlowState.last_success_at).where(FlowState.flow == "outbound")).scalar_one()
        code, by_hand = run_sync(settings, engine=engine, inbound=False)
        assert code == 0 and by_hand["run_id"] is not None


def test_an_idle_pull_leaves_no_run_and_counts_only_in_metrics(engine: Engine, db_url: str, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sb.db'}") as sandbox:
        settings = Settings(hash_key=TEST_HASH_KEY,
                            database=DatabaseSettings(url=db_url), daemon=DaemonSettings(metrics_address=""),
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret))
        daemon = Daemon(settings, engine)
        request.addfinalizer(daemon.close_clients)
        assert daemon.ensure_first_cursor()
        assert daemon.job_inbound(dt.datetime(2026, 11, 29, 20, 0)) == "idle"
        daemon.metrics.tick("inbound", "idle")
        _daemon_alive(engine)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Run)).scalar_one() == 0
            assert conn.execute(select(RunSlot.state)).scalar_one() == "idle"
        text_ = daemon.metrics.render().decode()
        assert 'regsync_job_ticks_total{job="inbound",outcome="idle"} 1.0' in text_
        assert 'regsync_pulls_total{result="idle"} 1.0' in text_
        assert "regsync_healthy 1.0" in text_ and 'regsync_outbox_rows{state="pending"}' in text_


def test_refused_credentials_for_longer_than_the_limit_make_status_exit_3(engine: Engine, db_url: str,
                                                                       tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sb.db'}", admin=True) as sandbox:
        settings = Settings(hash_key=TEST_HASH_KEY,
                            database=DatabaseSettings(url=db_url), daemon=DaemonSettings(metrics_address=""),
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret, max_retries=1),
                            health=HealthSettings(max_failing_s=60))
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": False},
                   timeout=10).raise_for_status()
        daemon = Daemon(settings, engine)
        request.addfinalizer(daemon.close_clients)
        _daemon_alive(engine)
        assert daemon.job_inbound(dt.datetime(2026, 11, 29, 20, 0)) == "failed"
        status = collect_status(engine, settings)
        assert status["healthy"], status["problems"]  # failing, but not for longer than the limit yet
        assert status["flows"]["inbound"]["failing_since"] is not None
        assert "invalid_client" in (status["flows"]["inbound"]["last_error"] or "")
        later = utcnow() + dt.timedelta(seconds=61)
        status = collect_status(engine, settings, now=later)
        assert not status["healthy"]
        assert any(p.startswith("inbound has been failing") for p in status["problems"])
        time.sleep(1.1)  # the command, with a limit of 0 s: unhealthy once a whole second has passed
        shown = CliRunner().invoke(app, ["status", "--json"], env={
            "REGSYNC_DATABASE_URL": db_url, "REGSYNC_HEALTH_MAX_FAILING_S": "0", "REGSYNC_LOG_LEVEL": "WARNING"})
        assert shown.exit_code == 3, shown.output
        assert "invalid_client" in json.loads(shown.stdout)["problems"][0]
        # the credentials work again: the next success clears the failure (the failed pass's backoff over)
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": True},
                   timeout=10).raise_for_status()
        assert daemon.job_inbound(dt.datetime(2026, 11, 29, 20, 1)) == "backoff"
        assert daemon.job_inbound(dt.datetime(2026, 11, 29, 20, 2)) in ("run", "idle")
        assert collect_status(engine, settings, now=later)["flows"]["inbound"]["failing_since"] is None


def test_status_command_exits_3_when_a_flow_is_stale_and_0_when_healthy(engine: Engine, db_url: str) -> None:
    runner = CliRunner()
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    record_flow_result(engine, "inbound", True)
    _daemon_alive(engine, next_runs=next_runs(Settings()))
    ok = runner.invoke(app, ["status", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["healthy"] is True and data["last_pull"] is not None and data["backlog"]["pending"] == 0
    assert set(data["next_runs"]) == {"outbound", "inbound", "reconcile", "prune"}
    record_flow_result(engine, "inbound", True, now=utcnow() - dt.timedelta(hours=1))
    with engine.begin() as conn:  # the last success an hour ago: stale beyond 900 s
        conn.execute(text("UPDATE run SET finished_at = NULL"))
    stale = runner.invoke(app, ["status", "--json"], env=env)
    assert stale.exit_code == 3, stale.output
    data = json.loads(stale.stdout)
    assert data["healthy"] is False and "inbound is stale" in data["problems"][0]
    shown = runner.invoke(app, ["status"], env=env)
    assert shown.exit_code == 3 and "UNHEALTHY" in shown.stdout
    # an oldest waiting change older than the limit: outbound is stale too
    with engine.begin() as conn:
        factories.org_tree(conn)
        conn.execute(text("UPDATE outbox SET created_at = :t"), {"t": utcnow() - dt.timedelta(hours=2)})
    data = json.loads(runner.invoke(app, ["status", "--json"], env=env).stdout)
    assert any(p.startswith("outbound is stale") for p in data["problems"])


def test_pause_and_resume_commands_need_a_reason_and_are_audited(engine: Engine, db_url: str) -> None:
    runner = CliRunner()
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_LOG_LEVEL": "WARNING"}
    assert runner.invoke(app, ["pause", "--inbound", "--reason", " "], env=env).exit_code == 2
    done = runner.invoke(app, ["pause", "--inbound", "--reason", "feed replay", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["changed"] == ["inbound"]
    assert is_paused(engine, "inbound") and not is_paused(engine, "outbound")
    back = runner.invoke(app, ["resume", "--reason", "replay done"], env=env)
    assert back.exit_code == 0 and "resumed: inbound" in back.stdout
    with engine.connect() as conn:
        assert [a for (a,) in conn.execute(select(Audit.action).order_by(Audit.id))] == ["pause", "resume"]


# ------------------------------------------------------------------------------------------------ retention
def test_prune_deletes_what_retention_no_longer_keeps(engine: Engine) -> None:
    now = utcnow()
    old, recent = now - dt.timedelta(days=400), now - dt.timedelta(days=1)
    with engine.begin() as conn:
        for at in (old, recent):
            conn.execute(Run.__table__.insert().values(kind="sync", started_at=at, finished_at=at, status="success",
                                                       summary="{}"))
            conn.execute(Audit.__table__.insert().values(at=at, actor="a", action="pause", reason="r", details="{}"))
            conn.execute(Discrepancy.__table__.insert().values(run_id=1, entity="volunteer", kind="orphan",
                                                               fields="[]", details="{}", detected_at=at))
            conn.execute(Outbox.__table__.insert().values(entity="org", local_id=1, op="insert", priority=1,
                                                          state="sent", created_at=at, available_at=at, done_at=at))
            for state in ("resolved", "open"):
                conn.execute(Conflict.__table__.insert().values(
                    entity="volunteer", local_id=1, registry_id="V1", field="phone", field_group="contact",
                    registry_version=1, state=state, detected_at=at, updated_at=at, resolved_at=at))
        conn.execute(Outbox.__table__.insert().values(entity="org", local_id=2, op="insert", priority=1,
                                                      state="failed", created_at=old, available_at=old))
        # runs left running by processes that are gone: one with no heartbeat (claimed long ago), one from
        # before the store had heartbeats (no worker) a day ago; one of a live process stays running
        conn.execute(Run.__table__.insert().values(kind="inbound", started_at=recent - dt.timedelta(hours=1),
                                                   status="running", summary="{}", worker="dead-host:7"))
        conn.execute(Run.__table__.insert().values(kind="sync", started_at=recent - dt.timedelta(hours=1),
                                                   status="running", summary="{}", worker=None))
        conn.execute(Run.__table__.insert().values(kind="sync", started_at=recent - dt.timedelta(hours=1),
                                                   status="running", summary="{}", worker="replica-a:1"))
    _daemon_alive(engine, "replica-a:1", now=now)
    with engine.begin() as conn:  # a slot a replica claimed 25 h ago and never finished
        conn.execute(RunSlot.__table__.insert().values(job="inbound", scheduled_at=recent, claimed_by="dead:1",
                                                       claimed_at=recent - dt.timedelta(hours=1), state="running"))
    counts = prune(engine, RetentionSettings(), now=now)
    assert counts == {"abandoned": 3, "run": 1, "run_slot": 0, "discrepancy": 1, "conflict": 1, "audit": 1,
                      "outbox": 1}
    with engine.connect() as conn:
        assert conn.execute(select(Run.status).where(Run.kind == "inbound")).scalar_one() == "abandoned"
        assert dict(conn.execute(select(Run.worker, Run.status).where(Run.kind == "sync",
                                                                      Run.finished_at.is_(None)
                                                                      | (Run.status != "success"))).all()) == {
            None: "abandoned", "replica-a:1": "running"}
        assert conn.execute(select(RunSlot.state)).scalar_one() == "abandoned"
    with engine.connect() as conn:
        open_ = select(func.count()).select_from(Conflict).where(Conflict.state == "open")
        assert conn.execute(open_).scalar_one() == 2
        # the recent sent row and the failed one
        assert conn.execute(select(func.count()).select_from(Outbox)).scalar_one() == 2
    assert prune(engine, RetentionSettings(runs_days=0, audit_days=0, discrepancies_days=0, conflicts_days=0,
                                           sent_outbox_days=0), now=now + dt.timedelta(days=999)) == \
        {"abandoned": 1, "run": 0, "run_slot": 0, "discrepancy": 0, "conflict": 0, "audit": 0, "outbox": 0}
    # 999 days on, the replica's lease has long run out: its run is abandoned too


# ------------------------------------------------------------------------------------------------ help
def test_every_command_names_the_settings_it_reads_in_its_help() -> None:
    import typer.main

    root = typer.main.get_command(app)
    seen = 0

    def walk(cmd: object, path: list[str]) -> None:
        nonlocal seen
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        if path[0] == "sandbox":  # the sandbox reads only its options, and its help ends by saying so
            assert "Settings read: none" in (cmd.epilog or ""), path
            seen += 1
            return
        out = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"}).output
        assert "Settings read" in out, path
        if path[0] != "demo":
            assert "REGSYNC_CONFIG" in out, path
        if path[0] != "demo" and path != ["alarms", "test"]:  # the alarms' test message needs no store
            assert "REGSYNC_DATABASE_URL" in out, path
        seen += 1

    walk(root, [])
    assert seen >= 11
    run_help = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"}).output
    for spec in SPECS:
        if spec.section in ("daemon", "health", "retention", "registry"):
            assert spec.env in run_help, spec.env


def test_metrics_render_without_a_store_says_so(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'none.db'}")
    try:
        assert "regsync_store_up 0.0" in Metrics(engine, Settings()).render().decode()
    finally:
        engine.dispose()



# ------------------------------------------------------------------------------------------------ shutdown
def test_shutdown_bound_releases_the_claims_of_a_job_still_running(engine: Engine, db_url: str) -> None:
    daemon = Daemon(_settings(db_url), engine)
    with engine.begin() as conn:
        factories.org_tree(conn)
        conn.execute(text("UPDATE outbox SET claimed_by = :me, claimed_until = :t"),
                     {"me": daemon.worker, "t": utcnow() + dt.timedelta(minutes=5)})
        conn.execute(text("UPDATE outbox SET claimed_by = :other WHERE id = (SELECT MIN(id) FROM outbox)"),
                     {"other": daemon.worker + "0"})  # another process whose name starts like ours
    daemon._running["outbound"] += 1  # a pass that does not end within the bound
    line = daemon.shutdown(timeout_s=0.2)
    assert line["left_jobs"] == ["outbound"] and line["waiting"] > 0
    with engine.connect() as conn:
        held = dict(conn.execute(text("SELECT claimed_by, COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL "
                                      "GROUP BY claimed_by")).all())
    assert held == {daemon.worker + "0": 1}


def test_first_signal_sets_the_stop_flag_and_the_handlers_come_back() -> None:
    import os
    import signal
    import threading

    from regsync.service.signals import stop_signals

    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()
    with stop_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        second = signal.getsignal(signal.SIGTERM)
        assert second not in (before, signal.SIG_DFL) and second.__name__ == "hard"  # a second signal: at once
    assert signal.getsignal(signal.SIGTERM) is before


def test_healthz_and_metrics_endpoints(engine: Engine, db_url: str) -> None:
    from regsync.sandbox.server import free_port
    from regsync.service.metrics import serve_metrics
    from regsync.settings import ConfigError

    settings = _settings(db_url)
    alive = {"yes": True}
    port = free_port()
    server = serve_metrics(Metrics(engine, settings), f"127.0.0.1:{port}", alive=lambda: alive["yes"])
    try:
        base = f"http://127.0.0.1:{port}"
        no_daemon = httpx.get(f"{base}/healthz?strict=1", timeout=10)
        assert no_daemon.status_code == 503 and no_daemon.json()["problems"][0].startswith("no daemon is running")
        _daemon_alive(engine)
        ok = httpx.get(f"{base}/healthz", timeout=10)
        assert ok.status_code == 200 and ok.json() == {"alive": True, "store": True, "healthy": True, "problems": []}
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert "regsync_healthy 1.0" in metrics.text
        record_flow_result(engine, "outbound", False, "invalid_client", now=utcnow() - dt.timedelta(hours=1))
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200  # alive, though unhealthy
        strict = httpx.get(f"{base}/healthz?strict=1", timeout=10)
        assert strict.status_code == 503 and strict.json()["healthy"] is False
        assert "regsync_healthy 0.0" in httpx.get(f"{base}/metrics", timeout=10).text
        alive["yes"] = False
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 503
        assert httpx.get(f"{base}/other", timeout=10).status_code == 404
        with pytest.raises(ConfigError, match="cannot listen"):
            serve_metrics(Metrics(engine, settings), f"127.0.0.1:{port}", alive=lambda: True)
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------------ issue 12, item 10
def _status_json(db_url: str, **env: str) -> tuple[int, dict]:
    shown = CliRunner().invoke(app, ["status", "--json"], env={"REGSYNC_DATABASE_URL": db_url,
                                                               "REGSYNC_LOG_LEVEL": "WARNING", **env})
    assert shown.exit_code in (0, 3), shown.output
    return shown.exit_code, json.loads(shown.stdout)


def test_status_is_unhealthy_without_a_live_daemon_and_shows_next_runs_only_from_one(engine: Engine,
                                                                                     db_url: str) -> None:
    """With the daemon stopped, status said healthy and invented next-run times from the configuration."""
    from regsync.db.liveness import stop

    record_flow_result(engine, "inbound", True)
    code, data = _status_json(db_url)
    assert code == 3 and data["daemon"]["alive"] is False and data["next_runs"] == {}
    assert data["problems"] == ["no daemon is running (`regsync run`): none has run on this store"]
    text_out = CliRunner().invoke(app, ["status"], env={"REGSYNC_DATABASE_URL": db_url, "COLUMNS": "200"}).stdout
    assert "UNHEALTHY" in text_out and "daemon: not running (never seen)" in text_out
    # a live daemon's heartbeat carries its scheduler's next runs: those are shown
    soon = utcnow().replace(microsecond=0) + dt.timedelta(seconds=30)
    _daemon_alive(engine, "replica-a:1", next_runs={"outbound": soon, "reconcile": soon + dt.timedelta(hours=3)})
    code, data = _status_json(db_url)
    assert code == 0 and data["healthy"] and data["daemon"]["alive"] is True
    assert [w["worker"] for w in data["daemon"]["workers"]] == ["replica-a:1"]
    assert data["next_runs"] == {"outbound": (soon + dt.timedelta(hours=8)).isoformat() + "+08:00",
                                 "reconcile": (soon + dt.timedelta(hours=11)).isoformat() + "+08:00"}
    # the daemon stopped: no next runs, and when it was last seen
    stop(engine, worker="replica-a:1")
    code, data = _status_json(db_url)
    assert code == 3 and data["daemon"]["alive"] is False and data["next_runs"] == {}
    assert data["daemon"]["last_seen_at"] is not None and "the last one was seen at" in data["problems"][0]
    # a daemon on another host killed two minutes ago: its lease has run out, whatever its row says
    _daemon_alive(engine, "replica-b:2", now=utcnow() - dt.timedelta(minutes=2), next_runs={"outbound": soon})
    code, data = _status_json(db_url)
    assert code == 3 and data["daemon"]["alive"] is False and data["next_runs"] == {}


def test_a_next_run_already_past_in_the_heartbeat_is_shown_as_now_not_in_the_past(engine: Engine,
                                                                                  db_url: str) -> None:
    """The heartbeat is up to 10 s old: a job whose next run it names has passed is due or running now, and
    status showed a time already gone (a fresh user's try)."""
    record_flow_result(engine, "inbound", True)
    past = utcnow().replace(microsecond=0) - dt.timedelta(seconds=6)
    _daemon_alive(engine, "replica-a:1", next_runs={"outbound": past})
    before = utcnow().replace(microsecond=0)
    code, data = _status_json(db_url)
    shown = dt.datetime.fromisoformat(data["next_runs"]["outbound"]).astimezone(dt.UTC).replace(tzinfo=None)
    assert shown >= before, (shown, before)


def test_a_daemon_writes_its_heartbeat_while_it_runs_and_says_when_it_stopped(engine: Engine, db_url: str) -> None:
    settings = _settings(db_url, outbound_interval_s=3600, inbound_interval_s=3600)
    daemon = Daemon(settings, engine)
    daemon.start()
    try:
        status = collect_status(engine, settings)
        assert status["daemon"]["alive"] and status["daemon"]["workers"][0]["worker"] == daemon.worker
        assert set(status["next_runs"]) == {"outbound", "inbound", "reconcile", "prune"}
        assert "no daemon is running" not in " ".join(status["problems"])
    finally:
        daemon.shutdown(timeout_s=5)
    status = collect_status(engine, settings)
    assert not status["daemon"]["alive"] and status["next_runs"] == {}
    assert status["problems"][0].startswith("no daemon is running")


def test_a_failing_flow_is_unhealthy_at_once_not_healthy_beside_failing(engine: Engine, db_url: str) -> None:
    _daemon_alive(engine)
    record_flow_result(engine, "outbound", False, "the registry refuses this client's credentials: invalid_client")
    code, data = _status_json(db_url)
    assert code == 3 and data["problems"][0].startswith("outbound has been failing for 0 s")
    shown = CliRunner().invoke(app, ["status"], env={"REGSYNC_DATABASE_URL": db_url, "COLUMNS": "200"})
    assert "UNHEALTHY" in shown.stdout and "healthy" not in shown.stdout.replace("UNHEALTHY", "")
    # an operator who wants a grace sets one; the table then says the failure is within it
    code, data = _status_json(db_url, REGSYNC_HEALTH_MAX_FAILING_S="600")
    assert code == 0
    shown = CliRunner().invoke(app, ["status"], env={"REGSYNC_DATABASE_URL": db_url, "COLUMNS": "200",
                                                      "REGSYNC_HEALTH_MAX_FAILING_S": "600"})
    assert "failing (within REGSYNC_HEALTH_MAX_FAILING_S)" in shown.stdout
    record_flow_result(engine, "outbound", True)
    assert _status_json(db_url)[0] == 0


def test_a_pause_with_an_expiry_resumes_by_itself_audited(engine: Engine, db_url: str) -> None:
    runner = CliRunner()
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_LOG_LEVEL": "WARNING"}
    done = runner.invoke(app, ["pause", "--outbound", "--for", "2h", "--reason", "registry maintenance",
                               "--actor", "ops-li", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["changed"] == ["outbound"] and json.loads(done.stdout)["until"]
    with engine.connect() as conn:
        until = conn.execute(select(FlowState.paused_until).where(FlowState.flow == "outbound")).scalar_one()
    until = until if isinstance(until, dt.datetime) else dt.datetime.fromisoformat(until)
    assert abs((until - utcnow()).total_seconds() - 7200) < 60
    assert is_paused(engine, "outbound")
    later = until + dt.timedelta(seconds=1)
    _daemon_alive(engine, now=later)
    # past its expiry and nobody looked yet: status says so, unhealthy
    status = collect_status(engine, _settings(db_url), now=later)
    assert status["flows"]["outbound"]["pause_expired"]
    assert any("pause expired" in p and "no daemon has resumed it" in p for p in status["problems"])
    # the first look after the expiry resumes the flow, once, audited by regsync
    assert not is_paused(engine, "outbound", now=later)
    assert not is_paused(engine, "outbound", now=later)
    with engine.connect() as conn:
        audit = conn.execute(select(Audit.action, Audit.actor, Audit.target, Audit.reason).order_by(Audit.id)).all()
    assert [(a.action, a.actor, a.target) for a in audit] == [("pause", "ops-li", "outbound"),
                                                              ("resume", "regsync", "outbound")]
    assert "expired" in audit[1].reason and "registry maintenance" in audit[1].reason
    status = collect_status(engine, _settings(db_url), now=later)
    assert not status["flows"]["outbound"]["paused"] and status["healthy"], status["problems"]


def test_the_daemons_tick_resumes_an_expired_pause(engine: Engine, db_url: str) -> None:
    set_paused(engine, ["outbound", "inbound"], True, reason="registry maintenance", actor="ops-li",
               until=utcnow() + dt.timedelta(hours=1))
    daemon = Daemon(_settings(db_url), engine)
    assert daemon.job_outbound() == "paused"
    with engine.begin() as conn:  # an hour later
        conn.execute(text("UPDATE flow_state SET paused_until = :t"), {"t": utcnow() - dt.timedelta(seconds=1)})
    assert daemon.job_outbound() == "idle"  # resumed: nothing to send
    daemon.on_beat()  # the heartbeat resumes the inbound flow too, without waiting for its tick
    assert not is_paused(engine, "outbound") and not is_paused(engine, "inbound")
    with engine.connect() as conn:
        resumed = conn.execute(select(Audit.target).where(Audit.action == "resume", Audit.actor == "regsync")
                               .order_by(Audit.target)).scalars().all()
    assert resumed == ["inbound", "outbound"]


def test_pause_expiry_usage_errors_exit_2(engine: Engine, db_url: str) -> None:
    runner = CliRunner()
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_LOG_LEVEL": "WARNING"}
    for bad in (["--for", "soon"], ["--for", "0s"], ["--until", "2000-01-01T00:00"], ["--until", "tomorrow"],
                ["--for", "1h", "--until", "2099-01-01T00:00"]):
        out = runner.invoke(app, ["pause", "--reason", "r", *bad], env=env)
        assert out.exit_code == 2, (bad, out.output)
    assert not is_paused(engine, "outbound")
    ok = runner.invoke(app, ["pause", "--inbound", "--until", "2099-01-01T06:00", "--reason", "r", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    with engine.connect() as conn:
        until = conn.execute(select(FlowState.paused_until).where(FlowState.flow == "inbound")).scalar_one()
    assert str(until).startswith("2098-12-31 22:00:00")  # +08:00 when no offset is given


def test_a_pause_is_unhealthy_once_older_than_the_limit(engine: Engine, db_url: str) -> None:
    """A paused flow was healthy for ever."""
    _daemon_alive(engine)
    set_paused(engine, ["inbound"], True, reason="feed replay", actor="ops-li", now=utcnow() - dt.timedelta(hours=5))
    status = collect_status(engine, _settings(db_url))
    assert not status["healthy"]
    assert status["problems"][0].startswith("inbound has been paused for 18") and "REGSYNC_HEALTH_MAX_PAUSE_S" in \
        status["problems"][0] and "feed replay" in status["problems"][0]
    lenient = dataclasses.replace(_settings(db_url), health=HealthSettings(max_pause_s=86400))
    assert collect_status(engine, lenient)["healthy"]


def test_a_run_is_partial_only_when_it_failed_records_itself(engine: Engine, settings: Settings) -> None:
    """A run that pushed one record and failed none was ``partial`` because an earlier run had failed one."""
    from regsync.flows.sync import run_sync

    with engine.begin() as conn:
        factories.volunteer(conn, phone="12345")  # refused on its data: INVALID_PHONE
    code, first = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and first["status"] == "partial" and first["failed"] == {"volunteers": 1}
    with engine.begin() as conn:
        factories.org(conn, "CITY_CORPS")
    code, second = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and second["pushed"] == {"orgs": 1} and second["failed"] == {}
    assert second["status"] == "success" and second["still_failed"] == {"volunteers": 1}


def _json_events(err: str) -> list[dict]:
    out = []
    for line in err.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_a_credentials_outage_raises_one_alarm_then_backs_off_until_a_success(
        engine: Engine, db_url: str, tmp_path: Path, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon wrote a failed run and a "relay halted" alarm every 2 s for as long as the credentials were
    refused."""
    from regsync.service.logs import configure_logging

    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sb.db'}", admin=True) as sandbox:
        settings = Settings(database=DatabaseSettings(url=db_url),
                            daemon=DaemonSettings(metrics_address="", outbound_interval_s=2, backoff_max_s=16),
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret, max_retries=1),
                            log=LogSettings(level="INFO", format="json"))
        configure_logging(settings.log, force_json=True)
        with engine.begin() as conn:
            factories.org_tree(conn)
        daemon = Daemon(settings, engine)
        request.addfinalizer(daemon.close_clients)
        assert daemon.ensure_first_cursor()
        daemon.close_clients()  # the next pass asks for a token again
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": False},
                   timeout=10).raise_for_status()
        capsys.readouterr()
        outcomes = [daemon.job_outbound() for _ in range(20)]
        # failed passes 1, 2, 3, 4 wait 2, 4, 8 then 8 ticks (16 s, the cap) of 2 s
        assert outcomes == ["failed", "backoff", "failed", *["backoff"] * 3, "failed", *["backoff"] * 7,
                            "failed", *["backoff"] * 5]
        events = _json_events(capsys.readouterr().err)
        alarms = [e for e in events if e.get("alarm")]
        assert [e["event"] for e in alarms] == ["registry refuses the credentials: relay halted"]
        assert len([e for e in events if e.get("alarm_repeat")]) == 3
        assert all(e["level"] == "warning" for e in events if e.get("alarm_repeat"))
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Run).where(Run.status == "failed")).scalar_one() == 4
        # the credentials work again: the pass after the wait pushes, and the streak ends
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": True},
                   timeout=10).raise_for_status()
        after = [daemon.job_outbound() for _ in range(4)]
        assert after == ["backoff", "backoff", "run", "idle"]
        events = _json_events(capsys.readouterr().err)
        assert any(e["event"] == "outbound works again" and e["failed_passes"] == 4 for e in events)
        # a new outage raises its alarm again
        daemon.close_clients()
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": False},
                   timeout=10).raise_for_status()
        with engine.begin() as conn:
            factories.org(conn, "CITY_CORPS")
        assert daemon.job_outbound() == "failed"
        events = _json_events(capsys.readouterr().err)
        assert [e["event"] for e in events if e.get("alarm")] == ["registry refuses the credentials: relay halted"]


# ------------------------------------------------------------------------------------------------ issue 12, item 12
def test_the_daemon_logs_one_info_line_per_run_with_what_it_did(engine: Engine, db_url: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from regsync.service.logs import configure_logging

    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sb.db'}", admin=True) as sandbox:
        settings = Settings(database=DatabaseSettings(url=db_url), daemon=DaemonSettings(metrics_address=""),
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret),
                            log=LogSettings(level="INFO", format="json"))
        configure_logging(settings.log, force_json=True)
        with engine.begin() as conn:
            tree = factories.org_tree(conn)
            vol = factories.volunteer(conn)
            factories.volunteer(conn, phone="12345")  # refused: INVALID_PHONE
        daemon = Daemon(settings, engine)
        request.addfinalizer(daemon.close_clients)
        capsys.readouterr()
        assert daemon.job_outbound() == "run"
        with engine.connect() as conn:
            rid = conn.execute(select(Link.registry_id).where(Link.entity == "volunteer",
                                                              Link.local_id == vol)).scalar_one()
            push_run = conn.execute(select(Run.id).where(Run.kind == "sync")).scalar_one()
        httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact", json={"phone": "13812340002"},
                   timeout=10).raise_for_status()
        assert daemon.job_inbound(dt.datetime(2026, 11, 29, 20, 0)) == "run"
        assert daemon.job_outbound() == "idle"  # no run, no line
        lines = [e for e in _json_events(capsys.readouterr().err) if e.get("event") == "run finished"]
    assert len(lines) == 2 and all(e["level"] == "info" for e in lines)
    push, pull = lines
    assert push["flow"] == "outbound" and push["run_id"] == push_run and push["status"] == "partial"
    assert push["pushed"] == len(tree) + 1 and push["failed"] == 1 and push["pulled"] == 0
    assert isinstance(push["seconds"], float)
    assert pull["flow"] == "inbound" and pull["pulled"] >= 1 and pull["applied"] == 1 and pull["pushed"] == 0
    assert pull["run_id"] not in (None, push_run) and pull["status"] == "success"


# ------------------------------------------------------------------------------------------------ issue 12, item 11
def test_an_abandoned_run_ends_when_its_process_was_last_seen_not_when_it_was_found_dead(engine: Engine) -> None:
    """A pull killed mid-run was marked abandoned with the time it was found dead: it then seemed to overlap the
    survivor's next pull, which began after the kill (the two-daemon test failed on it). It ends at its process's
    last heartbeat."""
    from regsync.db.liveness import sweep

    now = utcnow().replace(microsecond=0)
    last_beat = now - dt.timedelta(minutes=5)
    _daemon_alive(engine, "host-b:77", now=last_beat)
    with engine.begin() as conn:
        run = conn.execute(Run.__table__.insert().values(
            kind="inbound", started_at=last_beat - dt.timedelta(seconds=3), status="running", summary="{}",
            worker="host-b:77")).inserted_primary_key[0]
    assert sweep(engine, now)["runs"] == 1
    with engine.connect() as conn:
        status, finished = conn.execute(select(Run.status, Run.finished_at).where(Run.id == run)).one()
    assert status == "abandoned" and finished.replace(tzinfo=None) == last_beat


def test_a_run_and_slot_left_by_a_killed_process_are_abandoned_and_the_slot_runs_again(engine: Engine,
                                                                                        db_url: str) -> None:
    """A replica killed with SIGKILL left its run and its slot ``running`` for ever, and the night's reconcile
    never ran again."""
    settings = _settings(db_url)
    now = utcnow()
    at = latest_fire_time(build_triggers(settings.daemon)["reconcile"], now)
    at_prune = latest_fire_time(build_triggers(settings.daemon)["prune"], now)
    # host-b claimed the nightly reconcile and started it, then was killed: its lease ran out minutes ago
    _daemon_alive(engine, "host-b:77", now=now - dt.timedelta(minutes=5))
    killed_slot = claim_slot(engine, "reconcile", at, "host-b:77")
    # host-c is alive and in the middle of the prune
    _daemon_alive(engine, "host-c:88")
    assert claim_slot(engine, "prune", at_prune, "host-c:88") is not None
    with engine.begin() as conn:
        killed_run, live_run = (conn.execute(Run.__table__.insert().values(
            kind=kind, started_at=now - dt.timedelta(minutes=6), status="running", summary="{}", worker=worker))
            .inserted_primary_key[0] for kind, worker in (("reconcile", "host-b:77"), ("prune", "host-c:88")))
    status = collect_status(engine, settings)
    assert {r["run_id"]: r["abandoned"] for r in status["running"]} == {killed_run: True, live_run: False}
    # the night's reconcile runs again at the next start (catch-up); the live replica's prune does not
    assert Daemon(settings, engine, worker="host-d:1").catch_up(now) == {"reconcile": at}
    assert claim_slot(engine, "prune", at_prune, "host-d:1") is None
    taken = claim_slot(engine, "reconcile", at, "host-d:1")
    assert taken == killed_slot
    assert claim_slot(engine, "reconcile", at, "host-e:1") is None  # taken over once
    with engine.connect() as conn:
        slot = conn.execute(select(RunSlot.claimed_by, RunSlot.state).where(RunSlot.id == taken)).one()
        runs = dict(conn.execute(select(Run.id, Run.status)).all())
        summary = json.loads(conn.execute(select(Run.summary).where(Run.id == killed_run)).scalar_one())
    assert tuple(slot) == ("host-d:1", "running")
    assert runs == {killed_run: "abandoned", live_run: "running"}
    assert "host-b:77" in summary["error"]
    code, data = _status_json(db_url)
    assert [r["run_id"] for r in data["abandoned"]] == [killed_run]
    assert [r["run_id"] for r in data["running"]] == [live_run]


def test_the_daemons_heartbeat_marks_what_a_gone_process_left_running(engine: Engine, db_url: str) -> None:
    at = dt.datetime(2026, 11, 29, 18, 0)
    claim_slot(engine, "inbound", at, "host-b:77")  # no heartbeat at all: judged by the claim's age
    with engine.begin() as conn:
        conn.execute(text("UPDATE run_slot SET claimed_at = :t"), {"t": utcnow() - dt.timedelta(minutes=2)})
        gone = conn.execute(Run.__table__.insert().values(kind="inbound", started_at=utcnow() - dt.timedelta(
            minutes=2), status="running", summary="{}", worker="host-b:77")).inserted_primary_key[0]
        fresh = conn.execute(Run.__table__.insert().values(kind="inbound", started_at=utcnow(), status="running",
                                                           summary="{}", worker="host-f:5")).inserted_primary_key[0]
    Daemon(_settings(db_url), engine).on_beat()
    with engine.connect() as conn:
        assert dict(conn.execute(select(Run.id, Run.status)).all()) == {gone: "abandoned", fresh: "running"}
        assert conn.execute(select(RunSlot.state)).scalar_one() == "abandoned"
    assert claim_slot(engine, "inbound", at, "host-d:1") is not None  # an abandoned slot may be claimed again


def test_a_pull_is_partial_only_when_it_found_the_feed_cut_short_itself(engine: Engine, settings: Settings,
                                                                       sandbox: SandboxServer) -> None:
    """The sibling of records failed by an earlier run: a full reconcile marked due by an earlier pull made every
    later pull and sync ``partial``, though they read the feed in full."""
    from regsync.flows.sync import run_pull, run_sync

    with engine.begin() as conn:
        factories.org_tree(conn)
        vol = factories.volunteer(conn)
    assert run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)[0] == 0
    with engine.begin() as conn:  # the cursor is lost (a restore of the store without it)
        conn.execute(text("DELETE FROM feed_cursor"))
        rid = conn.execute(select(Link.registry_id).where(Link.entity == "volunteer", Link.local_id == vol)
                           ).scalar_one()
    code, first = run_pull(settings, engine=engine)
    assert code == 0 and first["reconcile_due"] and first["reconcile_reason"] == "NO_CURSOR"
    assert first["status"] == "partial"  # this pull found it: the changes before the head were never read
    httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact", json={"phone": "13812340002"},
               timeout=10).raise_for_status()
    code, second = run_pull(settings, engine=engine)
    assert code == 0 and second["applied"] == 1 and second["reconcile_due"]  # still reported
    assert second["status"] == "success"
    code, synced = run_sync(settings, engine=engine)
    assert code == 0 and synced["reconcile_due"] and synced["status"] == "success"
    with engine.connect() as conn:
        assert conn.execute(select(Run.status).where(Run.id == second["run_id"])).scalar_one() == "success"
