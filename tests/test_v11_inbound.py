"""The inbound poller for the kinds of registry-api.md v1.1 (issue 16, point 1): trainings, commendations and
evaluations merged into their linked records, training records never merged; portal commendations and training
records brought home as the registry's own; revokes brought home as the local status REVOKED; a volunteer's new
``trainingHours`` a new version, not a conflict. Against the sandbox over HTTP, on every engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
import factories11 as f11
from regsync.db.mapping.install import install
from regsync.db.mapping.load import load_mapping
from regsync.db.migrate import upgrade
from regsync.db.own import own_format
from regsync.db.session import make_engine
from regsync.generate.legacy_schema import create_legacy
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings
from test_inbound import first_cursor, pending, poll, portal, registry_record, rid, row, sync


def _world(settings: Any, engine: Engine) -> dict[str, Any]:
    """An org tree, a volunteer, a completed activity with the volunteer's service record, and a training with the
    volunteer's record, pushed after the first cursor; the echoes polled away."""
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
        conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": a})
        tr = f11.training(conn, t["team"])
        trr = f11.training_record(conn, tr, v, class_hours=200)
    first_cursor(settings, engine)
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and not summary["conflicts"], summary
    assert poll(settings, engine).applied == 0
    return {"tree": t, "volunteer": v, "activity": a, "training": tr, "training_record": trr}


def _patch(sandbox: SandboxServer, collection: str, registry_id: str, fields: dict[str, Any]) -> None:
    """Change a registry record as someone else would (a new version, fed to the client)."""
    r = httpx.patch(f"{sandbox.admin_url}/records/{collection}/{registry_id}", json=fields)
    assert r.status_code == 200, r.text


def _links(engine: Engine, entity: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT local_id, registry_id, how FROM link WHERE entity = :e ORDER BY local_id"),
                            {"e": entity}).all()


def test_a_portal_commendation_and_a_portal_training_record_come_home_as_the_registrys(settings, engine,
                                                                                        sandbox) -> None:
    w = _world(settings, engine)
    v, t = w["volunteer"], w["tree"]
    with engine.begin() as conn:
        other = f11.training(conn, t["team"], title="应急救护培训")
    sync(settings, engine)
    poll(settings, engine)
    award = portal(sandbox, "commendations", {
        "subjectType": "VOLUNTEER", "subjectId": rid(engine, "volunteer", v), "title": "全国优秀志愿者",
        "scheme": None, "tier": None, "year": None, "awardedOn": "2026-03-05", "issuer": "中央文明办",
        "documentName": "关于表彰全国优秀志愿者的决定", "documentNumber": "文明办〔2026〕5号", "content": None})
    record = portal(sandbox, "training-records", {
        "trainingId": rid(engine, "training", other), "volunteerId": rid(engine, "volunteer", v),
        "completedOn": "2026-04-01", "classHours": "1.50", "result": "ATTENDED"})
    stats = poll(settings, engine)
    assert stats.registry_owned == {"commendation": 1, "training_record": 1}, stats.as_dict()
    assert not stats.conflicts and stats.merged.get("volunteer", 0) == 0  # trainingHours: a new version only
    links = {lk.registry_id: lk for lk in _links(engine, "commendation") + _links(engine, "training_record")}
    assert links[award["id"]].how == links[record["id"]].how == "registry_owned"
    c = row(engine, "commendation", links[award["id"]].local_id)
    assert (c["volunteer_id"], c["org_id"], c["title"], str(c["awarded_on"]), c["status"]) == (
        v, None, "全国优秀志愿者", "2026-03-05", "ACTIVE")
    r = row(engine, "training_record", links[record["id"]].local_id)
    assert (r["training_id"], r["volunteer_id"], r["class_hours"], r["result"]) == (other, v, 150, "ATTENDED")
    assert pending(engine) == []
    summary = sync(settings, engine)  # never pushed back
    assert summary["pushed"] == {} and summary["batches"] == 0, summary
    assert poll(settings, engine).applied == 0


def test_the_v11_kinds_merge_and_revokes_come_home(settings, engine, sandbox) -> None:
    w = _world(settings, engine)
    v, t, a, tr = w["volunteer"], w["tree"], w["activity"], w["training"]
    with engine.begin() as conn:
        cv = f11.commendation(conn, volunteer_id=v)
        ev = f11.evaluation(conn, a, v, t["team"])
    sync(settings, engine)
    poll(settings, engine)
    # someone else changes the registry's records: the merge takes them (one side changed: that side wins)
    _patch(sandbox, "trainings", rid(engine, "training", tr), {"title": "志愿服务通用培训（第二期）"})
    _patch(sandbox, "commendations", rid(engine, "commendation", cv), {"status": "REVOKED", "revokeReason": "撤销"})
    _patch(sandbox, "evaluations", rid(engine, "evaluation", ev), {"attitude": 4})
    _patch(sandbox, "training-records", rid(engine, "training_record", w["training_record"]),
           {"status": "REVOKED", "revokeReason": "撤销"})
    stats = poll(settings, engine)
    assert not stats.conflicts, stats.as_dict()
    assert row(engine, "training", tr)["title"] == "志愿服务通用培训（第二期）"
    assert row(engine, "commendation", cv)["status"] == "REVOKED"
    assert row(engine, "evaluation", ev)["attitude"] == 4
    assert row(engine, "training_record", w["training_record"])["status"] == "REVOKED"
    summary = sync(settings, engine)  # nothing goes back out
    assert summary["pushed"] == {} and summary["still_failed"] == {}, summary


@pytest.fixture
def legacy(db_url: str) -> Iterator[tuple[Engine, str | None]]:
    """The ``legacy`` platform's tables (generate/legacy_schema.py) beside an empty store, its mapping installed:
    ``(engine, schema of the platform's tables)``."""
    engine = make_engine(db_url, table_prefix=DatabaseSettings(db_url, "legacy").own_prefix)
    dialect = engine.dialect.name
    schema = None if dialect == "sqlite" else "l_" + secrets.token_hex(5)
    with engine.begin() as conn:
        create_legacy(conn, schema)
    upgrade(engine, reference_tables=False)
    install(engine, load_mapping("legacy"), platform_schema=schema or "")
    yield engine, schema
    if schema is not None:
        with engine.begin() as conn:
            drop = "SCHEMA" if dialect == "postgresql" else "DATABASE"
            conn.execute(text(f"DROP {drop} IF EXISTS {schema}" + (" CASCADE" if dialect == "postgresql" else "")))
    engine.dispose()


def test_portal_records_come_home_into_the_legacy_platforms_tables(legacy, settings, sandbox) -> None:
    """The same on the ``legacy`` mapping: the portal's commendation and training record become rows of the
    platform's own tables (zyz_jxxx 嘉许, zyz_pxjl 培训记录), in its codes and units, with the mapping's defaults
    for its required columns (数据来源/录入方式 3 全国系统), and are never pushed back."""
    engine, schema = legacy
    s = dataclasses.replace(settings, database=DatabaseSettings(url=settings.database.url, mapping="legacy",
                                                                 platform_schema=schema or ""))

    def q(table: str) -> str:
        return f"{schema}.{table}" if schema else table

    number = f.id_number()
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {q('zyz_zzxx')} (zzdm, zzmc, zzlx, zzjb, tyxydm, xzqhdm, fwlb, lxr, lxdh, "
                          "clrq, zt) VALUES ('2301', '哈尔滨市志愿服务总队', '1', '11', :u, '230100', 'COMMUNITY', '王芳', "
                          "'13912345678', 1425484800000, '1')"),
                     {"u": f.uscc()})
        conn.execute(text(f"INSERT INTO {q('zyz_jbxx')} (zyzid, xm, zjlx, zjhm, xb, csrq, sjhm, xzqhdm, zt, zcsj, ly) "
                          "VALUES (5, '李明', '01', :n, '1', '19900101', '13900001111', '230102', 'A', "
                          "'2024-03-01 07:30:00', '1')"), {"n": number})
        conn.execute(text(f"INSERT INTO {q('zyz_pxxx')} (pxid, zzdm, pxzt, pxlx, pxfs, xzqhdm, pxdd, kssj, jssj, pxxs, "
                          "lxr, lxdh, zt) VALUES (7, '2301', '志愿服务通用培训', '1', '2', '230100', '安静街1号', "
                          ":s, :e, 3.00, '王老师', '13912340000', '2')"),
                     {"s": dt.datetime(2026, 4, 1, 9, 0), "e": dt.datetime(2026, 4, 1, 13, 0)})
    first_cursor(s, engine)
    summary = sync(s, engine)
    assert summary["pushed"] == {"orgs": 1, "volunteers": 1, "trainings": 1}, summary
    poll(s, engine)
    portal(sandbox, "commendations", {
        "subjectType": "VOLUNTEER", "subjectId": rid_of(engine, "volunteer", 5), "title": "全国优秀志愿者",
        "scheme": None, "tier": None, "year": None, "awardedOn": "2026-03-05", "issuer": "中央文明办",
        "documentName": "关于表彰全国优秀志愿者的决定", "documentNumber": "文明办〔2026〕5号", "content": None})
    portal(sandbox, "training-records", {
        "trainingId": rid_of(engine, "training", 7), "volunteerId": rid_of(engine, "volunteer", 5),
        "completedOn": "2026-04-01", "classHours": "1.50", "result": "ATTENDED"})
    stats = poll(s, engine)
    assert stats.registry_owned == {"commendation": 1, "training_record": 1}, stats.as_dict()
    with engine.connect() as conn:
        award = conn.execute(text(f"SELECT zyzid, zzdm, jxmc, jxfa, zt, ly FROM {q('zyz_jxxx')}")).all()
        records = conn.execute(text(f"SELECT pxid, zyzid, wcrq, xs, pxjg, jlzt, lrfs FROM {q('zyz_pxjl')}")).all()
    assert [tuple(r) for r in award] == [(5, None, "全国优秀志愿者", None, "1", "3")]
    assert [tuple(r) for r in records] == [(7, 5, "20260401", 90, "2", "1", "3")]
    summary = sync(s, engine)  # never pushed back
    assert summary["pushed"] == {} and summary["batches"] == 0, summary


def rid_of(engine: Engine, entity: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text(own_format(conn, "SELECT registry_id FROM {link} WHERE entity = :e AND local_id = :i")),
                            {"e": entity, "i": local_id}).scalar_one()


def test_a_portal_service_record_takes_a_not_earned_commendation_up_again(settings, engine, sandbox) -> None:
    """registry-api.md §4.8 checks the registry's own records: hours entered on the portal count. A commendation
    refused NOT_EARNED is sent again once a portal service record of its subject and year comes home."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        a = f.activity(conn, t["team"], starts_at=dt.datetime(2025, 6, 1), ends_at=dt.datetime(2025, 6, 28),
                       status="COMPLETED")
        for d in range(1, 5):  # 40 h of the 50 the 爱心奖 asks
            f.service_record(conn, v, a, t["team"], hours=1000, service_date=dt.date(2025, 6, d),
                             starts_at=dt.datetime(2025, 6, d, 0, 0), ends_at=dt.datetime(2025, 6, d, 10, 0))
        award = f11.commendation(conn, volunteer_id=v, title="2025年度志愿服务爱心奖", scheme="PROVINCIAL_ANNUAL",
                                 tier="CARE", year=2025, awarded_on=dt.date(2026, 1, 15))
    first_cursor(settings, engine)
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"NOT_EARNED": 1}, summary
    portal(sandbox, "service-records", {
        "volunteerId": rid(engine, "volunteer", v), "activityId": rid(engine, "activity", a),
        "orgId": rid(engine, "org", t["team"]), "serviceDate": "2025-06-10",
        "startsAt": "2025-06-10T08:00:00+08:00", "endsAt": "2025-06-10T18:00:00+08:00", "hours": "10.00"})
    summary = sync(settings, engine)  # the pull brings the record home, the relay then sends the commendation
    assert summary["still_failed"] == {} and summary["pushed"] == {"commendations": 1}, summary
    assert registry_record(sandbox, "commendations", rid(engine, "commendation", award))["tier"] == "CARE"


def _outbox_state(engine: Engine, entity: str, local_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(own_format(conn, "SELECT state, last_code FROM {outbox} WHERE entity = :e AND "
                                                  "local_id = :i ORDER BY id DESC")),
                                  {"e": entity, "i": local_id}).first())  # type: ignore[return-value]


def test_evaluations_waiting_for_the_registry_go_when_the_registry_completes_the_activity_or_accepts_the_service(
        settings, engine, sandbox) -> None:
    """registry-api.md §4.9 checks the registry's own records: an evaluation blocked because its activity is not
    COMPLETED there, or because the volunteer has no ACCEPTED service record there, is taken up again when the pull
    brings that state home (an activity completed in the registry, a service record entered on the portal), not
    only when the platform writes it."""
    with engine.begin() as conn:
        t, v, a, _ = f.chain(conn)
        other = f.volunteer(conn, name="张伟")
        ev = f11.evaluation(conn, a, v, t["team"])
        ev_other = f11.evaluation(conn, a, other, t["team"])
    first_cursor(settings, engine)
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"AWAITS_COMPLETION": 2}, summary
    _patch(sandbox, "activities", rid(engine, "activity", a), {"status": "COMPLETED"})
    summary = sync(settings, engine)  # the pull brings COMPLETED home; the next pass's relay sends the evaluation
    summary = sync(settings, engine)
    assert _outbox_state(engine, "evaluation", ev)[0] == "sent", summary
    assert _outbox_state(engine, "evaluation", ev_other) == ("blocked", "AWAITS_SERVICE_RECORD")
    portal(sandbox, "service-records", {
        "volunteerId": rid(engine, "volunteer", other), "activityId": rid(engine, "activity", a),
        "orgId": rid(engine, "org", t["team"]), "serviceDate": "2026-05-02",
        "startsAt": "2026-05-02T09:00:00+08:00", "endsAt": "2026-05-02T12:00:00+08:00", "hours": "3.00"})
    sync(settings, engine)
    summary = sync(settings, engine)
    assert _outbox_state(engine, "evaluation", ev_other)[0] == "sent", summary
    assert len([r for r in _registry_evaluations(sandbox) if r["status"] == "ACTIVE"]) == 2


def _registry_evaluations(sandbox: SandboxServer) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/evaluations")
    assert r.status_code == 200, r.text
    data = r.json()
    return data["data"]["records"] if isinstance(data, dict) and "data" in data else data
