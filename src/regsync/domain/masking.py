"""Masking of personal data (design.md, "Personal data"; 个人信息保护法).

One masked form everywhere, so that no two outputs together reveal more than one does:

* resident ID numbers (18 characters) keep the 6-digit area code and the last 4: ``230102********123X``;
* other document numbers keep their last 4;
* mobile phones keep the first 3 and last 4: ``139****5678``; landlines the area code and last 4.

Keyed hashes (HMAC-SHA256 with the local ``hash_key``) stand in for sensitive values where only a change
must be seen (base snapshots).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{5})(\d{4})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z-])(1[3-9]\d)(\d{4})(\d{4})(?![0-9A-Za-z])")
_LANDLINE = re.compile(r"(?<![0-9A-Za-z-])(0\d{2,3})-(\d{3,4})(\d{4})(?![0-9A-Za-z-])")


def mask_id_number(value: str | None) -> str | None:
    """Mask a document number: 18 characters keep area code and last 4, others their last 4."""
    if value is None:
        return None
    if len(value) == 18:
        return value[:6] + "*" * 8 + value[-4:]
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """Mask a phone: a mobile keeps the first 3 and last 4, a landline its area code and last 4."""
    if value is None:
        return None
    digits = re.sub(r"\D", "", value)
    if len(digits) == 11 and digits.startswith("1"):
        return digits[:3] + "****" + digits[-4:]
    m = re.fullmatch(r"(0\d{2,3})-?(\d{7,8})", value.strip())
    if m:
        return m.group(1) + "-" + "*" * (len(m.group(2)) - 4) + m.group(2)[-4:]
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_text(text: str) -> str:
    """Mask every ID number and phone number found inside free text (log lines, messages)."""
    text = _ID18.sub(lambda m: m.group(1) + "********" + m.group(3), text)
    text = _ID15.sub(lambda m: m.group(1) + "*****" + m.group(3), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    return _LANDLINE.sub(lambda m: m.group(1) + "-" + "*" * len(m.group(2)) + m.group(3), text)


@functools.lru_cache(maxsize=8)
def _key_bytes(key: str) -> bytes:
    return key.encode()


def keyed_hash(key: str, value: str | None) -> str | None:
    """HMAC-SHA256 of ``value`` under the local ``key``, hex, prefixed ``h:``; ``None`` stays ``None``."""
    if value is None:
        return None
    return "h:" + hmac.digest(_key_bytes(key), value.encode(), hashlib.sha256).hex()[:32]  # one-shot, in C
