"""The local store: migrations on both engines, and the outbox triggers."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from regsync.db.migrate import current_revision, downgrade, head_revision, include_object, upgrade
from regsync.db.models import Base
from regsync.db.outbox import claim
from regsync.db.session import lock_conflict, retry_on_lock_conflict, suppress_outbox, utcnow


def _vol(conn, **kw):
    row = {"name": "张伟", "id_type": "RESIDENT_ID", "id_number": "230102199001011237", "region_code": "230102",
           "skills": "[]", "home_province": "23", "status": "ACTIVE", "phone": "13912345678"}
    row.update(kw)
    cols = ", ".join(row)
    vals = ", ".join(f":{k}" for k in row)
    return conn.execute(text(f"INSERT INTO volunteer ({cols}) VALUES ({vals}) RETURNING id"), row).scalar_one()


def _outbox(conn):
    return conn.execute(text("SELECT entity, local_id, op, priority, state FROM outbox ORDER BY id")).all()


def test_migrations_from_empty_database(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()


def test_migrations_equal_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={"include_object": include_object(conn.dialect.name)}), Base.metadata)
    # server defaults are not compared; every table, column, index and constraint must match
    assert diff == []
    if engine.dialect.name == "mysql":  # table options, which Alembic does not compare: whatever the database's
        with engine.connect() as conn:  # defaults (tests/myutil.py: utf8mb3, case-insensitive), InnoDB, utf8mb4_bin
            tables = set(conn.execute(text(
                "SELECT table_name, engine, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'")).all())
            columns = set(conn.execute(text(
                "SELECT DISTINCT character_set_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version' AND collation_name IS NOT NULL"
            )).all())
        assert tables == {(t, "InnoDB", "utf8mb4_bin") for t in Base.metadata.tables}
        assert columns == {("utf8mb4", "utf8mb4_bin")}


def test_insert_update_delete_are_queued_in_the_same_transaction(engine: Engine) -> None:
    with engine.begin() as conn:
        vid = _vol(conn)
        conn.execute(text("UPDATE volunteer SET phone = '13800001111' WHERE id = :id"), {"id": vid})
        conn.execute(text("DELETE FROM volunteer WHERE id = :id"), {"id": vid})
    with engine.connect() as conn:
        assert _outbox(conn) == [("volunteer", vid, "insert", 20, "pending"),
                                 ("volunteer", vid, "update", 20, "pending"),
                                 ("volunteer", vid, "delete", 70, "pending")]


def test_rolled_back_change_queues_nothing(engine: Engine) -> None:
    conn = engine.connect()
    tx = conn.begin()
    _vol(conn)
    tx.rollback()
    conn.close()
    with engine.connect() as conn:
        assert _outbox(conn) == []


def test_update_of_unsynced_column_or_to_same_value_queues_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        vid = _vol(conn)
        conn.execute(text("DELETE FROM outbox"))
        conn.execute(text("UPDATE volunteer SET remark = 'note', updated_at = :t, id_number_norm = 'x' "
                          "WHERE id = :id"), {"id": vid, "t": dt.datetime(2026, 1, 1)})
        conn.execute(text("UPDATE volunteer SET phone = '13912345678' WHERE id = :id"), {"id": vid})
        assert _outbox(conn) == []
        # null-safe comparison: NULL -> value and value -> NULL are changes
        conn.execute(text("UPDATE volunteer SET phone = NULL WHERE id = :id"), {"id": vid})
        conn.execute(text("UPDATE volunteer SET phone = NULL WHERE id = :id"), {"id": vid})
        conn.execute(text("UPDATE volunteer SET phone = '13912345678' WHERE id = :id"), {"id": vid})
        assert [r.op for r in _outbox(conn)] == ["update", "update"]


def test_plain_sql_phone_update_by_another_program_is_queued(engine: Engine) -> None:
    with engine.begin() as conn:
        vid = _vol(conn)
    # another program: a raw DBAPI connection, no SQLAlchemy session state
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
        cur.execute(f"UPDATE volunteer SET phone = {placeholder} WHERE id = {placeholder}", ("13700002222", vid))
        raw.commit()
    finally:
        raw.close()
    with engine.connect() as conn:
        assert _outbox(conn)[-1] == ("volunteer", vid, "update", 20, "pending")


def test_suppressed_writes_are_not_queued_and_others_are(engine: Engine) -> None:
    with engine.begin() as conn:
        vid = _vol(conn)
        conn.execute(text("DELETE FROM outbox"))
    with engine.begin() as conn, suppress_outbox(conn):
        conn.execute(text("UPDATE volunteer SET phone = '13600003333' WHERE id = :id"), {"id": vid})
    with engine.begin() as conn:
        assert _outbox(conn) == []
        assert conn.execute(text("SELECT COUNT(*) FROM outbox_suppress")).scalar_one() == 0
        conn.execute(text("UPDATE volunteer SET phone = '13600004444' WHERE id = :id"), {"id": vid})
        assert len(_outbox(conn)) == 1


def test_priorities_order_creates_and_endings(engine: Engine) -> None:
    with engine.begin() as conn:
        def org(level, org_type, parent=None, station=None):
            return conn.execute(text(
                "INSERT INTO organization (name, org_type, level, parent_id, station_id, region_code, "
                "service_categories, status) VALUES ('某组织', :t, :l, :p, :s, '230102', '[\"COMMUNITY\"]', "
                "'ACTIVE') RETURNING id"), {"t": org_type, "l": level, "p": parent, "s": station}).scalar_one()
        corps = org("CITY_CORPS", "REGIONAL")
        brigade = org("DISTRICT_BRIGADE", "REGIONAL", corps)
        street = org("STREET_STATION", "REGIONAL", brigade)
        community = org("COMMUNITY_STATION", "REGIONAL", street)
        pcorps = org("PROVINCIAL_CORPS", "SPECIALIZED")
        det = org("CITY_DETACHMENT", "SPECIALIZED", pcorps)
        unit = org("COUNTY_UNIT", "SPECIALIZED", det)
        team = org("GRASSROOTS_TEAM", "SPECIALIZED", unit, community)
        vid = _vol(conn)
        prio = dict(conn.execute(text("SELECT local_id, priority FROM outbox WHERE entity = 'org'")).all())
        assert prio[corps] == prio[pcorps] < prio[brigade] == prio[det] < prio[street] == prio[unit]
        assert prio[unit] < prio[community] < prio[team]
        vprio = conn.execute(text("SELECT priority FROM outbox WHERE entity = 'volunteer'")).scalar_one()
        assert prio[team] < vprio
        conn.execute(text("DELETE FROM outbox"))
        # endings go the other way: children dissolved before their parent, records before the volunteer
        for oid in (corps, brigade, street, community, team):
            conn.execute(text("UPDATE organization SET status = 'DISSOLVED' WHERE id = :id"), {"id": oid})
        conn.execute(text("UPDATE volunteer SET status = 'DEREGISTERED' WHERE id = :id"), {"id": vid})
        end = dict(conn.execute(text("SELECT local_id, priority FROM outbox WHERE entity = 'org'")).all())
        assert end[team] < end[community] < end[street] < end[brigade] < end[corps]
        vend = conn.execute(text("SELECT priority FROM outbox WHERE entity = 'volunteer'")).scalar_one()
        assert vend < end[team]


def test_an_id_is_never_handed_out_twice(engine: Engine) -> None:
    """A row inserted after the newest row was deleted gets a new id, never the deleted row's: that id's link
    names the deleted record's registry record (plain SQLite ``INTEGER PRIMARY KEY`` reused it, and the new
    person was pushed over the old one's record)."""
    with engine.begin() as conn:
        first = _vol(conn)
        conn.execute(text("DELETE FROM volunteer WHERE id = :i"), {"i": first})
        second = _vol(conn, name="李娜", id_number="230102199202021230")
    assert second > first
    with engine.connect() as conn:
        queued = [(op, lid) for _, lid, op, _, _ in _outbox(conn)]
    assert queued == [("insert", first), ("delete", first), ("insert", second)]


def test_the_migration_to_autoincrement_keeps_rows_triggers_and_deleted_ids(empty_engine: Engine) -> None:
    """A SQLite store made before migration 0006: its rows, indexes and outbox triggers survive the rebuild, and
    an id deleted before the migration, still named by a link, is not handed out again."""
    engine = empty_engine
    upgrade(engine, "0005")
    with engine.begin() as conn:
        kept = _vol(conn)
        gone = _vol(conn, name="李娜", id_number="230102199202021230")
        conn.execute(text("INSERT INTO link (entity, local_id, registry_id, registry_version, base, revision, how, "
                          "is_duplicate, linked_at, updated_at) VALUES ('volunteer', :i, 'VOL1', 1, '{}', 0, "
                          "'created', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"i": gone})
        conn.execute(text("DELETE FROM volunteer WHERE id = :i"), {"i": gone})
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id FROM volunteer")).scalars().all() == [kept]
        new = _vol(conn, name="王芳", id_number="230102198503031234")
        conn.execute(text("UPDATE volunteer SET phone = '13700000000' WHERE id = :i"), {"i": kept})
        queued = conn.execute(text("SELECT op, local_id FROM outbox WHERE id > 3 ORDER BY id")).all()
    assert new > gone
    assert [tuple(r) for r in queued] == [("insert", new), ("update", kept)]  # the triggers are there
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={"include_object": include_object(conn.dialect.name)}), Base.metadata)
    assert diff == []
    downgrade(engine, "0005")
    upgrade(engine)


def test_an_insert_under_a_linked_id_is_queued_as_reuse(engine: Engine) -> None:
    """A row deleted and another inserted under its explicit id while the id has a link (a restore or import
    script): the insert is queued as ``reuse``, the key used again for another record; an insert under an id with
    no link stays an ``insert``, and an update of the new row an ``update`` (issue 12, item 1)."""
    with engine.begin() as conn:
        linked = _vol(conn)
        unlinked = _vol(conn, name="李娜", id_number="230102199202021230")
        conn.execute(text("INSERT INTO link (entity, local_id, registry_id, registry_version, base, revision, how, "
                          "is_duplicate, linked_at, updated_at) VALUES ('volunteer', :i, 'VOL1', 1, '{}', 0, "
                          "'created', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"i": linked})
        conn.execute(text("DELETE FROM outbox"))
    with engine.begin() as conn:
        for vid, number in ((linked, "230102198503031234"), (unlinked, "230102198804041236")):
            conn.execute(text("DELETE FROM volunteer WHERE id = :i"), {"i": vid})
            _vol(conn, id=vid, name="王芳", id_number=number)
        conn.execute(text("UPDATE volunteer SET phone = '13700000000' WHERE id = :i"), {"i": linked})
    with engine.connect() as conn:
        queued = [(lid, op, prio) for _, lid, op, prio, _ in _outbox(conn)]
    assert queued == [(linked, "delete", 70), (linked, "reuse", 20), (unlinked, "delete", 70),
                      (unlinked, "insert", 20), (linked, "update", 20)]
    downgrade(engine, "0006")  # the triggers before: an insert is an insert, and rows queued as reuse become inserts
    with engine.connect() as conn:
        assert [op for _, _, op, _, _ in _outbox(conn)] == ["delete", "insert", "delete", "insert", "update"]
    upgrade(engine)


def test_a_store_failure_that_is_not_a_driver_error_is_a_store_error_everywhere(engine: Engine, db_url: str,
                                                                                  monkeypatch) -> None:
    """A SQLAlchemy error without a driver error inside (the pool's TimeoutError has no ``orig``) is reported as
    the store's error, with its message, by every store opener: not an AttributeError."""
    import pytest
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from typer.testing import CliRunner

    from regsync.console.cli import app
    from regsync.db.store import StoreError, open_store
    from regsync.generate.load import run_generate
    from regsync.settings import DatabaseSettings, Settings

    def pool_timeout(*_args, **_kwargs):
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")

    for where in ("regsync.db.store", "regsync.console.cli"):  # the opener's and `db current`'s own reads
        monkeypatch.setattr(f"{where}.current_revision", pool_timeout)
    monkeypatch.setattr("regsync.generate.load.upgrade", pool_timeout)
    with pytest.raises(StoreError, match="cannot open the local store: QueuePool limit"):
        open_store(db_url)
    with pytest.raises(StoreError, match="cannot open or migrate the local store: QueuePool limit"):
        run_generate(Settings(database=DatabaseSettings(url=db_url)), scale=0.001, seed=1, engine=engine)
    res = CliRunner().invoke(app, ["db", "current"], env={"REGSYNC_DATABASE_URL": db_url, "REGSYNC_CONFIG": ""})
    assert res.exit_code == 1 and "cannot open the local store: QueuePool limit" in res.output, res.output


REFERENCE_TABLES = {"organization", "volunteer", "membership", "activity", "service_record"}


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_a_mapped_store_holds_regsync_tables_only(empty_engine: Engine) -> None:
    """Issue 14: with the platform's own tables mapped, the migrations leave regsync's tables only (no reference
    tables, no triggers on them), and go down to nothing and up again."""
    upgrade(empty_engine, reference_tables=False)
    tables = _tables(empty_engine)
    assert not tables & REFERENCE_TABLES
    assert {"outbox", "link", "platform_key", "person_norm", "store_meta"} <= tables
    downgrade(empty_engine, "base", reference_tables=False)
    assert _tables(empty_engine) <= {"alembic_version"}
    upgrade(empty_engine, reference_tables=False)
    assert current_revision(empty_engine) == head_revision()


def test_a_reference_store_with_rows_does_not_become_a_mapped_one(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0012")
    with empty_engine.begin() as conn:
        _vol(conn)
    with pytest.raises(Exception, match="reference table volunteer"):
        upgrade(empty_engine, reference_tables=False)
    assert current_revision(empty_engine) == "0012"


@pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
def test_two_relays_claiming_at_once_share_the_rows_and_never_wait(engine: Engine) -> None:
    """Replicas share the outbox (design.md, flow 1): a claim skips the rows another relay's open claim has locked
    (``FOR UPDATE SKIP LOCKED``) instead of waiting for it, and takes the next ones in priority order."""
    with engine.begin() as conn:
        for i in range(10):
            _vol(conn, id_number=f"23010219900101{i:03d}X")
    now = utcnow()
    until = now + dt.timedelta(seconds=30)
    first, second = engine.connect(), engine.connect()
    try:
        # a wait would fail the test within 2 s rather than hang it
        if engine.dialect.name == "postgresql":
            second.execute(text("SET lock_timeout = '2s'"))
        else:
            second.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
        second.commit()
        with first.begin():
            a = claim(first, worker="relay-a", now=now, until=until, limit=4)
            with second.begin():
                b = claim(second, worker="relay-b", now=now, until=until, limit=4)
        ids = [r["id"] for r in a + b]
    finally:
        first.close()
        second.close()
    assert len(a) == len(b) == 4 and len(set(ids)) == 8 and ids == sorted(ids)
    with engine.connect() as conn:
        owners = dict(conn.execute(text("SELECT id, claimed_by FROM outbox WHERE claimed_by IS NOT NULL")).all())
    assert owners == {**{r["id"]: "relay-a" for r in a}, **{r["id"]: "relay-b" for r in b}}


@pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)
def test_a_deadlock_is_told_apart_and_its_transaction_run_again(engine: Engine) -> None:
    """Two writers that lock two rows in opposite orders: the server rolls one back (PostgreSQL 40P01, InnoDB
    1213), which :func:`lock_conflict` tells apart from other errors, and :func:`retry_on_lock_conflict` runs such
    a transaction again."""
    with engine.begin() as conn:
        a, b = _vol(conn), _vol(conn, name="李娜", id_number="230102199202021230")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE volunteer SET remark = 'one' WHERE id = :i"), {"i": first})
                barrier.wait(10)
                conn.execute(text("UPDATE volunteer SET remark = 'two' WHERE id = :i"), {"i": second})
        except DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(a, b)), threading.Thread(target=writer, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 1 and lock_conflict(errors[0]), errors
    with pytest.raises(DBAPIError) as other:
        with engine.connect() as conn:
            conn.execute(text("SELECT no_such_column FROM volunteer"))
    assert not lock_conflict(other.value)

    calls: list[int] = []

    def work(conn):
        calls.append(1)
        if len(calls) == 1:
            raise errors[0]
        return conn.execute(text("SELECT COUNT(*) FROM volunteer")).scalar_one()

    assert retry_on_lock_conflict(engine, work) == 2 and len(calls) == 2
