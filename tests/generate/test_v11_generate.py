"""The generator's records of registry-api.md v1.1 (issue 16, point 3): trainings (§4.6), training records (§4.7),
evaluations (§4.9) and commendations (§4.8, the annual scheme's only where the year's service reaches the tier),
checked against the registry's rules on one generated data set per engine, with their own dirt in the dirt log."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from regsync.generate import DIRT_KINDS, DirtRates, generate
from regsync.generate.catalog import ORG_TIERS, VOLUNTEER_TIERS
from regsync.generate.generator import KINDS
from regsync.generate.registry_docs import COLLECTIONS
from regsync.generate.seed import SeedRates, inprocess_bulk, seed_sandbox
from regsync.sandbox.server import SandboxServer

from .conftest import AS_OF, Dataset, Store, new_store
from .test_dataset import as_date, as_dt, dirt_of, rows

CST = dt.timedelta(hours=8)
TIER_HOURS = {code: threshold for code, threshold, _ in VOLUNTEER_TIERS}
TIER_SERVICES = {code: threshold for code, threshold, _ in ORG_TIERS}


def local_day(v) -> dt.date:
    """The +08:00 date of a naive-UTC timestamp."""
    return (as_dt(v) + CST).date()


def test_every_v11_kind_is_made_and_counted(dataset: Dataset) -> None:
    c = dataset.summary.counts
    for kind, table in (("training", "training"), ("training_record", "training_record"),
                        ("evaluation", "evaluation"), ("commendation", "commendation")):
        assert c[kind] > 0, kind
        assert rows(dataset, f"SELECT count(*) AS n FROM {table}")[0]["n"] == c[kind], kind
    assert dataset.summary.rows == sum(c[k] for k in KINDS)
    # realistic rates: a few trainings per org and year, a share of members attending, a share of services scored
    assert 1 <= c["training"] / c["org"] <= 8
    assert 0.1 <= c["training_record"] / c["membership"] <= 1.0
    assert 0.02 <= c["evaluation"] / c["service_record"] <= 0.2
    assert c["commendation"] < c["volunteer"] * 0.2


def test_trainings(dataset: Dataset) -> None:
    orgs = {o["id"]: o for o in rows(dataset, "SELECT id, region_code, established_on FROM organization")}
    trainings = rows(dataset, "SELECT * FROM training")
    assert {t["training_type"] for t in trainings} == {"GENERAL", "POST", "PROFESSIONAL"}
    assert {t["mode"] for t in trainings} == {"ONLINE", "IN_PERSON"}
    assert {t["status"] for t in trainings} == {"SCHEDULED", "COMPLETED", "CANCELLED"}
    for t in trainings:
        starts, ends = as_dt(t["starts_at"]), as_dt(t["ends_at"])
        assert ends > starts
        span = int((ends - starts).total_seconds()) // 36  # hundredths of an hour
        assert 50 <= t["class_hours"] <= min(20000, span) and t["class_hours"] % 50 == 0, t
        if t["mode"] == "IN_PERSON":
            assert t["address"] and 2 <= len(t["address"]) <= 200
        assert t["region_code"].startswith("23") and len(t["region_code"]) == 6
        assert 2 <= len(t["title"]) <= 100 and t["contact_name"] and re.fullmatch(r"1\d{10}", t["contact_phone"])
        assert local_day(starts) > as_date(orgs[t["org_id"]]["established_on"])
        if t["status"] == "COMPLETED":
            assert local_day(ends) < AS_OF  # COMPLETED only once ended


def test_training_records(dataset: Dataset) -> None:
    trainings = {t["id"]: t for t in rows(dataset, "SELECT * FROM training")}
    members: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for m in rows(dataset, "SELECT * FROM membership"):
        members[(m["volunteer_id"], m["org_id"])].append(m)
    person = {v["id"]: v["id_number_norm"] or f"row{v['id']}" for v in
              rows(dataset, "SELECT id, id_number_norm FROM volunteer")}
    dirt = dirt_of(dataset, "training_record")
    pairs = Counter()
    for r in rows(dataset, "SELECT * FROM training_record"):
        t = trainings[r["training_id"]]
        assert t["status"] != "CANCELLED"
        start, end = local_day(t["starts_at"]), local_day(t["ends_at"])
        assert start <= as_date(r["completed_on"]) <= min(end, AS_OF)
        # a member of the training's org, joined by its start and not left
        assert any(as_date(m["joined_on"]) <= start and (m["left_on"] is None or as_date(m["left_on"]) > start)
                   for m in members[(r["volunteer_id"], t["org_id"])]), r
        assert r["class_hours"] % 50 == 0 and r["class_hours"] >= 50
        if "training_record_hours" in dirt[r["id"]]:
            assert r["class_hours"] > t["class_hours"]
        else:
            assert r["class_hours"] <= t["class_hours"]
        assert r["result"] in ("PASSED", "ATTENDED") and r["status"] in ("ACCEPTED", "REVOKED")
        assert (r["revoke_reason"] is not None) == (r["status"] == "REVOKED")
        if r["status"] == "ACCEPTED":
            pairs[(r["training_id"], person[r["volunteer_id"]])] += 1
    assert max(pairs.values()) == 1  # one ACCEPTED record per training and person (§4.7)


def test_evaluations(dataset: Dataset) -> None:
    acts = {a["id"]: a for a in rows(dataset, "SELECT id, org_id, status, ends_at FROM activity")}
    served = {(r["activity_id"], r["volunteer_id"]) for r in
              rows(dataset, "SELECT activity_id, volunteer_id FROM service_record WHERE status = 'ACCEPTED'")}
    person = {v["id"]: v["id_number_norm"] or f"row{v['id']}" for v in
              rows(dataset, "SELECT id, id_number_norm FROM volunteer")}
    dirt = dirt_of(dataset, "evaluation")
    pairs = Counter()
    for e in rows(dataset, "SELECT * FROM evaluation"):
        a = acts[e["activity_id"]]
        assert (e["activity_id"], e["volunteer_id"]) in served  # NOT_A_PARTICIPANT otherwise
        assert e["evaluator_org_id"] == a["org_id"]  # NOT_THE_ORGANIZER otherwise
        assert as_date(e["evaluated_on"]) <= AS_OF
        # on or after the activity's end (else OUT_OF_RANGE), which is COMPLETED but for the dirt's (INVALID_STATE)
        assert as_date(e["evaluated_on"]) >= local_day(a["ends_at"])
        assert a["status"] == ("PUBLISHED" if "evaluation_not_completed" in dirt[e["id"]] else "COMPLETED")
        scores = (e["punctuality"], e["attitude"], e["competence"])
        if "evaluation_score_zero" in dirt[e["id"]]:
            assert 0 in scores and all(0 <= s <= 5 for s in scores)
        else:
            assert all(1 <= s <= 5 for s in scores)
        if e["status"] == "ACTIVE":
            pairs[(e["activity_id"], person[e["volunteer_id"]])] += 1
    assert max(pairs.values()) == 1  # one ACTIVE evaluation per activity and person (§4.9)


def test_commendations(dataset: Dataset) -> None:
    person = {v["id"]: v["id_number_norm"] or f"row{v['id']}" for v in
              rows(dataset, "SELECT id, id_number_norm FROM volunteer")}
    station = {o["id"]: o["station_id"] for o in rows(dataset, "SELECT id, station_id FROM organization")}
    refused = {d["local_id"] for d in rows(dataset, "SELECT local_id FROM generator_dirt WHERE entity = 'volunteer' "
                                                    "AND NOT fixable")}
    hours: Counter = Counter()  # (person, year) → ACCEPTED hundredths
    services: Counter = Counter()  # (org, year) → ACCEPTED records whose org or station it is, in the registry
    for r in rows(dataset, "SELECT volunteer_id, org_id, service_date, hours FROM service_record "
                           "WHERE status = 'ACCEPTED'"):
        year = as_date(r["service_date"]).year
        hours[(person[r["volunteer_id"]], year)] += r["hours"]
        if r["volunteer_id"] in refused:
            continue  # a refused volunteer's records never reach the registry, which counts its own
        services[(r["org_id"], year)] += 1
        if station[r["org_id"]] is not None:
            services[(station[r["org_id"]], year)] += 1
    scheme: Counter = Counter()
    seen_tiers: set[str] = set()
    kinds = Counter()
    for c in rows(dataset, "SELECT * FROM commendation"):
        assert (c["volunteer_id"] is None) != (c["org_id"] is None)  # exactly one subject
        assert as_date(c["awarded_on"]) <= AS_OF
        assert re.fullmatch(r"\S+〔\d{4}〕\d+号", c["document_number"]), c["document_number"]
        assert c["issuer"] and c["document_name"] and 2 <= len(c["title"]) <= 100
        if c["scheme"] is None:
            assert c["tier"] is None and c["year"] is None
            kinds["other"] += 1
            continue
        assert c["scheme"] == "PROVINCIAL_ANNUAL" and c["year"] < AS_OF.year
        assert as_date(c["awarded_on"]) > dt.date(c["year"], 12, 31)
        seen_tiers.add(c["tier"])
        if c["volunteer_id"] is not None:  # the tier is earned: the year's ACCEPTED hours reach it
            assert hours[(person[c["volunteer_id"]], c["year"])] >= TIER_HOURS[c["tier"]], c
            subject = ("v", person[c["volunteer_id"]])
            kinds["volunteer scheme"] += 1
        else:
            assert services[(c["org_id"], c["year"])] >= TIER_SERVICES[c["tier"]], c
            subject = ("o", c["org_id"])
            kinds["org scheme"] += 1
        if c["status"] == "ACTIVE":
            scheme[(subject, c["year"])] += 1
    assert max(scheme.values()) == 1  # one ACTIVE per subject, scheme and year (§4.8)
    assert kinds["other"] and kinds["volunteer scheme"] and kinds["org scheme"], kinds
    assert {"CARE", "BRONZE", "HONOR"} <= seen_tiers


def test_v11_dirt_is_logged(dataset: Dataset) -> None:
    log = rows(dataset, "SELECT entity, kind, fixable, expected_code FROM generator_dirt "
                        "WHERE entity IN ('training_record', 'evaluation')")
    counts = Counter(d["kind"] for d in log)
    for kind in ("training_record_hours", "evaluation_not_completed", "evaluation_score_zero"):
        assert counts[kind] > 0, kind
        assert counts[kind] == dataset.summary.dirt[kind]
    for d in log:
        assert (d["entity"], bool(d["fixable"]), d["expected_code"]) == DIRT_KINDS[d["kind"]]


def test_no_v11_dirt_at_zero_rates_and_kinds_alone(store: Store) -> None:
    zero = DirtRates(**{f: 0.0 for f in DirtRates.__dataclass_fields__})
    summary = generate(store.engine, 0.0005, 3, rates=zero, as_of=AS_OF,
                       kinds={"org", "training"})
    assert summary.counts["training"] > 0 and "training_record" not in summary.counts
    assert summary.dirt == {}


# --------------------------------------------------------------------------------------------------
# the registry's side for the demo and adopt: the sandbox seeded with v1.1's kinds (regsync.generate.seed)
# --------------------------------------------------------------------------------------------------


def test_the_sandbox_is_seeded_with_v11_kinds_as_the_registry_would_hold_them(tmp_path: Path) -> None:
    store = new_store("sqlite", tmp_path)
    rates = DirtRates(training_record_hours=0.05, evaluation_score_zero=0.05, evaluation_not_completed=0.05)
    try:
        generate(store.engine, 0.0005, 7, as_of=AS_OF, rates=rates)
        url = str(store.engine.url)
        with SandboxServer(admin=True) as sandbox:
            out = seed_sandbox(inprocess_bulk(sandbox), store_url=url, seed=7,
                               rates=SeedRates(missing_in_registry=0.05, differing=0.05, missing_locally=0.0))
            got = {kind: records(sandbox, COLLECTIONS[kind]) for kind in
                   ("volunteer", "training", "training_record", "commendation", "evaluation")}
    finally:
        store.close()
    for kind in ("training", "training_record", "commendation", "evaluation"):
        assert out["seeded"][kind] == len(got[kind]) > 0, kind
    for kind in ("training_record", "commendation", "evaluation"):
        assert out["left_out"][kind] > 0, kind  # older channels never carried some over
    for kind in ("training", "commendation", "evaluation"):
        assert out["differing"][kind] > 0, kind
    # the generator's dirt of v1.1's kinds is not in the registry: the registry would have refused it
    assert out["unfit"]["training_record"] > 0 and out["unfit"]["evaluation"] > 0
    trainings = {t["id"]: t for t in got["training"]}
    assert all(r["status"] == "ACCEPTED" and decode(r["classHours"]) <= decode(trainings[r["trainingId"]]["classHours"])
               for r in got["training_record"])
    assert all(1 <= e[s] <= 5 for e in got["evaluation"] for s in ("punctuality", "attitude", "competence"))
    # a commendation's subject in the registry's form; one per subject and scheme year
    assert {c["subjectType"] for c in got["commendation"]} == {"VOLUNTEER", "ORG"}
    assert all("volunteerId" not in c and "orgId" not in c for c in got["commendation"])
    schemes = Counter((c["subjectId"], c["year"]) for c in got["commendation"] if c["scheme"])
    assert schemes and max(schemes.values()) == 1
    # a volunteer's trainingHours add up the training records seeded
    hours: Counter = Counter()
    for r in got["training_record"]:
        hours[r["volunteerId"]] += decode(r["classHours"])
    assert hours and all(decode(v["trainingHours"]) == hours[v["id"]] for v in got["volunteer"])


def records(sandbox: SandboxServer, collection: str) -> list[dict]:
    r = httpx.get(f"{sandbox.admin_url}/records/{collection}", timeout=60)
    r.raise_for_status()
    return r.json()["data"]["records"]


def decode(hours: str) -> int:
    """``"2.50"`` → 250."""
    whole, frac = hours.split(".")
    return int(whole) * 100 + int(frac)
