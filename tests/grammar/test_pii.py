"""Validation and masking of phone numbers, ID numbers, names and temperatures."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.pii import (
    INVISIBLE,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    MaskingFilter,
    find_numbers,
    fold_digits,
    is_id_number,
    is_mobile,
    is_valid_temperature,
    mask_id,
    mask_mobile,
    mask_name,
    mask_text,
    public_numbers,
    set_public_numbers,
)
from tests.spelling import (
    FILLER,
    SEPARATORS,
    mobiles,
    spelled_numbers,
    valid_ids,
)

_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_ID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("13800138000", True),
        ("19912345678", True),
        ("12800138000", False),
        ("1380013800", False),
        ("138001380001", False),
        ("138 0013 8000", False),
        ("+8613800138000", False),
        ("", False),
    ],
)
def test_is_mobile(text: str, ok: bool) -> None:
    """Only bare 11-digit mainland mobile numbers pass."""
    assert is_mobile(text) is ok


def test_mask_mobile() -> None:
    """Mobiles keep their first three and last four digits."""
    assert mask_mobile("13800138000") == "138****8000"
    assert mask_mobile("138-0013-8000") == "138****8000"
    assert mask_mobile("+8613800138000") == "138****8000"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("330782199001011239", True),
        ("11010519491231002X", True),
        ("11010519491231002x", True),
        ("440304200002290014", True),
        ("330782199001011234", False),  # wrong check digit
        ("330782199013011230", False),  # month 13
        ("33078219900101123", False),  # 17 characters
        ("33078219900101123X9", False),
        ("330782 19900101 1239", False),
        ("X30782199001011239", False),
    ],
)
def test_is_id_number(text: str, ok: bool) -> None:
    """IDs need 18 characters, a real birth date and the right check character."""
    assert is_id_number(text) is ok


def test_mask_id() -> None:
    """IDs keep the first six and the last four characters."""
    assert mask_id("330782199001011239") == "330782********1239"
    assert mask_id("330782900101123") == "330782*****1123"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("王明", "王*"),
        ("欧阳娜娜", "欧***"),
        ("王小明", "王**"),
        ("潘先生", "潘先生"),
        ("李女士", "李女士"),
        ("张阿姨", "张阿姨"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name: str | None, masked: str) -> None:
    """Names keep the surname; forms of address are already anonymous."""
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("王明 13800138000 来自湖南长沙", "王明 138****8000 来自湖南长沙"),
        ("电话138-0013-8000,体温36.5", "电话138****8000,体温36.5"),
        ("tel 138 0013 8000.", "tel 138****8000."),
        ("身份证330782199001011239", "身份证330782********1239"),
        ("ID 11010519491231002X ok", "ID 110105********002X ok"),
        ("老身份证330782900101123", "老身份证330782*****1123"),
        ("2020年2月20日 验证码 123456 体温 36.8℃", "2020年2月20日 验证码 123456 体温 36.8℃"),
        ("订单号 1380013800012345", "订单号 1380013800012345"),
        ("", ""),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    """Mobiles and IDs are masked in free text; other numbers are left alone."""
    assert mask_text(text) == masked


_noise = st.text(alphabet="0123456789 -Xx,年月日王明:体温.\n", max_size=12)


@given(st.lists(st.one_of(_noise, mobiles, valid_ids()), max_size=8).map("".join))
def test_mask_text_leaves_no_mobile_or_id(text: str) -> None:
    """Whatever surrounds them, no mobile or ID survives mask_text."""
    out = mask_text(text)
    assert not _MOBILE_IN_TEXT.search(out)
    assert not _ID_IN_TEXT.search(out)


@given(st.lists(st.one_of(st.text(max_size=5), mobiles, valid_ids()), max_size=5), mobiles)
def test_mask_text_masks_every_separated_mobile(parts: list[str], mobile: str) -> None:
    """A mobile set off by spaces is masked, whatever else the text holds."""
    text = " ".join([*parts, mobile, *parts])
    assert mask_mobile(mobile) in mask_text(text)
    assert mobile not in mask_text(text)


@given(valid_ids())
def test_generated_ids_are_valid(number: str) -> None:
    """Generated IDs pass; changing the check character makes them fail."""
    assert is_id_number(number)
    for wrong in "0123456789X":
        if wrong != number[-1]:
            assert not is_id_number(number[:-1] + wrong)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (36.5, True),
        (TEMPERATURE_MIN, True),
        (TEMPERATURE_MAX, True),
        (37, True),
        (33.9, False),
        (43.1, False),
        (float("nan"), False),
        (float("inf"), False),
        (True, False),
    ],
)
def test_is_valid_temperature(value: float, ok: bool) -> None:
    """Body temperatures run from 34.0 to 43.0 ℃."""
    assert is_valid_temperature(value) is ok


def test_masking_filter_masks_formatted_message(caplog: pytest.LogCaptureFixture) -> None:
    """The log filter masks numbers that arrive through %-args as well as in the message."""
    logger = logging.getLogger("tests.pii.masking")
    logger.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("tenant %s id %s", "13800138000", "330782199001011239")
            logger.info("raw 139-0579-1234")
    finally:
        logger.filters.clear()
    assert caplog.messages == ["tenant 138****8000 id 330782********1239", "raw 139****1234"]
    assert all(r.args is None for r in caplog.records)


# -- numbers however they are spelled (issue 8, item 4) --------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "139.0579.1234", "139_0579_1234", "139/0579/1234", "(139)05791234", "（139）0579 1234",
        "1 3 9 0 5 7 9 1 2 3 4", "139 05 79 12 34", "139，0579，1234", "139、0579、1234",
        "139-0579-1234", "一三九零五七九一二三四", "幺三九〇五七九幺两三四", "１３９０５７９１２３４",
        "١٣٩٠٥٧٩١٢٣٤", "139\u202e0579\u200b1234", "13\u200d9 0579 12\ufeff34",
        "139 0579 1234 2", "+86 139 0579 1234",
    ],
)
def test_mask_text_finds_spelled_mobiles(spelling: str) -> None:
    """Separators, digit forms and invisible controls do not hide a mobile."""
    out = mask_text(f"请联系{spelling}核实")
    assert "139****1234" in out
    assert find_numbers(out) == []
    assert "13905791234" not in fold_digits(out).replace(" ", "")


@pytest.mark.parametrize(
    ("spelling", "masked"),
    [
        ("110105.19491231.0021", "110105********0021"),
        ("110105 19491231 002X", "110105********002X"),
        ("11010519491231002X", "110105********002X"),
        ("一一〇一〇五一九四九一二三一〇〇二X", "110105********002X"),
        ("110105\u202e19491231002X", "110105********002X"),
    ],
)
def test_mask_text_finds_spelled_ids(spelling: str, masked: str) -> None:
    """An 18-character ID is found however it is cut or spelled."""
    out = mask_text(f"身份证{spelling}，")
    assert out == f"身份证{masked}，"


@pytest.mark.parametrize(
    "text",
    [
        "2020-02-21 20:00 开会", "2月21日 20:00", "2020.02.21 2020.02.22", "体温36.5，37.2，36.8",
        "体温 36.5 37.2 36.8 36.6 37.0", "【通知#12】", "共13户，其中5户已返回", "房间 101 102 103 104 105",
        "1 2 3 4 5 6 7 8 9 10 11 12 13", "订单号 1380013800012345", "电话 0579-85551234",
        "三楼两户一人发热", "第一二三组", "12345 热线", "2020年02月21日 13时05分", "#12 #13 #14",
    ],
)
def test_mask_text_leaves_ordinary_numbers(text: str) -> None:
    """Dates, times, temperatures, notice numbers, counts and landlines are not personal."""
    assert mask_text(text) == text
    assert find_numbers(text) == []


def test_public_numbers_pass() -> None:
    """A configured public number (a hotline) passes in any spelling; others are masked."""
    try:
        set_public_numbers(["13800000000"])
        assert mask_text("热线 138 0000 0000，联系人 13905791234") == (
            "热线 138 0000 0000，联系人 139****1234")
        assert public_numbers() == frozenset({"13800000000"})
    finally:
        set_public_numbers([])
    assert mask_text("热线 13800000000") == "热线 138****0000"


def test_clean_texts_kept_never_a_personal_number() -> None:
    """mask_text keeps the texts it found clean (a notice is masked for each send and each
    echo); a text holding a number is never kept, and a text clean only because of a public
    number is masked again once that number is no longer public."""
    from bot import pii

    notice = "【通知#1】请各房东今晚20:00前完成楼道消毒。"
    assert mask_text(notice) == notice and notice in pii._CLEAN
    assert mask_text(notice) is notice
    leaky = "联系人 13905791234 体温36.5"
    assert mask_text(leaky) == "联系人 139****1234 体温36.5"
    assert not any("13905791234" in kept for kept in pii._CLEAN)
    try:
        set_public_numbers(["13800000000"])
        assert mask_text("热线 13800000000") == "热线 13800000000"
    finally:
        set_public_numbers([])
    assert mask_text("热线 13800000000") == "热线 138****0000"


@pytest.mark.parametrize(("text", "masked"), [
    ("(\u200b138)1234 5678", "138****5678"),
    # Found by the property below: an ID number in Arabic-Indic digits, a zero-width space
    # between the bracket and its first digit; the bracket was left behind.
    ("(\u200b\u0661\u0660\u0660)\u0660\u0660\u0660\u0662\u0660\u0660\u0660\u0660"
     "\u0661\u0660\u0661\u0660\u0660\u0660\u0669", "100000********0009"),
])
def test_a_bracket_opening_a_number_goes_with_it_across_invisible_controls(
        text: str, masked: str) -> None:
    assert mask_text(text) == masked


@given(FILLER, spelled_numbers, FILLER)
def test_spelled_numbers_are_masked(before: str, found: tuple[str, str], after: str) -> None:
    """Whatever the spelling, the number is replaced by its masked form and nothing of it can
    be found again."""
    number, spelling = found
    out = mask_text(before + spelling + after)
    assert find_numbers(out) == []
    masked = mask_mobile(number) if len(number) == 11 else mask_id(number)
    # An invisible control in front of the first digit is not part of the number.
    assert "".join(c for c in out if c not in INVISIBLE) == before + masked + after


@given(st.lists(st.one_of(st.text(max_size=6), spelled_numbers.map(lambda f: f[1]),
                          st.sampled_from(SEPARATORS)), max_size=8).map("".join))
def test_mask_text_is_idempotent_and_complete(text: str) -> None:
    """Masked text holds nothing the detector finds, and masking it again changes nothing."""
    out = mask_text(text)
    assert find_numbers(out) == []
    assert mask_text(out) == out
