"""Mailgun webhooks: a signature carried in the body, as pure functions of bytes and ``now``.

Mailgun signs ``{timestamp}{token}`` (no separator) with HMAC-SHA256 keyed by the
account's HTTP webhook signing key and writes the hex digest next to them, in the
body: a ``signature`` object in JSON webhooks, top-level ``timestamp``, ``token`` and
``signature`` fields in form-encoded posts (legacy webhooks, routes). **The rest of
the body is not signed**: a signature proves Mailgun made the token at that time,
nothing about the event next to it. Freshness (the timestamp) and refusing a token
used again for another event (see ``hookwise.providers.mailgun``) are what keep a
captured signature from vouching for forged events.

>>> sign(b"key-mailgun-signing", "1770920772", "e0b5477167110d68991efc6b9f89f0a11066af27834600e123")
'40f728461859066ef27e4ee5d2cd0c78811407b319b11eb66ff0246d144e5489'

Subaccount events also carry ``parent-signature``, made with the primary account's
key over the same bytes; either signature matching a configured key is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from hookwise.errors import VerificationError
from hookwise.signatures._common import (
    UNIX_SECONDS,
    HmacKey,
    any_hex_match,
    as_bytes,
    check_timestamp,
)

__all__ = [
    "NOT_PARSED",
    "SignatureBlock",
    "Verifier",
    "is_json",
    "parse_document",
    "read_block",
    "sign",
]

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_MAX_FORM_FIELDS = 1000


class _NotParsed:
    def __repr__(self) -> str:
        return "NOT_PARSED"


NOT_PARSED = _NotParsed()
"""What :func:`parse_document` returns for a body it can't read."""


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """The signed fields of one delivery, as found in its body (``None`` when absent)."""

    timestamp: str | None
    token: str | None
    signature: str | None
    parent_signature: str | None = None
    location: str = "signature object"
    """Where they were read, for messages: "signature object" or "form fields"."""


def is_json(body: bytes) -> bool:
    """Whether ``body`` is a JSON object (what Mailgun's webhooks send) rather than a form."""
    return body.lstrip()[:1] == b"{"


def parse_document(body: bytes, content_type: str | None = None) -> object:
    """The body as JSON, or its form fields as a dict (``application/x-www-form-urlencoded``
    or ``multipart/form-data``); :data:`NOT_PARSED` when it is neither. Never raises.

    >>> parse_document(b"timestamp=1&token=abc&signature=00")
    {'timestamp': '1', 'token': 'abc', 'signature': '00'}
    """
    if is_json(body):
        try:
            document: object = json.loads(body)
        except (ValueError, RecursionError):
            return NOT_PARSED
        return document
    if content_type and content_type.strip().lower().startswith("multipart/form-data"):
        return _multipart_fields(body, content_type)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return NOT_PARSED
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def read_block(document: object) -> SignatureBlock:
    """The timestamp, token and signatures of a parsed body (see :func:`parse_document`)."""
    if not isinstance(document, dict):
        return SignatureBlock(None, None, None)
    block = document.get("signature")
    if isinstance(block, dict):
        return SignatureBlock(
            _text(block.get("timestamp")),
            _text(block.get("token")),
            _text(block.get("signature")),
            _text(block.get("parent-signature")),
        )
    return SignatureBlock(
        _text(document.get("timestamp")),
        _text(document.get("token")),
        _text(block),
        _text(document.get("parent-signature")),
        location="form fields",
    )


def sign(key: bytes, timestamp: str, token: str) -> str:
    """The hex signature Mailgun writes for ``timestamp`` and ``token``."""
    return HmacKey(key, "sha256").digest(as_bytes(timestamp + token)).hex()


class Verifier:
    """Checks signature blocks against a fixed set of signing keys.

    >>> Verifier([b"key-mailgun-signing"]).verify(read_block(document), now=clock.now(),
    ...                                           tolerance=300)

    Raises only :class:`~hookwise.errors.VerificationError`: ``missing_field`` (no
    timestamp, token or signature in the body), ``malformed_field``,
    ``timestamp_too_old``, ``timestamp_too_new`` or ``no_matching_signature``.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = tuple(HmacKey(key, "sha256") for key in keys)

    def verify(self, block: SignatureBlock, *, now: float, tolerance: float) -> None:
        """Return if a signature in ``block`` matches one of the keys; raise otherwise."""
        where = block.location
        for name, value in (
            ("timestamp", block.timestamp),
            ("token", block.token),
            ("signature", block.signature),
        ):
            if not value:
                raise VerificationError("missing_field", f"the body has no {name} in its {where}")
        timestamp, token = block.timestamp or "", block.token or ""
        if not UNIX_SECONDS.fullmatch(timestamp):
            raise VerificationError(
                "malformed_field", f"the timestamp in the {where} is not UNIX seconds"
            )
        given = [
            value.lower()
            for value in (block.signature, block.parent_signature)
            if value and _HEX_DIGEST.fullmatch(value)
        ]
        if not given:
            raise VerificationError(
                "malformed_field", f"the signature in the {where} is not 64 hexadecimal digits"
            )
        check_timestamp(int(timestamp), now=now, tolerance=tolerance)
        content = as_bytes(timestamp + token)
        if any_hex_match(self._keys, content, given):
            return
        raise VerificationError(
            "no_matching_signature",
            f"the signature in the {where} matches none of the {len(self._keys)} key(s)",
        )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _multipart_fields(body: bytes, content_type: str) -> Mapping[str, str] | _NotParsed:
    """The text fields of a ``multipart/form-data`` body; files are skipped."""
    from email.parser import BytesParser
    from email.policy import HTTP

    try:
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return NOT_PARSED
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            if part.get_filename() is not None:
                continue
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, payload.decode("utf-8", "replace"))
            if len(fields) >= _MAX_FORM_FIELDS:
                break
        return fields
    except Exception:  # a hostile body must come out as "not parsed", never as a crash
        return NOT_PARSED
