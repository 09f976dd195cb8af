"""The annual commendation proposals (年度嘉许拟表彰名单) as a spreadsheet for approval, and the approver's file
read back.

Writing (openpyxl, write-only mode: rows go to the file as they come): one sheet, one row per proposal, headings
in the language in force (Chinese by default), bold, the header row frozen, an auto filter over every column; codes,
keys and ID numbers (masked) are text cells (format ``@``); the figures and the tier's threshold are numbers (hours
with two decimals, services as counts; the unit in its own column) so that sorting works. The approver picks 是 (or
否) in the last column, 批准, from a drop-down list (a data validation; it works in write-only mode).

Reading (:func:`read_choices`): the file must be a proposals file: its first sheet's headings are this module's, in
one of the catalog's languages. The rows whose approval cell says yes: 是, or the word for yes of the language the
file was written in (``yes`` in English) and nothing else (not y, 1, ✓), by the columns' names. The subject, its
platform key and the tier code come from the row itself, so a row the approver deleted or reordered is simply not
there; the tier is only the approver's reading: ``approve`` recomputes the proposals and refuses a tier that differs
(:func:`regsync.flows.commendations.approve`). A follow-up row (flagged, no tier proposed) marked yes is passed
over and reported: there is nothing to approve in it yet.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation

from regsync.domain.commendations import Choice, Proposal, Subject, figure_text, threshold, tier_words
from regsync.i18n import LANGUAGES, translations
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.reports.data import ReportUsageError
from regsync.reports.worklist import place_name

#: Columns: (name, heading, width in characters). The approval column is last.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("subject", N_("Type"), 8),
    ("local_id", N_("Platform key"), 12),
    ("name", N_("Name"), 26),
    ("id_number", N_("ID number (masked)"), 21),
    ("org", N_("Organization"), 30),
    ("city", N_("City"), 14),
    ("year", N_("Year"), 7),
    ("registry_figure", N_("Registry's figure (hours / services)"), 14),
    ("platform_figure", N_("Platform's figure (hours / services)"), 14),
    ("unit", N_("Unit"), 6),
    ("existing", N_("Already awarded"), 12),
    ("tier_words", N_("Proposed award"), 14),
    ("threshold", N_("Award threshold"), 10),
    ("tier", N_("Award code"), 16),
    ("flag", N_("Check before approving"), 46),
    ("approve", N_("Approve (yes/no)"), 10),
)
#: Columns written as text cells.
TEXT_COLUMNS = frozenset({"local_id", "id_number", "tier", "year"})
#: Columns written as numbers (hours with two decimals for volunteers, a count for orgs).
NUMBER_COLUMNS = frozenset({"registry_figure", "platform_figure", "threshold"})
#: The unit of a subject's figures (translated when written).
UNIT_WORDS: dict[str, str] = {"volunteer": N_("h"), "org": N_("services")}
#: The words of a subject type in the file (translated when written; read back in either language).
SUBJECT_WORDS: dict[str, str] = {"volunteer": N_("volunteer"), "org": N_("organization")}
#: The words of the approval column's drop-down (translated when written; yes read back in any language).
YES, NO = N_("yes"), N_("no")

_NAMES = [c[0] for c in COLUMNS]


def headers() -> list[str]:
    """The column headings, in the language in force."""
    return [_(c[1]) for c in COLUMNS]


def _number(subject: Subject, amount: int) -> Decimal:
    """A figure as a spreadsheet number: hours (``Decimal("123.50")`` from hundredths, never a float) or a count."""
    return Decimal(figure_text(subject, amount))


def row_values(p: Proposal, year: int) -> list[Any]:
    """One proposal's cells, in :data:`COLUMNS` order (the approval cell empty): figures and threshold as numbers."""
    need = _number(p.subject, threshold(p.subject, p.tier)) if p.tier else None
    return [_(SUBJECT_WORDS[p.subject]), str(p.local_id), p.name, p.id_number or "", p.org or "",
            place_name(p.city), str(year), _number(p.subject, p.registry_amount),
            _number(p.subject, p.platform_amount), _(UNIT_WORDS[p.subject]), tier_words(p.existing_tier),
            tier_words(p.tier), need, p.tier or "", p.flag_words(), ""]


def _yes_words() -> set[str]:
    """The words read as yes: 是 and the word for yes in every language of the catalog."""
    return {"是", YES.lower(), *(translations(lang).gettext(YES).strip().lower() for lang in LANGUAGES)}


def _heading_sets() -> list[list[str]]:
    """The headings of a proposals file in each language of the catalog (and the English msgids)."""
    out = [[c[1] for c in COLUMNS]]
    out += [[translations(lang).gettext(c[1]) for c in COLUMNS] for lang in LANGUAGES]
    return out


def write_proposals(proposals: Iterable[Proposal], path: Path, *, year: int) -> int:
    """Write ``proposals`` to the workbook ``path`` (written beside it and renamed into place when complete);
    returns the number of rows.

    Raises:
        ReportUsageError: the folder of ``path`` does not exist.
    """
    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReportUsageError(_("cannot write {path}: no folder {folder}").format(path=path, folder=folder))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        n = _write(proposals, Path(tmp), year)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _write(proposals: Iterable[Proposal], path: Path, year: int) -> int:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_("Annual commendations {year}").format(year=year)[:31])
    for i, (_name, _h, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for text in headers():
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    wrap = Alignment(wrap_text=True, vertical="top")
    n = 0
    for p in proposals:
        row = []
        for name, value in zip(_NAMES, row_values(p, year), strict=True):
            cell = WriteOnlyCell(ws, value=value)
            if name in TEXT_COLUMNS:
                cell.number_format = "@"
            elif name in NUMBER_COLUMNS and value is not None:
                cell.number_format = "0.00" if p.subject == "volunteer" else "0"
            elif name == "flag":
                cell.alignment = wrap
            row.append(cell)
        ws.append(row)
        n += 1
    last = get_column_letter(len(COLUMNS))
    ws.auto_filter.ref = f"A1:{last}{n + 1}"
    choice = DataValidation(type="list", formula1=f'"{_(YES)},{_(NO)}"', allow_blank=True)
    choice.add(f"{last}2:{last}{max(n + 1, 2)}")
    ws.data_validations.append(choice)  # write-only sheets take it (written when the sheet is closed)
    wb.save(path)
    return n


def _subject_of(text: str) -> Subject | None:
    """The subject of a type cell, in any language of the catalog (the file may have been written in another)."""
    cell = text.strip().lower()
    for subject, word in SUBJECT_WORDS.items():
        if cell in {word.lower(), *(translations(lang).gettext(word).lower() for lang in LANGUAGES)}:
            return subject  # type: ignore[return-value]  # the keys of SUBJECT_WORDS are subjects
    return None


def read_choices(path: Path, *, year: int, skipped: list[int] | None = None) -> Iterator[Choice]:
    """The approved rows of a proposals file (read-only mode, row by row), each with its row number.

    Args:
        path: the file.
        year: the year it must be of.
        skipped: when given, the row numbers of follow-up rows (no tier proposed) marked yes are added to it.

    Raises:
        ReportUsageError: the file does not exist, is not a workbook, is not a proposals file (its first sheet's
            headings are not this module's, in any language), is of another year, or an approved row has no usable
            type, key or award code.
    """
    if not path.is_file():
        raise ReportUsageError(_("no such file: {path}").format(path=path))
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, InvalidFileException) as exc:
        raise ReportUsageError(_("{path} is not an Excel workbook (.xlsx) that can be read").format(path=path)
                               ) from exc
    rows = None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        head = next(rows, None)
        found = ["" if h is None else str(h).strip() for h in head or ()]
        while found and not found[-1]:
            found.pop()
        if found not in _heading_sets():
            raise ReportUsageError(_("{path} is not a proposals file of regsync commendations propose: its first "
                                     "sheet's headings are not the proposal list's").format(path=path))
        at = {name: i for i, name in enumerate(_NAMES)}
        yes = _yes_words()
        for number, row in enumerate(rows, start=2):
            cells = ["" if v is None else str(v).strip() for v in row]
            cells += [""] * (len(COLUMNS) - len(cells))
            if cells[at["approve"]].replace(" ", "").lower() not in yes:
                continue
            if cells[at["year"]] and cells[at["year"]] != str(year):
                raise ReportUsageError(_("row {row} of {path} is of {found}, not {year}").format(
                    row=number, path=path, found=cells[at["year"]], year=year))
            subject = _subject_of(cells[at["subject"]])
            key, tier = cells[at["local_id"]], cells[at["tier"]]
            if not tier and cells[at["flag"]]:
                if skipped is not None:
                    skipped.append(number)
                continue  # a follow-up row (flagged, no tier proposed): nothing to approve yet
            if subject is None or not key.isdigit() or not tier:
                raise ReportUsageError(_("row {row} of {path} is approved but has no type, platform key or award "
                                         "code").format(row=number, path=path))
            yield Choice(subject, int(key), tier, row=number)
    finally:
        if rows is not None:
            rows.close()  # its sheet stream holds the file open until closed
        wb.close()


__all__ = ["COLUMNS", "NO", "NUMBER_COLUMNS", "SUBJECT_WORDS", "TEXT_COLUMNS", "UNIT_WORDS", "YES", "headers",
           "read_choices", "row_values", "write_proposals"]
