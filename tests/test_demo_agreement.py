"""The demo's word on agreement (``regsync demo``: :func:`regsync.console.demo.compare_with_registry`) on SQLite,
PostgreSQL and MariaDB: a field an open conflict holds differs on purpose, on the link's base as on the local row."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text

import factories
from regsync.console.demo import compare_with_registry, transferred_counts
from regsync.db.agreement import transferred_commendations, transferred_volunteers
from regsync.db.models import TRANSFERRED_OUT, Link
from regsync.registry.client import RegistryClient
from regsync.settings import MergeSettings
from test_inbound import poll, portal, pushed_world, rid


def test_a_field_held_by_a_conflict_is_left_out_of_both_agreements(settings, engine, sandbox) -> None:
    """Both sides changed the phone and ``contact = manual`` holds it: the link's base keeps the phone last agreed,
    the registry and the local row each have another, and the record still agrees in every other field."""
    settings = dataclasses.replace(settings, merge=MergeSettings(contact="manual"))
    v = pushed_world(settings, engine)["vols"][0]
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13600001111' WHERE id = :i"), {"i": v})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', v)}/contact", {"phone": "13700002222"})
    assert poll(settings, engine).conflicts == {"volunteer": 1}
    with RegistryClient(settings.registry, province=settings.province) as client:
        cmp = compare_with_registry(engine, client, "volunteer", settings.hash_key)
    assert (cmp["found"], cmp["duplicates"], cmp["agree"], cmp["local_agree"]) == (1, 0, 1, 1), cmp
    assert cmp["identical"] == 1, cmp


def test_identical_counts_the_records_in_step_on_both_sides_not_the_smaller_of_the_two_agreements(
        settings, engine, sandbox) -> None:
    """Issue 15: the demo's ``synced`` column. One volunteer changed on the platform only (its base still agrees
    with the registry, its row does not), another given the same new phone on both sides without a sync (its row
    agrees with the registry, its base does not): one of each agreement, and neither record is in step."""
    one, other = pushed_world(settings, engine, volunteers=2)["vols"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE volunteer SET phone = '13600001111' WHERE id IN (:a, :b)"), {"a": one, "b": other})
    portal(sandbox, f"volunteers/{rid(engine, 'volunteer', other)}/contact", {"phone": "13600001111"})
    with RegistryClient(settings.registry, province=settings.province) as client:
        cmp = compare_with_registry(engine, client, "volunteer", settings.hash_key)
    assert (cmp["found"], cmp["agree"], cmp["local_agree"], cmp["identical"]) == (2, 1, 1, 0), cmp


def commendation(conn, **kw) -> int:
    row = {"title": "2025年度优秀志愿者", "awarded_on": dt.date(2026, 1, 20), "issuer": "哈尔滨市志愿服务联合会",
           "document_name": "关于表彰2025年度优秀志愿者的决定", "document_number": "哈志协〔2026〕3号",
           "status": "ACTIVE", **kw}
    return factories.insert(conn, "commendation", **row)


def test_a_transferred_volunteers_commendations_count_as_moved_out(engine) -> None:
    """registry-api.md §1 "scope" (v1.1): a volunteer's commendations move with a transfer, so they leave the
    province's export with the volunteer; an org's, and a staying volunteer's, do not. The demo counts them as moved
    out, so that its numbers add up for commendations too."""
    with engine.begin() as conn:
        org = factories.org(conn, "CITY_CORPS")
        moved, stays, elsewhere = (factories.volunteer(conn) for _ in range(3))
        conn.execute(text("UPDATE volunteer SET home_province = '11' WHERE id = :v"), {"v": elsewhere})
        for v in (moved, moved, stays, elsewhere):
            commendation(conn, volunteer_id=v, org_id=None, awarded_on=dt.date(2026, 1, 1 + v % 20))
        commendation(conn, volunteer_id=None, org_id=org)
        now = dt.datetime(2026, 12, 1)
        conn.execute(Link.__table__.insert(), [
            {"entity": "volunteer", "local_id": v, "registry_id": f"VOL{v}", "registry_version": 1, "base": "{}",
             "is_duplicate": False, "revision": 0, "how": TRANSFERRED_OUT if v == moved else "created",
             "linked_at": now, "updated_at": now} for v in (moved, stays)])
    assert transferred_volunteers(engine, "23") == 2  # by the link, and by the home province
    assert transferred_commendations(engine, "23") == 3  # the moved one's two, the other province's one
    assert transferred_counts(engine, "23") == {"volunteers": 2, "commendations": 3}
