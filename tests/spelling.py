"""Hypothesis strategies that spell mobiles and ID numbers the ways people get around masking."""

from __future__ import annotations

import datetime

from hypothesis import strategies as st

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Independent of bot.pii on purpose: GB 11643's check character table.
_CHECK = "10X98765432"

_FORMS = {
    "ascii": "0123456789",
    "fullwidth": "０１２３４５６７８９",
    "arabic_indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
    "chinese": "零一二三四五六七八九",
    "chinese_alt": "〇幺两三四五六七八九",
}
SEPARATORS = [".", "_", "/", " ", "，", "、", "-", "  ", " - ", ",", "·"]
INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c",
              "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff"]
# Chinese filler without numerals, digits or separators.
FILLER = st.text(alphabet="请联系房东租客核实返回体温通知反馈答复电话号码身份证的了在家", max_size=6)

mobiles = st.from_regex(r"\A1[3-9][0-9]{9}\Z")


def with_check(first17: str) -> str:
    """Complete 17 digits with their check character."""
    return first17 + _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    """A valid 18-character ID number."""
    area = draw(st.from_regex(r"\A[1-9][0-9]{5}\Z"))
    born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)))
    seq = draw(st.from_regex(r"\A[0-9]{3}\Z"))
    return with_check(f"{area}{born:%Y%m%d}{seq}")


@st.composite
def spelled(draw: st.DrawFn, number: str) -> str:
    """`number` in one digit form (or mixed), cut into groups with separators and invisible
    controls between or inside them."""
    mixed = draw(st.booleans())
    form = draw(st.sampled_from(sorted(_FORMS)))
    out: list[str] = []
    cuts = draw(st.sets(st.integers(1, len(number) - 1), max_size=len(number) - 1))
    sep = draw(st.sampled_from(SEPARATORS))
    for i, ch in enumerate(number):
        if i in cuts:
            out.append(draw(st.sampled_from(SEPARATORS)) if mixed else sep)
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(INVISIBLES)))
        if ch in "Xx":
            out.append(ch)
        else:
            f = draw(st.sampled_from(sorted(_FORMS))) if mixed else form
            out.append(_FORMS[f][int(ch)])
    text = "".join(out)
    if len(cuts) == 1 and draw(st.booleans()):
        # (139)05791234
        first = min(cuts)
        text = "(" + text.replace(sep, ")", 1) if text.count(sep) == 1 and first == 3 else text
    return text


personal_numbers = st.one_of(mobiles, valid_ids())
spelled_numbers = personal_numbers.flatmap(lambda n: spelled(n).map(lambda s: (n, s)))
