"""The registry client's writes (registry-api.md §4, §5.1): operations in batches, split when too large, and
the single-record calls (create, update, delete, join, leave, revoke, correct), from Python names and regsync's
types."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import structlog

from regsync.registry import errors as E
from regsync.registry import wire
from regsync.registry.exchange import Call, Exchange
from regsync.registry.reads import decode_answer
from regsync.registry.stats import ClientStats
from regsync.registry.types import Kind, Operation, OperationResult, Unknowns

log = structlog.get_logger(__name__)

#: Operations in one ``POST /batch`` (registry-api.md §3).
MAX_BATCH = 500
#: The registry's request body limit, bytes (registry-api.md §3).
MAX_BODY_BYTES = 5 * 1024 * 1024


class RecordWrites:
    """The writes of :class:`~regsync.registry.client.RegistryClient` (a part of it: it gives the attributes below).

    Attributes:
        stats: the client's counters.
    """

    stats: ClientStats
    _exchange: Exchange

    def batch(self, ops: Sequence[Operation]) -> list[OperationResult]:
        """Send operations with ``POST /batch`` (registry-api.md §5.1); one result per operation, in order.

        Operations are sent in bodies of at most 500 (§3) and under 5 MiB; each body has its own batch
        ``Idempotency-Key``, kept across the retries of that body. A 413 (``BATCH_TOO_LARGE``,
        ``BODY_TOO_LARGE`` or the gateway's page) splits the body in halves, recursively; an operation
        too large alone gets a result of status 413 ``BODY_TOO_LARGE``. Results are independent: a batch
        may succeed in part; :func:`regsync.registry.errors.error_for_result` classifies each.

        Args:
            ops: the operations; references in ``fields`` hold registry ids.

        Returns:
            A list of :class:`OperationResult`, ``len(ops)`` long, in the order of ``ops``.

        Raises:
            ValueError: an operation is incomplete (:func:`regsync.registry.wire.encode_operation`).
            TransientError: the registry stayed unavailable (nothing is known of that body's operations;
                resending them with their own ``idempotency_key`` is safe).
            AuthError: credentials or signing are refused (systemic).
            RequestRejected: the batch call itself was refused (e.g. ``BAD_REQUEST``).
        """
        encoded = [wire.encode_operation(op) for op in ops]
        results: list[OperationResult] = []
        for start in range(0, len(ops), MAX_BATCH):
            stop = start + MAX_BATCH
            results.extend(self._batch_part(list(ops[start:stop]), encoded[start:stop]))
        return results

    def _batch_part(self, ops: list[Operation], encoded: list[dict[str, Any]]) -> list[OperationResult]:
        body = orjson.dumps({"operations": encoded})
        try:
            if len(body) > MAX_BODY_BYTES and len(ops) > 1:
                raise E.BodyTooLarge(f"{len(body)} bytes is over the registry's limit, split before sending")
            return self._post_batch(ops, body)
        except E.TooLarge as exc:
            if len(ops) == 1:
                return [OperationResult(status=413, code=exc.code or "BODY_TOO_LARGE", message=exc.message)]
            self.stats.splits += 1
            mid = len(ops) // 2
            log.info("registry.batch.split", operations=len(ops), reason=exc.code, gateway=exc.from_gateway)
            return self._batch_part(ops[:mid], encoded[:mid]) + self._batch_part(ops[mid:], encoded[mid:])

    def _post_batch(self, ops: list[Operation], body: bytes) -> list[OperationResult]:
        answer = self._exchange.request(Call("batch", "POST", "/batch", body=body, idempotency_key=_new_key()))
        results = answer.data.get("results") if isinstance(answer.data, dict) else None
        if not isinstance(results, list) or len(results) != len(ops):
            raise E.MalformedAnswer(
                f"the batch answer holds {len(results or [])} results for {len(ops)} operations",
                status=answer.status,
            )
        unknown = Unknowns()
        try:
            decoded = [wire.decode_result(op.kind, r, unknown=unknown) for op, r in zip(ops, results, strict=True)]
        except (ValueError, TypeError) as exc:
            raise E.MalformedAnswer(f"a batch result does not follow the contract: {exc}") from exc
        self.stats.note_unknown(unknown, "batch")
        return decoded

    def create(
        self, kind: Kind, fields: dict[str, Any], *, client_ref: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create a record: ``POST /{collection}`` (registry-api.md §5.1).

        Args:
            kind: ``org``, ``volunteer``, ``activity`` or ``service_record``.
            fields: writable fields, Python names and types.
            client_ref: the local id (``clientRef``, ≤ 64 chars).
            idempotency_key: keep the same across calls that retry this create; a fresh one if ``None``.

        Returns:
            The created record (decoded).

        Raises:
            Duplicate: ``DUPLICATE_*`` with ``existing_id``; other :class:`RegistryError` as §7.
        """
        if kind not in wire.CREATABLE:
            raise ValueError(f"a {kind} is not created with POST; use join()")
        body = wire.encode_body(kind, fields, client_ref=client_ref)
        return self._write(
            "create",
            "POST",
            wire.record_path(kind),
            body,
            kind,
            idempotency_key=idempotency_key or _new_key(),
        )

    def update(
        self, kind: Kind, registry_id: str, fields: dict[str, Any], *, if_match: int
    ) -> dict[str, Any]:
        """Replace a record's mutable fields: ``PUT /{collection}/{id}`` with ``If-Match`` (§5.1).

        Raises:
            VersionMismatch: stale ``if_match``, with ``current`` decoded; other errors as §7.
        """
        body = wire.encode_body(kind, fields)
        return self._write(
            "update", "PUT", wire.record_path(kind, registry_id), body, kind, if_match=if_match
        )

    def delete(self, kind: Kind, registry_id: str, *, if_match: int) -> dict[str, Any]:
        """Deregister a volunteer or dissolve an org: ``DELETE /{collection}/{id}`` (§5.1).

        Returns:
            The record, now ``DEREGISTERED`` or ``DISSOLVED``.
        """
        if kind not in ("org", "volunteer"):
            raise ValueError(f"a {kind} is not deleted (registry-api.md §5.1)")
        return self._write(
            "delete", "DELETE", wire.record_path(kind, registry_id), None, kind, if_match=if_match
        )

    def join(self, org_id: str, volunteer_id: str, joined_on: Any) -> dict[str, Any]:
        """Join a volunteer to an org: ``PUT /orgs/{orgId}/members/{volunteerId}`` (§4.3); idempotent.

        Args:
            org_id: the org's registry id.
            volunteer_id: the volunteer's registry id.
            joined_on: a :class:`datetime.date`.
        """
        body = {"joinedOn": wire.encode_date(joined_on)}
        return self._write("join", "PUT", wire.membership_path(org_id, volunteer_id), body, "membership")

    def leave(self, org_id: str, volunteer_id: str, left_on: Any = None) -> dict[str, Any]:
        """End a membership: ``DELETE /orgs/{orgId}/members/{volunteerId}`` (§4.3).

        Args:
            org_id: the org's registry id.
            volunteer_id: the volunteer's registry id.
            left_on: a :class:`datetime.date`; ``None`` lets the registry take today in +08:00.
        """
        body = None if left_on is None else {"leftOn": wire.encode_date(left_on)}
        return self._write("leave", "DELETE", wire.membership_path(org_id, volunteer_id), body, "membership")

    def revoke(self, registry_id: str, reason: str, kind: Kind = "service_record") -> dict[str, Any]:
        """Revoke a record: ``POST /{collection}/{id}:revoke`` (§4.5; v1.1 §4.7–§4.9 for training records,
        commendations and evaluations); idempotent.

        Raises:
            ValueError: ``kind`` is not revoked (:data:`regsync.registry.wire.REVOCABLE`).
        """
        return self._write("revoke", "POST", wire.revoke_path(registry_id, kind), {"reason": reason}, kind)

    def correct(
        self,
        kind: Kind,
        registry_id: str,
        fields: dict[str, Any],
        *,
        client_ref: str,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Correct a record in one step: ``POST /{collection}/{id}:correct`` (registry-api.md §4.5, v1.1).

        In one transaction the registry revokes the ACCEPTED record ``registry_id`` (``revokeReason``
        ``"corrected"``) and accepts the new one, or changes nothing and answers the new record's refusal as a
        create would: the old record's hours stay counted until a replacement is accepted.

        Args:
            kind: ``service_record`` (:data:`regsync.registry.wire.CORRECTABLE`).
            registry_id: the record corrected (must be ACCEPTED).
            fields: the whole new record's writable fields, Python names and types (hours in hundredths,
                timestamps naive UTC, references as registry ids).
            client_ref: the new record's own ``clientRef`` (≤ 64 chars).
            idempotency_key: keep the same across calls that retry this correction (a lost answer is then
                replayed, never applied twice); a fresh one if ``None``.

        Returns:
            The new record (decoded), whose ``corrects_id`` is ``registry_id``.

        Raises:
            ValueError: ``kind`` is not corrected in one step.
            InvalidState: 409, the record corrected is not ACCEPTED (revoked, or corrected already).
            NotFound: 404, no record ``registry_id``.
            NotOwner: 403, another client's record.
            ValidationFailed: 422 field errors of the new record (``NOT_ACTIVE``, ``INVALID_HOURS``…).
            DailyHoursExceeded: 422, counted without the old record.
            Duplicate: 409 ``DUPLICATE_CLIENT_REF`` with ``existing_id``. Other :class:`RegistryError` as §7.
        """
        path = wire.correct_path(kind, registry_id)
        body = wire.encode_body(kind, fields, client_ref=client_ref)
        return self._write("correct", "POST", path, body, kind, idempotency_key=idempotency_key or _new_key())

    def _write(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        kind: Kind,
        *,
        if_match: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        call = Call(
            endpoint,
            method,
            path,
            body=b"" if body is None else orjson.dumps(body),
            idempotency_key=idempotency_key or _new_key(),
            if_match=if_match,
            kind=kind,
        )
        answer = self._exchange.request(call)
        return decode_answer(kind, answer, self.stats)


def _new_key() -> str:
    """A fresh ``Idempotency-Key`` (32 hex chars, ≤ 64 as §5.1 asks)."""
    return uuid.uuid4().hex
