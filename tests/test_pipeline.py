"""The pipeline's promises: dedupe, chatter, hints, refusals, errors, batching, commit-then-reply."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select

import bot.services.tenant as tenant_service
from bot.cli import setup_logging
from bot.transports.base import SentMessage
from models import InboundMessage, TemperatureReading, TenantStay
from tests.conftest import Chat, DemoChain, count
from tests.dump import FULL_MOBILE


async def test_a_message_delivered_twice_has_one_effect(bot, chat: Chat, chain: DemoChain):
    text = "租客返回 王明 13800138000 来自湖南长沙"
    await chat.say(chain.tenant_group, chain.landlord, text, message_id="wx-1")
    assert len(chat.replies(chain.tenant_group)) == 1
    await chat.say(chain.tenant_group, chain.landlord, text, message_id="wx-1")
    assert chat.replies(chain.tenant_group) == []
    assert await count(bot, TenantStay) == 1
    assert await count(bot, InboundMessage) == 1


async def test_duplicates_inside_one_batch_count_once(bot, chat: Chat, chain: DemoChain,
                                                      transport):
    msg = transport.message(chain.tenant_group, chain.landlord,
                            "租客返回 王明 13800138000 来自湖南长沙", message_id="wx-dup")
    await transport.inject(msg)
    await transport.inject(msg)
    await bot.idle()
    assert await count(bot, TenantStay) == 1
    assert len([s for s in transport.sent if s.room_id == chain.tenant_group]) == 1


async def test_chatter_gets_no_reply_and_leaves_no_trace(bot, chat: Chat, chain: DemoChain):
    for line in ("大家好", "谢谢房东", "明天几点消毒？", "[图片]", "收到了吗"):
        await chat.say(chain.tenant_group, chain.tenant, line)
        assert chat.replies(chain.tenant_group) == []
    assert await count(bot, InboundMessage) == 0


async def test_bad_arguments_get_a_hint_and_store_nothing(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 1380013800 来自湖南长沙",
                   message_id="wx-bad")
    [hint] = chat.replies(chain.tenant_group)
    assert "手机号" in hint and "租客返回" in hint and "\n" not in hint
    assert await count(bot, TenantStay) == 0
    # Redelivered, the same bad message is not answered twice.
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 1380013800 来自湖南长沙",
                   message_id="wx-bad")
    assert chat.replies(chain.tenant_group) == []


async def test_unbound_group_is_told_how_to_bind(bot, chat: Chat, chain: DemoChain):
    await chat.say("stranger@chatroom", chain.tenant, "体温 36.5")
    assert chat.replies("stranger@chatroom") == [
        "本群还没有绑定到作战单元。请找指挥长要群邀请码，在本群发送：绑定群 邀请码"]


async def test_unauthorised_command_is_refused_and_changes_nothing(bot, chat: Chat,
                                                                   chain: DemoChain):
    await chat.say(chain.tenant_group, chain.tenant, "房东上报 消毒")
    # The refusal names who may use it; a tenant already has a role: no invite-code advice.
    assert chat.replies(chain.tenant_group) == ["「房东上报」由房东使用，您没有权限。"]
    from models import LandlordReport
    assert await count(bot, LandlordReport) == 0


async def test_a_display_name_is_never_an_identity(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, "sim-impostor", "房东上报 消毒", name="董宝明")
    assert "没有权限" in chat.replies(chain.tenant_group)[0]


async def test_mention_of_the_bot_is_stripped(bot, chat: Chat, chain: DemoChain):
    await chat.say(chain.tenant_group, chain.landlord,
                   "@小助手\u2005租客返回 王明 13800138000 来自湖南长沙")
    assert chat.replies(chain.tenant_group)[0].startswith("已登记 王* 返回")


async def test_the_bots_own_echo_is_never_a_command(bot, chat: Chat, chain: DemoChain,
                                                    transport):
    from bot.transports.base import IncomingMessage
    await transport.inject(IncomingMessage(
        transport="sim", message_id="echo-1", room_id=chain.tenant_group, sender_id="sim-bot",
        sender_name="bot", text="租客返回 王明 13800138000 来自湖南长沙", at=bot.now(),
        is_self=True))
    await bot.idle()
    assert await count(bot, TenantStay) == 0
    assert transport.sent == []


async def test_internal_error_apologises_logs_the_id_and_stores_nothing_partial(
        bot, chat: Chat, chain: DemoChain, monkeypatch, caplog):
    await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")

    async def half_then_boom(session, *, inbound_id, **kwargs):
        stay = (await session.execute(select(TenantStay))).scalar_one()
        session.add(TemperatureReading(stay_id=stay.id, value=36.0, taken_at=bot.now(),
                                       by_id=stay.tenant_id, inbound_id=inbound_id))
        await session.flush()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tenant_service, "record_temperature", half_then_boom)
    with caplog.at_level(logging.ERROR):
        await chat.say(chain.tenant_group, chain.tenant, "体温 36.6", message_id="wx-boom")
    assert chat.replies(chain.tenant_group) == ["抱歉，处理出错了，请稍后再试。"]
    assert await count(bot, TemperatureReading) == 0
    assert "wx-boom" in caplog.text


async def test_messages_arriving_together_share_a_batch_and_fail_alone(
        bot, chat: Chat, chain: DemoChain, monkeypatch):
    commits = []
    from sqlalchemy import event
    event.listen(bot.engine.sync_engine, "commit", lambda conn: commits.append(1))
    await chat.say_together([
        (chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙"),
        (chain.tenant_group, chain.tenant, "体温 36.6"),               # no stay yet: UserError
        (chain.tenant_group, chain.tenant, "租客返回 潘先生 139"),     # ParseError
        (chain.tenant_group, chain.tenant2, "好的"),                  # chatter
        (chain.ying_group, chain.ying_tenant, "我回来了 安徽阜阳 13611112222"),
    ])
    assert await count(bot, TenantStay) == 2
    assert await count(bot, TemperatureReading) == 0
    replies = chat.replies(chain.tenant_group)
    assert replies[0].startswith("已登记 王* 返回")
    assert replies[1].startswith("没有找到您的返回登记")
    assert "手机号" in replies[2]
    assert len(replies) == 3
    assert chat.replies(chain.ying_group)[0].startswith("已登记 赵* 返回")
    # One commit for the commands (the outbox sender's empty look may add its own).
    assert len(commits) <= 3


async def test_a_message_the_parser_fails_on_costs_only_its_own_answer(
        bot, chat: Chat, chain: DemoChain, monkeypatch, caplog):
    # Messages are parsed as they arrive (Pipeline.submit); a parser's bug on one of them is
    # logged and that message taken as chatter, never the batch it would have shared.
    from bot import pipeline
    real = pipeline.preparse

    def fragile(message, bot_names):  # type: ignore[no-untyped-def]
        if "炸" in message.text:
            raise RuntimeError("parser bug")
        return real(message, bot_names)

    monkeypatch.setattr(pipeline, "preparse", fragile)
    with caplog.at_level(logging.ERROR):
        await chat.say_together([
            (chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙"),
            (chain.tenant_group, chain.tenant2, "体温 36.6 炸"),
            (chain.ying_group, chain.ying_tenant, "我回来了 安徽阜阳 13611112222"),
        ])
    assert await count(bot, TenantStay) == 2
    assert [r[:9] for r in chat.replies(chain.tenant_group)] == ["已登记 王* 返回"]
    assert chat.replies(chain.ying_group)[0].startswith("已登记 赵* 返回")
    assert "could not be parsed" in caplog.text and "parser bug" in caplog.text


async def test_every_reply_leaves_after_its_record_is_committed(bot, chat: Chat,
                                                                chain: DemoChain, transport):
    seen: list[int] = []
    original = transport.send

    async def checking_send(room_id, text, *, mentions=(), account="") -> SentMessage:
        async with bot.session() as other:  # a separate connection sees only committed rows
            seen.append(await other.scalar(select(TenantStay.id).limit(1)) or 0)
        return await original(room_id, text, mentions=mentions, account=account)

    transport.send = checking_send
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    assert seen and all(seen)


async def test_logs_carry_no_full_mobile(bot, chat: Chat, chain: DemoChain):
    stream = io.StringIO()
    setup_logging("DEBUG", stream)
    # Driver debug logs carry SQL parameters; the masking filter must catch those too.
    logging.getLogger("aiosqlite").setLevel(logging.DEBUG)
    ours: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            ours.append(record.getMessage())

    keep = Keep()
    logging.getLogger("bot").addHandler(keep)
    try:
        await chat.say(chain.tenant_group, chain.tenant, "我回来了 江西上饶 13905791234")
        await chat.say(chain.tenant_group, chain.tenant, "租客返回 潘先生 1390579123 来自江西")
    finally:
        logging.getLogger("bot").removeHandler(keep)
        logging.getLogger().handlers.clear()
        logging.getLogger("aiosqlite").setLevel(logging.NOTSET)
    # Our own log lines never carry the number, even before masking. A number is a run of
    # digits of its own (tests.dump's FULL_MOBILE): the driver's lines hold hex hashes (a
    # blind index under this run's random key, a digest), whose digit runs once made this
    # test fail by chance ('…19478937621…' inside a blind index).
    assert ours, "the pipeline logs what it handles"
    assert not any(FULL_MOBILE.search(line) for line in ours)
    written = stream.getvalue()
    if bot.settings.is_sqlite:
        assert "139****1234" in written  # the driver logged it, and it was masked
    assert not FULL_MOBILE.search(written)


@pytest.mark.parametrize("text", ["帮助", "帮助？", "help", "菜单"])
async def test_help_lists_what_this_sender_may_use_here(bot, chat: Chat, chain: DemoChain,
                                                        text):
    await chat.say(chain.tenant_group, chain.tenant, text)
    [reply] = chat.replies(chain.tenant_group)
    assert "租客返回" in reply and "体温" in reply
    assert "房东上报" not in reply and "我的租客" not in reply
    await chat.say(chain.tenant_group, chain.landlord, text)
    [reply] = chat.replies(chain.tenant_group)
    assert "房东上报" in reply and "我的租客" in reply


async def test_help_in_an_unbound_group_shows_binding(bot, chat: Chat, chain: DemoChain):
    await chat.say("new@chatroom", "sim-someone", "帮助")
    [reply] = chat.replies("new@chatroom")
    assert "绑定群" in reply and "租客返回" not in reply
