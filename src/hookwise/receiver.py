"""The intake: a raw ASGI app for ``POST /hooks/{source}``, ``/healthz``, ``/readyz``, ``/metrics``.

The request path is deliberately short and framework-free: read the body (capped) ->
verify the signature over the raw bytes -> one insert that skips duplicates (group
committed with concurrent requests) -> answer. Handlers never run here; a worker
picks the deliveries up from the store.

Answers (the contract in DESIGN.md):

======================================  =========================================
verified, new                           200 {"status": "accepted", "id", "seq"}
verified, already stored                200 {"status": "duplicate", "id", "seq"}
a provider's handshake (challenge...)   what the provider asks for; nothing stored
bad/missing signature, stale timestamp  401 generic body; the reason is logged/counted
sender not in the source's allow_ips    403
unknown source                          404
method other than POST on a hook        405 with ``Allow`` (POST, and GET for
                                        providers with GET handshakes)
body over ``max_body_bytes``            413, without reading the rest
store unavailable or overloaded         503 with ``Retry-After``
======================================  =========================================
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from json.encoder import encode_basestring_ascii as _json_string
from typing import TYPE_CHECKING, Any

from ._body import read_body
from .clock import Clock, system_clock
from .errors import PayloadTooLarge, StoreError, StoreUnavailable, VerificationError
from .events import NewEvent
from .headers import Redactor, decode_asgi_headers
from .providers._base import Handshake, Inbound
from .store._base import REJECTED_BODY_KEPT, PollState, RejectionRecord

if TYPE_CHECKING:
    from .handlers import HandlerRegistry
    from .providers import Source
    from .store import Store

__all__ = ["Receiver", "poll_metrics_text"]

STORE_METRICS_TTL = 10.0
"""Seconds the store's gauges in ``/metrics`` are reused: scrapes don't query it more."""

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
_FORBIDDEN = _body({"status": "error", "error": "forbidden"})
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
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.sources = sources
        self.handlers = handlers
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.on_append = on_append
        self.rejections: Counter[tuple[str, str]] = Counter()
        """(source, reason) -> count of rejected requests."""
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(source, outcome) -> requests: accepted, duplicate, unavailable, handshake."""
        self._owns_store = owns_store
        self._open_lock: asyncio.Lock | None = None
        self._store_open = not owns_store
        self._redactors: dict[Source, Redactor] = {}
        self._trusted = tuple(ipaddress.ip_network(net) for net in trusted_proxies)
        self._outage_log = LogThrottle(seconds=5.0)
        self.recorder = RejectionRecorder(store)
        self._store_metrics: tuple[float, str, list[PollState]] | None = None
        """Keeps refused requests for diagnosis (bounded; see ``hookwise rejections``)."""

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
                await self.recorder.flush()
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
            if method == "POST":
                await self._hook(source, scope, receive, send)
            elif method in source.handshake_methods:
                await self._handshake(source, scope, send)
            else:
                allowed = ", ".join(["POST", *sorted(source.handshake_methods)])
                await _respond(send, 405, _NOT_ALLOWED, [(b"allow", allowed.encode())])
            return
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _respond(send, 200, _HEALTHY)
            return
        if path == "/readyz" and method in ("GET", "HEAD"):
            await self._ready(send)
            return
        if path == "/metrics" and method in ("GET", "HEAD"):
            body = (self.metrics_text() + await self.store_metrics_text()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await _respond(send, 404, _NOT_FOUND)

    def metrics_text(self) -> str:
        """The intake's counters in the Prometheus text format (``GET /metrics``)."""
        lines = [
            "# HELP hookwise_requests_total Webhook requests by source and outcome.",
            "# TYPE hookwise_requests_total counter",
        ]
        for (source, outcome), count in sorted(self.outcomes.items()):
            lines.append(
                f'hookwise_requests_total{{source="{_label(source)}",outcome="{outcome}"}} {count}'
            )
        lines += [
            "# HELP hookwise_rejections_total Refused requests (401/403) by source and reason.",
            "# TYPE hookwise_rejections_total counter",
        ]
        for (source, reason), count in sorted(self.rejections.items()):
            lines.append(
                f'hookwise_rejections_total{{source="{_label(source)}",reason="{_label(reason)}"}}'
                f" {count}"
            )
        lines += [
            "# HELP hookwise_rejection_records_dropped_total Rejections not kept as records "
            "(over the rate limit, or the store failed).",
            "# TYPE hookwise_rejection_records_dropped_total counter",
            f"hookwise_rejection_records_dropped_total {self.recorder.dropped}",
        ]
        return "\n".join(lines) + "\n"

    async def store_metrics_text(self) -> str:
        """Gauges read from the store (waiting and skipped deliveries, each poll's
        counters and schedule), at most once per :data:`STORE_METRICS_TTL` seconds;
        nothing when the store can't answer."""
        now = time.monotonic()
        cached = self._store_metrics
        if cached is None or now - cached[0] >= STORE_METRICS_TTL:
            try:
                await self._ensure_open()
                counts = await self.store.ordering_counts()
                polls = await self.store.list_poll_states()
            except Exception as exc:
                log.warning("metrics: the store did not answer (%s)", exc)
                return ""
            lines = [
                "# HELP hookwise_deliveries_waiting Ordered deliveries waiting for an earlier "
                "one of their key.",
                "# TYPE hookwise_deliveries_waiting gauge",
                f"hookwise_deliveries_waiting {counts.waiting}",
                "# HELP hookwise_deliveries_skipped Deliveries settled skipped without running, "
                "by reason (stale, superseded), among those the store keeps.",
                "# TYPE hookwise_deliveries_skipped gauge",
            ]
            for reason in sorted({"stale", "superseded", *counts.skipped}):
                lines.append(
                    f'hookwise_deliveries_skipped{{reason="{_label(reason)}"}} '
                    f"{counts.skipped.get(reason, 0)}"
                )
            cached = (now, "\n".join(lines) + "\n", polls)
            self._store_metrics = cached
        # Rendered at every scrape: "next due in" moves even while the states are reused.
        return cached[1] + poll_metrics_text(cached[2], self.clock.now())

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

    def _client(self, scope: Scope, headers: Mapping[str, str]) -> str | None:
        """The sender's address: the peer, or, when the peer is a trusted proxy, the
        nearest untrusted address in ``X-Forwarded-For``."""
        peer = scope.get("client")
        address: str | None = peer[0] if peer else None
        if not self._trusted or address is None or not self._is_trusted(address):
            return address
        forwarded = headers.get("x-forwarded-for")
        if not forwarded:
            return address
        for hop in reversed([part.strip() for part in forwarded.split(",")]):
            if not hop:
                continue
            if not self._is_trusted(hop):
                return hop
            address = hop
        return address

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def _inbound(
        self,
        source: Source,
        scope: Scope,
        headers: Mapping[str, str],
        body: bytes,
        client: str | None,
    ) -> Inbound:
        query: str = scope.get("query_string", b"").decode("latin-1")
        if source.public_url:
            url = source.public_url + ("?" + query if query else "")
        else:
            url = self._url(scope, headers, query)
        return Inbound(body, headers, method=scope["method"], url=url, query=query, client=client)

    def _url(self, scope: Scope, headers: Mapping[str, str], query: str) -> str:
        scheme = scope.get("scheme", "http")
        host = headers.get("host")
        peer = scope.get("client")
        if self._trusted and peer and self._is_trusted(peer[0]):
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
            host = headers.get("x-forwarded-host", host or "").split(",")[0].strip() or host
        if not host:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        # The path as sent (percent-escapes kept): URL-signing providers sign those bytes.
        raw: bytes | None = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else (scope.get("root_path") or "") + scope["path"]
        return f"{scheme}://{host}{path}" + ("?" + query if query else "")

    def _allowed(self, source: Source, client: str | None) -> bool:
        if not source.allow_ips:
            return True
        if client is None:
            return False
        try:
            ip = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(ip in net for net in source.allow_ips)

    async def _handshake(self, source: Source, scope: Scope, send: Send) -> None:
        headers = decode_asgi_headers(scope["headers"])
        client = self._client(scope, headers)
        if not self._allowed(source, client):
            await self._forbid(source, self._inbound(source, scope, headers, b"", client), send)
            return
        request = self._inbound(source, scope, headers, b"", client)
        try:
            answer = source.handshake(request, self.clock.now())
        except VerificationError as exc:
            await self._reject(source, request, exc, send)
            return
        if answer is None:
            allowed = ", ".join(["POST", *sorted(source.handshake_methods)])
            await _respond(send, 405, _NOT_ALLOWED, [(b"allow", allowed.encode())])
            return
        self.outcomes[(source.name, "handshake")] += 1
        await _answer(send, answer)

    async def _hook(self, source: Source, scope: Scope, receive: Receive, send: Send) -> None:
        headers = decode_asgi_headers(scope["headers"])
        client = self._client(scope, headers) if (source.allow_ips or self._trusted) else None
        if source.allow_ips and not self._allowed(source, client):
            await self._forbid(source, self._inbound(source, scope, headers, b"", client), send)
            return
        try:
            body = await read_body(receive, headers.get("content-length"), self.max_body_bytes)
        except PayloadTooLarge:
            await _respond(send, 413, _TOO_LARGE, [(b"connection", b"close")])
            return
        if body is None:  # the sender hung up mid-body: nothing to verify, nobody to answer
            return
        now = self.clock.now()
        if client is None:
            peer = scope.get("client")
            client = peer[0] if peer else None
        request = self._inbound(source, scope, headers, body, client)
        try:
            if source.needs_prepare:
                await source.prepare(request)
                now = self.clock.now()
            source.verify_request(request, now)
            answer = source.handshake(request, now)
        except VerificationError as exc:
            await self._reject(source, request, exc, send)
            return
        if answer is not None:
            self.outcomes[(source.name, "handshake")] += 1
            await _answer(send, answer)
            return
        described = source.describe(body, headers, now)
        redact = self._redactors.get(source) or self._redactor(source)
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
            result = await self.store.append(
                event, self.handlers.route(source.name, event.type), ordering=source.ordering
            )
        except StoreError as exc:
            self.outcomes[(source.name, "unavailable")] += 1
            if self._outage_log.allow():
                log.error(
                    "store could not take an event for %r: %s%s",
                    source.name,
                    exc,
                    self._outage_log.suppressed_note(),
                )
            await _unavailable(send, exc.retry_after)
            return
        except Exception as exc:  # never answer 2xx when we don't know it was stored
            self.outcomes[(source.name, "unavailable")] += 1
            log.exception("unexpected error storing an event for %r", source.name)
            await _unavailable(send, StoreUnavailable.retry_after)
            del exc
            return
        if result.duplicate:
            self.outcomes[(source.name, "duplicate")] += 1
            status = b"duplicate"
        else:
            self.outcomes[(source.name, "accepted")] += 1
            status = b"accepted"
            if self.on_append is not None:
                self.on_append()
        if source.has_acknowledgement:
            acknowledgement = source.acknowledgement(body, headers)
            if acknowledgement is not None:
                await _answer(send, acknowledgement)
                return
        reply = b'{"status":"%s","id":%s,"seq":%d}' % (
            status,
            _json_string(event.dedup_key).encode(),
            result.seq,
        )
        await _respond(send, 200, reply)

    async def _reject(
        self, source: Source, request: Inbound, exc: VerificationError, send: Send
    ) -> None:
        self.rejections[(source.name, exc.reason)] += 1
        hints: tuple[str, ...] = ()
        if self.recorder.wants(source.name):
            hints = source.diagnose(request, self.clock.now(), exc)
            self.recorder.add(self._record(source, request, exc.reason, exc.detail, hints, 401))
        log.warning(
            "rejected webhook for source %r: %s%s%s",
            source.name,
            exc.reason,
            f" ({exc.detail})" if exc.detail else "",
            "".join(f"\n  hint: {hint}" for hint in hints),
        )
        await _respond(send, 401, _REJECTED)

    async def _forbid(self, source: Source, request: Inbound, send: Send) -> None:
        reason = "ip_not_allowed"
        self.rejections[(source.name, reason)] += 1
        detail = f"{request.client or 'an unknown address'} is not in allow_ips"
        if self.recorder.wants(source.name):
            self.recorder.add(self._record(source, request, reason, detail, (), 403))
        log.warning("refused a request for source %r: %s", source.name, detail)
        await _respond(send, 403, _FORBIDDEN)

    def _record(
        self,
        source: Source,
        request: Inbound,
        reason: str,
        detail: str,
        hints: tuple[str, ...],
        status: int,
    ) -> RejectionRecord:
        redact = self._redactor(source)
        return RejectionRecord(
            source=source.name,
            received_at=self.clock.now(),
            reason=reason,
            detail=detail,
            hints=hints,
            status=status,
            method=request.method,
            url=request.url,
            client=request.client,
            headers=redact(request.headers),
            body=request.body[:REJECTED_BODY_KEPT],
            body_size=len(request.body),
        )

    def _redactor(self, source: Source) -> Redactor:
        redact = self._redactors.get(source)
        if redact is None:
            redact = self._redactors[source] = Redactor(
                secret_values=source.secret_values, secret_headers=source.secret_headers
            )
        return redact


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


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_POLL_COUNTERS = (
    ("requests", "hookwise_poll_requests_total", "HTTP requests a poll sent."),
    (
        "not_modified",
        "hookwise_poll_not_modified_total",
        "Poll runs answered 304 Not Modified (nothing fetched).",
    ),
    ("bytes", "hookwise_poll_bytes_total", "Response body bytes a poll received."),
    (
        "rate_limit_waits",
        "hookwise_poll_rate_limit_waits_total",
        "Times a poll waited for its host's rate limit.",
    ),
    ("changes", "hookwise_poll_changes_total", "Changes a poll found (each one an event)."),
    ("errors", "hookwise_poll_errors_total", "Poll runs that failed."),
    (
        "emitted",
        "hookwise_poll_emitted_total",
        "Deliveries a reconciliation poll appended from the provider's event log.",
    ),
    (
        "backfilled",
        "hookwise_poll_backfilled_total",
        "Of those, deliveries new to the store: ones the webhooks had missed.",
    ),
)


def poll_metrics_text(states: Sequence[PollState], now: float) -> str:
    """Each poll's counters and schedule in the Prometheus text format.

    >>> print(poll_metrics_text([PollState("issues", stats={"requests": 3})], 0.0))
    ... # doctest: +ELLIPSIS
    # HELP hookwise_poll_requests_total HTTP requests a poll sent.
    # TYPE hookwise_poll_requests_total counter
    hookwise_poll_requests_total{poll="issues"} 3
    ...
    """
    ordered = sorted(states, key=lambda state: state.name)
    lines: list[str] = []
    for key, metric, text in _POLL_COUNTERS:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter"]
        for state in ordered:
            value = state.stats.get(key)
            count = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
            lines.append(f'{metric}{{poll="{_label(state.name)}"}} {_number(count)}')
    gauges: list[tuple[str, str, Callable[[PollState], float | None]]] = [
        (
            "hookwise_poll_failing",
            "1 while a poll's runs fail (its last run failed), else 0.",
            lambda state: 1 if state.error is not None else 0,
        ),
        (
            "hookwise_poll_next_due_seconds",
            "Seconds until a poll's next run is due (negative: overdue).",
            lambda state: None if state.next_due_at is None else state.next_due_at - now,
        ),
        (
            "hookwise_poll_interval_seconds",
            "A poll's current interval between runs.",
            lambda state: state.interval,
        ),
    ]
    for metric, text, value_of in gauges:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge"]
        for state in ordered:
            value = value_of(state)
            if value is not None:
                lines.append(f'{metric}{{poll="{_label(state.name)}"}} {_number(value)}')
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return str(int(value)) if value.is_integer() else f"{value:.3f}"


async def _answer(send: Send, answer: Handshake) -> None:
    headers = [
        (b"content-type", answer.content_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode()),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers
        ),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class RejectionRecorder:
    """Writes rejection records to the store in the background, in batches, and never
    more than a few per second per source: a flood of forged requests costs a counter,
    not the store (or the CPU a diagnosis takes)."""

    PER_SECOND = 5
    """Records (and diagnoses) per source per second; the rest are only counted."""
    QUEUED = 500
    """Most records waiting to be written; beyond that they are dropped (and counted)."""
    FLUSH_EVERY = 0.5

    def __init__(self, store: Store, clock: Callable[[], float] | None = None) -> None:
        import time

        self.store = store
        self._monotonic = clock or time.monotonic
        self._queue: deque[RejectionRecord] = deque()
        self._budget: dict[str, tuple[float, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        """Rejections not recorded (over the rate or the queue), since start."""

    def wants(self, source: str) -> bool:
        """Whether a rejection of ``source`` now should be diagnosed and recorded."""
        now = self._monotonic()
        second, used = self._budget.get(source, (0.0, 0))
        if now - second >= 1.0:
            second, used = now, 0
        if used >= self.PER_SECOND or len(self._queue) >= self.QUEUED:
            self.dropped += 1
            return False
        self._budget[source] = (second, used + 1)
        return True

    def add(self, record: RejectionRecord) -> None:
        self._queue.append(record)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.FLUSH_EVERY)
        await self.flush()

    async def flush(self) -> None:
        """Write what is queued now (a failure is logged; those records are lost)."""
        while self._queue:
            batch = list(self._queue)
            self._queue.clear()
            try:
                await self.store.record_rejections(batch)
            except Exception as exc:
                self.dropped += len(batch)
                log.warning("could not keep %d rejection record(s): %s", len(batch), exc)
                return


class LogThrottle:
    """At most one log line per ``seconds`` for a repeating failure: an outage under
    load would otherwise log thousands of identical lines a second."""

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None) -> None:
        import time

        self.seconds = seconds
        self._clock = clock or time.monotonic
        self._last = float("-inf")
        self._suppressed = 0

    def allow(self) -> bool:
        now = self._clock()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        self._suppressed += 1
        return False

    def suppressed_note(self) -> str:
        """ " (and N more like it since the last line)", then starts counting again."""
        count, self._suppressed = self._suppressed, 0
        return f" (and {count} more like it in the last {self.seconds:g}s)" if count else ""
