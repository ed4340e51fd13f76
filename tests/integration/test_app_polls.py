"""Polls through the Python API: ``Hookwise.poll``, handlers on a poll's events,
``Hookwise.poller`` against a loopback API, and the per-poll series of ``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from hookwise import ConfigError, Event, FrozenClock, Hookwise
from hookwise.store import Store

from ._api_server import ItemsAPI, serve

NOW = 1_700_000_000.0


@pytest.fixture
def api() -> Iterator[ItemsAPI]:
    with serve(ItemsAPI(page_size=2)) as running:
        yield running


def app_with_poll(api: ItemsAPI, clock: FrozenClock | None = None) -> tuple[Hookwise, list[str]]:
    hw = Hookwise(store="memory://", clock=clock or FrozenClock(NOW))
    hw.poll("items", f"{api.url}/items", every=30, headers={"Accept": "application/json"})
    seen: list[str] = []

    @hw.handler("items", "created", "updated")
    def on_change(event: Event) -> None:
        seen.append(f"{event.type} {event.json()['id']} {event.json().get('name')}")

    return hw, seen


async def test_a_handler_gets_a_poll_s_changes_like_webhook_events(
    store: Store, api: ItemsAPI
) -> None:
    api.put("a", name="A")
    api.put("b", name="B")
    hw, seen = app_with_poll(api)
    settings = hw.polls["items"]
    assert (settings.url, settings.min_every, settings.source) == (
        f"{api.url}/items",
        30.0,
        "items",
    )
    assert settings.headers == (("Accept", "application/json"),)

    async with hw.poller(store) as poller:
        assert poller.names == ["items"]
        run = await poller.run_once("items")
        assert (run.status, len(run.changes)) == ("changed", 2)
        assert await hw.worker(store).drain() == 2
        assert sorted(seen) == ["created a A", "created b B"]

        api.put("a", name="A2")
        api.delete("b")
        run = await poller.run_once("items")
        assert sorted(c.kind for c in run.changes) == ["deleted", "updated"]
        assert await hw.worker(store).drain() == 1, "nobody subscribed to deleted"
        assert seen[-1] == "updated a A2"

        again = await poller.run_once("items")
        assert (again.status, again.requests, again.not_modified) == ("unchanged", 1, 1)
    state = await store.get_poll_state("items")
    assert state is not None and state.stats["requests"] == 3
    assert state.updated_at == NOW, "the app's clock is the poller's"


async def test_poller_runs_the_named_polls_only(store: Store, api: ItemsAPI) -> None:
    hw, _ = app_with_poll(api)
    hw.poll("other", f"{api.url}/items", every="1m", source="items")
    async with hw.poller(store, names=["other"]) as poller:
        assert poller.names == ["other"]
        with pytest.raises(KeyError):
            await poller.run_once("items")
    with pytest.raises(ConfigError) as caught:
        hw.poller(store, names=["itemz"])
    assert caught.value.key == "polls.itemz"
    assert caught.value.fix == "did you mean 'items'? configured polls: items, other"


def test_poll_takes_the_keys_of_a_polls_table() -> None:
    hw = Hookwise(store="memory://")
    settings = hw.poll(
        "orders",
        "https://api.example.com/orders",
        min_every="10s",
        max_every=600,
        items="data",
        pages="cursor",
        cursor_field="meta.next",
        cursor_param="cursor",
        deletions=False,
    )
    assert (settings.min_every, settings.max_every, settings.items) == (10.0, 600.0, "data")
    assert (settings.pages.kind, settings.deletions) == ("cursor", False)
    assert hw.polls == {"orders": settings}


@pytest.mark.parametrize(
    ("keys", "key"),
    [
        ({"evry": "1m"}, "polls.orders.evry"),
        ({"every": "soon"}, "polls.orders.every"),
        ({"headers": {"Authorization": "env:HOOKWISE_TEST_UNSET_TOKEN"}}, "polls.orders.headers"),
    ],
)
def test_a_bad_poll_in_code_is_a_config_error(keys: dict[str, object], key: str) -> None:
    hw = Hookwise(store="memory://")
    with pytest.raises(ConfigError) as caught:
        hw.poll("orders", "https://api.example.com/orders", **keys)
    assert (caught.value.key or "").startswith(key)
    assert caught.value.fix
    assert hw.polls == {}


def test_a_poll_name_is_unique() -> None:
    hw = Hookwise(store="memory://")
    hw.poll("orders", "https://api.example.com/orders")
    with pytest.raises(ConfigError, match="already exists"):
        hw.poll("orders", "https://api.example.com/v2/orders")


def test_a_handler_of_a_source_nobody_feeds_mentions_polls() -> None:
    hw = Hookwise(store="memory://")
    with pytest.raises(ConfigError) as caught:

        @hw.handler("orders", "created")
        def on_order(event: Event) -> None: ...

    assert "hw.poll" in (caught.value.fix or "")
    hw.poll("orders", "https://api.example.com/orders")

    @hw.handler("orders", "created")
    def on_order_again(event: Event) -> None: ...

    assert hw.handlers.route("orders", "created") == (
        f"{on_order_again.__module__}.{on_order_again.__qualname__}",
    )


def test_backfill_in_code_links_a_poll_to_its_source_in_either_order() -> None:
    first = Hookwise(store="memory://")
    first.source("gh", provider="none", backfill="issues")
    first.poll("issues", "https://api.example.com/issues")
    assert first.polls["issues"].source == "gh"

    second = Hookwise(store="memory://")
    second.poll("issues", "https://api.example.com/issues")
    second.source("gh", provider="none", backfill="issues")
    assert second.polls["issues"].source == "gh"


def test_backfill_in_code_refuses_a_poll_with_another_source() -> None:
    hw = Hookwise(store="memory://")
    hw.poll("issues", "https://api.example.com/issues", source="tracker")
    with pytest.raises(ConfigError) as caught:
        hw.source("gh", provider="none", backfill="issues")
    assert caught.value.key == "sources.gh.backfill"
    assert "'tracker'" in caught.value.problem
    assert "gh" not in hw.sources and "gh" not in hw.settings.sources
    assert hw.polls["issues"].source == "tracker"


def test_two_sources_can_t_backfill_from_one_poll_in_code() -> None:
    hw = Hookwise(store="memory://")
    hw.source("gh", provider="none", backfill="issues")
    hw.source("gl", provider="none", backfill="issues")
    with pytest.raises(ConfigError) as caught:
        hw.poll("issues", "https://api.example.com/issues")
    assert caught.value.key == "sources.gl.backfill"
    assert hw.polls == {}


async def test_a_backfill_naming_no_poll_stops_the_poller(store: Store) -> None:
    hw = Hookwise(store="memory://")
    hw.source("gh", provider="none", backfill="issues")
    with pytest.raises(ConfigError) as caught:
        hw.poller(store)
    assert caught.value.key == "sources.gh.backfill"
    assert "hw.poll('issues'" in (caught.value.fix or "")


def _series(text: str, name: str) -> dict[str, float]:
    return {
        match[1]: float(match[2])
        for match in re.finditer(rf'^{name}\{{poll="([^"]+)"\}} (\S+)$', text, re.MULTILINE)
    }


async def test_metrics_show_each_poll_s_counters_and_schedule(store: Store, api: ItemsAPI) -> None:
    clock = FrozenClock(NOW)
    api.page_size = 3  # one page: its 304 stands for the whole listing
    api.put("a", name="A")
    api.put("b", name="B")
    api.put("c", name="C")
    hw, _ = app_with_poll(api, clock)
    hw.poll("broken", f"{api.url}/nowhere", every="1m")
    async with hw.poller(store) as poller:
        await poller.run_once("items")
        await poller.run_once("items")
        failed = await poller.run_once("broken")
    assert failed.status == "error"
    clock.advance(12)

    transport = httpx.ASGITransport(app=hw.asgi(store=store))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    items, broken = await store.get_poll_state("items"), await store.get_poll_state("broken")
    assert items is not None and broken is not None
    assert _series(text, "hookwise_poll_requests_total") == {"items": 2.0, "broken": 1.0}
    assert _series(text, "hookwise_poll_not_modified_total") == {"items": 1.0, "broken": 0.0}
    assert _series(text, "hookwise_poll_bytes_total")["items"] == items.stats["bytes"] > 0
    assert _series(text, "hookwise_poll_rate_limit_waits_total") == {"items": 0.0, "broken": 0.0}
    assert _series(text, "hookwise_poll_changes_total") == {"items": 3.0, "broken": 0.0}
    assert _series(text, "hookwise_poll_errors_total") == {"items": 0.0, "broken": 1.0}
    assert _series(text, "hookwise_poll_failing") == {"items": 0.0, "broken": 1.0}
    assert _series(text, "hookwise_poll_interval_seconds") == {"items": 30.0, "broken": 60.0}
    assert items.next_due_at is not None and broken.next_due_at is not None
    assert _series(text, "hookwise_poll_next_due_seconds") == pytest.approx(
        {"items": items.next_due_at - NOW - 12, "broken": broken.next_due_at - NOW - 12},
        abs=0.001,
    )
    for metric in ("hookwise_poll_requests_total", "hookwise_poll_failing"):
        assert f"# HELP {metric} " in text
    assert "# TYPE hookwise_poll_errors_total counter" in text
    assert "# TYPE hookwise_poll_next_due_seconds gauge" in text
