"""Snapshots of the reports people read (JSON and text export, ``report show --json``) over the seeded runs.

Both engines must give the very same bytes. To accept a deliberate change: ``REGSYNC_UPDATE_SNAPSHOTS=1 pytest
tests/reports/test_snapshots.py``, then review the diff of ``tests/snapshots/``.
"""

from __future__ import annotations

import io
import json

import pytest

from regsync.reports.export import export_run
from reports.seed import LAST_RECONCILE, NOW, RUNNING_RUN, SYNC_RUN


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN, RUNNING_RUN])
def test_json_export(seeded, snapshot, run_id: int) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, run_id, "json", out, now=NOW)
    json.loads(out.getvalue())
    snapshot(f"report-run{run_id}.json", out.getvalue())


@pytest.mark.parametrize("run_id", [LAST_RECONCILE, SYNC_RUN, RUNNING_RUN])
def test_text_export(seeded, snapshot, run_id: int) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, run_id, "text", out, now=NOW, width=100)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 100
    snapshot(f"report-run{run_id}.txt", out.getvalue())


def test_csv_export(seeded, snapshot) -> None:
    engine, _ = seeded
    out = io.StringIO()
    export_run(engine, LAST_RECONCILE, "csv", out, now=NOW)
    snapshot(f"report-run{LAST_RECONCILE}.csv", out.getvalue())
