"""Provider ``zoom``: Zoom webhooks signed with the app's Secret Token.

Zoom signs ``v0:{x-zm-request-timestamp}:{raw body}`` with HMAC-SHA256 keyed by the
Secret Token and sends ``x-zm-signature: v0=<hex>``. Zoom's docs ask receivers to
refuse stale timestamps without giving a window; the source's tolerance (5 minutes by
default) is checked both ways. Checked against Zoom's "Using webhooks" page (verify
webhook events, validate your webhook endpoint) and its webhook-sample app.

- Handshake: ``endpoint.url_validation`` (a signed POST, repeated every 72 hours) is
  answered ``200`` JSON ``{"plainToken": p, "encryptedToken": hex HMAC-SHA256(secret, p)}``
  within Zoom's 3 seconds, with the secret that signed the request (rotation).
- Dedup key: Zoom sends no delivery id. The default is
  ``{event}:{event_ts}:{object id}:{digest}``: the event, its time in milliseconds,
  ``payload.object.uuid`` (else ``.id``), and 16 hex digits of the SHA-256 of the
  ``payload`` written canonically (sorted keys, compact). A retry carries the same
  payload and dedups; two events of one kind in the same millisecond about one
  meeting (two participants joining) differ in their payload and stay two events.
  A payload that changes between retries (a fresh ``download_token``) makes a
  duplicate, never a lost event. Without ``event`` or ``event_ts`` the key is a hash
  of the body.
- Type: ``event`` (``meeting.started``...). Ordering key: ``payload.object.uuid``
  (the meeting instance), else ``payload.object.id``. Occurred at: ``event_ts`` (ms).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
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
from hookwise.providers._computed import Computed, first_text, node_at, text_at
from hookwise.providers._extract import parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.signatures._common import HmacKey, constant_time_equal
from hookwise.signatures.hmac import HmacScheme

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "ZoomSource", "build", "dedup_key"]

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
VALIDATION_EVENT = "endpoint.url_validation"

SCHEME = HmacScheme(
    header=SIGNATURE_HEADER,
    prefix="v0=",
    template="v0:{timestamp}:{body}",
    timestamp_header=TIMESTAMP_HEADER,
)


def dedup_key(document: object, headers: Mapping[str, str] | None = None) -> str | None:
    """Zoom's default dedup key (see the module docstring), or ``None`` without
    ``event`` and ``event_ts``.

    >>> dedup_key({"event": "meeting.started", "event_ts": 1700000000123,
    ...            "payload": {"object": {"id": 85746065432}}})
    'meeting.started:1700000000123:85746065432:939ce71d0747fa7f'
    """
    event = text_at(document, "event")
    event_ts = text_at(document, "event_ts")
    if event is None or event_ts is None:
        return None
    object_id = first_text(document, "payload.object.uuid", "payload.object.id") or "-"
    canonical = json.dumps(
        node_at(document, "payload"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{event}:{event_ts}:{object_id}:{digest}"


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    return text_at(document, "event")


def _ordering_key(document: object, headers: Mapping[str, str]) -> str | None:
    return first_text(document, "payload.object.uuid", "payload.object.id")


def _occurred_at(document: object, headers: Mapping[str, str]) -> float | None:
    value = node_at(document, "event_ts")
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1000
    return None


COMPUTED = Computed(
    dedup=dedup_key, type=_type, ordering_key=_ordering_key, occurred_at=_occurred_at
)


class ZoomSource(Source):
    """A source for one Zoom app's webhooks.

    >>> source = build(SourceSettings(name="zoom", provider="zoom",
    ...                               secrets=("zoom_secret_token",)))
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "zoom"

    def __init__(
        self, name: str, extraction: Extraction, *, secrets: tuple[str, ...], tolerance: float
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        SCHEME.verify(self._keys, headers=headers, body=body, now=now, tolerance=self._tolerance)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """Zoom's ``endpoint.url_validation``: the plain token and its HMAC."""
        if VALIDATION_EVENT.encode() not in request.body:
            return None
        document = parse_body(request.body)
        if text_at(document, "event") != VALIDATION_EVENT:
            return None
        plain = node_at(document, "payload.plainToken")
        if not isinstance(plain, str) or not plain:
            raise VerificationError(
                "bad_token", "the endpoint.url_validation request has no payload.plainToken"
            )
        key = self._signing_key(request)
        encrypted = HmacKey(key, "sha256").digest(plain.encode("utf-8", "surrogatepass")).hex()
        return Handshake.json({"plainToken": plain, "encryptedToken": encrypted})

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return COMPUTED.describe(self.extraction, parse_body(body), body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        if not isinstance(error, VerificationError) or error.reason != "no_matching_signature":
            return hints
        authorization = request.headers.get("authorization", "").strip()
        if authorization and authorization in self.secret_values:
            hints.append(
                "a configured secret is the app's Verification Token (Zoom sends it in the "
                "authorization header; it is deprecated): put the Secret Token in secrets"
            )
        if VALIDATION_EVENT.encode() in request.body:
            hints.append(
                "Zoom's URL validation did not verify: Zoom signs it with the app's Secret "
                "Token (Features > Access > Secret Token), not the Client Secret or the "
                "Verification Token; after regenerating the Secret Token, put the new one "
                "in secrets"
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
        """The headers Zoom sends; ``delivery_id`` is unused (Zoom sends none)."""
        key = pick_secret(self._keys, secret_index)
        timestamp = str(int(now))
        return {
            "content-type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: SCHEME.sign(key, body, timestamp=timestamp),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now)

    def _signing_key(self, request: Inbound) -> bytes:
        """The secret that signed a verified request (the first, if none is found)."""
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        for key in self._keys:
            if constant_time_equal(SCHEME.sign(key, request.body, timestamp=timestamp), given):
                return key
        return self._keys[0]


def build(settings: SourceSettings) -> ZoomSource:
    """Build a Zoom source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    return ZoomSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        secrets=secrets,
        tolerance=check_tolerance(settings),
    )


# Samples: the shapes Zoom sends, with fresh ids and times.


def _zoom_id(length: int = 22) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(_random.choice(alphabet) for _ in range(length))


def _samples(now: float) -> dict[str, bytes]:
    from datetime import UTC, datetime

    account, host = _zoom_id(), _zoom_id()
    started = datetime.fromtimestamp(int(now) - 1800, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ended = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def meeting() -> dict[str, object]:
        return {
            "id": 80_000_000_000 + _random.randbelow(9_999_999_999),
            "uuid": base64.b64encode(_random.token_bytes(16)).decode("ascii"),
            "host_id": host,
            "topic": "Weekly planning",
            "type": 2,
            "start_time": started,
            "timezone": "Europe/Berlin",
            "duration": 30,
        }

    def event(name: str, obj: dict[str, object], **extra: object) -> bytes:
        document: dict[str, object] = {
            "event": name,
            "event_ts": int(now * 1000) - _random.randbelow(1000),
            "payload": {"account_id": account, "object": obj},
            **extra,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    ended_meeting = {**meeting(), "end_time": ended}
    joined = {
        **meeting(),
        "participant": {
            "user_id": str(16_000_000 + _random.randbelow(999_999)),
            "user_name": "Ada Lovelace",
            "id": _zoom_id(),
            "participant_uuid": _zoom_id(),
            "join_time": ended,
            "email": "ada@example.com",
            "participant_user_id": _zoom_id(),
        },
    }
    recording_meeting = meeting()
    recording = {
        **recording_meeting,
        "account_id": account,
        "total_size": 529_758,
        "recording_count": 1,
        "share_url": f"https://example.zoom.us/rec/share/{_zoom_id(40)}",
        "recording_files": [
            {
                "id": _random.token_hex(16),
                "meeting_id": recording_meeting["uuid"],
                "recording_start": started,
                "recording_end": ended,
                "file_type": "MP4",
                "file_extension": "MP4",
                "file_size": 529_758,
                "play_url": f"https://example.zoom.us/rec/play/{_zoom_id(40)}",
                "download_url": f"https://example.zoom.us/rec/download/{_zoom_id(40)}",
                "status": "completed",
                "recording_type": "shared_screen_with_speaker_view",
            }
        ],
    }
    return {
        "meeting.started": event("meeting.started", meeting()),
        "meeting.ended": event("meeting.ended", ended_meeting),
        "meeting.participant_joined": event("meeting.participant_joined", joined),
        "recording.completed": event(
            "recording.completed", recording, download_token=_random.token_urlsafe(48)
        ),
    }


PROVIDER = ProviderSpec(
    "zoom",
    "Zoom: x-zm-signature (v0 HMAC-SHA256) over v0:{timestamp}:{body}; URL validation",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of v0:{timestamp}:{body} (Secret Token); ±tolerance",
        headers="x-zm-signature (v0=...), x-zm-request-timestamp",
        dedup_key="none sent: event + event_ts + payload.object uuid/id + payload digest",
        ordering_key="payload.object.uuid (else .id)",
        handshake="endpoint.url_validation (signed POST): 200 JSON plainToken + "
        "encryptedToken (HMAC-SHA256 hex of plainToken)",
        retries="3 s to answer; 3 retries: 5 min, then 20 min, then 60 min later",
        credential="the app's Secret Token",
        signed_headers=(TIMESTAMP_HEADER,),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("zoom_secret_token",)}
"""Settings the generic provider tests build this provider with."""
