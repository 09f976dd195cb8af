"""A second store under the same client credentials (issue 12, item 4): a record found under this client's
``clientRef`` is this store's own earlier create only when this store's history says it sent that create; another
store's record is never linked or written over without an operator, and a push that meets many of them halts.
Real client against the sandbox over loopback HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from stdnum.cn import ric, uscc

import factories as f
from myutil import drop_my_database, make_my_engine
from pgutil import PG_URL, drop_pg_schema, make_pg_schema_engine
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine
from regsync.flows.outbound import Relay
from regsync.flows.sync import run_sync
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings

PERSON = "23010219900101001" + ric.calc_check_digit("230102199001010010")  # the same person in both stores


@pytest.fixture
def second(engine: Engine, tmp_path) -> Iterator[Engine]:
    """A second local store on the same engine kind as ``engine``."""
    if engine.dialect.name == "sqlite":
        other = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
        upgrade(other)
        yield other
        other.dispose()
        return
    if engine.dialect.name == "mysql":
        other, name = make_my_engine()
        upgrade(other)
        yield other
        other.dispose()
        drop_my_database(name)
        return
    other, schema = make_pg_schema_engine(PG_URL)
    upgrade(other)
    yield other
    other.dispose()
    drop_pg_schema(PG_URL, schema)


def platform(conn: Any, *, contact: str, categories: list[str]) -> dict[str, int]:
    """The same province's orgs and one person, as two stores built from one platform hold them; only the
    contact and descriptive fields given differ."""
    body = "51230100MJ0000001"
    kw = dict(contact_name="张伟", contact_phone=contact, service_categories=json.dumps(categories))
    t = {"city": f.org(conn, "CITY_CORPS", name="哈尔滨市志愿者总队", uscc=body + uscc.calc_check_digit(body), **kw)}
    t["district"] = f.org(conn, "DISTRICT_BRIGADE", t["city"], name="南岗区志愿服务大队", **kw)
    t["street"] = f.org(conn, "STREET_STATION", t["district"], name="花园街道志愿服务站", **kw)
    t["volunteer"] = f.volunteer(conn, id_number=PERSON, phone=contact)
    return t


def registry(sandbox: SandboxServer, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}")
    r.raise_for_status()
    return sorted(r.json()["data"]["records"], key=lambda x: x["id"])


def sync(settings: Settings, engine: Engine, **kw: Any) -> tuple[int, dict[str, Any]]:
    return run_sync(settings, engine=engine, timeout_s=60, **kw)


def states(engine: Engine) -> dict[tuple[str, int], tuple[str, str | None]]:
    with engine.connect() as conn:
        return {(e, i): (s, c) for e, i, s, c in conn.execute(text(
            "SELECT entity, local_id, state, last_code FROM outbox WHERE state <> 'sent' ORDER BY id"))}


def links(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM link")).scalar_one()


def test_a_second_store_under_the_same_credentials_writes_nothing_over_the_first_stores(
        settings, engine, second, sandbox) -> None:
    """Store A pushed its orgs and person; store B, built from the same platform data with other contact and
    descriptive values, pushes under the same credentials. B's creates meet A's records under the same
    clientRefs (and natural keys): they used to be linked and brought to B's values (the registry's orgs took B's
    phone and categories, and A then merged them into its own rows). Now nothing of B's is linked or written, B's
    records fail as CLIENT_REF_TAKEN for an operator, and A pulls nothing."""
    with engine.begin() as conn:
        a = platform(conn, contact="13900001111", categories=["COMMUNITY"])
    code, first = sync(settings, engine)
    assert code == 0 and first["still_failed"] == {}, first
    orgs, people = registry(sandbox, "orgs"), registry(sandbox, "volunteers")
    with second.begin() as conn:
        b = platform(conn, contact="13500009999", categories=["ELDERLY_DISABLED", "EDUCATION"])
    assert a == b  # the same local ids: the same clientRefs
    code, pushed = sync(settings, second)
    assert code == 0 and pushed["pushed"] == {} and pushed["linked"] == {}, pushed
    assert pushed["still_failed"] == {"orgs": 3, "volunteers": 1}, pushed
    # the city corps and the person are another store's; the orgs under the city wait for it
    assert pushed["still_failed_by_code"] == {"CLIENT_REF_TAKEN": 2, "PARENT_FAILED": 2}, pushed
    assert registry(sandbox, "orgs") == orgs and registry(sandbox, "volunteers") == people
    assert links(second) == 0
    assert set(states(second).values()) == {("failed", "CLIENT_REF_TAKEN"), ("blocked", "PARENT_FAILED")}
    code, pulled = sync(settings, engine)
    assert code == 0 and pulled["merged"] == {} and pulled["pushed"] == {}, pulled
    with engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT contact_phone FROM organization")).scalars().all() == ["13900001111"]


def test_a_second_stores_push_that_meets_many_of_them_halts_with_an_alarm(settings, engine, second, sandbox) -> None:
    """Past ``relay.other_store_limit`` records failed as another store's, the relay stops (a failed run with a
    clear error) rather than fail the rest one by one; the next pass stops at once until an operator acts."""
    with engine.begin() as conn:
        platform(conn, contact="13900001111", categories=["COMMUNITY"])
        for n in range(6):
            f.volunteer(conn, id_number=f.id_number(dt.date(1980, 1, 1 + n)), birth=dt.date(1980, 1, 1 + n))
    assert sync(settings, engine)[0] == 0
    with second.begin() as conn:
        platform(conn, contact="13500009999", categories=["ELDERLY_DISABLED"])
        for n in range(6):
            f.volunteer(conn, id_number=f.id_number(dt.date(1981, 2, 1 + n)), birth=dt.date(1981, 2, 1 + n))
    strict = dataclasses.replace(settings, relay=dataclasses.replace(settings.relay, other_store_limit=3,
                                                                     batch_size=1, concurrency=1))
    code, summary = sync(strict, second)
    assert code == 1 and summary["status"] == "failed", (summary, sorted(states(second).items()))
    assert "another store" in summary["error"] and "REGSYNC_OTHER_STORE_LIMIT" in summary["error"], summary
    failed = [k for k, (s, c) in states(second).items() if (s, c) == ("failed", "CLIENT_REF_TAKEN")]
    assert len(failed) == 3, states(second)
    assert any(s in ("pending", "deferred") for s, _ in states(second).values())  # the rest not failed
    code, again = sync(strict, second)
    assert code == 1 and again["batches"] == 0 and "another store" in again["error"], again


@pytest.mark.parametrize("path", ["duplicate_client_ref", "find_by_client_ref"])
def test_a_lost_answer_is_linked_and_brought_to_the_local_state_whatever_changed_since(
        settings, engine, sandbox, monkeypatch, path) -> None:
    """This store sent the create, its answer was lost, and the platform corrected the person's ID number
    meanwhile: the record under its clientRef is this store's own (its history says it sent it), so it is linked
    and brought to the local state (it used to fail CLIENT_REF_TAKEN on the changed identity)."""
    with engine.begin() as conn:
        v = f.volunteer(conn, id_number=PERSON)
    assert sync(settings, engine)[0] == 0
    rid = registry(sandbox, "volunteers")[0]["id"]
    corrected = f.id_number(dt.date(1990, 1, 1))  # the factory's birth date
    with engine.begin() as conn:  # the answer lost: no link, the row waits with an unknown outcome
        conn.execute(text("DELETE FROM link"))
        conn.execute(text("UPDATE volunteer SET id_number = :n WHERE id = :v"), {"n": corrected, "v": v})
        conn.execute(text("UPDATE outbox SET state = 'deferred', last_code = 'INTERNAL', "
                          "created_at = :old, available_at = :now"),
                     {"old": dt.datetime(2020, 1, 1), "now": dt.datetime(2000, 1, 1)})
    if path == "find_by_client_ref":
        monkeypatch.setattr(Relay, "idempotency_window_s", 0.0)
    code, summary = sync(settings, engine, inbound=False)
    assert code == 0 and summary["still_failed"] == {}, summary
    with engine.connect() as conn:
        assert conn.execute(text("SELECT registry_id FROM link WHERE local_id = :v"), {"v": v}).scalar_one() == rid
    rec = registry(sandbox, "volunteers")
    assert len(rec) == 1 and rec[0]["idNumber"] == corrected


@pytest.mark.parametrize("path", ["duplicate_client_ref", "find_by_client_ref"])
def test_a_record_under_this_clients_ref_that_this_store_never_sent_is_not_taken(
        settings, engine, second, sandbox, monkeypatch, path) -> None:
    """The same person under the same clientRef, but the create was another store's: found by DUPLICATE_CLIENT_REF
    or by the lookup by clientRef, it is another store's record, failed as CLIENT_REF_TAKEN and not written over."""
    with engine.begin() as conn:
        f.volunteer(conn, id_number=PERSON, phone="13900001111")
    assert sync(settings, engine)[0] == 0
    people = registry(sandbox, "volunteers")
    with second.begin() as conn:
        v = f.volunteer(conn, id_number=PERSON, phone="13500009999")
    if path == "find_by_client_ref":  # an earlier attempt of its own with no known outcome, past the key's window
        with second.begin() as conn:
            conn.execute(text("UPDATE outbox SET last_code = 'INTERNAL', created_at = :old"),
                         {"old": dt.datetime(2020, 1, 1)})
        monkeypatch.setattr(Relay, "idempotency_window_s", 0.0)
    code, summary = sync(settings, second, inbound=False)
    assert code == 0 and summary["still_failed_by_code"] == {"CLIENT_REF_TAKEN": 1}, summary
    assert registry(sandbox, "volunteers") == people and links(second) == 0
    with second.connect() as conn:
        error = conn.execute(text("SELECT last_error FROM outbox WHERE local_id = :v"), {"v": v}).scalar_one()
    assert "another store" in error and PERSON not in error


def test_a_natural_key_met_on_another_stores_record_is_not_linked(settings, engine, second, sandbox) -> None:
    """Store B's person has another local id (another clientRef) but A's ID number: DUPLICATE_ID_NUMBER names a
    record made under this client's credentials by a create B never sent. It used to be linked (and B's later
    edits pushed over A's person); now it fails as CLIENT_REF_TAKEN. A portal registration of the same kind
    (not this client's) is still linked."""
    with engine.begin() as conn:
        f.volunteer(conn, id_number=PERSON, phone="13900001111")
    assert sync(settings, engine)[0] == 0
    people = registry(sandbox, "volunteers")
    with second.begin() as conn:  # local id 5: a clientRef no store used
        v = f.volunteer(conn, id=5, id_number=PERSON, phone="13500009999")
    code, summary = sync(settings, second, inbound=False)
    assert code == 0 and summary["pushed"] == {} and summary["linked"] == {}, summary
    assert summary["still_failed_by_code"] == {"CLIENT_REF_TAKEN": 1}, summary
    assert [p for p in registry(sandbox, "volunteers") if p["idNumber"] == PERSON] == people
    with second.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM link WHERE local_id = :v"), {"v": v}).scalar_one() == 0


def test_a_pull_never_takes_another_stores_record_made_under_these_credentials(
        settings, engine, second, sandbox) -> None:
    """Store B's orgs failed as another store's; a portal edit of A's org then reaches B's change feed (by the
    portal, not this client). B used to adopt it by USCC (merged with no base: B's descriptive fields queued over
    A's org) or create a second local org for it; now it is skipped as ``other_store``."""
    with engine.begin() as conn:
        a = platform(conn, contact="13900001111", categories=["COMMUNITY"])
    assert sync(settings, engine)[0] == 0
    with second.begin() as conn:
        platform(conn, contact="13500009999", categories=["ELDERLY_DISABLED"])
    code, pushed = sync(settings, second)
    assert code == 0 and pushed["still_failed_by_code"] == {"CLIENT_REF_TAKEN": 2, "PARENT_FAILED": 2}, pushed
    with engine.connect() as conn:
        city = conn.execute(text("SELECT registry_id FROM link WHERE entity = 'org' AND local_id = :i"),
                            {"i": a["city"]}).scalar_one()
        street = conn.execute(text("SELECT registry_id FROM link WHERE entity = 'org' AND local_id = :i"),
                              {"i": a["street"]}).scalar_one()
    for rid in (city, street):
        r = httpx.patch(f"{sandbox.admin_url}/records/orgs/{rid}", json={"contactPhone": "13611112222"})
        r.raise_for_status()
    code, pulled = sync(settings, second)
    assert code == 0 and pulled["adopted"] == {} and pulled["created_locally"] == {}, pulled
    assert pulled["inbound"]["skipped"].get("other_store") == 2, pulled
    assert links(second) == 0
    with second.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM organization")).scalar_one() == 3


def test_adopt_says_which_records_it_links_were_made_by_another_store(settings, engine, second, sandbox) -> None:
    """`regsync adopt` (an operator's decision, e.g. for a rebuilt store of record) links by natural keys; the
    records made under this client's credentials by creates this store never sent are counted and named in its
    summary, never linked silently."""
    from regsync.flows.adopt import run_adopt

    with engine.begin() as conn:
        platform(conn, contact="13900001111", categories=["COMMUNITY"])
    assert sync(settings, engine)[0] == 0
    with second.begin() as conn:
        platform(conn, contact="13500009999", categories=["ELDERLY_DISABLED"])
    code, summary = run_adopt(settings, engine=second)
    assert code == 0, summary
    assert summary["other_store"] == {"org": 3, "volunteer": 1}, summary


def test_a_second_store_holding_the_same_records_is_never_answered_as_the_first(settings, engine, second,
                                                                                sandbox) -> None:
    """Two stores generated from the same platform data (the same seed): B's creates carry the same content and
    clientRefs as A's. Their idempotency keys were derived from that content alone, so the registry replayed A's
    "created" answers to B, B linked every record as its own, and B's later edits were pushed over A's records
    (and pulled into A). Each store's keys now carry its own id: B's records fail CLIENT_REF_TAKEN, and nothing
    of B's reaches the registry or A."""
    with engine.begin() as conn:
        platform(conn, contact="13900001111", categories=["COMMUNITY"])
    code, first = sync(settings, engine)
    assert code == 0 and first["still_failed"] == {}, first
    orgs, people = registry(sandbox, "orgs"), registry(sandbox, "volunteers")
    with second.begin() as conn:
        platform(conn, contact="13900001111", categories=["COMMUNITY"])  # the very same records
    code, pushed = sync(settings, second)
    assert code == 0 and pushed["pushed"] == {} and pushed["linked"] == {}, pushed
    assert pushed["still_failed_by_code"].get("CLIENT_REF_TAKEN", 0) >= 2, pushed
    assert links(second) == 0
    with second.begin() as conn:
        conn.execute(text("UPDATE organization SET name = '第二个库改的名字'"))
        conn.execute(text("UPDATE volunteer SET phone = '13300000010'"))
    code, again = sync(settings, second)
    assert again["pushed"] == {}, again
    assert registry(sandbox, "orgs") == orgs and registry(sandbox, "volunteers") == people
    code, pulled = sync(settings, engine)
    assert code == 0 and pulled["merged"] == {}, pulled
    with engine.connect() as conn:
        assert "第二个库改的名字" not in conn.execute(text("SELECT name FROM organization")).scalars().all()


def test_a_key_used_again_in_a_second_store_never_ends_the_first_stores_record(settings, engine, second,
                                                                                 sandbox) -> None:
    """Store B's row under an id whose clientRef holds store A's record fails CLIENT_REF_TAKEN; B's restore script
    then deletes that row and inserts another person under the same id. The reuse path looked the key's earlier
    record up by clientRef and ended it as B's own: A's volunteer was deregistered in the registry, and A then
    deregistered its own row (a fresh user's try). A record this store never sent is never ended from here."""
    with engine.begin() as conn:
        platform(conn, contact="13900001111", categories=["COMMUNITY"])
    assert sync(settings, engine)[0] == 0
    people = registry(sandbox, "volunteers")
    assert [p["status"] for p in people] == ["ACTIVE"]
    with second.begin() as conn:
        vid = f.volunteer(conn, id_number=f.id_number(dt.date(1988, 8, 8)), birth=dt.date(1988, 8, 8))
    code, first = sync(settings, second)
    assert first["still_failed_by_code"] == {"CLIENT_REF_TAKEN": 1}, first
    with second.begin() as conn:  # a restore script: the same id, another person
        conn.execute(text("DELETE FROM volunteer WHERE id = :i"), {"i": vid})
        f.volunteer(conn, id=vid, id_number=f.id_number(dt.date(1999, 9, 9)), birth=dt.date(1999, 9, 9))
    sync(settings, second)
    after = {p["id"]: p for p in registry(sandbox, "volunteers")}
    assert after[people[0]["id"]]["status"] == "ACTIVE" and after[people[0]["id"]] == people[0]
    code, pulled = sync(settings, engine)
    assert code == 0 and pulled["ended_locally"] == {}, pulled
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM volunteer")).scalars().all() == ["ACTIVE"]
