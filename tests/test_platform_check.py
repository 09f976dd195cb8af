"""`regsync platform check` (issue 14, items 3, 4 and 6): a platform schema the check has never seen (a made-up
province's `tbl_person` and friends, its own codes, text dates, a soft-delete flag, a scope flag), first clean, then
with dirt; each expected finding with its count, on SQLite, PostgreSQL and MariaDB, through the function and
through the command (`--json`, exit codes). And the reference schema of a migrated store has no error.

MariaDB: each test gets a private database `t_<hex>` (dropped after); a shared fixture for it is being added to
conftest.py by the MariaDB work, after which this local one can go.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from factories import TEST_HASH_KEY
from myutil import _MY, MY_URL, my_database_url
from pgutil import _PG, PG_URL, drop_pg_schema, make_pg_schema_engine
from regsync.console.cli import app
from regsync.db.mapping.check import CODES, check_platform, engine_name
from regsync.db.mapping.load import load_mapping
from regsync.db.session import make_engine
from regsync.settings import ConfigError, load_settings


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def platform_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for a platform's tables: a SQLite file, a private PostgreSQL schema (the connection's
    default through search_path), or a private MariaDB database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'platform.db'}"
    elif request.param == "postgresql":
        if not _PG:
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}")
        engine, schema = make_pg_schema_engine(PG_URL)
        engine.dispose()
        yield f"{PG_URL}?options=-csearch_path%3D{schema}%20-ctimezone%3DUTC"
        drop_pg_schema(PG_URL, schema)
    else:
        if not _MY:
            pytest.fail(f"MariaDB is not reachable at {MY_URL}")
        name = "t_" + secrets.token_hex(6)
        admin = create_engine(MY_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        try:
            yield my_database_url(name)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            admin.dispose()


def _ddl(dialect: str, dirty: bool) -> list[str]:
    """The made-up platform's tables. Dirty: an organization's name column too short for the registry, a person's
    name in utf8mb3 and an organization's remark in latin1 (MariaDB), and a table of its own called `outbox`."""
    ts = "TIMESTAMP" if dialect == "postgresql" else "DATETIME"
    name_len = 60 if dirty else 120
    utf8mb3 = " CHARACTER SET utf8mb3" if dirty and dialect == "mysql" else ""
    latin1 = " CHARACTER SET latin1" if dirty and dialect == "mysql" else ""
    stmts = [
        f"""CREATE TABLE tbl_org (
            org_code VARCHAR(20) NOT NULL PRIMARY KEY, org_nm VARCHAR({name_len}) NOT NULL, org_lx CHAR(1) NOT NULL,
            org_jb VARCHAR(2) NOT NULL, sj_code VARCHAR(20), zd_code VARCHAR(20), xzqh VARCHAR(6) NOT NULL,
            fwlb VARCHAR(200) NOT NULL, clrq CHAR(8), zt CHAR(1) NOT NULL, sfsc CHAR(1) DEFAULT '0',
            bz VARCHAR(200){latin1})""",
        f"""CREATE TABLE tbl_person (
            person_no VARCHAR(20) NOT NULL PRIMARY KEY, xm VARCHAR(60){utf8mb3} NOT NULL, zjlx VARCHAR(2) NOT NULL,
            zjhm VARCHAR(18) NOT NULL, xb CHAR(1), csrq VARCHAR(10), sjhm VARCHAR(11), xzqh VARCHAR(6) NOT NULL,
            tc TEXT, zt CHAR(1) NOT NULL, zcsj VARCHAR(19) NOT NULL, bz VARCHAR(200),
            sfcs CHAR(1) DEFAULT '0' NOT NULL, sfsc CHAR(1) DEFAULT '0', cjr VARCHAR(20) NOT NULL)""",
        """CREATE TABLE tbl_member (
            id INTEGER NOT NULL PRIMARY KEY, person_no VARCHAR(20) NOT NULL, org_code VARCHAR(20) NOT NULL,
            rhrq CHAR(8) NOT NULL, tcrq CHAR(8))""",
        """CREATE TABLE tbl_activity (
            act_id INTEGER NOT NULL PRIMARY KEY, org_code VARCHAR(20) NOT NULL, hdmc VARCHAR(120) NOT NULL,
            hdlb VARCHAR(4) NOT NULL, xzqh VARCHAR(6) NOT NULL, kssj BIGINT NOT NULL, jssj BIGINT NOT NULL,
            zmrs INTEGER NOT NULL, zt CHAR(1) NOT NULL)""",
        f"""CREATE TABLE tbl_service (
            rec_id INTEGER, person_no VARCHAR(20) NOT NULL, act_id INTEGER NOT NULL, org_code VARCHAR(20) NOT NULL,
            fwrq DATE NOT NULL, kssj {ts} NOT NULL, jssj {ts} NOT NULL, fwsc INTEGER NOT NULL, zt CHAR(1) NOT NULL)""",
    ]
    if dirty:
        # where regsync's own tables go: on SQLite the platform's file, where they take database.table_prefix
        taken = "regsync_outbox" if dialect == "sqlite" else "outbox"
        stmts.append(f"CREATE TABLE {taken} (id INTEGER NOT NULL PRIMARY KEY, payload TEXT)")
    return stmts


def _person(no: str, **over: Any) -> dict[str, Any]:
    row = {"person_no": no, "xm": "张三", "zjlx": "01", "zjhm": "230102199001011234", "xb": "1",
           "csrq": "1990-01-01", "sjhm": "13912345678", "xzqh": "230102", "tc": '["急救"]', "zt": "1",
           "zcsj": "2020-01-02 03:04:05", "bz": None, "sfcs": "0", "sfsc": "0", "cjr": "admin"}
    return row | over


def _service(rec_id: int | None, **over: Any) -> dict[str, Any]:
    row = {"rec_id": rec_id, "person_no": "P001", "act_id": 1, "org_code": "HLJ0002", "fwrq": "2023-11-15",
           "kssj": "2023-11-15 08:00:00", "jssj": "2023-11-15 10:00:00", "fwsc": 120, "zt": "1"}
    return row | over


def _rows(dirty: bool) -> dict[str, list[dict[str, Any]]]:
    org = {"sj_code": None, "zd_code": None, "clrq": "20150301", "zt": "1", "sfsc": "0", "bz": None}
    rows: dict[str, list[dict[str, Any]]] = {
        "tbl_org": [
            org | {"org_code": "HLJ0001", "org_nm": "某市志愿服务总队", "org_lx": "R", "org_jb": "01",
                   "xzqh": "230100", "fwlb": "COMMUNITY,EDUCATION"},
            org | {"org_code": "HLJ0002", "org_nm": "某区志愿服务大队", "org_lx": "R", "org_jb": "02",
                   "sj_code": "HLJ0001", "xzqh": "230102", "fwlb": "COMMUNITY"},
        ],
        "tbl_person": [
            _person("P001"),
            _person("P002", xm="李四", xb="2", zjhm="230102199202021246"),
            _person("P003", sfcs="1"),  # a test row: out of scope
        ],
        "tbl_member": [
            {"id": 1, "person_no": "P001", "org_code": "HLJ0001", "rhrq": "20200101", "tcrq": None},
            {"id": 2, "person_no": "P002", "org_code": "HLJ0002", "rhrq": "20200101", "tcrq": "20211231"},
        ],
        "tbl_activity": [
            {"act_id": 1, "org_code": "HLJ0002", "hdmc": "清洁社区", "hdlb": "SQ", "xzqh": "230102",
             "kssj": 1700000000000, "jssj": 1700007200000, "zmrs": 20, "zt": "1"},
        ],
        "tbl_service": [_service(1), _service(2, person_no="P002")],
    }
    if dirty:
        rows["tbl_person"] += [
            _person("P010", xb="9"), _person("P011", xb="9"),   # an unmapped gender code, twice
            _person("P012", xb="7", csrq="19900501", sfcs="1"),  # out of scope: not counted
            _person("P013", xb="8", csrq="19900501", sfsc="1"),  # soft-deleted: not counted
            _person("P014", csrq="1990/05/01"),                  # malformed text dates
            _person("P015", csrq="1990-13-01"),
            _person("P016", sfsc="X"),                           # neither deleted nor active
        ]
        rows["tbl_member"].append({"id": 3, "person_no": "P001", "org_code": "NOPE01", "rhrq": "20200101",
                                   "tcrq": None})                 # a dangling org code
        rows["tbl_service"] += [_service(7), _service(7), _service(None)]  # a repeated and a missing key
    return rows


MAPPING = """
name = "fictional"
description = "A made-up province's platform (tests/test_platform_check.py)"

[kinds.org]
table = "tbl_org"
key = "org_code"
key_type = "string"
insert = false
soft_delete = { column = "sfsc", deleted = ["1"], active = "0" }

[kinds.org.fields]
name = { column = "org_nm" }
org_type = { column = "org_lx", values = { R = "REGIONAL", S = "SPECIALIZED" } }
parent_id = { column = "sj_code", ref_column = "org_code" }
station_id = { column = "zd_code", ref_column = "org_code" }
region_code = { column = "xzqh" }
service_categories = { column = "fwlb", list = "," }
established_on = { column = "clrq", format = "YYYYMMDD" }
status = { column = "zt", values = { "1" = "ACTIVE", "2" = "SUSPENDED", "9" = "DISSOLVED" } }
remark = { column = "bz", write = false }

[kinds.org.fields.level]
column = "org_jb"
[kinds.org.fields.level.values]
"01" = "CITY_CORPS"
"02" = "DISTRICT_BRIGADE"
"03" = "STREET_STATION"
"04" = "COMMUNITY_STATION"
"05" = "PROVINCIAL_CORPS"
"06" = "CITY_DETACHMENT"
"07" = "COUNTY_UNIT"
"08" = "GRASSROOTS_TEAM"

[kinds.volunteer]
table = "tbl_person"
key = "person_no"
key_type = "string"
new_key = "RS{registry_id}"
scope = [{ column = "sfcs", not_in = ["1"] }]
soft_delete = { column = "sfsc", deleted = ["1"], active = "0" }
defaults = { cjr = "regsync" }

[kinds.volunteer.fields]
name = { column = "xm" }
id_number = { column = "zjhm" }
gender = { column = "xb", values = { "1" = "M", "2" = "F" } }
birth_date = { column = "csrq", format = "YYYY-MM-DD" }
phone = { column = "sjhm" }
region_code = { column = "xzqh" }
skills = { column = "tc", list = "json" }
home_province = { const = "23" }
status = { column = "zt", values = { "1" = "ACTIVE", "0" = "DEREGISTERED" } }
registered_at = { column = "zcsj", format = "YYYY-MM-DD HH:MM:SS" }
remark = { column = "bz", write = false }

[kinds.volunteer.fields.id_type]
column = "zjlx"
values = { "01" = "RESIDENT_ID", "02" = "HMT_RESIDENCE_PERMIT", "03" = "HMT_TRAVEL_PERMIT", "04" = "PASSPORT" }

[kinds.membership]
table = "tbl_member"
key = "id"

[kinds.membership.fields]
volunteer_id = { column = "person_no" }
org_id = { column = "org_code" }
joined_on = { column = "rhrq", format = "YYYYMMDD" }
left_on = { column = "tcrq", format = "YYYYMMDD" }

[kinds.activity]
table = "tbl_activity"
key = "act_id"
insert = false

[kinds.activity.fields]
org_id = { column = "org_code" }
title = { column = "hdmc" }
category = { column = "hdlb", values = { SQ = "COMMUNITY", HJ = "ENVIRONMENT", QT = "OTHER" } }
region_code = { column = "xzqh" }
starts_at = { column = "kssj", format = "epoch_ms" }
ends_at = { column = "jssj", format = "epoch_ms" }
planned_headcount = { column = "zmrs" }
status = { column = "zt", values = { "1" = "PUBLISHED", "2" = "CANCELLED", "3" = "COMPLETED" } }

[kinds.service_record]
table = "tbl_service"
key = "rec_id"
insert = false

[kinds.service_record.fields]
volunteer_id = { column = "person_no" }
activity_id = { column = "act_id" }
org_id = { column = "org_code" }
service_date = { column = "fwrq", format = "date" }
starts_at = { column = "kssj" }
ends_at = { column = "jssj" }
hours = { column = "fwsc", unit = "minutes" }
status = { column = "zt", values = { "1" = "ACCEPTED", "0" = "REVOKED" } }
"""

#: The dirty mapping: a column that does not exist, a scope value an integer column never holds, hours read as
#: decimal hours from an integer column, and the default of a required column dropped.
DIRTY_MAPPING = (MAPPING.replace('region_code = { column = "xzqh" }\nstarts_at',
                                 'region_code = { column = "area_code" }\nstarts_at')
                 .replace('key = "act_id"\n', 'key = "act_id"\nscope = [{ column = "zmrs", not_in = ["n/a"] }]\n')
                 .replace('unit = "minutes"', 'unit = "decimal_hours"')
                 .replace('defaults = { cjr = "regsync" }\n', ""))


def _platform(url: str, tmp_path: Path, dirty: bool) -> tuple[Engine, str]:
    """The made-up platform at ``url`` (clean or dirty) and its mapping's file."""
    engine = make_engine(url, table_prefix="regsync_" if url.startswith("sqlite") else "")
    with engine.begin() as conn:
        for stmt in _ddl(engine.dialect.name, dirty):
            conn.execute(text(stmt))
        for table, rows in _rows(dirty).items():
            cols = list(rows[0])
            conn.execute(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"),
                         rows)
    path = tmp_path / ("dirty.toml" if dirty else "clean.toml")
    path.write_text(DIRTY_MAPPING if dirty else MAPPING, encoding="utf-8")
    return engine, str(path)


def _settings_take(url: str) -> bool:
    """Whether the settings accept ``url`` as ``database.url`` (MySQL/MariaDB: once the MariaDB store is in)."""
    try:
        load_settings(environ={"REGSYNC_DATABASE_URL": url, "REGSYNC_HASH_KEY": TEST_HASH_KEY})
    except ConfigError:
        return False
    return True


def _cli(url: str, mapping: str, *extra: str) -> Any:
    return CliRunner().invoke(app, ["platform", "check", "--mapping", mapping, *extra],
                              env={"REGSYNC_DATABASE_URL": url, "REGSYNC_LOG_LEVEL": "WARNING"})


def _by_code(findings: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in findings:
        assert (f["severity"], f["code"], f["key"]) not in out, f  # one finding per code and key here
        out[(f["severity"], f["code"], f["key"])] = f
    return out


def test_the_clean_platform_has_no_error_nor_warning(platform_url: str, tmp_path: Path) -> None:
    engine, mapping = _platform(platform_url, tmp_path, dirty=False)
    try:
        report = check_platform(engine, load_mapping(mapping), file=mapping)
    finally:
        engine.dispose()
    assert [f for f in report.findings if f.severity != "info"] == []
    assert report.errors == report.warnings == 0
    infos = {f.code for f in report.findings}
    # MariaDB's default collation folds case: said, as information only, on the columns that are compared; and the
    # v1.1 kinds this platform does not keep are said to be left out (optional in a mapping)
    assert infos == ({"CASE_INSENSITIVE_COLLATION"} if report.engine == "mariadb" else set()) | {"KIND_NOT_MAPPED"}
    assert sorted(f.kind or "" for f in report.findings if f.code == "KIND_NOT_MAPPED") == [
        "commendation", "evaluation", "training", "training_record"]


def test_the_dirty_platform_gives_each_finding_with_its_count(platform_url: str, tmp_path: Path) -> None:
    engine, mapping = _platform(platform_url, tmp_path, dirty=True)
    try:
        report = check_platform(engine, load_mapping(mapping), file=mapping)
        dialect = engine.dialect.name
    finally:
        engine.dispose()
    found = _by_code([f.as_dict() for f in report.findings if f.severity != "info"])
    taken_key = "database.table_prefix" if dialect == "sqlite" else "database.url"
    expected = {
        ("error", "UNMAPPED_CODE", "kinds.volunteer.fields.gender"): 2,       # P012 out of scope, P013 deleted
        ("error", "BAD_FORMAT", "kinds.volunteer.fields.birth_date"): 2,
        ("warning", "UNMAPPED_SOFT_DELETE", "kinds.volunteer.soft_delete"): 1,
        ("error", "REQUIRED_COLUMN_UNMAPPED", "kinds.volunteer.defaults"): None,
        ("warning", "DANGLING_REF", "kinds.membership.fields.org_id"): 1,
        ("error", "MISSING_COLUMN", "kinds.activity.fields.region_code"): None,
        ("error", "UNREADABLE_TYPE", "kinds.activity.scope.0"): None,         # not a statement that fails
        ("error", "UNREADABLE_TYPE", "kinds.service_record.fields.hours"): None,
        ("error", "KEY_NOT_UNIQUE", "kinds.service_record.key"): 2,
        ("error", "KEY_NULL", "kinds.service_record.key"): 1,
        ("error", "NAME_TAKEN", taken_key): None,
    }
    if dialect != "sqlite":  # SQLite does not hold a column to its length
        expected[("warning", "TOO_SHORT", "kinds.org.fields.name")] = None
    if dialect == "mysql":
        expected[("error", "CHARSET", "kinds.volunteer.fields.name")] = None     # written back: blocks
        expected[("warning", "CHARSET", "kinds.org.fields.remark")] = None      # never written: does not
    assert {k: f["count"] for k, f in found.items()} == expected
    assert all(f.code in CODES for f in report.findings)
    assert report.errors == sum(1 for k in expected if k[0] == "error")

    gender = found[("error", "UNMAPPED_CODE", "kinds.volunteer.fields.gender")]
    assert (gender["table"], gender["column"], gender["samples"]) == ("tbl_person", "xb", ["9"])
    dates = found[("error", "BAD_FORMAT", "kinds.volunteer.fields.birth_date")]
    assert dates["samples"] == ["9999-99-99", "9999/99/99"]  # a birth date is personal: only its shape is shown
    assert "1990/05/01" not in json.dumps(report.as_dict())
    assert found[("warning", "UNMAPPED_SOFT_DELETE", "kinds.volunteer.soft_delete")]["samples"] == ["X"]
    assert found[("warning", "DANGLING_REF", "kinds.membership.fields.org_id")]["samples"] == ["NOPE01"]
    assert found[("error", "REQUIRED_COLUMN_UNMAPPED", "kinds.volunteer.defaults")]["column"] == "cjr"
    assert found[("error", "MISSING_COLUMN", "kinds.activity.fields.region_code")]["column"] == "area_code"
    assert found[("error", "KEY_NOT_UNIQUE", "kinds.service_record.key")]["samples"] == ["7"]
    assert found[("error", "NAME_TAKEN", taken_key)]["table"].endswith("outbox")
    if dialect == "mysql":
        folded = next(f for f in report.findings if f.code == "CASE_INSENSITIVE_COLLATION" and f.kind == "volunteer")
        assert folded.severity == "info" and "person_no" in (folded.column or "")


def test_the_command_prints_the_json_and_exits_by_the_errors(platform_url: str, tmp_path: Path) -> None:
    if not _settings_take(platform_url):
        pytest.skip("database.url refuses mysql:// until the MariaDB store (branch i14/mariadb) is merged")
    engine, clean = _platform(platform_url, tmp_path, dirty=False)
    try:
        res = _cli(platform_url, clean, "--json")
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout)  # stdout holds only the JSON
        assert (data["mapping"], data["file"], data["errors"], data["warnings"]) == ("fictional", clean, 0, 0)
        assert data["engine"] == engine_name(engine)
        with engine.begin() as conn:  # dirt: an unmapped gender code
            conn.execute(text("INSERT INTO tbl_person (person_no, xm, zjlx, zjhm, xb, xzqh, zt, zcsj, cjr) "
                              "VALUES ('P099', 'X', '01', '230102199001011234', '9', '230102', '1', "
                              "'2020-01-02 03:04:05', 'admin')"))
        res = _cli(platform_url, clean, "--json")
        assert res.exit_code == 1, res.output
        data = json.loads(res.stdout)
        [f] = [f for f in data["findings"] if f["severity"] != "info"]
        assert (f["code"], f["key"], f["count"], f["samples"], data["errors"]) == (
            "UNMAPPED_CODE", "kinds.volunteer.fields.gender", 1, ["9"], 1)
    finally:
        engine.dispose()


def test_the_table_and_summary_line_for_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine, mapping = _platform(url, tmp_path, dirty=True)
    engine.dispose()
    res = _cli(url, mapping)
    assert res.exit_code == 1
    for words in ("volunteer (tbl_person)", "UNMAPPED_CODE", "kinds.volunteer.fields.gender", "9999/99/99",
                  "where regsync's own tables go", "NAME_TAKEN", "platform install would refuse"):
        assert words in res.stdout, words


def test_a_missing_table_and_a_bad_mapping(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine, mapping = _platform(url, tmp_path, dirty=False)
    try:
        moved = tmp_path / "moved.toml"
        moved.write_text(MAPPING.replace('table = "tbl_member"', 'table = "tbl_members"'), encoding="utf-8")
        report = check_platform(engine, load_mapping(str(moved)))
    finally:
        engine.dispose()
    [missing] = [f for f in report.findings if f.severity == "error"]
    assert (missing.code, missing.key, missing.table) == ("MISSING_TABLE", "kinds.membership.table", "tbl_members")
    assert "did you mean tbl_member?" in missing.message

    bad = tmp_path / "bad.toml"
    bad.write_text(MAPPING.replace('gender = { column = "xb",', 'gender = { column = "xb", unit = "minutes",'),
                   encoding="utf-8")
    res = _cli(url, str(bad), "--json")
    assert res.exit_code == 2 and res.stdout == ""
    assert str(bad) in res.stderr and "kinds.volunteer.fields.gender.unit" in res.stderr
    res = _cli(f"sqlite:///{tmp_path / 'nowhere.db'}", mapping, "--json")
    assert res.exit_code == 2 and "no database at" in res.stderr
    assert not (tmp_path / "nowhere.db").exists()


def test_the_reference_schema_of_a_migrated_store_has_no_error(engine: Engine) -> None:
    report = check_platform(engine, load_mapping("reference"))
    assert [f for f in report.findings if f.severity != "info"] == []
