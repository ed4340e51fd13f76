"""Provider ``basic``: HTTP Basic auth, checked against RFC 7617's examples and httpx."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.headers import redact_headers
from hookwise.providers import Description, Inbound, build_source, provider_spec
from hookwise.providers.basic import EXAMPLE_SETTINGS, BasicSource

NOW = 1_700_000_000.0
SECRET = "hookwise:correct-horse-battery-staple"
OLD = "hookwise:tr0ub4dor&3"
BODY = (
    b'{"id":"evt_1","type":"order.paid","data":{"id":"ord_7"},"created_at":"2024-01-01T00:00:00Z"}'
)


def source(**kwargs: Any) -> BasicSource:
    kwargs.setdefault("secrets", (SECRET,))
    built = build_source(SourceSettings(name="erp", provider="basic", **kwargs))
    assert isinstance(built, BasicSource)
    return built


def auth(credentials: bytes | str) -> dict[str, str]:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def reason(src: BasicSource, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, NOW)
    return caught.value.reason


def hints(src: BasicSource, headers: dict[str, str]) -> tuple[str, ...]:
    request = Inbound(BODY, headers, url="https://hooks.example.com/hooks/erp")
    with pytest.raises(VerificationError) as caught:
        src.verify_request(request, NOW)
    return src.diagnose(request, NOW, caught.value)


class TestVectors:
    def test_rfc_7617_example(self) -> None:
        # RFC 7617 section 2: user "Aladdin", password "open sesame".
        src = source(secrets=("Aladdin:open sesame",))
        header = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        assert src.sign_headers(b"", now=NOW)["Authorization"] == header
        src.verify(b"", {"authorization": header}, NOW)

    def test_rfc_7617_utf8_example_and_its_latin1_form(self) -> None:
        # RFC 7617 section 2.1: user "test", password "123£" sent as UTF-8.
        src = source(secrets=("test:123£",))
        src.verify(b"", {"authorization": "Basic dGVzdDoxMjPCow=="}, NOW)
        src.verify(b"", {"authorization": "Basic dGVzdDoxMjOj"}, NOW)  # Latin-1 senders

    def test_the_scheme_name_is_case_insensitive_and_padding_optional(self) -> None:
        src = source(secrets=("Aladdin:open sesame",))
        for header in ("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "BASIC  QWxhZGRpbjpvcGVuIHNlc2FtZQ"):
            src.verify(b"", {"authorization": header}, NOW)


class TestOracle:
    def test_httpx_basic_auth_verifies(self) -> None:
        request = httpx.Request("POST", "https://hooks.example.com/hooks/erp", content=BODY)
        signed = next(
            httpx.BasicAuth("hookwise", "correct-horse-battery-staple").auth_flow(request)
        )
        source().verify(BODY, {"authorization": signed.headers["authorization"]}, NOW)

    def test_hookwise_header_decodes_as_httpx_would_send_it(self) -> None:
        request = httpx.Request("POST", "https://hooks.example.com/hooks/erp")
        signed = next(
            httpx.BasicAuth("hookwise", "correct-horse-battery-staple").auth_flow(request)
        )
        assert (
            source().sign_headers(BODY, now=NOW)["Authorization"] == signed.headers["authorization"]
        )


class TestVerify:
    def test_worked_example(self) -> None:
        src = source()
        headers = src.sign_headers(BODY, now=NOW)
        assert headers == {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
        src.verify(BODY, {"authorization": headers["Authorization"]}, NOW)

    def test_a_tampered_body_still_verifies_because_nothing_signs_it(self) -> None:
        src = source()
        src.verify(BODY + b"tampered", auth(SECRET), NOW)
        info = provider_spec("basic").info
        assert info is not None and info.signs_body is False

    def test_no_timestamp_so_age_does_not_matter(self) -> None:
        src = source()
        src.verify(BODY, auth(SECRET), NOW + 10 * 365 * 86400)
        src.verify(BODY, auth(SECRET), 0)

    @pytest.mark.parametrize(
        "credentials",
        [
            "hookwise:wrong",
            "other:correct-horse-battery-staple",
            "hookwise:correct-horse-battery-staplE",
            "hookwise:correct-horse-battery-staple ",
            "hookwise:",
            ":",
        ],
    )
    def test_wrong_credentials(self, credentials: str) -> None:
        assert reason(source(), auth(credentials)) == "bad_credentials"

    def test_rotation_either_secret_passes_a_third_fails(self) -> None:
        src = source(secrets=(SECRET, OLD))
        for index in (0, 1):
            headers = src.sign_headers(BODY, now=NOW, secret_index=index)
            src.verify(BODY, {"authorization": headers["Authorization"]}, NOW)
        assert reason(src, auth("hookwise:third")) == "bad_credentials"
        with pytest.raises(ValueError, match="out of range"):
            src.sign_headers(BODY, now=NOW, secret_index=2)

    def test_a_password_may_hold_colons(self) -> None:
        src = source(secrets=("svc:pa:ss:word",))
        src.verify(BODY, auth("svc:pa:ss:word"), NOW)
        assert reason(src, auth("svc:pa")) == "bad_credentials"

    def test_missing_header(self) -> None:
        assert reason(source(), {}) == "missing_header"
        assert reason(source(), {"authorization": "  "}) == "missing_header"

    @pytest.mark.parametrize(
        "value",
        [
            "Bearer tok_123",
            "Basic",
            "Basic    ",
            "Basic !!!!",
            "Basic " + base64.b64encode(b"no-colon-here").decode(),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic é",
            "Basicx QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        ],
    )
    def test_malformed_header(self, value: str) -> None:
        assert reason(source(), {"authorization": value}) == "malformed_header"

    def test_a_malformed_header_never_repeats_what_it_holds(self) -> None:
        with pytest.raises(VerificationError) as caught:
            source().verify(BODY, {"authorization": "hunter2hunter2"}, NOW)
        assert "hunter2" not in str(caught.value)
        assert "does not start with a scheme name" in caught.value.detail

    def test_the_error_names_the_bearer_scheme(self) -> None:
        with pytest.raises(VerificationError, match="uses the Bearer scheme"):
            source().verify(BODY, {"authorization": "Bearer abc"}, NOW)


class TestDescribe:
    def test_defaults_body_hash_and_type(self) -> None:
        described = source().describe(BODY, auth(SECRET), NOW)
        assert described == Description(
            "sha256:" + hashlib.sha256(BODY).hexdigest(), "order.paid", None, None
        )

    def test_settings_give_id_ordering_key_and_time(self) -> None:
        src = source(
            dedup_key="header:X-Delivery-Id",
            ordering_key="body:data.id",
            occurred_at="body:created_at",
        )
        headers = src.sign_headers(BODY, now=NOW, delivery_id="dlv_1")
        assert headers["x-delivery-id"] == "dlv_1"
        lowered = {name.lower(): value for name, value in headers.items()}
        src.verify(BODY, lowered, NOW)
        assert src.describe(BODY, lowered, NOW) == Description(
            "dlv_1", "order.paid", "ord_7", 1704067200.0
        )

    def test_every_sample_verifies_and_describes_itself(self) -> None:
        src = source(dedup_key="body:id")
        samples = src.samples(NOW)
        assert len(samples) >= 3
        ids = set()
        for event_type, body in samples.items():
            document = json.loads(body)
            assert document["type"] == event_type and document["data"]["id"]
            src.verify(
                body, {"authorization": src.sign_headers(body, now=NOW)["Authorization"]}, NOW
            )
            described = src.describe(body, {}, NOW)
            assert described.type == event_type
            assert described.dedup_key == document["id"]
            ids.add(described.dedup_key)
        assert len(ids) == len(samples)
        assert source().samples(NOW)["order.paid"] != source().samples(NOW)["order.paid"]

    def test_example_settings_build(self) -> None:
        src = build_source(SourceSettings(name="example", provider="basic", **EXAMPLE_SETTINGS))
        body = src.samples(NOW)["order.created"]
        headers = {k.lower(): v for k, v in src.sign_headers(body, now=NOW).items()}
        src.verify(body, headers, NOW)


class TestRedaction:
    def test_stored_headers_keep_no_credential(self) -> None:
        src = source(secrets=("svc:s3cret-password",))
        encoded = base64.b64encode(b"svc:s3cret-password").decode()
        stored = redact_headers(
            [
                ("Authorization", "Basic " + encoded),
                ("X-Forwarded-Auth", "Basic " + encoded),
                ("X-Echo", "pw=s3cret-password"),
                ("X-Request-Id", "r-1"),
            ],
            secret_values=src.secret_values,
            secret_headers=src.secret_headers,
        )
        assert dict(stored) == {
            "authorization": "[redacted]",
            "x-forwarded-auth": "[redacted]",
            "x-echo": "[redacted]",
            "x-request-id": "r-1",
        }


class TestDiagnose:
    def test_missing_header_says_where_credentials_go(self) -> None:
        found = hints(source(), {})
        assert any("no Authorization header" in hint and "proxy" in hint for hint in found)

    def test_a_bearer_token_points_at_provider_bearer(self) -> None:
        found = hints(source(), {"authorization": "Bearer tok_1"})
        assert any('provider = "bearer"' in hint for hint in found)

    def test_right_user_wrong_password(self) -> None:
        found = hints(source(secrets=(OLD, SECRET)), auth("hookwise:wrong-password"))
        assert any("matches secret number 1 but the password" in hint for hint in found)

    def test_unknown_user(self) -> None:
        found = hints(source(), auth("someone-else:correct-horse-battery-staple"))
        assert any("no secret has the user name" in hint for hint in found)

    def test_percent_encoded_credentials(self) -> None:
        src = source(secrets=("svc:p@ss/word",))
        found = hints(src, auth("svc:p%40ss%2Fword"))
        assert any("percent-decoded" in hint for hint in found)

    def test_stray_line_break_in_the_sent_credentials(self) -> None:
        found = hints(source(), auth(SECRET + "\n"))
        assert any("line breaks around them are removed" in hint for hint in found)

    def test_stray_line_break_in_a_configured_secret(self) -> None:
        found = hints(source(secrets=(SECRET + "\n",)), auth(SECRET))
        assert any("secret number 1 has spaces or a line break" in hint for hint in found)

    def test_hints_never_show_a_secret_or_the_sent_credentials(self) -> None:
        src = source(secrets=("svc:p@ss/word-long",))
        for headers in (auth("svc:p%40ss%2Fword-long"), auth("svc:guessed-password"), {}):
            for hint in hints(src, headers):
                assert "p@ss/word-long" not in hint
                assert "guessed-password" not in hint


class TestConfig:
    @pytest.mark.parametrize(
        ("settings", "key", "fix"),
        [
            ({"secrets": ()}, "secrets", "secrets ="),
            ({"secrets": ("no-colon",)}, "secrets", "user:password"),
            ({"secrets": (SECRET, ":")}, "secrets", "user:password"),
            ({"secrets": (SECRET, "")}, "secrets", "environment variable"),
            ({"header": "X-Auth"}, "header", "remove it"),
            ({"prefix": "Basic "}, "prefix", "remove it"),
            ({"timestamp_header": "X-Ts"}, "timestamp_header", "remove it"),
            ({"tolerance": 60.0}, "tolerance", "remove it"),
            ({"options": {"realm": "x"}}, "realm", "remove it"),
            ({"dedup_key": "const:x"}, "dedup_key", "body:"),
        ],
    )
    def test_errors_name_key_and_fix(self, settings: dict[str, Any], key: str, fix: str) -> None:
        kwargs = {"secrets": (SECRET,), **settings}
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="erp", provider="basic", **kwargs))
        assert caught.value.key == f"sources.erp.{key}"
        assert caught.value.fix is not None and fix in caught.value.fix

    def test_an_error_never_shows_the_secret(self) -> None:
        with pytest.raises(ConfigError) as caught:
            source(secrets=("password-without-user",))
        assert "password-without-user" not in str(caught.value)

    def test_an_empty_user_or_password_is_allowed(self) -> None:
        source(secrets=(":api-key-as-password",)).verify(BODY, auth(":api-key-as-password"), NOW)
        source(secrets=("api-key-as-user:",)).verify(BODY, auth("api-key-as-user:"), NOW)
