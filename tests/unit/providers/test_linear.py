"""Provider ``linear``: the reference vector, the body's webhookTimestamp against the
tolerance both ways, Issue.create types, and Linear-specific diagnosis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.linear import SDK_TOLERANCE, LinearSource, webhook_time

NOW = 1_700_000_000.0
# Reference example, computed with the standard library; @linear/sdk 98's
# LinearWebhookClient.verify accepted the same construction with a fresh timestamp.
SECRET = "lin_wh_secret"
BODY = b'{"action":"create","type":"Issue","webhookTimestamp":1700000000000}'
SIGNATURE = "91e919dc0fd99df1cae12efef1ca08b082cfa523f101b572ec14ed98863fdf35"


def source(**kwargs: Any) -> LinearSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="lin", provider="linear", **kwargs))
    assert isinstance(built, LinearSource)
    return built


def reason(src: LinearSource, body: bytes, headers: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, now)
    return caught.value.reason


def signed(src: LinearSource, document: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    return body, src.sign_headers(body, now=NOW)


class TestSignature:
    def test_reference_vector(self) -> None:
        src = source()
        src.verify(BODY, {"linear-signature": SIGNATURE}, NOW)
        assert src.signature.sign(0, BODY) == SIGNATURE

    def test_worked_example_headers(self) -> None:
        src = source()
        headers = src.sign_headers(BODY, now=NOW, delivery_id="234d1a4e-b617-4388")
        assert headers == {
            "linear-delivery": "234d1a4e-b617-4388",
            "linear-signature": SIGNATURE,
            "linear-event": "Issue",
        }


class TestTimestamp:
    def test_within_the_tolerance_either_way(self) -> None:
        src = source()
        for now in (NOW - 300, NOW, NOW + 300):
            src.verify(BODY, {"linear-signature": SIGNATURE}, now)

    def test_stale_and_future_are_refused(self) -> None:
        src = source()
        headers = {"linear-signature": SIGNATURE}
        assert reason(src, BODY, headers, NOW + 301) == "timestamp_too_old"
        assert reason(src, BODY, headers, NOW - 301) == "timestamp_too_new"
        with pytest.raises(VerificationError) as caught:
            src.verify(BODY, headers, NOW + 600)
        assert caught.value.offset == 600

    def test_the_sdk_window_can_be_configured(self) -> None:
        src = source(tolerance=SDK_TOLERANCE)
        headers = {"linear-signature": SIGNATURE}
        src.verify(BODY, headers, NOW + 60)
        assert reason(src, BODY, headers, NOW + 61) == "timestamp_too_old"
        assert reason(src, BODY, headers, NOW - 61) == "timestamp_too_new"

    def test_the_signature_is_checked_before_the_time(self) -> None:
        assert reason(source(), BODY, {"linear-signature": "0" * 64}, NOW + 10**6) == (
            "no_matching_signature"
        )

    def test_a_body_without_a_timestamp(self) -> None:
        src = source()
        body, headers = signed(src, {"action": "create", "type": "Issue"})
        assert reason(src, body, headers) == "missing_timestamp"
        body, headers = signed(src, {"webhookTimestamp": None})
        assert reason(src, body, headers) == "missing_timestamp"
        assert reason(src, b"[1]", src.sign_headers(b"[1]", now=NOW)) == "missing_timestamp"

    @pytest.mark.parametrize("value", ["1700000000000", True, 1e300, 10**20, [1]])
    def test_a_timestamp_that_is_not_milliseconds(self, value: object) -> None:
        src = source()
        body, headers = signed(src, {"webhookTimestamp": value})
        assert reason(src, body, headers) == "malformed_timestamp"

    def test_a_nested_timestamp_is_not_the_delivery_time(self) -> None:
        src = source()
        body, headers = signed(src, {"data": {"webhookTimestamp": 1700000000000}})
        assert reason(src, body, headers) == "missing_timestamp"

    def test_webhook_time(self) -> None:
        assert webhook_time(BODY) == 1700000000.0
        assert webhook_time(b'{"webhookTimestamp": 1700000000500.0}') == 1700000000.5

    def test_sign_request_stamps_a_body_without_a_time(self) -> None:
        src = source()
        made = src.sign_request(b'{"action":"create","type":"Issue"}', now=NOW + 5)
        assert json.loads(made.body)["webhookTimestamp"] == 1700000005000
        src.verify(made.body, made.headers, NOW + 5)
        kept = src.sign_request(BODY, now=NOW + 5)
        assert kept.body == BODY


class TestDescribe:
    def test_event_and_action_make_the_type(self) -> None:
        src = source()
        body = src.samples(NOW)["Issue.update"]
        document = json.loads(body)
        headers = {"linear-delivery": "d-1", "linear-event": "Issue"}
        assert src.describe(body, headers, NOW) == Description(
            "d-1", "Issue.update", document["data"]["id"], NOW
        )

    def test_the_body_type_stands_in_for_a_missing_header(self) -> None:
        assert source().describe(BODY, {}, NOW).type == "Issue.create"

    def test_occurred_at_prefers_the_action_time(self) -> None:
        body = b'{"createdAt":"2023-11-14T22:00:00.000Z","webhookTimestamp":1700000000000}'
        assert source().describe(body, {}, NOW).occurred_at == 1699999200.0
        assert source().describe(BODY, {}, NOW).occurred_at == 1700000000.0


class TestDiagnosis:
    def hints(self, src: LinearSource, body: bytes, error: str) -> tuple[str, ...]:
        headers = src.sign_headers(body, now=NOW)
        return src.diagnose(Inbound(body, headers), NOW, VerificationError(error))

    def test_a_timestamp_in_seconds(self) -> None:
        src = source()
        body = b'{"action":"create","type":"Issue","webhookTimestamp":1700000000}'
        assert reason(src, body, src.sign_headers(body, now=NOW)) == "timestamp_too_old"
        hints = self.hints(src, body, "timestamp_too_old")
        assert hints[0].startswith("webhookTimestamp looks like UNIX seconds")

    def test_a_missing_timestamp(self) -> None:
        hints = self.hints(source(), b'{"action":"create"}', "missing_timestamp")
        assert hints[0].startswith("the body has no webhookTimestamp")

    def test_an_api_key_as_secret(self) -> None:
        src = source(secrets=("lin_api_0123456789abcdef",))
        hints = self.hints(src, BODY, "no_matching_signature")
        assert any("looks like a Linear API key" in hint for hint in hints)
        assert not any("lin_api_0123456789abcdef" in hint for hint in hints)

    def test_a_prefix_added_on_the_way(self) -> None:
        hints = source().diagnose(
            Inbound(BODY, {"linear-signature": "sha256=" + SIGNATURE}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert "something adds the prefix on the way" in hints[0]
