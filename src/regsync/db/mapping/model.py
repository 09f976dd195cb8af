"""The declared mapping of a province's platform tables onto regsync's kinds of record (issue 14).

A mapping is one TOML file (``config/mappings/*.toml``; ``docs/mapping.md`` documents it key by key). For each kind
it names the platform's table, its key, the rows in scope, the soft-delete flag, whether regsync may insert rows,
and, for each synced field of the kind, the column and how to read and write it. The names on the left are always
regsync's **canonical** names: the columns of the reference schema (:mod:`regsync.db.models`), which is itself the
mapping ``config/mappings/reference.toml``.

This module holds the file's shape, validated with pydantic: an error names the file and the key
(``kinds.volunteer.fields.gender.values``). Reading and writing values is :mod:`regsync.db.mapping.codec`; the SQL
of views and triggers is :mod:`regsync.db.mapping.sql`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: How a field's values are typed in the canonical row (what the flows read), by canonical field name.
#: ``code``: a closed set of the registry's words (mapped with ``values``); ``ref``: a reference to another kind.
FieldType = Literal["text", "code", "date", "datetime", "hours", "integer", "list", "ref"]

#: Every canonical field of each kind the mapping may (or must) map, with its type and whether a kind's mapping must
#: give it (a column or a constant). ``id`` is the kind's key and is declared by ``key``, not here.
CANONICAL: dict[str, dict[str, tuple[FieldType, bool]]] = {
    "org": {
        "name": ("text", True), "org_type": ("code", True), "level": ("code", True), "parent_id": ("ref", True),
        "station_id": ("ref", False), "uscc": ("text", False), "region_code": ("text", True),
        "street_code": ("text", False), "service_categories": ("list", True), "contact_name": ("text", False),
        "contact_phone": ("text", False), "established_on": ("date", False), "status": ("code", True),
        "remark": ("text", False), "updated_at": ("datetime", False),
    },
    "volunteer": {
        "name": ("text", True), "id_type": ("code", True), "id_number": ("text", True),
        "id_number_norm": ("text", False), "gender": ("code", False), "birth_date": ("date", False),
        "phone": ("text", False), "region_code": ("text", True), "skills": ("list", True),
        "home_province": ("text", True), "status": ("code", True), "registered_at": ("datetime", True),
        "remark": ("text", False), "updated_at": ("datetime", False),
    },
    "membership": {
        "volunteer_id": ("ref", True), "org_id": ("ref", True), "joined_on": ("date", True),
        "left_on": ("date", False), "updated_at": ("datetime", False),
    },
    "activity": {
        "org_id": ("ref", True), "title": ("text", True), "category": ("code", True), "region_code": ("text", True),
        "starts_at": ("datetime", True), "ends_at": ("datetime", True), "planned_headcount": ("integer", True),
        "status": ("code", True), "updated_at": ("datetime", False),
    },
    "service_record": {
        "volunteer_id": ("ref", True), "activity_id": ("ref", True), "org_id": ("ref", True),
        "service_date": ("date", True), "starts_at": ("datetime", True), "ends_at": ("datetime", True),
        "hours": ("hours", True), "status": ("code", True), "revoke_reason": ("text", False),
        "updated_at": ("datetime", False),
    },
    # v1.1 (registry-api.md §4.6–§4.9)
    "training": {
        "org_id": ("ref", True), "title": ("text", True), "training_type": ("code", True), "mode": ("code", True),
        "region_code": ("text", True), "address": ("text", False), "starts_at": ("datetime", True),
        "ends_at": ("datetime", True), "class_hours": ("hours", True), "contact_name": ("text", False),
        "contact_phone": ("text", False), "status": ("code", True), "updated_at": ("datetime", False),
    },
    "training_record": {
        "training_id": ("ref", True), "volunteer_id": ("ref", True), "completed_on": ("date", True),
        "class_hours": ("hours", True), "result": ("code", True), "status": ("code", True),
        "revoke_reason": ("text", False), "updated_at": ("datetime", False),
    },
    # the subject: a volunteer or an org, each a reference column of its own (one of them set)
    "commendation": {
        "volunteer_id": ("ref", False), "org_id": ("ref", False), "title": ("text", True), "scheme": ("code", False),
        "tier": ("code", False), "year": ("integer", False), "awarded_on": ("date", True), "issuer": ("text", True),
        "document_name": ("text", True), "document_number": ("text", True), "content": ("text", False),
        "status": ("code", True), "revoke_reason": ("text", False), "updated_at": ("datetime", False),
    },
    "evaluation": {
        "activity_id": ("ref", True), "volunteer_id": ("ref", True), "evaluator_org_id": ("ref", True),
        "punctuality": ("integer", True), "attitude": ("integer", True), "competence": ("integer", True),
        "comment": ("text", False), "evaluated_on": ("date", True), "status": ("code", True),
        "revoke_reason": ("text", False), "updated_at": ("datetime", False),
    },
}

#: The kind each reference field refers to (as :data:`regsync.domain.projection.REFERENCES`).
REF_KIND: dict[str, dict[str, str]] = {
    "org": {"parent_id": "org", "station_id": "org"},
    "membership": {"org_id": "org", "volunteer_id": "volunteer"},
    "activity": {"org_id": "org"},
    "service_record": {"volunteer_id": "volunteer", "activity_id": "activity", "org_id": "org"},
    "training": {"org_id": "org"},
    "training_record": {"training_id": "training", "volunteer_id": "volunteer"},
    "commendation": {"volunteer_id": "volunteer", "org_id": "org"},
    "evaluation": {"activity_id": "activity", "volunteer_id": "volunteer", "evaluator_org_id": "org"},
}

#: How a date is stored: a native ``DATE``; text ``YYYY-MM-DD`` or ``YYYYMMDD``; epoch milliseconds of 00:00 +08:00.
DateFormat = Literal["date", "YYYY-MM-DD", "YYYYMMDD", "epoch_ms"]
#: How a time is stored: a native timestamp (naive, in ``tz``); text ``YYYY-MM-DD HH:MM:SS`` (+08:00); epoch ms.
DateTimeFormat = Literal["datetime", "YYYY-MM-DD HH:MM:SS", "epoch_ms"]
#: How hours are stored: whole hundredths (``250`` = 2.50 h), whole minutes (rounded half up to hundredths on
#: the way in), or decimal hours (``2.5``).
HoursUnit = Literal["hundredths", "minutes", "decimal_hours"]

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
TableName = Annotated[str, StringConstraints(pattern=r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$",
                                              max_length=129)]
Scalar = str | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldMap(_Strict):
    """How one canonical field is held on the platform: a ``column`` (read and, unless ``write`` is false, written
    back when the registry's side wins), or a ``const`` (a value every row has; never written).

    Attributes:
        column: the platform's column.
        const: the canonical value when the platform has no column for the field (e.g. ``home_province = "23"``).
        values: platform value (as text) → canonical value, for ``code`` fields (gender ``"1"`` → ``"M"``); a
            value present in the data but not here fails that record alone (``UNMAPPED_VALUE``).
        write_values: canonical → platform value, where ``values`` maps several platform values to one canonical
            one (``"A"`` and ``"1"`` both ``ACTIVE``): the one written. Else ``values`` reversed.
        format: for a ``date`` or ``datetime`` field, how it is stored (:data:`DateFormat`, :data:`DateTimeFormat`).
        tz: for a native ``datetime`` column, the zone its naive values are in: ``UTC`` or ``+08:00``.
        unit: for ``hours``, how they are stored (:data:`HoursUnit`).
        list: for a ``list`` field, ``json`` (a JSON array as text) or a one-character separator (``","``).
        ref_column: for a ``ref`` field, the column of the referred kind's table that this column's values name
            (e.g. an org code); default the referred kind's key.
        write: whether regsync may write this column when the registry's value wins the merge; ``false``: never
            (the registry's value is held as a conflict or a discrepancy instead).
    """

    column: Identifier | None = None
    const: Scalar | None = None
    values: dict[str, str] | None = None
    write_values: dict[str, Scalar] | None = None
    format: str | None = None
    tz: Literal["UTC", "+08:00"] = "UTC"
    unit: HoursUnit | None = None
    list_format: str | None = Field(default=None, alias="list")
    ref_column: Identifier | None = None
    write: bool = True

    @model_validator(mode="after")
    def _column_or_const(self) -> FieldMap:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of column and const")
        if self.list_format is not None and self.list_format != "json" and (
                len(self.list_format) != 1 or self.list_format in '"\\' or ord(self.list_format) < 0x20):
            raise ValueError("list is 'json' or a one-character separator (not a quote, a backslash or a control "
                             "character: items are JSON-escaped for those)")
        if self.write_values is not None and self.values is None:
            raise ValueError("write_values goes with values (the platform values read)")
        return self


class ScopeRule(_Strict):
    """One condition on the rows in scope (all of a kind's rules must hold): ``column`` is among ``in`` and/or
    not among ``not_in`` (values as text), or ``is_null`` (true or false)."""

    column: Identifier
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    is_null: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ScopeRule:
        if self.in_ is None and self.not_in is None and self.is_null is None:
            raise ValueError("a scope rule needs in, not_in or is_null")
        return self


class SoftDelete(_Strict):
    """A soft delete: a row whose ``column`` holds one of ``deleted`` is a deletion (as the physical delete of a
    row is). ``active`` is the value a row regsync inserts gets (when the column is not otherwise defaulted)."""

    column: Identifier
    deleted: list[Scalar]
    active: Scalar | None = None


class KindMap(_Strict):
    """One kind's table on the platform.

    Attributes:
        table: the table, ``schema.table`` where the engine has schemas (PostgreSQL), ``database.table`` on
            MySQL/MariaDB; a bare name on SQLite.
        key: the key column: one column, an integer or a string (an org code, a volunteer number).
        key_type: ``integer`` or ``string``.
        scope: conditions of the rows in scope; a row outside is not synced, and a row that leaves the scope is
            listed for an operator (never a deletion).
        soft_delete: the soft-delete flag, if the platform has one.
        insert: whether regsync may insert rows of the kind (records made in the registry); where it may not,
            they are listed for an operator instead.
        defaults: column → value for the platform's required columns the mapping does not map, on insert.
        new_key: for a string key, the key of a row regsync inserts: a template over ``{registry_id}``.
        fields: canonical field → :class:`FieldMap`.
    """

    table: TableName
    key: Identifier
    key_type: Literal["integer", "string"] = "integer"

    @property
    def mapped(self) -> bool:
        """Whether the platform keeps this kind (false for :data:`UNMAPPED`, an optional kind left out)."""
        return bool(self.table)
    scope: list[ScopeRule] = Field(default_factory=list)
    soft_delete: SoftDelete | None = None
    insert: bool = True
    defaults: dict[Identifier, Scalar | None] = Field(default_factory=dict)
    new_key: str | None = None
    fields: dict[str, FieldMap]

    @model_validator(mode="after")
    def _new_key_template(self) -> KindMap:
        if self.new_key is not None:
            try:
                made = self.new_key.format(registry_id="")
            except (KeyError, IndexError, ValueError):
                made = None
            if made is None or "{registry_id}" not in self.new_key:
                raise ValueError("new_key is a template holding {registry_id} and no other {…}")
        return self


#: Kinds a mapping may leave out (registry-api.md v1.1's, issue 16): a platform that keeps no trainings, commendations
#: or evaluations, or a mapping written before regsync synced them. Such a kind is not synced from the platform
#: (:attr:`KindMap.mapped` is false): its view holds no row and no trigger watches anything, and a registry record of it
#: is not written locally (as where ``insert`` is false).
OPTIONAL_KINDS: frozenset[str] = frozenset({"training", "training_record", "commendation", "evaluation"})


class PlatformMapping(_Strict):
    """A whole mapping: its name, a description, and one :class:`KindMap` per kind (the five of registry-api.md v1
    are required; v1.1's may be left out, :data:`OPTIONAL_KINDS`). Read a kind's map with :meth:`kind`.
    """

    name: Identifier
    description: str = ""
    kinds: dict[Literal["org", "volunteer", "membership", "activity", "service_record", "training",
                        "training_record", "commendation", "evaluation"], KindMap]

    def with_schema(self, schema: str) -> PlatformMapping:
        """This mapping with ``schema.`` before every table it names without one (``database.platform_schema``: a
        PostgreSQL schema, a MySQL/MariaDB database); itself when ``schema`` is empty."""
        if not schema:
            return self
        kinds = {kind: km.model_copy(update={"table": km.table if "." in km.table else f"{schema}.{km.table}"})
                 for kind, km in self.kinds.items()}
        return self.model_copy(update={"kinds": kinds})

    def kind(self, kind: str) -> KindMap:
        """The map of ``kind``: the declared one, or for an optional kind left out, :data:`UNMAPPED` (its
        :attr:`KindMap.mapped` false).

        Raises:
            KeyError: ``kind`` is not a kind regsync knows.
        """
        found = self.kinds.get(kind)  # type: ignore[call-overload]
        if found is not None:
            return found
        if kind in OPTIONAL_KINDS:
            return UNMAPPED
        raise KeyError(kind)

    def mapped_kinds(self) -> list[str]:
        """The kinds this mapping maps, in :data:`CANONICAL`'s order (parents first)."""
        return [k for k in CANONICAL if k in self.kinds]

    @model_validator(mode="after")
    def _fields_fit(self) -> PlatformMapping:
        missing = [k for k in CANONICAL if k not in self.kinds and k not in OPTIONAL_KINDS]
        if missing:
            raise ValueError(f"kinds {', '.join(missing)} are not mapped")
        for kind, km in self.kinds.items():
            canon = CANONICAL[kind]
            for name, fm in km.fields.items():
                if name not in canon:
                    raise ValueError(f"kinds.{kind}.fields.{name}: not a field of {kind} "
                                     f"(one of {', '.join(sorted(canon))})")
                ftype = canon[name][0]
                _check_field(kind, name, ftype, fm, self.kinds)
            for name, (_t, required) in canon.items():
                if required and name not in km.fields:
                    raise ValueError(f"kinds.{kind}.fields.{name}: required (a column or a const)")
            if km.key_type == "string" and km.insert and km.new_key is None:
                raise ValueError(f"kinds.{kind}.new_key: a string key whose rows regsync may insert needs new_key")
        return self


def _check_field(kind: str, name: str, ftype: FieldType, fm: FieldMap, kinds: dict[Any, KindMap]) -> None:
    where = f"kinds.{kind}.fields.{name}"
    if fm.values is not None and ftype != "code":
        raise ValueError(f"{where}.values: only code fields have value maps")
    if fm.values is not None:
        reverse: dict[str, list[str]] = {}
        for platform, canonical in fm.values.items():
            reverse.setdefault(canonical, []).append(platform)
        ambiguous = sorted(c for c, ps in reverse.items() if len(ps) > 1 and c not in (fm.write_values or {}))
        if ambiguous and fm.write:
            raise ValueError(f"{where}.write_values: {', '.join(ambiguous)} map from several platform values; "
                             "say which one is written")
    if fm.format is not None:
        allowed = {"date": DateFormat.__args__, "datetime": DateTimeFormat.__args__}.get(ftype)  # type: ignore[attr-defined]
        if allowed is None or fm.format not in allowed:
            raise ValueError(f"{where}.format: {fm.format!r} is not a format of a {ftype} field"
                             + (f" (one of {', '.join(allowed)})" if allowed else ""))
    if fm.tz != "UTC" and (ftype != "datetime" or fm.format not in (None, "datetime")):
        raise ValueError(f"{where}.tz: only a native datetime column has a zone (text and epoch_ms are fixed)")
    if fm.unit is not None and ftype != "hours":
        raise ValueError(f"{where}.unit: only hours have a unit")
    if fm.list_format is not None and ftype != "list":
        raise ValueError(f"{where}.list: only list fields have a list format")
    if fm.ref_column is not None and ftype != "ref":
        raise ValueError(f"{where}.ref_column: only references name a column of another kind")
    if ftype == "ref" and fm.const is not None:
        raise ValueError(f"{where}: a reference cannot be a constant")


#: The map of an optional kind a mapping leaves out (:data:`OPTIONAL_KINDS`): no table, nothing inserted.
UNMAPPED: KindMap = KindMap.model_construct(table="", key="id", key_type="integer", insert=False, fields={})
