"""bench/channels.py: what the official-robot adapters cost per notice and per send.

    .venv/bin/python bench/channels.py                 # 2,000 renders, 300 sends per channel
    .venv/bin/python bench/channels.py --renders 5000 --sends 1000

Render: a 6,000-character notice (about 18 KB, splits on every platform) with a tag, a
keyword and two mentions, rendered N times per channel (CPU time per render and parts).
Send: one small part sent over loopback to the fake server of tests/channels/fakes.py (its
limits lifted), wall and CPU time per send (signing, JSON, httpx, the fake's checks; the
fake runs in a thread of this process, so CPU includes it). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from datetime import UTC, datetime

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.channels.base import Outcome, Rendering  # noqa: E402
from bot.channels.dingtalk import DingtalkRobot  # noqa: E402
from bot.channels.feishu import FeishuApp, FeishuBot  # noqa: E402
from bot.channels.http import HttpChannel  # noqa: E402
from bot.channels.wecom import WecomRobot  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from tests.channels.fakes import (  # noqa: E402
    FakeDingtalk,
    FakeFeishuApp,
    FakeFeishuBot,
    FakePlatform,
    FakeWecom,
)

NOTICE = Rendering(text=("各位房东：本周六上午九点在社区办公室召开出租房安全会议，请准时参加。\n" * 180),
                   tag="【通知#1024】", mentions=("13812345678", "zhangsan"))


def channels(clock: FakeClock) -> list[tuple[HttpChannel, FakePlatform, str]]:
    chat = "oc_a0553eda9014c201e6969b478895c230"
    app = FakeFeishuApp(clock, app_id="cli_bench0001", app_secret="bench-app-secret")
    app.chats.add(chat)
    return [
        (WecomRobot("wecom", {"key": "bench-key-000001"}, keyword="通知"),
         FakeWecom(clock, key="bench-key-000001"), ""),
        (DingtalkRobot("ding", {"access_token": "bench-token-01", "secret": "SECbench01"},
                       keyword="通知"),
         FakeDingtalk(clock, access_token="bench-token-01", secret="SECbench01"), ""),
        (FeishuBot("feishu", {"token": "bench-hook-0001", "secret": "bench-secret"},
                   keyword="通知"),
         FakeFeishuBot(clock, token="bench-hook-0001", secret="bench-secret"), ""),
        (FeishuApp("feishu-app", {"app_id": "cli_bench0001", "app_secret": "bench-app-secret"}),
         app, chat),
    ]


async def bench_sends(ch: HttpChannel, fake: FakePlatform, room: str, n: int
                      ) -> tuple[float, float, int]:
    fake.per_minute, fake.per_second = 10**9, None
    if isinstance(fake, FakeFeishuApp):
        fake.group_per_second = 10**9
    [payload] = ch.render(Rendering(text="测试消息", tag="【通知#1】"))
    with fake.serve() as url:
        async with httpx.AsyncClient(timeout=10) as client:
            ch.base_url, ch._client, ch._owns_client = url, client, False
            assert (await ch.send(room, payload)).outcome is Outcome.DELIVERED  # warm
            wall, cpu = time.perf_counter(), time.process_time()
            ok = 0
            for _ in range(n):
                ok += (await ch.send(room, payload)).outcome is Outcome.DELIVERED
            return time.perf_counter() - wall, time.process_time() - cpu, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--sends", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("bot.channels").setLevel(logging.ERROR)
    clock = FakeClock(datetime(2026, 3, 2, 1, 10, tzinfo=UTC))
    print(f"load average {os.getloadavg()[0]:.2f}; notice "
          f"{len(NOTICE.text.encode()):,} bytes; {args.renders} renders, {args.sends} sends")
    print(f"{'channel':<16}{'parts':>6}{'render µs (CPU)':>17}{'send ms wall':>14}"
          f"{'send ms CPU':>13}{'delivered':>11}")
    for ch, fake, room in channels(clock):
        ch.clock = clock
        parts = len(ch.render(NOTICE))
        cpu = time.process_time()
        for _ in range(args.renders):
            ch.render(NOTICE)
        render_us = (time.process_time() - cpu) / args.renders * 1e6
        wall, send_cpu, ok = asyncio.run(bench_sends(ch, fake, room, args.sends))
        print(f"{ch.kind:<16}{parts:>6}{render_us:>17,.0f}{wall / args.sends * 1e3:>14.2f}"
              f"{send_cpu / args.sends * 1e3:>13.2f}{ok:>11}")


if __name__ == "__main__":
    main()
