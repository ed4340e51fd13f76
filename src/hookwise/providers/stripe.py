"""Provider ``stripe``: ``Stripe-Signature: t=...,v1=...``.

Put the endpoint's signing secret (``whsec_...``, from the dashboard, or the one
``stripe listen`` prints) in ``secrets``; it is used as text, as Stripe does, not
base64-decoded. While a rolled secret is still valid Stripe sends one ``v1`` per
secret, and several ``secrets`` here let you roll on your side: any match passes.
Only ``v1`` signatures count; ``v0`` (a fake scheme Stripe adds to test-mode events,
not made with the signing secret) and unknown schemes are ignored, so a request
can't be downgraded to them.

The timestamp tolerance is the source's, two-sided (Stripe's libraries default to
5 minutes and refuse only timestamps in the past).

Dedup key: the event ``id`` (``evt_...``) in the body, the same on every retry.
Type: the body's ``type``. Time: ``created``. Ordering key: ``data.object.id``,
the object the event is about (Stripe does not deliver in order; compare or fetch
the current state).

Checked against Stripe's documentation ("Verify webhook signatures manually":
header format, signed payload, v1 only, tolerance; "Event delivery behaviors":
retries) and the ``stripe`` library's ``WebhookSignature``.
"""

from __future__ import annotations

import json
import secrets as _random
import string
import uuid
from collections.abc import Mapping

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
from hookwise.providers._extract import parse_body
from hookwise.signatures import standard
from hookwise.signatures import stripe as scheme

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "StripeSource", "build"]

SIGNATURE_HEADER = "stripe-signature"
API_VERSION = "2024-06-20"


class StripeSource(Source):
    """A Stripe source.

    >>> source = build(SourceSettings(name="stripe", provider="stripe",
    ...                               secrets=("whsec_test_secret",)))
    >>> headers = source.sign_headers(body, now=1700000000)
    >>> source.verify(body, headers, now=1700000000)
    """

    provider = "stripe"

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
        headers = request.headers
        header = headers.get(SIGNATURE_HEADER)
        if header is None:
            if standard.WEBHOOK_HEADERS.signature in headers:
                hints.append(
                    "the request carries webhook-signature, not Stripe-Signature: it is a "
                    'Standard Webhooks delivery; use provider = "standard" (or "svix")'
                )
            return tuple(hints)
        try:
            parsed = scheme.parse_header(header)
        except VerificationError:
            return tuple(hints)
        if not parsed.v1:
            if "v0" in parsed.schemes:
                hints.append(
                    "Stripe-Signature holds only v0 signatures: v0 is a fake scheme Stripe "
                    "adds next to the real v1 on test-mode events (not made with your "
                    "signing secret), and it is ignored so requests can't be downgraded to "
                    "it; a request with v0 alone was not signed by Stripe (hand-made or "
                    "edited?): send a real test event with `stripe trigger` or from the "
                    "dashboard"
                )
            return tuple(hints)
        decoded = self._decoded_match(request, now)
        if decoded:
            hints.append(decoded)
        elif isinstance(error, VerificationError) and error.reason == "no_matching_signature":
            hints.append(self._which_secret_hint(request.body))
        return tuple(hints)

    def _decoded_match(self, request: Inbound, now: float) -> str | None:
        """When the secret, base64-decoded the Standard Webhooks way, would have matched."""
        keys = []
        for secret in self._secrets:
            try:
                keys.append(standard.decode_secret(secret))
            except ValueError:
                continue
        if not keys:
            return None
        try:
            scheme.Verifier(keys).verify(
                header=request.headers.get(SIGNATURE_HEADER),
                body=request.body,
                now=now,
                tolerance=self._tolerance,
            )
        except VerificationError:
            return None
        return (
            "the signature matches the secret base64-decoded after whsec_ (the Standard "
            "Webhooks way), not the secret used as text as Stripe does: the sender is not "
            "Stripe's own code; if it signs the Standard Webhooks way, use "
            'provider = "standard"'
        )

    @staticmethod
    def _which_secret_hint(body: bytes) -> str:
        document = parse_body(body)
        livemode = document.get("livemode") if isinstance(document, dict) else None
        where = ""
        if livemode is True:
            where = "this is a live-mode event: "
        elif livemode is False:
            where = "this is a test-mode event: "
        return (
            f"{where}each endpoint has its own signing secret, live and test mode differ, "
            "and `stripe listen` prints yet another one: copy the secret of the endpoint "
            "that sent this (Developers > Webhooks > the endpoint > Signing secret)"
        )

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
        created = int(now)
        customer = "cus_" + _stripe_id(14)
        payment_intent = "pi_" + _stripe_id(24)

        def event(event_type: str, data: dict[str, object]) -> bytes:
            document = {
                "id": "evt_" + _stripe_id(24),
                "object": "event",
                "api_version": API_VERSION,
                "created": created,
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": "req_" + _stripe_id(14), "idempotency_key": str(uuid.uuid4())},
                "type": event_type,
            }
            return json.dumps(document, indent=2).encode()

        subscription = "sub_" + _stripe_id(24)
        return {
            "payment_intent.succeeded": event(
                "payment_intent.succeeded",
                {
                    "object": {
                        "id": payment_intent,
                        "object": "payment_intent",
                        "amount": 2000,
                        "amount_received": 2000,
                        "currency": "usd",
                        "customer": customer,
                        "latest_charge": "ch_" + _stripe_id(24),
                        "livemode": False,
                        "metadata": {},
                        "payment_method": "pm_" + _stripe_id(24),
                        "status": "succeeded",
                        "created": created - 2,
                    }
                },
            ),
            "invoice.paid": event(
                "invoice.paid",
                {
                    "object": {
                        "id": "in_" + _stripe_id(24),
                        "object": "invoice",
                        "amount_due": 1500,
                        "amount_paid": 1500,
                        "amount_remaining": 0,
                        "billing_reason": "subscription_cycle",
                        "currency": "usd",
                        "customer": customer,
                        "livemode": False,
                        "number": "8A1F2C3D-0007",
                        "paid": True,
                        "status": "paid",
                        "subscription": subscription,
                        "created": created - 3600,
                    }
                },
            ),
            "customer.subscription.updated": event(
                "customer.subscription.updated",
                {
                    "object": {
                        "id": subscription,
                        "object": "subscription",
                        "cancel_at_period_end": True,
                        "current_period_end": created + 30 * 86400,
                        "current_period_start": created,
                        "customer": customer,
                        "livemode": False,
                        "status": "active",
                        "created": created - 90 * 86400,
                    },
                    "previous_attributes": {"cancel_at_period_end": False},
                },
            ),
            "checkout.session.completed": event(
                "checkout.session.completed",
                {
                    "object": {
                        "id": "cs_test_" + _stripe_id(58),
                        "object": "checkout.session",
                        "amount_total": 2000,
                        "currency": "usd",
                        "customer": customer,
                        "livemode": False,
                        "mode": "payment",
                        "payment_intent": payment_intent,
                        "payment_status": "paid",
                        "status": "complete",
                        "created": created - 60,
                    }
                },
            ),
        }


_ALPHANUMERIC = string.ascii_letters + string.digits


def _stripe_id(length: int) -> str:
    return "".join(_random.choice(_ALPHANUMERIC) for _ in range(length))


def build(settings: SourceSettings) -> StripeSource:
    """Build a Stripe source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    extraction = build_extraction(
        settings,
        dedup="body:id",
        type="body:type",
        ordering_key="body:data.object.id",
        occurred_at="body:created",
    )
    return StripeSource(
        settings.name, extraction, secrets=secrets, tolerance=check_tolerance(settings)
    )


PROVIDER = ProviderSpec(
    "stripe",
    "Stripe: Stripe-Signature (t=, v1=); whsec_ signing secret used as text",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of {t}.{body}, key: the whole whsec_ string as text; only "
        "v1 counts; ±tolerance",
        headers="Stripe-Signature: t=...,v1=...[,v1=...]",
        dedup_key="body id (evt_...)",
        ordering_key="body data.object.id",
        retries="live: up to 3 days with exponential backoff; sandbox: 3 times over a few "
        "hours; no order guarantee",
        credential="the endpoint's whsec_ signing secret",
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("whsec_test_secret",)}
"""Settings the generic provider tests build this provider with."""
