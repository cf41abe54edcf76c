"""Set-based bulk loading shared by the benchmarks (bench/points.py, bench/reads.py): the
store arguments and a populating child process, a fresh schema, row series and timestamps in
either dialect, and the points_total triggers held off while a load runs (the table is
rebuilt set-based afterwards)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot import store
from bot.services import points, stats


def add_store_args(p: argparse.ArgumentParser) -> None:
    """--db or --db-url, --reuse, and the hidden --populate-only of the populating child."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    where.add_argument("--db-url", help="PostgreSQL URL (its public schema is recreated)")
    p.add_argument("--reuse", action="store_true", help="skip populating (same database)")
    p.add_argument("--populate-only", action="store_true", help=argparse.SUPPRESS)


@contextlib.contextmanager
def store_url(args: argparse.Namespace, name: str) -> Iterator[str]:
    """The run's database URL: --db-url on the async driver, else --db, else a SQLite file
    `name` in a temporary directory (set as args.db, removed afterwards)."""
    if args.db_url:
        yield store.async_url(args.db_url)
        return
    with contextlib.ExitStack() as stack:
        if args.db is None:
            args.db = Path(stack.enter_context(tempfile.TemporaryDirectory())) / name
        yield f"sqlite+aiosqlite:///{args.db}"


def populate_in_child(script: str, args: argparse.Namespace, url: str, *options: str) -> None:
    """Run `script --populate-only OPTIONS` on the same database in a fresh process (so the
    measuring process starts cold); a SQLite file is removed first."""
    if not args.db_url:
        for suffix in ("", "-wal", "-shm"):
            Path(str(args.db) + suffix).unlink(missing_ok=True)
    child = [sys.executable, script, "--populate-only", *options]
    child += ["--db-url", url] if args.db_url else ["--db", str(args.db)]
    subprocess.run(child, check=True, env=os.environ)


def throwaway_keys() -> None:
    """Keys for a benchmark's own database (personal numbers are sealed; nothing is kept)."""
    import os

    from bot import crypto

    ring = crypto.generate()
    os.environ.setdefault("TIERBOT_KEYRING", ring.to_json())
    crypto.use(crypto.Keyring.from_json(os.environ["TIERBOT_KEYRING"], source="bench"))


async def analyze(engine: AsyncEngine) -> None:
    """Statistics for the planner after a bulk load, and on PostgreSQL the visibility map too
    (index-only scans), as autovacuum would leave them in production."""
    pg = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        if pg:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE" if pg else "ANALYZE"))
        if not pg:
            await conn.commit()


async def fresh_engine(url: str) -> AsyncEngine:
    """An engine on a migrated database; PostgreSQL's public schema is recreated first."""
    engine = store.create_engine(url)
    if url.startswith("postgresql"):
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await store.upgrade(engine)
    return engine


def series(pg: bool, n: int) -> str:
    """A FROM clause yielding x = 1..n."""
    if pg:
        return f"generate_series(1, {n}) AS s(x)"
    return (f"(WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq "
            f"WHERE x < {n}) SELECT x FROM seq) AS s")


def timestamp(pg: bool, start: str, days: str, seconds: str) -> str:
    """A naive UTC timestamp `days` days and `seconds` seconds after the date `start`."""
    if pg:
        return (f"(TIMESTAMP '{start}' + ({days}) * INTERVAL '1 day' "
                f"+ ({seconds}) * INTERVAL '1 second')")
    return (f"(strftime('%Y-%m-%d %H:%M:%S', '{start}', '+' || ({days}) || ' days', "
            f"'+' || ({seconds}) || ' seconds') || '.000000')")


async def triggers_off(conn: AsyncConnection, pg: bool) -> list[Any]:
    """Hold the row triggers that keep points_total off for this transaction (on SQLite
    dropped; their stored DDL is returned for `triggers_on`)."""
    if pg:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        return []
    triggers = list((await conn.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))).all())
    for name, _ in triggers:
        await conn.execute(text(f"DROP TRIGGER {name}"))
    return triggers


async def triggers_on(conn: AsyncConnection, triggers: list[Any]) -> None:
    """Rebuild points_total, points_scope_count and subtree_figure set-based and put back what
    `triggers_off` dropped."""
    await conn.execute(text("DELETE FROM points_total"))
    await conn.execute(text(points.REBUILD_TOTALS))
    await conn.execute(text("DELETE FROM points_scope_count"))
    await conn.execute(text(points.REBUILD_SCOPE_COUNTS))
    await conn.execute(text("DELETE FROM subtree_figure"))
    await conn.execute(text(stats.REBUILD_FIGURES))
    for _, sql in triggers:
        await conn.execute(text(sql))


async def reset_sequences(conn: AsyncConnection, tables: tuple[str, ...]) -> None:
    """On PostgreSQL: move the id sequences past the rows written with explicit ids."""
    for table in tables:
        await conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT MAX(id) FROM {table}))"))


async def server_pid(session: AsyncSession) -> int | None:
    """The PostgreSQL backend serving this session (None on SQLite)."""
    if session.bind.dialect.name != "postgresql":
        return None
    return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) a local PostgreSQL backend has used so far, from /proc;
    None when it is not on this machine (or on SQLite, whose work is this process's)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def database_cpu(conn: AsyncConnection) -> float | None:
    """CPU seconds used so far by every local PostgreSQL backend of this connection's
    database (the bot's pool and this connection); None on SQLite or when not local."""
    if conn.dialect.name != "postgresql":
        return None
    pids = (await conn.execute(text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))).scalars()
    total = 0.0
    for pid in pids:
        used = server_cpu(int(pid))
        if used is None:
            return None
        total += used
    return total


class LoopLag:
    """A ticker on the event loop: how late each 1 ms sleep wakes (a blocked loop wakes late)."""

    def __init__(self, period: float = 0.001):
        self.period = period
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.period)
            self.samples.append((time.perf_counter() - t - self.period) * 1000)

    def start(self) -> None:
        self.samples.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
