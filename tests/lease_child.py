"""One of several bot processes sharing a PostgreSQL database (tests/test_leases_processes.py).

    python -m tests.lease_child --url URL --dir DIR --setup --groups 120 --accounts 3
    python -m tests.lease_child --url URL --dir DIR [--lease 2] [--gap 0.2]

`--setup` builds a chain (a tier-1 group, one node of each middle tier, N tier-5 groups spread
over the accounts acct0, acct1, …) and one notice to every tier-5 group, then exits. Without
it the process runs the bot (paced, with leases) until no outbox row is pending or sending.

Every send is appended, with one os.write on an O_APPEND descriptor before send() returns, to
DIR/sends-PID.jsonl (it survives a SIGKILL): the platform's record of what reached each room,
one file per process. The platform echoes each send back (the pipeline records it), and
find_echo looks in every process's file, as the platform would answer whoever asks.

Lines on stdout (one JSON object each): {"event": "setup"}, {"event": "started", "pid"},
{"event": "done", "sends"} at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.app import BotApp, build_app
from bot.config import Settings
from bot.transports.base import SentMessage
from bot.transports.memory import MemoryTransport
from models import OutboxMessage, OutboxStatus
from tests.crash_child import TRANSPORT, build_chain, create_notice


def emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def read_all_sends(where: Path) -> list[dict[str, str]]:
    """Every send of every process (one JSON object per line, one file per process)."""
    sends: list[dict[str, str]] = []
    for path in sorted(where.glob("sends-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            sends += [json.loads(line) for line in f if line.strip()]
    return sends


class SharedFileTransport(MemoryTransport):
    """A memory transport recording each send durably in this process's file first."""

    def __init__(self, where: Path):
        super().__init__(TRANSPORT, bot_id="lease-bot")
        self.where = where
        self._pid = os.getpid()
        self._fd = os.open(where / f"sends-{self._pid}.jsonl",
                           os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        await asyncio.sleep(0)
        line = json.dumps({"room": room_id, "text": text, "account": account,
                           "pid": self._pid, "at": datetime.now(UTC).isoformat()},
                          ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        return await super().send(room_id, text, mentions=mentions, account=account)

    async def find_echo(self, room_id: str, text: str, since: datetime) -> datetime | None:
        found = [datetime.fromisoformat(s["at"]) for s in read_all_sends(self.where)
                 if s["room"] == room_id and s["text"] == text]
        found = [at for at in found if at >= since]
        return min(found) if found else None

    def close(self) -> None:
        os.close(self._fd)


async def unfinished(app: BotApp) -> int:
    async with app.session() as s:
        return (await s.execute(select(func.count()).where(
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
        ).scalar_one()


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--groups", type=int, default=120)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--gap", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    settings = Settings(database_url=args.url, transport="memory", scheduler=False,
                        pacing={"min_gap_seconds": args.gap, "jitter_seconds": 0,
                                "hourly_cap": 1_000_000, "daily_cap": 1_000_000,
                                "lease_seconds": args.lease})
    transport = SharedFileTransport(args.dir)
    app = build_app(settings, transport=transport)
    try:
        if args.setup:
            await app.open_store()
            await build_chain(app, args.groups, args.accounts)
            _notice, rows = await create_notice(app)
            await app.engine.dispose()
            emit(event="setup", rows=rows)
            return 0
        await app.start()
        emit(event="started", pid=os.getpid())
        deadline = time.monotonic() + args.timeout
        while await unfinished(app):
            if time.monotonic() > deadline:
                emit(event="timeout", left=await unfinished(app))
                await app.stop()
                return 2
            await asyncio.sleep(0.1)
        held = app.sender.held()
        await app.stop()
        emit(event="done", sends=len(transport.sent), held=held)
        return 0
    finally:
        transport.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
