"""Alarms from the real flows against the sandbox registry (issue 15, point 6): refused credentials, as the relay and
the pull store them, are the ``credentials`` alarm; the daemon's nightly reconcile announces its report once. On
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from alarmutil import http_receiver
from regsync.flows.sync import run_sync
from regsync.i18n import use_language
from regsync.service.alarms import Dispatcher, Notifier, check_alarms
from regsync.service.daemon import Daemon
from regsync.service.status import collect_status
from regsync.settings import AlarmSettings, DaemonSettings, Settings


@pytest.fixture(autouse=True)
def _chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alarms and the audit list are read in Chinese, the default (tests/conftest.py makes English the tests'
    language)."""
    monkeypatch.setenv("REGSYNC_LANG", "zh-CN")


def _with_alarms(settings: Settings, url: str, reports_dir: str = "reports") -> Settings:
    return replace(settings, alarms=AlarmSettings(urls=(url,), retries=0, grace_s=0.0),
                   daemon=DaemonSettings(metrics_address="", reports_dir=reports_dir))


def test_refused_credentials_raise_one_alarm_naming_the_code(engine: Engine, settings: Settings) -> None:
    wrong = replace(settings, registry=replace(settings.registry, client_secret="not-the-secret-0123456789"))
    code, _summary = run_sync(wrong, engine=engine)
    assert code == 1
    status = collect_status(engine, wrong)
    keys = [f["key"] for f in status["findings"]]
    assert "credentials" in keys and not any(k.startswith("failing:") for k in keys), keys
    with http_receiver() as web, use_language("zh-CN"):
        s = _with_alarms(wrong, f"json://127.0.0.1:{web.port}/hook")
        dispatcher = Dispatcher(Notifier(s.alarms))
        sent = check_alarms(engine, s, status, dispatcher.submit).sent
        assert [a.key for a in sent] == ["heartbeat", "credentials"]  # and no daemon runs here
        assert dispatcher.drain(60)
        dispatcher.close(5)
    assert len(web.received) == 2
    (received,) = [r for r in web.received if "凭据" in r.body["title"]]
    assert received.body["title"] == "regsync 告警：全国系统拒绝了客户端凭据"
    assert "invalid_client" in received.body["message"]
    assert "not-the-secret" not in received.body["message"]


def test_the_nightly_reconcile_announces_its_report_once(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    with http_receiver() as web, use_language("zh-CN"):
        s = _with_alarms(settings, f"json://127.0.0.1:{web.port}/hook", reports_dir=str(tmp_path / "reports"))
        daemon = Daemon(s, engine)
        state, run_id = daemon._reconcile()
        assert state == "done" and run_id is not None
        assert daemon.alarms.drain(60)
        daemon.export_reports(run_id)  # a second writing of the same run's reports announces nothing
        assert daemon.alarms.drain(60)
        daemon.alarms.close(5)
    (received,) = web.received
    assert received.body["title"] == f"regsync：今晚的对账报告已生成（运行 {run_id}）"
    assert "省平台与全国系统之间共有 0 条差异" in received.body["message"]
    assert f"reconcile-{run_id}-" in received.body["message"]
