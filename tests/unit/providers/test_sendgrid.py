"""Provider ``sendgrid``: the official ECDSA vector (with its CRLF), key handling, batches."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, build_source, provider_spec
from hookwise.providers import sendgrid as module
from hookwise.providers.sendgrid import SendGridSource
from hookwise.signatures import sendgrid as scheme

# sendgrid-python test/unit/test_eventwebhook.py
PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_TS = "1600112502"
VECTOR_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]'
    b"\r\n"
)
VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEA"
    "yBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
VECTOR_NOW = 1600112502.0
NOW = 1_700_000_000.0


def key_pair() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return scheme.public_key_text(private.public_key()), pem


PUBLIC_A, PRIVATE_A = key_pair()
PUBLIC_B, PRIVATE_B = key_pair()
PUBLIC_C, PRIVATE_C = key_pair()


def source(**kwargs: Any) -> SendGridSource:
    kwargs.setdefault("secrets", (PUBLIC_A,))
    if kwargs["secrets"] and kwargs["secrets"][0] == PUBLIC_A:
        kwargs.setdefault("options", {"signing_key": PRIVATE_A})
    built = build_source(SourceSettings(name="email", provider="sendgrid", **kwargs))
    assert isinstance(built, SendGridSource)
    return built


def vector_headers(signature: str = VECTOR_SIGNATURE, ts: str = VECTOR_TS) -> dict[str, str]:
    return {scheme.SIGNATURE_HEADER: signature, scheme.TIMESTAMP_HEADER: ts}


def reason(src: SendGridSource, body: bytes, headers: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, now)
    return caught.value.reason


def hints(src: SendGridSource, body: bytes, headers: dict[str, str], now: float) -> tuple[str, ...]:
    inbound = Inbound(body, headers, url="https://hooks.example.com/hooks/email")
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, now)
    return src.diagnose(inbound, now, caught.value)


def config_error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(**kwargs)
    return caught.value


class TestOfficialVector:
    def test_verifies_with_its_trailing_crlf(self) -> None:
        source(secrets=(PUBLIC_KEY,)).verify(VECTOR_BODY, vector_headers(), VECTOR_NOW)

    def test_fails_without_the_crlf(self) -> None:
        src = source(secrets=(PUBLIC_KEY,))
        assert reason(src, VECTOR_BODY[:-2], vector_headers(), VECTOR_NOW) == (
            "no_matching_signature"
        )

    def test_the_key_as_pem_works_too(self) -> None:
        der = base64.b64decode(PUBLIC_KEY)
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        source(secrets=(pem.decode(),)).verify(VECTOR_BODY, vector_headers(), VECTOR_NOW)

    def test_cryptography_agrees(self) -> None:
        key = serialization.load_der_public_key(base64.b64decode(PUBLIC_KEY))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            base64.b64decode(VECTOR_SIGNATURE),
            VECTOR_TS.encode() + VECTOR_BODY,
            ec.ECDSA(hashes.SHA256()),
        )


class TestVerification:
    def test_worked_example(self) -> None:
        src = source()
        headers = src.sign_headers(VECTOR_BODY, now=NOW)
        assert headers[scheme.TIMESTAMP_HEADER] == "1700000000"
        src.verify(VECTOR_BODY, headers, NOW)

    def test_hookwise_signatures_verify_with_cryptography(self) -> None:
        headers = source().sign_headers(VECTOR_BODY, now=NOW)
        key = serialization.load_der_public_key(base64.b64decode(PUBLIC_A))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            base64.b64decode(headers[scheme.SIGNATURE_HEADER]),
            headers[scheme.TIMESTAMP_HEADER].encode() + VECTOR_BODY,
            ec.ECDSA(hashes.SHA256()),
        )

    def test_tampered_body_timestamp_and_wrong_key(self) -> None:
        src = source()
        headers = src.sign_headers(VECTOR_BODY, now=NOW)
        assert reason(src, VECTOR_BODY.replace(b"dropped", b"dropper"), headers) == (
            "no_matching_signature"
        )
        moved = {**headers, scheme.TIMESTAMP_HEADER: "1700000001"}
        assert reason(src, VECTOR_BODY, moved) == "no_matching_signature"
        assert reason(source(secrets=(PUBLIC_B,)), VECTOR_BODY, headers) == (
            "no_matching_signature"
        )

    def test_rotation(self) -> None:
        src = source(secrets=(PUBLIC_A, PUBLIC_B), options={"signing_key": [PRIVATE_A, PRIVATE_B]})
        for index in (0, 1):
            src.verify(VECTOR_BODY, src.sign_headers(VECTOR_BODY, now=NOW, secret_index=index), NOW)
        third = source(secrets=(PUBLIC_C,), options={"signing_key": PRIVATE_C})
        assert reason(src, VECTOR_BODY, third.sign_headers(VECTOR_BODY, now=NOW)) == (
            "no_matching_signature"
        )

    def test_tolerance_both_ways(self) -> None:
        src = source(tolerance=60.0)
        headers = src.sign_headers(VECTOR_BODY, now=NOW)
        src.verify(VECTOR_BODY, headers, NOW + 60)
        assert reason(src, VECTOR_BODY, headers, NOW + 61) == "timestamp_too_old"
        assert reason(src, VECTOR_BODY, headers, NOW - 61) == "timestamp_too_new"

    def test_missing_and_malformed_headers(self) -> None:
        src = source()
        assert reason(src, VECTOR_BODY, {}) == "missing_header"
        only = {scheme.SIGNATURE_HEADER: VECTOR_SIGNATURE}
        assert reason(src, VECTOR_BODY, only) == "missing_header"
        assert reason(src, VECTOR_BODY, vector_headers(ts="yesterday")) == "malformed_header"
        assert reason(src, VECTOR_BODY, vector_headers("not*base64", "1700000000")) == (
            "malformed_header"
        )
        not_der = base64.b64encode(b"\x00" * 64).decode()
        assert reason(src, VECTOR_BODY, vector_headers(not_der, "1700000000")) == (
            "no_matching_signature"
        )

    @settings(max_examples=100, deadline=None)
    @given(body=st.binary(max_size=100), signature=st.text(max_size=100), ts=st.text(max_size=12))
    def test_junk_only_raises_verification_error(
        self, body: bytes, signature: str, ts: str
    ) -> None:
        try:
            source().verify(body, vector_headers(signature, ts), NOW)
        except VerificationError:
            pass
        source().describe(body, {}, NOW)


class TestDescribe:
    def test_lone_event(self) -> None:
        described = source().describe(VECTOR_BODY, {}, NOW)
        assert described.dedup_key == "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"
        assert described.type == "dropped"
        assert described.ordering_key is not None
        assert described.ordering_key.startswith("LRzXl_NHStOGhQ4kofSm_A.")
        assert described.occurred_at == 1600112492.0

    def test_batches(self) -> None:
        first = {"event": "processed", "sg_event_id": "a", "timestamp": 1}
        second = {"event": "delivered", "sg_event_id": "b", "timestamp": 2}
        batch = source().describe(json.dumps([first, second]).encode(), {}, NOW)
        assert batch.dedup_key.startswith("batch-2-")
        assert batch.type == "processed"
        swapped = source().describe(json.dumps([second, first]).encode(), {}, NOW)
        assert swapped.dedup_key == batch.dedup_key
        third = {"event": "open", "sg_event_id": "c", "timestamp": 3}
        bigger = source().describe(json.dumps([first, second, third]).encode(), {}, NOW)
        assert bigger.dedup_key != batch.dedup_key
        anonymous = source().describe(json.dumps([first, {"event": "x"}]).encode(), {}, NOW)
        assert anonymous.dedup_key.startswith("sha256:")

    def test_settings_win(self) -> None:
        src = source(dedup_key="body:0.smtp-id", type="const:email")
        described = src.describe(VECTOR_BODY, {}, NOW)
        assert described.dedup_key == "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>"
        assert described.type == "email"

    def test_samples_verify_and_describe_with_their_own_type(self) -> None:
        example = module.EXAMPLE_SETTINGS
        assert isinstance(example, dict)
        src = source(secrets=example["secrets"], options=example["options"])
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            assert body.endswith(b"\r\n")
            signed = src.sign_request(body, now=NOW)
            src.verify(signed.body, signed.headers, NOW)
            described = src.describe(signed.body, signed.headers, NOW)
            assert described.type == event_type
            assert described.dedup_key == json.loads(body)[0]["sg_event_id"]
        assert module.EXAMPLE_SETTINGS is example  # made once
        with pytest.raises(AttributeError):
            module.NOT_A_THING  # noqa: B018


class TestDiagnose:
    def test_crlf_stripped_on_the_way(self) -> None:
        found = hints(source(secrets=(PUBLIC_KEY,)), VECTOR_BODY[:-2], vector_headers(), VECTOR_NOW)
        assert any("stripped" in hint and "CRLF" in hint for hint in found)

    def test_unsigned_webhook(self) -> None:
        found = hints(source(), VECTOR_BODY, {}, NOW)
        assert any("Signed Event Webhook Requests" in hint for hint in found)

    def test_wrong_key(self) -> None:
        headers = source().sign_headers(VECTOR_BODY, now=NOW)
        found = hints(source(secrets=(PUBLIC_B,)), VECTOR_BODY, headers, NOW)
        assert any("verification key changes" in hint for hint in found)

    def test_api_key_as_secret_is_refused_at_build(self) -> None:
        error = config_error(secrets=("SG.abcdefghijklmnop.qrstuvwxyz",))
        assert error.key == "sources.email.secrets"


class TestConfig:
    def test_registered(self) -> None:
        spec = provider_spec("sendgrid")
        assert spec.info is not None and "sg_event_id" in spec.info.dedup_key
        assert source().secret_values == (PRIVATE_A,)
        assert source(secrets=(PUBLIC_B,)).secret_values == ()

    def test_signing_needs_a_key(self) -> None:
        with pytest.raises(ValueError, match="signing_key"):
            source(secrets=(PUBLIC_B,)).sign_headers(b"[]", now=NOW)

    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"secrets": ()}, "secrets"),
            ({"secrets": ("not a key",)}, "secrets"),
            ({"secrets": (base64.b64encode(b"x" * 91).decode(),)}, "secrets"),
            ({"secrets": (PUBLIC_B,), "options": {"signing_key": PRIVATE_A}}, "signing_key"),
            ({"secrets": (PUBLIC_B,), "options": {"signing_key": "junk"}}, "signing_key"),
            ({"secrets": (PUBLIC_B,), "options": {"signing_key": 7}}, "signing_key"),
            ({"secrets": (PUBLIC_B,), "options": {"verify": True}}, "verify"),
            ({"secrets": (PUBLIC_B,), "tolerance": -5.0}, "tolerance"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], key: str) -> None:
        assert config_error(**kwargs).key == f"sources.email.{key}"

    def test_rsa_keys_are_refused(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = rsa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        error = config_error(secrets=(base64.b64encode(der).decode(),))
        assert "P-256" in error.problem
