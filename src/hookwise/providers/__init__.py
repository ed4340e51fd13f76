"""Providers: what to verify and where an event's id, type and order are, per sender.

>>> source = build_source(SourceSettings(name="orders", provider="standard",
...                                      secrets=("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)))
>>> source.verify(body, headers, now=clock.now())

Each provider is one module of this package exposing a :class:`ProviderSpec` named
``PROVIDER``; adding a provider means adding its module (modules whose name starts
with ``_`` are shared helpers).
"""

from __future__ import annotations

import importlib
import ipaddress
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    Description,
    Handshake,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    SignedRequest,
    Source,
)

__all__ = [
    "KNOWN_PROVIDERS",
    "PROVIDERS",
    "Description",
    "Handshake",
    "Inbound",
    "ProviderInfo",
    "ProviderSpec",
    "SignedRequest",
    "Source",
    "build_source",
    "provider_spec",
]


def _discover() -> dict[str, ProviderSpec]:
    found: dict[str, ProviderSpec] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "PROVIDER", None)
        if isinstance(spec, ProviderSpec):
            found[spec.name] = spec
    return found


_REGISTRY: dict[str, ProviderSpec] = _discover()

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
    spec = provider_spec(settings.provider, key=f"sources.{settings.name}.provider")
    source = spec.build(settings)
    source.public_url = settings.public_url
    source.allow_ips = tuple(ipaddress.ip_network(net) for net in settings.allow_ips)
    return source


def provider_spec(name: str, *, key: str = "provider") -> ProviderSpec:
    """The registry entry of provider ``name``; a :class:`ConfigError` when unknown."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ConfigError(
            f"unknown provider {name!r}",
            key=key,
            fix=f"use one of: {', '.join(KNOWN_PROVIDERS)}",
        )
    return spec
