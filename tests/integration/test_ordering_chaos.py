"""Ordering under chaos, on a real SQLite file and a real PostgreSQL schema.

10,000 events about 500 objects (the ordering key; each object gets its own run of
versions, whose ``occurred_at`` rises with the version). Every event is appended one to
three times under the same dedup key, some copies at the very same moment, and the whole
stream is shuffled, so events arrive out of version order and again after they ran. (An
append refused because the PostgreSQL connection was cut is made again, as a provider
sends again after a 503.) A worker process runs the handler (``_chaos_handlers.py``),
which fails about one call in ten and is retried within a fraction of a second; once 30%
of the deliveries are settled the worker is SIGKILLed, and a second one takes over the
dead one's leases when they expire (2 s).

What must hold afterwards, read from the handler's own journal and from the store:

- ``latest``: every object's state is its newest version (what once-only, in-order
  delivery gives); per object the handler never applied an older version after a newer
  one; the same version twice only when the first run's lease was lost (the killed
  worker applied it and never settled); everything not applied was skipped ``stale``,
  with a newer version of its object applied.
- ``serial``: every event applied, per object in arrival order (event seq): the calls
  of one object never go back to an earlier seq (a retry or a taken-over call may
  repeat the same seq).
- ``latest`` with a reorder window (0.3 s): as ``latest``, but the calls follow the
  times events happened rather than their arrival.
- ``coalesce``: as ``latest``, and what was not applied was skipped ``stale`` or
  ``superseded`` (a newer event of its object was waiting); the calls of one object go
  from newest waiting to newest waiting, not in arrival order.

The seed is random per run; it is printed, named in every failure, and taken from
``HOOKWISE_CHAOS_SEED`` when set, to run a failure again (the kill point and the
interleaving of processes vary from run to run all the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hookwise.errors import StoreUnavailable
from hookwise.events import NewEvent
from hookwise.store import AppendResult, Ordering, Store, open_store

from ._chaos import (
    UNFINISHED,
    Job,
    Planned,
    check_order,
    newest,
    plan,
    query,
    read_journal,
    read_store,
    settled,
)
from ._chaos_handlers import HANDLER, READY, create_effects
from ._postgres import pg_schema

pytestmark = pytest.mark.slow

EVENTS = 10_000
KEYS = 500
SOURCE = "objects"
KILL_AT = 0.3
"""Share of the deliveries settled when the first worker is killed."""
LEASE = 2.0
APPENDERS = 32
"""Appends in flight at once."""
APPEND_TRIES = 20
"""Tries per copy when the store answers StoreUnavailable (as the receiver's 503)."""
LOST_CONNECTION = ("closed the connection", "terminating connection")
"""What a StoreUnavailable says when the PostgreSQL connection was cut, which other
tests on the same server do: their schema clean-up terminates every connection left
idle in a transaction, and an ordered append's transaction takes several round trips."""
RUN_TIMEOUT = 120.0
WINDOW = 0.3
"""Seconds of reorder window in the run that has one."""
SRC = Path(__file__).resolve().parents[2] / "src"
WORKER_SCRIPT = Path(__file__).with_name("_chaos_handlers.py")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        with pg_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'hookwise.db'}"


# -- worker processes ------------------------------------------------------------------------


class WorkerProcess:
    """A ``_chaos_handlers.py`` worker; its output goes to files (a full pipe would stall
    it: every failed call logs a warning)."""

    def __init__(self, proc: asyncio.subprocess.Process, owner: str, log: Path) -> None:
        self.proc = proc
        self.owner = owner
        self.log = log

    @classmethod
    async def start(
        cls, url: str, journal: Path, seed: int, owner: str, directory: Path, mode: str = "plain"
    ) -> WorkerProcess:
        log = directory / f"{owner}.log"
        with log.open("wb") as output:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER_SCRIPT),
                url,
                str(journal),
                str(seed),
                owner,
                str(LEASE),
                mode,
                env={**os.environ, "PYTHONPATH": str(SRC)},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        worker = cls(proc, owner, log)
        async with asyncio.timeout(30):
            while READY not in worker.output():
                if proc.returncode is not None:
                    pytest.fail(f"worker {owner} exited at start:\n{worker.output()}")
                await asyncio.sleep(0.05)
        return worker

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> dict[str, int]:
        """SIGTERM (a graceful stop); the stats the worker printed."""
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        text = self.output()
        assert code == 0, f"worker {self.owner} exited {code}:\n{text[-3000:]}"
        stats: dict[str, int] = json.loads(text.strip().splitlines()[-1])
        return stats

    async def ensure_gone(self) -> None:
        if self.proc.returncode is None:
            await self.kill()


@contextlib.asynccontextmanager
async def reaped(workers: list[WorkerProcess]) -> AsyncIterator[None]:
    """No worker outlives the test (nor the schema it works in)."""
    try:
        yield
    finally:
        for worker in workers:
            await worker.ensure_gone()


# -- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Orphan:
    """A delivery the killed worker held: its lease must run out before another takes it."""

    id: int
    attempts: int
    lease_expires_at: float


@dataclass(frozen=True)
class Kill:
    """Where the run stood when the first worker was killed, and what it left behind."""

    settled: int
    appended: int
    orphans: list[Orphan]


@dataclass
class Appends:
    """Every copy's answer, in order, and the appends the store refused (and that were
    sent again, as a provider does after a 503)."""

    results: list[tuple[Planned, AppendResult]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


async def append_all(store: Store, jobs: list[Job], ordering: Ordering, appends: Appends) -> None:
    queue = iter(jobs)

    async def append(event: Planned) -> None:
        for _ in range(APPEND_TRIES):
            new = NewEvent(
                source=SOURCE,
                dedup_key=event.dedup_key,
                type="object.updated",
                body=event.body(),
                ordering_key=event.key,
                occurred_at=event.occurred_at,
                received_at=time.time(),
            )
            try:
                result = await store.append(new, [HANDLER], ordering=ordering)
            except StoreUnavailable as exc:
                if not any(sign in str(exc) for sign in LOST_CONNECTION):
                    raise  # a refusal for any other reason is a failure of the store
                appends.refused.append(event.dedup_key)
                await asyncio.sleep(0.1)
                continue
            appends.results.append((event, result))
            return
        raise AssertionError(f"the store refused {event.dedup_key} {APPEND_TRIES} times")

    async def appender() -> None:
        for job in queue:
            await asyncio.gather(*(append(event) for event in job))

    await asyncio.gather(*(appender() for _ in range(APPENDERS)))


async def kill_when_due(
    store: Store,
    url: str,
    worker: WorkerProcess,
    appending: asyncio.Task[None],
    appends: Appends,
) -> Kill:
    """SIGKILL ``worker`` once :data:`KILL_AT` of the deliveries are settled, at a moment
    it holds leases: it is frozen (SIGSTOP) to see what it holds, and let go again
    (SIGCONT) when that is nothing."""
    threshold = int(EVENTS * KILL_AT)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        counts = await store.counts()
        if settled(counts) >= threshold:
            worker.proc.send_signal(signal.SIGSTOP)
            held = await asyncio.to_thread(
                query,
                url,
                "SELECT id, attempts, lease_expires_at FROM deliveries "
                "WHERE status = 'leased' AND lease_owner = %s",
                (worker.owner,),
            )
            if held:
                await worker.kill()
                counts = await store.counts()
                return Kill(settled(counts), len(appends.results), [Orphan(*row) for row in held])
            worker.proc.send_signal(signal.SIGCONT)
        if worker.proc.returncode is not None:
            pytest.fail(f"the first worker died on its own:\n{worker.output()[-3000:]}")
        if appending.done():
            appending.result()  # raises what stopped the appends, if anything did
        if time.monotonic() > deadline or settled(counts) == EVENTS:
            pytest.fail(
                f"no moment to kill the first worker with leases in hand within "
                f"{RUN_TIMEOUT:g}s: {counts}, {len(appends.results)} appended; it says:\n"
                f"{worker.output()[-3000:]}"
            )
        await asyncio.sleep(0.02)


async def check_taken_over(store: Store, orphans: list[Orphan], seed: int) -> None:
    """Each orphan was claimed again only after its lease ran out, by the second worker,
    and settled by it; the killed attempt left no outcome."""
    for orphan in orphans:
        record = await store.get_delivery(orphan.id)
        assert record is not None and record.status == "done", f"seed {seed}: {record}"
        history = await store.attempts(orphan.id)
        assert orphan.attempts not in {a.number for a in history}, f"seed {seed}: {history}"
        taken = [a for a in history if a.number > orphan.attempts]
        assert taken and {a.owner for a in taken} == {"second"}, f"seed {seed}: {history}"
        assert min(a.started_at for a in taken) >= orphan.lease_expires_at, (
            f"seed {seed}: delivery {orphan.id} was taken over before its lease ran out: "
            f"{history}, lease until {orphan.lease_expires_at}"
        )
        assert (history[-1].number, history[-1].outcome) == (record.attempts, "done")


async def wait_until_finished(store: Store, worker: WorkerProcess) -> dict[str, int]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        counts = await store.counts()
        if sum(counts.values()) == EVENTS and not any(counts[s] for s in UNFINISHED):
            return counts
        if worker.proc.returncode is not None:
            pytest.fail(f"the second worker died:\n{worker.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"not finished within {RUN_TIMEOUT:g}s: {counts}; the second worker says:\n"
                f"{worker.output()[-3000:]}"
            )
        await asyncio.sleep(0.1)


# -- the test ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "window", "mode"),
    [
        ("latest", 0.0, "plain"),
        ("serial", 0.0, "plain"),
        ("coalesce", 0.0, "plain"),
        ("latest", WINDOW, "plain"),
        ("serial", 0.0, "transactional"),
    ],
    ids=["latest", "serial", "coalesce", "latest-window", "serial-transactional"],
)
async def test_order_holds_through_duplicates_failures_and_a_killed_worker(
    store_url: str, policy: str, window: float, mode: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("HOOKWISE_CHAOS_SEED") or secrets.randbelow(2**32))
    name = f"{policy}, window {window:g}s" if window else policy
    if mode != "plain":
        name += f", {mode} handler"
        await asyncio.to_thread(create_effects, store_url)
    print(f"\nordering chaos ({name}): seed {seed} (HOOKWISE_CHAOS_SEED={seed} to repeat)")
    rng = random.Random(seed)
    events, jobs = plan(rng, events=EVENTS, keys=KEYS)
    copies = sum(e.copies for e in events)
    journal = tmp_path / "journal.db"
    ordering = Ordering(policy, window)  # type: ignore[arg-type]
    appends = Appends()
    workers: list[WorkerProcess] = []

    started = time.monotonic()
    async with open_store(store_url) as store, reaped(workers):
        first = await WorkerProcess.start(store_url, journal, seed, "first", tmp_path, mode)
        workers.append(first)
        appending = asyncio.create_task(append_all(store, jobs, ordering, appends))
        try:
            kill = await kill_when_due(store, store_url, first, appending, appends)
        except BaseException:
            appending.cancel()
            raise
        second = await WorkerProcess.start(store_url, journal, seed, "second", tmp_path, mode)
        workers.append(second)
        await appending
        appended_in = time.monotonic() - started
        counts = await wait_until_finished(store, second)
        finished_in = time.monotonic() - started
        stats = await second.stop()
        states = {key: await store.ordering_state(HANDLER, key) for key in {e.key for e in events}}
        await check_taken_over(store, kill.orphans, seed)

    # -- appends: one event per dedup key, every copy answered with its seq. An append
    # the store refused may have been committed all the same (the connection was lost
    # before the answer): sent again, it is a duplicate.
    results = appends.results
    assert len(results) == copies, f"seed {seed}"
    seqs: dict[str, set[int]] = defaultdict(set)
    fresh = Counter[str]()
    for event, result in results:
        seqs[event.dedup_key].add(result.seq)
        if not result.duplicate:
            fresh[event.dedup_key] += 1
    assert all(len(found) == 1 for found in seqs.values()), f"seed {seed}: seqs differ"
    assert set(fresh.values()) <= {1}, f"seed {seed}: {fresh.most_common(3)}"
    assert set(seqs) - set(fresh) <= set(appends.refused), f"seed {seed}"
    duplicates = sum(r.duplicate for _, r in results)
    assert duplicates == copies - len(fresh), f"seed {seed}"

    # -- both workers ran the handler; nothing gave up
    deliveries, outcomes = await asyncio.to_thread(read_store, store_url)
    calls, state = await asyncio.to_thread(read_journal, journal)
    assert {c.owner for c in calls} == {"first", "second"}, f"seed {seed}"
    assert counts["dead"] == 0, f"seed {seed}: {counts}"

    # -- order, state and skips
    problems, figures = check_order(
        policy, events, deliveries, outcomes, calls, state, window=window
    )
    shown = "\n".join(problems[:20])
    assert not problems, f"seed {seed}: {len(problems)} ordering violations:\n{shown}"
    newest_at = {key: event.occurred_at for key, event in newest(events).items()}
    wrong = [
        (key, state.applied_at if state else None, newest_at[key])
        for key, state in sorted(states.items())
        if state is None or state.applied_at != newest_at[key]
    ]
    assert not wrong, f"seed {seed}: ordering state is not the newest applied: {wrong[:5]}"

    retries = sum(1 for outcome in outcomes.values() if outcome == "retry")
    if policy == "serial":
        assert counts["done"] == EVENTS, f"seed {seed}: {counts}"
    else:
        assert counts["done"] + counts["skipped"] == EVENTS, f"seed {seed}: {counts}"
        skipped = figures["stale"] + figures["superseded"]
        assert skipped == counts["skipped"] > 0, f"seed {seed}: {counts}, {figures}"
    if policy == "coalesce":
        assert figures["superseded"] > 0, f"seed {seed}: {figures}"
    assert figures["failed calls"] >= retries > 0, f"seed {seed}: {figures}, {retries}"
    assert figures["failed calls"] - retries <= len(kill.orphans), f"seed {seed}"

    undone = ""
    if mode == "transactional":
        # Zero double effects: one row per event, written by the attempt settled done,
        # whatever ran twice (a killed worker's calls, retries after failures).
        effects = await asyncio.to_thread(
            query, store_url, "SELECT dedup_key, count(*) FROM effects GROUP BY dedup_key"
        )
        per_event = dict(effects)
        doubled = {key: n for key, n in per_event.items() if n != 1}
        assert not doubled, (
            f"seed {seed}: effects applied more than once: {list(doubled.items())[:5]}"
        )
        done_keys = {e.dedup_key for e in events}
        assert set(per_event) == done_keys, (
            f"seed {seed}: {len(done_keys - set(per_event))} events without their effect, "
            f"{len(set(per_event) - done_keys)} effects of no event"
        )
        ran = Counter(c.seq for c in calls)
        undone = (
            f"\n  transactional: {len(per_event)} effects for {len(done_keys)} events; "
            f"{sum(n - 1 for n in ran.values())} extra calls (failures, the killed worker's) "
            "left none behind"
        )

    print(
        f"ordering chaos ({name}) on {store_url.partition(':')[0]}: {EVENTS} events over "
        f"{KEYS} keys, {copies} appends ({duplicates} duplicates, "
        f"{len(appends.refused)} refused and sent again), appended in "
        f"{appended_in:.1f}s, finished in {finished_in:.1f}s\n"
        f"  killed the first worker at {kill.settled} settled / {kill.appended} appended, "
        f"holding {len(kill.orphans)} leases (all taken over)\n"
        f"  handler calls {len(calls)}: applied {figures['applied']}, failed "
        f"{figures['failed calls']} (retries settled {retries}), re-applied after the kill "
        f"{figures['reapplied']}\n"
        f"  deliveries { {s: n for s, n in counts.items() if n} }, stale "
        f"{figures['stale']}, superseded {figures['superseded']}; second worker {stats}"
        f"{undone}"
    )
