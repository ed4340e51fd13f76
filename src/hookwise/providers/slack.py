"""Provider ``slack``: requests signed with a Slack app's Signing Secret (Events API,
slash commands, interactivity).

Slack signs ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with HMAC-SHA256 keyed by
the Signing Secret and sends ``X-Slack-Signature: v0=<hex>``. The timestamp is
checked both ways against the source's tolerance (Slack's guidance is 5 minutes,
the default). Checked against Slack's "Verifying requests from Slack" page and
``slack_sdk.signature.SignatureVerifier``.

Bodies are JSON (Events API) or form-encoded (slash commands; interactivity sends one
``payload`` field holding JSON). ``body:`` settings read the JSON, the form fields of
a slash command, or the interactivity payload.

- Handshakes: the Events API's ``url_verification`` (a signed POST) is answered
  ``200`` with the challenge as ``text/plain``, the first of the three answers
  Slack's ``url_verification`` page documents (plain text, form, JSON). Slack's
  certificate check of a slash command URL, a form POST of ``ssl_check=1`` that
  carries *no* signature headers, is answered an empty ``200`` without verification,
  as Slack's Bolt frameworks do (only for ``ssl_check`` exactly ``1``); it is never
  stored, whatever else its body holds.
- Dedup key: ``event_id`` (the same on Slack's retries, which carry
  ``X-Slack-Retry-Num``); else ``trigger_id`` (slash commands, interactivity, which
  Slack does not retry); else a hash of the body.
- Type: ``event.type`` of an ``event_callback`` (``message``, ``app_mention``...), the
  top-level ``type`` of other Events API bodies (``app_rate_limited``), the
  ``command`` of a slash command (``/deploy``), the ``type`` of an interactivity
  payload (``block_actions``, ``view_submission``...).
- Ordering key: the channel the event is in (``event.channel``, ``event.item.channel``
  for reactions, ``channel_id`` of commands, ``channel.id`` of interactivity).
- Occurred at: ``event_time``.
- Answer: slash commands and interactivity get an empty ``200`` (see
  :meth:`SlackSource.acknowledgement`): Slack shows a slash command's answer body
  in the channel, and a ``view_submission`` needs an empty body to close its modal.
"""

from __future__ import annotations

import json
import secrets as _random
import string
from collections.abc import Mapping
from urllib.parse import urlencode

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
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
from hookwise.providers._computed import Computed, first_text, form_fields, text_at
from hookwise.providers._extract import NOT_JSON, parse_body
from hookwise.providers._hints import with_own_hints
from hookwise.signatures.hmac import HmacScheme

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "SlackSource", "build", "slack_document"]

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
RETRY_HEADER = "x-slack-retry-num"

SCHEME = HmacScheme(
    header=SIGNATURE_HEADER,
    prefix="v0=",
    template="v0:{timestamp}:{body}",
    timestamp_header=TIMESTAMP_HEADER,
)

SIGNING_SECRET_LENGTH = 32
"""Characters in a Slack Signing Secret (32 hexadecimal digits)."""


def slack_document(body: bytes) -> object:
    """What ``body:`` paths read: the JSON body, or the form fields, or the JSON of an
    interactivity ``payload`` field. ``NOT_JSON`` when it is none of them.

    >>> slack_document(b"command=%2Fdeploy&channel_id=C1")
    {'command': '/deploy', 'channel_id': 'C1'}
    """
    if _is_json(body):
        return parse_body(body)
    fields = form_fields(body)
    if fields is None:
        return NOT_JSON
    payload = fields.get("payload")
    if payload is not None:
        document = parse_body(payload.encode("utf-8", "surrogatepass"))
        if isinstance(document, dict):
            return document
    return fields


def _event_callback(document: object) -> bool:
    return isinstance(document, dict) and document.get("type") == "event_callback"


def _dedup(document: object, headers: Mapping[str, str]) -> str | None:
    return first_text(document, "event_id", "trigger_id")


def _type(document: object, headers: Mapping[str, str]) -> str | None:
    if _event_callback(document):
        return text_at(document, "event.type")
    return first_text(document, "command", "type")


def _ordering_key(document: object, headers: Mapping[str, str]) -> str | None:
    if _event_callback(document):
        return first_text(
            document, "event.channel", "event.channel.id", "event.item.channel", "event.channel_id"
        )
    return first_text(document, "channel_id", "channel.id", "container.channel_id")


def _occurred_at(document: object, headers: Mapping[str, str]) -> float | None:
    value = text_at(document, "event_time")
    return float(value) if value is not None and value.isdigit() else None


COMPUTED = Computed(dedup=_dedup, type=_type, ordering_key=_ordering_key, occurred_at=_occurred_at)


class SlackSource(Source):
    """A source for one Slack app's requests.

    >>> source = build(SourceSettings(name="slack", provider="slack",
    ...                               secrets=("8f742231b10e8888abcd99yyyzzz85a5",)))
    >>> request = source.sign_request(body, now=1700000000)
    >>> source.verify(request.body, request.headers, now=1700000000)
    """

    provider = "slack"

    def __init__(
        self, name: str, extraction: Extraction, *, secrets: tuple[str, ...], tolerance: float
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if _ssl_check(body):
            return  # unsigned by Slack; :meth:`handshake` answers it and nothing is stored
        SCHEME.verify(self._keys, headers=headers, body=body, now=now, tolerance=self._tolerance)

    def handshake(self, request: Inbound, now: float) -> Handshake | None:
        """Slack's ``url_verification`` (the challenge, as plain text) and ``ssl_check``
        (an empty ``200``)."""
        if _ssl_check(request.body):
            return Handshake(body=b"")
        if b"url_verification" not in request.body or not _is_json(request.body):
            return None
        document = parse_body(request.body)
        if not isinstance(document, dict) or document.get("type") != "url_verification":
            return None
        challenge = document.get("challenge")
        if not isinstance(challenge, str) or not challenge.strip():
            raise VerificationError(
                "bad_token", "the url_verification request carries no challenge to answer"
            )
        return Handshake(body=challenge.encode("utf-8"), content_type="text/plain; charset=utf-8")

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        return COMPUTED.describe(self.extraction, slack_document(body), body, headers)

    def acknowledgement(self, body: bytes, headers: Mapping[str, str]) -> Handshake | None:
        """The answer Slack needs once a delivery is stored (new or duplicate), or
        ``None`` for hookwise's usual JSON answer.

        Slash commands and interactivity get an empty ``200``: a slash command's answer
        body is shown in the channel, and a ``view_submission`` closes its modal only on
        an empty body. The handler replies later through the ``response_url``.
        """
        if _is_json(body):
            return None
        return Handshake(body=b"")

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        if isinstance(error, VerificationError) and error.reason == "no_matching_signature":
            token = text_at(slack_document(request.body), "token")
            if token is not None and token in self.secret_values:
                hints.append(
                    "a configured secret is the app's Verification Token (the token field "
                    "in the body), which Slack deprecated: put the Signing Secret in "
                    "secrets (Basic Information > App Credentials)"
                )
            for position, secret in enumerate(self.secret_values, start=1):
                if len(secret.strip()) != SIGNING_SECRET_LENGTH:
                    hints.append(
                        f"secret number {position} is {len(secret.strip())} characters long; "
                        f"a Slack Signing Secret is {SIGNING_SECRET_LENGTH}: copy the Signing "
                        "Secret (Basic Information > App Credentials), not the Client Secret, "
                        "the Verification Token or a token"
                    )
        if RETRY_HEADER in request.headers and isinstance(error, VerificationError):
            hints.append(
                f"this is Slack's retry number {request.headers[RETRY_HEADER].strip()[:3]} of "
                "an event: earlier attempts were not answered with 2xx within 3 seconds"
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
        """The headers Slack sends; ``delivery_id`` is unused (Slack's ids are in the body)."""
        key = pick_secret(self._keys, secret_index)
        timestamp = str(int(now))
        return {
            "content-type": (
                "application/json" if _is_json(body) else "application/x-www-form-urlencoded"
            ),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: SCHEME.sign(key, body, timestamp=timestamp),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now)


def build(settings: SourceSettings) -> SlackSource:
    """Build a Slack source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    return SlackSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        secrets=secrets,
        tolerance=check_tolerance(settings),
    )


def _is_json(body: bytes) -> bool:
    return body.lstrip()[:1] == b"{"


def _ssl_check(body: bytes) -> bool:
    """Whether ``body`` is Slack's certificate check of a slash command URL."""
    if b"ssl_check" not in body or _is_json(body):
        return False
    fields = form_fields(body)
    return fields is not None and fields.get("ssl_check") == "1"


# Samples: the shapes Slack sends, with fresh ids and times.

_UPPER = string.ascii_uppercase + string.digits


def _id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(_random.choice(_UPPER) for _ in range(length))


def _ts(now: float) -> str:
    return f"{int(now)}.{_random.randbelow(1_000_000):06d}"


def _samples(now: float) -> dict[str, bytes]:
    team, app, bot = _id("T"), _id("A"), _id("U")
    channel, user = _id("C"), _id("U")
    token = "".join(_random.choice(string.ascii_letters + string.digits) for _ in range(24))

    def callback(event: dict[str, object]) -> bytes:
        document = {
            "token": token,
            "team_id": team,
            "context_team_id": team,
            "api_app_id": app,
            "event": event,
            "type": "event_callback",
            "event_id": _id("Ev"),
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": bot,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return json.dumps(document, separators=(",", ":")).encode()

    message_ts = _ts(now)
    command = {
        "token": token,
        "team_id": team,
        "team_domain": "acme",
        "channel_id": channel,
        "channel_name": "deploys",
        "user_id": user,
        "user_name": "ada",
        "command": "/deploy",
        "text": "api production",
        "api_app_id": app,
        "is_enterprise_install": "false",
        "response_url": f"https://hooks.slack.com/commands/{team}/{_random.randbelow(10**12)}/"
        + _random.token_urlsafe(18),
        "trigger_id": _trigger_id(),
    }
    action = {
        "type": "block_actions",
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": team},
        "api_app_id": app,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": _trigger_id(),
        "team": {"id": team, "domain": "acme"},
        "channel": {"id": channel, "name": "deploys"},
        "response_url": f"https://hooks.slack.com/actions/{team}/{_random.randbelow(10**12)}/"
        + _random.token_urlsafe(18),
        "actions": [
            {
                "action_id": "approve_deploy",
                "block_id": "deploy_request",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": "api-production",
                "style": "primary",
                "type": "button",
                "action_ts": _ts(now),
            }
        ],
    }
    return {
        "message": callback(
            {
                "type": "message",
                "channel": channel,
                "user": user,
                "text": "Deploy of api to production finished.",
                "ts": message_ts,
                "event_ts": message_ts,
                "channel_type": "channel",
            }
        ),
        "app_mention": callback(
            {
                "type": "app_mention",
                "user": user,
                "text": f"<@{bot}> what is the status of the api?",
                "ts": _ts(now),
                "channel": channel,
                "event_ts": _ts(now),
            }
        ),
        "reaction_added": callback(
            {
                "type": "reaction_added",
                "user": user,
                "reaction": "white_check_mark",
                "item_user": bot,
                "item": {"type": "message", "channel": channel, "ts": message_ts},
                "event_ts": _ts(now),
            }
        ),
        "/deploy": urlencode(command).encode(),
        "block_actions": urlencode({"payload": json.dumps(action, separators=(",", ":"))}).encode(),
    }


def _trigger_id() -> str:
    return f"{_random.randbelow(10**12)}.{_random.randbelow(10**11)}.{_random.token_hex(16)}"


PROVIDER = ProviderSpec(
    "slack",
    "Slack: X-Slack-Signature (v0 HMAC-SHA256) over v0:{timestamp}:{body}; "
    "Events API, slash commands, interactivity",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of v0:{timestamp}:{body} (Signing Secret); ±tolerance",
        headers="X-Slack-Signature (v0=...), X-Slack-Request-Timestamp",
        dedup_key="body event_id (Events API); trigger_id (commands, interactivity); "
        "else a body hash",
        ordering_key="the channel (event.channel, channel_id, channel.id)",
        handshake="url_verification (signed POST): 200 text/plain with the challenge; "
        "ssl_check=1 (unsigned): empty 200, nothing stored",
        retries="Events API: 3 retries (about immediately, 1 min, 5 min) with "
        "X-Slack-Retry-Num, 3 s to answer; commands and interactivity: none",
        credential="the app's Signing Secret",
        signed_headers=(TIMESTAMP_HEADER,),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("8f742231b10e8888abcd99yyyzzz85a5",)}
"""Settings the generic provider tests build this provider with (Slack's documented
example secret)."""
