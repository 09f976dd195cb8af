"""The registry client on the wire (respx): signing, tokens, retries, Retry-After, splits, exports."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import respx

from regsync.registry import errors as E
from regsync.registry.client import RegistryClient
from regsync.registry.types import Operation
from regsync.settings import ConfigError, RegistrySettings

from .conftest import BASE, CLIENT_ID, SECRET, START, FakeClock, Sleeps, envelope, expected_signature, html

NONCE_RE = re.compile(r"[A-Za-z0-9]{16,64}")


def vol_op(i: int) -> Operation:
    return Operation(
        "create",
        "volunteer",
        {"name": f"张{i}", "skills": ["急救"]},
        idempotency_key=f"key-{i}",
        client_ref=str(i),
    )


def ok_results(request: httpx.Request) -> httpx.Response:
    """A batch answer: every operation created, id echoing its clientRef."""
    ops = json.loads(request.content)["operations"]
    return envelope(
        {
            "results": [
                {"status": 201, "code": "OK", "id": "V" + o["body"]["clientRef"], "version": 1} for o in ops
            ]
        }
    )


def batch_keys(route: respx.Route) -> list[str]:
    return [c.request.headers["Idempotency-Key"] for c in route.calls]


# -- signing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["HMAC-SHA256", "HMAC-SM3"])
def test_every_call_is_signed(
    make_client: Callable[..., RegistryClient], router: respx.Router, method: str
) -> None:
    client = make_client(sign_method=method)
    changes = router.get("/changes").mock(
        return_value=envelope({"changes": [], "nextCursor": "c2", "hasMore": False})
    )
    batch = router.post("/batch").mock(side_effect=ok_results)

    client.changes("c 1/ä~", limit=50)
    client.batch([vol_op(1)])

    for call in (changes.calls.last, batch.calls.last):
        req = call.request
        assert req.headers["Authorization"] == "Bearer tok-1"
        assert req.headers["X-Client-Id"] == CLIENT_ID
        assert req.headers["X-Timestamp"] == str(int(START * 1000))
        assert NONCE_RE.fullmatch(req.headers["X-Nonce"])
        assert req.headers["X-Sign-Method"] == method
        assert req.headers["X-Signature"] == expected_signature(req, SECRET, method)
    assert changes.calls.last.request.url.path == "/api/v1/changes"
    assert dict(changes.calls.last.request.url.params) == {"cursor": "c 1/ä~", "limit": "50"}
    # The token call is plain OAuth: a form body, no signature.
    token_req = router.routes["token"].calls.last.request
    assert "X-Signature" not in token_req.headers
    assert (
        token_req.content.decode()
        == f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={SECRET}"
    )


def test_each_attempt_gets_a_fresh_nonce_and_timestamp_and_keeps_its_key(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.post("/batch").mock(
        side_effect=[envelope(None, code="INTERNAL", status=500), html(502), html(504), ok_results]
    )
    results = client.batch([vol_op(1), vol_op(2)])

    assert [r.registry_id for r in results] == ["V1", "V2"]
    reqs = [c.request for c in route.calls]
    assert len(reqs) == 4
    assert len({r.headers["X-Nonce"] for r in reqs}) == 4
    assert len(set(batch_keys(route))) == 1  # the same body keeps its Idempotency-Key
    assert [r.content for r in reqs] == [reqs[0].content] * 4
    stamps = [int(r.headers["X-Timestamp"]) for r in reqs]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # the clock moved with each backoff
    for r in reqs:
        assert r.headers["X-Signature"] == expected_signature(r)
    # Full jitter: attempt n waits uniform in [0, 0.5 * 2^(n-1)].
    assert len(sleeps.calls) == 3
    for n, wait in enumerate(sleeps.calls, start=1):
        assert 0.0 <= wait <= 0.5 * 2 ** (n - 1)
    assert client.stats.retries == {"INTERNAL": 1, "gateway_502": 1, "gateway_504": 1}


# -- tokens -----------------------------------------------------------------------------------------


def test_token_expired_gets_a_new_token_and_repeats_once(
    client: RegistryClient, router: respx.Router
) -> None:
    route = router.get("/volunteers/V1").mock(
        side_effect=[
            envelope(None, code="TOKEN_EXPIRED", status=401),
            envelope({"id": "V1", "version": 2}),
        ]
    )
    assert client.get("volunteer", "V1") == {"id": "V1", "version": 2}
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert client.stats.tokens_fetched == 2
    assert client.stats.retries["TOKEN_EXPIRED"] == 1


def test_token_rejected_twice_is_raised_after_one_repeat(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.get("/volunteers/V1").mock(return_value=envelope(None, code="TOKEN_INVALID", status=401))
    with pytest.raises(E.TokenInvalid) as info:
        client.get("volunteer", "V1")
    assert route.call_count == 2
    assert info.value.systemic and not info.value.retriable
    assert sleeps.calls == []


def test_token_is_refreshed_shortly_before_expiry(
    client: RegistryClient, router: respx.Router, clock: FakeClock
) -> None:
    route = router.get("/volunteers/V1").mock(return_value=envelope({"id": "V1"}))
    client.get("volunteer", "V1")
    clock.advance(530)  # 600 s token, refreshed 60 s before
    client.get("volunteer", "V1")
    clock.advance(15)
    client.get("volunteer", "V1")
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_invalid_client_is_raised_without_retry(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    router.routes["token"].mock(
        side_effect=None, return_value=httpx.Response(401, json={"error": "invalid_client"})
    )
    route = router.get("/volunteers/V1")
    with pytest.raises(E.InvalidClient) as info:
        client.get("volunteer", "V1")
    assert router.routes["token"].call_count == 1 and route.call_count == 0
    assert info.value.status == 401 and info.value.code == "invalid_client"
    assert info.value.systemic and not info.value.retriable
    assert sleeps.calls == []


def test_other_oauth_errors_and_transient_token_faults(client: RegistryClient, router: respx.Router) -> None:
    token = router.routes["token"]
    token.mock(side_effect=[html(502), httpx.Response(200, json={"access_token": "t", "expires_in": 600})])
    router.get("/volunteers/V1").mock(return_value=envelope({"id": "V1"}))
    assert client.get("volunteer", "V1") == {"id": "V1"}
    assert token.call_count == 2

    other = RegistryClient(
        RegistrySettings(url=BASE, client_id="x", client_secret="y"),
        transport=httpx.MockTransport(
            lambda r: httpx.Response(400, json={"error": "unsupported_grant_type"})
        ),
        sleep=lambda s: None,
    )
    with other, pytest.raises(E.OAuthError) as info:
        other.get("volunteer", "V1")
    assert info.value.code == "unsupported_grant_type"


# -- signature, nonce, clock ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["SIGNATURE_INVALID", "NONCE_REPLAYED"])
def test_signature_rejection_is_signed_again_once(
    client: RegistryClient, router: respx.Router, code: str
) -> None:
    route = router.get("/volunteers/V1").mock(
        side_effect=[envelope(None, code=code, status=401), envelope({"id": "V1"})]
    )
    client.get("volunteer", "V1")
    nonces = [c.request.headers["X-Nonce"] for c in route.calls]
    assert len(nonces) == 2 and nonces[0] != nonces[1]

    route.side_effect = None
    route.return_value = envelope(None, code=code, status=401)
    before = route.call_count
    with pytest.raises(E.AuthError):
        client.get("volunteer", "V1")
    assert route.call_count - before == 2


def test_timestamp_skew_corrects_the_offset(
    client: RegistryClient, router: respx.Router, clock: FakeClock
) -> None:
    server_now = dt.datetime.fromtimestamp(START + 400, dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    route = router.get("/volunteers/V1").mock(
        side_effect=[
            envelope(
                {"serverTime": server_now.isoformat(timespec="seconds")}, code="TIMESTAMP_SKEW", status=401
            ),
            envelope({"id": "V1"}),
            envelope({"id": "V1"}),
        ]
    )
    client.get("volunteer", "V1")
    first, second = (int(c.request.headers["X-Timestamp"]) for c in route.calls)
    assert first == int(START * 1000)
    assert second == int((START + 400) * 1000)
    assert client.clock_offset_s == pytest.approx(400)
    clock.advance(10)
    client.get("volunteer", "V1")  # the offset stays
    assert int(route.calls.last.request.headers["X-Timestamp"]) == int((START + 410) * 1000)
    assert route.calls.last.request.headers["X-Signature"] == expected_signature(route.calls.last.request)


# -- Retry-After ------------------------------------------------------------------------------------


def test_retry_after_seconds(client: RegistryClient, router: respx.Router, sleeps: Sleeps) -> None:
    route = router.get("/volunteers/V1").mock(
        side_effect=[
            envelope(None, code="RATE_LIMITED", status=429, headers={"Retry-After": "7"}),
            envelope({"id": "V1"}),
        ]
    )
    client.get("volunteer", "V1")
    assert sleeps.calls == [7.0] and route.call_count == 2
    assert client.stats.retries["RATE_LIMITED"] == 1 and client.stats.slept_s == 7.0


def test_retry_after_http_date_is_read_against_the_date_header(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    # The registry's clock is years away from the local one: only Date − Retry-After counts.
    route = router.get("/volunteers/V1").mock(
        side_effect=[
            html(
                503, {"Retry-After": "Sun, 29 Nov 2026 00:00:12 GMT", "Date": "Sun, 29 Nov 2026 00:00:00 GMT"}
            ),
            envelope({"id": "V1"}),
        ]
    )
    client.get("volunteer", "V1")
    assert sleeps.calls == [12.0] and route.call_count == 2


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (429, "RATE_LIMITED", E.RateLimited),
        (503, "MAINTENANCE", E.Maintenance),
        (429, "EXPORT_IN_PROGRESS", E.ExportInProgress),
    ],
)
def test_retry_after_beyond_the_cap_is_raised(
    client: RegistryClient,
    router: respx.Router,
    sleeps: Sleeps,
    status: int,
    code: str,
    cls: type[E.TransientError],
) -> None:
    route = router.get("/volunteers/V1").mock(
        return_value=envelope(None, code=code, status=status, headers={"Retry-After": "120"})
    )
    with pytest.raises(cls) as info:
        client.get("volunteer", "V1")
    assert info.value.retry_after == 120.0 and info.value.retriable
    assert route.call_count == 1 and sleeps.calls == []


def test_html_maintenance_beyond_the_cap(client: RegistryClient, router: respx.Router) -> None:
    router.get("/volunteers/V1").mock(return_value=html(503, {"Retry-After": "3600"}))
    with pytest.raises(E.Maintenance) as info:
        client.get("volunteer", "V1")
    assert info.value.from_gateway and info.value.retry_after == 3600.0


# -- transient faults -------------------------------------------------------------------------------


def test_timeouts_and_dropped_connections_are_retried(client: RegistryClient, router: respx.Router) -> None:
    route = router.post("/batch").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), ok_results]
    )
    assert [r.registry_id for r in client.batch([vol_op(3)])] == ["V3"]
    assert len(set(batch_keys(route))) == 1
    assert client.stats.retries == {"timeout": 1, "connection": 1}


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (lambda: html(502), E.GatewayError),
        (lambda: html(403), E.GatewayError),
        (lambda: html(429), E.GatewayError),
        (lambda: envelope(None, code="INTERNAL", status=500), E.ServerError),
        (lambda: httpx.ConnectError("refused"), E.RegistryConnectionError),
    ],
)
def test_transient_faults_are_raised_after_max_retries(
    client: RegistryClient,
    router: respx.Router,
    sleeps: Sleeps,
    answer: Callable[[], Any],
    cls: type[E.TransientError],
) -> None:
    route = router.get("/volunteers/V1").mock(side_effect=lambda request: _raise_or_return(answer()))
    with pytest.raises(cls) as info:
        client.get("volunteer", "V1")
    assert route.call_count == 4  # settings.max_retries attempts in all
    assert len(sleeps.calls) == 3
    assert info.value.retriable and not info.value.systemic


def _raise_or_return(value: Any) -> httpx.Response:
    if isinstance(value, Exception):
        raise value
    return value


def test_gateway_error_carries_status(client: RegistryClient, router: respx.Router) -> None:
    router.get("/volunteers/V1").mock(return_value=html(403))
    with pytest.raises(E.GatewayError) as info:
        client.get("volunteer", "V1")
    assert info.value.status == 403 and info.value.from_gateway and info.value.code is None


# -- typed errors ------------------------------------------------------------------------------------

TABLE_7: list[tuple[int, str, type[E.RegistryError], bool]] = [
    (400, "BAD_REQUEST", E.BadRequest, False),
    (401, "TOKEN_EXPIRED", E.TokenExpired, False),
    (401, "TOKEN_INVALID", E.TokenInvalid, False),
    (401, "SIGNATURE_INVALID", E.SignatureInvalid, False),
    (401, "TIMESTAMP_SKEW", E.TimestampSkew, False),
    (401, "NONCE_REPLAYED", E.NonceReplayed, False),
    (403, "FORBIDDEN", E.Forbidden, False),
    (403, "NOT_OWNER", E.NotOwner, False),
    (404, "NOT_FOUND", E.NotFound, False),
    (409, "DUPLICATE_ID_NUMBER", E.DuplicateIdNumber, False),
    (409, "DUPLICATE_USCC", E.DuplicateUscc, False),
    (409, "DUPLICATE_CLIENT_REF", E.DuplicateClientRef, False),
    (409, "ORG_HAS_ACTIVE_CHILDREN", E.OrgHasActiveChildren, False),
    (409, "INVALID_STATE", E.InvalidState, False),
    (410, "CURSOR_EXPIRED", E.CursorExpired, False),
    (412, "VERSION_MISMATCH", E.VersionMismatch, False),
    (413, "BATCH_TOO_LARGE", E.BatchTooLarge, False),
    (413, "BODY_TOO_LARGE", E.BodyTooLarge, False),
    (422, "VALIDATION_FAILED", E.ValidationFailed, False),
    (422, "DAILY_HOURS_EXCEEDED", E.DailyHoursExceeded, False),
    (422, "IDEMPOTENCY_KEY_REUSED", E.IdempotencyKeyReused, False),
    (428, "PRECONDITION_REQUIRED", E.PreconditionRequired, False),
    (429, "RATE_LIMITED", E.RateLimited, True),
    (429, "EXPORT_IN_PROGRESS", E.ExportInProgress, True),
    (500, "INTERNAL", E.ServerError, True),
    (502, "INTERNAL", E.ServerError, True),
    (504, "INTERNAL", E.ServerError, True),
    (503, "MAINTENANCE", E.Maintenance, True),
]


@pytest.mark.parametrize(
    ("status", "code", "cls", "retriable"), TABLE_7, ids=[f"{s}-{c}" for s, c, *_ in TABLE_7]
)
def test_typed_error_per_code(
    make_client: Callable[..., RegistryClient],
    router: respx.Router,
    status: int,
    code: str,
    cls: type[E.RegistryError],
    retriable: bool,
) -> None:
    client = make_client(max_retries=1)
    router.put("/orgs/O1").mock(
        return_value=envelope({}, code=code, status=status, message="msg-x", request_id="rid-9")
    )
    with pytest.raises(E.RegistryError) as info:
        client.update("org", "O1", {"name": "新名字"}, if_match=3)
    err = info.value
    assert type(err) is cls
    assert E.ERROR_CLASSES[code] is cls and E.error_class(status, code) is cls
    assert (err.status, err.code, err.message, err.request_id) == (status, code, "msg-x", "rid-9")
    assert err.retriable is retriable
    assert isinstance(err, E.TransientError) is retriable
    assert f"code={code}" in str(err)


def test_error_data_is_decoded(client: RegistryClient, router: respx.Router) -> None:
    router.put("/volunteers/V1").mock(
        return_value=envelope(
            {"current": {"id": "V1", "version": 8, "totalHours": "12.25"}},
            code="VERSION_MISMATCH",
            status=412,
        )
    )
    router.post("/volunteers").mock(
        return_value=envelope(
            {"existingId": "V9", "ownerClientId": "PORTAL"}, code="DUPLICATE_ID_NUMBER", status=409
        )
    )
    router.post("/orgs").mock(
        return_value=envelope(
            {"errors": [{"field": "contactPhone", "code": "INVALID_PHONE", "message": "?"}]},
            code="VALIDATION_FAILED",
            status=422,
        )
    )
    with pytest.raises(E.VersionMismatch) as vm:
        client.update("volunteer", "V1", {"phone": "13900001111"}, if_match=7)
    assert vm.value.current == {"id": "V1", "version": 8, "total_hours": 1225}
    with pytest.raises(E.DuplicateIdNumber) as dup:
        client.create("volunteer", {"name": "李四"}, client_ref="5", idempotency_key="k5")
    assert (dup.value.existing_id, dup.value.owner) == ("V9", "PORTAL")
    with pytest.raises(E.ValidationFailed) as vf:
        client.create("org", {"name": "某队"}, client_ref="6")
    assert vf.value.errors[0].field == "contact_phone"


def test_unknown_codes_fall_back_on_status() -> None:
    assert E.error_class(409, "SOMETHING_NEW") is E.RequestRejected
    assert E.error_class(503, None) is E.Maintenance
    assert E.error_class(507, "X") is E.ServerError
    assert E.error_class(418, None) is E.RequestRejected


def test_every_class_has_a_docstring_message() -> None:
    for cls in E.ERROR_CLASSES.values():
        assert cls().message == (cls.__doc__ or "").strip().splitlines()[0]
        assert cls().code == cls.code_default


# -- batch: results, splitting, chunking ------------------------------------------------------------


def test_batch_results_are_decoded_in_order(client: RegistryClient, router: respx.Router) -> None:
    router.post("/batch").mock(
        return_value=envelope(
            {
                "results": [
                    {
                        "status": 201,
                        "code": "OK",
                        "id": "SR1",
                        "version": 1,
                        "data": {
                            "id": "SR1",
                            "version": 1,
                            "hours": "2.50",
                            "startsAt": "2026-11-29T09:00:00+08:00",
                        },
                    },
                    {"status": 409, "code": "DUPLICATE_CLIENT_REF", "data": {"existingId": "SR0"}},
                    {
                        "status": 412,
                        "code": "VERSION_MISMATCH",
                        "id": "A1",
                        "data": {"current": {"id": "A1", "version": 5}},
                    },
                    {
                        "status": 422,
                        "code": "VALIDATION_FAILED",
                        "data": {"errors": [{"field": "hours", "code": "INVALID_HOURS", "message": "0.10"}]},
                    },
                ]
            }
        )
    )
    sr = Operation("create", "service_record", {"hours": 250}, idempotency_key="a", client_ref="1")
    ops = [
        sr,
        Operation("create", "service_record", {"hours": 100}, idempotency_key="b", client_ref="2"),
        Operation("update", "activity", {"title": "改"}, registry_id="A1", if_match=4),
        Operation("create", "service_record", {"hours": 10}, idempotency_key="c", client_ref="3"),
    ]
    r = client.batch(ops)
    assert r[0].ok and r[0].record == {
        "id": "SR1",
        "version": 1,
        "hours": 250,
        "starts_at": dt.datetime(2026, 11, 29, 1, 0),
    }
    assert (r[1].code, r[1].registry_id) == ("DUPLICATE_CLIENT_REF", "SR0")
    assert (r[2].version, r[2].record) == (5, {"id": "A1", "version": 5})
    assert r[3].errors[0].field == "hours" and r[3].errors[0].code == "INVALID_HOURS"


def test_batch_sends_the_wire_shape(client: RegistryClient, router: respx.Router) -> None:
    route = router.post("/batch").mock(side_effect=ok_results)
    client.batch([vol_op(1)])
    req = route.calls.last.request
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req.content) == {
        "operations": [
            {
                "op": "create",
                "type": "volunteer",
                "idempotencyKey": "key-1",
                "body": {"name": "张1", "skills": ["急救"], "clientRef": "1"},
            }
        ]
    }


def test_html_413_splits_the_batch(client: RegistryClient, router: respx.Router) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return html(413) if len(json.loads(request.content)["operations"]) > 2 else ok_results(request)

    route = router.post("/batch").mock(side_effect=gateway)
    results = client.batch([vol_op(i) for i in range(7)])
    assert [r.registry_id for r in results] == [f"V{i}" for i in range(7)]
    sizes = [len(json.loads(c.request.content)["operations"]) for c in route.calls]
    assert sizes == [7, 3, 1, 2, 4, 2, 2]
    assert len(set(batch_keys(route))) == len(route.calls)  # every body its own key
    assert client.stats.splits == 3


def test_batch_too_large_splits_and_a_single_op_too_large_fails_alone(
    client: RegistryClient, router: respx.Router
) -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        ops = json.loads(request.content)["operations"]
        if any(o["body"]["clientRef"] == "2" for o in ops):
            return envelope(None, code="BODY_TOO_LARGE", status=413)
        if len(ops) > 1:
            return envelope(None, code="BATCH_TOO_LARGE", status=413)
        return ok_results(request)

    router.post("/batch").mock(side_effect=registry)
    results = client.batch([vol_op(i) for i in range(4)])
    assert [(r.status, r.code) for r in results] == [
        (201, "OK"),
        (201, "OK"),
        (413, "BODY_TOO_LARGE"),
        (201, "OK"),
    ]


def test_batch_is_chunked_at_500(client: RegistryClient, router: respx.Router) -> None:
    route = router.post("/batch").mock(side_effect=ok_results)
    results = client.batch([vol_op(i) for i in range(1201)])
    assert len(results) == 1201 and results[-1].registry_id == "V1200"
    assert [len(json.loads(c.request.content)["operations"]) for c in route.calls] == [500, 500, 201]
    assert client.stats.calls_by_endpoint["batch"] == 3


def test_batch_with_a_wrong_number_of_results_is_malformed(
    client: RegistryClient, router: respx.Router
) -> None:
    router.post("/batch").mock(return_value=envelope({"results": []}))
    with pytest.raises(E.MalformedAnswer):
        client.batch([vol_op(1)])


def test_batch_refuses_incomplete_operations_before_sending(
    client: RegistryClient, router: respx.Router
) -> None:
    route = router.post("/batch")
    with pytest.raises(ValueError):
        client.batch([vol_op(1), Operation("update", "org", {"name": "x"}, registry_id="O1")])
    assert route.call_count == 0


# -- single calls and reads -------------------------------------------------------------------------


def test_single_writes(client: RegistryClient, router: respx.Router) -> None:
    put = router.put("/orgs/O1").mock(return_value=envelope({"id": "O1", "version": 4}))
    create = router.post("/activities").mock(return_value=envelope({"id": "A1", "version": 1}, status=201))
    delete = router.delete("/volunteers/V1").mock(
        return_value=envelope({"id": "V1", "status": "DEREGISTERED"})
    )
    join = router.put("/orgs/O1/members/V1").mock(
        return_value=envelope({"id": "M1", "joinedOn": "2026-01-01"})
    )
    leave = router.delete("/orgs/O1/members/V1").mock(
        return_value=envelope({"id": "M1", "leftOn": "2026-02-01"})
    )
    revoke = router.post("/service-records/SR1:revoke").mock(
        return_value=envelope({"id": "SR1", "status": "REVOKED"})
    )

    assert client.update("org", "O1", {"name": "新"}, if_match=3) == {"id": "O1", "version": 4}
    assert put.calls.last.request.headers["If-Match"] == '"3"'
    client.create(
        "activity",
        {"title": "扫雪", "starts_at": dt.datetime(2026, 12, 1, 0, 0)},
        client_ref="a9",
        idempotency_key="ik-9",
    )
    assert create.calls.last.request.headers["Idempotency-Key"] == "ik-9"
    assert json.loads(create.calls.last.request.content) == {
        "title": "扫雪",
        "startsAt": "2026-12-01T08:00:00+08:00",
        "clientRef": "a9",
    }
    assert client.delete("volunteer", "V1", if_match=2)["status"] == "DEREGISTERED"
    assert delete.calls.last.request.headers["If-Match"] == '"2"'
    assert client.join("O1", "V1", dt.date(2026, 1, 1)) == {"id": "M1", "joined_on": dt.date(2026, 1, 1)}
    assert json.loads(join.calls.last.request.content) == {"joinedOn": "2026-01-01"}
    assert client.leave("O1", "V1", dt.date(2026, 2, 1))["left_on"] == dt.date(2026, 2, 1)
    assert json.loads(leave.calls.last.request.content) == {"leftOn": "2026-02-01"}
    assert leave.calls.last.request.headers["X-Signature"] == expected_signature(leave.calls.last.request)
    client.leave("O1", "V1")
    assert leave.calls.last.request.content == b""
    assert client.revoke("SR1", "重复录入")["status"] == "REVOKED"
    assert revoke.calls.last.request.url.raw_path == b"/api/v1/service-records/SR1:revoke"


def test_get_none_on_404_and_find_by_client_ref(client: RegistryClient, router: respx.Router) -> None:
    router.get("/orgs/NOPE").mock(return_value=envelope(None, code="NOT_FOUND", status=404))
    assert client.get("org", "NOPE") is None
    found = router.get("/volunteers", params={"clientRef": "17"}).mock(
        return_value=envelope([{"id": "V17", "clientRef": "17", "birthDate": "1990-05-06"}])
    )
    assert client.find_by_client_ref("volunteer", "17") == {
        "id": "V17",
        "client_ref": "17",
        "birth_date": dt.date(1990, 5, 6),
    }
    assert found.call_count == 1
    router.get("/orgs", params={"clientRef": "x"}).mock(return_value=envelope({"records": []}))
    assert client.find_by_client_ref("org", "x") is None


def test_lookup_is_chunked_and_decoded(client: RegistryClient, router: respx.Router) -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["type"] == "serviceRecord"
        return envelope({"records": [{"id": i, "hours": "1.00"} for i in body["ids"] if i != "S3"]})

    route = router.post("/lookup").mock(side_effect=registry)
    ids = [f"S{i}" for i in range(1001)] + ["S1"]
    records = client.lookup("service_record", ids)
    assert len(records) == 1000 and records[0] == {"id": "S0", "hours": 100}
    assert [len(json.loads(c.request.content)["ids"]) for c in route.calls] == [500, 500, 1]


def test_changes(client: RegistryClient, router: respx.Router) -> None:
    route = router.get("/changes").mock(
        return_value=envelope(
            {
                "changes": [
                    {
                        "seq": 1,
                        "type": "membership",
                        "id": "M1",
                        "version": 1,
                        "op": "upsert",
                        "changedAt": "2026-11-29T08:00:00+08:00",
                        "byClientId": None,
                    }
                ],
                "nextCursor": "c1",
                "hasMore": False,
            }
        )
    )
    page = client.changes(None)
    assert dict(route.calls.last.request.url.params) == {"limit": "200"}
    assert page.next_cursor == "c1" and page.changes[0].kind == "membership"
    route.mock(return_value=envelope(None, code="CURSOR_EXPIRED", status=410))
    with pytest.raises(E.CursorExpired):
        client.changes("old")
    with pytest.raises(ValueError):
        client.changes("c", limit=1001)


# -- exports ----------------------------------------------------------------------------------------


def _gzip_chunks(lines: list[bytes], size: int) -> list[bytes]:
    blob = gzip.compress(b"".join(lines))
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def test_export_streams_gzip_ndjson(client: RegistryClient, router: respx.Router) -> None:
    lines = [
        orjson.dumps(
            {
                "id": f"V{i:06d}",
                "version": 1,
                "name": "阿依古丽·买买提",
                "totalHours": f"{i}.25",
                "birthDate": "1990-01-01",
            }
        )
        + b"\n"
        for i in range(3000)
    ]
    lines.insert(10, b"\n")  # a blank line is skipped
    chunks = _gzip_chunks(lines, 777)

    def registry(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=iter(chunks),
            headers={
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
                "X-Snapshot-Cursor": "snap-42",
            },
        )

    route = router.get("/exports/volunteers").mock(side_effect=registry)
    seen = 0
    with client.export("volunteer") as ex:
        assert ex.snapshot_cursor == "snap-42"
        for i, rec in enumerate(ex):
            assert rec["id"] == f"V{i:06d}" and rec["total_hours"] == i * 100 + 25
            assert rec["birth_date"] == dt.date(1990, 1, 1)
            seen += 1
        assert ex.records_read == 3000
    assert seen == 3000
    req = route.calls.last.request
    assert req.headers["Accept-Encoding"] == "gzip"
    assert dict(req.url.params) == {"province": "23"}
    assert req.headers["X-Signature"] == expected_signature(req)


def test_export_without_trailing_newline_and_retry(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.get("/exports/service-records").mock(
        side_effect=[
            envelope(None, code="EXPORT_IN_PROGRESS", status=429, headers={"Retry-After": "5"}),
            httpx.Response(
                200,
                content=b'{"id":"S1","hours":"3.00"}\n{"id":"S2","hours":"0.50"}',
                headers={"Content-Type": "application/x-ndjson", "X-Snapshot-Cursor": "c"},
            ),
        ]
    )
    with client.export("service_record") as ex:
        assert [r["hours"] for r in ex] == [300, 50]
    assert sleeps.calls == [5.0] and route.call_count == 2


def test_export_broken_line_is_malformed(client: RegistryClient, router: respx.Router) -> None:
    router.get("/exports/orgs").mock(
        return_value=httpx.Response(
            200, content=b'{"id":"O1"}\n{"id":', headers={"Content-Type": "application/x-ndjson"}
        )
    )
    with client.export("org") as ex, pytest.raises(E.MalformedAnswer):
        list(ex)


def test_export_html_page_is_a_gateway_error(
    make_client: Callable[..., RegistryClient], router: respx.Router
) -> None:
    client = make_client(max_retries=1)
    router.get("/exports/orgs").mock(return_value=html(200))
    with pytest.raises(E.GatewayError), client.export("org"):
        pass


# -- construction -----------------------------------------------------------------------------------


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        RegistryClient(RegistrySettings(url="ftp://x/api"))
    with pytest.raises(ConfigError):
        RegistryClient(RegistrySettings(url="https://x/api", ca_bundle="/nonexistent/ca.pem"))


def test_stats_as_dict(client: RegistryClient, router: respx.Router) -> None:
    router.get("/volunteers/V1").mock(return_value=envelope({"id": "V1"}))
    client.get("volunteer", "V1")
    stats = client.stats.as_dict()
    assert stats["calls"] == 1 and stats["requests"] == 2 and stats["tokens_fetched"] == 1
    assert stats["calls_by_endpoint"] == {"get": 1}


# -- correction in one step (registry-api.md §4.5, v1.1) ---------------------------------------------

_CORRECTED = {
    "id": "SR2",
    "version": 1,
    "clientRef": "42-r1",
    "hours": "3.00",
    "status": "ACCEPTED",
    "correctsId": "SR1",
    "startsAt": "2026-11-29T09:00:00+08:00",
}


def test_correct_posts_the_whole_new_record_and_keeps_its_key_across_retries(
    client: RegistryClient, router: respx.Router, sleeps: Sleeps
) -> None:
    route = router.post("/service-records/SR1:correct").mock(
        side_effect=[httpx.ReadTimeout("lost"), html(504), envelope(_CORRECTED, status=201)]
    )
    new = client.correct(
        "service_record",
        "SR1",
        {"hours": 300, "starts_at": dt.datetime(2026, 11, 29, 1, 0), "station_id": "ignored, read-only"},
        client_ref="42-r1",
        idempotency_key="fix-42",
    )
    assert new["id"] == "SR2" and new["corrects_id"] == "SR1" and new["hours"] == 300
    reqs = [c.request for c in route.calls]
    assert len(reqs) == 3 and reqs[0].url.raw_path == b"/api/v1/service-records/SR1:correct"
    assert {r.headers["Idempotency-Key"] for r in reqs} == {"fix-42"}  # a lost answer is replayed, never redone
    assert json.loads(reqs[0].content) == {
        "hours": "3.00",
        "startsAt": "2026-11-29T09:00:00+08:00",
        "clientRef": "42-r1",
    }
    for r in reqs:
        assert r.headers["X-Signature"] == expected_signature(r)
    # without a key of its own the call gets one, kept the same way
    route.mock(return_value=envelope(_CORRECTED, status=201))
    client.correct("service_record", "SR1", {"hours": 300}, client_ref="42-r1")
    assert len(route.calls.last.request.headers["Idempotency-Key"]) == 32


@pytest.mark.parametrize(
    ("status", "code", "data", "cls"),
    [
        (422, "VALIDATION_FAILED", {"errors": [{"field": "orgId", "code": "NOT_ACTIVE", "message": "dissolved"}]},
         E.ValidationFailed),
        (422, "VALIDATION_FAILED", {"errors": [{"field": "hours", "code": "INVALID_HOURS", "message": "span"}]},
         E.ValidationFailed),
        (409, "INVALID_STATE", None, E.InvalidState),
        (404, "NOT_FOUND", None, E.NotFound),
        (409, "DUPLICATE_CLIENT_REF", {"existingId": "SR9"}, E.DuplicateClientRef),
        (422, "DAILY_HOURS_EXCEEDED", {"acceptedHours": "20.00"}, E.DailyHoursExceeded),
    ],
)
def test_correct_refusals_are_typed_and_never_retried(
    client: RegistryClient, router: respx.Router, status: int, code: str, data: Any, cls: type[E.RegistryError]
) -> None:
    route = router.post("/service-records/SR1:correct").mock(
        return_value=envelope(data, code=code, status=status)
    )
    with pytest.raises(cls) as info:
        client.correct("service_record", "SR1", {"hours": 300}, client_ref="42-r1", idempotency_key="k")
    assert route.call_count == 1 and not info.value.retriable
    if cls is E.ValidationFailed:
        assert info.value.errors[0].field in ("org_id", "hours")  # Python names
    if cls is E.DuplicateClientRef:
        assert info.value.existing_id == "SR9"


def test_correct_only_for_correctable_kinds(client: RegistryClient, router: respx.Router) -> None:
    with pytest.raises(ValueError):
        client.correct("volunteer", "V1", {"name": "x"}, client_ref="1")
    route = router.post("/batch")
    for op in (
        Operation("correct", "volunteer", {}, registry_id="V1", idempotency_key="k", client_ref="1"),
        Operation("correct", "service_record", {}, idempotency_key="k", client_ref="1"),
        Operation("correct", "service_record", {}, registry_id="SR1", client_ref="1"),
        Operation("correct", "service_record", {}, registry_id="SR1", idempotency_key="k"),
    ):
        with pytest.raises(ValueError):
            client.batch([op])
    assert route.call_count == 0


def test_batch_correct_sends_the_wire_shape_and_decodes_its_result(
    client: RegistryClient, router: respx.Router
) -> None:
    route = router.post("/batch").mock(
        return_value=envelope(
            {
                "results": [
                    {"status": 201, "code": "OK", "id": "SR2", "version": 1, "data": _CORRECTED},
                    {
                        "status": 422,
                        "code": "VALIDATION_FAILED",
                        "id": "SR5",
                        "data": {"errors": [{"field": "activityId", "code": "NOT_ACTIVE", "message": "cancelled"}]},
                    },
                ]
            }
        )
    )
    ops = [
        Operation("correct", "service_record", {"hours": 300}, registry_id="SR1", idempotency_key="c-1",
                  client_ref="42-r1"),
        Operation("correct", "service_record", {"hours": 100}, registry_id="SR5", idempotency_key="c-2",
                  client_ref="43-r2"),
    ]
    ok, refused = client.batch(ops)
    assert json.loads(route.calls.last.request.content)["operations"] == [
        {"op": "correct", "type": "serviceRecord", "id": "SR1", "idempotencyKey": "c-1",
         "body": {"hours": "3.00", "clientRef": "42-r1"}},
        {"op": "correct", "type": "serviceRecord", "id": "SR5", "idempotencyKey": "c-2",
         "body": {"hours": "1.00", "clientRef": "43-r2"}},
    ]
    assert ok.ok and ok.registry_id == "SR2" and ok.record is not None and ok.record["corrects_id"] == "SR1"
    assert not refused.ok and refused.errors[0].field == "activity_id" and refused.errors[0].code == "NOT_ACTIVE"
    assert isinstance(E.error_for_result(refused), E.ValidationFailed)
