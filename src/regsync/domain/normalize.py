"""The one normalizer: what the standards let a client fix, fixed the same way on the way out and in every
comparison (design.md, "Normalization"). The platform's own rows are never rewritten.

Rules and their sources:

* ID numbers (GB 11643-1999, registry-api.md §4.2): full-width characters to half-width (NFKC), spaces
  and separators off, lowercase ``x`` to ``X``; a 15-digit legacy number becomes 18 digits by inserting
  ``19`` after the 6-digit area code and appending the check character. What remains must be 18 characters
  with a correct check character and a real birth date, or :class:`NormalizationError` is raised.
* Names (registry-api.md §4.2): look-alike dots (``•`` U+2022, ``．`` U+FF0E, ``・`` U+30FB, ``･`` U+FF65,
  ``‧`` U+2027, ``∙`` U+2219, ``⋅`` U+22C5, ``• ``…) to ``·`` U+00B7, then NFKC, then surrounding
  spaces off. Characters outside the BMP are kept.
* Characters that do not print (Unicode format characters, general category ``Cf``: zero-width space
  U+200B, ZWNJ/ZWJ U+200C/U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, the bidi marks and
  embeddings U+200E/U+200F, U+202A–U+202E, U+2066–U+2069…) are removed from every text value, names, ID
  numbers, phones and USCCs included, on the way out and in every comparison (:func:`strip_format_chars`).
  Text fields carry no control characters (registry-api.md §4), Unicode calls these "format control
  characters", and a person's name holds only ideographs, letters, spaces and ``·`` (§4.2): a name pasted
  with a zero-width space is refused ``INVALID_NAME`` while it shows as the same name.
* Phones (mainland numbering plan): full-width to half-width, ``+86``/``0086`` prefixes and separators
  (spaces, ``-``, parentheses) off for mobiles; a landline keeps the one hyphen after its area code.
* USCCs (GB 32100-2015): NFKC, spaces off, upper case.
* Text: NFKC for comparison only; format characters and surrounding spaces off on the way out.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata

from stdnum.cn import ric


class NormalizationError(ValueError):
    """A value that no standard lets the client fix; ``code`` is the registry's field code it would get
    (``INVALID_ID_NUMBER``, ``INVALID_PHONE``, ``INVALID_NAME``…) and ``field`` the Python field name."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


LOOKALIKE_DOTS = "\u2022\uff0e\u30fb\uff65\u2027\u2219\u22c5\u0387\u16eb\u2e31\u00b7"
_DOT_TABLE = {ord(c): "\u00b7" for c in LOOKALIKE_DOTS}
_ID_SEPARATORS = re.compile(r"[\s\-_]")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）.]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"(0\d{2,3})-?(\d{7,8})")
_EIGHTEEN_TYPES = {"RESIDENT_ID", "HMT_RESIDENCE_PERMIT"}


@functools.cache
def _format_chars() -> dict[int, None]:
    """The translate table deleting every code point of general category ``Cf`` (built on first use, from the
    interpreter's Unicode database: about 0.1 s once per process)."""
    return {cp: None for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cf"}


def strip_format_chars(text: str) -> str:
    """Remove the characters that do not print: Unicode general category ``Cf`` (zero-width space U+200B,
    ZWNJ/ZWJ, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, bidi marks, embeddings and isolates…).

    Text fields of the registry carry no control characters (registry-api.md §4) and a name holds only
    ideographs, Latin letters, spaces and ``·`` (§4.2); a value that differs from another only by such a
    character shows as the same value, so the one normalizer drops them on the way out and in every
    comparison (design.md, "Normalization").

    Args:
        text: any string.

    Returns:
        ``text`` without its ``Cf`` characters (the same object when it is ASCII).
    """
    if text.isascii():
        return text
    return text.translate(_format_chars())


def to_halfwidth(text: str) -> str:
    """NFKC: full-width digits and letters to their ASCII forms (and other compatibility forms folded)."""
    return unicodedata.normalize("NFKC", text)


def legacy_to_18(number15: str) -> str:
    """Convert a 15-digit legacy resident ID number to 18 (GB 11643-1999 appendix): insert ``19`` after the
    area code and append the check character.

    Raises:
        NormalizationError: the input is not 15 digits.
    """
    if not re.fullmatch(r"\d{15}", number15):
        raise NormalizationError("id_number", "INVALID_ID_NUMBER", "a legacy ID number has 15 digits")
    body = number15[:6] + "19" + number15[6:]
    return body + ric.calc_check_digit(body + "0")


def normalize_id_number(id_type: str, raw: str) -> str:
    """Return the normalized ID number of a document of type ``id_type`` (registry-api.md §4.2).

    For ``RESIDENT_ID`` and ``HMT_RESIDENCE_PERMIT``: 18 characters, check character verified, real birth
    date. The area code is not checked against the county list of the birth year (numbers keep retired
    codes). Other document types: NFKC, separators off, upper case. Format characters
    (:func:`strip_format_chars`) are off for every type.

    Raises:
        NormalizationError: code ``INVALID_ID_NUMBER`` when the number cannot be made valid.
    """
    value = _ID_SEPARATORS.sub("", strip_format_chars(to_halfwidth(raw or ""))).upper()
    if id_type not in _EIGHTEEN_TYPES:
        if not value:
            raise NormalizationError("id_number", "INVALID_ID_NUMBER", "the document number is empty")
        return value
    if len(value) == 15 and value.isdigit():
        value = legacy_to_18(value)
    if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
        raise NormalizationError("id_number", "INVALID_ID_NUMBER",
                                 "an ID number has 18 characters: 17 digits and a check character 0-9 or X")
    if ric.calc_check_digit(value) != value[17]:
        raise NormalizationError("id_number", "INVALID_ID_NUMBER",
                                 "the check character of the ID number is wrong (GB 11643-1999)")
    try:  # what stdnum's ric.get_birth_date checks, without its per-call cleaning of the input
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise NormalizationError("id_number", "INVALID_ID_NUMBER",
                                 "the ID number does not hold a real birth date") from exc
    return value


def try_normalize_id_number(id_type: str, raw: str) -> str | None:
    """:func:`normalize_id_number`, or ``None`` when the number cannot be made valid (for matching)."""
    try:
        return normalize_id_number(id_type, raw)
    except NormalizationError:
        return None


def normalize_name(raw: str) -> str:
    """Normalize a person's name (registry-api.md §4.2): look-alike dots to ``·``, NFKC, format characters
    (:func:`strip_format_chars`) off, spaces trimmed.

    Raises:
        NormalizationError: code ``INVALID_NAME`` when the name is empty afterwards.
    """
    value = strip_format_chars(to_halfwidth((raw or "").translate(_DOT_TABLE)).translate(_DOT_TABLE)).strip()
    value = re.sub(r"\s*·\s*", "·", value)
    if not value:
        raise NormalizationError("name", "INVALID_NAME", "the name is empty")
    return value


def normalize_phone(raw: str | None, *, field: str = "phone", landline_ok: bool = False) -> str | None:
    """Normalize a phone number; blank means none.

    Args:
        raw: the platform's value.
        field: the field name reported in an error.
        landline_ok: accept a landline (``0\\d{2,3}-?\\d{7,8}``, org contact phones) besides mobiles.

    Returns:
        ``None`` for a blank value; a mobile as 11 digits; a landline as ``area-number``.

    Raises:
        NormalizationError: code ``INVALID_PHONE`` for a value that is neither a mainland mobile nor (when
            allowed) a landline after the fixes.
    """
    if raw is None or not strip_format_chars(raw).strip():
        return None
    value = strip_format_chars(to_halfwidth(raw)).strip()
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact.startswith("+86"):
        compact = compact[3:]
    elif compact.startswith("0086"):
        compact = compact[4:]
    if _MOBILE.fullmatch(compact):
        return compact
    if landline_ok:
        m = _LANDLINE.fullmatch(re.sub(r"[\s()（）]", "", value).replace("—", "-"))
        if m:
            return f"{m.group(1)}-{m.group(2)}"
    raise NormalizationError(field, "INVALID_PHONE", "not a mainland mobile number" +
                             (" or landline" if landline_ok else ""))


def normalize_uscc(raw: str | None) -> str | None:
    """Normalize a USCC (GB 32100-2015): NFKC, spaces and format characters off, upper case; blank means
    none."""
    if raw is None or not strip_format_chars(raw).strip():
        return None
    return re.sub(r"\s", "", strip_format_chars(to_halfwidth(raw))).upper()


def normalize_text(raw: str | None) -> str | None:
    """A text field as sent (registry-api.md §4: no control characters, no leading or trailing spaces): format
    characters (:func:`strip_format_chars`) off, full-width forms folded (NFKC) when there are any, surrounding
    spaces off. ``None`` stays ``None``."""
    if raw is None:
        return None
    raw = strip_format_chars(raw)
    return to_halfwidth(raw).strip() if any(ord(c) > 0xFF00 for c in raw) else raw.strip()


def canonical_text(raw: str | None) -> str | None:
    """The comparison form of a string: NFKC, format characters and surrounding spaces off (reconcile,
    merge)."""
    return None if raw is None else strip_format_chars(unicodedata.normalize("NFKC", raw)).strip()
