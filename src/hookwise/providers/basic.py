"""Provider ``basic``: HTTP Basic auth, ``Authorization: Basic base64(user:password)``.

>>> source = build(SourceSettings(name="erp", provider="basic",
...                               secrets=("hookwise:correct-horse-battery-staple",)))
>>> source.verify(b"{}", source.sign_headers(b"{}", now=0), now=0)

Each secret is one ``"user:password"`` pair the sender may use; several allow a
rotation (any of them passes). The decoded credentials are compared with every
secret in constant time.

Basic auth proves who sent a request, not what was sent: nothing covers the body
and there is no timestamp, so a tampered body still verifies and a captured request
can be replayed until the password changes. Use it over HTTPS only, and prefer a
signing scheme where the sender offers one. There is no delivery id either: the
dedup key is the ``dedup_key`` setting when given, else a hash of the body.

The Authorization header is always redacted before a request is stored (by name),
and so is any other header that repeats a secret, its password or its encoding.
Checked against RFC 7617 (user-id without ':', password after the first ':',
charset left to the sender) and RFC 9110 section 11 (scheme names are
case-insensitive).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
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
from hookwise.providers._hints import with_own_hints
from hookwise.signatures.credentials import Credentials, basic_header, parse_basic, scheme_of

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "BasicSource", "build"]

HEADER = "authorization"


class BasicSource(Source):
    """A source whose senders authenticate with HTTP Basic auth."""

    provider = "basic"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        credentials: tuple[str, ...],
        secret_values: tuple[str, ...],
    ) -> None:
        super().__init__(name, extraction, secret_values=secret_values)
        self._credentials = credentials
        self._accepted = Credentials(credentials)

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        given = parse_basic(headers.get(HEADER))
        if not self._accepted.match(given):
            raise VerificationError(
                "bad_credentials",
                f"the user name and password match none of the source's "
                f"{len(self._credentials)} secret(s)",
            )

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        credentials = pick_secret(self._credentials, secret_index)
        headers = delivery_headers(self.extraction, delivery_id)
        headers["Authorization"] = basic_header(credentials)
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        return generic_samples(now)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        hints += whitespace_hints(self._credentials, "secret")
        reason = error.reason if isinstance(error, VerificationError) else ""
        value = request.headers.get(HEADER, "")
        if reason == "missing_header":
            hints.append(
                "the request has no Authorization header: give the sender the user name and "
                "password (many take them in the URL, https://user:password@host/hooks/"
                f"{self.name}); a proxy in front of hookwise may also drop the header"
            )
        elif reason == "malformed_header":
            if scheme_of(value) == "Bearer":
                hints.append(
                    'the sender uses a Bearer token, not Basic auth: use provider = "bearer" '
                    "with the token in secrets"
                )
            elif value.strip() and " " not in value.strip():
                hints.append(
                    "the Authorization header has no scheme: Basic auth sends "
                    "'Basic base64(user:password)'"
                )
        elif reason == "bad_credentials":
            hints += self._credential_hints(value)
        return hints

    def _credential_hints(self, value: str) -> list[str]:
        try:
            given = parse_basic(value)
        except VerificationError:
            return []
        user = given.partition(b":")[0]
        variants = {
            "once the spaces or line breaks around them are removed": given.strip(),
            "once percent-decoded (the sender copied them from a URL as they were "
            "written there, e.g. %40 for @)": unquote_to_bytes(given),
        }
        for how, variant in variants.items():
            if variant != given and self._accepted.match(variant):
                return [f"the credentials the sender used match a secret {how}"]
        users = [secret.partition(":")[0] for secret in self._credentials]
        for position, name in enumerate(users, start=1):
            if Credentials([name]).match(user):
                return [
                    f"the user name matches secret number {position} but the password does "
                    "not: it was changed on one side (or the variable holds an old one)"
                ]
        return [
            "no secret has the user name the sender used: check which user the sender "
            "is configured with"
        ]


def build(settings: SourceSettings) -> BasicSource:
    """Build a Basic auth source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, (*SCHEME_FIELDS, "tolerance"))
    check_options(settings, ())
    credentials = require_secrets(settings)
    redact: list[str] = []
    for position, secret in enumerate(credentials, start=1):
        user, colon, password = secret.partition(":")
        if not colon:
            raise ConfigError(
                f"secret number {position} has no ':' between user name and password",
                key=f"sources.{settings.name}.secrets",
                fix='write each secret as "user:password" (e.g. "env:ERP_WEBHOOK_AUTH" '
                "holding hookwise:s3cret)",
            )
        if not user and not password:
            raise ConfigError(
                f"secret number {position} has neither a user name nor a password",
                key=f"sources.{settings.name}.secrets",
                fix='write each secret as "user:password"',
            )
        encoded = base64.b64encode(secret.encode("utf-8")).decode("ascii")
        for value in (secret, password, encoded):
            if value and value not in redact:
                redact.append(value)
    return BasicSource(
        settings.name,
        build_extraction(settings, dedup=None, type="body:type"),
        credentials=credentials,
        secret_values=tuple(redact),
    )


PROVIDER = ProviderSpec(
    "basic",
    "HTTP Basic auth (Authorization: Basic user:password); no body signature",
    build,
    info=ProviderInfo(
        scheme="HTTP Basic auth: user:password, compared in constant time; the body is "
        "not signed and there is no timestamp (replayable)",
        headers="Authorization: Basic base64(user:password)",
        dedup_key="dedup_key setting, else a body hash",
        ordering_key="ordering_key setting",
        retries="the sender's",
        credential='"user:password" pairs the sender is configured with',
        signs_body=False,
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("hookwise:correct-horse-battery-staple",),
}
"""Settings the generic provider tests build this provider with."""
