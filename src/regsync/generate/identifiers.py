r"""Identifiers with correct check characters: resident ID numbers, USCCs, phone numbers.

Sources:

* Resident ID numbers, GB 11643-1999: 6-digit area code (GB/T 2260, the birth place's, the code valid in
  the birth year) + 8-digit birth date + 3-digit order code (odd for men, even for women; 996–999 kept for
  people over 100) + the ISO 7064 MOD 11-2 check character (``0``–``9`` or ``X``). The 15-digit legacy form
  drops the century and the check character.
* USCCs, GB 32100-2015: 登记管理部门代码 (1) + 机构类别代码 (1) + 登记管理机关行政区划码 (6) + 主体标识码
  (9: the GB 11714 organization code, its last character a check character) + check character, over the
  alphabet ``0-9A-Z`` without ``I O S V Z``.
* Phones: mainland mobiles ``1[3-9]\d{9}`` with real carrier prefixes; landlines ``0xxx-xxxxxxx(x)``.
"""

from __future__ import annotations

import math
import random

from stdnum.cn import ric, uscc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

#: Order codes per birth date and area: ``00``–``98`` for the first two digits (``99x`` is kept for
#: centenarians), times five gender-parity third digits.
ORDER_PREFIXES = 99


def id_check_char(body17: str) -> str:
    """The GB 11643-1999 check character of a 17-digit body (ISO 7064 MOD 11-2)."""
    return ric.calc_check_digit(body17 + "0")


class OrderAllocator:
    """Hands out unique (birth day, order code prefix) slots per (area code, birth year).

    The k-th person of an (area, year) gets slot ``(a·k + b) mod N`` of the ``N = days × 99`` slots of that
    year, an affine permutation whose ``a`` and ``b`` come from the seed: the slots look random, yet no two
    people of one area and year share a birth day and order prefix, so no two generated people share a
    number, without remembering any number. State: one counter per (area, year) in use (a few thousand
    at most, whatever the scale).

    Args:
        seed: the generator's seed.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._state: dict[tuple[str, int], list[int]] = {}

    def capacity(self, year: int) -> int:
        """The number of slots of a birth year."""
        return (366 if _leap(year) else 365) * ORDER_PREFIXES

    def take(self, area: str, year: int) -> tuple[int, int] | None:
        """Take the next slot of ``(area, year)``.

        Returns:
            ``(day of year 0-based, order prefix 0–98)``, or ``None`` if the year of that area is full.
        """
        key = (area, year)
        st = self._state.get(key)
        n = self.capacity(year)
        if st is None:
            r = random.Random(f"{self._seed}:order:{area}:{year}")
            a = r.randrange(1, n)
            while math.gcd(a, n) != 1:
                a = r.randrange(1, n)
            st = [a, r.randrange(n), 0]
            self._state[key] = st
        a, b, k = st
        if k >= n:
            return None
        st[2] = k + 1
        slot = (a * k + b) % n
        return slot // ORDER_PREFIXES, slot % ORDER_PREFIXES


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def resident_id(area: str, birth_yyyymmdd: str, order3: str) -> str:
    """An 18-character resident ID number (GB 11643-1999) from its parts, check character computed."""
    body = area + birth_yyyymmdd + order3
    return body + id_check_char(body)


def to_legacy_15(number18: str) -> str:
    """The 15-digit legacy form of the 18-character number of someone born 1900–1999.

    The century and the check character are dropped (GB 11643-1999 replaced this form).
    """
    return number18[:6] + number18[8:17]


def wrong_check_char(number18: str, rng: random.Random) -> str:
    """``number18`` with a wrong check character (still a digit or ``X``): unfixable dirt."""
    right = number18[17]
    other = rng.choice([c for c in "0123456789X" if c != right])
    return number18[:17] + other


FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def to_fullwidth(text: str) -> str:
    """Digits (and ``X``) as their full-width forms, U+FF10–U+FF19 (NFKC folds them back)."""
    return text.translate(FULLWIDTH)


def organization_code(body8: str) -> str:
    """A 9-character GB 11714 organization code: 8 characters + its check character."""
    total = sum(
        USCC_ALPHABET.index(c) * w if c.isdigit() else (ord(c) - 55) * w
        for c, w in zip(body8, _GB11714_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def make_uscc(index: int, region6: str, kind: str = "51") -> str:
    """A valid, unique USCC (GB 32100-2015) for the ``index``-th generated org.

    Args:
        index: a number unique per generated org (0 ≤ index < 31**6); the 主体标识码 is derived from it
            injectively, so distinct indexes give distinct codes.
        region6: the registering authority's GB/T 2260 code.
        kind: 登记管理部门代码 + 机构类别代码, e.g. ``"51"`` 民政 社会团体, ``"52"`` 民办非企业单位,
            ``"12"`` 事业单位.

    Returns:
        18 characters, the check character computed with ``stdnum.cn.uscc.calc_check_digit``.
    """
    n = (index * 387_420_489 + 12_345) % 887_503_681  # 31**6 = 887503681; 3**18 is coprime with it
    chars = []
    for _ in range(6):
        n, r = divmod(n, 31)
        chars.append(USCC_ALPHABET[r])
    # new 主体标识码 assigned by the registering authority: MJ for 民政 social orgs, MB for 事业单位
    body8 = ("MB" if kind.startswith("1") else "MJ") + "".join(reversed(chars))
    if any(c in "IOSVZ" for c in body8):  # pragma: no cover - the alphabet excludes them
        raise AssertionError(body8)
    code17 = kind + region6 + organization_code(body8)
    return code17 + uscc.calc_check_digit(code17)


MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "145",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)


def mobile(rng: random.Random) -> str:
    r"""A mainland mobile number ``1[3-9]\d{9}`` with a real carrier prefix."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def landline(rng: random.Random, area: str, digits: int) -> str:
    """A landline ``area-number`` (``0451-86123456``); local numbers do not start with 0 or 1."""
    first = rng.randrange(2, 10)
    rest = rng.randrange(10 ** (digits - 1))
    return f"{area}-{first}{rest:0{digits - 1}d}"


def messy_mobile(rng: random.Random, number: str) -> str:
    """A fixable messy form of a mobile: ``+86``/``0086`` prefix, spaces, hyphens, full-width digits."""
    style = rng.randrange(6)
    if style == 0:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style == 1:
        return "+86" + number
    if style == 2:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style == 3:
        return f"0086-{number}"
    if style == 4:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return to_fullwidth(number)


def malformed_mobile(rng: random.Random, number: str) -> str:
    """An unfixable phone: a digit short, a digit too many, or a prefix no mainland mobile has."""
    style = rng.randrange(3)
    if style == 0:
        return number[:-1]
    if style == 1:
        return number + str(rng.randrange(10))
    return "12" + number[2:]
