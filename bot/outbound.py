"""The one way out: every text the bot sends passes one masking step at the transport, and
texts stored for sending (notices, schedules, outbox rows) are masked when they are written,
so what is stored, digested for echo matching and sent is the same text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event

from bot import pii
from bot.transports.base import (
    AccountState,
    InboundHandler,
    RoomEventHandler,
    SentMessage,
    Transport,
)
from models import Notice, NoticeSchedule, OutboxMessage

__all__ = ["MaskingTransport", "mask_outbound"]


def mask_outbound(text: str) -> str:
    """The outbound masking step (idempotent: masking a masked text changes nothing)."""
    return pii.mask_text(text)


class MaskingTransport:
    """A transport whose sends are masked; everything else is the wrapped transport's."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        """Start the wrapped transport."""
        await self.inner.start(on_message, on_event)

    async def stop(self) -> None:
        """Stop the wrapped transport."""
        await self.inner.stop()

    def account_states(self) -> list[AccountState]:
        """The wrapped transport's accounts."""
        return self.inner.account_states()

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        """Send the masked text."""
        return await self.inner.send(room_id, mask_outbound(text), mentions=mentions,
                                     account=account)

    async def find_echo(self, room_id: str, text: str, since: datetime) -> datetime | None:
        """The platform saw the masked text, so that is what to look for."""
        find = getattr(self.inner, "find_echo", None)
        if find is None:
            return None
        found: datetime | None = await find(room_id, mask_outbound(text), since)
        return found


def _mask_text_attribute(_mapper: Any, _connection: Any, target: Any) -> None:
    if getattr(target, "text", None):
        target.text = mask_outbound(target.text)


# ORM writes of texts meant for groups are masked however a feature writes them.
for _model in (Notice, NoticeSchedule, OutboxMessage):
    event.listen(_model, "before_insert", _mask_text_attribute)
    event.listen(_model, "before_update", _mask_text_attribute)
