"""Standard Webhooks, version ``v1`` (HMAC-SHA256), as a pure function of bytes and ``now``.

The sender signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` with a key that is
shown as ``whsec_`` + base64, and sends ``webhook-signature: v1,<base64> [v1,<base64>...]``.
Several signatures let a sender rotate keys; several keys here let the receiver
rotate. Signatures of versions this module does not know are skipped.

>>> key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
>>> sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from binascii import b2a_base64 as _b64
from collections.abc import Sequence
from dataclasses import dataclass

from hookwise.errors import VerificationError
from hookwise.signatures._common import (
    HmacKey,
    check_timestamp,
    constant_time_equal,
    header_bytes,
    parse_timestamp,
)

__all__ = [
    "SECRET_PREFIX",
    "WEBHOOK_HEADERS",
    "HeaderNames",
    "Verifier",
    "decode_secret",
    "sign",
    "signed_content",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker in front of a secret, not one


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """The names of the three headers, for messages (providers such as Svix rename them).

    >>> HeaderNames(id="svix-id", timestamp="svix-timestamp", signature="svix-signature")
    HeaderNames(id='svix-id', timestamp='svix-timestamp', signature='svix-signature')
    """

    id: str = "webhook-id"
    timestamp: str = "webhook-timestamp"
    signature: str = "webhook-signature"


WEBHOOK_HEADERS = HeaderNames()


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret (the prefix is optional, padding too).

    >>> decode_secret("whsec_c2VjcmV0")
    b'secret'

    Raises ``ValueError`` saying what is wrong, without repeating the secret.
    """
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    if not text:
        raise ValueError("the secret is empty; expected whsec_ followed by base64")
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the secret is not valid base64 after the whsec_ prefix; "
            "copy it again from the sender's dashboard"
        ) from None
    if not key:
        raise ValueError("the secret decodes to no bytes; expected whsec_ followed by base64")
    return key


def signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """The exact bytes a ``v1`` signature covers: ``{id}.{timestamp}.{body}``.

    >>> signed_content("msg_1", 1700000000, b"{}")
    b'msg_1.1700000000.{}'
    """
    return b"%s.%s.%s" % (header_bytes(msg_id), header_bytes(str(timestamp)), body)


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` for one key.

    >>> sign(b"secret", "msg_1", 1700000000, b"{}")
    'v1,A5oIrJxXPB/PkULSoVu0e4khvPiqpF9vljmhkSKg0FI='
    """
    return "v1," + _v1_digest(key, signed_content(msg_id, timestamp, body))


def verify(
    keys: Sequence[bytes],
    *,
    msg_id: str | None,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance: float,
    names: HeaderNames = WEBHOOK_HEADERS,
) -> None:
    """Return if one signature in ``signature_header`` matches one of ``keys``; raise otherwise.

    >>> verify([key], msg_id=h["webhook-id"], timestamp_header=h["webhook-timestamp"],
    ...        signature_header=h["webhook-signature"], body=body, now=clock.now(),
    ...        tolerance=300)

    Raises only :class:`~hookwise.errors.VerificationError`, whose ``reason`` is one of
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new`` or ``no_matching_signature``. A source that checks many
    deliveries against the same keys keeps a :class:`Verifier` instead.
    """
    Verifier(keys, names=names).verify(
        msg_id=msg_id,
        timestamp_header=timestamp_header,
        signature_header=signature_header,
        body=body,
        now=now,
        tolerance=tolerance,
    )


class Verifier:
    """:func:`verify` for a fixed set of keys, prepared once.

    >>> verifier = Verifier([key])
    >>> verifier.verify(msg_id=h["webhook-id"], timestamp_header=h["webhook-timestamp"],
    ...                 signature_header=h["webhook-signature"], body=body,
    ...                 now=clock.now(), tolerance=300)
    """

    __slots__ = ("_keys", "_names")

    def __init__(self, keys: Sequence[bytes], *, names: HeaderNames = WEBHOOK_HEADERS) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)
        self._names = names

    def verify(
        self,
        *,
        msg_id: str | None,
        timestamp_header: str | None,
        signature_header: str | None,
        body: bytes,
        now: float,
        tolerance: float,
    ) -> None:
        """Return if one signature matches one of the keys; raise ``VerificationError``."""
        names = self._names
        if not msg_id:
            raise VerificationError("missing_header", f"the {names.id} header is missing or empty")
        if not signature_header or not signature_header.strip():
            raise VerificationError(
                "missing_header", f"the {names.signature} header is missing or empty"
            )
        timestamp = parse_timestamp(timestamp_header, header=names.timestamp)
        # A "." in the id would make two different (id, timestamp) pairs sign the same bytes.
        if "." in msg_id:
            raise VerificationError("malformed_header", f"the {names.id} header contains '.'")
        # The v1 values, read without building the full {version: values} map: that
        # is only needed to explain a rejection. v1a (ed25519) will be read here too.
        given: list[str] = []
        paired = False
        for entry in signature_header.split():
            version, comma, value = entry.partition(",")
            if comma and version and value:
                paired = True
                if version == "v1":
                    given.append(value)
        if not paired:
            raise _no_pair(names.signature)
        check_timestamp(timestamp, now=now, tolerance=tolerance)
        if given:
            content = b"%s.%d.%s" % (header_bytes(msg_id), timestamp, body)
            for key in self._keys:
                expected = _b64(key.digest(content), newline=False).decode("ascii")
                for value in given:
                    if constant_time_equal(expected, value):
                        return
        raise self._no_match(signature_header)

    def _no_match(self, signature_header: str) -> VerificationError:
        name = self._names.signature
        signatures = _parse_signature_header(signature_header, name)
        known = [version for version in signatures if version in _KNOWN_VERSIONS]
        if not known:
            return VerificationError(
                "no_matching_signature",
                f"{name} holds no v1 signature; versions sent: {', '.join(signatures)}",
            )
        count = sum(len(signatures[version]) for version in known)
        return VerificationError(
            "no_matching_signature",
            f"none of the {count} signature(s) in {name} matches "
            f"any of the {len(self._keys)} key(s)",
        )


def _parse_signature_header(header: str, name: str) -> dict[str, list[str]]:
    signatures: dict[str, list[str]] = {}
    for entry in header.split():
        version, comma, value = entry.partition(",")
        if comma and version and value:
            signatures.setdefault(version, []).append(value)
    if not signatures:
        raise _no_pair(name)
    return signatures


def _no_pair(name: str) -> VerificationError:
    return VerificationError(
        "malformed_header", f"{name} holds no 'version,signature' pair (e.g. 'v1,<base64>')"
    )


def _v1_digest(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.digest(key, content, hashlib.sha256)).decode("ascii")


_KNOWN_VERSIONS = frozenset({"v1"})
