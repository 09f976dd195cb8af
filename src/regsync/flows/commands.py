"""What the commands do, apart from parsing: runs recorded in the ``run`` table, summaries, progress."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import structlog
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, func, select, text, update

from regsync.db.hashkey import check_hash_key
from regsync.db.models import Outbox, Run
from regsync.db.session import make_engine, utcnow
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_text
from regsync.settings import Settings

log = structlog.get_logger(__name__)
console = Console(stderr=True)



class Advance(Protocol):
    """What :func:`progress_bars` yields: ``advance(label, n, total=None)``."""

    def __call__(self, label: str, n: int, total: int | None = None) -> None:
        """Move ``label``'s bar on by ``n`` items; ``total``, when given, sets how many it has."""


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Advance]:
    """A Rich progress display on stderr; yields ``advance(label, n, total)``. A no-op when disabled."""
    if not enabled:
        yield lambda label, n, total=None: None
        return
    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        def advance(label: str, n: int, total: int | None = None) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            elif total is not None:
                bar.update(tasks[label], total=total)
            bar.advance(tasks[label], n)

        yield advance


#: The runs this process has started and not finished: (id of the engine, run id) (each holds a lease).
_OPEN_RUNS: set[tuple[int, int]] = set()


def start_run(engine: Engine, kind: str) -> int:
    """Record the start of a run (UTC), as this process's (``run.worker``); returns its id.

    The process holds its lease (:data:`regsync.db.liveness.KEEPER`) until :func:`finish_run`, so that a run whose
    process is killed is found abandoned (issue 12, item 11).
    """
    from regsync.db.liveness import KEEPER

    KEEPER.hold(engine)
    try:
        with engine.begin() as conn:
            run_id = int(conn.execute(Run.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
                kind=kind, started_at=utcnow(), status="running", summary="{}")).inserted_primary_key[0])
    except BaseException:
        KEEPER.release(engine)
        raise
    _OPEN_RUNS.add((id(engine), run_id))
    return run_id


def finish_run(engine: Engine, run_id: int, status: str, summary: dict[str, Any]) -> None:
    """Record how a run ended: ``success``, ``partial`` or ``failed``, with its summary; give back the lease
    :func:`start_run` took."""
    try:
        with engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(
                finished_at=utcnow(), status=status, summary=json.dumps(summary, default=str, sort_keys=True)))
    finally:
        if (id(engine), run_id) in _OPEN_RUNS:
            _OPEN_RUNS.discard((id(engine), run_id))
            from regsync.db.liveness import KEEPER

            KEEPER.release(engine)


def outbox_failures(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """Records whose outbox rows are failed or blocked now: (kind → count, code → count), by record."""
    by_kind: dict[str, int] = {}
    by_code: dict[str, int] = {}
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT entity, last_code, COUNT(*) FROM (SELECT DISTINCT entity, local_id, last_code FROM outbox "
            "WHERE state IN ('failed', 'blocked')) t GROUP BY entity, last_code")).all()
    for entity, code, n in rows:
        by_kind[KIND_NAMES[entity]] = by_kind.get(KIND_NAMES[entity], 0) + n
        by_code[code or "UNKNOWN"] = by_code.get(code or "UNKNOWN", 0) + n
    return by_kind, by_code


def outbox_backlog(engine: Engine) -> tuple[int, dt.datetime | None]:
    """Rows waiting to be sent (pending or deferred) and the earliest time one becomes available (UTC)."""
    with engine.connect() as conn:
        n, first = conn.execute(select(func.count(), func.min(Outbox.available_at))
                                .where(Outbox.state.in_(("pending", "deferred")))).one()
    if isinstance(first, str):
        first = dt.datetime.fromisoformat(first)
    return int(n), first


def _named(counter: dict[str, int]) -> dict[str, int]:
    return {KIND_NAMES.get(k, k): v for k, v in sorted(counter.items())}


class StoreError(Exception):
    """The local store cannot be used as it is (unreachable, not migrated, read-only): exit code 1."""


def open_store(url: str, *, migrated: bool = True) -> Engine:
    """An engine on the local store, checked.

    Args:
        url: the SQLAlchemy URL (``REGSYNC_DATABASE_URL``).
        migrated: require the newest schema (``regsync db upgrade``).

    Raises:
        ConfigError: the URL is malformed or names a database regsync cannot drive.
        StoreError: the store cannot be reached or opened, or its schema is not the newest.
    """
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from regsync.db.migrate import current_revision, head_revision
    from regsync.settings import ConfigError

    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"REGSYNC_DATABASE_URL is not a database URL regsync can use ({exc}); "
                          "examples: sqlite:///regsync.db, postgresql+psycopg://user@host:5432/db") from exc
    except ImportError as exc:
        raise ConfigError(f"REGSYNC_DATABASE_URL needs a database driver that is not installed: {exc}") from exc
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if path and path != ":memory:" and not engine.url.query.get("mode") and not Path(path).exists() \
                and migrated:
            engine.dispose()
            raise StoreError(f"no local store at {path}: run `regsync db upgrade` (or `regsync generate`) first")
    if migrated:
        try:
            rev = current_revision(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError("cannot open the local store: "
                             f"{mask_text(str(getattr(exc, 'orig', None) or exc))}") from exc
        if rev != head_revision():
            engine.dispose()
            raise StoreError(f"the local store is at schema revision {rev or 'none'}, not {head_revision()}: "
                             "run `regsync db upgrade` first")
    return engine


def require_registry(settings: Settings) -> None:
    """Check, before any call, that the registry settings are complete.

    Raises:
        ConfigError: no client id or secret, or a base URL that is not http(s).
    """
    from urllib.parse import urlsplit

    from regsync.settings import ConfigError

    reg = settings.registry
    parts = urlsplit(reg.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"REGSYNC_REGISTRY_URL must be an http(s) URL, got {reg.url!r}")
    if not reg.client_id or not reg.client_secret:
        raise ConfigError("REGSYNC_CLIENT_ID and REGSYNC_CLIENT_SECRET (or REGSYNC_CLIENT_SECRET_FILE) are required")


def run_sync(settings: Settings, *, progress: bool = False, until_quiet: bool = False,
             timeout_s: float = 3600.0, stall_s: float = 300.0, engine: Engine | None = None,
             stop: Callable[[], bool] | None = None, outbound: bool = True, inbound: bool = True,
             client: Any = None) -> tuple[int, dict[str, Any]]:
    """One sync pass: outbound (push what the outbox holds), then inbound (pull the change feed and merge),
    recorded as a run of kind ``sync``; with ``until_quiet``, passes until neither side has anything left.

    The feed's first cursor is taken before the first push (design.md, flow 2), so that no registry change
    made while the first push runs is missed.

    Args:
        settings: regsync's settings.
        progress: draw progress bars (a terminal only).
        until_quiet: repeat passes, waiting for deferred rows, until the outbox has nothing waiting and a pull
            applies nothing (the pull's merges may queue pushes, the pushes make echoes the pull drops).
        timeout_s: with ``until_quiet``, give up after this many seconds.
        stall_s: with ``until_quiet``, give up when this many seconds pass with no record settled.
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between steps; when it turns true the pass ends (claims released) and the run is
            recorded as ``failed`` with ``error`` ``interrupted``.
        outbound: run the outbound flow.
        inbound: run the inbound flow.
        client: a :class:`~regsync.registry.client.RegistryClient` to use and leave open (the daemon keeps one, and
            its token, across passes); its counters are reset for this run. Default: a new one for this run.

    Returns:
        (exit code, summary) — the summary has ``pushed``, ``linked``, ``failed`` (kind → count, this run),
        ``failed_by_code``, ``still_failed`` (records failed or blocked in the outbox now), ``unchanged``,
        ``deferred``, ``merged_on_push`` (``VERSION_MISMATCH`` merges), ``backlog``, and for the inbound flow
        ``pulled`` (feed items read, kind → count), ``merged``, ``adopted``, ``created_locally``,
        ``registry_owned``, ``conflicts``, ``transferred_out``, ``ended_locally`` (kind → count), ``inbound``
        (the poller's other counters, the decisions by ``kind.field:rule:winner``, and ``unknown_types``/
        ``unknown_fields``: feed entries and lookup results of record types this client does not know, skipped,
        and fields it does not know, ignored, registry-api.md §1) and ``reconcile_due``; then ``run_id``,
        ``status`` (``success``; ``partial`` when this run failed records or found a full reconcile due — records
        failed by earlier runs count in ``still_failed`` only; ``failed``), ``seconds`` and ``client`` (calls and
        retries, and ``unknown_types``/``unknown_fields`` of every answer of the run, the relay's included). Exit
        code 0 when the run
        completed (also with records failed on their data), 1 when it failed, 130 when interrupted.

    Raises:
        ConfigError: incomplete registry settings or a bad database URL, or a hash key that is not the
            store's (:class:`regsync.db.hashkey.HashKeyMismatch`), before anything is done.
        StoreError: the local store is unusable.
    """
    from regsync.flows.inbound import InboundStats, Poller
    from regsync.flows.outbound import Relay, RelayHalted, RelayStats
    from regsync.registry.errors import InvalidClient, RegistryError
    from regsync.service.daemon import SingletonLock

    require_registry(settings)
    own_engine = engine is None
    engine = engine or open_store(settings.database.url)
    check_hash_key(engine, settings.hash_key, dispose_on_error=own_engine)  # before anything is recorded
    from regsync.service.status import is_paused

    paused = [flow for flow, on in (("outbound", outbound), ("inbound", inbound)) if on and is_paused(engine, flow)]
    for flow in paused:  # an operator's pause holds for manual passes too; changes are still captured
        log.warning(f"{flow} is paused (regsync pause): skipped; `regsync resume` to let it run", flow=flow)
    outbound = outbound and "outbound" not in paused
    inbound = inbound and "inbound" not in paused
    started = time.monotonic()
    run_id = start_run(engine, "sync")
    total = RelayStats()
    pulled = InboundStats()
    status, code, error = "success", 0, None
    client_stats: dict[str, Any] = {}
    relay: Relay | None = None
    phase = "outbound"
    try:
        with contextlib.ExitStack() as stack, \
                _client(settings, client) as client, \
                progress_bars(progress) as advance:
            def on_batch(kind: str, n: int) -> None:
                advance(KIND_NAMES[kind], n)

            stack.callback(lambda: client_stats.update(client.stats.as_dict()))
            relay = Relay(engine, client, settings, progress=on_batch)
            stack.callback(relay.close)
            poller = Poller(engine, client, settings, record_run=False) if inbound else None
            if outbound or poller is not None:
                # before the first push (design.md, flow 2), whichever flows this pass runs: an outbound-only
                # first push (`sync --outbound`, the daemon's relay job, inbound paused) must not leave the pull
                # to start from a head taken after it (the registry's changes in between never pulled)
                taker = poller or Poller(engine, client, settings, record_run=False)
                taker.take_first_cursor()
                if taker.stats.reconcile_due:  # links but no cursor: the pull started from the head
                    pulled.reconcile_due, pulled.reconcile_reason = True, taker.stats.reconcile_reason
                    pulled.reconcile_found = pulled.reconcile_found or taker.stats.reconcile_found
            deadline = time.monotonic() + timeout_s
            last_progress = time.monotonic()
            while True:
                settled = 0
                if outbound:
                    try:
                        phase = "outbound"
                        stats = relay.run(stop=stop)
                    except (RegistryError, OSError) as exc:
                        stats = relay.stats
                        if not until_quiet or isinstance(exc, RelayHalted) or time.monotonic() > deadline \
                                or time.monotonic() - last_progress > stall_s:
                            raise
                        log.warning("pass interrupted by the registry; waiting", error=mask_text(str(exc)))
                    _merge(total, stats)
                    relay.stats = RelayStats()
                    settled += sum(stats.pushed.values()) + sum(stats.linked.values()) \
                        + sum(stats.failed.values()) + sum(stats.unchanged.values())
                applied = 0
                if poller is not None and not (stop is not None and stop()):
                    try:
                        phase = "inbound"
                        with SingletonLock(engine, "inbound") as held:
                            if held:
                                got = poller.run(stop=stop)
                            else:  # a daemon's pull holds the feed now (PostgreSQL); it applies the same changes
                                log.info("pull skipped: another process is pulling the change feed")
                                got = poller.stats = InboundStats()
                    except (RegistryError, OSError) as exc:
                        got = poller.stats
                        if not until_quiet or time.monotonic() > deadline \
                                or time.monotonic() - last_progress > stall_s:
                            raise
                        log.warning("pull interrupted by the registry; waiting", error=mask_text(str(exc)))
                    finally:
                        _merge_inbound(pulled, poller.stats)
                    applied = got.applied + sum(got.pushes_queued.values()) + sum(got.conflicts.values())
                    settled += got.changes
                if settled:
                    last_progress = time.monotonic()
                if stop is not None and stop():
                    raise InterruptedError("interrupted")
                if not until_quiet:
                    break
                backlog, first = outbox_backlog(engine) if outbound else (0, None)
                if backlog == 0 and applied == 0:
                    break
                if time.monotonic() > deadline or time.monotonic() - last_progress > stall_s:
                    raise TimeoutError(f"{backlog} outbox rows still wait after "
                                       f"{round(time.monotonic() - started)} s; the registry keeps refusing "
                                       "or failing (see the log)")
                if backlog:
                    wait = max(0.05, min(5.0, ((first - utcnow()).total_seconds() if first else 0.5)))
                    time.sleep(wait)
    except RelayHalted as exc:
        status, code, error = "failed", 1, str(exc)
    except InterruptedError:
        status, code, error = "failed", 130, "interrupted"
        log.warning("sync interrupted: claims released; the rest is sent by the next sync")
    except Exception as exc:  # noqa: BLE001 — the run is recorded as failed and reported
        # refused credentials or a refusal of the whole client need a person, whichever flow met them (the relay
        # raises its own alarm as it halts)
        alarm = isinstance(exc, InvalidClient) or bool(getattr(exc, "systemic", False))
        log.error("sync failed", error=mask_text(str(exc)), flow=phase, **({"alarm": True} if alarm else {}))
        status, code, error = "failed", 1, str(exc)
    finally:
        if relay is not None and (relay.stats.batches or relay.stats.failed or relay.stats.pushed):
            _merge(total, relay.stats)  # what the interrupted pass did before it stopped
    still_failed, still_by_code = outbox_failures(engine)
    backlog, _ = outbox_backlog(engine)
    # partial: this run's own work fell short (records it failed, the feed cut short under it: reconcile_found);
    # records failed in earlier runs (still_failed) and a reconcile due from before (reconcile_due) are reported
    # but are no failure of this run
    if status == "success" and (total.failed or pulled.reconcile_found):
        status = "partial"
    summary: dict[str, Any] = {
        "run_id": run_id, "status": status,
        "pushed": _named(total.pushed), "linked": _named(total.linked), "failed": _named(total.failed),
        "failed_by_code": dict(sorted(total.failed_by_code.items())), "unchanged": _named(total.unchanged),
        "deferred": _named(total.deferred), "merged_on_push": _named(total.merged),
        "held_fields": _named(total.held),
        "decisions_on_push": dict(sorted(total.decisions.items())), "decision_log_on_push": total.decision_log,
        "still_failed": still_failed, "still_failed_by_code": still_by_code,
        "backlog": backlog, "batches": total.batches,
    }
    if inbound:
        summary.update(inbound_summary(pulled))
        for kind, n in _named(total.conflicts).items():  # opened by the merges of VERSION_MISMATCH on push
            summary["conflicts"][kind] = summary["conflicts"].get(kind, 0) + n
    else:
        summary["conflicts"] = _named(total.conflicts)
        if pulled.reconcile_due:
            summary.update(reconcile_due=True, reconcile_reason=pulled.reconcile_reason)
    if paused:
        summary["paused"] = paused
    summary.update(seconds=round(time.monotonic() - started, 3), client=client_stats)
    if error:
        summary["error"] = mask_text(error)
    finish_run(engine, run_id, status, summary)
    if code != 130:  # an interruption is neither a success nor a failure of a flow
        from regsync.service.status import record_flow_result

        for flow, ran in (("outbound", outbound), ("inbound", inbound)):
            if not ran:
                continue
            if code == 0 or (flow == "outbound" and phase == "inbound"):  # the push was through
                record_flow_result(engine, flow, True)
            elif flow == phase:
                record_flow_result(engine, flow, False, error)
    if own_engine:
        engine.dispose()
    return code, summary


def _merge_inbound(total: Any, stats: Any) -> None:
    """Add one poller pass's counters to ``total`` (both :class:`regsync.flows.inbound.InboundStats`)."""
    for name in ("pages", "changes", "repeats", "echoes", "stale", "transferred_out"):
        setattr(total, name, getattr(total, name) + getattr(stats, name))
    for name in ("pulled", "merged", "unchanged", "created", "adopted", "registry_owned", "ended",
                 "pushes_queued", "conflicts", "skipped", "decisions", "unknown_types", "unknown_fields"):
        getattr(total, name).update(getattr(stats, name))
    room = 2_000 - len(total.decision_log)
    if room > 0:
        total.decision_log.extend(stats.decision_log[:room])
    if stats.reconcile_due:
        total.reconcile_due, total.reconcile_reason = True, stats.reconcile_reason
    total.reconcile_found = total.reconcile_found or stats.reconcile_found
    total.cursor = stats.cursor or total.cursor


def inbound_summary(stats: Any) -> dict[str, Any]:
    """The inbound part of a sync summary (issue 4's keys, kind → count with the plural kind names).

    ``unknown_types`` (record type → entries skipped) and ``unknown_fields`` (``"type.field"`` → records that
    carried it) are at the top level, as in a pull's own summary (:func:`run_pull`, ``report show``), whenever the
    pull ran, empty ones included (registry-api.md §1, v1.1); ``inbound`` repeats them beside the other counters.
    """
    return {
        "unknown_types": dict(sorted(stats.unknown_types.items())),
        "unknown_fields": dict(sorted(stats.unknown_fields.items())),
        "pulled": _named(stats.pulled), "merged": _named(stats.merged), "adopted": _named(stats.adopted),
        "created_locally": _named(stats.created), "registry_owned": _named(stats.registry_owned),
        "conflicts": _named(stats.conflicts), "transferred_out": {"volunteers": stats.transferred_out}
        if stats.transferred_out else {},
        "ended_locally": _named(stats.ended), "pushes_queued": _named(stats.pushes_queued),
        "reconcile_due": stats.reconcile_due, "reconcile_reason": stats.reconcile_reason,
        "inbound": {"pages": stats.pages, "changes": stats.changes, "repeats": stats.repeats,
                    "echoes": stats.echoes, "stale": stats.stale, "unchanged": _named(stats.unchanged),
                    "skipped": dict(sorted(stats.skipped.items())), "decisions": dict(sorted(stats.decisions.items())),
                    "unknown_types": dict(sorted(stats.unknown_types.items())),
                    "unknown_fields": dict(sorted(stats.unknown_fields.items())),
                    "decision_log": list(stats.decision_log), "cursor": stats.cursor},
    }


def _client(settings: Settings, client: Any) -> contextlib.AbstractContextManager[Any]:
    """The given client, left open with its counters reset for a new run, or a new client closed afterwards."""
    from regsync.registry.client import ClientStats, RegistryClient

    if client is None:
        return RegistryClient(settings.registry, province=settings.province)
    client.stats = ClientStats()
    return contextlib.nullcontext(client)


def run_pull(settings: Settings, *, engine: Engine | None = None, stop: Callable[[], bool] | None = None,
             max_pages: int | None = None, client: Any = None) -> tuple[int, dict[str, Any]]:
    """One inbound pass (design.md, flow 2): read the change feed from the saved cursor until it has no more and
    apply it (:class:`regsync.flows.inbound.Poller`), recorded as a run of kind ``inbound``.

    Args:
        settings: regsync's settings.
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between pages; when it turns true the pass ends after the page in hand (its cursor saved).
        max_pages: read at most this many pages.
        client: a registry client to use and leave open (see :func:`run_sync`). Default: a new one.

    Returns:
        (exit code, summary): the summary is :meth:`regsync.flows.inbound.InboundStats.as_dict` plus ``status``
        and ``seconds``; ``reconcile_due`` is true when the cursor expired (``CURSOR_EXPIRED``) or there was
        none although records were linked (by this pass or an earlier one). Exit code 0 when the pass completed
        (also when a reconcile is due: the run is ``partial`` when this pass found the feed cut short itself,
        ``reconcile_found``), 1 when the registry failed it (what was applied before stays applied, with its
        cursor).

    Raises:
        ConfigError: incomplete registry settings or a bad database URL, or a hash key that is not the
            store's (:class:`regsync.db.hashkey.HashKeyMismatch`), before anything is done.
        StoreError: the local store is unusable.
    """
    from regsync.db.liveness import KEEPER
    from regsync.flows.inbound import Poller

    require_registry(settings)
    own_engine = engine is None
    engine = engine or open_store(settings.database.url)
    check_hash_key(engine, settings.hash_key, dispose_on_error=own_engine)  # before anything is recorded
    started = time.monotonic()
    code = 0
    try:
        KEEPER.hold(engine)  # the poller records its run itself: the lease covers it (issue 12, item 11)
    except BaseException:
        if own_engine:
            engine.dispose()
        raise
    try:
        with _client(settings, client) as client:
            poller = Poller(engine, client, settings)
            try:
                stats = poller.run(stop=stop, max_pages=max_pages)
                status = "partial" if stats.reconcile_found else "success"
            except Exception as exc:  # noqa: BLE001 — recorded by the poller as failed; reported here
                log.error("pull failed", error=mask_text(str(exc)))
                stats, status, code = poller.stats, "failed", 1
                summary_error: str | None = mask_text(str(exc))
            else:
                summary_error = None
        from regsync.service.status import record_flow_result

        record_flow_result(engine, "inbound", code == 0, summary_error)
    finally:
        KEEPER.release(engine)
        if own_engine:
            engine.dispose()
    summary = stats.as_dict()
    summary.pop("decision_log", None)
    summary.update(status=status, seconds=round(time.monotonic() - started, 3))
    if summary_error:
        summary["error"] = summary_error
    return code, summary


def _merge(total: Any, stats: Any) -> None:
    for name in ("pushed", "linked", "failed", "failed_by_code", "unchanged", "deferred", "merged", "held",
                 "decisions", "conflicts"):
        getattr(total, name).update(getattr(stats, name))
    room = 2_000 - len(total.decision_log)
    if room > 0:
        total.decision_log.extend(stats.decision_log[:room])
    total.batches += stats.batches


def print_sync_summary(summary: dict[str, Any]) -> None:
    """A Rich table of a sync summary, for a terminal."""
    out = Console()
    table = Table(title=f"sync run {summary['run_id']}: {summary['status']} in {summary['seconds']} s",
                  box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    for col in ("kind", "pushed", "linked", "unchanged", "failed", "deferred"):
        table.add_column(col, justify="right" if col != "kind" else "left", no_wrap=True)
    for kind in KIND_NAMES.values():
        table.add_row(kind, *(str(summary[c].get(kind, 0)) for c in ("pushed", "linked", "unchanged", "failed",
                                                                      "deferred")))
    out.print(table)
    if "pulled" in summary:
        inbound = Table(title="inbound (the registry's changes)", box=box.SIMPLE_HEAD, padding=(0, 0),
                        pad_edge=False)
        cols = ("pulled", "merged", "adopted", "created_locally", "registry_owned", "conflicts", "ended_locally")
        inbound.add_column("kind", no_wrap=True)
        for col in cols:
            inbound.add_column(col.replace("_", " "), justify="right", no_wrap=True)
        for kind in KIND_NAMES.values():
            inbound.add_row(kind, *(str(summary[c].get(kind, 0)) for c in cols))
        out.print(inbound)
        info = summary.get("inbound", {})
        out.print(f"feed: {info.get('changes', 0)} changes in {info.get('pages', 0)} pages; echoes "
                  f"{info.get('echoes', 0)}, repeats {info.get('repeats', 0)}, stale {info.get('stale', 0)}; "
                  f"transferred out {summary['transferred_out'].get('volunteers', 0)}")
        if info.get("unknown_types"):
            out.print("skipped, of record types regsync does not know: "
                      + ", ".join(f"{k} {v}" for k, v in info["unknown_types"].items()))
        if summary.get("reconcile_due"):
            out.print(f"[red]a full reconcile is due[/red] ({summary.get('reconcile_reason')}): run "
                      "`regsync reconcile`")
    if summary.get("paused"):
        out.print(f"[yellow]paused, skipped:[/yellow] {', '.join(summary['paused'])} (`regsync resume` to let it run)")
    if summary["failed_by_code"]:
        out.print("failures by code: " + ", ".join(f"{k} {v}" for k, v in summary["failed_by_code"].items()))
    if summary["still_failed"]:
        out.print("records failed or blocked in the outbox: "
                  + ", ".join(f"{k} {v}" for k, v in summary["still_failed"].items()))
    if summary.get("error"):
        out.print(f"[red]error:[/red] {summary['error']}")


def run_generate(settings: Settings, *, scale: float, seed: int, progress: bool = False,
                 engine: Engine | None = None, append: bool = False) -> dict[str, Any]:
    """Migrate the store and fill it with a generated data set; returns counts, dirt and seconds.

    Raises:
        ConfigError: the store already holds volunteers and ``append`` is false (the same seed would make the
            same people again), or the database URL is malformed.
        StoreError: the store cannot be opened.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from regsync.db.migrate import upgrade
    from regsync.generate.generator import generate
    from regsync.settings import ConfigError

    own = engine is None
    engine = engine or open_store(settings.database.url, migrated=False)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            existing = conn.execute(text("SELECT COUNT(*) FROM volunteer")).scalar_one()
    except SQLAlchemyError as exc:
        raise StoreError("cannot open or migrate the local store: "
                         f"{mask_text(str(getattr(exc, 'orig', None) or exc))}") from exc
    if existing and not append:
        raise ConfigError(f"the local store already holds {existing} volunteers; generate into an empty store, "
                          "or pass --append to add to it")
    with progress_bars(progress) as advance:
        def on_progress(kind: str, done: int, total: int) -> None:
            advance(kind, 0, total)
            advance(kind, done - _seen.get(kind, 0))
            _seen[kind] = done

        _seen: dict[str, int] = {}
        summary = generate(engine, scale, seed, progress=on_progress)
    # fresh statistics after a bulk load, so the planners use the indexes from the first claim on
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    if own:
        engine.dispose()
    kinds = ("org", "volunteer", "membership", "activity", "service_record")
    return {"scale": summary.scale, "seed": summary.seed, "as_of": summary.as_of.isoformat(),
            "counts": {KIND_NAMES[k]: summary.counts.get(k, 0) for k in kinds},
            "org_levels": {k: v for k, v in summary.counts.items() if k not in kinds},
            "dirt": dict(summary.dirt), "seconds": round(summary.seconds, 3),
            "rows_per_second": round(summary.rows_per_second)}


def print_generate_summary(summary: dict[str, Any]) -> None:
    """Counts per kind and dirt per kind, for a terminal."""
    out = Console()
    table = Table(title="generated")
    table.add_column("kind")
    table.add_column("records", justify="right")
    for kind, n in (summary.get("counts") or {}).items():
        table.add_row(kind, f"{n:,}")
    out.print(table)
    if summary.get("dirt"):
        out.print("dirt made on purpose: " + ", ".join(f"{k} {v}" for k, v in summary["dirt"].items()))
