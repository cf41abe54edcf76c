"""Dump a test database the way an attacker with a copy would read it: SQLite's `iterdump`,
PostgreSQL's `pg_dump` (or, without it, every text-like column of every table)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot import store

# What a full number looks like in a dump, however it got there (not a run of digits inside a
# hex digest or a base64 ciphertext).
FULL_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")
FULL_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def _sqlite(url: str) -> str:
    path = make_url(url).database
    assert path
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


async def _select_everything(url: str) -> str:
    engine = store.create_engine(url)
    try:
        async with engine.connect() as conn:
            columns = (await conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"))).all()
            out = []
            for table, column in columns:
                rows = await conn.execute(text(f'SELECT "{column}"::text FROM "{table}"'))
                out.extend(str(v) for (v,) in rows if v is not None)
            return "\n".join(out)
    finally:
        await engine.dispose()


def _postgres(url: str) -> str:
    parsed = make_url(url)
    if shutil.which("pg_dump") is None:
        return asyncio.run(_select_everything(url))
    env = {**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})}
    result = subprocess.run(
        ["pg_dump", "--no-owner", "-h", parsed.host or "127.0.0.1", "-p",
         str(parsed.port or 5432), "-U", parsed.username or "postgres", parsed.database or ""],
        capture_output=True, text=True, env=env, check=True, timeout=120)
    return result.stdout


def dump(url: str) -> str:
    """The whole database as text (schema and rows)."""
    return _sqlite(url) if url.startswith("sqlite") else _postgres(url)


async def dump_async(url: str) -> str:
    """dump() from async code (the subprocess and the sqlite3 read off the event loop)."""
    return await asyncio.to_thread(dump, url)
