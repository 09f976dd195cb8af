"""A reconcile's findings: what one difference is (:class:`Finding`), what a run does with the ones it can fix
(:class:`Mode`), and where they go (:class:`Recorder`: counted for the summary, :class:`FindingCounts`, and
written to ``discrepancy`` in batches). Reconcile, resync and adopt record through it.

Where a finding lies (its city and org line) is who must fix it: the recorder attributes each batch of findings
with :class:`regsync.db.attribution.Attributor`, the rule the worklist uses too (issue 15, point 2), so that
``discrepancy.city_code`` and ``org_line`` are set for every record the platform or the registry places (a line
always; a city unless nothing says where the record is).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from regsync.db.attribution import Attributor, Subject
from regsync.db.discrepancies import discrepancy_row, insert_discrepancies

#: Discrepancy rows written per insert.
FLUSH = 1000
#: Discrepancies kept in the returned summary in detail (all are counted and stored).
LISTED = 200


@dataclass(slots=True)
class Finding:
    """One discrepancy before it is stored (see :class:`regsync.db.models.Discrepancy`)."""

    kind: str
    entity: str
    local_id: int | None = None
    registry_id: str | None = None
    fields: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    city_code: str | None = None
    org_line: str | None = None
    action: str | None = None
    action_state: str | None = None
    #: the registry's region code of a record with no local row (where it is attributed); not stored as a column
    region_code: str | None = None
    #: the registry id of that record's org (an org's own id), when the registry names one; not stored as a column
    registry_org_id: str | None = None
    #: the registry id of a volunteer's commendation's volunteer (attributed through them); not stored as a column
    registry_volunteer_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (masked already) for the summary and ``--json``."""
        return {"kind": self.kind, "entity": self.entity, "local_id": self.local_id,
                "registry_id": self.registry_id, "fields": self.fields, "details": self.details,
                "city_code": self.city_code, "org_line": self.org_line, "action": self.action,
                "action_state": self.action_state}


@dataclass(frozen=True, slots=True)
class Mode:
    """What a run does with the findings it could fix: report them only (neither flag), say which fix each would
    get (``plan``: ``action_state`` ``planned``, nothing changed), or fix them as policy allows (``repair``).
    """

    repair: bool = False
    plan: bool = False

    @property
    def acts(self) -> bool:
        """Whether findings get an ``action`` (repairing or planning)."""
        return self.repair or self.plan

    def no_repair(self) -> tuple[str | None, str | None]:
        """``(action, action_state)`` of a finding no policy repairs: ``none``/``not_allowed`` when repairing or
        planning, ``None``/``None`` when only reporting."""
        return ("none", "not_allowed") if self.acts else (None, None)


@dataclass(frozen=True)
class FindingCounts:
    """What a run found and what became of it, counted (:meth:`Recorder.counts`): kind → count unless said.

    Attributes:
        discrepancies: findings by kind of difference.
        by_entity: record kind → kind of difference → count.
        by_city: city code (``unknown`` for none) → count.
        by_org_line: org line → count.
        repaired: fixes the run made itself (``done``: pulled, linked).
        queued: fixes queued for the relay (in the registry only once it sends them).
        requeued: those queued again although the registry refused the record's last push on its data.
        actions: action → action state → count.
        listed: the first :data:`LISTED` findings (:meth:`Finding.as_dict`, masked).
    """

    discrepancies: dict[str, int]
    by_entity: dict[str, dict[str, int]]
    by_city: dict[str, int]
    by_org_line: dict[str, int]
    repaired: dict[str, int]
    queued: dict[str, int]
    requeued: dict[str, int]
    actions: dict[str, dict[str, int]]
    listed: list[dict[str, Any]]


class Recorder:
    """Counts findings and writes them to ``discrepancy`` in batches of :data:`FLUSH` (flat memory).

    Args:
        engine: the local store.
        run_id: the ``run`` row the findings belong to.
        dry_run: count and list only; write nothing.
    """

    def __init__(self, engine: Engine, run_id: int | None, *, dry_run: bool = False) -> None:
        self.engine = engine
        self.run_id = run_id
        self.dry_run = dry_run
        self.by_kind: Counter[str] = Counter()
        self.by_entity: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_city: Counter[str] = Counter()
        self.by_line: Counter[str] = Counter()
        #: findings fixed by the run itself (``done``: pulled, linked)
        self.repaired: Counter[str] = Counter()
        #: findings whose fix is an outbox row for the relay (``queued``): in the registry once the relay sends it
        self.queued: Counter[str] = Counter()
        #: queued again although the registry refused the record's last push on its data (``requeued``): it fails
        #: again unless the data changed since
        self.requeued: Counter[str] = Counter()
        self.actions: dict[str, Counter[str]] = defaultdict(Counter)
        self.listed: list[Finding] = []
        self._pending: list[Finding] = []
        self._buffer: list[dict[str, Any]] = []
        self._attributor = Attributor()

    def add(self, f: Finding) -> None:
        """Count ``f`` and queue it for attribution and writing."""
        self.by_kind[f.kind] += 1
        self.by_entity[f.entity][f.kind] += 1
        if f.action:
            self.actions[f.action][f.action_state or "unknown"] += 1
            if f.action_state == "done":
                self.repaired[f.kind] += 1
            elif f.action_state == "queued":
                self.queued[f.kind] += 1
            elif f.action_state == "requeued":
                self.requeued[f.kind] += 1
        if len(self.listed) < LISTED:
            self.listed.append(f)
        self._pending.append(f)
        if len(self._pending) >= FLUSH:
            self.flush()

    def _attribute(self) -> None:
        """Set the city and org line of the pending findings to the responsible org's (one lookup per batch),
        and count them."""
        if not self._pending:
            return
        subjects = [Subject(f.entity, f.local_id, f.region_code or (f.city_code + "00" if f.city_code else None),
                            f.registry_org_id, f.registry_volunteer_id) for f in self._pending]
        with self.engine.connect() as conn:
            found = self._attributor.attribute(conn, subjects)
        for f, who in zip(self._pending, found, strict=True):
            f.city_code = who.city_code or f.city_code
            f.org_line = who.line
            if f.local_id is None:  # kept for the worklist, which attributes the record again
                if f.region_code:
                    f.details.setdefault("region_code", f.region_code)
                if f.registry_org_id:
                    f.details.setdefault("registry_org_id", f.registry_org_id)
                if f.registry_volunteer_id:
                    f.details.setdefault("registry_volunteer_id", f.registry_volunteer_id)
            self.by_city[f.city_code or "unknown"] += 1
            self.by_line[f.org_line] += 1

    def counts(self) -> FindingCounts:
        """What was recorded so far, counted (keys sorted); pending findings are attributed and written first."""
        self.flush()
        return FindingCounts(
            discrepancies=dict(sorted(self.by_kind.items())),
            by_entity={k: dict(sorted(v.items())) for k, v in sorted(self.by_entity.items())},
            by_city=dict(sorted(self.by_city.items())), by_org_line=dict(sorted(self.by_line.items())),
            repaired=dict(sorted(self.repaired.items())), queued=dict(sorted(self.queued.items())),
            requeued=dict(sorted(self.requeued.items())),
            actions={k: dict(sorted(v.items())) for k, v in sorted(self.actions.items())},
            listed=[f.as_dict() for f in self.listed])

    def _rows(self, findings: list[Finding]) -> list[dict[str, Any]]:
        if self.dry_run or self.run_id is None:
            return []
        return [discrepancy_row(
            self.run_id, entity=f.entity, kind=f.kind, local_id=f.local_id, registry_id=f.registry_id,
            fields=f.fields, details=f.details, city_code=f.city_code, org_line=f.org_line, action=f.action,
            action_state=f.action_state) for f in findings]

    def flush(self) -> None:
        """Attribute and write the queued findings (one transaction)."""
        self._attribute()
        self._buffer.extend(self._rows(self._pending))
        self._pending = []
        if not self._buffer:
            return
        insert_discrepancies(self.engine, self._buffer)
        self._buffer = []


__all__ = ["FLUSH", "LISTED", "Finding", "FindingCounts", "Mode", "Recorder"]
