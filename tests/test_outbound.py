"""The outbound relay against the sandbox registry over real HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
from factories import TEST_HASH_KEY
from regsync.db.triggers import priority_sql
from regsync.flows.sync import run_sync
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, MergeSettings, RegistrySettings, RelaySettings, Settings


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(admin=True) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxServer, db_url: str) -> Settings:
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    return Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url),
                    registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                              client_secret=sandbox.client_secret),
                    log=LogSettings(level="WARNING"))


def sync(settings: Settings, engine: Engine, inbound: bool = False) -> dict[str, Any]:
    """Outbound passes until quiet (the relay alone unless ``inbound``: these tests are about the relay)."""
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, inbound=inbound)
    assert code == 0, summary
    return summary


def registry_records(sandbox: SandboxServer, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
    r.raise_for_status()
    return r.json()["data"]["records"]


def link_of(engine: Engine, entity: str, local_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id, registry_version, base, is_duplicate, how, revision FROM link "
                                 "WHERE entity = :e AND local_id = :i"), {"e": entity, "i": local_id}).one_or_none()


def outbox_states(engine: Engine) -> list[tuple[str, int, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT entity, local_id, state, last_code FROM outbox ORDER BY id")).all()]


def test_everything_pushed_once_and_a_second_sync_sends_nothing(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        a = f.activity(conn, t["team"])
        f.membership(conn, v, t["team"])
        f.service_record(conn, v, a, t["team"], hours=250)
    first = sync(settings, engine)
    assert first["pushed"] == {"orgs": 8, "volunteers": 1, "activities": 1, "memberships": 1, "service_records": 1}
    assert first["still_failed"] == {}
    vols = registry_records(sandbox, "volunteers")
    assert len(vols) == 1 and vols[0]["totalHours"] == "2.50"
    team = [o for o in registry_records(sandbox, "orgs") if o["level"] == "GRASSROOTS_TEAM"][0]
    assert team["stationId"] == link_of(engine, "org", t["community"]).registry_id
    assert team["parentId"] == link_of(engine, "org", t["unit"]).registry_id

    # nothing changed: no write, no batch
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET remark = 'note' WHERE id = :id"), {"id": v})
    second = sync(settings, engine)
    assert second["pushed"] == {} and second["batches"] == 0


def test_plain_sql_change_after_a_sync_is_pushed_and_nothing_else(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v1 = f.volunteer(conn)
        f.volunteer(conn)
        a = f.activity(conn, t["team"])
        f.service_record(conn, v1, a, t["team"])  # bumps v1's registry version (totalHours): a derived field
    sync(settings, engine)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        ph = "?" if engine.dialect.name == "sqlite" else "%s"
        cur.execute(f"UPDATE volunteer SET phone = {ph} WHERE id = {ph}", ("+86 137-0000-2222", v1))
        raw.commit()
    finally:
        raw.close()
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1}
    rid = link_of(engine, "volunteer", v1).registry_id
    rec = [r for r in registry_records(sandbox, "volunteers") if r["id"] == rid][0]
    assert rec["phone"] == "13700002222"  # normalized: +86 and separators off
    assert sync(settings, engine)["batches"] == 0


def test_a_person_already_in_the_registry_is_linked_not_created(settings, engine, sandbox) -> None:
    number = f.id_number(dt.date(1985, 6, 1))
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json={
        "name": "赵敏", "idType": "RESIDENT_ID", "idNumber": number, "gender": "M", "birthDate": "1985-06-01",
        "phone": "13811112222", "regionCode": "230102", "skills": [], "homeProvince": "23"})
    r.raise_for_status()
    portal_id = r.json()["data"]["id"]
    with engine.begin() as conn:
        v = f.volunteer(conn, id_number=number.lower() if number.endswith("X") else number,
                        birth=dt.date(1985, 6, 1), name="赵敏", phone="13899998888")
    summary = sync(settings, engine)
    assert summary["linked"] == {"volunteers": 1} and summary["pushed"] == {}
    link = link_of(engine, "volunteer", v)
    assert link.registry_id == portal_id and link.how == "duplicate_id_number"
    vols = registry_records(sandbox, "volunteers")
    assert len(vols) == 1
    assert vols[0]["phone"] == "13811112222"  # nothing pushed over the registry's record


def test_a_batch_that_fails_in_part_and_blocked_dependents(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        good = [f.volunteer(conn) for _ in range(3)]
        bad = f.volunteer(conn, phone="1391234")  # 7 digits: no standard fixes it
        a = f.activity(conn, t["team"])
        for i, v in enumerate(good + [bad]):
            f.service_record(conn, v, a, t["team"], day=1 + (i % 2))
        f.membership(conn, bad, t["team"])
    summary = sync(settings, engine)
    assert summary["pushed"]["volunteers"] == 3
    assert summary["still_failed"] == {"volunteers": 1, "service_records": 1, "memberships": 1}
    assert summary["still_failed_by_code"] == {"INVALID_PHONE": 1, "PARENT_FAILED": 2}
    with engine.connect() as conn:
        err = conn.execute(text("SELECT last_error FROM outbox WHERE entity = 'volunteer' AND local_id = :i"),
                           {"i": bad}).scalar_one()
    assert "phone" in err and "INVALID_PHONE" in err

    # corrected locally: sent again on its own, and what waited for it follows
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13900005555' WHERE id = :i"), {"i": bad})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1, "service_records": 1, "memberships": 1}
    assert summary["still_failed"] == {}
    assert len(registry_records(sandbox, "volunteers")) == 4


def test_creates_go_parents_first_whatever_the_queue_order(settings, engine, sandbox) -> None:
    from regsync.db.triggers import ORG_LEVEL_RANK, PRIORITY

    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
        m = f.membership(conn, v, t["team"])
        levels = dict(conn.execute(text("SELECT id, level FROM organization")).all())
        conn.execute(text("DELETE FROM outbox"))
        # queue the dependents first (lower outbox ids), what they refer to last
        queue = [("service_record", sr, PRIORITY["service_record"]), ("activity", a, PRIORITY["activity"]),
                 ("membership", m, PRIORITY["membership"]), ("volunteer", v, PRIORITY["volunteer"])]
        queue += [("org", t[k], PRIORITY["org"] + ORG_LEVEL_RANK[levels[t[k]]])
                  for k in ("team", "community", "unit", "street", "detachment", "district", "province", "city")]
        for entity, lid, prio in queue:
            conn.execute(text(
                "INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, available_at) "
                "VALUES (:e, :i, 'insert', :p, 'pending', 0, :now, :now)"),
                {"e": entity, "i": lid, "p": prio, "now": dt.datetime(2020, 1, 1)})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and summary["deferred"] == {}
    assert summary["pushed"] == {"orgs": 8, "volunteers": 1, "activities": 1, "memberships": 1,
                                 "service_records": 1}


def test_endings_go_children_first(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
        m = f.membership(conn, v, t["team"])
    sync(settings, engine)
    # one transaction ends everything: the volunteer before its records, the parents before the children
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET status = 'DEREGISTERED' WHERE id = :i"), {"i": v})
        conn.execute(text("UPDATE service_record SET status = 'REVOKED', revoke_reason = '重复录入' WHERE id = :i"),
                     {"i": sr})
        conn.execute(text("UPDATE membership SET left_on = :d WHERE id = :i"), {"i": m, "d": dt.date(2026, 6, 1)})
        for key in ("city", "district", "street", "community", "province", "detachment", "unit", "team"):
            conn.execute(text("UPDATE organization SET status = 'DISSOLVED' WHERE id = :i"), {"i": t[key]})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, outbox_states(engine)
    assert all(o["status"] == "DISSOLVED" for o in registry_records(sandbox, "orgs"))
    vol = registry_records(sandbox, "volunteers")[0]
    assert vol["status"] == "DEREGISTERED" and vol["totalHours"] == "0.00"
    assert registry_records(sandbox, "service-records")[0]["status"] == "REVOKED"
    assert registry_records(sandbox, "memberships")[0]["leftOn"] == "2026-06-01"


def test_two_local_rows_of_one_person(settings, engine, sandbox) -> None:
    number = f.id_number(dt.date(1970, 3, 3))
    with engine.begin() as conn:
        t = f.org_tree(conn)
        a = f.activity(conn, t["team"])
        newer = f.volunteer(conn, id_number="\uff12" + number[1:].lower(), birth=dt.date(1970, 3, 3),
                            registered_at=dt.datetime(2023, 1, 1), name="孙丽", phone="13700000001")
        older = f.volunteer(conn, id_number=number, birth=dt.date(1970, 3, 3),
                            registered_at=dt.datetime(2019, 1, 1), name="孙丽", phone="13700000002")
        f.service_record(conn, older, a, t["team"], hours=300, day=1)
        f.service_record(conn, newer, a, t["team"], hours=125, day=2)
        f.membership(conn, newer, t["team"])
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}
    primary, dup = link_of(engine, "volunteer", older), link_of(engine, "volunteer", newer)
    assert primary.registry_id == dup.registry_id and dup.is_duplicate and not primary.is_duplicate
    vols = registry_records(sandbox, "volunteers")
    assert len(vols) == 1 and vols[0]["phone"] == "13700000002"  # the primary's profile
    assert vols[0]["totalHours"] == "4.25"  # both rows' hours, under one person
    # the duplicate's profile is never pushed
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13700000009' WHERE id = :i"), {"i": newer})
    assert sync(settings, engine)["pushed"] == {}
    assert registry_records(sandbox, "volunteers")[0]["phone"] == "13700000002"


def test_memberships_of_two_rows_of_one_person_in_one_org_are_one(settings, engine, sandbox) -> None:
    number = f.id_number(dt.date(1977, 7, 7))
    with engine.begin() as conn:
        t = f.org_tree(conn)
        older = f.volunteer(conn, id_number=number, birth=dt.date(1977, 7, 7), registered_at=dt.datetime(2018, 1, 1))
        newer = f.volunteer(conn, id_number=number.lower(), birth=dt.date(1977, 7, 7),
                            registered_at=dt.datetime(2022, 1, 1))
        f.membership(conn, older, t["team"], joined_on=dt.date(2019, 5, 1))
        m2 = f.membership(conn, newer, t["team"], joined_on=dt.date(2022, 3, 1), left_on=dt.date(2022, 6, 1))
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, outbox_states(engine)
    members = registry_records(sandbox, "memberships")
    assert len(members) == 1 and members[0]["joinedOn"] == "2019-05-01" and members[0]["leftOn"] is None
    assert link_of(engine, "membership", m2).is_duplicate
    with engine.begin() as conn:  # the duplicate row's membership ends again: the person is still a member
        conn.execute(text("UPDATE membership SET left_on = :d WHERE id = :i"), {"i": m2, "d": dt.date(2022, 7, 1)})
    assert sync(settings, engine)["pushed"] == {}
    assert registry_records(sandbox, "memberships")[0]["leftOn"] is None


def test_the_first_row_of_a_pair_governs_even_with_batches_in_flight_at_once(settings, engine, sandbox) -> None:
    """One batch per membership, two in flight, a slow registry: the second row's join must not overtake the
    first's (it would set the membership's date). Found by the demo with portal activity."""
    one_by_one = dataclasses.replace(settings, relay=RelaySettings(batch_size=1))
    httpx.put(f"{sandbox.admin_url}/faults", json={"latency_ms": 30}).raise_for_status()
    try:
        firsts = []
        with engine.begin() as conn:
            t = f.org_tree(conn)
            for n in range(4):
                number = f.id_number(dt.date(1977, 7, 7 + n))
                older = f.volunteer(conn, id_number=number, birth=dt.date(1977, 7, 7 + n))
                newer = f.volunteer(conn, id_number=number.lower(), birth=dt.date(1977, 7, 7 + n))
                firsts.append(f.membership(conn, older, t["team"], joined_on=dt.date(2019, 5, 1 + n)))
                f.membership(conn, newer, t["team"], joined_on=dt.date(2022, 3, 1 + n))
        summary = sync(one_by_one, engine)
    finally:
        httpx.put(f"{sandbox.admin_url}/faults", json={"latency_ms": 0}).raise_for_status()
    assert summary["still_failed"] == {}, outbox_states(engine)
    members = sorted(r["joinedOn"] for r in registry_records(sandbox, "memberships"))
    assert members == [f"2019-05-0{1 + n}" for n in range(4)]
    assert all(not link_of(engine, "membership", m).is_duplicate for m in firsts)


def test_one_pass_leaves_nothing_that_waited_only_for_its_own_work(settings, engine, sandbox) -> None:
    """A person registered twice, a member of one org under both rows: the later volunteer row waits for its
    primary's link and the later membership for the first of its pair, both written in the same pass. One
    ``regsync sync`` (no ``--until-quiet``) must send them too: they were left deferred for a second or two, so
    that on a fast machine the next sync sent them ("a second sync sends nothing" failed)."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        number = f.id_number(dt.date(1981, 8, 8))
        older = f.volunteer(conn, id_number=number, birth=dt.date(1981, 8, 8))
        newer = f.volunteer(conn, id_number=number.lower(), birth=dt.date(1981, 8, 8),
                            registered_at=dt.datetime(2023, 1, 1))
        f.membership(conn, older, t["team"], joined_on=dt.date(2019, 5, 1))
        f.membership(conn, newer, t["team"], joined_on=dt.date(2023, 3, 1))
    code, first = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and first["backlog"] == 0 and first["deferred"] == {}, first
    assert link_of(engine, "volunteer", newer).how == "duplicate_person"
    # the second membership's join was answered with the pair's membership: linked, not a write of its own
    assert first["pushed"]["memberships"] == 1 and first["linked"] == {"volunteers": 1, "memberships": 1}, first
    code, second = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and second["batches"] == 0 and second["pushed"] == {} and second["linked"] == {}, second


def test_a_revoked_record_under_the_same_client_ref_is_corrected_not_looped(settings, engine, sandbox) -> None:
    """The store forgot its link (restored from a backup taken before the push) and the registry's record under
    that clientRef was revoked meanwhile: the create answers DUPLICATE_CLIENT_REF with a revoked record. The
    platform's record goes in as a corrected one under the next clientRef, once (it used to be sent under the same
    clientRef again and again, found by a fresh store pushed into a used sandbox)."""
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    rid = link_of(engine, "service_record", sr).registry_id
    httpx.patch(f"{sandbox.admin_url}/records/service-records/{rid}",
                json={"status": "REVOKED", "revokeReason": "录入错误"}).raise_for_status()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM link WHERE entity = 'service_record'"))
        conn.execute(text("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, "
                          "available_at) SELECT 'service_record', id, 'insert', 50, 'pending', 0, "
                          "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM service_record"))
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and summary["batches"] < 10, summary
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["clientRef"])
    assert [(r["clientRef"], r["status"]) for r in records] == [(str(sr), "REVOKED"), (f"{sr}-r1", "ACCEPTED")]
    link = link_of(engine, "service_record", sr)
    assert link.registry_id == records[1]["id"] and link.revision == 1
    assert sync(settings, engine)["batches"] == 0


def test_a_client_ref_that_names_another_person_is_neither_linked_nor_written_over(settings, engine, sandbox) -> None:
    """A rebuilt store under the same client credentials: its local ids, hence its clientRefs, are the old
    store's, held by other people. The create answers DUPLICATE_CLIENT_REF with the old person's record; it must
    not be linked and pushed over (it was: one person's record took another's name and ID number). The orgs
    under the same clientRefs are the same orgs, but this store never sent them (its history of creates is gone
    with its links): they are not linked either, and nothing of this store is written over them (issue 12,
    item 4: they used to be linked and brought to this store's contact and descriptive fields)."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn, name="王芳")
        m = f.membership(conn, v, t["team"])
    sync(settings, engine)
    before = registry_records(sandbox, "volunteers")
    other = f.id_number(dt.date(1985, 3, 3))
    with engine.begin() as conn:  # the rebuilt store: no links, no history of creates, and v is someone else
        conn.execute(text("DELETE FROM link"))
        conn.execute(text("DELETE FROM create_sent"))
        conn.execute(text("UPDATE volunteer SET name = '赵强', id_number = :n, birth_date = :b WHERE id = :v"),
                     {"n": other, "b": dt.date(1985, 3, 3), "v": v})
        for table, entity in (("organization", "org"), ("volunteer", "volunteer"), ("membership", "membership")):
            conn.execute(text("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, "
                              f"available_at) SELECT '{entity}', id, 'insert', "
                              f"{priority_sql(entity, table, 'insert')}, 'pending', 0, "
                              f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {table}"))
    orgs_before = registry_records(sandbox, "orgs")
    summary = sync(settings, engine)
    assert summary["still_failed"] == {"orgs": len(t), "volunteers": 1, "memberships": 1}, summary
    assert registry_records(sandbox, "volunteers") == before  # nothing written over the other person
    assert registry_records(sandbox, "orgs") == orgs_before
    assert link_of(engine, "volunteer", v) is None and link_of(engine, "membership", m) is None
    assert link_of(engine, "org", t["team"]) is None
    states = {(e, i): (s, c) for e, i, s, c in outbox_states(engine) if s != "sent"}
    roots = {t["city"], t["province"]}  # the orgs under them wait for them
    assert states == {("volunteer", v): ("failed", "CLIENT_REF_TAKEN"), ("membership", m): ("blocked", "PARENT_FAILED"),
                      **{("org", o): ("failed", "CLIENT_REF_TAKEN") if o in roots else ("blocked", "PARENT_FAILED")
                         for o in t.values()}}


def test_a_person_deleted_and_another_inserted_before_a_sync_are_two_records(settings, engine, sandbox) -> None:
    """The newest volunteer deleted on the platform and another person inserted: the new row must not take the
    deleted row's id, link and registry record (SQLite handed the id out again, and the new person was pushed
    over the old one's record)."""
    with engine.begin() as conn:
        f.volunteer(conn)
        gone = f.volunteer(conn, name="王芳")
    sync(settings, engine)
    gone_rid = link_of(engine, "volunteer", gone).registry_id
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM volunteer WHERE id = :i"), {"i": gone})
        new = f.volunteer(conn, name="赵强")
    summary = sync(settings, engine)
    assert new != gone and summary["still_failed"] == {}, summary
    records = {r["id"]: r for r in registry_records(sandbox, "volunteers")}
    assert (records[gone_rid]["name"], records[gone_rid]["status"]) == ("王芳", "DEREGISTERED")
    new_rid = link_of(engine, "volunteer", new).registry_id
    assert new_rid != gone_rid and (records[new_rid]["name"], records[new_rid]["status"]) == ("赵强", "ACTIVE")


def test_a_corrected_service_record_is_replaced_in_one_step(settings, engine, sandbox) -> None:
    """design.md's table of local changes: an update of a service record is a ``:correct`` (registry-api.md §4.5),
    one write that revokes the old record and accepts the corrected one."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        a = f.activity(conn, t["team"])
        sr = f.service_record(conn, v, a, t["team"], hours=200)
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 275 WHERE id = :i"), {"i": sr})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"service_records": 1} and summary["batches"] == 1  # one correction
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"], r["revokeReason"]) for r in records] == [
        ("REVOKED", "2.00", str(sr), "corrected"), ("ACCEPTED", "2.75", f"{sr}-r1", None)]
    assert records[1]["correctsId"] == records[0]["id"]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "2.75"
    link = link_of(engine, "service_record", sr)
    assert link.registry_id == records[1]["id"] and link.revision == 1
    assert sync(settings, engine)["batches"] == 0
    # a second correction goes in under the next clientRef
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 300 WHERE id = :i"), {"i": sr})
    sync(settings, engine)
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"]) for r in records][1:] == [
        ("REVOKED", "2.75", f"{sr}-r1"), ("ACCEPTED", "3.00", f"{sr}-r2")]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "3.00"
    assert link_of(engine, "service_record", sr).revision == 2


def _registry_hours_unchanged(engine: Engine, sandbox: SandboxServer, sr: int, rid: str) -> None:
    """The registry's record ``rid`` of local service record ``sr`` is still the one accepted, with its hours
    (2.50) counted in the volunteer's total, and the link still names it."""
    records = registry_records(sandbox, "service-records")
    assert [(r["id"], r["status"], r["hours"]) for r in records] == [(rid, "ACCEPTED", "2.50")]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "2.50"
    link = link_of(engine, "service_record", sr)
    assert (link.registry_id, link.revision) == (rid, 0)


@pytest.mark.parametrize("ended", ["org_dissolved", "activity_cancelled"])
def test_a_correction_under_an_ended_parent_keeps_the_registrys_hours_and_fails_for_an_operator(
        settings, engine, sandbox, ended) -> None:
    """Issue 12, item 2: the hours of a service record corrected after its team was dissolved (or its activity
    cancelled). It used to revoke the registry's record and then fail NOT_ACTIVE on the new one: the volunteer lost
    the hours nationally for good. Now the registry's record is never revoked unless its replacement is accepted
    (``:correct``, registry-api.md §4.5): the row fails with the registry's reason, the hours stay."""
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    rid = link_of(engine, "service_record", sr).registry_id
    with engine.begin() as conn:
        if ended == "org_dissolved":
            conn.execute(text("UPDATE organization SET status = 'DISSOLVED' WHERE id = :i"), {"i": t["team"]})
        else:
            conn.execute(text("UPDATE activity SET status = 'CANCELLED' WHERE id = :i"), {"i": a})
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 200 WHERE id = :i"), {"i": sr})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {"service_records": 1}, summary
    _registry_hours_unchanged(engine, sandbox, sr, rid)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, last_code, last_error FROM outbox WHERE entity = 'service_record' "
                                "ORDER BY id DESC")).first()
    assert (row.state, row.last_code) == ("failed", "NOT_ACTIVE")
    assert rid in row.last_error and "stays ACCEPTED" in row.last_error
    assert ("org_id" if ended == "org_dissolved" else "activity_id") in row.last_error
    assert sync(settings, engine)["batches"] == 0  # nothing more is tried until an operator acts


def test_a_correction_over_the_span_keeps_the_registrys_hours_and_fails_for_an_operator(
        settings, engine, sandbox) -> None:
    """Issue 12, item 2: hours corrected to more than the span from start to end (3 h) used to revoke the
    registry's record, then fail INVALID_HOURS on the new one."""
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    rid = link_of(engine, "service_record", sr).registry_id
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 325 WHERE id = :i"), {"i": sr})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {"service_records": 1}, summary
    _registry_hours_unchanged(engine, sandbox, sr, rid)
    assert [s for s in outbox_states(engine) if s[2] != "sent"] == [("service_record", sr, "failed", "INVALID_HOURS")]
    # the platform fixes the hours: the correction goes through, once
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 275 WHERE id = :i"), {"i": sr})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and summary["pushed"] == {"service_records": 1}, summary
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"]) for r in records] == [
        ("REVOKED", "2.50", str(sr)), ("ACCEPTED", "2.75", f"{sr}-r1")]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "2.75"


def test_a_correction_whose_answer_was_lost_is_linked_then_corrected_again(settings, engine, sandbox) -> None:
    """A correction the registry carried out whose answer was lost, then another local edit (a new write, a new
    key): the registry answers INVALID_STATE (the record corrected is revoked already). The relay finds its own
    correction under the new clientRef, links it, and corrects that one: each hour counted once."""
    settings = dataclasses.replace(settings, registry=dataclasses.replace(settings.registry, max_retries=1))
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 200 WHERE id = :i"), {"i": sr})
    httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 1.0}).raise_for_status()
    try:
        code, summary = run_sync(settings, engine=engine, inbound=False)
    finally:
        httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 0.0}).raise_for_status()
    records = registry_records(sandbox, "service-records")
    assert [(r["status"], r["hours"]) for r in records] == [("REVOKED", "2.50"), ("ACCEPTED", "2.00")]
    assert link_of(engine, "service_record", sr).registry_id == records[0]["id"]  # the answer never came
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 150 WHERE id = :i"), {"i": sr})
        conn.execute(text("UPDATE outbox SET available_at = :t WHERE state = 'deferred'"),
                     {"t": dt.datetime(2000, 1, 1)})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"]) for r in records] == [
        ("REVOKED", "2.50", str(sr)), ("REVOKED", "2.00", f"{sr}-r1"), ("ACCEPTED", "1.50", f"{sr}-r2")]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "1.50"
    link = link_of(engine, "service_record", sr)
    assert (link.registry_id, link.revision) == (records[2]["id"], 2)
    assert sync(settings, engine)["batches"] == 0


def test_a_correction_whose_answer_was_lost_a_day_ago_is_found_by_client_ref_not_sent_again(
        settings, engine, sandbox) -> None:
    """A correction whose answer was lost longer ago than the registry keeps its keys (registry-api.md §5.1: 24 h):
    like a create, it is looked up by the new record's clientRef first, found as this very correction (its
    ``correctsId``) and linked; nothing is sent."""
    settings = dataclasses.replace(settings, registry=dataclasses.replace(settings.registry, max_retries=1))
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 200 WHERE id = :i"), {"i": sr})
    httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 1.0}).raise_for_status()
    try:
        run_sync(settings, engine=engine, inbound=False)
    finally:
        httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 0.0}).raise_for_status()
    with engine.begin() as conn:  # the lost answer is a day old
        conn.execute(text("UPDATE outbox SET available_at = :t, created_at = :t WHERE state = 'deferred'"),
                     {"t": dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=1)})
    summary = sync(settings, engine)
    assert summary["batches"] == 0 and summary["still_failed"] == {}, summary
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"]) for r in records] == [
        ("REVOKED", "2.50", str(sr)), ("ACCEPTED", "2.00", f"{sr}-r1")]
    link = link_of(engine, "service_record", sr)
    assert (link.registry_id, link.revision) == (records[1]["id"], 1)
    assert sync(settings, engine)["batches"] == 0


def test_a_correction_whose_client_ref_is_taken_goes_in_under_the_next_revision(settings, engine, sandbox) -> None:
    """A link that names the registry's current record but an older correction number (as ``adopt`` or a restored
    link leaves it: revision 0 on the record under ``<id>-r1``): the correction's clientRef ``<id>-r1`` is the
    record corrected itself, answered DUPLICATE_CLIENT_REF with nothing changed. The correction goes in under the
    next number, once, and the registry's record stays accepted until it does."""
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE service_record SET hours = 200 WHERE id = :i"), {"i": sr})
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE link SET revision = 0 WHERE entity = 'service_record'"))
        conn.execute(text("UPDATE service_record SET hours = 150 WHERE id = :i"), {"i": sr})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and summary["pushed"] == {"service_records": 1}, summary
    records = sorted(registry_records(sandbox, "service-records"), key=lambda r: r["id"])
    assert [(r["status"], r["hours"], r["clientRef"]) for r in records] == [
        ("REVOKED", "2.50", str(sr)), ("REVOKED", "2.00", f"{sr}-r1"), ("ACCEPTED", "1.50", f"{sr}-r2")]
    assert records[2]["correctsId"] == records[1]["id"]
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "1.50"
    link = link_of(engine, "service_record", sr)
    assert (link.registry_id, link.revision) == (records[2]["id"], 2)
    assert sync(settings, engine)["batches"] == 0


def test_version_mismatch_from_a_derived_field_is_retried_on_the_new_version(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        a = f.activity(conn, t["team"])
    sync(settings, engine)
    version_before = link_of(engine, "volunteer", v).registry_version
    with engine.begin() as conn:
        f.service_record(conn, v, a, t["team"])  # the registry bumps the volunteer's version (totalHours)
    sync(settings, engine)
    assert link_of(engine, "volunteer", v).registry_version == version_before  # the link has not seen it
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET skills = :s WHERE id = :i"),
                     {"s": json.dumps(["急救", "翻译"]), "i": v})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1} and summary["still_failed"] == {}
    rec = registry_records(sandbox, "volunteers")[0]
    assert sorted(rec["skills"]) == ["急救", "翻译"]


def test_a_synced_field_moved_in_the_registry_is_merged_not_overwritten(settings, engine, sandbox) -> None:
    """VERSION_MISMATCH with a synced field moved goes through the three-way merge: the registry's phone (its
    change alone) comes home, the platform's region code goes out under the fresh version, and the stale
    content is never sent."""
    with engine.begin() as conn:
        v = f.volunteer(conn, phone="13800001111")
    sync(settings, engine)
    rid = link_of(engine, "volunteer", v).registry_id
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{rid}", json={"phone": "13655556666"}).raise_for_status()
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET region_code = '230103' WHERE id = :i"), {"i": v})
    summary = sync(settings, engine)
    assert summary["merged_on_push"] == {"volunteers": 1} and summary["still_failed"] == {}, summary
    assert summary["pushed"] == {"volunteers": 1}
    rec = next(r for r in registry_records(sandbox, "volunteers") if r["id"] == rid)
    assert rec["phone"] == "13655556666" and rec["regionCode"] == "230103"
    with engine.connect() as conn:
        local = conn.execute(text("SELECT phone, region_code FROM volunteer WHERE id = :i"), {"i": v}).one()
        queued = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'deferred')")).scalar()
    assert tuple(local) == ("13655556666", "230103") and queued == 0
    assert link_of(engine, "volunteer", v).registry_version == rec["version"]


def test_a_both_sides_change_on_push_follows_the_policy(settings, engine, sandbox) -> None:
    """The same field changed on both sides, met on push: the group's policy decides (contact → registry), and
    with ``manual`` the field is held as a conflict while the other fields still go out."""
    with engine.begin() as conn:
        v = f.volunteer(conn, phone="13800001111")
    sync(settings, engine)
    rid = link_of(engine, "volunteer", v).registry_id
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{rid}", json={"phone": "13655556666"}).raise_for_status()
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13977778888', region_code = '230103' WHERE id = :i"),
                     {"i": v})
    manual = dataclasses.replace(settings, merge=MergeSettings(contact="manual"))
    summary = sync(manual, engine)
    assert summary["merged_on_push"] == {"volunteers": 1} and summary["still_failed"] == {}, summary
    rec = next(r for r in registry_records(sandbox, "volunteers") if r["id"] == rid)
    assert rec["phone"] == "13655556666" and rec["regionCode"] == "230103"  # held; the rest went out
    with engine.connect() as conn:
        conflicts = conn.execute(text("SELECT field, state FROM conflict WHERE local_id = :i"), {"i": v}).all()
        phone = conn.execute(text("SELECT phone FROM volunteer WHERE id = :i"), {"i": v}).scalar_one()
    assert [tuple(c) for c in conflicts] == [("phone", "open")] and phone == "13977778888"
    assert summary["conflicts"] == {"volunteers": 1}  # opened on push, reported by the sync
    # a later local edit of another field still syncs; the held phone is still not sent
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET skills = :s WHERE id = :i"), {"s": json.dumps(["翻译"]), "i": v})
    summary = sync(manual, engine)
    rec = next(r for r in registry_records(sandbox, "volunteers") if r["id"] == rid)
    assert rec["skills"] == ["翻译"] and rec["phone"] == "13655556666", summary
    assert summary["held_fields"] == {"volunteers": 1}


@pytest.mark.parametrize(("column", "dirty", "expected"), [
    ("id_number", "lower_x", None),
    ("id_number", "legacy_15", None),
    ("id_number", "fullwidth", None),
    ("name", "买买提•艾力", "买买提·艾力"),
    ("name", "买买提．艾力", "买买提·艾力"),
    ("name", "买买提・艾力", "买买提·艾力"),
    ("name", "𠀋𡈽明", "𠀋𡈽明"),
    ("phone", "+86 139-0000-1234", "13900001234"),
    ("phone", "", None),
])
def test_each_kind_of_dirt_is_normalized_before_sending(settings, engine, sandbox, column, dirty, expected) -> None:
    birth = dt.date(1968, 8, 8)
    clean = f.id_number(birth)
    while not clean.endswith("X") and dirty == "lower_x":
        clean = f.id_number(birth)
    row: dict[str, Any] = {"birth": birth, "id_number": clean}
    if column == "id_number":
        row["id_number"] = {"lower_x": clean.lower(), "legacy_15": clean[:6] + clean[8:17],
                            "fullwidth": "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in clean)}[dirty]
        if dirty == "legacy_15":
            from regsync.domain.normalize import legacy_to_18
            clean = legacy_to_18(row["id_number"])
        expected = clean
    else:
        row[column] = dirty
    with engine.begin() as conn:
        f.volunteer(conn, **row)
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1}, summary
    rec = registry_records(sandbox, "volunteers")[0]
    wire = {"id_number": "idNumber", "name": "name", "phone": "phone"}[column]
    assert rec[wire] == expected


#: Characters that do not print (Unicode category Cf), as pasted from web pages and chat apps.
ZWSP, ZWJ, ZWNJ, BOM, SHY, LRM, RLO, PDF, WJ = ("\u200b", "\u200d", "\u200c", "\ufeff", "\u00ad", "\u200e",
                                            "\u202e", "\u202c", "\u2060")


@pytest.mark.parametrize(("kind", "column", "dirty", "clean"), [
    ("volunteer", "name", f"李{ZWSP}明", "李明"),
    ("volunteer", "name", f"{BOM}买买提{ZWJ}•艾力{LRM}", "买买提·艾力"),
    ("volunteer", "name", f"John{SHY}{WJ} Smith", "John Smith"),
    ("volunteer", "id_number", BOM, None),
    ("volunteer", "phone", f"{LRM}139{ZWSP}1234{ZWNJ}5678", "13912345678"),
    ("volunteer", "skills", json.dumps([f"急{ZWSP}救", f"翻译{BOM}"]), ["急救", "翻译"]),
    ("org", "name", f"测试{ZWSP}志愿服务总队", "测试志愿服务总队"),
    ("org", "contact_name", f"{RLO}王芳{PDF}", "王芳"),
    ("org", "contact_phone", f"0451-{ZWSP}86123456", "0451-86123456"),
    ("org", "uscc", ZWSP, None),
    ("activity", "title", f"社区{ZWJ}环境清洁{SHY}活动", "社区环境清洁活动"),
], ids=["name-zwsp", "name-bom-zwj-lrm", "name-shy-wj", "id_number", "phone", "skills", "org-name", "contact_name",
        "contact_phone", "uscc", "activity-title"])
def test_characters_that_do_not_print_are_removed_before_sending(settings, engine, sandbox, kind, column, dirty,
                                                                 clean) -> None:
    """A value pasted with a zero-width space, a BOM, a soft hyphen or a bidi mark (Unicode Cf) shows as the clean
    value; the registry refuses it (registry-api.md §4: no control characters; §4.2 names). The one normalizer
    removes them on the way out, and what refers to the record is not held up."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        if kind == "volunteer" and column == "id_number":
            clean = f.id_number()
            dirty = f"{BOM}{clean[:6]}{ZWSP}{clean[6:]}{LRM}"
        if kind == "org" and column == "uscc":
            clean = f.uscc()
            dirty = f"{clean[:9]}{ZWSP}{clean[9:]}{BOM}"
        target = {"volunteer": None, "org": t["city"], "activity": None}[kind]
        if target is not None:
            conn.execute(text(f"UPDATE organization SET {column} = :v WHERE id = :i"), {"v": dirty, "i": target})
        v = f.volunteer(conn, **({column: dirty} if kind == "volunteer" else {}))
        a = f.activity(conn, t["team"], **({column: dirty} if kind == "activity" else {}))
        sr = f.service_record(conn, v, a, t["team"])
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    assert link_of(engine, "service_record", sr) is not None  # the dependents did not wait
    collection, local_id = {"volunteer": ("volunteers", v), "org": ("orgs", t["city"]),
                            "activity": ("activities", a)}[kind]
    record = next(r for r in registry_records(sandbox, collection)
                  if r["id"] == link_of(engine, kind, local_id).registry_id)
    wire = {"id_number": "idNumber", "contact_name": "contactName", "contact_phone": "contactPhone"}.get(column, column)
    assert record[wire] == clean
    with engine.connect() as conn:  # the platform's own row is never rewritten (design.md, "Normalization")
        table = {"volunteer": "volunteer", "org": "organization", "activity": "activity"}[kind]
        assert conn.execute(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": local_id}).scalar_one() == dirty


@pytest.mark.parametrize(("kind", "column"), [("volunteer", "name"), ("org", "name"), ("org", "contact_name"),
                                              ("activity", "title")])
def test_a_required_text_field_of_only_characters_that_do_not_print_fails_locally_as_required(
        settings, engine, sandbox, kind, column) -> None:
    """A required text field that holds only characters that do not print (``U+200B U+200B``) is empty once they
    are removed: the record fails before sending, ``REQUIRED`` with the field named (design.md, local dirt fails
    with a clear reason; registry-api.md §7), never the registry's ``INVALID_NAME (character U+200B ...)``; what
    refers to it waits. The same for an edit of a record already in the registry, whose registry value stays."""
    invisible = f"{ZWSP}{ZWSP}"
    with engine.begin() as conn:
        t = f.org_tree(conn)
        target = {"org": t["team"]}.get(kind)
        if target is not None:
            conn.execute(text(f"UPDATE organization SET {column} = :v WHERE id = :i"), {"v": invisible, "i": target})
        v = f.volunteer(conn, **({column: invisible} if kind == "volunteer" else {}))
        a = f.activity(conn, t["team"], **({column: invisible} if kind == "activity" else {}))
        sr = f.service_record(conn, v, a, t["team"])
    local_id = {"volunteer": v, "org": t["team"], "activity": a}[kind]
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"].get("REQUIRED") == 1, summary
    assert "INVALID_NAME" not in summary["still_failed_by_code"], summary
    assert link_of(engine, kind, local_id) is None and link_of(engine, "service_record", sr) is None
    with engine.connect() as conn:
        code, error = conn.execute(text("SELECT last_code, last_error FROM outbox WHERE entity = :e AND local_id = :i "
                                        "ORDER BY id DESC LIMIT 1"), {"e": kind, "i": local_id}).one()
    assert code == "REQUIRED" and column in error and "empty once characters that do not print" in error, error
    collection = {"volunteer": "volunteers", "org": "orgs", "activity": "activities"}[kind]
    assert all(invisible not in json.dumps(r, ensure_ascii=False) for r in registry_records(sandbox, collection))
    with engine.begin() as conn:  # fixed locally: it goes in; then an edit to nothing but invisible characters
        table = {"volunteer": "volunteer", "org": "organization", "activity": "activity"}[kind]
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": "测试名称", "i": local_id})
    assert sync(settings, engine)["still_failed"] == {}
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": f" {invisible} ", "i": local_id})
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"REQUIRED": 1}, summary
    wire = {"contact_name": "contactName"}.get(column, column)
    rid_ = link_of(engine, kind, local_id).registry_id
    assert next(r for r in registry_records(sandbox, collection) if r["id"] == rid_)[wire] == "测试名称"


def test_dirt_no_standard_fixes_fails_alone_with_the_registry_field_error(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        ok = f.volunteer(conn)
        bad_check = f.id_number()
        bad_check = bad_check[:17] + ("0" if bad_check[17] != "0" else "1")
        bad = f.volunteer(conn, id_number=bad_check)
    summary = sync(settings, engine)
    assert summary["pushed"] == {"volunteers": 1}
    assert summary["still_failed_by_code"] == {"INVALID_ID_NUMBER": 1}
    assert link_of(engine, "volunteer", ok) is not None and link_of(engine, "volunteer", bad) is None


def test_an_operator_retry_after_a_refusal_is_a_new_write(settings, engine, sandbox) -> None:
    """The registry keeps its refusals under the idempotency key (registry-api.md §5.1): a retried create that
    reused the key would only get the old refusal replayed."""
    from regsync.flows.operator import Selection, retry_outbox

    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        a = f.activity(conn, t["team"], starts_at=dt.datetime(2026, 4, 30, 16, 0), ends_at=dt.datetime(2026, 5, 2))
        long_day = f.service_record(conn, v, a, t["team"], hours=2000, starts_at=dt.datetime(2026, 4, 30, 16, 0),
                                    ends_at=dt.datetime(2026, 5, 1, 15, 59))
        extra = f.service_record(conn, v, a, t["team"], hours=500, starts_at=dt.datetime(2026, 4, 30, 16, 0),
                                 ends_at=dt.datetime(2026, 5, 1, 15, 59))
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"DAILY_HOURS_EXCEEDED": 1}
    with engine.begin() as conn:  # the platform revokes the long day; the refused record now fits
        conn.execute(text("UPDATE service_record SET status = 'REVOKED', revoke_reason = '时长有误' WHERE id = :i"),
                     {"i": long_day})
    sync(settings, engine)
    assert link_of(engine, "service_record", extra) is None  # nothing changed it: it waits for an operator
    retry_outbox(engine, Selection(code="DAILY_HOURS_EXCEEDED"), reason="the long day was revoked", actor="test")
    summary = sync(settings, engine)
    assert summary["pushed"] == {"service_records": 1} and summary["still_failed"] == {}
    assert registry_records(sandbox, "volunteers")[0]["totalHours"] == "5.00"


def test_records_waiting_for_a_discarded_record_are_blocked(settings, engine, sandbox) -> None:
    from regsync.flows.operator import Selection, discard_outbox

    with engine.begin() as conn:
        t = f.org_tree(conn)
        bad = f.volunteer(conn, phone="12345")
        a = f.activity(conn, t["team"])
    sync(settings, engine)
    discard_outbox(engine, Selection(records=(("volunteer", bad),)), reason="left the platform", actor="test")
    with engine.begin() as conn:
        sr = f.service_record(conn, bad, a, t["team"])
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"PARENT_DISCARDED": 1}
    assert link_of(engine, "service_record", sr) is None


def test_a_discarded_record_stays_out_of_sync_until_an_operator_restores_it(settings, engine, sandbox) -> None:
    """``outbox discard`` lasts (issue 12 item 8): the next edits of the record are kept but never sent, what
    waits on it stays blocked (shown as waiting on a discarded record), and ``outbox restore`` sends the record's
    current state, then what waited on it."""
    from regsync.flows.operator import Selection, discard_outbox, list_outbox, restore_outbox

    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn, phone="12345")  # refused: INVALID_PHONE
        a = f.activity(conn, t["team"])
        sr = f.service_record(conn, v, a, t["team"])
        m = f.membership(conn, v, t["team"])
    first = sync(settings, engine)
    assert first["still_failed_by_code"] == {"INVALID_PHONE": 1, "PARENT_FAILED": 2}, first
    discarded = discard_outbox(engine, Selection(records=(("volunteer", v),)), reason="left the platform",
                               actor="test")
    assert discarded.dependents == {f"volunteer:{v}": [f"membership:{m}", f"service_record:{sr}"]}
    with engine.begin() as conn:  # the platform edits the person again (a valid phone now)
        conn.execute(text("UPDATE volunteer SET phone = '13712345678', name = '李明明' WHERE id = :i"), {"i": v})
        sr2 = f.service_record(conn, v, a, t["team"], day=2)
    second = sync(settings, engine)
    assert second["pushed"] == {}, second
    assert registry_records(sandbox, "volunteers") == [] and link_of(engine, "volunteer", v) is None
    assert second["still_failed_by_code"] == {"PARENT_DISCARDED": 3}  # what waits on it, the new record too
    listing = {r.key: r for r in list_outbox(engine).records}
    assert listing[f"volunteer:{v}"].held
    assert listing[f"volunteer:{v}"].dependents == [f"membership:{m}", f"service_record:{sr}",
                                                     f"service_record:{sr2}"]
    assert {listing[k].code for k in (f"membership:{m}", f"service_record:{sr}", f"service_record:{sr2}")} == {
        "PARENT_DISCARDED"}
    assert sync(settings, engine)["pushed"] == {}  # and again: nothing goes, nothing loops

    restored = restore_outbox(engine, Selection(records=(("volunteer", v),)), reason="came back", actor="test")
    assert restored.affected == 1
    third = sync(settings, engine)
    assert third["still_failed"] == {}, third
    assert third["pushed"] == {"volunteers": 1, "memberships": 1, "service_records": 2}, third
    (person,) = registry_records(sandbox, "volunteers")
    assert (person["name"], person["phone"]) == ("李明明", "13712345678")  # its current state
    assert person["totalHours"] == "5.00"


def test_what_waits_on_a_discarded_record_has_one_code_in_sync_outbox_list_status_and_reports(
        settings, engine, sandbox) -> None:
    """A membership blocked by a discarded volunteer is ``PARENT_DISCARDED`` in the relay's own outcome (the sync's
    ``failed_by_code``), in the outbox table (``still_failed_by_code``, ``status``, the run's report) and in
    ``outbox list``, whether it was blocked before the discard or after; a restore plans it again."""
    from typer.testing import CliRunner

    from regsync.console.cli import app
    from regsync.flows.operator import Selection, discard_outbox, list_outbox, restore_outbox

    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING",
           "REGSYNC_CONFIG": ""}
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn, phone="12345")  # refused: INVALID_PHONE
        before = f.membership(conn, v, t["team"])
    assert sync(settings, engine)["still_failed_by_code"] == {"INVALID_PHONE": 1, "PARENT_FAILED": 1}
    discard_outbox(engine, Selection(records=(("volunteer", v),)), reason="left the platform", actor="test")
    with engine.begin() as conn:
        after = f.membership(conn, v, t["community"])
    res = CliRunner().invoke(app, ["sync", "--outbound", "--json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["failed_by_code"] == {"PARENT_DISCARDED": 1}, out  # the relay's own outcome for `after`
    assert out["still_failed_by_code"] == {"PARENT_DISCARDED": 2}, out
    listing = {r.key: r for r in list_outbox(engine).records}
    assert {listing[f"membership:{m}"].code for m in (before, after)} == {"PARENT_DISCARDED"}
    with engine.connect() as conn:
        codes = {r[0] for r in conn.execute(text("SELECT last_code FROM outbox WHERE entity = 'membership' "
                                                 "AND state = 'blocked'"))}
    assert codes == {"PARENT_DISCARDED"}
    status = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert json.loads(status.stdout)["failed_by_code"] == {"PARENT_DISCARDED": 2}, status.output
    report = CliRunner().invoke(app, ["report", "show", str(out["run_id"]), "--json"], env=env)
    assert report.exit_code == 0, report.output
    assert "PARENT_FAILED" not in report.stdout and "PARENT_DISCARDED" in report.stdout
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13712345678' WHERE id = :i"), {"i": v})
    restore_outbox(engine, Selection(records=(("volunteer", v),)), reason="came back", actor="test")
    done = sync(settings, engine)
    assert done["still_failed"] == {} and done["pushed"] == {"volunteers": 1, "memberships": 2}, done


def test_reconcile_repair_leaves_a_discarded_record_out_of_sync(settings, engine, sandbox) -> None:
    from regsync.db.session import suppress_outbox
    from regsync.flows.operator import Selection, discard_outbox
    from regsync.flows.reconcile import run_reconcile

    with engine.begin() as conn:
        v = f.volunteer(conn, phone="12345")
    sync(settings, engine)
    discard_outbox(engine, Selection(records=(("volunteer", v),)), reason="left the platform", actor="test")
    with engine.begin() as conn, suppress_outbox(conn):  # fixed without the outbox: reconcile would push it
        conn.execute(text("UPDATE volunteer SET phone = '13712345678' WHERE id = :i"), {"i": v})
    code, summary = run_reconcile(settings, engine=engine, kinds=["volunteers"], repair=True)
    assert code == 0 and summary["discrepancies"] == {"missing_in_registry": 1}
    assert summary["queued"] == summary["repaired"] == summary["requeued"] == {}
    assert summary["actions"] == {"push": {"discarded": 1}}
    assert sync(settings, engine)["pushed"] == {} and registry_records(sandbox, "volunteers") == []


def test_refused_credentials_halt_the_relay_without_failing_rows(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        f.volunteer(conn)
        f.volunteer(conn)
    httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": False}
               ).raise_for_status()
    try:
        code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=20)
    finally:
        httpx.post(f"{sandbox.admin_url}/clients", json={"clientId": sandbox.client_id, "enabled": True}
                   ).raise_for_status()
    assert code == 1 and summary["status"] == "failed" and "credentials" in summary["error"]
    states = outbox_states(engine)
    assert {s for _, _, s, _ in states} == {"pending"}  # nothing failed, nothing burnt
    with engine.connect() as conn:
        assert conn.execute(text("SELECT MAX(attempts) FROM outbox")).scalar_one() == 0
    # credentials restored: the same rows go through
    assert sync(settings, engine)["pushed"] == {"volunteers": 2}


def test_most_of_a_batch_refused_with_one_code_not_about_the_data_halts(settings, engine) -> None:
    from regsync.flows.outbound import Relay, RelayHalted
    from regsync.registry.types import OperationResult

    class ForbiddingClient:
        def batch(self, ops):
            return [OperationResult(403, "FORBIDDEN", message="client out of scope") for _ in ops]

    with engine.begin() as conn:
        for _ in range(5):
            f.volunteer(conn)
    relay = Relay(engine, ForbiddingClient(), settings)
    with pytest.raises(RelayHalted, match="FORBIDDEN"):
        relay.run()
    relay.close()
    states = outbox_states(engine)
    assert {s for _, _, s, _ in states} == {"deferred"} and {c for *_, c in states} == {"FORBIDDEN"}


@pytest.mark.parametrize(("table", "column", "value"), [
    ("volunteer", "birth_date", "1990/01/01"),
    ("volunteer", "birth_date", "1990-02-30"),
    ("volunteer", "birth_date", "ID 230100197909104478 / 13912345678"),
    ("volunteer", "skills", "{\"first aid\": true}"),
    ("volunteer", "skills", '["急救", 230100]'),
    ("service_record", "hours", "2.5"),
    ("service_record", "hours", "abc"),
    ("service_record", "starts_at", "yesterday"),
    ("organization", "established_on", "2020/01/01"),
    ("membership", "joined_on", "n/a"),
])
def test_a_local_value_of_the_wrong_kind_fails_its_record_alone(settings, engine, sandbox, table, column,
                                                                value) -> None:
    if engine.dialect.name != "sqlite" and column not in ("skills",):
        pytest.skip("PostgreSQL's and MySQL's column types refuse (or read as a date) such values at the source")
    with engine.begin() as conn:
        t = f.org_tree(conn)
        vols = [f.volunteer(conn) for _ in range(3)]
        a = f.activity(conn, t["team"])
        recs = [f.service_record(conn, v, a, t["team"]) for v in vols]
        mems = [f.membership(conn, v, t["team"]) for v in vols]
        leaf = f.org(conn, "COMMUNITY_STATION", t["street"])
        target = {"volunteer": vols[1], "service_record": recs[1], "organization": leaf, "membership": mems[1]}[table]
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": value, "i": target})
    summary = sync(settings, engine)
    codes = summary["still_failed_by_code"]
    assert codes.get("LOCAL_DATA_INVALID") == 1, summary
    assert set(codes) <= {"LOCAL_DATA_INVALID", "PARENT_FAILED"}
    # everything else went through
    assert summary["pushed"].get("volunteers", 0) >= 2 and summary["pushed"].get("service_records", 0) >= 1
    with engine.connect() as conn:
        reason = conn.execute(text("SELECT last_error FROM outbox WHERE last_code = 'LOCAL_DATA_INVALID'")).scalar()
    assert column in reason and "13912345678" not in reason and "230100197909104478" not in reason


def test_a_later_row_of_a_person_whose_primary_is_refused_is_blocked_not_waiting(settings, engine, sandbox) -> None:
    number = f.id_number(dt.date(1981, 1, 1))
    with engine.begin() as conn:
        t = f.org_tree(conn)
        a = f.activity(conn, t["team"])
        f.volunteer(conn, id_number=number, birth=dt.date(1981, 1, 1), registered_at=dt.datetime(2017, 1, 1),
                    phone="12345")
        later = f.volunteer(conn, id_number=number.lower(), birth=dt.date(1981, 1, 1),
                            registered_at=dt.datetime(2021, 1, 1))
        f.service_record(conn, later, a, t["team"])
    summary = sync(settings, engine)
    assert summary["backlog"] == 0
    assert summary["still_failed"] == {"volunteers": 2, "service_records": 1}
    assert summary["still_failed_by_code"] == {"INVALID_PHONE": 1, "PARENT_FAILED": 2}


def test_registry_owned_records_and_transferred_volunteers_are_never_pushed(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
    sync(settings, engine)
    with engine.begin() as conn:  # as the inbound side would leave them
        conn.execute(text("UPDATE link SET how = 'registry_owned' WHERE entity = 'service_record' AND local_id = :i"),
                     {"i": sr})
        conn.execute(text("UPDATE service_record SET hours = 300 WHERE id = :i"), {"i": sr})
        conn.execute(text("UPDATE volunteer SET home_province = '11', phone = '13600001111' WHERE id = :i"), {"i": v})
    summary = sync(settings, engine)
    assert summary["pushed"] == {} and summary["batches"] == 0
    assert summary["still_failed_by_code"] == {"REGISTRY_OWNED": 1}
    rec = registry_records(sandbox, "volunteers")[0]
    assert rec["phone"] == "13912345678" and rec["homeProvince"] == "23"


def test_a_newer_row_of_a_record_in_flight_waits_for_its_write(settings, engine, sandbox) -> None:
    """The relay claims its next window while the last one's calls are in flight; a window that holds a newer row
    of a record still in flight waits for that write (its link), so the record is created once, not created again
    beside itself (the second create would meet DUPLICATE_CLIENT_REF and be linked back: one call more)."""
    from regsync.flows.outbound import Relay
    from regsync.registry.client import RegistryClient

    with engine.begin() as conn:
        first = f.volunteer(conn)
        f.volunteer(conn)
        conn.execute(text("UPDATE volunteer SET phone = '13700002222' WHERE id = :id"), {"id": first})
    # windows of one row: the first volunteer's insert, the second's, then the first's update while its create
    # may still be in flight
    one_by_one = dataclasses.replace(settings, relay=RelaySettings(claim_size=1, batch_size=1, concurrency=3))
    with RegistryClient(one_by_one.registry, province=one_by_one.province) as client:
        relay = Relay(engine, client, one_by_one)
        try:
            stats = relay.run()
        finally:
            relay.close()
        calls = client.stats.calls
    assert dict(stats.pushed) == {"volunteer": 2} and dict(stats.linked) == {}
    assert calls == 2, calls  # the update's window found the record's link: nothing more to send
    phones = {v["clientRef"]: v["phone"] for v in registry_records(sandbox, "volunteers")}
    assert len(phones) == 2 and phones[str(first)].replace("-", "").endswith("13700002222")
    assert {s for _, _, s, _ in outbox_states(engine)} == {"sent"}


def test_a_name_outside_the_bmp_round_trips_through_the_store_and_both_flows(settings, engine, sandbox) -> None:
    """Rare characters outside the BMP (𠮷 U+20BB7, 𪚥 U+2A6A5: four bytes in UTF-8, which MySQL's utf8mb3 cannot
    hold) in a volunteer's name are stored, pushed and read back as they are, and the portal's identity correction
    to another such name comes back into the local row (the generator makes such names: design.md, "Data that
    looks like the province's")."""
    with engine.begin() as conn:
        v = f.volunteer(conn, name="王𠮷")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM volunteer WHERE id = :i"), {"i": v}).scalar_one() == "王𠮷"
    assert sync(settings, engine)["pushed"] == {"volunteers": 1}
    rid = link_of(engine, "volunteer", v).registry_id
    assert [r["name"] for r in registry_records(sandbox, "volunteers") if r["id"] == rid] == ["王𠮷"]
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/identity", json={"name": "李𪚥𠮷"})
    r.raise_for_status()
    sync(settings, engine, inbound=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM volunteer WHERE id = :i"), {"i": v}).scalar_one() == "李𪚥𠮷"
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'")).scalar_one() == 0
    assert [r["name"] for r in registry_records(sandbox, "volunteers") if r["id"] == rid] == ["李𪚥𠮷"]
