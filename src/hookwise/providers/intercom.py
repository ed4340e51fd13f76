"""Provider ``intercom``: ``X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>``.

>>> build(SourceSettings(name="intercom", provider="intercom",
...                      secrets=("env:INTERCOM_CLIENT_SECRET",)))

The key is the app's client secret (Developer Hub → the app → Basic information).
Intercom signs with SHA-1 only; HMAC-SHA1 is still sound as a MAC, but there is no
stronger signature to prefer.

- Dedup key: the body's ``id`` (the notification's id, ``notif_...``). No timestamp is
  signed: replays are caught by this key.
- Type: the body's ``topic``: ``conversation.user.created``, ``contact.user.created``,
  ``ping`` (sent when the subscription is saved).
- Ordering key: the body's ``data.item.id`` (the conversation, contact... concerned).
- Occurred at: the body's ``created_at`` (UNIX seconds).

Checked against Intercom's "Webhook notifications" page: a private app's subscription is
paused for 15 minutes after 1000 consecutive errors in 15 minutes and suspended after
seven days of errors; a 429 answer throttles deliveries (1 minute up to 2 hours).
"""

from __future__ import annotations

import secrets as _random
import uuid
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    ProviderInfo,
    ProviderSpec,
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

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "IntercomSource", "build"]

SIGNATURE_HEADER = "X-Hub-Signature"

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("ic_client_secret",)}
"""Settings that verify the provider's samples."""


class IntercomSource(HubSource):
    """An Intercom webhook source.

    >>> source = build(SourceSettings(name="ic", provider="intercom", secrets=("s3cret",)))
    >>> body = source.samples(now=1700000000)["ping"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "intercom"
    key_hint = (
        "the key is the app's client secret (Developer Hub → the app → Basic information "
        "→ App credentials), not its access token"
    )
    missing_hint = (
        "Intercom signs every notification with the app's client secret: a request "
        "without X-Hub-Signature did not come from an Intercom subscription"
    )

    def __init__(self, name: str, rules: Rules, *, secrets: tuple[str, ...]) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha1", "hex", "sha1=", keys),
            secrets=secrets,
        )

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """The signature header; Intercom's delivery id lives in the body (``id``)."""
        return {SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body)}

    def samples(self, now: float) -> dict[str, bytes]:
        """A ping, a conversation started by a user, an admin reply, a new contact."""
        app_id = _random.token_hex(4)
        seconds = int(now)
        contact_id = _random.token_hex(12)
        user = {
            "type": "user",
            "id": contact_id,
            "name": "Grace Hopper",
            "email": "grace@example.com",
        }
        conversation_id = str(numeric_id(12))
        conversation = {
            "type": "conversation",
            "id": conversation_id,
            "created_at": seconds,
            "updated_at": seconds,
            "waiting_since": seconds,
            "title": None,
            "state": "open",
            "open": True,
            "read": False,
            "priority": "not_priority",
            "admin_assignee_id": None,
            "team_assignee_id": None,
            "source": {
                "type": "conversation",
                "id": str(numeric_id(10)),
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": "<p>My webhook deliveries arrive twice. Is that expected?</p>",
                "author": user,
                "url": None,
            },
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": contact_id, "external_id": "user-8812"}],
            },
            "tags": {"type": "tag.list", "tags": []},
        }
        admin_id = numeric_id(7)
        admin = {"type": "admin", "id": str(admin_id), "name": "Support", "email": None}
        replied = {
            **conversation,
            "updated_at": seconds,
            "waiting_since": None,
            "admin_assignee_id": admin_id,
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": [
                    {
                        "type": "conversation_part",
                        "id": str(numeric_id(11)),
                        "part_type": "comment",
                        "body": "<p>Yes: retries can repeat a delivery. Deduplicate on its id.</p>",
                        "created_at": seconds,
                        "updated_at": seconds,
                        "author": admin,
                    }
                ],
                "total_count": 1,
            },
        }
        contact = {
            "type": "contact",
            "id": contact_id,
            "workspace_id": app_id,
            "external_id": "user-8812",
            "role": "user",
            "email": "grace@example.com",
            "name": "Grace Hopper",
            "created_at": seconds,
            "updated_at": seconds,
            "signed_up_at": seconds,
        }
        ping_item = {"type": "ping", "message": "something something interzen"}

        def notification(topic: str, item: Mapping[str, object]) -> bytes:
            return json_bytes(
                {
                    "type": "notification_event",
                    "app_id": app_id,
                    "data": {"type": "notification_event_data", "item": item},
                    "links": {},
                    "id": f"notif_{uuid.uuid4()}",
                    "topic": topic,
                    "delivery_status": "pending",
                    "delivery_attempts": 1,
                    "delivered_at": 0,
                    "first_sent_at": seconds,
                    "created_at": seconds,
                    "self": None,
                }
            )

        return {
            "ping": notification("ping", ping_item),
            "conversation.user.created": notification("conversation.user.created", conversation),
            "conversation.admin.replied": notification("conversation.admin.replied", replied),
            "contact.user.created": notification("contact.user.created", contact),
        }


def build(settings: SourceSettings) -> IntercomSource:
    """Build an Intercom source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    no_tolerance(settings, "Intercom signs no timestamp; replays are caught by the body's id")
    rules = build_rules(
        settings,
        dedup=("body:id",),
        type=("body:topic",),
        ordering_key=("body:data.item.id",),
        occurred_at=(("body:created_at", 1),),
    )
    return IntercomSource(settings.name, rules, secrets=require_secrets(settings))


PROVIDER = ProviderSpec(
    "intercom",
    "Intercom: X-Hub-Signature sha1= (HMAC-SHA1 of the body with the client secret)",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA1 hex of the body, sha1= prefix",
        headers="X-Hub-Signature",
        dedup_key="body id (notif_...)",
        ordering_key="body data.item.id",
        handshake="none (the ping topic is stored with type ping)",
        retries=(
            "errors retried; a private app's subscription is suspended after 7 days of "
            "errors; 429 throttles deliveries from 1 minute up to 2 hours"
        ),
        credential="the app's client secret",
    ),
)
