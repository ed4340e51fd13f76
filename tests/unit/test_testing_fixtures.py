"""``hookwise.testing`` with recordings: events for a handler, and requests replayed
through an app's receiver, re-signed with the app's own secret."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookwise import Event, Hookwise
from hookwise.config import SourceSettings
from hookwise.providers import build_source
from hookwise.recording import as_recorded, write_jsonl
from hookwise.store import EventRecord
from hookwise.testing import load_recording, recorded_events, replay_into

PRODUCTION_SECRET = "whsec_production_secret_never_in_tests"
LOCAL_SECRET = "whsec_local_test_secret"


def capture(tmp_path: Path) -> Path:
    """A recording of three Stripe deliveries as a receiver with the production secret
    stored them (what `hookwise events export --file` writes)."""
    production = build_source(
        SourceSettings(name="stripe", provider="stripe", secrets=(PRODUCTION_SECRET,))
    )
    now = time.time() - 3600
    records = []
    samples = production.samples(now)
    for seq, kind in enumerate(
        ("invoice.paid", "customer.subscription.updated", "payment_intent.succeeded"), start=1
    ):
        signed = production.sign_request(samples[kind], now=now)
        headers = {"content-type": "application/json", **signed.headers}
        described = production.describe(signed.body, headers, now)
        records.append(
            as_recorded(
                EventRecord(
                    seq=seq,
                    source="stripe",
                    dedup_key=described.dedup_key,
                    type=described.type,
                    ordering_key=described.ordering_key,
                    occurred_at=described.occurred_at,
                    received_at=now,
                    intake="push",
                    headers=tuple(headers.items()),
                    body=signed.body,
                ),
                provider="stripe",
            )
        )
    path = tmp_path / "stripe.jsonl"
    write_jsonl(records, path)
    return path


def edit_first_amount(path: Path, amount: int) -> None:
    """Keep only the first recording, its invoice amount changed by hand."""
    document = json.loads(path.read_text().splitlines()[0])
    body = json.loads(document["body"])
    body["data"]["object"]["amount_paid"] = amount
    document["body"] = json.dumps(body)
    path.write_text(json.dumps(document) + "\n")


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return capture(tmp_path)


@pytest.fixture
def app() -> Iterator[tuple[Hookwise, list[Event]]]:
    hw = Hookwise(store="memory://")
    hw.source("stripe", provider="stripe", secrets=[LOCAL_SECRET])
    seen: list[Event] = []

    @hw.handler("stripe", "invoice.*", "customer.*", name="billing")
    def billing(event: Event) -> None:
        seen.append(event)

    yield hw, seen


def test_recorded_events_are_handler_inputs(recording: Path) -> None:
    events = recorded_events(recording, handler="billing")
    assert [event.type for event in events] == [
        "invoice.paid",
        "customer.subscription.updated",
        "payment_intent.succeeded",
    ]
    invoice = events[0]
    assert invoice.json()["data"]["object"]["object"] == "invoice"
    assert invoice.id == invoice.json()["id"]
    assert invoice.handler == "billing"
    assert invoice.headers["stripe-signature"].startswith("t=")
    assert [e.type for e in recorded_events(recording, type="customer.*")] == [
        "customer.subscription.updated"
    ]
    assert recorded_events(load_recording(recording))[2].source == "stripe"


async def test_replay_into_signs_with_the_apps_secret_and_dedups_a_second_time(
    recording: Path, app: tuple[Hookwise, list[Event]]
) -> None:
    hw, seen = app
    async with hw.open_store() as store:
        answers = await replay_into(hw, recording, store=store)
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        assert [a.json()["status"] for a in answers] == ["accepted"] * 3
        await hw.worker(store).drain(timeout=10)
        again = await replay_into(hw, recording, store=store)
        assert [a.json()["status"] for a in again] == ["duplicate"] * 3
        await hw.worker(store).drain(timeout=10)
    expected = recorded_events(recording)
    assert sorted(e.id for e in seen) == sorted(e.id for e in expected[:2])
    by_id = {e.id: e for e in expected}
    for event in seen:
        assert event.body == by_id[event.id].body
        assert event.type == by_id[event.id].type


async def test_the_recorded_signature_alone_is_refused(
    recording: Path, app: tuple[Hookwise, list[Event]]
) -> None:
    hw, _ = app
    record = load_recording(recording)[0]
    async with (
        hw.open_store() as store,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=hw.asgi(store)), base_url="http://test"
        ) as client,
    ):
        answer = await client.post(
            "/hooks/stripe", content=record.body, headers=list(record.headers)
        )
        assert answer.status_code == 401
        answers = await replay_into(hw, [record], client=client)
        assert answers[0].status_code == 200
        assert not client.is_closed


async def test_an_edited_body_is_sent_re_signed(
    recording: Path, app: tuple[Hookwise, list[Event]]
) -> None:
    hw, seen = app
    edit_first_amount(recording, 999_999)
    [record] = load_recording(recording)
    assert record.body_edited
    async with hw.open_store() as store:
        [answer] = await replay_into(hw, recording, store=store)
        assert answer.json()["status"] == "accepted"
        await hw.worker(store).drain(timeout=10)
    assert seen[0].json()["data"]["object"]["amount_paid"] == 999_999


async def test_replay_into_another_source_and_an_unknown_one(
    recording: Path,
) -> None:
    hw = Hookwise(store="memory://")
    hw.source("stripe-dev", provider="stripe", secrets=[LOCAL_SECRET])
    async with hw.open_store() as store:
        with pytest.raises(KeyError, match="stripe-dev"):
            await replay_into(hw, recording, store=store)
        answers = await replay_into(hw, recording, store=store, source="stripe-dev")
        assert [a.json()["status"] for a in answers] == ["accepted"] * 3
