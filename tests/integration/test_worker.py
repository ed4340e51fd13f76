"""The worker against real stores: outcomes, leases, concurrency, shutdown, crashes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hookwise.backoff import RetryPolicy
from hookwise.clock import Clock, FrozenClock, system_clock
from hookwise.config import WorkerSettings
from hookwise.errors import Reject, Retry
from hookwise.events import Event, NewEvent
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.store import MemoryStore, Settlement, Store, open_store
from hookwise.store._base import Claim, DeliveryRecord
from hookwise.worker import Worker

from ._postgres import pg_schema

NOW = 1_700_000_000.0
SRC = Path(__file__).resolve().parents[2] / "src"


def half() -> float:
    return 0.5


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        with pg_schema() as url:
            async with open_store(url) as opened:
                yield opened
        return
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'x.db'}"
    async with open_store(url) as opened:
        yield opened


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'x.db'}"


def registry(*specs: HandlerSpec) -> HandlerRegistry:
    found = HandlerRegistry()
    for spec in specs:
        found.add(spec)
    return found


def worker_for(
    store: Store,
    *specs: HandlerSpec,
    clock: Clock | None = None,
    **settings: Any,
) -> Worker:
    return Worker(
        store,
        registry(*specs),
        settings=WorkerSettings(**settings),
        clock=clock if clock is not None else FrozenClock(NOW),
        rand=half,
    )


async def append(
    store: Store, count: int = 1, *, handler: str = "h", at: float = NOW, body: bytes = b"{}"
) -> list[int]:
    seqs = []
    for n in range(count):
        event = NewEvent(
            source="acme",
            dedup_key=f"evt_{n}",
            type="thing.happened",
            body=body,
            received_at=at,
        )
        seqs.append((await store.append(event, handlers=[handler])).seq)
    return seqs


async def delivery(store: Store, seq: int) -> DeliveryRecord:
    (found,) = await store.deliveries(seq)
    return found


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[asyncio.Event]:
    """Run ``workers`` until the block ends, then stop them and wait for their shutdown."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


# -- outcomes ------------------------------------------------------------------------------


async def test_success_is_done_and_recorded(store: Store) -> None:
    seen: list[Event] = []

    async def handle(event: Event) -> None:
        seen.append(event)

    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle)) as worker:
        assert await worker.drain() == 1

    assert [(e.id, e.attempt, e.seq) for e in seen] == [("evt_0", 1, seq)]
    record = await delivery(store, seq)
    assert (record.status, record.attempts, record.lease_owner) == ("done", 1, None)
    (attempt,) = await store.attempts(record.id)
    assert (attempt.number, attempt.outcome, attempt.error) == (1, "done", None)
    assert attempt.owner == worker.owner
    assert (worker.stats.claimed, worker.stats.done) == (1, 1)


async def test_exception_retries_within_the_backoff_ceiling(store: Store) -> None:
    async def handle(event: Event) -> None:
        raise ValueError("downstream said no")

    policy = RetryPolicy(base_delay=4)
    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle, policy=policy)) as worker:
        assert await worker.drain() == 1

    record = await delivery(store, seq)
    assert record.status == "retrying"
    assert record.next_attempt_at is not None
    assert NOW <= record.next_attempt_at <= NOW + policy.ceiling(1)
    assert record.next_attempt_at == NOW + 0.5 * policy.ceiling(1)
    assert record.last_error is not None
    assert record.last_error.startswith("ValueError: downstream said no\n")
    assert "Traceback" in record.last_error
    (attempt,) = await store.attempts(record.id)
    assert attempt.outcome == "retry"
    assert worker.stats.retried == 1


async def test_retry_after_is_honoured(store: Store) -> None:
    async def handle(event: Event) -> None:
        raise Retry("rate limited", after=30)

    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle)) as worker:
        await worker.drain()

    record = await delivery(store, seq)
    assert (record.status, record.next_attempt_at) == ("retrying", NOW + 30)
    assert record.last_error == "Retry: rate limited"


async def test_reject_is_dead_at_once(store: Store) -> None:
    async def handle(event: Event) -> None:
        raise Reject("unknown customer")

    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle)) as worker:
        await worker.drain()

    record = await delivery(store, seq)
    assert (record.status, record.attempts, record.last_error) == (
        "dead",
        1,
        "Reject: unknown customer",
    )
    assert [d.id for d in await store.list_dead()] == [record.id]
    assert worker.stats.dead == 1


async def test_max_attempts_exhausted_is_dead(store: Store) -> None:
    calls = 0

    async def handle(event: Event) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("still broken")

    clock = FrozenClock(NOW)
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=1)
    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle, policy=policy), clock=clock) as worker:
        for _ in range(5):
            await worker.drain()
            clock.advance(2)

    assert calls == 3
    record = await delivery(store, seq)
    assert (record.status, record.attempts) == ("dead", 3)
    history = await store.attempts(record.id)
    assert [a.outcome for a in history] == ["retry", "retry", "dead"]
    assert [a.number for a in history] == [1, 2, 3]


async def test_max_age_exhausted_is_dead(store: Store) -> None:
    async def handle(event: Event) -> None:
        raise ValueError("still broken")

    clock = FrozenClock(NOW)
    policy = RetryPolicy(max_age=10, base_delay=2)
    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle, policy=policy), clock=clock) as worker:
        await worker.drain()
        assert (await delivery(store, seq)).status == "retrying"
        clock.advance(11)
        await worker.drain()

    record = await delivery(store, seq)
    assert (record.status, record.attempts) == ("dead", 2)
    assert record.last_error is not None
    assert "max_age=10s" in record.last_error


async def test_a_claim_that_never_settled_too_often_is_dead_without_running(
    store: Store,
) -> None:
    calls = 0

    async def handle(event: Event) -> None:
        nonlocal calls
        calls += 1

    clock = FrozenClock(NOW)
    (seq,) = await append(store)
    for _ in range(2):  # two workers crash mid-handler; their leases expire
        assert len(await store.claim("crashed", limit=1, lease=30, now=clock.now())) == 1
        clock.advance(31)

    policy = RetryPolicy(max_attempts=2)
    async with worker_for(store, HandlerSpec("h", handle, policy=policy), clock=clock) as worker:
        assert await worker.drain() == 1

    assert calls == 0
    record = await delivery(store, seq)
    assert record.status == "dead"
    assert record.last_error is not None
    assert "gave up after 2 attempts that never settled" in record.last_error


async def test_sync_handler_runs_in_a_worker_thread(store: Store) -> None:
    threads: list[str] = []

    def handle(event: Event) -> None:
        threads.append(threading.current_thread().name)

    seqs = await append(store, 3)
    async with worker_for(store, HandlerSpec("h", handle), threads=2) as worker:
        assert await worker.drain() == 3

    assert len(threads) == 3
    assert all(name.startswith("hookwise-handler") for name in threads)
    assert threading.current_thread().name not in threads
    assert [(await delivery(store, s)).status for s in seqs] == ["done"] * 3


async def test_async_timeout_retries(store: Store) -> None:
    cancelled = asyncio.Event()

    async def handle(event: Event) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cancelled.set()

    (seq,) = await append(store)
    spec = HandlerSpec("h", handle, timeout=0.05)
    async with worker_for(store, spec) as worker:
        await worker.drain()

    assert cancelled.is_set()
    record = await delivery(store, seq)
    assert record.status == "retrying"
    assert record.last_error is not None
    assert record.last_error.startswith("TimeoutError: handler 'h' did not finish within 50ms")


async def test_sync_timeout_retries_while_the_thread_runs_on(store: Store) -> None:
    release = threading.Event()
    finished = threading.Event()

    def handle(event: Event) -> None:
        release.wait(10)
        finished.set()

    (seq,) = await append(store)
    spec = HandlerSpec("h", handle, timeout=0.05)
    try:
        async with worker_for(store, spec) as worker:
            await worker.drain()
            record = await delivery(store, seq)
            assert record.status == "retrying"
            assert record.last_error is not None
            assert "thread runs on" in record.last_error
            assert not finished.is_set()
    finally:
        release.set()
    assert await asyncio.to_thread(finished.wait, 5)


async def test_concurrency_limit_is_respected(store: Store) -> None:
    in_flight = 0
    most = 0

    async def handle(event: Event) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1

    seqs = await append(store, 12)
    worker = worker_for(
        store,
        HandlerSpec("h", handle),
        clock=system_clock,
        concurrency=3,
        batch=10,
        poll_interval=0.01,
    )

    async def all_done() -> bool:
        return (await store.counts())["done"] == 12

    async with running(worker):
        await eventually(all_done)
    assert most == 3
    assert worker.stats.done == len(seqs)


async def test_wake_claims_at_once_even_from_another_thread(store: Store) -> None:
    handled = asyncio.Event()

    async def handle(event: Event) -> None:
        handled.set()

    worker = worker_for(store, HandlerSpec("h", handle), clock=system_clock, poll_interval=60)
    async with running(worker):
        await asyncio.sleep(0.05)  # the first claim found nothing; now it sleeps for a minute
        await append(store, at=time.time())
        waker = threading.Thread(target=worker.wake)
        waker.start()
        waker.join()
        await asyncio.wait_for(handled.wait(), 5)
    assert worker.stats.done == 1


async def test_deliveries_for_handlers_it_does_not_have_are_given_back() -> None:
    class CarelessStore(MemoryStore):
        async def claim(self, owner: str, **kwargs: Any) -> list[Claim]:
            kwargs["handlers"] = None
            return await super().claim(owner, **kwargs)

    async def handle(event: Event) -> None:
        pass

    async with CarelessStore() as store:
        (mine,) = await append(store, handler="h")
        await store.append(
            NewEvent(source="acme", dedup_key="other", type="t", body=b"", received_at=NOW),
            handlers=["someone-else"],
        )
        async with worker_for(store, HandlerSpec("h", handle)) as worker:
            assert await worker.run_once() == 1
        assert (await delivery(store, mine)).status == "done"
        other = await store.find_event("acme", "other")
        assert other is not None
        stranger = await delivery(store, other.seq)
        assert (stranger.status, stranger.attempts) == ("pending", 0)
        assert worker.stats.released == 1


# -- leases --------------------------------------------------------------------------------


async def test_lease_extension_keeps_a_long_handler_its_delivery(sqlite_url: str) -> None:
    calls: collections.Counter[str] = collections.Counter()

    def handler_of(name: str, seconds: float) -> HandlerSpec:
        async def handle(event: Event) -> None:
            calls[name] += 1
            await asyncio.sleep(seconds)

        return HandlerSpec("h", handle)

    async with open_store(sqlite_url) as store:
        (seq,) = await append(store, at=time.time())
        slow = worker_for(store, handler_of("slow", 1.0), clock=system_clock, lease=0.3)
        rival = worker_for(store, handler_of("rival", 0), clock=system_clock, lease=0.3)
        async with running(slow), asyncio.timeout(10):
            while (await delivery(store, seq)).status != "done":
                assert await rival.run_once() == 0
                await asyncio.sleep(0.05)

    assert calls == {"slow": 1}
    assert (slow.stats.done, slow.stats.fenced_out, slow.stats.leases_lost) == (1, 0, 0)


async def test_a_stale_workers_settle_is_refused(store: Store) -> None:
    clock = FrozenClock(NOW)
    entered = asyncio.Event()
    gate = asyncio.Event()
    ran_by: list[str] = []

    async def stuck(event: Event) -> None:
        entered.set()
        await gate.wait()
        ran_by.append("stale")

    async def quick(event: Event) -> None:
        ran_by.append("fresh")

    (seq,) = await append(store)
    stale = worker_for(store, HandlerSpec("h", stuck), clock=clock)
    fresh = worker_for(store, HandlerSpec("h", quick), clock=clock)
    stale_batch = asyncio.create_task(stale.run_once())
    await asyncio.wait_for(entered.wait(), 5)
    clock.advance(31)  # the stale worker's 30s lease runs out
    assert await fresh.run_once() == 1
    gate.set()
    assert await asyncio.wait_for(stale_batch, 5) == 1

    assert ran_by == ["fresh", "stale"]
    assert (stale.stats.fenced_out, stale.stats.done) == (1, 0)
    assert (fresh.stats.fenced_out, fresh.stats.done) == (0, 1)
    record = await delivery(store, seq)
    assert (record.status, record.attempts) == ("done", 2)
    history = await store.attempts(record.id)
    assert [(a.owner, a.outcome) for a in history] == [(fresh.owner, "done")]


async def test_two_workers_on_one_file_run_each_delivery_once(sqlite_url: str) -> None:
    calls: collections.Counter[str] = collections.Counter()

    async def handle(event: Event) -> None:
        calls[event.id] += 1
        await asyncio.sleep(0.001)

    async with open_store(sqlite_url) as first, open_store(sqlite_url) as second:
        await append(first, 300, at=time.time())
        workers = [
            worker_for(
                s,
                HandlerSpec("h", handle),
                clock=system_clock,
                concurrency=8,
                batch=16,
                poll_interval=0.02,
            )
            for s in (first, second)
        ]

        async def all_done() -> bool:
            return (await first.counts())["done"] == 300

        async with running(*workers):
            await eventually(all_done, within=60)

    assert len(calls) == 300
    assert set(calls.values()) == {1}
    assert sum(w.stats.done for w in workers) == 300
    assert sum(w.stats.fenced_out for w in workers) == 0


# -- shutdown ------------------------------------------------------------------------------


async def test_graceful_stop_settles_the_quick_and_releases_the_slow(store: Store) -> None:
    clock = FrozenClock(NOW)
    entered: list[bytes] = []
    all_entered = asyncio.Event()

    async def handle(event: Event) -> None:
        entered.append(event.body)
        if len(entered) == 3:
            all_entered.set()
        await asyncio.sleep(60 if event.body == b"slow" else 0.1)

    async def quick(event: Event) -> None:
        pass

    slow_seqs = await append(store, 2, body=b"slow")
    quick_event = NewEvent("acme", "evt_q", "thing.happened", b"quick", received_at=NOW)
    quick_seq = (await store.append(quick_event, ["h"])).seq
    first = worker_for(store, HandlerSpec("h", handle), clock=clock, grace=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await asyncio.wait_for(all_entered.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)

    assert (first.stats.done, first.stats.released) == (1, 2)
    assert (await delivery(store, quick_seq)).status == "done"
    for seq in slow_seqs:
        record = await delivery(store, seq)
        assert (record.status, record.attempts, record.lease_owner) == ("pending", 0, None)

    async with worker_for(store, HandlerSpec("h", quick), clock=clock) as second:
        assert await second.run_once() == 2  # at once: no lease to wait out
    for seq in [*slow_seqs, quick_seq]:
        record = await delivery(store, seq)
        assert record.status == "done"
        assert len(await store.attempts(record.id)) == 1


async def test_cancelling_run_releases_without_grace(store: Store) -> None:
    entered = asyncio.Event()

    async def handle(event: Event) -> None:
        entered.set()
        await asyncio.sleep(60)

    (seq,) = await append(store)
    worker = worker_for(store, HandlerSpec("h", handle), grace=60)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert worker.stats.released == 1
    assert (await delivery(store, seq)).status == "pending"


async def test_drain_times_out_and_releases(store: Store) -> None:
    async def handle(event: Event) -> None:
        await asyncio.sleep(60)

    (seq,) = await append(store)
    async with worker_for(store, HandlerSpec("h", handle)) as worker:
        with pytest.raises(TimeoutError, match="still running"):
            await worker.drain(timeout=0.1)
    assert worker.stats.released == 1
    assert (await delivery(store, seq)).status == "pending"


# -- a real crash --------------------------------------------------------------------------

KILLED_WORKER = """
import asyncio, pathlib, sys
from hookwise.config import WorkerSettings
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.store import open_store
from hookwise.worker import Worker

url, marker = sys.argv[1], pathlib.Path(sys.argv[2])

async def handle(event):
    marker.write_text(event.id)
    await asyncio.sleep(120)

async def main():
    handlers = HandlerRegistry()
    handlers.add(HandlerSpec("h", handle))
    async with open_store(url) as store:
        await Worker(store, handlers, settings=WorkerSettings(lease=1.0, poll_interval=0.05)).run()

asyncio.run(main())
"""


async def test_a_killed_workers_delivery_is_taken_over(sqlite_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "entered"
    calls: list[str] = []

    async def handle(event: Event) -> None:
        calls.append(event.id)

    async with open_store(sqlite_url) as store:
        (seq,) = await append(store, at=time.time())
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            KILLED_WORKER,
            sqlite_url,
            str(marker),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(20):
                while not marker.exists():
                    if proc.returncode is not None:
                        assert proc.stderr is not None
                        pytest.fail((await proc.stderr.read()).decode())
                    await asyncio.sleep(0.02)
            held = await delivery(store, seq)
            assert held.status == "leased"
            assert held.lease_owner is not None
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == -signal.SIGKILL

        survivor = worker_for(store, HandlerSpec("h", handle), clock=system_clock)
        async with asyncio.timeout(10):
            while True:  # until the dead process's lease expires
                if await survivor.run_once():
                    break
                await asyncio.sleep(0.05)

        late = Settlement(
            delivery_id=held.id,
            fence=held.fence,
            owner=held.lease_owner,
            outcome="done",
            started_at=time.time(),
            finished_at=time.time(),
        )
        assert await store.settle([late]) == [False]

        assert calls == ["evt_0"]
        record = await delivery(store, seq)
        assert (record.status, record.attempts) == ("done", 2)
        assert [(a.owner, a.outcome) for a in await store.attempts(record.id)] == [
            (survivor.owner, "done")
        ]
