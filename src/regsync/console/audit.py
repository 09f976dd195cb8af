"""``regsync audit list``: the audit of operator actions (issue 15, point 5), for a terminal (Rich, Chinese
headers by default) or as one JSON object.

What is shown is masked: the reason and the details were masked when written, and are masked again here (an ID
number or a phone in them is never printed). Times are +08:00. Exit codes: 0 listed (also when nothing matched),
1 the local store is unusable, 2 a usage or configuration error (a ``--since`` that is neither a time nor a
duration).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from regsync.console.common import ConfigOpt, JsonOpt, cell, command_errors, err, open_checked_store, print_json, setup
from regsync.db.audit import list_audit
from regsync.db.flowstate import iso_local
from regsync.domain.clock import SHANGHAI
from regsync.domain.masking import mask_text
from regsync.flows.operator import OperatorUsageError
from regsync.i18n import gettext as _
from regsync.service.status import parse_duration
from regsync.settings import env_epilog

audit_app = typer.Typer(help="The audit of operator actions: pause and resume, outbox retry, discard and restore, "
                             "conflicts resolved, resyncs, re-keys, personal data shown in clear.",
                        no_args_is_help=True)

#: The longest details shown in a table cell (``--json`` gives them whole).
DETAILS_WIDTH = 160


def parse_since(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """``--since`` as naive UTC: an ISO 8601 date or time (+08:00 when it has no offset; a date is its midnight), or
    a duration back from ``now`` (``2h``, ``7d``, ``1h30m``).

    Raises:
        OperatorUsageError: neither.
    """
    raw = text.strip()
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        try:
            return (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)) - parse_duration(raw)
        except OperatorUsageError:
            raise OperatorUsageError(f"--since takes a time such as 2026-12-01 or 2026-12-01T08:00 (+08:00 unless "
                                     f"an offset is given) or a duration such as 2h or 7d, got {text!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=SHANGHAI)
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def _details(text: str | None) -> Any:
    """The stored details (JSON text), masked, as data (or as text when it is not JSON)."""
    masked = mask_text(text or "{}")
    try:
        return json.loads(masked)
    except ValueError:
        return masked


def as_json(rows: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """``audit list --json``: ``{"entries": [{"id", "at" (+08:00), "actor", "action", "target", "reason",
    "details"}], "more": bool}``, masked."""
    return {"entries": [{"id": int(r["id"]), "at": iso_local(r["at"]), "actor": r["actor"], "action": r["action"],
                         "target": mask_text(r["target"] or ""), "reason": mask_text(r["reason"] or ""),
                         "details": _details(r["details"])} for r in rows], "more": more}


@audit_app.command("list", help="The audit entries, newest first: who did what, when (+08:00), on what and why. "
                   "ID numbers and phones are masked.",
                   epilog=env_epilog("database"))
def audit_list(config: ConfigOpt = None, json_output: JsonOpt = False,
               since: Annotated[str | None, typer.Option(
                   "--since", metavar="WHEN", help="Only entries from then on: 2026-12-01, 2026-12-01T08:00 "
                   "(+08:00 unless an offset is given) or a duration back from now (2h, 7d).")] = None,
               actor: Annotated[str | None, typer.Option("--actor", help="Only this actor's entries.")] = None,
               action: Annotated[str | None, typer.Option(
                   "--action", help="Only this action (pause, resume, outbox.retry, conflicts.resolve, resync, "
                   "db_rekey, show_personal_data…); `outbox` matches every outbox.* action.")] = None,
               limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries.")] = 100,
               ) -> None:
    """List the audit entries."""
    settings = setup(config, json_output)
    try:
        since_at = parse_since(since) if since is not None else None
    except OperatorUsageError as exc:
        err.print(f"[red]usage error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    engine = open_checked_store(settings)
    try:
        with command_errors():
            page = list_audit(engine, since=since_at, actor=actor, action=action, limit=limit)
    finally:
        engine.dispose()
    data = as_json(page.rows, page.more)
    if json_output:
        print_json(data)
        return
    out = Console()
    if not data["entries"]:
        out.print(_("No audit entry matches."), highlight=False)
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in (_("ID"), _("time"), _("actor"), _("action"), _("target"), _("reason"), _("details")):
        table.add_column(col, overflow="fold")
    for e in data["entries"]:
        text_ = e["details"] if isinstance(e["details"], str) else json.dumps(e["details"], ensure_ascii=False,
                                                                               sort_keys=True)
        details = None if text_ in ("{}", "") else (
            text_ if len(text_) <= DETAILS_WIDTH else text_[: DETAILS_WIDTH - 1] + "…")
        table.add_row(*(Text(cell(v)) for v in (e["id"], e["at"], e["actor"], e["action"], e["target"] or None,
                                                 e["reason"] or None, details)))
    out.print(table)
    if data["more"]:
        out.print(_("More entries match: raise --limit ({limit}) or narrow --since.").format(limit=limit),
                  highlight=False)


__all__ = ["as_json", "audit_app", "audit_list", "parse_since"]
