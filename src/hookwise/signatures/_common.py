"""Pieces every signature scheme shares: timestamp checks and constant-time compares."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Sequence

from hookwise.errors import VerificationError

__all__ = [
    "UNIX_SECONDS",
    "HmacKey",
    "any_hex_match",
    "as_bytes",
    "check_timestamp",
    "constant_time_equal",
    "header_bytes",
    "parse_timestamp",
]

# Twelve digits reach the year 33658; anything longer is not a UNIX time in seconds
# and would only make int() do needless work on hostile input.
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
"""What a UNIX time in seconds may look like as text (use with ``fullmatch``)."""


def parse_timestamp(value: str | None, *, header: str) -> int:
    """The integer UNIX seconds in ``value``, or a ``VerificationError`` naming ``header``.

    >>> parse_timestamp("1614265330", header="webhook-timestamp")
    1614265330
    """
    if not value:
        raise VerificationError("missing_header", f"the {header} header is missing or empty")
    text = value.strip()
    if not UNIX_SECONDS.fullmatch(text):
        raise VerificationError(
            "malformed_header", f"the {header} header is not an integer number of UNIX seconds"
        )
    return int(text)


def check_timestamp(timestamp: float, *, now: float, tolerance: float) -> None:
    """Reject ``timestamp`` when it is more than ``tolerance`` seconds from ``now``, either way.

    A timestamp exactly ``tolerance`` seconds away still passes.

    >>> check_timestamp(1000, now=1300, tolerance=300)
    """
    age = now - timestamp
    if age > tolerance:
        raise VerificationError(
            "timestamp_too_old",
            f"timestamp is {_seconds(age)}s old, beyond the {_seconds(tolerance)}s tolerance",
            offset=age,
        )
    if -age > tolerance:
        raise VerificationError(
            "timestamp_too_new",
            f"timestamp is {_seconds(-age)}s in the future, "
            f"beyond the {_seconds(tolerance)}s tolerance",
            offset=age,
        )


def header_bytes(value: str) -> bytes:
    """The bytes a header value had on the wire.

    Headers arrive as bytes and are decoded as latin-1, so encoding back as latin-1
    recovers exactly what the sender signed. Strings built in Python may hold other
    characters; those are taken as UTF-8, which is what a sender would have sent.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return as_bytes(value)


def as_bytes(text: str) -> bytes:
    """``text`` as bytes for comparison; never fails, whatever the string holds."""
    return text.encode("utf-8", "surrogatepass")


def constant_time_equal(expected: str, given: str) -> bool:
    """Compare two strings without leaking, through timing, where they first differ."""
    try:
        return hmac.compare_digest(expected, given)  # ASCII strings: compared as they are
    except TypeError:  # non-ASCII text: compare its bytes instead
        return hmac.compare_digest(as_bytes(expected), as_bytes(given))


def any_hex_match(keys: Iterable[HmacKey], content: bytes, given: Sequence[str]) -> bool:
    """Whether one of ``given`` is the hex HMAC of ``content`` under one of ``keys``."""
    for key in keys:
        expected = key.digest(content).hex()
        if any(constant_time_equal(expected, value) for value in given):
            return True
    return False


# HMAC's inner and outer pads (RFC 2104), as bytes.translate() tables.
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class HmacKey:
    """One HMAC key, its padded inner and outer hash states computed once.

    >>> HmacKey(b"key", "sha256").digest(b"body") == hmac.digest(b"key", b"body", "sha256")
    True

    This is RFC 2104 HMAC, as :func:`hmac.digest` computes it, minus the two pad
    blocks it hashes again for every message: a source checks every delivery
    against the same few keys, and for a small body those blocks are half the work.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, algorithm: str) -> None:
        inner = hashlib.new(algorithm)
        if len(key) > inner.block_size:
            key = hashlib.new(algorithm, key).digest()
        key = key.ljust(inner.block_size, b"\0")
        inner.update(key.translate(_IPAD))
        outer = hashlib.new(algorithm)
        outer.update(key.translate(_OPAD))
        self._inner = inner
        self._outer = outer

    def __repr__(self) -> str:
        return f"<HmacKey {self._inner.name}>"  # never the key

    def digest(self, content: bytes) -> bytes:
        """The HMAC of ``content`` under this key."""
        inner = self._inner.copy()
        inner.update(content)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    rounded = round(float(value), 3)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)
