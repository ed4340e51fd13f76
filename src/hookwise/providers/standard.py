"""Provider ``standard``: Standard Webhooks v1 (``webhook-id``, ``-timestamp``, ``-signature``).

Secrets are ``whsec_`` + base64, as senders show them. The dedup key is the
``webhook-id`` header (stable across retries); the type is the body's ``type`` field.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping, Sequence

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Extraction,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.signatures import standard

__all__ = ["PROVIDER", "StandardSource", "build"]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class StandardSource(Source):
    """A Standard Webhooks source.

    >>> source = build(SourceSettings(name="orders", provider="standard",
    ...                               secrets=("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)))
    >>> headers = source.sign_headers(b"{}", now=1700000000)
    >>> source.verify(b"{}", headers, now=1700000000)
    """

    provider = "standard"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        keys: Sequence[bytes],
        tolerance: float,
        secret_values: tuple[str, ...],
    ) -> None:
        super().__init__(name, extraction, secret_values=secret_values)
        self._keys = tuple(keys)
        self._verifier = standard.Verifier(self._keys)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(
            msg_id=headers.get(ID_HEADER),
            timestamp_header=headers.get(TIMESTAMP_HEADER),
            signature_header=headers.get(SIGNATURE_HEADER),
            body=body,
            now=now,
            tolerance=self._tolerance,
        )

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        key = pick_secret(self._keys, secret_index)
        msg_id = delivery_id or "msg_" + _random.token_hex(12)
        timestamp = int(now)
        return {
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: standard.sign(key, msg_id, timestamp, body),
        }


def build(settings: SourceSettings) -> StandardSource:
    """Build a Standard Webhooks source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    raw_secrets = require_secrets(settings)
    keys: list[bytes] = []
    redact: list[str] = []
    for position, secret in enumerate(raw_secrets):
        try:
            keys.append(standard.decode_secret(secret))
        except ValueError as exc:
            raise ConfigError(
                f"secret number {position + 1}: {exc}",
                key=f"sources.{settings.name}.secrets",
                fix="use the whsec_... value exactly as the sender shows it",
            ) from None
        bare = secret.strip().removeprefix(standard.SECRET_PREFIX)
        redact.extend(value for value in (secret, bare) if value not in redact)
    return StandardSource(
        settings.name,
        build_extraction(settings, dedup=f"header:{ID_HEADER}", type="body:type"),
        keys=keys,
        tolerance=check_tolerance(settings),
        secret_values=tuple(redact),
    )


PROVIDER = ProviderSpec(
    "standard",
    "Standard Webhooks v1: webhook-id, webhook-timestamp, webhook-signature; whsec_ secrets",
    build,
)
