"""Codes the relay does not know (registry-api.md §1 and §7, v1.1 adds some), on SQLite and PostgreSQL.

The relay runs with the real registry client over an in-process transport that answers ``/batch`` as a newer
registry might: a field code it does not know is a refusal on the data (the record fails with that code and its
message, is not retried, and nothing crashes); a top-level code it does not know is read by its HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
import relay_fake as fake
from regsync.flows.outbound import RelayHalted
from regsync.registry.errors import ValidationFailed
from regsync.settings import Settings
from relay_fake import run_relay

BASE = fake.BASE
BAD = "坏名字"

Answer = Callable[[dict[str, Any], int], dict[str, Any]]


def created(op: dict[str, Any], i: int) -> dict[str, Any]:
    rid = f"V{op['body']['clientRef']}"
    return {"status": 201, "code": "OK", "id": rid, "version": 1,
            "data": {"id": rid, "version": 1, "clientRef": op["body"]["clientRef"], "name": op["body"]["name"]}}


class Registry:
    """A registry that answers each operation with ``answer(op, index)`` (``created`` for the others), and counts
    the operations it was sent."""

    def __init__(self, answer: Answer, *, whole: httpx.Response | None = None) -> None:
        self.answer = answer
        self.whole = whole
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 600})
        ops = json.loads(request.content)["operations"]
        self.sent.extend(ops)
        if self.whole is not None:
            return self.whole
        results = [self.answer(o, i) if o["body"].get("name") == BAD else created(o, i) for i, o in enumerate(ops)]
        return httpx.Response(200, json={"code": "OK", "message": "", "requestId": "r", "data": {"results": results}})


@pytest.fixture
def relay_settings(db_url: str) -> Settings:
    return fake.relay_settings(db_url)


def outbox(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        return {r.local_id: r for r in conn.execute(text(
            "SELECT local_id, state, attempts, last_code, last_error FROM outbox WHERE entity = 'volunteer'"))}


def field_error(code: str, message: str) -> Answer:
    return lambda op, i: {"status": 422, "code": "VALIDATION_FAILED", "message": "invalid",
                          "data": {"errors": [{"field": "name", "code": code, "message": message}]}}


@pytest.mark.parametrize(("code", "kept"), [
    ("NAME_NEEDS_VERIFICATION", "NAME_NEEDS_VERIFICATION"),
    ("NAME_MUST_MATCH_THE_PUBLIC_SECURITY_RECORD_OF_THE_HOLDER_2026",
     "NAME_MUST_MATCH_THE_PUBLIC_SECURITY_RECORD_OF_T~"),
], ids=["short", "longer_than_the_store_keeps"])
def test_an_unknown_field_code_fails_its_record_with_that_code_and_message_and_the_rest_goes_through(
        engine, relay_settings, code, kept) -> None:
    with engine.begin() as conn:
        bad = f.volunteer(conn, name=BAD)
        good = f.volunteer(conn)
    registry = Registry(field_error(code, "姓名须经公安核验 13912345678"))
    stats = run_relay(engine, relay_settings, registry)
    rows = outbox(engine)
    assert (rows[bad].state, rows[bad].attempts, rows[bad].last_code) == ("failed", 1, kept)
    assert "姓名须经公安核验" in rows[bad].last_error and "13912345678" not in rows[bad].last_error
    assert rows[good].state == "sent" and stats.pushed == {"volunteer": 1}
    assert dict(stats.failed_by_code) == {kept: 1}
    # a refusal on the data: not retried until the data changes
    sent = len(registry.sent)
    run_relay(engine, relay_settings, registry)
    assert len(registry.sent) == sent and outbox(engine)[bad].state == "failed"


@pytest.mark.parametrize("code", ["ANNUAL_QUOTA_OF_NEW_REGISTRATIONS_REACHED_FOR_THIS_PROVINCE", "NEW_RULE"])
def test_an_unknown_code_refusing_a_whole_batch_defers_its_records_without_a_crash(engine, relay_settings,
                                                                                  code) -> None:
    with engine.begin() as conn:
        vols = [f.volunteer(conn) for _ in range(3)]
    whole = httpx.Response(422, json={"code": code, "message": "a rule of v1.2", "requestId": "r", "data": None})
    kept = code if len(code) <= 48 else code[:47] + "~"
    with pytest.raises(ValidationFailed) as info:  # the relay defers the batch's records, then says why
        run_relay(engine, relay_settings, Registry(created, whole=whole))
    assert info.value.code == kept
    rows = outbox(engine)
    assert {rows[v].state for v in vols} == {"deferred"}
    assert {rows[v].last_code for v in vols} == {kept}
    assert {rows[v].attempts for v in vols} == {0}


def test_an_unknown_per_operation_code_of_a_transient_status_is_retried_later(engine, relay_settings) -> None:
    with engine.begin() as conn:
        bad = f.volunteer(conn, name=BAD)
        good = f.volunteer(conn)
    registry = Registry(lambda op, i: {"status": 429, "code": "PROVINCE_QUOTA_EXCEEDED", "message": "later"})
    run_relay(engine, relay_settings, registry)
    rows = outbox(engine)
    assert (rows[bad].state, rows[bad].last_code) == ("deferred", "PROVINCE_QUOTA_EXCEEDED")
    assert rows[good].state == "sent"


def test_most_of_a_batch_refused_with_an_unknown_401_code_halts_the_relay(engine, relay_settings) -> None:
    with engine.begin() as conn:
        vols = [f.volunteer(conn, name=BAD) for _ in range(4)] + [f.volunteer(conn)]
    registry = Registry(lambda op, i: {"status": 401, "code": "CLIENT_CERTIFICATE_EXPIRED", "message": "renew"})
    with pytest.raises(RelayHalted, match="CLIENT_CERTIFICATE_EXPIRED"):
        run_relay(engine, relay_settings, registry)
    rows = outbox(engine)
    assert {rows[v].state for v in vols} == {"deferred"}  # nothing failed on its data: one alarm instead
