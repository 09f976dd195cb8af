"""A reconcile's hours view: a person's ACCEPTED hours in the local records against those of the province's service
records in the registry's export (``hours_mismatch``), and the hours per city and org line for the summary; beside
them (issue 16, point 7) a person's training hours: the class hours of their ACCEPTED training records on the
platform against the registry's ``trainingHours`` (registry-api.md v1.1 §4.2), and the star levels by city and line.

The registry's side is staged as its export streams past (:meth:`HoursView.stage_service_records`,
:meth:`HoursView.stage_volunteers`: temporary tables of one connection, :mod:`regsync.db.reconcile`), then
summed per person and merge-joined with the local sums (:mod:`regsync.db.platform.totals`) in the registry's
byte order of the volunteer's registry id, so memory stays flat. The registry's national ``totalHours`` and star
level of each person whose hours differ are looked up and shown beside. Hours are hundredths of an hour.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from regsync.db.platform.scan import uses_c_order
from regsync.db.platform.totals import (
    linked_primary_volunteers,
    local_hours_by_person,
    org_hours,
    unlinked_volunteer_hours,
)
from regsync.db.query import chunks
from regsync.db.reconcile import (
    drop_hours_staging,
    open_hours_staging,
    stage_registry_hours,
    stage_registry_persons,
    staged_hours_by_person,
)
from regsync.domain.hours import NOT_IN_REGISTRY_FIGURES, UNKNOWN_CITY, HoursAggregator
from regsync.flows.reconcile_findings import Finding, Mode, Recorder
from regsync.flows.reconcile_places import ORG_LINES, Places, city_of
from regsync.registry.port import RegistryPort

log = structlog.get_logger("regsync.flows.reconcile")  # the reconcile's log, as before its parts were modules

#: Registry records staged per insert.
STAGE = 1000
#: Persons whose hours differ looked up per ``/lookup`` (their national total hours and star level).
LOOKUP = 500


class HoursView:
    """The hours of one run.

    Args:
        engine: the local store.
        client: the registry client (``lookup``).
        recorder: where ``hours_mismatch`` findings go.
        places: the registry's orgs (region, type, level), for the hours per org.
        mode: report, plan or repair (hours are never repaired: they follow from the service records' repairs).
    """

    def __init__(self, engine: Engine, client: RegistryPort, recorder: Recorder, places: Places, mode: Mode) -> None:
        self.engine = engine
        self.client = client
        self.rec = recorder
        self.places = places
        self.mode = mode
        #: the registry export's ACCEPTED hours per org registry id (hundredths)
        self.reg_hours_by_org: Counter[str] = Counter()
        #: the hours view per person (regsync.domain.hours), filled by :meth:`mismatches`
        self.per_person = HoursAggregator()
        self._conn: Connection | None = None

    @property
    def staging(self) -> bool:
        """Whether the staging tables are open (:meth:`open`)."""
        return self._conn is not None

    def open(self, stack: ExitStack) -> None:
        """Open the staging tables on a connection of their own, closed and dropped when ``stack`` closes."""
        conn = stack.enter_context(self.engine.connect())
        open_hours_staging(conn)
        self._conn = conn

        def drop() -> None:
            try:
                drop_hours_staging(conn)
            except Exception as exc:  # noqa: BLE001 — a temporary table goes with its connection anyway
                log.debug("reconcile: temporary table left to its connection", error=str(exc))

        stack.callback(drop)

    def stage_service_records(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``recs`` (the registry's service records) passed through, their hours staged by :data:`STAGE`."""
        buf: list[dict[str, Any]] = []
        for r in recs:
            buf.append(r)
            if len(buf) >= STAGE:
                self.note_registry_hours(buf)
                buf = []
            yield r
        if buf:
            self.note_registry_hours(buf)

    def stage_volunteers(self, recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``recs`` (the registry's volunteers) passed through, each one's region, national ``totalHours`` and
        ``trainingHours`` (hundredths) staged for the hours view."""
        buf: list[dict[str, Any]] = []
        for r in recs:
            total = r.get("total_hours")  # decoded by the wire adapter: hundredths of an hour
            training = r.get("training_hours")  # v1.1 (registry-api.md §4.2)
            buf.append({"v": r["id"], "r": r.get("region_code"), "t": int(total) if total is not None else None,
                        "th": int(training) if training is not None else None})
            if len(buf) >= STAGE and self._conn is not None:
                stage_registry_persons(self._conn, buf)
                buf = []
            yield r
        if buf and self._conn is not None:
            stage_registry_persons(self._conn, buf)

    def note_registry_hours(self, recs: Iterable[dict[str, Any]]) -> None:
        """Stage the ACCEPTED hours of registry service records (per volunteer) in the temporary table, and count
        them per org."""
        rows = [{"v": r["volunteer_id"], "h": int(r.get("hours") or 0)} for r in recs
                if r.get("status") == "ACCEPTED" and r.get("volunteer_id")]
        for r in recs:
            if r.get("status") == "ACCEPTED" and r.get("org_id"):
                self.reg_hours_by_org[r["org_id"]] += int(r.get("hours") or 0)
        if rows and self._conn is not None:
            stage_registry_hours(self._conn, rows)

    def mismatches(self, region: str | None) -> None:
        """``hours_mismatch`` per person: local ACCEPTED hours (all the person's rows, through their links)
        against the registry export's, merge-joined by the volunteer's registry id; every person counted in
        :attr:`per_person`."""
        conn = self._conn
        if conn is None:
            return
        c_order = uses_c_order(conn)
        with self.engine.connect() as lconn:
            local = local_hours_by_person(lconn, region, c_order=c_order)
            regs = staged_hours_by_person(conn, c_order=c_order)
            pending: list[tuple[str, int, int]] = []
            agg = self.per_person

            def person(a: Any, b: Any) -> None:
                lh, rh = int(a.h or 0) if a is not None else 0, int(b.h or 0) if b is not None else 0
                lt = int(a.th or 0) if a is not None else 0
                rt = int(b.training or 0) if b is not None and b.training is not None else 0
                if a is None and not rh:
                    return  # a registry person with no hours in the province: nothing to show
                region_code = (a.region if a is not None else None) or (b.region if b is not None else None)
                if region and not (region_code or "").startswith(region):
                    return
                line = None if a is None or not lh else ("specialized" if 2 * int(a.spec or 0) > lh else "regional")
                total = int(b.total) if b is not None and b.total is not None else rh
                agg.add(city_of(region_code), line, lh, rh, total, lt, rt)
                if lh != rh:
                    pending.append(((a or b).rid, lh, rh))

            a, b = local.fetchone(), regs.fetchone()
            while a is not None or b is not None:
                if b is None or (a is not None and a.rid < b.rid):
                    person(a, None)
                    a = local.fetchone()
                elif a is None or b.rid < a.rid:
                    person(None, b)
                    b = regs.fetchone()
                else:
                    person(a, b)
                    a, b = local.fetchone(), regs.fetchone()
            local.close()
            regs.close()
        # persons known on one side only are counted; a registry-only person must be linked to count
        for chunk in chunks(pending, LOOKUP):
            with self.engine.connect() as lconn:
                linked = linked_primary_volunteers(lconn, [c[0] for c in chunk])
            national = {r["id"]: r for r in self.client.lookup("volunteer", [c[0] for c in chunk if c[0] in linked])}
            for rid, lh, rh in chunk:
                if rid not in linked or lh == rh:
                    continue
                region_code, local_id = linked[rid]
                if region and not (region_code or "").startswith(region):
                    continue
                nat = national.get(rid, {})
                self.rec.add(Finding(
                    "hours_mismatch", "volunteer", local_id, rid, ["hours"],
                    {"local_hours": _h(lh), "registry_hours": _h(rh), "local_hundredths": lh,
                     "registry_hundredths": rh, "registry_total_hours": _h(nat.get("total_hours")),
                     "registry_star_level": nat.get("star_level")},
                    city_of(region_code), None, *self.mode.no_repair()))

    def section(self, region: str | None) -> dict[str, Any]:
        """The summary's ``hours``: the per-person view (:attr:`per_person`) and, under ``by_org``, per city and
        per org line, local ACCEPTED hours against the registry export's, in hundredths of an hour (a grassroots
        team's hours count for both lines, registry-api.md §4.1); under ``not_in_registry``, the hours of
        volunteers the registry does not know (:meth:`not_in_registry`)."""
        by_city: dict[str, dict[str, int]] = defaultdict(lambda: {"local_hours_hundredths": 0,
                                                                  "registry_hours_hundredths": 0})
        by_line: dict[str, dict[str, int]] = defaultdict(lambda: {"local_hours_hundredths": 0,
                                                                  "registry_hours_hundredths": 0})
        with self.engine.connect() as conn:
            for region_code, org_type, level, h in org_hours(conn, region):
                _add_hours(by_city, by_line, region_code, org_type, level, h, "local_hours_hundredths")
        for org_rid, h in self.reg_hours_by_org.items():
            region_code, org_type, level = self.places.org_info.get(org_rid, (None, None, None))
            if region and not (region_code or "").startswith(region):
                continue
            _add_hours(by_city, by_line, region_code, org_type, level, h, "registry_hours_hundredths")
        total = {"local_hours_hundredths": sum(v["local_hours_hundredths"] for v in by_city.values()),
                 "registry_hours_hundredths": sum(v["registry_hours_hundredths"] for v in by_city.values())}
        out = self.per_person.as_dict()  # per person (regsync.domain.hours): the report's hours view
        out["not_in_registry"] = self.not_in_registry(region)
        out["by_org"] = {"unit": "hundredths of an hour", "by_city": dict(sorted(by_city.items())),
                         "by_org_line": dict(sorted(by_line.items())), "total": total}
        return out

    def not_in_registry(self, region: str | None) -> dict[str, Any]:
        """The platform's ACCEPTED hours that the registry does not have at all.

        Those of volunteers linked to no registry volunteer, which the per-person comparison (linked persons only)
        leaves out. Shape (hours in
        hundredths; :data:`regsync.domain.hours.NOT_IN_REGISTRY_FIGURES`)::

            {"volunteers": 10, "service_records": 141, "local_hours": 45675,
             "by_city": {"2301": {"volunteers": 4, "service_records": 60, "local_hours": 20000}, ...}}
        """
        by_city: dict[str, dict[str, int]] = {}
        total = dict.fromkeys(NOT_IN_REGISTRY_FIGURES, 0)
        with self.engine.connect() as conn:
            for region_code, vols, recs, h in unlinked_volunteer_hours(conn, region):
                key = city_of(region_code) or UNKNOWN_CITY
                city = by_city.setdefault(key, dict.fromkeys(NOT_IN_REGISTRY_FIGURES, 0))
                for group in (city, total):
                    group["volunteers"] += vols
                    group["service_records"] += recs
                    group["local_hours"] += h
        return {**total, "by_city": dict(sorted(by_city.items()))}


def _add_hours(by_city: dict[str, dict[str, int]], by_line: dict[str, dict[str, int]], region_code: str | None,
               org_type: str | None, level: str | None, h: int, key: str) -> None:
    by_city[city_of(region_code) or "unknown"][key] += h
    line = ORG_LINES.get(org_type or "")
    if line:
        by_line[line][key] += h
    if level == "GRASSROOTS_TEAM":
        by_line["regional"][key] += h  # also the community station's (the dual structure)


def _h(hundredths: Any) -> str | None:
    """Hundredths of an hour as the wire's decimal string (``250`` → ``"2.50"``)."""
    if hundredths is None:
        return None
    n = int(hundredths)
    return f"{n // 100}.{n % 100:02d}"


__all__ = ["LOOKUP", "STAGE", "HoursView"]
