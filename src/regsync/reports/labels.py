"""What the reports call things, in the reader's language (issue 15, point 1): run statuses, organization lines,
repairs, the keys of a run's summary, and one discrepancy's record and details as a line of text.

Codes stay codes in JSON and CSV (the machine interface); the text and HTML reports name them through these
functions, translated when called (:mod:`regsync.i18n`, the field's words of :mod:`regsync.domain.words`), so the
language chosen by ``--lang`` / ``REGSYNC_LANG`` holds. A code with no word reads as itself.

A discrepancy without an organization line (``org_line`` empty, counted under ``"none"``) reads as 未归属
("unassigned"), never "none": the reconcile is being changed to always set the line; until then the report says
plainly that nobody is assigned.
"""

from __future__ import annotations

from typing import Any

from regsync.domain.hours import format_hours
from regsync.domain.reasons import reason_for
from regsync.domain.words import (
    DISCREPANCY_WORDS,
    KIND_WORDS,
    LINE_WORDS,
    RUN_STATUS_WORDS,
    RUN_WORDS,
    code_word,
    word,
)
from regsync.i18n import gettext as _
from regsync.i18n import lazy_gettext as N_
from regsync.reports.data import city_name

__all__ = [
    "ACTION_WORDS",
    "STATE_WORDS",
    "STATUS_WORDS",
    "SUMMARY_WORDS",
    "city_label",
    "FIELD_WORDS",
    "details_text",
    "discrepancy_word",
    "duration_text",
    "entity_word",
    "field_word",
    "has_training",
    "hours_sentences",
    "line_word",
    "WAITING_CODES",
    "record_label",
    "refusal_text",
    "repair_text",
    "run_word",
    "status_word",
    "summary_items",
]

#: A run's status → its word (:data:`regsync.domain.words.RUN_STATUS_WORDS`).
STATUS_WORDS: dict[str, Any] = RUN_STATUS_WORDS
#: A repair's action (``discrepancy.action``) → its word.
ACTION_WORDS: dict[str, Any] = {
    "push": N_("push to the registry"), "pull": N_("pull from the registry"), "relink": N_("relink"),
    "none": N_("no automatic repair"),
}
#: A repair's state (``discrepancy.action_state``) → its word.
STATE_WORDS: dict[str, Any] = {
    "queued": N_("queued"), "done": N_("done"), "held": N_("held for a person"), "failed": N_("failed"),
    "not_allowed": N_("not allowed"), "requeued": N_("queued again after a refusal"),
}
#: The keys of a run's summary (what sync, inbound, reconcile and adopt record) → their words.
SUMMARY_WORDS: dict[str, Any] = {
    "compared": N_("records compared"), "compared_total": N_("records compared in all"),
    "repair": N_("repairs made"), "seconds": N_("time taken"), "queued": N_("repairs queued"),
    "requeued": N_("queued again"), "repaired": N_("repaired"), "actions": N_("repairs by action"),
    "pushed": N_("pushed"), "linked": N_("linked"), "failed": N_("failed"), "failed_by_code": N_("failed, by code"),
    "still_failed": N_("still failing"), "still_failed_by_code": N_("still failing, by code"),
    "unchanged": N_("unchanged"), "deferred": N_("deferred"), "backlog": N_("backlog"), "batches": N_("batches"),
    "error": N_("error"), "applied": N_("changes applied"), "changes": N_("changes read"),
    "reconcile_due": N_("full reconcile due"), "reconcile_reason": N_("why a reconcile is due"),
    "conflicts": N_("conflicts opened"), "pulled": N_("pulled"), "merged": N_("merged"), "adopted": N_("adopted"),
    "created_locally": N_("created on the platform"), "registry_owned": N_("kept as the registry's"),
    "ended_locally": N_("ended on the platform"), "pushes_queued": N_("pushes queued"),
    "transferred_out": N_("transferred out"), "kinds": N_("kinds compared"), "region": N_("region"),
    "discrepancies": N_("discrepancies"), "by_entity": N_("discrepancies by record kind"),
    "by_city": N_("discrepancies by city"), "by_org_line": N_("discrepancies by organization line"),
    "listed": N_("records listed"), "feed_restarted": N_("feed restarted"),
    "snapshot_cursor": N_("snapshot cursor"), "unknown_types": N_("unknown record types skipped"),
    "unknown_fields": N_("unknown fields seen"), "paused": N_("paused"), "client": N_("client"),
    "merged_on_push": N_("merged on push"), "held_fields": N_("fields held"),
    "decisions_on_push": N_("decisions on push"), "inbound": N_("the registry's feed"),
}
#: The sides of a comparison, as a summary's ``compared`` counts them.
_SIDE_WORDS: dict[str, Any] = {"local": N_("platform"), "registry": N_("registry"), "pairs": N_("in both"),
                               "records": N_("records on both sides")}
#: Summary keys the report shows elsewhere (the run's own id and status, the hours view, the discrepancies' counts
#: in their own tables) or that are logs.
_SUMMARY_SKIPPED = frozenset({"hours", "run_id", "status", "decision_log_on_push", "discrepancies", "by_entity",
                              "by_city", "by_org_line"})
#: Plural kind names used as keys in summaries (``orgs``) → the kind (``org``).
_PLURAL_KINDS = {"orgs": "org", "volunteers": "volunteer", "memberships": "membership", "activities": "activity",
                 "service_records": "service_record"}


def status_word(status: str) -> str:
    """A run's status in words (``partial`` → 部分完成)."""
    return word(STATUS_WORDS, status)


def run_word(kind: str) -> str:
    """A run's kind in words (``reconcile`` → 对账)."""
    return word(RUN_WORDS, kind)


def discrepancy_word(kind: str) -> str:
    """A discrepancy kind in words (``missing_in_registry`` → 全国系统缺少该记录…, domain/words.py)."""
    return word(DISCREPANCY_WORDS, kind)


def entity_word(entity: str) -> str:
    """A record kind in words (``volunteer`` → 志愿者); a plural key of a summary (``volunteers``) too."""
    return word(KIND_WORDS, _PLURAL_KINDS.get(entity, entity))


def line_word(line: str | None) -> str:
    """An organization line in words; ``None``, ``""`` and ``"none"`` read as 未归属 ("unassigned")."""
    if not line or line == "none":
        return _("unassigned")
    return word(LINE_WORDS, line)


def city_label(code: str | None) -> str:
    """A city as a reader names it: ``哈尔滨市`` for ``2301``; 城市不明 ("city unknown") for none or
    ``unknown``; the code itself when it is not a known city."""
    if not code or code == "unknown":
        return _("city unknown")
    return city_name(code) or code


def has_training(hours: dict[str, Any]) -> bool:
    """Whether the run recorded training hours (issue 16, point 7; runs before it did not) and holds any, on either
    side."""
    total = hours.get("total", {})
    return bool(total.get("local_training_hours") or total.get("registry_training_hours")) and all(
        isinstance(g.get("local_training_hours"), int) for g in hours.get("by_city", {}).values())


def hours_sentences(hours: dict[str, Any]) -> list[str]:
    """The hours view's figures in words, one sentence each, saying what each counts.

    For the text and HTML reports:

    1. the comparison: volunteers linked to the registry, their ACCEPTED hours on the platform and in the registry,
       the difference and on how many of them; then their totalHours in the registry (all channels);
    2. the platform's ACCEPTED hours the registry does not have at all (volunteers it does not know), or that this
       run did not count them (a run recorded before they were counted);
    3. the platform's hours in all (1 + 2), when both are known;
    4. (issue 16, point 7) the training hours of the volunteers compared: the class hours of their ACCEPTED training
       records on the platform against the registry's trainingHours, when the run recorded them.

    Args:
        hours: a report's hours (``RunReport.hours``; shape :mod:`regsync.domain.hours`), hours in hundredths.
    """
    total = hours.get("total", {})
    out = [_("Volunteers linked to the registry (compared one by one): {volunteers} · their hours on the platform "
             "{local} h · accepted by the registry {registry} h · difference {diff} h on {differing} "
             "volunteers.").format(
        volunteers=f"{total.get('volunteers', 0):,}", local=format_hours(total.get("local_hours")),
        registry=format_hours(total.get("registry_hours")), diff=format_hours(total.get("hours_diff")),
        differing=f"{total.get('volunteers_differing', 0):,}"),
        _("The registry's totalHours of these volunteers (all channels: the national portal, other provinces too): "
          "{hours} h.").format(hours=format_hours(total.get("registry_total_hours")))]
    if isinstance(total.get("local_training_hours"), int):
        out.append(_("Training hours of these volunteers (registry-api.md v1.1): class hours of accepted training "
                     "records on the platform {local} h · the registry's trainingHours {registry} h · difference "
                     "{diff} h on {differing} volunteers; training hours give no star.").format(
            local=format_hours(total.get("local_training_hours")),
            registry=format_hours(total.get("registry_training_hours")),
            diff=format_hours(total.get("training_hours_diff")),
            differing=f"{total.get('volunteers_training_differing', 0):,}"))
    missing = hours.get("not_in_registry")
    if missing is None:
        out.append(_("Hours of volunteers the registry does not know: not counted by this run (a later reconcile "
                     "counts them)."))
        return out
    out.append(_("Not in the registry at all: {hours} h in {records} accepted service records of {volunteers} "
                 "volunteers the registry does not know (never pushed, or refused); not in the comparison "
                 "above.").format(hours=format_hours(missing["local_hours"]),
                                  records=f"{missing['service_records']:,}",
                                  volunteers=f"{missing['volunteers']:,}"))
    out.append(_("The platform's accepted hours in all: {hours} h.").format(
        hours=format_hours(int(total.get("local_hours") or 0) + missing["local_hours"])))
    return out


def repair_text(action: str | None, state: str | None) -> str:
    """A discrepancy's repair in words: ``推送至全国系统 · 已排队``; 仅报告 ("report only") without one."""
    if not action:
        return _("report only")
    text = word(ACTION_WORDS, action)
    return f"{text} · {word(STATE_WORDS, state)}" if state else text


def duration_text(seconds: float | None) -> str:
    """``44 分 15 秒`` / ``44 min 15 s``, ``2 小时 5 分``, ``30 秒``; ``—`` for ``None`` (still running)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return _("{hours} h {minutes} min").format(hours=h, minutes=m)
    if m:
        return _("{minutes} min {seconds} s").format(minutes=m, seconds=sec)
    return _("{seconds} s").format(seconds=sec)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return f"{value:,}"
    if value is None or value == "":
        return "—"
    return str(value)


def _key_word(key: str) -> str:
    """A key of a run's summary, at any depth, in words: a summary key, a record kind (``orgs`` or ``org``), a
    discrepancy kind, an organization line, one side of a comparison; else the key itself."""
    if key in _PLURAL_KINDS or key in KIND_WORDS:
        return entity_word(key)
    if key in DISCREPANCY_WORDS:
        return discrepancy_word(key)
    if key in LINE_WORDS or key == "none":
        return line_word(key)
    found = SUMMARY_WORDS.get(key, _SIDE_WORDS.get(key))
    return str(found) if found is not None else key


def _value_text(key: str, value: Any, depth: int = 0) -> str:
    if key == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        return duration_text(value)
    if isinstance(value, dict):
        if not value:
            return "—"
        if key in ("by_city",):
            return " · ".join(f"{city_label(k)} {_value_text(k, v, depth + 1)}" for k, v in value.items())
        parts = [f"{_key_word(str(k))} {_value_text(str(k), v, depth + 1)}" for k, v in value.items()]
        return (" · " if depth == 0 else ", ").join(parts) if depth < 2 else "…"
    if isinstance(value, list):
        if not value:
            return "—"
        return "、".join(entity_word(v) if isinstance(v, str) and (v in KIND_WORDS or v in _PLURAL_KINDS)
                        else _value_text(key, v, depth + 1) for v in value[:20]) + (" …" if len(value) > 20 else "")
    return _scalar(value)


def summary_items(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """A run's summary as (label, text) lines people read, in :data:`SUMMARY_WORDS` order then the others sorted.

    Counts by kind read with the kinds' words (``志愿服务组织 1,204 · 志愿者 9,600``), yes/no as 是/否, seconds as a
    duration, nested objects as ``a 1 · b 2`` (never JSON); empty values, the hours (their own view), the
    discrepancies' counts (their own tables), the run's id and status (in the heading) and logs are left out.
    """
    order = {k: i for i, k in enumerate(SUMMARY_WORDS)}
    keys = sorted((k for k in summary if k not in _SUMMARY_SKIPPED and summary[k] not in (None, "", {}, [])),
                  key=lambda k: (order.get(k, len(order)), k))
    return [(_key_word(k), _value_text(k, summary[k])) for k in keys]


#: Keys of ``discrepancy.details`` that name the record (a masked name, an organization's or activity's name).
_NAME_KEYS = ("name", "title", "org_name", "display_name")


def record_label(entity: str, local_id: int | None, registry_id: str | None, details: dict[str, Any], *,
                 name_limit: int = 40, live_name: str | None = None) -> str:
    """The record a discrepancy is about, as one line: its kind, its name when the details hold one (already
    masked for a person), the platform's key and the registry's id (``志愿者 张* · 省平台键 1 · 全国系统编号
    V23…``); a name is cut at ``name_limit`` characters. Without a name in the details, ``live_name`` (the record's
    name on the platform, masked for a person) is shown."""
    parts = [entity_word(entity)]
    name = next((details[k] for k in _NAME_KEYS if isinstance(details.get(k), str) and details[k]), live_name)
    if name:
        parts.append(name if len(name) <= name_limit else name[: name_limit - 1] + "…")
    if local_id is not None:
        parts.append(_("platform key {key}").format(key=local_id))
    if registry_id:
        parts.append(_("registry id {id}").format(id=registry_id))
    return " · ".join(parts)


#: Fields whose values are codes with words (:data:`regsync.domain.words.CODE_WORDS`), as details name them.
_CODE_FIELDS = frozenset({"scheme", "tier", "trainingType", "training_type", "mode", "result", "subjectType",
                          "subject_type", "status"})


def _detail_value(key: str, value: Any) -> str:
    if key == "missing" and isinstance(value, str):
        return entity_word(value)
    if key in _CODE_FIELDS and isinstance(value, str):  # a v1.1 code (GENERAL → 通用培训), a status (ACTIVE → 有效)
        return code_word(key, value)
    if key in _ID_LISTS and isinstance(value, list):  # record keys: as they are (no thousands separators), once
        return "、".join(dict.fromkeys(str(v) for v in value))
    if key.endswith("hours") and isinstance(value, int) and not isinstance(value, bool):
        return _("{hours} h").format(hours=format_hours(value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {_detail_value(str(k), v)}" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(_detail_value(key, v) for v in value)
    return _scalar(value)


#: A record's field (the registry's wire name, as ``discrepancy.fields`` holds it) → its name; others read as
#: themselves.
FIELD_WORDS: dict[str, Any] = {
    "name": N_("name"), "title": N_("title"), "phone": N_("phone"), "idNumber": N_("ID number"),
    "idType": N_("ID type"), "regionCode": N_("region code"), "gender": N_("gender"),
    "birthDate": N_("date of birth"), "email": N_("e-mail"), "address": N_("address"),
    "contactName": N_("contact person"), "contactPhone": N_("contact phone"), "uscc": N_("USCC"),
    "level": N_("level"), "status": N_("status"), "skills": N_("skills"), "parentId": N_("parent organization"),
    "orgId": N_("organization"), "startTime": N_("start time"), "endTime": N_("end time"),
    "serviceDate": N_("service date"), "hours": N_("hours"), "totalHours": N_("registry total hours"),
    "homeProvince": N_("home province"), "activityId": N_("activity"), "volunteerId": N_("volunteer"),
    "category": N_("service category"), "startsAt": N_("start time"), "endsAt": N_("end time"),
    "establishedOn": N_("established on"), "joinedOn": N_("joined on"), "leftOn": N_("left on"),
    "orgType": N_("organization line"), "plannedHeadcount": N_("planned headcount"),
    "serviceCategories": N_("service categories"), "stationId": N_("community station"),
    "streetCode": N_("street code"),
    # registry-api.md v1.1 (§4.6–§4.9)
    "trainingId": N_("training"), "trainingType": N_("training type"), "mode": N_("mode"),
    "classHours": N_("class hours"), "completedOn": N_("completed on"), "result": N_("result"),
    "scheme": N_("scheme"), "tier": N_("tier"), "year": N_("year"), "awardedOn": N_("awarded on"),
    "issuer": N_("issuer"), "documentName": N_("document name"), "documentNumber": N_("document number"),
    "content": N_("content"), "evaluatorOrgId": N_("evaluator organization"), "punctuality": N_("punctuality"),
    "attitude": N_("attitude"), "competence": N_("competence"), "comment": N_("comment"),
    "evaluatedOn": N_("evaluated on"), "trainingHours": N_("training hours"),
}


def field_word(field: str) -> str:
    """A record's field in words (``regionCode`` → 行政区划代码); a reconcile's Python name reads as its wire name
    does (``class_hours`` → ``classHours``); an unknown field reads as itself."""
    if "_" in field and field not in FIELD_WORDS:
        head, *rest = field.split("_")
        camel = head + "".join(p.title() for p in rest)
        if camel in FIELD_WORDS:
            return word(FIELD_WORDS, camel)
    return word(FIELD_WORDS, field)


#: Keys of details with a word of their own.
_DETAIL_WORDS: dict[str, Any] = {
    "reason": N_("reason"), "local_hours": N_("hours on the platform"),
    "registry_hours": N_("hours in the registry"), "hours": N_("hours"), "service_date": N_("service date"),
    "missing": N_("missing"), "rows": N_("platform rows"), "idNumber": N_("ID number"), "phone": N_("phone"),
    "level": N_("level"), "link_version": N_("link version"), "registry_version": N_("registry version"),
    "id_number": N_("ID number"), "linked": N_("registry records"), "local_ids": N_("platform rows"),
    "registry_ids": N_("registry records"),
}
#: Details that list record keys (a duplicate person's rows, an ambiguous match's candidates).
_ID_LISTS = frozenset({"rows", "local_ids", "registry_ids", "linked"})


#: regsync's own codes of a record held back locally because a record it refers to is not in the registry (the
#: outbox state ``blocked``): the registry refused nothing of this record (relay_items.LOCAL_WAIT_CODES).
WAITING_CODES = frozenset({"PARENT_FAILED", "PARENT_DISCARDED", "PARENT_PENDING", "PRIMARY_PENDING"})


def refusal_text(code: str, state: str | None = None) -> str:
    """Why the record's change waits in the outbox, in words: a record held back behind its parent (outbox state
    ``blocked``, or a :data:`WAITING_CODES` code) reads ``等待上级记录：…``; a registry code (registry-api.md §7)
    reads as the registry's refusal with its reason (:func:`regsync.domain.reasons.reason_for`) and the code."""
    reason = reason_for(code).reason
    if state == "blocked" or code in WAITING_CODES:
        return _("waiting for its parent record: {reason}").format(reason=reason)
    return _("refused by the registry: {reason} ({code})").format(reason=reason, code=code)


def details_text(fields: list[str], details: dict[str, Any], *, limit: int = 400, refusal: str | None = None,
                 refusal_state: str | None = None) -> str:
    """A discrepancy's details as text people read (at most ``limit`` characters), never JSON.

    A field mismatch reads field by field, ``phone：省平台 0452-***5678 / 全国系统 0452-***9999``; other details as
    ``key value`` pairs with their words; the name (shown in the record column) is left out. Values are as the
    reconcile stored them, masked (:mod:`regsync.reports.data`). ``refusal``, the registry's code for the record's
    change waiting in the outbox (its outbox state ``refusal_state``), comes first, in words (:func:`refusal_text`):
    ``全国系统拒绝：手机号格式不正确（INVALID_PHONE）``, or ``等待上级记录：…`` for a record held back behind its
    parent.
    """
    local, registry = details.get("local"), details.get("registry")
    parts: list[str] = [refusal_text(refusal, refusal_state)] if refusal else []
    if isinstance(local, dict) or isinstance(registry, dict):
        local = local if isinstance(local, dict) else {}
        registry = registry if isinstance(registry, dict) else {}
        for f in fields or sorted(set(local) | set(registry)):
            parts.append(_("{field}: platform {local} / registry {registry}").format(
                field=field_word(f), local=_detail_value(f, local.get(f)), registry=_detail_value(f, registry.get(f))))
    for key, value in details.items():
        if key in ("local", "registry") or key in _NAME_KEYS:
            continue
        label = _DETAIL_WORDS.get(key)
        parts.append(f"{label if label is not None else field_word(key)} {_detail_value(key, value)}")
    if not parts and fields:
        parts.append(_("fields {fields}").format(fields="、".join(field_word(f) for f in fields)))
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
