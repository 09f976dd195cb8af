"""``regsync report export``: one run's report as text, JSON, CSV or HTML, streamed to a file or stdout.

Memory stays flat whatever the run's size: the counts, trend and hours come from ``GROUP BY`` queries and the
summary; the rows are streamed (:func:`regsync.reports.data.iter_discrepancies`) and written one by one.

* **JSON** (``regsync.report/1``): the report's head (:meth:`RunReport.head`), then ``"discrepancies"``, every
  row, one compact object per line, in kind then id order. Keys sorted, UTF-8, so the same data gives the same
  bytes.
* **CSV**: a header and one line per discrepancy (:data:`CSV_COLUMNS`); ``fields`` joined with ``;``,
  ``details`` as JSON. Written to a file it starts with a UTF-8 byte order mark, so that spreadsheet programs
  read the Chinese text right.
* **text**: the Rich report of :func:`regsync.reports.render_text.print_report` with the first
  :data:`TEXT_ROWS_PER_KIND` rows of each kind.
* **HTML**: :func:`regsync.reports.render_html.write_html`: one self-contained page, the first
  :data:`HTML_ROWS_PER_KIND` rows of each kind, totals for all.

Personal data: ID numbers and phones are masked unless ``show_personal_data``; asking for them needs a reason and
writes an ``audit`` row (action ``report_personal_data``) before anything is written.
A file is written next to its destination and renamed into place when complete, so a failed export leaves no
half report.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
from rich.console import Console
from sqlalchemy import Connection, Engine, func, select

from regsync.db.models import Audit, Discrepancy
from regsync.db.session import utcnow
from regsync.domain.masking import mask_text
from regsync.i18n import gettext_noop as N_
from regsync.reports.data import ReportUsageError, RunReport, city_name, get_run, iso, iter_discrepancies, load_report
from regsync.reports.render_html import write_html
from regsync.reports.render_text import print_report

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "HTML_ROWS_PER_KIND",
    "PERSONAL_DATA_ACTION",
    "TEXT_ROWS_PER_KIND",
    "audit_personal_data",
    "export_run",
    "export_to_path",
    "write_csv",
    "write_json",
    "write_text",
]

#: Formats ``report export --format`` accepts.
FORMATS: tuple[str, ...] = ("text", "json", "csv", "html")
#: Rows of each kind the text report lists.
TEXT_ROWS_PER_KIND = 50
#: Rows of each kind the HTML report's tables hold (totals always count all): with the inlined charts the page
#: stays under :data:`regsync.reports.render_html.PAGE_LIMIT` (1.5 MB) whatever the run's size.
HTML_ROWS_PER_KIND = 60
#: The audit action of an export with clear ID numbers and phones.
PERSONAL_DATA_ACTION = "report_personal_data"
#: The CSV export's columns, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "id", "run_id", "kind", "entity", "local_id", "registry_id", "city_code", "city_name", "org_line", "fields",
    "action", "action_state", "detected_at", "id_number", "phone", "details",
)


_SORTED = orjson.OPT_SORT_KEYS


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def write_json(conn: Connection, report: RunReport, out: IO[str]) -> int:
    """Write the JSON export of ``report`` to ``out``, rows streamed; returns the number of rows."""
    head = json.dumps(report.head(), ensure_ascii=False, sort_keys=True, indent=2, default=str)
    out.write(head[:-2] + ',\n  "discrepancies": [')
    n = 0
    for row in iter_discrepancies(conn, report.run.id, show_personal_data=report.show_personal_data):
        out.write(("\n    " if n == 0 else ",\n    ") + orjson.dumps(row.as_dict(), option=_SORTED).decode())
        n += 1
    out.write("\n  ]\n}\n" if n else "]\n}\n")
    return n


def write_csv(conn: Connection, report: RunReport, out: IO[str]) -> int:
    """Write the CSV export of ``report`` to ``out`` (:data:`CSV_COLUMNS`), rows streamed; returns the number
    of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for r in iter_discrepancies(conn, report.run.id, show_personal_data=report.show_personal_data):
        writer.writerow((r.id, r.run_id, r.kind, r.entity, r.local_id, r.registry_id, r.city_code,
                         city_name(r.city_code), r.org_line, ";".join(r.fields), r.action, r.action_state,
                         iso(r.detected_at), r.id_number, r.phone,
                         orjson.dumps(r.details, option=_SORTED).decode()))
        n += 1
    return n


def write_text(conn: Connection, report: RunReport, out: IO[str], *, width: int = 100,
               rows_per_kind: int = TEXT_ROWS_PER_KIND, color: bool = False) -> None:
    """Write the text report (Rich tables, ``width`` columns, no colour unless ``color``) to ``out``."""
    console = Console(file=out, width=width, color_system="standard" if color else None,
                      force_terminal=color, legacy_windows=False, soft_wrap=False, emoji=False, highlight=False)
    print_report(report, console,
                 rows_for=lambda kind: iter_discrepancies(conn, report.run.id, kind=kind, limit=rows_per_kind,
                                                          show_personal_data=report.show_personal_data),
                 rows_per_kind=rows_per_kind)


def export_run(engine: Engine, run_id: int, fmt: str, out: IO[str], *, show_personal_data: bool = False,
               now: dt.datetime | None = None, width: int = 100, rows_per_kind: int | None = None) -> RunReport:
    """Write run ``run_id``'s report in format ``fmt`` to ``out`` (the caller audits personal data: see
    :func:`audit_personal_data`).

    Args:
        engine: the local store.
        run_id: the run.
        fmt: one of :data:`FORMATS`.
        out: a text stream.
        show_personal_data: clear ID numbers and phones.
        now: the report's time (naive UTC or aware); default now.
        width: the text report's width in columns.
        rows_per_kind: rows of each kind in the text and HTML reports (defaults :data:`TEXT_ROWS_PER_KIND`,
            :data:`HTML_ROWS_PER_KIND`).

    Returns:
        The report's head.

    Raises:
        ReportUsageError: an unknown format.
        RunNotFound: no run has this id.
    """
    if fmt not in FORMATS:
        raise ReportUsageError(N_("unknown format {fmt!r}; one of {formats}"), fmt=fmt, formats=", ".join(FORMATS))
    with engine.connect() as conn:
        report = load_report(conn, run_id, now=now, show_personal_data=show_personal_data)
        if fmt == "json":
            write_json(conn, report, out)
        elif fmt == "csv":
            write_csv(conn, report, out)
        elif fmt == "text":
            write_text(conn, report, out, width=width, rows_per_kind=rows_per_kind or TEXT_ROWS_PER_KIND)
        else:
            write_html(conn, report, out, rows_per_kind=rows_per_kind or HTML_ROWS_PER_KIND)
    return report


def audit_personal_data(engine: Engine, run_id: int, *, fmt: str, output: str, reason: str | None,
                        actor: str) -> int:
    """Record that ``actor`` exports run ``run_id`` with clear ID numbers and phones; returns the audit row id.

    The row: ``actor``, ``action`` = :data:`PERSONAL_DATA_ACTION`, ``target`` = ``run:<id>``, ``reason`` (masked),
    ``details`` = format, output and how many of the run's rows are about volunteers.

    Raises:
        ReportUsageError: no reason, or a blank one.
        RunNotFound: no run has this id.
    """
    if reason is None or not reason.strip():
        raise ReportUsageError(N_("--show-personal-data needs --reason: why the ID numbers and phones are needed "
                                  "(it goes to the audit table)"))
    with engine.begin() as conn:
        get_run(conn, run_id)
        d = Discrepancy.__table__
        volunteer_rows = conn.execute(select(func.count()).where(d.c.run_id == run_id,
                                                                  d.c.entity == "volunteer")).scalar_one()
        details = {"run_id": run_id, "format": fmt, "output": output, "volunteer_rows": int(volunteer_rows)}
        return int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
            at=utcnow(), actor=actor, action=PERSONAL_DATA_ACTION, target=f"run:{run_id}",
            reason=mask_text(reason.strip()), details=_dumps(details))).inserted_primary_key[0])


@contextmanager
def _atomic_text_file(path: Path, *, bom: bool) -> Iterator[IO[str]]:
    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReportUsageError(N_("cannot write {path}: no folder {folder}"), path=path, folder=folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_to_path(engine: Engine, run_id: int, fmt: str, output: Path | None, *, show_personal_data: bool = False,
                   reason: str | None = None, actor: str = "unknown", now: dt.datetime | None = None,
                   width: int = 100) -> tuple[RunReport, int | None]:
    """The ``report export`` command: audit first (with ``show_personal_data``), then write the report to
    ``output`` (atomically) or to stdout.

    Args:
        engine: the local store.
        run_id: the run.
        fmt: one of :data:`FORMATS`.
        output: the file to write (replaced when complete), or ``None`` for stdout.
        show_personal_data: clear ID numbers and phones (needs ``reason``; audited).
        reason: why, for the audit row.
        actor: who, for the audit row (the CLI passes the OS user).
        now: the report's time; default now.
        width: the text report's width in columns.

    Returns:
        (the report's head, the audit row id or ``None``).

    Raises:
        ReportUsageError: an unknown format, a missing reason, an output folder that does not exist.
        RunNotFound: no run has this id.
    """
    if fmt not in FORMATS:
        raise ReportUsageError(N_("unknown format {fmt!r}; one of {formats}"), fmt=fmt, formats=", ".join(FORMATS))
    get_run(engine, run_id)
    if output is not None and not output.expanduser().parent.is_dir():
        raise ReportUsageError(N_("cannot write {path}: no folder {folder}"), path=output,
                               folder=output.expanduser().parent)
    audit_id = None
    if show_personal_data:
        audit_id = audit_personal_data(engine, run_id, fmt=fmt, output=str(output) if output else "stdout",
                                       reason=reason, actor=actor)
    if output is None:
        report = export_run(engine, run_id, fmt, sys.stdout, show_personal_data=show_personal_data, now=now,
                            width=width)
        sys.stdout.flush()
    else:
        with _atomic_text_file(output, bom=fmt == "csv") as out:
            report = export_run(engine, run_id, fmt, out, show_personal_data=show_personal_data, now=now,
                                width=width)
    return report, audit_id
