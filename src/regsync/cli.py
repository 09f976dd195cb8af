"""The ``regsync`` command line (Typer on Click, Rich for the terminal).

Exit codes (design.md, "Operator commands"): 0 the run completed (also when some records failed on their
data: the run is *partial*), 1 the run failed, 2 a usage or configuration error, 3 unhealthy. Under
``--json`` stdout holds only the JSON; logs go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from regsync.settings import ConfigError, Settings, env_help, load_settings

app = typer.Typer(help="regsync: keeps a province's volunteer platform in step with the national volunteer "
                       "registry.", no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_app = typer.Typer(help="The local store's schema. " + env_help("database"), no_args_is_help=True)
app.add_typer(db_app, name="db")

err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (or REGSYNC_CONFIG).",
                                                exists=False, dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """Report the errors a command's user can act on, with their exit codes: a configuration error (2), an
    unusable local store (1); no traceback."""
    from regsync.commands import StoreError

    try:
        yield
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except StoreError as exc:
        err.print(f"[red]local store:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@contextlib.contextmanager
def stop_on_signal() -> Iterator[Callable[[], bool]]:
    """While in the block, the first SIGINT or SIGTERM only asks the work to stop at the next safe point
    (between steps: claims released, the run recorded) and restores the previous handler, so that a second
    signal acts as usual (stops at once). Yields the stop flag's reader."""
    flag = threading.Event()
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        flag.set()
        err.print(f"stopping after the current step ({signal.Signals(signum).name}; again to stop at once)")
        for sig, prev in previous.items():
            signal.signal(sig, prev)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield flag.is_set
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _setup(config: Path | None, json_output: bool) -> Settings:
    from regsync.logs import configure_logging

    settings = _settings(config)
    configure_logging(settings.log)
    return settings


def show_progress(json_output: bool) -> bool:
    """Whether to draw progress: only in a terminal and never under ``--json``."""
    return not json_output and sys.stdout.isatty() and sys.stderr.isatty()


def print_json(data: Any) -> None:
    """Write ``data`` as one JSON object on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------ db
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, revision: str = typer.Argument("head")) -> None:
    """Migrate the local store to the newest schema (creates the tables and outbox triggers)."""
    from regsync.commands import open_store
    from regsync.db.migrate import current_revision, upgrade

    settings = _setup(config, False)
    try:
        engine = open_store(settings.database.url, migrated=False)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    try:
        upgrade(engine, revision)
        err.print(f"database at revision {current_revision(engine) or 'none (empty)'}")
    except Exception as exc:  # noqa: BLE001 — report and exit non-zero
        from regsync.masking import mask_text

        err.print(f"[red]migration failed:[/red] {mask_text(str(getattr(exc, 'orig', None) or exc))}",
                  highlight=False)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Print the schema revision of the local store (``none`` when empty)."""
    from regsync.db.migrate import current_revision, head_revision
    from regsync.db.session import make_engine

    settings = _setup(config, False)
    engine = make_engine(settings.database.url)
    rev = current_revision(engine)
    typer.echo(f"{rev or 'none'} (newest: {head_revision()})")
    engine.dispose()


# ------------------------------------------------------------------------------------------------ generate
@app.command(help="Fill the local store with a generated province-shaped data set (design.md, last section). "
                  + env_help("database"))
def generate(config: ConfigOpt = None,
             scale: Annotated[float, typer.Option(help="1.0 = the province: 3.2 M volunteers, 29 M service "
                                                       "records.", min=0.00001)] = 0.001,
             seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
             append: Annotated[bool, typer.Option(
                 help="Add to a store that already holds volunteers (the same seed makes the same people "
                      "again: duplicates).")] = False,
             json_output: JsonOpt = False) -> None:
    """Generate a province-shaped data set into the local store."""
    from regsync.commands import run_generate

    settings = _setup(config, json_output)
    with command_errors():
        summary = run_generate(settings, scale=scale, seed=seed, progress=show_progress(json_output),
                               append=append)
    if json_output:
        print_json(summary)
    else:
        from regsync.commands import print_generate_summary
        print_generate_summary(summary)


# ------------------------------------------------------------------------------------------------ sync
@app.command(help="Run one outbound pass: push every queued local change to the registry. "
                  + env_help("database", "registry", "relay"))
def sync(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Run one outbound pass."""
    from regsync.commands import print_sync_summary, run_sync

    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors():
        code, summary = run_sync(settings, progress=show_progress(json_output), stop=stopping)
    if json_output:
        print_json(summary)
    else:
        print_sync_summary(summary)
    raise typer.Exit(code)


# ------------------------------------------------------------------------------------------------ outbox
outbox_app = typer.Typer(help="See what waits in the outbox and why; retry or discard it (audited). "
                              + env_help("database"), no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")

KindOpt = Annotated[str | None, typer.Option(
    "--kind", help="Only records of this kind: org, volunteer, membership, activity, service_record.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; goes to the audit table).")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who, for the audit table (default: OS user).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")]
TargetsArg = Annotated[list[str] | None, typer.Argument(
    metavar="ID|KIND:LOCAL_ID", help="Outbox row ids, or records as KIND:LOCAL_ID (e.g. volunteer:42).",
    show_default=False)]


def _outbox_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an operator function; usage errors exit 2, an unreachable store exits 1."""
    from regsync.operator import OperatorUsageError, StoreError

    try:
        return fn(*args, **kwargs)
    except OperatorUsageError as exc:
        err.print(f"[red]usage error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    except StoreError as exc:
        err.print(f"[red]local store unavailable:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc


@outbox_app.command("list", help="One line per record waiting in the outbox: state, code, reason (masked), "
                                 "attempts, next attempt (+08:00), age of its oldest change and its row ids; "
                                 "failed first. " + env_help("database"))
def outbox_list(config: ConfigOpt = None,
                state: Annotated[list[str] | None, typer.Option(
                    "--state", help="Only rows in this state: pending, deferred, blocked, failed or "
                                    "discarded (repeatable; default: all not yet sent).")] = None,
                code: Annotated[str | None, typer.Option("--code", help="Only rows with this code.")] = None,
                kind: KindOpt = None,
                limit: Annotated[int, typer.Option("--limit", min=1, max=10000,
                                                   help="Records per page.")] = 100,
                offset: Annotated[int, typer.Option("--offset", min=0, help="Records to skip.")] = 0,
                json_output: JsonOpt = False) -> None:
    """List the outbox's waiting records."""
    from regsync.operator import parse_kind, print_listing, run_list

    settings = _setup(config, json_output)
    kind = _outbox_call(parse_kind, kind) if kind else None
    listing = _outbox_call(run_list, settings, states=state or None, code=code, kind=kind, limit=limit,
                           offset=offset)
    if json_output:
        print_json(listing.as_dict())
    else:
        print_listing(listing)


@outbox_app.command("retry", help="Send records again: their failed, blocked and deferred rows go back to "
                                  "pending, now, with attempts reset. Audited. " + env_help("database"))
def outbox_retry(reason: ReasonOpt, targets: TargetsArg = None, config: ConfigOpt = None,
                 code: Annotated[str | None, typer.Option("--code", help="Every failed or blocked record "
                                                                         "with this code.")] = None,
                 all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed and blocked "
                                                                               "record.")] = False,
                 kind: KindOpt = None, actor: ActorOpt = None,
                 dry_run: DryRunOpt = False, json_output: JsonOpt = False) -> None:
    """Retry outbox records."""
    from regsync.operator import Selection, parse_kind, parse_targets, print_action, run_action

    settings = _setup(config, json_output)
    row_ids, records = _outbox_call(parse_targets, targets or [])
    selection = Selection(row_ids=row_ids, records=records, code=code, all_failed=all_failed,
                          kind=_outbox_call(parse_kind, kind) if kind else None)
    result = _outbox_call(run_action, settings, "retry", selection, reason=reason, actor=actor,
                          dry_run=dry_run)
    if json_output:
        print_json(result.as_dict())
    else:
        print_action(result)


@outbox_app.command("discard", help="Drop records from the sync: their waiting rows become discarded and "
                                    "are never sent. Asks first unless --yes; with no terminal to ask on, "
                                    "refuses (exit 2). Audited. " + env_help("database"))
def outbox_discard(reason: ReasonOpt, targets: TargetsArg = None, config: ConfigOpt = None,
                   code: Annotated[str | None, typer.Option("--code", help="Every failed or blocked record "
                                                                           "with this code.")] = None,
                   kind: KindOpt = None, actor: ActorOpt = None,
                   yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                   dry_run: DryRunOpt = False, json_output: JsonOpt = False) -> None:
    """Discard outbox records."""
    from regsync import operator as op

    settings = _setup(config, json_output)
    row_ids, records = _outbox_call(op.parse_targets, targets or [])
    selection = op.Selection(row_ids=row_ids, records=records, code=code,
                             kind=_outbox_call(op.parse_kind, kind) if kind else None)
    _outbox_call(selection.validate, allow_all_failed=False)
    _outbox_call(op.check_reason, reason)
    if not (yes or dry_run):
        if not op.stdin_is_tty():
            err.print("refusing to discard: no terminal to confirm on; pass --yes to discard without asking")
            raise typer.Exit(2)
        preview = _outbox_call(op.run_action, settings, "discard", selection, reason=reason, actor=actor,
                               dry_run=True)
        if preview.affected:
            kinds = ", ".join(f"{k} {v}" for k, v in preview.by_kind.items())
            if not typer.confirm(f"Discard {preview.affected} records ({kinds})? They will not be sent.",
                                 err=True):
                err.print("nothing discarded")
                raise typer.Exit(1)
    result = _outbox_call(op.run_action, settings, "discard", selection, reason=reason, actor=actor,
                          dry_run=dry_run)
    if json_output:
        print_json(result.as_dict())
    else:
        op.print_action(result)


# ------------------------------------------------------------------------------------------------ demo
@app.command(help="The main job on the embedded defaults: a SQLite file and the sandbox registry on a free "
                  "loopback port; generate a province, push it all, read the registry's export back and "
                  "compare. Starts afresh in WORKDIR and keeps both databases there for inspection.")
def demo(scale: Annotated[float, typer.Option(help="Data set scale (1.0 = the province).", min=0.00001)] = 0.003,
         seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
         workdir: Annotated[Path, typer.Option(help="Work directory (emptied of an earlier demo).")] = Path(
             "regsync-demo"),
         sign_method: Annotated[str, typer.Option(help="HMAC-SHA256 or HMAC-SM3.")] = "HMAC-SHA256",
         faults: Annotated[str | None, typer.Option(
             help="Faults for the sandbox registry, NAME=VALUE[,NAME=VALUE…] (registry-api.md §8): latency_ms, "
                  "error_rate, lost_answer_rate, rate_limit_rps, maintenance_s, token_ttl_s, clock_offset_s, "
                  "feed_duplicate_rate, feed_retention_s, gateway_body_limit, firewall_rate, "
                  "retry_after_http_date.")] = None,
         json_output: JsonOpt = False) -> None:
    """Run the end-to-end demo."""
    from regsync.demo import print_demo_summary, run_demo
    from regsync.logs import configure_logging
    from regsync.settings import LogSettings

    configure_logging(LogSettings(level="WARNING"))
    try:
        summary = run_demo(workdir=workdir, scale=scale, seed=seed, sign_method=sign_method,
                           progress=show_progress(json_output), faults=faults)
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if json_output:
        print_json(summary)
    else:
        print_demo_summary(summary)
    raise typer.Exit(0 if summary.get("status") in ("success", "partial") else 1)


# --- reconcile, adopt, resync (issue 5) ---
def _print_findings(title: str, summary: dict[str, Any], *, limit: int = 30) -> None:
    """A Rich table of a reconcile, adopt or resync summary (counts by kind, then the first findings)."""
    from rich import box
    from rich.table import Table

    out = Console()
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("discrepancy")
    table.add_column("found", justify="right")
    table.add_column("repaired", justify="right")
    for kind, n in summary.get("discrepancies", {}).items():
        table.add_row(kind, f"{n:,}", f"{summary.get('repaired', {}).get(kind, 0):,}")
    if not summary.get("discrepancies"):
        table.add_row("(none)", "0", "0")
    out.print(table)
    listed = summary.get("listed") or []
    if listed:
        rows = Table(box=box.SIMPLE_HEAD, title=f"first {min(limit, len(listed))} of them")
        for col in ("kind", "entity", "local id", "registry id", "fields", "action"):
            rows.add_column(col)
        for d in listed[:limit]:
            action = f"{d['action']} ({d['action_state']})" if d.get("action") else ""
            rows.add_row(d["kind"], d["entity"], str(d.get("local_id") or ""), d.get("registry_id") or "",
                         ", ".join(d.get("fields") or []), action)
        out.print(rows)
    if summary.get("error"):
        out.print(f"[red]error:[/red] {summary['error']}", highlight=False)


@app.command(help="Compare both sides in full (design.md, flow 3): stream the registry's exports against the local "
                  "records and links, classify every difference, and with --repair queue the fixes policy allows "
                  "(push, pull, relink). Every run is kept (run, discrepancy). " + env_help("database", "registry"))
def reconcile(config: ConfigOpt = None,
              kind: Annotated[list[str] | None, typer.Option(
                  "--kind", help="Only these kinds (repeatable): orgs, volunteers, memberships, activities, "
                                 "service_records.")] = None,
              region: Annotated[str | None, typer.Option(
                  "--region", help="Only records of this GB/T 2260 region code prefix (e.g. 2301).")] = None,
              repair: Annotated[bool, typer.Option("--repair", help="Queue the fixes policy allows.")] = False,
              json_output: JsonOpt = False) -> None:
    """Reconcile the platform with the registry."""
    from regsync.reconcile import run_reconcile

    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors():
        code, summary = run_reconcile(settings, kinds=kind, region=region, repair=repair,
                                      progress=show_progress(json_output), stop=stopping)
    if json_output:
        print_json({k: summary[k] for k in ("run_id", "status", "discrepancies", "repaired", "seconds")})
    else:
        _print_findings(f"reconcile run {summary['run_id']}: {summary['status']} in {summary['seconds']} s",
                        summary)
    raise typer.Exit(code)


@app.command(help="The first day (design.md, flow 4): link the local records to what the registry already holds, "
                  "by natural keys, before the first push; ambiguous matches are listed for a person, never "
                  "guessed. " + env_help("database", "registry"))
def adopt(config: ConfigOpt = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Match and count only; link nothing.")] = False,
          json_output: JsonOpt = False) -> None:
    """Adopt the registry's existing records."""
    from regsync.adopt import print_adopt_summary, run_adopt

    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors():
        code, summary = run_adopt(settings, dry_run=dry_run, progress=show_progress(json_output), stop=stopping)
    if json_output:
        print_json(summary)
    else:
        print_adopt_summary(summary)
    raise typer.Exit(code)


resync_app = typer.Typer(help="Resync one scope: a reconcile of a volunteer, an org (and its subtree) or a region, "
                              "repaired by policy, audited; safe while the daemon runs. "
                              + env_help("database", "registry"), no_args_is_help=True)
app.add_typer(resync_app, name="resync")
RegistryIdOpt = Annotated[bool, typer.Option("--registry-id", help="The id is a registry id, not a local one.")]
PlanOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan only; change nothing.")]


def _resync(config: Path | None, target: Any, reason: str, actor: str | None, dry_run: bool,
            json_output: bool) -> None:
    from regsync.operator import OperatorUsageError
    from regsync.resync import ResyncUsageError, run_resync

    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors():
        try:
            code, summary = run_resync(settings, target, reason=reason, actor=actor, dry_run=dry_run, stop=stopping)
        except (OperatorUsageError, ResyncUsageError) as exc:
            err.print(f"[red]usage error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
    if json_output:
        print_json(summary)
    else:
        head = "plan" if dry_run else f"resync run {summary['run_id']} (audit #{summary['audit_id']})"
        _print_findings(f"{head} of {summary['target']}: {summary['status']} in {summary['seconds']} s", summary)
    raise typer.Exit(code)


@resync_app.command("volunteer", help="Resync one person (the row, or every row of one ID number) with its "
                                      "memberships and service records. " + env_help("database", "registry"))
def resync_volunteer(reason: ReasonOpt,
                     ident: Annotated[str | None, typer.Argument(metavar="ID", help="Local id (or registry id "
                                                                                    "with --registry-id).")] = None,
                     id_number: Annotated[str | None, typer.Option("--id-number", help="The person's ID number.")
                                          ] = None,
                     registry_id: RegistryIdOpt = False, config: ConfigOpt = None, actor: ActorOpt = None,
                     dry_run: PlanOpt = False, json_output: JsonOpt = False) -> None:
    """Resync one volunteer."""
    from regsync.resync import Target

    if (ident is None) == (id_number is None):
        err.print("[red]usage error:[/red] give a volunteer ID or --id-number, one of them")
        raise typer.Exit(2)
    _resync(config, Target("volunteer", ident, id_number=id_number, registry_id=registry_id), reason, actor,
            dry_run, json_output)


@resync_app.command("org", help="Resync one org; with --subtree, every org under it with their memberships, "
                                "activities and service records. " + env_help("database", "registry"))
def resync_org(ident: Annotated[str, typer.Argument(metavar="ID", help="Local id (or registry id with "
                                                                       "--registry-id).")],
               reason: ReasonOpt,
               subtree: Annotated[bool, typer.Option("--subtree", help="Also the child orgs and their records.")
                                  ] = False,
               registry_id: RegistryIdOpt = False, config: ConfigOpt = None, actor: ActorOpt = None,
               dry_run: PlanOpt = False, json_output: JsonOpt = False) -> None:
    """Resync one org (and its subtree)."""
    from regsync.resync import Target

    _resync(config, Target("org", ident, registry_id=registry_id, subtree=subtree), reason, actor, dry_run,
            json_output)


@resync_app.command("region", help="Resync a region: orgs, volunteers and activities whose region code starts with "
                                   "CODE, and the memberships and service records of those orgs. "
                                   + env_help("database", "registry"))
def resync_region(code: Annotated[str, typer.Argument(metavar="CODE", help="GB/T 2260 code prefix, e.g. 2301.")],
                  reason: ReasonOpt, config: ConfigOpt = None, actor: ActorOpt = None,
                  dry_run: PlanOpt = False, json_output: JsonOpt = False) -> None:
    """Resync one region."""
    from regsync.resync import Target

    _resync(config, Target("region", code), reason, actor, dry_run, json_output)


def _mount_sandbox() -> None:
    try:
        from regsync.sandbox.cli import app as sandbox_app
    except ImportError:  # pragma: no cover - the sandbox ships with regsync
        return
    app.add_typer(sandbox_app, name="sandbox")


_mount_sandbox()


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
