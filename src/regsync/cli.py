"""The ``regsync`` command line (Typer on Click, Rich for the terminal).

Exit codes (design.md, "Operator commands"): 0 the run completed (also when some records failed on their
data: the run is *partial*), 1 the run failed, 2 a usage or configuration error, 3 unhealthy. Under
``--json`` stdout holds only the JSON; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
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

err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (or REGSYNC_CONFIG).",
                                                exists=False, dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]


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
    from regsync.db.migrate import current_revision, upgrade
    from regsync.db.session import make_engine

    settings = _setup(config, False)
    engine = make_engine(settings.database.url)
    try:
        upgrade(engine, revision)
        err.print(f"database at revision {current_revision(engine)}")
    except Exception as exc:  # noqa: BLE001 — report and exit non-zero
        err.print(f"[red]migration failed:[/red] {exc}")
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
             json_output: JsonOpt = False) -> None:
    from regsync.commands import run_generate

    settings = _setup(config, json_output)
    summary = run_generate(settings, scale=scale, seed=seed, progress=show_progress(json_output))
    if json_output:
        print_json(summary)
    else:
        from regsync.commands import print_generate_summary
        print_generate_summary(summary)


# ------------------------------------------------------------------------------------------------ sync
@app.command(help="Run one outbound pass: push every queued local change to the registry. "
                  + env_help("database", "registry", "relay"))
def sync(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    from regsync.commands import print_sync_summary, run_sync

    settings = _setup(config, json_output)
    code, summary = run_sync(settings, progress=show_progress(json_output))
    if json_output:
        print_json(summary)
    else:
        print_sync_summary(summary)
    raise typer.Exit(code)


# ------------------------------------------------------------------------------------------------ demo
@app.command(help="The main job on the embedded defaults: a SQLite file and the sandbox registry on a free "
                  "loopback port; generate a province, push it all, read the registry's export back and "
                  "compare. Starts afresh in WORKDIR and keeps both databases there for inspection.")
def demo(scale: Annotated[float, typer.Option(help="Data set scale (1.0 = the province).", min=0.00001)] = 0.003,
         seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
         workdir: Annotated[Path, typer.Option(help="Work directory (emptied of an earlier demo).")] = Path(
             "regsync-demo"),
         sign_method: Annotated[str, typer.Option(help="HMAC-SHA256 or HMAC-SM3.")] = "HMAC-SHA256",
         json_output: JsonOpt = False) -> None:
    from regsync.demo import print_demo_summary, run_demo
    from regsync.logs import configure_logging
    from regsync.settings import LogSettings

    configure_logging(LogSettings(level="WARNING"))
    try:
        summary = run_demo(workdir=workdir, scale=scale, seed=seed, sign_method=sign_method,
                           progress=show_progress(json_output))
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if json_output:
        print_json(summary)
    else:
        print_demo_summary(summary)
    raise typer.Exit(0 if summary.get("status") in ("success", "partial") else 1)


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
