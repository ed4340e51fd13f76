"""Providers: building sources from settings, signing and verifying, describing deliveries."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hookwise.providers._base as base
from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import KNOWN_PROVIDERS, PROVIDERS, Description, Source, build_source
from hookwise.providers._extract import parse_body_fast

NOW = 1_700_000_000.0
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_bXlzZWNyZXRrZXkxMjM0NQ=="
GITHUB_SHA256 = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def source(provider: str, **kwargs: Any) -> Source:
    if provider != "none":
        kwargs.setdefault("secrets", (WHSEC,) if provider == "standard" else ("s3cret",))
    if provider == "hmac":
        kwargs.setdefault("header", "X-Acme-Signature")
    return build_source(SourceSettings(name="acme", provider=provider, **kwargs))


def config_error(provider: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(provider, **kwargs)
    return caught.value


def test_registry_lists_every_provider_sorted_with_a_description() -> None:
    assert {"hmac", "none", "standard"} <= set(KNOWN_PROVIDERS)
    assert list(KNOWN_PROVIDERS) == sorted(KNOWN_PROVIDERS)
    assert tuple(PROVIDERS) == KNOWN_PROVIDERS
    assert all(PROVIDERS.values())


class TestStandard:
    body = b'{"type": "invoice.paid", "data": {"id": "in_1"}}'

    def test_signed_headers_verify(self) -> None:
        src = source("standard")
        headers = src.sign_headers(self.body, now=NOW, delivery_id="msg_1")
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert headers["webhook-timestamp"] == "1700000000"
        src.verify(self.body, headers, NOW)

    def test_made_up_ids_differ(self) -> None:
        src = source("standard")
        first = src.sign_headers(b"", now=NOW)["webhook-id"]
        assert first != src.sign_headers(b"", now=NOW)["webhook-id"]
        assert "." not in first

    def test_rotation_any_secret_verifies(self) -> None:
        src = source("standard", secrets=(WHSEC_NEW, WHSEC))
        for index in (0, 1):
            src.verify(self.body, src.sign_headers(self.body, now=NOW, secret_index=index), NOW)
        with pytest.raises(ValueError, match="out of range"):
            src.sign_headers(self.body, now=NOW, secret_index=2)

    def test_stale_and_tampered_deliveries_are_rejected(self) -> None:
        src = source("standard", tolerance=60)
        headers = src.sign_headers(self.body, now=NOW)
        with pytest.raises(VerificationError, match="timestamp_too_old"):
            src.verify(self.body, headers, NOW + 61)
        with pytest.raises(VerificationError, match="no_matching_signature"):
            src.verify(self.body + b" ", headers, NOW)
        other = source("standard", secrets=(WHSEC_NEW,))
        with pytest.raises(VerificationError, match="no_matching_signature"):
            other.verify(self.body, headers, NOW)

    def test_describe_defaults(self) -> None:
        src = source("standard")
        described = src.describe(self.body, {"webhook-id": "msg_1"}, NOW)
        assert described == Description("msg_1", "invoice.paid", None, None)

    def test_describe_falls_back_when_the_id_or_type_is_missing(self) -> None:
        described = source("standard").describe(b"[1]", {}, NOW)
        assert described.dedup_key == "sha256:" + hashlib.sha256(b"[1]").hexdigest()
        assert described.type == "unknown"

    def test_settings_override_type_and_add_ordering(self) -> None:
        src = source("standard", type="header:X-Event", ordering_key="data.id")
        described = src.describe(self.body, {"webhook-id": "m", "x-event": "e"}, NOW)
        assert (described.type, described.ordering_key) == ("e", "in_1")

    def test_secret_values_include_the_bare_base64(self) -> None:
        src = source("standard")
        assert src.secret_values == (WHSEC, WHSEC.removeprefix("whsec_"))
        assert src.secret_headers == ()
        assert src.insecure is False
        assert src.provider == "standard"
        assert src.name == "acme"

    @pytest.mark.parametrize("secret", ["whsec_", "whsec_%%%%", "whsec_abcde"])
    def test_bad_secret(self, secret: str) -> None:
        error = config_error("standard", secrets=("whsec_c2VjcmV0", secret))
        assert error.key == "sources.acme.secrets"
        assert "secret number 2" in error.problem
        assert secret.removeprefix("whsec_") not in str(error) or not secret.removeprefix("whsec_")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("header", "X-Sig"),
            ("prefix", "sha256="),
            ("algorithm", "sha1"),
            ("signed_content", "{body}"),
        ],
    )
    def test_hmac_settings_are_refused(self, field: str, value: str) -> None:
        assert config_error("standard", **{field: value}).key == f"sources.acme.{field}"


class TestHmac:
    body = (
        b'{"id": "evt_1", "type": "order.created", "order": {"id": 42},'
        b' "at": "2024-01-01T00:00:00Z"}'
    )

    def test_github_style(self) -> None:
        src = source(
            "hmac",
            header="X-Hub-Signature-256",
            prefix="sha256=",
            secrets=("It's a Secret to Everybody",),
            dedup_key="header:X-GitHub-Delivery",
            type="header:X-GitHub-Event",
        )
        headers = {
            "x-hub-signature-256": GITHUB_SHA256,
            "x-github-delivery": "d-1",
            "x-github-event": "push",
        }
        src.verify(b"Hello, World!", headers, NOW)
        assert src.describe(b"Hello, World!", headers, NOW) == Description("d-1", "push")
        assert src.secret_values == ("It's a Secret to Everybody",)

    def test_signed_headers_verify_with_timestamp_id_and_template(self) -> None:
        src = source(
            "hmac",
            secrets=("old", "new"),
            encoding="base64",
            timestamp_header="X-Acme-Timestamp",
            signed_content="{id}:{timestamp}:{body}",
            dedup_key="header:X-Acme-Delivery",
        )
        headers = src.sign_headers(self.body, now=NOW, secret_index=1, delivery_id="d-9")
        assert headers["x-acme-timestamp"] == "1700000000"
        assert headers["x-acme-delivery"] == "d-9"
        src.verify(self.body, headers, NOW)
        assert src.describe(self.body, headers, NOW).dedup_key == "d-9"
        with pytest.raises(VerificationError, match="no_matching_signature"):
            src.verify(self.body, {**headers, "x-acme-delivery": "d-10"}, NOW)
        with pytest.raises(VerificationError, match="timestamp_too_new"):
            src.verify(self.body, headers, NOW - 301)

    def test_id_header_option(self) -> None:
        src = source("hmac", signed_content="{id}{body}", options={"id_header": "X-Msg"})
        headers = src.sign_headers(self.body, now=NOW)
        assert "x-msg" in headers
        src.verify(self.body, headers, NOW)

    def test_describe_from_settings(self) -> None:
        src = source(
            "hmac",
            dedup_key="body:id",
            type="const:order",
            ordering_key="order.id",
            occurred_at="body:at",
        )
        assert src.describe(self.body, {}, NOW) == Description("evt_1", "order", "42", 1704067200.0)

    def test_describe_defaults(self) -> None:
        described = source("hmac").describe(self.body, {}, NOW)
        assert described.dedup_key == "sha256:" + hashlib.sha256(self.body).hexdigest()
        assert described.type == "order.created"
        assert described.ordering_key is None
        assert described.occurred_at is None

    def test_describe_never_fails_on_a_body_that_is_not_json(self) -> None:
        src = source("hmac", dedup_key="body:id", ordering_key="a.b", occurred_at="at")
        described = src.describe(b"\xff not json", {}, NOW)
        assert described.type == "unknown"
        assert described.dedup_key.startswith("sha256:")
        assert (described.ordering_key, described.occurred_at) == (None, None)

    @pytest.mark.parametrize(
        ("settings", "key", "fix"),
        [
            ({"header": None}, "header", "header ="),
            ({"header": "  "}, "header", "header ="),
            ({"secrets": ()}, "secrets", "secrets ="),
            ({"secrets": ("a", "")}, "secrets", "environment variable"),
            ({"algorithm": "md5"}, "algorithm", "sha1, sha256, sha512"),
            ({"encoding": "base32"}, "encoding", "base64, hex"),
            ({"prefix": "sha256 ="}, "prefix", "sha256="),
            ({"signed_content": "{timestamp}"}, "signed_content", "{body}"),
            ({"signed_content": "{method}{body}"}, "signed_content", "{body}"),
            ({"signed_content": "{timestamp}.{body}"}, "timestamp_header", "timestamp_header"),
            ({"signed_content": "{id}.{body}"}, "dedup_key", "header:"),
            ({"dedup_key": "const:x"}, "dedup_key", "body:"),
            ({"dedup_key": "header:"}, "dedup_key", "header:"),
            ({"type": "query:x"}, "type", "const:VALUE"),
            ({"ordering_key": "a..b"}, "ordering_key", "body:"),
            ({"occurred_at": "header:"}, "occurred_at", "header:"),
            ({"tolerance": -1.0}, "tolerance", "5m"),
            ({"options": {"colour": "red"}}, "colour", "id_header"),
            ({"options": {"id_header": 3}}, "id_header", "id_header ="),
        ],
    )
    def test_build_errors_name_key_and_fix(
        self, settings: dict[str, Any], key: str, fix: str
    ) -> None:
        error = config_error("hmac", **settings)
        assert error.key == f"sources.acme.{key}"
        assert error.fix is not None
        assert fix in error.fix


class TestNone:
    def test_accepts_anything_and_signs_nothing(self) -> None:
        src = source("none")
        assert src.insecure is True
        src.verify(b"\x00", {}, NOW)
        assert src.sign_headers(b"{}", now=NOW) == {}
        assert src.secret_values == ()

    def test_describe_uses_the_hmac_rules(self) -> None:
        src = source("none", dedup_key="header:X-Id")
        assert src.describe(b'{"type": "t"}', {"x-id": "1"}, NOW) == Description("1", "t")

    def test_secrets_are_refused(self) -> None:
        assert config_error("none", secrets=("s3cret",)).key == "sources.acme.secrets"

    def test_scheme_settings_are_refused(self) -> None:
        assert config_error("none", header="X-Sig").key == "sources.acme.header"


def test_unknown_provider() -> None:
    error = config_error("stripey")
    assert error.key == "sources.acme.provider"
    assert error.fix == f"use one of: {', '.join(KNOWN_PROVIDERS)}"


def test_standard_without_secrets() -> None:
    error = config_error("standard", secrets=())
    assert error.key == "sources.acme.secrets"


class TestBodyParsing:
    def count_parses(self, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
        calls: list[bytes] = []

        def counting(body: bytes) -> tuple[object, bool]:
            calls.append(body)
            return parse_body_fast(body)

        monkeypatch.setattr(base, "parse_body_fast", counting)
        return calls

    def test_body_is_not_parsed_when_nothing_reads_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = self.count_parses(monkeypatch)
        src = source("hmac", dedup_key="header:X-Id", type="header:X-Type")
        assert src.describe(b"{}", {"x-id": "1", "x-type": "t"}, NOW) == Description("1", "t")
        assert calls == []

    def test_body_is_parsed_once_for_many_fields(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = self.count_parses(monkeypatch)
        src = source("hmac", dedup_key="id", type="type", ordering_key="k", occurred_at="at")
        body = json.dumps({"id": "1", "type": "t", "k": "o", "at": 5}).encode()
        assert src.describe(body, {}, NOW) == Description("1", "t", "o", 5.0)
        assert calls == [body]


@given(
    body=st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    headers=st.dictionaries(
        st.sampled_from(["x-id", "x-type", "webhook-id"]) | st.text(max_size=8),
        st.text(max_size=20),
    ),
)
def test_describe_never_raises(body: bytes, headers: dict[str, str]) -> None:
    sources = [
        source("standard", ordering_key="data.0.id", occurred_at="header:X-Type"),
        source("hmac", dedup_key="body:id.0", type="header:X-Type", occurred_at="body:time"),
        source("none", dedup_key="header:X-Id", type="body:type.name", ordering_key="0"),
    ]
    for src in sources:
        described = src.describe(body, headers, NOW)
        assert described.dedup_key
        assert described.type
