"""How often to poll: fast while things change, slower while they don't.

Polling trades freshness for requests. A resource that changed a moment ago is likely to
change again soon; one that has been quiet for an hour probably stays quiet. So the
interval snaps back to ``min_every`` on a change and grows by ``slow_factor`` after each
quiet poll, up to ``max_every``. The price is latency: a change can wait up to the
current interval before it is seen, which :attr:`AdaptiveInterval.detection_latency_bound`
reports so it can be shown rather than hidden.
"""

from __future__ import annotations

import math
from datetime import timedelta

from ..durations import parse_duration

__all__ = ["DEFAULT_SLOW_FACTOR", "AdaptiveInterval"]

DEFAULT_SLOW_FACTOR = 1.5


class AdaptiveInterval:
    """The interval between two polls of one resource, adapted to how often it changes.

    >>> interval = AdaptiveInterval(min_every=10, max_every=60, slow_factor=2)
    >>> interval.observe(changed=False), interval.observe(changed=False)
    (20.0, 40.0)
    >>> interval.observe(changed=False), interval.observe(changed=True)
    (60.0, 10.0)

    A fixed interval is ``min_every == max_every``. Durations are seconds, a
    ``timedelta`` or text like ``"5m"``. :meth:`floor` raises the lower bound to what
    the API asks for (GitHub's ``X-Poll-Interval``); an API's wish wins over
    ``max_every`` too, so the interval always lies within
    ``[max(min_every, floor), max(max_every, floor)]``.
    """

    __slots__ = ("_current", "_floor", "_max", "_min", "_slow_factor")

    def __init__(
        self,
        min_every: float | timedelta | str,
        max_every: float | timedelta | str,
        *,
        slow_factor: float = DEFAULT_SLOW_FACTOR,
        start: float | timedelta | str | None = None,
    ) -> None:
        low = _positive("min_every", min_every)
        high = _positive("max_every", max_every)
        if low > high:
            raise ValueError(
                f"min_every ({low:g}s) is longer than max_every ({high:g}s); "
                "swap them, or make them equal for a fixed interval"
            )
        if isinstance(slow_factor, bool) or not slow_factor >= 1:
            raise ValueError(
                f"slow_factor must be at least 1 (got {slow_factor!r}); 1 keeps the "
                "interval at min_every after quiet polls"
            )
        first = low if start is None else _positive("start", start)
        if not low <= first <= high:
            raise ValueError(
                f"start ({first:g}s) must lie between min_every ({low:g}s) "
                f"and max_every ({high:g}s)"
            )
        self._min = low
        self._max = high
        self._slow_factor = float(slow_factor)
        self._floor = 0.0
        self._current = first

    @property
    def min_every(self) -> float:
        return self._min

    @property
    def max_every(self) -> float:
        return self._max

    @property
    def slow_factor(self) -> float:
        return self._slow_factor

    @property
    def api_floor(self) -> float:
        """The shortest interval the API asked for (``0.0`` if it asked for none)."""
        return self._floor

    @property
    def current(self) -> float:
        """Seconds from the last poll to the next one."""
        return self._current

    @property
    def detection_latency_bound(self) -> float:
        """The longest a change can wait before a poll sees it: the current interval."""
        return self._current

    def observe(self, changed: bool) -> float:
        """Take in a poll's outcome and return the new interval.

        A change snaps back to the shortest interval; a quiet poll multiplies the
        interval by ``slow_factor``, up to the longest.
        """
        low, high = self._bounds()
        if changed:
            self._current = low
        else:
            self._current = min(max(self._current * self._slow_factor, low), high)
        return self._current

    def floor(self, seconds: float | timedelta | str | None) -> float:
        """Never poll more often than every ``seconds``, as the API asks; return the interval.

        >>> interval = AdaptiveInterval(min_every=10, max_every=60)
        >>> interval.floor(90)
        90.0

        Each call replaces the previous floor (APIs repeat it on every response and may
        change it); ``None`` or ``0`` removes it.
        """
        floor = 0.0 if seconds is None else parse_duration(seconds)
        if not math.isfinite(floor):
            raise ValueError(f"floor must be a finite duration (got {seconds!r})")
        self._floor = floor
        low, high = self._bounds()
        self._current = min(max(self._current, low), high)
        return self._current

    def _bounds(self) -> tuple[float, float]:
        return max(self._min, self._floor), max(self._max, self._floor)

    def __repr__(self) -> str:
        return (
            f"AdaptiveInterval(min_every={self._min:g}, max_every={self._max:g}, "
            f"slow_factor={self._slow_factor:g}, current={self._current:g})"
        )


def _positive(name: str, value: float | timedelta | str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if seconds <= 0:
        raise ValueError(f"{name} must be a positive duration (got {value!r})")
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite duration (got {value!r})")
    return seconds
