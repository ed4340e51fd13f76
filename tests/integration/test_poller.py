"""The poll runner against a real HTTP API on loopback and every store engine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import httpx
import pytest

from hookwise.clock import FrozenClock
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.poller.runner import Poller
from hookwise.poller.settings import PollSettings, parse_poll
from hookwise.store import EventFilter, Store

from ._api_server import ItemsAPI, serve


@pytest.fixture
def api() -> Iterator[ItemsAPI]:
    with serve(ItemsAPI(page_size=2)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as opened:
        yield opened


def handlers() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.add(HandlerSpec(name="sync", func=lambda event: None, source="items"))
    return registry


def poll(api: ItemsAPI, **table: Any) -> PollSettings:
    return parse_poll("items", {"url": f"{api.url}/items", "every": "1s", **table})


async def events(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    found = await store.list_events(EventFilter(source="items", limit=1000))
    return sorted((e.type, e.dedup_key, json.loads(e.body)) for e in found)


async def test_every_change_is_emitted_once_across_pages_and_a_restart(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    for key in "abcde":
        api.put(key, name=key.upper())
    settings = poll(api)

    run = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert run.status == "changed"
    assert run.requests == 3  # five items, two a page
    assert sorted(c.id for c in run.changes) == list("abcde")
    assert [t for t, _, _ in await events(store)] == ["created"] * 5
    record = (await store.list_events(EventFilter(source="items", limit=1)))[0]
    assert record.intake == "pull" and record.ordering_key is not None
    first = await store.find_event("items", f"items:{run.changes[0].dedup_key}")
    assert first is not None and json.loads(first.body)["id"] == run.changes[0].id
    assert [d.handler for d in await store.deliveries(first.seq)] == ["sync"]

    version_d = item_version(api, "d")
    api.put("b", name="B2")
    api.delete("d")
    api.put("f", name="F")
    restarted = Poller(store, handlers(), [settings], client=client)
    run = await restarted.run_once("items")
    assert sorted((c.kind, c.id) for c in run.changes) == [
        ("created", "f"),
        ("deleted", "d"),
        ("updated", "b"),
    ]
    assert await store.poll_index("items") == {
        key: item_version(api, key) for key in ("a", "b", "c", "e", "f")
    }
    found = await events(store)
    assert len(found) == 8
    assert [(key, body) for t, key, body in found if t == "deleted"] == [
        (f"items:deleted:d:{version_d}:1", {"id": "d"})  # the 1st run whose changes were saved
    ]
    assert sum(1 for t, _, body in found if t == "updated" and body["name"] == "B2") == 1

    again = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert again.status == "unchanged" and again.changes == []
    assert len(await events(store)) == 8


def item_version(api: ItemsAPI, key: str) -> str:
    from hookwise.poller import item_version as version_of

    return version_of(api.items[key], None)


async def test_an_unchanged_collection_costs_only_304s(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.page_size = 10  # one page: its 304 stands for the whole listing
    for key in "abc":
        api.put(key)
    poller = Poller(store, handlers(), [poll(api)], client=client)
    await poller.run_once("items")
    api.reset_counters()

    for _ in range(3):
        run = await poller.run_once("items")
        assert run.status == "unchanged"
        assert (run.requests, run.not_modified, run.bytes) == (1, 1, 0)
    assert (api.requests, api.not_modified, api.body_bytes) == (3, 3, 0)
    assert all("if-none-match" in served.headers for served in api.log)
    assert len(await events(store)) == 3
    state = await store.get_poll_state("items")
    assert state is not None and state.etag is not None
    assert state.stats["not_modified"] == 3 and state.stats["requests"] == 4
    assert state.stats["last_status"] == 304
    # from the run's request to the next run: the 1 s interval plus the run's own time
    assert 1.0 <= cast(float, state.stats["latency_bound"]) < 1.5


async def test_an_unchanged_paginated_collection_costs_only_304s(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    for key in "abc":  # two pages: [a, b] and [c]
        api.put(key)
    poller = Poller(store, handlers(), [poll(api)], client=client)
    first = await poller.run_once("items")
    assert first.requests == 2 and len(first.changes) == 3
    api.reset_counters()

    for _ in range(3):
        run = await poller.run_once("items")
        assert run.status == "unchanged"
        assert (run.requests, run.not_modified, run.bytes) == (2, 2, 0)
    assert (api.requests, api.not_modified, api.body_bytes) == (6, 6, 0)
    assert [served.target for served in api.log[:2]] == ["/items", "/items?page=2"]
    assert all("if-none-match" in served.headers for served in api.log)

    api.put("c", name="renamed")  # a change on the last page
    run = await poller.run_once("items")
    assert [(c.kind, c.id) for c in run.changes] == [("updated", "c")]
    assert len(await events(store)) == 4


async def test_the_latency_bound_counts_a_wait_the_host_imposes(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    api.throttle(1, retry_after=600)  # longer than a run waits in place
    run = await Poller(store, handlers(), [poll(api)], client=client).run_once("items")
    assert run.status == "error" and run.error is not None and "600s" in run.error
    state = await store.get_poll_state("items")
    assert state is not None and state.next_due_at is not None
    assert state.next_due_at >= state.updated_at + 598
    # the interval is 1 s, but a change now waits for the host's 600 s
    assert cast(float, state.stats["latency_bound"]) >= 598


async def test_a_crash_between_append_and_index_update_re_emits_nothing_twice(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.page_size = 10
    api.put("a")
    api.put("b")
    settings = poll(api)
    await Poller(store, handlers(), [settings], client=client).run_once("items")
    api.put("a", name="changed")
    api.put("c")

    class Crash(Exception):
        pass

    class CrashingStore:
        """The real store, except that saving the index fails, as if the process died."""

        def __init__(self, inner: Store) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        async def update_poll_index(self, *args: Any, **kwargs: Any) -> None:
            raise Crash("killed")

    crashing = Poller(
        store=cast(Store, CrashingStore(store)),
        handlers=handlers(),
        polls=[settings],
        client=client,
    )
    with pytest.raises(Crash):
        await crashing.run_once("items")
    assert len(await events(store)) == 4  # appended, index not saved

    run = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert sorted((c.kind, c.id) for c in run.changes) == [("created", "c"), ("updated", "a")]
    assert len(await events(store)) == 4  # the same dedup keys: nothing twice
    after = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert after.changes == [] and after.not_modified == 1


async def test_429_with_retry_after_is_waited_out_before_the_same_page_is_asked_again(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    api.throttle(1, retry_after=1)
    started = time.monotonic()
    run = await Poller(store, handlers(), [poll(api)], client=client).run_once("items")
    elapsed = time.monotonic() - started

    assert run.status == "changed" and [c.id for c in run.changes] == ["a"]
    assert run.requests == 2 and run.waited >= 0.9
    assert elapsed >= 0.9
    assert [s.status for s in api.log] == [429, 200]
    assert api.log[1].at - api.log[0].at >= 0.9  # nothing sent while waiting
    assert api.log[0].target == api.log[1].target
    state = await store.get_poll_state("items")
    assert state is not None and state.stats["rate_limit_waits"] == 1


async def test_an_error_is_recorded_backed_off_and_cleared(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    broken = parse_poll("items", {"url": f"{api.url}/nowhere", "every": "1s"})
    run = await Poller(store, handlers(), [broken], client=client, rand=lambda: 0.5).run_once(
        "items"
    )
    assert run.status == "error" and run.error is not None
    assert "HTTP 404" in run.error and "check the poll's url" in run.error
    state = await store.get_poll_state("items")
    assert state is not None
    assert state.error == run.error and state.failures == 1 and state.error_since is not None
    assert state.next_due_at is not None and state.next_due_at >= state.updated_at + 1.0

    await Poller(store, handlers(), [broken], client=client).run_once("items")
    again = await store.get_poll_state("items")
    assert again is not None and again.failures == 2 and again.error_since == state.error_since
    assert again.stats["errors"] == 2

    fixed = await Poller(store, handlers(), [poll(api)], client=client).run_once("items")
    assert fixed.status == "changed"
    cleared = await store.get_poll_state("items")
    assert cleared is not None
    assert (cleared.error, cleared.error_since, cleared.failures) == (None, None, 0)
    assert cleared.stats["errors"] == 2


async def test_an_unreachable_host_is_an_error_not_a_crash(
    store: Store, client: httpx.AsyncClient
) -> None:
    settings = parse_poll("items", {"url": "http://127.0.0.1:9/items", "timeout": "2s"})
    run = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert run.status == "error" and run.error is not None and "reachable" in run.error


async def test_incremental_since_asks_only_for_newer_items(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.page_size = 10
    for key in "abc":
        api.put(key)
    settings = poll(api, since_param="since", since_field="updated")
    poller = Poller(store, handlers(), [settings], client=client)
    first = await poller.run_once("items")
    assert len(first.changes) == 3
    state = await store.get_poll_state("items")
    assert state is not None and state.cursor == "3"

    api.delete("a")  # incremental listings can't see deletions
    api.put("b", name="new")
    second = await poller.run_once("items")
    assert [(c.kind, c.id) for c in second.changes] == [("updated", "b")]
    assert api.log[-1].target == "/items?since=3"
    state = await store.get_poll_state("items")
    assert state is not None and state.cursor == "5"
    assert sorted(await store.poll_index("items")) == ["a", "b", "c"]


async def test_cursor_pagination(store: Store, api: ItemsAPI, client: httpx.AsyncClient) -> None:
    api.pagination = "cursor"
    for key in "abcde":
        api.put(key)
    settings = poll(
        api, items="data", pages="cursor", cursor_field="next_cursor", cursor_param="cursor"
    )
    run = await Poller(store, handlers(), [settings], client=client).run_once("items")
    assert run.requests == 3
    assert sorted(c.id for c in run.changes) == list("abcde")


async def test_run_keeps_polling_until_stopped(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    settings = parse_poll("items", {"url": f"{api.url}/items", "every": "200ms"})
    poller = Poller(store, handlers(), [settings], client=client)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    for _ in range(100):  # at most 5 s
        if api.not_modified >= 2:
            break
        await asyncio.sleep(0.05)
    api.put("b")
    for _ in range(100):
        if len(await events(store)) >= 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert sorted(t for t, _, _ in await events(store)) == ["created", "created"]
    assert api.not_modified >= 2
    state = await store.get_poll_state("items")
    assert state is not None and state.next_due_at is not None and state.interval == 0.2


async def test_run_waits_between_runs_with_the_given_sleep(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    clock = FrozenClock(1_800_000_000.0)
    stop = asyncio.Event()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # simulated time: no real waiting
        slept.append(seconds)
        clock.advance(seconds)
        if len(slept) >= 5:
            stop.set()
        await asyncio.sleep(0)

    settings = parse_poll("items", {"url": f"{api.url}/items", "every": "10m"})
    poller = Poller(store, handlers(), [settings], client=client, clock=clock, sleep=sleep)
    started = time.monotonic()
    await asyncio.wait_for(poller.run(stop), timeout=10)
    assert time.monotonic() - started < 5
    # five 60 s slices of simulated time; a run every 600 s of it: the first one at once
    assert slept == [60.0] * 5
    assert api.requests == 1
    clock.advance(600)
    stop.clear()
    slept.clear()
    await asyncio.wait_for(poller.run(stop), timeout=10)
    assert api.requests == 2 and api.not_modified == 1


async def test_an_ordering_policy_and_the_item_time_go_with_the_events(
    store: Store, api: ItemsAPI, client: httpx.AsyncClient
) -> None:
    api.put("a")
    api.put("b")
    settings = poll(api, ordering="latest", occurred_at="updated")
    await Poller(store, handlers(), [settings], client=client).run_once("items")
    found = await store.list_events(EventFilter(source="items", limit=10))
    assert sorted((e.ordering_key, e.occurred_at) for e in found) == [("a", 1.0), ("b", 2.0)]
    for event in found:
        [delivery] = await store.deliveries(event.seq)
        assert (delivery.policy, delivery.ordering_key) == ("latest", event.ordering_key)

    unordered = parse_poll("plain", {"url": f"{api.url}/items", "source": "items"})
    api.put("c")
    await Poller(store, handlers(), [unordered], client=client).run_once("plain")
    newest = await store.list_events(EventFilter(source="items", limit=1))
    [delivery] = await store.deliveries(newest[0].seq)
    assert delivery.policy is None and newest[0].occurred_at is None
