"""The sandbox registry's reads (§5.2): a record by id or by ``clientRef``, lookups, pages of a collection, the
exports' snapshots, and every record of a kind (for the tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import select

from regsync.sandbox.store import TABLES, Store, counters, foreign, ref_key


class RecordReads:
    """The reads of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attribute below).

    Attributes:
        store: the database.
    """

    store: Store

    # --- reads (§5.2)
    def get(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """The wire record, or ``None``."""
        table = TABLES[kind]
        with self.store.read() as conn:
            doc = conn.execute(select(table.c.doc).where(table.c.id == record_id)).scalar_one_or_none()
        return None if doc is None else orjson.loads(doc)

    def by_client_ref(self, kind: str, client_id: str, client_ref: str) -> list[dict[str, Any]]:
        """``GET /{collection}?clientRef=``: 0 or 1 record this client created with that ``clientRef``."""
        table = TABLES[kind]
        with self.store.read() as conn:
            doc = conn.execute(
                select(table.c.doc).where(table.c.ref_key == ref_key(client_id, client_ref))
            ).scalar_one_or_none()
        return [] if doc is None else [orjson.loads(doc)]

    def lookup(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        """``POST /lookup``: the records with these ids that exist."""
        table = TABLES[kind]
        with self.store.read() as conn:
            docs = conn.execute(select(table.c.doc).where(table.c.id.in_(set(ids)))).scalars().all()
        return [orjson.loads(d) for d in docs]

    def list_page(
        self, kind: str, *, province: str | None, org_id: str | None, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """A page of records ordered by id (§5.3 "other list calls"): the province's, or an org's members.

        Returns:
            ``(records, nextCursor, hasMore)``; the cursor is the last id returned.
        """
        table = TABLES[kind]
        q = select(table.c.id, table.c.doc).order_by(table.c.id).limit(limit + 1)
        if org_id is not None:
            q = q.where(table.c.org_id == org_id)
        if province is not None:
            q = q.where(table.c.province == province)
        if cursor:
            q = q.where(table.c.id > cursor)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [orjson.loads(r.doc) for r in rows], (rows[-1].id if rows else cursor), more

    # --- exports (§5.2)
    def open_export(
        self, kind: str, province: str, page: int = 2000
    ) -> tuple[int, Iterator[bytes], Callable[[], None]]:
        """Open one consistent snapshot of the collection's records of ``province``.

        Returns:
            ``(cursor, chunks, close)``: the feed head at the snapshot (``X-Snapshot-Cursor``), an iterator
            of NDJSON chunks in ascending id as bytes, read in pages of ``page`` records inside the same read
            transaction, and the function that ends the transaction (call it in every case).
        """
        table = TABLES[kind]
        conn = self.store.read()
        tx = conn.begin()
        try:
            cursor = conn.execute(select(counters.c.value).where(counters.c.name == "seq")).scalar_one()
            # test support: records of a type the sandbox does not implement, planted into this export
            planted = list(conn.execute(
                select(foreign.c.id, foreign.c.doc)
                .where(foreign.c.collection == kind, foreign.c.province == province)
                .order_by(foreign.c.id)
            ).all())
        except BaseException:
            tx.rollback()
            conn.close()
            raise

        def lines() -> Iterator[bytes]:
            last = None
            while True:
                q = select(table.c.id, table.c.doc).where(table.c.province == province)
                if last is not None:
                    q = q.where(table.c.id > last)
                rows = list(conn.execute(q.order_by(table.c.id).limit(page)).all())
                if not rows:
                    break
                last = rows[-1].id
                if planted:  # in id order with the page (ids compared as bytes, §5.2)
                    full = len(rows) == page
                    take = [p for p in planted if not full or p.id.encode() < last.encode()]
                    del planted[: len(take)]
                    rows = sorted(rows + take, key=lambda r: r.id.encode())
                yield ("\n".join(r.doc for r in rows) + "\n").encode()
            if planted:
                yield ("\n".join(r.doc for r in planted) + "\n").encode()

        closed: list[bool] = []

        def close() -> None:
            if not closed:
                closed.append(True)
                tx.rollback()
                conn.close()

        return cursor, lines(), close

    # --- for the tests
    def all_records(self, kind: str) -> list[dict[str, Any]]:
        """Every record of a kind, by id (for the tests)."""
        table = TABLES[kind]
        with self.store.read() as conn:
            return [orjson.loads(d) for d in conn.execute(select(table.c.doc).order_by(table.c.id)).scalars()]
