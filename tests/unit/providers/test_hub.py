"""What every "HMAC of the raw body" provider shares: GitHub, Bitbucket, Jira, Intercom,
Meta, Dropbox, Shopify and Linear, checked the same way for each."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Inbound, build_source, provider_spec
from hookwise.providers._extract import parse_spec
from hookwise.providers._hub import BodySignature, HubSource, Rules

NOW = 1_700_000_000.0
PROVIDERS = ("github", "bitbucket", "jira", "intercom", "meta", "dropbox", "shopify", "linear")
SIGNATURE_HEADER = {
    "github": "x-hub-signature-256",
    "bitbucket": "x-hub-signature",
    "jira": "x-hub-signature",
    "intercom": "x-hub-signature",
    "meta": "x-hub-signature-256",
    "dropbox": "x-dropbox-signature",
    "shopify": "x-shopify-hmac-sha256",
    "linear": "linear-signature",
}
PREFIXED = {"github", "bitbucket", "jira", "intercom", "meta"}
TIMESTAMPED = {"linear"}
PROPERTY = settings(max_examples=50, deadline=None)


def example(provider: str) -> dict[str, Any]:
    module = importlib.import_module(f"hookwise.providers.{provider}")
    return dict(module.EXAMPLE_SETTINGS)


def source(provider: str, **overrides: Any) -> HubSource:
    built = build_source(
        SourceSettings(name="src", provider=provider, **{**example(provider), **overrides})
    )
    assert isinstance(built, HubSource)
    return built


def config_error(provider: str, **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(provider, **overrides)
    return caught.value


def reason(src: HubSource, body: bytes, headers: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, now)
    return caught.value.reason


def first_sample(src: HubSource) -> tuple[bytes, dict[str, str]]:
    body = next(iter(src.samples(NOW).values()))
    signed = src.sign_request(body, now=NOW)
    return signed.body, signed.headers


@pytest.mark.parametrize("provider", PROVIDERS)
class TestEveryProvider:
    def test_samples_verify_and_describe_with_their_own_type(self, provider: str) -> None:
        src = source(provider)
        samples = src.samples(NOW)
        assert len(samples) >= (1 if provider == "dropbox" else 3)
        ids = set()
        for event_type, body in samples.items():
            json.loads(body)
            signed = src.sign_request(body, now=NOW)
            assert signed.body == body
            src.verify(signed.body, signed.headers, NOW)
            described = src.describe(signed.body, signed.headers, NOW)
            assert described.type == event_type
            ids.add(described.dedup_key)
        assert len(ids) == len(samples)

    def test_samples_are_fresh(self, provider: str) -> None:
        src = source(provider)
        first, second = src.samples(NOW), src.samples(NOW)
        assert first.keys() == second.keys()
        assert all(first[kind] != second[kind] for kind in first)

    def test_a_tampered_body_fails(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        tampered = body.replace(b'"', b"'", 1)
        assert reason(src, tampered, headers) == "no_matching_signature"
        assert reason(src, body + b"\n", headers) == "no_matching_signature"

    def test_a_wrong_secret_fails(self, provider: str) -> None:
        body, headers = first_sample(source(provider))
        other = source(provider, secrets=("another-secret",))
        assert reason(other, body, headers) == "no_matching_signature"

    def test_rotation_either_secret_passes_a_third_fails(self, provider: str) -> None:
        old, new = "old-secret-value", "new-secret-value"
        both = source(provider, secrets=(new, old))
        body = next(iter(both.samples(NOW).values()))
        for index in (0, 1):
            signed = both.sign_request(body, now=NOW, secret_index=index)
            both.verify(signed.body, signed.headers, NOW)
        for alone in (old, new):
            signed = source(provider, secrets=(alone,)).sign_request(body, now=NOW)
            both.verify(signed.body, signed.headers, NOW)
        third = source(provider, secrets=("third-secret-value",)).sign_request(body, now=NOW)
        assert reason(both, third.body, third.headers) == "no_matching_signature"
        with pytest.raises(ValueError, match="out of range"):
            both.sign_request(body, now=NOW, secret_index=2)

    def test_missing_and_empty_signature_headers(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        name = SIGNATURE_HEADER[provider]
        without = {key: value for key, value in headers.items() if key != name}
        if provider in ("github", "meta"):
            without.pop("x-hub-signature", None)  # the legacy SHA-1 header they also send
        assert reason(src, body, without) == "missing_header"
        assert reason(src, body, {**without, name: "  "}) == "missing_header"

    def test_malformed_signature_headers(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        name = SIGNATURE_HEADER[provider]
        value = headers[name]
        if provider in PREFIXED:
            bare = value.split("=", 1)[1]
            assert reason(src, body, {**headers, name: bare}) == "malformed_header"
            prefix = value.split("=", 1)[0] + "="
            assert reason(src, body, {**headers, name: prefix}) == "malformed_header"
        else:
            assert reason(src, body, {**headers, name: "not-a-signature"}) == (
                "no_matching_signature"
            )
        # A correct signature among junk still passes; case does not matter for hex.
        src.verify(body, {**headers, name: f"junk, {value}"}, NOW)
        if src.signature.scheme.encoding == "hex":
            src.verify(body, {**headers, name: value.upper()}, NOW)

    def test_signatures_from_the_module_verify_through_the_signature_object(
        self, provider: str
    ) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        src.signature.verify(headers, body)
        value = headers[src.signature.header]
        assert src.signature.matches(src.signing_secrets[0].encode(), value, body)
        assert not src.signature.matches(b"another-secret", value, body)

    def test_secret_values_and_headers(self, provider: str) -> None:
        src = source(provider)
        for secret in example(provider)["secrets"]:
            assert secret in src.secret_values
        assert src.secret_headers == ()
        assert src.provider == provider
        assert src.insecure is False

    def test_registered_with_docs_info(self, provider: str) -> None:
        spec = provider_spec(provider)
        assert spec.info is not None
        assert spec.info.signs_body
        assert spec.info.signed_headers == ()
        assert provider.lower() in spec.description.lower()

    def test_secrets_are_required(self, provider: str) -> None:
        error = config_error(provider, secrets=())
        assert error.key == "sources.src.secrets"
        error = config_error(provider, secrets=("good", ""))
        assert error.key == "sources.src.secrets"
        assert "secret number 2" in error.problem

    @pytest.mark.parametrize(
        ("field", "value"),
        [("header", "X-Sig"), ("prefix", "sha256="), ("algorithm", "sha1"), ("encoding", "base64")],
    )
    def test_scheme_settings_are_refused(self, provider: str, field: str, value: str) -> None:
        assert config_error(provider, **{field: value}).key == f"sources.src.{field}"

    def test_unknown_options_are_refused(self, provider: str) -> None:
        options = {**example(provider).get("options", {}), "colour": "red"}
        error = config_error(provider, options=options)
        assert error.key == "sources.src.colour"
        assert error.fix is not None

    def test_tolerance_only_where_a_time_is_signed(self, provider: str) -> None:
        if provider in TIMESTAMPED:
            assert source(provider, tolerance=60.0).provider == provider
            assert config_error(provider, tolerance=-1.0).key == "sources.src.tolerance"
        else:
            error = config_error(provider, tolerance=60.0)
            assert error.key == "sources.src.tolerance"
            assert "timestamp" in error.problem

    def test_bad_extraction_specs_name_their_key(self, provider: str) -> None:
        assert config_error(provider, dedup_key="header:").key == "sources.src.dedup_key"
        assert config_error(provider, type="query:x").key == "sources.src.type"
        assert config_error(provider, ordering_key="a..b").key == "sources.src.ordering_key"
        assert config_error(provider, occurred_at="header:").key == "sources.src.occurred_at"

    def test_settings_replace_the_defaults(self, provider: str) -> None:
        src = source(
            provider,
            dedup_key="header:X-My-Id",
            type="const:custom",
            ordering_key="body:custom.key",
            occurred_at="body:custom.at",
        )
        body = b'{"custom": {"key": "k-1", "at": "2024-01-01T00:00:00Z"}, "action": "x"}'
        described = src.describe(body, {"x-my-id": "id-1"}, NOW)
        assert (described.dedup_key, described.type) == ("id-1", "custom")
        assert (described.ordering_key, described.occurred_at) == ("k-1", 1704067200.0)

    def test_describe_never_fails_on_a_body_that_is_not_json(self, provider: str) -> None:
        described = source(provider).describe(b"\xff not json", {}, NOW)
        assert described.dedup_key.startswith("sha256:")
        assert described.type in ("unknown", "list_folder")
        assert described.ordering_key is None

    def test_diagnosis_names_the_secret_with_stray_whitespace(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        spaced = source(provider, secrets=(example(provider)["secrets"][0] + "\n",))
        request = Inbound(body, headers)
        error = VerificationError("no_matching_signature")
        hints = spaced.diagnose(request, NOW, error)
        assert any("secret number 1 has spaces or a line break" in hint for hint in hints)
        assert any(spaced.key_hint in hint for hint in hints)

    def test_diagnosis_points_at_the_provider_whose_header_came(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        name = SIGNATURE_HEADER[provider]
        foreign = "linear-signature" if provider != "linear" else "x-shopify-hmac-sha256"
        sent = {key: value for key, value in headers.items() if not key.endswith("signature")}
        sent.pop(name, None)
        sent[foreign] = "abc"
        hints = src.diagnose(Inbound(body, sent), NOW, VerificationError("missing_header"))
        assert hints
        assert foreign in hints[0]
        assert "provider is wrong" in hints[0]

    def test_diagnosis_says_why_a_signature_may_be_missing(self, provider: str) -> None:
        src = source(provider)
        body, _ = first_sample(src)
        hints = src.diagnose(Inbound(body, {}), NOW, VerificationError("missing_header"))
        assert hints[0] == src.missing_hint

    def test_diagnosis_spots_the_other_encoding(self, provider: str) -> None:
        src = source(provider)
        body, headers = first_sample(src)
        name = SIGNATURE_HEADER[provider]
        prefix = src.signature.scheme.prefix
        other = "3q2+7w==" if src.signature.scheme.encoding == "hex" else "ab" * 32
        hints = src.diagnose(
            Inbound(body, {**headers, name: prefix + other}),
            NOW,
            VerificationError("no_matching_signature"),
        )
        assert any("where" in hint and "is expected" in hint for hint in hints)


@pytest.mark.parametrize("provider", PROVIDERS)
@PROPERTY
@given(
    body=st.binary(max_size=200) | st.sampled_from([b"{}", b"[]", b'{"webhookTimestamp": 1e400}']),
    value=st.text(max_size=120),
)
def test_junk_only_ever_raises_verification_errors(provider: str, body: bytes, value: str) -> None:
    src = source(provider)
    wire = value.encode("utf-8", "replace").decode("latin-1")
    for name in (SIGNATURE_HEADER[provider], "x-hub-signature", "shopify-hmac-sha256"):
        try:
            src.verify(body, {name: wire}, NOW)
        except VerificationError:
            pass
    described = src.describe(body, {"x-github-event": wire, "linear-event": wire}, NOW)
    assert described.dedup_key and described.type


def test_rules_describe_with_fallbacks_suffix_and_milliseconds() -> None:
    def spec(text: str) -> Any:
        return parse_spec(text, key="k", allow_const=True)

    rules = Rules(
        dedup=(spec("header:x-a"), spec("header:x-b")),
        type=(spec("header:x-event"), spec("body:type")),
        action=(spec("body:action"),),
        ordering_key=(spec("body:data.gid"), spec("body:data.id")),
        occurred_at=((spec("body:created"), 1), (spec("body:millis"), 1000)),
    )
    body = b'{"type": "Issue", "action": "create", "data": {"id": 7}, "millis": 1700000000500}'
    described = rules.describe(body, {"x-b": "second"})
    assert described.dedup_key == "second"
    assert described.type == "Issue.create"
    assert described.ordering_key == "7"
    assert described.occurred_at == 1700000000.5
    assert rules.describe(b'{"action": "x"}', {}).type == "unknown"
    assert rules.extraction().dedup == spec("header:x-a")
    assert rules.needs_body


def test_rules_parse_the_body_once_and_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    import hookwise.providers._hub as hub

    calls: list[bytes] = []
    original = hub.parse_body_fast

    def counting(body: bytes) -> tuple[object, bool]:
        calls.append(body)
        return original(body)

    monkeypatch.setattr(hub, "parse_body_fast", counting)
    headers_only = Rules(dedup=(parse_spec("header:x-id", key="k"),))
    headers_only.describe(b"{}", {"x-id": "1"})
    assert calls == []
    src = source("github")
    src.describe(
        b'{"action": "opened", "repository": {"id": 1}}', {"x-github-event": "issues"}, NOW
    )
    assert len(calls) == 1


def test_body_signature_reasons_and_repr() -> None:
    signature = BodySignature("X-Sig", "sha256", "hex", "sha256=", [b"k3y"])
    assert repr(signature) == "<BodySignature X-Sig sha256>"
    good = signature.sign(0, b"body")
    signature.verify({"x-sig": good}, b"body")
    with pytest.raises(VerificationError, match="missing_header"):
        signature.verify({}, b"body")
    with pytest.raises(VerificationError, match="malformed_header"):
        signature.verify({"x-sig": "sha1=" + "0" * 40}, b"body")
    with pytest.raises(VerificationError, match="no_matching_signature"):
        signature.verify({"x-sig": "sha256=" + "0" * 64}, b"body")
    # Only the first few values of a long header are compared.
    crowded = ", ".join(["sha256=" + "0" * 64] * 20 + [good])
    with pytest.raises(VerificationError, match="no_matching_signature"):
        signature.verify({"x-sig": crowded}, b"body")
