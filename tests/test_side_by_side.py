"""Two batches at once, as the pipelines of two `tierbot run` processes sharing one
PostgreSQL database run them (bench/LANES.md): the first is held inside its handler right
after the read its check-then-write rests on, while the second runs. On SQLite the second
waits for the one connection; on PostgreSQL it must wait for the lock the first took before
that read (bot.services.locks), or both would act on what they read: two people for one
mobile, a fever count lost, a once-a-day report made twice, a points event or a link
decided twice, a weekly cap passed, a shop registered twice."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot import chainfile
from bot.app import BotApp
from bot.crypto import blind_index
from bot.services import health, people, points, report
from bot.transports.base import IncomingMessage
from bot.transports.memory import MemoryTransport
from models import (
    LandlordReport,
    LinkRequest,
    LinkStatus,
    Person,
    PointsEvent,
    ReportKind,
    ShopPatrol,
    ShopReopening,
    TenantStay,
)
from tests.conftest import Chat, DemoChain, count
from tests.test_chainfile import DEMO_CHAIN

GUARD = 30.0
MOBILE = "13812340000"


async def side_by_side(bot: BotApp, monkeypatch: Any, module: Any, names: tuple[str, ...],
                       first: IncomingMessage, second: IncomingMessage) -> list[str]:
    """`first` runs until a call of one of `module`'s `names` (after the read in question)
    has returned, and is held there; `second` runs meanwhile, and must still be waiting half
    a second later; then both finish. The names called, in order."""
    held, go = asyncio.Event(), asyncio.Event()
    called: list[str] = []

    def holding(name: str, read: Any) -> Any:
        async def first_held(*args: Any, **kwargs: Any) -> Any:
            found = await read(*args, **kwargs)
            called.append(name)
            if len(called) == 1:
                held.set()
                await go.wait()
            return found
        return first_held

    for name in names:
        monkeypatch.setattr(module, name, holding(name, getattr(module, name)))
    one = asyncio.create_task(bot.pipeline.process([first]))
    await asyncio.wait_for(held.wait(), GUARD)
    two = asyncio.create_task(bot.pipeline.process([second]))
    await asyncio.sleep(0.5)
    waited = not two.done()
    go.set()
    await asyncio.wait_for(asyncio.gather(one, two), GUARD)
    assert waited, "the second batch did not wait for the first"
    return called


async def test_a_tenant_and_the_landlord_reporting_one_return_at_once_make_one_stay(
        bot, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    called = await side_by_side(
        bot, monkeypatch, people, ("holder_contacts", "holder_contacts_and_owner"),
        transport.message(chain.tenant_group, "sim-new-wangming",
                          f"我回来了 王明 {MOBILE} 湖南长沙", sender_name="王明"),
        transport.message(chain.landlords_group, chain.landlord,
                          f"房东上报 返回 王明 {MOBILE} 湖南长沙"))
    assert called == ["holder_contacts_and_owner", "holder_contacts"]
    bidx = blind_index("mobile", MOBILE)
    assert await count(bot, Person, Person.mobile_bidx == bidx) == 1
    async with bot.session() as s:
        [stay] = (await s.execute(select(TenantStay).join(
            Person, Person.id == TenantStay.tenant_id).where(
            Person.mobile_bidx == bidx))).scalars().all()
    assert stay.self_reported_at is not None and stay.landlord_reported_at is not None
    assert await count(bot, LandlordReport, LandlordReport.stay_id == stay.id) == 1


async def test_a_captains_check_ins_from_two_groups_at_once_lose_no_fever(
        bot, chat: Chat, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    # The first is held after it wrote the day's count (its alert comes next): the second,
    # had it read the count before the first committed, would write it back one short.
    await chat.say(chain.shop_group, chain.captain, "巡查 10家 营业3家 无异常")
    await side_by_side(
        bot, monkeypatch, health, ("alert_fever",),
        transport.message(chain.shop_group, chain.captain, "打卡 3号 开门 2人 36.5 38.2"),
        transport.message(chain.landlords_group, chain.captain, "打卡 1号 开门 1人 38.6"))
    async with bot.session() as s:
        patrol = (await s.execute(select(ShopPatrol))).scalar_one()
    assert patrol.fevers == 2


async def test_a_disinfection_reported_in_two_groups_at_once_counts_once(
        bot, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    await side_by_side(
        bot, monkeypatch, report, ("reported_on_day",),
        transport.message(chain.tenant_group, chain.landlord, "房东上报 消毒 楼道已消毒"),
        transport.message(chain.landlords_group, chain.landlord, "房东上报 消毒 楼道已消毒"))
    assert await count(bot, LandlordReport, LandlordReport.kind == ReportKind.DISINFECT) == 1


async def test_two_verifications_of_one_event_at_once_decide_it_once(
        bot, chat: Chat, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮302租客买菜")
    mark = len(transport.sent)
    await side_by_side(
        bot, monkeypatch, points, ("ancestor_at",),
        transport.message(chain.community_group, chain.secretary, "核查 1 通过"),
        transport.message(chain.community_group, chain.secretary, "核查 1 驳回 不实"))
    await bot.idle()
    said = [m.text for m in transport.sent[mark:]]
    assert "积分记录#1已经核查过（已生效）。" in said
    assert sum(t.startswith("【积分核查】#1") for t in said) == 1  # the landlord told once
    async with bot.session() as s:
        event = (await s.execute(select(PointsEvent))).scalar_one()
    assert (event.status, event.counts) == ("approved", True)


async def test_reports_in_two_groups_at_once_stay_within_the_weekly_cap(
        bot, chat: Chat, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    for _ in range(2):  # 代办: at most 3 a week
        await chat.say(chain.tenant_group, chain.landlord, "房东上报 代办 帮302租客买菜")
    await side_by_side(
        bot, monkeypatch, points, ("_used_this_week",),
        transport.message(chain.tenant_group, chain.landlord, "房东上报 代办 帮303租客买药"),
        transport.message(chain.landlords_group, chain.landlord, "房东上报 代办 帮305租客取快递"))
    assert await count(bot, PointsEvent, PointsEvent.rule == "errand") == 3


async def test_confirm_and_deny_of_one_link_at_once_decide_it_once(
        bot, chat: Chat, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    # Two groups of one node, or two of the landlord's phones: 确认 and 不是 at once.
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-new-lina", "我已返回 安徽阜阳 13611112222",
                   name="娜娜")
    mark = len(transport.sent)
    await side_by_side(
        bot, monkeypatch, people, ("grant_role",),
        transport.message(chain.tenant_group, chain.landlord, "确认 1"),
        transport.message(chain.tenant_group, chain.landlord, "不是 1"))
    await bot.idle()
    assert "没有待确认的身份关联 1。" in [m.text for m in transport.sent[mark:]]
    async with bot.session() as s:
        request = (await s.execute(select(LinkRequest))).scalar_one()
    assert request.status == LinkStatus.CONFIRMED


async def test_a_shop_registered_for_reopening_twice_at_once_gets_one_registration(
        bot, chain: DemoChain, transport: MemoryTransport, monkeypatch):
    # The owner and the captain at once: the first is held once it has checked that the shop
    # has no open registration; the second must not pass the same check.
    from bot.services import shop

    text = "复工登记 3号商位 张伟 13812345678 员工4人 已承诺"
    await side_by_side(
        bot, monkeypatch, shop, ("_owner",),
        transport.message(chain.shop_group, "sim-zhangwei", text, sender_name="张伟"),
        transport.message(chain.shop_group, chain.captain, text))
    assert await count(bot, ShopReopening) == 1


async def test_a_chain_import_and_a_return_for_one_mobile_make_one_person(
        bot, chain: DemoChain, transport: MemoryTransport):
    """`tierbot chain import` adds a person with a mobile and stays open (a big file takes
    seconds); meanwhile a landlord reports a tenant's return with that mobile. It waits for
    the import (the import holds `bulk` exclusive, every mobile's lock is taken under it
    shared), and then finds the imported person instead of making a second one."""
    spec = chainfile.load(DEMO_CHAIN).model_copy(update={"people": [chainfile.PersonSpec(
        key="qian", name="钱主任", mobile=MOBILE, contacts=("sim-qian",))], "nodes": []})
    async with bot.session() as s:
        await s.begin()
        await chainfile.import_chain(s, spec, now=bot.now())
        mark = len(transport.sent)
        two = asyncio.create_task(bot.pipeline.process([transport.message(
            chain.landlords_group, chain.landlord, f"房东上报 返回 钱主任 {MOBILE} 湖南长沙")]))
        await asyncio.sleep(0.5)
        waited = not two.done()
        await s.commit()
    await asyncio.wait_for(two, GUARD)
    assert waited, "the return did not wait for the import"
    bidx = blind_index("mobile", MOBILE)
    assert await count(bot, Person, Person.mobile_bidx == bidx) == 1
    assert await count(bot, TenantStay) == 1, [m.text for m in transport.sent[mark:]]
