"""``regsync conflicts list|show|resolve`` as a terminal shows them (Rich); times in +08:00."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from regsync.console.common import cell as _fmt
from regsync.domain.clock import to_local
from regsync.domain.projection import SENSITIVE
from regsync.flows.conflicts import ConflictListing, ConflictView, Resolution


def print_listing(listing: ConflictListing) -> None:
    """A Rich table of conflicts (times in +08:00), for a terminal."""
    out = Console()
    table = Table(title=f"conflicts: {listing.total} shown by the filter "
                        f"({', '.join(f'{k} {v}' for k, v in sorted(listing.by_state.items())) or 'none at all'})",
                  box=box.SIMPLE_HEAD)
    for col in ("id", "state", "record", "field", "local", "registry", "base", "since (+08:00)"):
        table.add_column(col, overflow="fold")
    for c in listing.conflicts:
        since = to_local(c.detected_at)
        table.add_row(str(c.id), c.state, f"{c.kind}:{c.local_id}", c.field, _fmt(c.local_value),
                      _fmt(c.registry_value), _fmt(c.base_value if c.field not in SENSITIVE else "(hash)"),
                      since.strftime("%Y-%m-%d %H:%M") if since else "—")
    out.print(table)
    if listing.open_by_field:
        out.print("open by field: " + ", ".join(f"{k} {v}" for k, v in listing.open_by_field.items()))


def print_conflict(c: ConflictView) -> None:
    """One conflict, for a terminal."""
    out = Console()
    out.print(f"conflict {c.id}: {c.state}" + (f" ({c.resolution} by {c.resolved_by})" if c.resolution else ""))
    out.print(f"  record    {c.kind} {c.local_id} = registry {c.registry_id} (version {c.registry_version})")
    out.print(f"  field     {c.field} (group {c.group})")
    out.print(f"  base      {_fmt('(hash)' if c.field in SENSITIVE else c.base_value)}")
    out.print(f"  platform  {_fmt(c.local_value)}")
    out.print(f"  registry  {_fmt(c.registry_value)}")
    if c.live is not None:
        out.print(f"  live      platform {_fmt(c.live['local'])} · registry {_fmt(c.live['registry'])} (audited)")
    detected = to_local(c.detected_at)
    out.print(f"  detected  {detected.isoformat() if detected else '—'}")
    if c.state == "open":
        out.print(f"resolve with: regsync conflicts resolve {c.id} --take local|registry --reason '…'")


def print_resolution(r: Resolution) -> None:
    """What a resolve did, for a terminal."""
    what = {"registry": "the registry's value written to the platform", "local": "the platform's value queued "
            "for the registry", "value": "the value written to the platform and queued for the registry"}
    Console().print(f"conflict {r.conflict_id} resolved ({r.kind} {r.local_id}, {r.field} = {_fmt(r.value_shown)}): "
                    f"{what[r.resolution]}; audit {r.audit_id}")
