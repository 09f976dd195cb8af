"""``regsync show KIND KEY``: one record on both sides, for a terminal (Rich) or as one JSON object
(:func:`regsync.flows.show.show_record` assembles it).

Exit codes (design.md, "Operator commands", as ``status`` and ``platform status`` use them): 0 the record is shown;
1 neither side holds it (or the platform does not and the registry did not answer), or the local store is unusable;
2 a usage or configuration error (an unknown kind, no KEY nor ``--registry-id``, ``--show-personal-data`` without
``--reason``); 3 shown, but incomplete: the registry could not be read, so only the platform's side and regsync's
traces are shown (the message says why).

Every sentence people read is written once, here (:data:`TEXT`), in English for now; JSON keys and codes are the
machine interface and stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.common import ActorOpt, ConfigOpt, JsonOpt, cell, command_errors, err, print_json, setup
from regsync.db.store import StoreError
from regsync.domain.masking import mask_text
from regsync.flows.operator import OperatorUsageError
from regsync.flows.show import RecordNotFound, RecordView, show_record
from regsync.i18n import gettext_noop as N_

#: Exit code of a view without the registry's side (the registry could not be read).
EXIT_REGISTRY_UNREADABLE = 3

#: What people read, each sentence once (``str.format`` fields in braces).
TEXT: dict[str, str] = {
    "help": N_("One record on both sides: the platform's row and the registry's record (read live), field by field "
               "with the differences marked; the link and its base (the last agreed state); the record's outbox "
               "history and failures, conflicts, discrepancies of the recent reconcile runs, and the audit entries "
               "that name it. ID numbers and phones are masked unless --show-personal-data --reason R (audited). "
               "Exit 0 shown, 1 not found (or the local store unusable), 2 usage, 3 shown without the registry's side "
               "(the registry could not be read)."),
    "kind": N_("volunteer, org, membership, activity or service-record."),
    "key": N_("The platform's key of the record: its local id, or on a mapped platform its own key (an org code)."),
    "registry_id": N_("Name the record by its registry id instead of KEY."),
    "personal": N_("Show the record's ID numbers and phones in clear (audited; needs --reason)."),
    "reason": N_("Why the personal data is needed (goes to the audit table)."),
    "usage": "[red]usage error:[/red] {message}",
    "not_found": "[red]not found:[/red] {message}",
    "title": "{kind} {key}",
    "title_registry": "registry id {registry_id}",
    "agree": "[green]the two sides agree[/green]",
    "differ": "[yellow]the two sides differ in {count} field(s)[/yellow]: {fields}",
    "only_local": "[yellow]only on the platform[/yellow]: not linked to a registry record",
    "gone_in_registry": "[red]the registry has no record {registry_id}[/red] (linked)",
    "only_registry": "[yellow]only in the registry[/yellow]: the platform holds no row of it",
    "local_deleted": "the platform's row is gone (deleted); its link remains",
    "unreadable": "[red]the registry could not be read[/red] ({error}): only the platform's side is shown",
    "local_error": "[red]the platform's row cannot be put in canonical form:[/red] {error}",
    "masked": "ID numbers and phones masked (--show-personal-data --reason R to show them, audited)",
    "clear": "[bold]ID numbers and phones in clear[/bold] (audit #{audit_id})",
    "fields_title": "fields, canonical (times UTC, hours in hundredths of an hour); ≠ where the sides differ",
    "col_field": "field",
    "col_platform": "platform",
    "col_registry": "registry",
    "col_base": "base (last agreed)",
    "col_changed": "changed since",
    "local_ref": "{value} (local {ref})",
    "unlinked_ref": "— (local {ref}, not linked)",
    "link": "link: {how}, registry version {version}, linked {linked_at}, updated {updated_at}",
    "duplicate": "a person's second row (duplicate): its profile is never pushed",
    "others": "also linked to this registry record: local {ids}",
    "registry_meta": "registry: {items}",
    "outbox_none": "outbox: no rows",
    "outbox_title": "outbox: {shown} newest of {total} row(s) ({states}; times +08:00)",
    "failures_title": "failures (failed or blocked rows)",
    "hold": "[yellow]discarded by an operator[/yellow] ({actor}, {held_at}, audit #{audit_id}): {reason}; out of "
            "sync until `regsync outbox restore {kind}:{local_id}`",
    "conflicts_none": "conflicts: none",
    "conflicts_title": "conflicts: {shown} newest of {total}",
    "discrepancies_none": "discrepancies: none in the last {runs} reconcile, resync or adopt run(s)",
    "no_runs": "discrepancies: no reconcile, resync or adopt run yet",
    "discrepancies_title": "discrepancies in the last {runs} reconcile, resync or adopt run(s)",
    "audit_none": "audit: no entry names this record",
    "audit_title": "audit entries that name this record",
}


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table of plain cells (no markup read from the data)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(v)) for v in row))
    return table


def _headline(v: RecordView) -> str:
    if v.registry_state == "unreadable":
        return TEXT["unreadable"].format(error=escape(v.registry_error or ""))
    if not v.local_found and v.registry_state == "found":
        return TEXT["only_registry"]
    if v.registry_state == "not_linked":
        return TEXT["only_local"]
    if v.registry_state == "not_found":
        return TEXT["gone_in_registry"].format(registry_id=escape(v.registry_id or ""))
    if v.in_agreement:
        return TEXT["agree"]
    differing = [f.field for f in v.fields if f.differs]
    return TEXT["differ"].format(count=len(differing), fields=escape(", ".join(differing)))


def _localcell(value: Any, ref: int | None) -> str:
    if ref is None:
        return cell(value)
    if value is None:
        return TEXT["unlinked_ref"].format(ref=ref)
    return TEXT["local_ref"].format(value=value, ref=ref)


def print_view(v: RecordView, out: Console | None = None) -> None:
    """The view as a terminal shows it: a headline, the fields side by side (the differing ones marked, the base in a
    third column where it differs from a side), then the link, the registry's own fields, the outbox, conflicts,
    discrepancies and audit entries."""
    out = out or Console()
    title = TEXT["title"].format(kind=v.kind, key=v.key if v.key is not None else "—")
    if v.registry_id:
        title += " · " + TEXT["title_registry"].format(registry_id=v.registry_id)
    out.print(Text(title, style="bold"))
    out.print(_headline(v), highlight=False)
    if v.local_found is False and v.link is not None:
        out.print(TEXT["local_deleted"], highlight=False)
    if v.local_error:
        out.print(TEXT["local_error"].format(error=escape(v.local_error)), highlight=False)
    out.print(TEXT["clear"].format(audit_id=v.audit_id) if v.personal_data else TEXT["masked"], highlight=False)

    with_base = any(f.base_differs for f in v.fields)
    out.print(Text(TEXT["fields_title"]))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("", no_wrap=True)
    for col in ("col_field", "col_platform", "col_registry") + (("col_base", "col_changed") if with_base else ()):
        table.add_column(TEXT[col], overflow="fold")
    for f in v.fields:
        style = "yellow" if f.differs else ""
        cells = [Text("≠" if f.differs else "", style="bold yellow"), Text(f.field, style=style),
                 Text(_localcell(f.local, f.local_ref) if v.local_found else "", style=style),
                 Text(cell(f.registry) if v.registry_state == "found" else "", style=style)]
        if with_base:
            cells += [Text(cell(f.base) if f.base_differs else ""),
                      Text(", ".join(f.changed or ()) if f.base_differs else "")]
        table.add_row(*cells)
    out.print(table)

    if v.link is not None:
        link = v.link
        out.print(Text(TEXT["link"].format(how=link["how"], version=link["registry_version"],
                                           linked_at=cell(link["linked_at"]), updated_at=cell(link["updated_at"]))))
        if link["is_duplicate"]:
            out.print(Text(TEXT["duplicate"]))
        if link["others"]:
            out.print(Text(TEXT["others"].format(ids=", ".join(str(i) for i in link["others"]))))
    if v.registry_meta:
        out.print(Text(TEXT["registry_meta"].format(
            items="; ".join(f"{k} {cell(val)}" for k, val in v.registry_meta.items()))))
    _print_traces(v, out)


_OUTBOX_COLS = ("id", "op", "state", "attempts", "last_code", "last_error", "created_at", "done_at")
_CONFLICT_COLS = ("id", "field", "state", "local_value", "remote_value", "base_value", "detected_at", "resolution")
_DISCREPANCY_COLS = ("run_id", "kind", "fields", "action", "action_state", "detected_at")
_AUDIT_COLS = ("id", "at", "actor", "action", "target", "reason")


def _print_traces(v: RecordView, out: Console) -> None:
    ob = v.outbox
    if ob.get("hold"):
        h = ob["hold"]
        out.print(TEXT["hold"].format(actor=escape(h["actor"]), held_at=h["held_at"], audit_id=h["audit_id"],
                                      reason=escape(h["reason"]), kind=v.kind, local_id=v.local_id), highlight=False)
    total = sum(ob.get("by_state", {}).values())
    if not total:
        out.print(Text(TEXT["outbox_none"]))
    else:
        states = ", ".join(f"{k} {n}" for k, n in ob["by_state"].items())
        out.print(_table(TEXT["outbox_title"].format(shown=len(ob["rows"]), total=total, states=states),
                         _OUTBOX_COLS, [[r[c] for c in _OUTBOX_COLS] for r in ob["rows"]]))
        shown = {r["id"] for r in ob["rows"]}
        older = [r for r in ob["failures"] if r["id"] not in shown]
        if older:
            out.print(_table(TEXT["failures_title"], _OUTBOX_COLS, [[r[c] for c in _OUTBOX_COLS] for r in older]))
    cf = v.conflicts
    if not cf.get("total"):
        out.print(Text(TEXT["conflicts_none"]))
    else:
        out.print(_table(TEXT["conflicts_title"].format(shown=len(cf["rows"]), total=cf["total"]), _CONFLICT_COLS,
                         [[r[c] for c in _CONFLICT_COLS] for r in cf["rows"]]))
    ds = v.discrepancies
    runs = len(ds.get("runs", []))
    if not runs:
        out.print(Text(TEXT["no_runs"]))
    elif not ds.get("rows"):
        out.print(Text(TEXT["discrepancies_none"].format(runs=runs)))
    else:
        out.print(_table(TEXT["discrepancies_title"].format(runs=runs), _DISCREPANCY_COLS,
                         [[r[c] for c in _DISCREPANCY_COLS] for r in ds["rows"]]))
    if not v.audit:
        out.print(Text(TEXT["audit_none"]))
    else:
        out.print(_table(TEXT["audit_title"], _AUDIT_COLS, [[r[c] for c in _AUDIT_COLS] for r in v.audit]))


def show(kind: Annotated[str, typer.Argument(metavar="KIND", help=TEXT["kind"], show_default=False)],
         key: Annotated[str | None, typer.Argument(metavar="KEY", help=TEXT["key"], show_default=False)] = None,
         registry_id: Annotated[str | None, typer.Option("--registry-id", metavar="ID",
                                                         help=TEXT["registry_id"])] = None,
         show_personal_data: Annotated[bool, typer.Option("--show-personal-data", help=TEXT["personal"])] = False,
         reason: Annotated[str | None, typer.Option("--reason", help=TEXT["reason"])] = None,
         actor: ActorOpt = None, config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Show one record on both sides (the module's docstring has the exit codes)."""
    settings = setup(config, json_output)
    try:
        with command_errors():
            try:
                view = show_record(settings, kind, key, registry_id=registry_id,
                                   show_personal_data=show_personal_data, reason=reason, actor=actor)
            except SQLAlchemyError as exc:
                orig = getattr(exc, "orig", None) or exc
                raise StoreError(mask_text(f"{type(orig).__name__}: {str(orig).strip().splitlines()[0]}")) from exc
    except OperatorUsageError as exc:  # ShowUsageError, or an unknown kind
        err.print(TEXT["usage"].format(message=escape(str(exc))), highlight=False)
        raise typer.Exit(2) from exc
    except RecordNotFound as exc:
        err.print(TEXT["not_found"].format(message=escape(str(exc))), highlight=False)
        raise typer.Exit(1) from exc
    if json_output:
        print_json(view.as_dict())
    else:
        print_view(view)
    raise typer.Exit(EXIT_REGISTRY_UNREADABLE if view.registry_state == "unreadable" else 0)


__all__ = ["EXIT_REGISTRY_UNREADABLE", "TEXT", "print_view", "show"]
