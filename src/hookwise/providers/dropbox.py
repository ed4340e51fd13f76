"""Provider ``dropbox``: ``X-Dropbox-Signature: <hex HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="dropbox", provider="dropbox",
...                      secrets=("env:DROPBOX_APP_SECRET",)))

The key is the app secret (App Console → the app → Settings). Dropbox first verifies the
endpoint with ``GET ?challenge=...``: the challenge is echoed with ``Content-Type:
text/plain`` and ``X-Content-Type-Options: nosniff``, as Dropbox asks, so the echo can't
be turned into reflected script. The challenge proves nothing, so it is answered without
a secret.

A notification only says which accounts changed (``list_folder.accounts``); the
application then fetches the changes with its saved cursor, so handling one notification
twice is harmless while dropping one loses changes.

- Dedup key: Dropbox sends no delivery id, and a later change to the same account sends
  the same body again. So identical bodies are *not* one event: the key is the body's
  SHA-256 plus the time of receipt (``sha256:...@<milliseconds>``), and a retried
  notification is stored again (fetching with the cursor makes that harmless). Set
  ``ordering = "coalesce"`` with ``ordering_key = "list_folder.accounts.0"`` to collapse
  bursts. No timestamp is signed: a captured notification can be replayed, which only
  makes the application look for changes.
- Type: ``list_folder`` (the only notification there is).
- Ordering key: none by default (one notification may name several accounts).

Checked against Dropbox's webhooks reference: GET challenge echoed with those two
headers; ``X-Dropbox-Signature`` is the hex HMAC-SHA256 of the body with the app secret;
a non-200 answer or a timeout (10 s) is retried with exponential backoff for about ten
minutes.
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
    body_digest,
    check_options,
    reject_fields,
    require_secrets,
)
from hookwise.providers._hub import (
    BodySignature,
    HubSource,
    Rules,
    build_rules,
    json_bytes,
    no_tolerance,
    numeric_id,
)

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "DropboxSource", "build"]

SIGNATURE_HEADER = "X-Dropbox-Signature"

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("the_secret",)}
"""Settings that verify the provider's samples."""

MAX_CHALLENGE = 1024
"""The longest challenge echoed (Dropbox's are short random strings)."""

_ECHO_HEADERS = (("x-content-type-options", "nosniff"),)


class DropboxSource(HubSource):
    """A Dropbox webhook source.

    >>> source = build(SourceSettings(name="dbx", provider="dropbox", secrets=("s3cret",)))
    >>> source.handshake(Inbound(b"", {}, method="GET", query="challenge=abc123"), 0).body
    b'abc123'
    """

    provider = "dropbox"
    handshake_methods = frozenset({"GET"})
    key_hint = (
        "the key is the app secret (App Console → the app → Settings → App secret), not "
        "the app key or an access token"
    )
    missing_hint = (
        "Dropbox signs every notification with X-Dropbox-Signature: a POST without it did "
        "not come from Dropbox"
    )

    def __init__(
        self, name: str, rules: Rules, *, secrets: tuple[str, ...], timed_dedup: bool
    ) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "", keys),
            secrets=secrets,
        )
        self._timed_dedup = timed_dedup

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        described = self.rules.describe(body, headers)
        if not self._timed_dedup:
            return described
        return Description(
            dedup_key=f"{body_digest(body)}@{int(now * 1000)}",
            type=described.type,
            ordering_key=described.ordering_key,
            occurred_at=described.occurred_at,
        )

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """Echo the ``challenge`` of the GET that verifies the endpoint."""
        if request.method != "GET":
            return None
        challenge = request.params.get("challenge")
        if challenge is None:
            return None
        if not challenge or len(challenge) > MAX_CHALLENGE:
            return Handshake(400, b"the challenge is empty or too long\n")
        return Handshake(200, challenge.encode("utf-8"), "text/plain", _ECHO_HEADERS)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """The signature header; Dropbox sends no delivery id."""
        return {SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body)}

    def samples(self, now: float) -> dict[str, bytes]:
        """A notification that two accounts changed."""
        accounts = ["dbid:AA" + _random.token_urlsafe(30) for _ in range(2)]
        users = [numeric_id(8), numeric_id(8)]
        return {
            "list_folder": json_bytes(
                {"list_folder": {"accounts": accounts}, "delta": {"users": users}}
            )
        }


def build(settings: SourceSettings) -> DropboxSource:
    """Build a Dropbox source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    no_tolerance(settings, "Dropbox signs no timestamp")
    rules = build_rules(settings, type=("const:list_folder",))
    return DropboxSource(
        settings.name,
        rules,
        secrets=require_secrets(settings),
        timed_dedup=settings.dedup_key is None,
    )


PROVIDER = ProviderSpec(
    "dropbox",
    "Dropbox: X-Dropbox-Signature (HMAC-SHA256 of the body), GET challenge echoed",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body (app secret)",
        headers="X-Dropbox-Signature",
        dedup_key="none sent: body SHA-256 + time of receipt (same body = a new change)",
        ordering_key="none (set list_folder.accounts.0 to coalesce per account)",
        handshake="GET ?challenge= echoed as text/plain with nosniff",
        retries="non-200 and timeouts (10 s) retried with backoff for about 10 minutes",
        credential="the app secret",
    ),
)
