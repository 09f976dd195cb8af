"""A local key deleted and used again for another record (issue 12, item 1), on SQLite and PostgreSQL, against the
sandbox registry over loopback HTTP.

A restore or import script deletes a row and inserts another record under the same explicit id. The key then names
another record (design.md's mapping table): the old registry record is ended as a delete ends it, the new one is
created under the next ``clientRef`` revision, for every kind, whichever order the two changes reach the relay in;
ordinary edits stay edits; the inbound poller and the reconcile never write the old record onto the new row nor
bring a deleted row back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
import factories11 as f11
from invariants import check_invariants
from regsync.flows.reconcile import run_reconcile
from regsync.flows.sync import run_sync
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings

COLLECTION = {"org": "orgs", "volunteer": "volunteers", "membership": "memberships", "activity": "activities",
              "service_record": "service-records", "training": "trainings", "training_record": "training-records",
              "commendation": "commendations", "evaluation": "evaluations"}
KIND_OF = {"organization": "org", "volunteer": "volunteer", "membership": "membership", "activity": "activity",
           "service_record": "service_record"}
TABLE = {"org": "organization", "volunteer": "volunteer", "membership": "membership", "activity": "activity",
         "service_record": "service_record", "training": "training", "training_record": "training_record",
         "commendation": "commendation", "evaluation": "evaluation"}
V11 = ("training", "training_record", "commendation", "evaluation")


def sync(settings: Settings, engine: Engine, *, inbound: bool = False) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, inbound=inbound)
    assert code == 0, summary
    return summary


def records(sandbox: SandboxServer, kind: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{COLLECTION[kind]}")
    r.raise_for_status()
    return {rec["id"]: rec for rec in r.json()["data"]["records"]}


def link_of(engine: Engine, kind: str, local_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, registry_id, revision, how FROM link WHERE entity = :e AND local_id = :i"),
                            {"e": kind, "i": local_id}).one_or_none()


def row_of(engine: Engine, kind: str, local_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        r = conn.execute(text(f"SELECT * FROM {TABLE[kind]} WHERE id = :i"), {"i": local_id}).mappings().one_or_none()
        return dict(r) if r is not None else None


def reinsert(conn: Any, kind: str, local_id: int, changes: dict[str, Any]) -> None:
    """What a restore or import script does: the row deleted, another record inserted under the same id."""
    row = conn.execute(text(f"SELECT * FROM {TABLE[kind]} WHERE id = :i"), {"i": local_id}).mappings().one()
    conn.execute(text(f"DELETE FROM {TABLE[kind]} WHERE id = :i"), {"i": local_id})
    insert_as(conn, kind, {**dict(row), **changes})


def insert_as(conn: Any, kind: str, row: dict[str, Any]) -> None:
    row = {k: v for k, v in row.items() if k != "updated_at"}
    conn.execute(text(f"INSERT INTO {TABLE[kind]} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"),
                 row)


def world(engine: Engine, *, v11: bool = False) -> dict[str, int]:
    """An org tree with one more team, two volunteers, an activity, a membership and a service record; with
    ``v11``, also a completed activity where both volunteers served, a training with a record of the first
    volunteer, another training, a commendation and an evaluation of the first volunteer (registry-api.md v1.1)."""
    if v11:
        w = world(engine)
        with engine.begin() as conn:
            a3 = f.activity(conn, w["team"], title="敬老院探访活动", status="COMPLETED")
            for vol, day in ((w["v"], 2), (w["other"], 3)):
                f.service_record(conn, vol, a3, w["team"], day=day)
            tr = f11.training(conn, w["team"])
            w.update(a3=a3, tr=tr, tr2=f11.training(conn, w["team"], title="岗位培训"),
                     trr=f11.training_record(conn, tr, w["v"]), c=f11.commendation(conn, volunteer_id=w["v"]),
                     ev=f11.evaluation(conn, a3, w["v"], w["team"]))
        return w
    with engine.begin() as conn:
        t = f.org_tree(conn)
        extra = f.org(conn, "GRASSROOTS_TEAM", t["unit"], t["community"], name="原有服务队")
        v = f.volunteer(conn, name="王芳")
        other = f.volunteer(conn, name="李明", birth=dt.date(1988, 8, 8))
        a = f.activity(conn, t["team"], title="社区环境清洁活动")
        a2 = f.activity(conn, t["team"], title="防汛宣传活动")
        m = f.membership(conn, v, t["team"])
        sr = f.service_record(conn, v, a, t["team"], hours=250)
    return {**t, "extra": extra, "v": v, "other": other, "a": a, "a2": a2, "m": m, "sr": sr}


def another(kind: str, w: dict[str, int]) -> tuple[int, dict[str, Any]]:
    """The key of ``kind`` the script reuses (nothing refers to it, as foreign keys want) and the changes that make
    its row another record."""
    if kind == "org":
        return w["extra"], {"name": "新建服务队", "contact_name": "赵强"}
    if kind == "volunteer":
        return w["other"], {"name": "赵强", "id_number": f.id_number(dt.date(1985, 3, 3)), "birth_date": dt.date(1985, 3, 3),
                        "phone": "13700001111"}
    if kind == "membership":
        return w["m"], {"volunteer_id": w["other"]}
    if kind == "activity":
        return w["a2"], {"title": "敬老院探访活动"}
    if kind == "training":
        return w["tr2"], {"title": "应急救护培训"}
    if kind == "training_record":
        return w["trr"], {"volunteer_id": w["other"]}
    if kind == "commendation":
        return w["c"], {"title": "优秀志愿者（补）"}
    if kind == "evaluation":
        return w["ev"], {"volunteer_id": w["other"]}
    return w["sr"], {"volunteer_id": w["other"], "hours": 300}


#: What the registry's old record looks like once ended as a delete ends it (design.md's mapping table).
ENDED = {"org": ("status", "DISSOLVED"), "volunteer": ("status", "DEREGISTERED"), "activity": ("status", "CANCELLED"),
         "service_record": ("status", "REVOKED"), "training": ("status", "CANCELLED"),
         "training_record": ("status", "REVOKED"), "commendation": ("status", "REVOKED"),
         "evaluation": ("status", "REVOKED")}


def _ended(kind: str, rec: dict[str, Any]) -> bool:
    if kind == "membership":
        return rec["leftOn"] is not None
    name, value = ENDED[kind]
    return rec[name] == value


@pytest.mark.parametrize("kind", ["org", "volunteer", "membership", "activity", "service_record", *V11])
@pytest.mark.parametrize("order", ["one_pass", "delete_pushed_first"])
def test_a_key_deleted_and_inserted_again_ends_the_old_record_and_creates_the_new(settings, engine, sandbox, kind,
                                                                                order) -> None:
    w = world(engine, v11=kind in V11)
    sync(settings, engine)
    key, changes = another(kind, w)
    old = link_of(engine, kind, key)
    before = records(sandbox, kind)[old.registry_id]
    with engine.begin() as conn:
        row = conn.execute(text(f"SELECT * FROM {TABLE[kind]} WHERE id = :i"), {"i": key}).mappings().one()
        conn.execute(text(f"DELETE FROM {TABLE[kind]} WHERE id = :i"), {"i": key})
    if order == "delete_pushed_first":
        assert sync(settings, engine)["still_failed"] == {}
        assert _ended(kind, records(sandbox, kind)[old.registry_id])
    with engine.begin() as conn:
        insert_as(conn, kind, {**dict(row), **changes})
        queued = conn.execute(text("SELECT op FROM outbox WHERE entity = :e AND local_id = :i ORDER BY id DESC"),
                              {"e": kind, "i": key}).scalars().first()
    assert queued == "reuse"  # the trigger told the key used again from a new record

    summary = sync(settings, engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT entity, local_id, op, state, last_code, last_error FROM outbox "
                                 "WHERE state <> 'sent'")).all()
    assert summary["still_failed"] == {}, (summary, rows)
    regs = records(sandbox, kind)
    new = link_of(engine, kind, key)
    assert new.registry_id != old.registry_id
    gone = regs[old.registry_id]
    assert _ended(kind, gone)
    fresh = regs[new.registry_id]
    assert not _ended(kind, fresh)
    if kind != "membership":
        # the old record keeps the old content and clientRef; the new one is under the next revision
        assert gone["clientRef"] == before["clientRef"] == str(key)
        assert fresh["clientRef"] == f"{key}-r1" and new.revision == 1
    if kind == "volunteer":
        assert (gone["name"], fresh["name"]) == ("李明", "赵强")
        assert fresh["idNumber"] == changes["id_number"] and gone["idNumber"] != fresh["idNumber"]
    elif kind == "membership":
        assert (gone["volunteerId"], fresh["volunteerId"]) == (link_of(engine, "volunteer", w["v"]).registry_id,
                                                               link_of(engine, "volunteer", w["other"]).registry_id)
    elif kind == "service_record":
        people = records(sandbox, "volunteer")
        assert people[link_of(engine, "volunteer", w["v"]).registry_id]["totalHours"] == "0.00"
        assert people[link_of(engine, "volunteer", w["other"]).registry_id]["totalHours"] == "3.00"
    # the old record's link is kept as a deleted row's (the registry record is this client's and stays known)
    with engine.connect() as conn:
        retired = conn.execute(text("SELECT local_id FROM link WHERE entity = :e AND registry_id = :r"),
                               {"e": kind, "r": old.registry_id}).scalars().all()
        waiting = conn.execute(text("SELECT op, state FROM outbox WHERE state <> 'sent' OR op = 'reuse'")).all()
    assert retired == [-old.id] and waiting == []
    assert row_of(engine, kind, key) is not None  # the platform's row stays the new record
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_a_key_used_again_twice_before_a_sync_leaves_one_record_per_local_record(settings, engine, sandbox) -> None:
    """Deleted and inserted again twice before the relay ran: the record in between never reached the registry and
    is never created; the first record is ended, the last created once."""
    w = world(engine)
    sync(settings, engine)
    old = link_of(engine, "volunteer", w["other"])
    with engine.begin() as conn:
        reinsert(conn, "volunteer", w["other"], {"name": "赵强", "id_number": f.id_number(dt.date(1985, 3, 3)),
                                                 "birth_date": dt.date(1985, 3, 3)})
        reinsert(conn, "volunteer", w["other"], {"name": "孙丽", "id_number": f.id_number(dt.date(1992, 2, 2),
                                                                                           female=True),
                                                 "birth_date": dt.date(1992, 2, 2), "gender": "F"})
    assert sync(settings, engine)["still_failed"] == {}
    people = records(sandbox, "volunteer")
    names = sorted((p["name"], p["status"]) for p in people.values())
    assert names == [("孙丽", "ACTIVE"), ("李明", "DEREGISTERED"), ("王芳", "ACTIVE")]
    assert people[old.registry_id]["status"] == "DEREGISTERED"
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_a_restored_tree_with_its_ids_is_pushed_as_new_records_in_reference_order(settings, engine, sandbox) -> None:
    """A restore script empties the tables (children first, as the foreign keys want) and inserts another data set
    under the same ids (parents first): the old records are ended children first, the new ones created parents
    first, in one sync; nothing of one person lands on another's record."""
    w = world(engine)
    sync(settings, engine)
    tables = ["service_record", "membership", "activity", "volunteer", "organization"]
    with engine.begin() as conn:
        saved = {t: [dict(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id")).mappings()]
                 for t in tables}
        for t in tables:
            if t == "organization":  # a team's station is another org: the teams first, then level by level
                for level in ("GRASSROOTS_TEAM", "COMMUNITY_STATION", "COUNTY_UNIT", "STREET_STATION",
                              "CITY_DETACHMENT", "DISTRICT_BRIGADE", "PROVINCIAL_CORPS", "CITY_CORPS"):
                    conn.execute(text("DELETE FROM organization WHERE level = :l"), {"l": level})
            else:
                conn.execute(text(f"DELETE FROM {t}"))
        for t in reversed(tables):
            for row in saved[t]:
                if t == "volunteer":
                    birth = dt.date(1980 + row["id"] % 20, 5, 5)
                    row.update(name="新" + row["name"], id_number=f.id_number(birth), birth_date=birth)
                if t == "organization" and row["level"] not in ("CITY_CORPS", "PROVINCIAL_CORPS"):
                    row.update(name="新" + row["name"])
                if t == "organization" and row["uscc"]:
                    row.update(uscc=f.uscc())
                insert_as(conn, KIND_OF[t], row)
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    people = records(sandbox, "volunteer")
    assert sorted(p["status"] for p in people.values()) == ["ACTIVE", "ACTIVE", "DEREGISTERED", "DEREGISTERED"]
    assert all(p["totalHours"] == ("2.50" if p["name"] == "新王芳" else "0.00") for p in people.values())
    orgs = records(sandbox, "org")
    assert sorted(o["status"] for o in orgs.values()) == ["ACTIVE"] * 9 + ["DISSOLVED"] * 9
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_ordinary_edits_stay_updates_of_the_same_record(settings, engine, sandbox) -> None:
    """Renaming an org, retiming an activity and correcting a mistyped ID number are updates, never an ending (that
    would revoke a person's hours): the same registry records, still active, nothing queued as reuse."""
    w = world(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET id_number = :n WHERE id = :i"),
                     {"n": f.id_number(dt.date(1988, 8, 8)), "i": w["other"]})  # a digit typed wrong at first
    sync(settings, engine)
    before = {k: link_of(engine, k, w[n]).registry_id for k, n in
              (("org", "extra"), ("activity", "a"), ("volunteer", "other"), ("service_record", "sr"))}
    fixed = f.id_number(dt.date(1988, 8, 8))  # its birth date
    with engine.begin() as conn:
        conn.execute(text("UPDATE organization SET name = '更名服务队' WHERE id = :i"), {"i": w["extra"]})
        conn.execute(text("UPDATE activity SET starts_at = :s, ends_at = :e WHERE id = :i"),
                     {"s": dt.datetime(2026, 5, 1, 1, 0), "e": dt.datetime(2026, 5, 3, 12, 0), "i": w["a"]})
        conn.execute(text("UPDATE volunteer SET id_number = :n WHERE id = :i"), {"n": fixed, "i": w["other"]})
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE op = 'reuse'")).scalar_one() == 0
    summary = sync(settings, engine)
    assert summary["still_failed"] == {} and summary["pushed"] == {"orgs": 1, "activities": 1, "volunteers": 1}
    after = {k: link_of(engine, k, w[n]).registry_id for k, n in
             (("org", "extra"), ("activity", "a"), ("volunteer", "other"), ("service_record", "sr"))}
    assert after == before
    assert records(sandbox, "org")[after["org"]]["name"] == "更名服务队"
    assert records(sandbox, "activity")[after["activity"]]["status"] == "PUBLISHED"
    person = records(sandbox, "volunteer")[after["volunteer"]]
    assert (person["status"], person["idNumber"]) == ("ACTIVE", fixed)
    assert records(sandbox, "service_record")[after["service_record"]]["status"] == "ACCEPTED"


def test_reconcile_repair_never_writes_the_old_record_onto_a_reused_key(settings, engine, sandbox) -> None:
    """A membership deleted and another inserted under its id, then ``reconcile --repair`` before the relay ran:
    the local row stays the new membership (it was rewritten back to the deleted one, or the repair stored a raw
    IntegrityError), and the next sync leaves the old membership and joins the new one."""
    w = world(engine)
    with engine.begin() as conn:
        m2 = f.membership(conn, w["other"], w["extra"])
    sync(settings, engine)
    old = link_of(engine, "membership", w["m"])
    # the old membership's date corrected in the registry meanwhile: a merge would take it onto the new row
    httpx.patch(f"{sandbox.admin_url}/records/memberships/{old.registry_id}",
                json={"joinedOn": "2023-03-01"}).raise_for_status()
    with engine.begin() as conn:  # another person joins the team under the deleted membership's id
        reinsert(conn, "membership", w["m"], {"volunteer_id": w["other"], "joined_on": dt.date(2024, 6, 1)})
    code, summary = run_reconcile(settings, engine=engine, repair=True)
    assert code == 0, summary
    row = row_of(engine, "membership", w["m"])
    assert (row["volunteer_id"], row["org_id"], str(row["joined_on"])) == (w["other"], w["team"], "2024-06-01")
    with engine.connect() as conn:
        errors = [json.loads(d) for d in conn.execute(text("SELECT details FROM discrepancy")).scalars()]
    assert not [d for d in errors if "repair_error" in d], errors
    assert row_of(engine, "membership", m2) is not None
    assert sync(settings, engine)["still_failed"] == {}
    regs = records(sandbox, "membership")
    assert regs[old.registry_id]["leftOn"] is not None
    new = regs[link_of(engine, "membership", w["m"]).registry_id]
    assert new["leftOn"] is None and new["volunteerId"] == link_of(engine, "volunteer", w["other"]).registry_id
    code, summary = run_reconcile(settings, engine=engine, repair=True)
    assert code == 0 and summary["discrepancies"] == {}, summary
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_the_registry_change_of_a_reused_keys_old_record_is_not_merged_into_the_new_row(settings, engine,
                                                                                        sandbox) -> None:
    """The portal edits the old person's record while the key already names another person locally: the pull
    must not write the old person's phone onto the new person's row."""
    w = world(engine)
    sync(settings, engine, inbound=True)
    old = link_of(engine, "volunteer", w["other"])
    with engine.begin() as conn:
        reinsert(conn, "volunteer", w["other"], {"name": "赵强", "id_number": f.id_number(dt.date(1985, 3, 3)),
                                                 "birth_date": dt.date(1985, 3, 3), "phone": "13700001111"})
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{old.registry_id}",
                json={"phone": "13811112222"}).raise_for_status()
    from regsync.flows.inbound import Poller
    from regsync.registry.client import RegistryClient

    with RegistryClient(settings.registry, province=settings.province) as client:
        Poller(engine, client, settings).run()
    row = row_of(engine, "volunteer", w["other"])
    assert (row["name"], row["phone"]) == ("赵强", "13700001111")
    assert sync(settings, engine)["still_failed"] == {}
    regs = records(sandbox, "volunteer")
    assert regs[old.registry_id]["status"] == "DEREGISTERED"
    assert regs[link_of(engine, "volunteer", w["other"]).registry_id]["phone"] == "13700001111"


def test_records_that_still_refer_to_a_reused_key_follow_it_to_the_new_record(settings, engine, sandbox) -> None:
    """A platform without foreign keys (SQLite's default; on PostgreSQL and MariaDB the constraints are dropped
    here to play one) keeps a person's membership and service record when the person's row is deleted; another
    person inserted under the id then owns them on the platform. The registry follows the platform: the old person is deregistered
    and keeps no membership nor hours, the new person has both; nothing of one is on the other's record."""
    w = world(engine)
    sync(settings, engine)
    if engine.dialect.name != "sqlite":
        drop = "FOREIGN KEY" if engine.dialect.name == "mysql" else "CONSTRAINT"
        with engine.begin() as conn:
            for table in ("membership", "service_record"):
                conn.execute(text(f"ALTER TABLE {table} DROP {drop} fk_{table}_volunteer_id_volunteer"))
    old = link_of(engine, "volunteer", w["v"])
    with engine.begin() as conn:
        reinsert(conn, "volunteer", w["v"], {"name": "赵强", "id_number": f.id_number(dt.date(1985, 3, 3)),
                                             "birth_date": dt.date(1985, 3, 3)})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    new = link_of(engine, "volunteer", w["v"])
    people = records(sandbox, "volunteer")
    assert (people[old.registry_id]["status"], people[old.registry_id]["totalHours"]) == ("DEREGISTERED", "0.00")
    assert (people[new.registry_id]["status"], people[new.registry_id]["totalHours"]) == ("ACTIVE", "2.50")
    members = [m for m in records(sandbox, "membership").values() if m["leftOn"] is None]
    assert [m["volunteerId"] for m in members] == [new.registry_id]
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_a_deleted_activity_is_cancelled(settings, engine, sandbox) -> None:
    """A linked activity deleted on the platform is cancelled in the registry (a PUT with status CANCELLED, from the
    link's base): the relay sent the base's text times where the wire takes datetimes, and the whole pass failed."""
    w = world(engine)
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM activity WHERE id = :i"), {"i": w["a2"]})
    assert sync(settings, engine)["still_failed"] == {}
    assert records(sandbox, "activity")[link_of(engine, "activity", w["a2"]).registry_id]["status"] == "CANCELLED"


def test_reconcile_repair_never_pulls_a_reused_keys_old_record_onto_the_new_row(settings, engine, sandbox) -> None:
    """Another person inserted under a deleted person's id, and the old person's phone changed in the registry
    (a contact field: the registry's side wins a merge): ``reconcile --repair`` before the relay ran must not
    write the old person's phone onto the new person's row, and the new person is pushed as a new record."""
    w = world(engine)
    sync(settings, engine)
    old = link_of(engine, "volunteer", w["other"])
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{old.registry_id}",
                json={"phone": "13811112222"}).raise_for_status()
    with engine.begin() as conn:
        reinsert(conn, "volunteer", w["other"], {"name": "赵强", "id_number": f.id_number(dt.date(1985, 3, 3)),
                                                 "birth_date": dt.date(1985, 3, 3), "phone": "13700001111"})
    code, summary = run_reconcile(settings, engine=engine, repair=True)
    assert code == 0, summary
    row = row_of(engine, "volunteer", w["other"])
    assert (row["name"], row["phone"]) == ("赵强", "13700001111")
    assert sync(settings, engine)["still_failed"] == {}
    regs = records(sandbox, "volunteer")
    assert regs[old.registry_id]["status"] == "DEREGISTERED"
    assert regs[link_of(engine, "volunteer", w["other"]).registry_id]["name"] == "赵强"
    code, summary = run_reconcile(settings, engine=engine, repair=True)
    assert code == 0 and summary["discrepancies"] == {}, summary


def test_a_pair_joined_again_by_another_row_after_its_membership_was_deleted_is_that_rows(settings, engine,
                                                                                        sandbox) -> None:
    """A membership deleted (left in the registry) and the same person added to the same org again under a new
    id: the registry reopens the same membership, and the new row governs it (it was linked as a duplicate of
    the deleted row, and its later leave was never sent)."""
    w = world(engine)
    sync(settings, engine)
    rid = link_of(engine, "membership", w["m"]).registry_id
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM membership WHERE id = :i"), {"i": w["m"]})
    sync(settings, engine)
    assert records(sandbox, "membership")[rid]["leftOn"] is not None
    with engine.begin() as conn:
        again = f.membership(conn, w["v"], w["team"], joined_on=dt.date(2025, 1, 1))
    sync(settings, engine)
    link = link_of(engine, "membership", again)
    assert (link.registry_id, link.how) == (rid, "created")
    assert records(sandbox, "membership")[rid]["leftOn"] is None
    with engine.begin() as conn:
        conn.execute(text("UPDATE membership SET left_on = :d WHERE id = :i"), {"d": dt.date(2026, 1, 1), "i": again})
    assert sync(settings, engine)["still_failed"] == {}
    assert records(sandbox, "membership")[rid]["leftOn"] == "2026-01-01"
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


def test_a_key_used_again_before_its_lost_create_was_settled_ends_the_record_the_registry_kept(settings, engine,
                                                                                             sandbox) -> None:
    """The create of a person went through but its answer was lost (no link yet); the script then deletes the row
    and inserts another person under its id. The registry's record under the key's clientRef is the first
    person's: it is found, ended and kept linked as a deleted row's, and the new person is created under the next
    revision (the new person was refused CLIENT_REF_TAKEN, and the first person stayed active)."""
    w = world(engine)
    sync(settings, engine)
    with engine.begin() as conn:
        first = f.volunteer(conn, name="孙丽", female=True, birth=dt.date(1992, 2, 2))
    httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 1.0}).raise_for_status()
    run_sync(settings, engine=engine, until_quiet=False)
    httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 0.0}).raise_for_status()
    assert link_of(engine, "volunteer", first) is None
    kept = [p for p in records(sandbox, "volunteer").values() if p["clientRef"] == str(first)]
    assert [p["name"] for p in kept] == ["孙丽"]  # the create went through
    with engine.begin() as conn:
        reinsert(conn, "volunteer", first, {"name": "赵强", "gender": "M", "birth_date": dt.date(1985, 3, 3),
                                            "id_number": f.id_number(dt.date(1985, 3, 3))})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    people = records(sandbox, "volunteer")
    assert people[kept[0]["id"]]["status"] == "DEREGISTERED"
    new = link_of(engine, "volunteer", first)
    assert (people[new.registry_id]["name"], people[new.registry_id]["clientRef"]) == ("赵强", f"{first}-r1")
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)


@pytest.mark.parametrize("revoked", [False, True])
def test_a_key_used_again_before_its_first_create_was_sent_keeps_the_record_made_for_it(settings, engine, sandbox,
                                                                                     revoked) -> None:
    """A service record's row deleted and inserted again (a restore) before the relay ever ran: the key has no
    registry record to end, the row is created under the key's own ``clientRef``, and once it is linked its ``reuse``
    rows are ``insert`` rows like any other (they stayed ``reuse``: the record's next step, here the revocation made
    before the restore, took the record just made for the key's old one, made another under ``-r1``, and when the
    registry refused that one, the activity being cancelled meanwhile, left the first ACCEPTED with the hours the
    platform had revoked; and a correction refused later was taken for a reused key's refused record). The property
    test's shrunk example, found on MariaDB (tests/test_relay_properties.py)."""
    w = world(engine)
    with engine.begin() as conn:
        if revoked:
            conn.execute(text("UPDATE service_record SET status = 'REVOKED', revoke_reason = '录入错误' "
                              "WHERE id = :i"), {"i": w["sr"]})
            conn.execute(text("UPDATE activity SET status = 'CANCELLED' WHERE id = :i"), {"i": w["a"]})
        reinsert(conn, "service_record", w["sr"], {})
    assert sync(settings, engine)["still_failed"] == {}
    made = [(r["clientRef"], r["status"]) for r in records(sandbox, "service_record").values()]
    assert made == [(str(w["sr"]), "REVOKED" if revoked else "ACCEPTED")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE op = 'reuse'")).scalar_one() == 0
    person = records(sandbox, "volunteer")[link_of(engine, "volunteer", w["v"]).registry_id]
    assert person["totalHours"] == ("0.00" if revoked else "2.50")
    assert sync(settings, engine)["batches"] == 0
    check_invariants(engine, sandbox.admin_url, sandbox.client_id)
