"""Settings: defaults, the TOML file, the environment (which wins), secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from regsync.settings import SPECS, ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s.province == "23" and s.registry.sign_method == "HMAC-SHA256" and s.relay.batch_size == 500


def test_file_then_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "regsync.toml"
    cfg.write_text('province = "23"\n[database]\nurl = "sqlite:///a.db"\n[registry]\nurl = "http://x/api/v1"\n'
                   'client_id = "from-file"\nsign_method = "HMAC-SM3"\n[relay]\nbatch_size = 100\n')
    s = load_settings(cfg, environ={"REGSYNC_CLIENT_ID": "from-env", "REGSYNC_BATCH_SIZE": "250"})
    assert s.registry.client_id == "from-env"
    assert s.registry.sign_method == "HMAC-SM3"
    assert s.relay.batch_size == 250
    assert s.database.url == "sqlite:///a.db"
    s2 = load_settings(environ={"REGSYNC_CONFIG": str(cfg)})
    assert s2.registry.client_id == "from-file"


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    s = load_settings(environ={"REGSYNC_CLIENT_SECRET_FILE": str(secret)})
    assert s.registry.client_secret == "s3cr3t"
    assert "s3cr3t" not in repr(s)


@pytest.mark.parametrize(("env", "message"), [
    ({"REGSYNC_PROVINCE": "2"}, "REGSYNC_PROVINCE"),
    ({"REGSYNC_SIGN_METHOD": "MD5"}, "REGSYNC_SIGN_METHOD"),
    ({"REGSYNC_BATCH_SIZE": "501"}, "REGSYNC_BATCH_SIZE"),
    ({"REGSYNC_BATCH_SIZE": "many"}, "batch_size"),
    ({"REGSYNC_CLIENT_SECRET_FILE": "/nonexistent/secret"}, "cannot read"),
])
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[registry]\nurll = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(cfg, environ={})


def test_example_config_documents_every_setting() -> None:
    example = (Path(__file__).parents[1] / "config" / "regsync.example.toml").read_text()
    for spec in SPECS:
        assert spec.env in example, spec.env
    load_settings(Path(__file__).parents[1] / "config" / "regsync.example.toml", environ={})
