"""The sandbox registry's clients (§2): their credentials, held in memory, and the nonces they have used."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import delete, select

from regsync.sandbox.store import ClientCredential, Store, clients, idempotency, nonces
from regsync.sandbox.writes import IDEMPOTENCY_TTL_S

#: How long a nonce is remembered, seconds (§2: a nonce seen in the last 10 minutes is a replay).
NONCE_TTL_S = 600


class Clients:
    """The clients of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attributes below, and
    calls :meth:`__init__` once they are set).

    Attributes:
        store: the database.
        clock: the registry's clock, Unix seconds.
    """

    store: Store
    clock: Callable[[], float]

    def __init__(self) -> None:
        """Read the clients into memory (``store`` is set)."""
        self._clients: dict[str, ClientCredential] = {}
        self._clients_lock = threading.Lock()
        self._last_prune = 0.0
        self.reload_clients()

    # --- clients
    def reload_clients(self) -> None:
        """Read the clients table into memory."""
        with self.store.read() as conn:
            rows = conn.execute(select(clients)).all()
        with self._clients_lock:
            self._clients = {r.id: ClientCredential(r.id, r.secret, r.province, r.enabled) for r in rows}

    def client(self, client_id: str) -> ClientCredential | None:
        """The client with this id, or ``None``."""
        return self._clients.get(client_id)

    def upsert_client(self, cred: ClientCredential) -> None:
        """Add or replace a client (id, secret, province, enabled)."""
        with self.store.write() as conn:
            conn.execute(clients.delete().where(clients.c.id == cred.client_id))
            conn.execute(
                clients.insert().values(
                    id=cred.client_id, secret=cred.client_secret, province=cred.province, enabled=cred.enabled
                )
            )
        self.reload_clients()

    # --- nonces (§2)
    def use_nonce(self, client_id: str, nonce: str) -> bool:
        """Record a nonce; ``False`` when it was seen in the last 10 minutes (``NONCE_REPLAYED``)."""
        now = self.clock()
        with self.store.write() as conn:
            seen = conn.execute(
                select(nonces.c.seen_at).where(nonces.c.client_id == client_id, nonces.c.nonce == nonce)
            ).scalar_one_or_none()
            if seen is not None and now - seen < NONCE_TTL_S:
                return False
            if seen is not None:
                conn.execute(nonces.delete().where(nonces.c.client_id == client_id, nonces.c.nonce == nonce))
            conn.execute(nonces.insert().values(client_id=client_id, nonce=nonce, seen_at=now))
            if now - self._last_prune > 60:
                self._last_prune = now
                conn.execute(delete(nonces).where(nonces.c.seen_at < now - NONCE_TTL_S))
                conn.execute(delete(idempotency).where(idempotency.c.created_at < now - IDEMPOTENCY_TTL_S))
        return True
