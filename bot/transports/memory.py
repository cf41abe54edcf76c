"""An in-memory chat platform: tests and benchmarks inject messages and read what the bot sent."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.transports.base import (
    AccountState,
    InboundHandler,
    IncomingMessage,
    RoomEvent,
    RoomEventHandler,
    SentMessage,
    TransportError,
)


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the bot sent."""

    room_id: str
    text: str
    mentions: tuple[str, ...]
    account: str
    message_id: str


class MemoryTransport:
    """Records sends and, like a Wechaty puppet, echoes each back as the bot's own message."""

    def __init__(self, name: str = "memory", *, bot_id: str = "bot",
                 now: Callable[[], datetime] | None = None):
        self.name = name
        self.bot_id = bot_id
        self.sent: list[Sent] = []
        self.echoes = True
        # Errors to raise on the next sends (tests of retries and rate limits).
        self.fail_next: list[TransportError] = []
        self._now = now or (lambda: datetime.now(UTC))
        self._on_message: InboundHandler | None = None
        self._on_event: RoomEventHandler | None = None
        self._ids = itertools.count(1)

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        self._on_message = on_message
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_message = None

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        if self.fail_next:
            raise self.fail_next.pop(0)
        message_id = f"{self.name}-out-{next(self._ids)}"
        self.sent.append(Sent(room_id, text, tuple(mentions), account, message_id))
        if self.echoes and self._on_message is not None:
            await self._on_message(IncomingMessage(
                transport=self.name, message_id=message_id, room_id=room_id,
                sender_id=self.bot_id, sender_name="bot", text=text, at=self._now(),
                is_self=True, account=account))
        return SentMessage(message_id)

    def account_states(self) -> list[AccountState]:
        """One always-connected account per distinct account name seen in sends (or one)."""
        names = sorted({s.account for s in self.sent} | {""})
        return [AccountState(name=n, connected=self._on_message is not None,
                             logged_in_as=self.bot_id) for n in names]

    async def inject(self, message: IncomingMessage) -> None:
        """Deliver a message as if someone wrote it on the platform."""
        if self._on_message is None:
            raise RuntimeError("transport not started")
        await self._on_message(message)

    async def room_event(self, event: RoomEvent) -> None:
        """Deliver a room event (the bot removed from a room, a room renamed, a member left)."""
        if self._on_event is not None:
            await self._on_event(event)

    async def member_left(self, room_id: str, member_id: str, *, member_name: str = "") -> None:
        """Deliver the event of a member (not the bot) leaving or being removed from a room."""
        await self.room_event(RoomEvent(transport=self.name, room_id=room_id,
                                        kind="member_left", at=self._now(),
                                        member_id=member_id, member_name=member_name))

    def message(self, room_id: str, sender_id: str, text: str, *, sender_name: str = "",
                message_id: str | None = None, mentions_bot: bool = False,
                room_topic: str = "") -> IncomingMessage:
        """Build an inbound message with a fresh id (or the given one, to redeliver)."""
        return IncomingMessage(
            transport=self.name, message_id=message_id or f"{self.name}-in-{next(self._ids)}",
            room_id=room_id, sender_id=sender_id, sender_name=sender_name or sender_id,
            text=text, at=self._now(), mentions_bot=mentions_bot, room_topic=room_topic)
