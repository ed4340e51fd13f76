"""Paddle Billing's ``Paddle-Signature`` scheme, as a pure function of bytes and ``now``.

Paddle signs ``{ts}:{raw body}`` with HMAC-SHA256, keyed with the UTF-8 of the whole
endpoint secret key (``pdl_ntfset_...``, not decoded), and sends
``Paddle-Signature: ts=<unix seconds>;h1=<hex>[;h1=<hex>...]``; several ``h1`` while
a secret is being rotated. Every ``h1`` is checked (Paddle's Node SDK keeps only the
last one; its Python SDK checks all, as this module does).

>>> sign(b"pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
...      1696195954, b"hello-world")
'ts=1696195954;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from hookwise.errors import VerificationError
from hookwise.signatures._common import HmacKey, any_hex_match, check_timestamp
from hookwise.signatures._timestamped import split_header

__all__ = ["HEADER", "ParsedHeader", "Verifier", "parse_header", "sign", "signature", "verify"]

HEADER = "Paddle-Signature"
SCHEME = "h1"


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    """The parts of a ``Paddle-Signature`` value.

    >>> parse_header("ts=1696195954;h1=abc;h1=def")
    ParsedHeader(timestamp=1696195954, h1=('abc', 'def'))
    """

    timestamp: int
    h1: tuple[str, ...]
    timestamp_text: str = field(default="", repr=False, compare=False)
    """The timestamp as sent: what was signed."""


def signature(key: bytes, timestamp: int | str, body: bytes) -> str:
    """The hex ``h1`` signature of ``body`` at ``timestamp``."""
    return hmac.digest(key, b"%s:%s" % (str(timestamp).encode("ascii"), body), hashlib.sha256).hex()


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """A whole ``Paddle-Signature`` value for one key."""
    return f"ts={timestamp};{SCHEME}={signature(key, timestamp, body)}"


def parse_header(value: str | None) -> ParsedHeader:
    """Split a ``Paddle-Signature`` value; ``VerificationError`` when it can't be read."""
    parts = split_header(value, header=HEADER, separator=";", time_name="ts", scheme=SCHEME)
    if not parts.signatures:
        raise VerificationError("malformed_header", f"{HEADER} holds no h1=<signature>")
    return ParsedHeader(parts.timestamp, parts.signatures, parts.timestamp_text)


def verify(
    keys: Sequence[bytes],
    *,
    header: str | None,
    body: bytes,
    now: float,
    tolerance: float,
) -> None:
    """Return if one ``h1`` signature matches one of ``keys``; raise otherwise.

    >>> verify([b"pdl_ntfset_..."], header=headers["paddle-signature"], body=body,
    ...        now=clock.now(), tolerance=300)

    Raises only :class:`~hookwise.errors.VerificationError` with ``reason``
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new`` or ``no_matching_signature``.
    """
    Verifier(keys).verify(header=header, body=body, now=now, tolerance=tolerance)


class Verifier:
    """:func:`verify` for a fixed set of keys, prepared once."""

    __slots__ = ("_count", "_keys")

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)
        self._count = len(self._keys)

    def verify(self, *, header: str | None, body: bytes, now: float, tolerance: float) -> None:
        """Return if one ``h1`` matches one of the keys; raise ``VerificationError``."""
        parsed = parse_header(header)
        check_timestamp(parsed.timestamp, now=now, tolerance=tolerance)
        content = b"%s:%s" % (parsed.timestamp_text.encode("ascii"), body)
        if any_hex_match(self._keys, content, parsed.h1):
            return
        raise VerificationError(
            "no_matching_signature",
            f"none of the {len(parsed.h1)} h1 signature(s) in {HEADER} matches "
            f"any of the {self._count} secret(s)",
        )
