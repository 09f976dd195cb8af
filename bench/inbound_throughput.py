"""Benchmark: portal-side changes applied by the inbound poller, changes per second, on SQLite and PostgreSQL.

    python bench/inbound_throughput.py [--changes 100000] [--volunteers 20000] [--db sqlite|postgresql|both]

Each database runs in a fresh child process (its own peak RSS). The sandbox registry runs in another process.
Set-up (not timed): the volunteers are written locally and pushed; the feed cursor is taken after the push (so
the timed part has no echoes of the push); then the portal makes ``--changes`` actions (by default phone and
skills edits, with identity corrections and self-registrations mixed in: ``--mix``). Timed: one
``Poller.run()`` from that cursor to the head, which reads every change, looks up the bodies and merges them
into the local rows. Issue 4's target: at least 5 000 changes per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from calibration import loop_seconds

PG_URL = os.environ.get("REGSYNC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MIXES = {
    "contact": {"contact_edit": 1.0},
    "mixed": {"contact_edit": 70, "identity_correction": 10, "self_registration": 15, "transfer_out": 3,
              "deregistration": 2},
}


def _id_number(rng: random.Random, n: int) -> str:
    from stdnum.cn import ric

    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 55))
    first17 = f"230102{born:%Y%m%d}{n % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def child(db: str, volunteers: int, changes: int, mix: str, workdir: Path) -> dict:
    from sqlalchemy import text

    from regsync.db.migrate import upgrade
    from regsync.db.session import make_engine
    from regsync.flows.inbound import Poller
    from regsync.flows.outbound import Relay
    from regsync.registry.client import RegistryClient
    from regsync.sandbox.admin_client import trigger_activity
    from regsync.sandbox.server import SandboxServer
    from regsync.sandbox.store import ClientCredential
    from regsync.service.logs import configure_logging
    from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

    configure_logging(LogSettings(level="ERROR"))
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{workdir / 'bench-inbound.db'}"
    else:
        schema = "bench_" + secrets.token_hex(4)
        admin = make_engine(PG_URL)
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}%20-ctimezone%3DUTC"
    cid, secret = "bench", secrets.token_urlsafe(16)
    try:
        with SandboxServer(db_url=f"sqlite:///{workdir / 'bench-sandbox.db'}",
                           clients=[ClientCredential(cid, secret, "23")], subprocess=True,
                           rate_limit_rps=1000.0, rate_limit_burst=2000) as sandbox:
            settings = Settings(database=DatabaseSettings(url=url),
                                registry=RegistrySettings(url=sandbox.base_url, client_id=cid, client_secret=secret),
                                log=LogSettings(level="ERROR"))
            engine = make_engine(url)
            upgrade(engine)
            rng = random.Random(7)
            rows = []
            for n in range(volunteers):
                number = _id_number(rng, n)
                rows.append({"name": rng.choice("赵钱孙李周吴郑王") + rng.choice(["伟", "芳", "娜", "敏", "静", "强"]),
                             "id_type": "RESIDENT_ID", "id_number": number, "id_number_norm": number,
                             "gender": "M" if int(number[16]) % 2 else "F",
                             "birth_date": dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
                             "phone": f"138{rng.randrange(10**8):08d}", "region_code": "230102",
                             "skills": json.dumps(["急救"], ensure_ascii=False), "home_province": "23",
                             "status": "ACTIVE"})
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO volunteer (name, id_type, id_number, id_number_norm, gender, birth_date, phone, "
                    "region_code, skills, home_province, status) VALUES (:name, :id_type, :id_number, "
                    ":id_number_norm, :gender, :birth_date, :phone, :region_code, :skills, :home_province, "
                    ":status)"), rows)
            t0 = time.monotonic()
            with RegistryClient(settings.registry, province="23") as client:
                relay = Relay(engine, client, settings)
                while relay.run().pushed or relay.stats.deferred:
                    pass
                relay.close()
                push_s = time.monotonic() - t0
                with engine.connect() as c:
                    linked = c.execute(text("SELECT COUNT(*) FROM link")).scalar_one()
                Poller(engine, client, settings, record_run=False).take_first_cursor(force=True)
                t1 = time.monotonic()
                applied_by_portal: dict[str, int] = {}
                left, seed = changes, 1
                while left > 0:
                    n = min(left, 10_000)
                    got = trigger_activity(sandbox.admin_url, n, seed=seed, mix=MIXES[mix], timeout_s=600)
                    for k, v in got["applied"].items():
                        applied_by_portal[k] = applied_by_portal.get(k, 0) + v
                    done = sum(got["applied"].values())
                    if done == 0:
                        break
                    left -= done
                    seed += 1
                portal_s = time.monotonic() - t1
                poller = Poller(engine, client, settings)
                profiler = None
                if os.environ.get("BENCH_PROFILE"):
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                t2 = time.monotonic()
                stats = poller.run()
                poll_s = time.monotonic() - t2
                if profiler is not None:
                    import pstats

                    profiler.disable()
                    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
                calls = client.stats.as_dict()
            engine.dispose()
    finally:
        if schema:
            admin = make_engine(PG_URL)
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return {"db": db, "volunteers": volunteers, "linked": linked, "push_s": round(push_s, 2),
            "portal_actions": applied_by_portal, "portal_s": round(portal_s, 2), "changes": stats.changes,
            "poll_s": round(poll_s, 2), "changes_per_s": round(stats.changes / poll_s),
            "applied": stats.applied, "applied_per_s": round(stats.applied / poll_s),
            "repeats": stats.repeats, "merged": dict(stats.merged), "created": dict(stats.created),
            "adopted": dict(stats.adopted), "transferred_out": stats.transferred_out,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "calls": calls.get("calls_by_endpoint"), "loop_s": round(loop_seconds(), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--volunteers", type=int, default=20_000)
    ap.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(child(args.db, args.volunteers, args.changes, args.mix, Path(tmp))))
        return
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        cmd = [sys.executable, __file__, "--child", "--db", db, "--volunteers", str(args.volunteers),
               "--changes", str(args.changes), "--mix", args.mix]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{db:10} {r['changes']:>7,} changes applied in {r['poll_s']:>6}s: {r['changes_per_s']:>6,} changes/s "
              f"({r['applied']:,} records changed, {r['applied_per_s']:,}/s; {r['repeats']:,} repeats collapsed)  "
              f"peak RSS {r['peak_rss_mb']} MB; loop {r['loop_s']} s (issue 17's machine-speed yardstick)")
        print(f"           set-up: {r['volunteers']:,} volunteers pushed in {r['push_s']}s; portal actions "
              f"{json.dumps(r['portal_actions'])} in {r['portal_s']}s")
        print(f"           merged {r['merged']}, created {r['created']}, adopted {r['adopted']}, transferred out "
              f"{r['transferred_out']}; calls {json.dumps(r['calls'])}")


if __name__ == "__main__":
    main()
