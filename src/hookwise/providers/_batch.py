"""What the providers that post several events in one JSON array (HubSpot, SendGrid) share.

One POST is one hookwise event, whatever it holds. Its dedup key is built from the
ids of the events in it, so that a retried POST is a duplicate even when fields that
change between attempts (HubSpot's ``attemptNumber``) differ, and two different
batches never share a key: the id of a lone event as it is, else ``batch-<count>-``
and a hash of the sorted ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = ["batch_key", "items_of", "scalar"]


def items_of(document: object) -> list[dict[str, object]]:
    """The event objects of a batch body: the array's objects, or a lone object."""
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    return []


def batch_key(
    items: Sequence[dict[str, object]], identity: Callable[[dict[str, object]], str | None]
) -> str | None:
    """The dedup key of a batch; ``None`` when an event has no id (the caller falls back
    to a hash of the body).

    >>> batch_key([{"sg_event_id": "a"}], lambda item: item.get("sg_event_id"))
    'a'
    """
    ids: list[str] = []
    for item in items:
        value = identity(item)
        if not value:
            return None
        ids.append(value)
    if not ids:
        return None
    if len(ids) == 1:
        return ids[0]
    digest = hashlib.sha256("\n".join(sorted(ids)).encode("utf-8", "surrogatepass")).hexdigest()
    return f"batch-{len(ids)}-{digest[:32]}"


def scalar(value: object) -> str | None:
    """A JSON string or integer as text; anything else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None
