"""Missing 企业日报 and 工作卡: reminded in the unit's group at remind_time, told to the
community at escalate_time, each day once, caught up after downtime (fake clock)."""

from __future__ import annotations

from datetime import datetime

from bot import unit_texts
from bot.app import BotApp
from bot.console import load_demo_chain
from bot.transports.memory import MemoryTransport
from schedules.jobs import escalate_units, remind_units
from tests.conftest import SHANGHAI, Chat

ENTERPRISE, PROJECT, COMMUNITY = "huaxin@chatroom", "road@chatroom", "changchun@chatroom"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, 2, day, hour, minute, tzinfo=SHANGHAI)


def sent(transport: MemoryTransport, mark: int) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(m.room_id, m.text, m.mentions) for m in transport.sent[mark:]]


async def test_reminded_then_escalated_once_a_day(bot: BotApp, chat: Chat, clock,
                                                  transport: MemoryTransport):
    clock.set(at(21, 9))
    assert await load_demo_chain(bot, units=True)
    # Before 10:00 on a fresh database: the 20th is over (and the units did not exist yet).
    assert await remind_units(bot) == 0
    assert await escalate_units(bot) == 0
    await bot.idle()
    mark = len(transport.sent)
    clock.set(at(21, 10))
    assert await remind_units(bot) == 2
    await bot.idle()
    assert sent(transport, mark) == [
        (ENTERPRISE, unit_texts.Report.REMIND.format(name="华鑫针织", date="2月21日"),
         ("sim-suntao",)),
        (PROJECT, unit_texts.Card.REMIND.format(name="长春路改造工程", date="2月21日"),
         ("sim-zhoulei",)),
    ]
    assert await remind_units(bot) == 0  # the same day once
    clock.set(at(21, 11))
    await chat.say(ENTERPRISE, "sim-suntao", "企业日报 在岗120 返岗3 隔离2 异常0")
    await bot.idle()
    mark = len(transport.sent)
    clock.set(at(21, 14))
    assert await escalate_units(bot) == 1
    await bot.idle()
    # Only the project is missing now; the community hears of it, without mentions.
    assert sent(transport, mark) == [(COMMUNITY, unit_texts.Card.ESCALATE.format(
        date="2月21日", time="14:00", names="长春路改造工程"), ())]
    assert await escalate_units(bot) == 0


async def test_after_downtime_the_day_is_caught_up(bot: BotApp, chat: Chat, clock,
                                                   transport: MemoryTransport):
    clock.set(at(21, 9))
    assert await load_demo_chain(bot, units=True)
    assert await remind_units(bot) == 0
    assert await escalate_units(bot) == 0
    # Down from the 21st 09:00 to the 22nd 16:00: both jobs of both days are due.
    clock.set(at(22, 16))
    await chat.say(PROJECT, "sim-zhoulei", "工作卡 在场85 新进5 异常0")
    await bot.idle()
    mark = len(transport.sent)
    assert await remind_units(bot) == 1  # today: the enterprise; the 21st is over
    # The 21st: a line for its enterprise and one for its project; the 22nd: the enterprise.
    assert await escalate_units(bot) == 3
    await bot.idle()
    texts = [t for room, t, _ in sent(transport, mark)]
    assert texts == [
        unit_texts.Report.REMIND.format(name="华鑫针织", date="2月22日"),
        unit_texts.Report.ESCALATE.format(date="2月21日", time="14:00", names="华鑫针织"),
        unit_texts.Card.ESCALATE.format(date="2月21日", time="14:00", names="长春路改造工程"),
        unit_texts.Report.ESCALATE.format(date="2月22日", time="14:00", names="华鑫针织"),
    ]
    assert await remind_units(bot) == 0 and await escalate_units(bot) == 0
