"""Revocation: 移除, 退租, a member leaving a group, the CLI and chain import --prune."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import select

from bot import chainfile
from bot.services import membership
from models import Contact, Membership, Person, Removal, TenantStay
from tests.conftest import Chat, DemoChain, count

DEMO = Path(__file__).parents[2] / "bot" / "demo" / "chain.toml"


async def say_mentioning(chat: Chat, room: str, contact: str, text: str,
                         mentions: tuple[str, ...]) -> None:
    message = dataclasses.replace(chat.transport.message(room, contact, text),
                                  mention_ids=mentions)
    chat._mark = len(chat.transport.sent)
    await chat.transport.inject(message)
    await chat.app.idle()


async def removals(bot) -> list[tuple[str, str, str | None, str, str]]:
    async with bot.session() as s:
        rows = (await s.execute(
            select(Removal.kind, Person.name, Removal.role, Removal.via, Removal.reason)
            .join(Person, Person.id == Removal.person_id).order_by(Removal.id))).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_the_landlord_ends_a_tenancy(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant2, "我回来了 湖南长沙 13800138000")
    await chat.say(chain.tenant_group, "sim-stranger", "帮助")
    stranger_help = chat.replies(chain.tenant_group)
    await chat.say(chain.tenant_group, chain.landlord, "退租 王明 已搬走")
    assert chat.replies(chain.tenant_group) == ["已为 王* 办理退租，不再列入租客名单。"]
    assert await removals(bot) == [("tenancy", "王明", "tenant", "chat", "已搬走")]
    async with bot.session() as s:
        stay = (await s.execute(select(TenantStay))).scalar_one()
        assert stay.ended_at is not None
        by = (await s.execute(select(Removal.by_id, Removal.at))).one()
        dong = (await s.execute(select(Person.id).where(Person.name == "董宝明"))).scalar_one()
        assert by.by_id == dong and by.at is not None
    # The removed tenant now gets what a stranger gets.
    await chat.say(chain.tenant_group, chain.tenant2, "帮助")
    assert chat.replies(chain.tenant_group) == stranger_help
    await chat.say(chain.tenant_group, chain.tenant2, "体温 36.5")
    assert chat.replies(chain.tenant_group) == [
        "没有找到您的返回登记，请先发送：租客返回 姓名 手机号 来自哪里"]
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    assert chat.replies(chain.tenant_group) == ["目前没有登记返回的租客。"]
    await chat.say(chain.tenant_group, chain.landlord, "退租 王明")
    assert chat.replies(chain.tenant_group) == ["本群没有名为「王*」的租客。"]


async def test_the_team_member_removes_a_landlord(bot, chat: Chat, chain: DemoChain):
    await say_mentioning(chat, chain.landlords_group, chain.team_member,
                         "移除 @董宝明 不再出租", (chain.landlord,))
    assert chat.replies(chain.landlords_group) == ["已移除 董** 的身份：董宝明出租房房东。"]
    assert await removals(bot) == [("role", "董宝明", "landlord", "chat", "不再出租")]
    # Removed: what a stranger gets, in both of his former groups.
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    assert chat.replies(chain.tenant_group) == [
        "「我的租客」由房东使用，您没有权限。如需开通，请找指挥长要邀请码：绑定 邀请码"]
    await chat.say(chain.landlords_group, chain.landlord, "房东上报 消毒")
    assert "您没有权限" in chat.replies(chain.landlords_group)[0]


async def test_only_whoever_grants_a_role_takes_it_away(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "移除 王明")
    assert chat.replies(chain.tenant_group) == [
        "「移除」由本群指挥长或上级指挥长使用，您没有权限。"]
    await chat.say(chain.tenant_group, chain.tenant, "退租 王明")
    assert chat.replies(chain.tenant_group) == [
        "「退租」由本群指挥长或上级指挥长使用，您没有权限。"]
    await chat.say(chain.tenant_group, chain.landlord, "移除 董宝明")
    assert chat.replies(chain.tenant_group) == ["不能移除自己，请联系上级指挥长。"]
    await chat.say(chain.community_group, chain.secretary, "移除 李卫东")
    assert "您没有权限" in chat.replies(chain.community_group)[0]
    # Someone who is not in this group cannot be removed from it.
    await chat.say(chain.tenant_group, chain.landlord, "移除 赵丽")
    assert chat.replies(chain.tenant_group) == ["本群没有找到「赵*」，请 @该成员 或写其登记姓名。"]
    assert await count(bot, Removal) == 0
    # The team's commander is removed from one tier up; he removes his team member himself.
    await chat.say(chain.team_group, chain.team_commander, "移除 刘芳 调岗")
    assert chat.replies(chain.team_group) == ["已移除 刘* 的身份：长春第一作战小组作战小组成员。"]
    await chat.say(chain.team_group, chain.community_commander, "移除 吴海峰")
    assert chat.replies(chain.team_group) == ["已移除 吴** 的身份：长春第一作战小组指挥长。"]
    assert [r[1:3] for r in await removals(bot)] == [("刘芳", "member"), ("吴海峰", "commander")]
    # 刘芳 is still the team member of the landlords' group: only the team group's role went.
    async with bot.session() as s:
        liu = (await s.execute(select(Person.id).where(Person.name == "刘芳"))).scalar_one()
    assert await count(bot, Membership, Membership.person_id == liu) == 1


async def test_a_member_leaving_a_group_is_told_to_their_commander(
        bot, chat: Chat, chain: DemoChain, transport):
    chat._mark = len(transport.sent)
    await transport.member_left(chain.tenant_group, chain.landlord)
    await bot.idle()
    notes = [s for s in transport.sent if s.text.startswith("【成员退群】")]
    assert [(s.room_id, s.mentions) for s in notes] == [
        (chain.landlords_group, (chain.team_member,))]
    assert notes[0].text == ("【成员退群】董**（董宝明出租房房东）已退出「董宝明租客群」。"
                             "身份未自动移除；如需移除，请在该群发送“移除 登记姓名”（租客：退租 姓名）。")
    await transport.member_left(chain.tenant_group, chain.tenant)
    await bot.idle()
    notes = [s for s in transport.sent if s.text.startswith("【成员退群】")]
    assert (notes[-1].room_id, notes[-1].mentions) == (chain.tenant_group, (chain.landlord,))
    # Nothing was removed; a stranger leaving tells nobody.
    assert await count(bot, Removal) == 0
    await transport.member_left(chain.tenant_group, "sim-stranger")
    await bot.idle()
    assert len([s for s in transport.sent if s.text.startswith("【成员退群】")]) == 2


async def test_chain_import_prune_removes_what_the_file_no_longer_lists(bot, chain: DemoChain):
    spec = chainfile.load(DEMO)
    team = next(n for n in spec.nodes if n.key == "team1")
    team.roles.pop("member")  # 刘芳 is no longer the team's member
    dong_node = next(n for n in spec.nodes if n.key == "dong")
    dong_node.roles["tenant"] = []  # tenants come and go in chat: never pruned
    dong = next(p for p in spec.people if p.key == "dong")
    dong.contacts = ["sim-dong-new"]  # a new WeChat account
    async with bot.session() as s, s.begin():
        await chainfile.import_chain(s, spec, now=bot.now())
        counts = await membership.prune_chain(s, spec=spec, now=bot.now())
    assert counts == {"roles": 1, "contacts": 1}
    assert sorted((r[0], r[1], r[3]) for r in await removals(bot)) == [
        ("contact", "董宝明", "import"), ("role", "刘芳", "import")]
    assert await count(bot, Contact, Contact.contact_id == chain.landlord) == 0
    assert await count(bot, Contact, Contact.contact_id == "sim-dong-new") == 1
    # Pruning again removes nothing more.
    async with bot.session() as s, s.begin():
        assert await membership.prune_chain(s, spec=spec, now=bot.now()) == {
            "roles": 0, "contacts": 0}
