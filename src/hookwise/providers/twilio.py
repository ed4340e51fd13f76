"""Provider ``twilio``: ``X-Twilio-Signature`` over the URL and the POST parameters.

>>> build(SourceSettings(name="sms", provider="twilio", secrets=("env:TWILIO_AUTH_TOKEN",),
...                      public_url="https://hooks.example.com/hooks/sms"))

Twilio signs the URL configured for the webhook, so hookwise must know it:
``public_url`` (the query of each request is appended), or the URL rebuilt from the
request (``Host``, and ``X-Forwarded-*`` of trusted proxies). The URL is accepted
with and without an explicit port, as Twilio's own validators do. Form bodies are
signed through their parameters; JSON bodies through ``bodySHA256`` in the query.
Secrets are Auth Tokens or SharedKey secrets (``X-Twilio-Webhooks-Signature-Settings``
picks HMAC-SHA1 or HMAC-SHA256); a signature by any of them passes.

Defaults:

- dedup key: the ``I-Twilio-Idempotency-Token`` header (Twilio's id of one webhook,
  the same on its retries); without it, the resource SID and a hash of the body
  (``SM...:1f2e...``). A bare SID would not do: one message sends a status
  callback per status, and a call sends several callbacks while in progress.
- type: the resource and its status, ``message.delivered``, ``message.received``,
  ``call.completed``, ``recording.completed``...; else the ``EventType`` parameter.
- ordering key: the resource SID (``RecordingSid``, ``MessageSid``, ``CallSid``...).
- occurred at: the ``Timestamp`` parameter, when the callback has one (calls).

``body:NAME`` specs in the settings read form parameters as well as JSON fields.
Stored form webhooks are answered with an empty TwiML ``<Response>``: an incoming
message gets no reply and an incoming call ends (a handler can't answer with TwiML;
reply through Twilio's API instead).
Options ``shared_key_id`` and ``shared_key_algorithm`` only change how ``hookwise
send`` and the tests sign (SharedKey style); verification accepts both kinds.
"""

from __future__ import annotations

import hashlib
import re
import secrets as _random
import uuid
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    UNKNOWN_TYPE,
    Description,
    Extraction,
    Handshake,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    SignedRequest,
    Source,
    body_digest,
    build_extraction,
    check_options,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import NOT_JSON, extract, parse_body, to_timestamp
from hookwise.providers._hints import with_own_hints
from hookwise.providers._url import check_public_url, reject_tolerance, signing_url, url_hint
from hookwise.signatures import twilio

__all__ = ["EXAMPLE_SETTINGS", "OPTIONS", "PROVIDER", "TwilioSource", "build"]

IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
"""The answer to a stored form webhook: TwiML that does nothing."""
OPTIONS = ("shared_key_id", "shared_key_algorithm")

# (SID parameter, status parameters, resource name), most specific first: a
# recording callback also names its call.
_RESOURCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("RecordingSid", ("RecordingStatus",), "recording"),
    ("TranscriptionSid", ("TranscriptionStatus",), "transcription"),
    ("MessageSid", ("MessageStatus", "SmsStatus"), "message"),
    ("SmsSid", ("SmsStatus",), "message"),
    ("CallSid", ("CallStatus",), "call"),
)
_API_KEY_SID = re.compile(r"SK[0-9a-f]{32}")
_SIGNS = "Twilio signs the URL it posts to"

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("8a3f1e0c2b9d4e7f6a5b4c3d2e1f0a9b",),
    "options": {},
    "public_url": "https://hooks.example.com/hooks/twilio",
}
"""Settings the shared provider tests (and the docs) build a Twilio source from."""


class TwilioSource(Source):
    """A Twilio source.

    >>> source = build(SourceSettings(name="sms", provider="twilio", secrets=("12345",),
    ...                               public_url="https://hooks.example.com/hooks/sms"))
    >>> signed = source.sign_request(b"MessageSid=SM1&MessageStatus=sent", now=0)
    >>> source.verify_request(Inbound(signed.body, signed.headers,
    ...                               url="https://hooks.example.com/hooks/sms"), now=0)
    """

    provider = "twilio"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secrets: tuple[str, ...],
        shared_key_id: str | None,
        shared_key_algorithm: str,
    ) -> None:
        super().__init__(name, extraction, secret_values=secrets)
        self._keys = tuple(secret.encode("utf-8") for secret in secrets)
        self._verifier = twilio.Verifier(self._keys)
        self._shared_key_id = shared_key_id
        self._algorithm = shared_key_algorithm if shared_key_id else twilio.DEFAULT_ALGORITHM

    def verify_request(self, request: Inbound, now: float) -> None:
        self._verifier.verify(url=request.url, body=request.body, headers=request.headers)

    def acknowledgement(self, body: bytes, headers: Mapping[str, str]) -> Handshake | None:
        """Twilio's form webhooks are answered with empty TwiML, once stored.

        An incoming message then gets no reply and an incoming call ends, instead of
        Twilio logging (or, for a call, saying) an application error about hookwise's
        JSON answer; status callbacks ignore the answer. JSON webhooks get the usual one.
        """
        if _is_json(body):
            return None
        return Handshake(body=EMPTY_TWIML, content_type="text/xml; charset=utf-8")

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        document = _document(body)
        fields = document if isinstance(document, dict) else {}
        rules = self.extraction
        sid, resource, status = _resource(fields)

        dedup_key = extract(rules.dedup, headers, document) if rules.dedup else None
        if dedup_key is None and not rules.dedup:
            dedup_key = (headers.get(IDEMPOTENCY_HEADER) or "").strip() or None
            if dedup_key is None and sid:
                dedup_key = f"{sid}:{hashlib.sha256(body).hexdigest()[:16]}"
        event_type = extract(rules.type, headers, document) if rules.type else None
        if event_type is None and not rules.type:
            if resource:
                event_type = f"{resource}.{status.lower()}" if status else resource
            else:
                event_type = _text(fields.get("EventType"))
        if rules.ordering_key is not None:
            ordering_key = extract(rules.ordering_key, headers, document)
        else:
            ordering_key = sid
        occurred_at = None
        if rules.occurred_at is not None:
            moment = extract(rules.occurred_at, headers, document)
            occurred_at = to_timestamp(moment) if moment is not None else None
        else:
            occurred_at = _moment(_text(fields.get("Timestamp")))
        return Description(
            dedup_key=dedup_key or body_digest(body),
            type=event_type or UNKNOWN_TYPE,
            ordering_key=ordering_key,
            occurred_at=occurred_at,
        )

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        return with_own_hints(self, request, now, error, self._own_hints)

    def _own_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints: list[str] = []
        for position, secret in enumerate(self.secret_values, start=1):
            if _API_KEY_SID.fullmatch(secret.strip()):
                hints.append(
                    f"secret number {position} looks like a Twilio API key SID (SK...), not "
                    "an Auth Token: copy the Auth Token from the Twilio console"
                )
        reason = getattr(error, "reason", "")
        if reason not in ("no_matching_signature", "wrong_url"):
            return hints
        hint = url_hint(self, request, now)
        if hint:
            return [*hints, hint]
        if _is_json(request.body) and twilio.BODY_HASH_PARAM not in request.url:
            hints.append(
                "the body is JSON but the URL has no bodySHA256 query parameter: Twilio signs "
                "JSON bodies through it; check that the query string reaches hookwise"
            )
        settings = request.headers.get(twilio.SETTINGS_HEADER)
        if settings:
            hints.append(
                f"Twilio signed this request with a SharedKey ({settings.strip()[:80]}): "
                "add that SharedKey's secret to secrets; the Auth Token does not verify it"
            )
        elif reason == "no_matching_signature":
            hints.append(
                "Twilio signs with the Auth Token of the account that owns the number or "
                "service (a subaccount has its own); while rotating it, list both the old and "
                "the new token in secrets"
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
        key = pick_secret(self._keys, secret_index)
        url = signing_url(self, _SIGNS)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            IDEMPOTENCY_HEADER: delivery_id or _idempotency_token(),
            twilio.SIGNATURE_HEADER: twilio.sign(
                key, url, twilio.form_params(body), self._algorithm
            ),
        }
        headers.update(self._settings_header())
        return headers

    def sign_request(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> SignedRequest:
        """Form bodies are signed through their parameters; JSON bodies through
        ``bodySHA256`` in the query, as Twilio does."""
        if not _is_json(body):
            return super().sign_request(
                body, now=now, secret_index=secret_index, delivery_id=delivery_id
            )
        key = pick_secret(self._keys, secret_index)
        query = f"{twilio.BODY_HASH_PARAM}={twilio.body_hash(body)}"
        headers = {
            "content-type": "application/json",
            IDEMPOTENCY_HEADER: delivery_id or _idempotency_token(),
            twilio.SIGNATURE_HEADER: twilio.sign(
                key, f"{signing_url(self, _SIGNS)}?{query}", (), self._algorithm
            ),
        }
        headers.update(self._settings_header())
        return SignedRequest(body, headers, query=query)

    def samples(self, now: float) -> dict[str, bytes]:
        account = "AC" + _random.token_hex(16)
        service = "MG" + _random.token_hex(16)
        ours, theirs = "+14155550123", "+14155550" + str(100 + _random.randbelow(900))
        message = "SM" + _random.token_hex(16)
        inbound = "SM" + _random.token_hex(16)
        call = "CA" + _random.token_hex(16)
        received = {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": inbound,
            "NumMedia": "0",
            "ToCity": "SAN FRANCISCO",
            "FromZip": "94107",
            "SmsSid": inbound,
            "FromState": "CA",
            "SmsStatus": "received",
            "FromCity": "SAN FRANCISCO",
            "Body": "Is my order on its way?",
            "FromCountry": "US",
            "To": ours,
            "MessagingServiceSid": service,
            "ToZip": "94105",
            "NumSegments": "1",
            "MessageSid": inbound,
            "AccountSid": account,
            "From": theirs,
            "ApiVersion": "2010-04-01",
        }
        delivered = {
            "SmsSid": message,
            "SmsStatus": "delivered",
            "MessageStatus": "delivered",
            "To": theirs,
            "MessagingServiceSid": service,
            "MessageSid": message,
            "AccountSid": account,
            "From": ours,
            "ApiVersion": "2010-04-01",
        }
        completed = {
            "Called": theirs,
            "ToState": "CA",
            "CallerCountry": "US",
            "Direction": "outbound-api",
            "Timestamp": _rfc2822(now),
            "CallbackSource": "call-progress-events",
            "SipResponseCode": "200",
            "CallerState": "CA",
            "ToZip": "94105",
            "SequenceNumber": "3",
            "CallSid": call,
            "To": theirs,
            "CallerZip": "94107",
            "ToCountry": "US",
            "CalledZip": "94105",
            "ApiVersion": "2010-04-01",
            "CalledCity": "SAN FRANCISCO",
            "CallStatus": "completed",
            "Duration": "1",
            "From": ours,
            "CallDuration": "42",
            "AccountSid": account,
            "CalledCountry": "US",
            "CallerCity": "SAN FRANCISCO",
            "ToCity": "SAN FRANCISCO",
            "FromCountry": "US",
            "Caller": ours,
            "FromCity": "SAN FRANCISCO",
            "CalledState": "CA",
            "FromZip": "94107",
            "FromState": "CA",
        }
        return {
            "message.received": urlencode(received).encode("ascii"),
            "message.delivered": urlencode(delivered).encode("ascii"),
            "call.completed": urlencode(completed).encode("ascii"),
        }

    def _settings_header(self) -> dict[str, str]:
        if not self._shared_key_id:
            return {}
        value = f"key={self._shared_key_id},algorithm={self._algorithm}"
        return {twilio.SETTINGS_HEADER: value}


def build(settings: SourceSettings) -> TwilioSource:
    """Build a Twilio source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    check_public_url(settings)
    reject_tolerance(settings, "Twilio")
    secrets = require_secrets(settings)
    key = f"sources.{settings.name}"
    shared_key_id = settings.options.get("shared_key_id")
    if shared_key_id is not None and (not isinstance(shared_key_id, str) or not shared_key_id):
        raise ConfigError(
            "shared_key_id must be the SharedKey's id",
            key=f"{key}.shared_key_id",
            fix='write it like shared_key_id = "webhooks_sharedkey_..."',
        )
    algorithm = settings.options.get("shared_key_algorithm", "HMAC_SHA256")
    if not isinstance(algorithm, str) or algorithm.upper() not in twilio.ALGORITHMS:
        raise ConfigError(
            f"unknown shared_key_algorithm {algorithm!r}",
            key=f"{key}.shared_key_algorithm",
            fix=f"use one of: {', '.join(twilio.ALGORITHMS)}",
        )
    return TwilioSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        secrets=secrets,
        shared_key_id=shared_key_id,
        shared_key_algorithm=algorithm.upper(),
    )


def _is_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def _document(body: bytes) -> object:
    if _is_json(body):
        return parse_body(body)
    fields: dict[str, str] = {}
    for name, value in twilio.form_params(body):
        fields.setdefault(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
    return fields if fields else NOT_JSON


def _resource(fields: Mapping[str, object]) -> tuple[str | None, str | None, str | None]:
    for sid_name, status_names, resource in _RESOURCES:
        sid = _text(fields.get(sid_name))
        if sid:
            status = next(
                (text for name in status_names if (text := _text(fields.get(name)))), None
            )
            return sid, resource, status
    return None, None, None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _moment(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return to_timestamp(text)
    if moment.tzinfo is None:  # "-0000": UTC, with no zone information
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _rfc2822(now: float) -> str:
    from email.utils import formatdate

    return formatdate(now, usegmt=False).replace("-0000", "+0000")


def _idempotency_token() -> str:
    return f"{uuid.uuid4()}-{_random.token_hex(8)}"


PROVIDER = ProviderSpec(
    "twilio",
    "Twilio: X-Twilio-Signature over the URL and POST parameters (public_url); Auth Token",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA1 base64 of URL + sorted POST params (JSON: URL with bodySHA256); "
        "SharedKey: HMAC-SHA256",
        headers="X-Twilio-Signature, X-Twilio-Webhooks-Signature-Settings, "
        "I-Twilio-Idempotency-Token",
        dedup_key="I-Twilio-Idempotency-Token header, else resource SID + body hash",
        ordering_key="the resource SID (MessageSid, CallSid, RecordingSid)",
        handshake="none",
        retries="only on connection failures: 1 retry by default (#rc=0..5 in the URL), "
        "15 s timeout",
        credential="the account's Auth Token (or a SharedKey secret)",
    ),
)
