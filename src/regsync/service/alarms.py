"""Alarms (告警) where operators are (issue 15, point 6): WeCom and DingTalk group robots, e-mail, plain webhooks.

What raises an alarm is what makes ``regsync status`` unhealthy (:func:`regsync.service.status.health_findings`,
one judgement for both): the registry refusing the credentials, a flow failing or stale, the change feed's cursor
expired, a full reconcile due, a daemon's heartbeat lost (fewer live daemons than ``health.min_daemons``), a pause
too long, the platform's mapping not installed, the hash key not the store's. Besides, each night's reconcile
announces its report (:func:`announce_report`).

* **One message when a condition starts, one when it clears**, never a storm: the state of every condition is kept
  in the store (:mod:`regsync.db.alarmstate`) and each transition is claimed there before its message is sent, so
  that of two replicas (or a replica and ``regsync status --alarms`` run from a timer) only one sends it. A
  condition is announced once it has held ``alarms.grace_s`` (60 s: a failed pass that the next one cures, a
  daemon restarting, are no alarm), and still present after ``alarms.reminder_s`` once more per period (0, the
  default: never).
* **Delivery never blocks nor fails a flow**: messages are queued to a :class:`Dispatcher`, whose one thread sends
  them to every URL of ``alarms.urls`` with `Apprise <https://appriseit.com>`_ (``wecombot://``, ``dingtalk://``,
  ``mailto://``/``mailtos://``, ``json://``/``jsons://``…), each URL on its own, retried with tenacity (``retries``
  times, waits from ``retry_wait_s`` doubling up to 60 s). A delivery that fails in the end is logged (the URL
  masked: Apprise's privacy form) and counted (``regsync_alarm_deliveries_total{result}``); the state stays
  claimed, so it is not sent again at the next check (a reminder, if configured, will).
* **A daemon that died cannot report itself**: the other replicas judge the heartbeats at every check, and
  ``regsync status --alarms`` run from a timer (``deploy/regsync-status.timer``) does when none is left.

Messages are written in the language in force (Chinese by default: ``REGSYNC_LANG``, ``--lang``), title and body.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apprise
import structlog
from sqlalchemy import Engine
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from regsync.db.alarmstate import REPORT_KEY, AlarmState, claim, read_alarms
from regsync.db.flowstate import iso_local
from regsync.db.session import utcnow
from regsync.domain.words import DISCREPANCY_WORDS, FLOW_WORDS, word
from regsync.i18n import gettext as _
from regsync.i18n import lazy_gettext as N_
from regsync.reports.data import city_name, count_discrepancies
from regsync.settings import AlarmSettings, Settings

log = structlog.get_logger(__name__)

#: What a condition is called in a message's title, by its kind (:class:`regsync.service.status.Finding`).
CONDITION_WORDS: dict[str, Any] = {
    "heartbeat": N_("a daemon's heartbeat is lost"),
    "credentials": N_("the registry refuses the credentials"),
    "failing": N_("a flow is failing"),
    "stale": N_("a flow is stale"),
    "cursor_expired": N_("the change feed's cursor expired"),
    "reconcile_due": N_("a full reconcile is due"),
    "paused": N_("a flow has been paused too long"),
    "platform": N_("the platform's mapping is not installed"),
    "hash_key": N_("the hash key is not this store's"),
}

#: Apprise's message types by event, so that robots colour them.
_TYPES = {"raised": apprise.NotifyType.FAILURE, "reminder": apprise.NotifyType.WARNING,
          "cleared": apprise.NotifyType.SUCCESS, "report": apprise.NotifyType.INFO}


@dataclass(frozen=True)
class Alarm:
    """One message to send.

    Attributes:
        key: the condition (``heartbeat``, ``failing:outbound``…) or ``report``.
        event: ``raised``, ``reminder``, ``cleared`` or ``report``.
        title: its title (a robot's first line, an e-mail's subject), in the language in force.
        body: its text.
    """

    key: str
    event: str
    title: str
    body: str


def _flow(params: Mapping[str, Any]) -> str:
    return word(FLOW_WORDS, params.get("flow"))


def _age(seconds: Any) -> str:
    """A duration in words: ``2天3小时``, ``5分钟``."""
    s = max(0, int(seconds or 0))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    if minutes:
        return _("{minutes} min").format(minutes=minutes)
    return _("{seconds} s").format(seconds=secs)


def _utc_local(text: Any) -> str:
    """A stored naive-UTC ISO time (``reconcile_due``'s ``at``) as +08:00."""
    try:
        return iso_local(dt.datetime.fromisoformat(str(text)).replace(tzinfo=None)) or "—"
    except ValueError:
        return str(text or "—")


def what(kind: str) -> str:
    """The condition ``kind`` in words (the language in force)."""
    found = CONDITION_WORDS.get(kind)
    return str(found) if found is not None else kind


def describe(kind: str, params: Mapping[str, Any]) -> str:
    """The body of a condition's start message: what is wrong, with its figures, and what to do."""
    p = params
    if kind == "heartbeat":
        text = _("{alive} daemon(s) alive, {needed} needed; the last heartbeat was at {seen}.").format(
            alive=p.get("alive", 0), needed=p.get("needed", 1), seen=p.get("last_seen_at") or "—")
        if p.get("lost"):
            text += " " + _("Heartbeat lost (the process ended without stopping): {workers}.").format(
                workers=", ".join(p["lost"]))
        return text + " " + _("While no daemon runs, nothing is synced: check `systemctl status regsync` on its "
                              "host and its log.")
    if kind == "credentials":
        return _("The registry refused the client's credentials or signature ({code}) for {age}, in: {flows}. "
                 "Nothing is synced until this is fixed: check client_id, the client secret "
                 "(REGSYNC_CLIENT_SECRET_FILE) and this host's clock.").format(
            code=p.get("code"), age=_age(p.get("failing_s")),
            flows=", ".join(word(FLOW_WORDS, f) for f in p.get("flows") or []))
    if kind == "failing":
        return _("The {flow} flow has failed for {age}: {error}").format(
            flow=_flow(p), age=_age(p.get("failing_s")), error=p.get("error") or "—")
    if kind == "stale" and p.get("flow") == "outbound":
        return _("The oldest change waiting to be pushed is {age} old (limit {limit}).").format(
            age=_age(p.get("age_s")), limit=_age(p.get("limit_s")))
    if kind == "stale":
        return _("The last success of the {flow} flow was {age} ago (limit {limit}).").format(
            flow=_flow(p), age=_age(p.get("age_s")), limit=_age(p.get("limit_s")))
    if kind == "cursor_expired":
        return _("The registry no longer holds the changes after the saved cursor (since {since}): only a full "
                 "reconcile brings them home. The nightly reconcile does it; `regsync reconcile` does it now."
                 ).format(since=_utc_local(p.get("since")))
    if kind == "reconcile_due":
        return _("The change feed missed registry changes ({reason}, since {since}): only a full reconcile "
                 "(`regsync reconcile`) brings them home.").format(reason=p.get("reason"),
                                                                     since=_utc_local(p.get("since")))
    if kind == "paused" and p.get("expired"):
        return _("The {flow} flow's pause expired at {until} but no daemon has resumed it.").format(
            flow=_flow(p), until=p.get("until"))
    if kind == "paused":
        return _("The {flow} flow has been paused for {age} by {by}: {reason}").format(
            flow=_flow(p), age=_age(p.get("paused_s")), by=p.get("by"), reason=p.get("reason"))
    if kind == "platform":
        return _("The platform's mapping: {problem}").format(problem=p.get("problem"))
    if kind == "hash_key":
        return _("The configured hash key is not this store's (store {store}, configured {configured}): every "
                 "flow refuses to run. See deploy/RUNBOOK.md.").format(store=p.get("store"),
                                                                       configured=p.get("configured"))
    return _("Condition {key}: see `regsync status`.").format(key=kind)


def message(key: str, kind: str, event: str, params: Mapping[str, Any], *, since: dt.datetime | None,
            now: dt.datetime) -> Alarm:
    """The message of a condition's ``raised``, ``reminder`` or ``cleared`` event, in the language in force.

    Args:
        key: the condition.
        kind: its kind (:data:`CONDITION_WORDS`).
        event: ``raised``, ``reminder`` or ``cleared``.
        params: its figures (:class:`regsync.service.status.Finding`'s).
        since: when it started (naive UTC).
        now: naive UTC.
    """
    name = what(kind)
    if kind in ("failing", "stale", "paused") and params.get("flow"):
        name = f"{name}（{_flow(params)}）"
    if event == "cleared":
        title = _("regsync cleared: {what}").format(what=name)
        body = _("Cleared at {at}; it lasted {age}.").format(
            at=iso_local(now), age=_age((now - since).total_seconds() if since else 0))
    else:
        title = (_("regsync alarm: {what}") if event == "raised" else _("regsync alarm, still: {what}")).format(
            what=name)
        body = describe(kind, params)
        body += "\n" + _("Since {since}.").format(since=iso_local(since or now))
    return Alarm(key=key, event=event, title=title, body=body)


# ------------------------------------------------------------------------------------------------ delivery

def masked_url(url: str) -> str:
    """``url`` as a log may show it: Apprise's privacy form (keys and passwords elided) without its query and its
    path, or its scheme alone when Apprise cannot read it."""
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 — a URL Apprise cannot read is named by its scheme only
        plugin = None
    if plugin is None or isinstance(plugin, bool):
        return url.split("://", 1)[0] + "://…"
    shown = str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]  # Apprise is untyped
    scheme, _, rest = shown.partition("://")
    netloc, _, path = rest.partition("/")
    # a webhook's path often is its token (jsons://hooks.example/T0KEN), which the privacy form leaves: not shown
    return f"{scheme}://{netloc}/…" if path.strip("/") else shown


class Notifier:
    """Sends a message to every URL, each on its own (a robot that fails does not make the e-mail sent twice),
    retried with tenacity; never raises.

    Args:
        settings: ``[alarms]``.
        count: called with ``delivered``, ``retried`` or ``failed`` per URL and attempt outcome (a metric).
        sleep: how tenacity waits (tests pass a recorder).
    """

    def __init__(self, settings: AlarmSettings, *, count: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.count = count or (lambda _result: None)
        self.sleep = sleep
        self.targets: list[tuple[str, apprise.Apprise]] = []
        logging.getLogger("apprise").setLevel(logging.CRITICAL)  # it logs URLs' parts; we log them masked
        for url in settings.urls:
            box = apprise.Apprise()
            if not box.add(url):
                log.error("alarm URL not understood; it is skipped", url=masked_url(url))
                continue
            self.targets.append((masked_url(url), box))

    def deliver(self, alarm: Alarm) -> dict[str, bool]:
        """Send ``alarm`` to every URL.

        Returns:
            Masked URL → whether it was delivered (after the retries).
        """
        out: dict[str, bool] = {}
        for shown, box in self.targets:
            out[shown] = self._one(shown, box, alarm)
        return out

    def _one(self, shown: str, box: apprise.Apprise, alarm: Alarm) -> bool:
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.count("retried")
            try:
                return bool(box.notify(title=alarm.title, body=alarm.body, notify_type=_TYPES[alarm.event]))
            except Exception as exc:  # noqa: BLE001 — a plugin's error is a failed attempt
                log.warning("alarm delivery attempt raised", url=shown, error=type(exc).__name__)
                return False

        s = self.settings
        kwargs: dict[str, Any] = {"stop": stop_after_attempt(s.retries + 1),
                                  "wait": wait_exponential(multiplier=s.retry_wait_s, max=60),
                                  "retry": retry_if_result(lambda ok: not ok)}
        if self.sleep is not None:
            kwargs["sleep"] = self.sleep
        try:
            ok = bool(Retrying(**kwargs)(attempt))
        except RetryError:
            ok = False
        self.count("delivered" if ok else "failed")
        if ok:
            log.info("alarm delivered", url=shown, key=alarm.key, alarm_event=alarm.event, attempts=attempts)
        else:
            log.error("alarm not delivered", url=shown, key=alarm.key, alarm_event=alarm.event, attempts=attempts)
        return ok


class Dispatcher:
    """A queue of messages and the one thread that delivers them, off the flows' path (:meth:`submit` returns at
    once). The thread is a daemon thread: a process that exits does not wait for it unless asked (:meth:`drain`).

    Args:
        notifier: what sends (a :class:`Notifier`, or any object with ``deliver(alarm)``).
    """

    def __init__(self, notifier: Any) -> None:
        self.notifier = notifier
        self._queue: queue.Queue[Alarm | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered: list[tuple[Alarm, dict[str, bool]]] = []

    def submit(self, alarm: Alarm) -> None:
        """Queue ``alarm`` for delivery (the thread starts with the first message)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="regsync-alarms", daemon=True)
                self._thread.start()
        self._queue.put(alarm)

    def _loop(self) -> None:
        while True:
            alarm = self._queue.get()
            try:
                if alarm is None:
                    return
                try:
                    self.delivered.append((alarm, self.notifier.deliver(alarm)))
                except Exception as exc:  # noqa: BLE001 — the thread lives on for the next message
                    log.error("alarm delivery failed", key=alarm.key, error=type(exc).__name__)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued message was handled (delivered or given up), at most ``timeout`` seconds.

        Returns:
            Whether the queue is empty.
        """
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (at most ``timeout`` seconds), then stop the thread. Returns whether it stopped."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(None)
        thread.join(timeout)
        return not thread.is_alive()


# ------------------------------------------------------------------------------------------------ conditions

@dataclass
class CheckResult:
    """What one check did: the messages it claimed (and queued), and the conditions active after it."""

    sent: list[Alarm] = field(default_factory=list)
    active: list[str] = field(default_factory=list)


def check_alarms(engine: Engine, settings: Settings, status: Mapping[str, Any], submit: Callable[[Alarm], None],
                 *, now: dt.datetime | None = None, states: Mapping[str, AlarmState] | None = None) -> CheckResult:
    """Compare the conditions of ``status`` with their stored states, claim each transition and queue its message.

    Args:
        engine: the local store.
        settings: ``[alarms]`` (``reminder_s``).
        status: :func:`regsync.service.status.collect_status`'s data (its ``findings``).
        submit: where messages go (:meth:`Dispatcher.submit`).
        now: naive UTC (default now).
        states: the stored states, if read already (default: read now).

    Returns:
        The messages this process claimed; a transition another process claimed first is not among them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store failed (the caller logs it; the next check tries again).
    """
    now = now or utcnow()
    states = read_alarms(engine) if states is None else states
    current = {f["key"]: f for f in status.get("findings") or []}
    result = CheckResult()
    reminder = settings.alarms.reminder_s
    grace = settings.alarms.grace_s
    for key, finding in current.items():
        old = states.get(key)
        params = dict(finding.get("params") or {})
        kind = str(finding.get("kind") or key.split(":", 1)[0])
        stored = {**params, "_kind": kind}
        result.active.append(key)
        new, event = None, "raised"
        if old is None or not (old.active or old.pending):  # first seen
            if grace > 0:  # to be announced if it still holds after the grace
                claim(engine, old, key, active=False, pending=True, params=stored, since=now, now=now)
                continue
            new = claim(engine, old, key, active=True, params=stored, since=now, now=now)
        elif old.pending:
            if old.since is not None and (now - old.since).total_seconds() < grace:
                continue
            new = claim(engine, old, key, active=True, params=stored, since=old.since or now, now=now)
        elif reminder > 0 and old.notified_at is not None and (now - old.notified_at).total_seconds() >= reminder:
            new = claim(engine, old, key, active=True, params=stored, since=old.since or now, now=now)
            event = "reminder"
        if new is not None:
            result.sent.append(message(key, kind, event, params, since=new.since, now=now))
    for key, old in states.items():
        if key == REPORT_KEY or key in current or not (old.active or old.pending):
            continue
        new = claim(engine, old, key, active=False, params=old.params, since=now, now=now)
        if new is not None and old.active:  # a condition gone within its grace was never announced: no clear
            kind = str(old.params.get("_kind") or key.split(":", 1)[0])
            result.sent.append(message(key, kind, "cleared", old.params, since=old.since, now=now))
    for alarm in result.sent:
        log.warning(f"alarm {alarm.event}", key=alarm.key, alarm_event=alarm.event, urls=len(settings.alarms.urls))
        submit(alarm)
    return result


# ------------------------------------------------------------------------------------------------ the report

def report_message(run_id: int, *, total: int, by_kind: Mapping[str, int], city_totals: Sequence[tuple[str, int]],
                   files: Sequence[str] = (), status: str | None = None) -> Alarm:
    """The message that a night's report is ready: its headline figures and the work's totals by city.

    The seam for the worklists (issue 15, point 2): ``city_totals`` are (city code, items) pairs, biggest first;
    until the worklists are merged the caller passes the run's discrepancies by city (:func:`announce_report`).

    Args:
        run_id: the reconcile run.
        total: its discrepancies.
        by_kind: discrepancy kind → rows.
        city_totals: (4-digit city code or ``unknown``, items), in the order to show.
        files: the reports written (paths).
        status: the run's status (``success``, ``partial``…).
    """
    title = _("regsync: the night's reconcile report is ready (run {run_id})").format(run_id=run_id)
    lines = [_("{total} differences between the platform and the registry.").format(total=total)]
    if status and status != "success":
        lines[0] += " " + _("The run ended as {status}.").format(status=status)
    if by_kind:
        lines.append(_("By kind: {parts}").format(parts=_("; ").join(
            f"{word(DISCREPANCY_WORDS, k)} {n}" for k, n in by_kind.items())))
    if city_totals:
        unknown = _("unknown city")
        lines.append(_("By city: {parts}").format(parts=_("; ").join(
            f"{city_name(c) or (unknown if c == 'unknown' else c)} {n}" for c, n in city_totals)))
    if files:
        lines.append(_("Reports: {files}").format(files=", ".join(files)))
    return Alarm(key=REPORT_KEY, event="report", title=title, body="\n".join(lines))


def announce_report(engine: Engine, run_id: int, submit: Callable[[Alarm], None], *, files: Sequence[str] = (),
                    status: str | None = None, city_totals: Sequence[tuple[str, int]] | None = None,
                    now: dt.datetime | None = None) -> Alarm | None:
    """Queue the message that run ``run_id``'s report is ready, once per run whatever the replicas (claimed under
    ``alarm:report``: a run at or below the newest one announced is not announced again).

    Args:
        engine: the local store.
        run_id: the reconcile run.
        submit: where the message goes.
        files: the reports written.
        status: the run's status.
        city_totals: the work's totals by city (the worklists' seam); default: the run's discrepancies by city,
            biggest first.
        now: naive UTC.

    Returns:
        The message, or ``None`` when another process announced this run (or a later one) already.
    """
    old = read_alarms(engine).get(REPORT_KEY)
    if old is not None and int(old.params.get("run_id") or 0) >= run_id:
        return None
    counts = count_discrepancies(engine, run_id)
    if city_totals is None:
        city_totals = sorted(counts.by_city.items(), key=lambda kv: (-kv[1], kv[0]))
    now = now or utcnow()
    if claim(engine, old, REPORT_KEY, active=False, params={"run_id": run_id}, since=now, now=now) is None:
        return None
    alarm = report_message(run_id, total=counts.total, by_kind=counts.by_kind, city_totals=city_totals,
                           files=files, status=status)
    log.info("report announced", run_id=run_id, total=counts.total)
    submit(alarm)
    return alarm


def send_test(settings: AlarmSettings, *, sleep: Callable[[float], None] | None = None) -> dict[str, bool]:
    """``regsync alarms test``: one test message to every URL, now, in this thread (with the retries), so that an
    operator sees each robot and mailbox answer before an alarm needs them.

    Returns:
        Masked URL → delivered; a URL Apprise cannot read is listed as not delivered.
    """
    notifier = Notifier(settings, sleep=sleep)
    alarm = Alarm(key="test", event="report", title=_("regsync: a test message"),
                  body=_("Alarms from regsync reach this place. Nothing is wrong."))
    out = notifier.deliver(alarm)
    readable = {shown for shown, _box in notifier.targets}
    for url in settings.urls:
        shown = masked_url(url)
        if shown not in readable:
            out[shown] = False
    return out


__all__ = ["CONDITION_WORDS", "Alarm", "CheckResult", "Dispatcher", "Notifier", "announce_report", "check_alarms",
           "describe", "masked_url", "message", "report_message", "send_test", "what"]
