"""Provider ``sendgrid``: the signed Event Webhook (ECDSA P-256 over timestamp + body).

>>> build(SourceSettings(name="email", provider="sendgrid",
...                      secrets=("env:SENDGRID_WEBHOOK_VERIFICATION_KEY",)))

Secrets are verification keys: the public key SendGrid shows when "Signed Event
Webhook Requests" is on (base64 DER, or PEM); several are allowed. SendGrid documents
no tolerance for ``X-Twilio-Email-Event-Webhook-Timestamp``; hookwise applies the
source's (five minutes by default) both ways.

The option ``signing_key`` (a P-256 private key, PEM or base64 DER, or a list of
them in the order of ``secrets``) exists for tests and ``hookwise send`` only: the
real private key stays at SendGrid.

A POST carries an array of events and is stored as one hookwise event:

- dedup key: the ``sg_event_id`` of a lone event, or ``batch-<count>-<hash>`` of the
  sorted ``sg_event_id`` values (a retried POST is a duplicate, a different batch
  never is); a hash of the body when an event has none.
- type: ``event`` of the first event (``delivered``, ``open``, ``bounce``...).
- ordering key: ``sg_message_id`` of the first event; occurred at: its ``timestamp``.
"""

from __future__ import annotations

import functools
import json
import secrets as _random
from collections.abc import Mapping
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._batch import batch_key, items_of, scalar
from hookwise.providers._extract import parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.providers._keys import signing_key_texts
from hookwise.signatures import sendgrid

# EXAMPLE_SETTINGS is made on first use (see __getattr__ below).
__all__ = ["OPTIONS", "PROVIDER", "SendGridSource", "build"]

OPTIONS = ("signing_key",)


class SendGridSource(Source):
    """A SendGrid Event Webhook source.

    >>> source = build(SourceSettings(name="email", provider="sendgrid",
    ...                               secrets=(public_key,), options={"signing_key": pem}))
    >>> headers = source.sign_headers(b"[]", now=1700000000)
    >>> source.verify(b"[]", headers, now=1700000000)
    """

    provider = "sendgrid"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        keys: tuple[ec.EllipticCurvePublicKey, ...],
        signing_keys: tuple[ec.EllipticCurvePrivateKey, ...],
        tolerance: float,
        batch_dedup: bool,
        secret_values: tuple[str, ...],
    ) -> None:
        super().__init__(name, extraction, secret_values=secret_values)
        self._verifier = sendgrid.Verifier(keys)
        self._signing_keys = signing_keys
        self._tolerance = tolerance
        self._batch_dedup = batch_dedup

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(headers=headers, body=body, now=now, tolerance=self._tolerance)

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        described = self.extraction.describe(body, headers)
        if self._batch_dedup:
            items = items_of(parse_body(body))
            key = batch_key(items, lambda item: scalar(item.get("sg_event_id")))
            if key is not None:
                described = replace(described, dedup_key=key)
        return described

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        reason = getattr(error, "reason", "")
        if reason == "missing_header" and not request.headers.get(sendgrid.SIGNATURE_HEADER):
            return [
                "no signature came: SendGrid signs Event Webhook requests only when "
                '"Signed Event Webhook Requests" is on (Settings > Mail Settings > Event '
                "Webhook); turn it on and put the verification key it shows in secrets"
            ]
        if reason != "no_matching_signature":
            return []
        body = request.body
        if body.endswith(b"\r\n"):
            candidate = body[:-2]
            what = "without its trailing CRLF: something between SendGrid and hookwise added it"
        else:
            candidate = body + b"\r\n"
            what = (
                "with a trailing CRLF: something between SendGrid and hookwise stripped the "
                "\\r\\n SendGrid ends the body with"
            )
        try:
            self.verify(candidate, request.headers, now)
        except VerificationError:
            pass
        else:
            return [f"the signature matches the body {what}; hookwise must get the raw bytes"]
        return [
            "the verification key changes whenever the signed webhook setting is turned off "
            "and on, or the key is regenerated: copy the current one from the Event Webhook "
            "settings (several keys may be listed in secrets while switching)"
        ]

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        if not self._signing_keys:
            raise ValueError(
                f"source {self.name!r} has no signing_key option: SendGrid keeps its private "
                "key, so give one (for tests and hookwise send) to sign requests"
            )
        key = pick_secret(self._signing_keys, secret_index)
        timestamp = str(int(now))
        return {
            "content-type": "application/json",
            sendgrid.TIMESTAMP_HEADER: timestamp,
            sendgrid.SIGNATURE_HEADER: sendgrid.sign(key, timestamp, body),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        message = _random.token_urlsafe(16)[:22]
        smtp_id = f"<{message}@ismtpd0001p1iad2.sendgrid.net>"
        full_id = f"{message}.recvd-7c6b8b5d8c-x2kvq-1-{int(now):X}-3.0"
        at = int(now) - 2
        base: dict[str, object] = {
            "email": "ada@example.com",
            "timestamp": at,
            "smtp-id": smtp_id,
            "sg_message_id": full_id,
            "category": ["receipts"],
        }

        def batch(event: str, **extra: object) -> bytes:
            item = {**base, "event": event, "sg_event_id": _random.token_urlsafe(16), **extra}
            return json.dumps([item], separators=(",", ":")).encode() + b"\r\n"

        return {
            "processed": batch("processed"),
            "delivered": batch(
                "delivered", ip="168.1.1.1", response="250 OK", tls=1, sg_machine_open=False
            ),
            "open": batch(
                "open",
                useragent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                ip="203.0.113.7",
                sg_machine_open=False,
            ),
            "bounce": batch(
                "bounce",
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
                status="5.1.1",
                type="bounce",
                bounce_classification="Invalid Address",
            ),
        }


def build(settings: SourceSettings) -> SendGridSource:
    """Build a SendGrid source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    key = f"sources.{settings.name}"
    keys: list[ec.EllipticCurvePublicKey] = []
    for position, text in enumerate(require_secrets(settings), start=1):
        try:
            keys.append(sendgrid.load_public_key(text))
        except ValueError as exc:
            raise ConfigError(
                f"secret number {position} is not a SendGrid verification key: {exc}",
                key=f"{key}.secrets",
                fix="copy the verification key shown with Signed Event Webhook Requests "
                "(base64, starting with MFkw)",
            ) from None
    signing_keys = _signing_keys(settings, keys)
    extraction = build_extraction(
        settings,
        dedup=None,
        type="body:0.event",
        ordering_key="body:0.sg_message_id",
        occurred_at="body:0.timestamp",
    )
    return SendGridSource(
        settings.name,
        extraction,
        keys=tuple(keys),
        signing_keys=signing_keys,
        tolerance=check_tolerance(settings),
        batch_dedup=settings.dedup_key is None,
        secret_values=tuple(_signing_texts(settings.options.get("signing_key"))),
    )


def _signing_texts(value: object) -> list[str]:
    """The signing key option as a list of texts (empty when unset)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _signing_keys(
    settings: SourceSettings, keys: list[ec.EllipticCurvePublicKey]
) -> tuple[ec.EllipticCurvePrivateKey, ...]:
    texts = signing_key_texts(
        settings, what="a private key (PEM or base64 DER)", example="env:SENDGRID_TEST_SIGNING_KEY"
    )
    key = f"sources.{settings.name}.signing_key"
    published = {sendgrid.public_key_text(public) for public in keys}
    private_keys: list[ec.EllipticCurvePrivateKey] = []
    for position, text in enumerate(texts, start=1):
        try:
            private = sendgrid.load_private_key(text)
        except ValueError as exc:
            raise ConfigError(
                f"signing key number {position}: {exc}",
                key=key,
                fix="give a P-256 private key as PEM (-----BEGIN PRIVATE KEY-----) or base64 DER",
            ) from None
        if sendgrid.public_key_text(private.public_key()) not in published:
            raise ConfigError(
                f"signing key number {position} does not belong to any key in secrets",
                key=key,
                fix="add its public key to secrets, or give the private key of one of them",
            )
        private_keys.append(private)
    return tuple(private_keys)


@functools.cache
def _example_settings() -> dict[str, object]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "secrets": (sendgrid.public_key_text(private.public_key()),),
        "options": {"signing_key": pem},
        "public_url": None,
    }


def __getattr__(name: str) -> object:
    # EXAMPLE_SETTINGS holds a key pair made on first use, so that no private key is
    # written in the package and importing the provider costs nothing.
    if name == "EXAMPLE_SETTINGS":
        return _example_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PROVIDER = ProviderSpec(
    "sendgrid",
    "SendGrid Event Webhook: ECDSA P-256 signature over timestamp + body; verification key",
    build,
    info=ProviderInfo(
        scheme="ECDSA P-256 / SHA-256 over timestamp + body, base64 DER signature",
        headers="X-Twilio-Email-Event-Webhook-Signature, X-Twilio-Email-Event-Webhook-Timestamp",
        dedup_key="the sg_event_ids of the batch",
        ordering_key="sg_message_id of the first event",
        handshake="none",
        retries="retried on non-2xx for up to 24 h",
        credential="the verification key (public key, base64 DER)",
        signed_headers=(sendgrid.TIMESTAMP_HEADER,),
    ),
)
