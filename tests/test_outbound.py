"""Masking by construction (issue 8, items 3 and 4): every text leaves through one masking
seam, notices and schedules are stored masked, echoes of masked sends still confirm delivery,
wrong invite codes are never repeated."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from bot.pii import find_numbers
from bot.services import notice as notices
from models import Group, Notice, NoticeSchedule, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain

NOTICE = "通知 请联系钱多多 13612345678 身份证11010519491231002X 核实"
MASKED = "请联系钱多多 136****5678 身份证110105********002X 核实"


async def test_a_notice_goes_out_masked_to_every_group_and_is_stored_masked(
        bot, chat: Chat, chain: DemoChain, transport):
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    delivered = [s for s in transport.sent
                 if s.text.startswith("【通知#1】") and "已发出" not in s.text]
    assert chain.tenant_group in {s.room_id for s in delivered}
    assert len(delivered) == 6
    assert {s.text for s in delivered} == {"【通知#1】" + MASKED}
    assert all(find_numbers(s.text) == [] for s in transport.sent)
    async with bot.session() as s:
        assert (await s.execute(select(Notice.text))).scalar_one() == MASKED
        texts = (await s.execute(select(OutboxMessage.text))).scalars().all()
    assert all(t is None or find_numbers(t) == [] for t in texts)


async def test_a_scheduled_notice_is_stored_masked_and_not_repeated_in_the_confirmation(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander,
                   "定时通知 明天8:00 请联系 139.0579.1234 核实")
    [reply] = chat.replies(chain.subdistrict_group)
    assert "139****1234" in reply
    assert find_numbers(reply) == []
    async with bot.session() as s:
        stored = (await s.execute(select(NoticeSchedule.text))).scalar_one()
    assert stored == "请联系 139****1234 核实"


async def test_a_wrong_invite_code_is_not_echoed(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, "stranger-1", "绑定 13905791234")
    [reply] = chat.replies(chain.tenant_group)
    assert reply == "邀请码无效，请核对后重发。"
    await chat.say(chain.tenant_group, "stranger-1", "绑定 QQ7Z9X")
    assert chat.replies(chain.tenant_group) == ["邀请码无效，请核对后重发。"]


async def test_every_send_passes_the_masking_seam(bot, chat: Chat, chain: DemoChain,
                                                  transport):
    """A reply or an outbox row written around every service still goes out masked."""
    # The transport the sender was given is the seam: whatever reaches it goes out masked.
    assert bot.sender.transport is bot.outbound
    await bot.outbound.send(chain.team_group, "回复 1 3 9 0 5 7 9 1 2 3 4 好的")
    assert transport.sent[-1].text == "回复 139****1234 好的"
    async with bot.session() as s, s.begin():
        group = (await s.execute(select(Group).where(
            Group.room_id == chain.landlords_group))).scalar_one()
        # A Core insert passes no ORM hook: only the seam stands between it and the group.
        await s.execute(insert(OutboxMessage.__table__).values(
            group_id=group.id, account="", text="房东电话 一三九零五七九一二三四", source="test",
            mentions=[], status=OutboxStatus.PENDING, created_at=bot.now(), attempts=0,
            resend=False, urgent=False))
    await bot.idle()
    assert transport.sent[-1].room_id == chain.landlords_group
    assert transport.sent[-1].text == "房东电话 139****1234"


async def test_the_echo_of_a_masked_notice_confirms_it_after_a_restart(
        bot, chat: Chat, chain: DemoChain, transport, clock):
    """The stored text, the digest and the sent text agree: a notice whose row was left
    `sending` by a crash is confirmed by its (masked) echo, not sent again."""
    await chat.say(chain.subdistrict_group, chain.commander, NOTICE)
    sent_before = len(transport.sent)
    async with bot.session() as s, s.begin():
        # The crash: the platform sent every row (its echoes are recorded) but the process
        # died before marking them sent.
        await s.execute(update(OutboxMessage).where(OutboxMessage.notice_id == 1).values(
            status=OutboxStatus.SENDING, attempt_at=clock.now(), sent_at=None))
    await bot.sender.stop()
    await bot.sender.start()
    await bot.idle()
    assert len(transport.sent) == sent_before
    async with bot.session() as s:
        statuses = set((await s.execute(select(OutboxMessage.status).where(
            OutboxMessage.notice_id == 1))).scalars())
    assert statuses == {OutboxStatus.SENT}


async def test_an_unmasked_row_is_still_matched_by_its_masked_echo(
        bot, chat: Chat, chain: DemoChain, transport, clock):
    """Even a row stored unmasked (an old database, a Core insert) matches the echo of what
    the seam sent, because the digest masks too."""
    assert notices.digest("电话 13905791234") == notices.digest("电话 139****1234")
    await bot.sender.stop()
    async with bot.session() as s, s.begin():
        group = (await s.execute(select(Group).where(
            Group.room_id == chain.landlords_group))).scalar_one()
        await s.execute(insert(OutboxMessage.__table__).values(
            group_id=group.id, account="", text="【提醒】电话 13905791234", source="test",
            mentions=[], status=OutboxStatus.PENDING, created_at=clock.now(), attempts=0,
            resend=False, urgent=False))
    await bot.sender.start()
    await bot.idle()
    assert transport.sent[-1].text == "【提醒】电话 139****1234"
    sent_before = len(transport.sent)
    async with bot.session() as s, s.begin():
        await s.execute(update(OutboxMessage).where(OutboxMessage.source == "test").values(
            status=OutboxStatus.SENDING, attempt_at=clock.now()))
    await bot.sender.stop()
    await bot.sender.start()
    await bot.idle()
    assert len(transport.sent) == sent_before
