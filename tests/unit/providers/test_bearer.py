"""Provider ``bearer``: a static token in Authorization (RFC 6750) or a header of its own."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.headers import redact_headers
from hookwise.providers import Description, Inbound, build_source, provider_spec
from hookwise.providers.bearer import EXAMPLE_SETTINGS, BearerSource

NOW = 1_700_000_000.0
TOKEN = "tok_live_9f3c2a71d04e4b6f8a5e"
OLD = "tok_live_01d2c3b4a5968778695a"
BODY = (
    b'{"id":"evt_1","type":"order.paid","data":{"id":"ord_7"},"created_at":"2024-01-01T00:00:00Z"}'
)
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20ifQ.c2lnbmF0dXJl"


def source(**kwargs: Any) -> BearerSource:
    kwargs.setdefault("secrets", (TOKEN,))
    built = build_source(SourceSettings(name="crm", provider="bearer", **kwargs))
    assert isinstance(built, BearerSource)
    return built


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def reason(src: BearerSource, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, NOW)
    return caught.value.reason


def hints(src: BearerSource, headers: dict[str, str], query: str = "") -> tuple[str, ...]:
    request = Inbound(BODY, headers, url="https://hooks.example.com/hooks/crm", query=query)
    with pytest.raises(VerificationError) as caught:
        src.verify_request(request, NOW)
    return src.diagnose(request, NOW, caught.value)


class TestAuthorizationHeader:
    def test_worked_example(self) -> None:
        src = source()
        headers = src.sign_headers(BODY, now=NOW)
        assert headers == {"Authorization": f"Bearer {TOKEN}"}
        src.verify(BODY, lowered(headers), NOW)

    def test_rfc_6750_example_form(self) -> None:
        # RFC 6750 section 2.1: "Authorization: Bearer mF_9.B5f-4.1JqM".
        src = source(secrets=("mF_9.B5f-4.1JqM",))
        src.verify(b"", {"authorization": "Bearer mF_9.B5f-4.1JqM"}, NOW)

    def test_httpx_as_a_sender(self) -> None:
        request = httpx.Request(
            "POST",
            "https://hooks.example.com/hooks/crm",
            content=BODY,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        source().verify(request.content, dict(request.headers), NOW)

    @pytest.mark.parametrize("value", [f"bearer {TOKEN}", f"BEARER   {TOKEN}", f" Bearer {TOKEN} "])
    def test_scheme_case_and_spaces_do_not_matter(self, value: str) -> None:
        source().verify(BODY, {"authorization": value}, NOW)

    def test_a_tampered_body_still_verifies_because_nothing_signs_it(self) -> None:
        source().verify(BODY + b"tampered", {"authorization": f"Bearer {TOKEN}"}, NOW)
        info = provider_spec("bearer").info
        assert info is not None and info.signs_body is False

    def test_no_timestamp_so_age_does_not_matter(self) -> None:
        source().verify(BODY, {"authorization": f"Bearer {TOKEN}"}, 0)

    @pytest.mark.parametrize("token", ["tok_live_wrong", TOKEN[:-1], TOKEN + "0", TOKEN.upper()])
    def test_wrong_token(self, token: str) -> None:
        assert reason(source(), {"authorization": f"Bearer {token}"}) == "bad_token"

    def test_rotation_either_token_passes_a_third_fails(self) -> None:
        src = source(secrets=(TOKEN, OLD))
        for index in (0, 1):
            src.verify(BODY, lowered(src.sign_headers(BODY, now=NOW, secret_index=index)), NOW)
        assert reason(src, {"authorization": "Bearer tok_live_third"}) == "bad_token"
        with pytest.raises(ValueError, match="out of range"):
            src.sign_headers(BODY, now=NOW, secret_index=2)

    def test_missing_header(self) -> None:
        assert reason(source(), {}) == "missing_header"
        assert reason(source(), {"x-api-key": TOKEN}) == "missing_header"

    @pytest.mark.parametrize(
        "value",
        ["Bearer", "Bearer   ", TOKEN, f"Token {TOKEN}", f"Basic {TOKEN}", f"Bearer{TOKEN}"],
    )
    def test_malformed_header(self, value: str) -> None:
        assert reason(source(), {"authorization": value}) == "malformed_header"

    def test_a_malformed_header_never_repeats_the_token(self) -> None:
        with pytest.raises(VerificationError) as caught:
            source().verify(BODY, {"authorization": f"{TOKEN} extra"}, NOW)
        assert TOKEN not in str(caught.value)

    def test_another_scheme_in_authorization(self) -> None:
        src = source(prefix="Token")
        assert src.sign_headers(BODY, now=NOW) == {"Authorization": f"Token {TOKEN}"}
        src.verify(BODY, {"authorization": f"token {TOKEN}"}, NOW)
        assert reason(src, {"authorization": f"Bearer {TOKEN}"}) == "malformed_header"


class TestOwnHeader:
    def test_bare_token_in_a_header(self) -> None:
        src = source(header="X-Api-Key")
        assert src.sign_headers(BODY, now=NOW) == {"X-Api-Key": TOKEN}
        src.verify(BODY, {"x-api-key": TOKEN}, NOW)
        assert reason(src, {"authorization": f"Bearer {TOKEN}"}) == "missing_header"
        assert reason(src, {"x-api-key": "nope"}) == "bad_token"

    def test_header_with_a_punctuation_prefix(self) -> None:
        src = source(header="X-Webhook-Auth", prefix="key=")
        assert src.sign_headers(BODY, now=NOW) == {"X-Webhook-Auth": f"key={TOKEN}"}
        src.verify(BODY, {"x-webhook-auth": f"KEY={TOKEN}"}, NOW)
        assert reason(src, {"x-webhook-auth": TOKEN}) == "malformed_header"

    def test_explicit_authorization_header_still_defaults_to_bearer(self) -> None:
        src = source(header="authorization")
        src.verify(BODY, {"authorization": f"Bearer {TOKEN}"}, NOW)

    def test_the_token_header_is_redacted_when_stored(self) -> None:
        src = source(header="X-Hook-Key")
        stored = redact_headers(
            [("X-Hook-Key", "anything"), ("X-Echo", TOKEN), ("X-Request-Id", "r-1")],
            secret_values=src.secret_values,
            secret_headers=src.secret_headers,
        )
        assert dict(stored) == {
            "x-hook-key": "[redacted]",
            "x-echo": "[redacted]",
            "x-request-id": "r-1",
        }


class TestDescribe:
    def test_defaults_body_hash_and_type(self) -> None:
        described = source().describe(BODY, {}, NOW)
        assert described == Description(
            "sha256:" + hashlib.sha256(BODY).hexdigest(), "order.paid", None, None
        )

    def test_settings_give_id_ordering_key_and_time(self) -> None:
        src = source(
            dedup_key="header:X-Delivery-Id",
            ordering_key="body:data.id",
            occurred_at="body:created_at",
        )
        headers = lowered(src.sign_headers(BODY, now=NOW, delivery_id="dlv_1"))
        src.verify(BODY, headers, NOW)
        assert src.describe(BODY, headers, NOW) == Description(
            "dlv_1", "order.paid", "ord_7", 1704067200.0
        )

    def test_every_sample_verifies_and_describes_itself(self) -> None:
        src = source(dedup_key="body:id")
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            src.verify(body, lowered(src.sign_headers(body, now=NOW)), NOW)
            described = src.describe(body, {}, NOW)
            assert described.type == event_type
            assert described.dedup_key == json.loads(body)["id"]

    def test_example_settings_build(self) -> None:
        src = build_source(SourceSettings(name="example", provider="bearer", **EXAMPLE_SETTINGS))
        body = src.samples(NOW)["customer.updated"]
        src.verify(body, lowered(src.sign_headers(body, now=NOW)), NOW)


class TestDiagnose:
    def test_token_sent_in_another_header(self) -> None:
        found = hints(source(), {"x-webhook-token": TOKEN})
        assert any('set header = "x-webhook-token"' in hint for hint in found)
        assert any("proxy" in hint for hint in found)

    def test_token_sent_in_the_query_string(self) -> None:
        found = hints(source(), {}, query=f"token={TOKEN}")
        assert any("query string (token=...)" in hint for hint in found)

    def test_basic_auth_points_at_provider_basic(self) -> None:
        found = hints(source(), {"authorization": "Basic dXNlcjpwYXNz"})
        assert any('provider = "basic"' in hint for hint in found)

    def test_bare_token_in_authorization(self) -> None:
        found = hints(source(), {"authorization": TOKEN})
        assert any("without the prefix" in hint and "Bearer <token>" in hint for hint in found)

    def test_bare_token_where_a_prefix_is_configured(self) -> None:
        found = hints(source(header="X-Key", prefix="key="), {"x-key": TOKEN})
        assert any('set prefix = ""' in hint for hint in found)

    def test_prefix_sent_where_none_is_configured(self) -> None:
        found = hints(source(header="X-Key"), {"x-key": f"Bearer {TOKEN}"})
        assert any("has a prefix before the token" in hint for hint in found)

    def test_quoted_token(self) -> None:
        found = hints(source(), {"authorization": f'Bearer "{TOKEN}"'})
        assert any("in quotes" in hint for hint in found)

    def test_a_jwt_is_not_a_static_token(self) -> None:
        found = hints(source(), {"authorization": f"Bearer {JWT}"})
        assert any("JWT" in hint for hint in found)

    def test_stray_line_break_in_a_configured_token(self) -> None:
        found = hints(source(secrets=(TOKEN + "\n",)), {"authorization": "Bearer other"})
        assert any("token number 1 has spaces or a line break" in hint for hint in found)

    def test_hints_never_show_a_token(self) -> None:
        src = source()
        for headers in ({"x-webhook-token": TOKEN}, {"authorization": f'Bearer "{TOKEN}"'}, {}):
            for hint in hints(src, headers, query=f"token={TOKEN}"):
                assert TOKEN not in hint


class TestConfig:
    @pytest.mark.parametrize(
        ("settings", "key", "fix"),
        [
            ({"secrets": ()}, "secrets", "secrets ="),
            ({"secrets": (TOKEN, "")}, "secrets", "environment variable"),
            ({"header": "X Api Key"}, "header", "header:X-Event-Id"),
            ({"header": " "}, "header", "header:X-Event-Id"),
            ({"algorithm": "sha1"}, "algorithm", "remove it"),
            ({"signed_content": "{body}"}, "signed_content", "remove it"),
            ({"tolerance": 60.0}, "tolerance", "remove it"),
            ({"options": {"header": "X-Api-Key"}}, "header", "remove it"),
        ],
    )
    def test_errors_name_key_and_fix(self, settings: dict[str, Any], key: str, fix: str) -> None:
        kwargs = {"secrets": (TOKEN,), **settings}
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="crm", provider="bearer", **kwargs))
        assert caught.value.key == f"sources.crm.{key}"
        assert caught.value.fix is not None and fix in caught.value.fix
