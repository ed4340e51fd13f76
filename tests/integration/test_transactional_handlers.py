"""Transactional handlers on a real SQLite file and a real PostgreSQL schema: the
handler's writes commit with the delivery's ``done``, or not at all."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hookwise.backoff import RetryPolicy
from hookwise.config import WorkerSettings
from hookwise.errors import ConfigError
from hookwise.events import Event, NewEvent
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.store import MemoryStore, Ordering, Settlement, Store, open_store
from hookwise.transactions import AsyncTransaction, Transaction, TransactionClosed
from hookwise.worker import Worker

from ._chaos import query
from ._postgres import pg_schema

FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02)
SETTINGS = WorkerSettings(concurrency=4, batch=8, poll_interval=0.02, lease=5.0)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        with pg_schema() as found:
            yield found
    else:
        yield f"sqlite:///{tmp_path / 'hookwise.db'}"


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    async with open_store(url) as opened:
        await asyncio.to_thread(create_payments, url)
        yield opened


def create_payments(url: str) -> None:
    ddl = "CREATE TABLE payments (invoice TEXT NOT NULL, amount INTEGER NOT NULL, attempt INTEGER)"
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            db.execute(ddl)
        finally:
            db.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)


def ph(tx: Transaction | AsyncTransaction) -> str:
    """The engine's placeholder."""
    return "?" if tx.engine == "sqlite" else "%s"


def payments(url: str) -> list[tuple[Any, ...]]:
    return sorted(query(url, "SELECT invoice, amount FROM payments"))


async def append(store: Store, n: int, *, key: str | None = None) -> None:
    for i in range(n):
        await store.append(
            NewEvent(
                source="billing",
                dedup_key=f"evt_{i}",
                type="invoice.paid",
                body=json.dumps({"invoice": f"in_{i}", "amount": 100 + i}).encode(),
                received_at=time.time(),
                ordering_key=key,
                occurred_at=float(i) if key else None,
            ),
            ["pay"],
            ordering=Ordering("serial") if key else None,
        )


def worker(store: Store, func: Any, **spec: Any) -> Worker:
    registry = HandlerRegistry()
    registry.add(HandlerSpec("pay", func, policy=spec.pop("policy", FAST), **spec))
    return Worker(store, registry, settings=SETTINGS)


async def test_async_handler_writes_commit_with_done(store: Store, url: str) -> None:
    async def pay(event: Event, tx: AsyncTransaction) -> None:
        body = event.json()
        await tx.execute(
            f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, {ph(tx)})",
            (body["invoice"], body["amount"]),
        )
        result = await tx.execute("SELECT count(*) FROM payments")
        assert result.scalar() >= 1

    await append(store, 5)
    async with worker(store, pay) as w:
        assert w.handlers.get("pay").transactional  # type: ignore[union-attr]
        assert await w.drain() == 5
        assert w.stats.done == 5
    assert payments(url) == [(f"in_{i}", 100 + i) for i in range(5)]
    assert (await store.counts())["done"] == 5
    history = await store.attempts(1)
    assert [(a.number, a.outcome) for a in history] == [(1, "done")]


async def test_sync_handler_gets_a_blocking_transaction(store: Store, url: str) -> None:
    def pay(event: Event, tx: Transaction) -> None:
        body = event.json()
        changed = tx.executemany(
            f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, {ph(tx)})",
            [(body["invoice"], body["amount"]), (body["invoice"] + "_fee", 1)],
        )
        assert changed == 2

    await append(store, 3)
    async with worker(store, pay) as w:
        assert await w.drain() == 3
    assert len(payments(url)) == 6


async def test_a_failed_attempt_leaves_no_writes_and_the_retry_applies_once(
    store: Store, url: str
) -> None:
    calls: list[int] = []

    async def pay(event: Event, tx: AsyncTransaction) -> None:
        calls.append(event.attempt)
        await tx.execute(
            f"INSERT INTO payments (invoice, amount, attempt) VALUES ({ph(tx)}, 1, {ph(tx)})",
            (event.json()["invoice"], event.attempt),
        )
        if event.attempt < 3:
            raise RuntimeError("downstream said no after we wrote")

    await append(store, 1)
    async with worker(store, pay) as w:
        deadline = time.monotonic() + 10
        while w.stats.done < 1 and time.monotonic() < deadline:
            await w.run_once()
            await asyncio.sleep(0.03)
    assert calls == [1, 2, 3]
    assert query(url, "SELECT invoice, attempt FROM payments") == [("in_0", 3)]
    outcomes = [a.outcome for a in await store.attempts(1)]
    assert outcomes == ["retry", "retry", "done"]


async def test_a_timed_out_handler_is_rolled_back(store: Store, url: str) -> None:
    async def pay(event: Event, tx: AsyncTransaction) -> None:
        await tx.execute(f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, 1)", ("x",))
        if event.attempt == 1:
            await asyncio.sleep(5)

    await append(store, 1)
    async with worker(store, pay, timeout=0.3) as w:
        await w.run_once()
        assert payments(url) == []
        record = await store.get_delivery(1)
        assert record is not None and record.status == "retrying"
        assert "did not finish within" in (record.last_error or "")
        await asyncio.sleep(0.05)
        assert await w.drain() == 1
    assert payments(url) == [("x", 1)]


async def test_statements_that_end_the_transaction_are_refused(store: Store, url: str) -> None:
    seen: list[BaseException] = []

    async def pay(event: Event, tx: AsyncTransaction) -> None:
        await tx.execute(f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, 1)", ("x",))
        try:
            await tx.execute("  -- sneaky\n commit")
        except TransactionClosed as exc:
            seen.append(exc)
            raise

    await append(store, 1)
    async with worker(store, pay, policy=RetryPolicy(max_attempts=1)) as w:
        await w.drain()
    assert len(seen) == 1 and "SAVEPOINT" in str(seen[0])
    assert payments(url) == []
    record = await store.get_delivery(1)
    assert record is not None and record.status == "dead"


async def test_savepoints_work_inside_the_transaction(store: Store, url: str) -> None:
    async def pay(event: Event, tx: AsyncTransaction) -> None:
        await tx.execute(f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, 1)", ("kept",))
        await tx.execute("SAVEPOINT maybe")
        await tx.execute(
            f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, 2)", ("undone",)
        )
        await tx.execute("ROLLBACK TO SAVEPOINT maybe")

    await append(store, 1)
    async with worker(store, pay) as w:
        assert await w.drain() == 1
    assert payments(url) == [("kept", 1)]


async def test_a_lost_lease_rolls_the_writes_back(store: Store, url: str) -> None:
    """Store level: the attempt's lease passed to another owner before the commit."""
    await append(store, 1)
    [mine] = await store.claim("me", limit=1, lease=1.0, now=time.time())

    async def steal() -> None:
        [theirs] = await store.claim("them", limit=1, lease=30.0, now=time.time() + 2)
        assert theirs.fence == mine.fence + 1

    sqlite = url.startswith("sqlite")
    if sqlite:  # nobody else can write while a SQLite transaction is open
        await steal()
    tx = await store.begin()
    await tx.execute("INSERT INTO payments (invoice, amount) VALUES ('stolen', 1)")
    if not sqlite:  # another worker takes the expired lease while the transaction is open
        await steal()
    finished = time.time()
    settlement = Settlement(mine.delivery_id, mine.fence, "me", "done", finished, finished)
    assert await tx.commit(settlement) is False
    assert payments(url) == []
    with pytest.raises(TransactionClosed):
        await tx.execute("SELECT 1")
    record = await store.get_delivery(mine.delivery_id)
    assert record is not None and record.status == "leased"


async def test_ordered_groups_promote_from_inside_the_transaction(store: Store, url: str) -> None:
    order: list[str] = []

    async def pay(event: Event, tx: AsyncTransaction) -> None:
        order.append(event.id)
        await tx.execute(
            f"INSERT INTO payments (invoice, amount) VALUES ({ph(tx)}, {ph(tx)})",
            (event.json()["invoice"], len(order)),
        )

    await append(store, 6, key="sub_1")
    assert (await store.counts())["waiting"] == 5
    async with worker(store, pay) as w:
        assert await w.drain() == 6
    assert order == [f"evt_{i}" for i in range(6)]
    assert payments(url) == sorted((f"in_{i}", i + 1) for i in range(6))
    state = await store.ordering_state("pay", "sub_1")
    assert state is not None and state.applied_at == 5.0


async def test_appends_wait_for_an_open_transaction_and_are_kept(store: Store, url: str) -> None:
    await append(store, 1)
    [claim] = await store.claim("me", limit=1, lease=30.0, now=time.time())
    tx = await store.begin()
    await tx.execute("INSERT INTO payments (invoice, amount) VALUES ('a', 1)")
    late = asyncio.create_task(
        store.append(
            NewEvent(
                source="billing", dedup_key="late", type="t", body=b"{}", received_at=time.time()
            ),
            ["pay"],
        )
    )
    await asyncio.sleep(0.2)
    finished = time.time()
    done = Settlement(claim.delivery_id, claim.fence, "me", "done", finished, finished)
    assert await tx.commit(done) is True
    result = await asyncio.wait_for(late, 10)
    assert not result.duplicate
    assert payments(url) == [("a", 1)]
    counts = await store.counts()
    assert (counts["done"], counts["pending"]) == (1, 1)


async def test_a_memory_store_refuses_transactional_handlers() -> None:
    async def pay(event: Event, tx: AsyncTransaction) -> None:
        pass

    async with MemoryStore() as memory:
        with pytest.raises(ConfigError, match="takes a transaction"):
            worker(memory, pay)
