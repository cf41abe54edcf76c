"""Missing shop check-ins with the fake clock: the captain reminded at 10:00, the team's
tier-4 group told at 14:00, each once a day, nothing for a row that checked in."""

from __future__ import annotations

from datetime import datetime

from models import JobRun, OutboxMessage
from schedules.jobs import escalate_shop_checkins, remind_shop_checkins
from tests.conftest import SHANGHAI, Chat, DemoChain, count


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2020, 2, day, hour, minute, tzinfo=SHANGHAI)


async def test_reminder_then_escalation_once_a_day(bot, chat: Chat, chain: DemoChain, clock):
    clock.set(at(21, 10))
    assert await remind_shop_checkins(bot) == 1
    await bot.idle()
    sent = [s for s in chat.transport.sent if s.room_id == chain.shop_group]
    assert [s.text for s in sent] == [
        "【打卡提醒】2月21日 商铺巡查还未打卡，请铺长发送，例：巡查 10家 营业3家 无异常"]
    assert sent[0].mentions == (chain.captain,)
    assert await remind_shop_checkins(bot) == 0  # once a day
    clock.set(at(21, 14))
    assert await escalate_shop_checkins(bot) == 1
    await bot.idle()
    told = [s.text for s in chat.transport.sent if s.room_id == chain.landlords_group]
    assert told == ["【未打卡】长春专业街一排（铺长 王*）2月21日 到 14:00 仍未打卡巡查，请跟进。"]
    assert await escalate_shop_checkins(bot) == 0


async def test_a_row_that_checked_in_is_left_alone(bot, chat: Chat, chain: DemoChain, clock):
    clock.set(at(21, 8, 30))
    await chat.say(chain.shop_group, chain.captain, "巡查 10家 营业3家 无异常")
    clock.set(at(21, 10))
    assert await remind_shop_checkins(bot) == 0
    clock.set(at(21, 14))
    assert await escalate_shop_checkins(bot) == 0
    # Yesterday's check-in does not count for today.
    clock.set(at(22, 10))
    assert await remind_shop_checkins(bot) == 1
    assert await count(bot, OutboxMessage, OutboxMessage.source == "shop-remind") == 1


async def test_check_in_between_reminder_and_escalation(bot, chat: Chat, chain: DemoChain,
                                                        clock):
    clock.set(at(21, 10))
    assert await remind_shop_checkins(bot) == 1
    clock.set(at(21, 11))
    await chat.say(chain.shop_group, chain.captain, "3号 开门 2人 36.5 36.7")
    clock.set(at(21, 14))
    assert await escalate_shop_checkins(bot) == 0
    assert await count(bot, OutboxMessage, OutboxMessage.source == "shop-escalate") == 0


async def test_downtime_is_caught_up_for_the_day_it_missed(bot, chat: Chat, chain: DemoChain,
                                                           clock):
    clock.set(at(21, 14))
    assert await escalate_shop_checkins(bot) == 1
    # Down from the 21st afternoon until the 22nd evening: the 22nd's escalation is done late,
    # as of its own day, once.
    clock.set(at(22, 19))
    assert await escalate_shop_checkins(bot) == 1
    await bot.idle()
    told = [s.text for s in chat.transport.sent if s.room_id == chain.landlords_group]
    assert told[-1].startswith("【未打卡】长春专业街一排（铺长 王*）2月22日")
    assert await count(bot, JobRun, JobRun.job == "shop-escalate") == 2


async def test_a_reminder_missed_by_downtime_is_not_sent_the_next_day(bot, chat: Chat,
                                                                     chain: DemoChain, clock):
    clock.set(at(21, 10))
    assert await remind_shop_checkins(bot) == 1
    # Down from the 22nd 09:00 to the 23rd 09:00: the 22nd's reminder is recorded as done
    # but not sent (the escalation tells the team instead); the 23rd's comes at 10:00.
    clock.set(at(23, 9))
    assert await remind_shop_checkins(bot) == 0
    assert await count(bot, OutboxMessage, OutboxMessage.source == "shop-remind") == 1
    clock.set(at(23, 10))
    assert await remind_shop_checkins(bot) == 1
