"""Locks on a name, held until the transaction ends: PostgreSQL's transaction-level advisory
locks. A check-then-write that no unique constraint protects takes the lock of what it checks
first, so two transactions at once (the pipelines of two `tierbot run` processes on one
database; bench/LANES.md) cannot both pass the check: the second waits, and its check, a later
statement, sees what the first wrote. SQLite needs none: one writer at a time.

A lock is its own statement, before the first read it protects (under READ COMMITTED a
statement sees what was committed when it began, so a wait inside the read itself would not
do). Keys name their kind first: "mobile:<blind index>", "shop-day:<node>:<day>", …

Every named lock is taken under the `bulk` lock, shared (`tierbot_lock`, migration
0023_bulk_lock), which a bulk writer takes exclusive (`hold_bulk`): `tierbot chain import`
looks people up by mobile and creates them, so while it runs no check in chat may run beside
it; it waits for those running to end, and those that come meanwhile wait for it.
"""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.hot import Hot

_LOCK = Hot(select(func.tierbot_lock(bindparam("key", type_=String))))
_BULK = Hot(select(func.tierbot_bulk_lock()))


async def hold(session: AsyncSession, key: str) -> None:
    """Take `key`'s lock for the rest of the transaction (waiting while another holds it, or
    while a bulk writer holds `bulk`)."""
    if session.bind.dialect.name == "postgresql":
        await _LOCK.rows(session, {"key": key})


async def hold_bulk(session: AsyncSession) -> None:
    """Take `bulk` exclusive for the rest of the transaction: once every transaction holding
    a named lock (or a figure trigger's person lock) has ended, none runs beside this one.
    Take it before anything else: a transaction that waits for it holding other locks could
    meet one that waits for those."""
    if session.bind.dialect.name == "postgresql":
        await _BULK.rows(session, {})
