"""The baseline: a raw ASGI app that reads the body and answers 200, doing nothing else.

Served with exactly the server settings ``hookwise serve`` uses, so the ratio between
the two isolates what hookwise itself costs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvicorn

BODY = b'{"status":"accepted","id":"noop","seq":0}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    from hookwise.runtime import SWITCH_INTERVAL

    # As `hookwise serve` runs (with one thread it changes nothing, but the
    # comparison stays like for like).
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        log_config=None,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # as `hookwise serve` runs
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
