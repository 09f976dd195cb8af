"""A provincial platform regsync has never seen (its mapping: ``xprov.toml`` beside this file): its tables as the
province made them, created in a schema (PostgreSQL), a database (MariaDB) or the store's own file (SQLite), and
rows written in its own forms with plain SQL, as the platform's programs write them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)

MAPPING = str(Path(__file__).with_name("xprov.toml"))


def metadata(schema: str | None) -> MetaData:
    """The platform's tables (in ``schema``, or the connection's default)."""
    md = MetaData(schema=schema)
    Table("jg", md,  # 组织
          Column("jgbm", String(20), primary_key=True),  # 机构编码
          Column("mc", String(100), nullable=False),
          Column("lx", String(1), nullable=False),
          Column("jb", String(2), nullable=False),
          Column("sjbm", String(20)), Column("zdbm", String(20)),
          Column("xydm", String(18)), Column("qh", String(6), nullable=False), Column("jd", String(12)),
          Column("fwlb", String(200), nullable=False, server_default=""),
          Column("lxr", String(50)), Column("lxdh", String(20)), Column("clrq", String(10)),
          Column("zt", String(1), nullable=False, server_default="1"),
          Column("scbj", Integer, nullable=False, server_default="0"),
          Column("gxsj", DateTime, server_default=func.current_timestamp()))
    Table("ry", md,  # 人员
          Column("rid", Integer, primary_key=True, autoincrement=True),
          Column("xm", String(50), nullable=False), Column("zjlx", String(2), nullable=False),
          Column("zjhm", String(30), nullable=False), Column("xb", String(1)), Column("csrq", String(8)),
          Column("sjhm", String(20)), Column("qh", String(6), nullable=False), Column("tc", Text),
          Column("zt", String(1), nullable=False, server_default="A"), Column("zcsj", BigInteger, nullable=False),
          Column("cs", Integer, nullable=False, server_default="0"),  # 测试数据
          Column("ly", String(8), nullable=False),  # 来源: required, unmapped
          Column("bz", String(200)))  # 备注: unmapped
    Table("cy", md,  # 成员
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("rid", Integer, nullable=False), Column("jgbm", String(20), nullable=False),
          Column("jrrq", Date, nullable=False), Column("tcrq", Date))
    Table("hd", md,  # 活动
          Column("hdid", Integer, primary_key=True, autoincrement=True),
          Column("jgbm", String(20), nullable=False), Column("bt", String(100), nullable=False),
          Column("lb", String(32), nullable=False), Column("qh", String(6), nullable=False),
          Column("kssj", DateTime, nullable=False), Column("jssj", DateTime, nullable=False),
          Column("rs", Integer, nullable=False), Column("zt", String(1), nullable=False, server_default="P"))
    Table("jl", md,  # 服务记录
          Column("jlid", Integer, primary_key=True, autoincrement=True),
          Column("rid", Integer, nullable=False), Column("hdid", Integer, nullable=False),
          Column("jgbm", String(20), nullable=False), Column("fwrq", Date, nullable=False),
          Column("kssj", String(19), nullable=False), Column("jssj", String(19), nullable=False),
          Column("fzs", Integer, nullable=False), Column("zt", String(1), nullable=False, server_default="Y"),
          Column("cxyy", String(200)))
    return md


def namesakes(schema: str | None) -> MetaData:
    """Tables of the platform's own that have the names of regsync's tables and views without a prefix (its audit
    log, its volunteer and activity tables of another system…): on SQLite, in the file regsync's tables share, they
    must be left alone, and regsync's objects take ``database.table_prefix``."""
    md = MetaData(schema=schema)
    for name in ("outbox", "link", "run", "audit", "conflict", "store_meta", "alembic_version", "volunteer",
                 "organization", "activity"):
        Table(name, md, Column("platform_row", Integer, primary_key=True), Column("note", String(40)))
    return md


def q(schema: str | None, table: str) -> str:
    """A platform table's name as plain SQL names it."""
    return f"{schema}.{table}" if schema else table


def insert(conn: Connection, schema: str | None, table: str, **row: Any) -> None:
    cols = ", ".join(row)
    vals = ", ".join(f":{k}" for k in row)
    conn.execute(text(f"INSERT INTO {q(schema, table)} ({cols}) VALUES ({vals})"), row)


def last_id(conn: Connection, schema: str | None, table: str, key: str) -> int:
    return int(conn.execute(text(f"SELECT MAX({key}) FROM {q(schema, table)}")).scalar_one())


def epoch_ms(when: dt.datetime) -> int:
    """Epoch milliseconds of a time in +08:00."""
    return int(when.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def world(conn: Connection, schema: str | None, id_number: str, uscc: str) -> dict[str, Any]:
    """Two orgs (a city corps and a district brigade under it), a volunteer, a membership, an activity and a
    service record of 150 minutes, in the platform's own forms."""
    insert(conn, schema, "jg", jgbm="X2301", mc="某市志愿服务总队", lx="R", jb="L2", qh="230100",
           xydm=uscc, fwlb="COMMUNITY;ELDERLY_DISABLED", lxr="王芳", lxdh="13900001111", clrq="2015-03-01", zt="1", scbj=0)
    insert(conn, schema, "jg", jgbm="X230102", mc="某区志愿服务大队", lx="R", jb="L3", sjbm="X2301", qh="230102",
           fwlb="COMMUNITY", lxr="张强", lxdh="13900002222", clrq="2016-07-09", zt="1", scbj=0)
    insert(conn, schema, "ry", xm="李明", zjlx="01", zjhm=id_number, xb="1", csrq="19900101", sjhm="13912345678",
           qh="230102", tc=json.dumps(["急救"], ensure_ascii=False), zt="A",
           zcsj=epoch_ms(dt.datetime(2020, 1, 1, 8, 0)), cs=0, ly="WEB")
    rid = last_id(conn, schema, "ry", "rid")
    insert(conn, schema, "cy", rid=rid, jgbm="X230102", jrrq=dt.date(2024, 1, 1))
    insert(conn, schema, "hd", jgbm="X230102", bt="社区环境清洁活动", lb="ENVIRONMENT", qh="230102",
           kssj=dt.datetime(2026, 5, 1, 8, 0), jssj=dt.datetime(2026, 5, 3, 18, 0), rs=20, zt="P")
    hdid = last_id(conn, schema, "hd", "hdid")
    insert(conn, schema, "jl", rid=rid, hdid=hdid, jgbm="X230102", fwrq=dt.date(2026, 5, 1),
           kssj="2026-05-01 09:00:00", jssj="2026-05-01 11:30:00", fzs=150, zt="Y")
    return {"rid": rid, "hdid": hdid, "jlid": last_id(conn, schema, "jl", "jlid")}
