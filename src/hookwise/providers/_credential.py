"""What the credential providers (``basic``, ``bearer``) share: their sample events,
the delivery-id header they sign with, and the hints about secrets with stray spaces.

These senders sign nothing, so an event's identity is whatever the settings say
(``dedup_key``), and without one a hash of the body: identical bodies are one event.
"""

from __future__ import annotations

import json
import secrets as _random
from datetime import UTC, datetime

from hookwise.providers._base import Extraction

__all__ = ["delivery_headers", "generic_samples", "whitespace_hints"]


def generic_samples(now: float) -> dict[str, bytes]:
    """A few events in the shape most JSON senders use: ``id``, ``type``, a time, ``data``."""
    moment = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
    created_at = moment.replace("+00:00", "Z")
    order = "ord_" + _random.token_hex(6)
    customer = "cus_" + _random.token_hex(6)
    documents = {
        "order.created": {
            "object": "order",
            "id": order,
            "customer": customer,
            "status": "pending",
            "currency": "eur",
            "total": 4200,
            "lines": [{"sku": "SKU-1042", "quantity": 2, "unit_price": 2100}],
        },
        "order.paid": {
            "object": "order",
            "id": order,
            "customer": customer,
            "status": "paid",
            "currency": "eur",
            "total": 4200,
            "paid_at": created_at,
        },
        "customer.updated": {
            "object": "customer",
            "id": customer,
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "changes": ["email"],
        },
    }
    return {
        event_type: json.dumps(
            {
                "id": "evt_" + _random.token_hex(12),
                "type": event_type,
                "created_at": created_at,
                "data": data,
            },
            separators=(",", ":"),
        ).encode()
        for event_type, data in documents.items()
    }


def delivery_headers(extraction: Extraction, delivery_id: str | None) -> dict[str, str]:
    """The header that carries the delivery id, when the settings read it from one."""
    spec = extraction.dedup
    if spec is None or spec.kind != "header":
        return {}
    return {spec.value: delivery_id or _random.token_hex(16)}


def whitespace_hints(secrets: tuple[str, ...], what: str) -> list[str]:
    """Secrets with spaces or a line break around them: a copy-paste or ``echo`` slip."""
    return [
        f"{what} number {position} has spaces or a line break at its start or end: "
        "the sender is unlikely to send those; check the environment variable it comes from"
        for position, secret in enumerate(secrets, start=1)
        if secret != secret.strip()
    ]
