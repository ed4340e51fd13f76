"""What every registered provider must do, checked the same way for all of them.

Each provider module gives ``EXAMPLE_SETTINGS`` (how to build a working source) and a
:class:`ProviderInfo`; these tests build a source from them and check its samples,
its signing against its own verification, and that junk and single-byte changes are
refused with :class:`VerificationError` and nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers import KNOWN_PROVIDERS, Inbound, Source, build_source, provider_spec
from hookwise.providers._base import UNKNOWN_TYPE

NOW = 1_700_000_000.0
EXAMPLE_URL = "https://hooks.example.com/hooks/example"
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def example_settings(provider: str) -> dict[str, Any]:
    module = importlib.import_module(f"hookwise.providers.{provider}")
    example: dict[str, Any] = dict(module.EXAMPLE_SETTINGS)
    return example


def example_source(provider: str, **overrides: Any) -> Source:
    values = {**example_settings(provider), **overrides}
    return build_source(SourceSettings(name="example", provider=provider, **values))


def signed(source: Source, body: bytes, *, now: float = NOW) -> Inbound:
    """The request a sender would make for ``body``, as the receiver would see it."""
    request = source.sign_request(body, now=now)
    url = source.public_url or EXAMPLE_URL
    return Inbound(
        request.body,
        {name.lower(): value for name, value in request.headers.items()},
        method=request.method,
        url=url + ("?" + request.query if request.query else ""),
        query=request.query,
    )


def samples(provider: str) -> list[tuple[str, bytes]]:
    return sorted(example_source(provider).samples(NOW).items())


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_every_provider_documents_itself(provider: str) -> None:
    spec = provider_spec(provider)
    assert spec.info is not None, f"{provider} has no ProviderInfo"
    for field in ("scheme", "headers", "dedup_key", "retries", "credential"):
        assert getattr(spec.info, field).strip(), f"{provider}: empty {field}"
    assert spec.description.strip()
    assert example_source(provider).provider == provider


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_every_sample_verifies_and_describes_itself(provider: str) -> None:
    source = example_source(provider)
    found = samples(provider)
    assert found, f"{provider} has no samples"
    keys = set()
    for event_type, body in found:
        request = signed(source, body)
        source.verify_request(request, NOW)
        assert source.handshake(request, NOW) is None, (
            f"{provider}: sample {event_type} is a handshake"
        )
        described = source.describe(request.body, request.headers, NOW)
        assert described.dedup_key
        keys.add(described.dedup_key)
        type_from_header = source.extraction.type is not None and (
            source.extraction.type.kind == "header"
        )
        if not type_from_header and described.type != UNKNOWN_TYPE:
            assert described.type == event_type, (provider, event_type, described.type)
    assert len(keys) == len(found), f"{provider}: samples share a dedup key"


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
def test_samples_are_fresh_each_time(provider: str) -> None:
    source = example_source(provider)
    first = source.samples(NOW)
    second = source.samples(NOW)
    assert first.keys() == second.keys()
    if provider_spec(provider).info is not None:
        for event_type in first:
            one = source.describe(first[event_type], {}, NOW).dedup_key
            two = source.describe(second[event_type], {}, NOW).dedup_key
            if not one.startswith("sha256:"):
                assert one != two, f"{provider}: {event_type} samples repeat their id"


def _flip(data: bytes, position: int) -> bytes:
    index = position % len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("provider", [p for p in KNOWN_PROVIDERS if p != "none"])
@PROPERTY
@given(position=st.integers(min_value=0, max_value=10_000), pick=st.integers(0, 100))
def test_a_single_byte_change_fails(provider: str, position: int, pick: int) -> None:
    source = example_source(provider)
    info = provider_spec(provider).info
    assert info is not None
    options = samples(provider)
    _, body = options[pick % len(options)]
    request = signed(source, body)
    source.verify_request(request, NOW)
    if info.signs_body:
        changed = request.replace(body=_flip(request.body, position))
        with pytest.raises(VerificationError):
            source.verify_request(changed, NOW)
    for name in info.signed_headers:
        value = request.headers.get(name)
        assert value is not None, f"{provider}: signed header {name} is not sent"
        flipped = _flip(value.encode("latin-1"), position).decode("latin-1")
        headers = {**request.headers, name: flipped}
        with pytest.raises(VerificationError):
            source.verify_request(request.replace(headers=headers), NOW)


header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "v1,", "t=1,v1=00", "sha256=", "ts=;h1=", "v0=zz", "Basic !!", "="]),
)


@pytest.mark.parametrize("provider", KNOWN_PROVIDERS)
@PROPERTY
@given(
    body=st.binary(max_size=300),
    values=st.lists(header_values, min_size=12, max_size=12),
    query=st.text(max_size=40),
)
def test_junk_is_refused_with_a_verification_error_only(
    provider: str, body: bytes, values: list[str], query: str
) -> None:
    source = example_source(provider)
    # The provider's own header names, with junk in them.
    names = sorted(signed(source, samples(provider)[0][1]).headers)
    names += ["x-signature", "authorization", "x-hub-signature-256", "webhook-signature"]
    headers = {
        name: value.encode("utf-8", "replace").decode("latin-1")
        for name, value in zip(names, values, strict=False)
    }
    request = Inbound(body, headers, url=EXAMPLE_URL, query=query)
    try:
        source.verify_request(request, NOW)
    except VerificationError:
        pass
    for method in sorted(source.handshake_methods):
        try:
            source.handshake(
                Inbound(b"", headers, method=method, url=EXAMPLE_URL, query=query), NOW
            )
        except VerificationError:
            pass
    hints = source.diagnose(request, NOW, VerificationError("no_matching_signature"))
    assert all(isinstance(hint, str) and hint for hint in hints)
    for secret in source.secret_values:
        if len(secret) >= 8:
            assert not any(secret in hint for hint in hints), "a hint shows a secret"
