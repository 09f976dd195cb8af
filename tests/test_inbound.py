"""The inbound poller against the sandbox registry over real HTTP on loopback, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
from regsync.db.feed import reconcile_due, saved_cursor
from regsync.flows.inbound import InboundStats, Poller
from regsync.flows.sync import run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import MergeSettings, Settings


def poll(settings: Settings, engine: Engine, **kw: Any) -> InboundStats:
    with RegistryClient(settings.registry, province=settings.province) as client:
        return Poller(engine, client, settings, **kw).run()


def first_cursor(settings: Settings, engine: Engine) -> str:
    with RegistryClient(settings.registry, province=settings.province) as client:
        return Poller(engine, client, settings).take_first_cursor()


def sync(settings: Settings, engine: Engine, **kw: Any) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, **kw)
    assert code == 0, summary
    return summary


def portal(sandbox: SandboxServer, path: str, body: Any = None) -> dict[str, Any]:
    r = httpx.post(f"{sandbox.admin_url}/portal/{path}", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


def rid(engine: Engine, entity: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :e AND local_id = :i"),
                            {"e": entity, "i": local_id}).scalar_one()


def row(engine: Engine, table: str, local_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT * FROM {table} WHERE id = :i"), {"i": local_id}).mappings().one()


def pending(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT entity, local_id FROM outbox WHERE state IN ('pending', 'deferred') ORDER BY id"))]


def registry_record(sandbox: SandboxServer, collection: str, registry_id: str) -> dict[str, Any]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
    r.raise_for_status()
    return next(x for x in r.json()["data"]["records"] if x["id"] == registry_id)


def pushed_world(settings: Settings, engine: Engine, volunteers: int = 1) -> dict[str, Any]:
    """An org tree, volunteers and an activity, pushed after the first cursor; the echoes polled away."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        vols = [f.volunteer(conn) for _ in range(volunteers)]
        a = f.activity(conn, t["team"])
    first_cursor(settings, engine)
    summary = sync(settings, engine)  # outbound, then inbound: the pull drops the echoes of the pushes
    assert summary["inbound"]["echoes"] > 0, summary
    assert not (summary["merged"] or summary["conflicts"] or summary["created_locally"]), summary
    again = poll(settings, engine)
    assert again.applied == 0 and again.changes == 0, again.as_dict()
    return {"tree": t, "vols": vols, "activity": a}


def test_contact_edit_merges_and_a_local_descriptive_change_survives(settings, engine, sandbox) -> None:
    w = pushed_world(settings, engine)
    v = w["vols"][0]
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id = :i"), {"i": v})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v)}/contact",
           {"phone": "13700002222", "skills": ["急救", "翻译"]})
    stats = poll(settings, engine)
    assert stats.merged == {"volunteer": 1} and not stats.conflicts
    local = row(engine, "volunteer", v)
    assert local["phone"] == "13700002222" and json.loads(local["skills"]) == ["急救", "翻译"]
    assert local["region_code"] == "230103"  # local, descriptive: survives
    assert stats.pushes_queued == {"volunteer": 1}
    assert stats.decisions["volunteer.phone:registry_only:registry"] == 1
    assert stats.decisions["volunteer.region_code:local_only:local"] == 1
    with engine.connect() as conn:
        summary = json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"),
                                          {"i": stats.run_id}).scalar_one())
    assert {"kind": "volunteer", "local_id": v, "field": "phone", "rule": "registry_only",
            "winner": "registry"}.items() <= next(d for d in summary["decision_log"] if d["field"] == "phone").items()
    # the relay pushes the local change on the registry's new version; then all is quiet
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1} and summary["still_failed"] == {}
    rec = registry_record(sandbox, "volunteers", rid(engine, "volunteer", v))
    assert rec["regionCode"] == "230103" and rec["phone"] == "13700002222"
    again = poll(settings, engine)
    assert again.applied == 0 and pending(engine) == []


def test_both_changed_with_manual_makes_a_conflict_and_the_rest_syncs(settings, engine, sandbox) -> None:
    settings = dataclasses.replace(settings, merge=MergeSettings(contact="manual"))
    w = pushed_world(settings, engine)
    v = w["vols"][0]
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13600001111', region_code = '230103' WHERE id = :i"),
                     {"i": v})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v)}/contact", {"phone": "13700002222"})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v)}/identity", {"name": "李铭"})
    stats = poll(settings, engine)
    assert stats.conflicts == {"volunteer": 1}
    local = row(engine, "volunteer", v)
    assert local["phone"] == "13600001111"  # held: unchanged until an operator decides
    assert local["name"] == "李铭" and local["region_code"] == "230103"  # the other fields synced
    with engine.connect() as conn:
        c = conn.execute(text("SELECT * FROM conflict")).mappings().one()
    assert (c["entity"], c["local_id"], c["field"], c["state"]) == ("volunteer", v, "phone", "open")
    assert json.loads(c["local_value"]) == "136****1111" and json.loads(c["remote_value"]) == "137****2222"
    assert c["local_hash"].startswith("h:") and c["remote_hash"] != c["local_hash"]
    assert json.loads(c["base_value"]).startswith("h:")
    assert "13600001111" not in json.dumps(dict(c), default=str)
    assert "13700002222" not in json.dumps(dict(c), default=str)
    # polled again: the same conflict, not a second one
    poll(settings, engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM conflict WHERE state = 'open'")).scalar_one() == 1


def test_repeated_items_and_echoes_change_nothing(settings, engine, sandbox) -> None:
    w = pushed_world(settings, engine, volunteers=4)
    httpx.put(f"{sandbox.admin_url}/faults", json={"feed_duplicate_rate": 1.0}).raise_for_status()
    # a second push of our own (an echo) and two portal edits
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET region_code = '230104' WHERE id = :i"), {"i": w["vols"][0]})
    sync(settings, engine, inbound=False)  # its echo is left in the feed for the poll below
    for v in w["vols"][1:3]:
        portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v)}/contact", {"skills": ["翻译"]})
    stats = poll(settings, engine, page_limit=3)
    assert stats.merged == {"volunteer": 2} and stats.repeats > 0 and stats.echoes >= 1, stats.as_dict()
    assert stats.pushes_queued == {} and pending(engine) == []
    again = poll(settings, engine, page_limit=3)
    assert again.applied == 0 and pending(engine) == []


def test_a_self_registration_of_a_person_the_platform_has_is_linked_not_duplicated(settings, engine, sandbox) -> None:
    first_cursor(settings, engine)
    number = f.id_number(dt.date(1985, 6, 1))
    with engine.begin() as conn:
        v = f.volunteer(conn, id_number=number, birth=dt.date(1985, 6, 1), name="赵敏", phone="13899998888",
                        registered_at=dt.datetime(2019, 5, 1))
    reg = portal(sandbox, "volunteers", {
        "name": "赵敏", "idType": "RESIDENT_ID", "idNumber": number, "gender": "M", "birthDate": "1985-06-01",
        "phone": "13811112222", "regionCode": "230102", "skills": [], "homeProvince": "23"})
    stats = poll(settings, engine)
    assert stats.adopted == {"volunteer": 1} and stats.created == {}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM volunteer")).scalar_one() == 1
        link = conn.execute(text("SELECT registry_id, how FROM link WHERE entity = 'volunteer'")).one()
    assert tuple(link) == (reg["id"], "adopted")
    assert row(engine, "volunteer", v)["phone"] == "13811112222"  # contact: the registry's (both differ)
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}
    r = httpx.get(f"{sandbox.admin_url}/records/volunteers").json()["data"]["records"]
    assert len(r) == 1
    assert poll(settings, engine).applied == 0


def test_a_portal_service_record_is_created_locally_and_never_pushed(settings, engine, sandbox) -> None:
    w = pushed_world(settings, engine)
    t, v, a = w["tree"], w["vols"][0], w["activity"]
    sr = portal(sandbox, "service-records", {
        "volunteerId": rid(engine, "volunteer", v), "activityId": rid(engine, "activity", a),
        "orgId": rid(engine, "org", t["team"]), "serviceDate": "2026-05-02",
        "startsAt": "2026-05-02T09:00:00+08:00", "endsAt": "2026-05-02T11:00:00+08:00", "hours": "2.00"})
    stats = poll(settings, engine)
    assert stats.registry_owned == {"service_record": 1}
    with engine.connect() as conn:
        link = conn.execute(text("SELECT local_id, how FROM link WHERE entity = 'service_record'")).one()
        local = conn.execute(text("SELECT * FROM service_record WHERE id = :i"), {"i": link.local_id}).mappings().one()
    assert link.how == "registry_owned" and rid(engine, "service_record", link.local_id) == sr["id"]
    assert (local["volunteer_id"], local["activity_id"], local["org_id"], local["hours"]) == (v, a, t["team"], 200)
    assert pending(engine) == []
    summary = sync(settings, engine)
    assert summary["pushed"] == {} and summary["batches"] == 0
    assert poll(settings, engine).applied == 0


def test_transfer_deregistration_identity_and_dissolution_follow_policy(settings, engine, sandbox) -> None:
    w = pushed_world(settings, engine, volunteers=3)
    moved, gone, fixed = w["vols"]
    team = w["tree"]["team"]
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', moved)}/transfer", {"homeProvince": "11"})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', gone)}/deregister")
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', fixed)}/identity", {"name": "李明轩"})
    portal(sandbox, f"orgs/{rid(engine, 'org', team)}/dissolve")
    stats = poll(settings, engine)
    assert stats.transferred_out == 1
    assert stats.ended == {"volunteer": 1, "org": 1}
    assert row(engine, "volunteer", moved)["home_province"] == "11"
    assert row(engine, "volunteer", gone)["status"] == "DEREGISTERED"
    assert row(engine, "volunteer", fixed)["name"] == "李明轩"
    assert row(engine, "organization", team)["status"] == "DISSOLVED"
    d = stats.decisions
    assert d["volunteer.home_province:transferred_out:registry"] == 1
    assert d["volunteer.status:ended_wins:registry"] == 1
    assert d["volunteer.name:registry_only:registry"] == 1
    assert d["org.status:ended_wins:registry"] == 1
    assert pending(engine) == []  # applied locally without an echo
    assert sync(settings, engine)["batches"] == 0
    assert poll(settings, engine).applied == 0


def test_cursor_expired_marks_a_full_reconcile_due(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        f.org_tree(conn)
    cursor = first_cursor(settings, engine)
    sync(settings, engine, inbound=False)
    httpx.put(f"{sandbox.admin_url}/faults", json={"feed_retention_s": 0.5}).raise_for_status()
    time.sleep(1.2)
    stats = poll(settings, engine)
    assert stats.reconcile_due and stats.reconcile_reason == "CURSOR_EXPIRED" and stats.applied == 0
    with engine.connect() as conn:
        due = reconcile_due(conn)
        assert saved_cursor(conn) == cursor  # never silently restarted from the head
        status = conn.execute(text("SELECT status FROM run WHERE id = :i"), {"i": stats.run_id}).scalar_one()
    assert due is not None and due["reason"] == "CURSOR_EXPIRED" and due["cursor"] == cursor
    assert status == "partial"
    # the sync says so in its summary too, and its run is partial
    code, summary = run_sync(settings, engine=engine)
    assert code == 0 and summary["reconcile_due"] and summary["reconcile_reason"] == "CURSOR_EXPIRED"
    assert summary["status"] == "partial"


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
def test_records_created_from_the_registry_without_insert_returning_as_on_mysql_8(settings, engine, sandbox,
                                                                               monkeypatch) -> None:
    """MySQL 8 has no ``INSERT … RETURNING``: regsync then reads each new row's id from the driver (its last insert
    id). Played on MariaDB with the dialect's ``RETURNING`` turned off: people registered on the portal and a portal
    service record are created locally, each link names its own new row, and nothing is pushed back."""
    monkeypatch.setattr(engine.dialect, "insert_returning", False)
    w = pushed_world(settings, engine)
    t, v, a = w["tree"], w["vols"][0], w["activity"]
    people = [portal(sandbox, "volunteers", {
        "name": name, "idType": "RESIDENT_ID", "idNumber": f.id_number(dt.date(1980 + i, 3, 1), female=True),
        "gender": "F",
        "birthDate": f"{1980 + i}-03-01", "phone": "13811112222", "regionCode": "230102", "skills": [],
        "homeProvince": "23"}) for i, name in enumerate(("孙丽", "周𠮷", "吴敏"))]
    sr = portal(sandbox, "service-records", {
        "volunteerId": rid(engine, "volunteer", v), "activityId": rid(engine, "activity", a),
        "orgId": rid(engine, "org", t["team"]), "serviceDate": "2026-05-02",
        "startsAt": "2026-05-02T09:00:00+08:00", "endsAt": "2026-05-02T11:00:00+08:00", "hours": "2.00"})
    poll(settings, engine)
    with engine.connect() as conn:
        made = {r.registry_id: r.local_id for r in conn.execute(text(
            "SELECT registry_id, local_id FROM link WHERE entity = 'volunteer' AND local_id <> :v"), {"v": v})}
        names = dict(conn.execute(text("SELECT id, name FROM volunteer")).all())
        sr_local = conn.execute(text("SELECT local_id FROM link WHERE entity = 'service_record' "
                                     "AND registry_id = :r"), {"r": sr["id"]}).scalar_one()
        hours = conn.execute(text("SELECT volunteer_id, hours FROM service_record WHERE id = :i"),
                             {"i": sr_local}).one()
    assert {names[made[p["id"]]] for p in people} == {"孙丽", "周𠮷", "吴敏"}
    assert len(set(made.values())) == 3 and tuple(hours) == (v, 200)
    assert pending(engine) == []
