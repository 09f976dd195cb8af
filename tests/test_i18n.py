"""Simplified Chinese by default (issue 15, point 1): the language chosen, and every marked message translated."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from regsync import i18n
from regsync.console.cli import app
from i18nutil import catalog, extracted, placeholders


def test_every_marked_message_has_a_chinese_translation() -> None:
    cat = catalog("zh_CN")
    missing, fuzzy, broken = [], [], []
    for msgid, where in sorted(extracted().items()):
        entry = cat.get(msgid)
        if entry is None or not (entry.string if isinstance(entry.string, str) else entry.string[0]):
            missing.append(f"{msgid!r} ({where[0]})")
        elif entry.fuzzy:
            fuzzy.append(msgid)
        else:
            translated = entry.string if isinstance(entry.string, str) else entry.string[0]
            if placeholders(translated) != placeholders(msgid):
                broken.append(f"{msgid!r} → {translated!r}")
    assert not missing, f"{len(missing)} messages without a Chinese translation:\n" + "\n".join(missing)
    assert not fuzzy, f"fuzzy (not used until reviewed): {fuzzy}"
    assert not broken, "placeholders differ:\n" + "\n".join(broken)


def test_the_extraction_finds_the_marked_messages() -> None:
    # the test above would pass on nothing: the extraction must see the messages marked in the sources
    found = extracted()
    assert any("words.py" in w for w in found["volunteer"])
    assert len(found) >= 20


@pytest.mark.parametrize(("raw", "expected"), [
    ("zh-CN", "zh_CN"), ("zh_CN", "zh_CN"), ("zh", "zh_CN"), ("zh-Hans", "zh_CN"), ("zh_CN.UTF-8", "zh_CN"),
    ("en", "en"), ("en-US", "en"), ("en_GB.UTF-8", "en"), ("C", "en"),
])
def test_language_names(raw: str, expected: str) -> None:
    assert i18n.normalize_language(raw) == expected


def test_unknown_language_is_refused() -> None:
    with pytest.raises(i18n.UnknownLanguage, match="zh-CN"):
        i18n.normalize_language("fr")


def test_chinese_by_default_english_by_env_or_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    with i18n.use_language("zh-CN"):
        assert i18n.gettext("volunteer") == "志愿者"
    assert i18n.set_language(None) == "zh_CN"
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    assert i18n.set_language(None) == "en"
    assert i18n.gettext("volunteer") == "volunteer"
    assert i18n.set_language("zh-CN") == "zh_CN"
    assert i18n.gettext("volunteer") == "志愿者"
    assert i18n.html_lang() == "zh-CN"


def test_the_command_line_refuses_an_unknown_language() -> None:
    result = CliRunner().invoke(app, ["--lang", "fr", "status"])
    assert result.exit_code == 2
    assert "zh-CN" in result.output
