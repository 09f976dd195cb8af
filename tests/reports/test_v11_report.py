"""The report and the worklist of a reconcile of the four v1.1 kinds (issue 16, points 1 and 7), on every engine,
against the sandbox over real HTTP: the new kinds' discrepancies appear with their words (Chinese) and the
organization responsible (a training record's training's org, a volunteer's commendation's volunteer's org, an
evaluation's evaluator); the hours view gains the training hours (the platform's accepted training records' class
hours beside the registry's trainingHours) and the star levels by city and line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import text

import v11util as v
from regsync.db.session import suppress_outbox
from regsync.flows.reconcile import run_reconcile
from regsync.i18n import use_language
from regsync.reports.export import export_run
from regsync.reports.worklist import open_worklist
from regsync.reports.worklist_render import write_worklist
from test_reconcile import portal, rid, world


def test_v11_report_and_worklist_in_chinese(settings, engine, sandbox, tmp_path: Path) -> None:
    w = world(engine, settings)
    ids = v.add_v11(engine, w)
    v.push_v11(settings, engine)
    t, vols = w["tree"], w["vols"]
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE training_record SET class_hours = 250 WHERE id = :i"),
                     {"i": ids["training_record"]})
        v.evaluation(conn, w["activity"], vols[1], t["team"])  # missing in the registry
        conn.execute(text("UPDATE organization SET name = '南岗区青年志愿服务队' WHERE id = :i"), {"i": t["team"]})
    national = portal(sandbox, "commendations", {
        "subjectType": "VOLUNTEER", "subjectId": rid(engine, "volunteer", vols[3]), "title": "全国优秀志愿者",
        "scheme": None, "tier": None, "year": None, "awardedOn": "2026-06-05", "issuer": "中央文明办",
        "documentName": "表彰决定", "documentNumber": "文明办〔2026〕8号", "content": None})
    code, summary = run_reconcile(settings, engine=engine,
                                  kinds=["volunteers", "service_records", "training_records", "commendations",
                                         "evaluations"])
    assert code == 0, summary
    assert summary["by_entity"] == {"commendation": {"missing_locally": 1},
                                    "evaluation": {"missing_in_registry": 1},
                                    "training_record": {"field_mismatch": 1}}, summary["listed"]
    hours = summary["hours"]
    total = hours["total"]
    # the platform's accepted training records: 2.50 h (the local record); the registry's trainingHours: 3.00 h
    assert (total["local_training_hours"], total["registry_training_hours"]) == (250, 300)
    assert (total["training_hours_diff"], total["volunteers_training_differing"]) == (-50, 1)
    assert hours["by_city"]["2301"]["local_training_hours"] == 250
    # every person served in the team (the specialized line): 3.00 h each, no star yet
    assert hours["by_city_line"] == {"2301": {"specialized": hours["by_org_line"]["specialized"]}}
    assert hours["by_city_line"]["2301"]["specialized"]["stars_local"] == [4, 0, 0, 0, 0, 0]

    out = io.StringIO()
    export_run(engine, summary["run_id"], "text", out, width=160)
    report = out.getvalue()
    assert "培训学时：省平台已通过的培训记录学时 2.50 小时 · 全国系统培训学时 3.00 小时 · 相差 -0.50 小时" in report
    assert "各市培训学时" in report and "各市、各组织条线的星级志愿者" in report
    assert "培训记录" in report and "表彰" in report and "评价" in report
    assert "培训学时：省平台 2.50 小时 / 全国系统 3.00 小时" in report  # the training record's field, in words
    page = io.StringIO()
    export_run(engine, summary["run_id"], "html", page)
    html = page.getvalue()
    assert 'id="table-stars-city-line"' in html and "全国系统培训学时" in html
    rows = io.StringIO()
    export_run(engine, summary["run_id"], "json", rows)
    exported = json.loads(rows.getvalue())
    by_entity = {x["entity"]: x for x in exported["discrepancies"]}
    assert by_entity["commendation"]["registry_id"] == national["id"]
    assert exported["hours"]["by_city_line"]["2301"]["specialized"]["volunteers"] == 4

    with use_language("zh_CN"):
        written = write_worklist(open_worklist(engine), "xlsx", tmp_path / "worklist.xlsx")
    ws = load_workbook(written[0][0]).active
    header = [c.value for c in ws[1]]
    items: dict[str, dict[str, Any]] = {}
    for r in ws.iter_rows(min_row=2):
        row = dict(zip(header, [c.value for c in r], strict=True))
        items[row["记录类型"]] = row
    assert set(items) >= {"培训记录", "表彰", "评价"}, set(items)
    # who must fix each: the training's org, the commended volunteer's org (their membership), the evaluator
    assert {items[k]["责任组织"] for k in ("培训记录", "表彰", "评价")} == {"南岗区青年志愿服务队"}
    assert items["培训记录"]["名称"] == "李明 — 应急救护培训 (2026-04-01)"
    assert items["评价"]["名称"].startswith("王芳 — 社区环境清洁活动")
    assert all(items[k]["条线"] == "专项组织" and items[k]["城市代码"] == "2301"
               for k in ("培训记录", "表彰", "评价"))
