"""The worklists' reasons in words (issue 15, point 2): every registry-api.md §7 code and field code, every class of
regsync.registry.errors, every code regsync writes itself and every discrepancy kind has a reason and what to do;
a code nobody knows gets a general reason naming it."""

from __future__ import annotations

import re
from pathlib import Path

from regsync.db.adopt import HELD_CODE
from regsync.db.holds import PARENT_DISCARDED
from regsync.domain.reasons import CODE_REASONS, DISCREPANCY_REASONS, OWN_CODES, reason_for
from regsync.domain.unmapped import CODE as UNMAPPED
from regsync.flows.relay_items import LOCAL_WAIT_CODES, OTHER_STORE_CODE
from regsync.i18n import use_language
from regsync.registry.errors import ERROR_CLASSES
from regsync.reports.data import DISCREPANCY_KINDS

ROOT = Path(__file__).resolve().parent.parent
#: A code regsync writes into the outbox: passed to the relay's outcomes or raised by the normalizer.
_WRITTEN = re.compile(r'(?:\.fail|\.defer|\.blocked)\(\s*\w+,\s*"([A-Z][A-Z0-9_]+)"|'
                      r'NormalizationError\([^,()]+,\s*"([A-Z][A-Z0-9_]+)"')


def _section_7_codes() -> set[str]:
    doc = (ROOT / "docs" / "registry-api.md").read_text(encoding="utf-8")
    section = doc.split("## 7. Error codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section))


def test_every_registry_code_has_a_reason() -> None:
    codes = _section_7_codes()
    assert {"INVALID_PHONE", "NOT_OWNER", "REFERENCE_NOT_ACTIVE", "MAINTENANCE"} <= codes  # the parse found §7
    assert not codes - set(CODE_REASONS), sorted(codes - set(CODE_REASONS))
    assert not set(ERROR_CLASSES) - set(CODE_REASONS), sorted(set(ERROR_CLASSES) - set(CODE_REASONS))


def test_every_code_regsync_writes_has_a_reason() -> None:
    written: set[str] = set()
    for path in (ROOT / "src" / "regsync").rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for a, b in _WRITTEN.findall(path.read_text(encoding="utf-8")):
            written.add(a or b)
    assert {"LOCAL_DATA_INVALID", "PARENT_PENDING", "INVALID_NAME", "SYNC_LOOP"} <= written  # the scan works
    written |= set(LOCAL_WAIT_CODES) | {OTHER_STORE_CODE, HELD_CODE, UNMAPPED, PARENT_DISCARDED, "PARENT_FAILED"}
    assert not written - set(CODE_REASONS), sorted(written - set(CODE_REASONS))
    assert OWN_CODES <= set(CODE_REASONS)


def test_every_discrepancy_kind_has_a_reason() -> None:
    assert set(DISCREPANCY_KINDS) == set(DISCREPANCY_REASONS)


def test_reasons_in_chinese_and_english_and_a_general_one_for_an_unknown_code() -> None:
    with use_language("zh_CN"):
        assert reason_for("INVALID_PHONE").reason == "手机号格式不正确"
        assert reason_for("INVALID_ID_NUMBER").reason == "身份证号校验位错误"
        assert reason_for("REFERENCE_NOT_ACTIVE").reason.startswith("所属组织已注销")
        assert reason_for("missing_locally", discrepancy=True).reason == "全国系统中有、省平台上没有"
        unknown = reason_for("BRAND_NEW_CODE")
        assert not unknown.known and "BRAND_NEW_CODE" in unknown.reason and "BRAND_NEW_CODE" in unknown.action
        assert reason_for(None).code == "UNKNOWN"
    with use_language("en"):
        assert reason_for("INVALID_PHONE").reason == "The phone number's format is wrong"
        assert reason_for("BRAND_NEW_CODE").reason == "Refused with code BRAND_NEW_CODE"


def test_invalid_class_hours_advice_names_both_causes() -> None:
    """Issue 16 (fixB), point 3: INVALID_CLASS_HOURS's advice covers the range and steps (§4.6) AND a training
    record's class hours above its training's (§4.7, the usual cause), in both languages."""
    with use_language("zh-CN"):
        action = reason_for("INVALID_CLASS_HOURS").action
    assert "以 0.5 为单位" in action and "0.5 到 200" in action
    assert "不得超过所属培训的学时" in action
    with use_language("en"):
        action = reason_for("INVALID_CLASS_HOURS").action
    assert "steps of 0.5" in action and "not more than its training's class hours" in action
