"""The bot as a child process for the kill -9 harness (tests/test_crash.py).

    python -m tests.crash_child --db PATH --sends PATH [--groups 1000] [--echoes|--no-echoes]

On an empty store it builds a chain (one tier-1 node with a group, one node of each middle
tier, and N tier-5 nodes each with a group), and when no notice exists yet it creates one with
`bot.services.notice.create` in one transaction. Then it starts the app (which reconciles rows
a killed predecessor left in `sending`), waits until no outbox row is pending or sending, and
prints one JSON line with what it found and did. Every send is appended to the sends file with
one os.write on an O_APPEND descriptor before send() returns, so it survives a SIGKILL of this
process: the file is the platform's record of what reached each room.

Lines on stdout (one JSON object each): {"event": "notice", ...} once the notice is committed,
{"event": "started", ...} after app.start(), {"event": "done", ...} at the end.
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
from bot.services import chain as chains
from bot.services import notice as notices
from bot.transports.base import SentMessage
from bot.transports.memory import MemoryTransport
from models import NodeKind, Notice, OutboxMessage, OutboxStatus

TRANSPORT = "memory"
ROOT_ROOM = "root@chatroom"
NOTICE_TEXT = "请各房东今晚20:00前完成楼道消毒，并在群内回复收到。"


def leaf_room(i: int) -> str:
    """The room id of the i-th tier-5 group."""
    return f"leaf-{i:05d}@chatroom"


def emit(**fields: object) -> None:
    """One JSON line on stdout, flushed (the parent reads it while we run)."""
    sys.stdout.write(json.dumps(fields, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def read_sends(path: Path) -> list[dict[str, str]]:
    """Every send recorded in the file (one JSON object per line)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class FileTransport(MemoryTransport):
    """A memory transport whose sends are durably recorded in a file before send() returns.

    `delay` seconds pass before the platform takes the message (the platform call's latency),
    for every send after the first `delay_after`. Rows are `sending` for the whole of a claimed
    batch (the sender claims 50 at a time when unpaced); the harness's first run slows the
    sends near its kill point to 1 ms each so that a batch lasts long enough for the kill to
    land inside it. With `echoes`, the bot's own
    message comes back to on_message like a puppet's echo (the pipeline records it); without,
    nothing comes back."""

    def __init__(self, sends: Path, *, delay: float, echoes: bool, delay_after: int = 0):
        super().__init__(TRANSPORT, bot_id="crash-bot")
        self.echoes = echoes
        self.delay = delay
        self.delay_after = delay_after
        self.path = sends
        self._fd = os.open(sends, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        # The platform call: at least one trip through the event loop (the pipeline records
        # echoes meanwhile), longer with --delay.
        await asyncio.sleep(self.delay if len(self.sent) >= self.delay_after else 0)
        send_id = f"{self._pid}-{len(self.sent) + 1}"
        line = json.dumps({"room": room_id, "text": text, "id": send_id,
                           "at": datetime.now(UTC).isoformat()}, ensure_ascii=False) + "\n"
        # One write on an O_APPEND descriptor: in the file (the kernel's page cache) once it
        # returns, whatever happens to this process afterwards.
        os.write(self._fd, line.encode("utf-8"))
        # The message reached the room: record it and (with echoes) echo it back.
        return await super().send(room_id, text, mentions=mentions, account=account)

    def close(self) -> None:
        os.close(self._fd)


class EchoingFileTransport(FileTransport):
    """Echoes available: the platform can also be asked whether our message appeared."""

    async def find_echo(self, room_id: str, text: str, since: datetime) -> datetime | None:
        """When our message with this text appeared in that room at or after `since`."""
        found = [datetime.fromisoformat(s["at"]) for s in read_sends(self.path)
                 if s["room"] == room_id and s["text"] == text]
        found = [at for at in found if at >= since]
        return min(found) if found else None


async def build_chain(app: BotApp, groups: int, accounts: int = 0) -> None:
    """Tier 1 with a group, one node of each middle tier, `groups` tier-5 nodes with groups
    (group i sent from account acct{i % accounts}, or the default account)."""
    now = app.now()
    async with app.session() as s, s.begin():
        root = await chains.create_node(s, name="街道", kind=NodeKind.SUBDISTRICT, parent=None,
                                        now=now)
        await chains.bind_group(s, node=root, transport=TRANSPORT, room_id=ROOT_ROOM,
                                title="街道群", now=now)
        community = await chains.create_node(s, name="社区", kind=NodeKind.COMMUNITY,
                                             parent=root, now=now)
        team = await chains.create_node(s, name="小组", kind=NodeKind.TEAM, parent=community,
                                        now=now)
        landlords = await chains.create_node(s, name="房东", kind=NodeKind.TEAM_LANDLORDS,
                                             parent=team, now=now)
        for i in range(groups):
            leaf = await chains.create_node(s, name=f"房东{i}", kind=NodeKind.LANDLORD_TENANTS,
                                            parent=landlords, now=now)
            await chains.bind_group(s, node=leaf, transport=TRANSPORT, room_id=leaf_room(i),
                                    title=f"房东{i}租客群", now=now,
                                    account=f"acct{i % accounts}" if accounts else "")


async def create_notice(app: BotApp) -> tuple[int, int]:
    """One notice from the tier-1 node to every group below it, in one transaction."""
    async with app.session() as s, s.begin():
        root = await chains.find_node(s, ref="街道")
        group = await chains.group_by_room(s, transport=TRANSPORT, room_id=ROOT_ROOM)
        assert root is not None and group is not None
        notice, rows = await notices.create(
            s, origin=root, origin_group_id=group.id, sender_id=None, text=NOTICE_TEXT,
            urgent=False, scope=notices.Scope(), now=app.now())
    return notice.id, rows


async def status_counts(app: BotApp) -> dict[str, int]:
    async with app.session() as s:
        rows = await s.execute(select(OutboxMessage.status, func.count())
                               .group_by(OutboxMessage.status))
        return {str(status): n for status, n in rows}


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sends", type=Path, required=True)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--echoes", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds each send takes on the 'platform' (default 0: it only "
                             "yields to the event loop once; asyncio rounds any sleep up to 1 ms)")
    parser.add_argument("--delay-after", type=int, default=0,
                        help="sends that go without --delay first")
    parser.add_argument("--setup-only", action="store_true",
                        help="build the chain (no notice, no sending) and exit")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{args.db.resolve()}",
                        transport="memory", scheduler=False,
                        # No gap, and caps out of the way (the default hourly cap of 300
                        # would hold the rest of a 1,000-group broadcast for an hour).
                        pacing={"min_gap_seconds": 0, "jitter_seconds": 0,
                                "hourly_cap": 1_000_000, "daily_cap": 1_000_000})
    cls = EchoingFileTransport if args.echoes else FileTransport
    transport = cls(args.sends, delay=args.delay, echoes=args.echoes,
                    delay_after=args.delay_after)
    app = build_app(settings, transport=transport)
    try:
        await app.open_store()
        async with app.session() as s:
            empty = await chains.is_empty(s)
        if empty:
            await build_chain(app, args.groups)
        if args.setup_only:
            emit(event="setup", seconds=round(time.perf_counter() - started, 3))
            return 0
        async with app.session() as s:
            existing = (await s.execute(select(func.count(Notice.id)))).scalar_one()
        created = 0
        if not existing:
            _notice_id, created = await create_notice(app)
        before = await status_counts(app)
        emit(event="notice", created=created, before=before,
             seconds=round(time.perf_counter() - started, 3))

        # What reconciliation did (app.start() runs it and drops the figures).
        reconciled: list[tuple[int, int]] = []
        reconcile = app.sender.reconcile

        async def counting_reconcile() -> tuple[int, int]:
            result = await reconcile()
            reconciled.append(result)
            return result

        app.sender.reconcile = counting_reconcile  # type: ignore[method-assign]
        await app.start()
        emit(event="started", seconds=round(time.perf_counter() - started, 3))
        deadline = time.monotonic() + args.timeout
        while True:
            await app.idle()
            counts = await status_counts(app)
            if not counts.get(OutboxStatus.PENDING) and not counts.get(OutboxStatus.SENDING):
                break
            if time.monotonic() > deadline:
                emit(event="timeout", counts=counts)
                return 2
            await asyncio.sleep(0.05)
        await app.stop()
        confirmed, resent = reconciled[0] if reconciled else (0, 0)
        emit(event="done", sending_at_start=before.get(OutboxStatus.SENDING, 0),
             confirmed=confirmed, resent=resent, sends=len(transport.sent),
             after=await status_counts_closed(settings),
             seconds=round(time.perf_counter() - started, 3))
        return 0
    finally:
        if app._lock is not None:  # stopped early (setup only, timeout): release the store
            await app.engine.dispose()
            app._lock.release()
        transport.close()


async def status_counts_closed(settings: Settings) -> dict[str, int]:
    """The status counts read through a fresh engine, after the app has stopped."""
    from bot import store

    engine = store.create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(OutboxMessage.status, func.count())
                                      .group_by(OutboxMessage.status))
            return {str(status): n for status, n in rows}
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
