"""The sandbox registry's write calls (§5.1): one call in its own transaction, and ``POST /batch``, whose
operations (:mod:`regsync.sandbox.operations`) apply one by one and independently in one transaction; both
under idempotency keys, whose answers are kept for a day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from regsync.sandbox.calls import Ctx, Outcome, Refusal, fingerprint
from regsync.sandbox.operations import (
    op_correct,
    op_create,
    op_delete,
    op_join,
    op_leave,
    op_revoke,
    op_update,
    op_update_membership,
)
from regsync.sandbox.operations11 import correct_training_record, create11, revoke11, update11
from regsync.sandbox.rules11 import KINDS11
from regsync.sandbox.store import TABLES, Store, UnitOfWork, idempotency, ref_key, select_in

#: How long an idempotency key's answer is kept, seconds (§5.1: 24 hours).
IDEMPOTENCY_TTL_S = 24 * 3600
#: Statuses whose answers an idempotency key keeps (§5.1: calls carried out).
KEPT_STATUSES = frozenset({200, 201, 403, 404, 409, 412, 422})
#: The columns of a kept answer (§5.1), as :meth:`RecordWrites._kept` reads them.
_IDEM_NAMES = tuple(c.name for c in idempotency.columns)


@dataclass(slots=True)
class BatchOp:
    """One parsed operation of a ``POST /batch`` (§5.1)."""

    index: int
    op: Any  # as sent (any JSON value); checked against BATCH_OPS when the operation runs
    kind: Any  # as sent; checked against TABLES when the operation runs
    id: Any
    if_match: Any
    key: str | None
    body: Any


BATCH_OPS = {"create", "update", "delete", "revoke", "correct", "join", "leave"}


class RecordWrites:
    """The write calls of :class:`~regsync.sandbox.service.Registry` (a part of it: it gives the attribute below).

    Attributes:
        store: the database.
    """

    store: Store

    def _kept(self, u: UnitOfWork, client_id: str, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        floor = u.now - IDEMPOTENCY_TTL_S
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in select_in(u.conn, idempotency, _IDEM_NAMES, "key", chunk, client_id=client_id):
                if row.created_at >= floor:
                    found[row.key] = row
                else:  # expired: the key is free again
                    u.conn.execute(
                        idempotency.delete().where(
                            idempotency.c.client_id == client_id, idempotency.c.key == row.key
                        )
                    )
        return found

    def write(
        self,
        c: Ctx,
        op: Callable[[UnitOfWork], Outcome],
        *,
        key: str | None,
        fp: str,
        request_id: str,
        after_commit: Callable[[], None] | None = None,
    ) -> Outcome:
        """Run one write call in its own transaction, under an optional idempotency key (§5.1).

        Returns:
            The outcome; ``replayed`` is set when a kept answer was replayed.
        """
        with self.store.write() as conn:
            u = UnitOfWork(conn, c.now)
            if key is not None:
                kept = self._kept(u, c.client_id, [key]).get(key)
                if kept is not None:
                    if kept.fingerprint != fp:
                        return Outcome(
                            422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for another call"
                        )
                    return Outcome.from_stored(kept.status, kept.body)
            try:
                outcome = op(u)
            except Refusal as refusal:
                outcome = refusal.outcome
                u = UnitOfWork(conn, c.now)  # nothing of the refused call is written
            if key is not None and outcome.status in KEPT_STATUSES:
                u.idem_rows.append(
                    {
                        "client_id": c.client_id,
                        "key": key,
                        "fingerprint": fp,
                        "status": outcome.status,
                        "body": orjson.dumps(outcome.envelope(request_id)),
                        "created_at": c.now,
                    }
                )
            u.flush(c.stamp)
        return outcome

    def batch(self, c: Ctx, ops: list[BatchOp], request_id: str, *, key: str, fp: str) -> Outcome:
        """Run the operations of a ``POST /batch`` one by one and independently, in one transaction (§5.1).

        Args:
            c: who and when.
            ops: the parsed operations (≤ 500).
            request_id: the call's ``requestId`` (kept with the answers).
            key: the batch call's ``Idempotency-Key``; it protects this same body (``fp``) only.
            fp: the fingerprint of the raw batch body.

        Returns:
            200 with ``data.results`` (one item per operation, in order), or the replay of the batch call,
            or 422 ``IDEMPOTENCY_KEY_REUSED``.
        """
        with self.store.write() as conn:
            u = UnitOfWork(conn, c.now)
            keys = [o.key for o in ops if isinstance(o.key, str)]
            kept = self._kept(u, c.client_id, [key, *keys])
            if key in kept:
                if kept[key].fingerprint != fp:
                    return Outcome(
                        422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for another call"
                    )
                return Outcome.from_stored(kept[key].status, kept[key].body)
            self._prefetch(u, c, ops)
            used: dict[str, tuple[str, Outcome]] = {}
            results: list[dict[str, Any]] = []
            for o in ops:
                target = o.id if isinstance(o.id, str) else None
                op_fp = fingerprint(o.op, o.kind, o.id, o.if_match, o.body)
                if isinstance(o.key, str):
                    prior = used.get(o.key)
                    if prior is None and o.key in kept:
                        row = kept[o.key]
                        prior = (row.fingerprint, Outcome.from_stored(row.status, row.body))
                    if prior is not None:
                        if prior[0] != op_fp:
                            results.append(
                                Outcome(
                                    422,
                                    "IDEMPOTENCY_KEY_REUSED",
                                    "this idempotencyKey was used for another operation",
                                ).op_result(target)
                            )
                        else:
                            prior[1].replayed = True
                            results.append(prior[1].op_result(target))
                        continue
                try:
                    outcome = self._run_op(u, c, o)
                except Refusal as refusal:
                    outcome = refusal.outcome
                if isinstance(o.key, str) and outcome.status in KEPT_STATUSES:
                    used[o.key] = (op_fp, outcome)
                    u.idem_rows.append(
                        {
                            "client_id": c.client_id,
                            "key": o.key,
                            "fingerprint": op_fp,
                            "status": outcome.status,
                            "body": orjson.dumps(outcome.envelope(request_id)),
                            "created_at": c.now,
                        }
                    )
                results.append(outcome.op_result(target))
            answer = Outcome(200, "OK", f"{len(results)} operations", {"results": results})
            u.idem_rows.append(
                {
                    "client_id": c.client_id,
                    "key": key,
                    "fingerprint": fp,
                    "status": 200,
                    "body": orjson.dumps(answer.envelope(request_id)),
                    "created_at": c.now,
                }
            )
            u.flush(c.stamp)
        return answer

    def _run_op(self, u: UnitOfWork, c: Ctx, o: BatchOp) -> Outcome:
        if o.op not in BATCH_OPS or o.kind not in TABLES:
            raise Refusal(400, "BAD_REQUEST", f"unknown op {o.op!r} or type {o.kind!r}")
        if o.if_match is not None and (not isinstance(o.if_match, int) or isinstance(o.if_match, bool)):
            raise Refusal(400, "BAD_REQUEST", "ifMatch is the version number, an integer")
        if o.key is not None and (not isinstance(o.key, str) or not 1 <= len(o.key) <= 64):
            raise Refusal(400, "BAD_REQUEST", "idempotencyKey is a string of 1 to 64 characters")
        body = o.body if o.body is not None else {}
        if o.op == "create":
            if o.key is None:
                raise Refusal(400, "BAD_REQUEST", "every create carries its own idempotencyKey")
            return (create11 if o.kind in KINDS11 else op_create)(u, c, o.kind, body)
        if o.op == "update":
            if o.kind in KINDS11:
                return update11(u, c, o.kind, o.id, o.if_match, body)
            if o.kind == "membership":
                return op_update_membership(u, c, o.id, o.if_match, body)
            return op_update(u, c, o.kind, o.id, o.if_match, body)
        if o.op == "delete":
            return op_delete(u, c, o.kind, o.id, o.if_match)
        if o.op == "revoke":
            if o.kind == "serviceRecord":
                return op_revoke(u, c, o.id, body)
            if o.kind not in ("trainingRecord", "commendation", "evaluation"):
                raise Refusal(400, "BAD_REQUEST", "only service and training records, commendations and evaluations "
                                                  "are revoked")
            return revoke11(u, c, o.kind, o.id, body)
        if o.op == "correct":
            if o.kind not in ("serviceRecord", "trainingRecord"):
                raise Refusal(400, "BAD_REQUEST", "only service and training records are corrected")
            if o.key is None:
                raise Refusal(400, "BAD_REQUEST", "every correct carries its own idempotencyKey")
            if o.kind == "trainingRecord":
                return correct_training_record(u, c, o.id, body)
            return op_correct(u, c, o.id, body)
        if o.kind != "membership" or not isinstance(body, dict):
            raise Refusal(400, "BAD_REQUEST", f"{o.op} is an operation on a membership, with a body")
        if o.op == "join":
            return op_join(u, c, body.get("orgId"), body.get("volunteerId"), body)
        return op_leave(u, c, body.get("orgId"), body.get("volunteerId"), body)

    def _prefetch(self, u: UnitOfWork, c: Ctx, ops: list[BatchOp]) -> None:
        """Load what the operations of a batch will read, a few queries in all."""
        by_id: dict[str, set[str]] = {t: set() for t in TABLES}
        by_key: dict[tuple[str, str], set[str]] = {}
        creates: dict[str, int] = {}

        def key(kind: str, column: str, value: Any) -> None:
            if isinstance(value, str):
                by_key.setdefault((kind, column), set()).add(value)

        for o in ops:
            body = o.body if isinstance(o.body, dict) else {}
            if o.kind in TABLES and isinstance(o.id, str):
                by_id[o.kind].add(o.id)
            if o.op in ("create", "correct") and o.kind in TABLES:
                creates[o.kind] = creates.get(o.kind, 0) + 1
                if isinstance(body.get("clientRef"), str):
                    key(o.kind, "ref_key", ref_key(c.client_id, body["clientRef"]))
            for name, kind in (
                ("parentId", "org"),
                ("stationId", "org"),
                ("orgId", "org"),
                ("volunteerId", "volunteer"),
                ("activityId", "activity"),
                ("trainingId", "training"),
            ):
                if isinstance(body.get(name), str):
                    by_id[kind].add(body[name])
            if o.kind == "volunteer" and isinstance(body.get("idNumber"), str):
                key("volunteer", "id_key", f"{body.get('idType')}:{body['idNumber'].upper()}")
            elif o.kind == "org" and isinstance(body.get("uscc"), str):
                key("org", "uscc_live", body["uscc"])
            elif o.kind == "serviceRecord" and o.op in ("create", "correct"):
                key("serviceRecord", "day_key", f"{body.get('volunteerId')}:{body.get('serviceDate')}")
            elif o.op in ("join", "leave"):
                key("membership", "pair_key", f"{body.get('orgId')}:{body.get('volunteerId')}")
        for kind, ids in by_id.items():
            if ids:
                u.prefetch(kind, ids)
        for (kind, column), values in by_key.items():
            u.prefetch_by(kind, column, values)
        for kind, count in creates.items():
            u.reserve_ids(kind, count)
        if any(o.op == "join" for o in ops):
            u.reserve_ids("membership", sum(1 for o in ops if o.op == "join"))
