"""Where a source finds an event's id, type, ordering key and time: header, body or constant.

Specs are written in ``hookwise.toml`` as ``header:NAME``, ``body:dotted.path`` (list
indexes allowed, ``data.items.0.id``) or ``const:VALUE``; a bare path means a body path.
They are parsed once when the source is built, so a typo is a :class:`ConfigError`
at start-up, and extraction on the request path is a few dictionary look-ups.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from hookwise.errors import ConfigError

__all__ = [
    "NOT_JSON",
    "Spec",
    "extract",
    "lookup",
    "parse_body",
    "parse_body_fast",
    "parse_spec",
    "to_timestamp",
]

SpecKind = Literal["header", "body", "const"]

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON = _NotJson()
"""What :func:`parse_body` returns for a body that is not JSON (``None`` is JSON ``null``)."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One parsed place to look.

    >>> parse_spec("body:data.object.id", key="sources.acme.dedup_key")
    Spec(kind='body', value='data.object.id', path=('data', 'object', 'id'))
    """

    kind: SpecKind
    value: str
    """The lowercase header name, the dotted path, or the constant."""
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse_spec(text: str, *, key: str, allow_const: bool = False) -> Spec:
    """Parse ``header:NAME``, ``body:path``, ``const:VALUE`` (if allowed) or a bare body path.

    >>> parse_spec("header:X-Acme-Delivery", key="sources.acme.dedup_key")
    Spec(kind='header', value='x-acme-delivery', path=())

    Raises :class:`ConfigError` naming ``key`` when the spec can't be used.
    """
    kinds = "header:NAME, body:dotted.path" + (" or const:VALUE" if allow_const else "")
    kind, colon, rest = text.partition(":")
    if not colon:
        kind, rest = "body", text
    if kind == "header":
        name = rest.strip()
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(
                f"{text!r} does not name a header", key=key, fix='write it like "header:X-Event-Id"'
            )
        return Spec("header", name.lower())
    if kind == "body":
        path = tuple(rest.strip().split("."))
        if not all(path):
            raise ConfigError(
                f"{text!r} is not a dotted path into the JSON body",
                key=key,
                fix='write it like "body:data.object.id" (list indexes as numbers: "items.0.id")',
            )
        return Spec("body", ".".join(path), path)
    if kind == "const" and allow_const:
        if not rest:
            raise ConfigError(f"{text!r} has no value", key=key, fix='write it like "const:order"')
        return Spec("const", rest)
    raise ConfigError(f"{text!r} is not a place hookwise knows", key=key, fix=f"use {kinds}")


def parse_body(body: bytes) -> object:
    """The body as JSON, or :data:`NOT_JSON` when it is not (never raises).

    >>> parse_body(b'{"type": "ping"}')
    {'type': 'ping'}
    """
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and integers too long to convert;
        # RecursionError covers hostile nesting.
        return NOT_JSON


def parse_body_fast(body: bytes) -> tuple[object, bool]:
    """:func:`parse_body` by ``orjson`` (a dependency, with :mod:`json` as the fallback), about
    five times faster on a typical event, and whether the document may be inexact.

    >>> parse_body_fast(b'{"type": "ping"}')
    ({'type': 'ping'}, True)

    What orjson refuses (NaN, UTF-16, lone surrogates...) is parsed by :mod:`json`.
    What it accepts it reads as :mod:`json` does, except integers beyond 64 bits,
    which it turns into floats: when the flag is true, a float in the document may
    stand for such an integer, and the caller must parse again with
    :func:`parse_body` before using one. (orjson also reads documents nested 1,000
    to 1,024 deep, which :mod:`json` gives up on.)
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(body), True
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            pass
    return parse_body(body), False


_fast_loads: Callable[[bytes], object] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # a platform without an orjson wheel: json reads the same documents
    _fast_loads = None


def extract(spec: Spec, headers: Mapping[str, str], document: object) -> str | None:
    """The value ``spec`` points at, as a non-empty string, or ``None``.

    >>> extract(parse_spec("items.0.id", key="k"), {}, {"items": [{"id": 7}]})
    '7'

    Numbers and booleans are written as in JSON; objects, lists and ``null`` give ``None``.
    """
    if spec.kind == "header":
        text = headers.get(spec.value, "").strip()
        return text or None
    if spec.kind == "const":
        return spec.value
    return _scalar(lookup(spec.path, document))


def lookup(path: tuple[str, ...], document: object) -> object:
    """The node at a body ``path`` (list indexes as decimal segments), or ``None``.

    >>> lookup(("items", "0", "id"), {"items": [{"id": 7}]})
    7
    """
    node = document
    for segment in path:
        if isinstance(node, dict):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            node = node[index] if index < len(node) else None
        else:
            return None
    return node


def to_timestamp(value: str) -> float | None:
    """UNIX seconds from a number or an ISO-8601 time; ``None`` when it is neither.

    >>> to_timestamp("2024-01-01T00:00:00Z")
    1704067200.0
    """
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _scalar(node: object) -> str | None:
    if isinstance(node, str):
        return node or None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):
        return repr(node) if math.isfinite(node) else None
    return None
