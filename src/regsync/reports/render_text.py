"""Reports for a terminal: Rich tables that fit its width (``report list``, ``report show``, text export), in the
reader's language (:mod:`regsync.i18n`: Chinese by default; codes named by :mod:`regsync.reports.labels`).

Times are shown in Beijing time (+08:00); hours with two decimals (:func:`regsync.domain.hours.format_hours`).
Every value printed comes from :mod:`regsync.reports.data`, which masks ID numbers and phones unless the export
was asked (and audited) for them in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regsync.domain.hours import format_hours
from regsync.i18n import gettext as _
from regsync.reports.data import ORG_LINES, DiscrepancyRow, RunInfo, RunReport
from regsync.reports.labels import (
    city_label,
    details_text,
    discrepancy_word,
    duration_text,
    entity_word,
    has_training,
    hours_sentences,
    line_word,
    record_label,
    repair_text,
    run_word,
    status_word,
    summary_items,
)

__all__ = ["format_duration", "print_report", "print_run_list", "summary_items"]

_STATUS_STYLE = {"success": "green", "partial": "yellow", "failed": "red", "running": "cyan", "abandoned": "red"}

#: A run's duration in words (kept under its former name for the callers).
format_duration = duration_text


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def _status(status: str) -> Text:
    return Text(status_word(status), style=_STATUS_STYLE.get(status, ""))


def print_run_list(runs: list[RunInfo], console: Console) -> None:
    """One line per run: id, kind, status, start and duration (+08:00), discrepancies, and its error if any."""
    if not runs:
        console.print(_("no runs recorded"))
        return
    table = Table(title=_("runs, newest first (times +08:00)"), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(_("run"), justify="right", no_wrap=True)
    table.add_column(_("kind"), no_wrap=True)
    table.add_column(_("status"), no_wrap=True)
    table.add_column(_("started"), no_wrap=True)
    table.add_column(_("took"), justify="right", no_wrap=True)
    table.add_column(_("discrepancies"), justify="right", no_wrap=True, min_width=8)
    table.add_column(_("note"), ratio=1, overflow="fold")
    for r in runs:
        note = str(r.summary.get("error", ""))
        table.add_row(str(r.id), run_word(r.kind), _status(r.status), _time(r.started_at),
                      duration_text(r.duration_s), f"{r.discrepancies:,}", Text(note))
    console.print(table)


def _lines(report: RunReport) -> list[str]:
    """The organization lines the tables have a column for (未归属 only when some record has no line)."""
    return [x for x in ORG_LINES if x != "none" or report.counts.by_org_line.get("none")]


def _line_columns(table: Table, lines: list[str]) -> None:
    for line in lines:
        table.add_column(line_word(line), justify="right", no_wrap=True)


def _stars(counts: list[int]) -> str:
    return " ".join(f"{n:,}" for n in counts[1:6])


def _training_table(groups: dict[str, dict[str, Any]]) -> Table:
    """Training hours by city: the platform's accepted training records' class hours against the registry's
    trainingHours (issue 16, point 7)."""
    table = Table(title=_("Training hours by city"), box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column(_("city"), no_wrap=True)
    for col in (_("training h platform"), _("training h registry"), _("platform − registry"), _("differing")):
        table.add_column(col, justify="right", no_wrap=True)
    for key, g in groups.items():
        table.add_row(city_label(key), format_hours(g["local_training_hours"]),
                      format_hours(g["registry_training_hours"]), format_hours(g["training_hours_diff"]),
                      f"{g['volunteers_training_differing']:,}")
    return table


def _hours_table(title: str, groups: dict[str, dict[str, Any]], label: str, cities: bool) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column(label, no_wrap=True)
    table.add_column(_("volunteers"), justify="right", no_wrap=True)
    table.add_column(_("platform h"), justify="right", no_wrap=True)
    table.add_column(_("registry h"), justify="right", no_wrap=True)
    table.add_column(_("platform − registry"), justify="right", no_wrap=True)
    table.add_column(_("★ platform"), justify="right", no_wrap=True)
    table.add_column(_("★ registry"), justify="right", no_wrap=True)
    for key, g in groups.items():
        table.add_row(city_label(key) if cities else line_word(key), f"{g['volunteers']:,}",
                      format_hours(g["local_hours"]), format_hours(g["registry_hours"]),
                      format_hours(g["hours_diff"]), _stars(g["stars_local"]), _stars(g["stars_registry"]))
    return table


def _stars_by_city_line(groups: dict[str, dict[str, dict[str, Any]]]) -> Table:
    """The star levels of each city on each org line (issue 16, point 7), the platform's and the registry's."""
    table = Table(title=_("Star levels by city and organization line"), box=box.SIMPLE_HEAD, pad_edge=False,
                  title_justify="left")
    for col in (_("city"), _("organization line"), _("volunteers"), _("★ platform"), _("★ registry")):
        table.add_column(col, no_wrap=True, justify="left" if col in (_("city"), _("organization line")) else "right")
    for city, lines in groups.items():
        for line, g in lines.items():
            table.add_row(city_label(city), line_word(line), f"{g['volunteers']:,}", _stars(g["stars_local"]),
                          _stars(g["stars_registry"]))
    return table


def _repair_key(key: str) -> str:
    if "/" not in key:
        return repair_text(None, None)
    action, state = key.split("/", 1)
    return repair_text(action, None if state == "none" else state)


def print_report(report: RunReport, console: Console,
                 rows_for: Callable[[str], Iterable[DiscrepancyRow]] | None = None, rows_per_kind: int = 0) -> None:
    """The report of one run, in the language in force: summary, discrepancies by reason, city, organization line
    and repair, the trend, the hours view and, when ``rows_for`` is given, the first ``rows_per_kind`` rows of
    each kind.

    Args:
        report: what :func:`regsync.reports.data.load_report` read.
        console: where to print (its width decides the layout).
        rows_for: ``kind`` → that kind's first rows (streamed).
        rows_per_kind: how many rows of each kind ``rows_for`` gives (for the "first N of M" note).
    """
    run, counts = report.run, report.counts
    lines = _lines(report)
    head = Text(_("Run {id} · {kind} · ").format(id=run.id, kind=run_word(run.kind)), style="bold")
    head.append(_status(run.status))
    console.print(head)
    finished = run.finished_at.strftime("%H:%M:%S") if run.finished_at else _("still running")
    console.print(_("started {started} +08:00 · finished {finished} · took {duration} · {count} discrepancies")
                  .format(started=_time(run.started_at), finished=finished, duration=duration_text(run.duration_s),
                          count=f"{counts.total:,}"), highlight=False)
    personal = _("ID numbers and phones shown in clear (audited)") if report.show_personal_data else \
        _("ID numbers and phones masked")
    console.print(_("report made {at} +08:00").format(at=_time(report.generated_at)) + " · " + personal,
                  highlight=False)

    items = summary_items(run.summary)
    if items:
        table = Table(title=_("What the run did"), box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                      show_header=False)
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("value", ratio=1)
        for key, value in items:
            table.add_row(key, Text(value))
        console.print(table)

    if counts.total:
        table = Table(title=_("Discrepancies by reason and organization line"), box=box.SIMPLE_HEAD,
                      pad_edge=False, title_justify="left")
        table.add_column(_("reason"), no_wrap=True)
        table.add_column(_("total"), justify="right", no_wrap=True)
        _line_columns(table, lines)
        for kind, n in counts.by_kind.items():
            by_line = counts.by_kind_line.get(kind, {})
            table.add_row(discrepancy_word(kind), f"{n:,}", *(f"{by_line.get(x, 0):,}" for x in lines))
        table.add_row(Text(_("all"), style="bold"), f"{counts.total:,}",
                      *(f"{counts.by_org_line.get(x, 0):,}" for x in lines))
        console.print(table)

        table = Table(title=_("Discrepancies by city (the most first)"), box=box.SIMPLE_HEAD, pad_edge=False,
                      title_justify="left")
        table.add_column(_("city"), no_wrap=True)
        table.add_column(_("total"), justify="right", no_wrap=True)
        _line_columns(table, lines)
        for city in sorted(counts.by_city, key=lambda c: (-counts.by_city[c], c)):
            by_line = counts.by_city_line.get(city, {})
            table.add_row(city_label(city), f"{counts.by_city[city]:,}", *(f"{by_line.get(x, 0):,}" for x in lines))
        console.print(table)

        table = Table(title=_("By record kind and repair"), box=box.SIMPLE_HEAD, pad_edge=False,
                      title_justify="left")
        table.add_column(_("record kind"), no_wrap=True)
        table.add_column(_("records"), justify="right", no_wrap=True)
        table.add_column(_("repair"), no_wrap=True)
        table.add_column(_("records"), justify="right", no_wrap=True)
        entities, actions = list(counts.by_entity.items()), list(counts.by_action.items())
        for i in range(max(len(entities), len(actions))):
            e = (entity_word(entities[i][0]), entities[i][1]) if i < len(entities) else ("", None)
            a = (_repair_key(actions[i][0]), actions[i][1]) if i < len(actions) else ("", None)
            table.add_row(e[0], "" if e[1] is None else f"{e[1]:,}", a[0], "" if a[1] is None else f"{a[1]:,}")
        console.print(table)

    if len(report.trend) > 1:
        table = Table(title=_("Trend: the last {count} {kind} runs").format(count=len(report.trend),
                                                                           kind=run_word(run.kind)),
                      box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column(_("run"), justify="right", no_wrap=True)
        table.add_column(_("started"), no_wrap=True)
        table.add_column(_("status"), no_wrap=True)
        table.add_column(_("discrepancies"), justify="right", no_wrap=True)
        table.add_column(_("change"), justify="right", no_wrap=True)
        previous: int | None = None
        for p in report.trend:
            change = "" if previous is None else f"{p.total - previous:+,}"
            table.add_row(str(p.run_id), _time(p.started_at), _status(p.status), f"{p.total:,}", change)
            previous = p.total
        console.print(table)

    hours = report.hours
    if hours:
        console.print(Text(_("Service hours: the platform's against the registry's"), style="bold"))
        for sentence in hours_sentences(hours):
            console.print(sentence, highlight=False)
        console.print(_("★: volunteers at star levels 1 to 5 (100/300/600/1000/1500 h; the platform's from its "
                        "hours, the registry's from its totalHours)"), highlight=False)
        console.print(_hours_table(_("Hours by city"), hours.get("by_city", {}), _("city"), True))
        console.print(_hours_table(_("Hours by organization line"), hours.get("by_org_line", {}),
                                   _("organization line"), False))
        if hours.get("by_city_line"):
            console.print(_stars_by_city_line(hours["by_city_line"]))
        if has_training(hours):
            console.print(_training_table(hours.get("by_city", {})))
    elif run.kind == "reconcile":
        console.print(_("This run recorded no hours figures."))

    if rows_for is None:
        return
    for kind, n in counts.by_kind.items():
        shown = min(n, rows_per_kind)
        title = (_("{kind}: all {count}").format(kind=discrepancy_word(kind), count=f"{n:,}") if shown == n else
                 _("{kind}: first {shown} of {count}").format(kind=discrepancy_word(kind), shown=f"{shown:,}",
                                                             count=f"{n:,}"))
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column(_("no."), justify="right", no_wrap=True)
        table.add_column(_("record"), ratio=2, overflow="fold")
        table.add_column(_("city"), no_wrap=True)
        table.add_column(_("organization line"), no_wrap=True)
        table.add_column(_("repair"), ratio=1, overflow="fold")
        table.add_column(_("what differs"), ratio=3, overflow="fold")
        for r in rows_for(kind):
            what = details_text(r.fields, r.details, refusal=r.refusal,
                                refusal_state=r.refusal_state)
            if r.id_number or r.phone:
                what = " ".join(x for x in (r.id_number, r.phone) if x) + "\n" + what
            table.add_row(str(r.id), Text(record_label(r.entity, r.local_id, r.registry_id, r.details,
                                                       live_name=r.name)),
                          city_label(r.city_code), line_word(r.org_line), repair_text(r.action, r.action_state),
                          Text(what))
        console.print(table)
    if any(n > rows_per_kind for n in counts.by_kind.values()):
        console.print(_("(at most {count} records of each kind here; the CSV and JSON exports have them all)")
                      .format(count=f"{rows_per_kind:,}"))
