"""A real uvicorn server on a loopback port, in a background thread, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn


class LiveServer:
    """Serve an ASGI app on 127.0.0.1 with a free port until ``stop()``."""

    def __init__(self, app: Any, *, lifespan: str = "on", port: int = 0) -> None:
        self.config = uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning"
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        loop.run_until_complete(self.server.serve())
        loop.close()

    def start(self, timeout: float = 10.0) -> LiveServer:
        self.thread.start()
        waited = 0.0
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
            waited += 0.01
            if waited > timeout:
                raise TimeoutError("the test server did not start in time")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


@contextlib.contextmanager
def live(app: Any, *, lifespan: str = "on", port: int = 0) -> Iterator[LiveServer]:
    server = LiveServer(app, lifespan=lifespan, port=port).start()
    try:
        yield server
    finally:
        server.stop()
