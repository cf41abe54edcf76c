"""Shared fixtures: a real database (SQLite, and PostgreSQL when configured), the bot on an
in-memory chat, the demo chain, and a fake clock."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import crypto, store
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.console import load_demo_chain
from bot.transports.memory import MemoryTransport
from models import Base

# Either URL form works (postgresql:// is run on asyncpg, like the bot's own setting).
PG_URL = store.async_url(os.environ.get("TIERBOT_TEST_DATABASE_URL", ""))
# Under pytest-xdist each worker (gw0, gw1, …) gets its own database, made from PG_URL.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The article's time: 21 February 2020, a Friday morning in Yiwu.
START = datetime(2020, 2, 21, 10, 0, tzinfo=SHANGHAI)

# A migration's backfill tests: the chain down to one landlord's group (ids 1-5) as rows
# written before the migration (`:t` their time); a test adds its own after it.
OLD_CHAIN = (
    "INSERT INTO node (id, tier, kind, name, parent_id, created_at) VALUES "
    "(1, 1, 'subdistrict', 'a', NULL, :t), (2, 2, 'community', 'b', 1, :t), "
    "(3, 3, 'team', 'c', 2, :t), (4, 4, 'team_landlords', 'd', 3, :t), "
    "(5, 5, 'landlord_tenants', 'e', 4, :t)")


async def database_at(tmp_path: Path, revision: str, rows: Sequence[str],
                      params: dict[str, Any]) -> AsyncEngine:
    """A SQLite file migrated only up to `revision`, with `rows` (SQL statements) written:
    what a later migration's backfill finds. The caller upgrades it and disposes of it."""
    engine = store.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await store.upgrade(engine, revision)
    async with store.sessionmaker(engine)() as s, s.begin():
        for stmt in rows:
            await s.execute(text(stmt), params)
    return engine
# The suite's keys for personal numbers at rest: in the variable the default config names
# (every Settings() of the suite finds them; subprocesses inherit them), and loaded for code
# that opens sessions without an app.
TEST_KEYRING = crypto.generate()
os.environ["TIERBOT_KEYRING"] = TEST_KEYRING.to_json()
crypto.use(TEST_KEYRING)


def run_sync(coro: Any) -> Any:
    """asyncio.run, also from a thread whose loop is running (the browser tests' sync
    Playwright keeps one running in the main thread): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _migrate(url: str) -> None:
    async def go() -> None:
        engine = store.create_engine(url)
        if url.startswith("postgresql"):
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await store.upgrade(engine)
        await engine.dispose()

    run_sync(go())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrations run once per session)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


def _worker_url(url: str, worker: str) -> str:
    """The URL of this worker's own database: the configured name + _gw0, _gw1, …"""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(
        hide_password=False)


def _downgrade(connection: Connection, revision: str) -> None:
    """Migrate down to `revision` on this connection (run it with `run_sync`)."""
    cfg = store.alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


def _create_or_drop(url: str, database: str, *, create: bool) -> None:
    """CREATE or DROP one database through the configured one (it must exist)."""
    async def go() -> None:
        engine = store.create_engine(url)
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                if create:
                    await conn.execute(text(f'CREATE DATABASE "{database}"'))
        finally:
            await engine.dispose()

    run_sync(go())


@pytest.fixture(scope="session")
def pg_migrated() -> Iterator[str]:
    """The PostgreSQL test database, migrated once per session (per xdist worker: its own
    database, created here and dropped at the end)."""
    if not PG_URL:
        if os.environ.get("TIERBOT_REQUIRE_POSTGRES"):
            pytest.fail("TIERBOT_REQUIRE_POSTGRES is set but TIERBOT_TEST_DATABASE_URL is not")
        pytest.skip("TIERBOT_TEST_DATABASE_URL is not set: the PostgreSQL run is skipped")
    if not WORKER:
        _migrate(PG_URL)
        yield PG_URL
        return
    url = _worker_url(PG_URL, WORKER)
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name is not None
    _create_or_drop(PG_URL, name, create=True)
    try:
        _migrate(url)
        yield url
    finally:
        _create_or_drop(PG_URL, name, create=False)


async def _truncate(url: str) -> None:
    engine = store.create_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tierbot.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
        run_sync(_truncate(url))
        yield url


@pytest.fixture
def clock() -> FakeClock:
    """Time stands still until a test moves it."""
    return FakeClock(START)


@pytest.fixture
def settings(db_url: str, request: pytest.FixtureRequest) -> Settings:
    """Defaults, on the test database, with an API token; `@pytest.mark.lanes(n)` sets
    pipeline.lanes (a test that picks rooms by their lane)."""
    lanes = request.node.get_closest_marker("lanes")
    # Pacing off: tests that are about pacing switch it on (and move the fake clock).
    return Settings(database_url=db_url, transport="memory", api={"token": "test-token"},
                    pacing={"min_gap_seconds": 0, "jitter_seconds": 0}, scheduler=False,
                    pipeline={"lanes": lanes.args[0] if lanes else 0})


@pytest.fixture
def transport() -> MemoryTransport:
    """The in-memory chat platform (named like the demo chain's groups)."""
    return MemoryTransport("sim", bot_id="sim-bot")


@pytest.fixture
async def bot(settings: Settings, transport: MemoryTransport, clock: FakeClock
              ) -> AsyncIterator[BotApp]:
    """The running bot."""
    transport._now = clock.now
    app = build_app(settings, transport=transport, clock=clock)
    async with running(app):
        yield app


@dataclass
class DemoChain:
    """Rooms and contact ids of the demo chain (bot/demo/chain.toml)."""

    subdistrict_group: str = "futian@chatroom"
    community_group: str = "changchun@chatroom"
    team_group: str = "team1@chatroom"
    landlords_group: str = "team1-landlords@chatroom"
    tenant_group: str = "dong@chatroom"
    ying_group: str = "ying@chatroom"
    shop_group: str = "shoprow1@chatroom"
    commander: str = "sim-zhangjianguo"
    community_commander: str = "sim-liweidong"
    secretary: str = "sim-chenxiuying"
    team_commander: str = "sim-wuhaifeng"
    team_member: str = "sim-liufang"
    landlord: str = "sim-dongbaoming"
    captain: str = "sim-wangqiang"
    tenant: str = "sim-panxiansheng"
    tenant2: str = "sim-wangming"
    ying_tenant: str = "sim-zhaoli"


@pytest.fixture
async def chain(bot: BotApp) -> DemoChain:
    """The demo chain loaded into the test database."""
    assert await load_demo_chain(bot)
    return DemoChain()


class Chat:
    """Speak in rooms of the in-memory platform and read what the bot said."""

    def __init__(self, app: BotApp, transport: MemoryTransport):
        self.app = app
        self.transport = transport
        self._mark = 0

    async def say(self, room: str, contact: str, text: str, *, name: str = "",
                  message_id: str | None = None) -> str:
        """One message; waits until the bot has handled it and sent everything it caused."""
        message = self.transport.message(room, contact, text, sender_name=name or contact,
                                         message_id=message_id)
        self._mark = len(self.transport.sent)
        await self.transport.inject(message)
        await self.app.idle()
        return message.message_id

    async def say_together(self, lines: list[tuple[str, str, str]]) -> None:
        """Several messages arriving at once (they share a batch)."""
        self._mark = len(self.transport.sent)
        for room, contact, line in lines:
            await self.transport.inject(self.transport.message(room, contact, line))
        await self.app.idle()

    def replies(self, room: str) -> list[str]:
        """What the bot sent to `room` because of the last say."""
        return [s.text for s in self.transport.sent[self._mark:] if s.room_id == room]

    def mentions(self, room: str) -> list[tuple[str, ...]]:
        """The mentions of what the bot sent to `room` because of the last say."""
        return [s.mentions for s in self.transport.sent[self._mark:] if s.room_id == room]

    def all_texts(self) -> list[str]:
        """Everything the bot ever sent."""
        return [s.text for s in self.transport.sent]


@pytest.fixture
def chat(bot: BotApp, transport: MemoryTransport) -> Chat:
    """The chat the tests speak in."""
    return Chat(bot, transport)


async def count(app: BotApp, model: Any, *where: Any) -> int:
    """How many rows of a table (matching `where`)."""
    async with app.session() as session:
        stmt = select(func.count()).select_from(model)
        for cond in where:
            stmt = stmt.where(cond)
        return (await session.execute(stmt)).scalar_one()


async def until(predicate: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Let the loop run (the bot, its sender) until `predicate` holds."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
