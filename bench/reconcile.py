"""Benchmark: reconcile N generated volunteers (``--kind volunteers``), or a whole generated province of every
kind (``--kind all``, the nine kinds of registry-api.md v1.1, at each ``--scale``), against the sandbox registry,
and print records per second and the peak memory, per size, so that one can see the memory does not grow with it.

    python bench/reconcile.py [--count 100000 1000000] [--db sqlite|postgresql]
    python bench/reconcile.py --kind all [--scale 0.003 0.01] [--db sqlite|postgresql] [--profile FILE]

For each count: the sandbox registry runs in its own process (its own core, a SQLite file); a setup child process
generates the volunteers alone into a fresh local store (the generator, ``kinds={"volunteer"}``) and seeds the
sandbox from it with every record linked, in step (``regsync.generate.seed``, no differences planted); then a
second, fresh child process runs ``run_reconcile(kinds=["volunteers"])`` alone, so that its ``ru_maxrss`` (peak
RSS) is the reconcile's own and not the setup's. Issue 5's targets: ≥ 20 000 records/s, ≤ 300 MB peak, flat in
the count. ``export alone/s`` is the sandbox's export streamed and decoded with nothing compared: the ceiling
the registry side sets. ``BENCH_PROFILE=1`` prints the reconcile's profile (cProfile, by own time).

``per CPU s`` is the registry's records divided by the measure process's own CPU time over the run
(``time.process_time``): on a loaded machine the wall-clock figure waits for a core, this one does not.

``--kind all``: the setup child generates the whole province (every kind) at the scale and seeds the sandbox with
all of it, linked and in step; the measure child runs ``run_reconcile()`` of every kind. ``registry/s`` is the
registry's records of the run (the sum over the kinds of ``compared[kind]["registry"]``) divided by its seconds:
issue 17's figure (target ≥ 50 000/s where the loop below takes 0.73 s, peak RSS flat in the scale).

Beside each row, from the measure child after the reconcile: the CPU time of issue 17's loop
(:func:`calibration.loop_seconds`) and ``registry/s × loop`` (issue 17: ≥ 36 500). ``--profile FILE`` profiles the
reconcile (cProfile; its figures then carry the profiler's cost) and appends its top functions by cumulative and
by own time to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from calibration import loop_seconds, reconcile_normalized, write_profile

PG_URL = os.environ.get("REGSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VOLUNTEERS_AT_SCALE_1 = 3_200_000


def _settings(url: str, base_url: str, cid: str, secret: str):
    from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

    return Settings(database=DatabaseSettings(url=url),
                    registry=RegistrySettings(url=base_url, client_id=cid, client_secret=secret, timeout_s=600),
                    log=LogSettings(level="ERROR"))


def setup(url: str, size: str, admin_url: str, cid: str, what: str = "volunteers") -> dict:
    from sqlalchemy import text

    from regsync.db.migrate import upgrade
    from regsync.db.session import make_engine
    from regsync.generate.generator import generate
    from regsync.generate.seed import NONE, http_bulk, seed_sandbox
    from regsync.service.logs import configure_logging
    from regsync.settings import LogSettings

    configure_logging(LogSettings(level="ERROR"))
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.monotonic()
    every = what == "all"
    scale = float(size) if every else int(size) / VOLUNTEERS_AT_SCALE_1
    generate(engine, scale, 42, kinds=None if every else {"volunteer"})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        local = conn.execute(text("SELECT count(*) FROM volunteer")).scalar_one()
    t1 = time.monotonic()
    out = seed_sandbox(http_bulk(admin_url), store_url=url, kinds=None if every else ["volunteer"], rates=NONE,
                       owner=cid, link=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return {"local_volunteers": local, "generate_s": round(t1 - t0, 1), "seed_s": out["seconds"],
            "seeded": sum(out["seeded"].values()) if every else out["seeded"].get("volunteer", 0),
            "seeded_by_kind": out["seeded"]}


def measure(url: str, base_url: str, cid: str, secret: str, what: str = "volunteers", profile: str = "") -> dict:
    from regsync.flows.reconcile import run_reconcile
    from regsync.service.logs import configure_logging
    from regsync.settings import LogSettings

    configure_logging(LogSettings(level="ERROR"))
    settings = _settings(url, base_url, cid, secret)
    # the ceiling the sandbox sets: its export streamed and decoded alone, with nothing compared
    from regsync.domain.kinds import KINDS
    from regsync.registry.client import RegistryClient

    every = what == "all"
    t0 = time.monotonic()
    exported = 0
    with RegistryClient(settings.registry, province="23") as client:
        for kind in KINDS if every else ("volunteer",):
            with client.export(kind) as ex:
                ex.lazy = True
                exported += sum(1 for r in ex if r["id"])
    export_s = time.monotonic() - t0
    profiler = None
    if os.environ.get("BENCH_PROFILE") or profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    code, summary = run_reconcile(settings, kinds=None if every else ["volunteers"])
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if profiler is not None:
        import pstats

        profiler.disable()
        if profile:
            registry = sum(c.get("registry", 0) for c in summary["compared"].values())
            write_profile(profiler, Path(profile), f"reconcile ({what}): {registry:,} registry records in "
                          f"{seconds:.1f} s")
        if os.environ.get("BENCH_PROFILE"):
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    by_kind = summary["compared"] if every else {"volunteer": summary["compared"]["volunteer"]}
    registry = sum(c.get("registry", 0) for c in by_kind.values())
    local = sum(c.get("local", 0) for c in by_kind.values())
    loop_s = loop_seconds()
    return {"exit_code": code, "status": summary["status"], "registry_records": registry,
            "local_records": local, "pairs": sum(c.get("pairs", 0) for c in by_kind.values()),
            "registry_by_kind": {k: c.get("registry", 0) for k, c in by_kind.items()},
            "discrepancies": summary["discrepancies"], "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
            "registry_records_per_s": round(registry / seconds),
            "registry_records_per_cpu_s": round(registry / max(cpu, 1e-9)),
            "export_alone_records_per_s": round(exported / export_s),
            "records_per_s": round((registry + local) / seconds),
            "peak_rss_mb": round(peak_mb, 1), "loop_s": round(loop_s, 3),
            "registry_per_s_x_loop": round(reconcile_normalized(registry / seconds, loop_s)),
            "profiled": bool(profile)}


def run_one(db: str, count: str, workdir: Path, what: str = "volunteers", profile: str = "") -> dict:
    from sqlalchemy import text

    from regsync.db.session import make_engine
    from regsync.sandbox.server import SandboxServer
    from regsync.sandbox.store import ClientCredential

    schema = None
    if db == "sqlite":
        path = workdir / f"bench-reconcile-{count}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        schema = "bench_rc_" + secrets.token_hex(4)
        admin = make_engine(PG_URL)
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    cid, secret = "bench", secrets.token_urlsafe(16)
    sandbox_db = workdir / f"bench-reconcile-sandbox-{db}-{count}.db"
    sandbox_db.unlink(missing_ok=True)
    try:
        with SandboxServer(db_url=f"sqlite:///{sandbox_db}", clients=[ClientCredential(cid, secret, "23")],
                           subprocess=True, rate_limit_rps=1000, rate_limit_burst=1000) as sandbox:
            prep = _child("setup", url, count, sandbox.admin_url, cid, what)
            result = _child("measure", url, sandbox.base_url, cid, secret, what, profile)
    finally:
        sandbox_db.unlink(missing_ok=True)
        if schema:
            admin = make_engine(PG_URL)
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
    return {"db": db, "kind": what, "size": count, **prep, **result}


def _child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr[-4000:]}")
    if os.environ.get("BENCH_PROFILE"):
        print(proc.stderr[-12000:], file=sys.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["volunteers", "all"], default="volunteers",
                   help="volunteers: --count volunteers alone; all: every kind of a province at each --scale")
    p.add_argument("--count", type=int, nargs="+", default=[100_000])
    p.add_argument("--scale", type=float, nargs="+", default=[0.003, 0.01], help="with --kind all")
    p.add_argument("--profile", type=Path, default=None,
                   help="profile each reconcile and append its top functions to this file")
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        what, *rest = args.child
        out = setup(*rest) if what == "setup" else measure(*rest)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="regsync-bench-", dir=args.workdir) as tmp:
        sizes = [str(s) for s in args.scale] if args.kind == "all" else [str(n) for n in args.count]
        profile = str(args.profile.resolve()) if args.profile else ""
        rows = [run_one(args.db, n, Path(tmp), args.kind, profile) for n in sizes]
    print(f"{'db':<11}{'size':>8}{'registry':>11}{'records/s':>11}{'registry/s':>11}{'per CPU s':>10}{'seconds':>9}"
          f"{'peak RSS MB':>13}{'export alone/s':>16}{'loop s':>8}{'reg/s×loop':>11}  discrepancies")
    for r in rows:
        print(f"{r['db']:<11}{r['size']:>8}{r['registry_records']:>11,}{r['records_per_s']:>11,}"
              f"{r['registry_records_per_s']:>11,}{r['registry_records_per_cpu_s']:>10,}{r['seconds']:>9}"
              f"{r['peak_rss_mb']:>13}"
              f"{r['export_alone_records_per_s']:>16,}{r['loop_s']:>8}{r['registry_per_s_x_loop']:>11,}  "
              f"{r['discrepancies']}{'  (profiled)' if r['profiled'] else ''}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
