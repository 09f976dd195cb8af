"""``regsync demo``: the main job on the embedded defaults, end to end.

1. start afresh in the work dir: a SQLite file (``local.db``) and the sandbox registry on a free loopback port
   (its own SQLite file, ``sandbox.db``);
2. migrate and generate a province-shaped data set (fixed default seed and scale);
3. push everything through the outbox until nothing waits;
4. read the registry's export of each collection back and compare it with the local records, by their links.

Both databases are kept for inspection.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from regsync.commands import KIND_NAMES, outbox_failures, run_generate, run_sync
from regsync.db.session import is_postgres, make_engine
from regsync.outbound import TABLES
from regsync.projection import canonical, project_registry
from regsync.settings import ConfigError, DatabaseSettings, LogSettings, RegistrySettings, Settings


def _links_by_registry_id(engine: Engine, kind: str) -> Iterator[tuple[str, str]]:
    """(registry id, base) of the links of existing local rows of ``kind``, ascending by registry id as
    bytes (the order of the registry's export, registry-api.md §5.2), streamed."""
    collate = ' COLLATE "C"' if is_postgres(engine) else ""
    sql = text(f"SELECT l.registry_id, l.base FROM link l JOIN {TABLES[kind]} t ON t.id = l.local_id "  # noqa: S608
               f"WHERE l.entity = :k ORDER BY l.registry_id{collate}, l.local_id")
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(sql, {"k": kind})
        yield from result


def compare_with_registry(engine: Engine, client: Any, kind: str, hash_key: str) -> dict[str, int]:
    """Merge-join the registry's export of ``kind`` with the local links, in flat memory.

    Returns:
        ``found``: local rows whose registry record is in the export; ``agree``: of those, the ones whose
        registry record equals the link's base snapshot (the state both sides last agreed on);
        ``registry_total``: records in the export; ``unlinked``: of those, records no local row links (a
        person's two local rows link one record, so ``found`` can exceed the records it names).
    """
    found = agree = total = matched = 0
    links = _links_by_registry_id(engine, kind)
    current = next(links, None)
    with client.export(kind) as export:
        for record in export:
            total += 1
            rid = record["id"]
            while current is not None and current[0].encode() < rid.encode():
                current = next(links, None)
            if current is None:
                continue
            snap = None
            if current[0] == rid:
                matched += 1
            while current is not None and current[0] == rid:
                found += 1
                if snap is None:
                    snap = canonical(project_registry(kind, record), hash_key)
                if json.loads(current[1]) == snap:
                    agree += 1
                current = next(links, None)
    return {"found": found, "agree": agree, "registry_total": total, "unlinked": total - matched}


def local_counts(engine: Engine) -> dict[str, int]:
    """Local rows per kind."""
    with engine.connect() as conn:
        return {KIND_NAMES[k]: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608
                for k, t in TABLES.items()}


#: The file that marks a directory as the demo's own (so it is safe to empty it).
MARKER = ".regsync-demo"


def run_demo(*, workdir: Path, scale: float = 0.003, seed: int = 42, sign_method: str = "HMAC-SHA256",
             progress: bool = False, faults: str | None = None) -> dict[str, Any]:
    """Run the demo; returns its summary.

    Returns:
        ``local``, ``registry``, ``pushed``, ``linked``, ``failed`` (each: kind → count, kinds named ``orgs``,
        ``volunteers``, ``memberships``, ``activities``, ``service_records``), ``failed_by_code`` (code →
        count), ``agree`` (kind → records equal to their base), ``registry_total`` (kind → records in the
        registry's export: more than ``registry`` only if the registry holds records no local row links),
        ``adds_up`` (``local = registry + failed`` for every kind), ``generated`` (the generator's summary),
        ``faults`` (set, injected, the client's retries), ``status``, ``workdir`` and ``seconds``.

    Raises:
        ConfigError: the work dir is not the demo's own (not empty, no marker) or cannot be written.
    """
    from regsync.registry.client import RegistryClient
    from regsync.sandbox.faults import parse_fault_spec
    from regsync.sandbox.server import SandboxServer
    from regsync.sandbox.store import ClientCredential

    started = time.monotonic()
    workdir = workdir.resolve()
    marker = workdir / MARKER
    if workdir.exists() and (not workdir.is_dir() or (any(workdir.iterdir()) and not marker.exists())):
        raise ConfigError(f"{workdir} is not a demo work dir (it is not empty and has no {MARKER}); "
                          "name a new or empty directory with --workdir")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        marker.write_text("regsync demo work dir: `regsync demo` empties it of its databases on every run\n")
    except OSError as exc:
        raise ConfigError(f"cannot use {workdir} as the demo's work dir: {exc.strerror}") from exc
    for name in ("local.db", "sandbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)

    client_id = "demo-" + secrets.token_hex(4)
    client_secret = secrets.token_urlsafe(24)
    credential = ClientCredential(client_id, client_secret, "23")
    with SandboxServer(db_url=f"sqlite:///{workdir / 'sandbox.db'}", clients=[credential],
                       subprocess=True, faults=parse_fault_spec(faults) or None) as sandbox:
        settings = Settings(
            province="23",
            database=DatabaseSettings(url=f"sqlite:///{workdir / 'local.db'}"),
            registry=RegistrySettings(url=sandbox.base_url, client_id=client_id, client_secret=client_secret,
                                      sign_method=sign_method),
            log=LogSettings(level="WARNING"),
        )
        engine = make_engine(settings.database.url)
        generated = run_generate(settings, scale=scale, seed=seed, progress=progress, engine=engine)
        _, sync = run_sync(settings, progress=progress, until_quiet=True, engine=engine, timeout_s=1800,
                           stall_s=120)
        registry: dict[str, int] = {}
        agree: dict[str, int] = {}
        registry_total: dict[str, int] = {}
        unlinked: dict[str, int] = {}
        with RegistryClient(settings.registry, province=settings.province) as client:
            for kind, name in KIND_NAMES.items():
                cmp = compare_with_registry(engine, client, kind, settings.hash_key)
                registry[name] = cmp["found"]
                agree[name] = cmp["agree"]
                registry_total[name] = cmp["registry_total"]
                unlinked[name] = cmp["unlinked"]
        failed, failed_by_code = outbox_failures(engine)
        local = local_counts(engine)
        engine.dispose()
        injected = httpx.get(f"{sandbox.admin_url}/counters", timeout=30).json()["data"].get("injected", {})
    summary = {
        "local": local,
        "registry": registry,
        "agree": agree,
        "registry_total": registry_total,
        "registry_unlinked": unlinked,
        "adds_up": all(local[k] == registry[k] + failed.get(k, 0) for k in local),
        "pushed": sync["pushed"],
        "linked": sync["linked"],
        "failed": {name: failed.get(name, 0) for name in KIND_NAMES.values()},
        "failed_by_code": failed_by_code,
        "backlog": sync["backlog"],
        "faults": {"set": parse_fault_spec(faults), "injected": injected, "client": sync.get("client", {})},
        "generated": generated,
        "status": sync["status"],
        **({"error": sync["error"]} if sync.get("error") else {}),
        "workdir": str(workdir),
        "seconds": round(time.monotonic() - started, 3),
    }
    return summary


def print_demo_summary(summary: dict[str, Any]) -> None:
    """The demo's table, for a terminal."""
    out = Console()
    table = Table(title=f"regsync demo: {summary['status']} in {summary['seconds']} s", box=box.SIMPLE_HEAD,
                  padding=(0, 0), pad_edge=False)
    for col, just in (("kind", "left"), ("local", "right"), ("registry", "right"), ("agree", "right"),
                      ("pushed", "right"), ("linked", "right"), ("failed", "right"), ("adds up", "center")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for name in KIND_NAMES.values():
        local, reg, failed = summary["local"][name], summary["registry"][name], summary["failed"][name]
        table.add_row(name, f"{local:,}", f"{reg:,}", f"{summary['agree'][name]:,}",
                      f"{summary['pushed'].get(name, 0):,}", f"{summary['linked'].get(name, 0):,}", f"{failed:,}",
                      "yes" if local == reg + failed else "[red]no[/red]")
    out.print(table)
    extra = summary["registry_unlinked"]
    out.print("records in the registry's exports: " + ", ".join(
        f"{k} {summary['registry_total'][k]:,}" for k in summary["registry_total"])
        + ("" if not any(extra.values()) else "  (no local row links: " + ", ".join(
            f"{k} {v}" for k, v in extra.items() if v) + ")"))
    out.print("registry: local records found in the registry's export; agree: of those, equal to the last agreed "
              "state; pushed: writes the registry accepted; linked: to a record the registry already had")
    if summary["failed_by_code"]:
        out.print("failures by code: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["failed_by_code"].items())))
    if summary.get("error"):
        out.print(f"[red]error:[/red] {summary['error']}")
    if summary["faults"]["set"]:
        out.print("faults set: " + ", ".join(f"{k}={v}" for k, v in summary["faults"]["set"].items()))
        out.print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["faults"]["injected"].items())))
    out.print(f"databases kept in {summary['workdir']} (local.db, sandbox.db)")
