"""Fixtures of the generator tests: fresh stores on SQLite, PostgreSQL and MariaDB, and one generated data set per
engine and module (generating is the slow part, checking it is fast)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from myutil import _MY, MY_URL, drop_my_database, make_my_engine
from pgutil import _PG, PG_URL
from regsync.db.models import Base
from regsync.db.session import make_engine
from regsync.generate import GenerateSummary, generate

#: The data set the checks run on: small, but with every dirt kind present at least a few times.
SCALE = 0.002
SEED = 11
AS_OF = dt.date(2026, 6, 30)


@dataclass
class Store:
    """A fresh local store with the models' tables; ``close()`` disposes of it."""

    engine: Engine
    close: Callable[[], None]


def new_store(backend: str, tmp: Path) -> Store:
    """An empty store with the schema: a SQLite file in ``tmp``, a private PostgreSQL schema, or a private MariaDB
    database."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / ('g_' + secrets.token_hex(4) + '.db')}")
        Base.metadata.create_all(engine)
        return Store(engine, engine.dispose)
    if backend == "mariadb":
        if not _MY:
            pytest.fail(f"MariaDB is not reachable at {MY_URL}")
        my_engine, name = make_my_engine()
        Base.metadata.create_all(my_engine)

        def drop() -> None:
            my_engine.dispose()
            drop_my_database(name)

        return Store(my_engine, drop)
    if not _PG:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}")
    schema = "gen_" + secrets.token_hex(6)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(PG_URL, connect_args={"options": f"-c search_path={schema} -c timezone=UTC"})
    Base.metadata.create_all(engine)

    def close() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()

    return Store(engine, close)


BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite``, ``postgresql`` or ``mariadb``."""
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store (schema created) on each backend."""
    s = new_store(backend, tmp_path)
    yield s
    s.close()


@dataclass
class Dataset:
    """A generated data set: its store and the generator's summary."""

    engine: Engine
    summary: GenerateSummary
    backend: str


@pytest.fixture(scope="module", params=BACKENDS)
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """The data set of :data:`SCALE` and :data:`SEED`, generated once per module and backend."""
    s = new_store(request.param, tmp_path_factory.mktemp("gen"))
    summary = generate(s.engine, SCALE, SEED, batch_size=1000, as_of=AS_OF)
    yield Dataset(s.engine, summary, request.param)
    s.close()
