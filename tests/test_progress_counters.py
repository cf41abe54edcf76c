"""进度's counters (notice_progress, kept by triggers on the outbox) always equal a recount of
the outbox rows: through sends, failures, retries, 收到, relays, failover moves, the
retention purge of texts, batch updates of many rows, notices moved or deleted, and the
migration's backfill."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import BotApp
from bot.services import failover, retention
from bot.services import notice as notices
from bot.transports.base import TransportError
from bot.transports.memory import MemoryTransport
from models import Group, Node, NoticeProgress, OutboxMessage, OutboxStatus
from tests.conftest import Chat, DemoChain

Counts = dict[tuple[int, int], tuple[int, int, int, int]]


async def counters(s: AsyncSession) -> Counts:
    """What the triggers kept (rows emptied by deletes left out)."""
    rows = await s.execute(select(
        NoticeProgress.notice_id, NoticeProgress.tier, NoticeProgress.total, NoticeProgress.sent,
        NoticeProgress.failed, NoticeProgress.acked).where(NoticeProgress.total != 0))
    return {(n, t): (total, sent, failed, acked) for n, t, total, sent, failed, acked in rows}


async def recount(s: AsyncSession) -> Counts:
    """The rows one by one."""
    out: dict[tuple[int, int], list[int]] = {}
    rows = await s.execute(
        select(OutboxMessage.notice_id, Node.tier, OutboxMessage.status, OutboxMessage.acked_at)
        .join(Group, Group.id == OutboxMessage.group_id).join(Node, Node.id == Group.node_id)
        .where(OutboxMessage.notice_id.is_not(None)))
    for notice_id, tier, status, acked_at in rows:
        line = out.setdefault((notice_id, tier), [0, 0, 0, 0])
        line[0] += 1
        line[1] += status == OutboxStatus.SENT
        line[2] += status == OutboxStatus.FAILED
        line[3] += acked_at is not None
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


async def assert_exact(bot: BotApp) -> Counts:
    async with bot.session() as s:
        kept, counted = await counters(s), await recount(s)
    assert kept == counted
    return kept


async def test_counters_follow_every_kind_of_write_in_random_batches(
        bot: BotApp, chat: Chat, chain: DemoChain) -> None:
    """Random statements on the outbox, one row or many per UPDATE (as a sender marking a
    batch does), each checked against the recount after it commits."""
    rng = random.Random(13)
    await chat.say(chain.subdistrict_group, chain.commander, "通知 今晚8点前完成楼道消毒")
    await chat.say(chain.community_group, chain.community_commander, "通知 明早查体温")
    async with bot.session() as s, s.begin():
        # The sender's rows of both notices back to pending: the random walk starts from there.
        await s.execute(update(OutboxMessage).where(OutboxMessage.notice_id.is_not(None))
                        .values(status=OutboxStatus.PENDING, sent_at=None))
    kept = await assert_exact(bot)
    assert sum(v[0] for v in kept.values()) > 8 and len({k[1] for k in kept}) >= 4
    now = bot.now()
    statuses = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT,
                OutboxStatus.FAILED]
    for step in range(60):
        async with bot.session() as s, s.begin():
            ids = list((await s.execute(select(OutboxMessage.id).where(
                OutboxMessage.notice_id.is_not(None)))).scalars())
            groups = list((await s.execute(select(Group.id))).scalars())
            pick = rng.sample(ids, rng.randint(1, min(4, len(ids)))) if ids else []
            rows = OutboxMessage.id.in_(pick)
            kind = rng.choice(["status", "status", "ack", "unack", "both", "account", "text",
                               "group", "notice", "delete", "reply"])
            if kind == "status":
                await s.execute(update(OutboxMessage).where(rows)
                                .values(status=rng.choice(statuses)))
            elif kind == "ack":
                await s.execute(update(OutboxMessage).where(rows).values(acked_at=now))
            elif kind == "unack":
                await s.execute(update(OutboxMessage).where(rows).values(acked_at=None))
            elif kind == "both":
                await s.execute(update(OutboxMessage).where(rows).values(
                    status=OutboxStatus.SENT, sent_at=now, acked_at=now))
            elif kind == "account":
                await s.execute(update(OutboxMessage).where(rows).values(account=f"acc{step}"))
            elif kind == "text":
                await s.execute(update(OutboxMessage).where(rows).values(text=None, mentions=[]))
            elif kind == "group" and pick:
                # A row moved to another group (possibly of another tier) where that is free.
                row = await s.get(OutboxMessage, pick[0])
                assert row is not None
                taken = set((await s.execute(select(OutboxMessage.group_id).where(
                    OutboxMessage.notice_id == row.notice_id))).scalars())
                free = [g for g in groups if g not in taken]
                if free:
                    row.group_id = rng.choice(free)
            elif kind == "notice" and pick:
                await s.execute(update(OutboxMessage).where(rows).values(notice_id=None))
            elif kind == "delete":
                await s.execute(delete(OutboxMessage).where(rows))
            else:
                # Rows of no notice never count.
                s.add(OutboxMessage(group_id=rng.choice(groups), source="reply",
                                    status=rng.choice(statuses), created_at=now, acked_at=now))
        await assert_exact(bot)


async def test_counters_through_the_bot_sends_failures_acks_failover_and_purge(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport, clock) -> None:
    """A notice sent by the real sender with a failure and a retry, acknowledged by 收到,
    its groups failed over to another account, texts purged: 进度's figures are the
    recount's at every step, and 进度 says them."""
    transport.fail_next.append(TransportError("模拟故障", retryable=True))
    transport.fail_next.append(TransportError("永久失败", retryable=False))
    await chat.say(chain.subdistrict_group, chain.commander, "通知 今晚8点前完成楼道消毒")
    kept = await assert_exact(bot)
    assert sum(v[2] for v in kept.values()) == 1  # the permanent failure
    clock.advance(timedelta(minutes=30))  # the retry's backoff
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    await chat.say(chain.landlords_group, chain.team_member, "收到")
    kept = await assert_exact(bot)
    assert sum(v[3] for v in kept.values()) >= 1
    async with bot.session() as s, s.begin():
        await s.execute(update(Group).values(fallback_account="wx-b"))
        await failover.move_groups(s, source="", target="wx-b")
    await assert_exact(bot)
    async with bot.session() as s, s.begin():
        await retention.purge_due(s, now=bot.now() + timedelta(days=3650),
                                  settings=bot.settings.retention)
    kept = await assert_exact(bot)
    await chat.say(chain.subdistrict_group, chain.commander, "进度 1")
    [reply] = chat.replies(chain.subdistrict_group)
    total = sum(v[0] for v in kept.values())
    acked = sum(v[3] for v in kept.values())
    assert f"确认 {acked}/{total}" in reply


async def test_the_rebuild_gives_what_the_triggers_kept(bot: BotApp, chat: Chat,
                                                         chain: DemoChain) -> None:
    """REBUILD_PROGRESS (the bulk loads' rebuild, the migration's backfill) writes the rows
    the triggers kept."""
    await chat.say(chain.subdistrict_group, chain.commander, "通知 今晚8点前完成楼道消毒")
    await chat.say(chain.tenant_group, chain.landlord, "收到")
    kept = await assert_exact(bot)
    async with bot.session() as s, s.begin():
        await s.execute(delete(NoticeProgress))
        await s.execute(text(notices.REBUILD_PROGRESS))
    async with bot.session() as s:
        assert await counters(s) == kept
        assert (await s.execute(select(func.count()).select_from(NoticeProgress))
                ).scalar_one() == len(kept)
