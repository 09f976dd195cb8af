"""``regsync generate``: migrate the store and fill it with a generated data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from regsync.db.migrate import upgrade
from regsync.db.models import Base
from regsync.db.session import is_mysql
from regsync.db.store import StoreError, open_store
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_text
from regsync.generate.generator import generate
from regsync.settings import ConfigError, Settings


def run_generate(settings: Settings, *, scale: float, seed: int,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 engine: Engine | None = None, append: bool = False) -> dict[str, Any]:
    """Migrate the store and fill it with a generated data set; returns counts, dirt and seconds.

    ``progress(kind, n, total)`` is called as rows are written (``total`` set on the first call of a kind, then
    ``None``); default: nothing drawn.

    Raises:
        ConfigError: the store already holds volunteers and ``append`` is false (the same seed would make the
            same people again), or the database URL is malformed.
        StoreError: the store cannot be opened.
    """
    own = engine is None
    engine = engine or open_store(settings.database.url, migrated=False)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            existing = conn.execute(text("SELECT COUNT(*) FROM volunteer")).scalar_one()
    except SQLAlchemyError as exc:
        raise StoreError("cannot open or migrate the local store: "
                         f"{mask_text(str(getattr(exc, 'orig', None) or exc))}") from exc
    if existing and not append:
        raise ConfigError(f"the local store already holds {existing} volunteers; generate into an empty store, "
                          "or pass --append to add to it")
    seen: dict[str, int] = {}

    def on_progress(kind: str, done: int, total: int) -> None:
        if progress is not None:
            progress(kind, 0, total)
            progress(kind, done - seen.get(kind, 0), None)
        seen[kind] = done

    summary = generate(engine, scale, seed, progress=on_progress)
    # fresh statistics after a bulk load, so the planners use the indexes from the first claim on
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if is_mysql(conn):  # MySQL/MariaDB analyze the tables named, no more
            conn.execute(text("ANALYZE TABLE " + ", ".join(Base.metadata.tables)))
        else:
            conn.execute(text("ANALYZE"))
    if own:
        engine.dispose()
    kinds = ("org", "volunteer", "membership", "activity", "service_record")
    return {"scale": summary.scale, "seed": summary.seed, "as_of": summary.as_of.isoformat(),
            "counts": {KIND_NAMES[k]: summary.counts.get(k, 0) for k in kinds},
            "org_levels": {k: v for k, v in summary.counts.items() if k not in kinds},
            "dirt": dict(summary.dirt), "seconds": round(summary.seconds, 3),
            "rows_per_second": round(summary.rows_per_second)}
