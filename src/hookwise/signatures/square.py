"""Square's ``x-square-hmacsha256-signature``: an HMAC of the notification URL and body.

>>> sign(b"signature-key", "https://webhook.site/webhooks",
...      b'{"data":{"type":"webhooks","id":">id<"}}')
'Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U='

base64(HMAC-SHA256(subscription signature key, notification URL + raw body)); the URL
is the one in the subscription, byte for byte. Subscriptions of the first API
version also (or only) send ``x-square-signature``: the same bytes under
HMAC-SHA1, accepted only when the source allows it. There is no timestamp: a
replayed delivery verifies, and is caught by the ``event_id`` dedup key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from hookwise.errors import VerificationError
from hookwise.signatures._common import HmacKey, constant_time_equal

__all__ = ["SHA1_HEADER", "SHA256_HEADER", "Verifier", "sign"]

SHA256_HEADER = "x-square-hmacsha256-signature"
SHA1_HEADER = "x-square-signature"


def sign(key: bytes, url: str, body: bytes, algorithm: str = "sha256") -> str:
    """The signature header value for ``body`` posted to ``url``."""
    if algorithm not in ("sha1", "sha256"):
        raise ValueError(f"unknown algorithm {algorithm!r}; use sha256 (or sha1, legacy)")
    content = url.encode("utf-8", "surrogatepass") + body
    return base64.b64encode(HmacKey(key, algorithm).digest(content)).decode("ascii")


class Verifier:
    """Checks a Square signature against several signature keys (any may match).

    :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`:
    ``missing_header``, ``wrong_url`` (no URL to check), ``no_matching_signature``.
    """

    __slots__ = ("_allow_sha1", "_keys")

    def __init__(self, secrets: Iterable[bytes], *, allow_sha1: bool = False) -> None:
        secrets = tuple(secrets)
        self._keys = {
            "sha256": tuple(HmacKey(secret, "sha256") for secret in secrets),
            "sha1": tuple(HmacKey(secret, "sha1") for secret in secrets),
        }
        self._allow_sha1 = allow_sha1

    def verify(self, *, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        header, algorithm = SHA256_HEADER, "sha256"
        signature = (headers.get(SHA256_HEADER) or "").strip()
        if not signature:
            legacy = (headers.get(SHA1_HEADER) or "").strip()
            if not legacy:
                raise VerificationError("missing_header", f"the {SHA256_HEADER} header is missing")
            if not self._allow_sha1:
                raise VerificationError(
                    "missing_header",
                    f"the {SHA256_HEADER} header is missing; only the legacy HMAC-SHA1 "
                    f"{SHA1_HEADER} came, which this source does not accept",
                )
            header, algorithm, signature = SHA1_HEADER, "sha1", legacy
        if not url:
            raise VerificationError(
                "wrong_url",
                "no URL to check the signature against: set public_url to the "
                "subscription's notification URL",
            )
        content = url.encode("utf-8", "surrogatepass") + body
        keys = self._keys[algorithm]
        for key in keys:
            expected = base64.b64encode(key.digest(content)).decode("ascii")
            if constant_time_equal(expected, signature):
                return
        raise VerificationError(
            "no_matching_signature",
            f"{header} matches none of the {len(keys)} signature key(s) for this URL and body",
        )
