"""The process around the worker: retention purges, and how a running worker hears
of new work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hookwise import runtime
from hookwise.app import Hookwise
from hookwise.clock import FrozenClock
from hookwise.config import Settings, StoreSettings, WorkerSettings
from hookwise.errors import StoreUnavailable
from hookwise.events import Event, NewEvent
from hookwise.handlers import HandlerRegistry
from hookwise.store import MemoryStore, Settlement, SQLiteStore, Store
from hookwise.worker import Worker

T0 = 1_700_000_000.0
HOUR = 3600.0
DAY = 86_400.0


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def finished_event(store: Store, key: str, *, received_at: float) -> int:
    """Store an event whose one delivery is done; returns its seq."""
    event = NewEvent(source="acme", dedup_key=key, type="t", body=b"{}", received_at=received_at)
    seq = (await store.append(event, ["h"])).seq
    [claim] = await store.claim("w", limit=1, lease=30, now=received_at)
    done = Settlement(
        delivery_id=claim.delivery_id,
        fence=claim.fence,
        owner="w",
        outcome="done",
        started_at=received_at,
        finished_at=received_at,
    )
    assert await store.settle([done]) == [True]
    return seq


async def gone(store: Store, seq: int) -> bool:
    return await store.get_event(seq) is None


# -- the retention loop --------------------------------------------------------------------


async def test_retention_purges_old_finished_events_round_after_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FrozenClock(T0 + 2 * DAY)
    async with MemoryStore() as store:
        old = await finished_event(store, "old", received_at=T0)
        young = await finished_event(store, "young", received_at=T0 + 2 * DAY - HOUR)
        with caplog.at_level(logging.INFO, logger="hookwise"):
            task = asyncio.create_task(
                runtime.run_retention(store, DAY, interval=0.01, first_run=0.0, clock=clock)
            )
            try:
                await eventually(lambda: gone(store, old))
                assert await store.get_event(young) is not None
                clock.advance(DAY)  # now the young one is old enough too
                await eventually(lambda: gone(store, young))
                await eventually(lambda: _true(len(purge_logs(caplog)) == 2))
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled(), "the loop runs until it is cancelled"
    assert purge_logs(caplog) == ["retention: purged 1 finished event older than 1d"] * 2


def purge_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "purged 1 finished" in r.getMessage()]


async def test_retention_waits_before_its_first_purge() -> None:
    async with MemoryStore() as store:
        seq = await finished_event(store, "old", received_at=T0)
        task = asyncio.create_task(
            runtime.run_retention(store, HOUR, first_run=60.0, clock=FrozenClock(T0 + DAY))
        )
        try:
            await asyncio.sleep(0.1)
            assert await store.get_event(seq) is not None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_failed_purge_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    class FlakyStore(MemoryStore):
        failures = 2

        async def purge(self, *, before: float, batch: int = 500) -> int:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("the database is locked")
            return await super().purge(before=before, batch=batch)

    async with FlakyStore() as store:
        seq = await finished_event(store, "old", received_at=T0)
        with caplog.at_level(logging.INFO, logger="hookwise"):
            task = asyncio.create_task(
                runtime.run_retention(
                    store, HOUR, interval=0.01, first_run=0.0, clock=FrozenClock(T0 + DAY)
                )
            )
            try:
                await eventually(lambda: gone(store, seq))
                assert not task.done(), "a failure never ends the loop"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2, caplog.text
    assert "trying again" in failures[0].getMessage()
    assert failures[0].exc_info is not None


async def test_a_worker_process_purges_when_retention_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'hookwise.db'}"
    async with SQLiteStore(str(tmp_path / "hookwise.db")) as store:
        seq = await finished_event(store, "old", received_at=T0)
    monkeypatch.setattr(runtime, "RETENTION_FIRST_RUN", 0.0)
    hw = Hookwise(settings=Settings(store=StoreSettings(url=url, retention=DAY)))
    process = asyncio.create_task(runtime._run_worker(hw, None))
    try:
        async with SQLiteStore(str(tmp_path / "hookwise.db")) as store:
            await eventually(lambda: gone(store, seq))
    finally:
        process.cancel()
        await asyncio.gather(process, return_exceptions=True)


async def test_without_retention_nothing_is_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'hookwise.db'}"
    async with SQLiteStore(str(tmp_path / "hookwise.db")) as store:
        seq = await finished_event(store, "old", received_at=T0)
    monkeypatch.setattr(runtime, "RETENTION_FIRST_RUN", 0.0)
    hw = Hookwise(settings=Settings(store=StoreSettings(url=url)))
    process = asyncio.create_task(runtime._run_worker(hw, None))
    try:
        await asyncio.sleep(0.3)
        assert not process.done()
    finally:
        process.cancel()
        await asyncio.gather(process, return_exceptions=True)
    async with SQLiteStore(str(tmp_path / "hookwise.db")) as store:
        assert await store.get_event(seq) is not None


# -- wake-ups ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_running_worker_is_woken_by_the_store_not_by_its_poll(
    tmp_path: Path, url: str
) -> None:
    store_url = url if url == "memory://" else f"sqlite:///{tmp_path / 'hookwise.db'}"
    hw = Hookwise(store=store_url)
    handled = asyncio.Event()

    @hw.handler("*", name="h")
    async def on_event(event: Event) -> None:
        handled.set()

    async with hw.open_store() as store:
        worker = hw.worker(store, poll_interval=60.0)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.sleep(0.1)  # the worker found nothing and waits for its poll
            event = NewEvent(
                source="acme", dedup_key="e1", type="t", body=b"{}", received_at=hw.clock.now()
            )
            await store.append(event, ["h"])
            async with asyncio.timeout(5):  # far sooner than the 60s poll
                await handled.wait()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_a_worker_listens_to_the_store_only_while_it_runs() -> None:
    class CountingStore(MemoryStore):
        listening = 0

        def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
            self.listening += 1
            unsubscribe = super().subscribe(callback)

            def counted() -> None:
                self.listening -= 1
                unsubscribe()

            return counted

    async with CountingStore() as store:
        worker = Worker(store, HandlerRegistry(), settings=WorkerSettings(poll_interval=0.05))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await eventually(lambda: _true(store.listening == 1))
        stop.set()
        await asyncio.wait_for(task, 10)
        assert store.listening == 0
        cancelled = asyncio.create_task(worker.run())
        await eventually(lambda: _true(store.listening == 1))
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert store.listening == 0, "a cancelled worker unsubscribes too"


async def _true(value: bool) -> bool:
    return value
