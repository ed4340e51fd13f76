"""Reading an ASGI request body under a size cap, shared by the receiver and the relay.

>>> async def main(receive):  # doctest: +SKIP
...     body = await read_body(receive, declared="12", limit=1_048_576)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import PayloadTooLarge

__all__ = ["read_body"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def read_body(receive: Receive, declared: str | bytes | None, limit: int) -> bytes | None:
    """The whole body, or ``None`` when the client hung up before it ended.

    Raises :class:`~hookwise.errors.PayloadTooLarge` as soon as the ``Content-Length``
    (``declared``) or the bytes received pass ``limit``, without reading the rest. A
    malformed length is ignored: the streaming cap still applies.
    """
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            length = None
        if length is not None and length > limit:
            raise PayloadTooLarge("body_too_large", f"content-length {length} > {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("body_too_large", f"more than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)
