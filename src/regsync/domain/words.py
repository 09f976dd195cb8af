"""The field's words for regsync's codes, as people read them (issue 15, point 1; ``../shared/glossary.md``).

Codes (kinds, discrepancy kinds, org lines, run kinds, flows) stay English in code, JSON and logs; whatever a
person reads names them with these words, translated when read (:func:`regsync.i18n.lazy_gettext`), so that a
table built at import speaks the language chosen later by ``--lang``. A code with no word here reads as itself.
"""

from __future__ import annotations

from typing import Any

from regsync.i18n import lazy_gettext as N_

__all__ = ["CODE_WORDS", "DISCREPANCY_WORDS", "FLOW_WORDS", "KIND_PLURAL_WORDS", "KIND_WORDS", "LINE_WORDS",
           "RECORD_STATUS_WORDS", "RUN_STATUS_WORDS", "RUN_WORDS", "code_word", "word"]

#: A kind (:data:`regsync.domain.kinds.KINDS`) → its name (志愿者, 志愿服务组织…).
KIND_WORDS: dict[str, Any] = {
    "org": N_("organization"), "volunteer": N_("volunteer"), "membership": N_("membership"),
    "activity": N_("activity"), "service_record": N_("service record"),
    # registry-api.md v1.1 (§4.6–§4.9)
    "training": N_("training"), "training_record": N_("training record"), "commendation": N_("commendation"),
    "evaluation": N_("evaluation"),
}
#: A kind's plural name (:data:`regsync.domain.kinds.KIND_NAMES`, as summaries key their counts) → its name.
KIND_PLURAL_WORDS: dict[str, Any] = {
    "orgs": N_("orgs"), "volunteers": N_("volunteers"), "memberships": N_("memberships"),
    "activities": N_("activities"), "service_records": N_("service records"),
    "trainings": N_("trainings"), "training_records": N_("training records"), "commendations": N_("commendations"),
    "evaluations": N_("evaluations"),
}
#: A discrepancy kind (:data:`regsync.reports.data.DISCREPANCY_KINDS`) → what it means (差异类型).
DISCREPANCY_WORDS: dict[str, Any] = {
    "missing_in_registry": N_("missing in the registry"),
    "missing_locally": N_("missing on the platform"),
    "field_mismatch": N_("fields differ"),
    "hours_mismatch": N_("hours differ"),
    "stale_link": N_("stale link"),
    "broken_link": N_("broken link"),
    "duplicate_person": N_("same person twice"),
    "orphan": N_("parent missing"),
    "ambiguous_match": N_("ambiguous match"),
}
#: An organization line → its name (地区组织 / 专项组织).
LINE_WORDS: dict[str, Any] = {"regional": N_("regional line"), "specialized": N_("specialized line")}
#: A run kind → its name (同步, 拉取, 对账, 首次关联).
RUN_WORDS: dict[str, Any] = {
    "sync": N_("sync"), "inbound": N_("inbound pull"), "reconcile": N_("reconcile"), "adopt": N_("adopt"),
    "resync": N_("resync"),
}
#: A flow → its name (推送, 拉取, 对账).
FLOW_WORDS: dict[str, Any] = {"outbound": N_("outbound push"), "inbound": N_("inbound pull"),
                              "reconcile": N_("reconcile")}

#: A run's status (``run.status``) → its word (成功, 部分完成…).
RUN_STATUS_WORDS: dict[str, Any] = {
    "success": N_("succeeded"), "partial": N_("partly done"), "failed": N_("failed"), "running": N_("running"),
    "abandoned": N_("abandoned"),
}
#: A record's status on the wire and on the platform (registry-api.md §4.1–§4.9, v1.1's kinds included) → its word.
RECORD_STATUS_WORDS: dict[str, Any] = {
    "ACTIVE": N_("active"), "SUSPENDED": N_("suspended"), "DISSOLVED": N_("dissolved"),
    "DEREGISTERED": N_("deregistered"), "PUBLISHED": N_("published"), "COMPLETED": N_("completed"),
    "CANCELLED": N_("cancelled"), "ACCEPTED": N_("accepted"), "REVOKED": N_("revoked"),
    "SCHEDULED": N_("scheduled"),
}
#: The codes of registry-api.md v1.1's fields (§4.6–§4.8) → their words, by field (canonical name, as the platform's
#: columns and ``regsync show`` name them): ``scheme``, ``tier``, ``training_type``, ``mode``, ``result``, ``status``.
#: The one place for these words: ``show``, the reports and the worklists read them through :func:`code_word`.
CODE_WORDS: dict[str, dict[str, Any]] = {
    "scheme": {"PROVINCIAL_ANNUAL": N_("annual commendation scheme")},
    # the same msgids as regsync.domain.commendations.TIER_WORDS (one translation each)
    "tier": {"CARE": N_("Care Award"), "BRONZE": N_("Bronze Award"), "SILVER": N_("Silver Award"),
             "GOLD": N_("Gold Award"), "GOLD_EXCELLENCE": N_("Gold Award for Excellence"),
             "HONOR": N_("Honor Award")},
    "training_type": {"GENERAL": N_("general training"), "POST": N_("on-the-job training"),
                      "PROFESSIONAL": N_("professional training")},
    "mode": {"ONLINE": N_("remote / online"), "IN_PERSON": N_("in person")},
    "result": {"PASSED": N_("passed"), "ATTENDED": N_("attended")},
    "subject_type": {"VOLUNTEER": N_("volunteer"), "ORG": N_("organization")},
    "status": RECORD_STATUS_WORDS,
}
#: The wire's camelCase names of :data:`CODE_WORDS`' fields.
_WIRE_FIELDS = {"trainingType": "training_type", "subjectType": "subject_type"}


def code_word(field: str, code: str | None) -> str:
    """A field's code in words, in the language in force (``training_type`` ``GENERAL`` → 通用培训).

    Args:
        field: the field, canonical (``training_type``) or as on the wire (``trainingType``).
        code: its value; ``None`` reads ``—``, a code with no word (or a field without codes) reads as itself.
    """
    return word(CODE_WORDS.get(_WIRE_FIELDS.get(field, field), {}), code)


def word(table: dict[str, Any], code: str | None) -> str:
    """The word for ``code`` in ``table``, in the language in force; the code itself when it has none."""
    if code is None:
        return "—"
    found = table.get(code)
    return str(found) if found is not None else code
