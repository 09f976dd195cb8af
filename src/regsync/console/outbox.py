"""``regsync outbox list|retry|discard|restore`` as a terminal shows them (Rich): the listing and an action's
result (:mod:`regsync.flows.operator` does the work)."""

from __future__ import annotations

import datetime as dt

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regsync.db.session import utcnow
from regsync.domain.clock import format_age, to_local
from regsync.flows.operator import ActionResult, OutboxListing


def print_listing(listing: OutboxListing, *, now: dt.datetime | None = None) -> None:
    """A Rich table of the page, then the totals, on stdout."""
    out = Console()
    if not listing.records:
        out.print("nothing waits in the outbox" + (" that matches" if listing.total == 0 else " on this page")
                  + f" ({listing.total} records in all)")
        return
    local_now = to_local(now or utcnow())
    table = Table(title=f"outbox: {len(listing.records)} of {listing.total} records waiting "
                        f"(times +08:00)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("record", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("next", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("code: reason · rows", min_width=20, ratio=1)
    for r in listing.records:
        if r.next_attempt is None:
            nxt = "—"
        elif local_now and r.next_attempt <= local_now:
            nxt = "now"
        else:
            nxt = r.next_attempt.strftime("%m-%d %H:%M")
        why = Text(": ".join(x for x in (r.code, r.reason) if x))
        if r.held:
            why = Text("discarded by an operator" + (f" (audit #{r.held_audit_id})" if r.held_audit_id else "")
                       + f": out of sync until `regsync outbox restore {r.key}`; its changes are kept")
            if r.dependents_total:
                more = r.dependents_total - len(r.dependents)
                why.append(f"\nwaiting on it: {', '.join(r.dependents)}" + (f" +{more}" if more > 0 else ""))
        ids = ",".join(str(i) for i in r.row_ids) + (f" +{r.rows - len(r.row_ids)}" if r.rows > len(r.row_ids)
                                                      else "")
        why.append(("\n" if len(why) else "") + f"rows {ids}", style="dim")
        table.add_row(Text(r.key), Text(r.state), str(r.attempts), Text(nxt), format_age(r.age_s), why)
    out.print(table)
    out.print(Text("by state: " + ", ".join(f"{k} {v}" for k, v in listing.by_state.items())))
    if listing.by_code:
        out.print(Text("by code: " + ", ".join(f"{k} {v}" for k, v in listing.by_code.items())))
    shown_to = listing.offset + len(listing.records)
    if shown_to < listing.total:
        out.print(f"{listing.total - shown_to} more: --offset {shown_to}")


def print_action(result: ActionResult) -> None:
    """One or two lines on stdout: what was (or would be) retried or discarded."""
    out = Console()
    verb = {"outbox.retry": "retried", "outbox.discard": "discarded", "outbox.restore": "restored"}[result.action]
    if result.dry_run:
        verb = "would have " + verb
    if result.affected == 0:
        line = f"nothing matched: no record {verb}"
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in result.by_kind.items())
        line = (f"{verb} {result.affected} record{'' if result.affected == 1 else 's'} ({kinds}; {result.rows} outbox "
                f"row{'' if result.rows == 1 else 's'})")
    if result.audit_id is not None:
        line += f"; audit #{result.audit_id}"
    out.print(Text(line))
    if result.unmatched:
        out.print(Text(("not discarded (unknown, or not held out of sync): " if result.action == "outbox.restore"
                        else "not waiting (unknown, sent or discarded): ") + ", ".join(result.unmatched)))
    if result.action == "outbox.discard" and result.affected and not result.dry_run:
        out.print(Text("kept out of sync until restored (`regsync outbox restore KIND:LOCAL_ID`): later changes of "
                       + ("it" if result.affected == 1 else "them") + " are kept, not sent"))
    for key, names in result.dependents.items():
        out.print(Text(f"waiting on {key}: " + ", ".join(names)))
    shown = sum(len(v) for v in result.dependents.values())
    if result.dependents_total > shown:
        out.print(Text(f"and {result.dependents_total - shown} more waiting records"))
    if result.busy:
        out.print(Text(f"{result.busy} rows left alone: a relay is sending them now"))
    if result.dependents_blocked:
        n = result.dependents_blocked
        out.print(Text(f"{n} record{' is' if n == 1 else 's are'} blocked on the discarded ones and stay"
                       f"{'s' if n == 1 else ''} blocked until {'it is' if result.affected == 1 else 'they are'} "
                       "restored or discarded too"))
