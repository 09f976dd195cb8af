"""The demo's word on agreement (``regsync demo``: :func:`regsync.console.demo.compare_with_registry`) on SQLite,
PostgreSQL and MariaDB: a field an open conflict holds differs on purpose, on the link's base as on the local row."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from regsync.console.demo import compare_with_registry
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
