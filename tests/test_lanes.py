"""Batches side by side on PostgreSQL: the pipeline's lanes (each room's messages in one lane,
in arrival order; the lanes at once) and the counters' shards (migration 0022_counter_shards)
that let two transactions at once write 进度's, 统计's and 积分's counters without waiting
for each other (bench/LANES.md, F2)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import store
from bot.app import BotApp, build_app
from bot.config import Settings
from bot.services import notice as notices
from bot.transports.memory import MemoryTransport
from models import Notice, TenantStay
from tests import test_progress_counters as progress_counters
from tests import test_subtree_figures as subtree_figures
from tests.conftest import (
    OLD_CHAIN,
    PG_URL,
    WORKER,
    Chat,
    DemoChain,
    _create_or_drop,
    _downgrade,
    _worker_url,
    count,
    until,
)
from tests.test_pipeline_deadlock import _rows as notice_rows

GUARD = 30.0
# How long the test lets a transaction wait before it calls that waiting (a counter row's
# lock is held until the other commits: forever, here).
NO_WAIT = 5.0

postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
# Two lanes (the default is 4): the tests below pick the demo chain's rooms by the lane that
# two lanes give them.
pytestmark = pytest.mark.lanes(2)


def test_lanes_are_a_pipeline_setting_for_postgresql_only(tmp_path: Path) -> None:
    assert Settings().pipeline.lanes == 0  # the default: 4 on PostgreSQL
    sqlite = build_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}",
                                transport="memory", pipeline={"lanes": 4}),
                       transport=MemoryTransport("sim"))
    assert sqlite.pipeline.lanes == 1  # one writer at a time
    for setting, lanes in ((0, 4), (1, 1), (3, 3)):
        app = build_app(Settings(database_url="postgresql://postgres@127.0.0.1/x",
                                 transport="memory", pipeline={"lanes": setting}),
                        transport=MemoryTransport("sim"))
        assert app.pipeline.lanes == lanes


@postgresql
async def test_a_rooms_messages_keep_one_lane_and_the_bots_own_the_first(
        bot: BotApp, transport: MemoryTransport) -> None:
    assert bot.pipeline.lanes == 2
    rooms = [f"room{k}@chatroom" for k in range(40)]
    lane = {room: bot.pipeline.lane_of(transport.message(room, "a", "收到")) for room in rooms}
    assert all(bot.pipeline.lane_of(transport.message(room, "b", "体温 36.5")) is lane[room]
               for room in rooms)
    assert len({id(q) for q in lane.values()}) == 2  # 40 rooms spread over both
    echoes = {id(bot.pipeline.lane_of(dataclasses.replace(
        transport.message(room, "sim-bot", "【通知#1】x"), is_self=True))) for room in rooms}
    assert echoes == {id(bot.pipeline._lanes[0])}


@postgresql
async def test_each_connection_of_a_process_writes_its_own_shard(bot: BotApp) -> None:
    async with bot.engine.connect() as one, bot.engine.connect() as two:
        shards = [(await c.execute(text(f"SHOW {store.SHARD_SETTING}"))).scalar_one()
                  for c in (one, two)]
    assert shards[0] != shards[1]
    assert all(0 <= int(s) < store.SHARDS for s in shards)


@postgresql
async def test_two_transactions_acknowledging_one_tier_at_once_do_not_wait(
        bot: BotApp, chat: Chat, chain: DemoChain) -> None:
    """Both acknowledgements move the (notice, tier 5) counts: before the shards the second
    waited for the first transaction's commit on that row (and two such batches crossing
    deadlocked)."""
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    rows = await notice_rows(bot, chain.tenant_group, chain.ying_group)
    ack = text("UPDATE outbox_message SET acked_at = now() WHERE id = :id")
    async with bot.engine.connect() as one, bot.engine.connect() as two:
        await one.execute(ack, {"id": rows[0]})
        await asyncio.wait_for(two.execute(ack, {"id": rows[1]}), NO_WAIT)
        await one.commit()
        await two.commit()
    await progress_counters.assert_exact(bot)
    async with bot.session() as s:
        notice = await s.get(Notice, 1)
        assert notice is not None
        [tier5] = [t for t in (await notices.progress(s, notice=notice)).tiers if t.tier == 5]
    assert (tier5.total, tier5.acked, tier5.silent) == (2, 2, 0)


def _said(transport: MemoryTransport, room: str, start: str, mark: int) -> list[str]:
    """What the bot sent to `room` since `mark`, starting with `start`."""
    return [m.text for m in transport.sent[mark:] if m.room_id == room and
            m.text.startswith(start)]


async def _held_while(bot: BotApp, room: str, meanwhile: Callable[[], Any]) -> Any:
    """Hold the batch of `room`'s messages after its handlers (its writes done, not yet
    committed) while `meanwhile()` runs; then let it go. What `meanwhile` returned."""
    held, go = asyncio.Event(), asyncio.Event()
    write = bot.pipeline.write_replies
    assert write is not None

    async def holding(session: Any, replies: Any) -> None:
        if any(message.room_id == room for message, _ in replies):
            held.set()
            await go.wait()
        await write(session, replies)

    bot.pipeline.write_replies = holding
    try:
        await asyncio.wait_for(held.wait(), GUARD)
        return await meanwhile()
    finally:
        go.set()
        await asyncio.wait_for(bot.idle(), GUARD)


@postgresql
async def test_a_batch_held_in_one_lane_does_not_hold_another_rooms_batch(
        bot: BotApp, chain: DemoChain, transport: MemoryTransport) -> None:
    """Two returns, the landlord's in his tenants' group and in the team's landlords' group
    (two lanes): the first batch is held after its writes (the subtree figures of the team,
    the community and the city among them); the second is handled and answered meanwhile."""
    lanes = [bot.pipeline.lane_of(transport.message(room, chain.landlord, "x"))
             for room in (chain.tenant_group, chain.landlords_group)]
    assert lanes[0] is not lanes[1]
    await transport.inject(transport.message(chain.tenant_group, chain.landlord,
                                             "租客返回 李四 13900001111 来自湖北武汉"))

    async def second() -> str:
        mark = len(transport.sent)
        await transport.inject(transport.message(chain.landlords_group, chain.landlord,
                                                 "房东上报 返回 赵丽 13900003333 来自安徽阜阳"))
        await until(lambda: bool(_said(transport, chain.landlords_group, "", mark)),
                    "the second return answered", NO_WAIT)
        return _said(transport, chain.landlords_group, "", mark)[0]

    reply = await _held_while(bot, chain.tenant_group, second)
    assert reply.startswith("已登记 赵")
    assert await count(bot, TenantStay) == 2
    await subtree_figures.assert_exact(bot)


def _hold_batches_of(bot: BotApp, room: str) -> tuple[asyncio.Event, asyncio.Event]:
    """From now on a batch with a message of `room` sets the first event (held) before it is
    handled, and waits for the second (go)."""
    held, go = asyncio.Event(), asyncio.Event()
    process = bot.pipeline.process

    async def holding(batch: Any, parsed: Any = None) -> None:
        if any(m.room_id == room for m in batch):
            held.set()
            await go.wait()
        await process(batch, parsed)

    bot.pipeline.process = holding  # type: ignore[method-assign]
    return held, go


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (TIERBOT_TEST_DATABASE_URL)")
async def test_the_migration_keeps_the_counts_and_gives_them_back_summed() -> None:
    """0021 → 0022 → 0021 on PostgreSQL: the rows become shard 0 and the triggers write the
    connection's shard; going back sums each key's shards into one row."""
    base = _worker_url(PG_URL, WORKER) if WORKER else PG_URL
    url = _worker_url(base, "shards")
    from sqlalchemy.engine import make_url
    name = make_url(url).database
    assert name is not None
    await asyncio.to_thread(_create_or_drop, PG_URL, name, create=True)
    engine = store.create_engine(url)
    t = {"t": datetime(2020, 2, 1, 8)}
    try:
        await store.upgrade(engine, "0021_figure_locks")
        async with engine.begin() as conn:
            for stmt in (
                OLD_CHAIN,
                "INSERT INTO person (id, name, created_at) VALUES (1, 'x', :t), (2, 'y', :t)",
                "INSERT INTO membership (person_id, node_id, role, created_at) VALUES "
                "(1, 2, 'landlord', :t)"):
                await conn.execute(text(stmt), t)
        await store.upgrade(engine)
        async with engine.begin() as conn:
            before = (await conn.execute(text(
                "SELECT node_id, key, shard, value FROM subtree_figure ORDER BY 1, 2"))).all()
            assert {(r.node_id, r.key, r.shard, r.value) for r in before} >= {
                (1, "landlords", 0, 1), (2, "landlords", 0, 1)}
            mine = int((await conn.execute(text(f"SHOW {store.SHARD_SETTING}"))).scalar_one())
            await conn.execute(text("INSERT INTO membership (person_id, node_id, role, "
                                    "created_at) VALUES (2, 2, 'landlord', :t)"), t)
            rows = (await conn.execute(text(
                "SELECT shard, value FROM subtree_figure WHERE node_id = 1 "
                "AND key = 'landlords' ORDER BY shard"))).all()
        assert sum(r.value for r in rows) == 2
        assert {r.shard: r.value for r in rows} == ({0: 1, mine: 1} if mine else {0: 2})
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0021_figure_locks")
        async with engine.begin() as conn:
            assert (await conn.execute(text(
                "SELECT value FROM subtree_figure WHERE node_id = 1 AND key = 'landlords'"))
            ).scalars().all() == [2]
            # The old key and functions are back: a third landlord is counted.
            await conn.execute(text("INSERT INTO person (id, name, created_at) "
                                    "VALUES (3, 'z', :t)"), t)
            await conn.execute(text("INSERT INTO membership (person_id, node_id, role, "
                                    "created_at) VALUES (3, 2, 'landlord', :t)"), t)
            assert (await conn.execute(text(
                "SELECT value FROM subtree_figure WHERE node_id = 1 AND key = 'landlords'"))
            ).scalars().all() == [3]
    finally:
        await engine.dispose()
        await asyncio.to_thread(_create_or_drop, PG_URL, name, create=False)


@postgresql
async def test_a_question_waits_for_what_arrived_before_it_in_another_lane(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport) -> None:
    """进度 in the community's group (one lane) right after a 收到 in a tenants' group (the
    other): it is answered only once the 收到 is handled, and counts it."""
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    assert bot.pipeline.lane_of(transport.message(chain.tenant_group, chain.landlord, "x")) \
        is not bot.pipeline.lane_of(transport.message(chain.community_group, "x", "x"))
    held, go = _hold_batches_of(bot, chain.tenant_group)
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.tenant_group, chain.landlord, "收到"))
    await asyncio.wait_for(held.wait(), GUARD)
    await transport.inject(transport.message(chain.community_group,
                                             chain.community_commander, "进度"))
    await asyncio.sleep(0.5)
    assert _said(transport, chain.community_group, "【通知#1】进度", mark) == []
    go.set()
    await asyncio.wait_for(bot.idle(), GUARD)
    [progress] = _said(transport, chain.community_group, "【通知#1】进度", mark)
    assert progress.startswith("【通知#1】进度：送达 2/2，确认 1/2")


@postgresql
async def test_questions_in_both_lanes_after_each_others_messages_are_all_answered(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport) -> None:
    """Each lane holds a question that must wait for the other lane's earlier 收到: the
    earlier question goes first, so neither waits for the other forever."""
    await chat.say(chain.subdistrict_group, chain.commander, "通知 请配合测温")
    await asyncio.wait_for(chat.say_together([
        (chain.tenant_group, chain.landlord, "收到"),                    # lane of dong
        (chain.community_group, chain.community_commander, "收到"),      # the other lane
        (chain.tenant_group, chain.landlord, "我的租客"),                 # waits for 2
        (chain.subdistrict_group, chain.commander, "进度"),               # waits for 1, 3
        (chain.ying_group, chain.ying_tenant, "收到")]), GUARD)
    assert chat.replies(chain.tenant_group)
    [progress] = [r for r in chat.replies(chain.subdistrict_group)
                  if r.startswith("【通知#1】进度")]
    assert "确认 2/" in progress.splitlines()[0]


@postgresql
async def test_a_lane_ends_its_batch_where_a_waiting_question_needs_it_to(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport) -> None:
    """While 进度 (one lane) waits for the other lane's earlier messages, that lane's next
    batch stops at the last of them, so the question does not wait for the later ones too."""
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    held, go = asyncio.Event(), asyncio.Event()
    batches: list[list[str]] = []
    process = bot.pipeline.process

    async def recording(batch: Any, parsed: Any = None) -> None:
        batches.append([m.message_id for m in batch])
        if any(m.message_id == "first" for m in batch):
            held.set()
            await go.wait()
        await process(batch, parsed)

    bot.pipeline.process = recording  # type: ignore[method-assign]

    def say(room: str, contact: str, words: str, message_id: str) -> Any:
        return transport.inject(transport.message(room, contact, words, message_id=message_id))

    await say(chain.tenant_group, chain.landlord, "收到", "first")
    await asyncio.wait_for(held.wait(), GUARD)
    await say(chain.ying_group, chain.ying_tenant, "好的", "before-1")
    await say(chain.tenant_group, chain.landlord, "收到", "before-2")
    await say(chain.community_group, chain.community_commander, "进度", "question")
    await say(chain.ying_group, chain.ying_tenant, "收到", "after-1")
    await say(chain.tenant_group, chain.landlord, "好的", "after-2")
    for _ in range(20):  # the question's lane takes it and starts waiting
        await asyncio.sleep(0)
    go.set()
    await asyncio.wait_for(bot.idle(), GUARD)
    mine = [[i for i in b if not i.startswith("sim-")] for b in batches[1:]]
    assert mine[0] == ["before-1", "before-2"]  # not the later two as well
    assert sorted(b for b in mine[1:] if b) == [["after-1", "after-2"], ["question"]]


@postgresql
async def test_a_waiting_question_holds_back_only_its_own_room(
        bot: BotApp, chat: Chat, chain: DemoChain, transport: MemoryTransport) -> None:
    """进度 in the community's group waits for an earlier 收到 in the other lane. Its lane goes
    on with another room's return meanwhile; the community group's next message (帮助) waits
    behind the question, and is answered after it."""
    await chat.say(chain.community_group, chain.community_commander, "通知 租客群 请配合测温")
    lane = bot.pipeline.lane_of(transport.message(chain.community_group, "x", "x"))
    assert bot.pipeline.lane_of(transport.message(chain.landlords_group, "x", "x")) is lane
    assert bot.pipeline.lane_of(transport.message(chain.tenant_group, "x", "x")) is not lane
    held, go = _hold_batches_of(bot, chain.tenant_group)
    mark = len(transport.sent)
    await transport.inject(transport.message(chain.tenant_group, chain.landlord, "收到"))
    await asyncio.wait_for(held.wait(), GUARD)
    for room, contact, words in (
            (chain.community_group, chain.community_commander, "进度"),
            (chain.community_group, chain.community_commander, "帮助"),
            (chain.landlords_group, chain.landlord, "房东上报 返回 赵丽 13900003333 来自安徽阜阳")):
        await transport.inject(transport.message(room, contact, words))
    await until(lambda: bool(_said(transport, chain.landlords_group, "", mark)),
                "the return after the question answered", NO_WAIT)
    await asyncio.sleep(0.2)
    assert _said(transport, chain.community_group, "", mark) == []
    go.set()
    await asyncio.wait_for(bot.idle(), GUARD)
    assert _said(transport, chain.landlords_group, "", mark)[0].startswith("已登记 赵")
    said = _said(transport, chain.community_group, "", mark)
    assert said[0].startswith("【通知#1】进度：送达 2/2，确认 1/2")
    assert len(said) == 2  # 帮助's answer, after
