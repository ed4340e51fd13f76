"""Header decoding (hot path) and redaction (before anything is stored)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookwise.headers import (
    REDACTED,
    Redactor,
    decode_asgi_headers,
    is_sensitive_name,
    redact_headers,
)


class TestRedact:
    def test_keeps_order_and_lowercases_names(self) -> None:
        raw = [("X-B", "2"), ("Content-Type", "application/json"), ("X-A", "1")]
        assert redact_headers(raw) == (
            ("x-b", "2"),
            ("content-type", "application/json"),
            ("x-a", "1"),
        )

    @pytest.mark.parametrize(
        "name",
        [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "X-Gitlab-Token",
            "X-Client-Secret",
            "X-Password",
            "X-Passwd",
            "X-Api-Key",
            "Apikey",
            "X-Auth-Email",
            "X-Session-Id",
        ],
    )
    def test_sensitive_names(self, name: str) -> None:
        assert redact_headers([(name, "value")]) == ((name.lower(), REDACTED),)

    @pytest.mark.parametrize("name", ["content-type", "x-github-delivery", "user-agent", "x-id"])
    def test_ordinary_names_are_kept(self, name: str) -> None:
        assert not is_sensitive_name(name)
        assert redact_headers([(name, "value")]) == ((name, "value"),)

    def test_provider_secret_headers(self) -> None:
        raw = [("X-Verify", "abc"), ("X-Other", "abc")]
        assert redact_headers(raw, secret_headers=("X-Verify",)) == (
            ("x-verify", REDACTED),
            ("x-other", "abc"),
        )

    def test_any_header_repeating_a_secret(self) -> None:
        raw = [("X-Echo", "prefix-s3cret-suffix"), ("X-Fine", "s3cre")]
        assert redact_headers(raw, secret_values=("s3cret",)) == (
            ("x-echo", REDACTED),
            ("x-fine", "s3cre"),
        )

    def test_empty_secret_values_redact_nothing(self) -> None:
        assert redact_headers([("X-A", "1")], secret_values=("",)) == (("x-a", "1"),)


class TestDecodeAsgi:
    def test_lowercases_names(self) -> None:
        assert decode_asgi_headers([(b"X-Acme-Signature", b"abc")]) == {"x-acme-signature": "abc"}

    def test_latin1_keeps_every_byte(self) -> None:
        value = bytes(range(256))
        decoded = decode_asgi_headers([(b"x-raw", value)])["x-raw"]
        assert decoded.encode("latin-1") == value

    def test_repeated_headers_are_joined(self) -> None:
        raw = [(b"accept", b"a"), (b"x-id", b"1"), (b"Accept", b"b"), (b"accept", b"c")]
        assert decode_asgi_headers(raw) == {"accept": "a, b, c", "x-id": "1"}

    def test_repeated_cookies_are_joined_as_one_cookie_header(self) -> None:
        raw = [(b"cookie", b"a=1"), (b"cookie", b"b=2")]
        assert decode_asgi_headers(raw) == {"cookie": "a=1; b=2"}

    def test_empty(self) -> None:
        assert decode_asgi_headers([]) == {}


names = st.sampled_from(
    ["content-type", "x-id", "authorization", "x-api-key", "x-verify", "cookie", "x-echo"]
) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
values = st.sampled_from(["s3cret", "xx-s3cret-yy", "s3cre", "whsec_abc", "abc", ""]) | st.text(
    max_size=30
)


class TestRedactor:
    @given(
        headers=st.dictionaries(names, values, max_size=8),
        secret_values=st.lists(st.sampled_from(["s3cret", "abc", "", "whsec_abc"]), max_size=3),
        secret_headers=st.lists(st.sampled_from(["X-Verify", "x-id"]), max_size=2),
    )
    def test_redacts_exactly_as_redact_headers(
        self, headers: dict[str, str], secret_values: list[str], secret_headers: list[str]
    ) -> None:
        redact = Redactor(secret_values=secret_values, secret_headers=secret_headers)
        expected = redact_headers(
            headers.items(), secret_values=secret_values, secret_headers=secret_headers
        )
        assert redact(headers) == expected
        assert redact(headers) == expected  # again, with the names' verdicts remembered

    def test_secret_headers_of_one_source_do_not_leak_into_another(self) -> None:
        strict = Redactor(secret_headers=("X-Verify",))
        lax = Redactor()
        assert strict({"x-verify": "abc"}) == (("x-verify", REDACTED),)
        assert lax({"x-verify": "abc"}) == (("x-verify", "abc"),)

    def test_a_value_holding_a_secret_is_redacted_among_ordinary_headers(self) -> None:
        redact = Redactor(secret_values=("s3cret",))
        headers = {"content-type": "application/json", "x-echo": "a s3cret b", "x-id": "7"}
        assert redact(headers) == (
            ("content-type", "application/json"),
            ("x-echo", REDACTED),
            ("x-id", "7"),
        )
