"""A batch shares the event loop (issue 13): it hands the loop back between its steps, splits
its look-ups and its dedupe INSERT into chunks, and keeps its cached identities across Core
writes to other tables. Attacked with duplicates across chunks, a stop in the middle of a
batch, more new senders than one look-up chunk, and Core writes to identity tables."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import false, insert, select, update

from bot import pipeline
from bot.pipeline import Handling, Lookups, LoopShare, preparse
from models import (
    Contact,
    Echo,
    InboundMessage,
    Membership,
    OutboxMessage,
    TemperatureReading,
    TenantStay,
)
from tests.conftest import Chat, DemoChain, count


@pytest.fixture
def every_step_yields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand the loop back at every step, so the tests do not depend on the machine's speed."""
    monkeypatch.setattr(LoopShare, "TURN", 0.0)


def spy_on_handlers(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    original = Handling._handle_one

    async def spied(self, session, item, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(f"handle {item.message.text}")
        return await original(self, session, item, *args, **kwargs)

    monkeypatch.setattr(Handling, "_handle_one", spied)


async def register(chat: Chat, chain: DemoChain, contacts: list[str]) -> None:
    await chat.say_together([(chain.tenant_group, c, f"我回来了 湖南长沙 1390000{i:04d}")
                             for i, c in enumerate(contacts)])


async def test_a_batch_hands_the_loop_back_between_its_messages(
        bot, chat: Chat, chain: DemoChain, transport, monkeypatch, every_step_yields):
    contacts = [f"sim-turn-{i}" for i in range(3)]
    await register(chat, chain, contacts)
    events: list[str] = []
    spy_on_handlers(monkeypatch, events)
    for i, contact in enumerate(contacts):
        await transport.inject(transport.message(chain.tenant_group, contact, f"体温 36.{i}"))

    async def other_chat() -> None:
        while True:
            if events[-1:] != ["tick"]:
                events.append("tick")
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_chat())
    await bot.idle()
    ticker.cancel()
    handled = [k for k, e in enumerate(events) if e.startswith("handle")]
    assert len(handled) == 3
    # Something else ran on the loop while the batch was between its first and last message.
    assert "tick" in events[handled[0]:handled[-1]]
    assert await count(bot, TemperatureReading) == 3


async def test_stop_in_the_middle_of_a_batch_finishes_the_batch_and_takes_nothing_new(
        bot, chat: Chat, chain: DemoChain, transport, monkeypatch, every_step_yields):
    contacts = [f"sim-stop-{i}" for i in range(6)]
    await register(chat, chain, contacts)
    readings_before = await count(bot, TemperatureReading)
    handled = 0
    second = asyncio.Event()
    original = Handling._handle_one

    async def watch(self, session, item, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal handled
        handled += 1
        if handled == 2:
            second.set()
        return await original(self, session, item, *args, **kwargs)

    monkeypatch.setattr(Handling, "_handle_one", watch)
    replies = await count(bot, OutboxMessage, OutboxMessage.notice_id.is_(None))
    for i, contact in enumerate(contacts):
        await transport.inject(transport.message(chain.tenant_group, contact, f"体温 36.{i}"))

    async def stop_midway() -> None:
        await second.wait()
        await bot.stop()

    stopping = asyncio.create_task(stop_midway())
    await second.wait()
    await asyncio.sleep(0)
    # Arrives while stopping, during the batch: not started.
    late = transport.message(chain.tenant_group, contacts[0], "体温 36.9")
    await transport.inject(late)
    await stopping
    assert handled == 6
    assert await count(bot, TemperatureReading) == readings_before + 6
    assert await count(bot, InboundMessage, InboundMessage.message_id == late.message_id) == 0
    # Every message of the batch got its reply written (the outbox keeps what the stopped
    # sender did not send yet).
    assert await count(bot, OutboxMessage, OutboxMessage.notice_id.is_(None)) == replies + 6


async def test_duplicates_across_dedupe_chunks_have_one_effect(bot, chat: Chat,
                                                               chain: DemoChain, transport):
    earlier = transport.message(chain.tenant_group, chain.landlord,
                                "租客返回 李雷 13600000999 来自湖南长沙")
    await transport.inject(earlier)
    await bot.idle()
    n = pipeline.PRIME_CHUNK * 2 + 6  # more than one dedupe INSERT
    messages = [transport.message(chain.tenant_group, chain.landlord,
                                  f"租客返回 王明 1360000{i:04d} 来自湖南长沙")
                for i in range(n)]
    # The first message again at the end (a later chunk), and the earlier batch's again.
    for message in [*messages, messages[0], earlier]:
        await transport.inject(message)
    await bot.idle()
    assert await count(bot, TenantStay) == n + 1
    assert await count(bot, InboundMessage) == n + 1


async def test_more_new_senders_than_a_lookup_chunk_each_get_their_own_records(
        bot, chat: Chat, chain: DemoChain):
    n = pipeline.PRIME_CHUNK * 2 + 3
    contacts = [f"sim-many-{i:03d}" for i in range(n)]
    await register(chat, chain, contacts)
    assert len(chat.replies(chain.tenant_group)) == n
    await chat.say_together([(chain.tenant_group, c, f"体温 {36.0 + (i % 10) / 10:.1f}")
                             for i, c in enumerate(contacts)])
    async with bot.session() as session:
        rows = (await session.execute(
            select(Contact.contact_id, TemperatureReading.value)
            .join(TenantStay, TenantStay.tenant_id == Contact.person_id)
            .join(TemperatureReading, TemperatureReading.stay_id == TenantStay.id)
            .where(Contact.contact_id.in_(contacts)))).all()
    assert sorted(rows) == sorted((c, round(36.0 + (i % 10) / 10, 1))
                                  for i, c in enumerate(contacts))


async def test_cached_identities_survive_core_writes_to_other_tables_only(
        bot, chain: DemoChain, transport):
    items = [preparse(transport.message(chain.tenant_group, who, "我的租客"), ("小助手",))
             for who in (chain.landlord, chain.tenant)]
    async with bot.session() as session, session.begin():
        lookups = Lookups(session)
        try:
            await lookups.prime([i for i in items if i is not None])
            assert lookups.groups and lookups.senders and lookups.roles
            await session.execute(insert(Echo.__table__).values(
                transport="sim", room_id="r", digest="d", message_id="m", at=bot.now()))
            assert lookups.groups and lookups.senders and lookups.roles
            await session.execute(update(Membership.__table__).where(false()).values(
                node_id=Membership.node_id))
            assert not lookups.groups and not lookups.senders and not lookups.roles
        finally:
            lookups.close()
