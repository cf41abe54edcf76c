"""Per-credential pacing of official channels, with a fake clock: the platform's per-minute,
per-second and per-group limits, the penalty after a frequency error, the avoid windows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.channels.base import Limits
from bot.config import PacingSettings
from bot.sender import ChannelPacer

T0 = datetime(2020, 2, 21, 2, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def pacer(**limits: object) -> ChannelPacer:
    return ChannelPacer("robot", PacingSettings(), random.Random(1),
                        Limits(**{"per_minute": 20, **limits}))  # type: ignore[arg-type]


def drain(p: ChannelPacer, start: datetime, n: int, room: str = "") -> list[datetime]:
    """Send `n` times as soon as allowed; when each went."""
    at, out = start, []
    for _ in range(n):
        at = p.next_allowed(at, room=room)
        p.record(at, room)
        out.append(at)
    return out


def test_twenty_a_minute_then_the_twenty_first_waits_for_the_window():
    p = pacer()
    sent = drain(p, T0, 20)
    assert sent == [T0] * 20
    # The 21st: one minute after the first of the last twenty.
    assert p.next_allowed(T0 + 30 * SECOND) == T0 + 60 * SECOND
    later = drain(p, T0 + 30 * SECOND, 20)
    assert later == [T0 + 60 * SECOND] * 20
    # No minute ever holds more than 20.
    everything = sent + later
    for at in everything:
        assert sum(at <= t < at + 60 * SECOND for t in everything) <= 20


def test_per_second_limit_spreads_sends_over_seconds():
    p = pacer(per_minute=100, per_second=5)
    sent = drain(p, T0, 12)
    assert sent == [T0] * 5 + [T0 + SECOND] * 5 + [T0 + 2 * SECOND] * 2


def test_per_group_per_second_holds_one_group_not_the_others():
    p = pacer(per_minute=1000, per_second=50, per_group_per_second=5)
    drain(p, T0, 5, room="g1")
    assert p.next_allowed(T0, room="g1") == T0 + SECOND
    assert p.next_allowed(T0, room="g2") == T0
    assert p.next_allowed(T0) == T0


def test_penalty_after_a_frequency_error_then_the_reset_header_if_later():
    p = pacer(penalty_seconds=600.0)
    until = p.pause(T0)
    assert until == T0 + 600 * SECOND
    assert p.next_allowed(T0 + 599 * SECOND) == until
    assert p.next_allowed(T0 + 600 * SECOND) == until
    # A platform reset later than the penalty wins.
    assert p.pause(T0, at_least=900.0) == T0 + 900 * SECOND


def test_avoid_windows_skip_the_top_and_half_of_the_hour():
    p = pacer(per_minute=100, per_second=5, avoid=((0, 60), (1800, 1860)))
    top = T0.replace(minute=0, second=10)
    assert p.next_allowed(top) == T0.replace(minute=1, second=0)
    half = T0.replace(minute=30, second=59)
    assert p.next_allowed(half) == T0.replace(minute=31, second=0)
    quiet = T0.replace(minute=17)
    assert p.next_allowed(quiet) == quiet
    # Sends that would spill into the window wait until after it.
    edge = T0.replace(minute=59, second=59)
    sent = drain(p, edge, 6)
    assert sent == [edge] * 5 + [T0.replace(hour=3, minute=1, second=0)]


def test_reset_forgets_every_window():
    p = pacer()
    drain(p, T0, 20)
    p.pause(T0)
    p.reset()
    assert p.next_allowed(T0) == T0
