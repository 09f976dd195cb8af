"""This store's history of its own writes, as the flows consult it: the creates it sent (under which
``clientRef``, since when).

A record made under this client's credentials is this store's own only when this store sent a create under its
``clientRef`` (:class:`~regsync.db.models.CreateSent`; issue 12, item 4): another store under the same credentials
may have made it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select

from regsync.db.models import CreateSent


def create_sent(conn: Connection, kind: str, client_ref: str | None) -> tuple[bool, dt.datetime | None]:
    """Whether this store sent a create of ``kind`` under ``client_ref`` (not one recorded as another store's),
    and when it first did (naive UTC, local clock; ``None`` when not recorded)."""
    found = conn.execute(select(CreateSent.first_sent_at).where(
        CreateSent.entity == kind, CreateSent.client_ref == client_ref, CreateSent.how != "other_store")).first()
    at = None if found is None else found[0]
    at = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    return found is not None, at


__all__ = ["create_sent"]
