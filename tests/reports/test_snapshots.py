"""Snapshots of the reports people read (JSON and text export, ``report show --json``) over the seeded runs.

Both engines must give the very same bytes. To accept a deliberate change: ``REGSYNC_UPDATE_SNAPSHOTS=1 pytest
tests/reports/test_snapshots.py``, then review the diff of ``tests/snapshots/``.
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser

import pytest

from regsync.reports.export import export_run
from reports.seed import LAST_RECONCILE, NOW, RUNNING_RUN, SYNC_RUN


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN, RUNNING_RUN])
def test_json_export(seeded, snapshot, run_id: int) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, run_id, "json", out, now=NOW)
    json.loads(out.getvalue())
    snapshot(f"report-run{run_id}.json", out.getvalue())


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN, RUNNING_RUN])
def test_text_export(seeded, snapshot, run_id: int) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, run_id, "text", out, now=NOW, width=100)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 100
    snapshot(f"report-run{run_id}.txt", out.getvalue())


def test_csv_export(seeded, snapshot) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, LAST_RECONCILE, "csv", out, now=NOW)
    snapshot(f"report-run{LAST_RECONCILE}.csv", out.getvalue())


class _Structure(HTMLParser):
    """The outline of a page: headings, sections, charts, tables with their header cells and row counts."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._text: list[str] | None = None
        self._tag = ""
        self._rows = 0
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3", "th"):
            self._text, self._tag = [], tag
        elif tag == "section":
            self.lines.append(f"section #{a.get('id')}")
        elif tag == "div" and "chart" in (a.get("class") or "").split():
            self.lines.append(f"  chart #{a.get('id')}")
        elif tag == "table":
            self.lines.append(f"  table #{a.get('id')} ({a.get('class') or ''})")
            self._rows = 0
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._rows += 1
        elif tag in ("p", "div") and a.get("id"):
            self.lines.append(f"  {tag} #{a['id']}")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag and self._text is not None:
            text = " ".join("".join(self._text).split())
            self.lines.append((f"    th {text}" if tag == "th" else f"{tag} {text}").rstrip())
            self._text = None
        elif tag == "tbody":
            self._in_body = False
            self.lines.append(f"    rows {self._rows}")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN])
def test_html_structure(seeded, snapshot, run_id: int) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, run_id, "html", out, now=NOW)
    parser = _Structure()
    parser.feed(out.getvalue())
    snapshot(f"report-run{run_id}.html-structure.txt", "\n".join(parser.lines) + "\n")
