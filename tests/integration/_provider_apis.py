"""Fake provider APIs on loopback for reconciliation tests: the provider's own record of
the webhook deliveries it made, as the real APIs list it.

- :class:`FakeStripe` serves ``GET /v1/events``: ``{"object": "list", "url", "has_more",
  "data"}``, newest first, paged with ``starting_after`` and ``limit`` (1 to 100,
  default 10); ``delivery_success=false`` keeps the events still pending or failed at
  some endpoint. Requests need ``Authorization: Bearer <api_key>``.
- :class:`FakeGitHub` serves a repository webhook's deliveries:
  ``GET /repos/OWNER/REPO/hooks/ID/deliveries`` (a top-level list without
  ``request``/``response``, newest first, ``per_page`` up to 100, next page in a
  ``Link`` header with a ``cursor``) and ``GET .../deliveries/DELIVERY_ID`` (the whole
  record: ``request.headers``, ``request.payload``, ``response``).

Both "send" their events the way the provider does: signed with the webhook source's
own signing helpers and POSTed to a receiver, except the ones a test drops; what the
provider records about each attempt is what the test says happened.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx

from hookwise.providers import Source

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_EPOCH = 1_700_000_000
FAKE_GITHUB_TOKEN = "ghp_fake"


@dataclass
class Served:
    """One request as a fake API saw it."""

    path: str
    query: dict[str, list[str]]
    status: int


class _JsonAPI:
    """The ASGI plumbing the fakes share: JSON answers, a bearer token, a request log."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.log: list[Served] = []
        self.url = ""
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope["query_string"].decode("ascii"))
        extra: dict[str, str] = {}
        if headers.get("authorization") != f"Bearer {self.token}":
            status, document = 401, {"message": "Bad credentials"}
        else:
            with self._lock:
                status, document, extra = self.answer(scope["path"], query)
        with self._lock:
            self.log.append(Served(scope["path"], query, status))
        body = json.dumps(document).encode()
        out = {"content-type": "application/json", "content-length": str(len(body)), **extra}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


# -- Stripe ---------------------------------------------------------------------------------


@dataclass
class StripeEvent:
    document: dict[str, Any]
    pending: bool = False
    """Still pending or failed at some endpoint: listed with ``delivery_success=false``."""

    @property
    def id(self) -> str:
        event_id: str = self.document["id"]
        return event_id

    @property
    def body(self) -> bytes:
        """The bytes Stripe posts: the event object, pretty-printed."""
        return json.dumps(self.document, indent=2).encode()


class FakeStripe(_JsonAPI):
    """Stripe's events, in creation order; ``GET /v1/events`` lists them newest first."""

    def __init__(self, api_key: str = "sk_test_fake") -> None:
        super().__init__(api_key)
        self.events: list[StripeEvent] = []

    def create(self, event_type: str, object_id: str) -> StripeEvent:
        number = len(self.events)
        event = StripeEvent(
            {
                "id": "evt_" + secrets.token_hex(12),
                "object": "event",
                "api_version": "2024-06-20",
                "created": _EPOCH + number,
                "data": {"object": {"id": object_id, "object": "invoice", "n": number}},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )
        self.events.append(event)
        return event

    async def deliver(
        self, client: httpx.AsyncClient, source: Source, receiver_url: str, event: StripeEvent
    ) -> httpx.Response:
        """POST ``event`` to the receiver, signed as Stripe signs it."""
        body = event.body
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            **source.sign_headers(body, now=time.time()),
        }
        return await client.post(
            f"{receiver_url}/hooks/{source.name}", content=body, headers=headers
        )

    @property
    def list_requests(self) -> list[Served]:
        return [served for served in self.log if served.path == "/v1/events"]

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if path != "/v1/events":
            return 404, {"error": {"type": "invalid_request_error"}}, {}
        listed = list(reversed(self.events))
        if query.get("delivery_success") == ["false"]:
            listed = [event for event in listed if event.pending]
        elif query.get("delivery_success") == ["true"]:
            listed = [event for event in listed if not event.pending]
        limit = int(query.get("limit", ["10"])[0])
        if not 1 <= limit <= 100:
            return 400, {"error": {"message": "limit must be between 1 and 100"}}, {}
        after = query.get("starting_after")
        if after:
            ids = [event.id for event in listed]
            if after[0] not in ids:
                return 400, {"error": {"message": f"No such event: {after[0]}"}}, {}
            listed = listed[ids.index(after[0]) + 1 :]
        page = listed[:limit]
        document = {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(listed) > limit,
            "data": [event.document for event in page],
        }
        return 200, document, {"request-id": "req_" + secrets.token_hex(7)}


# -- GitHub ---------------------------------------------------------------------------------


@dataclass
class GitHubDelivery:
    """One delivery attempt as GitHub records it."""

    id: int
    guid: str
    event: str
    action: str | None
    status_code: int
    headers: dict[str, str]
    payload: dict[str, Any]
    redelivery: bool = False
    delivered_at: str = "2024-05-01T10:00:00Z"

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at,
            "redelivery": self.redelivery,
            "duration": 0.12,
            "status": "OK" if 200 <= self.status_code < 300 else "Bad Gateway",
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": None,
            "repository_id": 1296269,
            "throttled_at": None,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "url": "https://hooks.example.com/hooks/github",
            "request": {"headers": self.headers, "payload": self.payload},
            "response": {"headers": {"Content-Type": "application/json"}, "payload": ""},
        }


class FakeGitHub(_JsonAPI):
    """A repository webhook's deliveries at ``/repos/octo-org/hello-world/hooks/7/deliveries``."""

    def __init__(self, token: str = FAKE_GITHUB_TOKEN) -> None:
        super().__init__(token)
        self.hook_path = "/repos/octo-org/hello-world/hooks/7/deliveries"
        self.deliveries: list[GitHubDelivery] = []
        self.broken_details: set[int] = set()
        """Delivery ids whose detail answers 500 (an API failing half way)."""

    @property
    def deliveries_url(self) -> str:
        return self.url + self.hook_path

    @property
    def detail_requests(self) -> list[int]:
        prefix = self.hook_path + "/"
        return [int(s.path[len(prefix) :]) for s in self.log if s.path.startswith(prefix)]

    @property
    def list_requests(self) -> list[Served]:
        return [served for served in self.log if served.path == self.hook_path]

    def record(
        self,
        source: Source,
        payload: dict[str, Any],
        *,
        status_code: int,
        guid: str | None = None,
        redelivery: bool = False,
    ) -> tuple[GitHubDelivery, bytes]:
        """Record a delivery attempt (a new ``guid`` unless it redelivers one); returns it
        with the bytes GitHub posts."""
        body = json.dumps(payload).encode()
        guid = guid or _uuid()
        signed = source.sign_headers(body, now=time.time(), delivery_id=guid)
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/5d1a3e5",
            "X-GitHub-Delivery": signed["x-github-delivery"],
            "X-GitHub-Event": signed["x-github-event"],
            "X-GitHub-Hook-ID": "7",
            "X-GitHub-Hook-Installation-Target-ID": "1296269",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-Hub-Signature": signed["x-hub-signature"],
            "X-Hub-Signature-256": signed["x-hub-signature-256"],
        }
        action = payload.get("action")
        delivery = GitHubDelivery(
            id=90_000_000 + len(self.deliveries) + 1,
            guid=guid,
            event=headers["X-GitHub-Event"],
            action=action if isinstance(action, str) else None,
            status_code=status_code,
            headers=headers,
            payload=payload,
            redelivery=redelivery,
        )
        with self._lock:
            self.deliveries.append(delivery)
        return delivery, body

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if path.startswith(self.hook_path + "/"):
            wanted = path[len(self.hook_path) + 1 :]
            for delivery in self.deliveries:
                if str(delivery.id) == wanted:
                    if delivery.id in self.broken_details:
                        return 500, {"message": "Server Error"}, {}
                    return 200, delivery.detail(), {}
            return 404, {"message": "Not Found"}, {}
        if path != self.hook_path:
            return 404, {"message": "Not Found"}, {}
        per_page = int(query.get("per_page", ["30"])[0])
        if not 1 <= per_page <= 100:
            return 422, {"message": "per_page must be between 1 and 100"}, {}
        listed = sorted(self.deliveries, key=lambda d: d.id, reverse=True)
        cursor = query.get("cursor")
        if cursor:
            start = int(cursor[0].removeprefix("v1_"))
            listed = [delivery for delivery in listed if delivery.id <= start]
        page, rest = listed[:per_page], listed[per_page:]
        extra: dict[str, str] = {}
        if rest:
            next_url = f"{self.url}{path}?per_page={per_page}&cursor=v1_{rest[0].id}"
            extra["link"] = f'<{next_url}>; rel="next"'
        return 200, [delivery.summary() for delivery in page], extra


def _uuid() -> str:
    return str(uuid.uuid4())
