"""进度's counters (notice_progress, kept by triggers on the outbox) always equal a recount of
the outbox rows: through sends, failures, retries, 收到, relays, failover moves, the
retention purge of texts, batch updates of many rows, notices moved or deleted, and the
migration's backfill."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.app import BotApp
from bot.services import failover, retention
from bot.services import notice as notices
from bot.transports.base import TransportError
from bot.transports.memory import MemoryTransport
from models import (
    Group,
    Node,
    Notice,
    NoticeProgress,
    OutboxMessage,
    OutboxStatus,
    PointsEvent,
)
from tests.conftest import OLD_CHAIN, Chat, DemoChain, database_at

Counts = dict[tuple[int, int], tuple[int, int, int, int]]


async def counters(s: AsyncSession) -> Counts:
    """What the triggers kept, each key's shards summed (keys emptied by deletes left out)."""
    c = NoticeProgress
    rows = await s.execute(select(
        c.notice_id, c.tier, func.sum(c.total), func.sum(c.sent), func.sum(c.failed),
        func.sum(c.acked)).group_by(c.notice_id, c.tier).having(func.sum(c.total) != 0))
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
        # first_id is a lower bound of the ids of each (notice, tier)'s rows.
        firsts = dict(((n, t), f) for n, t, f in (await s.execute(select(
            NoticeProgress.notice_id, NoticeProgress.tier, func.min(NoticeProgress.first_id))
            .group_by(NoticeProgress.notice_id, NoticeProgress.tier))).tuples())
        lowest = await s.execute(
            select(OutboxMessage.notice_id, Node.tier, func.min(OutboxMessage.id))
            .join(Group, Group.id == OutboxMessage.group_id).join(Node, Node.id == Group.node_id)
            .where(OutboxMessage.notice_id.is_not(None)).group_by(OutboxMessage.notice_id,
                                                                 Node.tier))
        for notice_id, tier, low in lowest.tuples():
            first = firsts[notice_id, tier]
            assert first is not None and first <= low
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


async def test_migration_backfills_counters_and_communities(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A database upgraded past 0017_pgreads gets its counters from the outbox rows and every
    event's community from its node (at any tier); the triggers carry on from there."""
    t = {"t": datetime(2020, 2, 1, 8)}
    engine = await database_at(tmp_path, "0016_console_extra", (
        OLD_CHAIN + ", (6, 5, 'landlord_tenants', 'f', 4, :t), (7, 2, 'community', 'g', 1, :t)",
        "INSERT INTO chat_group (id, node_id, transport, room_id, title, account, "
        "created_at) VALUES (1, 1, 'sim', 'r1', 'a', '', :t), (2, 4, 'sim', 'r4', 'd', '', "
        ":t), (3, 5, 'sim', 'r5', 'e', '', :t), (4, 6, 'sim', 'r6', 'f', '', :t)",
        "INSERT INTO person (id, name, created_at) VALUES (1, 'x', :t)",
        "INSERT INTO notice (id, origin_node_id, text, urgent, scope, target_count, missed, "
        "created_at) VALUES (1, 1, 'n', 0, '{}', 3, 0, :t)",
        "INSERT INTO outbox_message (group_id, notice_id, account, urgent, mentions, source, "
        "status, attempts, resend, relayed, created_at, acked_at) VALUES "
        "(2, 1, '', 0, '[]', 'notice', 'sent', 1, 0, 0, :t, :t), "
        "(3, 1, '', 0, '[]', 'notice', 'failed', 1, 0, 0, :t, NULL), "
        "(4, 1, '', 0, '[]', 'notice', 'sent', 1, 0, 0, :t, NULL), "
        "(1, NULL, '', 0, '[]', 'reply', 'sent', 1, 0, 0, :t, NULL)",
        "INSERT INTO points_event (landlord_id, node_id, rule, delta, status, counts, "
        "source_kind, source_key, evidence, occurred_at, created_at) VALUES "
        "(1, 5, 'm', -1, 'pending', 0, 'k', '1', '', :t, :t), "
        "(1, 4, 'm', -1, 'pending', 0, 'k', '2', '', :t, :t), "
        "(1, 3, 'm', -1, 'pending', 0, 'k', '3', '', :t, :t), "
        "(1, 7, 'm', -1, 'pending', 0, 'k', '4', '', :t, :t), "
        "(1, 1, 'm', -1, 'pending', 0, 'k', '5', '', :t, :t)"), t)
    await store.upgrade(engine)
    async with store.sessionmaker(engine)() as s, s.begin():
        assert await counters(s) == await recount(s) == {(1, 4): (1, 1, 0, 1),
                                                         (1, 5): (2, 1, 1, 0)}
        scopes = dict((await s.execute(select(PointsEvent.source_key, PointsEvent.scope2_id))
                       ).tuples().all())
        assert scopes == {"1": 2, "2": 2, "3": 2, "4": 7, "5": None}
        await s.execute(text(
            "INSERT INTO points_event (landlord_id, node_id, rule, delta, status, counts, "
            "source_kind, source_key, evidence, occurred_at, created_at) VALUES "
            "(1, 6, 'm', -1, 'pending', 0, 'k', '6', '', :t, :t)"), t)
        await s.execute(update(OutboxMessage).where(OutboxMessage.group_id == 3)
                        .values(status=OutboxStatus.SENT, acked_at=t["t"].replace(tzinfo=UTC)))
    async with store.sessionmaker(engine)() as s:
        assert await counters(s) == await recount(s) == {(1, 4): (1, 1, 0, 1),
                                                         (1, 5): (2, 2, 0, 1)}
        assert (await s.execute(select(PointsEvent.scope2_id).where(
            PointsEvent.source_key == "6"))).scalar_one() == 2
    await engine.dispose()


async def test_outbox_rows_name_only_groups_that_exist(bot: BotApp, chat: Chat,
                                                       chain: DemoChain) -> None:
    """The outbox's group is guarded on both databases (SQLite: its foreign key; PostgreSQL:
    the statement-level checks that replaced it): no row for a missing group, in a fan-out
    or alone, no move of a row to one, no delete or renumbering of a group rows still name;
    each failed statement leaves nothing behind."""
    await chat.say(chain.subdistrict_group, chain.commander, "通知 今晚8点前完成楼道消毒")
    now = bot.now()
    async with bot.session() as s:
        groups = list((await s.execute(select(Group.id).order_by(Group.id))).scalars())
        before = await counters(s)
        rows = (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    missing = max(groups) + 100
    attempts = [
        # A fan-out with one bad row among good ones: the whole statement fails.
        lambda s: s.execute(insert(OutboxMessage), [
            {"group_id": g, "notice_id": 999, "source": "notice", "status": "pending",
             "account": "", "created_at": now} for g in [*groups, missing]]),
        lambda s: s.execute(insert(OutboxMessage).values(
            group_id=missing, source="reply", status="pending", account="", created_at=now)),
        lambda s: s.execute(update(OutboxMessage).where(OutboxMessage.notice_id == 1)
                            .values(group_id=missing)),
        lambda s: s.execute(delete(Group).where(Group.id == groups[1])),
        lambda s: s.execute(update(Group).where(Group.id == groups[1]).values(id=missing)),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError):
            async with bot.session() as s, s.begin():
                await attempt(s)
    async with bot.session() as s:
        assert await counters(s) == before == await recount(s)
        assert (await s.execute(select(func.count()).select_from(OutboxMessage))
                ).scalar_one() == rows
        assert list((await s.execute(select(Group.id).order_by(Group.id))).scalars()) == groups
    # A group no row names may go (the guard is about references, not every delete).
    async with bot.session() as s, s.begin():
        spare = await s.get(Group, groups[-1])
        assert spare is not None
        await s.execute(delete(OutboxMessage).where(OutboxMessage.group_id == spare.id))
        await s.execute(delete(Group).where(Group.id == spare.id))
    await assert_exact(bot)


@pytest.mark.parametrize("spread", [0, 10**9])
async def test_silent_groups_are_the_same_whichever_way_they_are_found(
        bot: BotApp, chat: Chat, chain: DemoChain, monkeypatch: pytest.MonkeyPatch,
        spread: int) -> None:
    """进度's first silent groups per tier, from the tier's nodes (spread 0) or by the walk
    from the tier's first row (every tier dense), are the first unacknowledged rows in row
    order, with rows of other notices before, between and after them."""
    monkeypatch.setattr(notices, "DENSE_SPREAD", spread)
    for i in range(3):
        await chat.say(chain.subdistrict_group, chain.commander, f"通知 第{i}次 今晚消毒")
    await chat.say(chain.tenant_group, chain.landlord, "收到 #2")
    async with bot.session() as s:
        for notice_id in (1, 2, 3):
            notice = await s.get(Notice, notice_id)
            assert notice is not None
            got = await notices.progress(s, notice=notice)
            rows = (await s.execute(
                select(Node.tier, Group.title).select_from(OutboxMessage)
                .join(Group, Group.id == OutboxMessage.group_id)
                .join(Node, Node.id == Group.node_id)
                .where(OutboxMessage.notice_id == notice_id, OutboxMessage.acked_at.is_(None))
                .order_by(OutboxMessage.id))).tuples().all()
            assert {t.tier: t.missing for t in got.tiers if t.silent} == {
                tier: [title for t, title in rows if t == tier][:notices.MISSING_SHOWN]
                for tier in {t for t, _ in rows}}
            assert got.acked == (1 if notice_id == 2 else 0)
