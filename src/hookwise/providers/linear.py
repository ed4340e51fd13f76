"""Provider ``linear``: ``Linear-Signature: <hex HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="linear", provider="linear",
...                      secrets=("env:LINEAR_WEBHOOK_SECRET",)))

The key is the webhook's signing secret (``lin_wh_...``). Linear signs no header time;
its replay protection is the body's ``webhookTimestamp`` (UNIX milliseconds, set for
each attempt and covered by the signature), checked against the source's ``tolerance``
in both directions (default 5 minutes; Linear's own SDK allows 60 seconds: set
``tolerance = "60s"`` to match it). A body without that field is rejected
(``missing_timestamp``); one whose field is not a number too (``malformed_timestamp``).

- Dedup key: the ``Linear-Delivery`` header.
- Type: the ``Linear-Event`` header (the body's ``type`` when absent) plus the body's
  ``action``: ``Issue.create``, ``Issue.update``, ``Comment.remove`` (handler patterns:
  ``Issue.*``).
- Ordering key: the body's ``data.id`` (the issue, comment... concerned).
- Occurred at: the body's ``createdAt`` (when the action happened, the same on every
  attempt), else ``webhookTimestamp``.

Checked against Linear's webhooks page and the ``@linear/sdk`` webhook client (98.0.0):
hex HMAC-SHA256 of the raw body; the SDK trusts only the body's ``webhookTimestamp``
(at most 60 s from now, either way); a delivery not answered ``200`` within 5 s is retried at
most 3 times, after 1 minute, 1 hour and 6 hours.
"""

from __future__ import annotations

import math
import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.errors import VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    SignedRequest,
    check_options,
    check_tolerance,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import parse_body, parse_body_fast
from hookwise.providers._hub import (
    BodySignature,
    HubSource,
    Rules,
    build_rules,
    hub_hints,
    iso_time,
    json_bytes,
    new_uuid,
)
from hookwise.signatures._common import check_timestamp

__all__ = [
    "EXAMPLE_SETTINGS",
    "PROVIDER",
    "SDK_TOLERANCE",
    "LinearSource",
    "build",
    "webhook_time",
]

SIGNATURE_HEADER = "Linear-Signature"
DELIVERY_HEADER = "Linear-Delivery"
EVENT_HEADER = "Linear-Event"
TIMESTAMP_FIELD = "webhookTimestamp"

SDK_TOLERANCE = 60.0
"""The window, in seconds, Linear's own SDK allows (hookwise uses the source's tolerance)."""

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("lin_wh_secret",)}
"""Settings that verify the provider's samples."""

# Beyond this a number is not UNIX milliseconds, and dividing it could overflow a float.
_MOST_MILLIS = 10**16


def webhook_time(body: bytes) -> float:
    """The body's ``webhookTimestamp`` in UNIX seconds; ``VerificationError`` when absent
    or not a number.

    >>> webhook_time(b'{"action": "create", "webhookTimestamp": 1700000000000}')
    1700000000.0
    """
    document, _ = parse_body_fast(body)
    value = document.get(TIMESTAMP_FIELD) if isinstance(document, dict) else None
    if value is None:
        raise VerificationError(
            "missing_timestamp", f"the body has no {TIMESTAMP_FIELD} field (UNIX milliseconds)"
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or abs(value) >= _MOST_MILLIS
    ):
        raise VerificationError(
            "malformed_timestamp", f"the body's {TIMESTAMP_FIELD} is not UNIX milliseconds"
        )
    return value / 1000


class LinearSource(HubSource):
    """A Linear webhook source.

    >>> source = build(SourceSettings(name="lin", provider="linear", secrets=("s3cret",)))
    >>> body = source.samples(now=1700000000)["Issue.create"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "linear"
    key_hint = (
        "the key is the webhook's signing secret (lin_wh_..., shown on the webhook's page "
        "under Settings → API → Webhooks), not an API key (lin_api_...)"
    )
    missing_hint = (
        "Linear signs every delivery with Linear-Signature: a request without it did not "
        "come from a Linear webhook"
    )

    def __init__(
        self, name: str, rules: Rules, *, secrets: tuple[str, ...], tolerance: float
    ) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "", keys),
            secrets=secrets,
        )
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self.signature.verify(headers, body)
        check_timestamp(webhook_time(body), now=now, tolerance=self.tolerance)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Linear's headers for ``body``; its time is the body's ``webhookTimestamp``
        (:meth:`sign_request` adds one when the body has none)."""
        headers = {
            DELIVERY_HEADER.lower(): delivery_id or new_uuid(),
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
        }
        document = parse_body(body)
        kind = document.get("type") if isinstance(document, dict) else None
        if isinstance(kind, str) and kind:
            headers[EVENT_HEADER.lower()] = kind
        return headers

    def sign_request(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> SignedRequest:
        """The request Linear would send: a JSON object without ``webhookTimestamp`` gets
        one (``now``), as Linear stamps every attempt; other bodies go as they are."""
        document = parse_body(body)
        if isinstance(document, dict) and TIMESTAMP_FIELD not in document:
            body = json_bytes({**document, TIMESTAMP_FIELD: int(now * 1000)})
        return SignedRequest(
            body,
            self.sign_headers(body, now=now, secret_index=secret_index, delivery_id=delivery_id),
        )

    def provider_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        hints = hub_hints(self, self.signature, request, error)
        reason = getattr(error, "reason", "")
        if reason == "missing_timestamp":
            hints.insert(
                0,
                f"the body has no {TIMESTAMP_FIELD}: Linear puts one in every delivery; the "
                "sender is not Linear, or something rewrote the body",
            )
        elif reason in ("timestamp_too_old", "timestamp_too_new"):
            document = parse_body(request.body)
            value = document.get(TIMESTAMP_FIELD) if isinstance(document, dict) else None
            if isinstance(value, int | float) and abs(now - value) <= max(self.tolerance, 60):
                hints.insert(
                    0,
                    f"{TIMESTAMP_FIELD} looks like UNIX seconds; Linear writes milliseconds: "
                    "the sender is not Linear, or it writes the field wrongly",
                )
        for position, secret in enumerate(self.signing_secrets, start=1):
            if secret.strip().startswith("lin_api_"):
                hints.append(
                    f"secret number {position} looks like a Linear API key (lin_api_...), "
                    "not a webhook signing secret: copy the secret from the webhook's page"
                )
        return hints

    def samples(self, now: float) -> dict[str, bytes]:
        """An issue created, an issue moved to In Progress, a comment created."""
        millis = int(now * 1000)
        stamp = iso_time(now)
        created = iso_time(now - 3600)
        organization = new_uuid()
        team = {"id": new_uuid(), "key": "ENG", "name": "Engineering"}
        actor = {
            "id": new_uuid(),
            "type": "user",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "url": "https://linear.app/acme/profiles/ada",
        }
        number = 100 + _random.randbelow(900)
        identifier = f"ENG-{number}"
        url = f"https://linear.app/acme/issue/{identifier.lower()}/retried-deliveries-run-twice"
        todo = {"id": new_uuid(), "name": "Todo", "color": "#e2e2e2", "type": "unstarted"}
        started = {"id": new_uuid(), "name": "In Progress", "color": "#f2c94c", "type": "started"}
        issue = {
            "id": new_uuid(),
            "createdAt": stamp,
            "updatedAt": stamp,
            "number": number,
            "title": "Retried deliveries run twice",
            "description": "Seen twice for one Linear-Delivery.",
            "priority": 2,
            "priorityLabel": "High",
            "boardOrder": 0,
            "sortOrder": -1021.5,
            "teamId": team["id"],
            "stateId": todo["id"],
            "creatorId": actor["id"],
            "labelIds": [],
            "subscriberIds": [actor["id"]],
            "identifier": identifier,
            "url": url,
            "state": todo,
            "team": team,
            "labels": [],
        }
        moved = {
            **issue,
            "createdAt": created,
            "updatedAt": stamp,
            "stateId": started["id"],
            "state": started,
            "assigneeId": actor["id"],
            "startedAt": stamp,
        }
        comment_id = new_uuid()
        comment = {
            "id": comment_id,
            "createdAt": stamp,
            "updatedAt": stamp,
            "body": "Reproduced with a delivery retried after a timeout.",
            "issueId": issue["id"],
            "userId": actor["id"],
            "reactionData": [],
            "issue": {"id": issue["id"], "title": issue["title"], "identifier": identifier},
            "user": {"id": actor["id"], "name": actor["name"]},
        }

        def payload(action: str, kind: str, data: dict[str, object], **extra: object) -> bytes:
            return json_bytes(
                {
                    "action": action,
                    "actor": actor,
                    "createdAt": stamp,
                    "data": data,
                    "url": url if kind == "Issue" else f"{url}#comment-{comment_id[:8]}",
                    "type": kind,
                    **extra,
                    "organizationId": organization,
                    "webhookTimestamp": millis,
                    "webhookId": new_uuid(),
                }
            )

        return {
            "Issue.create": payload("create", "Issue", issue),
            "Issue.update": payload(
                "update",
                "Issue",
                moved,
                updatedFrom={"updatedAt": created, "stateId": todo["id"], "assigneeId": None},
            ),
            "Comment.create": payload("create", "Comment", comment),
        }


def build(settings: SourceSettings) -> LinearSource:
    """Build a Linear source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    rules = build_rules(
        settings,
        dedup=(f"header:{DELIVERY_HEADER}",),
        type=(f"header:{EVENT_HEADER}", "body:type"),
        action=("body:action",),
        ordering_key=("body:data.id",),
        occurred_at=(("body:createdAt", 1), (f"body:{TIMESTAMP_FIELD}", 1000)),
    )
    return LinearSource(
        settings.name,
        rules,
        secrets=require_secrets(settings),
        tolerance=check_tolerance(settings),
    )


PROVIDER = ProviderSpec(
    "linear",
    "Linear: Linear-Signature (HMAC-SHA256 of the body), webhookTimestamp, Linear-Delivery",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body; body webhookTimestamp (ms) within tolerance",
        headers="Linear-Signature, Linear-Delivery, Linear-Event",
        dedup_key="Linear-Delivery header",
        ordering_key="body data.id",
        retries="up to 3 retries: after 1 minute, 1 hour, 6 hours; 5 s to answer with 200",
        credential="the webhook's signing secret (lin_wh_...)",
    ),
)
