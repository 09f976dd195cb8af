"""A small v1.1 world for the tests of reconcile, adopt, resync, show and the reports (issue 16): a training with a
record, a commendation and an evaluation on top of tests/test_reconcile.py's world, and a way to put the new kinds
into the sandbox registry and link them the way the relay does (a create under ``clientRef`` = the local id, the
link's base the registry's answer in canonical form), so these tests do not depend on the relay's own work."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import Engine, text

import factories as f
from regsync.db.links import insert_links, registry_ids_of
from regsync.db.platform.read import load_record
from regsync.domain.kinds import V11_KINDS
from regsync.domain.projection import REFERENCES, canonical, dumps, project_local, project_registry
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings

#: The v1.1 collections of the sandbox's admin endpoints (registry-api.md §5.2).
COLLECTIONS = {"training": "trainings", "training_record": "training-records", "commendation": "commendations",
               "evaluation": "evaluations"}


def training(conn: Any, org_id: int, **kw: Any) -> int:
    """A completed in-person training of ``org_id``: 3.00 class hours on 2026-04-01, 09:00–13:00 (+08:00)."""
    row = dict(org_id=org_id, title="应急救护培训", training_type="GENERAL", mode="IN_PERSON", region_code="230102",
               address="哈尔滨市南岗区红军街1号", starts_at=dt.datetime(2026, 4, 1, 1),
               ends_at=dt.datetime(2026, 4, 1, 5),
               class_hours=300, contact_name="王芳", contact_phone="13900001111", status="COMPLETED")
    row.update(kw)
    return f.insert(conn, "training", **row)


def training_record(conn: Any, training_id: int, volunteer_id: int, **kw: Any) -> int:
    row = dict(training_id=training_id, volunteer_id=volunteer_id, completed_on=dt.date(2026, 4, 1), class_hours=300,
               result="PASSED", status="ACCEPTED")
    row.update(kw)
    return f.insert(conn, "training_record", **row)


def commendation(conn: Any, *, volunteer_id: int | None = None, org_id: int | None = None, **kw: Any) -> int:
    row = dict(volunteer_id=volunteer_id, org_id=org_id, title="优秀志愿者", awarded_on=dt.date(2026, 6, 1),
               issuer="哈尔滨市志愿者协会", document_name="关于表彰优秀志愿者的决定",
               document_number="哈志协〔2026〕3号",
               content=None, status="ACTIVE")
    row.update(kw)
    return f.insert(conn, "commendation", **row)


def evaluation(conn: Any, activity_id: int, volunteer_id: int, org_id: int, **kw: Any) -> int:
    row = dict(activity_id=activity_id, volunteer_id=volunteer_id, evaluator_org_id=org_id, punctuality=5,
               attitude=4, competence=3, comment="认真负责", evaluated_on=dt.date(2026, 5, 4), status="ACTIVE")
    row.update(kw)
    return f.insert(conn, "evaluation", **row)


def add_v11(engine: Engine, w: dict[str, Any]) -> dict[str, int]:
    """On tests/test_reconcile.py's world ``w`` (pushed): its activity completed (pushed as the relay would), a
    training of the team with the first volunteer's record, a commendation of that volunteer and one of the team,
    and an evaluation of the first volunteer at the activity. Local only; :func:`push_v11` puts them in."""
    t, vols = w["tree"], w["vols"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE activity SET status = 'COMPLETED' WHERE id = :i"), {"i": w["activity"]})
        tr = training(conn, t["team"])
        out = {"training": tr, "training_record": training_record(conn, tr, vols[0]),
               "commendation": commendation(conn, volunteer_id=vols[0]),
               "org_commendation": commendation(conn, org_id=t["team"], title="优秀志愿服务队伍"),
               "evaluation": evaluation(conn, w["activity"], vols[0], t["team"])}
    return out


def push_v11(settings: Settings, engine: Engine, kinds: tuple[str, ...] = V11_KINDS) -> dict[tuple[str, int], str]:
    """Create every unlinked local row of ``kinds`` in the registry and link it, as the relay does (and a completed
    activity's PUT first): ``clientRef`` the local id, the base the answer in canonical form; their outbox rows are
    marked sent. Returns (kind, local id) → registry id."""
    made: dict[tuple[str, int], str] = {}
    with RegistryClient(settings.registry, province=settings.province) as client:
        with engine.begin() as conn:
            done = conn.execute(text("SELECT l.registry_id, l.registry_version, a.status FROM link l JOIN activity a "
                                     "ON a.id = l.local_id WHERE l.entity = 'activity'")).all()
        for registry_id, _version, status in done:
            rec = client.lookup("activity", [registry_id])[0]
            if rec["status"] != status:  # a completed activity: as the relay's PUT would leave it
                r = httpx.patch(f"{sandbox_admin(settings)}/records/activities/{registry_id}", json={"status": status})
                assert r.status_code == 200, r.text
                _relink(engine, settings, "activity", registry_id, client.lookup("activity", [registry_id])[0])
        for kind in kinds:
            with engine.begin() as conn:
                ids = [int(i) for i in conn.execute(text(
                    f"SELECT id FROM {kind} t WHERE NOT EXISTS (SELECT 1 FROM link l WHERE l.entity = :k "  # noqa: S608
                    "AND l.local_id = t.id) ORDER BY id"), {"k": kind}).scalars()]
            for local_id in ids:
                with engine.begin() as conn:
                    row = load_record(conn, kind, local_id)
                    wanted: dict[str, set[int]] = {}
                    for col, ref in REFERENCES[kind].items():
                        if row.get(col) is not None:
                            wanted.setdefault(ref, set()).add(row[col])
                    refs = registry_ids_of(conn, wanted)
                fields = project_local(kind, row, refs)
                rec = client.create(kind, {k: v for k, v in fields.items() if v is not None or k not in (
                    "volunteer_id", "org_id") or kind != "commendation"}, client_ref=str(local_id))
                with engine.begin() as conn:
                    insert_links(conn, [{"entity": kind, "local_id": local_id, "registry_id": rec["id"],
                                         "registry_version": int(rec["version"]), "how": "created", "revision": 0,
                                         "base": dumps(canonical(project_registry(kind, rec), settings.hash_key))}],
                                 dt.datetime(2026, 12, 1))
                made[(kind, local_id)] = rec["id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET state = 'sent' WHERE state IN ('pending', 'deferred')"))
    return made


def sandbox_admin(settings: Settings) -> str:
    """The sandbox's admin URL from the settings' registry URL (``…/api/v1`` → ``…/_sandbox``)."""
    return settings.registry.url.rsplit("/api/", 1)[0] + "/_sandbox"


def _relink(engine: Engine, settings: Settings, kind: str, registry_id: str, rec: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE link SET registry_version = :v, base = :b WHERE entity = :e AND registry_id = :r"),
                     {"v": int(rec["version"]), "b": dumps(canonical(project_registry(kind, rec), settings.hash_key)),
                      "e": kind, "r": registry_id})


def registry_record(sandbox: SandboxServer, kind: str, registry_id: str) -> dict[str, Any]:
    """The sandbox's stored record (wire names)."""
    r = httpx.get(f"{sandbox.admin_url}/records/{COLLECTIONS.get(kind, kind)}")
    return next(x for x in r.json()["data"]["records"] if x["id"] == registry_id)
