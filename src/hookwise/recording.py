"""Recordings: stored deliveries written to files, read back, and sent again.

>>> records = load_recording("recordings/stripe.jsonl")
>>> request = resign(records[0], source, url="http://127.0.0.1:8000/hooks/stripe",
...                  now=time.time())

A recording is one delivery as hookwise stored it: its source and provider, dedup
key, type, times, headers (redacted when stored, in the order received) and the body
exactly as received. ``hookwise events export`` writes them, ``hookwise replay
--file`` sends them again, and :mod:`hookwise.testing` turns them into test inputs.

**The format** (version 1) is JSON, one object per delivery: ``--file F.jsonl``
holds one per line, ``--out DIR`` one pretty-printed ``.json`` file per delivery.
Keys always come in the same order, so a re-export diffs cleanly::

    {"format": "hookwise-recording", "version": 1,
     "source": "stripe", "provider": "stripe", "id": "evt_1", "type": "invoice.paid",
     "ordering_key": "in_1", "occurred_at": "2025-01-31T12:00:00Z",
     "received_at": "2025-01-31T12:00:01.250000Z", "intake": "push", "seq": 12,
     "method": "POST", "path": "/hooks/stripe",
     "headers": [["content-type", "application/json"], ["stripe-signature", "t=..."]],
     "redacted": [], "body_encoding": "utf-8", "body_sha256": "9f86d0...",
     "body": "{\\"id\\": \\"evt_1\\", ...}"}

``body`` is the body as text when it is UTF-8 (``body_encoding: "utf-8"``), else
base64 (``"base64"``). ``body_sha256`` is the digest of the body bytes: a body
changed by hand no longer matches it, and is treated as *edited* (its recorded
signature can't verify any more, so it is only sent re-signed). ``redacted`` names
the headers whose value is ``[redacted]`` (and ``body`` when a source's secret was
found in it and replaced): nothing secret is ever written. ``id`` is the dedup key.

**Re-signing** (:func:`resign`) keeps the body and every recorded header the
signature does not need, and replaces the provider's signature and timestamp
headers with a fresh signature made with a local secret, under the original
delivery id: the receiver stores the same dedup key, as the provider's redelivery
would be.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from .errors import ConfigError, VerificationError
from .events import Event, Intake
from .headers import REDACTED

if TYPE_CHECKING:
    import httpx

    from .config import SourceSettings
    from .providers import Source
    from .store import EventFilter, EventRecord, Store

__all__ = [
    "FORMAT",
    "VERSION",
    "Answer",
    "Outgoing",
    "Recorded",
    "Replayer",
    "as_recorded",
    "collect",
    "dumps",
    "file_name",
    "load_recording",
    "parse_document",
    "prepare",
    "resign",
    "send_all",
    "signer",
    "target_source",
    "unsendable",
    "write_directory",
    "write_jsonl",
]

FORMAT = "hookwise-recording"
"""The value of every recording's ``format`` key."""
VERSION = 1
"""The version of the format this hookwise writes (and the newest it reads)."""

HOOKS_PREFIX = "/hooks/"
_PAGE = 500
_NOT_SENT = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
"""Headers that describe one hop, not the delivery: the HTTP client sets its own."""
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_FIX = (
    "export it again with `hookwise events export`, or write it as the format in "
    "docs/local-development.md describes"
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded delivery, as read from a recording file.

    >>> record = Recorded("stripe", "evt_1", "invoice.paid", b'{"id": "evt_1"}')
    >>> record.event(handler="billing").json()["id"]
    'evt_1'

    ``id`` is the dedup key. ``body_edited`` is true when the body no longer matches
    the recorded digest (or none was recorded): its recorded signature can't verify.
    ``origin`` says where it was read from (``file.jsonl:3``), for messages.
    """

    source: str
    id: str
    type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    provider: str | None = None
    ordering_key: str | None = None
    occurred_at: float | None = None
    received_at: float = 0.0
    intake: Intake = "push"
    seq: int | None = None
    method: str | None = "POST"
    path: str | None = None
    redacted: tuple[str, ...] = ()
    body_edited: bool = False
    origin: str = ""

    @property
    def body_redacted(self) -> bool:
        """Whether a secret in the body was replaced by ``[redacted]`` on export."""
        return "body" in self.redacted

    def event(self, *, handler: str = "", attempt: int = 1) -> Event:
        """The :class:`~hookwise.Event` a handler would be given for this delivery."""
        return Event(
            id=self.id,
            source=self.source,
            type=self.type,
            body=self.body,
            headers=dict(self.headers),
            ordering_key=self.ordering_key,
            occurred_at=self.occurred_at,
            received_at=self.received_at,
            intake=self.intake,
            attempt=attempt,
            seq=self.seq or 0,
            handler=handler,
        )

    def to_json(self) -> dict[str, object]:
        """The recording document (format version 1), keys in their fixed order."""
        try:
            text: str | None = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "format": FORMAT,
            "version": VERSION,
            "source": self.source,
            "provider": self.provider,
            "id": self.id,
            "type": self.type,
            "ordering_key": self.ordering_key,
            "occurred_at": _iso(self.occurred_at),
            "received_at": _iso(self.received_at),
            "intake": self.intake,
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "headers": [[name, value] for name, value in self.headers],
            "redacted": list(self.redacted),
            "body_encoding": "utf-8" if text is not None else "base64",
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
            "body": text if text is not None else base64.b64encode(self.body).decode("ascii"),
        }


# -- export -----------------------------------------------------------------------------


def as_recorded(
    record: EventRecord, *, provider: str | None = None, secrets: Collection[str] = ()
) -> Recorded:
    """A stored event as a recording.

    Headers were redacted when the event was stored; ``secrets`` (the source's, when
    known) are looked for once more, in the headers and the body, and replaced by
    ``[redacted]``, so a secret configured after the event arrived is not written
    either.
    """
    secrets = [secret for secret in secrets if secret]
    headers: list[tuple[str, str]] = []
    redacted: list[str] = []
    for name, value in record.headers:
        if value != REDACTED and any(secret in value for secret in secrets):
            value = REDACTED
        if value == REDACTED:
            redacted.append(name)
        headers.append((name, value))
    body = record.body
    for secret in secrets:
        encoded = secret.encode("utf-8")
        if encoded in body:
            body = body.replace(encoded, REDACTED.encode())
            if "body" not in redacted:
                redacted.append("body")
    push = record.intake == "push"
    return Recorded(
        source=record.source,
        id=record.dedup_key,
        type=record.type,
        body=body,
        headers=tuple(headers),
        provider=provider,
        ordering_key=record.ordering_key,
        occurred_at=record.occurred_at,
        received_at=record.received_at,
        intake=record.intake,
        seq=record.seq,
        method="POST" if push else None,
        path=HOOKS_PREFIX + record.source if push else None,
        redacted=tuple(redacted),
    )


async def collect(store: Store, flt: EventFilter, *, limit: int | None = None) -> list[EventRecord]:
    """The events ``flt`` matches, oldest first: all of them, or the newest ``limit``."""
    found: list[EventRecord] = []
    page_size = min(limit, _PAGE) if limit is not None else _PAGE
    flt = replace(flt, limit=page_size)
    while limit is None or len(found) < limit:
        page = await store.list_events(flt)
        found.extend(page)
        if len(page) < page_size:
            break
        flt = replace(flt, before_seq=page[-1].seq)
    if limit is not None:
        found = found[:limit]
    found.reverse()
    return found


def dumps(record: Recorded, *, pretty: bool = False) -> str:
    """One recording as JSON text: one line, or indented for a file of its own."""
    document = record.to_json()
    if pretty:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(document, ensure_ascii=False, separators=(", ", ": "))


def file_name(record: Recorded) -> str:
    """The file a recording gets in an export directory: its seq (so the directory
    lists in arrival order), source and type.

    >>> file_name(Recorded("stripe", "evt_1", "invoice.paid", b"", seq=12))
    '000012-stripe-invoice.paid.json'
    """
    kind = _UNSAFE_NAME.sub("_", record.type).strip("._")[:60] or "event"
    source = _UNSAFE_NAME.sub("_", record.source)[:40]
    number = f"{record.seq:06d}" if record.seq is not None else _digest(record.body)[:12]
    return f"{number}-{source}-{kind}.json"


def write_jsonl(records: Iterable[Recorded], path: Path) -> int:
    """Write ``records`` to ``path``, one per line (the file is replaced); how many."""
    lines = [dumps(record) + "\n" for record in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), "utf-8")
    return len(lines)


def write_directory(records: Iterable[Recorded], directory: Path) -> list[Path]:
    """Write one pretty-printed file per recording into ``directory`` (created when
    missing; a file of the same name is replaced). Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for record in records:
        path = directory / file_name(record)
        path.write_text(dumps(record, pretty=True), "utf-8")
        written.append(path)
    return written


# -- import -----------------------------------------------------------------------------


def load_recording(path: str | Path) -> list[Recorded]:
    """Read recordings: a ``.jsonl`` file (one per line), a ``.json`` file (one), or a
    directory of such files (in file-name order).

    >>> [record.type for record in load_recording("tests/recordings/stripe.jsonl")]
    ['invoice.paid', 'customer.subscription.updated']

    Raises :class:`~hookwise.ConfigError` naming the file (and line) and the fix for
    anything that is not a recording this version of hookwise reads.
    """
    location = Path(path)
    if location.is_dir():
        files = sorted(
            item
            for item in location.iterdir()
            if item.is_file() and item.suffix in (".json", ".jsonl")
        )
        if not files:
            raise ConfigError(
                "the directory holds no recordings (no .json or .jsonl files)",
                file=str(location),
                fix="pass the directory `hookwise events export --out` wrote, or a .jsonl file",
            )
        return [record for item in files for record in _load_file(item)]
    return _load_file(location)


def _load_file(path: Path) -> list[Recorded]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such recording file",
            file=str(path),
            fix="check the path; `hookwise events export --file F.jsonl` writes one",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"can't read it: {exc.strerror}", file=str(path), fix="check the path"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=str(path), fix=_FIX) from None
    if path.suffix != ".jsonl":
        try:
            whole = json.loads(text)
        except ValueError:
            if path.suffix == ".json":
                raise ConfigError(
                    "not valid JSON (a .json recording holds one JSON object)",
                    file=str(path),
                    fix=_FIX,
                ) from None
        else:
            if isinstance(whole, list):
                return [
                    parse_document(item, origin=f"{path}[{index}]")
                    for index, item in enumerate(whole)
                ]
            return [parse_document(whole, origin=str(path))]
    records: list[Recorded] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        records.append(parse_document(_json(line, origin), origin=origin))
    return records


def _json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=origin, fix=_FIX) from None


def parse_document(document: object, *, origin: str = "recording") -> Recorded:
    """A recording from its JSON document; a :class:`~hookwise.ConfigError` naming
    ``origin`` and the key when it is not one.

    >>> parse_document({"format": "hookwise-recording", "version": 1, "source": "a",
    ...     "id": "1", "type": "t", "headers": [], "body_encoding": "utf-8",
    ...     "body": "{}", "body_sha256": "44136fa3..."}).body_edited
    True
    """
    if not isinstance(document, dict):
        raise ConfigError("a recording is a JSON object", file=origin, fix=_FIX)
    if document.get("format") != FORMAT:
        raise ConfigError(
            f'not a hookwise recording (its "format" is {document.get("format")!r}, '
            f"not {FORMAT!r})",
            file=origin,
            fix=_FIX,
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f'"version" {version!r} is not a version number', file=origin, fix=_FIX)
    if version > VERSION:
        raise ConfigError(
            f"written in recording format version {version}; this hookwise reads up to {VERSION}",
            file=origin,
            fix="upgrade hookwise (pip install -U hookwise)",
        )
    body = _body(document, origin)
    digest = document.get("body_sha256")
    if digest is not None and not isinstance(digest, str):
        raise ConfigError('"body_sha256" is not a string', file=origin, key="body_sha256", fix=_FIX)
    intake = _text(document, "intake", origin, default="push")
    if intake not in get_args(Intake):
        raise ConfigError(
            f'"intake" {intake!r} is not one of push, pull, replay',
            file=origin,
            key="intake",
            fix=_FIX,
        )
    seq = document.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise ConfigError('"seq" is not a whole number', file=origin, key="seq", fix=_FIX)
    redacted = document.get("redacted", [])
    if not isinstance(redacted, list) or not all(isinstance(item, str) for item in redacted):
        raise ConfigError(
            '"redacted" is not a list of names', file=origin, key="redacted", fix=_FIX
        )
    return Recorded(
        source=_required(document, "source", origin),
        id=_required(document, "id", origin),
        type=_required(document, "type", origin),
        body=body,
        headers=_headers(document.get("headers"), origin),
        provider=_optional(document, "provider", origin),
        ordering_key=_optional(document, "ordering_key", origin),
        occurred_at=_moment(document, "occurred_at", origin),
        received_at=_moment(document, "received_at", origin) or 0.0,
        intake=intake,  # type: ignore[arg-type]  # checked against Intake above
        seq=seq,
        method=_optional(document, "method", origin),
        path=_optional(document, "path", origin),
        redacted=tuple(redacted),
        body_edited=digest is None or digest.lower() != _digest(body),
        origin=origin,
    )


def _required(document: Mapping[str, object], key: str, origin: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f'"{key}" is missing or not a non-empty string', file=origin, key=key, fix=_FIX
        )
    return value


def _optional(document: Mapping[str, object], key: str, origin: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f'"{key}" is not a string', file=origin, key=key, fix=_FIX)
    return value


def _text(document: Mapping[str, object], key: str, origin: str, *, default: str) -> str:
    value = _optional(document, key, origin)
    return default if value is None else value


def _moment(document: Mapping[str, object], key: str, origin: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise ConfigError(
        f'"{key}" {value!r} is not a time',
        file=origin,
        key=key,
        fix="write it as ISO 8601 (2025-01-31T12:00:00Z) or UNIX seconds",
    )


def _headers(raw: object, origin: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = list(raw.items())
    if isinstance(raw, list):
        pairs: list[tuple[str, str]] = []
        for item in raw:
            if (
                isinstance(item, list | tuple)
                and len(item) == 2
                and isinstance(item[0], str)
                and isinstance(item[1], str)
                and item[0]
            ):
                pairs.append((item[0].lower(), item[1]))
                continue
            raise ConfigError(
                f"header {item!r} is not a [name, value] pair of strings",
                file=origin,
                key="headers",
                fix=_FIX,
            )
        return tuple(pairs)
    raise ConfigError(
        '"headers" is not a list of [name, value] pairs', file=origin, key="headers", fix=_FIX
    )


def _body(document: Mapping[str, object], origin: str) -> bytes:
    text = document.get("body")
    if not isinstance(text, str):
        raise ConfigError('"body" is missing or not a string', file=origin, key="body", fix=_FIX)
    encoding = document.get("body_encoding", "utf-8")
    if encoding == "utf-8":
        return text.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                '"body" is not valid base64, as "body_encoding" says',
                file=origin,
                key="body",
                fix='write the bytes in base64, or the text with "body_encoding": "utf-8"',
            ) from None
    raise ConfigError(
        f'"body_encoding" {encoding!r} is neither "utf-8" nor "base64"',
        file=origin,
        key="body_encoding",
        fix=_FIX,
    )


# -- replay -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request to send: a recording, as recorded or re-signed."""

    recorded: Recorded
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    resigned: bool = False
    notes: tuple[str, ...] = ()
    """What differs from the recording, or may surprise (a header left out, a body
    the provider's scheme re-signs, a dedup key that changes)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answered one :class:`Outgoing` request."""

    request: Outgoing
    status: int
    latency_ms: float
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def target_source(url: str) -> str | None:
    """The source name a ``.../hooks/NAME`` URL posts to, else None.

    >>> target_source("http://127.0.0.1:8000/hooks/stripe?x=1")
    'stripe'
    """
    path = url.split("?", 1)[0].split("#", 1)[0]
    marker = path.rfind(HOOKS_PREFIX)
    if marker < 0:
        return None
    name = path[marker + len(HOOKS_PREFIX) :].rstrip("/")
    return name if name and "/" not in name else None


def signer(settings: SourceSettings, url: str) -> Source:
    """The source that re-signs requests posted to ``url``: built from ``settings``,
    signing ``url`` (without its query) as its public URL unless the settings give one."""
    from .providers import build_source

    source = build_source(settings)
    if source.public_url is None:
        source.public_url = url.split("?", 1)[0]
    return source


def _kept(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in _NOT_SENT and value != REDACTED
    ]


def prepare(record: Recorded, *, url: str) -> Outgoing:
    """The request exactly as recorded: the body and headers, less the headers of one
    hop (``Host``, ``Content-Length``...) and those redacted when stored."""
    notes: list[str] = []
    left_out = [name for name in record.redacted if name != "body"]
    if left_out:
        notes.append(
            f"{', '.join(left_out)} redacted when stored, so not sent; --resign supplies a "
            "fresh credential"
        )
    return Outgoing(
        recorded=record,
        method=record.method or "POST",
        url=url,
        headers=tuple(_kept(record.headers)),
        body=record.body,
        notes=tuple(notes),
    )


_PROBE_ID = "hwprobe7f3a9c1e"


def resign(record: Recorded, source: Source, *, url: str, now: float) -> Outgoing:
    """The recorded request with a fresh signature by ``source`` (built with the local
    secret, e.g. by :func:`signer`), made at ``now``.

    The body and every recorded header the signature does not need are kept; the
    signature, timestamp and other signed headers are ``source``'s. The delivery id
    is the recorded one, so the receiver stores the recorded dedup key. Providers
    that sign inside the body (Mailgun, Microsoft Graph) change the body; a note
    says so, as it says when the dedup key comes out different.
    """
    recorded = dict(_kept(record.headers))
    delivery_id = _delivery_id(record, source, recorded, now)
    signed = source.sign_request(record.body, now=now, delivery_id=delivery_id)
    fresh = {name.lower(): value for name, value in signed.headers.items()}
    merged = {**recorded, **fresh}
    target = url + (("&" if "?" in url else "?") + signed.query if signed.query else "")
    check = _Checker(source, signed.body, signed.method, target, signed.query, now)
    if check.possible:
        # Keep what the provider sent wherever the fresh signature does not depend on
        # it (an event name, a shop domain), so the handler sees the recorded headers.
        for name, value in fresh.items():
            original = recorded.get(name)
            if original is not None and original != value:
                trial = {**merged, name: original}
                if check.error(trial) is None:
                    merged = trial
    notes: list[str] = []
    problem = check.error(merged) if check.possible else None
    if problem is not None:
        notes.append(f"the receiver will likely refuse it: {problem}")
    if signed.body != record.body:
        notes.append(
            f"provider {source.provider!r} signs inside the body: the body was re-signed "
            "and is not byte-for-byte the recorded one"
        )
    described = source.describe(signed.body, merged, now)
    if described.dedup_key != record.id:
        notes.append(f"stored under the dedup key {described.dedup_key!r}, not {record.id!r}")
    return Outgoing(
        recorded=record,
        method=signed.method,
        url=target,
        headers=tuple(merged.items()),
        body=signed.body,
        resigned=True,
        notes=tuple(notes),
    )


def _delivery_id(record: Recorded, source: Source, recorded: Mapping[str, str], now: float) -> str:
    """The recorded delivery id: the value of the header the provider carries it in
    (found by signing once with a marker id), else the dedup key."""
    try:
        probe = source.sign_request(record.body, now=now, delivery_id=_PROBE_ID)
    except ValueError:
        return record.id
    for name, value in probe.headers.items():
        if _PROBE_ID in value:
            original = recorded.get(name.lower())
            if original:
                return original
    return record.id


class _Checker:
    """Whether headers make a valid request, the way the receiver would check it."""

    def __init__(
        self, source: Source, body: bytes, method: str, url: str, query: str, now: float
    ) -> None:
        self.source = source
        self.body = body
        self.method = method
        self.url = (source.public_url or url.split("?", 1)[0]) + ("?" + query if query else "")
        self.query = query
        self.now = now
        # A provider that fetches something (a certificate) before verifying can't be
        # checked without I/O; its fresh headers are all kept.
        self.possible = not source.needs_prepare

    def error(self, headers: Mapping[str, str]) -> VerificationError | None:
        """Why ``headers`` would be refused; None when they verify."""
        from .providers import Inbound

        request = Inbound(self.body, headers, method=self.method, url=self.url, query=self.query)
        try:
            self.source.verify_request(request, self.now)
        except VerificationError as exc:
            return exc
        return None


class Replayer:
    """Turns recordings into the requests ``hookwise replay --file`` sends.

    >>> replayer = Replayer(to="http://127.0.0.1:8000/hooks/{source}", resign=True,
    ...                     sources=settings.sources)
    >>> replayer.check(records)            # every problem raised before anything is sent
    >>> request = replayer.request(records[0], now=time.time())

    ``to`` is where to post; ``{source}`` in it stands for each recording's source.
    With ``resign``, the source a request goes to (``/hooks/NAME`` in the URL when
    ``sources`` has it, else the recorded source) signs it with its configured secret,
    or with ``secret`` when given (then a source unknown to ``sources`` is built from
    the recorded provider).
    """

    def __init__(
        self,
        *,
        to: str,
        resign: bool = False,
        sources: Mapping[str, SourceSettings] | None = None,
        secret: str | None = None,
        config: str | None = None,
    ) -> None:
        self.to = to
        self.resign = resign
        self.sources = dict(sources or {})
        self.secret = secret
        self.config = config or "the config"
        self._signers: dict[tuple[str, str], Source] = {}

    def url(self, record: Recorded) -> str:
        """Where ``record`` is posted."""
        return self.to.replace("{source}", record.source)

    def target(self, record: Recorded) -> str:
        """The name of the source that takes ``record`` (and signs it when re-signing)."""
        named = target_source(self.url(record))
        return named if named is not None and named in self.sources else record.source

    def check(self, records: Sequence[Recorded]) -> None:
        """Raise :class:`~hookwise.ConfigError` for the first recording that can't be
        sent as asked, before anything is sent."""
        if not records:
            raise ConfigError(
                "the recording holds no deliveries",
                fix="export some with `hookwise events export --file F.jsonl`",
            )
        if not self.resign:
            edited = unsendable(records)
            if edited:
                shown = ", ".join(record.origin or record.id for record in edited[:5])
                more = f" and {len(edited) - 5} more" if len(edited) > 5 else ""
                why = (
                    "had a secret redacted from it when exported"
                    if all(record.body_redacted for record in edited)
                    else "differs from what was received (edited, written by hand, or a secret "
                    "redacted from it)"
                )
                raise ConfigError(
                    f"the body of {shown}{more} {why}: its recorded signature can't verify",
                    fix="pass --resign (with --secret S or -c FILE) to sign it afresh",
                )
            return
        for record in records:
            self._signer(record)

    def request(self, record: Recorded, *, now: float) -> Outgoing:
        """The request for ``record``: as recorded, or re-signed at ``now``."""
        url = self.url(record)
        if not self.resign:
            return prepare(record, url=url)
        return resign(record, self._signer(record), url=url, now=now)

    def _signer(self, record: Recorded) -> Source:
        url = self.url(record).split("?", 1)[0]
        name = self.target(record)
        cached = self._signers.get((name, url))
        if cached is not None:
            return cached
        settings = self._settings(record, name)
        try:
            source = signer(settings, url)
        except ConfigError as exc:
            raise ConfigError(
                f"can't re-sign {record.origin or record.id} as source {name!r} "
                f"(provider {settings.provider!r}): {exc.problem}",
                fix=exc.fix or f"pass -c FILE with a [sources.{name}] that is complete",
            ) from None
        self._signers[(name, url)] = source
        return source

    def _settings(self, record: Recorded, name: str) -> SourceSettings:
        from .config import SourceSettings

        configured = self.sources.get(name)
        where = record.origin or record.id
        if configured is not None:
            if record.provider is not None and configured.provider != record.provider:
                raise ConfigError(
                    f"{where} was recorded from a {record.provider!r} source, and source "
                    f"{name!r} in {self.config} is provider {configured.provider!r}",
                    fix=f"send it to a {record.provider!r} source: --to "
                    "http://HOST:PORT/hooks/NAME",
                )
            if self.secret is not None:
                return replace(configured, secrets=(self.secret,))
            if not configured.secrets and configured.provider != "none":
                raise ConfigError(
                    f"source {name!r} in {self.config} has no secret to re-sign {where} with "
                    "(is the environment variable it names exported?)",
                    fix="export the variable, or pass --secret S",
                )
            return configured
        if self.secret is None:
            raise ConfigError(
                f"no secret to re-sign {where} (source {name!r}) with",
                fix=f"pass --secret S, or -c FILE with a [sources.{name}] and its secret",
            )
        if record.provider is None:
            raise ConfigError(
                f"{where} does not say which provider signed it, so it can't be re-signed "
                "with --secret alone",
                fix=f'pass -c FILE with a [sources.{name}], or add "provider" to the recording',
            )
        return SourceSettings(name=name, provider=record.provider, secrets=(self.secret,))


async def send_all(
    requests: Iterable[Outgoing], client: httpx.AsyncClient
) -> AsyncIterator[Answer]:
    """Send each request in turn with ``client``, yielding each answer as it comes.

    ``httpx.HTTPError`` (nothing listening, a timeout) propagates to the caller.
    """
    for request in requests:
        started = time.perf_counter()
        response = await client.request(
            request.method, request.url, content=request.body, headers=list(request.headers)
        )
        latency = (time.perf_counter() - started) * 1000
        yield Answer(request, response.status_code, round(latency, 1), response.text)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    text = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def unsendable(records: Sequence[Recorded]) -> list[Recorded]:
    """The recordings whose recorded signature can't verify: the body was edited, or a
    secret in it was replaced by ``[redacted]`` when it was exported."""
    return [record for record in records if record.body_edited or record.body_redacted]
