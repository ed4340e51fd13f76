"""Helpers for testing code that uses hookwise: a memory store, signed requests, and
recorded deliveries as test inputs.

>>> from hookwise.testing import MemoryStore, signed_request
>>> hw = Hookwise(store="memory://")
>>> hw.source("acme", provider="hmac", header="X-Acme-Signature", secrets=["s3cret"],
...           dedup_key="body:id")
>>> request = signed_request(hw, "acme", b'{"id": "1", "type": "order.paid"}')
>>> async with httpx.AsyncClient(transport=httpx.ASGITransport(hw.asgi()),
...                              base_url="http://test") as client:
...     response = await client.post(request.path, content=request.body,
...                                  headers=request.headers)

Recordings (``hookwise events export --file tests/recordings/stripe.jsonl``) become
events to call a handler with, or requests replayed through the app:

>>> from hookwise.testing import recorded_events, replay_into
>>> for event in recorded_events("tests/recordings/stripe.jsonl"):
...     on_invoice_paid(event)
>>> async with hw.open_store() as store:
...     answers = await replay_into(hw, "tests/recordings/stripe.jsonl", store=store)
...     await hw.worker(store).drain()
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import system_clock
from .events import Event
from .recording import Recorded, load_recording
from .store.memory import MemoryStore

if TYPE_CHECKING:
    import httpx

    from .app import Hookwise
    from .store import Store

__all__ = [
    "MemoryStore",
    "Recorded",
    "SignedRequest",
    "load_recording",
    "recorded_events",
    "replay_into",
    "signed_request",
]

TEST_BASE_URL = "http://hookwise.test"
"""Where :func:`replay_into` posts (through ASGI, no network) unless given a client."""

RecordingSource = str | os.PathLike[str] | Sequence[Recorded]
"""A recording file or directory, or recordings already loaded."""


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


def _recordings(recording: RecordingSource) -> list[Recorded]:
    if isinstance(recording, str | os.PathLike):
        return load_recording(os.fspath(recording))
    return list(recording)


def recorded_events(
    recording: RecordingSource, *, handler: str = "", type: str | None = None
) -> list[Event]:
    """The recorded deliveries as :class:`~hookwise.Event` objects, ready to pass to a
    handler, in recorded order.

    >>> [event.type for event in recorded_events("tests/recordings/stripe.jsonl")]
    ['invoice.paid', 'customer.subscription.updated']

    ``handler`` sets :attr:`Event.handler` (it goes into ``idempotency_key``);
    ``type`` keeps only events of that type (a glob, like ``invoice.*``).
    """
    from fnmatch import fnmatchcase

    return [
        record.event(handler=handler)
        for record in _recordings(recording)
        if type is None or fnmatchcase(record.type, type)
    ]


async def replay_into(
    hw: Hookwise,
    recording: RecordingSource,
    *,
    store: Store | None = None,
    client: httpx.AsyncClient | None = None,
    source: str | None = None,
    now: float | None = None,
) -> list[httpx.Response]:
    """Post the recorded deliveries to ``hw``'s receiver, re-signed with the secret the
    app's source is configured with, and return its answers in order.

    >>> async with hw.open_store() as store:
    ...     answers = await replay_into(hw, "tests/recordings/stripe.jsonl", store=store)
    ...     assert [a.json()["status"] for a in answers] == ["accepted", "accepted"]
    ...     await hw.worker(store).drain()

    Each goes to the app's source of the recorded name (or ``source``), through
    ``hw.asgi(store)`` on httpx's ASGI transport (no network, no server), unless
    ``client`` is given. The body and the recorded headers are kept and the delivery
    id too, so a second replay is answered ``duplicate``. ``now`` is the signing time
    (default: the app's clock).
    """
    import httpx

    from .recording import resign, signer

    records = _recordings(recording)
    when = now if now is not None else (hw.clock or system_clock).now()
    own_client = client is None
    if client is None:
        transport = httpx.ASGITransport(app=hw.asgi(store))
        client = httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL)
    base = str(client.base_url).rstrip("/")
    answers: list[httpx.Response] = []
    try:
        for record in records:
            name = source or record.source
            settings = hw.settings.sources.get(name)
            if settings is None:
                configured = ", ".join(sorted(hw.settings.sources)) or "none"
                raise KeyError(
                    f"{record.origin or 'a recording'} is for source {name!r}, which the app "
                    f"does not have (sources: {configured}); pass source= to send it to another"
                )
            url = f"{base}/hooks/{name}"
            request = resign(record, signer(settings, url), url=url, now=when)
            answers.append(
                await client.request(
                    request.method,
                    request.url,
                    content=request.body,
                    headers=list(request.headers),
                )
            )
    finally:
        if own_client:
            await client.aclose()
    return answers
