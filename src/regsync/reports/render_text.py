"""Reports for a terminal: Rich tables that fit its width (``report list``, ``report show``, text export).

Times are shown in Asia/Shanghai (+08:00); hours with two decimals (:func:`regsync.domain.hours.format_hours`).
Every value printed comes from :mod:`regsync.reports.data`, which masks ID numbers and phones unless the export
was asked (and audited) for them in clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regsync.domain.hours import format_hours
from regsync.reports.data import ORG_LINES, DiscrepancyRow, RunInfo, RunReport, city_name

__all__ = ["format_duration", "print_report", "print_run_list", "summary_items"]

_STATUS_STYLE = {"success": "green", "partial": "yellow", "failed": "red", "running": "cyan", "abandoned": "red"}


def format_duration(seconds: float | None) -> str:
    """``44 min 15 s``, ``2 h 5 min``, ``30 s``; ``—`` for ``None`` (still running)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m} min"
    if m:
        return f"{m} min {sec} s"
    return f"{sec} s"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,}"
    if value is None:
        return "—"
    return str(value)


def summary_items(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """A run's summary as (key, value) lines: scalars as they are, a flat object as ``a 1 · b 2``, anything deeper
    as compact JSON; the ``hours`` object is left out (it has its own view)."""
    items: list[tuple[str, str]] = []
    for key in sorted(summary):
        value = summary[key]
        if key == "hours":
            continue
        if isinstance(value, dict):
            if not value:
                text = "—"
            elif all(not isinstance(v, dict | list) for v in value.values()):
                text = " · ".join(f"{k} {_scalar(v)}" for k, v in value.items())
            else:
                text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        elif isinstance(value, list):
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        else:
            text = _scalar(value)
        items.append((key, text))
    return items


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def print_run_list(runs: list[RunInfo], console: Console) -> None:
    """One line per run: id, kind, status, start and duration (+08:00), discrepancies, and its error if any."""
    if not runs:
        console.print("no runs recorded")
        return
    table = Table(title="runs, newest first (times +08:00)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("run", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("discrepancies", justify="right", no_wrap=True, min_width=13)
    table.add_column("note", ratio=1, overflow="fold")
    for r in runs:
        note = str(r.summary.get("error", ""))
        table.add_row(str(r.id), r.kind, _status(r.status), _time(r.started_at), format_duration(r.duration_s),
                      f"{r.discrepancies:,}", Text(note))
    console.print(table)


def _line_columns(table: Table) -> None:
    for line in ORG_LINES:
        table.add_column(line, justify="right", no_wrap=True)


def _stars(counts: list[int]) -> str:
    return " ".join(f"{n:,}" for n in counts[1:6])


def _hours_table(title: str, groups: dict[str, dict[str, Any]], label: str, names: bool) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column(label, no_wrap=True)
    table.add_column("volunteers", justify="right", no_wrap=True)
    table.add_column("local h", justify="right", no_wrap=True)
    table.add_column("registry h", justify="right", no_wrap=True)
    table.add_column("local − registry", justify="right", no_wrap=True)
    table.add_column("★ local", justify="right", no_wrap=True)
    table.add_column("★ registry", justify="right", no_wrap=True)
    for key, g in groups.items():
        name = f"{key} {city_name(key)}".strip() if names else key
        table.add_row(name, f"{g['volunteers']:,}", format_hours(g["local_hours"]),
                      format_hours(g["registry_hours"]), format_hours(g["hours_diff"]),
                      _stars(g["stars_local"]), _stars(g["stars_registry"]))
    return table


def print_report(report: RunReport, console: Console,
                 rows_for: Callable[[str], Iterable[DiscrepancyRow]] | None = None, rows_per_kind: int = 0) -> None:
    """The report of one run: summary, discrepancies by kind, city, organization line and action, the trend,
    the hours view and, when ``rows_for`` is given, the first ``rows_per_kind`` rows of each kind.

    Args:
        report: what :func:`regsync.reports.data.load_report` read.
        console: where to print (its width decides the layout).
        rows_for: ``kind`` → that kind's first rows (streamed).
        rows_per_kind: how many rows of each kind ``rows_for`` gives (for the "first N of M" note).
    """
    run, counts = report.run, report.counts
    head = Text(f"Run {run.id} · {run.kind} · ", style="bold")
    head.append(_status(run.status))
    console.print(head)
    finished = run.finished_at.strftime("%H:%M:%S") if run.finished_at else "still running"
    console.print(f"started {_time(run.started_at)} +08:00 · finished {finished} · "
                  f"took {format_duration(run.duration_s)} · {counts.total:,} discrepancies", highlight=False)
    personal = "shown in clear (audited)" if report.show_personal_data else "masked"
    console.print(f"report made {_time(report.generated_at)} +08:00 · ID numbers and phones {personal}",
                  highlight=False)

    items = summary_items(run.summary)
    if items:
        table = Table(title="run summary", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                      show_header=False)
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("value", ratio=1)
        for key, value in items:
            table.add_row(key, Text(value))
        console.print(table)

    if counts.total:
        table = Table(title="discrepancies by kind and organization line", box=box.SIMPLE_HEAD, pad_edge=False,
                      title_justify="left")
        table.add_column("kind", no_wrap=True)
        table.add_column("total", justify="right", no_wrap=True)
        _line_columns(table)
        for kind, n in counts.by_kind.items():
            lines = counts.by_kind_line.get(kind, {})
            table.add_row(kind, f"{n:,}", *(f"{lines.get(x, 0):,}" for x in ORG_LINES))
        table.add_row(Text("all", style="bold"), f"{counts.total:,}",
                      *(f"{counts.by_org_line.get(x, 0):,}" for x in ORG_LINES))
        console.print(table)

        table = Table(title="discrepancies by city", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column("city", no_wrap=True)
        table.add_column("total", justify="right", no_wrap=True)
        _line_columns(table)
        for city, n in counts.by_city.items():
            lines = counts.by_city_line.get(city, {})
            table.add_row(f"{city} {city_name(city)}".strip(), f"{n:,}",
                          *(f"{lines.get(x, 0):,}" for x in ORG_LINES))
        console.print(table)

        table = Table(title="by record kind and repair", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column("record kind", no_wrap=True)
        table.add_column("rows", justify="right", no_wrap=True)
        table.add_column("repair (action/state)", no_wrap=True)
        table.add_column("rows", justify="right", no_wrap=True)
        entities, actions = list(counts.by_entity.items()), list(counts.by_action.items())
        for i in range(max(len(entities), len(actions))):
            e = entities[i] if i < len(entities) else ("", None)
            a = actions[i] if i < len(actions) else ("", None)
            table.add_row(e[0], "" if e[1] is None else f"{e[1]:,}", a[0], "" if a[1] is None else f"{a[1]:,}")
        console.print(table)

    if len(report.trend) > 1:
        table = Table(title=f"trend: the last {len(report.trend)} {run.kind} runs", box=box.SIMPLE_HEAD,
                      pad_edge=False, title_justify="left")
        table.add_column("run", justify="right", no_wrap=True)
        table.add_column("started", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("discrepancies", justify="right", no_wrap=True)
        table.add_column("change", justify="right", no_wrap=True)
        previous: int | None = None
        for p in report.trend:
            change = "" if previous is None else f"{p.total - previous:+,}"
            table.add_row(str(p.run_id), _time(p.started_at), _status(p.status), f"{p.total:,}", change)
            previous = p.total
        console.print(table)

    hours = report.hours
    if hours:
        total = hours.get("total", {})
        console.print(Text("hours: local against accepted by the registry", style="bold"))
        console.print(f"{total.get('volunteers', 0):,} volunteers · local {format_hours(total.get('local_hours'))} h"
                      f" · registry {format_hours(total.get('registry_hours'))} h · difference "
                      f"{format_hours(total.get('hours_diff'))} h on {total.get('volunteers_differing', 0):,} "
                      "volunteers; ★: volunteers at star levels 1 to 5 (100/300/600/1000/1500 h; local from local "
                      "hours, registry from its totalHours)", highlight=False)
        console.print(_hours_table("hours by city", hours.get("by_city", {}), "city", True))
        console.print(_hours_table("hours by organization line", hours.get("by_org_line", {}), "line", False))
    elif run.kind == "reconcile":
        console.print("hours: this run recorded no hours figures")

    if rows_for is None:
        return
    for kind, n in counts.by_kind.items():
        shown = min(n, rows_per_kind)
        table = Table(title=f"{kind}: {'all' if shown == n else f'first {shown:,} of'} {n:,}",
                      box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column("id", justify="right", no_wrap=True)
        table.add_column("record", no_wrap=True)
        table.add_column("registry id", no_wrap=True)
        table.add_column("city", no_wrap=True)
        table.add_column("line", no_wrap=True)
        table.add_column("repair", no_wrap=True)
        table.add_column("details", ratio=1, overflow="fold")
        for r in rows_for(kind):
            record = f"{r.entity}:{r.local_id}" if r.local_id is not None else r.entity
            details = json.dumps(r.details, ensure_ascii=False, sort_keys=True)
            if r.fields:
                details = "fields " + ",".join(r.fields) + "\n" + details
            if r.id_number or r.phone:
                details = " ".join(x for x in (r.id_number, r.phone) if x) + "\n" + details
            repair = f"{r.action}/{r.action_state}" if r.action else "—"
            table.add_row(str(r.id), record, r.registry_id or "—", r.city_code or "—", r.org_line or "—", repair,
                          Text(details))
        console.print(table)
    if any(n > rows_per_kind for n in counts.by_kind.values()):
        console.print(f"(at most {rows_per_kind:,} rows of each kind here; the CSV and JSON exports have them all)")
