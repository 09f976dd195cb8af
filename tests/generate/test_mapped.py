"""The generator writes through a mapping (issue 14, item 5): the same province into the legacy platform's own tables
as into the reference tables, keys and ``platform_key`` rows made by the generator, test rows and soft-deleted rows
beside it, and ``regsync generate`` preparing the platform in the documented order, on every engine of the store."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from platforms import xprov
from regsync.db.mapping.check import check_platform
from regsync.db.mapping.install import install, installed
from regsync.db.mapping.load import load_mapping
from regsync.db.migrate import upgrade
from regsync.db.models import TABLES, Base
from regsync.db.platform.scan import backfill_id_number_norm
from regsync.db.session import make_engine
from regsync.domain.projection import REFERENCES
from regsync.generate import DirtRates, generate
from regsync.generate.legacy_schema import TABLES as LEGACY
from regsync.generate.legacy_schema import create_legacy
from regsync.generate.load import run_generate
from regsync.generate.mapped import MappingNotWritable, platform_key
from regsync.settings import ConfigError, DatabaseSettings, Settings

from .conftest import AS_OF

SCALE = 0.0003
SEED = 23


def q(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


@pytest.fixture
def schema(empty_engine: Engine) -> Iterator[str | None]:
    """Where the platform's tables go: a private PostgreSQL schema or MariaDB database beside the store's, or the
    SQLite file itself."""
    if empty_engine.dialect.name == "sqlite":
        yield None
        return
    name = "p_" + secrets.token_hex(5)
    yield name
    with empty_engine.begin() as conn:
        if empty_engine.dialect.name == "mysql":
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        else:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def legacy_store(engine: Engine, schema: str | None) -> None:
    """The documented order: the platform's tables, regsync's beside them, the check, the install."""
    create_legacy(engine, schema)
    upgrade(engine, reference_tables=False)
    mapping = load_mapping("legacy")
    assert check_platform(engine, mapping, platform_schema=schema or "").errors == 0
    install(engine, mapping, platform_schema=schema or "")


def dump(engine: Engine) -> dict[str, Any]:
    """Every record as the flows read it (the reference tables, or the views named as them), its id and the ids it
    refers to replaced by its rank in its kind, lists parsed; and the dirt log, by rank."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        ranks = {kind: {i: n for n, (i,) in enumerate(conn.execute(text(f"SELECT id FROM {t} ORDER BY id")))}
                 for kind, t in TABLES.items()}
        for kind, name in TABLES.items():
            table = Base.metadata.tables[name]
            rows = []
            for r in conn.execute(select(table).order_by(table.c.id)).mappings():
                row = {k: v for k, v in r.items() if k != "updated_at"}
                row["id"] = ranks[kind][row["id"]]
                for col, ref in REFERENCES[kind].items():
                    if row[col] is not None:
                        row[col] = ranks[ref][row[col]]
                for col in ("skills", "service_categories"):
                    if col in row:
                        row[col] = json.loads(row[col])
                rows.append(row)
            out[kind] = rows
        out["dirt"] = sorted((e, ranks[e][lid], k, f, c) for e, lid, k, f, c in conn.execute(text(
            "SELECT entity, local_id, kind, fixable, expected_code FROM generator_dirt")))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The province of :data:`SCALE` and :data:`SEED` in the reference tables."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}")
    upgrade(engine)
    generate(engine, SCALE, SEED, as_of=AS_OF)
    out = dump(engine)
    engine.dispose()
    return out


def test_the_same_province_through_the_legacy_mapping(empty_engine: Engine, schema: str | None,
                                                      reference: dict[str, Any]) -> None:
    engine = empty_engine
    legacy_store(engine, schema)
    summary = generate(engine, SCALE, SEED, as_of=AS_OF, mapping=load_mapping("legacy").with_schema(schema or ""),
                       batch_size=700)
    assert summary.mapping == "legacy"
    # the same people, orgs, hours and dirt, read through the views the install made
    got = dump(engine)
    for kind in reference:
        assert got[kind] == reference[kind], kind
    assert summary.counts["volunteer"] == len(reference["volunteer"])
    assert all(reference[kind] for kind in TABLES), "every kind, v1.1's included (issue 16)"
    # in the platform's own forms: org codes and activity numbers made by the generator, codes, text dates, minutes
    with engine.connect() as conn:
        org = conn.execute(text(f"SELECT zzdm, zzjb, sjzzdm, clrq, fwlb FROM {q(schema, LEGACY['org'])} "
                                "WHERE sjzzdm IS NOT NULL ORDER BY zzdm")).first()
        assert org is not None and org[0].startswith("ZZ") and org[1] in ("12", "13", "14", "22", "23", "24")
        assert org[2].startswith("ZZ") and isinstance(org[3], int) and "[" not in org[4]
        rec = conn.execute(text(f"SELECT hdbh, zzdm, fwsc, jlzt, lrfs FROM {q(schema, LEGACY['service_record'])} "
                                "ORDER BY jlid")).first()
        assert rec is not None and rec[0].startswith("HD") and rec[1].startswith("ZZ")
        assert rec[2] % 15 == 0 and rec[3] in ("0", "1") and rec[4] == "1"  # the platform's own entry, not 3
        vol = conn.execute(text(f"SELECT zt, zcsj, ly FROM {q(schema, LEGACY['volunteer'])} ORDER BY zyzid")).first()
        assert vol is not None and vol[0] == "A" and len(vol[1]) == 19 and vol[2] == "1"
        # v1.1: class hours in minutes, dates as YYYYMMDD, the platform's own entries; an evaluation's activity by
        # its number
        trec = conn.execute(text(f"SELECT xs, wcrq, lrfs FROM {q(schema, LEGACY['training_record'])} "
                                 "ORDER BY pxjlid")).first()
        assert trec is not None and trec[0] % 30 == 0 and re.fullmatch(r"\d{8}", trec[1]) and trec[2] == "1"
        com = conn.execute(text(f"SELECT ly, zt FROM {q(schema, LEGACY['commendation'])} ORDER BY jxid")).first()
        assert com is not None and com[0] == "1" and com[1] in ("0", "1")
        ev = conn.execute(text(f"SELECT hdbh, pjzzdm, pjrq FROM {q(schema, LEGACY['evaluation'])} "
                               "ORDER BY pjid")).first()
        assert ev is not None and ev[0].startswith("HD") and ev[1].startswith("ZZ") and len(ev[2]) == 10
        # each string key's platform_key row names the key the generator made from the local id
        keys = conn.execute(text("SELECT entity, local_id, key_value FROM platform_key")).all()
        assert keys and all(key == platform_key(e, lid) for e, lid, key in keys)
        # the installed triggers queued every record in scope once, under the local id the views and the dirt use
        queued = conn.execute(text("SELECT entity, op, COUNT(*), COUNT(DISTINCT local_id) FROM outbox "
                                   "GROUP BY entity, op")).all()
        assert sorted((e, op, n, d) for e, op, n, d in queued) == sorted(
            (kind, "insert", len(rows), len(rows)) for kind, rows in reference.items() if kind in TABLES)
        for kind, table in TABLES.items():
            assert conn.execute(text(f"SELECT COUNT(*) FROM outbox o WHERE o.entity = '{kind}' AND NOT EXISTS "
                                     f"(SELECT 1 FROM {table} t WHERE t.id = o.local_id)")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM generator_dirt d WHERE NOT EXISTS (SELECT 1 FROM outbox o "
                                 "WHERE o.entity = d.entity AND o.local_id = d.local_id)")).scalar_one() == 0
    # a generated legacy platform passes the check with no error
    assert check_platform(engine, load_mapping("legacy"), platform_schema=schema or "").errors == 0


def test_test_rows_and_soft_deleted_rows_beside_the_province(empty_engine: Engine, schema: str | None) -> None:
    engine = empty_engine
    legacy_store(engine, schema)
    summary = generate(engine, SCALE, SEED, as_of=AS_OF, mapping=load_mapping("legacy").with_schema(schema or ""))
    # the kinds the legacy mapping scopes and soft-deletes: each has some of both, and the others none
    assert set(summary.out_of_scope) == set(summary.soft_deleted) == {"org", "volunteer", "activity", "training",
                                                                      "commendation"}
    assert all(n >= 1 for n in [*summary.out_of_scope.values(), *summary.soft_deleted.values()])
    with engine.connect() as conn:
        for kind in ("org", "volunteer", "activity", "training", "commendation"):
            table = q(schema, LEGACY[kind])
            counts = {f"{t}{d}": n for t, d, n in conn.execute(text(
                f"SELECT sfcs, scbz, COUNT(*) FROM {table} GROUP BY sfcs, scbz"))}
            assert counts == {"00": summary.counts[kind], "10": summary.out_of_scope[kind],
                              "01": summary.soft_deleted[kind]}, kind
            assert conn.execute(text(f"SELECT COUNT(*) FROM {TABLES[kind]}")).scalar_one() == summary.counts[kind]
            name = {"activity": "hdmc", "org": "zzmc", "training": "pxzt", "commendation": "jxmc"}.get(kind, "xm")
            assert conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE sfcs = '1' AND {name} NOT LIKE '测试%'")
                                ).scalar_one() == 0
        # nothing of them is queued
        assert conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one() == sum(
            summary.counts[k] for k in TABLES)


def test_keys_taken_by_the_generator_are_not_handed_out_again(empty_engine: Engine, schema: str | None) -> None:
    """After a generate, the platform's own inserts (a new key made by the database, a new org code) get fresh local
    ids: PostgreSQL's sequences moved past the keys the generator took."""
    engine = empty_engine
    legacy_store(engine, schema)
    generate(engine, 0.0001, SEED, as_of=AS_OF, kinds={"org", "activity", "volunteer"},
             mapping=load_mapping("legacy").with_schema(schema or ""))
    with engine.begin() as conn:
        top = conn.execute(text("SELECT MAX(local_id) FROM platform_key")).scalar_one()
        conn.execute(text(f"INSERT INTO {q(schema, LEGACY['org'])} (zzdm, zzmc, zzlx, zzjb, xzqhdm, fwlb) "
                          "VALUES ('NEW01', '新成立志愿服务总队', '1', '11', '230100', 'COMMUNITY')"))
        conn.execute(text(f"INSERT INTO {q(schema, LEGACY['volunteer'])} (xm, zjhm, xzqhdm, zcsj, ly) "
                          "VALUES ('李明', '230102199001011234', '230102', '2026-06-01 08:00:00', '1')"))
        new_org = conn.execute(text("SELECT local_id FROM platform_key WHERE key_value = 'NEW01'")).scalar_one()
        vols = conn.execute(text(f"SELECT COUNT(*), COUNT(DISTINCT zyzid) FROM {q(schema, LEGACY['volunteer'])}"
                                 )).one()
    assert new_org > top and vols[0] == vols[1]


def test_a_mapping_the_generator_cannot_fill_is_refused_naming_the_column(empty_engine: Engine,
                                                                           schema: str | None) -> None:
    engine = empty_engine
    if schema is not None:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    xprov.metadata(schema).create_all(engine)
    upgrade(engine, reference_tables=False)
    mapping = load_mapping(xprov.MAPPING)
    vol = mapping.kinds["volunteer"].model_copy(update={"defaults": {}})
    bare = mapping.model_copy(update={"kinds": {**mapping.kinds, "volunteer": vol}}).with_schema(schema or "")
    with pytest.raises(MappingNotWritable, match=r"kinds.volunteer: .*required column\(s\) ly of"):
        generate(engine, 0.0001, SEED, as_of=AS_OF, mapping=bare)
    # with its defaults, the made-up province's tables take the org tree (its references by org code included;
    # its credit code column holds 18 characters, no room for a code entered with spaces)
    summary = generate(engine, 0.0001, SEED, as_of=AS_OF, kinds={"org"}, mapping=mapping.with_schema(schema or ""),
                       rates=DirtRates(uscc_format=0.0))
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT COUNT(*) FROM {q(schema, 'jg')} WHERE sjbm IS NOT NULL AND sjbm NOT IN "
                                 f"(SELECT jgbm FROM {q(schema, 'jg')})")).scalar_one() == 0
        assert conn.execute(text(f"SELECT COUNT(*) FROM {q(schema, 'jg')} WHERE scbj = 0")).scalar_one() == \
            summary.counts["org"]


def settings_for(engine: Engine, schema: str | None) -> Settings:
    return Settings(database=DatabaseSettings(url=engine.url.render_as_string(hide_password=False),
                                              mapping="legacy", platform_schema=schema or ""))


def test_regsync_generate_prepares_the_platform_in_order(empty_engine: Engine, schema: str | None) -> None:
    """``database.mapping = legacy`` on an empty store: the platform's tables made, regsync's beside them, checked,
    installed, and the province written through the mapping; a second run refuses (the store holds volunteers)."""
    engine = empty_engine
    settings = settings_for(engine, schema)
    out = run_generate(settings, scale=0.0001, seed=SEED, engine=engine)
    assert out["mapping"] == "legacy"
    assert out["platform"]["created"] and out["platform"]["installed"]
    assert out["platform"]["check"]["errors"] == 0
    assert out["out_of_scope"]["volunteers"] >= 1 and out["soft_deleted"]["orgs"] >= 1
    with engine.connect() as conn:
        inst = installed(conn)
        assert inst is not None and inst.mapping.name == "legacy"
        assert conn.execute(text("SELECT COUNT(*) FROM outbox WHERE entity = 'volunteer'")).scalar_one() == \
            out["counts"]["volunteers"]
        assert conn.execute(text(f"SELECT COUNT(*) FROM {q(schema, LEGACY['volunteer'])} WHERE sfcs = '0' "
                                 "AND scbz = '0'")).scalar_one() == out["counts"]["volunteers"]
    with pytest.raises(ConfigError, match="already holds"):
        run_generate(settings, scale=0.0001, seed=SEED, engine=engine)


def test_regsync_generate_refuses_a_mapping_whose_tables_are_missing(empty_engine: Engine) -> None:
    settings = dataclasses.replace(settings_for(empty_engine, None), database=DatabaseSettings(
        url=empty_engine.url.render_as_string(hide_password=False), mapping=xprov.MAPPING))
    with pytest.raises(ConfigError, match="does not exist"):
        run_generate(settings, scale=0.0001, seed=SEED, engine=empty_engine)


def test_the_reference_path_is_unchanged(empty_engine: Engine) -> None:
    """No mapping, or the reference one: the reference tables, nothing beside them."""
    upgrade(empty_engine)
    summary = generate(empty_engine, 0.0001, SEED, as_of=AS_OF, kinds={"org"}, mapping=load_mapping("reference"))
    assert summary.mapping == "reference" and summary.out_of_scope == {} and summary.soft_deleted == {}
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM organization")).scalar_one() == summary.counts["org"]
        assert conn.execute(text("SELECT COUNT(*) FROM platform_key")).scalar_one() == 0


def test_the_normalized_id_numbers_of_rows_already_there_go_beside_the_platform(empty_engine: Engine,
                                                                                  schema: str | None) -> None:
    """A platform connected with its rows already there has no ``person_norm`` rows: the reconcile's backfill puts
    them in ``person_norm`` (the volunteer view cannot be written), as the relay reads them."""
    engine = empty_engine
    legacy_store(engine, schema)
    generate(engine, 0.0001, SEED, as_of=AS_OF, kinds={"volunteer"},
             mapping=load_mapping("legacy").with_schema(schema or ""))
    with engine.begin() as conn:
        want = dict(conn.execute(text("SELECT local_id, id_number_norm FROM person_norm "
                                      "WHERE id_number_norm IS NOT NULL")).all())
        conn.execute(text("DELETE FROM person_norm"))
    assert want and backfill_id_number_norm(engine) == len(want)
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT id, id_number_norm FROM volunteer WHERE id_number_norm IS NOT NULL")
                                 ).all()) == want


def test_a_platform_that_keeps_none_of_the_v11_kinds_gets_the_five_others(empty_engine: Engine,
                                                                          schema: str | None) -> None:
    """A mapping may leave v1.1's kinds out (a platform that keeps no trainings, commendations or evaluations): the
    generator makes none of them, and nothing that needs them, and the five others as with every kind."""
    engine = empty_engine
    create_legacy(engine, schema)
    upgrade(engine, reference_tables=False)
    full = load_mapping("legacy")
    v1 = full.model_copy(update={"kinds": {k: km for k, km in full.kinds.items()
                                           if k not in ("training", "commendation")}})
    summary = generate(engine, SCALE, SEED, as_of=AS_OF, mapping=v1.with_schema(schema or ""))
    # the kinds left out, and training records (of trainings), are not made; evaluations (mapped) are
    assert {k for k in ("training", "training_record", "commendation", "evaluation") if k in summary.counts} == {
        "evaluation"}
    assert all(summary.counts[k] > 0 for k in ("org", "volunteer", "membership", "activity", "service_record"))
    with engine.connect() as conn:
        for kind in ("training", "training_record", "commendation"):
            assert conn.execute(text(f"SELECT COUNT(*) FROM {q(schema, LEGACY[kind])}")).scalar_one() == 0, kind
