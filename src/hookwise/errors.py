"""hookwise's one exception tree.

::

    HookwiseError                      base of everything hookwise raises on purpose
    ├── ConfigError                    a bad hookwise.toml or argument; says file, key and fix
    ├── RequestError                   the caller's fault -> 4xx
    │   ├── VerificationError          bad/missing signature, stale timestamp -> 401
    │   │                              (``reason`` is machine-readable: "timestamp_too_old"...)
    │   ├── PayloadTooLarge            body over max_body_bytes -> 413
    │   └── UnknownSource              no such source -> 404
    ├── StoreError                     ours or transient -> 503 + Retry-After
    │   ├── StoreUnavailable           can't open, read-only, disk full, locked past the timeout
    │   ├── StoreOverloaded            intake queue full; back off and retry
    │   └── StoreNotOpen               the store was used before ``open()``
    ├── HandlerOutcome                 raised by handlers to steer the worker (not errors)
    │   ├── Retry                      retry at a given time
    │   └── Reject                     dead-letter now
    └── NotFound                       an id the CLI/API was asked about does not exist

Caller-fault errors carry a stable ``reason`` string; messages say what to do next.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = [
    "ConfigError",
    "Forbidden",
    "HandlerOutcome",
    "HookwiseError",
    "NotFound",
    "PayloadTooLarge",
    "Reject",
    "RequestError",
    "Retry",
    "StoreError",
    "StoreNotOpen",
    "StoreOverloaded",
    "StoreUnavailable",
    "UnknownSource",
    "VerificationError",
]


class HookwiseError(Exception):
    """Base class of every exception hookwise raises on purpose."""


class ConfigError(HookwiseError):
    """A configuration mistake. The message names the file, the key and the fix.

    >>> raise ConfigError("tolerance: '5 mins' is not a duration", file="hookwise.toml",
    ...                   key="sources.stripe.tolerance", fix='write it like "5m" or "300s"')
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.key = key
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file and self.key:
            where = f"{self.file}: [{self.key}] "
        elif self.file:
            where = f"{self.file}: "
        elif self.key:
            where = f"[{self.key}] "
        text = f"{where}{self.problem}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class RequestError(HookwiseError):
    """The request is at fault; answered with a 4xx ``status``."""

    status = 400

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class VerificationError(RequestError):
    """A signature, timestamp or credential did not verify. Answered 401.

    ``reason`` is one of a small set of stable strings (``missing_header``,
    ``malformed_header``, ``no_matching_signature``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``bad_secret``...). ``detail`` is for logs, never for
    the HTTP body, and never contains a secret.
    """

    status = 401

    def __init__(self, reason: str, detail: str = "", *, offset: float | None = None) -> None:
        super().__init__(reason, detail)
        self.offset = offset
        """For timestamp reasons: how many seconds the signed time is from now
        (positive: in the past; negative: in the future)."""


class Forbidden(RequestError):
    """The sender's address is not in the source's ``allow_ips``. Answered 403."""

    status = 403


class PayloadTooLarge(RequestError):
    """The body is larger than ``max_body_bytes``. Answered 413."""

    status = 413


class UnknownSource(RequestError):
    """No source is configured under that name. Answered 404."""

    status = 404


class StoreError(HookwiseError):
    """The store can't do what was asked right now. Answered 503 with ``Retry-After``."""

    retry_after = 5


class StoreUnavailable(StoreError):
    """The store can't be reached or written (read-only, disk full, locked too long)."""


class StoreOverloaded(StoreError):
    """Too many appends are waiting; the caller should back off."""

    retry_after = 1


class StoreNotOpen(StoreError):
    """The store was used before it was opened.

    Open it first: ``async with open_store(url) as store: ...`` or ``await store.open()``.
    """

    def __init__(self, what: str = "store") -> None:
        super().__init__(
            f"the {what} is not open; use `async with` on it or call `await .open()` first"
        )


class NotFound(HookwiseError):
    """The event, delivery or poll asked about does not exist."""


class HandlerOutcome(HookwiseError):
    """Base for exceptions a handler raises to steer what happens next."""


class Retry(HandlerOutcome):
    """Raise from a handler to retry later.

    >>> raise Retry(after=30)            # in 30 seconds
    >>> raise Retry(after=timedelta(minutes=5))
    >>> raise Retry(at=datetime(2030, 1, 1, tzinfo=UTC))

    The attempt still counts toward ``max_attempts``.
    """

    def __init__(
        self,
        reason: str = "retry requested",
        *,
        after: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        if after is not None and at is not None:
            raise TypeError("give Retry either after= or at=, not both")
        if isinstance(after, timedelta):
            after = after.total_seconds()
        if after is not None and after < 0:
            raise ValueError("Retry(after=...) must not be negative")
        self.after: float | None = after
        self.at = at
        self.reason = reason
        super().__init__(reason)


class Reject(HandlerOutcome):
    """Raise from a handler to dead-letter the delivery at once (no more retries).

    >>> raise Reject("unknown customer")
    """

    def __init__(self, reason: str = "rejected by handler") -> None:
        self.reason = reason
        super().__init__(reason)
