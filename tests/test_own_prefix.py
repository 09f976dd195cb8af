"""Issue 14: beside a mapped SQLite platform, regsync's tables, indexes and views take a prefix
(``database.table_prefix``) so that they are never among the platform's in the one file.

The prefix is SQLite's only (PostgreSQL and MySQL/MariaDB give regsync a schema or database of its own, tested in
test_platform_mapped.py on every engine); here: the prefixed store is exactly the migrated schema under other names,
the settings that choose it, and the store made before prefixes, which is not taken for an empty one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from sqlalchemy import Engine, text

import regsync.db.migrate
import regsync.db.migrations
from factories import TEST_HASH_KEY
from regsync.db.history import reused_keys
from regsync.db.migrate import alembic_config, current_revision, downgrade, head_revision, revision_of, upgrade
from regsync.db.own import own_sql, table_prefix
from regsync.db.session import make_engine
from regsync.db.store import StoreError, open_store
from regsync.settings import ConfigError, DatabaseSettings, load_settings

PREFIX = "regsync_"


def _schema(engine: Engine, prefix: str) -> dict[str, Any]:
    """Every table of ``engine``'s file with its columns (name, type, not null, default, primary key), indexes
    (columns, unique, partial) and AUTOINCREMENT, named without ``prefix``."""
    def bare(name: str) -> str:
        assert name.startswith(prefix), name
        return name[len(prefix):]

    out: dict[str, Any] = {}
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                   "AND name <> 'sqlite_sequence' ORDER BY name")).all()
        for name, sql in tables:
            # by name: a column a later revision added comes last in a migrated table, in its place in a made one
            cols = sorted(tuple(r)[1:] for r in conn.execute(text(f'PRAGMA table_info("{name}")')))
            indexes = {}
            for _seq, ix, unique, origin, partial in conn.execute(text(f'PRAGMA index_list("{name}")')):
                ix_cols = [r[2] for r in conn.execute(text(f'PRAGMA index_info("{ix}")'))]
                key = ix.replace(name, bare(name)) if origin != "c" else bare(ix)
                indexes[key] = (ix_cols, unique, origin, partial)
            out[bare(name)] = (cols, indexes, "AUTOINCREMENT" in sql.upper())
    return out


def test_a_prefixed_store_is_the_migrated_schema_under_prefixed_names(tmp_path: Path) -> None:
    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    prefixed = make_engine(f"sqlite:///{tmp_path / 'prefixed.db'}", table_prefix=PREFIX)
    try:
        upgrade(migrated, reference_tables=False)
        upgrade(prefixed, reference_tables=False)
        upgrade(prefixed, reference_tables=False)  # at the newest revision already: nothing to do
        assert current_revision(prefixed) == current_revision(migrated) == head_revision()
        assert _schema(prefixed, PREFIX) == _schema(migrated, "")
        with prefixed.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")).scalars())
        assert names and all(n.startswith(PREFIX) for n in names), sorted(names)
        assert "regsync_alembic_version" in names and "regsync_ix_outbox_claim" in names
    finally:
        migrated.dispose()
        prefixed.dispose()


def test_the_prefixed_store_reads_through_its_partial_index(tmp_path: Path) -> None:
    """Raw SQL names the prefixed tables, and a partial index's terms still match (the query plan uses it)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", table_prefix=PREFIX)
    upgrade(engine, reference_tables=False)
    try:
        with engine.begin() as conn:
            assert table_prefix(conn) == PREFIX and own_sql(conn, "outbox") == '"regsync_outbox"'
            conn.execute(text(
                "INSERT INTO regsync_outbox (entity, local_id, op, priority, state, attempts, created_at, "
                "available_at) VALUES ('org', 7, 'reuse', 0, 'pending', 0, '2026-01-01', '2026-01-01')"))
            assert reused_keys(conn, "org", [7, 8]) == {7: (1,)}
            plan = " ".join(str(r[-1]) for r in conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM regsync_outbox WHERE entity = 'org' AND local_id IN (7) "
                "AND regsync_outbox.op = 'reuse' AND regsync_outbox.state <> 'sent'")))
        assert "regsync_ix_outbox_reuse" in plan, plan
    finally:
        engine.dispose()


@pytest.mark.parametrize(("env", "prefix"), [
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db", "REGSYNC_MAPPING": "legacy"}, PREFIX),
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db"}, ""),
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db", "REGSYNC_MAPPING": "legacy", "REGSYNC_TABLE_PREFIX": "rs_"}, "rs_"),
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db", "REGSYNC_MAPPING": "legacy", "REGSYNC_TABLE_PREFIX": "none"}, ""),
    ({"REGSYNC_DATABASE_URL": "postgresql+psycopg://u@h/db", "REGSYNC_MAPPING": "legacy"}, ""),
])
def test_the_prefix_the_settings_choose(env: dict[str, str], prefix: str) -> None:
    settings = load_settings(environ={**env, "REGSYNC_HASH_KEY": TEST_HASH_KEY})
    assert settings.database.own_prefix == prefix


@pytest.mark.parametrize(("env", "words"), [
    ({"REGSYNC_DATABASE_URL": "postgresql+psycopg://u@h/db", "REGSYNC_MAPPING": "legacy",
      "REGSYNC_TABLE_PREFIX": "rs_"}, "for a SQLite store only"),
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db", "REGSYNC_TABLE_PREFIX": "rs_"}, "beside a mapped platform"),
    ({"REGSYNC_DATABASE_URL": "sqlite:///x.db", "REGSYNC_MAPPING": "legacy", "REGSYNC_TABLE_PREFIX": "rs-"},
     "letters, digits and _"),
])
def test_a_prefix_where_it_cannot_be_is_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match="database.table_prefix") as exc:
        load_settings(environ={**env, "REGSYNC_HASH_KEY": TEST_HASH_KEY})
    assert words in str(exc.value)
    with pytest.raises(ValueError, match="SQLite"):
        make_engine("postgresql+psycopg://u@h/db", table_prefix="rs_")


def test_a_store_made_without_a_prefix_is_not_taken_for_an_empty_one(tmp_path: Path) -> None:
    """A mapped SQLite store made before prefixes (its tables unprefixed): opened with the prefix it would get now,
    it is refused with the setting that opens it, not migrated a second time under other names."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url)
    upgrade(old, reference_tables=False)
    old.dispose()
    with pytest.raises(StoreError, match=r"database.table_prefix \(REGSYNC_TABLE_PREFIX\) to none"):
        open_store(DatabaseSettings(url, mapping="legacy"))
    open_store(DatabaseSettings(url, mapping="legacy", table_prefix="none")).dispose()


LATER_REVISION = '''"""A revision after the prefixed store was made (the test's): a column, an index, a data change.

Revision ID: 9901
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

from regsync.db.own import own, own_sql

revision = "9901"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table(own("outbox")) as batch:
        batch.add_column(sa.Column("note", sa.String(40), nullable=True))
    op.create_index("ix_outbox_note", own("outbox"), ["note"])
    op.execute(f"UPDATE {{own_sql(op.get_bind(), 'outbox')}} SET note = 'migrated'")


def downgrade() -> None:
    op.drop_index("ix_outbox_note", table_name=own("outbox"))
    with op.batch_alter_table(own("outbox")) as batch:
        batch.drop_column("note")
'''


def test_a_later_revision_migrates_a_prefixed_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefixed store is made at the newest revision of its day; the revisions after it run on it as on any store,
    naming regsync's tables with ``own()`` (Alembic's batch mode copies the prefixed table, reflected by its prefixed
    name), and leave the platform's namesake tables alone."""
    scripts = tmp_path / "migrations"
    shutil.copytree(Path(regsync.db.migrations.__file__).parent, scripts,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9901_later.py").write_text(LATER_REVISION.format(head=head_revision()), "utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", table_prefix=PREFIX)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE outbox (platform_row INTEGER PRIMARY KEY, note TEXT)"))  # the platform's
        upgrade(engine, reference_tables=False)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO regsync_outbox (entity, local_id, op, priority, state, attempts, created_at, "
                "available_at) VALUES ('org', 7, 'insert', 0, 'pending', 0, '2026-01-01', '2026-01-01')"))
        made_at = head_revision()

        def with_later(url: str) -> Config:  # regsync's migrations, and the later revision
            cfg = alembic_config(url)
            cfg.set_main_option("script_location", str(scripts))
            return cfg

        monkeypatch.setattr(regsync.db.migrate, "alembic_config", with_later)
        assert head_revision() == "9901"
        upgrade(engine, reference_tables=False)  # `regsync db upgrade` of the next release
        with engine.connect() as conn:
            assert revision_of(conn) == "9901"
            assert conn.execute(text("SELECT local_id, note FROM regsync_outbox")).all() == [(7, "migrated")]
            names = set(conn.execute(text("SELECT name FROM sqlite_master")).scalars())
            assert "regsync_ix_outbox_note" in names and "regsync_ix_outbox_claim" in names  # indexes kept
            assert [r[1] for r in conn.execute(text('PRAGMA table_info("outbox")'))] == ["platform_row", "note"]
        downgrade(engine, made_at, reference_tables=False)
        with engine.connect() as conn:
            assert "note" not in [r[1] for r in conn.execute(text('PRAGMA table_info("regsync_outbox")'))]
    finally:
        engine.dispose()
