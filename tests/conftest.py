"""Shared fixtures: the local store on SQLite, PostgreSQL and MariaDB (every database test runs on all three)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import Engine

from factories import TEST_HASH_KEY
from myutil import _MY, MY_POOL, MY_URL, MigratedPool, drop_my_database, make_my_database
from pgutil import _PG, PG_URL, PgPool, drop_pg_schema, make_pg_schema_engine, pg_schema_url
from regsync import i18n
from regsync.db.migrate import upgrade
from regsync.db.session import make_engine
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

#: The sandbox's quiet settings for flow tests: no repeated feed items, a week of feed retention.
DEFAULT_FAULTS = {"feed_duplicate_rate": 0.0, "feed_retention_s": 7 * 24 * 3600.0}


@pytest.fixture(autouse=True)
def _hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run by a test (in process or as a subprocess) use the tests' hash key, as the ``settings``
    fixture does: one key per store (a test of a missing or changed key removes or replaces it)."""
    monkeypatch.setenv("REGSYNC_HASH_KEY", TEST_HASH_KEY)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests read English unless they choose Chinese (``--lang zh-CN``, ``REGSYNC_LANG`` or
    :func:`regsync.i18n.use_language`): their assertions name the messages as the code writes them. Chinese, the
    default, is what tests/test_i18n.py and the tests of each page and list in Chinese check."""
    monkeypatch.setenv("REGSYNC_LANG", "en")
    token = i18n._language.set(None)
    yield
    i18n._language.reset(token)


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


@pytest.fixture(scope="session")
def my_url() -> str:
    """The MySQL/MariaDB server's URL (no database); the test fails (not skips) when it is down: CI starts it."""
    if not _MY:
        pytest.fail(f"MariaDB is not reachable at {MY_URL}; start it (.ci/services.sh, see README)")
    return MY_URL


@pytest.fixture(scope="session")
def my_pool(my_url: str) -> Iterator[MigratedPool]:
    """The session's migrated MariaDB databases, used again from one test to the next (:class:`MigratedPool`)."""
    pool = MigratedPool()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def pg_pool(pg_url: str) -> Iterator[PgPool]:
    """The session's migrated PostgreSQL schemas, used again from one test to the next (:mod:`storepool`)."""
    pool = PgPool()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to the newest schema once per session, copied for each test that needs one."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file: the file alone is the store
    return path


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL of a local store of the test's own: a SQLite file, a private PostgreSQL schema (via search_path), or a
    private MariaDB database. Empty, unless the test asks for ``engine`` (a migrated store): then on SQLite a copy of
    the session's migrated file, and on the servers a schema or database of the session's pool (tests/storepool.py):
    the state of an empty store migrated, for a fraction of the time (each DDL statement waits for the disk)."""
    if request.param == "sqlite":
        if "engine" in request.fixturenames:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "local.db")
        yield f"sqlite:///{tmp_path / 'local.db'}"
        return
    if request.param == "mariadb":
        if "engine" in request.fixturenames and MY_POOL:  # migrated already, from the session's pool
            pool = request.getfixturevalue("my_pool")
            url, name = pool.take()
            yield url
            pool.give_back(name)
            return
        request.getfixturevalue("my_url")
        url, name = make_my_database()
        yield url
        drop_my_database(name)
        return
    base = request.getfixturevalue("pg_url")
    if "engine" in request.fixturenames and MY_POOL:  # migrated already, from the session's pool (storepool.py)
        pool = request.getfixturevalue("pg_pool")
        url, schema = pool.take()
        yield url
        pool.give_back(schema)
        return
    engine, schema = make_pg_schema_engine(base)
    engine.dispose()
    yield pg_schema_url(base, schema)
    drop_pg_schema(base, schema)


@pytest.fixture
def empty_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty store (no tables)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An engine on a store migrated to the newest schema (tables and outbox triggers; the store is migrated
    already, :func:`db_url`, and ``upgrade`` finds nothing to do)."""
    upgrade(empty_engine)
    return empty_engine


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox registry with its admin endpoints, one per test module (files that need another define theirs)."""
    with SandboxServer(admin=True) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxServer, db_url: str) -> Iterator[Settings]:
    """Settings on the test's store and the module's sandbox, reset and quiet (:data:`DEFAULT_FAULTS`)."""
    httpx.post(f"{sandbox.admin_url}/reset").raise_for_status()
    httpx.put(f"{sandbox.admin_url}/faults", json=DEFAULT_FAULTS).raise_for_status()
    yield Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url),
                   registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                             client_secret=sandbox.client_secret),
                   log=LogSettings(level="WARNING"))
    httpx.put(f"{sandbox.admin_url}/faults", json=DEFAULT_FAULTS).raise_for_status()

