"""Record types and fields regsync does not know (registry-api.md §1, v1.1), against the sandbox over HTTP, on
SQLite and PostgreSQL.

The registry adds record types over time (v1.1 added four, which regsync now syncs; these tests use made-up later ones,
a 志愿者保险 record, a badge, a medal, a planet, and a volunteer's ``insuredUntil``): a pull
that meets a feed entry of such a type skips and counts it, applies the changes after it and moves its cursor
past it; a reconcile or an adopt skips such export lines; fields regsync does not know are ignored and counted.
``POST /_sandbox/foreign`` (test support) plants a feed entry (and an export line) of a type a v1 client does not
know.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import Engine, text
from structlog.testing import capture_logs
from typer.testing import CliRunner

import factories as f
from regsync.console.cli import app
from regsync.flows.adopt import run_adopt
from regsync.flows.inbound import Poller, saved_cursor
from regsync.flows.reconcile import run_reconcile
from regsync.flows.sync import run_pull, run_sync
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings


def sync(settings: Settings, engine: Engine, **kw: Any) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, until_quiet=True, timeout_s=60, **kw)
    assert code == 0, summary
    return summary


def plant(sandbox: SandboxServer, type_: str, record: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """A change (and with ``export``, an export line) of a record type regsync does not know."""
    r = httpx.post(f"{sandbox.admin_url}/foreign", json={"type": type_, "record": record or {}, **kw})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def portal(sandbox: SandboxServer, path: str, body: Any = None) -> dict[str, Any]:
    r = httpx.post(f"{sandbox.admin_url}/portal/{path}", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


def patch(sandbox: SandboxServer, collection: str, registry_id: str, body: dict[str, Any]) -> None:
    r = httpx.patch(f"{sandbox.admin_url}/records/{collection}/{registry_id}", json=body)
    assert r.status_code == 200, r.text


def rid(engine: Engine, entity: str, local_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT registry_id FROM link WHERE entity = :e AND local_id = :i"),
                            {"e": entity, "i": local_id}).scalar_one()


def phone(engine: Engine, volunteer_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT phone FROM volunteer WHERE id = :i"), {"i": volunteer_id}).scalar_one()


def cursor(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return saved_cursor(conn)


def run_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return json.loads(conn.execute(text("SELECT summary FROM run WHERE id = :i"), {"i": run_id}).scalar_one())


def head(settings: Settings) -> int:
    with RegistryClient(settings.registry, province=settings.province) as client:
        return int(client.changes(None, limit=1).next_cursor)


def pushed(settings: Settings, engine: Engine, volunteers: int = 2) -> list[int]:
    """An org tree and volunteers pushed after the first cursor, the echoes pulled away: the volunteers' ids."""
    with engine.begin() as conn:
        f.org_tree(conn)
        vols = [f.volunteer(conn) for _ in range(volunteers)]
    with RegistryClient(settings.registry, province=settings.province) as client:
        Poller(engine, client, settings).take_first_cursor()
    sync(settings, engine)
    return vols


def insurance(subject: str) -> dict[str, Any]:
    """A record of a type a later registry might add (志愿者保险): regsync knows v1.1's four, not this one."""
    return {"volunteerId": subject, "insurer": "某保险公司", "policyNumber": "BX2026-0012",
            "coveredFrom": "2026-03-05", "coveredUntil": "2027-03-04", "status": "ACTIVE"}


def test_sync_inbound_applies_the_changes_after_a_record_of_an_unknown_type_and_moves_the_cursor_past_it(
        settings, engine, sandbox, db_url) -> None:
    v1, v2 = pushed(settings, engine)
    # the portal commends a volunteer (a v1.1 type), then edits two volunteers' phones; an invented type as well
    plant(sandbox, "insurance", insurance(rid(engine, "volunteer", v1)))
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v1)}/contact", {"phone": "13700002222"})
    plant(sandbox, "planet", {"name": "Kepler-22b"})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v2)}/contact", {"phone": "13700003333"})
    top = head(settings)

    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id, "REGSYNC_CLIENT_SECRET": settings.registry.client_secret}
    result = CliRunner().invoke(app, ["sync", "--inbound", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "success", summary
    # the changes after the unknown record are applied
    assert phone(engine, v1) == "13700002222" and phone(engine, v2) == "13700003333"
    assert summary["merged"] == {"volunteers": 2}
    # the unknown entries are skipped, counted, and the cursor is past them (the feed's head)
    assert summary["inbound"]["unknown_types"] == {"insurance": 1, "planet": 1}
    assert summary["client"]["unknown_types"] == {"insurance": 1, "planet": 1}
    assert int(cursor(engine)) == top
    stored = run_summary(engine, summary["run_id"])
    assert stored["inbound"]["unknown_types"] == {"insurance": 1, "planet": 1}
    # the next pull starts past them: nothing read, nothing skipped again
    again = sync(settings, engine, outbound=False)
    assert again["inbound"]["changes"] == 0 and again["inbound"]["unknown_types"] == {}


def test_a_pull_reads_on_past_pages_holding_nothing_but_unknown_types(settings, engine, sandbox) -> None:
    v1, _ = pushed(settings, engine)
    for i in range(7):
        plant(sandbox, "badge" if i % 2 else "insurance", {"title": f"急救培训{i}"})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v1)}/contact", {"phone": "13700004444"})
    with RegistryClient(settings.registry, province=settings.province) as client:
        with capture_logs() as logs:
            stats = Poller(engine, client, settings, page_limit=2).run()
    # one run read every page: the pages of unknown records alone did not end it
    assert phone(engine, v1) == "13700004444"
    assert stats.pages >= 4 and dict(stats.unknown_types) == {"insurance": 4, "badge": 3}
    assert stats.changes == 8 and stats.merged == {"volunteer": 1}
    assert int(cursor(engine)) == head(settings)
    # one log line per type in the run, not one per item
    lines = [e for e in logs if e["event"] == "registry.unknown_type"]
    assert sorted(e["type"] for e in lines) == ["badge", "insurance"]
    # the run record says what was skipped
    assert run_summary(engine, stats.run_id)["unknown_types"] == {"insurance": 4, "badge": 3}


def test_a_pull_record_of_unknown_types_and_fields_in_run_pull_and_its_run(settings, engine, sandbox) -> None:
    v1, v2 = pushed(settings, engine)
    plant(sandbox, "medal", {"punctuality": 5})
    # a field regsync does not know beside a change it does know
    patch(sandbox, "volunteers", rid(engine, "volunteer", v1), {"insuredUntil": "2027-06-30", "phone": "13700005555"})
    patch(sandbox, "volunteers", rid(engine, "volunteer", v2), {"insuredUntil": "2027-01-31"})
    code, summary = run_pull(settings, engine=engine)
    assert code == 0 and summary["status"] == "success", summary
    assert phone(engine, v1) == "13700005555"
    assert summary["unknown_types"] == {"medal": 1}
    assert summary["unknown_fields"] == {"volunteer.insuredUntil": 2}
    stored = run_summary(engine, summary["run_id"])
    assert stored["unknown_types"] == {"medal": 1} and stored["unknown_fields"] == {"volunteer.insuredUntil": 2}
    assert int(cursor(engine)) == head(settings)


def test_reconcile_and_adopt_skip_export_lines_of_an_unknown_type(settings, engine, sandbox) -> None:
    v1, _ = pushed(settings, engine)
    # a line of an unknown type inside the volunteers' export, between the volunteers by id; a field regsync lacks
    plant(sandbox, "insurance", {"id": rid(engine, "volunteer", v1) + "C", **insurance(
        rid(engine, "volunteer", v1))}, export="volunteers")
    patch(sandbox, "volunteers", rid(engine, "volunteer", v1), {"insuredUntil": "2027-02-28"})
    sync(settings, engine, outbound=False)
    code, summary = run_reconcile(settings, engine=engine)
    assert code == 0 and summary["status"] == "success", summary
    assert summary["discrepancies"] == {}, summary["listed"]  # the line is no volunteer missing locally
    assert summary["compared"]["volunteer"] == {"local": 2, "registry": 2, "pairs": 2}
    assert summary["unknown_types"] == {"insurance": 1}
    # the patched volunteer's line carries the unknown field; v1.1's trainingHours is known now
    assert summary["unknown_fields"] == {"volunteer.insuredUntil": 1}
    assert run_summary(engine, summary["run_id"])["unknown_types"] == {"insurance": 1}

    code, adopted = run_adopt(settings, engine=engine)
    assert code == 0 and adopted["status"] == "success", adopted
    assert adopted["read"]["volunteer"] == 2 and adopted["unmatched"].get("volunteer", 0) == 0
    assert adopted["unknown_types"] == {"insurance": 1}


def test_the_sync_text_summary_says_what_was_skipped(capsys) -> None:
    from regsync.console.summaries import print_sync_summary

    summary: dict[str, Any] = {
        "run_id": 7, "status": "success", "seconds": 0.1, "failed_by_code": {}, "still_failed": {},
        **{c: {} for c in ("pushed", "linked", "unchanged", "failed", "deferred", "pulled", "merged", "adopted",
                           "created_locally", "registry_owned", "conflicts", "ended_locally", "transferred_out")},
        "inbound": {"changes": 5, "pages": 1, "unknown_types": {"insurance": 3, "badge": 1}},
    }
    print_sync_summary(summary)
    assert "skipped, of record types regsync does not know: insurance 3, badge 1" in capsys.readouterr().out


def test_sync_json_carries_unknown_types_and_fields_whenever_the_pull_ran(settings, engine, sandbox, db_url) -> None:
    """``sync --inbound --json`` (and a sync of both flows) has ``unknown_types``/``unknown_fields`` at the top level,
    as a pull's own summary and ``report show`` have them, empty ones included; an outbound-only sync, which pulled
    nothing, has none."""
    v1, _ = pushed(settings, engine)
    plant(sandbox, "medal", {"punctuality": 5})
    patch(sandbox, "volunteers", rid(engine, "volunteer", v1), {"insuredUntil": "2027-06-30", "phone": "13700006666"})
    env = {"REGSYNC_DATABASE_URL": db_url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id, "REGSYNC_CLIENT_SECRET": settings.registry.client_secret,
           "REGSYNC_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, ["sync", "--inbound", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["unknown_types"] == {"medal": 1}, summary
    assert summary["unknown_fields"] == {"volunteer.insuredUntil": 1}, summary
    shown = CliRunner().invoke(app, ["report", "show", str(summary["run_id"]), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert '"unknown_types"' in shown.stdout and "medal" in shown.stdout
    both = CliRunner().invoke(app, ["sync", "--json"], env=env)
    assert both.exit_code == 0, both.output
    assert (json.loads(both.stdout)["unknown_types"], json.loads(both.stdout)["unknown_fields"]) == ({}, {})
    out = CliRunner().invoke(app, ["sync", "--outbound", "--json"], env=env)
    assert out.exit_code == 0 and "unknown_types" not in json.loads(out.stdout), out.output
