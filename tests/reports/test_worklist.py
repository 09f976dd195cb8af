"""Worklists (issue 15, point 2) on every engine: who must fix a record, the items across runs (new, carried over,
resolved), the spreadsheet read back with openpyxl, a city's file holding only its city, the CSV for Excel, the
personal-data audit, and the command line.

The world: two cities (2301 哈尔滨, 2302 齐齐哈尔), both org lines in 2301 with a grassroots team managed by a
community station, a district brigade in 2302; volunteers in the team, in no org (residence 230103 → the 2301
brigade? no: 230103 has none, so the city corps), and in no org in 2302; failed pushes and the latest reconcile's
discrepancies, among them a record only the registry holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db.attribution import Attributor, Subject
from regsync.db.worklist import item_id
from regsync.i18n import use_language
from regsync.reports.data import ReportUsageError
from regsync.reports.worklist import PERSONAL_DATA_ACTION, open_worklist
from regsync.reports.worklist_render import write_worklist
from reports.seed import discrepancy, run

NOW = dt.datetime(2026, 12, 1, 2, 0)
PHONE = "13912345678"


def _fail(conn: Any, entity: str, local_id: int, code: str, state: str = "failed") -> None:
    n = conn.execute(text("UPDATE outbox SET state = :s, last_code = :c, last_error = :e WHERE entity = :k "
                          "AND local_id = :i"),
                     {"s": state, "c": code, "e": f"{entity} {local_id}: refused, phone {PHONE}", "k": entity,
                      "i": local_id}).rowcount
    assert n >= 1


def build(engine: Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        t = f.org_tree(conn)  # all in 230102 (道里区), city 2301
        conn.execute(text("UPDATE organization SET region_code = '230100' WHERE id IN (:a, :b)"),
                     {"a": t["city"], "b": t["detachment"]})
        conn.execute(text("UPDATE organization SET region_code = '230000' WHERE id = :a"), {"a": t["province"]})
        qq_city = f.org(conn, "CITY_CORPS", region_code="230200", name="齐齐哈尔市志愿服务总队")
        qq_brigade = f.org(conn, "DISTRICT_BRIGADE", qq_city, region_code="230202", name="龙沙区志愿服务大队",
                           contact_name="赵强", contact_phone="13600001111")
        in_team = f.volunteer(conn, name="李明", phone="1391234567")  # a digit short
        f.membership(conn, in_team, t["team"])
        alone = f.volunteer(conn, name="王芳", region_code="230103")
        qq_alone = f.volunteer(conn, name="张伟", region_code="230202")
        left = f.volunteer(conn, name="刘洋", region_code="230202")
        f.membership(conn, left, t["team"], left_on=dt.date(2025, 1, 1))  # left: in no org now
        act = f.activity(conn, t["team"])
        sr = f.service_record(conn, in_team, act, t["team"])
        _fail(conn, "volunteer", in_team, "INVALID_PHONE")
        _fail(conn, "volunteer", qq_alone, "INVALID_ID_NUMBER")
        _fail(conn, "service_record", sr, "PARENT_FAILED", state="blocked")
        _fail(conn, "org", qq_brigade, "SOME_NEW_CODE")
        rec = run(conn, "reconcile", NOW - dt.timedelta(hours=1), 5, "success", {})
        discrepancy(conn, rec, "missing_in_registry", "volunteer", local_id=alone, at=NOW)
        discrepancy(conn, rec, "field_mismatch", "activity", local_id=act, fields=["title"], at=NOW)
        discrepancy(conn, rec, "missing_locally", "volunteer", registry_id="VOL0000000000042",
                    details={"region_code": "230202"}, city=None, line=None, at=NOW)
        discrepancy(conn, rec, "missing_in_registry", "volunteer", local_id=left, action="push", state="queued",
                    at=NOW)  # the relay's: not work for a person
    return {"tree": t, "qq_city": qq_city, "qq_brigade": qq_brigade, "in_team": in_team, "alone": alone,
            "qq_alone": qq_alone, "left": left, "activity": act, "service_record": sr, "reconcile": rec}


def next_reconcile(engine: Engine, at: dt.datetime) -> int:
    """A new reconcile run finding again what the latest one found (a new period of the worklists)."""
    with engine.begin() as conn:
        last = conn.execute(text("SELECT max(id) FROM run WHERE kind = 'reconcile'")).scalar_one()
        rec = run(conn, "reconcile", at, 5, "success", {})
        conn.execute(text("INSERT INTO discrepancy (run_id, kind, entity, local_id, registry_id, fields, details, "
                          "city_code, org_line, action, action_state, detected_at) SELECT :r, kind, entity, local_id, "
                          "registry_id, fields, details, city_code, org_line, action, action_state, :at FROM "
                          "discrepancy WHERE run_id = :last"), {"r": rec, "at": at, "last": last})
    return rec


def test_attribution_names_the_responsible_org_on_both_lines(engine: Engine) -> None:
    w = build(engine)
    t = w["tree"]
    with engine.connect() as conn:
        got = Attributor().attribute(conn, [
            Subject("volunteer", w["in_team"]), Subject("volunteer", w["alone"]), Subject("volunteer", w["left"]),
            Subject("service_record", w["service_record"]), Subject("org", t["community"]),
            Subject("volunteer", None, "230202"), Subject("volunteer", None, None), Subject("activity", 10 ** 9)])
    team, alone, left, sr, station, registry_only, nowhere, gone = got
    assert (team.how, team.line, team.org and team.org.id) == ("membership", "specialized", t["team"])
    assert (team.county_code, team.city_code) == ("230102", "2301")
    assert team.county_org and team.county_org.id == t["unit"]
    assert team.city_org and team.city_org.id == t["detachment"]
    assert team.station and team.station.id == t["community"]  # the dual structure: the team's station named
    assert team.org.contact_name == "王芳" and team.org.contact_phone == "13900001111"
    # no org in 230103: no brigade there, so the city corps of 2301, on the regional line
    assert (alone.how, alone.line, alone.org and alone.org.id, alone.city_code) == (
        "residence", "regional", t["city"], "2301")
    assert (left.how, left.org and left.org.id) == ("residence", w["qq_brigade"])  # a left membership is no org
    assert (sr.how, sr.org and sr.org.id) == ("activity", t["team"])
    assert (station.line, station.county_org and station.county_org.id, station.city_org and station.city_org.id) \
        == ("regional", t["district"], t["city"])
    assert (registry_only.how, registry_only.org and registry_only.org.id, registry_only.county_code) == (
        "region", w["qq_brigade"], "230202")
    assert (nowhere.line, nowhere.org, nowhere.city_code) == ("regional", None, None)  # a line, never "none"
    assert gone.line == "regional" and gone.org is None


def _rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    wb = load_workbook(path)
    ws = wb.active
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, [c.value for c in r], strict=True)) for r in ws.iter_rows(min_row=2)]
    return header, rows


def test_worklist_xlsx_read_back_split_by_city_and_state_across_runs(engine: Engine, tmp_path: Path) -> None:
    w = build(engine)
    with use_language("zh_CN"):
        wl = open_worklist(engine, now=NOW)
        assert (wl.run.gen, wl.run.new, wl.run.carried, wl.run.resolved) == (1, 7, 0, 0)
        written = write_worklist(wl, "xlsx", tmp_path, split=True)
    assert sorted(p.name for p, _ in written) == ["worklist-2301-20261201.xlsx", "worklist-2302-20261201.xlsx"]
    header, rows = _rows(tmp_path / "worklist-2301-20261201.xlsx")
    assert header[:4] == ["状态", "条目编号", "首次发现", "城市"] and "原因" in header and "处理办法" in header
    assert all(r["城市代码"] == "2301" for r in rows) and len(rows) == 4  # only that city's
    by_name = {r["名称"]: r for r in rows}
    phone_item = by_name["李明"]
    assert phone_item["原因"] == "手机号格式不正确" and phone_item["代码"] == "INVALID_PHONE"
    assert phone_item["状态"] == "新增" and phone_item["首次发现"] == "2026-12-01"
    assert phone_item["省平台键"] == str(w["in_team"]) and isinstance(phone_item["省平台键"], str)  # text, not a number
    assert phone_item["身份证号"].startswith("230102********") and phone_item["手机号"] == "******4567"
    assert phone_item["联系电话"] == "139****1111" and phone_item["联系人"] == "王芳"
    assert phone_item["社区工作站"] and phone_item["条线"] == "专项组织"
    assert phone_item["条目编号"] == item_id("failure", "volunteer", w["in_team"], None, "INVALID_PHONE")
    _, qq = _rows(tmp_path / "worklist-2302-20261201.xlsx")
    assert {r["城市代码"] for r in qq} == {"2302"} and len(qq) == 3
    unknown = next(r for r in qq if r["代码"] == "SOME_NEW_CODE")
    assert "SOME_NEW_CODE" in unknown["原因"]  # a code the catalog does not know is named
    registry_only = next(r for r in qq if r["全国系统编号"] == "VOL0000000000042")
    assert registry_only["责任组织"] == "龙沙区志愿服务大队" and registry_only["区县"] == "230202 龙沙区"
    wb = load_workbook(tmp_path / "worklist-2301-20261201.xlsx")
    ws = wb.active
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:X5"
    assert ws.column_dimensions["G"].width >= 20 and ws.cell(2, 2).number_format == "@"

    # the second run: the phone fixed (its failure gone), a new failure; the others carried over
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'sent', last_code = NULL WHERE entity = 'volunteer' AND "
                          "local_id = :i"), {"i": w["in_team"]})
        _fail(conn, "volunteer", w["left"], "NOT_OWNER")
    next_reconcile(engine, NOW + dt.timedelta(hours=20))  # a new period
    with use_language("zh_CN"):
        wl2 = open_worklist(engine, city="2301", now=NOW + dt.timedelta(days=1))
        assert (wl2.run.gen, wl2.run.new, wl2.run.carried, wl2.run.resolved) == (2, 1, 6, 1)
        write_worklist(wl2, "xlsx", tmp_path / "again.xlsx")
    _, rows2 = _rows(tmp_path / "again.xlsx")
    states = {r["名称"]: (r["状态"], r["首次发现"]) for r in rows2}
    assert states["李明"] == ("已解决", "2026-12-01")
    assert states["王芳"] == ("延续", "2026-12-01")
    assert all(r["城市代码"] == "2301" for r in rows2)
    next_reconcile(engine, NOW + dt.timedelta(hours=44))
    _, all_rows = _rows(write_worklist(open_worklist(engine, now=NOW + dt.timedelta(days=2)), "xlsx",
                                       tmp_path / "third.xlsx")[0][0])
    assert "李明" not in {r["名称"] for r in all_rows}  # resolved in run 2: no longer listed
    assert {r["名称"]: r["状态"] for r in all_rows}["刘洋"] == "延续"


def test_worklist_csv_keeps_chinese_and_codes_as_text(engine: Engine, tmp_path: Path) -> None:
    w = build(engine)
    with use_language("zh_CN"):
        out = write_worklist(open_worklist(engine, org=str(w["tree"]["team"]), now=NOW), "csv",
                             tmp_path / "team.csv")
    raw = out[0][0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {r["名称"] for r in rows} >= {"李明"} and all("2301" in r["城市代码"] for r in rows)
    assert rows[0]["城市代码"] == '="2301"' and rows[0]["省平台键"].startswith('="')
    assert PHONE not in raw.decode("utf-8-sig")  # masked, the refusal's text too


def test_personal_data_needs_a_reason_and_is_audited(engine: Engine, tmp_path: Path) -> None:
    w = build(engine)
    with pytest.raises(ReportUsageError):
        open_worklist(engine, show_personal_data=True, reason="  ")
    with pytest.raises(ReportUsageError):
        open_worklist(engine, city="23x1")
    with pytest.raises(ReportUsageError):
        open_worklist(engine, org="999999")
    wl = open_worklist(engine, city="2301", show_personal_data=True, reason="核对 13912345678 的电话",
                       actor="tester", fmt="csv", now=NOW)
    path = write_worklist(wl, "csv", tmp_path / "clear.csv")[0][0]
    body = path.read_text(encoding="utf-8-sig")
    assert "13900001111" in body and "1391234567" in body  # the contact's and the person's, in clear
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, action, target, reason, details FROM audit WHERE id = :i"),
                             {"i": wl.audit_id}).one()
    assert (audit.actor, audit.action, audit.target) == ("tester", PERSONAL_DATA_ACTION, "worklist:city=2301:org=*")
    assert "13912345678" not in audit.reason and json.loads(audit.details)["format"] == "csv"
    assert w["in_team"]


def test_report_worklist_command(engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    build(engine)
    monkeypatch.setenv("REGSYNC_DATABASE_URL", db_url)
    runner = CliRunner()
    res = runner.invoke(app, ["--lang", "zh-CN", "report", "worklist", "--format", "html", "--city", "2302",
                              "--output", str(tmp_path / "qq.html")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "qq.html").read_text(encoding="utf-8")
    assert "齐齐哈尔" in page and "哈尔滨" not in page and "龙沙区志愿服务大队" in page
    bad = runner.invoke(app, ["report", "worklist", "--show-personal-data", "--output", str(tmp_path)])
    assert bad.exit_code == 2
    bad = runner.invoke(app, ["report", "worklist", "--format", "pdf", "--output", str(tmp_path)])
    assert bad.exit_code == 2


def test_a_scheme_commendation_refused_not_earned_goes_to_the_city_corps_with_both_figures(
        engine: Engine, tmp_path: Path) -> None:
    """Issue 16 (fixB), point 4: a scheme commendation (PROVINCIAL_ANNUAL) the registry refused NOT_EARNED was the
    annual scheme's approval, not the volunteer's team's doing: its item goes to the top of the regional line, the
    city corps (no province-level regional org in §4.1), and its 说明 gives the registry's figure (from its message)
    and the platform's. Another refusal of the same volunteer's commendation stays with the team."""
    import factories11 as f11

    w = build(engine)
    t = w["tree"]
    with engine.begin() as conn:
        person = f.volunteer(conn, name="孙丽")
        f.membership(conn, person, t["team"])
        act = f.activity(conn, t["team"])
        for day in (1, 2):  # 2 × 30.00 h in 2025 on the platform
            f.service_record(conn, person, act, t["team"], hours=3000, day=day,
                             service_date=dt.date(2025, 5, day), starts_at=dt.datetime(2025, 5, day, 1),
                             ends_at=dt.datetime(2025, 5, day, 4))
        scheme = f11.commendation(conn, volunteer_id=person, title="2025年度志愿服务爱心奖", scheme="PROVINCIAL_ANNUAL",
                                  tier="CARE", year=2025, awarded_on=dt.date(2026, 3, 1))
        other = f11.commendation(conn, volunteer_id=person, title="优秀志愿者")
        message = ("CARE needs 50.00 hours of service in 2025; the registry has 45.00 hours of ACCEPTED service "
                   "records of that year")
        for cid in (scheme, other):
            conn.execute(text("UPDATE outbox SET state = 'failed', last_code = 'NOT_EARNED', last_error = :e "
                              "WHERE entity = 'commendation' AND local_id = :i"),
                         {"i": cid, "e": json.dumps([{"field": "tier", "code": "NOT_EARNED", "message": message}])})
    with use_language("zh_CN"):
        out = write_worklist(open_worklist(engine, now=NOW), "csv", tmp_path / "all.csv")
    rows = list(csv.DictReader(io.StringIO(out[0][0].read_bytes().decode("utf-8-sig"))))
    items = {r["省平台键"].strip('="'): r for r in rows if r["代码"] == "NOT_EARNED"}
    refused, kept = items[str(scheme)], items[str(other)]
    with engine.connect() as conn:
        corps, team = (conn.execute(text("SELECT name FROM organization WHERE id = :i"), {"i": i}).scalar_one()
                       for i in (t["city"], t["team"]))
    assert refused["责任组织"] == corps and refused["条线"] == "地区组织" and refused["城市代码"] == '="2301"'
    assert refused["社区工作站"] == ""  # not the team's community station
    assert "省级年度嘉许审批" in refused["说明"] and "爱心奖" in refused["说明"]
    assert "全国系统统计该年度 45.00" in refused["说明"] and "省平台 60.00" in refused["说明"]
    assert kept["责任组织"] == team and "45.00" not in kept["说明"]  # not a scheme commendation: as before
