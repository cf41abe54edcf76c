"""体温 and every other health report: readings, fevers, and health words with no sure reading."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, HealthMention, Temperature
from bot.grammar.core import (
    DIGIT,
    HAN,
    SEPARATORS,
    STRIP,
    TIME_WORDS,
    UNIT,
    Message,
    ParseError,
    Step,
    is_name,
    on_plain,
)
from bot.pii import is_valid_temperature

_TEMP_KEYWORD = re.compile(
    r"(?:今日|今天|每日|今早|今晚|早上|早晨|上午|中午|下午|晚上|我的|本人)?\s*(?:上报)?\s*"
    r"(?:测量体温|测体温|量体温|体温|测温)"
)
# 王明 体温36.6, 代报 王明 体温36.5 (a landlord reporting for a tenant).
_TEMP_NAME_FIRST = re.compile(
    f"(?:(?:房东)?(?:代报|帮报)\\s*)?(?P<name>[{HAN}·]{{2,8}}?)\\s*(?:今日|今天)?(?:体温|测温)")
_TEMP_VALUE = re.compile(
    r"(?<![0-9.])(?P<num>[0-9]{1,3}(?:[.。][0-9]{1,2})?)(?![0-9])\s*" + f"(?P<unit>{UNIT})?",
    re.ASCII,
)
_TEMP_FILLERS = frozenset({"", "正常", "无异常", "良好", "已测", "无症状", "左右", "度"})


def _temperature_value(num: str, command: str) -> float:
    """The temperature a number denotes, or ParseError when outside the plausible range."""
    value = float(num.replace("。", "."))
    if not is_valid_temperature(value):
        raise ParseError.of(command, "temperature_range")
    return value


def parse_temperature_args(rest: str, apart: bool, name: str | None) -> Command | None:
    """[name] 36.6 [度], after a temperature keyword."""
    m = _TEMP_VALUE.search(rest)
    if m is None:
        if apart and (not rest or is_name(rest)):
            raise ParseError.of("Temperature", "temperature_missing")  # 体温, 体温 王明
        return None  # 体温正常, 体温三十六度五: the health step reads those
    before = rest[: m.start()].strip(STRIP)
    after = rest[m.end():].strip(STRIP)
    if before:
        if name is None and is_name(before):
            name = before
        elif DIGIT.search(before):
            return None
    if after not in _TEMP_FILLERS:
        if name is None and is_name(after):
            name = after
        else:
            return None  # more than one reading, or a question: not a plain report
    value = _temperature_value(m.group("num"), "Temperature")
    return Temperature(value=value, name=name)


def _parse_temperature(text: str) -> Command | None:
    """体温 36.6 / 今日体温36.5℃ / 测温 36.7 / 体温 王明 36.6."""
    text, supplied = _folded(text)
    m = _TEMP_KEYWORD.match(text)
    if m is None:
        return None
    rest = text[m.end():]
    apart = not rest or rest[0] in SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return _unmarked(parse_temperature_args(rest.strip(STRIP), apart, None), supplied)


def _parse_named_temperature(text: str) -> Command | None:
    """王明 体温36.6: a landlord reporting for a named tenant."""
    text, supplied = _folded(text)
    m = _TEMP_NAME_FIRST.match(text)
    if m is None or not is_name(m.group("name")):
        return None
    rest = text[m.end():]
    if not rest.strip(STRIP):
        return None  # 那个体温: the health step answers it
    apart = not rest or rest[0] in SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return _unmarked(parse_temperature_args(rest.strip(STRIP), apart, m.group("name")),
                     supplied)


def _unmarked(cmd: Command | None, supplied: bool) -> Command | None:
    """A reading whose 体温 the writer never wrote (上午36.5) is refused silently where
    readings are not taken: the writer was talking, not asking."""
    if supplied and isinstance(cmd, Temperature):
        return cmd.model_copy(update={"unmarked": True})
    return cmd



# --- any other health report -------------------------------------------------------------------

# Traditional characters and the variants phones produce (體溫, 体溫, 發燒).
_TRADITIONAL = str.maketrans("體溫發燒熱測", "体温发烧热测")
_HEALTH_WORD = re.compile(
    r"体温|测温|发烧|发热|低烧|高烧|有点烧|烧到|退烧|咳嗽"
    # Symptoms the landlord and the team should hear of (头疼 is also an idiom: left out).
    r"|(?:嗓子|喉咙)(?:有点|有些)?(?:疼|痛)|乏力|胸闷|呼吸困难|拉肚子|腹泻")
_FEVER_WORD = re.compile(r"发烧|发热|低烧|高烧|有点烧|烧到|烧得")
# 没有发烧, 不发热, 未发烧, 无发热, 退烧了: the writer says there is no fever.
_DENIED = re.compile(r"(?:没有|没|不|未|无|否|退)(?:再)?(?:发烧|发热|烧)")
_FEVER_STATED = re.compile(r"(?:发烧|发热|低烧|高烧|有点烧)了(?![吗么没?])")
_FEVER_ASKED = re.compile(r"(?:是不是|算不算|会不会|是否|有没有|有无)(?:发烧|发热|低烧|高烧)")
# 么 asks (发烧了么), 什么 in 没有什么不舒服 does not; 怎么 is its own entry.
_QUESTION = re.compile(r"\?|吗|(?<!什)么|是不是|算不算|多少|几度|怎么办|怎么|要不要|正常不")
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
             "七": 7, "八": 8, "九": 9}
# 36.5 / 36,5 / 36。5 / 37度5 / 38 度 / 38℃ (34–43: what a thermometer can show).
_READING = re.compile(
    # Not inside a number (1,380), but a list of readings may be comma-separated (36.5,38.2).
    r"(?<![0-9.])(?:(?<![0-9],)|(?<=[.][0-9],))(?P<int>3[4-9]|4[0-3])"
    r"(?:(?:\.|。|,(?=[0-9](?![0-9.])))(?P<frac>[0-9]{1,2})(?:\s*(?P<unit2>" + UNIT[3:-1] + "))?"
    r"|\s*(?P<unit>" + UNIT[3:-1] +
    r")(?:(?P<frac2>[0-9])(?![0-9.]))?)?(?![0-9])",
    re.ASCII,
)
# 三十六度五, 三十七点八, 三十八度, 四十度.
_CN_READING = re.compile(
    r"(?P<tens>三|四)十(?P<units>[零一二三四五六七八九])?"
    r"(?:(?P<mark>度|点)(?P<frac>[零一二三四五六七八九])?)?"
)
# Lazy: 王明今天体温 names 王明, not 王明今天; 今天王明体温 too.
_WHEN = "|".join(TIME_WORDS)
_NAME_RUN = re.compile(f"(?:^|(?<=[\\s,:;!?.@]))(?:{_WHEN})*(?P<name>[{HAN}·]{{2,8}}?)"
                       r"\s?(?:今日|今天|今早|早上|早晨|上午|下午|晚上){0,2}体温")
_NAME_AFTER = re.compile(f"体温\\s*(?P<name>[{HAN}·]{{2,8}})(?=\\s|[0-9])")
# 潘先生 37.8 发烧: a name, then the reading.
_NAME_LEAD = re.compile(f"^@?(?P<name>[{HAN}·]{{2,8}}?)\\s*[:,]?\\s*(?=3[4-9]|4[0-3])")


# 36 . 6, 36·5, 36 .5: a decimal point typed with spaces, or the middle dot of a Chinese
# keyboard; read as one value, never as 36 (a wrong reading is worse than none).
_SPLIT_DECIMAL = re.compile(
    r"(?<![0-9.])(3[4-9]|4[0-3])\s*(?:\s[.。]|[.。]\s|[·•・])\s*([0-9])(?![0-9])", re.ASCII)


_DECIMAL_READING = re.compile(r"(?:3[5-9]|4[0-2])[.。][0-9]")
# A body's reading has a decimal (36.6): the weather, a room or a price is rarely written so
# next to these words. Not followed by a unit of money, weight or length (中午36.5元).
_BODY_DECIMAL = r"(?=(?:3[5-9]|4[0-2])[.。][0-9](?![0-9])(?!\s*(?:元|块|斤|公斤|kg|米|%)))"
# 温度36.6: 温度 is also the weather's, but not with a body's decimal reading right after it
# (气温, 室温, 水温, 室外温度 stay the weather's).
_BODY_TEMPERATURE = re.compile(r"(?<![气室水油体内外])温度\s*(?:是|为|:)?\s*" + _BODY_DECIMAL)
# 额温37.9, 腋温36.8, 耳温: where the reading was taken; only ever a body's (额温枪 is a
# thermometer).
_BODY_SITE = re.compile(r"(?:额温|腋温|耳温|口温|肛温)(?!枪)")
# 上午36.5 下午36.7: a reading labelled with the time of day it was taken (今天36.5度 may be
# the weather: a mention, see _readings).
_TIMED_READING = re.compile(
    f"(?P<when>早上|早晨|上午|中午|下午|晚上|今早|今晚|昨晚|(?<![{HAN}])[早晚])"
    "\\s*(?:是|为)?\\s*:?\\s*" + _BODY_DECIMAL)
# 刚量了36.7, 测了一下36.6, 测得36.5: a reading told as measured (the verb is not a name).
_MEASURED = re.compile(
    r"[量测](?:(?:了|过|的|得)(?:一下|下|一次)?|一下|下)\s*(?:是|为)?\s*:?\s*" + _BODY_DECIMAL)
# 代报 王明 37.9: a landlord reporting a tenant's reading (the 体温 left out).
_REPORTED_FOR = re.compile(
    f"(?P<head>(?:房东)?(?:代报|帮报)\\s*[{HAN}·]{{2,8}}?\\s*:?\\s*)" + _BODY_DECIMAL)
# 36.5 正常, 王明 36.6 无异常: a message of one reading said to be normal, with no keyword.
_NORMAL_READING = re.compile(
    f"(?P<name>[{HAN}·]{{2,4}}\\s*)?(?P<reading>(?:3[5-9]|4[0-2])[.。][0-9]"
    r"\s*(?:度|℃|°C|°)?\s*,?\s*(?:正常|体温正常|无异常|无发热|没发烧|不发烧))")


def fold_health(text: str) -> str:
    """體溫 -> 体温, 36 . 6 -> 36.6, and a reading written without 体温 given its keyword
    (温度36.6, 额温36.2, 上午36.5 下午36.7, 刚量了36.7, 36.5 正常): one spelling of the
    health words and readings."""
    return _folded(text)[0]


def _folded(text: str) -> tuple[str, bool]:
    """fold_health's text, and whether the keyword was supplied (the writer never wrote it)."""
    text = _SPLIT_DECIMAL.sub(r"\1.\2", text.translate(_TRADITIONAL))
    if "体温" in text or "测温" in text:
        return text, False
    text = _BODY_SITE.sub("体温", text)
    if "体温" not in text and _DECIMAL_READING.search(text):
        text = _BODY_TEMPERATURE.sub("体温", text)
        text = _TIMED_READING.sub(r"\g<when>体温", _MEASURED.sub("体温", text))
        text = _REPORTED_FOR.sub(r"\g<head>体温", text)
        m = _NORMAL_READING.fullmatch(text.strip())
        if m is not None:
            text = f"{m.group('name') or ''}体温 {m.group('reading')}"
    return text, "体温" in text


def _readings(text: str) -> list[float]:
    """Every plausible temperature in the text, however it is written."""
    found: list[float] = []
    for m in _READING.finditer(text):
        frac = m.group("frac") or m.group("frac2")
        health = _HEALTH_WORD.search(text) is not None
        if m.group("unit") is None and m.group("unit2") is None and not health:
            continue  # a bare 38 or 36.5 is a room, an age, a price
        if not health and frac is None and int(m.group("int")) < 37:
            continue  # 空调36度, 今天35度: the weather; no fever is ever written so
        found.append(float(f"{m.group('int')}.{frac or 0}"))
    for m in _CN_READING.finditer(text):
        units = _CN_DIGIT[m.group("units")] if m.group("units") else 0
        whole = (3 if m.group("tens") == "三" else 4) * 10 + units
        if m.group("mark") != "度" and not _HEALTH_WORD.search(text):
            continue
        frac = _CN_DIGIT[m.group("frac")] if m.group("frac") else 0
        found.append(whole + frac / 10)
    return [v for v in found if is_valid_temperature(v)]


def _named(text: str) -> str | None:
    """A tenant's name written right before or after 体温 (王明体温37.8, 体温 王明 37.8), or
    first, right before the reading (潘先生 37.8 发烧)."""
    for pattern in (_NAME_RUN, _NAME_AFTER, _NAME_LEAD):
        m = pattern.search(text)
        if m is not None and is_name(m.group("name")):
            return m.group("name")
    return None


def _parse_health(text: str) -> Command | None:
    """Any message about a temperature or a fever: a sure reading, or a mention to answer."""
    text, supplied = _folded(text)
    readings = _readings(text)
    if not readings and not _HEALTH_WORD.search(text):
        return None
    name = _named(text)
    # 我发烧了怎么办 asks what to do about a fever it states; 发烧怎么办, 是不是发烧了 ask.
    stated = _FEVER_STATED.search(_DENIED.sub("", _FEVER_ASKED.sub("", text)))
    question = _QUESTION.search(text) is not None and stated is None
    # A reading is sure when it is the only one, stated (not asked) as a temperature or a fever.
    sure = _HEALTH_WORD.search(text) is not None and not question
    if len(set(readings)) == 1 and sure:
        return Temperature(value=readings[0], name=name, unmarked=supplied)
    fever = bool(_FEVER_WORD.search(_DENIED.sub("", text))) and not question
    return HealthMention(value=max(readings) if readings else None, name=name, fever=fever)


def _health_step(msg: Message) -> Command | None:
    """_parse_health, except a question put to someone else (@王明 你今天量体温了吗): that
    is the landlord asking a tenant, not a report; a fever word is still always answered."""
    cmd = _parse_health(msg.plain)
    if isinstance(cmd, HealthMention) and cmd.value is None and not cmd.fever:
        text = fold_health(msg.plain)
        addressed = msg.addressed or msg.plain.startswith("@")
        if addressed and _QUESTION.search(text) and not _FEVER_WORD.search(text):
            return None
    return cmd


STEPS = (
    Step(70, on_plain(_parse_temperature)),
    Step(910, on_plain(_parse_named_temperature)),
    Step(990, _health_step),
)

# How people write this family's commands: each parses to its command (tests/grammar).
EXAMPLES: tuple[tuple[str, type[Command]], ...] = (
    ("体温 36.6", Temperature),
    ("体温37,5", Temperature),
    ("体温三十六度五", Temperature),
    ("王明体温37.8发烧", Temperature),
    ("我发烧了", HealthMention),
    ("体温多少算发烧？", HealthMention),
)
