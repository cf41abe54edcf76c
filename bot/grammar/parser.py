"""Parse normalised chat text into a command model; None for chatter, ParseError for bad input."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from bot.grammar import membership  # 确认/不是, 移除, 退租 live in their own module
from bot.grammar.commands import (
    Ack,
    AdjustPoints,
    Answer,
    Appeal,
    Arrival,
    BindGroup,
    BindPerson,
    Command,
    Feedback,
    GoodPersonCandidates,
    Help,
    LandlordReport,
    MyTenants,
    PendingChecks,
    Progress,
    Relay,
    ReportKind,
    Reward,
    ScheduleCancel,
    ScheduleList,
    ScheduleNotice,
    Score,
    ScoreHistory,
    SendNotice,
    Temperature,
    TenantReturn,
    Todo,
    Verify,
    When,
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


# --- shared helpers of the newer commands ----------------------------------------------------

_C = TypeVar("_C", bound=Command)
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "零": 0, "〇": 0}
_CN_NUMBER = r"[一二两三四五六七八九十零〇]{1,3}"
_NUMBER = r"[0-9]{1,9}"
# Separators that set a keyword apart from free text (notices, feedback): not ? or 。.
_TEXT_SEPARATORS = " :,;!"
_REF = re.compile(r"#?\s*(?P<n>[0-9]{1,9})", re.ASCII)


def _cn_int(s: str) -> int | None:
    """A small number written in digits or Chinese numerals (一 … 九十九), or None."""
    if s.isascii() and s.isdigit():
        return int(s)
    if not s or any(c not in _CN_DIGITS and c != "十" for c in s):
        return None
    if "十" not in s:
        return _CN_DIGITS[s] if len(s) == 1 else None
    tens, _, units = s.partition("十")
    if "十" in units or len(tens) > 1 or len(units) > 1:
        return None
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _build(cls: type[_C], **values: object) -> _C:
    """Construct a command; a value the model refuses becomes a ParseError, never a crash."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ParseError.of(cls.__name__, "invalid") from exc


def _set_apart(rest: str, separators: str = _TEXT_SEPARATORS) -> bool:
    """Whether the text after a keyword starts a new word (or is empty)."""
    return not rest or rest[0] in separators


def _leading_id(rest: str) -> tuple[int | None, str]:
    """An id at the start of the arguments (12, #12, 编号12): (id or None, what follows)."""
    m = re.match(r"(?:编号|no\.?)?\s*#?\s*([0-9]{1,9})(?![0-9])", rest, re.ASCII | re.IGNORECASE)
    if m is None:
        return None, rest
    return int(m.group(1)), rest[m.end():].lstrip(_STRIP).strip()


def _id_or_error(value: int | None, command: str, missing: str) -> int:
    """A positive id, or the ParseError for a missing or zero one."""
    if value is None:
        raise ParseError.of(command, missing)
    if value < 1:
        raise ParseError.of(command, "number_invalid")
    return value


# --- notices: tags, relays, acknowledgements, progress ---------------------------------------

_TAG = r"【(?:紧急)?通知#(?P<tag>[0-9]{1,9})】"
_LEADING_TAG = re.compile(_TAG, re.ASCII)
# normalise() appends the tag of a quoted notice to the reply: `收到 【通知#27】`.
_TRAILING_TAG = re.compile(r" " + _TAG + r"$", re.ASCII)

_ACK_WORD = (
    r"(?:已经收到|收到收到|已收到了|已收到|收到了|收到啦|收到|收悉|已阅|阅|已读|已知悉|知悉|"
    r"明白了|明白|了解了|了解|知道了|好的|好滴|好嘞|好咧|好|收|ok(?:ay)?|嗯嗯收到)"
)
# What may follow the acknowledgement: a short promise to act on it, thanks, emoji.
_ACK_ADVERB = (
    r"(?:我们|我|本人|会|将|一定|保证|马上|立马|立即|立刻|随即|尽快|及时|认真|坚决|按时|按要求|"
    r"今天|今日|明天|现在|这就|正在|已经|已)"
)
_ACK_VERB = (
    r"(?:落实|执行|照办|办理|安排|处理|部署|跟进|配合|完成|去办|去做|整改|消毒|办|做)"
)
_ACK_PASS_ON = r"(?:通知|转发|传达|转达|转告)"  # alone (收到通知) it is news, not a promise
_ACK_OBJECT = (
    r"(?:租客|房客|房东|大家|各户|住户|商户|下去|到位|到户|到人|任务|好|了)"
)
_ACK_PROMISE = (
    f"(?:{_ACK_ADVERB}*{_ACK_VERB}{_ACK_OBJECT}*|{_ACK_ADVERB}+{_ACK_PASS_ON}{_ACK_OBJECT}*"
    f"|{_ACK_ADVERB}*{_ACK_PASS_ON}{_ACK_OBJECT}+|{_ACK_ADVERB}+)"
)
_ACK_THANKS = r"(?:谢谢|感谢|多谢|辛苦了|辛苦|领导|书记|主任|老师|您|请放心|放心)+"
_ACK_EMOJI = r"(?:\[[^\[\]\s]{1,8}\]|[\u2600-\u27bf\U0001f300-\U0001faff\ufe0f])"
_ACK_REF = r"(?:【(?:紧急)?通知#(?P<r1>[0-9]{1,9})】|通知#?(?P<r2>[0-9]{1,9})|#(?P<r3>[0-9]{1,9}))"
_ACK_GAP = r"[ ,;:!.。~]*"
_ACK_TAIL_ITEM = f"(?:{_ACK_WORD}|{_ACK_PROMISE}|{_ACK_THANKS}|{_ACK_EMOJI}|{_ACK_REF})"
# Atomic items and a possessive loop: the tail is read left to right, never re-split, so a
# long run of fillers cannot make the match backtrack exponentially.
_ACK = re.compile(
    r"(?:@\S+ )*+"  # a reply often mentions the commander who sent the notice
    r"(?:(?:【(?:紧急)?通知#(?P<p1>[0-9]{1,9})】|通知#?(?P<p2>[0-9]{1,9})|#?(?P<p3>[0-9]{1,9}))"
    + _ACK_GAP + ")?"
    + _ACK_WORD
    + f"(?:{_ACK_GAP}(?>{_ACK_TAIL_ITEM}))*+{_ACK_GAP}"
    + r"(?: @[^\s@]+)*",  # or mentions them after it
    re.IGNORECASE,
)
# 1 is how many groups ask to acknowledge (回复1); only on its own, never with a number.
_ACK_ONE = re.compile(r"(?:@\S+ )*1" + f"(?:{_ACK_GAP}{_ACK_EMOJI})*{_ACK_GAP}")
_ACK_MAX_LENGTH = 40


def _parse_ack(text: str, quoted: int | None) -> Command | None:
    """收到 / 好的 / 1 / 收到，马上落实 / 27收到 / 收到 #27 (quoted: the tag of a quoted notice)."""
    if _ACK_ONE.fullmatch(text):
        return Ack(notice_id=quoted)
    if len(text) > _ACK_MAX_LENGTH:
        return None
    m = _ACK.fullmatch(text)
    if m is None:
        return None
    named = next((m.group(g) for g in ("p1", "p2", "p3") if m.group(g)), None)
    if named is None:
        # The tail group only keeps its last repetition, so look for a reference again.
        ref = re.search(_ACK_REF, text)
        if ref is not None:
            named = next(g for g in ref.groups() if g)
    notice_id = int(named) if named is not None else quoted
    if notice_id is not None and notice_id < 1:
        return None
    return Ack(notice_id=notice_id)


def _parse_relay(text: str) -> Command | None:
    """【通知#27】… : a tagged notice posted again; only the tag and an ack is an Ack."""
    m = _LEADING_TAG.match(text)
    if m is None:
        return None
    notice_id = int(m.group("tag"))
    if notice_id < 1:
        return None
    rest = text[m.end():].strip()
    if rest and (_ACK.fullmatch(rest) or _ACK_ONE.fullmatch(rest)):
        return Ack(notice_id=notice_id)
    return Relay(notice_id=notice_id)


_PROGRESS = re.compile(
    r"(?:查|查看|查询|看)?(?:通知)?进度\s*"
    r"(?:(?:#|通知#?|【(?:紧急)?通知#)\s*(?P<a>[0-9]{1,9})】?|(?P<b>[0-9]{1,9}))?"
    + _END_PUNCT,
    re.ASCII,
)


def _parse_progress(text: str, quoted: int | None) -> Command | None:
    """进度 / 进度 27 / 进度#27 / 通知进度 27 / 查进度 (or 进度 under a quoted notice)."""
    m = _PROGRESS.fullmatch(text)
    if m is None:
        return None
    named = m.group("a") or m.group("b")
    notice_id = int(named) if named is not None else quoted
    if notice_id is not None and notice_id < 1:
        raise ParseError.of("Progress", "number_invalid")
    return Progress(notice_id=notice_id)


# --- sending and scheduling notices ----------------------------------------------------------

_TIER_WORD = re.compile(
    r"到\s*第?\s*(?P<n>[0-9]{1,3}|" + _CN_NUMBER + r")\s*级(?:群)?", re.ASCII
)
_NOTICE_HEAD = re.compile(
    r"(?P<preview>预览\s*)?(?P<urgent>紧急)?通知"
    r"(?=$|[" + _TEXT_SEPARATORS + r"]|到\s*第?\s*(?:[0-9]|[一二两三四五六七八九十])+\s*级)"
)


def _notice_body(rest: str, command: str) -> tuple[int | None, str]:
    """[到3级] 内容 after a notice keyword: (down_to_tier, text); ParseError if no content."""
    rest = rest.lstrip(_TEXT_SEPARATORS)
    tier = None
    m = _TIER_WORD.match(rest)
    if m is not None:
        tier = _cn_int(m.group("n"))
        if tier is None or not 1 <= tier <= 5:
            raise ParseError.of(command, "tier_range")
        rest = rest[m.end():].lstrip(_TEXT_SEPARATORS)
    text = rest.strip()
    if not any(c.isalnum() for c in text):
        raise ParseError.of(command, "notice_text_missing")
    return tier, text


def _parse_notice(text: str) -> Command | None:
    """通知 [到3级] 内容 / 紧急通知 … / 预览 通知 … ; 通知书, 通知了吗, 通知大家 are chatter."""
    m = _NOTICE_HEAD.match(text)
    if m is None:
        return None
    tier, body = _notice_body(text[m.end():], "SendNotice")
    return _build(
        SendNotice, text=body, urgent=bool(m.group("urgent")),
        preview=bool(m.group("preview")), down_to_tier=tier,
    )


_WHEN = re.compile(
    r"(?:"
    r"(?P<rel>今天|今日|明天|明日|后天)"
    r"|(?P<relp>今早|今晚|明早|明晚)"
    r"|(?:(?P<y>[0-9]{4})\s*年\s*)?(?P<m>[0-9]{1,2})\s*月\s*(?P<d>[0-9]{1,2})\s*[日号]?"
    r"|(?<![0-9])(?:(?P<y2>[0-9]{4})[/-])?(?P<m2>[0-9]{1,2})[/-](?P<d2>[0-9]{1,2})(?![0-9])"
    r")?"
    r"\s*(?P<period>凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|晚)?"
    r"\s*(?<![0-9])(?P<h>[0-9]{1,3})\s*(?:[点时](?:\s*(?P<mi>[0-9]{1,3})(?![0-9])\s*分?"
    r"|(?P<half>半)|整)?|:\s*(?P<mi2>[0-9]{1,3})(?![0-9]))",
    re.ASCII,
)
_DAYS_AHEAD = {"今": 0, "明": 1, "后": 2}
_MORNING_OR_NIGHT = {"今早": "早上", "明早": "早上", "今晚": "晚上", "明晚": "晚上"}


def _when_from(m: re.Match[str], command: str) -> When:
    """A When from a _WHEN match; ParseError for an hour, minute or date that cannot be."""
    g = m.groupdict()
    rel = g["rel"] or g["relp"]
    period = g["period"] or (_MORNING_OR_NIGHT.get(g["relp"]) if g["relp"] else None)
    hour = int(g["h"])
    minute = 30 if g["half"] else int(g["mi"] or g["mi2"] or 0)
    if hour > 23 or minute > 59:
        raise ParseError.of(command, "time_invalid")
    if period in ("晚上", "晚", "夜里") and hour == 12:
        raise ParseError.of(command, "time_invalid")  # 晚上12点: midnight of which day?
    later = period in _EVENING or (period == "夜里" and hour >= 6) or (period == "中午" and hour < 6)
    if later and hour < 12:
        hour += 12  # 下午3点, 晚上8点, 中午1点
    elif period == "凌晨" and hour == 12:
        hour = 0
    year = g["y"] or g["y2"]
    month = g["m"] or g["m2"]
    day = g["d"] or g["d2"]
    if month is not None and day is not None:
        try:
            datetime.date(int(year) if year else 2020, int(month), int(day))
        except ValueError as exc:
            raise ParseError.of(command, "date_invalid") from exc
    try:
        return When(
            days_ahead=_DAYS_AHEAD[rel[0]] if rel else None,
            year=int(year) if year else None,
            month=int(month) if month else None,
            day=int(day) if day else None,
            hour=hour,
            minute=minute,
        )
    except ValidationError as exc:
        raise ParseError.of(command, "date_invalid") from exc


_SCHEDULE_HEAD = re.compile(r"定时(?P<urgent>紧急)?通知")
_DAILY = re.compile(r"(?:每天|每日)\s*")
_DAILY_NOTICE = re.compile(
    r"\s*(?P<urgent>紧急)?通知(?=$|[" + _TEXT_SEPARATORS + r"]|到\s*第?\s*\S+?\s*级)"
)


def _schedule(when: When, *, daily: bool, urgent: bool, rest: str) -> Command:
    """The ScheduleNotice for a parsed time and the rest of the message."""
    if daily and when.has_date:
        raise ParseError.of("ScheduleNotice", "daily_with_date")
    tier, body = _notice_body(rest, "ScheduleNotice")
    return _build(
        ScheduleNotice, when=when, daily=daily, text=body, urgent=urgent, down_to_tier=tier,
    )


def _parse_schedule(text: str) -> Command | None:
    """定时通知 明天8:00 内容 / 定时通知 每天 18点 内容 / 每天 18:00 [紧急]通知 内容."""
    head = _SCHEDULE_HEAD.match(text)
    if head is not None:
        rest = text[head.end():]
        daily = _DAILY.match(rest.lstrip(_TEXT_SEPARATORS))
        if daily is not None:
            rest = rest.lstrip(_TEXT_SEPARATORS)[daily.end():]
        m = _WHEN.match(rest.lstrip(_TEXT_SEPARATORS))
        if m is None:
            if daily is None and not _set_apart(rest):
                return None  # 定时通知发了吗
            raise ParseError.of("ScheduleNotice", "time_missing")
        when = _when_from(m, "ScheduleNotice")
        return _schedule(
            when, daily=daily is not None, urgent=bool(head.group("urgent")),
            rest=rest.lstrip(_TEXT_SEPARATORS)[m.end():],
        )
    daily = _DAILY.match(text)
    if daily is None:
        return None
    rest = text[daily.end():]
    m = _WHEN.match(rest)
    if m is None:
        if _DAILY_NOTICE.match(rest):
            raise ParseError.of("ScheduleNotice", "time_missing")  # 每天 通知 …
        return None  # 每天都要消毒
    notice = _DAILY_NOTICE.match(rest, m.end())
    if notice is None:
        return None  # 每天8点测体温
    when = _when_from(m, "ScheduleNotice")
    return _schedule(
        when, daily=True, urgent=bool(notice.group("urgent")), rest=rest[notice.end():],
    )


_SCHEDULE_LIST = re.compile(
    r"(?:定时列表|定时通知列表|我的定时|我的定时通知|查看定时|查看定时通知|定时任务)" + _END_PUNCT
)
_SCHEDULE_CANCEL = _by_length("取消定时通知", "删除定时通知", "取消定时", "删除定时")


def _parse_schedule_cancel(text: str) -> Command | None:
    """取消定时 5 / 取消定时#5 / 删除定时 5."""
    found = _keyword(text, _SCHEDULE_CANCEL)
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 取消定时了吗
    schedule_id, after = _leading_id(rest)
    if schedule_id is not None and _DIGIT.search(after):
        raise ParseError.of("ScheduleCancel", "invalid")  # 取消定时 5 6: one at a time
    return ScheduleCancel(
        schedule_id=_id_or_error(schedule_id, "ScheduleCancel", "schedule_id_missing")
    )


# --- up the chain: feedback, answers, to-do --------------------------------------------------

_TODO = re.compile(r"(?:我的|查看|查询)?(?:待办事项|待办|待处理|待回复)" + _END_PUNCT)


def _parse_feedback(text: str) -> Command | None:
    """反馈 内容 / 反馈：内容 (反馈一下 is chatter)."""
    found = _keyword(text, ("反馈",))
    if found is None:
        return None
    _, apart = found
    if not apart:
        return None  # 反馈一下, 反馈给社区了
    body = text[2:].lstrip(_TEXT_SEPARATORS).strip()
    if not any(c.isalnum() for c in body):
        raise ParseError.of("Feedback", "feedback_missing")
    return _build(Feedback, text=body)


def _parse_answer(text: str) -> Command | None:
    """答复 12 内容 / 答复#12 内容."""
    found = _keyword(text, ("答复",))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 答复了吗
    rest = re.sub(r"^(?:反馈|工单)", "", text[2:].lstrip(_STRIP))  # keep the closing 。
    ticket_id, body = _leading_id(rest)
    ticket_id = _id_or_error(ticket_id, "Answer", "ticket_id_missing")
    if not any(c.isalnum() for c in body):
        raise ParseError.of("Answer", "answer_missing")
    return _build(Answer, ticket_id=ticket_id, text=body)


# --- the landlords' 12-point system ----------------------------------------------------------

_PENDING_CHECKS = re.compile(r"(?:待核查|待审核|待核实)(?:列表|事项)?" + _END_PUNCT)
_SCORE = re.compile(r"(?:我的积分|查积分|查询积分|积分查询|积分)" + _END_PUNCT)
_SCORE_HISTORY = re.compile(r"(?:我的)?(?:积分明细|积分记录)" + _END_PUNCT)
_REWARD = re.compile(r"(?:我的奖励|查奖励|奖励)" + _END_PUNCT)
_GOOD_PERSON = re.compile(r"(?:好人候选名单|好人候选人|好人候选)" + _END_PUNCT)

_POINTS = f"(?P<n>[0-9]{{1,3}}|{_CN_NUMBER})"
_MENTION = re.compile(r"@(?P<name>[^\s@]+)")
# @董宝明 加2分 原因 (the mention first, the way a reply to a landlord reads).
_POINTS_AFTER_MENTION = re.compile(
    r"@(?P<name>[^\s@]+?)\s*(?P<op>加|扣|减)\s*" + _POINTS + r"\s*分(?P<rest>.*)"
)
_POINTS_ARG = re.compile(r"(?:(?P<op>加|扣|减))?\s*" + _POINTS + r"\s*分?(?![0-9])")
_QUESTION = re.compile(r"(?:\?|吗)[!.。~]*$")


def _points(value: str) -> int:
    """The points of 2 / 两 / 十二, or ParseError outside 1–12."""
    n = _cn_int(value)
    if n is None or not 1 <= n <= 12:
        raise ParseError.of("AdjustPoints", "points_range")
    return n


def _adjust(target: str | None, points: int | None, sign: int, reason: str) -> Command:
    """The AdjustPoints for what was found, or the ParseError for what is missing."""
    if not target:
        raise ParseError.of("AdjustPoints", "target_missing")
    if points is None:
        raise ParseError.of("AdjustPoints", "points_missing")
    if not any(c.isalnum() for c in reason):
        raise ParseError.of("AdjustPoints", "reason_missing")
    return _build(AdjustPoints, target=target, points=points, delta=sign * points, reason=reason)


def _take_points(rest: str) -> tuple[int | None, str]:
    """Points at the start of rest (2 / 2分 / 加2分): (points or None, what follows)."""
    m = _POINTS_ARG.match(rest)
    if m is None:
        return None, rest
    return _points(m.group("n")), rest[m.end():].strip(_STRIP)


def _parse_points(text: str) -> Command | None:
    """加分 @董宝明 2 原因 / 扣分 董宝明 1分 原因 / @董宝明 加2分 原因."""
    m = _POINTS_AFTER_MENTION.fullmatch(text)
    if m is not None:
        if _QUESTION.search(text):
            return None  # @董宝明 加2分了吗?
        sign = 1 if m.group("op") == "加" else -1
        return _adjust(m.group("name"), _points(m.group("n")), sign, m.group("rest").strip(_STRIP))
    lead = _MENTION.match(text)
    rest = text[lead.end():].lstrip() if lead is not None else text
    found = _keyword(rest, ("加分", "扣分", "减分"))
    if found is None:
        return None
    args, apart = found
    if not apart and not rest[2:].startswith("@"):
        return None  # 加分了吗, 扣分太狠了
    if _QUESTION.search(args):
        return None
    sign = 1 if rest.startswith("加") else -1
    target = lead.group("name") if lead is not None else None
    points, args = _take_points(args)
    if target is None:
        mention = _MENTION.match(args)
        if mention is not None:
            target, args = mention.group("name"), args[mention.end():].strip(_STRIP)
        elif points is None:
            # 加分 董宝明 2分 原因: without @ the first word is the name.
            word, _, after = args.partition(" ")
            if word and not _DIGIT.search(word):
                target, args = word, after.strip(_STRIP)
        if points is None:
            points, args = _take_points(args)
    return _adjust(target, points, sign, args)


_DECISIONS: tuple[tuple[str, bool], ...] = tuple(
    sorted(
        (
            *((w, True) for w in ("通过", "同意", "属实", "核实", "确认", "批准")),
            *((w, False) for w in ("不通过", "不同意", "驳回", "拒绝", "不属实", "否决", "不批准")),
        ),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)


def _parse_verify(text: str) -> Command | None:
    """核查 12 通过 [说明] / 核查#12 驳回 理由."""
    found = _keyword(text, ("核查", "审核"))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 核查一下, 核查了吗
    event_id, after = _leading_id(rest)
    if event_id is None and rest and not after.startswith(tuple(w for w, _ in _DECISIONS)):
        return None  # 核查 一下3楼
    event_id = _id_or_error(event_id, "Verify", "event_id_missing")
    for word, approve in _DECISIONS:
        if after.startswith(word):
            reason = after[len(word):].strip(_STRIP) or None
            if not approve and reason is None:
                raise ParseError.of("Verify", "reject_reason_missing")
            return _build(Verify, event_id=event_id, approve=approve, reason=reason)
    raise ParseError.of("Verify", "decision_missing")


def _parse_appeal(text: str) -> Command | None:
    """申诉 12 理由."""
    found = _keyword(text, ("申诉",))
    if found is None:
        return None
    rest, apart = found
    if not apart and not rest.startswith("#"):
        return None  # 申诉有用吗
    event_id, reason = _leading_id(text[2:].lstrip(_STRIP))
    event_id = _id_or_error(event_id, "Appeal", "event_id_missing")
    if not any(c.isalnum() for c in reason):
        raise ParseError.of("Appeal", "appeal_reason_missing")
    return _build(Appeal, event_id=event_id, reason=reason)


# --- entry point -----------------------------------------------------------------------------


_FIXED: tuple[tuple[re.Pattern[str], type[Command]], ...] = (
    (_HELP, Help),
    (_MY_TENANTS, MyTenants),
    (_SCHEDULE_LIST, ScheduleList),
    (_TODO, Todo),
    (_PENDING_CHECKS, PendingChecks),
    (_SCORE_HISTORY, ScoreHistory),
    (_SCORE, Score),
    (_REWARD, Reward),
    (_GOOD_PERSON, GoodPersonCandidates),
)
_STEPS = (
    membership.parse,
    _parse_bind, _parse_report, _parse_return, _parse_temperature,
    _parse_schedule, _parse_schedule_cancel, _parse_notice, _parse_feedback, _parse_answer,
    _parse_points, _parse_verify, _parse_appeal,
)


def parse(text: str) -> Command | None:
    """Parse one message into a command; None for chatter; ParseError for a botched command."""
    if not isinstance(text, str):
        return None
    text = normalise(text)  # idempotent, so callers that already normalised lose nothing
    if not text:
        return None
    relay = _parse_relay(text)
    if relay is not None:
        return relay
    # A reply under a quoted notice ends with its tag; only 收到 and 进度 read it.
    quoted = None
    tag = _TRAILING_TAG.search(text)
    if tag is not None:
        quoted, text = int(tag.group("tag")) or None, text[: tag.start()]
    ack = _parse_ack(text, quoted)
    if ack is not None:
        return ack
    for pattern, cls in _FIXED:
        if pattern.fullmatch(text):
            return cls()
    progress = _parse_progress(text, quoted)
    if progress is not None:
        return progress
    for step in _STEPS:
        result = step(text)
        if result is not None:
            return result
    return _parse_freeform_return(text) or _parse_named_temperature(text)
