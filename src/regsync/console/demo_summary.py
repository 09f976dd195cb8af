"""The summary ``regsync demo`` prints at its end, for someone who has never seen regsync (issue 15, point 7).

A verdict in words in the title (:func:`demo_outcome`), a table whose columns each say something of their own and
add up to the platform's records, and one line for every figure that could surprise, printed exactly when it
does (:func:`demo_notes`). The summary itself is :func:`regsync.console.demo.run_demo`'s (``--json`` prints it
as it is: its keys are the machine interface and do not change here).
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regsync.console.summaries import kind_word, platform_extras_line
from regsync.domain.kinds import KIND_NAMES
from regsync.generate.generator import DIRT_KINDS
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_

#: The generator's unfixable dirt (:data:`regsync.generate.generator.DIRT_KINDS`), in words, by dirt kind.
DIRT_WORDS = {
    "id_bad_check": N_("ID numbers with a wrong check character"),
    "phone_bad": N_("malformed phone numbers"),
    "training_record_hours": N_("training records beyond their training's class hours"),
    "evaluation_not_completed": N_("evaluations of activities not yet completed"),
    "evaluation_score_zero": N_("evaluations with a score of 0"),
}
#: The portal's actions (registry-api.md §8, :data:`regsync.sandbox.portal.ACTIONS`), in words.
PORTAL_WORDS = {
    "self_registration": N_("self-registrations"),
    "contact_edit": N_("phone or skills edits"),
    "identity_correction": N_("identity corrections"),
    "transfer_out": N_("transfers to another province"),
    "deregistration": N_("deregistrations"),
    "org_dissolution": N_("orgs dissolved"),
    "service_record": N_("service records entered"),
    "national_commendation": N_("national commendations"),
    "training_record": N_("training records entered"),
}
#: What a sync pass did with the registry's changes (the summary's inbound keys), in words, in this order.
BROUGHT_HOME = (
    ("merged", N_("merged field by field")),
    ("adopted", N_("registered on the portal and linked to their platform row")),
    ("created_locally", N_("created on the platform, only the registry had them")),
    ("registry_owned", N_("entered on the portal, kept as the registry's")),
    ("ended_locally", N_("deregistered or dissolved on the platform too")),
    ("conflicts", N_("held as conflicts for an operator")),
)
PARENT_FAILED = "PARENT_FAILED"
#: The demo's platforms (``--platform``), in words.
PLATFORM_WORDS = {"reference": N_("reference"), "legacy": N_("legacy")}


def _kind(name: str) -> str:
    return kind_word(name)


def _listed(counts: dict[str, int]) -> str:
    """``volunteer 16, service record 143`` (zeros left out), or ``none``, in the language in force."""
    return _(", ").join(f"{_kind(k)} {v:,}" for k, v in counts.items() if v) or _("none")


def _in_order(counts: dict[str, int], order: dict[str, str]) -> list[str]:
    """The keys of ``counts``: those of ``order`` first, in its order, then the others as they come."""
    return [k for k in order if k in counts] + [k for k in counts if k not in order]


def _per_kind(summary: dict[str, Any], key: str) -> dict[str, int]:
    got = summary.get(key) or {}
    return {name: int(got.get(name, 0)) for name in KIND_NAMES.values()}


def _out_of_step(summary: dict[str, Any]) -> dict[str, int]:
    """Kind → records in the registry that are not in step on both sides (found, not a second row, not identical).

    A summary without ``identical`` (older than issue 15) counts those ``agree`` and ``local_agree`` both say are
    not in step, at least."""
    registry, dups = _per_kind(summary, "registry"), _per_kind(summary, "duplicates")
    same = summary.get("identical") or {k: min(summary["agree"].get(k, 0), summary["local_agree"].get(k, 0))
                                        for k in registry}
    return {k: max(0, registry[k] - dups[k] - int(same.get(k, 0))) for k in registry}


def _explained(summary: dict[str, Any]) -> bool:
    """Whether anything of the platform's is not simply in the registry (then the notes say what)."""
    return any(any(_per_kind(summary, key).values()) for key in ("failed", "transferred_out", "duplicates"))


def demo_outcome(summary: dict[str, Any]) -> str:
    """The demo's verdict in a newcomer's words, for the headline.

    The sync runs record ``partial`` when the registry refused records (``status`` in ``--json``); in the demo those
    are the generator's dirt, made on purpose, so the verdict is read from what happened to the records instead:
    stopped by an error, changes still waiting, records that do not add up, records out of step, refusals that are
    not the generator's dirt, or done.

    Args:
        summary: :func:`regsync.console.demo.run_demo`'s summary.

    Returns:
        One phrase, e.g. ``"done: every record is in the registry or explained below"``.
    """
    if summary.get("error") or summary.get("status") == "failed":
        return _("stopped by an error (below)")
    if summary.get("backlog"):
        return _("not finished: {n} changes still wait to be sent").format(n=f"{summary['backlog']:,}")
    if not summary.get("adds_up", True):
        return _("not finished: some records are neither in the registry nor explained (adds up: no)")
    if any(_out_of_step(summary).values()):
        return _("done, but some records are out of step between the two sides (below)")
    if _refusals(summary)[1]:
        return _("done, but the registry refused records that are not the generator's dirt (below)")
    if _explained(summary):
        return _("done: every record is in the registry or explained below")
    return _("done: every record is in the registry, the same on both sides")


def _dirt_by_code(summary: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Refusal code → (dirt kind, records the generator made with it) of its unfixable dirt."""
    made = (summary.get("generated") or {}).get("dirt") or {}
    return {code: (kind, int(made.get(kind, 0))) for kind, (_, fixable, code) in DIRT_KINDS.items()
            if not fixable and code}


def _refusals(summary: dict[str, Any]) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The records refused on their own data (``failed_codes`` but ``PARENT_FAILED``), kind → code → count, split in
    two: the generator's unfixable dirt (a code of :data:`DIRT_KINDS`, no more of it than the generator made:
    ``generated.dirt``), and the others."""
    codes: dict[str, dict[str, int]] = summary.get("failed_codes") or {}
    own = {kind: {c: n for c, n in by_code.items() if c != PARENT_FAILED and n} for kind, by_code in codes.items()}
    dirt = _dirt_by_code(summary)
    refused: dict[str, int] = {}
    for by_code in own.values():
        for code, n in by_code.items():
            refused[code] = refused.get(code, 0) + n
    planted = {code for code, n in refused.items() if code in dirt and n <= dirt[code][1]}

    def keep(wanted: bool) -> dict[str, dict[str, int]]:
        split = {k: {c: n for c, n in v.items() if (c in planted) == wanted} for k, v in own.items()}
        return {k: v for k, v in split.items() if v}

    return keep(True), keep(False)


def _refusal_notes(summary: dict[str, Any]) -> list[str]:
    """The lines on refused records: the generator's dirt, other refusals, and records waiting for a parent."""
    on_purpose, other = _refusals(summary)
    dirt = _dirt_by_code(summary)
    lines = []
    if on_purpose:
        lines.append(_("refused, the generator's dirt made on purpose: {records}: no standard lets regsync repair "
                       "these; they wait for a fix on the platform, and the runs record `partial`").format(
            records=_(", ").join(f"{_kind(k)} {sum(v.values()):,} (" + _("; ").join(
                f"{n:,} {_(DIRT_WORDS[dirt[c][0]]) if dirt[c][0] in DIRT_WORDS else dirt[c][0]}, {c}"
                for c, n in v.items()) + ")" for k, v in on_purpose.items())))
    if other:
        lines.append(_("refused, not the generator's dirt: {records}: unexpected in the demo (each one's reason: "
                       "regsync outbox list --state failed)").format(records=_(", ").join(
            f"{_kind(k)} {sum(v.values()):,} (" + ", ".join(f"{c} {n:,}" for c, n in v.items()) + ")"
            for k, v in other.items())))
    waiting = {k: v.get(PARENT_FAILED, 0) for k, v in (summary.get("failed_codes") or {}).items()}
    if any(waiting.values()):
        lines.append(_("waiting for a refused record ({code}): {records}: each belongs to one and goes once it is "
                       "fixed").format(code=PARENT_FAILED, records=_listed(waiting)))
    return lines


def _portal_notes(summary: dict[str, Any]) -> list[str]:
    """The lines of ``--portal-activity``: what the portal did, what came home, and what the feed carried."""
    actions: dict[str, int] = summary.get("portal") or {}
    lines = [_("the registry changed too: {n} actions on its portal: {actions}").format(
        n=f"{sum(actions.values()):,}", actions=_(", ").join(
            f"{actions[a]:,} {_(PORTAL_WORDS[a]) if a in PORTAL_WORDS else a}"
            for a in _in_order(actions, PORTAL_WORDS) if actions[a]) or _("none"))]
    lines.append(_("brought home from the registry: {what}").format(what=_("; ").join(
        f"{_(words)} ({_listed(summary[key])})" for key, words in BROUGHT_HOME
        if any((summary.get(key) or {}).values())) or _("nothing")))
    generated = (summary.get("generated") or {}).get("counts") or {}
    grew = {k: n - int(generated[k]) for k, n in _per_kind(summary, "local").items()
            if k in generated and n != int(generated[k])}
    if grew:
        lines.append(_("on the platform, not only the generated records: {counts}, brought home from the "
                       "registry").format(counts=_(", ").join(
            _("{kind} {total} = {generated} generated {sign} {change}").format(
                kind=_kind(k), total=f"{int(generated[k]) + d:,}", generated=f"{int(generated[k]):,}",
                sign="+" if d > 0 else "-", change=f"{abs(d):,}") for k, d in grew.items())))
    feed = summary.get("feed") or {}
    pulled = sum(_per_kind(summary, "pulled").values())
    if pulled > sum(_per_kind(summary, "local").values()):
        echoes, known = int(feed.get("echoes", 0)), int(feed.get("stale", 0)) + int(feed.get("repeats", 0))
        lines.append(_("pulled {pulled} changes, more than there are records: the registry's feed carries every "
                       "version; {echoes} were echoes of regsync's own writes and {known} already known, skipped; "
                       "the other {read} were read").format(pulled=f"{pulled:,}", echoes=f"{echoes:,}",
                                                             known=f"{known:,}",
                                                             read=f"{max(0, pulled - echoes - known):,}"))
    return lines


def demo_notes(summary: dict[str, Any]) -> list[str]:
    """One line for each figure of the demo's summary that could surprise, exactly when it does, in this order.

    - ``duplicates`` > 0: a person twice on the platform, the second row linked to the first's record;
    - ``linked`` above ``duplicates`` for a kind: records the registry already held;
    - ``pushed`` above ``local`` for a kind: writes above records (a record already ended is created, then ended);
    - refusals: the generator's unfixable dirt (``generated.dirt``, :data:`DIRT_KINDS`: as many or fewer of a
      code than it made), other refusals, and ``PARENT_FAILED`` records waiting for them (``failed_codes``);
    - ``transferred_out`` > 0; records out of step; ``registry_unlinked`` > 0;
    - with ``portal``: the portal's actions, what came home, local counts other than the generated ones, and
      ``pulled`` above the records (the feed's echoes).

    Args:
        summary: :func:`regsync.console.demo.run_demo`'s summary.

    Returns:
        The lines, Rich markup escaped (none when every figure is what a newcomer expects).
    """
    lines: list[str] = []
    local, pushed = _per_kind(summary, "local"), _per_kind(summary, "pushed")
    dups, linked = _per_kind(summary, "duplicates"), _per_kind(summary, "linked")
    if any(dups.values()):
        lines.append(_("duplicates: {records}: the same person twice on the platform (one ID number); the second "
                       "row, and any membership it repeats, is linked to the record the registry already has, not "
                       "created again").format(records=_listed(dups)))
    beyond = {k: linked[k] - dups[k] for k in linked if linked[k] > dups[k]}
    if beyond:
        lines.append(_("linked, not created: {records}: the registry already held them (a person who registered "
                       "on the portal, or a create whose answer was lost)").format(records=_listed(beyond)))
    more = {k: (pushed[k], local[k]) for k in local if pushed[k] > local[k]}
    if more:
        lines.append(_("writes above records: {counts}: a record already ended (a membership left, an activity "
                       "cancelled, a service record revoked) takes two writes, created then ended; a record changed "
                       "after its write, one more").format(counts=_(", ").join(
            _("{kind} {writes} for {records}").format(kind=_kind(k), writes=f"{w:,}", records=f"{n:,}")
            for k, (w, n) in more.items())))
    lines += _refusal_notes(summary)
    moved = _per_kind(summary, "transferred_out")
    if any(moved.values()):
        lines.append(_("moved out: {records}: people who moved to another province on the portal; they leave this "
                       "province's export, their rows stay on the platform").format(records=_listed(moved)))
    step = _out_of_step(summary)
    if any(step.values()):
        lines.append(_("out of step: {records}: in the registry, but not the same on both sides (a change not yet "
                       "passed on)").format(records=_listed(step)))
    unlinked = _per_kind(summary, "registry_unlinked")
    if any(unlinked.values()):
        lines.append(_("not linked: {records}: records in the registry's exports that no platform row "
                       "links").format(records=_listed(unlinked)))
    if "portal" in summary:
        lines += _portal_notes(summary)
    return [escape(line) for line in lines]


def print_demo_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The demo's summary for a terminal: the headline with the verdict, the table, the notes (:func:`demo_notes`),
    then where the databases are.

    Columns: ``on the platform`` (``local``) = ``synced`` (``identical``: in the registry and the same on both
    sides) + ``out of step`` + ``duplicates`` + ``refused`` (``failed``) + ``moved out`` (``transferred_out``),
    checked by ``adds up`` (``adds_up``); ``writes`` (``pushed``) are what the registry accepted. ``out of step``
    and ``moved out`` are shown only when one of theirs is not zero.

    Args:
        summary: :func:`regsync.console.demo.run_demo`'s summary.
        console: where to print (a new :class:`rich.console.Console` on stdout by default).
    """
    out = console or Console()
    step, moved = _out_of_step(summary), _per_kind(summary, "transferred_out")
    dups, failed = _per_kind(summary, "duplicates"), _per_kind(summary, "failed")
    registry, local = _per_kind(summary, "registry"), _per_kind(summary, "local")
    pushed = _per_kind(summary, "pushed")
    show_step, show_moved = any(step.values()), any(moved.values())
    platform = summary.get("platform", "reference")
    headline = _("regsync demo on the {platform} platform, {seconds} s: {outcome}").format(
        platform=_(PLATFORM_WORDS.get(platform, platform)), seconds=f"{summary['seconds']:.0f}",
        outcome=demo_outcome(summary))
    out.print(f"[bold]{escape(headline)}[/bold]", highlight=False)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    columns = [_("kind"), _("on the platform"), _("synced"), *([_("out of step")] if show_step else []),
               _("duplicates"), _("not sent"), *([_("moved out")] if show_moved else []), _("adds up"), _("writes")]
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "center" if i == len(columns) - 2 else "right",
                         no_wrap=True)
    for name in KIND_NAMES.values():
        synced = registry[name] - dups[name] - step[name]
        adds_up = local[name] == registry[name] + failed[name] + moved[name]
        table.add_row(_kind(name), f"{local[name]:,}", f"{synced:,}", *([f"{step[name]:,}"] if show_step else []),
                      f"{dups[name]:,}", f"{failed[name]:,}", *([f"{moved[name]:,}"] if show_moved else []),
                      _("yes") if adds_up else "[red]" + _("no") + "[/red]", f"{pushed[name]:,}")
    out.print(table)
    parts = " + ".join([_("synced"), *([_("out of step")] if show_step else []), _("duplicates"), _("not sent"),
                        *([_("moved out")] if show_moved else [])])
    out.print(_("on the platform = {parts}; synced: in the registry, the same on both sides; not sent: refused by "
                "the registry, or waiting for a refused record; adds up: whether the columns add up to the "
                "platform's records; writes: accepted by the registry").format(parts=parts), highlight=False)
    for line in demo_notes(summary):
        out.print(f"- {line}", highlight=False)
    if summary.get("platform", "reference") != "reference":
        out.print(escape(_("- platform {platform}: the platform's own tables through its mapping; {extras}").format(
            platform=summary["platform"], extras=platform_extras_line(summary["generated"]))), highlight=False)
    if summary["faults"]["set"]:
        out.print(_("faults set: {faults}").format(
            faults=", ".join(f"{k}={v}" for k, v in summary["faults"]["set"].items())), highlight=False)
        out.print(_("faults injected: {faults}").format(
            faults=", ".join(f"{k} {v}" for k, v in sorted(summary["faults"]["injected"].items()))), highlight=False)
    if summary.get("error"):
        out.print("[red]" + escape(_("error: {error}").format(error=summary["error"])) + "[/red]", highlight=False)
    for line in output_lines(summary.get("outputs") or {}):
        out.print(escape(line), highlight=False)
    out.print(escape(_("databases kept in {workdir} (local.db, sandbox.db); --json prints every figure").format(
        workdir=summary["workdir"])), highlight=False)


def output_lines(outputs: dict[str, Any]) -> list[str]:
    """The lines on what a manager reads next (:func:`regsync.console.demo.manager_outputs`): the reconcile's report,
    the worklists, and how to go on with the demo's store and sandbox."""
    lines = []
    if outputs.get("report"):
        lines.append(_("reconciliation report: {path} (reconcile run {run}, {count} discrepancies)").format(
            path=outputs["report"], run=outputs.get("reconcile_run"), count=outputs.get("discrepancies")))
    if outputs.get("worklist"):
        lines.append(_("worklists: {path} ({count} items to fix, by city and organization: one item per thing a "
                       "person must do, the records waiting for a refused one counted on its item; `regsync report "
                       "worklist --city CODE` makes one city's)").format(path=outputs["worklist"],
                                                                        count=outputs.get("worklist_items")))
    if outputs.get("config"):
        lines.append(_("to go on with the demo's store: REGSYNC_CONFIG={config} regsync report list; for the "
                       "commands that ask the registry, serve the demo's sandbox again first: {command}").format(
            config=outputs["config"], command=outputs.get("sandbox_command")))
    return lines
