"""Provider ``shopify``: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="shop", provider="shopify",
...                      secrets=("env:SHOPIFY_CLIENT_SECRET",)))

The key is the app's client secret; webhooks made in a shop's admin (Settings →
Notifications → Webhooks) are signed with the key shown on that page instead. After the
client secret is rotated, Shopify may sign with the old one for up to an hour: list both
in ``secrets`` meanwhile. The signature is base64, not hex. The unprefixed headers of
Shopify's newer event deliveries (``shopify-hmac-sha256``, ``shopify-webhook-id``) are
read too.

- Dedup key: the ``X-Shopify-Webhook-Id`` header (one per delivery, kept on retries).
  ``X-Shopify-Event-Id`` names the event across subscriptions; set
  ``dedup_key = "header:X-Shopify-Event-Id"`` to run one event once across them.
  No timestamp is signed: replays are caught by the dedup key.
- Type: the ``X-Shopify-Topic`` header: ``orders/create``, ``products/update``,
  ``customers/create`` (handler patterns: ``orders/*``).
- Ordering key: the body's ``admin_graphql_api_id`` (``gid://shopify/Order/...``, unique
  across resource kinds), else its ``id``.
- Occurred at: the ``X-Shopify-Triggered-At`` header (when the event happened; a retry
  keeps it, so stale deliveries can be told apart).

Checked against Shopify's "Verify webhook deliveries" page and retry changelog:
base64 HMAC-SHA256 of the raw body with the client secret; 8 retries over 4 hours
(since 2024-09-10) with the original payload; 1 s to connect, 5 s in all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    check_options,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import parse_body
from hookwise.providers._hub import (
    BodySignature,
    HubSource,
    Rules,
    build_rules,
    hub_hints,
    iso_time,
    json_bytes,
    new_uuid,
    no_tolerance,
    numeric_id,
)

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "ShopifySource", "build", "topic"]

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
EVENTS_SIGNATURE_HEADER = "Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("shopify_client_secret",)}
"""Settings that verify the provider's samples."""

SHOP_DOMAIN = "hookwise-demo.myshopify.com"
API_VERSION = "2025-01"

_GID = re.compile(r"gid://shopify/([A-Za-z]+)/")
_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def topic(document: object) -> str | None:
    """The ``X-Shopify-Topic`` a payload goes with, told from its shape, or None.

    >>> topic({"admin_graphql_api_id": "gid://shopify/Order/1",
    ...        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})
    'orders/create'

    The resource comes from ``admin_graphql_api_id``; equal creation and update times
    mean ``create``, others ``update``. What :meth:`ShopifySource.sign_headers` sends.
    """
    if not isinstance(document, dict):
        return None
    gid = document.get("admin_graphql_api_id")
    match = _GID.match(gid) if isinstance(gid, str) else None
    if match is None:
        return None
    resource = _WORD.sub("_", match.group(1)).lower()
    if resource == "shop":
        return "shop/update"
    fresh = document.get("created_at") == document.get("updated_at")
    return f"{resource}s/{'create' if fresh else 'update'}"


class ShopifySource(HubSource):
    """A Shopify webhook source.

    >>> source = build(SourceSettings(name="shop", provider="shopify", secrets=("s3cret",)))
    >>> body = source.samples(now=1700000000)["orders/create"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "shopify"
    key_hint = (
        "the key is the app's client secret (Dev Dashboard → the app → Settings), or for a "
        "webhook made in the shop admin the key shown under Settings → Notifications → "
        "Webhooks; after rotating the client secret Shopify may sign with the old one for "
        "up to an hour: list both in secrets"
    )
    missing_hint = (
        "Shopify signs every HTTPS delivery with X-Shopify-Hmac-Sha256: a request without "
        "it did not come from a Shopify webhook subscription"
    )

    def __init__(self, name: str, rules: Rules, *, secrets: tuple[str, ...]) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "base64", "", keys),
            secrets=secrets,
        )
        self.events_signature = BodySignature(EVENTS_SIGNATURE_HEADER, "sha256", "base64", "", keys)

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if (
            not headers.get(self.signature.header, "").strip()
            and headers.get(self.events_signature.header, "").strip()
        ):
            self.events_signature.verify(headers, body)
            return
        self.signature.verify(headers, body)

    def provider_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        signature = self.signature
        if (
            not request.headers.get(signature.header, "").strip()
            and request.headers.get(self.events_signature.header, "").strip()
        ):
            signature = self.events_signature
        return hub_hints(self, signature, request, error)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Shopify's headers for ``body``; ``X-Shopify-Topic`` is told from the payload
        (see :func:`topic`) and left out when it can't be."""
        headers = {
            WEBHOOK_ID_HEADER.lower(): delivery_id or new_uuid(),
            "x-shopify-event-id": new_uuid(),
            TRIGGERED_AT_HEADER.lower(): iso_time(now),
            "x-shopify-shop-domain": SHOP_DOMAIN,
            "x-shopify-api-version": API_VERSION,
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
        }
        name = topic(parse_body(body))
        if name is not None:
            headers[TOPIC_HEADER.lower()] = name
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        """An order created, a product updated, a customer created."""
        stamp = _shop_time(now)
        earlier = _shop_time(now - 86400 * 30)
        customer_id = numeric_id(13)
        customer = {
            "id": customer_id,
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            "email": "grace@example.com",
            "created_at": stamp,
            "updated_at": stamp,
            "first_name": "Grace",
            "last_name": "Hopper",
            "state": "disabled",
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": None,
            "currency": "USD",
            "tags": "",
            "addresses": [],
            "default_address": None,
            "email_marketing_consent": {
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
            },
        }
        product_id, variant_id = numeric_id(13), numeric_id(14)
        order_id, number = numeric_id(13), numeric_id(4)
        line_item_id = numeric_id(14)
        order = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "app_id": 580111,
            "buyer_accepts_marketing": False,
            "cancel_reason": None,
            "cancelled_at": None,
            "confirmation_number": uuid.uuid4().hex[:9].upper(),
            "confirmed": True,
            "contact_email": "grace@example.com",
            "created_at": stamp,
            "currency": "USD",
            "current_subtotal_price": "59.00",
            "current_total_price": "64.90",
            "current_total_tax": "5.90",
            "email": "grace@example.com",
            "financial_status": "paid",
            "fulfillment_status": None,
            "name": f"#{number}",
            "order_number": number,
            "processed_at": stamp,
            "subtotal_price": "59.00",
            "total_price": "64.90",
            "total_tax": "5.90",
            "updated_at": stamp,
            "customer": {
                "id": customer_id,
                "email": "grace@example.com",
                "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            },
            "line_items": [
                {
                    "id": line_item_id,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{line_item_id}",
                    "name": "Webhook T-shirt - M",
                    "price": "29.50",
                    "product_id": product_id,
                    "quantity": 2,
                    "sku": "HOOK-TEE-M",
                    "title": "Webhook T-shirt",
                    "variant_id": variant_id,
                    "variant_title": "M",
                    "vendor": "hookwise",
                }
            ],
        }
        product = {
            "id": product_id,
            "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
            "body_html": "<p>Soft cotton, printed with a retry schedule.</p>",
            "created_at": earlier,
            "handle": "webhook-t-shirt",
            "product_type": "Apparel",
            "published_at": earlier,
            "published_scope": "global",
            "status": "active",
            "tags": "cotton, webhooks",
            "template_suffix": None,
            "title": "Webhook T-shirt",
            "updated_at": stamp,
            "vendor": "hookwise",
            "variants": [
                {
                    "id": variant_id,
                    "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant_id}",
                    "product_id": product_id,
                    "title": "M",
                    "price": "29.50",
                    "sku": "HOOK-TEE-M",
                    "position": 1,
                    "inventory_quantity": 41,
                    "created_at": earlier,
                    "updated_at": stamp,
                }
            ],
            "options": [{"name": "Size", "position": 1, "values": ["M"]}],
            "images": [],
            "image": None,
            "variant_gids": [
                {
                    "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant_id}",
                    "updated_at": iso_time(now, millis=False),
                }
            ],
        }
        return {
            "orders/create": json_bytes(order),
            "products/update": json_bytes(product),
            "customers/create": json_bytes(customer),
        }


def _shop_time(now: float) -> str:
    # Shopify writes times in the shop's zone; this demo shop keeps UTC.
    return iso_time(now, millis=False, offset="+00:00")


def build(settings: SourceSettings) -> ShopifySource:
    """Build a Shopify source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    no_tolerance(
        settings,
        "Shopify signs no timestamp (X-Shopify-Triggered-At is not signed); "
        "replays are caught by X-Shopify-Webhook-Id",
    )
    rules = build_rules(
        settings,
        dedup=(f"header:{WEBHOOK_ID_HEADER}", "header:shopify-webhook-id"),
        type=(f"header:{TOPIC_HEADER}",),
        ordering_key=("body:admin_graphql_api_id", "body:id"),
        occurred_at=((f"header:{TRIGGERED_AT_HEADER}", 1),),
    )
    return ShopifySource(settings.name, rules, secrets=require_secrets(settings))


PROVIDER = ProviderSpec(
    "shopify",
    "Shopify: X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the body), X-Shopify-Webhook-Id",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 base64 of the body (client secret)",
        headers="X-Shopify-Hmac-Sha256, X-Shopify-Webhook-Id, X-Shopify-Topic",
        dedup_key="X-Shopify-Webhook-Id header",
        ordering_key="body admin_graphql_api_id (else id)",
        retries="8 retries over 4 hours; 1 s to connect, 5 s in all",
        credential="the app's client secret",
    ),
)
