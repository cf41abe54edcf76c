"""Parse normalised chat text into a command model; None for chatter, ParseError for bad input.

Each command family is one module with its patterns and its steps; this module only runs the
steps of every family in order. A new family is one line in FAMILIES.
"""

from __future__ import annotations

import re
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
    for step in _STEPS:
        result = step.parse(msg)
        if result is not None:
            return result
    mentions = _LEADING_MENTIONS.match(msg.text)
    if mentions is not None and mentions.end() < len(msg.text):
        # @刘芳 我现在多少分了: WeChat puts the mention first; read what follows it, once.
        body = msg.text[mentions.end():]
        again = Message(raw=msg.raw, text=body, plain=plain(body), quoted=msg.quoted,
                        addressed=True)
        for step in _STEPS:
            result = step.parse(again)
            if result is not None:
                return result
    return None
