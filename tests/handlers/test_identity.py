"""Identity: a typed mobile never attaches a contact to its owner; links wait for the landlord."""

from __future__ import annotations

from sqlalchemy import select

from bot.crypto import blind_index
from models import (
    Contact,
    LandlordReport,
    LinkRequest,
    OutboxMessage,
    Person,
    TemperatureReading,
    TenantStay,
)
from tests.conftest import Chat, DemoChain, count

DONG_MOBILE = "13757912345"  # 董宝明, the landlord (chain file)
TAKEN = "该手机号已经登记，不能在这里登记。如有疑问，请联系长春社区。"


async def person_of(bot, transport: str, contact_id: str) -> Person | None:
    async with bot.session() as s:
        return (await s.execute(select(Person).join(Contact, Contact.person_id == Person.id)
                                .where(Contact.contact_id == contact_id))).scalar_one_or_none()


async def test_a_new_contact_typing_the_landlords_mobile_gets_nothing(
        bot, chat: Chat, chain: DemoChain):
    attacker = "sim-attacker"
    await chat.say(chain.tenant_group, attacker, f"我回来了 江西上饶 {DONG_MOBILE}", name="路人")
    assert chat.replies(chain.tenant_group) == [TAKEN]
    assert "董" not in chat.replies(chain.tenant_group)[0]
    assert await person_of(bot, "sim", attacker) is None
    async with bot.session() as s:
        dong = (await s.execute(select(Person).where(Person.name == "董宝明"))).scalar_one()
    assert await count(bot, Contact, Contact.person_id == dong.id) == 1
    # Nothing of the landlord's is now the attacker's.
    await chat.say(chain.tenant_group, attacker, "我的租客")
    assert "由房东使用" in chat.replies(chain.tenant_group)[0]
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, attacker, "体温 潘先生 39.6")
    # No fever alert for 潘先生 and no reading of his: the stranger cannot speak for him. A
    # possible fever is never ignored (issue 11), so the team hears, unconfirmed, that the
    # stranger reported one; it names neither 潘先生 nor the landlord.
    alerts = chat.replies(chain.landlords_group)
    assert not any("发热提醒" in a or "潘" in a for a in alerts)
    assert all(a.startswith("【可能发热】") and "未确认" in a for a in alerts)
    await chat.say(chain.tenant_group, attacker, "房东上报 代办 帮租客买菜")
    assert await count(bot, LandlordReport) == 0
    assert await count(bot, TemperatureReading) == 0
    # The same in another landlord's group: never linked, never named.
    await chat.say(chain.ying_group, "sim-attacker2", f"我回来了 湖南 {DONG_MOBILE}")
    assert chat.replies(chain.ying_group) == [TAKEN]


async def test_a_tenant_of_another_node_is_never_linked_nor_revealed(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.ying_group, "sim-attacker", "我回来了 安徽阜阳 13611112222")
    assert chat.replies(chain.ying_group) == [TAKEN]
    assert await person_of(bot, "sim", "sim-attacker") is None
    assert await count(bot, LinkRequest) == 0


async def test_a_linked_tenants_mobile_is_not_offered_again(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
    await chat.say(chain.tenant_group, "sim-attacker", "我回来了 江西上饶 13905791234")
    assert chat.replies(chain.tenant_group) == [TAKEN]
    assert await count(bot, LinkRequest) == 0


async def test_a_registered_tenant_is_linked_only_when_the_landlord_confirms(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-new-lina", "我已返回 安徽阜阳 13611112222",
                   name="娜娜")
    [reply] = chat.replies(chain.tenant_group)
    assert reply.startswith("已登记 娜* 返回")
    assert reply.endswith("房东请确认：这位新成员自称是已登记的租客 李*（136****2222），"
                          "是否为同一人？请回复“确认 1”或“不是 1”。确认前按新租客单独登记。")
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    # Until then: a separate, unconfirmed tenant record with its own stay and readings.
    claimant = await person_of(bot, "sim", "sim-new-lina")
    assert claimant is not None and claimant.name == "娜娜" and claimant.mobile_bidx is None and claimant.mobile_enc is None
    await chat.say(chain.tenant_group, "sim-new-lina", "体温 36.4")
    assert chat.replies(chain.tenant_group) == ["已记录 娜* 体温 36.4℃，居家观察至 3月6日"]
    # A landlord's reading by the registered name goes to the registered tenant.
    await chat.say(chain.tenant_group, chain.landlord, "体温 李娜 36.5")
    assert chat.replies(chain.tenant_group) == ["已记录 李* 体温 36.5℃，居家观察至 3月6日"]
    # Only the landlord answers the question.
    await chat.say(chain.tenant_group, chain.tenant2, "确认 1")
    assert chat.replies(chain.tenant_group) == ["「确认」由房东使用，您没有权限。"]
    await chat.say(chain.tenant_group, chain.landlord, "确认 1")
    assert chat.replies(chain.tenant_group) == ["已确认：这位成员就是租客 李*，登记已合并。"]
    linked = await person_of(bot, "sim", "sim-new-lina")
    assert linked is not None and linked.name == "李娜" and linked.mobile_bidx == blind_index("mobile", "13611112222")
    async with bot.session() as s:
        stays = (await s.execute(select(TenantStay).where(TenantStay.ended_at.is_(None))
                                 )).scalars().all()
        assert len(stays) == 1 and stays[0].tenant_id == linked.id
        assert stays[0].self_reported_at is not None
        assert stays[0].landlord_reported_at is not None
        readings = (await s.execute(select(TemperatureReading.value, TemperatureReading.stay_id)
                                    )).all()
        assert sorted(readings) == [(36.4, stays[0].id), (36.5, stays[0].id)]
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    [listing] = chat.replies(chain.tenant_group)
    assert listing.startswith("董宝明出租房 租客 1 人") and "娜娜" not in listing
    await chat.say(chain.tenant_group, chain.landlord, "确认 1")
    assert chat.replies(chain.tenant_group) == ["没有待确认的身份关联 1。"]


async def test_the_landlord_says_it_is_someone_else(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-impostor", "我已返回 安徽阜阳 13611112222 体温38.5",
                   name="李娜")
    # A fever is never ignored: the alert goes out for the unconfirmed record too.
    assert len(chat.replies(chain.landlords_group)) == 1
    await chat.say(chain.tenant_group, chain.landlord, "不是 1")
    assert chat.replies(chain.tenant_group) == ["已记录：这位成员不是租客 李*，按新租客单独登记。"]
    impostor = await person_of(bot, "sim", "sim-impostor")
    assert impostor is not None and impostor.mobile_bidx is None
    async with bot.session() as s:
        lina = (await s.execute(select(Person).where(Person.mobile_bidx == blind_index("mobile", "13611112222"))
                                )).scalar_one()
    assert await count(bot, Contact, Contact.person_id == lina.id) == 0
    assert lina.id != impostor.id
    # Saying it again does not reopen anything.
    await chat.say(chain.tenant_group, "sim-impostor", "我已返回 安徽阜阳 13611112222")
    assert chat.replies(chain.tenant_group) == [TAKEN]


async def test_a_landlord_cannot_pull_another_nodes_tenant_into_his_list(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.ying_group, chain.ying_tenant, "我回来了 湖南长沙 13922223333")
    assert chat.replies(chain.ying_group)[0].startswith("已登记 赵* 返回")
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 赵丽 13922223333 来自湖南长沙")
    assert chat.replies(chain.tenant_group) == [TAKEN]
    assert "赵" not in chat.replies(chain.tenant_group)[0]
    await chat.say(chain.tenant_group, chain.landlord, "体温 赵丽 39.0")
    assert chat.replies(chain.tenant_group) == ["没有找到租客「赵*」的居家观察记录。"]
    assert chat.replies(chain.landlords_group) == []
    await chat.say(chain.tenant_group, chain.landlord, "我的租客")
    assert chat.replies(chain.tenant_group) == ["目前没有登记返回的租客。"]
    # The landlord's own mobile, or a commander's, is refused the same way.
    await chat.say(chain.tenant_group, chain.landlord, f"租客返回 某某 {DONG_MOBILE} 来自湖南")
    assert chat.replies(chain.tenant_group) == [TAKEN]
    assert await count(bot, OutboxMessage, OutboxMessage.source == "fever") == 0


async def test_two_contacts_claiming_one_tenant_only_one_is_linked(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 李娜 13611112222 来自安徽阜阳")
    await chat.say(chain.tenant_group, "sim-one", "我已返回 安徽阜阳 13611112222")
    await chat.say(chain.tenant_group, "sim-two", "我已返回 安徽阜阳 13611112222")
    assert "确认 2" in chat.replies(chain.tenant_group)[0]
    await chat.say(chain.tenant_group, chain.landlord, "确认 2")
    await chat.say(chain.tenant_group, chain.landlord, "确认 1")
    assert chat.replies(chain.tenant_group) == [
        "身份关联 1 已失效（该成员或租客的登记已变更），请让租客重新登记。"]
    linked = await person_of(bot, "sim", "sim-two")
    assert linked is not None and linked.name == "李娜"
    other = await person_of(bot, "sim", "sim-one")
    assert other is not None and other.id != linked.id
