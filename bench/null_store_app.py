"""The ceiling: hookwise's receiver (verification, extraction, redaction, answer) served
exactly as ``hookwise serve`` serves it, over a store that does nothing and answers at
once. Its ratio to the no-op app is the most any store could reach on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import uvicorn

from hookwise.app import Hookwise
from hookwise.config import Settings, SourceSettings, StoreSettings
from hookwise.events import NewEvent
from hookwise.store import AppendResult, MemoryStore, Ordering


class NullStore(MemoryStore):
    """Opens, and takes every append without storing anything."""

    def __init__(self) -> None:
        super().__init__()
        self._seq = 0

    async def append(
        self, event: NewEvent, handlers: Sequence[str], *, ordering: Ordering | None = None
    ) -> AppendResult:
        self._seq += 1
        return AppendResult(seq=self._seq, duplicate=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    from hookwise.runtime import SWITCH_INTERVAL

    secret = os.environ["HOOKWISE_BENCH_SECRET"]
    hw = Hookwise(
        settings=Settings(
            store=StoreSettings(url="memory://"),
            sources={"bench": SourceSettings(name="bench", provider="standard", secrets=(secret,))},
        )
    )
    store = NullStore()
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(
        hw.asgi(store=store),
        host="127.0.0.1",
        port=args.port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        log_config=None,
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )

    async def serve() -> None:
        await store.open()
        await uvicorn.Server(config).serve()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
