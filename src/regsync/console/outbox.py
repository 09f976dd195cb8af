"""``regsync outbox list|retry|discard|restore`` as a terminal shows them (Rich), in the language in force
(:mod:`regsync.i18n`): the listing and an action's result (:mod:`regsync.flows.operator` does the work). Codes,
record keys (``volunteer:42``) and commands stay as they are."""

from __future__ import annotations

import datetime as dt

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regsync.console.summaries import kind_word
from regsync.db.session import utcnow
from regsync.domain.clock import format_age, to_local
from regsync.flows.operator import ActionResult, OutboxListing
from regsync.i18n import explain, language, ngettext
from regsync.i18n import gettext as _
from regsync.service.status import STATE_WORDS


def kind_label(kind: str) -> str:
    """A kind as the counts show it: in English the code operators type with ``--kind`` (``volunteer``, ``org``),
    in Chinese its word (志愿者, 志愿服务组织)."""
    return kind if language() == "en" else kind_word(kind)


def state_word(state: str) -> str:
    """An outbox state as the listing shows it: in English the code ``--state`` takes (``pending``, ``failed``), in
    Chinese its word; an unknown one as it is."""
    return _(STATE_WORDS[state]) if state in STATE_WORDS and language() != "en" else state


def print_listing(listing: OutboxListing, *, now: dt.datetime | None = None) -> None:
    """A Rich table of the page, then the totals, on stdout."""
    out = Console()
    if not listing.records:
        out.print(Text((_("nothing waits in the outbox that matches ({total} records in all)") if listing.total == 0
                        else _("nothing waits in the outbox on this page ({total} records in all)")).format(
            total=listing.total)))
        return
    local_now = to_local(now or utcnow())
    table = Table(title=_("outbox: {shown} of {total} records waiting (times +08:00)").format(
        shown=len(listing.records), total=listing.total), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(_("record"), no_wrap=True)
    table.add_column(_("state"), no_wrap=True)
    table.add_column(_("tries"), justify="right", no_wrap=True)
    table.add_column(_("next"), no_wrap=True)
    table.add_column(_("age"), justify="right", no_wrap=True)
    table.add_column(_("code: reason · rows"), min_width=20, ratio=1)
    for r in listing.records:
        if r.next_attempt is None:
            nxt = "—"
        elif local_now and r.next_attempt <= local_now:
            nxt = _("now")
        else:
            nxt = r.next_attempt.strftime("%m-%d %H:%M")
        why = Text(": ".join(x for x in (r.code, explain(r.reason) if r.reason else None) if x))
        if r.held:
            why = Text((_("discarded by an operator (audit #{audit_id}): out of sync until `regsync outbox restore "
                          "{key}`; its changes are kept") if r.held_audit_id else
                        _("discarded by an operator: out of sync until `regsync outbox restore {key}`; its changes "
                          "are kept")).format(audit_id=r.held_audit_id, key=r.key))
            if r.dependents_total:
                more = r.dependents_total - len(r.dependents)
                why.append("\n" + _("waiting on it: {records}").format(records=_(", ").join(r.dependents))
                           + (f" +{more}" if more > 0 else ""))
        ids = ",".join(str(i) for i in r.row_ids) + (f" +{r.rows - len(r.row_ids)}" if r.rows > len(r.row_ids)
                                                      else "")
        why.append(("\n" if len(why) else "") + _("rows {ids}").format(ids=ids), style="dim")
        table.add_row(Text(r.key), Text(state_word(r.state)), str(r.attempts), Text(nxt), format_age(r.age_s), why)
    out.print(table)
    out.print(Text(_("by state: {counts}").format(
        counts=_(", ").join(f"{state_word(k)} {v}" for k, v in listing.by_state.items()))))
    if listing.by_code:
        out.print(Text(_("by code: {counts}").format(
            counts=_(", ").join(f"{k} {v}" for k, v in listing.by_code.items()))))
    shown_to = listing.offset + len(listing.records)
    if shown_to < listing.total:
        out.print(Text(_("{count} more: --offset {offset}").format(count=listing.total - shown_to, offset=shown_to)))


def _action_line(action: str, dry_run: bool, n: int, kinds: str, rows: int) -> str:
    """What an action did (or would have done) to ``n`` records (``kinds``: counts by kind, in words) in ``rows``
    outbox rows."""
    if action == "outbox.retry":
        text = (ngettext("would have retried {count} record ({kinds}; {rows})",
                         "would have retried {count} records ({kinds}; {rows})", n) if dry_run else
                ngettext("retried {count} record ({kinds}; {rows})",
                         "retried {count} records ({kinds}; {rows})", n))
    elif action == "outbox.discard":
        text = (ngettext("would have discarded {count} record ({kinds}; {rows})",
                         "would have discarded {count} records ({kinds}; {rows})", n) if dry_run else
                ngettext("discarded {count} record ({kinds}; {rows})",
                         "discarded {count} records ({kinds}; {rows})", n))
    else:
        text = (ngettext("would have restored {count} record ({kinds}; {rows})",
                         "would have restored {count} records ({kinds}; {rows})", n) if dry_run else
                ngettext("restored {count} record ({kinds}; {rows})",
                         "restored {count} records ({kinds}; {rows})", n))
    return text.format(count=n, kinds=kinds,
                       rows=ngettext("{count} outbox row", "{count} outbox rows", rows).format(count=rows))


def nothing_matched(action: str, dry_run: bool = False) -> str:
    """``nothing matched: no record retried`` (or discarded, restored), in the language in force."""
    if dry_run:
        return {"outbox.retry": _("nothing matched: no record would have retried"),
                "outbox.discard": _("nothing matched: no record would have discarded"),
                "outbox.restore": _("nothing matched: no record would have restored")}[action]
    return {"outbox.retry": _("nothing matched: no record retried"),
            "outbox.discard": _("nothing matched: no record discarded"),
            "outbox.restore": _("nothing matched: no record restored")}[action]


def print_action(result: ActionResult) -> None:
    """One or two lines on stdout: what was (or would be) retried or discarded."""
    out = Console()
    if result.affected == 0:
        line = nothing_matched(result.action, result.dry_run)
    else:
        kinds = _(", ").join(f"{kind_label(k)} {v}" for k, v in result.by_kind.items())
        line = _action_line(result.action, result.dry_run, result.affected, kinds, result.rows)
    if result.audit_id is not None:
        line += _("; audit #{audit_id}").format(audit_id=result.audit_id)
    out.print(Text(line))
    if result.unmatched:
        out.print(Text((_("not discarded (unknown, or not held out of sync): {records}")
                        if result.action == "outbox.restore"
                        else _("not waiting (unknown, sent or discarded): {records}")).format(
            records=_(", ").join(result.unmatched))))
    if result.action == "outbox.discard" and result.affected and not result.dry_run:
        out.print(Text(ngettext("kept out of sync until restored (`regsync outbox restore KIND:LOCAL_ID`): later "
                                "changes of it are kept, not sent",
                                "kept out of sync until restored (`regsync outbox restore KIND:LOCAL_ID`): later "
                                "changes of them are kept, not sent", result.affected)))
    for key, names in result.dependents.items():
        out.print(Text(_("waiting on {key}: {records}").format(key=key, records=_(", ").join(names))))
    shown = sum(len(v) for v in result.dependents.values())
    if result.dependents_total > shown:
        out.print(Text(_("and {count} more waiting records").format(count=result.dependents_total - shown)))
    if result.busy:
        out.print(Text(_("{count} rows left alone: a relay is sending them now").format(count=result.busy)))
    if result.dependents_blocked:
        n = result.dependents_blocked
        out.print(Text((ngettext("{count} record is blocked on the discarded ones and stays blocked until it is "
                                 "restored or discarded too",
                                 "{count} records are blocked on the discarded ones and stay blocked until it is "
                                 "restored or discarded too", n) if result.affected == 1 else
                        ngettext("{count} record is blocked on the discarded ones and stays blocked until they are "
                                 "restored or discarded too",
                                 "{count} records are blocked on the discarded ones and stay blocked until they are "
                                 "restored or discarded too", n)).format(count=n)))
