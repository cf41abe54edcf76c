"""Shared checks of the channel adapter tests: the property checks every split must pass, a
log capture that holds every logger down to DEBUG, a result against its code table."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import pytest

from bot.channels.base import Outcome, SendResult
from bot.channels.http import CodeRule

_MARKER = re.compile(r"^\((\d+)/(\d+)\)")


def capture_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, httpx's and httpcore's included, from DEBUG up."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "bot"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """All that was logged, as a handler would format it (message and exception text)."""
    out = []
    for r in caplog.records:
        out.append(r.getMessage())
        if r.exc_info:
            out.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(out)


def recovered(parts: Iterable[str], *, tag: str, tail: str = "", lead: str = "") -> str:
    """The text the parts carry, with the tag, the (i/n) markers, the keyword tail and the
    mention lead taken off again; asserts each part has its tag, marker and tail."""
    parts = list(parts)
    chunks = []
    for i, part in enumerate(parts, 1):
        assert part.startswith(tag), part[:40]
        rest = part[len(tag):]
        if len(parts) > 1:
            m = _MARKER.match(rest)
            assert m and (int(m.group(1)), int(m.group(2))) == (i, len(parts)), rest[:20]
            rest = rest[m.end():]
        if tail:
            assert rest.endswith(tail)
            rest = rest[:-len(tail)]
        chunks.append(rest)
    text = "".join(chunks)
    assert text.startswith(lead)
    return text[len(lead):]


def assert_rule(result: SendResult, rule: CodeRule, code: int) -> None:
    """The result is what the code table says for `code`."""
    assert (result.outcome, result.code, result.rate_limited) == (
        rule.outcome, str(code), rule.rate_limited)
    if rule.outcome is Outcome.RETRY_AFTER:
        assert result.retry_after is not None and result.retry_after > 0
