"""The one way to open the local store, and the one error that says it cannot be used.

Every command, job and flow opens the store here (issue 13: "one store opener, one store error"). Where the two
openers regsync had disagreed, the stricter check won: a SQLite file that does not exist is never created by
opening it, and a store whose schema is not the newest is refused unless the caller migrates it itself
(``migrated=False``: ``regsync db upgrade``, ``regsync generate``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from regsync.db.migrate import current_revision, head_revision
from regsync.db.session import make_engine
from regsync.domain.masking import mask_text
from regsync.i18n import TranslatableError
from regsync.i18n import gettext_noop as N_
from regsync.settings import ConfigError, DatabaseSettings


class StoreError(TranslatableError):
    """The local store cannot be used as it is (unreachable, missing, not migrated, read-only): exit code 1.
    ``str(exc)`` is English (logs); the console prints :meth:`~regsync.i18n.TranslatableError.text`."""


def missing_sqlite_file(engine: Engine) -> str | None:
    """The path of a SQLite store file that does not exist, or ``None`` (other engines, ``:memory:``, URI names)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:") or engine.url.query.get("mode"):
        return None
    return None if Path(path).exists() else path


def open_store(db: DatabaseSettings | str, *, migrated: bool = True) -> Engine:
    """An engine on the local store, checked.

    Args:
        db: the ``database`` settings (the URL, and the prefix of regsync's tables on SQLite:
            :attr:`~regsync.settings.DatabaseSettings.own_prefix`), or a bare URL (no prefix).
        migrated: require the newest schema (``regsync db upgrade``); ``False`` for a caller that migrates the
            store itself, which may then be a SQLite file still to be made.

    Returns:
        The engine (the caller disposes of it).

    Raises:
        ConfigError: the URL is malformed or names a database regsync cannot drive, or its driver is missing.
        StoreError: the SQLite file does not exist (with ``migrated``), the store cannot be reached, or its
            schema is not the newest.
    """
    url, prefix = (db, "") if isinstance(db, str) else (db.url, db.own_prefix)
    try:
        engine = make_engine(url, table_prefix=prefix)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"database.url (REGSYNC_DATABASE_URL) is not a database URL regsync can use ({exc}); "
                          "examples: sqlite:///regsync.db, postgresql+psycopg://user@host:5432/db") from exc
    except ImportError as exc:
        raise ConfigError(N_("database.url (REGSYNC_DATABASE_URL) needs a database driver that is not "
                             "installed: {error}"), error=str(exc)) from exc
    if not migrated:
        return engine
    missing = missing_sqlite_file(engine)
    if missing:
        engine.dispose()
        raise StoreError(N_("no local store at {path}: run `regsync db upgrade` (or `regsync generate`) first"),
                         path=missing)
    try:
        rev = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(N_("cannot open the local store: {error}"),
                         error=mask_text(str(getattr(exc, "orig", None) or exc))) from exc
    if rev is None and prefix and has_unprefixed_store(engine):
        engine.dispose()
        raise StoreError(N_("the store's tables have no prefix, and database.table_prefix is {prefix!r}: set "
                            "database.table_prefix (REGSYNC_TABLE_PREFIX) to none for this store"), prefix=prefix)
    if rev != head_revision():
        engine.dispose()
        raise StoreError(N_("the local store is at schema revision {revision}, not {head}: run `regsync db upgrade` "
                            "first"), revision=rev or "none", head=head_revision())
    return engine


def has_unprefixed_store(engine: Engine) -> bool:
    """Whether ``engine``'s SQLite file holds regsync's tables without a prefix (a store made before prefixes)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"))\
            .first() is not None


def store_error(exc: SQLAlchemyError) -> StoreError:
    """A :class:`StoreError` for a database error met while using the store: its first line, masked, with a hint
    to migrate when the error does not name a table regsync's operator commands use."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    migrated = "outbox" not in first and "audit" not in first
    error = mask_text(f"{type(orig).__name__}: {first}")
    if migrated:
        return StoreError(error)
    return StoreError(N_("{error} (is the store migrated? run `regsync db upgrade`)"), error=error)
