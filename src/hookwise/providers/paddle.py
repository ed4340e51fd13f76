"""Provider ``paddle``: Paddle Billing, ``Paddle-Signature: ts=...;h1=...``.

Put the notification destination's secret key (``pdl_ntfset_...``) in ``secrets``;
it is used as text, as Paddle does. Each destination has its own key, and sandbox
and live are separate accounts. During a rotation Paddle sends several ``h1``: all
are checked, and several ``secrets`` here let you rotate on your side.

Paddle's SDKs refuse a timestamp more than 5 seconds from their clock by default;
hookwise uses the source's tolerance, two-sided (5 minutes unless set), because a
retried or relayed delivery is signed again but may still wait a few seconds.
Set ``tolerance = "5s"`` for the SDKs' window.

Dedup key: the body's ``event_id`` (``evt_...``, the same on every retry). Type:
``event_type``. Time: ``occurred_at``. Ordering key: ``data.id``, the entity the
event is about (Paddle does not deliver in order: its docs say to compare
``occurred_at``). Paddle Classic (``p_signature`` in a form body, RSA) is a different
scheme, not handled here.

Checked against Paddle's developer docs ("Verify webhook signatures": header format,
signed payload, secret key, 5 s SDK tolerance; "Handle webhook delivery": 5 s
response time, live retries) and the official vector of the Python SDK's tests.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
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
from hookwise.providers._diagnose import encoding_hint
from hookwise.signatures import paddle as scheme

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "PaddleSource", "build"]

SIGNATURE_HEADER = "paddle-signature"

# Paddle credentials that are not a notification secret key, and what they are.
_OTHER_CREDENTIALS = (
    ("pdl_live_apikey_", "a Paddle API key"),
    ("pdl_sdbx_apikey_", "a Paddle sandbox API key"),
    ("live_", "a Paddle client-side token"),
    ("test_", "a Paddle client-side token"),
)


class PaddleSource(Source):
    """A Paddle Billing source.

    >>> source = build(SourceSettings(name="paddle", provider="paddle",
    ...                               secrets=("env:PADDLE_WEBHOOK_SECRET",)))
    >>> source.verify(body, {"paddle-signature": "ts=...;h1=..."}, now=clock.now())
    """

    provider = "paddle"

    def __init__(
        self, name: str, extraction: Extraction, *, secrets: tuple[str, ...], tolerance: float
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._secrets = secrets
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = scheme.Verifier(self._keys)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(
            header=headers.get(SIGNATURE_HEADER), body=body, now=now, tolerance=self._tolerance
        )

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        hints = list(super().diagnose(request, now, error))
        for position, secret in enumerate(self._secrets, start=1):
            for prefix, what in _OTHER_CREDENTIALS:
                if secret.strip().startswith(prefix):
                    hints.append(
                        f"secret number {position} looks like {what}, not a notification "
                        "secret key: copy the endpoint secret key of the notification "
                        "destination (Developer tools > Notifications)"
                    )
                    break
        if SIGNATURE_HEADER not in request.headers:
            if b"p_signature=" in request.body:
                hints.append(
                    "the body carries p_signature: this is a Paddle Classic webhook, signed "
                    "with RSA; provider paddle verifies Paddle Billing notifications only"
                )
            return tuple(hints)
        try:
            parsed = scheme.parse_header(request.headers[SIGNATURE_HEADER])
        except VerificationError:
            return tuple(hints)
        for given in parsed.h1:
            hint = encoding_hint(given, expected="hex")
            if hint:
                hints.append(hint)
                break
        if isinstance(error, VerificationError) and error.reason == "no_matching_signature":
            hints.append(
                "each notification destination has its own secret key, and sandbox and live "
                "are separate accounts: copy the key of the destination that sent this"
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
        key = pick_secret(self._keys, secret_index)
        return {SIGNATURE_HEADER: scheme.sign(key, int(now), body)}

    def samples(self, now: float) -> dict[str, bytes]:
        moment = datetime.fromtimestamp(now, tz=UTC)
        customer, address = _paddle_id("ctm"), _paddle_id("add")
        subscription = _paddle_id("sub")
        price = {
            "id": _paddle_id("pri"),
            "product_id": _paddle_id("pro"),
            "description": "Monthly (per seat)",
            "billing_cycle": {"interval": "month", "frequency": 1},
            "unit_price": {"amount": "3000", "currency_code": "USD"},
            "status": "active",
        }
        period = {"starts_at": _time(moment), "ends_at": _time(moment + timedelta(days=30))}

        def event(event_type: str, data: dict[str, object]) -> bytes:
            document = {
                "event_id": _paddle_id("evt"),
                "event_type": event_type,
                "occurred_at": _time(moment),
                "notification_id": _paddle_id("ntf"),
                "data": data,
            }
            return json.dumps(document, separators=(",", ":")).encode()

        subscription_data: dict[str, object] = {
            "id": subscription,
            "status": "active",
            "customer_id": customer,
            "address_id": address,
            "business_id": None,
            "currency_code": "USD",
            "created_at": _time(moment),
            "updated_at": _time(moment),
            "started_at": _time(moment),
            "first_billed_at": _time(moment),
            "next_billed_at": period["ends_at"],
            "paused_at": None,
            "canceled_at": None,
            "collection_mode": "automatic",
            "billing_cycle": {"interval": "month", "frequency": 1},
            "current_billing_period": period,
            "scheduled_change": None,
            "items": [
                {
                    "status": "active",
                    "quantity": 10,
                    "recurring": True,
                    "created_at": _time(moment),
                    "updated_at": _time(moment),
                    "price": price,
                }
            ],
            "custom_data": None,
        }
        return {
            "transaction.completed": event(
                "transaction.completed",
                {
                    "id": _paddle_id("txn"),
                    "status": "completed",
                    "customer_id": customer,
                    "address_id": address,
                    "business_id": None,
                    "custom_data": None,
                    "origin": "web",
                    "collection_mode": "automatic",
                    "subscription_id": subscription,
                    "invoice_id": _paddle_id("inv"),
                    "invoice_number": f"325-{_random.randbelow(100000):05d}",
                    "billing_period": period,
                    "currency_code": "USD",
                    "created_at": _time(moment),
                    "updated_at": _time(moment),
                    "billed_at": _time(moment),
                    "items": [{"price": price, "quantity": 10}],
                    "details": {
                        "totals": {
                            "subtotal": "30000",
                            "discount": "0",
                            "tax": "0",
                            "total": "30000",
                            "grand_total": "30000",
                            "currency_code": "USD",
                        }
                    },
                },
            ),
            "subscription.created": event("subscription.created", subscription_data),
            "subscription.updated": event(
                "subscription.updated",
                {
                    **subscription_data,
                    "id": _paddle_id("sub"),
                    "scheduled_change": {
                        "action": "cancel",
                        "effective_at": period["ends_at"],
                        "resume_at": None,
                    },
                },
            ),
            "customer.created": event(
                "customer.created",
                {
                    "id": _paddle_id("ctm"),
                    "name": "Ada Lovelace",
                    "email": "ada@example.com",
                    "status": "active",
                    "locale": "en",
                    "marketing_consent": False,
                    "custom_data": None,
                    "created_at": _time(moment),
                    "updated_at": _time(moment),
                },
            ),
        }


_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, as Paddle's ids


def _paddle_id(prefix: str) -> str:
    return prefix + "_01" + "".join(_random.choice(_ID_ALPHABET) for _ in range(24))


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build(settings: SourceSettings) -> PaddleSource:
    """Build a Paddle Billing source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    extraction = build_extraction(
        settings,
        dedup="body:event_id",
        type="body:event_type",
        ordering_key="body:data.id",
        occurred_at="body:occurred_at",
    )
    return PaddleSource(
        settings.name, extraction, secrets=secrets, tolerance=check_tolerance(settings)
    )


PROVIDER = ProviderSpec(
    "paddle",
    "Paddle Billing: Paddle-Signature (ts=;h1=); endpoint secret key used as text",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of {ts}:{body}, key: the secret key as text; every h1 "
        "checked; ±tolerance (Paddle's SDKs: 5 s)",
        headers="Paddle-Signature: ts=...;h1=...[;h1=...]",
        dedup_key="body event_id (evt_...)",
        ordering_key="body data.id",
        retries="live: up to 60 times over 3 days with exponential backoff; answer within 5 s",
        credential="the notification destination's secret key (pdl_ntfset_...)",
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("pdl_ntfset_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",)
}
"""Settings the generic provider tests build this provider with."""
