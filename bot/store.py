"""The database: engine set-up for SQLite and PostgreSQL, the single-process lock, migrations."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool


class StoreLockedError(Exception):
    """Another process holds the SQLite file."""


# How long a transaction waits for SQLite's write lock (another process, e.g. the CLI, holds
# it) before "database is locked"; the wait yields to the event loop, it never blocks it.
SQLITE_LOCK_WAIT = 30.0
# Statements (with their parameters) at DEBUG, under the logger name of the driver this
# adapter replaces, so logging set-up (quieted by default, masked always) applies unchanged.
driver_log = logging.getLogger("aiosqlite")
# The longest run of SQLite statements (seconds) on the event loop's thread without handing
# the loop back: past it, the next statement first lets the loop run what waits (as every
# statement's round trip does on PostgreSQL), so one long handler (a return with a fever:
# a dozen statements) does not hold every other chat, the sender and the timers.
STATEMENT_TURN = 0.002
_last_turn = [0.0]


async def take_turn() -> None:
    """Hand the event loop back if the statements have had it for STATEMENT_TURN."""
    if time.perf_counter() - _last_turn[0] >= STATEMENT_TURN:
        await asyncio.sleep(0)
        _last_turn[0] = time.perf_counter()


def turn_taken() -> None:
    """Someone else just handed the loop back (bot.pipeline.LoopShare): the clock restarts."""
    _last_turn[0] = time.perf_counter()


class _InlineCursor:
    """aiosqlite's cursor interface over a plain sqlite3 cursor, run on the calling thread."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def execute(self, sql: str, parameters: Any = ()) -> _InlineCursor:
        if driver_log.isEnabledFor(logging.DEBUG):
            driver_log.debug("executing %s %r", sql, parameters)
        if sql.startswith("BEGIN"):
            # The only statement that waits for the write lock (see InlineSQLite).
            deadline = time.monotonic() + SQLITE_LOCK_WAIT
            pause = 0.001
            while True:
                try:
                    self._cursor.execute(sql, parameters)
                    return self
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() + pause > deadline:
                        raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
        await take_turn()
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> _InlineCursor:
        if driver_log.isEnabledFor(logging.DEBUG):
            driver_log.debug("executing many %s %r", sql, seq_of_parameters)
        await take_turn()
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


class InlineSQLite:
    """A SQLite connection that looks like aiosqlite's but runs on the event loop's thread.

    aiosqlite sends every call to a worker thread and back (four hops a SELECT); here a call
    is a plain sqlite3 call. The engine keeps exactly one of these (pool_size=1,
    max_overflow=0): sessions take turns on it, waiting asynchronously in the pool. So inside
    the process nothing ever waits for SQLite's lock; only another process can hold it, and
    then BEGIN waits with asyncio.sleep (busy_timeout is 0 on this connection), never
    blocking the loop. Statements after BEGIN IMMEDIATE cannot be busy in WAL mode.

    COMMIT is the one call that waits for the disk (synchronous=FULL: an fsync of the WAL,
    sometimes a checkpoint): it runs on this connection's own commit thread while the loop
    goes on; the session holding the connection waits for it, so nothing else can use the
    connection meanwhile (sqlite3 releases the GIL while it syncs).
    """

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._committer = ThreadPoolExecutor(max_workers=1,
                                             thread_name_prefix="sqlite-commit")

    @classmethod
    async def connect(cls, database: str, *, uri: bool = False) -> InlineSQLite:
        conn = sqlite3.connect(database, uri=uri, isolation_level=None,
                               check_same_thread=False)
        # Connection set-up (WAL mode) may need the lock for a moment; after it, BEGIN waits.
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=0")
        return cls(conn)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    async def cursor(self) -> _InlineCursor:
        return _InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> _InlineCursor:
        return await _InlineCursor(self._conn.cursor()).execute(sql, parameters)

    async def hot(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        """A statement's rows, straight on sqlite3 (bot.hot): no cursor object kept."""
        if driver_log.isEnabledFor(logging.DEBUG):
            driver_log.debug("executing %s %r", sql, parameters)
        await take_turn()
        return self._conn.execute(sql, parameters).fetchall()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def commit(self) -> None:
        done = self._committer.submit(self._conn.commit)
        try:
            await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            # The commit goes on in its thread: let it end before the connection can be
            # handed to anyone else (rare: a task cancelled while committing).
            done.exception()
            raise

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._committer.shutdown(wait=True)
        self._conn.close()

    def stop(self) -> None:
        self._committer.shutdown(wait=True)
        self._conn.close()


_ASYNC_DRIVERS = (("sqlite://", "sqlite+aiosqlite://"),
                  ("postgresql://", "postgresql+asyncpg://"),
                  ("postgres://", "postgresql+asyncpg://"),
                  ("postgresql+psycopg2://", "postgresql+asyncpg://"))


def async_url(url: str) -> str:
    """The URL with the async driver the bot uses: postgresql:// (and postgres://) run on
    asyncpg, sqlite:// on our inline SQLite adapter (psycopg2 is never needed)."""
    for plain, driver in _ASYNC_DRIVERS:
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, full sync, foreign keys and real SAVEPOINT support,
    on one connection used on the event loop's thread (see InlineSQLite). Plain
    postgresql:// and sqlite:// URLs are run on the async drivers (see async_url)."""
    url = async_url(url)
    if not url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        _ping_when_idle(engine)
        _shard_each_connection(engine)
        return engine
    parsed = make_url(url)
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(parsed)
    database = args[0] if args else ":memory:"
    uri = bool(kwargs.get("uri"))

    async def connect() -> InlineSQLite:
        return await InlineSQLite.connect(database, uri=uri)

    # One connection: sessions queue for it (asynchronously, in arrival order) for up to
    # SQLITE_LOCK_WAIT seconds. Nothing may hold one session while it opens another.
    engine = create_async_engine(url, echo=echo, async_creator=connect,
                                 poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0,
                                 pool_timeout=SQLITE_LOCK_WAIT)

    # FULL: a commit is on disk before the reply leaves (durability over speed). IMMEDIATE
    # takes the write lock up front, so two writers wait instead of failing.
    _sqlite_session_setup(engine, begin="BEGIN IMMEDIATE", pragmas=(
        "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"))
    return engine


# A pooled PostgreSQL connection idle for longer than this (seconds) is pinged before it is
# handed out again; one used more recently is not (see _ping_when_idle).
PING_IDLE = 1.0
_LAST_USED = "tierbot_last_used"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use, in one round trip, and only once it has been
    idle for PING_IDLE: SQLAlchemy's pool_pre_ping on asyncpg costs three (BEGIN, a ping,
    ROLLBACK) on every checkout, which at a few batches a second was more round trips than
    the batch's own work. A dead connection found by the ping is replaced (the pool retries
    the checkout); one that died within PING_IDLE of its last use fails its first
    statement, which marks it and every older connection of the pool invalid, so the
    caller's retry (the pipeline runs a failed batch again, one message at a time) gets a
    new one."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < PING_IDLE:
            return
        try:
            # The adapter's own ping wraps ";" in BEGIN/ROLLBACK; a bare statement suffices.
            dbapi_connection.await_(dbapi_connection._connection.fetchrow(";"))
        except Exception as error:
            raise exc.DisconnectionError(f"connection found dead at checkout: {error}") \
                from error
        record.info[_LAST_USED] = time.monotonic()


# The trigger-kept counters' rows are split in this many shards (migration
# 0022_counter_shards); each PostgreSQL connection writes its own (SHARD_SETTING).
SHARDS = 16
SHARD_SETTING = "tierbot.shard"


def _shard_each_connection(engine: AsyncEngine) -> None:
    """Give each new connection of this engine the next shard (SHARD_SETTING, for the life of
    the connection): the counters' triggers write the rows of their connection's shard, so
    two transactions of this process at once (the pipeline's lanes, the sender, a job) never
    wait for each other on a counter row, as long as the pool has no more than SHARDS
    connections (SQLAlchemy's default: 15). The first is chosen by the process id, so the
    processes of README's "Several processes" mostly start apart; a shared shard only makes
    two transactions take turns on its rows, as every transaction did before."""
    shards = itertools.count(os.getpid())

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        shard = next(shards) % SHARDS
        dbapi_connection.await_(dbapi_connection._connection.execute(
            f"SET {SHARD_SETTING} = {shard}"))


def _sqlite_session_setup(engine: AsyncEngine, *, begin: str, pragmas: tuple[str, ...]
                          ) -> None:
    """Each new connection of this SQLite engine gets `pragmas`; each transaction starts with
    our own `begin` statement (pysqlite's own BEGIN handling breaks SAVEPOINT)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


# Connections of the SQLite reader (see create_reader): long reads at once, beyond which
# they queue (asynchronously) for one.
READER_CONNECTIONS = 2


def create_reader(engine: AsyncEngine) -> AsyncEngine | None:
    """For SQLite, an engine for long reads beside the one inline connection: aiosqlite's
    (each call on the connection's own thread, and sqlite3 lets go of the GIL while SQLite
    works, so a read of a city's figures does not hold the event loop), read-only
    (`query_only`), each transaction a plain deferred BEGIN: one snapshot of the file, which
    WAL lets the writer go on committing beside. On PostgreSQL the engine's own pool (off the
    loop already), each transaction read-only and one snapshot. None for an in-memory SQLite
    (which no other connection would see): the engine serves such reads itself."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        # The same pool; each read one snapshot (REPEATABLE READ: a city's figures from
        # fourteen statements add up) and read-only, as on SQLite.
        return engine.execution_options(isolation_level="REPEATABLE READ",
                                        postgresql_readonly=True)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database \
            or url.query.get("mode") == "memory":
        return None
    reader = create_async_engine(url.set(drivername="sqlite+aiosqlite"),
                                 poolclass=AsyncAdaptedQueuePool,
                                 pool_size=READER_CONNECTIONS, max_overflow=0,
                                 pool_timeout=SQLITE_LOCK_WAIT)

    # A reader is never kept out in WAL mode, except for a moment while a checkpoint resets
    # the log: it waits for that (busy_timeout), on the connection's thread.
    _sqlite_session_setup(reader, begin="BEGIN", pragmas=("query_only=ON",
                                                          "busy_timeout=5000"))
    return reader


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


class FileLock:
    """An exclusive lock beside the SQLite file: one process per database file.

    The lock is taken beside the resolved file (symlinks followed), so two names of one file
    share it; a file with several hard links is refused outright: SQLite keeps its journal
    beside each name, so two names of one file can corrupt it (sqlite.org/howtocorrupt.html).
    """

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        real = Path(os.path.realpath(self.db_path))
        self.path = real.with_name(real.name + ".lock")
        if real.exists():
            st = real.stat()
            if st.st_nlink > 1:
                raise StoreLockedError(
                    f"{self.db_path} has {st.st_nlink} hard links (device {st.st_dev}, inode "
                    f"{st.st_ino}): SQLite cannot keep one file safe under several names; "
                    f"keep one name (use a symlink instead)")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            shown = f"{self.db_path} (= {real})" if real != self.db_path.absolute() \
                else f"{self.db_path}"
            raise StoreLockedError(
                f"another tierbot process is using {shown} "
                f"(lock {self.path}); stop it first, or use PostgreSQL to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the migrations shipped in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("migrations")))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on this engine."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
