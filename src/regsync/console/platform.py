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

from regsync.console.common import err, open_checked_store, print_error, setup
from regsync.db.mapping.check import CheckReport, Finding, check_configured
from regsync.db.mapping.install import InstallError, install, status, uninstall
from regsync.db.mapping.load import MappingError, load_mapping
from regsync.db.mapping.model import PlatformMapping
from regsync.db.store import missing_sqlite_file
from regsync.domain.kinds import KINDS
from regsync.domain.masking import mask_text
from regsync.i18n import Phrase, explain, gettext_noop
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.settings import env_epilog, env_help

platform_app = typer.Typer(help=Phrase(N_("The platform's own tables, through the mapping (docs/connect-platform.md). "
                                         "{settings}"), settings=env_help("database")), no_args_is_help=True)

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}
#: A finding's severity → its word.
SEVERITY_WORDS = {"error": gettext_noop("error"), "warning": gettext_noop("warning"), "info": gettext_noop("info")}


def print_check(report: CheckReport, out: Console | None = None) -> None:
    """The report as a terminal shows it: one table per kind (and one for where regsync's tables go), then the
    summary line.

    Args:
        report: what :func:`regsync.db.mapping.check.check_platform` found.
        out: where to print (stdout by default).
    """
    out = out or Console()
    out.print(escape(_("platform check: mapping {mapping} ({file}) on {engine}")).format(
        mapping="[bold]" + escape(report.mapping) + "[/bold]", file=escape(report.file), engine=report.engine),
        highlight=False)
    groups: dict[str, list[Finding]] = {}
    for f in report.findings:
        groups.setdefault(f.kind or "store", []).append(f)
    for group in [*KINDS, "store"]:
        findings = groups.get(group)
        if not findings:
            continue
        tables = sorted({f.table for f in findings if f.table and f.kind})
        title = f"{group}" + (f" ({', '.join(tables)})" if tables else "" if group != "store" else
                              " " + _("(where regsync's own tables go)"))
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        table.add_column(_("severity"), no_wrap=True)
        table.add_column(_("code / mapping key / column"), overflow="fold", max_width=44)
        table.add_column(_("rows"), justify="right", no_wrap=True)
        table.add_column(_("samples"), overflow="fold", max_width=24)
        table.add_column(_("what"), ratio=1)
        for f in findings:
            where = "\n".join(filter(None, [f.code, f.key, f.column and _("column {column}").format(
                column=f.column)]))
            table.add_row(f"[{_STYLE[f.severity]}]" + escape(_(SEVERITY_WORDS[f.severity])) + "[/]", escape(where),
                          "" if f.count is None else f"{f.count:,}", escape("\n".join(f.samples)), escape(f.message))
        out.print(table)
    verdict = ("[green]" + escape(_("no errors")) + "[/green]" + escape(_(": platform install may go ahead"))
               if report.errors == 0 else
               "[red]" + escape(_("platform install would refuse")) + "[/red]"
               + escape(_(" until the errors are fixed")))
    out.print(escape(_("{errors} error(s), {warnings} warning(s), {infos} info: ")).format(
        errors=report.errors, warnings=report.warnings, infos=report.infos) + verdict, highlight=False)


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
            print_error(_("configuration error:"),
                        _("no database at {path} (database.url, REGSYNC_DATABASE_URL)").format(path=missing))
            raise typer.Exit(2)
        report = check_configured(engine, settings.database, mapping)
    except MappingError as exc:
        _print_mapping_error(exc)
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        print_error(_("cannot read the platform's database:"), mask_text(str(orig)))
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
        _print_mapping_error(exc)
        raise typer.Exit(2) from exc


def _print_mapping_error(exc: MappingError) -> None:
    """A mapping file's problems on stderr, one line each under the file's name (the problems are the mapping
    loader's words, naming the mapping's keys)."""
    err.print("[red]" + escape(_("mapping error")) + "[/red] " + escape(_("in {file}:").format(file=exc.file)),
              highlight=False)
    for key, message in exc.problems:
        err.print(f"  {escape(key) + ': ' if key else ''}{escape(message)}", highlight=False)


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
            print_error(_("not installed:"), _("platform check found {count} error(s)").format(count=report.errors))
            raise typer.Exit(1)
        done = install(engine, mapping, platform_schema=settings.database.platform_schema)
    except InstallError as exc:
        print_error(_("not installed:"), mask_text(explain(exc)))
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    tables = sorted({o["table"] for o in done.objects if o["table"]})
    triggers = sum(1 for o in done.objects if o["type"] == "trigger")
    _emit({"installed": mapping.name, "fingerprint": done.fingerprint, "objects": done.objects,
           "warnings": report.warnings, "installed_at": done.installed_at}, json_output,
          escape(_("installed mapping {mapping}: {triggers} trigger(s) on {tables}, {views} view(s) ({warnings} "
                   "warning(s) from check)")).format(
              mapping="[bold]" + escape(mapping.name) + "[/bold]", triggers=triggers, tables=escape(", ".join(tables)),
              views=sum(1 for o in done.objects if o["type"] == "view"), warnings=report.warnings))


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
        _emit({"uninstalled": None}, json_output, escape(_("nothing was installed")))
        return
    _emit({"uninstalled": before.mapping.name, "objects": before.objects}, json_output,
          escape(_("uninstalled mapping {mapping}: {count} object(s) dropped")).format(
              mapping="[bold]" + escape(before.mapping.name) + "[/bold]", count=len(before.objects)))


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
        line = escape(_("mapping {mapping} installed and current")).format(
            mapping="[bold]" + escape(st.mapping) + "[/bold]")
    elif st.installed is None:
        line = ("[red]" + escape(_("mapping {mapping} is not installed").format(mapping=st.mapping)) + "[/red]"
                + escape(_(": `regsync platform install`")))
    elif not st.current:
        line = ("[yellow]" + escape(_("installed mapping {mapping} ({at}) is not the mapping file's current form")
                                    .format(mapping=st.installed, at=st.installed_at)) + "[/yellow]"
                + escape(_(": `regsync platform check`, then `regsync platform install`")))
    else:
        line = ("[red]" + escape(_("installed objects missing:")) + "[/red] " + escape(", ".join(st.missing))
                + escape(_(": `regsync platform install`")))
    _emit(st.as_dict(), json_output, line)
    raise typer.Exit(0 if st.ok else 3)
