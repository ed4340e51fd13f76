"""Provider ``square``: ``x-square-hmacsha256-signature`` over the notification URL and body.

>>> build(SourceSettings(name="square", provider="square", secrets=("env:SQUARE_SIGNATURE_KEY",),
...                      public_url="https://hooks.example.com/hooks/square"))

Square signs the subscription's notification URL, byte for byte, followed by the raw
body: hookwise checks ``public_url`` (plus the request's query), or the URL rebuilt
from the request. Secrets are the subscription's signature keys (several while
rotating). The legacy HMAC-SHA1 ``x-square-signature`` is accepted only with the
option ``allow_sha1 = true``. Square signs no timestamp.

Defaults: dedup key ``event_id`` (the same on Square's retries), type ``type``
(``payment.updated``), ordering key ``data.id`` (the affected object), occurred at
``created_at``.
"""

from __future__ import annotations

import json
import secrets as _random
import uuid
from datetime import UTC, datetime

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._hints import with_own_hints
from hookwise.providers._url import check_public_url, reject_tolerance, signing_url, url_hint
from hookwise.signatures import square

__all__ = ["EXAMPLE_SETTINGS", "OPTIONS", "PROVIDER", "SquareSource", "build"]

OPTIONS = ("allow_sha1",)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("Ibxx_5AKakO-3qeNVR61Dw",),
    "options": {},
    "public_url": "https://hooks.example.com/hooks/square",
}
"""Settings the shared provider tests (and the docs) build a Square source from."""


class SquareSource(Source):
    """A Square source.

    >>> source = build(SourceSettings(name="square", provider="square", secrets=("k",),
    ...                               public_url="https://hooks.example.com/hooks/square"))
    >>> headers = source.sign_headers(b"{}", now=0)
    >>> source.verify(b"{}", headers, now=0)
    """

    provider = "square"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secrets: tuple[str, ...],
        allow_sha1: bool,
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = square.Verifier(self._keys, allow_sha1=allow_sha1)
        self.allow_sha1 = allow_sha1

    def verify_request(self, request: Inbound, now: float) -> None:
        self._verifier.verify(url=request.url, body=request.body, headers=request.headers)

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        reason = getattr(error, "reason", "")
        headers = request.headers
        if (
            reason == "missing_header"
            and not headers.get(square.SHA256_HEADER)
            and headers.get(square.SHA1_HEADER)
        ):
            return [
                "only the legacy HMAC-SHA1 x-square-signature came: the subscription uses an "
                "old API version; update it in the Square Developer Console, or set "
                "allow_sha1 = true for this source"
            ]
        if reason not in ("no_matching_signature", "wrong_url"):
            return []
        hint = url_hint(self, request, now)
        if hint:
            return [hint]
        return [
            "Square signs with the signature key of this subscription (each subscription has "
            "its own, shown with the subscription, not the application secret or an access "
            "token); while rotating it, list both keys in secrets"
        ]

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        key = pick_secret(self._keys, secret_index)
        url = signing_url(self, "Square signs the notification URL")
        headers = {
            "content-type": "application/json",
            square.SHA256_HEADER: square.sign(key, url, body),
        }
        if self.allow_sha1:
            headers[square.SHA1_HEADER] = square.sign(key, url, body, "sha1")
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        merchant = "ML" + _random.token_hex(6).upper()
        location = "L" + _random.token_hex(6).upper()
        payment, order, customer = (_square_id() for _ in range(3))
        at = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds")
        at = at.replace("+00:00", "Z")
        money = {"amount": 2500, "currency": "USD"}
        objects = {
            "payment.created": (
                "payment",
                payment,
                {
                    "payment": {
                        "id": payment,
                        "created_at": at,
                        "updated_at": at,
                        "amount_money": money,
                        "total_money": money,
                        "status": "APPROVED",
                        "source_type": "CARD",
                        "location_id": location,
                        "order_id": order,
                        "version": 1,
                    }
                },
            ),
            "payment.updated": (
                "payment",
                payment,
                {
                    "payment": {
                        "id": payment,
                        "created_at": at,
                        "updated_at": at,
                        "amount_money": money,
                        "total_money": money,
                        "status": "COMPLETED",
                        "source_type": "CARD",
                        "location_id": location,
                        "order_id": order,
                        "receipt_number": payment[:4],
                        "version": 3,
                    }
                },
            ),
            "order.updated": (
                "order",
                order,
                {
                    "order_updated": {
                        "order_id": order,
                        "location_id": location,
                        "state": "COMPLETED",
                        "version": 4,
                        "created_at": at,
                        "updated_at": at,
                    }
                },
            ),
            "customer.created": (
                "customer",
                customer,
                {
                    "customer": {
                        "id": customer,
                        "created_at": at,
                        "updated_at": at,
                        "given_name": "Ada",
                        "family_name": "Lovelace",
                        "email_address": "ada@example.com",
                        "version": 0,
                    }
                },
            ),
        }
        return {
            event_type: json.dumps(
                {
                    "merchant_id": merchant,
                    "type": event_type,
                    "event_id": str(uuid.uuid4()),
                    "created_at": at,
                    "data": {"type": object_type, "id": object_id, "object": data},
                },
                separators=(",", ":"),
            ).encode()
            for event_type, (object_type, object_id, data) in objects.items()
        }


def build(settings: SourceSettings) -> SquareSource:
    """Build a Square source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    check_public_url(settings)
    reject_tolerance(settings, "Square")
    secrets = require_secrets(settings)
    allow_sha1 = settings.options.get("allow_sha1", False)
    if not isinstance(allow_sha1, bool):
        raise ConfigError(
            f"allow_sha1 must be true or false, not {allow_sha1!r}",
            key=f"sources.{settings.name}.allow_sha1",
            fix="write allow_sha1 = true (only for subscriptions that send x-square-signature)",
        )
    return SquareSource(
        settings.name,
        _extraction(settings),
        secrets=secrets,
        allow_sha1=allow_sha1,
    )


def _square_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(_random.choice(alphabet) for _ in range(29))


def _extraction(settings: SourceSettings) -> Extraction:
    return build_extraction(
        settings,
        dedup="body:event_id",
        type="body:type",
        ordering_key="body:data.id",
        occurred_at="body:created_at",
    )


PROVIDER = ProviderSpec(
    "square",
    "Square: x-square-hmacsha256-signature over the notification URL + body (public_url)",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 base64 of notification URL + body (legacy SHA1 opt-in)",
        headers="x-square-hmacsha256-signature (x-square-signature)",
        dedup_key="body event_id",
        ordering_key="body data.id",
        handshake="none",
        retries="retried with backoff for up to 24 h (some docs say 72 h); answer within 10 s",
        credential="the subscription's signature key",
    ),
)
