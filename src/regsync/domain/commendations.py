"""The province's annual commendation scheme (年度嘉许, ``PROVINCIAL_ANNUAL``, registry-api.md §4.8): its tiers, their
thresholds, their words and the title of a commendation.

A volunteer's tier is by the hours of ACCEPTED service records with ``serviceDate`` in the year (+08:00), in
hundredths of an hour here (5000 = 50.00 h); an org's by the number of ACCEPTED service records of the year whose
org or station is the org. Tiers are listed lowest first: a tier's rank is its place in the list, and a higher tier
replaces a lower one (the lower is revoked first, §4.8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from regsync.domain.hours import format_hours
from regsync.i18n import gettext as _
from regsync.i18n import gettext_noop as N_

#: The scheme's code on the wire and in the ``commendation.scheme`` column.
SCHEME = "PROVINCIAL_ANNUAL"

#: Who a commendation is of: a volunteer or an org (the registry's ``subjectType``).
Subject = Literal["volunteer", "org"]

#: Tier → threshold, lowest first: volunteers by hours (hundredths), orgs by service records (registry-api.md §4.8).
TIERS: dict[Subject, tuple[tuple[str, int], ...]] = {
    "volunteer": (("CARE", 5_000), ("BRONZE", 10_000), ("SILVER", 20_000), ("GOLD", 50_000),
                  ("GOLD_EXCELLENCE", 100_000)),
    "org": (("HONOR", 50), ("BRONZE", 100), ("SILVER", 200), ("GOLD", 500)),
}

#: Tier → its name as people read it (translated when shown).
TIER_WORDS: dict[str, str] = {
    "CARE": N_("Care Award"), "BRONZE": N_("Bronze Award"), "SILVER": N_("Silver Award"), "GOLD": N_("Gold Award"),
    "GOLD_EXCELLENCE": N_("Gold Award for Excellence"), "HONOR": N_("Honor Award"),
}

#: Tier → its Chinese name in a commendation's title (data sent to the registry, not translated).
_TITLE_WORDS: dict[str, str] = {"CARE": "爱心奖", "BRONZE": "铜奖", "SILVER": "银奖", "GOLD": "金奖",
                                "GOLD_EXCELLENCE": "卓越金奖", "HONOR": "光荣奖"}


def tier_for(subject: Subject, amount: int) -> str | None:
    """The highest tier ``amount`` reaches, or ``None``.

    Args:
        subject: ``volunteer`` (``amount`` in hundredths of an hour) or ``org`` (``amount`` a number of records).
        amount: the year's figure.
    """
    found = None
    for tier, need in TIERS[subject]:
        if amount >= need:
            found = tier
    return found


def rank(subject: Subject, tier: str | None) -> int:
    """A tier's rank for ``subject``: 1 for the lowest, 0 for none or a tier the subject cannot have."""
    for i, (name, _need) in enumerate(TIERS[subject], start=1):
        if name == tier:
            return i
    return 0


def threshold(subject: Subject, tier: str) -> int:
    """The figure ``tier`` needs (hundredths of an hour for a volunteer, records for an org).

    Raises:
        KeyError: a tier ``subject`` cannot have.
    """
    return dict(TIERS[subject])[tier]


def lowest(subject: Subject) -> int:
    """The figure of the subject's lowest tier (5000 hundredths, or 50 records)."""
    return TIERS[subject][0][1]


def title_for(year: int, tier: str) -> str:
    """The commendation's title (表彰名称), e.g. ``2025年度志愿服务金奖`` (registry-api.md §4.8's example)."""
    return f"{year}年度志愿服务{_TITLE_WORDS[tier]}"


#: Flag codes → their words (why a row needs follow-up before approval).
FLAG_WORDS: dict[str, str] = {
    "platform_higher": N_("The platform's records reach {tier}: records not yet in the registry (unsent, failed or "
                          "corrected since). Push them and propose again before approving."),
    "not_in_registry": N_("Not in the registry yet: the platform's records reach {tier}. Push the record and its "
                          "service records first."),
}

@dataclass
class Proposal:
    """One row of the proposal list: a subject, its figures and the tier proposed (or only a flag).

    Attributes:
        subject: ``volunteer`` or ``org``.
        local_id: the subject's local id (a person's primary row).
        registry_id: its registry id, ``None`` when the registry does not know it.
        name: its name.
        id_number: a volunteer's ID number, masked (design.md "Personal data"); ``None`` for an org.
        org: the org a volunteer served most in the year, or an org's parent org (name).
        region_code: GB/T 2260 code of the subject.
        registry_amount: the registry's figure (hundredths of an hour, or records).
        platform_amount: the platform's figure (same unit).
        existing_tier: the highest ACTIVE commendation of the scheme and year already held (platform or registry).
        tier: the tier proposed (by the registry's figure), ``None`` when only flagged.
        flag: ``platform_higher``, ``not_in_registry`` or ``None``.
        flag_tier: the tier the platform's figure reaches, when flagged.
    """

    subject: Subject
    local_id: int
    registry_id: str | None
    name: str
    id_number: str | None
    org: str | None
    region_code: str | None
    registry_amount: int
    platform_amount: int
    existing_tier: str | None
    tier: str | None
    flag: str | None = None
    flag_tier: str | None = None

    @property
    def city(self) -> str | None:
        """The 4-digit city code of :attr:`region_code`."""
        return self.region_code[:4] if self.region_code else None

    def flag_words(self) -> str:
        """The flag's reason in words, in the language in force (``""`` when not flagged)."""
        if self.flag is None:
            return ""
        return _(FLAG_WORDS[self.flag]).format(tier=tier_words(self.flag_tier))


def tier_words(tier: str | None) -> str:
    """A tier's name in the language in force (爱心奖…), ``""`` for none."""
    return _(TIER_WORDS[tier]) if tier in TIER_WORDS else (tier or "")


def figure_text(subject: Subject, amount: int) -> str:
    """A figure as people read it: hours ``"123.50"`` for a volunteer, a count for an org."""
    return format_hours(amount) if subject == "volunteer" else str(amount)


@dataclass(frozen=True)
class Choice:
    """One approved proposal: the subject (``volunteer`` or ``org``), its local id and the tier; ``row``: its row in
    the approver's file (``0`` when not from a file; not part of equality)."""

    subject: Subject
    local_id: int
    tier: str
    row: int = field(default=0, compare=False)


__all__ = ["FLAG_WORDS", "SCHEME", "TIERS", "TIER_WORDS", "Choice", "Proposal", "Subject", "figure_text", "lowest",
           "rank", "threshold", "tier_for", "tier_words", "title_for"]
