"""The intake: a raw ASGI app for ``POST /hooks/{source}``, ``/healthz`` and ``/readyz``.

The request path is deliberately short and framework-free: read the body (capped) ->
verify the signature over the raw bytes -> one insert that skips duplicates (group
committed with concurrent requests) -> answer. Handlers never run here; a worker
picks the deliveries up from the store.

Answers (the contract in DESIGN.md):

======================================  =========================================
verified, new                           200 {"status": "accepted", "id", "seq"}
verified, already stored                200 {"status": "duplicate", "id", "seq"}
bad/missing signature, stale timestamp  401 generic body; the reason is logged/counted
unknown source                          404
method other than POST on a hook        405 with ``Allow: POST``
body over ``max_body_bytes``            413, without reading the rest
store unavailable or overloaded         503 with ``Retry-After``
======================================  =========================================
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from json.encoder import encode_basestring_ascii as _json_string
from typing import TYPE_CHECKING, Any

from .clock import Clock, system_clock
from .errors import PayloadTooLarge, StoreError, StoreUnavailable, VerificationError
from .events import NewEvent
from .headers import Redactor, decode_asgi_headers

if TYPE_CHECKING:
    from .handlers import HandlerRegistry
    from .providers import Source
    from .store import Store

__all__ = ["Receiver"]

log = logging.getLogger("hookwise.receiver")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_HOOKS_PREFIX = "/hooks/"


def _body(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


_REJECTED = _body({"status": "rejected", "error": "signature verification failed"})
_NOT_FOUND = _body({"status": "error", "error": "not found"})
_UNKNOWN_SOURCE = _body({"status": "error", "error": "unknown source"})
_NOT_ALLOWED = _body({"status": "error", "error": "method not allowed"})
_TOO_LARGE = _body({"status": "error", "error": "payload too large"})
_HEALTHY = _body({"status": "ok"})
_READY = _body({"status": "ready"})


class Receiver:
    """The ASGI intake for a set of sources.

    Built by :meth:`hookwise.Hookwise.asgi`; mount it anywhere
    (``app.mount("/webhooks", hw.asgi())``) or serve it with ``hookwise serve``.
    The store is opened on first use when nobody opened it before.
    """

    def __init__(
        self,
        *,
        sources: Mapping[str, Source],
        handlers: HandlerRegistry,
        store: Store,
        max_body_bytes: int,
        clock: Clock = system_clock,
        on_append: Callable[[], None] | None = None,
        owns_store: bool = False,
    ) -> None:
        self.sources = sources
        self.handlers = handlers
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.on_append = on_append
        self.rejections: Counter[tuple[str, str]] = Counter()
        """(source, reason) -> count of rejected requests."""
        self.accepted = 0
        self.duplicates = 0
        self.unavailable = 0
        self._owns_store = owns_store
        self._open_lock: asyncio.Lock | None = None
        self._store_open = not owns_store
        self._redactors: dict[Source, Redactor] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websockets are not ours: let the connection close

    # -- lifespan -----------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._ensure_open()
                except Exception as exc:
                    # Keep serving: requests answer 503 (and /readyz says why) until the
                    # store can be opened, which each request tries again.
                    log.error("store not available at start-up: %s", exc)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_store and self._store_open:
                    await self.store.close()
                    self._store_open = False
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _ensure_open(self) -> None:
        if self._store_open:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if not self._store_open:
                await self.store.open()
                self._store_open = True

    # -- http -----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        method: str = scope["method"]
        if path.startswith(_HOOKS_PREFIX):
            name = path[len(_HOOKS_PREFIX) :].rstrip("/")
            source = self.sources.get(name)
            if source is None or "/" in name:
                await _respond(send, 404, _UNKNOWN_SOURCE)
                return
            if method != "POST":
                await _respond(send, 405, _NOT_ALLOWED, [(b"allow", b"POST")])
                return
            await self._hook(source, scope, receive, send)
            return
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _respond(send, 200, _HEALTHY)
            return
        if path == "/readyz" and method in ("GET", "HEAD"):
            await self._ready(send)
            return
        await _respond(send, 404, _NOT_FOUND)

    async def _ready(self, send: Send) -> None:
        try:
            await self._ensure_open()
            await self.store.ping()
        except Exception as exc:
            log.warning("not ready: %s", exc)
            await _respond(
                send,
                503,
                _body({"status": "unavailable", "error": "store unavailable"}),
                [(b"retry-after", b"5")],
            )
            return
        await _respond(send, 200, _READY)

    async def _hook(self, source: Source, scope: Scope, receive: Receive, send: Send) -> None:
        headers = decode_asgi_headers(scope["headers"])
        try:
            body = await _read_body(receive, headers, self.max_body_bytes)
        except PayloadTooLarge:
            await _respond(send, 413, _TOO_LARGE, [(b"connection", b"close")])
            return
        if body is None:  # the sender hung up mid-body: nothing to verify, nobody to answer
            return
        now = self.clock.now()
        try:
            source.verify(body, headers, now)
        except VerificationError as exc:
            self.rejections[(source.name, exc.reason)] += 1
            log.warning(
                "rejected webhook for source %r: %s%s",
                source.name,
                exc.reason,
                f" ({exc.detail})" if exc.detail else "",
            )
            await _respond(send, 401, _REJECTED)
            return
        described = source.describe(body, headers, now)
        redact = self._redactors.get(source)
        if redact is None:
            redact = self._redactors[source] = Redactor(
                secret_values=source.secret_values, secret_headers=source.secret_headers
            )
        event = NewEvent(
            source.name,
            described.dedup_key,
            described.type,
            body,
            redact(headers),
            described.ordering_key,
            described.occurred_at,
            now,
            "push",
        )
        try:
            if not self._store_open:
                await self._ensure_open()
            result = await self.store.append(event, self.handlers.route(source.name, event.type))
        except StoreError as exc:
            self.unavailable += 1
            log.error("store could not take an event for %r: %s", source.name, exc)
            await _unavailable(send, exc.retry_after)
            return
        except Exception as exc:  # never answer 2xx when we don't know it was stored
            self.unavailable += 1
            log.exception("unexpected error storing an event for %r", source.name)
            await _unavailable(send, StoreUnavailable.retry_after)
            del exc
            return
        if result.duplicate:
            self.duplicates += 1
            status = b"duplicate"
        else:
            self.accepted += 1
            status = b"accepted"
            if self.on_append is not None:
                self.on_append()
        answer = b'{"status":"%s","id":%s,"seq":%d}' % (
            status,
            _json_string(event.dedup_key).encode(),
            result.seq,
        )
        await _respond(send, 200, answer)


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes | None:
    declared = headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge("body_too_large", f"content-length {declared} > {limit}")
        except ValueError:
            pass  # a malformed length is the server's problem; the streaming cap still applies
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("body_too_large", f"more than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


async def _unavailable(send: Send, retry_after: int) -> None:
    await _respond(
        send,
        503,
        _body({"status": "unavailable", "error": "try again later"}),
        [(b"retry-after", str(retry_after).encode())],
    )


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
