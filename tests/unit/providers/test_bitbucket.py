"""Provider ``bitbucket``: the reference vector, X-Event-Key types and their inference,
Data Center's request id, and diagnosis of hub headers that belong to others."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.bitbucket import BitbucketSource, event_key

NOW = 1_700_000_000.0
# Reference example, computed with the standard library (no official signer exists).
SECRET = "bb_secret"
BODY = b'{"push":{}}'
SIGNATURE = "sha256=a349d8e2146279b5a45f2dba28fc2802163dbfcddf32fc1326e3c33737d7d658"


def source(**kwargs: Any) -> BitbucketSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="bb", provider="bitbucket", **kwargs))
    assert isinstance(built, BitbucketSource)
    return built


def test_reference_vector() -> None:
    src = source()
    src.verify(BODY, {"x-hub-signature": SIGNATURE}, NOW)
    assert src.signature.sign(0, BODY) == SIGNATURE
    with pytest.raises(VerificationError, match="missing_header"):
        src.verify(BODY, {"x-hub-signature-256": SIGNATURE}, NOW)


def test_worked_example_headers() -> None:
    src = source()
    body = src.samples(NOW)["pullrequest:created"]
    headers = src.sign_headers(body, now=NOW, delivery_id="5d5a7a3c-request")
    assert headers["x-request-uuid"] == "5d5a7a3c-request"
    assert headers["x-event-key"] == "pullrequest:created"
    assert headers["x-attempt-number"] == "1"
    assert headers["x-hook-uuid"].startswith("{")
    assert headers["x-hub-signature"] == src.signature.sign(0, body)
    src.verify(body, headers, NOW)


class TestDescribe:
    def test_defaults(self) -> None:
        src = source()
        body = src.samples(NOW)["repo:push"]
        repository = json.loads(body)["repository"]["uuid"]
        headers = {"x-request-uuid": "r-1", "x-event-key": "repo:push"}
        assert src.describe(body, headers, NOW) == Description("r-1", "repo:push", repository)

    def test_data_center_request_id(self) -> None:
        headers = {"x-request-id": "dc-1", "x-event-key": "pr:opened"}
        described = source().describe(b"{}", headers, NOW)
        assert (described.dedup_key, described.type) == ("dc-1", "pr:opened")


class TestEventKeys:
    def pr(self, **fields: object) -> dict[str, object]:
        return {"created_on": "a", "updated_on": "a", "state": "OPEN", **fields}

    @pytest.mark.parametrize(
        ("payload", "key"),
        [
            ({"push": {}}, "repo:push"),
            ({"fork": {}}, "repo:fork"),
            (
                {"commit_status": {"created_on": "a", "updated_on": "a"}},
                "repo:commit_status_created",
            ),
            (
                {"commit_status": {"created_on": "a", "updated_on": "b"}},
                "repo:commit_status_updated",
            ),
            ({"issue": {}}, "issue:created"),
            ({"issue": {}, "changes": {}}, "issue:updated"),
            ({"issue": {}, "comment": {}}, "issue:comment_created"),
        ],
    )
    def test_told_from_the_payload(self, payload: dict[str, object], key: str) -> None:
        assert event_key(payload) == key

    def test_pull_requests(self) -> None:
        assert event_key({"pullrequest": self.pr()}) == "pullrequest:created"
        assert event_key({"pullrequest": self.pr(updated_on="b")}) == "pullrequest:updated"
        assert event_key({"pullrequest": self.pr(state="MERGED")}) == "pullrequest:fulfilled"
        assert event_key({"pullrequest": self.pr(state="DECLINED")}) == "pullrequest:rejected"
        assert event_key({"pullrequest": self.pr(), "approval": {}}) == "pullrequest:approved"
        assert event_key({"pullrequest": self.pr(), "comment": {}}) == "pullrequest:comment_created"

    def test_unknown_shapes_send_no_event_key(self) -> None:
        assert event_key({"repository": {}}) is None
        assert event_key("push") is None
        assert "x-event-key" not in source().sign_headers(b"[]", now=NOW)


class TestDiagnosis:
    def hints(self, headers: dict[str, str], reason: str) -> tuple[str, ...]:
        return source().diagnose(Inbound(BODY, headers), NOW, VerificationError(reason))

    def test_github_style_header(self) -> None:
        hints = self.hints({"x-hub-signature-256": SIGNATURE}, "missing_header")
        assert "there is no X-Hub-Signature header, but there is x-hub-signature-256" in hints[0]
        assert "(github or meta)" in hints[0]

    def test_a_sha1_signature(self) -> None:
        hints = self.hints({"x-hub-signature": "sha1=" + "0" * 40}, "malformed_header")
        assert "holds a sha1 signature where bitbucket sends sha256" in hints[0]

    def test_no_signature_says_to_add_a_secret(self) -> None:
        hints = self.hints({"x-event-key": "repo:push"}, "missing_header")
        assert "only when the webhook has a secret" in hints[0]

    def test_wrong_secret_says_where_it_lives(self) -> None:
        hints = self.hints({"x-hub-signature": "sha256=" + "0" * 64}, "no_matching_signature")
        assert source().key_hint in hints
