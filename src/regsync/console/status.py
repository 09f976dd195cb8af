"""``regsync status`` as a terminal shows it (Rich); the figures are :func:`regsync.service.status.collect_status`'s."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from regsync.domain.clock import format_age
from regsync.i18n import gettext as _


def print_status(status: dict[str, Any]) -> None:
    """A Rich rendering of :func:`collect_status`'s data on stdout, for a terminal."""


    out = Console()
    verdict = "[green]healthy[/green]" if status["healthy"] else "[red]UNHEALTHY[/red]"
    out.print(f"regsync at {status['now']}: {verdict}")
    for problem in status["problems"]:
        out.print(f"  [red]•[/red] {problem}", highlight=False)
    platform = status.get("platform") or {}
    if platform.get("warning"):
        out.print(f"  [yellow]•[/yellow] {platform['warning']}", highlight=False)
    if platform.get("installed") and platform.get("installed") != "reference":
        out.print(f"platform: mapping {platform['installed']} installed {platform.get('installed_at')}"
                  + (", current" if platform.get("current") else ", [yellow]not current[/yellow]"), highlight=False)
    daemon = status.get("daemon") or {}
    if daemon.get("alive"):
        out.print("daemon: running — " + "; ".join(
            f"{w['worker']} since {w['started_at']}, last heartbeat {format_age(w['beat_age_s'])} ago"
            for w in daemon["workers"]), highlight=False)
    else:
        out.print("daemon: [red]not running[/red]" + (f" (last seen {daemon['last_seen_at']})"
                                                       if daemon.get("last_seen_at") else " (never seen)"),
                  highlight=False)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("flow", "state", "last success", "age", "failing for", "next run"):
        table.add_column(col, no_wrap=True)
    jobs = {"outbound": "outbound", "inbound": "inbound", "reconcile": "reconcile"}
    for flow, f in status["flows"].items():
        # "enabled": not paused; whether a daemon runs it is the daemon line above
        state = (f"paused by {f['paused_by']}: {f['paused_reason']}"
                 + (f" (until {f['paused_until']}{', expired' if f.get('pause_expired') else ''})"
                    if f.get("paused_until") else "")) if f["paused"] else (
            "enabled" if not f["failing_since"] else "failing" if any(
                p.startswith(f"{flow} has been failing") for p in status["problems"])
            else "failing (within REGSYNC_HEALTH_MAX_FAILING_S)")
        table.add_row(flow, state, f["last_success_at"] or "never", format_age(f["last_success_age_s"]),
                      format_age(f["failing_for_s"]) if f["failing_since"] else "—",
                      status["next_runs"].get(jobs[flow]) or "—")
    out.print(table)
    backlog = ", ".join(f"{k} {v}" for k, v in status["backlog"].items())
    oldest = status["oldest_pending_age_s"]
    out.print(f"outbox: {backlog}; " + (f"oldest waiting change {format_age(oldest)} old" if oldest is not None
                                        else "no change waiting"), highlight=False)
    out.print(f"failed records {status['failed_records']}"
              + (f" ({', '.join(f'{k} {v}' for k, v in status['failed_by_code'].items())})"
                 if status["failed_by_code"] else "")
              + f"; open conflicts {status['open_conflicts']}; change-feed cursor "
              + (f"{format_age(status['cursor_age_s'])} old" if status["cursor_age_s"] is not None else "not taken"),
              highlight=False)
    if status["reconcile_due"]:
        out.print(f"[yellow]a full reconcile is due[/yellow] ({status['reconcile_due']['reason']}, since "
                  f"{status['reconcile_due']['at']} UTC)", highlight=False)
    for r in status.get("running") or []:
        state = "[red]abandoned[/red] (its process is gone)" if r["abandoned"] else "running"
        out.print(f"run {r['run_id']} ({r['kind']}, {r['worker']}, since {r['started_at']}): {state}",
                  highlight=False)
    for r in status.get("abandoned") or []:
        out.print(f"run {r['run_id']} ({r['kind']}, started {r['started_at']}) was [red]abandoned[/red]: its "
                  f"process ({r['worker']}) ended without finishing it", highlight=False)
    for flow, f in status["flows"].items():
        if f["last_error"]:
            out.print(f"{flow} last error: {f['last_error']}", highlight=False)
    sent = (status.get("alarms") or {}).get("sent") or []
    for a in sent:
        ok = sum(1 for v in a["delivered"].values() if v)
        out.print(_("alarm sent: {title} (delivered to {ok} of {n} URLs)").format(
            title=a["title"], ok=ok, n=len(a["delivered"])), highlight=False)
