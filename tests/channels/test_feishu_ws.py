"""Feishu's long connection: im.message.receive_v1 through the SDK's own EventDispatcherHandler
and P2ImMessageReceiveV1, mapped to the pipeline's model; and the source against a fake Feishu
on 127.0.0.1 (the endpoint POST that checks the app's credentials, then the websocket speaking
the SDK's protobuf frames): an event reaches the pipeline once even when delivered twice and
is answered 200, a failing pipeline is answered 500 (Feishu redelivers), a wrong secret never
connects, and the secret shows nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lark_oapi as lark
import pytest
from aiohttp import WSMsgType, web
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from bot.app import BotApp
from bot.channels.base import InboundSource
from bot.channels.feishu_ws import FeishuWsSource, to_incoming
from bot.transports.base import IncomingMessage
from models import InboundMessage
from tests.channels.stream_fakes import Inbox, serving
from tests.conftest import count

APP_ID = "cli_a1b2c3d4e5f6"
SECRET = "fs-secret-" + "z" * 30
BOT = "ou_bot0000000000000000000000000"
SENDER = "ou_84aad35d084aa403a838cf73ee18467"


def event(*, text: str = "@_user_1 收到 #12", chat_type: str = "group",
          message_type: str = "text", content: Any = None,
          mentions: list[dict[str, Any]] | None = None, message_id: str | None = None
          ) -> dict[str, Any]:
    """An im.message.receive_v1 event as Feishu sends it (schema 2.0)."""
    if mentions is None:
        mentions = [{"key": "@_user_1", "id": {"union_id": "on_bot", "user_id": "",
                                               "open_id": BOT},
                     "name": "网格通知机器人", "tenant_key": "736588c9260f175e"}]
    return {
        "schema": "2.0",
        "header": {"event_id": uuid.uuid4().hex, "event_type": "im.message.receive_v1",
                   "create_time": "1609073151345", "token": "", "app_id": APP_ID,
                   "tenant_key": "736588c9260f175e"},
        "event": {
            "sender": {"sender_id": {"union_id": "on_8ed6aa67826108097d9ee143816345",
                                     "user_id": "e33ggbyz", "open_id": SENDER},
                       "sender_type": "user", "tenant_key": "736588c9260f175e"},
            "message": {"message_id": message_id or f"om_{uuid.uuid4().hex}",
                        "root_id": "", "parent_id": "", "create_time": "1609073151345",
                        "chat_id": "oc_5ce6d572455d361153b7cb51da133945",
                        "chat_type": chat_type, "message_type": message_type,
                        "content": json.dumps(content if content is not None
                                              else {"text": text}, ensure_ascii=False),
                        "mentions": mentions},
        },
    }


def sdk_event(data: dict[str, Any]) -> Any:
    return lark.JSON.unmarshal(json.dumps(data), lark.im.v1.P2ImMessageReceiveV1)


def test_a_group_message_maps_to_the_pipelines_model():
    data = event(text="@_user_1 收到 #12 @_user_2", mentions=[
        *event()["event"]["message"]["mentions"],
        {"key": "@_user_2", "id": {"union_id": "on_x", "user_id": "u2", "open_id": "ou_x"},
         "name": "吴海峰", "tenant_key": "t"}])
    incoming = to_incoming(sdk_event(data), account="fs-app", bot_open_id=BOT)
    assert incoming == IncomingMessage(
        transport="feishu", message_id=data["event"]["message"]["message_id"],
        room_id="oc_5ce6d572455d361153b7cb51da133945", sender_id=SENDER, sender_name="",
        text="收到 #12 @吴海峰", at=datetime(2020, 12, 27, 12, 45, 51, 345000, tzinfo=UTC),
        mentions_bot=True, account="fs-app", mention_ids=("ou_x",))


def test_a_bot_mention_is_known_by_its_type_without_the_bots_open_id():
    data = event()
    data["event"]["message"]["mentions"][0]["mentioned_type"] = "bot"
    incoming = to_incoming(sdk_event(data))
    assert incoming is not None and incoming.mentions_bot and incoming.text == "收到 #12"


def test_a_rich_text_post_gives_its_text():
    post = {"zh_cn": {"title": "", "content": [
        [{"tag": "at", "user_id": "@_user_1", "user_name": "网格通知机器人"},
         {"tag": "text", "text": " 收到 "}, {"tag": "text", "text": "#5"}],
        [{"tag": "img", "image_key": "img_x"}]]}}
    incoming = to_incoming(sdk_event(event(message_type="post", content=post)),
                           bot_open_id=BOT)
    assert incoming is not None and incoming.text == "收到 #5" and incoming.mentions_bot


@pytest.mark.parametrize(("data", "why"), [
    (event(chat_type="p2p"), "a one-to-one chat"),
    (event(message_type="image", content={"image_key": "img_v2_x"}), "no text"),
    (event(text="@_user_1 "), "only the mention"),
    (event(message_type="text", content="not json at all"), "content not an object"),
])
def test_what_the_pipeline_does_not_take(data, why):
    if why == "content not an object":
        data["event"]["message"]["content"] = "{not json"
    assert to_incoming(sdk_event(data), bot_open_id=BOT) is None, why


def test_the_sdks_dispatcher_calls_the_source_with_its_own_event_object():
    """The payload through EventDispatcherHandler as the SDK's websocket client feeds it."""
    source = FeishuWsSource("fs-app", app_id=APP_ID, app_secret=SECRET, bot_open_id=BOT)
    seen: list[Any] = []
    source._on_receive = seen.append   # type: ignore[method-assign]
    dispatcher = (lark.EventDispatcherHandler.builder("", "")
                  .register_p2_im_message_receive_v1(lambda e: source._on_receive(e)).build())
    dispatcher._do_without_validation(json.dumps(event()).encode())
    [got] = seen
    assert isinstance(got, lark.im.v1.P2ImMessageReceiveV1)
    assert to_incoming(got, bot_open_id=BOT) is not None


# -- the fake Feishu -------------------------------------------------------------------------

@dataclass
class FakeFeishu:
    """The endpoint POST and the long connection, speaking the SDK's frames, on 127.0.0.1."""

    port: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append(body)
        if body.get("AppID") != APP_ID or body.get("AppSecret") != SECRET:
            return web.json_response({"code": 1000040345, "msg": "app secret invalid"})
        return web.json_response({"code": 0, "msg": "ok", "data": {
            "URL": f"ws://127.0.0.1:{self.port}/ws?device_id=d-1&service_id=7",
            "ClientConfig": {"ReconnectCount": 1, "ReconnectInterval": 1,
                             "ReconnectNonce": 0, "PingInterval": 120}}})

    async def ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connected.set()
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            frame = Frame()
            frame.ParseFromString(msg.data)
            if frame.method != 1:
                continue    # a ping
            headers = {h.key: h.value for h in frame.headers}
            self.answers[headers["message_id"]] = json.loads(frame.payload)
            self.answered.set()
        return ws

    async def push(self, data: dict[str, Any]) -> str:
        frame = Frame()
        frame.SeqID, frame.LogID, frame.service, frame.method = 1, 1, 7, 1
        message_id = uuid.uuid4().hex
        for key, value in (("type", "event"), ("message_id", message_id),
                           ("trace_id", "trace-1"), ("sum", "1"), ("seq", "0")):
            header = frame.headers.add()
            header.key, header.value = key, value
        frame.payload = json.dumps(data, ensure_ascii=False).encode()
        await self.sockets[-1].send_bytes(frame.SerializeToString())
        return message_id

    async def answer_to(self, message_id: str) -> dict[str, Any]:
        while message_id not in self.answers:
            self.answered.clear()
            await asyncio.wait_for(self.answered.wait(), 15)
        return self.answers[message_id]


@pytest.fixture
async def feishu() -> AsyncIterator[FakeFeishu]:
    fake = FakeFeishu()
    async with serving(fake, [("POST", "/callback/ws/endpoint", fake.endpoint),
                              ("GET", "/ws", fake.ws)]):
        yield fake


def _source(fake: FakeFeishu, secret: str = SECRET) -> FeishuWsSource:
    return FeishuWsSource("fs-app", app_id=APP_ID, app_secret=secret,
                          domain=f"http://127.0.0.1:{fake.port}", bot_open_id=BOT,
                          auto_reconnect=False)


async def test_events_reach_the_handler_and_are_answered(feishu: FakeFeishu):
    source = _source(feishu)
    assert isinstance(source, InboundSource)
    inbox = Inbox()
    await source.start(inbox)
    try:
        await asyncio.wait_for(feishu.connected.wait(), 15)
        data = event()
        answer = await feishu.answer_to(await feishu.push(data))
        assert answer["code"] == 200
        assert [m.message_id for m in inbox.messages] == [data["event"]["message"]["message_id"]]
        assert inbox.messages[0].text == "收到 #12" and inbox.messages[0].mentions_bot
        # A one-to-one chat: answered, not passed on.
        assert (await feishu.answer_to(await feishu.push(event(chat_type="p2p"))))["code"] == 200
        assert len(inbox.messages) == 1
        # A failing pipeline: answered 500, so Feishu delivers it again.
        inbox.fail = True
        again = event()
        assert (await feishu.answer_to(await feishu.push(again)))["code"] == 500
        inbox.fail = False
        assert (await feishu.answer_to(await feishu.push(again)))["code"] == 200
        assert len(inbox.messages) == 2
    finally:
        await source.stop()


async def test_an_event_delivered_twice_is_handled_once(bot: BotApp, feishu: FakeFeishu):
    source = _source(feishu)
    await source.start(bot._submit)
    try:
        await asyncio.wait_for(feishu.connected.wait(), 15)
        data = event()
        for _ in range(2):
            await feishu.answer_to(await feishu.push(data))
            await bot.idle()
        assert await count(bot, InboundMessage, InboundMessage.transport == "feishu") == 1
    finally:
        await source.stop()


async def test_a_wrong_secret_never_connects_nor_shows(feishu: FakeFeishu,
                                                      caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + "q" * 30
    source = _source(feishu, secret=wrong)
    await source.start(Inbox())
    try:
        while not feishu.posts:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert not feishu.sockets
    finally:
        await source.stop()
    assert wrong not in caplog.text and wrong not in repr(source)


async def test_stop_closes_the_long_connection(feishu: FakeFeishu):
    source = _source(feishu)
    await source.start(Inbox())
    await asyncio.wait_for(feishu.connected.wait(), 15)
    await source.stop()
    ws = feishu.sockets[-1]
    for _ in range(200):
        if ws.closed:
            break
        await asyncio.sleep(0.02)
    assert ws.closed
