"""Providers: what to verify and where an event's id, type and order are, per sender.

>>> source = build_source(SourceSettings(name="orders", provider="standard",
...                                      secrets=("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)))
>>> source.verify(body, headers, now=clock.now())

Each provider is one module exposing a :class:`ProviderSpec` named ``PROVIDER``;
adding a provider means adding its module to ``_REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers import hmac, none, standard
from hookwise.providers._base import Description, ProviderSpec, Source

__all__ = ["KNOWN_PROVIDERS", "PROVIDERS", "Description", "Source", "build_source"]

_REGISTRY: dict[str, ProviderSpec] = {
    spec.name: spec for spec in (hmac.PROVIDER, none.PROVIDER, standard.PROVIDER)
}

KNOWN_PROVIDERS: tuple[str, ...] = tuple(sorted(_REGISTRY))
"""Every provider name ``build_source`` accepts, sorted."""

PROVIDERS: Mapping[str, str] = MappingProxyType(
    {name: _REGISTRY[name].description for name in KNOWN_PROVIDERS}
)
"""Provider name -> one-line description, for ``hookwise init`` and the docs."""


def build_source(settings: SourceSettings) -> Source:
    """The source ``settings`` describe; a :class:`ConfigError` naming the key when wrong.

    >>> build_source(SourceSettings(name="acme", provider="hmac", header="X-Signature",
    ...                             secrets=("s3cret",))).provider
    'hmac'
    """
    spec = _REGISTRY.get(settings.provider)
    if spec is None:
        raise ConfigError(
            f"unknown provider {settings.provider!r}",
            key=f"sources.{settings.name}.provider",
            fix=f"use one of: {', '.join(KNOWN_PROVIDERS)}",
        )
    return spec.build(settings)
