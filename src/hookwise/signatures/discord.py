"""Discord interactions: ed25519 over ``{timestamp}{raw body}``, as a pure function of
bytes and ``now``.

Discord signs each interaction with the application's private key and sends the
signature as 128 hexadecimal digits in ``X-Signature-Ed25519``, the signed UNIX time
in ``X-Signature-Timestamp``. The receiver holds the application's public key (64
hexadecimal digits, shown in the developer portal).

>>> seed = bytes(range(32))
>>> public_key_hex(seed)
'03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8'
>>> sign(seed, "1700000000", b'{"type":1}')[:16]
'c1098e97d711377f'

``cryptography`` (a dependency) is imported only when a key is loaded, so the
request path of a process without Discord sources does not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from hookwise.errors import VerificationError
from hookwise.signatures._common import check_timestamp, header_bytes, parse_timestamp

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Verifier",
    "decode_key",
    "public_key_hex",
    "sign",
]

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")


def decode_key(text: str, *, what: str = "public key") -> bytes:
    """The 32 bytes of a key written as 64 hexadecimal digits.

    >>> len(decode_key("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"))
    32

    Raises ``ValueError`` saying what is wrong, without repeating the key.
    """
    value = text.strip()
    if not _HEX_KEY.fullmatch(value):
        raise ValueError(
            f"the {what} is {len(value)} characters long and should be 64 hexadecimal "
            "digits (32 bytes)"
        )
    return bytes.fromhex(value)


def public_key_hex(seed: bytes) -> str:
    """The public key, as Discord shows it, of a 32-byte private key seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw().hex()


def sign(seed: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Signature-Ed25519`` value for ``body`` sent at ``timestamp``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).sign(header_bytes(timestamp) + body).hex()


class Verifier:
    """Checks interactions against a fixed set of application public keys.

    >>> verifier = Verifier([decode_key(APPLICATION_PUBLIC_KEY)])
    >>> verifier.verify(headers, body, now=clock.now(), tolerance=300)

    Discord documents no freshness window; the tolerance is checked both ways.
    Raises only :class:`~hookwise.errors.VerificationError`: ``missing_header``,
    ``malformed_header``, ``timestamp_too_old``, ``timestamp_too_new`` or
    ``no_matching_signature``. Construction raises ``ValueError`` for a key that is
    not an ed25519 public key.
    """

    __slots__ = ("_keys",)

    def __init__(self, public_keys: Sequence[bytes]) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self._keys: tuple[Ed25519PublicKey, ...] = tuple(
            Ed25519PublicKey.from_public_bytes(bytes(key)) for key in public_keys
        )

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
    ) -> None:
        """Return if the signature is one of the keys'; raise otherwise."""
        from cryptography.exceptions import InvalidSignature

        signature = headers.get(SIGNATURE_HEADER)
        if not signature or not signature.strip():
            raise VerificationError(
                "missing_header", f"the {SIGNATURE_HEADER} header is missing or empty"
            )
        timestamp = headers.get(TIMESTAMP_HEADER)
        signed_at = parse_timestamp(timestamp, header=TIMESTAMP_HEADER)
        if not _HEX_SIGNATURE.fullmatch(signature.strip()):
            raise VerificationError(
                "malformed_header", f"{SIGNATURE_HEADER} is not 128 hexadecimal digits"
            )
        check_timestamp(signed_at, now=now, tolerance=tolerance)
        raw = bytes.fromhex(signature.strip())
        message = header_bytes(timestamp or "") + body
        for key in self._keys:
            try:
                key.verify(raw, message)
            except InvalidSignature:
                continue
            return
        raise VerificationError(
            "no_matching_signature",
            f"the signature in {SIGNATURE_HEADER} is not by any of the "
            f"{len(self._keys)} public key(s)",
        )
