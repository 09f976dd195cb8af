"""Reasons in words (issue 15, point 2): why a record is on a worklist (待办清单), and what to do about it.

A work item comes from a failed record (its outbox ``last_code``: a registry-api.md §7 code, a §7 field code, or
one of regsync's own codes) or from a discrepancy a reconcile found (its kind, :data:`DISCREPANCY_KINDS` of the
report). :func:`reason_for` turns either into a :class:`Reason`: the reason as a person reads it (手机号格式不正确,
身份证号校验位错误…) and what to do (改正手机号后保存…). Both are written in English and marked for translation
(:func:`regsync.i18n.lazy_gettext`), so a table built at import speaks the language chosen later.

A code the catalog does not know (a newer registry's; registry-api.md §1: a refusal on the data) gets a general
reason naming the code, never an empty cell. ``tests/test_reasons.py`` checks that every §7 code and field code of
``docs/registry-api.md``, every class of :mod:`regsync.registry.errors` and every code regsync itself writes has
an entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from regsync.i18n import gettext as _
from regsync.i18n import lazy_gettext as N_

__all__ = ["CODE_REASONS", "DISCREPANCY_REASONS", "OWN_CODES", "Reason", "not_earned_figure", "reason_for"]


@dataclass(frozen=True, slots=True)
class Reason:
    """A work item's reason, in the language in force.

    Attributes:
        code: the code it explains (``INVALID_PHONE``, ``missing_in_registry``…), as stored.
        reason: why, in words (``手机号格式不正确``).
        action: what to do, in words.
        known: whether the catalog has the code (``False``: the general reason naming it).
    """

    code: str
    reason: str
    action: str
    known: bool = True


_RETRY = N_("Nothing to fix in the record: regsync retries it. If it stays, tell the operators.")
_OPERATOR = N_("For the operators: check regsync's configuration and credentials, then retry the record.")
_CLIENT_BUG = N_("For the operators: report it to regsync's maintainers with the record's key, then retry.")

#: registry-api.md §7 codes and field codes → (reason, what to do).
_REGISTRY: dict[str, tuple[Any, Any]] = {
    "BAD_REQUEST": (N_("The registry could not read the request"), _CLIENT_BUG),
    "TOKEN_EXPIRED": (N_("The access token expired"), _RETRY),
    "TOKEN_INVALID": (N_("The access token was refused"), _OPERATOR),
    "SIGNATURE_INVALID": (N_("The request's signature was refused"), _OPERATOR),
    "TIMESTAMP_SKEW": (N_("The server's clock is off from the registry's"), _OPERATOR),
    "NONCE_REPLAYED": (N_("The request was taken for a replay"), _RETRY),
    "invalid_client": (N_("The registry refused regsync's credentials"), _OPERATOR),
    "INVALID_CLIENT": (N_("The registry refused regsync's credentials"), _OPERATOR),
    "FORBIDDEN": (N_("Outside this province's scope in the registry"), N_(
        "Check that the record belongs to this province (its region code); correct it on the platform.")),
    "NOT_OWNER": (N_("The registry record belongs to another client or province"), N_(
        "The record was made on the national portal or has transferred out: change it there, or ask the "
        "operators to stop syncing it.")),
    "NOT_FOUND": (N_("The registry no longer knows this record"), N_(
        "For the operators: resync the record so that it is linked again or created anew.")),
    "ENDPOINT_NOT_FOUND": (N_("The registry does not offer this operation"), _OPERATOR),
    "DUPLICATE_ID_NUMBER": (N_("The ID number is registered already in the registry"), N_(
        "Check that it is the same person; if not, correct the ID number on the platform.")),
    "DUPLICATE_USCC": (N_("The unified social credit code is used by another organization"), N_(
        "Check the organization's unified social credit code against its certificate and correct it.")),
    "DUPLICATE_CLIENT_REF": (N_("The registry holds a record under this record's key already"), N_(
        "For the operators: link the record to the existing one (resync).")),
    "ORG_HAS_ACTIVE_CHILDREN": (N_("The organization still has active sub-organizations"), N_(
        "Dissolve or move its sub-organizations first, then dissolve it.")),
    "INVALID_STATE": (N_("The record's state does not allow this change (e.g. deregistered)"), N_(
        "Check the record's status on the platform: an ended record cannot be made active again.")),
    "DUPLICATE_TRAINING_RECORD": (N_("The training record exists already"), N_(
        "Check whether it is the same attendance; delete the extra one on the platform.")),
    "DUPLICATE_COMMENDATION": (N_("The commendation exists already"), N_(
        "Check whether it is the same commendation; delete the extra one on the platform.")),
    "DUPLICATE_EVALUATION": (N_("The evaluation exists already"), N_(
        "Check whether it is the same evaluation; delete the extra one on the platform.")),
    "CURSOR_EXPIRED": (N_("The change feed's position expired"), N_(
        "For the operators: run a full reconcile.")),
    "VERSION_MISMATCH": (N_("Someone else changed the record at the same time"), N_(
        "Compare the record on both sides (regsync show) and save the right values on the platform.")),
    "BATCH_TOO_LARGE": (N_("Too many records in one request"), _RETRY),
    "BODY_TOO_LARGE": (N_("The record is too large to send"), N_(
        "Shorten the record's long text fields on the platform.")),
    "VALIDATION_FAILED": (N_("The registry refused the record's data"), N_(
        "Check the record's fields on the platform against the registry's rules and correct them.")),
    "REQUIRED": (N_("A required field is empty"), N_("Fill in the empty field on the platform.")),
    "UNKNOWN_FIELD": (N_("The registry does not know one of the fields sent"), _CLIENT_BUG),
    "READ_ONLY_FIELD": (N_("A field the registry does not let clients change was sent"), _CLIENT_BUG),
    "INVALID_ID_NUMBER": (N_("The ID number's check character is wrong"), N_(
        "Check the ID number against the ID card and correct it on the platform.")),
    "ID_NUMBER_LEGACY": (N_("A 15-digit old ID number"), N_(
        "Replace it with the 18-digit number on the person's current ID card.")),
    "ID_BIRTHDATE_MISMATCH": (N_("The birth date does not match the ID number"), N_(
        "Correct the birth date or the ID number on the platform, as the ID card shows.")),
    "ID_GENDER_MISMATCH": (N_("The gender does not match the ID number"), N_(
        "Correct the gender or the ID number on the platform, as the ID card shows.")),
    "INVALID_USCC": (N_("The unified social credit code is not valid"), N_(
        "Correct the unified social credit code as the organization's certificate shows.")),
    "INVALID_REGION": (N_("The region code is not valid"), N_(
        "Choose the right county or district for the record on the platform.")),
    "INVALID_PHONE": (N_("The phone number's format is wrong"), N_(
        "Ask the person for their mobile number (11 digits) and correct it, or clear it.")),
    "INVALID_NAME": (N_("The name holds characters that are not allowed"), N_(
        "Correct the name as the ID card shows (Chinese characters, letters, the middle dot ·).")),
    "PARENT_NOT_FOUND": (N_("The parent organization is not in the registry"), N_(
        "Fix the parent organization's own item first; this one follows.")),
    "PARENT_LEVEL_MISMATCH": (N_("The parent organization is not of the level above"), N_(
        "Attach the organization to a parent of the right level on the platform.")),
    "INVALID_CATEGORY": (N_("A service category is not valid"), N_(
        "Choose service categories from the national list on the platform.")),
    "INVALID_HOURS": (N_("The service hours are not valid"), N_(
        "Check the start, end and hours of the service record and correct them.")),
    "INVALID_CLASS_HOURS": (N_("The training class hours are not valid"), N_(
        "On the platform, correct the class hours: from 0.5 to 200 in steps of 0.5 for a training; a training "
        "record's not more than its training's class hours, which is the usual cause (registry-api.md §4.6, "
        "§4.7).")),
    "NOT_EARNED": (N_("The commendation's hours were not earned"), N_(
        "Check the volunteer's hours for the year before awarding this tier.")),
    "NOT_A_PARTICIPANT": (N_("The volunteer did not take part in the activity"), N_(
        "Check the activity's participants; remove the record or add the sign-up.")),
    "NOT_THE_ORGANIZER": (N_("The organization did not organize the activity"), N_(
        "Record it under the organizing organization.")),
    "INVALID_SCORE": (N_("An evaluation score is out of range"), N_("Correct the scores on the platform.")),
    "REFERENCE_NOT_FOUND": (N_("A record it refers to is not in the registry"), N_(
        "Fix the referred record's own item first; this one follows.")),
    "REFERENCE_NOT_ACTIVE": (N_("The organization or record it belongs to is dissolved or ended"), N_(
        "Move the record to an active organization, or end it on the platform.")),
    "OUT_OF_RANGE": (N_("A value is out of the allowed range"), N_(
        "Check the record's dates and numbers on the platform and correct them.")),
    "DAILY_HOURS_EXCEEDED": (N_("More than 24 service hours in one day"), N_(
        "Check the volunteer's service records of that day and correct the hours.")),
    "IDEMPOTENCY_KEY_REUSED": (N_("A repeated request did not match the first"), _CLIENT_BUG),
    "PRECONDITION_REQUIRED": (N_("The registry asked for the record's version"), _CLIENT_BUG),
    "RATE_LIMITED": (N_("The registry asked regsync to slow down"), _RETRY),
    "EXPORT_IN_PROGRESS": (N_("Another export was running"), _RETRY),
    "INTERNAL": (N_("The registry had an internal error"), _RETRY),
    "MAINTENANCE": (N_("The registry was under maintenance"), _RETRY),
}

#: Codes regsync itself writes (outbox ``last_code``; normalization, the mapping, the relay, adopt).
_OWN: dict[str, tuple[Any, Any]] = {
    "LOCAL_DATA_INVALID": (N_("The platform's row cannot be read or sent"), N_(
        "Check the record's fields on the platform (dates, codes, required values) and correct them.")),
    "UNMAPPED_VALUE": (N_("A value the platform mapping does not know"), N_(
        "Use one of the platform's listed codes, or ask the operators to add it to the mapping.")),
    "PARENT_PENDING": (N_("Waits for a record it refers to"), _RETRY),
    "PRIMARY_PENDING": (N_("Waits for the person's first record"), _RETRY),
    "PARENT_FAILED": (N_("Waits for a record it refers to, which failed"), N_(
        "Fix the referred record's item (its organization, volunteer or activity); this one follows.")),
    "PARENT_DISCARDED": (N_("Waits for a record the operators took out of sync"), N_(
        "For the operators: restore the referred record, or discard this one too.")),
    "MERGED": (N_("Merged with the registry's newer version"), _RETRY),
    "CONFLICT_HELD": (N_("Both sides changed the same field"), N_(
        "For the operators: decide the conflict (regsync conflicts).")),
    "CLIENT_REF_TAKEN": (N_("Another store made this record in the registry"), N_(
        "For the operators: check which store owns the record (deploy/RUNBOOK.md).")),
    "AMBIGUOUS_MATCH": (N_("Several registry records could be this one"), N_(
        "Find the right registry record with the operators and link it.")),
    "REGISTRY_OWNED": (N_("The registry's record is owned by the national portal"), N_(
        "Change it on the national portal, not on the platform.")),
    "SYNC_LOOP": (N_("The record kept changing while it was sent"), N_(
        "For the operators: look at the record's history (regsync show) and retry it.")),
    "RECORDS_PENDING": (N_("Waits for the service records the registry checks it against"), _RETRY),
    "AWAITS_COMPLETION": (N_("Waits for its activity to be completed"), N_(
        "Mark the activity completed on the platform once it has ended; the evaluation follows.")),
    "AWAITS_SERVICE_RECORD": (N_("Waits for the volunteer's service record at the activity"), N_(
        "Record the volunteer's service at the activity on the platform, or remove the evaluation.")),
}

#: Every code with an entry (§7 codes, field codes, regsync's own) → (reason, what to do), lazily translated.
CODE_REASONS: dict[str, tuple[Any, Any]] = {**_REGISTRY, **_OWN}
#: regsync's own codes (those not from the registry), for the coverage test.
OWN_CODES: frozenset[str] = frozenset(_OWN)

#: A discrepancy kind (:data:`regsync.reports.data.DISCREPANCY_KINDS`) → (reason, what to do).
DISCREPANCY_REASONS: dict[str, tuple[Any, Any]] = {
    "missing_in_registry": (N_("Not in the national registry"), N_(
        "Check the record is complete and correct; regsync pushes it. If it stays, see its failure item.")),
    "missing_locally": (N_("In the national registry but not on the platform"), N_(
        "Enter the record on the platform, or confirm it no longer belongs to this organization.")),
    "field_mismatch": (N_("The platform and the registry hold different values"), N_(
        "Compare both sides (regsync show) and correct the wrong one.")),
    "hours_mismatch": (N_("Service hours differ between the platform and the registry"), N_(
        "Check the volunteer's service records on the platform against the registry's.")),
    "stale_link": (N_("The registry's record changed since the last sync"), N_(
        "Nothing to fix if the next sync takes it; otherwise compare both sides.")),
    "broken_link": (N_("The linked registry record is gone"), N_(
        "For the operators: resync the record so that it is linked again or created anew.")),
    "duplicate_person": (N_("The same person is registered twice on the platform"), N_(
        "Merge the two volunteer records on the platform, keeping the older one.")),
    "orphan": (N_("A record it refers to is missing"), N_(
        "Restore or correct the referred organization, volunteer, activity or training.")),
    "ambiguous_match": (N_("Several registry records could be this one"), N_(
        "Find the right registry record with the operators and link it.")),
}


def reason_for(code: str | None, *, discrepancy: bool = False) -> Reason:
    """The reason for ``code``, in the language in force.

    Args:
        code: an outbox ``last_code`` (a §7 code, a field code or regsync's own), or a discrepancy kind.
        discrepancy: ``code`` is a discrepancy kind (:data:`DISCREPANCY_REASONS`), not a failure code.

    Returns:
        The catalog's entry, or (``known`` false) a general reason that names the code, so that a code a newer
        registry adds still reads as a reason someone can act on.
    """
    table = DISCREPANCY_REASONS if discrepancy else CODE_REASONS
    key = code or "UNKNOWN"
    found = table.get(key)
    if found is not None:
        return Reason(key, str(found[0]), str(found[1]))
    return Reason(key, _("Refused with code {code}").format(code=key), _(
        "Check the record's data on the platform; if the reason is unclear, ask the operators about code "
        "{code}.").format(code=key), known=False)


_HAS = re.compile(r"\bhas\s+(\d+(?:\.\d+)?)")


def not_earned_figure(message: str | None) -> str | None:
    """The registry's figure in a ``NOT_EARNED`` refusal's message (registry-api.md §4.8: "whose message gives the
    registry's figure"; ``… the registry has 45.00 hours …`` → ``"45.00"``, hours or a count of service records as
    the registry wrote them), or ``None`` when the message holds none. The same reading as
    ``regsync.flows.commendations.registry_figure_in`` (which flows use; db and reports cannot import flows)."""
    found = _HAS.search(message or "")
    return found.group(1) if found else None
