"""The seeder writes the registry's documents itself (regsync.generate.registry_docs, from registry-api.md), not
with the client's wire module: both write the same document for the same fields, and name kinds alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from regsync.domain.projection import FIELDS
from regsync.generate import registry_docs
from regsync.registry import wire

UTC_NOON = dt.datetime(2026, 11, 29, 4, 0, 0, 123456)  # naive UTC, with microseconds (dropped on the wire)
AWARE = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "org": [
        {"name": "哈尔滨市志愿服务总队", "org_type": "REGIONAL", "level": "CITY_CORPS", "parent_id": None,
         "station_id": "ORG1", "uscc": "52230100MJDGG0WB93", "region_code": "230100", "street_code": None,
         "service_categories": ["COMMUNITY", "EDUCATION"], "contact_name": "刘云", "contact_phone": "13353062908",
         "established_on": dt.date(2014, 2, 15), "status": "ACTIVE"},
        {"name": "x", "service_categories": ("B", "A"), "established_on": None},
    ],
    "volunteer": [
        {"name": "许颖红", "id_type": "RESIDENT_ID", "id_number": "230100197004113644", "gender": "F",
         "birth_date": dt.date(1970, 4, 11), "phone": None, "region_code": "230103", "skills": ["急救"],
         "home_province": "23", "status": "ACTIVE"},
        {"skills": [], "birth_date": dt.date(2000, 1, 1)},
    ],
    "membership": [
        {"org_id": "ORG7", "volunteer_id": "VOL1", "joined_on": dt.date(2023, 9, 17), "left_on": None},
        {"org_id": "ORG7", "volunteer_id": "VOL1", "joined_on": dt.date(2023, 9, 17), "left_on": dt.date(2024, 1, 2)},
    ],
    "activity": [
        {"org_id": "ORG64", "title": "志愿服务站值守", "category": "OTHER", "region_code": "230103",
         "starts_at": UTC_NOON, "ends_at": AWARE, "planned_headcount": 14, "status": "COMPLETED"},
        {"starts_at": dt.datetime(2026, 12, 31, 16, 0), "ends_at": None, "planned_headcount": 0},
    ],
    "service_record": [
        {"volunteer_id": "VOL2", "activity_id": "ACT26", "org_id": "ORG74", "service_date": dt.date(2026, 3, 17),
         "starts_at": UTC_NOON, "ends_at": dt.datetime(2026, 3, 17, 9, 15), "hours": 450, "status": "ACCEPTED"},
        {"hours": 5}, {"hours": 2400}, {"hours": 0}, {"hours": -25},
    ],
    "training": [
        {"org_id": "ORG3", "title": "应急救护专业技能培训", "training_type": "PROFESSIONAL", "mode": "IN_PERSON",
         "region_code": "230103", "address": "哈尔滨市南岗区北山路179号会议室", "starts_at": UTC_NOON, "ends_at": AWARE,
         "class_hours": 350, "contact_name": "王莉", "contact_phone": "0451-86123456", "status": "SCHEDULED"},
        {"mode": "ONLINE", "address": None, "class_hours": 20000},
    ],
    "training_record": [
        {"training_id": "TRN1", "volunteer_id": "VOL1", "completed_on": dt.date(2026, 3, 17), "class_hours": 50,
         "result": "PASSED", "status": "ACCEPTED"},
        {"class_hours": 1250, "result": "ATTENDED", "status": "REVOKED"},
    ],
    "commendation": [
        {"volunteer_id": "VOL9", "org_id": None, "title": "2025年度志愿服务金奖", "scheme": "PROVINCIAL_ANNUAL",
         "tier": "GOLD", "year": 2025, "awarded_on": dt.date(2026, 1, 20), "issuer": "黑龙江省志愿服务联合会",
         "document_name": "关于2025年度志愿服务嘉许的决定", "document_number": "黑志协〔2026〕12号",
         "content": "第一行\n第二行", "status": "ACTIVE"},
        {"volunteer_id": None, "org_id": "ORG5", "title": "优秀志愿服务组织", "scheme": None, "tier": None,
         "year": None, "awarded_on": dt.date(2025, 5, 4)},
        {"org_id": "ORG5", "scheme": None, "title": "x"},
    ],
    "evaluation": [
        {"activity_id": "ACT26", "volunteer_id": "VOL2", "evaluator_org_id": "ORG74", "punctuality": 5,
         "attitude": 4, "competence": 0, "comment": None, "evaluated_on": dt.date(2026, 3, 18), "status": "ACTIVE"},
        {"comment": "服务热情周到。", "status": "REVOKED"},
    ],
}


def test_every_synced_field_is_sampled() -> None:
    for kind, names in FIELDS.items():
        assert set(SAMPLES[kind][0]) == set(names), kind


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_the_same_document_as_the_clients_wire_module(kind: str) -> None:
    for fields in SAMPLES[kind]:
        doc = registry_docs.record_doc(fields)
        assert doc == wire.encode_body(kind, fields)  # type: ignore[arg-type]
        assert list(doc) == list(wire.encode_body(kind, fields))  # type: ignore[arg-type]  # and in the same order


def test_kinds_named_as_the_client_names_them() -> None:
    assert registry_docs.COLLECTIONS == wire.COLLECTIONS
    assert registry_docs.TYPES == wire.TYPES
    assert registry_docs.format_hours(12345) == wire.encode_hours(12345) == "123.45"
    assert registry_docs.format_time(UTC_NOON) == wire.encode_datetime(UTC_NOON) == "2026-11-29T12:00:00+08:00"
