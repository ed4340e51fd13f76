"""A handler for tests that run real ``hookwise`` processes with polls.

``record`` appends one line per event, ``"<type> <item id> <item name>"``, to the file
named by ``HOOKWISE_TEST_RECORD``, in one ``O_APPEND`` write. Configure it as
``call = "_poll_handler:record"`` with this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import os

from hookwise import Event

RECORD_ENV = "HOOKWISE_TEST_RECORD"


def record(event: Event) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        raise RuntimeError(f"set {RECORD_ENV} to the file this process records handled events in")
    item = event.json()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event.type} {item['id']} {item.get('name')}\n".encode())
    finally:
        os.close(fd)
