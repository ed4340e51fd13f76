"""``hookwise relay connect``: the laptop side of the relay.

It opens one outbound stream to the relay (nothing listens on the laptop), and hands
each stored request to the local receiver with its exact method, path, headers and
body, one at a time, in order:

- a final answer (2xx, 3xx, 4xx) is acknowledged to the relay, which then never sends
  that request again;
- no answer (connection refused, timeout) or a 5xx, 408 or 429 is retried with
  jittered backoff (honouring ``Retry-After``) and not acknowledged, so a stopped
  client or a receiver that is down loses nothing;
- after any disconnect (sleep, network change, relay restart) the client reconnects
  with jittered backoff and resumes after the last request it handled; the relay also
  keeps its own cursor, so a restarted client resumes where the last one stopped.

A request is delivered twice only when the client dies between the local answer and
the acknowledgement; receivers that deduplicate (hookwise does) absorb that.

>>> client = RelayClient(ChannelAddress.parse("https://relay.example.com/c/AbC..."),
...                      token="hwr_...", to="http://127.0.0.1:8000", on_delivery=print)
>>> await client.run(stop=asyncio.Event())
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..clock import Clock, system_clock
from ..errors import HookwiseError
from ..poller.manners import error_backoff, parse_retry_after
from .protocol import (
    ANSWER_BODY_LIMIT,
    CHANNEL_PREFIX,
    Ack,
    Dropped,
    Heartbeat,
    Hello,
    LocalAnswer,
    ProtocolError,
    RelayedRequest,
    Superseded,
    Unknown,
    decode_line,
    forward_headers,
    is_channel_id,
    is_final,
    local_path,
)

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LOCAL_TIMEOUT",
    "DEFAULT_TO",
    "ChannelAddress",
    "Delivery",
    "RelayClient",
    "RelayRefused",
]

DEFAULT_TO = "http://127.0.0.1:8000"
DEFAULT_HEARTBEAT = 15.0
DEFAULT_LOCAL_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
RECONNECT_BASE = 0.5
RECONNECT_CAP = 15.0
RETRY_BASE = 1.0
RETRY_CAP = 60.0
ACK_ATTEMPTS = 4
STOP_GRACE = 10.0
"""Seconds a delivery in flight may take to finish once the client is asked to stop."""
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]+")  # what a header value carries as is


class RelayRefused(HookwiseError):
    """The relay will not stream this channel to this client (wrong token, unknown
    channel, or another client took the stream over). Retrying would not help."""


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    """Where a channel lives: the relay's base URL and the channel id.

    >>> ChannelAddress.parse("https://relay.example.com/c/AbCdEfGhIjKlMnOpQrStUv").base
    'https://relay.example.com'
    """

    base: str
    channel: str

    @classmethod
    def parse(cls, url: str) -> ChannelAddress:
        """Read a channel URL as ``relay channel create`` printed it; a path after the
        id (``/hooks/stripe``) is allowed and ignored. Raises ``ValueError`` saying what
        is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"{url!r} is not a channel URL; it looks like https://relay.example.com/c/ID"
            )
        try:
            parts.port  # noqa: B018 - reading it checks it
            httpx.URL(url.strip())
        except (ValueError, httpx.InvalidURL) as exc:
            raise ValueError(f"{url!r} is not a valid URL: {exc}") from None
        head, marker, tail = parts.path.partition(CHANNEL_PREFIX)
        channel = tail.split("/", 1)[0]
        if not marker or not is_channel_id(channel):
            raise ValueError(
                f"{url!r} has no channel id; a channel URL ends with /c/ID, as "
                "`hookwise relay channel create` prints it"
            )
        return cls(f"{parts.scheme}://{parts.netloc}{head.rstrip('/')}", channel)

    @property
    def url(self) -> str:
        """The public URL senders post to (append a path: ``/hooks/stripe``)."""
        return f"{self.base}{CHANNEL_PREFIX}{self.channel}"

    @property
    def stream_url(self) -> str:
        return f"{self.base}/channels/{self.channel}/stream"

    @property
    def ack_url(self) -> str:
        return f"{self.base}/channels/{self.channel}/ack"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to hand a relayed request to the local receiver.

    ``status`` is the local answer (``None`` when there was none: ``error`` says why);
    ``retry_in`` is set when the request was not acknowledged and will be tried again.
    """

    seq: int
    method: str
    target: bytes
    at: float
    elapsed: float
    status: int | None
    error: str | None = None
    retry_in: float | None = None

    @property
    def acked(self) -> bool:
        return self.retry_in is None

    def line(self) -> str:
        """``12:00:03 17 POST /hooks/stripe -> 200 12ms``, one line per attempt.

        >>> Delivery(3, "POST", b"/hooks/x?a=1", 0.0, 0.012, 503, retry_in=2.0).line()[9:]
        '3 POST /hooks/x?… -> 503 12ms, not acked: retrying in 2.0s'
        """
        clock = time.strftime("%H:%M:%S", time.localtime(self.at))
        outcome = str(self.status) if self.status is not None else f"unreachable ({self.error})"
        text = f"{clock} {self.seq} {self.method} {_path(self.target)} -> {outcome} "
        text += f"{round(self.elapsed * 1000)}ms"
        if self.retry_in is not None:
            text += f", not acked: retrying in {self.retry_in:.1f}s"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "time": self.at,
            "seq": self.seq,
            "method": self.method,
            "target": self.target.decode("latin-1"),
            "status": self.status,
            "ms": round(self.elapsed * 1000, 1),
            "error": self.error,
            "acked": self.acked,
            "retry_in": self.retry_in,
        }


class _Interrupted(Exception):
    """The stream ended or broke; reconnect."""


class RelayClient:
    """Streams a channel from the relay and delivers each request to ``to``.

    ``on_delivery`` gets every :class:`Delivery` (one per attempt); ``on_notice`` gets
    one-line news about the connection (connected, lost, requests dropped by the relay).
    The transports, ``rand`` and ``sleep`` are there for tests.
    """

    def __init__(
        self,
        address: ChannelAddress,
        *,
        token: str,
        to: str = DEFAULT_TO,
        heartbeat: float = DEFAULT_HEARTBEAT,
        local_timeout: float = DEFAULT_LOCAL_TIMEOUT,
        on_delivery: Callable[[Delivery], None] = lambda delivery: None,
        on_notice: Callable[[str], None] = lambda text: None,
        relay_transport: httpx.AsyncBaseTransport | None = None,
        local_transport: httpx.AsyncBaseTransport | None = None,
        rand: Callable[[], float] = random.random,
        clock: Clock = system_clock,
        reconnect_cap: float = RECONNECT_CAP,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        try:
            target = httpx.URL(to)
        except httpx.InvalidURL as exc:
            raise ValueError(f"--to must be an http:// or https:// URL ({to!r}: {exc})") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise ValueError(f"--to must be an http:// or https:// URL (got {to!r})")
        if target.query or target.fragment:
            raise ValueError(f"--to takes a base URL without ?query or #fragment (got {to!r})")
        if not token:
            raise ValueError("a channel token is needed to stream a channel")
        if not _TOKEN_TEXT.fullmatch(token):
            raise ValueError(
                "the channel token has a space or a character a token never has; pass the "
                "token `hookwise relay channel create` printed (--token or HOOKWISE_RELAY_TOKEN)"
            )
        self.address = address
        self.to = target
        self.heartbeat = heartbeat
        self.local_timeout = local_timeout
        self.on_delivery = on_delivery
        self.on_notice = on_notice
        self.after: int | None = None
        """The seq of the last request handled (a final local answer), once known."""
        self._token = token
        self._relay_transport = relay_transport
        self._local_transport = local_transport
        self._rand = rand
        self._clock = clock
        self._reconnect_cap = reconnect_cap
        self._retry_cap = retry_cap
        self._delivering = False
        self._connected = False

    @property
    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"}

    async def run(self, stop: asyncio.Event) -> None:
        """Stream and deliver until ``stop`` is set. Raises :class:`RelayRefused` when
        the relay will not serve this channel to this client."""
        from .. import __version__

        relay = httpx.AsyncClient(
            transport=self._relay_transport,
            headers={"user-agent": f"hookwise-relay/{__version__}"},
            timeout=httpx.Timeout(CONNECT_TIMEOUT),
        )
        local = httpx.AsyncClient(
            transport=self._local_transport,
            timeout=httpx.Timeout(self.local_timeout),
            trust_env=False,  # the receiver is local: no proxy from the environment
            follow_redirects=False,
        )
        async with relay, local:
            failures = 0
            while not stop.is_set():
                self._connected = False
                session = asyncio.create_task(self._session(relay, local, stop))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not session.done():
                    if self._delivering:  # let the request in hand finish and be acked
                        await asyncio.wait({session}, timeout=STOP_GRACE)
                    session.cancel()
                    await asyncio.gather(session, return_exceptions=True)
                    return
                try:
                    session.result()
                except (httpx.HTTPError, ProtocolError, _Interrupted) as exc:
                    reason = _describe(exc)
                else:
                    return  # stopped between two deliveries
                failures = 1 if self._connected else failures + 1
                delay = error_backoff(
                    failures, base=RECONNECT_BASE, cap=self._reconnect_cap, rand=self._rand
                )
                self.on_notice(f"relay connection lost ({reason}); reconnecting in {delay:.1f}s")
                if await _wait(stop, delay):
                    return

    async def _session(
        self, relay: httpx.AsyncClient, local: httpx.AsyncClient, stop: asyncio.Event
    ) -> None:
        params = {"heartbeat": f"{self.heartbeat:g}"}
        if self.after is not None:
            params["after"] = str(self.after)
        timeout = httpx.Timeout(CONNECT_TIMEOUT, read=self.heartbeat * 3 + 5)
        async with relay.stream(
            "GET", self.address.stream_url, params=params, headers=self._auth, timeout=timeout
        ) as response:
            _refused(response, self.address)
            if response.status_code != 200:
                await response.aread()
                raise _Interrupted(f"the relay answered {response.status_code}")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                message = decode_line(line)
                if isinstance(message, RelayedRequest):
                    if self.after is not None and message.seq <= self.after:
                        continue  # already handled (never expected; harmless)
                    if not await self._deliver(relay, local, message, stop):
                        return
                elif isinstance(message, Hello):
                    self._hello(message)
                elif isinstance(message, Dropped):
                    self.on_notice(
                        f"the relay dropped {message.count} request(s) before they were "
                        f"delivered (seq {message.first}..{message.last}): its history was "
                        "full; raise `relay serve --max-requests`, or connect more often"
                    )
                elif isinstance(message, Superseded):
                    raise RelayRefused(
                        "another `hookwise relay connect` took this channel's stream over; "
                        "a channel streams to one client at a time (stop the other one, or "
                        "create a channel per client)"
                    )
                elif isinstance(message, Heartbeat | Unknown):
                    pass
                if stop.is_set():
                    return
        raise _Interrupted("the relay closed the stream")

    def _hello(self, hello: Hello) -> None:
        if self.after is not None and hello.after < self.after:
            self.on_notice(
                f"the relay has no record past seq {hello.after} (its data was replaced?); "
                "resuming from there"
            )
        self.after = hello.after
        self._connected = True
        waiting = max(hello.last_seq - hello.after, 0)
        self.on_notice(
            f"connected to {self.address.url}, delivering to {self.to}; "
            f"resuming after seq {hello.after} ({waiting} waiting)"
        )

    async def _deliver(
        self,
        relay: httpx.AsyncClient,
        local: httpx.AsyncClient,
        request: RelayedRequest,
        stop: asyncio.Event,
    ) -> bool:
        """Hand one request over until the receiver gives a final answer, then ack it.
        ``False`` when ``stop`` ended the attempts (the request stays unacknowledged)."""
        self._delivering = True
        try:
            attempt = 0
            while True:
                attempt += 1
                at = self._clock.now()
                started = time.perf_counter()
                answer: LocalAnswer | None = None
                status: int | None = None
                error: str | None = None
                wait: float | None = None
                try:
                    response = await local.send(self._local_request(request))
                    body = await response.aread()
                    status = response.status_code
                    if len(body) <= ANSWER_BODY_LIMIT:
                        answer = LocalAnswer(status, _content_type(response), body)
                    if "retry-after" in response.headers:
                        wait = parse_retry_after(response.headers["retry-after"], now=at)
                except httpx.HTTPError as exc:
                    error = _describe(exc)
                elapsed = time.perf_counter() - started
                if status is not None and is_final(status):
                    self.after = request.seq
                    self.on_delivery(
                        Delivery(request.seq, request.method, request.target, at, elapsed, status)
                    )
                    await self._ack(relay, Ack(request.seq, status, answer))
                    return True
                delay = min(
                    wait
                    if wait is not None
                    else error_backoff(
                        attempt, base=RETRY_BASE, cap=self._retry_cap, rand=self._rand
                    ),
                    self._retry_cap,
                )
                self.on_delivery(
                    Delivery(
                        request.seq,
                        request.method,
                        request.target,
                        at,
                        elapsed,
                        status,
                        error=error,
                        retry_in=delay,
                    )
                )
                if await _wait(stop, delay):
                    return False
        finally:
            self._delivering = False

    def _local_request(self, request: RelayedRequest) -> httpx.Request:
        path = local_path(self.to.raw_path, request.target)
        headers = forward_headers(
            request.headers, host=self.to.netloc, body_length=len(request.body)
        )
        # stream= keeps httpx from adding headers of its own (Accept, User-Agent, ...).
        return httpx.Request(
            request.method,
            self.to.copy_with(raw_path=path),
            headers=headers,
            stream=httpx.ByteStream(request.body),
        )

    async def _ack(self, relay: httpx.AsyncClient, ack: Ack) -> None:
        """Tell the relay; on failure, the next stream's ``after`` says it instead."""
        for attempt in range(1, ACK_ATTEMPTS + 1):
            try:
                response = await relay.post(
                    self.address.ack_url,
                    content=ack.encode(),
                    headers={**self._auth, "content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                problem = _describe(exc)
            else:
                _refused(response, self.address)
                if response.status_code == 200:
                    return
                if response.status_code == 409:  # the relay lost this seq; nothing to ack
                    return
                problem = f"the relay answered {response.status_code}"
            if attempt < ACK_ATTEMPTS:
                await asyncio.sleep(
                    error_backoff(attempt, base=RECONNECT_BASE, cap=4.0, rand=self._rand)
                )
        raise _Interrupted(f"could not acknowledge seq {ack.seq}: {problem}")


def _content_type(response: httpx.Response) -> str | None:
    """The local answer's ``Content-Type`` as the bytes it sent (Latin-1 text: httpx would
    decode UTF-8, which the relay could not send back as they came)."""
    for name, value in response.headers.raw:
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return None


def _refused(response: httpx.Response, address: ChannelAddress) -> None:
    if response.status_code == 401:
        raise RelayRefused(
            f"the relay refused the token for channel {address.url} (401); pass the token "
            "`hookwise relay channel create` printed with --token or HOOKWISE_RELAY_TOKEN"
        )
    if response.status_code == 404:
        raise RelayRefused(
            f"the relay at {address.base} has no channel {address.channel} (404); create one "
            f"with `hookwise relay channel create --server {address.base}`"
        )


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; whether it was."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _path(target: bytes) -> str:
    path, mark, _ = target.partition(b"?")
    return (path.decode("latin-1") or "/") + ("?…" if mark else "")
