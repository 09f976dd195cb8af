"""The hash key of a store: which key its keyed hashes were made with, and how to change it (design.md, "Personal
data").

The links' base snapshots keep ID numbers and phones (:data:`regsync.domain.projection.SENSITIVE`) as keyed hashes
(HMAC-SHA256 with ``hash_key``, :func:`regsync.domain.masking.keyed_hash`), and so do the conflicts (``base_value``,
``local_hash``, ``remote_hash``). A process that runs a flow with another key would see every such field as
changed on both sides. So the store keeps a *fingerprint* of its key in ``store_meta`` (an HMAC of a fixed label
under the key; the key cannot be read back from it), and every flow checks it first (:func:`check_hash_key`):

* the same fingerprint: go on;
* another fingerprint: refuse (:class:`HashKeyMismatch`, a configuration error, exit 2);
* none yet (a new store, or one from before the fingerprint): the base snapshots are tried against the key
  (:func:`key_evidence`): none of those that can be checked matches it, refuse; else record it.

A store is moved to another key by :func:`rekey_store` (``regsync db rekey``): it re-hashes each base value from
the value both sides agreed on, which it finds as follows (the rule, design.md "Personal data"):

1. the local record's current value, if its hash under the old key is the base's;
2. else the registry's current value (``POST /lookup``, registry-api.md §5.2), if its hash under the old key is the
   base's;
3. else neither side still holds the agreed value: both changed it since. The field is left out of the base
   ("unknown"), which the merge reads as changed on both sides (:func:`regsync.domain.merge.three_way`): equal values
   agree, different ones go by the field group's policy, as they would have with the lost value. Without the
   registry (``--offline``), step 2 is skipped and such fields are counted as ``unknown_offline``.

The conflicts' hashes are re-made the same way from the values still held; a hash of a value neither side holds
any more (an old conflict's) is cleared (no flow reads it; the masked values stay). Nothing is pushed or pulled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from regsync.db.models import Audit, Base, Conflict, Link, StoreMeta
from regsync.db.session import connection, utcnow
from regsync.domain.masking import mask_text
from regsync.domain.projection import SENSITIVE, canonical, dumps, project_local, project_registry
from regsync.settings import PUBLIC_HASH_KEY, ConfigError

#: The ``store_meta`` row that holds the fingerprint of the store's hash key.
FINGERPRINT_NAME = "hash_key_fingerprint"

_LABEL = b"regsync store hash_key fingerprint v1"

#: The kinds whose base snapshots hold personal fields, their local table, and those fields.
PERSONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "volunteer": ("volunteer", ("id_number", "phone")),
    "org": ("organization", ("contact_phone",)),
}

#: Links read (and registry records looked up) per step of a re-keying.
PAGE = 500


class HashKeyMismatch(ConfigError):
    """The configured hash key is not the one the store's snapshots were hashed with (exit code 2)."""


def fingerprint(key: str) -> str:
    """The fingerprint of a hash key: ``hk1:`` and 32 hex digits of HMAC-SHA256(key, a fixed label). It tells two
    keys apart and cannot be turned back into the key."""
    return "hk1:" + hmac.new(key.encode(), _LABEL, hashlib.sha256).hexdigest()[:32]


def stored_fingerprint(bind: Engine | Connection) -> str | None:
    """The fingerprint kept in the store, or ``None`` when none is kept yet."""
    with connection(bind) as conn:
        return conn.execute(select(StoreMeta.value).where(StoreMeta.name == FINGERPRINT_NAME)).scalar_one_or_none()


def _save_fingerprint(conn: Connection, value: str) -> None:
    t = StoreMeta.__table__
    done = conn.execute(t.update().where(t.c.name == FINGERPRINT_NAME).values(value=value, updated_at=utcnow()))
    if not done.rowcount:
        conn.execute(t.insert().values(name=FINGERPRINT_NAME, value=value, updated_at=utcnow()))


@dataclass
class Evidence:
    """What a sample of base snapshots says about a key: ``compared`` personal base values whose local value could
    be hashed, ``matching`` those equal to the local value's hash under the key, ``matching_public`` under
    :data:`~regsync.settings.PUBLIC_HASH_KEY`."""

    compared: int = 0
    matching: int = 0
    matching_public: int = 0


def _local_rows(conn: Connection, kind: str, ids: list[int]) -> list[Any]:
    """The local rows of ``kind`` with these ids (those that still exist), as mappings."""
    if not ids:
        return []
    table = Base.metadata.tables[PERSONAL[kind][0]]
    return list(conn.execute(select(table).where(table.c.id.in_(ids))).mappings())


def _personal_rows(conn: Connection, kind: str, after: int, limit: int) -> list[Any]:
    """Links of ``kind`` with ``id > after`` (in id order), each with its local row's columns (``None`` when the
    local row is gone), as ``(link row, local row mapping or None)``."""
    links = conn.execute(select(Link.id, Link.local_id, Link.registry_id, Link.base).where(
        Link.entity == kind, Link.id > after).order_by(Link.id).limit(limit)).all()
    local = {r["id"]: r for r in _local_rows(conn, kind, [r.local_id for r in links])}
    return [(r, local.get(r.local_id)) for r in links]


def _local_values(kind: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The local row's personal fields as they are sent (normalized), ``{}`` when the row is gone or unreadable."""
    if row is None:
        return {}
    try:
        projected = project_local(kind, row, {})
    except ValueError:
        return {}
    return {n: projected.get(n) for n in PERSONAL[kind][1]}


def _hashes(name: str, value: Any, key: str) -> Any:
    return canonical({name: value}, key)[name]


def key_evidence(bind: Engine | Connection, key: str, *, sample: int = 200) -> Evidence:
    """Try ``key`` on the first ``sample`` links of each personal kind: does the base hold, for a personal field,
    the hash of the local row's current value under it?

    A base value that matches proves the key; one that does not may only mean the value changed since. So only
    "none matches of those compared" says the key is not the store's.
    """
    ev = Evidence()
    with connection(bind) as conn:
        for kind, (_, names) in PERSONAL.items():
            for link, row in _personal_rows(conn, kind, 0, sample):
                base = json.loads(link.base or "{}")
                values = _local_values(kind, row)
                for name in names:
                    b = base.get(name)
                    if not (isinstance(b, str) and b.startswith("h:")) or values.get(name) is None:
                        continue
                    ev.compared += 1
                    ev.matching += _hashes(name, values[name], key) == b
                    ev.matching_public += _hashes(name, values[name], PUBLIC_HASH_KEY) == b
    return ev


def _mismatch_message(saved: str | None, key: str, ev: Evidence | None = None) -> str:
    how = ("set hash_key (REGSYNC_HASH_KEY) or hash_key_file (REGSYNC_HASH_KEY_FILE) to the store's key (for a "
           "SQLite store, the file <store>.hash_key beside it), or move the store to this key once with `regsync "
           "db rekey --reason ...` (deploy/RUNBOOK.md, \"Rotate secrets\")")
    if saved == fingerprint(PUBLIC_HASH_KEY) or (ev is not None and ev.matching_public):
        return ("this store's base snapshots were hashed with the old public default key, and the configured "
                "hash_key is another: every ID number and phone would look changed. Re-key the store once with "
                "`regsync db rekey --reason ...` (it re-hashes from the public key; deploy/RUNBOOK.md)")
    if saved is not None:
        return (f"the configured hash_key is not the key this store's base snapshots were hashed with (the store "
                f"keeps fingerprint {saved[:12]}…, this key's is {fingerprint(key)[:12]}…): every ID number and "
                f"phone would look changed, so no flow runs. {how[0].upper()}{how[1:]}")
    return (f"the configured hash_key does not match this store's base snapshots (none of {ev.compared if ev else 0} "
            f"personal values checked was hashed with it): every ID number and phone would look changed, so no "
            f"flow runs. {how[0].upper()}{how[1:]}")


def check_hash_key(engine: Engine, key: str, *, dispose_on_error: bool = False) -> None:
    """Check, before a flow runs, that ``key`` is the store's hash key; on a store that keeps no fingerprint yet,
    record this key's once the base snapshots do not contradict it.

    Args:
        engine: the local store (migrated).
        key: the configured hash key (``settings.hash_key``).
        dispose_on_error: dispose of ``engine`` before raising (a caller that made it for the flow).

    Raises:
        HashKeyMismatch: the store keeps another key's fingerprint, or (no fingerprint yet) none of the personal
            base values checked was hashed with this key.
    """
    try:
        _check(engine, key)
    except BaseException:
        if dispose_on_error:
            engine.dispose()
        raise


def _check(engine: Engine, key: str) -> None:
    saved = stored_fingerprint(engine)
    mine = fingerprint(key)
    if saved == mine:
        return
    if saved is not None:
        raise HashKeyMismatch(_mismatch_message(saved, key))
    ev = key_evidence(engine, key)
    if ev.compared and not ev.matching:
        raise HashKeyMismatch(_mismatch_message(None, key, ev))
    with engine.begin() as conn:
        # two processes may get here at once: the row's primary key lets one insert; the other re-reads it
        current = conn.execute(select(StoreMeta.value).where(StoreMeta.name == FINGERPRINT_NAME)
                               .with_for_update()).scalar_one_or_none()
        if current is None:
            try:
                with conn.begin_nested():
                    conn.execute(StoreMeta.__table__.insert().values(name=FINGERPRINT_NAME, value=mine,
                                                                     updated_at=utcnow()))
            except IntegrityError:  # another process recorded its key first: compare with it
                current = conn.execute(select(StoreMeta.value).where(StoreMeta.name == FINGERPRINT_NAME)
                                       ).scalar_one_or_none()
    if current is not None and current != mine:
        raise HashKeyMismatch(_mismatch_message(current, key))


@dataclass
class RekeySummary:
    """What a re-keying did (or, with ``dry_run``, would do). Counts are of personal base values (one per link
    and field) unless named otherwise.

    Attributes:
        links: links of volunteers and orgs read.
        from_local: values re-hashed from the local record's current value.
        from_registry: values re-hashed from the registry's current value.
        unknown: values neither side still holds, left out of the base (changed on both sides for the merge).
        unknown_offline: values the local record no longer holds, left out without asking the registry.
        conflicts_rehashed: conflict hashes (base, local, registry) re-made from a value still held.
        conflicts_cleared: conflict hashes of values neither side holds any more, cleared.
        looked_up: registry records read.
        already: the store already keeps the new key's fingerprint: nothing was done.
        dry_run: nothing was written.
        audit_id: the audit row (``None`` for a dry run or when nothing was done).
    """

    links: int = 0
    from_local: int = 0
    from_registry: int = 0
    unknown: int = 0
    unknown_offline: int = 0
    conflicts_rehashed: int = 0
    conflicts_cleared: int = 0
    looked_up: int = 0
    already: bool = False
    dry_run: bool = False
    audit_id: int | None = None
    by_field: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return asdict(self)


class _Rehasher:
    """Re-hashes one page of links at a time, asking the registry for the records whose local value does not
    give the agreed one."""

    def __init__(self, old: str, new: str, client: Any, summary: RekeySummary) -> None:
        self.old, self.new, self.client, self.s = old, new, client, summary

    def remote_values(self, kind: str, registry_ids: list[str]) -> dict[str, dict[str, Any]]:
        if self.client is None or not registry_ids:
            return {}
        records = self.client.lookup(kind, registry_ids)
        self.s.looked_up += len(records)
        return {r["id"]: project_registry(kind, r) for r in records if r.get("id")}

    def agreed(self, name: str, hashed: Any, candidates: list[Any]) -> Any:
        """The new hash of the first candidate whose old hash is ``hashed``, or ``_UNKNOWN``."""
        for value in candidates:
            if value is not None and _hashes(name, value, self.old) == hashed:
                return _hashes(name, value, self.new)
        return _UNKNOWN


_UNKNOWN = object()


def _pages(conn: Connection, kind: str) -> Iterator[list[Any]]:
    after = 0
    while True:
        rows = _personal_rows(conn, kind, after, PAGE)
        if not rows:
            return
        yield rows
        after = rows[-1][0].id


def rekey_store(engine: Engine, old_key: str, new_key: str, *, client: Any = None, reason: str, actor: str,
                dry_run: bool = False) -> RekeySummary:
    """Move the store from ``old_key`` to ``new_key``: re-hash the personal values of the links' base snapshots
    and of the conflicts from the values both sides agreed on (the rule in this module's docstring), record the
    new key's fingerprint and the operator's action (audit ``db_rekey``), all in one transaction. Nothing is
    pushed or pulled; the outbox is not touched.

    Args:
        engine: the local store (migrated). No flow should run on it meanwhile (stop the daemons).
        old_key: the key the snapshots were hashed with (the public default for a store that ran without one).
        new_key: the configured key.
        client: a :class:`~regsync.registry.client.RegistryClient` for the values the local records no longer
            hold (``POST /lookup``); ``None`` to leave those fields unknown without asking.
        reason: why (required; goes to the audit table).
        actor: who.
        dry_run: count only; write nothing.

    Returns:
        A :class:`RekeySummary`.

    Raises:
        ConfigError: the two keys are the same, or the reason is empty.
        HashKeyMismatch: the store keeps a fingerprint that is neither key's, or (no fingerprint) its snapshots
            show that they were not hashed with ``old_key``.
        regsync.registry.errors.RegistryError: the registry could not be read (nothing is written then).
    """
    if not reason or not reason.strip():
        raise ConfigError("--reason is required: say why the store is re-keyed (it goes to the audit table)")
    if old_key == new_key:
        raise ConfigError("the old and the new hash_key are the same: nothing to re-key")
    summary = RekeySummary(dry_run=dry_run)
    saved = stored_fingerprint(engine)
    if saved == fingerprint(new_key):
        summary.already = True
        return summary
    if saved is not None and saved != fingerprint(old_key):
        raise HashKeyMismatch(f"the store keeps fingerprint {saved[:12]}…, which is neither the old key's "
                              f"({fingerprint(old_key)[:12]}…) nor the configured key's: give the key the store "
                              "was hashed with as the old key (--old-key-file)")
    if saved is None:
        ev = key_evidence(engine, old_key)
        if ev.compared and not ev.matching:
            raise HashKeyMismatch(f"none of the {ev.compared} personal base values checked was hashed with the old "
                                  "key: give the key the store was hashed with (--old-key-file)")
    r = _Rehasher(old_key, new_key, client, summary)
    by_field: dict[str, int] = {}
    held: dict[tuple[str, int], dict[str, list[Any]]] = {}  # (kind, local id) → field → candidate clear values
    with engine.begin() as conn:
        for kind, (_, names) in PERSONAL.items():
            for page in _pages(conn, kind):
                summary.links += len(page)
                pending = []
                for link, row in page:
                    base = json.loads(link.base or "{}")
                    local = _local_values(kind, row)
                    if any(isinstance(base.get(n), str) and base[n].startswith("h:") and
                           r.agreed(n, base[n], [local.get(n)]) is _UNKNOWN for n in names):
                        pending.append(link.registry_id)
                remote = r.remote_values(kind, pending)
                updates = []
                for link, row in page:
                    base = json.loads(link.base or "{}")
                    local = _local_values(kind, row)
                    rv = remote.get(link.registry_id, {})
                    held[(kind, link.local_id)] = {n: [local.get(n), rv.get(n)] for n in names}
                    changed = False
                    for name in names:
                        b = base.get(name)
                        if not (isinstance(b, str) and b.startswith("h:")):
                            if name in base and b is not None:  # a clear value where a hash belongs: never kept
                                base.pop(name)
                                changed = True
                            continue
                        new = r.agreed(name, b, [local.get(name)])
                        if new is not _UNKNOWN:
                            summary.from_local += 1
                        else:
                            new = r.agreed(name, b, [rv.get(name)])
                            if new is not _UNKNOWN:
                                summary.from_registry += 1
                        if new is _UNKNOWN:
                            base.pop(name)
                            if client is None:
                                summary.unknown_offline += 1
                            else:
                                summary.unknown += 1
                        else:
                            base[name] = new
                        by_field[f"{kind}.{name}"] = by_field.get(f"{kind}.{name}", 0) + 1
                        changed = True
                    if changed:
                        updates.append({"b_id": link.id, "b_base": dumps(base)})
                if updates and not dry_run:
                    conn.execute(Link.__table__.update().where(Link.__table__.c.id == bindparam("b_id")).values(
                        base=bindparam("b_base")), updates)
        _rekey_conflicts(conn, r, held, dry_run)
        summary.by_field = by_field
        if dry_run:
            return summary  # nothing was written
        _save_fingerprint(conn, fingerprint(new_key))
        details = {k: v for k, v in summary.as_dict().items() if k not in ("audit_id", "dry_run", "already")}
        details.update(old_key_fingerprint=fingerprint(old_key), new_key_fingerprint=fingerprint(new_key))
        summary.audit_id = int(conn.execute(Audit.__table__.insert().values(  # type: ignore[index]  # one-row INSERT: its key is never None
            at=utcnow(), actor=actor, action="db_rekey", target="store", reason=mask_text(reason.strip()),
            details=json.dumps(details, sort_keys=True))).inserted_primary_key[0])
    return summary


def _rekey_conflicts(conn: Connection, r: _Rehasher, held: dict[tuple[str, int], dict[str, list[Any]]],
                     dry_run: bool) -> None:
    """Re-make the conflicts' hashes of personal fields from the values still held (the local record's, the
    registry's); clear those of values neither side holds any more."""
    t = Conflict.__table__
    rows = conn.execute(select(t.c.id, t.c.entity, t.c.local_id, t.c.registry_id, t.c.field, t.c.base_value,
                               t.c.local_hash, t.c.remote_hash).where(t.c.field.in_(sorted(SENSITIVE)),
                                                                      t.c.entity.in_(sorted(PERSONAL)))).all()
    by_kind: dict[str, list[Any]] = {}
    for c in rows:
        by_kind.setdefault(c.entity, []).append(c)
    candidates: dict[int, list[Any]] = {}
    for kind, conflicts in by_kind.items():
        names = PERSONAL[kind][1]
        gone = sorted({c.local_id for c in conflicts if (kind, c.local_id) not in held})
        local = {row["id"]: _local_values(kind, row) for row in _local_rows(conn, kind, gone)}
        # the registry's values: those already read for the links, else read now
        want = sorted({c.registry_id for c in conflicts if c.registry_id and any(
            v is None for v in (held.get((kind, c.local_id), {}).get(c.field) or [None, None])[1:])})
        remote = r.remote_values(kind, want)
        for c in conflicts:
            known = held.get((kind, c.local_id)) or {n: [local.get(c.local_id, {}).get(n), None] for n in names}
            lv, rv = known[c.field]
            candidates[c.id] = [lv, rv if rv is not None else remote.get(c.registry_id, {}).get(c.field)]
    for c in rows:
        values: dict[str, Any] = {}
        base = json.loads(c.base_value) if c.base_value else None
        for column, hashed in (("base_value", base), ("local_hash", c.local_hash), ("remote_hash", c.remote_hash)):
            if not (isinstance(hashed, str) and hashed.startswith("h:")):
                continue
            new = r.agreed(c.field, hashed, candidates.get(c.id, []))
            if new is _UNKNOWN:
                r.s.conflicts_cleared += 1
                new = None
            else:
                r.s.conflicts_rehashed += 1
            values[column] = json.dumps(new) if column == "base_value" and new is not None else new
        if values and not dry_run:
            conn.execute(t.update().where(t.c.id == c.id).values(**values))


__all__ = [
    "FINGERPRINT_NAME",
    "PERSONAL",
    "Evidence",
    "HashKeyMismatch",
    "RekeySummary",
    "check_hash_key",
    "fingerprint",
    "key_evidence",
    "rekey_store",
    "stored_fingerprint",
]
