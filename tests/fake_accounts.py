"""A memory platform with several sending accounts, each of which a test can disconnect, ban
(mid-broadcast: the send in hand goes out, its answer is lost), or silence (no echoes)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.transports.base import AccountState, SentMessage, TransportError
from bot.transports.memory import MemoryTransport


class Accounts(MemoryTransport):
    """Like MemoryTransport, with per-account faults and states."""

    def __init__(self, name: str = "sim", *, bot_id: str = "sim-bot",
                 names: Sequence[str] = ("wx-a", "wx-b", "official")):
        super().__init__(name, bot_id=bot_id)
        self.names = list(names)
        # account -> the gateway's last error while it is disconnected.
        self.down: dict[str, str] = {}
        # Accounts whose sends the platform does not echo back.
        self.mute: set[str] = set()
        # account -> sends that still succeed before it is banned; the send that meets the
        # ban went out (and echoed) but its answer is lost.
        self.ban_after: dict[str, int] = {}

    async def send(self, room_id: str, text: str, *, mentions: Sequence[str] = (),
                   account: str = "") -> SentMessage:
        if account in self.down:
            raise TransportError(f"not connected ({self.down[account]})", not_sent=True)
        left = self.ban_after.get(account)
        if left is not None:
            if left == 0:
                del self.ban_after[account]
                self.down[account] = "账号被封禁 (banned)"
                await self._send(room_id, text, mentions, account)
                raise TransportError("connection reset by peer", retryable=True)
            self.ban_after[account] = left - 1
        return await self._send(room_id, text, mentions, account)

    async def _send(self, room_id: str, text: str, mentions: Sequence[str], account: str
                    ) -> SentMessage:
        echoes, self.echoes = self.echoes, account not in self.mute
        try:
            return await super().send(room_id, text, mentions=mentions, account=account)
        finally:
            self.echoes = echoes

    def account_states(self) -> list[AccountState]:
        return [AccountState(name=n, connected=n not in self.down, logged_in_as=f"{n}-self",
                             last_error=self.down.get(n, "")) for n in self.names]

    def sent_by(self, account: str) -> list[str]:
        """The texts one account sent."""
        return [s.text for s in self.sent if s.account == account]
