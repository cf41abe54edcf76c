"""DingTalk (钉钉) custom robot: POST {"msgtype": "text"|"markdown", …, "at": {…}} to
/robot/send?access_token=TOKEN&timestamp=MS&sign=SIGN.

Signing ("加签", open.dingtalk.com custom-robot security settings; the same code in the stored
cnblogs/csdn examples and dingtalk-robot-sdk's robot.js): string_to_sign = f"{ms}\\n{secret}",
sign = urlencode(base64(HmacSHA256(key=secret, msg=string_to_sign))), with the millisecond
timestamp; the server refuses a timestamp more than an hour off. Keyword security: the message
must contain one of the configured keywords. Mentions: `at.atMobiles` / `at.atUserIds`, and
the @id written in the content; `at.isAtAll`. Body under 20,000 bytes. 20 messages a minute,
then the robot is throttled for 10 minutes: errcode 130101 "send too fast, exceed 20 times
per minute". 310000: keyword not in content, sign not match or IP not in the whitelist;
300001: the access token is invalid (robot removed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

from bot.channels.base import OutboundChannel, Payload, Rendering, SendResult, platform_limits
from bot.channels.http import (
    ROBOT_CAPABILITIES,
    CodeRule,
    HttpChannel,
    classify_response,
    permanent,
    retry,
)
from bot.channels.limits import PLATFORM_LIMITS
from bot.channels.render import at_text, dumps, json_cost, part_texts, sort_mentions

# "less than 20,000 bytes"
MAX_BODY_BYTES = PLATFORM_LIMITS["dingtalk_robot"]["max_body_bytes"]
PENALTY_SECONDS = PLATFORM_LIMITS["dingtalk_robot"]["penalty_seconds"]
SEND_PATH = "/robot/send"

CODES: dict[int, CodeRule] = {
    -1: retry("system busy"),
    130101: retry("send too fast, exceed 20 times per minute", PENALTY_SECONDS,
                  rate_limited=True),
    310000: permanent("keywords not in content, sign not match or ip not in whitelist"),
    300001: permanent("invalid access token"),
}


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, URL-encoded, for `timestamp_ms`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


class DingtalkRobot(HttpChannel):
    """One DingTalk custom robot (access token, signing secret); the room is its group."""

    kind = "dingtalk_robot"
    capabilities = ROBOT_CAPABILITIES
    default_limits = platform_limits(kind)
    default_base_url = "https://oapi.dingtalk.com"
    # The secret may be absent where the robot uses keyword or IP security only.
    credential_keys = (("access_token",), ("webhook",))
    webhook_field = ("access_token", "query")

    def render(self, rendering: Rendering) -> list[Payload]:
        mentions = sort_mentions(rendering.mentions)
        at: dict[str, Any] = {}
        if mentions.mobiles:
            at["atMobiles"] = list(mentions.mobiles)
        if mentions.user_ids:
            at["atUserIds"] = list(mentions.user_ids)
        if rendering.mention_all:
            at["isAtAll"] = True
        title = rendering.tag or (self.keyword or "通知")

        def build(text: str, first: bool) -> dict[str, Any]:
            body: dict[str, Any] = (
                {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
                if rendering.markdown else {"msgtype": "text", "text": {"content": text}})
            if first and at:
                body["at"] = at
            return body

        limit = min(self.limits.max_body_bytes, MAX_BODY_BYTES)
        texts = part_texts(rendering.text, tag=rendering.tag, keyword=self.keyword,
                           limit=limit - len(dumps(build("", True))),
                           lead=at_text([*mentions.mobiles, *mentions.user_ids]),
                           cost=json_cost)
        payloads = []
        for i, text in enumerate(texts, 1):
            body = build(text, i == 1)
            payloads.append(Payload(body=body, size=len(dumps(body)), part=i,
                                    parts=len(texts)))
        return payloads

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        token = quote(self._credential["access_token"], safe="")
        url = f"{self.base_url}{SEND_PATH}?access_token={token}"
        secret = self._credential.get("secret", "")
        if secret:
            ms = int(self.now().timestamp() * 1000)
            url += f"&timestamp={ms}&sign={sign(secret, ms)}"
        response = await self.post(url, dumps(payload.body))
        if isinstance(response, SendResult):
            return self.settle(response)
        return self.settle(classify_response(response, CODES,
                                             penalty=self.limits.penalty_seconds))


KINDS: dict[str, Callable[..., OutboundChannel]] = {"dingtalk_robot": DingtalkRobot}
