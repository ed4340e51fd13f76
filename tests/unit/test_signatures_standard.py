"""Standard Webhooks v1: the official vector, the official library as an oracle, every reason."""

from __future__ import annotations

import base64
import hmac
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from hookwise.errors import VerificationError
from hookwise.signatures._common import HmacKey
from hookwise.signatures.standard import (
    HeaderNames,
    Verifier,
    decode_secret,
    sign,
    signed_content,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
KEY = decode_secret(SECRET)
OTHER_KEY = b"another key, 24 bytes!!!"


def check(
    keys: list[bytes] | None = None,
    *,
    msg_id: str | None = MSG_ID,
    timestamp: str | None = str(TIMESTAMP),
    signature: str | None = SIGNATURE,
    body: bytes = BODY,
    now: float = TIMESTAMP,
    tolerance: float = 300,
) -> None:
    verify(
        [KEY] if keys is None else keys,
        msg_id=msg_id,
        timestamp_header=timestamp,
        signature_header=signature,
        body=body,
        now=now,
        tolerance=tolerance,
    )


def reason_of(**kwargs: object) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        check(**kwargs)  # type: ignore[arg-type]
    return caught.value


def test_official_vector_signs() -> None:
    assert sign(KEY, MSG_ID, TIMESTAMP, BODY) == SIGNATURE


def test_official_vector_verifies() -> None:
    check()


def test_signed_content_is_id_dot_timestamp_dot_body() -> None:
    assert signed_content("msg_1", 17, b"\xff{}") == b"msg_1.17.\xff{}"


class TestDecodeSecret:
    def test_prefix_is_optional(self) -> None:
        assert decode_secret(SECRET.removeprefix("whsec_")) == KEY

    def test_unpadded_base64_is_accepted(self) -> None:
        padded = base64.b64encode(b"sixteen byte key").decode()
        assert padded.endswith("=")
        assert decode_secret("whsec_" + padded.rstrip("=")) == b"sixteen byte key"

    @pytest.mark.parametrize("bad", ["", "whsec_", "   ", "whsec_not*base64!", "whsec_abcde"])
    def test_bad_secrets_raise_value_error_without_echoing(self, bad: str) -> None:
        with pytest.raises(ValueError, match="secret") as caught:
            decode_secret(bad)
        if bad.strip() and bad != "whsec_":
            assert bad.removeprefix("whsec_") not in str(caught.value)


class TestOracle:
    """The official ``standardwebhooks`` library signs and verifies the same bytes we do."""

    @given(
        key=st.binary(min_size=24, max_size=64),
        msg_id=st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True),
        body=st.text(max_size=200),
        timestamp=st.integers(min_value=0, max_value=4_000_000_000),
    )
    def test_library_signature_verifies_here(
        self, key: bytes, msg_id: str, body: str, timestamp: int
    ) -> None:
        secret = "whsec_" + base64.b64encode(key).decode()
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
        signature = standardwebhooks.Webhook(secret).sign(msg_id, moment, body)
        verify(
            [decode_secret(secret)],
            msg_id=msg_id,
            timestamp_header=str(timestamp),
            signature_header=signature,
            body=body.encode(),
            now=timestamp,
            tolerance=300,
        )
        assert sign(decode_secret(secret), msg_id, timestamp, body.encode()) == signature

    @given(key=st.binary(min_size=24, max_size=64), body=st.text(max_size=200))
    def test_our_signature_verifies_in_the_library(self, key: bytes, body: str) -> None:
        secret = "whsec_" + base64.b64encode(key).decode()
        # The library reads the real clock, so the signature must be for now.
        timestamp = int(time.time())
        headers = {
            "webhook-id": "msg_oracle",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                decode_secret(secret), "msg_oracle", timestamp, body.encode()
            ),
        }
        standardwebhooks.Webhook(secret).verify(body.encode(), headers, json_parse=False)

    def test_library_rejects_a_signature_by_another_key(self) -> None:
        timestamp = int(time.time())
        headers = {
            "webhook-id": MSG_ID,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(OTHER_KEY, MSG_ID, timestamp, BODY),
        }
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(SECRET).verify(BODY, headers, json_parse=False)


class TestRotation:
    def test_any_configured_key_may_match(self) -> None:
        check([OTHER_KEY, KEY])
        check([KEY, OTHER_KEY])

    def test_any_sent_signature_may_match(self) -> None:
        stale = sign(OTHER_KEY, MSG_ID, TIMESTAMP, BODY)
        check(signature=f"{stale} {SIGNATURE}")
        check(signature=f"{SIGNATURE}  {stale}")

    def test_no_configured_key_matches(self) -> None:
        error = reason_of(keys=[OTHER_KEY])
        assert error.reason == "no_matching_signature"
        assert "1 key(s)" in error.detail


class TestTolerance:
    def test_exactly_at_the_tolerance_on_both_sides_passes(self) -> None:
        check(now=TIMESTAMP + 300)
        check(now=TIMESTAMP - 300)

    def test_one_second_past_the_tolerance_is_too_old(self) -> None:
        error = reason_of(now=TIMESTAMP + 301)
        assert error.reason == "timestamp_too_old"
        assert error.detail == "timestamp is 301s old, beyond the 300s tolerance"

    def test_a_fraction_past_the_tolerance_is_too_old(self) -> None:
        assert reason_of(now=TIMESTAMP + 300.5).reason == "timestamp_too_old"

    def test_one_second_ahead_of_the_tolerance_is_too_new(self) -> None:
        error = reason_of(now=TIMESTAMP - 301)
        assert error.reason == "timestamp_too_new"
        assert error.detail == "timestamp is 301s in the future, beyond the 300s tolerance"

    def test_zero_tolerance_accepts_only_the_same_second(self) -> None:
        check(tolerance=0)
        assert reason_of(now=TIMESTAMP + 1, tolerance=0).reason == "timestamp_too_old"

    def test_a_stale_request_is_rejected_even_with_a_valid_signature(self) -> None:
        assert reason_of(now=TIMESTAMP + 3600).reason == "timestamp_too_old"


class TestReasons:
    @pytest.mark.parametrize("field", ["msg_id", "timestamp", "signature"])
    @pytest.mark.parametrize("value", [None, ""])
    def test_missing_header(self, field: str, value: str | None) -> None:
        error = reason_of(**{field: value})
        assert error.reason == "missing_header"

    def test_missing_header_names_it(self) -> None:
        assert "webhook-timestamp" in reason_of(timestamp=None).detail

    def test_names_can_be_renamed_for_messages(self) -> None:
        with pytest.raises(VerificationError, match="svix-id"):
            verify(
                [KEY],
                msg_id=None,
                timestamp_header="1",
                signature_header="v1,x",
                body=b"",
                now=1,
                tolerance=1,
                names=HeaderNames("svix-id", "svix-timestamp", "svix-signature"),
            )

    def test_blank_signature_header_is_missing(self) -> None:
        assert reason_of(signature="   ").reason == "missing_header"

    @pytest.mark.parametrize("timestamp", ["soon", "1614265330.5", "-5", "1e9", "1" * 13, "١٢"])
    def test_timestamp_that_is_not_integer_seconds(self, timestamp: str) -> None:
        assert reason_of(timestamp=timestamp).reason == "malformed_header"

    def test_timestamp_surrounded_by_spaces_is_read(self) -> None:
        check(timestamp=f" {TIMESTAMP} ")

    def test_dot_in_the_id_is_malformed(self) -> None:
        assert reason_of(msg_id="msg.1").reason == "malformed_header"

    @pytest.mark.parametrize("signature", ["garbage", "v1", ",abc", "v1,", "  ,  "])
    def test_signature_header_without_a_pair_is_malformed(self, signature: str) -> None:
        assert reason_of(signature=signature).reason == "malformed_header"

    def test_unknown_versions_are_skipped(self) -> None:
        check(signature=f"v2,bm9wZQ== {SIGNATURE} v1a,bm9wZQ==")

    def test_only_unknown_versions_is_no_matching_signature(self) -> None:
        error = reason_of(signature="v1a,bm9wZQ== v9,abc")
        assert error.reason == "no_matching_signature"
        assert "v1a, v9" in error.detail

    def test_tampered_body(self) -> None:
        assert reason_of(body=BODY + b" ").reason == "no_matching_signature"

    def test_tampered_id_or_timestamp(self) -> None:
        assert reason_of(msg_id=MSG_ID + "x").reason == "no_matching_signature"
        assert reason_of(timestamp=str(TIMESTAMP + 1)).reason == "no_matching_signature"

    def test_signature_compare_is_exact(self) -> None:
        assert reason_of(signature=SIGNATURE.lower()).reason == "no_matching_signature"
        assert reason_of(signature=SIGNATURE.rstrip("=")).reason == "no_matching_signature"

    def test_no_keys_never_matches(self) -> None:
        assert reason_of(keys=[]).reason == "no_matching_signature"


header_text = st.none() | st.text(max_size=80) | st.sampled_from(["", str(TIMESTAMP), SIGNATURE])


@given(
    msg_id=header_text,
    timestamp=header_text,
    signature=header_text,
    body=st.binary(max_size=200),
    now=st.floats() | st.integers(min_value=-(2**40), max_value=2**40),
    tolerance=st.floats() | st.integers(min_value=-10, max_value=2**40),
    keys=st.lists(st.binary(max_size=64), max_size=3),
)
def test_any_input_raises_only_verification_error(
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: float,
    keys: list[bytes],
) -> None:
    try:
        verify(
            keys,
            msg_id=msg_id,
            timestamp_header=timestamp,
            signature_header=signature,
            body=body,
            now=now,
            tolerance=tolerance,
        )
    except VerificationError as exc:
        assert exc.reason in {
            "missing_header",
            "malformed_header",
            "timestamp_too_old",
            "timestamp_too_new",
            "no_matching_signature",
        }


class TestHmacKey:
    @pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
    @pytest.mark.parametrize("size", [0, 1, 24, 63, 64, 65, 127, 128, 129, 300])
    def test_matches_the_standard_library(self, algorithm: str, size: int) -> None:
        key = bytes((7 * i + size) % 256 for i in range(size))
        prepared = HmacKey(key, algorithm)
        for content in (b"", b"x", BODY, BODY * 50):
            assert prepared.digest(content) == hmac.digest(key, content, algorithm)

    def test_repr_does_not_show_the_key(self) -> None:
        assert "MfKQ" not in repr(HmacKey(KEY, "sha256"))
        assert KEY.hex() not in repr(HmacKey(KEY, "sha256"))


class TestVerifier:
    def test_one_verifier_checks_many_deliveries(self) -> None:
        verifier = Verifier([OTHER_KEY, KEY])
        for body in (BODY, b"{}", b""):
            signature = sign(KEY, MSG_ID, TIMESTAMP, body)
            verifier.verify(
                msg_id=MSG_ID,
                timestamp_header=str(TIMESTAMP),
                signature_header=f"v2,xyz {signature}",
                body=body,
                now=TIMESTAMP,
                tolerance=300,
            )
        with pytest.raises(VerificationError) as caught:
            verifier.verify(
                msg_id=MSG_ID,
                timestamp_header=str(TIMESTAMP),
                signature_header=sign(KEY, MSG_ID, TIMESTAMP, b"other"),
                body=BODY,
                now=TIMESTAMP,
                tolerance=300,
            )
        assert caught.value.reason == "no_matching_signature"
        assert "of the 2 key(s)" in str(caught.value.detail)
