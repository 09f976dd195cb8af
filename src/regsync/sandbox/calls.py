"""One call to the sandbox registry: who acts and when (:class:`Ctx`), its answer (:class:`Outcome`) or its
refusal (:class:`Refusal`), and the fingerprint an idempotency key is bound to (§5.1).

Every write operation — alone or inside a ``POST /batch`` — is a function of a :class:`~regsync.sandbox.store.
UnitOfWork` returning an :class:`Outcome` (the HTTP status, the §7 code, the message and ``data``); a refusal
is raised as :class:`Refusal` before the operation changes anything, so the operations of a batch apply
independently (:mod:`regsync.sandbox.operations`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from regsync.sandbox.rules import CST, FieldError, format_time
from regsync.sandbox.store import COLLECTIONS, TABLES, ClientCredential

#: The actor of the portal's and the admin endpoints' writes (``ownerClientId``, ``byClientId``; §1, §8).
PORTAL = "PORTAL"


@dataclass(slots=True)
class Outcome:
    """The answer to one operation: HTTP status, §7 code, message, ``data`` (a record or error data)."""

    status: int
    code: str = "OK"
    message: str = ""
    data: Any = None
    replayed: bool = False

    def envelope(self, request_id: str) -> dict[str, Any]:
        """The §1 envelope ``{code, message, requestId, data}``."""
        return {"code": self.code, "message": self.message, "requestId": request_id, "data": self.data}

    def op_result(self, target_id: str | None = None) -> dict[str, Any]:
        """One ``data.results`` item of a batch (§5.1): ``{status, code, message, id?, version?, data?}``."""
        result: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if 200 <= self.status < 300 and isinstance(self.data, dict) and "id" in self.data:
            result["id"] = self.data["id"]
            result["version"] = self.data["version"]
        elif target_id is not None:
            result["id"] = target_id
        if self.data is not None:
            result["data"] = self.data
        if self.replayed:
            result["replayed"] = True
        return result

    @classmethod
    def from_stored(cls, status: int, body: bytes) -> Outcome:
        """Rebuild from a kept answer (an envelope's bytes)."""
        env = orjson.loads(body)
        return cls(status, env["code"], env.get("message", ""), env.get("data"), replayed=True)


class Refusal(Exception):
    """An operation refused with an :class:`Outcome` (nothing was changed)."""

    def __init__(self, status: int, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.outcome = Outcome(status, code, message, data)


def invalid(errors: list[FieldError]) -> Refusal:
    """422 ``VALIDATION_FAILED`` with ``data.errors`` (§7)."""
    return Refusal(
        422,
        "VALIDATION_FAILED",
        "the record breaks the registry's rules",
        {"errors": [e.as_wire() for e in errors]},
    )


def fingerprint(op: str, kind: str | None, target: Any, if_match: Any, body: Any) -> str:
    """The hash an idempotency key is bound to (§5.1): the operation, its target and its body."""
    payload = orjson.dumps([op, kind, target, if_match, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


@dataclass(slots=True)
class Ctx:
    """Who acts and when.

    The client (or ``PORTAL``), its province, the registry's clock (Unix seconds); ``today`` (+08:00)
    and ``stamp`` (RFC 3339, +08:00) are derived from ``now`` once.
    """

    client_id: str
    province: str | None
    now: float
    today: dt.date = dt.date.min
    stamp: str = ""

    def __post_init__(self) -> None:
        self.today = dt.datetime.fromtimestamp(self.now, CST).date()
        self.stamp = format_time(self.now)


def kind_of(name: str) -> str | None:
    """The batch type of a collection path or batch type name (``service-records`` → ``serviceRecord``)."""
    if name in TABLES:
        return name
    return COLLECTIONS.get(name)


def now_ctx(client: ClientCredential | None, clock: Callable[[], float]) -> Ctx:
    """A :class:`Ctx` for a client (``None``: the portal)."""
    if client is None:
        return Ctx(PORTAL, None, clock())
    return Ctx(client.client_id, client.province, clock())
