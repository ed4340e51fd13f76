"""Provider ``hmac``: any HMAC scheme, described in configuration.

>>> build(SourceSettings(name="acme", provider="hmac", header="X-Acme-Signature",
...                      prefix="sha256=", secrets=("s3cret",),
...                      dedup_key="header:X-Acme-Delivery"))

Secrets are used as their UTF-8 bytes. The dedup key, type, ordering key and time
come from where the settings say (``header:NAME``, ``body:path``, ``const:VALUE``
for the type); without a ``dedup_key``, identical bodies count as one event.
The ``{id}`` placeholder of ``signed_content`` is the value of the ``id_header``
option, or of the ``dedup_key`` header.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    Extraction,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    require_secrets,
)
from hookwise.providers._extract import parse_spec
from hookwise.signatures.hmac import (
    ALGORITHMS,
    DEFAULT_TEMPLATE,
    ENCODINGS,
    HmacScheme,
    parse_template,
)

__all__ = ["EXAMPLE_SETTINGS", "OPTIONS", "PROVIDER", "HmacSource", "build"]

OPTIONS = ("id_header",)
"""Provider options: ``id_header`` names the header whose value ``{id}`` stands for."""


class HmacSource(Source):
    """A source verified by a configured :class:`~hookwise.signatures.hmac.HmacScheme`."""

    provider = "hmac"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        scheme: HmacScheme,
        secrets: tuple[str, ...],
        tolerance: float,
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self.scheme = scheme
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._tolerance = tolerance
        id_headers = [scheme.id_header] if scheme.id_header else []
        if extraction.dedup is not None and extraction.dedup.kind == "header":
            id_headers.append(extraction.dedup.value)
        self._id_headers = tuple(dict.fromkeys(id_headers))

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self.scheme.verify(
            self._keys, headers=headers, body=body, now=now, tolerance=self._tolerance
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
        headers: dict[str, str] = {}
        timestamp: str | None = None
        if self.scheme.timestamp_header:
            timestamp = str(int(now))
            headers[self.scheme.timestamp_header] = timestamp
        delivery_id = delivery_id or _random.token_hex(16)
        for name in self._id_headers:
            headers[name] = delivery_id
        headers[self.scheme.header] = self.scheme.sign(
            key, body, timestamp=timestamp, id=delivery_id
        )
        return headers


def build(settings: SourceSettings) -> HmacSource:
    """Build a generic HMAC source; :class:`ConfigError` when a setting is wrong."""
    key = f"sources.{settings.name}"
    check_options(settings, OPTIONS)
    secrets = require_secrets(settings)
    if not settings.header or not settings.header.strip():
        raise ConfigError(
            "provider 'hmac' needs the name of the header that carries the signature",
            key=f"{key}.header",
            fix='add header = "X-Signature" (the name your sender uses)',
        )
    if settings.algorithm not in ALGORITHMS:
        raise ConfigError(
            f"unknown algorithm {settings.algorithm!r}",
            key=f"{key}.algorithm",
            fix=f"use one of: {', '.join(ALGORITHMS)}",
        )
    if settings.encoding not in ENCODINGS:
        raise ConfigError(
            f"unknown encoding {settings.encoding!r}",
            key=f"{key}.encoding",
            fix=f"use one of: {', '.join(ENCODINGS)}",
        )
    if any(char.isspace() for char in settings.prefix):
        raise ConfigError(
            f"prefix {settings.prefix!r} contains a space",
            key=f"{key}.prefix",
            fix='give only the text before the signature, like "sha256="',
        )
    template = settings.signed_content or DEFAULT_TEMPLATE
    try:
        parts = parse_template(template)
    except ValueError as exc:
        raise ConfigError(
            str(exc), key=f"{key}.signed_content", fix='write it like "{timestamp}.{body}"'
        ) from None
    if "timestamp" in parts and not settings.timestamp_header:
        raise ConfigError(
            "signed_content uses {timestamp} but no timestamp_header is set",
            key=f"{key}.timestamp_header",
            fix='add timestamp_header = "X-Timestamp" (the name your sender uses)',
        )

    extraction = build_extraction(settings, dedup=None, type="body:type")
    id_header = _id_header(settings, extraction, key)
    if "id" in parts and id_header is None:
        raise ConfigError(
            "signed_content uses {id} but no header carries the delivery id",
            key=f"{key}.dedup_key",
            fix='set dedup_key = "header:X-Delivery-Id" (the name your sender uses)',
        )
    scheme = HmacScheme(
        header=settings.header,
        algorithm=settings.algorithm,
        encoding=settings.encoding,
        prefix=settings.prefix,
        template=template,
        timestamp_header=settings.timestamp_header,
        id_header=id_header,
    )
    return HmacSource(
        settings.name,
        extraction,
        scheme=scheme,
        secrets=secrets,
        tolerance=check_tolerance(settings),
    )


def _id_header(settings: SourceSettings, extraction: Extraction, key: str) -> str | None:
    option = settings.options.get("id_header")
    if option is not None:
        if not isinstance(option, str):
            raise ConfigError(
                "id_header must be a header name",
                key=f"{key}.id_header",
                fix='write it like id_header = "X-Delivery-Id"',
            )
        return parse_spec(f"header:{option}", key=f"{key}.id_header").value
    if extraction.dedup is not None and extraction.dedup.kind == "header":
        return extraction.dedup.value
    return None


PROVIDER = ProviderSpec(
    "hmac",
    "generic HMAC (sha1/sha256/sha512, hex/base64): header, prefix, signed content configured",
    build,
    info=ProviderInfo(
        scheme="HMAC (sha1/sha256/sha512), hex or base64, over the body or a configured "
        "template like {timestamp}.{body}",
        headers="configured: header, timestamp_header, the dedup_key header",
        dedup_key="dedup_key setting (header: or body:), else a body hash",
        ordering_key="ordering_key setting",
        retries="the sender's",
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("example-hmac-secret",),
    "header": "X-Signature",
    "prefix": "sha256=",
    "timestamp_header": "X-Timestamp",
    "signed_content": "{timestamp}.{body}",
    "dedup_key": "header:X-Delivery-Id",
}
"""Settings the generic provider tests build this provider with."""
