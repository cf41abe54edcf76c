"""房东上报 and 我的租客."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.services import tenant
from models import LandlordReport, Node
from tests.conftest import Chat, DemoChain, count


@pytest.mark.parametrize(("text", "kind", "reply"), [
    ("房东上报 消毒", "disinfect", "已记录：2月21日 公共区域消毒。"),
    ("房东上报 代办 帮302租客买菜", "errand", "已记录代办：帮302租客买菜"),
    ("房东上报 违规 301租客未居家隔离外出", "violation",
     "已记录租客违规情况：301租客未居家隔离外出。网格员会跟进。"),
    ("房东上报 调解 2楼邻里纠纷", "mediation", "已记录参与调解：2楼邻里纠纷"),
])
async def test_each_report_is_stored_with_its_evidence(bot, chat: Chat, chain: DemoChain,
                                                       text, kind, reply):
    await chat.say(chain.tenant_group, chain.landlord, text)
    assert chat.replies(chain.tenant_group) == [reply]
    async with bot.session() as s:
        row = (await s.execute(select(LandlordReport))).scalar_one()
    assert row.kind == kind and row.inbound_id is not None


async def test_evidence_keeps_no_full_numbers(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 违规 王明13800138000未居家")
    async with bot.session() as s:
        row = (await s.execute(select(LandlordReport))).scalar_one()
    assert "13800138000" not in row.detail and "138****8000" in row.detail


async def test_disinfection_counts_once_a_day(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 已消毒 楼道和楼梯")
    assert chat.replies(chain.tenant_group) == ["2月21日 已经上报过消毒，无需重复上报。"]
    clock.advance(timedelta(days=1))
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 消毒")
    assert chat.replies(chain.tenant_group) == ["已记录：2月22日 公共区域消毒。"]
    assert await count(bot, LandlordReport) == 2


async def test_landlord_reports_from_the_team_group_too(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.landlords_group, chain.landlord, "房东上报 代办 帮潘先生办复工备案")
    assert chat.replies(chain.landlords_group) == ["已记录代办：帮潘先生办复工备案"]
    async with bot.session() as s:
        row = (await s.execute(select(LandlordReport))).scalar_one()
    from bot.services.chain import find_node
    async with bot.session() as s:
        node = await find_node(s, ref="董宝明出租房")
    assert row.node_id == node.id


async def test_reports_are_for_landlords_in_landlord_groups(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.community_group, chain.community_commander, "房东上报 消毒")
    assert chat.replies(chain.community_group) == [
        "「房东上报」只能在作战小组成员+房东群、房东+租客群使用。"]
    await chat.say(chain.shop_group, chain.captain, "房东上报 消毒")
    assert "没有权限" in chat.replies(chain.shop_group)[0]
    assert await count(bot, LandlordReport) == 0


async def test_my_tenants_is_masked_with_watch_status(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    assert chat.replies(chain.tenant_group) == ["目前没有登记返回的租客。"]
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王明 13800138000 来自湖南长沙 2月1日")
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234 体温37.5")
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    assert chat.replies(chain.tenant_group) == [
        "董宝明出租房 租客 2 人，居家观察中 1 人：\n"
        "1. 潘先生 139****1234 来自江西上饶，⚠体温偏高 37.5℃\n"
        "2. 王* 138****8000 来自湖南长沙，已解除观察"]
    await chat.say(chain.landlords_group, chain.landlord, "我的租客")
    assert chat.replies(chain.landlords_group)[0].startswith("房东 租客 2 人")


async def test_my_tenants_reads_what_list_tenants_reads(bot, chat: Chat, chain: DemoChain,
                                                        clock):
    """我的租客 reads columns (tenant_lines), the API and the watch list objects
    (list_tenants): the same tenants, in the same order, with the same latest stay and
    reading, a tenant who returned twice included."""
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙 2月1日")
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234 体温37.5")
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李强 13700137000 来自广西桂林")
    clock.advance(timedelta(days=1))
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖北武汉")
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.6")
    async with bot.session() as s:
        node_id = (await s.execute(select(Node.id).where(Node.name == "董宝明出租房"))
                   ).scalar_one()
        objects = await tenant.list_tenants(s, node_ids=[node_id])
        lines = await tenant.tenant_lines(s, node_ids=[node_id])
    assert len(objects) == 3
    assert [(r.tenant.name, r.tenant.mobile_mask, r.stay.origin, r.stay.fever,
             r.stay.watch_until, r.last_reading) for r in objects] == [
        (r.name, r.mobile_mask, r.origin, r.fever, r.watch_until, r.last_reading)
        for r in lines]
