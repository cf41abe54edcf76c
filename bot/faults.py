"""Named fault points: production code calls `hit("sender.claim")` before a step; tests arm a
point to make that step raise, and prove the code around it recovers. Unarmed, a hit is one
dictionary lookup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class InjectedFault(RuntimeError):
    """The error an armed fault point raises (unless the test gave its own)."""


# point name -> how many more hits raise (a negative count: every hit) and what they raise.
_armed: dict[str, tuple[int, Callable[[], BaseException]]] = {}
# Every point hit since the last reset, by name (tests check a step was exercised).
hits: dict[str, int] = {}


def hit(name: str) -> None:
    """A step named `name` is about to run: raise if a test armed it."""
    if not _armed:
        return
    hits[name] = hits.get(name, 0) + 1
    armed = _armed.get(name)
    if armed is None:
        return
    left, make = armed
    if left == 1:
        del _armed[name]
    elif left > 1:
        _armed[name] = (left - 1, make)
    raise make()


def arm(name: str, *, times: int = 1,
        error: Callable[[], BaseException] | None = None) -> None:
    """Make the next `times` hits of `name` raise (times < 0: until disarmed)."""
    _armed[name] = (times, error or (lambda: InjectedFault(name)))


def disarm(name: str | None = None) -> None:
    """Disarm one point, or all of them."""
    if name is None:
        _armed.clear()
        hits.clear()
    else:
        _armed.pop(name, None)


def armed() -> set[str]:
    """The points armed now."""
    return set(_armed)


def failures_left() -> int | None:
    """How many more hits will raise in all (None: a point is armed until disarmed)."""
    if any(left < 0 for left, _ in _armed.values()):
        return None
    return sum(left for left, _ in _armed.values())


@contextmanager
def armed_at(name: str, *, times: int = 1) -> Iterator[None]:
    """Arm a point for the duration of a block."""
    arm(name, times=times)
    try:
        yield
    finally:
        disarm(name)
