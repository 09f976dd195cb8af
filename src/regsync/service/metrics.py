"""Observability of the daemon (design.md, "Real parts": Prometheus text at ``/metrics``, ``/healthz``; issue 6).

Metrics, with prometheus_client (all names start with ``regsync_``):

* counted by the daemon's jobs: ``job_ticks_total{job, outcome}`` (``run``, ``idle``, ``paused``, ``locked``,
  ``taken``, ``failed``, ``backoff`` — skipped after failed passes —, ``stopping``, ``overlapped`` — skipped while
  the previous run went on —, ``missed``: idle ticks show only here), ``pushes_total{result}`` (``pushed``,
  ``linked``, ``unchanged``, ``failed``, ``deferred`` records), ``registry_retries_total`` (retries inside the
  client's calls), ``pulls_total{result}`` (``success``, ``partial``, ``failed``, ``idle``),
  ``changes_applied_total``, ``conflicts_detected_total``, ``alarm_deliveries_total{result}`` (``delivered``,
  ``retried``, ``failed``: :mod:`regsync.service.alarms`);
* read from the store at each scrape (:func:`regsync.service.status.collect_status`, so they agree with ``regsync
  status``): ``outbox_rows{state}`` (the backlog), ``outbound_lag_seconds`` (age of the oldest waiting change),
  ``feed_cursor_age_seconds``, ``conflicts_open``, ``failed_records``, ``last_success_timestamp_seconds{flow}``
  (Unix time), ``flow_paused{flow}``, ``flow_failing_seconds{flow}``, ``reconcile_due``, ``daemons_alive`` (live
  daemon heartbeats, all replicas), ``runs_abandoned`` (runs left running by a process that is gone), ``healthy``.

``/healthz`` answers 200 with a JSON body (``alive``, ``healthy``, ``problems``) while the scheduler runs and the
store answers, 503 otherwise; ``/healthz?strict=1`` also answers 503 when the service is unhealthy by the
``[health]`` limits (for a load balancer or compose; a liveness probe should use the plain form, since a registry
outage is not cured by a restart). The server listens on ``[daemon] metrics_address`` (loopback by default).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from regsync.domain.masking import mask_text
from regsync.service.status import collect_status
from regsync.settings import ConfigError, Settings

log = structlog.get_logger(__name__)

PUSH_RESULTS = ("pushed", "linked", "unchanged", "failed", "deferred")


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time (one :func:`regsync.service.status.collect_status` per scrape)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:

        try:
            st = collect_status(self.engine, self.settings)
        except Exception as exc:  # noqa: BLE001 — a scrape must not fail on the store; the gauge says so
            log.warning("metrics: the store did not answer", error=mask_text(str(exc)))
            g = GaugeMetricFamily("regsync_store_up", "Whether the local store answered the scrape.")
            g.add_metric([], 0)
            yield g
            return
        g = GaugeMetricFamily("regsync_store_up", "Whether the local store answered the scrape.")
        g.add_metric([], 1)
        yield g
        rows = GaugeMetricFamily("regsync_outbox_rows", "Outbox rows by state (the backlog).", labels=["state"])
        for state, n in st["backlog"].items():
            rows.add_metric([state], n)
        yield rows
        yield GaugeMetricFamily("regsync_outbound_lag_seconds", "Age of the oldest change waiting to be pushed.",
                                value=st["oldest_pending_age_s"] or 0)
        yield GaugeMetricFamily("regsync_feed_cursor_age_seconds", "Seconds since the change-feed cursor moved.",
                                value=st["cursor_age_s"] if st["cursor_age_s"] is not None else float("nan"))
        yield GaugeMetricFamily("regsync_conflicts_open", "Conflicts waiting for an operator.",
                                value=st["open_conflicts"])
        yield GaugeMetricFamily("regsync_failed_records", "Records failed or blocked in the outbox.",
                                value=st["failed_records"])
        now = time.time()
        last = GaugeMetricFamily("regsync_last_success_timestamp_seconds", "Unix time of each flow's last success.",
                                 labels=["flow"])
        paused = GaugeMetricFamily("regsync_flow_paused", "Whether an operator paused the flow.", labels=["flow"])
        failing = GaugeMetricFamily("regsync_flow_failing_seconds", "Seconds the flow has been failing (0: not).",
                                    labels=["flow"])
        for flow, f in st["flows"].items():
            if f["last_success_age_s"] is not None:
                last.add_metric([flow], now - f["last_success_age_s"])
            paused.add_metric([flow], 1 if f["paused"] else 0)
            failing.add_metric([flow], f["failing_for_s"] or 0)
        yield last
        yield paused
        yield failing
        yield GaugeMetricFamily("regsync_reconcile_due", "Whether a full reconcile is due (CURSOR_EXPIRED…).",
                                value=1 if st["reconcile_due"] else 0)
        yield GaugeMetricFamily("regsync_daemons_alive", "Daemons whose heartbeat is live (all replicas).",
                                value=len(st["daemon"]["workers"]))
        yield GaugeMetricFamily("regsync_runs_abandoned", "Runs left running by a process that is gone.",
                                value=sum(1 for r in st["running"] if r["abandoned"]))
        yield GaugeMetricFamily("regsync_healthy", "1 when healthy by the [health] limits (regsync status).",
                                value=1 if st["healthy"] else 0)


class Metrics:
    """The daemon's metrics: counters its jobs feed, gauges read from the store at each scrape.

    Args:
        engine: the local store.
        settings: regsync's settings (``[health]`` for the ``healthy`` gauge).
        registry: the Prometheus registry to register in (default: a new one, not the global default, so
            several daemons in one test process do not collide).
    """

    def __init__(self, engine: Engine, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.ticks = Counter("regsync_job_ticks", "Scheduler ticks by job and outcome.", ["job", "outcome"],
                             registry=self.registry)
        self.pushes = Counter("regsync_pushes", "Records the relay handled, by result.", ["result"],
                              registry=self.registry)
        self.retries = Counter("regsync_registry_retries", "Retries inside the registry client's calls.",
                               registry=self.registry)
        self.pulls = Counter("regsync_pulls", "Change-feed passes, by result.", ["result"], registry=self.registry)
        self.applied = Counter("regsync_changes_applied", "Registry changes applied locally.",
                               registry=self.registry)
        self.conflicts = Counter("regsync_conflicts_detected", "Conflicts held for an operator by the pulls.",
                                 registry=self.registry)
        self.alarm_deliveries = Counter("regsync_alarm_deliveries", "Alarm deliveries per URL: delivered, retried "
                                        "(an attempt repeated), failed (given up).", ["result"],
                                        registry=self.registry)
        self.store = _StoreCollector(engine, settings)
        self.registry.register(self.store)
        self.engine = engine
        self.settings = settings

    def tick(self, job: str, outcome: str) -> None:
        """Count one scheduler tick of ``job`` with its outcome."""
        self.ticks.labels(job, outcome).inc()

    def alarm_delivery(self, result: str) -> None:
        """Count one alarm delivery's ``delivered``, ``retried`` or ``failed`` (:class:`regsync.service.alarms.Notifier`)."""
        self.alarm_deliveries.labels(result).inc()

    def observe_sync(self, summary: dict[str, Any]) -> None:
        """Count a relay pass from :func:`regsync.flows.sync.run_sync`'s summary."""
        for result in PUSH_RESULTS:
            n = sum((summary.get(result) or {}).values())
            if n:
                self.pushes.labels(result).inc(n)
        retries = sum(((summary.get("client") or {}).get("retries") or {}).values())
        if retries:
            self.retries.inc(retries)

    def observe_pull(self, summary: dict[str, Any], *, idle: bool) -> None:
        """Count a pull from :func:`regsync.flows.sync.run_pull`'s summary."""
        self.pulls.labels("idle" if idle else str(summary.get("status", "failed"))).inc()
        if summary.get("applied"):
            self.applied.inc(int(summary["applied"]))
        conflicts = sum((summary.get("conflicts") or {}).values())
        if conflicts:
            self.conflicts.inc(conflicts)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as (host, port).

    Raises:
        ConfigError: not of that form.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"REGSYNC_METRICS_ADDRESS must be HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def serve_metrics(metrics: Metrics, address: str, *, alive: Callable[[], bool]) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on ``address`` in a background thread.

    Args:
        metrics: what ``/metrics`` shows.
        address: ``HOST:PORT``.
        alive: whether the daemon's scheduler runs (``/healthz`` answers 503 when not).

    Returns:
        The server (call ``shutdown()`` then ``server_close()`` to stop it).

    Raises:
        ConfigError: a malformed address, or one that cannot be bound (in use, not local).
    """

    host, port = parse_address(address)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the base class's name
            return

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 — http.server's name
            parts = urlsplit(self.path)
            if parts.path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                return
            if parts.path == "/healthz":
                strict = parse_qs(parts.query).get("strict", ["0"])[0] not in ("0", "")
                body: dict[str, Any] = {"alive": alive()}
                try:
                    st = collect_status(metrics.engine, metrics.settings)
                    body.update(store=True, healthy=st["healthy"], problems=st["problems"])
                except Exception as exc:  # noqa: BLE001 — reported as 503
                    body.update(store=False, healthy=False, problems=[mask_text(str(exc))])
                ok = body["alive"] and body["store"] and (body["healthy"] or not strict)
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
                return
            self._send(404, b"not found: /metrics or /healthz\n", "text/plain")

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"REGSYNC_METRICS_ADDRESS {address}: cannot listen ({exc.strerror})") from exc
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("metrics served", address=f"http://{host}:{server.server_address[1]}/metrics")
    return server


__all__ = ["Metrics", "parse_address", "serve_metrics"]
