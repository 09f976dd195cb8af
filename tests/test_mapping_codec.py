"""The mapping's values both ways in Python (issue 14): every format, unit, list and value map read as the
canonical value, written back in the platform's form, ``decode(encode(x)) == x``; the unmapped marker; the row
helpers. The same values through a real column of each engine (SQLite, PostgreSQL, MariaDB) read back equal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, select
from sqlalchemy.dialects import mysql

from mapping_cases import field_map, mapping_with
from mapping_engines import PlatformDB, platform_db  # noqa: F401 — the fixture
from regsync.db.mapping.codec import Codec, decode_value, encode_value
from regsync.domain.unmapped import PREFIX, UnmappedValue, find_unmapped, parse_unmapped, unmapped_marker

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

GENDER = field_map(column="xb", values={"1": "M", "2": "F"})
STATUS = field_map(column="zt", values={"A": "ACTIVE", "1": "ACTIVE", "Z": "DEREGISTERED"},
                   write_values={"ACTIVE": "A"})
LEVEL_INT = field_map(column="zzjb", values={"11": "CITY_CORPS", "12": "DISTRICT_BRIGADE"})
D_NATIVE = field_map(column="d")
D_ISO = field_map(column="d", format="YYYY-MM-DD")
D_COMPACT = field_map(column="d", format="YYYYMMDD")
D_EPOCH = field_map(column="d", format="epoch_ms")
T_UTC = field_map(column="t")
T_CST = field_map(column="t", tz="+08:00")
T_TEXT = field_map(column="t", format="YYYY-MM-DD HH:MM:SS")
T_EPOCH = field_map(column="t", format="epoch_ms")
H_HUNDREDTHS = field_map(column="h", unit="hundredths")
H_MINUTES = field_map(column="h", unit="minutes")
H_DECIMAL = field_map(column="h", unit="decimal_hours")
L_JSON = field_map(column="l", list="json")
L_PIPE = field_map(column="l", list="|")
L_COMMA = field_map(column="l", list=",")


# ------------------------------------------------------------------------------------------------ the marker


def test_the_marker_names_column_and_value_and_parses_back() -> None:
    marker = unmapped_marker("xb", 0)
    assert marker == "\x1fUNMAPPED\x1fxb\x1f0" and marker.startswith(PREFIX) and "\x00" not in marker
    assert parse_unmapped(marker) == ("xb", "0")
    assert parse_unmapped("M") is None and parse_unmapped(None) is None and parse_unmapped(3) is None
    assert parse_unmapped(unmapped_marker("zt", "a\x1fb")) == ("zt", "a\x1fb")


def test_unmapped_value_masks_personal_values() -> None:
    err = UnmappedValue("zjhm", "230102199001011234", "id_number")
    assert err.code == "UNMAPPED_VALUE" and err.column == "zjhm" and err.value == "230102199001011234"
    assert "230102********1234" in str(err) and "19900101" not in str(err) and "zjhm" in str(err)
    assert "139****5678" in str(UnmappedValue("sjhm", "13912345678", "phone"))
    # a number inside another value is masked too
    assert "13912345678" not in str(UnmappedValue("bz", "call 13912345678"))
    assert "'0'" in str(UnmappedValue("xb", "0", "gender"))
    found = find_unmapped({"name": "x", "gender": unmapped_marker("xb", "9")})
    assert found is not None and (found.column, found.value, found.field) == ("xb", "9", "gender")
    assert find_unmapped({"name": "x", "gender": "M"}) is None


# ------------------------------------------------------------------------------------------- reading, by table

READS = [
    ("code", GENDER, "1", "M"), ("code", GENDER, "2", "F"), ("code", GENDER, None, None),
    ("code", GENDER, "0", unmapped_marker("xb", "0")), ("code", GENDER, "1 ", unmapped_marker("xb", "1 ")),
    ("code", STATUS, "a", unmapped_marker("zt", "a")), ("code", STATUS, "1", "ACTIVE"),
    ("code", LEVEL_INT, 12, "DISTRICT_BRIGADE"), ("code", LEVEL_INT, 99, unmapped_marker("zzjb", "99")),
    ("code", field_map(column="gender"), "M", "M"),
    ("date", D_NATIVE, dt.date(2024, 2, 29), dt.date(2024, 2, 29)),
    ("date", D_NATIVE, "2024-02-29", dt.date(2024, 2, 29)),
    ("date", D_ISO, "2024-02-29", dt.date(2024, 2, 29)), ("date", D_ISO, "2023-02-29", None),
    ("date", D_ISO, "2023-1-5", None), ("date", D_ISO, "", None), ("date", D_ISO, "0999-12-31", None),
    ("date", D_ISO, "1000-01-01", dt.date(1000, 1, 1)), ("date", D_ISO, "2024-02-29\n", None),
    ("date", D_ISO, "２０２４-０２-２９", None),
    ("date", D_COMPACT, "20240229", dt.date(2024, 2, 29)), ("date", D_COMPACT, 19000228, dt.date(1900, 2, 28)),
    ("date", D_COMPACT, "19000229", None), ("date", D_COMPACT, "20231301", None),
    ("date", D_EPOCH, 0, dt.date(1970, 1, 1)), ("date", D_EPOCH, -28_800_000, dt.date(1970, 1, 1)),
    ("date", D_EPOCH, -28_800_001, dt.date(1969, 12, 31)), ("date", D_EPOCH, 57_599_999, dt.date(1970, 1, 1)),
    ("date", D_EPOCH, 57_600_000, dt.date(1970, 1, 2)),
    ("datetime", T_UTC, dt.datetime(2024, 2, 29, 23, 59, 59, 5), dt.datetime(2024, 2, 29, 23, 59, 59, 5)),
    ("datetime", T_CST, dt.datetime(2024, 3, 1, 7, 59, 59, 5), dt.datetime(2024, 2, 29, 23, 59, 59, 5)),
    ("datetime", T_CST, dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC), dt.datetime(2024, 3, 1, 8, 0)),
    ("datetime", T_TEXT, "2024-03-01 07:59:59", dt.datetime(2024, 2, 29, 23, 59, 59)),
    ("datetime", T_TEXT, "2024-03-01 08:00:00", dt.datetime(2024, 3, 1, 0, 0)),
    ("datetime", T_TEXT, "2024-02-29 24:00:00", dt.datetime(2024, 2, 29, 16, 0)),
    ("datetime", T_TEXT, "2024-02-29 24:00:01", None), ("datetime", T_TEXT, "2024-02-29 23:60:00", None),
    ("datetime", T_TEXT, "2024-02-29T10:00:00", None), ("datetime", T_TEXT, "2024-02-29 10:00", None),
    ("datetime", T_EPOCH, 1_709_222_400_123, dt.datetime(2024, 2, 29, 16, 0, 0, 123_000)),
    ("datetime", T_EPOCH, -1, dt.datetime(1969, 12, 31, 23, 59, 59, 999_000)),
    ("hours", H_HUNDREDTHS, 250, 250), ("hours", H_MINUTES, 150, 250), ("hours", H_MINUTES, 1, 2),
    ("hours", H_MINUTES, 2, 3), ("hours", H_MINUTES, 0, 0), ("hours", H_MINUTES, 89, 148),
    ("hours", H_DECIMAL, Decimal("2.5"), 250), ("hours", H_DECIMAL, Decimal("0.005"), 1),
    ("hours", H_DECIMAL, Decimal("0.0049"), 0), ("hours", H_DECIMAL, 1.005, 101), ("hours", H_DECIMAL, "2.125", 213),
    ("list", L_JSON, '["a","b"]', '["a","b"]'), ("list", L_JSON, None, "[]"), ("list", L_JSON, "", "[]"),
    ("list", L_JSON, ["a", "b"], '["a","b"]'),
    ("list", L_PIPE, "a|b", '["a","b"]'), ("list", L_PIPE, "", "[]"), ("list", L_PIPE, None, "[]"),
    ("list", L_PIPE, "a||b", '["a","","b"]'), ("list", L_PIPE, "a,b", '["a,b"]'),
    ("list", L_PIPE, 'x"y|a\\b|t\tn\nr\r', orjson.dumps(['x"y', "a\\b", "t\tn\nr\r"]).decode()),
    ("list", L_PIPE, "唱歌|\U00020000舞", '["唱歌","\U00020000舞"]'),
    ("text", field_map(column="xm"), "\U00020000张", "\U00020000张"), ("text", field_map(column="xm"), 23, "23"),
    ("integer", field_map(column="n"), Decimal("30"), 30), ("ref", field_map(column="r"), 7, 7),
    ("text", field_map(const="23"), "ignored", "23"), ("integer", field_map(const=5), None, 5),
]


@pytest.mark.parametrize(("ftype", "fm", "raw", "expected"), READS)
def test_platform_values_read_as_canonical(ftype, fm, raw, expected) -> None:
    assert decode_value(fm, ftype, raw) == expected


def test_separated_items_read_as_json_that_parses() -> None:
    text = decode_value(L_PIPE, "list", 'x"y|a\\b|\U00020000')
    assert orjson.loads(text) == ['x"y', "a\\b", "\U00020000"]


# ---------------------------------------------------------------------------------------- writing, and back

WRITES = [
    ("code", GENDER, "F", "2"), ("code", STATUS, "ACTIVE", "A"), ("code", STATUS, "DEREGISTERED", "Z"),
    ("date", D_ISO, dt.date(2024, 2, 29), "2024-02-29"), ("date", D_COMPACT, dt.date(1000, 1, 1), "10000101"),
    ("date", D_EPOCH, dt.date(1970, 1, 2), 57_600_000),
    ("datetime", T_CST, dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(2024, 3, 1, 7, 59, 59)),
    ("datetime", T_TEXT, dt.datetime(2024, 2, 29, 16, 0, 0, 999_999), "2024-03-01 00:00:00"),
    ("datetime", T_EPOCH, dt.datetime(1969, 12, 31, 23, 59, 59, 999_999), -1),
    ("hours", H_MINUTES, 250, 150), ("hours", H_MINUTES, 1, 1), ("hours", H_MINUTES, 4, 2),
    ("hours", H_DECIMAL, 5, Decimal("0.05")), ("list", L_PIPE, '["a","b"]', "a|b"), ("list", L_PIPE, "[]", ""),
    ("list", L_PIPE, None, ""), ("list", L_JSON, None, "[]"), ("list", L_COMMA, ["x", "y"], "x,y"),
]


@pytest.mark.parametrize(("ftype", "fm", "value", "expected"), WRITES)
def test_canonical_values_written_in_the_platform_form(ftype, fm, value, expected) -> None:
    assert encode_value(fm, ftype, value) == expected


def test_what_cannot_be_written_is_refused() -> None:
    with pytest.raises(UnmappedValue, match="SUSPENDED") as err:
        encode_value(STATUS, "code", "SUSPENDED", field="status")
    assert err.value.column == "zt"
    with pytest.raises(UnmappedValue) as err:
        encode_value(GENDER, "code", unmapped_marker("xb", "0"), field="gender")
    assert (err.value.column, err.value.value) == ("xb", "0")
    with pytest.raises(ValueError, match="separated"):
        encode_value(L_PIPE, "list", '["a|b"]')
    with pytest.raises(ValueError, match="separated"):
        encode_value(L_PIPE, "list", '[""]')
    with pytest.raises(ValueError, match="before year 1000"):
        encode_value(D_COMPACT, "date", dt.date(999, 1, 1))
    with pytest.raises(ValueError, match="constant"):
        encode_value(field_map(const="23"), "text", "23")


_DATES = st.dates(min_value=dt.date(1000, 1, 2), max_value=dt.date(9999, 12, 30))
_TIMES = st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30))
# items as the registry takes them: no control characters but tab, LF and CR (registry-api.md §4), which are escaped
_ITEMS = st.lists(st.text(st.one_of(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="|,"),
                                    st.sampled_from("\t\n\r")), min_size=1, max_size=6), max_size=4)


@FAST
@given(_DATES)
def test_dates_round_trip(day: dt.date) -> None:
    for fm in (D_NATIVE, D_ISO, D_COMPACT, D_EPOCH):
        assert decode_value(fm, "date", encode_value(fm, "date", day)) == day


@FAST
@given(_TIMES)
def test_times_round_trip(t: dt.datetime) -> None:
    for fm in (T_UTC, T_CST):
        assert decode_value(fm, "datetime", encode_value(fm, "datetime", t)) == t
    at_ms = t.replace(microsecond=t.microsecond // 1000 * 1000)
    assert decode_value(T_EPOCH, "datetime", encode_value(T_EPOCH, "datetime", at_ms)) == at_ms
    at_s = t.replace(microsecond=0)
    assert decode_value(T_TEXT, "datetime", encode_value(T_TEXT, "datetime", at_s)) == at_s


@FAST
@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=96))
def test_hours_round_trip(hundredths: int, quarters: int) -> None:
    for fm in (H_HUNDREDTHS, H_DECIMAL):
        assert decode_value(fm, "hours", encode_value(fm, "hours", hundredths)) == hundredths
    # minutes hold the registry's steps of 0.25 h exactly; any whole minutes read and write back unchanged
    assert decode_value(H_MINUTES, "hours", encode_value(H_MINUTES, "hours", quarters * 25)) == quarters * 25
    assert encode_value(H_MINUTES, "hours", decode_value(H_MINUTES, "hours", hundredths)) == hundredths


@FAST
@given(_ITEMS)
def test_lists_round_trip(items: list[str]) -> None:
    canonical = orjson.dumps(items).decode()
    for fm in (L_JSON, L_PIPE, L_COMMA):
        assert decode_value(fm, "list", encode_value(fm, "list", canonical)) == canonical


@FAST
@given(st.sampled_from(["M", "F"]), st.sampled_from(["ACTIVE", "DEREGISTERED"]))
def test_codes_round_trip(gender: str, status: str) -> None:
    assert decode_value(GENDER, "code", encode_value(GENDER, "code", gender)) == gender
    assert decode_value(STATUS, "code", encode_value(STATUS, "code", status)) == status


# ------------------------------------------------------------------------------------------------ row helpers

ROWS = mapping_with({
    "org": {"table": "zz", "key": "zzdm", "key_type": "string", "insert": False,
            "soft_delete": {"column": "scbz", "deleted": ["1", 2], "active": "0"},
            "scope": [{"column": "sfcs", "not_in": ["1"]}, {"column": "sf", "in": ["23"]}],
            "fields": {"parent_id": {"column": "sjzzdm"}, "level": {"column": "zzjb", "values": {"11": "CITY_CORPS"}}}},
    "volunteer": {"table": "zyz", "key": "zyzid", "defaults": {"ly": "3"},
                  "soft_delete": {"column": "scbz", "deleted": ["1"], "active": "0"},
                  "fields": {"name": {"column": "xm", "write": False}, "home_province": {"const": "23"},
                             "gender": {"column": "xb", "values": {"1": "M", "2": "F"}},
                             "skills": {"column": "zytc", "list": "|"}}},
    "activity": {"table": "hd", "key": "hdbh", "key_type": "string", "new_key": "QG{registry_id}",
                 "fields": {"org_id": {"column": "fbzzdm"}}},
})


def test_rows_read_and_written_through_the_mapping() -> None:
    codec = Codec(ROWS)
    assert codec.columns("org")[:2] == ["zzdm", "name"] and codec.columns("org")[-3:] == ["sfcs", "sf", "scbz"]
    assert codec.is_lookup_ref("org", "parent_id") and codec.is_lookup_ref("activity", "org_id")
    assert not codec.is_lookup_ref("membership", "volunteer_id")
    assert codec.writable("volunteer", "gender") and not codec.writable("volunteer", "name")
    assert not codec.writable("volunteer", "home_province") and not codec.writable("volunteer", "id_number_norm_x")

    row = {c: None for c in codec.columns("volunteer")} | {"xm": "张三", "xb": "9", "zytc": "a|b"}
    canonical = codec.to_canonical("volunteer", row)
    assert canonical["name"] == "张三" and canonical["home_province"] == "23" and canonical["skills"] == '["a","b"]'
    assert canonical["gender"] == unmapped_marker("xb", "9") and "id" not in canonical

    org_row = {c: None for c in codec.columns("org")} | {"zzjb": "11", "sjzzdm": "ORG1"}
    assert "parent_id" not in codec.to_canonical("org", org_row)
    assert codec.to_canonical("org", org_row, refs={"parent_id": 4, "station_id": None})["parent_id"] == 4
    with pytest.raises(ValueError, match="db layer"):
        codec.decode("org", "parent_id", "ORG1")

    written = codec.to_platform("volunteer", {"id": 3, "name": "李四", "gender": "F", "skills": '["x"]',
                                              "home_province": "23", "remark": "r"})
    assert written == {"xb": "2", "zytc": "x", "remark": "r"}
    with pytest.raises(KeyError, match="refs"):
        codec.to_platform("org", {"parent_id": 4})
    assert codec.to_platform("org", {"parent_id": 4}, refs={"parent_id": "ORG4"}) == {"sjzzdm": "ORG4"}

    new = codec.insert_values("volunteer", {"name": "王五", "gender": "M", "skills": "[]"}, registry_id="V1")
    assert new == {"ly": "3", "scbz": "0", "xm": "王五", "xb": "1", "zytc": ""}
    act = codec.insert_values("activity", {"title": "t"}, registry_id="ACT0000000000012")
    assert act["hdbh"] == "QGACT0000000000012"
    with pytest.raises(ValueError, match="insert = false"):
        codec.insert_values("org", {}, registry_id="X")


def test_soft_delete_and_scope_compare_as_text() -> None:
    codec = Codec(ROWS)
    base = {"sfcs": "0", "sf": "23", "scbz": "0"}
    assert codec.in_scope("org", base) and not codec.is_deleted("org", base)
    assert codec.is_deleted("org", base | {"scbz": 2}) and codec.is_deleted("org", base | {"scbz": "1"})
    assert not codec.is_deleted("org", base | {"scbz": None})
    assert not codec.in_scope("org", base | {"sfcs": "1"}) and codec.in_scope("org", base | {"sfcs": None})
    assert not codec.in_scope("org", base | {"sf": None}) and not codec.in_scope("org", base | {"sf": 24})
    assert codec.in_scope("org", base | {"sf": 23})
    assert Codec(mapping_with({})).in_scope("org", {}) and not Codec(mapping_with({})).is_deleted("org", {})


# ---------------------------------------------------------------------------- through a real column, each engine

STORED = [  # (ftype, field map, column type, canonical values)
    ("code", GENDER, String(4), ["M", "F", None]),
    ("date", D_NATIVE, Date(), [dt.date(1000, 1, 1), dt.date(2024, 2, 29), None]),
    ("date", D_ISO, String(10), [dt.date(1000, 1, 1), dt.date(9999, 12, 31), None]),
    ("date", D_COMPACT, String(8), [dt.date(2024, 2, 29), None]),
    ("date", D_EPOCH, BigInteger(), [dt.date(1900, 1, 1), dt.date(2024, 3, 1), None]),
    ("datetime", T_UTC, DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"),
     [dt.datetime(2024, 2, 29, 23, 59, 59, 123456), None]),
    ("datetime", T_CST, DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"),
     [dt.datetime(2024, 2, 29, 16, 0), dt.datetime(2024, 2, 29, 15, 59, 59, 5), None]),
    ("datetime", T_TEXT, String(19), [dt.datetime(2024, 2, 29, 16, 0), None]),
    ("datetime", T_EPOCH, BigInteger(), [dt.datetime(1969, 12, 31, 23, 59, 59, 999000), None]),
    ("hours", H_MINUTES, Integer(), [250, 2400, 0, None]),
    ("hours", H_DECIMAL, Numeric(8, 2), [250, 1, 2400, None]),
    ("list", L_PIPE, String(200), ['["唱歌","\U00020000"]', "[]"]),
    ("list", L_JSON, String(200), ['["a","b"]', "[]"]),
]


def test_values_written_into_each_engine_read_back_equal(platform_db: PlatformDB) -> None:  # noqa: F811
    md = MetaData()
    table = Table("rt", md, Column("id", Integer, primary_key=True),
                  *(Column(f"c{i}", coltype) for i, (_t, _fm, coltype, _v) in enumerate(STORED)),
                  mysql_charset="utf8mb4")
    md.create_all(platform_db.engine)
    rows = max(len(values) for *_x, values in STORED)
    with platform_db.engine.begin() as conn:
        for r in range(rows):
            conn.execute(table.insert().values(
                id=r + 1, **{f"c{i}": encode_value(fm, ftype, values[r]) for i, (ftype, fm, _c, values)
                             in enumerate(STORED) if r < len(values)}))
        got = conn.execute(select(table).order_by(table.c.id)).mappings().all()
    for i, (ftype, fm, _c, values) in enumerate(STORED):
        read = [decode_value(fm, ftype, got[r][f"c{i}"]) for r in range(len(values))]
        assert read == values, (ftype, fm)
