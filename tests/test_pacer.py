"""Pacing state lives in memory per account, bounded by the caps (not rescanned per send),
and what a restart needs of it is persisted compactly (the last send, the pause)."""

from __future__ import annotations

import random
from datetime import timedelta

from bot.config import PacingSettings
from bot.sender import Pacer
from tests.conftest import START, Chat, DemoChain


def test_the_pacer_keeps_at_most_a_cap_of_sends_and_stays_exact():
    settings = PacingSettings(min_gap_seconds=0, jitter_seconds=0, hourly_cap=50, daily_cap=300)
    pacer = Pacer("a", settings, random.Random(1))
    t = START
    naive: list = []
    for i in range(5000):
        at = t + timedelta(seconds=37 * i)
        allowed = pacer.next_allowed(at)
        # The reference: every send of the last day, scanned (what the pacer used to do).
        day = [s for s in naive if s > at - timedelta(days=1)]
        hour = [s for s in day if s > at - timedelta(hours=1)]
        expected = at
        if len(hour) >= 50:
            expected = max(expected, hour[-50] + timedelta(hours=1))
        if len(day) >= 300:
            expected = max(expected, day[-300] + timedelta(days=1))
        assert allowed == expected, i
        if allowed == at:
            pacer.record(at)
            naive.append(at)
        assert len(pacer.hour) <= 50 and len(pacer.day) <= 300


async def test_a_restart_keeps_the_gap_after_a_reply(bot, chat: Chat, chain: DemoChain, clock,
                                                     transport):
    bot.settings.pacing.min_gap_seconds, bot.settings.pacing.jitter_seconds = 5, 2
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    replied_at = clock.now()
    assert chat.replies(chain.tenant_group)
    await bot.sender.stop()
    bot.sender.pacers.clear()            # a new process: nothing in memory
    await bot.sender.start()
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会")
    assert chat.replies(chain.subdistrict_group) == []   # the gap (5 s + up to 2 s) holds
    clock.advance(timedelta(seconds=6.9))
    await bot.idle()
    assert chat.replies(chain.subdistrict_group) == []
    clock.advance(timedelta(seconds=0.2))
    await bot.idle()
    sent = [s for s in transport.sent if s.room_id == chain.subdistrict_group]
    assert len(sent) == 1 and clock.now() - replied_at >= timedelta(seconds=7)


async def test_a_clock_gone_back_does_not_hold_the_sends_until_it_catches_up(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    """Sends recorded at a time the clock has since gone back from (NTP stepped it back, a
    fixed clock after a restart) count as made now: the next send waits the usual gap, not
    the length of the jump."""
    bot.settings.pacing.min_gap_seconds, bot.settings.pacing.jitter_seconds = 5, 0
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    assert chat.replies(chain.tenant_group)
    await bot.sender.stop()
    bot.sender.pacers.clear()            # a new process: nothing in memory
    clock.advance(timedelta(hours=-2))   # ... on a clock two hours behind
    await bot.sender.start()
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会")
    assert chat.replies(chain.subdistrict_group) == []   # the gap holds ...
    clock.advance(timedelta(seconds=5.1))
    await bot.idle()
    # ... and no more than the gap.
    assert [s for s in transport.sent if s.room_id == chain.subdistrict_group]
