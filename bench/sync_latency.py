"""Delay of a local change reaching the registry with the daemon at its default settings (issue 6; target ≤ 10 s).

Starts the sandbox registry and ``regsync run`` as real processes on a small generated province, waits for the
first push to end, then makes local changes (a volunteer's phone) at random moments and measures, per change, the
time from its commit to the relay's record that the registry accepted it (``outbox.done_at``). Prints p50, p95 and
the maximum, in seconds.

    .venv/bin/python bench/sync_latency.py                      # SQLite, 40 changes
    .venv/bin/python bench/sync_latency.py --db postgresql --changes 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from regsync.db.session import make_engine, utcnow
from regsync.generate.load import run_generate
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, Settings

PG_URL = os.environ.get("REGSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def wait(what: str, check, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--scale", type=float, default=0.0002)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="regsync-latency-"))
    schema = None
    if args.db == "sqlite":
        db_url = f"sqlite:///{work / 'local.db'}"
    else:
        schema = "bench_" + secrets.token_hex(4)
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        db_url = f"{PG_URL}?options=-csearch_path%3D{schema}%20-ctimezone%3DUTC"
    engine = make_engine(db_url)
    try:
        with SandboxServer(db_url=f"sqlite:///{work / 'sandbox.db'}", subprocess=True) as sandbox:
            settings = Settings(database=DatabaseSettings(url=db_url), log=LogSettings(level="WARNING"),
                                registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                          client_secret=sandbox.client_secret))
            run_generate(settings, scale=args.scale, seed=args.seed, engine=engine)
            env = dict(os.environ, REGSYNC_DATABASE_URL=db_url, REGSYNC_REGISTRY_URL=sandbox.base_url,
                       REGSYNC_CLIENT_ID=sandbox.client_id, REGSYNC_CLIENT_SECRET=sandbox.client_secret,
                       REGSYNC_METRICS_ADDRESS="off", REGSYNC_LOG_LEVEL="WARNING")
            with open(work / "daemon.log", "wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "regsync.console.cli", "run"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
                try:
                    def drained() -> bool:
                        with engine.connect() as conn:
                            return conn.execute(text("SELECT COUNT(*) FROM outbox WHERE state IN "
                                                     "('pending', 'deferred')")).scalar_one() == 0

                    wait("the first push", drained)
                    with engine.connect() as conn:
                        vids = [v for (v,) in conn.execute(text(
                            "SELECT l.local_id FROM link l JOIN volunteer v ON v.id = l.local_id WHERE "
                            "l.entity = 'volunteer' AND NOT l.is_duplicate AND v.status = 'ACTIVE'"))]
                    changes: list[tuple[int, object]] = []
                    for _ in range(args.changes):
                        time.sleep(rng.uniform(0.1, 1.5))
                        vid = rng.choice(vids)
                        with engine.begin() as conn:
                            conn.execute(text("UPDATE volunteer SET phone = :p WHERE id = :v"),
                                         {"p": f"139{rng.randrange(10**8):08d}", "v": vid})
                            row = conn.execute(text("SELECT MAX(id) FROM outbox WHERE entity = 'volunteer' AND "
                                                    "local_id = :v"), {"v": vid}).scalar_one()
                        changes.append((row, utcnow()))
                    ids = [r for r, _ in changes]
                    id_list = ",".join(str(int(i)) for i in ids)
                    sent_q = text(f"SELECT id, done_at FROM outbox WHERE state = 'sent' AND id IN ({id_list})")
                    done: dict[int, object] = {}

                    def all_sent() -> bool:
                        with engine.connect() as conn:
                            done.update({i: d for i, d in conn.execute(sent_q)})
                        return len(done) == len(ids)

                    wait("every change to be sent", all_sent)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=120)
        delays = []
        for row, committed in changes:
            sent = done[row]
            if isinstance(sent, str):
                sent = dt.datetime.fromisoformat(sent)
            delays.append(max(0.0, (sent - committed).total_seconds()))
        delays.sort()
        p50 = statistics.median(delays)
        p95 = delays[min(len(delays) - 1, int(round(0.95 * len(delays))) - 1)]
        print(f"{args.db}: {len(delays)} local changes, default settings (outbound every 2 s): "
              f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {delays[-1]:.2f} s (target <= 10 s)")
    finally:
        engine.dispose()
        if schema:
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
