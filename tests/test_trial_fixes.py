"""A manager's trial in Chinese (issue 15 follow-up): durations in Chinese units, the reconcile/resync/adopt and
report command lines in the language in force (English kept as it was)."""

from __future__ import annotations

from regsync.domain.clock import format_age
from regsync.i18n import use_language


def test_format_age_speaks_chinese_and_keeps_english() -> None:
    with use_language("zh-CN"):
        assert format_age(551) == "9 分 11 秒"
        assert format_age(40) == "40 秒"
        assert format_age(2 * 3600 + 5 * 60) == "2 小时 5 分"
        assert format_age(3 * 86400 + 4 * 3600) == "3 天 4 小时"
        assert format_age(None) == "—"
    with use_language("en"):
        assert [format_age(s) for s in (551, 40, 7500, 273600, -5)] == ["9m 11s", "40s", "2h 5m", "3d 4h", "0s"]
