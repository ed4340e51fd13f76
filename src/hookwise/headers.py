"""Request headers: decoded once on the way in, redacted before they are stored.

Stored events keep their headers for debugging and replay, but never a credential:
``Authorization``, cookies, anything named like a token or secret, the headers a
provider uses to carry a secret, and any header whose value repeats a configured
secret are replaced by ``[redacted]``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["REDACTED", "Redactor", "decode_asgi_headers", "is_sensitive_name", "redact_headers"]

REDACTED = "[redacted]"

_SENSITIVE_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SENSITIVE_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "apikey",
    "x-auth",
    "session",
)


def is_sensitive_name(name: str) -> bool:
    """Whether a header of this (lowercase) name carries a credential, whatever its value.

    >>> is_sensitive_name("x-gitlab-token")
    True
    """
    return name in _SENSITIVE_NAMES or any(part in name for part in _SENSITIVE_PARTS)


def redact_headers(
    raw: Iterable[tuple[str, str]],
    *,
    secret_values: Collection[str] = (),
    secret_headers: Collection[str] = (),
) -> tuple[tuple[str, str], ...]:
    """The headers safe to store: same order, lowercase names, credentials replaced.

    >>> redact_headers([("Authorization", "Bearer abc"), ("X-Id", "7")])
    (('authorization', '[redacted]'), ('x-id', '7'))

    ``secret_values`` are a source's secrets: a header whose value contains one is
    redacted whatever its name. ``secret_headers`` are extra names to always redact.
    """
    redactor = Redactor(secret_values=secret_values, secret_headers=secret_headers)
    return redactor.redact(tuple((name.lower(), value) for name, value in raw))


class Redactor:
    """:func:`redact_headers` for one source, its secrets and names prepared once.

    >>> redact = Redactor(secret_values=("s3cret",))
    >>> redact({"x-id": "7", "x-echo": "s3cret"})
    (('x-id', '7'), ('x-echo', '[redacted]'))

    Takes headers as :func:`decode_asgi_headers` gives them (lowercase names) and
    redacts exactly as :func:`redact_headers` does.
    """

    __slots__ = ("_extra_names", "_secrets", "_shortest", "_verdicts")

    def __init__(
        self, *, secret_values: Collection[str] = (), secret_headers: Collection[str] = ()
    ) -> None:
        self._extra_names = frozenset(name.lower() for name in secret_headers)
        self._secrets = tuple(value for value in secret_values if value)
        # A value shorter than every secret can't contain one: most values are.
        self._shortest = min(map(len, self._secrets), default=0) if self._secrets else 1 << 62
        self._verdicts: dict[str, bool] = {}

    def __call__(self, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        pairs = tuple(headers.items())
        verdicts = self._verdicts
        shortest = self._shortest
        for name, value in pairs:
            # Unknown names (None) and sensitive ones (True) take the careful path.
            if verdicts.get(name) is not False:
                return self.redact(pairs)
            if len(value) >= shortest:
                for secret in self._secrets:
                    if secret in value:
                        return self.redact(pairs)
        return pairs  # the common case: nothing to hide, nothing copied

    def redact(self, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """Redact ``(lowercase name, value)`` pairs, always building a new tuple."""
        verdicts = self._verdicts
        redacted: list[tuple[str, str]] = []
        for name, value in pairs:
            sensitive = verdicts.get(name)
            if sensitive is None:
                sensitive = is_sensitive_name(name) or name in self._extra_names
                if len(verdicts) < _MAX_REMEMBERED_NAMES:
                    verdicts[name] = sensitive
            if sensitive:
                value = REDACTED
            elif len(value) >= self._shortest:
                for secret in self._secrets:
                    if secret in value:
                        value = REDACTED
                        break
            redacted.append((name, value))
        return tuple(redacted)


# Header names repeat from request to request; their verdict is remembered (bounded,
# since names are chosen by the sender).
_MAX_REMEMBERED_NAMES = 2048


def decode_asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs as a dict with lowercase names.

    >>> decode_asgi_headers([(b"X-Id", b"1"), (b"accept", b"a"), (b"accept", b"b")])
    {'x-id': '1', 'accept': 'a, b'}

    Latin-1 decoding maps every byte to one character, so it never fails and the
    original bytes can be recovered exactly. A repeated header is joined with
    ``", "`` as HTTP allows, except ``cookie``, whose pieces are joined with ``"; "``.
    """
    pairs = raw if isinstance(raw, list | tuple) else list(raw)
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in pairs}
    if len(headers) == len(pairs):
        return headers  # no repeated header: the common case
    headers = {}
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        else:
            headers[name] = previous + ("; " if name == "cookie" else ", ") + value
    return headers
