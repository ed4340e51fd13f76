"""Provider ``standard``: Standard Webhooks (``webhook-id``, ``-timestamp``, ``-signature``).

Both signature versions of the specification are verified:

- ``v1`` (HMAC-SHA256): put the ``whsec_...`` secret, exactly as the sender shows
  it, in ``secrets``. The key is the base64 after ``whsec_``.
- ``v1a`` (ed25519): put the sender's ``whpk_...`` public key in ``secrets``. A
  ``whsk_...`` private key given there is verified with its public key (and can sign).

Secrets of both kinds mix: rotating from one to the other, or between two keys of
one kind, any signature that matches any of them passes.

``sign_headers`` (tests, ``hookwise send``) signs with the secret at
``secret_index``: ``v1`` for a ``whsec_``, ``v1a`` for a ``whsk_``. A ``whpk_``
public key cannot sign; give its private key as the option ``signing_key``
(``"env:NAME"``, a ``whsk_...``, or a list of them). That option is for tests and
``hookwise send`` only: a receiver never needs a private key.

The dedup key is the ``webhook-id`` header (stable across retries); the type is the
body's ``type`` field and the time its ``timestamp`` field, as the specification's
payload structure has them. There is no default ordering key: set ``ordering_key``.
The tolerance is two-sided, as in the reference libraries (5 minutes by default).

Checked against the specification (``spec/standard-webhooks.md``: headers, signed
content, ``whsec_``/``whpk_``/``whsk_`` formats, tolerance, payload fields) and the
``v1a`` vectors of the MercuryTechnologies ``signet`` tests.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

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
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._keys import signing_key_texts
from hookwise.signatures import standard

__all__ = [
    "EXAMPLE_SETTINGS",
    "OPTIONS",
    "PROVIDER",
    "StandardSource",
    "WebhookKeys",
    "build",
    "literal_key_hint",
    "parse_keys",
    "version_hints",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

OPTIONS = ("signing_key",)
"""``signing_key``: the ``whsk_`` private key(s) that sign for a ``whpk_`` secret."""

Signer = Callable[[str, int, bytes], str]
"""Signs ``(msg_id, timestamp, body)`` into one ``version,<base64>`` signature."""


class WebhookKeys:
    """The keys a list of Standard Webhooks secrets stands for, sorted by kind.

    >>> keys = parse_keys(settings)
    >>> keys.hmac_keys, keys.public_keys, keys.signers
    """

    __slots__ = (
        "hmac_keys",
        "literal_secrets",
        "public_keys",
        "redact",
        "secret_public_keys",
        "signers",
    )

    def __init__(self) -> None:
        self.hmac_keys: list[bytes] = []
        """``v1`` keys (base64-decoded ``whsec_`` secrets)."""
        self.public_keys: list[bytes] = []
        """``v1a`` ed25519 public keys (``whpk_``, or derived from ``whsk_``)."""
        self.signers: list[Signer | None] = []
        """One per secret, in order: how to sign with it (``None``: a bare public key)."""
        self.secret_public_keys: list[bytes | None] = []
        """One per secret, in order: its ed25519 public key (``None`` for a ``whsec_``)."""
        self.literal_secrets: list[str] = []
        """The ``whsec_`` secrets as written, for diagnosis (never printed)."""
        self.redact: list[str] = []
        """Secret strings stored headers must never keep."""

    def add_redacted(self, text: str, prefix: str) -> None:
        bare = text.strip().removeprefix(prefix)
        self.redact.extend(value for value in (text, bare) if value and value not in self.redact)


def parse_keys(
    settings: SourceSettings,
    *,
    allow_ed25519: bool = True,
    fix: str = "use the whsec_... value exactly as the sender shows it",
) -> WebhookKeys:
    """Sort ``settings.secrets`` into ``v1`` keys and ``v1a`` keys; a :class:`ConfigError`
    naming the secret's position (never its value) when one can't be used."""
    key = f"sources.{settings.name}.secrets"
    keys = WebhookKeys()
    for position, secret in enumerate(require_secrets(settings), start=1):
        text = secret.strip()
        try:
            if text.startswith((standard.PUBLIC_KEY_PREFIX, standard.SIGNING_KEY_PREFIX)):
                if not allow_ed25519:
                    raise ConfigError(
                        f"secret number {position} is an ed25519 key ({text[:5]}...), but "
                        f"provider {settings.provider!r} signs with whsec_ secrets only",
                        key=key,
                        fix='give the whsec_ secret, or use provider = "standard" for v1a',
                    )
                if text.startswith(standard.PUBLIC_KEY_PREFIX):
                    public = standard.decode_public_key(text)
                    keys.signers.append(None)
                else:
                    seed = standard.decode_signing_key(text)
                    public = standard.public_key_of(seed)
                    keys.signers.append(_v1a_signer(seed))
                    keys.add_redacted(secret, standard.SIGNING_KEY_PREFIX)
                keys.public_keys.append(public)
                keys.secret_public_keys.append(public)
            else:
                hmac_key = standard.decode_secret(text)
                keys.hmac_keys.append(hmac_key)
                keys.signers.append(_v1_signer(hmac_key))
                keys.secret_public_keys.append(None)
                keys.literal_secrets.append(text)
                keys.add_redacted(secret, standard.SECRET_PREFIX)
        except ValueError as exc:
            raise ConfigError(f"secret number {position}: {exc}", key=key, fix=fix) from None
    return keys


def _v1_signer(key: bytes) -> Signer:
    return lambda msg_id, timestamp, body: standard.sign(key, msg_id, timestamp, body)


def _v1a_signer(seed: bytes) -> Signer:
    return lambda msg_id, timestamp, body: standard.sign_v1a(seed, msg_id, timestamp, body)


class StandardSource(Source):
    """A Standard Webhooks source (``v1`` and ``v1a``).

    >>> source = build(SourceSettings(name="orders", provider="standard",
    ...                               secrets=("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)))
    >>> headers = source.sign_headers(b"{}", now=1700000000)
    >>> source.verify(b"{}", headers, now=1700000000)
    """

    provider = "standard"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        keys: WebhookKeys,
        tolerance: float,
    ) -> None:
        super().__init__(name, extraction, secret_values=tuple(keys.redact))
        self._keys = keys
        self._signers = tuple(keys.signers)
        self._verifier = standard.Verifier(keys.hmac_keys, public_keys=keys.public_keys)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(
            msg_id=headers.get(ID_HEADER),
            timestamp_header=headers.get(TIMESTAMP_HEADER),
            signature_header=headers.get(SIGNATURE_HEADER),
            body=body,
            now=now,
            tolerance=self._tolerance,
        )

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        hints = list(super().diagnose(request, now, error))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        hints += version_hints(signature, self._keys)
        hint = literal_key_hint(
            request,
            now,
            self._keys.literal_secrets,
            verify=lambda verifier, headers: verifier.verify(
                msg_id=headers.get(ID_HEADER),
                timestamp_header=headers.get(TIMESTAMP_HEADER),
                signature_header=headers.get(SIGNATURE_HEADER),
                body=request.body,
                now=now,
                tolerance=self._tolerance,
            ),
        )
        if hint:
            hints.append(hint)
        return tuple(hints)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        signer = pick_secret(self._signers, secret_index)
        if signer is None:
            raise ValueError(
                f"secret number {secret_index + 1} is a whpk_ public key, which cannot sign: "
                "give its whsk_ private key as the option signing_key"
            )
        msg_id = delivery_id or "msg_" + _random.token_hex(12)
        timestamp = int(now)
        return {
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signer(msg_id, timestamp, body),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        moment = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")

        def event(event_type: str, data: dict[str, object]) -> bytes:
            document = {"type": event_type, "timestamp": moment, "data": data}
            return json.dumps(document, separators=(",", ":")).encode()

        def fresh(prefix: str) -> str:
            return prefix + _random.token_hex(10)

        return {
            "contact.created": event(
                "contact.created",
                {"id": fresh("cont_"), "email": "ada@example.com", "name": "Ada Lovelace"},
            ),
            "invoice.paid": event(
                "invoice.paid",
                {
                    "id": fresh("inv_"),
                    "customer_id": fresh("cus_"),
                    "amount": 4200,
                    "currency": "EUR",
                },
            ),
            "subscription.canceled": event(
                "subscription.canceled",
                {
                    "id": fresh("sub_"),
                    "customer_id": fresh("cus_"),
                    "plan": "pro",
                    "canceled_at": moment,
                },
            ),
        }


def version_hints(signature_header: str, keys: WebhookKeys) -> list[str]:
    """When the sender signs only with a version this source holds no key for."""
    versions = set(standard.signature_versions(signature_header))
    if not versions:
        return []
    hints = []
    if "v1a" in versions and "v1" not in versions and not keys.public_keys:
        hints.append(
            "the sender signs with v1a (ed25519) only, and this source has only whsec_ "
            "secrets: put the sender's whpk_ public key in secrets (a whsec_ secret "
            "verifies v1 signatures only)"
        )
    if "v1" in versions and "v1a" not in versions and not keys.hmac_keys:
        hints.append(
            "the sender signs with v1 (HMAC) only, and this source has only ed25519 keys "
            "(whpk_/whsk_): put the endpoint's whsec_ secret in secrets"
        )
    return hints


def literal_key_hint(
    request: Inbound,
    now: float,
    literal_secrets: Sequence[str],
    *,
    verify: Callable[[standard.Verifier, Mapping[str, str]], None],
    names: standard.HeaderNames = standard.WEBHOOK_HEADERS,
) -> str | None:
    """When the signature matches a ``whsec_`` secret used as text (its UTF-8 bytes, the
    way Stripe uses its ``whsec_`` secrets) instead of base64-decoded."""
    if not literal_secrets:
        return None
    literal = standard.Verifier([secret.encode("utf-8") for secret in literal_secrets], names=names)
    try:
        verify(literal, request.headers)
    except VerificationError:
        return None
    return (
        "the signature matches a whsec_ secret used as text (its UTF-8 bytes, the way "
        "Stripe uses its whsec_ secrets) rather than base64-decoded as Standard Webhooks "
        "requires: the sender's library handles the key wrongly; if the sender is "
        'Stripe, use provider = "stripe"'
    )


def build(settings: SourceSettings) -> StandardSource:
    """Build a Standard Webhooks source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    keys = parse_keys(
        settings, fix="use the whsec_, whpk_ or whsk_ value exactly as the sender shows it"
    )
    _add_signing_keys(settings, keys)
    extraction = build_extraction(
        settings, dedup=f"header:{ID_HEADER}", type="body:type", occurred_at="body:timestamp"
    )
    return StandardSource(settings.name, extraction, keys=keys, tolerance=check_tolerance(settings))


def _add_signing_keys(settings: SourceSettings, keys: WebhookKeys) -> None:
    """Pair the ``signing_key`` option's private keys with the ``whpk_`` secrets they sign for."""
    values = signing_key_texts(settings, what="a whsk_ key", example="env:WEBHOOK_SIGNING_KEY")
    key = f"sources.{settings.name}.signing_key"
    for position, text in enumerate(values, start=1):
        try:
            seed = standard.decode_signing_key(text)
        except ValueError as exc:
            raise ConfigError(
                f"signing key number {position}: {exc}",
                key=key,
                fix="use the whsk_... value exactly as the sender's key pair shows it",
            ) from None
        public = standard.public_key_of(seed)
        if public not in keys.public_keys:
            raise ConfigError(
                f"signing key number {position} signs for a public key that is not in secrets",
                key=key,
                fix=f'add "{standard.encode_public_key(public)}" to secrets, or remove the key',
            )
        keys.add_redacted(text, standard.SIGNING_KEY_PREFIX)
        for position_in_secrets, secret_key in enumerate(keys.secret_public_keys):
            if secret_key == public and keys.signers[position_in_secrets] is None:
                keys.signers[position_in_secrets] = _v1a_signer(seed)


PROVIDER = ProviderSpec(
    "standard",
    "Standard Webhooks v1 (whsec_ HMAC) and v1a (whpk_ ed25519): webhook-id, "
    "webhook-timestamp, webhook-signature",
    build,
    info=ProviderInfo(
        scheme="v1: HMAC-SHA256 base64 of {id}.{timestamp}.{body} (key: base64 after "
        "whsec_); v1a: ed25519 over the same bytes; ±tolerance",
        headers="webhook-id, webhook-timestamp, webhook-signature (v1,... v1a,...)",
        dedup_key="webhook-id header",
        ordering_key="none (set ordering_key)",
        retries="the sender's (the specification suggests immediately, 5 s, 5 min, 30 min, "
        "2 h, 5 h, 10 h, 14 h, 20 h, 24 h)",
        credential="whsec_ secret (v1) and/or the sender's whpk_ public key (v1a)",
        signed_headers=(ID_HEADER, TIMESTAMP_HEADER),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": (
        "whpk_wuzPrKxPfWpJSsXgyg/MEoMGvjs5SjDO4ad6X4ZYqqg=",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    "options": {"signing_key": "whsk_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="},
}
"""Settings the generic provider tests build this provider with: a ``v1a`` public key
(signed for by the ``signing_key`` option) and a ``v1`` secret."""
