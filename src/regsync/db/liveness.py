"""Which regsync processes are alive, and what the dead ones left behind (issue 12, items 10 and 11).

Every process that works on the store holds a **lease** in ``heartbeat`` (:class:`regsync.db.models.Heartbeat`):
the daemon for its whole life (role ``daemon``, with its scheduler's next run times), a command while it runs a
run (role ``command``: :func:`regsync.db.runs.start_run` takes the lease, :func:`regsync.db.runs.finish_run`
gives it back). A thread of the process renews the lease every :data:`BEAT_S` seconds to :data:`LEASE_S` seconds
ahead. A process is **alive** while its lease runs and it has not said it stopped; on the same node (host and PID
namespace) a PID that no longer exists is dead at once, whatever its lease says.

A run (``run.worker``) or a run slot (``run_slot.claimed_by``) still ``running`` whose process is not alive is
**abandoned**: the process was killed (SIGKILL, OOM, power loss) before it could record how the run ended.
:func:`sweep` marks them ``abandoned`` (the daemon at every beat, ``regsync status``, the prune), and
:func:`regsync.service.daemon.claim_slot` takes an abandoned slot over. A worker with no heartbeat row at all (a row of
a schema before revision 0011, or a name no process of this version used) is judged by the age of the claim:
dead once it is older than :data:`LEASE_S`.

Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, overload

import structlog
from sqlalchemy import Engine, delete, select, update

from regsync.db.models import Heartbeat, Run, RunSlot
from regsync.db.query import upsert
from regsync.db.session import current_worker, utcnow
from regsync.domain.masking import mask_text

log = structlog.get_logger(__name__)

#: Seconds between two renewals of a process's lease.
BEAT_S = 10.0
#: Seconds a lease runs from its last renewal: a process that misses four renewals in a row is taken for dead.
LEASE_S = 45.0

ROLES: tuple[str, ...] = ("daemon", "command")


def current_node() -> str:
    """This process's node: the host name and the PID namespace (Linux), e.g. ``web-1/pid:[4026531836]``.
    Two processes on one node see the same PIDs, so one can tell at once that the other's PID is gone."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = "-"
    return f"{socket.gethostname()}/{ns}"[:160]


def _pid_gone(worker: str, node: str | None) -> bool:
    """Whether ``worker`` (``host:pid``) ran on this node and its PID no longer exists."""
    if node != current_node():
        return False
    _, _, pid = worker.rpartition(":")
    if not pid.isdigit() or int(pid) <= 0:
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: the PID exists (another user's process)
        return False
    return False


@overload
def _as_dt(value: dt.datetime | str) -> dt.datetime: ...
@overload
def _as_dt(value: None) -> None: ...
def _as_dt(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def is_alive(row: Any, now: dt.datetime) -> bool:
    """Whether the process of a ``heartbeat`` row is alive at ``now`` (naive UTC): it has not stopped, its lease
    runs, and on this node its PID still exists."""
    if row is None or row.stopped_at is not None:
        return False
    lease = _as_dt(row.lease_until)
    if lease is None or lease <= now:
        return False
    return not _pid_gone(row.worker, row.node)


def beat(engine: Engine, *, worker: str | None = None, role: str = "command",
         next_runs: dict[str, dt.datetime] | None = None, now: dt.datetime | None = None,
         lease_s: float = LEASE_S) -> None:
    """Renew ``worker``'s lease (insert its row the first time; a stopped row starts again).

    Args:
        engine: the local store.
        worker: ``host:pid`` (default this process).
        role: ``daemon`` or ``command``; a row that is a daemon's stays one.
        next_runs: a daemon's next run times, job → naive UTC (kept as they were when ``None``).
        now: naive UTC (default now).
        lease_s: seconds the lease runs from ``now``.

    Raises:
        ValueError: an unknown role.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    worker = (worker or current_worker())[:64]
    now = now or utcnow()
    values: dict[str, Any] = {"role": role, "node": current_node(), "started_at": now, "beat_at": now,
                              "lease_until": now + dt.timedelta(seconds=lease_s), "stopped_at": None,
                              "next_runs": json.dumps({j: t.isoformat() for j, t in (next_runs or {}).items()},
                                                      sort_keys=True)}
    with engine.begin() as conn:
        stopped = conn.execute(select(Heartbeat.stopped_at).where(Heartbeat.worker == worker)).first()
        new_life = stopped is not None and stopped.stopped_at is not None  # the same name again: a new life

        def renew(new: Any) -> dict[str, Any]:
            out: dict[str, Any] = {"beat_at": new.beat_at, "lease_until": new.lease_until, "node": new.node}
            if role == "daemon":
                out["role"] = "daemon"
            if next_runs is not None:
                out["next_runs"] = new.next_runs
            if new_life:
                out.update(started_at=new.started_at, stopped_at=None, role=new.role)
            return out

        conn.execute(upsert(conn, Heartbeat.__table__, ("worker",), renew).values(worker=worker, **values))


def stop(engine: Engine, *, worker: str | None = None, role: str = "daemon", now: dt.datetime | None = None) -> None:
    """Say that ``worker`` stopped (default this process).

    Args:
        engine: the local store.
        worker: ``host:pid`` (default this process).
        role: what stopped: ``daemon`` (its row stays, as when it was last seen) or ``command`` (a command's row
            is deleted, its runs finished; a daemon's row of the same name is left alone).
        now: naive UTC (default now).
    """
    worker = (worker or current_worker())[:64]
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(delete(Heartbeat).where(Heartbeat.worker == worker, Heartbeat.role == "command"))
        if role == "daemon":
            conn.execute(update(Heartbeat).where(Heartbeat.worker == worker).values(
                stopped_at=now, lease_until=now, next_runs="{}"))


@dataclass
class WorkerInfo:
    """One row of ``heartbeat``, judged at a time.

    Attributes:
        worker: ``host:pid``.
        role: ``daemon`` or ``command``.
        alive: whether the process is alive (:func:`is_alive`).
        started_at: when it started (naive UTC).
        beat_at: its last renewal (naive UTC).
        stopped_at: when it said it stopped (naive UTC), or ``None``.
        next_runs: a daemon's next run times, job → naive UTC.
    """

    worker: str
    role: str
    alive: bool
    started_at: dt.datetime
    beat_at: dt.datetime
    stopped_at: dt.datetime | None
    next_runs: dict[str, dt.datetime] = field(default_factory=dict)


def workers(conn: Any, *, role: str | None = None, now: dt.datetime | None = None) -> list[WorkerInfo]:
    """The processes in ``heartbeat`` (of ``role`` if given), newest beat first, each judged alive or not.

    Args:
        conn: a connection on the local store.
        role: ``daemon`` or ``command`` (default both).
        now: naive UTC (default now).
    """
    now = now or utcnow()
    query = select(Heartbeat).order_by(Heartbeat.beat_at.desc())
    if role is not None:
        query = query.where(Heartbeat.role == role)
    out: list[WorkerInfo] = []
    for row in conn.execute(query).all():
        try:
            nxt = {j: dt.datetime.fromisoformat(t) for j, t in json.loads(row.next_runs or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            nxt = {}
        out.append(WorkerInfo(worker=row.worker, role=row.role, alive=is_alive(row, now),
                              started_at=_as_dt(row.started_at), beat_at=_as_dt(row.beat_at),
                              stopped_at=_as_dt(row.stopped_at), next_runs=nxt))
    return out


def dead_workers(conn: Any, claims: Iterable[tuple[str | None, dt.datetime | str | None]],
                 now: dt.datetime | None = None) -> set[str]:
    """Of the workers named in ``claims`` (worker, claimed or started at), those whose process is gone.

    A worker with a ``heartbeat`` row is dead when :func:`is_alive` says so; one without is dead when its claim
    is older than :data:`LEASE_S` (a process of this version takes its lease before it claims). This process is
    never dead. ``None`` (a run recorded before revision 0011) is never named dead here (the prune's one-day rule
    covers it).
    """
    now = now or utcnow()
    named = [(w, _as_dt(at)) for w, at in claims if w]
    if not named:
        return set()
    names = sorted({w for w, _ in named})
    rows = {r.worker: r for r in conn.execute(select(Heartbeat).where(Heartbeat.worker.in_(names))).all()}
    grace = now - dt.timedelta(seconds=LEASE_S)
    dead: set[str] = set()
    me = current_worker()
    for worker, at in named:
        if worker == me:  # this process is alive, whatever its row says
            continue
        row = rows.get(worker)
        if row is not None:
            if not is_alive(row, now):
                dead.add(worker)
        elif at is not None and at < grace:
            dead.add(worker)
    return dead


def abandoned(conn: Any, now: dt.datetime | None = None) -> tuple[list[Any], list[Any]]:
    """The runs and run slots still ``running`` whose process is gone (read only): (run rows, slot rows)."""
    now = now or utcnow()
    runs = conn.execute(select(Run.id, Run.kind, Run.worker, Run.started_at).where(Run.status == "running")).all()
    slots = conn.execute(select(RunSlot.id, RunSlot.job, RunSlot.scheduled_at, RunSlot.claimed_by,
                                RunSlot.claimed_at).where(RunSlot.state == "running")).all()
    dead = dead_workers(conn, [(r.worker, r.started_at) for r in runs]
                        + [(s.claimed_by, s.claimed_at) for s in slots], now)
    return [r for r in runs if r.worker in dead], [s for s in slots if s.claimed_by in dead]


def sweep(engine: Engine, now: dt.datetime | None = None) -> dict[str, int]:
    """Mark ``abandoned`` the runs and run slots left ``running`` by processes that are gone, each with a warning
    in the log (the run's summary says which process left it). An abandoned run's ``finished_at`` is its process's
    last heartbeat (naive UTC), when it was last seen alive; ``now`` for a process that had none.

    Returns:
        ``{"runs": n, "slots": m}``: how many were marked.
    """
    now = now or utcnow()
    with engine.begin() as conn:
        runs, slots = abandoned(conn, now)
        # a run ends where its process was last seen alive (its last heartbeat), not when it was found dead: the
        # process held its work (advisory locks, leases) until then, and nothing of it ran later
        last_seen = dict(conn.execute(select(Heartbeat.worker, Heartbeat.beat_at).where(
            Heartbeat.worker.in_(sorted({r.worker for r in runs if r.worker})))).all()) if runs else {}
        n_runs = n_slots = 0
        for r in runs:
            seen = _as_dt(last_seen.get(r.worker))
            started = _as_dt(r.started_at)
            ended = now if seen is None else min(now, max(seen, started) if started is not None else seen)
            summary = json.dumps({"error": f"abandoned: its process ({r.worker}) ended without finishing it"})
            n_runs += int(conn.execute(update(Run).where(Run.id == r.id, Run.status == "running").values(
                status="abandoned", finished_at=ended, summary=summary)).rowcount or 0)
        for s in slots:
            n_slots += int(conn.execute(update(RunSlot).where(RunSlot.id == s.id, RunSlot.state == "running")
                                        .values(state="abandoned", finished_at=now)).rowcount or 0)
    for r in runs:
        log.warning("run abandoned: its process ended without finishing it", run_id=r.id, kind=r.kind,
                    worker=mask_text(r.worker or ""))
    return {"runs": n_runs, "slots": n_slots}


@dataclass
class _Hold:
    engine: Engine
    worker: str
    role: str
    count: int = 0
    next_runs: Callable[[], dict[str, dt.datetime]] | None = None
    on_beat: Callable[[], None] | None = None
    failing: bool = False


class Keeper:
    """Renews the leases this process holds, one per (engine, worker), in a background thread (every
    :data:`BEAT_S` seconds). Holds are counted: the lease is given back when the last hold is released.

    Use the process-wide :data:`KEEPER`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: dict[tuple[int, str], _Hold] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, engine: Engine, *, worker: str | None = None, role: str = "command",
             next_runs: Callable[[], dict[str, dt.datetime]] | None = None,
             on_beat: Callable[[], None] | None = None) -> None:
        """Take (or count once more) this process's lease on ``engine``; the first hold beats at once.

        Args:
            engine: the local store.
            worker: ``host:pid`` (default this process).
            role: ``daemon`` (for the process's life) or ``command`` (while a run goes on).
            next_runs: called at each beat for a daemon's next run times (job → naive UTC).
            on_beat: called after each beat (the daemon's sweep); its errors are logged.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the first beat could not be written.
        """
        worker = (worker or current_worker())[:64]
        key = (id(engine), worker)
        with self._lock:
            h = self._holds.get(key)
            first = h is None
            if h is None:
                h = self._holds[key] = _Hold(engine, worker, role)
            h.count += 1
            if role == "daemon":
                h.role = "daemon"
            h.next_runs = next_runs or h.next_runs
            h.on_beat = on_beat or h.on_beat
        if first or role == "daemon":
            try:
                self._beat(h, raise_=True)
            except BaseException:
                self._drop(key, h)
                raise
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="regsync-heartbeat", daemon=True)
                self._thread.start()

    def _drop(self, key: tuple[int, str], h: _Hold) -> None:
        with self._lock:
            h.count -= 1
            if h.count <= 0 and self._holds.get(key) is h:
                del self._holds[key]

    def release(self, engine: Engine, *, worker: str | None = None) -> None:
        """Give one hold back; the last one says the process stopped (:func:`stop`)."""
        worker = (worker or current_worker())[:64]
        key = (id(engine), worker)
        with self._lock:
            h = self._holds.get(key)
            if h is None:
                return
            h.count -= 1
            last = h.count <= 0
            if last:
                del self._holds[key]
        if last:
            try:
                stop(engine, worker=worker, role=h.role)
            except Exception as exc:  # noqa: BLE001 — the lease runs out on its own
                log.warning("heartbeat: could not record the stop", error=mask_text(str(exc)))

    def held(self, engine: Engine, worker: str | None = None) -> bool:
        """Whether this process holds a lease on ``engine``."""
        with self._lock:
            return (id(engine), (worker or current_worker())[:64]) in self._holds

    def _beat(self, h: _Hold, *, raise_: bool = False) -> None:
        try:
            beat(h.engine, worker=h.worker, role=h.role, next_runs=h.next_runs() if h.next_runs else None)
        except Exception as exc:
            if raise_:
                raise
            if not h.failing:
                log.warning("heartbeat not written; retried at the next beat", worker=h.worker,
                            error=mask_text(str(exc)))
            h.failing = True
            return
        if h.failing:
            log.info("heartbeat written again", worker=h.worker)
        h.failing = False
        if h.on_beat is not None:
            try:
                h.on_beat()
            except Exception as exc:  # noqa: BLE001 — the next beat tries again
                log.warning("heartbeat: the sweep failed", error=mask_text(str(exc)))

    def _loop(self) -> None:
        while True:
            self._wake.wait(BEAT_S)
            self._wake.clear()
            with self._lock:
                holds = list(self._holds.values())
                if not holds:
                    self._thread = None
                    return
            for h in holds:
                self._beat(h)

    def beat_now(self) -> None:
        """Renew every lease held now, at once (for tests and for a daemon that has just changed its schedule)."""
        self._wake.set()


#: This process's keeper of leases.
KEEPER = Keeper()

__all__ = [
    "BEAT_S",
    "KEEPER",
    "LEASE_S",
    "Keeper",
    "WorkerInfo",
    "abandoned",
    "beat",
    "current_node",
    "dead_workers",
    "is_alive",
    "stop",
    "sweep",
    "workers",
]
