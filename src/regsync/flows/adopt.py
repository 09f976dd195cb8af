"""Adopt (design.md, flow 4, "the first day"): link the platform's records to what the registry already holds.

A province that turns regsync on already has records in the registry, entered through older channels. Before the
first push, adopt reads the exports (registry-api.md §5.2) kind by kind, references first, and matches each
registry record to the platform's unlinked rows by natural key:

==================  ==========================================================================================
volunteers          ``idType`` and normalized ``idNumber`` (GB 11643-1999); a person's two local rows are the
                    primary (the older) and a duplicate linked to the same record (design.md)
orgs                USCC (GB 32100-2015), else (level, name, region code)
memberships         the pair (org, volunteer)
activities          (org, title, start)
service records     (volunteer, activity, start)
==================  ==========================================================================================

Candidate pairs are staged in a temporary table (memory stays flat); a registry record with exactly one
candidate whose local row has exactly one candidate is linked (``how='adopted'``): a volunteer, org or membership
is merged with no common base, so each field that differs goes by its group's policy (design.md, "Conflict
policy"; ``manual`` → a conflict); an activity or service record entered on the portal is the registry's
(registry-api.md §1 "ownership") and is taken as it is (``how='registry_owned'``, never pushed). Everything
else that matched more than once is **held for a person**: one ``ambiguous_match`` discrepancy per record
involved (in the adopt run, with the candidates), and the local rows' outbox rows are set ``failed`` with code
``AMBIGUOUS_MATCH`` so the relay does not create a second record; an operator links or retries them. Nothing
ambiguous is ever guessed.

After adopt, ``regsync sync`` creates only what the registry lacks, so no person and no service hour is counted
twice. The change feed starts from the earliest ``X-Snapshot-Cursor`` of the exports read when no cursor is saved
yet (design.md, flow 2: the first cursor is taken before the first push, or from an export's).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine, bindparam, select, text

from regsync.db.feed import save_cursor, saved_cursor
from regsync.db.hashkey import check_hash_key
from regsync.db.merges import reference_ids
from regsync.db.models import REGISTRY_OWNED, Base, Link, Outbox
from regsync.db.runs import finish_run, start_run
from regsync.db.session import suppress_outbox, utcnow
from regsync.db.store import open_store
from regsync.domain.masking import mask_text
from regsync.domain.merge import take_registry
from regsync.domain.normalize import normalize_text, normalize_uscc, try_normalize_id_number
from regsync.domain.projection import canonical, dumps, project_local, project_registry
from regsync.flows.apply import LocalWriter
from regsync.flows.reconcile import (
    KIND_ORDER,
    Finding,
    Recorder,
    backfill_id_number_norm,
    city_of,
    earliest_cursor,
    unknown_summary,
)
from regsync.flows.runs import Advance, no_progress, require_registry
from regsync.registry import wire
from regsync.registry.client import RegistryClient
from regsync.settings import Settings

log = structlog.get_logger(__name__)

#: Registry records matched per batch.
BATCH = 500
#: The code of the outbox rows held by adopt.
HELD_CODE = "AMBIGUOUS_MATCH"
_TABLES = {"org": "organization", "volunteer": "volunteer", "membership": "membership", "activity": "activity",
           "service_record": "service_record"}
_UNLINKED = "NOT EXISTS (SELECT 1 FROM link l WHERE l.entity = '{kind}' AND l.local_id = t.id)"
_LINE = {"REGIONAL": "regional", "SPECIALIZED": "specialized"}


def _second(value: Any) -> str | None:
    """A timestamp as compared: naive UTC at second precision."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat(sep=" ")


def _revive(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A record staged as JSON back to the decoded types (dates, times)."""
    out = dict(data)
    for spec in wire.COMMON_FIELDS + wire.FIELDS[kind]:  # type: ignore[index]
        value = out.get(spec.py)
        if isinstance(value, str):
            if spec.conv == "date":
                out[spec.py] = dt.date.fromisoformat(value)
            elif spec.conv == "datetime":
                out[spec.py] = dt.datetime.fromisoformat(value)
    return out


def _in(sql: str, *names: str) -> Any:
    return text(sql).bindparams(*(bindparam(n, expanding=True) for n in names))


class Adopter:
    """One adopt run (module docstring).

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient`.
        settings: regsync's settings.
        recorder: where ``ambiguous_match`` findings go.
        dry_run: match and count only; link and hold nothing.
        advance: progress callback ``(label, n)``.
        stop: polled between batches.
    """

    def __init__(self, engine: Engine, client: Any, settings: Settings, recorder: Recorder, *, dry_run: bool,
                 advance: Callable[..., None] | None = None, stop: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.rec = recorder
        self.dry_run = dry_run
        self.advance = advance or (lambda *a, **k: None)
        self.stop = stop or (lambda: False)
        self.writer = LocalWriter(engine, client, settings)
        self.writer.note_agreements = False  # no common base: only the fields that differ are decisions
        self.writer.stats.run_id = recorder.run_id
        self.linked: Counter[str] = Counter()
        self.duplicates = 0
        self.ambiguous: Counter[str] = Counter()
        self.unmatched: Counter[str] = Counter()
        #: records linked that were made under this client's credentials by a create this store never sent (another
        #: store's, or this store's before a rebuild): linked by the operator's adopt, and said so
        self.other_store: Counter[str] = Counter()
        self.read: Counter[str] = Counter()
        self.cursors: list[str] = []
        self.stopped = False
        self.stage: Connection | None = None

    def run(self) -> None:
        """Adopt every kind, references first."""
        backfill_id_number_norm(self.engine)
        with self.engine.connect() as stage:
            self.stage = stage
            stage.execute(text("CREATE TEMPORARY TABLE adopt_candidate (kind VARCHAR(24) NOT NULL, "
                               "registry_id VARCHAR(32) NOT NULL, local_id BIGINT NOT NULL, doc TEXT NOT NULL)"))
            stage.commit()
            try:
                for kind in KIND_ORDER:
                    if self.stopped or self.stop():
                        self.stopped = True
                        break
                    self._stage_kind(kind)
                    if not self.stopped:
                        self._settle(kind)
            finally:
                stage.rollback()
                stage.execute(text("DROP TABLE IF EXISTS adopt_candidate"))
                stage.commit()
        self.rec.flush()

    # ------------------------------------------------------------------------------------------ staging
    def _stage_kind(self, kind: str) -> None:
        with self.client.export(kind) as ex:
            if ex.snapshot_cursor is not None:
                self.cursors.append(ex.snapshot_cursor)
            batch: list[dict[str, Any]] = []
            for rec in ex:
                batch.append(rec)
                if len(batch) >= BATCH:
                    self._stage_batch(kind, batch)
                    batch = []
                    if self.stop():
                        self.stopped = True
                        return
            if batch:
                self._stage_batch(kind, batch)

    def _stage_batch(self, kind: str, recs: list[dict[str, Any]]) -> None:
        self.read[kind] += len(recs)
        with self.engine.connect() as conn:
            linked = set(conn.execute(select(Link.registry_id).where(
                Link.entity == kind, Link.registry_id.in_([r["id"] for r in recs]))).scalars())
            recs = [r for r in recs if r["id"] not in linked]
            pairs = getattr(self, f"_match_{kind}")(conn, recs) if recs else []
        matched = {rid for rid, _ in pairs}
        self.unmatched[kind] += sum(1 for r in recs if r["id"] not in matched)
        by_id = {r["id"]: r for r in recs}
        if pairs and self.stage is not None:
            self.stage.execute(text("INSERT INTO adopt_candidate (kind, registry_id, local_id, doc) "
                                    "VALUES (:k, :r, :l, :d)"),
                               [{"k": kind, "r": rid, "l": lid, "d": orjson.dumps(by_id[rid], default=str).decode()}
                                for rid, lid in pairs])
            self.stage.commit()
        self.advance(kind, len(recs))

    def _local_ids(self, conn: Connection, kind: str, rids: Sequence[str]) -> dict[str, list[int]]:
        """Registry id → local ids, through the links, and in a dry run through the unique candidates staged."""
        out: dict[str, list[int]] = defaultdict(list)
        wanted = sorted({r for r in rids if r})
        for i in range(0, len(wanted), BATCH):
            for rid, lid in conn.execute(select(Link.registry_id, Link.local_id).where(
                    Link.entity == kind, Link.registry_id.in_(wanted[i:i + BATCH])).order_by(Link.is_duplicate,
                                                                                             Link.local_id)):
                out[rid].append(int(lid))
            if self.dry_run and self.stage is not None:
                for rid, lid in self.stage.execute(_in(
                        "SELECT registry_id, MIN(local_id) FROM adopt_candidate WHERE kind = :k AND registry_id IN :r "
                        "GROUP BY registry_id HAVING COUNT(*) = 1", "r"), {"k": kind, "r": wanted[i:i + BATCH]}):
                    out[rid].append(int(lid))
                    if kind == "volunteer":
                        out[rid] += self._person_rows(conn, int(lid))[1:]
        return out

    def _person_rows(self, conn: Connection, primary: int) -> list[int]:
        """The person's local rows (the primary first), by normalized ID number."""
        rows = conn.execute(text(
            "SELECT v.id FROM volunteer v JOIN volunteer p ON p.id = :p AND v.id_type = p.id_type "
            "AND v.id_number_norm = p.id_number_norm ORDER BY v.registered_at, v.id"), {"p": primary}).scalars().all()
        return [int(r) for r in rows] or [primary]

    def _match_volunteer(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        norms: dict[tuple[str, str], str] = {}
        for r in recs:
            norm = try_normalize_id_number(r.get("id_type") or "", r.get("id_number") or "")
            if norm:
                norms[(r["id_type"], norm)] = r["id"]
        if not norms:
            return []
        found = conn.execute(_in(
            "SELECT t.id, t.id_type, t.id_number_norm FROM volunteer t WHERE t.id_number_norm IN :n AND "
            + _UNLINKED.format(kind="volunteer") + " ORDER BY t.registered_at, t.id", "n"),
            {"n": sorted({n for _, n in norms})}).all()
        primary: dict[str, int] = {}
        for vid, id_type, norm in found:
            rid = norms.get((id_type, norm))
            if rid is not None:
                primary.setdefault(rid, int(vid))  # the older row: the person's primary
        return sorted(primary.items())

    def _match_org(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        pairs: list[tuple[str, int]] = []
        usccs = {normalize_uscc(r.get("uscc")): r["id"] for r in recs if normalize_uscc(r.get("uscc"))}
        by_uscc: set[str] = set()
        if usccs:
            for oid, raw in conn.execute(_in(
                    "SELECT t.id, t.uscc FROM organization t WHERE upper(t.uscc) IN :u AND "
                    + _UNLINKED.format(kind="org"), "u"), {"u": sorted(u for u in usccs if u)}):
                rid = usccs.get(normalize_uscc(raw))
                if rid:
                    pairs.append((rid, int(oid)))
                    by_uscc.add(rid)
        rest = [r for r in recs if r["id"] not in by_uscc]
        keys: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for r in rest:
            key = (r.get("level") or "", normalize_text(r.get("name")) or "", r.get("region_code") or "")
            keys[key].append(r["id"])
        if keys:
            regions = sorted({k[2] for k in keys})
            levels = sorted({k[0] for k in keys})
            for oid, level, name, region in conn.execute(_in(
                    "SELECT t.id, t.level, t.name, t.region_code FROM organization t WHERE t.region_code IN :g "
                    "AND t.level IN :lv AND " + _UNLINKED.format(kind="org"), "g", "lv"),
                    {"g": regions, "lv": levels}):
                for rid in keys.get((level, normalize_text(name) or "", region), []):
                    pairs.append((rid, int(oid)))
        return pairs

    def _match_membership(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int], str] = {}
        for r in recs:
            for o in orgs.get(r["org_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], [])[:1]:  # the person's primary row (design.md)
                    want[(o, v)] = r["id"]
        if not want:
            return []
        out = []
        for mid, o, v in conn.execute(_in(
                "SELECT t.id, t.org_id, t.volunteer_id FROM membership t WHERE t.org_id IN :o AND t.volunteer_id IN :v "
                "AND " + _UNLINKED.format(kind="membership"), "o", "v"),
                {"o": sorted({k[0] for k in want}), "v": sorted({k[1] for k in want})}):
            if (o, v) in want:
                out.append((want[(o, v)], int(mid)))
        return out

    def _match_activity(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        orgs = self._local_ids(conn, "org", [r["org_id"] for r in recs])
        want: dict[tuple[int, str, str | None], list[str]] = defaultdict(list)
        for r in recs:
            for o in orgs.get(r["org_id"], [])[:1]:
                want[(o, normalize_text(r.get("title")) or "", _second(r.get("starts_at")))].append(r["id"])
        if not want:
            return []
        out = []
        for aid, o, title, starts in conn.execute(select(
                Base.metadata.tables["activity"].c.id, Base.metadata.tables["activity"].c.org_id,
                Base.metadata.tables["activity"].c.title, Base.metadata.tables["activity"].c.starts_at).where(
                Base.metadata.tables["activity"].c.org_id.in_(sorted({k[0] for k in want})),
                text(_UNLINKED.format(kind="activity").replace("t.id", "activity.id")))):
            for rid in want.get((int(o), normalize_text(title) or "", _second(starts)), []):
                out.append((rid, int(aid)))
        return out

    def _match_service_record(self, conn: Connection, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        acts = self._local_ids(conn, "activity", [r["activity_id"] for r in recs])
        vols = self._local_ids(conn, "volunteer", [r["volunteer_id"] for r in recs])
        want: dict[tuple[int, int, str | None], list[str]] = defaultdict(list)
        for r in recs:
            for a in acts.get(r["activity_id"], [])[:1]:
                for v in vols.get(r["volunteer_id"], []):
                    want[(v, a, _second(r.get("starts_at")))].append(r["id"])
        if not want:
            return []
        t = Base.metadata.tables["service_record"]
        out = []
        for sid, v, a, starts in conn.execute(select(t.c.id, t.c.volunteer_id, t.c.activity_id, t.c.starts_at).where(
                t.c.activity_id.in_(sorted({k[1] for k in want})), t.c.volunteer_id.in_(sorted({k[0] for k in want})),
                t.c.status == "ACCEPTED",
                text(_UNLINKED.format(kind="service_record").replace("t.id", "service_record.id")))):
            for rid in want.get((int(v), int(a), _second(starts)), []):
                out.append((rid, int(sid)))
        return out

    # ------------------------------------------------------------------------------------------ settling
    def _settle(self, kind: str) -> None:
        """Link the unambiguous candidates of ``kind``; hold and record the ambiguous ones."""
        assert self.stage is not None
        stage = self.stage
        last = ""
        while True:
            rows = stage.execute(text(
                "SELECT c.registry_id, c.local_id, c.doc, "
                "(SELECT COUNT(*) FROM adopt_candidate x WHERE x.kind = c.kind AND x.registry_id = c.registry_id), "
                "(SELECT COUNT(*) FROM adopt_candidate y WHERE y.kind = c.kind AND y.local_id = c.local_id) "
                "FROM adopt_candidate c WHERE c.kind = :k AND c.registry_id > :last "
                "ORDER BY c.registry_id, c.local_id LIMIT :n"), {"k": kind, "last": last, "n": BATCH}).all()
            stage.commit()
            if not rows:
                return
            # never split one registry id's candidates across pages
            if len(rows) == BATCH and rows[0].registry_id != rows[-1].registry_id:
                cut = rows[-1].registry_id
                rows = [r for r in rows if r.registry_id != cut]
            last = rows[-1].registry_id
            groups: dict[str, list[Any]] = defaultdict(list)
            for r in rows:
                groups[r.registry_id].append(r)
            for rid, cands in groups.items():
                if len(cands) == 1 and cands[0][3] == 1 and cands[0][4] == 1:
                    self._link(kind, _revive(kind, json.loads(cands[0].doc)), int(cands[0].local_id))
                else:
                    self._hold(kind, rid, cands)
            if self.stop():
                self.stopped = True
                return

    def _link(self, kind: str, rec: dict[str, Any], local_id: int) -> None:
        self.linked[kind] += 1
        with self.engine.connect() as conn:
            owner = self.writer.ownership
            if owner.made_by_this_client(kind, rec) and not owner.sent_here(conn, kind, rec):
                # an operator's adopt takes it; never silently (issue 12, item 4): counted, listed and logged
                self.other_store[kind] += 1
                log.warning("adopt: linking a registry record made under this client's credentials by a create this "
                            "store never sent (another store's, or this store's before a rebuild)", kind=kind,
                            local_id=local_id, registry_id=rec["id"], client_ref=rec.get("client_ref"), alarm=True)
        if self.dry_run:
            if kind == "volunteer":
                with self.engine.connect() as conn:
                    self.duplicates += len(self._person_rows(conn, local_id)) - 1
            return
        with self.engine.begin() as conn, suppress_outbox(conn):
            if kind in ("activity", "service_record") and not self.writer.ownership.writable(kind, rec):
                self._take(conn, kind, rec, local_id, REGISTRY_OWNED)
            elif kind == "service_record":
                self._take(conn, kind, rec, local_id, "adopted")
            else:
                self.writer.adopt(conn, kind, rec, local_id)
            self.writer.flush(conn)  # the writer buffers its writes
            if kind == "volunteer":
                now = utcnow()
                remote = canonical(project_registry(kind, rec), self.settings.hash_key)
                for other in self._person_rows(conn, local_id)[1:]:
                    if conn.execute(select(Link.id).where(Link.entity == kind, Link.local_id == other)).first():
                        continue
                    conn.execute(Link.__table__.insert().values(
                        entity=kind, local_id=other, registry_id=rec["id"], registry_version=int(rec.get("version")
                                                                                                 or 1),
                        base=dumps(remote), is_duplicate=True, revision=0, how="duplicate_person", linked_at=now,
                        updated_at=now))
                    self.duplicates += 1

    def _take(self, conn: Connection, kind: str, rec: dict[str, Any], local_id: int, how: str) -> None:
        """Link and take the registry's record as it is (records this client may not write; service records,
        which are never merged)."""
        table = Base.metadata.tables[_TABLES[kind]]
        row = dict(conn.execute(select(table).where(table.c.id == local_id)).mappings().one())
        refs = reference_ids(conn, kind, [row])
        try:
            local = project_local(kind, row, refs)
        except ValueError:
            local = None
        result = take_registry(kind, local, project_registry(kind, rec), self.settings.hash_key, "adopted")
        self.writer.note(kind, local_id, rec["id"], result)  # each local field taken, for the run's record
        now = utcnow()
        conn.execute(Link.__table__.insert().values(
            entity=kind, local_id=local_id, registry_id=rec["id"], registry_version=int(rec.get("version") or 1),
            base=dumps(result.new_base), is_duplicate=False, revision=0, how=how, linked_at=now, updated_at=now))
        if how != "adopted":
            self.writer.write_local(conn, kind, row, result)

    def _hold(self, kind: str, rid: str, cands: list[Any]) -> None:
        """Record an ambiguous match and hold its local rows' outbox rows for a person."""
        local_ids = sorted({int(c.local_id) for c in cands})
        others: dict[int, list[str]] = {}
        assert self.stage is not None
        for lid in local_ids:
            others[lid] = [r[0] for r in self.stage.execute(text(
                "SELECT registry_id FROM adopt_candidate WHERE kind = :k AND local_id = :l ORDER BY registry_id"),
                {"k": kind, "l": lid})]
        self.stage.commit()
        rec = _revive(kind, json.loads(cands[0].doc))
        region = rec.get("region_code") if kind in ("org", "activity", "volunteer") else None
        self.ambiguous[kind] += 1
        line = _LINE.get(rec.get("org_type") or "") if kind == "org" else None
        self.rec.add(Finding(
            "ambiguous_match", kind, local_ids[0] if len(local_ids) == 1 else None, rid, [],
            {"local_ids": local_ids, "registry_ids": sorted({r for v in others.values() for r in v}),
             "held": not self.dry_run}, city_of(region), line, "none", "held" if not self.dry_run else "planned"))
        if self.dry_run:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for lid in local_ids:
                conn.execute(Outbox.__table__.update().where(
                    Outbox.entity == kind, Outbox.local_id == lid,
                    Outbox.state.in_(("pending", "deferred", "blocked"))).values(
                    state="failed", last_code=HELD_CODE, done_at=now,
                    last_error=mask_text(f"held by adopt: {len(others[lid])} registry records match; an operator "
                                         "links the right one or retries to create it")))


def run_adopt(settings: Settings, *, dry_run: bool = False, progress: Advance | None = None,
              engine: Engine | None = None,
              stop: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any]]:
    """Adopt the registry's existing records (module docstring), recorded as a run of kind ``adopt``.

    Args:
        settings: regsync's settings.
        dry_run: match and count only: nothing is linked or held and no run is recorded.
        progress: called as records are matched (:class:`regsync.flows.runs.Advance`); default: nothing drawn.
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        stop: polled between batches; true ends the run early (``partial``, exit code 130).

    Returns:
        (exit code, summary): ``run_id`` (``None`` for a dry run), ``status``, ``dry_run``, ``read`` (registry
        records per kind), ``linked`` (kind → records linked, or that would be), ``duplicates`` (a person's second
        rows linked), ``ambiguous`` (kind → held), ``ambiguous_matches`` (the findings, masked), ``unmatched``
        (registry records no unlinked local row matches, per kind), ``local_unlinked`` (local rows still unlinked:
        ``regsync sync`` creates them), ``feed_cursor``, ``other_store`` (kind → records linked that were made
        under this client's credentials by a create this store never sent: another store's, or this store's
        before a rebuild; each logged with an alarm), ``unknown_types`` (export lines and lookup results of
        record types this client does not know, skipped, by type) and ``unknown_fields`` (fields it does not know,
        ignored, ``"type.field"`` → records; registry-api.md §1), ``seconds``. Exit code 0 when it completed, 1
        when it failed.

    Raises:
        ConfigError: incomplete registry settings or a bad database URL.
        StoreError: the local store is unusable.
    """

    require_registry(settings)
    own_engine = engine is None
    engine = engine or open_store(settings.database.url)
    check_hash_key(engine, settings.hash_key, dispose_on_error=own_engine)  # before anything is recorded
    started = time.monotonic()
    run_id = None if dry_run else start_run(engine, "adopt")
    recorder = Recorder(engine, run_id, dry_run=dry_run)
    status, code, error = "success", 0, None
    adopter: Adopter | None = None
    cursor = None
    try:
        with RegistryClient(settings.registry, province=settings.province) as client:
            adopter = Adopter(engine, client, settings, recorder, dry_run=dry_run, advance=progress or no_progress,
                              stop=stop)
            adopter.run()
            if adopter.stopped:
                status, code, error = "partial", 130, "interrupted"
            if not dry_run:  # interrupted too: what it linked was read at these snapshots (else NO_CURSOR later)
                earliest = earliest_cursor(adopter.cursors)
                with engine.begin() as conn:
                    if earliest is not None and saved_cursor(conn) is None:
                        save_cursor(conn, earliest)
                    cursor = saved_cursor(conn)
    except Exception as exc:  # noqa: BLE001 — the run is recorded as failed and reported
        log.error("adopt failed", error=mask_text(str(exc)))
        status, code, error = "failed", 1, str(exc)
    with engine.connect() as conn:
        unlinked = {k: int(conn.execute(text(f"SELECT COUNT(*) FROM {_TABLES[k]} t WHERE "
                                             + _UNLINKED.format(kind=k))).scalar_one()) for k in KIND_ORDER}
    a = adopter
    summary: dict[str, Any] = {
        "run_id": run_id, "status": status, "dry_run": dry_run,
        "read": dict(a.read) if a else {}, "linked": dict(a.linked) if a else {},
        "duplicates": a.duplicates if a else 0, "ambiguous": dict(a.ambiguous) if a else {},
        "ambiguous_matches": [d for d in recorder.listed if d["kind"] == "ambiguous_match"],
        "discrepancies": dict(recorder.by_kind), "unmatched": dict(a.unmatched) if a else {},
        "local_unlinked": unlinked, "feed_cursor": cursor,
        "other_store": dict(a.other_store) if a else {},
        # what the merges decided, field by field (``kind.field:rule:winner`` → records): a ``registry`` winner
        # wrote the registry's value into the platform's row; a ``local`` one queued a push
        "decisions": dict(sorted(a.writer.stats.decisions.items())) if a else {},
        "decision_log": list(a.writer.stats.decision_log) if a else [],
        **unknown_summary(a.client if a else None),
        "seconds": round(time.monotonic() - started, 3),
    }
    if error:
        summary["error"] = mask_text(error)
    if run_id is not None:
        finish_run(engine, run_id, status, {k: v for k, v in summary.items() if k != "ambiguous_matches"})
    if own_engine:
        engine.dispose()
    return code, summary



def iter_held(engine: Engine) -> Iterator[tuple[str, int]]:
    """The records adopt holds for a person (outbox rows failed with ``AMBIGUOUS_MATCH``)."""
    with engine.connect() as conn:
        yield from ((e, int(i)) for e, i in conn.execute(select(Outbox.entity, Outbox.local_id).where(
            Outbox.last_code == HELD_CODE, Outbox.state == "failed").distinct()))


__all__ = ["HELD_CODE", "Adopter", "iter_held", "run_adopt"]
