"""A WeChat account as a channel: a thin wrapper over the transport's send for one account.

The sender keeps sending WeChat rows through the transport directly (today's Pacer with
[pacing]'s gap, jitter, caps and reserve, echo matching on the transport's text): this wrapper
is the account as policy code sees every channel (capabilities, limits, render, send), for
failover, health and anything that sends outside the outbox sender."""

from __future__ import annotations

from bot.channels.base import Capabilities, Limits, Outcome, Payload, Rendering, SendResult
from bot.config import PacingSettings
from bot.services import notice as notices
from bot.transports.base import Transport, TransportError

KIND = "wechat"
CAPABILITIES = Capabilities(receive=True, ack_in_chat=True, mention_user=True,
                            mention_all=False, markdown=False, cards=False)
# A Chinese character is three bytes: [pacing] split_at counts characters.
BYTES_PER_CHAR = 3


def limits_of(pacing: PacingSettings) -> Limits:
    """[pacing] as Limits (the Pacer applies the gap, jitter and caps themselves)."""
    gap = pacing.min_gap_seconds + pacing.jitter_seconds / 2
    per_minute = max(1, min(pacing.hourly_cap, int(60 / gap) if gap > 0 else pacing.hourly_cap))
    return Limits(per_minute=per_minute, max_body_bytes=pacing.split_at * BYTES_PER_CHAR,
                  penalty_seconds=pacing.pause_minutes * 60)


class WechatChannel:
    """One WeChat account of the transport."""

    kind = KIND
    capabilities = CAPABILITIES

    def __init__(self, name: str, transport: Transport, pacing: PacingSettings):
        self.name = name
        self.transport = transport
        self.pacing = pacing
        self.limits = limits_of(pacing)

    def __repr__(self) -> str:
        return f"WechatChannel(name={self.name!r})"

    def render(self, rendering: Rendering) -> list[Payload]:
        """As the sender renders a WeChat row: split at [pacing] split_at characters, (i/n)."""
        body = rendering.text
        room = self.pacing.split_at - len(rendering.tag) - 8
        chunks = notices.split_text(body, room)
        parts = ([rendering.tag + chunks[0]] if len(chunks) == 1 else
                 [f"{rendering.tag}({i}/{len(chunks)}){c}" for i, c in enumerate(chunks, 1)])
        return [Payload(body={"text": p, "mentions": list(rendering.mentions) if i == 1 else []},
                        size=len(p.encode()), part=i, parts=len(parts))
                for i, p in enumerate(parts, 1)]

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        """Send through the transport on this account, the error classified."""
        try:
            sent = await self.transport.send(room_id, str(payload.body["text"]),
                                             mentions=payload.body.get("mentions") or (),
                                             account=self.name)
        except TransportError as exc:
            if exc.not_sent:
                return SendResult(Outcome.RETRY_AFTER, retry_after=30.0, detail=str(exc)[:200])
            if exc.rate_limited:
                return SendResult(Outcome.RETRY_AFTER, retry_after=self.limits.penalty_seconds,
                                  rate_limited=True, detail=str(exc)[:200])
            if not exc.retryable:
                return SendResult(Outcome.PERMANENT, detail=str(exc)[:200])
            # The request may have left: WeChat echoes, so this is reconciled by echo.
            return SendResult(Outcome.UNKNOWN, detail=str(exc)[:200])
        return SendResult(Outcome.DELIVERED, message_id=sent.message_id)
