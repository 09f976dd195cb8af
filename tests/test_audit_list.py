"""``regsync audit list`` (issue 15, point 5): filters by time (+08:00 by default, or a duration), actor and
action (a dotted prefix too), a limit that says more are left, Chinese headers, masked reasons and details, and
``--json``. On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from regsync.console.audit import parse_since
from regsync.console.cli import app
from regsync.db.audit import list_audit
from regsync.db.models import Audit
from regsync.flows.operator import OperatorUsageError
from regsync.service.status import set_paused


@pytest.fixture(autouse=True)
def _chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alarms and the audit list are read in Chinese, the default (tests/conftest.py makes English the tests'
    language)."""
    monkeypatch.setenv("REGSYNC_LANG", "zh-CN")

#: Generated personal data, never a real person's.
ID_NUMBER = "230102199001011234"
PHONE = "13812345678"


def _add(engine: Engine, at: dt.datetime, actor: str, action: str, target: str, reason: str,
         details: str = "{}") -> None:
    with engine.begin() as conn:
        conn.execute(Audit.__table__.insert().values(at=at, actor=actor, action=action, target=target, reason=reason,
                                                     details=details))


@pytest.fixture
def audited(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("REGSYNC_DATABASE_URL", db_url)
    monkeypatch.delenv("REGSYNC_LANG", raising=False)
    _add(engine, dt.datetime(2026, 11, 30, 15, 0), "wang", "outbox.retry", "volunteer:12", "fixed the phone")
    _add(engine, dt.datetime(2026, 11, 30, 17, 0), "li", "outbox.discard", "volunteer:13",
         f"duplicate of {ID_NUMBER}", json.dumps({"phone": PHONE, "rows": 2}))
    _add(engine, dt.datetime(2026, 12, 1, 1, 0), "wang", "conflicts.resolve", "conflict:4 volunteer:12 phone", "ok")
    set_paused(engine, ["outbound"], True, reason="registry maintenance", actor="zhao",
               now=dt.datetime(2026, 12, 1, 2, 0))
    return engine


def test_the_db_reads_newest_first_with_filters(audited: Engine) -> None:
    page = list_audit(audited)
    assert [r["action"] for r in page.rows] == ["pause", "conflicts.resolve", "outbox.discard", "outbox.retry"]
    assert not page.more
    assert [r["actor"] for r in list_audit(audited, actor="wang").rows] == ["wang", "wang"]
    assert [r["action"] for r in list_audit(audited, action="outbox").rows] == ["outbox.discard", "outbox.retry"]
    assert list_audit(audited, action="outbox.retry").rows[0]["target"] == "volunteer:12"
    assert list_audit(audited, action="out").rows == []  # a prefix counts only up to a dot
    since = list_audit(audited, since=dt.datetime(2026, 11, 30, 16, 0))
    assert [r["action"] for r in since.rows] == ["pause", "conflicts.resolve", "outbox.discard"]
    two = list_audit(audited, limit=2)
    assert len(two.rows) == 2 and two.more
    with pytest.raises(ValueError, match="limit"):
        list_audit(audited, limit=0)


def test_the_command_shows_chinese_headers_and_masks_personal_data(audited: Engine) -> None:
    result = CliRunner().invoke(app, ["audit", "list"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for header in ("编号", "时间", "操作人", "操作", "对象", "原因", "详情"):
        assert header in out
    assert "2026-12-01T01:00:00+08:00" in out  # 17:00 UTC on 30 November, +08:00
    assert ID_NUMBER not in out and PHONE not in out
    assert "230102********1234" in out and "138****5678" in out


def test_the_command_filters_and_prints_json(audited: Engine) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "list", "--json", "--since", "2026-12-01", "--action", "outbox"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # 2026-12-01 +08:00 is 16:00 UTC on 30 November: the discard at 17:00 UTC is in, the retry at 15:00 is not
    assert [(e["action"], e["actor"], e["at"]) for e in data["entries"]] == [
        ("outbox.discard", "li", "2026-12-01T01:00:00+08:00")]
    assert data["entries"][0]["details"] == {"phone": "138****5678", "rows": 2}
    assert data["entries"][0]["reason"] == "duplicate of 230102********1234" and data["more"] is False
    by_actor = json.loads(runner.invoke(app, ["audit", "list", "--json", "--actor", "zhao"]).stdout)
    assert [(e["action"], e["target"], e["reason"]) for e in by_actor["entries"]] == [
        ("pause", "outbound", "registry maintenance")]
    limited = runner.invoke(app, ["--lang", "en", "audit", "list", "--limit", "1"])
    assert "More entries match: raise --limit (1)" in limited.stdout and "actor" in limited.stdout
    assert runner.invoke(app, ["audit", "list", "--actor", "nobody"]).stdout.strip() == "没有符合条件的审计记录。"


def test_since_takes_a_local_time_an_offset_or_a_duration() -> None:
    assert parse_since("2026-12-01") == dt.datetime(2026, 11, 30, 16, 0)
    assert parse_since("2026-12-01T08:30") == dt.datetime(2026, 12, 1, 0, 30)
    assert parse_since("2026-12-01T08:30+00:00") == dt.datetime(2026, 12, 1, 8, 30)
    assert parse_since("7d", now=dt.datetime(2026, 12, 8)) == dt.datetime(2026, 12, 1)
    with pytest.raises(OperatorUsageError, match="--since"):
        parse_since("last tuesday")
    result = CliRunner().invoke(app, ["audit", "list", "--since", "last tuesday"])
    assert result.exit_code == 2
