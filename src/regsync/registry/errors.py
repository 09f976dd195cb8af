"""Typed errors of the registry client: one class per error code of registry-api.md §7.

The hierarchy, by what a caller does about it::

    RegistryError                    every failure of a registry call
    ├── TransientError               retry later (back off; honour retry_after when set)
    │   ├── ServerError              500/502/504 INTERNAL (JSON envelope)
    │   ├── GatewayError             a non-JSON answer of the gateway in front of the registry
    │   ├── MalformedAnswer          a JSON answer that does not follow the contract
    │   ├── RegistryTimeout          no answer in time
    │   ├── RegistryConnectionError  connection refused, reset or dropped
    │   ├── RateLimited              429 RATE_LIMITED
    │   ├── Maintenance              503 MAINTENANCE
    │   └── ExportInProgress         429 EXPORT_IN_PROGRESS
    ├── AuthError                    systemic: stop and raise an alarm (after the client's one repeat)
    │   ├── TokenExpired             401 TOKEN_EXPIRED
    │   ├── TokenInvalid             401 TOKEN_INVALID
    │   ├── SignatureInvalid         401 SIGNATURE_INVALID
    │   ├── TimestampSkew            401 TIMESTAMP_SKEW
    │   ├── NonceReplayed            401 NONCE_REPLAYED
    │   ├── InvalidClient            OAuth invalid_client (disabled or wrong credentials)
    │   └── OAuthError               any other OAuth error of /oauth/token
    └── RequestRejected              a verdict on this request: do not retry it as is
        ├── BadRequest               400 BAD_REQUEST
        ├── Forbidden                403 FORBIDDEN
        │   └── NotOwner             403 NOT_OWNER
        ├── NotFound                 404 NOT_FOUND
        ├── Duplicate                409, link to existing_id
        │   ├── DuplicateIdNumber    409 DUPLICATE_ID_NUMBER
        │   ├── DuplicateUscc        409 DUPLICATE_USCC
        │   ├── DuplicateClientRef   409 DUPLICATE_CLIENT_REF
        │   └── DuplicateRecord      409, v1.1: the same record of a pair exists (link it if it is this one)
        │       ├── DuplicateTrainingRecord  409 DUPLICATE_TRAINING_RECORD
        │       ├── DuplicateCommendation    409 DUPLICATE_COMMENDATION
        │       └── DuplicateEvaluation      409 DUPLICATE_EVALUATION
        ├── OrgHasActiveChildren     409 ORG_HAS_ACTIVE_CHILDREN
        ├── InvalidState             409 INVALID_STATE
        ├── CursorExpired            410 CURSOR_EXPIRED
        ├── VersionMismatch          412 VERSION_MISMATCH
        ├── TooLarge                 413, split
        │   ├── BatchTooLarge        413 BATCH_TOO_LARGE
        │   └── BodyTooLarge         413 BODY_TOO_LARGE, or the gateway's HTML 413
        ├── ValidationFailed         422 VALIDATION_FAILED
        ├── DailyHoursExceeded       422 DAILY_HOURS_EXCEEDED
        ├── IdempotencyKeyReused     422 IDEMPOTENCY_KEY_REUSED
        └── PreconditionRequired     428 PRECONDITION_REQUIRED

Each class's docstring is its default message. Every error carries the HTTP ``status`` (``None`` when
no answer came), the registry's ``code``, its ``message`` and ``request_id``, and ``from_gateway`` when the
answer was a gateway's page rather than the registry's envelope.

Retriable or fatal is decided in one place: :attr:`RegistryError.retriable` (a class attribute, so a
subclass or a deployment may override it) and, for a status/code pair of any origin (a whole answer or one
batch result), :func:`error_class` then ``.retriable``. Building an error from the wire's envelope is the
adapter's job (:func:`regsync.registry.wire.error_from_answer`). A caller that handles each result of a batch on
its own (the outbound relay) reads :func:`error_for_result`: :attr:`RegistryError.retry_later` (retriable, or any
5xx), :attr:`RegistryError.systemic` and :attr:`RegistryError.systemic_in_bulk` (a refusal that, answering most
of a batch, is about the client rather than the records).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from regsync.registry.types import FieldError, OperationResult


class RegistryError(Exception):
    """The registry call failed."""

    #: The §7 code this class stands for (``None`` for classes that stand for several or none).
    code_default: ClassVar[str | None] = None
    #: Whether repeating the same request later may succeed (see the module docstring).
    retriable: ClassVar[bool] = False
    #: Whether the failure concerns the whole client (credentials, clock, configuration) rather than
    #: one request: the caller stops its run and raises an alarm instead of failing records.
    systemic: ClassVar[bool] = False
    #: Whether this refusal, when it answers most operations of one batch, concerns the client as a whole (a
    #: malformed or unconditional request, a reused key: a client bug; the client's scope) rather than those
    #: records: the caller stops and raises an alarm instead of failing them. One such answer alone is a verdict
    #: on its request. (:attr:`systemic` errors are so at once.)
    systemic_in_bulk: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        data: Any = None,
        from_gateway: bool = False,
    ) -> None:
        """Build the error.

        Args:
            message: the registry's message; the class's docstring when ``None`` or empty.
            status: the HTTP status of the answer, ``None`` when there was none (timeout, connection).
            code: the §7 code (or OAuth ``error``); the class's :attr:`code_default` when ``None``.
            request_id: the envelope's ``requestId``, when given.
            data: the envelope's raw ``data`` (wire names), kept for diagnostics; never logged.
            from_gateway: the answer was not the registry's JSON but a gateway's page.
        """
        self.message = message or default_message(type(self))
        self.status = status
        self.code = code if code is not None else self.code_default
        self.request_id = request_id
        self.data = data
        self.from_gateway = from_gateway
        super().__init__(self.message)

    @property
    def retry_later(self) -> bool:
        """Whether the same request is repeated later rather than taken as a verdict: a :attr:`retriable` class,
        or any answer with a 5xx status whatever its code (registry-api.md §7: a write answered 5xx may have been
        applied, and is repeated with the same Idempotency-Key)."""
        return self.retriable or (self.status is not None and self.status >= 500)

    def __str__(self) -> str:
        parts = [self.message]
        detail = ", ".join(
            f"{k}={v}"
            for k, v in (("status", self.status), ("code", self.code), ("requestId", self.request_id))
            if v is not None
        )
        return f"{parts[0]} ({detail})" if detail else parts[0]


def default_message(cls: type[RegistryError]) -> str:
    """The first line of ``cls``'s docstring, its default message."""
    doc = (cls.__doc__ or cls.__name__).strip()
    return doc.splitlines()[0].strip()


# ------------------------------------------------------------------------------------------------
# Transient
# ------------------------------------------------------------------------------------------------


class TransientError(RegistryError):
    """The registry is unavailable for now; retry later."""

    retriable = True

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kw: Any) -> None:
        """Build the error; ``retry_after`` is the answer's ``Retry-After`` in seconds, when given."""
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(TransientError):
    """The registry failed internally; retry with the same Idempotency-Key."""

    code_default = "INTERNAL"


class GatewayError(TransientError):
    """The gateway in front of the registry answered with a page of its own."""

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        """Build the error; it is always ``from_gateway``."""
        kw["from_gateway"] = True
        super().__init__(message, **kw)


class MalformedAnswer(TransientError):
    """The registry's answer does not follow the interface contract."""


class RegistryTimeout(TransientError):
    """The registry did not answer in time."""


class RegistryConnectionError(TransientError):
    """The connection to the registry failed or was dropped."""


class RateLimited(TransientError):
    """Too many requests; wait Retry-After, then retry."""

    code_default = "RATE_LIMITED"


class Maintenance(TransientError):
    """The registry is under maintenance; wait Retry-After, then retry."""

    code_default = "MAINTENANCE"


class ExportInProgress(TransientError):
    """Another export of this client is running; wait, then retry."""

    code_default = "EXPORT_IN_PROGRESS"


# ------------------------------------------------------------------------------------------------
# Authentication and signing
# ------------------------------------------------------------------------------------------------


class AuthError(RegistryError):
    """The registry refused the client's credentials or signature."""

    systemic = True


class TokenExpired(AuthError):
    """The access token has expired."""

    code_default = "TOKEN_EXPIRED"


class TokenInvalid(AuthError):
    """The access token is invalid or revoked."""

    code_default = "TOKEN_INVALID"


class SignatureInvalid(AuthError):
    """The request signature does not match (check the client secret and sign method)."""

    code_default = "SIGNATURE_INVALID"


class TimestampSkew(AuthError):
    """X-Timestamp is more than 300 s away from the registry's clock."""

    code_default = "TIMESTAMP_SKEW"

    def __init__(
        self, message: str | None = None, *, server_time: dt.datetime | None = None, **kw: Any
    ) -> None:
        """Build the error; ``server_time`` is ``data.serverTime`` (aware, the registry's clock)."""
        super().__init__(message, **kw)
        self.server_time = server_time


class NonceReplayed(AuthError):
    """The nonce was used in the last 10 minutes."""

    code_default = "NONCE_REPLAYED"


class InvalidClient(AuthError):
    """The client id or secret is wrong or disabled; retrying does not help."""

    code_default = "invalid_client"


class OAuthError(AuthError):
    """The token endpoint refused the request."""


# ------------------------------------------------------------------------------------------------
# Verdicts on the request
# ------------------------------------------------------------------------------------------------


class RequestRejected(RegistryError):
    """The registry refused the request; do not retry it as is."""


class BadRequest(RequestRejected):
    """The request is malformed (a client bug)."""

    code_default = "BAD_REQUEST"
    systemic_in_bulk = True


class Forbidden(RequestRejected):
    """The request is out of this client's scope."""

    code_default = "FORBIDDEN"
    systemic_in_bulk = True


class NotOwner(Forbidden):
    """The record belongs to another client or province."""

    code_default = "NOT_OWNER"
    systemic_in_bulk = False  # a verdict on each record, however many


class NotFound(RequestRejected):
    """No record has this id."""

    code_default = "NOT_FOUND"


class EndpointNotFound(RequestRejected):
    """The registry's address answers with no such endpoint (a page of its own, not the envelope): check
    REGSYNC_REGISTRY_URL and its base path."""

    code_default = "ENDPOINT_NOT_FOUND"
    systemic = True


class Duplicate(RequestRejected):
    """The record exists already; link to existing_id."""

    def __init__(
        self,
        message: str | None = None,
        *,
        existing_id: str | None = None,
        owner: str | None = None,
        **kw: Any,
    ) -> None:
        """Build the error from ``data.existingId`` and ``data.ownerClientId``."""
        super().__init__(message, **kw)
        self.existing_id = existing_id
        self.owner = owner


class DuplicateIdNumber(Duplicate):
    """A volunteer with this ID document is registered already."""

    code_default = "DUPLICATE_ID_NUMBER"


class DuplicateUscc(Duplicate):
    """An organization with this USCC exists already."""

    code_default = "DUPLICATE_USCC"


class DuplicateClientRef(Duplicate):
    """This client created a record with this clientRef already."""

    code_default = "DUPLICATE_CLIENT_REF"


class DuplicateRecord(Duplicate):
    """A record of the same natural key exists already (registry-api.md §7, v1.1); link to existing_id when it is
    the same record, else an operator decides."""


class DuplicateTrainingRecord(DuplicateRecord):
    """The volunteer has an ACCEPTED record of this training already (registry-api.md §4.7)."""

    code_default = "DUPLICATE_TRAINING_RECORD"


class DuplicateCommendation(DuplicateRecord):
    """The subject has an ACTIVE commendation of this title and date, or of this scheme and year, already
    (registry-api.md §4.8)."""

    code_default = "DUPLICATE_COMMENDATION"


class DuplicateEvaluation(DuplicateRecord):
    """The volunteer has an ACTIVE evaluation at this activity already (registry-api.md §4.9)."""

    code_default = "DUPLICATE_EVALUATION"


class OrgHasActiveChildren(RequestRejected):
    """The organization still has child organizations that are not dissolved."""

    code_default = "ORG_HAS_ACTIVE_CHILDREN"


class InvalidState(RequestRejected):
    """The record's state does not allow this change.

    Among others (registry-api.md §4.5, §5.1): a PUT of an ended record or of a service record, and a
    ``:correct`` of a record that is not ACCEPTED (revoked, or corrected already); nothing was changed.
    """

    code_default = "INVALID_STATE"


class CursorExpired(RequestRejected):
    """The change-feed cursor is older than the feed's retention; reconcile in full."""

    code_default = "CURSOR_EXPIRED"


class VersionMismatch(RequestRejected):
    """The record changed since the version given; merge with the current record."""

    code_default = "VERSION_MISMATCH"

    def __init__(
        self, message: str | None = None, *, current: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        """Build the error; ``current`` is ``data.current`` decoded to Python names, when known."""
        super().__init__(message, **kw)
        self.current = current


class TooLarge(RequestRejected):
    """The request is too large; split it."""


class BatchTooLarge(TooLarge):
    """More than 500 operations or ids in one call."""

    code_default = "BATCH_TOO_LARGE"


class BodyTooLarge(TooLarge):
    """The request body is over the size limit."""

    code_default = "BODY_TOO_LARGE"


class ValidationFailed(RequestRejected):
    """The record's data is invalid; see errors."""

    code_default = "VALIDATION_FAILED"

    def __init__(
        self, message: str | None = None, *, errors: list[FieldError] | None = None, **kw: Any
    ) -> None:
        """Build the error; ``errors`` are ``data.errors`` with Python field names."""
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class DailyHoursExceeded(RequestRejected):
    """The volunteer's accepted hours on that day would exceed 24.00."""

    code_default = "DAILY_HOURS_EXCEEDED"


class IdempotencyKeyReused(RequestRejected):
    """The Idempotency-Key was used with another body."""

    code_default = "IDEMPOTENCY_KEY_REUSED"
    systemic_in_bulk = True


class PreconditionRequired(RequestRejected):
    """The write needs an If-Match header."""

    code_default = "PRECONDITION_REQUIRED"
    systemic_in_bulk = True


# ------------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------------

#: §7 code → class. OAuth's ``invalid_client`` is here too; other OAuth errors are :class:`OAuthError`.
ERROR_CLASSES: dict[str, type[RegistryError]] = {
    cls.code_default: cls
    for cls in (
        ServerError,
        RateLimited,
        Maintenance,
        ExportInProgress,
        TokenExpired,
        TokenInvalid,
        SignatureInvalid,
        TimestampSkew,
        NonceReplayed,
        InvalidClient,
        BadRequest,
        Forbidden,
        NotOwner,
        NotFound,
        DuplicateIdNumber,
        DuplicateUscc,
        DuplicateClientRef,
        DuplicateTrainingRecord,
        DuplicateCommendation,
        DuplicateEvaluation,
        OrgHasActiveChildren,
        InvalidState,
        CursorExpired,
        VersionMismatch,
        BatchTooLarge,
        BodyTooLarge,
        ValidationFailed,
        DailyHoursExceeded,
        IdempotencyKeyReused,
        PreconditionRequired,
    )
    if cls.code_default is not None
}

#: The class of an unknown code, by HTTP status (a registry newer than this client).
_BY_STATUS: dict[int, type[RegistryError]] = {
    400: BadRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: RequestRejected,
    410: CursorExpired,
    412: VersionMismatch,
    413: BodyTooLarge,
    422: ValidationFailed,
    428: PreconditionRequired,
    429: RateLimited,
    503: Maintenance,
}


def error_class(status: int, code: str | None) -> type[RegistryError]:
    """The error class of an answer (a whole call's, or one batch result's).

    A known §7 code decides; an unknown or missing one falls back on the HTTP status: 5xx →
    :class:`ServerError` (503 → :class:`Maintenance`), 429 → :class:`RateLimited`, other 4xx → the
    status's class or :class:`RequestRejected`.

    Args:
        status: the HTTP status (for a batch result: the status it would have had alone).
        code: the envelope's ``code``.
    """
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return RequestRejected


def error_for_result(result: OperationResult) -> RegistryError | None:
    """The typed error of one batch result, or ``None`` when it succeeded (registry-api.md §5.1).

    Lets the flows classify a batch result exactly as a whole answer (``.retriable``, ``.systemic``,
    ``isinstance(err, Duplicate)``…) without looking at codes.
    """
    if result.ok:
        return None
    cls = error_class(result.status, result.code)
    kw: dict[str, Any] = {"status": result.status, "code": result.code}
    if issubclass(cls, Duplicate):
        kw.update(existing_id=result.registry_id, owner=result.existing_owner)
    elif issubclass(cls, VersionMismatch):
        kw.update(current=result.record)
    elif issubclass(cls, ValidationFailed):
        kw.update(errors=result.errors)
    return cls(result.message or None, **kw)
