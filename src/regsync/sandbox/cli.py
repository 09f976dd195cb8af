"""``regsync sandbox``: run the sandbox registry (registry-api.md §8).

Reads no configuration file and no environment variable: everything is given on the command line.
"""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from regsync.sandbox.faults import FAULT_NAMES, parse_fault_spec
from regsync.sandbox.store import ClientCredential
from regsync.settings import SIGN_METHODS

app = typer.Typer(
    help="The sandbox registry: an in-process stand-in for the national registry (registry-api.md), for "
    "the demo, staging, training and the tests. Reads only its command-line options (no config file, "
    "no environment variables).",
    no_args_is_help=True,
)

#: The closing line of each sandbox command's ``--help``, as regsync's own commands end with the settings they read.
_READS_NOTHING = "Settings read: none; only the options above (no config file, no REGSYNC_* environment variables)."


def _parse_client(spec: str) -> ClientCredential:
    parts = spec.split(":")
    if len(parts) != 3 or not all(parts) or len(parts[2]) != 2 or not parts[2].isdigit():
        raise typer.BadParameter(f"--client {spec!r}: expected CLIENT_ID:CLIENT_SECRET:PROVINCE (PROVINCE: 2 digits)")
    return ClientCredential(parts[0], parts[1], parts[2])


@app.command(epilog=_READS_NOTHING)
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
            help="Initial faults (registry-api.md §8) as NAME=VALUE[,NAME=VALUE…] (or a JSON object), "
            f"names: {', '.join(FAULT_NAMES)}. E.g. error_rate=0.05,latency_ms=20,retry_after_http_date=1. "
            "Rates are 0 to 1; maintenance_s starts a window now.",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the fault draws: the same seed and requests, the same faults.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print nothing but errors.")] = False,
) -> None:
    """Serve the sandbox registry at http://HOST:PORT/api/v1 until interrupted."""
    import uvicorn

    from regsync.sandbox.app import create_app
    from regsync.sandbox.server import new_client

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
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

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
    import socket

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


@app.command(epilog=_READS_NOTHING)
def seed(
    scale: Annotated[
        float | None,
        typer.Option(help="Generate the province afresh at this scale (1.0 = 3.2 M volunteers), as "
                     "`regsync generate --scale S --seed N` does, and seed from it.", min=0.00001),
    ] = None,
    from_store: Annotated[
        str | None, typer.Option(help="Seed from this platform store (a database URL) instead of generating.")
    ] = None,
    seed_: Annotated[int, typer.Option("--seed", help="Seed of the generator and of every draw.")] = 42,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only these kinds (repeatable): orgs, volunteers, memberships, activities, "
                     "service_records; e.g. --kind volunteers for benches."),
    ] = None,
    admin_url: Annotated[
        str, typer.Option(help="The running sandbox's admin URL (served with --admin).")
    ] = "http://127.0.0.1:8700/_sandbox",
    missing_in_registry: Annotated[float, typer.Option(help="Share of the platform's volunteers, memberships and "
                                                            "service records the registry lacks.")] = 0.03,
    differing: Annotated[float, typer.Option(help="Share of registry records differing from the platform's.")] = 0.05,
    missing_locally: Annotated[float, typer.Option(help="Portal self-registrations the platform lacks, per "
                                                        "volunteer.")] = 0.02,
    owner: Annotated[str | None, typer.Option(help="ownerClientId of the records (default PORTAL).")] = None,
    link: Annotated[bool, typer.Option(help="Also write the links into --from-store (a platform in step).")] = False,
    hash_key_file: Annotated[
        str | None,
        typer.Option(help="With --link: the file holding the store's hash_key (default, for a SQLite store: the "
                     "key file beside it, <store>.hash_key, made if missing; a PostgreSQL store needs it)."),
    ] = None,
    province: Annotated[str, typer.Option(help="Two-digit province.")] = "23",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Fill a running sandbox with a province's records as older channels left them (registry-api.md §8)."""
    import json

    from regsync.flows.reconcile import parse_kinds
    from regsync.generate.seed import SeedRates, http_bulk, seed_sandbox
    from regsync.settings import ConfigError

    if (scale is None) == (from_store is None):
        raise typer.BadParameter("give --scale or --from-store, one of them")
    try:
        kinds = parse_kinds(kind) if kind else None
        rates = SeedRates(missing_in_registry, differing, missing_locally)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    hash_key = None
    if link and from_store is not None:
        from pathlib import Path

        from regsync.settings import ensure_key_file, key_file_for

        key_file = Path(hash_key_file) if hash_key_file else key_file_for(from_store)
        if key_file is None:
            raise typer.BadParameter("--link on a PostgreSQL store needs --hash-key-file: the file holding the "
                                     "store's hash_key", param_hint="--hash-key-file")
        try:
            hash_key = ensure_key_file(key_file) if not hash_key_file else key_file.read_text("utf-8").strip()
        except (ConfigError, OSError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--hash-key-file") from None
        if not hash_key:
            raise typer.BadParameter(f"{key_file} is empty", param_hint="--hash-key-file")
    try:
        summary = seed_sandbox(http_bulk(admin_url, province), scale=scale, store_url=from_store, seed=seed_,
                               kinds=kinds, rates=rates, owner=owner, link=link, province=province,
                               **({"hash_key": hash_key} if hash_key else {}))  # type: ignore[arg-type]  # mypy checks a **dict against every keyword
    except ConfigError as exc:  # the links' hash key is not the store's
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        typer.echo(f"seeding failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    if json_output:
        typer.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    else:
        typer.echo(f"seeded {summary['seeded']}, left out {summary['left_out']}, differing {summary['differing']}, "
                   f"portal volunteers the platform lacks {summary['extra_volunteers']} in {summary['seconds']} s")


@app.command(epilog=_READS_NOTHING)
def version() -> None:
    """Print the registry interface version the sandbox implements."""
    typer.echo("registry interface v1 (registry-api.md)")
