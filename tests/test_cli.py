"""End-to-end tests of the command line: the demo's numbers, `sync --json`, exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regsync.cli import app
from regsync.sandbox.server import SandboxServer

KINDS = ("orgs", "volunteers", "memberships", "activities", "service_records")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "regsync.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=600)


@pytest.mark.slow
def test_demo_numbers_add_up_and_failures_are_only_unfixable_dirt(tmp_path: Path) -> None:
    proc = run_cli("demo", "--json", "--scale", "0.0005", "--workdir", str(tmp_path / "demo"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout holds only the JSON
    for key in ("local", "registry", "pushed", "linked", "failed", "failed_by_code", "seconds"):
        assert key in summary
    for kind in KINDS:
        assert summary["local"][kind] == summary["registry"][kind] + summary["failed"][kind], kind
        assert summary["agree"][kind] == summary["registry"][kind], kind
    assert set(summary["failed_by_code"]) <= {"INVALID_PHONE", "INVALID_ID_NUMBER", "PARENT_FAILED"}
    # every failed volunteer is dirt the generator recorded as unfixable, with the code it expected
    db = sqlite3.connect(tmp_path / "demo" / "local.db")
    failed = dict(db.execute("SELECT DISTINCT local_id, last_code FROM outbox WHERE entity = 'volunteer' "
                             "AND state = 'failed'").fetchall())
    unfixable = dict(db.execute("SELECT local_id, expected_code FROM generator_dirt WHERE entity = 'volunteer' "
                                "AND NOT fixable").fetchall())
    assert failed == unfixable
    # and everything blocked waits for one of them
    blocked_on = {row[0] for row in db.execute(
        "SELECT DISTINCT blocked_local_id FROM outbox WHERE state = 'blocked' AND blocked_entity = 'volunteer'")}
    assert blocked_on <= set(unfixable)
    # the work dir is started afresh on a second run, and both databases are kept
    again = run_cli("demo", "--json", "--scale", "0.0005", "--workdir", str(tmp_path / "demo"))
    assert again.returncode == 0 and json.loads(again.stdout)["local"] == summary["local"]
    assert (tmp_path / "demo" / "sandbox.db").exists()


def test_sync_json_and_a_second_sync_sends_nothing(tmp_path: Path) -> None:
    with SandboxServer() as sandbox:
        env = {"REGSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "REGSYNC_REGISTRY_URL": sandbox.base_url,
               "REGSYNC_CLIENT_ID": sandbox.client_id, "REGSYNC_CLIENT_SECRET": sandbox.client_secret}
        runner = CliRunner()
        gen = runner.invoke(app, ["generate", "--scale", "0.0002", "--json"], env=env)
        assert gen.exit_code == 0, gen.output
        assert json.loads(gen.stdout)["counts"]["volunteers"] > 0
        first = runner.invoke(app, ["sync", "--json"], env=env)
        assert first.exit_code == 0, first.output
        data = json.loads(first.stdout)
        for key in ("pushed", "linked", "failed", "failed_by_code", "seconds"):
            assert key in data
        assert data["pushed"]["volunteers"] > 0
        second = runner.invoke(app, ["sync", "--json"], env=env)
        data2 = json.loads(second.stdout)
        assert second.exit_code == 0 and data2["pushed"] == {} and data2["batches"] == 0


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["sync"], env={"REGSYNC_SIGN_METHOD": "MD5"})
    assert result.exit_code == 2 and "REGSYNC_SIGN_METHOD" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[registry\n")
    assert runner.invoke(app, ["sync", "--config", str(bad)]).exit_code == 2


def test_help_names_the_environment_variables() -> None:
    result = CliRunner().invoke(app, ["sync", "--help"], env={"COLUMNS": "200"})
    assert "REGSYNC_DATABASE_URL" in result.output and "REGSYNC_CLIENT_SECRET" in result.output
