"""No English sentence reaches the Chinese report (issue 15, point 1): the HTML page's visible text and its charts'
labels, and the text report, hold Chinese words, numbers, codes (``INVALID_PHONE``, ids) and the commands to run,
nothing else; in English (``--lang en``) the same report speaks English. A missing organization line reads 未归属,
never "none"."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import Engine, text

from regsync.i18n import use_language
from regsync.reports.export import export_run
from regsync.reports.labels import details_text
from reports.seed import LAST_RECONCILE, NOW, SYNC_RUN

#: Latin words the Chinese report may hold: the program's and the chart library's names, the commands it points
#: to (``regsync report export 5 --format csv``, ``regsync report worklist``) and the report format's name.
ALLOWED = {"regsync", "report", "export", "format", "csv", "worklist", "Apache", "ECharts"}
_WORD = re.compile(r"[A-Za-z][A-Za-z_]{2,}")


def english_words(text_: str) -> set[str]:
    """Latin words of three letters or more that are not codes (all capitals), ids (with digits) or allowed."""
    found = set()
    for token in re.findall(r"[A-Za-z0-9_.\-]+", text_):
        if any(c.isdigit() for c in token) or token.isupper():
            continue
        found |= {w for w in _WORD.findall(token) if w not in ALLOWED and not w.isupper()}
    return found


class _Visible(HTMLParser):
    """The page's text as a reader sees it (no script, no style), and its attributes people read."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self.specs: list[str] = []
        self._spec = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
            self._spec = a.get("type") == "application/json"
        for name in ("placeholder", "aria-label", "title", "data-template", "data-sort-title"):
            if a.get(name):
                self.parts.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
            self._spec = False

    def handle_data(self, data: str) -> None:
        if self._spec:
            self.specs.append(data)
        elif not self._skip:
            self.parts.append(data)


def _chart_words(spec: dict) -> list[str]:  # type: ignore[type-arg]
    """The words a chart shows: titles, series (legend) names, category axes."""
    out = [spec["title"]["text"], spec["title"].get("subtext", "")]
    out += [s["name"] for s in spec["series"]]
    for axis in ("xAxis", "yAxis"):
        for a in spec[axis] if isinstance(spec[axis], list) else [spec[axis]]:
            out += [str(x) for x in a.get("data", [])] + [a.get("name", "")]
    return out


@pytest.fixture
def plain_reason(seeded) -> Engine:
    """The seed's one English reason (``never pushed: …``, what a reconcile wrote) as the code alone."""
    engine, _ = seeded
    with engine.begin() as conn:
        conn.execute(text("UPDATE discrepancy SET details = :d WHERE run_id = :r AND details LIKE :like"),
                     {"d": json.dumps({"name": "张*", "reason": "INVALID_PHONE"}, ensure_ascii=False),
                      "r": LAST_RECONCILE, "like": "%never pushed%"})
    return engine


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN])
def test_the_chinese_html_report_holds_no_english(plain_reason: Engine, run_id: int) -> None:
    out = io.StringIO()
    with use_language("zh-CN"):
        export_run(plain_reason, run_id, "html", out, now=NOW)
    page = _Visible()
    page.feed(out.getvalue())
    visible = re.sub(r"\{\w+\}", "", " ".join(page.parts))  # a template's placeholders are not words
    # the sync run's error is the run's own words (what the flow recorded), quoted as it is
    assert english_words(visible) == ({"phone", "refused"} if run_id == SYNC_RUN else set()), visible
    charts = [w for s in page.specs for w in _chart_words(json.loads(s))]
    assert english_words(" ".join(charts)) == set(), charts
    assert "none" not in visible and ("未归属" in visible) == (run_id == LAST_RECONCILE)
    if run_id == LAST_RECONCILE:
        assert "全国系统缺少" in visible and "未归属" in " ".join(charts)


def test_the_chinese_text_report_holds_no_english(plain_reason: Engine) -> None:
    for run_id in (LAST_RECONCILE, SYNC_RUN):
        out = io.StringIO()
        with use_language("zh-CN"):
            export_run(plain_reason, run_id, "text", out, now=NOW, width=160)
        words = english_words(out.getvalue())
        # the sync run's error is the run's own words (what the flow recorded), quoted as it is
        assert words <= ({"phone", "refused"} if run_id == SYNC_RUN else set()), (run_id, words)


def test_the_english_report_speaks_english(plain_reason: Engine) -> None:
    out = io.StringIO()
    with use_language("en"):
        export_run(plain_reason, LAST_RECONCILE, "html", out, now=NOW)
    page = out.getvalue()
    assert '<html lang="en">' in page
    assert "Discrepancies by reason" in page and "unassigned" in page and "missing in the registry" in page
    assert not re.search(r"[\u4e00-\u9fff]", page.split("<main>", 1)[0])  # the header: no Chinese


def test_a_reconcile_summary_reads_as_words() -> None:
    from regsync.reports.labels import summary_items

    summary = {  # the shape a reconcile records (flows/reconcile.py, as_summary), from a demo run
        "run_id": 3, "status": "success", "kinds": ["org", "volunteer", "service_record"], "region": None,
        "repair": False, "discrepancies": {"missing_in_registry": 177}, "by_entity": {"volunteer": {"orphan": 1}},
        "by_city": {"2301": 46}, "by_org_line": {"regional": 126}, "repaired": {}, "queued": {},
        "compared": {"org": {"local": 302, "pairs": 302, "registry": 302}},
        "compared_total": {"local": 302, "pairs": 302, "records": 604, "registry": 302},
        "hours": {"total": {}}, "feed_restarted": False, "seconds": 9.2, "unknown_types": {},
    }
    with use_language("zh-CN"):
        items = dict(summary_items(summary))
    assert items == {
        "比对记录数": "志愿服务组织 省平台 302, 双方均有 302, 全国系统 302",
        "比对记录总数": "省平台 302 · 双方均有 302 · 两侧记录合计 604 · 全国系统 302",
        "执行修复": "否", "用时": "9 秒", "比对的记录类型": "志愿服务组织、志愿者、志愿服务记录",
        "变更流已重新开始": "否",
    }


def test_a_field_mismatchs_v11_codes_read_as_words() -> None:
    """Issue 16 (fixB), point 1: the reports' details name the v1.1 codes (and statuses) with the words ``show``
    uses (domain/words.py CODE_WORDS): 通用培训 / 岗位培训, not GENERAL / POST."""
    details = {"local": {"trainingType": "GENERAL", "mode": "IN_PERSON", "status": "ACTIVE"},
               "registry": {"trainingType": "POST", "mode": "ONLINE", "status": "REVOKED"}}
    with use_language("zh-CN"):
        text_zh = details_text(["trainingType", "mode", "status"], details)
    assert "省平台 通用培训 / 全国系统 岗位培训" in text_zh and "面授" in text_zh and "远程/线上" in text_zh
    assert "有效" in text_zh and "已撤销" in text_zh
    assert not re.search(r"GENERAL|POST|IN_PERSON|ONLINE|ACTIVE|REVOKED", text_zh)
    with use_language("en"):
        assert "platform general training / registry on-the-job training" in details_text(["trainingType"], details)
