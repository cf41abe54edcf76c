"""Locks on a name, held until the transaction ends: PostgreSQL's transaction-level advisory
locks. A check-then-write that no unique constraint protects takes the lock of what it checks
first, so two transactions at once (the pipelines of two `tierbot run` processes on one
database; bench/LANES.md) cannot both pass the check: the second waits, and its check, a later
statement, sees what the first wrote. SQLite needs none: one writer at a time.

A lock is its own statement, before the first read it protects (under READ COMMITTED a
statement sees what was committed when it began, so a wait inside the read itself would not
do). Keys name their kind first: "mobile:<blind index>", "shop-day:<node>:<day>", …
"""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.hot import Hot

_LOCK = Hot(select(func.pg_advisory_xact_lock(func.hashtextextended(
    bindparam("key", type_=String), 0))))


async def hold(session: AsyncSession, key: str) -> None:
    """Take `key`'s lock for the rest of the transaction (waiting while another holds it)."""
    if session.bind.dialect.name == "postgresql":
        await _LOCK.rows(session, {"key": key})
