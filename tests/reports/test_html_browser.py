"""The HTML report in a real headless browser (Debian's Chromium, driven by Playwright): it renders its charts and
tables, sorts and filters, runs no script from the data, logs no console error and makes no request but the page's
own file. A screenshot at 1440 px is saved under ``tests/artifacts/`` (named at the end of the test run).

Chromium comes from the system's packages (``.ci/chromium.sh`` installs it); the test fails, not skips, without
it.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from regsync.reports.export import export_run
from reports.conftest import ARTIFACTS, SAVED_ARTIFACTS
from reports.seed import LAST_RECONCILE, NOW, discrepancy

CHROMIUM = Path("/usr/bin/chromium")
CHARTS = ("by_kind", "by_city", "by_line", "trend", "hours_by_city", "stars")


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


def visible_cells(page: Any, table: str, column: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{column}].textContent.trim())")


def test_html_report_in_chromium(seeded, browser: Any, db_url: str, tmp_path: Path) -> None:
    engine, _ = seeded
    with engine.begin() as conn:  # data that tries to be markup or script
        discrepancy(conn, LAST_RECONCILE, "orphan", "activity", local_id=9, city="2310",
                    details={"title": "<img src=x onerror=alert(1)><script>alert(2)</script>"}, at=NOW)
    out = io.StringIO()
    export_run(engine, LAST_RECONCILE, "html", out, now=NOW)
    page_file = tmp_path / "report.html"
    page_file.write_text(out.getvalue(), encoding="utf-8")
    url = page_file.as_uri()

    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    requests: list[str] = []
    console: list[str] = []
    dialogs: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "assert") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)

        # charts: every one drawn, with its bars
        for name in CHARTS:
            assert page.locator(f"#chart-{name} .main-svg").count() >= 1, name
            assert page.locator(f"#chart-{name} .barlayer .point path").count() >= 2, name
        bar_labels = page.eval_on_selector_all("#chart-by_kind .ytick text", "ts => ts.map(t => t.textContent)")
        assert "missing_in_registry" in bar_labels and "orphan" in bar_labels

        # fits a desktop width; the screenshot shows the page as it opens
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440
        ARTIFACTS.mkdir(exist_ok=True)
        engine_name = db_url.split(":", 1)[0].split("+", 1)[0].replace("mysql", "mariadb")
        shot = ARTIFACTS / f"report-run{LAST_RECONCILE}-{engine_name}-1440.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(page_file, ARTIFACTS / f"report-run{LAST_RECONCILE}-{engine_name}.html")
        SAVED_ARTIFACTS.append(shot)
        assert shot.stat().st_size > 50_000

        # tables: sort by a number column, both ways; filter as one types
        assert visible_cells(page, "table-kinds", 0)[0] == "missing_in_registry"
        total = page.locator("#table-kinds thead th", has_text="total")
        total.click()
        assert [int(x) for x in visible_cells(page, "table-kinds", 1)] == sorted(
            int(x) for x in visible_cells(page, "table-kinds", 1))
        assert total.get_attribute("aria-sort") == "ascending"
        total.click()
        assert visible_cells(page, "table-kinds", 0)[0] == "missing_in_registry"
        assert total.get_attribute("aria-sort") == "descending"
        page.fill("input[data-filter='table-kinds']", "mismatch")
        assert sorted(visible_cells(page, "table-kinds", 0)) == ["field_mismatch", "hours_mismatch"]
        assert page.text_content("#table-kinds-shown") == "2 shown"
        page.fill("input[data-filter='table-kinds']", "")
        assert len(visible_cells(page, "table-kinds", 0)) == 7

        ids = page.locator("#table-missing_in_registry thead th").first
        ids.click()
        ids.click()
        assert visible_cells(page, "table-missing_in_registry", 0) == ["11", "10", "9"]
        page.fill("input[data-filter='table-missing_in_registry']", "大庆 specialized")
        assert visible_cells(page, "table-missing_in_registry", 0) == ["11"]

        stars = page.locator("#table-hours-city thead tr:last-child th", has_text="local h")
        stars.click()
        stars.click()
        assert visible_cells(page, "table-hours-city", 0)[0] == "2301 哈尔滨市"
        assert visible_cells(page, "table-hours-city", 2)[0] == "2,030.50"

        # the data stayed text
        assert dialogs == []
        assert "<img src=x onerror=alert(1)>" in page.text_content("#table-orphan")
        assert page.locator("#table-orphan img").count() == 0

        # masked: no live value in the page
        assert "139****8901" in page.text_content("#table-hours_mismatch")

    finally:
        context.close()

    assert console == []
    assert requests == [url], f"the page made requests: {[r for r in requests if r != url]}"
