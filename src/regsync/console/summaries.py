"""The summaries of ``regsync sync`` and ``regsync generate``, as Rich tables for a terminal."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from regsync.domain.kinds import KIND_NAMES
from regsync.domain.kinds import KINDS as KIND_ORDER


def print_sync_summary(summary: dict[str, Any]) -> None:
    """A Rich table of a sync summary, for a terminal."""
    out = Console()
    table = Table(title=f"sync run {summary['run_id']}: {summary['status']} in {summary['seconds']} s",
                  box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    for col in ("kind", "pushed", "linked", "unchanged", "failed", "deferred"):
        table.add_column(col, justify="right" if col != "kind" else "left", no_wrap=True)
    for kind in KIND_NAMES.values():
        table.add_row(kind, *(str(summary[c].get(kind, 0)) for c in ("pushed", "linked", "unchanged", "failed",
                                                                      "deferred")))
    out.print(table)
    if "pulled" in summary:
        inbound = Table(title="inbound (the registry's changes)", box=box.SIMPLE_HEAD, padding=(0, 0),
                        pad_edge=False)
        cols = ("pulled", "merged", "adopted", "created_locally", "registry_owned", "conflicts", "ended_locally")
        inbound.add_column("kind", no_wrap=True)
        for col in cols:
            inbound.add_column(col.replace("_", " "), justify="right", no_wrap=True)
        for kind in KIND_NAMES.values():
            inbound.add_row(kind, *(str(summary[c].get(kind, 0)) for c in cols))
        out.print(inbound)
        info = summary.get("inbound", {})
        out.print(f"feed: {info.get('changes', 0)} changes in {info.get('pages', 0)} pages; echoes "
                  f"{info.get('echoes', 0)}, repeats {info.get('repeats', 0)}, stale {info.get('stale', 0)}; "
                  f"transferred out {summary['transferred_out'].get('volunteers', 0)}")
        if info.get("unknown_types"):
            out.print("skipped, of record types regsync does not know: "
                      + ", ".join(f"{k} {v}" for k, v in info["unknown_types"].items()))
        if summary.get("reconcile_due"):
            out.print(f"[red]a full reconcile is due[/red] ({summary.get('reconcile_reason')}): run "
                      "`regsync reconcile`")
    if summary.get("paused"):
        out.print(f"[yellow]paused, skipped:[/yellow] {', '.join(summary['paused'])} (`regsync resume` to let it run)")
    if summary["failed_by_code"]:
        out.print("failures by code: " + ", ".join(f"{k} {v}" for k, v in summary["failed_by_code"].items()))
    if summary["still_failed"]:
        out.print("records failed or blocked in the outbox: "
                  + ", ".join(f"{k} {v}" for k, v in summary["still_failed"].items()))
    if summary.get("error"):
        out.print(f"[red]error:[/red] {summary['error']}")


def print_generate_summary(summary: dict[str, Any]) -> None:
    """Counts per kind and dirt per kind, for a terminal (and, through a mapping, the rows beside them)."""
    out = Console()
    mapping = summary.get("mapping")
    table = Table(title="generated" + (f" through mapping {mapping}" if mapping else ""))
    table.add_column("kind")
    table.add_column("records", justify="right")
    for kind, n in (summary.get("counts") or {}).items():
        table.add_row(kind, f"{n:,}")
    out.print(table)
    if summary.get("dirt"):
        out.print("dirt made on purpose: " + ", ".join(f"{k} {v}" for k, v in summary["dirt"].items()))
    if mapping:
        out.print(platform_extras_line(summary))


def platform_extras_line(generated: dict[str, Any]) -> str:
    """The rows a generate through a mapping wrote beside the province (test rows out of the mapping's scope, and
    soft-deleted rows), which do not sync and are not among the counts: one line."""
    def listed(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"

    out_of_scope, soft_deleted = generated.get("out_of_scope", {}), generated.get("soft_deleted", {})
    return (f"beside them, not synced: test rows out of the mapping's scope: {listed(out_of_scope)}; "
            f"soft-deleted rows: {listed(soft_deleted)}")


def print_adopt_summary(summary: dict[str, Any]) -> None:
    """Counts per kind and the ambiguous matches, for a terminal."""
    out = Console()
    head = "adopt (dry run)" if summary["dry_run"] else f"adopt run {summary['run_id']}"
    table = Table(title=f"{head}: {summary['status']} in {summary['seconds']} s", box=box.SIMPLE_HEAD)
    for col in ("kind", "registry", "linked", "ambiguous", "unmatched", "local unlinked"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind in KIND_ORDER:
        table.add_row(kind, *(str(summary[k].get(kind, 0)) for k in ("read", "linked", "ambiguous", "unmatched",
                                                                     "local_unlinked")))
    out.print(table)
    if summary["duplicates"]:
        out.print(f"a person's second local rows linked as duplicates: {summary['duplicates']}")
    if summary.get("other_store"):
        out.print("[yellow]records made under this client's credentials by creates this store never sent[/yellow] "
                  "(another store's, or this store's before a rebuild), linked by this adopt: "
                  + ", ".join(f"{k} {v}" for k, v in summary["other_store"].items()), highlight=False)
    winners: Counter[str] = Counter()
    for key, n in summary.get("decisions", {}).items():
        winners[key.rsplit(":", 1)[-1]] += n
    if winners:
        out.print(f"fields that differed: {winners['registry']} taken from the registry into the platform's rows, "
                  f"{winners['local']} kept and queued for the registry, {winners['none']} held as conflicts "
                  "(each field in --json: decisions)")
    for d in summary["ambiguous_matches"]:
        out.print(f"[yellow]ambiguous[/yellow] {d['entity']} registry {d['registry_id']}: local rows "
                  f"{d['details']['local_ids']}, registry candidates {d['details']['registry_ids']} — held for a "
                  "person", highlight=False)
    if summary.get("error"):
        out.print(f"[red]error:[/red] {summary['error']}", highlight=False)
