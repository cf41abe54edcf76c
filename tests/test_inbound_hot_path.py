"""The inbound hot path below the ORM (issue 13): a return's rows as Core INSERTs, the short-text
parse cache, and what the batch's look-ups keep."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

import bot.services.tenant as tenant_service
from bot import pipeline
from bot.crypto import blind_index
from bot.pipeline import forget_parsed, preparse
from bot.services import personal
from bot.transports.base import IncomingMessage
from models import Contact, Membership, Person, TemperatureReading, TenantStay
from tests.conftest import Chat, DemoChain, count


async def test_a_new_tenants_mobile_is_sealed_to_the_row_it_is_written_in(
        bot, chat: Chat, chain: DemoChain):
    # The id is taken before the row is written; the sealed value must open for that row.
    await chat.say(chain.tenant_group, "sim-new-1", "我回来了 湖南长沙 13812345678 体温36.5")
    assert chat.replies(chain.tenant_group)[0].startswith("已登记")
    async with bot.session() as s, s.begin():
        person = (await s.execute(select(Person).join(Contact).where(
            Contact.contact_id == "sim-new-1"))).scalar_one()
        assert person.mobile_mask == "138****5678"
        assert person.mobile_bidx == blind_index("mobile", "13812345678")
        assert await personal.reveal(s, person, "mobile", who="test", why="核对",
                                     now=bot.now()) == "13812345678"
        roles = (await s.execute(select(Membership.role).where(
            Membership.person_id == person.id))).scalars().all()
        stay = (await s.execute(select(TenantStay).where(
            TenantStay.tenant_id == person.id))).scalar_one()
    assert list(roles) == ["tenant"]
    assert stay.origin == "湖南长沙" and stay.self_reported_at is not None
    assert await count(bot, TemperatureReading, TemperatureReading.stay_id == stay.id) == 1


async def test_a_new_tenant_rolled_back_alone_leaves_nothing_for_the_next_one(
        bot, chat: Chat, chain: DemoChain, monkeypatch):
    # The first return fails after its rows were written (its SAVEPOINT rolls them back); the
    # next new tenant in the same batch may get the same id (SQLite) and must register.
    original = tenant_service._add_reading

    async def write_then_fail(session, *, value, **kwargs):
        await original(session, value=value, **kwargs)
        if value == 37.1:
            raise RuntimeError("disk on fire")
        return False

    monkeypatch.setattr(tenant_service, "_add_reading", write_then_fail)
    await chat.say_together([
        (chain.tenant_group, "sim-fails", "我回来了 湖南长沙 13800007777 体温37.1"),
        (chain.tenant_group, "sim-next", "我回来了 安徽阜阳 13800008888 体温36.6"),
        (chain.tenant_group, "sim-next", "体温 36.7"),
    ])
    first, second, third = chat.replies(chain.tenant_group)
    assert first == "抱歉，处理出错了，请稍后再试。"
    assert second.startswith("已登记") and "36.7" in third
    assert await count(bot, Contact, Contact.contact_id == "sim-fails") == 0
    assert await count(bot, Person, Person.mobile_bidx == blind_index("mobile",
                                                                      "13800007777")) == 0
    async with bot.session() as s, s.begin():
        person = (await s.execute(select(Person).join(Contact).where(
            Contact.contact_id == "sim-next"))).scalar_one()
        assert await personal.reveal(s, person, "mobile", who="test", why="核对",
                                     now=bot.now()) == "13800008888"
    assert await count(bot, TenantStay) == 1
    assert await count(bot, TemperatureReading) == 2


async def test_a_return_in_a_batch_does_not_make_the_others_look_themselves_up_again(
        bot, chat: Chat, chain: DemoChain):
    # The return's Core INSERTs say which contact and roles they wrote; the batch's look-ups
    # drop just those (a statement they cannot read would make them forget everyone).
    for i in range(3):
        await chat.say(chain.tenant_group, f"sim-old-{i}", f"我回来了 湖南长沙 1380000100{i}")
    seen: list[str] = []
    event.listen(bot.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement.lower()))
    await chat.say_together(
        [(chain.tenant_group, "sim-old-0", "体温 36.5"),
         (chain.tenant_group, "sim-brand-new", "我回来了 湖南长沙 13800002000")]
        + [(chain.tenant_group, f"sim-old-{i}", "体温 36.6") for i in range(3)]
        + [(chain.tenant_group, "sim-brand-new", "体温 36.8")])
    replies = chat.replies(chain.tenant_group)
    assert len(replies) == 6 and all("没有找到" not in r for r in replies)
    assert "36.8" in replies[-1]
    # One batch look-up of senders, one more for the new contact alone, none for the others.
    assert sum("from person join contact" in " ".join(s.split()) for s in seen) == 2
    assert sum("from chat_group" in s for s in seen) == 1


def message(text: str) -> IncomingMessage:
    return IncomingMessage("sim", "m1", "room@chatroom", "sim-x", "小王", text,
                           datetime(2020, 2, 21, 2, 0, tzinfo=UTC))


def test_short_chatter_is_parsed_once_and_numbers_are_never_kept():
    forget_parsed()
    for text in ("好的", "好的", "收到", "收到", "[图片]"):
        preparse(message(text), ("小助手",))
    info = pipeline._parse_short.cache_info()
    assert (info.hits, info.currsize) == (2, 3)
    for text in ("体温36.5", "体温 三十六度五", "13812345678", "我回来了 湖南 13812345678"):
        preparse(message(text), ("小助手",))
    assert pipeline._parse_short.cache_info().currsize == 3


def test_the_cache_gives_what_the_parser_gives():
    texts = ["收到", "好的收到", "帮助", "积分", "我的租客", "我回来了", "我发烧了", "收到！",
             "[图片]", "  收到  ", "房东上报", "待办", "进度", "谢谢房东", "@小助手 帮助",
             "我已返回", "体温正常", "咳嗽", "退租", "确认", "不是"]
    forget_parsed()
    for text in texts:
        cold = preparse(message(text), ("小助手",))
        warm = preparse(message(text), ("小助手",))
        fresh = pipeline._parse_text(text, ("小助手",))
        for item in (cold, warm):
            got = (None, None) if item is None else (item.command, item.error)
            assert (got[0], type(got[1]), getattr(got[1], "hint", None)) == (
                fresh[0], type(fresh[1]), getattr(fresh[1], "hint", None)), text
