"""Provider ``bearer``: a static token in a header, ``Authorization: Bearer <token>``.

>>> source = build(SourceSettings(name="crm", provider="bearer", secrets=("tok_4f9a",)))
>>> source.verify(b"{}", {"authorization": "Bearer tok_4f9a"}, now=0)

Senders that put the token in a header of their own are configured with the
common ``header`` and ``prefix`` settings, as for provider ``hmac``::

    [sources.crm]
    provider = "bearer"
    header = "X-Api-Key"        # default: Authorization
    prefix = ""                 # default: "Bearer" in Authorization, nothing elsewhere
    secrets = ["env:CRM_WEBHOOK_TOKEN"]

The prefix is matched without regard to case or to the spaces around the token; a
prefix ending in a letter (a scheme such as ``Token``) must be followed by a space.
Each secret is one accepted token (several allow a rotation); tokens are compared
in constant time. The header is always redacted before a request is stored.

A token proves who sent a request, not what was sent: nothing covers the body and
there is no timestamp, so a tampered body still verifies and a captured request can
be replayed until the token changes. Use it over HTTPS only. Tokens that change with
every request (signed JWTs) are not static tokens and do not verify here. The dedup
key is the ``dedup_key`` setting when given, else a hash of the body. Checked
against RFC 6750 section 2.1 (``Bearer`` + token68) and RFC 9110 section 11.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers._base import (
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._credential import delivery_headers, generic_samples, whitespace_hints
from hookwise.providers._extract import parse_spec
from hookwise.providers._hints import with_own_hints
from hookwise.signatures._common import header_bytes
from hookwise.signatures.credentials import Credentials, format_token, parse_token, scheme_of

__all__ = [
    "DEFAULT_HEADER",
    "DEFAULT_PREFIX",
    "EXAMPLE_SETTINGS",
    "PROVIDER",
    "BearerSource",
    "build",
]

DEFAULT_HEADER = "Authorization"
DEFAULT_PREFIX = "Bearer"
"""The prefix in the Authorization header when ``prefix`` is not set."""

_JWT = re.compile(r"[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SCHEME_WORDS = ("bearer", "token", "apikey", "basic")


class BearerSource(Source):
    """A source whose senders send a static token in a header."""

    provider = "bearer"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        tokens: tuple[str, ...],
        header: str,
        prefix: str,
    ) -> None:
        super().__init__(name, extraction, secret_values=tokens, secret_headers=(header.lower(),))
        self.header = header
        """The header that carries the token, as configured."""
        self.prefix = prefix
        """What comes before the token in that header ("" for nothing)."""
        self._key = header.lower()
        self._tokens = tokens
        self._accepted = Credentials(tokens)

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        token = parse_token(headers.get(self._key), header=self.header, prefix=self.prefix)
        if not self._accepted.match(token):
            raise VerificationError(
                "bad_token",
                f"the token in the {self.header} header matches none of the source's "
                f"{len(self._tokens)} token(s)",
            )

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        token = pick_secret(self._tokens, secret_index)
        headers = delivery_headers(self.extraction, delivery_id)
        headers[self.header] = format_token(token, prefix=self.prefix)
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        return generic_samples(now)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        hints += whitespace_hints(self._tokens, "token")
        reason = error.reason if isinstance(error, VerificationError) else ""
        value = request.headers.get(self._key, "")
        if reason in ("missing_header", "bad_token"):
            hints += self._elsewhere(request)
        if reason == "missing_header" and self._key == "authorization":
            hints.append(
                "a proxy in front of hookwise may drop the Authorization header; "
                "check that it passes it on"
            )
        elif reason == "malformed_header":
            hints += self._prefix_hints(value)
        elif reason == "bad_token":
            hints += self._token_hints(value)
        return hints

    def _elsewhere(self, request: Inbound) -> list[str]:
        """Where else the request carries a configured token (a header, the query)."""
        for name, value in request.headers.items():
            if name != self._key and self._accepted.match(header_bytes(_bare(value))):
                return [f'a configured token is in the {name} header: set header = "{name}"']
        for name, value in request.params.items():
            if self._accepted.match(value.encode("utf-8")):
                return [
                    f"a configured token is in the query string ({name}=...): hookwise reads "
                    f"tokens from a header; have the sender send it in {self.header}, or "
                    "anyone who sees the URL in a log can use it"
                ]
        return []

    def _prefix_hints(self, value: str) -> list[str]:
        if scheme_of(value) == "Basic":
            return [
                'the sender uses Basic auth (user and password): use provider = "basic" '
                'with secrets = ["user:password"]'
            ]
        if self._accepted.match(header_bytes(value.strip())):
            expected = self.prefix or "nothing"
            return [
                f"the {self.header} header carries a configured token without the prefix "
                f"(expected {expected!r} before it): "
                + (
                    'set prefix = "" to accept the bare token'
                    if self._key != "authorization"
                    else "have the sender send 'Bearer <token>', or the token in a header "
                    'of its own (header = "X-Webhook-Token")'
                )
            ]
        return []

    def _token_hints(self, value: str) -> list[str]:
        try:
            token = parse_token(value, header=self.header, prefix=self.prefix)
        except VerificationError:
            return []
        quoted = len(token) > 2 and token[:1] == token[-1:] and token[:1] in (b'"', b"'")
        if quoted and self._accepted.match(token[1:-1]):
            return ["the sender puts the token in quotes: remove them in its settings"]
        if not self.prefix and self._accepted.match(header_bytes(_bare(value))):
            return [
                f"the {self.header} header has a prefix before the token: set prefix to it, "
                'e.g. prefix = "Bearer"'
            ]
        if _JWT.fullmatch(token.decode("latin-1")):
            return [
                "the token is a JWT (three dot-separated parts): the sender signs a new one "
                "for each request, so no static token can match it; hookwise does not "
                "verify JWTs"
            ]
        return []


def _bare(value: str) -> str:
    """A header value without a scheme word in front (``Bearer x`` -> ``x``)."""
    text = value.strip()
    first, space, rest = text.partition(" ")
    if space and first.lower() in _SCHEME_WORDS:
        return rest.strip()
    return text


def build(settings: SourceSettings) -> BearerSource:
    """Build a static-token source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(
        settings, ("algorithm", "encoding", "timestamp_header", "signed_content", "tolerance")
    )
    check_options(settings, ())
    tokens = require_secrets(settings)
    header = DEFAULT_HEADER
    if settings.header is not None:
        header = settings.header.strip()
        parse_spec(f"header:{header}", key=f"sources.{settings.name}.header")
    prefix = settings.prefix.strip()
    if not prefix and header.lower() == "authorization":
        prefix = DEFAULT_PREFIX
    return BearerSource(
        settings.name,
        build_extraction(settings, dedup=None, type="body:type"),
        tokens=tokens,
        header=header,
        prefix=prefix,
    )


PROVIDER = ProviderSpec(
    "bearer",
    "a static token in a header (Authorization: Bearer <token>, or header/prefix configured); "
    "no body signature",
    build,
    info=ProviderInfo(
        scheme="static token, compared in constant time; the body is not signed and there "
        "is no timestamp (replayable)",
        headers="Authorization: Bearer <token>, or the configured header and prefix",
        dedup_key="dedup_key setting, else a body hash",
        ordering_key="ordering_key setting",
        retries="the sender's",
        credential="the token(s) the sender is configured with",
        signs_body=False,
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("tok_live_9f3c2a71d04e4b6f8a5e",),
}
"""Settings the generic provider tests build this provider with."""
