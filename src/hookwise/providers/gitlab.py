"""Provider ``gitlab``: GitLab webhooks, by secret token or by signing token.

GitLab authenticates a delivery one of two ways, and hookwise decides per request:

- **Signed** (a ``webhook-signature`` header is present): GitLab's signing token
  follows Standard Webhooks ``v1``: HMAC-SHA256, base64, of
  ``{webhook-id}.{webhook-timestamp}.{raw body}``, keyed with the base64 after
  ``whsec_``. The body, id and time are protected; the tolerance is two-sided.
- **Secret token** (no signature header): GitLab sends the configured secret token
  as is in ``X-Gitlab-Token``; it is compared in constant time. **A token proves
  only that the sender knows it: it does not protect the body (anyone who sees one
  request can send any body with it), and a captured request can be replayed for
  ever.** Prefer the signing token where your GitLab offers it; deduplication is
  then the only defence against replays.

``secrets`` holds both kinds: values starting with ``whsec_`` are signing tokens,
any other value is a secret token. A source with signing tokens only refuses
unsigned requests, so a stripped signature can't downgrade a request to token mode.

Dedup key: ``Idempotency-Key`` (GitLab 17.4+, stable across resends), else
``webhook-id`` (the same value), else ``X-Gitlab-Event-UUID``. Type: the body's
``object_kind`` (``push``, ``merge_request``, ``pipeline``...), else its
``event_name`` (system and member hooks), else the ``X-Gitlab-Event`` header
(``Push Hook``). Ordering key: the object an event is about, namespaced by kind
because GitLab's ids are per table: ``merge_request:<object_attributes.id>`` (the
same for issues, notes, pipelines...), ``push:<project_id>:<ref>`` for pushes (one
branch's pushes are ordered), ``build:<build_id>``, ``deployment:<deployment_id>``,
``release:<id>``. Time: ``object_attributes.updated_at`` (else its ``finished_at``
or ``created_at``; deployments: ``status_changed_at``). Settings override each.

Checked against GitLab's webhook documentation (delivery headers, ``X-Gitlab-Token``,
``Idempotency-Key``, failing-webhook auto-disable) and merge request 230944
(signing token: Standard Webhooks headers, ``webhook-id`` equal to
``Idempotency-Key``).
"""

from __future__ import annotations

import json
import logging
import secrets as _random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from hookwise.config import SourceSettings
from hookwise.errors import ConfigError, VerificationError
from hookwise.providers._base import (
    SCHEME_FIELDS,
    UNKNOWN_TYPE,
    Description,
    Extraction,
    Inbound,
    ProviderInfo,
    ProviderSpec,
    Source,
    body_digest,
    build_extraction,
    check_options,
    check_tolerance,
    pick_secret,
    reject_fields,
    require_secrets,
)
from hookwise.providers._extract import (
    NOT_JSON,
    extract,
    lookup,
    parse_body,
    parse_body_fast,
    to_timestamp,
)
from hookwise.providers.standard import literal_key_hint
from hookwise.signatures import standard
from hookwise.signatures._common import constant_time_equal

__all__ = ["EXAMPLE_SETTINGS", "PROVIDER", "GitlabSource", "build"]

log = logging.getLogger("hookwise.diagnose")

TOKEN_HEADER = "x-gitlab-token"  # noqa: S105 - a header name, not a token
EVENT_HEADER = "x-gitlab-event"
EVENT_UUID_HEADER = "x-gitlab-event-uuid"
IDEMPOTENCY_HEADER = "idempotency-key"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

EVENT_NAMES: Mapping[str, str] = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "issue": "Issue Hook",
    "note": "Note Hook",
    "merge_request": "Merge Request Hook",
    "wiki_page": "Wiki Page Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",
    "deployment": "Deployment Hook",
    "release": "Release Hook",
    "feature_flag": "Feature Flag Hook",
    "emoji": "Emoji Hook",
}
"""``object_kind`` -> the ``X-Gitlab-Event`` header GitLab sends with it."""

# Prefixes of GitLab credentials that are not webhook tokens, and what they are.
_GITLAB_CREDENTIALS = (
    ("glpat-", "a GitLab personal access token"),
    ("gldt-", "a GitLab deploy token"),
    ("glptt-", "a GitLab pipeline trigger token"),
    ("gloas-", "a GitLab OAuth application secret"),
)
_DEDUP_HEADERS = (IDEMPOTENCY_HEADER, ID_HEADER, EVENT_UUID_HEADER)
_TOP_LEVEL_OBJECTS = (("build", "build_id"), ("deployment", "deployment_id"), ("release", "id"))
_TIME_PATHS = (
    ("object_attributes", "updated_at"),
    ("object_attributes", "finished_at"),
    ("object_attributes", "created_at"),
    ("status_changed_at",),
)


class GitlabSource(Source):
    """A GitLab source: signed deliveries, or deliveries with a secret token.

    >>> source = build(SourceSettings(name="gitlab", provider="gitlab",
    ...                               secrets=("env:GITLAB_TOKEN",)))
    >>> source.verify(body, {"x-gitlab-token": token}, now=clock.now())
    """

    provider = "gitlab"

    def __init__(
        self,
        name: str,
        extraction: Extraction,
        *,
        secrets: tuple[str, ...],
        tolerance: float,
    ) -> None:
        """``secrets`` in order, of both kinds; a ``ValueError`` for a bad ``whsec_`` one."""
        signing = tuple(secret.strip() for secret in secrets if _is_signing_token(secret))
        tokens = tuple(secret for secret in secrets if not _is_signing_token(secret))
        redact = list(tokens)
        for secret in signing:
            redact += [secret, secret.removeprefix(standard.SECRET_PREFIX)]
        super().__init__(
            name,
            extraction,
            secret_values=tuple(dict.fromkeys(redact)),
            secret_headers=(TOKEN_HEADER,),
        )
        self._secrets = secrets
        self._signing_secrets = signing
        self._signing_keys = tuple(standard.decode_secret(secret) for secret in signing)
        self._tokens = tokens
        self._verifier = standard.Verifier(self._signing_keys)
        self._tolerance = tolerance
        # For sign_headers: each secret in order, as (HMAC key, None) or (None, token).
        self._signers = tuple(
            (standard.decode_secret(secret), None) if _is_signing_token(secret) else (None, secret)
            for secret in secrets
        )

    def verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if SIGNATURE_HEADER in headers:
            if not self._signing_keys:
                raise VerificationError(
                    "no_matching_signature",
                    f"the request is signed ({SIGNATURE_HEADER}) but the source has no "
                    "whsec_ signing token",
                )
            self._verify_signature(body, headers, now, self._verifier)
            return
        if not self._tokens:
            raise VerificationError(
                "missing_header",
                f"the {SIGNATURE_HEADER} header is missing; the source has only signing "
                "tokens, so unsigned requests are refused",
            )
        token = headers.get(TOKEN_HEADER)
        if not token:
            raise VerificationError(
                "missing_header", "the X-Gitlab-Token header is missing or empty"
            )
        matched = False
        for expected in self._tokens:  # every token is compared: no early exit to time
            matched |= constant_time_equal(expected, token)
        if not matched:
            raise VerificationError(
                "bad_token",
                f"X-Gitlab-Token matches none of the {len(self._tokens)} secret token(s)",
            )

    def _verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        now: float,
        verifier: standard.Verifier,
    ) -> None:
        verifier.verify(
            msg_id=headers.get(ID_HEADER),
            timestamp_header=headers.get(TIMESTAMP_HEADER),
            signature_header=headers.get(SIGNATURE_HEADER),
            body=body,
            now=now,
            tolerance=self._tolerance,
        )

    def describe(self, body: bytes, headers: Mapping[str, str], now: float) -> Description:
        rules = self.extraction
        document: object = NOT_JSON
        if rules.needs_body or None in (rules.type, rules.ordering_key, rules.occurred_at):
            document, inexact = parse_body_fast(body)
            if inexact and _has_float(document):
                document = parse_body(body)  # that float may have been a long integer
        if rules.dedup is not None:
            dedup_key = extract(rules.dedup, headers, document)
        else:
            dedup_key = next(
                (value for name in _DEDUP_HEADERS if (value := headers.get(name, "").strip())),
                None,
            )
        if rules.type is not None:
            event_type = extract(rules.type, headers, document)
        else:
            event_type = (
                _text(lookup(("object_kind",), document))
                or _text(lookup(("event_name",), document))
                or headers.get(EVENT_HEADER, "").strip()
                or None
            )
        if rules.ordering_key is not None:
            ordering_key = extract(rules.ordering_key, headers, document)
        else:
            ordering_key = _ordering_key(document)
        if rules.occurred_at is not None:
            moment = extract(rules.occurred_at, headers, document)
        else:
            moment = next(
                (text for path in _TIME_PATHS if (text := _text(lookup(path, document)))), None
            )
        return Description(
            dedup_key=dedup_key or body_digest(body),
            type=event_type or UNKNOWN_TYPE,
            ordering_key=ordering_key,
            occurred_at=_gitlab_time(moment) if moment is not None else None,
        )

    def diagnose(self, request: Inbound, now: float, error: Exception) -> tuple[str, ...]:
        hints = list(super().diagnose(request, now, error))
        headers = request.headers
        try:
            if SIGNATURE_HEADER in headers:
                hints += self._signature_hints(request, now)
            else:
                hints += self._token_hints(headers)
        except Exception:  # a diagnosis must never turn into a second failure
            log.debug("diagnosing a GitLab rejection failed", exc_info=True)
        return tuple(hints)

    def _signature_hints(self, request: Inbound, now: float) -> list[str]:
        if not self._signing_keys:
            return [
                "GitLab signed this request (webhook-signature) but the source has only "
                "secret tokens: add the webhook's whsec_ signing token to secrets"
            ]
        hint = literal_key_hint(
            request,
            now,
            self._signing_secrets,
            verify=lambda verifier, headers: self._verify_signature(
                request.body, headers, now, verifier
            ),
        )
        return [hint] if hint else []

    def _token_hints(self, headers: Mapping[str, str]) -> list[str]:
        token = headers.get(TOKEN_HEADER)
        if not token:
            if not self._tokens:
                return [
                    "the request has neither a signature nor a token: give the GitLab "
                    "webhook a signing token (or a secret token, and put it in secrets)"
                ]
            return [
                "the request has no X-Gitlab-Token: set the webhook's secret token in "
                "GitLab to the one in this source's secrets"
            ]
        hints = [
            f"secret number {position} looks like {what}, not a webhook secret token: "
            "put the token set in the webhook's settings in GitLab in secrets"
            for position, secret in enumerate(self._secrets, start=1)
            for prefix, what in _GITLAB_CREDENTIALS
            if secret.strip().startswith(prefix)
        ]
        if any(constant_time_equal(secret, token) for secret in self._signing_secrets):
            hints.append(
                "X-Gitlab-Token carries one of this source's whsec_ signing tokens: it was "
                "entered as the webhook's secret token, so GitLab sends it in plain text; "
                "enter it as the signing token instead (and rotate it, it has been exposed)"
            )
        elif not self._tokens:
            hints.append(
                "GitLab sent a secret token and no signature: the webhook has no signing "
                "token; add one in GitLab's webhook settings, or put the secret token in "
                "secrets"
            )
        elif any(constant_time_equal(expected.strip(), token.strip()) for expected in self._tokens):
            hints.append(
                "X-Gitlab-Token matches a secret token once spaces around it are removed: "
                "check the secret for stray spaces or a trailing newline"
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
        key, token = pick_secret(self._signers, secret_index)
        delivery = delivery_id or str(uuid.uuid4())
        headers = {
            EVENT_HEADER: _event_header(body),
            "x-gitlab-instance": "https://gitlab.example.com",
            "x-gitlab-webhook-uuid": str(uuid.uuid4()),
            EVENT_UUID_HEADER: str(uuid.uuid4()),
            IDEMPOTENCY_HEADER: delivery,
        }
        if token is not None:
            headers[TOKEN_HEADER] = token
        if key is not None:
            timestamp = int(now)
            headers[ID_HEADER] = delivery
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = standard.sign(key, delivery, timestamp, body)
        return headers

    def samples(self, now: float) -> dict[str, bytes]:
        return _samples(now)


def _is_signing_token(secret: str) -> bool:
    return secret.strip().startswith(standard.SECRET_PREFIX)


def _text(node: object) -> str | None:
    if isinstance(node, str):
        return node.strip() or None
    if isinstance(node, int) and not isinstance(node, bool):
        return str(node)
    return None


def _has_float(node: object) -> bool:
    if isinstance(node, float):
        return True
    if isinstance(node, dict):
        return any(_has_float(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_float(value) for value in node)
    return False


def _ordering_key(document: object) -> str | None:
    kind = _text(lookup(("object_kind",), document))
    if kind is None:
        return None
    object_id = _text(lookup(("object_attributes", "id"), document))
    if object_id is not None:
        return f"{kind}:{object_id}"
    if kind in ("push", "tag_push"):
        project = _text(lookup(("project_id",), document)) or _text(
            lookup(("project", "id"), document)
        )
        ref = _text(lookup(("ref",), document))
        if project is not None and ref is not None:
            return f"{kind}:{project}:{ref}"
        return None
    for top_kind, field in _TOP_LEVEL_OBJECTS:
        if kind == top_kind:
            top_id = _text(lookup((field,), document))
            return f"{kind}:{top_id}" if top_id is not None else None
    return None


def _gitlab_time(text: str) -> float | None:
    """GitLab writes times both as ISO 8601 and as ``2016-08-12 15:23:28 UTC``."""
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    return to_timestamp(text)


def _samples(now: float) -> dict[str, bytes]:
    """A push, a merge request, an issue and a pipeline, shaped as GitLab sends them."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    project_id = 1000 + _random.randbelow(9000)
    project = {
        "id": project_id,
        "name": "Diaspora",
        "description": "",
        "web_url": "https://gitlab.example.com/mike/diaspora",
        "avatar_url": None,
        "git_ssh_url": "git@gitlab.example.com:mike/diaspora.git",
        "git_http_url": "https://gitlab.example.com/mike/diaspora.git",
        "namespace": "Mike",
        "visibility_level": 0,
        "path_with_namespace": "mike/diaspora",
        "default_branch": "main",
    }
    user = {
        "id": 4,
        "name": "John Smith",
        "username": "jsmith",
        "avatar_url": "https://gitlab.example.com/uploads/-/system/user/avatar/4/avatar.png",
        "email": "[REDACTED]",
    }
    repository = {
        "name": "Diaspora",
        "url": "git@gitlab.example.com:mike/diaspora.git",
        "description": "",
        "homepage": "https://gitlab.example.com/mike/diaspora",
    }
    before, after = _random.token_hex(20), _random.token_hex(20)
    push = {
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": after,
        "ref": "refs/heads/main",
        "ref_protected": True,
        "checkout_sha": after,
        "message": None,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "user_email": "",
        "user_avatar": user["avatar_url"],
        "project_id": project_id,
        "project": project,
        "commits": [
            {
                "id": after,
                "message": "Fix the build on main\n",
                "title": "Fix the build on main",
                "timestamp": moment.isoformat(),
                "url": f"https://gitlab.example.com/mike/diaspora/-/commit/{after}",
                "author": {"name": "John Smith", "email": "jsmith@example.com"},
                "added": [],
                "modified": ["README.md"],
                "removed": [],
            }
        ],
        "total_commits_count": 1,
        "push_options": {},
        "repository": repository,
    }
    merge_request_id = 100000 + _random.randbelow(900000)
    merge_request = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": user,
        "project": project,
        "object_attributes": {
            "id": merge_request_id,
            "iid": 1 + _random.randbelow(500),
            "target_branch": "main",
            "source_branch": "fix-build",
            "source_project_id": project_id,
            "author_id": 4,
            "title": "Fix the build on main",
            "created_at": iso,
            "updated_at": iso,
            "state": "opened",
            "merge_status": "unchecked",
            "target_project_id": project_id,
            "description": "",
            "url": f"https://gitlab.example.com/mike/diaspora/-/merge_requests/{merge_request_id}",
            "draft": False,
            "action": "open",
        },
        "labels": [],
        "changes": {},
        "repository": repository,
    }
    issue_id = 100000 + _random.randbelow(900000)
    issue = {
        "object_kind": "issue",
        "event_type": "issue",
        "user": user,
        "project": project,
        "object_attributes": {
            "id": issue_id,
            "iid": 1 + _random.randbelow(500),
            "title": "The build fails on main",
            "description": "Since this morning's push.",
            "state": "opened",
            "created_at": utc,
            "updated_at": utc,
            "author_id": 4,
            "project_id": project_id,
            "confidential": False,
            "url": f"https://gitlab.example.com/mike/diaspora/-/issues/{issue_id}",
            "action": "open",
        },
        "labels": [],
        "changes": {},
        "repository": repository,
    }
    pipeline_id = 1_000_000 + _random.randbelow(9_000_000)
    pipeline: dict[str, object] = {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pipeline_id,
            "iid": 1 + _random.randbelow(5000),
            "name": None,
            "ref": "main",
            "tag": False,
            "sha": after,
            "before_sha": before,
            "source": "push",
            "status": "success",
            "detailed_status": "passed",
            "stages": ["build", "test"],
            "created_at": utc,
            "finished_at": utc,
            "duration": 63,
            "queued_duration": 2,
            "url": f"https://gitlab.example.com/mike/diaspora/-/pipelines/{pipeline_id}",
        },
        "merge_request": None,
        "user": user,
        "project": project,
        "commit": {
            "id": after,
            "message": "Fix the build on main\n",
            "title": "Fix the build on main",
            "timestamp": moment.isoformat(),
            "url": f"https://gitlab.example.com/mike/diaspora/-/commit/{after}",
            "author": {"name": "John Smith", "email": "jsmith@example.com"},
        },
        "builds": [],
    }
    events = {"push": push, "merge_request": merge_request, "issue": issue, "pipeline": pipeline}
    return {kind: json.dumps(event).encode() for kind, event in events.items()}


def _event_header(body: bytes) -> str:
    document = parse_body(body)
    kind = _text(lookup(("object_kind",), document))
    if kind is not None and kind in EVENT_NAMES:
        return EVENT_NAMES[kind]
    return "System Hook" if lookup(("event_name",), document) is not None else "Push Hook"


def build(settings: SourceSettings) -> GitlabSource:
    """Build a GitLab source; :class:`ConfigError` when a setting is wrong."""
    reject_fields(settings, SCHEME_FIELDS)
    check_options(settings, ())
    secrets = require_secrets(settings)
    for position, secret in enumerate(secrets, start=1):
        if _is_signing_token(secret):
            try:
                standard.decode_secret(secret)
            except ValueError as exc:
                raise ConfigError(
                    f"secret number {position}: {exc}",
                    key=f"sources.{settings.name}.secrets",
                    fix="copy the signing token again from the webhook's settings in GitLab",
                ) from None
    return GitlabSource(
        settings.name,
        build_extraction(settings, dedup=None, type=None),
        secrets=secrets,
        tolerance=check_tolerance(settings),
    )


PROVIDER = ProviderSpec(
    "gitlab",
    "GitLab: signing token (webhook-signature, Standard Webhooks v1) or secret token "
    "(X-Gitlab-Token)",
    build,
    info=ProviderInfo(
        scheme="signing token: HMAC-SHA256 base64 of {id}.{timestamp}.{body} (Standard "
        "Webhooks v1), ±tolerance; secret token: X-Gitlab-Token compared as is, which "
        "protects neither the body nor against replays",
        headers="webhook-id, webhook-timestamp, webhook-signature, or X-Gitlab-Token; "
        "X-Gitlab-Event, X-Gitlab-Event-UUID, Idempotency-Key",
        dedup_key="Idempotency-Key (= webhook-id), else X-Gitlab-Event-UUID",
        ordering_key="kind:object_attributes.id; pushes kind:project_id:ref",
        retries="no automatic redelivery (manual resend); 10 s timeout; 4 failures in a "
        "row disable the hook for a while (up to 24 h), 40 for good",
        credential="the webhook's whsec_ signing token, and/or its secret token",
        signed_headers=(ID_HEADER, TIMESTAMP_HEADER),
    ),
)

EXAMPLE_SETTINGS: dict[str, object] = {
    "secrets": ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "example-gitlab-secret-token"),
}
"""Settings the generic provider tests build this provider with: a signing token (what
they sign with) and a secret token."""
