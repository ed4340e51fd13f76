"""Provider ``standard``: v1 and v1a (ed25519) side by side, keys, diagnosis, the oracle."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers.standard import EXAMPLE_SETTINGS
from hookwise.signatures import standard

NOW = 1_700_000_000
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_OTHER = "whsec_bXlzZWNyZXRrZXkxMjM0NQ=="
# The signet library's key pair (MercuryTechnologies/signet, SignerTest.hs).
WHSK = "whsk_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
WHPK = "whpk_wuzPrKxPfWpJSsXgyg/MEoMGvjs5SjDO4ad6X4ZYqqg="
SIGNET_V1A = (
    "v1a,CV1O+PvrwXM42OMUX+tmm6bA3cS0tgLp0qo3YKuu0MGmBrsUhA0MHXF11HsEUJtPfTKs80WE7WUKVt9TueLDCQ=="
)
SIGNET_V1 = "v1,IywpE5NXy+JdAScgR7j5Pt59GjmazD7iJuVsQoRZFyw="
# The same key over the official v1 vector's message.
OFFICIAL_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
OFFICIAL_TS = 1614265330
OFFICIAL_BODY = b'{"test": 2432232314}'
OFFICIAL_V1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OFFICIAL_V1A = (
    "v1a,MyZCYMEp0LrCyikh50mHhgY4GvABSTRGBo9poDvXDo0+HFfzugY4bPx8FQ+hDa3TdoArNIq8rmeFtY9UWzhRBA=="
)
BODY = b'{"type":"invoice.paid","timestamp":"2023-11-14T22:13:20Z","data":{"id":"inv_1"}}'


def new_key_pair() -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    return (
        "whsk_" + base64.b64encode(seed).decode(),
        "whpk_" + base64.b64encode(public).decode(),
    )


OTHER_WHSK, OTHER_WHPK = new_key_pair()
THIRD_WHSK, THIRD_WHPK = new_key_pair()


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="orders", provider="standard", secrets=secrets, **kwargs)
    )


def headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value.reason


class TestVectors:
    def test_signet_v1a_vector_signs_exactly(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        assert seed == b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
        assert standard.sign_v1a(seed, "i", 0, b"Hello, world!") == SIGNET_V1A

    def test_signet_public_key_is_derived_from_the_private_key(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        assert standard.encode_public_key(standard.public_key_of(seed)) == WHPK

    def test_signet_v1a_vector_verifies_with_the_public_key(self) -> None:
        source(WHPK).verify(b"Hello, world!", headers("i", 0, SIGNET_V1A), 0)

    def test_signet_v1_vector_verifies(self) -> None:
        source(WHSEC_OTHER).verify(b"Hello, world!", headers("i", 0, SIGNET_V1), 0)

    def test_v1a_over_the_official_message(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        assert standard.sign_v1a(seed, OFFICIAL_ID, OFFICIAL_TS, OFFICIAL_BODY) == OFFICIAL_V1A
        both = f"{OFFICIAL_V1} {OFFICIAL_V1A}"
        sent = headers(OFFICIAL_ID, OFFICIAL_TS, both)
        for secrets in ((WHSEC,), (WHPK,), (WHSK,), (WHPK, WHSEC)):
            source(*secrets).verify(OFFICIAL_BODY, sent, OFFICIAL_TS)

    def test_cryptography_checks_our_v1a_signature_on_its_own(self) -> None:
        signature = standard.sign_v1a(standard.decode_signing_key(WHSK), "msg_1", NOW, BODY)
        raw = base64.b64decode(signature.removeprefix("v1a,"))
        public = Ed25519PublicKey.from_public_bytes(standard.decode_public_key(WHPK))
        public.verify(raw, b"msg_1.%d.%s" % (NOW, BODY))  # raises when it does not match


class TestKeys:
    def test_prefixes_are_optional_and_padding_too(self) -> None:
        bare = WHPK.removeprefix("whpk_")
        assert standard.decode_public_key(bare) == standard.decode_public_key(WHPK)
        assert standard.decode_public_key(WHPK.rstrip("=")) == standard.decode_public_key(WHPK)

    def test_the_64_byte_form_of_a_signing_key(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        long_form = "whsk_" + base64.b64encode(seed + standard.public_key_of(seed)).decode()
        assert standard.decode_signing_key(long_form) == seed
        wrong = "whsk_" + base64.b64encode(seed + bytes(32)).decode()
        with pytest.raises(ValueError, match="not a seed followed by its own public key"):
            standard.decode_signing_key(wrong)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("whpk_", "empty"),
            ("whpk_***", "not valid base64"),
            ("whpk_" + base64.b64encode(bytes(31)).decode(), "31 bytes"),
        ],
    )
    def test_bad_public_keys(self, text: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            standard.decode_public_key(text)

    def test_bad_signing_key_does_not_echo_it(self) -> None:
        text = "whsk_" + base64.b64encode(b"sixteen byte key").decode()
        with pytest.raises(ValueError, match="16 bytes") as caught:
            standard.decode_signing_key(text)
        assert text.removeprefix("whsk_") not in str(caught.value)

    def test_signature_versions(self) -> None:
        assert standard.signature_versions("v1,a v1a,b  v1,c junk v2,") == ("v1", "v1a")


class TestWorkedExample:
    def test_v1a_source_signs_with_its_signing_key_option(self) -> None:
        src = source(WHPK, options={"signing_key": WHSK})
        sent = src.sign_headers(BODY, now=NOW, delivery_id="msg_1")
        assert sent["webhook-signature"].startswith("v1a,")
        src.verify(BODY, sent, NOW)

    def test_private_key_in_secrets_verifies_and_signs(self) -> None:
        src = source(WHSK)
        sent = src.sign_headers(BODY, now=NOW)
        assert sent["webhook-signature"] == standard.sign_v1a(
            standard.decode_signing_key(WHSK), sent["webhook-id"], NOW, BODY
        )
        src.verify(BODY, sent, NOW)
        # A source that only trusts the public key accepts it too.
        source(WHPK).verify(BODY, sent, NOW)

    def test_a_public_key_alone_cannot_sign(self) -> None:
        with pytest.raises(ValueError, match="signing_key"):
            source(WHPK).sign_headers(BODY, now=NOW)

    def test_example_settings_sign_with_both_kinds(self) -> None:
        src = build_source(SourceSettings(name="x", provider="standard", **EXAMPLE_SETTINGS))
        first = src.sign_headers(BODY, now=NOW)
        second = src.sign_headers(BODY, now=NOW, secret_index=1)
        assert first["webhook-signature"].startswith("v1a,")
        assert second["webhook-signature"].startswith("v1,")
        src.verify(BODY, first, NOW)
        src.verify(BODY, second, NOW)


class TestRotation:
    def test_mixed_secrets_either_kind_passes(self) -> None:
        src = source(WHSEC, WHPK, OTHER_WHPK, options={"signing_key": [WHSK, OTHER_WHSK]})
        for index in range(3):
            src.verify(BODY, src.sign_headers(BODY, now=NOW, secret_index=index), NOW)

    def test_a_third_key_fails(self) -> None:
        src = source(WHSEC, WHPK)
        third = source(THIRD_WHSK).sign_headers(BODY, now=NOW)
        assert reason(src, BODY, third) == "no_matching_signature"
        stranger = source(WHSEC_OTHER).sign_headers(BODY, now=NOW)
        assert reason(src, BODY, stranger) == "no_matching_signature"

    def test_sender_rotating_sends_both_and_one_match_is_enough(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        old = standard.sign_v1a(standard.decode_signing_key(THIRD_WHSK), "m", NOW, BODY)
        new = standard.sign_v1a(seed, "m", NOW, BODY)
        source(WHPK).verify(BODY, headers("m", NOW, f"{old} {new}"), NOW)
        source(WHPK).verify(BODY, headers("m", NOW, f"{new} {old}"), NOW)

    def test_only_the_first_v1a_signatures_are_checked(self) -> None:
        seed = standard.decode_signing_key(WHSK)
        junk = standard.sign_v1a(standard.decode_signing_key(THIRD_WHSK), "m", NOW, BODY)
        good = standard.sign_v1a(seed, "m", NOW, BODY)
        within = " ".join([junk] * (standard.MAX_V1A_SIGNATURES - 1) + [good])
        source(WHPK).verify(BODY, headers("m", NOW, within), NOW)
        beyond = " ".join([junk] * standard.MAX_V1A_SIGNATURES + [good])
        assert reason(source(WHPK), BODY, headers("m", NOW, beyond)) == "no_matching_signature"


class TestRejections:
    def signed(self) -> tuple[Source, dict[str, str]]:
        src = source(WHPK, WHSEC, tolerance=300, options={"signing_key": WHSK})
        return src, src.sign_headers(BODY, now=NOW, delivery_id="msg_7")

    def test_tampered_body_id_or_timestamp(self) -> None:
        src, sent = self.signed()
        assert reason(src, BODY + b" ", sent) == "no_matching_signature"
        assert reason(src, BODY, {**sent, "webhook-id": "msg_8"}) == "no_matching_signature"
        changed = {**sent, "webhook-timestamp": str(NOW + 1)}
        assert reason(src, BODY, changed) == "no_matching_signature"

    def test_stale_both_ways(self) -> None:
        src, sent = self.signed()
        src.verify(BODY, sent, NOW + 300)
        src.verify(BODY, sent, NOW - 300)
        assert reason(src, BODY, sent, NOW + 301) == "timestamp_too_old"
        assert reason(src, BODY, sent, NOW - 301) == "timestamp_too_new"

    @pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_missing_headers(self, name: str) -> None:
        src, sent = self.signed()
        without = {key: value for key, value in sent.items() if key != name}
        assert reason(src, BODY, without) == "missing_header"

    @pytest.mark.parametrize(
        ("name", "value"),
        [("webhook-timestamp", "yesterday"), ("webhook-signature", "v1a"), ("webhook-id", "a.b")],
    )
    def test_malformed_headers(self, name: str, value: str) -> None:
        src, sent = self.signed()
        assert reason(src, BODY, {**sent, name: value}) == "malformed_header"

    @pytest.mark.parametrize(
        "signature",
        ["v1a,***", "v1a," + base64.b64encode(bytes(63)).decode(), "v1a," + "A" * 88],
    )
    def test_v1a_values_that_are_not_signatures(self, signature: str) -> None:
        src, sent = self.signed()
        assert reason(src, BODY, {**sent, "webhook-signature": signature}) == (
            "no_matching_signature"
        )

    def test_detail_says_which_versions_are_checkable(self) -> None:
        sent = source(WHSK).sign_headers(BODY, now=NOW)
        with pytest.raises(VerificationError) as caught:
            source(WHSEC).verify(BODY, sent, NOW)
        assert "holds no v1 signature; versions sent: v1a" in caught.value.detail
        with pytest.raises(VerificationError) as caught:
            source(WHPK).verify(BODY, source(WHSEC).sign_headers(BODY, now=NOW), NOW)
        assert "holds no v1a signature; versions sent: v1" in caught.value.detail


class TestDescribe:
    def test_id_type_and_time(self) -> None:
        src = source(WHSEC)
        described = src.describe(BODY, {"webhook-id": "msg_1"}, NOW)
        assert described.dedup_key == "msg_1"
        assert described.type == "invoice.paid"
        assert described.ordering_key is None
        assert described.occurred_at == 1_700_000_000.0

    def test_settings_override_the_time(self) -> None:
        src = source(WHSEC, occurred_at="header:X-When", ordering_key="data.id")
        described = src.describe(BODY, {"webhook-id": "m", "x-when": "5"}, NOW)
        assert (described.occurred_at, described.ordering_key) == (5.0, "inv_1")

    def test_every_sample_verifies_and_describes_itself(self) -> None:
        src = source(WHPK, WHSEC, options={"signing_key": WHSK})
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            for index in (0, 1):
                sent = src.sign_headers(body, now=NOW, secret_index=index)
                src.verify(body, sent, NOW)
                described = src.describe(body, sent, NOW)
                assert described.type == event_type
                assert described.dedup_key == sent["webhook-id"]
                assert described.occurred_at == NOW
            assert json.loads(body)["data"]["id"]
        again = src.samples(NOW)
        assert all(again[kind] != body for kind, body in samples.items())


class TestSettings:
    def test_secret_values_hold_private_material_only(self) -> None:
        src = source(WHSEC, WHPK, OTHER_WHPK, WHSK, options={"signing_key": OTHER_WHSK})
        assert WHSEC in src.secret_values
        assert WHSK in src.secret_values
        assert WHSK.removeprefix("whsk_") in src.secret_values
        assert OTHER_WHSK in src.secret_values
        assert WHPK not in src.secret_values

    def test_signing_key_for_an_untrusted_public_key(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(WHPK, options={"signing_key": OTHER_WHSK})
        assert caught.value.key == "sources.orders.signing_key"
        assert caught.value.fix is not None
        assert OTHER_WHPK in caught.value.fix
        assert OTHER_WHSK.removeprefix("whsk_") not in str(caught.value)

    @pytest.mark.parametrize("value", [3, ["whsk_", WHSK], [WHSK, 7]])
    def test_bad_signing_key_option(self, value: object) -> None:
        with pytest.raises(ConfigError) as caught:
            source(WHPK, options={"signing_key": value})
        assert caught.value.key == "sources.orders.signing_key"

    @pytest.mark.parametrize(
        "secret", ["whpk_" + base64.b64encode(bytes(16)).decode(), "whsk_%%%", "whsec_"]
    )
    def test_bad_secrets_name_their_position(self, secret: str) -> None:
        with pytest.raises(ConfigError) as caught:
            source(WHSEC, secret)
        assert caught.value.key == "sources.orders.secrets"
        assert "secret number 2" in caught.value.problem

    def test_unknown_option(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(WHSEC, options={"verify_token": "x"})
        assert caught.value.fix is not None
        assert "signing_key" in caught.value.fix


class TestDiagnose:
    def hints(self, src: Source, body: bytes, sent: dict[str, str]) -> tuple[str, ...]:
        with pytest.raises(VerificationError) as caught:
            src.verify(body, sent, NOW)
        return src.diagnose(Inbound(body, sent), NOW, caught.value)

    def test_whsec_source_receiving_only_v1a(self) -> None:
        hints = self.hints(source(WHSEC), BODY, source(WHSK).sign_headers(BODY, now=NOW))
        assert any("v1a (ed25519) only" in hint and "whpk_" in hint for hint in hints)

    def test_public_key_source_receiving_only_v1(self) -> None:
        hints = self.hints(source(WHPK), BODY, source(WHSEC).sign_headers(BODY, now=NOW))
        assert any("v1 (HMAC) only" in hint and "whsec_" in hint for hint in hints)

    def test_no_version_hint_when_the_kinds_agree(self) -> None:
        hints = self.hints(source(WHSEC), BODY, source(WHSEC_OTHER).sign_headers(BODY, now=NOW))
        assert not any("only" in hint and "v1" in hint for hint in hints)

    def test_stripe_style_literal_key(self) -> None:
        literal = standard.sign(WHSEC.encode(), "msg_1", NOW, BODY)
        hints = self.hints(source(WHSEC), BODY, headers("msg_1", NOW, literal))
        assert any("used as text" in hint and "stripe" in hint for hint in hints)
        assert not any(WHSEC in hint for hint in hints)

    def test_reserialized_body(self) -> None:
        src = source(WHPK, options={"signing_key": WHSK})
        sent = src.sign_headers(BODY, now=NOW)
        pretty = json.dumps(json.loads(BODY), indent=2).encode()
        hints = self.hints(src, pretty, sent)
        assert any("compact" in hint for hint in hints)


class TestOracle:
    """``standardwebhooks`` knows only v1; it must accept our v1 next to v1a, and we its v1."""

    def test_library_v1_verifies_in_a_mixed_source(self) -> None:
        timestamp = int(time.time())
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
        signature = standardwebhooks.Webhook(WHSEC).sign("msg_o", moment, BODY.decode())
        source(WHPK, WHSEC).verify(BODY, headers("msg_o", timestamp, signature), timestamp)

    def test_library_accepts_our_mixed_header(self) -> None:
        src = source(WHPK, WHSEC, options={"signing_key": WHSK})
        now = int(time.time())
        v1a = src.sign_headers(BODY, now=now, delivery_id="msg_o")
        v1 = src.sign_headers(BODY, now=now, delivery_id="msg_o", secret_index=1)
        both = {**v1, "webhook-signature": f"{v1a['webhook-signature']} {v1['webhook-signature']}"}
        src.verify(BODY, both, now)
        standardwebhooks.Webhook(WHSEC).verify(BODY, both, json_parse=False)
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(WHSEC).verify(BODY, v1a, json_parse=False)
