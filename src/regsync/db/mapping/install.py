"""Installing a mapping on the platform's database, taking it away, and telling whether what is installed is the
mapping's current form (``regsync platform install|uninstall|status``; issue 14, item 3).

What is installed is recorded in ``store_meta`` (name ``platform_mapping``): the mapping itself (as validated), a
fingerprint of the statements installed, the place, the objects made, and when. The flows' writes into the platform
use the recorded mapping (:func:`installed`), so that the triggers, the views and the writes always agree; changing
the mapping file and installing again is the upgrade (the old objects are dropped, the new ones made, in one
transaction where the engine allows: SQLite and PostgreSQL; MySQL/MariaDB commit each DDL statement, so a failed
install there drops what it made and leaves the earlier installation taken away: ``install`` again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from regsync.db.mapping.ddl import KeyColumn, Place, drop_ddl, install_ddl, installed_objects, placed
from regsync.db.mapping.load import REFERENCE, parse_mapping, read_mapping
from regsync.db.mapping.model import CANONICAL, PlatformMapping
from regsync.db.models import StoreMeta
from regsync.db.own import table_prefix
from regsync.db.session import utcnow

#: The ``store_meta`` name of the installed mapping's record.
INSTALLED = "platform_mapping"

#: (SHA-256 of a mapping file's bytes, dialect, regsync's schema, the platform's schema, the string keys' columns)
#: → (the mapping's name, the fingerprint of the statements it installs there): :func:`configured_fingerprint`.
_FINGERPRINTS: dict[tuple[Any, ...], tuple[str, str]] = {}


class InstallError(Exception):
    """The mapping cannot be installed (the reference mapping, a platform the check refuses, a failed statement)."""


@dataclass(frozen=True, slots=True)
class Installed:
    """The mapping installed on a store.

    Attributes:
        mapping: the mapping as it was installed.
        place: where its objects are.
        fingerprint: the SHA-256 (hex) of the statements installed.
        objects: what was made (:func:`regsync.db.mapping.ddl.installed_objects`).
        installed_at: when (UTC, ISO 8601).
        keys: kind → its string key's column as the catalog declared it at install (:func:`key_columns`; none
            recorded by an install before they were).
    """

    mapping: PlatformMapping
    place: Place
    fingerprint: str
    objects: list[dict[str, str]]
    installed_at: str
    keys: dict[str, KeyColumn] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TriggerStatus:
    """Whether the installed triggers match a mapping (``regsync status``, ``regsync platform status``).

    Attributes:
        mapping: the configured mapping's name.
        installed: the installed mapping's name, ``None`` when nothing is installed.
        current: the installed statements are those the configured mapping makes now.
        missing: installed objects no longer in the engine's catalog (``type name``).
        installed_at: when it was installed (UTC, ISO), or ``None``.
    """

    mapping: str
    installed: str | None
    current: bool
    missing: list[str] = field(default_factory=list)
    installed_at: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing to do: the configured mapping is installed as it is now, and every object is there."""
        return self.current and not self.missing

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        return {"mapping": self.mapping, "installed": self.installed, "current": self.current,
                "missing": list(self.missing), "installed_at": self.installed_at, "ok": self.ok}


def place_of(conn: Connection, platform_schema: str = "") -> Place:
    """Where regsync's objects go on ``conn``'s store: its current PostgreSQL schema or MySQL database, or on SQLite
    the same file with the engine's table prefix (:mod:`regsync.db.own`)."""
    dialect = conn.dialect.name
    own: str | None = None
    if dialect == "postgresql":
        own = conn.execute(text("SELECT current_schema()")).scalar_one()
    elif dialect == "mysql":
        own = conn.execute(text("SELECT DATABASE()")).scalar_one()
    return Place(dialect, own, platform_schema or None, table_prefix(conn))


def fingerprint(statements: list[str]) -> str:
    """The SHA-256 (hex) of ``statements``, in order."""
    return hashlib.sha256("\n;\n".join(statements).encode("utf-8")).hexdigest()


def configured_fingerprint(mapping_name: str, place: Place, keys: Mapping[str, KeyColumn] | None = None
                           ) -> tuple[str, str]:
    """The name of the mapping ``mapping_name`` names and the fingerprint (:func:`fingerprint`) of the statements it
    installs at ``place`` (``keys`` as for :func:`~regsync.db.mapping.ddl.install_ddl`), as its file is now. Cached
    by the SHA-256 of the file's bytes, the dialect, the place and ``keys``: an unchanged file costs a read and a
    hash (every run's start and every ``/metrics`` scrape ask), a changed one is parsed and its statements made
    again.

    Raises:
        regsync.db.mapping.load.MappingError: the file cannot be read, or is not a mapping.
    """
    path, data = read_mapping(mapping_name)
    key = (hashlib.sha256(data).hexdigest(), place.dialect, place.own, place.platform,
           tuple(sorted((keys or {}).items())))
    hit = _FINGERPRINTS.get(key)
    if hit is None:
        mapping = parse_mapping(path, data)
        hit = _FINGERPRINTS[key] = (mapping.name, fingerprint(install_ddl(mapping, place, keys)))
    return hit


def key_columns(conn: Connection, mapping: PlatformMapping, place: Place) -> dict[str, KeyColumn]:
    """Kind → its string key's column as ``conn``'s catalog declares it, for the views' joins with ``platform_key``
    (:class:`~regsync.db.mapping.ddl.KeyColumn`): on SQLite the declared type (``PRAGMA table_info``), on
    MySQL/MariaDB the character set and collation (``information_schema.COLUMNS``); nothing on PostgreSQL, whose
    join needs nothing of it. A table or column the catalog does not have is left out."""
    if place.dialect not in ("sqlite", "mysql"):
        return {}
    m = placed(mapping, place)
    out: dict[str, KeyColumn] = {}
    for kind in CANONICAL:
        km = m.kind(kind)
        if km.key_type != "string" or not km.mapped:
            continue
        schema, _, table = km.table.rpartition(".")
        if place.dialect == "sqlite":
            pragma = f"PRAGMA {place.quote(schema) + '.' if schema else ''}table_info({place.quote(table)})"
            declared = next((r[2] for r in conn.execute(text(pragma)) if str(r[1]).lower() == km.key.lower()), None)
            if declared is not None:
                out[kind] = KeyColumn(type=str(declared))
            continue
        row = conn.execute(text(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "COALESCE(:s, DATABASE()) AND TABLE_NAME = :t AND COLUMN_NAME = :c"),
            {"s": schema or None, "t": table, "c": km.key}).first()
        if row is not None and row[0] and row[1]:
            out[kind] = KeyColumn(charset=str(row[0]), collation=str(row[1]))
    return out


def installed(conn: Connection) -> Installed | None:
    """The mapping installed on the store of ``conn``, or ``None`` (the reference tables, or nothing installed)."""
    t = StoreMeta.__table__
    raw = conn.execute(t.select().where(t.c.name == INSTALLED)).mappings().first()
    if raw is None:
        return None
    rec = json.loads(raw["value"])
    place = Place(rec["place"]["dialect"], rec["place"]["own"], rec["place"]["platform"],
                  rec["place"].get("prefix", ""))
    keys = {kind: KeyColumn(**col) for kind, col in rec.get("keys", {}).items()}
    return Installed(PlatformMapping.model_validate(rec["mapping"]), place, rec["fingerprint"], rec["objects"],
                     rec["installed_at"], keys)


def backfill_keys(conn: Connection, mapping: PlatformMapping, place: Place) -> int:
    """Give every string key of the platform that has no ``platform_key`` row yet its integer local id, in the
    keys' order; returns how many were added. One ``INSERT … SELECT`` per kind, in the database."""
    m = placed(mapping, place)
    kt = place.own_name("platform_key")
    added = 0
    for kind in CANONICAL:
        km = m.kind(kind)
        if km.key_type != "string" or not km.mapped:
            continue
        table = ".".join(place.quote(p) for p in km.table.split("."))
        key = f"t.{place.quote(km.key)}"
        res = conn.execute(text(
            f"INSERT INTO {kt} (entity, key_value) SELECT '{kind}', {key} FROM {table} t "  # noqa: S608 — names
            f"WHERE {key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {kt} k WHERE k.entity = '{kind}' "
            f"AND k.key_value = {key}) ORDER BY {key}"))
        added += max(res.rowcount or 0, 0)
    return added


def _drop(conn: Connection, objects: list[dict[str, str]], place: Place) -> None:
    for stmt in drop_ddl(objects, place):
        conn.execute(text(stmt))


def install(engine: Engine, mapping: PlatformMapping, *, platform_schema: str = "") -> Installed:
    """Install ``mapping``'s views and triggers (replacing an earlier installation), give the existing string keys
    their local ids, and record it. The caller has run the check (:mod:`regsync.db.mapping.check`) and refuses on
    its errors.

    Raises:
        InstallError: the reference mapping (its triggers are the migrations'), or a statement failed (the
            installation is rolled back where the engine allows).
    """
    if mapping.name == REFERENCE:
        raise InstallError("the reference mapping's tables and triggers are made by regsync's migrations "
                           "(regsync db upgrade), not installed")
    try:
        with engine.begin() as conn:
            place = place_of(conn, platform_schema)
            before = installed(conn)
            if before is not None:
                _drop(conn, before.objects, before.place)
            keys = key_columns(conn, mapping, place)
            statements = install_ddl(mapping, place, keys)
            objects = installed_objects(mapping, place)
            try:
                for stmt in statements:
                    conn.execute(text(stmt))
            except Exception:
                if place.dialect == "mysql":  # DDL committed statement by statement: take away what was made
                    _drop(conn, objects, place)
                raise
            backfill_keys(conn, mapping, place)
            now = utcnow().replace(microsecond=0).isoformat()
            digest = fingerprint(statements)
            record = {"mapping": mapping.model_dump(mode="json", by_alias=True), "fingerprint": digest,
                      "place": {"dialect": place.dialect, "own": place.own, "platform": place.platform,
                                "prefix": place.prefix},
                      "objects": objects, "installed_at": now,
                      "keys": {kind: asdict(col) for kind, col in keys.items()}}
            t = StoreMeta.__table__
            conn.execute(t.delete().where(t.c.name == INSTALLED))
            conn.execute(t.insert().values(name=INSTALLED, value=json.dumps(record, ensure_ascii=False),
                                           updated_at=utcnow()))
            return Installed(mapping, place, digest, objects, now, keys)
    except InstallError:
        raise
    except Exception as exc:
        raise InstallError(f"installing mapping {mapping.name} failed: {getattr(exc, 'orig', None) or exc}") from exc


def uninstall(engine: Engine) -> Installed | None:
    """Drop the installed views and triggers and forget the installation; returns what was installed (``None``:
    nothing was). The platform's tables are left exactly as they were before the install; regsync's own tables
    (outbox, links, ``platform_key``…) stay, for a later install."""
    with engine.begin() as conn:
        before = installed(conn)
        if before is None:
            return None
        _drop(conn, before.objects, before.place)
        t = StoreMeta.__table__
        conn.execute(t.delete().where(t.c.name == INSTALLED))
        return before


def require_installed(conn: Connection, mapping_name: str, *, platform_schema: str = "") -> TriggerStatus:
    """Check, before a run, that the store's platform is the configured one (``database.mapping``).

    Args:
        conn: a connection to the store.
        mapping_name: ``database.mapping`` (a shipped mapping's name or a file's path).
        platform_schema: ``database.platform_schema``.

    Returns:
        The trigger status (its ``current`` is false when the mapping's file changed since it was installed: the run
        goes on with the installed mapping, whose triggers, views and writes agree, and ``regsync status`` says so).

    Raises:
        InstallError: a mapped platform's mapping is not installed, or another one is, or the reference tables are
            configured while a mapping is installed.
        regsync.db.mapping.load.MappingError: the mapping's file cannot be read.
    """
    inst = installed(conn)
    if mapping_name == REFERENCE:
        if inst is not None:
            raise InstallError(f"mapping {inst.mapping.name} is installed on this store, but database.mapping "
                               "(REGSYNC_MAPPING) is 'reference': set it to the installed mapping's file, or run "
                               "regsync platform uninstall")
        return TriggerStatus(REFERENCE, REFERENCE, True)
    name, current = configured_fingerprint(mapping_name, place_of(conn, platform_schema), inst.keys if inst else None)
    if inst is None:
        raise InstallError(f"mapping {name} is not installed on this store: run regsync platform check, "
                           "then regsync platform install")
    if inst.mapping.name != name:
        raise InstallError(f"mapping {inst.mapping.name} is installed on this store, not {name} "
                           "(database.mapping): install the configured one, or configure the installed one")
    return _status(conn, inst, name, inst.fingerprint == current)


def _present(conn: Connection, place: Place, obj: dict[str, str]) -> bool:
    name, kind = obj["name"], obj["type"]
    d = place.dialect
    if d == "sqlite":
        catalog_name = place.prefix + name if kind == "view" else name
        return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = :t AND name = :n"),
                            {"t": kind, "n": catalog_name}).first() is not None
    if d == "postgresql":
        if kind == "trigger":
            return conn.execute(text("SELECT 1 FROM pg_trigger WHERE tgname = :n AND NOT tgisinternal"),
                                {"n": name}).first() is not None
        if kind == "function":
            return conn.execute(text("SELECT 1 FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace "
                                     "WHERE p.proname = :n AND s.nspname = :s"),
                                {"n": name, "s": place.own}).first() is not None
        return conn.execute(text("SELECT 1 FROM information_schema.views WHERE table_name = :n "
                                 "AND table_schema = :s"), {"n": name, "s": place.own}).first() is not None
    if kind == "trigger":
        return conn.execute(text("SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = :n"),
                            {"n": name}).first() is not None
    return conn.execute(text("SELECT 1 FROM information_schema.VIEWS WHERE TABLE_NAME = :n AND TABLE_SCHEMA = :s"),
                        {"n": name, "s": place.own}).first() is not None


def status(conn: Connection, mapping: PlatformMapping, *, platform_schema: str = "") -> TriggerStatus:
    """Whether ``mapping`` (the configured one) is what is installed on ``conn``'s store, and every installed object
    is still in the catalog. The reference mapping is always current (its triggers are the migrations')."""
    if mapping.name == REFERENCE:
        return TriggerStatus(mapping.name, REFERENCE, True)
    inst = installed(conn)
    if inst is None:
        return TriggerStatus(mapping.name, None, False)
    place = place_of(conn, platform_schema)
    return _status(conn, inst, mapping.name, inst.fingerprint == fingerprint(install_ddl(mapping, place, inst.keys)))


def _status(conn: Connection, inst: Installed, mapping_name: str, current: bool) -> TriggerStatus:
    missing = [f"{o['type']} {o['name']}" for o in inst.objects if not _present(conn, inst.place, o)]
    return TriggerStatus(mapping_name, inst.mapping.name, current, missing, inst.installed_at)

