"""A small REST API on 127.0.0.1 for poller tests: one JSON collection the test changes.

``GET /items`` lists the collection in id order, with a strong ``ETag`` and a
``Last-Modified``, answers ``304`` to a matching ``If-None-Match`` /
``If-Modified-Since``, pages with a ``Link`` header (``?page=N``, ``page_size`` items a
page) or, with ``pagination="cursor"``, with ``{"data": [...], "next_cursor": ...}``;
``?since=N`` keeps the items whose ``updated`` is at least ``N``. ``throttle(n, 1)``
answers the next ``n`` requests ``429`` with ``Retry-After: 1``. Every answer carries
``X-RateLimit-*`` headers. The server counts requests, ``304`` answers and body bytes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RATE_LIMIT = 5000
_EPOCH = 1_700_000_000


@dataclass
class Served:
    """One request as the server saw it."""

    at: float
    target: str
    status: int
    headers: dict[str, str]


@dataclass
class ItemsAPI:
    """The collection and the server's counters (the test thread changes them freely)."""

    page_size: int = 2
    pagination: str = "link"
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[Served] = field(default_factory=list)
    not_modified: int = 0
    body_bytes: int = 0
    version: int = 0
    throttled: int = 0
    retry_after: int = 1
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return len(self.log)

    def put(self, item_id: str, **fields: Any) -> None:
        """Create or replace an item; its ``updated`` is the collection's new version."""
        with self._lock:
            self.version += 1
            self.items[item_id] = {"id": item_id, **fields, "updated": self.version}

    def delete(self, item_id: str) -> None:
        with self._lock:
            self.version += 1
            del self.items[item_id]

    def throttle(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests ``429`` with ``Retry-After: retry_after``."""
        with self._lock:
            self.throttled = count
            self.retry_after = retry_after

    def reset_counters(self) -> None:
        with self._lock:
            self.log.clear()
            self.not_modified = 0
            self.body_bytes = 0

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope["query_string"].decode("ascii")
        target = scope["path"] + (f"?{query}" if query else "")
        status, out, body = self._answer(scope["path"], parse_qs(query), headers)
        with self._lock:
            self.log.append(Served(time.monotonic(), target, status, headers))
            self.body_bytes += len(body)
            if status == 304:
                self.not_modified += 1
        out.update(
            {
                "content-length": str(len(body)),
                "x-ratelimit-limit": str(RATE_LIMIT),
                "x-ratelimit-remaining": str(RATE_LIMIT - len(self.log)),
                "x-ratelimit-reset": str(int(time.time()) + 3600),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _answer(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if self.throttled > 0:
                self.throttled -= 1
                return 429, {"retry-after": str(self.retry_after)}, b""
            if path != "/items":
                return 404, {"content-type": "application/json"}, b'{"error":"not found"}'
            listed = [self.items[key] for key in sorted(self.items)]
            version = self.version
        since = query.get("since")
        if since:
            listed = [item for item in listed if item["updated"] >= int(since[0])]
        out: dict[str, str] = {"content-type": "application/json"}
        if self.pagination == "cursor":
            start = int(query.get("cursor", ["0"])[0])
            page = listed[start : start + self.page_size]
            more = start + self.page_size < len(listed)
            document: Any = {
                "data": page,
                "next_cursor": str(start + self.page_size) if more else None,
            }
        else:
            number = int(query.get("page", ["1"])[0])
            start = (number - 1) * self.page_size
            document = listed[start : start + self.page_size]
            if start + self.page_size < len(listed):
                base = self.url + path
                rest = "&".join(
                    f"{key}={values[0]}" for key, values in sorted(query.items()) if key != "page"
                )
                out["link"] = f'<{base}?{rest + "&" if rest else ""}page={number + 1}>; rel="next"'
        body = json.dumps(document, sort_keys=True).encode()
        # The tag names the whole collection's version (as an API backed by a change
        # counter does), so the first page's tag changes when any page does.
        tag_of = f"{version}|{sorted(query.items())}|{self.pagination}".encode()
        etag = '"' + hashlib.sha256(tag_of).hexdigest()[:16] + '"'
        last_modified = formatdate(_EPOCH + version, usegmt=True)
        out["etag"] = etag
        out["last-modified"] = last_modified
        match = headers.get("if-none-match")
        if match is not None:
            if etag in [tag.strip() for tag in match.split(",")]:
                return 304, {"etag": etag}, b""
        elif "if-modified-since" in headers:
            try:
                since_date = parsedate_to_datetime(headers["if-modified-since"]).timestamp()
            except (TypeError, ValueError):
                since_date = -1
            if _EPOCH + version <= since_date:
                return 304, {"etag": etag}, b""
        return 200, out, body


@contextmanager
def serve(api: ItemsAPI) -> Iterator[ItemsAPI]:
    """Serve ``api`` on an ephemeral port of 127.0.0.1; ``api.url`` is its base URL."""
    config = uvicorn.Config(api, host="127.0.0.1", port=0, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    api.url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        server.should_exit = True
        thread.join(timeout=10)
