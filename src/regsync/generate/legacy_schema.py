"""The ``legacy`` platform: tables shaped like a long-lived provincial platform (issue 14, item 5), on SQLite,
PostgreSQL (in a schema the caller names) and MySQL/MariaDB (in a database the caller names).

Its mapping is ``config/mappings/legacy.toml`` (:mod:`regsync.db.mapping`); regsync has never seen these tables
otherwise. What makes them "legacy", on purpose:

* its own names: pinyin abbreviations (``zyz_jbxx`` 志愿者基本信息, ``xm`` 姓名, ``zjhm`` 证件号码…), each column
  commented with what it holds (``COMMENT`` on PostgreSQL and MySQL);
* string keys for some kinds (orgs by their org code ``zzdm``, activities by their number ``hdbh``), integer keys
  for the others;
* codes instead of words: gender by GB/T 2261.1 (``1`` male, ``2`` female, also ``0`` unknown and ``9`` not
  stated, which no registry value matches), statuses as numbers (orgs, activities, service records) or letters
  (volunteers, where rows from before a migration still say ``1``), document types, org levels and activity
  categories as the platform's own two-digit codes, org type ``1``/``2``;
* a soft-delete flag ``scbz`` (``'1'`` deleted) on orgs, volunteers and activities, and a test-row flag ``sfcs``
  (``'1'``: a row entered for testing, out of scope);
* dates as text (``csrq`` ``YYYYMMDD``; ``jrrq``/``tcrq`` ``YYYY-MM-DD``), as epoch milliseconds (``clrq``), or as
  ``DATE`` (``fwrq``); times as text ``YYYY-MM-DD HH:MM:SS`` in +08:00 (``zcsj``), as ``DATETIME`` in +08:00
  (activities' ``kssj``/``jssj``), or as epoch milliseconds (service records' ``kssj``/``jssj``);
* service hours in whole minutes (``fwsc``); a volunteer's running total as decimal hours (``ljfwsc``, the
  platform's own figure: not mapped, the registry keeps its own total);
* lists as separated text: skills with ``|``, service categories with ``,``;
* orgs referring to their parent and a team to its community station by org code, memberships and service
  records to their org by org code, service records to their activity by its number;
* required columns the mapping does not map (``ly`` 数据来源, ``lrfs`` 录入方式), which regsync fills from the
  mapping's ``defaults`` when it inserts a row;
* created/updated columns ``cjsj``/``gxsj`` that the platform maintains itself: a server default, and ``gxsj``
  moved on every update (``ON UPDATE CURRENT_TIMESTAMP`` on MySQL; on SQLite and PostgreSQL a trigger of the
  platform's own, named ``<table>_gxsj``, which regsync's triggers must live beside). They hold the server's
  clock in the server's zone and are not mapped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)

__all__ = ["OWN_VALUES", "TABLES", "create_legacy", "drop_legacy", "legacy_metadata"]

#: Each kind's table on the legacy platform.
TABLES: dict[str, str] = {"org": "zyz_zzxx", "volunteer": "zyz_jbxx", "membership": "zyz_zzcy",
                          "activity": "zyz_hdxx", "service_record": "zyz_fwjl", "training": "zyz_pxxx",
                          "training_record": "zyz_pxjl", "commendation": "zyz_jxxx", "evaluation": "zyz_pjxx"}

#: What the platform's own programs write in its required columns that the mapping does not map, by table: the
#: generator's rows are the platform's own (``ly`` 1 平台注册, ``lrfs`` 1 组织录入), where the mapping's ``defaults``
#: say what regsync writes for a record made in the registry (3 全国系统).
OWN_VALUES: dict[str, dict[str, str]] = {"zyz_jbxx": {"ly": "1"}, "zyz_fwjl": {"lrfs": "1"}, "zyz_pxjl": {"lrfs": "1"},
                                         "zyz_jxxx": {"ly": "1"}}

#: Each kind's key column.
_KEYS: dict[str, str] = {"org": "zzdm", "volunteer": "zyzid", "membership": "cyid", "activity": "hdbh",
                         "service_record": "jlid", "training": "pxid", "training_record": "pxjlid",
                         "commendation": "jxid", "evaluation": "pjid"}
#: The PostgreSQL function of the platform's own ``gxsj`` triggers.
_PG_TOUCH = "zyz_gxsj"


def _flags() -> list[Column[Any]]:
    return [
        Column("scbz", String(1), nullable=False, server_default="0",
               comment="删除标志: 0 正常, 1 已删除 (soft delete)"),
        Column("sfcs", String(1), nullable=False, server_default="0",
               comment="是否测试数据: 1 测试数据 (test row)"),
    ]


def _stamps() -> list[Column[Any]]:
    return [
        Column("cjsj", DateTime, nullable=False, server_default=func.current_timestamp(),
               comment="创建时间 (row created; the server's clock)"),
        Column("gxsj", DateTime, nullable=False, server_default=func.current_timestamp(),
               comment="更新时间 (moved by the platform on every update)"),
    ]


def legacy_metadata(schema: str | None = None) -> MetaData:
    """The legacy platform's tables, in ``schema`` (a PostgreSQL schema, a MySQL/MariaDB database; ``None``: the
    connection's default, the only choice on SQLite), with the DDL of its own ``gxsj`` triggers attached.

    Returns:
        A new :class:`~sqlalchemy.MetaData` holding the nine tables of :data:`TABLES`.
    """
    md = MetaData(schema=schema)
    common: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
    Table(
        TABLES["org"], md,
        Column("zzdm", String(32), primary_key=True, comment="组织代码 (org code: the key)"),
        Column("zzmc", String(200), nullable=False, comment="组织名称 (name)"),
        Column("zzlx", String(1), nullable=False, comment="组织类型: 1 区域 (regional), 2 专项 (specialized)"),
        Column("zzjb", String(2), nullable=False,
               comment="组织层级: 11 市总队 12 区县大队 13 街道工作站 14 社区工作站; "
                       "21 省直总队 22 市支队 23 区县分队 24 基层服务队"),
        Column("sjzzdm", String(32), comment="上级组织代码 (parent's org code)"),
        Column("gzzdm", String(32), comment="所属社区工作站代码 (a team's community station, by org code)"),
        Column("tyxydm", String(32), comment="统一社会信用代码 (USCC, as entered: spaces and lowercase too)"),
        Column("xzqhdm", String(12), nullable=False, comment="行政区划代码 (GB/T 2260 region)"),
        Column("jddm", String(12), comment="街道代码 (12-digit statistical division code)"),
        Column("fwlb", String(200), comment="服务类别, comma-separated (registry-api.md §6 codes)"),
        Column("lxr", String(100), comment="联系人 (contact name)"),
        Column("lxdh", String(40), comment="联系电话 (contact phone)"),
        Column("clrq", BigInteger, comment="成立日期: epoch milliseconds of 00:00 +08:00 (established on)"),
        Column("zt", String(2), nullable=False, server_default="1", comment="状态: 1 正常 2 暂停 3 撤销"),
        Column("bz", Text, comment="备注 (remark)"),
        *_flags(), *_stamps(), **common,
        comment="志愿服务组织信息 (organizations, both lines)",
    )
    Table(
        TABLES["volunteer"], md,
        Column("zyzid", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True,
               comment="志愿者ID (the key)"),
        Column("xm", String(200), nullable=False, comment="姓名 (name)"),
        Column("zjlx", String(2), nullable=False, server_default="01",
               comment="证件类型: 01 居民身份证 02 港澳台居民居住证 03 港澳台居民来往内地通行证 "
                       "04 护照 05 外国人永久居留身份证"),
        Column("zjhm", String(64), nullable=False, index=True, comment="证件号码 (document number, as entered)"),
        Column("xb", String(1), comment="性别 (GB/T 2261.1): 0 未知 1 男 2 女 9 未说明"),
        Column("csrq", String(8), comment="出生日期 YYYYMMDD"),
        Column("sjhm", String(40), comment="手机号码 (mobile)"),
        Column("xzqhdm", String(12), nullable=False, comment="居住地行政区划代码 (region)"),
        Column("zytc", String(500), comment="志愿特长, |-separated (skills)"),
        Column("zt", String(1), nullable=False, server_default="A",
               comment="状态: A 正常 (1 in rows from before 2016), Z 注销"),
        Column("zcsj", String(19), nullable=False, comment="注册时间 YYYY-MM-DD HH:MM:SS, +08:00 (registered at)"),
        Column("ljfwsc", Numeric(10, 2), nullable=False, server_default="0",
               comment="累计服务时长, hours (the platform's own total)"),
        Column("ly", String(2), nullable=False, comment="数据来源: 1 平台注册 2 批量导入 3 全国系统 (no default)"),
        Column("bz", Text, comment="备注 (remark)"),
        *_flags(), *_stamps(), **common,
        comment="志愿者基本信息 (volunteers)",
    )
    Table(
        TABLES["membership"], md,
        Column("cyid", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True,
               comment="成员记录ID (the key)"),
        Column("zyzid", BigInteger, nullable=False, index=True, comment="志愿者ID"),
        Column("zzdm", String(32), nullable=False, index=True, comment="组织代码"),
        Column("jrrq", String(10), nullable=False, comment="加入日期 YYYY-MM-DD"),
        Column("tcrq", String(10), comment="退出日期 YYYY-MM-DD (left on)"),
        *_stamps(),
        UniqueConstraint("zyzid", "zzdm"), **common,
        comment="组织成员 (memberships)",
    )
    Table(
        TABLES["activity"], md,
        Column("hdbh", String(32), primary_key=True, comment="活动编号 (the key)"),
        Column("fbzzdm", String(32), nullable=False, index=True, comment="发布组织代码 (org, by org code)"),
        Column("hdmc", String(200), nullable=False, comment="活动名称 (title)"),
        Column("hdlb", String(2), nullable=False,
               comment="活动类别: 01 社区服务 02 扶贫减贫 03 扶老助残 04 关爱少年儿童 05 支教助学 "
                       "06 医疗卫生 07 应急救援 08 文化艺术 09 生态环保 10 法律服务 11 文明引导 "
                       "12 无偿献血 13 禁毒宣传 14 大型赛会 99 其他"),
        Column("xzqhdm", String(12), nullable=False, comment="行政区划代码"),
        Column("kssj", DateTime, nullable=False, comment="开始时间, +08:00"),
        Column("jssj", DateTime, nullable=False, comment="结束时间, +08:00"),
        Column("zmrs", Integer, nullable=False, comment="招募人数 (planned headcount)"),
        Column("hdzt", String(2), nullable=False, server_default="1", comment="活动状态: 1 已发布 2 已取消 3 已结项"),
        *_flags(), *_stamps(), **common,
        comment="活动信息 (activities)",
    )
    Table(
        TABLES["service_record"], md,
        Column("jlid", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True,
               comment="记录ID (the key)"),
        Column("zyzid", BigInteger, nullable=False, index=True, comment="志愿者ID"),
        Column("hdbh", String(32), nullable=False, index=True, comment="活动编号"),
        Column("zzdm", String(32), nullable=False, comment="记录组织代码 (the recording team, by org code)"),
        Column("fwrq", Date, nullable=False, comment="服务日期 (calendar date, +08:00)"),
        Column("kssj", BigInteger, nullable=False, comment="开始时间: epoch milliseconds"),
        Column("jssj", BigInteger, nullable=False, comment="结束时间: epoch milliseconds"),
        Column("fwsc", Integer, nullable=False, comment="服务时长, whole minutes"),
        Column("jlzt", String(1), nullable=False, server_default="1", comment="记录状态: 1 有效 0 已撤销"),
        Column("cxyy", String(200), comment="撤销原因 (revoke reason)"),
        Column("lrfs", String(2), nullable=False, comment="录入方式: 1 组织录入 2 扫码签到 3 全国系统 (no default)"),
        *_stamps(), **common,
        comment="志愿服务记录 (service records)",
    )
    _v11_tables(md, common)
    function = f'"{schema}".{_PG_TOUCH}' if schema else _PG_TOUCH
    for kind, name in TABLES.items():
        _attach_touch(md.tables[f"{schema}.{name}" if schema else name], _KEYS[kind], function)
    event.listen(md, "before_create", _ddl(
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.gxsj IS NOT DISTINCT FROM OLD.gxsj THEN NEW.gxsj := LOCALTIMESTAMP; END IF; RETURN NEW; "
        "END $$", "postgresql"))
    event.listen(md, "after_drop", _ddl(f"DROP FUNCTION IF EXISTS {function}()", "postgresql"))
    return md


def _v11_tables(md: MetaData, common: dict[str, Any]) -> None:
    """The tables of registry-api.md v1.1's kinds (issue 16): trainings, training records, 嘉许 and evaluations."""
    key = BigInteger().with_variant(Integer(), "sqlite")
    Table(
        TABLES["training"], md,
        Column("pxid", key, primary_key=True, autoincrement=True, comment="培训ID (the key)"),
        Column("zzdm", String(32), nullable=False, index=True, comment="主办组织代码 (org, by org code)"),
        Column("pxzt", String(200), nullable=False, comment="培训主题 (title)"),
        Column("pxlx", String(1), nullable=False, comment="培训类型: 1 通用培训 2 岗位培训 3 专业培训"),
        Column("pxfs", String(1), nullable=False, comment="培训方式: 1 远程 2 面授"),
        Column("xzqhdm", String(12), nullable=False, comment="行政区划代码"),
        Column("pxdd", String(400), comment="培训地点 (address; required for 面授)"),
        Column("kssj", DateTime, nullable=False, comment="开始时间, +08:00"),
        Column("jssj", DateTime, nullable=False, comment="结束时间, +08:00"),
        Column("pxxs", Numeric(6, 2), nullable=False, comment="培训学时, decimal hours"),
        Column("lxr", String(100), comment="联系人"),
        Column("lxdh", String(40), comment="联系电话"),
        Column("zt", String(1), nullable=False, server_default="1", comment="状态: 1 未开始 2 已结束 3 已取消"),
        *_flags(), *_stamps(), **common,
        comment="志愿者培训信息 (trainings)",
    )
    Table(
        TABLES["training_record"], md,
        Column("pxjlid", key, primary_key=True, autoincrement=True, comment="培训记录ID (the key)"),
        Column("pxid", BigInteger, nullable=False, index=True, comment="培训ID"),
        Column("zyzid", BigInteger, nullable=False, index=True, comment="志愿者ID"),
        Column("wcrq", String(8), nullable=False, comment="完成日期 YYYYMMDD"),
        Column("xs", Integer, nullable=False, comment="学时, whole minutes"),
        Column("pxjg", String(1), nullable=False, comment="培训结果: 1 合格 2 参训"),
        Column("jlzt", String(1), nullable=False, server_default="1", comment="记录状态: 1 有效 0 已撤销"),
        Column("cxyy", String(200), comment="撤销原因"),
        Column("lrfs", String(2), nullable=False, comment="录入方式: 1 组织录入 3 全国系统 (no default)"),
        *_stamps(), **common,
        comment="培训记录 (training records)",
    )
    Table(
        TABLES["commendation"], md,
        Column("jxid", key, primary_key=True, autoincrement=True, comment="嘉许ID (the key)"),
        Column("zyzid", BigInteger, index=True, comment="受表彰志愿者ID (a volunteer commended; or zzdm)"),
        Column("zzdm", String(32), index=True, comment="受表彰组织代码 (an org commended; or zyzid)"),
        Column("jxmc", String(200), nullable=False, comment="表彰名称 (title)"),
        Column("jxfa", String(2), comment="嘉许方案: ND 年度嘉许; empty for other commendations"),
        Column("jxdj", String(1), comment="嘉许等级: 1 爱心奖 2 铜奖 3 银奖 4 金奖 5 卓越金奖 6 光荣奖"),
        Column("jxnd", Integer, comment="嘉许年度 (the year whose service is commended)"),
        Column("hjrq", Date, nullable=False, comment="获奖日期"),
        Column("bfdw", String(200), nullable=False, comment="颁发单位 (issuer)"),
        Column("wsmc", String(200), nullable=False, comment="奖励文书名称"),
        Column("wswh", String(100), nullable=False, comment="奖励文书文号"),
        Column("jxnr", Text, comment="表彰内容"),
        Column("zt", String(1), nullable=False, server_default="1", comment="状态: 1 有效 0 已撤销"),
        Column("cxyy", String(200), comment="撤销原因"),
        Column("ly", String(2), nullable=False, comment="数据来源: 1 平台 3 全国系统 (no default)"),
        *_flags(), *_stamps(), **common,
        comment="嘉许表彰信息 (commendations)",
    )
    Table(
        TABLES["evaluation"], md,
        Column("pjid", key, primary_key=True, autoincrement=True, comment="评价ID (the key)"),
        Column("hdbh", String(32), nullable=False, index=True, comment="活动编号"),
        Column("zyzid", BigInteger, nullable=False, index=True, comment="志愿者ID"),
        Column("pjzzdm", String(32), nullable=False, comment="评价组织代码 (the activity's org, by org code)"),
        Column("sscd", Integer, nullable=False, comment="守时程度 1-5"),
        Column("fwtd", Integer, nullable=False, comment="服务态度 1-5"),
        Column("zysp", Integer, nullable=False, comment="专业水平 1-5"),
        Column("pjnr", String(500), comment="评价内容"),
        Column("pjrq", String(10), nullable=False, comment="评价日期 YYYY-MM-DD"),
        Column("zt", String(1), nullable=False, server_default="1", comment="状态: 1 有效 0 已撤销"),
        Column("cxyy", String(200), comment="撤销原因"),
        *_stamps(), **common,
        comment="志愿者评价 (evaluations)",
    )


def _ddl(statement: str, dialect: str) -> Any:
    """DDL run on ``dialect`` only (``%(fullname)s`` is the table's quoted, qualified name)."""
    return DDL(statement).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


def _attach_touch(table: Table, key: str, function: str) -> None:
    """The platform's own ``gxsj`` upkeep on ``table``: MySQL's ``ON UPDATE``, a trigger on SQLite and PostgreSQL
    (calling ``function``)."""
    name = f"{table.name}_gxsj"
    event.listen(table, "after_create", _ddl(
        "ALTER TABLE %(fullname)s MODIFY gxsj DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP "
        "ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间 (moved by the platform on every update)'", "mysql"))
    # SQLite: after the update, stamp the row unless the update set gxsj itself (then WHEN is false: no loop)
    event.listen(table, "after_create", _ddl(
        f"CREATE TRIGGER {name} AFTER UPDATE ON {table.name} FOR EACH ROW WHEN NEW.gxsj IS OLD.gxsj "
        f"BEGIN UPDATE {table.name} SET gxsj = CURRENT_TIMESTAMP WHERE {key} = NEW.{key}; END", "sqlite"))
    event.listen(table, "after_create", _ddl(
        f"CREATE TRIGGER {name} BEFORE UPDATE ON %(fullname)s FOR EACH ROW EXECUTE FUNCTION {function}()",
        "postgresql"))


def create_legacy(bind: Engine | Connection, schema: str | None = None) -> MetaData:
    """Create the legacy platform's tables (and its own ``gxsj`` triggers) in ``schema``, made first if missing
    (``CREATE SCHEMA`` on PostgreSQL, ``CREATE DATABASE … utf8mb4`` on MySQL/MariaDB).

    Args:
        bind: an engine or a connection (its transaction is the caller's).
        schema: a PostgreSQL schema or a MySQL/MariaDB database; ``None``: the connection's default.

    Returns:
        The tables' :func:`legacy_metadata`.

    Raises:
        ValueError: a schema on SQLite (which has none; use a file of its own).
    """
    if schema and bind.dialect.name == "sqlite":
        raise ValueError("SQLite has no schemas: create the legacy tables in a file of their own")
    md = legacy_metadata(schema)
    if schema:
        make = ("CREATE SCHEMA IF NOT EXISTS {}" if bind.dialect.name == "postgresql"
                else "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4")
        stmt = text(make.format(bind.dialect.identifier_preparer.quote(schema)))
        if isinstance(bind, Engine):
            with bind.begin() as conn:
                conn.execute(stmt)
        else:
            bind.execute(stmt)
    md.create_all(bind)
    return md


def drop_legacy(bind: Engine | Connection, schema: str | None = None) -> None:
    """Drop the legacy platform's tables (with every trigger on them, regsync's included) and its trigger
    function; the schema or database itself stays."""
    legacy_metadata(schema).drop_all(bind)
