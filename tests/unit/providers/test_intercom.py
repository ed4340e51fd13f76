"""Provider ``intercom``: the reference SHA-1 vector, notification fields, and the hint for
a SHA-256 sender."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import Description, Inbound, build_source
from hookwise.providers.intercom import IntercomSource

NOW = 1_700_000_000.0
# Reference example, computed with the standard library (no official signer exists).
SECRET = "ic_client_secret"
BODY = b'{"type":"notification_event"}'
SIGNATURE = "sha1=bde60e77f0b5b4bf7791aa22aeac5e24b78d9077"


def source(**kwargs: Any) -> IntercomSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="ic", provider="intercom", **kwargs))
    assert isinstance(built, IntercomSource)
    return built


def test_reference_vector() -> None:
    src = source()
    src.verify(BODY, {"x-hub-signature": SIGNATURE}, NOW)
    assert src.sign_headers(BODY, now=NOW) == {"x-hub-signature": SIGNATURE}


def test_sha256_is_not_intercom() -> None:
    with pytest.raises(VerificationError, match="malformed_header"):
        source().verify(BODY, {"x-hub-signature": "sha256=" + "0" * 64}, NOW)
    hints = source().diagnose(
        Inbound(BODY, {"x-hub-signature": "sha256=" + "0" * 64}),
        NOW,
        VerificationError("malformed_header"),
    )
    assert "holds a sha256 signature where intercom sends sha1" in hints[0]


class TestDescribe:
    def test_notification_fields(self) -> None:
        src = source()
        body = src.samples(NOW)["conversation.user.created"]
        document = json.loads(body)
        assert src.describe(body, {}, NOW) == Description(
            document["id"], "conversation.user.created", document["data"]["item"]["id"], NOW
        )

    def test_ping_has_no_ordering_key(self) -> None:
        src = source()
        described = src.describe(src.samples(NOW)["ping"], {}, NOW)
        assert (described.type, described.ordering_key) == ("ping", None)
        assert described.dedup_key.startswith("notif_")

    def test_delivery_id_argument_cannot_change_a_body_id(self) -> None:
        src = source()
        body = src.samples(NOW)["contact.user.created"]
        headers = src.sign_headers(body, now=NOW, delivery_id="ignored")
        assert src.describe(body, headers, NOW).dedup_key == json.loads(body)["id"]


def test_access_token_as_secret_is_explained() -> None:
    hints = source().diagnose(
        Inbound(BODY, {"x-hub-signature": "sha1=" + "0" * 40}),
        NOW,
        VerificationError("no_matching_signature"),
    )
    assert source().key_hint in hints
