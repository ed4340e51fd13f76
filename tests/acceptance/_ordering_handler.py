"""The handler of the ordering end-to-end test, for ``hookwise worker`` processes.

Configure it as ``call = "_ordering_handler:mirror"`` with this directory and the
repository's root on ``PYTHONPATH``. It is the chaos test's handler
(``tests/integration/_chaos_handlers.py``): about one call in ten fails, the others
apply the object's version; every call is journaled in the SQLite file named by
``HOOKWISE_TEST_JOURNAL``, under the worker name ``HOOKWISE_TEST_OWNER``, with failures
drawn from ``HOOKWISE_TEST_SEED``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from hookwise import Event
from tests.integration._chaos_handlers import Journal, make_handler

JOURNAL_ENV = "HOOKWISE_TEST_JOURNAL"
SEED_ENV = "HOOKWISE_TEST_SEED"
OWNER_ENV = "HOOKWISE_TEST_OWNER"

_handler: Callable[[Event], Awaitable[None]] | None = None


async def mirror(event: Event) -> None:
    global _handler
    if _handler is None:  # on the first call: the receiver imports this module too
        journal = Journal(os.environ[JOURNAL_ENV])
        owner = os.environ.get(OWNER_ENV, f"pid-{os.getpid()}")
        _handler = make_handler(journal, int(os.environ[SEED_ENV]), owner)
    await _handler(event)
