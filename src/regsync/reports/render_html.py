"""The HTML report: one self-contained page that opens with no network (for managers, design.md "Who uses it").

* **Charts** by plotly.js, inlined from the plotly package (:func:`plotly.offline.get_plotlyjs`): discrepancies by
  kind, by city (split by organization line), by organization line, the trend over the last runs of the run's
  kind, and, when the run recorded them, hours by city and volunteers by star level on each side.
* **Tables** (Jinja2, autoescaped) sort on a click of their header and filter as one types, by a few lines of the
  page's own script (``templates/report.js``). The discrepancy tables hold the first ``rows_per_kind`` rows of each
  kind (default 5 000) and say so; every figure above them counts all rows.
* **Nothing is fetched**: no URL is referenced by the page's own markup, and a Content-Security-Policy
  (``default-src 'none'``) forbids the page any request, whoever opens it.

The page is streamed: :func:`write_html` renders with :meth:`jinja2.Template.generate` while the rows come from
:func:`regsync.reports.data.iter_discrepancies`, so memory does not grow with the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import IO, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection

from regsync.domain.hours import format_hours
from regsync.reports.data import ORG_LINES, DiscrepancyRow, RunReport, city_name, iter_discrepancies, kind_order
from regsync.reports.render_text import format_duration, summary_items

__all__ = ["build_charts", "write_html"]

#: Colours of the organization lines in the charts.
LINE_COLOURS = {"regional": "#1f6fb2", "specialized": "#e07b24", "none": "#9a9a9a"}
_KIND_COLOURS = ("#c0392b", "#8e44ad", "#2471a3", "#d68910", "#17a589", "#7f8c8d", "#cb4335", "#2e4053",
                 "#b7950b", "#5d6d7e")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("regsync.reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["hours"] = format_hours
    env.filters["num"] = lambda n: f"{n:,}" if n is not None else "—"
    env.filters["dt"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else "—"
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    env.filters["city"] = lambda c: f"{c} {city_name(c)}".strip() if c else "—"
    return env


@cache
def _plotly_js() -> Markup:
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs().replace("</script", "<\\/script"))  # noqa: S704 — the plotly package's bundle


def _script_json(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</``, no HTML comment openers)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 — escaped above


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """A plotly figure, validated by plotly's own figure classes, as plain JSON."""
    import plotly.graph_objects as go

    base = {"margin": {"l": 60, "r": 20, "t": 40, "b": 60}, "height": 340, "font": {"size": 12},
            "legend": {"orientation": "h", "y": -0.2}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fafafa"}
    fig = go.Figure(data=data, layout={**base, **layout})
    return json.loads(fig.to_json())


def build_charts(report: RunReport) -> dict[str, dict[str, Any]]:
    """The page's charts as plotly figures (``{"data": [...], "layout": {...}}``), by name: ``by_kind``,
    ``by_city``, ``by_line``, ``trend`` (when there are at least two runs and some discrepancies), and
    ``hours_by_city`` and ``stars`` when the run recorded hours. Charts with nothing to show are left out."""
    counts = report.counts
    charts: dict[str, dict[str, Any]] = {}
    if counts.total:
        kinds = list(counts.by_kind)
        charts["by_kind"] = _figure(
            [{"type": "bar", "orientation": "h", "y": kinds[::-1], "x": [counts.by_kind[k] for k in kinds][::-1],
              "marker": {"color": "#c0392b"}, "name": "discrepancies"}],
            {"title": {"text": "Discrepancies by kind"}, "margin": {"l": 150, "r": 20, "t": 40, "b": 40}})
        cities = list(counts.by_city)
        labels = [f"{c} {city_name(c)}".strip() for c in cities]
        charts["by_city"] = _figure(
            [{"type": "bar", "x": labels, "y": [counts.by_city_line.get(c, {}).get(line, 0) for c in cities],
              "name": line, "marker": {"color": LINE_COLOURS[line]}} for line in ORG_LINES
             if any(counts.by_city_line.get(c, {}).get(line) for c in cities)],
            {"title": {"text": "Discrepancies by city and organization line"}, "barmode": "stack"})
        charts["by_line"] = _figure(
            [{"type": "bar", "x": list(counts.by_org_line), "y": list(counts.by_org_line.values()),
              "marker": {"color": [LINE_COLOURS.get(x, "#555") for x in counts.by_org_line]},
              "name": "discrepancies"}],
            {"title": {"text": "Discrepancies by organization line"}})
    if len(report.trend) > 1 and any(p.total for p in report.trend):
        kinds = kind_order({k for p in report.trend for k in p.by_kind})
        xs = [f"#{p.run_id} {p.started_at:%m-%d %H:%M}" for p in report.trend]
        data = [{"type": "bar", "x": xs, "y": [p.by_kind.get(k, 0) for p in report.trend], "name": k,
                 "marker": {"color": _KIND_COLOURS[i % len(_KIND_COLOURS)]}} for i, k in enumerate(kinds)]
        data.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": [p.total for p in report.trend],
                     "name": "total", "line": {"color": "#222"}})
        charts["trend"] = _figure(data, {"title": {"text": f"Trend over the last {len(xs)} {report.run.kind} runs"},
                                         "barmode": "stack", "xaxis": {"type": "category"}})
    hours = report.hours
    if hours and hours.get("by_city"):
        groups = hours["by_city"]
        labels = [f"{c} {city_name(c)}".strip() for c in groups]
        charts["hours_by_city"] = _figure(
            [{"type": "bar", "x": labels, "y": [g[key] / 100 for g in groups.values()], "name": name,
              "marker": {"color": colour}}
             for key, name, colour in (("local_hours", "local", "#1f6fb2"),
                                       ("registry_hours", "accepted by the registry", "#27ae60"))],
            {"title": {"text": "Service hours by city: local against accepted by the registry"},
             "barmode": "group", "yaxis": {"title": {"text": "hours"}}})
        total = hours.get("total", {})
        levels = ["★" * n for n in range(1, 6)]
        charts["stars"] = _figure(
            [{"type": "bar", "x": levels, "y": total.get(key, [0] * 6)[1:6], "name": name, "marker": {"color": c}}
             for key, name, c in (("stars_local", "local hours", "#1f6fb2"),
                                  ("stars_registry", "registry totalHours", "#27ae60"))],
            {"title": {"text": "Volunteers by star level (100 / 300 / 600 / 1000 / 1500 h)"}, "barmode": "group"})
    return charts


@dataclass
class _KindSection:
    kind: str
    total: int
    shown: int
    conn: Connection
    run_id: int
    limit: int
    show_personal_data: bool

    def rows(self) -> Iterator[DiscrepancyRow]:
        return iter_discrepancies(self.conn, self.run_id, kind=self.kind, limit=self.limit,
                                  show_personal_data=self.show_personal_data)


def _cards(report: RunReport) -> list[tuple[str, str, str]]:
    """Summary figures: (label, value, note)."""
    counts, trend = report.counts, report.trend
    cards = [("discrepancies", f"{counts.total:,}", f"{len(counts.by_kind)} kinds")]
    if len(trend) > 1:
        change = trend[-1].total - trend[-2].total
        cards.append(("since the run before", f"{change:+,}", f"run {trend[-2].run_id}: {trend[-2].total:,}"))
    cities = [c for c in counts.by_city if c != "unknown"]
    cards.append(("cities affected", f"{len(cities)}", ", ".join(city_name(c) or c for c in cities[:3])
                  + (" …" if len(cities) > 3 else "")))
    repaired = sum(n for k, n in counts.by_action.items() if k.endswith("/done"))
    queued = sum(n for k, n in counts.by_action.items() if k.endswith("/queued"))
    held = sum(n for k, n in counts.by_action.items() if k.endswith(("/held", "/not_allowed", "/failed")))
    requeued = sum(n for k, n in counts.by_action.items() if k.endswith("/requeued"))
    cards.append(("repairs", f"{repaired:,} done", f"{queued:,} queued · {held:,} held or failed"
                  + (f" · {requeued:,} queued again after a refusal" if requeued else "")))
    if report.hours:
        total = report.hours.get("total", {})
        cards.append(("hours: local − registry", format_hours(total.get("hours_diff", 0)) + " h",
                      f"{total.get('volunteers_differing', 0):,} of {total.get('volunteers', 0):,} volunteers differ"))
    return cards


def write_html(conn: Connection, report: RunReport, out: IO[str], *, rows_per_kind: int = 5000) -> None:
    """Write the HTML report of ``report`` to ``out``, streamed.

    Args:
        conn: an open connection on the local store (the rows are read through it while writing).
        report: what :func:`regsync.reports.data.load_report` read.
        out: a text stream (UTF-8 when a file).
        rows_per_kind: rows of each kind in the tables (all are counted in the figures and charts).
    """
    counts = report.counts
    sections = [_KindSection(kind=k, total=n, shown=min(n, rows_per_kind), conn=conn, run_id=report.run.id,
                             limit=rows_per_kind, show_personal_data=report.show_personal_data)
                for k, n in counts.by_kind.items()]
    template = _environment().get_template("report.html.j2")
    context = {
        "report": report, "run": report.run, "counts": counts, "cards": _cards(report),
        "summary": summary_items(report.run.summary), "duration": format_duration(report.run.duration_s),
        "charts": {name: _script_json(fig) for name, fig in build_charts(report).items()},
        "plot_config": _script_json(_PLOT_CONFIG), "lines": ORG_LINES, "sections": sections,
        "rows_per_kind": rows_per_kind, "capped": any(s.shown < s.total for s in sections),
        "hours": report.hours, "plotly_js": _plotly_js(), "script": Markup(_own_script()),  # noqa: S704
        "style": Markup(_own_style()),  # noqa: S704 — the package's own files
    }
    for chunk in template.generate(**context):
        out.write(chunk)


@cache
def _own_script() -> str:
    from importlib.resources import files

    return files("regsync.reports").joinpath("templates/report.js").read_text(encoding="utf-8")


@cache
def _own_style() -> str:
    from importlib.resources import files

    return files("regsync.reports").joinpath("templates/report.css").read_text(encoding="utf-8")
