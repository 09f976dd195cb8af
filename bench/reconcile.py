"""Benchmark: reconcile N generated volunteers (``--kind volunteers``) against the sandbox registry, and print records
per second and the peak memory, per count, so that one can see the memory does not grow with the count.

    python bench/reconcile.py [--count 100000 1000000] [--db sqlite|postgresql]

For each count: the sandbox registry runs in its own process (its own core, a SQLite file); a setup child process
generates the volunteers alone into a fresh local store (the generator, ``kinds={"volunteer"}``) and seeds the
sandbox from it with every record linked, in step (``regsync.generate.seed``, no differences planted); then a
second, fresh child process runs ``run_reconcile(kinds=["volunteers"])`` alone, so that its ``ru_maxrss`` (peak
RSS) is the reconcile's own and not the setup's. Issue 5's targets: ≥ 20 000 records/s, ≤ 300 MB peak, flat in
the count. ``export alone/s`` is the sandbox's export streamed and decoded with nothing compared: the ceiling
the registry side sets. ``BENCH_PROFILE=1`` prints the reconcile's profile (cProfile, by own time).
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

PG_URL = os.environ.get("REGSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VOLUNTEERS_AT_SCALE_1 = 3_200_000


def _settings(url: str, base_url: str, cid: str, secret: str):
    from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

    return Settings(database=DatabaseSettings(url=url),
                    registry=RegistrySettings(url=base_url, client_id=cid, client_secret=secret, timeout_s=600),
                    log=LogSettings(level="ERROR"))


def setup(url: str, count: int, admin_url: str, cid: str) -> dict:
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
    generate(engine, count / VOLUNTEERS_AT_SCALE_1, 42, kinds={"volunteer"})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        local = conn.execute(text("SELECT count(*) FROM volunteer")).scalar_one()
    t1 = time.monotonic()
    out = seed_sandbox(http_bulk(admin_url), store_url=url, kinds=["volunteer"], rates=NONE, owner=cid, link=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return {"local_volunteers": local, "generate_s": round(t1 - t0, 1), "seed_s": out["seconds"],
            "seeded": out["seeded"].get("volunteer", 0)}


def measure(url: str, base_url: str, cid: str, secret: str) -> dict:
    from regsync.flows.reconcile import run_reconcile
    from regsync.service.logs import configure_logging
    from regsync.settings import LogSettings

    configure_logging(LogSettings(level="ERROR"))
    settings = _settings(url, base_url, cid, secret)
    # the ceiling the sandbox sets: its export streamed and decoded alone, with nothing compared
    from regsync.registry.client import RegistryClient

    t0 = time.monotonic()
    with RegistryClient(settings.registry, province="23") as client, client.export("volunteer") as ex:
        ex.lazy = True
        exported = sum(1 for r in ex if r["id"])
    export_s = time.monotonic() - t0
    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.monotonic()
    code, summary = run_reconcile(settings, kinds=["volunteers"])
    seconds = time.monotonic() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    compared = summary["compared"]["volunteer"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"exit_code": code, "status": summary["status"], "registry_records": compared.get("registry", 0),
            "local_records": compared.get("local", 0), "pairs": compared.get("pairs", 0),
            "discrepancies": summary["discrepancies"], "seconds": round(seconds, 2),
            "registry_records_per_s": round(compared.get("registry", 0) / seconds),
            "export_alone_records_per_s": round(exported / export_s),
            "records_per_s": round((compared.get("registry", 0) + compared.get("local", 0)) / seconds),
            "peak_rss_mb": round(peak_mb, 1)}


def run_one(db: str, count: int, workdir: Path) -> dict:
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
            prep = _child("setup", url, str(count), sandbox.admin_url, cid)
            result = _child("measure", url, sandbox.base_url, cid, secret)
    finally:
        sandbox_db.unlink(missing_ok=True)
        if schema:
            admin = make_engine(PG_URL)
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
    return {"db": db, "count": count, **prep, **result}


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
    p.add_argument("--count", type=int, nargs="+", default=[100_000])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        what, *rest = args.child
        out = setup(rest[0], int(rest[1]), rest[2], rest[3]) if what == "setup" else measure(*rest)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="regsync-bench-", dir=args.workdir) as tmp:
        rows = [run_one(args.db, n, Path(tmp)) for n in args.count]
    print(f"{'db':<11}{'volunteers':>11}{'records/s':>11}{'registry/s':>11}{'seconds':>9}{'peak RSS MB':>13}"
          f"{'export alone/s':>16}  discrepancies")
    for r in rows:
        print(f"{r['db']:<11}{r['registry_records']:>11,}{r['records_per_s']:>11,}{r['registry_records_per_s']:>11,}"
              f"{r['seconds']:>9}{r['peak_rss_mb']:>13}{r['export_alone_records_per_s']:>16,}  {r['discrepancies']}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
