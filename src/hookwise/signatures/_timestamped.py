"""The ``<time>=<unix seconds>,<scheme>=<signature>,...`` header that Stripe and Paddle
send, split into its parts.

Stripe writes ``t=1700000000,v1=<hex>``, Paddle ``ts=1700000000;h1=<hex>``: one
timestamp, then any number of signatures, each named by its scheme. The two differ
in the separator, the names, and what they do with the parts; the reading is the same.

>>> split_header("t=1700000000,v1=abc,v0=def", header="Stripe-Signature",
...              separator=",", time_name="t", scheme="v1")
TimestampedHeader(timestamp=1700000000, signatures=('abc',), schemes=('t', 'v1', 'v0'))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hookwise.errors import VerificationError
from hookwise.signatures._common import UNIX_SECONDS

__all__ = ["TimestampedHeader", "split_header"]


@dataclass(frozen=True, slots=True)
class TimestampedHeader:
    """The parts of one such header value."""

    timestamp: int
    signatures: tuple[str, ...]
    """The signatures of the wanted scheme, in order."""
    schemes: tuple[str, ...]
    """Every name in the header, in order, once each (for messages)."""
    timestamp_text: str = field(default="", repr=False, compare=False)
    """The timestamp as sent: what was signed."""


def split_header(
    value: str | None, *, header: str, separator: str, time_name: str, scheme: str
) -> TimestampedHeader:
    """Split ``value``; ``VerificationError`` (``missing_header``, ``malformed_header``)
    when it is empty or holds no single timestamp of UNIX seconds. Items without ``=``
    and empty signatures are skipped."""
    if not value or not value.strip():
        raise VerificationError("missing_header", f"the {header} header is missing or empty")
    timestamps: list[str] = []
    signatures: list[str] = []
    schemes: dict[str, None] = {}
    for item in value.split(separator):
        name, equals, text = item.strip().partition("=")
        if not equals or not name:
            continue
        schemes.setdefault(name)
        if name == time_name:
            timestamps.append(text.strip())
        elif name == scheme and text.strip():
            signatures.append(text.strip())
    if not timestamps:
        raise VerificationError("malformed_header", f"{header} holds no {time_name}=<timestamp>")
    if len(timestamps) > 1:
        raise VerificationError("malformed_header", f"{header} holds more than one {time_name}=")
    if not UNIX_SECONDS.fullmatch(timestamps[0]):
        raise VerificationError(
            "malformed_header",
            f"the {time_name}= of {header} is not an integer number of UNIX seconds",
        )
    return TimestampedHeader(int(timestamps[0]), tuple(signatures), tuple(schemes), timestamps[0])
