"""PostgreSQL helpers of the tests: the test server's URL and private schemas."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Engine, create_engine, text

from regsync.db.session import make_engine

PG_URL = os.environ.get("REGSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        eng = create_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


_PG = _pg_available()


def make_pg_schema_engine(base_url: str) -> tuple[Engine, str]:
    """An engine whose connections live in a fresh, private schema of the PostgreSQL test database."""
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    engine = make_engine(base_url, connect_args={"options": f"-c search_path={schema} -c timezone=UTC"})
    return engine, schema


def drop_pg_schema(base_url: str, schema: str) -> None:
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


