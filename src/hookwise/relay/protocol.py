"""The relay's wire format and forwarding rules, shared by ``relay serve`` and ``relay connect``.

Pure functions of bytes: nothing here does I/O or reads the clock.

The stream (``GET /channels/{id}/stream``) is NDJSON: one JSON object per line, each
with a ``type``::

    {"type": "hello", "channel": "...", "after": 41, "last_seq": 44, "dropped": 0, ...}
    {"type": "request", "seq": 42, "method": "POST", "target": "/hooks/stripe",
     "headers": [["Content-Type", "application/json"], ...], "body": "<base64>", ...}
    {"type": "dropped", "count": 3, "first": 12, "last": 14}
    {"type": "heartbeat"}
    {"type": "superseded"}

Header names, values and the target travel as Latin-1 text: every byte maps to one
character, so the original bytes come back exactly (JSON escapes what is not ASCII).
The body travels as base64. A line of an unknown ``type`` is :class:`Unknown`, which a
client skips, so a newer relay can add messages without breaking older clients.

>>> line = encode_line(RelayedRequest(7, "POST", b"/hooks/x", ((b"X-Id", b"1"),), b"{}", 0.0))
>>> decode_line(line).seq
7
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANSWER_BODY_LIMIT",
    "CHANNEL_PREFIX",
    "HOP_BY_HOP",
    "MAX_HEARTBEAT",
    "MAX_SEQ",
    "MIN_HEARTBEAT",
    "STREAM_CONTENT_TYPE",
    "Ack",
    "Dropped",
    "Header",
    "Heartbeat",
    "Hello",
    "LocalAnswer",
    "Message",
    "ProtocolError",
    "RelayedRequest",
    "Superseded",
    "Unknown",
    "decode_headers",
    "decode_line",
    "encode_headers",
    "encode_line",
    "forward_headers",
    "hash_token",
    "is_channel_id",
    "is_final",
    "local_path",
    "new_channel_id",
    "new_token",
    "token_matches",
]

CHANNEL_PREFIX = "/c/"
"""Inbound requests go to ``/c/{channel id}/{suffix}``; everything after the id is the
sender's, forwarded as the local path."""

STREAM_CONTENT_TYPE = "application/x-ndjson"

MIN_HEARTBEAT = 1.0
MAX_HEARTBEAT = 300.0
"""The heartbeat interval a client may ask for, in seconds."""

ANSWER_BODY_LIMIT = 64 * 1024
"""The largest local answer body an ack carries back for the sender (handshakes are tiny)."""

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
"""Headers that describe one connection, not the message: never forwarded (RFC 9110
section 7.6.1; ``Expect: 100-continue`` was already answered by the relay)."""

MAX_SEQ = 2**63 - 1
"""The largest seq (SQLite's largest integer)."""

_CHANNEL_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TOKEN_PREFIX = "hwr_"  # noqa: S105 - a prefix that marks tokens, not a secret


class ProtocolError(ValueError):
    """A stream line or an ack that is not what the relay protocol says."""


# -- channels and tokens ------------------------------------------------------------------


def new_channel_id() -> str:
    """An unguessable channel id: 128 random bits, URL-safe (22 characters).

    >>> is_channel_id(new_channel_id())
    True
    """
    return secrets.token_urlsafe(16)


def new_token() -> str:
    """A channel's secret: 256 random bits with a recognizable prefix (``hwr_``)."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_channel_id(text: str) -> bool:
    """Whether ``text`` has the shape of a channel id (checked before any lookup).

    >>> is_channel_id("../etc/passwd")
    False
    """
    return _CHANNEL_ID.fullmatch(text) is not None


def hash_token(token: str) -> bytes:
    """What the relay stores instead of a token (SHA-256: tokens are random, not passwords)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_matches(token: str | None, stored_hash: bytes) -> bool:
    """Constant-time check of a presented token against the stored hash.

    >>> token_matches("hwr_a", hash_token("hwr_a")), token_matches("hwr_b", hash_token("hwr_a"))
    (True, False)
    """
    if not token:
        return False
    return hmac.compare_digest(hash_token(token), stored_hash)


# -- messages -----------------------------------------------------------------------------


Header = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class RelayedRequest:
    """One captured request, exactly as the sender sent it.

    ``target`` is the raw path after the channel id plus ``?`` and the raw query
    (``b"/hooks/stripe?x=1"``); ``headers`` keep their order, case and repeats.
    """

    seq: int
    method: str
    target: bytes
    headers: tuple[Header, ...]
    body: bytes
    received_at: float


@dataclass(frozen=True, slots=True)
class Hello:
    """The first line of a stream: where it resumes, and what the relay holds."""

    channel: str
    after: int
    last_seq: int
    dropped: int
    heartbeat: float


@dataclass(frozen=True, slots=True)
class Dropped:
    """Requests ``first``..``last`` were dropped unacknowledged (the history cap)."""

    count: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent when the stream is idle, so both sides notice a dead connection."""


@dataclass(frozen=True, slots=True)
class Superseded:
    """Another client opened the channel's stream; this one is closed."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message type this version does not know; skipped."""

    type: str


Message = RelayedRequest | Hello | Dropped | Heartbeat | Superseded | Unknown


def encode_line(message: Message) -> bytes:
    """One stream line (JSON, ASCII only, ending with a newline)."""
    document: dict[str, Any]
    if isinstance(message, RelayedRequest):
        document = {
            "type": "request",
            "seq": message.seq,
            "method": message.method,
            "target": message.target.decode("latin-1"),
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in message.headers],
            "body": base64.b64encode(message.body).decode("ascii"),
            "received_at": message.received_at,
        }
    elif isinstance(message, Hello):
        document = {
            "type": "hello",
            "channel": message.channel,
            "after": message.after,
            "last_seq": message.last_seq,
            "dropped": message.dropped,
            "heartbeat": message.heartbeat,
        }
    elif isinstance(message, Dropped):
        document = {
            "type": "dropped",
            "count": message.count,
            "first": message.first,
            "last": message.last,
        }
    elif isinstance(message, Heartbeat):
        document = {"type": "heartbeat"}
    elif isinstance(message, Superseded):
        document = {"type": "superseded"}
    else:
        document = {"type": message.type}
    return json.dumps(document, separators=(",", ":")).encode("ascii") + b"\n"


def decode_line(line: bytes | str) -> Message:
    """Parse one stream line; :class:`ProtocolError` says what is wrong with it.

    >>> decode_line(b'{"type": "heartbeat"}')
    Heartbeat()
    """
    document = _object(line, "stream line")
    kind = document.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("stream line without a string 'type'")
    if kind == "request":
        return RelayedRequest(
            seq=_int(document, "seq"),
            method=_str(document, "method"),
            target=_latin1(_str(document, "target"), "target"),
            headers=decode_headers(document.get("headers")),
            body=_base64(document.get("body"), "body"),
            received_at=_number(document, "received_at"),
        )
    if kind == "hello":
        return Hello(
            channel=_str(document, "channel"),
            after=_int(document, "after"),
            last_seq=_int(document, "last_seq"),
            dropped=_int(document, "dropped"),
            heartbeat=_number(document, "heartbeat"),
        )
    if kind == "dropped":
        return Dropped(
            count=_int(document, "count"),
            first=_int(document, "first"),
            last=_int(document, "last"),
        )
    if kind == "heartbeat":
        return Heartbeat()
    if kind == "superseded":
        return Superseded()
    return Unknown(kind)


def encode_headers(headers: Iterable[Header]) -> str:
    """Headers as JSON text (how the relay stores them).

    >>> encode_headers([(b"X-A", b"1")])
    '[["X-A","1"]]'
    """
    return json.dumps(
        [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers], separators=(",", ":")
    )


def decode_headers(value: object) -> tuple[Header, ...]:
    """The inverse of :func:`encode_headers`, from its JSON text or the parsed list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ProtocolError("headers are not JSON") from None
    if not isinstance(value, list):
        raise ProtocolError("headers must be a list of [name, value] pairs")
    pairs: list[Header] = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
        ):
            raise ProtocolError("each header must be a [name, value] pair of strings")
        pairs.append((_latin1(item[0], "header name"), _latin1(item[1], "header value")))
    return tuple(pairs)


# -- acks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """What the local receiver answered, carried back for a sender still waiting."""

    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """``POST /channels/{id}/ack``: the client is done with everything up to ``seq``.

    >>> Ack.decode(Ack(3, 200).encode())
    Ack(seq=3, status=200, answer=None)
    """

    seq: int
    status: int
    answer: LocalAnswer | None = None

    def encode(self) -> bytes:
        document: dict[str, Any] = {"seq": self.seq, "status": self.status}
        if self.answer is not None:
            document["answer"] = {
                "status": self.answer.status,
                "content_type": self.answer.content_type,
                "body": base64.b64encode(self.answer.body).decode("ascii"),
            }
        return json.dumps(document, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, raw: bytes) -> Ack:
        document = _object(raw, "ack")
        seq = _int(document, "seq")
        status = _int(document, "status")
        if not 1 <= seq <= MAX_SEQ:
            raise ProtocolError(f"ack 'seq' must be at least 1 and at most {MAX_SEQ} (got {seq})")
        answer: LocalAnswer | None = None
        given = document.get("answer")
        if given is not None:
            if not isinstance(given, dict):
                raise ProtocolError("ack 'answer' must be an object")
            content_type = given.get("content_type")
            if content_type is not None and (
                not isinstance(content_type, str) or not _HEADER_VALUE.fullmatch(content_type)
            ):
                raise ProtocolError(
                    "ack 'answer.content_type' must be a header value: Latin-1 text "
                    "without control characters"
                )
            body = _base64(given.get("body"), "answer.body")
            if len(body) > ANSWER_BODY_LIMIT:
                raise ProtocolError(f"ack 'answer.body' is over {ANSWER_BODY_LIMIT} bytes")
            answer_status = _int(given, "status")
            if not 100 <= answer_status <= 599:
                raise ProtocolError(f"ack 'answer.status' {answer_status} is not an HTTP status")
            answer = LocalAnswer(answer_status, content_type, body)
        return cls(seq, status, answer)


# -- forwarding rules ---------------------------------------------------------------------


def forward_headers(headers: Sequence[Header], *, host: bytes, body_length: int) -> list[Header]:
    """The headers to send to the local receiver: the sender's, in order, with their case
    and repeats, except ``Host`` (replaced by ``host`` where it stood) and the hop-by-hop
    ones (those in :data:`HOP_BY_HOP` and any the ``Connection`` header names).
    ``Content-Length`` is set to ``body_length`` (kept in place, or added at the end when
    the sender framed the body another way).

    >>> forward_headers([(b"Host", b"relay"), (b"Connection", b"close"), (b"X-Id", b"1")],
    ...                 host=b"localhost:8000", body_length=0)
    [(b'Host', b'localhost:8000'), (b'X-Id', b'1')]
    """
    named_by_connection = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    }
    forwarded: list[Header] = []
    had_host = had_length = reframed = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"host":
            if not had_host:
                forwarded.append((name, host))
                had_host = True
        elif lowered == b"content-length":
            if not had_length:
                forwarded.append((name, str(body_length).encode("ascii")))
                had_length = True
        elif lowered in HOP_BY_HOP or lowered in named_by_connection:
            reframed = reframed or lowered == b"transfer-encoding"
        else:
            forwarded.append((name, value))
    if not had_host:
        forwarded.insert(0, (b"Host", host))
    if not had_length and (body_length or reframed):
        forwarded.append((b"Content-Length", str(body_length).encode("ascii")))
    return forwarded


_UNSAFE_IN_TARGET = re.compile(rb"[^\x21-\x7e]")


def local_path(base: bytes, target: bytes) -> bytes:
    """The raw path (and query) to request locally: ``base`` (the ``--to`` URL's path)
    followed by the sender's ``target``. Percent-escapes are kept as sent; a byte that
    may not appear in a request line (a space, a control or non-ASCII byte) is escaped.

    >>> local_path(b"/", b"/hooks/stripe?x=%2F")
    b'/hooks/stripe?x=%2F'
    >>> local_path(b"/app/", b"/hooks/github")
    b'/app/hooks/github'
    """
    safe = _UNSAFE_IN_TARGET.sub(lambda m: b"%%%02X" % m.group()[0], target)
    prefix = base.rstrip(b"/")
    if not safe or safe.startswith(b"?"):
        return (prefix or b"/") + safe
    if not safe.startswith(b"/"):
        safe = b"/" + safe
    return prefix + safe


def is_final(status: int) -> bool:
    """Whether a local answer ends a delivery (acked) or asks to try again (not acked).

    2xx, 3xx and 4xx are final: the receiver has decided. 5xx, 408 (timeout) and 429
    (too many requests) are not: the request is retried until the receiver takes it.

    >>> is_final(200), is_final(401), is_final(429), is_final(503)
    (True, True, False, False)
    """
    return status < 500 and status not in (408, 429)


# -- parsing helpers ----------------------------------------------------------------------


def _object(raw: bytes | str, what: str) -> Mapping[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be ours
        raise ProtocolError(f"{what} is not JSON: {_preview(raw)}") from None
    if not isinstance(document, dict):
        raise ProtocolError(f"{what} is not a JSON object: {_preview(raw)}")
    return document


def _preview(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text[:80])


def _int(document: Mapping[str, Any], key: str) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be an integer (got {value!r})")
    return value


def _number(document: Mapping[str, Any], key: str) -> float:
    value = document.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be a number (got {value!r})")
    return float(value)


def _str(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} must be a string (got {value!r})")
    return value


def _latin1(text: str, what: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ProtocolError(f"{what} has a character outside Latin-1") from None


def _base64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"{what!r} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what!r} is not valid base64") from None
