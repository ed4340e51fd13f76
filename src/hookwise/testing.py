"""Helpers for testing code that uses hookwise: a memory store and signed requests.

>>> from hookwise.testing import MemoryStore, signed_request
>>> hw = Hookwise(store="memory://")
>>> hw.source("acme", provider="hmac", header="X-Acme-Signature", secrets=["s3cret"],
...           dedup_key="body:id")
>>> request = signed_request(hw, "acme", b'{"id": "1", "type": "order.paid"}')
>>> async with httpx.AsyncClient(transport=httpx.ASGITransport(hw.asgi()),
...                              base_url="http://test") as client:
...     response = await client.post(request.path, content=request.body,
...                                  headers=request.headers)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import system_clock
from .store.memory import MemoryStore

if TYPE_CHECKING:
    from .app import Hookwise

__all__ = ["MemoryStore", "SignedRequest", "signed_request"]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A webhook request signed exactly as the source expects it."""

    path: str
    headers: dict[str, str]
    body: bytes


def signed_request(
    hw: Hookwise,
    source: str,
    body: bytes | str | dict[str, Any],
    *,
    now: float | None = None,
    secret_index: int = 0,
    delivery_id: str | None = None,
    content_type: str = "application/json",
) -> SignedRequest:
    """Build the path, headers and body of a correctly signed request to ``source``.

    ``body`` may be bytes (sent as is), text, or a dict (JSON-encoded). ``now``
    defaults to the app's clock; ``secret_index`` picks which configured secret signs.
    """
    if isinstance(body, dict):
        raw = json.dumps(body).encode()
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = body
    try:
        src = hw.sources[source]
    except KeyError:
        raise KeyError(
            f"no source named {source!r}; configured: {', '.join(sorted(hw.sources)) or 'none'}"
        ) from None
    when = now if now is not None else (hw.clock or system_clock).now()
    made = src.sign_request(
        raw,
        now=when,
        secret_index=secret_index,
        delivery_id=delivery_id or f"msg_{uuid.uuid4().hex}",
    )
    headers = {"content-type": content_type, **made.headers}
    path = f"/hooks/{source}" + (f"?{made.query}" if made.query else "")
    return SignedRequest(path=path, headers=headers, body=made.body)
