"""The channel seam. An outbound channel is one sending credential (a WeChat account through
its puppet gateway, a WeCom/DingTalk/Feishu group robot's webhook, a Feishu app): it renders a
text into payloads within its platform's limits and sends one payload, classifying the result.
An inbound source yields `IncomingMessage`s (the pipeline's one inbound model).

Policy code (the sender, failover, 进度) branches on `Capabilities` and `Limits`, never on a
platform's name; `kind` is for configuration, logs and display only."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot.channels.limits import PLATFORM_LIMITS
from bot.transports.base import InboundHandler, RoomEventHandler


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do."""

    # Messages in its groups reach the bot (so 收到 and other commands work there).
    receive: bool
    # A member's 收到 in the group is seen (receive, and the platform reports who wrote it).
    ack_in_chat: bool
    mention_user: bool
    mention_all: bool
    markdown: bool
    cards: bool


@dataclass(frozen=True, slots=True)
class Limits:
    """How fast and how much one credential may send (the platform's published limits are
    the defaults; configuration may only lower them)."""

    per_minute: int
    per_second: int | None = None
    # Per group and second, where the platform limits that separately (Feishu app: 5).
    per_group_per_second: int | None = None
    # The largest body the platform accepts, in UTF-8 bytes of the message text.
    max_body_bytes: int = 2048
    # After a frequency error: send nothing on this credential for this long.
    penalty_seconds: float = 0.0
    # Seconds of each hour to keep clear (Feishu asks bots to avoid :00 and :30): pairs of
    # (start, end) second-of-hour ranges.
    avoid: tuple[tuple[int, int], ...] = ()


def platform_limits(kind: str) -> Limits:
    """A platform's published limits (bot/channels/limits.py), the adapters' defaults."""
    return Limits(**PLATFORM_LIMITS[kind])


class Outcome(enum.Enum):
    """How one send ended, as the sender needs to know it."""

    DELIVERED = "delivered"
    # Not delivered; try again after `retry_after` seconds (frequency limits, 5xx, timeouts
    # before the request was accepted).
    RETRY_AFTER = "retry_after"
    # Will never succeed as it is (bad key, robot removed, keyword missing, body too large
    # after splitting): a person must act; alert them.
    PERMANENT = "permanent"
    # May or may not have been delivered (timeout after the request left): reconcile by echo
    # where the channel receives, otherwise count it sent once.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    message_id: str = ""
    retry_after: float | None = None
    # The platform's error code as text ("45009", "130101", "http-429"), "" on success.
    code: str = ""
    # For logs and alerts; never holds a credential or a message body.
    detail: str = ""
    # The credential is rate-limited as a whole (pause it), not only this group.
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Payload:
    """One platform request body for one part of a text."""

    body: dict[str, Any]
    # UTF-8 bytes of the part's text as the platform counts it.
    size: int
    part: int = 1
    parts: int = 1


@dataclass(frozen=True, slots=True)
class Rendering:
    """How to render a text for a channel."""

    text: str
    mentions: Sequence[str] = ()
    mention_all: bool = False
    # The notice's tag (e.g. "【通知#12】"), kept at the head of every part.
    tag: str = ""
    markdown: bool = False


@runtime_checkable
class OutboundChannel(Protocol):
    """One sending credential."""

    # The binding's name in configuration and in `chat_group` bindings; also the pacing key.
    name: str
    # "wechat", "wecom_robot", "dingtalk_robot", "feishu_bot", "feishu_app", "sim_official".
    kind: str
    capabilities: Capabilities
    limits: Limits

    def render(self, rendering: Rendering) -> list[Payload]:
        """The text as payloads, split within `limits.max_body_bytes`, keyword and mentions
        applied as the platform needs them."""

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        """Send one payload to one room (for a group robot the room is its webhook: `room_id`
        may be ""). Never raises for a platform error: classify it."""


@runtime_checkable
class InboundSource(Protocol):
    """A place messages come from (a WeChat gateway, DingTalk Stream, Feishu's long
    connection), yielding the pipeline's inbound model."""

    name: str

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None: ...

    async def stop(self) -> None: ...


class Health(enum.Enum):
    OK = "ok"
    # Something is wrong but it may still send (no inbound for a while, a missing echo).
    DEGRADED = "degraded"
    # It cannot send: gateway unreachable, token rejected, banned, paused past the threshold.
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """What the watchdog concludes about one sending account or channel."""

    name: str
    health: Health
    # Machine-readable problems: "silent", "self_test_failed", "no_echo", "unreachable",
    # "token_rejected", "banned", "paused".
    problems: tuple[str, ...] = field(default=())
    since: datetime | None = None
    detail: str = ""
