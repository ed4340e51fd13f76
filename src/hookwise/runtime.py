"""Running hookwise as a process: ``hookwise serve`` and ``hookwise worker``.

One asyncio loop (uvloop when installed) carries the HTTP server, the worker loops
and their shared store. SIGTERM/SIGINT stop intake first (the server stops accepting
and finishes in-flight requests), then the workers stop claiming, give running
handlers ``[worker] grace`` seconds, and release what is left so another worker
takes it at once. Nothing acknowledged is lost: it is already in the store.

With ``[store] retention`` set, the process that runs workers also purges finished
events older than that, every :data:`RETENTION_INTERVAL` seconds
(:func:`run_retention`).

``hookwise serve`` also runs the ``[polls.NAME]`` (one poller task beside the server),
and ``hookwise poll`` runs only them (:func:`run_polls`): their events are stored for
whichever worker shares the store. On shutdown a poll run in flight gets
:data:`POLL_STOP_GRACE` seconds to finish; one cut short is simply run again later (its
events are deduplicated by the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from .clock import Clock, system_clock
from .config import Settings, SourceSettings, StoreSettings
from .durations import format_duration
from .events import Event

if TYPE_CHECKING:
    from .app import Hookwise
    from .store import Store

__all__ = [
    "DEMO_SECRET",
    "POLL_STOP_GRACE",
    "RETENTION_FIRST_RUN",
    "RETENTION_INTERVAL",
    "demo_app",
    "run_polls",
    "run_retention",
    "run_worker",
    "serve",
]

log = logging.getLogger("hookwise")

DEMO_SECRET = "whsec_ZGVtby1vbmx5LXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="  # noqa: S105 - public
"""The demo source's secret. It is public: never use it for a real source."""


def demo_app(store_url: str | None = None) -> Hookwise:
    """A ready-to-run app: a ``demo`` source (Standard Webhooks, :data:`DEMO_SECRET`)
    and a handler that prints every event it receives."""
    from .app import Hookwise

    settings = Settings(
        store=StoreSettings(url=store_url or "sqlite:///hookwise-demo.db"),
        sources={"demo": SourceSettings(name="demo", provider="standard", secrets=(DEMO_SECRET,))},
    )
    hw = Hookwise(settings=settings)

    @hw.handler("demo", "*", name="print")
    async def print_event(event: Event) -> None:
        print(
            f"handled event seq={event.seq} id={event.id} type={event.type} "
            f"attempt={event.attempt} body={event.text()[:200]}",
            flush=True,
        )

    return hw


SWITCH_INTERVAL = 0.0005
"""The GIL switch interval ``hookwise serve`` runs with (Python's default is 5 ms).

The SQLite writer thread gives the GIL up for every statement it runs and must take
it back from the event loop, which holds it nearly all the time under load; with
the default interval each statement of a group commit could wait milliseconds for
it, so requests waited for their commit far longer than the commit took.
Half a millisecond measured best in ``bench/ingest.py`` (about +20% throughput
against 5 ms, ahead of 0.2 and 1 ms). The loop is only ever asked to give the GIL
up when another thread is waiting for it, so a lone loop runs as before.
"""


RETENTION_INTERVAL = 600.0
"""Seconds between two purges of old finished events."""

RETENTION_FIRST_RUN = 60.0
"""Seconds after start before the first purge: a starting process has better things
to do, and a crash loop should not purge on every start."""

RETENTION_JITTER = 0.25
"""Each wait is stretched or shrunk at random by up to this fraction, so processes
started together (a deploy) don't all purge at the same moment."""


async def run_retention(
    store: Store,
    retention: float,
    *,
    interval: float = RETENTION_INTERVAL,
    first_run: float = RETENTION_FIRST_RUN,
    clock: Clock = system_clock,
    rand: Callable[[], float] = random.random,
    logger: logging.Logger | None = None,
) -> None:
    """Purge finished events received more than ``retention`` seconds ago, the first
    time ``first_run`` seconds from now and then every ``interval`` seconds (each
    with jitter), until cancelled.

    >>> task = asyncio.create_task(run_retention(store, retention=30 * 86400))

    A failed purge is logged and tried again at the next round; it never ends the loop.
    """
    log_ = logger if logger is not None else log
    wait = first_run
    while True:
        await asyncio.sleep(wait * (1 + RETENTION_JITTER * (2 * rand() - 1)))
        wait = interval
        try:
            deleted = await store.purge(before=clock.now() - retention)
        except Exception:
            log_.exception(
                "retention: purging events older than %s failed; trying again in %s",
                format_duration(retention),
                format_duration(interval),
            )
            continue
        log_.log(
            logging.INFO if deleted else logging.DEBUG,
            "retention: purged %d finished event%s older than %s",
            deleted,
            "" if deleted == 1 else "s",
            format_duration(retention),
        )


@contextlib.asynccontextmanager
async def _retention(hw: Hookwise, store: Store) -> AsyncIterator[None]:
    """Run :func:`run_retention` for the block when ``[store] retention`` is set."""
    retention = hw.settings.store.retention
    if retention is None:
        yield
        return
    log.info(
        "retention: finished events are purged %s after they arrive", format_duration(retention)
    )
    task = asyncio.create_task(
        run_retention(
            store,
            retention,
            interval=RETENTION_INTERVAL,
            first_run=RETENTION_FIRST_RUN,
            clock=hw.clock,
        ),
        name="hookwise-retention",
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


POLL_STOP_GRACE = 5.0
"""Seconds a poll run in flight may take to finish once the process is asked to stop;
after that it is cancelled (a rate-limit wait can last minutes)."""


@contextlib.asynccontextmanager
async def _polling(
    hw: Hookwise, store: Store, stop: asyncio.Event, names: Sequence[str] | None = None
) -> AsyncIterator[asyncio.Task[None] | None]:
    """Run the polls (``names``, default all) in one task until ``stop`` is set; the
    task, or None when there is nothing to poll. Leaving the block sets ``stop``."""
    poller = hw.poller(store, names=names)
    if not poller.names:
        yield None
        return
    async with poller:
        log.info(
            "polling %s",
            ", ".join(
                f"{name} (every {_every(hw.polls[name].min_every, hw.polls[name].max_every)})"
                for name in poller.names
            ),
        )
        task = asyncio.create_task(poller.run(stop), name="hookwise-poller")
        task.add_done_callback(_report_poller_end)
        try:
            yield task
        finally:
            stop.set()
            done, _ = await asyncio.wait({task}, timeout=POLL_STOP_GRACE)
            if not done:
                log.info("poller: a run was still going after %ss; cancelling it", POLL_STOP_GRACE)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _every(low: float, high: float) -> str:
    if low == high:
        return format_duration(low)
    return f"{format_duration(low)} to {format_duration(high)}"


def _report_poller_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the poller stopped: %s; polls do not run until restart", task.exception())


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _new_loop_runner() -> asyncio.Runner:
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        return asyncio.Runner()


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop, on_signal: Callable[[], None]) -> Iterator[None]:
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no support
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve(
    hw: Hookwise,
    *,
    host: str,
    port: int,
    worker: bool = True,
    workers: int = 1,
    poll: bool = True,
    log_level: str = "info",
) -> None:
    """Run the receiver, the polls (unless ``poll=False``) and, unless ``worker=False``,
    ``workers`` worker loops until SIGTERM/SIGINT. Blocks."""
    _configure_logging(log_level)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with _new_loop_runner() as runner:
            runner.run(_serve(hw, host, port, worker, workers, poll, log_level))
    finally:
        sys.setswitchinterval(previous)


async def _serve(
    hw: Hookwise,
    host: str,
    port: int,
    with_worker: bool,
    workers: int,
    with_polls: bool,
    log_level: str,
) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # signals are ours: intake stops first, then the workers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with hw.open_store() as store:
        receiver = hw.asgi(store=store)
        config = uvicorn.Config(
            receiver,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_level=log_level,
            log_config=None,
            timeout_graceful_shutdown=10,
            # The receiver reads X-Forwarded-* itself, and only from [server] trusted_proxies.
            proxy_headers=False,
        )
        server = _Server(config)
        runners = [hw.worker(store) for _ in range(workers if with_worker else 0)]

        def on_signal() -> None:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

        with _signals(loop, on_signal):
            async with (
                _polling(hw, store, stop) if with_polls else contextlib.nullcontext(),
                _retention(hw, store) if runners else contextlib.nullcontext(),
            ):
                worker_tasks = [asyncio.create_task(w.run(stop)) for w in runners]
                serving = asyncio.create_task(server.serve())
                try:
                    await serving
                finally:
                    stop.set()
                    if worker_tasks:
                        await asyncio.gather(*worker_tasks, return_exceptions=True)
    log.info("hookwise stopped")


def run_worker(hw: Hookwise, *, concurrency: int | None = None, log_level: str = "info") -> None:
    """Run one worker process (no HTTP) until SIGTERM/SIGINT. Blocks."""
    _configure_logging(log_level)
    with _new_loop_runner() as runner:
        runner.run(_run_worker(hw, concurrency))


async def _run_worker(hw: Hookwise, concurrency: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with hw.open_store() as store:
        options = {"concurrency": concurrency} if concurrency else {}
        worker = hw.worker(store, **options)
        with _signals(loop, stop.set):
            log.info(
                "worker %s running %d handler(s): %s",
                worker.owner,
                len(hw.handlers),
                ", ".join(hw.handlers.names()) or "(none)",
            )
            async with _retention(hw, store):
                await worker.run(stop)
    log.info("worker stopped")


def run_polls(hw: Hookwise, *, names: Sequence[str] | None = None, log_level: str = "info") -> None:
    """Run the polls (``names``, default all) until SIGTERM/SIGINT, with no receiver and
    no worker: their events wait in the store for a worker. Blocks."""
    _configure_logging(log_level)
    with _new_loop_runner() as runner:
        runner.run(_run_polls(hw, names))


async def _run_polls(hw: Hookwise, names: Sequence[str] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with hw.open_store() as store:
        with _signals(loop, stop.set):
            async with _polling(hw, store, stop, names) as task:
                if task is not None:
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
    log.info("polling stopped")
