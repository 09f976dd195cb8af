"""Fixtures of the report tests: a seeded store (both engines) and snapshot files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from reports.seed import seed

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
#: Set to 1 to (re)write the snapshot files instead of comparing with them.
UPDATE_ENV = "REGSYNC_UPDATE_SNAPSHOTS"


#: Debian's Chromium, which the browser tests drive (``.ci/chromium.sh`` installs it).
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Any:
    """A headless Chromium (Playwright driving Debian's build) for a module's tests; the test fails, not skips,
    when Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/chromium.sh)")
    from playwright.sync_api import sync_playwright  # only the browser tests need Playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports and worklists are read in Chinese, the default (tests/conftest.py makes English the language of the
    other tests); a test of the English ones says so (``--lang en``, :func:`regsync.i18n.use_language`)."""
    monkeypatch.setenv("REGSYNC_LANG", "zh-CN")


@pytest.fixture
def seeded(engine: Engine) -> tuple[Engine, dict[str, Any]]:
    """A migrated store (SQLite or PostgreSQL) holding the runs and discrepancies of :mod:`reports.seed`."""
    return engine, seed(engine)


@pytest.fixture
def snapshot() -> Callable[[str, str], None]:
    """``snapshot(name, text)``: ``text`` must equal ``tests/snapshots/<name>`` exactly; with
    ``REGSYNC_UPDATE_SNAPSHOTS=1`` the file is written instead."""

    def check(name: str, text: str) -> None:
        path = SNAPSHOTS / name
        if os.environ.get(UPDATE_ENV) == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no snapshot {path}; run with {UPDATE_ENV}=1 to write it, then review it")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"{name} differs from its snapshot (review, then {UPDATE_ENV}=1 to accept)"

    return check


#: Where the browser test saves its screenshots (git-ignored); listed at the end of the test run.
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SAVED_ARTIFACTS: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the screenshots the browser test saved, so a reviewer can open them."""
    if SAVED_ARTIFACTS:
        terminalreporter.write_sep("-", "HTML report screenshots")
        for path in SAVED_ARTIFACTS:
            terminalreporter.write_line(str(path))
