"""Provider ``slack``: the official vector, slack_sdk as the oracle, every body shape,
the url_verification handshake on the wire, and the empty answer to commands."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from hookwise import Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers._base import body_digest
from hookwise.providers.slack import SlackSource
from hookwise.store import EventFilter

NOW = 1_700_000_000
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OTHER = "0123456789abcdef0123456789abcdef"
THIRD = "fedcba9876543210fedcba9876543210"

# Slack's documented example (docs.slack.dev "Verifying requests from Slack"; slack_sdk tests).
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

EVENT = {
    "token": "XXYYZZ",
    "team_id": "T061EG9R6",
    "api_app_id": "A0MDYCDME",
    "event": {
        "type": "message",
        "channel": "C024BE91L",
        "user": "U2147483697",
        "text": "Live long and prospect.",
        "ts": "1355517523.000005",
    },
    "type": "event_callback",
    "event_id": "Ev0PV52K21",
    "event_time": 1355517523,
}


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.moment = now

    def now(self) -> float:
        return self.moment


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="slack", provider="slack", secrets=secrets or (SECRET,), **kwargs)
    )


def encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value.reason


def vector_headers() -> dict[str, str]:
    return {"x-slack-request-timestamp": VECTOR_TIMESTAMP, "x-slack-signature": VECTOR}


class TestSignature:
    def test_official_vector(self) -> None:
        src = source()
        src.verify(VECTOR_BODY, vector_headers(), int(VECTOR_TIMESTAMP))
        made = src.sign_headers(VECTOR_BODY, now=int(VECTOR_TIMESTAMP))
        assert made["x-slack-signature"] == VECTOR
        assert made["content-type"] == "application/x-www-form-urlencoded"

    def test_worked_example(self) -> None:
        src = source()
        body = encode(EVENT)
        request = src.sign_request(body, now=NOW)
        assert request.body == body
        assert request.headers["x-slack-request-timestamp"] == str(NOW)
        assert request.headers["content-type"] == "application/json"
        src.verify(body, request.headers, NOW)

    def test_tampered_body_and_wrong_secret(self) -> None:
        src = source()
        sent = vector_headers()
        now = int(VECTOR_TIMESTAMP)
        assert reason(src, VECTOR_BODY + b"&x=1", sent, now) == "no_matching_signature"
        assert reason(source(OTHER), VECTOR_BODY, sent, now) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("offset", "expected"), [(301, "timestamp_too_old"), (-301, "timestamp_too_new")]
    )
    def test_stale_either_way(self, offset: int, expected: str) -> None:
        src = source()
        sent = vector_headers()
        now = int(VECTOR_TIMESTAMP)
        src.verify(VECTOR_BODY, sent, now + 300)
        src.verify(VECTOR_BODY, sent, now - 300)
        with pytest.raises(VerificationError) as caught:
            src.verify(VECTOR_BODY, sent, now + offset)
        assert caught.value.reason == expected
        assert caught.value.offset == offset

    def test_tolerance_setting(self) -> None:
        src = source(tolerance=30)
        assert reason(src, VECTOR_BODY, vector_headers(), 1531420649) == "timestamp_too_old"

    def test_rotation(self) -> None:
        src = source(OTHER, SECRET)
        body = encode(EVENT)
        for index in (0, 1):
            src.verify(body, src.sign_headers(body, now=NOW, secret_index=index), NOW)
        forged = source(THIRD).sign_headers(body, now=NOW)
        assert reason(src, body, forged) == "no_matching_signature"
        with pytest.raises(ValueError, match="out of range"):
            src.sign_headers(body, now=NOW, secret_index=2)

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"x-slack-signature": None}, "missing_header"),
            ({"x-slack-request-timestamp": None}, "missing_header"),
            ({"x-slack-signature": "a2114d57b48eac39"}, "malformed_header"),
            ({"x-slack-signature": "v1=" + VECTOR[3:]}, "malformed_header"),
            ({"x-slack-request-timestamp": "yesterday"}, "malformed_header"),
        ],
    )
    def test_missing_and_malformed_headers(
        self, change: dict[str, str | None], expected: str
    ) -> None:
        sent = {**vector_headers(), **change}
        headers = {name: value for name, value in sent.items() if value is not None}
        assert reason(source(), VECTOR_BODY, headers, int(VECTOR_TIMESTAMP)) == expected


class TestOracle:
    def test_hookwise_verifies_what_slack_sdk_signs(self) -> None:
        verifier = SignatureVerifier(SECRET, clock=FixedClock(NOW))
        body = encode(EVENT)
        signature = verifier.generate_signature(timestamp=str(NOW), body=body)
        assert signature is not None
        sent = {"x-slack-request-timestamp": str(NOW), "x-slack-signature": signature}
        source().verify(body, sent, NOW)

    def test_slack_sdk_verifies_what_hookwise_signs(self) -> None:
        verifier = SignatureVerifier(SECRET, clock=FixedClock(NOW))
        src = source()
        for body in src.samples(NOW).values():
            request = src.sign_request(body, now=NOW)
            assert verifier.is_valid_request(request.body, request.headers)
        assert not verifier.is_valid_request(b"{}", src.sign_headers(encode(EVENT), now=NOW))


class TestDescribe:
    def test_events_api(self) -> None:
        described = source().describe(encode(EVENT), {}, NOW)
        assert described.dedup_key == "Ev0PV52K21"
        assert described.type == "message"
        assert described.ordering_key == "C024BE91L"
        assert described.occurred_at == 1355517523.0

    def test_a_retry_is_the_same_event(self) -> None:
        src = source()
        body = encode(EVENT)
        first = src.describe(body, {}, NOW)
        retry = src.describe(body, {"x-slack-retry-num": "1", "x-slack-retry-reason": "x"}, NOW)
        assert retry == first

    def test_reaction_orders_by_the_reacted_message_channel(self) -> None:
        event = {
            **EVENT,
            "event": {
                "type": "reaction_added",
                "user": "U1",
                "reaction": "tada",
                "item": {"type": "message", "channel": "C777", "ts": "1.2"},
            },
        }
        described = source().describe(encode(event), {}, NOW)
        assert (described.type, described.ordering_key) == ("reaction_added", "C777")

    def test_channel_object_gives_its_id(self) -> None:
        event = {
            **EVENT,
            "event": {"type": "channel_created", "channel": {"id": "C9", "name": "x"}},
        }
        described = source().describe(encode(event), {}, NOW)
        assert (described.type, described.ordering_key) == ("channel_created", "C9")

    def test_events_api_body_without_an_event(self) -> None:
        body = encode(
            {
                "token": "t",
                "type": "app_rate_limited",
                "team_id": "T1",
                "minute_rate_limited": 1518467820,
                "api_app_id": "A1",
            }
        )
        described = source().describe(body, {}, NOW)
        assert described.type == "app_rate_limited"
        assert described.dedup_key == body_digest(body)
        assert described.occurred_at is None

    def test_slash_command(self) -> None:
        described = source().describe(VECTOR_BODY, {}, NOW)
        assert described.dedup_key == "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        assert described.type == "/webhook-collect"
        assert described.ordering_key == "G8PSS9T3V"
        assert described.occurred_at is None

    def test_interactivity_payload(self) -> None:
        payload = {
            "type": "view_submission",
            "trigger_id": "12466734323.1395872398.abc",
            "team": {"id": "T1"},
            "user": {"id": "U1"},
            "view": {"id": "V1", "callback_id": "deploy"},
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        described = source().describe(body, {}, NOW)
        assert described.type == "view_submission"
        assert described.dedup_key == "12466734323.1395872398.abc"
        assert described.ordering_key is None

    def test_settings_win(self) -> None:
        src = source(type="body:event.user", ordering_key="team_id", dedup_key="header:X-Id")
        described = src.describe(encode(EVENT), {"x-id": "d-1"}, NOW)
        assert (described.dedup_key, described.type, described.ordering_key) == (
            "d-1",
            "U2147483697",
            "T061EG9R6",
        )
        command = source(type="body:channel_name").describe(VECTOR_BODY, {}, NOW)
        assert command.type == "foobar"

    def test_junk_bodies_fall_back(self) -> None:
        for body in (b"", b"\xff\xfe", b"{not json", b"payload=%7Bbroken"):
            described = source().describe(body, {}, NOW)
            assert described.dedup_key == body_digest(body)
            assert described.type in ("unknown",)

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source()
        samples = src.samples(NOW)
        assert {"message", "app_mention", "reaction_added", "/deploy", "block_actions"} <= set(
            samples
        )
        keys = set()
        for kind, body in samples.items():
            request = src.sign_request(body, now=NOW)
            src.verify(request.body, request.headers, NOW)
            assert src.handshake(Inbound(request.body, request.headers), NOW) is None
            described = src.describe(request.body, request.headers, NOW)
            assert described.type == kind
            assert described.ordering_key and described.ordering_key.startswith("C")
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)
        assert src.samples(NOW)["message"] != samples["message"]


class TestHandshake:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"

    def body(self, **extra: object) -> bytes:
        document = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification", **extra}
        return encode(document)

    def test_challenge_is_echoed_as_plain_text(self) -> None:
        src = source()
        body = self.body(challenge=self.challenge)
        answer = src.handshake(Inbound(body, {}), NOW)
        assert answer is not None
        assert (answer.status, answer.body) == (200, self.challenge.encode())
        assert answer.content_type.startswith("text/plain")

    @pytest.mark.parametrize("challenge", [None, "", 42])
    def test_no_challenge_is_refused(self, challenge: object) -> None:
        extra = {} if challenge is None else {"challenge": challenge}
        with pytest.raises(VerificationError) as caught:
            source().handshake(Inbound(self.body(**extra), {}), NOW)
        assert caught.value.reason == "bad_token"

    def test_events_are_not_handshakes(self) -> None:
        src = source()
        assert src.handshake(Inbound(encode(EVENT), {}), NOW) is None
        assert src.handshake(Inbound(b"type=url_verification", {}), NOW) is None

    async def test_on_the_wire(self) -> None:
        settings = SourceSettings(name="slack", provider="slack", secrets=(SECRET,))
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"slack": settings})
        )
        src = build_source(settings)
        body = self.body(challenge=self.challenge)
        now = time.time()
        signed = src.sign_request(body, now=now)
        transport = httpx.ASGITransport(app=hw.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://slack.test") as client:
            answer = await client.post("/hooks/slack", content=signed.body, headers=signed.headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.content == self.challenge.encode()
            unsigned = await client.post("/hooks/slack", content=body)
            assert unsigned.status_code == 401


class TestSslCheck:
    def test_unsigned_ssl_check_gets_an_empty_answer(self) -> None:
        src = source()
        body = b"ssl_check=1&token=xyzz0WbapA4vBCDEFasx0q6G"
        src.verify(body, {}, NOW)
        answer = src.handshake(Inbound(body, {}), NOW)
        assert answer is not None
        assert (answer.status, answer.body) == (200, b"")

    @pytest.mark.parametrize(
        "body",
        [
            b"ssl_check=0&token=x",
            b"ssl_check=true&token=x",
            b"ssl_check=0&ssl_check=1",
            b'{"ssl_check": "1"}',
        ],
    )
    def test_anything_else_must_be_signed(self, body: bytes) -> None:
        assert reason(source(), body, {}) == "missing_header"
        assert source().handshake(Inbound(body, {}), NOW) is None

    async def test_a_smuggled_command_is_never_stored(self) -> None:
        settings = SourceSettings(name="slack", provider="slack", secrets=(SECRET,))
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"slack": settings})
        )
        smuggled = b"ssl_check=1&" + VECTOR_BODY
        receiver = hw.asgi()
        transport = httpx.ASGITransport(app=receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://slack.test") as client:
            answer = await client.post("/hooks/slack", content=smuggled)
            assert (answer.status_code, answer.content) == (200, b"")
            assert dict(receiver.outcomes) == {("slack", "handshake"): 1}  # nothing stored
            signed = build_source(settings).sign_request(VECTOR_BODY, now=time.time())
            stored = await client.post("/hooks/slack", content=signed.body, headers=signed.headers)
            # A slash command is acknowledged with Slack's empty 200, once stored.
            assert (stored.status_code, stored.content) == (200, b"")
            assert receiver.outcomes[("slack", "accepted")] == 1  # not a duplicate of anything
            assert len(await receiver.store.list_events(EventFilter(limit=10))) == 1


class TestAcknowledgement:
    def test_commands_and_interactivity_get_an_empty_answer(self) -> None:
        src = source()
        assert isinstance(src, SlackSource)
        answer = src.acknowledgement(VECTOR_BODY, {})
        assert answer is not None
        assert (answer.status, answer.body) == (200, b"")
        action = src.samples(NOW)["block_actions"]
        assert src.acknowledgement(action, {}) == answer

    def test_events_api_keeps_the_usual_answer(self) -> None:
        src = source()
        assert isinstance(src, SlackSource)
        assert src.acknowledgement(encode(EVENT), {}) is None


class TestDiagnose:
    def hints(self, src: Source, body: bytes, headers: dict[str, str], error: str) -> str:
        request = Inbound(body, headers)
        return " ".join(src.diagnose(request, NOW, VerificationError(error)))

    def test_verification_token_configured(self) -> None:
        src = source("xyzz0WbapA4vBCDEFasx0q6G")
        text = self.hints(src, VECTOR_BODY, vector_headers(), "no_matching_signature")
        assert "Verification Token" in text
        assert "24 characters long" in text
        assert "xyzz0WbapA4vBCDEFasx0q6G" not in text

    def test_a_right_looking_secret_gets_no_length_hint(self) -> None:
        text = self.hints(source(OTHER), VECTOR_BODY, vector_headers(), "no_matching_signature")
        assert "characters long" not in text
        assert "Verification Token" not in text

    def test_retry_is_named(self) -> None:
        headers = {**vector_headers(), "x-slack-retry-num": "2"}
        text = self.hints(source(), VECTOR_BODY, headers, "timestamp_too_old")
        assert "retry number 2" in text

    def test_reserialized_json_is_spotted(self) -> None:
        src = source()
        body = encode(EVENT)
        sent = src.sign_headers(body, now=NOW)
        spaced = json.dumps(EVENT).encode()
        text = self.hints(src, spaced, sent, "no_matching_signature")
        assert "written compact" in text


class TestSettings:
    def test_secrets_are_required(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="slack", provider="slack"))
        assert caught.value.key == "sources.slack.secrets"

    @pytest.mark.parametrize(
        ("field", "value"), [("header", "X-Sig"), ("prefix", "v0="), ("algorithm", "sha1")]
    )
    def test_scheme_settings_are_refused(self, field: str, value: str) -> None:
        with pytest.raises(ConfigError) as caught:
            source(**{field: value})
        assert caught.value.key == f"sources.slack.{field}"

    def test_unknown_option(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"verify_token": "x"})
        assert caught.value.key == "sources.slack.verify_token"

    def test_negative_tolerance(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(tolerance=-1)
        assert caught.value.key == "sources.slack.tolerance"

    def test_secrets_are_redacted_values(self) -> None:
        assert source(SECRET, OTHER).secret_values == (SECRET, OTHER)
