"""Settings: defaults, the TOML file, the environment (which wins), secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from regsync.db.session import normalize_url
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


# --- issue 12, item 13: every value checked at load time, named section.key (ENV_VAR) --------------------------
@pytest.mark.parametrize(("env", "named"), [
    ({"REGSYNC_RECONCILE_CRON": "0 25 * * *"}, "daemon.reconcile_cron (REGSYNC_RECONCILE_CRON): the hour field '25'"),
    ({"REGSYNC_PRUNE_CRON": "61 3 * * *"}, "daemon.prune_cron (REGSYNC_PRUNE_CRON): the minute field '61'"),
    ({"REGSYNC_RECONCILE_CRON": "0 2 * 13 *"}, "daemon.reconcile_cron (REGSYNC_RECONCILE_CRON): the month field"),
    ({"REGSYNC_RECONCILE_CRON": "0 2 * * funday"}, "daemon.reconcile_cron (REGSYNC_RECONCILE_CRON): the weekday"),
    ({"REGSYNC_RECONCILE_CRON": "0 2 * *"}, "daemon.reconcile_cron (REGSYNC_RECONCILE_CRON): must be a crontab"),
    # a date that never comes: the daemon would start with no nightly reconcile and say healthy (a fresh user's try)
    ({"REGSYNC_RECONCILE_CRON": "0 2 30 2 *"}, "daemon.reconcile_cron (REGSYNC_RECONCILE_CRON): never fires"),
    ({"REGSYNC_OUTBOUND_INTERVAL_S": "1", "REGSYNC_BACKOFF_MAX_S": "0"}, "daemon.backoff_max_s (REGSYNC_BACKOFF_MAX_S)"),
    ({"REGSYNC_OTHER_STORE_LIMIT": "-1"}, "relay.other_store_limit (REGSYNC_OTHER_STORE_LIMIT)"),
    ({"REGSYNC_TIMEZONE": "Mars/Olympus"}, "daemon.timezone (REGSYNC_TIMEZONE)"),
    ({"REGSYNC_OUTBOUND_INTERVAL_S": "0"}, "daemon.outbound_interval_s (REGSYNC_OUTBOUND_INTERVAL_S)"),
    ({"REGSYNC_INBOUND_INTERVAL_S": "nan"}, "daemon.inbound_interval_s (REGSYNC_INBOUND_INTERVAL_S)"),
    ({"REGSYNC_SHUTDOWN_TIMEOUT_S": "-1"}, "daemon.shutdown_timeout_s (REGSYNC_SHUTDOWN_TIMEOUT_S)"),
    ({"REGSYNC_CATCHUP_WINDOW_S": "inf"}, "daemon.catchup_window_s (REGSYNC_CATCHUP_WINDOW_S)"),
    ({"REGSYNC_METRICS_ADDRESS": "9464"}, "daemon.metrics_address (REGSYNC_METRICS_ADDRESS)"),
    ({"REGSYNC_METRICS_ADDRESS": "127.0.0.1:70000"}, "daemon.metrics_address (REGSYNC_METRICS_ADDRESS)"),
    ({"REGSYNC_REPORTS_DIR": " "}, "daemon.reports_dir (REGSYNC_REPORTS_DIR)"),
    ({"REGSYNC_HEALTH_MAX_FAILING_S": "-1"}, "health.max_failing_s (REGSYNC_HEALTH_MAX_FAILING_S)"),
    ({"REGSYNC_HEALTH_INBOUND_MAX_AGE_S": "-5"}, "health.inbound_max_age_s (REGSYNC_HEALTH_INBOUND_MAX_AGE_S)"),
    ({"REGSYNC_RETENTION_RUNS_DAYS": "-1"}, "retention.runs_days (REGSYNC_RETENTION_RUNS_DAYS)"),
    ({"REGSYNC_RETENTION_AUDIT_DAYS": "1.5"}, "retention.audit_days (REGSYNC_RETENTION_AUDIT_DAYS): expected a whole"),
    ({"REGSYNC_DATABASE_URL": "notaurl"}, "database.url (REGSYNC_DATABASE_URL)"),
    ({"REGSYNC_DATABASE_URL": "oracle://u@h/db"}, "database.url (REGSYNC_DATABASE_URL): names a oracle database; "
                                                   "regsync runs on sqlite, postgresql, mysql"),
    ({"REGSYNC_REGISTRY_URL": "ftp://registry/api"}, "registry.url (REGSYNC_REGISTRY_URL)"),
    ({"REGSYNC_REGISTRY_URL": "https:///api/v1"}, "registry.url (REGSYNC_REGISTRY_URL)"),
    ({"REGSYNC_REGISTRY_TIMEOUT_S": "0"}, "registry.timeout_s (REGSYNC_REGISTRY_TIMEOUT_S)"),
    ({"REGSYNC_REGISTRY_MAX_RETRIES": "-1"}, "registry.max_retries (REGSYNC_REGISTRY_MAX_RETRIES)"),
    ({"REGSYNC_RETRY_AFTER_CAP_S": "-1"}, "registry.retry_after_cap_s (REGSYNC_RETRY_AFTER_CAP_S)"),
    ({"REGSYNC_REGISTRY_VERIFY_TLS": "maybe"}, "registry.verify_tls (REGSYNC_REGISTRY_VERIFY_TLS)"),
    ({"REGSYNC_SIGN_METHOD": "MD5"}, "registry.sign_method (REGSYNC_SIGN_METHOD)"),
    ({"REGSYNC_BATCH_SIZE": "0"}, "relay.batch_size (REGSYNC_BATCH_SIZE)"),
    ({"REGSYNC_CLAIM_SIZE": "0"}, "relay.claim_size (REGSYNC_CLAIM_SIZE)"),
    ({"REGSYNC_LEASE_S": "0"}, "relay.lease_s (REGSYNC_LEASE_S)"),
    ({"REGSYNC_MAX_ATTEMPTS": "0"}, "relay.max_attempts (REGSYNC_MAX_ATTEMPTS)"),
    ({"REGSYNC_RELAY_CONCURRENCY": "9"}, "relay.concurrency (REGSYNC_RELAY_CONCURRENCY)"),
    ({"REGSYNC_MERGE_CONTACT": "mine"}, "merge.contact (REGSYNC_MERGE_CONTACT)"),
    ({"REGSYNC_LOG_LEVEL": "LOUD"}, "log.level (REGSYNC_LOG_LEVEL)"),
    ({"REGSYNC_LOG_FORMAT": "xml"}, "log.format (REGSYNC_LOG_FORMAT)"),
    ({"REGSYNC_PROVINCE": "99"}, "province (REGSYNC_PROVINCE)"),
    ({"REGSYNC_HASH_KEY_FILE": "/nonexistent/key"}, "hash_key_file (REGSYNC_HASH_KEY_FILE): cannot read"),
])
def test_every_setting_with_a_range_or_format_is_checked_at_load_time(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={**({} if "REGSYNC_HASH_KEY_FILE" in env else {"REGSYNC_HASH_KEY": "k" * 32}), **env})
    assert named in str(info.value)
    assert "  " not in str(info.value) and "[" not in str(info.value).split(":")[0]


def test_a_wrong_type_in_the_file_is_named_with_its_section(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[relay]\nbatch_size = true\n")
    with pytest.raises(ConfigError, match=r"relay\.batch_size \(REGSYNC_BATCH_SIZE\): expected a whole number"):
        load_settings(cfg, environ={})
    cfg.write_text("[daemon]\nreconcile_cron = 5\n")
    with pytest.raises(ConfigError, match=r"daemon\.reconcile_cron \(REGSYNC_RECONCILE_CRON\): must be a crontab"):
        load_settings(cfg, environ={})


def test_an_unknown_key_is_named_with_its_section_and_the_closest_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[daemon]\nreconcile_corn = '0 2 * * *'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert str(info.value) == f"unknown setting daemon.reconcile_corn in {cfg} (did you mean daemon.reconcile_cron?)"
    cfg.write_text("daemon = 5\n")
    with pytest.raises(ConfigError, match=r"unknown setting daemon in .* \(daemon is a section: \[daemon\]\)"):
        load_settings(cfg, environ={})
    # a misspelt section: the closest key of every section (a fresh user's try: no hint at all before)
    cfg.write_text("[registy]\nurl = 'http://127.0.0.1:8700/api/v1'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert str(info.value) == f"unknown setting registy.url in {cfg} (did you mean registry.url?)"


def test_every_misspelt_regsync_variable_is_warned_with_the_closest_name() -> None:
    warnings: list[str] = []
    env = {"REGSYNC_BATCH_SZE": "10", "REGSYNC_RECONCILE_CORN": "0 2 * * *", "REGSYNC_WHATEVER": "1",
           "REGSYNC_CONFIG": "", "REGSYNC_BATCH_SIZE": "20", "REGSYNC_TEST_PG_URL": "x", "OTHER_BATCH_SZE": "1"}
    s = load_settings(environ=env, warn=warnings.append)
    assert s.relay.batch_size == 20
    assert warnings == [
        "REGSYNC_BATCH_SZE names no setting and is ignored (did you mean REGSYNC_BATCH_SIZE?)",
        "REGSYNC_RECONCILE_CORN names no setting and is ignored (did you mean REGSYNC_RECONCILE_CRON?)",
        "REGSYNC_WHATEVER names no setting and is ignored",
    ]


def test_a_short_or_public_hash_key_is_warned_about() -> None:
    warnings: list[str] = []
    load_settings(environ={"REGSYNC_HASH_KEY": "short"}, warn=warnings.append)
    assert any("hash_key (REGSYNC_HASH_KEY) is shorter than 16" in w for w in warnings)
    warnings.clear()
    load_settings(environ={"REGSYNC_HASH_KEY": "regsync-local-hash-key"}, warn=warnings.append)
    assert any("is the public default key" in w for w in warnings)
    with pytest.raises(ConfigError, match=r"hash_key \(REGSYNC_HASH_KEY\) is empty"):
        load_settings(environ={"REGSYNC_HASH_KEY": " "})


@pytest.mark.parametrize("url", ["mysql+pymysql://u@h:3306/db", "mysql://u@h/db", "mariadb://u@h/db",
                                 "mariadb+pymysql://u@h/db?charset=utf8mb4"])
def test_a_mysql_or_mariadb_url_is_a_store_regsync_runs_on(url: str) -> None:
    """MySQL 8 and MariaDB are engines of the store (issue 14), driven by PyMySQL whatever driver the URL names."""
    settings = load_settings(environ={"REGSYNC_DATABASE_URL": url, "REGSYNC_HASH_KEY": "k" * 32})
    assert settings.database.url == url
    assert normalize_url(url).startswith("mysql+pymysql://") and "charset=utf8mb4" in normalize_url(url)


def test_alarm_urls_from_the_file_the_environment_or_a_secret_file(tmp_path: Path) -> None:
    """Issue 15 point 6: a TOML list, a space-separated variable, or a file of lines; a bad URL named without its
    secret."""
    config = tmp_path / "regsync.toml"
    config.write_text('[alarms]\nurls = ["wecombot://KEY1", "json://127.0.0.1:8080/hook"]\nreminder_s = 3600\n')
    s = load_settings(config, environ={})
    assert s.alarms.urls == ("wecombot://KEY1", "json://127.0.0.1:8080/hook") and s.alarms.reminder_s == 3600
    env = {"REGSYNC_ALARMS_URLS": " dingtalk://T/?secret=S \n mailtos://u:p@smtp.example.cn?to=a@b.cn "}
    assert load_settings(config, environ=env).alarms.urls == ("dingtalk://T/?secret=S",
                                                              "mailtos://u:p@smtp.example.cn?to=a@b.cn")
    secret = tmp_path / "alarm_urls"
    secret.write_text("# the ops group\nwecombot://FROMFILE\n\njson://h/p\n")
    assert load_settings(None, environ={"REGSYNC_ALARMS_URLS_FILE": str(secret)}).alarms.urls == (
        "wecombot://FROMFILE", "json://h/p")
    assert load_settings(None, environ={}).alarms.urls == ()
    with pytest.raises(ConfigError, match=r"alarms\.urls \(REGSYNC_ALARMS_URLS\).*item 2") as bad:
        load_settings(None, environ={"REGSYNC_ALARMS_URLS": "json://h/p hooks.example/secret-token"})
    assert "secret-token" not in str(bad.value)
    with pytest.raises(ConfigError, match="alarms.retries"):
        load_settings(None, environ={"REGSYNC_ALARMS_RETRIES": "11"})
    with pytest.raises(ConfigError, match="health.min_daemons"):
        load_settings(None, environ={"REGSYNC_HEALTH_MIN_DAEMONS": "-1"})
