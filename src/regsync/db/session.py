"""Engines and transactions of the local store, on SQLite and PostgreSQL alike.

* SQLite: WAL journal, ``synchronous=NORMAL``, a 30 s busy timeout; one writer at a time.
* PostgreSQL (psycopg 3): the session time zone is UTC, so naive timestamps are UTC on both engines.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url


def current_worker() -> str:
    """This process's name in runs, run slots, claims and heartbeats: ``host:pid`` (at most 64 characters)."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime, second precision dropped to microseconds as stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for a bare ``postgresql://`` URL (the only PostgreSQL driver regsync ships with)."""
    u = make_url(url)
    if u.drivername in {"postgresql", "postgres"}:
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for the local store.

    Args:
        url: a SQLAlchemy URL (``sqlite:///file.db``, ``postgresql+psycopg://user@host/db``).
        **kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine, with the per-engine settings above applied on every connection.
    """
    url = normalize_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if u.get_backend_name() == "postgresql":
        connect_args = dict(kwargs.pop("connect_args", {}))
        # keep options given in the URL (e.g. a search_path) and add the UTC time zone to them
        options = " ".join(filter(None, [u.query.get("options"), connect_args.get("options")]))  # type: ignore[list-item]
        if "timezone" not in options:
            options = (options + " -c timezone=UTC").strip()
        connect_args["options"] = options
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, connect_args=connect_args, **kwargs)
    return create_engine(url, **kwargs)


def is_postgres(bind: Engine | Connection) -> bool:
    """Whether ``bind`` talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"


@contextmanager
def suppress_outbox(conn: Connection) -> Iterator[None]:
    """Within ``conn``'s open transaction, make the outbox triggers skip this transaction's writes.

    Used when regsync applies the registry's changes locally, so they do not come back out of the
    outbox (design.md, "Data model": no echo loop). The marker row is visible to this transaction only
    and is deleted before the block ends, so other writers are never affected.
    """
    row_id = conn.execute(text("INSERT INTO outbox_suppress DEFAULT VALUES RETURNING id")).scalar_one()
    try:
        yield
    finally:
        conn.execute(text("DELETE FROM outbox_suppress WHERE id = :id"), {"id": row_id})


class connection:  # noqa: N801 — used as a function: ``with connection(bind) as conn``
    """``with connection(bind) as conn``: a new connection for an :class:`~sqlalchemy.Engine` (closed on exit),
    or the given :class:`~sqlalchemy.Connection` itself (left open), so that a reader works inside a caller's
    transaction or on its own."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.conn = self.bind.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

