"""What every source is: a verifier plus the rules that name, type and order its events."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._extract import (
    NOT_JSON,
    Spec,
    extract,
    lookup,
    parse_body,
    parse_body_fast,
    parse_spec,
    to_timestamp,
)

if TYPE_CHECKING:
    from hookwise.store._base import Ordering

__all__ = [
    "SCHEME_FIELDS",
    "UNKNOWN_TYPE",
    "Description",
    "Extraction",
    "Handshake",
    "Inbound",
    "ProviderInfo",
    "ProviderSpec",
    "SignedRequest",
    "Source",
    "body_digest",
    "build_extraction",
    "check_options",
    "check_tolerance",
    "pick_secret",
    "reject_fields",
    "require_secrets",
]

_T = TypeVar("_T")

UNKNOWN_TYPE = "unknown"
"""The type of an event whose configured type field is missing."""


@dataclass(frozen=True, slots=True)
class Description:
    """The normalized fields of one delivery, read from its headers and body.

    >>> Description(dedup_key="msg_2Lh9", type="invoice.paid", ordering_key="in_1",
    ...             occurred_at=None)
    """

    dedup_key: str
    type: str
    ordering_key: str | None = None
    occurred_at: float | None = None


def body_digest(body: bytes) -> str:
    """The dedup key of last resort: identical bodies are one event.

    >>> body_digest(b"")
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class Extraction:
    """Where a source's dedup key, type, ordering key and time come from.

    >>> rules = Extraction(dedup=parse_spec("header:webhook-id", key="k"),
    ...                    type=parse_spec("body:type", key="k"))
    >>> rules.describe(b'{"type": "ping"}', {"webhook-id": "msg_1"})
    Description(dedup_key='msg_1', type='ping', ordering_key=None, occurred_at=None)

    The body is parsed as JSON only when a rule reads it, and at most once.
    """

    dedup: Spec | None = None
    type: Spec | None = None
    ordering_key: Spec | None = None
    occurred_at: Spec | None = None
    needs_body: bool = field(init=False, repr=False, compare=False)
    _body_paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = (self.dedup, self.type, self.ordering_key, self.occurred_at)
        paths = tuple(spec.path for spec in specs if spec is not None and spec.kind == "body")
        object.__setattr__(self, "needs_body", bool(paths))
        object.__setattr__(self, "_body_paths", paths)

    def describe(self, body: bytes, headers: Mapping[str, str]) -> Description:
        """The fields of one delivery; never raises, falls back instead."""
        document: object = NOT_JSON
        if self.needs_body:
            document, inexact = parse_body_fast(body)
            if inexact and any(isinstance(lookup(p, document), float) for p in self._body_paths):
                document = parse_body(body)  # that float may have been a long integer
        dedup_key = extract(self.dedup, headers, document) if self.dedup else None
        event_type = extract(self.type, headers, document) if self.type else None
        ordering_key = None
        if self.ordering_key is not None:
            ordering_key = extract(self.ordering_key, headers, document)
        occurred_at = None
        if self.occurred_at is not None:
            moment = extract(self.occurred_at, headers, document)
            occurred_at = to_timestamp(moment) if moment is not None else None
        return Description(
            dedup_key=dedup_key or body_digest(body),
            type=event_type or UNKNOWN_TYPE,
            ordering_key=ordering_key,
            occurred_at=occurred_at,
        )


class Inbound:
    """One request as a source sees it: what verification, handshakes and diagnosis read.

    >>> request = Inbound(b'{"type": "ping"}', {"webhook-id": "msg_1"})
    >>> Inbound(b"", {}, method="GET", url="https://hooks.example.com/hooks/meta?hub.mode=x",
    ...         query="hub.mode=x").params["hub.mode"]
    'x'

    ``headers`` has lowercase names and latin-1 decoded values (the bytes as sent).
    ``url`` is the URL the sender used, as far as hookwise can tell: the source's
    ``public_url`` when configured (plus the query), else rebuilt from the ``Host``
    header (and ``X-Forwarded-*`` from trusted proxies). ``client`` is the sender's
    IP address, when known.
    """

    __slots__ = ("_params", "body", "client", "headers", "method", "query", "url")

    def __init__(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        method: str = "POST",
        url: str = "",
        query: str = "",
        client: str | None = None,
    ) -> None:
        self.body = body
        self.headers = headers
        self.method = method
        self.url = url
        self.query = query
        self.client = client
        self._params: dict[str, str] | None = None

    @property
    def params(self) -> Mapping[str, str]:
        """The query string decoded (first value of each name)."""
        if self._params is None:
            params: dict[str, str] = {}
            for name, value in parse_qsl(self.query, keep_blank_values=True):
                params.setdefault(name, value)
            self._params = params
        return self._params

    def replace(
        self,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
        query: str | None = None,
    ) -> Inbound:
        """A copy with some parts changed (diagnosis tries variants this way)."""
        return Inbound(
            self.body if body is None else body,
            self.headers if headers is None else headers,
            method=self.method,
            url=self.url if url is None else url,
            query=self.query if query is None else query,
            client=self.client,
        )

    def __repr__(self) -> str:
        return f"<Inbound {self.method} {self.url or '?'} {len(self.body)} bytes>"


@dataclass(frozen=True, slots=True)
class Handshake:
    """The answer to a provider's handshake (URL validation, challenge, ping). It is
    sent as is and nothing is stored.

    >>> Handshake(body=b"challenge-value")
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, document: object, status: int = 200) -> Handshake:
        import json

        return cls(status, json.dumps(document, separators=(",", ":")).encode(), "application/json")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request a sender would make: what ``hookwise send`` and the tests post."""

    body: bytes
    headers: dict[str, str]
    method: str = "POST"
    query: str = ""


class Source(ABC):
    """One configured intake: verifies deliveries and describes them.

    >>> source = build_source(SourceSettings(name="acme", provider="hmac",
    ...                       header="X-Acme-Signature", secrets=("s3cret",)))
    >>> source.verify(body, headers, now=clock.now())      # raises VerificationError
    >>> source.describe(body, headers, now=clock.now()).dedup_key

    ``headers`` always has lowercase names. A provider implements either
    :meth:`verify` (schemes that read only the body and headers) or
    :meth:`verify_request` (schemes that sign the URL, the method or the query).
    """

    provider: str = ""
    """The provider name this source was built for (``"standard"``, ``"hmac"``...)."""
    insecure: bool = False
    """True when deliveries are not verified at all (provider ``"none"``)."""
    handshake_methods: frozenset[str] = frozenset()
    """Methods other than POST this provider uses for handshakes (e.g. ``{"GET"}``)."""
    needs_prepare: bool = False
    """True when :meth:`prepare` does I/O the receiver must await before verifying."""
    ordering: Ordering | None = None
    """How this source's events are ordered per key and handler; None when they run in
    parallel (``ordering = "none"``). Set by ``build_source``."""

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secret_values: tuple[str, ...] = (),
        secret_headers: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.extraction = extraction
        self.secret_values = secret_values
        """The raw secret strings, so stored headers that repeat one can be redacted."""
        self.secret_headers = secret_headers
        """Lowercase names of headers that carry a secret for this provider."""
        self.public_url: str | None = None
        """The URL senders post to, when the provider signs it (set by ``build_source``)."""
        self.allow_ips: tuple[IPv4Network | IPv6Network, ...] = ()
        """Networks deliveries must come from; empty means any (set by ``build_source``)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} provider={self.provider!r}>"

    has_acknowledgement: bool = False
    """Whether this provider answers stored deliveries its own way (set per class, so
    the receiver asks a class attribute, not a method, on every request)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.has_acknowledgement = cls.acknowledgement is not Source.acknowledgement
        concrete = not getattr(cls.sign_headers, "__isabstractmethod__", False)
        if concrete and cls.verify is Source.verify and cls.verify_request is Source.verify_request:
            raise TypeError(f"{cls.__name__} must implement verify or verify_request")

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        """Return if the delivery is authentic; raise only ``VerificationError`` otherwise."""
        self.verify_request(Inbound(body, headers, url=self.public_url or ""), now)

    def verify_request(self, request: Inbound, now: float) -> None:
        """Like :meth:`verify`, with the whole request (method, URL, query) at hand.
        What the receiver calls."""
        self.verify(request.body, request.headers, now)

    async def prepare(self, request: Inbound) -> None:
        """I/O verification needs first, e.g. fetching (and caching) the certificate a
        request names. Awaited by the receiver only when :attr:`needs_prepare`; may
        raise ``VerificationError``. :meth:`verify_request` itself stays free of I/O."""
        return None

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """The answer to a handshake, or ``None`` when ``request`` is a delivery.

        Called for POST requests after they verified, and for requests with a method
        in :attr:`handshake_methods` without verification (the provider's handshake
        carries its own proof, e.g. a verify token, or none at all).
        """
        return None

    def acknowledgement(self, body: bytes, headers: Mapping[str, str]) -> Handshake | None:
        """The answer the provider needs once a delivery is stored (new or duplicate),
        instead of hookwise's JSON: e.g. Discord's deferred interaction response, or the
        empty ``200`` Slack wants for slash commands. ``None`` for the usual answer."""
        return None

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        """The dedup key, type, ordering key and time of a delivery. Never raises."""
        return self.extraction.describe(body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        """Why ``request`` failed to verify, as far as can be told: hints for a person.

        Never raises, never includes a secret. Providers add their own checks on top
        of the shared ones (see ``hookwise.providers._diagnose``).
        """
        from hookwise.providers._diagnose import common_hints

        return common_hints(self, request, now, error)

    @abstractmethod
    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Headers that make ``body`` a correctly signed delivery to this source.

        Used by tests, the demo, benchmarks and ``hookwise send``; ``delivery_id`` is
        made up when not given. URL-signing providers sign :attr:`public_url`.
        """

    def sign_request(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> SignedRequest:
        """The whole request a sender would make (providers that sign inside the body
        or the query override this; the rest sign headers)."""
        return SignedRequest(
            body,
            self.sign_headers(body, now=now, secret_index=secret_index, delivery_id=delivery_id),
        )

    def samples(self, now: float) -> dict[str, bytes]:
        """Realistic bodies for ``hookwise send``, by event type, with fresh ids and
        times. Providers give several; the default is one ping."""
        import json
        import secrets as random_

        event = {"type": "ping", "id": "evt_" + random_.token_hex(8), "created": int(now)}
        return {"ping": json.dumps(event, separators=(",", ":")).encode()}


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What ``docs/providers.md`` and ``hookwise advise`` know about a provider.

    Each field is a short phrase, as it reads in the table.
    """

    scheme: str
    """How it signs, e.g. "HMAC-SHA256 hex of {t}.{body}"."""
    headers: str
    """The headers that carry the signature and the ids."""
    dedup_key: str
    """Where the delivery id is, e.g. "body id (evt_...)"."""
    ordering_key: str = "none"
    """The default ordering key (the object an event is about)."""
    handshake: str = "none"
    retries: str = "unknown"
    """The provider's own retry policy, which hookwise's defaults assume."""
    credential: str = "the webhook signing secret"
    """What goes in ``secrets`` (a signing secret, a public key, a token...)."""
    signs_body: bool = True
    """Whether the signature covers the body (a token or a signed timestamp may not)."""
    signed_headers: tuple[str, ...] = ()
    """Lowercase names of headers besides the signature whose values it covers (the
    timestamp, the delivery id): changing any of them must fail verification."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as the registry knows it.

    >>> ProviderSpec("none", "no verification (for local experiments only)", build)
    """

    name: str
    description: str
    build: Callable[[SourceSettings], Source]
    info: ProviderInfo | None = None


# Helpers the provider modules share to validate settings the same way.


def require_secrets(settings: SourceSettings) -> tuple[str, ...]:
    """The source's secrets; a :class:`ConfigError` when there are none or one is empty."""
    key = f"sources.{settings.name}.secrets"
    if not settings.secrets:
        raise ConfigError(
            f"provider {settings.provider!r} needs at least one secret",
            key=key,
            fix='add secrets = ["env:MY_WEBHOOK_SECRET"]',
        )
    for position, secret in enumerate(settings.secrets):
        if not secret:
            raise ConfigError(
                f"secret number {position + 1} is empty",
                key=key,
                fix="check that the environment variable it names is set",
            )
    return settings.secrets


def check_tolerance(settings: SourceSettings) -> float:
    """The timestamp tolerance in seconds; a :class:`ConfigError` when negative."""
    if not settings.tolerance >= 0:
        raise ConfigError(
            f"tolerance {settings.tolerance!r} must be zero or more seconds",
            key=f"sources.{settings.name}.tolerance",
            fix='write it like "5m"',
        )
    return settings.tolerance


def reject_fields(settings: SourceSettings, names: Collection[str]) -> None:
    """A :class:`ConfigError` when a setting this provider does not use was changed."""
    defaults = {item.name: item.default for item in fields(SourceSettings)}
    for name in names:
        if getattr(settings, name) != defaults[name]:
            raise ConfigError(
                f"{name} is not used by provider {settings.provider!r}",
                key=f"sources.{settings.name}.{name}",
                fix='remove it, or use provider = "hmac" to configure the scheme yourself',
            )


SCHEME_FIELDS = ("header", "algorithm", "encoding", "prefix", "timestamp_header", "signed_content")
"""The settings that configure a generic HMAC scheme, meaningless to other providers."""


def check_options(settings: SourceSettings, allowed: Collection[str]) -> None:
    """A :class:`ConfigError` for a provider option this provider does not know."""
    for option in settings.options:
        if option not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(
                f"unknown option {option!r} for provider {settings.provider!r}",
                key=f"sources.{settings.name}.{option}",
                fix=f"remove it (options this provider knows: {known})",
            )


def build_extraction(
    settings: SourceSettings,
    *,
    dedup: str | None,
    type: str | None,
    ordering_key: str | None = None,
    occurred_at: str | None = None,
) -> Extraction:
    """The extraction rules: the settings where given, else the provider's defaults.

    >>> build_extraction(settings, dedup="body:id", type="body:type",
    ...                  ordering_key="body:data.object.id", occurred_at="body:created")
    """
    prefix = f"sources.{settings.name}"

    def spec(text: str | None, field_name: str, *, allow_const: bool = False) -> Spec | None:
        if text is None:
            return None
        return parse_spec(text, key=f"{prefix}.{field_name}", allow_const=allow_const)

    def given_or(value: str | None, default: str | None) -> str | None:
        return value if value is not None else default

    return Extraction(
        dedup=spec(settings.dedup_key or dedup, "dedup_key"),
        type=spec(settings.type or type, "type", allow_const=True),
        ordering_key=spec(given_or(settings.ordering_key, ordering_key), "ordering_key"),
        occurred_at=spec(given_or(settings.occurred_at, occurred_at), "occurred_at"),
    )


def pick_secret(values: tuple[_T, ...], index: int) -> _T:
    """The secret at ``index``, or a ``ValueError`` saying how many there are."""
    if not 0 <= index < len(values):
        raise ValueError(f"secret_index {index} is out of range; the source has {len(values)}")
    return values[index]
