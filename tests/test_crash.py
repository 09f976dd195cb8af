"""Crash safety: the relay killed with SIGKILL at random moments during a sync, restarted, loses nothing and
doubles nothing (claims are leases that expire)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from factories import TEST_HASH_KEY
from factories11 import add_v11_records
from invariants import check_invariants
from regsync.db.session import make_engine
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, RelaySettings, Settings


@pytest.mark.slow
def test_relay_killed_at_random_moments_loses_and_doubles_nothing(db_url: str, tmp_path) -> None:
    rng = random.Random(20261129)
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, subprocess=True,
                       rate_limit_rps=1000, rate_limit_burst=2000, faults={"latency_ms": 100}) as sandbox:
        # the delay sets a floor under the push that no machine's speed removes: ~190 calls of 100 operations,
        # 3 in flight, at least ~6.5 s in all, more than the three kills the test needs can take (≤ 1.5 s each);
        # with 20 ms a fast machine could push it all between two kills
        relay = RelaySettings(batch_size=100, claim_size=400, lease_s=2.0)
        settings = Settings(hash_key=TEST_HASH_KEY, database=DatabaseSettings(url=db_url), relay=relay,
                            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                                      client_secret=sandbox.client_secret),
                            log=LogSettings(level="WARNING"))
        engine = make_engine(db_url)
        run_generate(settings, scale=0.0005, seed=11, engine=engine)
        with engine.begin() as conn:  # the kinds of registry-api.md v1.1, a few of each
            add_v11_records(conn, trainings=4, per_training=10, commendations=10, evaluations=20)
        env = dict(os.environ, REGSYNC_DATABASE_URL=db_url, REGSYNC_REGISTRY_URL=sandbox.base_url,
                   REGSYNC_CLIENT_ID=sandbox.client_id, REGSYNC_CLIENT_SECRET=sandbox.client_secret,
                   REGSYNC_BATCH_SIZE="100", REGSYNC_CLAIM_SIZE="400", REGSYNC_LEASE_S="2",
                   REGSYNC_LOG_LEVEL="ERROR")
        kills = 0
        deadline = time.monotonic() + 240
        while kills < 6 and time.monotonic() < deadline:
            proc = subprocess.Popen([sys.executable, "-m", "regsync.console.cli", "sync", "--json"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
            else:
                # finished before the kill: leases of its claims are released; make more work
                break
        assert kills >= 3, "the sync ended before it could be killed a few times; give it more data"
        time.sleep(2.5)  # the dead relays' leases expire
        code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=120)
        assert code == 0, summary
        check_invariants(engine, sandbox.admin_url, sandbox.client_id)
        engine.dispose()
