"""PostgreSQL helpers of the tests: the test server's URL, private schemas, and a pool of migrated ones."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Connection, Engine, create_engine, text

from regsync.db.session import make_engine
from serverutil import admin_execute, server_available
from storepool import StorePool

PG_URL = os.environ.get("REGSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


_PG = server_available(PG_URL)


def make_pg_schema(base_url: str) -> str:
    """A fresh, private, empty schema of the PostgreSQL test database: its name."""
    schema = "t_" + secrets.token_hex(6)
    admin_execute(base_url, f"CREATE SCHEMA {schema}")
    return schema


def make_pg_schema_engine(base_url: str) -> tuple[Engine, str]:
    """An engine whose connections live in a fresh, private schema of the PostgreSQL test database."""
    schema = make_pg_schema(base_url)
    engine = make_engine(base_url, connect_args={"options": f"-c search_path={schema} -c timezone=UTC"})
    return engine, schema


def drop_pg_schema(base_url: str, schema: str) -> None:
    admin_execute(base_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pg_schema_url(base_url: str, schema: str) -> str:
    """The URL of the private schema ``schema`` (its ``search_path``, UTC), for an engine or a child process."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}%20-ctimezone%3DUTC"


class PgPool(StorePool):
    """Private PostgreSQL schemas migrated to the newest schema, used again from one test to the next
    (:mod:`storepool`)."""

    CATALOG = (
        "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length, "
        "datetime_precision FROM information_schema.columns WHERE table_schema = :s",
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s",
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n "
        "ON n.oid = c.connamespace WHERE n.nspname = :s",
        "SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND NOT t.tgisinternal",
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s",
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s",
    )

    def __init__(self) -> None:
        super().__init__(create_engine(PG_URL, isolation_level="AUTOCOMMIT"))

    def make(self) -> str:
        return make_pg_schema(PG_URL)

    def url(self, name: str) -> str:
        return pg_schema_url(PG_URL, name)

    def drop(self, name: str) -> None:
        drop_pg_schema(PG_URL, name)

    def empty(self, conn: Connection, name: str) -> None:
        # DELETE, not TRUNCATE (which makes each table's files anew and waits for the disk: slower on tiny tables),
        # with no trigger and no foreign key check (replica role: the test server's superuser); ids from 1 again
        conn.execute(text("SET lock_timeout = '10s'"))
        tables = list(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"),
            {"s": name}).scalars())
        conn.execute(text("BEGIN"))
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in tables:
            conn.execute(text(f"DELETE FROM {name}.{table}"))
        conn.execute(text(
            "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = :s"), {"s": name})
        conn.execute(text("COMMIT"))
