"""``regsync platform …``: the province's own tables, through the mapping (issue 14).

``platform check`` holds the live schema and data against the mapping before anything is installed
(:func:`regsync.db.mapping.check.check_platform`) and lays the findings out here: a Rich table per kind, a summary
line, or ``--json``. ``platform install`` installs the mapping's triggers and views (refusing while the check finds
errors), ``platform uninstall`` takes them away, ``platform status`` says whether they are the mapping's current
form (:mod:`regsync.db.mapping.install`). Exit codes (design.md, "Operator commands"): 0 no error found, 1 errors
found (or the database could not be read), 2 a usage or configuration error (settings, the mapping file).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.common import err, open_checked_store, setup
from regsync.db.mapping.check import CheckReport, Finding, check_configured
from regsync.db.mapping.install import InstallError, install, status, uninstall
from regsync.db.mapping.load import MappingError, load_mapping
from regsync.db.mapping.model import PlatformMapping
from regsync.db.store import missing_sqlite_file
from regsync.domain.kinds import KINDS
from regsync.domain.masking import mask_text
from regsync.i18n import Phrase
from regsync.i18n import gettext_noop as N_
from regsync.settings import env_epilog, env_help

platform_app = typer.Typer(help=Phrase(N_("The platform's own tables, through the mapping (docs/connect-platform.md). "
                                         "{settings}"), settings=env_help("database")), no_args_is_help=True)

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def print_check(report: CheckReport, out: Console | None = None) -> None:
    """The report as a terminal shows it: one table per kind (and one for where regsync's tables go), then the
    summary line.

    Args:
        report: what :func:`regsync.db.mapping.check.check_platform` found.
        out: where to print (stdout by default).
    """
    out = out or Console()
    out.print(f"platform check: mapping [bold]{escape(report.mapping)}[/bold] ({escape(report.file)}) on "
              f"{report.engine}", highlight=False)
    groups: dict[str, list[Finding]] = {}
    for f in report.findings:
        groups.setdefault(f.kind or "store", []).append(f)
    for group in [*KINDS, "store"]:
        findings = groups.get(group)
        if not findings:
            continue
        tables = sorted({f.table for f in findings if f.table and f.kind})
        title = f"{group}" + (f" ({', '.join(tables)})" if tables else "" if group != "store" else
                              " (where regsync's own tables go)")
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("code / mapping key / column", overflow="fold", max_width=44)
        table.add_column("rows", justify="right", no_wrap=True)
        table.add_column("samples", overflow="fold", max_width=24)
        table.add_column("what", ratio=1)
        for f in findings:
            where = "\n".join(filter(None, [f.code, f.key, f.column and f"column {f.column}"]))
            table.add_row(f"[{_STYLE[f.severity]}]{f.severity}[/]", escape(where),
                          "" if f.count is None else f"{f.count:,}", escape("\n".join(f.samples)), escape(f.message))
        out.print(table)
    verdict = ("[green]no errors[/green]: platform install may go ahead" if report.errors == 0 else
               "[red]platform install would refuse[/red] until the errors are fixed")
    out.print(f"{report.errors} error(s), {report.warnings} warning(s), {report.infos} info: {verdict}",
              highlight=False)


@platform_app.command("check", epilog=env_epilog("database"))
def check(config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (or "
                                                      "REGSYNC_CONFIG).", dir_okay=False)] = None,
          mapping: Annotated[str | None, typer.Option(
              "--mapping", metavar="NAME_OR_PATH", help="A shipped mapping's name (reference, legacy) or a TOML "
              "file, instead of database.mapping (REGSYNC_MAPPING).")] = None,
          json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing "
                                                    "else.")] = False) -> None:
    """Check the platform's live schema and data against the mapping, before anything is installed.

    Every mismatch is a finding with a severity (an error blocks `platform install`), a code, the mapping's key,
    the table and column, and for the data a count of rows and a few masked samples. Exit 0 with no errors, 1
    with errors, 2 for a usage or configuration error.
    """
    settings = setup(config)
    # the prefix of regsync's tables on SQLite follows the mapping checked (database.table_prefix auto)
    db = settings.database if mapping is None else dataclasses.replace(settings.database, mapping=mapping)
    engine = open_checked_store(settings, migrated=False, database=db)
    try:
        missing = missing_sqlite_file(engine)
        if missing:
            err.print(f"[red]configuration error:[/red] no database at {escape(missing)} "
                      "(database.url, REGSYNC_DATABASE_URL)", highlight=False)
            raise typer.Exit(2)
        report = check_configured(engine, settings.database, mapping)
    except MappingError as exc:
        err.print(f"[red]mapping error[/red] in {escape(exc.file)}:", highlight=False)
        for key, message in exc.problems:
            err.print(f"  {escape(key) + ': ' if key else ''}{escape(message)}", highlight=False)
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        err.print(f"[red]cannot read the platform's database:[/red] {escape(mask_text(str(orig)))}",
                  highlight=False)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    if json_output:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        print_check(report)
    raise typer.Exit(0 if report.errors == 0 else 1)


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (or REGSYNC_CONFIG).",
                                                dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]


def _load(name: str) -> PlatformMapping:
    try:
        return load_mapping(name)
    except MappingError as exc:
        err.print(f"[red]mapping error[/red] in {escape(exc.file)}:", highlight=False)
        for key, message in exc.problems:
            err.print(f"  {escape(key) + ': ' if key else ''}{escape(message)}", highlight=False)
        raise typer.Exit(2) from exc


def _emit(data: dict[str, Any], json_output: bool, line: str) -> None:
    if json_output:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        Console().print(line, highlight=False)


@platform_app.command("install", epilog=env_epilog("database"))
def install_cmd(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Install the mapping's capture triggers and views on the platform's tables (again: the mapping's upgrade).

    Runs `platform check` first and refuses while it finds errors. One transaction on PostgreSQL and SQLite. Exit 0
    installed, 1 refused or failed, 2 a usage or configuration error.
    """
    settings = setup(config)
    mapping = _load(settings.database.mapping)
    engine = open_checked_store(settings)
    try:
        report = check_configured(engine, settings.database)
        if report.errors:
            print_check(report, err)
            err.print(f"[red]not installed:[/red] platform check found {report.errors} error(s)", highlight=False)
            raise typer.Exit(1)
        done = install(engine, mapping, platform_schema=settings.database.platform_schema)
    except InstallError as exc:
        err.print(f"[red]not installed:[/red] {escape(mask_text(str(exc)))}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    tables = sorted({o["table"] for o in done.objects if o["table"]})
    triggers = sum(1 for o in done.objects if o["type"] == "trigger")
    _emit({"installed": mapping.name, "fingerprint": done.fingerprint, "objects": done.objects,
           "warnings": report.warnings, "installed_at": done.installed_at}, json_output,
          f"installed mapping [bold]{escape(mapping.name)}[/bold]: {triggers} trigger(s) on {', '.join(tables)}, "
          f"{sum(1 for o in done.objects if o['type'] == 'view')} view(s) ({report.warnings} warning(s) from check)")


@platform_app.command("uninstall", epilog=env_epilog("database"))
def uninstall_cmd(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Drop the installed triggers and views: the platform's tables are left as they were before the install.

    regsync's own tables stay. Exit 0 (also when nothing was installed), 1 a store error, 2 a configuration error.
    """
    settings = setup(config)
    engine = open_checked_store(settings)
    try:
        before = uninstall(engine)
    finally:
        engine.dispose()
    if before is None:
        _emit({"uninstalled": None}, json_output, "nothing was installed")
        return
    _emit({"uninstalled": before.mapping.name, "objects": before.objects}, json_output,
          f"uninstalled mapping [bold]{escape(before.mapping.name)}[/bold]: {len(before.objects)} object(s) dropped")


@platform_app.command("status", epilog=env_epilog("database"))
def status_cmd(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Whether the installed triggers are the configured mapping's current form. Exit 0 yes, 3 no (install it)."""
    settings = setup(config)
    mapping = _load(settings.database.mapping)
    engine = open_checked_store(settings)
    try:
        with engine.connect() as conn:
            st = status(conn, mapping, platform_schema=settings.database.platform_schema)
    finally:
        engine.dispose()
    if st.ok:
        line = f"mapping [bold]{escape(st.mapping)}[/bold] installed and current"
    elif st.installed is None:
        line = f"[red]mapping {escape(st.mapping)} is not installed[/red]: regsync platform install"
    elif not st.current:
        line = (f"[yellow]installed mapping {escape(st.installed)} ({st.installed_at}) is not the mapping file's "
                "current form[/yellow]: regsync platform check, then regsync platform install")
    else:
        line = f"[red]installed objects missing:[/red] {escape(', '.join(st.missing))}: regsync platform install"
    _emit(st.as_dict(), json_output, line)
    raise typer.Exit(0 if st.ok else 3)
