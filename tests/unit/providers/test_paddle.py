"""Provider ``paddle``: the SDK's official vector, every h1, tolerance, diagnosis."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.signatures import paddle as scheme

# From the Python SDK's tests (tests/Unit/Notification/test_Verifier.py).
VECTOR_SECRET = "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh"
VECTOR_TS = 1696195954
VECTOR_BODY = b"hello-world"
VECTOR_HEADER = (
    "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
)
SECRET = "pdl_ntfset_01hv8x2acma2gz7he0c1qhz3nc_Wq1yD4Fzx8kJ3bNvT0pLmE5sA7gH2cR9"
SECRET_NEW = "pdl_ntfset_01hv8x2acma2gz7he0c1qhz3nd_Zp7qR2sT4uV6wX8yA0bC1dE3fG5hJ7kL"
SECRET_THIRD = "pdl_ntfset_01hv8x2acma2gz7he0c1qhz3ne_another_destination_secret_key"
NOW = 1_712_917_129
EVENT = json.dumps(
    {
        "event_id": "evt_01hv8x2acma2gz7he0c1qhz3nc",
        "event_type": "subscription.updated",
        "occurred_at": "2024-04-12T10:18:49.621022Z",
        "notification_id": "ntf_01hv8x2af6cg0tf8c8y5ywvnbw",
        "data": {"id": "sub_01hv8x29kz0t586xy6zn1a62ny", "status": "active"},
    },
    separators=(",", ":"),
).encode()


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="paddle", provider="paddle", secrets=secrets or (SECRET,), **kwargs)
    )


def reason(src: Source, body: bytes, header: str | None, now: float = NOW) -> VerificationError:
    sent = {} if header is None else {"paddle-signature": header}
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value


def h1(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), b"%d:%s" % (timestamp, body), hashlib.sha256).hexdigest()


def test_official_vector() -> None:
    source(VECTOR_SECRET).verify(VECTOR_BODY, {"paddle-signature": VECTOR_HEADER}, VECTOR_TS)
    signed = scheme.sign(VECTOR_SECRET.encode(), VECTOR_TS, VECTOR_BODY)
    assert VECTOR_HEADER.endswith(signed.split(";")[1])


def test_worked_example() -> None:
    src = source()
    sent = src.sign_headers(EVENT, now=NOW)
    assert sent == {"paddle-signature": f"ts={NOW};h1={h1(SECRET, NOW, EVENT)}"}
    src.verify(EVENT, sent, NOW)


@given(body=st.binary(max_size=300), timestamp=st.integers(0, 4_000_000_000))
def test_matches_a_plain_hmac_of_ts_colon_body(body: bytes, timestamp: int) -> None:
    header = f"ts={timestamp};h1={h1(SECRET, timestamp, body)}"
    source().verify(body, {"paddle-signature": header}, timestamp)


def test_tampered_and_wrong_secret() -> None:
    header = source().sign_headers(EVENT, now=NOW)["paddle-signature"]
    assert reason(source(), EVENT[:-1] + b" }", header).reason == "no_matching_signature"
    assert reason(source(SECRET_THIRD), EVENT, header).reason == "no_matching_signature"
    moved = header.replace(f"ts={NOW}", f"ts={NOW + 1}")
    assert reason(source(), EVENT, moved).reason == "no_matching_signature"


def test_tolerance_is_the_sources_and_two_sided() -> None:
    header = source().sign_headers(EVENT, now=NOW)["paddle-signature"]
    source().verify(EVENT, {"paddle-signature": header}, NOW + 300)
    assert reason(source(), EVENT, header, NOW + 301).reason == "timestamp_too_old"
    assert reason(source(), EVENT, header, NOW - 301).reason == "timestamp_too_new"
    sdk_like = source(tolerance=5.0)
    sdk_like.verify(EVENT, {"paddle-signature": header}, NOW + 5)
    assert reason(sdk_like, EVENT, header, NOW + 6).reason == "timestamp_too_old"


class TestRotation:
    def test_every_h1_is_checked(self) -> None:
        stale = h1(SECRET_THIRD, NOW, EVENT)
        good = h1(SECRET, NOW, EVENT)
        for header in (
            f"ts={NOW};h1={stale};h1={good}",
            f"ts={NOW};h1={good};h1={stale}",
            f"ts={NOW};h1=junk;h1={stale};h1={good}",
        ):
            source().verify(EVENT, {"paddle-signature": header}, NOW)

    def test_several_secrets(self) -> None:
        src = source(SECRET, SECRET_NEW)
        for index in (0, 1):
            src.verify(EVENT, src.sign_headers(EVENT, now=NOW, secret_index=index), NOW)
        third = source(SECRET_THIRD).sign_headers(EVENT, now=NOW)["paddle-signature"]
        assert "any of the 2 secret(s)" in reason(src, EVENT, third).detail


class TestHeader:
    @pytest.mark.parametrize("header", [None, "", "  "])
    def test_missing(self, header: str | None) -> None:
        assert reason(source(), EVENT, header).reason == "missing_header"

    @pytest.mark.parametrize(
        "header",
        [
            "h1=abc",
            f"ts={NOW}",
            f"ts={NOW};h1=",
            "ts=now;h1=abc",
            f"ts={NOW};ts={NOW};h1=abc",
            f"t={NOW},v1=abc",
            "garbage",
        ],
    )
    def test_malformed(self, header: str) -> None:
        assert reason(source(), EVENT, header).reason == "malformed_header"

    def test_spaces_around_parts_are_read(self) -> None:
        header = f"ts={NOW}; h1={h1(SECRET, NOW, EVENT)}"
        source().verify(EVENT, {"paddle-signature": header}, NOW)

    def test_the_timestamp_is_signed_as_sent(self) -> None:
        padded = f"0{NOW}"
        signature = hmac.new(
            SECRET.encode(), f"{padded}:".encode() + EVENT, hashlib.sha256
        ).hexdigest()
        source().verify(EVENT, {"paddle-signature": f"ts={padded};h1={signature}"}, NOW)
        unpadded = h1(SECRET, NOW, EVENT)
        header = f"ts={padded};h1={unpadded}"
        assert reason(source(), EVENT, header).reason == "no_matching_signature"


class TestDescribe:
    def test_defaults(self) -> None:
        described = source().describe(EVENT, {}, NOW)
        assert described.dedup_key == "evt_01hv8x2acma2gz7he0c1qhz3nc"
        assert described.type == "subscription.updated"
        assert described.ordering_key == "sub_01hv8x29kz0t586xy6zn1a62ny"
        assert described.occurred_at == pytest.approx(
            datetime(2024, 4, 12, 10, 18, 49, 621022, tzinfo=UTC).timestamp()
        )

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
            assert described.dedup_key == document["event_id"]
            assert len(described.dedup_key) == len("evt_01hv8x2acma2gz7he0c1qhz3nc")
            assert described.ordering_key == document["data"]["id"]
            assert described.occurred_at == NOW
        again = src.samples(NOW)
        assert all(again[kind] != body for kind, body in samples.items())


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"secrets": ()}, "secrets"),
            ({"secrets": (SECRET, "")}, "secrets"),
            ({"encoding": "base64"}, "encoding"),
            ({"options": {"maximum_variance": 5}}, "maximum_variance"),
            ({"tolerance": -5.0}, "tolerance"),
            ({"ordering_key": "data..id"}, "ordering_key"),
        ],
    )
    def test_errors(self, kwargs: dict[str, Any], key: str) -> None:
        settings = {"secrets": (SECRET,), **kwargs}
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="paddle", provider="paddle", **settings))
        assert caught.value.key == f"sources.paddle.{key}"

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

    def test_api_key_instead_of_secret_key(self) -> None:
        src = source("pdl_live_apikey_01hv8x2acma2gz7he0c1qhz3nc_abcdefghijklmnop")
        hints = self.hints(src, EVENT, source().sign_headers(EVENT, now=NOW))
        assert any("Paddle API key" in hint for hint in hints)

    def test_other_destination(self) -> None:
        hints = self.hints(source(), EVENT, source(SECRET_THIRD).sign_headers(EVENT, now=NOW))
        assert any("notification destination has its own secret key" in hint for hint in hints)

    def test_base64_signature(self) -> None:
        header = f"ts={NOW};h1=3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q0="
        hints = self.hints(source(), EVENT, {"paddle-signature": header})
        assert any("base64 where hex is expected" in hint for hint in hints)

    def test_paddle_classic(self) -> None:
        body = b"alert_name=payment_succeeded&p_signature=abc%3D%3D&order_id=1"
        hints = self.hints(source(), body, {})
        assert any("Paddle Classic" in hint for hint in hints)

    def test_reserialized_json(self) -> None:
        sent = source().sign_headers(EVENT, now=NOW)
        pretty = json.dumps(json.loads(EVENT), indent=2).encode()
        hints = self.hints(source(), pretty, sent)
        assert any("compact" in hint for hint in hints)

    def test_stale_request_names_the_skew(self) -> None:
        sent = source().sign_headers(EVENT, now=NOW - 600)
        hints = self.hints(source(), EVENT, sent)
        assert any("10 minutes old" in hint for hint in hints)
