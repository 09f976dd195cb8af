"""``regsync sandbox``: run the sandbox registry (registry-api.md §8).

Reads no configuration file and no environment variable: everything is given on the command line.
"""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from regsync.i18n import Phrase
from regsync.i18n import gettext_noop as N_
from regsync.sandbox.app import create_app
from regsync.sandbox.faults import FAULT_NAMES, parse_fault_spec
from regsync.sandbox.server import new_client
from regsync.sandbox.store import ClientCredential
from regsync.settings import SIGN_METHODS

#: The closing line of each sandbox command's ``--help``, as regsync's own commands end with the settings they read.
_READS_NOTHING = N_("Settings read: none; only the options above (no config file, no REGSYNC_* environment "
                    "variables).")


def _parse_client(spec: str) -> ClientCredential:
    parts = spec.split(":")
    if len(parts) != 3 or not all(parts) or len(parts[2]) != 2 or not parts[2].isdigit():
        raise typer.BadParameter(f"--client {spec!r}: expected CLIENT_ID:CLIENT_SECRET:PROVINCE (PROVINCE: 2 digits)")
    return ClientCredential(parts[0], parts[1], parts[2])


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8700,
    db: Annotated[
        str,
        typer.Option(
            help="Sandbox database URL: sqlite:// (throw-away), sqlite:///sandbox.db, or postgresql+psycopg://…"
        ),
    ] = "sqlite:///sandbox.db",
    client: Annotated[
        list[str] | None,
        typer.Option(
            "--client",
            help="A client as CLIENT_ID:CLIENT_SECRET:PROVINCE; repeatable. Without any, one is made for "
            "province 23 and printed.",
        ),
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin/--no-admin", help="Serve the /_sandbox/ admin endpoints (loopback only).")
    ] = True,
    rate_limit_rps: Annotated[float, typer.Option(help="Requests per second per client.")] = 20.0,
    rate_limit_burst: Annotated[int, typer.Option(help="Token-bucket size per client.")] = 40,
    sign_method_only: Annotated[
        str | None,
        typer.Option(help="Accept only this signature method (e.g. HMAC-SM3), as some registries do."),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help=Phrase(N_("Initial faults (registry-api.md §8) as NAME=VALUE[,NAME=VALUE…] (or a JSON object), "
                           "names: {names}. E.g. error_rate=0.05,latency_ms=20,retry_after_http_date=1. Rates are 0 "
                           "to 1; maintenance_s starts a window now."), names=", ".join(FAULT_NAMES)),
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the fault draws: the same seed and requests, the same faults.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
) -> None:
    """Serve the sandbox registry at http://HOST:PORT/api/v1 until interrupted."""
    import uvicorn  # start-up cost: only `serve` runs a server (the CLI is mounted in regsync's)

    creds = [_parse_client(c) for c in client or []]
    if not creds:
        creds = [new_client("23")]
        typer.echo(f"client: {creds[0].client_id}:{creds[0].client_secret}:{creds[0].province}")
    methods: tuple[str, ...] = SIGN_METHODS
    if sign_method_only:
        if sign_method_only not in SIGN_METHODS:
            raise typer.BadParameter(f"--sign-method-only: one of {', '.join(SIGN_METHODS)}")
        methods = (sign_method_only,)
    try:
        fault_dict = parse_fault_spec(faults)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from None

    try:
        application = create_app(
            db,
            creds,
            admin=admin,
            rate_limit_rps=rate_limit_rps,
            rate_limit_burst=rate_limit_burst,
            faults=fault_dict,
            seed=seed,
            sign_methods=methods,
        )
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise typer.BadParameter(f"not a database URL the sandbox can use: {exc}", param_hint="--db") from None
    except SQLAlchemyError as exc:
        raise typer.BadParameter(f"cannot open the sandbox's database: {getattr(exc, 'orig', exc)}",
                                 param_hint="--db") from None

    try:  # say the address is in use before claiming to serve on it
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}", param_hint="--port") from None
    if not quiet:
        typer.echo(
            f"sandbox registry at http://{host}:{port}/api/v1" + (" (admin: /_sandbox/)" if admin else "")
        )
    # This process serves the sandbox alone. A batch of 500 operations keeps tens of thousands of young
    # containers alive to its end: at the default thresholds that is about a dozen collections per batch (some
    # of them full ones, over every object of the startup too), some 8 ms of a ~55 ms batch. So the startup's
    # objects are frozen (never traversed again) and the young generation is collected less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        timeout_keep_alive=30,
        date_header=False,  # the app sends Date on the registry's (possibly offset) clock
    )


def seed_elsewhere(ctx: typer.Context) -> None:
    """Fill a running sandbox with a province's records as older channels left them (registry-api.md §8).

    Runs ``regsync sandbox seed`` with these arguments (see its --help): seeding is the generator's, not the
    sandbox's.
    """
    done = subprocess.run([sys.executable, "-m", "regsync.console.cli", "sandbox", "seed", *ctx.args],  # noqa: S603
                          check=False)
    raise typer.Exit(done.returncode)


def version() -> None:
    """Print the registry interface version the sandbox implements."""
    typer.echo("registry interface v1 (registry-api.md)")


def make_app(seed_command: Callable[..., None] | None = None) -> typer.Typer:
    """The sandbox's command line: ``serve``, ``seed`` and ``version``.

    Args:
        seed_command: the ``seed`` command, a Typer command function (regsync's console gives its own, which runs
            the generator: :func:`regsync.console.sandbox_seed.seed`). Without it, ``seed`` hands its arguments
            over to ``regsync sandbox seed`` in a subprocess (:func:`seed_elsewhere`), so that
            ``python -m regsync.sandbox seed …`` keeps working while the sandbox imports nothing of the generator.

    Returns:
        A new :class:`typer.Typer` holding the three commands.
    """
    cli = typer.Typer(
        help="The sandbox registry: an in-process stand-in for the national registry (registry-api.md), for "
        "the demo, staging, training and the tests. Reads only its command-line options (no config file, "
        "no environment variables).",
        no_args_is_help=True,
    )
    cli.command(epilog=_READS_NOTHING)(serve)
    if seed_command is not None:
        cli.command("seed", epilog=_READS_NOTHING)(seed_command)
    else:
        cli.command("seed", add_help_option=False, context_settings={
            "allow_extra_args": True, "ignore_unknown_options": True})(seed_elsewhere)
    cli.command(epilog=_READS_NOTHING)(version)
    return cli


#: ``python -m regsync.sandbox``: its ``seed`` runs ``regsync sandbox seed`` in a subprocess.
app = make_app()
