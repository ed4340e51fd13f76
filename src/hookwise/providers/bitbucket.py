"""Provider ``bitbucket``: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="bitbucket", provider="bitbucket",
...                      secrets=("env:BITBUCKET_WEBHOOK_SECRET",)))

Bitbucket Cloud signs deliveries only when the webhook has a secret (webhook secrets
arrived in 2023); the header is ``X-Hub-Signature`` without GitHub's ``-256`` suffix,
with a ``sha256=`` prefix. Bitbucket Data Center signs the same way by default.

- Dedup key: the ``X-Request-UUID`` header (``X-Request-Id`` on Data Center), the same on
  every attempt of one delivery. No timestamp is signed: replays are caught by this key.
- Type: the ``X-Event-Key`` header: ``repo:push``, ``pullrequest:created``,
  ``pullrequest:fulfilled`` (handler patterns: ``pullrequest:*``).
- Ordering key: the body's ``repository.uuid`` (``{...}`` with braces, as Bitbucket writes it).
- Occurred at: none by default.

Checked against Bitbucket Cloud's "Manage webhooks" and "Troubleshoot webhooks" pages
and the webhook-secrets announcement: HMAC-SHA256 hex of the raw body, ``sha256=`` prefix;
a 5xx answer is resent up to two more times; 10 s to answer; payloads up to 256 KB.
"""

from __future__ import annotations

import hashlib
import secrets as _random
import uuid

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    ProviderInfo,
    ProviderSpec,
    check_options,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import parse_body
from hookwise.providers._hub import (
    BodySignature,
    HubSource,
    Rules,
    build_rules,
    iso_time,
    json_bytes,
    new_uuid,
    no_tolerance,
    numeric_id,
)

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "BitbucketSource", "build", "event_key"]

SIGNATURE_HEADER = "X-Hub-Signature"
REQUEST_HEADER = "X-Request-UUID"
EVENT_HEADER = "X-Event-Key"

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("bb_secret",)}
"""Settings that verify the provider's samples."""


def event_key(document: object) -> str | None:
    """The ``X-Event-Key`` a payload goes with, told from its shape, or None.

    >>> event_key({"push": {"changes": []}, "repository": {}})
    'repo:push'

    What :meth:`BitbucketSource.sign_headers` sends, since a body alone does not say it.
    A pull request whose creation and update times are equal was just created.
    """
    if not isinstance(document, dict):
        return None
    if "push" in document:
        return "repo:push"
    pull_request = document.get("pullrequest")
    if isinstance(pull_request, dict):
        if "approval" in document:
            return "pullrequest:approved"
        if "comment" in document:
            return "pullrequest:comment_created"
        state = pull_request.get("state")
        if state == "MERGED":
            return "pullrequest:fulfilled"
        if state == "DECLINED":
            return "pullrequest:rejected"
        fresh = pull_request.get("created_on") == pull_request.get("updated_on")
        return "pullrequest:created" if fresh else "pullrequest:updated"
    if "issue" in document:
        if "comment" in document:
            return "issue:comment_created"
        return "issue:updated" if "changes" in document else "issue:created"
    if "fork" in document:
        return "repo:fork"
    status = document.get("commit_status")
    if isinstance(status, dict):
        fresh = status.get("created_on") == status.get("updated_on")
        return "repo:commit_status_created" if fresh else "repo:commit_status_updated"
    return None


class BitbucketSource(HubSource):
    """A Bitbucket webhook source.

    >>> source = build(SourceSettings(name="bb", provider="bitbucket", secrets=("bb_secret",)))
    >>> body = source.samples(now=1700000000)["repo:push"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "bitbucket"
    key_hint = (
        "the key is the webhook's Secret (Repository settings → Webhooks → the webhook → "
        "Secret), not an app password or access token"
    )
    missing_hint = (
        "Bitbucket signs deliveries only when the webhook has a secret: add one under "
        "Repository settings → Webhooks → Edit → Secret, and put it in the source's secrets"
    )

    def __init__(self, name: str, rules: Rules, *, secrets: tuple[str, ...]) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "sha256=", keys),
            secrets=secrets,
        )
        self._hook_uuid = "{" + str(uuid.uuid4()) + "}"

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """Bitbucket's headers for ``body``; ``X-Event-Key`` is told from the payload's
        shape (see :func:`event_key`) and left out when it can't be."""
        headers = {
            REQUEST_HEADER.lower(): delivery_id or new_uuid(),
            "x-hook-uuid": self._hook_uuid,
            "x-attempt-number": "1",
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
        }
        key = event_key(parse_body(body))
        if key is not None:
            headers[EVENT_HEADER.lower()] = key
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        """A push, a pull request created, merged, and commented on."""
        workspace = {
            "type": "workspace",
            "slug": "acme",
            "name": "Acme",
            "uuid": _braced(),
            "links": {"html": {"href": "https://bitbucket.org/acme/"}},
        }
        repository = {
            "type": "repository",
            "full_name": "acme/webhooks-demo",
            "name": "webhooks-demo",
            "uuid": _braced(),
            "is_private": True,
            "scm": "git",
            "website": None,
            "links": {"html": {"href": "https://bitbucket.org/acme/webhooks-demo"}},
            "workspace": workspace,
            "project": {"type": "project", "key": "HOOK", "name": "Hooks", "uuid": _braced()},
            "owner": {"type": "team", "display_name": "Acme", "uuid": workspace["uuid"]},
        }
        actor = {
            "type": "user",
            "display_name": "Ada Lovelace",
            "uuid": _braced(),
            "account_id": f"557058:{uuid.uuid4()}",
            "nickname": "ada",
            "links": {"html": {"href": "https://bitbucket.org/%7Bada%7D/"}},
        }
        stamp = iso_time(now, offset="+00:00")
        old, new = _sha(), _sha()
        commit = {
            "type": "commit",
            "hash": new,
            "date": stamp,
            "message": "Deduplicate deliveries on X-Request-UUID\n",
            "author": {"type": "author", "raw": "Ada Lovelace <ada@example.com>", "user": actor},
            "links": {"html": {"href": f"https://bitbucket.org/acme/webhooks-demo/commits/{new}"}},
        }
        push = {
            "push": {
                "changes": [
                    {
                        "old": {
                            "type": "branch",
                            "name": "main",
                            "target": {"type": "commit", "hash": old},
                        },
                        "new": {"type": "branch", "name": "main", "target": commit},
                        "created": False,
                        "closed": False,
                        "forced": False,
                        "truncated": False,
                        "commits": [commit],
                    }
                ]
            },
            "actor": actor,
            "repository": repository,
        }
        number = numeric_id(3)
        pull_request = {
            "type": "pullrequest",
            "id": number,
            "title": "Deduplicate deliveries",
            "description": "Stores X-Request-UUID and skips repeats.",
            "state": "OPEN",
            "author": actor,
            "source": {
                "branch": {"name": "feature/dedup"},
                "commit": {"type": "commit", "hash": new[:12]},
                "repository": {"type": "repository", "full_name": "acme/webhooks-demo"},
            },
            "destination": {
                "branch": {"name": "main"},
                "commit": {"type": "commit", "hash": old[:12]},
                "repository": {"type": "repository", "full_name": "acme/webhooks-demo"},
            },
            "merge_commit": None,
            "comment_count": 0,
            "task_count": 0,
            "close_source_branch": True,
            "created_on": stamp,
            "updated_on": stamp,
            "reason": "",
            "links": {
                "html": {"href": f"https://bitbucket.org/acme/webhooks-demo/pull-requests/{number}"}
            },
        }
        opened = iso_time(now - 7200, offset="+00:00")
        merged = {
            **pull_request,
            "state": "MERGED",
            "merge_commit": {"type": "commit", "hash": _sha()[:12]},
            "closed_by": actor,
            "created_on": opened,
            "updated_on": stamp,
        }
        commented = {**pull_request, "comment_count": 1, "created_on": opened, "updated_on": stamp}
        comment = {
            "type": "pullrequest_comment",
            "id": numeric_id(9),
            "content": {"type": "rendered", "raw": "Looks good.", "markup": "markdown"},
            "user": actor,
            "created_on": stamp,
            "updated_on": stamp,
            "deleted": False,
        }
        common = {"actor": actor, "repository": repository}
        return {
            "repo:push": json_bytes(push),
            "pullrequest:created": json_bytes({"pullrequest": pull_request, **common}),
            "pullrequest:fulfilled": json_bytes({"pullrequest": merged, **common}),
            "pullrequest:comment_created": json_bytes(
                {"comment": comment, "pullrequest": commented, **common}
            ),
        }


def _braced() -> str:
    return "{" + str(uuid.uuid4()) + "}"


def _sha() -> str:
    return hashlib.sha1(_random.token_bytes(16), usedforsecurity=False).hexdigest()


def build(settings: SourceSettings) -> BitbucketSource:
    """Build a Bitbucket source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    no_tolerance(settings, "Bitbucket signs no timestamp; replays are caught by X-Request-UUID")
    rules = build_rules(
        settings,
        dedup=(f"header:{REQUEST_HEADER}", "header:X-Request-Id"),
        type=(f"header:{EVENT_HEADER}",),
        ordering_key=("body:repository.uuid",),
    )
    return BitbucketSource(settings.name, rules, secrets=require_secrets(settings))


PROVIDER = ProviderSpec(
    "bitbucket",
    "Bitbucket: X-Hub-Signature sha256= (HMAC-SHA256 of the body), X-Request-UUID, X-Event-Key",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body, sha256= prefix",
        headers="X-Hub-Signature, X-Request-UUID, X-Event-Key, X-Hook-UUID",
        dedup_key="X-Request-UUID header (X-Request-Id on Data Center)",
        ordering_key="body repository.uuid",
        retries="5xx answers resent up to 2 more times; 10 s to answer",
        credential="the webhook's secret",
    ),
)
