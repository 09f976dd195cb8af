"""The ``regsync`` command line (Typer on Click, Rich for the terminal).

Exit codes (design.md, "Operator commands"): 0 the run completed (also when some records failed on their
data: the run is *partial*), 1 the run failed, 2 a usage or configuration error, 3 unhealthy. Under
``--json`` stdout holds only the JSON; logs go to stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from regsync.console.alarms import alarms_app
from regsync.console.audit import audit_app
from regsync.console.commendations import commendations_app
from regsync.console.common import ActorOpt, ConfigOpt, JsonOpt, command_errors, print_error, print_json
from regsync.console.common import setup as _setup
from regsync.console.conflicts import print_conflict, print_resolution
from regsync.console.conflicts import print_listing as print_conflict_listing
from regsync.console.demo_summary import print_demo_summary
from regsync.console.helptext import choose_language, translate_help
from regsync.console.outbox import kind_label, nothing_matched, print_action, print_listing
from regsync.console.platform import platform_app
from regsync.console.progress import progress_bars
from regsync.console.sandbox_seed import seed as sandbox_seed
from regsync.console.show import TEXT as SHOW_TEXT
from regsync.console.show import show as show_command
from regsync.console.status import print_status
from regsync.console.summaries import print_adopt_summary, print_generate_summary, print_sync_summary
from regsync.console.worklist import HELP as WORKLIST_HELP
from regsync.console.worklist import worklist_command
from regsync.db.hashkey import rekey_store
from regsync.db.locks import SingletonLock
from regsync.db.migrate import current_revision, head_revision, upgrade
from regsync.db.session import make_engine
from regsync.db.store import StoreError, open_store
from regsync.domain.masking import mask_text
from regsync.domain.words import DISCREPANCY_WORDS, FLOW_WORDS, KIND_WORDS, word
from regsync.flows import operator as op
from regsync.flows.adopt import run_adopt
from regsync.flows.conflicts import (
    get_conflict,
    list_conflicts,
    resolve_conflict,
    show_live,
)
from regsync.flows.operator import (
    OperatorUsageError,
    Selection,
    check_reason,
    default_actor,
    parse_kind,
    parse_targets,
    run_list,
)
from regsync.flows.reconcile import parse_kinds, run_reconcile
from regsync.flows.resync import ResyncUsageError, Target, run_resync
from regsync.flows.runs import require_registry
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.i18n import Phrase, UnknownLanguage, explain, language, ngettext, set_language
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_
from regsync.registry.client import RegistryClient
from regsync.registry.errors import RegistryError
from regsync.reports.data import ReportUsageError, list_runs, load_report
from regsync.reports.export import export_to_path
from regsync.reports.labels import field_word, repair_text
from regsync.reports.labels import status_word as run_status_word
from regsync.reports.render_text import print_report, print_run_list
from regsync.sandbox.cli import make_app
from regsync.service.daemon import DaemonAlreadyRunning, DaemonError, run_daemon, sqlite_daemon_lock
from regsync.service.logs import configure_logging
from regsync.service.signals import stop_signals
from regsync.service.status import run_pause, run_status
from regsync.settings import PUBLIC_HASH_KEY, ConfigError, LogSettings, env_epilog, env_help

app = typer.Typer(help="regsync: keeps a province's volunteer platform in step with the national volunteer "
                       "registry.", no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_app = typer.Typer(help=Phrase(N_("The local store's schema. {settings}"), settings=env_help("database")),
                     no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(platform_app, name="platform")
app.add_typer(audit_app, name="audit")
app.add_typer(alarms_app, name="alarms")
app.add_typer(commendations_app, name="commendations")

#: Width of tables written to a file or a pipe (Rich would take 80 columns and cut the figures).
PIPE_WIDTH = 160


def _language(value: str | None) -> str | None:
    try:
        set_language(value)
    except UnknownLanguage as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


@app.callback()
def _common_options(
    lang: Annotated[str | None, typer.Option(
        "--lang", metavar="LANG", callback=_language, is_eager=True,
        help="The language of what people read: zh-CN (the default) or en; else REGSYNC_LANG. JSON, codes and "
             "logs are English whatever the language.")] = None,
) -> None:
    """Output that is not a terminal gets tables :data:`PIPE_WIDTH` wide, unless ``COLUMNS`` says otherwise; the
    language is set (``--lang``, else ``REGSYNC_LANG``, else zh-CN) before any command runs."""
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        os.environ["COLUMNS"] = str(PIPE_WIDTH)

err = Console(stderr=True, soft_wrap=True)

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; goes to the audit table).")]


@contextlib.contextmanager
def stop_on_signal() -> Iterator[Callable[[], bool]]:
    """While in the block, the first SIGINT or SIGTERM only asks the work to stop at the next safe point
    (between steps: claims released, the run recorded); a second one stops at once (exit 128 + the signal's
    number: :func:`regsync.service.signals.stop_signals`, the daemon's handler too). Yields the stop flag's
    reader."""
    flag = threading.Event()

    def told(name: str) -> None:
        err.print(escape(_("stopping after the current step ({signal}; again to stop at once)").format(signal=name)),
                  highlight=False)

    with stop_signals(flag, told=told):
        yield flag.is_set


def show_progress(json_output: bool) -> bool:
    """Whether to draw progress: only in a terminal and never under ``--json``."""
    return not json_output and sys.stdout.isatty() and sys.stderr.isatty()


# ------------------------------------------------------------------------------------------------ db
@db_app.command("upgrade", epilog=env_epilog("database"))
def db_upgrade(config: ConfigOpt = None, revision: str = typer.Argument("head")) -> None:
    """Migrate the local store to the newest schema (creates the tables and outbox triggers)."""
    settings = _setup(config, False)
    try:
        engine = open_store(settings.database, migrated=False)
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc
    try:
        upgrade(engine, revision, reference_tables=settings.database.mapping == "reference")
        rev = current_revision(engine)
        err.print(escape(_("database at revision {revision}").format(revision=rev) if rev else
                         _("database at revision none (empty)")), highlight=False)
    except Exception as exc:  # noqa: BLE001 — report and exit non-zero

        print_error(_("migration failed:"), mask_text(str(getattr(exc, "orig", None) or exc)))
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@db_app.command("current", epilog=env_epilog("database"))
def db_current(config: ConfigOpt = None) -> None:
    """Print the schema revision of the local store (``none`` when empty)."""
    settings = _setup(config, False)
    engine = make_engine(settings.database.url, table_prefix=settings.database.own_prefix)
    try:
        with command_errors():
            try:
                rev = current_revision(engine)
            except SQLAlchemyError as exc:
                raise StoreError(N_("cannot open the local store: {error}"),
                                 error=mask_text(str(getattr(exc, "orig", None) or exc))) from exc
    finally:
        engine.dispose()
    typer.echo(_("{revision} (newest: {head})").format(revision=rev or _("none"), head=head_revision()))


@db_app.command("rekey", epilog=env_epilog("database", "registry"))
def db_rekey(reason: ReasonOpt, config: ConfigOpt = None,
             old_key_file: Annotated[Path | None, typer.Option(
                 "--old-key-file", dir_okay=False,
                 help="File holding the key the store was hashed with (default: the old public default key, "
                      "for a store that ran without one).")] = None,
             offline: Annotated[bool, typer.Option(
                 "--offline", help="Do not ask the registry for the values the local records no longer hold: "
                                   "leave those fields unknown (the next merge applies the policy).")] = False,
             dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")] = False,
             actor: ActorOpt = None, json_output: JsonOpt = False) -> None:
    """Move the store to the configured hash_key: re-hash the ID numbers and phones in the links' base snapshots
    and in the conflicts from the values both sides agreed on (the local value, else the registry's), and record
    the new key's fingerprint. Pushes and pulls nothing. Stop every daemon first. Audited (db_rekey)."""
    settings = _setup(config, json_output)
    with command_errors():
        if old_key_file is not None:
            try:
                old_key = old_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(N_("--old-key-file: cannot read {path}: {error}"), path=old_key_file,
                                  error=exc.strerror) from exc
            if not old_key:
                raise ConfigError(N_("--old-key-file: {path} is empty"), path=old_key_file)
        else:
            old_key = PUBLIC_HASH_KEY
        if not offline:
            try:
                require_registry(settings)
            except ConfigError as exc:
                raise ConfigError(N_("{error} (to read the values the local records no longer hold; or --offline)"),
                                  error=exc) from exc
        engine = open_store(settings.database)
        try:
            try:
                lock_file = sqlite_daemon_lock(engine)
            except DaemonAlreadyRunning as exc:
                print_error(_("a daemon runs on this store:"), _("{error}; stop it first").format(error=explain(exc)))
                raise typer.Exit(1) from exc
            try:
                with SingletonLock(engine, "inbound") as pull_free, SingletonLock(engine, "reconcile") as rc_free:
                    if not (pull_free and rc_free):
                        print_error(_("a pull or a reconcile is running on this store:"),
                                    _("stop every daemon (`systemctl stop regsync` on each host) and try again"))
                        raise typer.Exit(1)
                    with contextlib.ExitStack() as stack:
                        client = None if offline else stack.enter_context(
                            RegistryClient(settings.registry, province=settings.province))
                        summary = _conflict_call(rekey_store, engine, old_key, settings.hash_key, client=client,
                                                 reason=reason, actor=actor or default_actor(), dry_run=dry_run)
            finally:
                if lock_file is not None:
                    lock_file.close()
        finally:
            engine.dispose()
    if json_output:
        print_json(summary.as_dict())
        return
    if summary.already:
        typer.echo(_("the store is already hashed with the configured hash_key: nothing to do"))
        return
    head = _("would re-key (dry run)") if dry_run else _("re-keyed; audit #{audit_id}").format(
        audit_id=summary.audit_id)
    offline_part = (_(", unknown without asking the registry {count}").format(count=f"{summary.unknown_offline:,}")
                    if summary.unknown_offline else "")
    typer.echo(_("{head}: {links} links read; personal values from the local record {local}, from the registry "
                 "{registry}, unknown (changed on both sides) {unknown}").format(
        head=head, links=f"{summary.links:,}", local=f"{summary.from_local:,}",
        registry=f"{summary.from_registry:,}", unknown=f"{summary.unknown:,}") + offline_part
        + _("; conflict hashes re-made {rehashed}, cleared {cleared}; {read} registry records read").format(
        rehashed=f"{summary.conflicts_rehashed:,}", cleared=f"{summary.conflicts_cleared:,}",
        read=f"{summary.looked_up:,}"))


# ------------------------------------------------------------------------------------------------ generate
@app.command(help="Fill the local store with a generated province-shaped data set (design.md, last section).",
             epilog=env_epilog("database"))
def generate(config: ConfigOpt = None,
             scale: Annotated[float, typer.Option(help="1.0 = the province: 3.2 M volunteers, 29 M service "
                                                       "records.", min=0.00001)] = 0.001,
             seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
             append: Annotated[bool, typer.Option(
                 help="Add to a store that already holds volunteers (the same seed makes the same people "
                      "again: duplicates).")] = False,
             json_output: JsonOpt = False) -> None:
    """Generate a province-shaped data set into the local store."""
    settings = _setup(config, json_output)
    with command_errors(), progress_bars(show_progress(json_output)) as advance:
        summary = run_generate(settings, scale=scale, seed=seed, progress=advance, append=append)
    if json_output:
        print_json(summary)
    else:
        print_generate_summary(summary)


# ------------------------------------------------------------------------------------------------ sync
@app.command(help="Run one sync pass: push every queued local change to the registry (outbound), then pull the "
                  "registry's change feed and merge it (inbound). The feed's first cursor is taken before the "
                  "first push.", epilog=env_epilog("database", "registry", "relay", "merge"))
def sync(config: ConfigOpt = None, json_output: JsonOpt = False,
         outbound_only: Annotated[bool, typer.Option("--outbound", help="Only push (no pull).")] = False,
         inbound_only: Annotated[bool, typer.Option("--inbound", help="Only pull (no push).")] = False,
         until_quiet: Annotated[bool, typer.Option("--until-quiet", help="Repeat passes until neither side has "
                                                                        "anything left (deferred rows waited "
                                                                        "for).")] = False) -> None:
    """Run one sync pass."""
    if outbound_only and inbound_only:
        print_error(_("usage error:"), _("--outbound and --inbound exclude each other (give neither for both)"))
        raise typer.Exit(2)
    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors(), progress_bars(show_progress(json_output)) as advance:
        code, summary = run_sync(settings, progress=advance, stop=stopping,
                                 until_quiet=until_quiet, outbound=not inbound_only, inbound=not outbound_only)
    if json_output:
        print_json(summary)
    else:
        print_sync_summary(summary)
    raise typer.Exit(code)


# --- daemon and console (issue 6) ---
def _flows(outbound: bool, inbound: bool) -> list[str]:
    """The flows named by ``--outbound``/``--inbound``; both when neither is given."""
    chosen = [name for name, on in (("outbound", outbound), ("inbound", inbound)) if on]
    return chosen or ["outbound", "inbound"]


@app.command(help="Run the daemon: the outbound relay every few seconds, the inbound pull every minute, the "
                  "full reconcile nightly (Asia/Shanghai) and the daily prune, with /metrics and /healthz. "
                  "SIGTERM or Ctrl-C finishes the current batch and exits 0 (again: at once). On PostgreSQL "
                  "several replicas may run; on SQLite one.",
             epilog=env_epilog("database", "registry", "relay", "merge", "daemon", "health", "retention"))
def run(config: ConfigOpt = None) -> None:
    """Run the daemon until a signal."""
    settings = _setup(config, False)
    with command_errors():
        try:
            code = run_daemon(settings)
        except DaemonError as exc:
            print_error(_("cannot start:"), exc)
            raise typer.Exit(1) from exc
    raise typer.Exit(code)


@app.command(help="The service at a glance: whether a daemon is alive (its heartbeat) and its next runs, outbox "
                  "backlog by state, age of the oldest waiting change, last successful push, pull and reconcile, "
                  "cursor age, open conflicts, failed records, paused flows, runs going on or abandoned, whether a "
                  "full reconcile is due. Exits 3 when unhealthy (no daemon alive, a flow failing, stale or paused "
                  "too long: the health limits; a health check), 0 when healthy; --json has a `healthy` key. "
                  "--alarms also sends the alarms whose condition started or cleared since they were last sent "
                  "(to alarms.urls; deploy/regsync-status.timer runs it, so that a dead daemon is announced).",
             epilog=env_epilog("database", "daemon", "health", "alarms"))
def status(config: ConfigOpt = None, json_output: JsonOpt = False,
           alarms: Annotated[bool, typer.Option("--alarms", help="Send the alarms that started or cleared (once "
                                                "each, whatever other processes sent) and wait for them.")] = False,
           ) -> None:
    """Show the service's status."""
    settings = _setup(config, json_output)
    with command_errors():
        code, data = run_status(settings, alarms=alarms)
    if json_output:
        print_json(data)
    else:
        print_status(data)
    raise typer.Exit(code)


OutboundFlag = Annotated[bool, typer.Option("--outbound", help="The outbound flow (local → registry).")]
InboundFlag = Annotated[bool, typer.Option("--inbound", help="The inbound flow (registry → local).")]


def _flow_label(flow: str) -> str:
    """A flow as ``pause``/``resume`` name it: in English the code its flag names (``outbound``), in Chinese its
    word."""
    return flow if language() == "en" else word(FLOW_WORDS, flow)


def _pause_command(paused: bool, config: Path | None, reason: str, outbound: bool, inbound: bool,
                   actor: str | None, json_output: bool, for_: str | None = None, until: str | None = None) -> None:

    settings = _setup(config, json_output)
    with command_errors():
        try:
            result = run_pause(settings, _flows(outbound, inbound), paused, reason=reason, actor=actor,
                               for_=for_, until=until)
        except OperatorUsageError as exc:
            print_error(_("usage error:"), exc)
            raise typer.Exit(2) from exc
    if json_output:
        print_json(result)
    else:
        same = [f for f in result["flows"] if f not in result["changed"]]
        changed = _(", ").join(_flow_label(f) for f in result["changed"]) or _("nothing")
        already = _(", ").join(_flow_label(f) for f in same)
        line = (_("paused: {flows}") if paused else _("resumed: {flows}")).format(flows=changed)
        if same:
            line += (_(" (already paused: {flows})") if paused else _(" (already resumed: {flows})")).format(
                flows=already)
        if result.get("until"):
            line += _("; resumes by itself at {at}").format(at=result["until"])
        typer.echo(line + _("; audit #{audit_id}").format(audit_id=result["audit_id"]))


@app.command(help="Pause the outbound and/or inbound flow (both when neither flag is given). Local changes are "
                  "still captured in the outbox while paused; the daemon skips the flow until `regsync resume`, "
                  "or until the pause expires (--for 2h, --until 2026-12-01T06:00, +08:00 unless an offset is "
                  "given), when it resumes by itself (audited). `status` is unhealthy once a pause is older than "
                  "REGSYNC_HEALTH_MAX_PAUSE_S. Audited.", epilog=env_epilog("database"))
def pause(reason: ReasonOpt, config: ConfigOpt = None, outbound: OutboundFlag = False,
          inbound: InboundFlag = False, actor: ActorOpt = None, json_output: JsonOpt = False,
          for_: Annotated[str | None, typer.Option("--for", help="Resume by itself after this long: 90s, 30m, "
                                                                 "2h, 1d, 1h30m.")] = None,
          until: Annotated[str | None, typer.Option("--until", help="Resume by itself at this time (ISO 8601; "
                                                                    "+08:00 unless an offset is given).")] = None,
          ) -> None:
    """Pause flows."""
    _pause_command(True, config, reason, outbound, inbound, actor, json_output, for_, until)


@app.command(help="Resume paused flows (both when neither flag is given); what was captured meanwhile is sent "
                  "at the next tick. Audited.", epilog=env_epilog("database"))
def resume(reason: ReasonOpt, config: ConfigOpt = None, outbound: OutboundFlag = False,
           inbound: InboundFlag = False, actor: ActorOpt = None, json_output: JsonOpt = False) -> None:
    """Resume flows."""
    _pause_command(False, config, reason, outbound, inbound, actor, json_output)


# ------------------------------------------------------------------------------------------------ outbox
outbox_app = typer.Typer(help=Phrase(N_("See what waits in the outbox and why; retry, discard or restore it (audited). "
                                       "{settings}"), settings=env_help("database")), no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")

KindOpt = Annotated[str | None, typer.Option(
    "--kind", help="Only records of this kind: org, volunteer, membership, activity, service_record.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")]
TargetsArg = Annotated[list[str] | None, typer.Argument(
    metavar="ID|KIND:LOCAL_ID", help="Outbox row ids, or records as KIND:LOCAL_ID (e.g. volunteer:42).",
    show_default=False)]


def _outbox_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an operator function; usage errors exit 2, an unreachable store exits 1."""
    try:
        return fn(*args, **kwargs)
    except OperatorUsageError as exc:
        print_error(_("usage error:"), exc)
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc
    except StoreError as exc:
        print_error(_("local store unavailable:"), exc)
        raise typer.Exit(1) from exc


def _exit_if_nothing_matched(result: Any) -> None:
    """``outbox retry|discard|restore`` that matched nothing
    (:attr:`regsync.flows.operator.ActionResult.nothing_matched`: unknown ids, records sent, not waiting or not
    held): nothing done and nothing audited, exit 2 (a usage error; design.md, "Operator commands")."""
    if result.nothing_matched:
        print_error(_("usage error:"), nothing_matched(result.action))
        raise typer.Exit(2)


#: ``outbox discard|restore`` with no terminal to confirm on, and a confirmation declined (functions: translated
#: when called, in the language in force).
_REFUSE: dict[str, Callable[[], str]] = {
    "discard": lambda: _("refusing to discard: no terminal to confirm on; pass --yes to discard without asking"),
    "restore": lambda: _("refusing to restore: no terminal to confirm on; pass --yes to restore without asking"),
}
_NOTHING_DONE: dict[str, Callable[[], str]] = {"discard": lambda: _("nothing discarded"),
                                               "restore": lambda: _("nothing restored")}


def _confirm_action(settings: Any, action: str, selection: Any, *, reason: str, actor: str | None,
                    question: Callable[[Any], str]) -> None:
    """Ask before ``outbox discard|restore`` changes anything: refuse with no terminal to ask on (exit 2), show
    ``question(preview)`` for the records a dry run would touch, and stop (exit 1) when declined."""
    if not op.stdin_is_tty():
        err.print(escape(_REFUSE[action]()), highlight=False)
        raise typer.Exit(2)
    preview = _outbox_call(op.run_action, settings, action, selection, reason=reason, actor=actor, dry_run=True)
    if preview.affected and not typer.confirm(question(preview), err=True):
        err.print(escape(_NOTHING_DONE[action]()), highlight=False)
        raise typer.Exit(1)


def _finish_action(settings: Any, action: str, selection: Any, *, reason: str, actor: str | None, dry_run: bool,
                   json_output: bool) -> None:
    """Run ``outbox retry|discard|restore`` and print what it did (JSON or text); nothing matched is exit 2."""
    result = _outbox_call(op.run_action, settings, action, selection, reason=reason, actor=actor, dry_run=dry_run)
    if json_output:
        print_json(result.as_dict())
    else:
        print_action(result)
    _exit_if_nothing_matched(result)


@outbox_app.command("list", help="One line per record waiting in the outbox: state, code, reason (masked), "
                                 "attempts, next attempt (+08:00), age of its oldest change and its row ids; "
                                 "failed first.", epilog=env_epilog("database"))
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
    settings = _setup(config, json_output)
    kind = _outbox_call(parse_kind, kind) if kind else None
    listing = _outbox_call(run_list, settings, states=state or None, code=code, kind=kind, limit=limit,
                           offset=offset)
    if json_output:
        print_json(listing.as_dict())
    else:
        print_listing(listing)


@outbox_app.command("retry", help="Send records again: their failed, blocked and deferred rows go back to "
                                  "pending, now, with attempts reset. Audited.", epilog=env_epilog("database"))
def outbox_retry(reason: ReasonOpt, targets: TargetsArg = None, config: ConfigOpt = None,
                 code: Annotated[str | None, typer.Option("--code", help="Every failed or blocked record "
                                                                         "with this code.")] = None,
                 all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed and blocked "
                                                                               "record.")] = False,
                 kind: KindOpt = None, actor: ActorOpt = None,
                 dry_run: DryRunOpt = False, json_output: JsonOpt = False) -> None:
    """Retry outbox records."""
    settings = _setup(config, json_output)
    row_ids, records = _outbox_call(parse_targets, targets or [])
    selection = Selection(row_ids=row_ids, records=records, code=code, all_failed=all_failed,
                          kind=_outbox_call(parse_kind, kind) if kind else None)
    _finish_action(settings, "retry", selection, reason=reason, actor=actor, dry_run=dry_run,
                   json_output=json_output)


@outbox_app.command("discard", help="Keep records out of the sync until `outbox restore`: their waiting rows "
                                    "become discarded, and their later changes are kept but not sent. Names the "
                                    "records waiting on them. Asks first unless --yes; with no terminal to ask on, "
                                    "refuses (exit 2). Audited.", epilog=env_epilog("database"))
def outbox_discard(reason: ReasonOpt, targets: TargetsArg = None, config: ConfigOpt = None,
                   code: Annotated[str | None, typer.Option("--code", help="Every failed or blocked record "
                                                                           "with this code.")] = None,
                   kind: KindOpt = None, actor: ActorOpt = None,
                   yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                   dry_run: DryRunOpt = False, json_output: JsonOpt = False) -> None:
    """Discard outbox records."""
    settings = _setup(config, json_output)
    row_ids, records = _outbox_call(op.parse_targets, targets or [])
    selection = op.Selection(row_ids=row_ids, records=records, code=code,
                             kind=_outbox_call(op.parse_kind, kind) if kind else None)
    _outbox_call(selection.validate, allow_all_failed=False)
    _outbox_call(op.check_reason, reason)
    if not (yes or dry_run):
        def question(preview: Any) -> str:
            for key, names in preview.dependents.items():
                err.print(_("waiting on {key}: {records}").format(key=key, records=_(", ").join(names)),
                          highlight=False, markup=False)
            kinds = _(", ").join(f"{kind_label(k)} {v}" for k, v in preview.by_kind.items())
            n, waits = preview.affected, preview.dependents_total
            waiting = (" " + ngettext("{count} record waits on them and will not be sent either.",
                                      "{count} records wait on them and will not be sent either.", waits).format(
                count=waits) if waits else "")
            return ngettext("Discard {count} record ({kinds})? It will not be sent until restored (`regsync outbox "
                            "restore`).", "Discard {count} records ({kinds})? They will not be sent until restored "
                            "(`regsync outbox restore`).", n).format(count=n, kinds=kinds) + waiting

        _confirm_action(settings, "discard", selection, reason=reason, actor=actor, question=question)
    _finish_action(settings, "discard", selection, reason=reason, actor=actor, dry_run=dry_run,
                   json_output=json_output)


@outbox_app.command("restore", help="Take discarded records back into the sync: their changes since the discard "
                                    "go back to pending and the relay sends their current state; what waits on "
                                    "them follows. Asks first unless --yes; with no terminal to ask on, refuses "
                                    "(exit 2). Audited.", epilog=env_epilog("database"))
def outbox_restore(reason: ReasonOpt, targets: TargetsArg = None, config: ConfigOpt = None,
                   kind: KindOpt = None, actor: ActorOpt = None,
                   yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                   dry_run: DryRunOpt = False, json_output: JsonOpt = False) -> None:
    """Restore discarded outbox records."""
    settings = _setup(config, json_output)
    row_ids, records = _outbox_call(op.parse_targets, targets or [])
    if not (row_ids or records):
        _outbox_call(_usage, N_("name the records to restore: IDs or KIND:LOCAL_ID (as `outbox list` shows them)"))
    selection = op.Selection(row_ids=row_ids, records=records,
                             kind=_outbox_call(op.parse_kind, kind) if kind else None)
    _outbox_call(op.check_reason, reason)
    if not (yes or dry_run):
        def question(preview: Any) -> str:
            kinds = _(", ").join(f"{kind_label(k)} {v}" for k, v in preview.by_kind.items())
            return ngettext("Restore {count} record ({kinds})? The relay sends its current state.",
                            "Restore {count} records ({kinds})? The relay sends their current state.",
                            preview.affected).format(count=preview.affected, kinds=kinds)

        _confirm_action(settings, "restore", selection, reason=reason, actor=actor, question=question)
    _finish_action(settings, "restore", selection, reason=reason, actor=actor, dry_run=dry_run,
                   json_output=json_output)


def _usage(message: str) -> None:
    """Raise an operator usage error (exit 2 through :func:`_outbox_call`)."""
    raise OperatorUsageError(message)


# ------------------------------------------------------------------------------------------------ conflicts
conflicts_app = typer.Typer(help="Fields held for an operator by the merge policy (`manual`): list, show, "
                                 "resolve (audited).",
                            no_args_is_help=True)
app.add_typer(conflicts_app, name="conflicts")


def _conflict_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a conflicts function: usage errors exit 2, registry failures 1."""
    try:
        return fn(*args, **kwargs)
    except OperatorUsageError as exc:
        print_error(_("usage error:"), exc)
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        print_error(_("configuration error:"), exc)
        raise typer.Exit(2) from exc
    except RegistryError as exc:
        print_error(_("registry:"), mask_text(str(exc)))
        raise typer.Exit(1) from exc


@conflicts_app.command("list", help="Conflicts, oldest first, with their masked values; counts by state and by "
                                    "field.", epilog=env_epilog("database"))
def conflicts_list(config: ConfigOpt = None, json_output: JsonOpt = False,
                   state: Annotated[str, typer.Option(help="open, resolved, superseded or all.")] = "open",
                   kind: KindOpt = None,
                   field_name: Annotated[str | None, typer.Option("--field", help="Only this field.")] = None,
                   limit: Annotated[int, typer.Option(help="At most this many rows.")] = 100) -> None:
    """List conflicts."""
    settings = _setup(config, json_output)
    with command_errors():
        engine = open_store(settings.database)
    try:
        listing = _conflict_call(list_conflicts, engine, state=None if state == "all" else state, kind=kind,
                                 field_name=field_name, limit=limit)
    finally:
        engine.dispose()
    if json_output:
        print_json(listing.as_dict())
    else:
        print_conflict_listing(listing)


@conflicts_app.command("show", help="One conflict: its field, the base, local and registry values as stored "
                                    "(ID numbers and phones masked). --live reads both sides' current values in "
                                    "clear (audited; needs --reason).", epilog=env_epilog("database", "registry"))
def conflicts_show(conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The conflict's id.")],
                   config: ConfigOpt = None, json_output: JsonOpt = False,
                   live: Annotated[bool, typer.Option("--live", help="Read the live values in clear "
                                                                     "(audited).")] = False,
                   reason: Annotated[str | None, typer.Option("--reason", help="Why (with --live).")] = None,
                   actor: ActorOpt = None) -> None:
    """Show a conflict."""
    settings = _setup(config, json_output)
    with command_errors():
        engine = open_store(settings.database)
    try:
        if live:
            with command_errors():
                require_registry(settings)
            with RegistryClient(settings.registry, province=settings.province) as client:
                view = _conflict_call(show_live, engine, client, conflict_id, reason=reason or "", actor=actor)
        else:
            with engine.connect() as conn:
                view = _conflict_call(get_conflict, conn, conflict_id)
    finally:
        engine.dispose()
    if json_output:
        print_json(view.as_dict())
    else:
        print_conflict(view)


@conflicts_app.command("resolve", help="Decide a conflict: --take registry writes the registry's value to the "
                                       "platform; --take local pushes the platform's value; --set FIELD=VALUE "
                                       "writes and pushes a value of your own. Asks first unless --yes (no "
                                       "terminal: refuses). Audited.",
                       epilog=env_epilog("database", "registry", "merge"))
def conflicts_resolve(conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The conflict's id.")],
                      reason: ReasonOpt, config: ConfigOpt = None, json_output: JsonOpt = False,
                      take: Annotated[str | None, typer.Option("--take", help="local or registry.")] = None,
                      set_value: Annotated[str | None, typer.Option("--set", metavar="FIELD=VALUE",
                                                                    help="A value of your own.")] = None,
                      yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                      actor: ActorOpt = None) -> None:
    """Resolve a conflict."""
    settings = _setup(config, json_output)
    _conflict_call(check_reason, reason)
    if (take is None) == (set_value is None):
        print_error(_("usage error:"), _("give exactly one of --take local|registry and --set FIELD=VALUE"))
        raise typer.Exit(2)
    with command_errors():
        require_registry(settings)
        engine = open_store(settings.database)
    try:
        with engine.connect() as conn:
            view = _conflict_call(get_conflict, conn, conflict_id)
        if not yes:
            if not op.stdin_is_tty():
                err.print(escape(_("refusing to resolve: no terminal to confirm on; pass --yes to resolve without "
                                   "asking")), highlight=False)
                raise typer.Exit(2)
            what = (_("take the {side} value").format(side=take) if take else
                    _("set {value}").format(value=set_value))
            side = _("the platform's row is overwritten") if take != "local" else _("the registry's value is replaced")
            if not typer.confirm(_("Conflict {id} ({kind} {local_id}, {field}): {what}; {side}. Go on?").format(
                    id=view.id, kind=view.kind, local_id=view.local_id, field=view.field, what=what, side=side),
                    err=True):
                err.print(escape(_("nothing resolved")), highlight=False)
                raise typer.Exit(1)
        with RegistryClient(settings.registry, province=settings.province) as client:
            result = _conflict_call(resolve_conflict, engine, client, settings, conflict_id, take=take,
                                    set_value=set_value, reason=reason, actor=actor)
    finally:
        engine.dispose()
    if json_output:
        print_json(result.as_dict())
    else:
        print_resolution(result)


# ------------------------------------------------------------------------------------------------ demo
@app.command(help="The main job on the embedded defaults: a SQLite file and the sandbox registry on a free "
                  "loopback port; generate a province, push it all, read the registry's export back and "
                  "compare. Starts afresh in WORKDIR and keeps both databases there for inspection.",
             epilog="Settings read: none (no REGSYNC_CONFIG, no REGSYNC_* variable): the demo makes its own "
                    "store, sandbox registry and credentials in WORKDIR.")
def demo(scale: Annotated[float, typer.Option(help="Data set scale (1.0 = the province).", min=0.00001,
                                              max=2.0)] = 0.003,
         seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
         workdir: Annotated[Path, typer.Option(help="Work directory (emptied of an earlier demo).")] = Path(
             "regsync-demo"),
         sign_method: Annotated[str, typer.Option(help="HMAC-SHA256 or HMAC-SM3.")] = "HMAC-SHA256",
         faults: Annotated[str | None, typer.Option(
             help="Faults for the sandbox registry, NAME=VALUE[,NAME=VALUE…] (registry-api.md §8): latency_ms, "
                  "error_rate, lost_answer_rate, rate_limit_rps, maintenance_s, token_ttl_s, clock_offset_s, "
                  "feed_duplicate_rate, feed_retention_s, gateway_body_limit, firewall_rate, "
                  "retry_after_http_date.")] = None,
         portal_activity: Annotated[int, typer.Option(
             "--portal-activity", min=0, max=10_000,
             help="Make the registry change too: N portal-side actions (self-registrations, phone and skills "
                  "edits, identity corrections, transfers out, deregistrations, org dissolutions, service "
                  "records), some self-registrations of the platform's people before the first push; then "
                  "sync until both sides agree.")] = 0,
         platform: Annotated[str, typer.Option(
             help="The platform's tables: reference (regsync's own) or legacy (a long-lived provincial platform's "
                  "own tables, pinyin names, codes, text dates and soft deletes, through its mapping; "
                  "docs/connect-platform.md).")] = "reference",
         json_output: JsonOpt = False) -> None:
    """Run the end-to-end demo."""
    # start-up cost: the demo brings the sandbox registry (its server, portal and rules), which no other command
    # needs; imported here so that every other command starts without it
    from regsync.console.demo import run_demo  # start-up cost (above)

    configure_logging(LogSettings(level="WARNING"))
    if sign_method not in ("HMAC-SHA256", "HMAC-SM3"):
        err.print(f"[red]configuration error:[/red] --sign-method must be HMAC-SHA256 or HMAC-SM3, not {sign_method!r}")
        raise typer.Exit(2)

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds the demo: its sandbox process is stopped on the way out

    previous = signal.signal(signal.SIGTERM, terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        summary = run_demo(workdir=workdir, scale=scale, seed=seed, sign_method=sign_method,
                           progress=show_progress(json_output), faults=faults, portal_activity=portal_activity,
                           platform=platform)
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        err.print(f"demo interrupted: its sandbox registry is stopped; the databases so far are in {workdir}")
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if json_output:
        print_json(summary)
    else:
        print_demo_summary(summary)
    raise typer.Exit(0 if summary.get("status") in ("success", "partial") else 1)


# --- reconcile, adopt, resync (issue 5) ---
def _print_findings(title: str, summary: dict[str, Any], *, limit: int = 30) -> None:
    """A Rich table of a reconcile, adopt or resync summary (counts by kind, then the first findings), in the
    language in force: discrepancy kinds, record kinds, fields and repairs in the field's words (``domain.words``,
    ``reports.labels``); ``title`` is already in it."""
    out = Console()
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column(_("discrepancy"))
    table.add_column(_("found"), justify="right")
    table.add_column(_("repaired"), justify="right")
    table.add_column(_("queued"), justify="right")
    for kind, n in summary.get("discrepancies", {}).items():
        requeued = summary.get("requeued", {}).get(kind, 0)
        queued = f"{summary.get('queued', {}).get(kind, 0):,}"
        if requeued:
            queued += _(" + {count} again").format(count=f"{requeued:,}")
        table.add_row(word(DISCREPANCY_WORDS, kind), f"{n:,}", f"{summary.get('repaired', {}).get(kind, 0):,}",
                      queued)
    if not summary.get("discrepancies"):
        table.add_row(_("(none)"), "0", "0", "0")
    out.print(table)
    if summary.get("queued") or summary.get("requeued"):
        out.print(escape(_("queued: outbox rows for the relay; in the registry once it sends them (`regsync sync`, or "
                           "the daemon)")), highlight=False)
    if summary.get("requeued"):
        out.print("[yellow]" + escape(_("{count} queued again").format(count=f"{sum(summary['requeued'].values()):,}"))
                  + "[/yellow] " + escape(_("although the registry refused their data last time: they fail again "
                                            "unless the data changed (`regsync outbox list --state failed`)")),
                  highlight=False)
    if "compared_total" in summary:
        total = summary["compared_total"]
        out.print(escape(_("compared {records} records: {local} local, {registry} in the registry ({pairs} "
                           "pairs)").format(records=f"{total['records']:,}", local=f"{total['local']:,}",
                                            registry=f"{total['registry']:,}", pairs=f"{total['pairs']:,}")),
                  highlight=False)
    listed = summary.get("listed") or []
    if listed:
        rows = Table(box=box.SIMPLE_HEAD, title=_("first {count} of them").format(count=min(limit, len(listed))))
        for col in (_("discrepancy"), _("record kind"), _("local id"), _("registry id"), _("fields"), _("repair")):
            rows.add_column(col)
        for d in listed[:limit]:
            action = repair_text(d["action"], d.get("action_state")) if d.get("action") else ""
            rows.add_row(word(DISCREPANCY_WORDS, d["kind"]), word(KIND_WORDS, d["entity"]),
                         str(d.get("local_id") or ""), d.get("registry_id") or "",
                         _(", ").join(field_word(f) for f in d.get("fields") or []), action)
        out.print(rows)
    if summary.get("error"):
        out.print(f"[red]{escape(_('error:'))}[/red] {escape(str(summary['error']))}", highlight=False)


def _findings_title(head: str, summary: dict[str, Any]) -> str:
    """``{head}: {status} in {seconds} s`` in the language in force (``head`` already in it)."""
    return _("{head}: {status} in {seconds} s").format(head=head, status=run_status_word(summary["status"]),
                                                      seconds=summary["seconds"])


@app.command(help="Compare both sides in full (design.md, flow 3): stream the registry's exports against the local "
                  "records and links, classify every difference, and with --repair queue the fixes policy allows "
                  "(push, pull, relink). Every run is kept (run, discrepancy).",
             epilog=env_epilog("database", "registry", "merge"))
def reconcile(config: ConfigOpt = None,
              kind: Annotated[list[str] | None, typer.Option(
                  "--kind", help="Only these kinds (repeatable): orgs, volunteers, memberships, activities, "
                                 "service_records, trainings, training_records, commendations, evaluations.")
              ] = None,
              region: Annotated[str | None, typer.Option(
                  "--region", help="Only records of this GB/T 2260 region of the province: 2301 or 230100 is "
                                   "the whole city, 230102 one district.")] = None,
              repair: Annotated[bool, typer.Option("--repair", help="Queue the fixes policy allows.")] = False,
              json_output: JsonOpt = False) -> None:
    """Reconcile the platform with the registry."""
    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors():
        engine = open_store(settings.database)
        try:
            # one reconcile at a time: a daemon's nightly run holds the same lock (PostgreSQL advisory lock)
            with SingletonLock(engine, "reconcile") as held:
                if not held:
                    err.print("[red]" + escape(_("a reconcile is running elsewhere")) + "[/red] " + escape(_(
                        "(a daemon's nightly run, or another command): try again when it has finished "
                        "(`regsync status`)")), highlight=False)
                    raise typer.Exit(1)
                with progress_bars(show_progress(json_output)) as advance:
                    code, summary = run_reconcile(settings, kinds=kind, region=region, repair=repair,
                                                  progress=advance, stop=stopping, engine=engine)
        finally:
            engine.dispose()
    if json_output:
        print_json({k: summary[k] for k in ("run_id", "status", "discrepancies", "repaired", "queued", "requeued",
                                            "compared_total", "seconds")})
    else:
        _print_findings(_findings_title(_("reconcile run {run}").format(run=summary["run_id"]), summary), summary)
    raise typer.Exit(code)


@app.command(help="The first day (design.md, flow 4): link the local records to what the registry already holds, "
                  "by natural keys, before the first push; ambiguous matches are listed for a person, never "
                  "guessed.", epilog=env_epilog("database", "registry", "merge"))
def adopt(config: ConfigOpt = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Match and count only; link nothing.")] = False,
          json_output: JsonOpt = False) -> None:
    """Adopt the registry's existing records."""
    settings = _setup(config, json_output)
    with stop_on_signal() as stopping, command_errors(), progress_bars(show_progress(json_output)) as advance:
        code, summary = run_adopt(settings, dry_run=dry_run, progress=advance, stop=stopping)
    if json_output:
        print_json(summary)
    else:
        print_adopt_summary(summary)
    raise typer.Exit(code)


resync_app = typer.Typer(help=Phrase(N_("Resync one scope: a reconcile of a volunteer, an org (and its subtree) or a "
                                       "region, repaired by policy, audited; safe while the daemon runs. {settings}"),
                                    settings=env_help("database", "registry")), no_args_is_help=True)
app.add_typer(resync_app, name="resync")
RegistryIdOpt = Annotated[bool, typer.Option("--registry-id", help="The id is a registry id, not a local one.")]
PlanOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan only; change nothing.")]


ResyncKindOpt = Annotated[list[str] | None, typer.Option(
    "--kind", help="Only these kinds (repeatable): orgs, volunteers, memberships, activities, service_records, "
                   "trainings, training_records, commendations, evaluations.")]


def _resync(config: Path | None, target: Any, reason: str, actor: str | None, dry_run: bool,
            json_output: bool, kind: list[str] | None = None) -> None:

    settings = _setup(config, json_output)
    if kind:
        try:
            target = dataclasses.replace(target, kinds=tuple(parse_kinds(kind)))
        except ValueError as exc:
            print_error(_("usage error:"), exc)
            raise typer.Exit(2) from exc
    with stop_on_signal() as stopping, command_errors():
        try:
            code, summary = run_resync(settings, target, reason=reason, actor=actor, dry_run=dry_run, stop=stopping)
        except (OperatorUsageError, ResyncUsageError) as exc:
            print_error(_("usage error:"), exc)
            raise typer.Exit(2) from exc
    if json_output:
        print_json(summary)
    else:
        head = (_("plan of {target}") if dry_run else _("resync run {run} (audit #{audit_id}) of {target}")).format(
            run=summary.get("run_id"), audit_id=summary.get("audit_id"), target=summary["target"])
        _print_findings(_findings_title(head, summary), summary)
    raise typer.Exit(code)


@resync_app.command("volunteer", help="Resync one person (the row, or every row of one ID number) with its "
                                      "memberships, service records, training records, commendations and evaluations.",
                    epilog=env_epilog("database", "registry", "merge"))
def resync_volunteer(reason: ReasonOpt,
                     ident: Annotated[str | None, typer.Argument(metavar="ID", help="Local id (or registry id "
                                                                                    "with --registry-id).")] = None,
                     id_number: Annotated[str | None, typer.Option("--id-number", help="The person's ID number.")
                                          ] = None,
                     registry_id: RegistryIdOpt = False, config: ConfigOpt = None, actor: ActorOpt = None,
                     dry_run: PlanOpt = False, json_output: JsonOpt = False, kind: ResyncKindOpt = None) -> None:
    """Resync one volunteer."""
    if (ident is None) == (id_number is None):
        print_error(_("usage error:"), _("give a volunteer ID or --id-number, one of them"))
        raise typer.Exit(2)
    _resync(config, Target("volunteer", ident, id_number=id_number, registry_id=registry_id), reason, actor,
            dry_run, json_output, kind)


@resync_app.command("org", help="Resync one org; with --subtree, every org under it with their memberships, "
                                "activities, service records, trainings, commendations and evaluations.", epilog=env_epilog("database", "registry", "merge"))
def resync_org(ident: Annotated[str, typer.Argument(metavar="ID", help="Local id (or registry id with "
                                                                       "--registry-id).")],
               reason: ReasonOpt,
               subtree: Annotated[bool, typer.Option("--subtree", help="Also the child orgs and their records.")
                                  ] = False,
               registry_id: RegistryIdOpt = False, config: ConfigOpt = None, actor: ActorOpt = None,
               dry_run: PlanOpt = False, json_output: JsonOpt = False, kind: ResyncKindOpt = None) -> None:
    """Resync one org (and its subtree)."""
    _resync(config, Target("org", ident, registry_id=registry_id, subtree=subtree), reason, actor, dry_run,
            json_output, kind)


@resync_app.command("region", help="Resync a region: the orgs of both lines, volunteers and activities whose "
                                   "region code lies in CODE, and the memberships, service records, trainings, "
                                   "commendations and evaluations of those orgs. A region where the store holds nothing is a usage error (exit 2).",
                   epilog=env_epilog("database", "registry", "merge"))
def resync_region(code: Annotated[str, typer.Argument(metavar="CODE", help="GB/T 2260 region of the province: 2301 "
                                                                           "or 230100 (the whole city), 230102.")],
                  reason: ReasonOpt, config: ConfigOpt = None, actor: ActorOpt = None,
                  dry_run: PlanOpt = False, json_output: JsonOpt = False, kind: ResyncKindOpt = None) -> None:
    """Resync one region."""
    _resync(config, Target("region", code), reason, actor, dry_run, json_output, kind)


app.command("show", help=SHOW_TEXT["help"], epilog=env_epilog("database", "registry"))(show_command)


def _mount_sandbox() -> None:
    app.add_typer(make_app(seed_command=sandbox_seed), name="sandbox")  # its seed is the generator's (console)


_mount_sandbox()


# --- reports (issue 5) ---
report_app = typer.Typer(help="Runs and their reports: what each sync, inbound, reconcile or adopt run found and "
                              "did. Times in +08:00; ID numbers and phones masked unless --show-personal-data "
                              "(audited).", no_args_is_help=True)
app.add_typer(report_app, name="report")

RunArg = Annotated[int, typer.Argument(metavar="RUN", help="The run id (`regsync report list` shows them).",
                                       show_default=False)]


def _report_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a report function on the configured store: an unknown run, format or kind, or a missing reason exit 2;
    a configuration error 2; an unusable store 1."""
    try:
        with command_errors():
            try:
                return fn(*args, **kwargs)
            except SQLAlchemyError as exc:
                orig = getattr(exc, "orig", None) or exc
                raise StoreError(mask_text(f"{type(orig).__name__}: {str(orig).strip().splitlines()[0]}")) from exc
    except ReportUsageError as exc:
        print_error(_("usage error:"), exc)
        raise typer.Exit(2) from exc


def _report_engine(config: Path | None, json_output: bool) -> Any:

    settings = _setup(config, json_output)
    with command_errors():
        return open_store(settings.database)


@report_app.command("list", help="The runs, newest first: kind, status, start (+08:00), duration, discrepancies "
                                 "and error.", epilog=env_epilog("database"))
def report_list(config: ConfigOpt = None,
                kind: Annotated[str | None, typer.Option(
                    "--kind", help="Only runs of this kind: sync, inbound, reconcile or adopt.")] = None,
                limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many runs.")] = 20,
                json_output: JsonOpt = False) -> None:
    """List the runs."""
    engine = _report_engine(config, json_output)
    try:
        runs = _report_call(list_runs, engine, kind=kind, limit=limit)
    finally:
        engine.dispose()
    if json_output:
        print_json({"runs": [r.as_dict() for r in runs]})
    else:

        print_run_list(runs, Console())


@report_app.command("show", help="One run's report for a terminal: summary, discrepancies by kind, city, "
                                 "organization line and repair, the trend over the last runs of its kind, and the "
                                 "hours view. --json prints the same as one object (the JSON export without its "
                                 "rows). Unknown run: exit 2.", epilog=env_epilog("database"))
def report_show(run: RunArg, config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Show one run's report."""
    engine = _report_engine(config, json_output)
    try:
        report = _report_call(load_report, engine, run)
    finally:
        engine.dispose()
    if json_output:
        print_json(report.head())
    else:

        print_report(report, Console())


@report_app.command("export", help="Write one run's report: text (Rich tables), json and csv (every row, "
                                   "streamed), or html (one self-contained page: charts, sortable and filterable "
                                   "tables of the first 5 000 rows of each kind; opens with no network). To stdout "
                                   "unless --output. --show-personal-data puts the volunteers' live ID numbers and "
                                   "phones in clear; it needs --reason and is audited (action "
                                   "report_personal_data).", epilog=env_epilog("database"))
def report_export(run: RunArg, config: ConfigOpt = None,
                  fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, csv or html.")] = "text",
                  output: Annotated[Path | None, typer.Option(
                      "--output", "-o", dir_okay=False, help="Write to this file (replaced when complete).")] = None,
                  show_personal_data: Annotated[bool, typer.Option(
                      "--show-personal-data", help="Clear ID numbers and phones (audited; needs --reason).")] = False,
                  reason: Annotated[str | None, typer.Option(
                      "--reason", help="Why the personal data is needed (goes to the audit table).")] = None,
                  actor: ActorOpt = None) -> None:
    """Export one run's report."""
    width = shutil.get_terminal_size((100, 24)).columns if output is None and sys.stdout.isatty() else 100
    engine = _report_engine(config, fmt == "json" and output is None)
    try:
        report, audit_id = _report_call(export_to_path, engine, run, fmt.lower(), output,
                                        show_personal_data=show_personal_data, reason=reason,
                                        actor=actor or default_actor(), width=width)
    finally:
        engine.dispose()
    if output is not None:
        note = _("; audit #{audit_id}").format(audit_id=audit_id) if audit_id is not None else ""
        err.print(escape(_("wrote {path} ({format}, run {run}, {count} discrepancies{note})").format(
            path=output, format=fmt, run=run, count=f"{report.counts.total:,}", note=note)), highlight=False)


report_app.command("worklist", help=WORKLIST_HELP, epilog=env_epilog("database"))(worklist_command)


def main() -> None:
    """Console entry point: the language chosen (``--lang``, else ``REGSYNC_LANG``, else zh-CN), the commands' help
    translated into it (:mod:`regsync.console.helptext`), then the command run."""
    choose_language(sys.argv[1:])
    translate_help(typer.main.get_command(app))(prog_name="regsync")


if __name__ == "__main__":
    main()
