"""Provider ``square``: both official vectors, the notification URL, legacy SHA-1 opt-in."""

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
from hookwise.providers import Description, Inbound, build_source, provider_spec
from hookwise.providers.square import EXAMPLE_SETTINGS, SquareSource
from hookwise.signatures import square as scheme

NOW = 1_700_000_000.0
KEY = "Ibxx_5AKakO-3qeNVR61Dw"
URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f",'
    b'"created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="


def source(**kwargs: Any) -> SquareSource:
    kwargs.setdefault("secrets", (KEY,))
    kwargs.setdefault("public_url", URL)
    built = build_source(SourceSettings(name="square", provider="square", **kwargs))
    assert isinstance(built, SquareSource)
    return built


def request(body: bytes, headers: dict[str, str], url: str = URL) -> Inbound:
    return Inbound(body, headers, url=url, query=url.partition("?")[2])


def reason(src: SquareSource, inbound: Inbound) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return caught.value.reason


def hints(src: SquareSource, inbound: Inbound) -> tuple[str, ...]:
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return src.diagnose(inbound, NOW, caught.value)


def config_error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(**kwargs)
    return caught.value


class TestOfficialVectors:
    def test_webhook_site_vector(self) -> None:
        # square-python-sdk tests/integration/test_webhooks_helper.py
        source().verify(BODY, {scheme.SHA256_HEADER: SIGNATURE}, NOW)
        assert scheme.sign(KEY.encode(), URL, BODY) == SIGNATURE

    def test_second_vector(self) -> None:
        body = b'{"data":{"type":"webhooks","id":">id<"}}'
        src = source(secrets=("signature-key",), public_url="https://webhook.site/webhooks")
        src.verify(
            body, {scheme.SHA256_HEADER: "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U="}, NOW
        )

    def test_stdlib_cross_check(self) -> None:
        expected = hmac.digest(KEY.encode(), URL.encode() + BODY, "sha256")
        assert base64.b64encode(expected).decode() == SIGNATURE


class TestVerification:
    def test_worked_example(self) -> None:
        src = source()
        headers = src.sign_headers(BODY, now=NOW)
        assert set(headers) == {"content-type", scheme.SHA256_HEADER}
        src.verify(BODY, headers, NOW)

    def test_tampered_body_and_wrong_key(self) -> None:
        headers = {scheme.SHA256_HEADER: SIGNATURE}
        assert reason(source(), request(BODY + b" ", headers)) == "no_matching_signature"
        assert reason(source(secrets=("other",)), request(BODY, headers)) == (
            "no_matching_signature"
        )

    def test_the_url_is_signed(self) -> None:
        headers = {scheme.SHA256_HEADER: SIGNATURE}
        assert reason(source(), request(BODY, headers, URL + "/")) == "no_matching_signature"
        assert reason(source(), request(BODY, headers, URL + "?x=1")) == "no_matching_signature"

    def test_rotation(self) -> None:
        src = source(secrets=("new-key", KEY))
        for index in (0, 1):
            src.verify(BODY, src.sign_headers(BODY, now=NOW, secret_index=index), NOW)
        third = source(secrets=("third",)).sign_headers(BODY, now=NOW)
        assert reason(src, request(BODY, third)) == "no_matching_signature"

    def test_missing_header_and_garbage(self) -> None:
        assert reason(source(), request(BODY, {})) == "missing_header"
        assert reason(source(), request(BODY, {scheme.SHA256_HEADER: "%%%"})) == (
            "no_matching_signature"
        )

    def test_no_url(self) -> None:
        src = source(public_url=None)
        with pytest.raises(VerificationError, match="wrong_url"):
            src.verify(BODY, {scheme.SHA256_HEADER: SIGNATURE}, NOW)
        src.verify_request(request(BODY, {scheme.SHA256_HEADER: SIGNATURE}), NOW)

    def test_legacy_sha1_only_when_allowed(self) -> None:
        legacy = base64.b64encode(hmac.digest(KEY.encode(), URL.encode() + BODY, "sha1")).decode()
        headers = {scheme.SHA1_HEADER: legacy}
        assert reason(source(), request(BODY, headers)) == "missing_header"
        allowed = source(options={"allow_sha1": True})
        allowed.verify(BODY, headers, NOW)
        tampered = {scheme.SHA1_HEADER: legacy[:-2] + "A="}
        assert reason(allowed, request(BODY, tampered)) == "no_matching_signature"
        # with both headers, the SHA-256 one decides
        both = {scheme.SHA256_HEADER: "x" + SIGNATURE[1:], scheme.SHA1_HEADER: legacy}
        assert reason(allowed, request(BODY, both)) == "no_matching_signature"
        signed = allowed.sign_headers(BODY, now=NOW)
        assert signed[scheme.SHA1_HEADER] == legacy

    @settings(max_examples=100, deadline=None)
    @given(body=st.binary(max_size=100), signature=st.text(max_size=50), url=st.text(max_size=40))
    def test_junk_only_raises_verification_error(
        self, body: bytes, signature: str, url: str
    ) -> None:
        try:
            source().verify_request(Inbound(body, {scheme.SHA256_HEADER: signature}, url=url), NOW)
        except VerificationError:
            pass
        source().describe(body, {}, NOW)


class TestDescribe:
    def test_defaults(self) -> None:
        assert source().describe(BODY, {}, NOW) == Description(
            "ac3ac95b-f97d-458c-a6e6-18981597e05f",
            "webhooks.test_notification",
            "bc368e64-01aa-407e-b46e-3231809b1129",
            1657744259.037339,
        )

    def test_settings_win(self) -> None:
        src = source(ordering_key="merchant_id", type="const:square")
        described = src.describe(BODY, {}, NOW)
        assert (described.ordering_key, described.type) == ("MLEFBHHSJGVHD", "square")

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
            document = json.loads(body)
            assert described.type == event_type
            assert described.dedup_key == document["event_id"]
            assert described.ordering_key == document["data"]["id"]
            assert described.occurred_at == NOW
        assert src.samples(NOW) != samples


class TestDiagnose:
    def test_http_instead_of_https(self) -> None:
        inbound = request(BODY, {scheme.SHA256_HEADER: SIGNATURE}, URL.replace("https", "http"))
        found = hints(source(public_url=None), inbound)
        assert any(f'set public_url = "{URL}"' in hint for hint in found)
        assert any("Host header" in hint for hint in found)

    def test_explicit_port(self) -> None:
        url = "https://webhook.site:443/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
        found = hints(source(public_url=url), request(BODY, {scheme.SHA256_HEADER: SIGNATURE}, url))
        assert any("without the port :443" in hint and f'"{URL}"' in hint for hint in found)

    def test_query_added_on_the_way(self) -> None:
        inbound = request(BODY, {scheme.SHA256_HEADER: SIGNATURE}, URL + "?utm=1")
        assert any("without its query string" in hint for hint in hints(source(), inbound))

    def test_wrong_key_and_legacy_only(self) -> None:
        signed = source(secrets=("other",)).sign_headers(BODY, now=NOW)
        assert any("signature key" in hint for hint in hints(source(), request(BODY, signed)))
        legacy = {scheme.SHA1_HEADER: "abc="}
        assert any("allow_sha1" in hint for hint in hints(source(), request(BODY, legacy)))


class TestConfig:
    def test_registered(self) -> None:
        spec = provider_spec("square")
        assert spec.info is not None and spec.info.dedup_key == "body event_id"
        assert source().secret_values == (KEY,)

    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"secrets": ()}, "secrets"),
            ({"options": {"allow_sha1": "yes"}}, "allow_sha1"),
            ({"options": {"signature_key": "x"}}, "signature_key"),
            ({"public_url": URL + "?a=1"}, "public_url"),
            ({"tolerance": 10.0}, "tolerance"),
            ({"prefix": "sha256="}, "prefix"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], key: str) -> None:
        assert config_error(**kwargs).key == f"sources.square.{key}"
