"""The hours the registry does not have at all (a manager's trial: the hours view said 0 difference while 456.75 h
of unlinked volunteers were missing from the registry): a reconcile counts the ACCEPTED hours of volunteers linked
to no registry volunteer under ``summary["hours"]["not_in_registry"]``, beside the linked comparison. Against the
sandbox over HTTP, on every engine (the ``settings``/``engine`` fixtures)."""

from __future__ import annotations

from sqlalchemy import Engine

import factories as f
from regsync.db.session import suppress_outbox
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings
from test_reconcile import reconcile, world


def test_hours_of_volunteers_the_registry_does_not_know_are_counted_beside_the_comparison(
        settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    w = world(engine, settings)
    with engine.begin() as conn, suppress_outbox(conn):  # never pushed: the registry does not know them
        lost = f.volunteer(conn, name="陈静")
        f.service_record(conn, lost, w["activity"], w["tree"]["team"], hours=200, day=3)
        f.service_record(conn, lost, w["activity"], w["tree"]["team"], hours=175, day=4)
        f.service_record(conn, lost, w["activity"], w["tree"]["team"], hours=900, day=5, status="REJECTED")
        other = f.volunteer(conn, name="周杰", region_code="230202")
        f.service_record(conn, other, w["activity"], w["tree"]["team"], hours=50, day=6)
    hours = reconcile(settings, engine)["hours"]
    # the linked comparison is as before: the four pushed volunteers, both sides equal
    assert hours["total"]["volunteers"] == 4 and hours["total"]["hours_diff"] == 0
    assert hours["total"]["local_hours"] == 1200
    # beside it, what the registry does not have: accepted records only, per city
    assert hours["not_in_registry"] == {
        "volunteers": 2, "service_records": 3, "local_hours": 425,
        "by_city": {"2301": {"volunteers": 1, "service_records": 2, "local_hours": 375},
                    "2302": {"volunteers": 1, "service_records": 1, "local_hours": 50}}}


def test_nothing_missing_counts_zero(settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    world(engine, settings)
    missing = reconcile(settings, engine)["hours"]["not_in_registry"]
    assert missing == {"volunteers": 0, "service_records": 0, "local_hours": 0, "by_city": {}}
