"""Provider ``jira``: a stdlib-checked example, webhookEvent types, millisecond times,
and the hint about webhooks that carry no secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.jira import JiraSource

NOW = 1_700_000_000.0
SECRET = "jira_webhook_secret"
# Worked example, computed with the standard library (Atlassian publishes no vector).
BODY = b'{"timestamp":1700000000123,"webhookEvent":"jira:issue_created","issue":{"id":"10042"}}'
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def source(**kwargs: Any) -> JiraSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="jira", provider="jira", **kwargs))
    assert isinstance(built, JiraSource)
    return built


def test_worked_example() -> None:
    src = source()
    src.verify(BODY, {"x-hub-signature": SIGNATURE}, NOW)
    headers = src.sign_headers(BODY, now=NOW, delivery_id="jira-delivery-1")
    assert headers == {
        "x-atlassian-webhook-identifier": "jira-delivery-1",
        "x-atlassian-webhook-flow": "Primary",
        "x-hub-signature": SIGNATURE,
    }


def test_uppercase_hex_and_a_wrong_hash_name() -> None:
    src = source()
    src.verify(BODY, {"x-hub-signature": SIGNATURE.upper().replace("SHA256=", "sha256=")}, NOW)
    with pytest.raises(VerificationError, match="malformed_header"):
        src.verify(BODY, {"x-hub-signature": SIGNATURE.replace("sha256=", "sha512=")}, NOW)


class TestDescribe:
    def test_defaults_read_the_body_and_the_identifier(self) -> None:
        headers = {"x-atlassian-webhook-identifier": "wh-1", "x-atlassian-webhook-retry": "2"}
        described = source().describe(BODY, headers, NOW)
        assert described == Description("wh-1", "jira:issue_created", "10042", 1700000000.123)

    def test_samples(self) -> None:
        src = source()
        for event_type, body in src.samples(NOW).items():
            document = json.loads(body)
            described = src.describe(body, {}, NOW)
            assert described.type == event_type == document["webhookEvent"]
            assert described.ordering_key == document["issue"]["id"]
            assert described.occurred_at == NOW

    def test_a_time_that_is_not_a_number_is_left_out(self) -> None:
        described = source().describe(b'{"timestamp": "soon", "webhookEvent": "x"}', {}, NOW)
        assert described.occurred_at is None
        described = source().describe(b'{"timestamp": 1e400}', {}, NOW)
        assert described.occurred_at is None


class TestDiagnosis:
    def test_no_signature_explains_secrets_and_connect_apps(self) -> None:
        hints = source().diagnose(
            Inbound(BODY, {"authorization": "JWT abc"}), NOW, VerificationError("missing_header")
        )
        assert "only admin webhooks that have a secret" in hints[0]
        assert "Connect and Forge apps carry a JWT" in hints[0]

    def test_a_bitbucket_style_sender_is_not_flagged_as_foreign(self) -> None:
        headers = {"x-hub-signature": "sha256=" + "0" * 64}
        hints = source().diagnose(
            Inbound(BODY, headers), NOW, VerificationError("no_matching_signature")
        )
        assert not any("provider is wrong" in hint for hint in hints)
        assert source().key_hint in hints
