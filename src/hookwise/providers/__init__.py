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
import logging
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

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
from hookwise.store._base import Ordering

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
    "source_warnings",
]

log = logging.getLogger("hookwise.providers")

_PROBE_TIME = 1_700_000_000.0
"""The time the provider's sample events are made for when probing what they give."""


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
    source.ordering = _ordering(settings, source)
    return source


def source_warnings(source: Source) -> list[str]:
    """What is worth saying at start-up about a built source: settings that work, but
    not as well as they could.

    >>> source_warnings(build_source(SourceSettings(name="acme", provider="hmac",
    ...     header="X-Signature", secrets=("s3cret",), ordering="latest",
    ...     ordering_key="body:order.id")))
    ['ordering = "latest" compares the times events happened, ...']
    """
    ordering = source.ordering
    if ordering is None or _gives(source, "occurred_at"):
        return []
    found = []
    fix = 'set occurred_at = "body:updated_at" (where the time of the event is)'
    if ordering.policy == "latest":
        found.append(
            'ordering = "latest" compares the times events happened, and this source gives '
            'none: it runs every event in arrival order, like "serial"; '
            f"{fix} so that stale events are skipped"
        )
    elif ordering.policy == "coalesce":
        found.append(
            'ordering = "coalesce" compares the times events happened, and this source gives '
            "none: it takes the last to arrive for the newest and can't tell a stale event "
            f"that comes late; {fix}"
        )
    if ordering.window:
        found.append(
            "reorder_window holds events back to run them in the order they happened, and "
            f"this source gives no time for events: it only delays them; {fix}, or remove "
            "reorder_window"
        )
    return found


def _ordering(settings: SourceSettings, source: Source) -> Ordering | None:
    prefix = f"sources.{settings.name}"
    if settings.ordering == "none":
        if settings.reorder_window:
            raise ConfigError(
                "reorder_window only applies to ordered sources, and this one has "
                'ordering = "none"',
                key=f"{prefix}.reorder_window",
                fix='set ordering = "serial", "latest" or "coalesce", or remove reorder_window',
            )
        return None
    if not _gives(source, "ordering_key"):
        raise ConfigError(
            f"ordering = {settings.ordering!r} orders events per ordering key, and provider "
            f"{settings.provider!r} has no default one",
            key=f"{prefix}.ordering_key",
            fix='add ordering_key = "body:data.object.id" (where the id of the object an event '
            'is about is, in the body or a header), or set ordering = "none"',
        )
    if not settings.reorder_window >= 0:
        raise ConfigError(
            f"reorder_window {settings.reorder_window!r} must be zero or more seconds",
            key=f"{prefix}.reorder_window",
            fix='write it like "5s"',
        )
    return Ordering(settings.ordering, settings.reorder_window)


def _gives(source: Source, field: Literal["ordering_key", "occurred_at"]) -> bool:
    """Whether ``source`` finds ``field`` in events: a rule says where (a setting or the
    provider's default), or the provider computes it, as its sample events then show."""
    if getattr(source.extraction, field) is not None:
        return True
    try:
        samples = source.samples(_PROBE_TIME)
    except Exception:  # a sample that can't be made proves nothing either way
        log.debug("making %s samples failed", source.provider, exc_info=True)
        return False
    return any(
        getattr(source.describe(body, {}, _PROBE_TIME), field) is not None
        for body in samples.values()
    )


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
