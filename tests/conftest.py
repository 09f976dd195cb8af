"""Shared fixtures: the local store on SQLite and PostgreSQL (every database test runs on both)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from regsync.db.migrate import upgrade
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


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server's URL; the test fails (not skips) when it is down: CI starts it."""
    if not _PG:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; start it (see README)")
    return PG_URL


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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL of an empty local store: a SQLite file, or a private PostgreSQL schema (via search_path)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'local.db'}"
        return
    base = request.getfixturevalue("pg_url")
    engine, schema = make_pg_schema_engine(base)
    engine.dispose()
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}%20-ctimezone%3DUTC"
    drop_pg_schema(base, schema)


@pytest.fixture
def empty_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty store (no tables)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An engine on a store migrated to the newest schema (tables and outbox triggers)."""
    upgrade(empty_engine)
    return empty_engine
