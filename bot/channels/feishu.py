"""Feishu (飞书) custom bot and app bot.

Custom bot (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot, as quoted in the stored
pages: csdn 136473704, juejin 7391005009667293199, feishu-bot-api's genSign): POST
{"timestamp": "<seconds>", "sign": …, "msg_type": "text"|"post", "content": {…}} to
/open-apis/bot/v2/hook/<hook id>. sign = base64(HmacSHA256(key=f"{ts}\\n{secret}", msg=b""))
— the key/message roles are the reverse of DingTalk's, and the timestamp is in seconds, in
the body; one more than an hour off is refused (19021 "sign match fail or timestamp is not
within one hour from current time"). 100 messages a minute and 5 a second per bot, and the
platform asks bots to keep clear of :00 and :30; request body at most 20 KB. Codes: 11232
frequency limited, 19021 sign invalid, 19022 IP not allowed, 19024 keyword not matched, 9499
bad request; HTTP 429 carries x-ogw-ratelimit-reset (seconds).

App bot (open-apis im/v1/messages, larksuite oapi-sdk-python's CreateMessageRequest): a
tenant_access_token from /open-apis/auth/v3/tenant_access_token/internal ({app_id,
app_secret} -> {tenant_access_token, expire}), cached until shortly before it expires and
fetched again when the platform calls it invalid (99991663, 99991661, 99991668); messages
POSTed to /open-apis/im/v1/messages?receive_id_type=chat_id with {receive_id, msg_type,
content: JSON text}; 1,000 a minute and 50 a second per app, 5 a second per group (230020
group rate limit, 99991400 app rate limit)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from bot.channels.base import (
    Capabilities,
    OutboundChannel,
    Outcome,
    Payload,
    Rendering,
    SendResult,
    platform_limits,
)
from bot.channels.http import (
    ROBOT_CAPABILITIES,
    SECRETS,
    CodeRule,
    HttpChannel,
    classify_response,
    json_body,
    permanent,
    retry,
)
from bot.channels.limits import PLATFORM_LIMITS
from bot.channels.render import clean, dumps, json_cost, part_texts, sort_mentions

BOT_BODY_BYTES = PLATFORM_LIMITS["feishu_bot"]["max_body_bytes"]
# A text message's request body may hold 150 KB, a post (rich text) 30 KB.
APP_TEXT_BYTES = PLATFORM_LIMITS["feishu_app"]["max_body_bytes"]
APP_POST_BYTES = 30 * 1024
RESET_HEADERS = ("x-ogw-ratelimit-reset",)
# A text message mentions by <at user_id="…"> in the content.
MENTION_MARKUP = ("<at",)
BOT_CODES: dict[int, CodeRule] = {
    11232: retry("frequency limited", rate_limited=True),
    19021: permanent("sign match fail or timestamp is not within one hour"),
    19022: permanent("ip not allowed"),
    19024: permanent("key words not found"),
    9499: permanent("bad request"),
}

TOKEN_INVALID = frozenset({99991661, 99991663, 99991668})
APP_CODES: dict[int, CodeRule] = {
    99991400: retry("app rate limited", rate_limited=True),
    # Only this group is over its 5 a second: the app may go on with others.
    230020: retry("group rate limited", 1.0),
    230001: permanent("invalid request parameter"),
    230002: permanent("the bot is not in the chat"),
    230006: permanent("bot ability not activated"),
    230027: permanent("lack of necessary permissions"),
    **{code: permanent("tenant access token invalid") for code in TOKEN_INVALID},
}


def bot_sign(secret: str, timestamp: int) -> str:
    """The custom bot's signature for `timestamp` (seconds)."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _at(user_id: str, name: str = "") -> str:
    return f'<at user_id="{user_id}">{name}</at>'


def _lead(user_ids: tuple[str, ...], mention_all: bool) -> str:
    """Mentions written into a text: Feishu mentions by open_id/user_id (not by mobile)."""
    ats = [_at(u) for u in user_ids] + ([_at("all", "所有人")] if mention_all else [])
    return " ".join(ats) + (" " if ats else "")


def _as_post(rendering: Rendering, user_ids: tuple[str, ...]) -> bool:
    """Whether to send a post (rich text): asked for, and nobody to mention (a post's text
    elements do not mention; mentions go as a text message)."""
    return rendering.markdown and not user_ids and not rendering.mention_all


def _post(title: str, text: str) -> dict[str, Any]:
    """A post (rich text) body: one text element a line (no mentions: see `_as_post`)."""
    return {"zh_cn": {"title": title,
                      "content": [[{"tag": "text", "text": line}] for line in text.split("\n")]}}


class FeishuBot(HttpChannel):
    """One Feishu custom bot (its hook id and signing secret); the room is its group."""

    kind = "feishu_bot"
    capabilities = ROBOT_CAPABILITIES
    default_limits = platform_limits(kind)
    default_base_url = "https://open.feishu.cn"
    credential_keys = (("token",), ("webhook",))
    webhook_field = ("token", "path")

    @property
    def _hook(self) -> str:
        return quote(self._credential["token"], safe="")

    def render(self, rendering: Rendering) -> list[Payload]:
        mentions = sort_mentions(rendering.mentions)
        title = rendering.tag or (self.keyword or "通知")
        markdown = _as_post(rendering, mentions.user_ids)

        def build(text: str) -> dict[str, Any]:
            # Room for the signature the send adds: ten digits and a 44-character sign.
            head = {"timestamp": "0" * 10, "sign": "0" * 44}
            if markdown:
                return {**head, "msg_type": "post", "content": {"post": _post(title, text)}}
            return {**head, "msg_type": "text", "content": {"text": text}}

        limit = min(self.limits.max_body_bytes, BOT_BODY_BYTES)
        envelope = len(dumps(build("")))
        texts = part_texts(rendering.text, tag=rendering.tag, keyword=self.keyword,
                           limit=limit - envelope,
                           lead=_lead(mentions.user_ids, rendering.mention_all),
                           cost=_post_cost if markdown else json_cost, inert=MENTION_MARKUP)
        payloads = []
        for i, text in enumerate(texts, 1):
            body = build(text)
            del body["timestamp"], body["sign"]
            payloads.append(Payload(body=body, size=len(dumps(build(text))), part=i,
                                    parts=len(texts)))
        return payloads

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        body = dict(payload.body)
        secret = self._credential.get("secret", "")
        if secret:
            ts = int(self.now().timestamp())
            body = {"timestamp": str(ts), "sign": bot_sign(secret, ts), **body}
        url = f"{self.base_url}/open-apis/bot/v2/hook/{self._hook}"
        response = await self.post(url, dumps(body))
        if isinstance(response, SendResult):
            return self.settle(response)
        return self.settle(classify_response(
            response, BOT_CODES, penalty=self.limits.penalty_seconds,
            code_fields=("code", "StatusCode"), message_fields=("msg", "StatusMessage"),
            reset_headers=RESET_HEADERS))


def _post_cost(ch: str) -> int:
    """JSON bytes of a character in a post body, where a line break starts a new element
    (`"}],[{"tag":"text","text":"`, 27 bytes, against the 2 of an escaped \\n)."""
    return 27 if ch == "\n" else json_cost(ch)


APP_CAPABILITIES = Capabilities(receive=True, ack_in_chat=True, mention_user=True,
                                mention_all=True, markdown=True, cards=False)
# Refresh a cached token this long before the platform says it expires.
TOKEN_MARGIN = timedelta(minutes=5)


class FeishuApp(HttpChannel):
    """A Feishu app bot (app id and secret), sending to any chat it is in (room = chat_id).
    Receiving goes through the long connection (an inbound source elsewhere)."""

    kind = "feishu_app"
    capabilities = APP_CAPABILITIES
    default_limits = platform_limits(kind)
    default_base_url = "https://open.feishu.cn"
    credential_keys = (("app_id", "app_secret"),)

    def configure(self) -> None:
        self._token = ""
        self._token_until: datetime | None = None
        self._token_lock = asyncio.Lock()

    def render(self, rendering: Rendering) -> list[Payload]:
        mentions = sort_mentions(rendering.mentions)
        title = rendering.tag or "通知"
        markdown = _as_post(rendering, mentions.user_ids)

        def build(text: str) -> dict[str, Any]:
            if markdown:
                content = json.dumps({"post": _post(title, text)}, ensure_ascii=False)
                return {"receive_id": "", "msg_type": "post", "content": content}
            return {"receive_id": "", "msg_type": "text",
                    "content": json.dumps({"text": text}, ensure_ascii=False)}

        cap = APP_POST_BYTES if markdown else APP_TEXT_BYTES
        # The content is JSON inside a JSON string: escaping applies twice, and a chat id
        # (~40 bytes) is added at send time.
        limit = min(self.limits.max_body_bytes, cap) - len(dumps(build(""))) - 64
        texts = part_texts(rendering.text, tag=rendering.tag, keyword=self.keyword,
                           limit=limit, lead=_lead(mentions.user_ids, rendering.mention_all),
                           cost=_POST_IN_CONTENT if markdown else _TEXT_IN_CONTENT,
                           inert=MENTION_MARKUP)
        return [Payload(body=build(t), size=len(dumps(build(t))), part=i, parts=len(texts))
                for i, t in enumerate(texts, 1)]

    async def _tenant_token(self, *, fresh: bool = False) -> str | SendResult:
        async with self._token_lock:
            now = self.now()
            if not fresh and self._token and self._token_until and now < self._token_until:
                return self._token
            response = await self.post(
                f"{self.base_url}/open-apis/auth/v3/tenant_access_token/internal",
                dumps({"app_id": self._credential["app_id"],
                       "app_secret": self._credential["app_secret"]}))
            if isinstance(response, SendResult):
                # The message itself was not sent: a failed token fetch is "not sent".
                if response.outcome is Outcome.UNKNOWN:
                    return SendResult(Outcome.RETRY_AFTER, retry_after=30.0,
                                      code="token-" + response.code, detail=response.detail)
                return response
            body = json_body(response) or {}
            token = body.get("tenant_access_token")
            if response.is_success and body.get("code") == 0 and isinstance(token, str):
                self._token = token
                expire = float(body.get("expire") or 0)
                self._token_until = now + max(timedelta(seconds=expire) - TOKEN_MARGIN,
                                              timedelta(0))
                SECRETS.add([token])
                return token
            result = classify_response(response, {}, penalty=self.limits.penalty_seconds,
                                       code_fields=("code",), message_fields=("msg",),
                                       reset_headers=RESET_HEADERS)
            if result.outcome is Outcome.DELIVERED or result.outcome is Outcome.UNKNOWN:
                result = SendResult(Outcome.PERMANENT, code="token", detail="no token")
            return SendResult(result.outcome, retry_after=result.retry_after,
                              code="token-" + result.code, detail=result.detail,
                              rate_limited=result.rate_limited)

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        body = {**payload.body, "receive_id": room_id}
        url = f"{self.base_url}/open-apis/im/v1/messages?receive_id_type=chat_id"
        for attempt in (1, 2):
            token = await self._tenant_token(fresh=attempt == 2)
            if isinstance(token, SendResult):
                return self.settle(token)
            response = await self.post(url, dumps(body),
                                       headers={"Authorization": f"Bearer {token}"})
            if isinstance(response, SendResult):
                return self.settle(response)
            result = classify_response(response, APP_CODES,
                                       penalty=self.limits.penalty_seconds,
                                       code_fields=("code",), message_fields=("msg",),
                                       reset_headers=RESET_HEADERS)
            if result.code.isdigit() and int(result.code) in TOKEN_INVALID and attempt == 1:
                # Refused before it was posted: fetch a new token and send once more.
                continue
            if result.outcome is Outcome.DELIVERED:
                data = (json_body(response) or {}).get("data") or {}
                result = SendResult(Outcome.DELIVERED,
                                    message_id=str(data.get("message_id", "")))
            return self.settle(result)
        raise AssertionError("unreachable")  # pragma: no cover


def _twice(cost: Callable[[str], int]) -> Callable[[str], int]:
    """The cost of a character in JSON text that is itself a JSON string value (the app's
    `content`): escaped once by `cost`'s rule, then every character escaped again."""
    @lru_cache(maxsize=4096)
    def twice(ch: str) -> int:
        if ch == "\n" and cost is _post_cost:
            # A new post element, its eight quotes escaped: `\"}],[{\"tag\":…\"text\":\"`.
            return 27 + 8
        once = json.dumps(clean(ch), ensure_ascii=False)[1:-1]
        return sum(json_cost(c) for c in once)
    return twice


_TEXT_IN_CONTENT = _twice(json_cost)
_POST_IN_CONTENT = _twice(_post_cost)


KINDS: dict[str, Callable[..., OutboundChannel]] = {"feishu_bot": FeishuBot,
                                                    "feishu_app": FeishuApp}
