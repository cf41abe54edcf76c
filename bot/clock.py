"""Injected time: the system clock in production, a clock tests and the demo can move."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time (aware, UTC) and can wait for it to pass."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Elapsed:
    """A clock's time that never goes back: a step back (NTP stepping a clock that ran ahead,
    someone fixing it by hand) is ignored and counting goes on from the new reading, so a
    span measured on it (a lease's life) lasts as long as it really does."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._read: datetime | None = None
        self._now: datetime | None = None

    def now(self) -> datetime:
        read = self.clock.now()
        if self._read is None or self._now is None:
            self._now = read
        elif read > self._read:
            self._now += read - self._read
        self._read = read
        return self._now

    def at(self, when: datetime) -> datetime:
        """`when`, a time of the clock (a turn ahead, say), on this one."""
        return self.now() + (when - self.clock.now())


class FakeClock:
    """A clock that stands still until moved (tests; the demo's /time command)."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has been moved `seconds` forward (never by itself)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        try:
            await future
        finally:
            self._sleepers = [(t, f) for t, f in self._sleepers if f is not future]

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta`, wake the sleepers that are due, return the new time."""
        self._now += delta
        for due, future in self._sleepers:
            if due <= self._now and not future.done():
                future.set_result(None)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (aware)."""
        self.advance(when.astimezone(UTC) - self._now)


class OffsetClock:
    """The real time plus an offset the demo console can move (`/time +3h`)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` and return the new time."""
        self.offset += delta
        return self.now()
