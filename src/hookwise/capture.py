"""Captured requests, checked offline: what ``hookwise verify`` reads and decides.

>>> capture = parse_capture(Path("failed.http").read_bytes(), name="failed.http")
>>> verdict = check(capture, source, now=time.time())
>>> verdict.valid, verdict.reason, verdict.hints

A capture is one HTTP request as it reached hookwise (or would have), in one of two
formats told apart by their first character:

- **raw HTTP** (a ``.http`` file, a proxy or ``tcpdump`` dump): a request line
  (``POST /hooks/stripe HTTP/1.1``, or with a full URL), the headers, one blank
  line, then the body bytes exactly as sent. Line ends in the head may be CRLF or
  LF. Nothing is added to the body: a line break an editor appends to the file is
  part of it, unless ``Content-Length`` says otherwise. Lines starting with ``#``
  or ``//`` before the request line are comments. ``Transfer-Encoding: chunked``
  bodies are decoded.
- **JSON**: ``{"method", "url", "headers", "body"}``, where ``headers`` is an object
  or a list of ``[name, value]`` pairs, and the body is ``"body"`` (text, sent as
  UTF-8) or ``"body_base64"`` (any bytes). The documents ``hookwise events show
  --json`` and ``hookwise rejections show --json`` print are captures too: their
  ``source``, ``received_at``, ``client`` and ``body_size`` are used when present.

:func:`check` does what the receiver does with the request (``allow_ips``,
verification, the provider's handshake, extraction), without a store or a
network, and says why a rejected request was rejected. Malformed captures raise
:class:`~hookwise.errors.ConfigError` naming the file and the fix.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hookwise.errors import ConfigError, VerificationError
from hookwise.headers import REDACTED

if TYPE_CHECKING:
    from hookwise.providers import Description, Handshake, Inbound, Source

__all__ = [
    "Capture",
    "Verdict",
    "captured_at",
    "check",
    "inbound",
    "load_capture",
    "parse_capture",
    "parse_http",
    "parse_json",
    "source_name",
    "verify_capture",
]

HOOKS_PATH = "/hooks/"

_HTTP_FIX = (
    "write the request as a request line (POST /hooks/NAME HTTP/1.1), the headers "
    "(Name: value), one blank line, then the body"
)
_JSON_FIX = (
    'write it as {"method": "POST", "url": "/hooks/NAME", "headers": {...}, '
    '"body": "..."} (or "body_base64" for bytes that are not text)'
)
_METHOD = re.compile(r"[A-Za-z]{3,10}")
_VERSION = re.compile(r"HTTP/[0-9](\.[0-9])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LINE_BREAKS = (b"\n", b"\r\n")


@dataclass(frozen=True, slots=True)
class Capture:
    """One captured request.

    >>> Capture("POST", "/hooks/orders", (("Webhook-Id", "msg_1"),), b"{}")
    """

    method: str
    target: str
    """The URL or the path (with its query) the request was sent to, as captured."""
    headers: tuple[tuple[str, str], ...]
    """Names as captured; values as Latin-1 text, as the receiver decodes them."""
    body: bytes
    source: str | None = None
    """The source a stored record names (``events show``, ``rejections show``)."""
    received_at: float | None = None
    """When hookwise received it, for stored records."""
    client: str | None = None
    """The sender's address, when the capture tells it."""
    body_size: int | None = None
    """The size of the whole body, when the capture kept only part of it."""
    notes: tuple[str, ...] = ()
    """What reading the capture noticed (a trimmed line break, a length mismatch...)."""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), repeated ones joined with ``", "``."""
        return self.header_map().get(name.lower())

    def header_map(self) -> dict[str, str]:
        """The headers as the receiver passes them to a source: lowercase names."""
        found: dict[str, str] = {}
        for raw_name, value in self.headers:
            name = raw_name.lower()
            previous = found.get(name)
            if previous is None:
                found[name] = value
            else:
                found[name] = previous + ("; " if name == "cookie" else ", ") + value
        return found


@dataclass(frozen=True, slots=True)
class Verdict:
    """What hookwise would do with a captured request, and why.

    ``status`` is the HTTP status the receiver would answer (200, 401, 403, 405).
    ``description`` is what would be stored when the request is a valid delivery;
    ``handshake`` the answer when it is a valid handshake.
    """

    source: str
    provider: str
    valid: bool
    status: int
    method: str
    url: str
    now: float
    reason: str | None = None
    detail: str = ""
    hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    offset: float | None = None
    """For timestamp rejections: how old the signed time is (negative: in the future)."""
    handshake: Handshake | None = None
    description: Description | None = None

    def to_json(self) -> dict[str, object]:
        """The verdict as one JSON-ready document."""
        handshake: dict[str, object] | None = None
        if self.handshake is not None:
            handshake = {
                "status": self.handshake.status,
                "content_type": self.handshake.content_type,
                "body": self.handshake.body.decode("utf-8", "replace"),
                "headers": [list(pair) for pair in self.handshake.headers],
            }
        event: dict[str, object] | None = None
        if self.description is not None:
            event = {
                "dedup_key": self.description.dedup_key,
                "type": self.description.type,
                "ordering_key": self.description.ordering_key,
                "occurred_at": _iso(self.description.occurred_at),
            }
        return {
            "verdict": "VALID" if self.valid else "REJECTED",
            "valid": self.valid,
            "status": self.status,
            "source": self.source,
            "provider": self.provider,
            "method": self.method,
            "url": self.url,
            "checked_at": _iso(self.now),
            "now": self.now,
            "reason": self.reason,
            "detail": self.detail,
            "hints": list(self.hints),
            "notes": list(self.notes),
            "offset": self.offset,
            "handshake": handshake,
            "event": event,
        }


# -- reading ----------------------------------------------------------------------------


def load_capture(path: str | Path) -> Capture:
    """Read and parse the capture in file ``path``; :class:`ConfigError` when it can't."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such file", file=shown, fix="give the path of a saved request (.http or .json)"
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a directory", file=shown, fix="give the path of one file") from None
    except OSError as exc:
        raise ConfigError(
            f"can't read it: {exc.strerror}", file=shown, fix="check the path and its permissions"
        ) from None
    return parse_capture(data, name=shown)


def parse_capture(data: bytes, *, name: str = "capture") -> Capture:
    """A capture in either format: JSON when it starts with ``{``, raw HTTP otherwise.

    >>> parse_capture(b"POST /hooks/orders HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n{}").body
    b'{}'
    """
    start = data.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not start:
        raise ConfigError("the capture is empty", file=name, fix=_HTTP_FIX)
    if start.startswith(b"{"):
        return parse_json(data, name=name)
    return parse_http(data, name=name)


def parse_http(data: bytes, *, name: str = "capture") -> Capture:
    """A raw HTTP request: request line, headers, blank line, body (exact bytes).

    >>> parse_http(b"POST https://h.example/hooks/a\\nX-Id: 1\\n\\nbody").headers
    (('X-Id', '1'),)
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    position = 0
    number = 0
    request_line: str | None = None
    while position < len(data):
        line, position = _next_line(data, position)
        number += 1
        text = line.decode("latin-1").strip()
        if not text or text.startswith(("#", "//")):
            continue
        request_line = text
        break
    if request_line is None:
        raise ConfigError("the capture holds no request line", file=name, fix=_HTTP_FIX)
    method, target = _request_line(request_line, number, name)

    headers: list[tuple[str, str]] = []
    authority: str | None = None
    ended = False
    while position < len(data):
        line, position = _next_line(data, position)
        number += 1
        if not line:
            ended = True
            break
        text = line.decode("latin-1")
        if text[0] in " \t":
            if not headers:
                raise ConfigError(
                    f"line {number} starts with a space but follows no header",
                    file=name,
                    fix=_HTTP_FIX,
                )
            previous_name, previous_value = headers[-1]
            headers[-1] = (previous_name, f"{previous_value} {text.strip()}".strip())
            continue
        if text.startswith(":"):  # an HTTP/2 pseudo-header, as browsers' tools show them
            pseudo, _, value = text[1:].partition(":")
            if pseudo.strip().lower() == "authority":
                authority = value.strip()
            continue
        header_name, colon, value = text.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(header_name):
            raise ConfigError(
                f"line {number} is not a header (Name: value): {_clip(text)!r}",
                file=name,
                fix=_HTTP_FIX + "; the body starts after the first blank line",
            )
        headers.append((header_name, value.strip(" \t")))
    if authority and not any(n.lower() == "host" for n, _ in headers):
        headers.append(("Host", authority))
    body = data[position:] if ended else b""

    notes: list[str] = []
    lowered = {n.lower(): v for n, v in headers}
    if "chunked" in lowered.get("transfer-encoding", "").lower():
        body = _dechunk(body, name)
        notes.append("the body was sent in chunks (Transfer-Encoding: chunked); decoded")
    else:
        body = _apply_length(body, lowered.get("content-length"), notes)
    return Capture(method, target, tuple(headers), body, notes=tuple(notes))


def _next_line(data: bytes, position: int) -> tuple[bytes, int]:
    end = data.find(b"\n", position)
    if end < 0:
        return data[position:].rstrip(b"\r"), len(data)
    return data[position:end].rstrip(b"\r"), end + 1


def _request_line(text: str, number: int, name: str) -> tuple[str, str]:
    parts = text.split()
    problem = None
    if len(parts) not in (2, 3):
        problem = f"line {number} is not a request line (METHOD target HTTP/1.1)"
    elif not _METHOD.fullmatch(parts[0]):
        problem = f"line {number} does not start with an HTTP method"
    elif len(parts) == 3 and not _VERSION.fullmatch(parts[2]):
        problem = f"line {number} ends in {parts[2]!r}, not an HTTP version like HTTP/1.1"
    elif not (parts[1].startswith("/") or "://" in parts[1]):
        problem = f"line {number}: the target must be a path (/hooks/NAME) or a full URL"
    if problem:
        raise ConfigError(f"{problem}: {_clip(text)!r}", file=name, fix=_HTTP_FIX)
    return parts[0].upper(), parts[1]


def _apply_length(body: bytes, declared: str | None, notes: list[str]) -> bytes:
    if declared is None:
        return body
    try:
        length = int(declared.strip())
    except ValueError:
        notes.append(f"Content-Length {declared!r} is not a number; the body is used as is")
        return body
    if length == len(body) or length < 0:
        return body
    if length < len(body) and body[length:] in _LINE_BREAKS:
        notes.append(
            f"ignored the {len(body) - length} byte(s) after the Content-Length body "
            "(a final line break, as editors add)"
        )
        return body[:length]
    notes.append(
        f"Content-Length says {length} bytes but the capture holds {len(body)}: it was "
        "cut short or edited; the body is checked as the capture holds it"
    )
    return body


def _dechunk(data: bytes, name: str) -> bytes:
    body = bytearray()
    position = 0
    while True:
        line, position = _next_line(data, position)
        size_text = line.split(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ConfigError(
                "the body is not valid chunked encoding (a chunk size is not hex)",
                file=name,
                fix="capture the body as received, or drop the Transfer-Encoding header "
                "and save the decoded body",
            )
        size = int(size_text, 16)
        if size == 0:
            return bytes(body)
        chunk = data[position : position + size]
        if len(chunk) < size:
            raise ConfigError(
                "the chunked body ends in the middle of a chunk",
                file=name,
                fix="capture the whole request",
            )
        body += chunk
        position += size
        for ending in (b"\r\n", b"\n"):
            if data.startswith(ending, position):
                position += len(ending)
                break


def parse_json(data: bytes, *, name: str = "capture") -> Capture:
    """A JSON capture: ``method``, ``url``, ``headers`` and ``body`` or ``body_base64``.

    >>> parse_json(b'{"url": "/hooks/a", "headers": [["X-Id", "1"]], "body": "{}"}').body
    b'{}'
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=name, fix=_JSON_FIX) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            file=name,
            fix=_JSON_FIX,
        ) from None
    if not isinstance(document, dict):
        raise ConfigError("the JSON capture is not an object", file=name, fix=_JSON_FIX)

    method = _text(document, "method", name, default="POST").upper()
    if not _METHOD.fullmatch(method):
        raise ConfigError(f"method {method!r} is not an HTTP method", file=name, fix=_JSON_FIX)
    target = _text(document, "url", name, default="") or _text(document, "path", name, default="")
    headers = _json_headers(document.get("headers"), name)
    body, notes = _json_body(document, name)

    source = document.get("source")
    client = document.get("client")
    size = document.get("body_size")
    return Capture(
        method,
        target,
        headers,
        body,
        source=source if isinstance(source, str) and source else None,
        received_at=_moment(document.get("received_at"), notes),
        client=client if isinstance(client, str) and client else None,
        body_size=size if isinstance(size, int) and size > len(body) else None,
        notes=tuple(notes),
    )


def _text(document: Mapping[str, object], key: str, name: str, *, default: str) -> str:
    value = document.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f'"{key}" is not a string', file=name, fix=_JSON_FIX)
    return value


def _json_headers(raw: object, name: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        raise ConfigError('the JSON capture has no "headers"', file=name, fix=_JSON_FIX)
    pairs: list[tuple[object, object]] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((key, item) for item in values)
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, list) or len(item) != 2:
                raise ConfigError(
                    '"headers" as a list must hold [name, value] pairs',
                    file=name,
                    fix='write it like "headers": [["Webhook-Id", "msg_1"], ...]',
                )
            pairs.append((item[0], item[1]))
    else:
        raise ConfigError(
            '"headers" is neither an object nor a list of [name, value] pairs',
            file=name,
            fix=_JSON_FIX,
        )
    headers: list[tuple[str, str]] = []
    for key, value in pairs:
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise ConfigError(f"{key!r} is not a header name", file=name, fix=_JSON_FIX)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(
                f"the value of header {key!r} is not a string", file=name, fix=_JSON_FIX
            )
        headers.append((key, str(value)))
    return tuple(headers)


def _json_body(document: Mapping[str, object], name: str) -> tuple[bytes, list[str]]:
    notes: list[str] = []
    text = document.get("body")
    encoded = document.get("body_base64")
    if text is not None and encoded is not None:
        raise ConfigError(
            'the capture has both "body" and "body_base64"',
            file=name,
            fix="keep one: body for text, body_base64 for any bytes",
        )
    if text is not None and document.get("body_encoding") == "base64":
        encoded, text = text, None  # the shape `hookwise events show --json` prints
    if encoded is not None:
        if not isinstance(encoded, str):
            raise ConfigError('"body_base64" is not a string', file=name, fix=_JSON_FIX)
        try:
            return base64.b64decode(encoded.encode("ascii"), validate=True), notes
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise ConfigError(
                "the body is not valid base64",
                file=name,
                fix="encode the body bytes with standard base64 (A-Z a-z 0-9 + /, = padding)",
            ) from None
    if text is None:
        notes.append("the capture has no body; checked with an empty one")
        return b"", notes
    if not isinstance(text, str):
        raise ConfigError(
            '"body" is not a string',
            file=name,
            fix='give the body as the text that was sent ("body": "{\\"id\\": 1}"), not as '
            "JSON inside the JSON, or as body_base64",
        )
    return text.encode("utf-8", "surrogatepass"), notes


def _moment(value: object, notes: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if _plausible(value):
            return float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            if _plausible(moment.timestamp()):
                return moment.timestamp()
    notes.append(f"received_at {_clip(repr(value))} is not a time; ignored")
    return None


def _plausible(seconds: float) -> bool:
    """A UNIX time between 1970 and the year 5138 (what a signed timestamp can be)."""
    return 0 <= seconds < 1e11


# -- what the capture says about itself --------------------------------------------------


def source_name(capture: Capture) -> str | None:
    """The source the capture was for: the one a stored record names, else the
    ``NAME`` in its ``/hooks/NAME`` path.

    >>> source_name(Capture("POST", "https://h.example/hooks/stripe?x=1", (), b""))
    'stripe'
    """
    if capture.source:
        return capture.source
    path = capture.path
    at = path.rfind(HOOKS_PATH)
    if at < 0:
        return None
    name = path[at + len(HOOKS_PATH) :].rstrip("/")
    return name if name and "/" not in name else None


def captured_at(capture: Capture) -> float | None:
    """When the request was made, as far as the capture tells: when hookwise received
    it (stored records), else its ``Date`` header."""
    if capture.received_at is not None:
        return capture.received_at
    date = capture.header("date")
    if not date:
        return None
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    return seconds if _plausible(seconds) else None


# -- checking -----------------------------------------------------------------------------


def inbound(capture: Capture, source: Source, *, url: str | None = None) -> Inbound:
    """The request as the receiver would hand it to ``source``.

    The URL is ``url`` when given, else the source's ``public_url`` (each plus the
    captured query, as the receiver does), else the captured URL; a captured path
    is completed from the ``Host`` (or ``X-Forwarded-Host`` and ``-Proto``) header.
    """
    from hookwise.providers import Inbound

    headers = capture.header_map()
    query = capture.query
    base = url or source.public_url
    if base:
        own_query = urlsplit(base).query
        if own_query:
            full, query = base, own_query
        else:
            full = base + ("?" + query if query else "")
    elif "://" in capture.target:
        full = capture.target
    else:
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip() or "http"
        host = (
            headers.get("x-forwarded-host", "").split(",")[0].strip()
            or headers.get("host", "").strip()
            or "localhost"
        )
        full = f"{proto}://{host}{capture.target or '/'}"
    return Inbound(
        capture.body, headers, method=capture.method, url=full, query=query, client=capture.client
    )


async def verify_capture(
    capture: Capture, source: Source, *, now: float, url: str | None = None
) -> Verdict:
    """:func:`check`, after the I/O some providers need first (e.g. fetching the
    certificate a request names); for the others, no I/O at all."""
    if source.needs_prepare and capture.method == "POST":
        request = inbound(capture, source, url=url)
        try:
            await source.prepare(request)
        except VerificationError as exc:
            return _rejected(capture, source, request, now, exc, 401, ())
    return check(capture, source, now=now, url=url)


def check(capture: Capture, source: Source, *, now: float, url: str | None = None) -> Verdict:
    """What the receiver would answer ``capture`` at time ``now``, and why.

    Mirrors the receiver: a method other than POST is a handshake where the
    provider has one, else refused; ``allow_ips`` is checked when the capture
    names the sender's address; then the signature, the handshake, and the
    dedup key, type, ordering key and time that would be stored.
    """
    request = inbound(capture, source, url=url)
    notes = _capture_notes(capture, source)
    if source.allow_ips:
        refused = _refused_address(source, request)
        if refused is not None:
            return _verdict(
                capture,
                source,
                request,
                now,
                valid=False,
                status=403,
                reason="ip_not_allowed",
                detail=refused,
                notes=notes,
            )
        if request.client is None:
            notes.append(
                "allow_ips was not checked: the capture does not say which address sent it"
            )
    if capture.method != "POST" and capture.method not in source.handshake_methods:
        allowed = ", ".join(["POST", *sorted(source.handshake_methods)])
        return _verdict(
            capture,
            source,
            request,
            now,
            valid=False,
            status=405,
            reason="method_not_allowed",
            detail=f"hookwise answers {allowed} on /hooks/{source.name}, not {capture.method}",
            notes=notes,
        )
    try:
        if capture.method == "POST":
            source.verify_request(request, now)
        answer = source.handshake(request, now)
    except VerificationError as exc:
        return _rejected(capture, source, request, now, exc, 401, tuple(notes))
    if answer is None and capture.method != "POST":
        return _verdict(
            capture,
            source,
            request,
            now,
            valid=False,
            status=405,
            reason="method_not_allowed",
            detail=f"a {capture.method} request to this source is not a handshake it knows",
            notes=notes,
        )
    if answer is not None:
        return _verdict(
            capture,
            source,
            request,
            now,
            valid=True,
            status=answer.status,
            notes=notes,
            handshake=answer,
        )
    return _verdict(
        capture,
        source,
        request,
        now,
        valid=True,
        status=200,
        notes=notes,
        description=source.describe(request.body, request.headers, now),
    )


def _rejected(
    capture: Capture,
    source: Source,
    request: Inbound,
    now: float,
    error: VerificationError,
    status: int,
    notes: tuple[str, ...] | list[str],
) -> Verdict:
    found = list(notes)
    if error.offset is not None:
        found.append(_at_signed_time(source, request, now - error.offset))
    line_break = _without_final_line_break(source, request, now)
    if line_break:
        found.append(line_break)
    return _verdict(
        capture,
        source,
        request,
        now,
        valid=False,
        status=status,
        reason=error.reason,
        detail=error.detail,
        hints=source.diagnose(request, now, error),
        notes=found,
        offset=error.offset,
    )


def _verdict(
    capture: Capture,
    source: Source,
    request: Inbound,
    now: float,
    *,
    valid: bool,
    status: int,
    reason: str | None = None,
    detail: str = "",
    hints: tuple[str, ...] = (),
    notes: tuple[str, ...] | list[str] = (),
    offset: float | None = None,
    handshake: Handshake | None = None,
    description: Description | None = None,
) -> Verdict:
    return Verdict(
        source=source.name,
        provider=source.provider,
        valid=valid,
        status=status,
        method=capture.method,
        url=request.url,
        now=now,
        reason=reason,
        detail=detail,
        hints=hints,
        notes=tuple(notes),
        offset=offset,
        handshake=handshake,
        description=description,
    )


def _capture_notes(capture: Capture, source: Source) -> list[str]:
    notes = list(capture.notes)
    if source.insecure:
        notes.append(
            f"source {source.name!r} uses provider {source.provider!r}: nothing is verified, "
            "every request passes"
        )
    redacted = [name.lower() for name, value in capture.headers if value == REDACTED]
    if redacted:
        notes.append(
            f"{', '.join(dict.fromkeys(redacted))} "
            f"{'was' if len(redacted) == 1 else 'were'} redacted when the request was stored: "
            "if a credential or signature was there, this capture can't verify; capture the "
            "request before it reaches hookwise to check it"
        )
    if capture.body_size is not None:
        notes.append(
            f"the capture keeps only the first {len(capture.body)} of {capture.body_size} "
            "body bytes: a signature over the whole body can't match this part of it"
        )
    return notes


def _refused_address(source: Source, request: Inbound) -> str | None:
    if request.client is None:
        return None
    try:
        address = ipaddress.ip_address(request.client)
    except ValueError:
        return f"{request.client!r} is not an IP address, so it is not in allow_ips"
    if any(address in network for network in source.allow_ips):
        return None
    return f"{request.client} is not in allow_ips"


def _at_signed_time(source: Source, request: Inbound, signed: float) -> str:
    when = _iso(signed)
    try:
        source.verify_request(request, signed)
    except VerificationError as exc:
        return (
            f"even at the signed time ({when}) the request does not verify ({exc.reason}): "
            "the signature is wrong as well as its age"
        )
    except Exception:  # diagnosing must never fail in turn
        return f"could not check the request at its signed time ({when})"
    return (
        f"at the signed time ({when}) the request verifies: the signature is right, "
        "only its age is refused"
    )


def _without_final_line_break(source: Source, request: Inbound, now: float) -> str | None:
    body = request.body
    for ending in (b"\r\n", b"\n"):
        if body.endswith(ending):
            try:
                source.verify_request(request.replace(body=body[: -len(ending)]), now)
            except Exception:
                return None
            return (
                "without the line break at the end of the body, the request verifies: "
                "the capture (or the editor that saved it) added it; the sender did not "
                "send it"
            )
    return None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")
