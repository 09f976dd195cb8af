"""The HTML report stays one self-contained file of at most 1.5 MB (issue 15, point 3), at the demo's scale and with
a large run; its charts come from the vendored ECharts build, whose version and hash are checked; plotly is gone.

The large run has every discrepancy kind in every city of the province, each kind many times more rows than a table
shows, with long details: the tables are capped (and say how many more there are and where they are), the details
cut, so the page's size does not grow with the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine, text

from regsync.domain.hours import hours_summary
from regsync.domain.regions import CITIES
from regsync.i18n import use_language
from regsync.reports.data import DISCREPANCY_KINDS
from regsync.reports.export import HTML_ROWS_PER_KIND, export_run
from regsync.reports.render_html import DETAILS_CHARS, ECHARTS_SHA256, ECHARTS_VERSION, PAGE_LIMIT, echarts_js
from reports.seed import LAST_RECONCILE, NOW

#: Rows of each kind in the large run: well over what a table shows.
PER_KIND = 3 * HTML_ROWS_PER_KIND


def large_run(engine: Engine) -> int:
    """A reconcile run with :data:`PER_KIND` rows of each discrepancy kind over all cities and lines, 2 KB of
    details each, and an hours view of every city."""
    at = dt.datetime(2026, 11, 28, 18, 5)
    hours_rows = [(c.code, line, 100_000 + i, 99_000 + i, 99_500) for i, c in enumerate(CITIES)
                  for line in ("regional", "specialized", None)]
    with engine.begin() as conn:
        run_id = int(conn.execute(text(
            "INSERT INTO run (kind, started_at, finished_at, status, summary) VALUES ('reconcile', :s, :f, "
            "'partial', :summary) RETURNING id"),
            {"s": dt.datetime(2026, 11, 28, 18), "f": dt.datetime(2026, 11, 28, 19),
             "summary": json.dumps({"compared": {"volunteers": 1_200_000}, "repair": True,
                                    "hours": hours_summary(hours_rows)})}).scalar_one())
        rows = []
        for kind in DISCREPANCY_KINDS:
            for i in range(PER_KIND):
                city = CITIES[i % len(CITIES)].code
                details = {"name": "志愿者" * 3, "reason": "很长的说明" * 400,
                           "local": {"name": "某某区学雷锋志愿服务大队" * 20}, "registry": {"name": "某某" * 50}}
                rows.append({"run": run_id, "entity": "volunteer", "kind": kind, "local_id": i,
                             "registry_id": f"V{city}{i:08d}", "fields": '["name"]',
                             "details": json.dumps(details, ensure_ascii=False), "city": city,
                             "line": ("regional", "specialized", None)[i % 3], "at": at})
        conn.execute(text(
            "INSERT INTO discrepancy (run_id, entity, kind, local_id, registry_id, fields, details, city_code, "
            "org_line, action, action_state, detected_at) VALUES (:run, :entity, :kind, :local_id, :registry_id, "
            ":fields, :details, :city, :line, 'push', 'queued', :at)"), rows)
    return run_id


def page_of(engine: Engine, run_id: int, lang: str = "zh-CN") -> bytes:
    out = io.StringIO()
    with use_language(lang):
        export_run(engine, run_id, "html", out, now=NOW)
    return out.getvalue().encode("utf-8")


def test_the_demo_scale_page_is_small(seeded) -> None:
    engine, _ = seeded
    for lang in ("zh-CN", "en"):
        page = page_of(engine, LAST_RECONCILE, lang)
        assert len(page) <= PAGE_LIMIT, len(page)
        assert len(page) < 800_000  # the ECharts build (664 KB) and a few KB of report


def test_a_large_run_stays_under_the_limit_and_says_where_the_rest_is(seeded) -> None:
    engine, _ = seeded
    run_id = large_run(engine)
    page = page_of(engine, run_id)
    assert len(page) <= PAGE_LIMIT, f"{len(page):,} bytes"
    assert len(page) > PAGE_LIMIT * 0.6  # the capped tables are full: the limit is tested near its edge
    html = page.decode("utf-8")
    # every kind's table capped, with how many more and where they are
    for kind in DISCREPANCY_KINDS:
        table = html.split(f'id="table-{kind}"', 1)[1].split("</table>", 1)[0]
        assert table.count("<tr>") == 1 + HTML_ROWS_PER_KIND, kind
        more = html.split(f'id="more-{kind}"', 1)[1].split("</p>", 1)[0]
        assert f"此类还有 {PER_KIND - HTML_ROWS_PER_KIND:,} 条未在此列出" in more
        assert f"regsync report export {run_id} --format csv" in more and "待办清单" in more
    assert 'id="cap-notice"' in html
    # details cut: no cell longer than the cap
    cells = re.findall(r'<td class="details">(.*?)</td>', html)
    assert cells and max(len(c) for c in cells) <= DETAILS_CHARS
    # the figures count them all: every city in the chart
    spec = json.loads(html.split('id="spec-by_city">', 1)[1].split("</script>", 1)[0])
    assert len(spec["yAxis"]["data"]) == len(CITIES)
    assert sum(sum(v or 0 for v in s["data"]) for s in spec["series"]) == PER_KIND * len(DISCREPANCY_KINDS)
    assert {s["name"] for s in spec["series"]} == {"地区组织", "专项组织", "未归属"}


def test_the_vendored_echarts_is_the_one_named() -> None:
    assets = files("regsync.reports").joinpath("assets")
    data = assets.joinpath("echarts.common.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == ECHARTS_SHA256
    assert f'version="{ECHARTS_VERSION}"' in data.decode("utf-8")
    assert data.startswith(b"\n/*\n* Licensed to the Apache Software Foundation (ASF)")
    assert "Apache License" in assets.joinpath("LICENSE").read_text(encoding="utf-8")
    assert "Apache ECharts" in assets.joinpath("NOTICE").read_text(encoding="utf-8")
    readme = assets.joinpath("README.md").read_text(encoding="utf-8")
    assert ECHARTS_SHA256 in readme and f"echarts {ECHARTS_VERSION}" in readme and "npm pack" in readme
    assert "</script" not in str(echarts_js())


def test_plotly_is_no_longer_used() -> None:
    for module in ("render_html.py", "charts.py", "templates/report.js", "templates/report.html.j2"):
        assert "plotly" not in files("regsync.reports").joinpath(module).read_text(encoding="utf-8").lower()
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert "plotly" not in pyproject.read_text(encoding="utf-8").lower()
