"""Provider ``stripe``: the library's vector, v1 only, rotation, diagnosis, the oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.signatures import stripe as scheme

NOW = 1_700_000_000
SECRET = "whsec_test_secret"
SECRET_NEW = "whsec_rolled_secret_2"
SECRET_THIRD = "whsec_someone_else"
# Reproduced with stripe-python's generate_signature_header (and stripe-node).
VECTOR_BODY = b'{"id":"evt_test_webhook","object":"event"}'
VECTOR_HEADER = "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
EVENT = json.dumps(
    {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1686089970,
        "data": {"object": {"id": "pi_3NG8Du2eZvKYlo2C0CnM6zYg", "object": "payment_intent"}},
        "livemode": False,
        "type": "payment_intent.succeeded",
    },
    indent=2,
).encode()


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="stripe", provider="stripe", secrets=secrets or (SECRET,), **kwargs)
    )


def reason(src: Source, body: bytes, header: str | None, now: float = NOW) -> VerificationError:
    sent = {} if header is None else {"stripe-signature": header}
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value


def hex_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256).hexdigest()


def test_library_vector() -> None:
    assert scheme.sign(SECRET.encode(), NOW, VECTOR_BODY) == VECTOR_HEADER
    source().verify(VECTOR_BODY, {"stripe-signature": VECTOR_HEADER}, NOW)


def test_worked_example() -> None:
    src = source()
    sent = src.sign_headers(EVENT, now=NOW)
    assert sent == {"stripe-signature": f"t={NOW},v1={hex_signature(SECRET, NOW, EVENT)}"}
    src.verify(EVENT, sent, NOW)


def test_the_key_is_the_secret_as_text() -> None:
    # Not the base64 decoding of what follows whsec_ (as Standard Webhooks would do).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    decoded = base64.b64decode(secret.removeprefix("whsec_"))
    decoded_signature = hmac.new(decoded, b"%d.%s" % (NOW, EVENT), hashlib.sha256).hexdigest()
    header = f"t={NOW},v1={decoded_signature}"
    assert reason(source(secret), EVENT, header).reason == "no_matching_signature"
    source(secret).verify(
        EVENT, {"stripe-signature": f"t={NOW},v1={hex_signature(secret, NOW, EVENT)}"}, NOW
    )


def test_tampered_body_and_timestamp() -> None:
    header = source().sign_headers(EVENT, now=NOW)["stripe-signature"]
    assert reason(source(), EVENT.replace(b"succeeded", b"failed"), header).reason == (
        "no_matching_signature"
    )
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")
    assert reason(source(), EVENT, moved).reason == "no_matching_signature"


def test_wrong_secret() -> None:
    header = source(SECRET_THIRD).sign_headers(EVENT, now=NOW)["stripe-signature"]
    error = reason(source(), EVENT, header)
    assert error.reason == "no_matching_signature"
    assert SECRET not in error.detail


def test_tolerance_is_two_sided() -> None:
    src = source(tolerance=300)
    header = src.sign_headers(EVENT, now=NOW)
    src.verify(EVENT, header, NOW + 300)
    src.verify(EVENT, header, NOW - 300)
    assert reason(src, EVENT, header["stripe-signature"], NOW + 301).reason == "timestamp_too_old"
    assert reason(src, EVENT, header["stripe-signature"], NOW - 301).reason == "timestamp_too_new"


class TestRotation:
    def test_several_v1_any_matches(self) -> None:
        old = hex_signature(SECRET_THIRD, NOW, EVENT)
        new = hex_signature(SECRET, NOW, EVENT)
        source().verify(EVENT, {"stripe-signature": f"t={NOW},v1={old},v1={new}"}, NOW)
        source().verify(EVENT, {"stripe-signature": f"t={NOW},v1={new},v1={old}"}, NOW)

    def test_several_secrets_any_matches(self) -> None:
        src = source(SECRET, SECRET_NEW)
        for index in (0, 1):
            src.verify(EVENT, src.sign_headers(EVENT, now=NOW, secret_index=index), NOW)
        third = source(SECRET_THIRD).sign_headers(EVENT, now=NOW)["stripe-signature"]
        error = reason(src, EVENT, third)
        assert "any of the 2 secret(s)" in error.detail


class TestSchemes:
    def test_v0_alone_is_not_enough_even_when_it_would_match(self) -> None:
        v0 = hex_signature(SECRET, NOW, EVENT)
        error = reason(source(), EVENT, f"t={NOW},v0={v0}")
        assert error.reason == "no_matching_signature"
        assert "schemes sent: v0" in error.detail

    def test_v0_and_unknown_schemes_next_to_v1_are_ignored(self) -> None:
        v1 = hex_signature(SECRET, NOW, EVENT)
        source().verify(EVENT, {"stripe-signature": f"t={NOW},v0=zzz,v1={v1},v9=abc"}, NOW)

    def test_a_wrong_v1_is_not_saved_by_a_matching_v0(self) -> None:
        good = hex_signature(SECRET, NOW, EVENT)
        header = f"t={NOW},v1={'0' * 64},v0={good}"
        assert reason(source(), EVENT, header).reason == "no_matching_signature"

    def test_spaces_after_commas_are_read(self) -> None:
        v1 = hex_signature(SECRET, NOW, EVENT)
        source().verify(EVENT, {"stripe-signature": f"t={NOW}, v1={v1}"}, NOW)

    @pytest.mark.parametrize("header", [None, "", "   "])
    def test_missing(self, header: str | None) -> None:
        assert reason(source(), EVENT, header).reason == "missing_header"

    @pytest.mark.parametrize(
        "header",
        [
            "v1=abc",
            "t=,v1=abc",
            "t=soon,v1=abc",
            f"t={NOW},t={NOW},v1=abc",
            "t=1.5,v1=a",
            "garbage",
        ],
    )
    def test_malformed(self, header: str) -> None:
        assert reason(source(), EVENT, header).reason == "malformed_header"


class TestDescribe:
    def test_defaults(self) -> None:
        described = source().describe(EVENT, {}, NOW)
        assert described.dedup_key == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
        assert described.type == "payment_intent.succeeded"
        assert described.ordering_key == "pi_3NG8Du2eZvKYlo2C0CnM6zYg"
        assert described.occurred_at == 1686089970.0

    def test_settings_override(self) -> None:
        src = source(ordering_key="data.object.object", occurred_at="header:X-At")
        described = src.describe(EVENT, {"x-at": "7"}, NOW)
        assert (described.ordering_key, described.occurred_at) == ("payment_intent", 7.0)

    def test_samples(self) -> None:
        src = source()
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            sent = src.sign_headers(body, now=NOW)
            src.verify(body, sent, NOW)
            described = src.describe(body, sent, NOW)
            document = json.loads(body)
            assert described.type == event_type
            assert described.dedup_key == document["id"]
            assert described.dedup_key.startswith("evt_")
            assert described.ordering_key == document["data"]["object"]["id"]
            assert described.occurred_at == NOW
        again = src.samples(NOW)
        assert all(again[kind] != body for kind, body in samples.items())


class TestConfig:
    def test_errors(self) -> None:
        for kwargs, key in (
            ({"secrets": ()}, "secrets"),
            ({"secrets": ("",)}, "secrets"),
            ({"header": "X"}, "header"),
            ({"options": {"signing_key": "x"}}, "signing_key"),
            ({"tolerance": -1.0}, "tolerance"),
        ):
            settings = {"secrets": (SECRET,), **kwargs}
            with pytest.raises(ConfigError) as caught:
                build_source(SourceSettings(name="stripe", provider="stripe", **settings))
            assert caught.value.key == f"sources.stripe.{key}"

    def test_secret_values(self) -> None:
        assert source(SECRET, SECRET_NEW).secret_values == (SECRET, SECRET_NEW)


class TestDiagnose:
    def hints(self, src: Source, body: bytes, sent: dict[str, str]) -> tuple[str, ...]:
        with pytest.raises(VerificationError) as caught:
            src.verify(body, sent, NOW)
        hints = src.diagnose(Inbound(body, sent), NOW, caught.value)
        for secret in src.secret_values:
            assert not any(secret in hint for hint in hints)
        return hints

    def test_api_key_instead_of_signing_secret(self) -> None:
        src = source("sk_test_4eC39HqLyjWDarjtT1zdp7dc")
        hints = self.hints(src, EVENT, source().sign_headers(EVENT, now=NOW))
        assert any("Stripe secret API key" in hint for hint in hints)
        src = source("rk_live_51abcdef")
        hints = self.hints(src, EVENT, source().sign_headers(EVENT, now=NOW))
        assert any("restricted API key" in hint for hint in hints)

    def test_secret_base64_decoded_would_have_matched(self) -> None:
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signature = hmac.new(key, b"%d.%s" % (NOW, EVENT), hashlib.sha256).hexdigest()
        hints = self.hints(source(secret), EVENT, {"stripe-signature": f"t={NOW},v1={signature}"})
        assert any("base64-decoded" in hint for hint in hints)

    def test_only_v0(self) -> None:
        v0 = hex_signature(SECRET, NOW, EVENT)
        hints = self.hints(source(), EVENT, {"stripe-signature": f"t={NOW},v0={v0}"})
        assert any("only v0" in hint for hint in hints)

    def test_reserialized_json(self) -> None:
        compact = json.dumps(json.loads(EVENT), separators=(",", ":")).encode()
        sent = source().sign_headers(EVENT, now=NOW)
        hints = self.hints(source(), compact, sent)
        assert any("indented by 2" in hint for hint in hints)

    def test_test_mode_secret_hint(self) -> None:
        sent = source(SECRET_THIRD).sign_headers(EVENT, now=NOW)
        hints = self.hints(source(), EVENT, sent)
        assert any("test-mode event" in hint and "stripe listen" in hint for hint in hints)

    def test_standard_webhooks_delivery(self) -> None:
        sent = {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,x"}
        hints = self.hints(source(), EVENT, sent)
        assert any('provider = "standard"' in hint for hint in hints)


class TestOracle:
    """``stripe`` signs what we verify, and verifies what we sign."""

    @given(body=st.text(max_size=300), timestamp=st.integers(0, 4_000_000_000))
    def test_library_signature_verifies_here(self, body: str, timestamp: int) -> None:
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp)
        source(SECRET_NEW, SECRET).verify(
            body.encode(), {"stripe-signature": header}, float(timestamp)
        )

    @given(body=st.text(max_size=300))
    def test_our_signature_verifies_in_the_library(self, body: str) -> None:
        now = int(time.time())
        sent = source(SECRET_NEW, SECRET).sign_headers(body.encode(), now=now, secret_index=1)
        assert stripe.WebhookSignature.verify_header(
            body.encode(), sent["stripe-signature"], SECRET, tolerance=300
        )
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(
                body.encode(), sent["stripe-signature"], SECRET_NEW, tolerance=300
            )
