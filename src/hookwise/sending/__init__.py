"""``hookwise send`` as a library: sample events signed as a provider signs them, sent
with chaos (duplicates, shuffling, bad signatures, stale timestamps, concurrency) to
test any webhook receiver, and a report of what came back.

>>> from hookwise.sending import Chaos, resolve_source, send
>>> settings, source = resolve_source("stripe", secret="whsec_...")
>>> report = await send(settings, source, "http://127.0.0.1:8000/hooks/stripe",
...                     Chaos(count=20, duplicates=3, concurrency=8, bad_signature_rate=0.25))
>>> report.ok, report.by_status
(True, {'200': 45, '401': 15})

The pieces: :mod:`~hookwise.sending.plan` (what to send, pure and seeded),
:mod:`~hookwise.sending.forge` (signing, and breaking requests in ways the provider's own
verification is checked to refuse), :mod:`~hookwise.sending.runner` (HTTP with a limit
on requests in flight), :mod:`~hookwise.sending.report` (the summary). httpx is
imported only when something is sent.
"""

from __future__ import annotations

from .forge import SECRET_ENV, STALE_MARGIN, Breakage, EventMaker, Forger, corrupt, resolve_source
from .plan import (
    MAX_CONCURRENCY,
    MAX_REQUESTS,
    Chaos,
    EventContent,
    Plan,
    PlannedEvent,
    PlannedRequest,
    make_plan,
)
from .report import KindCount, Report, outcome_line, percentile, print_report
from .runner import Outcome, run_plan
from .send import send

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_REQUESTS",
    "SECRET_ENV",
    "STALE_MARGIN",
    "Breakage",
    "Chaos",
    "EventContent",
    "EventMaker",
    "Forger",
    "KindCount",
    "Outcome",
    "Plan",
    "PlannedEvent",
    "PlannedRequest",
    "Report",
    "corrupt",
    "make_plan",
    "outcome_line",
    "percentile",
    "print_report",
    "resolve_source",
    "run_plan",
    "send",
]
