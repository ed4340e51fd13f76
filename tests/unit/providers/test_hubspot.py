"""Provider ``hubspot``: signature v3, the documented URI decoding, batches as one event."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, build_source, provider_spec
from hookwise.providers.hubspot import EXAMPLE_SETTINGS, HubSpotSource
from hookwise.signatures import hubspot as scheme

NOW = 1_700_000_000.0
SECRET = "hs_secret"
URL = "https://example.com/webhook"
VECTOR_BODY = b'[{"eventId":1}]'
VECTOR_TS = "1700000000000"
VECTOR_SIGNATURE = "JXT909uTCAwoCyzK6EL8Rr+2wLgiFzPYFjRvkpadVCU="
EVENT = {
    "eventId": 100,
    "subscriptionId": 12345,
    "portalId": 62515,
    "appId": 54321,
    "occurredAt": 1564113600000,
    "subscriptionType": "contact.creation",
    "attemptNumber": 0,
    "objectId": 123,
    "changeSource": "CRM",
    "changeFlag": "NEW",
}


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events), separators=(",", ":")).encode()


def source(**kwargs: Any) -> HubSpotSource:
    kwargs.setdefault("secrets", (SECRET,))
    kwargs.setdefault("public_url", URL)
    built = build_source(SourceSettings(name="crm", provider="hubspot", **kwargs))
    assert isinstance(built, HubSpotSource)
    return built


def headers_for(signature: str, timestamp: str = VECTOR_TS) -> dict[str, str]:
    return {scheme.SIGNATURE_HEADER: signature, scheme.TIMESTAMP_HEADER: timestamp}


def request(body: bytes, headers: dict[str, str], url: str = URL, method: str = "POST") -> Inbound:
    return Inbound(body, headers, method=method, url=url, query=url.partition("?")[2])


def reason(src: HubSpotSource, inbound: Inbound, now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, now)
    return caught.value.reason


def hints(src: HubSpotSource, inbound: Inbound) -> tuple[str, ...]:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return src.diagnose(inbound, NOW, caught.value)


def config_error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(**kwargs)
    return caught.value


class TestVectors:
    def test_reference_vector(self) -> None:
        # reproduced with hubspot-api-client (py) and @hubspot/api-client (npm) Signature v3
        source().verify_request(request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE)), NOW)
        assert scheme.sign(SECRET.encode(), "POST", URL, VECTOR_BODY, VECTOR_TS) == (
            VECTOR_SIGNATURE
        )

    def test_stdlib_cross_check(self) -> None:
        content = b"POST" + URL.encode() + VECTOR_BODY + VECTOR_TS.encode()
        digest = hmac.digest(SECRET.encode(), content, "sha256")
        assert base64.b64encode(digest).decode() == VECTOR_SIGNATURE


class TestUriDecoding:
    raw = "https://example.com/webhook?state=a%3Ab%2Fc%40d%21%24%27%28%29%2A%2C%3B&q=x%20y%26z"
    decoded = "https://example.com/webhook?state=a:b/c@d!$'()*,;&q=x%20y%26z"

    def test_only_the_listed_escapes_are_decoded(self) -> None:
        assert scheme.decode_uri(self.raw) == self.decoded
        assert scheme.decode_uri("%3a%2f%3F") == ":/?"  # either case

    def test_a_signature_over_the_decoded_uri_verifies(self) -> None:
        # what HubSpot's validation page describes
        signature = scheme.sign(SECRET.encode(), "POST", self.decoded, VECTOR_BODY, VECTOR_TS)
        src = source(public_url=None)
        src.verify_request(request(VECTOR_BODY, headers_for(signature), self.raw), NOW)

    def test_a_signature_over_the_uri_as_sent_verifies(self) -> None:
        # what HubSpot's client libraries compute
        signature = scheme.sign(SECRET.encode(), "POST", self.raw, VECTOR_BODY, VECTOR_TS)
        src = source(public_url=None)
        src.verify_request(request(VECTOR_BODY, headers_for(signature), self.raw), NOW)

    def test_other_escapes_stay_as_sent(self) -> None:
        over_decoded = self.decoded.replace("%20", " ").replace("%26", "&")
        signature = scheme.sign(SECRET.encode(), "POST", over_decoded, VECTOR_BODY, VECTOR_TS)
        inbound = request(VECTOR_BODY, headers_for(signature), self.raw)
        assert reason(source(public_url=None), inbound) == "no_matching_signature"


class TestVerification:
    def test_worked_example(self) -> None:
        src = source()
        headers = src.sign_headers(VECTOR_BODY, now=NOW + 0.25)
        assert headers[scheme.TIMESTAMP_HEADER] == "1700000000250"
        src.verify_request(request(VECTOR_BODY, headers), NOW)

    def test_method_url_body_and_time_are_signed(self) -> None:
        src = source()
        headers = headers_for(VECTOR_SIGNATURE)
        assert reason(src, request(VECTOR_BODY + b" ", headers)) == "no_matching_signature"
        assert reason(src, request(VECTOR_BODY, headers, method="PUT")) == ("no_matching_signature")
        assert reason(src, request(VECTOR_BODY, headers, URL + "/")) == "no_matching_signature"
        later = headers_for(VECTOR_SIGNATURE, "1700000000001")
        assert reason(src, request(VECTOR_BODY, later)) == "no_matching_signature"

    def test_wrong_secret_and_rotation(self) -> None:
        assert reason(
            source(secrets=("x",)), request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE))
        ) == ("no_matching_signature")
        src = source(secrets=("new", SECRET))
        for index in (0, 1):
            src.verify_request(
                request(VECTOR_BODY, src.sign_headers(VECTOR_BODY, now=NOW, secret_index=index)),
                NOW,
            )
        third = source(secrets=("third",)).sign_headers(VECTOR_BODY, now=NOW)
        assert reason(src, request(VECTOR_BODY, third)) == "no_matching_signature"

    def test_tolerance_both_ways(self) -> None:
        src = source(tolerance=300.0)
        inbound = request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE))
        src.verify_request(inbound, NOW + 300)
        src.verify_request(inbound, NOW - 300)
        assert reason(src, inbound, NOW + 300.001) == "timestamp_too_old"
        assert reason(src, inbound, NOW - 300.001) == "timestamp_too_new"

    def test_missing_and_malformed_headers(self) -> None:
        src = source()
        assert reason(src, request(VECTOR_BODY, {})) == "missing_header"
        only_signature = {scheme.SIGNATURE_HEADER: VECTOR_SIGNATURE}
        assert reason(src, request(VECTOR_BODY, only_signature)) == "missing_header"
        for bad in ("17e11", "-1", "1700000000000.5", "9" * 16):
            inbound = request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE, bad))
            assert reason(src, inbound) == "malformed_header"
        legacy = {"x-hubspot-signature": "abc", "x-hubspot-signature-version": "v1"}
        with pytest.raises(VerificationError, match="legacy"):
            src.verify_request(request(VECTOR_BODY, legacy), NOW)

    @settings(max_examples=100, deadline=None)
    @given(
        body=st.binary(max_size=100),
        signature=st.text(max_size=50),
        timestamp=st.text(max_size=20),
        url=st.text(max_size=40),
        method=st.text(max_size=8),
    )
    def test_junk_only_raises_verification_error(
        self, body: bytes, signature: str, timestamp: str, url: str, method: str
    ) -> None:
        headers = headers_for(signature, timestamp)
        try:
            source().verify_request(Inbound(body, headers, method=method, url=url), NOW)
        except VerificationError:
            pass
        source().describe(body, headers, NOW)


class TestDescribe:
    def test_a_lone_event(self) -> None:
        described = source().describe(body_of(EVENT), {}, NOW)
        assert described.dedup_key.startswith("100:")
        assert (described.type, described.ordering_key, described.occurred_at) == (
            "contact.creation",
            "123",
            1564113600.0,
        )

    def test_a_retry_is_a_duplicate_though_attempt_number_grew(self) -> None:
        first = source().describe(body_of(EVENT), {}, NOW).dedup_key
        retry = source().describe(body_of({**EVENT, "attemptNumber": 3}), {}, NOW).dedup_key
        assert first == retry

    def test_an_event_id_with_other_fields_is_another_event(self) -> None:
        first = source().describe(body_of(EVENT), {}, NOW).dedup_key
        other = source().describe(body_of({**EVENT, "objectId": 124}), {}, NOW).dedup_key
        assert first != other

    def test_a_batch_is_one_event_keyed_by_all_of_its_events(self) -> None:
        second = {**EVENT, "eventId": 101, "subscriptionType": "contact.propertyChange"}
        batch = source().describe(body_of(EVENT, second), {}, NOW)
        assert batch.dedup_key.startswith("batch-2-")
        assert batch.type == "contact.creation"
        swapped = source().describe(body_of({**second, "attemptNumber": 1}, EVENT), {}, NOW)
        assert swapped.dedup_key == batch.dedup_key
        smaller = source().describe(body_of(EVENT), {}, NOW)
        assert smaller.dedup_key != batch.dedup_key

    def test_events_without_ids_fall_back_to_the_body_hash(self) -> None:
        described = source().describe(b'[{"subscriptionType":"x"}]', {}, NOW)
        assert described.dedup_key.startswith("sha256:")
        assert described.type == "x"
        assert source().describe(b"not json", {}, NOW).type == "unknown"

    def test_settings_win(self) -> None:
        src = source(dedup_key="body:0.eventId", occurred_at="body:0.occurredAt")
        described = src.describe(body_of(EVENT), {}, NOW)
        assert described.dedup_key == "100"
        assert described.occurred_at == 1564113600000.0  # as configured: no ms conversion

    def test_samples_verify_and_describe_with_their_own_type(self) -> None:
        src = source(
            secrets=EXAMPLE_SETTINGS["secrets"],  # type: ignore[arg-type]
            public_url=EXAMPLE_SETTINGS["public_url"],  # type: ignore[arg-type]
        )
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            signed = src.sign_request(body, now=NOW)
            src.verify_request(request(signed.body, signed.headers, str(src.public_url)), NOW)
            described = src.describe(signed.body, signed.headers, NOW)
            assert described.type == event_type
            assert described.dedup_key.startswith(str(json.loads(body)[0]["eventId"]) + ":")
        assert src.samples(NOW) != samples


class TestDiagnose:
    def test_http_instead_of_https(self) -> None:
        inbound = request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE), "http://example.com/webhook")
        found = hints(source(public_url=None), inbound)
        assert any(f'set public_url = "{URL}"' in hint for hint in found)

    def test_seconds_instead_of_milliseconds(self) -> None:
        inbound = request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE, "1700000000"))
        assert any("milliseconds" in hint for hint in hints(source(), inbound))

    def test_access_token_as_secret_and_wrong_secret(self) -> None:
        token = "pat-na1-11111111-2222-3333-4444-555555555555"
        found = hints(source(secrets=(token,)), request(VECTOR_BODY, headers_for(VECTOR_SIGNATURE)))
        assert any("private app access token" in hint for hint in found)
        assert any("client secret of the app" in hint for hint in found)
        assert all(token not in hint for hint in found)

    def test_legacy_signature_only(self) -> None:
        legacy = {"x-hubspot-signature": "abc", "x-hubspot-signature-version": "v2"}
        found = hints(source(), request(VECTOR_BODY, legacy))
        assert any("legacy X-HubSpot-Signature (v2)" in hint for hint in found)


class TestConfig:
    def test_registered(self) -> None:
        spec = provider_spec("hubspot")
        assert spec.info is not None and "eventId" in spec.info.dedup_key
        assert source().secret_values == (SECRET,)

    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"secrets": ()}, "secrets"),
            ({"options": {"app_id": "1"}}, "app_id"),
            ({"public_url": URL + "?a=1"}, "public_url"),
            ({"tolerance": -1.0}, "tolerance"),
            ({"encoding": "base64"}, "encoding"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], key: str) -> None:
        assert config_error(**kwargs).key == f"sources.crm.{key}"
