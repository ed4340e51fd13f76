"""Twitch EventSub (webhook transport), as a pure function of bytes and ``now``.

Twitch signs ``{message id}{message timestamp}{raw body}``, concatenated without a
separator, with HMAC-SHA256 keyed by the subscription's secret, and sends
``Twitch-Eventsub-Message-Signature: sha256=<hex>``. The timestamp is RFC 3339 with
nanoseconds (``2019-11-16T10:11:12.634234626Z``); it is signed as written.

>>> sign(b"twitch_secret_123", "e76c6bd4-55c9-4987-8304-da1588d8988b",
...      "2019-11-16T10:11:12.634234626Z", b'{"subscription":{"type":"channel.follow"},"event":{}}')
'sha256=2362ebe94895b70e1146d0142e2b99e0cce8cea170eecc0a98e5fc2dac081eef'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

from hookwise.errors import VerificationError
from hookwise.signatures._common import (
    HmacKey,
    check_timestamp,
    constant_time_equal,
    header_bytes,
)

__all__ = [
    "ID_HEADER",
    "PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TYPE_HEADER",
    "Verifier",
    "format_time",
    "parse_time",
    "sign",
    "signed_content",
]

ID_HEADER = "twitch-eventsub-message-id"
TIMESTAMP_HEADER = "twitch-eventsub-message-timestamp"
SIGNATURE_HEADER = "twitch-eventsub-message-signature"
TYPE_HEADER = "twitch-eventsub-message-type"
PREFIX = "sha256="

# RFC 3339 date-time: what Twitch writes, with any fraction and a zone (Z or an offset).
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def parse_time(value: str | None, *, header: str = TIMESTAMP_HEADER) -> float:
    """UNIX seconds of an RFC 3339 time, or a ``VerificationError`` naming ``header``.

    >>> parse_time("2019-11-16T10:11:12.634234626Z")
    1573899072.6342347
    """
    if not value or not value.strip():
        raise VerificationError("missing_header", f"the {header} header is missing or empty")
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise VerificationError(
            "malformed_header",
            f"the {header} header is not an RFC 3339 time like 2019-11-16T10:11:12.634234626Z",
        )
    zone = match["zone"]
    try:
        tz = UTC if zone in "Zz" else _offset(zone)
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(tzinfo=tz)
        seconds = moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise VerificationError(
            "malformed_header", f"the {header} header is not a valid date and time"
        ) from None
    fraction = match["fraction"]
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def format_time(now: float) -> str:
    """``now`` as Twitch writes it: RFC 3339, UTC, nine fractional digits.

    >>> format_time(1573899072.5)
    '2019-11-16T10:11:12.500000000Z'
    """
    whole = int(now // 1)
    nanos = round((now - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The exact bytes a signature covers: id, timestamp and body, back to back."""
    return header_bytes(msg_id) + header_bytes(timestamp) + body


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``sha256=<hex>`` signature header value for one secret."""
    return PREFIX + HmacKey(key, "sha256").digest(signed_content(msg_id, timestamp, body)).hex()


class Verifier:
    """Checks deliveries against a fixed set of subscription secrets.

    >>> verifier = Verifier([b"twitch_secret_123"])
    >>> verifier.verify(headers, body, now=clock.now(), tolerance=600)

    Twitch's own guidance is to refuse messages older than 10 minutes; the
    tolerance given here is checked both ways (a time far in the future is refused
    too). Raises only :class:`~hookwise.errors.VerificationError`: ``missing_header``,
    ``malformed_header``, ``timestamp_too_old``, ``timestamp_too_new`` or
    ``no_matching_signature``.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
    ) -> None:
        """Return if the signature matches one of the secrets; raise otherwise."""
        msg_id = headers.get(ID_HEADER)
        if not msg_id:
            raise VerificationError("missing_header", f"the {ID_HEADER} header is missing or empty")
        signature = headers.get(SIGNATURE_HEADER)
        if not signature or not signature.strip():
            raise VerificationError(
                "missing_header", f"the {SIGNATURE_HEADER} header is missing or empty"
            )
        timestamp = headers.get(TIMESTAMP_HEADER)
        sent_at = parse_time(timestamp)
        given = signature.strip()
        if given[: len(PREFIX)].lower() != PREFIX or not _HEX_DIGEST.fullmatch(
            given[len(PREFIX) :]
        ):
            raise VerificationError(
                "malformed_header",
                f"{SIGNATURE_HEADER} is not 'sha256=' followed by 64 hexadecimal digits",
            )
        check_timestamp(sent_at, now=now, tolerance=tolerance)
        content = signed_content(msg_id, timestamp or "", body)
        value = given[len(PREFIX) :].lower()
        for key in self._keys:
            if constant_time_equal(key.digest(content).hex(), value):
                return
        raise VerificationError(
            "no_matching_signature",
            f"the signature in {SIGNATURE_HEADER} matches none of the {len(self._keys)} secret(s)",
        )


def _offset(zone: str) -> timezone:
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta)
