"""Provider ``mailgun``: Mailgun webhooks, signed inside the body.

Mailgun signs ``{timestamp}{token}`` with HMAC-SHA256 keyed by the HTTP webhook
signing key and puts the three values in the body: the ``signature`` object of JSON
webhooks, or the ``timestamp``, ``token`` and ``signature`` fields of form-encoded
posts (legacy webhooks, routes; ``multipart/form-data`` too). **The body is not
signed.** Checked against Mailgun's "Securing webhooks" and "Automatic retries" pages.

What keeps a captured signature from vouching for a forged event:

- the timestamp, checked both ways against the source's tolerance (5 minutes by
  default; Mailgun gives no number);
- a token replay cache: a token already seen within the tolerance for *another*
  event is refused (``replayed_token``). It is in memory, per source and per
  process (each receiver process keeps its own), bounded by the ``replay_cache_size``
  option (default 20,000 tokens; the oldest are forgotten first).

Mailgun's docs do not say whether a retry is signed afresh; reports from others are
that retries resend the original signature block. So a token seen again *with the
same event* (the same ``event-data.id``; for form posts, the same body) is accepted:
it is a retry, and the dedup key makes it run nothing twice. The flip side: a retry
resent with its first timestamp is refused once it is older than the tolerance.
Mailgun retries after 5, 10 and 15 minutes, 1, 2 and 4 hours; a tolerance of
``"8h30m"`` accepts them all, at the price of a longer window for a captured
signature. Answering ``406`` would stop Mailgun's retries; hookwise answers ``401``.

- Dedup key: ``event-data.id``; form posts: a hash of the body.
- Type: ``event-data.event`` (``delivered``, ``failed``...); form posts: the ``event``
  field, or ``inbound`` for a route's forwarded message (it has none).
- Ordering key: the message's ``Message-Id`` (``event-data.message.headers.message-id``).
- Occurred at: ``event-data.timestamp``; form posts: ``timestamp``.
"""

from __future__ import annotations

import json
import secrets as _random
import string
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    SignedRequest,
    Source,
    body_digest,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._computed import Computed, first_text, node_at, text_at
from hookwise.signatures import mailgun

__all__ = [
    "DEFAULT_REPLAY_CACHE_SIZE",
    "EXAMPLE_SETTINGS",
    "OPTIONS",
    "PROVIDER",
    "MailgunSource",
    "TokenCache",
    "build",
]

OPTIONS = ("replay_cache_size",)
"""Provider options: ``replay_cache_size``, how many recent tokens the source remembers."""

DEFAULT_REPLAY_CACHE_SIZE = 20_000
INBOUND = "inbound"
"""The type of a route's forwarded message (a form post without an ``event``)."""


class TokenCache:
    """The tokens of recently verified deliveries and the delivery each vouched for.

    >>> cache = TokenCache(2)
    >>> cache.remember("tok", "event-1", expires=1300, now=1000)
    True
    >>> cache.remember("tok", "event-1", expires=1300, now=1010)   # a retry
    True
    >>> cache.remember("tok", "event-2", expires=1300, now=1020)   # a forged event
    False

    Bounded: past ``size`` tokens, the least recently seen is forgotten. Tokens past
    their expiry (the signature's timestamp plus the tolerance, when the timestamp
    check refuses them anyway) are dropped as they reach the front.
    """

    __slots__ = ("_entries", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, token: str, identity: str, *, expires: float, now: float) -> bool:
        """Record that ``token`` vouched for ``identity``; ``False`` when it vouched for
        another one before (nothing is recorded then)."""
        entries = self._entries
        while entries:
            _, (_, first_expiry) = next(iter(entries.items()))
            if first_expiry >= now:
                break
            entries.popitem(last=False)
        seen = entries.get(token)
        if seen is not None:
            if seen[0] != identity:
                return False
            expires = max(expires, seen[1])
        entries[token] = (identity, expires)
        entries.move_to_end(token)
        while len(entries) > self.size:
            entries.popitem(last=False)
        return True


def _dedup(document: object, headers: Mapping[str, str]) -> str | None:
    return text_at(document, "event-data.id")


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    found = first_text(document, "event-data.event")
    if found is not None:
        return found
    if isinstance(node_at(document, "signature"), str):  # a form post
        return text_at(document, "event") or INBOUND
    return None


def _ordering_key(document: object, headers: Mapping[str, str]) -> str | None:
    return first_text(document, "event-data.message.headers.message-id", "Message-Id", "message-id")


def _occurred_at(document: object, headers: Mapping[str, str]) -> float | None:
    moment = node_at(document, "event-data.timestamp")
    if moment is None and isinstance(node_at(document, "signature"), str):
        moment = node_at(document, "timestamp")
    if isinstance(moment, bool):
        return None
    if isinstance(moment, int | float):
        return float(moment)
    if isinstance(moment, str):
        try:
            return float(moment)
        except ValueError:
            return None
    return None


COMPUTED = Computed(dedup=_dedup, type=_type, ordering_key=_ordering_key, occurred_at=_occurred_at)


class MailgunSource(Source):
    """A source for one Mailgun account's (or domain's) webhooks.

    >>> source = build(SourceSettings(name="mail", provider="mailgun",
    ...                               secrets=("key-mailgun-signing",)))
    >>> request = source.sign_request(body, now=1700000000)
    >>> source.verify(request.body, request.headers, now=1700000000)
    """

    provider = "mailgun"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secrets: tuple[str, ...],
        tolerance: float,
        replay_cache_size: int,
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = mailgun.Verifier(self._keys)
        self._tolerance = tolerance
        self.tokens = TokenCache(replay_cache_size)
        """The token replay cache (in memory, this process only)."""

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        document = mailgun.parse_document(body, headers.get("content-type"))
        block = mailgun.read_block(document)
        self._verifier.verify(block, now=now, tolerance=self._tolerance)
        token, timestamp = block.token or "", int(block.timestamp or 0)
        identity = text_at(document, "event-data.id") or body_digest(body)
        if not self.tokens.remember(token, identity, expires=timestamp + self._tolerance, now=now):
            raise VerificationError(
                "replayed_token",
                "this signature's token was seen before with another event: a captured "
                "signature in front of a forged body",
            )

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        document = mailgun.parse_document(body, headers.get("content-type"))
        return COMPUTED.describe(self.extraction, document, body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        """The shared clock and API-key checks, and Mailgun's own; never re-verifies (the
        body is not signed, and verifying would record tokens)."""
        from hookwise.providers._diagnose import api_key_hints, clock_hints

        hints = [*clock_hints(error), *api_key_hints(self.secret_values)]
        reason = error.reason if isinstance(error, VerificationError) else ""
        try:
            document = mailgun.parse_document(request.body, request.headers.get("content-type"))
            block = mailgun.read_block(document)
        except Exception:  # a diagnosis never fails
            return tuple(hints)
        if reason == "replayed_token":
            hints.append(
                "the token was seen before with another event: someone sent a captured "
                "Mailgun signature with a different body; nothing was stored"
            )
        elif reason == "missing_field":
            hints.append(
                "the body carries no signature: Mailgun's JSON webhooks have a signature "
                "object (timestamp, token, signature), form posts have those three fields; "
                "was the body changed on its way, or is this not a Mailgun webhook?"
            )
        elif reason == "no_matching_signature":
            hints.append(
                "Mailgun signs with the HTTP webhook signing key (Sending > Webhooks > "
                "HTTP webhook signing key), not the private API key or an SMTP password"
            )
            if block.parent_signature:
                hints.append(
                    "the event is a subaccount's (it carries parent-signature): put the "
                    "subaccount's signing key, or the primary account's, in secrets"
                )
        elif reason == "timestamp_too_old":
            hints.append(
                "Mailgun may resend a failed delivery with its first signature, hours "
                "later (retries after 5, 10, 15 min, 1, 2, 4 h): raise the tolerance "
                '(e.g. "8h30m") to accept late retries'
            )
        return tuple(hints)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Mailgun's signature lives in the body: use :meth:`sign_request`."""
        raise ValueError("Mailgun signs inside the body; use sign_request(), not sign_headers()")

    def sign_request(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> SignedRequest:
        """``body`` with a fresh signature written into it: the ``signature`` object of a
        JSON body, or the fields of a form body. ``delivery_id`` is unused (the event id
        is in the body). ``ValueError`` for a body that is neither."""
        key = pick_secret(self._keys, secret_index)
        timestamp = str(int(now))
        token = _random.token_hex(25)
        block = {
            "token": token,
            "timestamp": timestamp,
            "signature": mailgun.sign(key, timestamp, token),
        }
        if mailgun.is_json(body):
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("a Mailgun JSON body is an object")
            document["signature"] = block
            return SignedRequest(
                json.dumps(document, separators=(",", ":")).encode(),
                {"content-type": "application/json"},
            )
        pairs = [
            (name, value)
            for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            if name not in block
        ]
        return SignedRequest(
            urlencode([*pairs, *block.items()]).encode(),
            {"content-type": "application/x-www-form-urlencoded"},
        )

    def samples(self, now: float) -> dict[str, bytes]:
        samples = _samples(now)
        return {kind: self.sign_request(body, now=now).body for kind, body in samples.items()}


def build(settings: SourceSettings) -> MailgunSource:
    """Build a Mailgun source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    secrets = require_secrets(settings)
    size = settings.options.get("replay_cache_size", DEFAULT_REPLAY_CACHE_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(
            f"replay_cache_size {size!r} must be a whole number of tokens, 1 or more",
            key=f"sources.{settings.name}.replay_cache_size",
            fix=f"write it like replay_cache_size = {DEFAULT_REPLAY_CACHE_SIZE}",
        )
    return MailgunSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        secrets=secrets,
        tolerance=check_tolerance(settings),
        replay_cache_size=size,
    )


# Samples: the shapes Mailgun sends, with fresh ids and times.

_BASE62 = string.ascii_letters + string.digits


def _event_id() -> str:
    return "".join(_random.choice(_BASE62) for _ in range(22))


def _samples(now: float) -> dict[str, bytes]:
    domain = "mg.example.com"
    recipient = "alice@example.org"

    def event(kind: str, **extra: object) -> bytes:
        message_id = f"{int(now) - 60}.{_random.token_hex(8)}@{domain}"
        data: dict[str, object] = {
            "id": _event_id(),
            "timestamp": round(now - _random.randbelow(5000) / 1000, 6),
            "log-level": "info",
            "event": kind,
            "recipient": recipient,
            "recipient-domain": "example.org",
            "message": {
                "headers": {
                    "to": f"Alice <{recipient}>",
                    "message-id": message_id,
                    "from": f"Billing <billing@{domain}>",
                    "subject": "Your invoice for November",
                },
                "attachments": [],
                "size": 4312,
            },
            "tags": ["invoice"],
            "campaigns": [],
            "user-variables": {"invoice_id": f"in_{_random.token_hex(6)}"},
            "flags": {
                "is-routed": False,
                "is-authenticated": True,
                "is-system-test": False,
                "is-test-mode": False,
            },
            **extra,
        }
        document = {
            "signature": {"token": "", "timestamp": "", "signature": ""},
            "event-data": data,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    client = {
        "client-name": "Firefox",
        "client-os": "Linux",
        "client-type": "browser",
        "device-type": "desktop",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    }
    return {
        "delivered": event(
            "delivered",
            envelope={
                "transport": "smtp",
                "sender": f"billing@{domain}",
                "sending-ip": "198.51.100.25",
                "targets": recipient,
            },
            **{
                "delivery-status": {
                    "tls": True,
                    "mx-host": "mx.example.org",
                    "code": 250,
                    "description": "",
                    "attempt-no": 1,
                    "message": "OK",
                    "certificate-verified": True,
                }
            },
        ),
        "opened": event(
            "opened", ip="203.0.113.7", geolocation={"country": "DE"}, **{"client-info": client}
        ),
        "clicked": event(
            "clicked",
            ip="203.0.113.7",
            url="https://example.com/invoices/2024-11",
            **{"client-info": client},
        ),
        "failed": event(
            "failed",
            severity="permanent",
            reason="bounce",
            **{
                "delivery-status": {
                    "code": 550,
                    "message": "5.1.1 The email account that you tried to reach does not exist",
                    "attempt-no": 1,
                    "description": "",
                }
            },
        ),
    }


PROVIDER = ProviderSpec(
    "mailgun",
    "Mailgun: HMAC-SHA256 of {timestamp}{token} carried in the body (the body itself is "
    "not signed); token replay cache",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of {timestamp}{token}, in the body (the body is not signed); "
        "±tolerance; a token reused for another event is refused",
        headers="none: signature{timestamp, token, signature} in the JSON body, or form fields",
        dedup_key="body event-data.id; form posts: a body hash",
        ordering_key="event-data.message.headers.message-id",
        retries="200 = done, 406 = rejected for good; else retried after 5, 10, 15 min, "
        "1, 2, 4 h (8 h in all)",
        credential="the HTTP webhook signing key",
        signs_body=False,
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("key-mailgun-signing",)}
"""Settings the generic provider tests build this provider with."""
