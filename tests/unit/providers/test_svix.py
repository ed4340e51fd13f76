"""Provider ``svix``: the Standard Webhooks vector under Svix's names, aliases, the oracle."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import svix.webhooks

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.signatures import standard

NOW = 1_700_000_000
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_bXlzZWNyZXRrZXkxMjM0NQ=="
WHSEC_THIRD = "whsec_dGhpcmQgc2VjcmV0IGtleSBoZXJlIQ=="
# The official Standard Webhooks vector; Svix's libraries produce the same signature.
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
BODY = b'{"data":{"id":"user_2aB","email":"ada@example.com"},"type":"user.created"}'


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="clerk", provider="svix", secrets=secrets or (WHSEC,), **kwargs)
    )


def svix_headers(msg_id: str, timestamp: int, signature: str, prefix: str = "svix") -> dict:
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": signature,
    }


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value


def test_official_vector_under_svix_names() -> None:
    source().verify(VECTOR_BODY, svix_headers(MSG_ID, TIMESTAMP, VECTOR), TIMESTAMP)


def test_official_vector_under_webhook_aliases() -> None:
    sent = svix_headers(MSG_ID, TIMESTAMP, VECTOR, prefix="webhook")
    source().verify(VECTOR_BODY, sent, TIMESTAMP)
    assert source().describe(VECTOR_BODY, sent, TIMESTAMP).dedup_key == MSG_ID


def test_svix_names_win_over_aliases_header_by_header() -> None:
    sent = {
        **svix_headers(MSG_ID, TIMESTAMP, VECTOR, prefix="webhook"),
        "svix-id": "msg_other",
    }
    assert reason(source(), VECTOR_BODY, sent, TIMESTAMP).reason == "no_matching_signature"
    mixed = {"svix-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "svix-signature": VECTOR}
    source().verify(VECTOR_BODY, mixed, TIMESTAMP)


def test_worked_example() -> None:
    src = source()
    sent = src.sign_headers(BODY, now=NOW, delivery_id="msg_2aB")
    assert sent == {
        "svix-id": "msg_2aB",
        "svix-timestamp": str(NOW),
        "svix-signature": standard.sign(standard.decode_secret(WHSEC), "msg_2aB", NOW, BODY),
    }
    src.verify(BODY, sent, NOW)
    made_up = src.sign_headers(BODY, now=NOW)["svix-id"]
    assert made_up.startswith("msg_") and "." not in made_up


def test_tampered_and_wrong_secret() -> None:
    src = source()
    sent = src.sign_headers(BODY, now=NOW)
    assert reason(src, BODY + b"\n", sent).reason == "no_matching_signature"
    assert reason(source(WHSEC_NEW), BODY, sent).reason == "no_matching_signature"


def test_stale_both_ways() -> None:
    src = source(tolerance=60)
    sent = src.sign_headers(BODY, now=NOW)
    src.verify(BODY, sent, NOW + 60)
    assert reason(src, BODY, sent, NOW + 61).reason == "timestamp_too_old"
    assert reason(src, BODY, sent, NOW - 61).reason == "timestamp_too_new"


def test_rotation() -> None:
    src = source(WHSEC, WHSEC_NEW)
    for index in (0, 1):
        src.verify(BODY, src.sign_headers(BODY, now=NOW, secret_index=index), NOW)
    third = source(WHSEC_THIRD).sign_headers(BODY, now=NOW)
    assert reason(src, BODY, third).reason == "no_matching_signature"
    both = source(WHSEC_THIRD).sign_headers(BODY, now=NOW, delivery_id="m")["svix-signature"]
    good = src.sign_headers(BODY, now=NOW, delivery_id="m")["svix-signature"]
    src.verify(BODY, svix_headers("m", NOW, f"{both} {good}"), NOW)


@pytest.mark.parametrize("name", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_headers_are_named(name: str) -> None:
    sent = source().sign_headers(BODY, now=NOW)
    error = reason(source(), BODY, {k: v for k, v in sent.items() if k != name})
    assert error.reason == "missing_header"
    assert name in error.detail


def test_missing_alias_headers_are_named_as_sent() -> None:
    sent = svix_headers("m", NOW, "v1,abc", prefix="webhook")
    del sent["webhook-timestamp"]
    assert "webhook-timestamp" in reason(source(), BODY, sent).detail


@pytest.mark.parametrize(
    ("name", "value"),
    [("svix-timestamp", "12:00"), ("svix-signature", "g0hM9SsE"), ("svix-id", "msg.1")],
)
def test_malformed_headers(name: str, value: str) -> None:
    sent = source().sign_headers(BODY, now=NOW)
    assert reason(source(), BODY, {**sent, name: value}).reason == "malformed_header"


def test_describe_and_samples() -> None:
    src = source()
    assert src.describe(BODY, {"svix-id": "msg_1"}, NOW).type == "user.created"
    samples = src.samples(NOW)
    assert {"endpoint.created", "endpoint.disabled", "message.attempt.exhausted"} <= set(samples)
    for event_type, body in samples.items():
        sent = src.sign_headers(body, now=NOW)
        src.verify(body, sent, NOW)
        described = src.describe(body, sent, NOW)
        assert (described.type, described.dedup_key) == (event_type, sent["svix-id"])
        assert described.ordering_key is None
        assert json.loads(body)["data"]["appId"].startswith("app_")


def test_dedup_key_setting_is_not_aliased() -> None:
    src = source(dedup_key="body:data.id")
    assert src.describe(BODY, {"webhook-id": "msg_1"}, NOW).dedup_key == "user_2aB"


def test_config_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        source(WHSEC, "whpk_wuzPrKxPfWpJSsXgyg/MEoMGvjs5SjDO4ad6X4ZYqqg=")
    assert "secret number 2" in caught.value.problem
    assert caught.value.fix is not None and '"standard"' in caught.value.fix
    with pytest.raises(ConfigError) as caught:
        source("whsec_***")
    assert caught.value.key == "sources.clerk.secrets"
    with pytest.raises(ConfigError) as caught:
        source(options={"signing_key": "x"})
    assert caught.value.key == "sources.clerk.signing_key"
    with pytest.raises(ConfigError) as caught:
        source(header="X-Sig")
    assert caught.value.key == "sources.clerk.header"


def test_secret_values() -> None:
    assert source().secret_values == (WHSEC, WHSEC.removeprefix("whsec_"))


class TestDiagnose:
    def test_literal_key(self) -> None:
        literal = standard.sign(WHSEC.encode(), "msg_1", NOW, BODY)
        sent = svix_headers("msg_1", NOW, literal, prefix="webhook")
        error = reason(source(), BODY, sent)
        hints = source().diagnose(Inbound(BODY, sent), NOW, error)
        assert any("used as text" in hint for hint in hints)

    def test_v1a_signatures(self) -> None:
        sent = svix_headers("msg_1", NOW, "v1a,AAAA")
        hints = source().diagnose(Inbound(BODY, sent), NOW, reason(source(), BODY, sent))
        assert any('provider = "standard"' in hint for hint in hints)

    def test_wrong_secret_gives_no_misleading_hint(self) -> None:
        sent = source(WHSEC_NEW).sign_headers(BODY, now=NOW)
        hints = source().diagnose(Inbound(BODY, sent), NOW, reason(source(), BODY, sent))
        assert not any("used as text" in hint for hint in hints)


class TestOracle:
    """The ``svix`` library signs what we verify and verifies what we sign."""

    def test_library_signature_verifies_here(self) -> None:
        moment = datetime.fromtimestamp(NOW, tz=UTC)
        signature = svix.webhooks.Webhook(WHSEC).sign("msg_lib", moment, BODY.decode())
        source().verify(BODY, svix_headers("msg_lib", NOW, signature), NOW)
        source().verify(BODY, svix_headers("msg_lib", NOW, signature, "webhook"), NOW)
        assert (
            signature
            == source().sign_headers(BODY, now=NOW, delivery_id="msg_lib")["svix-signature"]
        )

    def test_our_signature_verifies_in_the_library(self) -> None:
        now = int(time.time())
        src = source(WHSEC_NEW, WHSEC)
        sent = src.sign_headers(BODY, now=now, secret_index=1)
        svix.webhooks.Webhook(WHSEC).verify(BODY, sent)
        with pytest.raises(svix.webhooks.WebhookVerificationError):
            svix.webhooks.Webhook(WHSEC_NEW).verify(BODY, sent)
