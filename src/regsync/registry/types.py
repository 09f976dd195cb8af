"""Typed shapes the flows exchange with the registry client (the flows never see wire names).

Field names here are Python's (``snake_case``) and values are regsync's own types: hours as integer
hundredths, timestamps as naive-UTC :class:`datetime.datetime` (as the local store keeps them),
dates as :class:`datetime.date`, lists as
lists. The adapter (:mod:`regsync.registry.wire`) maps them to and from the wire of registry-api.md §4.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

#: The five kinds of record, by regsync's entity name (registry-api.md §4).
Kind = Literal["org", "volunteer", "membership", "activity", "service_record", "training", "training_record",
               "commendation", "evaluation"]
KINDS: tuple[Kind, ...] = ("org", "volunteer", "membership", "activity", "service_record", "training",
                           "training_record", "commendation", "evaluation")


def as_kind(value: str) -> Kind:
    """``value`` (an outbox entity, a feed entry's type mapped to regsync's name…) as a :data:`Kind`.

    Raises:
        ValueError: not one of the five kinds.
    """
    if value not in KINDS:
        raise ValueError(f"not a kind of record: {value!r}; one of {', '.join(KINDS)}")
    return value

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
class Unknowns:
    """What an answer held that this client does not know, skipped and counted (registry-api.md §1, "types it
    does not know": the registry adds record types and fields over time).

    Attributes:
        types: wire ``type`` → items skipped: change-feed entries, lookup results and export lines of a type
            this client does not know (v1.1's ``commendation``, ``training``…) or of another type than asked.
        fields: ``"<wire type>.<wire field>"`` → records (or feed entries, as ``change.<field>``) that carried a
            field this client does not know (e.g. ``volunteer.trainingHours``); the field is ignored.
    """

    types: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.types or self.fields)

    def add(self, other: Unknowns) -> None:
        """Add ``other``'s counts to these."""
        self.types.update(other.types)
        self.fields.update(other.fields)

    def copy(self) -> Unknowns:
        """A copy whose counters do not move with these (a mark to count from)."""
        return Unknowns(Counter(self.types), Counter(self.fields))

    def since(self, mark: Unknowns) -> Unknowns:
        """What was counted after ``mark`` (a :meth:`copy` taken earlier); only positive counts."""
        return Unknowns(self.types - mark.types, self.fields - mark.fields)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """``{"types": {type: n}, "fields": {"type.field": n}}``, sorted, for summaries."""
        return {"types": dict(sorted(self.types.items())), "fields": dict(sorted(self.fields.items()))}


@dataclass(slots=True)
class ChangePage:
    """A page of the change feed: its items, the cursor to read next, and whether more wait.

    ``changes`` holds the items of the kinds this client knows; ``unknown`` counts those it skipped (a page may
    hold nothing but skipped items, and its ``next_cursor`` still moves past them: registry-api.md §1).
    """

    changes: list[Change]
    next_cursor: str
    has_more: bool
    unknown: Unknowns = field(default_factory=Unknowns)
