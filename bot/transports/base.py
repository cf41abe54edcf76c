"""The transport seam: one inbound model and one small protocol every chat platform implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message seen in a room, as every transport reports it."""

    transport: str
    message_id: str
    room_id: str
    sender_id: str
    sender_name: str
    text: str
    at: datetime
    mentions_bot: bool = False
    is_self: bool = False
    # The bot account (for several accounts) that saw the message; "" when there is only one.
    account: str = ""
    # The room's topic as the platform shows it: a label for new bindings, never an identity.
    room_topic: str = ""
    mention_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What a transport reports back after sending: the platform's id of the sent message."""

    message_id: str


class TransportError(Exception):
    """A send failed; `rate_limited` says the platform asked us to slow down, `not_sent` that
    the message certainly did not leave (e.g. no connection), so it costs no attempt."""

    def __init__(self, message: str, *, rate_limited: bool = False, retryable: bool = True,
                 not_sent: bool = False):
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retryable = retryable
        self.not_sent = not_sent


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """Something happened to a room: the bot left or was removed, it was renamed, or another
    member left it (where the platform reports that)."""

    transport: str
    room_id: str
    # "left" (the bot is no longer a member), "renamed", or "member_left" (someone else left)
    kind: str
    at: datetime
    account: str = ""
    old_topic: str = ""
    new_topic: str = ""
    # "member_left": the contact id (and display name, if known) of who left.
    member_id: str = ""
    member_name: str = ""


@dataclass(frozen=True, slots=True)
class AccountState:
    """How one bot account's connection stands (paused-until lives in the sender's table)."""

    name: str
    connected: bool
    logged_in_as: str = ""
    last_error: str = ""
    since: datetime | None = None


InboundHandler = Callable[[IncomingMessage], Awaitable[None]]
RoomEventHandler = Callable[[RoomEvent], Awaitable[None]]


@runtime_checkable
class Transport(Protocol):
    """A chat platform as the bot sees it."""

    name: str

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        """Connect and start delivering inbound messages (the bot's own echoes included)
        and room events."""

    async def stop(self) -> None:
        """Disconnect; no more messages are delivered after this returns."""

    async def send(
        self, room_id: str, text: str, *, mentions: Sequence[str] = (), account: str = ""
    ) -> SentMessage:
        """Send text to a room, optionally mentioning contacts; raise TransportError on failure."""

    def account_states(self) -> list[AccountState]:
        """The state of each bot account this transport drives."""
