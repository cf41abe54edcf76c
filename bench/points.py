#!/usr/bin/env python
"""The 12-point system at scale: close a week for 100,000 landlords with a year of events.

    .venv/bin/python bench/points.py [--landlords 100000] [--events-per-landlord 20]
                                     [--db PATH | --db-url postgresql://...] [--weeks 3]

The chain (1 subdistrict, 20 communities, 200 teams, 100,000 landlords' nodes) and a year of
events are generated set-based in the database (INSERT ... SELECT over a number series), in a
child process, so this process's peak RSS is that of the close alone. Then the weekly close
(`points.close_week` + `points.post_lists`, exactly what the Monday job runs, in one
transaction) runs for the last `--weeks` weeks, and the live 积分 query (one landlord's rank)
once. With --db-url the database must be empty or made for this bench: its public schema is
dropped and recreated. Figures are printed, never asserted (the goals: < 2 s per close at
100,000 landlords, < 15 s at 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bulk  # bench/bulk.py: the set-based loading the benchmarks share
from sqlalchemy import func, select, text

from bot import store
from bot.config import PointsSettings
from bot.services import points
from models import Node, NodeKind, PointsEvent, PointsStanding

ZONE = ZoneInfo("Asia/Shanghai")
# The year ends on Monday 2 March 2020 09:00, when the week 2020-W09's predecessor closes.
CLOSE_AT = datetime(2020, 3, 2, 9, 0, tzinfo=ZONE)
YEAR_START = "2019-03-04"
COMMUNITIES, TEAMS = 20, 200


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def populate(url: str, landlords: int, per_landlord: int, spread: bool = False) -> None:
    """Build the chain and a year of events with set-based SQL. `spread`: registrations at
    different times, so the tie-break among equal scores is not the landlord's id."""
    pg = url.startswith("postgresql")
    engine = await bulk.fresh_engine(url)
    started = time.perf_counter()
    created = "'2019-01-01 00:00:00.000000'" if not pg else "TIMESTAMP '2019-01-01'"
    async with engine.begin() as conn:
        # A bulk load: the triggers that keep points_total are off while it runs.
        triggers = await bulk.triggers_off(conn, pg)
        async def node(name: str, kind: NodeKind, tier: int, parent: int | None) -> int:
            return (await conn.execute(text(
                "INSERT INTO node (tier, kind, name, parent_id, created_at) VALUES "
                f"(:tier, :kind, :name, :parent, {created}) RETURNING id"),
                {"tier": tier, "kind": str(kind), "name": name, "parent": parent})).scalar_one()

        root = await node("福田街道", NodeKind.SUBDISTRICT, 1, None)
        communities = [await node(f"社区{c}", NodeKind.COMMUNITY, 2, root)
                       for c in range(COMMUNITIES)]
        teams = [await node(f"小组{t}", NodeKind.TEAM, 3, communities[t % COMMUNITIES])
                 for t in range(TEAMS)]
        fours = [await node(f"房东群{t}", NodeKind.TEAM_LANDLORDS, 4, team)
                 for t, team in enumerate(teams)]
        first4 = fours[0]
        assert fours == list(range(first4, first4 + len(fours)))
        # Every tier-1..4 node has a bound group (the lists are queued for them).
        await conn.execute(text(
            "INSERT INTO chat_group (node_id, transport, room_id, title, account, created_at) "
            f"SELECT id, 'sim', 'room' || id, name, '', {created} FROM node"))
        n5 = (await conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM node"))).scalar_one()
        await conn.execute(text(
            "INSERT INTO node (id, tier, kind, name, parent_id, created_at) "
            f"SELECT {n5} + x, 5, 'landlord_tenants', '出租房' || x, {first4} + (x % {TEAMS}), "
            f"{created} FROM {bulk.series(pg, landlords)}"))
        await conn.execute(text(
            "INSERT INTO person (id, name, created_at) "
            f"SELECT x, '房东' || x, {created} FROM {bulk.series(pg, landlords)}"))
        registered = created
        if spread:
            # One of 300 days, a second of the day: landlord ids in no relation to the order.
            registered = bulk.timestamp(pg, "2019-01-01", "((CAST(x AS BIGINT) * 7919) % 300)",
                                        "((CAST(x AS BIGINT) * 104729) % 86400)")
        await conn.execute(text(
            "INSERT INTO membership (person_id, node_id, role, created_at) "
            f"SELECT x, {n5} + x, 'landlord', {registered} FROM {bulk.series(pg, landlords)}"))
        total = landlords * per_landlord
        # Conduct by pattern: 60% +1, 20% -1, 10% -2, 10% -3; 85% decided and counted.
        delta = "CASE WHEN x % 10 < 6 THEN 1 WHEN x % 10 < 8 THEN -1 WHEN x % 10 < 9 THEN -2 " \
                "ELSE -3 END"
        counted = "(x % 20) < 17"
        true, false = ("TRUE", "FALSE") if pg else ("1", "0")
        # Spread over the year (x-th event on day 363 * x / total).
        day = f"(CAST(x AS BIGINT) * 363) / {total}"
        occurred = bulk.timestamp(pg, YEAR_START, day, "((x % 10007) * 7919) % 86400")
        decided = bulk.timestamp(pg, YEAR_START, f"{day} + 1", "((x % 10007) * 7919) % 86400")
        await conn.execute(text(
            "INSERT INTO points_event (landlord_id, node_id, rule, delta, status, counts, "
            "source_kind, source_key, evidence, decided_at, occurred_at, created_at) "
            f"SELECT 1 + (x % {landlords}), {n5} + 1 + (x % {landlords}), 'manual', {delta}, "
            f"CASE WHEN {counted} THEN 'approved' ELSE 'pending' END, "
            f"CASE WHEN {counted} THEN {true} ELSE {false} END, 'bench', "
            "CAST(x AS TEXT), '', "
            f"CASE WHEN {counted} THEN {decided} ELSE NULL END, {occurred}, {occurred} "
            f"FROM {bulk.series(pg, total)}"))
        await bulk.triggers_on(conn, triggers)
        if pg:
            await bulk.reset_sequences(conn, ("node", "person"))
    # The counts of 积分's rank are index-only scans once the visibility map is set.
    await bulk.analyze(engine)
    await engine.dispose()
    print(f"populated {landlords:,} landlords, {total:,} events in "
          f"{time.perf_counter() - started:.1f} s", flush=True)


async def measure(url: str, weeks: int) -> None:
    """Close the last `weeks` weeks, one transaction each, and time the live rank query."""
    engine = store.create_engine(url)
    sessions = store.sessionmaker(engine)
    settings = PointsSettings()
    async with sessions() as s, s.begin():
        # Earlier runs' closes (--reuse): the weeks are closed again from scratch.
        for table in ("points_standing", "points_week", "outbox_message"):
            await s.execute(text(f"DELETE FROM {table}"))
    async with sessions() as s:
        landlords = (await s.execute(select(func.count()).select_from(Node).where(
            Node.tier == 5))).scalar_one()
        events = (await s.execute(select(func.count(PointsEvent.id)))).scalar_one()
    print(f"database: {engine.dialect.name}, {landlords:,} landlords, {events:,} events; "
          f"RSS before closing: {_rss_mb():.0f} MB", flush=True)
    for back in range(weeks - 1, -1, -1):
        now = CLOSE_AT - timedelta(days=7 * back)
        async with sessions() as s, s.begin():
            pid = await bulk.server_pid(s)
            server_before = bulk.server_cpu(pid)
            started, cpu_started = time.perf_counter(), time.process_time()
            closed = await points.close_week(s, now=now, zone=ZONE, settings=settings)
            posted = await points.post_lists(s, weeks=closed, now=now, zone=ZONE)
            await s.commit()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            server_after = bulk.server_cpu(pid)
        server = (f", PostgreSQL backend {server_after - server_before:.2f} s"
                  if server_before is not None and server_after is not None else "")
        async with sessions() as s:
            rows = (await s.execute(select(func.count(PointsStanding.id)).where(
                PointsStanding.week_id.in_([w.id for w in closed])))).scalar_one()
        print(f"close {points.last_week(now, ZONE)}: {elapsed:.2f} s (CPU: this process "
              f"{cpu:.2f} s{server}; {rows:,} standings, "
              f"{posted} list messages queued); peak RSS so far {_rss_mb():.0f} MB", flush=True)
    started = time.perf_counter()
    async with sessions() as s:
        mine = await points.standing(s, landlord_id=1, now=CLOSE_AT, zone=ZONE,
                                     settings=settings)
    print(f"live 积分 for one landlord (score {mine.score}, rank {mine.rank}/{mine.total}): "
          f"{time.perf_counter() - started:.2f} s; peak RSS {_rss_mb():.0f} MB", flush=True)
    await engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landlords", type=int, default=100_000)
    p.add_argument("--events-per-landlord", type=int, default=20)
    p.add_argument("--weeks", type=int, default=3, help="weeks to close (newest last)")
    p.add_argument("--spread-registrations", action="store_true",
                   help="landlords registered at different times (default: all at once, so "
                        "equal scores rank by landlord id)")
    bulk.add_store_args(p)
    args = p.parse_args()
    with bulk.store_url(args, "points.db") as url:
        if args.populate_only:
            asyncio.run(populate(url, args.landlords, args.events_per_landlord,
                                 args.spread_registrations))
            return
        if not args.reuse:
            bulk.populate_in_child(__file__, args, url, "--landlords", str(args.landlords),
                                   "--events-per-landlord", str(args.events_per_landlord),
                                   *(["--spread-registrations"] if args.spread_registrations
                                     else []))
        asyncio.run(measure(url, args.weeks))

if __name__ == "__main__":
    main()
