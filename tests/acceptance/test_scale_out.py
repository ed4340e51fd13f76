"""Scale-out on PostgreSQL: two receivers and two workers, separate ``hookwise``
processes sharing one database, as a user runs them on several hosts.

20,000 signed deliveries go to both receivers at once: 16,000 distinct events, 4,000
of them delivered a second time to the *other* receiver, half of those at the very
same moment as the first delivery. Every delivery must be answered 200 (accepted
exactly once per event, duplicate otherwise), and every event must run exactly once
per handler across both workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
import pytest

from hookwise.config import SourceSettings
from hookwise.providers import build_source

from ..integration._postgres import pg_schema
from ._record_handler import RECORD_ENV
from .conftest import SRC, Process, Shell

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SECRET = "whsec_c2NhbGUtb3V0LXRlc3Qtc2VjcmV0LWZvci1ob29rd2lzZQ=="
SOURCE = "shop"
HANDLERS = ("audit", "billing")

DISTINCT = 16_000
REDELIVERED = 4_000
"""Of the distinct events, how many are delivered twice (always to the other receiver)."""
SIMULTANEOUS = 2_000
"""Of the redelivered, how many are sent at the same moment as the first delivery."""
SENDERS = 64
"""Requests (or simultaneous pairs) in flight at once."""
SETTLE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0

CONFIG = """
[store]
url = "{url}"

[worker]
concurrency = {concurrency}
batch = {batch}
lease = "{lease}"
poll_interval = "200ms"

[sources.{source}]
provider = "standard"
secrets = ["env:HOOKWISE_TEST_SECRET"]

[[handlers]]
name = "audit"
source = "{source}"
call = "_record_handler:audit"

[[handlers]]
name = "billing"
source = "{source}"
call = "_record_handler:billing"
"""


@dataclass(frozen=True)
class Signed:
    """One delivery ready to send: Standard Webhooks headers over ``body``."""

    id: str
    headers: dict[str, str]
    body: bytes

    def request(self, path: str) -> bytes:
        """The whole HTTP/1.1 request, as bytes on the wire."""
        head = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(self.body)}"]
        head.extend(f"{name}: {value}" for name, value in self.headers.items())
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Answer:
    id: str
    receiver: int
    status: int
    """The HTTP status; 0 when the request got no answer."""
    outcome: str
    """The answer's ``status`` field (accepted, duplicate, ...), or what went wrong."""
    answered_id: str | None


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def signer() -> Callable[[], Signed]:
    """A function that signs a new, distinct delivery each time it is called, at that
    time (send it within the source's 5-minute tolerance)."""
    source = build_source(SourceSettings(name=SOURCE, provider="standard", secrets=(SECRET,)))

    def new_delivery() -> Signed:
        event_id = f"msg_{uuid.uuid4().hex}"
        body = orjson.dumps(
            {"type": "order.paid", "data": {"id": event_id, "amount": 4200, "currency": "eur"}}
        )
        headers = source.sign_headers(body, now=time.time(), delivery_id=event_id)
        headers["content-type"] = "application/json"
        return Signed(event_id, headers, body)

    return new_delivery


class Connection:
    """One keep-alive HTTP/1.1 connection to a receiver, sending prepared requests one
    at a time.

    httpx spends about a millisecond of CPU per request on a small machine: 20,000
    requests through it would measure the test's client rather than hookwise. This
    writes the bytes and reads the answer, nothing more."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``request``; the answer's status, headers (lower-cased names) and body."""
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split(" ", 2)[1]), headers, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def post(connection: Connection, receiver: int, delivery: Signed) -> Answer:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, _, body = await connection.exchange(delivery.request(f"/hooks/{SOURCE}"))
    except (OSError, EOFError, ValueError, TimeoutError) as exc:
        return Answer(delivery.id, receiver, 0, f"{type(exc).__name__}: {exc}", None)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = {}
    return Answer(
        delivery.id,
        receiver,
        status,
        str(answer.get("status", body[:200])),
        answer.get("id"),
    )


@contextlib.contextmanager
def stopped_at_exit(processes: Sequence[Process]) -> Iterator[None]:
    """Make sure the processes are gone before the schema they use is dropped."""
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def start_all(
    shell: Shell,
    config: Path,
    ports: Sequence[int],
    workers: int,
    record_dir: Path,
    running: list[Process],
) -> tuple[list[Process], list[Process]]:
    """Start the receivers (``serve --no-worker``) and workers together, then wait for
    each: they migrate the empty schema at the same time. Each process goes into
    ``running`` as soon as it is started; if one fails to come up, all are stopped."""
    receivers = [
        shell.start("serve", "-c", str(config), "--no-worker", "--port", str(port))
        for port in ports
    ]
    running.extend(receivers)
    runners = [
        shell.start(
            "worker", "-c", str(config), env={RECORD_ENV: str(record_dir / f"worker-{n}.log")}
        )
        for n in range(workers)
    ]
    running.extend(runners)
    try:
        for receiver, port in zip(receivers, ports, strict=True):
            receiver.wait_for_http(f"http://127.0.0.1:{port}/readyz")
        for runner in runners:
            runner.wait_for_output(f"running {len(HANDLERS)} handler(s)")
    except BaseException:
        for process in [*receivers, *runners]:
            process.stop()
        raise
    return receivers, runners


def project_shell(shell: Shell) -> Shell:
    """The shell, with the secret exported and the test handlers importable."""
    shell.env.update(
        HOOKWISE_TEST_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join((str(SRC), str(HERE))),
    )
    return shell


def write_config(
    directory: Path, url: str, *, concurrency: int = 64, batch: int = 64, lease: str = "30s"
) -> Path:
    config = directory / "hookwise.toml"
    config.write_text(
        CONFIG.format(url=url, source=SOURCE, concurrency=concurrency, batch=batch, lease=lease)
    )
    return config


def delivery_counts(url: str) -> Counter[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    return Counter({str(status): int(n) for status, n in rows})


def wait_until_settled(url: str, expected: int, timeout: float = SETTLE_TIMEOUT) -> Counter[str]:
    """Poll the store until ``expected`` deliveries exist and none is left to do."""
    deadline = time.monotonic() + timeout
    while True:
        counts = delivery_counts(url)
        unfinished = {s: n for s, n in counts.items() if s in ("pending", "leased", "retrying")}
        if sum(counts.values()) >= expected and not unfinished:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(
                f"deliveries not settled within {timeout:g}s: {dict(counts)} "
                f"(expected {expected} done)"
            )
        time.sleep(0.25)


def handled(record_dir: Path) -> tuple[Counter[tuple[str, str]], dict[str, int]]:
    """Every (handler, event id) run recorded by the workers, and lines per worker file."""
    runs: Counter[tuple[str, str]] = Counter()
    per_worker: dict[str, int] = {}
    for path in sorted(record_dir.glob("worker-*.log")):
        lines = path.read_text().splitlines()
        per_worker[path.name] = len(lines)
        for line in lines:
            handler, _, event_id = line.partition(" ")
            runs[(handler, event_id)] += 1
    return runs, per_worker


Job = tuple[tuple[int, Signed], ...]
"""One delivery, or a pair sent at the same moment: (receiver index, delivery) each."""


def plan(deliveries: Sequence[Signed], rng: random.Random) -> tuple[list[Job], list[Job]]:
    """First deliveries, then redeliveries: every event goes to receiver ``index % 2``;
    the redelivered ones go again to the other receiver, ``SIMULTANEOUS`` of them paired
    with their first delivery, the rest in the second list."""
    indexes = list(range(len(deliveries)))
    redelivered = rng.sample(indexes, REDELIVERED)
    simultaneous = set(redelivered[:SIMULTANEOUS])
    later = redelivered[SIMULTANEOUS:]
    first: list[Job] = []
    for i in indexes:
        once = (i % 2, deliveries[i])
        first.append((once, (1 - i % 2, deliveries[i])) if i in simultaneous else (once,))
    rng.shuffle(first)
    again: list[Job] = [((1 - i % 2, deliveries[i]),) for i in later]
    return first, again


async def send_all(
    ports: Sequence[int], rounds: Sequence[Sequence[Job]], senders: int
) -> list[Answer]:
    """Send each round's jobs, ``senders`` at a time, each sender with a connection to
    every receiver; a round starts once the one before is answered."""
    answers: list[Answer] = []

    async def sender(queue: Iterator[Job]) -> None:
        connections = [Connection(port) for port in ports]
        try:
            for job in queue:
                sent = [post(connections[r], r, delivery) for r, delivery in job]
                answers.extend(await asyncio.gather(*sent))
        finally:
            for connection in connections:
                connection.close()

    for jobs in rounds:
        queue = iter(jobs)
        await asyncio.gather(*(sender(queue) for _ in range(senders)))
    return answers


def test_two_receivers_and_two_workers_process_each_event_once_per_handler(
    hookwise: Shell, project: Path, running: list[Process]
) -> None:
    shell = project_shell(hookwise)
    records = project / "records"
    records.mkdir()
    rng = random.Random(20_000)

    with pg_schema() as url:
        config = write_config(project, url)
        ports = free_ports(2)
        receivers, workers = start_all(shell, config, ports, 2, records, running)
        with stopped_at_exit([*receivers, *workers]):
            new_delivery = signer()
            deliveries = [new_delivery() for _ in range(DISTINCT)]
            first, again = plan(deliveries, rng)

            started = time.monotonic()
            answers = asyncio.run(send_all(ports, [first, again], SENDERS))
            sent_in = time.monotonic() - started

            # -- every delivery answered 200: accepted once per event, duplicate otherwise
            assert len(answers) == DISTINCT + REDELIVERED
            failed = [a for a in answers if a.status != 200]
            assert not failed, f"{len(failed)} deliveries not answered 200, e.g. {failed[:3]}"
            outcomes = Counter(a.outcome for a in answers)
            assert outcomes == {"accepted": DISTINCT, "duplicate": REDELIVERED}, outcomes
            assert all(a.answered_id == a.id for a in answers)
            accepted = Counter(a.id for a in answers if a.outcome == "accepted")
            ids = {d.id for d in deliveries}
            assert set(accepted) == ids and set(accepted.values()) == {1}
            planned = Counter(receiver for job in [*first, *again] for receiver, _ in job)
            assert Counter(a.receiver for a in answers) == planned
            paired = {job[0][1].id for job in first if len(job) == 2}
            later = {job[0][1].id for job in again}
            assert len(paired) == SIMULTANEOUS and len(later) == REDELIVERED - SIMULTANEOUS
            sends = Counter(a.id for a in answers)
            assert {sends[i] for i in paired | later} == {2}
            assert all(a.outcome == "duplicate" for a in answers[-len(later) :])

            # -- the store agrees
            counts = wait_until_settled(url, DISTINCT * len(HANDLERS))
            settled_in = time.monotonic() - started
            assert counts == {"done": DISTINCT * len(HANDLERS)}, counts
            with psycopg.connect(url, autocommit=True) as conn:
                stored = {row[0] for row in conn.execute("SELECT dedup_key FROM events")}
                (events_rows,) = conn.execute("SELECT count(*) FROM events").fetchone() or (0,)
                (retried,) = conn.execute(
                    "SELECT count(*) FROM deliveries WHERE attempts <> 1"
                ).fetchone() or (0,)
            assert events_rows == DISTINCT
            assert stored == ids
            assert retried == 0, f"{retried} deliveries needed more than one attempt"

            # -- exactly once per handler, across both workers
            runs, per_worker = handled(records)
            expected = {(handler, event_id) for handler in HANDLERS for event_id in ids}
            missing = expected - set(runs)
            twice = [(key, n) for key, n in runs.items() if n != 1]
            assert not missing, (
                f"{len(missing)} (handler, event) never ran, e.g. {sorted(missing)[:3]}"
            )
            assert not twice, f"{len(twice)} (handler, event) ran more than once: {twice[:3]}"
            assert set(runs) == expected
            assert len(per_worker) == 2 and all(per_worker.values()), (
                f"both workers take a share of the work: {per_worker}"
            )

            for process in [*receivers, *workers]:
                assert process.terminate() == 0, process.stderr
                assert "Traceback" not in process.stderr, process.stderr

    print(
        f"\nscale-out: {len(answers)} deliveries ({dict(outcomes)}) sent in {sent_in:.1f}s, "
        f"{DISTINCT * len(HANDLERS)} handler runs settled after {settled_in:.1f}s; "
        f"per worker {per_worker}"
    )
