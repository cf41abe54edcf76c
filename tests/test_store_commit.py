"""SQLite's COMMIT runs on the connection's own thread, off the event loop (issue 13), and a
commit failing there loses nothing: the batch is retried message by message."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import store
from models import InboundMessage, TemperatureReading
from tests.conftest import Chat, DemoChain, count


async def raw_sqlite(engine: Any) -> store.InlineSQLite:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, store.InlineSQLite)
        return driver


async def test_sqlite_commit_runs_off_the_event_loop_thread(tmp_path: Path):
    engine = store.create_engine(f"sqlite:///{tmp_path / 'commit.db'}")
    try:
        driver = await raw_sqlite(engine)
        threads: dict[str, set[int]] = {}

        def trace(statement: str) -> None:
            threads.setdefault(statement.split()[0].upper(), set()).add(threading.get_ident())

        driver._conn.set_trace_callback(trace)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalar_one() == 1
        loop_thread = threading.get_ident()
        assert threads["INSERT"] == {loop_thread}
        assert threads["COMMIT"] and loop_thread not in threads["COMMIT"]
    finally:
        await engine.dispose()


class FailingCommits:
    """A sqlite3 connection whose next `failures` commits fail (a full disk, an I/O error)."""

    def __init__(self, conn: sqlite3.Connection, failures: int):
        self._conn = conn
        self.failures = failures
        self.threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def commit(self) -> None:
        self.threads.add(threading.get_ident())
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        self._conn.commit()


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only, in this file: the commit thread is SQLite's (PostgreSQL's commit is a
    network round trip on asyncpg's own loop), so the run on PostgreSQL is not skipped but
    not made."""
    path = tmp_path / "tierbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def test_a_commit_failing_in_its_thread_loses_no_message_and_repeats_none(
        bot, chat: Chat, chain: DemoChain, transport, caplog):
    contacts = [f"sim-disk-{i}" for i in range(3)]
    await chat.say_together([(chain.tenant_group, c, f"我回来了 湖南长沙 1370000{i:04d}")
                             for i, c in enumerate(contacts)])
    driver = await raw_sqlite(bot.engine)
    failing = FailingCommits(driver._conn, failures=1)
    driver._conn = failing  # type: ignore[assignment]
    try:
        messages = [transport.message(chain.tenant_group, c, f"体温 36.{i}")
                    for i, c in enumerate(contacts)]
        for message in [*messages, messages[1]]:  # and one delivered twice
            await transport.inject(message)
        await bot.idle()
    finally:
        driver._conn = failing._conn
    assert failing.failures == 0 and threading.get_ident() not in failing.threads
    assert "batch commit failed" in caplog.text
    assert await count(bot, TemperatureReading) == 3
    assert await count(bot, InboundMessage, InboundMessage.message_id.in_(
        [m.message_id for m in messages])) == 3
    replies = [s.text for s in transport.sent if s.room_id == chain.tenant_group]
    assert sum("36." in r for r in replies[-3:]) == 3
