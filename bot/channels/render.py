"""Rendering one text for a channel: split at the platform's UTF-8 byte limit with the tag
(【通知#12】) at the head of every part and a (i/n) marker where there are several, the
keyword a robot's keyword security needs at the end of every part. Pure functions; the
adapters build their platform's bodies from `split_utf8`'s parts."""

from __future__ import annotations

from bot.channels.base import Payload, Rendering

# Cut a part after one of these where one lies in the second half of the room.
SEPARATORS = ("\n", "。", "；", "，", " ")


def _marker(i: int, n: int) -> str:
    return f"({i}/{n})" if n > 1 else ""


def _size(text: str) -> int:
    return len(text.encode())


def _chunks(body: str, room: int) -> list[str]:
    """`body` in chunks of at most `room` UTF-8 bytes, never cutting a character, preferring a
    line or sentence end."""
    chunks: list[str] = []
    rest = body
    while _size(rest) > room:
        head = rest.encode()[:room].decode("utf-8", errors="ignore")
        cut = max(head.rfind(sep) for sep in SEPARATORS)
        cut = cut + 1 if cut + 1 > len(head) // 2 else len(head)
        chunks.append(rest[:cut])
        rest = rest[cut:]
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def split_utf8(body: str, *, max_bytes: int, tag: str = "", suffix: str = "") -> list[str]:
    """The parts of `body`, each `tag + marker + chunk + suffix` within `max_bytes` UTF-8 bytes;
    the chunks joined give `body` back. ValueError when not even one character fits."""
    fixed = _size(tag) + _size(suffix)
    if fixed + _size(body) <= max_bytes:
        return [tag + body + suffix]
    n = 2
    while True:
        room = max_bytes - fixed - _size(_marker(n, n))
        if room < 4:  # one character of UTF-8 is at most four bytes
            raise ValueError(f"a limit of {max_bytes} bytes leaves no room for the text")
        chunks = _chunks(body, room)
        if len(chunks) <= n or len(str(len(chunks))) == len(str(n)):
            n = len(chunks)
            break
        n = len(chunks)
    return [f"{tag}{_marker(i, n)}{chunk}{suffix}" for i, chunk in enumerate(chunks, 1)]


def keyword_suffix(text: str, keyword: str) -> str:
    """What to append so a robot with keyword security accepts the text ("" when the keyword
    is already in it or none is configured)."""
    return "" if not keyword or keyword in text else f"\n{keyword}"


def text_payloads(rendering: Rendering, *, max_bytes: int, keyword: str = "") -> list[Payload]:
    """Generic text payloads (`{"text", "mentions", "mention_all"}`; mentions on the first
    part only): the simulated channel's bodies, and a start for adapters."""
    suffix = keyword_suffix(rendering.tag + rendering.text, keyword)
    parts = split_utf8(rendering.text, max_bytes=max_bytes, tag=rendering.tag, suffix=suffix)
    return [Payload(body={"text": part, "mentions": list(rendering.mentions) if i == 1 else [],
                          "mention_all": rendering.mention_all and i == 1},
                    size=_size(part), part=i, parts=len(parts))
            for i, part in enumerate(parts, 1)]
