#!/usr/bin/env python
"""Acknowledgement-link benchmark (issue 15): what the per-group ack suffix adds to a notice's
fan-out, and the cost of signing and checking one link.

    .venv/bin/python bench/ack.py [--groups 10000] [--robots 200] [--repeats 3] [--db-url URL]

A notice to `groups` tier-5 groups, written by notices.create in its transaction, three ways:
the suffix step switched off (the fan-out alone), every group on WeChat (the step costs one
look at the notice's accounts), and `robots` groups on a send-only robot (each of those gets its
signed link). Prints wall and CPU milliseconds (medians) and the ratios to the first; never
asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text, update

from bot.app import build_app
from bot.channels.base import Capabilities
from bot.config import Settings
from bot.services import ack
from bot.services import chain as chains
from bot.services import notice as notices
from models import Group

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk  # noqa: E402 - bench/bulk.py: the throwaway keys
from fanout import build_chain  # noqa: E402 - the chain of the fan-out bench
from inbound import fresh_store  # noqa: E402

ROBOT = "bench-robot"
SEND_ONLY = Capabilities(receive=False, ack_in_chat=False, mention_user=False,
                         mention_all=False, markdown=True, cards=False)


async def run(url: str, groups: int, robots: int, repeats: int) -> None:
    await fresh_store(url)
    settings = Settings(database_url=url, transport="memory", scheduler=False,
                        notices={"ack_link_base": "https://ack.example.cn"})
    app = build_app(settings)
    await app.open_store()
    root = await build_chain(app, groups, accounts=1)
    async with app.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    real = ack.attach_suffixes

    async def skipped(*_: Any, **__: Any) -> int:
        return 0

    results: dict[str, tuple[float, float]] = {}
    async with app.session() as s:
        origin = await chains.group_by_room(s, transport="memory", room_id="root@chatroom")
        assert origin is not None

    async def create_notice(body: str) -> tuple[int, float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        async with app.session() as s, s.begin():
            _notice, rows = await notices.create(
                s, origin=root, origin_group_id=origin.id, sender_id=None, text=body,
                urgent=False, scope=notices.Scope(), now=app.now(),
                settings=app.settings.notices)
        return rows, (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000

    async def measure(label: str) -> None:
        walls, cpus = [], []
        for i in range(repeats):
            rows, wall, cpu = await create_notice(f"{label} 第{i}条")
            assert rows == groups, rows
            walls.append(wall)
            cpus.append(cpu)
        results[label] = (statistics.median(walls), statistics.median(cpus))

    try:
        ack.attach_suffixes = skipped  # type: ignore[assignment]
        await measure("fan-out alone")
        ack.attach_suffixes = real
        await measure("all WeChat")
        async with app.session() as s, s.begin():
            ids = (await s.execute(select(Group.id).where(Group.room_id.like("ll%"))
                                   .order_by(Group.id).limit(robots))).scalars().all()
            await s.execute(update(Group).where(Group.id.in_(ids)).values(account=ROBOT))
        ack.declare(ROBOT, SEND_ONLY)
        await measure(f"{robots} robot groups")
    finally:
        ack.attach_suffixes = real
        ack.forget_declarations()
        await app.engine.dispose()
    base_wall, base_cpu = results["fan-out alone"]
    print(f"--- notices.create to {groups} groups, median of {repeats} "
          f"({app.engine.dialect.name})")
    for label, (wall, cpu) in results.items():
        print(f"{label:>22}: {wall:8.1f} ms wall ({wall / base_wall:4.2f}x), "
              f"{cpu:8.1f} ms CPU ({cpu / base_cpu:4.2f}x)")

    n = 20_000
    now = app.now()
    c0, t0 = time.process_time(), time.perf_counter()
    tokens = [ack.sign(notice_id=7, group_id=i + 1, expires=now + timedelta(days=7))
              for i in range(n)]
    signed = time.perf_counter() - t0
    t1 = time.perf_counter()
    for token in tokens:
        ack.verify(token, now=now)
    checked = time.perf_counter() - t1
    print(f"--- links: sign {signed / n * 1e6:.1f} µs, verify {checked / n * 1e6:.1f} µs each "
          f"({n} of each, {(time.process_time() - c0) * 1000:.0f} ms CPU in all)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=10_000)
    p.add_argument("--robots", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--db-url", default=None, help="PostgreSQL URL (its schema is recreated)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bulk.throwaway_keys()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite+aiosqlite:///{tmp}/ack.db"
        asyncio.run(run(url, args.groups, args.robots, args.repeats))


if __name__ == "__main__":
    main()
