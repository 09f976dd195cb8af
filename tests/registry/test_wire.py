"""The adapter: names, value formats, operations and results (registry-api.md §1, §4, §5.1, §7)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsync.registry import errors as E
from regsync.registry import wire
from regsync.registry.types import KINDS, FieldError, Operation, OperationResult, Unknowns

# -- hours ------------------------------------------------------------------------------------------


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_hours_round_trip(hundredths: int) -> None:
    text = wire.encode_hours(hundredths)
    assert wire.decode_hours(text) == hundredths
    assert Decimal(text) * 100 == hundredths  # exact, two places
    assert len(text.split(".")[1]) == 2


@pytest.mark.parametrize(
    ("value", "text"),
    [(250, "2.50"), (0, "0.00"), (5, "0.05"), (2400, "24.00"), (123456, "1234.56"), (-25, "-0.25")],
)
def test_hours_examples(value: int, text: str) -> None:
    assert wire.encode_hours(value) == text
    assert wire.decode_hours(text) == value


@pytest.mark.parametrize(("text", "value"), [("2.5", 250), ("2", 200), (3, 300)])
def test_hours_lenient_decode(text: str | int, value: int) -> None:
    assert wire.decode_hours(text) == value


@pytest.mark.parametrize("bad", [2.5, "2.505", "abc", "1e2", "", True, " 2.50"])
def test_hours_refuses_non_decimals(bad: object) -> None:
    with pytest.raises(ValueError):
        wire.decode_hours(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [2.5, "250", True])
def test_hours_encode_needs_int(bad: object) -> None:
    with pytest.raises(TypeError):
        wire.encode_hours(bad)  # type: ignore[arg-type]


# -- times and dates --------------------------------------------------------------------------------


def test_datetime_naive_utc_to_cst() -> None:
    assert wire.encode_datetime(dt.datetime(2026, 11, 29, 0, 0)) == "2026-11-29T08:00:00+08:00"
    assert wire.encode_datetime(dt.datetime(2026, 11, 28, 20, 30, 15, 999_999)) == "2026-11-29T04:30:15+08:00"
    aware = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert wire.encode_datetime(aware) == "2026-11-29T08:00:00+08:00"


@pytest.mark.parametrize(
    "text", ["2026-11-29T08:00:00+08:00", "2026-11-29T00:00:00Z", "2026-11-28T19:00:00-05:00"]
)
def test_datetime_decodes_to_naive_utc(text: str) -> None:
    assert wire.decode_datetime(text) == dt.datetime(2026, 11, 29, 0, 0)


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1)))
def test_datetime_round_trip_to_the_second(value: dt.datetime) -> None:
    text = wire.encode_datetime(value)
    assert text.endswith("+08:00") and len(text) == 25
    assert wire.decode_datetime(text) == value.replace(microsecond=0)


@pytest.mark.parametrize("bad", ["2026-11-29T08:00:00", "2026-11-29", "yesterday"])
def test_datetime_needs_offset(bad: str) -> None:
    with pytest.raises(ValueError):
        wire.decode_datetime(bad)


def test_dates() -> None:
    assert wire.encode_date(dt.date(2026, 1, 5)) == "2026-01-05"
    assert wire.decode_date("2026-01-05") == dt.date(2026, 1, 5)
    with pytest.raises(ValueError):
        wire.decode_date("20260105")
    with pytest.raises(TypeError):
        wire.encode_date(dt.datetime(2026, 1, 5))


# -- names ------------------------------------------------------------------------------------------

EXPECTED_WIRE = {
    "org": {
        "name": "name",
        "org_type": "orgType",
        "level": "level",
        "parent_id": "parentId",
        "station_id": "stationId",
        "uscc": "uscc",
        "region_code": "regionCode",
        "street_code": "streetCode",
        "service_categories": "serviceCategories",
        "contact_name": "contactName",
        "contact_phone": "contactPhone",
        "established_on": "establishedOn",
        "status": "status",
    },
    "volunteer": {
        "name": "name",
        "id_type": "idType",
        "id_number": "idNumber",
        "gender": "gender",
        "birth_date": "birthDate",
        "phone": "phone",
        "region_code": "regionCode",
        "skills": "skills",
        "home_province": "homeProvince",
        "status": "status",
        "total_hours": "totalHours",
        "star_level": "starLevel",
        "training_hours": "trainingHours",  # read-only, v1.1
    },
    "membership": {
        "org_id": "orgId",
        "volunteer_id": "volunteerId",
        "joined_on": "joinedOn",
        "left_on": "leftOn",
    },
    "activity": {
        "org_id": "orgId",
        "title": "title",
        "category": "category",
        "region_code": "regionCode",
        "starts_at": "startsAt",
        "ends_at": "endsAt",
        "planned_headcount": "plannedHeadcount",
        "status": "status",
    },
    "service_record": {
        "volunteer_id": "volunteerId",
        "activity_id": "activityId",
        "org_id": "orgId",
        "station_id": "stationId",
        "service_date": "serviceDate",
        "starts_at": "startsAt",
        "ends_at": "endsAt",
        "hours": "hours",
        "status": "status",
        "revoke_reason": "revokeReason",
        "corrects_id": "correctsId",  # read-only, v1.1 §4.5
    },
    # v1.1, §4.6–§4.9
    "training": {
        "org_id": "orgId", "title": "title", "training_type": "trainingType", "mode": "mode",
        "region_code": "regionCode", "address": "address", "starts_at": "startsAt", "ends_at": "endsAt",
        "class_hours": "classHours", "contact_name": "contactName", "contact_phone": "contactPhone",
        "status": "status",
    },
    "training_record": {
        "training_id": "trainingId", "volunteer_id": "volunteerId", "completed_on": "completedOn",
        "class_hours": "classHours", "result": "result", "status": "status", "revoke_reason": "revokeReason",
        "corrects_id": "correctsId",
    },
    # the subject's two Python fields stand for subjectType + subjectId (test_a_commendations_subject_…)
    "commendation": {
        "volunteer_id": "subjectVolunteerId", "org_id": "subjectOrgId", "title": "title", "scheme": "scheme",
        "tier": "tier", "year": "year", "awarded_on": "awardedOn", "issuer": "issuer",
        "document_name": "documentName", "document_number": "documentNumber", "content": "content",
        "status": "status", "revoke_reason": "revokeReason",
    },
    "evaluation": {
        "activity_id": "activityId", "volunteer_id": "volunteerId", "evaluator_org_id": "evaluatorOrgId",
        "punctuality": "punctuality", "attitude": "attitude", "competence": "competence", "comment": "comment",
        "evaluated_on": "evaluatedOn", "status": "status", "revoke_reason": "revokeReason",
    },
}
COMMON = {
    "id": "id",
    "version": "version",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "client_ref": "clientRef",
    "owner_client_id": "ownerClientId",
}


@pytest.mark.parametrize("kind", KINDS)
def test_field_maps_match_the_contract(kind: str) -> None:
    expected = {**EXPECTED_WIRE[kind], **COMMON}
    actual = {s.py: s.wire for s in wire.COMMON_FIELDS + wire.FIELDS[kind]}  # type: ignore[index]
    assert actual == expected
    for py, w in expected.items():
        assert wire.py_name(kind, w) == py  # type: ignore[arg-type]


def test_collections_and_types() -> None:
    assert wire.COLLECTIONS == {
        "org": "orgs",
        "volunteer": "volunteers",
        "membership": "memberships",
        "activity": "activities",
        "service_record": "service-records",
        "training": "trainings",
        "training_record": "training-records",
        "commendation": "commendations",
        "evaluation": "evaluations",
    }
    assert wire.TYPES["service_record"] == "serviceRecord"
    assert wire.TYPES["training_record"] == "trainingRecord"
    assert wire.revoke_path("E 1", "evaluation") == "/evaluations/E%201:revoke"
    assert wire.correct_path("training_record", "T1") == "/training-records/T1:correct"
    with pytest.raises(ValueError):
        wire.revoke_path("T1", "training")  # a training is cancelled by a PUT (§4.6)
    assert wire.membership_path("O 1", "V1") == "/orgs/O%201/members/V1"
    assert wire.revoke_path("S1") == "/service-records/S1:revoke"
    assert wire.record_path("service_record", "S1") == "/service-records/S1"
    with pytest.raises(ValueError):
        wire.record_path("membership", "M1")


def test_a_commendations_subject_is_a_volunteer_or_an_org_reference_in_python_and_subject_type_and_id_on_the_wire(
) -> None:
    """registry-api.md §4.8: ``subjectType`` + ``subjectId``; regsync reads them as the reference they are."""
    for subject_type, field, other in (("VOLUNTEER", "volunteer_id", "org_id"), ("ORG", "org_id", "volunteer_id")):
        line = {"id": "C1", "version": 1, "subjectType": subject_type, "subjectId": "X9", "title": "2025年度金奖",
                "scheme": "PROVINCIAL_ANNUAL", "tier": "GOLD", "year": 2025, "awardedOn": "2026-01-10"}
        unknown = Unknowns()
        rec = wire.decode_record("commendation", line, unknown=unknown)
        assert rec[field] == "X9" and rec[other] is None and rec["awarded_on"] == dt.date(2026, 1, 10)
        assert "subject_type" not in rec and not unknown.fields
        lazy = wire.LazyRecord("commendation", line)
        assert lazy[field] == "X9" and lazy["year"] == 2025
        wire.count_unknown_fields("commendation", line, unknown)
        assert not unknown.fields
        body = wire.encode_body("commendation", {field: "X9", other: None, "title": "t"}, client_ref="c-1")
        assert body == {"subjectType": subject_type, "subjectId": "X9", "title": "t", "clientRef": "c-1"}
    # a subject of a type this client does not know stays unknown: nothing is taken for a volunteer or an org
    odd = wire.decode_record("commendation", {"id": "C2", "subjectType": "TEAM", "subjectId": "T1"})
    assert "volunteer_id" not in odd and "org_id" not in odd


# -- records ----------------------------------------------------------------------------------------

WIRE_SERVICE_RECORD = {
    "id": "SR1",
    "version": 3,
    "createdAt": "2026-11-29T08:00:00+08:00",
    "updatedAt": "2026-11-29T09:00:00Z",
    "clientRef": "sr-17",
    "ownerClientId": "prov-23",
    "volunteerId": "V1",
    "activityId": "A1",
    "orgId": "O1",
    "stationId": "O9",
    "serviceDate": "2026-11-29",
    "startsAt": "2026-11-29T09:00:00+08:00",
    "endsAt": "2026-11-29T11:30:00+08:00",
    "hours": "2.50",
    "status": "ACCEPTED",
    "revokeReason": None,
    "somethingNew": 1,
}


def test_decode_record() -> None:
    rec = wire.decode_record("service_record", WIRE_SERVICE_RECORD)
    assert rec == {
        "id": "SR1",
        "version": 3,
        "created_at": dt.datetime(2026, 11, 29, 0, 0),
        "updated_at": dt.datetime(2026, 11, 29, 9, 0),
        "client_ref": "sr-17",
        "owner_client_id": "prov-23",
        "volunteer_id": "V1",
        "activity_id": "A1",
        "org_id": "O1",
        "station_id": "O9",
        "service_date": dt.date(2026, 11, 29),
        "starts_at": dt.datetime(2026, 11, 29, 1, 0),
        "ends_at": dt.datetime(2026, 11, 29, 3, 30),
        "hours": 250,
        "status": "ACCEPTED",
        "revoke_reason": None,
    }


def test_decode_volunteer_derived_fields() -> None:
    rec = wire.decode_record(
        "volunteer", {"id": "V1", "totalHours": "1234.75", "starLevel": 4, "skills": ["护理"]}
    )
    assert rec == {"id": "V1", "total_hours": 123475, "star_level": 4, "skills": ["护理"]}


def test_encode_body_drops_read_only_and_refuses_unknown() -> None:
    body = wire.encode_body(
        "service_record",
        {
            "volunteer_id": "V1",
            "activity_id": "A1",
            "org_id": "O1",
            "station_id": "O9",
            "id": "x",
            "service_date": dt.date(2026, 11, 29),
            "starts_at": dt.datetime(2026, 11, 29, 1, 0),
            "ends_at": dt.datetime(2026, 11, 29, 3, 30),
            "hours": 250,
        },
        client_ref="sr-17",
    )
    assert body == {
        "volunteerId": "V1",
        "activityId": "A1",
        "orgId": "O1",
        "serviceDate": "2026-11-29",
        "startsAt": "2026-11-29T09:00:00+08:00",
        "endsAt": "2026-11-29T11:30:00+08:00",
        "hours": "2.50",
        "clientRef": "sr-17",
    }
    with pytest.raises(ValueError, match="not a field"):
        wire.encode_body("org", {"nmae": "x"})
    with pytest.raises(TypeError):
        wire.encode_body("org", {"service_categories": '["COMMUNITY"]'})  # JSON text is the DB's, not ours


# -- operations -------------------------------------------------------------------------------------


def test_encode_create() -> None:
    op = Operation(
        "create",
        "org",
        {
            "name": "哈尔滨市志愿服务总队",
            "org_type": "REGIONAL",
            "level": "CITY_CORPS",
            "parent_id": None,
            "service_categories": ["COMMUNITY", "EDUCATION"],
            "established_on": dt.date(2020, 3, 5),
        },
        idempotency_key="k-1",
        client_ref="17",
    )
    assert wire.encode_operation(op) == {
        "op": "create",
        "type": "org",
        "idempotencyKey": "k-1",
        "body": {
            "name": "哈尔滨市志愿服务总队",
            "orgType": "REGIONAL",
            "level": "CITY_CORPS",
            "parentId": None,
            "serviceCategories": ["COMMUNITY", "EDUCATION"],
            "establishedOn": "2020-03-05",
            "clientRef": "17",
        },
    }


def test_encode_update_delete_revoke_join_leave() -> None:
    assert wire.encode_operation(
        Operation("update", "volunteer", {"phone": "13900001111"}, registry_id="V1", if_match=4)
    ) == {"op": "update", "type": "volunteer", "id": "V1", "ifMatch": 4, "body": {"phone": "13900001111"}}
    assert wire.encode_operation(Operation("delete", "org", registry_id="O1", if_match=2)) == {
        "op": "delete",
        "type": "org",
        "id": "O1",
        "ifMatch": 2,
    }
    assert wire.encode_operation(
        Operation("revoke", "service_record", {"reason": "录入错误"}, registry_id="SR1")
    ) == {"op": "revoke", "type": "serviceRecord", "id": "SR1", "body": {"reason": "录入错误"}}
    assert wire.encode_operation(
        Operation(
            "join", "membership", {"org_id": "O1", "volunteer_id": "V1", "joined_on": dt.date(2026, 1, 1)}
        )
    ) == {
        "op": "join",
        "type": "membership",
        "body": {"orgId": "O1", "volunteerId": "V1", "joinedOn": "2026-01-01"},
    }
    assert wire.encode_operation(
        Operation(
            "leave", "membership", {"org_id": "O1", "volunteer_id": "V1", "left_on": dt.date(2026, 2, 1)}
        )
    ) == {
        "op": "leave",
        "type": "membership",
        "body": {"orgId": "O1", "volunteerId": "V1", "leftOn": "2026-02-01"},
    }


@pytest.mark.parametrize(
    "op",
    [
        Operation("create", "org", {"name": "x"}, client_ref="1"),  # no idempotency key
        Operation("create", "org", {"name": "x"}, idempotency_key="k"),  # no clientRef
        Operation("update", "org", {"name": "x"}, registry_id="O1"),  # no ifMatch
        Operation(
            "delete", "activity", registry_id="A1", if_match=1
        ),  # activities are cancelled, not deleted
        Operation(
            "join", "volunteer", {"org_id": "O1", "volunteer_id": "V1", "joined_on": dt.date(2026, 1, 1)}
        ),
        Operation("create", "membership", {}, idempotency_key="k", client_ref="1"),
    ],
)
def test_encode_refuses_incomplete(op: Operation) -> None:
    with pytest.raises(ValueError):
        wire.encode_operation(op)


# -- results ----------------------------------------------------------------------------------------


def test_decode_result_success() -> None:
    r = wire.decode_result(
        "service_record",
        {"status": 201, "code": "OK", "id": "SR1", "version": 1, "data": WIRE_SERVICE_RECORD},
    )
    assert r.ok and r.registry_id == "SR1" and r.version == 1 and r.record is not None
    assert r.record["hours"] == 250


def test_decode_result_duplicate() -> None:
    r = wire.decode_result(
        "volunteer",
        {
            "status": 409,
            "code": "DUPLICATE_ID_NUMBER",
            "message": "dup",
            "data": {"existingId": "V77", "ownerClientId": "PORTAL"},
        },
    )
    assert (r.ok, r.registry_id, r.existing_owner, r.message) == (False, "V77", "PORTAL", "dup")
    err = E.error_for_result(r)
    assert isinstance(err, E.DuplicateIdNumber) and err.existing_id == "V77" and err.owner == "PORTAL"
    assert not err.retriable


def test_decode_result_version_mismatch() -> None:
    r = wire.decode_result(
        "volunteer",
        {
            "status": 412,
            "code": "VERSION_MISMATCH",
            "id": "V1",
            "data": {"current": {"id": "V1", "version": 9, "phone": "13900001111", "totalHours": "10.00"}},
        },
    )
    assert r.version == 9 and r.record == {
        "id": "V1",
        "version": 9,
        "phone": "13900001111",
        "total_hours": 1000,
    }
    err = E.error_for_result(r)
    assert isinstance(err, E.VersionMismatch) and err.current == r.record


def test_decode_result_validation_errors_get_python_names() -> None:
    r = wire.decode_result(
        "org",
        {
            "status": 422,
            "code": "VALIDATION_FAILED",
            "data": {
                "errors": [
                    {"field": "contactPhone", "code": "INVALID_PHONE", "message": "bad phone"},
                    {"field": "serviceCategories[2]", "code": "INVALID_CATEGORY", "message": "?"},
                    {"field": "mystery", "code": "UNKNOWN_FIELD", "message": "?"},
                ]
            },
        },
    )
    assert r.errors == [
        FieldError("contact_phone", "INVALID_PHONE", "bad phone"),
        FieldError("service_categories[2]", "INVALID_CATEGORY", "?"),
        FieldError("mystery", "UNKNOWN_FIELD", "?"),
    ]
    err = E.error_for_result(r)
    assert isinstance(err, E.ValidationFailed) and err.errors == r.errors


def test_error_for_result_transient_and_ok() -> None:
    assert E.error_for_result(OperationResult(200, "OK")) is None
    err = E.error_for_result(OperationResult(500, "INTERNAL"))
    assert isinstance(err, E.ServerError) and err.retriable


# -- change feed and Retry-After --------------------------------------------------------------------


def test_decode_change_page() -> None:
    page = wire.decode_change_page(
        {
            "changes": [
                {
                    "seq": 5,
                    "type": "serviceRecord",
                    "id": "SR1",
                    "version": 2,
                    "op": "upsert",
                    "changedAt": "2026-11-29T08:00:00+08:00",
                    "byClientId": "prov-23",
                }
            ],
            "nextCursor": "c6",
            "hasMore": True,
        }
    )
    assert page.next_cursor == "c6" and page.has_more
    c = page.changes[0]
    assert (c.seq, c.kind, c.registry_id, c.version, c.op, c.by_client_id) == (
        5,
        "service_record",
        "SR1",
        2,
        "upsert",
        "prov-23",
    )
    with pytest.raises(ValueError):
        wire.decode_change({"seq": 1, "type": "planet", "id": "x", "version": 1, "op": "upsert"})


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("7", None, 7.0),
        ("0", None, 0.0),
        ("Sun, 29 Nov 2026 00:00:12 GMT", "Sun, 29 Nov 2026 00:00:00 GMT", 12.0),
        ("Sun, 29 Nov 2026 00:00:00 GMT", "Sun, 29 Nov 2026 00:00:30 GMT", 0.0),  # in the past
        ("Sun, 29 Nov 2026 00:00:12 GMT", None, None),  # no Date: never read against the local clock
        ("soon", "Sun, 29 Nov 2026 00:00:00 GMT", None),
        (None, None, None),
    ],
)
def test_parse_retry_after(value: str | None, date: str | None, expected: float | None) -> None:
    assert wire.parse_retry_after(value, date) == expected
