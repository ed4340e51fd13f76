"""Generic HMAC signatures, as most providers use them, configured rather than coded.

A scheme says which header carries the signature, the hash (``sha1``, ``sha256``,
``sha512``), the encoding (``hex`` or ``base64``), an optional prefix such as
``sha256=``, and which bytes are signed: a template over the raw body, an optional
timestamp header and an optional delivery-id header (``"{timestamp}.{body}"``).

>>> sign(b"It's a Secret to Everybody", b"Hello, World!", "sha256", "hex", "sha256=")
'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hookwise.errors import VerificationError
from hookwise.signatures._common import (
    check_timestamp,
    constant_time_equal,
    header_bytes,
    parse_timestamp,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_TEMPLATE",
    "ENCODINGS",
    "PLACEHOLDERS",
    "HmacScheme",
    "parse_template",
    "render_content",
    "sign",
]

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("base64", "hex")
PLACEHOLDERS = ("body", "id", "timestamp")
DEFAULT_TEMPLATE = "{body}"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]*)\}")
# Senders that rotate secrets send several signatures in one header, separated by
# commas or spaces; when the prefix itself holds a comma ("v1,"), by spaces only.
_SEPARATORS = re.compile(r"[\s,]+")
_SPACES = re.compile(r"\s+")

Part = bytes | str
"""A template piece: literal ``bytes``, or the ``str`` name of a placeholder."""


def parse_template(template: str) -> tuple[Part, ...]:
    """Split a signed-content template into literal bytes and placeholder names.

    >>> parse_template("v0:{timestamp}:{body}")
    (b'v0:', 'timestamp', b':', 'body')

    Raises ``ValueError`` for an unknown placeholder or a template without ``{body}``.
    """
    parts: list[Part] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {match.group(0)} in the signed content template; "
                "use {body}, {timestamp} and {id}"
            )
        if match.start() > position:
            parts.append(template[position : match.start()].encode("utf-8"))
        parts.append(name)
        position = match.end()
    if position < len(template):
        parts.append(template[position:].encode("utf-8"))
    if "body" not in parts:
        raise ValueError(
            "the signed content template must contain {body}, or the body is not protected"
        )
    return tuple(parts)


def render_content(
    template: str | None, body: bytes, timestamp: str | None = None, id: str | None = None
) -> bytes:
    """The exact bytes to sign: ``template`` with the raw ``body`` inserted verbatim.

    >>> render_content("{timestamp}.{body}", b'{"a":1}', timestamp="1700000000")
    b'1700000000.{"a":1}'

    ``None`` means the body alone. Raises ``ValueError`` when the template is invalid
    or uses a value that was not given.
    """
    if template is None:
        return body
    return _render(parse_template(template), body, timestamp, id)


def sign(
    secret: bytes,
    content: bytes,
    algorithm: str = "sha256",
    encoding: str = "hex",
    prefix: str = "",
) -> str:
    """``prefix`` + the encoded HMAC of ``content``.

    >>> sign(b"key", b"body", "sha1", "base64")
    'cLv2gZ0QN6qUyn5/U3y+ol/kkoM='
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; use one of: {', '.join(ALGORITHMS)}")
    digest = hmac.digest(secret, content, algorithm)
    if encoding == "hex":
        return prefix + digest.hex()
    if encoding == "base64":
        return prefix + base64.b64encode(digest).decode("ascii")
    raise ValueError(f"unknown encoding {encoding!r}; use one of: {', '.join(ENCODINGS)}")


@dataclass(frozen=True, slots=True)
class HmacScheme:
    """One configured HMAC scheme. Header names are matched case-insensitively.

    >>> scheme = HmacScheme(header="X-Hub-Signature-256", prefix="sha256=")
    >>> signature = scheme.sign(b"It's a Secret to Everybody", b"Hello, World!")
    >>> scheme.verify([b"It's a Secret to Everybody"], body=b"Hello, World!",
    ...               headers={"x-hub-signature-256": signature}, now=0, tolerance=300)

    Construction raises ``ValueError`` for a bad algorithm, encoding, prefix or
    template; :meth:`verify` raises only :class:`~hookwise.errors.VerificationError`.
    """

    header: str
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    template: str = DEFAULT_TEMPLATE
    timestamp_header: str | None = None
    id_header: str | None = None
    _parts: tuple[Part, ...] = field(init=False, repr=False, compare=False)
    _splitter: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.header.strip():
            raise ValueError("the signature header name is empty")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {self.algorithm!r}; use one of: {', '.join(ALGORITHMS)}"
            )
        if self.encoding not in ENCODINGS:
            raise ValueError(
                f"unknown encoding {self.encoding!r}; use one of: {', '.join(ENCODINGS)}"
            )
        if _SPACES.search(self.prefix):
            raise ValueError(
                f"the prefix {self.prefix!r} contains a space, "
                "which separates signatures in the header"
            )
        parts = parse_template(self.template)
        if "timestamp" in parts and not self.timestamp_header:
            raise ValueError("the template uses {timestamp} but no timestamp header is set")
        if "id" in parts and not self.id_header:
            raise ValueError("the template uses {id} but no delivery-id header is set")
        object.__setattr__(self, "header", self.header.strip().lower())
        if self.timestamp_header:
            object.__setattr__(self, "timestamp_header", self.timestamp_header.strip().lower())
        if self.id_header:
            object.__setattr__(self, "id_header", self.id_header.strip().lower())
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_splitter", _SPACES if "," in self.prefix else _SEPARATORS)

    @property
    def signs_id(self) -> bool:
        """Whether the delivery id is part of the signed bytes."""
        return "id" in self._parts

    def content(self, body: bytes, timestamp: str | None = None, id: str | None = None) -> bytes:
        """The bytes this scheme signs (``ValueError`` if a needed value is missing)."""
        return _render(self._parts, body, timestamp, id)

    def sign(
        self, secret: bytes, body: bytes, *, timestamp: str | None = None, id: str | None = None
    ) -> str:
        """The signature header value for ``body``."""
        content = self.content(body, timestamp, id)
        return sign(secret, content, self.algorithm, self.encoding, self.prefix)

    def verify(
        self,
        secrets: Sequence[bytes],
        *,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
        tolerance: float,
    ) -> None:
        """Return if a signature in the header matches one of ``secrets``; raise otherwise.

        ``headers`` has lowercase names. Reasons: ``missing_header``,
        ``malformed_header``, ``timestamp_too_old``, ``timestamp_too_new``,
        ``no_matching_signature``.
        """
        signature_header = headers.get(self.header)
        if not signature_header or not signature_header.strip():
            raise VerificationError(
                "missing_header", f"the {self.header} header is missing or empty"
            )
        timestamp_text: str | None = None
        timestamp: int | None = None
        if self.timestamp_header:
            timestamp_text = headers.get(self.timestamp_header)
            timestamp = parse_timestamp(timestamp_text, header=self.timestamp_header)
        delivery_id: str | None = None
        if self.signs_id and self.id_header:
            delivery_id = headers.get(self.id_header)
            if not delivery_id:
                raise VerificationError(
                    "missing_header", f"the {self.id_header} header is missing or empty"
                )
        candidates = self._candidates(signature_header)
        if timestamp is not None:
            check_timestamp(timestamp, now=now, tolerance=tolerance)

        content = _render(self._parts, body, timestamp_text, delivery_id)
        for secret in secrets:
            expected = sign(secret, content, self.algorithm, self.encoding)
            if any(constant_time_equal(expected, given) for given in candidates):
                return
        raise VerificationError(
            "no_matching_signature",
            f"none of the {len(candidates)} signature(s) in {self.header} matches "
            f"any of the {len(secrets)} secret(s)",
        )

    def _candidates(self, header_value: str) -> list[str]:
        prefix = self.prefix.lower()
        candidates: list[str] = []
        for item in self._splitter.split(header_value):
            if not item or item[: len(prefix)].lower() != prefix:
                continue
            value = item[len(prefix) :]
            candidates.append(value.lower() if self.encoding == "hex" else value)
        if not candidates:
            expected = f"values starting with {self.prefix!r}" if self.prefix else "a signature"
            raise VerificationError("malformed_header", f"{self.header} holds no {expected}")
        return candidates


def _render(parts: tuple[Part, ...], body: bytes, timestamp: str | None, id: str | None) -> bytes:
    if parts == ("body",):
        return body
    chunks: list[bytes] = []
    for part in parts:
        if isinstance(part, bytes):
            chunks.append(part)
        elif part == "body":
            chunks.append(body)
        else:
            value = timestamp if part == "timestamp" else id
            if value is None:
                raise ValueError(f"the template uses {{{part}}} but no {part} was given")
            chunks.append(header_bytes(value))
    return b"".join(chunks)
