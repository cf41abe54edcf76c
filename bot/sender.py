"""The outbox sender: claims pending rows, marks them sending, sends, marks them sent."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.transports.base import Transport, TransportError
from models import Group, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CLAIM_BATCH = 50


class OutboxSender:
    """Drains the outbox; nothing about a delivery lives only in memory."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], transport: Transport,
                 clock_now: Callable[[], datetime]):
        self.sessions = sessions
        self.transport = transport
        self.clock_now = clock_now
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def wake(self) -> None:
        """Something was queued: look at the outbox now."""
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until the outbox has nothing pending."""
        await self._idle.wait()

    async def run(self) -> None:
        """Forever: drain, then sleep until woken (or a minute, to pick up rows from elsewhere)."""
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("outbox drain failed")
                await asyncio.sleep(1)
                continue
            if not self._wake.is_set():
                self._idle.set()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=60)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Send every pending row; returns how many were sent."""
        sent = 0
        while True:
            async with self.sessions() as session, session.begin():
                rows = (await session.execute(
                    select(OutboxMessage, Group).join(Group, Group.id == OutboxMessage.group_id)
                    .where(OutboxMessage.status == OutboxStatus.PENDING)
                    .order_by(OutboxMessage.id).limit(CLAIM_BATCH)
                )).all()
            if not rows:
                return sent
            for row, group in rows:
                sent += await self._deliver(row.id, group)

    async def _deliver(self, row_id: int, group: Group) -> int:
        attempt = str(uuid.uuid4())
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENDING, attempt_id=attempt,
                        attempt_at=self.clock_now(), attempts=OutboxMessage.attempts + 1)
                .returning(OutboxMessage.text, OutboxMessage.mentions, OutboxMessage.attempts))
            got = claimed.first()
        if got is None:
            return 0
        text, mentions, attempts = got
        try:
            await self.transport.send(group.room_id, text, mentions=mentions or (),
                                      account=group.account)
        except TransportError as exc:
            final = attempts >= MAX_ATTEMPTS or not exc.retryable
            log.warning("send of outbox row %d failed (attempt %d): %s", row_id, attempts, exc)
            await self._mark(row_id, OutboxStatus.FAILED if final else OutboxStatus.PENDING,
                             error=str(exc))
            return 0
        await self._mark(row_id, OutboxStatus.SENT)
        return 1

    async def _mark(self, row_id: int, status: OutboxStatus, *, error: str | None = None) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                    status=status, error=error,
                    sent_at=self.clock_now() if status == OutboxStatus.SENT else None))
