"""Provider ``discord``: a Discord application's Interactions Endpoint URL.

Discord signs ``{X-Signature-Timestamp}{raw body}`` with ed25519 and sends the
signature in ``X-Signature-Ed25519`` (hex). ``secrets`` hold the application's public
key (64 hexadecimal digits, on the developer portal's General Information page);
several are accepted. Discord documents no freshness window; the source's tolerance
(5 minutes by default) is checked both ways. Discord probes the endpoint with bad
signatures and removes it if they are accepted: they get ``401``. Checked against
Discord's "Interactions overview" (security headers, PING) and "Receiving and
responding" pages.

- Handshake: ``PING`` (``{"type": 1}``, signed) is answered ``200`` ``{"type": 1}``
  (``PONG``), as JSON.
- Discord wants the answer to an interaction in the HTTP response, within 3 seconds;
  hookwise answers once the interaction is stored, before a handler runs, so it
  acknowledges with a *deferred* response (see :meth:`DiscordSource.acknowledgement`):
  ``{"type": 5}`` (``DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE``: the user sees "thinking...")
  for application commands and modal submits, ``{"type": 6}``
  (``DEFERRED_UPDATE_MESSAGE``) for message components. The handler then has 15
  minutes to edit the response with the interaction ``token``:
  ``PATCH /webhooks/{application_id}/{token}/messages/@original``. Autocomplete can't be
  deferred: it is answered with no choices (``{"type": 8, "data": {"choices": []}}``).
- Dedup key: the interaction ``id``. Type: the interaction type's name
  (``application_command``, ``message_component``, ``application_command_autocomplete``,
  ``modal_submit``); ``data.name`` holds a command's name (``type = "body:data.name"``
  to route on it). Ordering key: ``channel_id`` (else ``channel.id``). Occurred at: the
  time in the interaction id (a snowflake).
- Signing: Discord keeps its private key; for tests and ``hookwise send`` the
  ``signing_key`` option holds private keys (64 hexadecimal digits of an ed25519
  seed, or a list of them) whose public keys are in ``secrets``.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Description,
    Extraction,
    Handshake,
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
from hookwise.providers._computed import Computed, first_text, node_at, text_at
from hookwise.providers._extract import parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.providers._keys import signing_key_texts
from hookwise.signatures import discord
from hookwise.signatures.discord import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["EXAMPLE_SETTINGS", "INTERACTION_TYPES", "OPTIONS", "PROVIDER", "DiscordSource", "build"]

OPTIONS = ("signing_key",)
"""Provider options: ``signing_key`` (private keys for tests and ``hookwise send``)."""

PING = 1
INTERACTION_TYPES = {
    1: "ping",
    2: "application_command",
    3: "message_component",
    4: "application_command_autocomplete",
    5: "modal_submit",
}
"""Discord's interaction types, by number, as hookwise names them."""

DISCORD_EPOCH_MS = 1_420_070_400_000
"""Milliseconds from the UNIX epoch to Discord's (2015-01-01), the origin of snowflakes."""

_ACKNOWLEDGEMENTS: dict[int, object] = {
    2: {"type": 5},  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    3: {"type": 6},  # DEFERRED_UPDATE_MESSAGE
    4: {"type": 8, "data": {"choices": []}},  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
    5: {"type": 5},
}


def _interaction_type(document: object) -> int | None:
    value = node_at(document, "type")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    number = _interaction_type(document)
    if number is None:
        return None
    return INTERACTION_TYPES.get(number, f"type_{number}")


def _ordering_key(document: object, headers: Mapping[str, str]) -> str | None:
    return first_text(document, "channel_id", "channel.id")


def _occurred_at(document: object, headers: Mapping[str, str]) -> float | None:
    snowflake = text_at(document, "id")
    if snowflake is None or not snowflake.isdigit() or len(snowflake) > 20:
        return None
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


COMPUTED = Computed(
    dedup=lambda document, headers: text_at(document, "id"),
    type=_type,
    ordering_key=_ordering_key,
    occurred_at=_occurred_at,
)


class DiscordSource(Source):
    """A source for one Discord application's interactions.

    >>> source = build(SourceSettings(name="discord", provider="discord",
    ...                               secrets=(APPLICATION_PUBLIC_KEY,)))
    >>> source.verify(body, headers, now=clock.now())
    """

    provider = "discord"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        verifier: discord.Verifier,
        signers: tuple[bytes | None, ...],
        tolerance: float,
        secret_values: tuple[str, ...],
    ) -> None:
        super().__init__(name, extraction, secret_values=secret_values)
        self._verifier = verifier
        self._signers = signers
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self._verifier.verify(headers, body, now=now, tolerance=self._tolerance)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """``PING`` gets ``PONG``."""
        if _interaction_type(parse_body(request.body)) != PING:
            return None
        return Handshake.json({"type": 1})

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return COMPUTED.describe(self.extraction, parse_body(body), body, headers)

    def acknowledgement(self, body: bytes, headers: Mapping[str, str]) -> Handshake | None:
        """The interaction response Discord needs once the interaction is stored (new or
        duplicate): a deferred response the handler completes later (see the module
        docstring). ``None`` for an interaction type hookwise does not know."""
        answer = _ACKNOWLEDGEMENTS.get(_interaction_type(parse_body(body)) or 0)
        return Handshake.json(answer) if answer is not None else None

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        if isinstance(error, VerificationError) and error.reason == "no_matching_signature":
            application = text_at(parse_body(request.body), "application_id")
            if application is not None and application.isdigit():
                hints.append(
                    f"the interaction is for application {application[:20]}: check that "
                    "secrets hold that application's public key (developer portal > "
                    "General Information > Public Key), not another application's, the "
                    "client secret or the bot token"
                )
            else:
                hints.append(
                    "Discord sends bad signatures on purpose to check the endpoint refuses "
                    "them; if this was not such a probe, check that secrets hold the "
                    "application's public key (developer portal > General Information)"
                )
        return hints

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Headers signed with the ``signing_key`` that pairs with ``secrets[secret_index]``;
        ``delivery_id`` is unused (the interaction id is in the body)."""
        seed = pick_secret(self._signers, secret_index)
        if seed is None:
            raise ValueError(
                f"no signing_key pairs with public key number {secret_index + 1}: Discord "
                "keeps its private key; for tests, give one in the signing_key option"
            )
        timestamp = str(int(now))
        return {
            "content-type": "application/json",
            SIGNATURE_HEADER: discord.sign(seed, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
        }

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now)


def build(settings: SourceSettings) -> DiscordSource:
    """Build a Discord interactions source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    secrets = require_secrets(settings)
    key = f"sources.{settings.name}"
    public_keys: list[bytes] = []
    for position, secret in enumerate(secrets, start=1):
        try:
            public_keys.append(discord.decode_key(secret))
        except ValueError as exc:
            raise ConfigError(
                f"secret number {position}: {exc}",
                key=f"{key}.secrets",
                fix="copy the application's Public Key (developer portal > General "
                "Information), not the client secret or the bot token",
            ) from None
    signers: list[bytes | None] = [None] * len(public_keys)
    signing_texts = signing_key_texts(
        settings, what="a key (64 hexadecimal digits)", example="env:DISCORD_TEST_SIGNING_KEY"
    )
    for position, text in enumerate(signing_texts, start=1):
        try:
            seed = discord.decode_key(text, what="signing key")
        except ValueError as exc:
            raise ConfigError(
                f"signing key number {position}: {exc}",
                key=f"{key}.signing_key",
                fix="give the 32-byte ed25519 seed as 64 hexadecimal digits",
            ) from None
        public = bytes.fromhex(discord.public_key_hex(seed))
        if public not in public_keys:
            raise ConfigError(
                f"signing key number {position} signs for a public key that is not in secrets",
                key=f"{key}.signing_key",
                fix=f'add "{public.hex()}" to secrets, or remove the signing key',
            )
        for index, candidate in enumerate(public_keys):
            if candidate == public and signers[index] is None:
                signers[index] = seed
    try:
        verifier = discord.Verifier(public_keys)
    except ValueError as exc:
        raise ConfigError(
            f"a public key is not an ed25519 key: {exc}",
            key=f"{key}.secrets",
            fix="copy the application's Public Key again",
        ) from None
    return DiscordSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        verifier=verifier,
        signers=tuple(signers),
        tolerance=check_tolerance(settings),
        secret_values=tuple(text.strip() for text in signing_texts),
    )


# Samples: the shapes Discord sends, with fresh ids and times.


def _snowflake(now: float) -> str:
    milliseconds = int(now * 1000) - DISCORD_EPOCH_MS
    return str((milliseconds << 22) | _random.randbelow(1 << 22))


def _samples(now: float) -> dict[str, bytes]:
    application = _snowflake(now - 90 * 86_400)
    guild, channel = _snowflake(now - 60 * 86_400), _snowflake(now - 30 * 86_400)
    user_id = _snowflake(now - 400 * 86_400)
    command_id = _snowflake(now - 20 * 86_400)
    message_id = _snowflake(now - 60)
    member: dict[str, object] = {
        "user": {
            "id": user_id,
            "username": "ada",
            "global_name": "Ada",
            "discriminator": "0",
            "avatar": None,
        },
        "roles": [],
        "permissions": "2248473465835073",
        "nick": None,
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
    }

    def interaction(kind: int, data: dict[str, object], **extra: object) -> bytes:
        document: dict[str, object] = {
            "id": _snowflake(now),
            "application_id": application,
            "type": kind,
            "data": data,
            "guild_id": guild,
            "channel_id": channel,
            "channel": {"id": channel, "type": 0, "name": "deploys", "guild_id": guild},
            "member": member,
            "token": "aW50ZXJhY3Rpb246" + _random.token_urlsafe(60),
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild},
            "context": 0,
            **extra,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    command = {
        "id": command_id,
        "name": "deploy",
        "type": 1,
        "options": [{"name": "service", "type": 3, "value": "api"}],
    }
    return {
        "application_command": interaction(2, command),
        "message_component": interaction(
            3,
            {"custom_id": "approve_deploy", "component_type": 2},
            message={"id": message_id, "channel_id": channel, "content": "Deploy api?"},
        ),
        "application_command_autocomplete": interaction(
            4,
            {
                "id": command_id,
                "name": "deploy",
                "type": 1,
                "options": [{"name": "service", "type": 3, "value": "a", "focused": True}],
            },
        ),
        "modal_submit": interaction(
            5,
            {
                "custom_id": "deploy_note",
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 4, "custom_id": "note", "value": "Ship it after lunch"}
                        ],
                    }
                ],
            },
        ),
    }


PROVIDER = ProviderSpec(
    "discord",
    "Discord interactions: X-Signature-Ed25519 over {timestamp}{body}; PING, deferred answers",
    build,
    info=ProviderInfo(
        scheme="ed25519 (hex) over {X-Signature-Timestamp}{body}; ±tolerance",
        headers="X-Signature-Ed25519, X-Signature-Timestamp",
        dedup_key="body id (the interaction)",
        ordering_key="channel_id",
        handshake='PING (signed POST): 200 JSON {"type": 1}; interactions are answered '
        'with a deferred response ({"type": 5} or 6)',
        retries="none: an unanswered interaction fails for the user after 3 s",
        credential="the application's public key (hex); signing_key option for tests",
        signed_headers=(TIMESTAMP_HEADER,),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",),
    "options": {"signing_key": bytes(range(32)).hex()},
}
"""Settings the generic provider tests build this provider with: the public key of the
seed 00 01 .. 1f, and that seed to sign with."""
