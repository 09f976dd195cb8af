"""Runs and reports over the seeded runs, on SQLite and PostgreSQL: listing, counts, trend, masking, the audited
personal data, the HTML page's cap and escaping, and the ``regsync report`` commands end to end."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from regsync.console.cli import app
from regsync.domain.reasons import reason_for
from regsync.i18n import use_language
from regsync.reports.data import ReportUsageError, RunNotFound, get_run, iter_discrepancies, list_runs, load_report
from regsync.reports.export import PERSONAL_DATA_ACTION, audit_personal_data, export_run, export_to_path
from reports.seed import (
    ADOPT_RUN,
    FULL_VALUES,
    LAST_RECONCILE,
    NOW,
    RECONCILE_IDS,
    RUNNING_RUN,
    SYNC_RUN,
    VOLUNTEERS,
    discrepancy,
)
from reports.seed import (
    run as seed_run,
)


def export(engine: Engine, run_id: int, fmt: str, **kw: Any) -> str:
    out = io.StringIO()
    export_run(engine, run_id, fmt, out, now=NOW, **kw)
    return out.getvalue()


def audits(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT actor, action, target, reason, details FROM audit ORDER BY id")).all()


# ------------------------------------------------------------------------------------------------ data
def test_list_runs_newest_first_with_counts_and_kind_filter(seeded) -> None:
    engine, _ = seeded
    runs = list_runs(engine)
    assert [r.id for r in runs] == [7, 6, 5, 4, 3, 2, 1]
    assert {r.id: r.discrepancies for r in runs} == {7: 0, 6: 0, 5: 11, 4: 0, 3: 5, 2: 0, 1: 3}
    assert runs[0].status == "running" and runs[0].finished_at is None and runs[0].duration_s is None
    assert runs[2].started_at.isoformat() == "2026-11-28T02:00:00+08:00"
    assert runs[2].duration_s == 44 * 60 + 15
    assert [r.id for r in list_runs(engine, kind="reconcile", limit=2)] == [RUNNING_RUN, LAST_RECONCILE]
    assert [r.id for r in list_runs(engine, kind="adopt")] == [ADOPT_RUN]
    with pytest.raises(ReportUsageError, match="unknown run kind"):
        list_runs(engine, kind="demo")
    with pytest.raises(ReportUsageError):
        list_runs(engine, limit=0)


def test_unknown_run(seeded) -> None:
    engine, _ = seeded
    with pytest.raises(RunNotFound, match="no run 999"):
        get_run(engine, 999)
    with pytest.raises(RunNotFound):
        export_run(engine, 999, "json", io.StringIO())


def test_counts_add_up_and_trend_covers_the_runs_of_its_kind(seeded) -> None:
    engine, _ = seeded
    report = load_report(engine, LAST_RECONCILE, now=NOW)
    c = report.counts
    assert c.total == 11
    for breakdown in (c.by_kind, c.by_entity, c.by_city, c.by_org_line, c.by_action):
        assert sum(breakdown.values()) == 11
    assert sum(sum(v.values()) for v in c.by_city_line.values()) == 11
    assert c.by_city == {"2301": 4, "2302": 4, "2306": 2, "unknown": 1}
    assert c.by_org_line == {"regional": 4, "specialized": 4, "none": 3}
    assert list(c.by_kind)[:2] == ["missing_in_registry", "missing_locally"]
    assert [(p.run_id, p.total) for p in report.trend] == [(1, 3), (3, 5), (5, 11)]
    assert [p.run_id for p in report.trend] == list(RECONCILE_IDS)
    assert report.hours is not None and report.hours["total"]["volunteers"] == 7
    assert "hours" not in report.head()["run"]["summary"]
    assert load_report(engine, SYNC_RUN, now=NOW).hours is None


@pytest.mark.parametrize("clear", [False, True])
def test_rows_stream_in_small_chunks_with_their_personal_values(seeded, clear: bool) -> None:
    engine, _ = seeded
    with engine.connect() as conn:
        whole = [r.as_dict() for r in iter_discrepancies(conn, LAST_RECONCILE, show_personal_data=clear)]
        # two rows per fetch: the volunteer look-ups run between fetches of the (server-side) cursor
        chunked = [r.as_dict() for r in iter_discrepancies(conn, LAST_RECONCILE, show_personal_data=clear, chunk=2)]
        some = [r.id for r in iter_discrepancies(conn, LAST_RECONCILE, kind="field_mismatch", limit=1)]
    assert chunked == whole and len(whole) == 11
    assert [r["kind"] for r in whole] == sorted(r["kind"] for r in whole)
    assert some == [13]
    phones = {r["phone"] for r in whole if r["phone"]}
    assert phones == ({v[2] for v in VOLUNTEERS} if clear else {"139****8901", "0452-***5678", "158****1234"})


@pytest.mark.parametrize("hours", [
    {"total": {"volunteers": 1}},
    {"unit": "hundredths_of_an_hour", "total": None, "by_city": {}, "by_org_line": {}},
    [1, 2, 3],
    "lots",
])
def test_an_hours_summary_of_another_shape_is_left_out(seeded, hours: object) -> None:
    engine, _ = seeded
    with engine.begin() as conn:
        conn.execute(text("UPDATE run SET summary = :s WHERE id = :i"),
                     {"s": json.dumps({"hours": hours, "compared": {"volunteers": 3}}), "i": LAST_RECONCILE})
    assert load_report(engine, LAST_RECONCILE, now=NOW).hours is None
    for fmt in ("text", "html"):
        assert "没有记录服务时长数据" in export(engine, LAST_RECONCILE, fmt)


# ------------------------------------------------------------------------------------------------ masking
@pytest.mark.parametrize("fmt", ["text", "json", "csv", "html"])
def test_no_full_id_number_or_phone_without_show_personal_data(seeded, fmt: str) -> None:
    engine, _ = seeded
    with engine.begin() as conn:  # a writer that forgot to mask: the report masks again
        discrepancy(conn, LAST_RECONCILE, "field_mismatch", "volunteer", local_id=1, fields=["phone"],
                    details={"local": {"phone": "13945678901"}, "registry": {"idNumber": VOLUNTEERS[0][1]}},
                    at=NOW)
    for run_id in (LAST_RECONCILE, SYNC_RUN):
        out = export(engine, run_id, fmt)
        for value in FULL_VALUES:
            assert value not in out, (fmt, run_id, value)
    out = export(engine, LAST_RECONCILE, fmt)
    assert "139****8901" in out and "230103********1234" in out


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "html"])
def test_show_personal_data_gives_the_live_values_of_the_rows_shown(seeded, fmt: str) -> None:
    engine, seed = seeded
    out = export(engine, LAST_RECONCILE, fmt, show_personal_data=True)
    for _name, number, phone, _region in VOLUNTEERS:
        assert number in out and phone in out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["personal_data"] == "shown"
        rows = {r["id"]: r for r in doc["discrepancies"]}
        assert rows[15]["id_number"] == VOLUNTEERS[0][1] and rows[15]["phone"] == VOLUNTEERS[0][2]
        assert rows[10]["id_number"] is None  # an org has none
        # details stay as the reconcile stored them: masked
        assert rows[12]["details"]["idNumber"] == "230202********2421"


def test_personal_data_is_audited_and_needs_a_reason(seeded, tmp_path: Path) -> None:
    engine, _ = seeded
    target = tmp_path / "run5.csv"
    with pytest.raises(ReportUsageError, match="--reason"):
        export_to_path(engine, LAST_RECONCILE, "csv", target, show_personal_data=True, reason="  ")
    assert audits(engine) == [] and not target.exists()
    with pytest.raises(RunNotFound):
        audit_personal_data(engine, 999, fmt="csv", output="x", reason="why", actor="ops")
    report, audit_id = export_to_path(engine, LAST_RECONCILE, "csv", target, show_personal_data=True,
                                      reason="ticket 4711: call back 13912345678", actor="zhang.wei", now=NOW)
    assert audit_id is not None and report.show_personal_data
    [(actor, action, target_name, reason, details)] = audits(engine)
    assert (actor, action, target_name) == ("zhang.wei", PERSONAL_DATA_ACTION, f"run:{LAST_RECONCILE}")
    assert reason == "ticket 4711: call back 139****5678"
    assert json.loads(details) == {"format": "csv", "output": str(target), "run_id": LAST_RECONCILE,
                                   "volunteer_rows": 6}
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, for spreadsheet programs
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 11 and rows[0]["city_name"] == "大庆市"
    assert {r["id_number"] for r in rows if r["entity"] == "volunteer" and r["local_id"]} == \
        {v[1] for v in VOLUNTEERS}
    # without the flag: no audit row
    export_to_path(engine, LAST_RECONCILE, "csv", target, now=NOW)
    assert len(audits(engine)) == 1


def test_a_failed_export_leaves_no_file(seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = seeded
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "run5.json"
    target.write_text("the earlier report")

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("regsync.reports.export.write_json", boom)
    with pytest.raises(RuntimeError):
        export_to_path(engine, LAST_RECONCILE, "json", target, now=NOW)
    assert target.read_text() == "the earlier report"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["run5.json"]


# ------------------------------------------------------------------------------------------------ HTML
def test_html_caps_the_rows_per_kind_and_says_so(seeded) -> None:
    engine, _ = seeded
    page = export(engine, LAST_RECONCILE, "html", rows_per_kind=2)
    assert 'id="cap-notice"' in page and "每类最多列出前 2 条" in page
    assert "全国系统缺少 · 共 3 条，列出前 2 条" in page
    assert 'id="more-missing_in_registry"' in page and "此类还有 1 条未在此列出" in page
    assert "regsync report export 5 --format csv" in page
    table = page.split('id="table-missing_in_registry"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3  # the header row and two rows
    full = export(engine, LAST_RECONCILE, "html")
    assert 'id="cap-notice"' not in full and "全国系统缺少 · 3" in full and 'id="more-' not in full


def test_html_escapes_what_the_data_holds(seeded) -> None:
    engine, _ = seeded
    with engine.begin() as conn:
        discrepancy(conn, LAST_RECONCILE, "orphan", "activity", local_id=9, registry_id="</script><b>x",
                    details={"title": "<img src=x onerror=alert(1)>"}, at=NOW)
    page = export(engine, LAST_RECONCILE, "html")
    assert "<img src=x" not in page and "</script><b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_html_own_markup_names_no_url(seeded) -> None:
    engine, _ = seeded
    page = export(engine, LAST_RECONCILE, "html")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 2 and "echarts" in scripts[0] and "sortable" in scripts[1]
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", markup, flags=re.I)
    assert "default-src 'none'" in markup
    assert not re.search(r"https?://", scripts[1])


def test_html_without_hours_or_rows(seeded) -> None:
    engine, _ = seeded
    page = export(engine, SYNC_RUN, "html")
    assert 'id="no-hours"' in page and "只有对账运行记录" in page
    assert 'id="rows"' not in page and 'data-spec="spec-by_kind"' not in page


# ------------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli(seeded, db_url: str):
    engine, _ = seeded
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING", "COLUMNS": "120"}

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    return engine, run


def test_cli_list_and_show(cli) -> None:
    engine, run = cli
    res = run("report", "list", "--json", "--kind", "reconcile", "--limit", "2")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["id"] for r in doc["runs"]] == [RUNNING_RUN, LAST_RECONCILE]
    assert doc["runs"][1]["discrepancies"] == 11 and doc["runs"][1]["started_at"].endswith("+08:00")
    res = run("report", "list")
    assert res.exit_code == 0 and "运行记录，最新在前" in res.stdout and "首次关联" in res.stdout
    res = run("report", "show", str(LAST_RECONCILE), "--json")
    assert res.exit_code == 0, res.output
    head = json.loads(res.stdout)
    assert head["counts"]["total"] == 11 and head["hours"]["total"]["volunteers"] == 7
    assert head["run"]["summary"]["compared"]["volunteers"] == 9615
    res = run("report", "show", str(LAST_RECONCILE))
    assert res.exit_code == 0, res.output
    assert "第 5 次运行 · 对账 · 部分完成" in res.stdout and "各市服务时长" in res.stdout
    assert "哈尔滨市" in res.stdout and "未归属" in res.stdout and "none" not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 120


def test_cli_usage_errors_exit_2(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGSYNC_LANG", "en")  # the messages as the code writes them (Chinese: test_trial_fixes)
    engine, run = cli
    for args, message in [
        (("report", "show", "999"), "no run 999"),
        (("report", "export", "999", "--format", "json"), "no run 999"),
        (("report", "export", "5", "--format", "pdf"), "unknown format 'pdf'"),
        (("report", "list", "--kind", "demo"), "unknown run kind"),
        (("report", "export", "5", "--format", "csv", "--show-personal-data"), "needs --reason"),
        (("report", "export", "5", "-o", str(tmp_path / "no" / "such" / "r.html")), "no folder"),
    ]:
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.stderr, (args, res.stderr)
        assert res.stdout == ""
    res = run("report", "show", "five")
    assert res.exit_code == 2
    assert audits(engine) == []


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "html"])
def test_cli_export_to_a_file_and_to_stdout(cli, tmp_path: Path, fmt: str) -> None:
    engine, run = cli
    target = tmp_path / f"run5.{fmt}"
    res = run("report", "export", str(LAST_RECONCILE), "--format", fmt, "--output", str(target))
    assert res.exit_code == 0, res.output
    assert f"已写出 {target}" in res.stderr and "11 处差异" in res.stderr and res.stdout == ""
    body = target.read_text(encoding="utf-8-sig")
    res = run("report", "export", str(LAST_RECONCILE), "--format", fmt)
    assert res.exit_code == 0
    if fmt == "json":
        assert len(json.loads(res.stdout)["discrepancies"]) == 11
        assert json.loads(body)["run"]["id"] == LAST_RECONCILE
    elif fmt == "csv":
        assert len(res.stdout.splitlines()) == 12 and body.splitlines()[0].startswith("id,run_id,kind")
    elif fmt == "html":
        assert body.startswith("<!DOCTYPE html>") and res.stdout.startswith("<!DOCTYPE html>")
    else:
        assert "第 5 次运行 · 对账" in body and "全国系统缺少：共 3 条" in res.stdout
    assert audits(engine) == []


def test_cli_personal_data_export_is_audited(cli, tmp_path: Path) -> None:
    engine, run = cli
    target = tmp_path / "run5.html"
    res = run("report", "export", str(LAST_RECONCILE), "--format", "html", "-o", str(target),
              "--show-personal-data", "--reason", "hours complaint #88", "--actor", "li.na")
    assert res.exit_code == 0, res.output
    assert "审计 #1" in res.stderr
    assert VOLUNTEERS[0][1] in target.read_text(encoding="utf-8") and 'id="personal-notice"' in target.read_text()
    [(actor, action, target_name, reason, _details)] = audits(engine)
    assert (actor, action, target_name, reason) == ("li.na", "report_personal_data", "run:5", "hours complaint #88")


@pytest.mark.parametrize(("url", "code", "words"), [
    ("sqlite:///{tmp}/absent.db", 1, "no local store"),
    ("sqlite:///{tmp}/empty.db", 1, "db upgrade"),
    ("foo://bar", 2, "REGSYNC_DATABASE_URL"),
])
def test_cli_bad_store_or_settings(tmp_path: Path, url: str, code: int, words: str) -> None:
    (tmp_path / "empty.db").touch()
    env = {"REGSYNC_DATABASE_URL": url.format(tmp=tmp_path), "REGSYNC_CONFIG": "", "REGSYNC_LANG": "en"}
    for args in (["report", "list"], ["report", "show", "1"], ["report", "export", "1", "--format", "csv"]):
        res = CliRunner().invoke(app, args, env=env)
        assert res.exit_code == code and words in res.stderr, (args, res.output)
        assert "Traceback" not in res.output


@pytest.mark.parametrize("fmt", ["html", "text"])
def test_the_registrys_refusal_is_joined_in(seeded, fmt: str) -> None:
    engine, _ = seeded
    out = export(engine, LAST_RECONCILE, fmt, width=200)
    # the volunteer's change waits in the outbox after INVALID_PHONE: the registry's refusal, its reason in words
    refused = f"全国系统拒绝：{reason_for('INVALID_PHONE').reason}（INVALID_PHONE）"
    if fmt == "html":
        assert out.count(refused) == 2  # rows 9 and 15: the same volunteer
    else:  # Rich folds the cell: compare without the line breaks and padding
        assert re.sub(r"\s+", "", out).count(refused) >= 2
    # the service record waits for its parent (blocked, PARENT_FAILED): the registry refused nothing of it
    assert "全国系统拒绝：PARENT_FAILED" not in out and "全国系统拒绝：所引用" not in out
    assert re.sub(r"\s+", "", out).count("等待上级记录：" + reason_for("PARENT_FAILED").reason.replace(" ", "")) == 1
    assert "INVALID_ID_NUMBER" not in out  # an older refusal, since sent
    assert "13945678901" not in out  # the outbox's message is not shown
    with engine.connect() as conn:
        rows = {r.id: r for r in iter_discrepancies(conn, LAST_RECONCILE)}
    assert rows[9].refusal == rows[15].refusal == "INVALID_PHONE" and rows[11].refusal == "PARENT_FAILED"
    assert rows[10].refusal is None and "refusal" not in rows[9].as_dict()  # the JSON and CSV are as found


@pytest.mark.parametrize("clear", [False, True])
def test_records_are_named_from_the_platform_when_the_details_do_not(seeded, clear: bool) -> None:
    engine, _ = seeded
    page = export(engine, LAST_RECONCILE, "html", show_personal_data=clear)
    # row 13 (field_mismatch of volunteer 2, 王秀英): no name in its details, the platform's, masked
    assert ("志愿者 · 王秀英 · 省平台键 2" if clear else "志愿者 · 王** · 省平台键 2") in page
    assert ("王秀英" in page) == clear
    # the details' own name first (row 9: 张*), whatever the platform holds
    assert "志愿者 · 张* · 省平台键 1" in page
    with engine.connect() as conn:
        rows = {r.id: r for r in iter_discrepancies(conn, LAST_RECONCILE, show_personal_data=clear)}
    assert rows[16].name == ("阿依古丽·买买提" if clear else "阿*******")
    assert rows[10].name is None  # org 17 is not on the platform
    assert "name" not in rows[13].as_dict()


def test_the_html_report_counts_every_kind_of_record_whatever_the_capped_tables_hold(engine: Engine) -> None:
    """Issue 16 (fixB), point 5: the tables by reason hold the first rows only (capped); v1 records filling them
    hid the v1.1 kinds' problems. The table by kind of record counts each kind × reason: 评价 37, 培训记录 19,
    表彰 2."""
    at = NOW
    with engine.begin() as conn:
        rec = seed_run(conn, "reconcile", at, 5, "success", {})
        for i in range(8):  # first by id: they fill the capped table of missing_in_registry
            discrepancy(conn, rec, "missing_in_registry", "volunteer", local_id=1000 + i, at=at)
        for entity, n in (("evaluation", 37), ("training_record", 19), ("commendation", 2)):
            for i in range(n):
                discrepancy(conn, rec, "missing_in_registry", entity, local_id=2000 + i, at=at)
        discrepancy(conn, rec, "field_mismatch", "training_record", local_id=3000, fields=["class_hours"], at=at)
    out = io.StringIO()
    with use_language("zh-CN"):
        export_run(engine, rec, "html", out, now=at, rows_per_kind=5)
    page = out.getvalue()
    table = page.split('id="table-entities"', 1)[1].split("</table>", 1)[0]
    assert "按记录类型" in page and "全国系统缺少" in table and "字段不一致" in table
    rows = {m[0]: m[1:] for m in re.findall(r"<tr><td>([^<]+)</td><td class=\"n\" data-v=\"(\d+)\">", table)}
    assert {k: int(v[0]) for k, v in rows.items()} == {"评价": 37, "培训记录": 20, "表彰": 2, "志愿者": 8}
    assert "评价" not in page.split('id="table-missing_in_registry"', 1)[1].split("</table>", 1)[0]  # capped
