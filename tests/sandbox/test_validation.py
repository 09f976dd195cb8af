"""§4 field rules and the §7 field codes, on raw creates."""

from __future__ import annotations

import pytest

from conftest import activity, id_check, id_number, org, service_record, uscc, volunteer
from regsync.sandbox import rules, rules11


def _codes(r):
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "VALIDATION_FAILED"
    return {(e["field"], e["code"]) for e in r.json()["data"]["errors"]}


GOOD = id_number(birth="19900307", gender="M", seq=7)
FEMALE = id_number(birth="19900307", gender="F", seq=8)
BAD_CHECK = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"idNumber": "230102900307301"}, ("idNumber", "ID_NUMBER_LEGACY")),
        ({"idNumber": BAD_CHECK}, ("idNumber", "INVALID_ID_NUMBER")),
        ({"idNumber": "23010219900307"}, ("idNumber", "INVALID_ID_NUMBER")),
        ({"idNumber": "990102199003073" + "01"[:1] + "1" + "X"}, ("idNumber", "INVALID_ID_NUMBER")),
        ({"idNumber": GOOD, "birthDate": "1990-03-08"}, ("birthDate", "ID_BIRTHDATE_MISMATCH")),
        ({"idNumber": GOOD, "gender": "F"}, ("gender", "ID_GENDER_MISMATCH")),
        ({"phone": "12912345678"}, ("phone", "INVALID_PHONE")),
        ({"phone": "0451-82345678"}, ("phone", "INVALID_PHONE")),
        ({"regionCode": "239999"}, ("regionCode", "INVALID_REGION")),
        ({"regionCode": "2301"}, ("regionCode", "INVALID_REGION")),
        ({"name": "张三3"}, ("name", "INVALID_NAME")),
        ({"skills": ["x" * 21]}, ("skills", "TOO_LONG")),
        ({"skills": ["急\u200d救"]}, ("skills", "INVALID_VALUE")),
        ({"skills": [f"s{i}" for i in range(11)]}, ("skills", "INVALID_VALUE")),
        ({"idType": "DRIVING_LICENCE"}, ("idType", "INVALID_VALUE")),
        ({"status": "DEREGISTERED"}, ("status", "INVALID_VALUE")),
        ({"birthDate": "1990-02-30"}, ("birthDate", "INVALID_DATE")),
        ({"totalHours": "9.00"}, ("totalHours", "READ_ONLY_FIELD")),
        ({"id": "VOL1"}, ("id", "READ_ONLY_FIELD")),
        ({"version": 3}, ("version", "READ_ONLY_FIELD")),
        ({"nickname": "x"}, ("nickname", "UNKNOWN_FIELD")),
        ({"name": None}, ("name", "REQUIRED")),
        ({"clientRef": None}, ("clientRef", "REQUIRED")),
        ({"clientRef": "r" * 65}, ("clientRef", "INVALID_VALUE")),
    ],
)
def test_volunteer_field_codes(env, over, expected):
    body = volunteer(idNumber=GOOD)
    body.update(over)
    body = {k: v for k, v in body.items() if v is not None or k in ("phone",)}
    assert expected in _codes(env.api.create("volunteers", body))


def test_future_birth_date_in_id_number(env):
    first17 = "23010230000101301"
    number = first17 + id_check(first17)
    assert ("idNumber", "INVALID_ID_NUMBER") in _codes(
        env.api.create("volunteers", volunteer(idNumber=number, birthDate="3000-01-01"))
    )


def test_lowercase_x_is_stored_upper_and_area_code_not_checked(env):
    # find a number whose check character is X; use a retired-looking area code (not in any county list)
    for n in range(1000):
        first17 = f"23999919851224{n:03d}"
        if id_check(first17) == "X":
            break
    number = first17 + "x"
    gender = "M" if int(number[16]) % 2 else "F"
    r = env.api.create("volunteers", volunteer(idNumber=number, gender=gender))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["idNumber"] == number.upper()


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("阿依古丽•买买提", "阿依古丽·买买提"),
        ("阿依古丽．买买提", "阿依古丽·买买提"),
        ("阿依古丽·买买提", "阿依古丽·买买提"),
        ("\U00020bb7\u4e09", "\U00020bb7\u4e09"),  # 𠮷三: outside the BMP
        ("\U0002a6a5明", "\U0002a6a5明"),
        ("John Smith", "John Smith"),
        ("ＡＢＣ", "ABC"),  # full width → NFKC
        ("Zoë Müller", "Zoë Müller"),
    ],
)
def test_names_accepted(env, raw, stored):
    r = env.api.create("volunteers", volunteer(name=raw))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["name"] == stored


@pytest.mark.parametrize(
    "raw",
    [
        "·买买提",
        "买买提·",
        "阿依古丽··买买提",
        "阿依古丽・买买提",
        "张 ·三",
        " 张三",
        "张三 ",
        "张  三",
        "张_三",
        "张三😀",
        "김철수",
        "李\u200b明",
        "\ufeff李明",
    ],
)
def test_names_refused(env, raw):
    assert ("name", "INVALID_NAME") in _codes(env.api.create("volunteers", volunteer(name=raw)))


def test_other_document_types(env):
    r = env.api.create(
        "volunteers", volunteer(idType="PASSPORT", idNumber="E12345678", gender="F", birthDate="1980-01-01")
    )
    assert r.status_code == 201, r.text
    assert ("idNumber", "INVALID_ID_NUMBER") in _codes(
        env.api.create("volunteers", volunteer(idType="PASSPORT", idNumber="E1-23", birthDate="1980-01-01"))
    )


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"uscc": "51230100MJ000001X"}, ("uscc", "INVALID_USCC")),
        ({"uscc": uscc(5)[:-1] + ("0" if uscc(5)[-1] != "0" else "1")}, ("uscc", "INVALID_USCC")),
        ({"uscc": None}, ("uscc", "REQUIRED")),
        ({"regionCode": "110101"}, ("regionCode", "INVALID_REGION")),
        ({"regionCode": "230199"}, ("regionCode", "INVALID_REGION")),
        ({"contactPhone": "82345678"}, ("contactPhone", "INVALID_PHONE")),
        ({"serviceCategories": ["COOKING"]}, ("serviceCategories", "INVALID_CATEGORY")),
        ({"serviceCategories": []}, ("serviceCategories", "INVALID_CATEGORY")),
        ({"serviceCategories": ["OTHER"] * 6}, ("serviceCategories", "INVALID_CATEGORY")),
        ({"name": "x"}, ("name", "TOO_SHORT")),
        ({"name": "长" * 101}, ("name", "TOO_LONG")),
        ({"name": " 总队"}, ("name", "INVALID_VALUE")),
        ({"name": "总\x07队"}, ("name", "INVALID_VALUE")),
        ({"name": "总\u200b队"}, ("name", "INVALID_VALUE")),  # §4: no control characters, format controls (Cf) too
        ({"contactName": "\u202e王芳\u202c"}, ("contactName", "INVALID_VALUE")),
        ({"establishedOn": "2999-01-01"}, ("establishedOn", "INVALID_DATE")),
        ({"parentId": "ORG0000000000999"}, ("parentId", "PARENT_LEVEL_MISMATCH")),
        ({"level": "GRASSROOTS_TEAM"}, ("level", "INVALID_VALUE")),
        ({"streetCode": "230102001001"}, ("streetCode", "INVALID_VALUE")),
        ({"createdAt": "2020-01-01T00:00:00+08:00"}, ("createdAt", "READ_ONLY_FIELD")),
    ],
)
def test_org_field_codes(env, over, expected):
    body = org("CITY_CORPS")
    body.update(over)
    assert expected in _codes(env.api.create("orgs", body))


def test_org_parent_rules(env):
    city = env.api.create("orgs", org("CITY_CORPS")).json()["data"]["id"]
    assert ("parentId", "PARENT_NOT_FOUND") in _codes(
        env.api.create("orgs", org("DISTRICT_BRIGADE", "ORG9999999999999"))
    )
    assert ("parentId", "REQUIRED") in _codes(env.api.create("orgs", org("DISTRICT_BRIGADE", None)))
    assert ("parentId", "PARENT_LEVEL_MISMATCH") in _codes(
        env.api.create("orgs", org("STREET_STATION", city))
    )
    assert ("parentId", "PARENT_LEVEL_MISMATCH") in _codes(
        env.api.create("orgs", org("CITY_DETACHMENT", city))
    )
    r = env.api.create("orgs", org("DISTRICT_BRIGADE", city, regionCode="230103"))
    assert r.status_code == 201, r.text
    street = env.api.create(
        "orgs", org("STREET_STATION", r.json()["data"]["id"], regionCode="230103", streetCode="230103001000")
    )
    assert street.status_code == 201, street.text


def test_grassroots_team_station_rules(env):
    ids = env.tree()
    team = org("GRASSROOTS_TEAM", ids["COUNTY_UNIT"])
    assert ("stationId", "REQUIRED") in _codes(env.api.create("orgs", team))
    team["stationId"] = ids["STREET_STATION"]
    assert ("stationId", "PARENT_LEVEL_MISMATCH") in _codes(env.api.create("orgs", team))
    team["stationId"] = "ORG9999999999999"
    assert ("stationId", "PARENT_NOT_FOUND") in _codes(env.api.create("orgs", team))
    bad = org("COUNTY_UNIT", ids["CITY_DETACHMENT"], stationId=ids["COMMUNITY_STATION"])
    assert ("stationId", "INVALID_VALUE") in _codes(env.api.create("orgs", bad))


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"hours": "0.25"}, ("hours", "INVALID_HOURS")),
        ({"hours": "24.25"}, ("hours", "INVALID_HOURS")),
        ({"hours": "2.10"}, ("hours", "INVALID_HOURS")),
        ({"hours": 2.5}, ("hours", "INVALID_HOURS")),
        ({"hours": "2.5"}, ("hours", "INVALID_HOURS")),
        ({"hours": "4.25"}, ("hours", "INVALID_HOURS")),  # over the 4 h span
        ({"endsAt": "2025-05-01T07:00:00+08:00"}, ("endsAt", "INVALID_DATE")),
        ({"startsAt": "2025-05-01 08:00:00"}, ("startsAt", "INVALID_DATE")),
        ({"serviceDate": "2025-05-09"}, ("serviceDate", "OUT_OF_RANGE")),
        ({"stationId": "ORG1"}, ("stationId", "READ_ONLY_FIELD")),
        ({"volunteerId": "VOL9999999999999"}, ("volunteerId", "NOT_FOUND")),
        ({"activityId": "ACT9999999999999"}, ("activityId", "NOT_FOUND")),
    ],
)
def test_service_record_field_codes(env, over, expected):
    ids = env.tree()
    vid = env.api.create("volunteers", volunteer()).json()["data"]["id"]
    aid = env.api.create("activities", activity(ids["GRASSROOTS_TEAM"])).json()["data"]["id"]
    body = service_record(vid, aid, ids["GRASSROOTS_TEAM"])
    body.update(over)
    assert expected in _codes(env.api.create("service-records", body))


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"category": "COOKING"}, ("category", "INVALID_CATEGORY")),
        ({"plannedHeadcount": 0}, ("plannedHeadcount", "INVALID_VALUE")),
        ({"title": "x"}, ("title", "TOO_SHORT")),
        ({"title": "社区\u00ad活动"}, ("title", "INVALID_VALUE")),  # a soft hyphen (Cf): a control character
        ({"regionCode": "110101"}, ("regionCode", "INVALID_REGION")),
        ({"endsAt": "2025-05-01T08:00:00+08:00"}, ("endsAt", "INVALID_DATE")),
        ({"orgId": "ORG9999999999999"}, ("orgId", "NOT_FOUND")),
    ],
)
def test_activity_field_codes(env, over, expected):
    ids = env.tree()
    body = activity(ids["GRASSROOTS_TEAM"])
    body.update(over)
    assert expected in _codes(env.api.create("activities", body))


@pytest.mark.parametrize(
    "first17",
    [
        "23010219900307123",  # a calendar date
        "23010219900230123",  # 30 February
        "23010219901301123",  # month 13
        "23010219900000123",  # month 0
        "230102１９９００３０７123",  # fullwidth digits in the birth date (\d matches them)
        "230102１９９００２３０123",
    ],
)
def test_id_number_birth_date_read_as_stdnum_reads_it(first17):
    import datetime as dt

    from stdnum.cn import ric

    from regsync.sandbox import rules

    number = first17 + ric.calc_check_digit(first17 + "0")
    try:
        expected = ric.get_birth_date(number)
    except Exception:  # noqa: BLE001 - stdnum InvalidComponent
        expected = None
    try:
        rules.check_id_number("RESIDENT_ID", number, dt.date(2026, 1, 1))
        got = "valid"
    except rules.Invalid as exc:
        got = exc.message
    assert got == ("valid" if expected else "the birth date is not a calendar date")


def test_the_code_and_region_checkers_are_public_and_shared_by_v11():
    """``rules.enum_check`` and ``rules.check_region`` (once the private ``_enum``, ``_region`` that rules11 borrowed):
    the values they let through are returned as they are, the others refused with their field codes (§4, §7)."""
    check = rules.enum_check("ONLINE", "IN_PERSON")
    assert check("ONLINE") == "ONLINE"
    with pytest.raises(rules.Invalid) as bad:
        check("online")
    assert (bad.value.code, bad.value.message) == ("INVALID_VALUE", "one of ONLINE, IN_PERSON")
    assert rules.check_region("230102") == "230102"
    for value in ("239999", "2301", 230102, None):
        with pytest.raises(rules.Invalid) as bad:
            rules.check_region(value)
        assert bad.value.code == "INVALID_REGION"
    # v1.1's trainings use the same checkers as v1's kinds (no private names borrowed across modules)
    assert rules11.WRITABLE11["training"]["regionCode"].check is rules.check_region
    assert not [name for name in vars(rules11) if name in ("_enum", "_region")]
