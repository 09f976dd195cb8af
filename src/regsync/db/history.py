"""This store's history of its own writes, as the flows consult it: the keys it used again, and the creates it
sent (under which ``clientRef``, since when).

* A key deleted and inserted again (design.md's mapping table) is marked by a ``reuse`` outbox row until the new
  record is created in the registry: until then its link still names the record the key held before, and neither
  the poller, the reconcile nor the relay may take that link for the new row's (:func:`reused_keys`).
* A record made under this client's credentials is this store's own only when this store sent a create under its
  ``clientRef`` (:class:`~regsync.db.models.CreateSent`) and the registry did not make it before that first send
  (:func:`create_sent`, :func:`not_sent_here`; issue 12, item 4): another store under the same credentials may
  have made it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, text

from regsync.db.models import CreateSent, Outbox
from regsync.db.own import own_sql
from regsync.db.query import chunk_size, chunks, in_values

#: Seconds of clock difference allowed when a registry record's ``createdAt`` is compared with this store's first
#: send under its ``clientRef`` (registry-api.md §2 accepts a request whose timestamp is off by up to 300 s).
CLOCK_MARGIN_S = 300.0


def reused_keys(conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The keys among ``local_ids`` that were deleted and used again for another record whose registry record is
    not created yet (design.md's mapping table, "a key deleted and inserted again"): their link still names the
    record the key held before, which is not this row's.

    Args:
        conn: a connection to the local store.
        kind: the record kind (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``).
        local_ids: local ids of that kind.

    Returns:
        Local id → the ids of its ``reuse`` outbox rows not yet done (any state but ``sent``), for the reused keys
        only (read through the partial index ``ix_outbox_reuse``).
    """
    out: dict[int, list[int]] = defaultdict(list)
    ob = Outbox.__table__
    ids = sorted(set(local_ids))
    o = own_sql(conn, "outbox")
    reused = text(f"{o}.op = 'reuse' AND {o}.state <> 'sent'")  # literal: the partial index's terms
    for chunk in chunks(ids, chunk_size(conn)):
        for rid, lid in conn.execute(select(ob.c.id, ob.c.local_id).where(
                ob.c.entity == kind, in_values(conn, ob.c.local_id, chunk), reused)):
            out[int(lid)].append(int(rid))
    return {lid: tuple(sorted(rids)) for lid, rids in out.items()}


def create_sent(conn: Connection, kind: str, client_ref: str | None) -> tuple[bool, dt.datetime | None]:
    """Whether this store sent a create of ``kind`` under ``client_ref`` (not one recorded as another store's),
    and when it first did (naive UTC, local clock; ``None`` when not recorded)."""
    found = conn.execute(select(CreateSent.first_sent_at).where(
        CreateSent.entity == kind, CreateSent.client_ref == client_ref, CreateSent.how != "other_store")).first()
    at = None if found is None else found[0]
    at = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    return found is not None, at


def not_sent_here(sent: bool, first_sent_at: dt.datetime | None, rec: dict[str, Any], client: Any) -> str | None:
    """Why the registry's record ``rec`` under a ``clientRef`` of this client is not this store's own create, or
    ``None`` when it is (issue 12, item 4).

    Args:
        sent: this store's history (:class:`~regsync.db.models.CreateSent`) holds a create sent under that
            ``clientRef`` before.
        first_sent_at: when it was first sent (naive UTC, local clock), ``None`` for no age check (an operator's
            declaration, a backfill from a link).
        rec: the registry's record (decoded: ``created_at`` naive UTC, registry-api.md §1).
        client: the registry client (its ``clock_offset_s``, registry − local clock, when it has one).

    Returns:
        ``None`` when this store sent a create under it and the registry did not make the record before that first
        send (allowing :data:`CLOCK_MARGIN_S` and the clock offset); else the reason, for operators.
    """
    if not sent:
        return "this store never sent a create under that clientRef"
    created = rec.get("created_at")
    if first_sent_at is None or not isinstance(created, dt.datetime):
        return None
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    offset = float(getattr(client, "clock_offset_s", 0.0) or 0.0)
    if created < first_sent_at + dt.timedelta(seconds=offset - CLOCK_MARGIN_S):
        return (f"the registry made it at {created.isoformat(timespec='seconds')} UTC, before this store first sent "
                f"a create under that clientRef ({first_sent_at.isoformat(timespec='seconds')} UTC)")
    return None


__all__ = ["CLOCK_MARGIN_S", "create_sent", "not_sent_here", "reused_keys"]
