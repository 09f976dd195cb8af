"""The one recorded-run wrapper (flows.runs.RecordedRun) and the checked store of a run (flows.runs.run_store)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select

from regsync.db.models import Run
from regsync.db.store import StoreError
from regsync.flows.runs import RecordedRun, run_store
from regsync.settings import DatabaseSettings, RegistrySettings, Settings


def _runs(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(Run.kind, Run.status, Run.summary).order_by(Run.id))]


def test_a_run_finished_is_recorded_with_its_summary(engine: Engine) -> None:
    with RecordedRun(engine, "sync") as run:
        assert run.run_id is not None and _runs(engine)[-1]["status"] == "running"
        run.finish("partial", {"pushed": {"volunteers": 2}})
    row = _runs(engine)[-1]
    assert row["kind"] == "sync" and row["status"] == "partial"
    assert json.loads(str(row["summary"])) == {"pushed": {"volunteers": 2}}


def test_a_run_left_by_an_exception_is_recorded_failed_and_the_exception_goes_on(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="disk full"), RecordedRun(engine, "reconcile"):
        raise RuntimeError("disk full for 110101199003077777")
    row = _runs(engine)[-1]
    assert row["status"] == "failed"
    error = json.loads(str(row["summary"]))["error"]
    assert "disk full" in error and "110101199003077777" not in error  # masked


def test_a_run_not_recorded_writes_nothing(engine: Engine) -> None:
    with RecordedRun(engine, "adopt", record=False) as run:
        run.finish("success", {})
    assert run.run_id is None and _runs(engine) == []


def test_the_store_of_a_run_is_checked_before_anything_is_recorded(tmp_path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'absent.db'}"),
                        registry=RegistrySettings(url="http://127.0.0.1:9/api/v1", client_id="c", client_secret="s"))
    with pytest.raises(StoreError, match="db upgrade"), run_store(settings):
        pass
    assert not (tmp_path / "absent.db").exists()
