"""One record on both sides (issue 15, point 4; ``regsync show KIND KEY``): what an operator needs to understand one
record without reading the sandbox's or the store's tables.

A record is named by the platform's key (the local id on the reference tables; on a mapped platform the platform's
own key, e.g. an org code: :func:`regsync.db.platform.mapped.local_id_of`) or by its registry id. The view holds:

* the local row in its canonical form (:func:`regsync.domain.projection.project_local`, read through the platform's
  read functions: the reference tables, or regsync's views of a mapped platform) and the registry's record, read
  live (``POST /lookup``, registry-api.md §5.2), field by field (:func:`regsync.domain.projection.canonical`), the
  fields that differ marked;
* the link, and its base (the state both sides last agreed on) where it differs from a side, with the sides that
  changed since;
* the record's outbox rows (the newest, and its failures however old) and its hold, its conflicts, its
  discrepancies in the newest runs that compare both sides, and the audit rows that name it
  (:mod:`regsync.db.show`);
* for a volunteer (issue 16, point 7), the platform's trainings of the person (their training records, with class
  hours, and the ACCEPTED ones' sum beside the registry's ``trainingHours``), commendations and evaluations.

Personal values (ID numbers, phones) are masked as everywhere (design.md, "Personal data"). With
``show_personal_data`` (and a reason) the live values of the record's own personal fields are shown in clear, and an
audit row is written first (action :data:`PERSONAL_DATA_ACTION`); the stored traces (conflicts, discrepancies,
errors) stay as they were stored, masked.

The registry not answering is no error here: the view holds the local side and the registry's error
(:attr:`RecordView.registry_state` ``unreadable``). Reads only: nothing is queued, merged or written but that audit
row (and the hash key's fingerprint the first time a store is checked: :func:`regsync.flows.runs.run_store`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from regsync.db.conflicts_store import add_audit, live_record
from regsync.db.platform.mapped import local_id_of, platform_key_of
from regsync.db.session import utcnow
from regsync.db.show import (
    audit_naming,
    conflicts_of,
    discrepancies_of,
    failed_rows,
    hold_of,
    links_of,
    outbox_rows,
    recent_finding_runs,
    volunteer_records,
)
from regsync.domain.clock import to_local
from regsync.domain.masking import mask_text
from regsync.domain.merge import shown
from regsync.domain.projection import FIELDS, REFERENCES, SENSITIVE, canonical, project_local, project_registry
from regsync.flows.operator import OperatorUsageError, check_reason, default_actor, parse_kind
from regsync.flows.runs import open_client, run_store
from regsync.i18n import TranslatableError
from regsync.i18n import gettext_noop as N_
from regsync.registry.errors import RegistryError
from regsync.registry.port import RegistryPort
from regsync.registry.types import as_kind
from regsync.settings import Settings

#: The audit action of a view with the personal values in clear.
PERSONAL_DATA_ACTION = "show_personal_data"

#: The newest outbox rows shown of a record (its failures are shown however old).
OUTBOX_ROWS = 20

#: The newest conflicts, discrepancies and audit rows shown of a record.
LISTED = 20

#: The newest runs that compare both sides (reconcile, resync, adopt) whose discrepancies are shown.
RECENT_RUNS = 10

#: What :attr:`FieldView.base` holds for a personal field whose agreed value is neither side's (kept as a keyed hash).
HASHED = "(hash)"


class ShowUsageError(OperatorUsageError):
    """The command names no record properly: neither or both of a key and a registry id, or ``show_personal_data``
    without a reason (exit code 2)."""


class RecordNotFound(TranslatableError, LookupError):
    """Neither the platform nor the registry holds the record, or the platform does not and the registry could not
    be read (exit code 1)."""


@dataclass(frozen=True)
class FieldView:
    """One synced field on both sides.

    Attributes:
        field: its name (Python, :data:`regsync.domain.projection.FIELDS`).
        local: the platform's value in canonical form (personal values masked unless shown on request; a reference
            as the referred record's registry id), or ``None``.
        registry: the registry's, in the same form.
        base: the value both sides last agreed on (the link's base), in the same form; for a personal field, which
            the base keeps as a keyed hash, the side's value it equals, else :data:`HASHED`. ``None`` without a link.
        differs: the two sides differ (canonical values); ``None`` when a side is missing.
        base_differs: the base differs from a side.
        changed: the sides whose value moved from the base (``platform``, ``registry``); ``None`` when the base
            does not hold the field.
        local_ref: for a reference, the local id the platform's row refers to (``None`` otherwise).
    """

    field: str
    local: Any
    registry: Any
    base: Any
    differs: bool | None
    base_differs: bool
    changed: tuple[str, ...] | None
    local_ref: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        out = {k: getattr(self, k) for k in ("field", "local", "registry", "base", "differs", "base_differs")}
        out["changed"] = None if self.changed is None else list(self.changed)
        if self.local_ref is not None:
            out["local_ref"] = self.local_ref
        return out


@dataclass
class RecordView:
    """One record on both sides and its traces in regsync's tables (the module's docstring). Times are +08:00 in
    :meth:`as_dict` (stored naive UTC); field values are canonical (times UTC, hours in hundredths of an hour).

    Attributes:
        kind: the record kind (``org``, ``volunteer``, ``membership``, ``activity``, ``service_record``).
        key: the platform's key of the record (a local id's digits, or a mapped platform's string key), or ``None``.
        local_id: its local id, or ``None`` (a record only the registry holds).
        registry_id: its registry id, or ``None`` (not linked).
        local_found: the platform holds the row.
        registry_state: ``found``; ``not_found`` (linked, but the registry has no such record); ``not_linked`` (no
            registry id is known); ``unreadable`` (the registry did not answer: :attr:`registry_error`).
        registry_error: what the registry call failed with (masked), or ``None``.
        local_error: why the local row has no canonical form (a value its field cannot hold: masked), or ``None``.
        personal_data: personal values are in clear (audited: :attr:`audit_id`).
        audit_id: the audit row of a view in clear, or ``None``.
        fields: the synced fields, in their kind's order.
        registry_meta: the registry record's own read-only fields (``version``, ``clientRef``, ``ownerClientId``,
            ``totalHours``…), Python names.
        link: the link (``how``, ``registry_version``, ``is_duplicate``, ``revision``, ``linked_at``,
            ``updated_at``, and ``others``: the local ids of the other rows linked to the same registry id), or
            ``None``.
        outbox: ``by_state`` (state → rows), ``rows`` (the newest :data:`OUTBOX_ROWS`), ``failures`` (its failed
            and blocked rows), ``hold`` (discarded by an operator) or ``None``.
        conflicts: ``total`` and ``rows`` (the newest :data:`LISTED`).
        discrepancies: ``runs`` (the runs looked at, newest first) and ``rows`` (the newest :data:`LISTED`).
        audit: the audit rows that name the record, newest first (:data:`LISTED` at most).
        records: for a volunteer, the person's trainings, commendations and evaluations on the platform
            (:func:`regsync.db.show.volunteer_records`: :data:`LISTED` newest of each, their totals, and
            ``training_hours``, the ACCEPTED training records' class hours in hundredths); ``registry_training_hours``
            beside it, the registry's ``trainingHours`` (hundredths, ``None`` when the registry was not read).
            ``{}`` for the other kinds.
    """

    kind: str
    key: str | None
    local_id: int | None
    registry_id: str | None
    local_found: bool
    registry_state: str
    registry_error: str | None = None
    local_error: str | None = None
    personal_data: bool = False
    audit_id: int | None = None
    fields: list[FieldView] = field(default_factory=list)
    registry_meta: dict[str, Any] = field(default_factory=dict)
    link: dict[str, Any] | None = None
    outbox: dict[str, Any] = field(default_factory=dict)
    conflicts: dict[str, Any] = field(default_factory=dict)
    discrepancies: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def in_agreement(self) -> bool | None:
        """Both sides hold the record with every synced field equal; ``None`` when a side is missing."""
        if not self.local_found or self.registry_state != "found" or self.local_error:
            return None
        return not any(f.differs for f in self.fields)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the attributes, ``in_agreement``, and ``fields`` as a list of objects."""
        out = {k: getattr(self, k) for k in (
            "kind", "key", "local_id", "registry_id", "local_found", "registry_state", "registry_error",
            "local_error", "personal_data", "audit_id", "registry_meta", "link", "outbox", "conflicts",
            "discrepancies", "audit")}
        out["records"] = {k: [{c: _day(x) for c, x in r.items()} for r in v] if isinstance(v, list) else v
                          for k, v in self.records.items()}
        out["in_agreement"] = self.in_agreement
        out["fields"] = [f.as_dict() for f in self.fields]
        return out


@dataclass
class _Target:
    """The record found locally: its row, references, link and key (each may be missing)."""

    local_id: int | None = None
    key: str | None = None
    row: dict[str, Any] | None = None
    refs: dict[tuple[str, int], str] = field(default_factory=dict)
    link: dict[str, Any] | None = None
    others: list[int] = field(default_factory=list)
    registry_id: str | None = None


def _resolve(conn: Connection, kind: str, key: str | None, registry_id: str | None) -> _Target:
    """The record named by the platform's ``key`` or by ``registry_id``, as the local store holds it."""
    t = _Target(registry_id=registry_id)
    if key is not None:
        t.local_id = local_id_of(conn, kind, key)
    else:
        linked = links_of(conn, kind, registry_id=str(registry_id))
        t.local_id = int(linked[0]["local_id"]) if linked else None
    if t.local_id is None:
        return t
    t.row, t.refs = live_record(conn, kind, t.local_id)
    links = links_of(conn, kind, local_id=t.local_id)
    t.link = links[0] if links else None
    if t.link is not None:
        t.registry_id = str(t.link["registry_id"])
        t.others = [int(r["local_id"]) for r in links_of(conn, kind, registry_id=t.registry_id)
                    if int(r["local_id"]) != t.local_id]
    if t.row is not None or t.link is not None:
        t.key = platform_key_of(conn, kind, t.local_id)
    return t


def _registry_side(settings: Settings, client: RegistryPort | None, kind: str, registry_id: str | None
                   ) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(registry_state, the decoded record or None, the error masked or None)``."""
    if registry_id is None:
        return "not_linked", None, None
    try:
        with open_client(settings, client) as c:
            found = c.lookup(as_kind(kind), [registry_id])
    except RegistryError as exc:
        return "unreadable", None, mask_text(f"{type(exc).__name__}: {exc}")
    if not found:
        return "not_found", None, None
    return "found", found[0], None


def _display(name: str, value: Any, hash_key: str, clear: bool) -> Any:
    """A value as the view shows it: canonical, a personal one masked unless ``clear``."""
    if clear and name in SENSITIVE and value is not None:
        return str(value).strip()
    return shown(name, value, hash_key)[0]


def _local_fields(kind: str, t: _Target) -> tuple[dict[str, Any], str | None]:
    """The local row's synced fields (projected), and why they could not be projected (then the raw values)."""
    assert t.row is not None
    try:
        return project_local(kind, t.row, t.refs), None
    except ValueError as exc:  # a value its field cannot hold (UnmappedValue is one): shown as stored
        refs = REFERENCES[kind]
        raw = {n: (t.refs.get((refs[n], t.row[n])) if n in refs and t.row.get(n) is not None else t.row.get(n))
               for n in FIELDS[kind]}
        return raw, mask_text(str(exc))


def _fields(kind: str, local: dict[str, Any] | None, remote: dict[str, Any] | None, base: dict[str, Any] | None,
            row: dict[str, Any] | None, hash_key: str, clear: bool) -> list[FieldView]:
    """Field by field (the module's docstring)."""
    lc = canonical(local, hash_key) if local is not None else None
    rc = canonical(remote, hash_key) if remote is not None else None
    out = []
    for name in FIELDS[kind]:
        lv = None if local is None else _display(name, local.get(name), hash_key, clear)
        rv = None if remote is None else _display(name, remote.get(name), hash_key, clear)
        sides = [(s, c[name], v) for s, c, v in (("platform", lc, lv), ("registry", rc, rv)) if c is not None]
        has_base = base is not None and name in base
        agreed = base.get(name) if base is not None else None
        shown_base: Any = None
        if has_base:
            shown_base = agreed
            if name in SENSITIVE and agreed is not None:
                shown_base = next((v for _, c, v in sides if c == agreed), HASHED)
        ref = REFERENCES[kind].get(name)
        out.append(FieldView(
            field=name, local=lv, registry=rv, base=shown_base,
            differs=None if lc is None or rc is None else lc[name] != rc[name],
            base_differs=has_base and any(c != agreed for _, c, _ in sides),
            changed=tuple(s for s, c, _ in sides if c != agreed) if has_base else None,
            local_ref=int(row[name]) if ref and row is not None and row.get(name) is not None else None))
    return out


def _iso(value: Any) -> Any:
    """A stored time (naive UTC) as ISO 8601 in +08:00, to the second; any other value as it is."""
    if isinstance(value, dt.datetime):
        local = to_local(value)
        return local.replace(microsecond=0).isoformat() if local is not None else None
    return value


def _day(value: Any) -> Any:
    """A stored date as ``YYYY-MM-DD`` (a time as :func:`_iso`); any other value as it is."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return _iso(value)


def _loads(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _plain(row: dict[str, Any], keys: tuple[str, ...], *, masked: tuple[str, ...] = (),
           decoded: tuple[str, ...] = ()) -> dict[str, Any]:
    """The columns ``keys`` of a stored row as plain data: times in +08:00, the ``masked`` texts masked again, the
    ``decoded`` JSON texts decoded."""
    out: dict[str, Any] = {}
    for k in keys:
        v = row.get(k)
        if k in masked and isinstance(v, str):
            v = mask_text(v)
        elif k in decoded:
            v = _loads(v)
        out[k] = _iso(v)
    return out


_OUTBOX = ("id", "op", "state", "attempts", "last_code", "last_error", "created_at", "available_at", "done_at",
           "blocked_entity", "blocked_local_id")
_CONFLICT = ("id", "field", "field_group", "state", "base_value", "local_value", "remote_value", "registry_version",
             "detected_at", "resolved_at", "resolved_by", "resolution", "run_id")
_DISCREPANCY = ("id", "run_id", "kind", "fields", "details", "city_code", "org_line", "action", "action_state",
                "detected_at")
_AUDIT = ("id", "at", "actor", "action", "target", "reason", "details")


def _conflict(row: dict[str, Any]) -> dict[str, Any]:
    out = _plain(row, _CONFLICT, decoded=("base_value", "local_value", "remote_value"))
    if row["field"] in SENSITIVE and out["base_value"] is not None:
        out["base_value"] = HASHED
    return out


def _traces(conn: Connection, view: RecordView, names: list[str]) -> None:
    """Fill the view's outbox, conflicts, discrepancies and audit from the store."""
    kind, lid = view.kind, view.local_id
    if lid is not None:
        rows, by_state = outbox_rows(conn, kind, lid, limit=OUTBOX_ROWS)
        hold = hold_of(conn, kind, lid)
        view.outbox = {
            "by_state": by_state, "rows": [_plain(r, _OUTBOX, masked=("last_error",)) for r in rows],
            "failures": [_plain(r, _OUTBOX, masked=("last_error",)) for r in failed_rows(conn, kind, lid,
                                                                                         limit=OUTBOX_ROWS)],
            "hold": None if hold is None else _plain(hold, ("held_at", "actor", "reason", "audit_id"),
                                                     masked=("reason",))}
        crows, total = conflicts_of(conn, kind, lid, limit=LISTED)
        view.conflicts = {"total": total, "rows": [_conflict(r) for r in crows]}
    else:
        view.outbox = {"by_state": {}, "rows": [], "failures": [], "hold": None}
        view.conflicts = {"total": 0, "rows": []}
    runs = recent_finding_runs(conn, RECENT_RUNS)
    found = discrepancies_of(conn, kind, [r["id"] for r in runs], local_id=lid, registry_id=view.registry_id,
                             limit=LISTED)
    view.discrepancies = {"runs": [_plain(r, ("id", "kind", "started_at", "status")) for r in runs],
                          "rows": [_plain(r, _DISCREPANCY, decoded=("fields", "details")) for r in found]}
    view.audit = [_plain(r, _AUDIT, masked=("target", "reason"), decoded=("details",))
                  for r in audit_naming(conn, names, limit=LISTED)]


def _record_names(view: RecordView) -> list[str]:
    """How audit rows name the record: ``kind:local id`` (``outbox``, ``conflicts``, ``resync``), ``kind:key`` (a
    resync by a mapped platform's key), ``kind:registry:id`` (a resync by registry id)."""
    names = []
    if view.local_id is not None:
        names.append(f"{view.kind}:{view.local_id}")
    if view.key is not None and view.key != str(view.local_id):
        names.append(f"{view.kind}:{view.key}")
    if view.registry_id is not None:
        names.append(f"{view.kind}:registry:{view.registry_id}")
    return names


def show_record(settings: Settings, kind: str, key: str | None = None, *, registry_id: str | None = None,
                show_personal_data: bool = False, reason: str | None = None, actor: str | None = None,
                engine: Engine | None = None, client: RegistryPort | None = None) -> RecordView:
    """One record on both sides and its traces (the module's docstring).

    Args:
        settings: regsync's settings (the store, the registry, ``hash_key``).
        kind: the record kind as an operator names it (``volunteer``, ``org``, ``membership``, ``activity``,
            ``service-record``, or their plurals: :func:`regsync.flows.operator.parse_kind`).
        key: the platform's key of the record (exactly one of ``key`` and ``registry_id``).
        registry_id: the registry's id of the record.
        show_personal_data: the record's ID numbers and phones in clear (needs ``reason``; audited).
        reason: why they are needed (goes to the audit table, masked).
        actor: who, for the audit table (default: the OS user).
        engine: an engine on the store (default: one on ``settings.database.url``, checked).
        client: a registry client (default: a new :class:`~regsync.registry.client.RegistryClient`).

    Returns:
        The :class:`RecordView`; the registry not answering is in :attr:`RecordView.registry_state`.

    Raises:
        ShowUsageError: neither or both of ``key`` and ``registry_id``, or no reason for ``show_personal_data``.
        OperatorUsageError: an unknown kind.
        RecordNotFound: neither side holds the record (or the platform does not and the registry did not answer).
        ConfigError: incomplete registry settings, a bad database URL, or a hash key that is not the store's.
        StoreError: the local store is unusable.
    """
    kind = parse_kind(kind.replace("-", "_"))
    if (key is None or not key.strip()) == (registry_id is None or not registry_id.strip()):
        raise ShowUsageError(N_("name the record by its KEY or by --registry-id ID, one of them"))
    if show_personal_data:
        try:
            reason = check_reason(reason)
        except OperatorUsageError as exc:
            raise ShowUsageError(N_("--show-personal-data needs --reason: why the ID numbers and phones are needed "
                                    "(it goes to the audit table)")) from exc
    registry_id = registry_id.strip() if registry_id is not None else None
    with run_store(settings, engine) as store:
        with store.connect() as conn:
            t = _resolve(conn, kind, key.strip() if key is not None else None, registry_id)
        state, record, error = _registry_side(settings, client, kind, t.registry_id)
        local_found = t.row is not None
        if not local_found and t.link is None and record is None:
            if key is not None:
                raise RecordNotFound(N_("no {kind} {key} on the platform, and the registry could not be read "
                                        "({error})") if error else N_("no {kind} {key} on the platform"),
                                     kind=kind, key=key, error=error)
            raise RecordNotFound(N_("no {kind} with registry id {registry_id} on the platform, and the registry "
                                    "could not be read ({error})") if error else
                                 N_("no {kind} with registry id {registry_id} on the platform nor in the registry"),
                                 kind=kind, registry_id=registry_id, error=error)
        view = RecordView(kind=kind, key=t.key, local_id=t.local_id, registry_id=t.registry_id,
                          local_found=local_found, registry_state=state, registry_error=error)
        local, view.local_error = _local_fields(kind, t) if local_found else (None, None)
        if show_personal_data:
            view.personal_data = True
            view.audit_id = _audit_reveal(store, view, reason or "", actor)
        base = _loads(t.link["base"]) if t.link is not None else None
        view.fields = _fields(kind, local, project_registry(kind, record) if record is not None else None,
                              base if isinstance(base, dict) else None, t.row, settings.hash_key, show_personal_data)
        if record is not None:
            view.registry_meta = {k: _iso(v) for k, v in record.items() if k not in FIELDS[kind]}
        if t.link is not None:
            view.link = _plain(t.link, ("how", "registry_version", "is_duplicate", "revision", "linked_at",
                                        "updated_at")) | {"others": t.others}
            view.link["is_duplicate"] = bool(view.link["is_duplicate"])
        with store.connect() as conn:
            _traces(conn, view, _record_names(view))
            if kind == "volunteer" and t.local_id is not None:
                view.records = volunteer_records(conn, [t.local_id, *t.others], limit=LISTED)
                view.records["registry_training_hours"] = (
                    record.get("training_hours") if record is not None else None)
    return view


def _audit_reveal(engine: Engine, view: RecordView, reason: str, actor: str | None) -> int:
    """Write the audit row of a view in clear (before anything is shown); its id."""
    target = (f"{view.kind}:{view.local_id}" if view.local_id is not None
              else f"{view.kind}:registry:{view.registry_id}")
    details = {"kind": view.kind, "local_id": view.local_id, "key": view.key, "registry_id": view.registry_id,
               "fields": sorted(SENSITIVE & set(FIELDS[view.kind]))}
    with engine.begin() as conn:
        return add_audit(conn, at=utcnow(), actor=mask_text((actor or default_actor()).strip() or "unknown")[:64],
                         action=PERSONAL_DATA_ACTION, target=target, reason=mask_text(reason),
                         details=json.dumps(details, ensure_ascii=False, sort_keys=True))


__all__ = [
    "HASHED",
    "PERSONAL_DATA_ACTION",
    "FieldView",
    "RecordNotFound",
    "RecordView",
    "ShowUsageError",
    "show_record",
]
