"""Provider ``mailgun``: the signature in the body (JSON, form, multipart), the token
replay cache that must let retries through, and every reason."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers._base import body_digest
from hookwise.providers.mailgun import MailgunSource, TokenCache
from hookwise.signatures import mailgun

KEY = "key-mailgun-signing"
OTHER = "key-another-signing"
THIRD = "key-a-third-signing"

# The reference's example (stdlib HMAC; Mailgun publishes no library).
TIMESTAMP = "1770920772"
TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
SIGNATURE = "40f728461859066ef27e4ee5d2cd0c78811407b319b11eb66ff0246d144e5489"
NOW = int(TIMESTAMP)

EVENT_DATA = {
    "id": "CPgfbmQMTCKtHW6uIWtuVe",
    "timestamp": 1770920770.5,
    "log-level": "info",
    "event": "delivered",
    "recipient": "alice@example.org",
    "message": {
        "headers": {
            "to": "Alice <alice@example.org>",
            "message-id": "20260212.abcdef@mg.example.com",
            "from": "Billing <billing@mg.example.com>",
            "subject": "Your invoice",
        }
    },
}


def source(*secrets: str, **kwargs: Any) -> MailgunSource:
    made = build_source(
        SourceSettings(name="mail", provider="mailgun", secrets=secrets or (KEY,), **kwargs)
    )
    assert isinstance(made, MailgunSource)
    return made


def body(
    event_data: dict[str, Any] | None = None,
    *,
    timestamp: object = TIMESTAMP,
    token: object = TOKEN,
    signature: object = SIGNATURE,
    **extra: object,
) -> bytes:
    block = {"token": token, "timestamp": timestamp, "signature": signature, **extra}
    document = {"signature": block, "event-data": event_data or EVENT_DATA}
    return json.dumps(document).encode()


def form(**fields: str) -> bytes:
    values = {"timestamp": TIMESTAMP, "token": TOKEN, "signature": SIGNATURE, **fields}
    return urlencode(values).encode()


def reason(
    src: Source, sent: bytes, headers: dict[str, str] | None = None, now: float = NOW
) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(sent, headers or {}, now)
    return caught.value.reason


class TestSignature:
    def test_reference_example(self) -> None:
        assert mailgun.sign(KEY.encode(), TIMESTAMP, TOKEN) == SIGNATURE
        source().verify(body(), {"content-type": "application/json"}, NOW)

    def test_timestamp_as_a_json_number(self) -> None:
        source().verify(body(timestamp=int(TIMESTAMP)), {}, NOW)

    def test_form_and_multipart_posts(self) -> None:
        source().verify(form(event="delivered"), {}, NOW)
        boundary = "b0undary"
        fields = (
            ("timestamp", TIMESTAMP),
            ("token", TOKEN),
            ("signature", SIGNATURE),
            ("recipient", "a@example.org"),
        )
        parts = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
                for name, value in fields
            )
            + (
                f'--{boundary}\r\nContent-Disposition: form-data; name="attachment-1"; '
                f'filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n'
            ).encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        source().verify(parts, {"content-type": content_type}, NOW)
        assert source().describe(parts, {"content-type": content_type}, NOW).type == "inbound"

    def test_worked_example(self) -> None:
        src = source()
        request = src.sign_request(body(signature="", token="", timestamp=""), now=NOW)
        assert request.headers == {"content-type": "application/json"}
        block = json.loads(request.body)["signature"]
        assert block["timestamp"] == TIMESTAMP and len(block["token"]) == 50
        assert block["signature"] == mailgun.sign(KEY.encode(), TIMESTAMP, block["token"])
        src.verify(request.body, request.headers, NOW)
        legacy = src.sign_request(b"event=opened&recipient=a%40example.org", now=NOW)
        assert legacy.headers == {"content-type": "application/x-www-form-urlencoded"}
        src.verify(legacy.body, legacy.headers, NOW)
        with pytest.raises(ValueError, match="sign_request"):
            src.sign_headers(b"{}", now=NOW)

    def test_signed_values_tampered_and_wrong_key(self) -> None:
        assert reason(source(), body(token=TOKEN[:-1] + "4")) == "no_matching_signature"
        assert reason(source(), body(timestamp=str(NOW - 1))) == "no_matching_signature"
        assert reason(source(OTHER), body()) == "no_matching_signature"

    def test_the_rest_of_the_body_is_not_signed(self) -> None:
        changed = {**EVENT_DATA, "recipient": "mallory@example.net"}
        source().verify(body(changed), {}, NOW)  # why the token cache exists

    @pytest.mark.parametrize(
        ("offset", "expected"), [(301, "timestamp_too_old"), (-301, "timestamp_too_new")]
    )
    def test_stale_either_way(self, offset: int, expected: str) -> None:
        source().verify(body(), {}, NOW + 300)
        source().verify(body(), {}, NOW - 300)
        assert reason(source(), body(), now=NOW + offset) == expected

    def test_rotation_and_parent_signature(self) -> None:
        src = source(OTHER, KEY)
        for index in (0, 1):
            request = src.sign_request(body(), now=NOW, secret_index=index)
            src.verify(request.body, request.headers, NOW)
        forged = source(THIRD).sign_request(body(), now=NOW)
        assert reason(src, forged.body) == "no_matching_signature"
        wrong = "0" * 64
        source().verify(body(signature=wrong, **{"parent-signature": SIGNATURE}), {}, NOW)

    @pytest.mark.parametrize(
        ("sent", "expected"),
        [
            (json.dumps({"event-data": EVENT_DATA}).encode(), "missing_field"),
            (body(token=""), "missing_field"),
            (body(timestamp=None), "missing_field"),
            (body(signature=None), "missing_field"),
            (form(signature=""), "missing_field"),
            (b"", "missing_field"),
            (b"\xff\xfe", "missing_field"),
            (body(timestamp="2026-02-12"), "malformed_field"),
            (body(timestamp=True), "missing_field"),
            (body(signature=SIGNATURE[:-1]), "malformed_field"),
            (body(signature="v0=" + SIGNATURE), "malformed_field"),
        ],
    )
    def test_missing_and_malformed_fields(self, sent: bytes, expected: str) -> None:
        assert reason(source(), sent) == expected


class TestReplayCache:
    def test_a_retry_with_the_same_token_passes(self) -> None:
        src = source()
        src.verify(body(), {}, NOW)
        src.verify(body(), {}, NOW + 60)
        src.verify(json.dumps(json.loads(body()), indent=2).encode(), {}, NOW + 120)
        assert len(src.tokens) == 1

    def test_the_same_token_for_another_event_is_refused(self) -> None:
        src = source()
        src.verify(body(), {}, NOW)
        forged = {**EVENT_DATA, "id": "forged-event-id", "event": "unsubscribed"}
        assert reason(src, body(forged), now=NOW + 5) == "replayed_token"
        src.verify(body(), {}, NOW + 10)  # the real event still passes

    def test_form_posts_compare_whole_bodies(self) -> None:
        src = source()
        src.verify(form(event="opened"), {}, NOW)
        src.verify(form(event="opened"), {}, NOW)
        assert reason(src, form(event="clicked")) == "replayed_token"

    def test_refused_requests_record_nothing(self) -> None:
        src = source()
        assert reason(src, body({**EVENT_DATA, "id": "x"}, signature="0" * 64)) == (
            "no_matching_signature"
        )
        assert len(src.tokens) == 0
        src.verify(body(), {}, NOW)

    def test_bounded(self) -> None:
        src = source(options={"replay_cache_size": 2})
        for _ in range(3):
            request = src.sign_request(body(), now=NOW)
            src.verify(request.body, request.headers, NOW)
        assert len(src.tokens) == 2

    def test_expired_tokens_are_dropped(self) -> None:
        cache = TokenCache(10)
        assert cache.remember("a", "e1", expires=100, now=0)
        assert cache.remember("b", "e2", expires=200, now=50)
        assert not cache.remember("a", "e3", expires=100, now=99)
        assert cache.remember("c", "e4", expires=300, now=150)
        assert len(cache) == 2  # "a" expired at 100
        assert cache.remember("a", "e5", expires=400, now=150)


class TestDescribe:
    def test_json_event(self) -> None:
        described = source().describe(body(), {}, NOW)
        assert described.dedup_key == "CPgfbmQMTCKtHW6uIWtuVe"
        assert described.type == "delivered"
        assert described.ordering_key == "20260212.abcdef@mg.example.com"
        assert described.occurred_at == 1770920770.5

    def test_legacy_form_event(self) -> None:
        sent = form(event="bounced", **{"Message-Id": "<20130503.1@mg.example.com>"})
        described = source().describe(sent, {}, NOW)
        assert described.dedup_key == body_digest(sent)
        assert described.type == "bounced"
        assert described.ordering_key == "<20130503.1@mg.example.com>"
        assert described.occurred_at == float(TIMESTAMP)

    def test_route_post_is_inbound(self) -> None:
        sent = form(recipient="support@mg.example.com", subject="Help", **{"body-plain": "hi"})
        assert source().describe(sent, {}, NOW).type == "inbound"

    def test_settings_win_on_either_shape(self) -> None:
        src = source(type="body:event-data.recipient", ordering_key="body:recipient")
        assert src.describe(body(), {}, NOW).type == "alice@example.org"
        assert src.describe(form(recipient="b@x.org"), {}, NOW).ordering_key == "b@x.org"

    def test_junk(self) -> None:
        described = source().describe(b"\x00{", {}, NOW)
        assert (described.type, described.occurred_at) == ("unknown", None)

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source()
        samples = src.samples(NOW)
        assert {"delivered", "opened", "clicked", "failed"} <= set(samples)
        keys = set()
        for kind, sample in samples.items():
            src.verify(sample, {}, NOW)  # samples come signed, as Mailgun sends them
            request = src.sign_request(sample, now=NOW)
            src.verify(request.body, request.headers, NOW)
            described = src.describe(request.body, request.headers, NOW)
            assert described.type == kind
            assert described.ordering_key
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)


class TestDiagnose:
    def hints(self, src: Source, sent: bytes, error: VerificationError) -> str:
        return " ".join(src.diagnose(Inbound(sent, {}), NOW, error))

    def test_each_reason_has_its_hint(self) -> None:
        src = source()
        assert "captured" in self.hints(src, body(), VerificationError("replayed_token"))
        assert "no signature" in self.hints(src, b"{}", VerificationError("missing_field"))
        text = self.hints(src, body(), VerificationError("no_matching_signature"))
        assert "HTTP webhook signing key" in text and "subaccount" not in text
        parent = body(**{"parent-signature": SIGNATURE})
        assert "subaccount" in self.hints(src, parent, VerificationError("no_matching_signature"))
        stale = VerificationError("timestamp_too_old", offset=3600)
        assert "8h30m" in self.hints(src, body(), stale)

    def test_diagnosis_records_no_token(self) -> None:
        src = source()
        src.diagnose(Inbound(body(), {}), NOW, VerificationError("no_matching_signature"))
        assert len(src.tokens) == 0


class TestSettings:
    @pytest.mark.parametrize("size", [0, -1, "10", 2.5, True])
    def test_replay_cache_size(self, size: object) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"replay_cache_size": size})
        assert caught.value.key == "sources.mail.replay_cache_size"

    def test_secrets_and_options(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="mail", provider="mailgun"))
        assert caught.value.key == "sources.mail.secrets"
        with pytest.raises(ConfigError) as caught:
            source(options={"api_key": "x"})
        assert caught.value.key == "sources.mail.api_key"
        with pytest.raises(ConfigError):
            source(header="X-Mailgun-Signature")
