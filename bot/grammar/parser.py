"""Parse normalised chat text into a command model; None for chatter, ParseError for bad input."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from bot.grammar.commands import (
    Arrival,
    BindGroup,
    BindPerson,
    Command,
    Help,
    LandlordReport,
    MyTenants,
    ReportKind,
    Temperature,
    TenantReturn,
)
from bot.grammar.normalise import normalise
from bot.grammar.usage import hint
from bot.pii import is_id_number, is_mobile, is_valid_temperature

__all__ = ["ParseError", "parse"]


class ParseError(Exception):
    """The text is meant as a command but its arguments are wrong; `hint` says how to fix it."""

    def __init__(self, command: str, hint: str) -> None:
        super().__init__(hint)
        self.command = command
        self.hint = hint

    @classmethod
    def of(cls, command: str, problem: str) -> ParseError:
        """Build the error for a command class name and a usage.PROBLEMS key."""
        return cls(command, hint(command, problem))


# --- shared vocabulary -----------------------------------------------------------------------

_HAN = "\u4e00-\u9fff"
# Characters that may separate a keyword from its arguments.
_SEPARATORS = " ,:;。!?~/|()[]【】<>《》\"'“”‘’…"
_STRIP = _SEPARATORS + "-—.·"
_SPLIT = re.compile(r"[\s,:;。!?~/|()\[\]【】<>《》\"'“”‘’…]+")
_END_PUNCT = r"[?!。.~]*"

_TIME_WORDS = (
    "今天", "今日", "今早", "今晨", "今晚", "昨天", "昨日", "昨晚", "前天", "前日", "前晚",
    "明天", "凌晨", "清晨", "早上", "早晨", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "半夜",
)
# Words that occur in commands and chat but never in a person's name.
_NOT_NAME_PARTS = _TIME_WORDS + (
    "电话", "手机", "号码", "来自", "体温", "测温", "租客", "房东", "房客", "返回", "回来", "登记",
    "身份", "义乌", "姓名", "名字", "到达", "抵达", "老家", "时间", "地址", "消毒", "上报", "大家",
    "谢谢", "收到", "正常", "什么", "怎么", "我", "你", "他们", "吗", "呢", "吧", "了", "的",
)
_NOT_PLACE_PARTS = _TIME_WORDS + (
    "电话", "手机", "体温", "测温", "租客", "房东", "登记", "身份证", "谢谢", "收到", "我", "你",
    "吗", "呢", "吧", "什么", "怎么", "姓名", "名字",
)
_HONORIFIC = re.compile(
    f"[{_HAN}]{{1,2}}(?:先生|女士|小姐|阿姨|叔叔|师傅|老师|大爷|大妈|大姐|大哥|老板|老板娘|"
    "奶奶|爷爷|伯伯|婶婶|同学)"
)
_PLAIN_NAME = re.compile(f"[{_HAN}]{{2,4}}|[{_HAN}]{{1,6}}·[{_HAN}]{{1,8}}")
_PLACE = re.compile(f"[{_HAN}]{{2,20}}")
_PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
    "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港",
    "澳门",
)
_PLACE_SUFFIXES = "省市县区州镇乡村旗盟"


def _is_name(s: str) -> bool:
    """Whether s reads as a person's name (2–4 Chinese characters, or 潘先生-style)."""
    if any(part in s for part in _NOT_NAME_PARTS):
        return False
    return _PLAIN_NAME.fullmatch(s) is not None or _HONORIFIC.fullmatch(s) is not None


def _is_place(s: str) -> bool:
    """Whether s can be a place name (Chinese characters, no chat or time words)."""
    return _PLACE.fullmatch(s) is not None and not any(p in s for p in _NOT_PLACE_PARTS)


def _looks_like_place(s: str) -> bool:
    """Whether s is clearly a place rather than a name (province, 市/县/区 suffix, long)."""
    return _is_place(s) and (
        s.startswith(_PROVINCES) or s[-1] in _PLACE_SUFFIXES or len(s) >= 5
    )


def _keyword(text: str, keywords: tuple[str, ...]) -> tuple[str, bool] | None:
    """If text starts with a keyword: (arguments, whether they are set apart from it)."""
    for kw in keywords:
        if text[: len(kw)].lower() == kw:
            rest = text[len(kw):]
            # Mobile users glue arguments to the keyword: 体温36.6, 绑定A7K2Q9.
            apart = not rest or rest[0] in _SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
            return rest.strip(_STRIP), apart
    return None


def _by_length(*words: str) -> tuple[str, ...]:
    """Keywords longest first, so 绑定群 wins over 绑定."""
    return tuple(sorted(words, key=len, reverse=True))


# --- help, my tenants, bind ------------------------------------------------------------------

_HELP = re.compile(
    r"/?(?:帮助|help|菜单|命令|功能|使用帮助|帮助菜单|功能菜单|命令列表|使用说明|\?)" + _END_PUNCT,
    re.IGNORECASE,
)
_MY_TENANTS = re.compile(
    r"(?:我的租客|租客列表|我的房客|房客列表|租客名单|查看租客|查询租客)" + _END_PUNCT
)
_CODE = re.compile(r"[A-Za-z0-9]{4,12}", re.ASCII)
_ALNUM = re.compile(r"[A-Za-z0-9]+", re.ASCII)


def _parse_bind(text: str) -> Command | None:
    """绑定 / 绑定群 / 群绑定 followed by a code."""
    cls: type[BindPerson | BindGroup] = BindGroup
    found = _keyword(text, ("绑定群", "群绑定"))
    if found is None:
        cls, found = BindPerson, _keyword(text, ("绑定",))
    if found is None:
        return None
    rest, apart = found
    if not apart:
        return None  # 绑定好了吗: chat about binding
    name = cls.__name__
    if not rest:
        raise ParseError.of(name, "code_missing")
    compact = rest.replace(" ", "")
    code = compact if _ALNUM.fullmatch(compact) else rest.split(" ")[0].strip(_STRIP)
    if not _CODE.fullmatch(code):
        raise ParseError.of(name, "code_invalid")
    return cls(code=code.upper())


# --- temperature -----------------------------------------------------------------------------

_TEMP_KEYWORD = re.compile(
    r"(?:今日|今天|每日|今早|今晚|早上|早晨|上午|中午|下午|晚上|我的|本人)?\s*(?:上报)?\s*"
    r"(?:量体温|体温|测温)"
)
_TEMP_NAME_FIRST = re.compile(f"(?P<name>[{_HAN}·]{{2,8}}?)\\s*(?:今日|今天)?(?:体温|测温)")
_UNIT = r"(?:°C|°c|℃|度|°|C|c)"
_TEMP_VALUE = re.compile(
    r"(?<![0-9.])(?P<num>[0-9]{1,3}(?:[.。][0-9]{1,2})?)(?![0-9])\s*" + f"(?P<unit>{_UNIT})?",
    re.ASCII,
)
_TEMP_FILLERS = frozenset({"", "正常", "无异常", "良好", "已测", "无症状", "左右", "度"})
_DIGIT = re.compile(r"[0-9]", re.ASCII)


def _temperature_value(num: str, command: str) -> float:
    """The temperature a number denotes, or ParseError when outside the plausible range."""
    value = float(num.replace("。", "."))
    if not is_valid_temperature(value):
        raise ParseError.of(command, "temperature_range")
    return value


def _parse_temperature_args(rest: str, apart: bool, name: str | None) -> Command | None:
    """[name] 36.6 [度], after a temperature keyword."""
    m = _TEMP_VALUE.search(rest)
    if m is None:
        if apart:
            raise ParseError.of("Temperature", "temperature_missing")
        return None  # 体温正常, 体温多少算发烧
    before = rest[: m.start()].strip(_STRIP)
    after = rest[m.end():].strip(_STRIP)
    if before:
        if name is None and _is_name(before):
            name = before
        elif _DIGIT.search(before):
            return None
    if after not in _TEMP_FILLERS:
        if name is None and _is_name(after):
            name = after
        else:
            return None  # more than one reading, or a question: not a plain report
    value = _temperature_value(m.group("num"), "Temperature")
    return Temperature(value=value, name=name)


def _parse_temperature(text: str) -> Command | None:
    """体温 36.6 / 今日体温36.5℃ / 测温 36.7 / 体温 王明 36.6."""
    m = _TEMP_KEYWORD.match(text)
    if m is None:
        return None
    rest = text[m.end():]
    apart = not rest or rest[0] in _SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return _parse_temperature_args(rest.strip(_STRIP), apart, None)


def _parse_named_temperature(text: str) -> Command | None:
    """王明 体温36.6: a landlord reporting for a named tenant."""
    m = _TEMP_NAME_FIRST.match(text)
    if m is None or not _is_name(m.group("name")):
        return None
    rest = text[m.end():]
    apart = not rest or rest[0] in _SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return _parse_temperature_args(rest.strip(_STRIP), apart, m.group("name"))


# --- tenant return ---------------------------------------------------------------------------

_RETURN_FORMAL = _by_length(
    "租客返回登记", "租客返回", "租客登记", "返回登记", "返乡登记", "返义登记", "登记返回",
    "返回报备", "返义报备", "租客回来",
    # Common slips of the pinyin keyboard.
    "租客反回", "反回登记", "返回等记", "租客返会",
)
_RETURN_ANNOUNCE = _by_length(
    "本人已返回", "我已经返回", "我已经回来了", "我已经回来", "我已返回", "我已回来", "我回来了",
    "我已返义", "已返回", "已回来", "已返义",
)
_RETURN_WORD = re.compile(r"回来|返回|返义|返乡|来自|抵达|到达|回到")

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
    r"(?:体温|测温|温度)\s*:?\s*(?P<a>[0-9]{1,3}(?:[.。][0-9]{1,2})?)(?![0-9])\s*" + f"{_UNIT}?"
    r"|(?<![0-9.])(?P<b>[0-9]{2,3}(?:[.。][0-9]{1,2})?)\s*(?:°C|°c|℃|度|°)"
    r"|(?<![0-9.:/-])(?P<c>[34][0-9][.。][0-9]{1,2})(?![0-9.])",
    re.ASCII,
)
_ARRIVAL = re.compile(
    r"(?:"
    r"(?:(?P<y>[0-9]{4})\s*年\s*)?(?P<m>[0-9]{1,2})\s*月\s*(?:(?P<d>[0-9]{1,2})\s*[日号]?)?"
    r"|(?<![0-9/.-])(?:(?P<y2>[0-9]{4})[/-])?(?P<m2>[0-9]{1,2})[/-](?P<d2>[0-9]{1,2})(?![0-9/-])"
    r"|(?<![0-9月.])(?P<d3>[0-9]{1,2})\s*[日号](?!楼|栋|房|室|单元)"
    r"|(?P<rel>今天|今日|今早|今晨|今晚|昨天|昨日|昨晚|前天|前日|前晚)"
    r")?"
    r"\s*(?P<period>凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|夜间|半夜|晚)?"
    r"\s*(?:(?<![0-9.])(?P<h>[0-9]{1,2})\s*(?:[点时](?:\s*(?P<mi>[0-9]{1,2})(?![0-9])\s*分?"
    r"|(?P<half>半))?|:(?P<mi2>[0-9]{2})(?![0-9])))?",
    re.ASCII,
)
_DAYS_AGO = {"今": 0, "昨": 1, "前": 2}
_EVENING = frozenset({"下午", "傍晚", "晚上", "晚"})

_NAME_PREFIXES = _by_length(
    "姓名", "名字", "租客", "房客", "我是", "本人", "我已经", "我已", "我刚", "我", "刚刚", "刚",
    "已经", "已",
)
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
    re.compile(f"(?:来自|来源地|来源|出发地|始发地|从)(?P<o>[{_HAN}]+?){_ORIGIN_SUFFIX}?了?的?"),
    re.compile(f"(?P<o>[{_HAN}]+?){_ORIGIN_SUFFIX}了?的?"),
    re.compile(f"老家(?:是|在)?(?P<o>[{_HAN}]+)"),
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
            f.problems.append("mobile_invalid")
        return _cut(work, m)
    if _LONG_NUMBER.search(work) or _MOBILE_LABEL.search(work):
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


def _arrival_from(m: re.Match[str]) -> Arrival | None:
    """An Arrival from an _ARRIVAL match, or None when its values are impossible."""
    g = m.groupdict()
    year = g["y"] or g["y2"]
    month = g["m"] or g["m2"]
    day = g["d"] or g["d2"] or g["d3"]
    rel, period = g["rel"], g["period"]
    days_ago = _DAYS_AGO[rel[0]] if rel else None
    if rel and period is None:
        period = "早上" if rel in ("今早", "今晨") else "晚上" if rel.endswith("晚") else None
    hour = minute = None
    if g["h"] is not None:
        hour = int(g["h"])
        minute = int(g["mi"] or g["mi2"] or 0) if not g["half"] else 30
        if period in _EVENING and hour < 12:
            hour += 12
        elif period == "中午" and hour < 6:
            hour += 12  # 中午1点 is 13:00
        elif period in ("夜里", "夜间") and 6 <= hour < 12:
            hour += 12
        elif period in ("凌晨", "半夜") and hour == 12:
            hour = 0
    values = {
        "year": int(year) if year else None,
        "month": int(month) if month else None,
        "day": int(day) if day else None,
        "hour": hour,
        "minute": minute,
        "days_ago": days_ago,
    }
    if values["month"] and values["day"]:
        try:
            # 2020 is a leap year, so 2月29日 without a year is accepted.
            datetime.date(values["year"] or 2020, values["month"], values["day"])
        except ValueError:
            return None
    try:
        return Arrival(**values)
    except ValidationError:
        return None


def _take_arrival(work: str, f: _Fields) -> str:
    """Take an optional arrival date and time (2月20日凌晨4点, 昨晚10点, 2/20 4:30)."""
    for m in _ARRIVAL.finditer(work):
        g = m.groupdict()
        if not any(g[k] for k in ("m", "m2", "d3", "rel", "h")):
            continue
        arrival = _arrival_from(m)
        if arrival is None:
            f.problems.append("arrival_invalid")
        else:
            f.arrival = arrival
        return _cut(work, m)
    return work


def _strip_name_prefix(token: str) -> str:
    """Drop words like 姓名 / 租客 / 我是 that people put before a name or a place."""
    changed = True
    while changed:
        changed = False
        for prefix in _NAME_PREFIXES:
            if token.startswith(prefix) and len(token) > len(prefix):
                token = token[len(prefix):]
                changed = True
                break
    return token


def _marked_origin(token: str) -> tuple[str, bool] | None:
    """The place in 来自X / 从X回来 / X返回 / 老家X, and whether it is surely a place."""
    for pattern in _ORIGIN_MARKED:
        m = pattern.fullmatch(token)
        if m is None:
            continue
        place = m.group("o")
        if _is_place(place) and place not in _FILLERS:
            # 长沙回来 and 王明回来 look alike; only a 来自/从 marker or a clear place is sure.
            sure = pattern is not _ORIGIN_MARKED[1] or _looks_like_place(place)
            return place, sure or not _is_name(place)
    return None


def _take_words(work: str, f: _Fields, *, announce: bool) -> None:
    """Find the name and the origin among the remaining words."""
    plain: list[str] = []
    for raw in _SPLIT.split(work):
        token = _strip_name_prefix(raw.strip(_STRIP))
        if not token or token in _FILLERS or "体温" in token:
            continue
        marked = _marked_origin(token)
        if marked is not None:
            if f.origin is None:
                f.origin, f.origin_marked = marked
            continue
        plain.append(token)
    for token in plain:
        if f.name is None and _is_name(token) and not _looks_like_place(token):
            # 我回来了 长沙 138...: the sender is the tenant, so a lone word is the place.
            lone = announce and f.origin is None and len(plain) == 1
            if lone and _HONORIFIC.fullmatch(token) is None:
                f.origin = token
            else:
                f.name = token
        elif f.origin is None and _is_place(token):
            f.origin = token


def _parse_return_args(
    rest: str, *, announce: bool, landlord: bool, freeform: bool = False
) -> Command | None:
    """Name, mobile, origin, arrival, temperature and ID of a return, in any order."""
    f = _Fields()
    work = f" {rest} "
    work = _take_id(work, f)
    work = _take_mobile(work, f)
    work = _take_temperature(work, f)
    work = _take_arrival(work, f)
    _take_words(work, f, announce=announce)
    if freeform and not f.origin_marked:
        return None  # a number and 回来 in passing is not yet a registration
    if f.origin is None:
        f.problems.append("origin_missing")
    if landlord and f.name is None:
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


def _parse_return(text: str) -> Command | None:
    """租客返回 … / 返回登记 … / 我回来了 … ."""
    for keywords, announce in ((_RETURN_FORMAL, False), (_RETURN_ANNOUNCE, True)):
        found = _keyword(text, keywords)
        if found is None:
            continue
        rest, apart = found
        if rest.startswith("了"):
            rest = rest[1:]
            apart = True
        if not apart and not _MOBILE_LIKE.search(rest):
            return None  # 我回来了吗, 已返回的租客请登记
        return _parse_return_args(rest, announce=announce, landlord=False)
    return None


def _parse_freeform_return(text: str) -> Command | None:
    """王明 13800138000 湖南长沙回来: a return announced without a keyword."""
    m = _MOBILE_LIKE.search(text)
    if m is None or not is_mobile(re.sub(r"[^0-9]", "", m.group())):
        return None
    if not _RETURN_WORD.search(text):
        return None
    return _parse_return_args(text, announce=True, landlord=False, freeform=True)


# --- landlord reports ------------------------------------------------------------------------

_REPORT_WORDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (
            *((w, "disinfect") for w in (
                "消毒已完成", "已完成消毒", "消毒完成", "已消毒", "消毒", "已消杀", "消杀",
                "环境消毒",
            )),
            *((w, "errand") for w in (
                "代办", "已代办", "代购", "已代购", "跑腿", "代买", "帮办",
            )),
            *((w, "violation") for w in ("违规", "违反规定", "违反", "违纪")),
            *((w, "mediation") for w in (
                "矛盾调解", "纠纷调解", "调解", "调处", "纠纷", "矛盾",
            )),
            *((w, "return") for w in ("租客返回", "返回登记", "租客登记", "返回", "登记")),
            *((w, "temperature") for w in ("体温", "测温")),
        ),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)
_DISINFECTED = re.compile(
    r"(?:今天|今日)?(?:已消毒|消毒已完成|已完成消毒|消毒完成|已消杀|消杀已完成)" + _END_PUNCT
)


def _report_args(rest: str, *, landlord: bool) -> Command | None:
    """消毒/代办/违规/调解 [说明] or 返回 <tenant>; None for an unknown kind after 上报."""
    for word, kind in _REPORT_WORDS:
        if not rest.startswith(word):
            continue
        detail = rest[len(word):].strip(_STRIP)
        if kind == "return":
            if not landlord:
                return None
            return _parse_return_args(detail, announce=False, landlord=True)
        if kind == "temperature":
            after = rest[len(word):]
            apart = not after or after[0] in _SEPARATORS or after[0].isascii()
            return _parse_temperature_args(detail, apart, None)
        if kind == "violation" and not detail:
            raise ParseError.of("LandlordReport", "detail_missing")
        report_kind: ReportKind = kind  # type: ignore[assignment]
        return LandlordReport(kind=report_kind, detail=detail)
    if landlord:
        raise ParseError.of("LandlordReport", "kind_unknown")
    return None


def _parse_report(text: str) -> Command | None:
    """房东上报 <kind> [说明], the short 上报<kind>, and 消毒已完成."""
    found = _keyword(text, ("房东上报",))
    if found is not None:
        return _report_args(found[0], landlord=True)
    found = _keyword(text, ("上报",))
    if found is not None:
        return _report_args(found[0], landlord=False)
    if _DISINFECTED.fullmatch(text):
        return LandlordReport(kind="disinfect", detail="")
    return None


# --- entry point -----------------------------------------------------------------------------


def parse(text: str) -> Command | None:
    """Parse one message into a command; None for chatter; ParseError for a botched command."""
    if not isinstance(text, str):
        return None
    text = normalise(text)  # idempotent, so callers that already normalised lose nothing
    if not text:
        return None
    if _HELP.fullmatch(text):
        return Help()
    if _MY_TENANTS.fullmatch(text):
        return MyTenants()
    for step in (_parse_bind, _parse_report, _parse_return, _parse_temperature):
        result = step(text)
        if result is not None:
            return result
    return _parse_freeform_return(text) or _parse_named_temperature(text)
