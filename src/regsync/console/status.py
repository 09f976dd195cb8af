"""``regsync status`` as a terminal shows it (Rich), in the language in force; the figures are
:func:`regsync.service.status.collect_status`'s."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regsync.console.summaries import counted
from regsync.domain.clock import format_age
from regsync.domain.words import FLOW_WORDS, RUN_WORDS, word
from regsync.i18n import gettext as _
from regsync.service.status import STATE_WORDS, Finding


def _flow_state(flow: str, f: dict[str, Any], status: dict[str, Any]) -> str:
    if f["paused"]:
        until = ""
        if f.get("paused_until"):
            until = (_(" (until {until}, expired)") if f.get("pause_expired") else _(" (until {until})")).format(
                until=f["paused_until"])
        return _("paused by {actor}: {reason}").format(actor=f["paused_by"], reason=f["paused_reason"]) + until
    if not f["failing_since"]:
        return _("enabled")
    failing = {f"failing:{flow}"}
    if any(p["key"] in failing or flow in (p.get("params") or {}).get("flows", ())
           for p in status.get("findings", [])):
        return _("failing")
    return _("failing (within REGSYNC_HEALTH_MAX_FAILING_S)")


def print_status(status: dict[str, Any]) -> None:
    """A Rich rendering of :func:`collect_status`'s data on stdout, for a terminal."""
    out = Console()
    verdict = "[green]" + _("healthy") + "[/green]" if status["healthy"] else "[red]" + _("UNHEALTHY") + "[/red]"
    out.print(_("regsync at {now}: {verdict}").format(now=status["now"], verdict=verdict))
    for finding in status.get("findings", []):
        out.print(f"  [red]•[/red] {escape(Finding.from_dict(finding).translated())}", highlight=False)
    platform = status.get("platform") or {}
    if platform.get("warning"):
        out.print(f"  [yellow]•[/yellow] {escape(_(platform['warning']))}", highlight=False)
    if platform.get("installed") and platform.get("installed") != "reference":
        current = _(", current") if platform.get("current") else ", [yellow]" + _("not current") + "[/yellow]"
        out.print(_("platform: mapping {mapping} installed {at}").format(
            mapping=platform["installed"], at=platform.get("installed_at")) + current, highlight=False)
    daemon = status.get("daemon") or {}
    if daemon.get("alive"):
        out.print(_("daemon: running — {workers}").format(workers=_("; ").join(
            _("{worker} since {started}, last heartbeat {age} ago").format(
                worker=w["worker"], started=w["started_at"], age=format_age(w["beat_age_s"]))
            for w in daemon["workers"])), highlight=False)
    else:
        seen = (_(" (last seen {at})").format(at=daemon["last_seen_at"]) if daemon.get("last_seen_at")
                else _(" (never seen)"))
        out.print(_("daemon: {state}").format(state="[red]" + _("not running") + "[/red]") + seen, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in (_("flow"), _("state"), _("last success"), _("age"), _("failing for"), _("next run")):
        table.add_column(col, no_wrap=True)
    for flow, f in status["flows"].items():
        # "enabled": not paused; whether a daemon runs it is the daemon line above
        table.add_row(word(FLOW_WORDS, flow), _flow_state(flow, f, status), f["last_success_at"] or _("never"),
                      format_age(f["last_success_age_s"]),
                      format_age(f["failing_for_s"]) if f["failing_since"] else "—",
                      status["next_runs"].get(flow) or "—")
    out.print(table)
    backlog = _(", ").join(f"{_(STATE_WORDS.get(k, k))} {v}" for k, v in status["backlog"].items())
    oldest = status["oldest_pending_age_s"]
    out.print(_("outbox: {backlog}; ").format(backlog=backlog)
              + (_("oldest waiting change {age} old").format(age=format_age(oldest)) if oldest is not None
                 else _("no change waiting")), highlight=False)
    by_code = (" (" + ", ".join(f"{k} {v}" for k, v in status["failed_by_code"].items()) + ")"
               if status["failed_by_code"] else "")
    cursor = (_("{age} old").format(age=format_age(status["cursor_age_s"])) if status["cursor_age_s"] is not None
              else _("not taken"))
    out.print(_("failed records {n}{by_code}; open conflicts {conflicts}; change-feed cursor {cursor}").format(
        n=status["failed_records"], by_code=by_code, conflicts=status["open_conflicts"], cursor=cursor),
        highlight=False)
    if status["reconcile_due"]:
        out.print("[yellow]" + escape(_("a full reconcile is due ({reason}, since {at} UTC)").format(
            reason=status["reconcile_due"]["reason"], at=status["reconcile_due"]["at"])) + "[/yellow]",
            highlight=False)
    for r in status.get("running") or []:
        state = "[red]" + _("abandoned (its process is gone)") + "[/red]" if r["abandoned"] else _("running")
        out.print(_("run {id} ({kind}, {worker}, since {started}): {state}").format(
            id=r["run_id"], kind=word(RUN_WORDS, r["kind"]), worker=r["worker"], started=r["started_at"],
            state=state), highlight=False)
    for r in status.get("abandoned") or []:
        out.print(_("run {id} ({kind}, started {started}) was abandoned: its process ({worker}) ended without "
                    "finishing it").format(id=r["run_id"], kind=word(RUN_WORDS, r["kind"]),
                                           started=r["started_at"], worker=r["worker"]), highlight=False)
    for flow, f in status["flows"].items():
        if f["last_error"]:
            out.print(_("{flow} last error: {error}").format(flow=word(FLOW_WORDS, flow), error=f["last_error"]),
                      highlight=False)
    for a in (status.get("alarms") or {}).get("sent") or []:
        ok = sum(1 for v in a["delivered"].values() if v)
        out.print(_("alarm sent: {title} (delivered to {ok} of {n} URLs)").format(
            title=a["title"], ok=ok, n=len(a["delivered"])), highlight=False)


__all__ = ["counted", "print_status"]
