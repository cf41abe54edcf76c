"""Shop rows as transcripts: the captain's check-in, staff fevers, reopening registration,
confirmation, review and the list (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot import crypto
from bot.services import people
from models import Node, Person, ReopeningStatus, Shop, ShopCheckin, ShopPatrol, ShopReopening
from tests.conftest import Chat, DemoChain, count

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")
REG = "复工登记 3号商位 张伟 13812345678 员工4人 外地返回1人 消毒液口罩已备 已承诺"


async def test_row_checkin_counts_and_one_line_summary(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "巡查 10家 营业3家 无异常")
    [reply] = chat.replies(chain.shop_group)
    assert reply == "已记录 2月21日 巡查：巡查 10/10 家，营业 3 家，关门 7 家，无异常"
    async with bot.session() as s:
        patrol = (await s.execute(select(ShopPatrol))).scalar_one()
    assert (patrol.checked, patrol.opened, patrol.problems) == (10, 3, "")


async def test_per_shop_checkin_with_readings_and_disinfection(bot, chat: Chat,
                                                               chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "今日巡查：1号、2号开门，员工体温正常，已消毒")
    assert chat.replies(chain.shop_group) == [
        "已记录 2月21日 巡查：巡查 2/10 家，营业 2 家，关门 0 家，体温正常，已消毒，无异常"
        "，注意：1号商位、2号商位 未通过复工审核，不得营业"]
    await chat.say(chain.shop_group, chain.captain, "3号 开门 2人 36.5 36.7")
    [reply] = chat.replies(chain.shop_group)
    assert reply.startswith("已记录 2月21日 巡查：巡查 3/10 家，营业 3 家，关门 0 家，员工 2 人")
    async with bot.session() as s:
        rows = {shop.name: row for row, shop in (await s.execute(
            select(ShopCheckin, Shop).join(Shop, Shop.id == ShopCheckin.shop_id))).tuples()}
    assert set(rows) == {"1号商位", "2号商位", "3号商位"}
    assert rows["3号商位"].readings == "36.5,36.7" and rows["3号商位"].staff == 2
    assert rows["1号商位"].disinfected is True and rows["3号商位"].disinfected is None
    assert not any(r.fever for r in rows.values())


async def test_staff_fever_alerts_the_team_like_a_tenants(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "打卡 3号 开门 2人 36.5 38.2")
    [reply] = chat.replies(chain.shop_group)
    assert "发热 1 人（3号商位 38.2℃），已通知作战小组跟进" in reply
    [alert] = chat.replies(chain.landlords_group)
    assert alert.startswith("【发热提醒】长春专业街一排 3号商位 员工 2月21日10:00 体温 38.2℃")
    async with bot.session() as s:
        row = (await s.execute(select(ShopCheckin))).scalar_one()
    assert row.fever and row.max_reading == 38.2


async def test_unknown_shop_is_a_hint_and_nothing_is_stored(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "打卡 3号 开门 2人；11号 关门")
    [reply] = chat.replies(chain.shop_group)
    assert reply.startswith("本排没有 11号。本排商位：1号商位、")
    assert await count(bot, ShopCheckin) == 0 and await count(bot, ShopPatrol) == 0


async def test_checkin_is_the_captains(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, "sim-stranger", "巡查 10家 营业3家 无异常", name="路人")
    [reply] = chat.replies(chain.shop_group)
    assert "由本排铺长使用" in reply
    # A tenant's own group: the keyword form is refused, the bare line is not even answered.
    await chat.say(chain.tenant_group, chain.tenant, "3号开门了")
    assert chat.replies(chain.tenant_group) == []
    assert await count(bot, ShopPatrol) == 0


async def test_a_botched_checkin_gets_a_hint(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, "巡查 10家 营业12家")
    [reply] = chat.replies(chain.shop_group)
    assert reply.startswith("营业家数不能多于巡查家数。格式：巡查")
    assert await count(bot, ShopPatrol) == 0


async def test_reopening_registered_confirmed_and_approved(bot, chat: Chat, chain: DemoChain):
    # The owner registers in the row's group (not bound to anyone): waits for the captain.
    await chat.say(chain.shop_group, "sim-zhangwei", REG, name="张伟")
    assert chat.replies(chain.shop_group) == [
        "已登记复工申请 #1：3号商位，店主 张* 138****5678，员工 4 人（外地返回 1 人）。"
        "待铺长确认：复工确认 1"]
    assert chat.replies(chain.community_group) == []
    # The owner's mobile lives only in a Person row.
    async with bot.session() as s:
        owner = (await s.execute(select(Person).where(Person.name == "张伟"))).scalar_one()
    assert owner.mobile_bidx == crypto.blind_index("mobile", "13812345678")
    assert owner.mobile_mask == "138****5678"
    # Only the community reviews; not before the captain confirmed.
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 通过")
    assert chat.replies(chain.community_group) == [
        "复工申请 #1 当前状态为「待铺长确认」，不能审核。"]
    await chat.say(chain.shop_group, chain.captain, "复工确认 1")
    assert chat.replies(chain.shop_group) == ["已确认复工申请 #1（3号商位），已报社区审核。"]
    [ask] = chat.replies(chain.community_group)
    assert ask.startswith("【复工审核】#1 长春专业街一排 3号商位：店主 张* 138****5678")
    await chat.say(chain.community_group, chain.team_member, "复工审核 1 通过")
    assert "由社区指挥长或书记使用" in chat.replies(chain.community_group)[0]
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 通过")
    assert chat.replies(chain.community_group) == ["复工审核 #1 已通过：3号商位（长春专业街一排）"]
    assert chat.replies(chain.shop_group) == [
        "【复工审核通过】#1 3号商位 可以开门营业，请做好每日巡查打卡。"]
    async with bot.session() as s:
        reg = (await s.execute(select(ShopReopening))).scalar_one()
    assert reg.status == ReopeningStatus.APPROVED
    # Approved and checked in as open: no warning.
    await chat.say(chain.shop_group, chain.captain, "3号 开门 2人 36.5 36.7")
    assert "未通过复工审核" not in chat.replies(chain.shop_group)[0]
    assert not any(FULL_MOBILE.search(t) for t in chat.all_texts())


async def test_captain_registers_for_the_owner_and_community_rejects(bot, chat: Chat,
                                                                     chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain, REG)
    [reply] = chat.replies(chain.shop_group)
    assert reply.startswith("已登记并确认复工申请 #1：3号商位")
    assert chat.replies(chain.community_group)[0].startswith("【复工审核】#1")
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 驳回")
    assert chat.replies(chain.community_group)[0].startswith("驳回请写明原因")
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 驳回 消毒用品不足")
    assert chat.replies(chain.shop_group) == [
        "【复工审核驳回】#1 3号商位，原因：消毒用品不足。整改后可重新登记。"]
    # Rejected: the shop may be registered again; a second open one is refused.
    await chat.say(chain.shop_group, chain.captain, REG)
    assert chat.replies(chain.shop_group)[0].startswith("已登记并确认复工申请 #2")
    await chat.say(chain.shop_group, chain.captain, REG)
    assert chat.replies(chain.shop_group) == ["3号商位 已有复工申请 #2（待社区审核），无需重复登记。"]


async def test_registration_without_commitment_or_mobile_is_refused(bot, chat: Chat,
                                                                    chain: DemoChain):
    await chat.say(chain.shop_group, chain.captain,
                   "复工登记 3号商位 张伟 13812345678 员工4人")
    assert chat.replies(chain.shop_group)[0].startswith("请确认防疫承诺")
    await chat.say(chain.shop_group, chain.captain, "复工登记 3号商位 张伟 1381234567 员工4人 已承诺")
    assert chat.replies(chain.shop_group)[0].startswith("手机号应为11位")
    assert await count(bot, ShopReopening) == 0
    assert not any(FULL_MOBILE.search(t) for t in chat.all_texts())


async def test_reopening_list(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.shop_group, "sim-zhangwei", REG, name="张伟")
    await chat.say(chain.shop_group, chain.captain,
                   "复工登记 5号 店主李娜 13912345678 员工3人 外地无 已承诺")
    await chat.say(chain.community_group, chain.secretary, "复工审核 2 通过")
    await chat.say(chain.community_group, chain.secretary, "复工列表")
    assert chat.replies(chain.community_group) == ["\n".join([
        "复工列表（长春社区）：待确认 1，待审核 0，已通过 1",
        "#1 长春专业街一排 3号商位 店主 张* 待铺长确认",
        "#2 长春专业街一排 5号商位 店主 李* 已通过"])]
    await chat.say(chain.tenant_group, chain.tenant, "复工列表")
    assert "由" in chat.replies(chain.tenant_group)[0]


async def test_captain_checks_in_from_the_teams_group(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.landlords_group, chain.captain, "巡查 10家 营业3家 无异常")
    [reply] = chat.replies(chain.landlords_group)
    assert reply.startswith("已记录 2月21日 巡查：巡查 10/10 家，营业 3 家")
    async with bot.session() as s:
        patrol = (await s.execute(select(ShopPatrol))).scalar_one()
        node = await s.get(Node, patrol.node_id)
    assert node is not None and node.name == "长春专业街一排"
    # A landlord in that group is not a captain.
    await chat.say(chain.landlords_group, chain.landlord, "巡查 10家 营业3家 无异常")
    assert "由本排铺长使用" in chat.replies(chain.landlords_group)[0]


async def test_a_community_reviews_only_its_own_shops(bot, chat: Chat, chain: DemoChain):
    """A registration from a row under another community is not this community's to decide."""
    from models import Node as NodeRow

    async with bot.session() as s, s.begin():
        futian = (await s.execute(select(NodeRow).where(NodeRow.name == "福田街道"))
                  ).scalar_one()
        parent = futian
        for tier, kind, name in ((2, "community", "西城社区"), (3, "team", "西城小组"),
                                 (4, "team_landlords", "西城房东群"),
                                 (5, "shop_row", "西城专业街")):
            node = NodeRow(tier=tier, kind=kind, name=name, parent_id=parent.id,
                           created_at=bot.now())
            s.add(node)
            await s.flush()
            parent = node
        shop = Shop(node_id=parent.id, name="1号商位", is_open=False, created_at=bot.now())
        s.add(shop)
        owner = await people.create_person(s, name="孙丽", mobile="13712345678", now=bot.now())
        await s.flush()
        s.add(ShopReopening(shop_id=shop.id, node_id=parent.id, owner_id=owner.id, staff=2,
                            status=ReopeningStatus.REVIEW, created_at=bot.now()))
    await chat.say(chain.community_group, chain.secretary, "复工审核 1 通过")
    assert chat.replies(chain.community_group) == ["复工申请 #1 不属于本群管辖。"]
    async with bot.session() as s:
        reg = (await s.execute(select(ShopReopening))).scalar_one()
    assert reg.status == ReopeningStatus.REVIEW
    # Nor does 复工列表 of 长春社区 show it.
    await chat.say(chain.community_group, chain.secretary, "复工列表")
    assert chat.replies(chain.community_group) == ["暂无复工申请。"]
