"""Writing into a mapped platform's own tables (issue 14): the registry's changes in the platform's columns and
formats, through the installed mapping (:func:`regsync.db.mapping.install.installed`).

Reads need nothing here: the views the mapping installed show the platform's rows under the reference tables' names
and columns (:mod:`regsync.db.mapping.ddl`). Writes go to the platform's table itself, by its key:

* a field is written only where the mapping gives it a column regsync may write (``write = true``, not a ``const``);
  the merge never lets the registry's value win a field the mapping forbids (:func:`read_only_fields`, held as a
  conflict instead);
* values are encoded as the platform stores them (:mod:`regsync.db.mapping.codec`): codes, date and time formats,
  hour units, list formats; a reference as the referred row's key or code;
* a row is inserted only for a kind the mapping lets regsync insert (:class:`InsertNotAllowed` otherwise), with the
  mapping's ``defaults`` and, for a string key, ``new_key`` over the registry id;
* the normalized ID number goes to regsync's ``person_norm`` unless the mapping maps a column for it.

The caller holds :func:`regsync.db.session.suppress_outbox`, as for the reference tables; the triggers still give a
new string key its ``platform_key`` row, whose local id :func:`insert_rows` returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, text

from regsync.db.mapping.codec import Codec
from regsync.db.mapping.ddl import Place, placed
from regsync.db.mapping.install import INSTALLED, Installed, installed
from regsync.db.mapping.model import REF_KIND, KindMap, PlatformMapping
from regsync.db.models import StoreMeta
from regsync.db.query import CHUNK, chunks
from regsync.db.session import utcnow

#: Canonical columns the writers set that are regsync's own, not the platform's: kept beside (``id_number_norm``)
#: or left to the platform (``updated_at``, which the platform maintains itself when it keeps one).
_OWN = frozenset({"id_number_norm", "updated_at"})

_CACHE: dict[str, tuple[str, MappedPlatform]] = {}

#: Values bound per multi-row ``INSERT`` of a mapped platform's rows (SQLite allows 32,766; PostgreSQL and MySQL
#: 65,535).
_INSERT_PARAMS = 30_000

#: Canonical times a row regsync inserts gets from the clock when the registry's record has none (naive UTC).
_STAMPED: dict[str, tuple[str, ...]] = {"volunteer": ("registered_at",)}


class InsertNotAllowed(Exception):
    """The mapping does not let regsync insert rows of this kind (``insert = false``): the registry's record is
    listed for an operator instead of being created on the platform."""

    def __init__(self, kind: str, mapping: str) -> None:
        self.kind = kind
        super().__init__(f"mapping {mapping} does not let regsync insert {kind} rows (insert = false)")


class MappedPlatform:
    """The installed mapping of one store, with its codec, for the writers.

    Attributes:
        mapping: the installed mapping, its tables qualified (:func:`regsync.db.mapping.ddl.placed`).
        place: where its objects are.
        codec: its value codec.
    """

    def __init__(self, inst: Installed, codec: Codec) -> None:
        self.mapping: PlatformMapping = placed(inst.mapping, inst.place)
        self.place: Place = inst.place
        self.codec = codec
        self._read_only: dict[str, frozenset[str]] = {}

    def read_only(self, kind: str) -> frozenset[str]:
        """The synced fields of ``kind`` regsync must never write (``write = false``, or held in a ``const``)."""
        found = self._read_only.get(kind)
        if found is None:
            found = self._read_only[kind] = frozenset(
                name for name, fm in self.kind(kind).fields.items() if not fm.write or fm.column is None)
        return found

    def kind(self, kind: str) -> KindMap:
        """The kind's table mapping."""
        return self.mapping.kind(kind)

    def table(self, kind: str) -> str:
        """The kind's platform table, quoted and qualified."""
        return ".".join(self.place.quote(p) for p in self.kind(kind).table.split("."))

    def q(self, name: str) -> str:
        """An identifier quoted."""
        return self.place.quote(name)

    # ------------------------------------------------------------------------------------------ keys
    def platform_keys(self, conn: Connection, kind: str, local_ids: Sequence[int]) -> dict[int, Any]:
        """Local id → the platform's key value, for ``local_ids`` of ``kind`` (string keys through ``platform_key``)."""
        if self.kind(kind).key_type != "string":
            return {int(i): int(i) for i in local_ids}
        kt = self.place.own_name("platform_key")
        out: dict[int, Any] = {}
        for chunk in chunks(sorted(set(local_ids)), CHUNK):
            rows = conn.execute(text(f"SELECT local_id, key_value FROM {kt} WHERE entity = :e "  # noqa: S608
                                     "AND local_id IN :ids").bindparams(bindparam("ids", expanding=True)),
                                {"e": kind, "ids": list(chunk)})
            out.update({int(lid): key for lid, key in rows})
        return out

    def ref_values(self, conn: Connection, kind: str, field: str, local_ids: Sequence[int]) -> dict[int, Any]:
        """Local id of the referred record → the value the platform's column ``field`` of ``kind`` holds for it:
        the referred row's ``ref_column`` (an org code…) or its key."""
        target = REF_KIND[kind][field]
        fm = self.kind(kind).fields[field]
        keys = self.platform_keys(conn, target, local_ids)
        tk = self.kind(target)
        if fm.ref_column is None or fm.ref_column == tk.key:
            return keys
        out: dict[int, Any] = {}
        by_key = {v: k for k, v in keys.items()}
        for chunk in chunks(sorted(by_key), CHUNK):
            rows = conn.execute(text(
                f"SELECT {self.q(tk.key)}, {self.q(fm.ref_column)} FROM {self.table(target)} "  # noqa: S608
                f"WHERE {self.q(tk.key)} IN :keys").bindparams(bindparam("keys", expanding=True)), {"keys": chunk})
            out.update({by_key[key]: value for key, value in rows})
        return out

    # ------------------------------------------------------------------------------------------ values
    def encode_rows(self, conn: Connection, kind: str, rows: Sequence[dict[str, Any]], *,
                    new: bool = False) -> list[dict[str, Any]]:
        """Canonical rows (field → value) as platform columns (column → value), the columns regsync may write only
        (``new``: rows regsync inserts, whose every mapped column it fills, ``write = false`` ones included: the
        rule is about writing the registry's value over the platform's); references looked up."""
        km = self.kind(kind)
        refs: dict[str, dict[int, Any]] = {}
        for field in REF_KIND.get(kind, {}):
            ids = [r[field] for r in rows if r.get(field) is not None]
            if field in km.fields and km.fields[field].column and ids:
                refs[field] = self.ref_values(conn, kind, field, ids)
        out = []
        for r in rows:
            enc: dict[str, Any] = {}
            for field, value in r.items():
                fm = km.fields.get(field)
                if field in _OWN and (fm is None or field == "updated_at"):
                    continue
                if fm is None or fm.column is None or (not fm.write and not new) or field == "id":
                    continue
                if field in REF_KIND.get(kind, {}):
                    enc[fm.column] = None if value is None else refs[field][int(value)]
                else:
                    enc[fm.column] = self.codec.encode(kind, field, value)
            out.append(enc)
        return out

    def update_rows(self, conn: Connection, kind: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        """Write ``columns`` (canonical) of ``rows`` (``{"id": local id, …}``) into the platform's table."""
        km = self.kind(kind)
        keys = self.platform_keys(conn, kind, [r["id"] for r in rows])
        encoded = self.encode_rows(conn, kind, [{c: r[c] for c in columns if c in r} for r in rows])
        if kind == "volunteer" and "id_number_norm" in columns:
            self.set_norms(conn, [{"vid": r["id"], "norm": r.get("id_number_norm")} for r in rows])
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r, enc in zip(rows, encoded, strict=True):
            if enc:
                by_shape.setdefault(tuple(sorted(enc)), []).append({**{f"c_{c}": v for c, v in enc.items()},
                                                                   "k_key": keys[int(r["id"])]})
        for shape, params in by_shape.items():
            sets = ", ".join(f"{self.q(c)} = :c_{c}" for c in shape)
            conn.execute(text(f"UPDATE {self.table(kind)} SET {sets} WHERE {self.q(km.key)} = :k_key"),  # noqa: S608
                         params)

    def local_ids_of_keys(self, conn: Connection, kind: str, keys: Sequence[Any]) -> dict[str, int]:
        """The platform key (as text) → local id, for the string ``keys`` of ``kind`` that ``platform_key`` holds
        (one ``IN`` query per :data:`~regsync.db.query.CHUNK` keys)."""
        kt = self.place.own_name("platform_key")
        out: dict[str, int] = {}
        for chunk in chunks(sorted({str(k) for k in keys}), CHUNK):
            rows = conn.execute(text(f"SELECT key_value, local_id FROM {kt} WHERE entity = :e "  # noqa: S608
                                     "AND key_value IN :keys").bindparams(bindparam("keys", expanding=True)),
                                {"e": kind, "keys": list(chunk)})
            out.update({str(key): int(lid) for key, lid in rows})
        return out

    def insert_rows(self, conn: Connection, kind: str, rows: Sequence[dict[str, Any]],
                    registry_ids: Sequence[str | None]) -> list[int]:
        """Insert records made in the registry as platform rows; returns their local ids in order.

        Rows of the same columns go in one statement per :data:`_INSERT_PARAMS` bound values (:meth:`_insert`):
        not a round trip per row. The mapping's ``defaults``, the soft-delete flag's active value and the first
        value of each ``in`` scope rule fill what the row does not say; a string key is ``new_key`` over the
        registry id (a hash of the row without one). Volunteers' normalized ID numbers are kept after
        (:meth:`set_norms`, one batch).

        Args:
            conn: a connection in a transaction, holding :func:`~regsync.db.session.suppress_outbox`.
            kind: the record kind.
            rows: canonical rows (field → value; references as local ids, lists as JSON text).
            registry_ids: the registry record's id of each row (``None``: none).

        Raises:
            InsertNotAllowed: the mapping does not let regsync insert rows of ``kind``.
        """
        km = self.kind(kind)
        if not km.insert:
            raise InsertNotAllowed(kind, self.mapping.name)
        now = utcnow()
        # a canonical time the registry does not send (a volunteer's registration): when regsync made the row
        stamped = [{**r, **{f: now for f in _STAMPED.get(kind, ()) if r.get(f) is None}} for r in rows]
        encoded = self.encode_rows(conn, kind, stamped, new=True)
        made: list[dict[str, Any]] = []
        for r, enc, registry_id in zip(rows, encoded, registry_ids, strict=True):
            values = {**{c: v for c, v in km.defaults.items()}, **enc}
            if km.soft_delete is not None and km.soft_delete.active is not None:
                values.setdefault(km.soft_delete.column, km.soft_delete.active)
            for rule in km.scope:  # in scope, or regsync would not see the row it made
                if rule.in_:
                    values.setdefault(rule.column, rule.in_[0])
            if km.key_type == "string":
                assert km.new_key is not None  # the model requires it for a string key regsync may insert
                values[km.key] = km.new_key.format(registry_id=registry_id or _anonymous(r))
            made.append(values)
        by_shape: dict[tuple[str, ...], list[int]] = {}
        for i, values in enumerate(made):
            by_shape.setdefault(tuple(values), []).append(i)
        out = [0] * len(made)
        for cols, at in by_shape.items():
            for i, local_id in zip(at, self._insert(conn, kind, cols, [made[i] for i in at]), strict=True):
                out[i] = local_id
        if kind == "volunteer":
            self.set_norms(conn, [{"vid": out[i], "norm": r["id_number_norm"]} for i, r in enumerate(rows)
                                  if "id_number_norm" in r])
        return out

    def _insert(self, conn: Connection, kind: str, cols: tuple[str, ...], rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (platform column → value, the columns ``cols`` each) into ``kind``'s table; their local
        ids in order.

        * A string key is the row's own: one ``executemany``, then the local ids the triggers gave the keys in
          ``platform_key``, one ``IN`` query (:meth:`local_ids_of_keys`).
        * An integer key is the platform's autoincrement: a multi-row ``INSERT … RETURNING`` of the keys, which
          are handed out in the rows' order within the statement (ascending), whatever order ``RETURNING`` lists
          them in (SQLite, PostgreSQL, MariaDB ≥ 10.5). MySQL 8 has no ``RETURNING``, and the last insert id of a
          multi-row insert is only its first row's, the others not consecutive under ``innodb_autoinc_lock_mode =
          2`` (its default) while another writer inserts: one insert per row there, each row's id the driver's.
        """
        km = self.kind(kind)
        head = f"INSERT INTO {self.table(kind)} ({', '.join(self.q(c) for c in cols)}) VALUES "  # noqa: S608
        one = "(" + ", ".join(f":v{j}" for j in range(len(cols))) + ")"
        params = [{f"v{j}": row[c] for j, c in enumerate(cols)} for row in rows]
        if km.key_type == "string":
            conn.execute(text(head + one), params)
            local = self.local_ids_of_keys(conn, kind, [row[km.key] for row in rows])
            return [local[str(row[km.key])] for row in rows]
        if not conn.dialect.insert_returning:
            return [int(conn.execute(text(head + one), p).lastrowid) for p in params]
        out: list[int] = []
        for chunk in chunks(rows, max(1, _INSERT_PARAMS // len(cols))):
            values = ", ".join("(" + ", ".join(f":v{i}_{j}" for j in range(len(cols))) + ")" for i in range(len(chunk)))
            bound = {f"v{i}_{j}": row[c] for i, row in enumerate(chunk) for j, c in enumerate(cols)}
            keys = conn.execute(text(f"{head}{values} RETURNING {self.q(km.key)}"), bound).scalars()
            out += sorted(int(k) for k in keys)
        return out

    def set_norms(self, conn: Connection, fixes: Sequence[dict[str, Any]]) -> None:
        """Keep volunteers' normalized ID numbers (``{"vid": local id, "norm": …}``): in the mapped column when the
        mapping has one, else in ``person_norm``."""
        if not fixes:
            return
        fm = self.kind("volunteer").fields.get("id_number_norm")
        if fm is not None and fm.column is not None:
            keys = self.platform_keys(conn, "volunteer", [f["vid"] for f in fixes])
            conn.execute(text(f"UPDATE {self.table('volunteer')} SET {self.q(fm.column)} = :norm "  # noqa: S608
                              f"WHERE {self.q(self.kind('volunteer').key)} = :key"),
                         [{"norm": f["norm"], "key": keys[int(f["vid"])]} for f in fixes])
            return
        pn = self.place.own_name("person_norm")
        ids = [int(f["vid"]) for f in fixes]
        for chunk in chunks(ids, CHUNK):
            conn.execute(text(f"DELETE FROM {pn} WHERE local_id IN :ids").bindparams(  # noqa: S608
                bindparam("ids", expanding=True)), {"ids": list(chunk)})
        conn.execute(text(f"INSERT INTO {pn} (local_id, id_number_norm) VALUES (:vid, :norm)"),  # noqa: S608
                     [{"vid": int(f["vid"]), "norm": f["norm"]} for f in fixes])


def _anonymous(row: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:16]


def mapped_platform(conn: Connection) -> MappedPlatform | None:
    """The installed mapping of ``conn``'s store, or ``None`` for the reference tables: one read of ``store_meta``
    per call, the mapping itself parsed once per installation (a changed record, after ``regsync platform
    install``, is parsed again). A run resolves it once, at its start, and passes it down (the flows' writer holds
    it: :class:`regsync.flows.apply.LocalWriter`); per record it would be a statement per record."""
    t = StoreMeta.__table__
    raw = conn.execute(t.select().with_only_columns(t.c.value).where(t.c.name == INSTALLED)).scalar_one_or_none()
    if raw is None:
        return None
    url = conn.engine.url.render_as_string(hide_password=True)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    hit = _CACHE.get(url)
    if hit is None or hit[0] != digest:
        inst = installed(conn)
        if inst is None:
            return None
        hit = _CACHE[url] = (digest, MappedPlatform(inst, Codec(inst.mapping)))
    return hit[1]


def local_id_of(conn: Connection, kind: str, ident: str) -> int | None:
    """The local id an operator names by ``ident``: the platform's key (an org code, where the mapping keys the kind by
    a string; the local id's own digits otherwise). ``None`` when no record of the kind has that key."""
    mp = mapped_platform(conn)
    if mp is None or mp.kind(kind).key_type != "string":
        return int(ident) if ident.strip().isdigit() else None
    kt = mp.place.own_name("platform_key")
    found = conn.execute(text(f"SELECT local_id FROM {kt} WHERE entity = :e AND key_value = :k"),  # noqa: S608
                         {"e": kind, "k": ident.strip()}).scalar_one_or_none()
    return None if found is None else int(found)


def platform_key_of(conn: Connection, kind: str, local_id: int) -> str | None:
    """The platform's key of the record of ``kind`` with local id ``local_id``, as an operator names it (the inverse
    of :func:`local_id_of`): its string key (an org code) where the mapping keys the kind by a string, the local
    id's digits otherwise; ``None`` when no string key has that local id."""
    mp = mapped_platform(conn)
    if mp is None or mp.kind(kind).key_type != "string":
        return str(local_id)
    found = mp.platform_keys(conn, kind, [local_id]).get(local_id)
    return None if found is None else str(found)


def platform_insertable(mp: MappedPlatform | None, kind: str) -> bool:
    """Whether regsync may insert rows of ``kind`` on the platform ``mp`` (:func:`mapped_platform`; always, for the
    reference tables: ``None``)."""
    return mp is None or mp.kind(kind).insert


def platform_read_only(mp: MappedPlatform | None, kind: str) -> frozenset[str]:
    """The synced fields of ``kind`` regsync must never write on the platform ``mp`` (:func:`mapped_platform`):
    ``write = false``, or held in a ``const``; empty for the reference tables (``None``)."""
    return frozenset() if mp is None else mp.read_only(kind)


def insertable(conn: Connection, kind: str) -> bool:
    """Whether regsync may insert rows of ``kind`` on this store's platform (always, for the reference tables).
    Reads ``store_meta``: for one-off callers; a run resolves the platform once (:class:`regsync.flows.apply.
    LocalWriter`'s ``platform``) and asks :func:`platform_insertable`."""
    return platform_insertable(mapped_platform(conn), kind)


def read_only_fields(conn: Connection, kind: str) -> frozenset[str]:
    """The synced fields of ``kind`` regsync must never write on this store's platform (``write = false``, or
    held in a ``const``): empty for the reference tables. Reads ``store_meta``: for one-off callers, as
    :func:`insertable`; a run asks :func:`platform_read_only`."""
    return platform_read_only(mapped_platform(conn), kind)


__all__ = ["InsertNotAllowed", "MappedPlatform", "insertable", "local_id_of", "mapped_platform",
           "platform_insertable", "platform_key_of", "platform_read_only", "read_only_fields"]
