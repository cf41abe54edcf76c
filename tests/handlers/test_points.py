"""The landlords' 12-point system through the chat: rules, verification, appeals, automatic
deductions, the weekly lists, rewards and good-person candidates."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import BotApp
from bot.services import chain as chains
from bot.services import people
from bot.services import points as pts
from models import NodeKind, OutboxMessage, PointsEvent, PointsStanding, PointsWeek, Role
from schedules.jobs import check_points, close_points_week
from tests.conftest import Chat, DemoChain, count

DONG = "sim-dongbaoming"


async def add_landlords(bot: BotApp, names: list[str], *, under: str = "第一小组房东群"
                        ) -> dict[str, tuple[str, str]]:
    """More landlords under a tier-4 node: name -> (contact id, room id)."""
    out = {}
    async with bot.session() as s, s.begin():
        parent = await chains.find_node(s, ref=under)
        assert parent is not None
        for i, name in enumerate(names):
            node = await chains.create_node(s, name=f"{name}出租房",
                                            kind=NodeKind.LANDLORD_TENANTS, parent=parent,
                                            now=bot.now())
            room, contact = f"extra{node.id}@chatroom", f"sim-extra-{node.id}"
            await chains.bind_group(s, node=node, transport="sim", room_id=room,
                                    title=f"{name}租客群", now=bot.now())
            person = await people.create_person(s, name=name, now=bot.now() + timedelta(
                seconds=i + 1))
            await people.attach_contact(s, person=person, transport="sim", contact_id=contact,
                                        now=bot.now())
            await people.grant_role(s, person_id=person.id, node_id=node.id,
                                    role=Role.LANDLORD, now=bot.now() + timedelta(seconds=i + 1))
            out[name] = (contact, room)
    return out


async def events(bot: BotApp) -> list[PointsEvent]:
    async with bot.session() as s:
        return list((await s.execute(select(PointsEvent).order_by(PointsEvent.id))).scalars())


async def score_of(bot: BotApp, landlord_name: str) -> int:
    async with bot.session() as s:
        from models import Person
        person = (await s.execute(select(Person).where(Person.name == landlord_name))).scalar_one()
        return await pts.score(s, landlord_id=person.id, now=bot.now(),
                               zone=bot.settings.zone, settings=bot.settings.points)


@pytest.mark.parametrize(("report", "rule", "name"), [
    ("房东上报 违规 301租客未居家隔离外出", "violation", "上报违规租客"),
    ("房东上报 代办 帮302租客买菜", "errand", "代办"),
    ("房东上报 调解 2楼邻里纠纷", "mediation", "参与调解"),
])
async def test_each_report_rule_makes_a_pending_event(bot, chat: Chat, chain: DemoChain,
                                                      report, rule, name):
    await chat.say(chain.tenant_group, DONG, report)
    [event] = await events(bot)
    assert (event.rule, event.delta, event.status, event.counts) == (rule, 1, "pending", False)
    assert event.inbound_id is not None and event.report_id is not None
    await chat.say(chain.tenant_group, DONG, "积分")
    assert chat.replies(chain.tenant_group) == [(
        "董宝明 当前 12 分（起始 12 分），福田街道排名 第 1/1 名。\n本周积分记录：\n"
        f"#1 2月21日 {name} +1 待核查")]


async def test_disinfection_report_earns_nothing(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, DONG, "房东上报 消毒")
    assert await count(bot, PointsEvent) == 0


async def test_verification_by_the_community_secretary(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 帮王明13800138000买菜")
    await chat.say(chain.community_group, chain.secretary, "待核查")
    [reply] = chat.replies(chain.community_group)
    assert reply == ("待核查 1 条（回复：核查 编号 通过 / 核查 编号 驳回 原因）：\n"
                     "#1 董** 代办 +1（2月21日）：已记录代办：帮王明138****8000买菜")
    assert "13800138000" not in reply
    await chat.say(chain.community_group, chain.secretary, "核查 1 通过")
    assert chat.replies(chain.community_group) == ["已核查#1：董** 代办 +1 通过，当前 13 分。"]
    # The landlord is told in the tier-4 group, mentioned.
    assert chat.replies(chain.landlords_group) == [
        "【积分核查】#1 董宝明 代办 +1 已核查通过，当前 13 分。"]
    assert chat.mentions(chain.landlords_group) == [(DONG,)]
    assert await score_of(bot, "董宝明") == 13
    await chat.say(chain.community_group, chain.secretary, "核查 1 驳回 重复")
    assert chat.replies(chain.community_group) == ["积分记录#1已经核查过（已生效）。"]


async def test_rejection_and_appeal(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, DONG, "房东上报 调解 2楼邻里纠纷")
    await chat.say(chain.community_group, chain.secretary, "核查 1 驳回 未见调解记录")
    assert chat.replies(chain.community_group) == [
        "已核查#1：董** 参与调解 +1 驳回（未见调解记录）。"]
    assert chat.replies(chain.landlords_group) == [
        "【积分核查】#1 董宝明 参与调解 +1 被驳回：未见调解记录。如有异议可发：申诉 1 理由"]
    assert await score_of(bot, "董宝明") == 12
    await chat.say(chain.tenant_group, DONG, "申诉 1 社区调解员可以作证")
    assert chat.replies(chain.tenant_group) == ["已提交申诉#1，由社区书记重新核查。"]
    assert chat.replies(chain.community_group) == [(
        "【积分申诉】#1 董** 参与调解 +1（原已驳回）申诉：社区调解员可以作证。"
        "请核查：核查 1 通过 / 核查 1 驳回 原因")]
    await chat.say(chain.tenant_group, DONG, "申诉 1 再申诉一次")
    assert chat.replies(chain.tenant_group) == ["积分记录#1已经申诉过，不能再次申诉。"]
    await chat.say(chain.community_group, chain.secretary, "待核查")
    assert chat.replies(chain.community_group)[0].endswith(
        "#1 董** 参与调解 +1 申诉（原已驳回）：社区调解员可以作证")
    await chat.say(chain.community_group, chain.secretary, "核查 1 通过")
    assert await score_of(bot, "董宝明") == 13
    [event] = await events(bot)
    assert (event.status, event.counts, event.appeal_reason) == (
        "approved", True, "社区调解员可以作证")


async def test_an_appeal_does_not_suspend_a_deduction(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.team_group, chain.team_commander, "扣分 董宝明 1 楼道堆放杂物")
    await chat.say(chain.community_group, chain.secretary, "核查 1 通过")
    assert await score_of(bot, "董宝明") == 11
    await chat.say(chain.tenant_group, DONG, "申诉 1 已清理")
    assert await score_of(bot, "董宝明") == 11
    await chat.say(chain.community_group, chain.secretary, "核查 1 驳回 已清理")
    assert await score_of(bot, "董宝明") == 12


async def test_only_the_verifier_verifies(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜")
    await chat.say(chain.community_group, chain.community_commander, "核查 1 通过")
    assert "没有权限" in chat.replies(chain.community_group)[0]
    await chat.say(chain.subdistrict_group, chain.commander, "核查 1 通过")
    assert chat.replies(chain.subdistrict_group) == [
        "「核查」只能在二级作战单元（社区）使用。"]
    await chat.say(chain.tenant_group, DONG, "核查 1 通过")
    assert chat.replies(chain.tenant_group)[0].startswith("「核查」只能在")
    await chat.say(chain.community_group, chain.secretary, "核查 9 通过")
    assert chat.replies(chain.community_group) == ["没有找到需要您核查的积分记录#9。"]
    [event] = await events(bot)
    assert event.status == "pending"


async def test_a_landlord_cannot_appeal_a_pending_or_foreign_event(bot, chat: Chat,
                                                                   chain: DemoChain):
    extra = await add_landlords(bot, ["应天喜"])
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜")
    await chat.say(chain.tenant_group, DONG, "申诉 1 理由")
    assert chat.replies(chain.tenant_group) == ["积分记录#1还在核查中，核查后才能申诉。"]
    contact, room = extra["应天喜"]
    await chat.say(room, contact, "申诉 1 理由")
    assert chat.replies(room) == ["没有找到您的积分记录#1。"]


async def test_commanders_adjust_by_mention_or_name(bot, chat: Chat, chain: DemoChain,
                                                    transport):
    message = transport.message(chain.team_group, chain.team_commander,
                                "加分 @董宝明 2 主动排查返回人员")
    message = dataclasses.replace(message, mention_ids=(DONG,))
    chat._mark = len(transport.sent)
    await transport.inject(message)
    await bot.idle()
    assert chat.replies(chain.team_group) == [
        "已记录#1：董宝明 指挥长调整 +2（主动排查返回人员），待社区书记核查。"]
    await chat.say(chain.landlords_group, chain.team_member, "扣分 董宝明 3 瞒报租客2人")
    assert chat.replies(chain.landlords_group) == [
        "已记录#2：董宝明 瞒报租客 -3（瞒报租客2人），待社区书记核查。"]
    await chat.say(chain.landlords_group, chain.team_member, "扣分 董宝明 1 瞒报租客")
    assert chat.replies(chain.landlords_group) == [
        "「瞒报租客」按规则扣 3 分，请写：扣分 @董宝明 3 瞒报租客"]
    await chat.say(chain.team_group, chain.team_commander, "加分 @张三 1 好")
    assert chat.replies(chain.team_group) == [
        "没有找到房东「张三」，请 @房东 或写房东的登记姓名（须是您下级的房东）。"]
    await chat.say(chain.tenant_group, DONG, "加分 董宝明 5 自己加")
    assert chat.replies(chain.tenant_group)[0].startswith("「加分」只能在")
    await chat.say(chain.landlords_group, DONG, "加分 董宝明 5 自己加")
    assert "没有权限" in chat.replies(chain.landlords_group)[0]
    assert [(e.rule, e.delta, e.proposed_by_id is not None) for e in await events(bot)] == [
        ("manual", 2, True), ("concealment", -3, True)]


async def test_a_mention_resolves_a_namesake(bot, chat: Chat, chain: DemoChain, transport):
    extra = await add_landlords(bot, ["董宝明"])
    contact, _room = extra["董宝明"]
    await chat.say(chain.team_group, chain.team_commander, "扣分 董宝明 1 楼道堆物")
    assert chat.replies(chain.team_group) == ["「董宝明」有 2 位同名房东，请在群里 @ 该房东。"]
    message = dataclasses.replace(
        transport.message(chain.team_group, chain.team_commander, "扣分 @董宝明 1 楼道堆物"),
        mention_ids=(contact,))
    await transport.inject(message)
    await bot.idle()
    [event] = await events(bot)
    async with bot.session() as s:
        found = await people.find_by_contact(s, transport="sim", contact_id=contact)
    assert event.landlord_id == found.id


async def test_a_redelivered_message_counts_once(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜", message_id="m-1")
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜", message_id="m-1")
    await chat.say(chain.team_group, chain.team_commander, "加分 董宝明 1 好", message_id="m-2")
    await chat.say(chain.team_group, chain.team_commander, "加分 董宝明 1 好", message_id="m-2")
    assert [e.rule for e in await events(bot)] == ["errand", "manual"]


async def test_the_weekly_cap(bot, chat: Chat, chain: DemoChain):
    for i in range(5):
        await chat.say(chain.tenant_group, DONG, f"房东上报 代办 买菜{i}")
    # The cap is 3 points a week per rule: the 4th and 5th errands earn nothing.
    assert await count(bot, PointsEvent) == 3
    await chat.say(chain.community_group, chain.secretary, "核查 1 驳回 不实")
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜5")
    assert await count(bot, PointsEvent) == 4


async def test_late_return_report(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    clock.advance(timedelta(hours=23))
    assert await check_points(bot) == (0, 0, 0)
    clock.advance(timedelta(hours=1))
    assert (await check_points(bot))[0] == 1
    assert (await check_points(bot))[0] == 0   # a second run, no second event
    [event] = await events(bot)
    assert (event.rule, event.delta, event.status, event.source_kind) == (
        "late_return", -2, "pending", "late_return")
    assert event.evidence == ("租客潘先生 2月21日10:00 自行登记返回，房东 24 小时内未登记"
                              "（截至 2月22日10:00）")
    await chat.say(chain.community_group, chain.secretary, "核查 1 通过")
    assert await score_of(bot, "董宝明") == 10


async def test_a_landlord_who_registers_in_time_is_not_late(bot, chat: Chat, chain: DemoChain,
                                                            clock):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    clock.advance(timedelta(hours=20))
    await chat.say(chain.tenant_group, DONG, "租客返回 潘先生 13905791234 来自江西上饶")
    clock.advance(timedelta(days=2))
    assert (await check_points(bot))[0] == 0
    # The landlord registered first: not late either.
    await chat.say(chain.tenant_group, DONG, "租客返回 王明 13800138000 来自湖南长沙")
    clock.advance(timedelta(days=2))
    assert (await check_points(bot))[0] == 0


async def test_missed_disinfection(bot, chat: Chat, chain: DemoChain, clock):
    # 21 Feb 10:00: the demo landlord became one today, so today is not yet held against him.
    clock.advance(timedelta(days=1, hours=9, minutes=59))   # 22 Feb 19:59
    assert (await check_points(bot))[1] == 0
    clock.advance(timedelta(minutes=1))                     # 20:00, the deadline
    assert (await check_points(bot))[1] == 1
    assert (await check_points(bot))[1] == 0
    [event] = await events(bot)
    assert (event.rule, event.delta, event.status, event.counts) == (
        "missed_disinfection", -1, "approved", True)
    assert event.evidence == "2月22日 20:00 前未上报消毒（董宝明出租房）"
    assert await score_of(bot, "董宝明") == 11
    # Reported before the deadline the next day: nothing.
    clock.advance(timedelta(hours=20))                      # 23 Feb 16:00
    await chat.say(chain.tenant_group, DONG, "房东上报 消毒")
    clock.advance(timedelta(hours=4))
    assert (await check_points(bot))[1] == 0


async def test_disinfection_every_other_day(bot, chat: Chat, chain: DemoChain, clock):
    bot.settings.points.disinfection_every_days = 2
    bot.settings.points.campaign_start = (clock.now() + timedelta(days=1)).date()  # 22 Feb
    clock.advance(timedelta(days=3, hours=10))   # 24 Feb 20:00: 23 Feb is not due, 24 Feb is
    assert (await check_points(bot))[1] == 1
    [event] = await events(bot)
    assert event.source_key.endswith("2020-02-24")


async def test_auto_approval_after_n_days(bot, chat: Chat, chain: DemoChain, clock):
    bot.settings.points.rules = [r for r in bot.settings.points.rules
                                 if r.trigger != "auto:missed_disinfection"]
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜")
    clock.advance(timedelta(days=10))
    assert (await check_points(bot))[2] == 0          # off by default
    bot.settings.points.auto_approve_days = 7
    assert (await check_points(bot))[2] == 1
    await bot.idle()
    assert await score_of(bot, "董宝明") == 13
    assert chat.all_texts()[-1] == (
        "【积分核查】#1 董宝明 代办 +1 超过 7 天未核查，自动生效，当前 13 分。")


async def _week_with(bot, chat: Chat, chain: DemoChain, clock, deltas: dict[str, int]) -> None:
    """Landlords get these approved hand adjustments this week (by the tier-3 commander)."""
    for name, delta in deltas.items():
        if delta:
            word = "加分" if delta > 0 else "扣分"
            await chat.say(chain.team_group, chain.team_commander,
                           f"{word} {name} {abs(delta)} 测试")
    for event in await events(bot):
        if event.status == "pending":
            await chat.say(chain.community_group, chain.secretary, f"核查 {event.id} 通过")


async def test_the_weekly_close_posts_red_and_black_lists(bot, chat: Chat, chain: DemoChain,
                                                          clock, transport):
    await add_landlords(bot, ["甲", "乙", "丙", "丁", "戊", "己", "庚"])
    await _week_with(bot, chat, chain, clock,
                     {"董宝明": 3, "甲": 2, "乙": 1, "丙": 0, "丁": -1, "戊": -2, "己": -3,
                      "庚": 4})
    clock.advance(timedelta(days=3, hours=-1))   # Monday 24 Feb 09:00
    written = await close_points_week(bot)
    await bot.idle()
    assert written == 4   # 福田街道, 长春社区, 第一作战小组, 第一小组房东群
    assert await close_points_week(bot) == 0
    [week] = (await _weeks(bot))
    assert (week.week, week.landlords, week.posted) == ("2020-W08", 8, 4)
    text = [s for s in transport.sent if s.room_id == chain.landlords_group][-1].text
    assert text == (
        "【积分周榜】福田街道 2020年第8周（2月17日—2月23日）\n"
        "五好房东（红榜）：庚（庚出租房）16分、董宝明（董宝明出租房）15分、甲（甲出租房）14分\n"
        "拖拉机房东（黑榜）：丁（丁出租房）11分、戊（戊出租房）10分、己（己出租房）9分\n"
        "房东可发送“积分”查看自己的积分和排名。")
    rooms = {s.room_id for s in transport.sent if s.text.startswith("【积分周榜】")}
    assert rooms == {chain.subdistrict_group, chain.community_group, chain.team_group,
                     chain.landlords_group}
    assert "1375791" not in text
    await chat.say(chain.tenant_group, DONG, "积分")
    assert chat.replies(chain.tenant_group)[0].startswith(
        "董宝明 当前 15 分（起始 12 分），福田街道排名 第 2/8 名。")


async def _weeks(bot) -> list[PointsWeek]:
    async with bot.session() as s:
        return list((await s.execute(select(PointsWeek))).scalars())


async def _boards(bot) -> dict[str, list[str]]:
    from models import Person
    async with bot.session() as s:
        rows = (await s.execute(select(PointsStanding.board, Person.name)
                                .join(Person, Person.id == PointsStanding.landlord_id)
                                .order_by(PointsStanding.rank))).all()
    out: dict[str, list[str]] = {"red": [], "black": [], "": []}
    for board, name in rows:
        out[board].append(name)
    return out


async def test_ties_at_the_list_boundary(bot, chat: Chat, chain: DemoChain, clock):
    # 甲 and 乙 tie with 丙 on score for third place; 丙 lost a point this week (fewer
    # deductions wins), 甲 registered before 乙 (earlier registration wins).
    await add_landlords(bot, ["甲", "乙", "丙", "丁", "戊", "己"])
    await _week_with(bot, chat, chain, clock,
                     {"董宝明": 3, "甲": 1, "乙": 1, "丁": 2, "戊": -1, "己": -1})
    await _week_with(bot, chat, chain, clock, {"丙": 2})
    await _week_with(bot, chat, chain, clock, {"丙": -1})
    clock.advance(timedelta(days=3, hours=-1))
    await close_points_week(bot)
    boards = await _boards(bot)
    # 董宝明 15, 丁 14, then 甲/乙/丙 at 13: the week's change is +1 for all three; 丙 has a
    # deduction, 甲 registered before 乙.
    assert boards["red"] == ["董宝明", "丁", "甲"]
    assert boards[""] == ["乙", "丙"]
    # 戊 and 己 tie at 11 with the same change and deductions; 戊 registered first.
    assert boards["black"] == ["戊", "己"]


async def test_nobody_is_blacklisted_without_a_deduction(bot, chat: Chat, chain: DemoChain,
                                                        clock):
    await add_landlords(bot, ["甲", "乙", "丙"])
    await _week_with(bot, chat, chain, clock, {"甲": 1})
    clock.advance(timedelta(days=3, hours=-1))
    await close_points_week(bot)
    assert await _boards(bot) == {"red": ["甲"], "black": [], "": ["董宝明", "乙", "丙"]}


async def test_ranking_per_community(bot, chat: Chat, chain: DemoChain, clock, transport):
    bot.settings.points.ranking_tier = 2
    clock.advance(timedelta(days=3, hours=-1))
    assert await close_points_week(bot) == 4
    await bot.idle()
    [week] = await _weeks(bot)
    async with bot.session() as s:
        node = await chains.find_node(s, ref="长春社区")
    assert week.scope_node_id == node.id
    assert any(s.text.startswith("【积分周榜】长春社区") and s.room_id == chain.subdistrict_group
               for s in transport.sent)


async def test_rewards(bot, chat: Chat, chain: DemoChain, clock):
    await _week_with(bot, chat, chain, clock, {"董宝明": 2})
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜")
    await chat.say(chain.community_group, chain.secretary, "核查 2 通过")
    await chat.say(chain.tenant_group, DONG, "奖励")
    assert chat.replies(chain.tenant_group) == [(
        "董宝明 累计奖励 0.00 元（已结算 0 周，加分 0 分，每分 10.00 元）；"
        "本周已核准加分 3 分，预计 30.00 元，周结后发放。")]
    clock.advance(timedelta(days=3, hours=-1))
    await close_points_week(bot)
    await chat.say(chain.tenant_group, DONG, "奖励")
    assert chat.replies(chain.tenant_group) == [(
        "董宝明 累计奖励 30.00 元（已结算 1 周，加分 3 分，每分 10.00 元）；"
        "本周已核准加分 0 分，预计 0.00 元，周结后发放。")]


async def test_good_person_candidates(bot, chat: Chat, chain: DemoChain, clock):
    await add_landlords(bot, ["甲"])
    await chat.say(chain.subdistrict_group, chain.commander, "好人候选")
    assert chat.replies(chain.subdistrict_group) == ["2020年暂无上榜 3 次及以上的房东。"]
    for _ in range(3):
        await _week_with(bot, chat, chain, clock, {"董宝明": 1})
        clock.advance(timedelta(days=7))
        await close_points_week(bot)
        await bot.idle()
    await chat.say(chain.subdistrict_group, chain.commander, "好人候选")
    assert chat.replies(chain.subdistrict_group) == [
        "2020年五好房东上榜 3 次及以上的好人候选：\n1. 董宝明（董宝明出租房）上榜 3 次"]
    await chat.say(chain.tenant_group, DONG, "好人候选")
    assert chat.replies(chain.tenant_group)[0].startswith("「好人候选」只能在")


async def test_score_history(bot, chat: Chat, chain: DemoChain, clock):
    await chat.say(chain.tenant_group, DONG, "积分明细")
    assert chat.replies(chain.tenant_group) == ["还没有积分记录，当前 12 分。"]
    await chat.say(chain.tenant_group, DONG, "房东上报 代办 买菜")
    clock.advance(timedelta(days=1))
    await chat.say(chain.tenant_group, DONG, "房东上报 调解 邻里纠纷")
    await chat.say(chain.community_group, chain.secretary, "核查 2 驳回 不实")
    await chat.say(chain.landlords_group, DONG, "积分明细")
    assert chat.replies(chain.landlords_group) == [
        "积分明细（最近 2 条）：\n#2 2月22日 参与调解 +1 已驳回\n#1 2月21日 代办 +1 待核查"]


async def test_weekly_period_resets_the_score(bot, chat: Chat, chain: DemoChain, clock):
    bot.settings.points.period = "weekly"
    await _week_with(bot, chat, chain, clock, {"董宝明": 2})
    assert await score_of(bot, "董宝明") == 14
    clock.advance(timedelta(days=3))
    assert await score_of(bot, "董宝明") == 12


async def test_outbox_rows_of_the_lists_are_not_notices(bot, chat: Chat, chain: DemoChain,
                                                        clock):
    clock.advance(timedelta(days=3, hours=-1))
    await close_points_week(bot)
    assert await count(bot, OutboxMessage, OutboxMessage.source == "points-week",
                       OutboxMessage.notice_id.is_(None)) == 4


async def test_export_and_api(bot, chat: Chat, chain: DemoChain, clock, tmp_path):
    import csv

    import httpx

    from bot.api import create_api
    from bot.cli import main

    await add_landlords(bot, ["甲"])
    await _week_with(bot, chat, chain, clock, {"董宝明": 2, "甲": -1})
    clock.advance(timedelta(days=3, hours=-1))
    await close_points_week(bot)
    transport = httpx.ASGITransport(app=create_api(bot))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        auth = {"Authorization": "Bearer test-token"}
        assert (await client.get("/api/points/weeks/2020-W08")).status_code == 401
        assert (await client.get("/api/points/weeks/2020-W09", headers=auth)).status_code == 404
        assert (await client.get("/api/points/weeks/nonsense", headers=auth)).status_code == 404
        body = (await client.get("/api/points/weeks/2020-W08", headers=auth)).json()
    [scope] = body["scopes"]
    assert scope["scope"] == "福田街道"
    assert [(s["landlord"], s["score"], s["list"], s["reward_yuan"])
            for s in scope["standings"]] == [("董宝明", 14, "red", 20.0), ("甲", 11, "black", 0.0)]
    assert [s["landlord"] for s in scope["red"]] == ["董宝明"]
    out = tmp_path / "w08.csv"
    code = await asyncio.to_thread(main, ["--database-url", bot.settings.database_url,
                                          "points", "export", "--week", "2020-W08",
                                          "--output", str(out)])
    assert code == 0
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:4] == ["week", "scope", "rank", "landlord"]
    assert rows[1] == ["2020-W08", "福田街道", "1", "董宝明", "董宝明出租房", "14", "2", "0",
                       "red", "2", "20.00"]
    code = await asyncio.to_thread(main, ["--database-url", bot.settings.database_url,
                                          "points", "export", "--week", "2020-W10"])
    assert code == 2
