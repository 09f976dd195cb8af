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


def _year_of_service(conn: Any, team: int, volunteer: int, days: int, *, first_day: int = 1) -> list[int]:
    """Service records of ``volunteer`` in June 2025, 10 hours a day for ``days`` days, at an activity of ``team``:
    their local ids."""
    a = f.activity(conn, team, starts_at=dt.datetime(2025, 6, 1), ends_at=dt.datetime(2025, 6, 28), status="COMPLETED")
    return [f.service_record(conn, volunteer, a, team, hours=1000, service_date=dt.date(2025, 6, d),
                             starts_at=dt.datetime(2025, 6, d, 0, 0), ends_at=dt.datetime(2025, 6, d, 10, 0))
            for d in range(first_day, first_day + days)]


def _care_award(conn: Any, volunteer: int) -> int:
    """The annual scheme's 爱心奖 (50 h) of 2025 for ``volunteer`` (registry-api.md §4.8)."""
    return f11.commendation(conn, volunteer_id=volunteer, title="2025年度志愿服务爱心奖", scheme="PROVINCIAL_ANNUAL",
                            tier="CARE", year=2025, awarded_on=dt.date(2026, 1, 15), document_number="黑志协〔2026〕1号")


def _state(engine: Engine, kind: str, local_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT state, last_code FROM outbox WHERE entity = :e AND local_id = :i "
                                       "ORDER BY id DESC"), {"e": kind, "i": local_id}).first())  # type: ignore[return-value]


def test_a_scheme_commendation_waits_for_the_service_records_of_its_year(settings, engine, sandbox) -> None:
    """registry-api.md §4.8: the registry checks a scheme commendation against its own records of the year. While a
    service record of 2025 is still to be sent (here: put off after a fault), the commendation waits; it is never
    sent to be refused NOT_EARNED."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        records = _year_of_service(conn, t["team"], v, 5)  # 50 h: just the 爱心奖
        award = _care_award(conn, v)
    with engine.begin() as conn:  # the last record of the year meets a fault and is put off
        conn.execute(text("UPDATE outbox SET state = 'deferred', available_at = :t WHERE entity = 'service_record' "
                          "AND local_id = :i"), {"t": dt.datetime(2100, 1, 1), "i": records[-1]})
    code, summary = run_sync(settings, engine=engine, inbound=False)  # one pass: the put-off record stays waiting
    assert code == 0 and summary["still_failed"] == {} and summary["pushed"]["service_records"] == 4, summary
    assert registry_records(sandbox, "commendations") == []
    assert _state(engine, "commendation", award) == ("deferred", "RECORDS_PENDING")
    with engine.begin() as conn:  # the fault is over
        conn.execute(text("UPDATE outbox SET available_at = :t WHERE state = 'deferred'"), {"t": dt.datetime(2000, 1, 1)})
    summary = sync(settings, engine)
    assert summary["pushed"] == {"service_records": 1, "commendations": 1} and summary["still_failed"] == {}, summary
    rec = _record(engine, sandbox, "commendation", "commendations", award)
    assert (rec["scheme"], rec["tier"], rec["year"], rec["status"]) == ("PROVINCIAL_ANNUAL", "CARE", 2025, "ACTIVE")


def test_not_earned_is_retried_when_a_service_record_of_the_year_is_accepted(settings, engine, sandbox) -> None:
    """A commendation refused NOT_EARNED (the registry's figure falls short) fails for an operator and is not sent
    again on every pass; a service record of the subject and year accepted later takes it up again."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        _year_of_service(conn, t["team"], v, 4)  # 40 h
        award = _care_award(conn, v)
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"NOT_EARNED": 1}, summary
    assert _state(engine, "commendation", award) == ("failed", "NOT_EARNED")
    assert sync(settings, engine)["batches"] == 0  # not retried as it is
    with engine.begin() as conn:  # a service record of another year changes nothing for 2025
        a = f.activity(conn, t["team"])
        f.service_record(conn, v, a, t["team"])
    assert sync(settings, engine)["pushed"] == {"activities": 1, "service_records": 1}
    assert _state(engine, "commendation", award) == ("failed", "NOT_EARNED")
    with engine.begin() as conn:  # 10 more hours in 2025 reach the registry: 50 h
        _year_of_service(conn, t["team"], v, 1, first_day=20)
    summary = sync(settings, engine)
    assert summary["pushed"] == {"activities": 1, "service_records": 1, "commendations": 1}, summary
    assert summary["still_failed"] == {}, summary
    assert _record(engine, sandbox, "commendation", "commendations", award)["tier"] == "CARE"
    assert sync(settings, engine)["batches"] == 0


def test_an_evaluation_waits_for_its_activity_completed_and_its_service_record(settings, engine, sandbox) -> None:
    """registry-api.md §4.9: an evaluation is sent once its activity is COMPLETED and the volunteer's service record
    there is accepted in the registry; before that it waits (not sent to be refused INVALID_STATE or
    NOT_A_PARTICIPANT), and the change it waits for takes it up again."""
    with engine.begin() as conn:
        t, v, a, _ = f.chain(conn)
        other = f.volunteer(conn, name="张伟")
        ev = f11.evaluation(conn, a, v, t["team"])
        ev_other = f11.evaluation(conn, a, other, t["team"])
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"AWAITS_COMPLETION": 2}, summary  # listed for operators
    assert "evaluations" not in summary["pushed"] and registry_records(sandbox, "evaluations") == []
    assert _state(engine, "evaluation", ev) == ("blocked", "AWAITS_COMPLETION")
    assert sync(settings, engine)["batches"] == 0
    with engine.begin() as conn:
        _completed(conn, a)
    summary = sync(settings, engine)
    assert summary["pushed"] == {"activities": 1, "evaluations": 1}, summary
    assert summary["still_failed_by_code"] == {"AWAITS_SERVICE_RECORD": 1}, summary
    assert _record(engine, sandbox, "evaluation", "evaluations", ev)["status"] == "ACTIVE"
    assert _state(engine, "evaluation", ev_other) == ("blocked", "AWAITS_SERVICE_RECORD")
    with engine.begin() as conn:  # the other volunteer's service is recorded: their evaluation follows
        f.service_record(conn, other, a, t["team"], day=2)
    summary = sync(settings, engine)
    assert summary["pushed"] == {"service_records": 1, "evaluations": 1} and summary["still_failed"] == {}, summary
    assert len(registry_records(sandbox, "evaluations")) == 2


def test_a_training_completed_before_its_end_is_sent_after_its_end(settings, engine, sandbox) -> None:
    """registry-api.md §4.6: COMPLETED only once endsAt has passed on the registry's clock, else 409 INVALID_STATE,
    retried after endsAt plus the clock tolerance of §1, never failed for ever. The training is created SCHEDULED
    (a refused create's key would replay the refusal), its completion waits for its end."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).replace(microsecond=0)
    ends = now + dt.timedelta(hours=1)
    with engine.begin() as conn:
        t = f.org_tree(conn)
        tr = f11.training(conn, t["team"], starts_at=now - dt.timedelta(hours=2), ends_at=ends, status="COMPLETED")
    code, summary = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and summary["still_failed"] == {}, summary
    assert _record(engine, sandbox, "training", "trainings", tr)["status"] == "SCHEDULED"
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, last_code, available_at FROM outbox WHERE entity = 'training' "
                                "ORDER BY id DESC")).first()
    available = row.available_at if isinstance(row.available_at, dt.datetime) else dt.datetime.fromisoformat(
        row.available_at)
    assert (row.state, row.last_code) == ("deferred", "INVALID_STATE")
    assert available >= ends + dt.timedelta(seconds=120)  # after its end and the registry's clock tolerance
    # the training has ended on the registry's clock
    httpx.put(f"{sandbox.admin_url}/faults", json={"clock_offset_s": 2 * 3600}).raise_for_status()
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET available_at = :t WHERE state = 'deferred'"),
                         {"t": dt.datetime(2000, 1, 1)})
        summary = sync(settings, engine)
    finally:
        httpx.put(f"{sandbox.admin_url}/faults", json={"clock_offset_s": 0}).raise_for_status()
    assert summary["pushed"] == {"trainings": 1} and summary["still_failed"] == {}, summary
    assert _record(engine, sandbox, "training", "trainings", tr)["status"] == "COMPLETED"


def test_records_of_a_persons_second_row_go_under_the_primarys_id(settings, engine, sandbox) -> None:
    """Issue 16, point 5 (design.md, "One person, two local records"): the training records, commendations and
    evaluations of a person's later row go under the primary's registry id; the same training recorded on both rows
    is one registry record (DUPLICATE_TRAINING_RECORD names it: the later row is linked to it as a duplicate, never
    pushed)."""
    number = f.id_number(dt.date(1970, 3, 3))
    with engine.begin() as conn:
        t, _, a, _ = f.chain(conn)
        _completed(conn, a)
        newer = f.volunteer(conn, id_number=number.lower(), birth=dt.date(1970, 3, 3),
                            registered_at=dt.datetime(2023, 1, 1), name="孙丽")
        older = f.volunteer(conn, id_number=number, birth=dt.date(1970, 3, 3), registered_at=dt.datetime(2019, 1, 1),
                            name="孙丽")
        f.service_record(conn, newer, a, t["team"], day=2)
        tr = f11.training(conn, t["team"])
        first = f11.training_record(conn, tr, older)
        second = f11.training_record(conn, tr, newer)
        cv = f11.commendation(conn, volunteer_id=newer)
        ev = f11.evaluation(conn, a, newer, t["team"])
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    person = link_of(engine, "volunteer", older).registry_id
    assert link_of(engine, "volunteer", newer).registry_id == person
    records = registry_records(sandbox, "training-records")
    assert [(r["volunteerId"], r["clientRef"]) for r in records] == [(person, str(first))]
    dup = link_of(engine, "training_record", second)
    assert dup.registry_id == records[0]["id"] and dup.is_duplicate
    assert _record(engine, sandbox, "commendation", "commendations", cv)["subjectId"] == person
    assert _record(engine, sandbox, "evaluation", "evaluations", ev)["volunteerId"] == person
    assert _by_id(sandbox, "volunteers")[person]["trainingHours"] == "3.00"  # counted once
    with engine.begin() as conn:  # the duplicate's record is never pushed
        conn.execute(text("UPDATE training_record SET class_hours = 100 WHERE id = :i"), {"i": second})
    assert sync(settings, engine)["batches"] == 0


def test_a_portal_training_record_of_the_same_pair_is_linked_as_the_registrys(settings, engine, sandbox) -> None:
    """DUPLICATE_TRAINING_RECORD (registry-api.md §4.7) naming a record the portal entered: the same record is linked
    as the registry's own, and nothing is pushed over it (§4.9 "Ownership": read-only to the client)."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        tr = f11.training(conn, t["team"])
    sync(settings, engine)
    r = httpx.post(f"{sandbox.admin_url}/portal/training-records", json={
        "trainingId": link_of(engine, "training", tr).registry_id, "volunteerId": link_of(engine, "volunteer", v).registry_id,
        "completedOn": "2026-04-01", "classHours": "3.00", "result": "PASSED"})
    r.raise_for_status()
    portal_id = r.json()["data"]["id"]
    with engine.begin() as conn:
        rec = f11.training_record(conn, tr, v)
    summary = sync(settings, engine)
    assert summary["linked"] == {"training_records": 1} and summary["still_failed"] == {}, summary
    link = link_of(engine, "training_record", rec)
    assert (link.registry_id, link.how) == (portal_id, "registry_owned")
    with engine.begin() as conn:
        conn.execute(text("UPDATE training_record SET result = 'ATTENDED' WHERE id = :i"), {"i": rec})
    summary = sync(settings, engine)
    assert summary["still_failed_by_code"] == {"REGISTRY_OWNED": 1} and summary["batches"] == 0, summary
    assert len(registry_records(sandbox, "training-records")) == 1


def test_a_changed_subject_is_another_commendation_and_the_old_one_is_revoked(settings, engine, sandbox) -> None:
    """registry-api.md §4.8: a commendation's subject is immutable; the platform moving a commendation to another
    volunteer is another record: the new one is created, the old one revoked, never a PUT over the old id."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v1 = f.volunteer(conn)
        v2 = f.volunteer(conn, name="张伟")
        cv = f11.commendation(conn, volunteer_id=v1)
    sync(settings, engine)
    old = link_of(engine, "commendation", cv).registry_id
    with engine.begin() as conn:
        conn.execute(text("UPDATE commendation SET volunteer_id = :v WHERE id = :i"), {"v": v2, "i": cv})
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    records = _by_id(sandbox, "commendations")
    new = link_of(engine, "commendation", cv).registry_id
    assert new != old and len(records) == 2
    assert (records[old]["status"], records[old]["subjectId"]) == ("REVOKED", link_of(engine, "volunteer", v1).registry_id)
    assert (records[new]["status"], records[new]["subjectId"], records[new]["clientRef"]) == (
        "ACTIVE", link_of(engine, "volunteer", v2).registry_id, f"{cv}-r1")
    assert sync(settings, engine)["batches"] == 0


def test_a_higher_tier_replaces_the_lower_by_revoking_it_first(settings, engine, sandbox) -> None:
    """registry-api.md §4.8: one ACTIVE commendation per subject, scheme and year; a higher tier replaces a lower one
    by revoking the lower first. Whether the platform edits the tier of its row or revokes the row and enters a new
    one, the registry's lower tier is revoked before the higher one is created (never refused as a duplicate)."""
    with engine.begin() as conn:
        t = f.org_tree(conn)
        v = f.volunteer(conn)
        w = f.volunteer(conn, name="张伟")
        for person in (v, w):
            _year_of_service(conn, t["team"], person, 10)  # 100 h: the 铜奖
        edited = _care_award(conn, v)
        lower = _care_award(conn, w)
    assert sync(settings, engine)["pushed"]["commendations"] == 2
    old_edited, old_lower = (link_of(engine, "commendation", c).registry_id for c in (edited, lower))
    with engine.begin() as conn:
        conn.execute(text("UPDATE commendation SET tier = 'BRONZE', title = '2025年度志愿服务铜奖' WHERE id = :i"),
                     {"i": edited})
        conn.execute(text("UPDATE commendation SET status = 'REVOKED', revoke_reason = '晋级' WHERE id = :i"),
                     {"i": lower})
        higher = f11.commendation(conn, volunteer_id=w, title="2025年度志愿服务铜奖", scheme="PROVINCIAL_ANNUAL",
                                  tier="BRONZE", year=2025, awarded_on=dt.date(2026, 1, 15))
    summary = sync(settings, engine)
    assert summary["still_failed"] == {}, summary
    records = _by_id(sandbox, "commendations")
    assert [records[r]["status"] for r in (old_edited, old_lower)] == ["REVOKED", "REVOKED"]
    for local_id, ref in ((edited, f"{edited}-r1"), (higher, str(higher))):
        rec = _record(engine, sandbox, "commendation", "commendations", local_id)
        assert (rec["tier"], rec["status"], rec["clientRef"]) == ("BRONZE", "ACTIVE", ref)
    assert len(records) == 4 and sync(settings, engine)["batches"] == 0
