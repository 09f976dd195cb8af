"""The mapping's reads as SQL (issue 14): on SQLite, PostgreSQL and MariaDB, the expression that
:func:`regsync.db.mapping.sql.read_expr` writes, evaluated by the engine over a table of platform values, equals
the Python :func:`regsync.db.mapping.codec.decode_value` of the same values, for every format, unit, list, value
map, reference, scope and soft delete; and it reads back what :func:`encode_value` wrote (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

from mapping_cases import mapping_with
from mapping_engines import PlatformDB, no_warnings, platform_db  # noqa: F401 — the fixture
from regsync.db.mapping import sql
from regsync.db.mapping.codec import Codec, decode_value, encode_value
from regsync.db.mapping.model import CANONICAL, PlatformMapping
from regsync.domain.unmapped import unmapped_marker

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEY_TABLE = "rk"

#: The canonical type's SQLAlchemy type, so that SQLite's text dates and times come back as Python values.
RESULT_TYPES: dict[str, TypeEngine[Any]] = {
    "date": Date(), "datetime": DateTime(), "hours": BigInteger(), "integer": BigInteger(), "ref": BigInteger(),
    "text": Text(), "code": Text(), "list": Text(),
}


def _metadata() -> tuple[MetaData, Table]:
    md = MetaData()
    p = Table("p", md, Column("id", Integer, primary_key=True, autoincrement=False),
              Column("c_text", String(200)), Column("c_int", BigInteger), Column("c_dec", Numeric(12, 4)),
              Column("c_date", Date), Column("c_ts", DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")),
              mysql_charset="utf8mb4")
    # regsync's key table, as module sql describes it (utf8mb4_bin on MySQL)
    Table(KEY_TABLE, md, Column("entity", String(24), nullable=False), Column("local_id", BigInteger, nullable=False),
          Column("key_value", String(64).with_variant(mysql.VARCHAR(64, charset="utf8mb4", collation="utf8mb4_bin"),
                                                "mysql"), nullable=False),
          UniqueConstraint("entity", "key_value"), mysql_charset="utf8mb4")
    return md, p


@pytest.fixture
def platform(platform_db: PlatformDB) -> PlatformDB:  # noqa: F811
    md, _p = _metadata()
    md.create_all(platform_db.engine)
    return platform_db


def _fill(conn: Connection, column: str, raws: list[Any]) -> list[Any]:
    """Put ``raws`` in ``p.<column>`` (one row each) and return them as the driver reads them back."""
    _md, p = _metadata()
    conn.execute(p.delete())
    if raws:
        conn.execute(p.insert(), [{"id": i + 1, column: raw} for i, raw in enumerate(raws)])
    return [r[0] for r in conn.execute(select(p.c[column]).order_by(p.c.id))]


def _evaluate(conn: Connection, expr: str, result_type: TypeEngine[Any]) -> list[Any]:
    query = text(f"SELECT t.id, {expr} AS v FROM p t ORDER BY t.id").columns(id=Integer(), v=result_type)
    values = [r.v for r in conn.execute(query)]
    no_warnings(conn)
    return values


def _one_field(kind: str, field: str, column: str, **options: Any) -> PlatformMapping:
    return mapping_with({kind: {"table": "p", "fields": {field: {"column": column, **options}}}})


CASES: list[tuple[str, str, str, dict[str, Any], str, list[Any]]] = [
    # (case, kind, field, options, column, platform values)
    ("code map", "volunteer", "gender", {"values": {"1": "M", "2": "F", "女": "F"}, "write_values": {"F": "2"}},
     "c_text",
     ["1", "2", "0", "9", None, "1 ", " 1", "", "女", "男", "\U00020000", "'"]),
    ("code map, letters", "volunteer", "status",
     {"values": {"A": "ACTIVE", "1": "ACTIVE", "Z": "DEREGISTERED"}, "write_values": {"ACTIVE": "A"}},
     "c_text", ["A", "a", "1", "Z", "z", None]),
    ("code map, integer column", "org", "level", {"values": {"11": "CITY_CORPS", "12": "DISTRICT_BRIGADE"}},
     "c_int", [11, 12, 99, None, -1]),
    ("code, no map", "volunteer", "gender", {}, "c_text", ["M", "F", None]),
    ("text", "volunteer", "name", {}, "c_text", ["张三", "\U00020000\U0002a6d6", "O'Brien", "a\\b", "", None]),
    ("integer", "activity", "planned_headcount", {}, "c_int", [30, 0, None]),
    ("date", "volunteer", "birth_date", {}, "c_date", [dt.date(2024, 2, 29), dt.date(1000, 1, 1), None]),
    ("date YYYY-MM-DD", "volunteer", "birth_date", {"format": "YYYY-MM-DD"}, "c_text",
     ["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "2023-13-01", "2023-00-10", "2023-01-00",
      "2023-01-32", "2023-04-31", "0999-12-31", "1000-01-01", "9999-12-31", "2023-1-5", "", "abcd-ef-gh",
      "2024-02-29\n", " 2024-02-29", "2024/02/29", "２０２４-０２-２９", None]),
    ("date YYYYMMDD", "volunteer", "birth_date", {"format": "YYYYMMDD"}, "c_text",
     ["20240229", "20230229", "19000228", "20231301", "2023010", "202301011", "", None]),
    ("date YYYYMMDD, integer column", "volunteer", "birth_date", {"format": "YYYYMMDD"}, "c_int",
     [20240229, 20230230, 9990101, None]),
    ("date epoch_ms", "volunteer", "birth_date", {"format": "epoch_ms"}, "c_int",
     [0, -1, -28_800_000, -28_800_001, 57_599_999, 57_600_000, 1_709_136_000_000, -2_209_017_600_000, None]),
    ("datetime UTC", "activity", "starts_at", {}, "c_ts",
     [dt.datetime(2024, 2, 29, 23, 59, 59, 123456), dt.datetime(2024, 1, 1), None]),
    ("datetime +08:00", "activity", "starts_at", {"tz": "+08:00"}, "c_ts",
     [dt.datetime(2024, 3, 1, 7, 59, 59, 500000), dt.datetime(2024, 3, 1, 8), dt.datetime(2024, 1, 1), None]),
    ("datetime text", "activity", "starts_at", {"format": "YYYY-MM-DD HH:MM:SS"}, "c_text",
     ["2024-03-01 07:59:59", "2024-03-01 08:00:00", "2024-02-29 24:00:00", "2024-12-31 24:00:00",
      "2024-02-29 24:00:01", "2024-02-29 23:60:00", "2024-02-29 23:59:60", "2024-02-30 10:00:00",
      "2024-02-29T10:00:00", "2024-02-29 10:00", "2024-02-29 10:00:00.5", "", None]),
    ("datetime epoch_ms", "activity", "starts_at", {"format": "epoch_ms"}, "c_int",
     [0, -1, 1, 999, 1000, 1_709_222_399_999, 1_709_222_400_000, -2_209_017_600_123, None]),
    ("hours", "service_record", "hours", {"unit": "hundredths"}, "c_int", [250, 0, None]),
    ("hours minutes", "service_record", "hours", {"unit": "minutes"}, "c_int",
     [0, 1, 2, 3, 29, 30, 31, 89, 90, 91, 150, 1439, 1440, -1, None]),
    ("hours decimal", "service_record", "hours", {"unit": "decimal_hours"}, "c_dec",
     [Decimal("2.5"), Decimal("0.005"), Decimal("0.0049"), Decimal("1.005"), Decimal("2.125"), Decimal("0.015"),
      Decimal("24"), Decimal("0.0051"), None]),
    ("list json", "volunteer", "skills", {"list": "json"}, "c_text",
     ['["a","b"]', '["a", "b"]', "[]", "", None, '["张三","\U00020000"]']),
    ("list |", "volunteer", "skills", {"list": "|"}, "c_text",
     ["a|b", "a", "", None, "a||b", "a|", "|", 'x"y', "x\\y", "t\tn\nr\r", "唱歌|\U00020000舞", "a,b", "'q'"]),
    ("list ,", "org", "service_categories", {"list": ","}, "c_text",
     ["COMMUNITY,ELDERLY_DISABLED", "COMMUNITY", ""]),
    ("const text", "volunteer", "home_province", {"const": "23"}, "c_text", ["x", None]),
    ("const integer", "activity", "planned_headcount", {"const": 5}, "c_text", ["x"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sql_reads_as_the_codec_reads(platform: PlatformDB, case) -> None:
    _name, kind, field, options, column, raws = case
    options = dict(options)
    mapping = (mapping_with({kind: {"fields": {field: options}}}) if "const" in options
               else _one_field(kind, field, column, **options))
    ftype = CANONICAL[kind][field][0]
    fm = mapping.kinds[kind].fields[field]  # type: ignore[index]
    expr = sql.read_expr(platform.dialect, mapping, kind, field, "t", key_table=KEY_TABLE)
    with platform.engine.begin() as conn:
        stored = _fill(conn, column, raws)
        got = _evaluate(conn, expr, RESULT_TYPES[ftype])
    assert got == [decode_value(fm, ftype, raw) for raw in stored]


def test_unmapped_codes_are_the_same_marker_in_sql_and_python(platform: PlatformDB) -> None:
    mapping = _one_field("volunteer", "gender", "c_int", values={"1": "M", "2": "F"})
    expr = sql.read_expr(platform.dialect, mapping, "volunteer", "gender", "t", key_table=KEY_TABLE)
    with platform.engine.begin() as conn:
        _fill(conn, "c_int", [0, 9, 1])
        got = _evaluate(conn, expr, Text())
    assert got == [unmapped_marker("c_int", "0"), unmapped_marker("c_int", "9"), "M"]


# ------------------------------------------------------------------------------------- written, then read in SQL

_FORMATS: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("volunteer", "birth_date", "c_text", {"format": "YYYY-MM-DD"}, "date"),
    ("volunteer", "birth_date", "c_text", {"format": "YYYYMMDD"}, "date"),
    ("volunteer", "birth_date", "c_int", {"format": "epoch_ms"}, "date"),
    ("volunteer", "birth_date", "c_date", {}, "date"),
    ("activity", "starts_at", "c_text", {"format": "YYYY-MM-DD HH:MM:SS"}, "datetime_s"),
    ("activity", "starts_at", "c_int", {"format": "epoch_ms"}, "datetime_ms"),
    ("activity", "starts_at", "c_ts", {"tz": "+08:00"}, "datetime"),
    ("service_record", "hours", "c_int", {"unit": "minutes"}, "quarters"),
    ("service_record", "hours", "c_dec", {"unit": "decimal_hours"}, "hours"),
    ("volunteer", "skills", "c_text", {"list": "|"}, "list"),
    ("volunteer", "gender", "c_text", {"values": {"1": "M", "2": "F"}}, "gender"),
]


@FAST
@given(day=st.dates(min_value=dt.date(1000, 1, 2), max_value=dt.date(9999, 12, 30)),
       t=st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30)),
       hours=st.integers(min_value=0, max_value=99_999_999), quarters=st.integers(min_value=0, max_value=400),
       items=st.lists(st.text(st.one_of(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="|"),
                                        st.sampled_from("\t\n\r")), min_size=1, max_size=5), max_size=4),
       gender=st.sampled_from(["M", "F"]))
def test_sql_reads_back_what_the_codec_wrote(platform: PlatformDB, day: dt.date, t: dt.datetime, hours: int,
                                             quarters: int, items: list[str], gender: str) -> None:
    values = {"date": day, "datetime": t, "datetime_s": t.replace(microsecond=0),
              "datetime_ms": t.replace(microsecond=t.microsecond // 1000 * 1000), "hours": hours,
              "quarters": quarters * 25, "list": orjson.dumps(items).decode(), "gender": gender}
    with platform.engine.begin() as conn:
        for kind, field, column, options, which in _FORMATS:
            mapping = _one_field(kind, field, column, **options)
            ftype = CANONICAL[kind][field][0]
            fm = mapping.kinds[kind].fields[field]  # type: ignore[index]
            _fill(conn, column, [encode_value(fm, ftype, values[which])])
            expr = sql.read_expr(platform.dialect, mapping, kind, field, "t", key_table=KEY_TABLE)
            assert _evaluate(conn, expr, RESULT_TYPES[ftype]) == [values[which]], (field, options)


# ----------------------------------------------------------------------------------------- references and keys

REFS = mapping_with({
    # orgs keyed by their code, with a unique credit code another table refers to them by
    "org": {"table": "zz", "key": "zzdm", "key_type": "string", "insert": False},
    # activities keyed by an integer id, referred to by their number
    "activity": {"table": "hd", "key": "id", "key_type": "integer"},
    "service_record": {"table": "fw", "key": "id", "fields": {
        "org_id": {"column": "zzdm"}, "activity_id": {"column": "hdbh", "ref_column": "hdbh"},
        "volunteer_id": {"column": "zyzid"}}},
    "membership": {"table": "cy", "key": "id", "fields": {"org_id": {"column": "xydm", "ref_column": "tyxydm"}}},
})


def test_references_resolve_to_local_ids(platform_db: PlatformDB) -> None:  # noqa: F811
    md, _p = _metadata()
    zz = Table("zz", md, Column("zzdm", String(32), primary_key=True), Column("tyxydm", String(18), unique=True),
               mysql_charset="utf8mb4")
    hd = Table("hd", md, Column("id", Integer, primary_key=True, autoincrement=False), Column("hdbh", String(32)),
               mysql_charset="utf8mb4")
    fw = Table("fw", md, Column("id", Integer, primary_key=True, autoincrement=False), Column("zzdm", String(32)),
               Column("hdbh", String(32)), Column("zyzid", BigInteger), mysql_charset="utf8mb4")
    cy = Table("cy", md, Column("id", Integer, primary_key=True, autoincrement=False), Column("xydm", String(18)),
               mysql_charset="utf8mb4")
    md.create_all(platform_db.engine)
    rk = md.tables[KEY_TABLE]
    d = platform_db.dialect
    with platform_db.engine.begin() as conn:
        conn.execute(zz.insert(), [{"zzdm": "Z\U00020000", "tyxydm": "X1"}, {"zzdm": "z1", "tyxydm": "X2"},
                                   {"zzdm": "Z2", "tyxydm": "X3"}])
        # keys that differ only in case are two keys (MariaDB's case-insensitive collation does not join them)
        conn.execute(rk.insert(), [{"entity": "org", "local_id": 7, "key_value": "Z\U00020000"},
                                   {"entity": "org", "local_id": 8, "key_value": "z1"},
                                   {"entity": "org", "local_id": 9, "key_value": "Z1"},
                                   {"entity": "org", "local_id": 10, "key_value": "Z2"},
                                   {"entity": "activity", "local_id": 99, "key_value": "H1"}])
        conn.execute(hd.insert(), [{"id": 3, "hdbh": "H1"}, {"id": 4, "hdbh": "h2"}])
        conn.execute(fw.insert(), [{"id": 1, "zzdm": "Z\U00020000", "hdbh": "H1", "zyzid": 5},
                                   {"id": 2, "zzdm": "Z1", "hdbh": "h2", "zyzid": None},
                                   {"id": 3, "zzdm": "z1", "hdbh": "H2", "zyzid": 6},
                                   {"id": 4, "zzdm": "nope", "hdbh": None, "zyzid": 6},
                                   {"id": 5, "zzdm": None, "hdbh": "h2 ", "zyzid": 6}])
        conn.execute(cy.insert(), [{"id": 1, "xydm": "X1"}, {"id": 2, "xydm": "X3"}, {"id": 3, "xydm": "x9"}])

        def read(kind: str, table: str, fields: list[str]) -> list[tuple[Any, ...]]:
            exprs = ", ".join(sql.read_expr(d, REFS, kind, f, "t", key_table=KEY_TABLE) for f in fields)
            rows = conn.execute(text(f"SELECT {exprs} FROM {table} t ORDER BY t.id")).fetchall()
            no_warnings(conn)
            return [tuple(r) for r in rows]

        assert read("service_record", "fw", ["org_id", "activity_id", "volunteer_id"]) == [
            (7, 3, 5), (9, 4, None), (8, None, 6), (None, None, 6), (None, None, 6)]
        assert read("membership", "cy", ["org_id"]) == [(7,), (10,), (None,)]
        keys = conn.execute(text(f"SELECT {sql.key_expr(d, REFS, 'org', 't', key_table=KEY_TABLE)} FROM zz t "
                                 "ORDER BY t.tyxydm")).scalars().all()
        assert keys == [7, 8, 10]
        ids = conn.execute(text(f"SELECT {sql.key_expr(d, REFS, 'activity', 't', key_table=KEY_TABLE)} FROM hd t "
                                "ORDER BY t.id")).scalars().all()
        assert ids == [3, 4]
    codec = Codec(REFS)
    assert codec.is_lookup_ref("service_record", "org_id") and codec.is_lookup_ref("service_record", "activity_id")
    assert codec.is_lookup_ref("membership", "org_id") and not codec.is_lookup_ref("service_record", "volunteer_id")


# ------------------------------------------------------------------------------------- scope and soft delete

SCOPED = mapping_with({"volunteer": {
    "table": "p",
    "scope": [{"column": "c_text", "not_in": ["1", "Y"]}, {"column": "c_int", "in": [23, "24"]},
              {"column": "c_date", "is_null": True}],
    "soft_delete": {"column": "c_int", "deleted": [25, "26"]},
}, "org": {"table": "p", "scope": [{"column": "c_ts", "is_null": False}, {"column": "c_text", "in": []}],
           "soft_delete": {"column": "c_text", "deleted": ["1", "y"]}}})


def test_scope_and_soft_delete_in_sql_as_in_python(platform: PlatformDB) -> None:
    _md, p = _metadata()
    rows = [
        {"c_text": "0", "c_int": 23},
        {"c_text": "1", "c_int": 23},
        {"c_text": None, "c_int": 24},
        {"c_text": "y", "c_int": 26},
        {"c_text": "Y", "c_int": 25},
        {"c_text": "1 ", "c_int": 23},
        {"c_text": "0", "c_int": None},
        {"c_text": "0", "c_int": 23, "c_date": dt.date(2024, 1, 1), "c_ts": dt.datetime(2024, 1, 1)},
    ]
    d = platform.dialect
    codec = Codec(SCOPED)
    with platform.engine.begin() as conn:
        conn.execute(p.insert(), [{"id": i + 1, "c_date": None, "c_ts": None, "c_dec": None, **r}
                                  for i, r in enumerate(rows)])
        stored = [dict(r) for r in conn.execute(select(p).order_by(p.c.id)).mappings()]
        for kind in ("volunteer", "org"):
            scope = sql.in_scope_expr(d, SCOPED, kind, "t")
            deleted = sql.deleted_expr(d, SCOPED, kind, "t")
            query = text(f"SELECT {scope} AS s, {deleted} AS d, NOT {scope} AS ns, NOT {deleted} AS nd "
                         "FROM p t ORDER BY t.id").columns(s=Boolean(), d=Boolean(), ns=Boolean(), nd=Boolean())
            got = [tuple(r) for r in conn.execute(query)]
            no_warnings(conn)
            want = [(codec.in_scope(kind, r), codec.is_deleted(kind, r)) for r in stored]
            # never NULL: the negations are the opposite
            assert got == [(s, dd, not s, not dd) for s, dd in want], kind
    # spelled out ("1 " is not "1", "y" is not "Y", NULL is outside not_in lists and inside no in list)
    assert [codec.in_scope("volunteer", r) for r in stored] == [True, False, True, False, False, True, False, False]
    assert [codec.is_deleted("volunteer", r) for r in stored] == [False, False, False, True, True, False, False,
                                                                  False]
    assert [codec.in_scope("org", r) for r in stored] == [False] * 8
    assert [codec.is_deleted("org", r) for r in stored] == [False, True, False, True, False, False, False, False]
    assert sql.in_scope_expr(d, mapping_with({}), "org", "t") == "TRUE"
    assert sql.deleted_expr(d, mapping_with({}), "org", "t") == "FALSE"


# ----------------------------------------------------------------------------------------------- the SQL itself


def test_identifiers_and_literals_are_quoted_per_dialect() -> None:
    assert sql.quote_table("postgresql", "Plat.zyz_jbxx") == '"Plat".zyz_jbxx'
    assert sql.quote_table("mysql", "plat.key") == "plat.`key`"
    assert sql.quote("sqlite", "order") == '"order"'
    assert sql.literal("postgresql", "O'Brien") == "'O''Brien'"
    assert sql.literal("mysql", "a\\b") == "CONCAT('a', CHAR(92 USING utf8mb4), 'b')"
    assert sql.literal("sqlite", "\x1fX") == "(char(31) || 'X')"
    assert sql.literal("sqlite", "") == "''" and sql.literal("mysql", None) == "NULL"
    assert sql.dialect_of("mariadb") == "mysql"
    with pytest.raises(ValueError, match="oracle"):
        sql.dialect_of("oracle")
    with pytest.raises(ValueError, match="alias"):
        sql.read_expr("sqlite", mapping_with({}), "org", "name", "t; DROP", key_table=KEY_TABLE)


def test_watched_columns_are_the_synced_ones_and_the_flags() -> None:
    mapping = mapping_with({"volunteer": {
        "table": "zyz", "key": "zyzid", "scope": [{"column": "sfcs", "not_in": ["1"]}],
        "soft_delete": {"column": "scbz", "deleted": ["1"]},
        "fields": {"updated_at": {"column": "gxsj"}, "remark": {"column": "bz"}, "name": {"column": "xm"},
                   "registered_at": {"column": "zcsj"}, "home_province": {"const": "23"}}}})
    watched = sql.watched_columns(mapping, "volunteer")
    assert watched[0] == "zyzid" and watched[-2:] == ["sfcs", "scbz"] and "xm" in watched
    assert not {"gxsj", "bz", "zcsj", "home_province", "id_number_norm"} & set(watched)
    assert sql.watched_columns(mapping_with({}), "membership") == ["id", "volunteer_id", "org_id", "joined_on",
                                                                    "left_on"]
