"""Schema migrations (Alembic), run by ``regsync db upgrade`` on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Index

from regsync.db.session import normalize_url


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
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["reference_tables"] = reference_tables
        command.upgrade(cfg, revision)


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
        return MigrationContext.configure(conn).get_current_revision()


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
