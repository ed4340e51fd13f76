"""SendGrid's signed Event Webhook: ECDSA P-256 over the timestamp and the body.

>>> key = load_public_key("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfS"
...                       "mpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
>>> Verifier([key]).verify(headers=headers, body=body, now=now, tolerance=300)

``X-Twilio-Email-Event-Webhook-Signature`` is the base64 of a DER-encoded ECDSA
signature (SHA-256) over ``timestamp + raw body``, the timestamp being the
``X-Twilio-Email-Event-Webhook-Timestamp`` header (UNIX seconds) as sent. The
verification key is the account's public key, base64 DER SubjectPublicKeyInfo as
SendGrid shows it. SendGrid documents no tolerance; hookwise applies its own,
both ways. The body ends with ``\\r\\n`` as SendGrid sends it: it is signed too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hookwise.errors import VerificationError
from hookwise.signatures._common import check_timestamp, parse_timestamp

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Verifier",
    "load_private_key",
    "load_public_key",
    "public_key_text",
    "sign",
]

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

_ALGORITHM = ec.ECDSA(hashes.SHA256())


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from base64 DER (as SendGrid shows it) or PEM.

    Raises ``ValueError`` saying what is wrong.
    """
    key = _load(text, serialization.load_pem_public_key, serialization.load_der_public_key)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the key is not an ECDSA P-256 public key")
    return key


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or base64 DER (PKCS#8); ``ValueError`` otherwise."""
    key = _load(
        text,
        lambda data: serialization.load_pem_private_key(data, password=None),
        lambda data: serialization.load_der_private_key(data, password=None),
    )
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the key is not an ECDSA P-256 private key")
    return key


def public_key_text(key: ec.EllipticCurvePublicKey) -> str:
    """``key`` written the way SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def sign(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    return base64.b64encode(key.sign(timestamp.encode("ascii") + body, _ALGORITHM)).decode("ascii")


class Verifier:
    """Checks the signature against several public keys (any may match).

    :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`:
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``no_matching_signature``.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[ec.EllipticCurvePublicKey]) -> None:
        self._keys = tuple(keys)

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, now: float, tolerance: float
    ) -> None:
        signature_text = (headers.get(SIGNATURE_HEADER) or "").strip()
        if not signature_text:
            raise VerificationError("missing_header", f"the {SIGNATURE_HEADER} header is missing")
        timestamp_text = (headers.get(TIMESTAMP_HEADER) or "").strip()
        timestamp = parse_timestamp(timestamp_text, header=TIMESTAMP_HEADER)
        try:
            signature = base64.b64decode(signature_text, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError(
                "malformed_header", f"the {SIGNATURE_HEADER} header is not base64"
            ) from None
        check_timestamp(timestamp, now=now, tolerance=tolerance)
        content = timestamp_text.encode("ascii") + body  # digits only, parse_timestamp checked
        for key in self._keys:
            try:
                key.verify(signature, content, _ALGORITHM)
            except (InvalidSignature, ValueError):
                continue
            return
        raise VerificationError(
            "no_matching_signature",
            f"{SIGNATURE_HEADER} matches none of the {len(self._keys)} public key(s)",
        )


def _load(
    text: str, from_pem: Callable[[bytes], object], from_der: Callable[[bytes], object]
) -> object:
    stripped = text.strip()
    if "-----BEGIN" in stripped:
        loader = from_pem
        data = stripped.encode("ascii", "replace")
    else:
        loader = from_der
        try:
            data = base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the key is neither PEM nor base64 DER") from None
    try:
        return loader(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"the key can't be read: {exc}") from None
