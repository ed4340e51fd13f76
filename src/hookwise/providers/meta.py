"""Provider ``meta``: Facebook, Instagram, Messenger and WhatsApp webhooks.

>>> build(SourceSettings(name="whatsapp", provider="meta", secrets=("env:META_APP_SECRET",),
...                      options={"verify_token": "env:META_VERIFY_TOKEN"}))

Deliveries are POSTs signed ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``
with the App Secret; the legacy ``X-Hub-Signature: sha1=`` that comes with it is not
checked. Meta escapes non-ASCII text in its JSON (``\\u00e7``): the signature covers those
escaped bytes, which hookwise verifies as they arrived.

The endpoint is verified with a GET carrying ``hub.mode=subscribe``, ``hub.verify_token``
and ``hub.challenge``: when the token equals the ``verify_token`` option (compared in
constant time) the challenge is echoed as ``text/plain`` with ``200``; a wrong token gets
``403``, a request without ``hub.challenge`` or with another mode ``400``.

- Dedup key: Meta sends no delivery id, so identical bodies are one event (their SHA-256).
  A retry repeats the body, so it is caught; two different events never share a body
  (each carries its own message ids and times). Replays of a captured request are caught
  while the first is kept (the store's retention), by nothing else: no timestamp is signed.
- Type: the body's ``object``, plus the field of its first change, or ``messaging`` for
  Messenger and Instagram messaging events: ``whatsapp_business_account.messages``,
  ``page.feed``, ``instagram.comments``, ``page.messaging``. A delivery may batch
  several entries and changes; the first names it.
- Ordering key: ``entry.0.id`` (the WhatsApp Business Account, Page or Instagram account).
- Occurred at: none by default (entries write times in seconds or milliseconds, by product).

Checked against Meta's WhatsApp "Create a webhook endpoint" and Messenger webhook pages
(GET verification, ``X-Hub-Signature-256`` with the App Secret, 403 for a wrong token).
Those pages do not give the retry schedule; the one in ``PROVIDER.info`` (decreasing
frequency, about 36 hours for Graph webhooks, up to 7 days for WhatsApp) is from Meta's
Graph webhooks and WhatsApp guides.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Handshake,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    check_options,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import lookup
from hookwise.providers._hub import (
    BodySignature,
    HubSource,
    Rules,
    build_rules,
    hub_hints,
    json_bytes,
    no_tolerance,
    numeric_id,
    text_option,
)
from hookwise.signatures._common import constant_time_equal

__all__ = ["EXAMPLE_SETTINGS", "OPTIONS", "PROVIDER", "MetaSource", "build"]

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_HEADER = "X-Hub-Signature"

OPTIONS = ("verify_token",)
"""``verify_token``: the token typed into the App Dashboard next to the callback URL."""

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("meta_app_secret",),
    "options": {"verify_token": "meta-verify-token"},
}
"""Settings that verify the provider's samples and answer its handshake."""

_NO_SNIFF = (("x-content-type-options", "nosniff"),)


def change_kind(document: object) -> str | None:
    """What the first entry of a delivery is about: its first change's ``field``, or
    ``messaging`` / ``standby`` for Messenger events.

    >>> change_kind({"object": "page", "entry": [{"changes": [{"field": "feed"}]}]})
    'feed'
    """
    entry = lookup(("entry", "0"), document)
    if not isinstance(entry, dict):
        return None
    changes = entry.get("changes")
    if isinstance(changes, list) and changes and isinstance(changes[0], dict):
        field = changes[0].get("field")
        if isinstance(field, str) and field:
            return field
    for kind in ("messaging", "standby"):
        items = entry.get(kind)
        if isinstance(items, list) and items:
            return kind
    return None


class MetaSource(HubSource):
    """A Meta (Facebook, Instagram, Messenger, WhatsApp) webhook source.

    >>> source = build(SourceSettings(name="wa", provider="meta", secrets=("app-secret",),
    ...                               options={"verify_token": "tok"}))
    >>> source.handshake(Inbound(b"", {}, method="GET",
    ...     query="hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42"), now=0).body
    b'42'
    """

    provider = "meta"
    handshake_methods = frozenset({"GET"})
    key_hint = (
        "the key is the App Secret (App Dashboard → App settings → Basic → App secret), "
        "not the verify token, an access token or the app id"
    )
    missing_hint = (
        "Meta signs every POST with X-Hub-Signature-256 (the App Secret): a POST without "
        "it did not come from Meta; the GET that verifies the endpoint has no signature "
        "and is answered through hub.verify_token"
    )

    def __init__(
        self,
        name: str,
        rules: Rules,
        *,
        secrets: tuple[str, ...],
        verify_token: str,
        typed_by_change: bool = True,
    ) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "sha256=", keys),
            secrets=secrets,
            secret_values=(*secrets, verify_token),
        )
        self.legacy = BodySignature(LEGACY_HEADER, "sha1", "hex", "sha1=", keys)
        self._verify_token = verify_token
        self._suffix = change_kind if typed_by_change else None

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return self.rules.describe(body, headers, suffix=self._suffix)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """Answer the GET that verifies the callback URL; ``None`` for any other request."""
        if request.method != "GET":
            return None
        params = request.params
        if "hub.mode" not in params and "hub.challenge" not in params:
            return None
        challenge = params.get("hub.challenge", "")
        if params.get("hub.mode") != "subscribe" or not challenge:
            return Handshake(400, b"expected hub.mode=subscribe and a hub.challenge\n")
        if not constant_time_equal(self._verify_token, params.get("hub.verify_token", "")):
            return Handshake(403, b"the verify token does not match\n")
        return Handshake(200, challenge.encode("utf-8"), "text/plain", _NO_SNIFF)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Both signature headers Meta sends; it sends no delivery id."""
        return {
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
            LEGACY_HEADER.lower(): self.legacy.sign(secret_index, body),
        }

    def provider_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        headers = request.headers
        value = headers.get(self.signature.header, "").strip()
        legacy = headers.get(self.legacy.header, "").strip()
        if not value and legacy.startswith("sha1="):
            return [
                f"only the legacy {LEGACY_HEADER} (SHA-1) was sent, without {SIGNATURE_HEADER}, "
                "which Meta sends with it and which is what hookwise checks: something between "
                "Meta and hookwise drops the header, or the sender is not Meta"
            ]
        hints = hub_hints(self, self.signature, request, error)
        if value and self.signature.matches(
            self._verify_token.encode("utf-8"), value, request.body
        ):
            hints.insert(
                0,
                "the signature matches the verify token used as the key: the sender signs "
                "with the verify token; Meta signs with the App Secret, which belongs in "
                "secrets",
            )
        return hints

    def samples(self, now: float) -> dict[str, bytes]:
        """A WhatsApp message, a Page feed post, an Instagram comment, a Messenger message."""
        seconds = int(now)
        millis = int(now * 1000)
        waba, phone_number_id = str(numeric_id(15)), str(numeric_id(15))
        whatsapp = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": waba,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": phone_number_id,
                                },
                                "contacts": [
                                    {"profile": {"name": "Zoë Durand"}, "wa_id": "33612345678"}
                                ],
                                "messages": [
                                    {
                                        "from": "33612345678",
                                        "id": "wamid.HBgL" + _random.token_urlsafe(24),
                                        "timestamp": str(seconds),
                                        "text": {"body": "Ça marche ? Je n'ai rien reçu."},
                                        "type": "text",
                                    }
                                ],
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }
        page_id, post_id = str(numeric_id(15)), str(numeric_id(15))
        feed = {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": seconds,
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "from": {"id": str(numeric_id(16)), "name": "Cinderella Hoover"},
                                "item": "post",
                                "post_id": f"{page_id}_{post_id}",
                                "verb": "add",
                                "created_time": seconds,
                                "is_hidden": False,
                                "message": "Loving the new release!",
                            },
                        }
                    ],
                }
            ],
        }
        instagram = {
            "object": "instagram",
            "entry": [
                {
                    "id": str(numeric_id(17)),
                    "time": seconds,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "from": {"id": str(numeric_id(17)), "username": "hookwise_fan"},
                                "media": {"id": str(numeric_id(17)), "media_product_type": "FEED"},
                                "id": str(numeric_id(17)),
                                "text": "When is the next drop?",
                            },
                        }
                    ],
                }
            ],
        }
        psid = str(numeric_id(16))
        messenger = {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": millis,
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": page_id},
                            "timestamp": millis,
                            "message": {
                                "mid": "m_" + _random.token_urlsafe(32),
                                "text": "Hello, is my order on its way?",
                            },
                        }
                    ],
                }
            ],
        }
        return {
            "whatsapp_business_account.messages": json_bytes(whatsapp, ascii_only=True),
            "page.feed": json_bytes(feed, ascii_only=True),
            "instagram.comments": json_bytes(instagram, ascii_only=True),
            "page.messaging": json_bytes(messenger, ascii_only=True),
        }


def build(settings: SourceSettings) -> MetaSource:
    """Build a Meta source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    no_tolerance(settings, "Meta signs no timestamp; identical bodies are one event")
    secrets = require_secrets(settings)
    verify_token = text_option(
        settings,
        "verify_token",
        fix='add verify_token = "env:META_VERIFY_TOKEN" under the source (the token typed '
        "into the App Dashboard next to the callback URL)",
    )
    rules = build_rules(
        settings,
        type=("body:object",),
        ordering_key=("body:entry.0.id",),
    )
    return MetaSource(
        settings.name,
        rules,
        secrets=secrets,
        verify_token=verify_token,
        typed_by_change=settings.type is None,
    )


PROVIDER = ProviderSpec(
    "meta",
    "Meta (Facebook, Instagram, Messenger, WhatsApp): X-Hub-Signature-256, hub.challenge",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body (App Secret), sha256= prefix",
        headers="X-Hub-Signature-256",
        dedup_key="none sent: the body's SHA-256 (a retry repeats the body)",
        ordering_key="body entry.0.id",
        handshake="GET hub.mode=subscribe: hub.verify_token checked, hub.challenge echoed",
        retries="retried with decreasing frequency (Graph about 36 h, WhatsApp up to 7 days)",
        credential="the App Secret (verify_token option for the GET handshake)",
    ),
)
