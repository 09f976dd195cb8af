"""The field's words for regsync's codes, as people read them (issue 15, point 1; ``../shared/glossary.md``).

Codes (kinds, discrepancy kinds, org lines, run kinds, flows) stay English in code, JSON and logs; whatever a
person reads names them with these words, translated when read (:func:`regsync.i18n.lazy_gettext`), so that a
table built at import speaks the language chosen later by ``--lang``. A code with no word here reads as itself.
"""

from __future__ import annotations

from typing import Any

from regsync.i18n import lazy_gettext as N_

__all__ = ["DISCREPANCY_WORDS", "FLOW_WORDS", "KIND_PLURAL_WORDS", "KIND_WORDS", "LINE_WORDS", "RUN_WORDS", "word"]

#: A kind (:data:`regsync.domain.kinds.KINDS`) → its name (志愿者, 志愿服务组织…).
KIND_WORDS: dict[str, Any] = {
    "org": N_("organization"), "volunteer": N_("volunteer"), "membership": N_("membership"),
    "activity": N_("activity"), "service_record": N_("service record"),
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


def word(table: dict[str, Any], code: str | None) -> str:
    """The word for ``code`` in ``table``, in the language in force; the code itself when it has none."""
    if code is None:
        return "—"
    found = table.get(code)
    return str(found) if found is not None else code
