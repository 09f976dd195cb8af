"""Shared fixtures: the local store on SQLite and PostgreSQL (every database test runs on both)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import Engine

from pgutil import _PG, PG_URL, drop_pg_schema, make_pg_schema_engine
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts with structlog's defaults: a command run by an earlier test configures it for its
    own (since closed) output streams."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server's URL; the test fails (not skips) when it is down: CI starts it."""
    if not _PG:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; start it (see README)")
    return PG_URL


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
