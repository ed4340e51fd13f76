"""``hookwise relay serve``: the public side of the relay, a raw ASGI app over a durable store.

=====================================  ==============================================
request                                answer
=====================================  ==============================================
any method ``/c/{id}/{suffix}?query``  stored (fsynced) first, then ``200 {"status":
                                       "relayed", "seq"}``; or the local receiver's own
                                       answer when a client delivers it within
                                       ``answer_wait``; ``404`` unknown channel; ``413``
                                       body over ``max_body_bytes``; ``503`` store down
``POST /channels``                     ``201 {"id", "token", "url"}`` (Bearer admin
                                       token when the relay has one, else ``401``)
``GET /channels/{id}``                 the channel's counters (Bearer channel token)
``GET /channels/{id}/stream``          NDJSON stream of stored requests after
                                       ``?after=SEQ`` (Bearer channel token, else 401)
``POST /channels/{id}/ack``            ``{"seq", "status"}``: everything up to seq is
                                       handled (Bearer channel token, else 401)
``GET /healthz``                       ``200 {"status": "ok"}``
=====================================  ==============================================

One stream per channel: a client that connects takes the stream over, and the one it
replaces is told (``superseded``) and closed, so a laptop waking from sleep never
competes with its own dead connection. The wire format is in :mod:`.protocol`, the
storage rules in :mod:`.store`.

>>> run_relay(RelaySettings(), data=Path("relay.db"), host="127.0.0.1", port=8787)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import signal
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs

from .._body import read_body
from ..clock import Clock, system_clock
from ..errors import PayloadTooLarge
from .protocol import (
    CHANNEL_PREFIX,
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
    STREAM_CONTENT_TYPE,
    Ack,
    Dropped,
    Header,
    Heartbeat,
    Hello,
    LocalAnswer,
    ProtocolError,
    Superseded,
    encode_line,
    hash_token,
    is_channel_id,
    token_matches,
)
from .store import DEFAULT_KEEP_ACKED, DEFAULT_MAX_REQUESTS, Channel, RelayStore

__all__ = [
    "DEFAULT_ANSWER_WAIT",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "HEADER_NAMES_EXTENSION",
    "PRUNE_INTERVAL",
    "RelayApp",
    "RelaySettings",
    "run_relay",
]

log = logging.getLogger("hookwise.relay")

DEFAULT_PORT = 8787
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_ANSWER_WAIT = 2.0
"""Seconds an inbound request waits for a connected client to deliver it and report the
local answer (which then goes back to the sender, so handshakes work). Below the 3 s
that Slack, the most impatient provider, allows."""
DEFAULT_HEARTBEAT = 15.0
PRUNE_INTERVAL = 600.0
"""Seconds between two sweeps of acknowledged requests past their age limit."""
ACK_BODY_LIMIT = 256 * 1024
STREAM_BATCH = 100
RECENT_ANSWERS = 64
HEADER_NAMES_EXTENSION = "hookwise.header_names"
"""Scope extension holding the request's header names as received (ASGI lowercases them)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")

_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """How a relay keeps and answers requests; every value is checked here.

    >>> RelaySettings(max_requests=1000, keep_acked=86400, admin_token="s3cret")
    RelaySettings(max_requests=1000, ...)
    """

    max_requests: int = DEFAULT_MAX_REQUESTS
    keep_acked: float = DEFAULT_KEEP_ACKED
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    answer_wait: float = DEFAULT_ANSWER_WAIT
    admin_token: str | None = None
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.max_requests < 1:
            raise ValueError(f"max_requests must be at least 1 (got {self.max_requests})")
        if self.keep_acked < 0:
            raise ValueError(f"keep_acked can't be negative (got {self.keep_acked})")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1 (got {self.max_body_bytes})")
        if not 0 <= self.answer_wait <= 30:
            raise ValueError(f"answer_wait must be 0 to 30 seconds (got {self.answer_wait})")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(
                f"public_url must start with http:// or https:// ({self.public_url!r})"
            )

    def __repr__(self) -> str:  # never print the admin token
        return (
            f"RelaySettings(max_requests={self.max_requests}, keep_acked={self.keep_acked}, "
            f"max_body_bytes={self.max_body_bytes}, answer_wait={self.answer_wait}, "
            f"admin_token={'set' if self.admin_token else None}, public_url={self.public_url!r})"
        )


class StoreThread:
    """Runs every :class:`RelayStore` call on one thread of its own, in order."""

    def __init__(self, store: RelayStore) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookwise-relay")

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    async def open(self) -> None:
        try:
            await self.call(self.store.open)
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    async def close(self) -> None:
        try:
            await self.call(self.store.close)
        finally:
            self._executor.shutdown(wait=True)


class _Live:
    """What the process knows about a channel beyond its rows: who is streaming it, who
    waits for a local answer."""

    def __init__(self) -> None:
        self.generation = 0
        self.wakers: set[asyncio.Event] = set()
        self.waiters: dict[int, asyncio.Future[LocalAnswer | None]] = {}
        self.answers: OrderedDict[int, LocalAnswer] = OrderedDict()

    @property
    def streaming(self) -> bool:
        return bool(self.wakers)

    def notify(self) -> None:
        for waker in self.wakers:
            waker.set()

    def answered(self, seq: int, answer: LocalAnswer) -> None:
        waiter = self.waiters.get(seq)
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
            return
        self.answers[seq] = answer  # the ack came first: keep it for the request to find
        while len(self.answers) > RECENT_ANSWERS:
            self.answers.popitem(last=False)


class RelayApp:
    """The relay's ASGI app (see the module docstring for its routes).

    >>> app = RelayApp(StoreThread(RelayStore("relay.db")), RelaySettings())
    """

    def __init__(
        self, store: StoreThread, settings: RelaySettings, *, clock: Clock = system_clock
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._live: dict[str, _Live] = {}
        self._known: set[str] = set()
        self._closing = False

    def close_streams(self) -> None:
        """End every open stream (the server is stopping); clients reconnect elsewhere or later.
        Senders waiting for a local answer get ``200 relayed`` now: their requests are stored,
        and an answer cut off by the shutdown would make them send again."""
        self._closing = True
        for live in self._live.values():
            live.notify()
            for waiter in live.waiters.values():
                if not waiter.done():
                    waiter.set_result(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._route(scope, receive, tracking_send)
        except sqlite3.Error as exc:  # the data file failed under a read, an ack, a stream
            log.error("the relay data file failed: %s", exc)
            if not started:
                await _json(
                    send,
                    503,
                    {"status": "unavailable", "error": "the relay can't use its data file now"},
                    [(b"retry-after", b"5")],
                )

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("latin-1")
        if raw_path.startswith(CHANNEL_PREFIX.encode()):
            await self._inbound(scope, receive, send, raw_path)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
        elif path == "/channels":
            if method != "POST":
                await _not_allowed(send, "POST")
            else:
                await self._create_channel(scope, send)
        elif path.startswith("/channels/"):
            await self._control(scope, receive, send, path.removeprefix("/channels/"))
        else:
            await _json(send, 404, {"status": "error", "error": "not found"})

    # -- inbound: capture, commit, answer ---------------------------------------------------

    async def _inbound(self, scope: Scope, receive: Receive, send: Send, raw_path: bytes) -> None:
        channel_part, slash, suffix = raw_path[len(CHANNEL_PREFIX) :].partition(b"/")
        channel_id = channel_part.decode("latin-1")
        if not await self._exists(channel_id):
            await _json(send, 404, {"status": "error", "error": "unknown channel"})
            return
        headers = original_headers(scope)
        try:
            body = await read_body(receive, _content_length(headers), self.settings.max_body_bytes)
        except PayloadTooLarge:
            await _json(
                send,
                413,
                {"status": "error", "error": f"body over {self.settings.max_body_bytes} bytes"},
                [(b"connection", b"close")],
            )
            return
        if body is None:  # the sender hung up before the body ended: nothing to store
            return
        query: bytes = scope.get("query_string", b"")
        target = (slash + suffix) + (b"?" + query if query else b"")
        method: str = scope["method"]
        try:
            appended = await self.store.call(
                self.store.store.append,
                channel_id,
                method,
                target,
                headers,
                body,
                now=self.clock.now(),
            )
        except sqlite3.Error as exc:
            log.error("storing a request for channel %s failed: %s", _short(channel_id), exc)
            await _json(
                send,
                503,
                {"status": "unavailable", "error": "try again later"},
                [(b"retry-after", b"5")],
            )
            return
        if appended is None:
            await _json(send, 404, {"status": "error", "error": "unknown channel"})
            return
        log.info(
            "channel %s: stored seq %d, %s %s (%d bytes)",
            _short(channel_id),
            appended.seq,
            method,
            _shown(target),
            len(body),
        )
        if appended.dropped:
            log.warning(
                "channel %s: history full (%d requests); dropped %d unacknowledged",
                _short(channel_id),
                self.settings.max_requests,
                appended.dropped,
            )
        answer = await self._local_answer(channel_id, appended.seq)
        if answer is None:
            await _json(send, 200, {"status": "relayed", "seq": appended.seq})
            return
        extra = [(b"x-hookwise-relay-seq", str(appended.seq).encode())]
        if answer.content_type:
            extra.insert(0, (b"content-type", answer.content_type.encode("latin-1")))
        await _respond(send, answer.status, answer.body, extra)

    async def _local_answer(self, channel_id: str, seq: int) -> LocalAnswer | None:
        """The local receiver's answer when a connected client reports it in time."""
        live = self._live_for(channel_id)
        if self.settings.answer_wait <= 0 or not live.streaming or self._closing:
            live.notify()
            return None
        early = live.answers.pop(seq, None)
        if early is not None:
            return early
        waiter: asyncio.Future[LocalAnswer | None] = asyncio.get_running_loop().create_future()
        live.waiters[seq] = waiter
        live.notify()
        try:
            return await asyncio.wait_for(waiter, self.settings.answer_wait)
        except TimeoutError:
            return None
        finally:
            live.waiters.pop(seq, None)

    async def _exists(self, channel_id: str) -> bool:
        if channel_id in self._known:
            return True
        if not is_channel_id(channel_id):
            return False
        channel = await self.store.call(self.store.store.channel, channel_id)
        if channel is None:
            return False
        self._known.add(channel_id)
        return True

    # -- channels -----------------------------------------------------------------------------

    async def _create_channel(self, scope: Scope, send: Send) -> None:
        admin = self.settings.admin_token
        if admin is not None and not token_matches(_bearer(scope), _hash(admin)):
            await _unauthorized(send, "wrong or missing admin token")
            return
        channel_id, token = await self.store.call(
            self.store.store.create_channel, now=self.clock.now()
        )
        self._known.add(channel_id)
        url = f"{self._public_base(scope)}{CHANNEL_PREFIX}{channel_id}"
        log.info("channel %s created", _short(channel_id))
        await _json(send, 201, {"id": channel_id, "token": token, "url": url})

    def _public_base(self, scope: Scope) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        headers = {name.lower(): value for name, value in scope["headers"]}
        scheme = headers.get(b"x-forwarded-proto", scope.get("scheme", "http").encode())
        host = headers.get(b"x-forwarded-host") or headers.get(b"host")
        if not host:
            server = scope.get("server") or ("127.0.0.1", DEFAULT_PORT)
            host = f"{server[0]}:{server[1]}".encode()
        return f"{scheme.decode('latin-1').split(',')[0].strip()}://{host.decode('latin-1')}"

    async def _control(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        channel_id, _, action = rest.partition("/")
        method: str = scope["method"]
        expected = {"": "GET", "stream": "GET", "ack": "POST"}.get(action)
        if expected is None:
            await _json(send, 404, {"status": "error", "error": "not found"})
            return
        if method != expected:
            await _not_allowed(send, expected)
            return
        channel = await self._authorized(scope, send, channel_id)
        if channel is None:
            return
        if action == "stream":
            await self._stream(scope, receive, send, channel)
        elif action == "ack":
            await self._ack(receive, send, channel)
        else:
            held, pending = await self.store.call(self.store.store.counts, channel)
            await _json(
                send,
                200,
                {
                    "id": channel.id,
                    "url": f"{self._public_base(scope)}{CHANNEL_PREFIX}{channel.id}",
                    "created_at": channel.created_at,
                    "last_seq": channel.last_seq,
                    "cursor": channel.cursor,
                    "held": held,
                    "pending": pending,
                    "dropped": channel.dropped,
                    "connected": self._live_for(channel.id).streaming,
                },
            )

    async def _authorized(self, scope: Scope, send: Send, channel_id: str) -> Channel | None:
        channel = None
        if is_channel_id(channel_id):
            channel = await self.store.call(self.store.store.channel, channel_id)
        if channel is None:
            await _json(send, 404, {"status": "error", "error": "unknown channel"})
            return None
        if not token_matches(_bearer(scope), channel.token_hash):
            log.warning("channel %s: refused a wrong or missing token", _short(channel_id))
            await _unauthorized(send, "wrong or missing channel token")
            return None
        return channel

    # -- the stream -----------------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send, channel: Channel) -> None:
        try:
            after, heartbeat = _stream_params(scope.get("query_string", b""))
        except ValueError as exc:
            await _json(send, 400, {"status": "error", "error": str(exc)})
            return
        resumed = await self.store.call(self.store.store.resume, channel.id, after)
        if resumed is None:
            await _json(send, 404, {"status": "error", "error": "unknown channel"})
            return
        if resumed.ahead:
            log.warning(
                "channel %s: the client last handled seq %s but the relay never stored it "
                "(was the data file replaced?); streaming after seq %d",
                _short(channel.id),
                after,
                resumed.after,
            )
        live = self._live_for(channel.id)
        live.generation += 1
        generation = live.generation
        live.notify()  # a stream this one replaces wakes up and sees it is superseded
        waker = asyncio.Event()
        live.wakers.add(waker)
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone, waker))
        position = resumed.after
        log.info(
            "channel %s: client connected, streaming after seq %d", _short(channel.id), position
        )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", STREAM_CONTENT_TYPE.encode()),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),  # nginx: pass each line on at once
                    ],
                }
            )
            hello = Hello(
                channel=channel.id,
                after=position,
                last_seq=resumed.channel.last_seq,
                dropped=resumed.channel.dropped,
                heartbeat=heartbeat,
            )
            await _line(send, encode_line(hello))
            while not (self._closing or gone.is_set()):
                if live.generation != generation:
                    await _line(send, encode_line(Superseded()))
                    log.info("channel %s: stream taken over by a new client", _short(channel.id))
                    break
                waker.clear()
                batch = await self.store.call(
                    self.store.store.fetch, channel.id, after=position, limit=STREAM_BATCH
                )
                if batch:
                    first = batch[0].seq
                    if first > position + 1:
                        gap = Dropped(
                            count=first - position - 1, first=position + 1, last=first - 1
                        )
                        await _line(send, encode_line(gap))
                    for request in batch:
                        await _line(send, encode_line(request))
                        position = request.seq
                    continue
                try:
                    await asyncio.wait_for(waker.wait(), heartbeat)
                except TimeoutError:
                    await _line(send, encode_line(Heartbeat()))
        finally:
            live.wakers.discard(waker)
            watcher.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            log.info("channel %s: client stream ended", _short(channel.id))

    # -- acks -----------------------------------------------------------------------------------

    async def _ack(self, receive: Receive, send: Send, channel: Channel) -> None:
        try:
            raw = await read_body(receive, None, ACK_BODY_LIMIT)
        except PayloadTooLarge:
            await _json(send, 413, {"status": "error", "error": "ack too large"})
            return
        if raw is None:
            return
        try:
            ack = Ack.decode(raw)
        except ProtocolError as exc:
            await _json(send, 400, {"status": "error", "error": f"bad ack: {exc}"})
            return
        cursor = await self.store.call(self.store.store.ack, channel.id, ack.seq)
        if cursor is None:
            await _json(
                send,
                409,
                {
                    "status": "error",
                    "error": f"seq {ack.seq} was never stored on this channel",
                },
            )
            return
        if ack.answer is not None:
            self._live_for(channel.id).answered(ack.seq, ack.answer)
        await _json(send, 200, {"status": "acked", "cursor": cursor})

    def _live_for(self, channel_id: str) -> _Live:
        live = self._live.get(channel_id)
        if live is None:
            live = self._live[channel_id] = _Live()
        return live


# -- request helpers -------------------------------------------------------------------------


def original_headers(scope: Scope) -> tuple[Header, ...]:
    """The request's headers in order, with the names' case as received when the server
    recorded it (see :func:`_case_keeping_protocol`), else as ASGI gives them (lowercase).

    >>> original_headers({"headers": [(b"x-a", b"1")]})
    ((b'x-a', b'1'),)
    """
    raw: Sequence[tuple[bytes, bytes]] = scope["headers"]
    names = (scope.get("extensions") or {}).get(HEADER_NAMES_EXTENSION)
    if (
        isinstance(names, list)
        and len(names) == len(raw)
        and all(
            isinstance(name, bytes) and name.lower() == pair[0]
            for name, pair in zip(names, raw, strict=True)
        )
    ):
        return tuple((name, value) for name, (_, value) in zip(names, raw, strict=True))
    return tuple((name, value) for name, value in raw)


def _content_length(headers: Sequence[Header]) -> bytes | None:
    return next((value for name, value in headers if name.lower() == b"content-length"), None)


def _stream_params(query: bytes) -> tuple[int | None, float]:
    params = parse_qs(query.decode("latin-1"), keep_blank_values=True)
    after: int | None = None
    heartbeat = DEFAULT_HEARTBEAT
    if "after" in params:
        text = params["after"][-1]
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"after must be a seq (a whole number), not {text!r}")
        after = int(text)
    if "heartbeat" in params:
        try:
            heartbeat = float(params["heartbeat"][-1])
        except ValueError:
            heartbeat = math.nan
        if math.isnan(heartbeat):
            raise ValueError("heartbeat must be a number of seconds")
        heartbeat = min(max(heartbeat, MIN_HEARTBEAT), MAX_HEARTBEAT)
    return after, heartbeat


def _bearer(scope: Scope) -> str | None:
    headers: Sequence[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            presented = token.strip()
            if scheme.lower() == "bearer" and presented:
                return presented
    return None


@functools.cache
def _hash(token: str) -> bytes:
    return hash_token(token)


async def _watch_disconnect(receive: Receive, gone: asyncio.Event, waker: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            waker.set()
            return


def _short(channel_id: str) -> str:
    """Enough of a channel id to tell channels apart in logs, not enough to post to one."""
    return channel_id[:6] + "…"


def _shown(target: bytes) -> str:
    path, query, _ = target.partition(b"?")
    text = path.decode("latin-1") or "/"
    return text + ("?…" if query else "")


# -- answers ------------------------------------------------------------------------------------


async def _respond(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send,
    status: int,
    document: Mapping[str, object],
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await _respond(send, status, body, [_JSON, *headers])


async def _unauthorized(send: Send, error: str) -> None:
    await _json(send, 401, {"status": "error", "error": error}, [(b"www-authenticate", b"Bearer")])


async def _not_allowed(send: Send, allowed: str) -> None:
    await _json(
        send,
        405,
        {"status": "error", "error": "method not allowed"},
        [(b"allow", allowed.encode())],
    )


async def _line(send: Send, line: bytes) -> None:
    await send({"type": "http.response.body", "body": line, "more_body": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- running it ---------------------------------------------------------------------------------


def _case_keeping_protocol() -> Any:
    """uvicorn's httptools protocol, also recording each header name as received: ASGI
    hands apps lowercase names, and the relay forwards names as the sender wrote them.
    Without httptools the default protocol runs, and names are forwarded lowercase."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class CaseKeepingProtocol(HttpToolsProtocol):
        _header_names: list[bytes]

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_names = []
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]
            extensions = scope.setdefault("extensions", {})
            extensions[HEADER_NAMES_EXTENSION] = self._header_names

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_names.append(bytes(name))
            super().on_header(name, value)

    return CaseKeepingProtocol


def run_relay(
    settings: RelaySettings,
    *,
    data: Path,
    host: str,
    port: int,
    log_level: str = "info",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Open the data file and serve the relay until SIGTERM/SIGINT. Blocks.

    Raises :class:`~hookwise.errors.ConfigError` when the data file can't be used.
    ``on_ready`` runs once the data file is open and the port is bound.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(settings, data, host, port, log_level, tls_cert, tls_key, on_ready))


async def _serve(
    settings: RelaySettings,
    data: Path,
    host: str,
    port: int,
    log_level: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    on_ready: Callable[[], None] | None,
) -> None:
    import uvicorn

    store = StoreThread(
        RelayStore(data, max_requests=settings.max_requests, keep_acked=settings.keep_acked)
    )
    await store.open()
    app = RelayApp(store, settings)

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # ours: see on_signal

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if on_ready is not None and not self.should_exit:
                on_ready()

        async def shutdown(self, sockets: Any = None) -> None:
            app.close_streams()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_case_keeping_protocol(),
        lifespan="off",
        access_log=False,
        log_level=log_level,
        log_config=None,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    pruning = asyncio.create_task(_prune_forever(store, app.clock))
    try:
        await server.serve()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        pruning.cancel()
        await asyncio.gather(pruning, return_exceptions=True)
        await store.close()
    log.info("relay stopped")


async def _prune_forever(
    store: StoreThread, clock: Clock, interval: float = PRUNE_INTERVAL
) -> None:
    while True:
        try:
            pruned = await store.call(store.store.prune, now=clock.now())
        except sqlite3.Error as exc:
            log.error("pruning acknowledged requests failed: %s; trying again later", exc)
        else:
            if pruned:
                log.info("pruned %d acknowledged request(s) past the age limit", pruned)
        await asyncio.sleep(interval)
