"""A worker process for the ordering chaos test, and the journal its handler keeps.

Run as ``python _chaos_handlers.py STORE_URL JOURNAL SEED OWNER LEASE [MODE]``: a
:class:`~hookwise.worker.Worker` runs the handler ``apply`` until SIGTERM, then prints its
stats as one JSON line. SIGKILL it to play a crashed host.

With MODE ``transactional`` the handler takes a transaction on the store's database and
also writes its effect there, in the table ``effects`` (one row per applied call, no
unique key: a second application of one event would be a second row); it fails after
writing it, so a failed call's row must be rolled back with it.

The handler reads the object's ``id`` and ``version`` from the body's ``data``. On
about one call in ten (decided by the seed, the event and the attempt number, the same
in every process) it fails as a flaky downstream would, before changing anything;
otherwise it applies the version. Each call is one SQLite transaction in the journal file:

- ``calls``: one row per call, in the order they happened (``n``), with the event's key,
  version and seq, the attempt, the worker that ran it and whether it applied;
- ``state``: per key the newest version applied, as an idempotent max-version upsert. A
  killed worker may have applied a version without settling it, so the same version can
  be applied twice: the upsert makes that harmless, as a real handler's must be.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from hookwise.backoff import RetryPolicy
from hookwise.config import WorkerSettings
from hookwise.events import Event
from hookwise.handlers import HandlerRegistry, HandlerSpec
from hookwise.store import open_store
from hookwise.transactions import AsyncTransaction
from hookwise.worker import Worker

HANDLER = "apply"
FAILURE_RATE = 0.1
RETRY = RetryPolicy(max_attempts=40, base_delay=0.02, max_delay=0.2)
"""Failed calls come back within 200 ms (full jitter under a 20 ms, 40 ms, ... ceiling);
40 attempts make a dead letter impossible in practice (0.1**40), so every event must
end applied or skipped."""
WORK_TIME = 0.004
"""Seconds a call spends "downstream" (another service) before it applies."""
READY = "chaos worker running"
SETTINGS = {"concurrency": 64, "batch": 64, "poll_interval": 0.05, "grace": 5.0}

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT NOT NULL,
    applied INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"""


class DownstreamError(Exception):
    """The failure a flaky downstream service gives."""


def fails(seed: int, event_id: str, attempt: int) -> bool:
    """Whether this attempt of this event fails: the same answer in every process."""
    return random.Random(f"{seed}:{event_id}:{attempt}").random() < FAILURE_RATE


class Journal:
    """The handler's side effects and a record of its calls, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.executescript(SCHEMA)

    def record(
        self, *, key: str, version: int, seq: int, attempt: int, owner: str, applied: bool
    ) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO calls (key, version, seq, attempt, owner, applied) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, version, seq, attempt, owner, int(applied)),
            )
            if applied:
                self._db.execute(
                    "INSERT INTO state (key, version) VALUES (?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET version = max(version, excluded.version)",
                    (key, version),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


EFFECTS = (
    "CREATE TABLE IF NOT EXISTS effects ("
    "dedup_key TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, owner TEXT NOT NULL)"
)


def make_transactional_handler(
    journal: Journal, seed: int, owner: str
) -> Callable[[Event, AsyncTransaction], Awaitable[None]]:
    async def apply(event: Event, tx: AsyncTransaction) -> None:
        data = json.loads(event.body)["data"]
        failing = fails(seed, event.id, event.attempt)
        p = "?" if tx.engine == "sqlite" else "%s"
        await tx.execute(
            f"INSERT INTO effects (dedup_key, key, version, owner) VALUES ({p}, {p}, {p}, {p})",
            (event.id, data["id"], data["version"], owner),
        )
        journal.record(
            key=data["id"],
            version=data["version"],
            seq=event.seq,
            attempt=event.attempt,
            owner=owner,
            applied=not failing,
        )
        if failing:
            raise DownstreamError(f"downstream refused {event.id} (attempt {event.attempt})")

    return apply


def create_effects(url: str) -> None:
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
        try:
            db.execute(EFFECTS)
        finally:
            db.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(EFFECTS)


def make_handler(journal: Journal, seed: int, owner: str) -> Callable[[Event], Awaitable[None]]:
    async def apply(event: Event) -> None:
        data = json.loads(event.body)["data"]
        failing = fails(seed, event.id, event.attempt)
        if not failing:
            await asyncio.sleep(WORK_TIME)
        journal.record(
            key=data["id"],
            version=data["version"],
            seq=event.seq,
            attempt=event.attempt,
            owner=owner,
            applied=not failing,
        )
        if failing:
            raise DownstreamError(f"downstream refused {event.id} (attempt {event.attempt})")

    return apply


async def main(url: str, journal_path: str, seed: int, owner: str, lease: float, mode: str) -> None:
    journal = Journal(journal_path)
    handlers = HandlerRegistry()
    if mode == "transactional":
        apply = make_transactional_handler(journal, seed, owner)
        handlers.add(HandlerSpec(HANDLER, apply, policy=RETRY))
    else:
        handlers.add(HandlerSpec(HANDLER, make_handler(journal, seed, owner), policy=RETRY))
    settings = WorkerSettings(lease=lease, **SETTINGS)  # type: ignore[arg-type]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with open_store(url) as store:
            worker = Worker(store, handlers, settings=settings, owner=owner)
            print(READY, flush=True)
            await worker.run(stop)
            print(json.dumps(dataclasses.asdict(worker.stats)), flush=True)
    finally:
        journal.close()


if __name__ == "__main__":
    store_url, journal_file, seed_text, owner_name, lease_text, *rest = sys.argv[1:]
    mode_name = rest[0] if rest else "plain"
    asyncio.run(
        main(store_url, journal_file, int(seed_text), owner_name, float(lease_text), mode_name)
    )
