"""MySQL/MariaDB helpers of the tests: the test server's URL and private databases (``t_<hex>``), as
:mod:`pgutil` makes private PostgreSQL schemas."""

from __future__ import annotations

import hashlib
import os
import secrets

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from regsync.db.migrate import upgrade
from regsync.db.session import make_engine

#: The server the tests use: root on loopback may create and drop databases (``.ci/services.sh`` starts it).
MY_URL = os.environ.get("REGSYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4")

#: Whether tests that need a migrated store take it from :class:`MigratedPool` (``REGSYNC_TEST_MYSQL_POOL=0``: a new
#: database migrated for each test, to compare the time or to rule the pool out).
MY_POOL = os.environ.get("REGSYNC_TEST_MYSQL_POOL", "1") != "0"


def _my_available() -> bool:
    try:
        eng = create_engine(MY_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


_MY = _my_available()


def my_database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return make_url(MY_URL).set(database=name).render_as_string(hide_password=False)


def make_my_database() -> tuple[str, str]:
    """A fresh, private, empty database on the MySQL/MariaDB test server: ``(url, name)``. Its defaults are those of
    a long-lived platform's database, ``utf8mb3`` and a case-insensitive collation, which can hold no character
    outside the BMP and finds ``x`` equal to ``X``: regsync's tables and temporary tables name their own
    (utf8mb4_bin), and the tests show it."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"))
    admin.dispose()
    return my_database_url(name), name


def drop_my_database(name: str) -> None:
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def make_my_engine() -> tuple[Engine, str]:
    """An engine on a fresh, private database of the MySQL/MariaDB test server (:func:`make_my_database`), and the
    database's name (for :func:`drop_my_database`)."""
    url, name = make_my_database()
    return make_engine(url), name


class MigratedPool:
    """Private databases migrated to the newest schema, used again from one test to the next (the MariaDB share of
    the suite's time went mostly to ``upgrade`` and ``DROP DATABASE``: each DDL statement makes or removes a file
    and waits for it on disk).

    A test that asks for a migrated store (the ``engine`` fixture) takes one (:meth:`take`; the first ones are
    made and migrated); when it ends (:meth:`give_back`) its database goes back to the pool only if its schema is
    still exactly the migrated one (columns, indexes, foreign keys and triggers compared in the server's catalog
    with the first migrated database's): its rows are deleted and the auto-increment counters that moved are set
    back, so that it is indistinguishable from a new one. A database whose schema a test changed (a downgrade, a
    foreign key dropped, a table added) is dropped instead. The pool's databases are dropped at the end of the
    session (:meth:`close`).
    """

    def __init__(self) -> None:
        self.free: list[str] = []
        self.fingerprint: str | None = None
        self.admin = create_engine(MY_URL, isolation_level="AUTOCOMMIT")

    def take(self) -> tuple[str, str]:
        """A migrated database: ``(url, name)``."""
        if self.free:
            name = self.free.pop()
            return my_database_url(name), name
        url, name = make_my_database()
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        if self.fingerprint is None:
            self.fingerprint = self._fingerprint(name)
        return url, name

    def give_back(self, name: str) -> None:
        """Put a test's database back in the pool, emptied, when its schema is the migrated one; else drop it."""
        try:
            if self.fingerprint is not None and self._fingerprint(name) == self.fingerprint:
                self._empty(name)
                self.free.append(name)
                return
        except Exception:  # noqa: BLE001 — a database that cannot be emptied is dropped
            pass
        drop_my_database(name)

    def close(self) -> None:
        """Drop the pool's databases."""
        for name in self.free:
            drop_my_database(name)
        self.free.clear()
        self.admin.dispose()

    def _fingerprint(self, name: str) -> str:
        queries = (
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
        with self.admin.connect() as conn:
            parts = [sorted(tuple(map(str, r)) for r in conn.execute(text(q), {"s": name})) for q in queries]
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def _empty(self, name: str) -> None:
        with self.admin.connect() as conn:
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
