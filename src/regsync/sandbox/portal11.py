"""Portal-side actions of registry-api.md v1.1 in the sandbox (§8): national commendations of a province's
volunteers and training records entered on the national portal.

Both are made by the portal (``ownerClientId`` ``"PORTAL"``, no ``clientRef``) under the registry's own rules
(§4.7, §4.8: the annual scheme's ``NOT_EARNED`` included); a client reads them from the feed and its exports and
gets 403 ``NOT_OWNER`` on a write (§4.9 "Ownership": records the portal created are read-only to it).
"""

from __future__ import annotations

from typing import Any

from regsync.sandbox.calls import Ctx, Outcome, invalid
from regsync.sandbox.operations11 import create11
from regsync.sandbox.rules import FieldError
from regsync.sandbox.store import UnitOfWork

#: The v1.1 portal actions, by the names ``GET /_sandbox/counters`` counts them under and the random activity draws
#: them by (the last of :data:`regsync.sandbox.portal.ACTIONS`).
ACTIONS11: tuple[str, ...] = ("national_commendation", "training_record")


def op_national_commendation(u: UnitOfWork, c: Ctx, body: Any) -> Outcome:
    """A national commendation of a volunteer, entered on the portal (§8, §4.8).

    The body is a commendation's writable fields (§4.8) without ``clientRef``; ``subjectType`` is ``VOLUNTEER``
    (else 422 ``INVALID_VALUE``). The volunteer may be of any province; the commendation's province is theirs, and
    it moves with a later transfer.

    Returns:
        201 with the commendation.

    Raises:
        Refusal: as a create of a commendation is refused (400, 409 ``DUPLICATE_COMMENDATION``, 422 with the field
            codes of §7, ``NOT_EARNED`` for a scheme commendation the registry's records do not bear out).
    """
    if isinstance(body, dict) and body.get("subjectType") not in (None, "VOLUNTEER"):
        raise invalid([FieldError("subjectType", "INVALID_VALUE", "a national commendation commends a volunteer")])
    return create11(u, c, "commendation", body)


def op_portal_training_record(u: UnitOfWork, c: Ctx, body: Any) -> Outcome:
    """A training record entered on the portal (§8, §4.7): the writable fields without ``clientRef``.

    The registry's rules apply (a training not CANCELLED, an ACTIVE volunteer, ``completedOn`` within the training's
    dates, ``classHours`` within the training's, one ACCEPTED record per training and volunteer); the volunteer's
    ``trainingHours`` move (a new version, fed). The record's province is its training's.

    Returns:
        201 with the record.

    Raises:
        Refusal: as a create of a training record is refused (400, 409 ``DUPLICATE_TRAINING_RECORD``, 422).
    """
    return create11(u, c, "trainingRecord", body)
