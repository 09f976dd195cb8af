"""A mapping's values both ways, in Python: platform values → canonical values and back (issue 14).

**Canonical** values are what the flows read from the reference tables (:mod:`regsync.db.models`):

========== ====================================================================================================
type       canonical value
========== ====================================================================================================
text       ``str``, as stored
code       ``str`` in the registry's words (gender ``M``/``F``, status ``ACTIVE``…, levels of registry-api.md
           §4.1, id types of §4.2, categories of §6), or the marker of an unmapped platform value
           (:func:`regsync.domain.unmapped.unmapped_marker`)
date       ``datetime.date``: a calendar date in Asia/Shanghai
datetime   naive ``datetime.datetime`` **in UTC**
hours      ``int`` hundredths of an hour (``250`` = 2.50 h)
integer    ``int``
list       JSON array text (``'["a","b"]'``); an absent list is ``'[]'``
ref        the referred record's local id (``int``)
========== ====================================================================================================

``None`` stays ``None`` both ways (a list reads as ``'[]'``). How each platform form reads (the same rules as the
SQL of :mod:`regsync.db.mapping.sql`, which the tests hold equal on every engine):

* **code**: the platform value as text (``str``; an integer ``1`` is ``"1"``) looked up in ``values``; absent →
  the marker. With no ``values``, the value is already canonical. Written: ``write_values`` first, else
  ``values`` reversed; a canonical value with no platform value raises :class:`UnmappedValue`.
* **date**: ``date`` (native), text ``YYYY-MM-DD`` or ``YYYYMMDD``, or ``epoch_ms``: the day of that instant in
  +08:00 (a day is written as its 00:00 +08:00). Text that is not a real date of years 1000–9999 in its format
  (``20230230``, ``''``, ``2023-1-5``) reads as ``None``: MySQL's ``DATE`` range, and what ``platform check``
  counts as unreadable.
* **datetime**: ``datetime`` (a native column of naive values in ``tz``: ``UTC`` or ``+08:00``); text
  ``YYYY-MM-DD HH:MM:SS`` in +08:00 (``24:00:00`` is the next day's 00:00; written at second precision, the
  fraction dropped); ``epoch_ms`` (milliseconds since 1970-01-01 UTC; written rounded down to the millisecond).
* **hours**: ``hundredths``; ``minutes``, read as ``round_half_up(minutes × 100 / 60)`` and written as
  ``round_half_up(hundredths × 60 / 100)`` (whole minutes: a platform value reads and writes back unchanged, and
  hundredths in the registry's steps of 0.25 h do too); ``decimal_hours``, read as ``round_half_up(hours × 100)``
  in :class:`~decimal.Decimal` (a float from the driver is taken by its shortest repr), written as a
  ``Decimal`` with two places.
* **list**: ``json`` (the text as stored; ``NULL`` and ``''`` read ``'[]'``), or text separated by one character:
  ``'a|b'`` reads ``'["a","b"]'``: each item JSON-escaped for ``\\``, ``"``, tab, LF and CR, the items kept as
  they are (``'a||b'`` has an empty item). Written: the items joined; an item that is empty or holds the
  separator cannot be written (``ValueError``).
* **ref**: a column holding the referred record's integer key is the local id itself. A reference through a
  string key or another column (an org code) is resolved by the db layer (the key table, the referred table):
  :meth:`Codec.to_canonical` and :meth:`Codec.to_platform` take it as ``refs``.
* **const**: reads as the constant; never written.

The soft-delete flag and the scope are compared as text too (:meth:`Codec.is_deleted`, :meth:`Codec.in_scope`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import orjson

from regsync.db.mapping.model import CANONICAL, REF_KIND, FieldMap, FieldType, KindMap, PlatformMapping
from regsync.domain.unmapped import UnmappedValue, parse_unmapped, unmapped_marker

__all__ = ["EPOCH", "MIN_YEAR", "OFFSET", "Codec", "decode_value", "encode_value", "platform_text"]

#: Asia/Shanghai's offset from UTC (China keeps no daylight saving time), as text dates and times are held.
OFFSET = dt.timedelta(hours=8)
#: The Unix epoch, naive UTC.
EPOCH = dt.datetime(1970, 1, 1)
#: The first year a text date may have (MySQL's ``DATE`` range starts at 1000-01-01).
MIN_YEAR = 1000

_DAY_MS = 86_400_000
_OFFSET_MS = 8 * 3_600_000
_YMD = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_YMD_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_YMD_HMS = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
#: The characters a separated list's items are escaped for, as the SQL escapes them (in this order).
JSON_ESCAPES: tuple[tuple[str, str], ...] = (("\\", "\\\\"), ('"', '\\"'), ("\t", "\\t"), ("\n", "\\n"),
                                             ("\r", "\\r"))


def platform_text(raw: object) -> str:
    """A platform value as text, as SQL's ``CAST(… AS TEXT)`` writes it: codes, flags and scope values are compared
    in this form (``1`` → ``"1"``; bytes as UTF-8)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8")
    return str(raw)


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def _int(raw: object) -> int:
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str | Decimal | float):
        return int(raw)
    raise ValueError(f"not an integer: {raw!r}")


def _decimal(raw: object) -> Decimal:
    if isinstance(raw, float):
        return Decimal(repr(raw))  # the shortest repr: 1.005 stored as a double reads as 1.005
    return Decimal(platform_text(raw).strip())


def _real_date(y: int, m: int, d: int) -> dt.date | None:
    if y < MIN_YEAR:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _text_date(fmt: str, raw: object) -> dt.date | None:
    text = platform_text(raw)
    m = (_YMD if fmt == "YYYY-MM-DD" else _YMD_COMPACT).fullmatch(text)
    return _real_date(int(m[1]), int(m[2]), int(m[3])) if m else None


def _text_datetime(raw: object) -> dt.datetime | None:
    m = _YMD_HMS.fullmatch(platform_text(raw))
    if not m:
        return None
    day = _real_date(int(m[1]), int(m[2]), int(m[3]))
    hh, mm, ss = int(m[4]), int(m[5]), int(m[6])
    if day is None or not (hh < 24 and mm < 60 and ss < 60 or (hh, mm, ss) == (24, 0, 0)):
        return None
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=hh * 3600 + mm * 60 + ss) - OFFSET


def _native_date(raw: object) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    return dt.date.fromisoformat(platform_text(raw)[:10])  # SQLite's text, read without SQLAlchemy's type


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _native_datetime(raw: object) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        return raw
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day)
    return dt.datetime.fromisoformat(platform_text(raw))


def _epoch_ms(raw: object) -> int:
    return _floor(_decimal(raw))


def _json_item(item: str) -> str:
    for char, escaped in JSON_ESCAPES:
        item = item.replace(char, escaped)
    return item


def decode_value(fm: FieldMap, ftype: FieldType, raw: object) -> Any:
    """One platform value (as the driver returns it) → its canonical value (module docstring).

    Args:
        fm: the field's mapping; a ``const`` field returns its constant (``raw`` is ignored).
        ftype: the field's canonical type (:data:`regsync.db.mapping.model.CANONICAL`).
        raw: the column's value.

    Returns:
        The canonical value, or the unmapped marker of a code the mapping does not map.

    Raises:
        ValueError: ``fm`` is a reference resolved by the db layer (a string key or ``ref_column``), or ``raw`` is
            of a type the field cannot read (a date column holding ``"abc"`` as a native date).
    """
    if fm.const is not None:
        return _const(fm.const, ftype)
    if ftype == "list":
        return _decode_list(fm, raw)
    if raw is None:
        return None
    if ftype == "code":
        if fm.values is None:
            return platform_text(raw)
        key = platform_text(raw)
        return fm.values[key] if key in fm.values else unmapped_marker(fm.column or "", key)
    if ftype == "text":
        return platform_text(raw)
    if ftype in ("integer", "ref"):
        return _int(raw)
    if ftype == "hours":
        if fm.unit == "minutes":  # round_half_up(m * 100 / 60) = floor((100 m + 30) / 60), as the SQL has it
            return _floor((_decimal(raw) * 100 + 30) / 60)
        if fm.unit == "decimal_hours":
            return _floor(_decimal(raw) * 100 + Decimal("0.5"))
        return _int(raw)
    if ftype == "date":
        if fm.format in ("YYYY-MM-DD", "YYYYMMDD"):
            return _text_date(fm.format, raw)
        if fm.format == "epoch_ms":
            return dt.date(1970, 1, 1) + dt.timedelta(days=(_epoch_ms(raw) + _OFFSET_MS) // _DAY_MS)
        return _native_date(raw)
    if ftype == "datetime":
        if fm.format == "YYYY-MM-DD HH:MM:SS":
            return _text_datetime(raw)
        if fm.format == "epoch_ms":
            return EPOCH + dt.timedelta(milliseconds=_epoch_ms(raw))
        value = _native_datetime(raw)
        if value.tzinfo is not None:
            return _naive_utc(value)
        return value - OFFSET if fm.tz == "+08:00" else value
    raise ValueError(f"unknown canonical type {ftype!r}")


def _decode_list(fm: FieldMap, raw: object) -> str:
    if raw is None:
        return "[]"
    if isinstance(raw, list):  # a JSON column, parsed by the driver
        return orjson.dumps(raw).decode()
    text = platform_text(raw)
    if text == "":
        return "[]"
    if fm.list_format is None or fm.list_format == "json":
        return text
    return '["' + _json_item(text).replace(fm.list_format, '","') + '"]'


def _const(value: str | int, ftype: FieldType) -> Any:
    if ftype in ("integer", "hours"):
        return int(value)
    if ftype == "date":
        return dt.date.fromisoformat(str(value))
    if ftype == "datetime":
        return dt.datetime.fromisoformat(str(value))
    return str(value)


def _items(value: object) -> list[str]:
    items = value if isinstance(value, list) else orjson.loads(str(value))
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ValueError(f"a list field's canonical value is a JSON array of strings, not {str(value)[:40]!r}")
    return items


def _as_datetime(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ValueError(f"a datetime field's canonical value is a datetime, not {value!r}")
    return _naive_utc(value)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValueError(f"a date field's canonical value is a date, not {value!r}")
    return value


def encode_value(fm: FieldMap, ftype: FieldType, value: object, *, field: str | None = None) -> Any:
    """One canonical value → the value to write into the field's column (module docstring).

    Args:
        fm: the field's mapping (a column, not a ``const``).
        ftype: the field's canonical type.
        value: the canonical value (a list may also be given as a ``list`` of strings).
        field: the canonical field's name, for error messages (and the masking of personal values).

    Returns:
        The platform value: ``str``, ``int``, ``datetime.date``, naive ``datetime.datetime``, or ``Decimal``
        (decimal hours), ``None`` for ``None``.

    Raises:
        UnmappedValue: a code with no platform value (or an unmapped marker).
        ValueError: a ``const`` field or a reference resolved by the db layer; a value of the wrong type; a date
            before year 1000 in a text format; a list item that is empty or holds the separator.
    """
    column = fm.column or ""
    if fm.const is not None:
        raise ValueError(f"{field or column}: a constant is never written")
    if value is None:
        if ftype == "list":  # the empty list
            return "[]" if fm.list_format in (None, "json") else ""
        return None
    if ftype == "code":
        marker = parse_unmapped(value)
        if marker is not None:
            raise UnmappedValue(marker[0], marker[1], field)
        if fm.values is None:
            return value
        if fm.write_values is not None and value in fm.write_values:
            return fm.write_values[str(value)]
        for platform, canonical in fm.values.items():
            if canonical == value:
                return platform
        raise UnmappedValue(column, value, field)
    if ftype == "text":
        return value
    if ftype in ("integer", "ref"):
        return _int(value)
    if ftype == "hours":
        h = _int(value)
        if fm.unit == "minutes":  # round_half_up(h * 60 / 100)
            return (h * 60 + 50) // 100
        if fm.unit == "decimal_hours":
            return (Decimal(h) / 100).quantize(Decimal("0.01"))
        return h
    if ftype == "date":
        day = _as_date(value)
        if fm.format in ("YYYY-MM-DD", "YYYYMMDD"):
            if day.year < MIN_YEAR:
                raise ValueError(f"{field or column}: {day} is before year {MIN_YEAR} and cannot be stored as text")
            return day.isoformat() if fm.format == "YYYY-MM-DD" else f"{day.year:04d}{day.month:02d}{day.day:02d}"
        if fm.format == "epoch_ms":
            return (day - dt.date(1970, 1, 1)).days * _DAY_MS - _OFFSET_MS
        return day
    if ftype == "datetime":
        t = _as_datetime(value)
        if fm.format == "YYYY-MM-DD HH:MM:SS":
            local = t + OFFSET
            if local.year < MIN_YEAR:
                raise ValueError(f"{field or column}: {t} is before year {MIN_YEAR} and cannot be stored as text")
            return local.replace(microsecond=0).isoformat(sep=" ")
        if fm.format == "epoch_ms":
            return (t - EPOCH) // dt.timedelta(milliseconds=1)
        return t + OFFSET if fm.tz == "+08:00" else t
    if ftype == "list":
        if fm.list_format is None or fm.list_format == "json":
            return value if isinstance(value, str) else orjson.dumps(_items(value)).decode()
        items = _items(value)
        for item in items:
            if item == "" or fm.list_format in item:
                raise ValueError(f"{field or column}: the item {item!r} cannot be written in a list separated by "
                                 f"{fm.list_format!r}")
        return fm.list_format.join(items)
    raise ValueError(f"unknown canonical type {ftype!r}")


class Codec:
    """A mapping's values both ways, by kind and canonical field, and the row-level helpers the db layer needs.

    Args:
        mapping: the platform's mapping (:func:`regsync.db.mapping.load.load_mapping`).

    Example::

        codec = Codec(load_mapping("legacy"))
        canonical = codec.to_canonical("volunteer", row)           # row: platform column → value
        columns = codec.to_platform("volunteer", {"phone": "13900000000"})   # {"sjhm": "13900000000"}
    """

    def __init__(self, mapping: PlatformMapping) -> None:
        self.mapping = mapping

    def kind_map(self, kind: str) -> KindMap:
        """The mapping of ``kind``'s table (``KeyError`` for an unknown kind)."""
        return self.mapping.kind(kind)

    def field_map(self, kind: str, field: str) -> FieldMap:
        """How ``field`` of ``kind`` is held (``KeyError`` when the mapping does not map it)."""
        return self.kind_map(kind).fields[field]

    def field_type(self, kind: str, field: str) -> FieldType:
        """The canonical type of ``field`` of ``kind``."""
        return CANONICAL[kind][field][0]

    def is_lookup_ref(self, kind: str, field: str) -> bool:
        """Whether ``field`` is a reference the db layer resolves: to a kind with a string key, or through a column
        other than the referred kind's key (``ref_column``). Other references hold the local id itself."""
        fm = self.field_map(kind, field)
        if self.field_type(kind, field) != "ref" or fm.column is None:
            return False
        target = self.kind_map(REF_KIND[kind][field])
        return target.key_type == "string" or (fm.ref_column is not None and fm.ref_column != target.key)

    def decode(self, kind: str, field: str, raw: object) -> Any:
        """``raw`` (the value of ``field``'s column) as a canonical value (:func:`decode_value`).

        Raises:
            KeyError: the field is not mapped.
            ValueError: the field is a reference the db layer resolves (:meth:`is_lookup_ref`).
        """
        if self.is_lookup_ref(kind, field):
            raise ValueError(f"{kind}.{field}: a reference by a string key or another column is resolved by the "
                             "db layer")
        return decode_value(self.field_map(kind, field), self.field_type(kind, field), raw)

    def encode(self, kind: str, field: str, value: object) -> Any:
        """A canonical ``value`` of ``field`` as the value to write into its column (:func:`encode_value`).

        Raises:
            KeyError: the field is not mapped.
            UnmappedValue: a code with no platform value.
            ValueError: a constant, a reference the db layer resolves, or a value that cannot be written.
        """
        if self.is_lookup_ref(kind, field):
            raise ValueError(f"{kind}.{field}: a reference by a string key or another column is written by the "
                             "db layer")
        return encode_value(self.field_map(kind, field), self.field_type(kind, field), value, field=field)

    def writable(self, kind: str, field: str) -> bool:
        """Whether regsync may write ``field`` of ``kind`` back when the registry's value wins: mapped to a column
        with ``write`` left true (a constant, an unmapped field and ``write = false`` are never written)."""
        fm = self.kind_map(kind).fields.get(field)
        return fm is not None and fm.column is not None and fm.write

    def columns(self, kind: str) -> list[str]:
        """The platform columns ``kind``'s mapping reads, each once: the key, the fields' columns, the scope's and
        the soft delete's, in that order."""
        km = self.kind_map(kind)
        out = [km.key, *(fm.column for fm in km.fields.values() if fm.column is not None),
               *(rule.column for rule in km.scope)]
        if km.soft_delete is not None:
            out.append(km.soft_delete.column)
        return list(dict.fromkeys(out))

    def to_canonical(self, kind: str, row: Mapping[str, Any], refs: Mapping[str, int | None] | None = None
                     ) -> dict[str, Any]:
        """A platform row as canonical values by field (the key is not among them: the db layer knows it).

        Args:
            kind: the kind.
            row: platform column → value (at least :meth:`columns`).
            refs: field → local id of the references the db layer resolves (:meth:`is_lookup_ref`); when ``None``,
                those fields are left out.

        Raises:
            KeyError: a mapped column is missing from ``row``, or a resolved reference from ``refs``.
        """
        out: dict[str, Any] = {}
        for field, fm in self.kind_map(kind).fields.items():
            if self.is_lookup_ref(kind, field):
                if refs is not None:
                    out[field] = refs[field]
                continue
            out[field] = decode_value(fm, self.field_type(kind, field),
                                      None if fm.column is None else row[fm.column])
        return out

    def to_platform(self, kind: str, values: Mapping[str, Any], refs: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
        """Canonical values → ``{column: value}`` for the fields among ``values`` that regsync may write back
        (:meth:`writable`); other fields (unmapped, constants, ``write = false``, ``id``…) are left out.

        Args:
            kind: the kind.
            values: canonical field → value.
            refs: field → the platform's value of a reference the db layer resolves (an org code), for those
                among ``values``.

        Raises:
            UnmappedValue: a code with no platform value.
            KeyError: a reference the db layer resolves is among ``values`` but not in ``refs``.
            ValueError: a value that cannot be written.
        """
        return self._platform(kind, values, refs, only_writable=True)

    def _platform(self, kind: str, values: Mapping[str, Any], refs: Mapping[str, Any] | None,
                  *, only_writable: bool) -> dict[str, Any]:
        km = self.kind_map(kind)
        out: dict[str, Any] = {}
        for field, value in values.items():
            fm = km.fields.get(field)
            if fm is None or fm.column is None or (only_writable and not fm.write):
                continue
            if self.is_lookup_ref(kind, field):
                if refs is None or field not in refs:
                    raise KeyError(f"{kind}.{field}: give the platform's value of this reference in refs")
                out[fm.column] = refs[field]
            else:
                out[fm.column] = encode_value(fm, self.field_type(kind, field), value, field=field)
        return out

    def insert_values(self, kind: str, values: Mapping[str, Any], *, registry_id: str,
                      refs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The columns of a row regsync inserts for a record made in the registry: ``defaults``, the soft delete's
        ``active`` value, every mapped field among ``values`` (``write = false`` ones too: the row is new), and,
        for a string key, the key made from ``new_key`` (an integer key is left to the database).

        Raises:
            ValueError: the mapping does not let regsync insert rows of ``kind``; and as :meth:`to_platform`.
        """
        km = self.kind_map(kind)
        if not km.insert:
            raise ValueError(f"{kind}: the mapping does not let regsync insert rows (insert = false)")
        out: dict[str, Any] = dict(km.defaults)
        if km.soft_delete is not None and km.soft_delete.active is not None:
            out[km.soft_delete.column] = km.soft_delete.active
        out.update(self._platform(kind, values, refs, only_writable=False))
        if km.key_type == "string" and km.new_key is not None:
            out[km.key] = km.new_key.format(registry_id=registry_id)
        return out

    def is_deleted(self, kind: str, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` is soft-deleted: its flag's text is among ``soft_delete.deleted``."""
        sd = self.kind_map(kind).soft_delete
        if sd is None or row[sd.column] is None:
            return False
        return platform_text(row[sd.column]) in {str(v) for v in sd.deleted}

    def in_scope(self, kind: str, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` is in scope: every rule of ``scope`` holds (values compared as text; ``NULL`` is among
        no ``in`` list and outside every ``not_in`` list)."""
        for rule in self.kind_map(kind).scope:
            raw = row[rule.column]
            text = None if raw is None else platform_text(raw)
            if rule.in_ is not None and (text is None or text not in {str(v) for v in rule.in_}):
                return False
            if rule.not_in is not None and text is not None and text in {str(v) for v in rule.not_in}:
                return False
            if rule.is_null is not None and (text is None) != rule.is_null:
                return False
        return True
