"""Provider ``jira``: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="jira", provider="jira", secrets=("env:JIRA_WEBHOOK_SECRET",)))

Jira Cloud signs admin webhooks (made under Settings → System → WebHooks, or through
the REST API) that were given a secret; Jira Data Center signs the same way. Connect and
Forge apps receive JWT-authenticated webhooks instead, which this provider does not read.

- Dedup key: the ``X-Atlassian-Webhook-Identifier`` header, unchanged across retries.
  No timestamp is signed: replays are caught by this key.
- Type: the body's ``webhookEvent``: ``jira:issue_created``, ``jira:issue_updated``,
  ``comment_created`` (handler patterns: ``jira:issue_*``).
- Ordering key: the body's ``issue.id``.
- Occurred at: the body's ``timestamp`` (UNIX milliseconds, when the event happened;
  the same on every retry).

Checked against Atlassian's Jira Cloud webhooks page, the Data Center "Managing webhooks"
page (HMAC-SHA256 by default, ``X-Hub-Signature: sha256=<hex>``) and the Jira Cloud retry
announcement: 408, 409, 425, 429 and 5xx answers and timeouts are retried, deliveries may
arrive up to about 30 minutes late, ``X-Atlassian-Webhook-Retry`` counts the retries.
"""

from __future__ import annotations

import secrets as _random
from datetime import UTC, datetime

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
    new_uuid,
    no_tolerance,
    numeric_id,
)

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "JiraSource", "build"]

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("jira_webhook_secret",)}
"""Settings that verify the provider's samples."""

_SITE = "https://acme.atlassian.net"


class JiraSource(HubSource):
    """A Jira webhook source.

    >>> source = build(SourceSettings(name="jira", provider="jira", secrets=("s3cret",)))
    >>> body = source.samples(now=1700000000)["jira:issue_created"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "jira"
    key_hint = (
        "the key is the secret given to the webhook (Jira settings → System → WebHooks → "
        "the webhook → Secret, or the secret field of the REST registration), not an API "
        "token"
    )
    missing_hint = (
        "Jira signs only admin webhooks that have a secret: set one on the webhook (Jira "
        "settings → System → WebHooks); webhooks of Connect and Forge apps carry a JWT "
        "instead, which provider 'jira' does not check"
    )

    def __init__(self, name: str, rules: Rules, *, secrets: tuple[str, ...]) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "sha256=", keys),
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
        return {
            IDENTIFIER_HEADER.lower(): delivery_id or new_uuid(),
            "x-atlassian-webhook-flow": "Primary",
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
        }

    def samples(self, now: float) -> dict[str, bytes]:
        """An issue created, an issue moved to In Progress, and a comment added."""
        millis = int(now * 1000)
        account = _random.token_hex(12)
        user = {
            "self": f"{_SITE}/rest/api/2/user?accountId={account}",
            "accountId": account,
            "avatarUrls": {"48x48": f"{_SITE}/avatar/{account}.png"},
            "displayName": "Ada Lovelace",
            "active": True,
            "timeZone": "Europe/London",
            "accountType": "atlassian",
        }
        issue_id = str(numeric_id(5))
        number = numeric_id(3)
        stamp = _jira_time(now)
        fields = {
            "summary": "Webhook deliveries are processed twice",
            "issuetype": {"id": "10004", "name": "Bug", "subtask": False},
            "project": {"id": "10000", "key": "HOOK", "name": "Hooks"},
            "priority": {"id": "3", "name": "Medium"},
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "created": stamp,
            "updated": stamp,
            "reporter": user,
            "creator": user,
            "assignee": None,
            "labels": ["webhooks"],
            "description": "Seen twice for one X-Atlassian-Webhook-Identifier.",
        }
        issue = {
            "id": issue_id,
            "self": f"{_SITE}/rest/api/2/{issue_id}",
            "key": f"HOOK-{number}",
            "fields": fields,
        }
        in_progress = {
            **issue,
            "fields": {
                **fields,
                "status": {
                    "id": "3",
                    "name": "In Progress",
                    "statusCategory": {"key": "indeterminate"},
                },
                "assignee": user,
            },
        }
        comment_id = str(numeric_id(5))
        comment = {
            "self": f"{_SITE}/rest/api/2/issue/{issue_id}/comment/{comment_id}",
            "id": comment_id,
            "author": user,
            "body": "Reproduced with a retried delivery.",
            "updateAuthor": user,
            "created": stamp,
            "updated": stamp,
            "jsdPublic": True,
        }
        return {
            "jira:issue_created": json_bytes(
                {
                    "timestamp": millis,
                    "webhookEvent": "jira:issue_created",
                    "issue_event_type_name": "issue_created",
                    "user": user,
                    "issue": issue,
                }
            ),
            "jira:issue_updated": json_bytes(
                {
                    "timestamp": millis,
                    "webhookEvent": "jira:issue_updated",
                    "issue_event_type_name": "issue_generic",
                    "user": user,
                    "issue": in_progress,
                    "changelog": {
                        "id": str(numeric_id(5)),
                        "items": [
                            {
                                "field": "status",
                                "fieldtype": "jira",
                                "fieldId": "status",
                                "from": "10000",
                                "fromString": "To Do",
                                "to": "3",
                                "toString": "In Progress",
                            }
                        ],
                    },
                }
            ),
            "comment_created": json_bytes(
                {
                    "timestamp": millis,
                    "webhookEvent": "comment_created",
                    "comment": comment,
                    "issue": issue,
                }
            ),
        }


def _jira_time(now: float) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def build(settings: SourceSettings) -> JiraSource:
    """Build a Jira source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    no_tolerance(
        settings, "Jira signs no timestamp; replays are caught by X-Atlassian-Webhook-Identifier"
    )
    rules = build_rules(
        settings,
        dedup=(f"header:{IDENTIFIER_HEADER}",),
        type=("body:webhookEvent",),
        ordering_key=("body:issue.id",),
        occurred_at=(("body:timestamp", 1000),),
    )
    return JiraSource(settings.name, rules, secrets=require_secrets(settings))


PROVIDER = ProviderSpec(
    "jira",
    "Jira: X-Hub-Signature sha256= (HMAC-SHA256 of the body), X-Atlassian-Webhook-Identifier",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body, sha256= prefix",
        headers="X-Hub-Signature, X-Atlassian-Webhook-Identifier, X-Atlassian-Webhook-Retry",
        dedup_key="X-Atlassian-Webhook-Identifier header (kept on retries)",
        ordering_key="body issue.id",
        retries="408/409/425/429/5xx and timeouts retried, up to about 30 minutes late",
        credential="the admin webhook's secret",
    ),
)
