"""Writing a worklist (:mod:`regsync.reports.worklist`) as a spreadsheet, CSV or one HTML page, streamed.

* **xlsx** (openpyxl, write-only mode: rows go to the file as they come): headings in the language in force
  (Chinese by default), bold, the header row frozen, an auto filter over every column, set widths; codes, keys, ID
  numbers and phones are text cells (format ``@``), so that a long number is never turned into ``2.30102E+17``.
* **csv**: UTF-8 with a byte order mark (Excel reads the Chinese right), one line per item; a value of a code
  column made only of digits is written ``="0123"``, the form Excel keeps as text (leading zeros and all digits
  of a long number kept).
* **html**: one self-contained page (no script, nothing fetched: ``default-src 'none'``), grouped by city →
  responsible org (with its contact and station), streamed by :meth:`jinja2.Template.generate`.

A file is written beside its destination and renamed into place when complete.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import IO, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from regsync.db.worklist import count_items
from regsync.domain.clock import to_local
from regsync.i18n import gettext as _
from regsync.i18n import html_lang, translations
from regsync.reports.data import ReportUsageError
from regsync.reports.worklist import (
    HEADERS,
    STATUS_WORDS,
    TEXT_COLUMNS,
    WorkItem,
    Worklist,
    default_name,
    iter_work_items,
    place_name,
    split_cities,
)

__all__ = ["WIDTHS", "write_csv", "write_html", "write_worklist", "write_xlsx"]

#: Column widths of the spreadsheet, in characters (wide enough for a Chinese org name or a reason).
WIDTHS: dict[str, int] = {
    "status": 8, "item_id": 14, "first_seen": 11, "city": 14, "county": 16, "line": 10, "org": 30,
    "contact_name": 10, "contact_phone": 15, "county_org": 26, "city_org": 26, "station": 26, "kind": 12,
    "platform_key": 14, "registry_id": 20, "name": 26, "id_number": 21, "phone": 14, "reason": 30, "action": 46,
    "code": 22, "detail": 30, "city_code": 8, "org_key": 12,
}
_COLUMNS = [f.name for f in fields(WorkItem)]


def write_xlsx(items: Iterable[WorkItem], path: Path, *, title: str) -> int:
    """Write ``items`` to the workbook ``path`` (one sheet, ``title``); returns the number of items."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    for i, name in enumerate(_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = WIDTHS.get(name, 14)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for text in WorkItem.headers():
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    wrap = Alignment(wrap_text=True, vertical="top")
    n = 0
    for item in items:
        row = []
        for name, value in zip(_COLUMNS, item.values(), strict=True):
            cell = WriteOnlyCell(ws, value=value)
            if name in TEXT_COLUMNS:
                cell.number_format = "@"
            elif name in ("reason", "action", "detail"):
                cell.alignment = wrap
            row.append(cell)
        ws.append(row)
        n += 1
    ws.auto_filter.ref = f"A1:{get_column_letter(len(_COLUMNS))}{n + 1}"
    wb.save(path)
    return n


def _text_for_excel(name: str, value: str) -> str:
    return f'="{value}"' if name in TEXT_COLUMNS and value.isdigit() else value


def write_csv(items: Iterable[WorkItem], out: IO[str]) -> int:
    """Write ``items`` as CSV to ``out`` (the caller opens it ``utf-8-sig``); returns the number of items."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(WorkItem.headers())
    n = 0
    for item in items:
        writer.writerow([_text_for_excel(k, v) for k, v in zip(_COLUMNS, item.values(), strict=True)])
        n += 1
    return n


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("regsync.reports", "templates"), extensions=["jinja2.ext.i18n"],
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    return env


def _grouped(items: Iterable[WorkItem]) -> Iterator[dict[str, Any]]:
    city: str | None = None
    org: tuple[str, str, str] | None = None
    for it in items:
        new_city = it.city_code != city
        new_org = new_city or (it.line, it.org, it.org_key) != org
        city, org = it.city_code, (it.line, it.org, it.org_key)
        status = next((k for k, v in STATUS_WORDS.items() if str(v) == it.status), "carried")
        yield {"item": it, "new_city": new_city, "new_org": new_org, "status": status}


def write_html(items: Iterable[WorkItem], out: IO[str], wl: Worklist, *, city: str | None) -> None:
    """Write ``items`` as one HTML page to ``out``, grouped by city → org, with the counts of ``wl``'s run."""
    env = _environment()
    env.install_gettext_translations(translations(), newstyle=True)  # type: ignore[attr-defined]
    with wl.engine.connect() as conn:
        counts = count_items(conn, wl.run.gen, city=city if city is not None else wl.city, org_id=wl.org_id)
    where = place_name(city or wl.city) or _("all cities")
    if wl.org_key:
        where += " · " + _("organization {key}").format(key=wl.org_key)
    title = _("Worklist · {where}").format(where=where)
    made = _("Made {time} (+08:00), list no. {gen}; items of the latest reconcile and failed records.").format(
        time=_local(wl.made_at).strftime("%Y-%m-%d %H:%M"), gen=wl.run.gen)
    cards = [(_("open items"), counts.get("new", 0) + counts.get("carried", 0)),
             (str(STATUS_WORDS["new"]), counts.get("new", 0)), (str(STATUS_WORDS["carried"]), counts.get("carried", 0)),
             (str(STATUS_WORDS["resolved"]), counts.get("resolved", 0))]
    h = {k: str(v) for k, v in HEADERS.items()}
    h["contact"] = h["contact_name"]
    page = env.get_template("worklist.html.j2").generate(
        lang=html_lang(), title=title, made=made, cards=cards, rows=_grouped(items), h=h,
        clear=wl.show_personal_data, none_city=_("(city unknown)"), empty=_("Nothing to do: no open items."),
        clear_notice=_("This list holds clear ID numbers and phone numbers (personal information); making it was "
                       "recorded in the audit table. Keep it only as long as the reason given needs it."))
    for chunk in page:
        out.write(chunk)


@contextmanager
def _atomic(path: Path, *, text: bool) -> Iterator[Any]:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReportUsageError(_("cannot write {path}: no folder {folder}").format(path=path, folder=folder))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        if text:
            with os.fdopen(fd, "w", encoding="utf-8-sig" if path.suffix == ".csv" else "utf-8", newline="") as out:
                yield out
        else:
            os.close(fd)
            yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_worklist(wl: Worklist, fmt: str, output: Path, *, split: bool = False) -> list[tuple[Path, int]]:
    """Write ``wl`` in ``fmt`` to the file ``output``, or with ``split`` one file per city into the folder
    ``output`` (``worklist-<city>-<date>.<fmt>``). Returns (path, items) per file written.

    Raises:
        ReportUsageError: a folder that does not exist.
    """
    output = output.expanduser()
    day = _local(wl.made_at).date()
    if split:
        if not output.is_dir():
            raise ReportUsageError(_("--split city needs --output to be a folder that exists: {path}").format(
                path=output))
        with wl.engine.connect() as conn:
            cities = [wl.city] if wl.city else split_cities(conn, wl)
        return [(p, _write_one(wl, fmt, p, city))
                for city in cities for p in [output / default_name(city or "unknown", fmt, day)]]
    if output.is_dir():
        output = output / default_name(wl.city, fmt, day)
    return [(output, _write_one(wl, fmt, output, wl.city))]


def _write_one(wl: Worklist, fmt: str, path: Path, city: str | None) -> int:
    with wl.engine.connect() as conn:
        items = iter_work_items(conn, wl, city=city)
        if fmt == "xlsx":
            with _atomic(path, text=False) as tmp:
                return write_xlsx(items, tmp, title=_("Worklist"))
        with _atomic(path, text=True) as out:
            if fmt == "csv":
                return write_csv(items, out)
            counter = _Counter(items)
            write_html(counter, out, wl, city=city)
            return counter.n


def _local(value: dt.datetime) -> dt.datetime:
    local = to_local(value)
    assert local is not None  # a time given is a time returned
    return local


class _Counter:
    """An iterable of items that counts what it gave."""

    def __init__(self, items: Iterable[WorkItem]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> Iterator[WorkItem]:
        for it in self.items:
            self.n += 1
            yield it
