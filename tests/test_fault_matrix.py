"""The fault matrix (issue 3): each fault of the sandbox alone, and all together, over a generated data set,
on SQLite and PostgreSQL. After syncing until quiet, the invariants of :mod:`invariants` hold and the sandbox's
counters show that every fault was injected. Sized to keep CI short: a small province, small batches."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from factories11 import add_v11_records
from invariants import check_invariants
from regsync.db.session import make_engine
from regsync.flows.outbound import Relay
from regsync.flows.sync import run_sync
from regsync.generate.load import run_generate
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import DatabaseSettings, LogSettings, RegistrySettings, RelaySettings, Settings

#: fault settings → the counters (any of them) that prove it was injected
CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "latency": ({"latency_ms": 15}, ("latency",)),
    "errors": ({"error_rate": 0.2}, ("error_500", "error_502", "error_503", "error_504", "error_502_html",
                                     "error_503_html", "error_504_html", "error_500_html")),
    "lost_answers": ({"lost_answer_rate": 0.2}, ("lost_answer_drop", "lost_answer_504")),
    "rate_limit": ({"rate_limit_rps": 4}, ("rate_limited",)),
    "maintenance": ({"maintenance_s": 2}, ("maintenance",)),
    # a call takes 0.4 s, so a token of 1 s expires under the calls sent after its first 0.6 s
    "short_tokens": ({"token_ttl_s": 1, "latency_ms": 400}, ("token_expired",)),
    "clock_offset": ({"clock_offset_s": 400}, ("timestamp_skew",)),
    "gateway_413": ({"gateway_body_limit": 60000}, ("gateway_413",)),
    "firewall": ({"firewall_rate": 0.15}, ("firewall_403", "firewall_429")),
    "http_date": ({"rate_limit_rps": 4, "retry_after_http_date": 1}, ("rate_limited",)),
    "all": ({"latency_ms": 5, "error_rate": 0.1, "lost_answer_rate": 0.1, "rate_limit_rps": 10,
             "token_ttl_s": 3, "clock_offset_s": 400, "gateway_body_limit": 60000, "firewall_rate": 0.1,
             "retry_after_http_date": 1},
            ("error", "lost_answer", "rate_limited", "timestamp_skew", "gateway_413", "firewall")),
}


def injected(admin_url: str) -> dict[str, int]:
    r = httpx.get(f"{admin_url}/counters")
    r.raise_for_status()
    return r.json()["data"].get("injected", {})


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_fault_matrix(case: str, db_url: str, tmp_path, monkeypatch) -> None:
    faults, proof = CASES[case]
    # shorter backoff windows than production's, so the matrix fits in CI; the behaviour is the same
    monkeypatch.setattr(RegistryClient, "backoff_base_s", 0.05)
    monkeypatch.setattr(RegistryClient, "backoff_max_s", 1.0)
    if case == "lost_answers":
        monkeypatch.setattr(Relay, "idempotency_window_s", 0.0)  # look lost creates up by clientRef at once
    with SandboxServer(db_url=f"sqlite:///{tmp_path / 'sandbox.db'}", admin=True, seed=7) as sandbox:
        settings = Settings(
            database=DatabaseSettings(url=db_url),
            registry=RegistrySettings(url=sandbox.base_url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret, timeout_s=5.0, max_retries=3,
                                      retry_after_cap_s=3.0),
            relay=RelaySettings(batch_size=250, claim_size=1000, lease_s=30.0),
            log=LogSettings(level="ERROR"))
        engine = make_engine(db_url)
        run_generate(settings, scale=0.0001, seed=3, engine=engine)
        with engine.begin() as conn:  # the kinds of registry-api.md v1.1, a few of each
            add_v11_records(conn, trainings=3, per_training=4, commendations=4, evaluations=6)
        # the faults start now (a maintenance window opens when it is set), not while the data is generated
        httpx.put(f"{sandbox.admin_url}/faults", json=faults).raise_for_status()
        started = time.monotonic()
        deadline = started + 240
        summary: dict[str, Any] = {}
        while time.monotonic() < deadline:
            code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60)
            if summary["backlog"] == 0:
                break
            time.sleep(1)
        quiet_s = time.monotonic() - started
        assert summary["backlog"] == 0, summary
        figures = check_invariants(engine, sandbox.admin_url, sandbox.client_id)
        counts = injected(sandbox.admin_url)
        assert any(n > 0 for name, n in counts.items() if name.startswith(proof)), (proof, counts)
        print(json.dumps({"case": case, "db": engine.dialect.name, "seconds_to_quiet": round(quiet_s, 1),
                          "injected": counts, "client": summary.get("client"), "figures": figures}))
        engine.dispose()
