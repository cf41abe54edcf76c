"""A batch that PostgreSQL picks to break a deadlock is run again whole, so no message in it
is answered 处理出错 (a 收到 lost so would leave its group "silent" and escalate). Real
deadlocks against a transaction the test holds open on its own connection."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from bot import texts
from bot.transports.memory import MemoryTransport
from models import Contact, Group, InboundMessage, NoticeRead, OutboxMessage
from tests.conftest import Chat, DemoChain, count

GUARD = 30.0


async def _rows(bot: Any, *rooms: str) -> list[int]:
    async with bot.session() as s:
        return [(await s.execute(select(OutboxMessage.id).join(Group).where(
            Group.room_id == room, OutboxMessage.notice_id == 1))).scalar_one() for room in rooms]


async def _waiting_on_a_lock(monitor: asyncpg.Connection, others: int) -> None:
    """Until `others` backends besides the test's wait for a lock."""
    async def wait() -> None:
        while await monitor.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()") < others:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), GUARD)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_batch_picked_to_break_deadlocks_runs_again_and_loses_no_ack(
        bot, chat: Chat, chain: DemoChain, transport: MemoryTransport, db_url: str):
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    [dong] = await _rows(bot, chain.tenant_group)
    async with bot.session() as s:
        ying_group = (await s.execute(select(Group.id).where(
            Group.room_id == chain.ying_group))).scalar_one()
        reader = (await s.execute(select(Contact.person_id).where(
            Contact.contact_id == chain.ying_tenant))).scalar_one()
    dsn = db_url.replace("postgresql+asyncpg", "postgresql")
    other, monitor = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        # The other transaction is writing the read of the 应天喜 group's tenant (not yet
        # committed) and waits far longer than the bot before it checks for deadlocks: the
        # bot is the victim.
        holding = other.transaction()
        await holding.start()
        await other.execute("SET LOCAL deadlock_timeout = '60s'")
        await other.execute("INSERT INTO notice_read (notice_id, group_id, person_id, at) "
                            "VALUES (1, $1, $2, now())", ying_group, reader)
        first = transport.message(chain.tenant_group, chain.landlord, "收到", message_id="dl-1")
        second = transport.message(chain.ying_group, chain.ying_tenant, "收到",
                                   message_id="dl-2")
        mark = len(transport.sent)
        await transport.inject(first)
        await transport.inject(second)
        handled = asyncio.create_task(bot.idle())
        # 1. The batch has marked 董宝明's row acknowledged and waits to write the read; the
        #    other transaction now wants 董宝明's row: a deadlock, and the batch (without
        #    savepoints) is rolled back.
        await _waiting_on_a_lock(monitor, 1)
        taken = asyncio.create_task(other.execute(
            "SELECT id FROM outbox_message WHERE id = $1 FOR UPDATE", dong))
        await asyncio.wait_for(taken, GUARD)
        # 2. Run again with savepoints, the batch waits for 董宝明's row, held by the other,
        #    which now waits for the batch's own dedupe row of the first 收到: a second
        #    deadlock, inside a handler's savepoint this time. The batch must not answer
        #    that 收到 (and the next, which would meet the same) 处理出错, but run again.
        await _waiting_on_a_lock(monitor, 1)
        inserted = asyncio.create_task(other.execute(
            "INSERT INTO inbound_message (transport, message_id, room_id, sender_id, command, "
            "received_at) VALUES ('sim', 'dl-1', 'x', 'x', 'x', now())"))
        done, _ = await asyncio.wait({inserted, handled}, timeout=GUARD,
                                     return_when=asyncio.FIRST_COMPLETED)
        assert done, "neither the batch nor the other transaction went on"
        await asyncio.gather(inserted, return_exceptions=True)
        await holding.rollback()  # the other ends, having written nothing
        await asyncio.wait_for(handled, GUARD)
    finally:
        await other.close()
        await monitor.close()
    said = [m.text for m in transport.sent[mark:]]
    assert texts.General.INTERNAL_ERROR not in said
    async with bot.session() as s:
        assert (await s.get(OutboxMessage, dong)).acked_at is not None
    assert await count(bot, NoticeRead, NoticeRead.group_id == ying_group,
                       NoticeRead.person_id == reader) == 1
    assert await count(bot, InboundMessage, InboundMessage.message_id.in_(["dl-1", "dl-2"])) == 2
