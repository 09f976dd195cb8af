"""The generator's writes into a mapped platform's own tables (issue 14, item 5: "the generator writes through a
mapping").

:mod:`regsync.generate.generator` makes the province as canonical rows (the reference tables' columns and values);
:class:`MappedWriter` writes them into the tables a mapping names, as the platform's own programs would:

* **values** encoded by the mapping's codec (:func:`regsync.db.mapping.codec.encode_value`): codes, text dates,
  epoch milliseconds, minutes, separated lists; a field the mapping does not map is left out, a ``const`` is never
  written;
* **keys made by the generator**: an integer key is the record's local id itself, the next free one of the table;
  a string key is a prefix of the kind and the local id zero-padded (``ZZ0000000001`` for an org,
  ``HD0000000131`` for an activity: :data:`KEY_PREFIX`), with its ``platform_key`` row (local id ↔ key) written by
  the generator in the same transaction, before the row, so that ``generator_dirt.local_id``, the outbox rows the
  installed triggers queue and the links all name the same record (the triggers' own ``platform_key`` insert then
  finds the row there and does nothing);
* **references** as the platform holds them: the referred record's key (an org code, an activity number), or
  another of its columns (``ref_column``), looked up in the referred table;
* **the platform's required columns** the mapping does not map: the mapping's ``defaults``, or what the platform's
  own programs write there where the generator knows the platform (:data:`regsync.generate.legacy_schema.OWN_VALUES`);
  the scope's columns an in-scope value and the soft-delete flag its ``active`` value;
* **rows outside what syncs**, beside the province: a few copies of generated rows marked as test rows (out of the
  mapping's scope) and a few soft-deleted (:data:`EXTRA_RATE` of each kind's rows, and the first row of each kind),
  counted apart (:attr:`out_of_scope`, :attr:`soft_deleted`): the views and the triggers leave them out, so they
  are not among the records that must add up;
* the volunteers' normalized ID numbers in regsync's ``person_norm`` where the mapping has no column for them.

Rows go in with ``executemany`` in the generator's batches (nothing held beyond a batch). Keys taken by the
generator move PostgreSQL's sequences on :meth:`MappedWriter.finish`, so that later inserts (the platform's, or
regsync's own for a record made in the registry) do not take them again; SQLite and MySQL/MariaDB move theirs on
an explicit key by themselves.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, func, insert, select, text

from regsync.db.mapping.codec import encode_value
from regsync.db.mapping.model import CANONICAL, REF_KIND, KindMap, PlatformMapping
from regsync.db.models import PersonNorm, PlatformKey
from regsync.db.query import CHUNK, chunks
from regsync.domain.kinds import V11_KINDS
from regsync.generate.legacy_schema import OWN_VALUES

#: The prefix of a string key the generator makes, by kind: the key is the prefix and the local id, zero-padded to
#: :data:`KEY_DIGITS` digits (an org code ``ZZ0000000001``, an activity number ``HD0000000131``).
KEY_PREFIX: dict[str, str] = {"org": "ZZ", "volunteer": "ZYZ", "membership": "CY", "activity": "HD",
                              "service_record": "JL", "training": "PX", "training_record": "PXJL",
                              "commendation": "JX", "evaluation": "PJ"}
KEY_DIGITS = 10

#: The share of each kind's rows copied once as a test row (out of scope) and once as a soft-deleted row, where the
#: mapping has a scope or a soft delete for the kind (the first row of each kind is always copied).
EXTRA_RATE = 0.002

#: The text put before a test row's name or title.
TEST_MARK = "测试"

_TITLE = {"org": "name", "volunteer": "name", "activity": "title", "training": "title", "commendation": "title"}
_PK = PlatformKey.__table__
_NORM = PersonNorm.__table__


def platform_key(kind: str, local_id: int) -> str:
    """The string key the generator gives the record ``local_id`` of ``kind`` (:data:`KEY_PREFIX`)."""
    return f"{KEY_PREFIX[kind]}{local_id:0{KEY_DIGITS}d}"


@dataclass
class _Plan:
    """How one kind's canonical rows become rows of its platform table."""

    kind: str
    km: KindMap
    table: Table
    key: Column[Any]
    encoders: list[tuple[str, str, Callable[[Any], Any]]] = field(default_factory=list)
    refs: list[tuple[str, str]] = field(default_factory=list)  # (field, column)
    fixed: dict[str, Any] = field(default_factory=dict)  # columns every generated row gets
    test_values: dict[str, Any] | None = None  # columns that put a row out of scope (None: no test rows)
    deleted_values: dict[str, Any] | None = None  # the soft-delete flag set (None: no soft delete)
    norm_beside: bool = False  # id_number_norm kept in person_norm
    next_id: int = 1  # integer keys: the next local id


class MappingNotWritable(ValueError):
    """The generator cannot write through this mapping: a required column it cannot fill, a scope it cannot
    satisfy, or a canonical value the mapping cannot hold (each named)."""


class MappedWriter:
    """Writes the generator's canonical rows into the tables of ``mapping``.

    Args:
        conn: a connection to the store (the platform's tables exist; regsync's tables are migrated); used to read
            the tables' shapes and the keys already taken.
        mapping: the platform's mapping, its tables qualified where they are not in the connection's default
            schema (:meth:`~regsync.db.mapping.model.PlatformMapping.with_schema`).
        seed: the generation's seed (the choice of the rows copied as test or deleted rows follows it).

    Raises:
        MappingNotWritable: a required column of a table is neither mapped, nor defaulted, nor known to the
            generator; a scope rule has no value the generator can write for a row in scope.
    """

    def __init__(self, conn: Connection, mapping: PlatformMapping, seed: int) -> None:
        self.mapping = mapping
        self.rng = random.Random(f"regsync-generate:{seed}:platform-extras")
        # v1.1's kinds draw their copies on streams of their own: the five kinds of v1 keep the copies they had
        self.rngs = {kind: random.Random(f"regsync-generate:{seed}:platform-extras:{kind}") for kind in V11_KINDS}
        self.out_of_scope: dict[str, int] = {}
        self.soft_deleted: dict[str, int] = {}
        # a platform may keep none of v1.1's kinds (a mapping that leaves them out): nothing is written of those
        self.plans: dict[str, _Plan] = {kind: self._plan(conn, kind) for kind in CANONICAL if kind in mapping.kinds}
        self.next_key = int(conn.execute(select(func.coalesce(func.max(_PK.c.local_id), 0))).scalar_one()) + 1
        self.copied: set[tuple[str, bool]] = set()

    # ------------------------------------------------------------------------------------------ the plan
    def _plan(self, conn: Connection, kind: str) -> _Plan:
        km: KindMap = self.mapping.kinds[kind]  # type: ignore[index]
        schema, _, name = km.table.rpartition(".")
        table = Table(name, MetaData(), schema=schema or None, autoload_with=conn)
        plan = _Plan(kind, km, table, table.c[km.key])
        for fname, fm in km.fields.items():
            if fm.column is None:
                continue
            ftype = CANONICAL[kind][fname][0]
            if ftype == "ref":
                plan.refs.append((fname, fm.column))
            else:
                plan.encoders.append((fname, fm.column, _encoder(fm, ftype, fname)))
        plan.norm_beside = kind == "volunteer" and "id_number_norm" not in km.fields
        mapped = {fm.column for fm in km.fields.values() if fm.column is not None}
        own = OWN_VALUES.get(name, {})
        plan.fixed.update({c: v for c, v in km.defaults.items() if c not in mapped})
        plan.fixed.update({c: v for c, v in own.items() if c in table.c and c not in mapped})
        self._scope(plan)
        if km.soft_delete is not None:
            if km.soft_delete.active is not None:
                plan.fixed[km.soft_delete.column] = km.soft_delete.active
            plan.deleted_values = {km.soft_delete.column: km.soft_delete.deleted[0]}
        plan.fixed = {c: _coerce(table.c[c], v) for c, v in plan.fixed.items()}
        for values in (plan.test_values, plan.deleted_values):
            if values is not None:
                values.update({c: _coerce(table.c[c], v) for c, v in values.items()})
        filled = mapped | set(plan.fixed) | {km.key}
        missing = [c.name for c in table.c if not c.nullable and c.server_default is None
                   and c.name not in filled and not (c.primary_key and c.autoincrement is True)]
        if missing:
            raise MappingNotWritable(f"kinds.{kind}: the generator cannot fill the required column(s) "
                                     f"{', '.join(missing)} of {km.table}: map them, or give them in defaults")
        if km.key_type == "integer":
            plan.next_id = int(conn.execute(select(func.coalesce(func.max(plan.key), 0))).scalar_one()) + 1
        return plan

    def _scope(self, plan: _Plan) -> None:
        """The in-scope values every row gets, and the values of a test row (the first rule a row can fail)."""
        for rule in plan.km.scope:
            col = plan.table.c[rule.column]
            if rule.in_:
                plan.fixed[rule.column] = rule.in_[0]
            elif rule.is_null is True:
                plan.fixed[rule.column] = None
            elif col.server_default is None and (rule.is_null is False or not col.nullable):
                # neither NULL nor the column's default: no value the generator knows is in scope
                raise MappingNotWritable(f"kinds.{plan.kind}.scope: no value the generator can write puts a row "
                                         f"of {plan.km.table} in scope ({rule.column})")
            if plan.test_values is None:
                if rule.not_in:
                    plan.test_values = {rule.column: rule.not_in[0]}
                elif rule.is_null is False and col.nullable:
                    plan.test_values = {rule.column: None}

    # ------------------------------------------------------------------------------------------ keys
    def _take(self, conn: Connection, plan: _Plan, n: int) -> list[int]:
        """``n`` new local ids of ``plan``'s kind (with their ``platform_key`` rows for a string key)."""
        if plan.km.key_type == "integer":
            ids = list(range(plan.next_id, plan.next_id + n))
            plan.next_id += n
            return ids
        ids = list(range(self.next_key, self.next_key + n))
        self.next_key += n
        if ids:
            conn.execute(insert(_PK), [{"local_id": i, "entity": plan.kind, "key_value": platform_key(plan.kind, i)}
                                       for i in ids])
        return ids

    def _key(self, plan: _Plan, local_id: int) -> Any:
        return platform_key(plan.kind, local_id) if plan.km.key_type == "string" else local_id

    def _ref_values(self, conn: Connection, kind: str, fname: str, ids: set[int]) -> dict[int, Any]:
        """Local id of each referred record → the value ``fname``'s column holds for it."""
        target = self.plans[REF_KIND[kind][fname]]
        fm = self.plans[kind].km.fields[fname]
        if fm.ref_column is None or fm.ref_column == target.km.key:
            return {i: self._key(target, i) for i in ids}
        by_key = {self._key(target, i): i for i in ids}
        out: dict[int, Any] = {}
        col = target.table.c[fm.ref_column]
        for part in chunks(sorted(by_key), CHUNK):
            for key, value in conn.execute(select(target.key, col).where(target.key.in_(list(part)))):
                out[by_key[key]] = value
        return out

    # ------------------------------------------------------------------------------------------ rows
    def insert(self, conn: Connection, kind: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Write ``rows`` (canonical: field → value, references as local ids) of ``kind``; returns their local ids,
        in order. A few copies go in beside them as test and soft-deleted rows (module docstring).

        Raises:
            MappingNotWritable: a value the mapping cannot hold (a code it has no platform value for, a list item
                holding its separator), naming the field.
        """
        if not rows:
            return []
        plan = self.plans[kind]
        ids = self._take(conn, plan, len(rows))
        refs = {fname: self._ref_values(conn, kind, fname, {r[fname] for r in rows if r.get(fname) is not None})
                for fname, _c in plan.refs}
        out = [self._row(plan, r, lid, refs) for r, lid in zip(rows, ids, strict=True)]
        conn.execute(insert(plan.table), out)
        if plan.norm_beside:
            conn.execute(insert(_NORM), [{"local_id": lid, "id_number_norm": r.get("id_number_norm")}
                                         for r, lid in zip(rows, ids, strict=True)])
        self._extras(conn, plan, rows, refs)
        return ids

    def _row(self, plan: _Plan, r: Mapping[str, Any], local_id: int, refs: dict[str, dict[int, Any]]
             ) -> dict[str, Any]:
        row = dict(plan.fixed)
        row[plan.key.name] = self._key(plan, local_id)
        for fname, column, enc in plan.encoders:
            if fname in r:
                row[column] = enc(r[fname])
        for fname, column in plan.refs:
            value = r.get(fname)
            row[column] = None if value is None else refs[fname][value]
        return row

    def _extras(self, conn: Connection, plan: _Plan, rows: Sequence[Mapping[str, Any]],
                refs: dict[str, dict[int, Any]]) -> None:
        """Copies of a few of ``rows`` as test rows and soft-deleted rows (:data:`EXTRA_RATE`)."""
        for marks, counter, named in ((plan.test_values, self.out_of_scope, True),
                                      (plan.deleted_values, self.soft_deleted, False)):
            if marks is None:
                continue
            first = (plan.kind, named) not in self.copied
            self.copied.add((plan.kind, named))
            rng = self.rngs.get(plan.kind, self.rng)
            picked = [r for i, r in enumerate(rows) if (first and i == 0) or rng.random() < EXTRA_RATE]
            if not picked:
                continue
            ids = self._take(conn, plan, len(picked))
            title = _TITLE.get(plan.kind)
            out = []
            for r, lid in zip(picked, ids, strict=True):
                if named and title is not None and r.get(title):
                    r = {**r, title: TEST_MARK + str(r[title])}
                out.append({**self._row(plan, r, lid, refs), **marks})
            conn.execute(insert(plan.table), out)
            counter[plan.kind] = counter.get(plan.kind, 0) + len(out)

    # ------------------------------------------------------------------------------------------ the end
    def finish(self, engine: Engine) -> None:
        """Move PostgreSQL's sequences of the keys the generator took (the platform's integer keys, regsync's
        ``platform_key``) past them; nothing to do on SQLite and MySQL/MariaDB."""
        if engine.dialect.name != "postgresql":
            return
        tables: list[tuple[Table, Column[Any]]] = [(_PK, _PK.c.local_id)]
        tables += [(p.table, p.key) for p in self.plans.values() if p.km.key_type == "integer"]
        with engine.begin() as conn:
            for table, key in tables:
                name = f"{table.schema}.{table.name}" if table.schema else table.name
                seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": key.name}
                                   ).scalar_one_or_none()
                if seq is not None:
                    conn.execute(text("SELECT setval(:s, GREATEST((SELECT MAX(x) FROM (SELECT "  # noqa: S608
                                      f"{key.name} AS x FROM {_qualified(conn, table)}) m), 1))"), {"s": seq})


def _qualified(conn: Connection, table: Table) -> str:
    q = conn.dialect.identifier_preparer.quote
    return f"{q(table.schema)}.{q(table.name)}" if table.schema else q(table.name)


def _encoder(fm: Any, ftype: Any, fname: str) -> Callable[[Any], Any]:
    def enc(value: Any) -> Any:
        try:
            return encode_value(fm, ftype, value, field=fname)
        except ValueError as exc:  # UnmappedValue is one too
            raise MappingNotWritable(f"{fname}: {exc}") from exc
    return enc


def _coerce(column: Column[Any], value: Any) -> Any:
    """A mapping's scalar (text or an integer) as the column's Python type (``"0"`` for an integer column → 0)."""
    if value is None:
        return None
    if isinstance(column.type, Integer):
        return int(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


__all__ = ["EXTRA_RATE", "KEY_DIGITS", "KEY_PREFIX", "TEST_MARK", "MappedWriter", "MappingNotWritable",
           "platform_key"]
