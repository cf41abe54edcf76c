"""The outbox sender: pacing, caps, rate-limit pauses, retries, splitting and crash
reconciliation, with a fake clock and the in-memory platform."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.config import PacingSettings
from bot.sender import Pacer, _accounts_with
from bot.services import notice as notices
from bot.transports.base import TransportError
from models import BotAccount, Echo, Group, OutboxMessage, OutboxStatus
from tests.conftest import START, Chat, DemoChain, count


def tagged(transport, tag: str) -> list[str]:
    """Rooms the tagged notice itself went to (not the sender's confirmation)."""
    return [s.room_id for s in transport.sent
            if s.text.startswith(tag) and "已发出" not in s.text]


def test_pacer_gap_jitter_and_caps():
    pacer = Pacer("a", PacingSettings(min_gap_seconds=3, jitter_seconds=7, hourly_cap=3,
                                      daily_cap=5), random.Random(1))
    t = START
    assert pacer.next_allowed(t) == t
    pacer.record(t)
    assert 3 <= (pacer.next_allowed(t) - t).total_seconds() <= 10
    for i in range(1, 3):
        pacer.record(t + timedelta(minutes=i))
    # Three sends within the hour: the fourth waits until the first is an hour old.
    assert pacer.next_allowed(t + timedelta(minutes=5)) == t + timedelta(hours=1)
    pacer.record(t + timedelta(hours=1))
    pacer.record(t + timedelta(hours=2))
    # Five within the day: the sixth waits a day after the first.
    assert pacer.next_allowed(t + timedelta(hours=3)) == t + timedelta(days=1)


def test_pause_is_longer_when_it_recurs_within_a_day():
    pacer = Pacer("a", PacingSettings(), random.Random(1))
    assert pacer.pause(START) == START + timedelta(minutes=30)
    later = START + timedelta(hours=5)
    assert pacer.pause(later) == later + timedelta(hours=12)
    much_later = later + timedelta(days=2)
    assert pacer.pause(much_later) == much_later + timedelta(minutes=30)


def test_split_keeps_every_character():
    text = "第一段。" * 700
    parts = notices.render_parts(text=text, notice_id=5, urgent=False, resend=False, limit=2000)
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)
    assert parts[0].startswith("【通知#5】(1/2)")
    assert "".join(p.split(")", 1)[1] for p in parts) == text


async def test_paced_sends_follow_the_clock(bot, chat: Chat, chain: DemoChain, clock,
                                            transport):
    bot.settings.pacing.min_gap_seconds = 3
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请配合")
    assert tagged(transport, "【通知#1】") == []   # the reply took the account's turn
    clock.advance(timedelta(seconds=2.9))
    await bot.idle()
    assert tagged(transport, "【通知#1】") == []
    sent = []
    for _ in range(6):
        clock.advance(timedelta(seconds=3))
        await bot.idle()
        sent.append(len(tagged(transport, "【通知#1】")))
    assert sent == [1, 2, 3, 4, 5, 6]
    # Never more than one row in `sending` per account while paced.
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENDING) == 0


async def test_rate_limit_pauses_that_account_and_tells_the_sender(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    async with bot.session() as s, s.begin():
        # The subdistrict group is served by account "a", everything below by "b".
        await s.execute(update(Group).values(account="b"))
        await s.execute(update(Group).where(Group.room_id == chain.subdistrict_group)
                        .values(account="a"))
    original = transport.send
    limited = [TransportError("发送消息过于频繁", rate_limited=True)]

    async def limit_b_once(room_id, text, *, mentions=(), account=""):
        if account == "b" and limited:
            raise limited.pop()
        return await original(room_id, text, mentions=mentions, account=account)

    transport.send = limit_b_once
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert tagged(transport, "【通知#1】开会") == []
    notes = [s for s in transport.sent if s.room_id == chain.subdistrict_group]
    assert notes[-1].text.startswith("【通知#1】提示：发送账号“b”被平台限制（发送消息过于频繁），"
                                     "暂停发送至 02月21日10:30")
    assert notes[-1].mentions == (chain.commander,)
    async with bot.session() as s:
        account = await s.get(BotAccount, "b")
    assert account is not None and account.paused_until == clock.now() + timedelta(minutes=30)
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.PENDING) == 2
    clock.advance(timedelta(minutes=30))
    await bot.idle()
    assert sorted(tagged(transport, "【通知#1】开会")) == ["changchun@chatroom", "team1@chatroom"]


async def test_a_failing_group_is_retried_with_backoff_then_reported(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    original = transport.send
    attempts = []

    async def flaky(room_id, text, *, mentions=(), account=""):
        if room_id == chain.team_group:
            attempts.append(clock.now())
            raise TransportError("connection reset")
        return await original(room_id, text, mentions=mentions, account=account)

    transport.send = flaky
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert tagged(transport, "【通知#1】开会") == ["changchun@chatroom"]
    for _ in range(5):
        clock.advance(timedelta(minutes=10))
        await bot.idle()
    gaps = [(b - a).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert len(attempts) == 5 and gaps[0] >= 30 and gaps[1] >= 60 and gaps[2] >= 120
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.FAILED) == 1
    note = [s for s in transport.sent if s.room_id == chain.subdistrict_group][-1]
    assert note.text == ("【通知#1】未能送达「长春第一作战小组群」（已尝试 5 次：connection reset），"
                         "请人工转发。")


@pytest.mark.parametrize("echo_seen", [True, False])
async def test_rows_left_sending_by_a_crash_are_reconciled(
        bot, chat: Chat, chain: DemoChain, clock, transport, echo_seen):
    await bot.sender.stop()  # the "crashed" process: nothing sends while we set the scene
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会")
    async with bot.session() as s, s.begin():
        row = (await s.execute(select(OutboxMessage).where(
            OutboxMessage.notice_id.is_not(None)))).scalar_one()
        group = await s.get(Group, row.group_id)
        row.status, row.attempt_at, row.attempts = OutboxStatus.SENDING, clock.now(), 1
        if echo_seen:
            s.add(Echo(transport="sim", room_id=group.room_id, message_id="m1",
                       digest=notices.digest("【通知#1】开会"), at=clock.now()))
    before = len(transport.sent)
    await bot.sender.start()
    await bot.idle()
    async with bot.session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert row.status == OutboxStatus.SENT
    # (The reply to 通知, queued while the sender was down, goes out now too.)
    resent = [s.text for s in transport.sent[before:] if "已发出" not in s.text]
    assert resent == ([] if echo_seen else ["【通知#1】（补发）开会"])


async def test_the_bots_echoes_are_recorded_for_reconciliation(bot, chat: Chat,
                                                               chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会")
    async with bot.session() as s:
        echoes = (await s.execute(select(Echo.room_id, Echo.digest))).all()
    assert (chain.community_group, notices.digest("【通知#1】开会")) in echoes


async def test_no_connection_costs_no_attempt(bot, chat: Chat, chain: DemoChain, clock,
                                              transport):
    original = transport.send
    down = {"on": True}

    async def offline(room_id, text, *, mentions=(), account=""):
        if down["on"] and text.startswith("【通知#1】开会"):
            raise TransportError("not connected", not_sent=True)
        return await original(room_id, text, mentions=mentions, account=account)

    transport.send = offline
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    for _ in range(20):  # a long outage: far more tries than max_attempts
        clock.advance(timedelta(seconds=30))
        await bot.idle()
    async with bot.session() as s:
        rows = (await s.execute(select(OutboxMessage.status, OutboxMessage.attempts))).all()
    assert rows == [(OutboxStatus.PENDING, 0), (OutboxStatus.PENDING, 0)]
    down["on"] = False
    clock.advance(timedelta(seconds=30))
    await bot.idle()
    assert sorted(tagged(transport, "【通知#1】开会")) == ["changchun@chatroom", "team1@chatroom"]


def test_the_default_account_has_one_pacer_under_both_names():
    from zoneinfo import ZoneInfo

    from bot.clock import FakeClock
    from bot.sender import OutboxSender

    sender = OutboxSender(sessions=None, transport=None, clock=FakeClock(START),  # type: ignore[arg-type]
                          pacing=PacingSettings(), zone=ZoneInfo("Asia/Shanghai"),
                          default_account="main")
    assert sender.pacer("") is sender.pacer("main")
    assert sender.pacer("other") is not sender.pacer("main")


async def test_the_accounts_needing_a_worker_are_found_by_seeks(bot, chat: Chat,
                                                                chain: DemoChain):
    """Every wake looks for accounts with rows but no worker: each account with pending or
    sending rows is found ("" included, names in order whatever their rows' order), none whose
    rows are all settled."""
    await chat.say(chain.subdistrict_group, chain.commander, "通知 今晚开会")
    await bot.idle()
    plan = [("", OutboxStatus.PENDING), ("b", OutboxStatus.SENDING),
            ("a-1", OutboxStatus.PENDING), ("zz", OutboxStatus.SENT),
            ("c", OutboxStatus.FAILED), ("b", OutboxStatus.PENDING)]
    async with bot.session() as s, s.begin():
        ids = sorted((await s.execute(select(OutboxMessage.id).where(
            OutboxMessage.notice_id.is_not(None)))).scalars())
        assert len(ids) >= len(plan)
        await s.execute(update(OutboxMessage).values(status=OutboxStatus.SENT))
        for row_id, (account, status) in zip(reversed(ids), plan, strict=False):
            await s.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                            .values(account=account, status=status))
        # Read inside the transaction and rolled back: the running sender never sees them.
        both = await _accounts_with(s, (OutboxStatus.PENDING, OutboxStatus.SENDING))
        sending = await _accounts_with(s, (OutboxStatus.SENDING,))
        await s.rollback()
    assert both == ["", "a-1", "b"]
    assert sending == ["b"]
