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

def arrival_from(m: re.Match[str]) -> Arrival | None:
    """An Arrival from an ARRIVAL match, or None when its values are impossible."""
    g = m.groupdict()
    year = g["y"] or g["y2"]
    month = g["m"] or g["m2"]
    day = g["d"] or g["d2"] or g["d3"]
    rel, period = g["rel"], g["period"]
    days_ago = DAYS_AGO[rel[0]] if rel else None
    if rel and period is None:
        period = "早上" if rel in ("今早", "今晨") else "晚上" if rel.endswith("晚") else None
    hour = minute = None
    if g["h"] is not None:
        hour = int(g["h"])
        minute = int(g["mi"] or g["mi2"] or 0) if not g["half"] else 30
        if period in EVENING and hour < 12:
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
        # 昨天晚上 with no hour: the part of the day is all that is known, and is kept.
        "period": PERIODS.get(period) if period and hour is None else None,
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
MORNING_OR_NIGHT = {"今早": "早上", "明早": "早上", "今晚": "晚上", "明晚": "晚上"}


def when_from(m: re.Match[str], command: str) -> When:
    """A When from a WHEN match; ParseError for an hour, minute or date that cannot be."""
    g = m.groupdict()
    rel = g["rel"] or g["relp"]
    period = g["period"] or (MORNING_OR_NIGHT.get(g["relp"]) if g["relp"] else None)
    hour = int(g["h"])
    minute = 30 if g["half"] else int(g["mi"] or g["mi2"] or 0)
    if hour > 23 or minute > 59:
        raise ParseError.of(command, "time_invalid")
    if period in ("晚上", "晚", "夜里") and hour == 12:
        raise ParseError.of(command, "time_invalid")  # 晚上12点: midnight of which day?
    later = (period in EVENING or (period == "夜里" and hour >= 6)
             or (period == "中午" and hour < 6))
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
            days_ahead=DAYS_AHEAD[rel[0]] if rel else None,
            year=int(year) if year else None,
            month=int(month) if month else None,
            day=int(day) if day else None,
            hour=hour,
            minute=minute,
        )
    except ValidationError as exc:
        raise ParseError.of(command, "date_invalid") from exc

