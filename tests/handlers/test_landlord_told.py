"""Landlords told in time (issue 9, item 9): @-mentioned when a tenant registers their own
return, with the deadline to confirm before the late-report deduction, and told (in their
tier-4 group, mentioned) of every automatic deduction."""

from __future__ import annotations

from datetime import timedelta

from schedules.jobs import check_points
from tests.conftest import Chat, DemoChain


async def test_a_tenants_own_return_mentions_the_landlord_with_the_deadline(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234",
                   name="潘先生")
    [reply] = chat.replies(chain.tenant_group)
    assert reply.startswith("已登记 潘先生 返回（来自江西上饶")
    assert reply.endswith("\n请房东在 2月22日10:00 前确认登记（发：租客返回 姓名 手机号 来自地点），"
                          "逾期未登记扣 2 分")
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    # The landlord confirms: no mention, no deadline.
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 潘先生 13905791234 来自江西上饶")
    [reply] = chat.replies(chain.tenant_group)
    assert "请房东" not in reply and chat.mentions(chain.tenant_group) == [()]


async def test_a_return_the_landlord_registers_needs_no_reminder(bot, chat: Chat,
                                                                 chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    [reply] = chat.replies(chain.tenant_group)
    assert "请房东" not in reply and chat.mentions(chain.tenant_group) == [()]
    # The tenant announcing it afterwards is no reason to chase the landlord either.
    await chat.say(chain.tenant_group, chain.tenant2, "我回来了 湖南长沙 13800138000")
    assert all("请房东" not in r for r in chat.replies(chain.tenant_group))


async def test_the_deadline_follows_the_configured_hours_and_rule(bot, chat: Chat,
                                                                  chain: DemoChain):
    bot.settings.points.late_return_hours = 12
    bot.settings.points.rules = [r for r in bot.settings.points.rules
                                 if r.trigger != "auto:late_return"]
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    [reply] = chat.replies(chain.tenant_group)
    # No deduction configured: the deadline still stands, no threat of points.
    assert reply.endswith("\n请房东在 2月21日22:00 前确认登记（发：租客返回 姓名 手机号 来自地点）")
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]


async def test_a_late_return_deduction_is_told_to_the_landlord(bot, chat: Chat,
                                                               chain: DemoChain, clock,
                                                               transport):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    clock.advance(timedelta(hours=24))
    mark = len(transport.sent)
    assert (await check_points(bot))[0] == 1
    await bot.idle()
    told = [s for s in transport.sent[mark:] if s.room_id == chain.landlords_group]
    assert [s.text for s in told] == [
        "【积分扣分】#1 董宝明 迟报租客返回 -2：租客潘先生 2月21日10:00 自行登记返回，"
        "房东 24 小时内未登记（截至 2月22日10:00）。待社区核查，核查后如有异议可发：申诉 1 理由"]
    assert told[0].mentions == (chain.landlord,)
    # Run again: told once.
    mark = len(transport.sent)
    clock.advance(timedelta(hours=1))
    await check_points(bot)
    await bot.idle()
    assert [s for s in transport.sent[mark:] if s.text.startswith("【积分扣分】")] == []


async def test_a_missed_disinfection_deduction_is_told_with_the_score(bot, chat: Chat,
                                                                      chain: DemoChain, clock,
                                                                      transport):
    clock.advance(timedelta(days=1, hours=10))   # 22 Feb 20:00, the deadline
    mark = len(transport.sent)
    assert (await check_points(bot))[1] == 1
    await bot.idle()
    told = [s for s in transport.sent[mark:] if s.text.startswith("【积分扣分】")]
    assert [(s.room_id, s.mentions) for s in told] == [(chain.landlords_group, (chain.landlord,))]
    assert told[0].text.endswith("2月22日 20:00 前未上报消毒（董宝明出租房）。"
                                 "已生效，当前 11 分，如有异议可发：申诉 1 理由")
