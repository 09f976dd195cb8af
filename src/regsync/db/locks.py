"""Locks and run slots in the store: which process runs a singleton job, and which replica claims a scheduled slot.

* :class:`SingletonLock`: a PostgreSQL session advisory lock per job, a named lock (``GET_LOCK``) on MySQL/MariaDB
  (always granted on SQLite, where a single daemon holds the store).
* :func:`claim_slot` / :func:`finish_slot`: the ``run_slot`` table, whose unique key (job, scheduled time) lets
  exactly one of several daemons run a scheduled pass (design.md, "Deployment").
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError

from regsync.db.liveness import dead_workers, sweep
from regsync.db.models import RunSlot
from regsync.db.session import is_mysql, is_postgres, utcnow

log = structlog.get_logger(__name__)


def claim_slot(engine: Engine, job: str, scheduled_at: dt.datetime, worker: str) -> int | None:
    """Claim the run slot (``job``, ``scheduled_at``) for ``worker``.

    The unique key (job, scheduled time) of ``run_slot`` decides: of several daemons (or a daemon and a manual
    command) claiming one slot, exactly one insert commits.

    Args:
        engine: the local store.
        job: the job's name.
        scheduled_at: the slot's planned time, naive UTC, to the microsecond as the trigger gave it.
        worker: who claims (``host:pid``).

    A slot claimed already is taken over when the process that claimed it is gone and left it ``running`` or
    ``abandoned`` (:mod:`regsync.db.liveness`: killed with SIGKILL mid-run): the run it started is marked abandoned,
    and the slot runs again, once (the takeover is a conditional update: of several claimants one wins).

    Returns:
        The slot's id, or ``None`` when the slot was claimed already by a live process or has ended.
    """
    try:
        with engine.begin() as conn:
            return int(conn.execute(RunSlot.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
                job=job, scheduled_at=scheduled_at, claimed_by=worker[:64], claimed_at=utcnow(),
                state="running")).inserted_primary_key[0])
    except IntegrityError:
        return _take_over_slot(engine, job, scheduled_at, worker)


def _slot_free(conn: Any, row: Any, now: dt.datetime) -> bool:
    """Whether a slot's row may be claimed again: abandoned, or running for a process that is gone."""
    if row.state == "abandoned":
        return True
    return row.state == "running" and row.claimed_by in dead_workers(conn, [(row.claimed_by, row.claimed_at)], now)


def _take_over_slot(engine: Engine, job: str, scheduled_at: dt.datetime, worker: str) -> int | None:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(RunSlot).where(RunSlot.job == job, RunSlot.scheduled_at == scheduled_at)).first()
        if row is None or not _slot_free(conn, row, now):
            return None
        taken = conn.execute(update(RunSlot).where(
            RunSlot.id == row.id, RunSlot.state == row.state, RunSlot.claimed_by == row.claimed_by).values(
            claimed_by=worker[:64], claimed_at=now, state="running", finished_at=None, run_id=None)).rowcount
    if not taken:
        return None
    sweep(engine, now)  # the run the gone process left running is abandoned now
    log.warning(f"{job} slot of a process that is gone taken over", job=job, scheduled_at=scheduled_at.replace(
        tzinfo=dt.UTC).isoformat(), previous=row.claimed_by, worker=worker)
    return int(row.id)


def finish_slot(engine: Engine, slot_id: int, state: str, run_id: int | None = None) -> None:
    """Record how a slot ended: ``done`` (it did work, ``run_id`` its run), ``idle`` (nothing to do, or paused) or
    ``failed``."""
    with engine.begin() as conn:
        conn.execute(update(RunSlot).where(RunSlot.id == slot_id).values(
            state=state, finished_at=utcnow(), run_id=run_id))


def _lock_key(job: str, schema: str) -> int:
    digest = hashlib.sha256(f"regsync:{schema}:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def mysql_lock_name(job: str, database: str) -> str:
    """The MySQL/MariaDB lock name (``GET_LOCK``) of ``job`` in the store ``database``: ``regsync:<job>:<hash>``,
    at most 64 characters (the server's limit), the hash of the database's name and the job's, so that stores in
    separate databases of one server never contend."""
    digest = hashlib.sha256(f"regsync:{database}:{job}".encode()).hexdigest()
    return f"regsync:{job[:22]}:{digest[:32]}"


class SingletonLock:
    """A lock for one job, held on a connection of its own while the job runs, and dropped by the server if that
    connection dies (so another replica takes the job over at its next tick): a session advisory lock on
    PostgreSQL, a named lock (``GET_LOCK(name, 0)``, :func:`mysql_lock_name`) on MySQL/MariaDB. The key is derived
    from the job's name and the current schema (database), so stores in separate schemas never contend. On SQLite it
    is always granted (a single daemon holds the store: :func:`sqlite_daemon_lock`).

    Both server locks belong to the connection, not to a transaction: the connection is taken from the pool for the
    lock alone, and it is discarded from the pool instead of returned when the lock cannot be released on it (a
    pooled connection still holding the lock would keep the job from every other replica).

    Use as ``with SingletonLock(engine, "inbound") as held: if held: …``.
    """

    def __init__(self, engine: Engine, job: str) -> None:
        self.engine = engine
        self.job = job
        self._conn: Any = None
        self._key: int | None = None
        self._name: str | None = None  # MySQL/MariaDB: the lock's name

    def __enter__(self) -> bool:
        mysql = is_mysql(self.engine)
        if not is_postgres(self.engine) and not mysql:
            return True
        self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if mysql:
                self._name = mysql_lock_name(self.job, self._conn.execute(text("SELECT DATABASE()")).scalar_one())
                held = self._conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": self._name}).scalar() == 1
            else:
                schema = self._conn.execute(text("SELECT current_schema()")).scalar_one()
                self._key = _lock_key(self.job, schema)
                held = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                               {"k": self._key}).scalar_one())
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        if not held:
            self._conn.close()
            self._conn = None
        return held

    def __exit__(self, *exc: object) -> None:
        if self._conn is None:
            return
        released = False
        try:
            if self._name is not None:
                released = self._conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._name}).scalar() == 1
            else:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                released = True
        finally:
            if not released:
                self._conn.invalidate()  # never back to the pool with the lock still on it
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class SlotAt:
    """What the store holds of a job's slot at one scheduled time (:func:`slot_at`).

    Attributes:
        exists: a slot (job, time) was claimed.
        left_by: the worker (``host:pid``) that claimed it and is gone, leaving it unfinished (it may be run again:
            :func:`claim_slot` takes it over); ``None`` otherwise.
        previous: the job's latest slot time before this one (naive UTC), or ``None`` when it never ran before.
    """

    exists: bool
    left_by: str | None
    previous: dt.datetime | None


def slot_at(engine: Engine, job: str, scheduled_at: dt.datetime, now: dt.datetime) -> SlotAt:
    """The slot of ``job`` at ``scheduled_at`` (naive UTC) as the daemon's catch-up needs it (:class:`SlotAt`);
    ``now`` (naive UTC) judges whether its process is gone."""
    with engine.connect() as conn:
        row = conn.execute(select(RunSlot).where(RunSlot.job == job, RunSlot.scheduled_at == scheduled_at)).first()
        left = row is not None and _slot_free(conn, row, now)
        previous = conn.execute(select(func.max(RunSlot.scheduled_at)).where(
            RunSlot.job == job, RunSlot.scheduled_at < scheduled_at)).scalar_one()
    if isinstance(previous, str):  # SQLite aggregates come back as text
        previous = dt.datetime.fromisoformat(previous)
    return SlotAt(exists=row is not None, left_by=row.claimed_by if left and row is not None else None,
                  previous=previous)
