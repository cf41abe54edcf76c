"""通知 down the chain: targets, outbox, acknowledgements, progress, reminders, escalation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import Group, Notice, NoticeRead, OutboxMessage, OutboxStatus
from schedules.jobs import check_notices
from tests.conftest import Chat, DemoChain, count

BELOW_FUTIAN = {"changchun@chatroom", "team1@chatroom", "team1-landlords@chatroom",
                "dong@chatroom", "ying@chatroom", "shoprow1@chatroom"}


def notice_rooms(transport, tag: str) -> list[str]:
    """Rooms the tagged notice itself went to (not the sender's confirmation)."""
    return [s.room_id for s in transport.sent
            if s.text.startswith(tag) and "已发出" not in s.text]


async def test_a_notice_reaches_every_group_below(bot, chat: Chat, chain: DemoChain, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请各房东今日完成楼道消毒")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.startswith("【通知#1】已发出：6 个群（2级 1，3级 1，4级 1，5级 3）")
    rooms = notice_rooms(transport, "【通知#1】请各房东今日完成楼道消毒")
    assert sorted(rooms) == sorted(BELOW_FUTIAN)
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.SENT) == 6


async def test_narrower_scopes(bot, chat: Chat, chain: DemoChain, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 今晚8点开视频会")
    assert sorted(notice_rooms(transport, "【通知#1】")) == [
        "changchun@chatroom", "team1@chatroom"]
    await chat.say(chain.subdistrict_group, chain.commander, "通知 长春第一作战小组 明早上门检查")
    assert sorted(notice_rooms(transport, "【通知#2】")) == sorted(
        BELOW_FUTIAN - {"changchun@chatroom"})
    await chat.say(chain.subdistrict_group, chain.commander, "通知 租客群 请配合测温")
    assert sorted(notice_rooms(transport, "【通知#3】")) == ["dong@chatroom", "ying@chatroom"]
    assert transport.sent[-1].text == "【通知#3】请配合测温"
    await chat.say(chain.community_group, chain.community_commander,
                   "紧急通知 房东群 立即排查返回人员")
    assert notice_rooms(transport, "【紧急通知#4】") == ["team1-landlords@chatroom"]


async def test_only_the_nodes_commander_may_send(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "通知 大家明天不要出门")
    assert "没有权限" in chat.replies(chain.tenant_group)[0]
    # A landlord sits in the tier-4 group, but the team member commands it.
    await chat.say(chain.landlords_group, chain.landlord, "通知 大家注意")
    assert "没有权限" in chat.replies(chain.landlords_group)[0]
    await chat.say(chain.landlords_group, chain.team_member, "通知 各位房东今天上报消毒")
    assert chat.replies(chain.landlords_group)[0].startswith("【通知#1】已发出：3 个群")
    assert await count(bot, Notice) == 1


async def test_a_landlord_notifies_nobody_when_nothing_is_below(bot, chat: Chat,
                                                                chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "通知 明天停水")
    assert chat.replies(chain.tenant_group) == ["下级没有已绑定的群，通知未发出。"]
    assert await count(bot, Notice) == 0


async def test_preview_sends_nothing(bot, chat: Chat, chain: DemoChain, transport):
    await chat.say(chain.subdistrict_group, chain.commander, "预览 通知 请各房东今日完成楼道消毒")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.startswith("预览（未发送）：共 6 个群（2级 1，3级 1，4级 1，5级 3）；发送账号：默认账号 6 个群")
    assert await count(bot, Notice) == 0 and await count(bot, OutboxMessage) == 0


async def test_acknowledgements_and_reads_are_counted_apart(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请各房东今日完成楼道消毒")
    await chat.say(chain.tenant_group, chain.tenant, "收到")        # a tenant: a read
    await chat.say(chain.tenant_group, chain.landlord, "收到！")    # the landlord: the ack
    await chat.say(chain.ying_group, chain.ying_tenant, "好的")
    await chat.say(chain.community_group, chain.community_commander, "1")
    assert chat.all_texts()[-1].startswith("【通知#1】")  # no chatter from the bot about acks
    await chat.say(chain.subdistrict_group, chain.commander, "进度")
    [reply] = chat.replies(chain.subdistrict_group)
    assert reply.splitlines() == [
        "【通知#1】进度：送达 6/6，确认 2/6，其他成员已读 2 人次",
        "2级：送达 1/1，确认 1/1",
        "3级：送达 1/1，确认 0/1，未确认：长春第一作战小组群",
        "4级：送达 1/1，确认 0/1，未确认：第一小组房东群",
        "5级：送达 3/3，确认 1/3，未确认：应天喜租客群、专业街一排商户群",
    ]
    assert await count(bot, NoticeRead) == 2


async def test_ack_applies_to_the_newest_unless_it_names_one(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 第一条")
    await chat.say(chain.subdistrict_group, chain.commander, "通知 第二条")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    await chat.say(chain.tenant_group, chain.landlord,
                   "「小助手：【通知#1】第一条」\n- - - - - - - - - - - - - - -\n收到")
    async with bot.session() as s:
        group = (await s.execute(select(Group).where(Group.room_id == chain.tenant_group))
                 ).scalar_one()
        acked = dict((await s.execute(select(OutboxMessage.notice_id, OutboxMessage.acked_at)
                                      .where(OutboxMessage.group_id == group.id))).all())
    assert acked[1] is not None and acked[2] is not None


async def test_progress_by_number_and_permissions(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 开会")
    await chat.say(chain.community_group, chain.community_commander, "进度 1")
    assert "没有权限" in chat.replies(chain.community_group)[0]
    await chat.say(chain.subdistrict_group, chain.commander, "进度 1")
    assert chat.replies(chain.subdistrict_group)[0].startswith("【通知#1】进度：送达 1/1")
    await chat.say(chain.subdistrict_group, chain.commander, "进度 99")
    assert chat.replies(chain.subdistrict_group) == ["没有找到通知#99。"]
    await chat.say(chain.community_group, chain.community_commander, "进度")
    assert chat.replies(chain.community_group) == ["您还没有发过通知。"]


async def test_silent_groups_are_reminded_then_escalated_once(bot, chat: Chat, chain: DemoChain,
                                                              clock, transport):
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    await chat.say(chain.ying_group, "sim-nobody", "收到")  # not the landlord: not an ack
    clock.advance(timedelta(hours=1, minutes=59))
    assert await check_notices(bot) == (0, 0)
    clock.advance(timedelta(minutes=1))
    chat._mark = len(transport.sent)
    assert await check_notices(bot) == (2, 0)
    await bot.idle()
    assert chat.replies(chain.tenant_group) == ["【通知#1】提醒：请回复“收到”确认已收到通知。"]
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    # 应天喜 has not bound yet: the reminder goes out, mentioning nobody.
    assert chat.mentions(chain.ying_group) == [()]
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    clock.advance(timedelta(hours=4))
    chat._mark = len(transport.sent)
    assert await check_notices(bot) == (0, 1)
    await bot.idle()
    assert chat.replies(chain.landlords_group) == [
        "【通知#1】「应天喜租客群」已6小时未确认收到，请督促落实。"]
    assert chat.mentions(chain.landlords_group) == [(chain.team_member,)]
    clock.advance(timedelta(hours=10))
    assert await check_notices(bot) == (0, 0)


async def test_urgent_notices_are_chased_sooner(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.subdistrict_group, chain.commander, "紧急通知 到2级 立即上报返回人员")
    clock.advance(timedelta(minutes=30))
    assert await check_notices(bot) == (1, 0)
    clock.advance(timedelta(minutes=90))
    assert await check_notices(bot) == (0, 1)
    await bot.idle()
    assert chat.transport.sent[-1].room_id == chain.subdistrict_group
    assert chat.transport.sent[-1].text == (
        "【紧急通知#1】「长春社区指挥群」已2小时未确认收到，请督促落实。")


async def test_long_notices_are_split_and_tagged(bot, chat: Chat, chain: DemoChain, transport):
    body = "请各房东落实以下事项。" * 250  # 2,750 characters
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到2级 " + body)
    parts = [s.text for s in transport.sent if s.room_id == chain.community_group]
    assert len(parts) == 2
    assert parts[0].startswith("【通知#1】(1/2)") and parts[1].startswith("【通知#1】(2/2)")
    assert all(len(p) <= 2000 for p in parts)
    assert "".join(p.split(")", 1)[1] for p in parts) == body


async def test_relayed_notice_is_not_sent_again(bot, chat: Chat, chain: DemoChain, clock,
                                                transport):
    bot.settings.pacing.min_gap_seconds = 5
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 今晚8点开会")
    assert notice_rooms(transport, "【通知#1】") == []  # the reply used the account's turn
    await chat.say(chain.community_group, chain.community_commander, "【通知#1】今晚8点开会")
    for _ in range(4):
        clock.advance(timedelta(seconds=5))
        await bot.idle()
    assert notice_rooms(transport, "【通知#1】") == ["team1@chatroom"]
    async with bot.session() as s:
        rows = (await s.execute(select(OutboxMessage.status, OutboxMessage.relayed)
                                .order_by(OutboxMessage.id))).all()
    assert rows == [(OutboxStatus.SENT, True), (OutboxStatus.SENT, False)]


async def test_acks_in_unbound_groups_and_by_strangers_are_silent(bot, chat: Chat,
                                                                   chain: DemoChain):
    await chat.say("nowhere@chatroom", "sim-x", "好的")
    await chat.say(chain.tenant_group, "sim-x", "收到")
    assert chat.replies("nowhere@chatroom") == [] and chat.replies(chain.tenant_group) == []


async def test_a_group_that_cannot_be_reached_does_not_block_the_others(
        bot, chat: Chat, chain: DemoChain, transport):
    from bot.transports.base import TransportError
    original = transport.send

    async def refuse_one(room_id, text, *, mentions=(), account=""):
        if room_id == chain.community_group and text.startswith("【通知#1】开会"):
            raise TransportError("not a member of this room", retryable=False)
        return await original(room_id, text, mentions=mentions, account=account)

    transport.send = refuse_one
    await chat.say(chain.subdistrict_group, chain.commander, "通知 到3级 开会")
    assert notice_rooms(transport, "【通知#1】开会") == ["team1@chatroom"]
    assert await count(bot, OutboxMessage, OutboxMessage.status == OutboxStatus.FAILED) == 1
    assert chat.replies(chain.subdistrict_group)[-1] == (
        "【通知#1】未能送达「长春社区指挥群」（已尝试 1 次：not a member of this room），请人工转发。")
    await chat.say(chain.subdistrict_group, chain.commander, "进度")
    assert "发送失败 1 个" in chat.replies(chain.subdistrict_group)[0]


async def test_the_notice_keeps_its_chinese_punctuation(bot, chat: Chat, chain: DemoChain,
                                                        transport):
    # Parsing folds ，：！ to ASCII (NFKC); what other groups read gets them back.
    await chat.say(chain.subdistrict_group, chain.commander,
                   "通知 到2级 请各房东今日完成楼道消毒，并回复：收到！会议20:00开始")
    assert notice_rooms(transport, "【通知#1】") == [chain.community_group]
    assert transport.sent[-1].text == "【通知#1】请各房东今日完成楼道消毒，并回复：收到！会议20:00开始"
