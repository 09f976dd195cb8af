"""The ``legacy`` platform (issue 14, item 5): its mapping loads and names its columns; its tables are made and
dropped on SQLite, PostgreSQL (in a named schema) and MariaDB (in a named database); a row of each kind written in
the platform's form reads back, through the mapping's SQL, as the canonical row regsync's flows expect."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, inspect, select, text, update
from sqlalchemy.dialects import mysql

from mapping_engines import PlatformDB, no_warnings, platform_db  # noqa: F401 — the fixture
from regsync.db.mapping import sql
from regsync.db.mapping.codec import Codec
from regsync.db.mapping.load import load_mapping
from regsync.db.mapping.model import CANONICAL
from regsync.domain.unmapped import unmapped_marker
from regsync.generate.legacy_schema import TABLES, create_legacy, drop_legacy, legacy_metadata
from test_mapping_sql import RESULT_TYPES

ROOT = Path(__file__).resolve().parents[1]

#: Rows in the platform's own form, by kind, ordered by key.
PLATFORM_ROWS: dict[str, list[dict[str, Any]]] = {
    "org": [
        {"zzdm": "2301", "zzmc": "哈尔滨市志愿服务总队", "zzlx": "1", "zzjb": "11", "tyxydm": "12230100MB1234567X",
         "xzqhdm": "230100", "fwlb": "COMMUNITY,EDUCATION", "lxr": "王芳", "lxdh": "13912345678",
         "clrq": 1_425_484_800_000, "zt": "1"},
        {"zzdm": "23010201", "zzmc": "花园社区学雷锋志愿服务工作站", "zzlx": "1", "zzjb": "14", "sjzzdm": "2301",
         "xzqhdm": "230102", "jddm": "230102001001", "fwlb": "COMMUNITY", "zt": "2", "bz": "试点"},
        {"zzdm": "JC0001", "zzmc": "测试服务队", "zzlx": "2", "zzjb": "24", "sjzzdm": "XQ0001", "gzzdm": "23010201",
         "xzqhdm": "230102", "fwlb": "", "zt": "3", "scbz": "1", "sfcs": "1"},
    ],
    "volunteer": [
        {"zyzid": 5, "xm": "张\U00020000", "zjlx": "01", "zjhm": "230102199001011234", "xb": "1", "csrq": "19900101",
         "sjhm": "13900001111", "xzqhdm": "230102", "zytc": "急救|外语", "zt": "1", "zcsj": "2024-03-01 07:30:00",
         "ljfwsc": Decimal("2.50"), "ly": "1"},
        {"zyzid": 6, "xm": "阿依古丽·买买提", "zjlx": "04", "zjhm": "E12345678", "xb": "0", "csrq": "19850230",
         "xzqhdm": "230103", "zt": "Z", "zcsj": "2024-01-01 00:00:00", "ly": "2", "bz": "重复注册"},
    ],
    "membership": [
        {"cyid": 1, "zyzid": 5, "zzdm": "JC0001", "jrrq": "2024-03-01"},
        {"cyid": 2, "zyzid": 6, "zzdm": "2301", "jrrq": "2024-01-01", "tcrq": "2024-02-29"},
    ],
    "activity": [
        {"hdbh": "HD2024000001", "fbzzdm": "JC0001", "hdmc": "社区清洁", "hdlb": "09", "xzqhdm": "230102",
         "kssj": dt.datetime(2024, 3, 2, 8, 0), "jssj": dt.datetime(2024, 3, 2, 11, 30), "zmrs": 20, "hdzt": "3"},
    ],
    "service_record": [
        {"jlid": 1, "zyzid": 5, "hdbh": "HD2024000001", "zzdm": "JC0001", "fwrq": dt.date(2024, 3, 2),
         "kssj": 1_709_337_600_000, "jssj": 1_709_350_200_000, "fwsc": 210, "jlzt": "1", "lrfs": "1"},
        {"jlid": 2, "zyzid": 5, "hdbh": "HD404", "zzdm": "JC0001", "fwrq": dt.date(2024, 3, 2),
         "kssj": 1_709_337_000_000, "jssj": 1_709_350_200_000, "fwsc": 89, "jlzt": "0", "cxyy": "录入错误",
         "lrfs": "1"},
    ],
}

#: regsync's key table: the local ids of the string keys (orgs, activities).
KEYS = [("org", 1, "2301"), ("org", 2, "23010201"), ("org", 3, "JC0001"), ("activity", 11, "HD2024000001")]

#: The same rows as the flows read them (plus whether each is in scope and soft-deleted).
CANONICAL_ROWS: dict[str, list[dict[str, Any]]] = {
    "org": [
        {"id": 1, "name": "哈尔滨市志愿服务总队", "org_type": "REGIONAL", "level": "CITY_CORPS", "parent_id": None,
         "station_id": None, "uscc": "12230100MB1234567X", "region_code": "230100", "street_code": None,
         "service_categories": '["COMMUNITY","EDUCATION"]', "contact_name": "王芳", "contact_phone": "13912345678",
         "established_on": dt.date(2015, 3, 5), "status": "ACTIVE", "remark": None, "_scope": True, "_deleted": False},
        {"id": 2, "name": "花园社区学雷锋志愿服务工作站", "org_type": "REGIONAL", "level": "COMMUNITY_STATION",
         "parent_id": 1, "station_id": None, "uscc": None, "region_code": "230102", "street_code": "230102001001",
         "service_categories": '["COMMUNITY"]', "contact_name": None, "contact_phone": None, "established_on": None,
         "status": "SUSPENDED", "remark": "试点", "_scope": True, "_deleted": False},
        {"id": 3, "name": "测试服务队", "org_type": "SPECIALIZED", "level": "GRASSROOTS_TEAM", "parent_id": None,
         "station_id": 2, "uscc": None, "region_code": "230102", "street_code": None, "service_categories": "[]",
         "contact_name": None, "contact_phone": None, "established_on": None, "status": "DISSOLVED", "remark": None,
         "_scope": False, "_deleted": True},
    ],
    "volunteer": [
        {"id": 5, "name": "张\U00020000", "id_type": "RESIDENT_ID", "id_number": "230102199001011234", "gender": "M",
         "birth_date": dt.date(1990, 1, 1), "phone": "13900001111", "region_code": "230102",
         "skills": '["急救","外语"]', "home_province": "23", "status": "ACTIVE",
         "registered_at": dt.datetime(2024, 2, 29, 23, 30), "remark": None, "_scope": True, "_deleted": False},
        {"id": 6, "name": "阿依古丽·买买提", "id_type": "PASSPORT", "id_number": "E12345678",
         "gender": unmapped_marker("xb", "0"), "birth_date": None, "phone": None, "region_code": "230103",
         "skills": "[]", "home_province": "23", "status": "DEREGISTERED",
         "registered_at": dt.datetime(2023, 12, 31, 16, 0), "remark": "重复注册", "_scope": True, "_deleted": False},
    ],
    "membership": [
        {"id": 1, "volunteer_id": 5, "org_id": 3, "joined_on": dt.date(2024, 3, 1), "left_on": None,
         "_scope": True, "_deleted": False},
        {"id": 2, "volunteer_id": 6, "org_id": 1, "joined_on": dt.date(2024, 1, 1), "left_on": dt.date(2024, 2, 29),
         "_scope": True, "_deleted": False},
    ],
    "activity": [
        {"id": 11, "org_id": 3, "title": "社区清洁", "category": "ENVIRONMENT", "region_code": "230102",
         "starts_at": dt.datetime(2024, 3, 2, 0, 0), "ends_at": dt.datetime(2024, 3, 2, 3, 30),
         "planned_headcount": 20, "status": "COMPLETED", "_scope": True, "_deleted": False},
    ],
    "service_record": [
        {"id": 1, "volunteer_id": 5, "activity_id": 11, "org_id": 3, "service_date": dt.date(2024, 3, 2),
         "starts_at": dt.datetime(2024, 3, 2, 0, 0), "ends_at": dt.datetime(2024, 3, 2, 3, 30), "hours": 350,
         "status": "ACCEPTED", "revoke_reason": None, "_scope": True, "_deleted": False},
        {"id": 2, "volunteer_id": 5, "activity_id": None, "org_id": 3, "service_date": dt.date(2024, 3, 2),
         "starts_at": dt.datetime(2024, 3, 1, 23, 50), "ends_at": dt.datetime(2024, 3, 2, 3, 30), "hours": 148,
         "status": "REVOKED", "revoke_reason": "录入错误", "_scope": True, "_deleted": False},
    ],
}


def test_the_legacy_mapping_loads_and_names_the_legacy_columns() -> None:
    mapping = load_mapping("legacy")
    assert (ROOT / "config" / "mappings" / "legacy.toml").resolve() == \
        (ROOT / "src" / "regsync" / "db" / "mapping" / "builtin" / "legacy.toml").resolve()
    md = legacy_metadata()
    codec = Codec(mapping)
    for kind in CANONICAL:
        km = mapping.kinds[kind]  # type: ignore[index]
        assert km.table == TABLES[kind]
        columns = set(md.tables[km.table].c.keys())
        assert set(codec.columns(kind)) | set(km.defaults) <= columns, kind
        # the required columns without a server default are mapped or defaulted, so regsync can insert a row
        required = {c.name for c in md.tables[km.table].c if not c.nullable and c.server_default is None
                    and not (c.primary_key and km.key_type == "integer")}
        if km.insert:
            assert required <= set(codec.columns(kind)) | set(km.defaults), (kind, required)
    # every kind of option is used at least once
    fields = [(kind, fm) for kind, km in mapping.kinds.items() for fm in km.fields.values()]
    assert {fm.format for _k, fm in fields} >= {"date", "YYYY-MM-DD", "YYYYMMDD", "epoch_ms", "YYYY-MM-DD HH:MM:SS"}
    assert any(fm.tz == "+08:00" for _k, fm in fields) and any(fm.unit == "minutes" for _k, fm in fields)
    assert any(fm.write_values for _k, fm in fields) and any(not fm.write for _k, fm in fields)
    assert any(fm.const is not None for _k, fm in fields) and any(fm.ref_column for _k, fm in fields)
    assert {fm.list_format for _k, fm in fields} >= {"|", ","}
    assert {k for k, km in mapping.kinds.items() if km.soft_delete} == {"org", "volunteer", "activity", "training",
                                                                      "commendation"}
    assert all(mapping.kinds[k].scope for k in ("org", "volunteer", "activity"))  # type: ignore[index]
    assert not mapping.kinds["org"].insert and mapping.kinds["activity"].new_key  # type: ignore[index]
    assert mapping.kinds["volunteer"].defaults and mapping.kinds["service_record"].defaults  # type: ignore[index]


def test_legacy_rows_read_as_canonical_rows_on_each_engine(platform_db: PlatformDB) -> None:  # noqa: F811
    engine, d, schema = platform_db.engine, platform_db.dialect, platform_db.schema
    md = create_legacy(engine, schema)
    assert set(TABLES.values()) <= set(inspect(engine).get_table_names(schema=schema))
    key_md = MetaData(schema=schema)
    keys = Table("rk", key_md, Column("entity", String(24)), Column("local_id", BigInteger),
                 Column("key_value", String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql")),
                 mysql_charset="utf8mb4")
    key_md.create_all(engine)
    key_table = f"{schema}.rk" if schema else "rk"
    mapping = load_mapping("legacy").with_schema(schema or "")
    codec = Codec(mapping)
    with engine.begin() as conn:
        conn.execute(keys.insert(), [{"entity": e, "local_id": i, "key_value": k} for e, i, k in KEYS])
        for kind, rows in PLATFORM_ROWS.items():
            table = md.tables[mapping.kinds[kind].table]  # type: ignore[index]
            for row in rows:
                conn.execute(table.insert().values(**row))
    with engine.connect() as conn:
        for kind, expected in CANONICAL_ROWS.items():
            km = mapping.kinds[kind]  # type: ignore[index]
            exprs = sql.canonical_exprs(d, mapping, kind, "t", key_table=key_table)
            types = {"id": BigInteger(), **{f: RESULT_TYPES[CANONICAL[kind][f][0]] for f in km.fields},
                     "_scope": Boolean(), "_deleted": Boolean()}
            select_list = ", ".join(f"{expr} AS {sql.quote(d, name)}" for name, expr in exprs.items())
            query = text(f"SELECT {select_list}, {sql.in_scope_expr(d, mapping, kind, 't')} AS _scope, "
                         f"{sql.deleted_expr(d, mapping, kind, 't')} AS _deleted "
                         f"FROM {sql.table_sql(d, mapping, kind)} t ORDER BY t.{sql.quote(d, km.key)}"
                         ).columns(**types)
            got = [dict(r) for r in conn.execute(query).mappings()]
            no_warnings(conn)
            assert got == expected, kind
            # the codec reads the same rows the same way (the references it leaves to the db layer given)
            table = md.tables[km.table]
            raw = [dict(r) for r in conn.execute(select(table).order_by(table.c[km.key])).mappings()]
            for row, want in zip(raw, expected, strict=True):
                refs = {f: want[f] for f in km.fields if codec.is_lookup_ref(kind, f)}
                assert codec.to_canonical(kind, row, refs) == {f: want[f] for f in km.fields}, kind
                assert (codec.in_scope(kind, row), codec.is_deleted(kind, row)) == (want["_scope"], want["_deleted"])


def test_the_platform_stamps_gxsj_itself_and_drop_leaves_nothing(platform_db: PlatformDB) -> None:  # noqa: F811
    engine, schema = platform_db.engine, platform_db.schema
    md = create_legacy(engine, schema)
    org = md.tables[f"{schema}.zyz_zzxx" if schema else "zyz_zzxx"]
    old = dt.datetime(2000, 1, 1)
    with engine.begin() as conn:
        conn.execute(org.insert().values(zzdm="2301", zzmc="总队", zzlx="1", zzjb="11", xzqhdm="230100"))
        conn.execute(update(org).values(gxsj=old))
    with engine.begin() as conn:
        assert conn.execute(select(org.c.gxsj)).scalar_one() == old  # setting it explicitly keeps it on SQLite
        conn.execute(update(org).values(zzmc="哈尔滨市志愿服务总队"))
        assert conn.execute(select(org.c.gxsj)).scalar_one() > old
    drop_legacy(engine, schema)
    assert not set(TABLES.values()) & set(inspect(engine).get_table_names(schema=schema))
    if platform_db.dialect == "postgresql":
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'zyz_gxsj' AND n.nspname = COALESCE(:s, current_schema())"),
                {"s": schema}).scalar() == 0
