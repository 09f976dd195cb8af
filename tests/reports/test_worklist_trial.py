"""Worklists after a manager's trial on the demo's data, on every engine: one item per thing to fix (a failing
record's ``missing_in_registry`` dropped, records blocked behind a refused one counted on its item), a period per
reconcile run, a city's counts in its file, an unknown city refused, details in words, a duplicate person's other row
named.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db.worklist import item_id
from regsync.i18n import use_language
from regsync.reports.data import ReportUsageError
from regsync.reports.worklist import counts_of, iter_work_items, open_worklist
from regsync.reports.worklist_render import write_worklist
from reports.seed import discrepancy
from reports.test_worklist import NOW, _fail, build, next_reconcile


def _block(conn: Any, entity: str, local_id: int, parent: tuple[str, int], code: str = "PARENT_FAILED") -> None:
    n = conn.execute(text("UPDATE outbox SET state = 'blocked', last_code = :c, last_error = :e, blocked_entity = :pe, "
                          "blocked_local_id = :pi WHERE entity = :k AND local_id = :i"),
                     {"c": code, "e": f"waits for {parent[0]} {parent[1]}, which the registry refused",
                      "pe": parent[0], "pi": parent[1], "k": entity, "i": local_id}).rowcount
    assert n >= 1


def _items(engine: Engine, wl: Any, city: str | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return {it.item_id: it for it in iter_work_items(conn, wl, city=city)}


def blocked_world(engine: Engine) -> dict[str, Any]:
    """build()'s world, plus: the refused volunteer's membership and service record blocked behind them, an activity
    of the refused brigade blocked behind it and a service record behind that activity (a chain), both volunteers'
    missing_in_registry discrepancies, and a record blocked behind one an operator discarded (not refused)."""
    w = build(engine)
    with engine.begin() as conn:
        mem = conn.execute(text("SELECT id FROM membership WHERE volunteer_id = :v"), {"v": w["in_team"]}).scalar_one()
        _block(conn, "membership", mem, ("volunteer", w["in_team"]))
        _block(conn, "service_record", w["service_record"], ("volunteer", w["in_team"]))
        qq_act = f.activity(conn, w["qq_brigade"], region_code="230202")
        qq_sr = f.service_record(conn, w["qq_alone"], qq_act, w["qq_brigade"])
        _block(conn, "activity", qq_act, ("org", w["qq_brigade"]))
        _block(conn, "service_record", qq_sr, ("activity", qq_act))
        lone = f.volunteer(conn, name="陈静", region_code="230202")
        _block(conn, "volunteer", lone, ("org", w["tree"]["team"]), code="PARENT_DISCARDED")
        for vid in (w["in_team"], w["qq_alone"]):
            discrepancy(conn, w["reconcile"], "missing_in_registry", "volunteer", local_id=vid, at=NOW)
        discrepancy(conn, w["reconcile"], "missing_in_registry", "service_record", local_id=w["service_record"],
                    at=NOW)
    return {**w, "membership": mem, "qq_activity": qq_act, "qq_sr": qq_sr, "lone": lone}


def test_one_item_per_thing_to_fix_blocked_records_counted_on_the_refused_one(engine: Engine) -> None:
    w = blocked_world(engine)
    with use_language("zh_CN"):
        wl = open_worklist(engine, now=NOW)
        items = _items(engine, wl)
    keys = {(it.code, it.platform_key) for it in items.values()}
    # the refused volunteer: its failure item only (no missing_in_registry), its two blocked records counted on it
    phone = items[item_id("failure", "volunteer", w["in_team"], None, "INVALID_PHONE")]
    assert "另有 2 条记录等待此项" in phone.detail
    assert ("missing_in_registry", str(w["in_team"])) not in keys
    assert ("missing_in_registry", str(w["qq_alone"])) not in keys
    assert ("missing_in_registry", str(w["alone"])) in keys  # not failing: its discrepancy stays
    assert not any(it.code == "PARENT_FAILED" for it in items.values())
    # a chain: a service record behind an activity behind the refused brigade, both counted on the brigade
    brigade = items[item_id("failure", "org", w["qq_brigade"], None, "SOME_NEW_CODE")]
    assert "另有 2 条记录等待此项" in brigade.detail
    # blocked behind a record an operator discarded (not refused): an item of its own, saying what it waits for
    lone = items[item_id("failure", "volunteer", w["lone"], None, "PARENT_DISCARDED")]
    assert lone.detail == f"等待志愿服务组织（省平台键 {w['tree']['team']}）进入全国系统"
    assert wl.run.new == len(items) == 7  # build()'s 7, less the blocked service record, plus the discarded one's


def test_details_quote_only_the_registry_and_name_the_other_row(engine: Engine) -> None:
    w = build(engine)
    with engine.begin() as conn:
        other = f.volunteer(conn, name="王芳", region_code="230103")
        discrepancy(conn, w["reconcile"], "duplicate_person", "volunteer", local_id=w["alone"],
                    details={"local_ids": [w["alone"], other], "linked": []}, at=NOW)
        _fail(conn, "volunteer", other, "LOCAL_DATA_INVALID")
        _block(conn, "service_record", w["service_record"], ("activity", w["activity"]))  # activity not failing
    with use_language("zh_CN"):
        wl = open_worklist(engine, now=NOW)
        items = _items(engine, wl)
    refused = items[item_id("failure", "volunteer", w["in_team"], None, "INVALID_PHONE")]
    assert "全国系统答复" not in refused.detail  # a code with words: the reason says it, no English quote
    unknown = items[item_id("failure", "org", w["qq_brigade"], None, "SOME_NEW_CODE")]
    assert unknown.detail.startswith("全国系统答复：")  # a code regsync has no words for: the registry's answer
    own = items[item_id("failure", "volunteer", other, None, "LOCAL_DATA_INVALID")]
    assert own.detail == "regsync 发送前检查发现，未发送到全国系统"
    blocked = items[item_id("failure", "service_record", w["service_record"], None, "PARENT_FAILED")]
    assert blocked.detail == f"等待志愿服务活动（省平台键 {w['activity']}）进入全国系统"
    for it in (own, blocked):
        assert "全国系统答复" not in it.detail and not re.search(r"[A-Za-z]{3,}", it.detail.replace("regsync", ""))
    dup = items[item_id("discrepancy", "volunteer", w["alone"], None, "duplicate_person")]
    assert dup.detail == f"另一条记录：省平台键 {other}"
    with use_language("en"):
        en = _items(engine, wl)
    assert en[dup.item_id].detail == f"The other row: platform key {other}"
    assert en[unknown.item_id].detail.startswith("The registry's answer: ")


def _states(engine: Engine, wl: Any) -> dict[str, str]:
    """Every item of ``wl``'s period (whatever its filter) → its state."""
    with use_language("en"):
        return {i: it.status for i, it in _items(engine, dataclasses.replace(wl, city=None, org_id=None)).items()}


def test_a_period_is_one_reconcile_run(engine: Engine, tmp_path: Path) -> None:
    w = build(engine)
    first = open_worklist(engine, now=NOW)
    states = _states(engine, first)
    # again, seconds later, for the same reconcile: another format, a city, a split: the same period and states
    for kw in ({"city": "2301", "fmt": "html"}, {"fmt": "csv"}, {}):
        again = open_worklist(engine, now=NOW + dt.timedelta(seconds=30), **kw)
        assert (again.run.gen, again.run.new, again.run.carried, again.run.resolved) == (1, 7, 0, 0)
        assert _states(engine, again) == states
        write_worklist(again, "csv", tmp_path, split=True)
    assert set(states.values()) == {"new"}
    # still the same reconcile: a failure fixed and one appearing are reflected, judged against the period before
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'sent', last_code = NULL WHERE entity = 'volunteer' AND "
                          "local_id = :i"), {"i": w["in_team"]})
        _fail(conn, "volunteer", w["left"], "NOT_OWNER")
    fixed = item_id("failure", "volunteer", w["in_team"], None, "INVALID_PHONE")
    appeared = item_id("failure", "volunteer", w["left"], None, "NOT_OWNER")
    same = open_worklist(engine, now=NOW + dt.timedelta(hours=1))
    now_states = _states(engine, same)
    assert same.run.gen == 1 and fixed not in now_states and now_states[appeared] == "new"
    # a new reconcile run: the next period; what is still there is carried over, what went is resolved
    next_reconcile(engine, NOW + dt.timedelta(hours=20))
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'sent', last_code = NULL WHERE entity = 'volunteer' AND "
                          "local_id = :i"), {"i": w["left"]})
    second = open_worklist(engine, now=NOW + dt.timedelta(days=1))
    assert (second.run.gen, second.run.new, second.run.carried, second.run.resolved) == (2, 0, 6, 1)
    s2 = _states(engine, second)
    assert s2[appeared] == "resolved" and set(s2.values()) == {"carried over", "resolved"}
    # the failure comes back within period 2: as it was at the period's start (carried over), counts unchanged
    with engine.begin() as conn:
        _fail(conn, "volunteer", w["left"], "NOT_OWNER")
    back = open_worklist(engine, city="2302", now=NOW + dt.timedelta(days=1, minutes=5))
    assert (back.run.gen, back.run.new, back.run.carried, back.run.resolved) == (2, 0, 7, 0)
    assert _states(engine, back)[appeared] == "carried over"


def test_a_citys_counts_are_the_citys(engine: Engine, db_url: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    build(engine)  # 7 items: 4 in 2301, 3 in 2302
    monkeypatch.setenv("REGSYNC_DATABASE_URL", db_url)
    runner = CliRunner()
    res = runner.invoke(app, ["--lang", "zh-CN", "report", "worklist", "--format", "html", "--city", "2301",
                              "--output", str(tmp_path / "hrb.html")])
    assert res.exit_code == 0, res.output
    assert "第 1 期：新增 4 条，延续 0 条，已解决 0 条" in res.output
    page = (tmp_path / "hrb.html").read_text(encoding="utf-8")
    assert re.search(r"待处理<b>4</b>", page) and re.search(r"新增<b>4</b>", page)
    res = runner.invoke(app, ["--lang", "zh-CN", "report", "worklist", "--format", "csv", "--city", "2302",
                              "--output", str(tmp_path / "qq.csv")])
    assert res.exit_code == 0, res.output
    assert "第 1 期：新增 3 条" in res.output  # the same period: the city's own figures
    rows = list(csv.DictReader(io.StringIO((tmp_path / "qq.csv").read_text(encoding="utf-8-sig"))))
    assert len(rows) == 3
    wl = open_worklist(engine, city="2302", now=NOW)
    assert counts_of(wl) == {"new": 3, "carried": 0, "resolved": 0}
    assert (wl.run.new, wl.run.carried) == (7, 0)  # the period's, province-wide


def test_an_unknown_city_or_org_is_a_usage_error(engine: Engine, db_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    build(engine)
    for city in ("9999", "3101", "2399", "999901"):
        with pytest.raises(ReportUsageError):
            open_worklist(engine, city=city)
    open_worklist(engine, city="230102")  # a county of the province: its city
    monkeypatch.setenv("REGSYNC_DATABASE_URL", db_url)
    runner = CliRunner()
    out = tmp_path / "out"
    out.mkdir()
    res = runner.invoke(app, ["--lang", "zh-CN", "report", "worklist", "--city", "9999", "--output", str(out)])
    assert res.exit_code == 2 and "本省没有城市 9999" in res.output
    res = runner.invoke(app, ["--lang", "en", "report", "worklist", "--org", "987654321", "--output", str(out)])
    assert res.exit_code == 2 and "no organization has the platform key 987654321" in res.output
    assert not list(out.iterdir())  # nothing written
