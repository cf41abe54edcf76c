"""反馈, 答复, 待办: problems go one tier up (masked), answers come back down."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot import texts
from bot.permission import STAFF
from models import Ticket
from tests.conftest import START, Chat, DemoChain, count

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
FULL_ID = re.compile(r"\d{17}[\dXx]")
LAMP = "3楼楼道灯坏了 请电工联系我13905791234"
LAMP_MASKED = "3楼楼道灯坏了 请电工联系我139****1234"


def up(id: int, group: str, name: str, text: str) -> str:
    return texts.Ticket.UP.format(id=id, group=group, name=name, text=text)


async def test_feedback_goes_one_tier_up_masked(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 " + LAMP)
    assert chat.replies(chain.tenant_group) == [texts.Ticket.OPENED.format(id=1)]
    assert chat.replies(chain.landlords_group) == [up(1, "董宝明租客群", "潘先生", LAMP_MASKED)]
    # Only the group one tier up hears of it.
    assert {s.room_id for s in chat.transport.sent} == {chain.tenant_group, chain.landlords_group}
    async with bot.session() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
    assert ticket.text == LAMP_MASKED and ticket.status == "open"
    assert not any(FULL_MOBILE.search(t) for t in chat.all_texts())


async def test_names_and_id_numbers_are_masked(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant2, "反馈 身份证330782199001011234要复印吗",
                   name="王明")
    assert chat.replies(chain.landlords_group) == [
        up(1, "董宝明租客群", "王*", "身份证330782********1234要复印吗")]
    await chat.say(chain.tenant_group, chain.landlord, "反馈 302租客 13800138000 发热已送医")
    assert chat.replies(chain.landlords_group) == [
        up(2, "董宝明租客群", "董**", "302租客 138****8000 发热已送医")]
    sent = chat.all_texts()
    assert not any(FULL_MOBILE.search(t) or FULL_ID.search(t) for t in sent), sent
    async with bot.session() as s:
        stored = (await s.execute(select(Ticket.text))).scalars().all()
    assert not any(FULL_MOBILE.search(t) or FULL_ID.search(t) for t in stored)


async def test_todo_and_answer(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 " + LAMP)
    clock.advance(timedelta(minutes=30))
    await chat.say(chain.ying_group, chain.ying_tenant, "反馈 楼下垃圾没人清")
    await chat.say(chain.landlords_group, chain.team_member, "待办")
    assert chat.replies(chain.landlords_group) == ["\n".join([
        texts.Ticket.TODO_HEAD.format(n=2),
        texts.Ticket.TODO_LINE.format(id=1, group="董宝明租客群", text=LAMP_MASKED,
                                      when="2月21日10:00"),
        texts.Ticket.TODO_LINE.format(id=2, group="应天喜租客群", text="楼下垃圾没人清",
                                      when="2月21日10:30"),
    ])]
    await chat.say(chain.landlords_group, chain.team_member, "答复 1 已安排电工明天上门")
    assert chat.replies(chain.landlords_group) == [texts.Ticket.ANSWERED.format(id=1)]
    assert chat.replies(chain.tenant_group) == [texts.Ticket.DOWN.format(
        id=1, asked=LAMP_MASKED[:30], text="已安排电工明天上门", again="")]
    assert chat.mentions(chain.tenant_group) == [(chain.tenant,)]
    assert chat.replies(chain.ying_group) == []
    async with bot.session() as s:
        ticket = await s.get(Ticket, 1)
    assert ticket.status == "answered" and ticket.answered_at == clock.now()
    await chat.say(chain.landlords_group, chain.team_member, "待办")
    assert chat.replies(chain.landlords_group) == ["\n".join([
        texts.Ticket.TODO_HEAD.format(n=1),
        texts.Ticket.TODO_LINE.format(id=2, group="应天喜租客群", text="楼下垃圾没人清",
                                      when="2月21日10:30")])]
    await chat.say(chain.landlords_group, chain.team_member, "答复 2 明早清理")
    await chat.say(chain.landlords_group, chain.team_member, "待办")
    assert chat.replies(chain.landlords_group) == [texts.Ticket.TODO_EMPTY]


async def test_a_second_answer_is_marked_as_such(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道灯坏了")
    await chat.say(chain.landlords_group, chain.team_member, "答复 1 明天修")
    await chat.say(chain.landlords_group, chain.team_member, "答复 1 电工改到后天 联系13611112222")
    assert chat.replies(chain.tenant_group) == [texts.Ticket.DOWN.format(
        id=1, asked="楼道灯坏了", text="电工改到后天 联系136****2222", again=texts.Ticket.AGAIN)]
    assert not any(FULL_MOBILE.search(t) for t in chat.all_texts())


async def test_answers_belong_to_the_node_the_ticket_went_to(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道灯坏了")
    # The team above the landlords group is not where it went.
    await chat.say(chain.team_group, chain.team_commander, "答复 1 我来处理")
    assert chat.replies(chain.team_group) == [texts.Ticket.UNKNOWN.format(id=1)]
    await chat.say(chain.community_group, chain.community_commander, "答复 1 我来处理")
    assert chat.replies(chain.community_group) == [texts.Ticket.UNKNOWN.format(id=1)]
    await chat.say(chain.landlords_group, chain.team_member, "答复 99 好的")
    assert chat.replies(chain.landlords_group) == [texts.Ticket.UNKNOWN.format(id=99)]
    await chat.say(chain.team_group, chain.team_commander, "待办")
    assert chat.replies(chain.team_group) == [texts.Ticket.TODO_EMPTY]
    assert chat.replies(chain.tenant_group) == []
    async with bot.session() as s:
        assert (await s.get(Ticket, 1)).status == "open"


async def test_tenants_cannot_answer_or_list(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "反馈 楼道灯坏了")
    await chat.say(chain.tenant_group, chain.tenant2, "答复 1 我修好了")
    assert chat.replies(chain.tenant_group) == [
        texts.General.NOT_PERMITTED.format(command="答复", who=STAFF.name)]
    await chat.say(chain.tenant_group, chain.tenant2, "待办")
    assert chat.replies(chain.tenant_group) == [
        texts.General.NOT_PERMITTED.format(command="待办", who=STAFF.name)]


async def test_feedback_from_the_tier4_group_goes_to_the_team(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.landlords_group, chain.landlord, "反馈 消毒液不够了")
    assert chat.replies(chain.landlords_group) == [texts.Ticket.OPENED.format(id=1)]
    assert chat.replies(chain.team_group) == [up(1, "第一小组房东群", "董**", "消毒液不够了")]
    await chat.say(chain.team_group, chain.team_commander, "待办")
    [todo] = chat.replies(chain.team_group)
    assert todo.splitlines()[0] == texts.Ticket.TODO_HEAD.format(n=1)
    await chat.say(chain.team_group, chain.team_commander, "答复 1 明天送两箱")
    assert chat.replies(chain.landlords_group) == [texts.Ticket.DOWN.format(
        id=1, asked="消毒液不够了", text="明天送两箱", again="")]
    assert chat.mentions(chain.landlords_group) == [(chain.landlord,)]


async def test_feedback_only_in_tiers_4_and_5(bot, chat: Chat, chain: DemoChain):
    wrong = texts.General.WRONG_GROUP.format(
        command="反馈", where="、".join([texts.TIER_NAMES[4], texts.TIER_NAMES[5]]))
    for room, who in [(chain.subdistrict_group, chain.commander),
                      (chain.community_group, chain.community_commander),
                      (chain.team_group, chain.team_commander)]:
        await chat.say(room, who, "反馈 人手不够")
        assert chat.replies(room) == [wrong]
    assert await count(bot, Ticket) == 0


async def test_feedback_in_an_unbound_group_gets_the_binding_hint(bot, chat: Chat,
                                                                 chain: DemoChain):
    await chat.say("nowhere@chatroom", "sim-x", "反馈 楼道灯坏了")
    assert chat.replies("nowhere@chatroom") == [texts.General.GROUP_NOT_BOUND]
    assert await count(bot, Ticket) == 0


async def test_ticket_time_is_the_clock(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "反馈 3号商位门口积水")
    assert chat.replies(chain.landlords_group) == [
        up(1, "专业街一排商户群", "王*", "3号商位门口积水")]
    async with bot.session() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
    assert ticket.created_at == START



async def test_landlords_in_the_tier4_group_do_not_answer_for_the_team(bot, chat: Chat,
                                                                       chain: DemoChain):
    # Landlords and shop captains sit in the tier-4 group to report, but a ticket sent there is
    # for the team member to answer: another landlord must not close 应天喜's tenant's ticket.
    await chat.say(chain.ying_group, chain.ying_tenant, "反馈 楼下垃圾没人清")
    await chat.say(chain.landlords_group, chain.captain, "答复 1 不归我管")
    assert chat.replies(chain.landlords_group) == [
        texts.General.NOT_PERMITTED.format(command="答复", who=STAFF.name)]
    await chat.say(chain.landlords_group, chain.landlord, "答复 1 我去看看")
    assert chat.replies(chain.landlords_group) == [
        texts.General.NOT_PERMITTED.format(command="答复", who=STAFF.name)]
    assert chat.replies(chain.ying_group) == []
    async with bot.session() as s:
        assert (await s.get(Ticket, 1)).status == "open"
