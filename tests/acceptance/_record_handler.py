"""Handlers for tests that run real ``hookwise`` processes and count what ran.

Each handler appends one line, ``"<handler> <event id>"``, to the file named by
``HOOKWISE_TEST_RECORD`` (one file per process). The line is a single ``O_APPEND``
write, so lines from concurrent runs never interleave; a test then counts the lines
to see that every event ran once per handler, or at least once.

Configure them as ``call = "_record_handler:audit"`` / ``"_record_handler:billing"``
with this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import os

from hookwise import Event

RECORD_ENV = "HOOKWISE_TEST_RECORD"


def _record(handler: str, event: Event) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        raise RuntimeError(f"set {RECORD_ENV} to the file this process records handled events in")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{handler} {event.id}\n".encode())
    finally:
        os.close(fd)


async def audit(event: Event) -> None:
    _record("audit", event)


async def billing(event: Event) -> None:
    _record("billing", event)
