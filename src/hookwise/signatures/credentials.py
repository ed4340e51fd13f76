"""Shared credentials sent with every request: HTTP Basic auth and static tokens.

Neither signs anything: a request that carries the right credential is accepted
whatever its body, and a captured request can be replayed for as long as the
credential lives. They are what many senders offer when they offer nothing better.

>>> accepted = Credentials(["hookwise:s3cret"])
>>> accepted.match(parse_basic("Basic aG9va3dpc2U6czNjcmV0"))
True

Credentials are compared by their SHA-256 digests with :func:`hmac.compare_digest`,
against every accepted value without stopping at the first match: the time taken
says neither how much of a guess was right nor which secret matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from hookwise.errors import VerificationError
from hookwise.signatures._common import header_bytes

__all__ = [
    "BASIC_SCHEME",
    "Credentials",
    "basic_header",
    "format_token",
    "parse_basic",
    "parse_token",
    "scheme_of",
]

BASIC_SCHEME = "Basic"

# Schemes a message may name. Whatever else is in front of the credentials is never
# repeated back: it may be the credential itself.
_KNOWN_SCHEMES = {
    name.lower(): name
    for name in ("Basic", "Bearer", "Token", "Digest", "Negotiate", "HMAC", "ApiKey", "JWT")
}


class Credentials:
    """The accepted values of a credential, kept as digests.

    >>> Credentials(["tok_1", "tok_2"]).match(b"tok_2")
    True

    Each secret is accepted as its UTF-8 bytes and, when it has characters beyond
    ASCII that Latin-1 can write, as its Latin-1 bytes too: RFC 7617 leaves the
    charset of Basic credentials to the sender, and older senders use Latin-1.
    """

    __slots__ = ("_digests",)

    def __init__(self, secrets: Iterable[str]) -> None:
        digests: list[bytes] = []
        for secret in secrets:
            for encoded in _encodings(secret):
                digest = hashlib.sha256(encoded).digest()
                if digest not in digests:
                    digests.append(digest)
        self._digests = tuple(digests)

    def __repr__(self) -> str:
        return f"<Credentials {len(self._digests)} digest(s)>"  # never a secret

    def match(self, given: bytes) -> bool:
        """Whether ``given`` is one of the accepted values, in time independent of which."""
        digest = hashlib.sha256(given).digest()
        found = False
        for accepted in self._digests:
            found |= hmac.compare_digest(digest, accepted)
        return found


def _encodings(secret: str) -> list[bytes]:
    encoded = [secret.encode("utf-8", "surrogatepass")]
    if not secret.isascii():
        try:
            encoded.append(secret.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    return encoded


def parse_basic(value: str | None, *, header: str = "authorization") -> bytes:
    """The ``user:password`` bytes of a ``Basic`` Authorization value.

    >>> parse_basic("Basic aG9va3dpc2U6czNjcmV0")
    b'hookwise:s3cret'

    Raises :class:`VerificationError` (``missing_header`` or ``malformed_header``)
    and nothing else, whatever ``value`` holds. The scheme name is matched without
    regard to case (RFC 9110, section 11.1); missing base64 padding is tolerated.
    """
    if value is None or not value.strip():
        raise VerificationError("missing_header", f"the {header} header is missing or empty")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != BASIC_SCHEME.lower():
        raise VerificationError(
            "malformed_header", f"the {header} header {_uses(scheme)}, not {BASIC_SCHEME}"
        )
    encoded = encoded.strip()
    if not encoded:
        raise VerificationError(
            "malformed_header", f"the {header} header has the Basic scheme but no credentials"
        )
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        decoded = base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise VerificationError(
            "malformed_header", f"the credentials in the {header} header are not base64"
        ) from None
    if b":" not in decoded:
        raise VerificationError(
            "malformed_header",
            f"the credentials in the {header} header have no ':' between user name and password",
        )
    return decoded


def basic_header(credentials: str) -> str:
    """The Authorization value that sends ``user:password``.

    >>> basic_header("hookwise:s3cret")
    'Basic aG9va3dpc2U6czNjcmV0'
    """
    encoded = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return f"{BASIC_SCHEME} {encoded}"


def parse_token(value: str | None, *, header: str, prefix: str) -> bytes:
    """The token in a header value, after ``prefix``, as the bytes the sender sent.

    >>> parse_token("Bearer tok_1", header="authorization", prefix="Bearer")
    b'tok_1'

    ``prefix`` is matched without regard to case and without regard to the spaces
    around the token. A prefix that ends in a letter or digit (a scheme such as
    ``Bearer``) must be followed by a space; one that ends in punctuation
    (``key=``) need not. Raises :class:`VerificationError` only.
    """
    if value is None or not value.strip():
        raise VerificationError("missing_header", f"the {header} header is missing or empty")
    text = value.strip()
    wanted = prefix.strip()
    if wanted:
        start = text[: len(wanted)]
        rest = text[len(wanted) :]
        separated = not wanted[-1].isalnum() or not rest or rest[0].isspace()
        if start.lower() != wanted.lower() or not separated:
            scheme = text.partition(" ")[0]
            uses = f" (it {_uses(scheme)})" if scheme.lower() in _KNOWN_SCHEMES else ""
            raise VerificationError(
                "malformed_header",
                f"the {header} header does not start with {wanted!r}{uses}",
            )
        text = rest.strip()
    if not text:
        raise VerificationError("malformed_header", f"the {header} header carries no token")
    return header_bytes(text)


def format_token(token: str, *, prefix: str) -> str:
    """The header value that sends ``token`` after ``prefix``.

    >>> format_token("tok_1", prefix="Bearer")
    'Bearer tok_1'
    """
    wanted = prefix.strip()
    if not wanted:
        return token
    return f"{wanted} {token}" if wanted[-1].isalnum() else f"{wanted}{token}"


def scheme_of(value: str) -> str | None:
    """The auth-scheme ``value`` starts with, when it is one hookwise knows by name.

    >>> scheme_of("bearer eyJhbGciOi...")
    'Bearer'
    """
    text = value.strip()
    scheme, space, _ = text.partition(" ")
    if not space:
        return None
    return _KNOWN_SCHEMES.get(scheme.lower())


def _uses(scheme: str) -> str:
    known = _KNOWN_SCHEMES.get(scheme.lower())
    return f"uses the {known} scheme" if known else "does not start with a scheme name"
