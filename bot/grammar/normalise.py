"""Normalise raw WeChat message text before parsing: width, punctuation, mentions, quotes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["normalise"]

# WeChat renders a reply that quotes a message as the quote, a line of spaced dashes, then the
# reply (some clients put the quote last); only the sender's own words are a command.
_DASH_LINE = r"[ \t\u3000]*(?:[-—－][ \t\u3000]*){3,}"
_QUOTE_FIRST = re.compile(r"^\s*「[^」]*」\s*\n" + _DASH_LINE + r"(?:\n|$)")
_QUOTE_LAST = re.compile(r"\n" + _DASH_LINE + r"\n\s*「[^」]*」\s*$")
_QUOTE_TRAILING = re.compile(r"\n\s*「[^」\n]*[:：][^」]*」\s*$")
# Invisible characters that phones and WeChat sprinkle into text.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"\s+")


def _drop_quote(text: str) -> str:
    """Drop a WeChat quote block, keeping the replying text."""
    stripped = _QUOTE_FIRST.sub("", text, count=1)
    if stripped != text:
        return stripped
    stripped = _QUOTE_LAST.sub("", text, count=1)
    if stripped != text:
        return stripped
    return _QUOTE_TRAILING.sub("", text, count=1)


def _strip_mentions(text: str, names: list[str]) -> str:
    """Strip leading and trailing @mentions of the bot, as often as they repeat."""
    changed = True
    while changed and text:
        changed = False
        for name in names:
            mention = "@" + name
            if text.startswith(mention):
                text = text[len(mention):].lstrip()
                changed = True
            if text.endswith(mention):
                text = text[: -len(mention)].rstrip()
                changed = True
    return text


def normalise(text: str, *, bot_names: Iterable[str] = ()) -> str:
    """Return text in the one form the parser reads (half-width, single spaces, no quote)."""
    if not text:
        return ""
    text = _INVISIBLE.sub("", _drop_quote(text))
    # NFKC folds full-width letters, digits and ：，？ and turns WeChat's U+2005 into a space.
    text = unicodedata.normalize("NFKC", text).replace("、", ",")
    text = _SPACES.sub(" ", text).strip()
    names = sorted(
        {n for n in (_SPACES.sub(" ", unicodedata.normalize("NFKC", b)).strip()
                     for b in bot_names if b) if n},
        key=len,
        reverse=True,
    )
    if names:
        text = _strip_mentions(text, names)
    return text.strip()
