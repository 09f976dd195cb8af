"""The HTML report's charts as Apache ECharts options (plain JSON-ready dicts; issue 15, point 3).

Each chart shows the differences themselves, never totals that hide them:

* ``by_city``: discrepancies per city, split by organization line (regional, specialized, 未归属), the cities
  with the most work first: who must act.
* ``by_kind``: discrepancies per kind (the reason the records differ), split by line.
* ``trend``: discrepancies by kind in each of the last runs of the run's kind, with their total: is it getting
  better.
* ``hours_gap``: per city, the linked volunteers' platform hours minus the hours the registry accepted (hours; a
  bar above zero is hours the registry has not accepted), the platform's hours of volunteers the registry does not
  know at all (when the run counted them), and how many volunteers differ.
* ``stars``: per star level, volunteers at it by the platform's hours against by the registry's totalHours.

Labels are in the language in force (:mod:`regsync.i18n`); call :func:`build_charts` inside it. The page draws
them with the ECharts build inlined from ``assets/`` (``templates/report.js``): no option holds a function, so the
options travel as JSON. Animation is off, so a chart is complete when first drawn (and in a screenshot).
"""

from __future__ import annotations

from typing import Any

from regsync.i18n import gettext as _
from regsync.reports.data import DISCREPANCY_KINDS, ORG_LINES, RunReport, kind_order
from regsync.reports.labels import city_label, discrepancy_word, line_word, run_word

__all__ = ["LINE_COLOURS", "build_charts"]

#: Colours of the organization lines (``none``: 未归属).
LINE_COLOURS = {"regional": "#1f6fb2", "specialized": "#e07b24", "none": "#9a9a9a"}
#: One colour per discrepancy kind, in :data:`DISCREPANCY_KINDS` order (a kind keeps its colour from run to run);
#: other kinds take the last.
_KIND_COLOURS = ("#c0392b", "#8e44ad", "#2471a3", "#d68910", "#17a589", "#7f8c8d", "#2e4053", "#e84393",
                 "#6ab04c", "#5d6d7e")
_PLATFORM, _REGISTRY, _GAP_UP, _GAP_DOWN = "#1f6fb2", "#27ae60", "#c0392b", "#2471a3"
_MISSING = "#e67e22"


def _kind_colour(kind: str) -> str:
    return _KIND_COLOURS[DISCREPANCY_KINDS.index(kind)] if kind in DISCREPANCY_KINDS else _KIND_COLOURS[-1]


def _base(title: str, subtitle: str = "") -> dict[str, Any]:
    return {
        "animation": False,
        "title": {"text": title, "subtext": subtitle, "left": 8, "top": 4,
                  "textStyle": {"fontSize": 14, "fontWeight": 600}, "subtextStyle": {"fontSize": 12}},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"bottom": 0, "type": "plain"},
        "grid": {"left": 12, "right": 36, "top": 62 if subtitle else 44, "bottom": 36, "containLabel": True},
    }


def _by_line(rows: dict[str, dict[str, int]], order: list[str], labels: list[str], title: str,
             subtitle: str) -> dict[str, Any]:
    """Horizontal bars stacked by organization line, the first of ``order`` at the top."""
    lines = [x for x in ORG_LINES if any(rows.get(k, {}).get(x) for k in order)]
    lines += sorted({x for k in order for x in rows.get(k, {}) if x not in ORG_LINES})
    option = _base(title, subtitle)
    option["yAxis"] = {"type": "category", "data": labels[::-1], "axisTick": {"show": False}}
    option["xAxis"] = {"type": "value", "minInterval": 1}
    option["series"] = [
        {"type": "bar", "name": line_word(x), "stack": "line", "barMaxWidth": 28,
         "itemStyle": {"color": LINE_COLOURS.get(x, "#555")},
         "label": {"show": True, "position": "inside", "formatter": "{c}", "fontSize": 11},
         "data": [rows.get(k, {}).get(x, 0) or None for k in order][::-1]}
        for x in lines]
    return option


def _trend(report: RunReport) -> dict[str, Any]:
    trend = report.trend
    kinds = kind_order({k for p in trend for k in p.by_kind})
    xs = [f"#{p.run_id} {p.started_at:%m-%d %H:%M}" for p in trend]
    option = _base(_("Discrepancies in the last {count} {kind} runs").format(count=len(trend),
                                                                             kind=run_word(report.run.kind)),
                   _("by kind; the line is the total"))
    option["xAxis"] = {"type": "category", "data": xs}
    option["yAxis"] = {"type": "value", "minInterval": 1}
    option["series"] = [
        {"type": "bar", "name": discrepancy_word(k), "stack": "kind", "barMaxWidth": 48,
         "itemStyle": {"color": _kind_colour(k)},
         "data": [p.by_kind.get(k, 0) or None for p in trend]}
        for k in kinds]
    option["series"].append({"type": "line", "name": _("total"), "data": [p.total for p in trend],
                             "itemStyle": {"color": "#222"}, "symbolSize": 7,
                             "label": {"show": True, "position": "top", "formatter": "{c}"}})
    option["grid"]["bottom"] = 60 if len(kinds) > 4 else 36
    return option


def _hours_gap(groups: dict[str, dict[str, Any]], missing: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Per city, in hours, biggest gap first: the linked volunteers' platform hours minus the registry's accepted
    hours, and beside it the platform's hours of volunteers the registry does not know (``missing``: the report's
    ``not_in_registry.by_city``; ``None`` when the run did not count them, and the bar is left out)."""
    lost = missing or {}

    def gap(c: str) -> int:
        return abs(groups.get(c, {}).get("hours_diff", 0)) + lost.get(c, {}).get("local_hours", 0)

    order = sorted(set(groups) | set(lost), key=lambda c: (-gap(c), c))
    option = _base(_("Service hours: the platform's minus the registry's, by city"),
                   _("hours; above zero: hours the registry has not accepted (linked volunteers), and hours of "
                     "volunteers the registry does not know"))
    option["xAxis"] = {"type": "category", "data": [city_label(c) for c in order],
                       "axisLabel": {"interval": 0, "rotate": 30 if len(order) > 8 else 0}}
    option["yAxis"] = [{"type": "value"}, {"type": "value", "minInterval": 1, "splitLine": {"show": False}}]
    diffs = [groups.get(c, {}).get("hours_diff", 0) for c in order]
    option["series"] = [
        {"type": "bar", "name": _("hours: platform − registry (linked volunteers)"), "barMaxWidth": 40,
         "label": {"show": True, "position": "top", "formatter": "{c}"},
         "data": [{"value": round(d / 100, 2), "itemStyle": {"color": _GAP_UP if d >= 0 else _GAP_DOWN}}
                  for d in diffs],
         "itemStyle": {"color": _GAP_UP},
         "markLine": {"silent": True, "symbol": "none", "data": [{"yAxis": 0}], "lineStyle": {"color": "#555"},
                      "label": {"show": False}}},
    ]
    if missing is not None:
        option["series"].append(
            {"type": "bar", "name": _("hours not in the registry (volunteers it does not know)"), "barMaxWidth": 40,
             "label": {"show": True, "position": "top", "formatter": "{c}"}, "itemStyle": {"color": _MISSING},
             "data": [round(lost.get(c, {}).get("local_hours", 0) / 100, 2) for c in order]})
    option["series"].append(
        {"type": "line", "name": _("volunteers differing"), "yAxisIndex": 1, "symbolSize": 8,
         "lineStyle": {"width": 0}, "itemStyle": {"color": "#8e44ad"},
         "data": [groups.get(c, {}).get("volunteers_differing", 0) for c in order]})
    return option


def _stars(total: dict[str, Any]) -> dict[str, Any]:
    option = _base(_("Volunteers by star level"),
                   _("by the platform's hours against by the registry's totalHours (100 / 300 / 600 / 1000 / 1500 h)"))
    option["xAxis"] = {"type": "category", "data": ["★" * n for n in range(1, 6)]}
    option["yAxis"] = {"type": "value", "minInterval": 1}
    option["series"] = [
        {"type": "bar", "name": name, "barMaxWidth": 36, "itemStyle": {"color": colour},
         "label": {"show": True, "position": "top", "formatter": "{c}"}, "data": total.get(key, [0] * 6)[1:6]}
        for key, name, colour in (("stars_local", _("by the platform's hours"), _PLATFORM),
                                  ("stars_registry", _("by the registry's totalHours"), _REGISTRY))]
    return option


def build_charts(report: RunReport) -> dict[str, dict[str, Any]]:
    """The page's charts as ECharts options, by name (``by_city``, ``by_kind``, ``trend``, ``hours_gap``,
    ``stars``; the module's docstring says what each shows). A chart with nothing to show is left out: the
    discrepancy charts without discrepancies, the trend with fewer than two runs or no discrepancy in them, the
    hours charts when the run recorded no hours."""
    counts = report.counts
    charts: dict[str, dict[str, Any]] = {}
    if counts.total:
        cities = sorted(counts.by_city, key=lambda c: (-counts.by_city[c], c))
        charts["by_city"] = _by_line(counts.by_city_line, cities, [city_label(c) for c in cities],
                                     _("Discrepancies by city and organization line"),
                                     _("records that differ (the worklist counts those waiting for one refused "
                                       "record as one item); the cities with the most at the top"))
        kinds = sorted(counts.by_kind, key=lambda k: -counts.by_kind[k])
        charts["by_kind"] = _by_line(counts.by_kind_line, kinds, [discrepancy_word(k) for k in kinds],
                                     _("Discrepancies by reason"), _("what differs, by organization line"))
    if len(report.trend) > 1 and any(p.total for p in report.trend):
        charts["trend"] = _trend(report)
    hours = report.hours
    if hours and hours.get("by_city"):
        missing = hours.get("not_in_registry")
        charts["hours_gap"] = _hours_gap(hours["by_city"], missing["by_city"] if missing else None)
        charts["stars"] = _stars(hours.get("total", {}))
    return charts
