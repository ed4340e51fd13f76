"""Event: the idempotency key a handler sends to the APIs it calls."""

from __future__ import annotations

import dataclasses
import hashlib
import re

from hookwise import Event

EVENT = Event(
    "evt_1NqL",
    "stripe",
    "customer.subscription.updated",
    b'{"id": "evt_1NqL"}',
    handler="billing",
)


def test_the_idempotency_key_is_a_short_versioned_digest() -> None:
    key = EVENT.idempotency_key
    assert re.fullmatch(r"hw1_[0-9a-f]{32}", key)
    assert "evt_1NqL" not in key and "stripe" not in key


def test_the_derivation_is_fixed_so_keys_stay_equal_across_versions_and_processes() -> None:
    material = b"stripe\x1fevt_1NqL\x1fbilling"
    assert EVENT.idempotency_key == "hw1_" + hashlib.sha256(material).hexdigest()[:32]
    assert EVENT.idempotency_key == "hw1_f943deaf58dbdcf3bb864b603360bccf"


def test_retries_replays_and_redeliveries_keep_the_key() -> None:
    again = dataclasses.replace(
        EVENT,
        attempt=7,
        seq=912,
        intake="replay",
        received_at=1_700_000_000.0,
        body=b'{"id": "evt_1NqL", "redelivered": true}',
        headers={"stripe-signature": "t=1,v1=00"},
    )
    assert again.idempotency_key == EVENT.idempotency_key


def test_each_handler_source_and_event_has_its_own_key() -> None:
    keys = {
        EVENT.idempotency_key,
        dataclasses.replace(EVENT, handler="audit").idempotency_key,
        dataclasses.replace(EVENT, source="stripe_eu").idempotency_key,
        dataclasses.replace(EVENT, id="evt_2").idempotency_key,
        dataclasses.replace(EVENT, handler="").idempotency_key,
    }
    assert len(keys) == 5


def test_the_fields_are_separated_so_shifting_text_between_them_changes_the_key() -> None:
    left = Event("a_b", "src", "t", b"", handler="c")
    right = Event("a", "src", "t", b"", handler="b_c")
    assert left.idempotency_key != right.idempotency_key
