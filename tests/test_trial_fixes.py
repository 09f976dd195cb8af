"""A manager's trial in Chinese (issue 15 follow-up): durations in Chinese units, the reconcile/resync/adopt and
report command lines in the language in force (English kept as it was)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db.session import suppress_outbox
from regsync.domain.clock import format_age
from regsync.i18n import use_language
from regsync.reports.data import RunNotFound, get_run
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings
from test_console_zh import env_of, zh
from test_reconcile import reconcile, world


def test_format_age_speaks_chinese_and_keeps_english() -> None:
    with use_language("zh-CN"):
        assert format_age(551) == "9 分 11 秒"
        assert format_age(40) == "40 秒"
        assert format_age(2 * 3600 + 5 * 60) == "2 小时 5 分"
        assert format_age(3 * 86400 + 4 * 3600) == "3 天 4 小时"
        assert format_age(None) == "—"
    with use_language("en"):
        assert [format_age(s) for s in (551, 40, 7500, 273600, -5)] == ["9m 11s", "40s", "2h 5m", "3d 4h", "0s"]


def test_reconcile_and_resync_print_chinese(settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    w = world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        f.volunteer(conn, name="陈静")  # missing_in_registry: a row of the findings
    env = env_of(settings, sandbox)
    res = zh(env, "reconcile", "--repair")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert re.search(r"对账运行 \d+：", out) and "用时" in out and "秒" in out
    assert "全国系统缺少" in out and "差异" in out and "已排队" in out and "志愿者" in out
    assert "共比对" in out and "其中前 1 条" in out
    assert "success" not in out and "missing_in_registry" not in out and "compared" not in out
    res = zh(env, "resync", "volunteer", str(w["vols"][0]), "--reason", "核对", "--dry-run")
    assert res.exit_code == 0 and "的计划" in res.stdout, res.output
    # English as it was (the tests' language)
    res = CliRunner().invoke(app, ["--lang", "en", "reconcile"], env=env)
    assert res.exit_code == 0 and re.search(r"reconcile run \d+: succeeded in", res.stdout), res.output
    assert re.search(r"compared [\d,]+ records: [\d,]+ local", res.stdout), res.output


def test_report_lines_and_usage_errors_print_chinese(settings: Settings, engine: Engine, sandbox: SandboxServer,
                                                     tmp_path: Path) -> None:
    world(engine, settings)
    env = env_of(settings, sandbox)
    run_id = reconcile(settings, engine)["run_id"]
    res = zh(env, "report", "show", "99")
    assert res.exit_code == 2 and "没有运行 99" in res.stderr and "no run" not in res.stderr, res.output
    target = tmp_path / "report.html"
    res = zh(env, "report", "export", str(run_id), "--format", "html", "--output", str(target))
    assert res.exit_code == 0 and f"已写出 {target}（html，运行 {run_id}，" in res.stderr, res.output
    res = zh(env, "report", "export", str(run_id), "--format", "pdf")
    assert res.exit_code == 2 and "未知的格式 'pdf'" in res.stderr, res.output
    # str() stays English (JSON, logs)
    with use_language("zh-CN"), engine.connect() as conn:
        with pytest.raises(RunNotFound) as caught:
            get_run(conn, 99)
    assert str(caught.value) == "no run 99; `regsync report list` shows the runs"
    assert caught.value.text().startswith("没有运行 99")
