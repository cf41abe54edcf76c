#!/usr/bin/env python
"""Watchdog benchmark: one run over 4 accounts serving 10,000 groups (a notice pending for each,
a week of command history), then the run that fails one account over (a quarter of the groups
and their pending rows move) and the one that moves them back.

    .venv/bin/python bench/watchdog.py [--groups 10000] [--db PATH] [--db-url URL]

Prints figures and never asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, update

from bot.app import build_app
from bot.clock import FakeClock
from bot.config import Settings
from bot.services import chain as chains
from bot.services import notice as notices
from bot.services import watchdog
from bot.transports.base import AccountState
from bot.transports.memory import MemoryTransport
from models import Group, InboundMessage, OutboxMessage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk  # noqa: E402 - bench/bulk.py: the throwaway keys
from fanout import TRANSPORT, build_chain  # noqa: E402 - the benchmarks share their set-up
from inbound import START, fresh_store  # noqa: E402

ACCOUNTS = 4
HISTORY_PER_DAY = 2000


async def run(url: str, groups: int) -> None:
    await fresh_store(url)
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        watchdog={"failover_after_minutes": 0, "failback_after_minutes": 0})
    clock = FakeClock(START)
    app = build_app(settings, transport=MemoryTransport(TRANSPORT, now=clock.now), clock=clock)
    await app.open_store()
    root = await build_chain(app, groups, ACCOUNTS)
    async with app.session() as s, s.begin():
        # Each group's fallback is the next account; the notice leaves a pending row per group.
        for i in range(ACCOUNTS):
            await s.execute(update(Group).where(Group.account == f"acc{i}")
                            .values(fallback_account=f"acc{(i + 1) % ACCOUNTS}"))
        origin = await chains.group_by_room(s, transport=TRANSPORT, room_id="root@chatroom")
        assert origin is not None
        _notice, rows = await notices.create(
            s, origin=root, origin_group_id=origin.id, sender_id=None, text="今晚排查出租房",
            urgent=False, scope=notices.Scope(), now=clock.now())
        rooms = (await s.execute(select(Group.room_id).limit(500))).scalars().all()
        await s.execute(insert(InboundMessage.__table__), [
            {"transport": TRANSPORT, "message_id": f"h{d}-{i}", "room_id": rooms[i % len(rooms)],
             "sender_id": "x", "command": "report",
             "received_at": clock.now() - timedelta(days=d, seconds=i * 40)}
            for d in range(1, 8) for i in range(HISTORY_PER_DAY)])
    states = [AccountState(f"acc{i}", connected=True) for i in range(ACCOUNTS)]

    async def one(label: str, states: list[AccountState]) -> watchdog.Report:
        clock.advance(timedelta(minutes=1))
        c0, t0 = time.process_time(), time.perf_counter()
        async with app.session() as s, s.begin():
            report = await watchdog.run(s, settings=settings.watchdog, states=states, seen={},
                                        transport=TRANSPORT, now=clock.now(),
                                        zone=settings.zone)
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        print(f"  {label:<26} {wall:8.1f} ms wall {cpu:8.1f} ms CPU   moved {report.moved}, "
              f"back {report.moved_back}, rows queued or re-pointed {report.queued}, "
              f"alerts {report.alerted}")
        return report

    print(f"{groups} groups on {ACCOUNTS} accounts, {rows} pending rows, "
          f"{7 * HISTORY_PER_DAY} commands of history ({url.split(':', 1)[0]})")
    await one("first run (rows made)", states)
    await one("healthy run", states)
    down = [AccountState("acc0", connected=False, last_error="账号被封禁"), *states[1:]]
    await one("acc0 banned: failover", down)
    await one("acc0 still down", down)
    await one("acc0 back: failback", states)
    await one("healthy after failback", states)
    async with app.session() as s:
        moved = (await s.execute(select(func.count()).select_from(Group)
                                 .where(Group.moved_from != ""))).scalar_one()
        on0 = (await s.execute(select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.account == "acc0"))).scalar_one()
    print(f"  after failback: {moved} groups still moved, {on0} rows on acc0")
    await app.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=10_000)
    p.add_argument("--db", type=Path)
    p.add_argument("--db-url")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    bulk.throwaway_keys()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite+aiosqlite:///{args.db or Path(tmp) / 'watchdog.db'}"
        asyncio.run(run(url, args.groups))


if __name__ == "__main__":
    main()
