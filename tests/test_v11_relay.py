"""The outbound relay for the kinds of registry-api.md v1.1 (issue 16, points 1 and 5): trainings, training records,
commendations and evaluations created, updated, cancelled or revoked, corrected, and sent in the order the registry
checks them, against the sandbox over HTTP, on every engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import Engine, text

import factories as f
import factories11 as f11
from regsync.flows.sync import run_sync
from regsync.sandbox.server import SandboxServer
from test_outbound import link_of, outbox_states, registry_records, sync


def _by_id(sandbox: SandboxServer, collection: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in registry_records(sandbox, collection)}


def _record(engine: Engine, sandbox: SandboxServer, kind: str, collection: str, local_id: int) -> dict[str, Any]:
    """The registry's record linked to local ``kind`` ``local_id``."""
    return _by_id(sandbox, collection)[link_of(engine, kind, local_id).registry_id]


def _completed(conn: Any, activity: int) -> None:
    conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": activity})


def test_a_training_is_created_updated_completed_and_cancelled_by_put(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        tr = f11.training(conn, t["team"])
    assert sync(settings, engine)["pushed"] == {"orgs": 8, "trainings": 1}
    rec = _record(engine, sandbox, "training", "trainings", tr)
    assert (rec["status"], rec["classHours"], rec["clientRef"], rec["orgId"]) == (
        "SCHEDULED", "3.00", str(tr), link_of(engine, "org", t["team"]).registry_id)
    with engine.begin() as conn:
        conn.execute(text("UPDATE training SET title = '应急救护培训', class_hours = 250, status = 'COMPLETED' "
                          "WHERE id = :i"), {"i": tr})
    assert sync(settings, engine)["pushed"] == {"trainings": 1}
    rec = _record(engine, sandbox, "training", "trainings", tr)
    assert (rec["title"], rec["classHours"], rec["status"], rec["version"]) == ("应急救护培训", "2.50", "COMPLETED", 2)
    with engine.begin() as conn:  # cancelled: a PUT with status CANCELLED (registry-api.md §4.6), never a DELETE
        conn.execute(text("UPDATE training SET status = 'CANCELLED' WHERE id = :i"), {"i": tr})
    assert sync(settings, engine)["pushed"] == {"trainings": 1}
    assert _record(engine, sandbox, "training", "trainings", tr)["status"] == "CANCELLED"
    assert sync(settings, engine)["batches"] == 0


def test_a_deleted_training_is_cancelled(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        tr = f11.training(conn, t["team"])
    sync(settings, engine)
    rid = link_of(engine, "training", tr).registry_id
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM training WHERE id = :i"), {"i": tr})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"trainings": 1} and summary["still_failed"] == {}, summary
    rec = _by_id(sandbox, "trainings")[rid]
    assert rec["status"] == "CANCELLED" and rec["contactPhone"] == "13912340000"  # the registry's own fields kept


def test_a_training_record_is_corrected_in_one_step_then_revoked(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        tr = f11.training(conn, t["team"])
        rec_id = f11.training_record(conn, tr, v, class_hours=200)
    assert sync(settings, engine)["pushed"] == {"orgs": 8, "volunteers": 1, "trainings": 1, "training_records": 1}
    assert registry_records(sandbox, "volunteers")[0]["trainingHours"] == "2.00"
    with engine.begin() as conn:
        conn.execute(text("UPDATE training_record SET class_hours = 300, result = 'ATTENDED' WHERE id = :i"),
                     {"i": rec_id})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"training_records": 1} and summary["batches"] == 1  # one :correct
    records = sorted(registry_records(sandbox, "training-records"), key=lambda r: r["id"])
    assert [(r["status"], r["classHours"], r["result"], r["clientRef"], r["revokeReason"]) for r in records] == [
        ("REVOKED", "2.00", "PASSED", str(rec_id), "corrected"), ("ACCEPTED", "3.00", "ATTENDED", f"{rec_id}-r1", None)]
    assert records[1]["correctsId"] == records[0]["id"]
    link = link_of(engine, "training_record", rec_id)
    assert (link.registry_id, link.revision) == (records[1]["id"], 1)
    assert registry_records(sandbox, "volunteers")[0]["trainingHours"] == "3.00"
    with engine.begin() as conn:
        conn.execute(text("UPDATE training_record SET status = 'REVOKED', revoke_reason = '重复录入' WHERE id = :i"),
                     {"i": rec_id})
    assert sync(settings, engine)["pushed"] == {"training_records": 1}
    rec = _by_id(sandbox, "training-records")[records[1]["id"]]
    assert (rec["status"], rec["revokeReason"]) == ("REVOKED", "重复录入")
    assert registry_records(sandbox, "volunteers")[0]["trainingHours"] == "0.00"
    assert sync(settings, engine)["batches"] == 0


def test_commendations_of_a_volunteer_and_an_org_are_updated_by_put_and_revoked(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        cv = f11.commendation(conn, volunteer_id=v)
        co = f11.commendation(conn, org_id=t["team"], title="优秀志愿服务队伍")
    assert sync(settings, engine)["pushed"] == {"orgs": 8, "volunteers": 1, "commendations": 2}
    rv = _record(engine, sandbox, "commendation", "commendations", cv)
    ro = _record(engine, sandbox, "commendation", "commendations", co)
    assert (rv["subjectType"], rv["subjectId"]) == ("VOLUNTEER", link_of(engine, "volunteer", v).registry_id)
    assert (ro["subjectType"], ro["subjectId"]) == ("ORG", link_of(engine, "org", t["team"]).registry_id)
    with engine.begin() as conn:
        conn.execute(text("UPDATE commendation SET document_number = '哈志联〔2026〕4号', content = :c WHERE id = :i"),
                     {"i": cv, "c": "服务社区\n三年"})
    assert sync(settings, engine)["pushed"] == {"commendations": 1}
    rv = _record(engine, sandbox, "commendation", "commendations", cv)
    assert (rv["documentNumber"], rv["content"], rv["version"], rv["status"]) == (
        "哈志联〔2026〕4号", "服务社区\n三年", 2, "ACTIVE")
    with engine.begin() as conn:  # revoked on the platform, and the other one deleted: both :revoke (§4.8)
        conn.execute(text("UPDATE commendation SET status = 'REVOKED', revoke_reason = '撤销表彰' WHERE id = :i"),
                     {"i": cv})
        conn.execute(text("DELETE FROM commendation WHERE id = :i"), {"i": co})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"commendations": 2} and summary["still_failed"] == {}, summary
    records = _by_id(sandbox, "commendations")
    assert (records[rv["id"]]["status"], records[rv["id"]]["revokeReason"]) == ("REVOKED", "撤销表彰")
    assert (records[ro["id"]]["status"], records[ro["id"]]["revokeReason"]) == ("REVOKED", "deleted on the platform")
    assert sync(settings, engine)["batches"] == 0


def test_an_evaluation_is_updated_by_put_and_revoked(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t, v, a, _ = f.chain(conn)
        _completed(conn, a)
        ev = f11.evaluation(conn, a, v, t["team"])
    assert sync(settings, engine)["pushed"]["evaluations"] == 1
    with engine.begin() as conn:
        conn.execute(text("UPDATE evaluation SET competence = 3, comment = NULL WHERE id = :i"), {"i": ev})
    assert sync(settings, engine)["pushed"] == {"evaluations": 1}
    rec = _record(engine, sandbox, "evaluation", "evaluations", ev)
    assert (rec["competence"], rec["comment"], rec["punctuality"], rec["version"]) == (3, None, 5, 2)
    with engine.begin() as conn:
        conn.execute(text("UPDATE evaluation SET status = 'REVOKED' WHERE id = :i"), {"i": ev})
    assert sync(settings, engine)["pushed"] == {"evaluations": 1}
    assert _record(engine, sandbox, "evaluation", "evaluations", ev)["status"] == "REVOKED"
    assert sync(settings, engine)["batches"] == 0


def test_creates_whose_answers_are_lost_are_not_duplicated(settings, engine, sandbox) -> None:
    """registry-api.md §5.1: a create of each v1.1 kind whose answer is lost is replayed under its idempotency key
    (or found by its clientRef), never made twice."""
    settings = dataclasses.replace(settings, registry=dataclasses.replace(settings.registry, max_retries=1))
    with engine.begin() as conn:
        t, v, a, _ = f.chain(conn)
        _completed(conn, a)
    sync(settings, engine)
    made: dict[str, int] = {}
    makers = {"training": lambda conn: f11.training(conn, t["team"]),
              "training_record": lambda conn: f11.training_record(conn, made["training"], v),
              "commendation": lambda conn: f11.commendation(conn, volunteer_id=v),
              "evaluation": lambda conn: f11.evaluation(conn, a, v, t["team"])}
    collections = {"training": "trainings", "training_record": "training-records", "commendation": "commendations",
                   "evaluation": "evaluations"}
    for kind, make in makers.items():
        with engine.begin() as conn:
            made[kind] = make(conn)
        httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 1.0}).raise_for_status()
        try:
            run_sync(settings, engine=engine, inbound=False)
        finally:
            httpx.put(f"{sandbox.admin_url}/faults", json={"lost_answer_rate": 0.0}).raise_for_status()
        # the write went through, its answer did not come
        assert len(registry_records(sandbox, collections[kind])) == 1 and link_of(engine, kind, made[kind]) is None
        with engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET available_at = :t WHERE state = 'deferred'"),
                         {"t": dt.datetime(2000, 1, 1)})
        summary = sync(settings, engine)
        assert summary["still_failed"] == {}, summary
        records = registry_records(sandbox, collections[kind])
        assert len(records) == 1, (kind, records)
        assert link_of(engine, kind, made[kind]).registry_id == records[0]["id"]
    assert sync(settings, engine)["batches"] == 0
