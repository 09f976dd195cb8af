"""One record's traces in regsync's own tables, for ``regsync show`` (:mod:`regsync.flows.show`, issue 15 point 4):
its links, its outbox rows and hold, its conflicts, its discrepancies in the recent runs that compare, and the
audit rows that name it; for a volunteer, their trainings, commendations and evaluations (registry-api.md v1.1,
:func:`volunteer_records`).

Every read names regsync's tables through the models (a prefixed store writes them with its prefix:
:mod:`regsync.db.own`) and is bounded, whatever the size of the province:

* links, outbox rows, the hold and conflicts are read by the record's key on their indexes (``uq_link_entity``,
  ``ix_link_registry``, ``ix_outbox_record``, ``uq_outbox_hold_entity``, ``ix_conflict_record``), newest first,
  at most ``limit`` rows each;
* discrepancies only from the newest :data:`FINDING_RUN_KINDS` runs (by local id on ``ix_discrepancy_record``; by
  registry id, for a record the platform lacks, among those runs' rows: ``ix_discrepancy_run``);
* audit rows by a ``LIKE`` on ``target`` and ``details``, newest first: the audit table holds one row per operator
  action and is pruned after ``retention.audit_days``; each candidate is then checked for the record's name as a
  whole word (:func:`audit_naming`), so that ``volunteer:4`` is not found in ``volunteer:42``.

Rows come back as dicts of their columns; times are naive UTC as stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, func, or_, select

from regsync.db.models import Audit, Base, Conflict, Discrepancy, Link, Outbox, OutboxHold, Run
from regsync.db.outbox_admin import FAILED_STATES

#: The run kinds that write ``discrepancy`` rows.
FINDING_RUN_KINDS: tuple[str, ...] = ("reconcile", "resync", "adopt")

_link: Table = Link.__table__
_ob: Table = Outbox.__table__
_hold: Table = OutboxHold.__table__
_ct: Table = Conflict.__table__
_dt: Table = Discrepancy.__table__
_at: Table = Audit.__table__
_run: Table = Run.__table__


def links_of(conn: Connection, kind: str, *, local_id: int | None = None, registry_id: str | None = None
             ) -> list[dict[str, Any]]:
    """The links of the local row ``local_id`` of ``kind`` (at most one), or of the registry id ``registry_id`` (a
    person's primary row first, then their duplicate rows by local id), as dicts of :class:`~regsync.db.models.Link`'s
    columns; ``[]`` when there is none.

    Raises:
        ValueError: neither or both of ``local_id`` and ``registry_id``.
    """
    if (local_id is None) == (registry_id is None):
        raise ValueError("name the record by local_id or by registry_id, one of them")
    cond = _link.c.local_id == local_id if local_id is not None else _link.c.registry_id == registry_id
    return [dict(r) for r in conn.execute(select(_link).where(_link.c.entity == kind, cond)
                                          .order_by(_link.c.is_duplicate, _link.c.local_id)).mappings()]


def outbox_rows(conn: Connection, kind: str, local_id: int, *, limit: int
                ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The outbox rows of one record: the newest ``limit`` (every column), and how many it has in each state.

    Returns:
        ``(rows newest first, state → count over all its rows)``.
    """
    where = (_ob.c.entity == kind, _ob.c.local_id == local_id)
    rows = [dict(r) for r in conn.execute(select(_ob).where(*where).order_by(_ob.c.id.desc()).limit(limit))
            .mappings()]
    by_state = {str(s): int(n) for s, n in conn.execute(
        select(_ob.c.state, func.count()).where(*where).group_by(_ob.c.state).order_by(_ob.c.state))}
    return rows, by_state


def failed_rows(conn: Connection, kind: str, local_id: int, *, limit: int) -> list[dict[str, Any]]:
    """The record's outbox rows that failed or wait on a record that did
    (:data:`regsync.db.outbox_admin.FAILED_STATES`), newest first, at
    most ``limit``: its failures, however old, with the registry's code and error (as the relay stored them)."""
    return [dict(r) for r in conn.execute(select(_ob).where(
        _ob.c.entity == kind, _ob.c.local_id == local_id, _ob.c.state.in_(FAILED_STATES))
        .order_by(_ob.c.id.desc()).limit(limit)).mappings()]


def hold_of(conn: Connection, kind: str, local_id: int) -> dict[str, Any] | None:
    """The record's hold (discarded by an operator: :class:`~regsync.db.models.OutboxHold`), or ``None``."""
    row = conn.execute(select(_hold).where(_hold.c.entity == kind, _hold.c.local_id == local_id)).mappings().first()
    return None if row is None else dict(row)


def conflicts_of(conn: Connection, kind: str, local_id: int, *, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The record's conflicts, open and decided, newest first: at most ``limit`` rows (every column; personal values
    masked as stored) and how many it has in all."""
    where = (_ct.c.entity == kind, _ct.c.local_id == local_id)
    rows = [dict(r) for r in conn.execute(select(_ct).where(*where).order_by(_ct.c.id.desc()).limit(limit))
            .mappings()]
    return rows, int(conn.execute(select(func.count()).select_from(_ct).where(*where)).scalar_one())


def recent_finding_runs(conn: Connection, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` runs that compare both sides (:data:`FINDING_RUN_KINDS`): ``id``, ``kind``, ``started_at``
    and ``status`` of each, newest first."""
    return [dict(r) for r in conn.execute(
        select(_run.c.id, _run.c.kind, _run.c.started_at, _run.c.status)
        .where(_run.c.kind.in_(FINDING_RUN_KINDS)).order_by(_run.c.id.desc()).limit(count)).mappings()]


def discrepancies_of(conn: Connection, kind: str, run_ids: Sequence[int], *, local_id: int | None,
                     registry_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The discrepancies of one record among the runs ``run_ids``: those naming its local id, and those naming its
    registry id (a record the platform lacks has no local id in them); newest first, at most ``limit``, every
    column (details masked as stored)."""
    if not run_ids or (local_id is None and registry_id is None):
        return []
    named = []
    if local_id is not None:
        named.append(_dt.c.local_id == local_id)
    if registry_id is not None:
        named.append(_dt.c.registry_id == registry_id)
    return [dict(r) for r in conn.execute(select(_dt).where(
        _dt.c.entity == kind, _dt.c.run_id.in_(list(run_ids)), or_(*named))
        .order_by(_dt.c.id.desc()).limit(limit)).mappings()]


def _word(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![0-9A-Za-z_.-])" + re.escape(name) + r"(?![0-9A-Za-z_.-])")


def audit_naming(conn: Connection, names: Sequence[str], *, limit: int, scan: int = 500) -> list[dict[str, Any]]:
    """The audit rows whose ``target`` or ``details`` name one of ``names`` as a whole word (``volunteer:42``,
    ``org:X2301``, ``volunteer:registry:V123``…), newest first, at most ``limit`` (every column).

    The newest ``scan`` rows that hold one of the names anywhere are read (a ``LIKE``, escaped), then kept when the
    name stands alone: not followed or preceded by a letter, digit, ``_``, ``.`` or ``-``.
    """
    if not names:
        return []
    like = [col.contains(n, autoescape=True) for n in names for col in (_at.c.target, _at.c.details)]
    words = [_word(n) for n in names]
    out: list[dict[str, Any]] = []
    for r in conn.execute(select(_at).where(or_(*like)).order_by(_at.c.id.desc()).limit(scan)).mappings():
        if any(w.search(r["target"] or "") or w.search(r["details"] or "") for w in words):
            out.append(dict(r))
            if len(out) >= limit:
                break
    return out


def volunteer_records(conn: Connection, volunteer_ids: Sequence[int], *, limit: int) -> dict[str, Any]:
    """A person's v1.1 records (registry-api.md §4.7–§4.9) held by the platform: the rows ``volunteer_ids`` (a person's
    primary row and the rows linked with it) are the volunteer of, newest first, at most ``limit`` of each.

    Returns:
        ``{"trainings": [...], "trainings_total": n, "training_hours": hundredths, "commendations": [...],
        "commendations_total": n, "evaluations": [...], "evaluations_total": n}``: ``training_hours`` is the sum of
        the ``ACCEPTED`` training records' class hours (what the registry's ``trainingHours`` counts, §4.2); each
        row a dict with its ``local_id`` and ``registry_id`` (``None``: not linked): a training record with its
        training's ``title``, ``training_type`` and ``mode`` and its ``completed_on``, ``class_hours`` (hundredths),
        ``result``, ``status``; a commendation with ``title``, ``scheme``, ``tier``, ``year``, ``awarded_on``,
        ``issuer``, ``status``; an evaluation with the activity's ``title`` and its ``punctuality``, ``attitude``,
        ``competence``, ``evaluated_on``, ``status``.
    """
    ids = list(volunteer_ids)
    tables = Base.metadata.tables
    tr, tg = tables["training_record"], tables["training"]
    cm, ev, act = tables["commendation"], tables["evaluation"], tables["activity"]

    def linked(t: Table, kind: str) -> Any:
        return t.outerjoin(_link, and_(_link.c.entity == kind, _link.c.local_id == t.c.id))

    def rows(query: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]

    def total(t: Table) -> int:
        return int(conn.execute(select(func.count()).select_from(t).where(t.c.volunteer_id.in_(ids))).scalar_one())

    trainings = rows(select(tr.c.id.label("local_id"), _link.c.registry_id, tg.c.title, tg.c.training_type, tg.c.mode,
                            tr.c.completed_on, tr.c.class_hours, tr.c.result, tr.c.status)
                     .select_from(linked(tr, "training_record").join(tg, tg.c.id == tr.c.training_id))
                     .where(tr.c.volunteer_id.in_(ids)).order_by(tr.c.completed_on.desc(), tr.c.id.desc()))
    hours = conn.execute(select(func.coalesce(func.sum(tr.c.class_hours), 0)).where(
        tr.c.volunteer_id.in_(ids), tr.c.status == "ACCEPTED")).scalar_one()
    commendations = rows(select(cm.c.id.label("local_id"), _link.c.registry_id, cm.c.title, cm.c.scheme, cm.c.tier,
                                cm.c.year, cm.c.awarded_on, cm.c.issuer, cm.c.status)
                         .select_from(linked(cm, "commendation")).where(cm.c.volunteer_id.in_(ids))
                         .order_by(cm.c.awarded_on.desc(), cm.c.id.desc()))
    evaluations = rows(select(ev.c.id.label("local_id"), _link.c.registry_id, act.c.title, ev.c.punctuality,
                              ev.c.attitude, ev.c.competence, ev.c.evaluated_on, ev.c.status)
                       .select_from(linked(ev, "evaluation").join(act, act.c.id == ev.c.activity_id))
                       .where(ev.c.volunteer_id.in_(ids)).order_by(ev.c.evaluated_on.desc(), ev.c.id.desc()))
    return {"trainings": trainings, "trainings_total": total(tr), "training_hours": int(hours or 0),
            "commendations": commendations, "commendations_total": total(cm),
            "evaluations": evaluations, "evaluations_total": total(ev)}


__all__ = [
    "FINDING_RUN_KINDS",
    "audit_naming",
    "conflicts_of",
    "discrepancies_of",
    "failed_rows",
    "hold_of",
    "links_of",
    "outbox_rows",
    "recent_finding_runs",
    "volunteer_records",
]
