"""The annual commendation workflow (年度嘉许, issue 16 point 4): propose by the registry's figure, flag what the
platform has beyond it, the spreadsheet for approval, approve from the file or all, status; on every engine, against
the sandbox registry over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine, bindparam, text
from typer.testing import CliRunner

import factories as f
from regsync import i18n
from regsync.console.cli import app
from regsync.db.own import names
from regsync.db.show import audit_naming
from regsync.db.store import open_store
from regsync.domain.commendations import Choice, Proposal, rank, tier_for, title_for
from regsync.flows.commendations import (
    AwardTerms,
    CommendationUsageError,
    Proposals,
    approvable,
    approve,
    commendation_status,
    registry_figure_in,
)
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.registry.client import RegistryClient
from regsync.reports.commendations_xlsx import COLUMNS, read_choices, write_proposals
from regsync.reports.data import ReportUsageError
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

YEAR = 2025
TERMS = AwardTerms(awarded_on=dt.date(2026, 1, 20), issuer="黑龙江省志愿服务联合会",
                   document_name="关于2025年度志愿服务嘉许的决定", document_number="黑志联〔2026〕3号")
TERM_ARGS = ["--issuer", "黑龙江省志愿服务联合会", "--document-name", "关于2025年度志愿服务嘉许的决定",
             "--document-number", "黑志联〔2026〕3号"]
TERM_ENV = {"REGSYNC_COMMENDATION_ISSUER": "黑龙江省志愿服务联合会",
            "REGSYNC_COMMENDATION_DOCUMENT_NAME": "关于2025年度志愿服务嘉许的决定",
            "REGSYNC_COMMENDATION_DOCUMENT_NUMBER": "黑志联〔2026〕3号"}
_MASKED = re.compile(r"^\d{6}\*{8}[0-9X]{4}$")


# ------------------------------------------------------------------------------------------------ data


def _days(conn: Any, vid: int, act: int, team: int, hours: list[int], start: int, span: int = 10) -> None:
    """Service records of ``vid`` in :data:`YEAR`, one a day from day ``start`` of the year (hours in hundredths;
    from 09:00 +08:00, ``span`` hours long: a span shorter than the hours is refused by the registry)."""
    for i, h in enumerate(hours):
        day = dt.date(YEAR, 1, 1) + dt.timedelta(days=start + i)
        f.service_record(conn, vid, act, team, hours=h, service_date=day,
                         starts_at=dt.datetime(day.year, day.month, day.day, 1, 0),
                         ends_at=dt.datetime(day.year, day.month, day.day, 1 + span, 0))


def year_data(engine: Engine) -> dict[str, Any]:
    """A year of service: A 60 h (CARE), B 120 h (BRONZE), C 110 h (BRONZE), D 20 h in 20 records (nothing), E 45 h of
    2025 and 80 h of 2024 (nothing: only the year counts); 53 records of 2025 on one team (HONOR for the team and its
    community station). Every name and number generated."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        act = f.activity(conn, t["team"], starts_at=dt.datetime(2023, 12, 31, 16),
                         ends_at=dt.datetime(2025, 12, 31, 15), status="COMPLETED")
        v = {k: f.volunteer(conn, name=name) for k, name in
             (("A", "张伟"), ("B", "王芳"), ("C", "李娜"), ("D", "刘洋"), ("E", "陈静"))}
        _days(conn, v["A"], act, t["team"], [600] * 10, 0)
        _days(conn, v["B"], act, t["team"], [1000] * 12, 0)
        _days(conn, v["C"], act, t["team"], [1000] * 11, 0)
        _days(conn, v["D"], act, t["team"], [100] * 20, 0)
        _days(conn, v["E"], act, t["team"], [500] * 9, 100)
        for i in range(8):  # E's 2024 hours
            day = dt.date(2024, 3, 1) + dt.timedelta(days=i)
            f.service_record(conn, v["E"], act, t["team"], hours=1000, service_date=day,
                             starts_at=dt.datetime(day.year, day.month, day.day, 1, 0),
                             ends_at=dt.datetime(day.year, day.month, day.day, 11, 0))
    return {"tree": t, "activity": act, "v": v}


def sync(settings: Settings, engine: Engine) -> dict[str, Any]:
    """Outbound passes until quiet; the summary (the exit code is not asserted: the relay's handling of the v1.1 kinds
    is another branch's work, and what matters here is what the registry holds)."""
    _code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, inbound=False)
    return summary


def registry_records(sandbox: SandboxServer, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
    r.raise_for_status()
    return r.json()["data"]["records"]


def link_id(engine: Engine, entity: str, local_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :e AND local_id = :i"),
                            {"e": entity, "i": local_id}).scalar()


def proposals(settings: Settings, engine: Engine, year: int = YEAR) -> tuple[list[Any], dict[str, Any]]:
    with RegistryClient(settings.registry, province=settings.province) as client:
        props = Proposals(engine, client, year)
        return list(props), props.counts


def by_subject(rows: list[Any]) -> dict[tuple[str, int], Any]:
    return {(p.subject, p.local_id): p for p in rows}


def mark(path: Path, answers: dict[str, str]) -> None:
    """Fill the approval column as an approver does: platform key → 是/否 (rows of other keys left blank)."""
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    key_col = [c[0] for c in COLUMNS].index("local_id") + 1
    for row in ws.iter_rows(min_row=2):
        key = str(row[key_col - 1].value)
        if key in answers:
            row[len(COLUMNS) - 1].value = answers[key]
    wb.save(path)


def commendation_count(db: Path) -> int:
    engine = open_store(DatabaseSettings(url=f"sqlite:///{db}"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM commendation "
                                         "WHERE scheme = 'PROVINCIAL_ANNUAL' AND year = 2025")).scalar_one())
    finally:
        engine.dispose()


def commendation_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id, volunteer_id, org_id, tier, status, title, year, scheme "
                                      "FROM commendation ORDER BY id")).all())


# ------------------------------------------------------------------------------------------------ tests


def test_tiers_by_the_scheme_thresholds() -> None:
    assert tier_for("volunteer", 4_999) is None and tier_for("volunteer", 5_000) == "CARE"
    assert tier_for("volunteer", 19_999) == "BRONZE" and tier_for("volunteer", 100_000) == "GOLD_EXCELLENCE"
    assert tier_for("org", 49) is None and tier_for("org", 50) == "HONOR" and tier_for("org", 500) == "GOLD"
    assert rank("org", "GOLD_EXCELLENCE") == 0 and rank("volunteer", "GOLD") > rank("volunteer", "SILVER")
    assert title_for(2026, "GOLD") == "2026年度志愿服务金奖"


def test_proposed_by_the_registry_flagged_by_the_platform_approved_from_the_file_and_accepted(
        settings: Settings, engine: Engine, sandbox: SandboxServer, tmp_path: Path) -> None:
    d = year_data(engine)
    v, t = d["v"], d["tree"]
    sync(settings, engine)
    assert len([r for r in registry_records(sandbox, "service-records") if r["status"] == "ACCEPTED"]) == 70
    # C's later records are on the platform only (not pushed yet, and refused when they are: 10 h in a span of 5):
    # 110 h in the registry, 210 h on the platform
    with engine.begin() as conn:
        _days(conn, v["C"], d["activity"], t["team"], [1000] * 10, 200, span=5)

    rows, counts = proposals(settings, engine)
    got = by_subject(rows)
    assert set(got) == {("volunteer", v["A"]), ("volunteer", v["B"]), ("volunteer", v["C"]), ("org", t["team"]),
                        ("org", t["community"])}
    assert (got["volunteer", v["A"]].tier, got["volunteer", v["A"]].registry_amount) == ("CARE", 6_000)
    assert got["volunteer", v["B"]].tier == "BRONZE" and got["volunteer", v["B"]].flag is None
    c = got["volunteer", v["C"]]
    assert (c.tier, c.registry_amount, c.platform_amount) == ("BRONZE", 11_000, 21_000)
    assert (c.flag, c.flag_tier) == ("platform_higher", "SILVER")
    assert (got["org", t["team"]].tier, got["org", t["team"]].registry_amount) == ("HONOR", 62)
    assert got["org", t["team"]].platform_amount == 72
    assert got["org", t["community"]].tier == "HONOR"  # as the station of the team's records (§4.8)
    assert counts["proposed"] == 5 and counts["flagged"] == 1

    # the spreadsheet, in Chinese, read back
    path = tmp_path / "jiaxu.xlsx"
    with i18n.use_language("zh-CN"):
        assert write_proposals(iter(rows), path, year=YEAR) == 5
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    table = [[c.value for c in r] for r in ws.iter_rows()]
    assert table[0][0] == "类型" and table[0][-1] == "批准（是/否）" and "全国系统" in table[0][7]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:P{len(table)}"
    vol_rows = [r for r in table[1:] if r[0] == "志愿者"]
    assert len(vol_rows) == 3 and all(_MASKED.match(r[3]) for r in vol_rows)
    c_row = next(r for r in vol_rows if r[1] == str(v["C"]))
    assert c_row[2] == "李娜" and c_row[7] == 110 and c_row[8] == 210 and c_row[9] == "小时"  # numbers: sortable
    assert c_row[11] == "铜奖" and c_row[12] == 100 and c_row[13] == "BRONZE" and "银奖" in c_row[14]
    org_row = next(r for r in table[1:] if r[1] == str(t["team"]))
    assert (org_row[7], org_row[8], org_row[9], org_row[12]) == (62, 72, "次", 50)
    assert "小时" in table[0][7] and "次" in table[0][7]
    assert ws.cell(row=2, column=2).number_format == "@" and ws.cell(row=2, column=8).data_type == "n"
    drop = ws.data_validations.dataValidation
    assert len(drop) == 1 and drop[0].type == "list" and drop[0].formula1 == '"是,否"'
    assert str(drop[0].sqref) == f"P2:P{len(table)}"
    wb.close()

    # the approver marks every row 是 but A (否): approve from the file
    mark(path, {str(v["A"]): "否", **{str(k): "是" for k in (v["B"], v["C"], t["team"], t["community"])}})
    chosen = list(read_choices(path, year=YEAR))
    assert sorted(chosen, key=lambda ch: (ch.subject, ch.local_id)) == sorted(
        [Choice("volunteer", v["B"], "BRONZE"), Choice("volunteer", v["C"], "BRONZE"),
         Choice("org", t["team"], "HONOR"), Choice("org", t["community"], "HONOR")],
        key=lambda ch: (ch.subject, ch.local_id))
    result = approve(engine, YEAR, chosen, terms=TERMS, reason="2025年度嘉许 审批通过", actor="tester",
                     source=f"file:{path.name}")
    assert len(result.created) == 4 and result.revoked == [] and result.audit_id is not None
    made = commendation_rows(engine)
    assert {(r.volunteer_id, r.org_id, r.tier) for r in made} == {
        (v["B"], None, "BRONZE"), (v["C"], None, "BRONZE"), (None, t["team"], "HONOR"), (None, t["community"], "HONOR")}
    assert all(r.scheme == "PROVINCIAL_ANNUAL" and r.year == YEAR and r.status == "ACTIVE" for r in made)
    assert {r.title for r in made} == {"2025年度志愿服务铜奖", "2025年度志愿服务光荣奖"}
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, action, reason, details FROM audit WHERE id = :i"),
                             {"i": result.audit_id}).one()
        queued = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE entity = 'commendation' AND op = 'insert'")
                              ).scalar_one()
    assert (audit.actor, audit.action, audit.reason) == ("tester", "commendations.approve", "2025年度嘉许 审批通过")
    assert sorted(json.loads(audit.details)["created"]) == sorted(result.created)
    assert queued == 4  # the triggers queued them for the relay

    # the same file again: nothing twice
    again = approve(engine, YEAR, read_choices(path, year=YEAR), terms=TERMS, reason="重复", actor="tester",
                    source="file")
    assert again.created == [] and again.unchanged == 4 and again.audit_id is None

    # pushed: every tier accepted by the registry on the first push
    sync(settings, engine)
    reg = [r for r in registry_records(sandbox, "commendations") if r["scheme"] == "PROVINCIAL_ANNUAL"]
    assert sorted((r["subjectId"], r["tier"], r["status"]) for r in reg) == sorted([
        (link_id(engine, "volunteer", v["B"]), "BRONZE", "ACTIVE"), (link_id(engine, "volunteer", v["C"]), "BRONZE",
                                                                     "ACTIVE"),
        (link_id(engine, "org", t["team"]), "HONOR", "ACTIVE"), (link_id(engine, "org", t["community"]), "HONOR",
                                                                 "ACTIVE")])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE entity = 'commendation' AND state = 'failed'")
                            ).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE entity = 'service_record' AND state = 'failed'")
                            ).scalar_one() == 10  # C's records the registry refused: still not in it

    # a second run: nothing new but A (not approved) and C's follow-up (its platform figure is still ahead)
    second = by_subject(proposals(settings, engine)[0])
    assert {k for k, p in second.items() if p.tier is not None} == {("volunteer", v["A"])}
    assert second["volunteer", v["C"]].tier is None and second["volunteer", v["C"]].flag == "platform_higher"


def test_a_higher_tier_revokes_the_lower_one_first_and_all_skips_flagged(
        settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    d = year_data(engine)
    v, t = d["v"], d["tree"]
    sync(settings, engine)
    approve(engine, YEAR, [Choice("volunteer", v["C"], "BRONZE")], terms=TERMS, reason="第一批", actor="tester",
            source="all")
    with engine.begin() as conn:  # C's further records: on the platform only
        _days(conn, v["C"], d["activity"], t["team"], [1000] * 10, 200)
    with RegistryClient(settings.registry, province=settings.province) as client:
        picked = list(approvable(Proposals(engine, client, YEAR)))
    assert ("volunteer", v["C"]) not in {(ch.subject, ch.local_id) for ch in picked}  # flagged: not in --all
    assert Choice("volunteer", v["A"], "CARE") in picked

    sync(settings, engine)  # C's records reach the registry: 210 h
    rows = by_subject(proposals(settings, engine)[0])
    c = rows["volunteer", v["C"]]
    assert (c.tier, c.existing_tier, c.flag) == ("SILVER", "BRONZE", None)
    result = approve(engine, YEAR, [Choice("volunteer", v["C"], "SILVER")], terms=TERMS, reason="晋升",
                     actor="tester", source="all")
    assert len(result.created) == 1 and len(result.revoked) == 1
    mine = [(r.tier, r.status) for r in commendation_rows(engine) if r.volunteer_id == v["C"]]
    assert mine == [("BRONZE", "REVOKED"), ("SILVER", "ACTIVE")]


def test_a_refused_commendation_is_explained_with_both_figures(
        settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    d = year_data(engine)
    v = d["v"]
    sync(settings, engine)
    # a GOLD for A (60 h) entered without the proposal: the registry refuses it (NOT_EARNED)
    approve(engine, YEAR, [Choice("volunteer", v["A"], "GOLD"), Choice("volunteer", v["B"], "BRONZE")], terms=TERMS,
            reason="手工录入", actor="tester", source="all")
    before = {r.tier: r.state for r in commendation_status(engine, YEAR)}
    assert before == {"GOLD": "waiting", "BRONZE": "waiting"}
    sync(settings, engine)
    rows = {r.tier: r for r in commendation_status(engine, YEAR)}
    gold = rows["GOLD"]
    assert gold.state == "refused" and gold.code == "NOT_EARNED"
    assert (gold.registry_figure, gold.platform_figure) == ("60.00", "60.00")
    assert "60.00" in gold.explanation() and "Gold Award" in gold.explanation()
    assert rows["BRONZE"].state == "sent" and rows["BRONZE"].registry_id is not None
    assert (gold.status_words(), rows["BRONZE"].status_words()) == ("valid", "valid")
    # the refused GOLD is not held: A (60 h) is proposed CARE again, and approving it creates it, revoking nothing
    again = by_subject(proposals(settings, engine)[0])
    assert again["volunteer", v["A"]].tier == "CARE" and again["volunteer", v["A"]].existing_tier is None
    fresh = list(again.values())
    made = approve(engine, YEAR, [Choice("volunteer", v["A"], "CARE")], terms=TERMS, reason="补发", actor="tester",
                   source="all", fresh=fresh)
    assert len(made.created) == 1 and made.revoked == []


def test_a_waiting_commendation_says_why_in_words(settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    d = year_data(engine)
    v = d["v"]
    sync(settings, engine)
    made = approve(engine, YEAR, [Choice("volunteer", v["A"], "CARE"), Choice("volunteer", v["B"], "BRONZE")],
                   terms=TERMS, reason="批准", actor="tester", source="all")
    first, second = made.created
    with engine.begin() as conn:  # the relay deferred B's: its service records are not all in the registry yet
        conn.execute(text("UPDATE outbox SET state = 'deferred', last_code = 'RECORDS_PENDING', last_error = :e "
                          "WHERE entity = 'commendation' AND local_id = :i"),
                     {"i": second, "e": "waits for service records of volunteer 8712"})
    rows = {r.local_id: r for r in commendation_status(engine, YEAR)}
    assert rows[second].state == "waiting" and rows[second].code == "RECORDS_PENDING"
    assert "service records the registry checks it against" in rows[second].explanation()
    assert "8712" in rows[second].explanation()
    assert rows[first].explanation() == "Not sent yet: the relay sends it on its next pass."
    # the audit row names the commendations, as `regsync show commendation N` looks them up
    with engine.connect() as conn:
        found = audit_naming(conn, [f"commendation:{first}"], limit=5)
    assert [a["id"] for a in found] == [made.audit_id]


def test_the_file_read_back_refuses_another_year_and_skips_rows_not_approved(tmp_path: Path) -> None:
    rows = [Proposal("volunteer", 7, "VOL1", "张伟", "230102********1234", "测试组织", "230102", 6000, 6000, None,
                     "CARE"),
            Proposal("org", 9, "ORG1", "测试队", None, "上级", "230102", 60, 60, None, "HONOR"),
            Proposal("volunteer", 11, None, "赵磊", "230102********5678", "测试组织", "230102", 0, 6000, None, None,
                     flag="not_in_registry", flag_tier="CARE")]
    path = tmp_path / "p.xlsx"
    with i18n.use_language("zh-CN"):
        write_proposals(rows, path, year=YEAR)
    mark(path, {"7": "是", "9": "否", "11": "是"})  # 11: a follow-up row, nothing to approve in it
    assert list(read_choices(path, year=YEAR)) == [Choice("volunteer", 7, "CARE")]  # read in English too
    with pytest.raises(ReportUsageError, match="2025"):
        list(read_choices(path, year=2024))
    with pytest.raises(ReportUsageError):
        list(read_choices(tmp_path / "missing.xlsx", year=YEAR))


def test_a_year_not_yet_past_and_a_tier_the_subject_cannot_have_are_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        vid = f.volunteer(conn)
    with pytest.raises(CommendationUsageError, match="past year"):
        approve(engine, dt.date.today().year + 1, [Choice("volunteer", vid, "CARE")], terms=TERMS, reason="x",
                actor="t", source="all")
    with pytest.raises(CommendationUsageError, match="HONOR"):
        approve(engine, YEAR, [Choice("volunteer", vid, "HONOR")], terms=TERMS, reason="x", actor="t", source="all")
    assert commendation_rows(engine) == []


def test_the_registry_figure_is_read_from_its_message() -> None:
    assert registry_figure_in("GOLD needs 500.00 hours of service in 2025; the registry has 60.00 hours of "
                              "ACCEPTED service records of that year") == "60.00"
    assert registry_figure_in("HONOR needs 50 services in 2025; the registry has 12 ACCEPTED service records") == "12"
    assert registry_figure_in("something else") is None


def test_a_generated_year_every_tier_accepted_on_the_first_push_and_a_second_run_proposes_nothing(
        settings: Settings, empty_engine: Engine, sandbox: SandboxServer, tmp_path: Path) -> None:
    engine = empty_engine
    run_generate(settings, scale=0.0001, seed=3, engine=engine)
    sync(settings, engine)
    first = proposals(settings, engine)[0]
    care = [p for p in first if p.subject == "volunteer" and p.tier == "CARE" and p.flag is None]
    assert len(first) >= 10 and care and {p.subject for p in first} == {"volunteer", "org"}
    # one person's later hours are on the platform only (refused when pushed: 10 h in a span of 5)
    x = care[0]
    with engine.begin() as conn:
        template = conn.execute(text("SELECT activity_id, org_id FROM service_record WHERE volunteer_id = :v "
                                     "AND status = 'ACCEPTED' ORDER BY id"), {"v": x.local_id}).first()
        used = {r[0] for r in conn.execute(text("SELECT service_date FROM service_record WHERE volunteer_id = :v"),
                                           {"v": x.local_id})}
        free = [i for i in range(365) if dt.date(YEAR, 1, 1) + dt.timedelta(days=i) not in used][:10]
        for i in free:
            _days(conn, x.local_id, template.activity_id, template.org_id, [1000], i, span=5)

    rows = proposals(settings, engine)[0]
    got = by_subject(rows)
    flagged = got["volunteer", x.local_id]
    assert (flagged.tier, flagged.flag, flagged.flag_tier) == ("CARE", "platform_higher", "BRONZE")
    assert flagged.platform_amount == flagged.registry_amount + 10_000
    assert all(p.tier is not None and p.flag is None for k, p in got.items() if k != ("volunteer", x.local_id))

    path = tmp_path / "2025.xlsx"
    with i18n.use_language("zh-CN"):
        write_proposals(rows, path, year=YEAR)
    wb = load_workbook(path, read_only=True)
    ids = [r[3] for r in wb.worksheets[0].iter_rows(min_row=2, values_only=True) if r[0] == "志愿者"]
    wb.close()
    assert ids and all(_MASKED.match(i) for i in ids)
    mark(path, {str(p.local_id): "是" for p in rows})
    result = approve(engine, YEAR, read_choices(path, year=YEAR), terms=TERMS, reason="年度嘉许", actor="tester",
                     source="file")
    assert len(result.created) == len(rows)

    sync(settings, engine)
    # the generated platform holds annual commendations of its own (the generator's): only the approved ones count
    created = set(result.created)
    with engine.connect() as conn:
        linked = {r.registry_id for r in conn.execute(text(
            "SELECT local_id, registry_id FROM link WHERE entity = 'commendation'")) if r.local_id in created}
        states = dict(conn.execute(text("SELECT state, COUNT(*) FROM outbox WHERE entity = 'commendation' "
                                        "AND local_id IN :ids GROUP BY state").bindparams(
            bindparam("ids", expanding=True)), {"ids": sorted(created)}).all())
    reg = [r for r in registry_records(sandbox, "commendations") if r["id"] in linked]
    assert len(reg) == len(rows) and all(r["status"] == "ACTIVE" and r["year"] == YEAR and
                                         r["scheme"] == "PROVINCIAL_ANNUAL" for r in reg)
    assert states == {"sent": len(rows)}  # none refused: every tier by the registry's own figure
    assert {r.state for r in commendation_status(engine, YEAR) if r.local_id in created} == {"sent"}

    second = proposals(settings, engine)[0]
    assert [p for p in second if p.tier is not None] == []
    assert [(p.local_id, p.flag) for p in second] == [(x.local_id, "platform_higher")]


def test_approved_on_the_legacy_platform_into_its_own_table_and_accepted(tmp_path: Path) -> None:
    """A mapped platform (config/mappings/legacy.toml): the commendations go into its own table zyz_jxxx, in its
    codes (jxfa ND, jxdj 1–6), through the platform interface; the triggers queue them and the registry accepts them."""
    with SandboxServer(admin=True) as sb:
        settings = Settings(hash_key=f.TEST_HASH_KEY,
                            database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'legacy.db'}", mapping="legacy"),
                            registry=RegistrySettings(url=sb.base_url, client_id=sb.client_id,
                                                      client_secret=sb.client_secret),
                            log=LogSettings(level="WARNING"))
        run_generate(settings, scale=0.0001, seed=3)
        engine = open_store(settings.database)
        try:
            sync(settings, engine)
            rows = proposals(settings, engine)[0]
            assert rows and all(p.tier is not None for p in rows)
            with RegistryClient(settings.registry, province=settings.province) as client:
                picked = list(approvable(Proposals(engine, client, YEAR)))
            result = approve(engine, YEAR, picked, terms=TERMS, reason="年度嘉许", actor="tester", source="all")
            assert len(result.created) == len(rows)
            created = sorted(result.created)  # the generated platform holds annual commendations of its own too
            with engine.connect() as conn:
                n = names(conn)
                platform = conn.execute(text("SELECT jxfa, jxdj, jxnd, jxmc, zt FROM zyz_jxxx WHERE jxid IN :ids")
                                        .bindparams(bindparam("ids", expanding=True)), {"ids": created}).all()
                queued = conn.execute(text(f"SELECT COUNT(*) FROM {n.outbox} WHERE entity = 'commendation' "
                                           "AND local_id IN :ids").bindparams(bindparam("ids", expanding=True)),
                                      {"ids": created}).scalar_one()
            assert len(platform) == len(rows) and queued == len(rows)
            assert {(r.jxfa, r.jxnd, r.zt) for r in platform} == {("ND", YEAR, "1")}
            assert {r.jxdj for r in platform} <= {"1", "2", "3", "4", "5", "6"}
            assert {r.jxmc for r in platform} <= {title_for(YEAR, t) for t in ("CARE", "BRONZE", "SILVER", "GOLD",
                                                                             "GOLD_EXCELLENCE", "HONOR")}
            again = approve(engine, YEAR, picked, terms=TERMS, reason="重复", actor="tester", source="all")
            assert again.created == [] and again.unchanged == len(rows)
            sync(settings, engine)
            with engine.connect() as conn:
                linked = {r.registry_id for r in conn.execute(text(
                    f"SELECT local_id, registry_id FROM {n.link} WHERE entity = 'commendation'"))
                    if r.local_id in set(created)}
            reg = [r for r in registry_records(sb, "commendations") if r["id"] in linked]
            assert len(reg) == len(rows) and {r["status"] for r in reg} == {"ACTIVE"}
            assert {r.state for r in commendation_status(engine, YEAR) if r.local_id in set(created)} == {"sent"}
        finally:
            engine.dispose()


def test_the_commands_propose_approve_from_the_file_and_status(tmp_path: Path) -> None:
    with SandboxServer() as sb:
        env = {"REGSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "REGSYNC_REGISTRY_URL": sb.base_url,
               "REGSYNC_CLIENT_ID": sb.client_id, "REGSYNC_CLIENT_SECRET": sb.client_secret}
        runner = CliRunner()
        assert runner.invoke(app, ["generate", "--scale", "0.0001", "--seed", "3"], env=env).exit_code == 0
        assert runner.invoke(app, ["sync"], env=env).exit_code == 0
        path = tmp_path / "jiaxu-2025.xlsx"
        proposed = runner.invoke(app, ["commendations", "propose", "--year", "2025", "--output", str(path), "--json"],
                                 env=env)
        assert proposed.exit_code == 0, proposed.output
        data = json.loads(proposed.stdout)
        assert data["rows"] == data["proposed"] > 0 and data["flagged"] == 0 and path.exists()
        wb = load_workbook(path)
        ws = wb.worksheets[0]
        assert ws.cell(row=1, column=1).value == "Type"  # REGSYNC_LANG=en in the tests; Chinese by default
        for row in ws.iter_rows(min_row=2):
            row[len(COLUMNS) - 1].value = "是"
        wb.save(path)

        for args, expected in ((["--file", str(path)], "--reason"), (["--file", str(path), "--all", "--reason", "x"],
                                                                       "--all"),
                               (["--all", "--reason", "x", "--awarded-on", "2025-06-01"], "--awarded-on")):
            bad = runner.invoke(app, ["commendations", "approve", "--year", "2025", *args], env=env)
            assert bad.exit_code == 2 and expected in bad.output, bad.output
        future = runner.invoke(app, ["commendations", "propose", "--year", str(dt.date.today().year)], env=env)
        assert future.exit_code == 2 and "--year" in future.output

        said = runner.invoke(app, ["commendations", "propose", "--year", "2025", "--output",
                                   str(tmp_path / "again.xlsx")], env=env)
        words = {"volunteer": ["Care Award", "Bronze Award", "Silver Award", "Gold Award", "Gold Award for Excellence"],
                 "org": ["Honor Award", "Bronze Award", "Silver Award", "Gold Award"]}
        listed = [m.groups() for m in re.finditer(r"^\s+(.+?) \((volunteers|organizations)\): \d+$", said.output, re.M)]
        assert len(listed) == len(data["by_tier"]) >= 3, said.output
        order = [(who == "organizations", words["org" if who == "organizations" else "volunteer"].index(tier))
                 for tier, who in listed]
        assert order == sorted(order)  # in the scheme's order, lowest first
        held = commendation_count(tmp_path / "local.db")  # the generator's own
        no_terms = runner.invoke(app, ["commendations", "approve", "--year", "2025", "--file", str(path),
                                       "--reason", "x"], env=env)
        assert no_terms.exit_code == 2 and "--document-number" in no_terms.output, no_terms.output
        assert commendation_count(tmp_path / "local.db") == held  # no made-up document number sent
        approved = runner.invoke(app, ["commendations", "approve", "--year", "2025", "--file", str(path),
                                       "--reason", "2025年度嘉许审批", "--actor", "审批人", "--json", *TERM_ARGS],
                                 env=env)
        assert approved.exit_code == 0, approved.output
        made = json.loads(approved.stdout)
        assert len(made["created"]) == data["rows"] and made["audit_id"] is not None
        waiting = json.loads(runner.invoke(app, ["commendations", "status", "--year", "2025", "--json"],
                                           env=env).stdout)
        assert {c["state"] for c in waiting["commendations"] if c["local_id"] in made["created"]} == {"waiting"}
        assert runner.invoke(app, ["sync"], env=env).exit_code == 0
        shown = runner.invoke(app, ["commendations", "status", "--year", "2025"], env=env)
        assert shown.exit_code == 0 and "sent" in shown.output and "waiting" not in shown.output
        audit = json.loads(runner.invoke(app, ["audit", "list", "--action", "commendations", "--json"],
                                         env=env).stdout)
        assert [(e["action"], e["actor"], e["reason"]) for e in audit["entries"]] == [
            ("commendations.approve", "审批人", "2025年度嘉许审批")]
        again = runner.invoke(app, ["commendations", "approve", "--year", "2025", "--file", str(path),
                                    "--reason", "again", "--json"], env={**env, **TERM_ENV})
        assert json.loads(again.stdout)["created"] == []


def test_held_in_the_registry_is_not_proposed_again_and_one_not_in_it_is_only_flagged(
        settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    d = year_data(engine)
    v, t = d["v"], d["tree"]
    sync(settings, engine)
    # B's BRONZE and A's CARE of the scheme and year are in the registry already (entered on the national portal),
    # not on the platform: neither is proposed again
    for vid, tier in ((v["B"], "BRONZE"), (v["A"], "CARE")):
        r = httpx.post(f"{sandbox.admin_url}/portal/commendations", json={
            "subjectType": "VOLUNTEER", "subjectId": link_id(engine, "volunteer", vid), "title": title_for(YEAR, tier),
            "scheme": "PROVINCIAL_ANNUAL", "tier": tier, "year": YEAR, "awardedOn": "2026-01-10",
            "issuer": "中央文明办", "documentName": "表彰决定", "documentNumber": "文明〔2026〕1号", "content": None})
        r.raise_for_status()
    # G, new on the platform with 60 h of the year, not pushed yet: the registry does not know the person
    with engine.begin() as conn:
        g = f.volunteer(conn, name="赵磊")
        _days(conn, g, d["activity"], t["team"], [1000] * 6, 300)
    got = by_subject(proposals(settings, engine)[0])
    assert ("volunteer", v["B"]) not in got and ("volunteer", v["A"]) not in got
    assert got["volunteer", v["C"]].tier == "BRONZE"
    new = got["volunteer", g]
    assert (new.tier, new.flag, new.flag_tier, new.registry_id) == (None, "not_in_registry", "CARE", None)
    assert (new.registry_amount, new.platform_amount) == (0, 6_000)
    assert Choice("volunteer", g, "CARE") not in list(approvable(got.values()))


def test_approve_takes_only_the_approval_from_the_file_a_changed_tier_is_refused_and_revokes_nothing(
        settings: Settings, engine: Engine, sandbox: SandboxServer, tmp_path: Path) -> None:
    d = year_data(engine)
    v = d["v"]
    sync(settings, engine)
    path = tmp_path / "p.xlsx"
    assert proposals(settings, engine, 2010) == ([], {"proposed": 0, "flagged": 0, "by_tier": {}, "records": 0})
    found, counts = proposals(settings, engine)
    assert counts["records"] == 62  # of 2025 (not E's 8 of 2024): `propose` tells a year with no data apart
    with i18n.use_language("zh-CN"):
        write_proposals(found, path, year=YEAR)
    wb = load_workbook(path)  # the approver changes A's tier (60 h: CARE) to GOLD and marks it, and B's (BRONZE)
    ws = wb.worksheets[0]
    at = {c[0]: i for i, c in enumerate(COLUMNS)}
    for row in ws.iter_rows(min_row=2):
        if row[at["local_id"]].value in (str(v["A"]), str(v["B"])):
            row[at["tier"]].value = "GOLD"
            row[at["approve"]].value = "是"
    wb.save(path)
    with pytest.raises(CommendationUsageError, match=r"row \d+: volunteer .* GOLD, proposed CARE") as refused:
        approve(engine, YEAR, read_choices(path, year=YEAR), terms=TERMS, reason="x", actor="t", source="file",
                fresh=proposals(settings, engine)[0])
    assert "proposed BRONZE" in str(refused.value)
    assert commendation_rows(engine) == []  # nothing created

    # A's CARE approved and accepted; then a file where A's row says BRONZE: skipped, the good CARE kept
    first = approve(engine, YEAR, [Choice("volunteer", v["A"], "CARE")], terms=TERMS, reason="批准", actor="t",
                    source="all", fresh=proposals(settings, engine)[0])
    sync(settings, engine)
    changed = [Choice("volunteer", v["A"], "BRONZE", row=3)]
    result = approve(engine, YEAR, changed, terms=TERMS, reason="改", actor="t", source="file",
                     fresh=proposals(settings, engine)[0])
    assert (result.created, result.revoked, result.audit_id) == ([], [], None)
    assert [(c.local_id, c.row) for c in result.skipped] == [(v["A"], 3)]
    assert [(r.id, r.tier, r.status) for r in commendation_rows(engine)] == [(first.created[0], "CARE", "ACTIVE")]
    # the same file again (A holds CARE): already held, not skipped
    same = approve(engine, YEAR, [Choice("volunteer", v["A"], "CARE", row=2)], terms=TERMS, reason="重复",
                   actor="t", source="file", fresh=proposals(settings, engine)[0])
    assert (same.created, same.unchanged, same.skipped) == ([], 1, [])


def test_the_commands_refuse_a_file_that_is_not_a_proposals_file_and_years_out_of_range(tmp_path: Path) -> None:
    """Usage errors found before the store or the registry is touched (no database is configured here)."""
    runner = CliRunner()
    env = {"REGSYNC_LANG": "zh-CN", **TERM_ENV}

    def run(*args: str) -> Any:
        return runner.invoke(app, ["commendations", *args], env=env)

    def approve_file(path: Path) -> Any:
        return run("approve", "--year", "2025", "--file", str(path), "--reason", "审批")

    bad = tmp_path / "bad.xlsx"
    bad.write_text("x\n")
    got = approve_file(bad)
    assert got.exit_code == 2 and "不是可读取的 Excel 工作簿" in got.output and "Traceback" not in got.output
    got = approve_file(tmp_path / "missing.xlsx")
    assert got.exit_code == 2 and "找不到文件" in got.output and "Errno" not in got.output, got.output
    foreign = tmp_path / "worklist.xlsx"  # another spreadsheet, as many columns, other headings
    wb = Workbook()
    wb.active.append([f"列{i}" for i in range(len(COLUMNS))])
    wb.active.append(["志愿者", "7", *[""] * (len(COLUMNS) - 3), "是"])
    wb.save(foreign)
    got = approve_file(foreign)
    assert got.exit_code == 2 and "不是 regsync commendations propose 生成的拟表彰名单" in got.output, got.output

    # a proposals file with no row marked 是, and one with 是 only on a follow-up row
    rows = [Proposal("volunteer", 7, "VOL1", "张伟", "230102********1234", "测试组织", "230102", 6000, 6000, None,
                     "CARE"),
            Proposal("volunteer", 11, None, "赵磊", "230102********5678", "测试组织", "230102", 0, 6000, None, None,
                     flag="not_in_registry", flag_tier="CARE")]
    path = tmp_path / "p.xlsx"
    with i18n.use_language("zh-CN"):
        write_proposals(rows, path, year=YEAR)
    mark(path, {"7": "y"})  # not 是: not an approval
    got = approve_file(path)
    assert got.exit_code == 0 and "没有标为“是”的行，未创建任何嘉许" in got.output, got.output
    mark(path, {"7": "否", "11": "是"})
    got = approve_file(path)
    assert got.exit_code == 0 and "没有标为“是”的行" in got.output and "仅需核查" in got.output and "3" in got.output

    got = run("propose", "--year", "1900")
    assert got.exit_code == 2 and "2008" in got.output and "之前" not in got.output, got.output
    got = run("status", "--year", str(dt.date.today().year + 4))
    assert got.exit_code == 2 and "--year" in got.output, got.output
    helped = runner.invoke(app, ["commendations", "approve", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"\*\s+--reason\s.*\[required\]", helped.output), helped.output
