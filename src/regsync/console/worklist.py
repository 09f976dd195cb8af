"""``regsync report worklist``: the worklists (待办清单, issue 15, point 2) as a spreadsheet, CSV or HTML page, for a
city, an organization or the whole province (:mod:`regsync.reports.worklist`).

Exit codes: 0 written; 1 the store is unusable; 2 a usage error (an unknown format, a malformed city or one not
of the province, an unknown organization, ``--show-personal-data`` without ``--reason``, ``--split city`` without a folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.common import ActorOpt, ConfigOpt, command_errors, err, setup
from regsync.db.outbox_admin import default_actor
from regsync.db.store import StoreError, open_store
from regsync.domain.masking import mask_text
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.reports.data import ReportUsageError
from regsync.reports.worklist import counts_of, open_worklist
from regsync.reports.worklist_render import write_worklist

HELP = N_("Worklists: every discrepancy of the latest reconcile and every failed record as a work item: the record "
          "(name, the platform's key), the reason in words and what to do, the organization that must do it (with "
          "its contact, county and city on its line), and whether it is new, carried over or resolved since the last "
          "period (one period per reconcile run; records blocked behind a refused one are counted on its item). "
          "--city limits the list to one city; --org to the items one organization answers for or oversees "
          "as their county- or city-level unit or community station; --split city writes one file per city into "
          "the --output folder. xlsx (Chinese headings, frozen, filtered), csv "
          "(UTF-8 with BOM, for Excel) or html (one page, no network). ID numbers and phones masked unless "
          "--show-personal-data (needs --reason; audited, action worklist_personal_data).")


def worklist_command(
        config: ConfigOpt = None,
        city: Annotated[str | None, typer.Option("--city", help="Only this city (4-digit GB/T 2260 code, e.g. "
                                                               "2301).")] = None,
        org: Annotated[str | None, typer.Option("--org", help="Only the items this organization (its platform "
                                                             "key) answers for or oversees as their county- or "
                                                             "city-level unit or community station.")] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="xlsx, csv or html.")] = "xlsx",
        output: Annotated[Path, typer.Option("--output", "-o", help="The file to write, or a folder (a file named "
                                                                    "worklist-<city>-<date> in it).")] = Path("."),
        split: Annotated[str | None, typer.Option("--split", help="`city`: one file per city, into the --output "
                                                                 "folder.")] = None,
        show_personal_data: Annotated[bool, typer.Option(
            "--show-personal-data", help="Clear ID numbers and phones (audited; needs --reason).")] = False,
        reason: Annotated[str | None, typer.Option(
            "--reason", help="Why the personal data is needed (goes to the audit table).")] = None,
        actor: ActorOpt = None) -> None:
    """Write the worklists."""
    settings = setup(config, False)
    try:
        if split not in (None, "city"):
            raise ReportUsageError(_("--split takes only city; got {value}").format(value=split))
        with command_errors():
            engine = open_store(settings.database)
            try:
                wl = open_worklist(engine, city=city, org=org, show_personal_data=show_personal_data, reason=reason,
                                   actor=actor or default_actor(), fmt=fmt.lower(), output=str(output))
                written = write_worklist(wl, fmt.lower(), output, split=split == "city")
                counts = counts_of(wl)  # of what the file holds: the city's or org's, not the province's
            except SQLAlchemyError as exc:
                orig = getattr(exc, "orig", None) or exc
                raise StoreError(mask_text(f"{type(orig).__name__}: {str(orig).strip().splitlines()[0]}")) from exc
            finally:
                engine.dispose()
    except ReportUsageError as exc:
        err.print(_("[red]usage error:[/red] {message}").format(message=escape(str(exc))), highlight=False)
        raise typer.Exit(2) from exc
    for path, n in written:
        err.print(escape(_("wrote {path} ({count} items)").format(path=path, count=n)), highlight=False)
    err.print(escape(_("list no. {gen}: {new} new, {carried} carried over, {resolved} resolved").format(
        gen=wl.run.gen, new=counts["new"], carried=counts["carried"], resolved=counts["resolved"])), highlight=False)
    if wl.audit_id is not None:
        err.print(escape(_("personal data shown: audit #{id}").format(id=wl.audit_id)), highlight=False)
