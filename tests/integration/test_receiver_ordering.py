"""Ordered sources end to end: real HTTP on loopback, the receiver hands each source's
policy to the store, and the worker runs one event at a time per key and handler.

The store's side of ordering is specified in test_ordering_contract.py; these tests
check that configuration reaches it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise import Event, Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.store import DeliveryRecord, Ordering
from hookwise.testing import signed_request

from ._live import live

SECRET = "whsec_ordering_test_secret"
T = 1_700_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_url")
    else:
        yield f"sqlite:///{tmp_path / 'hooks.db'}"


def make_app(url: str, **stripe: Any) -> Hookwise:
    settings = Settings(
        store=StoreSettings(url=url),
        sources={
            "stripe": SourceSettings(name="stripe", provider="stripe", secrets=(SECRET,), **stripe)
        },
    )
    return Hookwise(settings=settings)


def subscription_event(event_id: str, kind: str, created: int, status: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": f"customer.subscription.{kind}",
        "created": created,
        "data": {"object": {"id": "sub_1", "object": "subscription", "status": status}},
    }


def post_all(hw: Hookwise, events: list[dict[str, Any]]) -> list[int]:
    """POST each event in turn; the event numbers (seq) the receiver answered with."""
    seqs = []
    with live(hw.asgi()) as server:
        for body in events:
            request = signed_request(hw, "stripe", body)
            answer = httpx.post(
                server.url + request.path, content=request.body, headers=request.headers
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "accepted"
            seqs.append(answer.json()["seq"])
    return seqs


async def deliveries_of(hw: Hookwise, seqs: list[int]) -> list[DeliveryRecord]:
    async with hw.open_store() as store:
        found = []
        for seq in seqs:
            [delivery] = await store.deliveries(seq)
            found.append(delivery)
        return found


def test_latest_applies_a_subscription_s_events_in_time_order_whatever_the_arrival(
    store_url: str,
) -> None:
    hw = make_app(store_url, ordering="latest")
    assert hw.sources["stripe"].ordering == Ordering("latest")
    seen: list[tuple[str, str, str]] = []

    @hw.handler("stripe", "customer.subscription.*", name="billing")
    async def billing(event: Event) -> None:
        seen.append(
            (event.json()["data"]["object"]["status"], event.handler, event.idempotency_key)
        )

    # Stripe sends no order guarantee: "updated" overtakes "created".
    seqs = post_all(
        hw,
        [
            subscription_event("evt_updated", "updated", T + 200, "active"),
            subscription_event("evt_created", "created", T + 100, "incomplete"),
            subscription_event("evt_deleted", "deleted", T + 300, "canceled"),
        ],
    )
    before = asyncio.run(deliveries_of(hw, seqs))
    assert [d.status for d in before] == ["pending", "waiting", "waiting"]
    assert {(d.ordering_key, d.policy) for d in before} == {("sub_1", "latest")}

    async def work() -> tuple[int, Any]:
        async with hw.open_store() as store:
            handled = await hw.worker(store).drain()
            return handled, await store.ordering_state("billing", "sub_1")

    handled, state = asyncio.run(work())
    assert [status for status, _, _ in seen] == ["active", "canceled"]  # "incomplete" is stale
    assert handled == 2
    after = asyncio.run(deliveries_of(hw, seqs))
    assert [(d.status, d.attempts) for d in after] == [("done", 1), ("skipped", 0), ("done", 1)]
    assert after[1].last_error == "stale"
    assert state is not None and (state.applied_at, state.applied_seq) == (T + 300, seqs[2])

    # Each handler run carries its handler's name and a key stable for (event, handler).
    _, handler, key = seen[0]
    material = b"stripe\x1fevt_updated\x1fbilling"
    assert (handler, key) == ("billing", "hw1_" + hashlib.sha256(material).hexdigest()[:32])


def test_an_unordered_source_stores_its_deliveries_unordered(store_url: str) -> None:
    hw = make_app(store_url)
    assert hw.sources["stripe"].ordering is None
    ran: list[str] = []

    @hw.handler("stripe", "*", name="mirror")
    def mirror(event: Event) -> None:
        ran.append(event.id)

    seqs = post_all(
        hw,
        [
            subscription_event("evt_b", "updated", T + 200, "active"),
            subscription_event("evt_a", "created", T + 100, "incomplete"),
        ],
    )
    found = asyncio.run(deliveries_of(hw, seqs))
    assert [(d.status, d.policy) for d in found] == [("pending", None), ("pending", None)]

    async def work() -> int:
        async with hw.open_store() as store:
            return await hw.worker(store).drain()

    assert asyncio.run(work()) == 2
    assert sorted(ran) == ["evt_a", "evt_b"]


def test_the_reorder_window_holds_a_new_event_back(store_url: str) -> None:
    hw = make_app(store_url, ordering="serial", reorder_window=60.0)
    assert hw.sources["stripe"].ordering == Ordering("serial", 60.0)

    @hw.handler("stripe", "*", name="billing")
    def billing(event: Event) -> None:
        raise AssertionError("held back: must not run yet")

    [seq] = post_all(hw, [subscription_event("evt_1", "updated", T, "active")])

    async def work() -> tuple[float, DeliveryRecord, int]:
        async with hw.open_store() as store:
            record = await store.get_event(seq)
            assert record is not None
            [delivery] = await store.deliveries(seq)
            return record.received_at, delivery, await hw.worker(store).drain()

    received_at, delivery, handled = asyncio.run(work())
    assert (delivery.status, delivery.policy) == ("pending", "serial")
    assert delivery.next_attempt_at == pytest.approx(received_at + 60.0)
    assert handled == 0


def test_a_key_missing_from_an_event_leaves_that_event_unordered(store_url: str) -> None:
    hw = make_app(store_url, ordering="serial")

    @hw.handler("stripe", "*", name="billing")
    def billing(event: Event) -> None:
        pass

    keyless = {"id": "evt_k1", "type": "balance.available", "created": T, "data": {}}
    seqs = post_all(hw, [keyless, {**keyless, "id": "evt_k2"}])
    found = asyncio.run(deliveries_of(hw, seqs))
    assert [(d.status, d.ordering_key) for d in found] == [("pending", None), ("pending", None)]

    async def claimed() -> int:
        async with hw.open_store() as store:
            return len(await store.claim("w", limit=10, lease=30.0, now=T * 2))

    assert asyncio.run(claimed()) == 2  # both at once: nothing to wait behind


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coalesce_fetch"


def test_the_coalesce_fetch_example_fetches_once_per_burst(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util
    import threading

    spec = importlib.util.spec_from_file_location("fake_shop", EXAMPLE / "fake_shop.py")
    assert spec is not None and spec.loader is not None
    fake_shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake_shop)
    shop = fake_shop.serve(0)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("HOOKWISE_STORE_URL", store_url)
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "example-secret")
    monkeypatch.setenv("SHOP_API_URL", f"http://127.0.0.1:{shop.server_address[1]}")
    monkeypatch.setenv("SHOP_MIRROR", str(tmp_path / "mirror"))
    try:
        hw = Hookwise.from_config(EXAMPLE / "hookwise.toml")
        assert hw.settings.warnings == ()
        assert hw.sources["shop"].ordering == Ordering("coalesce")
        bodies = sorted((EXAMPLE / "events").glob("*.json"))
        seqs = []
        with live(hw.asgi()) as server:
            for path in bodies:
                request = signed_request(hw, "shop", path.read_bytes())
                answer = httpx.post(
                    server.url + request.path, content=request.body, headers=request.headers
                )
                assert answer.json()["status"] == "accepted", answer.text
                seqs.append(answer.json()["seq"])

        async def work() -> list[DeliveryRecord]:
            async with hw.open_store() as store:
                await hw.worker(store).drain()
                return [(await store.deliveries(seq))[0] for seq in seqs]

        found = asyncio.run(work())
    finally:
        shop.shutdown()
        shop.server_close()
    assert [(d.status, d.last_error) for d in found] == [
        ("done", None),
        ("skipped", "superseded"),
        ("skipped", "superseded"),
        ("done", None),
    ]
    assert capsys.readouterr().out.count("GET /orders/ord_42") == 2
    shop_state = json.loads((EXAMPLE / "shop.json").read_text())
    mirrored = json.loads((tmp_path / "mirror" / "ord_42.json").read_text())
    assert mirrored == shop_state["ord_42"]
