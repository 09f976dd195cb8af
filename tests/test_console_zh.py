"""The operator commands in Chinese (issue 15, point 1): ``outbox list``, ``conflicts list|show``, ``show``,
``platform check|status`` and a configuration error print no English sentence with ``--lang zh-CN``, while ``str()``
of the errors (JSON, logs) stays English. Store tests on every engine (the ``settings``/``engine`` fixtures; the CLI
reads the store by its URL); the registry is the sandbox over HTTP on loopback."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.flows.conflicts import get_conflict
from regsync.flows.operator import OperatorUsageError
from regsync.i18n import use_language
from regsync.sandbox.server import SandboxServer
from regsync.settings import ConfigError, Settings, load_settings
from test_conflicts import conflicted, sandbox, settings  # noqa: F401 — the fixtures

#: A run of three or more lowercase English words: an English sentence left untranslated (a list of codes,
#: "pending, failed, …", is not one).
ENGLISH = re.compile(r"\b[a-z]{2,}(?: +[a-z]{2,}){2,}\b")


def english_left(output: str) -> list[str]:
    """The English runs in ``output`` outside `backticks` (commands) and options (``--reason``)."""
    bare = re.sub(r"`[^`]*`", " ", output)
    bare = re.sub(r"--[a-z-]+(?:[ =][a-z|]+)?", " ", bare)
    return ENGLISH.findall(bare)


def zh(env: dict[str, str], *args: str) -> Any:
    res = CliRunner().invoke(app, ["--lang", "zh-CN", *args], env=env)
    assert not english_left(res.output), (english_left(res.output), res.output)
    return res


def env_of(settings: Settings, sandbox: SandboxServer) -> dict[str, str]:
    return {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING",
            "COLUMNS": "200", "REGSYNC_REGISTRY_URL": sandbox.base_url, "REGSYNC_CLIENT_ID": sandbox.client_id,
            "REGSYNC_CLIENT_SECRET": sandbox.client_secret, "REGSYNC_HASH_KEY": settings.hash_key,
            "REGSYNC_MERGE_CONTACT": "manual", "REGSYNC_MERGE_DESCRIPTIVE": "manual"}


def test_outbox_conflicts_and_show_speak_chinese(settings: Settings, engine: Engine,
                                                 sandbox: SandboxServer) -> None:
    v, rid = conflicted(settings, engine, sandbox)
    env = env_of(settings, sandbox)
    # a record discarded by an operator, a membership waiting on it, and one waiting to be sent
    with engine.begin() as conn:
        held = f.volunteer(conn)
        team = f.org_tree(conn)["team"]
        f.membership(conn, held, team)
        f.volunteer(conn)
    res = zh(env, "outbox", "discard", f"volunteer:{held}", "--reason", "核对身份后再发", "--yes")
    assert res.exit_code == 0 and "已丢弃 1 条记录（志愿者 1；" in res.output, res.output

    res = zh(env, "outbox", "list")
    assert res.exit_code == 0, res.output
    assert "发件箱：" in res.output and "已被操作员丢弃" in res.output and "按状态：" in res.output
    res = zh(env, "outbox", "list", "--state", "nonsense")
    assert res.exit_code == 2 and "用法错误：" in res.output and "未知状态 'nonsense'" in res.output

    res = zh(env, "conflicts", "list")
    assert res.exit_code == 0 and "冲突：按筛选条件显示" in res.output and "待处理冲突按字段：" in res.output
    with engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM conflict WHERE state = 'open' ORDER BY id")).scalars().first()
    res = zh(env, "conflicts", "show", str(cid))
    assert res.exit_code == 0 and f"冲突 {cid}：待处理" in res.output and "基线" in res.output, res.output
    res = zh(env, "conflicts", "show", "999")
    assert res.exit_code == 2 and "没有冲突 999" in res.output

    res = zh(env, "show", "volunteer", str(v))
    assert res.exit_code == 0, res.output
    assert "身份证号码和手机号已脱敏" in res.output and "发件箱：" in res.output and "冲突：" in res.output
    assert f"志愿者 {v}" in res.output and "出生日期" in res.output and "birth_date" not in res.output  # in words
    res = zh(env, "show", "volunteer", "999999")
    assert res.exit_code == 1 and "未找到：" in res.output and "省平台中没有 volunteer 999999" in res.output
    res = zh(env, "show", "volunteer", str(v), "--show-personal-data")
    assert res.exit_code == 2 and "--show-personal-data 需要 --reason" in res.output

    # in English, the same commands read as before; the errors' own text (JSON, logs) is English in any language
    res = CliRunner().invoke(app, ["--lang", "en", "conflicts", "show", "999"], env=env)
    assert res.exit_code == 2 and "usage error: no conflict 999" in res.output
    with use_language("zh-CN"):
        with engine.connect() as conn, pytest.raises(OperatorUsageError) as caught:
            get_conflict(conn, 999)
        assert str(caught.value) == "no conflict 999" and caught.value.text() == "没有冲突 999"


def test_platform_check_and_status_speak_chinese(engine: Engine, db_url: str) -> None:
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING", "COLUMNS": "200",
           "REGSYNC_HASH_KEY": "a-test-key-long-enough-0123456789"}
    res = zh(env, "platform", "check")
    assert res.exit_code == 0 and "省平台检查：映射 reference" in res.output and "没有错误" in res.output, res.output
    res = zh(env, "platform", "check", "--mapping", "legacy")  # none of its tables exists here
    assert res.exit_code == 1 and "级别" in res.output and "错误" in res.output and "platform install 将拒绝安装" \
        in res.output, res.output
    res = zh(env, "platform", "status")
    assert res.exit_code == 0 and "映射 reference 已安装且为最新" in res.output, res.output


def test_a_configuration_error_and_warning_speak_chinese(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"REGSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "REGSYNC_CONFIG": "",
            "REGSYNC_LOG_LEVEL": "WARNING"}
    res = zh({**base, "REGSYNC_BATCH_SIZE": "9999"}, "outbox", "list")
    assert res.exit_code == 2 and "配置错误：" in res.output and "应在 1 到 500 之间" in res.output, res.output
    config = tmp_path / "regsync.toml"
    config.write_text("[relay]\nbatch_sise = 10\n", encoding="utf-8")
    res = zh({**base, "REGSYNC_BATCH_SZE": "1"}, "outbox", "list", "--config", str(config))
    assert res.exit_code == 2 and "配置警告：" in res.output and "不对应任何设置" in res.output, res.output
    assert "未知设置 relay.batch_sise" in res.output and "是否想写 relay.batch_size" in res.output
    res = zh(base, "outbox", "list")  # no store yet
    assert res.exit_code == 1 and "没有本地库" in res.output, res.output
    # the exception itself is English (what the logs carry), translated only where it is shown
    monkeypatch.setenv("REGSYNC_BATCH_SIZE", "9999")
    with use_language("zh-CN"):
        with pytest.raises(ConfigError) as caught:
            load_settings(None)
        assert "must be between 1 and 500" in str(caught.value) and "应在 1 到 500 之间" in caught.value.text()
