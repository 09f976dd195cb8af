"""The one normalizer (design.md, "Normalization") and masking (design.md, "Personal data")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from regsync.domain.masking import keyed_hash, mask_id_number, mask_phone, mask_text
from regsync.domain.normalize import (
    NormalizationError,
    legacy_to_18,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    normalize_text,
    normalize_uscc,
    strip_format_chars,
)

VALID = "11010519491231002X"  # GB 11643-1999's own example


@pytest.mark.parametrize(("raw", "expected"), [
    (VALID, VALID),
    ("11010519491231002x", VALID),                      # lowercase x
    ("１１０１０５１９４９１２３１００２Ｘ", VALID),      # full-width digits and letter
    (" 110105 19491231 002X ", VALID),                   # spaces
    ("110105491231002", VALID),                            # 15-digit legacy number
])
def test_id_number_dirt_a_standard_lets_us_fix(raw: str, expected: str) -> None:
    assert normalize_id_number("RESIDENT_ID", raw) == expected
    assert ric.is_valid(expected) or ric.calc_check_digit(expected) == expected[-1]


def test_legacy_conversion_computes_the_check_character() -> None:
    converted = legacy_to_18("230102900101123")
    assert converted[:6] == "230102" and converted[6:8] == "19" and len(converted) == 18
    assert ric.calc_check_digit(converted) == converted[-1]


@pytest.mark.parametrize("raw", ["110105194912310021", "11010519491231002", "1101051949123100XX",
                                 "110105194913310025", ""])
def test_id_number_dirt_no_standard_fixes(raw: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_id_number("RESIDENT_ID", raw)
    assert exc.value.code == "INVALID_ID_NUMBER"


def test_other_documents_are_only_cleaned() -> None:
    assert normalize_id_number("PASSPORT", " e1234567８ ") == "E12345678"


@pytest.mark.parametrize(("raw", "expected"), [
    ("买买提•艾力", "买买提·艾力"), ("买买提．艾力", "买买提·艾力"), ("买买提・艾力", "买买提·艾力"),
    ("买买提 · 艾力", "买买提·艾力"), (" 张三 ", "张三"), ("𠀋伟", "𠀋伟"),
])
def test_names(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("13912345678", "13912345678"), ("+86 139 1234 5678", "13912345678"), ("139-1234-5678", "13912345678"),
    ("００８６１３９１２３４５６７８", "13912345678"), ("", None), ("   ", None), (None, None),
])
def test_mobiles(raw, expected) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["1391234567", "23912345678", "0451-86123456"])
def test_bad_mobiles(raw: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_phone(raw)
    assert exc.value.code == "INVALID_PHONE"


def test_landlines_for_org_contacts() -> None:
    assert normalize_phone("0451 - 86123456", landline_ok=True) == "0451-86123456"
    assert normalize_phone("(0451)86123456", landline_ok=True) == "0451-86123456"


def test_uscc() -> None:
    assert normalize_uscc(" 91230100 mA1234567x ") == "91230100MA1234567X"


def test_masks() -> None:
    assert mask_id_number("23010219900101123X") == "230102********123X"
    assert mask_id_number("E12345678") == "*****5678"
    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("0451-86123456") == "0451-****3456"
    text = "vol 23010219900101123X tel 13912345678 office 0451-86123456"
    masked = mask_text(text)
    assert "23010219900101123X" not in masked and "13912345678" not in masked and "86123456" not in masked
    assert "230102********123X" in masked and "139****5678" in masked


def test_keyed_hash_depends_on_key_and_value() -> None:
    assert keyed_hash("k", "13912345678") == keyed_hash("k", "13912345678")
    assert keyed_hash("k", "13912345678") != keyed_hash("other", "13912345678")
    assert keyed_hash("k", None) is None


@given(st.dates(min_value=__import__("datetime").date(1900, 1, 1),
                max_value=__import__("datetime").date(1999, 12, 31)),
       st.integers(0, 999))
def test_legacy_and_modern_forms_normalize_alike(birth, seq) -> None:
    body15 = f"230102{birth:%y%m%d}{seq:03d}"
    full = legacy_to_18(body15)
    assert normalize_id_number("RESIDENT_ID", body15) == full
    assert normalize_id_number("RESIDENT_ID", full.lower()) == full


def test_request_ids_and_other_hex_are_not_taken_for_phones() -> None:
    assert mask_text("requestId=4aeae085-00000002") == "requestId=4aeae085-00000002"
    assert mask_text("id d7e53e77-13912345678x") == "id d7e53e77-13912345678x"


#: Every character of general category Cf met in pasted text: zero-width space, ZWNJ, ZWJ, LRM, RLM, the bidi
#: embeddings and overrides, word joiner, the isolates, BOM, soft hyphen, Mongolian vowel separator.
FORMAT_CHARS = ("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
                "\ufeff\u00ad\u180e")


def test_every_character_that_does_not_print_is_removed_and_nothing_else() -> None:
    import unicodedata

    assert all(unicodedata.category(c) == "Cf" for c in FORMAT_CHARS)
    assert strip_format_chars(f"李{FORMAT_CHARS}明") == "李明"
    assert strip_format_chars("Ａ·𠀋 x\t") == "Ａ·𠀋 x\t"  # what prints (and ASCII controls) is the caller's matter


@pytest.mark.parametrize("cf", list(FORMAT_CHARS))
def test_characters_that_do_not_print_are_removed_from_every_kind_of_value(cf: str) -> None:
    assert normalize_name(f"{cf}买买提{cf}•艾力 {cf}") == "买买提·艾力"
    assert normalize_name(f"John{cf} Smith") == "John Smith"
    assert normalize_id_number("RESIDENT_ID", f"{cf}{VALID[:9]}{cf}{VALID[9:]}{cf}") == VALID
    assert normalize_id_number("PASSPORT", f"E1234{cf}5678") == "E12345678"
    assert normalize_phone(f"{cf}139 {cf}1234 5678") == "13912345678"
    assert normalize_phone(f"(0451){cf}86123456", landline_ok=True) == "0451-86123456"
    assert normalize_phone(cf) is None
    assert normalize_uscc(f"{cf}51230100mj0000001x") == "51230100MJ0000001X"
    assert normalize_text(f" 社区{cf}活动{cf} ") == "社区活动"
    assert normalize_text(f"ＡＢ{cf}") == "AB"


def test_a_name_of_characters_that_do_not_print_only_is_empty() -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_name(f" {FORMAT_CHARS} ")
    assert exc.value.code == "INVALID_NAME"


def test_comparisons_ignore_characters_that_do_not_print() -> None:
    from regsync.domain.normalize import canonical_text
    from regsync.domain.projection import canonical

    assert canonical_text(f"王{FORMAT_CHARS}芳 ") == canonical_text("王芳")
    dirty = {"name": f"测试{FORMAT_CHARS}组织", "contact_name": "\u202e王芳\u202c",
             "service_categories": ["社\u200b区"]}
    clean = {"name": "测试组织", "contact_name": "王芳", "service_categories": ["社区"]}
    assert canonical(dirty, "k") == canonical(clean, "k")
