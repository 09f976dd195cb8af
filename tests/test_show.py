"""``regsync show`` (issue 15, point 4): one record on both sides, field by field, with its link and base, outbox
history, failures, conflicts, discrepancies and audit entries; masked unless revealed (audited); ``--json``; exit
codes. Every engine of the store; the registry is the sandbox over HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import json
import socket
from typing import Any

from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from platforms import xprov
from regsync.console.cli import app
from regsync.db.conflicts_store import add_audit
from regsync.db.mapping.install import install
from regsync.db.mapping.load import load_mapping
from regsync.db.models import Conflict
from regsync.db.session import suppress_outbox, utcnow
from regsync.db.show import audit_naming
from regsync.flows.reconcile import run_reconcile
from regsync.flows.show import PERSONAL_DATA_ACTION, RecordView, show_record
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings
from test_platform_mapped import mapped_settings, platform  # noqa: F401 — the fixture
from test_platform_mapped import sync as mapped_sync
from test_reconcile import patch, portal, rid, sync, world

runner = CliRunner()


def env_of(settings: Settings, **more: str) -> dict[str, str]:
    """The environment a command run by an operator would have for ``settings``."""
    return {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
            "REGSYNC_CLIENT_ID": settings.registry.client_id, "REGSYNC_CLIENT_SECRET": settings.registry.client_secret,
            "REGSYNC_LOG_LEVEL": "WARNING", **more}


def cli(settings: Settings, *args: str, **more: str) -> Any:
    return runner.invoke(app, ["show", *args], env=env_of(settings, **more))


def field(view: RecordView, name: str) -> Any:
    return next(f for f in view.fields if f.field == name)


def number_and_phone(engine: Engine, vid: int) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id_number, phone FROM volunteer WHERE id = :i"), {"i": vid}).one()
    return str(row.id_number), str(row.phone)


def test_a_record_that_agrees_on_both_sides_and_the_json_shape(settings, engine) -> None:
    w = world(engine, settings)
    v = w["vols"][0]
    view = show_record(settings, "volunteer", str(v), engine=engine)
    assert (view.kind, view.key, view.local_id) == ("volunteer", str(v), v)
    assert view.registry_id == rid(engine, "volunteer", v)
    assert view.local_found and view.registry_state == "found" and view.in_agreement is True
    assert not any(f.differs or f.base_differs for f in view.fields)
    assert view.link is not None and view.link["how"] == "created" and view.link["is_duplicate"] is False
    assert view.outbox["by_state"] == {"sent": 1} and view.outbox["rows"][0]["op"] == "insert"
    assert view.outbox["failures"] == [] and view.outbox["hold"] is None
    assert view.registry_meta["version"] >= 1 and view.registry_meta["client_ref"] == str(v)
    # a membership names its org and volunteer by registry id, and the local ids beside them
    m = show_record(settings, "memberships", str(_membership_of(engine, v)), engine=engine)
    assert m.in_agreement is True and field(m, "volunteer_id").local == rid(engine, "volunteer", v)
    assert field(m, "volunteer_id").local_ref == v

    number, phone = number_and_phone(engine, v)
    res = cli(settings, "volunteer", str(v), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # one JSON object, nothing else on stdout
    assert set(out) == {"kind", "key", "local_id", "registry_id", "local_found", "registry_state", "registry_error",
                        "local_error", "personal_data", "audit_id", "in_agreement", "fields", "registry_meta",
                        "link", "outbox", "conflicts", "discrepancies", "audit", "records"}
    assert [x["field"] for x in out["fields"]] == ["name", "id_type", "id_number", "gender", "birth_date", "phone",
                                                    "region_code", "skills", "home_province", "status"]
    assert set(out["fields"][0]) == {"field", "local", "registry", "base", "differs", "base_differs", "changed"}
    assert set(out["outbox"]) == {"by_state", "rows", "failures", "hold"}
    assert set(out["outbox"]["rows"][0]) == {"id", "op", "state", "attempts", "last_code", "last_error",
                                             "created_at", "available_at", "done_at", "blocked_entity",
                                             "blocked_local_id"}
    assert out["outbox"]["rows"][0]["created_at"].endswith("+08:00")
    assert out["in_agreement"] is True and out["personal_data"] is False
    assert number not in res.stdout and phone not in res.stdout  # masked by default
    assert next(x for x in out["fields"] if x["field"] == "id_number")["local"] == number[:6] + "********" + number[-4:]
    assert next(x for x in out["fields"] if x["field"] == "phone")["registry"] == phone[:3] + "****" + phone[-4:]

    res = cli(settings, "volunteer", str(v))  # the terminal's rendering
    assert res.exit_code == 0, res.output
    assert "the two sides agree" in res.stdout and "masked" in res.stdout and res.stdout.count("≠") == 1  # the legend
    assert number not in res.stdout and phone not in res.stdout


def test_a_training_record_and_a_volunteer_with_trainings_commendations_and_evaluations(settings, engine) -> None:
    """Issue 16, point 7: ``show training-record`` compares a v1.1 record field by field (class hours in hundredths);
    a volunteer's view lists their trainings with class hours (the accepted ones' sum beside the registry's
    trainingHours), commendations and evaluations, in words in Chinese."""
    import v11util as v11

    w = world(engine, settings)
    ids = v11.add_v11(engine, w)
    v11.push_v11(settings, engine)
    vid = w["vols"][0]
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE training_record SET class_hours = 250 WHERE id = :i"), {"i": ids["training_record"]})
        second = v11.training(conn, w["tree"]["unit"], title="心理疏导专业培训", training_type="PROFESSIONAL",
                              mode="ONLINE", address=None)
        v11.training_record(conn, second, vid, class_hours=150, result="ATTENDED")  # not in the registry
    tr = show_record(settings, "training-record", str(ids["training_record"]), engine=engine)
    assert tr.kind == "training_record" and tr.registry_state == "found" and tr.in_agreement is False
    assert (field(tr, "class_hours").local, field(tr, "class_hours").registry) == (250, 300)
    assert [f.field for f in tr.fields if f.differs] == ["class_hours"]
    assert field(tr, "training_id").local_ref == ids["training"]
    assert tr.records == {}  # only a volunteer's view lists records

    view = show_record(settings, "volunteer", str(vid), engine=engine)
    r = view.records
    assert (r["trainings_total"], r["commendations_total"], r["evaluations_total"]) == (2, 1, 1)
    assert r["training_hours"] == 400  # 2.50 + 1.50 h on the platform, both ACCEPTED
    assert r["registry_training_hours"] == 300  # the registry's trainingHours: the one record it has, 3.00 h
    assert [(x["title"], x["class_hours"], x["registry_id"] is None) for x in r["trainings"]] == [
        ("心理疏导专业培训", 150, True), ("应急救护培训", 250, False)]  # newest first
    assert r["commendations"][0]["title"] == "优秀志愿者" and r["evaluations"][0]["competence"] == 3

    res = cli(settings, "volunteer", str(vid), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["records"]
    assert out["trainings"][1]["completed_on"] == "2026-04-01" and out["training_hours"] == 400
    res = cli(settings, "volunteer", str(vid), REGSYNC_LANG="zh-CN")
    assert res.exit_code == 0, res.output
    assert "培训：共 2 条培训记录" in res.stdout and "省平台已通过的培训学时 4.00 小时" in res.stdout
    assert "全国系统培训学时 3.00 小时" in res.stdout
    assert "表彰：共 1 条" in res.stdout and "评价：共 1 条" in res.stdout and "心理疏导专业培训" in res.stdout
    res = cli(settings, "training-record", str(ids["training_record"]), REGSYNC_LANG="zh-CN")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("培训记录 ")


def _membership_of(engine: Engine, vid: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM membership WHERE volunteer_id = :v"), {"v": vid}).scalar_one())


def test_a_record_changed_on_each_side_shows_the_fields_the_base_and_its_traces(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    v = w["vols"][1]
    with engine.begin() as conn, suppress_outbox(conn):  # the platform moves the person to another district
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id = :i"), {"i": v})
    patch(sandbox, "volunteers", rid(engine, "volunteer", v), {"phone": "13655556666"})  # the person, on the portal
    code, found = run_reconcile(settings, engine=engine, kinds=["volunteers"])
    assert code == 0 and found["discrepancies"], found
    with engine.begin() as conn:  # an operator's action on the record, and one on another that merely looks alike
        add_audit(conn, at=utcnow(), actor="op-li", action="outbox.retry", target=f"ids=volunteer:{v}",
                  reason="checked", details="{}")
        add_audit(conn, at=utcnow(), actor="op-li", action="outbox.retry", target=f"ids=volunteer:{v}0",
                  reason="other", details="{}")
        for fld, state, base, value in (("name", "resolved", '"王芳"', '"王芳芳"'),
                                        ("phone", "open", '"h:0123abcd"', '"136****6666"')):
            conn.execute(Conflict.__table__.insert().values(
                entity="volunteer", local_id=v, registry_id=rid(engine, "volunteer", v), field=fld,
                field_group="contact", base_value=base, local_value=value, remote_value=value, registry_version=3,
                state=state, detected_at=utcnow(), updated_at=utcnow()))

    view = show_record(settings, "volunteer", str(v), engine=engine)
    assert view.in_agreement is False
    assert [x.field for x in view.fields if x.differs] == ["phone", "region_code"]
    region, phone = field(view, "region_code"), field(view, "phone")
    assert (region.local, region.registry, region.base, region.changed) == ("230103", "230102", "230102",
                                                                            ("platform",))
    # the base keeps a phone as a keyed hash: shown as the side it equals (masked), the registry's moved
    _, local_phone = number_and_phone(engine, v)
    assert (phone.local, phone.registry) == (local_phone[:3] + "****" + local_phone[-4:], "136****6666")
    assert phone.base == phone.local and phone.changed == ("registry",) and phone.base_differs
    assert not field(view, "name").base_differs
    kinds = {d["kind"] for d in view.discrepancies["rows"]}
    assert kinds and kinds <= {"field_mismatch", "stale_link"}
    assert {d["run_id"] for d in view.discrepancies["rows"]} == {found["run_id"]}
    assert [a["target"] for a in view.audit] == [f"ids=volunteer:{v}"]  # not volunteer:{v}0
    # its conflicts, open and decided, newest first; a personal field's base is a keyed hash, never shown
    assert view.conflicts["total"] == 2
    assert [(c["field"], c["state"], c["base_value"]) for c in view.conflicts["rows"]] == [
        ("phone", "open", "(hash)"), ("name", "resolved", "王芳")]

    res = cli(settings, "volunteer", str(v))
    assert res.exit_code == 0, res.output
    assert "differ in 2 field(s)" in res.stdout and "≠" in res.stdout and "base (last agreed)" in res.stdout
    assert "fields differ" in res.stdout or "stale link" in res.stdout
    assert "conflicts: 2 newest of 2" in res.stdout and "h:0123abcd" not in res.stdout


def test_a_record_only_on_the_platform_with_its_failed_push(settings, engine) -> None:
    world(engine, settings)
    with engine.begin() as conn:
        bad = f.volunteer(conn, name="赵强", phone="1391234")  # a phone no standard lets a client fix
    sync(settings, engine)
    with engine.connect() as conn:
        code = conn.execute(text("SELECT last_code FROM outbox WHERE entity = 'volunteer' AND local_id = :i"),
                            {"i": bad}).scalar_one()
    assert code
    view = show_record(settings, "volunteer", str(bad), engine=engine)
    assert view.local_found and view.registry_state == "not_linked" and view.registry_id is None
    assert view.link is None and view.in_agreement is None
    assert all(x.differs is None and x.registry is None for x in view.fields)
    assert [(r["state"], r["last_code"]) for r in view.outbox["failures"]] == [("failed", code)]
    assert view.outbox["failures"][0]["last_error"]
    res = cli(settings, "volunteer", str(bad))
    assert res.exit_code == 0, res.output
    assert "only on the platform" in res.stdout and code in res.stdout


def test_a_record_only_in_the_registry_and_records_found_nowhere(settings, engine, sandbox) -> None:
    world(engine, settings)
    reg = portal(sandbox, "volunteers", {
        "name": "周敏", "idType": "RESIDENT_ID", "idNumber": f.id_number(female=True), "gender": "F",
        "birthDate": "1990-01-01", "phone": "13811112222", "regionCode": "230102", "skills": [],
        "homeProvince": "23"})
    view = show_record(settings, "volunteer", registry_id=reg["id"], engine=engine)
    assert not view.local_found and view.local_id is None and view.registry_state == "found"
    assert field(view, "name").registry == "周敏" and field(view, "name").local is None
    assert field(view, "phone").registry == "138****2222"
    assert view.registry_meta["owner_client_id"] == "PORTAL" and view.link is None
    res = cli(settings, "volunteer", "--registry-id", reg["id"], "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["registry_state"] == "found"
    res = cli(settings, "volunteer")
    assert "only in the registry" not in res.output and res.exit_code == 2  # neither KEY nor --registry-id
    assert cli(settings, "volunteer", "7", "--registry-id", reg["id"]).exit_code == 2  # both
    assert cli(settings, "people", "7").exit_code == 2
    res = cli(settings, "volunteer", "999999", "--json")
    assert res.exit_code == 1 and res.stdout == "" and "no volunteer 999999" in res.stderr
    res = cli(settings, "volunteer", "--registry-id", "VOL-NONE")
    assert res.exit_code == 1 and "nor in the registry" in res.stderr
    res = cli(settings, "volunteer", "--registry-id", reg["id"])
    assert res.exit_code == 0 and "only in the registry" in res.stdout


def test_masked_by_default_and_the_reveal_is_audited(settings, engine) -> None:
    w = world(engine, settings)
    v = w["vols"][2]
    number, phone = number_and_phone(engine, v)

    def audits() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT action, actor, target, reason, details FROM audit ORDER BY id")))

    res = cli(settings, "volunteer", str(v), "--show-personal-data", "--json")
    assert res.exit_code == 2 and res.stdout == "" and "--reason" in res.stderr
    assert audits() == []  # refused before anything was read or written
    res = cli(settings, "volunteer", str(v), "--show-personal-data", "--reason", "  ")
    assert res.exit_code == 2 and audits() == []
    res = cli(settings, "volunteer", str(v), "--show-personal-data", "--reason", "the person called 13900001111",
              "--actor", "op-wang", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    fields = {x["field"]: x for x in out["fields"]}
    assert fields["id_number"]["local"] == fields["id_number"]["registry"] == number
    assert fields["phone"]["local"] == phone and out["personal_data"] is True
    [(action, actor, target, reason, details)] = audits()
    assert (action, actor, target) == (PERSONAL_DATA_ACTION, "op-wang", f"volunteer:{v}")
    assert reason == "the person called 139****1111"  # the reason is masked like everything stored
    assert out["audit_id"] is not None and json.loads(details)["fields"] == ["id_number", "phone"]
    assert [a["action"] for a in out["audit"]] == [PERSONAL_DATA_ACTION]  # written before anything was shown
    res = cli(settings, "volunteer", str(v), "--show-personal-data", "--reason", "hotline")
    assert res.exit_code == 0 and number in res.stdout and "in clear" in res.stdout


def test_the_registry_unreachable_shows_the_platform_side_with_exit_3(settings, engine) -> None:
    w = world(engine, settings)
    v = w["vols"][3]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli(settings, "volunteer", str(v), "--json", REGSYNC_REGISTRY_URL=f"http://127.0.0.1:{port}/api/v1",
              REGSYNC_REGISTRY_MAX_RETRIES="0", REGSYNC_REGISTRY_TIMEOUT_S="2")
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["registry_state"] == "unreadable" and out["registry_error"] and out["local_found"]
    assert out["in_agreement"] is None and out["outbox"]["by_state"] == {"sent": 1}
    res = cli(settings, "volunteer", str(v), REGSYNC_REGISTRY_URL=f"http://127.0.0.1:{port}/api/v1",
              REGSYNC_REGISTRY_MAX_RETRIES="0", REGSYNC_REGISTRY_TIMEOUT_S="2")
    assert res.exit_code == 3 and "registry could not be read" in res.stdout
    res = cli(settings, "volunteer", "--registry-id", "VOL-ANY", REGSYNC_REGISTRY_URL=f"http://127.0.0.1:{port}/api/v1",
              REGSYNC_REGISTRY_MAX_RETRIES="0", REGSYNC_REGISTRY_TIMEOUT_S="2")
    assert res.exit_code == 1 and "could not be read" in res.stderr  # nothing to show at all


def test_audit_entries_name_the_record_as_a_whole_word(engine) -> None:
    rows = [("outbox.retry", "ids=volunteer:4,volunteer:42", "{}"), ("outbox.retry", "ids=volunteer:42", "{}"),
            ("resync", "volunteer:registry:VOL7", "{}"), ("outbox.discard", "code=X", '{"records": ["volunteer:4"]}'),
            ("conflicts.resolve", "conflict:3 volunteer:4 phone", "{}"), ("resync", "service_record:4", "{}"),
            ("resync", "volunteer:4.5", "{}")]
    with engine.begin() as conn:
        ids = [add_audit(conn, at=utcnow(), actor="op", action=a, target=t, reason="r", details=d) for a, t, d in rows]
    with engine.connect() as conn:
        found = [r["id"] for r in audit_naming(conn, ["volunteer:4", "volunteer:registry:VOL7"], limit=10)]
        assert found == [ids[4], ids[3], ids[2], ids[0]]
        assert [r["id"] for r in audit_naming(conn, ["service_record:4"], limit=10)] == [ids[5]]  # _ is no wildcard
        assert audit_naming(conn, [], limit=10) == []


def test_a_mapped_platform_record_named_by_its_string_key(platform, settings: Settings,  # noqa: F811
                                                          sandbox: SandboxServer) -> None:
    engine, schema = platform
    s = mapped_settings(settings, schema)
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    with engine.begin() as conn:
        ids = xprov.world(conn, schema, f.id_number(), f.uscc())
    mapped_sync(s, engine)
    view = show_record(s, "org", "X2301", engine=engine)
    assert view.key == "X2301" and view.local_found and view.registry_state == "found", view.as_dict()
    assert view.in_agreement is True, [x for x in view.fields if x.differs]
    assert field(view, "name").local == "某市志愿服务总队"
    by_rid = show_record(s, "org", registry_id=view.registry_id, engine=engine)
    assert (by_rid.local_id, by_rid.key) == (view.local_id, "X2301")
    vol = show_record(s, "volunteer", str(ids["rid"]), engine=engine)  # an integer key: the platform's own
    assert vol.key == str(ids["rid"]) and vol.in_agreement is True
    env = env_of(s, REGSYNC_MAPPING=xprov.MAPPING, REGSYNC_PLATFORM_SCHEMA=schema or "")
    res = runner.invoke(app, ["show", "org", "X2301", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["key"] == "X2301"
    res = runner.invoke(app, ["show", "org", "X9999"], env=env)
    assert res.exit_code == 1 and "no org X9999" in res.stderr


def test_a_volunteers_v11_codes_and_discrepancies_read_as_words(settings, engine) -> None:
    """Issue 16 (fixB), point 1: ``show volunteer`` names the v1.1 codes of the volunteer's trainings, commendations and
    evaluations in words (年度嘉许, 爱心奖, 通用培训, 面授, 合格, 已通过; English words in English), never raw, and
    its discrepancies' kinds in words, no fields as ``—`` (was ``missing_in_registry  []``)."""
    import v11util as v11

    w = world(engine, settings)
    with engine.begin() as conn:
        vid = f.volunteer(conn, name="孙丽")  # never pushed: the reconcile finds it missing in the registry
        tr = v11.training(conn, w["tree"]["team"])
        v11.training_record(conn, tr, vid)
        v11.commendation(conn, volunteer_id=vid, title="2025年度志愿服务爱心奖", scheme="PROVINCIAL_ANNUAL",
                         tier="CARE", year=2025, awarded_on=dt.date(2026, 3, 1))
    code, found = run_reconcile(settings, engine=engine, kinds=["volunteers"])
    assert found["discrepancies"], found
    view = show_record(settings, "volunteer", str(vid), engine=engine)
    assert [(d["kind"], d["fields"]) for d in view.discrepancies["rows"]] == [("missing_in_registry", [])]

    res = cli(settings, "volunteer", str(vid), REGSYNC_LANG="zh-CN")
    assert res.exit_code == 0, res.output
    for words in ("年度嘉许", "爱心奖", "通用培训", "面授", "合格", "已通过", "有效", "全国系统缺少"):
        assert words in res.stdout, words
    for code_ in ("PROVINCIAL_ANNUAL", "CARE", "GENERAL", "IN_PERSON", "PASSED", "ACCEPTED",
                  "missing_in_registry", "[]"):
        assert code_ not in res.stdout, code_
    res = cli(settings, "volunteer", str(vid), REGSYNC_LANG="en", COLUMNS="200")
    assert res.exit_code == 0, res.output
    for words in ("annual commendation scheme", "Care Award", "general training", "in person", "passed",
                  "accepted", "missing in the registry"):
        assert words in res.stdout, words
    assert "IN_PERSON" not in res.stdout and "missing_in_registry" not in res.stdout and "[]" not in res.stdout
