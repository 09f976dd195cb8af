"""``regsync conflicts list|show|resolve`` as a terminal shows them (Rich), in the language in force
(:mod:`regsync.i18n`); times in +08:00. Field names, codes and values stay as they are."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from regsync.console.common import cell as _fmt
from regsync.domain.clock import to_local
from regsync.domain.projection import SENSITIVE
from regsync.flows.conflicts import ConflictListing, ConflictView, Resolution
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop, language

#: A conflict's state → its word.
CONFLICT_STATE_WORDS = {"open": gettext_noop("open"), "resolved": gettext_noop("resolved"),
                        "superseded": gettext_noop("superseded")}
#: A resolution → its word.
RESOLUTION_WORDS = {"local": gettext_noop("local"), "registry": gettext_noop("registry"),
                    "value": gettext_noop("value")}


def state_word(state: str) -> str:
    """A conflict's state as shown: in English the code ``--state`` takes, in Chinese its word."""
    return _(CONFLICT_STATE_WORDS[state]) if state in CONFLICT_STATE_WORDS and language() != "en" else state


def _hash() -> str:
    return _("(hash)")


def print_listing(listing: ConflictListing) -> None:
    """A Rich table of conflicts (times in +08:00), for a terminal."""
    out = Console()
    counts = _(", ").join(f"{state_word(k)} {v}" for k, v in sorted(listing.by_state.items())) or _("none at all")
    table = Table(title=_("conflicts: {total} shown by the filter ({counts})").format(total=listing.total,
                                                                                       counts=counts),
                  box=box.SIMPLE_HEAD)
    for col in (_("id"), _("state"), _("record"), _("field"), _("local"), _("registry"), _("base"),
                _("since (+08:00)")):
        table.add_column(col, overflow="fold")
    for c in listing.conflicts:
        since = to_local(c.detected_at)
        table.add_row(str(c.id), state_word(c.state), Text(f"{c.kind}:{c.local_id}"), Text(c.field),
                      Text(_fmt(c.local_value)), Text(_fmt(c.registry_value)),
                      Text(_fmt(c.base_value if c.field not in SENSITIVE else _hash())),
                      since.strftime("%Y-%m-%d %H:%M") if since else "—")
    out.print(table)
    if listing.open_by_field:
        out.print(Text(_("open by field: {counts}").format(
            counts=_(", ").join(f"{k} {v}" for k, v in listing.open_by_field.items()))))


def print_conflict(c: ConflictView) -> None:
    """One conflict, for a terminal."""
    out = Console(highlight=False)
    state = state_word(c.state)
    if c.resolution:
        state += " " + _("({resolution} by {actor})").format(
            resolution=_(RESOLUTION_WORDS[c.resolution]) if c.resolution in RESOLUTION_WORDS else c.resolution,
            actor=c.resolved_by)
    out.print(Text(_("conflict {id}: {state}").format(id=c.id, state=state)))
    # label, value: the labels padded to one width (Chinese characters are two columns wide: Rich measures them)
    rows = [(_("record"), _("{kind} {local_id} = registry {registry_id} (version {version})").format(
                kind=c.kind, local_id=c.local_id, registry_id=c.registry_id, version=c.registry_version)),
            (_("field"), _("{field} (group {group})").format(field=c.field, group=c.group)),
            (_("base"), _fmt(_hash() if c.field in SENSITIVE else c.base_value)),
            (_("platform"), _fmt(c.local_value)),
            (_("registry"), _fmt(c.registry_value))]
    if c.live is not None:
        rows.append((_("live"), _("platform {local} · registry {registry} (audited)").format(
            local=_fmt(c.live["local"]), registry=_fmt(c.live["registry"]))))
    detected = to_local(c.detected_at)
    rows.append((_("detected"), detected.isoformat() if detected else "—"))
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(Text(label), Text(value))
    out.print(table)
    if c.state == "open":
        out.print(Text(_("resolve with: regsync conflicts resolve {id} --take local|registry --reason '…'").format(
            id=c.id)))


def print_resolution(r: Resolution) -> None:
    """What a resolve did, for a terminal."""
    what = {"registry": _("the registry's value written to the platform"),
            "local": _("the platform's value queued for the registry"),
            "value": _("the value written to the platform and queued for the registry")}
    Console().print(escape(_("conflict {id} resolved ({kind} {local_id}, {field} = {value}): {what}; audit {audit_id}")
                           .format(id=r.conflict_id, kind=r.kind, local_id=r.local_id, field=r.field,
                                   value=_fmt(r.value_shown), what=what[r.resolution], audit_id=r.audit_id)),
                    highlight=False)
