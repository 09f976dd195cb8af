"""Adopt (design.md, flow 4) of the four v1.1 kinds (issue 16, point 1), on every engine, against the sandbox over
real HTTP: records older channels left in the registry are linked to the platform's unlinked rows by their natural
keys (domain/projection.IDENTITY): a training by org, title and start; a training record by training and volunteer;
a commendation by subject, title and date, or by subject, scheme and year; an evaluation by activity and volunteer.
A training the registry holds twice is held for a person, never guessed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import Engine, text

import factories as f
import v11util as v
from regsync.db.links import registry_ids_of
from regsync.db.platform.read import load_record
from regsync.domain.projection import REFERENCES, project_local
from regsync.flows.adopt import HELD_CODE, run_adopt
from regsync.registry import wire
from test_reconcile import reconcile, sync, world


def _wire_doc(engine: Engine, kind: str, local_id: int, refs: dict[tuple[str, int], str] | None = None,
              **changes: Any) -> dict[str, Any]:
    """The registry's record of a local row as an older channel entered it (wire names, no ``clientRef``)."""
    with engine.connect() as conn:
        row = load_record(conn, kind, local_id)
        wanted: dict[str, set[int]] = {}
        for col, ref in REFERENCES[kind].items():
            if row.get(col) is not None:
                wanted.setdefault(ref, set()).add(row[col])
        known = registry_ids_of(conn, wanted)
    fields = project_local(kind, row, {**known, **(refs or {})})
    if kind == "commendation":
        fields = {k: val for k, val in fields.items() if val is not None or k not in ("volunteer_id", "org_id")}
    doc = wire.encode_body(kind, fields)  # type: ignore[arg-type]
    doc.update(changes)
    return doc


def _setup(engine: Engine, settings: Any, sandbox: Any) -> dict[str, Any]:
    w = world(engine, settings)
    t, vols = w["tree"], w["vols"]
    with engine.begin() as conn:  # the same person again, later: the relay links the row as a duplicate
        number = conn.execute(text("SELECT id_number FROM volunteer WHERE id = :i"), {"i": vols[1]}).scalar_one()
        dup = f.volunteer(conn, id_number=number, registered_at=dt.datetime(2023, 1, 1))
    sync(settings, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": w["activity"]})
    v.push_v11(settings, engine, kinds=())  # the activity completed in the registry too
    with engine.begin() as conn:  # the platform's rows, their outbox rows waiting
        ids = {"training": v.training(conn, t["team"]),
               "twin": v.training(conn, t["team"], title="岗位技能培训", starts_at=dt.datetime(2026, 4, 2, 1),
                                  ends_at=dt.datetime(2026, 4, 2, 5)),
               "lone": v.training(conn, t["team"], title="只在平台的培训")}  # no registry record: stays unlinked
        ids["training_record"] = v.training_record(conn, ids["training"], vols[0])
        # the person's second row holds their training record: it goes under the primary's registry id
        ids["dup_record"] = v.training_record(conn, ids["training"], dup)
        ids["commendation"] = v.commendation(conn, volunteer_id=vols[0])
        ids["scheme"] = v.commendation(conn, org_id=t["team"], title="2025年度志愿服务光荣奖",
                                       scheme="PROVINCIAL_ANNUAL", tier="HONOR", year=2025,
                                       awarded_on=dt.date(2026, 1, 20))
        ids["evaluation"] = v.evaluation(conn, w["activity"], vols[0], t["team"])
    def bulk(kind: str, docs: list[dict[str, Any]]) -> list[str]:
        r = httpx.post(f"{sandbox.admin_url}/records/{v.COLLECTIONS[kind]}", json={"records": docs, "province": "23"})
        assert r.status_code == 201, r.text
        return list(r.json()["data"]["ids"])

    reg: dict[str, Any] = {}
    reg["training"] = bulk("training", [_wire_doc(engine, "training", ids["training"])])[0]
    reg["twins"] = bulk("training", [_wire_doc(engine, "training", ids["twin"]),
                                     _wire_doc(engine, "training", ids["twin"])])
    reg["training_record"], reg["dup_record"] = bulk("training_record", [_wire_doc(
        engine, "training_record", local_id, {("training", ids["training"]): reg["training"]})
        for local_id in (ids["training_record"], ids["dup_record"])])
    reg["commendation"] = bulk("commendation", [_wire_doc(engine, "commendation", ids["commendation"])])[0]
    # the scheme's commendation under another title: named by subject, scheme and year
    reg["scheme"] = bulk("commendation", [_wire_doc(engine, "commendation", ids["scheme"],
                                                    title="2025年度光荣奖（志愿服务队）")])[0]
    reg["evaluation"] = bulk("evaluation", [_wire_doc(engine, "evaluation", ids["evaluation"])])[0]
    return {"w": w, "ids": ids, "reg": reg}


def _links(engine: Engine) -> dict[tuple[str, int], tuple[str, str]]:
    with engine.connect() as conn:
        return {(e, int(i)): (r, h) for e, i, r, h in conn.execute(text(
            "SELECT entity, local_id, registry_id, how FROM link WHERE entity IN ('training', 'training_record', "
            "'commendation', 'evaluation')"))}


def test_v11_kinds_are_adopted_by_natural_keys_and_a_twin_is_held(settings, engine, sandbox) -> None:
    s = _setup(engine, settings, sandbox)
    ids, reg = s["ids"], s["reg"]

    plan_code, plan = run_adopt(settings, engine=engine, dry_run=True)
    assert plan_code == 0, plan
    assert {k: plan["linked"].get(k) for k in ("training", "training_record", "commendation", "evaluation")} == {
        "training": 1, "training_record": 2, "commendation": 2, "evaluation": 1}
    assert _links(engine) == {}  # a plan links nothing

    code, summary = run_adopt(settings, engine=engine)
    assert code == 0 and summary["status"] == "success", summary
    assert {k: summary["linked"].get(k) for k in ("training", "training_record", "commendation", "evaluation")} \
        == {"training": 1, "training_record": 2, "commendation": 2, "evaluation": 1}
    assert summary["ambiguous"] == {"training": 2}
    assert summary["local_unlinked"]["training"] == 2  # the twin (held) and the platform's own
    links = _links(engine)
    # records older channels left are the registry's (registry-api.md §1 "ownership"): taken as they are
    assert links == {("training", ids["training"]): (reg["training"], "registry_owned"),
                     ("training_record", ids["training_record"]): (reg["training_record"], "registry_owned"),
                     ("training_record", ids["dup_record"]): (reg["dup_record"], "registry_owned"),
                     ("commendation", ids["commendation"]): (reg["commendation"], "registry_owned"),
                     ("commendation", ids["scheme"]): (reg["scheme"], "registry_owned"),
                     ("evaluation", ids["evaluation"]): (reg["evaluation"], "registry_owned")}
    listed = summary["ambiguous_matches"]
    assert {d["registry_id"] for d in listed} == set(reg["twins"])
    assert all(d["entity"] == "training" and d["details"]["local_ids"] == [ids["twin"]] for d in listed)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT DISTINCT entity, local_id FROM outbox WHERE last_code = :c"),
                            {"c": HELD_CODE}).all()
        title = conn.execute(text("SELECT title FROM commendation WHERE id = :i"), {"i": ids["scheme"]}).scalar_one()
    assert [tuple(h) for h in held] == [("training", ids["twin"])]
    assert title == "2025年度光荣奖（志愿服务队）"  # the registry's record taken as it is
    # the linked pairs agree: only the held twin and the platform's own training differ
    found = reconcile(settings, engine, kinds=["trainings", "training_records", "commendations", "evaluations"])
    assert found["discrepancies"] == {"missing_in_registry": 2, "missing_locally": 2}, found["listed"]
    assert {d["registry_id"] for d in found["listed"] if d["kind"] == "missing_locally"} == set(reg["twins"])
    # a second adopt links nothing more and holds nothing new
    code, again = run_adopt(settings, engine=engine)
    assert code == 0 and {k: again["linked"].get(k, 0) for k in ("training_record", "commendation", "evaluation")} \
        == {"training_record": 0, "commendation": 0, "evaluation": 0}
