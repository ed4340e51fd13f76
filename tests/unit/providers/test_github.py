"""Provider ``github``: the official vector, SHA-1 only when allowed, issues.opened types,
event names told from payloads, and diagnosis of SHA-1-only and stripped prefixes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.github import EXAMPLE_SETTINGS, GitHubSource, event_name

NOW = 1_700_000_000.0
# GitHub's "Validating webhook deliveries" example.
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
SHA256 = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SHA1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"
# Made by @octokit/webhooks-methods 6.0.0: sign("oracle-secret", ORACLE_BODY).
ORACLE_BODY = b'{"action":"opened","issue":{"id":1},"repository":{"id":7}}'
ORACLE_SIGNATURE = "sha256=6c98080411b541082199d7eeb1d87dfa3055c1939953fe1ebd7a14cb1393b442"


def source(**kwargs: Any) -> GitHubSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="gh", provider="github", **kwargs))
    assert isinstance(built, GitHubSource)
    return built


def reason(src: GitHubSource, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, NOW)
    return caught.value.reason


class TestVectors:
    def test_official_vector(self) -> None:
        src = source()
        src.verify(BODY, {"x-hub-signature-256": SHA256}, NOW)
        assert src.signature.sign(0, BODY) == SHA256
        assert src.legacy.sign(0, BODY) == SHA1

    def test_octokit_signature_verifies(self) -> None:
        source(secrets=("oracle-secret",)).verify(
            ORACLE_BODY, {"x-hub-signature-256": ORACLE_SIGNATURE}, NOW
        )

    def test_worked_example_matches_stdlib_hmac(self) -> None:
        src = source(secrets=("s3cret",))
        body = src.samples(NOW)["push"]
        headers = src.sign_headers(body, now=NOW, delivery_id="72d3162e-cc78-11e3-81ab")
        digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == "sha256=" + digest
        assert headers["x-github-delivery"] == "72d3162e-cc78-11e3-81ab"
        assert headers["x-github-event"] == "push"
        src.verify(body, headers, NOW)

    def test_no_timestamp_so_age_does_not_matter(self) -> None:
        source().verify(BODY, {"x-hub-signature-256": SHA256}, NOW + 10 * 365 * 86400)


class TestLegacySha1:
    def test_refused_by_default(self) -> None:
        assert reason(source(), BODY, {"x-hub-signature": SHA1}) == "missing_header"

    def test_accepted_when_allowed_and_no_sha256_is_sent(self) -> None:
        src = source(options={"allow_sha1": True})
        src.verify(BODY, {"x-hub-signature": SHA1}, NOW)
        src.verify(BODY, {"x-hub-signature-256": SHA256, "x-hub-signature": SHA1}, NOW)
        wrong_sha1 = "sha1=" + "0" * 40
        assert reason(src, BODY, {"x-hub-signature": wrong_sha1}) == "no_matching_signature"

    def test_a_failing_sha256_is_never_retried_as_sha1(self) -> None:
        src = source(options={"allow_sha1": True})
        headers = {"x-hub-signature-256": "sha256=" + "0" * 64, "x-hub-signature": SHA1}
        assert reason(src, BODY, headers) == "no_matching_signature"

    @pytest.mark.parametrize("value", ["yes", 1, "true"])
    def test_the_option_must_be_a_boolean(self, value: object) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"allow_sha1": value})
        assert caught.value.key == "sources.gh.allow_sha1"
        assert caught.value.fix == "write allow_sha1 = true (without quotes)"


class TestDescribe:
    def test_event_and_action_make_the_type(self) -> None:
        src = source()
        body = src.samples(NOW)["issues.opened"]
        document = json.loads(body)
        headers = {"x-github-delivery": "d-1", "x-github-event": "issues"}
        assert src.describe(body, headers, NOW) == Description(
            "d-1", "issues.opened", str(document["repository"]["id"]), None
        )

    def test_events_without_an_action_keep_their_name(self) -> None:
        src = source()
        body = src.samples(NOW)["push"]
        described = src.describe(body, {"x-github-delivery": "d-2", "x-github-event": "push"}, NOW)
        assert described.type == "push"
        assert described.ordering_key == str(json.loads(body)["repository"]["id"])

    def test_no_event_header_is_unknown(self) -> None:
        described = source().describe(b'{"action": "opened"}', {}, NOW)
        assert described.type == "unknown"
        assert described.dedup_key.startswith("sha256:")

    def test_a_type_setting_replaces_event_and_action(self) -> None:
        src = source(type="header:X-GitHub-Event", ordering_key="issue.id")
        body = b'{"action": "opened", "issue": {"id": 42}}'
        described = src.describe(body, {"x-github-event": "issues"}, NOW)
        assert (described.type, described.ordering_key) == ("issues", "42")

    def test_push_payload_times_in_seconds_do_not_confuse_anything(self) -> None:
        push = json.loads(source().samples(NOW)["push"])
        assert push["repository"]["pushed_at"] == int(NOW)
        assert push["head_commit"]["id"] == push["after"]


class TestEventNames:
    @pytest.mark.parametrize(
        ("payload", "event"),
        [
            ({"zen": "z", "hook_id": 1, "hook": {}}, "ping"),
            ({"ref": "refs/heads/main", "pusher": {}, "commits": []}, "push"),
            ({"action": "submitted", "review": {}, "pull_request": {}}, "pull_request_review"),
            (
                {"action": "created", "comment": {}, "pull_request": {}},
                "pull_request_review_comment",
            ),
            ({"action": "created", "comment": {}, "issue": {}}, "issue_comment"),
            ({"action": "opened", "pull_request": {}}, "pull_request"),
            ({"action": "labeled", "issue": {}, "label": {}}, "issues"),
            ({"action": "published", "release": {}}, "release"),
            ({"action": "completed", "workflow_run": {}}, "workflow_run"),
            ({"state": "success", "deployment_status": {}, "deployment": {}}, "deployment_status"),
            ({"forkee": {}}, "fork"),
            ({"action": "created", "starred_at": "t"}, "star"),
            ({"ref": "v1", "ref_type": "tag", "master_branch": "main"}, "create"),
            ({"ref": "v1", "ref_type": "tag"}, "delete"),
        ],
    )
    def test_told_from_the_payload(self, payload: dict[str, object], event: str) -> None:
        assert event_name(payload) == event

    def test_unknown_shapes_send_no_event_header(self) -> None:
        assert event_name({"something": "else"}) is None
        assert event_name([1, 2]) is None
        headers = source().sign_headers(b"not json", now=NOW)
        assert "x-github-event" not in headers
        assert set(headers) == {"x-github-delivery", "x-hub-signature-256", "x-hub-signature"}

    def test_every_sample_is_named_as_its_type(self) -> None:
        for event_type, body in source().samples(NOW).items():
            assert event_name(json.loads(body)) == event_type.split(".")[0]


class TestDiagnosis:
    def hints(self, src: GitHubSource, headers: dict[str, str], reason: str) -> tuple[str, ...]:
        return src.diagnose(Inbound(BODY, headers), NOW, VerificationError(reason))

    def test_sha1_only_that_matches(self) -> None:
        hints = self.hints(source(), {"x-hub-signature": SHA1}, "missing_header")
        assert "only the legacy X-Hub-Signature (SHA-1)" in hints[0]
        assert "it matches the source's secret" in hints[0]
        assert "allow_sha1 = true" in hints[0]

    def test_sha1_only_that_does_not_match(self) -> None:
        headers = {"x-hub-signature": "sha1=" + "0" * 40}
        hints = self.hints(source(), headers, "missing_header")
        assert "does not match the source's secret either" in hints[0]

    def test_a_stripped_prefix_that_matches_once_added(self) -> None:
        bare = SHA256.removeprefix("sha256=")
        hints = self.hints(source(), {"x-hub-signature-256": bare}, "malformed_header")
        assert "lacks the 'sha256=' prefix" in hints[0]
        assert "matches once it is added" in hints[0]

    def test_a_missing_prefix_that_does_not_match(self) -> None:
        hints = self.hints(source(), {"x-hub-signature-256": "ab" * 32}, "malformed_header")
        assert "lacks the 'sha256=' prefix" in hints[0]
        assert "the sender is not github" in hints[0]

    def test_another_hash_in_the_header(self) -> None:
        hints = self.hints(source(), {"x-hub-signature-256": SHA1}, "malformed_header")
        assert "holds a sha1 signature where github sends sha256" in hints[0]

    def test_no_signature_at_all_says_to_set_a_secret(self) -> None:
        hints = self.hints(source(), {"x-github-event": "push"}, "missing_header")
        assert hints[0].startswith("GitHub signs deliveries only when the webhook has a secret")

    def test_a_personal_access_token_as_secret(self) -> None:
        src = source(secrets=("ghp_abcdefghijklmnop",))
        hints = self.hints(src, {"x-hub-signature-256": SHA256}, "no_matching_signature")
        assert any("GitHub personal access token" in hint for hint in hints)
        assert any(hint == src.key_hint for hint in hints)
        assert not any("ghp_abcdefghijklmnop" in hint for hint in hints)


def test_example_settings_build_a_working_source() -> None:
    src = source(**EXAMPLE_SETTINGS)
    src.verify(BODY, {"x-hub-signature-256": SHA256}, NOW)
    assert src.allow_sha1 is False
