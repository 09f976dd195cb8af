"""The rules ``regsync platform check`` holds a platform's columns to (issue 14, items 3, 4 and 6).

Plain data and small pure functions, no SQL: which column types can hold a field as it is mapped, how long the
registry lets a text field be (registry-api.md §4), which fields hold free text that may reach outside the BMP,
which are personal (their samples masked), and which MySQL/MariaDB character sets can hold every character the
registry sends. :mod:`regsync.db.mapping.check` applies them to the live schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from sqlalchemy import types as sqltypes
from sqlalchemy.types import TypeEngine

from regsync.db.mapping.model import CANONICAL, FieldMap
from regsync.domain.masking import mask_id_number, mask_phone, mask_text

#: A column type's family as the check sees it: ``any`` is a column with no declared type (SQLite), which holds
#: whatever it is given.
Family = str

#: The families a ``text`` field may be held in beyond character columns: codes made of digits only, which some
#: platforms keep as numbers (a region code as an ``INT``).
DIGIT_TEXT = {"region_code", "street_code", "home_province"}

#: The longest value the registry allows or sends for a text field (registry-api.md §4.1, §4.2, §4.4): a
#: character column shorter than this cannot take every value regsync may write back.
REGISTRY_LENGTH: dict[tuple[str, str], int] = {
    ("org", "name"): 100,                # §4.1 str 2–100
    ("org", "uscc"): 18,                 # §4.1 str 18
    ("org", "region_code"): 6,           # §4.1 str 6
    ("org", "street_code"): 12,          # §4.1 str 12
    ("org", "contact_name"): 50,         # §4.1 str 1–50
    ("org", "contact_phone"): 13,        # §4.1 landline 0\d{2,3}-?\d{7,8}: at most 13
    ("volunteer", "name"): 50,           # §4.2 str 1–50
    ("volunteer", "id_number"): 18,      # §4.2 18 characters for the resident ID types
    ("volunteer", "id_number_norm"): 18,
    ("volunteer", "phone"): 11,          # §4.2 mainland mobile
    ("volunteer", "region_code"): 6,     # §4.2 str 6
    ("volunteer", "home_province"): 2,   # §4.2 str 2
    ("activity", "title"): 100,          # §4.4 2–100
    ("activity", "region_code"): 6,
    # v1.1
    ("training", "title"): 100,          # §4.6 str 2–100
    ("training", "region_code"): 6,
    ("training", "address"): 200,        # §4.6 str 2–200
    ("training", "contact_name"): 50,    # §4.6 str 1–50
    ("training", "contact_phone"): 13,   # §4.6 as for orgs
    ("commendation", "title"): 100,      # §4.8 str 2–100
    ("commendation", "issuer"): 100,
    ("commendation", "document_name"): 100,
    ("commendation", "document_number"): 50,
    ("commendation", "content"): 15000,  # §4.8 ≤ 15 000
    ("evaluation", "comment"): 500,      # §4.9 ≤ 500
}

#: The five longest service category codes (registry-api.md §6), for the longest list of 1–5 of them.
_CATEGORY_LENGTHS = (16, 14, 14, 11, 9)  # ELDERLY_DISABLED, BLOOD_DONATION, POVERTY_RELIEF, ENVIRONMENT, EMERGENCY

#: List fields: (most items, longest item) as the registry allows (registry-api.md §4.1, §4.2).
LIST_LIMITS: dict[tuple[str, str], tuple[int, ...]] = {
    ("org", "service_categories"): _CATEGORY_LENGTHS,
    ("volunteer", "skills"): (20,) * 10,                  # ≤ 10 skills of ≤ 20 characters
}

#: Text fields whose values are people's words (names, titles, notes): the registry may send characters outside
#: the BMP in them (rare CJK ideographs in names), which ``utf8``/``utf8mb3``, GBK or latin1 columns cannot hold.
FREE_TEXT: dict[str, frozenset[str]] = {
    "org": frozenset({"name", "contact_name", "remark"}),
    "volunteer": frozenset({"name", "skills", "remark"}),
    "membership": frozenset(),
    "activity": frozenset({"title"}),
    "service_record": frozenset({"revoke_reason"}),
    "training": frozenset({"title", "address", "contact_name"}),
    "training_record": frozenset({"revoke_reason"}),
    "commendation": frozenset({"title", "issuer", "document_name", "document_number", "content", "revoke_reason"}),
    "evaluation": frozenset({"comment", "revoke_reason"}),
}

#: MySQL/MariaDB character sets that hold every Unicode character (the others stop at the BMP or below it).
FULL_UNICODE_CHARSETS = frozenset({"utf8mb4", "utf16", "utf16le", "utf32"})

#: Text formats of dates and times: the length of a value.
TEXT_FORMAT_LENGTH = {"YYYY-MM-DD": 10, "YYYYMMDD": 8, "YYYY-MM-DD HH:MM:SS": 19}


def family(t: TypeEngine[object]) -> Family:
    """The family of a reflected column type: ``boolean``, ``integer``, ``numeric``, ``datetime``, ``date``,
    ``time``, ``text``, ``json``, ``binary``, ``any`` (no declared type) or ``other``."""
    if isinstance(t, sqltypes.Boolean):
        return "boolean"
    if isinstance(t, sqltypes.Integer):
        return "integer"
    if isinstance(t, sqltypes.Numeric):  # DECIMAL, NUMERIC, FLOAT, REAL
        return "numeric"
    if isinstance(t, sqltypes.DateTime):  # TIMESTAMP too
        return "datetime"
    if isinstance(t, sqltypes.Date):
        return "date"
    if isinstance(t, sqltypes.Time):
        return "time"
    if isinstance(t, sqltypes.String):  # CHAR, VARCHAR, TEXT, ENUM, SET
        return "text"
    if isinstance(t, sqltypes.JSON):
        return "json"
    if isinstance(t, (sqltypes.LargeBinary, sqltypes.BINARY, sqltypes.VARBINARY)):  # BLOB, BYTEA
        return "binary"
    if isinstance(t, sqltypes.NullType):
        return "any"
    return "other"


def accepted_families(kind: str, name: str, fm: FieldMap) -> tuple[frozenset[Family], str]:
    """The column families that can hold canonical field ``name`` of ``kind`` as ``fm`` maps it, and what the
    field needs, in words (for the finding). References are checked against the referred column instead."""
    ftype = CANONICAL[kind][name][0]
    if ftype == "text":
        if name in DIGIT_TEXT:
            return frozenset({"text", "integer"}), "a character (or integer) column"
        return frozenset({"text"}), "a character column"
    if ftype == "code":
        return frozenset({"text", "integer", "boolean"}), "a character, integer or boolean column"
    if ftype in ("date", "datetime"):
        fmt = fm.format or ftype
        if fmt == "epoch_ms":
            return frozenset({"integer"}), "an integer column (epoch milliseconds)"
        if fmt == "YYYYMMDD":
            return frozenset({"text", "integer"}), "a character (or integer) column holding YYYYMMDD"
        if fmt in TEXT_FORMAT_LENGTH:
            return frozenset({"text"}), f"a character column holding {fmt}"
        if fmt == "date":
            return frozenset({"date", "datetime"}), "a DATE or DATETIME column"
        return frozenset({"datetime"}), "a DATETIME or TIMESTAMP column"
    if ftype == "hours":
        if fm.unit == "decimal_hours":
            return frozenset({"numeric"}), "a DECIMAL or NUMERIC column (decimal hours)"
        return frozenset({"integer", "numeric"}), f"an integer or numeric column ({fm.unit or 'hundredths'})"
    if ftype == "integer":
        return frozenset({"integer", "numeric"}), "an integer column"
    if ftype == "list":
        if (fm.list_format or "json") == "json":
            return frozenset({"text", "json"}), "a character, text or JSON column (a JSON array)"
        return frozenset({"text"}), f"a character or text column (items separated by {fm.list_format!r})"
    return frozenset(), "a column of the referred key's type"  # ref: checked against the referred column


def needed_length(kind: str, name: str, fm: FieldMap) -> int | None:
    """The characters a column must hold for every value regsync may write into field ``name`` of ``kind``
    (registry-api.md §4; the text formats of dates; the longest platform code written), or ``None``."""
    ftype = CANONICAL[kind][name][0]
    if (kind, name) in REGISTRY_LENGTH:
        return REGISTRY_LENGTH[(kind, name)]
    if (kind, name) in LIST_LIMITS:
        items = LIST_LIMITS[(kind, name)]
        if (fm.list_format or "json") == "json":
            return len(json.dumps(["x" * n for n in items], ensure_ascii=False))
        return sum(items) + len(items) - 1
    if ftype in ("date", "datetime") and fm.format in TEXT_FORMAT_LENGTH:
        return TEXT_FORMAT_LENGTH[fm.format]
    if ftype == "code" and fm.values:
        written = [str(v) for v in (fm.write_values or {}).values()] or list(fm.values)
        return max(len(v) for v in written)
    return None


def is_case_insensitive(collation: str | None) -> bool:
    """Whether a MySQL/MariaDB collation compares letters without their case (``utf8mb4_general_ci``,
    ``utf8mb4_0900_ai_ci``); ``_bin``, ``_cs`` and binary strings do not."""
    return bool(collation) and str(collation).lower().endswith("_ci")


def _shape(value: str) -> str:
    """A value's shape, digits as ``9`` and letters as ``A``: shows why a date is malformed without the date."""
    return re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "9", value))


def _mask_id(value: str) -> str:
    return mask_id_number(value) or ""


def _mask_phone(value: str) -> str:
    return mask_phone(value) or ""


#: Personal fields (design.md, "Personal data"): how a sample of their values is shown.
PERSONAL: dict[tuple[str, str], Callable[[str], str]] = {
    ("volunteer", "id_number"): _mask_id,
    ("volunteer", "id_number_norm"): _mask_id,
    ("volunteer", "phone"): _mask_phone,
    ("volunteer", "birth_date"): _shape,
    ("org", "contact_phone"): _mask_phone,
    ("training", "contact_phone"): _mask_phone,
}


def masker(kind: str, field: str | None) -> Callable[[str], str]:
    """How a sample of field ``field`` of ``kind`` is shown: masked for a personal field, else as it is with any
    ID or phone number inside it masked (:func:`regsync.domain.masking.mask_text`)."""
    if field is not None and (kind, field) in PERSONAL:
        return PERSONAL[(kind, field)]
    return mask_text
