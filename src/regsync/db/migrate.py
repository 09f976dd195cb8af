"""Schema migrations (Alembic), run by ``regsync db upgrade`` on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Index, Table

from regsync.db.models import TABLES, Base
from regsync.db.own import own, table_prefix
from regsync.db.session import normalize_url

#: Alembic's version table: one of regsync's own tables, prefixed with them on SQLite (:mod:`regsync.db.own`).
VERSION_TABLE = own("alembic_version")


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at ``url`` (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", "regsync.db:migrations")
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, reference_tables: bool = True) -> None:
    """Migrate the database of ``engine`` up to ``revision`` (default: the newest).

    Args:
        engine: the store.
        revision: the revision to reach.
        reference_tables: whether the platform's records are regsync's reference tables (``database.mapping`` is
            ``reference``). ``False``: the platform's own tables are mapped (issue 14), and the migrations leave
            regsync's own tables only (revision 0013 takes away the empty reference tables the earlier revisions
            made in a new store).

    A store whose tables take a prefix (SQLite beside a mapped platform, :mod:`regsync.db.own`) begins at the
    newest revision of its day: when empty, its tables are made from the models and the revision stamped
    (:func:`make_prefixed`); later it is migrated as any store, by the revisions after its own, which therefore name
    regsync's tables with :func:`regsync.db.own.own` (``op.add_column(own("outbox"), …)``): a prefixed store's
    engine writes those with the prefix, in batch mode's reflection too.
    """
    if table_prefix(engine) and current_revision(engine) is None:
        make_prefixed(engine, revision, reference_tables=reference_tables)
        return
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["reference_tables"] = reference_tables
        command.upgrade(cfg, revision)


def own_tables() -> list[Table]:
    """Regsync's own tables (every model's table but the reference tables of the platform's records), parents
    first."""
    reference = set(TABLES.values())
    return [t for t in Base.metadata.sorted_tables if t.name not in reference]


def make_prefixed(engine: Engine, revision: str = "head", *, reference_tables: bool = False) -> None:
    """Make regsync's tables in a new store whose tables take a prefix, and stamp the newest revision.

    Such a store begins at the revision that brought prefixes (``0013``) or later, so there is nothing of the
    earlier revisions to replay (their statements name the tables unprefixed); the revisions after it name the
    tables with :func:`regsync.db.own.own`, which a prefixed store's engine writes with the prefix, and
    :func:`upgrade` runs them.

    Raises:
        ValueError: the reference tables were asked for (they are the platform's own and take no prefix), or a
            revision other than the newest.
        RuntimeError: the store is at another revision than none or the newest (:func:`upgrade` migrates it).
    """
    if reference_tables:
        raise ValueError("a table prefix is for a store beside a mapped platform (database.mapping is not "
                         "'reference')")
    head = head_revision()
    if revision not in ("head", head):
        raise ValueError(f"a store with a table prefix is made at the newest revision ({head}), not {revision}")
    rev = current_revision(engine)
    if rev == head:
        return
    if rev is not None:
        raise RuntimeError(f"the store with table prefix {table_prefix(engine)!r} is at revision {rev}, which no "
                           f"release of regsync made; expected none or {head}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        Base.metadata.create_all(conn, tables=own_tables())
        cfg.attributes["connection"] = conn
        cfg.attributes["reference_tables"] = False
        command.stamp(cfg, "head")


def downgrade(engine: Engine, revision: str, *, reference_tables: bool = True) -> None:
    """Migrate the database of ``engine`` down to ``revision`` (``base`` empties it); ``reference_tables`` as for
    :func:`upgrade`."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["reference_tables"] = reference_tables
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return revision_of(conn)


def revision_of(conn: Connection) -> str | None:
    """The revision of ``conn``'s store, or ``None`` for an empty one (its version table with the store's
    prefix)."""
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def include_object(dialect: str) -> Callable[[object, str | None, str, bool, object], bool]:
    """Alembic's ``include_object`` hook for a store on ``dialect`` (its engine's ``dialect.name``): an index of the
    models made only on some engines (:func:`regsync.db.coltypes.only_on`) is compared only on those.

    Usage: ``MigrationContext.configure(conn, opts={"include_object": include_object(conn.dialect.name)})``.
    """
    def include(obj: object, _name: str | None, type_: str, reflected: bool, _compare_to: object) -> bool:
        if type_ != "index" or reflected or not isinstance(obj, Index):
            return True
        dialects = obj.info.get("dialects")
        return not dialects or dialect in dialects

    return include


def head_revision() -> str:
    """The newest revision shipped with this version of regsync."""
    cfg = alembic_config("sqlite://")
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head
