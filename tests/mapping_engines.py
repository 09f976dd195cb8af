"""Engines of the mapping's tests: SQLite, a private PostgreSQL schema, a private MariaDB database (``t_<hex>``).

The mapping's SQL is evaluated on the three engines regsync supports; the MariaDB session is set as regsync's
MySQL engine sets it (UTC, strict ``sql_mode``, utf8mb4) so that a warning a trigger would turn into an error shows.
(Once the ``db_url`` fixture has its MariaDB engine, these tests may take it instead.)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from myutil import _MY, MY_URL
from pgutil import _PG, PG_URL, drop_pg_schema, make_pg_schema_engine

MY_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
ENGINES = ["sqlite", "postgresql", "mariadb"]


def make_my_database() -> tuple[Engine, str]:
    """An engine on a fresh private database of the MariaDB test server (the server's default, case-insensitive
    collation, as a province's DBA would have it), and its name."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    admin.dispose()
    engine = create_engine(make_url(MY_URL).set(database=name), isolation_level="READ COMMITTED")

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"SET sql_mode = '{MY_SQL_MODE}'")
        cur.execute("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
        cur.close()

    return engine, name


def drop_my_database(name: str) -> None:
    admin = create_engine(MY_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


@dataclass
class PlatformDB:
    """An engine, its dialect's name (``sqlite``, ``postgresql``, ``mysql``) and its private schema (PostgreSQL) or
    database (MariaDB), ``None`` on SQLite."""

    engine: Engine
    dialect: str
    schema: str | None


@pytest.fixture(params=ENGINES)
def platform_db(request: pytest.FixtureRequest, tmp_path) -> Iterator[PlatformDB]:
    """An empty database of each engine: a SQLite file; a private PostgreSQL schema, first on the search path,
    session in UTC; a private MariaDB database."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
        yield PlatformDB(engine, "sqlite", None)
        engine.dispose()
    elif request.param == "postgresql":
        if not _PG:
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}")
        engine, schema = make_pg_schema_engine(PG_URL)
        yield PlatformDB(engine, "postgresql", schema)
        engine.dispose()
        drop_pg_schema(PG_URL, schema)
    else:
        if not _MY_OK:
            pytest.fail(f"MariaDB is not reachable at {MY_URL}")
        engine, name = make_my_database()
        yield PlatformDB(engine, "mysql", name)
        engine.dispose()
        drop_my_database(name)


def no_warnings(conn: Connection) -> None:
    """On MariaDB, assert the last statement raised no warning (a trigger in strict mode would fail on it)."""
    if conn.dialect.name == "mysql":
        warnings = conn.execute(text("SHOW WARNINGS")).fetchall()
        assert warnings == [], warnings


_MY_OK = _MY
