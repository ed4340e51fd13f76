"""The retry schedule: exponential backoff with full jitter, pure and clock-free.

Why full jitter: when a downstream service fails, every delivery that touched it fails
at about the same moment. Retrying at ``base * 2**n`` exactly would bring them all back
together; drawing uniformly from ``[0, base * 2**n]`` spreads them out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from .durations import parse_duration

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "RetryPolicy",
]

DEFAULT_MAX_ATTEMPTS = 40
"""With full jitter the expected spacing is half the ceiling; 40 attempts under a 6 h cap
spread over about 3.4 days on average, so ``max_age`` (3 days) is what ends them."""
DEFAULT_MAX_AGE = 3 * 86400.0
DEFAULT_BASE_DELAY = 2.0
DEFAULT_MAX_DELAY = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again after a failure, and when to give up.

    >>> policy = RetryPolicy(max_attempts=5, base_delay=1, max_delay=60)
    >>> 0 <= policy.delay(attempt=3, rand=random.random) <= 8

    ``attempt`` is the number of the attempt that just failed (1 for the first).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age: float = DEFAULT_MAX_AGE
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY

    def __init__(
        self,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_age: float | timedelta | str = DEFAULT_MAX_AGE,
        base_delay: float | timedelta | str = DEFAULT_BASE_DELAY,
        max_delay: float | timedelta | str = DEFAULT_MAX_DELAY,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        object.__setattr__(self, "max_attempts", int(max_attempts))
        object.__setattr__(self, "max_age", parse_duration(max_age))
        object.__setattr__(self, "base_delay", parse_duration(base_delay))
        object.__setattr__(self, "max_delay", parse_duration(max_delay))
        if self.base_delay <= 0:
            raise ValueError("base_delay must be positive")
        if self.max_delay < self.base_delay:
            raise ValueError("max_delay must be at least base_delay")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered delay after ``attempt`` failures."""
        exponent = min(max(attempt - 1, 0), 62)
        return float(min(self.max_delay, self.base_delay * (2**exponent)))

    def delay(self, attempt: int, rand: object = random.random) -> float:
        """A full-jitter delay in ``[0, ceiling(attempt)]``; ``rand`` returns [0, 1)."""
        draw = rand() if callable(rand) else random.random()
        return float(draw) * self.ceiling(attempt)

    def next_attempt_at(
        self,
        *,
        attempt: int,
        now: float,
        first_received_at: float,
        requested_at: float | None = None,
        rand: object = random.random,
    ) -> float | None:
        """When to try next, or ``None`` to dead-letter.

        ``requested_at`` is a handler's ``Retry(at=/after=)`` (or a ``Retry-After``);
        it replaces the jittered delay but never the limits.
        """
        if attempt >= self.max_attempts:
            return None
        when = requested_at if requested_at is not None else now + self.delay(attempt, rand)
        if when - first_received_at > self.max_age:
            return None
        return max(when, now)
