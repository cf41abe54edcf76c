"""Limits on guessing invite codes: a few wrong codes per contact per hour, then silence."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import locks
from models import InviteAttempt
from models.base import insert_for

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)


async def silenced_until(session: AsyncSession, *, transport: str, contact_id: str,
                         now: datetime, limit: int) -> datetime | None:
    """When this contact may try codes again (None: now). After `limit` wrong codes within an
    hour, nothing it sends as a code is checked or answered until an hour after the first.
    Asked under the contact's lock (bot.services.locks): codes it posts in several groups at
    once are counted one after the other, not each against the same count."""
    await locks.hold(session, f"invite-guess:{transport}:{contact_id}")
    rows = list((await session.execute(
        select(InviteAttempt.at).where(
            InviteAttempt.transport == transport, InviteAttempt.contact_id == contact_id,
            InviteAttempt.at > now - WINDOW)
        .order_by(InviteAttempt.at))).scalars())
    if len(rows) < limit:
        return None
    return rows[-limit] + WINDOW


async def record_wrong_code(session: AsyncSession, *, transport: str, contact_id: str,
                            message_id: str, now: datetime, limit: int) -> datetime | None:
    """Count one wrong code (once per message); returns when the contact may try again if
    this one used up its tries."""
    insert = insert_for(session)
    await session.execute(insert(InviteAttempt).values(
        transport=transport, contact_id=contact_id, message_id=message_id, at=now)
        .on_conflict_do_nothing(index_elements=["transport", "message_id"]))
    until = await silenced_until(session, transport=transport, contact_id=contact_id, now=now,
                                 limit=limit)
    if until is not None:
        log.warning("contact %s:%s sent %d wrong invite codes within an hour: "
                    "codes are ignored until %s", transport, contact_id, limit,
                    until.isoformat())
    return until
