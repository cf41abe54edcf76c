"""Queueing texts for groups: handlers and jobs write rows, the sender delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Group, OutboxMessage


async def groups_of(session: AsyncSession, *, node_id: int) -> list[Group]:
    """The chat groups bound to a node."""
    return list((await session.execute(
        select(Group).where(Group.node_id == node_id).order_by(Group.id)
    )).scalars())


async def queue(
    session: AsyncSession, *, group_id: int, text: str, source: str, now: datetime,
    mentions: Sequence[str] = (),
) -> OutboxMessage:
    """Add one text for one group to the outbox (sent after the transaction commits)."""
    row = OutboxMessage(group_id=group_id, text=text, mentions=list(mentions), source=source,
                        created_at=now)
    session.add(row)
    await session.flush()
    return row


async def queue_to_node(
    session: AsyncSession, *, node_id: int, text: str, source: str, now: datetime,
    mentions: Sequence[str] = (),
) -> int:
    """Queue a text for every group bound to a node; returns how many rows were written."""
    groups = await groups_of(session, node_id=node_id)
    for group in groups:
        await queue(session, group_id=group.id, text=text, source=source, now=now,
                    mentions=mentions)
    return len(groups)
