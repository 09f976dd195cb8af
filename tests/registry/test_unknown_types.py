"""Record types, fields and codes the client does not know (registry-api.md §1, v1.1), on the wire (respx).

The registry adds record types (v1.1 added four, which regsync now knows; these tests use made-up later ones) and fields over
time: a client skips and counts feed entries, lookup results and export lines of types it does not know, ignores
(and counts) fields it does not know, never stops on them and never holds its cursor back; a field code it does
not know is a refusal on the data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import respx
from structlog.testing import capture_logs

from regsync.registry import errors as E
from regsync.registry.client import ClientStats, RegistryClient
from regsync.registry.types import Operation

from .conftest import envelope


def change(seq: int, type_: str, rid: str, **extra: Any) -> dict[str, Any]:
    return {"seq": seq, "type": type_, "id": rid, "version": 1, "op": "upsert",
            "changedAt": "2026-11-29T08:00:00+08:00", "byClientId": None, **extra}


def feed(changes: list[dict[str, Any]], cursor: str, more: bool = False) -> httpx.Response:
    return envelope({"changes": changes, "nextCursor": cursor, "hasMore": more})


def ndjson(lines: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, content=b"".join(orjson.dumps(x) + b"\n" for x in lines),
                          headers={"Content-Type": "application/x-ndjson", "X-Snapshot-Cursor": "77"})


# -- the change feed ------------------------------------------------------------------------------------------


def test_feed_entries_of_unknown_types_are_skipped_and_counted_and_the_cursor_moves_past_them(
    client: RegistryClient, router: respx.Router
) -> None:
    route = router.get("/changes").mock(return_value=feed([
        change(41, "insurance", "INS1"),
        change(42, "volunteer", "V1", reason="PORTAL_EDIT"),  # an entry field v1 does not have
        change(43, "badge", "BDG1"),
        change(44, "insurance", "INS2"),
        change(45, "serviceRecord", "S1"),
    ], "45", more=True))
    page = client.changes("40")
    assert route.call_count == 1  # not a malformed page: no retry
    assert [(c.seq, c.kind, c.registry_id) for c in page.changes] == [(42, "volunteer", "V1"),
                                                                       (45, "service_record", "S1")]
    assert page.next_cursor == "45" and page.has_more
    assert dict(page.unknown.types) == {"insurance": 2, "badge": 1}
    assert dict(page.unknown.fields) == {"change.reason": 1}
    stats = client.stats.as_dict()
    assert stats["unknown_types"] == {"insurance": 2, "badge": 1}
    assert stats["unknown_fields"] == {"change.reason": 1}


def test_a_feed_page_of_nothing_but_unknown_types_is_a_page_not_an_error(
    client: RegistryClient, router: respx.Router
) -> None:
    router.get("/changes").mock(return_value=feed(
        [change(i, "planet", f"P{i}") for i in range(1, 1001)], "1000", more=True))
    page = client.changes("0", limit=1000)
    assert page.changes == [] and page.next_cursor == "1000" and page.has_more
    assert dict(page.unknown.types) == {"planet": 1000}


def test_a_feed_entry_of_a_known_type_that_is_broken_or_has_no_type_is_still_malformed(
    make_client: Callable[..., RegistryClient], router: respx.Router
) -> None:
    client = make_client(max_retries=1)
    route = router.get("/changes")
    for bad in ({k: v for k, v in change(1, "volunteer", "V1").items() if k != "type"},
                {k: v for k, v in change(1, "volunteer", "V1").items() if k != "version"},
                change(1, "volunteer", "V1", op="teleport")):
        route.mock(return_value=feed([bad], "1"))
        with pytest.raises(E.MalformedAnswer):
            client.changes("0")


# -- lookups and other answers --------------------------------------------------------------------------------


def test_lookup_results_of_another_type_are_skipped_and_unknown_fields_ignored(
    client: RegistryClient, router: respx.Router
) -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["type"] == "volunteer"
        return envelope({"records": [
            {"id": "V1", "version": 3, "phone": "13900001111", "insuredUntil": "2027-06-30", "badges": ["x"]},
            {"id": "INS1", "type": "insurance", "title": "志愿者意外险", "version": 1},
            {"id": "V2", "type": "volunteer", "version": 1, "insuredUntil": "2027-01-31"},
        ]})

    router.post("/lookup").mock(side_effect=registry)
    records = client.lookup("volunteer", ["V1", "V2", "INS1"])
    assert sorted(records, key=lambda r: r["id"]) == [{"id": "V1", "version": 3, "phone": "13900001111"},
                                                      {"id": "V2", "version": 1}]
    unknown = client.stats.unknown
    assert dict(unknown.types) == {"insurance": 1}
    assert dict(unknown.fields) == {"volunteer.insuredUntil": 2, "volunteer.badges": 1}


def test_answers_of_writes_and_reads_ignore_unknown_fields_and_count_them(
    client: RegistryClient, router: respx.Router
) -> None:
    router.post("/batch").mock(return_value=envelope({"results": [
        {"status": 201, "code": "OK", "id": "V1", "version": 1,
         "data": {"id": "V1", "version": 1, "name": "张三", "insuredUntil": "2027-01-31"}},
        {"status": 201, "code": "OK", "id": "A1", "version": 1,
         "data": {"id": "A1", "version": 1, "title": "社区清洁", "evaluationCount": 0}},
    ]}))
    router.get("/volunteers/V1").mock(return_value=envelope({"id": "V1", "version": 2, "insuredUntil": "1.50"}))
    router.get("/volunteers", params={"clientRef": "7"}).mock(return_value=envelope({"records": [
        {"id": "V7", "version": 1, "clientRef": "7", "insuredUntil": "2027-01-31"}]}))
    results = client.batch([
        Operation("create", "volunteer", {"name": "张三"}, idempotency_key="k1", client_ref="1"),
        Operation("create", "activity", {"title": "社区清洁"}, idempotency_key="k2", client_ref="2"),
    ])
    assert [r.record for r in results] == [{"id": "V1", "version": 1, "name": "张三"},
                                           {"id": "A1", "version": 1, "title": "社区清洁"}]
    assert client.get("volunteer", "V1") == {"id": "V1", "version": 2}
    assert client.find_by_client_ref("volunteer", "7") == {"id": "V7", "version": 1, "client_ref": "7"}
    assert dict(client.stats.unknown.fields) == {"volunteer.insuredUntil": 3, "activity.evaluationCount": 1}
    assert not client.stats.unknown.types


# -- exports --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["decoded", "lazy"])
def test_export_lines_of_another_type_are_skipped_and_unknown_fields_counted(
    client: RegistryClient, router: respx.Router, lazy: bool
) -> None:
    router.get("/exports/volunteers").mock(return_value=ndjson([
        {"id": "V1", "version": 1, "name": "李明", "insuredUntil": "3.00"},
        {"id": "V15", "type": "insurance", "title": "金奖"},
        {"id": "V2", "version": 4, "type": "volunteer", "name": "王芳"},
        {"id": "V3", "type": "evaluation", "punctuality": 5},
        {"id": "V4", "version": 2, "name": "赵四", "insuredUntil": "2027-01-31", "commendations": 2},
    ]))
    with client.export("volunteer") as ex:
        ex.lazy = lazy
        got = [(r["id"], r["version"], r["name"]) for r in ex]
        assert ex.records_read == 3
        assert dict(ex.unknown.types) == {"insurance": 1, "evaluation": 1}
    assert got == [("V1", 1, "李明"), ("V2", 4, "王芳"), ("V4", 2, "赵四")]
    assert dict(client.stats.unknown.types) == {"insurance": 1, "evaluation": 1}
    assert dict(client.stats.unknown.fields) == {"volunteer.insuredUntil": 2, "volunteer.commendations": 1}


def test_export_counts_reach_the_client_when_the_reader_stops_early(
    client: RegistryClient, router: respx.Router
) -> None:
    router.get("/exports/orgs").mock(return_value=ndjson([
        {"id": "O0", "type": "badge", "title": "急救培训"},
        {"id": "O1", "version": 1, "name": "某队"},
        {"id": "O2", "version": 1, "name": "某队二"},
    ]))
    with client.export("org") as ex:
        assert next(iter(ex))["id"] == "O1"
    assert dict(client.stats.unknown.types) == {"badge": 1}


# -- the log: once per type per run ---------------------------------------------------------------------------


def test_an_unknown_type_or_field_is_logged_once_per_run_not_per_item(
    client: RegistryClient, router: respx.Router
) -> None:
    router.get("/changes").mock(return_value=feed(
        [change(i, "insurance", f"C{i}") for i in range(1, 6)] + [change(6, "badge", "T1")], "6"))
    router.post("/lookup").mock(return_value=envelope({"records": [
        {"id": "V1", "version": 1, "insuredUntil": "1.00"}, {"id": "V2", "version": 1, "insuredUntil": "2.00"}]}))
    with capture_logs() as logs:
        for _ in range(3):
            client.changes("0")
            client.lookup("volunteer", ["V1", "V2"])
    types = [e for e in logs if e["event"] == "registry.unknown_type"]
    fields = [e for e in logs if e["event"] == "registry.unknown_field"]
    assert sorted(e["type"] for e in types) == ["badge", "insurance"]
    assert [e["field"] for e in fields] == ["volunteer.insuredUntil"]
    assert all(e["log_level"] == "info" for e in types + fields)
    assert client.stats.unknown.types["insurance"] == 15
    # a new run (the flows give every run new stats) logs them again, once
    client.stats = ClientStats()
    with capture_logs() as logs:
        client.changes("0")
    assert sorted(e["type"] for e in logs if e["event"] == "registry.unknown_type") == ["badge", "insurance"]


# -- codes the client does not know ---------------------------------------------------------------------------


def test_an_unknown_field_code_in_a_batch_result_is_a_refusal_on_the_data(
    client: RegistryClient, router: respx.Router
) -> None:
    router.post("/batch").mock(return_value=envelope({"results": [
        {"status": 422, "code": "VALIDATION_FAILED", "message": "invalid",
         "data": {"errors": [{"field": "skills[0]", "code": "SKILL_NOT_IN_CATALOGUE",
                              "message": "not a skill of the national catalogue"}]}},
    ]}))
    [res] = client.batch([Operation("create", "volunteer", {"skills": ["编程"]}, idempotency_key="k",
                                    client_ref="1")])
    assert (res.status, res.code, res.ok) == (422, "VALIDATION_FAILED", False)
    assert [(e.field, e.code, e.message) for e in res.errors] == [
        ("skills[0]", "SKILL_NOT_IN_CATALOGUE", "not a skill of the national catalogue")]
    err = E.error_for_result(res)
    assert isinstance(err, E.ValidationFailed) and not err.retriable and not err.systemic
    assert err.errors[0].code == "SKILL_NOT_IN_CATALOGUE"


def test_an_unknown_field_code_of_a_single_write_is_a_refusal_on_the_data(
    client: RegistryClient, router: respx.Router
) -> None:
    route = router.post("/volunteers").mock(return_value=envelope(
        {"errors": [{"field": "name", "code": "NAME_NEEDS_VERIFICATION", "message": "公安核验"}]},
        code="VALIDATION_FAILED", status=422))
    with pytest.raises(E.ValidationFailed) as info:
        client.create("volunteer", {"name": "李明"}, client_ref="1")
    assert route.call_count == 1  # not retried
    assert [(e.field, e.code) for e in info.value.errors] == [("name", "NAME_NEEDS_VERIFICATION")]


UNKNOWN_CODES = [
    # (status, code) → (class, retriable, systemic): an unknown code is read by its HTTP status (§7)
    (400, "BAD_FILTER", E.BadRequest, False, False),
    (401, "TOKEN_REVOKED_BY_ADMIN", E.AuthError, False, True),
    (403, "PROVINCE_SUSPENDED", E.Forbidden, False, False),
    (404, "NO_SUCH_TRAINING", E.NotFound, False, False),
    (409, "DUPLICATE_TRAINING_RECORD", E.RequestRejected, False, False),
    (409, "TRAINING_CANCELLED", E.RequestRejected, False, False),
    (422, "ANNUAL_LIMIT_REACHED", E.ValidationFailed, False, False),
    (429, "QUOTA_EXCEEDED", E.RateLimited, True, False),
    (500, "DB_DOWN", E.ServerError, True, False),
    (503, "REINDEXING", E.Maintenance, True, False),
]


@pytest.mark.parametrize(("status", "code", "cls", "retriable", "systemic"), UNKNOWN_CODES,
                         ids=[f"{s}-{c}" for s, c, *_ in UNKNOWN_CODES])
def test_an_unknown_top_level_code_is_classified_by_its_status(
    make_client: Callable[..., RegistryClient], router: respx.Router, status: int, code: str,
    cls: type[E.RegistryError], retriable: bool, systemic: bool
) -> None:
    client = make_client(max_retries=1)
    router.put("/orgs/O1").mock(return_value=envelope({}, code=code, status=status, message="new rule"))
    with pytest.raises(E.RegistryError) as info:
        client.update("org", "O1", {"name": "新名字"}, if_match=3)
    err = info.value
    assert type(err) is cls and (err.code, err.status) == (code, status)
    assert (err.retriable, err.systemic) == (retriable, systemic)
    # the same code as one batch result
    router.post("/batch").mock(return_value=envelope({"results": [{"status": status, "code": code}]}))
    [res] = client.batch([Operation("update", "org", {"name": "新名字"}, registry_id="O1", if_match=3)])
    one = E.error_for_result(res)
    assert type(one) is cls and one.code == code and (one.retriable, one.systemic) == (retriable, systemic)
