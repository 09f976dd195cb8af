"""Reconcile (design.md, flow 3) against the sandbox registry over real HTTP on loopback, on SQLite and PostgreSQL:
a seeded set of known discrepancies, one or more of each kind, made by direct edits on each side, is found
exactly; ``repair`` fixes the repairable ones and a second reconcile confirms it; two sides in agreement give
zero."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import httpx
from sqlalchemy import Engine, text

import factories as f
from regsync.db.feed import mark_reconcile_due, reconcile_due, saved_cursor
from regsync.db.session import suppress_outbox
from regsync.flows.inbound import Poller
from regsync.flows.reconcile import run_reconcile
from regsync.flows.sync import run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings


def sync(settings: Settings, engine: Engine) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)
    assert code == 0, summary
    return summary


def reconcile(settings: Settings, engine: Engine, **kw: Any) -> dict[str, Any]:
    code, summary = run_reconcile(settings, engine=engine, **kw)
    assert code == 0, summary
    assert summary["status"] in ("success", "partial"), summary
    return summary


def rid(engine: Engine, entity: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :e AND local_id = :i"),
                            {"e": entity, "i": local_id}).scalar_one()


def portal(sandbox: SandboxServer, path: str, body: Any = None) -> dict[str, Any]:
    r = httpx.post(f"{sandbox.admin_url}/portal/{path}", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


def patch(sandbox: SandboxServer, collection: str, registry_id: str, body: dict[str, Any]) -> None:
    r = httpx.patch(f"{sandbox.admin_url}/records/{collection}/{registry_id}", json=body)
    assert r.status_code == 200, r.text


def world(engine: Engine, settings: Settings) -> dict[str, Any]:
    """An org tree, four volunteers with memberships and service records, pushed; the feed cursor taken first."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        vols = [f.volunteer(conn, name=n) for n in ("李明", "王芳", "张伟", "刘洋")]
        a = f.activity(conn, t["team"])
        for i, v in enumerate(vols):
            f.membership(conn, v, t["team"])
            f.service_record(conn, v, a, t["team"], hours=300, day=1 + i % 2)
    with RegistryClient(settings.registry, province=settings.province) as client:
        Poller(engine, client, settings).take_first_cursor()
    sync(settings, engine)
    return {"tree": t, "vols": vols, "activity": a}


def findings(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM discrepancy WHERE run_id = :r ORDER BY id"),
                                              {"r": run_id}).mappings()]


def test_two_sides_in_agreement_give_zero(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    # a new version from a derived field alone (totalHours, starLevel) is not a stale link
    patch(sandbox, "volunteers", rid(engine, "volunteer", w["vols"][0]), {"totalHours": "120.00"})
    # a corrected service record (revoke + a new record): the revoked predecessor is no discrepancy
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 250 WHERE volunteer_id = :v"), {"v": w["vols"][1]})
    sync(settings, engine)
    summary = reconcile(settings, engine)
    assert summary["discrepancies"] == {}, summary["listed"]
    assert summary["status"] == "success"
    assert summary["compared"]["volunteer"] == {"local": 4, "registry": 4, "pairs": 4}
    assert summary["compared"]["service_record"]["pairs"] == 4
    hours = summary["hours"]
    # per person, the report's hours view (regsync.domain.hours): 4 volunteers, both sides equal
    assert hours["unit"] == "hundredths_of_an_hour"
    assert hours["total"]["volunteers"] == 4 and hours["total"]["volunteers_differing"] == 0
    assert hours["total"]["local_hours"] == hours["total"]["registry_hours"] == 1150
    assert hours["by_city"]["2301"]["local_hours"] == 1150
    assert sum(hours["total"]["stars_local"]) == 4
    # per organization, where a grassroots team's hours count for both lines (the dual structure)
    by_org = hours["by_org"]
    assert by_org["total"] == {"local_hours_hundredths": 1150, "registry_hours_hundredths": 1150}
    assert by_org["by_org_line"]["specialized"] == by_org["by_org_line"]["regional"]
    with engine.connect() as conn:
        run = conn.execute(text("SELECT kind, status, summary FROM run WHERE id = :i"),
                           {"i": summary["run_id"]}).one()
    assert run.kind == "reconcile" and run.status == "success"
    assert json.loads(run.summary)["discrepancies"] == {}


def test_a_difference_only_in_characters_that_do_not_print_is_no_discrepancy(settings, engine, sandbox) -> None:
    """Local values pasted with a zero-width space, a BOM, a soft hyphen or a bidi mark (Unicode Cf) show as the
    registry's values: reconcile compares through the one normalizer and finds nothing to repair."""
    w = world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE volunteer SET name = :n, skills = :s WHERE id = :i"),
                     {"n": "\ufeff李\u200b明", "s": json.dumps(["急\u00ad救"]), "i": w["vols"][0]})
        joined = "CONCAT(name, :z)" if engine.dialect.name == "mysql" else "name || :z"  # MySQL's || is OR
        conn.execute(text(f"UPDATE organization SET name = {joined}, contact_name = :c WHERE id = :i"),
                     {"z": "\u200d", "c": "\u202e王芳\u202c", "i": w["tree"]["city"]})
        conn.execute(text("UPDATE activity SET title = :t WHERE id = :i"),
                     {"t": "社区\u2060环境清洁活动\u200e", "i": w["activity"]})
    summary = reconcile(settings, engine, repair=True)
    assert summary["discrepancies"] == {}, summary["listed"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar_one() == 0


def test_seeded_discrepancies_are_found_exactly_and_repaired(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    t, vols, act = w["tree"], w["vols"], w["activity"]
    v_field, v_hours, v_dup_of, v_orphan = vols
    # duplicate_person: the same person again, later, through the platform (the relay links it as a duplicate)
    with engine.begin() as conn:
        number = conn.execute(text("SELECT id_number FROM volunteer WHERE id = :i"), {"i": v_dup_of}).scalar_one()
        dup = f.volunteer(conn, id_number=number, registered_at=dt.datetime(2023, 1, 1))
    sync(settings, engine)
    # local edits that never reach the outbox (a lost change, an operator's SQL with triggers off)
    with engine.begin() as conn, suppress_outbox(conn):
        missing_vol = f.volunteer(conn, name="陈静")  # missing_in_registry
        missing_sr = f.service_record(conn, v_hours, act, t["team"], hours=200, day=2)  # + hours_mismatch
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id = :i"), {"i": v_field})
        broken = f.volunteer(conn, name="杨洋")  # broken_link: linked to an id the registry does not know
        conn.execute(text("INSERT INTO link (entity, local_id, registry_id, registry_version, base, is_duplicate, "
                          "revision, how, linked_at, updated_at) VALUES ('volunteer', :i, 'VOL9999999999999', 1, "
                          "'{}', false, 0, 'created', :now, :now)"), {"i": broken, "now": dt.datetime(2026, 1, 1)})
    # registry edits
    org_rid = rid(engine, "org", t["city"])
    patch(sandbox, "orgs", org_rid, {"name": "哈尔滨市志愿服务总队（更名）"})  # stale_link
    portal_vol = portal(sandbox, "volunteers", {  # missing_locally: self-registered on the portal
        "name": "周杰", "idType": "RESIDENT_ID", "idNumber": f.id_number(dt.date(1992, 3, 4)), "gender": "M",
        "birthDate": "1992-03-04", "phone": "13811112222", "regionCode": "230102", "skills": [],
        "homeProvince": "23"})
    sr = portal(sandbox, "service-records", {  # orphan: its volunteer is unknown to the registry
        "volunteerId": rid(engine, "volunteer", v_orphan), "activityId": rid(engine, "activity", act),
        "orgId": rid(engine, "org", t["team"]), "serviceDate": "2026-05-03",
        "startsAt": "2026-05-03T13:00:00+08:00", "endsAt": "2026-05-03T15:00:00+08:00", "hours": "1.00"})
    patch(sandbox, "service-records", sr["id"], {"volunteerId": "VOL8888888888888"})

    first = reconcile(settings, engine)
    assert first["discrepancies"] == {
        "broken_link": 1, "duplicate_person": 1, "field_mismatch": 1, "hours_mismatch": 1,
        "missing_in_registry": 2, "missing_locally": 1, "orphan": 1, "stale_link": 1}, first["listed"]
    rows = findings(engine, first["run_id"])
    got = {(r["kind"], r["entity"], r["local_id"], r["registry_id"]) for r in rows}
    assert got == {
        ("missing_in_registry", "volunteer", missing_vol, None),
        ("missing_in_registry", "service_record", missing_sr, None),
        ("missing_locally", "volunteer", None, portal_vol["id"]),
        ("field_mismatch", "volunteer", v_field, rid(engine, "volunteer", v_field)),
        ("stale_link", "org", t["city"], org_rid),
        ("broken_link", "volunteer", broken, "VOL9999999999999"),
        ("hours_mismatch", "volunteer", v_hours, rid(engine, "volunteer", v_hours)),
        ("duplicate_person", "volunteer", v_dup_of, rid(engine, "volunteer", v_dup_of)),
        ("orphan", "service_record", None, sr["id"]),
    }
    by_kind = {r["kind"]: r for r in rows}
    assert json.loads(by_kind["field_mismatch"]["fields"]) == ["region_code"]
    assert json.loads(by_kind["stale_link"]["fields"]) == ["name"]
    assert json.loads(by_kind["orphan"]["fields"]) == ["volunteer_id"]
    hours = json.loads(by_kind["hours_mismatch"]["details"])
    assert (hours["local_hours"], hours["registry_hours"]) == ("5.00", "3.00")
    assert hours["registry_total_hours"] == "3.00" and hours["registry_star_level"] == 0
    assert json.loads(by_kind["duplicate_person"]["details"])["local_ids"] == [v_dup_of, dup]
    assert all(r["city_code"] == "2301" for r in rows)
    assert by_kind["stale_link"]["org_line"] == "regional"
    assert by_kind["orphan"]["org_line"] == "specialized"
    assert all(r["action"] is None and r["action_state"] is None for r in rows)  # report only
    # masked details only: no full ID number, no full mobile number
    blob = " ".join(r["details"] for r in rows)
    assert not re.search(r"\d{17}[\dX]", blob) and not re.search(r"1[3-9]\d{9}", blob)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar_one() == 0

    repaired = reconcile(settings, engine, repair=True)
    assert repaired["discrepancies"] == first["discrepancies"]
    assert repaired["repaired"] == {"missing_locally": 1, "stale_link": 1}, repaired["actions"]
    assert repaired["queued"] == {"broken_link": 1, "field_mismatch": 1, "missing_in_registry": 2}
    assert repaired["requeued"] == {}
    actions = {(r["kind"], r["action"], r["action_state"]) for r in findings(engine, repaired["run_id"])}
    assert ("stale_link", "pull", "done") in actions and ("field_mismatch", "push", "queued") in actions
    assert ("broken_link", "relink", "queued") in actions and ("missing_locally", "pull", "done") in actions
    assert ("duplicate_person", "none", "not_allowed") in actions and ("orphan", "none", "not_allowed") in actions
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM organization WHERE id = :i"), {"i": t["city"]}).scalar_one()
    assert name == "哈尔滨市志愿服务总队（更名）"
    sync(settings, engine)

    second = reconcile(settings, engine)
    assert second["discrepancies"] == {"duplicate_person": 1, "orphan": 1}, second["listed"]


def test_repair_counts_what_it_queues_and_what_was_refused_before_not_as_repaired(settings, engine, sandbox) -> None:
    """``reconcile --repair`` says what each fix is: done by the run (``repaired``), an outbox row for the relay
    (``queued``), or queued again although the registry refused the record's data last time (``requeued``, with the
    code): it fails again at the relay and is never counted as repaired (summary, run record, ``--json``)."""
    w = world(engine, settings)
    bad = f.id_number()
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")  # a wrong check character: no standard fixes it
    with engine.begin() as conn:
        refused = f.volunteer(conn, id_number=bad, name="陈静")
        conn.execute(text("UPDATE volunteer SET phone = '12345' WHERE id = :i"), {"i": w["vols"][0]})
    first = sync(settings, engine)
    assert first["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1, "INVALID_PHONE": 1}, first
    with engine.begin() as conn, suppress_outbox(conn):
        lost = f.volunteer(conn, name="杨洋")  # a change that never reached the outbox: a plain fix
    code, summary = run_reconcile(settings, engine=engine, kinds=["volunteers"], repair=True)
    assert code == 0 and summary["discrepancies"] == {"field_mismatch": 1, "missing_in_registry": 2}
    assert summary["repaired"] == {}
    assert summary["queued"] == {"missing_in_registry": 1}
    assert summary["requeued"] == {"field_mismatch": 1, "missing_in_registry": 1}
    by_local = {d["local_id"]: d for d in summary["listed"]}
    assert (by_local[lost]["action_state"], by_local[refused]["action_state"]) == ("queued", "requeued")
    assert by_local[refused]["details"]["refused_before"] == "INVALID_ID_NUMBER"
    assert by_local[w["vols"][0]]["details"]["refused_before"] == "INVALID_PHONE"
    with engine.connect() as conn:
        stored = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                         {"i": summary["run_id"]}).scalar_one())
        states = dict(conn.execute(text("SELECT local_id, action_state FROM discrepancy WHERE run_id = :r"),
                                   {"r": summary["run_id"]}).all())
    assert (stored["repaired"], stored["queued"], stored["requeued"]) == (
        summary["repaired"], summary["queued"], summary["requeued"])
    assert states == {lost: "queued", refused: "requeued", w["vols"][0]: "requeued"}
    after = sync(settings, engine)  # the relay pass that follows: the queued one goes in, the others fail again
    assert after["pushed"] == {"volunteers": 1}
    assert after["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1, "INVALID_PHONE": 1}
    again = reconcile(settings, engine, kinds=["volunteers"], repair=True)
    assert again["repaired"] == again["queued"] == {}
    assert again["requeued"] == {"field_mismatch": 1, "missing_in_registry": 1}
    from typer.testing import CliRunner

    from regsync.console.cli import app

    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING"}
    sync(settings, engine)  # they fail again
    res = CliRunner().invoke(app, ["reconcile", "--kind", "volunteers", "--repair", "--json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["repaired"], out["queued"], out["requeued"]) == ({}, {}, again["requeued"])
    sync(settings, engine)
    res = CliRunner().invoke(app, ["reconcile", "--kind", "volunteers", "--repair"], env=env)
    assert res.exit_code == 0 and "2 queued again" in res.stdout and "fail again" in res.stdout, res.output


def test_kind_and_region_scope_and_the_feed_restart(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE volunteer SET skills = '[\"翻译\"]' WHERE id = :i"), {"i": w["vols"][0]})
        f.volunteer(conn, region_code="230203")  # another city: outside --region 2301
    only = reconcile(settings, engine, kinds=["volunteers"], region="2301")
    assert only["discrepancies"] == {"field_mismatch": 1}
    assert set(only["compared"]) == {"volunteer"} and only["hours"] == {}
    # a due reconcile restarts the feed from the exports' earliest snapshot cursor, but only a full one
    with engine.begin() as conn:
        mark_reconcile_due(conn, "CURSOR_EXPIRED", "1")
    reconcile(settings, engine, kinds=["volunteers"])
    with engine.connect() as conn:
        assert reconcile_due(conn) is not None
    full = reconcile(settings, engine)
    assert full["feed_restarted"] is True
    with engine.connect() as conn:
        assert reconcile_due(conn) is None
        assert saved_cursor(conn) == full["snapshot_cursor"]
    assert full["discrepancies"] == {"field_mismatch": 1, "missing_in_registry": 1}


def test_an_adoptable_pair_is_one_finding_and_repair_links_it(settings, engine, sandbox) -> None:
    world(engine, settings)
    number = f.id_number(dt.date(1988, 8, 8))
    with engine.begin() as conn, suppress_outbox(conn):
        local = f.volunteer(conn, id_number=number.lower() if number.endswith("X") else number, name="孙丽",
                            birth=dt.date(1988, 8, 8))
    reg = portal(sandbox, "volunteers", {
        "name": "孙丽", "idType": "RESIDENT_ID", "idNumber": number, "gender": "M", "birthDate": "1988-08-08",
        "phone": "13700001234", "regionCode": "230102", "skills": [], "homeProvince": "23"})
    found = reconcile(settings, engine, kinds=["volunteers"])
    assert found["discrepancies"] == {"missing_locally": 1}
    only = found["listed"][0]
    assert (only["local_id"], only["registry_id"], only["details"]["adoptable"]) == (local, reg["id"], True)
    fixed = reconcile(settings, engine, kinds=["volunteers"], repair=True)
    assert fixed["actions"] == {"relink": {"done": 1}}
    with engine.connect() as conn:
        how = conn.execute(text("SELECT how FROM link WHERE entity = 'volunteer' AND local_id = :i"),
                           {"i": local}).scalar_one()
    assert how == "adopted"
    assert reconcile(settings, engine, kinds=["volunteers"])["discrepancies"] == {}


def test_a_stopped_reconcile_is_recorded_as_partial(settings, engine) -> None:
    world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):
        for _ in range(3):
            f.volunteer(conn)
    code, summary = run_reconcile(settings, engine=engine, stop=lambda: True)
    assert code == 130 and summary["status"] == "partial" and summary["error"] == "interrupted"
    assert summary["feed_restarted"] is False
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM run WHERE id = :i"), {"i": summary["run_id"]}).scalar_one() \
            == "partial"


def test_a_repair_of_a_service_record_under_a_dissolved_team_keeps_the_registrys_hours(
        settings, engine, sandbox) -> None:
    """Issue 12, item 2: ``reconcile --repair`` pushes a service record whose hours differ (never merged). Its team
    was dissolved by civil affairs meanwhile: the repair used to revoke the registry's record and then fail
    NOT_ACTIVE on the new one, so the volunteer lost the hours nationally. The correction is one step now
    (``:correct``, registry-api.md §4.5): refused, it changes nothing, and the row fails for an operator."""
    w = world(engine, settings)
    v = w["vols"][0]
    with engine.connect() as conn:
        sr = conn.execute(text("SELECT id FROM service_record WHERE volunteer_id = :v"), {"v": v}).scalar_one()
    sr_rid, v_rid = rid(engine, "service_record", sr), rid(engine, "volunteer", v)
    with engine.begin() as conn, suppress_outbox(conn):  # a local change that never reached the outbox
        conn.execute(text("UPDATE service_record SET hours = 250 WHERE id = :i"), {"i": sr})
    portal(sandbox, f"orgs/{rid(engine, 'org', w['tree']['team'])}/dissolve")
    repaired = reconcile(settings, engine, kinds=["service_records"], repair=True)
    assert repaired["discrepancies"] == {"field_mismatch": 1, "hours_mismatch": 1}, repaired["listed"]
    sync(settings, engine)

    def registry(collection: str, registry_id: str) -> dict[str, Any]:
        r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
        return next(x for x in r.json()["data"]["records"] if x["id"] == registry_id)

    kept = registry("service-records", sr_rid)
    assert (kept["status"], kept["hours"]) == ("ACCEPTED", "3.00")
    assert registry("volunteers", v_rid)["totalHours"] == "3.00"
    assert rid(engine, "service_record", sr) == sr_rid
    with engine.connect() as conn:
        state = conn.execute(text("SELECT state, last_code FROM outbox WHERE entity = 'service_record' "
                                  "AND local_id = :i ORDER BY id DESC"), {"i": sr}).first()
    assert tuple(state) == ("failed", "NOT_ACTIVE")


def _pending(engine: Engine, kind: str, local_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM outbox WHERE entity = :e AND local_id = :i "
                                 "AND state IN ('pending', 'deferred')"), {"e": kind, "i": local_id}).scalar_one()


def test_a_second_repair_counts_records_refused_on_unchanged_data_as_requeued_again(settings, engine, sandbox) -> None:
    """A record the registry refused on its data stays ``requeued`` (with ``refused_before``) on a second
    ``reconcile --repair`` straight after the first, and after an ``outbox retry``: the rows they queued again carry
    no local change, so the record fails again. No second row is queued for it; a local change makes it ``queued``."""
    from regsync.flows.operator import Selection, retry_outbox

    w = world(engine, settings)
    bad = f.id_number()
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")
    with engine.begin() as conn:
        refused = f.volunteer(conn, id_number=bad, name="陈静")
        conn.execute(text("UPDATE volunteer SET phone = '12345' WHERE id = :i"), {"i": w["vols"][0]})
    assert sync(settings, engine)["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1, "INVALID_PHONE": 1}
    for _ in range(2):  # the first repair queues them again; the second sees only those rows since the refusal
        out = reconcile(settings, engine, kinds=["volunteers"], repair=True)
        assert out["queued"] == {} and out["repaired"] == {}, out
        assert out["requeued"] == {"field_mismatch": 1, "missing_in_registry": 1}, out
        by_local = {d["local_id"]: d for d in out["listed"]}
        assert by_local[refused]["details"]["refused_before"] == "INVALID_ID_NUMBER"
        assert by_local[w["vols"][0]]["details"]["refused_before"] == "INVALID_PHONE"
        assert _pending(engine, "volunteer", refused) == 1
    assert sync(settings, engine)["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1, "INVALID_PHONE": 1}
    retried = retry_outbox(engine, Selection(records=(("volunteer", refused),)), reason="try again", actor="op")
    assert retried.affected == 1
    out = reconcile(settings, engine, kinds=["volunteers"], repair=True)
    assert out["requeued"] == {"field_mismatch": 1, "missing_in_registry": 1} and out["queued"] == {}, out
    assert {d["local_id"]: d for d in out["listed"]}[refused]["details"]["refused_before"] == "INVALID_ID_NUMBER"
    with engine.begin() as conn:  # a local change after the refusal: an ordinary push
        conn.execute(text("UPDATE volunteer SET id_number = :n WHERE id = :i"), {"n": f.id_number(), "i": refused})
    out = reconcile(settings, engine, kinds=["volunteers"], repair=True)
    assert out["queued"] == {"missing_in_registry": 1} and out["requeued"] == {"field_mismatch": 1}, out
    assert "refused_before" not in {d["local_id"]: d for d in out["listed"]}[refused]["details"]
