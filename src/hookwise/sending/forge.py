"""Signing for ``hookwise send``: the source to sign as, the events to sign, and the
broken requests (a bad signature, a stale timestamp) a receiver must refuse.

A broken request is only worth sending if a correct receiver really refuses it, so
:meth:`Forger.prepare` checks the way it breaks requests against the provider's own
verification first, in this process:

- **bad signature**: one character of the signature is changed (in the first header
  whose change the provider's verification refuses), everything else as sent; for
  providers that sign inside the body (Mailgun, Microsoft Graph's ``clientState``), the
  request is signed with a wrong secret instead.
- **stale**: the request is signed (and its sample made) ``tolerance + 5m`` ago; a
  provider that signs no timestamp can't be made stale, and saying so beats
  sending requests that prove nothing.
"""

from __future__ import annotations

import json
import re
import secrets as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..config import SourceSettings, load_config
from ..durations import format_duration, parse_duration
from ..errors import ConfigError, VerificationError
from ..providers import Inbound, SignedRequest, Source, build_source, provider_spec
from .plan import EventContent, PlannedEvent

__all__ = [
    "SECRET_ENV",
    "STALE_MARGIN",
    "Breakage",
    "EventMaker",
    "Forger",
    "corrupt",
    "resolve_source",
]

SECRET_ENV = "HOOKWISE_SEND_SECRET"  # noqa: S105 - the variable's name, not a secret
STALE_MARGIN = 300.0
"""How far beyond the source's tolerance a stale request's timestamp is: far enough
that a receiver with a somewhat wider tolerance still refuses it."""

_NOT_SIGNATURES = frozenset({"content-type", "content-length", "user-agent"})
_TIME_REASONS = frozenset({"timestamp_too_old", "timestamp_too_new", "replayed_token"})
_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{16,}")
_HEX = "0123456789abcdef"
_ALPHABETS = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


# -- the source to sign as ----------------------------------------------------------------


def resolve_source(
    provider: str,
    *,
    config: Path | None = None,
    secret: str | None = None,
    options: Mapping[str, str] | None = None,
) -> tuple[SourceSettings, Source]:
    """The settings and source ``send`` signs as: with ``config``, the configured source
    named ``provider`` (``secret``, when given, replaces its secrets); otherwise a
    source of provider ``provider`` built from ``secret`` and ``options`` (source
    settings such as ``header``, ``tolerance``, ``public_url``, or provider options).

    >>> settings, source = resolve_source("stripe", secret="whsec_...")
    >>> source.provider
    'stripe'
    """
    if config is not None:
        configured = load_config(config).sources.get(provider)
        if configured is not None:
            if secret:
                configured = replace(configured, secrets=(secret,))
            return configured, build_source(configured)
    if provider != "none" and not secret:
        provider_spec(provider)  # an unknown provider is the first thing to say
        raise ConfigError(
            f"no secret to sign {provider!r} requests with",
            fix=f"pass --secret S, or export {SECRET_ENV}=..."
            + (", or name a source of the config given with -c" if config else ""),
        )
    known = {f.name for f in fields(SourceSettings)} - {"name", "provider", "secrets", "options"}
    chosen: dict[str, Any] = {}
    rest: dict[str, object] = {}
    for name, value in (options or {}).items():
        if name == "tolerance":
            try:
                chosen[name] = parse_duration(value)
            except ValueError as exc:
                raise ConfigError(str(exc), fix="pass --option tolerance=5m") from None
        elif name in known:
            chosen[name] = value
        else:
            rest[name] = value
    settings = SourceSettings(
        name="send",
        provider=provider,
        secrets=(secret,) if secret and provider != "none" else (),
        options=rest,
        **chosen,
    )
    try:
        return settings, build_source(settings)
    except ConfigError as exc:
        setting = (exc.key or "").removeprefix("sources.send.")
        hint = "pass --secret S" if setting == "secrets" else f"pass --option {setting}=VALUE"
        raise ConfigError(exc.problem, fix=hint) from None


# -- the events ---------------------------------------------------------------------------


class EventMaker:
    """Makes the content of each planned event: the provider's sample types in turn
    (or only ``event_type``), fresh ids and times, or a fixed ``body``.

    >>> maker = EventMaker(source, stale_by=600)
    >>> maker(1, False).type in maker.types
    True

    A stale event's sample is made as of its signing time, ``stale_by`` seconds ago
    (a provider may check a time inside the body too).
    """

    def __init__(
        self,
        source: Source,
        *,
        event_type: str | None = None,
        body: bytes | None = None,
        delivery_id: str | None = None,
        stale_by: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.sample_types = tuple(source.samples(clock()))
        self.types = (event_type,) if event_type is not None else self.sample_types
        self.body = body
        self.delivery_id = delivery_id
        self.stale_by = stale_by
        self.clock = clock

    def __call__(self, number: int, stale: bool) -> EventContent:
        at = self.clock() - (self.stale_by if stale else 0.0)
        chosen = self.types[(number - 1) % len(self.types)]
        delivery_id = self.delivery_id or "msg_" + _random.token_hex(12)
        if self.body is not None:
            return EventContent(_type_of(self.body) or chosen, self.body, delivery_id)
        if chosen in self.sample_types:
            return EventContent(chosen, self.source.samples(at)[chosen], delivery_id)
        return EventContent(chosen, _generic_body(chosen, number, at), delivery_id)


def _type_of(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    kind = document.get("type") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) and kind else None


def _generic_body(event_type: str, number: int, at: float) -> bytes:
    document = {
        "id": "evt_" + _random.token_hex(8),
        "type": event_type,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
        "data": {"message": "hello from hookwise send", "n": number},
    }
    return json.dumps(document, separators=(",", ":")).encode()


# -- signing, forging ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breakage:
    """How broken requests are made, once checked against the provider's own
    verification; ``reason`` is what it said (``no_matching_signature``...).

    >>> Breakage("one character of stripe-signature changed", "no_matching_signature")
    """

    how: str
    reason: str


class Forger:
    """Signs each planned request when it is sent: as the provider does, or broken.

    >>> forger = Forger(settings, source, "http://127.0.0.1:8000/hooks/stripe")
    >>> await forger.prepare(maker, bad_signature=True, stale=False)
    >>> forger.sign(event, now=time.time())

    Every copy of an event is signed as it is sent: same body, same delivery id, the
    current time, as providers sign their retries (schemes without a timestamp give
    byte-identical copies). A source without ``public_url`` gets ``url`` (without its
    query) as one: URL-signing providers sign the URL the request goes to.
    """

    def __init__(
        self,
        settings: SourceSettings,
        source: Source,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.source = source
        self.clock = clock
        self.url, _, self.url_query = url.partition("?")
        if source.public_url is None:
            source.public_url = self.url
        self.stale_by = settings.tolerance + STALE_MARGIN
        self.bad_signature: Breakage | None = None
        self.stale: Breakage | None = None
        self._header: str | None = None
        self._wrong: Source | None = None

    # The checks, once per run.

    async def prepare(
        self, make: Callable[[int, bool], EventContent], *, bad_signature: bool, stale: bool
    ) -> None:
        """Find and check how to break requests, for the kinds the plan has; a
        :class:`ConfigError` when this provider can't be broken that way."""
        if not (bad_signature or stale):
            return
        what = "--bad-signature" if bad_signature else "--stale"
        if self.source.insecure:
            raise ConfigError(
                f"provider {self.source.provider!r} verifies nothing, so {what} has nothing "
                "to break: a receiver accepts every request of it",
                fix="send as a provider that signs (e.g. standard, hmac)",
            )
        now = self.clock()
        content = make(0, False)
        good = self._sign_good(content, now)
        error = await self._refusal(good, now)
        if error is not None:
            raise ConfigError(
                f"a request signed as {self.source.provider!r} here does not pass the "
                f"provider's own verification ({error.reason}: {error.detail}), so a broken "
                "one could not be told from a good one",
                fix="check the secret and the options, or send without --bad-signature and --stale",
            )
        if bad_signature:
            self.bad_signature = await self._find_bad_signature(good, content, now)
        if stale:
            self.stale = await self._check_stale(make(0, True), now)

    async def _find_bad_signature(
        self, good: SignedRequest, content: EventContent, now: float
    ) -> Breakage:
        for name in _signature_candidates(good.headers, self._signed_headers()):
            forged = _with_header(good, name, corrupt(_header(good.headers, name)))
            error = await self._refusal(forged, now)
            if error is not None and error.reason not in _TIME_REASONS:
                self._header = name
                return Breakage(f"one character of {name} changed", error.reason)
        wrong = _wrong_source(self.settings, self.source)
        if wrong is not None:
            forged = wrong.sign_request(content.body, now=now, delivery_id=content.delivery_id)
            error = await self._refusal(forged, now)
            if error is not None and error.reason not in _TIME_REASONS:
                self._wrong = wrong
                return Breakage("signed with a wrong secret", error.reason)
        raise ConfigError(
            f"found no way to make a bad signature that provider {self.source.provider!r} "
            "refuses: neither a changed signature header nor a wrong secret failed its "
            "verification",
            fix="send without --bad-signature, or forge requests by hand (--secret WRONG)",
        )

    async def _check_stale(self, content: EventContent, now: float) -> Breakage:
        signed = self.source.sign_request(
            content.body, now=now - self.stale_by, delivery_id=content.delivery_id
        )
        error = await self._refusal(signed, now)
        if error is None:
            raise ConfigError(
                f"provider {self.source.provider!r} signs no timestamp, so --stale has no "
                f"effect on it: a request signed {format_duration(self.stale_by)} ago "
                "verifies like a fresh one (receivers catch its replays by the delivery id)",
                fix="drop --stale (test replays with --duplicates instead)",
            )
        return Breakage(f"signed {format_duration(self.stale_by)} ago", error.reason)

    async def _refusal(self, signed: SignedRequest, now: float) -> VerificationError | None:
        """What the provider's verification says about ``signed``: ``None`` when it passes."""
        request = self.inbound(signed)
        try:
            if self.source.needs_prepare:
                await self.source.prepare(request)
            self.source.verify_request(request, now)
        except VerificationError as exc:
            return exc
        return None

    def inbound(self, signed: SignedRequest) -> Inbound:
        """``signed`` as a receiver at :attr:`url` sees it (the URL the provider signs)."""
        query = "&".join(part for part in (self.url_query, signed.query) if part)
        base = self.source.public_url or self.url
        return Inbound(
            signed.body,
            {name.lower(): value for name, value in signed.headers.items()},
            method=signed.method,
            url=base + ("?" + query if query else ""),
            query=query,
        )

    def _signed_headers(self) -> frozenset[str]:
        info = provider_spec(self.source.provider).info
        return frozenset(info.signed_headers) if info is not None else frozenset()

    # Signing, once per request.

    def sign(self, event: PlannedEvent, *, now: float) -> SignedRequest:
        """The request for one copy of ``event``, signed at ``now`` (or ``stale_by``
        earlier, for a stale event), broken as prepared for a bad-signature event.
        ``ValueError`` when the provider can't sign the body."""
        at = now - self.stale_by if event.stale else now
        if event.bad_signature and self._wrong is not None:
            return self._wrong.sign_request(event.body, now=at, delivery_id=event.delivery_id)
        signed = self.source.sign_request(event.body, now=at, delivery_id=event.delivery_id)
        if event.bad_signature:
            if self._header is None:
                raise RuntimeError("Forger.prepare(bad_signature=True) was not awaited")
            value = _header(signed.headers, self._header)
            signed = _with_header(signed, self._header, corrupt(value))
        return signed

    def check_signable(self, content: EventContent) -> None:
        """A :class:`ConfigError` when the provider can't sign ``content``'s body."""
        self._sign_good(content, self.clock())

    def _sign_good(self, content: EventContent, now: float) -> SignedRequest:
        try:
            return self.source.sign_request(content.body, now=now, delivery_id=content.delivery_id)
        except ValueError as exc:
            raise ConfigError(
                f"can't sign this body as {self.source.provider!r}: {exc}",
                fix="send one of the provider's samples (--list-events), or a body in the "
                "provider's format",
            ) from None


def corrupt(value: str) -> str:
    """``value`` with one character changed in each long token (hex, base64, ids):
    still well formed, no longer the right signature.

    >>> corrupt("sha256=0123456789abcdef0123456789abcdef")
    'sha256=0123456789abcdef1123456789abcdef'
    """
    changed = _TOKEN.sub(lambda match: _flip(match.group()), value)
    if changed != value:
        return changed
    return _flip(value)


def _flip(token: str) -> str:
    """``token`` with its middle letter or digit replaced by the next one of the same
    kind (hex digits stay hex digits)."""
    positions = [i for i, c in enumerate(token) if c.isascii() and c.isalnum()]
    if not positions:
        return token + "0"
    index = min(positions, key=lambda i: abs(i - len(token) // 2))
    char = token[index]
    if set(token.lower()) <= set(_HEX) or set(token) <= set(_HEX.upper()):
        alphabet = _HEX.upper() if char.isupper() else _HEX
    else:
        alphabet = next(a for a in _ALPHABETS if char in a)
    replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return token[:index] + replacement + token[index + 1 :]


def _signature_candidates(headers: Mapping[str, str], signed: frozenset[str]) -> list[str]:
    """Header names that may carry a signature or credential, likeliest first."""

    def rank(name: str) -> tuple[int, str]:
        lower = name.lower()
        if "signature" in lower:
            return 0, lower
        if "sig" in lower:
            return 1, lower
        if any(word in lower for word in ("authorization", "token", "hmac", "hash", "auth")):
            return 2, lower
        return 3, lower

    names = [n for n in headers if n.lower() not in _NOT_SIGNATURES | signed]
    return sorted(names, key=rank)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise KeyError(name)


def _with_header(signed: SignedRequest, name: str, value: str) -> SignedRequest:
    headers = {key: val for key, val in signed.headers.items() if key.lower() != name.lower()}
    headers[name] = value
    return SignedRequest(signed.body, headers, method=signed.method, query=signed.query)


def _wrong_source(settings: SourceSettings, source: Source) -> Source | None:
    """A source like ``settings`` but with every secret and signing key changed, or
    ``None`` when the provider refuses such settings."""
    options = dict(settings.options)
    keys = options.get("signing_key")
    if isinstance(keys, str):
        options["signing_key"] = _wrong_secret(keys)
    elif isinstance(keys, list | tuple):
        options["signing_key"] = [_wrong_secret(k) if isinstance(k, str) else k for k in keys]
    wrong = replace(
        settings, secrets=tuple(_wrong_secret(s) for s in settings.secrets), options=options
    )
    try:
        built = build_source(wrong)
    except (ConfigError, ValueError):
        return None
    built.public_url = source.public_url
    return built


def _wrong_secret(secret: str) -> str:
    if "-----BEGIN" in secret:
        return _other_private_key(secret)
    return corrupt(secret)


def _other_private_key(pem: str) -> str:
    """A new private key of the same kind as ``pem`` (RSA, EC or Ed25519), or ``pem``
    itself when it can't be read."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return pem
    other: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if isinstance(key, rsa.RSAPrivateKey):
        other = rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        other = ec.generate_private_key(key.curve)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        other = ed25519.Ed25519PrivateKey.generate()
    else:
        return pem
    return other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
