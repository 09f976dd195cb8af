"""Alarms (issue 15, point 6): delivered to a real local HTTP receiver (webhooks; the WeCom and DingTalk robots'
APIs pointed at it) and a real local SMTP server; one message when a condition starts, one when it clears, none
repeated over many checks; one start whatever the replicas racing; a failing receiver retried, then logged, the
caller unaffected; a dead daemon's lost heartbeat raised by ``regsync status --alarms``. Store tests run on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins import dingtalk, wecombot
from sqlalchemy import Engine
from structlog.testing import capture_logs
from typer.testing import CliRunner

from alarmutil import http_receiver, smtp_receiver
from factories import TEST_HASH_KEY
from regsync.console.cli import app
from regsync.db.alarmstate import read_alarms
from regsync.db.discrepancies import discrepancy_row, insert_discrepancies
from regsync.db.liveness import beat
from regsync.db.session import make_engine, utcnow
from regsync.i18n import use_language
from regsync.service.alarms import Alarm, Dispatcher, Notifier, announce_report, check_alarms, masked_url
from regsync.service.status import auth_code, health_findings
from regsync.settings import AlarmSettings, DatabaseSettings, Settings


@pytest.fixture(autouse=True)
def _chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alarms and the audit list are read in Chinese, the default (tests/conftest.py makes English the tests'
    language)."""
    monkeypatch.setenv("REGSYNC_LANG", "zh-CN")

FAILING = {"key": "failing:outbound", "kind": "failing",
           "params": {"flow": "outbound", "failing_s": 125, "error": "registry down (status=503, code=INTERNAL)"}}
REFUSED = {"key": "credentials", "kind": "credentials",
           "params": {"flows": ["outbound", "inbound"], "code": "invalid_client", "failing_s": 60}}


def _settings(db_url: str = "sqlite://", *urls: str, **alarms: Any) -> Settings:
    return Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url),
                    alarms=AlarmSettings(urls=tuple(urls), **{"retries": 0, "grace_s": 0.0, **alarms}))


def _status(*findings: dict[str, Any]) -> dict[str, Any]:
    return {"findings": list(findings)}


def _mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=regsync@example.cn&to=ops@example.cn"


# ------------------------------------------------------------------------------------------------ delivery

def test_one_alarm_reaches_a_webhook_and_a_mailbox_in_chinese() -> None:
    with http_receiver() as web, smtp_receiver() as smtp, use_language("zh-CN"):
        s = _settings("sqlite://", f"json://127.0.0.1:{web.port}/hook", _mail_url(smtp.port))
        counted: list[str] = []
        notifier = Notifier(s.alarms, count=counted.append)
        from regsync.service.alarms import message
        alarm = message("credentials", "credentials", "raised", REFUSED["params"], since=dt.datetime(2026, 12, 1, 18),
                        now=dt.datetime(2026, 12, 1, 18, 1))
        result = notifier.deliver(alarm)
        assert list(result.values()) == [True, True]
        assert counted == ["delivered", "delivered"]
        assert smtp.wait_for(1)
    body = web.received[0].body
    assert web.received[0].path == "/hook"
    assert body["title"] == "regsync 告警：全国系统拒绝了客户端凭据"
    assert "invalid_client" in body["message"] and "推送变更" in body["message"] and "1分钟" in body["message"]
    assert "2026-12-02T02:00:00+08:00" in body["message"]  # since, +08:00
    mail = smtp.mails[0]
    assert mail.recipients == ["ops@example.cn"] and mail.subject == body["title"]
    assert "全国系统拒绝" in mail.text


def test_the_wecom_and_dingtalk_robots_payloads_reach_a_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apprise's robots post to their vendors' fixed hosts: their API addresses are pointed at the local receiver, so
    that what the plugins build (path, key, signature, JSON) is what arrives."""
    with http_receiver() as web:
        base = f"http://127.0.0.1:{web.port}"
        monkeypatch.setattr(wecombot.NotifyWeComBot, "notify_url", base + "/cgi-bin/webhook/send?key={key}")
        monkeypatch.setattr(dingtalk.NotifyDingTalk, "notify_url", base + "/robot/send?access_token={token}")
        s = _settings("sqlite://", "wecombot://wecomkey123",
                      "dingtalk://dingtoken456/?secret=SECdingsecret789")
        alarm = Alarm(key="heartbeat", event="raised", title="regsync 告警：守护进程心跳丢失", body="没有守护进程在运行")
        assert list(Notifier(s.alarms).deliver(alarm).values()) == [True, True]
    wecom, ding = web.received
    assert wecom.path == "/cgi-bin/webhook/send?key=wecomkey123"
    assert wecom.body["msgtype"] == "text" and "守护进程心跳丢失" in wecom.body["text"]["content"]
    assert ding.path.startswith("/robot/send?access_token=dingtoken456")
    assert "timestamp=" in ding.path and "sign=" in ding.path  # the signed robot's HMAC of the secret
    assert "没有守护进程在运行" in json.dumps(ding.body, ensure_ascii=False)


def test_a_failing_receiver_is_retried_then_logged_with_the_url_masked() -> None:
    waits: list[float] = []
    with http_receiver(fail=-1) as web:
        s = _settings("sqlite://", f"json://alarmuser:s3cr3tpass@127.0.0.1:{web.port}/hook", retries=3,
                      retry_wait_s=2.0)
        counted: list[str] = []
        with capture_logs() as logs:
            result = Notifier(s.alarms, count=counted.append, sleep=waits.append).deliver(
                Alarm("failing:outbound", "raised", "t", "b"))
        assert web.attempts == 4  # the first attempt and three retries
    assert list(result.values()) == [False]
    assert waits == [2.0, 4.0, 8.0]  # exponential backoff from retry_wait_s
    assert counted == ["retried", "retried", "retried", "failed"]
    failed = [e for e in logs if e["event"] == "alarm not delivered"]
    assert len(failed) == 1 and failed[0]["attempts"] == 4
    assert "s3cr3tpass" not in json.dumps(logs) and "****" in failed[0]["url"]


def test_a_receiver_that_recovers_gets_the_message_once() -> None:
    with http_receiver(fail=2) as web:
        s = _settings("sqlite://", f"json://127.0.0.1:{web.port}/hook", retries=3, retry_wait_s=0.0)
        result = Notifier(s.alarms, sleep=lambda _s: None).deliver(Alarm("k", "cleared", "t", "b"))
    assert list(result.values()) == [True]
    assert web.attempts == 3 and len(web.received) == 1


def test_urls_are_masked_and_bad_ones_skipped() -> None:
    assert masked_url("wecombot://abcdefghijkey") == "wecombot://a...y/"
    assert "pass" not in masked_url("mailtos://user:pass@smtp.example.cn?to=a@b.cn")
    assert masked_url("jsons://hooks.example.cn/regsync/T0KEN") == "jsons://hooks.example.cn/…"
    with capture_logs() as logs:
        notifier = Notifier(AlarmSettings(urls=("nosuchscheme://secret-token",)))
    assert notifier.targets == []
    assert logs[0]["event"] == "alarm URL not understood; it is skipped" and "secret" not in json.dumps(logs)


# ------------------------------------------------------------------------------------------------ conditions

def test_start_and_clear_once_each_over_many_checks_to_http_and_smtp(engine: Engine, db_url: str) -> None:
    with http_receiver() as web, smtp_receiver() as smtp, use_language("zh-CN"):
        s = _settings(db_url, f"json://127.0.0.1:{web.port}/hook", _mail_url(smtp.port))
        dispatcher = Dispatcher(Notifier(s.alarms))
        sent = []
        for _ in range(10):
            sent += check_alarms(engine, s, _status(FAILING), dispatcher.submit).sent
        assert [a.event for a in sent] == ["raised"]
        assert read_alarms(engine)["failing:outbound"].active
        for _ in range(10):
            sent += check_alarms(engine, s, _status(), dispatcher.submit).sent
        assert [a.event for a in sent] == ["raised", "cleared"]
        assert dispatcher.drain(60) and smtp.wait_for(2)
        dispatcher.close(5)
    assert [r.body["title"] for r in web.received] == ["regsync 告警：流程持续失败（推送变更）",
                                                       "regsync 恢复：流程持续失败（推送变更）"]
    assert "registry down" in web.received[0].body["message"]
    assert web.received[0].body["type"] == "failure" and web.received[1].body["type"] == "success"
    assert [m.subject for m in smtp.mails] == [r.body["title"] for r in web.received]
    assert not read_alarms(engine)["failing:outbound"].active


def test_a_reminder_once_per_period_when_configured(engine: Engine, db_url: str) -> None:
    s = _settings(db_url, "json://127.0.0.1:9/x", reminder_s=3600)
    t0 = dt.datetime(2026, 12, 1, 0, 0)
    events = []
    for minutes in (0, 10, 59, 60, 61, 119, 121):
        now = t0 + dt.timedelta(minutes=minutes)
        events += [(minutes, a.event) for a in check_alarms(engine, s, _status(REFUSED), lambda a: None, now=now).sent]
    assert events == [(0, "raised"), (60, "reminder"), (121, "reminder")]
    with use_language("en"):
        cleared = check_alarms(engine, s, _status(), lambda a: None, now=t0 + dt.timedelta(minutes=150)).sent
    assert [a.event for a in cleared] == ["cleared"]
    assert cleared[0].title == "regsync cleared: the registry refuses the credentials"
    assert "it lasted 2 h 30 min" in cleared[0].body
    again = check_alarms(engine, s, _status(REFUSED), lambda a: None, now=t0 + dt.timedelta(hours=3)).sent
    assert [a.event for a in again] == ["raised"]  # a new start after the clear


def test_a_condition_is_announced_once_it_has_held_the_grace(engine: Engine, db_url: str) -> None:
    """A blip (a failed pass the next one cures) sends nothing; a condition that holds is announced once, after
    the grace, with the time it started."""
    s = _settings(db_url, "json://127.0.0.1:9/x", grace_s=60)
    t0 = dt.datetime(2026, 12, 1, 0, 0)

    def at(seconds: int, status: dict[str, Any]) -> list[str]:
        return [a.event for a in check_alarms(engine, s, status, lambda a: None,
                                              now=t0 + dt.timedelta(seconds=seconds)).sent]

    assert at(0, _status(FAILING)) == [] and read_alarms(engine)["failing:outbound"].pending
    assert at(30, _status()) == []  # gone within the grace: never announced, no clear either
    assert not read_alarms(engine)["failing:outbound"].pending
    assert at(40, _status(FAILING)) == [] and at(70, _status(FAILING)) == []  # 30 s held: not yet
    with use_language("en"):
        raised = check_alarms(engine, s, _status(FAILING), lambda a: None, now=t0 + dt.timedelta(seconds=100)).sent
    assert [a.event for a in raised] == ["raised"]
    assert "Since 2026-12-01T08:00:40+08:00." in raised[0].body  # when it was first seen
    assert at(130, _status(FAILING)) == [] and at(160, _status()) == ["cleared"]


def test_two_replicas_racing_send_one_start_and_one_clear(engine: Engine, db_url: str) -> None:
    """Two replicas (each its own engine) read the same state, then claim the same transition at once: one wins."""
    s = _settings(db_url, "json://127.0.0.1:9/x")
    replicas = [make_engine(db_url), make_engine(db_url)]
    try:
        for round_, status in enumerate([_status(FAILING), _status(), _status(FAILING), _status()] * 2):
            barrier = threading.Barrier(2)
            sent: list[Alarm] = []
            errors: list[BaseException] = []

            def replica(e: Engine, status: dict[str, Any] = status, barrier: threading.Barrier = barrier,
                        sent: list[Alarm] = sent, errors: list[BaseException] = errors) -> None:
                try:
                    states = read_alarms(e)  # both read the state before either writes
                    barrier.wait(30)
                    sent.extend(check_alarms(e, s, status, lambda a: None, states=states).sent)
                except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
                    errors.append(exc)

            threads = [threading.Thread(target=replica, args=(e,)) for e in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert [a.event for a in sent] == ["raised" if round_ % 2 == 0 else "cleared"], round_
    finally:
        for e in replicas:
            e.dispose()


def test_delivery_runs_off_the_callers_path(engine: Engine, db_url: str) -> None:
    """A receiver that hangs, then fails: the check returns at once; the failure is retried and logged, later."""
    with http_receiver(fail=-1) as web:
        web.hold.clear()  # the receiver holds every request until told
        s = _settings(db_url, f"json://127.0.0.1:{web.port}/hook", retries=1, retry_wait_s=0.0)
        dispatcher = Dispatcher(Notifier(s.alarms, sleep=lambda _s: None))
        with capture_logs() as logs:
            result = check_alarms(engine, s, _status(FAILING), dispatcher.submit)
            assert [a.event for a in result.sent] == ["raised"]
            assert web.attempts == 0  # returned while the delivery waits on the receiver
            web.hold.set()
            assert dispatcher.drain(60)
        dispatcher.close(5)
    assert web.attempts == 2
    assert [e["event"] for e in logs if e["event"].startswith("alarm not")] == ["alarm not delivered"]
    assert read_alarms(engine)["failing:outbound"].active  # claimed: not sent again at the next check
    assert check_alarms(engine, s, _status(FAILING), lambda a: None).sent == []


# ------------------------------------------------------------------------------------------------ judgements

def _health_status(**over: Any) -> dict[str, Any]:
    flow = {"paused": False, "last_success_age_s": 10, "failing_for_s": None, "last_error": None}
    status: dict[str, Any] = {"flows": {f: dict(flow) for f in ("outbound", "inbound", "reconcile")},
                              "daemon": {"alive": True, "workers": [{"worker": "a:1"}], "lost": [],
                                         "last_seen_at": "x"},
                              "oldest_pending_age_s": None, "reconcile_due": None, "platform": {}}
    status.update(over)
    return status


def test_the_credentials_refused_are_one_condition_whatever_the_flows() -> None:
    assert auth_code("Client authentication failed (status=401, code=invalid_client)") == "invalid_client"
    assert auth_code("registry down (status=503, code=INTERNAL)") is None
    st = _health_status()
    for flow in ("outbound", "inbound"):
        st["flows"][flow].update(failing_for_s=30, last_error="refused (status=401, code=SIGNATURE_INVALID)")
    st["flows"]["reconcile"].update(failing_for_s=5, last_error="boom (status=500, code=INTERNAL)")
    found = {f.key: f for f in health_findings(st, Settings())}
    assert set(found) == {"credentials", "failing:reconcile"}
    assert found["credentials"].params["flows"] == ["outbound", "inbound"]


def test_heartbeat_lost_when_fewer_daemons_than_needed() -> None:
    st = _health_status(daemon={"alive": True, "workers": [{"worker": "a:1"}], "lost": [{"worker": "b:2"}],
                                "last_seen_at": "t"})
    assert [f.key for f in health_findings(st, Settings())] == []
    two = replace(Settings(), health=replace(Settings().health, min_daemons=2))
    (f,) = health_findings(st, two)
    assert f.key == "heartbeat" and f.params["lost"] == ["b:2"] and "b:2" in f.text
    due = _health_status(reconcile_due={"reason": "CURSOR_EXPIRED", "at": "2026-12-01T00:00:00"})
    assert [f.key for f in health_findings(due, Settings())] == ["cursor_expired"]


# ------------------------------------------------------------------------------------------------ the report

def test_the_nights_report_is_announced_once_with_its_figures_by_city(engine: Engine, db_url: str) -> None:
    rows = [discrepancy_row(41, entity="volunteer", kind=kind, local_id=i, registry_id=None, fields=[], details={},
                            city_code=city, org_line="regional", action=None, action_state=None)
            for i, (kind, city) in enumerate([("missing_in_registry", "230100"), ("missing_in_registry", "230100"),
                                               ("field_mismatch", "230200"), ("hours_mismatch", None)])]
    insert_discrepancies(engine, rows)
    sent: list[Alarm] = []
    with use_language("zh-CN"):
        alarm = announce_report(engine, 41, sent.append, files=["reconcile-41-20261202.html"], status="partial")
    assert alarm is not None and sent == [alarm]
    assert alarm.title == "regsync：今晚的对账报告已生成（运行 41）"
    assert "4 条差异" in alarm.body and "全国系统缺少 2" in alarm.body
    assert "哈尔滨市 2；齐齐哈尔市 1；未知 1" in alarm.body  # biggest first
    assert "reconcile-41-20261202.html" in alarm.body
    assert announce_report(engine, 41, sent.append) is None  # once per run, whoever asks again
    other = announce_report(engine, 42, sent.append, city_totals=[("2301", 9)])  # the worklists' seam
    assert other is not None and "哈尔滨市 9" in other.body


# ------------------------------------------------------------------------------------------------ status --alarms

def _env(db_url: str, urls: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("REGSYNC_LANG", raising=False)
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_ALARMS_URLS": urls, "REGSYNC_ALARMS_RETRIES": "0",
           "REGSYNC_ALARMS_GRACE_S": "0",
           "REGSYNC_LOG_LEVEL": "WARNING"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_status_alarms_raises_a_dead_daemons_heartbeat_once_and_clears_it(engine: Engine, db_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    long_ago = utcnow() - dt.timedelta(minutes=10)
    beat(engine, worker="node-a:4242", role="daemon", now=long_ago)  # killed: its lease ran out, no stop said
    with http_receiver() as web:
        _env(db_url, f"json://127.0.0.1:{web.port}/hook", monkeypatch)
        runner = CliRunner()
        first = runner.invoke(app, ["status", "--alarms", "--json"])
        assert first.exit_code == 3, first.output
        data = json.loads(first.stdout)
        assert [(a["key"], a["event"]) for a in data["alarms"]["sent"]] == [("heartbeat", "raised")]
        assert data["daemon"]["lost"][0]["worker"] == "node-a:4242"
        again = runner.invoke(app, ["status", "--alarms"])  # the timer's next run: nothing new to say
        assert again.exit_code == 3 and "告警" not in again.stdout
        beat(engine, role="daemon")  # a daemon again (this process: alive on this node)
        cleared = runner.invoke(app, ["status", "--alarms"])
        assert "regsync 恢复：守护进程心跳丢失" in cleared.stdout
    titles = [r.body["title"] for r in web.received]
    assert titles == ["regsync 告警：守护进程心跳丢失", "regsync 恢复：守护进程心跳丢失"]
    assert "node-a:4242" in web.received[0].body["message"]


def test_two_status_timers_racing_as_processes_send_one_start(engine: Engine, db_url: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    beat(engine, worker="node-b:77", role="daemon", now=utcnow() - dt.timedelta(minutes=5))
    with http_receiver() as web:
        env = {**os.environ, **_env(db_url, f"json://127.0.0.1:{web.port}/hook", monkeypatch),
               "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        cmd = [sys.executable, "-m", "regsync.console.cli", "status", "--alarms", "--json"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [3, 3], outs
        sent = [a for out, _err in outs for a in json.loads(out)["alarms"]["sent"]]
        assert [(a["key"], a["event"]) for a in sent] == [("heartbeat", "raised")]
        assert sent[0]["delivered"] == {f"json://127.0.0.1:{web.port}/…": True}
    assert len(web.received) == 1  # the winner waited for its delivery before it exited


# ------------------------------------------------------------------------------------------------ the daemon

def test_a_running_daemon_raises_and_clears_and_counts_its_deliveries(engine: Engine, db_url: str) -> None:
    """The daemon's alarms job: judged at start and every check_interval_s, delivered from its own thread."""
    from regsync.db.flowstate import record_flow_result
    from regsync.service.daemon import Daemon
    from regsync.settings import DaemonSettings, LogSettings

    record_flow_result(engine, "inbound", False, "Client authentication failed (status=401, code=invalid_client)")
    with http_receiver() as web, use_language("zh-CN"):
        settings = replace(_settings(db_url, f"json://127.0.0.1:{web.port}/hook", check_interval_s=0.2),
                           daemon=DaemonSettings(metrics_address="", outbound_interval_s=3600,
                                                 inbound_interval_s=3600),
                           log=LogSettings(level="WARNING"))
        daemon = Daemon(settings, engine)
        daemon.start()
        try:
            assert web.wait_for(1), "the start was not delivered"
            record_flow_result(engine, "inbound", True)  # the credentials were fixed
            assert web.wait_for(2), "the clear was not delivered"
        finally:
            daemon.shutdown(timeout_s=10)
        rendered = daemon.metrics.render().decode()
    assert [r.body["title"] for r in web.received] == ["regsync 告警：全国系统拒绝了客户端凭据",
                                                       "regsync 恢复：全国系统拒绝了客户端凭据"]
    assert "拉取变更" in web.received[0].body["message"]
    assert 'regsync_alarm_deliveries_total{result="delivered"} 2.0' in rendered
    assert 'regsync_job_ticks_total{job="alarms",outcome="run"} 2.0' in rendered


def test_alarms_test_sends_a_test_message_and_says_which_urls_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGSYNC_LANG", raising=False)
    runner = CliRunner()
    with http_receiver() as good, http_receiver(fail=-1) as bad:
        monkeypatch.setenv("REGSYNC_ALARMS_URLS", f"json://127.0.0.1:{good.port}/a json://u:pw@127.0.0.1:{bad.port}/b")
        monkeypatch.setenv("REGSYNC_ALARMS_RETRIES", "0")
        result = runner.invoke(app, ["alarms", "test"])
        assert result.exit_code == 1, result.output
        assert f"已送达：json://127.0.0.1:{good.port}/…" in result.stdout
        assert f"未送达：json://u:****@127.0.0.1:{bad.port}/…" in result.stdout and "pw" not in result.stdout
        assert good.received[0].body["title"] == "regsync：测试消息"
        monkeypatch.setenv("REGSYNC_ALARMS_URLS", f"json://127.0.0.1:{good.port}/a")
        ok = runner.invoke(app, ["alarms", "test", "--json"])
        assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    monkeypatch.setenv("REGSYNC_ALARMS_URLS", "")
    none = runner.invoke(app, ["alarms", "test"])
    assert none.exit_code == 1 and "未配置告警地址" in none.stdout
