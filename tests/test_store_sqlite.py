"""SQLite on the event loop's thread: one connection, savepoints, rollback, sessions taking
turns, and waiting (without blocking the loop) for a lock another process holds."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot import store
from models import Node, NodeKind
from tests.conftest import START


@pytest.fixture
async def engine(tmp_path: Path):
    engine = store.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    await store.upgrade(engine)
    yield engine
    await engine.dispose()


def node(name: str) -> Node:
    return Node(name=name, kind=NodeKind.SUBDISTRICT, tier=1, created_at=START)


async def names(engine) -> list[str]:
    async with store.sessionmaker(engine)() as session:
        return list((await session.execute(select(Node.name).order_by(Node.id))).scalars())


async def test_one_connection_on_the_loop_thread_with_the_durable_settings(engine):
    assert engine.pool.size() == 1
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, store.InlineSQLite)
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_a_savepoint_rolls_back_alone(engine):
    sessions = store.sessionmaker(engine)
    async with sessions() as session, session.begin():
        session.add(node("kept"))
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                session.add(node("dropped"))
                await session.flush()
                raise RuntimeError("boom")
        async with session.begin_nested():
            session.add(node("also kept"))
    assert await names(engine) == ["kept", "also kept"]


async def test_a_rolled_back_transaction_leaves_nothing(engine):
    sessions = store.sessionmaker(engine)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            session.add(node("gone"))
            await session.flush()
            raise RuntimeError("boom")
    assert await names(engine) == []
    # The one connection is usable again afterwards.
    async with sessions() as session, session.begin():
        session.add(node("after"))
    assert await names(engine) == ["after"]


async def test_concurrent_sessions_take_turns_instead_of_failing(engine):
    sessions = store.sessionmaker(engine)
    order: list[str] = []

    async def writer(name: str) -> None:
        async with sessions() as session, session.begin():
            session.add(node(name))
            await session.flush()  # the connection is taken here (a session starts lazily)
            order.append(f"{name} in")
            await asyncio.sleep(0.01)  # hold the connection while others wait for it
            order.append(f"{name} out")

    await asyncio.gather(*(writer(f"w{i}") for i in range(5)))
    assert sorted(await names(engine)) == [f"w{i}" for i in range(5)]
    # Each transaction ran whole before the next began (one connection, no interleaving).
    assert all(order[i].endswith("in") and order[i + 1] == order[i].replace("in", "out")
               for i in range(0, len(order), 2))


async def test_begin_waits_for_another_process_without_blocking_the_loop(engine, tmp_path):
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (the CLI, say) holds the write lock
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def write() -> None:
        async with store.sessionmaker(engine)() as session, session.begin():
            session.add(node("waited"))
        done.set()

    tick_task = asyncio.create_task(ticker())
    write_task = asyncio.create_task(write())
    while ticks < 20:  # the loop runs while the write waits for the lock
        await asyncio.sleep(0.001)
    assert not write_task.done()
    other.execute("COMMIT")
    other.close()
    await write_task
    await tick_task
    assert await names(engine) == ["waited"]


async def test_begin_gives_up_when_the_lock_stays_taken(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "SQLITE_LOCK_WAIT", 0.05)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with store.sessionmaker(engine)() as session, session.begin():
                session.add(node("never"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with store.sessionmaker(engine)() as session:
        assert (await session.execute(select(func.count()).select_from(Node))).scalar_one() == 0


async def test_a_long_run_of_statements_hands_the_loop_back(engine, monkeypatch):
    """A transaction of many statements lets other tasks run between them (after
    STATEMENT_TURN), and what it writes is all there, in order, once."""
    monkeypatch.setattr(store, "STATEMENT_TURN", 0.0)
    ticks: list[int] = []
    written = 0

    async def other_chat() -> None:
        while True:
            ticks.append(written)
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_chat())
    await asyncio.sleep(0)
    sessions = store.sessionmaker(engine)
    async with sessions() as session, session.begin():
        for i in range(40):
            session.add(node(f"n{i}"))
            await session.flush()
            written += 1
    ticker.cancel()
    # The other task ran in the middle of the transaction, more than once.
    assert len({t for t in ticks if 0 < t < 40}) > 5
    assert await names(engine) == [f"n{i}" for i in range(40)]


async def test_statements_within_their_turn_do_not_yield(engine, monkeypatch):
    monkeypatch.setattr(store, "STATEMENT_TURN", 3600.0)
    store.turn_taken()
    ran = []

    async def other() -> None:
        ran.append(True)

    sessions = store.sessionmaker(engine)
    async with sessions() as session:
        task = asyncio.create_task(other())
        for _ in range(20):
            await session.execute(select(func.count(Node.id)))
        assert not ran  # twenty statements, not one hand-back
        await task
