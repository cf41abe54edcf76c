"""Issue 11 through the whole pipeline: a fever is never ignored, names are not guessed,
arrival times keep their uncertainty, chatter stays unanswered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.crypto import blind_index
from models import Person, TemperatureReading, TenantStay
from tests.conftest import SHANGHAI, Chat, DemoChain, count

NEW_TENANT = "sim-new-tenant"


async def _home_watch(bot, chat: Chat, chain: DemoChain) -> None:
    await chat.say(chain.tenant_group, chain.tenant2, "租客返回 王明 13800000001 来自湖南长沙")
    assert await count(bot, TenantStay) == 1


async def test_a_fever_said_without_a_reading_tells_landlord_and_team(
        bot, chat: Chat, chain: DemoChain):
    await _home_watch(bot, chat, chain)
    await chat.say(chain.tenant_group, chain.tenant2, "房东，我好像发烧了[流泪]")
    [reply] = chat.replies(chain.tenant_group)
    assert "可能发热" in reply and "体温 37.5" in reply
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    [alert] = chat.replies(chain.landlords_group)
    assert alert.startswith("【可能发热】董宝明出租房 王* ") and "未确认" in alert
    assert await count(bot, TemperatureReading) == 0  # nothing sure was said: nothing stored


async def test_an_uncertain_reading_is_alerted_with_its_value(bot, chat: Chat, chain: DemoChain):
    await _home_watch(bot, chat, chain)
    await chat.say(chain.tenant_group, chain.tenant2, "体温37.6算发烧吗？")
    [alert] = chat.replies(chain.landlords_group)
    assert "约37.6℃，未确认" in alert
    await chat.say(chain.tenant_group, chain.tenant2, "体温 37.6")  # confirmed: recorded
    assert await count(bot, TemperatureReading) == 1
    assert chat.replies(chain.landlords_group)[0].startswith("【发热提醒】")


async def test_a_question_without_a_fever_gets_a_hint_only(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant2, "体温多少算发烧？")
    [hint] = chat.replies(chain.tenant_group)
    assert hint.startswith("如需报体温") and "\n" not in hint
    assert chat.replies(chain.landlords_group) == []


async def test_a_fever_from_someone_not_registered_is_still_alerted(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, NEW_TENANT, "体温38.5😷", name="小李")
    [reply] = chat.replies(chain.tenant_group)
    assert "可能发热" in reply and "租客返回" in reply  # and how to register
    assert chat.mentions(chain.tenant_group) == [(chain.landlord,)]
    [alert] = chat.replies(chain.landlords_group)
    assert "小*" in alert and "38.5" in alert


async def test_health_words_outside_tenant_groups_stay_quiet(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.landlords_group, chain.team_member, "最近发烧的人多吗")
    await chat.say(chain.community_group, chain.community_commander, "体温检测点明天撤")
    assert chat.all_texts() == []


async def test_no_name_means_the_display_name_and_the_reply_says_so(
        bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, NEW_TENANT, "大家好，我从江西上饶回来了，电话13900000002",
                   name="上饶小李")
    [reply] = chat.replies(chain.tenant_group)
    assert "按微信昵称登记" in reply
    async with bot.session() as s:
        person = (await s.execute(select(Person).where(Person.mobile_bidx == blind_index("mobile", "13900000002")))
                  ).scalar_one()
    assert person.name == "上饶小李"  # not 大家好


async def test_a_part_of_the_day_is_shown_not_midnight(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, NEW_TENANT,
                   "您好 我叫王明远 昨天晚上从长沙回来 手机号13800000003 现在在家隔离")
    [reply] = chat.replies(chain.tenant_group)
    assert "（来自长沙，2月20日晚上到达）" in reply
    async with bot.session() as s:
        stay = (await s.execute(select(TenantStay))).scalar_one()
    local = stay.arrived_at.astimezone(SHANGHAI)
    assert (local.day, local.hour) == (20, 20)
    assert stay.watch_until - stay.arrived_at == timedelta(days=14)


async def test_chatter_gets_no_reply_anywhere(bot, chat: Chat, chain: DemoChain):
    for room, who, text in [
        (chain.tenant_group, chain.tenant2, "大家早上好[微笑]"),
        (chain.tenant_group, chain.tenant2, "谢谢房东[抱拳]"),
        (chain.tenant_group, chain.tenant, "有人知道超市几点开门吗？"),
        (chain.landlords_group, chain.landlord, "辛苦了各位"),
        (chain.subdistrict_group, chain.commander, "好久不见"),
    ]:
        await chat.say(room, who, text)
    assert chat.all_texts() == []


async def test_free_text_keeps_the_writers_punctuation(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant2, "问题反馈：楼道灯坏了、门禁也坏了！")
    [up] = chat.replies(chain.landlords_group)
    assert "楼道灯坏了、门禁也坏了！" in up
