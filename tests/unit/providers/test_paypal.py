"""Provider ``paypal``: the signed message, certificate URL pinning, download + cache over a
real loopback server, chain and name checks, replay of a CRC-32 twin."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers import Description, Inbound, build_source, provider_spec
from hookwise.providers import paypal as module
from hookwise.providers.paypal import PayPalSource
from hookwise.signatures import paypal as scheme

NOW = 1_700_000_000.0
WEBHOOK_ID = "9XL90610J3647323C"
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
BODY = (
    b'{"id":"WH-9UG43882HX7271132-6E0871324L7949614","event_version":"1.0",'
    b'"create_time":"2016-09-21T22:00:45Z","resource_type":"sale",'
    b'"event_type":"PAYMENT.SALE.COMPLETED","summary":"Payment completed for $ 21.0 USD",'
    b'"resource":{"id":"80F85758S3080410K","state":"completed"}}'
)
START = datetime(2023, 1, 1, tzinfo=UTC)
END = datetime(2045, 1, 1, tzinfo=UTC)  # valid for NOW and for the wall clock


# -- certificates -------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: Any,
    issuer: tuple[x509.Name, Any] | None = None,
    *,
    ca: bool = False,
    start: datetime = START,
    end: datetime = END,
    dns: str | None = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = _certificate("hookwise test root", ROOT_KEY, ca=True)
INTERMEDIATE_KEY = ec.generate_private_key(ec.SECP256R1())
INTERMEDIATE = _certificate(
    "hookwise test intermediate", INTERMEDIATE_KEY, (ROOT.subject, ROOT_KEY), ca=True
)
LEAF_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LEAF = _certificate(
    "messageverificationcerts.sandbox.paypal.com",
    LEAF_KEY,
    (INTERMEDIATE.subject, INTERMEDIATE_KEY),
)
SELF_SIGNED = _certificate("messageverificationcerts.paypal.com", LEAF_KEY)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = _certificate("messageverificationcerts.paypal.com", OTHER_KEY)


def source(**options: Any) -> PayPalSource:
    settings_kwargs = options.pop("settings", {})
    options.setdefault("webhook_id", WEBHOOK_ID)
    built = build_source(
        SourceSettings(name="paypal", provider="paypal", options=options, **settings_kwargs)
    )
    assert isinstance(built, PayPalSource)
    return built


def signing_source(**options: Any) -> PayPalSource:
    options.setdefault("certificates", {CERT_URL: pem(LEAF)})
    options.setdefault("signing_key", private_pem(LEAF_KEY))
    return source(**options)


def reason(src: PayPalSource, body: bytes, headers: dict[str, str], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        src.verify(body, headers, now)
    return caught.value.reason


def hints(src: PayPalSource, body: bytes, headers: dict[str, str]) -> tuple[str, ...]:
    inbound = Inbound(body, headers, url="https://hooks.example.com/hooks/paypal")
    with pytest.raises(VerificationError) as caught:
        src.verify_request(inbound, NOW)
    return src.diagnose(inbound, NOW, caught.value)


def config_error(**options: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        source(**options)
    return caught.value


# -- a real certificate server on loopback -----------------------------------------------


@dataclass
class CertServer:
    host: str
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://{self.host}/v1/notifications/certs/{name}"

    def serve(self, name: str, body: bytes | str, status: int = 200, **headers: str) -> str:
        raw = body.encode() if isinstance(body, str) else body
        self.routes[f"/v1/notifications/certs/{name}"] = (status, raw, headers)
        return self.url(name)


@pytest.fixture
def cert_server() -> Iterator[CertServer]:
    state = CertServer(host="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            status, body, headers = state.routes.get(self.path, (404, b"not found", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def remote_source(server: CertServer, **options: Any) -> PayPalSource:
    options.setdefault("trusted_cert_hosts", [server.host])
    options.setdefault("ca_bundle", pem(ROOT))
    return source(**options)


def signed_headers(
    cert_url: str,
    body: bytes = BODY,
    *,
    key: rsa.RSAPrivateKey = LEAF_KEY,
    webhook_id: str = WEBHOOK_ID,
    now: float = NOW,
) -> dict[str, str]:
    moment = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    transmission = "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
    return {
        scheme.ID_HEADER: transmission,
        scheme.TIME_HEADER: moment,
        scheme.CERT_URL_HEADER: cert_url,
        scheme.ALGORITHM_HEADER: "SHA256withRSA",
        scheme.SIGNATURE_HEADER: scheme.sign(key, transmission, moment, webhook_id, body),
    }


# -- tests ------------------------------------------------------------------------------


class TestScheme:
    def test_signed_message_uses_the_unsigned_decimal_crc32(self) -> None:
        message = scheme.signed_message("id-1", "2016-02-18T20:01:35Z", WEBHOOK_ID, BODY)
        assert message == f"id-1|2016-02-18T20:01:35Z|{WEBHOOK_ID}|{zlib.crc32(BODY)}".encode()
        # CRC-32 of "{}" is 0xA3A6E6C3: above 2**31, negative if read as a signed integer
        assert scheme.signed_message("i", "t", "w", b"{}") == b"i|t|w|2745614147"

    def test_signature_is_pkcs1v15_sha256(self) -> None:
        headers = signed_headers(CERT_URL)
        message = scheme.signed_message(
            headers[scheme.ID_HEADER], headers[scheme.TIME_HEADER], WEBHOOK_ID, BODY
        )
        import base64

        LEAF_KEY.public_key().verify(
            base64.b64decode(headers[scheme.SIGNATURE_HEADER]),
            message,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    @pytest.mark.parametrize(
        "url",
        [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://API-M.SANDBOX.PAYPAL.COM:443/v1/notifications/certs/CERT-1",
        ],
    )
    def test_paypal_certificate_urls(self, url: str) -> None:
        assert scheme.check_cert_url(url) == url

    @pytest.mark.parametrize(
        "url",
        [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://evil.example.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.example.com/v1/notifications/certs/CERT-1",
            "https://paypal.com/v1/notifications/certs/CERT-1",
            "https://www.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@evil.example.com/v1/notifications/certs/CERT-1",
            "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1#x",
            "https://api.paypal.com/v1/notifications/certs/" + "A" * 500,
            "ftp://api.paypal.com/v1/notifications/certs/CERT-1",
            "//api.paypal.com/v1/notifications/certs/CERT-1",
            "https://[::1/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:99999/v1/notifications/certs/CERT-1",
        ],
    )
    def test_everything_else_is_untrusted(self, url: str) -> None:
        with pytest.raises(VerificationError) as caught:
            scheme.check_cert_url(url)
        assert caught.value.reason == "untrusted_certificate_url"

    def test_extra_hosts_for_tests(self) -> None:
        url = "http://127.0.0.1:8443/v1/notifications/certs/CERT-1"
        assert scheme.check_cert_url(url, extra_hosts=["127.0.0.1:8443"]) == url
        with pytest.raises(VerificationError):
            scheme.check_cert_url(url, extra_hosts=["127.0.0.1:8444"])

    def test_names_paypal(self) -> None:
        assert scheme.names_paypal(LEAF)
        assert scheme.names_paypal(
            _certificate("x", LEAF_KEY, dns="messageverificationcerts.paypal.com")
        )
        assert not scheme.names_paypal(
            _certificate("messageverificationcerts.paypal.com.evil.example", LEAF_KEY)
        )
        assert not scheme.names_paypal(_certificate("www.paypal.com", LEAF_KEY))

    def test_chain(self) -> None:
        roots = {ROOT.subject: [ROOT]}
        scheme.check_chain([LEAF, INTERMEDIATE], roots, NOW)
        scheme.check_chain([LEAF, ROOT, INTERMEDIATE], roots, NOW)  # order does not matter
        for bundle, now in (
            ([LEAF], NOW),  # the intermediate is missing
            ([SELF_SIGNED], NOW),
            ([LEAF, INTERMEDIATE], END.timestamp() + 1),  # expired links
        ):
            with pytest.raises(VerificationError) as caught:
                scheme.check_chain(bundle, roots, now)
            assert caught.value.reason == "untrusted_certificate"
        # an "intermediate" that is not a CA can't issue
        not_ca_key = ec.generate_private_key(ec.SECP256R1())
        not_ca = _certificate("not a ca", not_ca_key, (ROOT.subject, ROOT_KEY), ca=False)
        leaf = _certificate(
            "messageverificationcerts.paypal.com", LEAF_KEY, (not_ca.subject, not_ca_key)
        )
        with pytest.raises(VerificationError):
            scheme.check_chain([leaf, not_ca], roots, NOW)


class TestVerification:
    def test_worked_example(self) -> None:
        src = signing_source()
        headers = src.sign_headers(BODY, now=NOW, delivery_id="tx-1")
        assert headers[scheme.ID_HEADER] == "tx-1"
        assert headers[scheme.TIME_HEADER] == "2023-11-14T22:13:20Z"
        assert headers[scheme.CERT_URL_HEADER] == CERT_URL
        src.verify(BODY, headers, NOW)

    def test_tampered_body_time_id_and_webhook(self) -> None:
        src = signing_source()
        headers = signed_headers(CERT_URL)
        assert reason(src, BODY.replace(b"21.0", b"91.0"), headers) == "no_matching_signature"
        moved = {**headers, scheme.TIME_HEADER: "2023-11-14T22:13:21Z"}
        assert reason(src, BODY, moved) == "no_matching_signature"
        renamed = {**headers, scheme.ID_HEADER: "69cd13f0-d67a-11e5-baa3-778b53f4ae56"}
        assert reason(src, BODY, renamed) == "no_matching_signature"
        other = signed_headers(CERT_URL, webhook_id="1JE4291016473214C")
        assert reason(src, BODY, other) == "no_matching_signature"
        forged = signed_headers(CERT_URL, key=OTHER_KEY)
        assert reason(src, BODY, forged) == "no_matching_signature"

    def test_several_webhook_ids(self) -> None:
        src = signing_source(webhook_id=[WEBHOOK_ID, "1JE4291016473214C"])
        src.verify(BODY, signed_headers(CERT_URL), NOW)
        src.verify(BODY, signed_headers(CERT_URL, webhook_id="1JE4291016473214C"), NOW)
        third = signed_headers(CERT_URL, webhook_id="5GP028458E2496506")
        assert reason(src, BODY, third) == "no_matching_signature"

    def test_transmission_time_both_ways(self) -> None:
        src = signing_source(settings={"tolerance": 300.0})
        headers = signed_headers(CERT_URL)
        src.verify(BODY, headers, NOW + 300)
        assert reason(src, BODY, headers, NOW + 301) == "timestamp_too_old"
        assert reason(src, BODY, headers, NOW - 301) == "timestamp_too_new"

    def test_missing_and_malformed_headers(self) -> None:
        src = signing_source()
        headers = signed_headers(CERT_URL)
        for name in list(headers):
            partial = {key: value for key, value in headers.items() if key != name}
            assert reason(src, BODY, partial) == "missing_header"
        assert reason(src, BODY, {**headers, scheme.ALGORITHM_HEADER: "SHA1withRSA"}) == (
            "unsupported_algorithm"
        )
        assert reason(src, BODY, {**headers, scheme.TIME_HEADER: "yesterday"}) == (
            "malformed_header"
        )
        assert reason(src, BODY, {**headers, scheme.TIME_HEADER: "2023-13-45T99:00:00Z"}) == (
            "malformed_header"
        )
        assert reason(src, BODY, {**headers, scheme.SIGNATURE_HEADER: "!!!"}) == (
            "malformed_header"
        )
        assert reason(src, BODY, {**headers, scheme.CERT_URL_HEADER: "https://evil.example/x"}) == (
            "untrusted_certificate_url"
        )

    def test_expired_certificate(self) -> None:
        old = _certificate(
            "messageverificationcerts.paypal.com",
            LEAF_KEY,
            start=datetime(2010, 1, 1, tzinfo=UTC),
            end=datetime(2011, 1, 1, tzinfo=UTC),
        )
        src = signing_source(certificates={CERT_URL: pem(old)})
        assert reason(src, BODY, signed_headers(CERT_URL)) == "certificate_expired"

    def test_a_crc32_twin_of_a_received_body_is_refused(self) -> None:
        src = signing_source()
        headers = signed_headers(CERT_URL)
        twin = b'{"id":"WH-FORGED","event_type":"PAYMENT.SALE.COMPLETED"} ' + b"...."
        twin = twin[:-4] + _crc32_suffix(twin[:-4], zlib.crc32(BODY))
        assert zlib.crc32(twin) == zlib.crc32(BODY)
        # The twin carries a genuine signature: the scheme signs a CRC-32, not a hash.
        signing_source().verify(twin, headers, NOW)
        src.verify(BODY, headers, NOW)
        src.verify(BODY, headers, NOW)  # the same delivery again is fine (dedup handles it)
        assert reason(src, twin, headers) == "replayed_token"

    def test_certificate_not_downloaded_yet(self) -> None:
        url = "https://api.paypal.com/v1/notifications/certs/CERT-unknown"
        assert reason(source(), BODY, signed_headers(url)) == "certificate_unavailable"

    @settings(max_examples=150, deadline=None)
    @given(
        body=st.binary(max_size=80),
        values=st.lists(st.text(max_size=60), min_size=5, max_size=5),
        present=st.lists(st.booleans(), min_size=5, max_size=5),
    )
    def test_junk_only_raises_verification_error(
        self, body: bytes, values: list[str], present: list[bool]
    ) -> None:
        names = (
            scheme.ID_HEADER,
            scheme.TIME_HEADER,
            scheme.SIGNATURE_HEADER,
            scheme.CERT_URL_HEADER,
            scheme.ALGORITHM_HEADER,
        )
        headers = {
            name: value for name, value, keep in zip(names, values, present, strict=True) if keep
        }
        good = signed_headers(CERT_URL)
        mixed = {**good, **headers}
        src = _SIGNER
        for candidate in (headers, mixed):
            try:
                src.verify(body, candidate, NOW)
            except VerificationError:
                pass
        src.describe(body, headers, NOW)


_SIGNER = signing_source()


class TestDownload:
    async def test_fetch_chain_and_cache(self, cert_server: CertServer) -> None:
        url = cert_server.serve("CERT-1", pem(LEAF, INTERMEDIATE))
        src = remote_source(cert_server)
        headers = signed_headers(url)
        inbound = Inbound(BODY, headers)
        await src.prepare(inbound)
        src.verify_request(inbound, NOW)
        await src.prepare(inbound)
        await src.prepare(inbound)
        assert cert_server.hits == ["/v1/notifications/certs/CERT-1"]
        assert src.fetches == 1
        other = cert_server.serve("CERT-2", pem(LEAF, INTERMEDIATE))
        await src.prepare(Inbound(BODY, signed_headers(other)))
        assert src.fetches == 2

    async def test_concurrent_deliveries_download_once(self, cert_server: CertServer) -> None:
        import asyncio

        url = cert_server.serve("CERT-1", pem(LEAF, INTERMEDIATE))
        src = remote_source(cert_server)
        inbound = Inbound(BODY, signed_headers(url))
        await asyncio.gather(*(src.prepare(inbound) for _ in range(5)))
        assert len(cert_server.hits) == 1

    async def test_untrusted_url_is_refused_before_any_network(
        self, cert_server: CertServer
    ) -> None:
        url = cert_server.serve("CERT-1", pem(LEAF, INTERMEDIATE))
        src = source(ca_bundle=pem(ROOT))  # the loopback host is not trusted
        with pytest.raises(VerificationError) as caught:
            await src.prepare(Inbound(BODY, signed_headers(url)))
        assert caught.value.reason == "untrusted_certificate_url"
        assert cert_server.hits == []
        assert src.fetches == 0

    async def test_chain_to_an_untrusted_root(self, cert_server: CertServer) -> None:
        url = cert_server.serve("CERT-1", pem(SELF_SIGNED))
        src = remote_source(cert_server)
        with pytest.raises(VerificationError) as caught:
            await src.prepare(Inbound(BODY, signed_headers(url)))
        assert caught.value.reason == "untrusted_certificate"
        # without the chain check, the pinned host, name and dates still decide
        relaxed = remote_source(cert_server, verify_chain=False)
        inbound = Inbound(BODY, signed_headers(url))
        await relaxed.prepare(inbound)
        relaxed.verify_request(inbound, NOW)

    async def test_certifi_roots_do_not_trust_a_test_ca(self, cert_server: CertServer) -> None:
        url = cert_server.serve("CERT-1", pem(LEAF, INTERMEDIATE))
        src = source(trusted_cert_hosts=[cert_server.host])
        with pytest.raises(VerificationError) as caught:
            await src.prepare(Inbound(BODY, signed_headers(url)))
        assert caught.value.reason == "untrusted_certificate"

    async def test_not_paypals_certificate(self, cert_server: CertServer) -> None:
        evil = _certificate("evil.example.com", OTHER_KEY, (INTERMEDIATE.subject, INTERMEDIATE_KEY))
        url = cert_server.serve("CERT-1", pem(evil, INTERMEDIATE))
        with pytest.raises(VerificationError, match="not PayPal's message-signing"):
            await remote_source(cert_server).prepare(Inbound(BODY, signed_headers(url)))

    async def test_failures_are_remembered_for_a_while(self, cert_server: CertServer) -> None:
        url = cert_server.url("CERT-missing")
        src = remote_source(cert_server)
        inbound = Inbound(BODY, signed_headers(url))
        for _ in range(3):
            with pytest.raises(VerificationError) as caught:
                await src.prepare(inbound)
            assert caught.value.reason == "certificate_unavailable"
            assert "404" in caught.value.detail
        assert len(cert_server.hits) == 1

    async def test_downloads_per_minute_are_capped(self, cert_server: CertServer) -> None:
        src = remote_source(cert_server)
        for number in range(module.DOWNLOADS_PER_MINUTE + 3):
            inbound = Inbound(BODY, signed_headers(cert_server.url(f"CERT-{number}")))
            with pytest.raises(VerificationError) as caught:
                await src.prepare(inbound)
            assert caught.value.reason == "certificate_unavailable"
        assert len(cert_server.hits) == module.DOWNLOADS_PER_MINUTE
        assert "last minute" in caught.value.detail

    async def test_size_cap_redirects_and_garbage(self, cert_server: CertServer) -> None:
        src = remote_source(cert_server)
        big = cert_server.serve("CERT-big", b"A" * (65 * 1024))
        moved = cert_server.serve(
            "CERT-moved", b"", status=302, location=cert_server.url("CERT-big")
        )
        junk = cert_server.serve("CERT-junk", b"hello")
        for url, expected, detail in (
            (big, "certificate_unavailable", "more than 64 KiB"),
            (moved, "certificate_unavailable", "answered 302"),
            (junk, "untrusted_certificate", "not a PEM certificate"),
        ):
            with pytest.raises(VerificationError) as caught:
                await src.prepare(Inbound(BODY, signed_headers(url)))
            assert caught.value.reason == expected
            assert detail in caught.value.detail
        assert "/v1/notifications/certs/CERT-big" not in cert_server.hits[1:]

    async def test_unreachable_host(self) -> None:
        src = source(trusted_cert_hosts=["127.0.0.1:9"], verify_chain=False)
        url = "http://127.0.0.1:9/v1/notifications/certs/CERT-1"
        with pytest.raises(VerificationError) as caught:
            await src.prepare(Inbound(BODY, signed_headers(url)))
        assert caught.value.reason == "certificate_unavailable"

    async def test_pinned_and_missing_urls_need_no_download(self) -> None:
        src = signing_source()
        await src.prepare(Inbound(BODY, signed_headers(CERT_URL)))
        await src.prepare(Inbound(BODY, {}))
        assert src.fetches == 0


class TestDescribe:
    def test_defaults(self) -> None:
        assert signing_source().describe(BODY, {}, NOW) == Description(
            "WH-9UG43882HX7271132-6E0871324L7949614",
            "PAYMENT.SALE.COMPLETED",
            "80F85758S3080410K",
            datetime(2016, 9, 21, 22, 0, 45, tzinfo=UTC).timestamp(),
        )

    def test_samples_verify_and_describe_with_their_own_type(self) -> None:
        example = module.EXAMPLE_SETTINGS
        assert isinstance(example, dict)
        src = build_source(
            SourceSettings(
                name="paypal",
                provider="paypal",
                secrets=example["secrets"],
                options=example["options"],
            )
        )
        samples = src.samples(NOW)
        assert len(samples) >= 3
        for event_type, body in samples.items():
            signed = src.sign_request(body, now=NOW)
            src.verify_request(Inbound(signed.body, signed.headers), NOW)
            described = src.describe(signed.body, signed.headers, NOW)
            document = json.loads(body)
            assert described.type == event_type
            assert described.dedup_key == document["id"]
            assert described.ordering_key == document["resource"]["id"]
            assert described.occurred_at == NOW
        assert src.samples(NOW) != samples


class TestDiagnose:
    def test_simulator_events(self) -> None:
        headers = signed_headers(CERT_URL, webhook_id="WEBHOOK_ID")
        found = hints(signing_source(), BODY, headers)
        assert any("webhooks simulator" in hint for hint in found)

    def test_sandbox_webhook_and_client_id(self) -> None:
        client_id = "A" + "b" * 79
        headers = signed_headers(CERT_URL, webhook_id="1JE4291016473214C")
        found = hints(signing_source(webhook_id=client_id), BODY, headers)
        assert any("sandbox environment" in hint for hint in found)
        assert any("client id" in hint for hint in found)

    def test_untrusted_url_and_unavailable(self) -> None:
        headers = signed_headers("https://evil.example.com/v1/notifications/certs/CERT-1")
        assert any("does not point at PayPal" in hint for hint in hints(source(), BODY, headers))
        unknown = signed_headers("https://api.paypal.com/v1/notifications/certs/CERT-2")
        assert any("could not download" in hint for hint in hints(source(), BODY, unknown))

    def test_reserialized_body_is_spotted(self) -> None:
        headers = signed_headers(CERT_URL)
        pretty = json.dumps(json.loads(BODY), indent=2).encode()
        found = hints(signing_source(), pretty, headers)
        assert any("written compact" in hint for hint in found)


class TestConfig:
    def test_registered(self) -> None:
        spec = provider_spec("paypal")
        assert spec.info is not None and spec.info.dedup_key == "body id (WH-...)"
        src = signing_source()
        assert src.needs_prepare is True
        assert src.webhook_ids == (WEBHOOK_ID,)
        assert src.secret_values == (private_pem(LEAF_KEY),)

    def test_signing_needs_key_and_certificate(self) -> None:
        with pytest.raises(ValueError, match="signing_key"):
            source().sign_headers(BODY, now=NOW)
        with pytest.raises(ValueError, match="out of range"):
            signing_source().sign_headers(BODY, now=NOW, secret_index=1)

    def test_files_are_read(self, tmp_path: Any) -> None:
        certificate = tmp_path / "paypal.pem"
        certificate.write_text(pem(LEAF))
        key = tmp_path / "key.pem"
        key.write_text(private_pem(LEAF_KEY))
        src = signing_source(certificates={CERT_URL: str(certificate)}, signing_key=str(key))
        src.verify(BODY, src.sign_headers(BODY, now=NOW), NOW)

    @pytest.mark.parametrize(
        ("options", "key"),
        [
            ({"webhook_id": None}, "webhook_id"),
            ({"webhook_id": ""}, "webhook_id"),
            ({"webhook_id": []}, "webhook_id"),
            ({"certificates": ["x"]}, "certificates"),
            ({"certificates": {CERT_URL: "/no/such/file.pem"}}, "certificates"),
            ({"certificates": {CERT_URL: "-----BEGIN CERTIFICATE-----\nxx"}}, "certificates"),
            ({"signing_key": "-----BEGIN PRIVATE KEY-----\nxx"}, "signing_key"),
            (
                {"certificates": {CERT_URL: pem(OTHER)}, "signing_key": private_pem(LEAF_KEY)},
                "signing_key",
            ),
            ({"trusted_cert_hosts": "127.0.0.1:1"}, "trusted_cert_hosts"),
            ({"verify_chain": "no"}, "verify_chain"),
            ({"ca_bundle": "hello"}, "ca_bundle"),
            ({"client_id": "x"}, "client_id"),
        ],
    )
    def test_bad_options(self, options: dict[str, Any], key: str) -> None:
        options.setdefault("webhook_id", WEBHOOK_ID)
        if options["webhook_id"] is None:
            del options["webhook_id"]
        with pytest.raises(ConfigError) as caught:
            build_source(SourceSettings(name="paypal", provider="paypal", options=options))
        assert caught.value.key == f"sources.paypal.{key}"

    def test_secrets_are_refused(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_source(
                SourceSettings(
                    name="paypal",
                    provider="paypal",
                    secrets=(WEBHOOK_ID,),
                    options={"webhook_id": WEBHOOK_ID},
                )
            )
        assert caught.value.key == "sources.paypal.secrets"
        assert "webhook_id" in str(caught.value.fix)


def _crc32_suffix(data: bytes, target: int) -> bytes:
    """Four bytes that, appended to ``data``, give it the CRC-32 ``target``."""
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0xEDB88320 if value & 1 else value >> 1
        table.append(value)
    by_top_byte = {value >> 24: index for index, value in enumerate(table)}
    register = target ^ 0xFFFFFFFF
    indexes = []
    for _ in range(4):
        index = by_top_byte[register >> 24]
        indexes.append(index)
        register = ((register ^ table[index]) << 8) & 0xFFFFFFFF
    register = zlib.crc32(data) ^ 0xFFFFFFFF
    suffix = bytearray()
    for index in reversed(indexes):
        suffix.append((register ^ index) & 0xFF)
        register = (register >> 8) ^ table[index]
    return bytes(suffix)
