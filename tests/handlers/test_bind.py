"""绑定 and 绑定群: invite codes bind contact ids and rooms; names are never identities."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot import texts
from bot.domain import UserError
from bot.services import chain as chain_service
from models import Group, InviteCode, InviteKind, LandlordReport, Membership, Role
from tests.conftest import Chat, DemoChain, count


async def _invite(bot, node_name: str, role: Role | None) -> str:
    async with bot.session() as s, s.begin():
        node = await chain_service.find_node(s, ref=node_name)
        invite = await chain_service.issue_invite(
            s, node=node, kind=InviteKind.PERSON if role else InviteKind.GROUP, role=role,
            now=bot.now(), ttl=timedelta(days=7))
        return invite.code


async def test_landlord_binds_with_an_invite_code(bot, chat: Chat, chain: DemoChain):
    code = await _invite(bot, "应天喜出租房", Role.LANDLORD)
    await chat.say(chain.ying_group, "sim-yingtianxi", f"绑定 {code.lower()}", name="应天喜")
    assert chat.replies(chain.ying_group) == [
        "绑定成功：应天喜，应天喜出租房 房东。发送“帮助”查看可用命令。"]
    await chat.say(chain.ying_group, "sim-yingtianxi", "房东上报 消毒")
    assert chat.replies(chain.ying_group) == ["已记录：2月21日 公共区域消毒。"]
    assert await count(bot, LandlordReport) == 1


async def test_a_code_is_single_use(bot, chat: Chat, chain: DemoChain):
    code = await _invite(bot, "应天喜出租房", Role.LANDLORD)
    await chat.say(chain.ying_group, "sim-yingtianxi", f"绑定 {code}")
    await chat.say(chain.ying_group, "sim-other", f"绑定 {code}", name="应天喜")
    assert chat.replies(chain.ying_group) == [f"邀请码「{code}」已经用过了，请找指挥长重新发放。"]
    assert await count(bot, Membership, Membership.role == Role.LANDLORD) == 2


async def test_a_code_expires(bot, chat: Chat, chain: DemoChain, clock):
    code = await _invite(bot, "应天喜出租房", Role.LANDLORD)
    clock.advance(timedelta(days=7, minutes=1))
    await chat.say(chain.ying_group, "sim-yingtianxi", f"绑定 {code}")
    assert chat.replies(chain.ying_group) == [f"邀请码「{code}」已过期，请找指挥长重新发放。"]


async def test_unknown_and_wrong_kind_codes(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.ying_group, "sim-yingtianxi", "绑定 ZZZZZZ")
    assert chat.replies(chain.ying_group) == ["邀请码无效，请核对后重发。"]
    code = await _invite(bot, "应天喜出租房", None)
    await chat.say(chain.ying_group, "sim-yingtianxi", f"绑定 {code}")
    assert chat.replies(chain.ying_group) == [
        f"这是群邀请码，请在要绑定的群里发送：绑定群 {code}"]


async def test_already_holding_the_role_keeps_the_code_unused(bot, chat: Chat,
                                                              chain: DemoChain):
    code = await _invite(bot, "董宝明出租房", Role.LANDLORD)
    await chat.say(chain.tenant_group, chain.landlord, f"绑定 {code}")
    assert chat.replies(chain.tenant_group) == ["您已经是董宝明出租房的房东，无需重复绑定。"]
    await chat.say(chain.tenant_group, "sim-newlandlord", f"绑定 {code}", name="董二")
    assert chat.replies(chain.tenant_group)[0].startswith("绑定成功：董二")


async def test_a_room_is_bound_by_a_group_code(bot, chat: Chat, chain: DemoChain, transport):
    code = await _invite(bot, "应天喜出租房", None)
    msg = transport.message("ying2@chatroom", chain.ying_tenant, f"绑定群 {code}",
                            room_topic="应天喜二号楼租客群")
    chat._mark = len(transport.sent)
    await transport.inject(msg)
    await bot.idle()
    assert chat.replies("ying2@chatroom") == [
        "本群已绑定到「应天喜出租房」（房东+租客群）。"]
    assert await count(bot, Group, Group.title == "应天喜二号楼租客群") == 1
    await chat.say("ying2@chatroom", "sim-newtenant", "我回来了 安徽阜阳 13611112222")
    assert chat.replies("ying2@chatroom")[0].startswith("已登记")
    other = await _invite(bot, "董宝明出租房", None)
    await chat.say("ying2@chatroom", chain.ying_tenant, f"绑定群 {other}")
    assert chat.replies("ying2@chatroom") == ["本群已经绑定到「应天喜出租房」，不能再绑定。"]


async def test_a_code_redeemed_by_two_transactions_at_once_is_used_once(bot, chain: DemoChain):
    # The second waits for the first to end, then finds the code used (it never overwrites
    # the first's redemption: one code, one person).
    code = await _invite(bot, "应天喜出租房", Role.LANDLORD)
    taken, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with bot.session() as s, s.begin():
            await chain_service._take_invite(s, code=code, kind=InviteKind.PERSON,
                                             now=bot.now(), used_by="sim-first")
            await s.flush()
            taken.set()
            await release.wait()

    async def second() -> str:
        async with bot.session() as s, s.begin():
            try:
                await chain_service._take_invite(s, code=code, kind=InviteKind.PERSON,
                                                 now=bot.now(), used_by="sim-second")
                await s.flush()
            except UserError as refused:
                return refused.text
            return "taken"

    one = asyncio.create_task(first())
    await asyncio.wait_for(taken.wait(), 30)
    two = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    assert not two.done()  # waiting for the first
    release.set()
    await asyncio.wait_for(one, 30)
    assert await asyncio.wait_for(two, 30) == texts.Bind.USED.format(code=code)
    async with bot.session() as s:
        invite = (await s.execute(select(InviteCode).where(InviteCode.code == code))).scalar_one()
        assert invite.used_by == "sim-first"
