#!/usr/bin/env python
"""Reads that users wait for, at city scale: 积分, 我的租客, 待核查, 进度 and 统计 through the bot.

    .venv/bin/python bench/reads.py [--landlords 100000] [--events 1000000] [--repeat 15]
                                    [--db PATH | --db-url postgresql://...] [--reuse]

The data is built set-based (INSERT ... SELECT over a number series) in a child process: one
subdistrict, 20 communities (a secretary each), 200 teams with their landlords' groups, one
tier-5 node and group per landlord, one returned tenant per landlord with two temperature
readings, `--events` points events over a year (2% still pending verification), and one notice
of the subdistrict's commander delivered to every group (60% acknowledged). Then the real bot
(`build_app` with the in-memory transport, a fake clock, pacing off) answers each command
`--repeat` times, from different senders, and the time from the message's arrival until the
reply was handed to the transport is printed per command (p50 and max), with the process CPU
time until the bot was idle again (the sender's bookkeeping after the send included, median)
and on a local PostgreSQL the CPU of the database's backends (mean, from /proc). With
--db-url the database's public schema is dropped and recreated. Figures are printed, never
asserted (the goal is < 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bulk  # bench/bulk.py: the set-based loading the benchmarks share
from sqlalchemy import text

from bot import store
from bot.app import build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.services import notice
from bot.transports.base import SentMessage
from bot.transports.memory import MemoryTransport

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2020, 3, 4, 10, 0, tzinfo=ZONE)  # a Wednesday at the end of the year of data
YEAR_START = "2019-03-06"
COMMUNITIES, TEAMS = 20, 200


async def populate(url: str, landlords: int, events: int) -> None:
    """The chain, people, tenants, a year of points events and a notice to every group."""
    pg = url.startswith("postgresql")
    engine = await bulk.fresh_engine(url)
    started = time.perf_counter()
    created = "TIMESTAMP '2019-01-01'" if pg else "'2019-01-01 00:00:00.000000'"
    true, false = ("TRUE", "FALSE") if pg else ("1", "0")
    n = landlords
    async with engine.begin() as conn:
        # A bulk load: the triggers that keep points_total are off while it runs.
        triggers = await bulk.triggers_off(conn, pg)
        async def run(sql: str, **params: object) -> None:
            await conn.execute(text(sql), params)

        async def node(name: str, kind: str, tier: int, parent: int | None) -> int:
            return (await conn.execute(text(
                "INSERT INTO node (tier, kind, name, parent_id, created_at) VALUES "
                f"(:tier, :kind, :name, :parent, {created}) RETURNING id"),
                {"tier": tier, "kind": kind, "name": name, "parent": parent})).scalar_one()

        root = await node("福田街道", "subdistrict", 1, None)
        communities = [await node(f"社区{c}", "community", 2, root) for c in range(COMMUNITIES)]
        teams = [await node(f"小组{t}", "team", 3, communities[t % COMMUNITIES])
                 for t in range(TEAMS)]
        fours = [await node(f"房东群{t}", "team_landlords", 4, team)
                 for t, team in enumerate(teams)]
        first4 = fours[0]
        n5 = (await conn.execute(text("SELECT MAX(id) FROM node"))).scalar_one()
        await run("INSERT INTO node (id, tier, kind, name, parent_id, created_at) "
                  f"SELECT {n5} + x, 5, 'landlord_tenants', '出租房' || x, "
                  f"{first4} + (x % {TEAMS}), {created} FROM {bulk.series(pg, n)}")
        await run("INSERT INTO chat_group (node_id, transport, room_id, title, account, "
                  f"created_at) SELECT id, 'sim', 'room' || id, name, '', {created} FROM node")
        # People: landlords 1..n, the commander n+1, secretaries n+2.., tenants 2n+100+x.
        await run("INSERT INTO person (id, name, created_at) "
                  f"SELECT x, '房东' || x, {created} FROM {bulk.series(pg, n)}")
        await run("INSERT INTO person (id, name, created_at) "
                  f"SELECT {n} + x, '干部' || x, {created} FROM {bulk.series(pg, 1 + COMMUNITIES)}")
        await run("INSERT INTO person (id, name, created_at) "
                  f"SELECT {2 * n + 100} + x, '租客' || x, {created} FROM {bulk.series(pg, n)}")
        await run("INSERT INTO contact (person_id, transport, contact_id, created_at) "
                  f"SELECT x, 'sim', 'sim-ll-' || x, {created} FROM {bulk.series(pg, n)}")
        await run("INSERT INTO contact (person_id, transport, contact_id, created_at) "
                  f"SELECT {n} + x, 'sim', 'sim-cadre-' || x, {created} "
                  f"FROM {bulk.series(pg, 1 + COMMUNITIES)}")
        await run("INSERT INTO membership (person_id, node_id, role, created_at) "
                  f"SELECT x, {n5} + x, 'landlord', {created} FROM {bulk.series(pg, n)}")
        await run("INSERT INTO membership (person_id, node_id, role, created_at) "
                  f"VALUES ({n + 1}, {root}, 'commander', {created})")
        await run("INSERT INTO membership (person_id, node_id, role, created_at) "
                  f"SELECT {n + 1} + x, {communities[0]} - 1 + x, 'secretary', {created} "
                  f"FROM {bulk.series(pg, COMMUNITIES)}")
        # One returned tenant per landlord, two readings each; the last tenth still watched.
        arrived = bulk.timestamp(pg, YEAR_START, f"(x * 360) / {n}", "3600")
        watch = bulk.timestamp(pg, YEAR_START, f"(x * 360) / {n} + 14", "3600")
        await run("INSERT INTO tenant_stay (id, tenant_id, landlord_id, node_id, origin, "
                  "arrived_at, watch_until, landlord_reported_at, fever, created_at) "
                  f"SELECT x, {2 * n + 100} + x, x, {n5} + x, '湖南长沙', {arrived}, {watch}, "
                  f"{arrived}, {false}, {arrived} FROM {bulk.series(pg, n)}")
        for k in range(2):
            await run("INSERT INTO temperature_reading (stay_id, value, taken_at, by_id) "
                      f"SELECT x, 36.5 + {k} * 0.1, {bulk.timestamp(pg, YEAR_START, f'(x * 360) / {n} + {k}', '7200')}, "
                      f"x FROM {bulk.series(pg, n)}")
        # A year of points events: 60% +1, 20% -1, 10% -2, 10% -3; 2% pending verification.
        delta = ("CASE WHEN x % 10 < 6 THEN 1 WHEN x % 10 < 8 THEN -1 WHEN x % 10 < 9 THEN -2 "
                 "ELSE -3 END")
        counted = "(x % 47) <> 0"
        day = f"(CAST(x AS BIGINT) * 363) / {events}"  # spread over the year
        occurred = bulk.timestamp(pg, YEAR_START, day, "((x % 10007) * 7919) % 86400")
        decided = bulk.timestamp(pg, YEAR_START, f"{day} + 1", "((x % 10007) * 7919) % 86400")
        await run(
            "INSERT INTO points_event (landlord_id, node_id, scope2_id, rule, delta, status, "
            "counts, source_kind, source_key, evidence, decided_at, occurred_at, created_at) "
            f"SELECT 1 + (x % {n}), n5.id, n3.parent_id, 'manual', {delta}, "
            f"CASE WHEN {counted} THEN 'approved' ELSE 'pending' END, "
            f"CASE WHEN {counted} THEN {true} ELSE {false} END, 'bench', CAST(x AS TEXT), "
            f"'上报 消毒', CASE WHEN {counted} THEN {decided} ELSE NULL END, {occurred}, "
            f"{occurred} FROM {bulk.series(pg, events)} "
            # The event's community, as the trigger (held off here) sets it.
            f"JOIN node n5 ON n5.id = {n5} + 1 + (x % {n}) JOIN node n4 ON n4.id = n5.parent_id "
            "JOIN node n3 ON n3.id = n4.parent_id")
        # One notice of the commander to every group, 60% acknowledged.
        sent_at = bulk.timestamp(pg, YEAR_START, "360", "0")
        await run("INSERT INTO notice (id, sender_id, origin_node_id, text, urgent, scope, "
                  "target_count, missed, created_at) "
                  f"VALUES (1, {n + 1}, {root}, '今晚8点前完成楼道消毒', {false}, '{{}}', "
                  f"(SELECT COUNT(*) FROM chat_group), {false}, {sent_at})")
        await run("INSERT INTO outbox_message (group_id, notice_id, account, urgent, mentions, "
                  "source, status, attempts, resend, relayed, created_at, sent_at, acked_at) "
                  f"SELECT id, 1, '', {false}, '[]', 'notice', 'sent', 1, {false}, {false}, "
                  f"{sent_at}, {sent_at}, CASE WHEN id % 5 < 3 THEN {sent_at} ELSE NULL END "
                  "FROM chat_group")
        await bulk.triggers_on(conn, triggers)
        # 进度's counters, as the outbox triggers (held off here) keep them.
        await run(notice.REBUILD_PROGRESS)
        if pg:
            await bulk.reset_sequences(conn, ("node", "person", "tenant_stay", "notice"))
    await bulk.analyze(engine)
    await engine.dispose()
    print(f"populated {landlords:,} landlords, {events:,} points events, {landlords:,} tenants, "
          f"a notice to {landlords + 421:,} groups in {time.perf_counter() - started:.1f} s",
          flush=True)


class TimedTransport(MemoryTransport):
    """The in-memory transport noting when each message was handed to it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sent_at: dict[str, float] = {}

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        at = time.perf_counter()
        result = await super().send(room_id, text, mentions=mentions, account=account)
        self.sent_at[result.message_id] = at
        return result


async def measure(url: str, landlords: int, repeat: int, seed: int) -> None:
    """Each command `repeat` times through the running bot; p50 and max per command."""
    rng = random.Random(seed)
    n = landlords
    engine = store.create_engine(url)
    async with engine.connect() as conn:
        n5 = (await conn.execute(text("SELECT MIN(id) - 1 FROM node WHERE tier = 5"))
              ).scalar_one()
        community0 = (await conn.execute(text("SELECT MIN(id) FROM node WHERE tier = 2"))
                      ).scalar_one()
        root = (await conn.execute(text("SELECT MIN(id) FROM node WHERE tier = 1"))).scalar_one()
    await engine.dispose()
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        # No gap, and caps out of the way (a --reuse run adds to the sends the
                        # earlier runs made in the same fake hour; the commander asks dozens
                        # of times within the fake minute).
                        pacing={"min_gap_seconds": 0, "jitter_seconds": 0,
                                "hourly_cap": 1_000_000, "daily_cap": 1_000_000,
                                "commands_per_minute": 1_000_000})
    transport = TimedTransport("sim", bot_id="sim-bot")
    clock = FakeClock(NOW)
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock)
    picks = rng.sample(range(1, n + 1), repeat)
    commands = {
        # A control: a reply that reads nothing but the sender (the pipeline's own cost).
        "帮助": [(f"room{n5 + x}", f"sim-ll-{x}", "帮助") for x in picks],
        "积分": [(f"room{n5 + x}", f"sim-ll-{x}", "积分") for x in picks],
        "我的租客": [(f"room{n5 + x}", f"sim-ll-{x}", "我的租客") for x in picks],
        "待核查": [(f"room{community0 + c % COMMUNITIES}", f"sim-cadre-{2 + c % COMMUNITIES}",
                  "待核查") for c in range(repeat)],
        "进度": [(f"room{root}", "sim-cadre-1", "进度 1") for _ in range(repeat)],
        # The commander's whole city, and a community's secretary's own.
        "统计": [(f"room{root}", "sim-cadre-1", "统计") for _ in range(repeat)],
        "统计 社区": [(f"room{community0 + c % COMMUNITIES}", f"sim-cadre-{2 + c % COMMUNITIES}",
                    "统计") for c in range(repeat)],
    }
    print(f"database: {engine.dialect.name}; {repeat} runs per command", flush=True)
    print(f"{'command':<8} {'p50 ms':>8} {'max ms':>8} {'CPU ms':>8} {'DB CPU':>8}  first reply",
          flush=True)
    run = uuid.uuid4().hex[:8]  # fresh message ids: a --reuse run is not deduplicated away
    monitor = await engine.connect()  # PostgreSQL: the backends' CPU, read from /proc
    async with running(app):
        for name, lines in commands.items():
            times, cpu, db_cpu = [], [], []
            first = ""
            for k, (room, contact, line) in enumerate(lines):
                mark = len(transport.sent)
                message = transport.message(room, contact, line,
                                            message_id=f"bench-{run}-{name}-{k}")
                db_started = await bulk.database_cpu(monitor)
                started, cpu_started = time.perf_counter(), time.process_time()
                await transport.inject(message)
                await app.idle()
                cpu.append((time.process_time() - cpu_started) * 1000)
                db_done = await bulk.database_cpu(monitor)
                if db_started is not None and db_done is not None:
                    db_cpu.append((db_done - db_started) * 1000)
                sent = [s for s in transport.sent[mark:] if s.room_id == room]
                if sent:
                    times.append((transport.sent_at[sent[0].message_id] - started) * 1000)
                first = first or (sent[0].text if sent else "(no reply)")
            shown = first.replace("\n", " / ")[:60]
            p50, top = (statistics.median(times), max(times)) if times else (-1.0, -1.0)
            # /proc counts in clock ticks (10 ms): the mean over the runs, not a median.
            db = f"{statistics.mean(db_cpu):>8.1f}" if db_cpu else f"{'-':>8}"
            print(f"{name:<8} {p50:>8.1f} {top:>8.1f} {statistics.median(cpu):>8.1f} {db}  "
                  f"{shown}", flush=True)
        await beside_the_city(app, transport, rooms=[(f"room{n5 + x}", f"sim-ll-{x}")
                                                     for x in picks],
                              city=(f"room{root}", "sim-cadre-1"), run=run)
    await monitor.close()
    await engine.dispose()


async def beside_the_city(app: Any, transport: TimedTransport, *,
                          rooms: list[tuple[str, str]], city: tuple[str, str], run: str
                          ) -> None:
    """Other chats while the city's 统计 is read: the commander asks, a landlord's 帮助
    arrives right behind it (the same batch), and a 1 ms ticker notes the event loop's
    longest stall until both are answered. 统计 is answered Later, in a read session of its
    own (on SQLite off the loop), so 帮助 should come back in a control's time."""
    beside, stalls, city_ms = [], [], []
    for k, (room, contact) in enumerate(rooms):
        lag = bulk.LoopLag()
        lag.start()
        await asyncio.sleep(0.002)
        mark = len(transport.sent)
        started = time.perf_counter()
        await transport.inject(transport.message(*city, "统计",
                                                 message_id=f"bench-{run}-city-{k}"))
        await transport.inject(transport.message(room, contact, "帮助",
                                                 message_id=f"bench-{run}-beside-{k}"))
        await app.idle()
        await lag.stop()
        for sent in transport.sent[mark:]:
            took = (transport.sent_at[sent.message_id] - started) * 1000
            if sent.room_id == room:
                beside.append(took)
            elif sent.room_id == city[0]:
                city_ms.append(took)
        stalls.append(max(lag.samples, default=0.0))
    print(f"统计 (city) with a landlord's 帮助 right behind it, {len(rooms)} times: 帮助 answered "
          f"p50 {statistics.median(beside):.1f} / max {max(beside):.1f} ms; 统计 p50 "
          f"{statistics.median(city_ms):.1f} ms; event loop's longest stall p50 "
          f"{statistics.median(stalls):.1f} / max {max(stalls):.1f} ms", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landlords", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    bulk.add_store_args(p)
    args = p.parse_args()
    # One throwaway key for this run, in the environment so the populating child shares it.
    bulk.throwaway_keys()
    with bulk.store_url(args, "reads.db") as url:
        if args.populate_only:
            asyncio.run(populate(url, args.landlords, args.events))
            return
        if not args.reuse:
            bulk.populate_in_child(__file__, args, url, "--landlords", str(args.landlords),
                                   "--events", str(args.events))
        asyncio.run(measure(url, args.landlords, args.repeat, args.seed))

if __name__ == "__main__":
    main()
