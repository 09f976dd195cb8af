"""Benchmark: generate a province-shaped data set, push it all into the sandbox registry, and print
records per second per kind and the peak memory, on SQLite, PostgreSQL and MariaDB.

    python bench/sync_throughput.py [--scale 0.01] [--db sqlite|postgresql|mariadb|both|all]
                                    [--platform reference|legacy …] [--rate-limit-rps N]

``--platform legacy`` runs the same province on the legacy platform's own tables through its mapping (issue 14:
the tables made, regsync's beside them, checked and installed, then generated through the mapping, as
``regsync generate`` does): the figures compare with the reference tables' run of the same scale, back to back
with ``--platform reference legacy``. On PostgreSQL the platform's tables are in a schema of their own beside
regsync's, on MariaDB in a database of their own, on SQLite in the same file.

Each (database, scale) runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its own. The
sandbox registry runs in another process (its own core), as a real registry would. Issue 2's targets on a
2-core machine: unthrottled ≥ 5 000 records/s end to end; at 4 requests/s (2 000 operations/s) ≥ 90 % of that
cap; memory flat in the scale.

Beside each run: the relay's CPU time per record pushed, from the child process's own accounting
(``getrusage(RUSAGE_SELF)``, user + system, around the push, divided by the records pushed; the sandbox and the
database server are other processes; ``BENCH_PROFILE`` and ``--profile`` add the profiler's own cost), and, from
the same child after the push, the CPU time of issue 17's loop (:func:`calibration.loop_seconds`) and the CPU per
record divided by it (issue 17: ≤ 110 µs per loop-second on SQLite), so that figures from different machines or
days can be set side by side. With ``--rate-limit-rps`` the records/s as a share of the cap (N × 500 operations/s).

``--profile FILE`` profiles each run's push (cProfile) and appends its top functions by cumulative and by own
time to FILE (the CPU figures of a profiled run are the profiler's too: take them from a run without it).
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

from calibration import cpu_per_record_normalized, cpu_target_normalized, loop_seconds, write_profile

PG_URL = os.environ.get("REGSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("REGSYNC_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4")


def _my_url(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(MY_URL).set(database=database).render_as_string(hide_password=False)


def cpu_s() -> float:
    """This process's CPU time so far, user + system, in seconds (all its threads: the relay's senders too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime



def child(db: str, scale: float, rate: float | None, workdir: Path, platform: str = "reference",
          profile: Path | None = None) -> dict:
    from sqlalchemy import text

    from regsync.db.session import make_engine
    from regsync.domain.kinds import KIND_NAMES
    from regsync.flows.outbound import Relay
    from regsync.generate.load import run_generate
    from regsync.registry.client import RegistryClient
    from regsync.sandbox.server import SandboxServer
    from regsync.sandbox.store import ClientCredential
    from regsync.service.logs import configure_logging
    from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

    configure_logging(LogSettings(level="ERROR"))
    schema = None
    platform_schema = ""
    if db == "sqlite":
        url = f"sqlite:///{workdir / 'bench-local.db'}"
        Path(workdir / "bench-local.db").unlink(missing_ok=True)
    elif db == "mariadb":
        schema = "bench_" + secrets.token_hex(4)
        admin = make_engine(MY_URL)
        with admin.begin() as c:
            c.execute(text(f"CREATE DATABASE {schema} CHARACTER SET utf8mb4"))
        admin.dispose()
        url = _my_url(schema)
    else:
        schema = "bench_" + secrets.token_hex(4)
        admin = make_engine(PG_URL)
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    if platform != "reference" and schema:
        platform_schema = f"{schema}_p"  # made by the legacy tables' creation (regsync generate's first step)
    cid, secret = "bench", secrets.token_urlsafe(16)
    sandbox_db = workdir / f"bench-sandbox-{db}-{scale}.db"
    sandbox_db.unlink(missing_ok=True)
    try:
        with SandboxServer(db_url=f"sqlite:///{sandbox_db}", clients=[ClientCredential(cid, secret, "23")],
                           subprocess=True, rate_limit_rps=rate or 20.0,
                           rate_limit_burst=int(rate * 2) if rate else 40) as sandbox:
            settings = Settings(database=DatabaseSettings(url=url, mapping=platform, platform_schema=platform_schema),
                                registry=RegistrySettings(url=sandbox.base_url, client_id=cid, client_secret=secret,
                                                          retry_after_cap_s=120.0),
                                log=LogSettings(level="ERROR"))
            engine = make_engine(url)
            t0 = time.monotonic()
            gen = run_generate(settings, scale=scale, seed=7, engine=engine)
            sql_time: dict[str, list[float]] = {}
            if os.environ.get("BENCH_SQLTIME"):  # time spent per statement, on stderr at the end
                from sqlalchemy import event

                @event.listens_for(engine, "before_cursor_execute")
                def _start(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
                    conn.info["t0"] = time.perf_counter()

                @event.listens_for(engine, "after_cursor_execute")
                def _stop(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
                    entry = sql_time.setdefault(" ".join(statement.split())[:110], [0.0, 0])
                    entry[0] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())
                    entry[1] += 1
            gen_s = time.monotonic() - t0
            spent: dict[str, float] = {}
            counts: dict[str, int] = {}
            last = [time.monotonic()]

            def on_batch(kind: str, n: int) -> None:
                # the time since the previous batch (of any kind) is this batch's
                now = time.monotonic()
                spent[kind] = spent.get(kind, 0.0) + now - last[0]
                last[0] = now
                counts[kind] = counts.get(kind, 0) + n

            with RegistryClient(settings.registry, province="23") as client:
                relay = Relay(engine, client, settings, progress=on_batch,
                              concurrency=int(os.environ.get("BENCH_CONCURRENCY", "0")) or None)
                profiler = None
                if os.environ.get("BENCH_PROFILE") or profile:  # the relay's profile (cProfile)
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                t1 = time.monotonic()
                last[0] = t1
                cpu0 = cpu_s()
                total = pushed = 0
                while True:
                    stats = relay.run()
                    pushed += sum(stats.pushed.values())
                    total += sum(stats.pushed.values()) + sum(stats.linked.values())
                    with engine.connect() as c:
                        left = c.execute(text("SELECT COUNT(*) FROM outbox WHERE state IN ('pending','deferred')")
                                         ).scalar_one()
                    if left == 0:
                        break
                    time.sleep(0.5)
                sync_s = time.monotonic() - t1
                relay_cpu_s = cpu_s() - cpu0
                for stmt, (spent_s, n) in sorted(sql_time.items(), key=lambda x: -x[1][0])[:15]:
                    print(f"{spent_s:8.2f}s {n:6} {stmt}", file=sys.stderr)
                if profiler is not None:
                    import pstats

                    profiler.disable()
                    if profile:
                        write_profile(profiler, profile, f"push: {db}, {platform} mapping, scale {scale}, "
                                      f"rate limit {rate or 'default 20'} rps, {pushed:,} records pushed in "
                                      f"{sync_s:.1f} s")
                    if os.environ.get("BENCH_PROFILE"):
                        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(35)
                relay.close()
                calls = client.stats.as_dict()
            records = sum(gen["counts"].values()) if isinstance(gen.get("counts"), dict) else None
            engine.dispose()
    finally:
        if schema:
            admin = make_engine(MY_URL if db == "mariadb" else PG_URL)
            with admin.begin() as c:
                for name in filter(None, (schema, platform_schema)):
                    c.execute(text(f"DROP DATABASE IF EXISTS {name}" if db == "mariadb"
                                   else f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            admin.dispose()
    loop_s = loop_seconds()
    per_kind = {KIND_NAMES[k]: round(counts[k] / max(spent[k], 1e-9)) for k in spent}
    return {"db": db, "platform": platform, "scale": scale, "rate_limit_rps": rate, "records": records,
            "generate_s": round(gen_s, 2),
            "sync_s": round(sync_s, 2), "records_per_s": round((records or total) / sync_s),
            "per_kind_records_per_s": per_kind, "pushed": pushed, "relay_cpu_s": round(relay_cpu_s, 3),
            "relay_cpu_us_per_record": round(relay_cpu_s * 1e6 / max(pushed, 1)), "yardstick_s": round(loop_s, 3),
            "relay_cpu_us_per_record_per_loop_s": round(
                cpu_per_record_normalized(relay_cpu_s * 1e6 / max(pushed, 1), loop_s), 1),
            "cap_ops_per_s": rate * 500 if rate else None, "profiled": profile is not None,
            "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "client": calls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[0.01])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "mariadb", "both", "all"], default="both",
                    help="both: SQLite and PostgreSQL; all: and MariaDB")
    ap.add_argument("--platform", choices=["reference", "legacy"], nargs="+", default=["reference"],
                    help="the platform's tables: regsync's reference tables, or the legacy platform's through its "
                         "mapping; several run back to back")
    ap.add_argument("--rate-limit-rps", type=float, default=None, help="hold the sandbox to N requests/s")
    ap.add_argument("--profile", type=Path, default=None,
                    help="profile each run's push and append its top functions to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(child(args.db, args.scale[0], args.rate_limit_rps, Path(tmp), args.platform[0],
                                  args.profile)))
        return
    dbs = {"both": ["sqlite", "postgresql"], "all": ["sqlite", "postgresql", "mariadb"]}.get(args.db, [args.db])
    for db, scale, platform in ((d, s, p) for d in dbs for s in args.scale for p in args.platform):
        cmd = [sys.executable, __file__, "--child", "--db", db, "--scale", str(scale), "--platform", platform]
        if args.rate_limit_rps:
            cmd += ["--rate-limit-rps", str(args.rate_limit_rps)]
        if args.profile:
            cmd += ["--profile", str(args.profile.resolve())]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        if os.environ.get("BENCH_PROFILE") or os.environ.get("BENCH_SQLTIME"):
            print(out.stderr[-15000:], file=sys.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{db:10} {platform:9} scale {scale:<6} records {result['records']:>8,}  "
              f"generate {result['generate_s']:>6}s  "
              f"sync {result['sync_s']:>7}s  {result['records_per_s']:>6,} rec/s  "
              f"peak RSS {result['peak_rss_mb']} MB  rate limit {result['rate_limit_rps'] or 'default 20'} rps")
        print("           per kind (rec/s): " + ", ".join(f"{k} {v:,}" for k, v in
                                                          result["per_kind_records_per_s"].items()))
        print(f"           relay CPU {result['relay_cpu_us_per_record']} µs/record (user + system "
              f"{result['relay_cpu_s']} s for {result['pushed']:,} records pushed"
              f"{'; profiled: the profiler is counted' if result['profiled'] else ''}); "
              f"loop {result['yardstick_s']:.3f} s; CPU/record ÷ loop "
              f"{result['relay_cpu_us_per_record_per_loop_s']} µs/s (issue 17: "
              f"{'≤ ' + str(target) if (target := cpu_target_normalized(db, platform)) else 'no target'})")
        if result["cap_ops_per_s"]:
            print(f"           {result['records_per_s'] / result['cap_ops_per_s']:.1%} of the cap "
                  f"({result['cap_ops_per_s']:,.0f} operations/s)")
        print("           client: " + json.dumps(result["client"]))


if __name__ == "__main__":
    main()
