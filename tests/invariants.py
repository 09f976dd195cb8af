"""The invariants every sync must end in, whatever the registry threw at it (issue 3):

* every local record that is not refused for its data is in the registry exactly once, linked;
* the registry holds exactly one record per person (normalized ID number) and nothing this client created
  that is not linked (a lost answer never becomes a second record);
* each person's hours agree on both sides, each hour once: a local record's hours where the registry holds them,
  and where the registry refused a correction of it (issue 12, item 2), the hours of the registry's record the link
  names, which must still be ACCEPTED (an accepted record is never revoked unless its replacement is accepted);
* nothing waits in the outbox but what the registry refused on its data (and what waits for it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, text

COLLECTIONS = {"org": "orgs", "volunteer": "volunteers", "membership": "memberships", "activity": "activities",
               "service_record": "service-records", "training": "trainings", "training_record": "training-records",
               "commendation": "commendations", "evaluation": "evaluations"}
TABLES = {"org": "organization", "volunteer": "volunteer", "membership": "membership", "activity": "activity",
          "service_record": "service_record", "training": "training", "training_record": "training_record",
          "commendation": "commendation", "evaluation": "evaluation"}
#: (v1.1) an evaluation whose volunteer's service record the registry refused waits for it (AWAITS_SERVICE_RECORD);
#: the generator's v1.1 dirt: a training record beyond its training's class hours (INVALID_CLASS_HOURS), a score of 0
#: (INVALID_SCORE), an evaluation of an activity left uncompleted (AWAITS_COMPLETION)
DATA_CODES = {"INVALID_PHONE", "INVALID_ID_NUMBER", "INVALID_NAME", "PARENT_FAILED", "ID_NUMBER_LEGACY",
              "DAILY_HOURS_EXCEEDED", "LOCAL_DATA_INVALID", "NOT_ACTIVE", "INVALID_HOURS", "AWAITS_SERVICE_RECORD",
              "AWAITS_COMPLETION", "INVALID_CLASS_HOURS", "INVALID_SCORE"}


def registry_records(admin_url: str, collection: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{admin_url}/records/{collection}", timeout=60)
    r.raise_for_status()
    return r.json()["data"]["records"]


def check_invariants(engine: Engine, admin_url: str, client_id: str) -> dict[str, Any]:
    """Assert the invariants; returns figures for the report (records per kind, refused records)."""
    figures: dict[str, Any] = {}
    with engine.connect() as conn:
        waiting = conn.execute(text(
            "SELECT entity, local_id, state, last_code FROM outbox WHERE state IN ('pending', 'deferred')")).all()
        assert waiting == [], f"rows still waiting in the outbox: {waiting[:10]}"
        refused = conn.execute(text(
            "SELECT DISTINCT entity, local_id, last_code FROM outbox WHERE state IN ('failed', 'blocked')")).all()
        bad_codes = {code for _, _, code in refused} - DATA_CODES
        assert not bad_codes, f"rows failed for reasons that are not about their data: {bad_codes}"
        refused_keys = {(e, lid) for e, lid, _ in refused}
        # keys used again whose new record the registry refused: the old record was ended as a delete ends it
        # (design.md's mapping table), and the new one waits for an operator: neither holds the row's hours
        reused = {(e, lid) for e, lid in conn.execute(text(
            "SELECT DISTINCT entity, local_id FROM outbox WHERE op = 'reuse'"))}
        reused_refused = reused & refused_keys
        figures["refused"] = dict(Counter(code for _, _, code in refused))
        service_records: dict[str, Any] = {}

        for kind, table in TABLES.items():
            local_ids = [r[0] for r in conn.execute(text(f"SELECT id FROM {table}"))]
            links = dict(conn.execute(text("SELECT local_id, registry_id FROM link WHERE entity = :k"),
                                      {"k": kind}).all())
            unlinked = [lid for lid in local_ids if lid not in links and (kind, lid) not in refused_keys]
            assert not unlinked, f"{kind}: local records neither linked nor refused: {unlinked[:10]}"
            records = registry_records(admin_url, COLLECTIONS[kind])
            by_id = {r["id"]: r for r in records}
            missing = [lid for lid, rid in links.items() if rid not in by_id]
            assert not missing, f"{kind}: links to records the registry does not have: {missing[:10]}"
            linked_rids = set(links.values())
            mine = [r for r in records if r.get("ownerClientId") == client_id]
            if kind in ("service_record", "training_record"):
                # a corrected record's revoked predecessor is no longer linked; it must be REVOKED
                stray = [r for r in mine if r["id"] not in linked_rids and r["status"] != "REVOKED"]
            else:
                stray = [r for r in mine if r["id"] not in linked_rids]
            assert not stray, f"{kind}: registry records this client created that no local record links: " \
                              f"{[(r['id'], r.get('clientRef')) for r in stray[:10]]}"
            if kind != "membership":
                refs = Counter(r.get("clientRef") for r in mine)
                doubled = [ref for ref, n in refs.items() if ref is not None and n > 1]
                assert not doubled, f"{kind}: clientRefs in the registry twice: {doubled[:10]}"
            figures[kind] = len(linked_rids)
            if kind == "service_record":
                service_records = by_id

        vols = registry_records(admin_url, "volunteers")
        people = Counter((v["idType"], v["idNumber"]) for v in vols)
        assert all(n == 1 for n in people.values()), "a person is in the registry twice"

        # hours per person: the registry's totalHours against the local accepted, linked records
        local_hours: dict[str, int] = defaultdict(int)
        for sid, rid, hours, srid in conn.execute(text(
                "SELECT sr.id, lv.registry_id, sr.hours, ls.registry_id FROM service_record sr "
                "JOIN link ls ON ls.entity = 'service_record' AND ls.local_id = sr.id "
                "JOIN link lv ON lv.entity = 'volunteer' AND lv.local_id = sr.volunteer_id "
                "WHERE sr.status = 'ACCEPTED'")):
            if ("service_record", sid) in reused_refused:
                assert service_records[srid]["status"] == "REVOKED", \
                    f"service record {sid}: its key was used again and the new record refused, but the old record " \
                    f"{srid} is {service_records[srid]['status']}, not ended as a delete ends it"
                continue
            if ("service_record", sid) in refused_keys:  # a correction refused: the registry keeps its record
                kept = service_records[srid]
                assert kept["status"] == "ACCEPTED", \
                    f"service record {sid}: its correction was refused and the registry's record {srid} is " \
                    f"{kept['status']}: its hours are lost"
                hours = int(Decimal(kept["hours"]) * 100)
            local_hours[rid] += hours
        for v in vols:
            want = Decimal(local_hours.get(v["id"], 0)) / 100
            assert Decimal(v["totalHours"]) == want, f"hours of {v['id']}: registry {v['totalHours']}, local {want}"
        figures["people"] = len(vols)
    return figures
