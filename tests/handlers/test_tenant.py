"""租客返回 and 体温 through the whole pipeline."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.crypto import blind_index
from models import InboundMessage, LandlordReport, Person, TemperatureReading, TenantStay
from tests.conftest import Chat, DemoChain, count

FULL_MOBILE = re.compile(r"1[3-9]\d{9}")


async def test_landlord_registers_returning_tenant(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王明 13800138000 来自湖南长沙 体温36.5")
    assert chat.replies(chain.tenant_group) == [
        "已登记 王* 返回（来自湖南长沙，2月21日10:00到达），居家观察至 3月6日，体温 36.5℃"]
    assert await count(bot, TenantStay) == 1
    assert await count(bot, TemperatureReading) == 1
    assert await count(bot, LandlordReport, LandlordReport.kind == "return") == 1


async def test_tenant_announces_own_return_in_everyday_words(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234",
                   name="潘先生")
    [reply] = chat.replies(chain.tenant_group)
    assert reply.startswith("已登记 潘先生 返回（来自江西上饶")
    async with bot.session() as s:
        person = (await s.execute(select(Person).where(Person.name == "潘先生"))).scalar_one()
        assert person.mobile_bidx == blind_index("mobile", "13905791234")
        assert person.mobile_mask == "139****1234" and person.mobile_enc is not None
        stay = (await s.execute(select(TenantStay))).scalar_one()
        assert stay.self_reported_at is not None and stay.landlord_reported_at is None


async def test_arrival_time_is_taken_from_the_message(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王明 13800138000 来自湖南长沙 2月20日凌晨4点 体温36.5")
    [reply] = chat.replies(chain.tenant_group)
    assert "2月20日04:00到达" in reply and "居家观察至 3月5日" in reply


async def test_return_told_by_tenant_then_landlord_is_one_stay(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "租客返回 潘先生 13905791234 从江西上饶返回")
    await chat.say(chain.tenant_group, chain.landlord,
                   "房东上报 返回 潘先生 13905791234 江西上饶")
    assert chat.replies(chain.tenant_group) == [
        "已确认 潘先生 返回（租客本人已登记），居家观察至 3月6日"]
    await chat.say(chain.tenant_group, chain.landlord,
                   "房东上报 返回 潘先生 13905791234 江西上饶")
    assert "无需重复登记" in chat.replies(chain.tenant_group)[0]
    assert await count(bot, TenantStay) == 1
    assert await count(bot, LandlordReport) == 1
    async with bot.session() as s:
        stay = (await s.execute(select(TenantStay))).scalar_one()
        assert stay.self_reported_at is not None and stay.landlord_reported_at is not None


async def test_tenant_registered_by_landlord_is_linked_when_the_landlord_confirms(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-new-lina", "我已返回 安徽阜阳 13611112222",
                   name="娜娜")
    assert "确认 1" in chat.replies(chain.tenant_group)[0]
    await chat.say(chain.tenant_group, chain.landlord, "确认 1")
    await chat.say(chain.tenant_group, "sim-new-lina", "体温 36.4")
    assert chat.replies(chain.tenant_group) == ["已记录 李* 体温 36.4℃，居家观察至 3月6日"]
    assert await count(bot, Person, Person.mobile_bidx == blind_index("mobile", "13611112222")) == 1


async def test_someone_elses_mobile_is_refused(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant2, "我回来了 湖南 13905791234")
    assert chat.replies(chain.tenant_group) == [
        "该手机号已经登记，不能在这里登记。如有疑问，请联系长春社区。"]
    assert await count(bot, TenantStay) == 1


async def test_fever_is_flagged_to_landlord_and_team_masked(bot, chat: Chat, chain: DemoChain,
                                                            clock):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 37.6")
    [reply] = chat.replies(chain.tenant_group)
    assert reply == "潘先生 体温 37.6℃ 偏高（≥37.3℃），已通知房东和网格员，请保持居家，等候联系。"
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    assert chat.replies(chain.landlords_group) == [
        "【发热提醒】董宝明出租房 租客 潘先生 2月21日10:00 体温 37.6℃，请尽快上门跟进。"]
    async with bot.session() as s:
        stay = (await s.execute(select(TenantStay))).scalar_one()
        assert stay.fever


async def test_fever_in_the_return_message_itself(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 湖南长沙回来 体温37.9")
    [reply] = chat.replies(chain.tenant_group)
    assert reply.endswith("体温 37.9℃。体温偏高，已通知房东和网格员，请居家等候联系")
    assert len(chat.replies(chain.landlords_group)) == 1


async def test_normal_reading_is_not_flagged(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温：３６．８度")
    assert chat.replies(chain.tenant_group) == ["已记录 潘先生 体温 36.8℃，居家观察至 3月6日"]
    assert chat.replies(chain.landlords_group) == []


async def test_landlord_reports_a_named_tenants_temperature(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.landlord, "体温 王明 36.6")
    assert chat.replies(chain.tenant_group) == ["已记录 王* 体温 36.6℃，居家观察至 3月6日"]
    await chat.say(chain.tenant_group, chain.landlord, "体温 36.6")
    assert chat.replies(chain.tenant_group) == ["请写上租客姓名，例：体温 王明 36.6"]
    await chat.say(chain.tenant_group, chain.landlord, "体温 张三 36.6")
    assert chat.replies(chain.tenant_group) == ["没有找到租客「张*」的居家观察记录。"]


async def test_reading_without_a_return_gets_a_hint(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.6")
    assert chat.replies(chain.tenant_group) == [
        "没有找到您的返回登记，请先发送：租客返回 姓名 手机号 来自哪里"]
    assert await count(bot, TemperatureReading) == 0


async def test_a_reading_is_stored_whole_and_never_to_an_ended_stay(
        bot, chat: Chat, chain: DemoChain):
    # On PostgreSQL the look-up of the stay writes the reading in the same statement: it must
    # write it only to a stay still running, with every value.
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.7")
    async with bot.session() as s:
        stay = (await s.execute(select(TenantStay))).scalar_one()
        reading = (await s.execute(select(TemperatureReading))).scalar_one()
        inbound = (await s.execute(select(InboundMessage).order_by(InboundMessage.id.desc())
                                   .limit(1))).scalar_one()
        assert (reading.stay_id, reading.value, reading.by_id, reading.inbound_id) == (
            stay.id, 36.7, stay.tenant_id, inbound.id)
        assert reading.taken_at == bot.clock.now()
    async with bot.session() as s, s.begin():
        (await s.execute(select(TenantStay))).scalar_one().ended_at = bot.clock.now()
    await chat.say(chain.tenant_group, chain.tenant, "体温 36.8")
    assert chat.replies(chain.tenant_group) == [
        "没有找到您的返回登记，请先发送：租客返回 姓名 手机号 来自哪里"]
    assert await count(bot, TemperatureReading) == 1


async def test_out_of_range_temperature_gets_a_hint_and_stores_nothing(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, chain.tenant, "体温 45")
    [reply] = chat.replies(chain.tenant_group)
    assert "34.0" in reply and "43.0" in reply
    assert await count(bot, TemperatureReading) == 0


async def test_arrival_in_the_future_is_refused(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙 3月2日")
    # 3月2日 is after today (21 Feb 2020) in this year, so it means last year's: not refused but
    # dated 2019; a time later today is in the future and is refused.
    await chat.say(chain.tenant_group, chain.landlord,
                   "租客返回 王丽 13800138001 来自湖南长沙 今天晚上11点")
    assert chat.replies(chain.tenant_group) == ["到达时间不能晚于现在，请核对日期后重发。"]
    assert await count(bot, Person, Person.name == "王丽") == 0


async def test_tenant_commands_belong_in_tenant_groups(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.community_group, chain.community_commander,
                   "租客返回 王明 13800138000 来自湖南长沙")
    assert chat.replies(chain.community_group) == ["「租客返回」只能在房东+租客群使用。"]
    assert await count(bot, TenantStay) == 0


async def test_no_full_mobile_ever_leaves_the_bot(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234 体温38.2")
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    await chat.say(chain.tenant_group, chain.landlord, "房东上报 违规 王明13800138000未居家隔离")
    texts = chat.all_texts()
    assert len(texts) >= 5
    assert not any(FULL_MOBILE.search(t) for t in texts), texts
