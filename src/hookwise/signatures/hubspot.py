"""HubSpot's ``X-HubSpot-Signature-v3``: an HMAC of method, URI, body and time.

>>> sign(b"hs_secret", "POST", "https://example.com/webhook", b'[{"eventId":1}]',
...      "1700000000000")
'JXT909uTCAwoCyzK6EL8Rr+2wLgiFzPYFjRvkpadVCU='

base64(HMAC-SHA256(app client secret, method + URI + raw body + timestamp)), where
the timestamp is the ``X-HubSpot-Request-Timestamp`` header, UNIX **milliseconds**,
as sent. HubSpot's request-validation page asks to reject requests older than
five minutes and to URL-decode these characters in the URI first: ``%3A`` ``%2F``
``%3F`` ``%40`` ``%21`` ``%24`` ``%27`` ``%28`` ``%29`` ``%2A`` ``%2C`` ``%3B``
(nothing else). HubSpot's own client libraries use the URI as given; both forms
are accepted here (they only differ when the URI has one of those escapes).
Checked against HubSpot's "Validating requests" page (v3 section) and the
signature helpers of hubspot-api-python / hubspot-api-nodejs.

The older ``X-HubSpot-Signature`` (v1, v2: plain SHA-256 of secret + ..., no
timestamp) is not accepted: it has no replay protection.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping

from hookwise.errors import VerificationError
from hookwise.signatures._common import HmacKey, check_timestamp, constant_time_equal

__all__ = [
    "LEGACY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Verifier",
    "decode_uri",
    "sign",
    "signed_content",
]

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADER = "x-hubspot-signature"

_DECODED = {
    "3A": ":",
    "2F": "/",
    "3F": "?",
    "40": "@",
    "21": "!",
    "24": "$",
    "27": "'",
    "28": "(",
    "29": ")",
    "2A": "*",
    "2C": ",",
    "3B": ";",
}
_ESCAPE = re.compile("%(" + "|".join(_DECODED) + ")", re.IGNORECASE)
# Fifteen digits of milliseconds reach the year 33658.
_MILLISECONDS = re.compile(r"[0-9]{1,15}")


def decode_uri(uri: str) -> str:
    """``uri`` with the escapes HubSpot lists decoded (and no others).

    >>> decode_uri("https://example.com/hooks/hubspot?a=b%3Ac%20d")
    'https://example.com/hooks/hubspot?a=b:c%20d'
    """
    return _ESCAPE.sub(lambda match: _DECODED[match.group(1).upper()], uri)


def signed_content(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    """The bytes HubSpot signs."""
    return (
        method.encode("utf-8", "surrogatepass")
        + uri.encode("utf-8", "surrogatepass")
        + body
        + timestamp.encode("utf-8", "surrogatepass")
    )


def sign(key: bytes, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The ``X-HubSpot-Signature-v3`` value (``timestamp`` in milliseconds, as sent)."""
    content = signed_content(method, uri, body, timestamp)
    return base64.b64encode(HmacKey(key, "sha256").digest(content)).decode("ascii")


class Verifier:
    """Checks ``X-HubSpot-Signature-v3`` against several client secrets (any may match).

    :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`:
    ``missing_header``, ``malformed_header``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``wrong_url`` (no URL to check), ``no_matching_signature``.
    """

    __slots__ = ("_keys",)

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self._keys = tuple(HmacKey(secret, "sha256") for secret in secrets)

    def verify(
        self,
        *,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        now: float,
        tolerance: float,
    ) -> None:
        signature = (headers.get(SIGNATURE_HEADER) or "").strip()
        if not signature:
            detail = f"the {SIGNATURE_HEADER} header is missing"
            if headers.get(LEGACY_HEADER):
                detail += f" (only the legacy {LEGACY_HEADER} came, which is not accepted)"
            raise VerificationError("missing_header", detail)
        timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
        if not timestamp:
            raise VerificationError("missing_header", f"the {TIMESTAMP_HEADER} header is missing")
        if not _MILLISECONDS.fullmatch(timestamp):
            raise VerificationError(
                "malformed_header",
                f"the {TIMESTAMP_HEADER} header is not an integer number of milliseconds",
            )
        check_timestamp(int(timestamp) / 1000, now=now, tolerance=tolerance)
        if not url:
            raise VerificationError(
                "wrong_url",
                "no URL to check the signature against: set public_url to the target URL "
                "configured in the HubSpot app",
            )
        uris = tuple(dict.fromkeys((decode_uri(url), url)))
        contents = [signed_content(method.upper(), uri, body, timestamp) for uri in uris]
        for key in self._keys:
            for content in contents:
                expected = base64.b64encode(key.digest(content)).decode("ascii")
                if constant_time_equal(expected, signature):
                    return
        raise VerificationError(
            "no_matching_signature",
            f"{SIGNATURE_HEADER} matches none of the {len(self._keys)} client secret(s) "
            "for this method, URL, body and timestamp",
        )
