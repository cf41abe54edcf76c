"""A WeChat account as a channel: the transport's send on that account, its errors classified
as the sender's outcomes, limits from [pacing], rendering as the sender renders WeChat rows."""

from __future__ import annotations

import pytest

from bot.channels.base import OutboundChannel, Outcome, Rendering
from bot.channels.wechat import WechatChannel
from bot.config import PacingSettings
from bot.transports.base import TransportError
from bot.transports.memory import MemoryTransport


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport("sim", bot_id="sim-bot")


async def test_sends_on_its_account_and_classifies_errors(transport: MemoryTransport):
    channel = WechatChannel("main", transport, PacingSettings())
    assert isinstance(channel, OutboundChannel)
    [payload] = channel.render(Rendering(text="明早开会", mentions=("u1",), tag="【通知#1】"))
    assert (await channel.send("r@chatroom", payload)).outcome is Outcome.DELIVERED
    sent = transport.sent[-1]
    assert (sent.room_id, sent.text, sent.mentions, sent.account) == (
        "r@chatroom", "【通知#1】明早开会", ("u1",), "main")
    cases = [
        (TransportError("发送消息过于频繁", rate_limited=True), Outcome.RETRY_AFTER, True),
        (TransportError("no connection", not_sent=True), Outcome.RETRY_AFTER, False),
        (TransportError("room gone", retryable=False), Outcome.PERMANENT, False),
        (TransportError("timeout"), Outcome.UNKNOWN, False),
    ]
    for error, outcome, limited in cases:
        transport.fail_next.append(error)
        result = await channel.send("r@chatroom", payload)
        assert (result.outcome, result.rate_limited) == (outcome, limited)
    assert channel.limits.penalty_seconds == 30 * 60
    assert channel.capabilities.receive and channel.capabilities.ack_in_chat


def test_renders_like_the_sender_splits_wechat_rows(transport: MemoryTransport):
    channel = WechatChannel("main", transport, PacingSettings(split_at=100))
    parts = channel.render(Rendering(text="请各社区完成消毒。" * 30, tag="【通知#3】"))
    assert len(parts) > 1
    assert all(p.body["text"].startswith("【通知#3】(") for p in parts)
    assert all(len(p.body["text"]) <= 100 for p in parts)
