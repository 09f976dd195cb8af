"""The outbound relay for the v1.1 kinds (issue 16, points 1 and 5), against the sandbox over HTTP, on every engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
import factories11 as f11
from test_outbound import link_of, outbox_states, registry_records, settings, sync  # noqa: F401  (fixtures)


def test_smoke(settings, engine, sandbox) -> None:
    with engine.begin() as conn:
        t, v, a, sr = f.chain(conn)
        conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": a})
        tr = f11.training(conn, t["team"])
        f11.training_record(conn, tr, v)
        f11.commendation(conn, volunteer_id=v)
        f11.commendation(conn, org_id=t["team"])
        f11.evaluation(conn, a, v, t["team"])
    from regsync.flows.sync import run_sync
    code, s = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, inbound=False)
    print(s)
    print(outbox_states(engine))
