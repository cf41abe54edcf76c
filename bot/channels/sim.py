"""SimOfficialChannel: an official group robot in memory, for the demo and the tests. It
records every payload, answers with scripted outcomes (delivered by default), and takes the
capabilities and limits it is given; with `receive`, the demo's simulated chat shows its
groups' typed messages to the bot (see bot/demo)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.channels.base import (
    Capabilities,
    Limits,
    OutboundChannel,
    Outcome,
    Payload,
    Rendering,
    SendResult,
    platform_limits,
)
from bot.channels.render import text_payloads

KIND = "sim_official"
# A WeCom-like robot: it posts (mentions, markdown) but sees nothing of its group.
DEFAULT_CAPABILITIES = Capabilities(receive=False, ack_in_chat=False, mention_user=True,
                                    mention_all=True, markdown=True, cards=False)
DEFAULT_LIMITS = platform_limits("sim_official")


@dataclass(frozen=True, slots=True)
class SimSent:
    """One payload the simulated platform accepted."""

    room_id: str
    payload: Payload
    message_id: str

    @property
    def text(self) -> str:
        return str(self.payload.body["text"])


Step = SendResult | BaseException | Callable[[str, Payload], SendResult]
Printer = Callable[[str, str, str], None]


class SimOfficialChannel:
    """An in-memory official channel (constructor as the adapters' KINDS agree)."""

    kind = KIND

    def __init__(self, name: str, credential: Mapping[str, str] | None = None, *,
                 limits: Limits | None = None, keyword: str = "", base_url: str | None = None,
                 client: Any = None, capabilities: Capabilities | None = None):
        self.name = name
        self.capabilities = capabilities or DEFAULT_CAPABILITIES
        self.limits = limits or DEFAULT_LIMITS
        self.keyword = keyword
        # Outcomes to answer with, first come first used; delivered once they run out.
        self.script: deque[Step] = deque()
        self.sent: list[SimSent] = []
        # Every send asked for, delivered or not: (room, payload, result).
        self.attempts: list[tuple[str, Payload, SendResult]] = []
        self.printer: Printer | None = None
        self._ids = itertools.count(1)
        # Never kept: a credential is only checked for presence, like a platform would.
        self.has_credential = bool(credential)

    def __repr__(self) -> str:
        return f"SimOfficialChannel(name={self.name!r})"

    def render(self, rendering: Rendering) -> list[Payload]:
        """Split within the byte limit, tag on every part, the keyword added where missing."""
        return text_payloads(rendering, max_bytes=self.limits.max_body_bytes,
                             keyword=self.keyword)

    def then(self, *steps: Step) -> SimOfficialChannel:
        """Answer the next sends with these (a SendResult, an exception to raise, or a
        function of (room, payload))."""
        self.script.extend(steps)
        return self

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        """Deliver (record) the payload, or answer with the next scripted step."""
        step: Step = self.script.popleft() if self.script else SendResult(Outcome.DELIVERED)
        if isinstance(step, BaseException):
            raise step
        result = step(room_id, payload) if callable(step) else step
        if result.outcome in (Outcome.DELIVERED, Outcome.UNKNOWN):
            # UNKNOWN as a timeout after the request left: the platform did post it.
            message_id = f"sim-official-{next(self._ids)}"
            self.sent.append(SimSent(room_id, payload, message_id))
            if self.printer is not None:
                self.printer(self.name, room_id, str(payload.body["text"]))
            if result.outcome is Outcome.DELIVERED and not result.message_id:
                result = SendResult(Outcome.DELIVERED, message_id=message_id)
        self.attempts.append((room_id, payload, result))
        return result

    def texts(self, room_id: str | None = None) -> list[str]:
        """The texts posted (to one room, or anywhere)."""
        return [s.text for s in self.sent if room_id is None or s.room_id == room_id]


KINDS: dict[str, Callable[..., OutboundChannel]] = {KIND: SimOfficialChannel}
