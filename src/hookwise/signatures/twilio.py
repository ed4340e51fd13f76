"""Twilio's ``X-Twilio-Signature``: an HMAC of the URL and the POST parameters.

>>> sign(b"12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
...      [(b"CallSid", b"CA1234567890ABCDE"), (b"Caller", b"+14158675309"),
...       (b"Digits", b"1234"), (b"From", b"+14158675309"), (b"To", b"+18005551212")])
'RSOYDt4T1cUTdK1PDd93/VVr8B8='

The signed bytes are the full URL as configured at Twilio (query included), then,
for a form body, every POST parameter sorted by name, each written as name + value
with no separator (repeated names: their values sorted). The key is the account's
Auth Token, HMAC-SHA1, base64.

JSON bodies are signed differently: the URL carries ``bodySHA256=<hex SHA-256 of
the body>`` in its query and the signature covers the URL alone.

SharedKey signing (public beta): Twilio adds ``X-Twilio-Webhooks-Signature-Settings:
key=<id>,algorithm=HMAC_SHA256`` and signs the same bytes with the SharedKey secret
and the named algorithm (``HMAC_SHA1`` or ``HMAC_SHA256``); without that header the
signature is the Auth Token one (HMAC-SHA1). Checked against Twilio's "Sign webhooks
with shared keys" page and the twilio-node/twilio-python validators (only the hash
and the key change; the signed string is the same).

Twilio's validators accept the URL with and without an explicit port (Twilio is not
consistent about it); so does :class:`Verifier`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from hookwise.errors import VerificationError
from hookwise.signatures._common import HmacKey, constant_time_equal
from hookwise.signatures._url import port_variants

__all__ = [
    "ALGORITHMS",
    "BODY_HASH_PARAM",
    "DEFAULT_ALGORITHM",
    "SETTINGS_HEADER",
    "SIGNATURE_HEADER",
    "Verifier",
    "algorithm_from_settings",
    "body_hash",
    "form_params",
    "sign",
    "signed_contents",
]

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
BODY_HASH_PARAM = "bodySHA256"
ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
"""Twilio's algorithm names -> hashlib names."""
DEFAULT_ALGORITHM = "HMAC_SHA1"

Params = Sequence[tuple[bytes, bytes]]
"""POST parameters as (name, value) bytes, in the order they came."""


def form_params(body: bytes) -> list[tuple[bytes, bytes]]:
    """The parameters of an ``application/x-www-form-urlencoded`` body, as bytes.

    >>> form_params(b"From=%2B14158675309&Body=Hi+there&Empty=")
    [(b'From', b'+14158675309'), (b'Body', b'Hi there'), (b'Empty', b'')]

    Never fails: the body is read as latin-1, so every byte (escaped or not) comes
    back as itself.
    """
    text = body.decode("latin-1")
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in parse_qsl(text, keep_blank_values=True, encoding="latin-1")
    ]


def signed_contents(url: str, params: Params) -> tuple[bytes, ...]:
    """The bytes Twilio signs for ``url`` and ``params``: usually one; two when a name
    repeats a value (with and without the repeats, as Twilio's validators differ)."""
    grouped: dict[bytes, list[bytes]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    base = url.encode("utf-8", "surrogatepass")
    contents = [_render(base, grouped, unique=False)]
    if any(len(set(values)) != len(values) for values in grouped.values()):
        contents.append(_render(base, grouped, unique=True))
    return tuple(contents)


def sign(key: bytes, url: str, params: Params = (), algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The ``X-Twilio-Signature`` value for a request to ``url`` with ``params``."""
    name = ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise ValueError(f"unknown algorithm {algorithm!r}; use one of: {', '.join(ALGORITHMS)}")
    digest = HmacKey(key, name).digest(signed_contents(url, params)[0])
    return base64.b64encode(digest).decode("ascii")


def body_hash(body: bytes) -> str:
    """The ``bodySHA256`` value of a JSON body: its SHA-256, lowercase hex."""
    return hashlib.sha256(body).hexdigest()


def algorithm_from_settings(header: str | None) -> str:
    """The algorithm the ``X-Twilio-Webhooks-Signature-Settings`` header names.

    >>> algorithm_from_settings("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256")
    'HMAC_SHA256'

    No header (or no ``algorithm=``) means the Auth Token signature, HMAC-SHA1.
    """
    for part in (header or "").split(","):
        name, equals, value = part.partition("=")
        if equals and name.strip().lower() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
            if algorithm not in ALGORITHMS:
                raise VerificationError(
                    "unsupported_algorithm",
                    f"{SETTINGS_HEADER} names algorithm {value.strip()[:40]!r}; "
                    f"hookwise knows {', '.join(ALGORITHMS)}",
                )
            return algorithm
    return DEFAULT_ALGORITHM


class Verifier:
    """Checks ``X-Twilio-Signature`` against several secrets (Auth Tokens or SharedKey
    secrets: a signature by any of them passes).

    >>> Verifier([b"12345"]).verify(url=url, body=body, headers=headers)

    :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`; reasons
    ``missing_header``, ``unsupported_algorithm``, ``wrong_url`` (no URL to check),
    ``no_matching_signature`` (also when the body does not match ``bodySHA256``).
    """

    __slots__ = ("_keys",)

    def __init__(self, secrets: Iterable[bytes]) -> None:
        secrets = tuple(secrets)
        self._keys = {
            algorithm: tuple(HmacKey(secret, name) for secret in secrets)
            for algorithm, name in ALGORITHMS.items()
        }

    def verify(self, *, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        signature = (headers.get(SIGNATURE_HEADER) or "").strip()
        if not signature:
            raise VerificationError("missing_header", f"the {SIGNATURE_HEADER} header is missing")
        algorithm = algorithm_from_settings(headers.get(SETTINGS_HEADER))
        if not url:
            raise VerificationError(
                "wrong_url",
                "no URL to check the signature against: set public_url to the URL "
                "configured at Twilio",
            )
        expected_hash = _query_value(url, BODY_HASH_PARAM)
        params: Params
        if expected_hash is not None:
            if not constant_time_equal(body_hash(body), expected_hash.strip().lower()):
                raise VerificationError(
                    "no_matching_signature",
                    f"the body's SHA-256 does not match the {BODY_HASH_PARAM} of the URL",
                )
            params = ()
        else:
            params = form_params(body)
        contents = [
            content
            for variant in port_variants(url)
            for content in signed_contents(variant, params)
        ]
        keys = self._keys[algorithm]
        for key in keys:
            for content in contents:
                expected = base64.b64encode(key.digest(content)).decode("ascii")
                if constant_time_equal(expected, signature):
                    return
        raise VerificationError(
            "no_matching_signature",
            f"{SIGNATURE_HEADER} ({algorithm}) matches none of the {len(keys)} secret(s) "
            "for this URL and body",
        )


def _render(base: bytes, grouped: dict[bytes, list[bytes]], *, unique: bool) -> bytes:
    chunks = [base]
    for name in sorted(grouped):
        values = grouped[name]
        for value in sorted(set(values) if unique else values):
            chunks.append(name)
            chunks.append(value)
    return b"".join(chunks)


def _query_value(url: str, name: str) -> str | None:
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None
