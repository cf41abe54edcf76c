"""Parse normalised chat text into a command model; None for chatter, ParseError for bad input.

Each command family is one module with its patterns and its steps; this module only runs the
steps of every family in order. A new family is one line in FAMILIES.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

from bot.grammar import (
    basic,
    bind,
    health,
    membership,
    notice,
    points,
    report,
    shop,
    tenant,
    ticket,
    unit,
)
from bot.grammar.commands import Command
from bot.grammar.core import Message, ParseError, Step, plain, trim_decorations
from bot.grammar.normalise import normalise

__all__ = ["FAMILIES", "ParseError", "parse", "steps"]

# Every family module has STEPS: (order, parser) pairs; lower orders run first.
FAMILIES: tuple[ModuleType, ...] = (
    basic, bind, health, membership, notice, points, report, shop, tenant, ticket, unit,
)

# normalise() appends the tag of a quoted notice to the reply: `收到 【通知#27】`.
_TRAILING_TAG = re.compile(r" 【(?:紧急)?通知#(?P<tag>[0-9]{1,9})】$", re.ASCII)


# @name and a space (WeChat's U+2005 after a mention is a space once normalised).
_LEADING_MENTIONS = re.compile(r"(?:@[^\s@]{1,30}\s+)+")
# The formal commands whose word may come last, set apart from what it introduces.
_LAST_KEYWORD = re.compile(
    r"(?P<body>[^\s].*?)[ ,;:]+(?P<kw>租客返回|返回登记|房东上报|企业日报|工作卡)[.。!~]*")


def steps(families: tuple[ModuleType, ...] = FAMILIES) -> tuple[Step, ...]:
    """The steps of these families, in the order they run."""
    return tuple(sorted((s for f in families for s in f.STEPS), key=lambda s: s.order))


_STEPS = steps()


def message(text: str) -> Message:
    """What the families read of one normalised message."""
    quoted = None
    body = text
    tag = _TRAILING_TAG.search(text)
    if tag is not None:
        quoted, body = int(tag.group("tag")) or None, text[: tag.start()]
    body = trim_decorations(body)
    return Message(raw=text, text=body, plain=plain(body), quoted=quoted)


def parse(text: str, *, normalised: bool = False) -> Command | None:
    """Parse one message into a command; None for chatter; ParseError for a botched command.
    normalised=True: the caller has normalised the text (normalise is idempotent; this only
    saves doing it twice)."""
    if not isinstance(text, str):
        return None
    if not normalised:
        text = normalise(text)
    if not text:
        return None
    msg = message(text)
    if not msg.text and not msg.raw.startswith("【"):
        return None
    for reading, guessed in _readings(msg):
        try:
            for step in _STEPS:
                result = step.parse(reading)
                if result is not None:
                    return result
        except ParseError:
            if not guessed:
                raise
            # 请大家 租客返回: talk about a command, not one; only a whole command is taken.
            return None
    return None


def _readings(msg: Message) -> Iterator[tuple[Message, bool]]:
    """The message as written, then (only if no step read it) the other ways it may be meant:
    after leading mentions, and with a command word said last put first (a guess: it counts
    only when it is a whole command)."""
    yield msg, False
    mentions = _LEADING_MENTIONS.match(msg.text)
    if mentions is not None and mentions.end() < len(msg.text):
        # @刘芳 我现在多少分了: WeChat puts the mention first; read what follows it, once.
        body = msg.text[mentions.end():]
        msg = Message(raw=msg.raw, text=body, plain=plain(body), quoted=msg.quoted,
                      addressed=True)
        yield msg, False
    last = _LAST_KEYWORD.fullmatch(msg.text)
    if last is not None:
        # 王丽 138… 湖南衡阳 租客返回, 楼道已消毒 房东上报: the command word at the end.
        body = f"{last.group('kw')} {last.group('body')}"
        yield Message(raw=msg.raw, text=body, plain=plain(body), quoted=msg.quoted,
                      addressed=msg.addressed), True
