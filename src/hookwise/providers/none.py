"""Provider ``none``: accepts every delivery unverified. For local experiments only.

Anyone who can reach the endpoint can inject events, so hookwise warns at start-up
when a source uses it. Dedup key, type and ordering rules are those of ``hmac``.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    reject_fields,
)

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "UnverifiedSource", "build"]


class UnverifiedSource(Source):
    """A source that verifies nothing.

    >>> source = build(SourceSettings(name="local", provider="none"))
    >>> source.verify(b"anything", {}, now=0)
    """

    provider = "none"
    insecure = True

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        return None

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        return {}


def build(settings: SourceSettings) -> UnverifiedSource:
    """Build an unverified source; secrets are refused, since they would not be checked."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    if settings.secrets:
        raise ConfigError(
            "provider 'none' verifies nothing, so its secrets would be ignored",
            key=f"sources.{settings.name}.secrets",
            fix='choose the provider that signs these deliveries (e.g. "hmac"), '
            "or remove the secrets",
        )
    return UnverifiedSource(settings.name, build_extraction(settings, dedup=None, type="body:type"))


PROVIDER = ProviderSpec(
    "none",
    "no verification at all (local experiments only)",
    build,
    info=ProviderInfo(
        scheme="none: every request is accepted",
        headers="none",
        dedup_key="dedup_key setting, else a body hash",
        retries="the sender's",
        credential="nothing (no secrets)",
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ()}
"""Settings the generic provider tests build this provider with."""
