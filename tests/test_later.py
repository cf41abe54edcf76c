"""Answers that come Later (bot.router.Later): 统计 reads a whole subtree, at a city's root
every row of it, so it is worked out after its batch has committed, in a read session of its
own (on SQLite a read-only connection off the event loop). Attacked: a 统计 that takes long
while other chats talk, a write tried from the read session, a read that fails, duplicates,
several at once, and a stop while one is still being worked out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, OperationalError

from bot import app as app_module
from bot import pipeline, texts
from bot.app import BotApp
from bot.services import stats
from models import InboundMessage, LandlordReport, Node, OutboxMessage, TemperatureReading
from tests.conftest import Chat, DemoChain, count, until


class HeldStats:
    """stats.compute, held at its start until released; notes the sessions it ran in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.release = asyncio.Event()
        self.started = 0
        self.sessions: list[Any] = []
        original = stats.compute

        async def held(session: Any, **kwargs: Any) -> stats.Figures:
            self.started += 1
            self.sessions.append(session)
            await self.release.wait()
            return await original(session, **kwargs)

        monkeypatch.setattr(stats, "compute", held)


def sent_to(transport: Any, room: str, start: int = 0) -> list[str]:
    return [s.text for s in transport.sent[start:] if s.room_id == room]


async def test_a_long_statistics_read_holds_up_no_other_chat(
        bot: BotApp, chat: Chat, chain: DemoChain, transport, monkeypatch):
    held = HeldStats(monkeypatch)
    await chat.say(chain.tenant_group, chain.tenant, "租客返回 潘先生 13900001111 来自湖北武汉")
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.subdistrict_group, chain.commander, "统计"))
    await until(lambda: held.started == 1, "统计 to start reading")
    # While the commander's figures are being read, a tenant's reading is handled, committed
    # and answered.
    await transport.inject(transport.message(chain.tenant_group, chain.tenant, "体温 36.6"))
    await until(lambda: any("36.6" in t for t in sent_to(transport, chain.tenant_group, mark)),
                "the tenant's answer")
    assert await count(bot, TemperatureReading) >= 1
    assert sent_to(transport, chain.subdistrict_group, mark) == []
    assert bot.pipeline.has_pending()
    held.release.set()
    await bot.idle()
    [answer] = sent_to(transport, chain.subdistrict_group, mark)
    # The figures were read after the reading's commit, so they hold the registration.
    assert answer.startswith("【统计") and "累计返回 1" in answer


async def test_the_read_session_cannot_write(bot: BotApp, chat: Chat, chain: DemoChain,
                                             monkeypatch):
    held = HeldStats(monkeypatch)
    held.release.set()
    await chat.say(chain.subdistrict_group, chain.commander, "统计")
    [session] = held.sessions
    assert bot.reader is not None and session.bind is bot.reader
    refused = OperationalError if bot.reader.dialect.name == "sqlite" else DBAPIError
    with pytest.raises(refused, match="readonly|read-only"):
        async with bot.read_session() as s, s.begin():
            await s.execute(insert(InboundMessage).values(
                transport="sim", message_id="x", room_id="r", sender_id="s", command="x",
                received_at=bot.now()))


async def test_a_failing_read_gets_the_apology_and_nothing_is_lost(
        bot: BotApp, chat: Chat, chain: DemoChain, monkeypatch):
    async def broken(session: Any, **kwargs: Any) -> stats.Figures:
        await session.execute(select(Node.id).limit(1))
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(stats, "compute", broken)
    await chat.say(chain.subdistrict_group, chain.commander, "统计")
    assert chat.replies(chain.subdistrict_group) == [texts.General.INTERNAL_ERROR]
    # The question itself was recorded with its batch.
    assert await count(bot, InboundMessage, InboundMessage.command == "Stats") == 1


async def test_a_duplicate_delivery_is_answered_once(bot: BotApp, chat: Chat,
                                                     chain: DemoChain, transport):
    message = transport.message(chain.subdistrict_group, chain.commander, "统计")
    await transport.inject(message)
    await transport.inject(message)
    await bot.idle()
    await transport.inject(message)
    await bot.idle()
    assert len([t for t in sent_to(transport, chain.subdistrict_group)
                if t.startswith("【统计")]) == 1


async def test_several_at_once_take_turns_and_all_are_answered(
        bot: BotApp, chat: Chat, chain: DemoChain, transport, monkeypatch):
    held = HeldStats(monkeypatch)
    rooms = [chain.subdistrict_group, chain.community_group]
    speakers = [chain.commander, chain.secretary]
    mark = len(transport.sent)
    for _ in range(3):
        for room, who in zip(rooms, speakers, strict=True):
            await transport.inject(transport.message(room, who, "统计"))
    await until(lambda: held.started == pipeline.LATER_AT_ONCE, "the first reads")
    await asyncio.sleep(0.05)
    assert held.started == pipeline.LATER_AT_ONCE  # the others wait for a turn
    held.release.set()
    await bot.idle()
    assert held.started == 6
    for room in rooms:
        assert len([t for t in sent_to(transport, room, mark) if t.startswith("【统计")]) == 3


async def test_a_stop_while_a_read_is_held_drops_only_that_answer(
        bot: BotApp, chat: Chat, chain: DemoChain, transport, monkeypatch):
    held = HeldStats(monkeypatch)
    monkeypatch.setattr(app_module, "STOP_SECONDS", 1.0)
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.subdistrict_group, chain.commander, "统计"))
    await transport.inject(transport.message(chain.tenant_group, chain.landlord, "房东上报 消毒"))
    await until(lambda: held.started == 1, "统计 to start reading")
    await asyncio.wait_for(bot.stop(), 30)
    assert not bot.pipeline.has_pending()
    # The report of the same batch is committed with its answer (sent, or kept in the outbox
    # for the next start); the figures never came.
    assert await count(bot, LandlordReport) == 1
    assert sent_to(transport, chain.subdistrict_group, mark) == []
    answered = any("消毒" in t for t in sent_to(transport, chain.tenant_group, mark))
    assert answered or await count(bot, OutboxMessage, OutboxMessage.source == "reply") == 1
    assert await count(bot, InboundMessage) >= 2
