"""Region codes the sandbox registry accepts (GB/T 2260 行政区划代码, registry-api.md §4.1 ``regionCode``).

For Heilongjiang (province ``23``, the demo's and the tests' province) the sandbox keeps the real list: the
province itself, its 13 prefecture-level units (2301–2312, 2327) and their current districts, counties and
county-level cities. For any other province it accepts a code that *looks* like a county-level-or-higher
code of that province (see :func:`is_region_code`), since it has no list for them.
"""

from __future__ import annotations

import re

#: Two-digit province prefixes of GB/T 2260 (mainland provinces, plus 71 Taiwan, 81 Hong Kong, 82 Macao)
#: and 83, the prefix of Taiwan residents' residence permits (港澳台居民居住证).
PROVINCE_PREFIXES: frozenset[str] = frozenset(
    (
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
        "50 51 52 53 54 61 62 63 64 65 71 81 82 83"
    ).split()
)

_HEILONGJIANG = """
230000
230100 230102 230103 230104 230108 230109 230110 230111 230112 230113 230123 230124 230125 230126 230127
230128 230129 230183 230184
230200 230202 230203 230204 230205 230206 230207 230208 230221 230223 230224 230225 230227 230229 230230
230231 230281
230300 230302 230303 230304 230305 230306 230307 230321 230381 230382
230400 230402 230403 230404 230405 230406 230407 230421 230422
230500 230502 230503 230505 230506 230521 230522 230523 230524
230600 230602 230603 230604 230605 230606 230621 230622 230623 230624
230700 230717 230718 230719 230722 230723 230724 230725 230726 230751 230781
230800 230803 230804 230805 230811 230822 230826 230828 230881 230882 230883
230900 230902 230903 230904 230921
231000 231002 231003 231004 231005 231025 231081 231083 231084 231085 231086
231100 231102 231123 231124 231181 231182 231183
231200 231202 231221 231222 231223 231224 231225 231226 231281 231282 231283
232700 232701 232721 232722
"""

#: Heilongjiang's codes: 230000, the prefecture-level units and their county-level units.
HEILONGJIANG_CODES: frozenset[str] = frozenset(_HEILONGJIANG.split())

#: Provinces whose complete code list the sandbox holds.
KNOWN_LISTS: dict[str, frozenset[str]] = {"23": HEILONGJIANG_CODES}

_SIX_DIGITS = re.compile(r"\d{6}")


def is_region_code(code: object, province: str | None = None) -> bool:
    """Whether ``code`` is a GB/T 2260 county-level-or-higher code (inside ``province`` when given).

    Args:
        code: the wire value (anything; only a 6-digit string can pass).
        province: a 2-digit province prefix the code must start with, or ``None`` for any province.

    Returns:
        For a province with a list (:data:`KNOWN_LISTS`): membership in the list. Otherwise a plausible
        code: a known province prefix, then ``0000`` (the province), or a prefecture ``01``–``90`` followed
        by ``00`` (the prefecture) or a county ``01``–``99``. Hong Kong, Macao and Taiwan have only their
        province-level code.
    """
    if not isinstance(code, str) or not _SIX_DIGITS.fullmatch(code):
        return False
    prefix = code[:2]
    if province is not None and prefix != province:
        return False
    if prefix in KNOWN_LISTS:
        return code in KNOWN_LISTS[prefix]
    if prefix not in PROVINCE_PREFIXES or prefix == "83":
        return False
    if prefix in ("71", "81", "82"):
        return code[2:] == "0000"
    pref, county = int(code[2:4]), code[4:]
    if pref == 0:
        return county == "00"
    return 1 <= pref <= 90
