"""Provider ``zoom``: the reference example, URL validation (also on the wire), the
composite dedup key Zoom's missing delivery id calls for, and every reason."""

from __future__ import annotations

import hashlib
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

NOW = 1_700_000_000
SECRET = "zoom_secret_token"
OTHER = "another_secret_token"
THIRD = "a_third_secret_token"

# The reference's example (stdlib HMAC; Zoom publishes no library vector).
BODY = b'{"event":"meeting.started","payload":{"account_id":"abc"},"event_ts":1700000000000}'
SIGNATURE = "v0=2d1cc1e93aec239e4b6385fee0380dee3eb697ec172492bff19620cd15e20efc"
PLAIN_TOKEN = "qgg8vlvZRS6UYooatFL8Aw"
ENCRYPTED_TOKEN = "bd48235863f4a6323ccc4963c594908b7c97f88b4a6a95278f4f093690b12726"

MEETING = {
    "event": "meeting.participant_joined",
    "event_ts": 1700000000123,
    "payload": {
        "account_id": "AAAAAABBBB",
        "object": {
            "id": 85746065432,
            "uuid": "4444AAAiAAAAAiAiAiiAii==",
            "host_id": "x1yCzABCDEfg23HiJKl4mN",
            "topic": "Weekly planning",
            "participant": {"user_id": "16778240", "user_name": "Ada", "id": "iFxeBPYun6"},
        },
    },
}


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="zoom", provider="zoom", secrets=secrets or (SECRET,), **kwargs)
    )


def encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def headers(signature: str = SIGNATURE, timestamp: str = str(NOW)) -> dict[str, str]:
    return {"x-zm-request-timestamp": timestamp, "x-zm-signature": signature}


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value.reason


def validation(plain: object = PLAIN_TOKEN) -> bytes:
    payload = {} if plain is None else {"plainToken": plain}
    return encode(
        {"payload": payload, "event_ts": 1654503849680, "event": "endpoint.url_validation"}
    )


class TestSignature:
    def test_reference_example(self) -> None:
        source().verify(BODY, headers(), NOW)
        expected = "v0=" + hmac.new(SECRET.encode(), b"v0:1700000000:" + BODY, "sha256").hexdigest()
        assert expected == SIGNATURE

    def test_worked_example(self) -> None:
        src = source()
        made = src.sign_headers(BODY, now=NOW)
        assert made == {
            "content-type": "application/json",
            "x-zm-request-timestamp": str(NOW),
            "x-zm-signature": SIGNATURE,
        }
        request = src.sign_request(BODY, now=NOW)
        assert (request.body, request.headers) == (BODY, made)

    def test_tampered_body_and_wrong_secret(self) -> None:
        assert reason(source(), BODY.replace(b"abc", b"abd"), headers()) == "no_matching_signature"
        assert reason(source(OTHER), BODY, headers()) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("offset", "expected"), [(301, "timestamp_too_old"), (-301, "timestamp_too_new")]
    )
    def test_stale_either_way(self, offset: int, expected: str) -> None:
        source().verify(BODY, headers(), NOW + 300)
        source().verify(BODY, headers(), NOW - 300)
        assert reason(source(), BODY, headers(), NOW + offset) == expected

    def test_rotation(self) -> None:
        src = source(OTHER, SECRET)
        for index in (0, 1):
            src.verify(BODY, src.sign_headers(BODY, now=NOW, secret_index=index), NOW)
        forged = source(THIRD).sign_headers(BODY, now=NOW)
        assert reason(src, BODY, forged) == "no_matching_signature"

    @pytest.mark.parametrize(
        ("sent", "expected"),
        [
            ({"x-zm-request-timestamp": str(NOW)}, "missing_header"),
            ({"x-zm-signature": SIGNATURE}, "missing_header"),
            (headers(signature=SIGNATURE[3:]), "malformed_header"),
            (headers(timestamp="1700000000000000"), "malformed_header"),
            (headers(timestamp="2023-11-14T22:13:20Z"), "malformed_header"),
        ],
    )
    def test_missing_and_malformed_headers(self, sent: dict[str, str], expected: str) -> None:
        assert reason(source(), BODY, sent) == expected


class TestHandshake:
    def test_reference_example(self) -> None:
        src = source()
        body = validation()
        sent = src.sign_headers(body, now=NOW)
        src.verify(body, sent, NOW)
        answer = src.handshake(Inbound(body, sent), NOW)
        assert answer is not None
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert json.loads(answer.body) == {
            "plainToken": PLAIN_TOKEN,
            "encryptedToken": ENCRYPTED_TOKEN,
        }

    def test_answers_with_the_secret_that_signed(self) -> None:
        src = source(OTHER, SECRET)
        body = validation()
        sent = src.sign_headers(body, now=NOW, secret_index=1)
        answer = src.handshake(Inbound(body, sent), NOW)
        assert answer is not None
        assert json.loads(answer.body)["encryptedToken"] == ENCRYPTED_TOKEN
        first = src.handshake(Inbound(body, src.sign_headers(body, now=NOW)), NOW)
        assert first is not None
        expected = hmac.new(OTHER.encode(), PLAIN_TOKEN.encode(), hashlib.sha256).hexdigest()
        assert json.loads(first.body)["encryptedToken"] == expected

    @pytest.mark.parametrize("plain", [None, "", 7])
    def test_no_plain_token_is_refused(self, plain: object) -> None:
        body = validation(plain)
        with pytest.raises(VerificationError) as caught:
            source().handshake(Inbound(body, source().sign_headers(body, now=NOW)), NOW)
        assert caught.value.reason == "bad_token"

    def test_events_are_not_handshakes(self) -> None:
        assert source().handshake(Inbound(BODY, headers()), NOW) is None
        mention = encode(
            {"event": "meeting.started", "payload": {"topic": "endpoint.url_validation"}}
        )
        assert source().handshake(Inbound(mention, headers()), NOW) is None

    async def test_on_the_wire(self) -> None:
        settings = SourceSettings(name="zoom", provider="zoom", secrets=(SECRET,))
        hw = Hookwise(
            settings=Settings(store=StoreSettings(url="memory://"), sources={"zoom": settings})
        )
        body = validation()
        signed = build_source(settings).sign_request(body, now=time.time())
        transport = httpx.ASGITransport(app=hw.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://zoom.test") as client:
            answer = await client.post("/hooks/zoom", content=signed.body, headers=signed.headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.json() == {"plainToken": PLAIN_TOKEN, "encryptedToken": ENCRYPTED_TOKEN}
            forged = await client.post(
                "/hooks/zoom", content=body, headers={**signed.headers, "x-zm-signature": SIGNATURE}
            )
            assert forged.status_code == 401


class TestDescribe:
    def test_composite_dedup_key_type_order_and_time(self) -> None:
        described = source().describe(encode(MEETING), {}, NOW)
        payload = json.dumps(MEETING["payload"], sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        assert described.dedup_key == (
            f"meeting.participant_joined:1700000000123:4444AAAiAAAAAiAiAiiAii==:{digest}"
        )
        assert described.type == "meeting.participant_joined"
        assert described.ordering_key == "4444AAAiAAAAAiAiAiiAii=="
        assert described.occurred_at == 1700000000.123

    def test_a_retry_written_differently_is_the_same_event(self) -> None:
        src = source()
        compact = src.describe(encode(MEETING), {}, NOW)
        spaced = src.describe(json.dumps(MEETING, indent=2).encode(), {}, NOW)
        assert spaced.dedup_key == compact.dedup_key

    def test_two_participants_in_one_millisecond_stay_two_events(self) -> None:
        other = json.loads(json.dumps(MEETING))
        other["payload"]["object"]["participant"]["user_id"] = "16778241"
        src = source()
        assert (
            src.describe(encode(MEETING), {}, NOW).dedup_key
            != src.describe(encode(other), {}, NOW).dedup_key
        )

    def test_object_id_without_uuid(self) -> None:
        event = {
            "event": "user.updated",
            "event_ts": 1700000000000,
            "payload": {"object": {"id": "KDcuGIm1QgePTO8WbOqwIQ"}},
        }
        described = source().describe(encode(event), {}, NOW)
        assert described.dedup_key.startswith("user.updated:1700000000000:KDcuGIm1QgePTO8WbOqwIQ:")
        assert described.ordering_key == "KDcuGIm1QgePTO8WbOqwIQ"

    def test_without_event_ts_the_body_hash(self) -> None:
        body = encode({"event": "meeting.started", "payload": {}})
        described = source().describe(body, {}, NOW)
        assert described.dedup_key == body_digest(body)
        assert described.type == "meeting.started"
        assert described.occurred_at is None

    def test_settings_win(self) -> None:
        src = source(dedup_key="payload.object.participant.id", ordering_key="payload.account_id")
        described = src.describe(encode(MEETING), {}, NOW)
        assert (described.dedup_key, described.ordering_key) == ("iFxeBPYun6", "AAAAAABBBB")

    def test_junk_falls_back(self) -> None:
        for body in (b"", b"[1]", b"\xff", b'{"event": ["x"], "event_ts": "soon"}'):
            described = source().describe(body, {}, NOW)
            assert described.dedup_key == body_digest(body)
            assert described.type == "unknown"
            assert described.occurred_at is None

    def test_samples_verify_and_describe_as_their_type(self) -> None:
        src = source()
        samples = src.samples(NOW)
        assert len(samples) >= 3
        keys = set()
        for kind, body in samples.items():
            request = src.sign_request(body, now=NOW)
            src.verify(request.body, request.headers, NOW)
            assert src.handshake(Inbound(request.body, request.headers), NOW) is None
            described = src.describe(request.body, request.headers, NOW)
            assert described.type == kind
            assert described.ordering_key
            assert described.occurred_at is not None and abs(described.occurred_at - NOW) < 2
            keys.add(described.dedup_key)
        assert len(keys) == len(samples)


class TestDiagnose:
    def hints(self, src: Source, body: bytes, sent: dict[str, str]) -> str:
        error = VerificationError("no_matching_signature")
        return " ".join(src.diagnose(Inbound(body, sent), NOW, error))

    def test_verification_token_in_secrets(self) -> None:
        text = self.hints(
            source("verification-token-x"),
            BODY,
            {**headers(), "authorization": "verification-token-x"},
        )
        assert "Verification Token" in text
        assert "verification-token-x" not in text

    def test_url_validation_names_the_secret_token(self) -> None:
        body = validation()
        text = self.hints(source(OTHER), body, source().sign_headers(body, now=NOW))
        assert "Secret Token" in text

    def test_a_plain_mismatch_says_nothing_specific(self) -> None:
        assert "Verification Token" not in self.hints(source(OTHER), BODY, headers())


class TestSettings:
    def test_secrets_are_required(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="zoom", provider="zoom"))
        assert caught.value.key == "sources.zoom.secrets"

    def test_scheme_settings_and_options_are_refused(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(timestamp_header="X-Time")
        assert caught.value.key == "sources.zoom.timestamp_header"
        with pytest.raises(ConfigError) as caught:
            source(options={"verification_token": "x"})
        assert caught.value.key == "sources.zoom.verification_token"
