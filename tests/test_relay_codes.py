"""How the relay reads a registry result: by its typed error (regsync.registry.errors, registry-api.md §7), on SQLite
and PostgreSQL.

The relay kept sets of codes of its own beside the typed errors, and the two disagreed; where they did, the stricter
reading holds: a result fails its record on the data only when it is a verdict on the data. A wait-and-retry answer
(``EXPORT_IN_PROGRESS``, any 5xx) is retried later; a refusal that is about the client as a whole (its scope, a
malformed or unconditional request, its credentials) halts the relay when it answers most of a batch, whether the
code is one the relay listed or one read by its HTTP status.
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
from regsync.flows.relay_results import Verdict, about_the_client, classify, operator_code, refusal_text
from regsync.registry import errors as E
from regsync.registry.types import FieldError, Operation, OperationResult
from regsync.settings import Settings
from relay_fake import run_relay

BASE = fake.BASE
BAD = "坏名字"

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def created(op: dict[str, Any]) -> dict[str, Any]:
    rid = f"V{op['body']['clientRef']}"
    return {"status": 201, "code": "OK", "id": rid, "version": 1,
            "data": {"id": rid, "version": 1, "clientRef": op["body"]["clientRef"], "name": op["body"]["name"]}}


class Registry:
    """Answers each operation on a record named :data:`BAD` with ``answer(op)``, the others as created."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 600})
        ops = json.loads(request.content)["operations"]
        self.sent.extend(ops)
        results = [self.answer(o) if o["body"].get("name") == BAD else created(o) for o in ops]
        return httpx.Response(200, json={"code": "OK", "message": "", "requestId": "r", "data": {"results": results}})


def answer(status: int, code: str) -> Answer:
    return lambda op: {"status": status, "code": code, "message": "refused"}


@pytest.fixture
def relay_settings(db_url: str) -> Settings:
    return fake.relay_settings(db_url)


def outbox(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        return {r.local_id: r for r in conn.execute(text(
            "SELECT local_id, state, attempts, last_code FROM outbox WHERE entity = 'volunteer'"))}


# -- wait and retry: never a verdict on the data ----------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, "EXPORT_IN_PROGRESS"), (500, "ORG_HAS_ACTIVE_CHILDREN"),
                                              (502, "NOT_FOUND")], ids=["export_in_progress", "500", "502"])
def test_an_answer_to_wait_and_retry_defers_its_record_whatever_its_code(engine, relay_settings, status,
                                                                         code) -> None:
    """``EXPORT_IN_PROGRESS`` (§7: wait, then retry) was failed as a refusal on the data by the relay's own set of
    transient codes; a 5xx with another code was retried by the relay but not by the typed error."""
    with engine.begin() as conn:
        bad = f.volunteer(conn, name=BAD)
        good = f.volunteer(conn)
    run_relay(engine, relay_settings, Registry(answer(status, code)))
    rows = outbox(engine)
    assert (rows[bad].state, rows[bad].last_code) == ("deferred", code)
    assert rows[good].state == "sent"


def test_a_5xx_result_is_retried_later_by_its_typed_error() -> None:
    err = E.error_for_result(OperationResult(500, "NOT_FOUND"))
    assert isinstance(err, E.NotFound) and not err.retriable and err.retry_later
    alone = E.error_for_result(OperationResult(404, "NOT_FOUND"))
    assert alone is not None and not alone.retry_later


# -- about the client: most of a batch halts the relay ------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [
    (403, "PROVINCE_SUSPENDED"),  # read by its status: Forbidden, out of this client's scope (the relay's FORBIDDEN)
    (428, "IF_MATCH_FORMAT_CHANGED"),  # read by its status: PreconditionRequired (the relay's PRECONDITION_REQUIRED)
    (401, "invalid_client"),  # systemic (InvalidClient); the relay's set had no such code
], ids=["unknown_403", "unknown_428", "invalid_client"])
def test_most_of_a_batch_refused_about_the_client_halts_the_relay_instead_of_failing_records(
        engine, relay_settings, status, code) -> None:
    with engine.begin() as conn:
        vols = [f.volunteer(conn, name=BAD) for _ in range(4)] + [f.volunteer(conn)]
    with pytest.raises(RelayHalted, match=code):
        run_relay(engine, relay_settings, Registry(answer(status, code)))
    rows = outbox(engine)
    assert {rows[v].state for v in vols} == {"deferred"}  # nothing failed on its data: one alarm instead
    assert {rows[v].attempts for v in vols} == {0}


@pytest.mark.parametrize(("status", "code"), [(403, "NOT_OWNER"), (422, "ANNUAL_LIMIT_REACHED")])
def test_most_of_a_batch_refused_on_each_records_data_fails_those_records(engine, relay_settings, status,
                                                                          code) -> None:
    """``NOT_OWNER`` is a ``FORBIDDEN`` about each record, not about the client: refused records fail."""
    with engine.begin() as conn:
        vols = [f.volunteer(conn, name=BAD) for _ in range(4)]
        good = f.volunteer(conn)
    stats = run_relay(engine, relay_settings, Registry(answer(status, code)))
    rows = outbox(engine)
    assert {(rows[v].state, rows[v].last_code) for v in vols} == {("failed", code)}
    assert rows[good].state == "sent" and dict(stats.failed_by_code) == {code: 4}


def test_one_refusal_about_the_client_alone_fails_its_record(engine, relay_settings) -> None:
    with engine.begin() as conn:
        bad = f.volunteer(conn, name=BAD)
        others = [f.volunteer(conn) for _ in range(3)]
    run_relay(engine, relay_settings, Registry(answer(403, "PROVINCE_SUSPENDED")))
    rows = outbox(engine)
    assert (rows[bad].state, rows[bad].last_code) == ("failed", "PROVINCE_SUSPENDED")
    assert {rows[v].state for v in others} == {"sent"}


# -- the one classification --------------------------------------------------------------------------------------


CREATE = Operation("create", "volunteer", {}, idempotency_key="k", client_ref="1")
CORRECT = Operation("correct", "service_record", {}, registry_id="S1", idempotency_key="k", client_ref="1-r1")
CLASSIFIED = [
    (OperationResult(201, "OK", "V1", 1), CREATE, Verdict.ACCEPTED),
    (OperationResult(409, "INVALID_STATE"), CORRECT, Verdict.CORRECTION_REFUSED),
    (OperationResult(409, "DUPLICATE_CLIENT_REF", "S9"), CORRECT, Verdict.CORRECTION_REFUSED),
    (OperationResult(409, "INVALID_STATE"), CREATE, Verdict.REFUSED),
    (OperationResult(409, "DUPLICATE_ID_NUMBER", "V9"), CREATE, Verdict.DUPLICATE),
    (OperationResult(409, "DUPLICATE_USCC"), CREATE, Verdict.REFUSED),  # no existing id to link to
    (OperationResult(409, "DUPLICATE_TRAINING_RECORD", "T9"), CREATE, Verdict.DUPLICATE),  # v1.1: linked if the same
    (OperationResult(409, "DUPLICATE_BADGE", "B9"), CREATE, Verdict.REFUSED),  # unknown: not a link
    (OperationResult(412, "VERSION_MISMATCH", "V1", 3, {"id": "V1", "version": 3}), CREATE, Verdict.VERSION_MOVED),
    (OperationResult(412, "VERSION_MISMATCH"), CREATE, Verdict.REFUSED),  # no current record to compare
    (OperationResult(429, "RATE_LIMITED"), CREATE, Verdict.RETRY_LATER),
    (OperationResult(429, "QUOTA_EXCEEDED"), CREATE, Verdict.RETRY_LATER),
    (OperationResult(503, "MAINTENANCE"), CREATE, Verdict.RETRY_LATER),
    (OperationResult(500, "INVALID_STATE"), CREATE, Verdict.RETRY_LATER),
    (OperationResult(422, "VALIDATION_FAILED"), CREATE, Verdict.REFUSED),
    (OperationResult(403, "FORBIDDEN"), CREATE, Verdict.REFUSED),
]


@pytest.mark.parametrize(("result", "op", "verdict"), CLASSIFIED,
                         ids=[f"{r.status}-{r.code}-{o.op}" for r, o, _ in CLASSIFIED])
def test_classify_reads_a_result_by_its_typed_error(result, op, verdict) -> None:
    assert classify(result, op) is verdict


def test_the_code_and_words_an_operator_sees_on_a_refusal() -> None:
    refused = OperationResult(422, "VALIDATION_FAILED", message="invalid",
                              errors=[FieldError("phone", "INVALID_PHONE", "bad"), FieldError("name", "REQUIRED", "")])
    assert operator_code(refused) == "INVALID_PHONE"
    assert refusal_text(refused) == "phone: INVALID_PHONE (bad); name: REQUIRED ()"
    assert (operator_code(OperationResult(409, "INVALID_STATE", message="ended")),
            refusal_text(OperationResult(409, "INVALID_STATE", message="ended"))) == ("INVALID_STATE", "ended")
    assert about_the_client(OperationResult(400, "BAD_REQUEST"))
    assert not about_the_client(OperationResult(403, "NOT_OWNER"))
