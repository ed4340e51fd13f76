"""Provider ``gitlab``: signing token and secret token, per request; ids, types, order."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, Source, build_source
from hookwise.providers.gitlab import EVENT_NAMES
from hookwise.signatures import standard

NOW = 1_700_000_000
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_bXlzZWNyZXRrZXkxMjM0NQ=="
WHSEC_THIRD = "whsec_dGhpcmQgc2VjcmV0IGtleSBoZXJlIQ=="
TOKEN = "s3cret-gitlab-token"
TOKEN_NEW = "another-gitlab-token"
# Standard Webhooks v1 over a GitLab-shaped delivery (the reference's worked example).
EXAMPLE_ID = "6c2b9d2e-1f4a-4b7e-9c1d-0a1b2c3d4e5f"
EXAMPLE_BODY = b'{"object_kind":"push"}'
EXAMPLE_SIGNATURE = "v1,T5v3gsWe9SXNKi5weOC9pahghfUhW8cpKy6M5kauKmE="

MERGE_REQUEST = json.dumps(
    {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "project": {"id": 15, "path_with_namespace": "mike/diaspora"},
        "object_attributes": {
            "id": 99,
            "iid": 1,
            "created_at": "2013-12-03T17:23:34Z",
            "updated_at": "2013-12-04T10:00:00Z",
            "action": "update",
        },
    }
).encode()


def source(*secrets: str, **kwargs: Any) -> Source:
    return build_source(
        SourceSettings(name="gitlab", provider="gitlab", secrets=secrets or (TOKEN,), **kwargs)
    )


def reason(src: Source, body: bytes, sent: dict[str, str], now: float = NOW) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, sent, now)
    return caught.value


def signed_headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "idempotency-key": msg_id,
    }


class TestSigned:
    def test_worked_vector(self) -> None:
        key = standard.decode_secret(WHSEC)
        assert standard.sign(key, EXAMPLE_ID, NOW, EXAMPLE_BODY) == EXAMPLE_SIGNATURE
        sent = signed_headers(EXAMPLE_ID, NOW, EXAMPLE_SIGNATURE)
        source(WHSEC).verify(EXAMPLE_BODY, sent, NOW)

    def test_sign_headers_look_like_gitlab(self) -> None:
        src = source(WHSEC)
        sent = src.sign_headers(MERGE_REQUEST, now=NOW, delivery_id=EXAMPLE_ID)
        assert sent["webhook-id"] == sent["idempotency-key"] == EXAMPLE_ID
        assert sent["x-gitlab-event"] == "Merge Request Hook"
        assert "x-gitlab-token" not in sent
        src.verify(MERGE_REQUEST, sent, NOW)

    def test_tampered_and_wrong_token(self) -> None:
        src = source(WHSEC)
        sent = src.sign_headers(MERGE_REQUEST, now=NOW)
        assert reason(src, MERGE_REQUEST + b" ", sent).reason == "no_matching_signature"
        assert reason(source(WHSEC_NEW), MERGE_REQUEST, sent).reason == "no_matching_signature"

    def test_stale_both_ways(self) -> None:
        src = source(WHSEC, tolerance=120)
        sent = src.sign_headers(MERGE_REQUEST, now=NOW)
        src.verify(MERGE_REQUEST, sent, NOW - 120)
        assert reason(src, MERGE_REQUEST, sent, NOW + 121).reason == "timestamp_too_old"
        assert reason(src, MERGE_REQUEST, sent, NOW - 121).reason == "timestamp_too_new"

    def test_rotation(self) -> None:
        src = source(WHSEC, WHSEC_NEW)
        for index in (0, 1):
            src.verify(
                EXAMPLE_BODY, src.sign_headers(EXAMPLE_BODY, now=NOW, secret_index=index), NOW
            )
        third = source(WHSEC_THIRD).sign_headers(EXAMPLE_BODY, now=NOW)
        assert reason(src, EXAMPLE_BODY, third).reason == "no_matching_signature"

    @pytest.mark.parametrize(
        ("name", "value", "expected"),
        [
            ("webhook-id", None, "missing_header"),
            ("webhook-timestamp", None, "missing_header"),
            ("webhook-timestamp", "soon", "malformed_header"),
            ("webhook-signature", "T5v3gsWe9SXN", "malformed_header"),
            ("webhook-signature", "", "missing_header"),
        ],
    )
    def test_missing_and_malformed(self, name: str, value: str | None, expected: str) -> None:
        sent = signed_headers(EXAMPLE_ID, NOW, EXAMPLE_SIGNATURE)
        if value is None:
            del sent[name]
        else:
            sent[name] = value
        assert reason(source(WHSEC), EXAMPLE_BODY, sent).reason == expected

    def test_a_signature_is_not_downgraded_to_a_token(self) -> None:
        # Signed with an unknown key but carrying a valid token: the signature decides.
        sent = {
            **source(WHSEC_THIRD).sign_headers(EXAMPLE_BODY, now=NOW),
            "x-gitlab-token": TOKEN,
        }
        assert reason(source(WHSEC, TOKEN), EXAMPLE_BODY, sent).reason == "no_matching_signature"

    def test_signed_request_to_a_token_only_source(self) -> None:
        sent = source(WHSEC).sign_headers(EXAMPLE_BODY, now=NOW)
        error = reason(source(TOKEN), EXAMPLE_BODY, sent)
        assert error.reason == "no_matching_signature"
        assert "no whsec_ signing token" in error.detail


class TestToken:
    def test_token_passes(self) -> None:
        src = source(TOKEN)
        sent = src.sign_headers(EXAMPLE_BODY, now=NOW)
        assert sent["x-gitlab-token"] == TOKEN
        assert "webhook-signature" not in sent
        src.verify(EXAMPLE_BODY, sent, NOW)
        # No integrity: the same token passes with any body, at any time.
        src.verify(b'{"object_kind":"anything"}', sent, NOW + 10**6)

    def test_wrong_token(self) -> None:
        error = reason(source(TOKEN), EXAMPLE_BODY, {"x-gitlab-token": TOKEN + "x"})
        assert error.reason == "bad_token"
        assert TOKEN not in error.detail
        assert reason(source(TOKEN), EXAMPLE_BODY, {"x-gitlab-token": TOKEN[:-1]}).reason == (
            "bad_token"
        )

    def test_rotation(self) -> None:
        src = source(TOKEN, TOKEN_NEW)
        for index in (0, 1):
            src.verify(
                EXAMPLE_BODY, src.sign_headers(EXAMPLE_BODY, now=NOW, secret_index=index), NOW
            )
        assert reason(src, EXAMPLE_BODY, {"x-gitlab-token": "third"}).reason == "bad_token"

    @pytest.mark.parametrize("sent", [{}, {"x-gitlab-token": ""}])
    def test_missing_token(self, sent: dict[str, str]) -> None:
        assert reason(source(TOKEN), EXAMPLE_BODY, sent).reason == "missing_header"

    def test_signing_only_source_refuses_unsigned_requests(self) -> None:
        error = reason(source(WHSEC), EXAMPLE_BODY, {"x-gitlab-token": TOKEN})
        assert error.reason == "missing_header"
        assert "webhook-signature" in error.detail

    def test_mixed_source_takes_either(self) -> None:
        src = source(WHSEC, TOKEN)
        src.verify(EXAMPLE_BODY, {"x-gitlab-token": TOKEN}, NOW)
        src.verify(EXAMPLE_BODY, src.sign_headers(EXAMPLE_BODY, now=NOW), NOW)

    def test_non_ascii_token_compares_without_error(self) -> None:
        assert reason(source(TOKEN), EXAMPLE_BODY, {"x-gitlab-token": "tökén"}).reason == (
            "bad_token"
        )

    def test_token_header_and_values_are_redacted(self) -> None:
        src = source(WHSEC, TOKEN)
        assert src.secret_headers == ("x-gitlab-token",)
        assert TOKEN in src.secret_values
        assert WHSEC in src.secret_values
        assert WHSEC.removeprefix("whsec_") in src.secret_values


class TestDescribe:
    def test_merge_request(self) -> None:
        described = source().describe(
            MERGE_REQUEST, {"idempotency-key": "k-1", "x-gitlab-event-uuid": "u-1"}, NOW
        )
        assert described.dedup_key == "k-1"
        assert described.type == "merge_request"
        assert described.ordering_key == "merge_request:99"
        assert described.occurred_at == datetime(2013, 12, 4, 10, tzinfo=UTC).timestamp()

    def test_dedup_fallbacks(self) -> None:
        src = source()
        assert src.describe(MERGE_REQUEST, {"webhook-id": "w-1"}, NOW).dedup_key == "w-1"
        uuid_only = {"x-gitlab-event-uuid": "u-1"}
        assert src.describe(MERGE_REQUEST, uuid_only, NOW).dedup_key == "u-1"
        assert src.describe(MERGE_REQUEST, {}, NOW).dedup_key.startswith("sha256:")

    def test_type_fallbacks(self) -> None:
        src = source()
        system = b'{"event_name":"project_create","project_id":74}'
        assert src.describe(system, {}, NOW).type == "project_create"
        header_only = {"x-gitlab-event": "Push Hook"}
        assert src.describe(b"not json", header_only, NOW).type == "Push Hook"
        assert src.describe(b"not json", {}, NOW).type == "unknown"

    def test_push_is_ordered_per_branch(self) -> None:
        body = b'{"object_kind":"push","project_id":15,"ref":"refs/heads/main"}'
        assert source().describe(body, {}, NOW).ordering_key == "push:15:refs/heads/main"

    @pytest.mark.parametrize(
        ("body", "key"),
        [
            (b'{"object_kind":"build","build_id":1977}', "build:1977"),
            (b'{"object_kind":"deployment","deployment_id":15}', "deployment:15"),
            (b'{"object_kind":"release","id":1}', "release:1"),
            (b'{"object_kind":"wiki_page","object_attributes":{"slug":"home"}}', None),
            (b'{"object_kind":"push"}', None),
        ],
    )
    def test_ordering_keys(self, body: bytes, key: str | None) -> None:
        assert source().describe(body, {}, NOW).ordering_key == key

    def test_gitlab_utc_times(self) -> None:
        body = (
            b'{"object_kind":"pipeline",'
            b'"object_attributes":{"id":31,"created_at":"2016-08-12 15:23:28 UTC"}}'
        )
        described = source().describe(body, {}, NOW)
        assert described.occurred_at == datetime(2016, 8, 12, 15, 23, 28, tzinfo=UTC).timestamp()
        assert described.ordering_key == "pipeline:31"

    def test_settings_override_everything(self) -> None:
        src = source(
            dedup_key="header:X-Gitlab-Event-UUID",
            type="header:X-Gitlab-Event",
            ordering_key="project.id",
            occurred_at="object_attributes.created_at",
        )
        described = src.describe(
            MERGE_REQUEST,
            {"idempotency-key": "k", "x-gitlab-event-uuid": "u", "x-gitlab-event": "MR Hook"},
            NOW,
        )
        assert (described.dedup_key, described.type, described.ordering_key) == (
            "u",
            "MR Hook",
            "15",
        )
        assert described.occurred_at == datetime(2013, 12, 3, 17, 23, 34, tzinfo=UTC).timestamp()

    def test_long_integers_are_kept_exact(self) -> None:
        body = b'{"object_kind":"issue","object_attributes":{"id":123456789012345678901234567890}}'
        assert source().describe(body, {}, NOW).ordering_key == (
            "issue:123456789012345678901234567890"
        )

    def test_samples(self) -> None:
        for src in (source(WHSEC), source(TOKEN)):
            samples = src.samples(NOW)
            assert set(samples) == {"push", "merge_request", "issue", "pipeline"}
            for event_type, body in samples.items():
                sent = src.sign_headers(body, now=NOW)
                src.verify(body, sent, NOW)
                assert sent["x-gitlab-event"] == EVENT_NAMES[event_type]
                described = src.describe(body, sent, NOW)
                assert described.type == event_type
                assert described.dedup_key == sent["idempotency-key"]
                assert described.ordering_key is not None
                assert described.ordering_key.startswith(event_type + ":")
                if event_type != "push":
                    assert described.occurred_at == NOW


class TestConfig:
    def test_bad_signing_token(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(TOKEN, "whsec_%%%")
        assert caught.value.key == "sources.gitlab.secrets"
        assert "secret number 2" in caught.value.problem

    def test_no_secrets(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="gitlab", provider="gitlab"))
        assert caught.value.key == "sources.gitlab.secrets"

    def test_unknown_option_and_scheme_fields(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"signing_key": "x"})
        assert caught.value.key == "sources.gitlab.signing_key"
        with pytest.raises(ConfigError) as caught:
            source(prefix="sha256=")
        assert caught.value.key == "sources.gitlab.prefix"


class TestDiagnose:
    def hints(self, src: Source, body: bytes, sent: dict[str, str]) -> tuple[str, ...]:
        error = reason(src, body, sent)
        hints = src.diagnose(Inbound(body, sent), NOW, error)
        for secret in src.secret_values:
            assert not any(secret in hint for hint in hints)
        return hints

    def test_signing_token_entered_as_secret_token(self) -> None:
        hints = self.hints(source(WHSEC, TOKEN), EXAMPLE_BODY, {"x-gitlab-token": WHSEC})
        assert any("entered as the webhook's secret token" in hint for hint in hints)

    def test_secret_token_sent_to_a_signing_only_source(self) -> None:
        hints = self.hints(source(WHSEC), EXAMPLE_BODY, {"x-gitlab-token": TOKEN})
        assert any("no signing token" in hint for hint in hints)

    def test_signed_request_to_a_token_only_source(self) -> None:
        sent = source(WHSEC).sign_headers(EXAMPLE_BODY, now=NOW)
        hints = self.hints(source(TOKEN), EXAMPLE_BODY, sent)
        assert any("add the webhook's whsec_ signing token" in hint for hint in hints)

    def test_stray_whitespace(self) -> None:
        hints = self.hints(source(TOKEN + "\n"), EXAMPLE_BODY, {"x-gitlab-token": TOKEN})
        assert any("stray spaces" in hint for hint in hints)

    def test_access_token_in_secrets(self) -> None:
        src = source("glpat-xxxxxxxxxxxxxxxxxxxx")
        hints = self.hints(src, EXAMPLE_BODY, {"x-gitlab-token": TOKEN})
        assert any("personal access token" in hint for hint in hints)

    def test_literal_key(self) -> None:
        literal = standard.sign(WHSEC.encode(), "m-1", NOW, EXAMPLE_BODY)
        hints = self.hints(source(WHSEC), EXAMPLE_BODY, signed_headers("m-1", NOW, literal))
        assert any("used as text" in hint for hint in hints)

    def test_nothing_at_all(self) -> None:
        hints = self.hints(source(WHSEC), EXAMPLE_BODY, {})
        assert any("neither a signature nor a token" in hint for hint in hints)


class TestOracle:
    """GitLab's signing follows Standard Webhooks: the official library is the oracle."""

    def test_library_signature_verifies_here(self) -> None:
        moment = datetime.fromtimestamp(NOW, tz=UTC)
        signature = standardwebhooks.Webhook(WHSEC).sign(EXAMPLE_ID, moment, EXAMPLE_BODY.decode())
        assert signature == EXAMPLE_SIGNATURE
        source(TOKEN, WHSEC).verify(EXAMPLE_BODY, signed_headers(EXAMPLE_ID, NOW, signature), NOW)

    def test_our_signature_verifies_in_the_library(self) -> None:
        now = int(time.time())
        sent = source(WHSEC).sign_headers(MERGE_REQUEST, now=now)
        standardwebhooks.Webhook(WHSEC).verify(MERGE_REQUEST, sent, json_parse=False)
