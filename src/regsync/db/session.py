"""Engines and transactions of the local store, on SQLite, PostgreSQL and MySQL/MariaDB alike.

* SQLite: WAL journal, ``synchronous=NORMAL``, a 30 s busy timeout; one writer at a time.
* PostgreSQL (psycopg 3): the session time zone is UTC, so naive timestamps are UTC on every engine.
* MySQL 8 / MariaDB ≥ 10.6 (PyMySQL): see :func:`make_engine` (UTC session, strict ``sql_mode``, READ COMMITTED,
  utf8mb4 with binary collation).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from regsync.db.own import apply_prefix, own_sql

T = TypeVar("T")


def current_worker() -> str:
    """This process's name in runs, run slots, claims and heartbeats: ``host:pid`` (at most 64 characters)."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime, second precision dropped to microseconds as stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: The ``sql_mode`` of regsync's MySQL/MariaDB sessions: strict (a value that does not fit is an error, not a silent
#: truncation or a zero date), and nothing that changes how SQL is parsed (no ``ANSI_QUOTES``: regsync's SQL quotes
#: no identifier; no ``PIPES_AS_CONCAT``: it concatenates with ``CONCAT`` on MySQL). Triggers keep the mode they
#: were created under.
MYSQL_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"

#: The character set and collation of regsync's tables and sessions on MySQL/MariaDB. utf8mb4 holds every character
#: the registry sends (names with characters outside the BMP among them; MySQL's ``utf8``/``utf8mb3`` does not).
#: The collation is binary: regsync compares values in its own normalization, never by the database's collation, so
#: its tables compare and sort text by code point, as SQLite does and as the registry's export is ordered (a
#: case-insensitive collation would make ``x`` equal ``X`` in a key). ``utf8mb4_bin`` exists on MySQL 8 and MariaDB
#: alike; it is PAD SPACE (trailing spaces are ignored in comparisons), which no key of regsync's has.
MYSQL_CHARSET, MYSQL_COLLATION = "utf8mb4", "utf8mb4_bin"


def normalize_url(url: str) -> str:
    """Use regsync's drivers for a URL that names none: psycopg 3 for ``postgresql://``, PyMySQL for ``mysql://``
    and ``mariadb://`` (the drivers regsync ships with), and ``charset=utf8mb4`` on a MySQL URL without a charset."""
    u = make_url(url)
    if u.drivername in {"postgresql", "postgres"}:
        u = u.set(drivername="postgresql+psycopg")
    elif u.drivername in {"mysql", "mariadb", "mariadb+pymysql"}:
        u = u.set(drivername="mysql+pymysql")
    if u.get_backend_name() == "mysql" and "charset" not in u.query:
        u = u.update_query_dict({"charset": MYSQL_CHARSET})
    return u.render_as_string(hide_password=False)


def make_engine(url: str, *, table_prefix: str = "", **kwargs: Any) -> Engine:
    """Create an engine for the local store.

    Args:
        url: a SQLAlchemy URL (``sqlite:///file.db``, ``postgresql+psycopg://user@host/db``,
            ``mysql+pymysql://user@host:3306/db``).
        table_prefix: on SQLite, the prefix of regsync's own tables (``database.table_prefix``,
            :mod:`regsync.db.own`); ``""`` for none.
        **kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine, with the per-engine settings above applied on every connection. On MySQL/MariaDB every
        connection gets ``time_zone = '+00:00'`` (naive timestamps are UTC, and ``CURRENT_TIMESTAMP`` defaults and
        ``UTC_TIMESTAMP`` agree), :data:`MYSQL_SQL_MODE`, utf8mb4 with :data:`MYSQL_COLLATION`, and the isolation
        level READ COMMITTED: the level of PostgreSQL's default that regsync's statements are written for. InnoDB's
        default, REPEATABLE READ, would read every statement of a transaction from its first read's snapshot (a
        relay would not see rows committed after it began) and take gap locks on the ranges that locking reads and
        updates scan, so that the triggers' inserts into the outbox would wait on a relay's claim, and deadlock.
    """
    url = normalize_url(url)
    u = make_url(url)
    if table_prefix and u.get_backend_name() != "sqlite":
        raise ValueError(f"a table prefix ({table_prefix!r}) is for SQLite stores only")
    if u.get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return apply_prefix(engine, table_prefix)
    if u.get_backend_name() == "postgresql":
        connect_args = dict(kwargs.pop("connect_args", {}))
        # keep options given in the URL (e.g. a search_path) and add the UTC time zone to them
        options = " ".join(filter(None, [u.query.get("options"), connect_args.get("options")]))  # type: ignore[list-item]
        if "timezone" not in options:
            options = (options + " -c timezone=UTC").strip()
        connect_args["options"] = options
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, connect_args=connect_args, **kwargs)
    if u.get_backend_name() == "mysql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 3600)  # the server drops connections idle for wait_timeout (8 h default)
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _mysql_session(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SET sql_mode = '{MYSQL_SQL_MODE}'")
            cur.execute(f"SET NAMES {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}")
            cur.close()

        return engine
    return create_engine(url, **kwargs)


def is_postgres(bind: Engine | Connection) -> bool:
    """Whether ``bind`` talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"


def is_mysql(bind: Engine | Connection) -> bool:
    """Whether ``bind`` talks to MySQL or MariaDB (:func:`normalize_url` drives both with the ``mysql`` dialect)."""
    return bind.dialect.name in ("mysql", "mariadb")


def row_locks(bind: Engine | Connection) -> bool:
    """Whether ``bind``'s engine locks rows (``FOR UPDATE``, ``FOR SHARE``, ``SKIP LOCKED``): PostgreSQL and
    MySQL/MariaDB; SQLite locks the whole file for a writer instead."""
    return bind.dialect.name in ("postgresql", "mysql", "mariadb")


#: Driver error codes of a transaction that lost a lock conflict and may simply be run again: PostgreSQL's SQLSTATEs
#: ``40001`` (serialization failure), ``40P01`` (deadlock detected), ``55P03`` (lock not available); MySQL/MariaDB's
#: error numbers 1213 (``ER_LOCK_DEADLOCK``: InnoDB rolled the whole transaction back) and 1205
#: (``ER_LOCK_WAIT_TIMEOUT``: only the statement is rolled back unless ``innodb_rollback_on_timeout``; the caller's
#: transaction block rolls the rest back as it leaves).
LOCK_CONFLICT_CODES = frozenset({"40001", "40P01", "55P03", "1213", "1205"})


def lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy error, or the driver's) says the transaction lost a lock conflict
    (:data:`LOCK_CONFLICT_CODES`): a deadlock or a lock wait timed out, on PostgreSQL or MySQL/MariaDB. Such a
    transaction, rolled back, may be run again from its start."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None)  # psycopg 3
    if code is None and getattr(orig, "args", None):  # PyMySQL: (errno, message)
        code = orig.args[0]
    return str(code) in LOCK_CONFLICT_CODES


def retry_on_lock_conflict(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 3) -> T:
    """Run ``work`` in a transaction of its own on ``engine``, and run it again in a new one (up to ``attempts``
    times in all) when the transaction loses a lock conflict (:func:`lock_conflict`); any other error, or the last
    conflict, is raised. ``work`` must be safe to run again: it keeps no state of its own across attempts.

    Args:
        engine: the store.
        work: called with the transaction's connection; its result is returned once the transaction commits.
        attempts: the most times ``work`` runs.

    Raises:
        sqlalchemy.exc.DBAPIError: the last lock conflict, or another database error.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt == attempts or not lock_conflict(exc):
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def suppress_outbox(conn: Connection) -> Iterator[None]:
    """Within ``conn``'s open transaction, make the outbox triggers skip this transaction's writes.

    Used when regsync applies the registry's changes locally, so they do not come back out of the
    outbox (design.md, "Data model": no echo loop). The marker row is visible to this transaction only
    and is deleted before the block ends, so other writers are never affected.
    """
    t = own_sql(conn, "outbox_suppress")
    if is_mysql(conn):
        row_id = conn.execute(text(f"INSERT INTO {t} () VALUES ()")).lastrowid  # noqa: S608 — a table name
    else:
        row_id = conn.execute(text(f"INSERT INTO {t} DEFAULT VALUES RETURNING id")).scalar_one()  # noqa: S608
    try:
        yield
    finally:
        conn.execute(text(f"DELETE FROM {t} WHERE id = :id"), {"id": row_id})  # noqa: S608


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

