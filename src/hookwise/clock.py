"""Time, injected. Everything that depends on "now" takes a :class:`Clock`."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock", "system_clock"]


class Clock(Protocol):
    """Something that tells the wall-clock time as UNIX seconds (float)."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class FrozenClock:
    """A clock that only moves when told to, for tests.

    >>> clock = FrozenClock(1_700_000_000)
    >>> clock.advance(30)
    >>> clock.now()
    1700000030.0
    """

    def __init__(self, at: float) -> None:
        self._now = float(at)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, at: float) -> None:
        self._now = float(at)


system_clock = SystemClock()
