"""Header decoding (hot path) and redaction (before anything is stored)."""

from __future__ import annotations

import pytest

from hookwise.headers import REDACTED, decode_asgi_headers, is_sensitive_name, redact_headers


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
