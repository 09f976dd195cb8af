"""``python -m regsync.sandbox seed`` (the sandbox's own command line) hands over to ``regsync sandbox seed``: the
sandbox imports nothing of the generator, and the old spelling keeps working, options, output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from regsync.sandbox.server import SandboxServer


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "regsync.sandbox", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_seed_help_is_the_generators_command() -> None:
    res = sandbox_cli("seed", "--help")
    assert res.returncode == 0, res.stderr
    assert "--from-store" in res.stdout and "--admin-url" in res.stdout and "sandbox seed" in res.stdout


def test_seed_over_http_through_the_sandboxs_own_command_line() -> None:
    with SandboxServer() as sandbox:
        res = sandbox_cli("seed", "--scale", "0.00005", "--kind", "volunteers", "--seed", "5",
                          "--admin-url", sandbox.admin_url, "--json")
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert set(out["seeded"]) == {"volunteer"} and out["seeded"]["volunteer"] > 0
        records = httpx.get(f"{sandbox.admin_url}/records/volunteers", timeout=60).json()["data"]["records"]
        assert len(records) == out["seeded"]["volunteer"] + out["extra_volunteers"]
        assert sandbox_cli("seed", "--admin-url", sandbox.admin_url).returncode == 2
