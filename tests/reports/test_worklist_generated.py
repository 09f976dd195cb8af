"""Worklists of a generated province (the generator's dirt makes refusals), pushed to the sandbox registry and
reconciled, on every engine: every failure and discrepancy is an item with a reason in words and an org line, the
reconcile's discrepancies are attributed (city and line set), and each city's file holds only that city's items."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import Engine, text

from regsync.db.session import suppress_outbox
from regsync.flows.reconcile import run_reconcile
from regsync.flows.sync import run_sync
from regsync.generate.generator import DirtRates, generate
from regsync.i18n import use_language
from regsync.reports.worklist import open_worklist
from regsync.reports.worklist_render import write_worklist
from regsync.settings import Settings


def test_worklists_of_a_generated_province(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    generate(engine, 0.0001, seed=5, kinds={"org", "volunteer", "membership"},
             rates=DirtRates(id_bad_check=0.04, phone_bad=0.04))
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=120)
    assert code == 0, summary
    with engine.begin() as conn, suppress_outbox(conn):  # a change that never reached the outbox: a discrepancy
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id IN (SELECT local_id FROM link "
                          "WHERE entity = 'volunteer' AND local_id <= 3)"))
    code, rec = run_reconcile(settings, engine=engine)
    assert code == 0 and rec["discrepancies"], rec
    with engine.connect() as conn:
        failed = conn.execute(text("SELECT COUNT(DISTINCT local_id) FROM outbox WHERE entity = 'volunteer' "
                                   "AND state = 'failed'")).scalar_one()
        dirty = conn.execute(text("SELECT COUNT(*) FROM generator_dirt WHERE fixable = false")).scalar_one()
        unplaced = conn.execute(text("SELECT COUNT(*) FROM discrepancy WHERE run_id = :r AND (org_line IS NULL "
                                     "OR city_code IS NULL)"), {"r": rec["run_id"]}).scalar_one()
    assert failed >= 1 and dirty >= 1
    assert unplaced == 0  # every discrepancy placed by the responsible org
    with use_language("zh_CN"):
        wl = open_worklist(engine)
        files = write_worklist(wl, "xlsx", tmp_path, split=True)
    assert wl.run.new == sum(n for _, n in files) >= failed + 1
    reasons: set[str] = set()
    for path, n in files:
        ws = load_workbook(path).active
        header = [c.value for c in ws[1]]
        rows = [dict(zip(header, [c.value for c in r], strict=True)) for r in ws.iter_rows(min_row=2)]
        assert len(rows) == n
        city = path.name.split("-")[1]
        assert {r["城市代码"] for r in rows} == {city}  # a city's file holds only that city
        assert all(r["条线"] in ("地区组织", "专项组织") and r["原因"] and r["处理办法"] for r in rows)
        assert all(r["省平台键"] or r["全国系统编号"] for r in rows)
        reasons |= {r["原因"] for r in rows}
    assert reasons & {"手机号格式不正确", "身份证号校验位错误"}, reasons
