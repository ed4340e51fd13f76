"""Worker throughput: deliveries per second through one worker process.

Fills a fresh SQLite store (durability "full") with N events, each with one delivery
for a no-op handler, then runs one Worker until every delivery is done, and reports
deliveries/s for an async no-op handler and a sync one (which runs in the thread
pool), side by side in one run.

    python bench/worker_throughput.py                 # 20,000 deliveries per variant
    python bench/worker_throughput.py --events 50000 --rounds 3

Writes bench/results/worker-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hookwise.config import StoreSettings, WorkerSettings
from hookwise.events import Event, NewEvent
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.store import open_store
from hookwise.worker import Worker

HERE = Path(__file__).resolve().parent


async def noop_async(event: Event) -> None:
    del event


def noop_sync(event: Event) -> None:
    del event


async def fill(url: str, count: int) -> None:
    async with open_store(StoreSettings(url=url)) as store:
        now = time.time()
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    store.append(
                        NewEvent(
                            source="bench",
                            dedup_key=f"msg_{uuid.uuid4().hex}",
                            type="invoice.paid",
                            body=b'{"type":"invoice.paid","data":{"object":{"id":"in_1"}}}',
                            received_at=now,
                        ),
                        ["noop"],
                    )
                    for _ in range(start, min(start + 1000, count))
                )
            )


async def drain(url: str, count: int, handler: object, settings: WorkerSettings) -> float:
    registry = HandlerRegistry()
    registry.add(HandlerSpec("noop", handler))  # type: ignore[arg-type]
    async with open_store(StoreSettings(url=url)) as store:
        worker = Worker(store, registry, settings=settings)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(worker.run(stop))
        while worker.stats.done < count:
            await asyncio.sleep(0.005)
            if task.done():
                task.result()
                raise RuntimeError("the worker stopped early")
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        counts = await store.counts()
        assert counts["done"] == count, counts
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=WorkerSettings().concurrency)
    parser.add_argument("--batch", type=int, default=WorkerSettings().batch)
    args = parser.parse_args()
    settings = WorkerSettings(concurrency=args.concurrency, batch=args.batch)
    variants = {"async no-op": noop_async, "sync no-op": noop_sync}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="hookwise-bench-") as work:
        for round_no in range(1, args.rounds + 1):
            for name, handler in variants.items():
                url = f"sqlite:///{work}/w-{round_no}-{name.split()[0]}.db"
                asyncio.run(fill(url, args.events))
                rate = asyncio.run(drain(url, args.events, handler, settings))
                rates[name].append(rate)
                print(f"round {round_no} {name:>12}: {rate:8.0f} deliveries/s", flush=True)
    summary = {name: statistics.median(values) for name, values in rates.items()}
    print()
    for name, rate in summary.items():
        print(f"{name:>12}: {rate:8.0f} deliveries/s (median of {args.rounds})")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "rates": rates,
        "median": summary,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "worker-latest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
