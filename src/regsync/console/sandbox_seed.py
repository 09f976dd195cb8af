"""``regsync sandbox seed``: fill a running sandbox registry through its admin endpoints (registry-api.md §8).

Seeding is the generator's (:mod:`regsync.generate.seed`), not the sandbox's: the sandbox shares only the domain
with regsync. The console mounts this command among the sandbox's own (:func:`regsync.sandbox.cli.make_app`);
``python -m regsync.sandbox seed`` hands its arguments over to it in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regsync.flows.reconcile import parse_kinds
from regsync.generate.seed import SeedRates, http_bulk, seed_sandbox
from regsync.settings import ConfigError, ensure_key_file, key_file_for


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
                     "service_records, trainings, training_records, commendations, evaluations; e.g. --kind "
                     "volunteers for benches."),
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
    # start-up cost: the generator, the store and the flows load for this command only, not for every `regsync`

    if (scale is None) == (from_store is None):
        raise typer.BadParameter("give --scale or --from-store, one of them")
    try:
        kinds = parse_kinds(kind) if kind else None
        rates = SeedRates(missing_in_registry, differing, missing_locally)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    hash_key = None
    if link and from_store is not None:
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
