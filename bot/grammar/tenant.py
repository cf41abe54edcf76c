"""租客返回 and its everyday forms: a tenant's return with name, mobile, origin and arrival."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from bot.grammar.commands import Arrival, Command, MyTenants, TenantReturn
from bot.grammar.core import (
    END_PUNCT,
    HAN,
    HONORIFIC,
    SPLIT,
    STRIP,
    UNIT,
    ParseError,
    Step,
    by_length,
    fixed,
    fuzzy_keyword,
    is_name,
    is_place,
    keyword,
    looks_like_place,
    on_plain,
)
from bot.grammar.times import ARRIVAL, arrival_from
from bot.pii import is_id_number, is_mobile, is_valid_temperature

# --- tenant return ---------------------------------------------------------------------------

_RETURN_FORMAL = by_length(
    "租客返回登记", "租客返回", "租客登记", "返回登记", "返乡登记", "返义登记", "登记返回",
    "返回报备", "返义报备", "租客回来",
    # Common slips of the pinyin keyboard.
    "租客反回", "反回登记", "返回等记", "租客返会",
)
_RETURN_ANNOUNCE = by_length(
    "本人已返回", "我已经返回", "我已经回来了", "我已经回来", "我已返回", "我已回来", "我回来了",
    "我已返义", "已返回", "已回来", "已返义",
)
_RETURN_WORD = re.compile(
    r"回来|返回|返义|返乡|来自|抵达|到达|回到|(?:回|到|来)义乌"
    # 江西赣州来的, 从河南信阳来: where someone came from, said with 来 alone.
    f"|[{HAN}]来的|从[{HAN}]{{2,10}}?过?来"
    # 2月20日到, 今天到: an arrival, said with 到 alone after when.
    r"|(?:[0-9]日|[0-9]号|今天|今日|昨天|昨晚|刚刚|刚)到(?![0-9])")
# 我老公今天回来: a family member is named by who they are to the writer, not by a name.
# Seen after _strip_name_prefix, so 我妈 is 妈.
_KIN = frozenset({"老公", "老婆", "爱人", "媳妇", "丈夫", "妻子", "儿子", "女儿", "孩子", "小孩",
                  "家人", "朋友", "同事", "室友", "妈妈", "爸爸", "妈", "爸", "老妈", "老爸",
                  "弟弟", "妹妹", "哥哥", "姐姐", "亲戚"})

_ID_LABELLED = re.compile(r"身份证(?:号码|号)?\s*:?\s*(?P<v>[0-9Xx]*)", re.ASCII)
_ID_BARE = re.compile(r"(?<![0-9])(?P<v>[0-9]{17}[0-9Xx])(?![0-9])", re.ASCII)
_MOBILE_FIELD = re.compile(
    r"(?:(?:联系电话|电话号码|手机号码|手机号|电话|手机|联系方式|tel|phone|号码)\s*:?\s*)?"
    r"(?<![0-9.])(?:\+?86[\s-]?)?(?P<v>1[0-9]{2}(?:[\s-]?[0-9]{4}){2})(?![0-9])",
    re.ASCII | re.IGNORECASE,
)
_MOBILE_LIKE = re.compile(r"(?<![0-9])1[0-9]{2}(?:[\s-]?[0-9]{4}){2}(?![0-9])", re.ASCII)
_MOBILE_LABEL = re.compile(r"电话|手机|tel|phone", re.IGNORECASE)
_LONG_NUMBER = re.compile(r"(?<![0-9.])[0-9]{7,}(?![0-9.])", re.ASCII)
_RETURN_TEMP = re.compile(
    r"(?:体温|测温|温度)\s*:?\s*(?P<a>[0-9]{1,3}(?:[.。][0-9]{1,2})?)(?![0-9])\s*" + f"{UNIT}?"
    r"|(?<![0-9.])(?P<b>[0-9]{2,3}(?:[.。][0-9]{1,2})?)\s*(?:°C|°c|℃|度|°)"
    r"|(?<![0-9.:/-])(?P<c>[34][0-9][.。][0-9]{1,2})(?![0-9.])",
    re.ASCII,
)

_NAME_PREFIXES = by_length(
    "姓名", "名字", "租客", "房客", "我是", "本人", "我已经", "我已", "我刚", "我", "刚刚", "刚",
    "已经", "已", "我叫", "名叫", "叫做", "叫", "本人是", "新来的", "新搬来的",
)
# 201的, 3楼的, 302室: where someone lives, said before their name (我是201的租客小王).
_FLAT_PREFIX = re.compile(r"^[0-9A-Za-z]{1,5}(?:室|号|房|楼|栋|幢)?的?")
# Greetings are never a name: 各位好, 大家好, 您好, 房东早上好.
_GREETING = re.compile(
    r"(?:各位|大家|诸位|你们|您|你|房东|老板|领导|群主)(?:早上|上午|中午|下午|晚上)?好(?:啊|呀|哦)?"
)
# 来源地 河南许昌, 老家 安徽: a label written apart from its place.
_ORIGIN_LABEL = re.compile(r"(来自|来源地|来源|出发地|始发地|籍贯|老家是|老家在|老家)\s+(?=\S)")
# 安徽阜阳的, 长沙那边, 河南许昌啊: what people put after a place.
_ORIGIN_TAIL = re.compile(r"(?:那边|那里|这边|的|了|啊|呀|哦|吧)+$")
_FILLERS = frozenset({
    "电话", "手机", "手机号", "联系电话", "身份证", "身份证号", "体温", "测温", "温度", "到达",
    "抵达", "到", "时间", "到达时间", "抵达时间", "返回时间", "了", "回来", "回来了", "返回",
    "返回了", "登记", "租客", "房东", "来自", "从", "老家", "大家好", "你好", "您好", "谢谢",
    "收到", "度", "号", "义乌", "到义乌", "到达义乌", "抵达义乌", "回义乌", "返回义乌", "返义",
})
_ORIGIN_SUFFIX = (
    r"(?:(?:回来|返回|返义|返乡|过来|出发|回到|到达|抵达|来到|回|来|到)(?:义乌)?|来的)"
)
_ORIGIN_MARKED = (
    re.compile(f"(?:来自|来源地|来源|出发地|始发地|从)(?P<o>[{HAN}]+?){_ORIGIN_SUFFIX}?了?的?"),
    re.compile(f"(?P<o>[{HAN}]+?){_ORIGIN_SUFFIX}了?的?"),
    re.compile(f"老家(?:是|在)?(?P<o>[{HAN}]+)"),
    # 湖南邵阳人: where someone is from, said as what they are (only a clear place).
    re.compile(f"(?P<o>[{HAN}]{{2,}}?)人"),
)


@dataclass
class _Fields:
    """What a return message said, gathered before the command is built."""

    problems: list[str] = field(default_factory=list)
    mobile: str | None = None
    id_number: str | None = None
    temperature: float | None = None
    arrival: Arrival | None = None
    name: str | None = None
    origin: str | None = None
    origin_marked: bool = False
    kin: bool = False  # someone named as 老公, 儿子: their name is still to be written


def _cut(text: str, m: re.Match[str]) -> str:
    """Text with a match replaced by a space, so its neighbours stay separate words."""
    return text[: m.start()] + " " + text[m.end():]


def _take_id(work: str, f: _Fields) -> str:
    """Take an optional ID number; a wrong one is a problem, not silently dropped."""
    m = _ID_LABELLED.search(work)
    if m is None:
        m = _ID_BARE.search(work)
    if m is None:
        return work
    value = m.group("v").upper()
    if value:
        if is_id_number(value):
            f.id_number = value
        else:
            f.problems.append("id_invalid")
    return _cut(work, m)


def _take_mobile(work: str, f: _Fields) -> str:
    """Take the first mobile number (spaces or dashes inside are fine)."""
    m = _MOBILE_FIELD.search(work)
    if m is not None:
        digits = re.sub(r"[^0-9]", "", m.group("v"))
        if is_mobile(digits):
            f.mobile = digits
        else:
            f.problems.append("mobile_not_mobile" if len(digits) == 11 else "mobile_invalid")
        return _cut(work, m)
    long = _LONG_NUMBER.search(work)
    if long is not None and len(long.group()) == 11:
        f.problems.append("mobile_not_mobile")  # 23812345678 has 11 digits, but is no mobile
    elif long is not None or _MOBILE_LABEL.search(work):
        f.problems.append("mobile_invalid")
    else:
        f.problems.append("mobile_missing")
    return work


def _take_temperature(work: str, f: _Fields) -> str:
    """Take an optional temperature; it is validated like a 体温 report."""
    m = _RETURN_TEMP.search(work)
    if m is None:
        return work
    num = m.group("a") or m.group("b") or m.group("c") or ""
    value = float(num.replace("。", "."))
    if is_valid_temperature(value):
        f.temperature = value
    else:
        f.problems.append("temperature_range")
    return _cut(work, m)



def _take_arrival(work: str, f: _Fields) -> str:
    """Take an optional arrival date and time (2月20日凌晨4点, 昨晚10点, 2/20 4:30)."""
    for m in ARRIVAL.finditer(work):
        g = m.groupdict()
        if not any(g[k] for k in ("m", "m2", "d3", "rel", "h")):
            continue
        arrival = arrival_from(m)
        if arrival is None:
            f.problems.append("arrival_invalid")
        else:
            f.arrival = arrival
        return _cut(work, m)
    return work


def _strip_name_prefix(token: str) -> str:
    """Drop words like 姓名 / 租客 / 我是 / 201的 that people put before a name or a place."""
    changed = True
    while changed:
        changed = False
        for prefix in _NAME_PREFIXES:
            if token.startswith(prefix) and len(token) > len(prefix):
                token = token[len(prefix):]
                changed = True
                break
        flat = _FLAT_PREFIX.match(token)
        if flat is not None and flat.end() and flat.end() < len(token):
            token = token[flat.end():]
            changed = True
    return token


def _marked_origin(token: str) -> tuple[str, bool] | None:
    """The place in 来自X / 从X回来 / X返回 / 老家X, and whether it is surely a place."""
    for pattern in _ORIGIN_MARKED:
        m = pattern.fullmatch(token)
        if m is None:
            continue
        place = _ORIGIN_TAIL.sub("", m.group("o"))
        if place.startswith("老家") and len(place) > 3:
            place = place[2:]  # 从老家湖北黄冈回来
        if pattern is _ORIGIN_MARKED[1] and "从" in place[1:]:
            # 坐火车从江西赣州回到义乌: the place is what follows 从, and 从 marks it.
            place = place.rsplit("从", 1)[1]
            if is_place(place) and place not in _FILLERS:
                return place, True
            continue
        if pattern is _ORIGIN_MARKED[3] and not looks_like_place(place):
            continue  # 主人, 客人, 家人
        if is_place(place) and place not in _FILLERS:
            # 长沙回来 and 王明回来 look alike; only a 来自/从 marker or a clear place is sure.
            sure = pattern is not _ORIGIN_MARKED[1] or looks_like_place(place)
            return place, sure or not is_name(place)
    return None


def _take_words(work: str, f: _Fields, *, announce: bool) -> None:
    """Find the name and the origin among the remaining words."""
    plain: list[str] = []
    for raw in SPLIT.split(work):
        token = _strip_name_prefix(raw.strip(STRIP))
        if not token or token in _FILLERS or "体温" in token:
            continue
        marked = _marked_origin(token)
        if marked is not None:
            if f.origin is None:
                f.origin, f.origin_marked = marked
            continue
        plain.append(token)
    for token in plain:
        if token in _KIN:
            f.kin = True
            continue
        # 老公王强: who they are to the writer, then their name.
        token = next((token[len(k):] for k in _KIN
                      if token.startswith(k) and is_name(token[len(k):])), token)
        if f.name is None and is_name(token) and not looks_like_place(token):
            # 我回来了 长沙 138...: the sender is the tenant, so a lone word is the place.
            lone = announce and f.origin is None and len(plain) == 1
            if lone and HONORIFIC.fullmatch(token) is None:
                f.origin = token
            else:
                f.name = token
        elif f.origin is None and is_place(token):
            f.origin = token
            # 湖北武汉: a province or a 市/县 is surely a place, even with no 来自 before it.
            f.origin_marked = looks_like_place(token)


def parse_return_args(
    rest: str, *, announce: bool, landlord: bool, freeform: bool = False
) -> Command | None:
    """Name, mobile, origin, arrival, temperature and ID of a return, in any order."""
    f = _Fields()
    work = _ORIGIN_LABEL.sub(r"\1", _GREETING.sub(" ", f" {rest} "))
    work = _take_id(work, f)
    work = _take_mobile(work, f)
    work = _take_temperature(work, f)
    work = _take_arrival(work, f)
    _take_words(work, f, announce=announce)
    if freeform and not f.origin_marked:
        return None  # a number and 回来 in passing is not yet a registration
    if f.origin is None:
        f.problems.append("origin_missing")
    if (landlord or f.kin) and f.name is None:
        f.problems.append("name_missing")
    if f.problems or f.mobile is None:
        raise ParseError.of("TenantReturn", f.problems[0] if f.problems else "mobile_missing")
    try:
        return TenantReturn(
            name=f.name, mobile=f.mobile, origin=f.origin, arrival=f.arrival,
            temperature=f.temperature, id_number=f.id_number, landlord_form=landlord,
        )
    except ValidationError as exc:
        raise ParseError.of("TenantReturn", "格式不正确") from exc


# 登记：王丽 138… 湖南衡阳, 我要登记 …: the bare word only before a mobile (登记了吗 is chatter).
_REGISTER = by_length("登记", "我要登记", "帮我登记", "麻烦登记", "请登记", "登记一下",
                      "麻烦登记一下", "帮我登记一下")


def _parse_return(text: str) -> Command | None:
    """租客返回 … / 返回登记 … / 我回来了 … / 登记 王丽 138… 湖南衡阳."""
    found = keyword(text, _REGISTER)
    if found is not None and found[1] and _MOBILE_LIKE.search(found[0]):
        return parse_return_args(found[0], announce=False, landlord=False)
    for keywords, announce in ((_RETURN_FORMAL, False), (_RETURN_ANNOUNCE, True)):
        # 租客反回, 返回等记: the formal keywords forgive one mistyped character.
        found = keyword(text, keywords)
        if found is None and not announce:
            found = fuzzy_keyword(text, ("租客返回", "返回登记", "租客登记"))
        if found is None:
            continue
        rest, apart = found
        if rest.startswith("了"):
            rest = rest[1:]
            apart = True
        if not apart and not _MOBILE_LIKE.search(rest):
            return None  # 我回来了吗, 已返回的租客请登记
        return parse_return_args(rest, announce=announce, landlord=False)
    return None


# 姓名：陈晨 电话：138… 从哪里来：江西九江: a registration written as a form, its labels
# followed by colons (normalised to ':'); the place's label as the parser knows it.
_FORM_NAME = re.compile(r"(?:姓名|名字)\s*:")
_FORM_ORIGIN = re.compile(
    r"(?:从哪里来|从哪儿来|从哪来|从何地来|从何处来|来源地|户籍地|出发地|来源|户籍)\s*(?=:)")


def _parse_freeform_return(text: str) -> Command | None:
    """王明 13800138000 湖南长沙回来: a return announced without a keyword; or one written as
    a form (姓名：… 电话：… 来自：…)."""
    m = _MOBILE_LIKE.search(text)
    if m is None or not is_mobile(re.sub(r"[^0-9]", "", m.group())):
        return None
    if _FORM_NAME.search(text):
        return parse_return_args(_FORM_ORIGIN.sub("来自", text), announce=True, landlord=False)
    if not _RETURN_WORD.search(text):
        return None
    return parse_return_args(text, announce=True, landlord=False, freeform=True)



_MY_TENANTS = re.compile(
    r"(?:看看|看一下|查一下|查查|查看|查询)?"
    r"(?:我的租客|租客列表|我的房客|房客列表|租客名单|查看租客|查询租客)"
    r"(?:有哪些|有谁|名单|列表)?" + END_PUNCT
)

STEPS = (
    fixed(30, _MY_TENANTS, MyTenants),
    Step(60, on_plain(_parse_return)),
    Step(900, on_plain(_parse_freeform_return)),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("租客返回 王明 13800000000 来自湖南长沙", TenantReturn),
    ("各位好，我是201的租客小王，今天从湖北孝感回来了，电话13800000000", TenantReturn),
    ("我的租客", MyTenants),
)
