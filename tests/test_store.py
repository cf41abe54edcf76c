"""The store (bot/store.py): SQLite pragmas, the one-process file lock, and migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError

from bot import store
from bot.app import BotApp, build_app, running
from bot.clock import FakeClock
from bot.config import Settings
from bot.store import StoreLockedError
from bot.transports.memory import MemoryTransport
from models import Base, Group, Node, NodeKind
from tests.conftest import START, count


def sqlite_app(path: Path) -> BotApp:
    """A bot on its own SQLite file (the file is created and migrated on start)."""
    settings = Settings(database_url=f"sqlite:///{path}", transport="memory")
    return build_app(settings, transport=MemoryTransport("memory"), clock=FakeClock(START))


def head_revision() -> str:
    head = ScriptDirectory.from_config(store.alembic_config()).get_current_head()
    assert head is not None
    return head


def _schema(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    return {
        table: (sorted((c["name"], str(c["type"]), c["nullable"])
                       for c in inspector.get_columns(table)),
                sorted(str(sorted(ix["column_names"])) for ix in inspector.get_indexes(table)),
                sorted(str(sorted(fk["constrained_columns"]))
                       for fk in inspector.get_foreign_keys(table)))
        for table in sorted(inspector.get_table_names())
    }


async def schema_and_version(app: BotApp) -> tuple[dict[str, Any], list[str]]:
    async with app.engine.connect() as conn:
        schema = await conn.run_sync(_schema)
        versions = list((await conn.execute(text("SELECT version_num FROM alembic_version")))
                        .scalars())
    return schema, versions


async def test_sqlite_store_uses_wal_and_foreign_keys(tmp_path: Path):
    app = sqlite_app(tmp_path / "bot.db")
    async with running(app):
        async with app.session() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            # 2 = FULL: a commit is on disk before the reply leaves.
            assert (await session.execute(text("PRAGMA synchronous"))).scalar_one() == 2
        # Foreign keys are enforced, not only declared.
        with pytest.raises(IntegrityError):
            async with app.session() as session, session.begin():
                session.add(Group(node_id=999, transport="memory", room_id="r@chatroom",
                                  title="孤儿群", account="", created_at=START))
        assert await count(app, Group) == 0


async def test_second_app_on_the_same_sqlite_file_is_refused(tmp_path: Path):
    path = tmp_path / "bot.db"
    first = sqlite_app(path)
    second = sqlite_app(path)
    async with running(first):
        with pytest.raises(StoreLockedError) as err:
            await second.start()
        assert str(path) in str(err.value)
        await second.engine.dispose()
        # The first is unaffected.
        async with first.session() as session, session.begin():
            session.add(Node(name="福田街道", kind=NodeKind.SUBDISTRICT, tier=1,
                             created_at=START))
    # Once the first has stopped, the second starts and sees the first's data.
    async with running(second):
        assert await count(second, Node, Node.name == "福田街道") == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_postgresql_store_takes_no_file_lock(db_url: str):
    # Several processes may share PostgreSQL.
    settings = Settings(database_url=db_url, transport="memory")
    assert settings.sqlite_path is None
    first = build_app(settings, transport=MemoryTransport("memory"), clock=FakeClock(START))
    second = build_app(settings, transport=MemoryTransport("memory"), clock=FakeClock(START))
    async with running(first), running(second):
        assert await count(second, Node) == 0


async def test_migrations_applied_again_are_a_no_op(bot: BotApp):
    async with bot.session() as session, session.begin():
        session.add(Node(name="福田街道", kind=NodeKind.SUBDISTRICT, tier=1, created_at=START))
    before = await schema_and_version(bot)
    await store.upgrade(bot.engine)
    await store.upgrade(bot.engine)
    assert await schema_and_version(bot) == before
    assert await count(bot, Node) == 1


async def test_head_revision_is_applied(bot: BotApp):
    schema, versions = await schema_and_version(bot)
    assert versions == [head_revision()]
    # Every table of the models exists.
    assert set(Base.metadata.tables) <= set(schema)


async def test_migrations_create_a_fresh_sqlite_file(tmp_path: Path):
    path = tmp_path / "fresh.db"
    engine = store.create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await store.upgrade(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            version = (await conn.execute(select(text("version_num"))
                                          .select_from(text("alembic_version")))).scalar_one()
    finally:
        await engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert version == head_revision()


async def test_the_lock_holds_through_a_symlink(tmp_path: Path):
    path = tmp_path / "bot.db"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "other-name.db"
    first = sqlite_app(path)
    async with running(first):
        link.symlink_to(path)
        second = sqlite_app(link)
        with pytest.raises(StoreLockedError) as err:
            await second.start()
        assert "another tierbot process" in str(err.value)
        assert str(link) in str(err.value) and str(path) in str(err.value)
        await second.engine.dispose()
    # The symlink alone is fine once the first has stopped.
    async with running(second):
        assert await count(second, Node) == 0


async def test_a_hard_link_to_the_database_is_refused(tmp_path: Path):
    path = tmp_path / "bot.db"
    first = sqlite_app(path)
    async with running(first):
        (tmp_path / "elsewhere").mkdir()
        link = tmp_path / "elsewhere" / "bot.db"
        os.link(path, link)
        second = sqlite_app(link)
        with pytest.raises(StoreLockedError) as err:
            await second.start()
        assert "hard links" in str(err.value)
        await second.engine.dispose()
    # Refused even with nobody else running: one file, two journals.
    third = sqlite_app(path)
    with pytest.raises(StoreLockedError, match="hard links"):
        await third.start()
    await third.engine.dispose()
    link.unlink()
    async with running(third):
        assert await count(third, Node) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_plain_postgresql_url_runs_on_asyncpg(db_url: str):
    # The README's form, without the driver: no psycopg2 is needed (nor installed).
    plain = db_url.replace("postgresql+asyncpg://", "postgresql://")
    for url in (plain, plain.replace("postgresql://", "postgres://")):
        engine = store.create_engine(url)
        try:
            assert engine.dialect.driver == "asyncpg"
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        finally:
            await engine.dispose()
    app = build_app(Settings(database_url=plain, transport="memory"),
                    transport=MemoryTransport("memory"), clock=FakeClock(START))
    async with running(app):
        assert await count(app, Node) == 0


def test_urls_get_the_async_driver():
    assert store.async_url("postgresql://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert store.async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert store.async_url("postgresql+psycopg2://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert store.async_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert store.async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def _kill_other_backends(url: str) -> int:
    """Terminate every other backend on this test database (the engine's pooled ones)."""
    killer = store.create_engine(url)
    try:
        async with killer.connect() as conn:
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).scalar_one()
            await conn.commit()
        return int(killed)
    finally:
        await killer.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_killed_postgresql_connection_is_replaced(db_url: str, monkeypatch):
    engine = store.create_engine(db_url)
    pid = text("SELECT pg_backend_pid()")
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(pid)).scalar_one()
        # At least this engine's one connection (another test's leftover on this database
        # would go too).
        assert await _kill_other_backends(db_url) >= 1
        # Used just now: not pinged, so the dead connection fails its first statement and
        # takes the pool's connections with it; the next checkout is a new one.
        with pytest.raises(Exception) as err:
            async with engine.connect() as conn:
                await conn.execute(pid)
        assert getattr(err.value, "connection_invalidated", False), err.value
        async with engine.connect() as conn:
            second = (await conn.execute(pid)).scalar_one()
        assert second != first
        # Idle for longer than PING_IDLE: the ping finds it dead and the pool replaces it
        # before anyone uses it.
        monkeypatch.setattr(store, "PING_IDLE", 0.0)
        assert await _kill_other_backends(db_url) >= 1
        async with engine.connect() as conn:
            third = (await conn.execute(pid)).scalar_one()
        assert third not in (first, second)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_batch_on_a_killed_connection_is_handled_again(settings, chat, chain, bot,
                                                              monkeypatch, caplog):
    """The pipeline's connection dies between two batches (a database restart): the batch
    that meets it fails, runs again one message at a time on a new connection, and every
    message is recorded and answered once."""
    from models import InboundMessage, TenantStay

    monkeypatch.setattr(store, "PING_IDLE", 3600.0)  # no ping: the batch meets the dead one
    await chat.say(chain.tenant_group, chain.landlord, "租客返回 王明 13800138000 来自湖南长沙")
    assert await _kill_other_backends(settings.database_url) >= 1
    await chat.say_together([
        (chain.tenant_group, chain.landlord, "租客返回 李雷 13900139000 来自湖北武汉"),
        (chain.tenant_group, chain.landlord, "租客返回 韩梅 13700137000 来自江西南昌"),
    ])
    replies = chat.replies(chain.tenant_group)
    assert len(replies) == 2 and all(r.startswith("已登记") for r in replies), replies
    assert "batch commit failed" in caplog.text
    assert await count(bot, TenantStay) == 3
    assert await count(bot, InboundMessage) == 3
