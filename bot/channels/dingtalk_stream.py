"""DingTalk app robot over Stream mode (`dingtalk-stream`): an InboundSource, so that 收到, 进度
and the other commands work in staff groups on DingTalk. The only dingtalk_stream import.

Stream mode: a POST to the gateway's connections/open with the app's client id and secret
returns a websocket endpoint and a one-time ticket; frames arrive as JSON (SYSTEM pings and
disconnects, CALLBACKs on the robot topic) and each is answered by an ack frame carrying its
message id. The SDK's own client does the POST with blocking `requests` against a fixed
address and swallows cancellation in its reconnect loop, so this module drives the connection
itself (the POST with httpx to a configurable gateway, the websocket with `websockets`) and
hands every frame to the SDK's `route_message`, which parses it, calls our `ChatbotHandler`
and writes the SDK's `AckMessage`.

A callback is acked STATUS_OK once the pipeline has taken the message (or when it is not for
the pipeline: a private chat, a picture); if the pipeline raises, the ack says
STATUS_SYSTEM_EXCEPTION and DingTalk delivers it again: the pipeline drops a second delivery
of one message id, so at-least-once here is exactly-once in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import httpx
import websockets
from dingtalk_stream import AckMessage, ChatbotHandler, ChatbotMessage

from bot.transports.base import InboundHandler, IncomingMessage, RoomEventHandler

log = logging.getLogger(__name__)
# The SDK's client logs whole frames at WARNING (every SYSTEM ping, any unknown topic): chat
# text with possibly personal numbers, and noise. Only its errors are kept.
sdk_log = logging.getLogger(__name__ + ".sdk")
sdk_log.setLevel(logging.ERROR)

TRANSPORT = "dingtalk"
GATEWAY = "https://api.dingtalk.com"
OPEN_PATH = "/v1.0/gateway/connections/open"
# conversationType: "1" a one-to-one chat with the robot, "2" a group.
GROUP = "2"


def to_incoming(message: Any, *, account: str = "") -> IncomingMessage | None:
    """The pipeline's inbound model of a robot message (the SDK's ChatbotMessage); None for
    what the pipeline does not take: private chats, messages without text."""
    if str(message.conversation_type or "") != GROUP:
        return None
    text = ""
    if message.message_type == "text" and message.text is not None:
        text = message.text.content or ""
    elif message.message_type == "richText":
        text = "".join(message.get_text_list() or ())
    # DingTalk leaves the space after a removed "@robot" at the head of the text.
    text = text.strip()
    sender = message.sender_staff_id or message.sender_id
    if not text or not sender or not message.conversation_id or not message.message_id:
        return None
    created = message.create_at
    at = (datetime.fromtimestamp(int(created) / 1000, UTC) if created
          else datetime.now(UTC))
    robot = message.chatbot_user_id
    mentioned = tuple(u.staff_id or u.dingtalk_id for u in (message.at_users or ())
                      if (u.staff_id or u.dingtalk_id) and u.dingtalk_id != robot)
    return IncomingMessage(
        transport=TRANSPORT, message_id=str(message.message_id),
        room_id=str(message.conversation_id), sender_id=str(sender),
        sender_name=str(message.sender_nick or ""), text=text, at=at,
        mentions_bot=bool(message.is_in_at_list), account=account,
        room_topic=str(message.conversation_title or ""), mention_ids=mentioned)


class _RobotHandler(ChatbotHandler):  # type: ignore[misc]
    """The SDK's robot-message callback: parse, hand to the pipeline, say how it went."""

    def __init__(self, source: DingTalkStreamSource):
        super().__init__()
        self.source = source

    async def process(self, callback: Any) -> tuple[int, str]:
        try:
            message = ChatbotMessage.from_dict(callback.data)
            incoming = to_incoming(message, account=self.source.account)
        except Exception:  # noqa: BLE001 - a malformed frame is acked, logged, never retried
            log.exception("dingtalk %s: a robot message did not parse", self.source.name)
            return AckMessage.STATUS_OK, "OK"
        if incoming is None:
            return AckMessage.STATUS_OK, "OK"
        handler = self.source.on_message
        if handler is None:
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not started"
        try:
            await handler(incoming)
        except Exception:  # noqa: BLE001 - DingTalk redelivers; the pipeline dedupes
            log.exception("dingtalk %s: message %s failed; asking for redelivery",
                          self.source.name, incoming.message_id)
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "retry"
        return AckMessage.STATUS_OK, "OK"


class DingTalkStreamSource:
    """Messages in the groups of one DingTalk app robot (an InboundSource)."""

    def __init__(self, name: str, *, client_id: str, client_secret: str,
                 gateway: str = GATEWAY, account: str = "",
                 reconnect_min_seconds: float = 1.0, reconnect_max_seconds: float = 60.0):
        self.name = name
        self.account = account or name
        self.gateway = gateway.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._backoff = (reconnect_min_seconds, reconnect_max_seconds)
        self.on_message: InboundHandler | None = None
        self.connected = asyncio.Event()
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._websocket: Any = None
        self.client = dingtalk_stream.DingTalkStreamClient(
            dingtalk_stream.Credential(client_id, client_secret), logger=sdk_log)
        self.client.register_callback_handler(ChatbotMessage.TOPIC, _RobotHandler(self))
        self.client.pre_start()

    def __repr__(self) -> str:  # never the secret
        return f"DingTalkStreamSource({self.name!r}, gateway={self.gateway!r})"

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        """Connect in the background (and again after every drop) and deliver messages."""
        self.on_message = on_message
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"dingtalk-{self.name}")

    async def stop(self) -> None:
        """Disconnect; nothing is delivered after this returns."""
        task, self._task = self._task, None
        self.on_message = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()

    async def open_connection(self) -> dict[str, Any]:
        """The websocket endpoint and ticket (the SDK's request body, to our gateway)."""
        body = {"clientId": self._client_id, "clientSecret": self._secret,
                "subscriptions": [{"type": "CALLBACK", "topic": ChatbotMessage.TOPIC}],
                "ua": f"tierbot dingtalk-stream/{dingtalk_stream.version.VERSION_STRING}",
                "localIp": ""}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(self.gateway + OPEN_PATH, json=body,
                                       headers={"Accept": "application/json"})
        if response.status_code != 200:
            # The body may echo the request; only the status is kept.
            raise ConnectionError(f"gateway answered HTTP {response.status_code}")
        data: dict[str, Any] = response.json()
        if not data.get("endpoint") or not data.get("ticket"):
            raise ConnectionError("gateway gave no endpoint or ticket")
        return data

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                opened = await self.open_connection()
                uri = f"{opened['endpoint']}?ticket={quote_plus(str(opened['ticket']))}"
                async with websockets.connect(uri) as websocket:
                    self.client.websocket = websocket
                    self.connected.set()
                    self.last_error = ""
                    delay = self._backoff[0]
                    async for raw in websocket:
                        result = await self.client.route_message(json.loads(raw))
                        if result == dingtalk_stream.DingTalkStreamClient.TAG_DISCONNECT:
                            break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect with backoff
                self.last_error = type(exc).__name__
                log.warning("dingtalk %s: connection lost (%s); again in %.0fs",
                            self.name, type(exc).__name__, delay)
            finally:
                self.connected.clear()
                self.client.websocket = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
