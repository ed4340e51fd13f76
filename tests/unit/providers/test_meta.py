"""Provider ``meta``: the reference vector, the GET verification handshake (directly and
through the receiver), object.field types, body-hash dedup, and Meta-specific diagnosis."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.handlers import HandlerRegistry
from hookwise.providers import Inbound, build_source
from hookwise.providers.meta import EXAMPLE_SETTINGS, MetaSource, change_kind
from hookwise.receiver import Receiver
from hookwise.store import EventFilter, MemoryStore

NOW = 1_700_000_000.0
# Reference example, computed with the standard library (Meta publishes no vector).
SECRET = "meta_app_secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'
SIGNATURE = "sha256=e6ad1226d7dbb376b93779e72f6ea6cc56d514dbcb4b3fa023b679f8f0220325"
TOKEN = "a-long-verify-token"


def source(**kwargs: Any) -> MetaSource:
    kwargs.setdefault("secrets", (SECRET,))
    kwargs.setdefault("options", {"verify_token": TOKEN})
    built = build_source(SourceSettings(name="meta", provider="meta", **kwargs))
    assert isinstance(built, MetaSource)
    return built


def get(query: str) -> Inbound:
    return Inbound(b"", {}, method="GET", url="https://hooks.example.com/hooks/meta", query=query)


class TestSignature:
    def test_reference_vector(self) -> None:
        src = source()
        src.verify(BODY, {"x-hub-signature-256": SIGNATURE}, NOW)
        headers = src.sign_headers(BODY, now=NOW)
        assert headers["x-hub-signature-256"] == SIGNATURE
        assert headers["x-hub-signature"].startswith("sha1=")

    def test_the_legacy_sha1_header_alone_is_refused(self) -> None:
        sha1 = source().sign_headers(BODY, now=NOW)["x-hub-signature"]
        with pytest.raises(VerificationError, match="missing_header"):
            source().verify(BODY, {"x-hub-signature": sha1}, NOW)

    def test_escaped_unicode_is_verified_as_sent(self) -> None:
        src = source()
        body = src.samples(NOW)["whatsapp_business_account.messages"]
        assert b"\\u00e7" in body  # Meta escapes non-ASCII text
        headers = src.sign_headers(body, now=NOW)
        src.verify(body, headers, NOW)
        unescaped = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
        with pytest.raises(VerificationError, match="no_matching_signature"):
            src.verify(unescaped.encode(), headers, NOW)


class TestHandshake:
    def test_the_right_token_echoes_the_challenge(self) -> None:
        query = f"hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1158201444"
        answer = source().handshake(get(query), NOW)
        assert answer is not None
        assert (answer.status, answer.body, answer.content_type) == (
            200,
            b"1158201444",
            "text/plain",
        )
        assert ("x-content-type-options", "nosniff") in answer.headers

    @pytest.mark.parametrize("token", ["wrong", "", TOKEN[:-1], TOKEN + "x"])
    def test_a_wrong_token_is_forbidden(self, token: str) -> None:
        query = f"hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        answer = source().handshake(get(query), NOW)
        assert answer is not None
        assert answer.status == 403
        assert b"1158201444" not in answer.body

    def test_no_token_is_forbidden(self) -> None:
        answer = source().handshake(get("hub.mode=subscribe&hub.challenge=5"), NOW)
        assert answer is not None and answer.status == 403

    @pytest.mark.parametrize(
        "query",
        [
            f"hub.mode=unsubscribe&hub.verify_token={TOKEN}&hub.challenge=5",
            f"hub.mode=subscribe&hub.verify_token={TOKEN}",
            f"hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=",
        ],
    )
    def test_a_malformed_verification_is_a_bad_request(self, query: str) -> None:
        answer = source().handshake(get(query), NOW)
        assert answer is not None and answer.status == 400

    def test_other_requests_are_no_handshake(self) -> None:
        src = source()
        assert src.handshake(get(""), NOW) is None
        assert src.handshake(get("foo=bar"), NOW) is None
        post = Inbound(BODY, {}, query=f"hub.mode=subscribe&hub.verify_token={TOKEN}")
        assert src.handshake(post, NOW) is None
        assert src.handshake_methods == frozenset({"GET"})

    async def test_through_the_receiver(self) -> None:
        src = source()
        app = Receiver(
            sources={src.name: src},
            handlers=HandlerRegistry(),
            store=MemoryStore(),
            max_body_bytes=1 << 20,
        )
        await app.store.open()
        transport = httpx.ASGITransport(app, client=("203.0.113.9", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="https://hooks.example.com"
        ) as http:
            params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "77"}
            answer = await http.get("/hooks/meta", params=params)
            assert (answer.status_code, answer.text) == (200, "77")
            assert answer.headers["content-type"] == "text/plain"
            assert answer.headers["x-content-type-options"] == "nosniff"
            refused = await http.get("/hooks/meta", params={**params, "hub.verify_token": "no"})
            assert refused.status_code == 403
            body = src.samples(NOW)["page.feed"]
            posted = await http.post(
                "/hooks/meta", content=body, headers=src.sign_headers(body, now=NOW)
            )
            assert posted.json()["status"] == "accepted"
            again = await http.post(
                "/hooks/meta", content=body, headers=src.sign_headers(body, now=NOW)
            )
            assert again.json()["status"] == "duplicate"
        events = await app.store.list_events(EventFilter(limit=10))
        assert [event.type for event in events] == ["page.feed"]


class TestDescribe:
    def test_types_name_the_object_and_the_change(self) -> None:
        src = source()
        for event_type, body in src.samples(NOW).items():
            described = src.describe(body, {}, NOW)
            assert described.type == event_type
            assert described.ordering_key == json.loads(body)["entry"][0]["id"]
            assert described.dedup_key == "sha256:" + hashlib.sha256(body).hexdigest()
            assert described.occurred_at is None

    @pytest.mark.parametrize(
        ("document", "kind"),
        [
            ({"entry": [{"changes": [{"field": "feed"}]}]}, "feed"),
            ({"entry": [{"messaging": [{}]}]}, "messaging"),
            ({"entry": [{"standby": [{}]}]}, "standby"),
            ({"entry": [{"changes": []}]}, None),
            ({"entry": [{"changes": [{"field": ""}]}]}, None),
            ({"entry": []}, None),
            ({"entry": "x"}, None),
            ([], None),
        ],
    )
    def test_change_kind(self, document: object, kind: str | None) -> None:
        assert change_kind(document) == kind

    def test_an_object_without_changes_keeps_its_name(self) -> None:
        assert source().describe(BODY, {}, NOW).type == "whatsapp_business_account"

    def test_a_type_setting_drops_the_suffix(self) -> None:
        src = source(type="body:object")
        body = src.samples(NOW)["page.feed"]
        assert src.describe(body, {}, NOW).type == "page"


class TestSettings:
    def test_the_verify_token_is_required(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={})
        assert caught.value.key == "sources.meta.verify_token"
        assert caught.value.fix is not None and "verify_token =" in caught.value.fix

    @pytest.mark.parametrize("token", ["", "  ", 42])
    def test_the_verify_token_must_be_text(self, token: object) -> None:
        with pytest.raises(ConfigError) as caught:
            source(options={"verify_token": token})
        assert caught.value.key == "sources.meta.verify_token"

    def test_the_verify_token_is_redacted_like_a_secret(self) -> None:
        src = source()
        assert src.secret_values == (SECRET, TOKEN)
        assert src.signing_secrets == (SECRET,)

    def test_example_settings(self) -> None:
        src = build_source(SourceSettings(name="m", provider="meta", **EXAMPLE_SETTINGS))
        body = src.samples(NOW)["page.messaging"]
        src.verify(body, src.sign_headers(body, now=NOW), NOW)


class TestDiagnosis:
    def test_sha1_only(self) -> None:
        sha1 = source().sign_headers(BODY, now=NOW)["x-hub-signature"]
        hints = source().diagnose(
            Inbound(BODY, {"x-hub-signature": sha1}), NOW, VerificationError("missing_header")
        )
        assert "only the legacy X-Hub-Signature (SHA-1)" in hints[0]

    def test_signed_with_the_verify_token(self) -> None:
        wrong = source(secrets=(TOKEN,)).sign_headers(BODY, now=NOW)
        hints = source().diagnose(
            Inbound(BODY, wrong), NOW, VerificationError("no_matching_signature")
        )
        assert "matches the verify token used as the key" in hints[0]
        assert not any(TOKEN in hint or SECRET in hint for hint in hints)

    def test_wrong_secret_says_where_the_app_secret_is(self) -> None:
        other = source(secrets=("other",)).sign_headers(BODY, now=NOW)
        hints = source().diagnose(
            Inbound(BODY, other), NOW, VerificationError("no_matching_signature")
        )
        assert source().key_hint in hints
