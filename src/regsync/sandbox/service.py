"""The sandbox registry: its state and rules over a :class:`~regsync.sandbox.store.Store`, as one object made of
its parts, each a class of its own module.

=================================================  =============================================================
:class:`~regsync.sandbox.clients.Clients`          the clients' credentials, held in memory, and their nonces (§2)
:class:`~regsync.sandbox.writes.RecordWrites`      one write call, ``POST /batch``, idempotency keys (§5.1)
:class:`~regsync.sandbox.reads.RecordReads`        a record, ``clientRef``, lookups, list pages, exports (§5.2)
:class:`~regsync.sandbox.feed.ChangeFeed`          the change feed and its retention (§5.3)
:class:`~regsync.sandbox.admin.AdminWrites`        seeding and foreign records (admin endpoints, no rules)
=================================================  =============================================================

The write operations themselves (§4, §5.1) are :mod:`regsync.sandbox.operations`, and what a call is and answers
(:class:`Ctx`, :class:`~regsync.sandbox.calls.Outcome`, :class:`~regsync.sandbox.calls.Refusal`)
:mod:`regsync.sandbox.calls`.
"""

from __future__ import annotations

from collections.abc import Callable

from regsync.sandbox.admin import AdminWrites
from regsync.sandbox.calls import Ctx
from regsync.sandbox.clients import Clients
from regsync.sandbox.feed import ChangeFeed
from regsync.sandbox.reads import RecordReads
from regsync.sandbox.store import Store
from regsync.sandbox.writes import BatchOp, RecordWrites

# BatchOp and Ctx are what a caller of Registry.batch builds (bench/sandbox_batch.py imports them from here)
__all__ = ["BatchOp", "Ctx", "Registry"]


class Registry(Clients, RecordWrites, RecordReads, ChangeFeed, AdminWrites):
    """The sandbox registry's state and rules over a :class:`Store`.

    Its calls are those of its parts (module docstring): ``reload_clients``, ``client``, ``upsert_client``,
    ``use_nonce``; ``write``, ``batch``; ``get``, ``by_client_ref``, ``lookup``, ``list_page``, ``open_export``,
    ``all_records``; ``head``, ``prune_feed``, ``changes_page``; ``bulk_insert``, ``record_foreign``.

    Args:
        store: the database.
        clock: the registry's clock, Unix seconds (faults may offset it).
        feed_retention_s: how long changes are kept (§5.3: 7 days), read on every feed call.
    """

    def __init__(
        self, store: Store, clock: Callable[[], float], feed_retention_s: Callable[[], float]
    ) -> None:
        self.store = store
        self.clock = clock
        self.feed_retention_s = feed_retention_s
        ChangeFeed.__init__(self)
        Clients.__init__(self)  # reads the clients table
