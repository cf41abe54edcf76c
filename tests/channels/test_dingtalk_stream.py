"""DingTalk Stream mode: the SDK's ChatbotMessage mapped to the pipeline's model, and the
source against a fake DingTalk gateway on 127.0.0.1 (the connections/open POST that checks
the app's credentials and hands out a one-time ticket, then the websocket that pushes robot
callbacks and reads the acks): group messages reach the pipeline once even when delivered
twice, everything else is acked and dropped, a failing pipeline asks for redelivery, a
wrong secret or a dropped connection is survived, and the secret shows nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from dingtalk_stream import ChatbotMessage

from bot.app import BotApp
from bot.channels.base import InboundSource
from bot.channels.dingtalk_stream import DingTalkStreamSource, to_incoming
from bot.config import ConfigError, SourceSettings
from bot.services import credential
from bot.transports.base import IncomingMessage
from models import InboundMessage
from tests.channels.stream_fakes import Inbox, serving
from tests.conftest import count

CLIENT_ID = "dingabc123"
SECRET = "s3cr3t-" + "x" * 40
ROBOT_ID = "$:LWCP_v1:$robotRobotRobot=="


def robot_payload(**over: Any) -> dict[str, Any]:
    """A robot message as DingTalk sends it (fields as its docs show them), in a group."""
    payload: dict[str, Any] = {
        "conversationId": "cidGroupAAAA4g=",
        "atUsers": [{"dingtalkId": ROBOT_ID}],
        "chatbotCorpId": "ding9f50b15bccd16741",
        "chatbotUserId": ROBOT_ID,
        "msgId": "msgY" + uuid.uuid4().hex + "==",
        "senderNick": "李卫东",
        "isAdmin": False,
        "senderStaffId": "0421547726297",
        "sessionWebhookExpiredTime": 1_695_289_035_996,
        "createAt": 1_695_283_635_765,
        "senderCorpId": "ding9f50b15bccd16741",
        "conversationType": "2",
        "senderId": "$:LWCP_v1:$senderSender==",
        "conversationTitle": "长春社区工作群",
        "isInAtList": True,
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=79b4",
        "robotCode": "dingabc123",
        "msgtype": "text",
        "text": {"content": " 收到 #12"},
    }
    payload.update(over)
    return payload


def test_a_group_message_maps_to_the_pipelines_model():
    message = ChatbotMessage.from_dict(robot_payload(
        atUsers=[{"dingtalkId": ROBOT_ID}, {"dingtalkId": "$:LWCP_v1:$other==",
                                            "staffId": "0999"}]))
    incoming = to_incoming(message, account="dt-app")
    assert incoming == IncomingMessage(
        transport="dingtalk", message_id=message.message_id, room_id="cidGroupAAAA4g=",
        sender_id="0421547726297", sender_name="李卫东", text="收到 #12",
        at=datetime(2023, 9, 21, 8, 7, 15, 765000, tzinfo=UTC), mentions_bot=True,
        account="dt-app", room_topic="长春社区工作群", mention_ids=("0999",))


@pytest.mark.parametrize(("over", "why"), [
    ({"conversationType": "1"}, "a private chat"),
    ({"msgtype": "picture", "content": {"downloadCode": "x"}}, "no text"),
    ({"text": {"content": "   "}}, "blank"),
    ({"msgId": ""}, "no message id"),
    ({"conversationId": ""}, "no room"),
])
def test_what_the_pipeline_does_not_take(over, why):
    payload = robot_payload(**over)
    if "msgtype" in over:
        payload.pop("text")
    assert to_incoming(ChatbotMessage.from_dict(payload)) is None, why


def test_the_sender_is_the_staff_id_or_else_the_dingtalk_id():
    payload = robot_payload(isInAtList=False)
    del payload["senderStaffId"]
    incoming = to_incoming(ChatbotMessage.from_dict(payload))
    assert incoming is not None
    assert incoming.sender_id == "$:LWCP_v1:$senderSender==" and not incoming.mentions_bot


def test_rich_text_gives_its_text():
    payload = robot_payload(msgtype="richText", content={"richText": [
        {"text": "收到"}, {"downloadCode": "img", "type": "picture"}, {"text": " #3"}]})
    payload.pop("text")
    incoming = to_incoming(ChatbotMessage.from_dict(payload))
    assert incoming is not None and incoming.text == "收到 #3"


# -- the fake gateway ------------------------------------------------------------------------

@dataclass
class FakeDingTalk:
    """connections/open and the stream websocket, as DingTalk runs them, on 127.0.0.1."""

    port: int = 0
    opens: list[dict[str, Any]] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    tickets: set[str] = field(default_factory=set)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    refused_tickets: int = 0
    ack_seen: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opens.append(body)
        if body.get("clientId") != CLIENT_ID or body.get("clientSecret") != SECRET:
            return web.json_response({"code": "InvalidAuthentication",
                                      "message": "鉴权失败"}, status=401)
        ticket = secrets.token_hex(16)
        self.tickets.add(ticket)
        return web.json_response({"endpoint": f"ws://127.0.0.1:{self.port}/connect",
                                  "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            self.refused_tickets += 1
            return web.Response(status=403)
        self.tickets.discard(ticket)    # one connection per ticket
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.acks.append(json.loads(msg.data))
                self.ack_seen.set()
        return ws

    async def push(self, data: dict[str, Any], *, kind: str = "CALLBACK",
                   topic: str = ChatbotMessage.TOPIC) -> str:
        """One frame on the newest connection; returns its message id."""
        message_id = uuid.uuid4().hex
        await self.sockets[-1].send_str(json.dumps({
            "specVersion": "1.0", "type": kind,
            "headers": {"appId": "app-1", "connectionId": "conn-1",
                        "contentType": "application/json", "messageId": message_id,
                        "time": "1695283635765", "topic": topic},
            "data": json.dumps(data)}))
        return message_id

    async def ack_for(self, message_id: str) -> dict[str, Any]:
        while True:
            for ack in self.acks:
                if ack["headers"].get("messageId") == message_id:
                    return ack
            self.ack_seen.clear()
            await asyncio.wait_for(self.ack_seen.wait(), 10)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    async with serving(fake, [("POST", "/v1.0/gateway/connections/open", fake.open),
                              ("GET", "/connect", fake.connect)]):
        yield fake


def _source(fake: FakeDingTalk, secret: str = SECRET) -> DingTalkStreamSource:
    return DingTalkStreamSource("dt-app", client_id=CLIENT_ID, client_secret=secret,
                                gateway=f"http://127.0.0.1:{fake.port}",
                                reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)


async def test_group_messages_reach_the_handler_and_are_acked(gateway: FakeDingTalk):
    source = _source(gateway)
    assert isinstance(source, InboundSource)
    inbox = Inbox()
    await source.start(inbox)
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        # The connection was asked for the robot topic with the app's credentials.
        assert gateway.opens[0]["subscriptions"] == [{"type": "CALLBACK",
                                                      "topic": ChatbotMessage.TOPIC}]
        payload = robot_payload()
        frame = await gateway.push(payload)
        ack = await gateway.ack_for(frame)
        assert ack["code"] == 200
        assert [m.message_id for m in inbox.messages] == [payload["msgId"]]
        assert inbox.messages[0].text == "收到 #12"
        # A private chat and a picture: acked (no redelivery), not passed on.
        for other in (robot_payload(conversationType="1"),
                      {k: v for k, v in robot_payload(msgtype="picture",
                                                      content={"downloadCode": "d"}).items()
                       if k != "text"}):
            assert (await gateway.ack_for(await gateway.push(other)))["code"] == 200
        # A malformed callback body: acked and logged, never retried for ever.
        assert (await gateway.ack_for(await gateway.push({"msgtype": "text"})))["code"] == 200
        assert len(inbox.messages) == 1
    finally:
        await source.stop()


async def test_a_failing_pipeline_asks_for_redelivery(gateway: FakeDingTalk):
    source = _source(gateway)
    inbox = Inbox()
    inbox.fail = True
    await source.start(inbox)
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        payload = robot_payload()
        ack = await gateway.ack_for(await gateway.push(payload))
        assert ack["code"] == 500
        inbox.fail = False      # DingTalk delivers it again
        assert (await gateway.ack_for(await gateway.push(payload)))["code"] == 200
        assert [m.message_id for m in inbox.messages] == [payload["msgId"]]
    finally:
        await source.stop()


async def test_a_message_delivered_twice_is_handled_once(bot: BotApp, gateway: FakeDingTalk):
    source = _source(gateway)
    await source.start(bot._submit)
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        payload = robot_payload()     # 收到 #12: a command (chatter is not recorded)
        for _ in range(2):
            await gateway.ack_for(await gateway.push(payload))
            await bot.idle()
        assert await count(bot, InboundMessage, InboundMessage.transport == "dingtalk") == 1
    finally:
        await source.stop()


async def test_pings_are_answered_and_a_disconnect_reconnects(gateway: FakeDingTalk):
    source = _source(gateway)
    await source.start(Inbox())
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        ping = await gateway.push({"opaque": "p-1"}, kind="SYSTEM", topic="ping")
        ack = await gateway.ack_for(ping)
        assert ack["code"] == 200 and json.loads(ack["data"]) == {"opaque": "p-1"}
        gateway.connected.clear()
        await gateway.push({"reason": "server restarting"}, kind="SYSTEM", topic="disconnect")
        await asyncio.wait_for(gateway.connected.wait(), 10)
        assert len(gateway.opens) == 2      # a new ticket for the new connection
        # The server closing the socket outright: reconnected as well.
        gateway.connected.clear()
        await gateway.sockets[-1].close()
        await asyncio.wait_for(gateway.connected.wait(), 10)
        assert len(gateway.opens) == 3 and gateway.refused_tickets == 0
    finally:
        await source.stop()


async def test_a_wrong_secret_keeps_trying_and_never_shows_the_secret(
        gateway: FakeDingTalk, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + "y" * 40
    source = _source(gateway, secret=wrong)
    await source.start(Inbox())
    try:
        while len(gateway.opens) < 3:
            await asyncio.sleep(0.05)
        assert not source.connected.is_set() and source.last_error == "ConnectionError"
        assert not gateway.sockets
    finally:
        await source.stop()
    assert wrong not in caplog.text and wrong not in repr(source)
    assert SECRET not in repr(_source(gateway))


async def test_stop_ends_the_connection_and_delivery(gateway: FakeDingTalk):
    source = _source(gateway)
    inbox = Inbox()
    await source.start(inbox)
    await asyncio.wait_for(gateway.connected.wait(), 10)
    await source.stop()
    assert not source.connected.is_set()
    ws = gateway.sockets[-1]
    for _ in range(100):
        if ws.closed:
            break
        await asyncio.sleep(0.02)
    assert ws.closed
    assert inbox.messages == []


async def test_frames_are_not_logged(gateway: FakeDingTalk, caplog: pytest.LogCaptureFixture):
    """Chat text may hold personal numbers: neither the SDK nor the source logs frames (the
    websockets library's DEBUG frame dumps pass the house's masking log filter)."""
    caplog.set_level(logging.DEBUG)
    source = _source(gateway)
    await source.start(Inbox())
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        await gateway.ack_for(await gateway.push({"p": "13812345678"}, kind="SYSTEM",
                                                 topic="ping"))
        await gateway.ack_for(await gateway.push(
            robot_payload(text={"content": "租客返回 王明 13812345678"})))
        # A topic nobody subscribed: the SDK answers nothing; the next frame shows it was read.
        await gateway.push({"x": "13812345678"}, topic="/v1.0/other")
        await gateway.ack_for(await gateway.push({}, kind="SYSTEM", topic="ping"))
    finally:
        await source.stop()
    assert "13812345678" not in caplog.text
    sdk = [r for r in caplog.records if r.name.startswith("bot.channels.dingtalk_stream")]
    assert all(r.levelno >= logging.ERROR for r in sdk if r.name.endswith(".sdk"))


async def test_a_configured_source_feeds_the_bot_with_its_stored_credential(
        bot: BotApp, gateway: FakeDingTalk, caplog: pytest.LogCaptureFixture):
    """[[sources]] + `channels add NAME --kind dingtalk_stream`: the app builds the source
    from the sealed credential and its messages reach the pipeline; stop ends them."""
    entry = SourceSettings(name="dt-app", kind="dingtalk_stream",
                           endpoint=f"http://127.0.0.1:{gateway.port}")
    bot.settings = bot.settings.model_copy(update={"sources": [entry]})
    with pytest.raises(ConfigError, match="channels add dt-app --kind dingtalk_stream"):
        await bot.load_channels()
    async with bot.session() as s, s.begin():
        await credential.store(s, name="dt-app", kind="feishu_ws",
                               fields={"app_id": "a", "app_secret": "b"}, now=bot.now())
    with pytest.raises(ConfigError, match="of kind 'feishu_ws'"):
        await bot.load_channels()
    async with bot.session() as s, s.begin():
        await credential.store(s, name="dt-app", kind="dingtalk_stream",
                               fields={"client_id": CLIENT_ID}, now=bot.now())
    with pytest.raises(ConfigError, match="lacks client_secret"):
        await bot.load_channels()
    async with bot.session() as s, s.begin():
        await credential.store(s, name="dt-app", kind="dingtalk_stream",
                               fields={"client_id": CLIENT_ID, "client_secret": SECRET},
                               now=bot.now())
    caplog.set_level(logging.DEBUG)
    await bot.load_channels()
    [source] = bot.sources
    await bot.start_sources()
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        assert gateway.opens[-1]["clientSecret"] == SECRET
        payload = robot_payload()
        assert (await gateway.ack_for(await gateway.push(payload)))["code"] == 200
        await bot.idle()
        assert await count(bot, InboundMessage, InboundMessage.transport == "dingtalk") == 1
    finally:
        await source.stop()
    assert SECRET not in caplog.text and SECRET not in repr(source)
