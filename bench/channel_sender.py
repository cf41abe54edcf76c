#!/usr/bin/env python
"""Channel benchmark: the sender's CPU per delivery through an official channel (rendered by
the channel, paced by its Limits, results classified) next to a WeChat account in paced mode
(one row per claim), one notice to the same groups each, in one process.

    .venv/bin/python bench/channel_sender.py [--groups 2000] [--db PATH] [--db-url URL]

Prints figures and never asserts them. Both runs claim one row per transaction (paced mode);
the WeChat run's gap is 1 µs so that pacing itself waits for nothing, the channel's limits are
raised out of the way (per minute 10⁹) for the same reason; neither transport echoes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text, update

from bot import sender as sender_module
from bot.app import BotApp, build_app
from bot.channels.base import Limits
from bot.channels.sim import SimOfficialChannel
from bot.config import Settings
from bot.transports.memory import MemoryTransport
from models import Group

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk  # noqa: E402 - bench/bulk.py: the throwaway keys
from fanout import NO_CAPS, TRANSPORT, build_chain, cpu, create_notice, drain  # noqa: E402
from inbound import fresh_store  # noqa: E402

ROBOT = "robot"


async def run(url: str, groups: int, *, channel: bool) -> tuple[int, float, float]:
    """(deliveries, wall s, CPU s) of draining one notice to `groups` groups."""
    await fresh_store(url)
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        pacing={"min_gap_seconds": 0.000001, "jitter_seconds": 0, **NO_CAPS})
    transport = MemoryTransport(TRANSPORT, bot_id="bench-bot")
    transport.echoes = False
    robot = SimOfficialChannel(ROBOT, limits=Limits(per_minute=10**9, max_body_bytes=2048))
    app: BotApp = build_app(settings, transport=transport, channels={ROBOT: robot})
    await app.open_store()
    root = await build_chain(app, groups, accounts=1)
    if channel:
        async with app.session() as s, s.begin():
            await s.execute(update(Group).values(account=ROBOT))
    async with app.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await app.start()
    await create_notice(app, root, "请各房东今晚完成楼道消毒，并回复收到。")
    c0, t0 = cpu(), time.perf_counter()
    app.sender.wake()
    await drain(app)
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    sent = len(robot.sent) if channel else len(transport.sent)
    await app.stop()
    return sent, wall, cpu_s


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=2000)
    p.add_argument("--db", type=Path, default=None, help="SQLite file (deleted first)")
    p.add_argument("--db-url", default=None, help="a PostgreSQL URL (its schema is dropped)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bulk.throwaway_keys()
    # One row per claim on both sides (a batch of WeChat claims would compare other things).
    sender_module.CLAIM_AHEAD = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite+aiosqlite:///{args.db or Path(tmp) / 'channels.db'}"
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        figures = {}
        for label, channel in (("wechat (paced mode)", False), ("official channel", True),
                               ("wechat again", False), ("official again", True)):
            sent, wall, cpu_s = await run(url, args.groups, channel=channel)
            figures[label] = cpu_s / sent * 1000
            print(f"{label:20} {sent} sent in {wall:.2f} s: {wall / sent * 1000:.3f} ms wall, "
                  f"{cpu_s / sent * 1000:.3f} ms CPU per delivery")
        wechat = min(figures["wechat (paced mode)"], figures["wechat again"])
        official = min(figures["official channel"], figures["official again"])
        print(f"official / wechat CPU per delivery (best of two each): {official / wechat:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
