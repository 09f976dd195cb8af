"""The HTML report: one self-contained page that opens with no network (for managers, design.md "Who uses it").

* **Language**: the reader's (:mod:`regsync.i18n`, Chinese by default): headings, figures' labels, kinds, lines,
  repairs and the run's summary in words (:mod:`regsync.reports.labels`); ``<html lang>`` follows.
* **Charts** by Apache ECharts (:mod:`regsync.reports.charts`), whose "common" build is inlined from
  ``assets/echarts.common.min.js`` (vendored from the npm package, :data:`ECHARTS_VERSION`; ``assets/README.md``
  says how to update it): discrepancies by city and line, by reason, the trend over the last runs, and the hours
  gap per city and the star levels when the run recorded hours.
* **Tables** (Jinja2, autoescaped) sort on a click of their header and filter as one types, by a few lines of the
  page's own script (``templates/report.js``). Each discrepancy table holds the first ``rows_per_kind`` rows of its
  kind (default :data:`regsync.reports.export.HTML_ROWS_PER_KIND`) and says how many more there are and where to
  find them (the worklists, ``report worklist``, first; ``report export --format csv``, the data export for
  other systems); every figure and chart counts all rows. Details are
  cut at :data:`DETAILS_CHARS` characters, so the page's size is bounded whatever the run: at most
  :data:`PAGE_LIMIT` bytes (tested with a large run).
* **Nothing is fetched**: no URL is referenced by the page's own markup, and a Content-Security-Policy
  (``default-src 'none'``) forbids the page any request, whoever opens it.

The page is streamed: :func:`write_html` renders with :meth:`jinja2.Template.generate` while the rows come from
:func:`regsync.reports.data.iter_discrepancies`, so memory does not grow with the number of rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import IO, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection

from regsync.domain.hours import format_hours
from regsync.i18n import gettext as _
from regsync.i18n import html_lang, language, translations
from regsync.reports.charts import build_charts
from regsync.reports.data import ORG_LINES, DiscrepancyRow, RunReport, iter_discrepancies
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

__all__ = ["DETAILS_CHARS", "ECHARTS_SHA256", "ECHARTS_VERSION", "PAGE_LIMIT", "build_charts", "echarts_js",
           "write_html"]

#: The vendored ECharts build's version and sha256 (``assets/README.md``; a test checks both).
ECHARTS_VERSION = "5.6.0"
ECHARTS_SHA256 = "55974cf42cc160e6cf9099cd3ed8cdedfaa9779919fcee7e2272c85f6ca30e27"
#: The page's size limit in bytes (issue 15, point 3: at most 1.5 MB), whatever the run's size.
PAGE_LIMIT = 1_500_000
#: Characters of a discrepancy's details shown in its table cell.
DETAILS_CHARS = 160


@cache
def _environment(lang: str) -> Environment:
    env = Environment(loader=PackageLoader("regsync.reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(lang), newstyle=False)  # type: ignore[attr-defined]
    env.filters["hours"] = format_hours
    env.filters["num"] = lambda n: f"{n:,}" if n is not None else "—"
    env.filters["dt"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else "—"
    env.filters["city"] = city_label
    env.filters["line"] = line_word
    env.filters["kind"] = discrepancy_word
    env.filters["entity"] = entity_word
    env.filters["status"] = status_word
    return env


def _asset(name: str) -> bytes:
    from importlib.resources import files  # the package's own data, read once (cached by the callers)

    return files("regsync.reports").joinpath(f"assets/{name}").read_bytes()


@cache
def echarts_js() -> Markup:
    """The vendored ECharts build, ready to inline in a ``<script>`` element.

    Raises:
        RuntimeError: the file is not the one vendored (its sha256 differs from :data:`ECHARTS_SHA256`).
    """
    data = _asset("echarts.common.min.js")
    digest = hashlib.sha256(data).hexdigest()
    if digest != ECHARTS_SHA256:
        raise RuntimeError(f"assets/echarts.common.min.js has sha256 {digest}, not the vendored {ECHARTS_SHA256}")
    return Markup(data.decode("utf-8").replace("</script", "<\\/script"))  # noqa: S704 — the vendored build


def _script_json(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</``, no HTML comment openers)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 — escaped above


@dataclass(frozen=True)
class _Row:
    """One discrepancy as its table row shows it (words, not codes; masked as read)."""

    id: int
    record: str
    city: str
    line: str
    details: str
    repair: str
    id_number: str
    phone: str
    detected: str


def _row(r: DiscrepancyRow) -> _Row:
    return _Row(id=r.id, record=record_label(r.entity, r.local_id, r.registry_id, r.details, live_name=r.name),
                city=city_label(r.city_code), line=line_word(r.org_line),
                details=details_text(r.fields, r.details, limit=DETAILS_CHARS, refusal=r.refusal,
                                     refusal_state=r.refusal_state),
                repair=repair_text(r.action, r.action_state), id_number=r.id_number or "", phone=r.phone or "",
                detected=r.detected_at.strftime("%Y-%m-%d %H:%M") if r.detected_at else "—")


@dataclass
class _KindSection:
    kind: str
    total: int
    shown: int
    conn: Connection
    run_id: int
    limit: int
    show_personal_data: bool

    @property
    def title(self) -> str:
        return discrepancy_word(self.kind)

    @property
    def more(self) -> int:
        return self.total - self.shown

    def rows(self) -> Iterator[_Row]:
        for r in iter_discrepancies(self.conn, self.run_id, kind=self.kind, limit=self.limit,
                                    show_personal_data=self.show_personal_data):
            yield _row(r)


def _cards(report: RunReport) -> list[tuple[str, str, str]]:
    """Summary figures: (label, value, note), in words."""
    counts, trend = report.counts, report.trend
    cards = [(_("discrepancies"), f"{counts.total:,}", _("{count} kinds").format(count=len(counts.by_kind)))]
    # against the last run before it that finished its work (a failed run found nothing: comparing with it misleads)
    before = [p for p in trend[:-1] if p.status in ("success", "partial")]
    if before:
        change = trend[-1].total - before[-1].total
        cards.append((_("since the run before"), f"{change:+,}",
                      _("run {run}: {count}").format(run=before[-1].run_id, count=f"{before[-1].total:,}")))
    cities = sorted((c for c in counts.by_city if c != "unknown"), key=lambda c: (-counts.by_city[c], c))
    cards.append((_("cities affected"), f"{len(cities)}",
                  _("most: {cities}").format(cities="、".join(
                      f"{city_label(c)} {counts.by_city[c]:,}" for c in cities[:3])) if cities else "—"))
    unassigned = counts.by_org_line.get("none", 0)
    if unassigned:
        cards.append((_("unassigned"), f"{unassigned:,}", _("records with no organization line yet")))
    repaired = sum(n for k, n in counts.by_action.items() if k.endswith("/done"))
    queued = sum(n for k, n in counts.by_action.items() if k.endswith("/queued"))
    held = sum(n for k, n in counts.by_action.items() if k.endswith(("/held", "/not_allowed", "/failed")))
    requeued = sum(n for k, n in counts.by_action.items() if k.endswith("/requeued"))
    if counts.total and set(counts.by_action) == {"report only"}:
        cards.append((_("repaired"), "—", _("this run only reported; it repaired nothing")))
    else:
        note = _("{queued} queued · {held} held or failed").format(queued=f"{queued:,}", held=f"{held:,}")
        if requeued:
            note += " · " + _("{count} queued again after a refusal").format(count=f"{requeued:,}")
        cards.append((_("repaired"), f"{repaired:,}", note))
    if report.hours:
        total = report.hours.get("total", {})
        diff = format_hours(total.get("hours_diff", 0))
        cards.append((_("hours: platform − registry"), _("{hours} h").format(hours=diff),
                      _("{differing} of {volunteers} linked volunteers differ").format(
                          differing=f"{total.get('volunteers_differing', 0):,}",
                          volunteers=f"{total.get('volunteers', 0):,}")))
        missing = report.hours.get("not_in_registry")
        cards.append((_("hours not in the registry"),
                      _("{hours} h").format(hours=format_hours(missing["local_hours"])) if missing else "—",
                      _("{records} service records of {volunteers} volunteers the registry does not know").format(
                          records=f"{missing['service_records']:,}", volunteers=f"{missing['volunteers']:,}")
                      if missing else _("not counted by this run")))
    return cards


def _repair_key(key: str) -> str:
    """A key of :attr:`Counts.by_action` (``push/queued``, ``none/held``, ``report only``) in words."""
    if "/" not in key:
        return repair_text(None, None)
    action, state = key.split("/", 1)
    return repair_text(action, None if state == "none" else state)


def write_html(conn: Connection, report: RunReport, out: IO[str], *, rows_per_kind: int = 60) -> None:
    """Write the HTML report of ``report`` to ``out``, streamed, in the language in force.

    Args:
        conn: an open connection on the local store (the rows are read through it while writing).
        report: what :func:`regsync.reports.data.load_report` read.
        out: a text stream (UTF-8 when a file).
        rows_per_kind: rows of each kind in the tables (all are counted in the figures and charts).

    Raises:
        RuntimeError: the vendored ECharts build is not the one expected (:func:`echarts_js`).
    """
    counts = report.counts
    sections = [_KindSection(kind=k, total=n, shown=min(n, rows_per_kind), conn=conn, run_id=report.run.id,
                             limit=rows_per_kind, show_personal_data=report.show_personal_data)
                for k, n in counts.by_kind.items()]
    lang = language()
    template = _environment(lang).get_template("report.html.j2")
    charts = build_charts(report)
    context = {
        "report": report, "run": report.run, "counts": counts, "cards": _cards(report),
        "run_kind": run_word(report.run.kind), "html_lang": html_lang(lang),
        "summary": summary_items(report.run.summary), "duration": duration_text(report.run.duration_s),
        "charts": {name: _script_json(option) for name, option in charts.items()},
        "lines": [x for x in ORG_LINES if x != "none" or counts.by_org_line.get("none")],
        "sections": sections, "rows_per_kind": rows_per_kind, "capped": any(s.more for s in sections),
        "repair": _repair_key, "hours": report.hours,
        "hours_sentences": hours_sentences(report.hours) if report.hours else [],
        "has_training": has_training(report.hours) if report.hours else False,
        "echarts_js": echarts_js(), "echarts_version": ECHARTS_VERSION,
        "script": Markup(_own_script()),  # noqa: S704
        "style": Markup(_own_style()),  # noqa: S704 — the package's own files
    }
    for chunk in template.generate(**context):
        out.write(chunk)


@cache
def _own_script() -> str:
    from importlib.resources import files  # the package's own data, read once

    return files("regsync.reports").joinpath("templates/report.js").read_text(encoding="utf-8")


@cache
def _own_style() -> str:
    from importlib.resources import files  # the package's own data, read once

    return files("regsync.reports").joinpath("templates/report.css").read_text(encoding="utf-8")
