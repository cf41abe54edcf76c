"""The simulated chat of the demo: the in-memory platform, printing what the bot says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.transports.base import SentMessage
from bot.transports.memory import MemoryTransport

Printer = Callable[[str, str, Sequence[str]], None]


class SimTransport(MemoryTransport):
    """A MemoryTransport named 'sim' whose sends are shown to the console user as they happen."""

    def __init__(self, *, now: Callable[[], datetime] | None = None):
        super().__init__("sim", bot_id="sim-bot", now=now)
        self.printer: Printer | None = None

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        sent = await super().send(room_id, text, mentions=mentions, account=account)
        if self.printer is not None:
            self.printer(room_id, text, mentions)
        return sent
