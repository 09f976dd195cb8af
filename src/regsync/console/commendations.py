"""``regsync commendations``: the annual commendation workflow (年度嘉许, issue 16 point 4;
:mod:`regsync.flows.commendations`).

- ``propose --year Y [--output F.xlsx]``: the proposals for approval, as a spreadsheet;
- ``approve --year Y --file F.xlsx --reason …`` (the rows marked 是) or ``approve --year Y --all --reason …``:
  the commendations created on the platform (audited, action ``commendations.approve``), for the relay to push;
- ``status --year Y``: the year's scheme commendations and their sync state, a refusal explained in words.

Exit codes: 0 done; 1 the store or the registry failed; 2 a usage or configuration error (a year not past, an
unreadable file, an empty reason, a row of another year or a subject not on the platform).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.common import (
    ActorOpt,
    ConfigOpt,
    JsonOpt,
    cell,
    command_errors,
    err,
    open_checked_store,
    print_error,
    print_json,
    setup,
)
from regsync.db.store import StoreError
from regsync.domain.commendations import Choice, rank, tier_words
from regsync.domain.masking import mask_text
from regsync.flows.commendations import (
    STATE_WORDS,
    ApproveResult,
    AwardTerms,
    CommendationUsageError,
    Proposals,
    approvable,
    approve,
    check_year,
    commendation_status,
)
from regsync.flows.operator import OperatorUsageError, check_reason, default_actor
from regsync.flows.runs import open_client, require_registry
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.registry.errors import RegistryError
from regsync.reports.commendations_xlsx import read_choices, write_proposals
from regsync.reports.data import ReportUsageError
from regsync.settings import ConfigError, Settings, env_epilog

commendations_app = typer.Typer(help="The annual commendation scheme (PROVINCIAL_ANNUAL): propose who earned which "
                                     "tier of a year, approve the list, follow the commendations into the registry.",
                                no_args_is_help=True)

YearOpt = Annotated[int, typer.Option("--year", help="The commended year (a past one, +08:00).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; goes to the audit table).")]


def _usage(exc: BaseException) -> typer.Exit:
    print_error(_("usage error:"), exc)
    return typer.Exit(2)


def _store_error(exc: SQLAlchemyError) -> StoreError:
    orig = getattr(exc, "orig", None) or exc
    return StoreError(mask_text(f"{type(orig).__name__}: {str(orig).strip().splitlines()[0]}"))


def _tier_order(item: tuple[str, int]) -> tuple[int, int]:
    """Volunteers first, then orgs; each by tier, lowest first (the scheme's order)."""
    subject, tier = item[0].split(":")
    return (0 if subject == "volunteer" else 1, rank("volunteer" if subject == "volunteer" else "org", tier))


def _proposals_to_file(settings: Settings, year: int, output: Path) -> tuple[int, dict[str, Any]]:
    require_registry(settings)
    engine = open_checked_store(settings)
    try:
        with open_client(settings, None) as client:
            proposals = Proposals(engine, client, year)
            n = write_proposals(proposals, output, year=year)
            return n, proposals.counts
    finally:
        engine.dispose()


@commendations_app.command("propose", help="List who earned which tier of the year by the registry's figure (its "
                           "ACCEPTED service records of the year, from its export), with the platform's figure "
                           "beside it, as a spreadsheet for approval (Chinese headings, frozen, filtered; ID numbers "
                           "masked). Rows whose tier would be higher by the platform's figure are flagged for "
                           "follow-up. Subjects that already hold the tier or a higher one are left out.",
                           epilog=env_epilog("database", "registry"))
def propose(year: YearOpt, config: ConfigOpt = None,
            output: Annotated[Path | None, typer.Option("--output", "-o", help="The file to write (default: "
                                                        "commendations-YEAR.xlsx here).")] = None,
            json_output: JsonOpt = False) -> None:
    """Write the proposals of a year."""
    settings = setup(config, json_output)
    path = output or Path(f"commendations-{year}.xlsx")
    try:
        check_year(year)
        with command_errors():
            try:
                n, counts = _proposals_to_file(settings, year, path)
            except SQLAlchemyError as exc:
                raise _store_error(exc) from exc
    except (CommendationUsageError, ReportUsageError) as exc:
        raise _usage(exc) from exc
    except RegistryError as exc:
        print_error(_("registry:"), mask_text(str(exc)))
        raise typer.Exit(1) from exc
    data = {"file": str(path), "rows": n, "proposed": counts["proposed"], "flagged": counts["flagged"],
            "by_tier": dict(sorted(counts["by_tier"].items())), "records": counts["records"]}
    if json_output:
        print_json(data)
        return
    if counts["records"] == 0 and n == 0:
        err.print(escape(_("no service records of {year}: nothing to propose").format(year=year)), highlight=False)
    err.print(escape(_("wrote {path} ({rows} rows: {proposed} proposed, {flagged} to check before approving)").format(
        path=path, rows=n, proposed=counts["proposed"], flagged=counts["flagged"])), highlight=False)
    for key, count in sorted(counts["by_tier"].items(), key=_tier_order):
        subject, tier = key.split(":")
        who = _("volunteers") if subject == "volunteer" else _("organizations")
        err.print(escape(f"  {tier_words(tier)} ({who}): {count}"), highlight=False)


@commendations_app.command("approve", help="Create the approved commendations on the platform, to be pushed by the "
                           "relay: the rows of --file marked yes (是), or with --all every proposal that is not "
                           "flagged. Audited (action commendations.approve). A subject that already holds the tier "
                           "or a higher one is left as it is; a lower one is revoked first. Running it again "
                           "creates nothing again.", epilog=env_epilog("database", "registry"))
def approve_command(year: YearOpt, reason: ReasonOpt, config: ConfigOpt = None,
                    file: Annotated[Path | None, typer.Option("--file", "-f", help="The proposals file with the "
                                                              "approval column filled.")] = None,
                    approve_all: Annotated[bool, typer.Option("--all", help="Approve every proposal that is not "
                                                              "flagged (reads the registry again).")] = False,
                    awarded_on: Annotated[str | None, typer.Option("--awarded-on", help="The award date "
                                                                   "(YYYY-MM-DD; default today, +08:00).")] = None,
                    issuer: Annotated[str | None, typer.Option("--issuer", envvar="REGSYNC_COMMENDATION_ISSUER",
                                                               help="Who awards it, e.g. 黑龙江省志愿服务联合会 "
                                                               "(required unless set in the environment).")] = None,
                    document_name: Annotated[str | None, typer.Option(
                        "--document-name", envvar="REGSYNC_COMMENDATION_DOCUMENT_NAME",
                        help="The award document's name (required unless set in the environment).")] = None,
                    document_number: Annotated[str | None, typer.Option(
                        "--document-number", envvar="REGSYNC_COMMENDATION_DOCUMENT_NUMBER",
                        help="The award document's number, e.g. 黑志联〔2026〕3号 (required unless set in the "
                        "environment).")] = None,
                    actor: ActorOpt = None, json_output: JsonOpt = False) -> None:
    """Approve the proposals of a year."""
    settings = setup(config, json_output)
    skipped_rows: list[int] = []
    try:
        if (file is None) == (not approve_all):
            raise CommendationUsageError(N_("give --file or --all, one of them"))
        why = check_reason(reason)
        check_year(year)
        day = dt.date.fromisoformat(awarded_on) if awarded_on else None
        terms = AwardTerms.given(year, awarded_on=day, issuer=issuer, document_name=document_name,
                                 document_number=document_number)
        choices: list[Choice] = []
        result = None
        if file is not None:
            choices, source = list(read_choices(file, year=year, skipped=skipped_rows)), f"file:{file.name}"
        if file is None or choices:
            with command_errors():
                require_registry(settings)
                engine = open_checked_store(settings)
                try:
                    with open_client(settings, None) as client:  # the proposals again: the file's tiers are checked
                        fresh = list(Proposals(engine, client, year))
                    if file is None:
                        choices, source = list(approvable(fresh)), "all"
                    result = approve(engine, year, choices, terms=terms, reason=why,
                                     actor=actor or default_actor(), source=source, fresh=fresh)
                except SQLAlchemyError as exc:
                    raise _store_error(exc) from exc
                finally:
                    engine.dispose()
    except (CommendationUsageError, ReportUsageError, OperatorUsageError) as exc:
        raise _usage(exc) from exc
    except ValueError as exc:  # a malformed --awarded-on
        raise _usage(exc) from exc
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc
    except RegistryError as exc:
        print_error(_("registry:"), mask_text(str(exc)))
        raise typer.Exit(1) from exc
    if result is None:  # a file with no row marked yes
        if json_output:
            print_json({**ApproveResult().as_dict(), "follow_up_rows": skipped_rows})
        else:
            err.print(escape(_("no row is marked yes (是): no commendation created")), highlight=False)
            _print_follow_up(skipped_rows)
        return
    if json_output:
        print_json({**result.as_dict(), "follow_up_rows": skipped_rows})
        return
    done = _("{created} commendations created, {revoked} lower ones revoked, {unchanged} already held").format(
        created=len(result.created), revoked=len(result.revoked), unchanged=result.unchanged)
    err.print(escape(done), highlight=False)
    _print_follow_up(skipped_rows)
    for c in result.skipped:
        err.print(escape(_("skipped row {row}: {subject} {id} is not proposed now (it already holds an award of the "
                           "year, or no longer earns {tier}); nothing done").format(
            row=c.row or "?", subject=_("volunteer") if c.subject == "volunteer" else _("organization"),
            id=c.local_id, tier=tier_words(c.tier))), highlight=False)
    if result.audit_id is not None:
        err.print(escape(_("audit #{id}").format(id=result.audit_id)), highlight=False)


def _print_follow_up(rows: list[int]) -> None:
    if rows:
        err.print(escape(_("skipped rows marked yes that only need follow-up (no award proposed): {rows}").format(
            rows=", ".join(str(r) for r in rows))), highlight=False)


@commendations_app.command("status", help="The year's scheme commendations on the platform and their sync state: "
                           "sent, waiting, or refused with the reason in words (for an award not earned, the "
                           "registry's figure and the platform's).", epilog=env_epilog("database"))
def status_command(year: YearOpt, config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Show the year's scheme commendations."""
    settings = setup(config, json_output)
    try:
        check_year(year)
    except CommendationUsageError as exc:
        raise _usage(exc) from exc
    engine = open_checked_store(settings)
    try:
        with command_errors():
            try:
                rows = commendation_status(engine, year)
            except SQLAlchemyError as exc:
                raise _store_error(exc) from exc
    finally:
        engine.dispose()
    if json_output:
        print_json({"year": year, "commendations": [{**r.as_dict(), "explanation": r.explanation()} for r in rows]})
        return
    out = Console()
    if not rows:
        out.print(_("No commendation of the scheme for {year} on the platform.").format(year=year), highlight=False)
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in (_("ID"), _("subject"), _("award"), _("status"), _("sync"), _("explanation")):
        table.add_column(col, overflow="fold")
    for r in rows:
        who = f"{_('volunteer') if r.subject == 'volunteer' else _('organization')} {r.subject_id} {r.name or ''}"
        table.add_row(*(Text(cell(v)) for v in (r.local_id, who.strip(), tier_words(r.tier), r.status_words(),
                                                 _(STATE_WORDS[r.state]), r.explanation() or None)))
    out.print(table)


__all__ = ["approve_command", "commendations_app", "propose", "status_command"]
