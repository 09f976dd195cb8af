"""How the outbound relay reads the result of one operation of a ``POST /batch`` (design.md, flow 1, step 4).

One classification, by the typed errors of :mod:`regsync.registry.errors` (registry-api.md §7; a code this client
does not know is read by its HTTP status): the relay keeps no list of codes of its own.

* :func:`classify`: what a result says of its record (:class:`Verdict`);
* :func:`about_the_client`: whether a refusal, answering most of a batch, is about the client as a whole (the relay
  then halts and alarms instead of failing the records);
* :func:`operator_code` and :func:`refusal_text`: the code and the words an operator sees on a refused record.
"""

from __future__ import annotations

import enum

from regsync.registry.errors import (
    Duplicate,
    DuplicateClientRef,
    InvalidState,
    ValidationFailed,
    VersionMismatch,
    error_for_result,
)
from regsync.registry.types import Operation, OperationResult


class Verdict(enum.Enum):
    """What one result says of its record, in the order the relay decides them."""

    #: The write went through (2xx).
    ACCEPTED = "accepted"
    #: A ``:correct`` answered ``INVALID_STATE`` or ``DUPLICATE_CLIENT_REF``: what holds its ``clientRef`` is looked
    #: up (the correction may have gone through with its answer lost).
    CORRECTION_REFUSED = "correction_refused"
    #: ``DUPLICATE_*`` naming the existing record (``existingId``): linked to it.
    DUPLICATE = "duplicate"
    #: ``VERSION_MISMATCH`` carrying the registry's current record: compared with what was sent and the base, then
    #: taken as done, retried on the new version or merged.
    VERSION_MOVED = "version_moved"
    #: Not a verdict (:attr:`regsync.registry.errors.RegistryError.retry_later`: 429, 5xx, maintenance…): the record
    #: is deferred with backoff.
    RETRY_LATER = "retry_later"
    #: A verdict on the record's data or state: the record fails, for an operator, until its data changes.
    REFUSED = "refused"


def classify(result: OperationResult, op: Operation | None) -> Verdict:
    """What ``result``, the answer to ``op``, says of its record.

    Args:
        result: one result of ``POST /batch``.
        op: the operation it answers (its ``op`` decides whether a refusal is a correction's).

    Returns:
        The :class:`Verdict`; a result that is none of the others is :attr:`Verdict.REFUSED`.
    """
    err = error_for_result(result)
    if err is None:
        return Verdict.ACCEPTED
    if op is not None and op.op == "correct" and isinstance(err, InvalidState | DuplicateClientRef):
        return Verdict.CORRECTION_REFUSED
    if isinstance(err, Duplicate) and err.existing_id:
        return Verdict.DUPLICATE
    if isinstance(err, VersionMismatch) and err.current is not None:
        return Verdict.VERSION_MOVED
    if err.retry_later:
        return Verdict.RETRY_LATER
    return Verdict.REFUSED


def about_the_client(result: OperationResult) -> bool:
    """Whether ``result`` is a refusal that says nothing about its record's data but about this client as a whole
    (:attr:`~regsync.registry.errors.RegistryError.systemic`: credentials, clock;
    :attr:`~regsync.registry.errors.RegistryError.systemic_in_bulk`: scope, a malformed or unconditional request, a
    reused key), when it answers most of a batch with one code."""
    err = error_for_result(result)
    return err is not None and (err.systemic or err.systemic_in_bulk)


def operator_code(result: OperationResult) -> str:
    """The code an operator sees on a refused record: the first field code of a validation failure
    (``INVALID_PHONE``…), else the result's code."""
    err = error_for_result(result)
    if isinstance(err, ValidationFailed) and err.errors:
        return err.errors[0].code
    return result.code


def refusal_text(result: OperationResult) -> str:
    """The words an operator sees on a refused record: its field errors (``field: CODE (message)``, ``; ``-joined),
    else the registry's message, else its code."""
    if result.errors:
        return "; ".join(f"{e.field}: {e.code} ({e.message})" for e in result.errors)
    return result.message or result.code


__all__ = ["Verdict", "about_the_client", "classify", "operator_code", "refusal_text"]
