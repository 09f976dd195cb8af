"""Whose registry record is it (issue 12, item 4): a record the registry holds under this client's ``clientRef``, or
with a natural key this client's credentials created, is linked only when this store's own history says it sent
that create; otherwise another store under the same credentials made it, and it is failed as
:data:`~regsync.flows.relay_items.OTHER_STORE_CODE` for an operator, never linked or written over. Too many such
records halt the relay (a second store is pushing under the province's credentials).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import Engine

from regsync.db import links
from regsync.domain.projection import canonical, identity_mismatch, identity_of
from regsync.flows.relay_items import OTHER_STORE_CODE, Item, NotSentHere, RelayHalted
from regsync.flows.relay_outcomes import Outcomes
from regsync.registry.port import RegistryPort
from regsync.settings import Settings

log = structlog.get_logger(__name__)


class OtherStores:
    """This store's claim to the registry records it meets, for one pass.

    Args:
        engine: the local store (``create_sent``, this store's history of creates).
        client: the registry client (its ``clock_offset_s``, when it has one).
        settings: regsync's settings (``registry.client_id``, ``relay.other_store_limit``, ``hash_key``).
        not_sent_here: :func:`regsync.flows.outbound.not_sent_here`, the rule that decides.
        failed_before: records failed as another store's before this pass (they count toward the limit).
    """

    def __init__(self, engine: Engine, client: RegistryPort, settings: Settings, not_sent_here: NotSentHere, *,
                 failed_before: int) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.not_sent_here = not_sent_here
        #: Records failed as another store's (:data:`OTHER_STORE_CODE`), this pass's and before.
        self.count = failed_before

    def own_create(self, it: Item, rec: dict[str, Any]) -> str | None:
        """Whether the registry's record ``rec``, found under this client's ``clientRef`` of ``it`` (or holding
        the natural key of ``it`` with a ``clientRef`` of this client), is this store's own earlier create.

        It is only when this store's history says it sent a create under that ``clientRef`` before (``it``'s
        ``sent_here``, set when the create was noted or looked up) and the registry did not make the record before
        that first send (``createdAt``, registry-api.md §1, against ``first_sent_at`` with the client's clock
        offset and :data:`regsync.flows.outbound.CLOCK_MARGIN_S`).

        Returns:
            ``None`` when it is this store's own; else why not, in words for operators.
        """
        return self.not_sent_here(it.sent_here, it.first_sent_at, rec, self.client)

    def why_not_ours(self, kind: str, client_ref: str, rec: dict[str, Any]) -> str | None:
        """Whether the registry's record ``rec`` under this client's ``client_ref`` is this store's own create, by
        this store's history (``create_sent``) of ``kind``.

        Returns:
            ``None`` when it is; else why not, in words for operators.
        """
        with self.engine.connect() as conn:
            known = links.sent_creates(conn, kind, [client_ref])
        return self.not_sent_here(client_ref in known, known.get(client_ref), rec, self.client)

    def refuse_another_record(self, it: Item, rec: dict[str, Any], base: dict[str, Any], outcomes: Outcomes) -> bool:
        """Fail ``it`` (code :data:`OTHER_STORE_CODE`) and return True when the registry record ``rec`` found under
        its ``clientRef`` (``DUPLICATE_CLIENT_REF``, ``GET ?clientRef=``, registry-api.md §5.1–§5.2) is not this
        store's own earlier create (:meth:`own_create`): it is then neither linked nor written over. A record
        this store did send is linked and brought to the local state, whatever changed locally since (the
        recovery from a lost answer).

        A ``clientRef`` is the local id (design.md, flow 1), so this is what a second or rebuilt local store under
        the same client credentials meets; the operator's way out is in deploy/RUNBOOK.md ("A record fails with
        CLIENT_REF_TAKEN").

        Args:
            it: the record's work item.
            rec: the registry's record (decoded).
            base: ``rec`` in canonical form.
            outcomes: where the failure is recorded.
        """
        why = self.own_create(it, rec)
        if why is None:
            return False
        desired = it.desired
        if desired is None:
            raw = it.desired_raw or (it.op.fields if it.op is not None else None) or {}
            desired = canonical(identity_of(it.kind, raw), self.settings.hash_key)
        differ = identity_mismatch(it.kind, desired, base)
        what = f"another {it.kind} ({', '.join(differ)} differ)" if differ else f"the same {it.kind}"
        self._refuse(it, rec, outcomes,
                     f"the registry's record {rec['id']} under this record's clientRef is {what}, made under this "
                     f"client's credentials by another store: {why}. Not linked, nothing written over it",
                     differ=differ, client_ref=rec.get("client_ref") or (it.op.client_ref if it.op else None))
        return True

    def refuse_another_stores(self, kind: str, it: Item, rec: dict[str, Any], outcomes: Outcomes) -> bool:
        """Fail ``it`` and return True when the registry record ``rec`` that holds its natural key
        (``DUPLICATE_ID_NUMBER``, ``DUPLICATE_USCC``) was created by this client (its ``ownerClientId``, with a
        ``clientRef``) under a ``clientRef`` this store never sent: another store under the same credentials
        made it, and linking it would push this store's contact and descriptive fields over it (issue 12, item
        4). A record of the portal or of another client is linked as before (nothing pushed over it)."""
        own_id = self.settings.registry.client_id
        ref = rec.get("client_ref")
        if not own_id or not ref or rec.get("owner_client_id") != own_id:
            return False
        why = self.why_not_ours(kind, ref, rec)
        if why is None:
            return False  # this store's own record, under another local row's clientRef
        self._refuse(it, rec, outcomes,
                     f"the registry's record {rec['id']} with this {kind}'s natural key was made under this client's "
                     f"credentials by another store (clientRef {ref}: {why}). Not linked, nothing written over it",
                     differ=[])
        return True

    def _refuse(self, it: Item, rec: dict[str, Any], outcomes: Outcomes, message: str, *,
                differ: list[str], client_ref: str | None = None) -> None:
        """Fail ``it`` as another store's record, with an alarm; count it toward
        ``settings.relay.other_store_limit`` (:meth:`halt_if_too_many`). ``client_ref``: this store's
        ``clientRef`` under which ``rec`` was found, whose send is then no longer counted as this store's create
        (``create_sent.how = 'other_store'``)."""
        outcomes.fail(it, OTHER_STORE_CODE, message)
        self.count += 1
        if client_ref is not None:
            # the send under this clientRef no longer counts as this store's create: the record under it is
            # another store's (the pull and later retries read it so), until an operator says otherwise
            with self.engine.begin() as conn:
                links.mark_other_store(conn, it.kind, client_ref)
        log.error("a registry record made under this client's credentials by another store: not linked",
                  kind=it.kind, local_id=it.local_id, registry_id=rec["id"], client_ref=rec.get("client_ref"),
                  differ=differ, alarm=True)

    def halt_if_too_many(self) -> None:
        """Halt the relay (:class:`RelayHalted`, an alarm) once ``settings.relay.other_store_limit`` records are
        failed as another store's (:data:`OTHER_STORE_CODE`), counting those failed before this pass: a second
        store is pushing under the province's credentials, and each further create would meet another.

        Raises:
            RelayHalted: the limit is reached.
        """
        limit = self.settings.relay.other_store_limit
        if limit and self.count >= limit:
            message = (f"{self.count} records met registry records made under this client's credentials by "
                       f"another store ({OTHER_STORE_CODE}, limit {limit}, REGSYNC_OTHER_STORE_LIMIT): relay halted. "
                       "A second store may be pushing under these credentials; see deploy/RUNBOOK.md")
            log.error("relay halted: registry records of another store under this client's credentials",
                      records=self.count, limit=limit, alarm=True)
            raise RelayHalted(message)


__all__ = ["OtherStores"]
