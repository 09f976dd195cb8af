"""Operator commands on the outbox: list, retry, discard (design.md, "Operator commands").

The logic runs on SQLite and PostgreSQL (``engine`` fixture); the CLI end to end on a SQLite file named by
``REGSYNC_DATABASE_URL``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.db import outbox_admin
from regsync.db.migrate import head_revision, upgrade
from regsync.db.session import make_engine, utcnow
from regsync.domain.clock import to_local
from regsync.flows import operator as op
from regsync.flows.operator import OperatorUsageError, Selection
from regsync.flows.outbound import Relay
from regsync.settings import Settings

PHONE = "13912345678"
ID_NUMBER = "230102199001011234"
FULL_VALUES = re.compile(r"(?<!\d)(1[3-9]\d{9}|\d{17}[\dXx])(?!\d)")


@dataclass
class Seed:
    """Local ids of the seeded records; each comment says the state its outbox rows are put in."""

    orgs: dict[str, int]  # 8 orgs, pending
    v_phone: int  # failed INVALID_PHONE, reason with a full phone and ID number
    v_id: int  # failed INVALID_ID_NUMBER
    v_two: int  # two rows: one failed INVALID_PHONE (older), one pending (newer)
    v_sent: int  # sent
    membership: int  # blocked PARENT_FAILED on v_phone
    activity: int  # deferred RATE_LIMITED, attempts 3, available in one hour


def rows_of(conn: Any, entity: str, local_id: int) -> list[int]:
    return list(conn.execute(text("SELECT id FROM outbox WHERE entity = :e AND local_id = :i ORDER BY id"),
                             {"e": entity, "i": local_id}).scalars())


def row_ids(engine: Engine, entity: str, local_id: int) -> list[int]:
    with engine.connect() as conn:
        return rows_of(conn, entity, local_id)


def set_state(conn: Any, row_ids: list[int], state: str, code: str | None = None, error: str | None = None,
              **extra: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in extra)
    conn.execute(text(f"UPDATE outbox SET state = :state, last_code = :code, last_error = :error"
                      f"{', ' + sets if sets else ''} WHERE id IN ({','.join(map(str, row_ids))})"),
                 {"state": state, "code": code, "error": error, **extra})


def seed(engine: Engine) -> Seed:
    now = utcnow()
    with engine.begin() as conn:
        orgs = f.org_tree(conn)
        v_phone = f.volunteer(conn)
        v_id = f.volunteer(conn)
        v_two = f.volunteer(conn)
        v_sent = f.volunteer(conn)
        m = f.membership(conn, v_phone, orgs["team"])
        a = f.activity(conn, orgs["team"])
        set_state(conn, rows_of(conn, "volunteer", v_phone), "failed", "INVALID_PHONE",
                  f"phone: INVALID_PHONE ({PHONE} is not a phone; id {ID_NUMBER})", attempts=1, done_at=now)
        set_state(conn, rows_of(conn, "volunteer", v_id), "failed", "INVALID_ID_NUMBER",
                  "idNumber: INVALID_ID_NUMBER (bad check character)", attempts=1, done_at=now)
        set_state(conn, rows_of(conn, "volunteer", v_two), "failed", "INVALID_PHONE", "phone: INVALID_PHONE",
                  attempts=1, done_at=now)
        conn.execute(text("UPDATE volunteer SET phone = '13800000000' WHERE id = :id"), {"id": v_two})
        set_state(conn, rows_of(conn, "volunteer", v_sent), "sent", done_at=now)
        set_state(conn, rows_of(conn, "membership", m), "blocked", "PARENT_FAILED",
                  f"waits for volunteer {v_phone}, which the registry refused", blocked_entity="volunteer",
                  blocked_local_id=v_phone, attempts=1, done_at=now)
        set_state(conn, rows_of(conn, "activity", a), "deferred", "RATE_LIMITED", "slow down", attempts=3,
                  available_at=now + dt.timedelta(hours=1))
    return Seed(orgs, v_phone, v_id, v_two, v_sent, m, a)


def outbox(engine: Engine, entity: str, local_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT * FROM outbox WHERE entity = :e AND local_id = :i ORDER BY id"),
            {"e": entity, "i": local_id}).mappings()]


def audits(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM audit ORDER BY id")).mappings()]


def claim_all(engine: Engine) -> set[tuple[str, int]]:
    relay = Relay(engine, client=None, settings=Settings())
    try:
        with engine.begin() as conn:
            return {(r["entity"], r["local_id"]) for r in relay.claim(conn, 100)}
    finally:
        relay.close()


def as_dt(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------------ list
def test_list_folds_rows_per_record_most_pressing_first_and_masks(engine: Engine) -> None:
    s = seed(engine)
    listing = op.list_outbox(engine)
    keys = [r.key for r in listing.records]
    # 8 orgs, v_phone, v_id, v_two, membership, activity; v_sent is done
    assert listing.total == 13 and len(keys) == 13
    assert f"volunteer:{s.v_sent}" not in keys
    assert listing.by_state == {"failed": 3, "blocked": 1, "deferred": 1, "pending": 8}
    assert listing.by_code == {"INVALID_PHONE": 2, "INVALID_ID_NUMBER": 1, "PARENT_FAILED": 1,
                               "RATE_LIMITED": 1}
    assert [r.state for r in listing.records] == ["failed"] * 3 + ["blocked", "deferred"] + ["pending"] * 8

    by_key = {r.key: r for r in listing.records}
    two = by_key[f"volunteer:{s.v_two}"]
    assert two.rows == 2 and two.states == {"failed": 1, "pending": 1} and two.state == "failed"
    assert two.row_ids == row_ids(engine, "volunteer", s.v_two)
    assert two.code == "INVALID_PHONE" and two.next_attempt is not None  # its pending row goes next

    phone = by_key[f"volunteer:{s.v_phone}"]
    assert phone.next_attempt is None and phone.attempts == 1 and phone.age_s is not None
    assert PHONE not in phone.reason and "139****5678" in phone.reason
    assert ID_NUMBER not in phone.reason and "230102********1234" in phone.reason

    blocked = by_key[f"membership:{s.membership}"]
    assert blocked.blocked_by == f"volunteer:{s.v_phone}" and blocked.code == "PARENT_FAILED"

    deferred = by_key[f"activity:{s.activity}"]
    assert deferred.attempts == 3 and deferred.next_attempt is not None
    assert deferred.next_attempt.utcoffset() == dt.timedelta(hours=8)
    assert deferred.next_attempt > to_local(utcnow() + dt.timedelta(minutes=59))

    doc = listing.as_dict()
    assert set(doc) == {"records", "total", "by_state", "by_code", "limit", "offset"}
    assert doc["records"][0]["oldest_change"].endswith("+08:00")
    json.dumps(doc)  # JSON-ready
    assert not FULL_VALUES.search(json.dumps(doc))


def test_list_filters_and_pages(engine: Engine) -> None:
    s = seed(engine)
    failed = op.list_outbox(engine, states=["failed"])
    assert {r.key for r in failed.records} == {f"volunteer:{s.v_phone}", f"volunteer:{s.v_id}",
                                              f"volunteer:{s.v_two}"}
    assert failed.records[0].states == {"failed": 1}

    two_states = op.list_outbox(engine, states=["blocked", "deferred"])
    assert two_states.by_state == {"blocked": 1, "deferred": 1}

    by_code = op.list_outbox(engine, code="INVALID_PHONE")
    assert {r.key for r in by_code.records} == {f"volunteer:{s.v_phone}", f"volunteer:{s.v_two}"}
    assert by_code.by_code == {"INVALID_PHONE": 2}

    orgs = op.list_outbox(engine, kind="org")
    assert orgs.total == 8 and {r.kind for r in orgs.records} == {"org"}

    seen: list[str] = []
    for offset in range(0, 13, 5):
        page = op.list_outbox(engine, limit=5, offset=offset)
        assert page.total == 13 and len(page.records) == min(5, 13 - offset)
        seen += [r.key for r in page.records]
    assert len(seen) == len(set(seen)) == 13

    none = op.list_outbox(engine, code="NO_SUCH_CODE")
    assert none.records == [] and none.total == 0 and none.by_state == {}

    with pytest.raises(OperatorUsageError):
        op.list_outbox(engine, states=["sent"])
    with pytest.raises(OperatorUsageError):
        op.list_outbox(engine, limit=0)


def test_list_shows_at_most_max_row_ids_per_record(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_admin, "MAX_ROW_IDS", 3)  # the listing's statements are the store's
    with engine.begin() as conn:
        v = f.volunteer(conn)
        for i in range(5):
            conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :id"),
                         {"p": f"1380000000{i}", "id": v})
    (rec,) = op.list_outbox(engine).records
    assert rec.rows == 6 and len(rec.row_ids) == 3


# ------------------------------------------------------------------------------------------------ retry
def test_retry_by_row_id_requeues_the_record_and_audits(engine: Engine) -> None:
    s = seed(engine)
    row_id = row_ids(engine, "volunteer", s.v_phone)[0]
    before = utcnow()
    result = op.retry_outbox(engine, Selection(row_ids=(row_id,)), reason="phone fixed by the county office",
                             actor="zhang.wei")
    assert result.affected == 1 and result.by_kind == {"volunteers": 1} and result.rows == 1
    assert result.audit_id is not None and result.unmatched == []
    (row,) = outbox(engine, "volunteer", s.v_phone)
    assert row["state"] == "pending" and row["attempts"] == 0
    assert row["claimed_by"] is None and row["claimed_until"] is None
    assert as_dt(row["available_at"]) >= before - dt.timedelta(seconds=1)
    assert row["last_code"] == "INVALID_PHONE"  # history kept until the relay settles it
    assert row["done_at"] is not None  # the time of the refusal, kept

    (audit,) = audits(engine)
    assert audit["id"] == result.audit_id and audit["actor"] == "zhang.wei"
    assert audit["action"] == "outbox.retry" and audit["target"] == f"ids={row_id}"
    assert audit["reason"] == "phone fixed by the county office"
    details = json.loads(audit["details"])
    assert details["affected"] == 1 and details["records"] == [f"volunteer:{s.v_phone}"]

    claimed = claim_all(engine)
    assert ("volunteer", s.v_phone) in claimed
    assert ("volunteer", s.v_id) not in claimed and ("activity", s.activity) not in claimed


def test_retry_by_code_touches_only_that_code(engine: Engine) -> None:
    s = seed(engine)
    result = op.retry_outbox(engine, Selection(code="INVALID_PHONE"), reason="phone rule relaxed",
                             actor="ops")
    assert result.affected == 2 and result.by_kind == {"volunteers": 2}
    assert [r["state"] for r in outbox(engine, "volunteer", s.v_two)] == ["pending", "pending"]
    assert outbox(engine, "volunteer", s.v_id)[0]["state"] == "failed"
    assert audits(engine)[0]["target"] == "code=INVALID_PHONE"
    claimed = claim_all(engine)
    assert {("volunteer", s.v_phone), ("volunteer", s.v_two)} <= claimed
    assert ("volunteer", s.v_id) not in claimed


def test_retry_all_failed_takes_failed_and_blocked_not_deferred(engine: Engine) -> None:
    s = seed(engine)
    result = op.retry_outbox(engine, Selection(all_failed=True), reason="registry fixed a rule", actor="ops")
    assert result.by_kind == {"volunteers": 3, "memberships": 1} and result.affected == 4
    (m,) = outbox(engine, "membership", s.membership)
    assert m["state"] == "pending" and m["blocked_entity"] is None and m["blocked_local_id"] is None
    assert outbox(engine, "activity", s.activity)[0]["state"] == "deferred"
    assert op.list_outbox(engine, states=["failed", "blocked"]).total == 0
    kind_only = op.retry_outbox(engine, Selection(all_failed=True, kind="org"), reason="again", actor="ops")
    assert kind_only.affected == 0


def test_retry_of_a_deferred_record_by_key_makes_it_available_now(engine: Engine) -> None:
    s = seed(engine)
    assert ("activity", s.activity) not in claim_all(engine)
    result = op.retry_outbox(engine, Selection(records=(("activity", s.activity),)), reason="limit lifted",
                             actor="ops")
    assert result.affected == 1
    (row,) = outbox(engine, "activity", s.activity)
    assert row["state"] == "pending" and row["attempts"] == 0
    assert ("activity", s.activity) in claim_all(engine)


def test_retry_leaves_rows_under_a_live_lease_alone(engine: Engine) -> None:
    s = seed(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET claimed_by = 'other', claimed_until = :t "
                          "WHERE entity = 'activity'"), {"t": utcnow() + dt.timedelta(minutes=5)})
    result = op.retry_outbox(engine, Selection(records=(("activity", s.activity),)), reason="now",
                             actor="ops")
    assert result.affected == 0 and result.busy == 1
    assert outbox(engine, "activity", s.activity)[0]["state"] == "deferred"


def test_retry_that_matches_nothing_is_not_audited_and_names_the_unmatched(engine: Engine) -> None:
    s = seed(engine)
    sent_row = row_ids(engine, "volunteer", s.v_sent)[0]
    result = op.retry_outbox(engine, Selection(row_ids=(sent_row, 999_999), records=(("org", 424242),)),
                             reason="try", actor="ops")
    assert result.affected == 0 and result.rows == 0 and result.nothing_matched
    assert result.unmatched == [str(sent_row), "999999", "org:424242"]
    assert result.audit_id is None and audits(engine) == []
    none = op.retry_outbox(engine, Selection(code="NO_SUCH_CODE"), reason="try", actor="ops")
    assert none.affected == 0 and none.audit_id is None and audits(engine) == []


def test_retry_dry_run_changes_nothing_and_writes_no_audit(engine: Engine) -> None:
    s = seed(engine)
    result = op.retry_outbox(engine, Selection(all_failed=True), reason="check", actor="ops", dry_run=True)
    assert result.affected == 4 and result.audit_id is None and result.dry_run
    assert outbox(engine, "volunteer", s.v_phone)[0]["state"] == "failed"
    assert audits(engine) == []


def test_reason_actor_and_selection_are_checked_and_masked(engine: Engine) -> None:
    s = seed(engine)
    with pytest.raises(OperatorUsageError, match="reason"):
        op.retry_outbox(engine, Selection(all_failed=True), reason="  ")
    with pytest.raises(OperatorUsageError, match="nothing selected"):
        op.retry_outbox(engine, Selection(), reason="x")
    with pytest.raises(OperatorUsageError, match="only one"):
        op.retry_outbox(engine, Selection(code="X", all_failed=True), reason="x")
    with pytest.raises(OperatorUsageError, match="all-failed"):
        op.discard_outbox(engine, Selection(all_failed=True), reason="x")
    assert audits(engine) == []
    op.retry_outbox(engine, Selection(records=(("volunteer", s.v_phone),)),
                    reason=f"the person called from {PHONE}", actor=None)
    (audit,) = audits(engine)
    assert audit["reason"] == "the person called from 139****5678"
    assert audit["actor"] == op.default_actor() != ""


# ------------------------------------------------------------------------------------------------ discard
def test_discard_by_ids_drops_every_waiting_row_of_the_record(engine: Engine) -> None:
    s = seed(engine)
    first_row = row_ids(engine, "volunteer", s.v_two)[0]
    result = op.discard_outbox(engine, Selection(row_ids=(first_row,), records=(("volunteer", s.v_phone),)),
                               reason="duplicate person, merged on the platform", actor="li.na")
    assert result.affected == 2 and result.rows == 3 and result.by_kind == {"volunteers": 2}
    assert result.dependents_blocked == 1  # the membership waits on v_phone
    rows = outbox(engine, "volunteer", s.v_two) + outbox(engine, "volunteer", s.v_phone)
    assert {r["state"] for r in rows} == {"discarded"} and all(r["done_at"] is not None for r in rows)
    assert rows[0]["last_code"] == "INVALID_PHONE"
    (audit,) = audits(engine)
    assert audit["action"] == "outbox.discard" and audit["actor"] == "li.na"
    assert audit["target"] == f"ids={first_row},volunteer:{s.v_phone}"
    assert sorted(json.loads(audit["details"])["records"]) == sorted(
        [f"volunteer:{s.v_two}", f"volunteer:{s.v_phone}"])

    claimed = claim_all(engine)
    assert ("volunteer", s.v_two) not in claimed and ("volunteer", s.v_phone) not in claimed
    assert op.list_outbox(engine, states=["discarded"]).by_state == {"discarded": 2}
    assert sorted(result.dependents) == [f"volunteer:{s.v_phone}"]
    assert result.dependents[f"volunteer:{s.v_phone}"] == [f"membership:{s.membership}"]
    assert json.loads(audit["details"])["dependents"] == {f"volunteer:{s.v_phone}": [f"membership:{s.membership}"]}


def test_a_discarded_record_stays_out_of_sync_and_its_dependents_are_listed_with_it(engine: Engine) -> None:
    """A discard lasts (issue 12 item 8): the record's next edits are kept but never claimed, until an operator
    restores it; ``outbox list`` shows it with the records waiting on it, and those as waiting on a discarded
    record (not refused by the registry)."""
    s = seed(engine)
    result = op.discard_outbox(engine, Selection(records=(("volunteer", s.v_phone),)), reason="left the platform",
                               actor="li.na")
    (discard,) = audits(engine)
    with engine.begin() as conn:  # the platform edits it again, twice
        conn.execute(text("UPDATE volunteer SET phone = '13700000000' WHERE id = :id"), {"id": s.v_phone})
        conn.execute(text("UPDATE volunteer SET name = '李明明' WHERE id = :id"), {"id": s.v_phone})
    assert ("volunteer", s.v_phone) not in claim_all(engine)  # kept out of the relay
    rows = outbox(engine, "volunteer", s.v_phone)
    assert [r["state"] for r in rows] == ["discarded"] * 3  # not lost: set aside with the discarded one

    listing = op.list_outbox(engine)
    by_key = {r.key: r for r in listing.records}
    held = by_key[f"volunteer:{s.v_phone}"]
    assert held.state == "discarded" and held.held and held.held_audit_id == discard["id"] == result.audit_id
    assert held.dependents == [f"membership:{s.membership}"] and held.dependents_total == 1
    waiting = by_key[f"membership:{s.membership}"]
    assert waiting.state == "blocked" and waiting.blocked_by == f"volunteer:{s.v_phone}"
    assert waiting.code == "PARENT_DISCARDED" and "an operator discarded" in waiting.reason
    assert f"outbox restore volunteer:{s.v_phone}" in waiting.reason
    assert listing.by_state["discarded"] == 1
    doc = listing.as_dict()["records"]
    assert next(r for r in doc if r["key"] == held.key)["dependents"] == [waiting.key]

    # restoring takes it back: every row kept since the discard is pending again, the relay sends the current state
    plan = op.restore_outbox(engine, Selection(records=(("volunteer", s.v_phone), ("volunteer", s.v_id))),
                             reason="came back", actor="li.na", dry_run=True)
    assert (plan.affected, plan.rows, plan.unmatched, plan.audit_id) == (1, 3, [f"volunteer:{s.v_id}"], None)
    assert ("volunteer", s.v_phone) not in claim_all(engine)
    done = op.restore_outbox(engine, Selection(records=(("volunteer", s.v_phone),)), reason="came back",
                             actor="wang")
    assert (done.affected, done.rows) == (1, 3) and done.dependents == {held.key: [waiting.key]}
    assert {r["state"] for r in outbox(engine, "volunteer", s.v_phone)} == {"pending"}
    assert ("volunteer", s.v_phone) in claim_all(engine)
    restore = audits(engine)[-1]
    assert (restore["action"], restore["actor"], restore["reason"]) == ("outbox.restore", "wang", "came back")
    assert json.loads(restore["details"])["discarded"] == {held.key: discard["id"]}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox_hold")).scalar_one() == 0
    again = op.restore_outbox(engine, Selection(records=(("volunteer", s.v_phone),)), reason="twice", actor="wang")
    assert again.affected == 0 and again.unmatched == [held.key]
    with pytest.raises(OperatorUsageError):
        op.restore_outbox(engine, Selection(code="INVALID_PHONE"), reason="x", actor="wang")


def test_discard_by_code(engine: Engine) -> None:
    s = seed(engine)
    result = op.discard_outbox(engine, Selection(code="INVALID_ID_NUMBER"), reason="left the province",
                               actor="ops")
    assert result.affected == 1 and result.by_kind == {"volunteers": 1}
    assert outbox(engine, "volunteer", s.v_id)[0]["state"] == "discarded"
    assert outbox(engine, "volunteer", s.v_phone)[0]["state"] == "failed"


def test_parse_targets() -> None:
    assert op.parse_targets(["12", "volunteer:4", "orgs:7", "12"]) == ((12,), (("volunteer", 4), ("org", 7)))
    for bad in ("x", "person:3", "volunteer:x", ""):
        with pytest.raises(OperatorUsageError):
            op.parse_targets([bad])


# ------------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli_db(tmp_path: Any) -> tuple[Engine, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    yield engine, {"REGSYNC_DATABASE_URL": url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING",
                 "COLUMNS": "200"}
    engine.dispose()


def run(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def test_cli_list_json_is_one_object_and_masked(cli_db: Any) -> None:
    engine, env = cli_db
    s = seed(engine)
    res = run(env, "outbox", "list", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["total"] == 13 and doc["by_state"]["failed"] == 3 and len(doc["records"]) == 13
    assert not FULL_VALUES.search(res.stdout)

    res = run(env, "outbox", "list", "--json", "--state", "failed", "--kind", "volunteer", "--limit", "2")
    doc = json.loads(res.stdout)
    assert doc["total"] == 3 and len(doc["records"]) == 2 and doc["limit"] == 2

    for columns in ("200", "80"):
        res = run({**env, "COLUMNS": columns}, "outbox", "list")
        assert res.exit_code == 0 and f"volunteer:{s.v_phone}" in res.stdout and "139****5678" in res.stdout
        assert not FULL_VALUES.search(res.stdout)
        assert max(len(line) for line in res.stdout.splitlines()) <= int(columns)
    res = run(env, "outbox", "list", "--code", "NOPE")
    assert res.exit_code == 0 and "nothing waits" in res.stdout


def test_cli_usage_errors_exit_2(cli_db: Any) -> None:
    engine, env = cli_db
    seed(engine)
    assert run(env, "outbox", "list", "--state", "bogus").exit_code == 2
    assert run(env, "outbox", "list", "--kind", "person").exit_code == 2
    assert run(env, "outbox", "retry", "--code", "INVALID_PHONE").exit_code == 2  # no --reason
    assert run(env, "outbox", "retry", "--code", "INVALID_PHONE", "--reason", " ").exit_code == 2
    assert run(env, "outbox", "retry", "--reason", "why").exit_code == 2  # no selection
    assert run(env, "outbox", "retry", "x:1", "--reason", "why").exit_code == 2
    assert run(env, "outbox", "discard", "--all-failed", "--reason", "why", "--yes").exit_code == 2
    assert audits(engine) == []


def test_cli_retry_json_and_audit(cli_db: Any) -> None:
    engine, env = cli_db
    s = seed(engine)
    res = run(env, "outbox", "retry", "--code", "INVALID_PHONE", "--reason", "rule relaxed",
              "--actor", "wang", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["affected"] == 2 and doc["by_kind"] == {"volunteers": 2} and doc["audit_id"] == 1
    (audit,) = audits(engine)
    assert audit["actor"] == "wang" and audit["reason"] == "rule relaxed"
    res = run(env, "outbox", "retry", f"volunteer:{s.v_id}", "--reason", "fixed")
    assert res.exit_code == 0 and "retried 1 record (volunteers 1" in res.stdout
    res = run(env, "outbox", "retry", "--code", "NOPE", "--reason", "fixed")
    assert res.exit_code == 2 and "nothing matched" in res.stdout and len(audits(engine)) == 2


def test_cli_discard_asks_refuses_without_terminal_and_obeys_yes(cli_db: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine, env = cli_db
    s = seed(engine)
    res = run(env, "outbox", "discard", f"volunteer:{s.v_id}", "--reason", "gone")
    assert res.exit_code == 2 and "no terminal" in res.stderr
    assert outbox(engine, "volunteer", s.v_id)[0]["state"] == "failed" and audits(engine) == []

    monkeypatch.setattr(op, "stdin_is_tty", lambda: True)
    res = run(env, "outbox", "discard", f"volunteer:{s.v_id}", "--reason", "gone", input="n\n")
    assert res.exit_code == 1 and outbox(engine, "volunteer", s.v_id)[0]["state"] == "failed"
    res = run(env, "outbox", "discard", f"volunteer:{s.v_id}", "--reason", "gone", "--json", input="y\n")
    assert res.exit_code == 0, res.output
    # the question went to stderr; CliRunner echoes the typed answer on stdout, a terminal would not
    assert json.loads(res.stdout.splitlines()[-1])["affected"] == 1
    assert "Discard 1 record (volunteers 1)? It will not be sent until restored" in res.stderr
    assert outbox(engine, "volunteer", s.v_id)[0]["state"] == "discarded"
    monkeypatch.setattr(op, "stdin_is_tty", lambda: False)

    res = run(env, "outbox", "discard", "--code", "INVALID_PHONE", "--reason", "merged", "--yes", "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["affected"] == 2
    assert [a["action"] for a in audits(engine)] == ["outbox.discard", "outbox.discard"]


def test_cli_discard_names_what_waits_and_restore_asks_and_takes_it_back(cli_db: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, env = cli_db
    s = seed(engine)
    monkeypatch.setattr(op, "stdin_is_tty", lambda: True)
    res = run(env, "outbox", "discard", f"volunteer:{s.v_phone}", "--reason", "gone", input="y\n")
    assert res.exit_code == 0, res.output
    assert f"waiting on volunteer:{s.v_phone}: membership:{s.membership}" in res.stderr  # before the question
    assert "1 record waits on them and will not be sent either" in res.stderr
    assert f"waiting on volunteer:{s.v_phone}: membership:{s.membership}" in res.stdout
    assert "kept out of sync until restored" in res.stdout
    res = run(env, "outbox", "list")
    assert res.exit_code == 0 and "discarded by an operator" in res.stdout and "PARENT_DISCARDED" in res.stdout
    assert f"waiting on it: membership:{s.membership}" in res.stdout

    res = run(env, "outbox", "restore", f"volunteer:{s.v_phone}")  # no --reason
    assert res.exit_code == 2
    res = run(env, "outbox", "restore", "--reason", "back")  # nothing named
    assert res.exit_code == 2 and "name the records" in res.stderr
    res = run(env, "outbox", "restore", f"volunteer:{s.v_phone}", "--reason", "back", input="n\n")
    assert res.exit_code == 1 and outbox(engine, "volunteer", s.v_phone)[0]["state"] == "discarded"
    monkeypatch.setattr(op, "stdin_is_tty", lambda: False)
    res = run(env, "outbox", "restore", f"volunteer:{s.v_phone}", "--reason", "back")
    assert res.exit_code == 2 and "no terminal" in res.stderr
    res = run(env, "outbox", "restore", f"volunteer:{s.v_phone}", "--reason", "back", "--yes", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["affected"] == 1 and doc["records"] == [f"volunteer:{s.v_phone}"] and doc["audit_id"]
    assert outbox(engine, "volunteer", s.v_phone)[0]["state"] == "pending"
    assert [a["action"] for a in audits(engine)] == ["outbox.discard", "outbox.restore"]


def test_cli_unreachable_store_exits_1(tmp_path: Any) -> None:
    env = {"REGSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}", "REGSYNC_CONFIG": ""}
    res = run(env, "outbox", "list", "--json")
    assert res.exit_code == 1 and res.stdout == "" and "db upgrade" in res.stderr
    assert not (tmp_path / "missing.db").exists()
    env["REGSYNC_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert run(env, "outbox", "retry", "--all-failed", "--reason", "x").exit_code == 1
    empty = tmp_path / "empty.db"
    make_engine(f"sqlite:///{empty}").connect().close()  # a file with no tables
    env["REGSYNC_DATABASE_URL"] = f"sqlite:///{empty}"
    res = run(env, "outbox", "list")
    assert res.exit_code == 1 and "db upgrade" in res.stderr


def test_cli_help_names_the_settings() -> None:
    for cmd in ("list", "retry", "discard", "restore"):
        res = CliRunner().invoke(app, ["outbox", cmd, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "REGSYNC_DATABASE_URL" in res.stdout


@pytest.mark.parametrize("action", ["retry", "discard", "restore"])
@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_an_outbox_action_that_matches_nothing_exits_2_and_writes_no_audit(engine: Engine, db_url: str, action: str,
                                                                          json_output: bool) -> None:
    """``outbox retry|discard|restore volunteer:999999`` (no such record, or nothing to act on): nothing done,
    no audit row, exit 2 (a usage error; README's exit codes), the same for the three commands; with some targets
    matched the action is done, audited, exit 0, and the others are named."""
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": "", "REGSYNC_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    s = seed(engine)
    extra = ["--yes"] if action != "retry" else []
    res = run(env, "outbox", action, "volunteer:999999", "--reason", "t", *extra, *(["--json"] if json_output else []))
    assert res.exit_code == 2, res.output
    assert "nothing matched" in res.stderr
    if json_output:
        doc = json.loads(res.stdout)
        assert doc["affected"] == 0 and doc["audit_id"] is None and doc["unmatched"] == ["volunteer:999999"]
    else:
        assert "nothing matched" in res.stdout
    assert audits(engine) == []
    if action == "restore":  # a record that waits but is not held: nothing to restore either
        res = run(env, "outbox", action, f"volunteer:{s.v_id}", "--reason", "t", "--yes")
        assert res.exit_code == 2 and audits(engine) == [], res.output
        assert run(env, "outbox", "discard", f"volunteer:{s.v_id}", "--reason", "t", "--yes").exit_code == 0
    res = run(env, "outbox", action, f"volunteer:{s.v_id}", "volunteer:999999", "--reason", "t", *extra)
    assert res.exit_code == 0 and "volunteer:999999" in res.stdout, res.output
    assert audits(engine)[-1]["action"] == f"outbox.{action}"


def test_cli_refuses_a_store_not_at_the_newest_schema(db_url: str, empty_engine: Engine) -> None:
    """One store opener (issue 13): the outbox commands refuse a store whose schema is older than this regsync's, as
    ``sync``, ``status`` and the reports always did, rather than reading and writing a schema they were not written
    for. Before, ``outbox list`` answered from a store one migration behind (exit 0)."""
    upgrade(empty_engine, "0011")  # the revision before the newest (0012 adds store_meta)
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": ""}
    for args in (("outbox", "list", "--json"), ("outbox", "retry", "--all-failed", "--reason", "x")):
        res = run(env, *args)
        assert res.exit_code == 1 and res.stdout == "", res.output
        assert f"not {head_revision()}" in res.stderr and "db upgrade" in res.stderr
    upgrade(empty_engine)
    assert run(env, "outbox", "list", "--json").exit_code == 0
