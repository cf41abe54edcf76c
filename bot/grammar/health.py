"""体温 and every other health report: readings, fevers, and health words with no sure reading."""

from __future__ import annotations

import re

from bot.grammar.commands import Command, Temperature
from bot.grammar.core import (
    DIGIT,
    HAN,
    SEPARATORS,
    STRIP,
    UNIT,
    ParseError,
    Step,
    is_name,
    on_plain,
)
from bot.pii import is_valid_temperature

_TEMP_KEYWORD = re.compile(
    r"(?:今日|今天|每日|今早|今晚|早上|早晨|上午|中午|下午|晚上|我的|本人)?\s*(?:上报)?\s*"
    r"(?:量体温|体温|测温)"
)
_TEMP_NAME_FIRST = re.compile(f"(?P<name>[{HAN}·]{{2,8}}?)\\s*(?:今日|今天)?(?:体温|测温)")
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
        if apart:
            raise ParseError.of("Temperature", "temperature_missing")
        return None  # 体温正常, 体温多少算发烧
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
    m = _TEMP_KEYWORD.match(text)
    if m is None:
        return None
    rest = text[m.end():]
    apart = not rest or rest[0] in SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return parse_temperature_args(rest.strip(STRIP), apart, None)


def _parse_named_temperature(text: str) -> Command | None:
    """王明 体温36.6: a landlord reporting for a named tenant."""
    m = _TEMP_NAME_FIRST.match(text)
    if m is None or not is_name(m.group("name")):
        return None
    rest = text[m.end():]
    apart = not rest or rest[0] in SEPARATORS or (rest[0].isascii() and rest[0].isalnum())
    return parse_temperature_args(rest.strip(STRIP), apart, m.group("name"))



STEPS = (
    Step(70, on_plain(_parse_temperature)),
    Step(910, on_plain(_parse_named_temperature)),
)
