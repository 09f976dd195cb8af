"""MySQL/MariaDB helpers of the tests: the test server's URL and private databases (``t_<hex>``), as
:mod:`pgutil` makes private PostgreSQL schemas."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from regsync.db.session import make_engine
from serverutil import admin_execute, server_available
from storepool import StorePool

#: The server the tests use: root on loopback may create and drop databases (``.ci/services.sh`` starts it).
MY_URL = os.environ.get("REGSYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4")

#: Whether tests that need a migrated store on a server take it from a pool (:mod:`storepool`;
#: ``REGSYNC_TEST_STORE_POOL=0``: a new schema or database migrated for each test, to compare the time or to rule the
#: pool out).
MY_POOL = os.environ.get("REGSYNC_TEST_STORE_POOL", "1") != "0"


_MY = server_available(MY_URL)


def my_database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return make_url(MY_URL).set(database=name).render_as_string(hide_password=False)


def make_my_database() -> tuple[str, str]:
    """A fresh, private, empty database on the MySQL/MariaDB test server: ``(url, name)``. Its defaults are those of
    a long-lived platform's database, ``utf8mb3`` and a case-insensitive collation, which can hold no character
    outside the BMP and finds ``x`` equal to ``X``: regsync's tables and temporary tables name their own
    (utf8mb4_bin), and the tests show it."""
    name = "t_" + secrets.token_hex(6)
    admin_execute(MY_URL, f"CREATE DATABASE {name} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci")
    return my_database_url(name), name


def drop_my_database(name: str) -> None:
    admin_execute(MY_URL, f"DROP DATABASE IF EXISTS {name}")


def make_my_engine() -> tuple[Engine, str]:
    """An engine on a fresh, private database of the MySQL/MariaDB test server (:func:`make_my_database`), and the
    database's name (for :func:`drop_my_database`)."""
    url, name = make_my_database()
    return make_engine(url), name


class MigratedPool(StorePool):
    """Private MariaDB databases migrated to the newest schema, used again from one test to the next
    (:mod:`storepool`)."""

    CATALOG = (
        "SELECT table_name, column_name, column_type, is_nullable, column_default, extra, collation_name "
        "FROM information_schema.columns WHERE table_schema = :s",
        "SELECT table_name, index_name, non_unique, seq_in_index, column_name FROM information_schema.statistics "
        "WHERE table_schema = :s",
        "SELECT constraint_name, table_name, referenced_table_name, delete_rule FROM "
        "information_schema.referential_constraints WHERE constraint_schema = :s",
        "SELECT trigger_name, event_object_table, action_timing, event_manipulation, action_statement "
        "FROM information_schema.triggers WHERE trigger_schema = :s",
        "SELECT table_name, engine, table_collation FROM information_schema.tables WHERE table_schema = :s",
        "SELECT routine_name FROM information_schema.routines WHERE routine_schema = :s",
    )

    def __init__(self) -> None:
        super().__init__(create_engine(MY_URL, isolation_level="AUTOCOMMIT"))

    def make(self) -> str:
        return make_my_database()[1]

    def url(self, name: str) -> str:
        return my_database_url(name)

    def drop(self, name: str) -> None:
        drop_my_database(name)

    def empty(self, conn: Connection, name: str) -> None:
        conn.execute(text("SET SESSION innodb_lock_wait_timeout = 10"))
        conn.execute(text("SET SESSION lock_wait_timeout = 10"))
        if "mariadb" not in str(conn.execute(text("SELECT VERSION()")).scalar()).lower():
            conn.execute(text("SET SESSION information_schema_stats_expiry = 0"))  # MySQL 8: live counters
        moved = list(conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s AND auto_increment > 1"),
            {"s": name}).scalars())
        tables = list(conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
            "AND table_name NOT IN ('alembic_version', 'outbox', 'outbox_suppress')"), {"s": name}).scalars())
        conn.execute(text("SET SESSION foreign_key_checks = 0"))
        # one transaction, under the outbox triggers' own guard (no outbox row per deleted row); the outbox last
        conn.execute(text("START TRANSACTION"))
        conn.execute(text(f"INSERT INTO {name}.outbox_suppress () VALUES ()"))
        for table in tables:
            conn.execute(text(f"DELETE FROM {name}.{table}"))
        conn.execute(text(f"DELETE FROM {name}.outbox"))
        conn.execute(text(f"DELETE FROM {name}.outbox_suppress"))
        conn.execute(text("COMMIT"))
        left = conn.execute(text(" UNION ALL ".join(  # noqa: S608
            f"SELECT '{t}' FROM {name}.{t} HAVING COUNT(*) > 0"
            for t in [*tables, "outbox", "outbox_suppress"]))).scalars().all()
        if left:
            raise RuntimeError(f"rows left in {left}")
        for table in moved:
            conn.execute(text(f"ALTER TABLE {name}.{table} AUTO_INCREMENT = 1"))
        conn.execute(text("SET SESSION foreign_key_checks = 1"))
