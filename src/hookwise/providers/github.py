"""Provider ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

>>> build(SourceSettings(name="github", provider="github", secrets=("env:GITHUB_SECRET",)))

The key is the webhook's secret as typed into GitHub. GitHub also sends the legacy
``X-Hub-Signature: sha1=...``; it is accepted only with the option ``allow_sha1 = true``,
and only when ``X-Hub-Signature-256`` is absent (a SHA-256 signature that fails is never
retried as SHA-1).

- Dedup key: the ``X-GitHub-Delivery`` header, kept when a delivery is redelivered.
  GitHub signs no timestamp, so a captured delivery stays valid; replays are caught by
  this key (within the store's retention) and by nothing else.
- Type: the ``X-GitHub-Event`` header, plus the body's ``action`` when it has one:
  ``issues.opened``, ``pull_request.closed``, ``push``, ``ping``. Handler patterns like
  ``issues.*`` then pick the actions of one event.
- Ordering key: the body's ``repository.id`` (events about one repository in order);
  set ``ordering_key = "issue.id"`` or ``"pull_request.id"`` for finer keys.
- Occurred at: none by default (GitHub events carry no common time field).

Checked against GitHub's "Validating webhook deliveries" and "Handling failed webhook
deliveries" pages: HMAC-SHA256 of the raw body keyed by the secret, hex with the
``sha256=`` prefix, official vector in the tests; no automatic retries (redeliver by hand
or API within 3 days), 10 s to answer.
"""

from __future__ import annotations

import hashlib
import secrets as _random
from collections.abc import Mapping

from hookwise.config import SourceSettings
from hookwise.providers._base import (
    SCHEME_FIELDS,
    Inbound,
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
    flag_option,
    hub_hints,
    iso_time,
    json_bytes,
    new_uuid,
    no_tolerance,
    numeric_id,
)

__all__ = ["EXAMPLE_SETTINGS", "OPTIONS", "PROVIDER", "GitHubSource", "build", "event_name"]

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_HEADER = "X-Hub-Signature"
DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"

OPTIONS = ("allow_sha1",)
"""``allow_sha1``: accept ``X-Hub-Signature: sha1=`` when no SHA-256 signature is sent."""

EXAMPLE_SETTINGS: dict[str, object] = {"secrets": ("It's a Secret to Everybody",)}
"""Settings that verify the provider's samples (the secret of GitHub's own example)."""

# Which event a payload is, from the keys at its top: GitHub names the object an event
# is about at the top of its payload. First match wins, so the specific come first.
_EVENTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("zen", "hook_id"), "ping"),
    (("pusher",), "push"),
    (("pull_request", "review"), "pull_request_review"),
    (("pull_request", "comment"), "pull_request_review_comment"),
    (("issue", "comment"), "issue_comment"),
    (("discussion", "comment"), "discussion_comment"),
    (("pull_request",), "pull_request"),
    (("issue",), "issues"),
    (("discussion",), "discussion"),
    (("release",), "release"),
    (("workflow_run",), "workflow_run"),
    (("workflow_job",), "workflow_job"),
    (("check_run",), "check_run"),
    (("check_suite",), "check_suite"),
    (("deployment_status",), "deployment_status"),
    (("deployment",), "deployment"),
    (("forkee",), "fork"),
    (("starred_at",), "star"),
    (("ref_type", "master_branch"), "create"),
    (("ref_type",), "delete"),
)


def event_name(document: object) -> str | None:
    """The ``X-GitHub-Event`` a payload goes with, told from its shape, or None.

    >>> event_name({"action": "opened", "issue": {}, "repository": {}})
    'issues'

    What :meth:`GitHubSource.sign_headers` sends, since a body alone does not say it.
    """
    if not isinstance(document, dict):
        return None
    for keys, event in _EVENTS:
        if all(key in document for key in keys):
            return event
    return None


class GitHubSource(HubSource):
    """A GitHub webhook source.

    >>> source = build(SourceSettings(name="gh", provider="github",
    ...                               secrets=("It's a Secret to Everybody",)))
    >>> body = source.samples(now=1700000000)["push"]
    >>> source.verify(body, source.sign_headers(body, now=1700000000), now=1700000000)
    """

    provider = "github"
    key_hint = (
        "the key is the webhook's Secret field (repository or organization Settings → "
        "Webhooks, or the GitHub App's webhook secret), not a token or the App's client "
        "secret; after changing it, deliveries made before still carry the old signature"
    )
    missing_hint = (
        "GitHub signs deliveries only when the webhook has a secret: set one under "
        "Settings → Webhooks → Secret and put the same value in the source's secrets"
    )

    def __init__(
        self,
        name: str,
        rules: Rules,
        *,
        secrets: tuple[str, ...],
        allow_sha1: bool,
    ) -> None:
        keys = tuple(secret.encode("utf-8") for secret in secrets)
        super().__init__(
            name,
            rules,
            signature=BodySignature(SIGNATURE_HEADER, "sha256", "hex", "sha256=", keys),
            secrets=secrets,
        )
        self.legacy = BodySignature(LEGACY_HEADER, "sha1", "hex", "sha1=", keys)
        self.allow_sha1 = allow_sha1

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if (
            self.allow_sha1
            and not headers.get(self.signature.header, "").strip()
            and headers.get(self.legacy.header, "").strip()
        ):
            self.legacy.verify(headers, body)
            return
        self.signature.verify(headers, body)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float,
        secret_index: int = 0,
        delivery_id: str | None = None,
    ) -> dict[str, str]:
        """GitHub's headers for ``body``; ``X-GitHub-Event`` is told from the payload's
        shape (see :func:`event_name`) and left out when it can't be."""
        headers = {
            DELIVERY_HEADER.lower(): delivery_id or new_uuid(),
            SIGNATURE_HEADER.lower(): self.signature.sign(secret_index, body),
            LEGACY_HEADER.lower(): self.legacy.sign(secret_index, body),
        }
        event = event_name(parse_body(body))
        if event is not None:
            headers[EVENT_HEADER.lower()] = event
        return headers

    def provider_hints(self, request: Inbound, now: float, error: Exception) -> list[str]:
        headers = request.headers
        legacy = headers.get(self.legacy.header, "").strip()
        if not headers.get(self.signature.header, "").strip() and legacy.startswith("sha1="):
            matches = any(
                self.legacy.matches(secret.encode("utf-8"), legacy, request.body)
                for secret in self.signing_secrets
            )
            verdict = (
                "it matches the source's secret"
                if matches
                else "it does not match the source's secret either"
            )
            return [
                f"only the legacy {LEGACY_HEADER} (SHA-1) was sent, without "
                f"{SIGNATURE_HEADER}; {verdict}. GitHub sends both; a sender that sends only "
                "SHA-1 (an old GitHub Enterprise Server, a relay that drops headers) needs "
                "allow_sha1 = true in the source's options"
            ]
        return hub_hints(self, self.signature, request, error)

    def samples(self, now: float) -> dict[str, bytes]:
        """A ping, a push, an opened issue and pull request, and an issue comment."""
        org = {
            "login": "octo-org",
            "id": numeric_id(8),
            "node_id": "O_kgDO" + _random.token_urlsafe(6),
            "type": "Organization",
            "html_url": "https://github.com/octo-org",
            "site_admin": False,
        }
        sender = {
            "login": "octocat",
            "id": 583231,
            "node_id": "MDQ6VXNlcjU4MzIzMQ==",
            "type": "User",
            "html_url": "https://github.com/octocat",
            "site_admin": False,
        }
        repo_id = numeric_id(9)
        created = iso_time(now - 86400 * 400, millis=False)
        repository: dict[str, object] = {
            "id": repo_id,
            "node_id": "R_kgDO" + _random.token_urlsafe(6),
            "name": "hello-world",
            "full_name": "octo-org/hello-world",
            "private": False,
            "owner": org,
            "html_url": "https://github.com/octo-org/hello-world",
            "description": "A place to try webhooks",
            "fork": False,
            "url": "https://api.github.com/repos/octo-org/hello-world",
            "created_at": created,
            "updated_at": iso_time(now - 3600, millis=False),
            "pushed_at": iso_time(now - 60, millis=False),
            "default_branch": "main",
            "visibility": "public",
        }
        stamp = iso_time(now, millis=False)
        before, after = _sha(), _sha()
        commit = {
            "id": after,
            "tree_id": _sha(),
            "distinct": True,
            "message": "Retry deliveries with full jitter",
            "timestamp": stamp,
            "url": f"https://github.com/octo-org/hello-world/commit/{after}",
            "author": {
                "name": "Mona Octocat",
                "email": "octocat@github.com",
                "username": "octocat",
            },
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": [],
            "removed": [],
            "modified": ["src/retry.py"],
        }
        # Push payloads write the repository's times as UNIX seconds, the others as text.
        push_repository = {**repository, "created_at": int(now) - 86400 * 400}
        push_repository["pushed_at"] = int(now)
        push = {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "repository": push_repository,
            "pusher": {"name": "octocat", "email": "octocat@github.com"},
            "organization": org,
            "sender": sender,
            "created": False,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": (
                f"https://github.com/octo-org/hello-world/compare/{before[:12]}...{after[:12]}"
            ),
            "commits": [commit],
            "head_commit": commit,
        }
        number = numeric_id(3)
        issue = {
            "url": f"https://api.github.com/repos/octo-org/hello-world/issues/{number}",
            "html_url": f"https://github.com/octo-org/hello-world/issues/{number}",
            "id": numeric_id(10),
            "node_id": "I_kwDO" + _random.token_urlsafe(9),
            "number": number,
            "title": "Deliveries retried after a timeout run twice",
            "user": sender,
            "labels": [],
            "state": "open",
            "locked": False,
            "assignee": None,
            "assignees": [],
            "comments": 0,
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": None,
            "author_association": "MEMBER",
            "body": "Seen twice in the logs for the same X-GitHub-Delivery.",
        }
        pr_number = number + 1
        pull_request = {
            "url": f"https://api.github.com/repos/octo-org/hello-world/pulls/{pr_number}",
            "id": numeric_id(10),
            "node_id": "PR_kwDO" + _random.token_urlsafe(9),
            "html_url": f"https://github.com/octo-org/hello-world/pull/{pr_number}",
            "number": pr_number,
            "state": "open",
            "locked": False,
            "title": "Deduplicate deliveries on X-GitHub-Delivery",
            "user": sender,
            "body": f"Fixes #{number}",
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": None,
            "merged_at": None,
            "draft": False,
            "head": {"label": "octocat:dedup", "ref": "dedup", "sha": after},
            "base": {"label": "octo-org:main", "ref": "main", "sha": before},
            "merged": False,
            "commits": 1,
            "additions": 24,
            "deletions": 3,
            "changed_files": 2,
        }
        comment = {
            "url": f"https://api.github.com/repos/octo-org/hello-world/issues/comments/{numeric_id(10)}",
            "id": numeric_id(10),
            "node_id": "IC_kwDO" + _random.token_urlsafe(9),
            "user": sender,
            "created_at": stamp,
            "updated_at": stamp,
            "author_association": "MEMBER",
            "body": "Reproduced: the handler ran twice.",
        }
        hook_id = numeric_id(9)
        ping = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook_id,
            "hook": {
                "type": "Repository",
                "id": hook_id,
                "name": "web",
                "active": True,
                "events": ["issue_comment", "issues", "pull_request", "push"],
                "config": {
                    "content_type": "json",
                    "insecure_ssl": "0",
                    "url": "https://hooks.example.com/hooks/github",
                },
                "updated_at": stamp,
                "created_at": stamp,
            },
            "repository": repository,
            "sender": sender,
        }
        common = {"repository": repository, "organization": org, "sender": sender}
        return {
            "ping": json_bytes(ping),
            "push": json_bytes(push),
            "issues.opened": json_bytes({"action": "opened", "issue": issue, **common}),
            "pull_request.opened": json_bytes(
                {"action": "opened", "number": pr_number, "pull_request": pull_request, **common}
            ),
            "issue_comment.created": json_bytes(
                {"action": "created", "issue": issue, "comment": comment, **common}
            ),
        }


def _sha() -> str:
    return hashlib.sha1(_random.token_bytes(16), usedforsecurity=False).hexdigest()


def build(settings: SourceSettings) -> GitHubSource:
    """Build a GitHub source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, OPTIONS)
    no_tolerance(settings, "GitHub signs no timestamp; replays are caught by X-GitHub-Delivery")
    secrets = require_secrets(settings)
    rules = build_rules(
        settings,
        dedup=(f"header:{DELIVERY_HEADER}",),
        type=(f"header:{EVENT_HEADER}",),
        action=("body:action",),
        ordering_key=("body:repository.id",),
    )
    return GitHubSource(
        settings.name,
        rules,
        secrets=secrets,
        allow_sha1=flag_option(settings, "allow_sha1"),
    )


PROVIDER = ProviderSpec(
    "github",
    "GitHub: X-Hub-Signature-256 (HMAC-SHA256 of the body), X-GitHub-Delivery, X-GitHub-Event",
    build,
    info=ProviderInfo(
        scheme="HMAC-SHA256 hex of the body, sha256= prefix (legacy SHA-1 with allow_sha1)",
        headers="X-Hub-Signature-256, X-GitHub-Delivery, X-GitHub-Event",
        dedup_key="X-GitHub-Delivery header (kept on redelivery)",
        ordering_key="body repository.id",
        handshake="none (the ping event is stored with type ping)",
        retries="none automatic; manual redelivery within 3 days; 10 s to answer",
        credential="the webhook's secret",
    ),
)
