"""Rendering shared by the official-robot channels: splitting a text into parts within a byte
limit (the notice's tag and the keyword on every part, a (1/3) marker when split), and
sorting mention ids into mobiles and platform user ids."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.pii import is_mobile

# Where a cut reads best, best first: a line break, then a sentence or clause end.
_CUT_AFTER = ("\n", "。", "！", "？", "；", "，", ",", " ")


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
    """`text` cut into pieces of at most `budget` (by `cost`), at a readable place when one
    lies in the second half of the piece."""
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
            half = start + (end - start) // 2
            for sep in _CUT_AFTER:
                at = text.rfind(sep, half, end)
                if at >= 0:
                    end = at + 1
                    break
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
            raise ValueError(f"the tag and keyword leave no room within {limit} bytes")
        chunks = _chunks(text, room, cost)
        if len(str(len(chunks))) <= width:
            n = len(chunks)
            return [head + _marker(i, n) + c + tail for i, c in enumerate(chunks, 1)]
        width += 1


def keyword_tail(keyword: str, head: str) -> str:
    """What to add after each part so that the platform's keyword check passes: nothing when
    there is no keyword or the tag already holds it."""
    return "" if not keyword or keyword in head else "\n" + keyword


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
    return split_within(body, limit, head=clean(tag), tail=keyword_tail(keyword, tag),
                        cost=cost)
