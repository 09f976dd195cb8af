"""What the hot paths cost (issue 14's review): statements counted with a ``before_cursor_execute`` listener, never
time. A province has millions of rows: what is read once per run must not be read per record, nor a page of records
written a statement per record.

The mapped platform is the unseen one of tests/test_platform_mapped.py (``tests/platforms/xprov.*``), on every
engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, text

import factories as f
from platforms import xprov
from regsync.db.holds import hold
from regsync.db.mapping import install as mapping_install
from regsync.db.mapping.install import INSTALLED, install, require_installed
from regsync.db.mapping.load import load_mapping
from regsync.db.own import own_format
from regsync.db.platform import read
from regsync.db.platform.mapped import mapped_platform
from regsync.db.repairs import REQUEUED_NOTE
from regsync.db.session import suppress_outbox
from regsync.flows.adopt import run_adopt
from regsync.flows.inbound import Poller
from regsync.flows.reconcile import run_reconcile
from regsync.generate.seed import http_bulk
from regsync.registry.client import RegistryClient
from regsync.sandbox.server import SandboxServer
from regsync.settings import Settings
from test_platform_mapped import mapped_settings, platform, records, sync  # noqa: F401 — platform: a fixture


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent on ``engine`` inside the block, ``(sql, parameters)`` each."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def mapping_reads(seen: list[tuple[str, Any]]) -> int:
    """How many of ``seen`` read the installed mapping's record in ``store_meta``."""
    return sum(1 for sql, params in seen if "store_meta" in sql and INSTALLED in repr(params))


NAMES = ["周敏", "吴芳", "郑丽", "王静", "冯燕", "陈红", "褚英", "卫兰"]
#: The reads of the installed mapping a run may make, whatever its records: the run's check of the store
#: (:func:`regsync.db.mapping.install.require_installed`), its writer's (two when the mapping is parsed anew) and
#: the ID-number backfill's. Fewer than the records of each test.
PER_RUN = 4


def volunteer_doc(name: str, birth: dt.date) -> dict[str, Any]:
    """A registry volunteer born on ``birth`` (a woman: her ID number's check digits say so)."""
    return {"name": name, "idType": "RESIDENT_ID", "idNumber": f.id_number(birth, female=True), "gender": "F",
            "birthDate": birth.isoformat(), "phone": "13912340000", "regionCode": "230102", "skills": [],
            "homeProvince": "23", "status": "ACTIVE"}


def reinstalled(engine: Engine, schema: str | None, tmp_path: Path, old: str, new: str) -> None:
    """Install xprov again, its file changed (``old`` → ``new``), as ``regsync platform install`` does."""
    path = tmp_path / "xprov-changed.toml"
    source = Path(xprov.MAPPING).read_text(encoding="utf-8")
    assert old in source
    path.write_text(source.replace(old, new), encoding="utf-8")
    install(engine, load_mapping(str(path)), platform_schema=schema or "")


def test_the_poller_reads_the_installed_mapping_once_per_run_not_per_record(
        platform: tuple[Engine, str | None], settings: Settings, sandbox: SandboxServer,  # noqa: F811
        tmp_path: Path) -> None:
    """A page of registry changes (merges of linked records, portal registrations created on the platform) reads
    the installed mapping once, at the run's start; an install between two runs of the same poller is the second
    run's mapping."""
    engine, schema = platform
    s = mapped_settings(settings, schema)
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    number = f.id_number()
    with engine.begin() as conn:
        ids = xprov.world(conn, schema, number, f.uscc())
    sync(s, engine)
    vol = next(r for r in records(sandbox, "volunteers") if r["idNumber"] == number)
    for i in range(6):  # portal registrations: created in the platform's table (insert = true)
        r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json=volunteer_doc(NAMES[i], dt.date(1991, 1, 1 + i)))
        assert r.status_code in (200, 201), r.text
    httpx.patch(f"{sandbox.admin_url}/records/volunteers/{vol['id']}", json={"phone": "13655556666"}).raise_for_status()
    with RegistryClient(s.registry, province=s.province) as client:
        poller = Poller(engine, client, s)
        with statements(engine) as seen:
            stats = poller.run()
        assert sum(stats.created.values()) == 6 and stats.merged["volunteer"] == 1, stats.as_dict()
        assert mapping_reads(seen) <= 1, mapping_reads(seen)

        # the phone becomes read-only by a new install between two runs of the same poller: its next run holds
        # the registry's change as a conflict instead of writing it
        reinstalled(engine, schema, tmp_path, 'phone = { column = "sjhm" }',
                    'phone = { column = "sjhm", write = false }')
        httpx.patch(f"{sandbox.admin_url}/records/volunteers/{vol['id']}",
                    json={"phone": "13677778888"}).raise_for_status()
        poller.run()
    with engine.connect() as conn:
        phone = conn.execute(text(f"SELECT sjhm FROM {xprov.q(schema, 'ry')} WHERE rid = :r"),
                             {"r": ids["rid"]}).scalar_one()
        held = conn.execute(text(own_format(conn, "SELECT field FROM {conflict} WHERE state = 'open'"))).scalars().all()
    assert phone == "13655556666" and held == ["phone"]


def test_adopt_and_a_reconcile_repair_read_the_installed_mapping_once_per_run(
        platform: tuple[Engine, str | None], settings: Settings, sandbox: SandboxServer) -> None:  # noqa: F811
    """Adopt links (and merges) records one by one, the reconcile pulls the registry's records the platform lacks
    one by one: neither reads the installed mapping per record."""
    engine, schema = platform
    s = mapped_settings(settings, schema)
    people = [volunteer_doc(name, dt.date(1980, 1, 1 + i)) for i, name in enumerate(NAMES)]
    with engine.begin() as conn:  # the platform as it was before regsync came
        for p in people:
            xprov.insert(conn, schema, "ry", xm=p["name"], zjlx="01", zjhm=p["idNumber"], xb="2",
                         csrq=p["birthDate"].replace("-", ""), sjhm="13900000000", qh="230102", tc="[]", zt="A",
                         zcsj=xprov.epoch_ms(dt.datetime(2021, 3, 1, 9, 0)), cs=0, ly="WEB")
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    bulk = http_bulk(sandbox.admin_url)
    bulk("volunteer", people)  # adopted
    bulk("volunteer", [volunteer_doc(name, dt.date(1970, 1, 1 + i)) for i, name in enumerate(NAMES)])  # pulled
    with statements(engine) as seen:
        code, adopted = run_adopt(s, engine=engine)
    assert code == 0 and adopted["linked"].get("volunteer") == len(NAMES), adopted
    assert mapping_reads(seen) <= PER_RUN < len(NAMES), mapping_reads(seen)
    with statements(engine) as seen:
        code, found = run_reconcile(s, engine=engine, repair=True)
    assert code == 0, found
    assert found["discrepancies"].get("missing_locally") == len(NAMES), found
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT COUNT(*) FROM {xprov.q(schema, 'ry')}")).scalar() == 2 * len(NAMES)
    assert mapping_reads(seen) <= PER_RUN, mapping_reads(seen)


def test_the_reference_tables_are_not_asked_for_a_mapping_per_record(settings: Settings, engine: Engine,
                                                                     sandbox: SandboxServer) -> None:
    """Beside the reference tables too (no mapping installed), a run asks once whether one is."""
    with RegistryClient(settings.registry, province=settings.province) as client:
        poller = Poller(engine, client, settings)
        poller.take_first_cursor()
        for i, name in enumerate(NAMES):
            r = httpx.post(f"{sandbox.admin_url}/portal/volunteers", json=volunteer_doc(name, dt.date(1993, 3, 1 + i)))
            assert r.status_code in (200, 201), r.text
        with statements(engine) as seen:
            stats = poller.run()
    assert stats.created["volunteer"] == len(NAMES), stats.as_dict()
    assert mapping_reads(seen) <= 1, mapping_reads(seen)


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "without_returning"])
def test_rows_made_from_the_registry_are_inserted_in_one_statement_per_batch(
        platform: tuple[Engine, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        returning: bool) -> None:
    """Portal registrations (an integer key, the platform's autoincrement) and orgs (a string key made from the
    registry id, ``new_key``) created on the platform: one ``INSERT`` per batch of the same columns and one look-up
    of the new string keys' local ids, not one of each per row; every local id is its own row's, in order. Without
    ``RETURNING`` (MySQL 8, played on SQLite and MariaDB), an integer key's row is inserted alone, its id the
    driver's."""
    engine, schema = platform
    if not returning:
        if engine.dialect.name == "postgresql":
            pytest.skip("PostgreSQL always has RETURNING (and its driver no last insert id)")
        monkeypatch.setattr(engine.dialect, "insert_returning", False)
    reinstalled(engine, schema, tmp_path, 'key_type = "string"\ninsert = false',
                'key_type = "string"\ninsert = true\nnew_key = "R{registry_id}"')
    with engine.begin() as conn:
        ids = xprov.world(conn, schema, f.id_number(), f.uscc())
        district = conn.execute(text(own_format(
            conn, "SELECT local_id FROM {platform_key} WHERE key_value = 'X230102'"))).scalar_one()
    with engine.begin() as conn, suppress_outbox(conn):
        mp = mapped_platform(conn)
        assert mp is not None
        vol = read.load_records(conn, "volunteer", [ids["rid"]])[ids["rid"]]
        org = read.load_records(conn, "org", [district])[district]
        vols = [{**vol, "name": name, "id_number": f.id_number(dt.date(1985, 5, 1 + i)),
                 "id_number_norm": f.id_number(dt.date(1985, 5, 1 + i))} for i, name in enumerate(NAMES)]
        orgs = [{**org, "name": f"{name}服务队"} for name in NAMES]
        with statements(engine) as seen:
            vids = mp.insert_rows(conn, "volunteer", vols, [None] * len(vols))
            oids = mp.insert_rows(conn, "org", orgs, [f"G{i}" for i in range(len(orgs))])
        sent = [sql for sql, _ in seen]
        assert sum(sql.startswith(f"INSERT INTO {mp.table('volunteer')} ") for sql in sent) == (
            1 if returning else len(NAMES))
        assert sum(sql.startswith(f"INSERT INTO {mp.table('org')} ") for sql in sent) == 1
        assert sum("platform_key" in sql and "key_value IN" in sql for sql in sent) == 1
        made_vols = read.load_records(conn, "volunteer", vids)
        made_orgs = read.load_records(conn, "org", oids)
        keys = dict(conn.execute(text(own_format(
            conn, "SELECT local_id, key_value FROM {platform_key} WHERE entity = 'org'"))).all())
    assert [made_vols[v]["name"] for v in vids] == NAMES
    assert [made_vols[v]["id_number_norm"] for v in vids] == [v["id_number_norm"] for v in vols]
    assert [(made_orgs[o]["name"], keys[o]) for o in oids] == [(f"{n}服务队", f"RG{i}") for i, n in enumerate(NAMES)]


def test_the_configured_mapping_is_parsed_and_its_statements_made_only_when_its_file_changes(
        platform: tuple[Engine, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Every run's start and every ``/metrics`` scrape ask whether the installed mapping is the configured file's
    current form: an unchanged file is read and hashed, not parsed nor its install statements made again; a changed
    file is (and is not current), and its first form again is current."""
    engine, schema = platform
    install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
    path = tmp_path / "xprov.toml"
    original = Path(xprov.MAPPING).read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    made: list[str] = []
    real_ddl = mapping_install.install_ddl

    def counted(mapping: Any, place: Any, keys: Any = None) -> list[str]:
        made.append(mapping.name)
        return real_ddl(mapping, place, keys)

    monkeypatch.setattr(mapping_install, "install_ddl", counted)
    monkeypatch.setattr(mapping_install, "_FINGERPRINTS", {}, raising=False)  # not what other tests kept

    def check() -> bool:
        with engine.connect() as conn:
            return require_installed(conn, str(path), platform_schema=schema or "").current

    assert check()
    made.clear()
    assert check() and check()
    assert made == []  # read and hashed only
    path.write_text(original.replace('"03" = "PASSPORT"', '"03" = "PASSPORT", "04" = "OTHER"'), encoding="utf-8")
    assert not check() and not check()
    assert made == ["xprov"]
    path.write_text(original, encoding="utf-8")
    assert check()
    assert made == ["xprov"]


def lookup_plan(engine: Engine, local_id: int) -> list[str]:
    """How the engine reads one record through the org view by its id: SQLite's ``EXPLAIN QUERY PLAN`` details,
    PostgreSQL's plan lines (sequential scans turned off: one shows only where no index can serve), MySQL's
    ``EXPLAIN`` rows as ``table:type``."""
    d = engine.dialect.name
    sql = own_format(engine, "SELECT * FROM {organization} WHERE id = :i")
    with engine.begin() as conn:
        if d == "sqlite":
            return [str(r[3]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"i": local_id})]
        if d == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            return [str(r[0]) for r in conn.execute(text("EXPLAIN " + sql), {"i": local_id})]
        return [f"{r.table}:{r.type}" for r in conn.execute(text("EXPLAIN " + sql), {"i": local_id})]


def test_one_record_read_through_a_view_finds_its_string_keyed_row_by_index(
        platform: tuple[Engine, str | None]) -> None:  # noqa: F811
    """The views join a string-keyed row with its ``platform_key`` row; a record read by id through the view (the
    flows' every read of a record) looks the platform's row up by its key's index, not by scanning the platform's
    table: the key compared as it is on SQLite, through the column's own collation then byte for byte on MariaDB
    (whatever the column's character set and collation), as text on PostgreSQL (whose index serves ``varchar`` cast
    to ``text``)."""
    engine, schema = platform
    d = engine.dialect.name
    with engine.begin() as conn:
        xprov.world(conn, schema, f.id_number(), f.uscc())
        conn.execute(text(f"INSERT INTO {xprov.q(schema, 'jg')} (jgbm, mc, lx, jb, qh) "  # noqa: S608
                          "VALUES (:k, :n, 'R', 'L3', '230102')"),
                     [{"k": f"Y{i:04d}", "n": f"队{i:04d}"} for i in range(300)])
    columns = [""] if d != "mysql" else [
        "", "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"]
    for column in columns:
        if column:  # the key column as other platforms declare it
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {xprov.q(schema, 'jg')} MODIFY jgbm VARCHAR(20) {column} NOT NULL"))
        install(engine, load_mapping(xprov.MAPPING), platform_schema=schema or "")
        with engine.connect() as conn:
            local_id = conn.execute(text(own_format(
                conn, "SELECT local_id FROM {platform_key} WHERE key_value = 'Y0150'"))).scalar_one()
            assert conn.execute(text(own_format(conn, "SELECT name FROM {organization} WHERE id = :i")),
                                {"i": local_id}).scalar_one() == "队0150"
            assert conn.execute(text(own_format(conn, "SELECT COUNT(*) FROM {organization}"))).scalar_one() == 302
        plan = lookup_plan(engine, local_id)
        if d == "sqlite":
            assert not any(p.startswith("SCAN t") for p in plan) and any(p.startswith("SEARCH t ") for p in plan), plan
        elif d == "postgresql":
            assert not any("Seq Scan on jg" in p for p in plan), plan
        else:
            assert not any(p.startswith("t:") and p.split(":")[1] in ("ALL", "index") for p in plan), (column, plan)


def test_a_repair_queues_a_page_of_records_missing_from_the_registry_in_a_few_statements(
        settings: Settings, engine: Engine, sandbox: SandboxServer) -> None:
    """``reconcile --repair`` queues the platform's records the registry lacks a page at a time: one look-up of the
    holds, one of the refusals and waiting rows, one insert, not about four statements a record; each record gets
    the row and the state it got alone: ``queued``, ``requeued`` (refused before: its row says so), ``discarded``
    (held by an operator: nothing queued), ``queued`` with no second row (one waits already)."""
    with engine.begin() as conn, suppress_outbox(conn):  # rows the platform had before regsync: nothing queued
        vids = [f.volunteer(conn, name=name, id_number=f.id_number(dt.date(1975, 1, 1 + i)))
                for i, name in enumerate(NAMES + NAMES)]
    refused, held, waiting = vids[1], vids[2], vids[3]
    now = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO outbox (entity, local_id, op, priority, state, attempts, created_at, "
                          "available_at, last_code, last_error) VALUES ('volunteer', :v, 'insert', 1, :s, 1, :t, "
                          ":t, :c, NULL)"), [{"v": refused, "s": "failed", "t": now, "c": "INVALID_ID_NUMBER"},
                                             {"v": waiting, "s": "pending", "t": now, "c": None}])
        hold(conn, [("volunteer", held)], now=now, actor="test", reason="left the platform", audit_id=None)
    with statements(engine) as seen:
        code, summary = run_reconcile(settings, engine=engine, kinds=["volunteers"], repair=True)
    assert code == 0 and summary["discrepancies"] == {"missing_in_registry": len(vids)}, summary
    assert summary["actions"] == {"push": {"queued": len(vids) - 2, "requeued": 1, "discarded": 1}}, summary
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT local_id, state, last_error FROM outbox ORDER BY id")).all()
    new = [(lid, state, error) for lid, state, error in rows[2:]]
    assert [lid for lid, *_ in new] == [v for v in vids if v not in (held, waiting)]
    assert {(state, error) for lid, state, error in new if lid != refused} == {("pending", None)}
    assert [error for lid, _, error in new if lid == refused] == [REQUEUED_NOTE + "INVALID_ID_NUMBER"]
    outbox_statements = [sql for sql, _ in seen if "outbox" in sql]
    assert len(outbox_statements) <= 3, outbox_statements
