"""Acks whenever they come: a 收到 for a notice whose row is pending (waiting for a resend or a
retry) or sending counts as delivered and acknowledged, and cancels the resend, the
reminder and the escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Group, OutboxMessage, OutboxStatus
from schedules.jobs import check_notices
from tests.conftest import Chat, DemoChain


async def _tenant_row(bot, chain: DemoChain) -> OutboxMessage:
    async with bot.session() as s:
        return (await s.execute(select(OutboxMessage).join(Group).where(
            Group.room_id == chain.tenant_group, OutboxMessage.notice_id == 1))).scalar_one()


@pytest.mark.parametrize("state", ["resend", "sending", "retry"])
@pytest.mark.parametrize("named", [False, True])
async def test_an_ack_before_the_resend_counts_and_cancels_it(
        bot, chat: Chat, chain: DemoChain, clock, transport, state, named):
    await bot.sender.stop()   # the process was killed: nothing sends while we set the scene
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    async with bot.session() as s, s.begin():
        row = (await s.execute(select(OutboxMessage).join(Group).where(
            Group.room_id == chain.tenant_group, OutboxMessage.notice_id == 1))).scalar_one()
        if state == "resend":     # reconciled after the kill, no echo: waits for its 补发
            row.status, row.resend, row.attempts = OutboxStatus.PENDING, True, 1
        elif state == "sending":  # in flight when the kill came
            row.status, row.attempts, row.attempt_at = OutboxStatus.SENDING, 1, clock.now()
        else:                     # a failed attempt, waiting for its retry
            row.status, row.attempts, row.attempt_at = OutboxStatus.PENDING, 1, clock.now()
            row.next_attempt_at = clock.now() + timedelta(minutes=1)
    # The landlord did receive it, and says so.
    await chat.say(chain.tenant_group, chain.landlord, "收到 #1" if named else "收到")
    row = await _tenant_row(bot, chain)
    assert row.status == OutboxStatus.SENT and row.acked_at == clock.now()
    assert row.acked_by_id is not None
    mark = len(transport.sent)
    await bot.sender.start()
    for _ in range(3):
        clock.advance(timedelta(hours=3))
        await check_notices(bot)
        await bot.idle()
    to_tenants = [m.text for m in transport.sent[mark:] if m.room_id == chain.tenant_group]
    assert to_tenants == []   # no 补发, no reminder
    escalations = [m.text for m in transport.sent[mark:] if "董宝明租客群" in m.text]
    assert escalations == []  # no false escalation about this group
    await chat.say(chain.community_group, chain.community_commander, "进度 1")
    assert "董宝明租客群" not in chat.replies(chain.community_group)[0]


async def test_an_unnamed_ack_does_not_take_a_notice_never_sent(
        bot, chat: Chat, chain: DemoChain, clock, transport):
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 第一条")
    await bot.sender.stop()
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 第二条")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    async with bot.session() as s:
        rows = dict((await s.execute(select(OutboxMessage.notice_id, OutboxMessage.acked_at)
                                     .join(Group).where(Group.room_id == chain.tenant_group)
                                     )).tuples().all())
    # Notice 2 never left: the 收到 is for notice 1, and notice 2 still goes out.
    assert rows[1] is not None and rows[2] is None
    await bot.sender.start()
    await bot.idle()
    assert [m.text for m in transport.sent if m.room_id == chain.tenant_group][-1] == (
        "【通知#2】第二条")
