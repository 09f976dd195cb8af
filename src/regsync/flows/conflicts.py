"""Conflicts held for an operator (design.md, "Conflict policy"; issue 4): list, show, resolve.

A conflict is one field of one record that both sides changed to different values while its group's policy is
``manual`` (:class:`regsync.db.models.Conflict`). While it is open, the relay never sends the platform's value
of that field (it sends the registry's own) and the inbound merge keeps it held; the record's other fields
still sync.

Resolving it (audited, table ``audit``, action ``conflicts.resolve``):

* ``--take registry``: the registry's current value is written to the platform's row (no outbox echo) and
  becomes the field's agreed base;
* ``--take local``: the registry's current value becomes the field's base, so the platform's value is a change
  of the platform's alone, and an outbox row is queued: the relay pushes it (a ``VERSION_MISMATCH`` on the way
  goes through the merge, where the field now wins as a one-sided change);
* ``--set FIELD=VALUE``: VALUE is written to the platform's row and pushed the same way.

Values shown are the stored ones: masked ID numbers and phones (design.md, "Personal data"). Live values
(the platform's row and the registry's record) are read only on explicit request (``show --live``), which is
audited with its reason (action ``conflicts.show_live``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from stdnum.cn import uscc

from regsync.db.conflicts_store import (
    add_audit,
    conflict_page,
    conflict_state,
    find_conflict,
    live_record,
    mark_resolved,
    record_link,
    set_link_base,
)
from regsync.db.hashkey import check_hash_key
from regsync.db.merges import queue_update
from regsync.db.platform.read import is_date_field
from regsync.db.session import suppress_outbox, utcnow
from regsync.db.triggers import row_priority
from regsync.domain.clock import to_local
from regsync.domain.kinds import KIND_NAMES
from regsync.domain.masking import mask_id_number, mask_phone, mask_text
from regsync.domain.merge import MergeResult
from regsync.domain.normalize import normalize_id_number, normalize_name, normalize_phone, normalize_uscc
from regsync.domain.projection import SENSITIVE, canonical, dumps, project_local, project_registry
from regsync.flows.apply import LocalWriter
from regsync.flows.operator import OperatorUsageError, check_reason, default_actor, parse_kind
from regsync.i18n import gettext_noop as N_
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings

STATES = ("open", "resolved", "superseded")
TAKES = ("local", "registry")
_LIST_COLUMNS = {"skills", "service_categories"}


@dataclass
class ConflictView:
    """One conflict as operators see it (values as stored: masked personal values, canonical others).

    Times are UTC (``detected_at``, ``updated_at``, ``resolved_at``); the CLI shows them in +08:00.
    """

    id: int
    kind: str
    local_id: int
    registry_id: str
    field: str
    group: str
    state: str
    base_value: Any
    local_value: Any
    registry_value: Any
    registry_version: int
    detected_at: dt.datetime | None
    updated_at: dt.datetime | None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    run_id: int | None = None
    live: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (times as ISO strings with +08:00)."""
        out = {k: getattr(self, k) for k in ("id", "kind", "local_id", "registry_id", "field", "group", "state",
                                             "base_value", "local_value", "registry_value", "registry_version",
                                             "resolved_by", "resolution", "run_id")}
        for k in ("detected_at", "updated_at", "resolved_at"):
            v = to_local(getattr(self, k))
            out[k] = v.isoformat() if v else None
        if self.live is not None:
            out["live"] = self.live
        return out


@dataclass
class ConflictListing:
    """A page of conflicts and the counts by state and by ``kind.field`` of the open ones."""

    conflicts: list[ConflictView]
    total: int
    by_state: dict[str, int]
    open_by_field: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"total": self.total, "by_state": self.by_state, "open_by_field": self.open_by_field,
                "conflicts": [c.as_dict() for c in self.conflicts]}


def _loads(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _view(r: Any) -> ConflictView:
    return ConflictView(id=r.id, kind=r.entity, local_id=r.local_id, registry_id=r.registry_id, field=r.field,
                        group=r.field_group, state=r.state, base_value=_loads(r.base_value),
                        local_value=_loads(r.local_value), registry_value=_loads(r.remote_value),
                        registry_version=r.registry_version, detected_at=r.detected_at, updated_at=r.updated_at,
                        resolved_at=r.resolved_at, resolved_by=r.resolved_by, resolution=r.resolution,
                        run_id=r.run_id)


def list_conflicts(engine: Engine, *, state: str | None = "open", kind: str | None = None,
                   field_name: str | None = None, limit: int = 100) -> ConflictListing:
    """Conflicts, oldest first.

    Args:
        engine: the local store.
        state: ``open`` (default), ``resolved``, ``superseded``, or ``None`` for all.
        kind: only this record kind (``volunteer``, ``org``… or the plural names).
        field_name: only this field (Python name, e.g. ``phone``).
        limit: at most this many rows (1–10 000); the counts cover all.

    Raises:
        OperatorUsageError: an unknown state or kind, or a bad limit.
    """
    if state is not None and state not in STATES:
        raise OperatorUsageError(N_("unknown state {state!r}: one of {states} (or all)"), state=state,
                                 states=", ".join(STATES))
    if not 1 <= limit <= 10_000:
        raise OperatorUsageError(N_("--limit must be between 1 and 10000"))
    entity = parse_kind(kind) if kind else None
    with engine.connect() as conn:
        rows, total, by_state, open_by_field = conflict_page(conn, state=state, kind=entity, field=field_name,
                                                             limit=limit)
    return ConflictListing([_view(r) for r in rows], total, by_state, open_by_field)


def get_conflict(conn: Connection, conflict_id: int) -> ConflictView:
    """One conflict.

    Raises:
        OperatorUsageError: no conflict has that id.
    """
    r = find_conflict(conn, conflict_id)
    if r is None:
        raise OperatorUsageError(N_("no conflict {id}"), id=conflict_id)
    return _view(r)


def _audit(conn: Connection, action: str, target: str, reason: str, actor: str | None,
           details: dict[str, Any]) -> int:
    actor = mask_text((actor or default_actor()).strip() or "unknown")[:64]
    return add_audit(conn, at=utcnow(), actor=actor, action=action, target=target, reason=mask_text(reason),
                     details=json.dumps(details, ensure_ascii=False, sort_keys=True, default=str))


def _registry_record(client: RegistryPort, c: ConflictView) -> dict[str, Any]:
    found = client.lookup(as_kind(c.kind), [c.registry_id])
    if not found:
        raise OperatorUsageError(N_("the registry no longer has {kind} {registry_id}; run a reconcile"), kind=c.kind,
                                 registry_id=c.registry_id)
    return found[0]


def _shown(name: str, value: Any) -> Any:
    if value is None or name not in SENSITIVE:
        return value
    return mask_id_number(str(value)) if name == "id_number" else mask_phone(str(value))


def show_live(engine: Engine, client: RegistryPort, conflict_id: int, *, reason: str, actor: str | None = None
              ) -> ConflictView:
    """A conflict with the live values of its field on both sides, in clear (design.md, "Personal data": only on
    an operator's explicit request, audited).

    Raises:
        OperatorUsageError: no such conflict, no reason, or the record is gone on a side.
        RegistryError: the registry could not be read.
    """
    reason = check_reason(reason)
    with engine.connect() as conn:
        c = get_conflict(conn, conflict_id)
        row, refs = live_record(conn, c.kind, c.local_id)
    remote = project_registry(c.kind, _registry_record(client, c))
    local = project_local(c.kind, row, refs) if row is not None else {}
    c.live = {"local": local.get(c.field), "registry": remote.get(c.field)}
    with engine.begin() as conn:
        _audit(conn, "conflicts.show_live", f"conflict:{c.id} {c.kind}:{c.local_id} {c.field}", reason, actor,
               {"conflict": c.id, "field": c.field})
    return c


@dataclass
class Resolution:
    """What a resolve did: the conflict, how, whether a push was queued, the audit row."""

    conflict_id: int
    kind: str
    local_id: int
    field: str
    resolution: str
    applied_locally: bool
    push_queued: bool
    audit_id: int
    value_shown: Any

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dict(self.__dict__)


def parse_set(value: str, field_name: str) -> Any:
    """``FIELD=VALUE`` of ``--set`` → the value (a JSON value if it parses as one, else the text).

    Raises:
        OperatorUsageError: not ``FIELD=VALUE``, or FIELD is not the conflict's field.
    """
    name, sep, raw = value.partition("=")
    if not sep or not name.strip():
        raise OperatorUsageError(N_("--set wants FIELD=VALUE, got {value!r}"), value=value)
    if name.strip() != field_name:
        raise OperatorUsageError(N_("this conflict is on {field!r}, not {name!r}"), field=field_name, name=name.strip())
    raw = raw.strip()
    if field_name in _LIST_COLUMNS:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = [x.strip() for x in raw.split(",") if x.strip()]
        if not isinstance(parsed, list):
            raise OperatorUsageError(N_("{field} is a list: give a JSON array or comma-separated values"),
                                     field=field_name)
        return parsed
    return None if raw == "" else raw


def _check_value(kind: str, name: str, value: Any, row: dict[str, Any]) -> None:
    """The registry's rules for a value an operator types (registry-api.md §4.1, §4.2), checked before it is
    written: a phone, an ID number, a person's name, a USCC.

    Raises:
        NormalizationError: the value breaks the rule (a ``ValueError``).
    """
    if value is None:
        return
    if name == "phone" or name == "contact_phone":
        if normalize_phone(str(value), field=name, landline_ok=name == "contact_phone") is None:
            raise ValueError("a phone number is required here")
    elif name == "id_number":
        normalize_id_number(row.get("id_type") or "RESIDENT_ID", str(value))
    elif name == "name" and kind == "volunteer":
        normalize_name(str(value))
    elif name == "uscc":

        if not uscc.is_valid(normalize_uscc(str(value)) or ""):
            raise ValueError("not a valid unified social credit code (GB 32100-2015)")


def resolve_conflict(engine: Engine, client: RegistryPort, settings: Settings, conflict_id: int, *, take: str | None,
                     set_value: str | None = None, reason: str, actor: str | None = None) -> Resolution:
    """Decide one open conflict and apply or push the decision (see the module's docstring).

    Args:
        engine: the local store.
        client: a :class:`regsync.registry.client.RegistryClient` (reads the registry's current record).
        settings: regsync's settings (``hash_key``, ``province``, ``merge``).
        conflict_id: the conflict's id.
        take: ``local`` or ``registry`` (exactly one of ``take`` and ``set_value``).
        set_value: ``FIELD=VALUE``: a value of the operator's own for the field.
        reason: why (required; audited).
        actor: who, for the audit table (default: the OS user).

    Raises:
        OperatorUsageError: no such conflict or not open, neither or both of take/set, a bad value, or the
            record is gone on a side.
        RegistryError: the registry's current record could not be read.
        regsync.db.hashkey.HashKeyMismatch: ``settings.hash_key`` is not the store's hash key.
    """
    reason = check_reason(reason)
    if (take is None) == (set_value is None):
        raise OperatorUsageError(N_("give exactly one of --take local|registry and --set FIELD=VALUE"))
    check_hash_key(engine, settings.hash_key)  # the link's snapshot is re-hashed with the store's key
    if take is not None and take not in TAKES:
        raise OperatorUsageError(N_("--take must be local or registry, not {take!r}"), take=take)
    with engine.connect() as conn:
        c = get_conflict(conn, conflict_id)
    if c.state != "open":
        raise OperatorUsageError(N_("conflict {id} is {state}, not open"), id=conflict_id, state=c.state)
    rec = _registry_record(client, c)
    remote = project_registry(c.kind, rec)
    remote_canon = canonical(remote, settings.hash_key)
    writer = LocalWriter(engine, client, settings)
    now = utcnow()
    with engine.begin() as conn, suppress_outbox(conn):
        # re-read under the transaction: a merge may have superseded it meanwhile
        state = conflict_state(conn, conflict_id)
        if state != "open":
            raise OperatorUsageError(N_("conflict {id} was {state} meanwhile"), id=conflict_id, state=state)
        row, refs = live_record(conn, c.kind, c.local_id)
        if row is None:
            raise OperatorUsageError(N_("the platform no longer has {kind} {local_id}"), kind=c.kind,
                                     local_id=c.local_id)
        link = record_link(conn, c.kind, c.local_id)
        if link is None:
            raise OperatorUsageError(N_("{kind} {local_id} is not linked any more"), kind=c.kind, local_id=c.local_id)
        base = json.loads(link["base"] or "{}")
        applied = queued = False
        if take == "registry":
            value = remote.get(c.field)
            writer.write_local(conn, c.kind, row, MergeResult(merged={c.field: value}, apply_local=[c.field]))
            applied = True
            resolution = "registry"
        else:
            if set_value is not None:
                value = parse_set(set_value, c.field)
                is_date = is_date_field(c.kind, c.field)
                if value is not None and is_date:
                    try:
                        value = dt.date.fromisoformat(str(value))
                    except ValueError as exc:
                        raise OperatorUsageError(N_("{field} is a date (YYYY-MM-DD), not {value!r}"), field=c.field,
                                                 value=value) from exc
                local_value = writer.to_local(conn, c.kind, c.field, value)
                check = dict(row, **{c.field: local_value})
                try:
                    project_local(c.kind, check, refs)
                    _check_value(c.kind, c.field, value, row)
                except (ValueError, TypeError) as exc:
                    raise OperatorUsageError(N_("{field}={value!r} is not a valid value: {why}"), field=c.field,
                                             value=_shown(c.field, value), why=mask_text(str(exc))) from exc
                writer.write_local(conn, c.kind, row, MergeResult(merged={c.field: value}, apply_local=[c.field]))
                applied = True
                resolution = "value"
            else:
                value = project_local(c.kind, row, refs).get(c.field)
                resolution = "local"
            queue_update(conn, c.kind, c.local_id, row_priority(c.kind, row), now)
            queued = True
        # the registry's value is now the field's agreed base: the platform's value, if it differs, is a change
        # of the platform's alone and goes out; if it is the registry's, nothing is left to do
        base[c.field] = remote_canon.get(c.field)
        writer.flush(conn)  # the row writes are buffered by the writer
        set_link_base(conn, link["id"], dumps(base), now)
        mark_resolved(conn, conflict_id, resolution=resolution, now=now,
                      resolved_by=mask_text((actor or default_actor()).strip() or "unknown")[:64])
        shown = _shown(c.field, value)
        audit_id = _audit(conn, "conflicts.resolve", f"conflict:{c.id} {c.kind}:{c.local_id} {c.field}", reason,
                          actor, {"conflict": c.id, "kind": KIND_NAMES[c.kind], "local_id": c.local_id,
                                  "field": c.field, "resolution": resolution, "value": shown,
                                  "registry_version": int(rec.get("version") or 0)})
    return Resolution(conflict_id, c.kind, c.local_id, c.field, resolution, applied, queued, audit_id, shown)



__all__ = [
    "ConflictListing",
    "ConflictView",
    "Resolution",
    "get_conflict",
    "list_conflicts",
    "parse_set",
    "resolve_conflict",
    "show_live",
]
