"""Provider ``twilio``: the official vectors, twilio-python as an oracle both ways, URL quirks."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, build_source, provider_spec
from hookwise.providers.twilio import EXAMPLE_SETTINGS, TwilioSource
from hookwise.signatures import twilio as scheme

NOW = 1_700_000_000.0
TOKEN = "12345"
PUBLIC_URL = "https://mycompany.com/myapp.php"
QUERY = "foo=1&bar=2"
URL = f"{PUBLIC_URL}?{QUERY}"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
FORM = urlencode(PARAMS).encode()
JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def source(**kwargs: Any) -> TwilioSource:
    kwargs.setdefault("secrets", (TOKEN,))
    kwargs.setdefault("public_url", PUBLIC_URL)
    built = build_source(SourceSettings(name="voice", provider="twilio", **kwargs))
    assert isinstance(built, TwilioSource)
    return built


def request(body: bytes, headers: dict[str, str], url: str = URL) -> Inbound:
    query = url.partition("?")[2]
    return Inbound(body, {k.lower(): v for k, v in headers.items()}, url=url, query=query)


def reason(src: TwilioSource, inbound: Inbound) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return caught.value.reason


def hints(src: TwilioSource, inbound: Inbound) -> tuple[str, ...]:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return src.diagnose(inbound, NOW, caught.value)


def config_error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(**kwargs)
    return caught.value


class TestOfficialVectors:
    def test_form_parameters(self) -> None:
        # twilio-python tests/unit/test_request_validator.py
        headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
        source().verify_request(request(FORM, headers), NOW)
        assert scheme.sign(b"12345", URL, scheme.form_params(FORM)) == (
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        )

    def test_parameter_order_in_the_body_does_not_matter(self) -> None:
        shuffled = urlencode(dict(reversed(PARAMS.items()))).encode()
        headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
        source().verify_request(request(shuffled, headers), NOW)

    def test_shared_key_hmac_sha256(self) -> None:
        headers = {
            "X-Twilio-Signature": "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=",
            "X-Twilio-Webhooks-Signature-Settings": (
                "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
            ),
        }
        source().verify_request(request(FORM, headers), NOW)
        # the same signature without the settings header is taken as HMAC-SHA1: refused
        del headers["X-Twilio-Webhooks-Signature-Settings"]
        assert reason(source(), request(FORM, headers)) == "no_matching_signature"

    def test_json_body_through_body_sha256(self) -> None:
        assert scheme.body_hash(JSON_BODY) == JSON_HASH
        url = f"{URL}&bodySHA256={JSON_HASH}"
        headers = {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}
        source().verify_request(request(JSON_BODY, headers, url), NOW)

    def test_json_body_that_does_not_match_its_hash_is_refused(self) -> None:
        url = f"{URL}&bodySHA256={JSON_HASH}"
        headers = {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}
        tampered = JSON_BODY.replace(b"true", b"false")
        assert reason(source(), request(tampered, headers, url)) == "no_matching_signature"


class TestOracle:
    """twilio-python's RequestValidator, both ways."""

    validator = RequestValidator(TOKEN)

    def test_library_signatures_verify_here(self) -> None:
        for algorithm in ("HMAC_SHA1", "HMAC_SHA256"):
            signature = self.validator.compute_signature(URL, PARAMS, algorithm)
            headers = {"x-twilio-signature": signature}
            if algorithm != "HMAC_SHA1":
                headers[scheme.SETTINGS_HEADER] = f"key=k,algorithm={algorithm}"
            source().verify_request(request(FORM, headers), NOW)

    def test_hookwise_signatures_verify_in_the_library(self) -> None:
        src = source()
        signed = src.sign_request(FORM, now=NOW)
        params = dict(parse_qsl(signed.body.decode(), keep_blank_values=True))
        signature = signed.headers[scheme.SIGNATURE_HEADER]
        assert self.validator.validate(PUBLIC_URL, params, signature)

    def test_hookwise_shared_key_signatures_verify_in_the_library(self) -> None:
        src = source(options={"shared_key_id": "webhooks_sharedkey_7"})
        signed = src.sign_request(FORM, now=NOW)
        settings_header = signed.headers[scheme.SETTINGS_HEADER]
        assert settings_header == "key=webhooks_sharedkey_7,algorithm=HMAC_SHA256"
        from twilio.request_validator import get_signature_algorithm

        algorithm = get_signature_algorithm(settings_header)
        params = dict(parse_qsl(signed.body.decode(), keep_blank_values=True))
        signature = signed.headers[scheme.SIGNATURE_HEADER]
        assert self.validator.validate(PUBLIC_URL, params, signature, algorithm)
        src.verify_request(request(signed.body, signed.headers, PUBLIC_URL), NOW)

    def test_hookwise_json_signatures_verify_in_the_library(self) -> None:
        signed = source().sign_request(JSON_BODY, now=NOW)
        assert signed.query == f"bodySHA256={JSON_HASH}"
        assert signed.headers["content-type"] == "application/json"
        url = f"{PUBLIC_URL}?{signed.query}"
        signature = signed.headers[scheme.SIGNATURE_HEADER]
        assert self.validator.validate(url, JSON_BODY.decode(), signature)
        source().verify_request(request(signed.body, signed.headers, url), NOW)

    def test_repeated_parameters_match_the_library(self) -> None:
        body = b"To=%2B1&MediaUrl=b&MediaUrl=a&MediaUrl=a"
        signature = self.validator.compute_signature(PUBLIC_URL, _multidict(body))
        source().verify_request(request(body, {"x-twilio-signature": signature}, PUBLIC_URL), NOW)


class _MultiDict(dict[str, str]):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


def _multidict(body: bytes) -> _MultiDict:
    return _MultiDict(parse_qsl(body.decode(), keep_blank_values=True))


class TestUrl:
    def test_explicit_default_port_either_way(self) -> None:
        with_port = scheme.sign(TOKEN.encode(), "https://mycompany.com:443/myapp.php", [])
        without_port = scheme.sign(TOKEN.encode(), PUBLIC_URL, [])
        src = source()
        src.verify_request(request(b"", {"x-twilio-signature": with_port}, PUBLIC_URL), NOW)
        url = "https://mycompany.com:443/myapp.php"
        src.verify_request(request(b"", {"x-twilio-signature": without_port}, url), NOW)

    def test_other_ports_are_not_guessed(self) -> None:
        signature = scheme.sign(TOKEN.encode(), "https://mycompany.com:8443/myapp.php", [])
        inbound = request(b"", {"x-twilio-signature": signature}, PUBLIC_URL)
        assert reason(source(), inbound) == "no_matching_signature"

    def test_the_query_is_signed(self) -> None:
        headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
        inbound = request(FORM, headers, f"{PUBLIC_URL}?foo=1&bar=3")
        assert reason(source(), inbound) == "no_matching_signature"

    def test_without_public_url_the_rebuilt_url_is_used(self) -> None:
        src = source(public_url=None)
        headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
        src.verify_request(request(FORM, headers), NOW)
        with pytest.raises(VerificationError, match="wrong_url"):
            src.verify(FORM, {"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, NOW)
        with pytest.raises(ValueError, match="public_url"):
            src.sign_headers(FORM, now=NOW)


class TestVerification:
    def test_worked_example(self) -> None:
        src = source()
        signed = src.sign_request(FORM, now=NOW, delivery_id="idem-1")
        assert signed.headers["content-type"] == "application/x-www-form-urlencoded"
        assert signed.headers["i-twilio-idempotency-token"] == "idem-1"
        src.verify_request(request(signed.body, signed.headers, PUBLIC_URL), NOW)

    def test_tampered_parameter(self) -> None:
        src = source()
        signed = src.sign_request(FORM, now=NOW)
        tampered = signed.body.replace(b"Digits=1234", b"Digits=1235")
        inbound = request(tampered, signed.headers, PUBLIC_URL)
        assert reason(src, inbound) == "no_matching_signature"

    def test_wrong_secret(self) -> None:
        signed = source(secrets=("another-token",)).sign_request(FORM, now=NOW)
        assert reason(source(), request(signed.body, signed.headers, PUBLIC_URL)) == (
            "no_matching_signature"
        )

    def test_rotation(self) -> None:
        src = source(secrets=("new-token", TOKEN))
        for index in (0, 1):
            signed = src.sign_request(FORM, now=NOW, secret_index=index)
            src.verify_request(request(signed.body, signed.headers, PUBLIC_URL), NOW)
        third = source(secrets=("third-token",)).sign_request(FORM, now=NOW)
        inbound = request(third.body, third.headers, PUBLIC_URL)
        assert reason(src, inbound) == "no_matching_signature"
        with pytest.raises(ValueError, match="out of range"):
            src.sign_request(FORM, now=NOW, secret_index=2)

    def test_missing_and_malformed_headers(self) -> None:
        src = source()
        assert reason(src, request(FORM, {})) == "missing_header"
        assert reason(src, request(FORM, {"x-twilio-signature": "  "})) == "missing_header"
        unknown = {
            "x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            scheme.SETTINGS_HEADER: "key=k,algorithm=HMAC_MD5",
        }
        assert reason(src, request(FORM, unknown)) == "unsupported_algorithm"
        garbage = {"x-twilio-signature": "not base64 at all"}
        assert reason(src, request(FORM, garbage)) == "no_matching_signature"

    @settings(max_examples=200, deadline=None)
    @given(
        body=st.binary(max_size=200),
        signature=st.text(max_size=40),
        settings_header=st.one_of(st.none(), st.text(max_size=40)),
        url=st.one_of(
            st.text(max_size=60),
            st.just("https://[::1/x?bodySHA256=1"),
            st.just("http://h:99999/x"),
        ),
    )
    def test_junk_only_raises_verification_error(
        self, body: bytes, signature: str, settings_header: str | None, url: str
    ) -> None:
        headers = {"x-twilio-signature": signature}
        if settings_header is not None:
            headers[scheme.SETTINGS_HEADER] = settings_header
        src = source()
        try:
            src.verify_request(Inbound(body, headers, url=url), NOW)
        except VerificationError:
            pass
        src.describe(body, headers, NOW)


class TestDescribe:
    status = urlencode(
        {
            "SmsSid": "SM0123",
            "SmsStatus": "delivered",
            "MessageStatus": "delivered",
            "MessageSid": "SM0123",
            "AccountSid": "AC1",
        }
    ).encode()

    def test_idempotency_token_is_the_dedup_key(self) -> None:
        described = source().describe(self.status, {"i-twilio-idempotency-token": "tok-1"}, NOW)
        assert (described.dedup_key, described.type, described.ordering_key) == (
            "tok-1",
            "message.delivered",
            "SM0123",
        )

    def test_without_a_token_the_sid_and_a_body_hash(self) -> None:
        described = source().describe(self.status, {}, NOW)
        assert described.dedup_key == "SM0123:" + hashlib.sha256(self.status).hexdigest()[:16]
        sent = self.status.replace(b"delivered", b"sent")
        other = source().describe(sent, {}, NOW)
        assert other.dedup_key != described.dedup_key  # one callback per status
        assert other.type == "message.sent"

    def test_call_and_recording_callbacks(self) -> None:
        call = urlencode(
            {
                "CallSid": "CA9",
                "CallStatus": "completed",
                "Timestamp": "Tue, 14 Nov 2023 22:13:20 +0000",
            }
        ).encode()
        described = source().describe(call, {}, NOW)
        assert (described.type, described.ordering_key, described.occurred_at) == (
            "call.completed",
            "CA9",
            1_700_000_000.0,
        )
        recording = b"CallSid=CA9&RecordingSid=RE5&RecordingStatus=completed"
        described = source().describe(recording, {}, NOW)
        assert (described.type, described.ordering_key) == ("recording.completed", "RE5")

    def test_timestamps_without_a_zone_are_utc(self) -> None:
        body = b"CallSid=CA1&CallStatus=ringing&Timestamp=Tue%2C+14+Nov+2023+22%3A13%3A20+-0000"
        assert source().describe(body, {}, NOW).occurred_at == NOW
        junk = b"CallSid=CA1&CallStatus=ringing&Timestamp=soon"
        assert source().describe(junk, {}, NOW).occurred_at is None

    def test_event_type_and_unknown(self) -> None:
        assert source().describe(b"EventType=onMessageAdded", {}, NOW).type == "onMessageAdded"
        assert source().describe(b"", {}, NOW).type == "unknown"
        assert source().describe(b"", {}, NOW).dedup_key.startswith("sha256:")

    def test_settings_read_form_parameters(self) -> None:
        src = source(type="body:MessageStatus", dedup_key="body:MessageSid", ordering_key="To")
        described = src.describe(self.status + b"&To=%2B1555", {}, NOW)
        assert (described.dedup_key, described.type, described.ordering_key) == (
            "SM0123",
            "delivered",
            "+1555",
        )
        assert source(type="const:sms").describe(self.status, {}, NOW).type == "sms"

    def test_json_bodies_are_described_too(self) -> None:
        body = b'{"MessageSid": "SM7", "MessageStatus": "read"}'
        described = source().describe(body, {}, NOW)
        assert (described.type, described.ordering_key) == ("message.read", "SM7")

    def test_samples_verify_and_describe_with_their_own_type(self) -> None:
        src = source(**{key: value for key, value in EXAMPLE_SETTINGS.items()})  # type: ignore[arg-type]
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            signed = src.sign_request(body, now=NOW)
            url = str(EXAMPLE_SETTINGS["public_url"])
            inbound = request(signed.body, signed.headers, url)
            src.verify_request(inbound, NOW)
            described = src.describe(signed.body, inbound.headers, NOW)
            assert described.type == event_type
            assert described.dedup_key == signed.headers["i-twilio-idempotency-token"]
        assert src.samples(NOW) != samples  # fresh SIDs every time


class TestAcknowledgement:
    def test_form_webhooks_get_empty_twiml(self) -> None:
        src = source()
        assert src.has_acknowledgement
        answer = src.acknowledgement(FORM, {})
        assert answer is not None
        assert (answer.status, answer.content_type) == (200, "text/xml; charset=utf-8")
        assert answer.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

    def test_json_webhooks_get_the_usual_answer(self) -> None:
        assert source().acknowledgement(JSON_BODY, {}) is None


class TestDiagnose:
    def test_http_behind_a_proxy(self) -> None:
        src = source(public_url=None)
        signature = scheme.sign(TOKEN.encode(), URL, scheme.form_params(FORM))
        inbound = request(FORM, {"x-twilio-signature": signature}, URL.replace("https", "http"))
        found = hints(src, inbound)
        assert any(
            'set public_url = "https://mycompany.com/myapp.php"' in hint
            and "https instead of http" in hint
            for hint in found
        )

    def test_trailing_slash(self) -> None:
        src = source(public_url=PUBLIC_URL + "/")
        signature = scheme.sign(TOKEN.encode(), URL, scheme.form_params(FORM))
        inbound = request(FORM, {"x-twilio-signature": signature}, PUBLIC_URL + "/?" + QUERY)
        found = hints(src, inbound)
        assert any(f'set public_url = "{PUBLIC_URL}"' in hint for hint in found)
        assert any("without the trailing slash" in hint for hint in found)

    def test_shared_key_request_without_its_secret(self) -> None:
        signed = source(
            secrets=("shared-secret",), options={"shared_key_id": "webhooks_sharedkey_1"}
        ).sign_request(FORM, now=NOW)
        found = hints(source(), request(signed.body, signed.headers, PUBLIC_URL))
        assert any("SharedKey" in hint and "webhooks_sharedkey_1" in hint for hint in found)

    def test_wrong_token_and_api_key_sid(self) -> None:
        sid = "SK" + "0" * 32
        signed = source(secrets=("other",)).sign_request(FORM, now=NOW)
        found = hints(source(secrets=(sid,)), request(signed.body, signed.headers, PUBLIC_URL))
        assert any("API key SID" in hint for hint in found)
        assert any("Auth Token of the account" in hint for hint in found)
        assert all(sid not in hint for hint in found)

    def test_json_without_body_hash(self) -> None:
        inbound = request(JSON_BODY, {"x-twilio-signature": "x"}, PUBLIC_URL)
        assert any("bodySHA256" in hint for hint in hints(source(), inbound))


class TestConfig:
    def test_registered_with_docs_info(self) -> None:
        spec = provider_spec("twilio")
        assert spec.info is not None
        assert "I-Twilio-Idempotency-Token" in spec.info.dedup_key
        assert source().secret_values == (TOKEN,)
        assert source().provider == "twilio"

    def test_secrets_are_required(self) -> None:
        assert config_error(secrets=()).key == "sources.voice.secrets"

    def test_public_url_with_a_query_is_refused(self) -> None:
        error = config_error(public_url=URL)
        assert error.key == "sources.voice.public_url"
        assert PUBLIC_URL in str(error.fix)

    def test_tolerance_is_refused(self) -> None:
        assert config_error(tolerance=60.0).key == "sources.voice.tolerance"

    def test_bad_options(self) -> None:
        assert config_error(options={"shared_key_algorithm": "MD5"}).key == (
            "sources.voice.shared_key_algorithm"
        )
        assert config_error(options={"shared_key_id": ""}).key == "sources.voice.shared_key_id"
        assert config_error(options={"region": "ie1"}).key == "sources.voice.region"
        assert config_error(header="X-Sig").key == "sources.voice.header"
