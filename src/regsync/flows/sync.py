"""A sync pass (design.md, flows 1 and 2): push what the outbox holds, pull the change feed and merge it, recorded
as a run; and a pull on its own. The operator's ``regsync sync`` and the daemon's outbound and inbound jobs run
these."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine

from regsync.db.flowstate import is_paused, record_flow_result
from regsync.db.liveness import KEEPER
from regsync.db.locks import SingletonLock
from regsync.db.runs import outbox_backlog, outbox_failures
from regsync.db.session import utcnow
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_text
from regsync.flows.inbound import InboundStats, Poller
from regsync.flows.outbound import Relay, RelayHalted, RelayStats
from regsync.flows.runs import Advance, RecordedRun, no_progress, open_client, run_store
from regsync.registry.errors import InvalidClient, RegistryError
from regsync.registry.port import RegistryPort
from regsync.settings import Settings

log = structlog.get_logger(__name__)


def _named(counter: dict[str, int]) -> dict[str, int]:
    return {KIND_NAMES.get(k, k): v for k, v in sorted(counter.items())}


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync pass did (:func:`sync_pass`); :meth:`as_summary` is the summary :func:`run_sync` returns and the
    run row keeps.

    Attributes:
        code: the exit code (0 completed, also with records failed on their data; 1 failed; 130 interrupted).
        run_id: the run's id.
        status: ``success``, ``partial`` (this pass failed records or found the feed cut short) or ``failed``.
        relay: the relay's counters over the pass (kind → records, by entity name).
        pulled: the pull's counters (empty when the pull did not run).
        inbound: whether the pull ran.
        still_failed: records failed or blocked in the outbox now, by plural kind name; ``still_failed_by_code``
            the same by code.
        backlog: outbox rows still waiting.
        paused: the flows an operator's pause skipped.
        seconds: how long the pass took.
        client: the client's counters of the pass.
        error: the error that ended the pass, masked, or ``None``.
    """

    code: int
    run_id: int | None
    status: str
    relay: RelayStats
    pulled: InboundStats
    inbound: bool
    still_failed: dict[str, int]
    still_failed_by_code: dict[str, int]
    backlog: int
    paused: list[str]
    seconds: float
    client: dict[str, Any]
    error: str | None = None

    @property
    def sent(self) -> int:
        """Records the registry took in this pass: created or updated (pushed) and linked."""
        return sum(self.relay.pushed.values()) + sum(self.relay.linked.values())

    @property
    def failed(self) -> int:
        """Records this pass failed."""
        return sum(self.relay.failed.values())

    @property
    def did_work(self) -> bool:
        """Whether the pass sent a batch or settled a record (an idle relay tick does neither)."""
        r = self.relay
        return bool(r.batches or r.pushed or r.linked or r.failed or r.unchanged or r.deferred)

    def as_summary(self) -> dict[str, Any]:
        """The pass's summary, plain data for ``--json``, the run row, the log line and ``/metrics`` (the keys
        :func:`run_sync` lists)."""
        total, pulled = self.relay, self.pulled
        summary: dict[str, Any] = {
            "run_id": self.run_id, "status": self.status,
            "pushed": _named(total.pushed), "linked": _named(total.linked), "failed": _named(total.failed),
            "failed_by_code": dict(sorted(total.failed_by_code.items())), "unchanged": _named(total.unchanged),
            "deferred": _named(total.deferred), "merged_on_push": _named(total.merged),
            "held_fields": _named(total.held),
            "decisions_on_push": dict(sorted(total.decisions.items())), "decision_log_on_push": total.decision_log,
            "still_failed": self.still_failed, "still_failed_by_code": self.still_failed_by_code,
            "backlog": self.backlog, "batches": total.batches,
        }
        if self.inbound:
            summary.update(inbound_summary(pulled))
            for kind, n in _named(total.conflicts).items():  # opened by the merges of VERSION_MISMATCH on push
                summary["conflicts"][kind] = summary["conflicts"].get(kind, 0) + n
        else:
            summary["conflicts"] = _named(total.conflicts)
            if pulled.reconcile_due:
                summary.update(reconcile_due=True, reconcile_reason=pulled.reconcile_reason)
        if self.paused:
            summary["paused"] = list(self.paused)
        summary.update(seconds=self.seconds, client=self.client)
        if self.error:
            summary["error"] = self.error
        return summary


def run_sync(settings: Settings, *, progress: Advance | None = None, until_quiet: bool = False,
             timeout_s: float = 3600.0, stall_s: float = 300.0, engine: Engine | None = None,
             stop: Callable[[], bool] | None = None, outbound: bool = True, inbound: bool = True,
             client: RegistryPort | None = None) -> tuple[int, dict[str, Any]]:
    """One sync pass: outbound (push what the outbox holds), then inbound (pull the change feed and merge),
    recorded as a run of kind ``sync``; with ``until_quiet``, passes until neither side has anything left.

    The feed's first cursor is taken before the first push (design.md, flow 2), so that no registry change
    made while the first push runs is missed.

    Args:
        settings: regsync's settings.
        progress: called as records are sent (``advance(kind's plural name, n)``); default: nothing drawn.
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
    outcome = sync_pass(settings, progress=progress, until_quiet=until_quiet, timeout_s=timeout_s, stall_s=stall_s,
                        engine=engine, stop=stop, outbound=outbound, inbound=inbound, client=client)
    return outcome.code, outcome.as_summary()


def sync_pass(settings: Settings, *, progress: Advance | None = None, until_quiet: bool = False,
             timeout_s: float = 3600.0, stall_s: float = 300.0, engine: Engine | None = None,
             stop: Callable[[], bool] | None = None, outbound: bool = True, inbound: bool = True,
             client: RegistryPort | None = None) -> SyncOutcome:
    """:func:`run_sync`'s pass, its outcome as a :class:`SyncOutcome` (the daemon's relay job reads it); the same
    arguments, checks and errors."""

    with run_store(settings, engine) as store, RecordedRun(store, "sync") as run:
        return _sync(settings, store, run, progress=progress, until_quiet=until_quiet, timeout_s=timeout_s,
                     stall_s=stall_s, stop=stop, outbound=outbound, inbound=inbound, client=client)


def _sync(settings: Settings, engine: Engine, run: RecordedRun, *, progress: Advance | None, until_quiet: bool,
          timeout_s: float, stall_s: float, stop: Callable[[], bool] | None, outbound: bool, inbound: bool,
          client: RegistryPort | None) -> SyncOutcome:
    """The sync pass of :func:`sync_pass`, in its recorded run on a checked store."""
    paused = [flow for flow, on in (("outbound", outbound), ("inbound", inbound)) if on and is_paused(engine, flow)]
    for flow in paused:  # an operator's pause holds for manual passes too; changes are still captured
        log.warning(f"{flow} is paused (regsync pause): skipped; `regsync resume` to let it run", flow=flow)
    outbound = outbound and "outbound" not in paused
    inbound = inbound and "inbound" not in paused
    started = time.monotonic()
    run_id = run.run_id
    total = RelayStats()
    pulled = InboundStats()
    status, code, error = "success", 0, None
    client_stats: dict[str, Any] = {}
    relay: Relay | None = None
    phase = "outbound"
    try:
        with contextlib.ExitStack() as stack, \
                open_client(settings, client) as client:
            advance = progress or no_progress

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
    outcome = SyncOutcome(
        code=code, run_id=run_id, status=status, relay=total, pulled=pulled, inbound=inbound,
        still_failed=still_failed, still_failed_by_code=still_by_code, backlog=backlog, paused=list(paused),
        seconds=round(time.monotonic() - started, 3), client=client_stats,
        error=mask_text(error) if error else None)
    summary = outcome.as_summary()
    run.finish(status, summary)
    if code != 130:  # an interruption is neither a success nor a failure of a flow

        for flow, ran in (("outbound", outbound), ("inbound", inbound)):
            if not ran:
                continue
            if code == 0 or (flow == "outbound" and phase == "inbound"):  # the push was through
                record_flow_result(engine, flow, True)
            elif flow == phase:
                record_flow_result(engine, flow, False, error)
    return outcome


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


@dataclass(frozen=True)
class PullOutcome:
    """What a pull did (:func:`pull_pass`); :meth:`as_summary` is the summary :func:`run_pull` returns.

    Attributes:
        code: the exit code (0 completed, also when a reconcile is due; 1 the registry failed it).
        status: ``success``, ``partial`` (this pass found the feed cut short) or ``failed``.
        stats: the poller's counters (its run's id among them).
        seconds: how long the pass took.
        error: the error that ended the pass, masked, or ``None``.
    """

    code: int
    status: str
    stats: InboundStats
    seconds: float
    error: str | None = None

    @property
    def idle(self) -> bool:
        """Whether the pass completed and read no change (an idle tick of the daemon leaves no run)."""
        return self.code == 0 and not self.stats.changes and self.status == "success"

    def as_summary(self) -> dict[str, Any]:
        """The pull's summary: :meth:`regsync.flows.apply.InboundStats.as_dict` (without the decision log) plus
        ``status``, ``seconds`` and ``error``, plain data for ``--json``, the log line and ``/metrics``."""
        summary = self.stats.as_dict()
        summary.pop("decision_log", None)
        summary.update(status=self.status, seconds=self.seconds)
        if self.error:
            summary["error"] = self.error
        return summary


def run_pull(settings: Settings, *, engine: Engine | None = None, stop: Callable[[], bool] | None = None,
             max_pages: int | None = None, client: RegistryPort | None = None) -> tuple[int, dict[str, Any]]:
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
    outcome = pull_pass(settings, engine=engine, stop=stop, max_pages=max_pages, client=client)
    return outcome.code, outcome.as_summary()


def pull_pass(settings: Settings, *, engine: Engine | None = None, stop: Callable[[], bool] | None = None,
             max_pages: int | None = None, client: RegistryPort | None = None) -> PullOutcome:
    """:func:`run_pull`'s pass, its outcome as a :class:`PullOutcome` (the daemon's inbound job reads it); the same
    arguments, checks and errors."""

    with run_store(settings, engine) as engine:
        started = time.monotonic()
        code = 0
        KEEPER.hold(engine)  # the poller records its run itself: the lease covers it (issue 12, item 11)
        try:
            with open_client(settings, client) as client:
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
            record_flow_result(engine, "inbound", code == 0, summary_error)
        finally:
            KEEPER.release(engine)
    return PullOutcome(code=code, status=status, stats=stats, seconds=round(time.monotonic() - started, 3),
                       error=summary_error)


def _merge(total: Any, stats: Any) -> None:
    for name in ("pushed", "linked", "failed", "failed_by_code", "unchanged", "deferred", "merged", "held",
                 "decisions", "conflicts"):
        getattr(total, name).update(getattr(stats, name))
    room = 2_000 - len(total.decision_log)
    if room > 0:
        total.decision_log.extend(stats.decision_log[:room])
    total.batches += stats.batches
