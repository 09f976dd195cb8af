"""The outbox as operators see and act on it (design.md, "Operator commands"): list, retry, discard, restore,
every statement of them (:mod:`regsync.flows.operator` runs them on the configured store).

The outbox holds one row per local change; the relay folds the rows of one **record** (``entity``,
``local_id``) into one write, so everything here works per record:

* :func:`list_outbox` pages the waiting records in SQL (``GROUP BY entity, local_id`` with ``LIMIT``/
  ``OFFSET``), so the outbox may hold millions of rows; only one page of records is ever loaded.
* :func:`retry_outbox` moves a record's ``failed``, ``blocked`` and ``deferred`` rows back to ``pending``
  (``available_at`` = now, ``attempts`` = 0, lease cleared, ``blocked_entity``/``blocked_local_id`` cleared);
  ``last_code``/``last_error`` and ``done_at`` (the time of the last refusal) stay as history until the relay
  settles the rows.
* :func:`discard_outbox` marks every waiting row of a record ``discarded`` (a state the relay never claims)
  with ``done_at`` = now, and holds the record (:mod:`regsync.db.holds`): it stays out of sync, its later
  changes set aside as ``discarded`` too, until :func:`restore_outbox` takes it back and the relay sends its
  current state. The records waiting on a discarded one are named with it (``dependents``), and ``outbox list``
  shows them as waiting on a discarded record (``PARENT_DISCARDED``).

Rows under a live lease (a relay is sending them right now) are never touched; they are counted as busy.
Each action writes one ``audit`` row in the same transaction as its change.

Times are naive UTC in the database and shown in Asia/Shanghai (+08:00). Nothing here prints or stores a
full ID number or phone number: free text (the relay's reasons, the operator's reason) goes through
:func:`regsync.domain.masking.mask_text`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    desc,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    update,
)

from regsync.db import holds
from regsync.db.models import ENTITIES, Audit, Outbox, OutboxHold
from regsync.db.repairs import REQUEUED_NOTE
from regsync.db.session import connection, utcnow
from regsync.domain.clock import format_age, to_local
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_text
from regsync.i18n import Message, TranslatableError
from regsync.i18n import gettext_noop as N_

__all__ = [
    "ActionResult",
    "LISTABLE_STATES",
    "OperatorUsageError",
    "OutboxListing",
    "OutboxRecord",
    "Selection",
    "WAITING_STATES",
    "check_reason",
    "default_actor",
    "discard_outbox",
    "format_age",
    "list_outbox",
    "record_key",
    "restore_outbox",
    "retry_outbox",
    "to_local",
]

#: States of rows not yet done: the relay will send them, or they wait for data or an operator.
WAITING_STATES: tuple[str, ...] = ("pending", "deferred", "blocked", "failed")
#: States ``outbox list --state`` accepts (``discarded``: what operators dropped, still kept).
LISTABLE_STATES: tuple[str, ...] = (*WAITING_STATES, "discarded")
#: Rows a retry moves back to ``pending``.
RETRY_STATES: tuple[str, ...] = ("failed", "blocked", "deferred")
#: Rows a ``--code`` or ``--all-failed`` selection starts from.
FAILED_STATES: tuple[str, ...] = ("failed", "blocked")

#: A record's state is its most pressing row's: failed, then blocked, deferred, pending.
_RANK: dict[str, int] = {"discarded": 0, "pending": 1, "deferred": 2, "blocked": 3, "failed": 4}
_STATE_OF_RANK = {v: k for k, v in _RANK.items()}


#: Row ids shown per record (a record changed 10 000 times still prints one line).
MAX_ROW_IDS = 20
#: Record keys kept in an audit row's details; the counts are always complete.
MAX_AUDIT_KEYS = 1000
#: Records handled per statement by retry and discard.
_CHUNK = 500

_ob = Outbox.__table__


class OperatorUsageError(TranslatableError, ValueError):
    """The command was given no selection, a malformed target or an empty reason (exit code 2). ``str(exc)`` is
    English (JSON, logs); the console prints :meth:`~regsync.i18n.TranslatableError.text`."""


# ------------------------------------------------------------------------------------------------ helpers

def _utc(value: dt.datetime | str | None) -> dt.datetime | None:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def default_actor() -> str:
    """The OS user running the command (``getpass.getuser()``), or ``unknown`` when there is none."""
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError, ImportError):  # no login name in a bare container
        return "unknown"


def record_key(entity: str, local_id: int) -> str:
    """The operator-facing name of a record: ``KIND:LOCAL_ID``, e.g. ``volunteer:42``."""
    return f"{entity}:{local_id}"


# ------------------------------------------------------------------------------------------------ selection
@dataclass(frozen=True)
class Selection:
    """Which records an action applies to: exactly one of explicit targets, ``code`` or ``all_failed``.

    Attributes:
        row_ids: outbox row ids; each names the record its row belongs to.
        records: ``(entity, local_id)`` pairs.
        code: every record with a ``failed`` or ``blocked`` row of this ``last_code``.
        all_failed: every record with a ``failed`` or ``blocked`` row.
        kind: restricts any of the above to one entity (``volunteer``…).
    """

    row_ids: tuple[int, ...] = ()
    records: tuple[tuple[str, int], ...] = ()
    code: str | None = None
    all_failed: bool = False
    kind: str | None = None

    def validate(self, *, allow_all_failed: bool = True) -> None:
        """Check that exactly one way of selecting is used.

        Raises:
            OperatorUsageError: none or several.
        """
        ways = sum((bool(self.row_ids or self.records), self.code is not None, self.all_failed))
        names = "IDs, --code CODE" + (" or --all-failed" if allow_all_failed else "")  # options: not translated
        if self.all_failed and not allow_all_failed:
            raise OperatorUsageError(N_("--all-failed is not accepted here; name IDs or --code CODE"))
        if ways == 0:
            raise OperatorUsageError(N_("nothing selected: give {names}"), names=names)
        if ways > 1:
            raise OperatorUsageError(N_("give only one of {names}"), names=names)
        if self.code is not None and not self.code.strip():
            raise OperatorUsageError(N_("--code must not be empty"))

    def describe(self) -> str:
        """The audit row's ``target``: ``ids=…``, ``code=…`` or ``all-failed``, and ``kind=…`` if set."""
        if self.code is not None:
            text = f"code={mask_text(self.code)}"
        elif self.all_failed:
            text = "all-failed"
        else:
            ids = [str(i) for i in self.row_ids] + [record_key(k, i) for k, i in self.records]
            text = "ids=" + ",".join(ids)
        return text + (f" kind={self.kind}" if self.kind else "")

    def as_dict(self) -> dict[str, Any]:
        """For the audit row's details (no personal data: ids, a code, a kind)."""
        return {"row_ids": list(self.row_ids), "records": [record_key(k, i) for k, i in self.records],
                "code": mask_text(self.code) if self.code is not None else None,
                "all_failed": self.all_failed, "kind": self.kind}

    def row_condition(self) -> ColumnElement[bool]:
        """SQL over outbox rows: the rows whose records are selected."""
        if self.code is not None:
            cond: ColumnElement[bool] = and_(_ob.c.state.in_(FAILED_STATES), _ob.c.last_code == self.code)
        elif self.all_failed:
            cond = _ob.c.state.in_(FAILED_STATES)
        else:
            named: list[ColumnElement[bool]] = []
            if self.row_ids:
                named.append(_ob.c.id.in_(self.row_ids))
            by_kind: dict[str, list[int]] = {}
            for kind, lid in self.records:
                by_kind.setdefault(kind, []).append(lid)
            named += [and_(_ob.c.entity == k, _ob.c.local_id.in_(ids)) for k, ids in by_kind.items()]
            cond = and_(_ob.c.state.in_(WAITING_STATES), or_(*named) if named else false())
        if self.kind:
            cond = and_(cond, _ob.c.entity == self.kind)
        return cond


# ------------------------------------------------------------------------------------------------ list
@dataclass
class OutboxRecord:
    """One waiting record as ``outbox list`` shows it.

    Attributes:
        kind: entity name (``volunteer``…).
        local_id: the local record's id.
        state: the most pressing state of its rows: ``failed``, ``blocked``, ``deferred``, ``pending``
            (``discarded`` only when listing discarded rows).
        states: rows per state.
        code: ``last_code`` of its most pressing row (newest first), or ``None``.
        reason: that row's ``last_error``, masked (the relay's words, as the registry gave them); for a record
            waiting on a discarded one (code ``PARENT_DISCARDED``), a :class:`regsync.i18n.Message`: English text
            that the console shows translated.
        attempts: the highest ``attempts`` among its rows.
        next_attempt: the earliest ``available_at`` of its pending/deferred rows, +08:00; ``None`` when all
            its rows wait for data or an operator (failed, blocked).
        oldest_change: ``created_at`` of its oldest row, +08:00.
        age_s: seconds since the oldest change.
        rows: how many rows it has (in the filter).
        row_ids: up to :data:`MAX_ROW_IDS` of them, ascending.
        blocked_by: ``KIND:LOCAL_ID`` of the record a blocked row waits for.
        held: the record was discarded and stays out of sync until ``outbox restore`` (its state is then
            ``discarded``; ``held_since`` the discard, +08:00; ``held_audit_id`` its audit row).
        dependents: (a held record) up to :data:`regsync.db.holds.MAX_DEPENDENTS` ``KIND:LOCAL_ID`` of the records
            waiting on it; ``dependents_total`` all of them.
    """

    kind: str
    local_id: int
    state: str
    states: dict[str, int]
    code: str | None
    reason: str | None
    attempts: int
    next_attempt: dt.datetime | None
    oldest_change: dt.datetime | None
    age_s: int | None
    rows: int
    row_ids: list[int] = field(default_factory=list)
    blocked_by: str | None = None
    held: bool = False
    held_since: dt.datetime | None = None
    held_audit_id: int | None = None
    dependents: list[str] = field(default_factory=list)
    dependents_total: int = 0

    @property
    def key(self) -> str:
        """``KIND:LOCAL_ID``."""
        return record_key(self.kind, self.local_id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 with +08:00."""
        return {"key": self.key, "kind": self.kind, "local_id": self.local_id, "state": self.state,
                "states": self.states, "code": self.code, "reason": self.reason, "attempts": self.attempts,
                "next_attempt": self.next_attempt.isoformat() if self.next_attempt else None,
                "oldest_change": self.oldest_change.isoformat() if self.oldest_change else None,
                "age_s": self.age_s, "rows": self.rows, "row_ids": self.row_ids,
                "blocked_by": self.blocked_by, "held": self.held,
                "held_since": self.held_since.isoformat() if self.held_since else None,
                "held_audit_id": self.held_audit_id, "dependents": self.dependents,
                "dependents_total": self.dependents_total}


@dataclass
class OutboxListing:
    """One page of waiting records and the totals of everything the filter matches.

    Attributes:
        records: this page, most pressing first (failed, blocked, deferred, pending), then oldest first.
        total: records the filter matches in all.
        by_state: records per (record) state, over all matches.
        by_code: records per ``last_code`` over all matches (a record with rows of two codes counts in both;
            rows without a code are not counted).
        limit: the page size asked for; offset: records skipped before this page.
    """

    records: list[OutboxRecord]
    total: int
    by_state: dict[str, int]
    by_code: dict[str, int]
    limit: int
    offset: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``records``, ``total``, ``by_state``, ``by_code``, ``limit``, ``offset``."""
        return {"records": [r.as_dict() for r in self.records], "total": self.total,
                "by_state": self.by_state, "by_code": self.by_code, "limit": self.limit,
                "offset": self.offset}


def _rank_expr() -> ColumnElement[int]:
    return case(_RANK, value=_ob.c.state, else_=0)


def _list_filter(states: Sequence[str] | None, code: str | None, kind: str | None) -> ColumnElement[bool]:
    default = not states
    states = tuple(states) if states else WAITING_STATES
    unknown = [s for s in states if s not in LISTABLE_STATES]
    if unknown:
        raise OperatorUsageError(N_("unknown state {state!r}; one of {states}"), state=unknown[0],
                                 states=", ".join(LISTABLE_STATES))
    cond: ColumnElement[bool] = _ob.c.state.in_(states)
    if default:  # a discarded record held out of sync waits for an operator too (regsync.db.holds)
        hold = OutboxHold.__table__
        cond = or_(cond, and_(_ob.c.state == "discarded", exists().where(
            hold.c.entity == _ob.c.entity, hold.c.local_id == _ob.c.local_id)))
    if code is not None:
        cond = and_(cond, _ob.c.last_code == code)
    if kind is not None:
        cond = and_(cond, _ob.c.entity == kind)
    return cond


def list_outbox(engine: Engine | Connection, *, states: Sequence[str] | None = None, code: str | None = None,
                kind: str | None = None, limit: int = 100, offset: int = 0,
                now: dt.datetime | None = None) -> OutboxListing:
    """One page of the records waiting in the outbox, with totals, all computed in SQL.

    Args:
        engine: the local store (an engine, or a connection inside a caller's transaction).
        states: row states to include (default: :data:`WAITING_STATES`, and the ``discarded`` rows of records
            held out of sync until restored); ``discarded`` is accepted too (every discarded row).
        code: only rows with this ``last_code``.
        kind: only this entity (``volunteer``…).
        limit: records per page (≥ 1).
        offset: records to skip (for the next page).
        now: naive UTC "now" for ages (default: the clock).

    Returns:
        The page and the totals.

    Raises:
        OperatorUsageError: an unknown state or a limit below 1.
    """
    if limit < 1 or offset < 0:
        raise OperatorUsageError(N_("--limit must be at least 1 and --offset at least 0"))
    cond = _list_filter(states, code, kind)
    now = now or utcnow()
    rank = _rank_expr()
    waiting_at = case((_ob.c.state.in_(("pending", "deferred")), _ob.c.available_at))
    grouped = (
        select(_ob.c.entity, _ob.c.local_id, func.max(rank).label("rank"), func.count().label("n"),
               func.min(_ob.c.id).label("first_id"), func.max(_ob.c.attempts).label("attempts"),
               func.min(_ob.c.created_at).label("oldest"),
               func.min(waiting_at).label("next_at"),
               *[func.sum(case((_ob.c.state == s, 1), else_=0)).label(f"n_{s}") for s in LISTABLE_STATES])
        .where(cond).group_by(_ob.c.entity, _ob.c.local_id))
    page_q = grouped.order_by(desc("rank"), "first_id").limit(limit).offset(offset)
    per_record = grouped.subquery()
    codes = select(_ob.c.entity, _ob.c.local_id, _ob.c.last_code).where(
        cond, _ob.c.last_code.is_not(None)).distinct().subquery()

    with connection(engine) as conn:
        page = conn.execute(page_q).mappings().all()
        by_rank = conn.execute(select(per_record.c.rank, func.count()).group_by(per_record.c.rank)).all()
        by_code_rows = conn.execute(select(codes.c.last_code, func.count()).group_by(codes.c.last_code)).all()
        detail = _page_details(conn, cond, [(r["entity"], r["local_id"]) for r in page])
        page_keys = [(r["entity"], int(r["local_id"])) for r in page]
        blocked_on = {(t["blocked_entity"], int(t["blocked_local_id"])) for rows in detail.values() for t in rows[:1]
                      if t.get("state") == "blocked" and t.get("blocked_entity")}
        held = holds.held_keys(conn, [*page_keys, *blocked_on]) if page_keys else {}
        waiting_on = holds.dependents(conn, [k for k in page_keys if k in held])

    records = []
    for r in page:
        key = (r["entity"], r["local_id"])
        rows = detail.get(key, [])
        top = rows[0] if rows else {}
        oldest = _utc(r["oldest"])
        state = _STATE_OF_RANK.get(int(r["rank"] or 0), "pending")
        blocked_by = (record_key(top["blocked_entity"], top["blocked_local_id"])
                      if top.get("state") == "blocked" and top.get("blocked_entity") else None)
        code = mask_text(top["last_code"]) if top.get("last_code") else None
        reason = mask_text(top["last_error"]) if top.get("last_error") else None
        parent = (top["blocked_entity"], int(top["blocked_local_id"])) if blocked_by else None
        if parent is not None and parent in held:  # not refused by the registry: an operator's discard
            code = "PARENT_DISCARDED"
            audit = held[parent]["audit_id"]
            # a Message: English text in JSON, translated where the console shows it
            reason = (Message(N_("waits for {parent}, which an operator discarded (audit #{audit_id}): `regsync "
                                 "outbox restore {parent}` sends it, or discard this record too"),
                              parent=blocked_by, audit_id=audit) if audit is not None else
                      Message(N_("waits for {parent}, which an operator discarded: `regsync outbox restore "
                                 "{parent}` sends it, or discard this record too"), parent=blocked_by))
        hold_info = held.get(key) if state == "discarded" else None
        deps, n_deps = waiting_on.get(key, ([], 0)) if hold_info else ([], 0)
        records.append(OutboxRecord(
            kind=r["entity"], local_id=r["local_id"], state=state,
            states={s: int(r[f"n_{s}"]) for s in LISTABLE_STATES if r[f"n_{s}"]},
            code=code, reason=reason,
            attempts=int(r["attempts"] or 0),
            next_attempt=to_local(r["next_at"]),
            oldest_change=to_local(oldest), age_s=int((now - oldest).total_seconds()) if oldest else None,
            rows=int(r["n"]), row_ids=sorted(x["id"] for x in rows), blocked_by=blocked_by,
            held=hold_info is not None, held_since=to_local(hold_info["held_at"]) if hold_info else None,
            held_audit_id=hold_info["audit_id"] if hold_info else None, dependents=deps, dependents_total=n_deps))
    by_state = {_STATE_OF_RANK.get(int(rk or 0), "pending"): int(n) for rk, n in by_rank}
    by_state = {s: by_state[s] for s in sorted(by_state, key=lambda s: -_RANK[s])}
    by_code = {mask_text(c): int(n) for c, n in sorted(by_code_rows, key=lambda x: (-x[1], x[0]))}
    return OutboxListing(records=records, total=sum(by_state.values()), by_state=by_state, by_code=by_code,
                         limit=limit, offset=offset)


def _page_details(conn: Connection, cond: ColumnElement[bool],
                  keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Up to :data:`MAX_ROW_IDS` rows per record of the page, most pressing and newest first."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    rank = _rank_expr()
    rn = func.row_number().over(partition_by=(_ob.c.entity, _ob.c.local_id),
                                order_by=(rank.desc(), _ob.c.id.desc())).label("rn")
    for chunk in _chunks(keys, _CHUNK):
        by_kind: dict[str, list[int]] = {}
        for k, i in chunk:
            by_kind.setdefault(k, []).append(i)
        inner = select(_ob.c.id, _ob.c.entity, _ob.c.local_id, _ob.c.state, _ob.c.last_code, _ob.c.last_error,
                       _ob.c.blocked_entity, _ob.c.blocked_local_id, rn).where(
            cond, or_(*[and_(_ob.c.entity == k, _ob.c.local_id.in_(ids)) for k, ids in by_kind.items()])
        ).subquery()
        q = (select(inner).where(inner.c.rn <= MAX_ROW_IDS)
             .order_by(inner.c.entity, inner.c.local_id, inner.c.rn))
        for row in conn.execute(q).mappings():
            out.setdefault((row["entity"], row["local_id"]), []).append(dict(row))
    return out


# ------------------------------------------------------------------------------------------------ actions
@dataclass
class ActionResult:
    """What a retry or discard did (or, with ``dry_run``, would do).

    Attributes:
        action: ``outbox.retry`` or ``outbox.discard``.
        affected: records with at least one row changed.
        rows: outbox rows changed.
        by_kind: affected records per kind (plural names, as in the sync summary).
        keys: ``KIND:LOCAL_ID`` of the affected records, at most :data:`MAX_AUDIT_KEYS`.
        keys_truncated: more records were affected than ``keys`` lists.
        busy: rows left alone because a relay holds a live lease on them.
        unmatched: targets given by id that name no waiting row or record.
        dependents_blocked: (discard) records blocked on a discarded record; they stay blocked.
        dependents: (discard, restore) ``KIND:LOCAL_ID`` of a record → up to
            :data:`regsync.db.holds.MAX_DEPENDENTS` records waiting on it (:func:`regsync.db.holds.dependents`);
            ``dependents_total`` counts them all, over every record.
        audit_id: the audit row written (``None`` for a dry run, and when nothing matched).
        dry_run: nothing was changed.
    """

    action: str
    affected: int = 0
    rows: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    keys_truncated: bool = False
    busy: int = 0
    unmatched: list[str] = field(default_factory=list)
    dependents_blocked: int = 0
    dependents: dict[str, list[str]] = field(default_factory=dict)
    dependents_total: int = 0
    audit_id: int | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``{"affected", "by_kind", "audit_id", "rows", "busy", ...}``."""
        return {"action": self.action, "affected": self.affected, "by_kind": self.by_kind,
                "audit_id": self.audit_id, "rows": self.rows, "busy": self.busy, "unmatched": self.unmatched,
                "dependents_blocked": self.dependents_blocked, "dependents": self.dependents,
                "dependents_total": self.dependents_total, "records": self.keys, "dry_run": self.dry_run}

    @property
    def nothing_matched(self) -> bool:
        """No selected record could be acted on (none taken, none left alone because a relay is sending it):
        nothing is audited, and the CLI exits 2, the same for retry, discard and restore (design.md, "Operator
        commands": exit 2 a usage error)."""
        return self.affected == 0 and self.busy == 0

    def note_dependents(self, found: dict[tuple[str, int], tuple[list[str], int]]) -> None:
        """Add :func:`regsync.db.holds.dependents`'s answer (the names kept within :data:`MAX_AUDIT_KEYS`)."""
        for (kind, lid), (names, total) in sorted(found.items()):
            self.dependents_total += total
            if len(self.dependents) < MAX_AUDIT_KEYS:
                self.dependents[record_key(kind, lid)] = names


def retry_outbox(engine: Engine, selection: Selection, *, reason: str, actor: str | None = None,
                 now: dt.datetime | None = None, dry_run: bool = False) -> ActionResult:
    """Move the selected records back to ``pending`` for the relay to send again, and audit it (nothing audited when nothing matched:
    :attr:`ActionResult.nothing_matched`).

    Every ``failed``, ``blocked`` or ``deferred`` row of a selected record becomes ``pending`` with
    ``available_at`` = now, ``attempts`` = 0, no lease and no ``blocked_*``; ``last_code``/``last_error`` and
    ``done_at`` stay (history, and the time of the last refusal), a ``failed``/``blocked`` row's ``last_error``
    prefixed with :data:`regsync.db.repairs.REQUEUED_NOTE` and its code: sent again without a local change, so
    ``reconcile --repair`` and ``resync`` still count the record as refused before
    (:func:`regsync.flows.reconcile.refused_before`). Rows already pending are left as they are.

    Args:
        engine: the local store.
        selection: row ids / records, ``code`` (failed or blocked rows of that code) or ``all_failed``.
        reason: why (required, non-empty; stored masked).
        actor: who (default: :func:`default_actor`).
        now: naive UTC "now" (default: the clock).
        dry_run: only count what would change; no audit row.

    Returns:
        What was done.

    Raises:
        OperatorUsageError: no or several selections, or an empty reason.
    """
    selection.validate()
    return _act(engine, "outbox.retry", selection, reason, actor, now, dry_run)


def discard_outbox(engine: Engine, selection: Selection, *, reason: str, actor: str | None = None,
                   now: dt.datetime | None = None, dry_run: bool = False) -> ActionResult:
    """Drop the selected records' waiting rows from the sync (state ``discarded``), and audit it (nothing audited when nothing matched:
    :attr:`ActionResult.nothing_matched`).

    Every ``pending``, ``deferred``, ``blocked`` or ``failed`` row of a selected record becomes ``discarded``
    with ``done_at`` = now and no lease; ``last_code``/``last_error`` stay. The record is held out of sync
    (:mod:`regsync.db.holds`): a later local change of it is still captured, but the relay sets it aside
    instead of sending it, until :func:`restore_outbox`. Confirmation is the caller's business (the CLI asks
    unless ``--yes``).

    Args:
        engine: the local store.
        selection: row ids / records or ``code`` (``all_failed`` is refused: discard names what it drops).
        reason: why (required, non-empty; stored masked).
        actor: who (default: :func:`default_actor`).
        now: naive UTC "now" (default: the clock).
        dry_run: only count what would change; no audit row.

    Returns:
        What was done; ``dependents_blocked`` counts records blocked on the discarded ones, ``dependents`` names
        the records waiting on each (blocked on it, or referring to it while it is not in the registry).

    Raises:
        OperatorUsageError: no or several selections, ``all_failed``, or an empty reason.
    """
    selection.validate(allow_all_failed=False)
    return _act(engine, "outbox.discard", selection, reason, actor, now, dry_run)


def restore_outbox(engine: Engine, selection: Selection, *, reason: str, actor: str | None = None,
                   now: dt.datetime | None = None, dry_run: bool = False) -> ActionResult:
    """Take discarded records back into the sync, and audit it (nothing audited when nothing matched:
    :attr:`ActionResult.nothing_matched`) (design.md, "Operator commands").

    Each selected record held by :func:`discard_outbox` is released (:func:`regsync.db.holds.release_held`): its
    rows discarded or set aside since the discard go back to ``pending`` with ``available_at`` = now, so the relay
    sends the record's current state; the records waiting on it (``dependents``) follow once it is in the
    registry (the relay re-queues what is blocked on a record when it gets its link). Confirmation is the caller's
    business (the CLI asks unless ``--yes``).

    Args:
        engine: the local store.
        selection: row ids (any row of the record) and/or records ``KIND:LOCAL_ID``; ``code`` and
            ``all_failed`` are refused (a restore names what it takes back).
        reason: why (required, non-empty; stored masked).
        actor: who (default: :func:`default_actor`).
        now: naive UTC "now" (default: the clock).
        dry_run: only count what would change; no audit row.

    Returns:
        What was done: ``affected`` records taken back, ``rows`` put back to pending, ``unmatched`` the targets
        that name no discarded record.

    Raises:
        OperatorUsageError: no targets, ``code``/``all_failed``, or an empty reason.
    """
    if selection.code is not None or selection.all_failed or not (selection.row_ids or selection.records):
        raise OperatorUsageError(N_("name the records to restore: IDs or KIND:LOCAL_ID (as `outbox list` shows them)"))
    reason = check_reason(reason)
    now = now or utcnow()
    actor = mask_text((actor or default_actor()).strip() or "unknown")[:64]
    result = ActionResult(action="outbox.restore", dry_run=dry_run)
    with engine.begin() as conn:
        named: dict[tuple[str, int], str] = {}
        for rid in selection.row_ids:
            row = conn.execute(select(_ob.c.entity, _ob.c.local_id).where(_ob.c.id == rid)).first()
            if row is None:
                result.unmatched.append(str(rid))
            else:
                named.setdefault((row.entity, int(row.local_id)), str(rid))
        for kind, lid in selection.records:
            named.setdefault((kind, lid), record_key(kind, lid))
        if selection.kind:
            named = {k: v for k, v in named.items() if k[0] == selection.kind}
        held = holds.held_keys(conn, named)
        result.unmatched += [v for k, v in named.items() if k not in held]
        keys = sorted(held)
        result.note_dependents(holds.dependents(conn, keys))
        if dry_run:
            result.rows = int(sum(conn.execute(select(func.count()).where(
                _ob.c.entity == k, _ob.c.local_id == i, _ob.c.state == "discarded",
                _ob.c.done_at >= held[(k, i)]["held_at"])).scalar_one() for k, i in keys))
        elif keys:
            _, result.rows = holds.release_held(conn, keys, now=now)
        by_kind: Counter[str] = Counter(k for k, _ in keys)
        result.affected = len(keys)
        result.by_kind = {KIND_NAMES[k]: by_kind[k] for k in ENTITIES if by_kind[k]}
        result.keys = [record_key(k, i) for k, i in keys[:MAX_AUDIT_KEYS]]
        result.keys_truncated = len(keys) > MAX_AUDIT_KEYS
        if not dry_run and not result.nothing_matched:
            details = {"selection": selection.as_dict(), "affected": result.affected, "rows": result.rows,
                       "by_kind": result.by_kind, "records": result.keys, "records_truncated": result.keys_truncated,
                       "unmatched": result.unmatched, "dependents": result.dependents,
                       "dependents_total": result.dependents_total,
                       "discarded": {record_key(k, i): held[(k, i)]["audit_id"] for k, i in keys[:MAX_AUDIT_KEYS]}}
            result.audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
                at=now, actor=actor, action="outbox.restore", target=selection.describe(), reason=mask_text(reason),
                details=json.dumps(details, ensure_ascii=False, sort_keys=True))).inserted_primary_key[0])
    return result


def check_reason(reason: str | None) -> str:
    """The operator's reason, stripped.

    Raises:
        OperatorUsageError: it is missing or blank.
    """
    if not reason or not reason.strip():
        raise OperatorUsageError(N_("--reason must not be empty: say why, it goes to the audit table"))
    return reason.strip()


def _update_rows(conn: Connection, cond: Any, values: Sequence[tuple[str, Any]]) -> list[tuple[str, int]]:
    """Set ``values`` (column name, value, in the order written) on the outbox rows that meet ``cond``; returns
    their ``(entity, local_id)``, one per row: ``UPDATE … RETURNING`` where the engine has it, else (MySQL/MariaDB)
    the rows read ``FOR UPDATE`` and then updated by id.

    MySQL assigns the columns of an ``UPDATE`` from left to right, each expression seeing the columns set before it
    (PostgreSQL and SQLite read the row as it was): the ``SET`` clause keeps the order of ``values``, so a value that
    reads another column comes before that column's own assignment.
    """
    assignments = [(_ob.c[name], value) for name, value in values]
    if conn.dialect.update_returning:
        return [(e, int(i)) for e, i in conn.execute(
            update(_ob).where(cond).ordered_values(*assignments).returning(_ob.c.entity, _ob.c.local_id))]
    rows = conn.execute(select(_ob.c.id, _ob.c.entity, _ob.c.local_id).where(cond).with_for_update()).all()
    for chunk in _chunks([r.id for r in rows], _CHUNK):
        conn.execute(update(_ob).where(_ob.c.id.in_(list(chunk))).ordered_values(*assignments))
    return [(r.entity, int(r.local_id)) for r in rows]


def _act(engine: Engine, action: str, selection: Selection, reason: str, actor: str | None,
         now: dt.datetime | None, dry_run: bool) -> ActionResult:
    reason = check_reason(reason)
    now = now or utcnow()
    actor = mask_text((actor or default_actor()).strip() or "unknown")[:64]
    result = ActionResult(action=action, dry_run=dry_run)
    target_states = RETRY_STATES if action == "outbox.retry" else WAITING_STATES
    free = or_(_ob.c.claimed_until.is_(None), _ob.c.claimed_until < now)
    select_records = select(_ob.c.entity, _ob.c.local_id).where(selection.row_condition()).distinct()
    by_kind: Counter[str] = Counter()
    with engine.begin() as conn:
        result.unmatched = _unmatched(conn, selection)
        after: tuple[str, int] | None = None
        while True:
            q = select_records
            if after is not None:
                q = q.where(or_(_ob.c.entity > after[0],
                                and_(_ob.c.entity == after[0], _ob.c.local_id > after[1])))
            chunk = [(e, i) for e, i in conn.execute(q.order_by(_ob.c.entity, _ob.c.local_id).limit(_CHUNK))]
            if not chunk:
                break
            after = chunk[-1]
            of_chunk = _records_condition(chunk)
            rows_cond = and_(of_chunk, _ob.c.state.in_(target_states), free)
            if dry_run:
                changed = [(e, int(i)) for e, i in conn.execute(select(_ob.c.entity, _ob.c.local_id).where(rows_cond))]
            elif action == "outbox.retry":

                refusal = literal(REQUEUED_NOTE) + func.coalesce(_ob.c.last_code, func.upper(_ob.c.state)) + "; " \
                    + func.coalesce(_ob.c.last_error, "")
                changed = _update_rows(conn, rows_cond, [  # last_error first: it reads state (MySQL: _update_rows)
                    ("last_error", case((_ob.c.state.in_(("failed", "blocked")), func.substr(refusal, 1, 2000)),
                                        else_=_ob.c.last_error)),
                    ("state", "pending"), ("available_at", now), ("attempts", 0), ("claimed_by", None),
                    ("claimed_until", None), ("blocked_entity", None), ("blocked_local_id", None)])
            else:
                changed = _update_rows(conn, rows_cond, [
                    ("state", "discarded"), ("done_at", now), ("claimed_by", None), ("claimed_until", None)])
            result.rows += len(changed)
            touched = sorted({(e, i) for e, i in changed})
            for e, i in touched:
                by_kind[e] += 1
                if len(result.keys) < MAX_AUDIT_KEYS:
                    result.keys.append(record_key(e, i))
                else:
                    result.keys_truncated = True
            result.busy += conn.execute(select(func.count()).where(
                of_chunk, _ob.c.state.in_(target_states), _ob.c.claimed_until >= now)).scalar_one()
            if action == "outbox.discard" and touched:
                if not dry_run:
                    holds.hold(conn, touched, now=now, actor=actor, reason=mask_text(reason), audit_id=None)
                result.note_dependents(holds.dependents(conn, touched))
                result.dependents_blocked += conn.execute(select(func.count()).select_from(
                    select(_ob.c.entity, _ob.c.local_id).where(
                        _ob.c.state == "blocked",
                        or_(*[and_(_ob.c.blocked_entity == k, _ob.c.blocked_local_id.in_(ids))
                              for k, ids in _by_kind(touched).items()])).distinct().subquery())).scalar_one()
        result.affected = sum(by_kind.values())
        result.by_kind = {KIND_NAMES[k]: by_kind[k] for k in ENTITIES if by_kind[k]}
        if not dry_run and not result.nothing_matched:
            details = {"selection": selection.as_dict(), "affected": result.affected, "rows": result.rows,
                       "by_kind": result.by_kind, "records": result.keys,
                       "records_truncated": result.keys_truncated,
                       "busy": result.busy, "unmatched": result.unmatched,
                       "dependents_blocked": result.dependents_blocked}
            if action == "outbox.discard":
                details |= {"dependents": result.dependents, "dependents_total": result.dependents_total}
            result.audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
                at=now, actor=actor, action=action, target=selection.describe(), reason=mask_text(reason),
                details=json.dumps(details, ensure_ascii=False, sort_keys=True))).inserted_primary_key[0])
            if action == "outbox.discard":  # the holds of this discard name its audit row
                hold_t = OutboxHold.__table__
                conn.execute(update(hold_t).where(hold_t.c.audit_id.is_(None), hold_t.c.held_at == now)
                             .values(audit_id=result.audit_id))
    return result


def _unmatched(conn: Connection, selection: Selection) -> list[str]:
    """Targets named by id that have no waiting row (unknown ids, or already sent/discarded)."""
    missing: list[str] = []
    if selection.row_ids:
        found = set(conn.execute(select(_ob.c.id).where(
            _ob.c.id.in_(selection.row_ids), _ob.c.state.in_(WAITING_STATES))).scalars())
        missing += [str(i) for i in selection.row_ids if i not in found]
    if selection.records:
        found_keys = {(e, i) for e, i in conn.execute(select(_ob.c.entity, _ob.c.local_id).where(
            _records_condition(list(selection.records)), _ob.c.state.in_(WAITING_STATES)).distinct())}
        missing += [record_key(e, i) for e, i in selection.records if (e, i) not in found_keys]
    return missing


def _by_kind(keys: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k, i in keys:
        out.setdefault(k, []).append(i)
    return out


def _records_condition(keys: Sequence[tuple[str, int]]) -> ColumnElement[bool]:
    return or_(*[and_(_ob.c.entity == k, _ob.c.local_id.in_(ids)) for k, ids in _by_kind(keys).items()])


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]




