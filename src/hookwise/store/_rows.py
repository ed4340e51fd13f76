"""Rows as the SQL engines read them -> the store's records. Shared by SQLite and
PostgreSQL, whose queries return the same columns under the same names."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..events import Event
from ._base import Claim, DeliveryRecord, EventRecord, PollState, RejectionRecord

__all__ = [
    "Row",
    "claim_record",
    "delivery_record",
    "event_record",
    "headers_from_json",
    "rejection_record",
]


class Row(Protocol):
    """A result row read by column name (``sqlite3.Row``, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def headers_from_json(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in json.loads(text))


def event_record(row: Row) -> EventRecord:
    return EventRecord(
        seq=row["seq"],
        source=row["source"],
        dedup_key=row["dedup_key"],
        type=row["type"],
        ordering_key=row["ordering_key"],
        occurred_at=row["occurred_at"],
        received_at=row["received_at"],
        intake=row["intake"],
        headers=headers_from_json(row["headers"]),
        body=bytes(row["body"]),
        status=row["status"],
    )


def delivery_record(row: Row) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        event_seq=row["event_seq"],
        handler=row["handler"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        fence=row["fence"],
        last_error=row["last_error"],
        updated_at=row["updated_at"],
        source=row["source"],
        event_type=row["event_type"],
        dedup_key=row["dedup_key"],
    )


def claim_record(row: Row, event: Row) -> Claim:
    return Claim(
        delivery_id=row["id"],
        handler=row["handler"],
        fence=row["fence"],
        attempt=row["attempts"],
        lease_expires_at=row["lease_expires_at"],
        event=Event(
            id=event["dedup_key"],
            source=event["source"],
            type=event["type"],
            body=bytes(event["body"]),
            headers=dict(headers_from_json(event["headers"])),
            ordering_key=event["ordering_key"],
            occurred_at=event["occurred_at"],
            received_at=event["received_at"],
            intake=event["intake"],
            attempt=row["attempts"],
            seq=event["seq"],
            handler=row["handler"],
        ),
    )


def rejection_record(row: Row) -> RejectionRecord:
    """A ``rejections`` row (SQLite or PostgreSQL: same columns) as its record."""
    return RejectionRecord(
        id=row["id"],
        source=row["source"],
        received_at=row["received_at"],
        reason=row["reason"],
        detail=row["detail"],
        hints=tuple(str(hint) for hint in json.loads(row["hints"])),
        status=row["status"],
        method=row["method"],
        url=row["url"],
        client=row["client"],
        headers=headers_from_json(row["headers"]),
        body=bytes(row["body"]),
        body_size=row["body_size"],
    )


def poll_state_params(state: PollState) -> dict[str, object]:
    """A poll state as ``save_poll_state`` binds it, on either engine (stats as JSON text;
    PostgreSQL casts it to jsonb)."""
    return {
        "name": state.name,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "cursor": state.cursor,
        "next_due_at": state.next_due_at,
        "interval": state.interval,
        "error": state.error,
        "error_since": state.error_since,
        "failures": state.failures,
        "stats": json.dumps(dict(state.stats), allow_nan=False),
        "updated_at": state.updated_at,
    }
