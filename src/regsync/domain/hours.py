"""The hours view (服务时长): hours recorded locally against hours the registry accepted, per city and per
organization line, with the star levels (星级志愿者) those hours give.

The reconcile run computes it while it streams the volunteers, and stores it in its run's summary JSON under
the key ``hours``: ``summary["hours"] = hours_summary(rows)``, or, when the rows come one at a time,
``agg = HoursAggregator(); agg.add(...); summary["hours"] = agg.as_dict()``. Memory stays flat: only one
total per city and per organization line is kept, never the volunteers.

**Units.** Every hours figure, in and out, is an integer number of **hundredths of an hour** (``250`` is
2.50 h), as everywhere in regsync (design.md: never floats). :func:`format_hours` shows one as ``1,234.50``.

**Input**: one tuple per person (a person's duplicate local rows already added up, design.md "One person,
two local records"): ``(city_code, org_line, local_hours, registry_hours, registry_total_hours)``, and (issue 16,
point 7) optionally the person's training hours on both sides:

* ``city_code``: the 4-digit GB/T 2260 prefix of the volunteer's region (``"2301"``), or ``None``;
* ``org_line``: ``"regional"`` or ``"specialized"``, the line the volunteer's hours were mostly served in,
  or ``None`` (no membership);
* ``local_hours``: hours of the volunteer's accepted service records on the platform;
* ``registry_hours``: hours of those same records as the registry accepted them;
* ``registry_total_hours``: the registry's ``totalHours`` of the volunteer (it also counts hours recorded
  through other channels: the portal, other provinces);
* ``local_training_hours``: the class hours of the volunteer's ACCEPTED training records on the platform
  (registry-api.md v1.1, §4.7); ``registry_training_hours``: the registry's ``trainingHours`` of the volunteer
  (§4.2: the same sum over the registry's records, portal-entered ones included). Training hours give no star.

**Star levels**: 1 to 5 at ≥ 100 / 300 / 600 / 1000 / 1500 h (:data:`STAR_THRESHOLDS`), 0 below 100 h. The
local level comes from ``local_hours``; the registry's from ``registry_total_hours`` (the level the registry
shows the volunteer).

**Output** (``summary["hours"]``, JSON-ready, keys of the breakdowns sorted)::

    {
      "unit": "hundredths_of_an_hour",
      "star_thresholds": [10000, 30000, 60000, 100000, 150000],
      "total": GROUP,
      "by_city": {"2301": GROUP, "2302": GROUP, ..., "unknown": GROUP},
      "by_org_line": {"none": GROUP, "regional": GROUP, "specialized": GROUP},
      "by_city_line": {"2301": {"regional": GROUP, "specialized": GROUP}, ...}
    }

    GROUP = {
      "volunteers": 1200,                  # persons counted
      "local_hours": 3456700,              # sums, in hundredths of an hour
      "registry_hours": 3450000,
      "registry_total_hours": 3502500,
      "hours_diff": 6700,                  # local_hours - registry_hours
      "volunteers_differing": 3,           # persons whose local_hours != registry_hours
      "stars_local": [1100, 80, 15, 4, 1, 0],      # persons at star level 0, 1, 2, 3, 4, 5 (index = level)
      "stars_registry": [1098, 81, 16, 4, 1, 0],
      "local_training_hours": 120000,      # class hours of ACCEPTED training records (v1.1), hundredths
      "registry_training_hours": 118000,   # the registry's trainingHours
      "training_hours_diff": 2000,         # local_training_hours - registry_training_hours
      "volunteers_training_differing": 2
    }

``by_city_line`` crosses the two breakdowns (the star levels of each city on each line); runs recorded before it,
and before the training figures, lack those keys.

A reconcile adds ``"not_in_registry"``: the platform's ACCEPTED hours the registry does not have at all (volunteers
linked to no registry volunteer; the comparison above counts linked persons only)::

    "not_in_registry": {"volunteers": 10, "service_records": 141, "local_hours": 45675,
                        "by_city": {"2301": {"volunteers": 4, "service_records": 60, "local_hours": 20000}}}

The platform's hours in all are ``total.local_hours + not_in_registry.local_hours``.

A breakdown only has the keys that occurred; a ``None`` city is counted under ``"unknown"``, a ``None`` line
under ``"none"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["NOT_IN_REGISTRY_FIGURES", "STAR_THRESHOLDS", "HoursAggregator", "format_hours", "hours_summary",
           "star_level"]

#: Hours (in hundredths of an hour) at which star levels 1..5 begin: 100, 300, 600, 1000, 1500 h.
STAR_THRESHOLDS: tuple[int, ...] = (10_000, 30_000, 60_000, 100_000, 150_000)
#: The value of ``summary["hours"]["unit"]``.
UNIT = "hundredths_of_an_hour"
#: The breakdown key of a volunteer with no city code.
UNKNOWN_CITY = "unknown"
#: The breakdown key of a volunteer with no organization line.
NO_LINE = "none"

#: The figures of ``summary["hours"]["not_in_registry"]`` and of each of its cities.
NOT_IN_REGISTRY_FIGURES = ("volunteers", "service_records", "local_hours")

_FIGURES = ("volunteers", "local_hours", "registry_hours", "registry_total_hours", "hours_diff",
            "volunteers_differing", "local_training_hours", "registry_training_hours", "training_hours_diff",
            "volunteers_training_differing")


def star_level(hours: int) -> int:
    """The star level (0 to 5) that ``hours`` (hundredths of an hour) give: 1 from 100 h, …, 5 from 1500 h."""
    level = 0
    for threshold in STAR_THRESHOLDS:
        if hours >= threshold:
            level += 1
    return level


def format_hours(hours: int | None) -> str:
    """Hundredths of an hour as hours with two decimals and thousands separators: ``123450`` → ``1,234.50``;
    ``None`` → ``—``. Exact (no float)."""
    if hours is None:
        return "—"
    sign = "-" if hours < 0 else ""
    whole, cents = divmod(abs(int(hours)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _group() -> dict[str, Any]:
    return {**dict.fromkeys(_FIGURES, 0), "stars_local": [0] * 6, "stars_registry": [0] * 6}


class HoursAggregator:
    """Totals per city and per organization line, added one person at a time (flat memory).

    Example::

        agg = HoursAggregator()
        for person in people:
            agg.add(person.city_code, person.org_line, person.local, person.registry, person.registry_total)
        summary["hours"] = agg.as_dict()
    """

    def __init__(self) -> None:
        self._total = _group()
        self._by_city: dict[str, dict[str, Any]] = {}
        self._by_line: dict[str, dict[str, Any]] = {}
        self._by_city_line: dict[str, dict[str, dict[str, Any]]] = {}

    def add(self, city_code: str | None, org_line: str | None, local_hours: int, registry_hours: int,
            registry_total_hours: int, local_training_hours: int = 0, registry_training_hours: int = 0) -> None:
        """Count one person. Hours are integers in hundredths of an hour (see the module docstring).

        Raises:
            ValueError: an hours figure is not an integer, or is negative.
        """
        for name, value in (("local_hours", local_hours), ("registry_hours", registry_hours),
                            ("registry_total_hours", registry_total_hours),
                            ("local_training_hours", local_training_hours),
                            ("registry_training_hours", registry_training_hours)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer of hundredths of an hour, got {value!r}")
        local_star = star_level(local_hours)
        registry_star = star_level(registry_total_hours)
        differs = int(local_hours != registry_hours)
        city = self._by_city.get(city_code or UNKNOWN_CITY)
        if city is None:
            city = self._by_city[city_code or UNKNOWN_CITY] = _group()
        line = self._by_line.get(org_line or NO_LINE)
        if line is None:
            line = self._by_line[org_line or NO_LINE] = _group()
        lines = self._by_city_line.setdefault(city_code or UNKNOWN_CITY, {})
        city_line = lines.get(org_line or NO_LINE)
        if city_line is None:
            city_line = lines[org_line or NO_LINE] = _group()
        training_differs = int(local_training_hours != registry_training_hours)
        for group in (self._total, city, line, city_line):
            group["volunteers"] += 1
            group["local_hours"] += local_hours
            group["registry_hours"] += registry_hours
            group["registry_total_hours"] += registry_total_hours
            group["hours_diff"] += local_hours - registry_hours
            group["volunteers_differing"] += differs
            group["stars_local"][local_star] += 1
            group["stars_registry"][registry_star] += 1
            group["local_training_hours"] += local_training_hours
            group["registry_training_hours"] += registry_training_hours
            group["training_hours_diff"] += local_training_hours - registry_training_hours
            group["volunteers_training_differing"] += training_differs

    def as_dict(self) -> dict[str, Any]:
        """The ``summary["hours"]`` object (shape in the module docstring); a copy, safe to keep."""

        def copy(group: dict[str, Any]) -> dict[str, Any]:
            return {**group, "stars_local": list(group["stars_local"]),
                    "stars_registry": list(group["stars_registry"])}

        return {
            "unit": UNIT,
            "star_thresholds": list(STAR_THRESHOLDS),
            "total": copy(self._total),
            "by_city": {k: copy(v) for k, v in sorted(self._by_city.items())},
            "by_org_line": {k: copy(v) for k, v in sorted(self._by_line.items())},
            "by_city_line": {c: {k: copy(v) for k, v in sorted(lines.items())}
                             for c, lines in sorted(self._by_city_line.items())},
        }


def hours_summary(rows: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """Aggregate per-person hours into the ``summary["hours"]`` object, consuming ``rows`` as it goes.

    Args:
        rows: ``(city_code, org_line, local_hours, registry_hours, registry_total_hours)`` per person, optionally
            followed by ``local_training_hours, registry_training_hours``; hours in hundredths of an hour (module
            docstring); any iterable, e.g. a database cursor.

    Returns:
        The object whose shape the module docstring gives.

    Raises:
        ValueError: an hours figure is not a non-negative integer.
    """
    agg = HoursAggregator()
    for row in rows:
        agg.add(*row)
    return agg.as_dict()
