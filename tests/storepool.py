"""Migrated stores used again from one test to the next, on the database servers (PostgreSQL schemas, MariaDB
databases): what the ``engine`` fixture's tests share instead of migrating a new store each (each DDL statement
of a migration waits for the disk; migrating took most of such a test's time).

A test takes a migrated store (:meth:`StorePool.take`; the first ones are made and migrated); when it ends
(:meth:`StorePool.give_back`) the store goes back to the pool only if its schema is still exactly as migrated (its
tables, columns, indexes, constraints, triggers, routines and Alembic revision, read from the server's catalog and
compared with what they were just after the migration): its rows are deleted and its id counters set back, so that
the next test cannot tell it from a new one. A store whose schema a test changed (a downgrade, a foreign key
dropped, a table added) or that cannot be emptied is dropped. The pool's stores are dropped at the end of the
session (:meth:`StorePool.close`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, text

from regsync.db.migrate import upgrade
from regsync.db.session import make_engine


class StorePool:
    """The pool; an engine's kind fills in how a store is made, described, emptied and dropped."""

    #: Catalog queries that describe a store's schema (``:s`` is the store's name).
    CATALOG: Sequence[str] = ()

    def __init__(self, admin: Engine) -> None:
        self.admin = admin
        self.free: list[str] = []
        self.fingerprints: dict[str, str] = {}
        self.reused = self.dropped = 0

    # what each engine's pool says
    def make(self) -> str:
        """Make a new, empty store: its name."""
        raise NotImplementedError

    def url(self, name: str) -> str:
        raise NotImplementedError

    def empty(self, conn: Connection, name: str) -> None:
        """Delete every row of the store ``name`` but its Alembic revision, and set its id counters back."""
        raise NotImplementedError

    def drop(self, name: str) -> None:
        raise NotImplementedError

    # the pool
    def create(self) -> tuple[str, str]:
        """Make and migrate a new store: ``(url, name)``."""
        name = self.make()
        url = self.url(name)
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return url, name

    def take(self) -> tuple[str, str]:
        """A migrated store: ``(url, name)``."""
        if self.free:
            name = self.free.pop()
            return self.url(name), name
        url, name = self.create()
        self.fingerprints[name] = self.fingerprint(name)
        return url, name

    def give_back(self, name: str) -> None:
        """Put a test's store back in the pool, emptied, when its schema is as migrated; else drop it."""
        try:
            if name in self.fingerprints and self.fingerprint(name) == self.fingerprints[name]:
                with self.admin.connect() as conn:
                    self.empty(conn, name)
                self.free.append(name)
                self.reused += 1
                return
        except Exception:  # noqa: BLE001 — a store that cannot be emptied is dropped
            pass
        self.fingerprints.pop(name, None)
        self.dropped += 1
        self.drop(name)

    def close(self) -> None:
        """Drop the pool's stores."""
        for name in self.free:
            self.drop(name)
        self.free.clear()
        self.admin.dispose()

    def fingerprint(self, name: str) -> str:
        with self.admin.connect() as conn:
            parts = [sorted(tuple(map(str, r)) for r in conn.execute(text(q), {"s": name})) for q in self.CATALOG]
            parts.append([tuple(map(str, r)) for r in conn.execute(text(
                f"SELECT version_num FROM {name}.alembic_version"))])  # noqa: S608
        return hashlib.sha256(repr(parts).encode()).hexdigest()
