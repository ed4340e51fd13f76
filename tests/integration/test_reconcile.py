"""Reconciliation: webhooks (push) plus a poll of the provider's own delivery records
(pull) make one intake. A real receiver and fake Stripe/GitHub APIs on loopback, a real
worker, on SQLite and PostgreSQL: what the webhooks missed, the poll brings, and every
event runs once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookwise import Event, Hookwise, Settings, SourceSettings, StoreSettings
from hookwise.errors import ConfigError
from hookwise.handlers import HandlerRegistry
from hookwise.poller.runner import Poller, PollRun
from hookwise.poller.settings import PollSettings, parse_poll
from hookwise.store import EventFilter, MemoryStore, Store

from ._live import live
from ._postgres import pg_schema
from ._provider_apis import FakeGitHub, FakeStripe

STRIPE_SECRET = "whsec_test_reconcile_secret"
GITHUB_SECRET = "It's a Secret to Everybody"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL the receiver (its own thread and loop) and the test share."""
    if request.param == "postgres":
        with pg_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'hookwise.db'}"


class Recorder:
    """A handler that counts the runs of each event and notes its intake."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.intakes: dict[str, str] = {}
        self.bodies: dict[str, Any] = {}

    async def __call__(self, event: Event) -> None:
        self.runs[event.id] += 1
        self.intakes[event.id] = event.intake
        self.bodies[event.id] = event.json()


def make_app(store_url: str) -> tuple[Hookwise, Recorder]:
    hw = Hookwise(
        settings=Settings(
            store=StoreSettings(url=store_url),
            sources={
                "stripe": SourceSettings(
                    name="stripe", provider="stripe", secrets=(STRIPE_SECRET,)
                ),
                "github": SourceSettings(
                    name="github", provider="github", secrets=(GITHUB_SECRET,)
                ),
            },
        )
    )
    recorder = Recorder()

    @hw.handler("stripe", name="stripe-sink")
    async def on_stripe(event: Event) -> None:
        await recorder(event)

    @hw.handler("github", name="github-sink")
    async def on_github(event: Event) -> None:
        await recorder(event)

    return hw, recorder


def stripe_poll(api: FakeStripe, **table: Any) -> PollSettings:
    return parse_poll(
        "stripe-backfill",
        {
            "preset": "stripe-events",
            "url": f"{api.url}/v1/events?delivery_success=false",
            "source": "stripe",
            "headers": {"Authorization": f"Bearer {api.token}"},
            "page_size": 5,
            **table,
        },
    )


def github_poll(api: FakeGitHub, **table: Any) -> PollSettings:
    return parse_poll(
        "github-backfill",
        {
            "preset": "github-deliveries",
            "url": api.deliveries_url,
            "source": "github",
            "headers": {"Authorization": f"Bearer {api.token}"},
            "page_size": 4,
            **table,
        },
    )


async def run_poll(hw: Hookwise, store: Store, settings: PollSettings) -> PollRun:
    async with Poller(store, hw.handlers, [settings], sources=hw.sources) as poller:
        return await poller.run_once(settings.name)


async def stored(store: Store, source: str) -> dict[str, Any]:
    return {e.dedup_key: e for e in await store.list_events(EventFilter(source=source, limit=1000))}


# -- Stripe --------------------------------------------------------------------------------


async def test_stripe_events_bring_what_the_webhooks_missed_and_nothing_twice(
    store_url: str,
) -> None:
    hw, recorder = make_app(store_url)
    stripe = FakeStripe()
    events = [stripe.create("invoice.paid", f"in_{n % 7}") for n in range(40)]
    dropped = {events[n].id for n in range(2, 40, 5)}
    assert len(dropped) == 8
    # Delivered to this endpoint but failing at another: still listed as not delivered.
    failing_elsewhere = {events[n].id for n in (0, 11, 23, 39)}
    for event in events:
        event.pending = event.id in dropped | failing_elsewhere

    with live(hw.asgi()) as receiver, live(stripe, lifespan="off") as api:
        stripe.url = api.url
        async with httpx.AsyncClient() as client:
            for event in events:
                if event.id in dropped:
                    continue
                answer = await stripe.deliver(client, hw.sources["stripe"], receiver.url, event)
                assert answer.status_code == 200 and answer.json()["status"] == "accepted"

        async with hw.open_store() as store:
            assert await hw.worker(store).drain() == 32
            run = await run_poll(hw, store, stripe_poll(stripe))
            assert run.error is None and run.status == "changed"
            assert (run.emitted, run.backfilled) == (12, 8)
            assert await hw.worker(store).drain() == 8

            # Paged as Stripe pages: limit on every page, the last id as starting_after.
            pages = stripe.list_requests
            assert len(pages) == 3
            assert all(p.query["delivery_success"] == ["false"] for p in pages)
            assert all(p.query["limit"] == ["5"] for p in pages)
            assert "starting_after" not in pages[0].query
            assert pages[1].query["starting_after"] and pages[2].query["starting_after"]

            assert recorder.runs == {event.id: 1 for event in events}
            assert recorder.intakes == {
                event.id: "pull" if event.id in dropped else "push" for event in events
            }
            found = await stored(store, "stripe")
            for event in events:
                record = found[event.id]  # the webhook's own dedup key, not a poll's
                assert json.loads(record.body) == event.document
                assert record.type == "invoice.paid"
                assert record.ordering_key == event.document["data"]["object"]["id"]
                assert record.occurred_at == event.document["created"]
            pulled = found[sorted(dropped)[0]]
            assert (
                pulled.body == json.dumps(json.loads(pulled.body), separators=(",", ":")).encode()
            )
            # Backfilled oldest first, as they happened.
            pulled_in_order = sorted(
                (e for e in found.values() if e.intake == "pull"), key=lambda e: e.seq
            )
            assert [e.occurred_at for e in pulled_in_order] == sorted(
                e.occurred_at for e in pulled_in_order
            )

            again = await run_poll(hw, store, stripe_poll(stripe))
            assert (again.status, again.emitted, again.backfilled) == ("unchanged", 0, 0)
            assert await hw.worker(store).drain() == 0
            state = await store.get_poll_state("stripe-backfill")
            assert state is not None
            assert (state.stats["emitted"], state.stats["backfilled"]) == (12, 8)
            assert len(await stored(store, "stripe")) == 40


async def test_a_crash_before_the_index_is_saved_re_emits_and_nothing_runs_twice(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hw, recorder = make_app(store_url)
    stripe = FakeStripe()
    events = [stripe.create("invoice.paid", f"in_{n}") for n in range(10)]
    dropped = {events[n].id for n in (1, 4, 5, 8)}
    for event in events:
        event.pending = event.id in dropped

    with live(hw.asgi()) as receiver, live(stripe, lifespan="off") as api:
        stripe.url = api.url
        async with httpx.AsyncClient() as client:
            for event in events:
                if event.id not in dropped:
                    await stripe.deliver(client, hw.sources["stripe"], receiver.url, event)

        async with hw.open_store() as store:

            class Crash(Exception):
                pass

            real_update = store.update_poll_index
            failures = iter([Crash("killed before the index was saved")])

            async def update_once_failing(*args: Any, **kwargs: Any) -> None:
                failure = next(failures, None)
                if failure is not None:
                    raise failure
                await real_update(*args, **kwargs)

            monkeypatch.setattr(store, "update_poll_index", update_once_failing)
            with pytest.raises(Crash):
                await run_poll(hw, store, stripe_poll(stripe))
            assert await store.poll_index("stripe-backfill") == {}
            assert await hw.worker(store).drain() == 10  # the 4 appended before the crash

            rerun = await run_poll(hw, store, stripe_poll(stripe))
            assert (rerun.emitted, rerun.backfilled) == (4, 0)  # the same dedup keys
            assert sorted(await store.poll_index("stripe-backfill")) == sorted(dropped)
            assert await hw.worker(store).drain() == 0
            last = await run_poll(hw, store, stripe_poll(stripe))
            assert (last.emitted, last.backfilled) == (0, 0)

    assert recorder.runs == {event.id: 1 for event in events}
    assert {i for i, intake in recorder.intakes.items() if intake == "pull"} == dropped


# -- GitHub --------------------------------------------------------------------------------


def issue(number: int) -> dict[str, Any]:
    return {
        "action": "opened",
        "issue": {"id": 2_000_000 + number, "number": number, "title": f"Issue {number}"},
        "repository": {"id": 1296269, "full_name": "octo-org/hello-world"},
        "sender": {"login": "octocat", "id": 583231},
    }


async def test_github_deliveries_bring_the_failed_ones_and_fetch_only_those(
    store_url: str,
) -> None:
    hw, recorder = make_app(store_url)
    github = FakeGitHub()
    source = hw.sources["github"]
    dropped = {3, 7, 12, 18, 21, 25}  # never reached the receiver; GitHub recorded 502
    answer_lost = {5, 14, 27}  # stored by the receiver, but GitHub saw the answer fail
    redelivered_failing = 9  # dropped, redelivered by hand, dropped again
    redelivered_ok = 16  # dropped, then redelivered successfully
    guids: dict[int, str] = {}

    with live(hw.asgi()) as receiver, live(github, lifespan="off") as api:
        github.url = api.url
        async with httpx.AsyncClient() as client:

            async def post(headers: dict[str, str], body: bytes) -> None:
                answer = await client.post(
                    f"{receiver.url}/hooks/github", content=body, headers=headers
                )
                assert answer.status_code == 200

            for number in range(30):
                reaches = number not in dropped | {redelivered_failing, redelivered_ok}
                status = 200 if reaches and number not in answer_lost else 502
                delivery, body = github.record(source, issue(number), status_code=status)
                guids[number] = delivery.guid
                if reaches:
                    await post(delivery.headers, body)
            again, _ = github.record(
                source,
                issue(redelivered_failing),
                status_code=502,
                guid=guids[redelivered_failing],
                redelivery=True,
            )
            assert again.guid == guids[redelivered_failing]
            retried, body = github.record(
                source,
                issue(redelivered_ok),
                status_code=200,
                guid=guids[redelivered_ok],
                redelivery=True,
            )
            await post(retried.headers, body)

        never_received = {guids[n] for n in dropped | {redelivered_failing}}
        failed_ids = {d.id for d in github.deliveries if d.status_code >= 300}
        assert len(failed_ids) == 6 + 3 + 2 + 1

        async with hw.open_store() as store:
            await hw.worker(store).drain()
            run = await run_poll(hw, store, github_poll(github))
            assert run.error is None
            assert (run.emitted, run.backfilled) == (len(failed_ids), len(never_received))
            await hw.worker(store).drain()

            # Every page walked by its Link; details fetched for failed deliveries only.
            assert len(github.list_requests) == 8  # 32 deliveries, 4 a page
            assert all(p.query["per_page"] == ["4"] for p in github.list_requests)
            assert sorted(github.detail_requests) == sorted(failed_ids)

            assert recorder.runs == {guid: 1 for guid in guids.values()}
            assert recorder.intakes == {
                guid: "pull" if guid in never_received else "push" for guid in guids.values()
            }
            assert recorder.bodies == {guids[n]: issue(n) for n in range(30)}
            found = await stored(store, "github")
            pulled = found[guids[dropped.pop()]]
            assert pulled.type == "issues.opened" and pulled.ordering_key == "1296269"
            headers = dict(pulled.headers)
            assert headers["x-github-delivery"] == pulled.dedup_key
            assert headers["x-github-event"] == "issues"

            index = await store.poll_index("github-backfill")
            assert set(index) == {str(i) for i in failed_ids}
            repeat = await run_poll(hw, store, github_poll(github))
            assert (repeat.emitted, repeat.backfilled) == (0, 0)
            assert sorted(github.detail_requests) == sorted(failed_ids)  # none fetched again
            assert await hw.worker(store).drain() == 0
            state = await store.get_poll_state("github-backfill")
            assert state is not None and state.stats["detail_requests"] == len(failed_ids)
            assert state.stats["requests"] == 8 + len(failed_ids) + 8


async def test_a_detail_failing_half_way_keeps_what_was_appended(store_url: str) -> None:
    hw, recorder = make_app(store_url)
    github = FakeGitHub()
    source = hw.sources["github"]
    with live(github, lifespan="off") as api:
        github.url = api.url
        made = [github.record(source, issue(n), status_code=502)[0] for n in range(6)]
        github.broken_details = {made[3].id}

        async with hw.open_store() as store:
            failed = await run_poll(hw, store, github_poll(github))
            assert failed.status == "error" and failed.error is not None
            assert f"/deliveries/{made[3].id}" in failed.error and "HTTP 500" in failed.error
            assert (failed.emitted, failed.backfilled) == (3, 3)  # oldest first, up to it
            assert set(await store.poll_index("github-backfill")) == {str(d.id) for d in made[:3]}
            state = await store.get_poll_state("github-backfill")
            assert state is not None and state.failures == 1

            github.broken_details = set()
            fixed = await run_poll(hw, store, github_poll(github))
            assert (fixed.status, fixed.emitted, fixed.backfilled) == ("changed", 3, 3)
            assert sorted(github.detail_requests) == sorted([d.id for d in made] + [made[3].id])
            assert await hw.worker(store).drain() == 6
    assert recorder.runs == {d.guid: 1 for d in made}


async def test_a_delivery_without_its_headers_is_refused_not_run_twice(tmp_path: Path) -> None:
    hw, _ = make_app(f"sqlite:///{tmp_path / 'hookwise.db'}")
    github = FakeGitHub()
    with live(github, lifespan="off") as api:
        github.url = api.url
        github.record(hw.sources["github"], issue(1), status_code=502)
        async with hw.open_store() as store:
            run = await run_poll(hw, store, github_poll(github, request_headers="request.nope"))
            assert run.status == "error" and run.error is not None
            assert "found no delivery id" in run.error and "request_headers" in run.error
            assert await stored(store, "github") == {}


# -- errors --------------------------------------------------------------------------------


def test_an_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_poll("backfill", {"preset": "stripe-deliveries", "source": "stripe"})
    assert caught.value.key == "polls.backfill.preset"
    assert caught.value.fix is not None and "stripe-events" in caught.value.fix


def test_events_with_a_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_poll("backfill", {"preset": "stripe-events", "version": "created"})
    assert caught.value.key == "polls.backfill.version"
    assert "once" in caught.value.problem


async def test_an_events_poll_of_a_missing_source_fails_at_construction() -> None:
    hw, _ = make_app("memory://")
    settings = parse_poll("backfill", {"preset": "stripe-events", "source": "billing"})
    with pytest.raises(ConfigError) as caught:
        Poller(MemoryStore(), HandlerRegistry(), [settings], sources=hw.sources)
    message = str(caught.value)
    assert "poll 'backfill' emits events of source 'billing'" in message
    assert "not a configured webhook source" in message
    assert caught.value.key == "polls.backfill.source"
    assert caught.value.fix is not None and "[sources.billing]" in caught.value.fix
    assert "github, stripe" in caught.value.fix
    with pytest.raises(ConfigError):
        Poller(MemoryStore(), HandlerRegistry(), [settings])  # no sources at all
