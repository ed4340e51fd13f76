"""Provider ``svix``: deliveries sent through Svix (``svix-id``, ``-timestamp``, ``-signature``).

Svix signs exactly as Standard Webhooks ``v1`` does: HMAC-SHA256, base64, of
``{svix-id}.{svix-timestamp}.{raw body}``, keyed with the base64 after ``whsec_``.
Accounts with white-labelled headers send ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` instead; each header is read under its ``svix-`` name first and
its ``webhook-`` name otherwise, as Svix's own libraries do.

Many services deliver through Svix (Clerk, Resend and others): their events verify
here. The dedup key is the message id (``svix-id``, stable across retries), the type
is the body's ``type`` field. The body is the sending application's own, so there
is no default ordering key or time: set ``ordering_key`` and ``occurred_at``.
The tolerance is two-sided (5 minutes by default, as in Svix's libraries).

Checked against docs.svix.com (``receiving/verifying-payloads/how-manual``: headers,
signed content, ``webhook-`` aliases; ``retries``: the schedule below).
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping
from datetime import UTC, datetime

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
)
from hookwise.providers.standard import WebhookKeys, literal_key_hint, parse_keys
from hookwise.signatures import standard

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "SvixSource", "build"]

SVIX_HEADERS = standard.HeaderNames(
    id="svix-id", timestamp="svix-timestamp", signature="svix-signature"
)
ALIAS_HEADERS = standard.WEBHOOK_HEADERS


class SvixSource(Source):
    """A source that receives deliveries signed by Svix.

    >>> source = build(SourceSettings(name="clerk", provider="svix",
    ...                               secrets=("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)))
    >>> headers = source.sign_headers(b"{}", now=1700000000)
    >>> source.verify(b"{}", headers, now=1700000000)
    """

    provider = "svix"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        keys: WebhookKeys,
        tolerance: float,
        default_dedup: bool,
    ) -> None:
        super().__init__(name, extraction, secret_values=tuple(keys.redact))
        self._keys = keys
        self._tolerance = tolerance
        self._default_dedup = default_dedup
        self._verifiers = {
            names: standard.Verifier(keys.hmac_keys, names=names)
            for names in (SVIX_HEADERS, ALIAS_HEADERS)
        }

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        names = _names_used(headers)
        self._verifiers[names].verify(
            msg_id=_header(headers, "id"),
            timestamp_header=_header(headers, "timestamp"),
            signature_header=_header(headers, "signature"),
            body=body,
            now=now,
            tolerance=self._tolerance,
        )

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        if self._default_dedup and SVIX_HEADERS.id not in headers:
            alias = headers.get(ALIAS_HEADERS.id)
            if alias is not None:
                headers = {**headers, SVIX_HEADERS.id: alias}
        return self.extraction.describe(body, headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        hints = list(super().diagnose(request, now, error))
        names = _names_used(request.headers)
        hint = literal_key_hint(
            request,
            now,
            self._keys.literal_secrets,
            names=names,
            verify=lambda verifier, headers: verifier.verify(
                msg_id=_header(headers, "id"),
                timestamp_header=_header(headers, "timestamp"),
                signature_header=_header(headers, "signature"),
                body=request.body,
                now=now,
                tolerance=self._tolerance,
            ),
        )
        if hint:
            hints.append(hint)
        signature = _header(request.headers, "signature") or ""
        if "v1a" in standard.signature_versions(signature):
            hints.append(
                "the request carries v1a (ed25519) signatures, which Svix does not send: "
                'use provider = "standard" with the sender\'s whpk_ public key'
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
        key = pick_secret(tuple(self._keys.hmac_keys), secret_index)
        msg_id = delivery_id or "msg_" + _ksuid()
        timestamp = int(now)
        return {
            SVIX_HEADERS.id: msg_id,
            SVIX_HEADERS.timestamp: str(timestamp),
            SVIX_HEADERS.signature: standard.sign(key, msg_id, timestamp, body),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        """Svix's own operational webhooks, as Svix sends them about an application."""
        moment = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds")
        moment = moment.replace("+00:00", "Z")
        app_id = "app_" + _ksuid()

        def event(event_type: str, data: dict[str, object]) -> bytes:
            return json.dumps({"data": data, "type": event_type}, separators=(",", ":")).encode()

        def attempt_data() -> dict[str, object]:
            return {
                "appId": app_id,
                "appUid": "unique-app-identifier",
                "endpointId": "ep_" + _ksuid(),
                "lastAttempt": {
                    "id": "atmpt_" + _ksuid(),
                    "responseStatusCode": 500,
                    "timestamp": moment,
                },
                "msgEventId": "evt_" + _random.token_hex(8),
                "msgId": "msg_" + _ksuid(),
            }

        return {
            "endpoint.created": event(
                "endpoint.created",
                {
                    "appId": app_id,
                    "appUid": "unique-app-identifier",
                    "endpointId": "ep_" + _ksuid(),
                    "endpointUid": "unique-endpoint-identifier",
                },
            ),
            "endpoint.disabled": event(
                "endpoint.disabled",
                {
                    "appId": app_id,
                    "appUid": "unique-app-identifier",
                    "endpointId": "ep_" + _ksuid(),
                    "endpointUid": "unique-endpoint-identifier",
                    "failSince": moment,
                    "trigger": "automatic",
                },
            ),
            "message.attempt.exhausted": event("message.attempt.exhausted", attempt_data()),
            "message.attempt.failing": event("message.attempt.failing", attempt_data()),
        }


def _names_used(headers: Mapping[str, str]) -> standard.HeaderNames:
    """Svix's names when any ``svix-`` header is there, else the ``webhook-`` aliases
    (for messages: verification reads each header under both names)."""
    if any(name in headers for name in (SVIX_HEADERS.id, SVIX_HEADERS.signature)):
        return SVIX_HEADERS
    if any(name in headers for name in (ALIAS_HEADERS.id, ALIAS_HEADERS.signature)):
        return ALIAS_HEADERS
    return SVIX_HEADERS


def _header(headers: Mapping[str, str], field: str) -> str | None:
    value = headers.get(getattr(SVIX_HEADERS, field))
    return value if value is not None else headers.get(getattr(ALIAS_HEADERS, field))


_KSUID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _ksuid() -> str:
    """A 27-character random id shaped like Svix's (``msg_2Lh9...``)."""
    return "".join(_random.choice(_KSUID_ALPHABET) for _ in range(27))


def build(settings: SourceSettings) -> SvixSource:
    """Build a Svix source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    keys = parse_keys(
        settings,
        allow_ed25519=False,
        fix="use the endpoint's whsec_... signing secret exactly as the dashboard shows it",
    )
    return SvixSource(
        settings.name,
        build_extraction(settings, dedup=f"header:{SVIX_HEADERS.id}", type="body:type"),
        keys=keys,
        tolerance=check_tolerance(settings),
        default_dedup=settings.dedup_key is None,
    )


PROVIDER = ProviderSpec(
    "svix",
    "Svix (and services that deliver through it): svix-id, svix-timestamp, svix-signature "
    "(or webhook-*); whsec_ secrets",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 base64 of {id}.{timestamp}.{body} (Standard Webhooks v1; key: "
        "base64 after whsec_); ±tolerance",
        headers="svix-id, svix-timestamp, svix-signature (or webhook-id, -timestamp, -signature)",
        dedup_key="svix-id header (msg_...)",
        ordering_key="none (the sending application's body: set ordering_key)",
        retries="immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; 2xx within 15 s; "
        "endpoint disabled after 5 days of failures",
        credential="the endpoint's whsec_ signing secret",
        signed_headers=(SVIX_HEADERS.id, SVIX_HEADERS.timestamp),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)}
"""Settings the generic provider tests build this provider with."""
