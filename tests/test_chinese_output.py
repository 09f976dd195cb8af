"""No English sentence reaches the Chinese output (issue 15, "What it must show"): the summaries people read in a
terminal, made in Chinese (the default) from real stores and from summaries of each command's shape."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine
from typer.testing import CliRunner

from i18nutil import english_sentences
from regsync import i18n
from regsync.console import demo_summary, summaries
from regsync.console.cli import app
from regsync.console.helptext import translate_help
from regsync.db.flowstate import record_flow_result
from regsync.service.status import set_paused
from regsync.settings import ConfigError, load_settings
from test_demo_summary import happy, portal


def test_the_detector_finds_english_and_spares_codes() -> None:
    assert english_sentences("done: every record is in the registry") == ["every record is in the registry"]
    assert english_sentences("被拒收：INVALID_ID_NUMBER，见 `regsync outbox list --code INVALID_PHONE` 与 "
                             "/tmp/regsync-demo/local.db，service_record:12，REGSYNC_HEALTH_MAX_FAILING_S") == []


def printed(fn: Callable[..., None], *args: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=200)
    monkeypatch.setattr(summaries, "Console", lambda *a, **k: console)
    monkeypatch.setattr(demo_summary, "Console", lambda *a, **k: console)
    fn(*args)
    return buf.getvalue()


SYNC = {"run_id": 7, "status": "partial", "seconds": 3.2, "pushed": {"volunteers": 3}, "linked": {},
        "unchanged": {}, "failed": {"volunteers": 1}, "deferred": {}, "pulled": {"volunteers": 4}, "merged": {},
        "adopted": {}, "created_locally": {}, "registry_owned": {}, "conflicts": {}, "ended_locally": {},
        "inbound": {"changes": 4, "pages": 1, "echoes": 1, "repeats": 0, "stale": 0, "unknown_types": {"x": 1}},
        "transferred_out": {"volunteers": 1}, "reconcile_due": True, "reconcile_reason": "CURSOR_EXPIRED",
        "paused": ["outbound"], "failed_by_code": {"INVALID_PHONE": 1}, "still_failed": {"volunteers": 1},
        "error": None}
ADOPT = {"dry_run": False, "run_id": 3, "status": "ok", "seconds": 1.0, "read": {}, "linked": {}, "ambiguous": {},
         "unmatched": {}, "local_unlinked": {}, "duplicates": 2, "other_store": {"volunteers": 1},
         "decisions": {"name:registry": 1, "phone:local": 2},
         "ambiguous_matches": [{"entity": "volunteer", "registry_id": "V1",
                                "details": {"local_ids": [1, 2], "registry_ids": ["V1"]}}]}
GENERATE = {"counts": {"volunteers": 10}, "dirt": {"phone_bad": 1}, "mapping": "legacy",
            "out_of_scope": {"volunteers": 1}, "soft_deleted": {}}


@pytest.mark.parametrize(("fn", "arg"), [
    (summaries.print_sync_summary, SYNC), (summaries.print_adopt_summary, ADOPT),
    (summaries.print_generate_summary, GENERATE), (demo_summary.print_demo_summary, happy()),
    (demo_summary.print_demo_summary, portal(happy())),
], ids=["sync", "adopt", "generate", "demo", "demo-portal"])
def test_summaries_in_chinese(fn: Callable[..., None], arg: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with i18n.use_language("zh-CN"):
        text = printed(fn, arg, monkeypatch=monkeypatch)
    assert english_sentences(text) == [], text
    with i18n.use_language("en"):  # the same summary in English does have sentences: the check can fail
        assert english_sentences(printed(fn, arg, monkeypatch=monkeypatch))


def test_status_in_chinese_from_a_real_store(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSYNC_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("REGSYNC_LANG")
    record_flow_result(engine, "inbound", False, "invalid_client: the client is not registered")
    set_paused(engine, ["outbound"], True, reason="演练", actor="值班员")
    result = CliRunner().invoke(app, ["status"])  # Chinese: the default
    assert result.exit_code == 3, result.output  # no daemon has run on this store, inbound failing
    assert "不健康" in result.stdout and "没有守护进程在运行" in result.stdout and "已由 值班员 暂停" in result.stdout
    # the registry's own error is quoted as it came (invalid_client…), nothing of regsync's own is English
    assert english_sentences(result.stdout.replace("the client is not registered", "")) == [], result.stdout
    english = CliRunner().invoke(app, ["--lang", "en", "status"])
    assert "UNHEALTHY" in english.stdout and english_sentences(english.stdout)


def test_a_configuration_error_in_chinese(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSYNC_BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert str(caught.value).startswith("relay.batch_size (REGSYNC_BATCH_SIZE): must be between 1 and 500")
    with i18n.use_language("zh-CN"):
        text = caught.value.text()
    assert text == "relay.batch_size (REGSYNC_BATCH_SIZE)：应在 1 到 500 之间（registry-api.md §3），实际为 0"
    config = tmp_path / "regsync.toml"
    config.write_text("[relay]\nbatch_sise = 10\n")
    monkeypatch.delenv("REGSYNC_BATCH_SIZE")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(config))
    with i18n.use_language("zh-CN"):
        text = caught.value.text()
    assert "未知设置 relay.batch_sise" in text and "是否想写 relay.batch_size" in text
    assert english_sentences(text) == [], text


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        out += _paths(sub, (*prefix, name))
    return out


#: What Click and Typer themselves print around the help, in English whatever the language.
LIBRARY_WORDS = ("Show this message and exit.", "Install completion for the current shell.",
                 "Show completion for the current shell, to copy it or customize the installation.")


def test_every_commands_help_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    monkeypatch.setenv("COLUMNS", "400")  # one line per paragraph: the library's own sentences are not cut
    with i18n.use_language("zh-CN"):
        command = translate_help(typer.main.get_command(app))
        paths = _paths(command)
        assert len(paths) > 30
        for path in paths:
            monkeypatch.setattr("typer.testing._get_command", lambda _app: command)
            result = CliRunner().invoke(app, [*path, "--help"], prog_name="regsync")
            assert result.exit_code == 0, (path, result.output)
            text = "\n".join(line for line in result.output.splitlines() if "Usage:" not in line)
            for words in LIBRARY_WORDS:
                text = text.replace(words, "")
            assert english_sentences(text) == [], (path, result.output)
    english_command = translate_help(typer.main.get_command(app))
    monkeypatch.setattr("typer.testing._get_command", lambda _app: english_command)
    english = CliRunner().invoke(app, ["status", "--help"])
    assert "The service at a glance" in english.output  # REGSYNC_LANG=en here: the same tree, English again


@pytest.mark.parametrize(("status", "zh", "en"), [("success", "：成功", ": succeeded"),
                                                  ("abandoned", "：已中断", ": abandoned"),
                                                  ("partial", "：部分", ": partial")])
def test_the_sync_headings_run_status_in_words(status: str, zh: str, en: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 (fixB), point 2: the sync's heading says the run's status in words (同步（第 3 次运行）：成功), never
    the code ``success``."""
    summary = {**SYNC, "run_id": 3, "status": status}
    with i18n.use_language("zh-CN"):
        text = printed(summaries.print_sync_summary, summary, monkeypatch=monkeypatch)
    assert "（第 3 次运行）" + zh in text and f"：{status}" not in text, text
    with i18n.use_language("en"):
        assert en in printed(summaries.print_sync_summary, summary, monkeypatch=monkeypatch)
