"""Ordering end to end: ``hookwise serve --no-worker`` and ``hookwise worker`` processes
on one SQLite file, fed signed Standard Webhooks requests over HTTP, as a user runs them.

The source is ``ordering = "latest"`` keyed by ``body:data.id`` with the time in
``body:data.version_time``. 10,000 events about 500 objects (each object's versions
have rising times) are sent one to three times each under the same ``webhook-id``, half
of the repeated ones twice at the very same moment, all shuffled. The handler
(``_ordering_handler.py``) fails about one call in ten and is retried within a fraction
of a second; once 30% of the deliveries are settled the worker process is SIGKILLed and
another one started, which takes over the dead one's leases when they expire (2 s).

Afterwards every request was answered 200 (accepted once per event, duplicate
otherwise), every object's state is its newest version, no object ever had an older
version applied after a newer one, every event not applied was skipped as stale, and
``hookwise events show`` says so for a skipped one.

The seed is random per run, printed, and taken from ``HOOKWISE_CHAOS_SEED`` when set.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from hookwise.config import SourceSettings
from hookwise.providers import Source, build_source

from ..integration._chaos import (
    UNFINISHED,
    Job,
    Planned,
    check_order,
    plan,
    query,
    read_journal,
    read_store,
    settled,
    status_counts,
)
from ._ordering_handler import JOURNAL_ENV, OWNER_ENV, SEED_ENV
from .conftest import SRC, Process, Shell
from .test_scale_out import Connection, free_ports

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SECRET = "whsec_b3JkZXJpbmctZW5kLXRvLWVuZC10ZXN0LXNlY3JldA=="
SOURCE = "objects"
HANDLER = "mirror"
EVENTS = 10_000
KEYS = 500
KILL_AT = 0.3
SENDERS = 32
"""Requests (or simultaneous pairs) in flight at once."""
REQUEST_TIMEOUT = 30.0
RUN_TIMEOUT = 150.0

CONFIG = f"""
[store]
url = "sqlite:///hookwise.db"

[worker]
concurrency = 64
batch = 64
lease = "2s"
poll_interval = "50ms"

[sources.{SOURCE}]
provider = "standard"
secrets = ["env:HOOKWISE_TEST_SECRET"]
ordering = "latest"
ordering_key = "body:data.id"
occurred_at = "body:data.version_time"

[[handlers]]
name = "{HANDLER}"
source = "{SOURCE}"
call = "_ordering_handler:mirror"
max_attempts = 40
base_delay = "20ms"
max_delay = "200ms"
"""


@dataclass(frozen=True)
class Answer:
    dedup_key: str
    status: int
    """The HTTP status; 0 when the request got no answer."""
    outcome: str
    seq: int | None


def sign(event: Planned) -> bytes:
    """The whole HTTP/1.1 request delivering ``event``, signed now."""
    source = _source()
    body = event.body()
    headers = source.sign_headers(body, now=time.time(), delivery_id=event.dedup_key)
    head = [
        f"POST /hooks/{SOURCE} HTTP/1.1",
        "host: 127.0.0.1",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    head.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@functools.cache
def _source() -> Source:
    return build_source(SourceSettings(name=SOURCE, provider="standard", secrets=(SECRET,)))


async def post(connection: Connection, event: Planned) -> Answer:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, _, body = await connection.exchange(sign(event))
    except (OSError, EOFError, ValueError, TimeoutError) as exc:
        return Answer(event.dedup_key, 0, f"{type(exc).__name__}: {exc}", None)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = {}
    return Answer(event.dedup_key, status, str(answer.get("status", body[:200])), answer.get("seq"))


async def send_all(port: int, jobs: Sequence[Job], answers: list[Answer]) -> None:
    """Send every job, ``SENDERS`` at a time; a pair goes on two connections at once."""
    queue = iter(jobs)

    async def sender() -> None:
        connections = [Connection(port), Connection(port)]
        try:
            for job in queue:
                sent = [post(connections[i], event) for i, event in enumerate(job)]
                answers.extend(await asyncio.gather(*sent))
        finally:
            for connection in connections:
                connection.close()

    await asyncio.gather(*(sender() for _ in range(SENDERS)))


@dataclass(frozen=True)
class Kill:
    settled: int
    sent: int
    orphans: list[int]
    """Deliveries the killed worker held leased."""


async def kill_when_due(
    url: str, worker: Process, sending: asyncio.Task[None], answers: list[Answer]
) -> Kill:
    """SIGKILL ``worker`` once :data:`KILL_AT` of the deliveries are settled, at a moment
    it holds leases (frozen with SIGSTOP to look, let go with SIGCONT if it holds none)."""
    threshold = int(EVENTS * KILL_AT)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        counts = await asyncio.to_thread(status_counts, url)
        if settled(counts) >= threshold:
            worker.popen.send_signal(signal.SIGSTOP)
            held = await asyncio.to_thread(
                query, url, "SELECT id FROM deliveries WHERE status = 'leased'"
            )
            if held:
                worker.popen.kill()
                await asyncio.to_thread(worker.popen.wait, 10)
                counts = await asyncio.to_thread(status_counts, url)
                return Kill(settled(counts), len(answers), [row[0] for row in held])
            worker.popen.send_signal(signal.SIGCONT)
        if worker.popen.poll() is not None:
            pytest.fail(f"the first worker died on its own:\n{worker.stderr[-3000:]}")
        if sending.done():
            sending.result()
        if time.monotonic() > deadline or settled(counts) == EVENTS:
            pytest.fail(
                f"no moment to kill the first worker with leases in hand: {dict(counts)}, "
                f"{len(answers)} sent; it says:\n{worker.stderr[-3000:]}"
            )
        await asyncio.sleep(0.02)


def wait_until_finished(url: str, worker: Process) -> Counter[str]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        counts = status_counts(url)
        if sum(counts.values()) == EVENTS and not any(counts[s] for s in UNFINISHED):
            return counts
        if worker.popen.poll() is not None:
            pytest.fail(f"the second worker died:\n{worker.stderr[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not finished within {RUN_TIMEOUT:g}s: {dict(counts)}")
        time.sleep(0.1)


@pytest.fixture
def shell(hookwise: Shell, project: Path) -> Iterator[Shell]:
    hookwise.env.update(
        HOOKWISE_TEST_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join((str(SRC), str(HERE), str(ROOT))),
    )
    (project / "hookwise.toml").write_text(CONFIG)
    yield hookwise


def test_latest_keeps_every_object_at_its_newest_version_through_the_real_processes(
    shell: Shell, project: Path, running: list[Process]
) -> None:
    seed = int(os.environ.get("HOOKWISE_CHAOS_SEED") or secrets.randbelow(2**32))
    print(f"\nordering end to end: seed {seed} (HOOKWISE_CHAOS_SEED={seed} to repeat)")
    rng = random.Random(seed)
    events, jobs = plan(rng, events=EVENTS, keys=KEYS)
    copies = sum(e.copies for e in events)
    simultaneous = sum(len(job) == 2 for job in jobs)
    journal = project / "journal.db"
    url = f"sqlite:///{project / 'hookwise.db'}"
    shell.env.update({JOURNAL_ENV: str(journal), SEED_ENV: str(seed)})

    [port] = free_ports(1)
    receiver = shell.start("serve", "--no-worker", "--port", str(port))
    running.append(receiver)
    receiver.wait_for_http(f"http://127.0.0.1:{port}/readyz")
    first = shell.start("worker", env={OWNER_ENV: "first"})
    running.append(first)
    first.wait_for_output("running 1 handler(s)")

    answers: list[Answer] = []

    async def run() -> tuple[Kill, Process]:
        sending = asyncio.create_task(send_all(port, jobs, answers))
        try:
            kill = await kill_when_due(url, first, sending, answers)
            second = shell.start("worker", env={OWNER_ENV: "second"})
            running.append(second)
            await asyncio.to_thread(second.wait_for_output, "running 1 handler(s)")
            await sending
        except BaseException:
            sending.cancel()
            raise
        return kill, second

    started = time.monotonic()
    kill, second = asyncio.run(run())
    sent_in = time.monotonic() - started
    counts = wait_until_finished(url, second)
    finished_in = time.monotonic() - started

    # -- every request answered 200: accepted once per event, duplicate otherwise
    assert len(answers) == copies, f"seed {seed}"
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"seed {seed}: {len(failed)} not answered 200, e.g. {failed[:3]}"
    outcomes = Counter(a.outcome for a in answers)
    assert outcomes == {"accepted": EVENTS, "duplicate": copies - EVENTS}, f"seed {seed}"
    seqs: dict[str, set[int | None]] = {}
    for answer in answers:
        seqs.setdefault(answer.dedup_key, set()).add(answer.seq)
    assert all(len(found) == 1 and None not in found for found in seqs.values()), f"seed {seed}"

    # -- state, order and skips, from the handler's journal and the store
    deliveries, attempt_outcomes = read_store(url)
    calls, state = read_journal(journal)
    assert {c.owner for c in calls} == {"first", "second"}, f"seed {seed}"
    problems, figures = check_order("latest", events, deliveries, attempt_outcomes, calls, state)
    shown = "\n".join(problems[:20])
    assert not problems, f"seed {seed}: {len(problems)} ordering violations:\n{shown}"
    assert counts["done"] + counts["skipped"] == EVENTS, f"seed {seed}: {counts}"
    assert figures["stale"] == counts["skipped"] > 0, f"seed {seed}: {counts}"
    retries = sum(1 for outcome in attempt_outcomes.values() if outcome == "retry")
    assert retries > 0, f"seed {seed}"

    # -- the killed worker's leases were taken over by the second one
    by_id = {d.id: d for d in deliveries.values()}
    for orphan in kill.orphans:
        found = by_id[orphan]
        assert found.status == "done", f"seed {seed}: {found}"
        assert attempt_outcomes.get((found.seq, found.attempts)) == "done", f"seed {seed}"

    # -- what a user sees of a skipped event
    listed = shell("events", "list", "--status", "skipped", "--json", "-n", "1")
    assert listed.code == 0, listed
    [skipped] = listed.json()
    shown_event = shell("events", "show", str(skipped["seq"]))
    assert shown_event.code == 0, shown_event
    assert (
        f"{HANDLER}: skipped, 0 attempt(s), stale (older than an event already applied for "
        "its key); ordering latest by key obj_"
    ) in shown_event.stdout, shown_event
    as_json = shell("events", "show", str(skipped["seq"]), "--json")
    assert as_json.code == 0, as_json
    [delivery] = as_json.json()["deliveries"]
    assert (delivery["status"], delivery["last_error"]) == ("skipped", "stale"), delivery

    for process in (second, receiver):
        assert process.terminate() == 0, process.stderr
        assert "Traceback" not in process.stderr, process.stderr

    print(
        f"ordering end to end (latest, SQLite): {EVENTS} events over {KEYS} keys, "
        f"{copies} requests ({copies - EVENTS} duplicates, {simultaneous} sent as "
        f"simultaneous pairs), sent in {sent_in:.1f}s, finished in {finished_in:.1f}s\n"
        f"  killed the first worker at {kill.settled} settled / {kill.sent} answered, "
        f"holding {len(kill.orphans)} leases (all taken over)\n"
        f"  handler calls {len(calls)}: applied {figures['applied']}, failed "
        f"{figures['failed calls']} (retries settled {retries}), re-applied after the kill "
        f"{figures['reapplied']}\n"
        f"  deliveries { {s: n for s, n in counts.items() if n} }, stale {figures['stale']}"
    )
