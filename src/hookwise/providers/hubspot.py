"""Provider ``hubspot``: ``X-HubSpot-Signature-v3`` over method, URL, body and time.

>>> build(SourceSettings(name="hubspot", provider="hubspot", secrets=("env:HUBSPOT_CLIENT_SECRET",),
...                      public_url="https://hooks.example.com/hooks/hubspot"))

HubSpot signs the target URL configured in the app, so hookwise checks ``public_url``
(plus the request's query) or the URL rebuilt from the request. Secrets are the
app's client secret (several while rotating). ``X-HubSpot-Request-Timestamp`` is in
milliseconds; HubSpot asks to reject requests older than five minutes, and hookwise
applies the source's tolerance (five minutes by default) both ways.

A POST carries an array of up to 100 events and is stored as one hookwise event:

- dedup key: built from the events in it, each identified by its ``eventId`` and a
  hash of its fields except ``attemptNumber`` (which grows on every retry, and
  ``eventId`` alone is not guaranteed to be unique): ``<eventId>:<hash>`` for a lone
  event, ``batch-<count>-<hash>`` for several. A retried POST is a duplicate; a
  different batch never is.
- type: ``subscriptionType`` of the first event (``contact.propertyChange``).
- ordering key: ``objectId`` of the first event. occurred at: its ``occurredAt``
  (milliseconds, turned into seconds).
"""

from __future__ import annotations

import hashlib
import json
import secrets as _random
from collections.abc import Mapping
from dataclasses import replace

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
    require_secrets,
)
from hookwise.providers._batch import batch_key, items_of, scalar
from hookwise.providers._extract import parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.providers._url import check_public_url, signing_url, url_hint
from hookwise.signatures import hubspot

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "HubSpotSource", "build"]

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("0f6d3c1e-5b8a-4c2d-9e7f-a1b2c3d4e5f6",),
    "options": {},
    "public_url": "https://hooks.example.com/hooks/hubspot",
}
"""Settings the shared provider tests (and the docs) build a HubSpot source from."""


class HubSpotSource(Source):
    """A HubSpot source (signature v3).

    >>> source = build(SourceSettings(name="hubspot", provider="hubspot", secrets=("s",),
    ...                               public_url="https://hooks.example.com/hooks/hubspot"))
    >>> headers = source.sign_headers(b"[]", now=1700000000)
    >>> source.verify(b"[]", headers, now=1700000000)
    """

    provider = "hubspot"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secrets: tuple[str, ...],
        tolerance: float,
        batch_dedup: bool,
        occurred_at_ms: bool,
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = hubspot.Verifier(self._keys)
        self._tolerance = tolerance
        self._batch_dedup = batch_dedup
        self._occurred_at_ms = occurred_at_ms

    def verify_request(self, request: Inbound, now: float) -> None:
        self._verifier.verify(
            method=request.method,
            url=request.url,
            body=request.body,
            headers=request.headers,
            now=now,
            tolerance=self._tolerance,
        )

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        described = self.extraction.describe(body, headers)
        if not (self._batch_dedup or self._occurred_at_ms):
            return described
        items = items_of(parse_body(body))
        if self._batch_dedup:
            key = batch_key(items, _event_identity)
            if key is not None:
                described = replace(described, dedup_key=key)
        if self._occurred_at_ms and items:
            moment = items[0].get("occurredAt")
            if isinstance(moment, int | float) and not isinstance(moment, bool):
                described = replace(described, occurred_at=moment / 1000)
        return described

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        for position, secret in enumerate(self.secret_values, start=1):
            if secret.strip().startswith("pat-"):
                hints.append(
                    f"secret number {position} looks like a private app access token "
                    "(pat-...), not the app's client secret: copy the client secret from the "
                    "app's Auth settings"
                )
        reason = getattr(error, "reason", "")
        headers = request.headers
        if reason == "missing_header" and not headers.get(hubspot.SIGNATURE_HEADER):
            legacy = headers.get(hubspot.LEGACY_HEADER)
            if legacy:
                version = (headers.get("x-hubspot-signature-version") or "v1/v2").strip()
                hints.append(
                    f"only the legacy X-HubSpot-Signature ({version[:10]}) came; hookwise "
                    "checks only X-HubSpot-Signature-v3, which has a timestamp against replays"
                )
        timestamp = (headers.get(hubspot.TIMESTAMP_HEADER) or "").strip()
        if reason == "timestamp_too_old" and timestamp.isdigit() and len(timestamp) <= 11:
            hints.append(
                "X-HubSpot-Request-Timestamp looks like seconds; HubSpot sends milliseconds"
            )
        if reason in ("no_matching_signature", "wrong_url"):
            hint = url_hint(self, request, now)
            if hint:
                hints.append(hint)
            elif reason == "no_matching_signature":
                hints.append(
                    "HubSpot signs with the client secret of the app the webhook subscription "
                    "belongs to (the app's Auth tab), not a developer API key or access token"
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
        key = pick_secret(self._keys, secret_index)
        url = signing_url(self, "HubSpot signs the target URL")
        timestamp = str(int(now * 1000))
        return {
            "content-type": "application/json",
            hubspot.TIMESTAMP_HEADER: timestamp,
            hubspot.SIGNATURE_HEADER: hubspot.sign(key, "POST", url, body, timestamp),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        portal = 62515 + _random.randbelow(1000)
        app = 54321 + _random.randbelow(1000)
        at = int(now * 1000) - 1500

        def event(subscription_type: str, object_id: int, **extra: object) -> bytes:
            item: dict[str, object] = {
                "eventId": _random.randbelow(4_000_000_000) + 1,
                "subscriptionId": 1_000_000 + _random.randbelow(9_000_000),
                "portalId": portal,
                "appId": app,
                "occurredAt": at,
                "subscriptionType": subscription_type,
                "attemptNumber": 0,
                "objectId": object_id,
                **extra,
            }
            return json.dumps([item], separators=(",", ":")).encode()

        contact = 100 + _random.randbelow(10**9)
        deal = 100 + _random.randbelow(10**9)
        return {
            "contact.creation": event(
                "contact.creation", contact, changeFlag="NEW", changeSource="CRM"
            ),
            "contact.propertyChange": event(
                "contact.propertyChange",
                contact,
                propertyName="lifecyclestage",
                propertyValue="customer",
                changeSource="CRM",
                sourceId="userId:" + str(1000 + _random.randbelow(9000)),
            ),
            "deal.creation": event("deal.creation", deal, changeFlag="NEW", changeSource="CRM"),
        }


def build(settings: SourceSettings) -> HubSpotSource:
    """Build a HubSpot source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    check_public_url(settings)
    secrets = require_secrets(settings)
    extraction = build_extraction(
        settings, dedup=None, type="body:0.subscriptionType", ordering_key="body:0.objectId"
    )
    return HubSpotSource(
        settings.name,
        extraction,
        secrets=secrets,
        tolerance=check_tolerance(settings),
        batch_dedup=settings.dedup_key is None,
        occurred_at_ms=settings.occurred_at is None,
    )


def _event_identity(item: dict[str, object]) -> str | None:
    event_id = scalar(item.get("eventId"))
    if event_id is None:
        return None
    stable = {name: value for name, value in item.items() if name != "attemptNumber"}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{event_id}:{digest[:16]}"


PROVIDER = ProviderSpec(
    "hubspot",
    "HubSpot: X-HubSpot-Signature-v3 over method + URL + body + timestamp (public_url)",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 base64 of method + URL + body + timestamp (ms)",
        headers="X-HubSpot-Signature-v3, X-HubSpot-Request-Timestamp",
        dedup_key="the eventIds of the batch (attemptNumber ignored)",
        ordering_key="objectId of the first event",
        handshake="none",
        retries="up to 10 retries over 24 h on errors and timeouts (5 s)",
        credential="the app's client secret",
        signed_headers=(hubspot.TIMESTAMP_HEADER,),
    ),
)
