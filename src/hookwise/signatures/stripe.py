"""Stripe's ``Stripe-Signature`` scheme, as a pure function of bytes and ``now``.

Stripe signs ``{t}.{raw body}`` with HMAC-SHA256 and sends, in one header,
``t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]``: one ``v1`` per active
secret of the endpoint (two while a rolled secret is still valid). The key is the
UTF-8 of the whole ``whsec_...`` string, not its base64 decoding (unlike Standard
Webhooks, despite the same prefix). Only ``v1`` counts: ``v0`` and any other scheme
is ignored, so a forger can't downgrade a request to a weaker one.

>>> sign(b"whsec_test_secret", 1700000000, b'{"id":"evt_test_webhook","object":"event"}')
't=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990'
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

HEADER = "Stripe-Signature"
SCHEME = "v1"


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    """The parts of a ``Stripe-Signature`` value.

    >>> parse_header("t=1700000000,v1=abc,v0=def")
    ParsedHeader(timestamp=1700000000, v1=('abc',), schemes=('t', 'v1', 'v0'))
    """

    timestamp: int
    v1: tuple[str, ...]
    schemes: tuple[str, ...]
    """Every scheme name in the header, in order, once each (for messages)."""
    timestamp_text: str = field(default="", repr=False, compare=False)
    """The timestamp as sent: what was signed."""


def signature(key: bytes, timestamp: int | str, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` at ``timestamp``.

    >>> signature(b"whsec_test_secret", 1700000000, b"{}")[:12]
    'ceb8863f7208'
    """
    return hmac.digest(key, b"%s.%s" % (str(timestamp).encode("ascii"), body), hashlib.sha256).hex()


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """A whole ``Stripe-Signature`` value for one key."""
    return f"t={timestamp},{SCHEME}={signature(key, timestamp, body)}"


def parse_header(value: str | None) -> ParsedHeader:
    """Split a ``Stripe-Signature`` value; ``VerificationError`` when it can't be read."""
    parts = split_header(value, header=HEADER, separator=",", time_name="t", scheme=SCHEME)
    return ParsedHeader(parts.timestamp, parts.signatures, parts.schemes, parts.timestamp_text)


def verify(
    keys: Sequence[bytes],
    *,
    header: str | None,
    body: bytes,
    now: float,
    tolerance: float,
) -> None:
    """Return if one ``v1`` signature matches one of ``keys``; raise otherwise.

    >>> verify([b"whsec_..."], header=headers["stripe-signature"], body=body,
    ...        now=clock.now(), tolerance=300)

    Raises only :class:`~hookwise.errors.VerificationError` with ``reason``
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new`` or ``no_matching_signature``. The tolerance is two-sided
    (Stripe's own libraries only refuse old timestamps).
    """
    Verifier(keys).verify(header=header, body=body, now=now, tolerance=tolerance)


class Verifier:
    """:func:`verify` for a fixed set of keys, prepared once.

    >>> Verifier([b"whsec_..."]).verify(header=h, body=body, now=clock.now(), tolerance=300)
    """

    __slots__ = ("_count", "_keys")

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)
        self._count = len(self._keys)

    def verify(self, *, header: str | None, body: bytes, now: float, tolerance: float) -> None:
        """Return if one ``v1`` signature matches one of the keys; raise ``VerificationError``."""
        parsed = parse_header(header)
        if not parsed.v1:
            others = ", ".join(name for name in parsed.schemes if name != "t") or "none"
            raise VerificationError(
                "no_matching_signature",
                f"{HEADER} holds no v1 signature (schemes sent: {others}); only v1 is accepted",
            )
        check_timestamp(parsed.timestamp, now=now, tolerance=tolerance)
        content = b"%s.%s" % (parsed.timestamp_text.encode("ascii"), body)
        if any_hex_match(self._keys, content, parsed.v1):
            return
        raise VerificationError(
            "no_matching_signature",
            f"none of the {len(parsed.v1)} v1 signature(s) in {HEADER} matches "
            f"any of the {self._count} secret(s)",
        )
