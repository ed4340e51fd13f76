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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from hookwise.errors import ConfigError

__all__ = [
    "NOT_JSON",
    "Spec",
    "extract",
    "parse_body",
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
    node = document
    for segment in spec.path:
        if isinstance(node, dict):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            node = node[index] if index < len(node) else None
        else:
            return None
    return _scalar(node)


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
