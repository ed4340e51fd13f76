"""PostgreSQL restarts under load, and hookwise rides it out without a restart of its own.

A receiver and a worker (separate ``hookwise`` processes) run on PostgreSQL while
signed events keep arriving; the database is killed and started again
(``pg_ctlcluster ... restart -m immediate``, as a crash would). Acked means durable:
every delivery answered 200 is in the store and gets processed; while the database
is away the answer is 503 with Retry-After (or no answer at all), never a 200; once
it is back, 200s resume.

This test restarts the PostgreSQL server the other tests use: anything else talking
to it at that moment fails. Run it on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest

from ..integration._postgres import PG_URL, pg_schema
from .conftest import Process, Shell
from .test_scale_out import (
    HANDLERS,
    SOURCE,
    Connection,
    free_ports,
    handled,
    project_shell,
    signer,
    start_all,
    stopped_at_exit,
    wait_until_settled,
    write_config,
)

pytestmark = pytest.mark.slow

SENDERS = 16
WARM_UP = 300
"""Deliveries accepted before the database goes away."""
AFTER_RESTART = 3.0
"""Seconds of load after the database is back..."""
RECOVERED = 200
"""...and deliveries accepted since then, at least, before the load stops."""
RECOVERY_TIMEOUT = 60.0
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
PAUSE_AFTER_REFUSAL = 0.02
"""A sender's pause after a 503 or a failed connection, so an outage isn't a busy loop."""


@dataclass(frozen=True)
class Sent:
    id: str
    started: float
    answered: float
    status: int
    """The HTTP status; 0 when the request got no answer (connection refused or cut)."""
    outcome: str
    answered_id: str | None
    retry_after: str | None


class Load:
    """``senders`` loops, each posting a new signed delivery as soon as the last one
    was answered, until :meth:`stop`."""

    def __init__(self, port: int, senders: int = SENDERS) -> None:
        self.port = port
        self.senders = senders
        self.sent: list[Sent] = []
        self.accepted = 0
        self._stop = asyncio.Event()
        self._answered = asyncio.Event()
        self._new_delivery = signer()

    def stop(self) -> None:
        self._stop.set()

    async def wait(self, check: Callable[[], bool]) -> None:
        """Return once ``check()`` holds; it is asked again after every answer."""
        while not check():
            self._answered.clear()
            await self._answered.wait()

    async def run(self) -> None:
        await asyncio.gather(*(self._sender() for _ in range(self.senders)))

    async def _sender(self) -> None:
        connection = Connection(self.port)
        try:
            while not self._stop.is_set():
                sent = await self._send(connection)
                self.sent.append(sent)
                self.accepted += sent.status == 200
                self._answered.set()
                if sent.status != 200:
                    await asyncio.sleep(PAUSE_AFTER_REFUSAL)
        finally:
            connection.close()

    async def _send(self, connection: Connection) -> Sent:
        delivery = self._new_delivery()
        started = time.monotonic()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status, headers, body = await connection.exchange(
                    delivery.request(f"/hooks/{SOURCE}")
                )
        except (OSError, EOFError, ValueError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            return Sent(delivery.id, started, time.monotonic(), 0, problem, None, None)
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = {}
        return Sent(
            delivery.id,
            started,
            time.monotonic(),
            status,
            str(answer.get("status", body[:200])),
            answer.get("id"),
            headers.get("retry-after"),
        )


def local_cluster() -> tuple[str, str]:
    """Version and name of the local cluster that serves the test database."""
    port = urlsplit(PG_URL).port or 5432
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        pytest.fail(
            "this test restarts the test PostgreSQL with pg_ctlcluster, which is not "
            "installed: install postgresql-common (Debian), or deselect it with "
            '-k "not outage"',
            pytrace=False,
        )
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    pytest.fail(
        f"no local PostgreSQL cluster listens on port {port} (pg_lsclusters shows:\n"
        f"{listing}); this test restarts the server at {PG_URL} and needs it to be one",
        pytrace=False,
    )


def pg_ctlcluster(cluster: tuple[str, str], action: str, *options: str) -> None:
    result = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *options, *cluster, action],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"pg_ctlcluster {' '.join(cluster)} {action} failed with {result.returncode}\n"
        f"{result.stdout}{result.stderr}"
    )


def pg_ready() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def wait_for_pg(timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not pg_ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"PostgreSQL at {PG_URL} did not answer within {timeout:g}s")
        time.sleep(0.1)


@contextlib.contextmanager
def postgres_left_running(cluster: tuple[str, str]) -> Iterator[None]:
    """Whatever happens in the block, PostgreSQL answers again after it."""
    try:
        yield
    finally:
        if not pg_ready():
            with contextlib.suppress(AssertionError):
                pg_ctlcluster(cluster, "start")
        wait_for_pg()


@contextlib.asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {seconds:g}s") from None


@dataclass(frozen=True)
class Outage:
    sent: list[Sent]
    restarted_at: float
    back_at: float


async def restart_under_load(port: int, cluster: tuple[str, str]) -> Outage:
    load = Load(port)
    sending = asyncio.create_task(load.run())
    try:
        async with within(60.0, f"{WARM_UP} deliveries accepted before the restart"):
            await load.wait(lambda: load.accepted >= WARM_UP)
        restarted_at = time.monotonic()
        await asyncio.to_thread(pg_ctlcluster, cluster, "restart", "-m", "immediate")
        await asyncio.to_thread(wait_for_pg)
        back_at = time.monotonic()
        accepted_before = load.accepted
        await asyncio.sleep(AFTER_RESTART)
        async with within(
            RECOVERY_TIMEOUT, f"{RECOVERED} deliveries accepted after PostgreSQL came back"
        ):
            await load.wait(lambda: load.accepted - accepted_before >= RECOVERED)
    finally:
        load.stop()
        await sending
    return Outage(load.sent, restarted_at, back_at)


def test_acked_events_survive_a_postgres_restart_and_intake_recovers(
    hookwise: Shell, project: Path, running: list[Process]
) -> None:
    cluster = local_cluster()
    shell = project_shell(hookwise)
    records = project / "records"
    records.mkdir()

    with pg_schema() as url, postgres_left_running(cluster):
        # A short lease: a claim whose answer the restart swallowed is taken again soon.
        config = write_config(project, url, concurrency=16, batch=32, lease="10s")
        (port,) = free_ports(1)
        (receiver,), (worker,) = start_all(shell, config, [port], 1, records, running)
        with stopped_at_exit([receiver, worker]):
            outage = asyncio.run(restart_under_load(port, cluster))
            sent = outage.sent

            # -- while the database was away: 503 with Retry-After, or no answer; never 200
            statuses = Counter(s.status for s in sent)
            assert set(statuses) <= {200, 503, 0}, statuses
            refused = [s for s in sent if s.status == 503]
            assert refused, f"no 503 at all: the restart never reached intake ({statuses})"
            assert all(s.retry_after and int(s.retry_after) > 0 for s in refused), refused[:3]
            assert not [s for s in refused if s.answered < outage.restarted_at], (
                "503s before the database went away"
            )

            # -- and after: 200s again, from the same processes
            acked = [s for s in sent if s.status == 200]
            assert all(s.outcome == "accepted" and s.answered_id == s.id for s in acked)
            assert sum(1 for s in acked if s.answered >= outage.back_at) >= RECOVERED
            last = sorted(sent, key=lambda s: s.started)[-100:]
            assert {s.status for s in last} == {200}, Counter(s.status for s in last)
            assert receiver.popen.poll() is None and worker.popen.poll() is None

            # -- acked means durable: every 200 is stored, and processed
            with psycopg.connect(url, autocommit=True) as conn:
                stored = {row[0] for row in conn.execute("SELECT dedup_key FROM events")}
            acked_ids = {s.id for s in acked}
            lost = acked_ids - stored
            assert not lost, f"{len(lost)} deliveries answered 200 are not in the store"
            counts = wait_until_settled(url, len(stored) * len(HANDLERS), timeout=90.0)
            assert counts == {"done": len(stored) * len(HANDLERS)}, counts
            runs, _ = handled(records)
            unprocessed = {
                (handler, event_id)
                for handler in HANDLERS
                for event_id in acked_ids
                if runs[(handler, event_id)] == 0
            }
            assert not unprocessed, f"{len(unprocessed)} acked (handler, event) never ran"

            assert receiver.terminate() == 0, receiver.stderr
            assert worker.terminate() == 0, worker.stderr

    refused_ids = {s.id for s in refused}
    answered_503 = [s.answered for s in refused]
    print(
        f"\npg outage: {len(sent)} requests {dict(statuses)}; 503s from "
        f"{min(answered_503) - outage.restarted_at:+.2f}s to "
        f"{max(answered_503) - outage.restarted_at:+.2f}s after the restart began, "
        f"PostgreSQL answering again after {outage.back_at - outage.restarted_at:.2f}s; "
        f"{len(acked_ids)} acked, all stored; {len(refused_ids & stored)} answered 503 "
        f"but stored anyway; handler runs more than once: "
        f"{sum(1 for n in runs.values() if n > 1)}"
    )
