"""PayPal's webhook signature: RSA over the transmission, checked with PayPal's certificate.

>>> signed_message("69cd13f0-d67a-11e5-baa3-778b53f4ae55", "2016-02-18T20:01:35Z",
...                "9XL90610J3647323C", b"{}")
b'69cd13f0-d67a-11e5-baa3-778b53f4ae55|2016-02-18T20:01:35Z|9XL90610J3647323C|2745614147'

PayPal signs ``transmission_id|transmission_time|webhook_id|crc32(raw body)`` (the
CRC-32 as an unsigned decimal number) with SHA256withRSA and sends the signature,
base64, in ``PAYPAL-TRANSMISSION-SIG``, with ``PAYPAL-TRANSMISSION-ID``,
``PAYPAL-TRANSMISSION-TIME`` (RFC 3339), ``PAYPAL-AUTH-ALGO`` and ``PAYPAL-CERT-URL``,
where the X.509 certificate holding the public key is downloaded from. The
``webhook_id`` is the id PayPal gave the webhook subscription; it never travels
with the request, which is what binds a delivery to its receiver.

The certificate URL comes from the request, so it is the trust decision: only
``https`` URLs on PayPal's API hosts, under ``/v1/notifications/certs/``, are
fetched (:func:`check_cert_url`). What is checked on the certificate itself
(:func:`check_certificate`, :func:`check_chain`): its dates, that it is PayPal's
message-signing certificate (a subject or DNS name
``messageverificationcerts[...].paypal.com``, the rule PayPal's own Java SDK
applied) and, unless turned off, that it chains to a trusted root CA. Fetching
and caching are I/O and live in the provider (``hookwise.providers.paypal``).
Checked against PayPal's "Integrate webhooks" and verify-webhook-signature pages
and the simulator note (mock events self-verify with the webhook id
``WEBHOOK_ID``).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hookwise.errors import VerificationError
from hookwise.signatures._common import check_timestamp
from hookwise.signatures._url import split_url

__all__ = [
    "ALGORITHM_HEADER",
    "CERT_PATH",
    "CERT_URL_HEADER",
    "ID_HEADER",
    "PAYPAL_CERT_HOSTS",
    "SIGNATURE_HEADER",
    "SUPPORTED_ALGORITHMS",
    "TIME_HEADER",
    "Certificate",
    "Transmission",
    "certificate_of",
    "check_cert_url",
    "check_certificate",
    "check_chain",
    "load_certificates",
    "names_paypal",
    "parse_transmission",
    "sign",
    "signed_message",
    "verify",
]

ID_HEADER = "paypal-transmission-id"
TIME_HEADER = "paypal-transmission-time"
SIGNATURE_HEADER = "paypal-transmission-sig"
CERT_URL_HEADER = "paypal-cert-url"
ALGORITHM_HEADER = "paypal-auth-algo"

SUPPORTED_ALGORITHMS = ("SHA256withRSA",)
PAYPAL_CERT_HOSTS = frozenset(
    {"api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}
)
"""The hosts PayPal serves its message-signing certificates from (live and sandbox)."""
CERT_PATH = "/v1/notifications/certs/"
MAX_CERT_URL = 500  # PayPal's own limit on cert_url
MAX_CHAIN = 6

# PayPal's transmission ids and webhook ids are short words; a cap keeps hostile
# headers from costing anything.
_SHORT = 200
_TIME = re.compile(r"[0-9T:.+\-Zz ]{10,40}")


@dataclass(frozen=True, slots=True)
class Transmission:
    """The signed headers of one delivery, checked for presence and shape."""

    id: str
    time: str
    signature: bytes
    cert_url: str
    algorithm: str
    sent_at: float


@dataclass(frozen=True, slots=True)
class Certificate:
    """What verification needs from a certificate: its key and its dates."""

    public_key: rsa.RSAPublicKey
    not_before: float
    not_after: float
    subject: str


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    """The bytes PayPal signs for one delivery."""
    text = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}"
    return text.encode("utf-8", "surrogatepass")


def sign(
    key: rsa.RSAPrivateKey,
    transmission_id: str,
    transmission_time: str,
    webhook_id: str,
    body: bytes,
) -> str:
    """The ``PAYPAL-TRANSMISSION-SIG`` value (what only PayPal can make, or a test key)."""
    message = signed_message(transmission_id, transmission_time, webhook_id, body)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def parse_transmission(headers: Mapping[str, str]) -> Transmission:
    """The transmission headers, or a ``VerificationError`` (``missing_header``,
    ``malformed_header``, ``unsupported_algorithm``)."""
    values: dict[str, str] = {}
    for name in (ID_HEADER, TIME_HEADER, SIGNATURE_HEADER, CERT_URL_HEADER, ALGORITHM_HEADER):
        value = (headers.get(name) or "").strip()
        if not value:
            raise VerificationError("missing_header", f"the {name} header is missing")
        values[name] = value
    algorithm = values[ALGORITHM_HEADER]
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise VerificationError(
            "unsupported_algorithm",
            f"{ALGORITHM_HEADER} is {algorithm[:40]!r}; hookwise knows "
            f"{', '.join(SUPPORTED_ALGORITHMS)}",
        )
    if len(values[ID_HEADER]) > _SHORT:
        raise VerificationError("malformed_header", f"the {ID_HEADER} header is too long")
    sent_at = _parse_time(values[TIME_HEADER])
    try:
        signature = base64.b64decode(values[SIGNATURE_HEADER], validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(
            "malformed_header", f"the {SIGNATURE_HEADER} header is not base64"
        ) from None
    return Transmission(
        id=values[ID_HEADER],
        time=values[TIME_HEADER],
        signature=signature,
        cert_url=values[CERT_URL_HEADER],
        algorithm=algorithm,
        sent_at=sent_at,
    )


def verify(
    transmission: Transmission,
    certificate: Certificate,
    *,
    webhook_ids: Sequence[str],
    body: bytes,
    now: float,
    tolerance: float,
) -> None:
    """Return if ``certificate`` verifies the delivery for one of ``webhook_ids``.

    Reasons: ``timestamp_too_old``, ``timestamp_too_new``, ``certificate_expired``,
    ``no_matching_signature``.
    """
    check_timestamp(transmission.sent_at, now=now, tolerance=tolerance)
    check_certificate(certificate, now)
    for webhook_id in webhook_ids:
        message = signed_message(transmission.id, transmission.time, webhook_id, body)
        try:
            certificate.public_key.verify(
                transmission.signature, message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            continue
        return
    raise VerificationError(
        "no_matching_signature",
        f"{SIGNATURE_HEADER} does not verify with the certificate of {transmission.cert_url} "
        f"for any of the {len(webhook_ids)} webhook id(s)",
    )


def check_cert_url(url: str, *, extra_hosts: Iterable[str] = ()) -> str:
    """``url`` when it is one of PayPal's certificate URLs; ``untrusted_certificate_url``
    otherwise. Nothing is fetched before this passed.

    ``extra_hosts`` (``host:port``) are trusted as well, over http or https: for tests
    with a local certificate server only.
    """
    parts = split_url(url) if len(url) <= MAX_CERT_URL else None
    if parts is None:
        raise VerificationError(
            "untrusted_certificate_url", f"{CERT_URL_HEADER} is not an http(s) URL"
        )
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.lower()
    trusted_extra = netloc in {entry.lower() for entry in extra_hosts}
    problem = None
    if parts.username is not None or parts.password is not None:
        problem = "carries user information"
    elif parts.query or parts.fragment:
        problem = "has a query string or a fragment"
    elif not parts.path.startswith(CERT_PATH):
        problem = f"is not under {CERT_PATH}"
    elif trusted_extra:
        return url
    elif parts.scheme.lower() != "https":
        problem = "is not https"
    elif host not in PAYPAL_CERT_HOSTS or parts.port not in (None, 443):
        problem = f"is not on one of PayPal's hosts ({', '.join(sorted(PAYPAL_CERT_HOSTS))})"
    if problem:
        raise VerificationError(
            "untrusted_certificate_url",
            f"{CERT_URL_HEADER} {url[:120]!r} {problem}; hookwise fetches certificates only "
            "from PayPal",
        )
    return url


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """The certificates in a PEM bundle; ``ValueError`` when there are none."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate: {exc}") from None
    if not certificates:
        raise ValueError("no certificate in the PEM text")
    return certificates


def names_paypal(certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` is PayPal's message-signing one: a subject common name
    or DNS name ``messageverificationcerts[...].paypal.com``."""
    names = [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        pass
    else:
        names += extension.value.get_values_for_type(x509.DNSName)
    return any(
        name.lower().startswith("messageverificationcerts") and name.lower().endswith(".paypal.com")
        for name in names
    )


def certificate_of(certificate: x509.Certificate) -> Certificate:
    """The parts verification needs; ``ValueError`` when the key is not RSA."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the certificate's key is not an RSA key")
    return Certificate(
        public_key=key,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(),
        subject=certificate.subject.rfc4514_string(),
    )


def check_certificate(certificate: Certificate, now: float) -> None:
    """``certificate_expired`` when ``now`` is outside the certificate's dates."""
    if now > certificate.not_after:
        raise VerificationError(
            "certificate_expired", f"the certificate {certificate.subject} has expired"
        )
    if now < certificate.not_before:
        raise VerificationError(
            "certificate_expired", f"the certificate {certificate.subject} is not valid yet"
        )


def check_chain(
    bundle: Sequence[x509.Certificate],
    roots: Mapping[x509.Name, Sequence[x509.Certificate]],
    now: float,
) -> None:
    """That ``bundle[0]`` chains, through the other certificates of the bundle, to one
    of ``roots`` (by subject), each link signed by the next and within its dates,
    every issuer a CA. ``untrusted_certificate`` otherwise."""
    current = bundle[0]
    pool = list(bundle[1:])
    for _ in range(MAX_CHAIN):
        _check_dates(current, now)
        for root in roots.get(current.issuer, ()):
            if _issued_by(current, root) and _is_ca(root):
                _check_dates(root, now)
                return
        if current.subject == current.issuer:
            break  # self-signed and not a trusted root
        issuer = next(
            (item for item in pool if item.subject == current.issuer and _issued_by(current, item)),
            None,
        )
        if issuer is None or not _is_ca(issuer):
            break
        pool.remove(issuer)
        current = issuer
    raise VerificationError(
        "untrusted_certificate",
        f"the certificate {bundle[0].subject.rfc4514_string()} does not chain to a trusted "
        "root certificate",
    )


def _check_dates(certificate: x509.Certificate, now: float) -> None:
    if not (
        certificate.not_valid_before_utc.timestamp()
        <= now
        <= certificate.not_valid_after_utc.timestamp()
    ):
        raise VerificationError(
            "untrusted_certificate",
            f"the certificate {certificate.subject.rfc4514_string()} is outside its dates",
        )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.value.ca


def _parse_time(text: str) -> float:
    if not _TIME.fullmatch(text):
        raise VerificationError(
            "malformed_header", f"the {TIME_HEADER} header is not an RFC 3339 date and time"
        )
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise VerificationError(
            "malformed_header", f"the {TIME_HEADER} header is not an RFC 3339 date and time"
        ) from None
