"""Provider ``paypal``: RSA signatures checked with the certificate PayPal names.

>>> build(SourceSettings(name="paypal", provider="paypal",
...                      options={"webhook_id": "env:PAYPAL_WEBHOOK_ID"}))

PayPal signs ``transmission id | transmission time | webhook id | CRC-32 of the body``
with its private key; the request names the certificate to check it with in
``PAYPAL-CERT-URL``. The option ``webhook_id`` (required; a list while moving
between webhooks) is the id PayPal shows for the webhook: it binds deliveries to
this receiver. There are no secrets.

The certificate is downloaded by :meth:`PayPalSource.prepare`, which the receiver
awaits before verifying, and kept in a small cache (by URL, at most a day, never
past the certificate's expiry). Before any network access the URL must be ``https``
on one of PayPal's API hosts, under ``/v1/notifications/certs/``; anything else is
refused (``untrusted_certificate_url``). The download has a 5 s timeout and a 64 KiB
cap, follows no redirect, uses verified TLS, and happens at most ten times a minute;
a failed one is not tried again for a minute. The certificate must then be PayPal's
message-signing certificate (a name ``messageverificationcerts[...].paypal.com``, the
rule of PayPal's own Java SDK), be within its dates and chain, through the
certificates sent with it, to a root CA of ``certifi``.

Options besides ``webhook_id``:

- ``verify_chain = false`` skips the chain check (the host, name and dates checks
  stay), should PayPal ever serve its certificate without its intermediates.
- ``ca_bundle``: root certificates (PEM text or file path) to check the chain with
  instead of ``certifi``'s.

For tests and ``hookwise send`` only (never needed to receive from PayPal):

- ``certificates``: ``{ URL = PEM text or file path }``, certificates trusted as
  configured for those URLs (no download, no name or chain check; dates are checked).
- ``signing_key``: the RSA private key (PEM text or file path) that goes with the
  first of ``certificates``, to sign requests.
- ``trusted_cert_hosts``: ``["127.0.0.1:8443"]``, extra ``host:port`` to download
  certificates from, over http or https. For a local test server only: any host
  listed here can make its own certificates pass.

Defaults: dedup key ``id`` (``WH-...``, the same on PayPal's retries), type
``event_type`` (``PAYMENT.CAPTURE.COMPLETED``), ordering key ``resource.id``,
occurred at ``create_time``. ``PAYPAL-TRANSMISSION-TIME`` must be within the source's
tolerance, both ways.

The signature covers a CRC-32 of the body, not a cryptographic hash: whoever holds
one genuine delivery could make another body with the same CRC-32. Within a process,
a transmission id seen once with a body is refused with any other body
(``replayed_token``); the tolerance bounds the rest.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets as _random
import time
import uuid
import warnings
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    reject_fields,
)
from hookwise.providers._hints import with_own_hints
from hookwise.signatures import paypal

# EXAMPLE_SETTINGS is made on first use (see __getattr__ below).
__all__ = ["OPTIONS", "PROVIDER", "PayPalSource", "build"]

OPTIONS = (
    "webhook_id",
    "certificates",
    "signing_key",
    "trusted_cert_hosts",
    "verify_chain",
    "ca_bundle",
)
FETCH_TIMEOUT = 5.0
MAX_CERT_BYTES = 64 * 1024
CACHE_SIZE = 32
CACHE_TTL = 24 * 3600.0
FAILURE_TTL = 60.0
DOWNLOADS_PER_MINUTE = 10
SEEN_SIZE = 4096
SIMULATOR_WEBHOOK_ID = "WEBHOOK_ID"
"""The webhook id PayPal's webhooks simulator signs its mock events with."""

Roots = Mapping[x509.Name, Sequence[x509.Certificate]]


class PayPalSource(Source):
    """A PayPal source.

    >>> source = build(SourceSettings(name="paypal", provider="paypal",
    ...                               options={"webhook_id": "9XL90610J3647323C"}))
    >>> await source.prepare(request)          # downloads the certificate, once
    >>> source.verify_request(request, now)
    """

    provider = "paypal"
    needs_prepare = True

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        webhook_ids: tuple[str, ...],
        tolerance: float,
        pinned: Mapping[str, paypal.Certificate],
        signing_key: rsa.RSAPrivateKey | None,
        trusted_hosts: tuple[str, ...],
        verify_chain: bool,
        ca_bundle: bytes | None,
        secret_values: tuple[str, ...],
    ) -> None:
        super().__init__(name, extraction, secret_values=secret_values)
        self.webhook_ids = webhook_ids
        self._tolerance = tolerance
        self._pinned = dict(pinned)
        self._signing_key = signing_key
        self._trusted_hosts = trusted_hosts
        self._verify_chain = verify_chain
        self._ca_bundle = ca_bundle
        self._cache: OrderedDict[str, tuple[paypal.Certificate, float]] = OrderedDict()
        self._failures: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._downloads: deque[float] = deque()
        self._seen: OrderedDict[str, bytes] = OrderedDict()
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many certificate downloads this source started (for tests and metrics)."""

    # -- verification -------------------------------------------------------------

    async def prepare(self, request: Inbound) -> None:
        url = (request.headers.get(paypal.CERT_URL_HEADER) or "").strip()
        if not url or url in self._pinned:
            return  # a missing header is verify's to report
        paypal.check_cert_url(url, extra_hosts=self._trusted_hosts)
        if self._fresh(url):
            return
        async with self._lock:
            if self._fresh(url):
                return
            failure = self._failures.get(url)
            if failure is not None and failure[2] > time.monotonic():
                raise VerificationError(failure[0], failure[1])
            self._take_download_slot()
            try:
                certificate = await self._download(url)
            except VerificationError as exc:
                until = time.monotonic() + FAILURE_TTL
                self._failures[url] = (exc.reason, exc.detail, until)
                _trim(self._failures, CACHE_SIZE)
                raise
            self._failures.pop(url, None)
            expires = min(
                time.monotonic() + CACHE_TTL,
                time.monotonic() + max(0.0, certificate.not_after - time.time()),
            )
            self._cache[url] = (certificate, expires)
            self._cache.move_to_end(url)
            _trim(self._cache, CACHE_SIZE)

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        transmission = self._check(body, headers, now, self.webhook_ids)
        digest = hashlib.sha256(body).digest()
        seen = self._seen.get(transmission.id)
        if seen is not None and seen != digest:
            raise VerificationError(
                "replayed_token",
                f"transmission {transmission.id[:60]!r} was already received with another "
                "body that has the same CRC-32",
            )
        self._seen[transmission.id] = digest
        _trim(self._seen, SEEN_SIZE)

    def _check(
        self, body: bytes, headers: Mapping[str, str], now: float, webhook_ids: Sequence[str]
    ) -> paypal.Transmission:
        transmission = paypal.parse_transmission(headers)
        certificate = self._certificate(transmission.cert_url)
        paypal.verify(
            transmission,
            certificate,
            webhook_ids=webhook_ids,
            body=body,
            now=now,
            tolerance=self._tolerance,
        )
        return transmission

    def _certificate(self, url: str) -> paypal.Certificate:
        pinned = self._pinned.get(url)
        if pinned is not None:
            return pinned
        paypal.check_cert_url(url, extra_hosts=self._trusted_hosts)
        cached = self._cache.get(url)
        if cached is None:
            raise VerificationError(
                "certificate_unavailable",
                f"the certificate at {url} has not been downloaded (the receiver awaits "
                "prepare() before verifying)",
            )
        return cached[0]

    def _take_download_slot(self) -> None:
        # Anyone can name a certificate URL on PayPal's hosts; a budget keeps forged
        # requests from turning this receiver into a stream of downloads.
        now = time.monotonic()
        while self._downloads and self._downloads[0] < now - 60:
            self._downloads.popleft()
        if len(self._downloads) >= DOWNLOADS_PER_MINUTE:
            raise VerificationError(
                "certificate_unavailable",
                f"more than {DOWNLOADS_PER_MINUTE} certificate downloads in the last minute; "
                "not downloading another yet",
            )
        self._downloads.append(now)

    def _fresh(self, url: str) -> bool:
        cached = self._cache.get(url)
        return cached is not None and cached[1] > time.monotonic()

    async def _download(self, url: str) -> paypal.Certificate:
        import httpx

        self.fetches += 1
        chunks: list[bytes] = []
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise VerificationError(
                        "certificate_unavailable",
                        f"{url} answered {response.status_code} instead of a certificate",
                    )
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_CERT_BYTES:
                        raise VerificationError(
                            "certificate_unavailable",
                            f"{url} sent more than {MAX_CERT_BYTES // 1024} KiB",
                        )
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise VerificationError(
                "certificate_unavailable",
                f"downloading {url} failed ({type(exc).__name__}): check that this host "
                "reaches PayPal over HTTPS",
            ) from None
        return self._accept(url, b"".join(chunks), time.time())

    def _accept(self, url: str, pem: bytes, now: float) -> paypal.Certificate:
        try:
            bundle = paypal.load_certificates(pem)
        except ValueError as exc:
            raise VerificationError("untrusted_certificate", f"{url}: {exc}") from None
        leaf = next((item for item in bundle if paypal.names_paypal(item)), None)
        if leaf is None:
            raise VerificationError(
                "untrusted_certificate",
                f"the certificate from {url} ({bundle[0].subject.rfc4514_string()[:120]}) is "
                "not PayPal's message-signing certificate",
            )
        if self._verify_chain:
            chain = [leaf, *(item for item in bundle if item is not leaf)]
            paypal.check_chain(chain, self._roots(), now)
        try:
            certificate = paypal.certificate_of(leaf)
        except ValueError as exc:
            raise VerificationError("untrusted_certificate", f"{url}: {exc}") from None
        paypal.check_certificate(certificate, now)
        return certificate

    def _roots(self) -> Roots:
        if self._ca_bundle is not None:
            return _index(self._ca_bundle)
        return _certifi_roots()

    # -- diagnosis ---------------------------------------------------------------

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        reason = getattr(error, "reason", "")
        hints: list[str] = []
        if reason == "untrusted_certificate_url":
            hints.append(
                "PAYPAL-CERT-URL does not point at PayPal: the request did not come from "
                "PayPal (or a proxy rewrote the header); nothing was downloaded"
            )
        elif reason == "certificate_unavailable":
            hints.append(
                "hookwise could not download PayPal's certificate: check that this host can "
                "reach api.paypal.com / api.sandbox.paypal.com over HTTPS (firewall, proxy); "
                "PayPal retries the delivery"
            )
        elif reason == "untrusted_certificate" and self._verify_chain:
            hints.append(
                "the downloaded certificate does not chain to a trusted root: if PayPal "
                "changed how it serves certificates, verify_chain = false keeps the pinned "
                "host, the name and the dates checks"
            )
        if reason != "no_matching_signature":
            return hints
        for webhook_id in self.webhook_ids:
            if len(webhook_id) > 40:
                hints.append(
                    f"webhook_id {webhook_id[:12]}... looks like an app's client id; the "
                    "webhook id is the short id (like 9XL90610J3647323C) PayPal shows for "
                    "the webhook"
                )
        try:
            self._check(request.body, request.headers, now, (SIMULATOR_WEBHOOK_ID,))
        except VerificationError:
            pass
        else:
            return [
                *hints,
                "this is a mock event of PayPal's webhooks simulator, signed for the webhook "
                f'id "{SIMULATOR_WEBHOOK_ID}": add it to webhook_id while testing with the '
                "simulator, and remove it afterwards",
            ]
        cert_url = (request.headers.get(paypal.CERT_URL_HEADER) or "").lower()
        world = "sandbox" if ".sandbox." in cert_url else "live"
        hints.append(
            f"this delivery comes from PayPal's {world} environment: webhook_id must be the "
            f"id of the {world} webhook for this URL (sandbox and live webhooks have "
            "different ids)"
        )
        return hints

    # -- sending -------------------------------------------------------------------

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        if self._signing_key is None or not self._pinned:
            raise ValueError(
                f"source {self.name!r} can't sign: PayPal keeps its private key; give the "
                "signing_key and certificates options (for tests and hookwise send)"
            )
        if secret_index != 0:
            raise ValueError("secret_index is out of range; a PayPal source signs with one key")
        transmission_id = delivery_id or str(uuid.uuid1())
        moment = datetime.fromtimestamp(int(now), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "content-type": "application/json",
            paypal.ID_HEADER: transmission_id,
            paypal.TIME_HEADER: moment,
            paypal.CERT_URL_HEADER: next(iter(self._pinned)),
            paypal.ALGORITHM_HEADER: paypal.SUPPORTED_ALGORITHMS[0],
            paypal.SIGNATURE_HEADER: paypal.sign(
                self._signing_key, transmission_id, moment, self.webhook_ids[0], body
            ),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        at = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        order = _paypal_id(17)
        capture = _paypal_id(17)
        subscription = "I-" + _paypal_id(12)
        amount = {"currency_code": "USD", "value": "25.00"}
        api = "https://api.paypal.com"

        def event(
            event_type: str, resource_type: str, summary: str, resource: dict[str, object]
        ) -> bytes:
            event_id = "WH-" + _paypal_id(17) + "-" + _paypal_id(17)
            return json.dumps(
                {
                    "id": event_id,
                    "event_version": "1.0",
                    "create_time": at,
                    "resource_type": resource_type,
                    "resource_version": "2.0",
                    "event_type": event_type,
                    "summary": summary,
                    "resource": resource,
                    "links": [
                        {
                            "href": f"{api}/v1/notifications/webhooks-events/{event_id}",
                            "rel": "self",
                            "method": "GET",
                        },
                        {
                            "href": f"{api}/v1/notifications/webhooks-events/{event_id}/resend",
                            "rel": "resend",
                            "method": "POST",
                        },
                    ],
                },
                separators=(",", ":"),
            ).encode()

        return {
            "CHECKOUT.ORDER.APPROVED": event(
                "CHECKOUT.ORDER.APPROVED",
                "checkout-order",
                "An order has been approved by buyer",
                {
                    "id": order,
                    "intent": "CAPTURE",
                    "status": "APPROVED",
                    "create_time": at,
                    "purchase_units": [{"reference_id": "default", "amount": amount}],
                    "payer": {"payer_id": _paypal_id(13), "email_address": "ada@example.com"},
                },
            ),
            "PAYMENT.CAPTURE.COMPLETED": event(
                "PAYMENT.CAPTURE.COMPLETED",
                "capture",
                "Payment completed for $ 25.0 USD",
                {
                    "id": capture,
                    "status": "COMPLETED",
                    "amount": amount,
                    "final_capture": True,
                    "seller_protection": {"status": "ELIGIBLE"},
                    "create_time": at,
                    "update_time": at,
                    "supplementary_data": {"related_ids": {"order_id": order}},
                },
            ),
            "PAYMENT.CAPTURE.REFUNDED": event(
                "PAYMENT.CAPTURE.REFUNDED",
                "refund",
                "A $ 25.0 USD capture payment was refunded",
                {
                    "id": _paypal_id(17),
                    "status": "COMPLETED",
                    "amount": amount,
                    "create_time": at,
                    "update_time": at,
                    "links": [{"href": f"{api}/v2/payments/captures/{capture}", "rel": "up"}],
                },
            ),
            "BILLING.SUBSCRIPTION.ACTIVATED": event(
                "BILLING.SUBSCRIPTION.ACTIVATED",
                "subscription",
                "Subscription activated",
                {
                    "id": subscription,
                    "status": "ACTIVE",
                    "plan_id": "P-" + _paypal_id(24),
                    "start_time": at,
                    "create_time": at,
                    "subscriber": {"email_address": "ada@example.com"},
                },
            ),
        }


def build(settings: SourceSettings) -> PayPalSource:
    """Build a PayPal source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    key = f"sources.{settings.name}"
    if settings.secrets:
        raise ConfigError(
            "provider 'paypal' uses no secrets: PayPal signs with its certificate",
            key=f"{key}.secrets",
            fix='remove secrets and give webhook_id = "..." (the id PayPal shows for the webhook)',
        )
    options = settings.options
    pinned = _pinned(options.get("certificates"), f"{key}.certificates")
    signing_key = _signing_key(options.get("signing_key"), f"{key}.signing_key", pinned)
    verify_chain = options.get("verify_chain", True)
    if not isinstance(verify_chain, bool):
        raise ConfigError(
            f"verify_chain must be true or false, not {verify_chain!r}",
            key=f"{key}.verify_chain",
            fix="remove it (the chain is checked by default), or write verify_chain = false",
        )
    ca_bundle = None
    if options.get("ca_bundle") is not None:
        ca_bundle = _pem(options["ca_bundle"], f"{key}.ca_bundle")
        try:
            paypal.load_certificates(ca_bundle)
        except ValueError as exc:
            raise ConfigError(
                f"ca_bundle: {exc}", key=f"{key}.ca_bundle", fix="give PEM root certificates"
            ) from None
    extraction = build_extraction(
        settings,
        dedup="body:id",
        type="body:event_type",
        ordering_key="body:resource.id",
        occurred_at="body:create_time",
    )
    signing_text = options.get("signing_key")
    return PayPalSource(
        settings.name,
        extraction,
        webhook_ids=_webhook_ids(options.get("webhook_id"), f"{key}.webhook_id"),
        tolerance=check_tolerance(settings),
        pinned=pinned,
        signing_key=signing_key,
        trusted_hosts=_hosts(options.get("trusted_cert_hosts"), f"{key}.trusted_cert_hosts"),
        verify_chain=verify_chain,
        ca_bundle=ca_bundle,
        secret_values=(signing_text,) if isinstance(signing_text, str) else (),
    )


def _webhook_ids(value: object, key: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list | tuple)
        or not values
        or not all(isinstance(item, str) and item.strip() for item in values)
    ):
        raise ConfigError(
            "provider 'paypal' needs the webhook_id option",
            key=key,
            fix='add webhook_id = "env:PAYPAL_WEBHOOK_ID" (the id PayPal shows for the '
            "webhook, like 9XL90610J3647323C)",
        )
    return tuple(item.strip() for item in values)


def _hosts(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and ":" in item for item in value
    ):
        raise ConfigError(
            "trusted_cert_hosts must be a list of host:port",
            key=key,
            fix='write it like trusted_cert_hosts = ["127.0.0.1:8443"] (local tests only)',
        )
    return tuple(item.strip().lower() for item in value)


def _pem(value: object, key: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "expected PEM text or the path of a PEM file", key=key, fix="give one of them"
        )
    if "-----BEGIN" in value:
        return value.encode("ascii", "replace")
    try:
        return Path(value).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"can't read {value!r}: {exc.strerror or exc}",
            key=key,
            fix="give PEM text, or the path of a readable PEM file",
        ) from None


def _pinned(value: object, key: str) -> dict[str, paypal.Certificate]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(url, str) for url in value):
        raise ConfigError(
            "certificates must map certificate URLs to PEM text or file paths",
            key=key,
            fix='write it like certificates = { "https://api.sandbox.paypal.com/v1/'
            'notifications/certs/CERT-..." = "certs/paypal.pem" }',
        )
    pinned: dict[str, paypal.Certificate] = {}
    for url, text in value.items():
        try:
            bundle = paypal.load_certificates(_pem(text, key))
            leaf = next((item for item in bundle if paypal.names_paypal(item)), bundle[0])
            pinned[url.strip()] = paypal.certificate_of(leaf)
        except ValueError as exc:
            raise ConfigError(
                f"the certificate for {url}: {exc}",
                key=key,
                fix="give the PEM certificate (-----BEGIN CERTIFICATE-----) with an RSA key",
            ) from None
    return pinned


def _signing_key(
    value: object, key: str, pinned: Mapping[str, paypal.Certificate]
) -> rsa.RSAPrivateKey | None:
    if value is None:
        return None
    try:
        private = serialization.load_pem_private_key(_pem(value, key), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"signing_key can't be read: {exc}", key=key, fix="give an RSA private key as PEM"
        ) from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigError("signing_key is not an RSA key", key=key, fix="give an RSA private key")
    first = next(iter(pinned.values()), None)
    if first is None or first.public_key.public_numbers() != private.public_key().public_numbers():
        raise ConfigError(
            "signing_key does not go with the first of the certificates option",
            key=key,
            fix="list first, in certificates, the URL and certificate of this key",
        )
    return private


def _index(pem: bytes) -> Roots:
    roots: dict[x509.Name, list[x509.Certificate]] = {}
    with warnings.catch_warnings():
        # A few roots in public bundles have serial numbers that newer RFCs forbid;
        # cryptography warns about them and they are still roots.
        warnings.simplefilter("ignore")
        for certificate in x509.load_pem_x509_certificates(pem):
            roots.setdefault(certificate.subject, []).append(certificate)
    return roots


@functools.cache
def _certifi_roots() -> Roots:
    try:
        import certifi
    except ImportError:
        raise VerificationError(
            "untrusted_certificate",
            "no root certificates to check PayPal's chain with: install certifi, or set ca_bundle",
        ) from None
    return _index(Path(certifi.where()).read_bytes())


def _trim(cache: OrderedDict[str, Any], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)


def _paypal_id(length: int) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(_random.choice(alphabet) for _ in range(length))


@functools.cache
def _example_settings() -> dict[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hookwise example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox.paypal.com"),
        ]
    )
    start = datetime(2020, 1, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * 100))
        .sign(key, hashes.SHA256())
    )
    url = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-hookwise-example"
    return {
        "secrets": (),
        "options": {
            "webhook_id": "8PT597110X687430LKGECATA",
            "certificates": {
                url: certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
            },
            "signing_key": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii"),
        },
        "public_url": None,
    }


def __getattr__(name: str) -> object:
    # EXAMPLE_SETTINGS holds a key and certificate made on first use, so that no
    # private key is written in the package and importing the provider costs nothing.
    if name == "EXAMPLE_SETTINGS":
        return _example_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PROVIDER = ProviderSpec(
    "paypal",
    "PayPal: SHA256withRSA over transmission id|time|webhook id|CRC-32, PayPal's certificate",
    build,
    info=ProviderInfo(
        scheme="SHA256withRSA of id|time|webhook_id|crc32(body), X.509 cert from PAYPAL-CERT-URL",
        headers="PAYPAL-TRANSMISSION-ID/-TIME/-SIG, PAYPAL-CERT-URL, PAYPAL-AUTH-ALGO",
        dedup_key="body id (WH-...)",
        ordering_key="body resource.id",
        handshake="none",
        retries="up to 25 retries over 3 days on non-2xx or no answer",
        credential="none: the webhook_id option (and PayPal's certificate, downloaded)",
        signed_headers=(paypal.ID_HEADER, paypal.TIME_HEADER),
    ),
)
