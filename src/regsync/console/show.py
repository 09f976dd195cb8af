"""``regsync show KIND KEY``: one record on both sides, for a terminal (Rich) or as one JSON object
(:func:`regsync.flows.show.show_record` assembles it).

Exit codes (design.md, "Operator commands", as ``status`` and ``platform status`` use them): 0 the record is shown;
1 neither side holds it (or the platform does not and the registry did not answer), or the local store is unusable;
2 a usage or configuration error (an unknown kind, no KEY nor ``--registry-id``, ``--show-personal-data`` without
``--reason``); 3 shown, but incomplete: the registry could not be read, so only the platform's side and regsync's
traces are shown (the message says why).

Every sentence people read is written once, here (:data:`TEXT`), in English, and printed in the language in force
(:func:`say`); JSON keys and codes are the machine interface and stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.common import ActorOpt, ConfigOpt, JsonOpt, cell, command_errors, print_error, print_json, setup
from regsync.console.outbox import state_word
from regsync.db.store import StoreError
from regsync.domain.hours import format_hours
from regsync.domain.kinds import KIND_ALIASES
from regsync.domain.masking import mask_text
from regsync.domain.words import KIND_WORDS, code_word, word
from regsync.flows.operator import OperatorUsageError
from regsync.flows.show import RecordNotFound, RecordView, show_record
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop, language
from regsync.i18n import gettext_noop as N_
from regsync.reports.labels import ACTION_WORDS, STATE_WORDS, discrepancy_word, field_word

#: Exit code of a view without the registry's side (the registry could not be read).
EXIT_REGISTRY_UNREADABLE = 3

#: The command's help texts (Typer reads them at import, before ``--lang``: English, translated when shown by
#: :func:`regsync.console.helptext.translate_help`).
HELP: dict[str, str] = {
    "help": N_("One record on both sides: the platform's row and the registry's record (read live), field by field "
               "with the differences marked; the link and its base (the last agreed state); the record's outbox "
               "history and failures, conflicts, discrepancies of the recent reconcile runs, and the audit entries "
               "that name it. ID numbers and phones are masked unless --show-personal-data --reason R (audited). "
               "Exit 0 shown, 1 not found (or the local store unusable), 2 usage, 3 shown without the registry's side "
               "(the registry could not be read)."),
    "kind": N_("volunteer, org, membership, activity, service-record, training, training-record, commendation or "
               "evaluation."),
    "key": N_("The platform's key of the record: its local id, or on a mapped platform its own key (an org code)."),
    "registry_id": N_("Name the record by its registry id instead of KEY."),
    "personal": N_("Show the record's ID numbers and phones in clear (audited; needs --reason)."),
    "reason": N_("Why the personal data is needed (goes to the audit table)."),
}

#: What people read, each sentence once, in English (``str.format`` fields in braces, no markup), translated where
#: it is printed (:func:`say`); :data:`STYLE` colours some of them.
TEXT: dict[str, str] = {
    **HELP,
    "usage": gettext_noop("usage error:"),
    "not_found": gettext_noop("not found:"),
    "title": "{kind} {key}",
    "title_registry": gettext_noop("registry id {registry_id}"),
    "agree": gettext_noop("the two sides agree"),
    "differ": gettext_noop("the two sides differ in {count} field(s): {fields}"),
    "only_local": gettext_noop("only on the platform: not linked to a registry record"),
    "gone_in_registry": gettext_noop("the registry has no record {registry_id} (linked)"),
    "only_registry": gettext_noop("only in the registry: the platform holds no row of it"),
    "local_deleted": gettext_noop("the platform's row is gone (deleted); its link remains"),
    "unreadable": gettext_noop("the registry could not be read ({error}): only the platform's side is shown"),
    "local_error": gettext_noop("the platform's row cannot be put in canonical form: {error}"),
    "masked": gettext_noop("ID numbers and phones masked (--show-personal-data --reason R to show them, audited)"),
    "clear": gettext_noop("ID numbers and phones in clear (audit #{audit_id})"),
    "fields_title": gettext_noop("fields, canonical (times UTC, hours in hundredths of an hour); ≠ where the sides "
                                 "differ"),
    "col_field": gettext_noop("field"),
    "col_platform": gettext_noop("platform"),
    "col_registry": gettext_noop("registry"),
    "col_base": gettext_noop("base (last agreed)"),
    "col_changed": gettext_noop("changed since"),
    "local_ref": gettext_noop("{value} (local {ref})"),
    "unlinked_ref": gettext_noop("— (local {ref}, not linked)"),
    "link": gettext_noop("link: {how}, registry version {version}, linked {linked_at}, updated {updated_at}"),
    "duplicate": gettext_noop("a person's second row (duplicate): its profile is never pushed"),
    "others": gettext_noop("also linked to this registry record: local {ids}"),
    "registry_meta": gettext_noop("registry: {items}"),
    "outbox_none": gettext_noop("outbox: no rows"),
    "outbox_title": gettext_noop("outbox: {shown} newest of {total} row(s) ({states}; times +08:00)"),
    "failures_title": gettext_noop("failures (failed or blocked rows)"),
    "hold": gettext_noop("discarded by an operator ({actor}, {held_at}, audit #{audit_id}): {reason}; out of sync "
                         "until `regsync outbox restore {kind}:{local_id}`"),
    "conflicts_none": gettext_noop("conflicts: none"),
    "conflicts_title": gettext_noop("conflicts: {shown} newest of {total}"),
    "discrepancies_none": gettext_noop("discrepancies: none in the last {runs} reconcile, resync or adopt run(s)"),
    "no_runs": gettext_noop("discrepancies: no reconcile, resync or adopt run yet"),
    "discrepancies_title": gettext_noop("discrepancies in the last {runs} reconcile, resync or adopt run(s)"),
    "audit_none": gettext_noop("audit: no entry names this record"),
    "audit_title": gettext_noop("audit entries that name this record"),
    "trainings_none": gettext_noop("trainings: none on the platform"),
    "trainings_title": gettext_noop("trainings: {shown} newest of {total} training record(s); accepted class hours "
                                    "on the platform {hours} h, the registry's trainingHours {registry} h"),
    "commendations_none": gettext_noop("commendations: none on the platform"),
    "commendations_title": gettext_noop("commendations: {shown} newest of {total}"),
    "evaluations_none": gettext_noop("evaluations: none on the platform"),
    "evaluations_title": gettext_noop("evaluations: {shown} newest of {total} (scores 1–5)"),
}

#: The Rich style of the lines so coloured (the whole line).
STYLE: dict[str, str] = {"usage": "red", "not_found": "red", "agree": "green", "differ": "yellow",
                         "only_local": "yellow", "gone_in_registry": "red", "only_registry": "yellow",
                         "unreadable": "red", "local_error": "red", "clear": "bold", "hold": "yellow"}


def say(name: str, /, **params: Any) -> str:
    """:data:`TEXT`'s sentence ``name`` in the language in force, its fields filled with ``params``."""
    text = _(TEXT[name]) if name not in HELP and name != "title" else TEXT[name]
    return text.format(**params) if params else text


def styled(name: str, /, **params: Any) -> Text:
    """:func:`say`'s sentence as Rich text, in its :data:`STYLE` (no markup read from it nor from the values)."""
    return Text(say(name, **params), style=STYLE.get(name, ""))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table of plain cells (no markup read from the data)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in columns:
        table.add_column(column_word(col), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(v)) for v in row))
    return table


def _headline(v: RecordView) -> Text:
    if v.registry_state == "unreadable":
        return styled("unreadable", error=v.registry_error or "")
    if not v.local_found and v.registry_state == "found":
        return styled("only_registry")
    if v.registry_state == "not_linked":
        return styled("only_local")
    if v.registry_state == "not_found":
        return styled("gone_in_registry", registry_id=v.registry_id or "")
    if v.in_agreement:
        return styled("agree")
    differing = [f.field for f in v.fields if f.differs]
    return styled("differ", count=len(differing), fields=", ".join(differing))


def _localcell(value: Any, ref: int | None) -> str:
    if ref is None:
        return cell(value)
    if value is None:
        return say("unlinked_ref", ref=ref)
    return say("local_ref", value=value, ref=ref)


def _kind_word(kind: str) -> str:
    """The record's kind in words (English shows the command's name for it, as before)."""
    return word(KIND_WORDS, KIND_ALIASES.get(kind.replace("-", "_"), kind)) if language() != "en" else kind


def _field_word(field: str) -> str:
    """A canonical field (``birth_date``) in words, by its registry name (``birthDate``); English shows the field's
    code, as before."""
    if language() == "en":
        return field
    head, *rest = field.split("_")
    return field_word(head + "".join(p.title() for p in rest))


def print_view(v: RecordView, out: Console | None = None) -> None:
    """The view as a terminal shows it: a headline, the fields side by side (the differing ones marked, the base in a
    third column where it differs from a side), then the link, the registry's own fields, the outbox, conflicts,
    discrepancies and audit entries."""
    out = out or Console()
    title = say("title", kind=_kind_word(v.kind), key=v.key if v.key is not None else "—")
    if v.registry_id:
        title += " · " + say("title_registry", registry_id=v.registry_id)
    out.print(Text(title, style="bold"))
    out.print(_headline(v))
    if v.local_found is False and v.link is not None:
        out.print(styled("local_deleted"))
    if v.local_error:
        out.print(styled("local_error", error=v.local_error))
    out.print(styled("clear", audit_id=v.audit_id) if v.personal_data else styled("masked"))

    with_base = any(f.base_differs for f in v.fields)
    out.print(styled("fields_title"))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("", no_wrap=True)
    for col in ("col_field", "col_platform", "col_registry") + (("col_base", "col_changed") if with_base else ()):
        table.add_column(say(col), overflow="fold")
    for f in v.fields:
        style = "yellow" if f.differs else ""
        cells = [Text("≠" if f.differs else "", style="bold yellow"), Text(_field_word(f.field), style=style),
                 Text(_localcell(f.local, f.local_ref) if v.local_found else "", style=style),
                 Text(cell(f.registry) if v.registry_state == "found" else "", style=style)]
        if with_base:
            cells += [Text(cell(f.base) if f.base_differs else ""),
                      Text(", ".join(f.changed or ()) if f.base_differs else "")]
        table.add_row(*cells)
    out.print(table)

    if v.link is not None:
        link = v.link
        out.print(styled("link", how=link["how"], version=link["registry_version"],
                         linked_at=cell(link["linked_at"]), updated_at=cell(link["updated_at"])))
        if link["is_duplicate"]:
            out.print(styled("duplicate"))
        if link["others"]:
            out.print(styled("others", ids=_(", ").join(str(i) for i in link["others"])))
    if v.registry_meta:
        out.print(styled("registry_meta", items=_("; ").join(f"{k} {cell(val)}" for k, val in v.registry_meta.items())))
    if v.records:
        _print_records(v, out)
    _print_traces(v, out)


#: The traces' columns (their JSON keys) → their words; English shows the keys as they are.
COLUMN_WORDS: dict[str, str] = {
    "id": gettext_noop("id"), "op": gettext_noop("operation"), "state": gettext_noop("state"),
    "attempts": gettext_noop("attempts"), "last_code": gettext_noop("last code"),
    "last_error": gettext_noop("last error"), "created_at": gettext_noop("created at"),
    "done_at": gettext_noop("done at"), "field": gettext_noop("field"), "local_value": gettext_noop("local value"),
    "remote_value": gettext_noop("registry value"), "base_value": gettext_noop("base value"),
    "detected_at": gettext_noop("detected at"), "resolution": gettext_noop("resolution"),
    "run_id": gettext_noop("run"), "kind": gettext_noop("kind"), "fields": gettext_noop("fields"),
    "action": gettext_noop("action"), "action_state": gettext_noop("action state"), "at": gettext_noop("at"),
    "actor": gettext_noop("actor"), "target": gettext_noop("target"), "reason": gettext_noop("reason"),
    "local_id": gettext_noop("local id"), "registry_id": gettext_noop("registry id"), "title": gettext_noop("title"),
    "status": gettext_noop("status"), "training_type": gettext_noop("training type"), "mode": gettext_noop("mode"),
    "completed_on": gettext_noop("completed on"), "class_hours": gettext_noop("class hours"),
    "result": gettext_noop("result"), "scheme": gettext_noop("scheme"), "tier": gettext_noop("tier"),
    "year": gettext_noop("year"), "awarded_on": gettext_noop("awarded on"), "issuer": gettext_noop("issuer"),
    "punctuality": gettext_noop("punctuality"), "attitude": gettext_noop("attitude"),
    "competence": gettext_noop("competence"), "evaluated_on": gettext_noop("evaluated on"),
}


def column_word(column: str) -> str:
    """A trace table's column as its header shows it: the JSON key in English, its word in Chinese."""
    return _(COLUMN_WORDS[column]) if column in COLUMN_WORDS and language() != "en" else column


_OUTBOX_COLS = ("id", "op", "state", "attempts", "last_code", "last_error", "created_at", "done_at")
_CONFLICT_COLS = ("id", "field", "state", "local_value", "remote_value", "base_value", "detected_at", "resolution")
_DISCREPANCY_COLS = ("run_id", "kind", "fields", "action", "action_state", "detected_at")
_AUDIT_COLS = ("id", "at", "actor", "action", "target", "reason")
_TRAINING_COLS = ("local_id", "registry_id", "title", "training_type", "mode", "completed_on", "class_hours", "result",
                  "status")
_COMMENDATION_COLS = ("local_id", "registry_id", "title", "scheme", "tier", "year", "awarded_on", "issuer", "status")
_EVALUATION_COLS = ("local_id", "registry_id", "title", "punctuality", "attitude", "competence", "evaluated_on",
                    "status")


def _hours(value: Any) -> str:
    """Hundredths of an hour as hours (``250`` → ``2.50``); ``—`` for none."""
    return "—" if value is None else format_hours(int(value))


def _record_cell(column: str, value: Any) -> Any:
    """A cell of a volunteer's records: class hours as hours, a v1.1 code (scheme, tier, training type, mode, result,
    status; registry-api.md §4.6–§4.8) in words (:func:`regsync.domain.words.code_word`), else the value."""
    if column == "class_hours":
        return _hours(value)
    if column in ("scheme", "tier", "training_type", "mode", "result", "status") and value is not None:
        return code_word(column, str(value))
    return value


def _print_records(v: RecordView, out: Console) -> None:
    """A volunteer's trainings (class hours as hours), commendations and evaluations on the platform, their codes in
    words."""
    r = v.records
    if not r.get("trainings_total"):
        out.print(styled("trainings_none"))
    else:
        rows = [[_record_cell(c, x[c]) for c in _TRAINING_COLS] for x in r["trainings"]]
        out.print(_table(say("trainings_title", shown=len(rows), total=r["trainings_total"],
                             hours=_hours(r.get("training_hours")), registry=_hours(r.get("registry_training_hours"))),
                         _TRAINING_COLS, rows))
    for name, cols in (("commendations", _COMMENDATION_COLS), ("evaluations", _EVALUATION_COLS)):
        if not r.get(f"{name}_total"):
            out.print(styled(f"{name}_none"))
        else:
            out.print(_table(say(f"{name}_title", shown=len(r[name]), total=r[f"{name}_total"]), cols,
                             [[_record_cell(c, x[c]) for c in cols] for x in r[name]]))


def _discrepancy_row(row: dict[str, Any]) -> list[Any]:
    """A discrepancy as the table shows it: its kind, fields and repair in words (``missing_in_registry`` → 全国系统
    缺少该记录), no fields as ``—`` (never ``[]``)."""
    fields = row.get("fields") or []
    return [row["run_id"], discrepancy_word(str(row["kind"])),
            "、".join(field_word(str(f)) for f in fields) if fields else "—",
            word(ACTION_WORDS, row["action"]) if row.get("action") else "—",
            word(STATE_WORDS, row["action_state"]) if row.get("action_state") else "—", row["detected_at"]]


def _print_traces(v: RecordView, out: Console) -> None:
    ob = v.outbox
    if ob.get("hold"):
        h = ob["hold"]
        out.print(styled("hold", actor=h["actor"], held_at=h["held_at"], audit_id=h["audit_id"], reason=h["reason"],
                         kind=v.kind, local_id=v.local_id))
    total = sum(ob.get("by_state", {}).values())
    if not total:
        out.print(styled("outbox_none"))
    else:
        states = _(", ").join(f"{state_word(k)} {n}" for k, n in ob["by_state"].items())
        out.print(_table(say("outbox_title", shown=len(ob["rows"]), total=total, states=states),
                         _OUTBOX_COLS, [[r[c] for c in _OUTBOX_COLS] for r in ob["rows"]]))
        shown = {r["id"] for r in ob["rows"]}
        older = [r for r in ob["failures"] if r["id"] not in shown]
        if older:
            out.print(_table(say("failures_title"), _OUTBOX_COLS, [[r[c] for c in _OUTBOX_COLS] for r in older]))
    cf = v.conflicts
    if not cf.get("total"):
        out.print(styled("conflicts_none"))
    else:
        out.print(_table(say("conflicts_title", shown=len(cf["rows"]), total=cf["total"]), _CONFLICT_COLS,
                         [[r[c] for c in _CONFLICT_COLS] for r in cf["rows"]]))
    ds = v.discrepancies
    runs = len(ds.get("runs", []))
    if not runs:
        out.print(styled("no_runs"))
    elif not ds.get("rows"):
        out.print(styled("discrepancies_none", runs=runs))
    else:
        out.print(_table(say("discrepancies_title", runs=runs), _DISCREPANCY_COLS,
                         [_discrepancy_row(r) for r in ds["rows"]]))
    if not v.audit:
        out.print(styled("audit_none"))
    else:
        out.print(_table(say("audit_title"), _AUDIT_COLS, [[r[c] for c in _AUDIT_COLS] for r in v.audit]))


def show(kind: Annotated[str, typer.Argument(metavar="KIND", help=HELP["kind"], show_default=False)],
         key: Annotated[str | None, typer.Argument(metavar="KEY", help=HELP["key"], show_default=False)] = None,
         registry_id: Annotated[str | None, typer.Option("--registry-id", metavar="ID",
                                                         help=HELP["registry_id"])] = None,
         show_personal_data: Annotated[bool, typer.Option("--show-personal-data", help=HELP["personal"])] = False,
         reason: Annotated[str | None, typer.Option("--reason", help=HELP["reason"])] = None,
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
        print_error(say("usage"), exc)
        raise typer.Exit(2) from exc
    except RecordNotFound as exc:
        print_error(say("not_found"), exc)
        raise typer.Exit(1) from exc
    if json_output:
        print_json(view.as_dict())
    else:
        print_view(view)
    raise typer.Exit(EXIT_REGISTRY_UNREADABLE if view.registry_state == "unreadable" else 0)


__all__ = ["EXIT_REGISTRY_UNREADABLE", "HELP", "STYLE", "TEXT", "print_view", "say", "show", "styled"]
