"""The hours view's aggregation (regsync.domain.hours): units, star levels, breakdowns, streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from regsync.domain.hours import STAR_THRESHOLDS, HoursAggregator, format_hours, hours_summary, star_level


@pytest.mark.parametrize(("hours", "level"), [
    (0, 0), (9_999, 0), (10_000, 1), (29_999, 1), (30_000, 2), (59_999, 2), (60_000, 3),
    (99_999, 3), (100_000, 4), (149_999, 4), (150_000, 5), (10_000_000, 5),
])
def test_star_levels_begin_at_100_300_600_1000_1500_hours(hours: int, level: int) -> None:
    assert star_level(hours) == level


def test_thresholds_are_in_hundredths_of_an_hour() -> None:
    assert STAR_THRESHOLDS == (10_000, 30_000, 60_000, 100_000, 150_000)


@pytest.mark.parametrize(("value", "text"), [(0, "0.00"), (5, "0.05"), (250, "2.50"), (123_450, "1,234.50"),
                                             (-705, "-7.05"), (None, "—")])
def test_format_hours_is_exact(value: int | None, text: str) -> None:
    assert format_hours(value) == text


def test_summary_per_city_and_line_with_stars_on_each_side() -> None:
    rows = [
        ("2301", "regional", 12_000, 12_000, 12_000),      # 120 h: 1 star both sides
        ("2301", "specialized", 30_050, 29_950, 31_000),   # local 2 stars, registry total 310 h: 2 stars
        ("2302", "regional", 150_000, 150_000, 150_000),   # 5 stars
        (None, None, 500, 0, 0),                           # not in the registry yet
    ]
    s = hours_summary(rows)
    assert s["unit"] == "hundredths_of_an_hour"
    assert s["total"] == {
        "volunteers": 4, "local_hours": 192_550, "registry_hours": 191_950, "registry_total_hours": 193_000,
        "hours_diff": 600, "volunteers_differing": 2,
        "stars_local": [1, 1, 1, 0, 0, 1], "stars_registry": [1, 1, 1, 0, 0, 1],
        "local_training_hours": 0, "registry_training_hours": 0, "training_hours_diff": 0,
        "volunteers_training_differing": 0,
    }
    assert list(s["by_city"]) == ["2301", "2302", "unknown"]
    assert s["by_city"]["2301"]["local_hours"] == 42_050
    assert s["by_city"]["2301"]["hours_diff"] == 100
    assert s["by_city"]["unknown"]["stars_local"] == [1, 0, 0, 0, 0, 0]
    assert list(s["by_org_line"]) == ["none", "regional", "specialized"]
    assert s["by_org_line"]["regional"]["volunteers"] == 2
    assert s["by_org_line"]["regional"]["stars_registry"] == [0, 1, 0, 0, 0, 1]
    # every breakdown adds up to the total
    for breakdown in ("by_city", "by_org_line"):
        for key in ("volunteers", "local_hours", "registry_hours", "hours_diff"):
            assert sum(g[key] for g in s[breakdown].values()) == s["total"][key]
    assert json.loads(json.dumps(s)) == s


def test_training_hours_beside_and_star_levels_by_city_and_line() -> None:
    """Issue 16, point 7: a person's training hours on both sides (the platform's accepted training records' class
    hours, the registry's trainingHours) are summed beside the service hours and give no star; the star levels are
    crossed by city and line."""
    s = hours_summary([
        ("2301", "regional", 12_000, 12_000, 12_000, 300, 300),
        ("2301", "specialized", 30_000, 30_000, 30_000, 450, 300),   # a training record not in the registry
        ("2301", "specialized", 0, 0, 0, 200, 0),                    # trainings only: no star
        ("2302", "regional", 60_000, 60_000, 60_000),                # no training figures: 0 on both sides
    ])
    t = s["total"]
    assert (t["local_training_hours"], t["registry_training_hours"], t["training_hours_diff"]) == (950, 600, 350)
    assert t["volunteers_training_differing"] == 2
    assert s["by_city"]["2301"]["local_training_hours"] == 950 and s["by_city"]["2302"]["local_training_hours"] == 0
    assert t["stars_local"] == [1, 1, 1, 1, 0, 0]
    cross = s["by_city_line"]
    assert list(cross) == ["2301", "2302"] and list(cross["2301"]) == ["regional", "specialized"]
    assert cross["2301"]["specialized"]["volunteers"] == 2
    assert cross["2301"]["specialized"]["stars_local"] == [1, 0, 1, 0, 0, 0]
    assert cross["2302"]["regional"]["stars_registry"] == [0, 0, 0, 1, 0, 0]
    assert sum(g["volunteers"] for lines in cross.values() for g in lines.values()) == t["volunteers"]
    with pytest.raises(ValueError, match="local_training_hours"):
        HoursAggregator().add("2301", None, 0, 0, 0, -50, 0)


def test_local_star_from_local_hours_registry_star_from_registry_total() -> None:
    s = hours_summary([("2301", "regional", 9_000, 9_000, 61_000)])
    assert s["total"]["stars_local"] == [1, 0, 0, 0, 0, 0]
    assert s["total"]["stars_registry"] == [0, 0, 0, 1, 0, 0]


def test_consumes_a_generator_once_without_keeping_rows() -> None:
    seen = 0

    def people() -> Iterator[tuple[str, str, int, int, int]]:
        nonlocal seen
        for i in range(10_000):
            seen += 1
            yield (f"23{i % 13 + 1:02d}", ("regional", "specialized")[i % 2], i * 10, i * 10, i * 10)

    s = hours_summary(people())
    assert seen == 10_000
    assert s["total"]["volunteers"] == 10_000
    assert sum(s["total"]["stars_local"]) == 10_000
    assert len(s["by_city"]) == 13


def test_as_dict_is_a_copy() -> None:
    agg = HoursAggregator()
    agg.add("2301", "regional", 100, 100, 100)
    first = agg.as_dict()
    agg.add("2301", "regional", 100, 100, 100)
    assert first["total"]["volunteers"] == 1
    assert first["total"]["stars_local"] == [1, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("bad", [-1, 2.5, "250", True])
def test_refuses_hours_that_are_not_whole_hundredths(bad: object) -> None:
    with pytest.raises(ValueError, match="hundredths"):
        hours_summary([("2301", "regional", bad, 0, 0)])  # type: ignore[list-item]


def test_reports_public_names_are_sorted_and_documented() -> None:
    import regsync.reports as reports

    assert reports.__all__ == sorted(reports.__all__)
    for name in reports.__all__:
        value = getattr(reports, name)
        if callable(value):
            assert value.__doc__, name
