"""The operator's console (issue 6): the service's state at a glance, its health, and pausing a flow.

* :func:`collect_status` gathers what ``regsync status`` shows: the outbox backlog by state, the age of the oldest
  change waiting, each flow's last success and failure (``flow_state``), the change-feed cursor's age, open
  conflicts, failed records, paused flows, the schedule's next runs and whether a full reconcile is due; and it
  judges the service's health against ``[health]`` (:func:`health_problems`): ``status`` exits 3 when unhealthy,
  so it serves as a health check.
* :func:`record_flow_result` keeps ``flow_state`` (last success, ``failing_since``) up to date; the daemon's
  jobs call it after every pass, and so may any other caller of ``run_sync``/``run_pull``.
* :func:`set_paused` pauses and resumes flows, audited (design.md, "Operator commands": pause/resume take
  ``--reason``). A paused flow's changes are still captured (the outbox triggers never stop); the daemon skips
  the flow until it is resumed. A pause may carry an expiry (``regsync pause --for 2h`` or ``--until``): the
  first look at the flow after it (:func:`is_paused`, the daemon's every tick and heartbeat, a manual ``sync``)
  resumes it, audited as ``resume`` by ``regsync`` (:func:`resume_expired`).
* Whether a daemon is alive is read from the daemons' heartbeats (:mod:`regsync.db.liveness`), so any replica and
  ``regsync status`` on any host see it; the next run times shown are those a live daemon's scheduler holds.

Times in the database are naive UTC; what is shown is Asia/Shanghai (+08:00). Ages are whole seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Engine

from regsync.db.flowstate import FLOWS, PAUSABLE, as_dt, iso_local, write_pause
from regsync.db.hashkey import fingerprint, stored_fingerprint
from regsync.db.liveness import sweep
from regsync.db.mapping.install import InstallError, require_installed
from regsync.db.mapping.load import MappingError
from regsync.db.overview import read_overview
from regsync.db.runs import outbox_failures
from regsync.db.session import utcnow
from regsync.db.store import open_store
from regsync.domain.clock import SHANGHAI
from regsync.domain.masking import mask_text
from regsync.domain.words import FLOW_WORDS, word
from regsync.flows.operator import OperatorUsageError, check_reason, default_actor
from regsync.i18n import gettext, gettext_noop
from regsync.registry.errors import AuthError
from regsync.service.alarms import Dispatcher, Notifier, check_alarms
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Outbox states shown in the backlog (``sent`` and ``discarded`` are done).
BACKLOG_STATES: tuple[str, ...] = ("pending", "deferred", "blocked", "failed")
#: An outbox state → its word, for people (issue 15).
STATE_WORDS: dict[str, str] = {"pending": gettext_noop("waiting"), "deferred": gettext_noop("deferred"),
                               "blocked": gettext_noop("blocked"), "failed": gettext_noop("failed"),
                               "held": gettext_noop("held"), "sent": gettext_noop("sent"),
                               "discarded": gettext_noop("discarded")}



def _age(now: dt.datetime, then: dt.datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


#: How long a daemon that died without stopping is named as lost (after a day its row is history).
LOST_WINDOW = dt.timedelta(days=1)


def _lost(daemons: Sequence[Any], now: dt.datetime) -> list[Any]:
    """The daemons (:class:`regsync.db.liveness.WorkerInfo`) not alive, that never said they stopped, last seen
    within :data:`LOST_WINDOW`, and not followed by a daemon started later on the same host."""
    def host(worker: str) -> str:
        return worker.rpartition(":")[0] or worker

    out = []
    for d in daemons:
        if d.alive or d.stopped_at is not None or now - d.beat_at > LOST_WINDOW:
            continue
        if any(o.alive and host(o.worker) == host(d.worker) and o.started_at >= d.beat_at for o in daemons):
            continue
        out.append(d)
    return out


def _auth_classes() -> list[type[AuthError]]:
    """:class:`AuthError` and every class under it."""
    out: list[type[AuthError]] = [AuthError]
    for cls in out:  # grows as it is walked
        out.extend(cls.__subclasses__())
    return out



#: ``--for`` units: seconds per unit.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text_: str) -> dt.timedelta:
    """A duration as ``regsync pause --for`` takes it: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``.

    Raises:
        OperatorUsageError: not of that form, or not positive.
    """
    compact = (text_ or "").strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", compact)
    if not compact or not parts or "".join(n + u for n, u in parts) != compact:
        raise OperatorUsageError(gettext_noop(
            "--for takes a duration such as 90s, 30m, 2h, 1d or 1h30m, got {value!r}"), value=text_)
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise OperatorUsageError(gettext_noop("--for must be longer than 0 s, got {value!r}"), value=text_)
    return dt.timedelta(seconds=seconds)


def pause_end(for_: str | None, until: str | None, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a pause ends, from ``regsync pause --for`` or ``--until`` (naive UTC), or ``None`` for neither.

    Args:
        for_: a duration (:func:`parse_duration`), from ``now``.
        until: an ISO 8601 time; without an offset it is +08:00 (Asia/Shanghai, as ``status`` shows times).
        now: naive UTC (default now).

    Raises:
        OperatorUsageError: both given, a malformed value, or an end not in the future.
    """
    now = now or utcnow()
    if for_ is not None and until is not None:
        raise OperatorUsageError(gettext_noop("give --for or --until, not both"))
    if for_ is not None:
        return now + parse_duration(for_)
    if until is None:
        return None
    try:
        at = dt.datetime.fromisoformat(until.strip())
    except ValueError as exc:
        raise OperatorUsageError(gettext_noop("--until takes a time such as 2026-12-01T06:00 (+08:00 unless an offset "
                                              "is given), got {value!r}"), value=until) from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=SHANGHAI)
    end = at.astimezone(dt.UTC).replace(tzinfo=None)
    if end <= now:
        raise OperatorUsageError(gettext_noop("--until {until} is not in the future (now {now})"), until=until,
                                 now=iso_local(now))
    return end


def set_paused(engine: Engine, flows: Sequence[str], paused: bool, *, reason: str, actor: str | None = None,
               now: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[str, Any]:
    """Pause or resume flows, with an audit row (action ``pause`` or ``resume``).

    Args:
        engine: the local store.
        flows: some of :data:`PAUSABLE`.
        paused: pause (true) or resume (false).
        reason: why (required; masked in the audit table).
        actor: who (default: the OS user).
        now: naive UTC (default now).
        until: when the pause ends by itself (naive UTC; :func:`pause_end`); ``None``: when resumed. Pausing a
            flow paused already sets its expiry anew.

    Returns:
        ``{"action", "flows", "changed" (flows whose state or expiry changed), "until" (+08:00 ISO or
        ``None``), "audit_id"}``.

    Raises:
        OperatorUsageError: no flow, an unknown flow, an empty reason, an expiry with a resume, or an expiry not
            in the future.
    """
    reason = check_reason(reason)
    if not flows or any(f not in PAUSABLE for f in flows):
        raise OperatorUsageError(gettext_noop("flows to pause or resume: {flows}"), flows=", ".join(PAUSABLE))
    now = now or utcnow()
    if until is not None and not paused:
        raise OperatorUsageError(gettext_noop("an expiry (--for, --until) is for pause, not resume"))
    if until is not None and until <= now:
        raise OperatorUsageError(gettext_noop("the pause would end at {at}, which is not in the future"),
                                 at=iso_local(until))
    actor = mask_text((actor or default_actor()).strip() or "unknown")[:64]
    action = "pause" if paused else "resume"
    changed, audit_id = write_pause(engine, flows, paused, actor=actor, reason=reason, now=now,
                                    until=until)
    log.info(f"flows {action}d", flows=list(flows), changed=changed, actor=actor, until=iso_local(until))
    return {"action": action, "flows": list(flows), "changed": changed, "until": iso_local(until),
            "audit_id": audit_id}


def collect_status(engine: Engine, settings: Settings, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What ``regsync status`` shows, as plain data (the shape of ``status --json``).

    Args:
        engine: the local store.
        settings: regsync's settings (``[health]`` limits, ``[daemon]`` schedule).
        now: naive UTC (default now).

    Returns:
        ``healthy`` (bool) and ``problems`` (list of sentences); ``backlog`` (state → outbox rows);
        ``oldest_pending_age_s``; ``flows`` (flow → ``paused``, ``paused_by``, ``paused_reason``, ``paused_at``,
        ``last_success_at``, ``last_success_age_s``, ``failing_since``, ``failing_for_s``, ``last_error``);
        ``last_push``/``last_pull``/``last_reconcile`` (+08:00 ISO or ``None``); ``cursor_age_s``;
        ``open_conflicts``; ``failed_records`` and ``failed_by_code`` (records failed or blocked);
        ``paused`` (flows); each flow also ``paused_until`` (+08:00 ISO or ``None``), ``pause_expired`` and
        ``paused_for_s``; ``daemon`` (``alive``, ``workers``: the live daemons, each ``worker``, ``started_at``,
        ``last_beat_at``, ``beat_age_s``; ``last_seen_at``: the newest beat of any daemon, or ``None``);
        ``next_runs`` (job → +08:00 ISO: the earliest next run of a live daemon's scheduler; empty when no daemon
        is alive); ``running`` (runs still going on: ``run_id``, ``kind``, ``worker``, ``started_at``,
        ``abandoned`` — its process is gone); ``abandoned`` (runs marked abandoned in the last day, the same
        keys); ``reconcile_due`` (``{"reason", "at"}`` or ``None``); ``now``. Times are +08:00, ages whole
        seconds.
    """
    now = now or utcnow()
    seen = read_overview(engine, BACKLOG_STATES, now)
    backlog, oldest, states, cursor_at = seen.backlog, seen.oldest_waiting, seen.flows, seen.cursor_at
    run_success = {"reconcile": seen.last_reconcile}
    open_conflicts, due, daemons = seen.open_conflicts, seen.reconcile_due, seen.daemons
    running, dead_runs, recently_abandoned = seen.running, seen.dead_runs, seen.recently_abandoned
    failed_by_kind, failed_by_code = outbox_failures(engine)
    live = [d for d in daemons if d.alive]
    upcoming: dict[str, dt.datetime] = {}
    for d in live:
        for job, at in d.next_runs.items():
            if job not in upcoming or at < upcoming[job]:
                upcoming[job] = at

    flows: dict[str, dict[str, Any]] = {}
    for flow in FLOWS:
        row = states.get(flow)
        candidates = [t for t in (as_dt(row.last_success_at) if row else None, run_success.get(flow)) if t]
        last_ok = max(candidates) if candidates else None
        failing = as_dt(row.failing_since) if row else None
        paused = bool(row.paused) if row else False
        until = as_dt(row.paused_until) if row and paused else None
        flows[flow] = {
            "paused": paused,
            "paused_by": row.paused_by if row else None,
            "paused_reason": row.paused_reason if row else None,
            "paused_at": iso_local(as_dt(row.paused_at)) if row else None,
            "paused_until": iso_local(until),
            "pause_expired": bool(until is not None and until <= now),
            "paused_for_s": _age(now, as_dt(row.paused_at)) if paused and row else None,
            "last_success_at": iso_local(last_ok),
            "last_success_age_s": _age(now, last_ok),
            "failing_since": iso_local(failing),
            "failing_for_s": _age(now, failing),
            "last_error": row.last_error if row and failing else None,
        }
    status: dict[str, Any] = {
        "now": iso_local(now),
        "backlog": backlog,
        "oldest_pending_age_s": _age(now, oldest),
        "flows": flows,
        "last_push": flows["outbound"]["last_success_at"],
        "last_pull": flows["inbound"]["last_success_at"],
        "last_reconcile": flows["reconcile"]["last_success_at"],
        "cursor_age_s": _age(now, cursor_at),
        "open_conflicts": open_conflicts,
        "failed_records": sum(failed_by_kind.values()),
        "failed_by_code": failed_by_code,
        "paused": [f for f in FLOWS if flows[f]["paused"]],
        "daemon": {
            "alive": bool(live),
            "workers": [{"worker": d.worker, "started_at": iso_local(d.started_at),
                         "last_beat_at": iso_local(d.beat_at), "beat_age_s": _age(now, d.beat_at)} for d in live],
            "last_seen_at": iso_local(max((d.beat_at for d in daemons), default=None)),
            # heartbeat lost: the daemons whose lease ran out in the last day without their saying they stopped
            # (SIGKILL, a crash, a host gone), newest first; one started since on the same host supersedes them
            "lost": [{"worker": d.worker, "last_beat_at": iso_local(d.beat_at), "beat_age_s": _age(now, d.beat_at)}
                     for d in _lost(daemons, now)],
        },
        # a time already past (the heartbeat is up to 10 s old): the job is due or running now
        "next_runs": {job: iso_local(max(upcoming[job], now)) for job in sorted(upcoming)},
        "running": [{"run_id": int(r.id), "kind": r.kind, "worker": r.worker,
                     "started_at": iso_local(as_dt(r.started_at)), "abandoned": r.id in dead_runs}
                    for r in running],
        "abandoned": [{"run_id": int(r.id), "kind": r.kind, "worker": r.worker,
                       "started_at": iso_local(as_dt(r.started_at)), "abandoned": True}
                      for r in recently_abandoned],
        "reconcile_due": {"reason": due.get("reason"), "at": due.get("at")} if due else None,
    }
    status["platform"] = platform_status(engine, settings)
    findings = health_findings(status, settings)
    status["problems"] = [f.text for f in findings]
    status["findings"] = [f.as_dict() for f in findings]
    status["healthy"] = not status["problems"]
    return status


def platform_status(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Whether the store's platform is the configured one and its installed triggers the mapping's current form
    (issue 14): :meth:`regsync.db.mapping.install.TriggerStatus.as_dict`, with ``problem`` (a sentence, or ``None``)
    and ``warning`` (the mapping file changed since it was installed: the flows go on with the installed one)."""
    try:
        with engine.connect() as conn:
            st = require_installed(conn, settings.database.mapping,
                                   platform_schema=settings.database.platform_schema)
    except (InstallError, MappingError) as exc:
        return {"mapping": settings.database.mapping, "ok": False, "problem": str(exc), "warning": None}
    out = {**st.as_dict(), "problem": None, "warning": None}
    if st.missing:
        out["problem"] = (f"the installed mapping's objects are missing from the database ({', '.join(st.missing)}): "
                          "run regsync platform install")
    elif not st.current:
        out["warning"] = gettext_noop("the installed mapping is not the mapping file's current form: run regsync "
                                      "platform check, "
                          "then regsync platform install")
    return out


@dataclass(frozen=True)
class Finding:
    """One reason the service is unhealthy: what ``status`` prints, and what an alarm is raised for.

    Attributes:
        key: the condition's stable name, at most 40 characters (the alarm's identity in the store):
            ``heartbeat``, ``credentials``, ``failing:<flow>``, ``stale:<flow>``, ``cursor_expired``,
            ``reconcile_due``, ``paused:<flow>``, ``platform``, ``hash_key``.
        kind: the condition's kind (the key without its flow).
        template: the sentence in English with ``{name}`` placeholders filled from ``params`` (marked for the
            catalog: a person reads it in the language in force, issue 15).
        params: the figures of the sentence, also read by the alarms (``flow``, ``age_s``, ``limit_s``, ``error``,
            ``since``, ``alive``, ``needed``, ``lost``…).
        parts: a ``credentials`` finding's sentences, one per flow that met the refusal (its own template unused).
    """

    key: str
    kind: str
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    parts: tuple[Finding, ...] = ()

    @property
    def text(self) -> str:
        """The sentence in English (``status --json``'s ``problems``, the logs)."""
        if self.parts:
            return "; ".join(p.text for p in self.parts)
        return self.template.format(**self.params)

    def translated(self) -> str:
        """The sentence in the language in force, a flow named in words."""
        if self.parts:
            return gettext("; ").join(p.translated() for p in self.parts)
        params = {k: word(FLOW_WORDS, v) if k == "flow" else v for k, v in self.params.items()}
        return gettext(self.template).format(**params)

    def as_dict(self) -> dict[str, Any]:
        """``{"key", "kind", "template", "params", "parts"}``: ``status --json``'s ``findings`` (what the alarms
        read); :meth:`from_dict` reads it back."""
        return {"key": self.key, "kind": self.kind, "template": self.template, "params": dict(self.params),
                "parts": [p.as_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The finding :meth:`as_dict` wrote."""
        return cls(data["key"], data["kind"], data.get("template") or "", dict(data.get("params") or {}),
                   tuple(cls.from_dict(p) for p in data.get("parts") or ()))


#: The codes of a refusal of the client's credentials or signature (:class:`regsync.registry.errors.AuthError`):
#: a flow failing with one of them is the ``credentials`` alarm, not a plain failure. ``TOKEN_EXPIRED`` is renewed
#: by the client, so it stands here only when renewing did not help.
AUTH_CODES: tuple[str, ...] = tuple(sorted(
    c for c in (cls.code_default for cls in _auth_classes()) if c))

_AUTH_RE = re.compile(r"\bcode=(" + "|".join(re.escape(c) for c in AUTH_CODES) + r")\b")


def auth_code(error: str | None) -> str | None:
    """The credentials-refused code a flow's stored error names (``… (status=401, code=invalid_client)``: the
    form of :class:`regsync.registry.errors.RegistryError`), or ``None``."""
    m = _AUTH_RE.search(error or "")
    return m.group(1) if m else None


def health_problems(status: dict[str, Any], settings: Settings) -> list[str]:
    """The reasons the service is unhealthy by the ``[health]`` limits (empty: healthy): the sentences of
    :func:`health_findings`."""
    return [f.text for f in health_findings(status, settings)]


def health_findings(status: dict[str, Any], settings: Settings) -> list[Finding]:
    """The reasons the service is unhealthy by the ``[health]`` limits (empty: healthy), each with its condition's
    key for the alarms (:mod:`regsync.service.alarms`).

    Rules (issues 6, 12 and 15): fewer live daemons than ``min_daemons`` (no heartbeat within its lease:
    :mod:`regsync.db.liveness`); an
    unpaused outbound flow whose oldest waiting change is older than ``outbound_max_lag_s``; an unpaused inbound
    flow whose last successful pull is older than ``inbound_max_age_s``; a last successful reconcile older than
    ``reconcile_max_age_s``; any flow failing (e.g. ``invalid_client``) for ``max_failing_s`` or longer (0, the
    default: as soon as a pass has failed): a refusal of the credentials (:data:`AUTH_CODES`) is one
    ``credentials`` finding whichever flows met it; a pause past its expiry (no daemon resumed it) or older than
    ``max_pause_s``; a full reconcile marked as due (design.md, flow 2: the feed missed changes; ``cursor_expired``
    when the cursor expired); a platform whose
    configured mapping is not installed, or whose installed objects are gone (issue 14). A flow that has never
    succeeded is judged by the failing rule only (a new installation is
    not unhealthy before its first pass).

    Args:
        status: :func:`collect_status`'s data (``daemon``, ``flows``, ``oldest_pending_age_s``).
        settings: the limits (``[health]``).
    """
    h = settings.health
    found: list[Finding] = []

    def add(key: str, template: str, **params: Any) -> None:
        found.append(Finding(key=key, kind=key.split(":", 1)[0], template=template, params=params))

    flows = status["flows"]
    daemon = status.get("daemon") or {}
    platform = status.get("platform") or {}
    if platform.get("problem"):
        add("platform", gettext_noop("the platform's mapping: {problem}"), problem=platform["problem"])
    alive = len(daemon.get("workers") or [])
    lost = [w["worker"] for w in daemon.get("lost") or []]
    seen = daemon.get("last_seen_at")
    if alive == 0 and h.min_daemons > 0:
        add("heartbeat", gettext_noop("no daemon is running (`regsync run`): the last one was seen at {last_seen_at}")
            if seen else gettext_noop("no daemon is running (`regsync run`): none has run on this store"),
            alive=0, needed=h.min_daemons, last_seen_at=seen, lost=lost)
    elif alive < h.min_daemons:
        add("heartbeat", gettext_noop("{alive} daemon(s) alive, fewer than {needed} (REGSYNC_HEALTH_MIN_DAEMONS); "
                                      "heartbeat lost: {lost_names}") if lost
            else gettext_noop("{alive} daemon(s) alive, fewer than {needed} (REGSYNC_HEALTH_MIN_DAEMONS)"),
            alive=alive, needed=h.min_daemons, last_seen_at=seen, lost=lost, lost_names=", ".join(lost))
    lag = status["oldest_pending_age_s"]
    if not flows["outbound"]["paused"] and lag is not None and lag > h.outbound_max_lag_s:
        add("stale:outbound", gettext_noop(
            "outbound is stale: the oldest waiting change is {age_s} s old (limit {limit} s, {var})"),
            flow="outbound", age_s=lag, limit_s=h.outbound_max_lag_s, limit=f"{h.outbound_max_lag_s:g}",
            var="REGSYNC_HEALTH_OUTBOUND_MAX_LAG_S")
    for flow, limit, var in (("inbound", h.inbound_max_age_s, "REGSYNC_HEALTH_INBOUND_MAX_AGE_S"),
                             ("reconcile", h.reconcile_max_age_s, "REGSYNC_HEALTH_RECONCILE_MAX_AGE_S")):
        age = flows[flow]["last_success_age_s"]
        if not flows[flow]["paused"] and age is not None and age > limit:
            add(f"stale:{flow}", gettext_noop(
                "{flow} is stale: its last success was {age_s} s ago (limit {limit} s, {var})"),
                flow=flow, age_s=age, limit_s=limit, limit=f"{limit:g}", var=var)
    due = status.get("reconcile_due")
    if due:  # the change feed missed changes (CURSOR_EXPIRED, NO_CURSOR): pulls alone never bring them home
        add("cursor_expired" if due.get("reason") == "CURSOR_EXPIRED" else "reconcile_due", gettext_noop(
            "a full reconcile is due ({reason}, since {since} UTC): the change feed missed registry changes that "
            "only `regsync reconcile` brings home"), reason=due.get("reason"), since=due.get("at"))
    refused: list[Finding] = []
    for flow in FLOWS:
        failing = flows[flow]["failing_for_s"]
        if failing is not None and failing >= h.max_failing_s:
            error = flows[flow]["last_error"]
            one = Finding(f"failing:{flow}", "failing", gettext_noop(
                "{flow} has been failing for {failing_s} s (limit {limit} s, {var}): {error}"),
                {"flow": flow, "failing_s": failing, "error": error, "limit": f"{h.max_failing_s:g}",
                 "var": "REGSYNC_HEALTH_MAX_FAILING_S"})
            code = auth_code(error)
            if code is None:
                found.append(one)
                continue
            refused.append(one)
            prior = next((f for f in found if f.key == "credentials"), None)
            params = {"flows": [p.params["flow"] for p in refused], "code": code, "error": error,
                      "failing_s": max(p.params["failing_s"] for p in refused)}
            merged = Finding("credentials", "credentials", one.template, params, tuple(refused))
            if prior is None:  # one refusal of the credentials, whichever flows met it: one finding
                found.append(merged)
            else:
                found[found.index(prior)] = merged
    for flow in FLOWS:
        f = flows[flow]
        if not f["paused"]:
            continue
        if f.get("pause_expired"):
            add(f"paused:{flow}", gettext_noop("{flow}'s pause expired at {until} but no daemon has resumed it"),
                flow=flow, until=f["paused_until"], expired=True)
        elif f.get("paused_for_s") is not None and f["paused_for_s"] > h.max_pause_s:
            add(f"paused:{flow}", gettext_noop(
                "{flow} has been paused for {paused_s} s (limit {limit} s, {var}) by {by}: {reason}"),
                flow=flow, paused_s=f["paused_for_s"], by=f["paused_by"], reason=f["paused_reason"], expired=False,
                limit=f"{h.max_pause_s:g}", var="REGSYNC_HEALTH_MAX_PAUSE_S")
    return found


#: The longest ``regsync status --alarms`` waits for its messages to be delivered (their retries included).
ALARM_DRAIN_S = 300.0


def run_status(settings: Settings, *, alarms: bool = False) -> tuple[int, dict[str, Any]]:
    """``regsync status``: (exit code, status). Exit code 0 healthy, 3 unhealthy (design.md, exit codes).

    Args:
        settings: regsync's settings.
        alarms: also judge the alarms' conditions (:func:`regsync.service.alarms.check_alarms`) and deliver the
            transitions this process claims, waiting for them (at most :data:`ALARM_DRAIN_S`): what a timer runs
            (``deploy/regsync-status.timer``), so that a dead daemon's lost heartbeat is announced. The status gets
            ``alarms``: ``{"configured": n URLs, "sent": [{"key", "event", "title", "delivered": {url: bool}}]}``.

    Raises:
        ConfigError: a bad database URL.
        StoreError: the local store is unusable (exit code 1).
    """
    engine = open_store(settings.database)
    try:
        sweep(engine)  # runs and slots whose process is gone are marked abandoned, for every reader
        status = collect_status(engine, settings)
        saved = stored_fingerprint(engine)
        if saved is not None and saved != fingerprint(settings.hash_key):
            # every flow refuses to run with this key (exit 2): the first thing an operator must read
            key = Finding("hash_key", "hash_key", gettext_noop(
                "the configured hash key is not this store's (store {store}, configured {configured}): every flow "
                "refuses to run; set the store's key (REGSYNC_HASH_KEY or REGSYNC_HASH_KEY_FILE) or run `regsync "
                "db rekey` (deploy/RUNBOOK.md)"), {"store": saved, "configured": fingerprint(settings.hash_key)})
            status["problems"].insert(0, key.text)
            status["findings"].insert(0, key.as_dict())
            status["healthy"] = False
        if alarms:
            status["alarms"] = _raise_alarms(engine, settings, status)
    finally:
        engine.dispose()
    return (0 if status["healthy"] else 3), status


def _raise_alarms(engine: Engine, settings: Settings, status: dict[str, Any]) -> dict[str, Any]:
    """``status --alarms``: judge, claim, deliver and wait (see :func:`run_status`)."""
    out: dict[str, Any] = {"configured": len(settings.alarms.urls), "sent": []}
    if not settings.alarms.urls:
        log.warning("no alarm URL is configured (alarms.urls, REGSYNC_ALARMS_URLS): no alarm is judged nor sent")
        return out
    dispatcher = Dispatcher(Notifier(settings.alarms))
    result = check_alarms(engine, settings, status, dispatcher.submit)
    if not dispatcher.drain(ALARM_DRAIN_S):
        log.error("alarms still undelivered at the bound", seconds=ALARM_DRAIN_S)
    dispatcher.close(1.0)
    delivered = {id(a): d for a, d in dispatcher.delivered}
    out["sent"] = [{"key": a.key, "event": a.event, "title": a.title, "delivered": delivered.get(id(a), {})}
                   for a in result.sent]
    return out


def run_pause(settings: Settings, flows: Sequence[str], paused: bool, *, reason: str,
              actor: str | None = None, for_: str | None = None, until: str | None = None) -> dict[str, Any]:
    """``regsync pause`` / ``regsync resume`` on the store of ``settings`` (see :func:`set_paused`).

    Args:
        settings: regsync's settings (the store).
        flows: some of :data:`PAUSABLE`.
        paused: pause (true) or resume (false).
        reason: why (required; audited).
        actor: who (default: the OS user).
        for_: ``pause --for`` (a duration, :func:`parse_duration`).
        until: ``pause --until`` (ISO 8601; +08:00 without an offset).

    Raises:
        OperatorUsageError: no flow, an empty reason, or a bad expiry (exit code 2).
        ConfigError: a bad database URL.
        StoreError: the local store is unusable (exit code 1).
    """
    check_reason(reason)
    end = pause_end(for_, until)
    if end is not None and not paused:

        raise OperatorUsageError(gettext_noop("an expiry (--for, --until) is for pause, not resume"))
    engine = open_store(settings.database)
    try:
        return set_paused(engine, flows, paused, reason=reason, actor=actor, until=end)
    finally:
        engine.dispose()

