#!/usr/bin/env python
"""Fan-out benchmark: one notice to 10,000 groups, the sender's own cost, and a paced broadcast
over 4 accounts against the ideal the pacing allows.

    .venv/bin/python bench/fanout.py [--groups 10000] [--db PATH] [--db-url URL]

Prints figures and never asserts them; see bench/README.md ("bench/fanout.py") for what each
figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text

from bot import sender as sender_module
from bot.app import BotApp, build_app
from bot.config import Settings
from bot.services import chain as chains
from bot.services import notice as notices
from bot.transports.memory import MemoryTransport
from models import Group, Node, NodeKind, OutboxMessage, OutboxStatus

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk  # noqa: E402 - bench/bulk.py: the throwaway keys
from inbound import fresh_store  # noqa: E402 - the benchmarks share their set-up

TRANSPORT = "memory"
LEAVES_PER_TEAM = 1000
NO_CAPS = {"hourly_cap": 10_000_000, "daily_cap": 10_000_000}


def rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu() -> float:
    return time.process_time()




async def build_chain(app: BotApp, groups: int, accounts: int) -> Node:
    """A tier-1 root with a group; one community; teams of up to 1,000 tier-5 groups each
    (under a tier-4 node per team). Group i is sent by account i % accounts ("" for one)."""
    now = app.now()
    async with app.session() as s, s.begin():
        root = await chains.create_node(s, name="福田街道", kind=NodeKind.SUBDISTRICT,
                                        parent=None, now=now)
        await chains.bind_group(s, node=root, transport=TRANSPORT, room_id="root@chatroom",
                                title="福田街道群", now=now)
        community = await chains.create_node(s, name="长春社区", kind=NodeKind.COMMUNITY,
                                             parent=root, now=now)
        made = 0
        team_no = 0
        while made < groups:
            team_no += 1
            team = await chains.create_node(s, name=f"第{team_no}作战小组",
                                            kind=NodeKind.TEAM, parent=community, now=now)
            landlords = await chains.create_node(s, name=f"第{team_no}小组房东",
                                                 kind=NodeKind.TEAM_LANDLORDS, parent=team,
                                                 now=now)
            count = min(LEAVES_PER_TEAM, groups - made)
            # Core bulk inserts: building 10,000 nodes one flush at a time is not what we time.
            await s.execute(insert(Node.__table__), [
                {"tier": 5, "kind": NodeKind.LANDLORD_TENANTS, "name": f"房东{made + i}",
                 "parent_id": landlords.id, "created_at": now} for i in range(count)])
            ids = (await s.execute(select(Node.id).where(Node.parent_id == landlords.id)
                                   .order_by(Node.id))).scalars().all()
            await s.execute(insert(Group.__table__), [
                {"node_id": node_id, "transport": TRANSPORT,
                 "room_id": f"ll{made + i:05d}@chatroom", "title": f"房东{made + i}租客群",
                 "account": f"acc{(made + i) % accounts}" if accounts > 1 else "",
                 "created_at": now} for i, node_id in enumerate(ids)])
            made += count
    return root


async def create_notice(app: BotApp, root: Node, body: str) -> tuple[int, float, float]:
    """notices.create in its own transaction: (rows, wall ms including commit, CPU ms)."""
    async with app.session() as s:
        group = await chains.group_by_room(s, transport=TRANSPORT, room_id="root@chatroom")
        assert group is not None
    c0, t0 = cpu(), time.perf_counter()
    async with app.session() as s, s.begin():
        _notice, rows = await notices.create(
            s, origin=root, origin_group_id=group.id, sender_id=None, text=body,
            urgent=False, scope=notices.Scope(), now=app.now())
    return rows, (time.perf_counter() - t0) * 1000, (cpu() - c0) * 1000


async def time_targets(app: BotApp, root: Node) -> float:
    """How long finding the targets alone takes (part of the outbox write), in ms."""
    t0 = time.perf_counter()
    async with app.session() as s:
        await notices.targets(s, origin=root, scope=notices.Scope())
    return (time.perf_counter() - t0) * 1000


async def outstanding(app: BotApp) -> int:
    async with app.session() as s:
        return (await s.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).scalar_one()


async def drain(app: BotApp, poll: float = 0.01) -> None:
    """Until no row is pending or sending, looking every `poll` seconds once idle."""
    while True:
        await app.idle()
        if not await outstanding(app):
            return
        await asyncio.sleep(poll)


async def unpaced(url: str, groups: int, repeats: int, write_only: bool = False) -> None:
    """The outbox write and the sender's own overhead per delivery (pacing off)."""
    await fresh_store(url)
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        pacing={"min_gap_seconds": 0, "jitter_seconds": 0, **NO_CAPS})
    transport = MemoryTransport(TRANSPORT, bot_id="bench-bot")
    transport.echoes = False
    app = build_app(settings, transport=transport)
    await app.open_store()
    c0, t0 = cpu(), time.perf_counter()
    root = await build_chain(app, groups, accounts=1)
    print(f"chain: {groups} tier-5 groups under one tier-1 node, built in "
          f"{time.perf_counter() - t0:.2f} s (Core bulk insert; not a figure)")
    # Planner statistics of the new chain, as autovacuum (PostgreSQL) or `PRAGMA optimize`
    # keep them after an import: without them the subtree's size is guessed from empty tables.
    async with app.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()

    print(f"--- outbox write: notices.create to {groups} groups, in its transaction, "
          "commit included (goal < 100 ms)")
    walls, cpus = [], []
    for i in range(repeats):
        rows, wall, cpu_ms = await create_notice(app, root, f"第{i + 1}次通知：请各房东今晚完成楼道消毒。")
        walls.append(wall)
        cpus.append(cpu_ms)
        print(f"  notice {i + 1}: {rows} rows in {wall:.1f} ms (CPU {cpu_ms:.1f} ms)")
    print(f"  median {statistics.median(walls):.1f} ms, min {min(walls):.1f} ms; of which "
          f"finding the targets (nodes + groups loaded) ~{await time_targets(app, root):.1f} ms")
    print(f"  peak RSS so far: {rss_mb():.0f} MB")
    if write_only:
        return

    total = await outstanding(app)
    print(f"--- sender overhead, pacing off, one account, a transport that only records "
          f"({total} deliveries from {repeats} notices; goal < 1 ms per delivery)")
    c0, t0 = cpu(), time.perf_counter()
    await app.start()
    await drain(app)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    sent = len(transport.sent)
    print(f"  {sent} sent in {wall:.2f} s: {wall / sent * 1000:.3f} ms per delivery wall, "
          f"{cpu_s / sent * 1000:.3f} ms CPU (app.start and reconcile included)")

    # The same with echoes: every send comes back and the pipeline records it (production).
    transport.echoes = True
    before = len(transport.sent)
    rows, wall_ms, _ = await create_notice(app, root, "再次通知：明早8点前上报租客体温。")
    print(f"--- the same with echoes recorded by the pipeline ({rows} deliveries; the notice "
          f"was written in {wall_ms:.1f} ms while the app ran)")
    c0, t0 = cpu(), time.perf_counter()
    app.sender.wake()
    await drain(app)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    sent = len(transport.sent) - before
    print(f"  {sent} sent in {wall:.2f} s: {wall / sent * 1000:.3f} ms per delivery wall, "
          f"{cpu_s / sent * 1000:.3f} ms CPU")
    await app.stop()
    print(f"  peak RSS so far: {rss_mb():.0f} MB")


async def paced(url: str, groups: int, accounts: int, min_gap: float, jitter: float,
                seed: int) -> None:
    """A paced broadcast on the real clock: completion time against the ideal."""
    await fresh_store(url)
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        pacing={"min_gap_seconds": min_gap, "jitter_seconds": jitter,
                                **NO_CAPS})
    transport = MemoryTransport(TRANSPORT, bot_id="bench-bot")  # echoes on
    app = build_app(settings, transport=transport)
    app.sender.rng = random.Random(seed)
    await app.open_store()
    root = await build_chain(app, groups, accounts=accounts)

    # Every send and the gap its pacer drew for the next one.
    draws: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    original = sender_module.Pacer.record

    def record(pacer: sender_module.Pacer, at: datetime) -> None:
        original(pacer, at)
        draws[pacer.name].append((at, pacer.gap))

    sender_module.Pacer.record = record  # type: ignore[method-assign]
    # The sender's own steps per delivery (claim, send, mark), timed on the wall clock.
    busy = {"claim": 0.0, "settle": 0.0, "send": 0.0}
    sender = app.sender
    steps = {"claim": sender._claim, "settle": sender._settle}

    def timed(name: str, step):  # type: ignore[no-untyped-def]
        async def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return await step(*args, **kwargs)
            finally:
                busy[name] += time.perf_counter() - t
        return run

    for name, step in steps.items():
        setattr(sender, f"_{name}", timed(name, step))
    transport.send = timed("send", transport.send)  # type: ignore[method-assign]
    try:
        await app.start()
        await drain(app)  # nothing yet; workers for the accounts start on the first wake
        rows, wall_ms, _ = await create_notice(app, root, "请各房东今晚20:00前完成楼道消毒。")
        started = app.now()
        c0 = cpu()
        app.sender.wake()
        t0 = time.perf_counter()
        # Paced, the sender is idle between sends: looking every 10 ms (a count and a wake
        # each) would cost this process more than the sender does.
        await drain(app, poll=0.1)
        elapsed = time.perf_counter() - t0
        cpu_s = cpu() - c0
    finally:
        sender_module.Pacer.record = original  # type: ignore[method-assign]
    await app.stop()
    sent = len([s for s in transport.sent if s.text.startswith("【通知#")])
    print(f"--- sender cost per delivery, production paced mode (one row claimed at a time, "
          f"sent, marked, its echo recorded by the pipeline; goal < 1 ms CPU): {sent} "
          f"deliveries, CPU {cpu_s / sent * 1000:.3f} ms per delivery (whole process: "
          f"sender, pipeline echoes, the clock's waits); wall in the sender's own steps "
          f"per delivery: claim {busy['claim'] / sent * 1000:.3f} ms, send "
          f"{busy['send'] / sent * 1000:.3f} ms (the echo only queued), mark "
          f"{busy['settle'] / sent * 1000:.3f} ms")

    print(f"--- paced broadcast: {rows} groups over {accounts} accounts, gap {min_gap * 1000:.0f} "
          f"ms + jitter up to {jitter * 1000:.0f} ms, real clock, echoes on "
          f"(goal: ideal/actual >= 95%); the notice was written in {wall_ms:.1f} ms")
    worst_ideal = worst_actual = 0.0
    for name in sorted(draws):
        sends = draws[name]
        n = len(sends)
        ideal = sum(gap for _at, gap in sends[:-1])   # the gap drawn after the last is unused
        expected = (n - 1) * (min_gap + jitter / 2)
        actual = (sends[-1][0] - started).total_seconds()
        worst_ideal, worst_actual = max(worst_ideal, ideal), max(worst_actual, actual)
        late = [((b - a).total_seconds() - gap) * 1000
                for (a, gap), (b, _g) in pairwise(sends)]
        print(f"  {name}: {n} sends, last at {actual:.3f} s; ideal from the drawn gaps "
              f"{ideal:.3f} s (expected (n-1)*(gap+jitter/2) = {expected:.3f} s); "
              f"ideal/actual {ideal / actual * 100:.1f}%; each send late by "
              f"p50 {statistics.median(late):.2f} ms, max {max(late):.2f} ms")
    print(f"  broadcast: complete after {worst_actual:.3f} s (drain seen idle after "
          f"{elapsed:.3f} s); ideal {worst_ideal:.3f} s; ideal/actual "
          f"{worst_ideal / worst_actual * 100:.1f}%")
    print(f"  peak RSS so far: {rss_mb():.0f} MB")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=10000, help="groups of the unpaced runs")
    p.add_argument("--repeats", type=int, default=3, help="notices written in the write test")
    p.add_argument("--db", type=Path, default=None,
                   help="SQLite file (PATH-paced for the paced run); default: a temp dir")
    p.add_argument("--db-url", default=None,
                   help="postgresql+asyncpg://USER@HOST:PORT/DB instead of SQLite (its public "
                        "schema is dropped and re-created before each run)")
    p.add_argument("--paced-groups", type=int, default=2000)
    p.add_argument("--accounts", type=int, default=4)
    p.add_argument("--min-gap", type=float, default=0.02, help="seconds (default 0.02)")
    p.add_argument("--jitter", type=float, default=0.02, help="seconds (default 0.02)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--only", choices=("all", "unpaced", "paced", "write"), default="all",
                   help="write: the outbox write alone")
    return p.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    bulk.throwaway_keys()
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.db_url:
        url = url_paced = Settings(database_url=args.db_url).database_url
        where = url.split("@")[-1]
    else:
        base = args.db or Path(tempfile.mkdtemp(prefix="tierbot-fanout-")) / "fanout.db"
        url, url_paced = f"sqlite+aiosqlite:///{base}", f"sqlite+aiosqlite:///{base}-paced"
        where = f"SQLite {base} (+ -paced), WAL, synchronous=FULL"
    print(f"store: {where}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, cpus {os.cpu_count()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.only in ("all", "unpaced", "write"):
        await unpaced(url, args.groups, args.repeats, write_only=args.only == "write")
    if args.only in ("all", "paced"):
        await paced(url_paced, args.paced_groups, args.accounts, args.min_gap, args.jitter,
                    args.seed)
    print(f"peak RSS: {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
