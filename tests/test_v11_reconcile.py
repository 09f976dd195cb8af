"""Reconcile of the four v1.1 kinds (issue 16, point 1; registry-api.md §4.6–§4.9) against the sandbox registry over
real HTTP, on every engine: each kind of difference is found for trainings, training records, commendations and
evaluations, attributed to the org responsible (a training's org, a training record's training's, an evaluation's
evaluator, a commendation's subject), and ``repair`` fixes what policy allows: a training record's mismatch is
queued as a push (the relay sends it as a correction, ``:correct``), never merged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from sqlalchemy import text

import v11util as v
from regsync.db.session import suppress_outbox
from test_reconcile import findings, patch, portal, reconcile, rid, world


def _link(engine: Any, kind: str, local_id: int, registry_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO link (entity, local_id, registry_id, registry_version, base, is_duplicate, "
                          "revision, how, linked_at, updated_at) VALUES (:e, :i, :r, 1, '{}', false, 0, 'created', "
                          ":now, :now)"), {"e": kind, "i": local_id, "r": registry_id, "now": dt.datetime(2026, 1, 1)})


def test_v11_kinds_in_agreement_give_zero_and_are_compared(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    v.add_v11(engine, w)
    v.push_v11(settings, engine)
    summary = reconcile(settings, engine)
    assert summary["discrepancies"] == {}, summary["listed"]
    for kind, n in (("training", 1), ("training_record", 1), ("commendation", 2), ("evaluation", 1)):
        assert summary["compared"][kind] == {"local": n, "registry": n, "pairs": n}, kind


def test_v11_discrepancies_are_found_attributed_and_repaired(settings, engine, sandbox) -> None:
    w = world(engine, settings)
    t, vols = w["tree"], w["vols"]
    ids = v.add_v11(engine, w)
    made = v.push_v11(settings, engine)
    tr, trr, org_cmd, ev = ids["training"], ids["training_record"], ids["org_commendation"], ids["evaluation"]
    with engine.begin() as conn, suppress_outbox(conn):  # local changes that never reached the outbox
        conn.execute(text("UPDATE training SET title = '应急救护培训（第二期）' WHERE id = :i"), {"i": tr})
        conn.execute(text("UPDATE training_record SET class_hours = 250 WHERE id = :i"), {"i": trr})
        conn.execute(text("UPDATE evaluation SET competence = 5 WHERE id = :i"), {"i": ev})
        lost_training = v.training(conn, t["unit"], title="志愿服务通用培训")  # missing_in_registry
        lost_eval = v.evaluation(conn, w["activity"], vols[1], t["team"])  # missing_in_registry
        broken = v.commendation(conn, volunteer_id=vols[2], title="社区服务之星")  # broken_link
    _link(engine, "commendation", broken, "CMD9999999999999")
    # registry edits
    patch(sandbox, "commendations", made[("commendation", org_cmd)], {"issuer": "黑龙江省志愿服务联合会"})  # stale
    national = portal(sandbox, "commendations", {  # missing_locally: a national commendation of a volunteer
        "subjectType": "VOLUNTEER", "subjectId": rid(engine, "volunteer", vols[3]), "title": "全国优秀志愿者",
        "scheme": None, "tier": None, "year": None, "awardedOn": "2026-06-05", "issuer": "中央文明办",
        "documentName": "表彰决定", "documentNumber": "文明办〔2026〕8号", "content": None})
    portal_tr = portal(sandbox, "training-records", {  # orphan once its volunteer is unknown to the registry
        "trainingId": made[("training", tr)], "volunteerId": rid(engine, "volunteer", vols[1]),
        "completedOn": "2026-04-01", "classHours": "2.00", "result": "ATTENDED"})
    patch(sandbox, "training-records", portal_tr["id"], {"volunteerId": "VOL8888888888888"})

    first = reconcile(settings, engine)
    got = {(r["kind"], r["entity"], r["local_id"], r["registry_id"]) for r in findings(engine, first["run_id"])}
    assert got == {
        ("field_mismatch", "training", tr, made[("training", tr)]),
        ("field_mismatch", "training_record", trr, made[("training_record", trr)]),
        ("field_mismatch", "evaluation", ev, made[("evaluation", ev)]),
        ("missing_in_registry", "training", lost_training, None),
        ("missing_in_registry", "evaluation", lost_eval, None),
        ("broken_link", "commendation", broken, "CMD9999999999999"),
        ("stale_link", "commendation", org_cmd, made[("commendation", org_cmd)]),
        ("missing_locally", "commendation", None, national["id"]),
        ("orphan", "training_record", None, portal_tr["id"]),
    }, first["listed"]
    rows = {(r["kind"], r["entity"]): r for r in findings(engine, first["run_id"])}
    assert json.loads(rows[("field_mismatch", "training")]["fields"]) == ["title"]
    assert json.loads(rows[("field_mismatch", "training_record")]["fields"]) == ["class_hours"]
    assert json.loads(rows[("field_mismatch", "evaluation")]["fields"]) == ["competence"]
    assert json.loads(rows[("stale_link", "commendation")]["fields"]) == ["issuer"]
    assert json.loads(rows[("orphan", "training_record")]["fields"]) == ["volunteer_id"]
    details = json.loads(rows[("field_mismatch", "training_record")]["details"])
    assert (details["local"]["class_hours"], details["registry"]["class_hours"]) == (250, 300)  # hundredths of an hour
    # who must fix each: the training's org (the team, specialized line), the evaluator, the commended team, the
    # training's unit; all in Harbin (2301)
    assert all(r["city_code"] == "2301" for r in rows.values()), [
        (k, r["city_code"], r["org_line"]) for k, r in rows.items() if r["city_code"] != "2301"]
    assert rows[("field_mismatch", "training")]["org_line"] == "specialized"
    assert rows[("stale_link", "commendation")]["org_line"] == "specialized"
    assert rows[("field_mismatch", "evaluation")]["org_line"] == "specialized"

    repaired = reconcile(settings, engine, repair=True)
    actions = {(r["kind"], r["entity"]): (r["action"], r["action_state"])
               for r in findings(engine, repaired["run_id"])}
    assert actions[("field_mismatch", "training")] == ("push", "queued")
    assert actions[("field_mismatch", "training_record")] == ("push", "queued")  # a correction, never merged
    assert actions[("field_mismatch", "evaluation")] == ("push", "queued")
    assert actions[("missing_in_registry", "training")] == ("push", "queued")
    assert actions[("missing_in_registry", "evaluation")] == ("push", "queued")
    assert actions[("broken_link", "commendation")] == ("relink", "queued")
    assert actions[("stale_link", "commendation")] == ("pull", "done")
    assert actions[("orphan", "training_record")] == ("none", "not_allowed")
    assert actions[("missing_locally", "commendation")] == ("pull", "done")  # the portal's, come home
    with engine.connect() as conn:
        pulled = conn.execute(text("SELECT c.volunteer_id, c.title, l.how FROM commendation c JOIN link l ON "
                                   "l.entity = 'commendation' AND l.local_id = c.id WHERE l.registry_id = :r"),
                              {"r": national["id"]}).one()
        issuer = conn.execute(text("SELECT issuer FROM commendation WHERE id = :i"), {"i": org_cmd}).scalar_one()
        queued = set(conn.execute(text("SELECT entity, local_id FROM outbox WHERE state = 'pending'")).all())
        hours = conn.execute(text("SELECT class_hours FROM training_record WHERE id = :i"), {"i": trr}).scalar_one()
    assert issuer == "黑龙江省志愿服务联合会"
    assert tuple(pulled) == (vols[3], "全国优秀志愿者", "registry_owned")
    assert hours == 250  # the platform's record stands: pushed as a correction, not overwritten
    assert {("training", tr), ("training_record", trr), ("evaluation", ev), ("training", lost_training),
            ("evaluation", lost_eval), ("commendation", broken)} <= queued
    # the registry's record of the training record is left as it is until the relay sends the correction
    assert v.registry_record(sandbox, "training_record", made[("training_record", trr)])["classHours"] == "3.00"


def test_v11_region_scope_and_kind_names(settings, engine, sandbox) -> None:
    """``--kind trainings,evaluations`` compares those kinds only; ``--region`` places a training by its own region
    code and an evaluation by its evaluator's."""
    w = world(engine, settings)
    v.add_v11(engine, w)
    v.push_v11(settings, engine)
    with engine.begin() as conn, suppress_outbox(conn):
        v.training(conn, w["tree"]["team"], title="岗位培训", region_code="230203")  # another city
        v.evaluation(conn, w["activity"], w["vols"][2], w["tree"]["team"])
    only = reconcile(settings, engine, kinds=["trainings", "evaluations"], region="2301")
    assert set(only["compared"]) == {"training", "evaluation"}
    assert only["discrepancies"] == {"missing_in_registry": 1}
    assert only["listed"][0]["entity"] == "evaluation"
    other = reconcile(settings, engine, kinds=["trainings"], region="2302")
    assert other["discrepancies"] == {"missing_in_registry": 1}
    r = httpx.get(f"{sandbox.admin_url}/counters")
    assert r.status_code == 200


def test_v11_resync_of_a_volunteer_an_org_subtree_and_a_kind(settings, engine, sandbox) -> None:
    """``regsync resync``: a volunteer's scope holds their training records, commendations and evaluations; an org
    subtree's its trainings (with their records), commendations and evaluations; ``--kind`` narrows a scope; a
    training record's mismatch is queued as a push (a correction), an evaluation's too."""
    from typer.testing import CliRunner

    from regsync.console.cli import app
    from regsync.flows.resync import Target, run_resync

    w = world(engine, settings)
    ids = v.add_v11(engine, w)
    made = v.push_v11(settings, engine)
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE training_record SET result = 'ATTENDED' WHERE id = :i"),
                     {"i": ids["training_record"]})
        conn.execute(text("UPDATE evaluation SET comment = '认真负责，服务热情' WHERE id = :i"),
                     {"i": ids["evaluation"]})
        conn.execute(text("UPDATE training SET contact_name = '李强' WHERE id = :i"), {"i": ids["training"]})
    vol = str(w["vols"][0])
    code, plan = run_resync(settings, Target("volunteer", vol), reason="check", actor="op", engine=engine,
                            dry_run=True)
    assert code == 0 and plan["discrepancies"] == {"field_mismatch": 2}, plan["listed"]
    assert {(d["entity"], d["action"]) for d in plan["listed"]} == {("training_record", "push"),
                                                                    ("evaluation", "push")}
    assert plan["compared"]["commendation"] == {"local": 1, "registry": 1, "pairs": 1}
    code, org = run_resync(settings, Target("org", str(w["tree"]["unit"]), subtree=True), reason="check",
                           actor="op", engine=engine, dry_run=True)
    assert code == 0 and {d["entity"] for d in org["listed"]} == {"training", "training_record", "evaluation"}
    assert org["compared"]["commendation"]["pairs"] == 1  # the team's own commendation
    only = run_resync(settings, Target("org", str(w["tree"]["unit"]), subtree=True, kinds=("training",)),
                      reason="check", actor="op", engine=engine)[1]
    assert set(only["compared"]) == {"training"} and only["queued"] == {"field_mismatch": 1}
    env = {"REGSYNC_DATABASE_URL": settings.database.url, "REGSYNC_REGISTRY_URL": settings.registry.url,
           "REGSYNC_CLIENT_ID": settings.registry.client_id or "",
           "REGSYNC_CLIENT_SECRET": settings.registry.client_secret or "", "REGSYNC_LOG_LEVEL": "WARNING"}
    res = CliRunner().invoke(app, ["resync", "volunteer", vol, "--kind", "training_records", "--reason", "hotline",
                                   "--json"], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["compared"]) == {"training_record"} and out["queued"] == {"field_mismatch": 1}
    assert out["target"] == f"volunteer:{vol} kinds=training_record"
    with engine.connect() as conn:
        pending = set(conn.execute(text("SELECT entity, local_id FROM outbox WHERE state = 'pending'")).all())
    assert pending == {("training", ids["training"]), ("training_record", ids["training_record"])}
    assert made[("training_record", ids["training_record"])]
    bad = CliRunner().invoke(app, ["resync", "region", "2301", "--kind", "awards", "--reason", "x"], env=env)
    assert bad.exit_code == 2


#: Per v1.1 kind: a local field edit (column, SQL value) → field_mismatch; a registry edit (wire field, value) →
#: stale_link (Python field); a registry reference to an unknown record (wire field, id, Python field) → orphan, for
#: the kinds whose province does not follow that reference (a commendation's follows its subject: none).
CASES: dict[str, dict[str, Any]] = {
    "training": {"edit": ("title", "'应急救护培训（修订）'"), "moved": ("contactName", "赵六", "contact_name"),
                 "orphan": ("orgId", "ORG8888888888888", "org_id")},
    "training_record": {"edit": ("class_hours", "200"), "moved": ("result", "ATTENDED", "result"),
                        "orphan": ("volunteerId", "VOL8888888888888", "volunteer_id")},
    "commendation": {"edit": ("issuer", "'哈尔滨市文明办'"), "moved": ("documentNumber", "哈志协〔2026〕9号",
                                                                     "document_number"), "orphan": None},
    "evaluation": {"edit": ("competence", "5"), "moved": ("comment", "服务热情", "comment"),
                   "orphan": ("volunteerId", "VOL8888888888888", "volunteer_id")},
}


def _rows(conn: Any, kind: str, w: dict[str, Any], training: int, n: int) -> list[int]:
    """``n`` local rows of ``kind`` on the world ``w``, the i-th of volunteer i (mod 4)."""
    t, vols = w["tree"], w["vols"]
    if kind == "training":
        return [v.training(conn, t["team"], title=f"志愿服务培训第{i + 1}期") for i in range(n)]
    if kind == "training_record":
        return [v.training_record(conn, training, vols[i % 4]) for i in range(n)]
    if kind == "commendation":
        return [v.commendation(conn, volunteer_id=vols[i % 4], title=f"优秀志愿者（第{i + 1}批）") for i in range(n)]
    return [v.evaluation(conn, w["activity"], vols[i % 4], t["team"]) for i in range(n)]


def test_each_v11_kind_shows_each_kind_of_difference_and_repair_fixes_what_policy_allows(
        settings, engine, sandbox) -> None:
    """For each of the four kinds: a field changed locally (field_mismatch), one changed in the registry
    (stale_link), a reference the registry does not know (orphan), a row deleted locally (missing_locally: the relay
    ends the registry's record), a link to an id the registry does not know (broken_link) and a row never pushed
    (missing_in_registry); ``--repair`` queues the pushes, pulls the registry's change (a training record's is pushed
    back as a correction: never merged), relinks, and leaves orphans to people."""
    w = world(engine, settings)
    with engine.begin() as conn:
        conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": w["activity"]})
        training = v.training(conn, w["tree"]["team"], title="培训记录所属培训")
        rows = {kind: _rows(conn, kind, w, training, 4) for kind in CASES}
    made = v.push_v11(settings, engine)
    with engine.begin() as conn, suppress_outbox(conn):
        extra = {kind: _rows(conn, kind, w, training, 2) for kind in CASES}  # [broken, never pushed]
        for kind, (field, _move, _orphan) in ((k, (c["edit"], c["moved"], c["orphan"])) for k, c in CASES.items()):
            conn.execute(text(f"UPDATE {kind} SET {field[0]} = {field[1]} WHERE id = :i"),  # noqa: S608
                         {"i": rows[kind][0]})
            conn.execute(text(f"DELETE FROM {kind} WHERE id = :i"), {"i": rows[kind][3]})  # noqa: S608
    for kind, case in CASES.items():
        _link(engine, kind, extra[kind][0], f"{kind[:3].upper()}9999999999999")
        patch(sandbox, v.COLLECTIONS[kind], made[(kind, rows[kind][1])], {case["moved"][0]: case["moved"][1]})
        if case["orphan"]:
            patch(sandbox, v.COLLECTIONS[kind], made[(kind, rows[kind][2])], {case["orphan"][0]: case["orphan"][1]})

    found = reconcile(settings, engine, kinds=list(v.COLLECTIONS.values()))
    got = {(r["entity"], r["kind"]): r for r in findings(engine, found["run_id"]) if r["entity"] in CASES}
    for kind, case in CASES.items():
        expected = {
            ("field_mismatch", rows[kind][0], made[(kind, rows[kind][0])]),
            ("stale_link", rows[kind][1], made[(kind, rows[kind][1])]),
            ("missing_locally", rows[kind][3], made[(kind, rows[kind][3])]),
            ("broken_link", extra[kind][0], f"{kind[:3].upper()}9999999999999"),
            ("missing_in_registry", extra[kind][1], None)}
        if case["orphan"]:
            expected.add(("orphan", rows[kind][2], made[(kind, rows[kind][2])]))
        assert {(k, r["local_id"], r["registry_id"]) for (e, k), r in got.items() if e == kind} == expected, kind
        assert json.loads(got[(kind, "field_mismatch")]["fields"]) == [case["edit"][0]], kind
        assert json.loads(got[(kind, "stale_link")]["fields"]) == [case["moved"][2]], kind
        if case["orphan"]:
            assert json.loads(got[(kind, "orphan")]["fields"]) == [case["orphan"][2]], kind
        assert json.loads(got[(kind, "missing_locally")]["details"])["local_deleted"] is True

    fixed = reconcile(settings, engine, kinds=list(v.COLLECTIONS.values()), repair=True)
    acts = {(r["entity"], r["kind"]): (r["action"], r["action_state"]) for r in findings(engine, fixed["run_id"])}
    for kind, case in CASES.items():
        assert acts[(kind, "field_mismatch")] == ("push", "queued"), kind
        # the registry's change comes home, but a training record is never merged: the platform's is pushed
        assert acts[(kind, "stale_link")] == (("push", "queued") if kind == "training_record" else ("pull", "done"))
        assert acts[(kind, "missing_locally")] == ("push", "queued"), kind  # the relay ends the registry's record
        assert acts[(kind, "broken_link")] == ("relink", "queued"), kind
        assert acts[(kind, "missing_in_registry")] == ("push", "queued"), kind
        if case["orphan"]:
            assert acts[(kind, "orphan")] == ("none", "not_allowed"), kind
    with engine.connect() as conn:
        pulled = {kind: conn.execute(text(f"SELECT {c['moved'][2]} FROM {kind} WHERE id = :i"),  # noqa: S608
                                     {"i": rows[kind][1]}).scalar_one() for kind, c in CASES.items()}
    assert pulled == {"training": "赵六", "training_record": "PASSED", "commendation": "哈志协〔2026〕9号",
                      "evaluation": "服务热情"}
