"""Provider ``shopify``: the reference vector, base64 (not hex), the newer unprefixed
headers, topic and time extraction, topics told from payloads, and the hex hint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.shopify import ShopifySource, topic

NOW = 1_700_000_000.0
# Reference example, accepted by @shopify/shopify-api's webhooks.validate.
SECRET = "shpss_test_secret"
BODY = b'{"id":820982911946154508}'
SIGNATURE = "AU5n5C4JV1EbE8g4yEzV+ZHbqkXpM29HXkzNAa5zicA="


def source(**kwargs: Any) -> ShopifySource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="shop", provider="shopify", **kwargs))
    assert isinstance(built, ShopifySource)
    return built


class TestSignature:
    def test_reference_vector(self) -> None:
        src = source()
        src.verify(BODY, {"x-shopify-hmac-sha256": SIGNATURE}, NOW)
        assert src.signature.sign(0, BODY) == SIGNATURE

    def test_hex_of_the_same_hmac_is_refused(self) -> None:
        hex_signature = base64.b64decode(SIGNATURE).hex()
        with pytest.raises(VerificationError, match="no_matching_signature"):
            source().verify(BODY, {"x-shopify-hmac-sha256": hex_signature}, NOW)

    def test_base64_is_compared_exactly(self) -> None:
        with pytest.raises(VerificationError, match="no_matching_signature"):
            source().verify(BODY, {"x-shopify-hmac-sha256": SIGNATURE.lower()}, NOW)

    def test_the_newer_unprefixed_header(self) -> None:
        src = source()
        src.verify(BODY, {"shopify-hmac-sha256": SIGNATURE}, NOW)
        with pytest.raises(VerificationError, match="no_matching_signature"):
            src.verify(BODY, {"shopify-hmac-sha256": "AAAA" + SIGNATURE[4:]}, NOW)
        # The prefixed header wins when both are sent.
        headers = {
            "x-shopify-hmac-sha256": "AAAA" + SIGNATURE[4:],
            "shopify-hmac-sha256": SIGNATURE,
        }
        with pytest.raises(VerificationError, match="no_matching_signature"):
            src.verify(BODY, headers, NOW)

    def test_worked_example_headers(self) -> None:
        src = source(secrets=("client-secret",))
        body = src.samples(NOW)["orders/create"]
        headers = src.sign_headers(body, now=NOW, delivery_id="b54557e4-bdd9-4b37")
        expected = base64.b64encode(hmac.new(b"client-secret", body, hashlib.sha256).digest())
        assert headers["x-shopify-hmac-sha256"] == expected.decode()
        assert headers["x-shopify-webhook-id"] == "b54557e4-bdd9-4b37"
        assert headers["x-shopify-topic"] == "orders/create"
        assert headers["x-shopify-triggered-at"] == "2023-11-14T22:13:20.000Z"
        assert headers["x-shopify-shop-domain"].endswith(".myshopify.com")
        assert headers["x-shopify-event-id"] != headers["x-shopify-webhook-id"]


class TestDescribe:
    def test_defaults(self) -> None:
        src = source()
        body = src.samples(NOW)["products/update"]
        gid = json.loads(body)["admin_graphql_api_id"]
        headers = {
            "x-shopify-webhook-id": "w-1",
            "x-shopify-topic": "products/update",
            "x-shopify-triggered-at": "2023-03-29T18:00:27.877041743Z",
        }
        described = src.describe(body, headers, NOW)
        assert described == Description("w-1", "products/update", gid, 1680112827.877041)

    def test_ordering_falls_back_to_the_id(self) -> None:
        described = source().describe(b'{"id": 820982911946154508}', {}, NOW)
        assert described.ordering_key == "820982911946154508"  # exact, not a float

    def test_the_newer_webhook_id_header(self) -> None:
        described = source().describe(b"{}", {"shopify-webhook-id": "e-1"}, NOW)
        assert described.dedup_key == "e-1"

    def test_event_id_dedup_can_be_configured(self) -> None:
        src = source(dedup_key="header:X-Shopify-Event-Id")
        headers = {"x-shopify-event-id": "ev-1", "x-shopify-webhook-id": "w-9"}
        assert src.describe(b"{}", headers, NOW).dedup_key == "ev-1"


class TestTopics:
    @pytest.mark.parametrize(
        ("document", "name"),
        [
            (
                {
                    "admin_graphql_api_id": "gid://shopify/Order/1",
                    "created_at": "a",
                    "updated_at": "a",
                },
                "orders/create",
            ),
            (
                {
                    "admin_graphql_api_id": "gid://shopify/Order/1",
                    "created_at": "a",
                    "updated_at": "b",
                },
                "orders/update",
            ),
            (
                {
                    "admin_graphql_api_id": "gid://shopify/DraftOrder/1",
                    "created_at": "a",
                    "updated_at": "a",
                },
                "draft_orders/create",
            ),
            ({"admin_graphql_api_id": "gid://shopify/Shop/1"}, "shop/update"),
            ({"id": 1}, None),
            ({"admin_graphql_api_id": 5}, None),
            ("orders", None),
        ],
    )
    def test_told_from_the_payload(self, document: object, name: str | None) -> None:
        assert topic(document) == name

    def test_unknown_shapes_send_no_topic(self) -> None:
        assert "x-shopify-topic" not in source().sign_headers(BODY, now=NOW)


class TestDiagnosis:
    def test_hex_where_base64_is_expected(self) -> None:
        hex_signature = base64.b64decode(SIGNATURE).hex()
        hints = source().diagnose(
            Inbound(BODY, {"x-shopify-hmac-sha256": hex_signature}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert any(
            hint.startswith("the signature is hex where base64 is expected") for hint in hints
        )

    def test_the_rotation_window_is_mentioned_on_a_wrong_secret(self) -> None:
        hints = source(secrets=("new-client-secret",)).diagnose(
            Inbound(BODY, {"x-shopify-hmac-sha256": SIGNATURE}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert any("up to an hour" in hint for hint in hints)

    def test_hints_read_the_newer_header_when_that_is_what_came(self) -> None:
        hex_signature = base64.b64decode(SIGNATURE).hex()
        hints = source().diagnose(
            Inbound(BODY, {"shopify-hmac-sha256": hex_signature}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert any("hex where base64" in hint for hint in hints)
        assert not any("did not come from" in hint for hint in hints)

    def test_an_access_token_as_secret(self) -> None:
        hints = source(secrets=("shpat_0123456789abcdef",)).diagnose(
            Inbound(BODY, {"x-shopify-hmac-sha256": SIGNATURE}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert any("Shopify access token" in hint for hint in hints)
