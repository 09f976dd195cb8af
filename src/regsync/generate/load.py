"""``regsync generate``: migrate the store and fill it with a generated data set, into the reference tables or, when
``database.mapping`` names another mapping, into the platform's own tables through it (issue 14, item 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from regsync.db.mapping.check import check_platform
from regsync.db.mapping.install import InstallError, install, status
from regsync.db.mapping.load import REFERENCE, MappingError, load_mapping, mapping_path
from regsync.db.mapping.model import PlatformMapping
from regsync.db.migrate import upgrade
from regsync.db.models import Base
from regsync.db.own import own_format
from regsync.db.session import is_mysql
from regsync.db.store import StoreError, open_store
from regsync.domain.kinds import KIND_NAMES, KINDS
from regsync.domain.masking import mask_text
from regsync.generate.generator import generate
from regsync.generate.legacy_schema import create_legacy
from regsync.generate.mapped import MappingNotWritable
from regsync.settings import ConfigError, Settings


def prepare_platform(engine: Engine, mapping: PlatformMapping, platform_schema: str = "") -> dict[str, Any]:
    """Make a store ready for a generated platform, in the documented order (docs/connect-platform.md): the legacy
    platform's tables when the mapping is ``legacy`` and they are missing (:func:`create_legacy`), regsync's own
    tables beside them (``upgrade(engine, reference_tables=False)``), ``platform check``, and ``platform install``
    (skipped when the mapping is installed as it is now), so that the installed triggers queue every generated row
    in the outbox as the reference tables' triggers do.

    Args:
        engine: the store.
        mapping: the platform's mapping (not the reference one).
        platform_schema: ``database.platform_schema``.

    Returns:
        ``{"created": bool, "installed": bool, "check": {"errors", "warnings", "infos"}}``.

    Raises:
        ConfigError: the mapping's tables are missing (and it is not ``legacy``), or ``platform check`` finds errors
            (each named).
        sqlalchemy.exc.SQLAlchemyError: a statement failed.
    """
    created = False
    first = mapping.kinds["org"].table
    table_schema = first.rpartition(".")[0] or platform_schema or None
    if not inspect(engine).has_table(first.rpartition(".")[2], schema=table_schema):
        if mapping.name != "legacy":
            raise ConfigError(f"the table {first} of mapping {mapping.name} does not exist: the generator makes the "
                              "legacy platform's tables only (database.mapping = legacy)")
        create_legacy(engine, platform_schema or None)
        created = True
    upgrade(engine, reference_tables=False)
    report = check_platform(engine, mapping, file=str(mapping_path(mapping.name)), platform_schema=platform_schema)
    if report.errors:
        found = "; ".join(f"{f.code} {f.key}: {f.message}" for f in report.findings if f.severity == "error")
        raise ConfigError(f"platform check found {report.errors} error(s) on mapping {mapping.name}: {found}")
    with engine.connect() as conn:
        current = status(conn, mapping, platform_schema=platform_schema).ok
    if not current:
        install(engine, mapping, platform_schema=platform_schema)
    return {"created": created, "installed": not current,
            "check": {"errors": report.errors, "warnings": report.warnings, "infos": report.infos}}


def run_generate(settings: Settings, *, scale: float, seed: int,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 engine: Engine | None = None, append: bool = False) -> dict[str, Any]:
    """Migrate the store and fill it with a generated data set; returns counts, dirt and seconds.

    With ``database.mapping`` other than ``reference``, the platform is prepared first (:func:`prepare_platform`:
    its tables, regsync's beside them, the check, the install) and the data set is written through the mapping
    into the platform's tables; the result adds ``mapping``, ``platform`` (what the preparation did) and
    ``out_of_scope`` / ``soft_deleted`` (kind → rows copied as test rows or soft-deleted, beside the counts).

    ``progress(kind, n, total)`` is called as rows are written (``total`` set on the first call of a kind, then
    ``None``); default: nothing drawn.

    Raises:
        ConfigError: the store already holds volunteers and ``append`` is false (the same seed would make the
            same people again), the database URL is malformed, the mapping cannot be read, its tables are missing,
            ``platform check`` finds errors, or the generator cannot write through it.
        StoreError: the store cannot be opened.
    """
    own = engine is None
    engine = engine or open_store(settings.database, migrated=False)
    mapping: PlatformMapping | None = None
    prepared: dict[str, Any] = {}
    try:
        if settings.database.mapping == REFERENCE:
            upgrade(engine)
        else:
            mapping = load_mapping(settings.database.mapping)
            prepared = prepare_platform(engine, mapping, settings.database.platform_schema)
        with engine.connect() as conn:
            existing = conn.execute(text(own_format(conn, "SELECT COUNT(*) FROM {volunteer}"))).scalar_one()
    except SQLAlchemyError as exc:
        raise StoreError("cannot open or migrate the local store: "
                         f"{mask_text(str(getattr(exc, 'orig', None) or exc))}") from exc
    except (MappingError, InstallError) as exc:
        raise ConfigError(str(exc)) from exc
    if existing and not append:
        raise ConfigError(f"the local store already holds {existing} volunteers; generate into an empty store, "
                          "or pass --append to add to it")
    seen: dict[str, int] = {}

    def on_progress(kind: str, done: int, total: int) -> None:
        if progress is not None:
            progress(kind, 0, total)
            progress(kind, done - seen.get(kind, 0), None)
        seen[kind] = done

    placed = mapping.with_schema(settings.database.platform_schema) if mapping is not None else None
    try:
        summary = generate(engine, scale, seed, progress=on_progress, mapping=placed)
    except MappingNotWritable as exc:
        raise ConfigError(f"the generator cannot write through mapping {settings.database.mapping}: {exc}") from exc
    # fresh statistics after a bulk load, so the planners use the indexes from the first claim on
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if is_mysql(conn):  # MySQL/MariaDB analyze the tables named, no more
            conn.execute(text("ANALYZE TABLE " + ", ".join(Base.metadata.tables)))
        else:
            conn.execute(text("ANALYZE"))
    if own:
        engine.dispose()
    kinds = KINDS
    out = {"scale": summary.scale, "seed": summary.seed, "as_of": summary.as_of.isoformat(),
           "counts": {KIND_NAMES[k]: summary.counts.get(k, 0) for k in kinds},
           "org_levels": {k: v for k, v in summary.counts.items() if k not in kinds},
           "dirt": dict(summary.dirt), "seconds": round(summary.seconds, 3),
           "rows_per_second": round(summary.rows_per_second)}
    if mapping is not None:
        out.update({"mapping": mapping.name, "platform": prepared,
                    "out_of_scope": {KIND_NAMES[k]: v for k, v in summary.out_of_scope.items()},
                    "soft_deleted": {KIND_NAMES[k]: v for k, v in summary.soft_deleted.items()}})
    return out


__all__ = ["prepare_platform", "run_generate"]
