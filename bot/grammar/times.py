"""Times people write: a tenant's arrival (昨晚10点, 2月20日凌晨4点) and a schedule's time."""

from __future__ import annotations

import datetime
import re

from pydantic import ValidationError

from bot.grammar.commands import Arrival, When
from bot.grammar.core import ParseError

ARRIVAL = re.compile(
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
DAYS_AGO = {"今": 0, "昨": 1, "前": 2}
# The parts of a day, in the words replies use (夜间 reads 夜里, 晚 reads 晚上).
PERIODS = {"凌晨": "凌晨", "清晨": "早上", "早上": "早上", "早晨": "早上", "上午": "上午",
           "中午": "中午", "下午": "下午", "傍晚": "傍晚", "晚上": "晚上", "晚": "晚上",
           "夜里": "夜里", "夜间": "夜里", "半夜": "半夜"}
EVENING = frozenset({"下午", "傍晚", "晚上", "晚"})
# 今早, 昨晚, 明晚: a day that names its part of the day too.
_IMPLIED_PERIOD = {"今早": "早上", "今晨": "早上", "明早": "早上", "今晚": "晚上", "昨晚": "晚上",
                   "前晚": "晚上", "明晚": "晚上"}


def _first_int(g: dict[str, str | None], *keys: str) -> int | None:
    """The first of these groups that matched, as a number."""
    value = next((g[k] for k in keys if g[k]), None)
    return int(value) if value else None


def _minute(g: dict[str, str | None]) -> int:
    """The minutes of 8点半, 8点30分, 8:30 (0 when none is written)."""
    return 30 if g["half"] else _first_int(g, "mi", "mi2") or 0


def _clock(hour: int, period: str | None) -> int:
    """The 24-hour hour of a reading on a 12-hour clock in a part of the day (下午3点 -> 15)."""
    if period in EVENING and hour < 12:
        return hour + 12
    if period == "中午" and hour < 6:
        return hour + 12  # 中午1点 is 13:00
    if period in ("夜里", "夜间") and 6 <= hour < 12:
        return hour + 12
    if period in ("凌晨", "半夜") and hour == 12:
        return 0
    return hour


def _real_date(year: int | None, month: int | None, day: int | None) -> bool:
    """Whether a written month and day exist (2020 is a leap year: 2月29日 without a year)."""
    if not (month and day):
        return True
    try:
        datetime.date(year or 2020, month, day)
    except ValueError:
        return False
    return True


def arrival_from(m: re.Match[str]) -> Arrival | None:
    """An Arrival from an ARRIVAL match, or None when its values are impossible."""
    g = m.groupdict()
    rel = g["rel"]
    period = g["period"] or _IMPLIED_PERIOD.get(rel or "")
    hour = minute = None
    if g["h"] is not None:
        hour, minute = _clock(int(g["h"]), period), _minute(g)
    year, month = _first_int(g, "y", "y2"), _first_int(g, "m", "m2")
    day = _first_int(g, "d", "d2", "d3")
    if not _real_date(year, month, day):
        return None
    try:
        return Arrival(
            year=year, month=month, day=day, hour=hour, minute=minute,
            days_ago=DAYS_AGO[rel[0]] if rel else None,
            # 昨天晚上 with no hour: the part of the day is all that is known, and is kept.
            period=PERIODS.get(period) if period and hour is None else None,  # type: ignore[arg-type]
        )
    except ValidationError:
        return None


WHEN = re.compile(
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
DAYS_AHEAD = {"今": 0, "明": 1, "后": 2}


def when_from(m: re.Match[str], command: str) -> When:
    """A When from a WHEN match; ParseError for an hour, minute or date that cannot be."""
    g = m.groupdict()
    rel = g["rel"] or g["relp"]
    period = g["period"] or _IMPLIED_PERIOD.get(g["relp"] or "")
    hour, minute = int(g["h"]), _minute(g)
    # 晚上12点: midnight of which day?
    if hour > 23 or minute > 59 or (period in ("晚上", "晚", "夜里") and hour == 12):
        raise ParseError.of(command, "time_invalid")
    year, month, day = _first_int(g, "y", "y2"), _first_int(g, "m", "m2"), _first_int(g, "d", "d2")
    if not _real_date(year, month, day):
        raise ParseError.of(command, "date_invalid")
    try:
        return When(days_ahead=DAYS_AHEAD[rel[0]] if rel else None, year=year, month=month,
                    day=day, hour=_clock(hour, period), minute=minute)
    except ValidationError as exc:
        raise ParseError.of(command, "date_invalid") from exc
