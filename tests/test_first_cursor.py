"""The change feed's first cursor is taken before the first push, whichever command, flow or daemon job pushes
first (design.md, flow 2), and a pull that finds links but no cursor marks a full reconcile as due on every path
(issue 12, item 3). Real client against the sandbox over loopback HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

import factories as f
from regsync.flows.inbound import reconcile_due, saved_cursor
from regsync.flows.sync import run_pull, run_sync
from regsync.sandbox.server import SandboxServer
from regsync.service.daemon import Daemon
from regsync.service.status import collect_status, set_paused
from regsync.settings import DaemonSettings, Settings


def portal_phone(sandbox: SandboxServer, engine: Engine, volunteer: int, phone: str) -> None:
    """The person edits their phone on the portal (a registry change the platform must pull)."""
    with engine.connect() as conn:
        rid = conn.execute(text("SELECT registry_id FROM link WHERE entity = 'volunteer' AND local_id = :i"),
                           {"i": volunteer}).scalar_one()
    r = httpx.post(f"{sandbox.admin_url}/portal/volunteers/{rid}/contact", json={"phone": phone})
    assert r.status_code in (200, 201), r.text


def local_phone(engine: Engine, volunteer: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT phone FROM volunteer WHERE id = :i"), {"i": volunteer}).scalar_one()


def a_volunteer(engine: Engine) -> int:
    with engine.begin() as conn:
        f.org_tree(conn)
        return f.volunteer(conn, phone="13800001111")


def pull(settings: Settings, engine: Engine) -> dict[str, Any]:
    code, summary = run_sync(settings, engine=engine, outbound=False)
    assert code == 0, summary
    return summary


def test_a_portal_edit_after_an_outbound_only_first_sync_is_pulled(settings, engine, sandbox) -> None:
    """`sync --outbound` first, a portal edit, then `sync --inbound`: the pull used to take its first cursor at
    the feed's head, after the edit, and never apply it."""
    v = a_volunteer(engine)
    code, first = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and first["pushed"]["volunteers"] == 1, first
    with engine.connect() as conn:
        assert saved_cursor(conn) is not None  # taken before the push
    portal_phone(sandbox, engine, v, "13700002222")
    summary = pull(settings, engine)
    assert summary["merged"] == {"volunteers": 1} and not summary["reconcile_due"], summary
    assert local_phone(engine, v) == "13700002222"


def test_a_portal_edit_after_a_first_push_with_inbound_paused_is_pulled(settings, engine, sandbox) -> None:
    """`sync` while the inbound flow is paused pushes alone: it takes the first cursor all the same."""
    v = a_volunteer(engine)
    set_paused(engine, ["inbound"], True, reason="maintenance", actor="test")
    code, first = run_sync(settings, engine=engine)
    assert code == 0 and first["paused"] == ["inbound"] and first["pushed"]["volunteers"] == 1, first
    portal_phone(sandbox, engine, v, "13700003333")
    set_paused(engine, ["inbound"], False, reason="done", actor="test")
    summary = pull(settings, engine)
    assert summary["merged"] == {"volunteers": 1}, summary
    assert local_phone(engine, v) == "13700003333"


def test_a_portal_edit_after_the_daemons_first_relay_job_is_pulled(settings, engine, sandbox) -> None:
    """The daemon's relay job pushes before its first pull: the pull applies what changed in between."""
    v = a_volunteer(engine)
    daemon = Daemon(dataclasses.replace(settings, daemon=DaemonSettings(metrics_address="")), engine)
    try:
        assert daemon.job_outbound() == "run"
        portal_phone(sandbox, engine, v, "13700004444")
        code, summary = run_pull(settings, engine=engine)
    finally:
        daemon.close_clients()
    assert code == 0 and summary["merged"] == {"volunteer": 1} and not summary["reconcile_due"], summary
    assert local_phone(engine, v) == "13700004444"


def _lose_the_cursor(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM feed_cursor"))


def _by_sync(settings: Settings, engine: Engine) -> None:
    code, summary = run_sync(settings, engine=engine)
    assert code == 0 and summary["status"] == "partial" and summary["reconcile_reason"] == "NO_CURSOR", summary


def _by_outbound_sync(settings: Settings, engine: Engine) -> None:
    code, summary = run_sync(settings, engine=engine, inbound=False)
    assert code == 0 and summary["status"] == "partial" and summary["reconcile_reason"] == "NO_CURSOR", summary


def _by_inbound_sync(settings: Settings, engine: Engine) -> None:
    code, summary = run_sync(settings, engine=engine, outbound=False)
    assert code == 0 and summary["status"] == "partial" and summary["reconcile_reason"] == "NO_CURSOR", summary


def _by_pull(settings: Settings, engine: Engine) -> None:
    code, summary = run_pull(settings, engine=engine)
    assert code == 0 and summary["status"] == "partial" and summary["reconcile_reason"] == "NO_CURSOR", summary


def _by_daemon_relay_job(settings: Settings, engine: Engine) -> None:
    with engine.begin() as conn:  # something for the relay to push
        conn.execute(text("UPDATE volunteer SET skills = '[\"急救\"]'"))
    daemon = Daemon(dataclasses.replace(settings, daemon=DaemonSettings(metrics_address="")), engine)
    try:
        assert daemon.job_outbound() == "run"
    finally:
        daemon.close_clients()


@pytest.mark.parametrize("path", [_by_sync, _by_outbound_sync, _by_inbound_sync, _by_pull, _by_daemon_relay_job],
                         ids=lambda p: p.__name__[4:])
def test_links_but_no_cursor_mark_a_full_reconcile_due_on_every_path(settings, engine, sandbox, path) -> None:
    """Records are linked but the cursor is gone: whichever path takes a new first cursor starts from the head,
    so the registry's changes before it are seen only by a full reconcile. It is marked as due and `status`
    is not healthy (a `sync` used to take the head silently before its pull looked)."""
    a_volunteer(engine)
    code, _ = run_sync(settings, engine=engine)
    assert code == 0
    _lose_the_cursor(engine)
    path(settings, engine)
    with engine.connect() as conn:
        due = reconcile_due(conn)
        assert due is not None and due["reason"] == "NO_CURSOR"
        assert saved_cursor(conn) is not None
    status = collect_status(engine, settings)
    assert not status["healthy"] and status["reconcile_due"]["reason"] == "NO_CURSOR"
    assert any("reconcile is due" in p for p in status["problems"]), status["problems"]
