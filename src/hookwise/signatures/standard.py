"""Standard Webhooks, versions ``v1`` (HMAC-SHA256) and ``v1a`` (ed25519), as pure
functions of bytes and ``now``.

The sender signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` and sends
``webhook-signature: v1,<base64> [v1a,<base64>...]``:

- ``v1``: HMAC-SHA256 with a shared key shown as ``whsec_`` + base64;
- ``v1a``: ed25519 with the sender's private key (``whsk_`` + base64 of the 32-byte
  seed); the receiver pins the public key (``whpk_`` + base64 of 32 bytes).

Several signatures let a sender rotate keys; several keys here let the receiver
rotate. Signatures of versions this module does not know, or has no key for, are
skipped.

>>> key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
>>> sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> seed = decode_signing_key("whsk_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
>>> sign_v1a(seed, "i", 0, b"Hello, world!")[:16]
'v1a,CV1O+PvrwXM4'

``cryptography`` (a dependency) is imported only when an ed25519 key is used, so a
source with ``whsec_`` secrets alone never loads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from binascii import b2a_base64 as _b64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hookwise.errors import VerificationError
from hookwise.signatures._common import (
    HmacKey,
    check_timestamp,
    constant_time_equal,
    header_bytes,
    parse_timestamp,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "MAX_V1A_SIGNATURES",
    "PUBLIC_KEY_PREFIX",
    "SECRET_PREFIX",
    "SIGNING_KEY_PREFIX",
    "WEBHOOK_HEADERS",
    "HeaderNames",
    "Verifier",
    "decode_public_key",
    "decode_secret",
    "decode_signing_key",
    "encode_public_key",
    "public_key_of",
    "sign",
    "sign_v1a",
    "signature_versions",
    "signed_content",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker in front of a secret, not one
PUBLIC_KEY_PREFIX = "whpk_"
SIGNING_KEY_PREFIX = "whsk_"

MAX_V1A_SIGNATURES = 8
"""At most this many ``v1a`` signatures of one header are checked. A sender rotating
keys sends two or three; an ed25519 check costs far more than an HMAC, and a header
stuffed with hundreds of them would otherwise buy a forger that much of our time."""

_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64


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


def decode_public_key(key: str) -> bytes:
    """The 32 bytes of a ``whpk_...`` ed25519 public key (the prefix is optional).

    >>> len(decode_public_key("whpk_wuzPrKxPfWpJSsXgyg/MEoMGvjs5SjDO4ad6X4ZYqqg="))
    32

    Raises ``ValueError`` saying what is wrong.
    """
    raw = _decode_base64(key, PUBLIC_KEY_PREFIX, "public key")
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(
            f"the public key decodes to {len(raw)} bytes; an ed25519 public key "
            f"({PUBLIC_KEY_PREFIX}...) has {_ED25519_KEY_BYTES}"
        )
    return raw


def decode_signing_key(key: str) -> bytes:
    """The 32-byte ed25519 seed of a ``whsk_...`` signing key (the prefix is optional).

    >>> decode_signing_key("whsk_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
    b'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345'

    The 64-byte form some libraries write (seed, then public key) is accepted when
    its second half is the seed's public key. Raises ``ValueError`` without
    repeating the key.
    """
    raw = _decode_base64(key, SIGNING_KEY_PREFIX, "signing key")
    if len(raw) == 2 * _ED25519_KEY_BYTES:
        seed, public = raw[:_ED25519_KEY_BYTES], raw[_ED25519_KEY_BYTES:]
        if public_key_of(seed) == public:
            return seed
        raise ValueError("the 64-byte signing key is not a seed followed by its own public key")
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(
            f"the signing key decodes to {len(raw)} bytes; an ed25519 signing key "
            f"({SIGNING_KEY_PREFIX}...) has {_ED25519_KEY_BYTES}"
        )
    return raw


def encode_public_key(public_key: bytes) -> str:
    """The ``whpk_...`` text of a public key (it is not a secret: safe to print).

    >>> encode_public_key(public_key_of(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"))
    'whpk_wuzPrKxPfWpJSsXgyg/MEoMGvjs5SjDO4ad6X4ZYqqg='
    """
    return PUBLIC_KEY_PREFIX + base64.b64encode(public_key).decode("ascii")


def public_key_of(seed: bytes) -> bytes:
    """The ed25519 public key of a 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


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


def sign_v1a(seed: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1a,<base64>`` ed25519 signature of ``body`` for one 32-byte seed.

    >>> seed = decode_signing_key("whsk_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
    >>> sign_v1a(seed, "i", 0, b"Hello, world!")
    'v1a,CV1O+PvrwXM42OMUX+tmm6bA3cS0tgLp0qo3YKuu0MGmBrsUhA0MHXF11HsEUJtPfTKs80WE7WUKVt9TueLDCQ=='
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(
        signed_content(msg_id, timestamp, body)
    )
    return "v1a," + base64.b64encode(signature).decode("ascii")


def signature_versions(signature_header: str) -> tuple[str, ...]:
    """The versions of the signatures in a ``webhook-signature`` value, in order, once each.

    >>> signature_versions("v1,abc v1a,def v1,ghi")
    ('v1', 'v1a')
    """
    versions: dict[str, None] = {}
    for entry in signature_header.split():
        version, comma, value = entry.partition(",")
        if comma and version and value:
            versions.setdefault(version)
    return tuple(versions)


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
    public_keys: Sequence[bytes] = (),
) -> None:
    """Return if one signature in ``signature_header`` matches one of ``keys`` (``v1``)
    or ``public_keys`` (``v1a``); raise otherwise.

    >>> verify([key], msg_id=h["webhook-id"], timestamp_header=h["webhook-timestamp"],
    ...        signature_header=h["webhook-signature"], body=body, now=clock.now(),
    ...        tolerance=300)

    Raises only :class:`~hookwise.errors.VerificationError`, whose ``reason`` is one of
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new`` or ``no_matching_signature``. A source that checks many
    deliveries against the same keys keeps a :class:`Verifier` instead.
    """
    Verifier(keys, names=names, public_keys=public_keys).verify(
        msg_id=msg_id,
        timestamp_header=timestamp_header,
        signature_header=signature_header,
        body=body,
        now=now,
        tolerance=tolerance,
    )


class Verifier:
    """:func:`verify` for a fixed set of keys, prepared once.

    >>> verifier = Verifier([key], public_keys=[decode_public_key("whpk_wuzPrK...")])
    >>> verifier.verify(msg_id=h["webhook-id"], timestamp_header=h["webhook-timestamp"],
    ...                 signature_header=h["webhook-signature"], body=body,
    ...                 now=clock.now(), tolerance=300)

    ``keys`` are ``v1`` HMAC keys, ``public_keys`` raw 32-byte ed25519 public keys
    for ``v1a``; a ``ValueError`` when a public key is not one.
    """

    __slots__ = ("_keys", "_names", "_public_keys")

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        names: HeaderNames = WEBHOOK_HEADERS,
        public_keys: Sequence[bytes] = (),
    ) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)
        self._names = names
        self._public_keys: tuple[Ed25519PublicKey, ...] = ()
        if public_keys:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            self._public_keys = tuple(
                Ed25519PublicKey.from_public_bytes(bytes(key)) for key in public_keys
            )

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
        # The values this source can check, read without building the full
        # {version: values} map: that is only needed to explain a rejection.
        given: list[str] = []
        given_v1a: list[str] = []
        paired = False
        for entry in signature_header.split():
            version, comma, value = entry.partition(",")
            if comma and version and value:
                paired = True
                if version == "v1":
                    given.append(value)
                elif version == "v1a" and self._public_keys:
                    given_v1a.append(value)
        if not paired:
            raise _no_pair(names.signature)
        check_timestamp(timestamp, now=now, tolerance=tolerance)
        if given or given_v1a:
            content = b"%s.%d.%s" % (header_bytes(msg_id), timestamp, body)
            for key in self._keys:
                expected = _b64(key.digest(content), newline=False).decode("ascii")
                for value in given:
                    if constant_time_equal(expected, value):
                        return
            if given_v1a and self._v1a_matches(given_v1a[:MAX_V1A_SIGNATURES], content):
                return
        raise self._no_match(signature_header)

    def _v1a_matches(self, values: list[str], content: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        for value in values:
            try:
                signature = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(signature) != _ED25519_SIGNATURE_BYTES:
                continue
            for key in self._public_keys:
                try:
                    key.verify(signature, content)
                except InvalidSignature:
                    continue
                return True
        return False

    def _no_match(self, signature_header: str) -> VerificationError:
        name = self._names.signature
        signatures = _parse_signature_header(signature_header, name)
        checkable = [
            version
            for version, keys in (("v1", self._keys), ("v1a", self._public_keys))
            if keys or not (self._keys or self._public_keys)
        ]
        known = [version for version in signatures if version in checkable]
        if not known:
            return VerificationError(
                "no_matching_signature",
                f"{name} holds no {' or '.join(checkable)} signature; "
                f"versions sent: {', '.join(signatures)}",
            )
        count = sum(len(signatures[version]) for version in known)
        keys = len(self._keys) + len(self._public_keys)
        return VerificationError(
            "no_matching_signature",
            f"none of the {count} signature(s) in {name} matches any of the {keys} key(s)",
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


def _decode_base64(key: str, prefix: str, what: str) -> bytes:
    text = key.strip().removeprefix(prefix)
    if not text:
        raise ValueError(f"the {what} is empty; expected {prefix} followed by base64")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"the {what} is not valid base64 after the {prefix} prefix; "
            "copy it again from the sender's dashboard"
        ) from None
