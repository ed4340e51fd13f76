"""What an event is: the immutable receipt of one delivery, plus normalized fields."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Event", "Intake", "NewEvent"]

Intake = Literal["push", "pull", "replay"]

IDEMPOTENCY_KEY_PREFIX = "hw1_"
"""Starts every :attr:`Event.idempotency_key`; the digit is the derivation's version."""


@dataclass(slots=True, unsafe_hash=True)
class NewEvent:
    """An event on its way into the store (before it has a sequence number).

    >>> NewEvent("stripe", "evt_1", "invoice.paid", b"{}", received_at=clock.now())

    Built by the receiver (or poller) after verification; appended with the
    names of the handlers that must see it. Treat it as immutable: it is not frozen
    only because a frozen dataclass takes three times as long to build, once per
    request on the intake path.
    """

    source: str
    dedup_key: str
    type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    ordering_key: str | None = None
    occurred_at: float | None = None
    received_at: float = 0.0
    intake: Intake = "push"


@dataclass(frozen=True, slots=True)
class Event:
    """One event as a handler sees it.

    >>> @hw.handler("stripe", "invoice.*")
    ... async def on_invoice(event: Event) -> None:
    ...     invoice = event.json()["data"]["object"]

    ``id`` is the dedup key (the provider's delivery or event id); ``seq`` is
    hookwise's own arrival number; ``attempt`` counts from 1 for this handler;
    ``handler`` is the name of the handler it is delivered to.
    """

    id: str
    source: str
    type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    ordering_key: str | None = None
    occurred_at: float | None = None
    received_at: float = 0.0
    intake: Intake = "push"
    attempt: int = 1
    seq: int = 0
    handler: str = ""

    @property
    def idempotency_key(self) -> str:
        """A key naming this event for this handler, to send as an ``Idempotency-Key``
        header to the APIs the handler calls.

        >>> Event("evt_1", "stripe", "invoice.paid", b"{}", handler="billing").idempotency_key
        'hw1_...'

        It is the same on every attempt, replay and worker process, and differs per
        handler, so a retried handler repeats its side effects under the same key and
        the API applies them once. It reveals nothing of the event but a digest.
        """
        material = "\x1f".join((self.source, self.id, self.handler)).encode()
        return IDEMPOTENCY_KEY_PREFIX + hashlib.sha256(material).hexdigest()[:32]

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.body)

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")
