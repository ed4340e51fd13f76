"""Provider ``twitch``: the reference example, RFC 3339 timestamps, the callback
verification (also on the wire), revocations as events, every reason."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import httpx
import pytest

from hookwise import Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers._base import body_digest
from hookwise.signatures import twitch

SECRET = "twitch_secret_123"
OTHER = "another-secret-456"
THIRD = "a-third-secret-789"

# The reference's example (stdlib HMAC; Twitch publishes no library vector).
MSG_ID = "e76c6bd4-55c9-4987-8304-da1588d8988b"
TIMESTAMP = "2019-11-16T10:11:12.634234626Z"
BODY = b'{"subscription":{"type":"channel.follow"},"event":{}}'
SIGNATURE = "sha256=2362ebe94895b70e1146d0142e2b99e0cce8cea170eecc0a98e5fc2dac081eef"
SENT_AT = 1573899072.634234626

FOLLOW = {
    "subscription": {
        "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
        "status": "enabled",
        "type": "channel.follow",
        "version": "2",
        "cost": 0,
        "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
        "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
        "created_at": "2019-11-16T10:11:12.634234626Z",
    },
    "event": {
        "user_id": "1234",
        "user_login": "cool_user",
        "user_name": "Cool_User",
        "broadcaster_user_id": "1337",
        "broadcaster_user_login": "cooler_user",
        "broadcaster_user_name": "Cooler_User",
        "followed_at": "2020-07-15T18:16:11.17106713Z",
    },
}


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="twitch", provider="twitch", secrets=secrets or (SECRET,), **kwargs)
    )


def encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def headers(**change: str | None) -> dict[str, str]:
    sent: dict[str, str | None] = {
        "twitch-eventsub-message-id": MSG_ID,
        "twitch-eventsub-message-timestamp": TIMESTAMP,
        "twitch-eventsub-message-signature": SIGNATURE,
        "twitch-eventsub-message-type": "notification",
        **{name.replace("_", "-"): value for name, value in change.items()},
    }
    return {name: value for name, value in sent.items() if value is not None}


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = SENT_AT) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value.reason


class TestTime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (TIMESTAMP, SENT_AT),
            ("2019-11-16T10:11:12Z", 1573899072.0),
            ("2019-11-16T12:11:12.5+02:00", 1573899072.5),
            ("2019-11-16t10:11:12.000000001z", 1573899072.000000001),
        ],
    )
    def test_rfc3339(self, text: str, expected: float) -> None:
        assert twitch.parse_time(text) == pytest.approx(expected, abs=1e-6)

    @pytest.mark.parametrize(
        "text",
        [
            "1573899072",
            "2019-11-16T10:11:12",
            "2019-13-40T10:11:12Z",
            "2019-11-16T10:11:12+24:00",
            "2019-11-16T10:11:12.1234567890Z",
        ],
    )
    def test_not_rfc3339(self, text: str) -> None:
        with pytest.raises(VerificationError) as caught:
            twitch.parse_time(text)
        assert caught.value.reason == "malformed_header"

    def test_format_round_trips(self) -> None:
        text = twitch.format_time(SENT_AT)
        assert text.endswith("Z") and len(text.split(".")[1]) == 10
        assert twitch.parse_time(text) == pytest.approx(SENT_AT, abs=1e-6)


class TestSignature:
    def test_reference_example(self) -> None:
        source().verify(BODY, headers(), SENT_AT)
        content = MSG_ID.encode() + TIMESTAMP.encode() + BODY
        assert "sha256=" + hmac.new(SECRET.encode(), content, "sha256").hexdigest() == SIGNATURE

    def test_worked_example(self) -> None:
        src = source()
        body = encode(FOLLOW)
        made = src.sign_headers(body, now=1700000000.25, delivery_id="msg-1")
        assert made["twitch-eventsub-message-id"] == "msg-1"
        assert made["twitch-eventsub-message-timestamp"] == "2023-11-14T22:13:20.250000000Z"
        assert made["twitch-eventsub-message-type"] == "notification"
        assert made["twitch-eventsub-subscription-type"] == "channel.follow"
        assert made["twitch-eventsub-subscription-version"] == "2"
        assert made["twitch-eventsub-message-signature"] == twitch.sign(
            SECRET.encode(), "msg-1", "2023-11-14T22:13:20.250000000Z", body
        )
        src.verify(body, made, 1700000000)
        assert src.sign_headers(body, now=0)["twitch-eventsub-message-id"] != "msg-1"

    def test_tampered_and_wrong_secret(self) -> None:
        assert reason(source(), BODY + b" ", headers()) == "no_matching_signature"
        assert reason(source(), BODY, headers(twitch_eventsub_message_id="x")) == (
            "no_matching_signature"
        )
        assert reason(source(OTHER), BODY, headers()) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("offset", "expected"), [(301, "timestamp_too_old"), (-301, "timestamp_too_new")]
    )
    def test_stale_either_way(self, offset: int, expected: str) -> None:
        source().verify(BODY, headers(), SENT_AT + 300)
        source().verify(BODY, headers(), SENT_AT - 300)
        assert reason(source(), BODY, headers(), SENT_AT + offset) == expected

    def test_twitch_ten_minutes_when_configured(self) -> None:
        source(tolerance=600).verify(BODY, headers(), SENT_AT + 599)

    def test_rotation(self) -> None:
        src = source(OTHER, SECRET)
        body = encode(FOLLOW)
        for index in (0, 1):
            src.verify(body, src.sign_headers(body, now=SENT_AT, secret_index=index), SENT_AT)
        forged = source(THIRD).sign_headers(body, now=SENT_AT)
        assert reason(src, body, forged) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"twitch_eventsub_message_id": None}, "missing_header"),
            ({"twitch_eventsub_message_signature": None}, "missing_header"),
            ({"twitch_eventsub_message_timestamp": None}, "missing_header"),
            ({"twitch_eventsub_message_signature": "sha1=" + "0" * 40}, "malformed_header"),
            ({"twitch_eventsub_message_signature": SIGNATURE[:-1] + "g"}, "malformed_header"),
            ({"twitch_eventsub_message_signature": SIGNATURE[7:]}, "malformed_header"),
            ({"twitch_eventsub_message_timestamp": "1573899072"}, "malformed_header"),
        ],
    )
    def test_missing_and_malformed_headers(
        self, change: dict[str, str | None], expected: str
    ) -> None:
        assert reason(source(), BODY, headers(**change)) == expected

    def test_signature_prefix_and_hex_case_are_tolerated(self) -> None:
        sent = headers(twitch_eventsub_message_signature="SHA256=" + SIGNATURE[7:].upper())
        source().verify(BODY, sent, SENT_AT)


class TestHandshake:
    challenge = "pogchamp-kappa-360noscope-vohiyo"

    def verification(self, **extra: object) -> bytes:
        subscription = {**FOLLOW["subscription"], "status": "webhook_callback_verification_pending"}
        return encode({"subscription": subscription, **extra})

    def test_challenge_is_echoed_as_plain_text(self) -> None:
        src = source()
        body = self.verification(challenge=self.challenge)
        sent = src.sign_headers(body, now=SENT_AT)
        assert sent["twitch-eventsub-message-type"] == "webhook_callback_verification"
        src.verify(body, sent, SENT_AT)
        answer = src.handshake(Inbound(body, sent), SENT_AT)
        assert answer is not None
        assert (answer.status, answer.body) == (200, self.challenge.encode())
        assert answer.content_type.startswith("text/plain")

    @pytest.mark.parametrize("challenge", [None, "", 12])
    def test_no_challenge_is_refused(self, challenge: object) -> None:
        extra = {} if challenge is None else {"challenge": challenge}
        sent = headers(twitch_eventsub_message_type="webhook_callback_verification")
        with pytest.raises(VerificationError) as caught:
            source().handshake(Inbound(self.verification(**extra), sent), SENT_AT)
        assert caught.value.reason == "bad_token"

    def test_notifications_and_revocations_are_not_handshakes(self) -> None:
        body = self.verification(challenge=self.challenge)
        assert source().handshake(Inbound(body, headers()), SENT_AT) is None
        revoked = headers(twitch_eventsub_message_type="revocation")
        assert source().handshake(Inbound(body, revoked), SENT_AT) is None

    async def test_on_the_wire(self) -> None:
        settings = SourceSettings(name="twitch", provider="twitch", secrets=(SECRET,))
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"twitch": settings})
        )
        body = self.verification(challenge=self.challenge)
        signed = build_source(settings).sign_request(body, now=time.time())
        transport = httpx.ASGITransport(app=hw.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://twitch.test") as client:
            answer = await client.post("/hooks/twitch", content=signed.body, headers=signed.headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.text == self.challenge
            stale = {**signed.headers, "twitch-eventsub-message-timestamp": TIMESTAMP}
            refused = await client.post("/hooks/twitch", content=signed.body, headers=stale)
            assert refused.status_code == 401


class TestDescribe:
    def test_notification(self) -> None:
        described = source().describe(encode(FOLLOW), headers(), SENT_AT)
        assert described.dedup_key == MSG_ID
        assert described.type == "channel.follow"
        assert described.ordering_key == "1337"
        assert described.occurred_at == pytest.approx(SENT_AT, abs=1e-6)

    def test_revocation_is_an_event_of_its_own_type(self) -> None:
        body = encode({"subscription": {**FOLLOW["subscription"], "status": "user_removed"}})
        sent = headers(twitch_eventsub_message_type="revocation")
        described = source().describe(body, sent, SENT_AT)
        assert (described.dedup_key, described.type) == (MSG_ID, "revocation")
        assert described.ordering_key is None

    def test_settings_win(self) -> None:
        src = source(
            type="header:Twitch-Eventsub-Message-Type",
            ordering_key="event.user_id",
            occurred_at="event.followed_at",
        )
        described = src.describe(encode(FOLLOW), headers(), SENT_AT)
        assert (described.type, described.ordering_key) == ("notification", "1234")
        assert described.occurred_at == pytest.approx(1594836971.171067)

    def test_without_headers_the_body_hash(self) -> None:
        body = encode(FOLLOW)
        described = source().describe(body, {}, SENT_AT)
        assert described.dedup_key == body_digest(body)
        assert described.type == "channel.follow"
        assert described.occurred_at is None

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source()
        samples = src.samples(SENT_AT)
        assert {"channel.follow", "stream.online", "revocation"} <= set(samples)
        keys = set()
        for kind, body in samples.items():
            request = src.sign_request(body, now=SENT_AT)
            src.verify(request.body, request.headers, SENT_AT)
            assert src.handshake(Inbound(request.body, request.headers), SENT_AT) is None
            described = src.describe(request.body, request.headers, SENT_AT)
            assert described.type == kind
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)


class TestDiagnose:
    def test_names_the_subscription_whose_secret_is_missing(self) -> None:
        src = source(OTHER)
        body = encode(FOLLOW)
        sent = source().sign_headers(body, now=SENT_AT)
        hints = " ".join(
            src.diagnose(Inbound(body, sent), SENT_AT, VerificationError("no_matching_signature"))
        )
        assert "f1c2a387-161a-49f9-a165-0f21d7a4e1c4 (channel.follow)" in hints
        assert OTHER not in hints and SECRET not in hints

    def test_clock_skew(self) -> None:
        with pytest.raises(VerificationError) as caught:
            source().verify(BODY, headers(), SENT_AT + 1200)
        hints = source().diagnose(Inbound(BODY, headers()), SENT_AT + 1200, caught.value)
        assert any("20 minutes old" in hint for hint in hints)


class TestSettings:
    @pytest.mark.parametrize("secret", ["short", "x" * 101, "sécret-sécret"])
    def test_twitch_secret_rules(self, secret: str) -> None:
        with pytest.raises(ConfigError) as caught:
            source(SECRET, secret)
        assert caught.value.key == "sources.twitch.secrets"
        assert "secret number 2" in caught.value.problem
        assert secret not in str(caught.value)

    def test_secrets_are_required(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="twitch", provider="twitch"))
        assert caught.value.key == "sources.twitch.secrets"

    def test_scheme_settings_are_refused(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(signed_content="{body}")
        assert caught.value.key == "sources.twitch.signed_content"
