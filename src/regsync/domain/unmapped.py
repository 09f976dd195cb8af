"""A platform value that the mapping does not map (issue 14, item 6: ``UNMAPPED_VALUE``).

When a platform's code column holds a value the mapping's ``values`` do not list (gender ``"0"`` where the map
knows ``"1"`` and ``"2"``), the canonical value is not dropped nor guessed: it becomes a **marker**, a string that
no real value has, naming the column and the platform's value::

    "\\x1fUNMAPPED\\x1f" + column + "\\x1f" + value        # e.g. "\\x1fUNMAPPED\\x1fxb\\x1f0"

The same text is built in Python (:mod:`regsync.db.mapping.codec`) and in SQL (:mod:`regsync.db.mapping.sql`, for
views and triggers), so a marker compares equal wherever it was made. U+001F (INFORMATION SEPARATOR ONE) is a
control character that the registry refuses in every text field (registry-api.md §4) and that PostgreSQL and
MySQL text can store (unlike NUL). A flow that meets a marker in a record's canonical values fails that record
alone with code ``UNMAPPED_VALUE`` (:class:`UnmappedValue`, :func:`find_unmapped`); the rest syncs.

The message of an :class:`UnmappedValue` names the column and the value, the value masked where the field is
personal (ID numbers, phones: :mod:`regsync.domain.masking`), and any ID or phone number inside another value
masked too.
"""

from __future__ import annotations

from collections.abc import Mapping

from regsync.domain.masking import mask_id_number, mask_phone, mask_text

__all__ = ["CODE", "PREFIX", "SEPARATOR", "UnmappedValue", "find_unmapped", "parse_unmapped", "unmapped_marker"]

#: The code a record fails with when one of its values is not mapped.
CODE = "UNMAPPED_VALUE"
#: U+001F, between the marker's parts.
SEPARATOR = "\x1f"
#: How every marker starts (and no real value does).
PREFIX = f"{SEPARATOR}UNMAPPED{SEPARATOR}"

#: Canonical fields whose values are document numbers, masked as such (design.md, "Personal data").
_ID_FIELDS = frozenset({"id_number", "id_number_norm"})
#: Canonical fields whose values are phone numbers.
_PHONE_FIELDS = frozenset({"phone", "contact_phone"})


def unmapped_marker(column: str, value: object) -> str:
    """The marker of ``value``, read from ``column``, that the mapping does not map.

    Args:
        column: the platform's column (an identifier: no U+001F).
        value: the platform's value as the driver returned it; it is written as text (``str``), as SQL's
            ``CAST(… AS TEXT)`` writes it (an integer ``0`` is ``"0"``).

    Returns:
        ``PREFIX + column + SEPARATOR + str(value)``.
    """
    return f"{PREFIX}{column}{SEPARATOR}{value}"


def parse_unmapped(value: object) -> tuple[str, str] | None:
    """``(column, platform value)`` of a marker, or ``None`` for any other value (``None`` and non-strings too)."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    column, _, raw = value[len(PREFIX):].partition(SEPARATOR)
    return column, raw


def _masked(field: str | None, value: str) -> str:
    if field in _ID_FIELDS:
        return mask_id_number(value) or ""
    if field in _PHONE_FIELDS:
        return mask_phone(value) or ""
    return mask_text(value)


class UnmappedValue(ValueError):
    """A platform value that the mapping does not map, or a canonical value with no platform value to write.

    ``code`` is ``UNMAPPED_VALUE``; the record it belongs to fails alone. The message names the column and the
    value, masked when ``field`` is personal.

    Attributes:
        code: ``"UNMAPPED_VALUE"``.
        column: the platform's column.
        value: the value, in clear (for the record's own handling; never log it: log ``str(exc)``).
        field: the canonical field, when known (``gender``).
    """

    code = CODE

    def __init__(self, column: str, value: object, field: str | None = None) -> None:
        self.column = column
        self.value = "" if value is None else str(value)
        self.field = field
        where = f"{column} ({field})" if field and field != column else column
        super().__init__(f"{CODE}: column {where}: the value {_masked(field, self.value)!r} is not mapped")


def find_unmapped(values: Mapping[str, object]) -> UnmappedValue | None:
    """The first marker among a record's canonical ``values`` (field → value), as an :class:`UnmappedValue` naming
    the field, or ``None`` when every value is mapped."""
    for field, value in values.items():
        parsed = parse_unmapped(value)
        if parsed is not None:
            return UnmappedValue(parsed[0], parsed[1], field)
    return None
