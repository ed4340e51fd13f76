"""Rate-limit manners: poll as fast as the provider allows, never faster.

Providers say how much they will take in three ways, and a polite client listens to all
of them:

- ``Retry-After`` on a ``429``/``503`` (and GitHub's ``403`` for its secondary limits):
  "not before then". :func:`parse_retry_after` reads both of its forms.
- Quota headers: ``X-RateLimit-Limit/-Remaining/-Reset`` (GitHub and many others), the
  IETF draft's ``RateLimit-Limit/-Remaining/-Reset``, and GitHub's ``X-Poll-Interval``.
  :func:`rate_limit_from_headers` turns them into a :class:`RateLimit`.
- Errors: after a failure, back off exponentially with full jitter
  (:func:`error_backoff`), so clients that failed together don't return together.

:class:`HostBudget` combines the first two for one API host, shared by every poll that
talks to it: it answers "when may the next request go out?" and "why not yet?".
Everything is a function of its arguments and ``now``; nothing here sleeps or reads the
clock.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .conditional import HeadersInput, _reusable, header_value, parse_http_date

__all__ = [
    "DEFAULT_PACE_BELOW",
    "DEFAULT_RESERVE",
    "DEFAULT_THROTTLE_WAIT",
    "MAX_RETRY_AFTER",
    "HostBudget",
    "RateLimit",
    "error_backoff",
    "parse_retry_after",
    "rate_limit_from_headers",
]

MAX_RETRY_AFTER = 86400.0
"""The longest wait a ``Retry-After`` (or a rate-limit reset) can impose: one day. A
longer value is far more likely a server bug than a real request, and a poll that sleeps
for a year looks dead."""

DEFAULT_RESERVE = 0.1
"""The share of a host's rate limit left untouched for the API key's other users."""

DEFAULT_PACE_BELOW = 0.5
"""Pacing starts once the remaining quota falls to this share of the limit."""

DEFAULT_THROTTLE_WAIT = 60.0
"""How long to leave a host alone after a ``429`` that gives no ``Retry-After`` (GitHub's
advice for its secondary limits: "wait for at least one minute")."""

_EPOCH_THRESHOLD = 10**9
"""``X-RateLimit-Reset`` values at least this large are UNIX times, smaller ones are
seconds from now (10**9 seconds after the epoch is September 2001)."""
_EPOCH_MS_THRESHOLD = 10**12
"""... and values at least this large are UNIX times in milliseconds."""

_RETRY_AFTER_STATUSES = frozenset({403, 429, 503})
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_LEADING_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:[,;]|$)")


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait, from a ``Retry-After`` value; ``None`` when it is not one.

    >>> parse_retry_after("120", now=0)
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0)
    30.0

    Accepts delta-seconds (a decimal fraction too, which some servers send) and every
    HTTP-date form. A time in the past or a negative number means "now" (``0.0``); the
    result is capped at :data:`MAX_RETRY_AFTER`.
    """
    text = value.strip()
    if _NUMBER.fullmatch(text):
        seconds = float(text)
    else:
        moment = parse_http_date(text, now=now)
        if moment is None:
            return None
        seconds = moment - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A host's quota as one response reported it. Unknown parts are ``None``.

    >>> RateLimit(limit=5000, remaining=4999, reset_at=1_700_003_600.0)
    RateLimit(limit=5000, remaining=4999, reset_at=1700003600.0, poll_interval=None)

    ``reset_at`` is a UNIX time (seconds) whatever form the header used;
    ``poll_interval`` is the shortest interval between polls the API asks for
    (GitHub's ``X-Poll-Interval``), for the poll's :class:`AdaptiveInterval`.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    poll_interval: float | None = None


def rate_limit_from_headers(headers: HeadersInput, now: float) -> RateLimit | None:
    """The :class:`RateLimit` a response's headers describe, or ``None`` if they don't.

    >>> rate_limit_from_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}, 1e9)
    RateLimit(limit=None, remaining=0, reset_at=1000000060.0, poll_interval=None)

    Reads the IETF draft's ``RateLimit-Limit``, ``RateLimit-Remaining`` and
    ``RateLimit-Reset`` (delta seconds) first, then the common ``X-RateLimit-*`` for any
    part still missing. ``X-RateLimit-Reset`` is a UNIX time in seconds (GitHub) when at
    least 10**9, in milliseconds when at least 10**12, and seconds from ``now``
    otherwise (as some APIs send it). A value with several numbers (``"100, 100;w=60"``)
    counts by its first. A reset further away than :data:`MAX_RETRY_AFTER` is clamped.
    Unparsable values are ignored.
    """
    headers = _reusable(headers)
    limit = _count(headers, "ratelimit-limit")
    if limit is None:
        limit = _count(headers, "x-ratelimit-limit")
    remaining = _count(headers, "ratelimit-remaining")
    if remaining is None:
        remaining = _count(headers, "x-ratelimit-remaining")
    reset_at: float | None = None
    delta = _number(headers, "ratelimit-reset")
    if delta is not None:
        reset_at = now + delta
    else:
        stamp = _number(headers, "x-ratelimit-reset")
        if stamp is not None:
            if stamp >= _EPOCH_MS_THRESHOLD:
                reset_at = stamp / 1000
            elif stamp >= _EPOCH_THRESHOLD:
                reset_at = stamp
            else:
                reset_at = now + stamp
    if reset_at is not None:
        reset_at = min(reset_at, now + MAX_RETRY_AFTER)
    poll_interval = _number(headers, "x-poll-interval")
    if limit is None and remaining is None and reset_at is None and poll_interval is None:
        return None
    return RateLimit(
        limit=limit, remaining=remaining, reset_at=reset_at, poll_interval=poll_interval
    )


def _number(headers: HeadersInput, name: str) -> float | None:
    value = header_value(headers, name)
    if value is None:
        return None
    match = _LEADING_NUMBER.match(value)
    return float(match.group(1)) if match else None


def _count(headers: HeadersInput, name: str) -> int | None:
    number = _number(headers, name)
    return int(number) if number is not None else None


def error_backoff(failures: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait after ``failures`` consecutive failures: full-jitter backoff.

    >>> error_backoff(3, base=10, cap=600, rand=lambda: 0.5)
    20.0

    Uniform in ``[0, min(cap, base * 2**(failures - 1))]``; ``rand`` returns a number in
    ``[0, 1)`` (``random.random``), which keeps the result reproducible in tests.
    """
    if failures < 1:
        raise ValueError(f"failures must be at least 1 (got {failures}); no failure, no backoff")
    if base <= 0:
        raise ValueError(f"base must be positive (got {base})")
    if cap < 0:
        raise ValueError(f"cap can't be negative (got {cap})")
    ceiling = cap
    if failures - 1 < 1024:  # beyond that 2.0 ** n overflows, and the cap has long won
        ceiling = min(cap, base * 2.0 ** (failures - 1))
    return min(max(rand(), 0.0), 1.0) * ceiling


class HostBudget:
    """When the next request to one API host may go out, given what the host said.

    >>> budget = HostBudget()
    >>> budget.observe(None, status=429, retry_after=30, now=1000.0)
    >>> budget.earliest(now=1000.0)
    1030.0
    >>> budget.wait_reason(now=1000.0)
    'Retry-After 30s after HTTP 429, until 00:17:10 UTC'

    One object per host, shared by every poll on it. Call :meth:`sent` when a request
    goes out and :meth:`observe` when its answer comes back. :meth:`earliest` is the
    latest of these limits:

    - a ``Retry-After`` on a ``403``/``429``/``503``: not before it ends; a ``429``
      without one (and with quota left) keeps the host quiet for ``throttle_wait``;
    - the quota is exhausted, or down to the ``reserve`` (a share of the limit kept for
      the API key's other users): not before the reset;
    - the remaining quota is at most ``pace_below`` of the limit: the usable requests
      are spread evenly until the reset;
    - ``min_gap`` seconds (or ``1 / max_per_second``) between two requests.

    Requests sent since the last answer count against the remaining quota, so polls
    that go out together don't all spend the same last request. Once the reset time has
    passed, the quota is assumed full again until a response says otherwise.
    """

    __slots__ = (
        "_gap",
        "_limit",
        "_observed_at",
        "_pace_below",
        "_remaining",
        "_reserve",
        "_reset_at",
        "_retry_reason",
        "_retry_until",
        "_sent_at",
        "_sent_since_observed",
        "_throttle_wait",
    )

    def __init__(
        self,
        *,
        reserve: float = DEFAULT_RESERVE,
        pace_below: float = DEFAULT_PACE_BELOW,
        min_gap: float = 0.0,
        max_per_second: float | None = None,
        throttle_wait: float = DEFAULT_THROTTLE_WAIT,
    ) -> None:
        if not 0 <= reserve < 1:
            raise ValueError(f"reserve is a share of the limit in [0, 1) (got {reserve})")
        if not 0 <= pace_below <= 1:
            raise ValueError(f"pace_below is a share of the limit in [0, 1] (got {pace_below})")
        if min_gap < 0:
            raise ValueError(f"min_gap can't be negative (got {min_gap})")
        if max_per_second is not None and max_per_second <= 0:
            raise ValueError(
                f"max_per_second must be positive (got {max_per_second}); leave it out for no limit"
            )
        if throttle_wait < 0:
            raise ValueError(f"throttle_wait can't be negative (got {throttle_wait})")
        self._reserve = reserve
        self._pace_below = pace_below
        self._gap = max(min_gap, 1 / max_per_second if max_per_second else 0.0)
        self._throttle_wait = throttle_wait
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._observed_at = 0.0
        self._sent_at: float | None = None
        self._sent_since_observed = 0
        self._retry_until = 0.0
        self._retry_reason = ""

    @property
    def limit(self) -> int | None:
        """The host's quota per window, as last reported."""
        return self._limit

    @property
    def remaining(self) -> int | None:
        """The requests left in the window: the last report minus the requests sent since."""
        if self._remaining is None:
            return None
        return max(self._remaining - self._sent_since_observed, 0)

    @property
    def reset_at(self) -> float | None:
        """When the host's quota window resets (UNIX time), as last reported."""
        return self._reset_at

    def sent(self, now: float) -> None:
        """Record that a request to this host went out at ``now``."""
        self._sent_at = now if self._sent_at is None else max(self._sent_at, now)
        self._sent_since_observed += 1

    def observe(
        self,
        rate_limit: RateLimit | None,
        *,
        status: int,
        retry_after: float | None,
        now: float,
    ) -> None:
        """Take in an answer: its quota headers, its status and its ``Retry-After`` (seconds).

        ``Retry-After`` counts only on ``403``, ``429`` and ``503``; on other statuses it
        means something else (a redirect's delay, say). A newer ``Retry-After`` never
        shortens an older one.
        """
        if rate_limit is not None and rate_limit.remaining is not None:
            self._remaining = rate_limit.remaining
            self._sent_since_observed = 0
            self._reset_at = rate_limit.reset_at
            self._observed_at = now
            if rate_limit.limit is not None:
                self._limit = rate_limit.limit
        elif rate_limit is not None and rate_limit.limit is not None:
            self._limit = rate_limit.limit
        if status in _RETRY_AFTER_STATUSES and retry_after is not None:
            wait = min(max(retry_after, 0.0), MAX_RETRY_AFTER)
            self._block(now + wait, f"Retry-After {wait:g}s after HTTP {status}")
        elif status == 429 and self._remaining != 0:
            self._block(
                now + self._throttle_wait,
                f"HTTP 429 without Retry-After: waiting {self._throttle_wait:g}s",
            )

    def _block(self, until: float, reason: str) -> None:
        if until > self._retry_until:
            self._retry_until = until
            self._retry_reason = reason

    def earliest(self, now: float) -> float:
        """The earliest time (UNIX seconds, never before ``now``) a request may be sent."""
        return max([now, *(when for when, _ in self._limits(now))])

    def wait_reason(self, now: float) -> str | None:
        """Why the next request must wait, for logs and stats; ``None`` if it need not.

        >>> budget = HostBudget()
        >>> budget.observe(RateLimit(remaining=0, reset_at=43205.0), status=200,
        ...                retry_after=None, now=43200.0)
        >>> budget.wait_reason(now=43200.0)
        'rate limit exhausted until 12:00:05 UTC'
        """
        limits = [(when, reason) for when, reason in self._limits(now) if when > now]
        if not limits:
            return None
        return max(limits, key=lambda limit: limit[0])[1]

    def _limits(self, now: float) -> list[tuple[float, str]]:
        limits: list[tuple[float, str]] = []
        if self._retry_until > now:
            until = self._retry_until
            limits.append((until, f"{self._retry_reason}, until {_clock_time(until)}"))
        quota = self._quota_limit(now)
        if quota is not None:
            limits.append(quota)
        if self._gap > 0 and self._sent_at is not None:
            limits.append((self._sent_at + self._gap, f"{self._gap:g}s between requests"))
        return limits

    def _quota_limit(self, now: float) -> tuple[float, str] | None:
        remaining = self.remaining
        if remaining is None:
            return None
        reset_at = self._reset_at
        if reset_at is None:
            # Exhausted with no word on when it resets: try again after throttle_wait.
            if remaining > 0:
                return None
            until = self._observed_at + self._throttle_wait
            return until, f"rate limit exhausted (no reset time given) until {_clock_time(until)}"
        if now >= reset_at:
            return None
        if remaining <= 0:
            return reset_at, f"rate limit exhausted until {_clock_time(reset_at)}"
        limit = self._limit
        if limit is None:
            return None
        kept = math.ceil(limit * self._reserve)
        usable = remaining - kept
        if usable <= 0:
            return reset_at, (
                f"rate limit down to its reserve ({remaining} of {limit} left for others) "
                f"until {_clock_time(reset_at)}"
            )
        if remaining > limit * self._pace_below or self._sent_at is None:
            return None
        gap = (reset_at - self._sent_at) / usable
        return self._sent_at + gap, (
            f"pacing {usable} requests until the reset at {_clock_time(reset_at)}: "
            f"one every {gap:.3g}s"
        )


def _clock_time(moment: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(moment))
