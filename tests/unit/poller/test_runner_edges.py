"""The poll runner where listings misbehave: pages that change under it, items that come
back to an earlier state, cut-short incremental listings, hosts that are slow or odd.

The API is an ``httpx.MockTransport`` that pages a JSON listing the way GitHub does: a
``Link: rel="next"`` header, and an ``ETag`` that is a digest of the page's own body
(so the first page's tag says nothing about the others).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from hookwise.handlers import HandlerRegistry
from hookwise.poller.runner import Poller
from hookwise.poller.settings import PollSettings, parse_poll
from hookwise.store import EventFilter, MemoryStore, Store

BASE = "https://api.test/items"


class Listing:
    """A collection listed ``page_size`` items a page, sorted by ``key`` (reversed with
    ``newest_first``), with ``?since=N`` keeping the items whose ``updated`` is >= N."""

    def __init__(self, page_size: int = 2, *, key: str = "id", newest_first: bool = False):
        self.page_size = page_size
        self.key = key
        self.newest_first = newest_first
        self.items: dict[str, dict[str, Any]] = {}
        self.clock = 0
        self.requests: list[httpx.Request] = []
        self.before_page: Callable[[int], None] | None = None

    def put(self, item_id: str, **fields: Any) -> None:
        self.clock += 1
        self.items[item_id] = {"id": item_id, **fields, "updated": self.clock}

    def delete(self, item_id: str) -> None:
        del self.items[item_id]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = int(request.url.params.get("page", "1"))
        if self.before_page is not None:
            self.before_page(page)
        listed = sorted(
            self.items.values(), key=lambda item: item[self.key], reverse=self.newest_first
        )
        since = request.url.params.get("since")
        if since is not None:
            listed = [item for item in listed if item["updated"] >= int(since)]
        start = (page - 1) * self.page_size
        body = json.dumps(listed[start : start + self.page_size]).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"etag": etag})
        headers = {"etag": etag, "content-type": "application/json"}
        if start + self.page_size < len(listed):
            headers["link"] = f'<{request.url.copy_set_param("page", page + 1)}>; rel="next"'
        return httpx.Response(200, content=body, headers=headers)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with MemoryStore() as opened:
        yield opened


def poller(store: Store, api: Callable[[httpx.Request], httpx.Response], *polls: PollSettings):
    client = httpx.AsyncClient(transport=httpx.MockTransport(api))
    return Poller(store, HandlerRegistry(), list(polls), client=client)


def settings(**table: Any) -> PollSettings:
    return parse_poll("items", {"url": BASE, "every": "1s", **table})


async def changes(store: Store) -> list[tuple[str, str]]:
    found = await store.list_events(EventFilter(source="items", limit=1000))
    return sorted((event.type, json.loads(event.body)["id"]) for event in found)


async def test_a_change_below_an_unchanged_first_page_is_seen(store: Store) -> None:
    api = Listing()
    for key in "abcd":
        api.put(key)
    runner = poller(store, api, settings())
    await runner.run_once("items")

    api.put("d", name="renamed")  # page 2 changes, page 1 (a, b) does not
    run = await runner.run_once("items")

    assert [(c.kind, c.id) for c in run.changes] == [("updated", "d")]


async def test_a_single_page_listing_still_costs_a_304(store: Store) -> None:
    api = Listing(page_size=10)
    api.put("a")
    runner = poller(store, api, settings())
    await runner.run_once("items")
    run = await runner.run_once("items")
    assert (run.status, run.not_modified, run.requests) == ("unchanged", 1, 1)


async def test_an_item_that_comes_back_to_an_earlier_state_is_reported_each_time(
    store: Store,
) -> None:
    api = Listing(page_size=10)
    api.items["light"] = {"id": "light", "state": "off"}
    runner = poller(store, api, settings())
    await runner.run_once("items")
    for state in ("on", "off", "on", "off"):
        api.items["light"] = {"id": "light", "state": state}
        run = await runner.run_once("items")
        assert [(c.kind, c.id) for c in run.changes] == [("updated", "light")]

    found = await store.list_events(EventFilter(source="items", limit=100))
    assert sorted(json.loads(e.body)["state"] for e in found if e.type == "updated") == [
        "off",
        "off",
        "on",
        "on",
    ]


async def test_an_item_deleted_and_created_again_is_reported_each_time(store: Store) -> None:
    api = Listing(page_size=10)
    api.items["a"] = {"id": "a"}
    api.items["b"] = {"id": "b"}
    runner = poller(store, api, settings())
    await runner.run_once("items")
    for _ in range(2):
        del api.items["b"]
        await runner.run_once("items")
        api.items["b"] = {"id": "b"}
        await runner.run_once("items")
    assert await changes(store) == [
        ("created", "a"),
        ("created", "b"),
        ("created", "b"),
        ("created", "b"),
        ("deleted", "b"),
        ("deleted", "b"),
    ]


async def test_a_crash_after_appending_re_emits_the_same_keys(store: Store) -> None:
    api = Listing(page_size=10)
    api.items["a"] = {"id": "a", "state": "off"}
    runner = poller(store, api, settings())
    await runner.run_once("items")
    api.items["a"] = {"id": "a", "state": "on"}
    saved = store.update_poll_index

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    store.update_poll_index = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await runner.run_once("items")
    store.update_poll_index = saved  # type: ignore[method-assign]
    run = await runner.run_once("items")
    assert [(c.kind, c.id) for c in run.changes] == [("updated", "a")]
    assert await changes(store) == [("created", "a"), ("updated", "a")]


async def test_an_item_that_shifts_to_a_fetched_page_is_not_reported_deleted(
    store: Store,
) -> None:
    api = Listing()
    for key in "abcde":
        api.put(key)
    runner = poller(store, api, settings())
    await runner.run_once("items")

    def delete_a_after_page_one(page: int) -> None:
        if page == 2 and "a" in api.items:
            api.delete("a")  # c moves from page 2 to page 1, which was already fetched

    api.before_page = delete_a_after_page_one
    api.put("b", note="edited")  # page 1 changes: the run walks the listing from the start
    run = await runner.run_once("items")
    # c was missed by the first walk only; a, gone between the walks, waits for a run
    # whose walks both miss it
    assert [(c.kind, c.id) for c in run.changes] == [("updated", "b")]
    assert len(api.requests) == 3 + 2 + 2

    api.before_page = None
    run = await runner.run_once("items")
    assert [(c.kind, c.id) for c in run.changes] == [("deleted", "a")]
    assert sorted(await store.poll_index("items")) == ["b", "c", "d", "e"]
    assert (await runner.run_once("items")).changes == []
    assert await changes(store) == [("created", key) for key in "abcde"] + [
        ("deleted", "a"),
        ("updated", "b"),
    ]


async def test_a_cut_short_incremental_listing_skips_no_unfetched_item(store: Store) -> None:
    api = Listing(key="updated", newest_first=True)  # newest first: the cursor can't jump
    for key in "abcd":
        api.put(key)
    runner = poller(store, api, settings(since_param="since", since_field="updated", max_pages=1))
    run = await runner.run_once("items")
    assert sorted(c.id for c in run.changes) == ["c", "d"]
    state = await store.get_poll_state("items")
    assert state is not None and state.cursor is None  # a and b are still to be listed


async def test_a_cut_short_incremental_listing_oldest_first_moves_on(store: Store) -> None:
    api = Listing(key="updated")
    for key in "abcd":
        api.put(key)
    runner = poller(store, api, settings(since_param="since", since_field="updated", max_pages=1))
    seen: list[str] = []
    for _ in range(3):
        seen += [c.id for c in (await runner.run_once("items")).changes]
    assert seen == ["a", "b", "c", "d"]


async def test_a_poll_waiting_for_its_host_does_not_hold_up_a_poll_on_another(
    store: Store,
) -> None:
    started = time.monotonic()
    asked: dict[str, float] = {}

    def api(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "slow.test" and host not in asked:
            asked[host] = time.monotonic() - started
            return httpx.Response(429, headers={"retry-after": "2"})
        asked.setdefault(host, time.monotonic() - started)
        return httpx.Response(200, json=[])

    slow = parse_poll("slow", {"url": "https://slow.test/items", "every": "1m"})
    fast = parse_poll("fast", {"url": "https://fast.test/items", "every": "1m"})
    runner = poller(store, api, slow, fast)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    for _ in range(100):
        if "fast.test" in asked:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert asked["fast.test"] < 1.0


async def test_a_next_page_on_another_host_gets_no_credentials(store: Store) -> None:
    sent: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            200, json=[{"id": 1}], headers={"link": '<https://evil.test/x>; rel="next"'}
        )

    runner = poller(store, api, settings(headers={"Authorization": "Bearer secret"}))
    run = await runner.run_once("items")
    assert [r.url.host for r in sent] == ["api.test"]
    assert run.status == "error" and run.error is not None
    assert "evil.test" in run.error and "api.test" in run.error


@pytest.mark.parametrize(
    ("body", "link"),
    [
        (b"[" * 100_000 + b"]" * 100_000, None),
        (b'[{"id": 1}]', '<http://[::1/x>; rel="next"'),
    ],
    ids=["too-deep-json", "invalid-next-url"],
)
async def test_an_odd_response_is_a_recorded_error(
    store: Store, body: bytes, link: str | None
) -> None:
    headers = {"link": link} if link else {}

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=headers)

    run = await poller(store, api, settings()).run_once("items")
    assert run.status == "error" and run.error is not None
    state = await store.get_poll_state("items")
    assert state is not None and state.failures == 1


async def test_a_delivery_log_entry_missed_once_is_not_emitted_again(store: Store) -> None:
    from hookwise import Hookwise

    hw = Hookwise(store="memory://")
    hw.source("stripe", provider="stripe", secrets=["whsec_test"])
    hw.poll("backfill", "https://api.test/v1/events", preset="stripe-events", source="stripe")
    log = [
        {"id": f"evt_{n}", "object": "event", "type": "invoice.paid", "created": n, "data": {}}
        for n in range(3)
    ]
    hidden: set[str] = set()

    def api(request: httpx.Request) -> httpx.Response:
        listed = [event for event in reversed(log) if event["id"] not in hidden]
        return httpx.Response(200, json={"object": "list", "data": listed, "has_more": False})

    client = httpx.AsyncClient(transport=httpx.MockTransport(api))
    async with hw.poller(store, client=client) as runner:
        assert (await runner.run_once("backfill")).emitted == 3
        hidden.add("evt_1")  # missed once (the listing shifted while it was paged)
        assert (await runner.run_once("backfill")).emitted == 0
        hidden.clear()
        assert (await runner.run_once("backfill")).emitted == 0
        assert sorted(await store.poll_index("backfill")) == ["evt_0", "evt_1", "evt_2"]
        hidden.add("evt_0")  # gone for good: forgotten after two listings without it
        await runner.run_once("backfill")
        await runner.run_once("backfill")
        assert sorted(await store.poll_index("backfill")) == ["evt_1", "evt_2"]


async def test_each_page_of_an_unchanged_listing_answers_304(store: Store) -> None:
    api = Listing()
    for key in "abc":  # [a, b], [c]
        api.put(key)
    runner = poller(store, api, settings())
    await runner.run_once("items")
    api.requests.clear()
    run = await runner.run_once("items")
    assert (run.status, run.requests, run.not_modified, run.bytes) == ("unchanged", 2, 2, 0)
    assert all("if-none-match" in request.headers for request in api.requests)

    api.put("b", note="edited")  # page 1 changes: the whole listing is walked
    run = await runner.run_once("items")
    assert [(c.kind, c.id) for c in run.changes] == [("updated", "b")]


async def test_a_new_page_after_a_full_last_page_is_seen(store: Store) -> None:
    api = Listing()
    for key in "abcd":  # [a, b], [c, d]: the last page is full
        api.put(key)
    runner = poller(store, api, settings())
    await runner.run_once("items")
    api.put("e")  # [a, b], [c, d], [e]: pages 1 and 2 are unchanged
    run = await runner.run_once("items")
    assert [(c.kind, c.id) for c in run.changes] == [("created", "e")]
    # both pages answered 304, and a 304 names no next page: walked again, unconditionally
    statuses = [request.headers.get("if-none-match") is not None for request in api.requests[-5:]]
    assert statuses == [True, True, False, False, False]
    assert (await runner.run_once("items")).status == "unchanged"
