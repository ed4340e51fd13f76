"""Event fields no ``header:``/``body:`` spec can express, computed from the parsed body.

Some providers' natural id, type, ordering key or time is a composite (Zoom has no
delivery id), a number to be named (Discord's interaction types), a first match among
several places (Slack's channel), or lives in a form-encoded body. Their sources keep
an :class:`Extraction` for what the settings give and a :class:`Computed` for the
rest: a setting always wins over the provider's computed default.

>>> computed = Computed(type=lambda document, headers: "ping")
>>> computed.describe(Extraction(), {"id": 1}, b"{}", {}).type
'ping'
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl

from hookwise.providers._base import UNKNOWN_TYPE, Description, Extraction, body_digest
from hookwise.providers._extract import Spec, extract, lookup, to_timestamp

__all__ = ["Computed", "Field", "Moment", "first_text", "form_fields", "node_at", "text_at"]

log = logging.getLogger("hookwise.providers")

Field = Callable[[object, Mapping[str, str]], str | None]
"""Computes one text field from the parsed body and the (lowercase) headers."""
Moment = Callable[[object, Mapping[str, str]], float | None]
"""Computes the time an event occurred, in UNIX seconds."""

_T = TypeVar("_T")
_MAX_FORM_FIELDS = 1000


@dataclass(frozen=True, slots=True)
class Computed:
    """The provider's computed defaults, used for each field the settings leave unset."""

    dedup: Field | None = None
    type: Field | None = None
    ordering_key: Field | None = None
    occurred_at: Moment | None = None

    def describe(
        self, extraction: Extraction, document: object, body: bytes, headers: Mapping[str, str]
    ) -> Description:
        """The fields of one delivery whose body parsed as ``document``. Never raises."""
        dedup = _pick(extraction.dedup, self.dedup, document, headers)
        event_type = _pick(extraction.type, self.type, document, headers)
        ordering_key = _pick(extraction.ordering_key, self.ordering_key, document, headers)
        occurred_at: float | None = None
        if extraction.occurred_at is not None:
            moment = extract(extraction.occurred_at, headers, document)
            occurred_at = to_timestamp(moment) if moment is not None else None
        elif self.occurred_at is not None:
            occurred_at = _safely(self.occurred_at, document, headers)
            if occurred_at is not None and not math.isfinite(occurred_at):
                occurred_at = None
        return Description(
            dedup_key=dedup or body_digest(body),
            type=event_type or UNKNOWN_TYPE,
            ordering_key=ordering_key,
            occurred_at=occurred_at,
        )


def text_at(document: object, path: str) -> str | None:
    """The scalar at a dotted ``path`` of ``document`` as text, as a ``body:`` spec reads it.

    >>> text_at({"event": {"channel": "C1"}}, "event.channel")
    'C1'
    """
    parts = tuple(path.split("."))
    return extract(Spec("body", path, parts), {}, document)


def first_text(document: object, *paths: str) -> str | None:
    """The first of ``paths`` that holds a scalar, as text."""
    for path in paths:
        value = text_at(document, path)
        if value is not None:
            return value
    return None


def node_at(document: object, path: str) -> object:
    """The node (any JSON value) at a dotted ``path``, or ``None``."""
    return lookup(tuple(path.split(".")), document)


def form_fields(body: bytes) -> dict[str, str] | None:
    """The fields of an ``application/x-www-form-urlencoded`` body (first value of each
    name), or ``None`` when it is not one. Never raises.

    >>> form_fields(b"command=%2Fdeploy&text=prod")
    {'command': '/deploy', 'text': 'prod'}
    """
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _pick(
    spec: Spec | None, compute: Field | None, document: object, headers: Mapping[str, str]
) -> str | None:
    if spec is not None:
        return extract(spec, headers, document)
    if compute is not None:
        return _safely(compute, document, headers)
    return None


def _safely(
    compute: Callable[[object, Mapping[str, str]], _T | None],
    document: object,
    headers: Mapping[str, str],
) -> _T | None:
    try:
        return compute(document, headers)
    except Exception:  # describe() never raises: a field it can't compute is left out
        log.debug("computing an event field failed", exc_info=True)
        return None
