"""The HTML report in a real headless browser (Debian's Chromium, driven by Playwright): it renders its charts and
tables, sorts and filters, runs no script from the data, logs no console error and makes no request but the page's
own file. Screenshots at 1440 px (the page, and its charts), in Chinese and in English, are saved under
``tests/artifacts/`` (named at the end of the test run). The charts are Apache ECharts: each has an instance, a canvas
of non-zero size and ink on it.

Chromium comes from the system's packages (``.ci/chromium.sh`` installs it); the test fails, not skips, without
it.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from regsync.i18n import use_language
from regsync.reports.export import export_run
from reports.conftest import ARTIFACTS, SAVED_ARTIFACTS
from reports.seed import LAST_RECONCILE, NOW, discrepancy

CHARTS = ("by_city", "by_kind", "trend", "hours_gap", "stars")


def visible_cells(page: Any, table: str, column: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{column}].textContent.trim())")


#: Per chart: whether ECharts holds an instance for its div, and the size of the canvas it drew in.
_CHART_STATE = """div => {
  const chart = echarts.getInstanceByDom(div);
  const canvas = div.querySelector("canvas");
  return {instance: !!chart, drawn: div.getAttribute("data-drawn") === "1",
          width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0,
          series: chart ? chart.getOption().series.length : 0};
}"""
#: The words of the discrepancy-by-reason chart's category axis, as ECharts holds them.
_KIND_AXIS = "div => echarts.getInstanceByDom(div).getOption().yAxis[0].data"
#: How many non-blank pixels the chart's canvas holds (a chart drawn, not an empty frame).
_INKED = """div => {
  const c = div.querySelector("canvas");
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) n++;
  }
  return n;
}"""


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_html_report_in_chromium(seeded, browser: Any, db_url: str, tmp_path: Path, lang: str) -> None:
    engine, _ = seeded
    with engine.begin() as conn:  # data that tries to be markup or script
        discrepancy(conn, LAST_RECONCILE, "orphan", "activity", local_id=9, city="2310",
                    details={"title": "<img src=x onerror=alert(1)><script>alert(2)</script>"}, at=NOW)
    out = io.StringIO()
    with use_language(lang):
        export_run(engine, LAST_RECONCILE, "html", out, now=NOW)
    page_file = tmp_path / "report.html"
    page_file.write_text(out.getvalue(), encoding="utf-8")
    url = page_file.as_uri()
    zh = lang == "zh-CN"

    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1, locale=lang)
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
        assert page.get_attribute("html", "lang") == lang

        # charts: an ECharts instance each, drawn on a canvas of non-zero size with something on it
        for name in CHARTS:
            div = page.locator(f"#chart-{name}")
            state = div.evaluate(_CHART_STATE)
            assert state["instance"] and state["drawn"], (name, state)
            assert state["width"] > 300 and state["height"] > 200, (name, state)
            assert state["series"] >= 1, (name, state)
            assert div.evaluate(_INKED) > 2_000, name
        kinds = page.locator("#chart-by_kind").evaluate(_KIND_AXIS)
        assert ("全国系统缺少" in kinds and "上级记录缺失" in kinds) if zh else \
            ("missing in the registry" in kinds and "parent missing" in kinds), kinds
        cities = page.locator("#chart-by_city").evaluate(_KIND_AXIS)
        assert cities[-1] in ("哈尔滨市", "齐齐哈尔市") and ("城市不明" if zh else "city unknown") in cities, cities

        # fits a desktop width; the screenshot shows the page as it opens
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440
        ARTIFACTS.mkdir(exist_ok=True)
        engine_name = db_url.split(":", 1)[0].split("+", 1)[0].replace("mysql", "mariadb")
        shot = ARTIFACTS / f"report-run{LAST_RECONCILE}-{engine_name}-{lang}-1440.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(page_file, ARTIFACTS / f"report-run{LAST_RECONCILE}-{engine_name}-{lang}.html")
        SAVED_ARTIFACTS.append(shot)
        assert shot.stat().st_size > 50_000
        charts_shot = ARTIFACTS / f"report-run{LAST_RECONCILE}-{engine_name}-{lang}-charts.png"
        page.locator("#charts").screenshot(path=str(charts_shot))
        SAVED_ARTIFACTS.append(charts_shot)

        # tables: sort by a number column, both ways; filter as one types
        first = "全国系统缺少" if zh else "missing in the registry"
        assert visible_cells(page, "table-kinds", 0)[0] == first
        total = page.locator("#table-kinds thead th", has_text="合计" if zh else "total")
        total.click()
        assert [int(x) for x in visible_cells(page, "table-kinds", 1)] == sorted(
            int(x) for x in visible_cells(page, "table-kinds", 1))
        assert total.get_attribute("aria-sort") == "ascending"
        total.click()
        assert visible_cells(page, "table-kinds", 0)[0] == first
        assert total.get_attribute("aria-sort") == "descending"
        page.fill("input[data-filter='table-kinds']", "不一致" if zh else "differ")
        assert sorted(visible_cells(page, "table-kinds", 0)) == (
            ["字段不一致", "服务时长不一致"] if zh else ["fields differ", "hours differ"])
        assert page.text_content("#table-kinds-shown") == ("显示 2 条" if zh else "2 shown")
        page.fill("input[data-filter='table-kinds']", "")
        assert len(visible_cells(page, "table-kinds", 0)) == 7

        ids = page.locator("#table-missing_in_registry thead th").first
        ids.click()
        ids.click()
        assert visible_cells(page, "table-missing_in_registry", 0) == ["11", "10", "9"]
        page.fill("input[data-filter='table-missing_in_registry']", "大庆 专项组织" if zh else "大庆 specialized")
        assert visible_cells(page, "table-missing_in_registry", 0) == ["11"]

        local = page.locator("#table-hours-city thead tr:last-child th",
                             has_text="省平台（小时）" if zh else "platform h")
        local.click()
        local.click()
        assert visible_cells(page, "table-hours-city", 0)[0] == "哈尔滨市"
        assert visible_cells(page, "table-hours-city", 2)[0] == "2,030.50"

        # the data stayed text
        assert dialogs == []
        assert "<img src=x onerror=alert(1)>" in page.text_content("#table-orphan")
        assert page.locator("#table-orphan img").count() == 0

        # masked: no live value in the page; records named where the data allows
        assert "139****8901" in page.text_content("#table-hours_mismatch")
        assert "张*" in page.text_content("#table-missing_in_registry")
        assert "none" not in page.text_content("#table-kinds thead")

    finally:
        context.close()

    assert console == []
    assert requests == [url], f"the page made requests: {[r for r in requests if r != url]}"
