"""Running hookwise as a process: ``hookwise serve`` and ``hookwise worker``.

One asyncio loop (uvloop when installed) carries the HTTP server, the worker loops
and their shared store. SIGTERM/SIGINT stop intake first (the server stops accepting
and finishes in-flight requests), then the workers stop claiming, give running
handlers ``[worker] grace`` seconds, and release what is left so another worker
takes it at once. Nothing acknowledged is lost: it is already in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .config import Settings, SourceSettings, StoreSettings
from .events import Event

if TYPE_CHECKING:
    from .app import Hookwise

__all__ = ["DEMO_SECRET", "demo_app", "run_worker", "serve"]

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
    log_level: str = "info",
) -> None:
    """Run the receiver (and, unless ``worker=False``, ``workers`` worker loops) until
    SIGTERM/SIGINT. Blocks."""
    _configure_logging(log_level)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with _new_loop_runner() as runner:
            runner.run(_serve(hw, host, port, worker, workers, log_level))
    finally:
        sys.setswitchinterval(previous)


async def _serve(
    hw: Hookwise,
    host: str,
    port: int,
    with_worker: bool,
    workers: int,
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
        )
        server = _Server(config)
        runners = [hw.worker(store) for _ in range(workers if with_worker else 0)]

        def on_signal() -> None:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

        with _signals(loop, on_signal):
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
            await worker.run(stop)
    log.info("worker stopped")
