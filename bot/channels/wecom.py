"""WeCom (企业微信) group robot: POST {"msgtype": "text"|"markdown", …} to
/cgi-bin/webhook/send?key=KEY.

From WeCom's group-robot guide (developer.work.weixin.qq.com/document/path/91770, as quoted in
the stored pages docs.zhuonian.xyz/api/wecom-webhook and beszel.dev's WeCom notes): text
content at most 2,048 bytes (UTF-8) with `mentioned_list` (user ids, "@all") and
`mentioned_mobile_list`; markdown content at most 4,096 bytes, mentions only as <@userid>
inside it; 20 messages a minute per robot. Error codes from WeCom's global code table (as
WxJava's WxCpErrorMsgEnum lists them): 45009 API frequency out of limit, 40058 invalid
parameter (also a too long content), 60020 not allowed from this IP, 93000 invalid webhook
URL (a wrong or deleted key), -1 system busy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

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
from bot.channels.render import dumps, part_texts, sort_mentions

TEXT_BYTES = 2048
MARKDOWN_BYTES = PLATFORM_LIMITS["wecom_robot"]["max_body_bytes"]
SEND_PATH = "/cgi-bin/webhook/send"
# Markdown mentions a user by <@userid> in the content.
MENTION_MARKUP = ("<@",)

CODES: dict[int, CodeRule] = {
    -1: retry("system busy"),
    45009: retry("api freq out of limit", rate_limited=True),
    45033: retry("api concurrent out of limit", rate_limited=True),
    40058: permanent("invalid parameter or content too long"),
    60020: permanent("not allow to access from your ip"),
    93000: permanent("invalid webhook url (key)"),
}


class WecomRobot(HttpChannel):
    """One WeCom group robot (its webhook key); the room is the robot's group."""

    kind = "wecom_robot"
    capabilities = ROBOT_CAPABILITIES
    # The markdown limit; plain text is held to TEXT_BYTES within it.
    default_limits = platform_limits(kind)
    default_base_url = "https://qyapi.weixin.qq.com"
    credential_keys = (("key",), ("webhook",))
    webhook_field = ("key", "query")

    def render(self, rendering: Rendering) -> list[Payload]:
        mentions = sort_mentions(rendering.mentions)
        # Markdown cannot mention by mobile nor everyone: such a message goes as text.
        markdown = rendering.markdown and not mentions.mobiles and not rendering.mention_all
        limit = min(MARKDOWN_BYTES if markdown else TEXT_BYTES, self.limits.max_body_bytes)
        lead = "".join(f"<@{u}>" for u in mentions.user_ids) if markdown else ""
        texts = part_texts(rendering.text, tag=rendering.tag, keyword=self.keyword,
                           limit=limit, lead=lead, inert=MENTION_MARKUP if markdown else ())
        bodies: list[dict[str, Any]] = []
        for i, text in enumerate(texts):
            if markdown:
                bodies.append({"msgtype": "markdown", "markdown": {"content": text}})
                continue
            content: dict[str, Any] = {"content": text}
            if i == 0:
                users = [*mentions.user_ids, *(["@all"] if rendering.mention_all else [])]
                if users:
                    content["mentioned_list"] = users
                if mentions.mobiles:
                    content["mentioned_mobile_list"] = list(mentions.mobiles)
            bodies.append({"msgtype": "text", "text": content})
        return [Payload(body=b, size=len(t.encode("utf-8")), part=i, parts=len(texts))
                for i, (b, t) in enumerate(zip(bodies, texts, strict=True), 1)]

    async def send(self, room_id: str, payload: Payload) -> SendResult:
        key = quote(self._credential["key"], safe="")
        response = await self.post(f"{self.base_url}{SEND_PATH}?key={key}", dumps(payload.body))
        if isinstance(response, SendResult):
            return self.settle(response)
        return self.settle(classify_response(response, CODES,
                                             penalty=self.limits.penalty_seconds))


KINDS: dict[str, Callable[..., OutboundChannel]] = {"wecom_robot": WecomRobot}
