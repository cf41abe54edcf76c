"""Feishu app bot over the long connection (`lark-oapi`'s websocket client): an InboundSource,
so that 收到, 进度 and the other commands work in staff groups on Feishu. The only lark_oapi
import.

im.message.receive_v1 arrives as the SDK's P2ImMessageReceiveV1 through its
EventDispatcherHandler; `to_incoming` maps it to the pipeline's model: the chat id is the room,
the sender's open_id the contact id (open_ids are per app: one app's bindings stay with it),
text messages and rich-text posts give the text (mention keys such as "@_user_1" replaced by
"@name", the bot's own mention removed), the mentions their open_ids.

The SDK's client is blocking (its endpoint POST uses `requests`; `start()` runs the event loop
the module picked at import for ever), so it runs on a thread of its own with its own loop.
Each event is handed to the bot's loop and the thread waits until the pipeline has taken it
(at most `handoff_seconds`): if the pipeline fails, the SDK answers the frame with an error
and Feishu delivers the event again (the pipeline drops a second delivery of a message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as lark_ws_client

from bot.transports.base import InboundHandler, IncomingMessage, RoomEventHandler

log = logging.getLogger(__name__)

TRANSPORT = "feishu"
DOMAIN = lark.FEISHU_DOMAIN
GROUP = "group"
# mentioned_type of a bot (Feishu has used both spellings).
_BOT_TYPES = frozenset({"bot", "app"})


def _release_import_loop() -> None:
    """The SDK takes (or makes and sets) the importing thread's event loop at import and keeps
    it in a module global; every source here runs the SDK on a loop of its own, so a loop the
    SDK made just for itself is closed rather than left to the garbage collector."""
    made = lark_ws_client.loop
    if made.is_running() or made.is_closed():
        return
    policy = asyncio.get_event_loop_policy()
    with contextlib.suppress(RuntimeError):
        if policy.get_event_loop() is made:
            policy.set_event_loop(None)
    made.close()


_release_import_loop()


def _post_text(content: dict[str, Any]) -> str:
    """The text of a rich-text post (a localised {"zh_cn": {...}} or the post itself)."""
    post = content
    if "content" not in post:
        post = next((v for v in content.values() if isinstance(v, dict) and "content" in v), {})
    lines = []
    for paragraph in post.get("content") or ():
        parts = []
        for element in paragraph or ():
            tag = element.get("tag")
            if tag in ("text", "a"):
                parts.append(str(element.get("text", "")))
            elif tag == "at":
                parts.append(str(element.get("user_id", "")))
        lines.append("".join(parts))
    return "\n".join(lines)


def to_incoming(event: Any, *, account: str = "", bot_open_id: str = ""
                ) -> IncomingMessage | None:
    """The pipeline's inbound model of the SDK's P2ImMessageReceiveV1; None for what the
    pipeline does not take (one-to-one chats, messages without text)."""
    data = event.event
    message = data.message if data is not None else None
    if message is None or message.chat_type != GROUP:
        return None
    sender = data.sender.sender_id if data.sender is not None else None
    sender_id = (sender.open_id or sender.union_id) if sender is not None else None
    if not sender_id or not message.chat_id or not message.message_id:
        return None
    try:
        content = json.loads(message.content or "{}")
    except ValueError:
        return None
    if message.message_type == "text":
        text = str(content.get("text", ""))
    elif message.message_type == "post":
        text = _post_text(content)
    else:
        return None
    mentions_bot = False
    mention_ids: list[str] = []
    for mention in message.mentions or ():
        key = mention.key or ""
        open_id = mention.id.open_id if mention.id is not None else ""
        is_bot = (mention.mentioned_type in _BOT_TYPES
                  or (bool(bot_open_id) and open_id == bot_open_id))
        if is_bot:
            mentions_bot = True
            if key:
                text = text.replace(key, "")
            continue
        if key:
            text = text.replace(key, f"@{mention.name or ''}")
        if open_id:
            mention_ids.append(open_id)
    text = text.strip()
    if not text:
        return None
    created = message.create_time
    at = datetime.fromtimestamp(int(created) / 1000, UTC) if created else datetime.now(UTC)
    return IncomingMessage(
        transport=TRANSPORT, message_id=message.message_id, room_id=message.chat_id,
        sender_id=sender_id, sender_name="", text=text, at=at, mentions_bot=mentions_bot,
        is_self=bool(bot_open_id) and sender_id == bot_open_id, account=account,
        mention_ids=tuple(mention_ids))


class FeishuWsSource:
    """Messages in the groups of one Feishu app bot (an InboundSource)."""

    def __init__(self, name: str, *, app_id: str, app_secret: str, domain: str = DOMAIN,
                 account: str = "", bot_open_id: str = "", handoff_seconds: float = 2.5,
                 auto_reconnect: bool = True):
        self.name = name
        self.account = account or name
        self.domain = domain
        self.bot_open_id = bot_open_id
        self.handoff_seconds = handoff_seconds
        self._app_id = app_id
        self._secret = app_secret
        self._auto_reconnect = auto_reconnect
        self.on_message: InboundHandler | None = None
        self._bot_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self.last_error = ""
        self.dispatcher = (lark.EventDispatcherHandler.builder("", "")
                           .register_p2_im_message_receive_v1(self._on_receive).build())

    def __repr__(self) -> str:  # never the secret
        return f"FeishuWsSource({self.name!r}, domain={self.domain!r})"

    def _on_receive(self, event: Any) -> None:
        """The SDK's callback (on its thread): hand the message over and wait for it to be
        taken; raising makes the SDK answer with an error, so Feishu delivers it again."""
        incoming = to_incoming(event, account=self.account, bot_open_id=self.bot_open_id)
        handler, loop = self.on_message, self._bot_loop
        if incoming is None:
            return
        if handler is None or loop is None:
            raise RuntimeError("feishu source not started")
        async def take() -> None:
            await handler(incoming)

        future: Future[None] = asyncio.run_coroutine_threadsafe(take(), loop)
        future.result(timeout=self.handoff_seconds)

    async def start(self, on_message: InboundHandler,
                    on_event: RoomEventHandler | None = None) -> None:
        """Connect on the SDK's thread (reconnecting as the server's settings say)."""
        self.on_message = on_message
        self._bot_loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"feishu-{self.name}",
                                            daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._ready.set()
        asyncio.set_event_loop(loop)
        # The SDK keeps the loop it saw at import in a module global and runs everything on
        # it: point it at this thread's.
        lark_ws_client.loop = loop
        client = lark.ws.Client(self._app_id, self._secret, event_handler=self.dispatcher,
                                domain=self.domain, auto_reconnect=self._auto_reconnect,
                                log_level=lark.LogLevel.WARNING)
        self.client = client
        try:
            client.start()
        except RuntimeError:
            pass    # stop() stopped the loop
        except Exception as exc:  # noqa: BLE001 - reported, the thread ends
            self.last_error = type(exc).__name__
            log.warning("feishu %s: the long connection ended (%s)", self.name,
                        type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(client._disconnect())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def stop(self) -> None:
        """Disconnect; nothing is delivered after this returns."""
        self.on_message = None
        thread, self._thread = self._thread, None
        if thread is None:
            return
        await asyncio.to_thread(self._ready.wait, 10)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
