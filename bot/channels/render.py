"""Rendering one text for a channel: split at the platform's byte limit with the tag
(【通知#12】) at the head of every part and a (i/n) marker where there are several, the keyword
a robot's keyword security needs at the end of every part, mention ids sorted into mobiles and
platform user ids, mention markup in the text made inert. Pure functions.

`split_utf8` counts UTF-8 bytes of the text (WeCom's limits); `split_within` takes any
per-character cost, so DingTalk and Feishu, whose limits are on the whole JSON body, split by
what each character costs there once escaped (`json_cost`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.channels.base import Payload, Rendering
from bot.pii import is_mobile

# Cut a part after the last of these where one lies in the second half of the room.
SEPARATORS = ("\n", "。", "！", "？", "；", "，", ",", " ")


@lru_cache(maxsize=4096)
def utf8_cost(ch: str) -> int:
    """Bytes a character takes in UTF-8 (a lone surrogate is replaced, so it counts three)."""
    return len(ch.encode("utf-8", "replace")) if ch < "\ud800" or ch > "\udfff" else 3


@lru_cache(maxsize=4096)
def json_cost(ch: str) -> int:
    """Bytes a character takes inside a JSON string (UTF-8, not ASCII-escaped): quotes,
    backslashes and control characters are escaped."""
    if ch >= " " and ch not in "\"\\" and not "\ud800" <= ch <= "\udfff":
        return len(ch.encode("utf-8"))
    return len(json.dumps(clean(ch), ensure_ascii=False).encode("utf-8")) - 2


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """The text with lone surrogates (which cannot be encoded) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def measure(text: str, cost: Callable[[str], int] = utf8_cost) -> int:
    return sum(cost(c) for c in text)


def dumps(body: object) -> bytes:
    """The request body as the platforms count it: compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _marker(i: int, n: int) -> str:
    return f"({i}/{n})"


def _chunks(text: str, budget: int, cost: Callable[[str], int]) -> list[str]:
    """`text` cut into pieces of at most `budget` (by `cost`), never inside a character,
    after the last separator when it lies in the second half of the piece."""
    chunks: list[str] = []
    start = 0
    while start < len(text):
        used = 0
        end = start
        while end < len(text) and used + cost(text[end]) <= budget:
            used += cost(text[end])
            end += 1
        if end == start:
            raise ValueError("no room for a single character")
        if end < len(text):
            cut = max(text.rfind(sep, start, end) for sep in SEPARATORS)
            if cut + 1 - start > (end - start) // 2:
                end = cut + 1
        chunks.append(text[start:end])
        start = end
    return chunks or [""]


def split_within(text: str, limit: int, *, head: str = "", tail: str = "",
                 cost: Callable[[str], int] = utf8_cost) -> list[str]:
    """Parts `head + marker + chunk + tail`, each at most `limit` by `cost`, whose chunks
    joined give `text` back. The marker "(i/n)" appears only when there are several parts.
    Raises ValueError when even one character cannot fit beside the head and tail."""
    fixed = measure(head, cost) + measure(tail, cost)
    if fixed + measure(text, cost) <= limit:
        return [head + text + tail]
    width = 1
    while True:
        room = limit - fixed - measure(_marker(10 ** width - 1, 10 ** width - 1), cost)
        if room <= 0:
            raise ValueError(f"a limit of {limit} bytes leaves no room for the text")
        chunks = _chunks(text, room, cost)
        if len(str(len(chunks))) <= width:
            n = len(chunks)
            return [head + _marker(i, n) + c + tail for i, c in enumerate(chunks, 1)]
        width += 1


def split_utf8(body: str, *, max_bytes: int, tag: str = "", suffix: str = "") -> list[str]:
    """The parts of `body`, each `tag + marker + chunk + suffix` within `max_bytes` UTF-8 bytes;
    the chunks joined give `body` back. ValueError when not even one character fits."""
    return split_within(body, max_bytes, head=tag, tail=suffix)


def keyword_suffix(text: str, keyword: str) -> str:
    """What to append so a robot with keyword security accepts the text ("" when the keyword
    is already in it or none is configured). For a text that may be split, pass what every
    part holds (the tag), not the whole text."""
    return "" if not keyword or keyword in text else f"\n{keyword}"


def text_payloads(rendering: Rendering, *, max_bytes: int, keyword: str = "") -> list[Payload]:
    """Generic text payloads (`{"text", "mentions", "mention_all"}`; mentions on the first
    part only): the simulated channel's bodies."""
    suffix = keyword_suffix(rendering.tag + rendering.text, keyword)
    parts = split_utf8(rendering.text, max_bytes=max_bytes, tag=rendering.tag, suffix=suffix)
    if len(parts) > 1 and not suffix:
        # Split, the keyword somewhere in the text is not in every part.
        suffix = keyword_suffix(rendering.tag, keyword)
        parts = split_utf8(rendering.text, max_bytes=max_bytes, tag=rendering.tag,
                           suffix=suffix)
    return [Payload(body={"text": part, "mentions": list(rendering.mentions) if i == 1 else [],
                          "mention_all": rendering.mention_all and i == 1},
                    size=len(part.encode("utf-8")), part=i, parts=len(parts))
            for i, part in enumerate(parts, 1)]


def strip_tag(text: str, tag: str) -> str:
    """The text without the tag at its start (callers may pass the text tagged or not)."""
    return text[len(tag):] if tag and text.startswith(tag) else text


@dataclass(frozen=True, slots=True)
class Mentions:
    """Mention ids sorted the way the platforms take them."""

    mobiles: tuple[str, ...]
    user_ids: tuple[str, ...]


def sort_mentions(mentions: Iterable[str]) -> Mentions:
    """Mobiles (11-digit mainland numbers) apart from platform user ids, duplicates and empty
    ids dropped, order kept. A mobile is personal data: callers never log these."""
    mobiles: list[str] = []
    users: list[str] = []
    for m in mentions:
        m = m.strip().lstrip("@")
        target = mobiles if is_mobile(m) else users
        if m and m not in target:
            target.append(m)
    return Mentions(tuple(mobiles), tuple(users))


def at_text(ids: Sequence[str]) -> str:
    """"@a @b " as DingTalk wants it in the text (it shows a mention only for ids also
    written in the content)."""
    return "".join(f"@{n} " for n in ids)


def defuse(text: str, openers: Sequence[str]) -> str:
    """The text with every markup opener that would mention someone (Feishu's `<at`,
    WeCom markdown's `<@`) made inert by a full-width "＜": a notice or a relayed report
    must not be able to mention everyone by its wording."""
    for opener in openers:
        text = re.sub(re.escape(opener), "＜" + opener[1:], text, flags=re.IGNORECASE)
    return text


def part_texts(text: str, *, tag: str, keyword: str, limit: int, lead: str = "",
               cost: Callable[[str], int] = utf8_cost, inert: Sequence[str] = ()
               ) -> list[str]:
    """The texts of one message's parts: the tag at the head of each, `lead` (mentions
    written into the text) at the start of the first, the keyword on each where the
    platform's keyword security needs it, each within `limit` by `cost`; the mention
    openers `inert` defused in the text (not in `lead`)."""
    body = lead + defuse(clean(strip_tag(text, tag)), inert)
    return split_within(body, limit, head=clean(tag), tail=keyword_suffix(tag, keyword),
                        cost=cost)


def part_text(body: Mapping[str, Any]) -> str:
    """The text one payload body posts, whatever the platform's shape: the sim's "text", WeCom
    and DingTalk text/markdown, a Feishu bot's content, a Feishu app's JSON content (a post's
    lines joined). What an echo of the part is matched by."""
    text = body.get("text")
    if isinstance(text, str):
        return text
    if isinstance(text, Mapping):
        return str(text.get("content", ""))
    markdown = body.get("markdown")
    if isinstance(markdown, Mapping):
        return str(markdown.get("content") or markdown.get("text") or "")
    content = body.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return content
    if isinstance(content, Mapping):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        post = content.get("post")
        if isinstance(post, Mapping):
            locale: Any = next(iter(post.values()), {})
            lines = locale.get("content", []) if isinstance(locale, Mapping) else []
            return "\n".join("".join(str(e.get("text", "")) for e in line) for line in lines)
    return ""
