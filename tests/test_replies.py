"""One way out: replies go through the outbox and the paced sender; they keep priority but
respect the gap, pile-ups are merged, a share of each cap is kept for notices, and a contact
flooding commands gets one warning, then silence (the commands are still handled)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from bot import texts
from bot.config import PacingSettings
from bot.sender import Pacer
from models import OutboxMessage, TemperatureReading, Ticket
from tests.conftest import START, Chat, DemoChain, count

GAP = 3.0


def gaps(sent, clock_times):  # type: ignore[no-untyped-def]
    return [b - a for a, b in zip(clock_times, clock_times[1:], strict=False)]


def record_times(transport, clock) -> list[float]:  # type: ignore[no-untyped-def]
    """Wrap the platform's send to note when (fake time) each send happened."""
    times: list[float] = []
    original = transport.send

    async def timed(room_id, text, *, mentions=(), account=""):  # type: ignore[no-untyped-def]
        sent = await original(room_id, text, mentions=mentions, account=account)
        times.append(clock.now().timestamp())
        return sent

    transport.send = timed
    return times


async def settle(bot, clock, seconds: float, step: float = GAP) -> None:  # type: ignore[no-untyped-def]
    moved = 0.0
    while moved < seconds:
        clock.advance(timedelta(seconds=step))
        moved += step
        await bot.idle()


def test_replies_may_not_use_the_share_kept_for_notices():
    pacer = Pacer("a", PacingSettings(min_gap_seconds=0, jitter_seconds=0, hourly_cap=8,
                                      daily_cap=100, notice_reserve=0.25), random.Random(1))
    for i in range(6):
        pacer.record(START + timedelta(seconds=i))
    now = START + timedelta(seconds=10)
    assert pacer.next_allowed(now, reply=True) == START + timedelta(hours=1)
    assert pacer.next_allowed(now) == now          # two sends of the hour left for notices
    pacer.record(now)
    pacer.record(now)
    assert pacer.next_allowed(now) == START + timedelta(hours=1)


async def test_a_hundred_temperatures_get_few_merged_paced_replies(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    bot.settings.pacing.min_gap_seconds = GAP
    bot.reply_gate.per_minute = 1000   # merging alone here (the flood rule is tested below)
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await settle(bot, clock, 2 * GAP)
    times = record_times(transport, clock)
    mark = len(transport.sent)
    await chat.say_together([(chain.tenant_group, chain.tenant, "体温 36.6")] * 100)
    await settle(bot, clock, 20 * GAP)
    replies = [s.text for s in transport.sent[mark:] if s.room_id == chain.tenant_group]
    assert 1 <= len(replies) <= 5
    lines = [line for r in replies for line in r.split("\n")]
    assert len(lines) == 100 and all("体温 36.6℃" in line for line in lines)
    assert all(len(r) <= bot.settings.pacing.split_at for r in replies)
    assert all(g >= GAP for g in gaps(None, times))
    assert await count(bot, TemperatureReading) == 100
    assert await count(bot, OutboxMessage, OutboxMessage.source == "reply") == 0


async def test_a_contact_flooding_commands_gets_one_warning_then_silence(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    limit = bot.settings.pacing.commands_per_minute
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    mark = len(transport.sent)
    for _ in range(limit + 20):
        await chat.say(chain.tenant_group, chain.tenant, "体温 36.6")
    replies = [s for s in transport.sent[mark:] if s.room_id == chain.tenant_group]
    warning = texts.General.FLOOD.format(minutes=round(bot.settings.pacing.flood_quiet_minutes))
    assert [s.text for s in replies].count(warning) == 1
    assert len(replies) == limit   # the first `limit - 1` answers, the warning, then nothing
    assert replies[-1].mentions == (chain.tenant,)
    # Every command was still handled and recorded.
    assert await count(bot, TemperatureReading) == limit + 20
    # Someone else in the same group is answered as usual.
    await chat.say(chain.tenant_group, chain.landlord, "帮助")
    assert chat.replies(chain.tenant_group)
    # After the quiet time, the contact is answered again.
    clock.advance(timedelta(minutes=bot.settings.pacing.flood_quiet_minutes + 1))
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.7")
    assert chat.replies(chain.tenant_group)[0].startswith("已记录")


async def test_three_hundred_feedbacks_do_not_hold_up_a_notice(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    pacing = bot.settings.pacing
    pacing.min_gap_seconds, pacing.hourly_cap = GAP, 300
    times = record_times(transport, clock)
    await chat.say_together([(chain.tenant_group, chain.tenant, f"反馈 楼道第{i}盏灯坏了")
                             for i in range(300)])
    assert await count(bot, Ticket) == 300
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 明早开会")
    await settle(bot, clock, 60 * GAP)
    notice = [s for s in transport.sent if s.text == "【通知#1】明早开会"]
    assert sorted(s.room_id for s in notice) == ["changchun@chatroom", "team1@chatroom"]
    # Far fewer sends than commands: the tickets for the landlords' group went out merged.
    assert len(transport.sent) < 40
    ups = [s.text for s in transport.sent if s.room_id == chain.landlords_group]
    assert sum(t.count("楼道第") for t in ups) == 300
    assert all(g >= GAP for g in gaps(None, times))


async def test_replies_go_out_on_the_groups_account(bot, chat: Chat, chain: DemoChain,
                                                    transport):
    from sqlalchemy import update

    from models import Group

    async with bot.session() as s, s.begin():
        await s.execute(update(Group).where(Group.room_id == chain.tenant_group)
                        .values(account="acct-tenants"))
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    [reply] = [s for s in transport.sent if s.room_id == chain.tenant_group]
    assert reply.account == "acct-tenants"
    # A room bound to no group: the account that saw the command answers.
    await chat.say("nowhere@chatroom", "sim-stranger", "帮助")
    assert [s.account for s in transport.sent if s.room_id == "nowhere@chatroom"] in ([""], [])
    async with bot.session() as s:
        left = (await s.execute(select(OutboxMessage.room_id, OutboxMessage.status).where(
            OutboxMessage.source == "reply"))).all()
    assert left == []
