"""Provider ``twitch``: Twitch EventSub over the webhook transport.

Twitch signs ``{Twitch-Eventsub-Message-Id}{Twitch-Eventsub-Message-Timestamp}{raw body}``
with HMAC-SHA256 keyed by the secret given when the subscription was created, and
sends ``Twitch-Eventsub-Message-Signature: sha256=<hex>``. Twitch asks receivers to
refuse messages older than 10 minutes; the source's tolerance (5 minutes by
default) is checked both ways. Checked against Twitch's "Handling webhook events"
page (verifying the event message, responding to a challenge request, revocation).

- Handshake: ``Twitch-Eventsub-Message-Type: webhook_callback_verification`` (a signed
  POST) is answered ``200`` ``text/plain`` with the body's ``challenge``.
- ``revocation`` messages are stored as events of type ``revocation`` (the body's
  ``subscription.status`` says why: ``authorization_revoked``, ``user_removed``,
  ``notification_failures_exceeded``...), so a handler can resubscribe or alert.
- Dedup key: ``Twitch-Eventsub-Message-Id`` (the same when Twitch resends a message).
- Type: ``subscription.type`` (``channel.follow``...) of a notification.
- Ordering key: ``event.broadcaster_user_id``. Occurred at: the message timestamp.
"""

from __future__ import annotations

import json
import secrets as _random
import uuid
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Handshake,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._computed import Computed, node_at, text_at
from hookwise.providers._extract import parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.signatures import twitch
from hookwise.signatures.twitch import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TYPE_HEADER

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "TwitchSource", "build"]

RETRY_HEADER = "twitch-eventsub-message-retry"
SUBSCRIPTION_TYPE_HEADER = "twitch-eventsub-subscription-type"
SUBSCRIPTION_VERSION_HEADER = "twitch-eventsub-subscription-version"

NOTIFICATION = "notification"
VERIFICATION = "webhook_callback_verification"
REVOCATION = "revocation"

SECRET_LENGTHS = range(10, 101)
"""Twitch accepts subscription secrets of 10 to 100 ASCII characters."""


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    if headers.get(TYPE_HEADER, "").strip() == REVOCATION:
        return REVOCATION
    return text_at(document, "subscription.type")


def _occurred_at(document: object, headers: Mapping[str, str]) -> float | None:
    try:
        return twitch.parse_time(headers.get(TIMESTAMP_HEADER))
    except VerificationError:
        return None


COMPUTED = Computed(type=_type, occurred_at=_occurred_at)


class TwitchSource(Source):
    """A source for EventSub subscriptions created with these secrets.

    >>> source = build(SourceSettings(name="twitch", provider="twitch",
    ...                               secrets=("twitch_secret_123",)))
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "twitch"

    def __init__(
        self, name: str, extraction: Extraction, *, secrets: tuple[str, ...], tolerance: float
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = twitch.Verifier(self._keys)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(headers, body, now=now, tolerance=self._tolerance)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """The challenge of a ``webhook_callback_verification``, as plain text."""
        if request.headers.get(TYPE_HEADER, "").strip() != VERIFICATION:
            return None
        challenge = node_at(parse_body(request.body), "challenge")
        if not isinstance(challenge, str) or not challenge.strip():
            raise VerificationError(
                "bad_token", "the webhook_callback_verification has no challenge to answer"
            )
        return Handshake(body=challenge.encode("utf-8"), content_type="text/plain; charset=utf-8")

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return COMPUTED.describe(self.extraction, parse_body(body), body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        if isinstance(error, VerificationError) and error.reason == "no_matching_signature":
            document = parse_body(request.body)
            subscription = (text_at(document, "subscription.id") or "?")[:64]
            kind = (text_at(document, "subscription.type") or "?")[:64]
            hints.append(
                f"Twitch signs each subscription's messages with the secret given when the "
                f"subscription was created: subscription {subscription} ({kind}) was made "
                f"with none of the {len(self._keys)} configured secret(s); add its secret, "
                "or recreate the subscription with one of them"
            )
        return hints

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """The headers Twitch sends. The message type follows the body: ``notification``
        with an ``event``, ``webhook_callback_verification`` with a ``challenge``, else
        ``revocation``."""
        key = pick_secret(self._keys, secret_index)
        msg_id = delivery_id or str(uuid.uuid4())
        timestamp = twitch.format_time(now)
        document = parse_body(body)
        if node_at(document, "event") is not None:
            message_type = NOTIFICATION
        elif node_at(document, "challenge") is not None:
            message_type = VERIFICATION
        else:
            message_type = REVOCATION
        headers = {
            "content-type": "application/json",
            ID_HEADER: msg_id,
            RETRY_HEADER: "0",
            TYPE_HEADER: message_type,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: twitch.sign(key, msg_id, timestamp, body),
        }
        for name, path in (
            (SUBSCRIPTION_TYPE_HEADER, "subscription.type"),
            (SUBSCRIPTION_VERSION_HEADER, "subscription.version"),
        ):
            value = text_at(document, path)
            if value is not None:
                headers[name] = value
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now, self.public_url or "https://hooks.example.com/hooks/twitch")


def build(settings: SourceSettings) -> TwitchSource:
    """Build a Twitch EventSub source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    for position, secret in enumerate(secrets, start=1):
        if len(secret) not in SECRET_LENGTHS or not secret.isascii():
            raise ConfigError(
                f"secret number {position} is {len(secret)} characters long; Twitch "
                "subscription secrets are 10 to 100 ASCII characters",
                key=f"sources.{settings.name}.secrets",
                fix="use the secret given when creating the EventSub subscription",
            )
    extraction = build_extraction(
        settings,
        dedup=f"header:{ID_HEADER}",
        type=None,
        ordering_key="body:event.broadcaster_user_id",
    )
    return TwitchSource(
        settings.name, extraction, secrets=secrets, tolerance=check_tolerance(settings)
    )


# Samples: the shapes Twitch sends, with fresh ids and times.


def _samples(now: float, callback: str) -> dict[str, bytes]:
    broadcaster = str(10_000_000 + _random.randbelow(900_000_000))
    login = "acme_live"
    created = twitch.format_time(now - 86_400)
    at = twitch.format_time(now)

    def subscription(kind: str, version: str, status: str = "enabled") -> dict[str, object]:
        condition: dict[str, str] = {"broadcaster_user_id": broadcaster}
        if kind == "channel.follow":
            condition["moderator_user_id"] = broadcaster
        return {
            "id": str(uuid.uuid4()),
            "status": status,
            "type": kind,
            "version": version,
            "cost": 0,
            "condition": condition,
            "transport": {"method": "webhook", "callback": callback},
            "created_at": created,
        }

    def viewer() -> dict[str, str]:
        user_id = str(10_000_000 + _random.randbelow(900_000_000))
        return {
            "user_id": user_id,
            "user_login": f"viewer{user_id[-4:]}",
            "user_name": f"Viewer{user_id[-4:]}",
        }

    channel = {
        "broadcaster_user_id": broadcaster,
        "broadcaster_user_login": login,
        "broadcaster_user_name": "Acme_Live",
    }

    def message(document: dict[str, object]) -> bytes:
        return json.dumps(document, separators=(",", ":")).encode()

    return {
        "channel.follow": message(
            {
                "subscription": subscription("channel.follow", "2"),
                "event": {**viewer(), **channel, "followed_at": at},
            }
        ),
        "stream.online": message(
            {
                "subscription": subscription("stream.online", "1"),
                "event": {
                    "id": str(_random.randbelow(10**11)),
                    **channel,
                    "type": "live",
                    "started_at": at,
                },
            }
        ),
        "channel.subscribe": message(
            {
                "subscription": subscription("channel.subscribe", "1"),
                "event": {**viewer(), **channel, "tier": "1000", "is_gift": False},
            }
        ),
        "channel.cheer": message(
            {
                "subscription": subscription("channel.cheer", "1"),
                "event": {
                    "is_anonymous": False,
                    **viewer(),
                    **channel,
                    "message": "Cheer100 great stream!",
                    "bits": 100,
                },
            }
        ),
        REVOCATION: message(
            {"subscription": subscription("channel.follow", "2", status="authorization_revoked")}
        ),
    }


PROVIDER = ProviderSpec(
    "twitch",
    "Twitch EventSub (webhook transport): Twitch-Eventsub-Message-Signature (sha256=) over "
    "{id}{timestamp}{body}; callback verification",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex (sha256=) of {message id}{message timestamp}{body}; "
        "±tolerance (Twitch: refuse older than 10 min)",
        headers="Twitch-Eventsub-Message-Id, -Timestamp (RFC 3339), -Signature, -Type",
        dedup_key="Twitch-Eventsub-Message-Id header",
        ordering_key="event.broadcaster_user_id",
        handshake="webhook_callback_verification (signed POST): 200 text/plain with the "
        "challenge; revocation messages are stored as type revocation",
        retries="resent until answered 2xx (at least once); too many failures revoke the "
        "subscription (notification_failures_exceeded)",
        credential="the secret given when creating the subscription (10-100 characters)",
        signed_headers=(ID_HEADER, TIMESTAMP_HEADER),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("twitch_secret_123",)}
"""Settings the generic provider tests build this provider with."""
