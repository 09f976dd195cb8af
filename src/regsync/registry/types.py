"""Typed shapes the flows exchange with the registry client (the flows never see wire names).

Field names here are Python's (``snake_case``) and values are regsync's own types: hours as integer
hundredths, timestamps as naive-UTC :class:`datetime.datetime` (as the local store keeps them),
dates as :class:`datetime.date`, lists as
lists. The adapter (:mod:`regsync.registry.wire`) maps them to and from the wire of registry-api.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: The five kinds of record, by regsync's entity name (registry-api.md §4).
Kind = Literal["org", "volunteer", "membership", "activity", "service_record"]
KINDS: tuple[Kind, ...] = ("org", "volunteer", "membership", "activity", "service_record")

#: Batch operation names of registry-api.md §5.1.
OpName = Literal["create", "update", "delete", "revoke", "correct", "join", "leave"]


@dataclass(slots=True)
class Operation:
    """One operation of a ``POST /batch`` (registry-api.md §5.1).

    Attributes:
        op: ``create``, ``update``, ``delete``, ``revoke``, ``correct`` (v1.1), ``join`` or ``leave``.
        kind: the record kind.
        fields: the writable fields in Python names and types (for ``create``/``update``, and for ``correct``
            the whole corrected record); references (``parent_id``, ``org_id``…) already hold **registry** ids.
            For ``join``: ``org_id``, ``volunteer_id``, ``joined_on``; for ``leave``: ``org_id``,
            ``volunteer_id``, ``left_on``; for ``revoke``: ``reason``.
        registry_id: the target record's registry id (``update``, ``delete``, ``revoke``; for ``correct`` the
            ACCEPTED record the new one replaces).
        if_match: the version the update/delete is based on (``update``, ``delete``).
        idempotency_key: required on ``create`` and ``correct`` (≤ 64 chars); kept across retries of the same
            write.
        client_ref: the ``clientRef`` of a ``create`` or of the new record of a ``correct`` (≤ 64 chars).
        tag: the caller's own handle (not sent), to match the result back.
    """

    op: OpName
    kind: Kind
    fields: dict[str, Any] = field(default_factory=dict)
    registry_id: str | None = None
    if_match: int | None = None
    idempotency_key: str | None = None
    client_ref: str | None = None
    tag: Any = None


@dataclass(slots=True)
class FieldError:
    """One entry of ``data.errors`` of a 422 ``VALIDATION_FAILED`` (registry-api.md §7), with the wire
    field name translated to the Python name where one exists."""

    field: str
    code: str
    message: str


@dataclass(slots=True)
class OperationResult:
    """The result of one batch operation (registry-api.md §5.1).

    Attributes:
        status: the HTTP status the operation would have had alone.
        code: ``OK`` or the §7 error code.
        registry_id: the record's id (created, updated…), or ``existingId`` of a ``DUPLICATE_*``.
        version: the record's version after the operation, when given.
        record: the record in Python names (decoded), when the answer carries one (``data`` of a success,
            ``data.current`` of a ``VERSION_MISMATCH``).
        errors: field errors of a ``VALIDATION_FAILED``.
        existing_owner: ``data.ownerClientId`` of a ``DUPLICATE_ID_NUMBER``.
        message: the registry's message.
    """

    status: int
    code: str
    registry_id: str | None = None
    version: int | None = None
    record: dict[str, Any] | None = None
    errors: list[FieldError] = field(default_factory=list)
    existing_owner: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the operation succeeded (2xx)."""
        return 200 <= self.status < 300


@dataclass(slots=True)
class Change:
    """One item of the change feed (registry-api.md §5.3)."""

    seq: int
    kind: Kind
    registry_id: str
    version: int
    op: Literal["upsert", "delete"]
    changed_at: str
    by_client_id: str | None


@dataclass(slots=True)
class ChangePage:
    """A page of the change feed: its items, the cursor to read next, and whether more wait."""

    changes: list[Change]
    next_cursor: str
    has_more: bool
