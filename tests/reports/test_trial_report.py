"""A manager's trial of the report in Chinese (the default), on every engine (the ``seeded`` fixture): the hours the
registry does not have at all shown beside the linked comparison, in words; a record waiting for its parent not
called a refusal; the worklist named before the CSV data export."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import Engine, text

from regsync.reports.charts import build_charts
from regsync.reports.data import load_report
from reports.seed import LAST_RECONCILE, NOT_IN_REGISTRY, NOW
from reports.test_reports import export


def _set_missing(engine: Engine, missing: Any) -> None:
    """Replace run 5's ``not_in_registry`` (``...``: leave it out, as runs made before it was counted)."""
    with engine.begin() as conn:
        summary = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                          {"i": LAST_RECONCILE}).scalar_one())
        summary["hours"].pop("not_in_registry")
        if missing is not ...:
            summary["hours"]["not_in_registry"] = missing
        conn.execute(text("UPDATE run SET summary = :s WHERE id = :i"),
                     {"s": json.dumps(summary), "i": LAST_RECONCILE})


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_the_hours_view_shows_the_hours_the_registry_does_not_have(seeded, fmt: str) -> None:
    engine, _ = seeded
    out = re.sub(r"\s+", "", export(engine, LAST_RECONCILE, fmt, width=400))
    # the comparison says whom it counts; beside it what the registry lacks, and the platform's hours in all
    assert "已与全国系统关联的志愿者（逐人比对）：7名" in out
    assert ("全国系统完全没有的：3名全国系统中没有的志愿者（从未推送或被拒绝）的12条已认可志愿服务记录，"
            "共45.75小时") in out
    assert "省平台已认可的服务时长合计：2,828.25小时" in out  # 2,782.50 linked + 45.75 not in the registry
    if fmt == "html":  # a card of its own beside "hours: platform − registry"
        assert "全国系统中没有的时长" in out and "全国系统中没有的3名志愿者的12条志愿服务记录" in out


def test_the_hours_gap_chart_shows_the_hours_the_registry_does_not_have(seeded) -> None:
    engine, _ = seeded
    chart = build_charts(load_report(engine, LAST_RECONCILE, now=NOW))["hours_gap"]
    names = [s["name"] for s in chart["series"]]
    assert names == ["时长：省平台 − 全国系统（已关联的志愿者）", "全国系统中没有的时长（全国系统中没有的志愿者）",
                     "时长不一致的志愿者"]
    cities = chart["xAxis"]["data"]
    lost = dict(zip(cities, chart["series"][1]["data"], strict=True))
    assert lost["哈尔滨市"] == 30.75 and lost["双鸭山市"] == 15.0  # 2305 has no linked volunteer: still shown
    assert sum(lost.values()) == NOT_IN_REGISTRY["local_hours"] / 100
    assert len(chart["series"][0]["data"]) == len(chart["series"][2]["data"]) == len(cities)


@pytest.mark.parametrize("missing", [..., {"volunteers": "3"}, {"volunteers": 1, "service_records": 2,
                                                                 "local_hours": 3, "by_city": {"2301": []}}])
def test_a_run_that_did_not_count_them_says_so_never_zero(seeded, missing: Any) -> None:
    engine, _ = seeded
    _set_missing(engine, missing)
    report = load_report(engine, LAST_RECONCILE, now=NOW)
    assert report.hours is not None and "not_in_registry" not in report.hours
    assert len(build_charts(report)["hours_gap"]["series"]) == 2
    for fmt in ("text", "html"):
        out = re.sub(r"\s+", "", export(engine, LAST_RECONCILE, fmt, width=400))
        assert "全国系统中没有的志愿者的服务时长：本次运行未统计" in out
        assert "全国系统完全没有的" not in out and "合计" not in out.split("服务时长：省平台与全国系统", 1)[1][:400]


def test_the_html_points_people_to_the_worklist_before_the_csv(seeded) -> None:
    engine, _ = seeded
    page = export(engine, LAST_RECONCILE, "html", rows_per_kind=2)
    notice = page.split('id="cap-notice">', 1)[1].split("</p>", 1)[0]
    assert notice.index("待办清单中（regsync report worklist") < notice.index("--format csv")
    assert "全部记录见 CSV 导出" not in page and "供其他系统使用的数据导出" in notice
    more = page.split('id="more-missing_in_registry">', 1)[1].split("</p>", 1)[0]
    assert more.index("regsync report worklist") < more.index("--format csv") and "数据导出" in more


def test_a_duplicates_details_name_the_rows_once_without_separators() -> None:
    from regsync.i18n import use_language
    from regsync.reports.labels import details_text

    details = {"id_number": "230100********4775", "linked": ["VOL0000000002290", "VOL0000000002290"],
               "local_ids": [2292, 3075]}
    with use_language("en"):
        text = details_text([], details)
    assert "platform rows 2292、3075" in text and text.count("VOL0000000002290") == 1 and "2,292" not in text
    with use_language("zh-CN"):
        assert "全国系统记录 VOL0000000002290" in details_text([], details)
