"""The summaries of ``regsync sync``, ``regsync generate`` and ``regsync adopt``, as Rich tables for a terminal, in
the language in force (:mod:`regsync.i18n`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regsync.domain.kinds import KIND_ALIASES, KIND_NAMES
from regsync.domain.kinds import KINDS as KIND_ORDER
from regsync.domain.words import KIND_PLURAL_WORDS, KIND_WORDS, RUN_STATUS_WORDS, RUN_WORDS, word
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop

#: A run's status → its word.
STATUS_WORDS = {"ok": gettext_noop("ok"), "partial": gettext_noop("partial"), "failed": gettext_noop("failed"),
                "running": gettext_noop("running"), "interrupted": gettext_noop("interrupted"),
                "dry_run": gettext_noop("dry run")}


def status_word(status: str | None) -> str:
    """A run's status (``ok``, ``partial``, ``failed``…) in words; a run's own status (``success``, ``abandoned``:
    :data:`regsync.domain.words.RUN_STATUS_WORDS`, as the reports say it) too; an unknown one as it is."""
    if status in STATUS_WORDS:
        return _(STATUS_WORDS[status])
    return word(RUN_STATUS_WORDS, status) if status else str(status)


def kind_word(kind: str) -> str:
    """A kind, singular (``volunteer``) or plural (``volunteers``, as the summaries key them), in words."""
    if kind in KIND_PLURAL_WORDS:
        return word(KIND_PLURAL_WORDS, kind)
    return word(KIND_WORDS, KIND_ALIASES.get(kind, kind))


def counted(counts: dict[str, int]) -> str:
    """``{"volunteers": 3, "orgs": 1}`` → ``志愿者 3，志愿服务组织 1`` (codes of no kind as they are); ``—`` for
    none."""
    return _(", ").join(f"{kind_word(k)} {v}" for k, v in counts.items()) or "—"


def print_sync_summary(summary: dict[str, Any]) -> None:
    """A Rich table of a sync summary, for a terminal."""
    out = Console()
    table = Table(title=_("{run} run {id}: {status} in {seconds} s").format(
        run=word(RUN_WORDS, "sync"), id=summary["run_id"], status=status_word(summary["status"]),
        seconds=summary["seconds"]), box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    cols = ("pushed", "linked", "unchanged", "failed", "deferred")
    heads = (_("pushed"), _("linked"), _("unchanged"), _("failed"), _("deferred"))
    table.add_column(_("kind"), no_wrap=True)
    for head in heads:
        table.add_column(head, justify="right", no_wrap=True)
    for kind in KIND_NAMES.values():
        table.add_row(kind_word(kind), *(str(summary[c].get(kind, 0)) for c in cols))
    out.print(table)
    if "pulled" in summary:
        inbound = Table(title=_("inbound (the registry's changes)"), box=box.SIMPLE_HEAD, padding=(0, 0),
                        pad_edge=False)
        in_cols = ("pulled", "merged", "adopted", "created_locally", "registry_owned", "conflicts", "ended_locally")
        in_heads = (_("pulled"), _("merged"), _("adopted"), _("created locally"), _("registry's own"),
                    _("conflicts"), _("ended locally"))
        inbound.add_column(_("kind"), no_wrap=True)
        for head in in_heads:
            inbound.add_column(head, justify="right", no_wrap=True)
        for kind in KIND_NAMES.values():
            inbound.add_row(kind_word(kind), *(str(summary[c].get(kind, 0)) for c in in_cols))
        out.print(inbound)
        info = summary.get("inbound", {})
        out.print(_("feed: {changes} changes in {pages} pages; echoes {echoes}, repeats {repeats}, stale {stale}; "
                    "volunteers transferred out {transferred}").format(
            changes=info.get("changes", 0), pages=info.get("pages", 0), echoes=info.get("echoes", 0),
            repeats=info.get("repeats", 0), stale=info.get("stale", 0),
            transferred=summary["transferred_out"].get("volunteers", 0)), highlight=False)
        if info.get("unknown_types"):
            out.print(_("skipped, of record types regsync does not know: {types}").format(
                types=", ".join(f"{k} {v}" for k, v in info["unknown_types"].items())), highlight=False)
        if summary.get("reconcile_due"):
            out.print("[red]" + escape(_("a full reconcile is due ({reason}): run `regsync reconcile`").format(
                reason=summary.get("reconcile_reason"))) + "[/red]", highlight=False)
    if summary.get("paused"):
        out.print("[yellow]" + escape(_("paused, skipped: {flows} (`regsync resume` to let it run)").format(
            flows=", ".join(summary["paused"]))) + "[/yellow]", highlight=False)
    if summary["failed_by_code"]:
        out.print(_("failures by code: {codes}").format(
            codes=", ".join(f"{k} {v}" for k, v in summary["failed_by_code"].items())), highlight=False)
    if summary["still_failed"]:
        out.print(_("records failed or blocked in the outbox: {counts}").format(
            counts=counted(summary["still_failed"])), highlight=False)
    if summary.get("error"):
        out.print("[red]" + escape(_("error: {error}").format(error=summary["error"])) + "[/red]", highlight=False)


def print_generate_summary(summary: dict[str, Any]) -> None:
    """Counts per kind and dirt per kind, for a terminal (and, through a mapping, the rows beside them)."""
    out = Console()
    mapping = summary.get("mapping")
    table = Table(title=_("generated through mapping {mapping}").format(mapping=mapping) if mapping
                  else _("generated"))
    table.add_column(_("kind"))
    table.add_column(_("records"), justify="right")
    for kind, n in (summary.get("counts") or {}).items():
        table.add_row(kind_word(kind), f"{n:,}")
    out.print(table)
    if summary.get("dirt"):
        out.print(_("dirt made on purpose: {counts}").format(
            counts=", ".join(f"{k} {v}" for k, v in summary["dirt"].items())), highlight=False)
    if mapping:
        out.print(platform_extras_line(summary), highlight=False)


def platform_extras_line(generated: dict[str, Any]) -> str:
    """The rows a generate through a mapping wrote beside the province (test rows out of the mapping's scope, and
    soft-deleted rows), which do not sync and are not among the counts: one line."""
    return _("beside them, not synced: test rows out of the mapping's scope: {out_of_scope}; soft-deleted rows: "
             "{soft_deleted}").format(out_of_scope=counted(generated.get("out_of_scope", {})),
                                      soft_deleted=counted(generated.get("soft_deleted", {})))


def print_adopt_summary(summary: dict[str, Any]) -> None:
    """Counts per kind and the ambiguous matches, for a terminal."""
    out = Console()
    head = (_("{run} (dry run)").format(run=word(RUN_WORDS, "adopt")) if summary["dry_run"]
            else _("{run} run {id}").format(run=word(RUN_WORDS, "adopt"), id=summary["run_id"]))
    table = Table(title=_("{head}: {status} in {seconds} s").format(
        head=head, status=status_word(summary["status"]), seconds=summary["seconds"]), box=box.SIMPLE_HEAD)
    table.add_column(_("kind"))
    for col in (_("registry"), _("linked"), _("ambiguous"), _("unmatched"), _("local unlinked")):
        table.add_column(col, justify="right")
    for kind in KIND_ORDER:
        table.add_row(kind_word(kind), *(str(summary[k].get(kind, 0)) for k in (
            "read", "linked", "ambiguous", "unmatched", "local_unlinked")))
    out.print(table)
    if summary["duplicates"]:
        out.print(_("a person's second local rows linked as duplicates: {n}").format(n=summary["duplicates"]))
    if summary.get("other_store"):
        out.print("[yellow]" + escape(_(
            "records made under this client's credentials by creates this store never sent (another store's, or "
            "this store's before a rebuild), linked by this adopt: {counts}").format(
            counts=counted(summary["other_store"]))) + "[/yellow]", highlight=False)
    winners: Counter[str] = Counter()
    for key, n in summary.get("decisions", {}).items():
        winners[key.rsplit(":", 1)[-1]] += n
    if winners:
        out.print(_("fields that differed: {registry} taken from the registry into the platform's rows, {local} "
                    "kept and queued for the registry, {none} held as conflicts (each field in --json: "
                    "decisions)").format(registry=winners["registry"], local=winners["local"],
                                         none=winners["none"]), highlight=False)
    for d in summary["ambiguous_matches"]:
        out.print("[yellow]" + escape(_(
            "ambiguous {kind} registry {registry_id}: local rows {local_ids}, registry candidates {registry_ids} — "
            "held for a person").format(kind=kind_word(d["entity"]), registry_id=d["registry_id"],
                                        local_ids=d["details"]["local_ids"],
                                        registry_ids=d["details"]["registry_ids"])) + "[/yellow]", highlight=False)
    if summary.get("error"):
        out.print("[red]" + escape(_("error: {error}").format(error=summary["error"])) + "[/red]", highlight=False)
